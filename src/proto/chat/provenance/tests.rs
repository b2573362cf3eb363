//! Tests of [`Pending`] and [`Vouched`]: runs proven by their seal, whatever order their
//! messages come in, and nothing proven by a seal that does not check.

use super::*;
use crate::ids::{Lamport, WallMillis};
use ed25519_dalek::SigningKey;

const ALICE: NodeId = NodeId(7);
const LEADER: NodeId = NodeId(1);
const MALLORY: NodeId = NodeId(66);

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn public(n: u8) -> crate::wire::PublicKey {
    key(n).verifying_key().to_bytes()
}

/// Alice's submission `k` (`committed_below` as given) chained after `link`, with the
/// proof `prove` makes from its link and chain value; returns it and that value.
fn chained(
    k: u64,
    committed_below: u64,
    link: ChainLink,
    prove: impl FnOnce(ChainLink, ChainLink) -> Provenance,
) -> (Submit, ChainLink) {
    let mut s = Submit {
        origin_seq: OriginSeq(k),
        committed_below: OriginSeq(committed_below),
        name: "alice".into(),
        lamport: Lamport(k),
        sent_at: WallMillis(0),
        text: format!("m{k}"),
        proof: Provenance::default(),
    };
    let value = seal::chain(&link, &s.written(ALICE));
    s.proof = prove(link, value);
    (s, value)
}

/// Alice's submissions `first..=last` as she hands them over at once: the first with its
/// link, the last sealed with `signer`; with `links`, every one carries its link.
fn run(first: u64, last: u64, signer: &SigningKey, links: bool) -> Vec<Submit> {
    let mut link = seal::chain_start(ALICE);
    let mut out = Vec::new();
    for k in first..=last {
        let (s, value) = chained(k, first, link, |link, value| Provenance {
            link: (links || k == first).then_some(link),
            seal: (k == last).then(|| seal::seal_run(signer, &value)),
        });
        link = value;
        out.push(s);
    }
    out
}

fn numbers(s: &Settled<Submit>) -> Vec<u64> {
    s.vouched.iter().map(|(s, _, _)| s.origin_seq.0).collect()
}

/// Offers `s` from `sender`; settles when it could prove something.
fn offer(p: &mut Pending<Submit>, v: &Vouched, sender: NodeId, s: Submit) -> Settled<Submit> {
    let k = s.origin_seq;
    match p.insert(sender, ALICE, k, s, v) {
        Some(true) => p.settle(sender, ALICE, Some(&public(1)), v),
        _ => Settled {
            vouched: Vec::new(),
            refused: Vec::new(),
        },
    }
}

/// A run whose followers leave their link out is proven when its sealed last message
/// comes, all of it, in its origin's order; nothing is proven before.
#[test]
fn a_run_is_proven_by_its_last_message() {
    let (mut p, v) = (Pending::default(), Vouched::default());
    let msgs = run(1, 3, &key(1), false);
    assert!(numbers(&offer(&mut p, &v, ALICE, msgs[0].clone())).is_empty());
    assert!(numbers(&offer(&mut p, &v, ALICE, msgs[1].clone())).is_empty());
    let done = offer(&mut p, &v, ALICE, msgs[2].clone());
    assert_eq!(numbers(&done), [1, 2, 3]);
    assert!(done.refused.is_empty());
    // Each comes back with its link, as the chain says.
    let mut link = seal::chain_start(ALICE);
    for (s, l, value) in &done.vouched {
        assert_eq!(*l, link);
        assert_eq!(*value, seal::chain(&link, &s.written(ALICE)));
        link = *value;
    }
}

/// Out of order (the seal first, the first message last), the run is proven when the
/// last missing one comes.
#[test]
fn a_run_in_any_order_is_proven_once_complete() {
    let (mut p, v) = (Pending::default(), Vouched::default());
    let msgs = run(1, 3, &key(1), false);
    assert!(numbers(&offer(&mut p, &v, ALICE, msgs[2].clone())).is_empty());
    assert!(numbers(&offer(&mut p, &v, ALICE, msgs[1].clone())).is_empty());
    assert_eq!(
        numbers(&offer(&mut p, &v, ALICE, msgs[0].clone())),
        [1, 2, 3]
    );
}

/// A seal made with another key, or over other content, proves nothing: the whole run is
/// refused, and nothing is left waiting.
#[test]
fn a_bad_seal_refuses_the_run() {
    let (mut p, v) = (Pending::default(), Vouched::default());
    for m in run(1, 3, &key(9), true) {
        let done = offer(&mut p, &v, ALICE, m);
        assert!(done.vouched.is_empty());
        if done.refused.len() == 3 {
            return;
        }
    }
    panic!("the run sealed by another key was not refused");
}

/// A message altered on the way: where the ones after it link to it, the run's seal no
/// longer checks and the run is refused; where they carry their own link, they are proven
/// without it, and it (with the ones before) waits for its real copy.
#[test]
fn an_altered_message_is_never_proven() {
    let (mut p, v) = (Pending::default(), Vouched::default());
    let mut msgs = run(1, 3, &key(1), false);
    msgs[1].text = "altered".into();
    offer(&mut p, &v, ALICE, msgs[0].clone());
    offer(&mut p, &v, ALICE, msgs[1].clone());
    let done = offer(&mut p, &v, ALICE, msgs[2].clone());
    assert!(done.vouched.is_empty());
    assert_eq!(done.refused.len(), 3);

    let (mut p, mut v) = (Pending::default(), Vouched::default());
    let genuine = run(1, 3, &key(1), true);
    let mut msgs = genuine.clone();
    msgs[1].text = "altered".into();
    offer(&mut p, &v, ALICE, msgs[0].clone());
    offer(&mut p, &v, ALICE, msgs[1].clone());
    let done = offer(&mut p, &v, ALICE, msgs[2].clone());
    assert_eq!(numbers(&done), [3]);
    let (_, link, value) = &done.vouched[0];
    v.insert(ALICE, OriginSeq(3), *link, *value);
    assert_eq!(
        numbers(&offer(&mut p, &v, ALICE, genuine[1].clone())),
        [1, 2]
    );
}

/// Copies from different senders are never chained together before they are proven: the
/// leader's first message and another member's seal prove nothing; the leader's own seal
/// does.
#[test]
fn copies_from_different_senders_do_not_mix() {
    let (mut p, v) = (Pending::default(), Vouched::default());
    let msgs = run(1, 2, &key(1), false);
    assert!(numbers(&offer(&mut p, &v, LEADER, msgs[0].clone())).is_empty());
    assert!(numbers(&offer(&mut p, &v, MALLORY, msgs[1].clone())).is_empty());
    assert_eq!(numbers(&offer(&mut p, &v, LEADER, msgs[1].clone())), [1, 2]);
}

/// A message without its link after one already vouched for takes that one's chain
/// value; one before a vouched message is proven by it, no seal needed.
#[test]
fn vouched_neighbours_place_and_close_runs() {
    let (mut p, mut v) = (Pending::default(), Vouched::default());
    let msgs = run(1, 3, &key(1), true);
    let link1 = msgs[0].proof.link.unwrap();
    let value1 = seal::chain(&link1, &msgs[0].written(ALICE));
    v.insert(ALICE, OriginSeq(1), link1, value1);
    // Number 2 without its link, sealed: placed after the vouched 1.
    let mut two = msgs[1].clone();
    let value2 = seal::chain(&value1, &two.written(ALICE));
    two.proof = Provenance {
        link: None,
        seal: Some(seal::seal_run(&key(1), &value2)),
    };
    assert_eq!(numbers(&offer(&mut p, &v, ALICE, two)), [2]);
    v.insert(ALICE, OriginSeq(2), value1, value2);
    assert!(v.confirms(&msgs[1].written(ALICE), None).is_some());
    assert!(v.confirms(&msgs[0].written(ALICE), Some([0; 32])).is_none());
    // Numbers 3 and 4 vouched; 3 sent again unsealed is proven by 4's link.
    let value3 = seal::chain(&value2, &msgs[2].written(ALICE));
    v.insert(ALICE, OriginSeq(4), value3, [9; 32]);
    let mut three = msgs[2].clone();
    three.proof.seal = None;
    assert_eq!(numbers(&offer(&mut p, &v, ALICE, three)), [3]);
}

/// A sender that never closes its runs fills its own share only.
#[test]
fn each_sender_waits_within_its_own_share() {
    let (mut p, v) = (Pending::<Submit>::default(), Vouched::default());
    let open = |k: u64| Submit {
        proof: Provenance {
            link: Some([1; 32]),
            seal: None,
        },
        ..run(k, k, &key(1), true)[0].clone()
    };
    for k in 1..=PENDING_PER_SENDER as u64 {
        assert_eq!(
            p.insert(MALLORY, ALICE, OriginSeq(k * 2), open(k * 2), &v),
            Some(false)
        );
    }
    assert_eq!(p.insert(MALLORY, ALICE, OriginSeq(1), open(1), &v), None);
    let msgs = run(1, 1, &key(1), true);
    assert_eq!(numbers(&offer(&mut p, &v, LEADER, msgs[0].clone())), [1]);
    p.retain(|s| s.origin_seq.0 > 100);
    assert_eq!(
        p.insert(MALLORY, ALICE, OriginSeq(1), open(1), &v),
        Some(false)
    );
    p.forget_sender(MALLORY);
    assert!(p.groups.is_empty() && p.per_sender.is_empty());
}

/// Runs that follow on from each other in their origin's chain are proven by the last
/// seal alone (it covers them all): one check for many runs, as when a fetch answer or
/// a burst of proposals brings several; with the last seal bad, each run is judged by
/// its own.
#[test]
fn the_last_seal_of_a_stretch_proves_the_runs_before_it() {
    let (mut p, v) = (Pending::default(), Vouched::default());
    let first = run(1, 2, &key(1), false);
    // The second run goes on from the first one's chain value.
    let mut link = first[0].proof.link.unwrap();
    for s in &first {
        link = seal::chain(&link, &s.written(ALICE));
    }
    let mut second = Vec::new();
    for k in 3..=4u64 {
        let mut s = run(k, k, &key(1), true)[0].clone();
        let value = seal::chain(&link, &s.written(ALICE));
        s.proof = Provenance {
            link: (k == 3).then_some(link),
            seal: (k == 4).then(|| seal::seal_run(&key(1), &value)),
        };
        link = value;
        second.push(s);
    }
    // The first run's seal is not the origin's: the second one's proves it all the same.
    let mut bent = first.clone();
    bent[1].proof.seal = Some(seal::seal_run(&key(9), &[0; 32]));
    for s in bent.iter().chain(&second) {
        p.insert(LEADER, ALICE, s.origin_seq, s.clone(), &v);
    }
    let ready = p.take_ready();
    assert_eq!(ready, [(LEADER, ALICE)]);
    let mut done = p.settle_all(&ready, |_| Some(RunKey::new(&public(1))), &v);
    let (_, _, settled) = done.pop().unwrap();
    assert_eq!(numbers(&settled), [1, 2, 3, 4]);
    assert!(p.take_ready().is_empty());

    // With the last seal bad, the first run still stands on its own; the second is
    // refused.
    let mut p = Pending::default();
    let mut second_bent = second.clone();
    second_bent[1].proof.seal = Some(seal::seal_run(&key(9), &[0; 32]));
    for s in first.iter().chain(&second_bent) {
        p.insert(LEADER, ALICE, s.origin_seq, s.clone(), &v);
    }
    let ready = p.take_ready();
    let (_, _, settled) = p
        .settle_all(&ready, |_| Some(RunKey::new(&public(1))), &v)
        .pop()
        .unwrap();
    assert_eq!(numbers(&settled), [1, 2]);
    let refused: Vec<u64> = settled.refused.iter().map(|s| s.origin_seq.0).collect();
    assert_eq!(refused, [3, 4]);
}

/// The spare group never carries items (nor more room than `SPARE_MAX`), and counts and
/// contents stay as a plain model says, through full senders, settles, retain and forget.
#[test]
fn counts_and_contents_follow_a_model_and_the_spare_stays_empty() {
    use std::collections::BTreeSet as Set;
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = |m: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    // One chain of alice's, sealed at random places, some seals bad.
    let n = 120u64;
    let mut link = seal::chain_start(ALICE);
    let mut msgs = Vec::new();
    for k in 1..=n {
        let sealed = rnd(4) == 0 || k == n;
        let signer = if rnd(6) == 0 { key(2) } else { key(1) };
        let with_link = rnd(3) == 0;
        let (s, value) = chained(k, 1, link, |link, value| Provenance {
            link: with_link.then_some(link),
            seal: sealed.then(|| seal::seal_run(&signer, &value)),
        });
        link = value;
        msgs.push(s);
    }
    let senders = [LEADER, MALLORY, NodeId(3)];
    for round in 0..30 {
        let mut p: Pending<Submit> = Pending::default();
        let v = Vouched::default();
        // Model: what waits, per (sender, origin_seq).
        let mut model: Set<(NodeId, NodeId, u64)> = Set::new();
        // MALLORY fills its share with other origins' messages in some rounds.
        if round % 3 == 0 {
            for i in 0..PENDING_PER_SENDER as u64 {
                let o = NodeId(1000 + i % 50);
                let mut s = msgs[0].clone();
                s.origin_seq = OriginSeq(10_000 + i);
                s.proof.seal = None;
                s.proof.link = Some(seal::chain_start(o));
                assert!(p.insert(MALLORY, o, s.origin_seq, s, &v).is_some());
                model.insert((MALLORY, o, 10_000 + i));
            }
        }
        for _ in 0..600 {
            let sender = senders[rnd(3) as usize];
            let k = rnd(n) as usize;
            let s = msgs[k].clone();
            let r = p.insert(sender, ALICE, s.origin_seq, s, &v);
            if r.is_some() {
                model.insert((sender, ALICE, k as u64 + 1));
            }
            if rnd(4) == 0 || r == Some(true) {
                let ready = p.take_ready();
                let key1 = RunKey::new(&public(1));
                for (snd, org, st) in p.settle_all(&ready, |_| Some(key1), &v) {
                    for (s, _, _) in &st.vouched {
                        assert!(model.remove(&(snd, org, s.origin_seq.0)), "vouched twice");
                    }
                    for s in &st.refused {
                        assert!(model.remove(&(snd, org, s.origin_seq.0)), "refused twice");
                    }
                }
            }
            match rnd(50) {
                0 => {
                    let cut = rnd(n);
                    p.retain(|s| s.origin_seq.0 > cut);
                    model.retain(|(_, o, k)| *o != ALICE || *k > cut);
                }
                1 => {
                    let who = senders[rnd(3) as usize];
                    p.forget_sender(who);
                    model.retain(|(s, _, _)| *s != who);
                }
                _ => {}
            }
            // Invariants.
            assert!(p.spare.is_empty(), "spare carries items");
            assert!(
                p.spare.capacity() <= SPARE_MAX,
                "spare keeps a flood's room"
            );
            let mut counts: BTreeMap<NodeId, usize> = BTreeMap::new();
            let mut have: Set<(NodeId, NodeId, u64)> = Set::new();
            for ((snd, org), g) in &p.groups {
                assert!(!g.is_empty(), "empty group stored");
                *counts.entry(*snd).or_default() += g.len();
                for (k, _) in g.iter() {
                    have.insert((*snd, *org, k.0));
                }
            }
            assert_eq!(counts, p.per_sender, "per-sender counts");
            assert_eq!(have, model, "contents");
        }
    }
}

/// A run of `n` of alice's messages from `first` on, chained from `link`, sealed by her at
/// the last; returns them and the chain value after them.
fn sealed_run(first: u64, n: u64, mut link: ChainLink) -> (Vec<Submit>, ChainLink) {
    let mut run = Vec::new();
    for k in first..first + n {
        let (s, value) = chained(k, 1, link, |link, value| Provenance {
            link: Some(link),
            seal: (k + 1 == first + n).then(|| seal::seal_run(&key(1), &value)),
        });
        link = value;
        run.push(s);
    }
    (run, link)
}

/// An emptied group's room is kept for the next group, but not a flood's: past
/// `SPARE_MAX` it is let go.
#[test]
fn the_spare_keeps_a_runs_room_but_not_a_floods() {
    let v = Vouched::default();
    let key1 = RunKey::new(&public(1));
    let mut p: Pending<Submit> = Pending::default();
    let settle = |p: &mut Pending<Submit>, run: Vec<Submit>| {
        let n = run.len();
        for s in run {
            p.insert(LEADER, ALICE, s.origin_seq, s, &v);
        }
        let ready = p.take_ready();
        let settled = p.settle_all(&ready, |_| Some(key1), &v);
        assert_eq!(settled.len(), 1);
        assert_eq!(settled[0].2.vouched.len(), n, "the whole run is proven");
        assert!(p.groups.is_empty());
    };
    let (run, link) = sealed_run(1, 100, seal::chain_start(ALICE));
    settle(&mut p, run);
    assert!(
        p.spare.is_empty() && p.spare.capacity() >= 100,
        "a run's room is kept"
    );
    let (run, _) = sealed_run(101, SPARE_MAX as u64 + 100, link);
    settle(&mut p, run);
    assert!(p.spare.is_empty());
    assert!(
        p.spare.capacity() <= SPARE_MAX,
        "a flood's room is let go: {}",
        p.spare.capacity()
    );
}

/// Vouched keeps what a member holding a hold-back queue's worth of one origin needs:
/// an old number vouched for after thousands of newer ones stays (with a bound per
/// origin of 1 024 it was forgotten at once), and the whole stays within
/// [`VOUCHED_MAX`], forgetting the oldest of the origin with the most.
#[test]
fn vouched_keeps_a_hold_back_queues_worth_of_one_origin_within_its_bound() {
    let mut v = Vouched::default();
    let newest = MAX_HOLDBACK as u64 + 100;
    for k in 101..=newest {
        v.insert(ALICE, OriginSeq(k), [1; 32], [2; 32]);
    }
    v.insert(ALICE, OriginSeq(100), [3; 32], [4; 32]);
    assert!(
        v.get(ALICE, OriginSeq(100)).is_some(),
        "an old number stays"
    );
    assert!(v.get(ALICE, OriginSeq(newest)).is_some());
    // Another origin, then more of alice's than the bound holds.
    for k in 1..=50 {
        v.insert(LEADER, OriginSeq(k), [5; 32], [6; 32]);
    }
    for k in newest + 1..=3 * MAX_HOLDBACK as u64 {
        v.insert(ALICE, OriginSeq(k), [1; 32], [2; 32]);
    }
    assert!(v.total <= VOUCHED_MAX, "{} remembered", v.total);
    let counted: usize = v.by_origin.values().map(VecDeque::len).sum();
    assert_eq!(counted, v.total, "the count is the contents'");
    assert!(
        v.get(LEADER, OriginSeq(1)).is_some(),
        "the origin with fewer keeps its own"
    );
    assert!(
        v.get(ALICE, OriginSeq(100)).is_none(),
        "alice's oldest went"
    );
    assert!(v.get(ALICE, OriginSeq(3 * MAX_HOLDBACK as u64)).is_some());
}

/// With many origins sharing the bound, forgetting never takes an origin's newest
/// values: its next message, sent without its link, is placed after them.
#[test]
fn a_full_vouched_keeps_every_origins_newest() {
    let mut v = Vouched::default();
    let origins = 100u64;
    let each = (VOUCHED_MAX as u64 / origins) + 1;
    for k in 1..=each {
        for o in 0..origins {
            v.insert(NodeId(1000 + o), OriginSeq(k), [1; 32], [2; 32]);
        }
    }
    assert!(v.total <= VOUCHED_MAX);
    for o in 0..origins {
        assert!(
            v.get(NodeId(1000 + o), OriginSeq(each)).is_some(),
            "origin {o} kept its newest"
        );
    }
}
