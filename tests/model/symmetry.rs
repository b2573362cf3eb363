//! Symmetry reduction. With three nodes a token's holder may pass it to either other node,
//! so renumbering the nodes maps every run to a run, and no property depends on the
//! numbers: the checker needs only one state of each class, the least renumbering.

use crate::spec::{Action, RoomLog};
use crate::state::{Msg, NODES, Node, State};

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

/// A set of nodes (bit k: node k), renumbered.
fn bits(mask: u8, p: Perm) -> u8 {
    (0..NODES)
        .filter(|&k| mask & (1 << k) != 0)
        .map(|k| 1 << p[k])
        .sum()
}

/// The nodes of `s`, renumbered: moved to their new places, votes and acknowledgements
/// renamed.
fn nodes(s: &State, p: Perm) -> [Node; NODES] {
    let mut r = s.nodes;
    for (k, n) in s.nodes.iter().enumerate() {
        let m = &mut r[usize::from(p[k])];
        *m = *n;
        m.vote = n.vote.map(|v| p[usize::from(v)]);
        for (j, &matched) in n.matched.iter().enumerate() {
            m.matched[usize::from(p[j])] = matched;
        }
    }
    r
}

/// `msg` with node k renamed `p[k]`.
pub fn msg(msg: Msg, p: Perm) -> Msg {
    let q = |k: u8| p[usize::from(k)];
    match msg {
        Msg::Token {
            to,
            term,
            cand,
            last,
            support,
        } => Msg::Token {
            to: q(to),
            term,
            cand: q(cand),
            last,
            support: bits(support, p),
        },
        Msg::Append {
            to,
            from,
            term,
            log,
            commit,
        } => Msg::Append {
            to: q(to),
            from: q(from),
            term,
            log,
            commit,
        },
        Msg::Ack {
            to,
            from,
            term,
            index,
        } => Msg::Ack {
            to: q(to),
            from: q(from),
            term,
            index,
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
    let q = |k: u8| p[usize::from(k)];
    match a {
        Action::Timeout { node, to } => Action::Timeout {
            node: q(node),
            to: q(to),
        },
        Action::Noop { node } => Action::Noop { node: q(node) },
        Action::Write { node } => Action::Write { node: q(node) },
        Action::Replicate { from, to } => Action::Replicate {
            from: q(from),
            to: q(to),
        },
        Action::Deliver { msg: m, next } => Action::Deliver {
            msg: msg(m, p),
            next: q(next),
        },
        Action::Restart { node } => Action::Restart { node: q(node) },
    }
}

/// The opening and then a run the checker found, the latter's steps renamed from each
/// state's least renumbering back to the numbers the nodes had at the start.
pub fn original_numbers(model: &RoomLog, found: Vec<Action>) -> Vec<Action> {
    let plain = RoomLog {
        symmetry: false,
        ..*model
    };
    let (mut state, mut back) = renumber(model, model.opened(), [0, 1, 2]);
    let mut run = model.opening.to_vec();
    for a in found {
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
