//! Model check of the room log's election and commit rules, with `stateright`.
//!
//! The rules of ARCHITECTURE.md ("The room log") and ROOM-LOG-PITFALLS.md, written as a
//! small pure state machine (`model/spec.rs`, not the project's code): three nodes on a
//! ring; terms; logs of (term, value) entries; Chang-Roberts tokens that carry the term,
//! the candidate, its (last term, last index) and its supporters round the ring; support
//! only for a candidate at least as up to date, once per term; leadership when the token
//! comes back with a majority; leaders that append in their term and send their log;
//! commit by a majority of copies of an entry of the leader's own term. Messages are lost,
//! duplicated and reordered; nodes crash, pause, and are cut off (`model/spec.rs` says how
//! each is modelled).
//!
//! The checker visits breadth first every state at most `MODEL_DEPTH` steps (default
//! [`CI_DEPTH`]) from the start, with terms up to 3 and two client values, one state per
//! renumbering of the nodes (`model/symmetry.rs`). In each it checks that (1) no term ever
//! has two leaders, (2) a leader holds every entry committed before its term, (3) no two
//! different entries are ever counted as committed at one index, and that some runs
//! reach the interesting states: a committed client value, two leaders at once, a later
//! leader holding an earlier commit, logs that differ.
//!
//! Each broken variant of the rules must then be caught, the checker finding a run that
//! breaks a property: two votes in a term, a vote forgotten in a crash, support for a
//! candidate with a staler log, and copies of an older term's entry counted as committed
//! (Raft's figure 8, searched from a start where two leaders each appended alone; from
//! the same start the safe rules hold as deep). Each test prints the run it found.
//!
//! Not modelled: time, so neither check-quorum nor pre-vote (any node may start an election
//! at any moment and any leader goes on whatever it hears, which includes every run those
//! rules allow: they are for availability, not for these properties); membership changes;
//! more than three nodes; liveness.
//!
//! With the default depth the safe rules take 2.1 million states (14 s), and the whole file
//! about 25 s on this shared two-core machine. Each step deeper costs about 2.3 times more
//! states and memory; a deeper run of the safe rules, 20.3 million states within 15 steps,
//! took 2.4 min and 7.7 GB:
//!
//! ```text
//! MODEL_DEPTH=15 cargo test --release --test model -- --nocapture safe_rules_hold_within
//! ```

#[path = "model/spec.rs"]
mod spec;
#[path = "model/state.rs"]
mod state;
#[path = "model/symmetry.rs"]
mod symmetry;

use spec::{Action, RoomLog, Rule, Rules};
use state::{Entry, Msg, Node, Role, State};
use stateright::{Checker, HasDiscoveries, Model, Path, Property};
use std::time::Instant;

/// Steps the safe rules are checked to when `MODEL_DEPTH` is not set.
const CI_DEPTH: usize = 12;

/// (1) Election safety.
const ONE_LEADER: &str = "at most one leader per term";
/// (2) Leader completeness.
const LEADERS_HOLD: &str = "every later leader holds every committed entry";
/// (3) State machine safety.
const ONE_ENTRY: &str = "no two different entries are committed at one index";

/// (1): no term has ever had two leaders.
fn one_leader_per_term(_: &RoomLog, s: &State) -> bool {
    s.elected.iter().all(|m| m.count_ones() <= 1)
}

/// The entries committed before `term`, by index.
fn committed_before(s: &State, term: u8) -> impl Iterator<Item = &(u8, Entry, u8)> {
    s.committed.iter().filter(move |c| c.2 < term)
}

/// (2): every leader holds every entry counted as committed before its term.
fn leaders_hold_committed(_: &RoomLog, s: &State) -> bool {
    let mut leaders = s.nodes.iter().filter(|n| n.role == Role::Leader);
    leaders.all(|n| committed_before(s, n.term).all(|&(i, e, _)| n.log.at(i) == Some(e)))
}

/// (3): one entry per index was ever counted as committed, and every node still holds
/// it there as far as it counts entries committed.
fn one_entry_per_index(_: &RoomLog, s: &State) -> bool {
    let once = s.committed.windows(2).all(|w| w[0].0 != w[1].0);
    once && s.nodes.iter().all(|n| {
        let mut held = s.committed.iter().filter(|c| c.0 <= n.commit);
        n.commit <= n.log.len() && held.all(|&(i, e, _)| n.log.at(i) == Some(e))
    })
}

/// A leader holds an entry committed before its term: (2) has something to check.
fn later_leader_holds_a_commit(_: &RoomLog, s: &State) -> bool {
    let mut leaders = s.nodes.iter().filter(|n| n.role == Role::Leader);
    leaders.any(|n| committed_before(s, n.term).next().is_some())
}

/// Two nodes hold different entries at one index: (3) has something to check.
fn logs_differ(_: &RoomLog, s: &State) -> bool {
    let differ = |x: &Node, y: &Node| {
        let mut pairs = x.log.entries().iter().zip(y.log.entries());
        pairs.any(|(e, f)| e != f)
    };
    let [a, b, c] = &s.nodes;
    differ(a, b) || differ(a, c) || differ(b, c)
}

impl Model for RoomLog {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![self.settle(self.opened())]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.enabled(state, actions);
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        self.step(state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ONE_LEADER, one_leader_per_term),
            Property::always(LEADERS_HOLD, leaders_hold_committed),
            Property::always(ONE_ENTRY, one_entry_per_index),
            Property::sometimes("a client value is committed", |_, s: &State| {
                s.committed.iter().any(|c| c.1.1 > 0)
            }),
            Property::sometimes("two nodes lead at once", |_, s: &State| {
                s.nodes.iter().filter(|n| n.role == Role::Leader).count() > 1
            }),
            Property::sometimes(
                "a later leader holds an earlier commit",
                later_leader_holds_a_commit,
            ),
            Property::sometimes("two logs differ at an index", logs_differ),
        ]
    }
}

/// The safe rules within the bounds the module documentation states.
fn safe() -> RoomLog {
    RoomLog {
        rules: Rules::SAFE,
        max_term: 3,
        max_values: 2,
        symmetry: true,
        opening: &[],
    }
}

/// Runs the checker breadth first over every state `depth` steps or fewer from the start,
/// until `finish` holds, and says how far it went.
fn check(
    what: &str,
    model: RoomLog,
    depth: usize,
    finish: HasDiscoveries,
) -> impl Checker<RoomLog> {
    let start = Instant::now();
    // One thread keeps the search in depth order: a state is first met at its least depth,
    // so every state within the depth is expanded. `target_max_depth` counts the initial
    // state as depth 1 and does not visit states at the target depth itself.
    let checker = model
        .checker()
        .threads(1)
        .finish_when(finish)
        .target_max_depth(depth + 2)
        .spawn_bfs()
        .join();
    eprintln!(
        "{what}: {} states ({} generated) within {depth} steps, in {:.1?}",
        checker.unique_state_count(),
        checker.state_count(),
        start.elapsed()
    );
    checker
}

#[test]
fn safe_rules_hold_within_the_depth() {
    let depth = std::env::var("MODEL_DEPTH").map_or(CI_DEPTH, |d| d.parse().expect("a number"));
    let checker = check("safe rules", safe(), depth, HasDiscoveries::AnyFailures);
    checker.assert_properties();
}

/// Checks `model` until some run breaks `property`, and prints that run.
fn counterexample(what: &str, model: RoomLog, depth: usize, property: &'static str) {
    let checker = check(what, model, depth, HasDiscoveries::AnyOf([property].into()));
    let path: Path<State, Action> = checker
        .discovery(property)
        .unwrap_or_else(|| panic!("no run within {depth} steps breaks {property:?}"));
    eprintln!("{what}: {property:?} broken by:");
    for action in symmetry::original_numbers(&model, path.into_actions()) {
        eprintln!("  {action:?}");
    }
}

/// `safe()` with `rule` off and terms up to `max_term`.
fn broken(rule: Rule, max_term: u8) -> RoomLog {
    RoomLog {
        rules: Rules::SAFE.without(rule),
        max_term,
        ..safe()
    }
}

#[test]
fn two_votes_in_a_term_elect_two_leaders() {
    counterexample(
        "two votes a term",
        broken(Rule::OneVotePerTerm, 1),
        6,
        ONE_LEADER,
    );
}

#[test]
fn a_vote_forgotten_in_a_crash_elects_two_leaders() {
    counterexample(
        "votes forgotten",
        broken(Rule::DurableVote, 1),
        7,
        ONE_LEADER,
    );
}

#[test]
fn votes_for_stale_logs_lose_committed_entries() {
    counterexample(
        "votes for stale logs",
        broken(Rule::UpToDateVotes, 2),
        10,
        LEADERS_HOLD,
    );
}

/// A token from a candidate with an empty log.
const fn token(to: u8, term: u8, cand: u8, support: u8) -> Msg {
    Msg::Token {
        to,
        term,
        cand,
        last: (0, 0),
        support,
    }
}

/// Node 0 leads term 1 with node 1's support and appends a no-op; node 1 then leads term 2
/// with node 2's support and appends its own. Neither no-op reaches another node.
const TWO_LONE_LEADERS: &[Action] = &[
    Action::Timeout { node: 0, to: 1 },
    Action::Deliver {
        msg: token(1, 1, 0, 0b001),
        next: 0,
    },
    Action::Deliver {
        msg: token(0, 1, 0, 0b011),
        next: 0,
    },
    Action::Noop { node: 0 },
    Action::Timeout { node: 1, to: 2 },
    Action::Deliver {
        msg: token(2, 2, 1, 0b010),
        next: 1,
    },
    Action::Deliver {
        msg: token(1, 2, 1, 0b110),
        next: 1,
    },
    Action::Noop { node: 1 },
];

/// Terms up to 4, no client values, from [`TWO_LONE_LEADERS`].
fn after_two_lone_leaders(rules: Rules) -> RoomLog {
    RoomLog {
        rules,
        max_term: 4,
        max_values: 0,
        opening: TWO_LONE_LEADERS,
        ..safe()
    }
}

#[test]
fn counting_copies_of_an_older_term_loses_committed_entries() {
    let model = after_two_lone_leaders(Rules::SAFE.without(Rule::CommitOwnTermOnly));
    counterexample("copies of older terms counted", model, 12, LEADERS_HOLD);
}

#[test]
fn safe_rules_hold_after_two_lone_leaders() {
    let model = after_two_lone_leaders(Rules::SAFE);
    let checker = check(
        "safe rules after two lone leaders",
        model,
        12,
        HasDiscoveries::AnyFailures,
    );
    for property in [ONE_LEADER, LEADERS_HOLD, ONE_ENTRY] {
        checker.assert_no_discovery(property);
    }
}
