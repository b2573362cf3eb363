//! Model check of the room log's election and commit rules, with `stateright`.
//!
//! The rules as `src/proto/node/room` (`recovery.rs`, `sequence.rs`, `deliver.rs`) and
//! `src/proto/node/ring/election.rs` implement them, written as a small pure state machine
//! (`model/spec.rs`, not the project's code): three voters, each following one epoch
//! (term, leader) at a time and at most one leader per term; a candidate that takes over
//! only once a majority of the voters (itself included) has answered its sync request,
//! each answer carrying every copy the member holds beyond the candidate's shown history
//! with its term (shown ones as committed); of each index the candidate keeps the copy of
//! the highest term (a committed one above all), fills the indexes nobody had, and
//! proposes all of it again in its own term; a member that answered a candidate of term T
//! follows it and no longer takes proposals of a lower term, and a proposal or commit
//! notice of a higher term makes it follow that term's leader; members hold and ack only the
//! proposals of the leader and term they follow, keep the higher-term copy of an index,
//! and never replace a committed copy; the leader commits an index once a majority holds
//! its term's copy (itself included); members show entries once that leader's commit
//! notice covers them. Any node may win any round (Chang-Roberts elects the largest id a
//! ring reaches, but partitions split the ring into rings of their own). Messages are
//! lost, duplicated and reordered; nodes crash (keeping what is on disk: the epoch, the
//! shown history, the held copies), pause, and are cut off (`model/spec.rs` says how each
//! is modelled).
//!
//! The checker visits breadth first, one state per renumbering of the nodes
//! (`model/symmetry.rs`), and checks in each that (1) no term ever has two leaders, (2)
//! every leader holds every entry committed before its term, and (3) no index ever has
//! two different entries committed or shown; and that some runs reach the interesting
//! states: a client value committed, a filler committed, two leaders at once (of
//! different terms), a later leader holding an earlier commit, held copies that differ,
//! every node having shown an entry.
//!
//! In `cargo test` it checks every reachable state with terms up to 3 and two client
//! values (458 224 states, the farthest 22 steps from the start; 4 s on this shared
//! two-core machine), and with terms up to 4 and three client values every state within
//! [`CI_DEPTH`] steps (3.6 million states, 21 s); the whole file takes 30 to 40 s. Deeper
//! runs, measured here (the times vary with the machine's load):
//!
//! ```text
//! # every reachable state, terms up to 3, three values: 7.1 million states, 27 steps, 1.4-2.3 min, 1.0 GB
//! MODEL_TERMS=3 MODEL_VALUES=3 cargo test --release --test model -- --nocapture every_reachable
//! # every reachable state, terms up to 4, two values: 6.2 million states, 25 steps, 1.3-2 min, 0.7 GB
//! MODEL_TERMS=4 MODEL_VALUES=2 cargo test --release --test model -- --nocapture every_reachable
//! # terms up to 4, three values, within 16 steps: 23 million states, 3.3-4.4 min, 6.7 GB
//! MODEL_DEEP_DEPTH=16 cargo test --release --test model -- --nocapture more_terms
//! ```
//!
//! Each broken variant of the rules must then be caught, the checker finding a run that
//! breaks a property, which the test prints: a candidate that takes over with fewer than
//! a majority of answers, one that keeps the lowest-term copy, a member that acks a
//! deposed leader's proposal after answering a newer candidate, a committed copy that does
//! not outrank held ones, held copies not on disk across a crash. Three variants were what
//! the code did when this model was written, each since changed to the rule the model
//! checks: a member took an older term's proposal from the leader it follows as a copy of
//! the current term (`can_hold`, `on_sequenced_from`) and showed it under that term's
//! commit notice; a candidate held and acked any proposal while it gathered answers
//! (`can_hold`), so a deposed leader could commit with its ack an entry the candidate's
//! newer quorum never saw (answers now come as `Message::SyncEntry`, and only those and
//! committed copies are acked); a restarted node followed the epoch of whichever leader or
//! candidate let it back in (`on_welcome`), however old (it now acks no proposal below the
//! epoch on disk, and starts a round above it).
//!
//! A member replacing a shown copy by a later term's copy is not among the variants:
//! under the other rules every copy of a later term at a committed index holds the
//! committed entry, so it would change nothing the checker could see (what does matter,
//! a committed copy outranking held ones, is).
//!
//! Not modelled: membership changes (configuration entries, joins, exits, a single voter
//! carrying the room on), more than three nodes, liveness (nothing forces a step), timing
//! (no clocks, so neither suspicion, check-quorum, pre-vote nor the confirmation a leader
//! back from a pause waits for: they only take runs away), history limits and batching,
//! a node that loses its disk, direct messages and the offline queue.

#[path = "model/member.rs"]
mod member;
#[path = "model/spec.rs"]
mod spec;
#[path = "model/state.rs"]
mod state;
#[path = "model/symmetry.rs"]
mod symmetry;

use spec::{Action, RoomLog, Rule, Rules};
use state::{FILLER, MAX_LOG, State};
use stateright::{Checker, HasDiscoveries, Model, Path, Property};
use std::time::Instant;

/// Steps the safe rules with terms up to 4 and three client values are checked to when
/// `MODEL_DEEP_DEPTH` is not set.
const CI_DEPTH: usize = 13;

/// (1) Election safety.
const ONE_LEADER: &str = "at most one leader per term";
/// (2) Leader completeness.
const LEADERS_HOLD: &str = "every later leader holds every committed entry";
/// (3) State machine safety.
const ONE_ENTRY: &str = "no two different entries are committed or shown at one index";

/// (1): no term has ever had two nodes take over.
fn one_leader_per_term(_: &RoomLog, s: &State) -> bool {
    s.elected.iter().all(|m| m.count_ones() <= 1)
}

/// The entries committed before `term`: (index, value, term).
fn committed_before(s: &State, term: u8) -> impl Iterator<Item = &(u8, u8, u8)> {
    s.committed.iter().filter(move |c| c.2 < term)
}

/// (2): every leader holds, shown or not, every entry committed before its term.
fn leaders_hold_committed(_: &RoomLog, s: &State) -> bool {
    let mut leaders = s.nodes.iter().filter(|n| n.is_leader());
    leaders.all(|n| {
        committed_before(s, n.term).all(|&(i, v, _)| n.at(i).is_some() && n.at(i).value == v)
    })
}

/// (3): one value per index among every entry a leader has committed and every entry a
/// node has shown.
fn one_entry_per_index(_: &RoomLog, s: &State) -> bool {
    (1..=MAX_LOG as u8).all(|index| {
        let committed = s.committed.iter().filter(|c| c.0 == index).map(|c| c.1);
        let shown = s
            .nodes
            .iter()
            .flat_map(|n| n.shown())
            .filter(|e| e.0 == index);
        let mut values = committed.chain(shown.map(|e| e.1));
        let first = values.next();
        values.all(|v| Some(v) == first)
    })
}

/// A leader holds an entry committed before its term: (2) has something to check.
fn later_leader_holds_a_commit(_: &RoomLog, s: &State) -> bool {
    let mut leaders = s.nodes.iter().filter(|n| n.is_leader());
    leaders.any(|n| committed_before(s, n.term).next().is_some())
}

/// Two nodes hold different values at one index, not shown by either.
fn held_copies_differ(_: &RoomLog, s: &State) -> bool {
    (1..=MAX_LOG as u8).any(|i| {
        let mut held = s
            .nodes
            .iter()
            .filter(|n| i >= n.next && n.at(i).is_some())
            .map(|n| n.at(i).value);
        let first = held.next();
        held.any(|v| Some(v) != first)
    })
}

impl Model for RoomLog {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![self.settle(self.init())]
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
                s.committed.iter().any(|c| c.1 != FILLER)
            }),
            Property::sometimes("a filler is committed", |_, s: &State| {
                s.committed.iter().any(|c| c.1 == FILLER)
            }),
            Property::sometimes("two nodes lead at once", |_, s: &State| {
                s.nodes.iter().filter(|n| n.is_leader()).count() > 1
            }),
            Property::sometimes(
                "a later leader holds an earlier commit",
                later_leader_holds_a_commit,
            ),
            Property::sometimes("held copies of one index differ", held_copies_differ),
            Property::sometimes("every node has shown an entry", |_, s: &State| {
                s.nodes.iter().all(|n| n.next > 1)
            }),
        ]
    }
}

/// A number from the environment variable `key`, or `default`.
fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).map_or(default, |v| v.parse().ok().expect("a number"))
}

/// The safe rules with terms up to `max_term` and `max_values` client values.
fn safe(max_term: u8, max_values: u8) -> RoomLog {
    RoomLog {
        rules: Rules::SAFE,
        max_term,
        max_values,
        symmetry: true,
    }
}

/// Runs the checker breadth first over every state `depth` steps or fewer from the start
/// (every reachable state if `depth` is `None`), until `finish` holds, and says how far
/// it went.
fn check(
    what: &str,
    model: RoomLog,
    depth: Option<usize>,
    finish: HasDiscoveries,
) -> impl Checker<RoomLog> {
    let start = Instant::now();
    // One thread keeps the search in depth order: a state is first met at its least depth,
    // so every state within the depth is expanded. `target_max_depth` counts the initial
    // state as depth 1 and does not visit states at the target depth itself.
    let mut builder = model.checker().threads(1).finish_when(finish);
    if let Some(depth) = depth {
        builder = builder.target_max_depth(depth + 2);
    }
    let checker = builder.spawn_bfs().join();
    let reach = match depth {
        Some(depth) => format!("within {depth} steps"),
        None => format!(
            "(every reachable one, the farthest {} steps)",
            checker.max_depth() - 1
        ),
    };
    eprintln!(
        "{what} (terms up to {}, {} client values): {} states {reach}, {} generated, in {:.1?}",
        model.max_term,
        model.max_values,
        checker.unique_state_count(),
        checker.state_count(),
        start.elapsed()
    );
    checker
}

/// Checks the safe rules, and that every `sometimes` property was met.
fn safe_rules_hold(what: &str, model: RoomLog, depth: Option<usize>) {
    check(what, model, depth, HasDiscoveries::AnyFailures).assert_properties();
}

/// Every state reachable with terms up to 3 and two client values (or `MODEL_TERMS`,
/// `MODEL_VALUES`, and `MODEL_DEPTH` steps if set).
#[test]
fn safe_rules_hold_in_every_reachable_state() {
    let model = safe(env_or("MODEL_TERMS", 3), env_or("MODEL_VALUES", 2));
    let depth = std::env::var("MODEL_DEPTH")
        .ok()
        .map(|d| d.parse().expect("a number"));
    safe_rules_hold("safe rules", model, depth);
}

/// Terms up to 4 and three client values, every state within [`CI_DEPTH`] steps (or
/// `MODEL_DEEP_DEPTH`).
#[test]
fn safe_rules_hold_with_more_terms_and_values_within_the_depth() {
    let depth = env_or("MODEL_DEEP_DEPTH", CI_DEPTH);
    safe_rules_hold("safe rules", safe(4, 3), Some(depth));
}

/// Checks `model` until some run breaks `property` (named `name`) within `depth` steps,
/// and prints that run up to the first state that breaks it.
fn counterexample(
    what: &str,
    model: RoomLog,
    depth: usize,
    (name, holds): (&'static str, fn(&RoomLog, &State) -> bool),
) {
    let checker = check(
        what,
        model,
        Some(depth),
        HasDiscoveries::AnyOf([name].into()),
    );
    let path: Path<State, Action> = checker
        .discovery(name)
        .unwrap_or_else(|| panic!("no run within {depth} steps breaks {name:?}"));
    let run = symmetry::original_numbers(&model, path.into_actions(), |s| !holds(&model, s));
    eprintln!("{what}: {name:?} broken after {} steps:", run.len());
    for action in run {
        eprintln!("  {action:?}");
    }
}

/// The safe rules with `rule` off, terms up to `max_term` and two client values.
fn broken(rule: Rule, max_term: u8) -> RoomLog {
    RoomLog {
        rules: Rules::SAFE.without(rule),
        ..safe(max_term, 2)
    }
}

/// (1) as a property to break.
const ONE_LEADER_P: (&str, fn(&RoomLog, &State) -> bool) = (ONE_LEADER, one_leader_per_term);
/// (2) as a property to break.
const LEADERS_HOLD_P: (&str, fn(&RoomLog, &State) -> bool) = (LEADERS_HOLD, leaders_hold_committed);
/// (3) as a property to break.
const ONE_ENTRY_P: (&str, fn(&RoomLog, &State) -> bool) = (ONE_ENTRY, one_entry_per_index);

#[test]
fn a_candidate_answered_by_fewer_than_a_majority_elects_two_leaders() {
    let model = broken(Rule::MajorityAnswers, 1);
    counterexample("fewer answers", model, 6, ONE_LEADER_P);
}

#[test]
fn a_candidate_keeping_the_lowest_term_copy_loses_committed_entries() {
    let model = broken(Rule::HighestTermCopy, 3);
    counterexample("lowest-term copy", model, 14, LEADERS_HOLD_P);
}

#[test]
fn acking_a_deposed_leader_after_answering_a_newer_candidate_forks_the_log() {
    let model = broken(Rule::FencedAcks, 2);
    counterexample("unfenced acks", model, 12, ONE_ENTRY_P);
}

#[test]
fn a_committed_copy_that_does_not_outrank_held_ones_is_lost() {
    let model = broken(Rule::CommittedWins, 3);
    counterexample("committed copy outranked", model, 14, LEADERS_HOLD_P);
}

#[test]
fn held_copies_lost_in_a_crash_lose_committed_entries() {
    let model = broken(Rule::HeldOnDisk, 2);
    counterexample("held copies not on disk", model, 11, LEADERS_HOLD_P);
}

#[test]
fn a_restarted_node_following_whoever_lets_it_back_in_forks_the_log() {
    let model = broken(Rule::DurableEpoch, 2);
    counterexample("epoch not kept over a restart", model, 13, ONE_ENTRY_P);
}

#[test]
fn a_candidate_acking_proposals_while_it_gathers_loses_committed_entries() {
    let model = broken(Rule::CandidateAnswersOnly, 3);
    counterexample("candidate acks proposals", model, 11, LEADERS_HOLD_P);
}

#[test]
fn an_older_terms_proposal_held_as_of_the_current_term_forks_the_log() {
    let model = broken(Rule::ProposalTermChecked, 3);
    counterexample("older proposal from the leader", model, 16, ONE_ENTRY_P);
}
