//! The basics of one node: who may speak, malformed and duplicate datagrams, a retried
//! submission, resubmission until committed, direct messages, refused commands, a
//! graceful leave.

use super::*;

/// A member id speaking from another address is someone else: dropped.
#[test]
fn a_member_id_from_another_address_is_dropped() {
    let t0 = base_time();
    let mut n = follower(t0);
    let dm = dm_from_carol("hi");
    n.handle_datagram(t0, addr(99), &data(CAROL, 7, dm));
    let out = drain(&mut n);
    assert!(out.sent.is_empty() && out.events.is_empty());
    assert_eq!(n.stats().dropped, 1);
}

#[test]
fn malformed_datagrams_are_counted_and_change_nothing() {
    let t0 = base_time();
    let mut n = follower(t0);
    let before = n.members().entries().cloned().collect::<Vec<_>>();
    for junk in [&[][..], &[1, 2, 3], &[9; 40], &[1; 3000]] {
        n.handle_datagram(t0, addr(7), junk);
    }
    let out = drain(&mut n);
    assert!(out.sent.is_empty() && out.events.is_empty());
    assert_eq!(n.stats().dropped, 4);
    assert_eq!(n.members().entries().cloned().collect::<Vec<_>>(), before);
}

/// Duplicate suppression: a retransmitted message is acked again but handled once.
#[test]
fn a_duplicate_is_acked_but_shown_once() {
    let t0 = base_time();
    let mut n = follower(t0);
    let dm = dm_from_carol("hi");
    n.handle_datagram(t0, addr(3), &data(CAROL, 7, dm.clone()));
    n.handle_datagram(t0, addr(3), &data(CAROL, 7, dm));
    let out = drain(&mut n);
    let acks = out.acks_to(addr(3));
    assert_eq!(acks.len(), 1, "both copies acked by one packet");
    assert!(acks[0].covers(7) && acks[0].of == CAROL);
    let shown = out
        .events
        .iter()
        .filter(|e| matches!(e, Event::Direct { .. }))
        .count();
    assert_eq!(shown, 1);
    assert_eq!(n.stats().duplicates, 1);
}

/// A retried submission (same origin and origin number) is sequenced once; a retry of
/// one already committed gets the committed message again.
#[test]
fn leader_sequences_a_retried_submission_once() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    // (Transport ids 1 and 2 went to the join and the proof.)
    n.handle_datagram(t0, addr(2), &data(BOB, 3, Message::Submit(submit(1))));
    // The retry comes with a fresh transport id, as after a resubmit.
    n.handle_datagram(t0, addr(2), &data(BOB, 4, Message::Submit(submit(1))));
    let out = drain(&mut n);
    let proposals = out.ids_to(addr(2), |m| matches!(m, Message::Sequenced(_)));
    assert_eq!(proposals.len(), 1, "one proposal for both copies");
    n.handle_datagram(t0, addr(2), &ack_of(n.id(), BOB, &proposals));
    assert_eq!(room_seqs(&drain(&mut n)), vec![2]);
    n.handle_datagram(t0, addr(2), &data(BOB, 5, Message::Submit(submit(1))));
    let out = drain(&mut n);
    assert!(room_seqs(&out).is_empty(), "not shown twice");
    let to_bob: Vec<_> = out
        .messages_to(addr(2))
        .into_iter()
        .filter(|m| matches!(m, Message::Sequenced(_)))
        .collect();
    assert!(
        matches!(to_bob[..], [Message::Sequenced(e)] if e.seq == Seq(2)),
        "the committed message again for the retry: {to_bob:?}"
    );
}

#[test]
fn own_message_is_resubmitted_until_seen_committed() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_command(t0, WallMillis(5), Command::SendAll { text: "hi".into() });
    let out = drain(&mut n);
    let sent = match out.messages_to(addr(1))[..] {
        [Message::Submit(s)] => s.clone(),
        ref other => panic!("one submission: {other:?}"),
    };
    // The leader acks but the sequenced message is lost: resubmit after 3 s.
    let t1 = t0 + Duration::from_secs(3);
    n.handle_timeout(t1);
    let out = drain(&mut n);
    let resubmits = out
        .messages_to(addr(1))
        .into_iter()
        .filter(|m| matches!(m, Message::Submit(s) if s.origin_seq == OriginSeq(1)))
        .count();
    assert!(resubmits >= 1);
    n.handle_datagram(
        t1,
        addr(1),
        &data(LEADER, 9, Message::Sequenced(entry_of(1, BOB, &sent))),
    );
    n.handle_datagram(t1, addr(1), &data(LEADER, 10, commit(1)));
    let out = drain(&mut n);
    assert!(matches!(out.events[..], [Event::Room { mine: true, .. }]));
    assert!(!n.ctx.timers.is_set(Timer::Resubmit));
}

#[test]
fn direct_messages_go_only_to_recipients_and_report_receipts() {
    let t0 = base_time();
    let mut n = follower(t0);
    let before = n.lamport();
    n.handle_command(
        t0,
        WallMillis(0),
        Command::Send {
            to: vec!["carol".into()],
            text: "psst".into(),
        },
    );
    let out = drain(&mut n);
    let own = Event::Direct {
        from: "bob".into(),
        to: vec!["carol".into()],
        lamport: Lamport(before.0 + 1),
        sent_at: WallMillis(0),
        text: "psst".into(),
        offline: false,
        mine: true,
        history: false,
    };
    assert_eq!(out.events, [own], "the sender sees its own message");
    assert_eq!(out.sent.len(), 1);
    let (to, packet) = &out.sent[0];
    assert_eq!(*to, addr(3));
    let Packet::Data { id, .. } = packet else {
        panic!()
    };
    let mut stale = Ack::of_one(NodeId(1), *id);
    n.handle_datagram(
        t0,
        addr(3),
        &datagram(CAROL, vec![Packet::Ack(stale.clone())]),
    );
    assert!(
        drain(&mut n).events.is_empty(),
        "an ack meant for another process"
    );
    stale.of = BOB;
    n.handle_datagram(t0, addr(3), &datagram(CAROL, vec![Packet::Ack(stale)]));
    assert_eq!(
        drain(&mut n).events,
        vec![Event::Receipt { to: "carol".into() }]
    );
}

#[test]
fn bad_commands_are_refused_with_nothing_sent() {
    let t0 = base_time();
    let mut n = follower(t0);
    let cases = [
        (Command::SendAll { text: "  ".into() }, CommandError::Empty),
        (
            Command::SendAll {
                text: "x".repeat(crate::wire::MAX_TEXT_BYTES + 1),
            },
            CommandError::TooLong {
                len: crate::wire::MAX_TEXT_BYTES + 1,
                limit: crate::wire::MAX_TEXT_BYTES,
            },
        ),
        (
            Command::Send {
                to: vec!["zed".into()],
                text: "x".into(),
            },
            CommandError::UnknownRecipient("zed".into()),
        ),
        (
            Command::Send {
                to: vec!["carol".into(), "bob".into()],
                text: "x".into(),
            },
            CommandError::ToSelf,
        ),
    ];
    for (cmd, err) in cases {
        n.handle_command(t0, WallMillis(0), cmd);
        let out = drain(&mut n);
        assert!(out.sent.is_empty());
        assert_eq!(out.events, vec![Event::Error(err)]);
    }
}

#[test]
fn graceful_leave_tells_everyone_then_reports_left() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_command(t0, WallMillis(0), Command::Leave);
    let out = drain(&mut n);
    let notified: Vec<SocketAddr> = out.sent.iter().map(|(a, _)| *a).collect();
    assert_eq!(notified, vec![addr(1), addr(3)]);
    for (to, packet) in out.sent {
        let Packet::Data {
            id,
            msg: Message::Members(m),
        } = packet
        else {
            panic!()
        };
        assert_eq!(m[0].presence, Presence::Offline);
        let from = if to == addr(1) { LEADER } else { CAROL };
        n.handle_datagram(
            t0,
            to,
            &datagram(from, vec![Packet::Ack(Ack::of_one(BOB, id))]),
        );
    }
    assert_eq!(drain(&mut n).events, vec![Event::Left]);
}

/// A member that skipped past its own message (committed where nobody keeps it any more)
/// takes the leader's word that it is settled: it stops submitting it. The same word
/// from another member is not taken.
#[test]
fn own_message_settled_by_the_leader_is_submitted_no_more() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_command(t0, WallMillis(5), Command::SendAll { text: "hi".into() });
    let out = drain(&mut n);
    let submitted = out.ids_to(addr(1), |m| matches!(m, Message::Submit(_)));
    n.handle_datagram(t0, addr(1), &ack_of(BOB, LEADER, &submitted));
    let settled = Message::Settled {
        origin: BOB,
        origin_seq: OriginSeq(1),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 7, settled.clone()));
    assert_eq!(n.unconfirmed(), 1, "carol's word does not settle it");
    let anothers = Message::Settled {
        origin: NodeId(201),
        origin_seq: OriginSeq(1),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, anothers));
    assert_eq!(
        n.unconfirmed(),
        1,
        "nor the leader's word on another process's message"
    );
    n.handle_datagram(t0, addr(1), &data(LEADER, 8, settled));
    assert_eq!(n.unconfirmed(), 0, "the leader's does");
    assert!(!n.ctx.timers.is_set(Timer::Resubmit));
    let t1 = t0 + Duration::from_secs(4);
    n.handle_timeout(t1);
    let out = drain(&mut n);
    let resubmits = out
        .messages_to(addr(1))
        .into_iter()
        .filter(|m| matches!(m, Message::Submit(_)))
        .count();
    assert_eq!(resubmits, 0, "nothing is submitted again");
}
