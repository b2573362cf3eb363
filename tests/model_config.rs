//! Model check of the room log's voting-configuration changes, with `stateright`.
//!
//! What is modelled (`model_config/spec.rs` says which code each rule stands for): up to
//! five nodes, a configuration of voters every node starts with, and leaders that change
//! it one voter at a time with configuration entries in the log (an addition of any node
//! outside, a removal of any voter but the last, the undoing of an addition in flight).
//! A node counts a configuration entry as soon as it holds it (the configuration its log
//! ends with: a leader commits, and a candidate takes over, by a majority of it) and
//! applies it for good once shown (its committed configuration). Elections are abstracted
//! as in `tests/model.rs`: any node of [`ConfigLog::campaigners`] may win a round of any
//! term above the one it follows; the candidate merges the answers index by index (the
//! highest term wins, a committed copy above all), takes over once it has the answers
//! the rule under test asks for ([`Quorum`]), and proposes all of it again in its term.
//! Messages are lost, duplicated and reordered; nodes pause, and, if the bounds say so,
//! crash (keeping what is on disk) and catch up by fetching committed entries from a node
//! that showed them.
//!
//! The rules the code follows ([`CODE`]): a take-over needs a majority of its committed
//! configuration, of its log's, and of each configuration between them where its log
//! switches branch or where the next change's parent (the index of the last change in
//! its proposer's log) is not the change that made it ([`Quorum::Chain`];
//! `take_over_shortfall` asks for more than its log's only when a change is held and not
//! known committed), a change the answers prove committed standing for the committed
//! configuration ([`Quorum::ChainProvenByLeader`], `proven_changes`: held, with every
//! index from the candidate's delivery point to it, in copies of its term by a majority
//! of the configuration it makes, each holder's copy a vote: taken as a proposal from
//! that term's leader, not merged from answers; that leader, which proposed each such
//! copy, a holder too); a leader changes no voter before an entry of its own term is
//! committed ([`Rules::own_term_first`]); the undo of an addition may go at once
//! ([`Undo::Early`]); a committed copy carries no term ([`Rules::committed_terms`] off).
//!
//! The checker visits breadth first, one state per renumbering of the nodes that keeps
//! the initial voters and the campaigners (`model_config/symmetry.rs`), and checks in
//! each that (1) no term has two leaders, (2) every leader holds every entry committed
//! before its term, (3) no index has two different entries committed or shown, (4) nodes
//! that have shown as much apply the same configuration; and that some runs commit a
//! configuration change, have a second leader take over, and have two nodes lead at once
//! (so that the bounds leave something to check).
//!
//! In `cargo test`, every reachable state within two sets of bounds (no client values,
//! crashes or catching up; figures, single thread, in each test's doc):
//! [`code_bounds`], voters `a`, `b` and `c` outside, terms up to 3, two changes, indexes
//! up to 3; and [`four_node_bounds`], voters `a`, `b`, `c` and `d` outside, terms up to
//! 2, one change. Each bound can be raised from the environment for
//! [`the_code_rules_keep_one_entry_per_number`] and for the ignored [`explore`], which
//! takes the rules from it too:
//!
//! ```text
//! MODEL_NODES=5 MODEL_VOTERS=4        # nodes (at most 5), the first ones voting at the start
//! MODEL_CAMPAIGNERS=3                 # bit set of the nodes that may win rounds
//! MODEL_TERMS=4 MODEL_CHANGES=3 MODEL_VALUES=1 MODEL_LOG=4   # terms, log: at most 4
//! MODEL_CRASHES=1 MODEL_CATCHUP=1
//! MODEL_DEPTH=26                      # only the states within so many steps
//! MODEL_SECONDS=600                   # stop after so long (the run is then incomplete)
//! MODEL_DFS=1                         # depth first (reaches deep runs sooner)
//! MODEL_PROGRESS=1                    # report progress every few seconds
//! # explore only: the rules (defaults: the code's)
//! MODEL_QUORUM=0|1|2|3|4|5|6 (LogVoters, CommittedIfOvertaken, Both, Chain, ChainGaps, ChainProven,
//!                                   ChainProvenByLeader)
//! MODEL_OWN=0|1
//! MODEL_UNDO=0|1|2 (Never, Settled, Early) MODEL_GAPLESS=0|1 MODEL_TERMS_KEPT=0|1
//!
//! MODEL_NODES=5 MODEL_VOTERS=4 MODEL_CAMPAIGNERS=3 MODEL_TERMS=4 MODEL_LOG=2 \
//!     MODEL_SECONDS=600 cargo test --release --test model_config -- --ignored --nocapture explore
//! ```
//!
//! The state space grows fast: about 130 thousand states a second on one core, and a
//! breadth-first run of five nodes reaches about 15 steps in ten minutes (34 million
//! states, 12 GB), short of the 20-odd steps the two runs of the unit tests
//! `a_take_over_whose_overtaking_entry_was_shown_needs_the_committed_voters_too` and
//! `a_take_over_whose_change_was_overtaken_at_its_own_number_needs_the_committed_voters`
//! (`src/proto/node/tests/takeover_config.rs`) take.
//!
//! Each earlier take-over rule must be caught: the checker finds a run in which a
//! take-over counting only its log's configuration ([`Quorum::LogVoters`]), or the
//! committed one too only when it holds an overtaken change
//! ([`Quorum::CommittedIfOvertaken`], the rule before the fix, with or without counting
//! a change held beyond a gap), or both always and nothing between ([`Quorum::Both`],
//! the rule before `sim_chaos` seed 18849: three voters, three changes, indexes up to
//! 4), loses a committed entry; the test prints the run.
//!
//! Not modelled: timing (suspicion, pre-vote, check-quorum, the confirmation of a leader
//! back from a pause: they only take runs away), liveness (nothing forces a step), the
//! user's choice of changes (the environment picks any), joins and welcomes (a newcomer
//! here is a node that holds nothing; the welcome's committed configuration is not
//! modelled), a voter leaving (and the wait for the room to be told of its removal before
//! it goes: here a removed node stays and may answer, which only adds runs), history
//! limits, batching, direct messages, a node that loses its disk.

#[path = "model_config/checker.rs"]
mod checker;
#[path = "model_config/member.rs"]
mod member;
#[path = "model_config/replays.rs"]
mod replays;
#[path = "model_config/spec.rs"]
mod spec;
#[path = "model_config/state.rs"]
mod state;
#[path = "model_config/symmetry.rs"]
mod symmetry;

use checker::{Search, counterexample, holds};
use spec::{Action, ConfigLog, Quorum, Rules, Undo};
use state::{COMMITTED, Change, Committed, FILLER, MAX_LOG, Node, Role, Set, Slot, State};
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, Property};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// (1) Election safety.
const ONE_LEADER: &str = "at most one leader per term";
/// (2) Leader completeness.
const LEADERS_HOLD: &str = "every later leader holds every committed entry";
/// (3) State machine safety.
const ONE_ENTRY: &str = "no two different entries are committed or shown at one index";
/// (4) One committed configuration.
const ONE_CONFIG: &str = "nodes that have shown as much apply the same configuration";
/// Reached: a configuration change is committed.
const CHANGE_COMMITTED: &str = "a configuration change is committed";
/// Reached: a second leader takes over.
const SECOND_LEADER: &str = "a second leader takes over";
/// Reached: two nodes lead at once.
const TWO_LEADERS: &str = "two nodes lead at once";

/// (1): no term has ever had two nodes take over.
fn one_leader_per_term(_: &ConfigLog, s: &State) -> bool {
    s.elected.iter().all(|m| m.count_ones() <= 1)
}

/// The entries committed before `term`.
fn committed_before(s: &State, term: u8) -> impl Iterator<Item = &Committed> {
    s.committed.iter().filter(move |c| c.term < term)
}

/// (2): every leader holds, shown or not, every entry committed before its term (its
/// parent too).
fn leaders_hold_committed(_: &ConfigLog, s: &State) -> bool {
    let mut leaders = s.nodes.iter().filter(|n| n.is_leader());
    leaders.all(|n| {
        committed_before(s, n.term).all(|c| {
            let held = n.at(c.index);
            held.is_some() && (held.value, held.parent) == (c.value, c.parent)
        })
    })
}

/// (3): one value (and parent) per index among every entry a leader has committed and
/// every entry a node has shown.
fn one_entry_per_index(_: &ConfigLog, s: &State) -> bool {
    (1..=MAX_LOG as u8).all(|index| {
        let committed = s
            .committed
            .iter()
            .filter(|c| c.index == index)
            .map(|c| (c.value, c.parent));
        let shown = s
            .nodes
            .iter()
            .flat_map(|n| n.shown())
            .filter(|e| e.0 == index);
        let mut values = committed.chain(shown.map(|e| (e.1, e.2)));
        let first = values.next();
        values.all(|v| Some(v) == first)
    })
}

/// The configuration `initial` with the configuration entries of `values` applied.
fn applied(initial: Set, values: impl Iterator<Item = u8>) -> Set {
    values
        .filter_map(Change::of)
        .fold(initial, |v, c| c.apply(v))
}

/// (4): a node's committed configuration is the one any node that has shown as much or
/// more applied at that point, and the committed entries, applied in order up to it,
/// make it too.
fn one_committed_config(m: &ConfigLog, s: &State) -> bool {
    let nodes = &s.nodes[..usize::from(m.nodes)];
    nodes.iter().all(|n| {
        let mine = n.committed_voters(m.initial);
        let upto = n.next;
        let by_commits = applied(
            m.initial,
            s.committed
                .iter()
                .filter(|c| c.index < upto)
                .map(|c| c.value),
        );
        let agree = nodes
            .iter()
            .filter(|o| o.next >= upto)
            .all(|o| applied(m.initial, o.shown().filter(|e| e.0 < upto).map(|e| e.1)) == mine);
        agree && by_commits == mine
    })
}

impl Model for ConfigLog {
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

    fn within_boundary(&self, _: &State) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stopped.store(true, Ordering::Relaxed);
        }
        !self.stopped.load(Ordering::Relaxed)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ONE_LEADER, one_leader_per_term),
            Property::always(LEADERS_HOLD, leaders_hold_committed),
            Property::always(ONE_ENTRY, one_entry_per_index),
            Property::always(ONE_CONFIG, one_committed_config),
            Property::sometimes(CHANGE_COMMITTED, |_, s: &State| {
                s.committed.iter().any(|c| Change::of(c.value).is_some())
            }),
            Property::sometimes(SECOND_LEADER, |_, s: &State| {
                s.elected.iter().filter(|e| **e != 0).count() > 1
            }),
            Property::sometimes(TWO_LEADERS, |_, s: &State| {
                s.nodes.iter().filter(|n| n.is_leader()).count() > 1
            }),
        ]
    }
}

/// The rules the code follows (see the file's doc).
const CODE: Rules = Rules {
    own_term_first: true,
    undo: Undo::Early,
    quorum: Quorum::ChainProvenByLeader,
    gapless_config: false,
    committed_terms: false,
};

/// How far a run goes.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    /// Nodes taking part (at most `state::NODES`).
    nodes: u8,
    /// How many of them, the first ones, vote at the start.
    voters: u8,
    /// The nodes that may win rounds.
    campaigners: Set,
    /// No round is won beyond this term (at most `state::MAX_TERM`).
    terms: u8,
    /// Client values written.
    values: u8,
    /// Configuration changes proposed.
    changes: u8,
    /// No entry beyond this index (at most `state::MAX_LOG`).
    log: u8,
    /// Whether nodes crash and restart.
    crashes: bool,
    /// Whether nodes fetch committed entries from each other.
    catch_up: bool,
}

/// The bounds of [`the_code_rules_keep_one_entry_per_number`] in `cargo test`: voters
/// `a` and `b`, `c` outside, every node campaigning; terms up to 3, two changes, indexes
/// up to 3. Two voters and a node outside are the smallest room where a removal's
/// majority (`a` alone) and an addition's (`b`, `c`) miss each other.
fn code_bounds() -> Bounds {
    Bounds {
        nodes: 3,
        voters: 2,
        campaigners: 0b111,
        terms: 3,
        values: 0,
        changes: 2,
        log: 3,
        crashes: false,
        catch_up: false,
    }
}

/// The bounds of [`the_code_rules_keep_one_entry_per_number_with_four_nodes`]: voters
/// `a`, `b`, `c`, `d` outside; terms up to 2, one change, indexes up to 3.
fn four_node_bounds() -> Bounds {
    Bounds {
        nodes: 4,
        voters: 3,
        campaigners: 0b1111,
        terms: 2,
        values: 0,
        changes: 1,
        log: 3,
        crashes: false,
        catch_up: false,
    }
}

/// A number from the environment variable `key`, or `default`.
fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).map_or(default, |v| v.parse().ok().expect("a number"))
}

impl Bounds {
    /// These bounds, each overridden by its environment variable if set.
    fn with_env(self) -> Bounds {
        Bounds {
            nodes: env_or("MODEL_NODES", self.nodes),
            voters: env_or("MODEL_VOTERS", self.voters),
            campaigners: env_or("MODEL_CAMPAIGNERS", self.campaigners),
            terms: env_or("MODEL_TERMS", self.terms),
            values: env_or("MODEL_VALUES", self.values),
            changes: env_or("MODEL_CHANGES", self.changes),
            log: env_or("MODEL_LOG", self.log),
            crashes: env_or("MODEL_CRASHES", u8::from(self.crashes)) == 1,
            catch_up: env_or("MODEL_CATCHUP", u8::from(self.catch_up)) == 1,
        }
    }
}

/// The model of `rules` within `b`.
fn model(rules: Rules, b: Bounds) -> ConfigLog {
    assert!(0 < b.voters && b.voters <= b.nodes);
    let everyone: Set = (1 << b.nodes) - 1;
    let initial: Set = (1 << b.voters) - 1;
    let campaigners = b.campaigners & everyone;
    ConfigLog {
        rules,
        nodes: b.nodes,
        initial,
        campaigners,
        max_term: b.terms,
        max_values: b.values,
        max_changes: b.changes,
        max_log: b.log,
        crashes: b.crashes,
        catch_up: b.catch_up,
        perms: symmetry::perms(b.nodes, &[initial, campaigners]),
        deadline: None,
        stopped: Arc::default(),
    }
}

/// The code's rules, in every state reachable within [`code_bounds`], or within the
/// bounds and search set in the environment (see the file's doc): 5.6 million states,
/// the farthest 26 steps from the start, 40 s on this two-core machine beside other runs
/// (release build).
#[test]
fn the_code_rules_keep_one_entry_per_number() {
    let m = model(CODE, code_bounds().with_env());
    holds("the code's rules", &m, Search::exhaustive().with_env());
}

/// The code's rules with four nodes, in every state reachable within
/// [`four_node_bounds`]: 1.5 million states, the farthest 24 steps, 18 s beside other
/// runs.
#[test]
fn the_code_rules_keep_one_entry_per_number_with_four_nodes() {
    let m = model(CODE, four_node_bounds());
    holds("the code's rules, four nodes", &m, Search::exhaustive());
}

/// The rule before the fix: a take-over needs a majority of its committed configuration
/// only when its log holds a change of an older term than a copy held before it
/// ([`Quorum::CommittedIfOvertaken`]). Besides the two runs of `takeover_config.rs` (the overtaking
/// copy shown, its term lost; the later leader's first entry at the stale change's own
/// index), which need five nodes and more steps than a test can wait for, the checker
/// finds a third in 10 steps (96 thousand states, under a second): voters `a`, `b`;
/// `a` leads term 1, commits `-b` at #2 alone (its log's configuration is `{a}`), then
/// proposes `+c` at #3, which `b` takes (not #2); `c` wins term 2 and `b` answers: `c`'s
/// log ends with `{a, b, c}` (a change held beyond a gap counts), `b` and `c` are a
/// majority of it, nothing is overtaken, so `c` takes over and fills #2 with a filler.
/// A majority of the committed `{a, b}` would have needed `a`.
#[test]
fn the_committed_majority_only_for_an_overtaken_change_forks_the_log() {
    let rules = Rules {
        quorum: Quorum::CommittedIfOvertaken,
        ..CODE
    };
    let m = model(rules, code_bounds());
    counterexample(
        "committed majority if overtaken",
        &m,
        12,
        &[ONE_ENTRY, LEADERS_HOLD],
    );
}

/// The same rule, a change beyond a gap not counted ([`Rules::gapless_config`]): still
/// broken, in 15 steps (indexes up to 2; 264 thousand states, 4 s). `c` leads term 1 and
/// commits #1 with `a` and `b`, then proposes `-a` at #2, held by itself alone; `a`
/// leads term 2 with `b`, commits #1 again and `-b` at #2 alone; `c` wins term 3, `b`
/// answers, and `c`'s log ends with `{b}` (`-a` of term 1, overtaken by nothing it
/// holds): it takes over with `b`, without `-b`, and proposes `-a` at #2 again.
#[test]
fn the_committed_majority_only_for_an_overtaken_change_forks_the_log_without_gaps() {
    let rules = Rules {
        quorum: Quorum::CommittedIfOvertaken,
        gapless_config: true,
        ..CODE
    };
    let bounds = Bounds {
        log: 2,
        ..code_bounds()
    };
    counterexample(
        "committed majority if overtaken, no change beyond a gap",
        &model(rules, bounds),
        16,
        &[ONE_ENTRY, LEADERS_HOLD],
    );
}

/// A take-over counting only the configuration its log ends with: the run of
/// [`the_committed_majority_only_for_an_overtaken_change_forks_the_log`].
#[test]
fn a_take_over_counting_only_its_logs_configuration_forks_the_log() {
    let rules = Rules {
        quorum: Quorum::LogVoters,
        ..CODE
    };
    let m = model(rules, code_bounds());
    counterexample(
        "log's configuration only",
        &m,
        12,
        &[ONE_ENTRY, LEADERS_HOLD],
    );
}

/// The rule before `sim_chaos` seed 18849: a majority of the committed configuration and
/// of the log's only ([`Quorum::Both`]), no configuration before a gap asked for. With
/// three voters `a`, `b`, `c`, three changes and indexes up to 4 the checker finds the
/// seed's run in 12 steps (90 thousand states, under a second): `a` leads term 1,
/// commits #1 and `-b` at #2 with `c`, `-c` at #3 alone (`{a}`), and proposes `+b` at
/// #4, which `c` takes (not #3); `b` wins term 2 and `c` answers: their merged log goes
/// from `{a, b, c}` through `{a, c}`, past the gap at #3, back to `{a, b, c}`, of which
/// `b` and `c` are a majority, so `b` takes over and fills #3. A majority of `{a, c}` would
/// have needed `a`: [`Quorum::Chain`] asks for it as `+b`'s parent is #3, not #2 (the
/// change that made it), and [`Quorum::ChainGaps`] as the gap at #3 follows it.
#[test]
fn the_committed_and_the_logs_majorities_alone_fork_the_log_past_a_gap() {
    let rules = Rules {
        quorum: Quorum::Both,
        ..CODE
    };
    let bounds = Bounds {
        voters: 3,
        terms: 2,
        changes: 3,
        log: 4,
        ..code_bounds()
    };
    counterexample(
        "committed and log majorities only",
        &model(rules, bounds),
        14,
        &[ONE_ENTRY, LEADERS_HOLD],
    );
}

/// `sim_chaos` seed 16088's shape: the committed configuration `{a}`; held, `+b` of term
/// 2 at #2, nothing at #3, and `+b`'s undo `-b` of term 2 at #4, whose parent is #2; `b` is
/// gone for good. The parent shows that #3 holds no change, so [`Quorum::Chain`] lets `a`
/// take over alone, where [`Quorum::ChainGaps`] asks for a majority of `{a, b}` before the
/// gap and waits for good. With another parent (a change at #3 that `a` does not hold),
/// `Chain` asks for `{a, b}` too.
#[test]
fn a_gap_without_a_change_asks_for_nothing_more() {
    let bounds = Bounds {
        nodes: 2,
        voters: 1,
        ..code_bounds()
    };
    let chain = model(CODE, bounds);
    let gaps = model(
        Rules {
            quorum: Quorum::ChainGaps,
            ..CODE
        },
        bounds,
    );
    let (alone, both): (Set, Set) = (0b01, 0b11);
    let mut a = Node {
        term: 3,
        leader: 0,
        role: Role::Candidate {
            answered: alone,
            holders: [0; MAX_LOG],
        },
        next: 2,
        ..Node::NEW
    };
    a.log[0] = Slot::new(COMMITTED, FILLER, 0);
    a.log[1] = Slot::new(2, Change::Add(1).value(), 0);
    a.log[3] = Slot::new(2, Change::Remove(1).value(), 2);
    let none = [0; MAX_LOG];
    assert!(chain.has_quorum(&a, alone, &none), "{a:?}");
    assert!(!gaps.has_quorum(&a, alone, &none) && gaps.has_quorum(&a, both, &none));
    a.log[3].parent = 3;
    assert!(!chain.has_quorum(&a, alone, &none) && chain.has_quorum(&a, both, &none));
}

/// `sim_failover` seed 648: `a` removed (committed, `{b, c}` vote), then `b`, leading in
/// term 1, proposed `a`'s addition back, committed it with `a`'s ack and crashed before
/// `c` learned of the commit. `c` takes over answered by `a`, both holding the very copy
/// of term 1: under [`Quorum::Chain`] it needs a majority of the committed `{b, c}` and
/// waits for `b` for good; under [`Quorum::ChainProven`] (the code's) those two holders
/// are a majority of `{a, b, c}` in the term the change was proposed in, which proves it
/// committed. A copy `a` does not share proves nothing; nor does the change with an index
/// before it that `a` lacks (`b` may have committed it under another change).
#[test]
fn a_change_held_by_a_majority_of_its_configuration_is_proven_committed() {
    let bounds = Bounds {
        voters: 3,
        ..code_bounds()
    };
    let chain = model(
        Rules {
            quorum: Quorum::Chain,
            ..CODE
        },
        bounds,
    );
    let proven = model(CODE, bounds);
    let (a, c): (Set, Set) = (0b001, 0b100);
    let mut cat = Node {
        term: 2,
        leader: 2,
        next: 2,
        ..Node::NEW
    };
    cat.log[0] = Slot::new(COMMITTED, Change::Remove(0).value(), 0);
    cat.log[1] = Slot::new(1, Change::Add(0).value(), 1);
    let mut holders = [0; MAX_LOG];
    holders[1] = a | c;
    assert!(!chain.has_quorum(&cat, a | c, &holders), "{cat:?}");
    assert!(proven.has_quorum(&cat, a | c, &holders), "{cat:?}");
    holders[1] = c;
    assert!(!proven.has_quorum(&cat, a | c, &holders), "{cat:?}");
    // A filler of term 1 at #2 before the change, now at #3.
    cat.log[1] = Slot::new(1, FILLER, 0);
    cat.log[2] = Slot::new(1, Change::Add(0).value(), 1);
    holders = [0, c, a | c, 0];
    assert!(!proven.has_quorum(&cat, a | c, &holders), "{cat:?}");
    holders[1] = a | c;
    assert!(proven.has_quorum(&cat, a | c, &holders), "{cat:?}");
}

/// Any rules and bounds from the environment (see the file's doc), the code's by
/// default. Not run by `cargo test`: bigger bounds take minutes to hours.
#[test]
#[ignore = "run by hand, with bounds from the environment"]
fn explore() {
    let undo = match env_or("MODEL_UNDO", 2) {
        0 => Undo::Never,
        1 => Undo::Settled,
        _ => Undo::Early,
    };
    let quorum = match env_or("MODEL_QUORUM", 6) {
        0 => Quorum::LogVoters,
        1 => Quorum::CommittedIfOvertaken,
        2 => Quorum::Both,
        3 => Quorum::Chain,
        4 => Quorum::ChainGaps,
        5 => Quorum::ChainProven,
        _ => Quorum::ChainProvenByLeader,
    };
    let rules = Rules {
        own_term_first: env_or("MODEL_OWN", 1) == 1,
        undo,
        quorum,
        gapless_config: env_or("MODEL_GAPLESS", 0) == 1,
        committed_terms: env_or("MODEL_TERMS_KEPT", 0) == 1,
    };
    let m = model(rules, code_bounds().with_env());
    holds("explore", &m, Search::exhaustive().with_env());
}
