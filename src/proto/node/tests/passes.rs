//! Ring messages passed on: an election token the successor does not take goes past it.

use super::terms::follower_with_dave;
use super::*;
use std::collections::BTreeSet;

const DAVE: NodeId = NodeId(400);

/// Whether `m` is the round-1 token of `candidate`.
fn token_of(candidate: NodeId) -> impl Fn(&Message) -> bool {
    move |m| matches!(m, Message::Election { term: 1, candidate: c, .. } if *c == candidate)
}

/// Bob, with ring alice (100) → bob (200) → carol (300) → dave (400), gets `candidate`'s
/// round-1 token from alice's side and passes it to carol: the packets that carried it.
fn token_to_carol(n: &mut Node, t0: Instant, candidate: NodeId) -> Vec<MsgId> {
    let token = Message::Election {
        term: 1,
        candidate,
        log: Seq(1000),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, token));
    drain(n).ids_to(addr(3), token_of(candidate))
}

/// Alice beats to bob every 100 ms over `ms` (the leader stays alive to him), and bob's
/// timers run at each: how many times `candidate`'s token was passed to dave meanwhile
/// (resends of one pass left out).
fn to_dave_while_beating(
    n: &mut Node,
    t0: Instant,
    ms: std::ops::Range<u64>,
    candidate: NodeId,
) -> usize {
    let mut sent = BTreeSet::new();
    for m in ms.step_by(100) {
        let at = t0 + Duration::from_millis(m);
        let hb = crate::wire::Heartbeat {
            epoch: Some(Epoch {
                term: 0,
                leader: LEADER,
            }),
            delivered: Seq(0),
            digest: n.members().digest(),
            probe: false,
        };
        n.handle_datagram(at, addr(1), &datagram(LEADER, vec![Packet::Heartbeat(hb)]));
        n.handle_timeout(at);
        sent.extend(drain(n).ids_to(addr(4), token_of(candidate)));
    }
    sent.len()
}

/// Carol never acks bob's pass of the token (her table lacks bob, say): a quarter of the
/// election timeout later it goes to dave as well, once; the round does not wait for her.
#[test]
fn a_token_the_successor_does_not_take_goes_past_it() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    assert_eq!(token_to_carol(&mut n, t0, CAROL).len(), 1, "to carol first");
    let patience = (n.ctx.cfg.election_timeout / 4).as_millis() as u64;
    assert_eq!(
        to_dave_while_beating(&mut n, t0, 0..patience, CAROL),
        0,
        "not before {patience} ms"
    );
    assert_eq!(
        to_dave_while_beating(&mut n, t0, patience..1500, CAROL),
        1,
        "past carol to dave, once"
    );
}

/// The same, but carol acks the token: it goes nowhere else.
#[test]
fn a_token_the_successor_takes_goes_no_further() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    let ids = token_to_carol(&mut n, t0, DAVE);
    assert_eq!(ids.len(), 1, "dave's token to carol");
    n.handle_datagram(t0, addr(3), &ack_of(BOB, CAROL, &ids));
    assert_eq!(to_dave_while_beating(&mut n, t0, 0..1500, DAVE), 0);
}
