//! Symmetry reduction. Every node may win every round and the rules never compare node
//! numbers, so renumbering the nodes maps every run to a run, and no property depends on
//! the numbers: the checker needs only one state of each class, the least renumbering.

use crate::spec::{Action, RoomLog};
use crate::state::{MAX_LOG, Msg, NOBODY, NODES, Node, Role, State};

/// A renumbering: node k becomes `p[k]`.
pub type Perm = [u8; NODES];

/// The six renumberings of three nodes.
pub const PERMS: [Perm; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// Node `k` renumbered (or [`NOBODY`]).
fn id(k: u8, p: Perm) -> u8 {
    if k == NOBODY { k } else { p[usize::from(k)] }
}

/// A set of nodes (bit k: node k), renumbered.
fn bits(mask: u8, p: Perm) -> u8 {
    (0..NODES)
        .filter(|&k| mask & (1 << k) != 0)
        .map(|k| 1 << p[k])
        .sum()
}

/// The nodes of `s`, renumbered: moved to their new places, leaders, answers and acks
/// renamed.
fn nodes(s: &State, p: Perm) -> [Node; NODES] {
    let mut r = s.nodes;
    for (k, n) in s.nodes.iter().enumerate() {
        let m = &mut r[usize::from(p[k])];
        *m = *n;
        m.leader = id(n.leader, p);
        m.role = match n.role {
            Role::Follower => Role::Follower,
            Role::Candidate { answered } => Role::Candidate {
                answered: bits(answered, p),
            },
            Role::Leader { acks, proposed } => {
                let mut renamed = [0; MAX_LOG];
                for (r, a) in renamed.iter_mut().zip(acks) {
                    *r = bits(a, p);
                }
                Role::Leader {
                    acks: renamed,
                    proposed,
                }
            }
        };
    }
    r
}

/// `msg` with node k renamed `p[k]`.
pub fn msg(msg: Msg, p: Perm) -> Msg {
    let q = |k: u8| id(k, p);
    match msg {
        Msg::Sync { to, cand, term } => Msg::Sync {
            to: q(to),
            cand: q(cand),
            term,
        },
        Msg::Propose {
            to,
            from,
            term,
            index,
            value,
        } => Msg::Propose {
            to: q(to),
            from: q(from),
            term,
            index,
            value,
        },
        Msg::Commit {
            to,
            from,
            term,
            upto,
        } => Msg::Commit {
            to: q(to),
            from: q(from),
            term,
            upto,
        },
    }
}

/// `s` renumbered by `p`, whose renumbered `nodes` are given.
fn relabel(s: &State, p: Perm, nodes: [Node; NODES]) -> State {
    let mut net: Vec<Msg> = s.net.iter().map(|&m| msg(m, p)).collect();
    net.sort_unstable();
    State {
        nodes,
        net,
        next_value: s.next_value,
        elected: s.elected.map(|e| bits(e, p)),
        committed: s.committed.clone(),
    }
}

/// The least renumbering of `s`, and the renumbering that gives it.
pub fn canonical(s: &State) -> (State, Perm) {
    let renumbered = PERMS.map(|p| (nodes(s, p), p));
    let least = renumbered
        .iter()
        .map(|r| r.0)
        .min()
        .expect("six renumberings");
    renumbered
        .into_iter()
        .filter(|r| r.0 == least)
        .map(|(nodes, p)| (relabel(s, p, nodes), p))
        .min()
        .expect("one renumbering is the least")
}

/// `a` with node k renamed `p[k]`.
fn action(a: Action, p: Perm) -> Action {
    let q = |k: u8| id(k, p);
    match a {
        Action::Candidate { node, term } => Action::Candidate {
            node: q(node),
            term,
        },
        Action::TakeOver { node } => Action::TakeOver { node: q(node) },
        Action::Write { node } => Action::Write { node: q(node) },
        Action::Deliver { msg: m, answer } => Action::Deliver {
            msg: msg(m, p),
            answer,
        },
        Action::CatchUp { node, from } => Action::CatchUp {
            node: q(node),
            from: q(from),
        },
        Action::Restart { node, via } => Action::Restart {
            node: q(node),
            via: q(via),
        },
    }
}

/// A run the checker found, up to the first state where `broken` holds, its steps renamed from each state's least renumbering back to the numbers
/// the nodes had at the start.
pub fn original_numbers(
    model: &RoomLog,
    found: Vec<Action>,
    broken: impl Fn(&State) -> bool,
) -> Vec<Action> {
    let plain = RoomLog {
        symmetry: false,
        ..*model
    };
    let (mut state, mut back) = renumber(model, model.init(), [0, 1, 2]);
    let mut run = Vec::new();
    for a in found {
        if broken(&state) {
            break;
        }
        run.push(action(a, back));
        let next = plain.step(&state, a).expect("the run's steps act");
        (state, back) = renumber(model, next, back);
    }
    run
}

/// The state the checker keeps for `state`, and `back` moved along: `back[k]` is the
/// original number of the node numbered k.
fn renumber(model: &RoomLog, state: State, back: Perm) -> (State, Perm) {
    if !model.symmetry {
        return (state, back);
    }
    let (least, p) = canonical(&state);
    let mut moved = back;
    for k in 0..NODES {
        moved[usize::from(p[k])] = back[k];
    }
    (least, moved)
}
