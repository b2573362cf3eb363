//! Heartbeats round the ring: to the successor only, the predecessor watched, the beat
//! followed, and table digests compared both ways.

use super::*;
use crate::wire::{Heartbeat, decode};

/// The heartbeats a node sent, with their destinations (everything else drained too).
fn heartbeats(node: &mut Node) -> Vec<(SocketAddr, Heartbeat)> {
    let mut out = Vec::new();
    while let Some(t) = node.poll_transmit() {
        let env = decode(&t.bytes).expect("node sends valid datagrams");
        for p in env.packets {
            if let Packet::Heartbeat(hb) = p {
                out.push((t.to, hb));
            }
        }
    }
    while node.poll_event().is_some() {}
    out
}

/// A heartbeat from `from` (a member) with `digest`, as a datagram.
fn beat(from: NodeId, digest: u64, probe: bool) -> Vec<u8> {
    let hb = Heartbeat {
        epoch: Some(Epoch {
            term: 0,
            leader: LEADER,
        }),
        delivered: Seq(0),
        digest,
        probe,
        unknown: false,
    };
    datagram(from, vec![Packet::Heartbeat(hb)])
}

/// Bob's ring is alice (100) → bob (200) → carol (300) → alice: his heartbeats go to
/// carol alone, every interval.
#[test]
fn heartbeats_go_to_the_successor_only() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_timeout(t0);
    let first = heartbeats(&mut n);
    assert_eq!(
        first.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        [addr(3)]
    );
    n.handle_timeout(t0 + Duration::from_millis(99));
    assert!(heartbeats(&mut n).is_empty());
    n.handle_timeout(t0 + Duration::from_millis(100));
    let second = heartbeats(&mut n);
    assert_eq!(
        second.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        [addr(3)]
    );
}

/// The predecessor's beat pulls ours forward when ours is due within half an interval,
/// and not when it is further off; a beat from the successor never does.
#[test]
fn the_predecessors_beat_is_followed_when_ours_is_near() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_timeout(t0);
    assert_eq!(heartbeats(&mut n).len(), 1, "the first beat, at t0");
    let digest = n.members().digest();
    let early = t0 + Duration::from_millis(40);
    n.handle_datagram(early, addr(1), &beat(LEADER, digest, false));
    assert!(heartbeats(&mut n).is_empty(), "60 ms off: not yet");
    let near = t0 + Duration::from_millis(60);
    n.handle_datagram(near, addr(3), &beat(CAROL, digest, false));
    assert!(
        heartbeats(&mut n).is_empty(),
        "carol is not the predecessor"
    );
    n.handle_datagram(near, addr(1), &beat(LEADER, digest, false));
    let sent = heartbeats(&mut n);
    assert_eq!(
        sent.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        [addr(3)],
        "40 ms off: sent with alice's"
    );
    // The next is an interval after it, by the timer if alice's beat does not come first.
    n.handle_timeout(near + Duration::from_millis(99));
    assert!(heartbeats(&mut n).is_empty());
    n.handle_timeout(near + Duration::from_millis(100));
    assert_eq!(heartbeats(&mut n).len(), 1);
    // Alice's next beat, an interval later, is followed again.
    let next = near + Duration::from_millis(199);
    n.handle_datagram(next, addr(1), &beat(LEADER, digest, false));
    assert_eq!(heartbeats(&mut n).len(), 1);
}

/// A heartbeat whose digest differs from ours gets our table and our own heartbeat back
/// (so that the sender, who does not hear our beats, sends its table too); a matching
/// one gets nothing.
#[test]
fn a_different_digest_gets_our_table_and_a_beat_back() {
    let t0 = base_time();
    let mut n = follower(t0);
    heartbeats(&mut n);
    let later = t0 + Duration::from_millis(10);
    n.handle_datagram(later, addr(1), &beat(LEADER, n.members().digest(), false));
    assert!(drain(&mut n).messages_to(addr(1)).is_empty());
    n.handle_datagram(later, addr(1), &beat(LEADER, 12345, false));
    let mut tables = 0;
    let mut beats = 0;
    while let Some(t) = n.poll_transmit() {
        for p in decode(&t.bytes).unwrap().packets {
            match p {
                Packet::Data {
                    msg: Message::Members(_),
                    ..
                } if t.to == addr(1) => tables += 1,
                Packet::Heartbeat(hb) if t.to == addr(1) => {
                    assert_eq!(hb.digest, n.members().digest());
                    beats += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!((tables, beats), (1, 1));
}

/// Only the predecessor is watched: a silent successor is not declared dead by us, a
/// silent predecessor is.
#[test]
fn only_the_predecessor_is_judged() {
    let t0 = base_time();
    let mut n = follower(t0);
    heartbeats(&mut n);
    let digest = n.members().digest();
    // Carol (successor) stays silent; alice (predecessor) beats until 200 ms, then stops.
    for ms in [0, 100, 200] {
        let at = t0 + Duration::from_millis(ms);
        n.handle_datagram(at, addr(1), &beat(LEADER, digest, false));
        n.handle_timeout(at);
        drain(&mut n);
    }
    let mut t = t0 + Duration::from_millis(200);
    let end = t0 + Duration::from_millis(700);
    while t < end {
        t += Duration::from_millis(5);
        n.handle_timeout(t);
        drain(&mut n);
    }
    assert!(
        n.members().is_online(CAROL),
        "the successor is watched by its own successor"
    );
    assert!(
        !n.members().is_online(LEADER),
        "the predecessor, silent for 500 ms, is cut out"
    );
}

/// The probe heartbeats a node sent to `to` (everything else drained too).
fn probes_to(node: &mut Node, to: SocketAddr) -> usize {
    heartbeats(node)
        .iter()
        .filter(|(a, hb)| *a == to && hb.probe)
        .count()
}

/// Asked by the leader to probe carol, bob probes her at once and again every quarter
/// heartbeat while she is silent, for the 150 ms the leader gives him (a probe or its
/// answer may be lost), and no longer; once she answers he says so and stops.
#[test]
fn a_member_asked_to_probe_probes_again_until_answered() {
    let t0 = base_time();
    let mut n = follower(t0);
    heartbeats(&mut n);
    let ask = Message::ProbeFor { target: CAROL };
    n.handle_datagram(t0, addr(1), &data(LEADER, 50, ask.clone()));
    assert_eq!(probes_to(&mut n, addr(3)), 1, "probed at once");
    let mut again = 0;
    let mut t = t0;
    while t < t0 + Duration::from_millis(400) {
        t += Duration::from_millis(5);
        n.handle_timeout(t);
        let p = probes_to(&mut n, addr(3));
        if p > 0 {
            assert!(
                t <= t0 + Duration::from_millis(150),
                "probed again at {:?}",
                t - t0
            );
        }
        again += p;
    }
    assert!(
        (4..=6).contains(&again),
        "{again} probes after the first, within 150 ms"
    );
    // Asked again, and she answers: the leader hears it, and the probes stop.
    let t1 = t0 + Duration::from_millis(1000);
    n.handle_datagram(t1, addr(1), &data(LEADER, 51, ask));
    assert_eq!(probes_to(&mut n, addr(3)), 1);
    let digest = n.ring.members().digest();
    n.handle_datagram(t1, addr(3), &beat(CAROL, digest, false));
    let out = drain(&mut n);
    assert!(
        out.messages_to(addr(1))
            .iter()
            .any(|m| matches!(m, Message::Alive { target } if *target == CAROL)),
        "the leader is told she answered"
    );
    for k in 1..40 {
        n.handle_timeout(t1 + Duration::from_millis(5 * k));
        assert_eq!(probes_to(&mut n, addr(3)), 0, "no probe once she answered");
    }
}

/// Asked to probe carol, bob takes only an answer (or a beat) from her as a sign for the
/// leader, not a probe of hers: a probe shows she sends, not that she hears (a deaf
/// member probes the members it cut out, and would be vouched for by each).
#[test]
fn a_probe_from_the_member_probed_vouches_for_nothing() {
    let t0 = base_time();
    let mut n = follower(t0);
    heartbeats(&mut n);
    let ask = Message::ProbeFor { target: CAROL };
    n.handle_datagram(t0, addr(1), &data(LEADER, 50, ask));
    drain(&mut n);
    let told = |out: &Out| {
        out.messages_to(addr(1))
            .iter()
            .any(|m| matches!(m, Message::Alive { target } if *target == CAROL))
    };
    let digest = n.ring.members().digest();
    let at = t0 + Duration::from_millis(10);
    n.handle_datagram(at, addr(3), &beat(CAROL, digest, true));
    let out = drain(&mut n);
    assert!(
        !told(&out),
        "her probe vouches for nothing: {:?}",
        out.messages_to(addr(1))
    );
    n.handle_datagram(at, addr(3), &beat(CAROL, digest, false));
    assert!(told(&drain(&mut n)), "her answer does");
}

/// Whether bob told the leader (port 1) that he is probing carol.
fn says_probing(out: &Out) -> bool {
    out.messages_to(addr(1))
        .iter()
        .any(|m| matches!(m, Message::Probing { target } if *target == CAROL))
}

/// Bob says he probes carol for the leader only once carol reached him within a session
/// (she knows of him, so her silence to his probes means something); he probes her
/// either way.
#[test]
fn a_member_says_it_probes_only_a_member_that_knows_of_it() {
    let t0 = base_time();
    let mut n = follower(t0);
    drain(&mut n);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 50, Message::ProbeFor { target: CAROL }),
    );
    assert!(
        !says_probing(&drain(&mut n)),
        "carol, only met in bob's welcome, never reached him"
    );
    // Any datagram of hers within a session (an ack, here) says she holds his key.
    n.handle_datagram(t0, addr(3), &ack_of(BOB, CAROL, &[MsgId(999)]));
    drain(&mut n);
    let t1 = t0 + Duration::from_millis(1000);
    n.handle_datagram(
        t1,
        addr(1),
        &data(LEADER, 51, Message::ProbeFor { target: CAROL }),
    );
    assert!(
        says_probing(&drain(&mut n)),
        "carol reached bob: he says so"
    );
}

/// Bob's predecessor (alice here) beats that it delivered less than bob showed: the first
/// such beat gets nothing back, a second with no progress gets bob's beat (with how far
/// the room is), one that moved on gets nothing, and neither does one that caught up.
#[test]
fn a_stalled_predecessor_is_told_how_far_the_room_is() {
    let t0 = base_time();
    let mut n = follower_welcomed_as(t0, |w| {
        w.next_seq = Seq(11);
        w.oldest = Seq(11);
        w.pending_from = Seq(11);
    })
    .0;
    heartbeats(&mut n);
    let digest = n.members().digest();
    let beat_at = |delivered: u64| {
        let hb = Heartbeat {
            epoch: Some(Epoch {
                term: 0,
                leader: LEADER,
            }),
            delivered: Seq(delivered),
            digest,
            probe: false,
            unknown: false,
        };
        datagram(LEADER, vec![Packet::Heartbeat(hb)])
    };
    let mut told = Vec::new();
    for (k, delivered) in [4, 4, 5, 5, 10, 10].into_iter().enumerate() {
        let at = t0 + Duration::from_millis(100 * k as u64 + 1);
        n.handle_datagram(at, addr(1), &beat_at(delivered));
        let back: Vec<Seq> = heartbeats(&mut n)
            .into_iter()
            .filter(|(to, _)| *to == addr(1))
            .map(|(_, hb)| hb.delivered)
            .collect();
        told.push(back);
    }
    let ten = vec![Seq(10)];
    assert_eq!(told, [vec![], ten.clone(), vec![], ten, vec![], vec![]]);
}

/// A member that follows an older epoch than this node (its beat names it, or it submits
/// to this node, which does not lead) gets our heartbeat, naming ours, at most once a
/// second: a member cut from its predecessor that missed a round's announcement hears
/// of the new epoch from nobody else. (Before: it submitted to its old leader, still a
/// member, for good.)
#[test]
fn a_member_following_an_older_epoch_is_told_ours() {
    use super::terms::{DAVE, carols_win_announced, epoch, follower_with_dave};
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    carols_win_announced(&mut n, t0);
    assert_eq!(n.epoch(), Some(epoch(1, CAROL)));
    drain(&mut n);
    let epochs_to = |n: &mut Node, to: SocketAddr| -> Vec<Option<Epoch>> {
        heartbeats(n)
            .into_iter()
            .filter(|(a, _)| *a == to)
            .map(|(_, hb)| hb.epoch)
            .collect()
    };
    // Dave's beat, naming `e`, with our table's digest (a different one is answered
    // anyway, see above).
    let dave_names = |n: &Node, e: Epoch| {
        let hb = Heartbeat {
            epoch: Some(e),
            digest: n.members().digest(),
            delivered: Seq(0),
            probe: false,
            unknown: false,
        };
        datagram(DAVE, vec![Packet::Heartbeat(hb)])
    };
    let at = t0 + Duration::from_millis(10);
    n.handle_datagram(at, addr(4), &dave_names(&n, epoch(0, LEADER)));
    assert_eq!(epochs_to(&mut n, addr(4)), [Some(epoch(1, CAROL))]);
    // Once a second, whatever it says meanwhile.
    let soon = at + Duration::from_millis(500);
    n.handle_datagram(soon, addr(4), &dave_names(&n, epoch(0, LEADER)));
    n.handle_datagram(soon, addr(4), &data(DAVE, 2, Message::Submit(submit(1))));
    assert!(epochs_to(&mut n, addr(4)).is_empty());
    // A submission to this node, which does not lead, is answered the same way.
    let later = at + Duration::from_secs(1);
    n.handle_datagram(later, addr(4), &data(DAVE, 3, Message::Submit(submit(2))));
    assert_eq!(epochs_to(&mut n, addr(4)), [Some(epoch(1, CAROL))]);
    // A member of our epoch is told nothing.
    let after = later + Duration::from_secs(2);
    n.handle_datagram(after, addr(4), &dave_names(&n, epoch(1, CAROL)));
    assert!(epochs_to(&mut n, addr(4)).is_empty());
}
