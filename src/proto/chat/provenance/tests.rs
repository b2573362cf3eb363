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

fn public(n: u8) -> PublicKey {
    key(n).verifying_key().to_bytes()
}

/// Alice's submissions `first..=last` as she hands them over at once: the first with its
/// link, the last sealed with `signer`; with `links`, every one carries its link.
fn run(first: u64, last: u64, signer: &SigningKey, links: bool) -> Vec<Submit> {
    let mut link = seal::chain_start(ALICE);
    let mut out = Vec::new();
    for k in first..=last {
        let mut s = Submit {
            origin_seq: OriginSeq(k),
            committed_below: OriginSeq(first),
            name: "alice".into(),
            lamport: Lamport(k),
            sent_at: WallMillis(0),
            text: format!("m{k}"),
            proof: Provenance::default(),
        };
        let value = seal::chain(&link, &s.written(ALICE));
        s.proof = Provenance {
            link: (links || k == first).then_some(link),
            seal: (k == last).then(|| seal::seal_run(signer, &value)),
        };
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
    let mut done = p.settle_all(&ready, |_| Some(public(1)), &v);
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
    let (_, _, settled) = p.settle_all(&ready, |_| Some(public(1)), &v).pop().unwrap();
    assert_eq!(numbers(&settled), [1, 2]);
    let refused: Vec<u64> = settled.refused.iter().map(|s| s.origin_seq.0).collect();
    assert_eq!(refused, [3, 4]);
}
