//! Ring messages passed on: an election token the successor does not take goes past it.

use super::prevote::grant_prevotes;
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

/// Alice's heartbeat reaches bob at `at` (the leader stays alive to him), and bob's
/// timers run.
fn alice_beats(n: &mut Node, at: Instant) {
    let hb = crate::wire::Heartbeat {
        epoch: Some(Epoch {
            term: 0,
            leader: LEADER,
        }),
        delivered: Seq(0),
        digest: n.members().digest(),
        probe: false,
        unknown: false,
    };
    n.handle_datagram(at, addr(1), &datagram(LEADER, vec![Packet::Heartbeat(hb)]));
    n.handle_timeout(at);
}

/// Alice beats to bob every 100 ms over `ms`: how many times `candidate`'s token was passed to dave meanwhile
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
        alice_beats(n, at);
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

/// Neither carol nor dave acks anything: rounds time out and start again (the voters agree
/// each time), and no token of
/// a round already replaced is passed again (the beyond-pass's fate reroutes nothing, and
/// only the current round's token is passed beyond). The beyond-pass is the same pass
/// another way: it does not change the count of election messages.
#[test]
fn a_ring_that_takes_nothing_gets_no_stale_round() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    token_to_carol(&mut n, t0, CAROL);
    let counted = n.stats().election_messages;
    let mut first_sends: Vec<(u64, u64)> = Vec::new();
    let mut seen = BTreeSet::new();
    for m in (0..9000).step_by(50) {
        let at = t0 + Duration::from_millis(m);
        alice_beats(&mut n, at);
        let mut sent = drain(&mut n).sent;
        // A round that timed out asks the voters first: all say yes.
        let asked: Vec<(SocketAddr, Packet)> = sent.clone();
        sent.extend(grant_prevotes(&mut n, at, &asked));
        for (to, p) in sent {
            if let Packet::Data {
                id,
                msg: Message::Election { term, .. },
            } = p
                && seen.insert((to, id))
            {
                first_sends.push((m, term));
            }
        }
        if m == 900 {
            assert_eq!(n.stats().election_messages, counted, "beyond: not counted");
        }
    }
    let mut newest = 0;
    for (m, term) in &first_sends {
        assert!(
            *term >= newest,
            "round {term} passed at {m} ms, after round {newest}: {first_sends:?}"
        );
        newest = newest.max(*term);
    }
    assert!(newest >= 3, "rounds went on: {first_sends:?}");
}

/// A token from a member held offline here is dropped (only a member online here moves a
/// round), but kept: if its sender's word that it is online comes right after (a member
/// back from a pause sends both a few milliseconds apart, and they may arrive the other
/// way round), the token is taken then, not only with its resend 500 ms later. One that
/// comes back later than a round's timeout moves nothing.
#[test]
fn a_token_from_a_member_held_offline_is_taken_once_it_is_back() {
    for (back_after, passed) in [
        (Duration::from_millis(5), true),
        (Duration::from_secs(30), false),
    ] {
        let t0 = base_time();
        let mut n = follower_with_dave(t0);
        n.handle_datagram(
            t0,
            addr(4),
            &member_says((DAVE, "dave", 4), Presence::Offline, 40),
        );
        drain(&mut n);
        assert!(!n.members().is_online(DAVE), "dave held offline");
        let token = Message::Election {
            term: 1,
            candidate: CAROL,
            log: Seq(1000),
        };
        n.handle_datagram(t0, addr(4), &data(DAVE, 5, token));
        assert!(
            drain(&mut n).ids_to(addr(3), token_of(CAROL)).is_empty(),
            "dropped while dave is offline here"
        );
        let back = t0 + back_after;
        n.handle_datagram(
            back,
            addr(4),
            &member_says((DAVE, "dave", 4), Presence::Online, 41),
        );
        assert!(n.members().is_online(DAVE), "dave back");
        let out = drain_after_hold(&mut n, back);
        assert_eq!(
            !out.ids_to(addr(3), token_of(CAROL)).is_empty(),
            passed,
            "back after {back_after:?}"
        );
    }
}

/// The leader stood in a round (begun by members that lost it while it lived) and bob
/// passed its token on: it then leaves. Its token will never come back, and bob, which
/// carried it, swallows every smaller one of the round: he starts a newer round at once
/// (before, only a participant whose dead member was not the leader did, and the round
/// waited for its timeout).
#[test]
fn a_round_carrying_the_leader_that_died_is_started_again() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    assert_eq!(token_to_carol(&mut n, t0, LEADER).len(), 1, "alice's token");
    assert!(n.ring.election_carried(1, LEADER), "bob carried it");
    n.handle_datagram(
        t0,
        addr(1),
        &member_says((LEADER, "alice", 1), Presence::Offline, 1000),
    );
    assert!(!n.members().is_online(LEADER), "alice left");
    let out = drain_after_hold(&mut n, t0);
    assert!(
        out.messages_to(addr(3)).iter().any(
            |m| matches!(m, Message::Election { term, candidate, .. } if *term > 1 && *candidate == BOB)
        ),
        "bob starts a newer round: {:?}",
        out.messages_to(addr(3))
    );
}
