//! Symmetry reduction. Every node may win every round, a leader may propose any change,
//! and the rules never compare node numbers, so renumbering the nodes within the initial
//! configuration and within the rest maps every run to a run (node numbers inside
//! configuration entries renumbered too), and no property depends on the numbers: the
//! checker needs only one state of each class, the least renumbering.

use crate::spec::{Action, ConfigLog};
use crate::state::{Change, Committed, MAX_LOG, Msg, NOBODY, NODES, Node, Role, Set, Slot, State};

/// A renumbering: node k becomes `p[k]`.
pub type Perm = [u8; NODES];

/// Every renumbering of the first `nodes` nodes that maps each of `classes` onto itself.
pub fn perms(nodes: u8, classes: &[Set]) -> Vec<Perm> {
    let mut all = Vec::new();
    let mut p: Perm = std::array::from_fn(|k| k as u8);
    permute(&mut p, usize::from(nodes), 0, &mut all);
    all.retain(|p| classes.iter().all(|&c| bits(c, *p) == c));
    all.sort_unstable();
    all
}

/// Every ordering of `p[at..n]` after `p[..at]`, into `out`.
fn permute(p: &mut Perm, n: usize, at: usize, out: &mut Vec<Perm>) {
    if at == n {
        out.push(*p);
        return;
    }
    for k in at..n {
        p.swap(at, k);
        permute(p, n, at + 1, out);
        p.swap(at, k);
    }
}

/// Node `k` renumbered (or [`NOBODY`]).
fn id(k: u8, p: Perm) -> u8 {
    if k == NOBODY { k } else { p[usize::from(k)] }
}

/// A set of nodes, renumbered.
fn bits(mask: Set, p: Perm) -> Set {
    (0..NODES)
        .filter(|&k| mask & (1 << k) != 0)
        .map(|k| 1 << p[k])
        .sum()
}

/// A value, the node of a configuration entry renumbered.
fn value(v: u8, p: Perm) -> u8 {
    match Change::of(v) {
        Some(Change::Add(k)) => Change::Add(p[usize::from(k)]).value(),
        Some(Change::Remove(k)) => Change::Remove(p[usize::from(k)]).value(),
        None => v,
    }
}

/// A change, renumbered.
fn change(c: Change, p: Perm) -> Change {
    Change::of(value(c.value(), p)).expect("a change")
}

/// The nodes of `s`, renumbered: moved to their new places, leaders, answers, acks and
/// configuration entries renamed.
fn nodes(s: &State, p: Perm) -> [Node; NODES] {
    let mut r = s.nodes;
    for (k, n) in s.nodes.iter().enumerate() {
        let m = &mut r[usize::from(p[k])];
        *m = *n;
        m.leader = id(n.leader, p);
        for slot in &mut m.log {
            *slot = Slot {
                value: value(slot.value, p),
                ..*slot
            };
        }
        m.role = match n.role {
            Role::Follower => Role::Follower,
            Role::Candidate { answered, holders } => Role::Candidate {
                answered: bits(answered, p),
                holders: holders.map(|h| bits(h, p)),
            },
            Role::Leader {
                acks,
                proposed,
                settles_at,
            } => {
                let mut renamed = [0; MAX_LOG];
                let mut values = [0; MAX_LOG];
                for i in 0..MAX_LOG {
                    renamed[i] = bits(acks[i], p);
                    values[i] = if proposed[i] == 0 {
                        0
                    } else {
                        value(proposed[i] - 1, p) + 1
                    };
                }
                Role::Leader {
                    acks: renamed,
                    proposed: values,
                    settles_at,
                }
            }
        };
    }
    r
}

/// `msg` with node k renamed `p[k]`.
pub fn msg(msg: Msg, p: Perm) -> Msg {
    match msg {
        Msg::Sync { cand, term } => Msg::Sync {
            cand: id(cand, p),
            term,
        },
        Msg::Propose {
            from,
            term,
            index,
            value: v,
            parent,
        } => Msg::Propose {
            from: id(from, p),
            term,
            index,
            value: value(v, p),
            parent,
        },
        Msg::Commit { from, term, upto } => Msg::Commit {
            from: id(from, p),
            term,
            upto,
        },
    }
}

/// `s` renumbered by `p`, whose renumbered `nodes` are given.
fn relabel(s: &State, p: Perm, nodes: [Node; NODES]) -> State {
    let mut net: Vec<Msg> = s.net.iter().map(|&m| msg(m, p)).collect();
    net.sort_unstable();
    let mut committed: Vec<Committed> = s
        .committed
        .iter()
        .map(|&c| Committed {
            value: value(c.value, p),
            ..c
        })
        .collect();
    committed.sort_unstable();
    State {
        nodes,
        net,
        next_value: s.next_value,
        changes: s.changes,
        elected: s.elected.map(|e| bits(e, p)),
        committed,
    }
}

/// What renumbering cannot change about a node: everything but the node numbers in it.
fn key(n: &Node) -> [u8; 4 + 2 * MAX_LOG] {
    let mut k = [0; 4 + 2 * MAX_LOG];
    k[0] = n.term;
    k[1] = n.next;
    k[2] = match n.role {
        Role::Follower => 0,
        Role::Candidate { .. } => 1,
        Role::Leader { .. } => 2,
    };
    k[3] = n.commit.1;
    for (i, s) in n.log.iter().enumerate() {
        k[4 + 2 * i] = s.term;
        k[5 + 2 * i] = s.value & 0xf0;
    }
    k
}

/// The least renumbering of `s`, and the renumbering that gives it. Only renumberings
/// that put the nodes in the order of their [`key`] are tried: renumbering a state does
/// not change its nodes' keys, so every state of a class has the same least one of them.
pub fn canonical(model: &ConfigLog, s: &State) -> (State, Perm) {
    let keys: Vec<_> = s.nodes.iter().map(key).collect();
    let sorted = |p: &Perm| {
        let mut at = [0; NODES];
        for k in 0..usize::from(model.nodes) {
            at[usize::from(p[k])] = k;
        }
        (1..usize::from(model.nodes)).all(|j| {
            // Compared only among nodes that renumbering may swap.
            let class = |k: usize| (model.initial >> k & 1, model.campaigners >> k & 1);
            class(j - 1) != class(j) || keys[at[j - 1]] <= keys[at[j]]
        })
    };
    let renumbered: Vec<([Node; NODES], Perm)> = model
        .perms
        .iter()
        .filter(|p| sorted(p))
        .map(|&p| (nodes(s, p), p))
        .collect();
    let least = renumbered
        .iter()
        .map(|r| r.0)
        .min()
        .expect("a renumbering sorts the nodes");
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
        Action::Change { node, change: c } => Action::Change {
            node: q(node),
            change: change(c, p),
        },
        Action::Deliver { msg: m, to, answer } => Action::Deliver {
            msg: msg(m, p),
            to: q(to),
            answer,
        },
        Action::CatchUp { node, from } => Action::CatchUp {
            node: q(node),
            from: q(from),
        },
        Action::Restart { node } => Action::Restart { node: q(node) },
    }
}

/// A run the checker found, up to the first state where `broken` holds, its steps
/// renamed from each state's least renumbering back to the numbers the nodes had at the
/// start; with the state it ends in.
pub fn original_numbers(
    model: &ConfigLog,
    found: Vec<Action>,
    broken: impl Fn(&State) -> bool,
) -> (Vec<Action>, State) {
    let plain = ConfigLog {
        perms: Vec::new(),
        ..model.clone()
    };
    let identity: Perm = std::array::from_fn(|k| k as u8);
    let mut state = plain.init();
    let mut back = identity;
    let mut run = Vec::new();
    for a in found {
        if broken(&state) {
            break;
        }
        // `a` acts on the least renumbering of `state`; renumbered back, on `state`.
        let original = action(a, back);
        run.push(original);
        state = plain.step(&state, original).expect("the run's steps act");
        if !model.perms.is_empty() {
            let (_, p) = canonical(model, &state);
            back = inverse(p);
        }
    }
    (run, state)
}

/// The renumbering that undoes `p`.
fn inverse(p: Perm) -> Perm {
    let mut r = p;
    for (k, &to) in p.iter().enumerate() {
        r[usize::from(to)] = k as u8;
    }
    r
}
