//! Runs replayed step by step in the model: each step must be one the rules allow, and
//! the properties must hold after it. A run a review found is kept here once the rule
//! it broke is mended.

use crate::spec::{Action, ConfigLog};
use crate::state::{Change, FILLER, Msg, State};
use crate::{Bounds, CODE, model};
use stateright::{Expectation, Model};

/// Steps `run` from the start of `m` (no renumbering of the nodes), failing on a step
/// the rules do not allow or a property broken after it; the state reached.
fn replay(m: &ConfigLog, run: &[Action]) -> State {
    let properties = m.properties();
    let mut s = m.init_states().remove(0);
    for (k, &act) in run.iter().enumerate() {
        let mut enabled = Vec::new();
        m.enabled(&s, &mut enabled);
        assert!(
            enabled.contains(&act),
            "step {}: {act:?} not allowed",
            k + 1
        );
        s = m.step(&s, act).expect("a step changes something");
        let broken: Vec<&str> = properties
            .iter()
            .filter(|p| p.expectation == Expectation::Always && !(p.condition)(m, &s))
            .map(|p| p.name)
            .collect();
        assert!(
            broken.is_empty(),
            "step {}: {act:?} broke {broken:?}",
            k + 1
        );
    }
    s
}

/// A copy merged from answers in a take-over that failed is no vote. Voters `a`, `b`,
/// `c`, `d`. `a` leads term 1: `#1` committed by `b` and `c`, then `-c` at #2, which only
/// `a` holds. `c` leads term 2 (`b`, `d` answer): `#1` again, committed, then the
/// sibling `-d` at #2, committed by `b` (2 of `{a, b, c}`); `d` is told #1. `d` wins
/// term 3 and merges `a`'s `-c` from its answer, short of a majority of the four. In
/// term 4 `d` (or `a`) is answered by the other: both hold `-c` of term 1, 2 of
/// `{a, b, d}`, the configuration it makes. Counting `d`'s merged copy as a holder (as
/// [`crate::Quorum::ChainProven`] did before it counted votes only) took that for proof
/// that `-c` committed, and the take-over committed it at #2 beside `-d`.
#[test]
fn a_copy_merged_in_a_failed_take_over_proves_nothing() {
    let bounds = Bounds {
        nodes: 4,
        voters: 4,
        campaigners: 0b1111,
        terms: 4,
        changes: 2,
        log: 2,
        ..crate::code_bounds()
    };
    let m = ConfigLog {
        perms: Vec::new(),
        ..model(CODE, bounds)
    };
    let (a, b, c, d) = (0, 1, 2, 3);
    let sync = |cand, term, to| Action::Deliver {
        msg: Msg::Sync { cand, term },
        to,
        answer: true,
    };
    let propose = |from, term, index, value, to| Action::Deliver {
        msg: Msg::Propose {
            from,
            term,
            index,
            value,
            parent: 0,
        },
        to,
        answer: true,
    };
    // `leader` wins `term` answered by `x` and `y`, has them take a filler at #1, then
    // proposes the removal of `gone`.
    let lead = |leader, term, (x, y), gone| {
        [
            Action::Candidate { node: leader, term },
            sync(leader, term, x),
            sync(leader, term, y),
            Action::TakeOver { node: leader },
            propose(leader, term, 1, FILLER, x),
            propose(leader, term, 1, FILLER, y),
            Action::Change {
                node: leader,
                change: Change::Remove(gone),
            },
        ]
    };
    let mut run = lead(a, 1, (b, c), c).to_vec();
    run.extend(lead(c, 2, (b, d), d));
    run.extend([
        propose(c, 2, 2, Change::Remove(d).value(), b),
        Action::Deliver {
            msg: Msg::Commit {
                from: c,
                term: 2,
                upto: 2,
            },
            to: d,
            answer: true,
        },
        Action::Candidate { node: d, term: 3 },
        sync(d, 3, a),
    ]);
    for (cand, other) in [(d, a), (a, d)] {
        let mut run = run.clone();
        run.extend([
            Action::Candidate {
                node: cand,
                term: 4,
            },
            sync(cand, 4, other),
        ]);
        let s = replay(&m, &run);
        let mut enabled = Vec::new();
        m.enabled(&s, &mut enabled);
        let take_over = Action::TakeOver { node: cand };
        assert!(
            !enabled.contains(&take_over),
            "{cand} takes over with {other} alone: {:?}",
            s.nodes
        );
    }
}
