//! Model check of the room log's voting-configuration changes (draft).

#[path = "model_config/member.rs"]
mod member;
#[path = "model_config/spec.rs"]
mod spec;
#[path = "model_config/state.rs"]
mod state;
#[path = "model_config/symmetry.rs"]
mod symmetry;

use spec::{Action, ConfigLog, Quorum, Rules, Undo};
use state::{Change, MAX_LOG, Set, State};
use stateright::{Checker, HasDiscoveries, Model, Path, Property};
use std::time::Instant;

/// (1) Election safety.
const ONE_LEADER: &str = "at most one leader per term";
/// (2) Leader completeness.
const LEADERS_HOLD: &str = "every later leader holds every committed entry";
/// (3) State machine safety.
const ONE_ENTRY: &str = "no two different entries are committed or shown at one index";
/// (4) One committed configuration.
const ONE_CONFIG: &str = "nodes that have shown as much apply the same configuration";

/// (1): no term has ever had two nodes take over.
fn one_leader_per_term(_: &ConfigLog, s: &State) -> bool {
    s.elected.iter().all(|m| m.count_ones() <= 1)
}

/// The entries committed before `term`: (index, value, term).
fn committed_before(s: &State, term: u8) -> impl Iterator<Item = &(u8, u8, u8)> {
    s.committed.iter().filter(move |c| c.2 < term)
}

/// (2): every leader holds, shown or not, every entry committed before its term.
fn leaders_hold_committed(_: &ConfigLog, s: &State) -> bool {
    let mut leaders = s.nodes.iter().filter(|n| n.is_leader());
    leaders.all(|n| {
        committed_before(s, n.term).all(|&(i, v, _)| n.at(i).is_some() && n.at(i).value == v)
    })
}

/// (3): one value per index among every entry a leader has committed and every entry a
/// node has shown.
fn one_entry_per_index(_: &ConfigLog, s: &State) -> bool {
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

/// The configuration `initial` with the configuration entries of `values` applied.
fn applied(initial: Set, values: impl Iterator<Item = u8>) -> Set {
    values.filter_map(Change::of).fold(initial, |v, c| c.apply(v))
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
            s.committed.iter().filter(|c| c.0 < upto).map(|c| c.1),
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

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ONE_LEADER, one_leader_per_term),
            Property::always(LEADERS_HOLD, leaders_hold_committed),
            Property::always(ONE_ENTRY, one_entry_per_index),
            Property::always(ONE_CONFIG, one_committed_config),
            Property::sometimes("a configuration change is committed", |_, s: &State| {
                s.committed.iter().any(|c| Change::of(c.1).is_some())
            }),
            Property::sometimes("a second leader takes over", |_, s: &State| {
                s.elected.iter().filter(|e| **e != 0).count() > 1
            }),
            Property::sometimes("two nodes lead at once", |_, s: &State| {
                s.nodes.iter().filter(|n| n.is_leader()).count() > 1
            }),
        ]
    }
}

/// A number from the environment variable `key`, or `default`.
fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).map_or(default, |v| v.parse().ok().expect("a number"))
}

fn model(rules: Rules, nodes: u8) -> ConfigLog {
    let initial: Set = 0b1111;
    ConfigLog {
        rules,
        nodes,
        initial,
        max_term: env_or("MODEL_TERMS", 3),
        max_values: env_or("MODEL_VALUES", 0),
        max_changes: env_or("MODEL_CHANGES", 2),
        max_log: env_or("MODEL_LOG", 4),
        crashes: env_or("MODEL_CRASHES", 0) == 1,
        catch_up: env_or("MODEL_CATCHUP", 0) == 1,
        perms: symmetry::perms(nodes, initial),
    }
}

fn run(what: &str, m: ConfigLog) {
    let start = Instant::now();
    let depth: usize = env_or("MODEL_DEPTH", 0);
    let mut b = m.clone().checker().threads(1).finish_when(HasDiscoveries::AnyFailures);
    if depth > 0 {
        b = b.target_max_depth(depth + 2);
    }
    let c = b.spawn_bfs().join();
    eprintln!(
        "{what}: {} states, {} generated, depth {}, {:.1?}",
        c.unique_state_count(),
        c.state_count(),
        c.max_depth(),
        start.elapsed()
    );
    for (name, path) in c.discoveries() {
        let path: Path<State, Action> = path;
        eprintln!("discovery {name}");
        let (run, _) = symmetry::original_numbers(&m, path.into_actions(), |_| false);
        for a in run {
            eprintln!("  {a:?}");
        }
    }
}

#[test]
fn explore() {
    let undo = match env_or("MODEL_UNDO", 0) {
        0 => Undo::Never,
        1 => Undo::Settled,
        _ => Undo::Early,
    };
    let quorum = match env_or("MODEL_QUORUM", 0) {
        0 => Quorum::LogVoters,
        1 => Quorum::CommittedIfOvertaken,
        _ => Quorum::Both,
    };
    let rules = Rules {
        own_term_first: env_or("MODEL_OWN", 1) == 1,
        undo,
        quorum,
    };
    run("explore", model(rules, env_or("MODEL_NODES", 4)));
}
