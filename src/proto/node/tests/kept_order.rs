//! A sender's messages for an offline recipient reach the leader's queue in the order it
//! wrote them: one store request out at a time per recipient (reliable messages may
//! overtake each other, and the leader keeps and hands over in the order they come), and
//! none while a message written before it is still on its way to that recipient directly.

use super::*;

/// Carol, as bob's table has her, with `presence` stamped at `lamport`.
fn carol_is(presence: Presence, lamport: u64) -> Member {
    Member {
        presence,
        stamp: Stamp {
            lamport: Lamport(lamport),
            by: CAROL,
        },
        ..member(CAROL, "carol", 3)
    }
}

fn send_to_carol(n: &mut Node, t: Instant, text: &str) {
    let send = Command::Send {
        to: vec!["carol".into()],
        text: text.into(),
    };
    n.handle_command(t, WallMillis(0), send);
}

/// The leader's word that it keeps bob's message `id` (for carol).
fn saved(id: u64) -> Message {
    Message::Saved {
        id: DmId(id),
        to: 0,
        full: None,
    }
}

/// The leader's word that bob's message `id` was handed over to carol.
fn dequeued(n: &Node, id: u64) -> Message {
    Message::Dequeued {
        origin: n.id(),
        id: DmId(id),
        to: 0,
    }
}

/// The ids of the messages bob asked the leader (port 1) to keep.
fn stores(out: &Out) -> Vec<DmId> {
    out.messages_to(addr(1))
        .into_iter()
        .filter_map(|m| match m {
            Message::Store { dm, .. } => Some(dm.id),
            _ => None,
        })
        .collect()
}

#[test]
fn one_store_request_per_recipient_is_out_at_a_time() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.ring.merge(carol_is(Presence::Offline, 9));
    send_to_carol(&mut n, t0, "one");
    send_to_carol(&mut n, t0, "two");
    assert_eq!(stores(&drain(&mut n)), vec![DmId(1)], "the first only");

    // Asked again later (no answer yet): still the first only.
    let later = t0 + Duration::from_secs(3);
    n.handle_timeout(later);
    let again = stores(&drain(&mut n));
    assert!(
        again.iter().all(|id| *id == DmId(1)),
        "only the first is asked again: {again:?}"
    );

    // The leader kept the first: the second goes.
    n.handle_datagram(later, addr(1), &data(LEADER, 50, saved(1)));
    assert_eq!(stores(&drain(&mut n)), vec![DmId(2)]);
}

#[test]
fn a_store_request_waits_for_an_earlier_message_still_on_its_way_directly() {
    let t0 = base_time();
    let mut n = follower(t0);
    send_to_carol(&mut n, t0, "one");
    let out = drain(&mut n);
    let direct = out.ids_to(addr(3), |m| matches!(m, Message::Direct(_)));
    assert_eq!(direct.len(), 1, "sent to carol directly: {:?}", out.sent);

    // Carol goes offline before acking it; the next message is for the leader's queue,
    // but waits: if "one" is never acked, it is kept first.
    n.ring.merge(carol_is(Presence::Offline, 9));
    send_to_carol(&mut n, t0, "two");
    assert!(
        stores(&drain(&mut n)).is_empty(),
        "waits for the first's fate"
    );

    // Carol did take "one": "two" may be kept now.
    n.handle_datagram(t0, addr(3), &ack_of(n.id(), CAROL, &direct));
    assert_eq!(stores(&drain(&mut n)), vec![DmId(2)]);
}

/// Carol is offline; bob asks the leader to keep "one" for her (the only store request
/// out), and the leader acks the request (it has not answered it yet).
fn ask_to_keep_one(n: &mut Node, t0: Instant) {
    n.ring.merge(carol_is(Presence::Offline, 9));
    send_to_carol(n, t0, "one");
    let out = drain(n);
    assert_eq!(stores(&out), vec![DmId(1)]);
    let store = out.ids_to(addr(1), |m| matches!(m, Message::Store { .. }));
    n.handle_datagram(t0, addr(1), &ack_of(n.id(), LEADER, &store));
}

/// The private messages bob sent carol (port 3) directly, by id.
fn directs_to_carol(out: &Out) -> Vec<DmId> {
    out.messages_to(addr(3))
        .into_iter()
        .filter_map(|m| match m {
            Message::Direct(dm) => Some(dm.id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_direct_message_waits_for_the_one_before_it_to_be_acked() {
    let t0 = base_time();
    let mut n = follower(t0);
    send_to_carol(&mut n, t0, "one");
    let out = drain(&mut n);
    let first = out.ids_to(addr(3), |m| matches!(m, Message::Direct(_)));
    assert_eq!(directs_to_carol(&out), vec![DmId(1)]);
    send_to_carol(&mut n, t0, "two");
    send_to_carol(&mut n, t0, "three");
    assert!(
        directs_to_carol(&drain(&mut n)).is_empty(),
        "a lost first try of \"one\" could be overtaken"
    );

    n.handle_datagram(t0, addr(3), &ack_of(n.id(), CAROL, &first));
    let out = drain(&mut n);
    assert_eq!(directs_to_carol(&out), vec![DmId(2)], "then the next only");
    let receipts = out
        .events
        .iter()
        .filter(|e| matches!(e, Event::Receipt { .. }));
    assert_eq!(receipts.count(), 1);
    let second = out.ids_to(addr(3), |m| matches!(m, Message::Direct(_)));
    n.handle_datagram(t0, addr(3), &ack_of(n.id(), CAROL, &second));
    assert_eq!(directs_to_carol(&drain(&mut n)), vec![DmId(3)]);
}

#[test]
fn a_direct_message_never_acked_is_kept_and_those_behind_it_follow_through_the_queue() {
    let t0 = base_time();
    let mut n = follower(t0);
    send_to_carol(&mut n, t0, "one");
    send_to_carol(&mut n, t0, "two");
    drain(&mut n);
    // Carol never acks (nor does anyone else: the leader is lost too, so nothing is
    // asked of it). After the retries "one" waits to be kept, and "two", though carol is
    // still online in bob's table, is never sent to her directly: it waits behind "one".
    let mut t = t0;
    let mut direct = Vec::new();
    while t < t0 + Duration::from_secs(10) {
        t += Duration::from_millis(100);
        n.handle_timeout(t);
        direct.extend(directs_to_carol(&drain(&mut n)));
    }
    assert!(direct.iter().all(|id| *id == DmId(1)), "{direct:?}");
    assert_eq!(n.mail.unsaved_len(), 2, "both wait to be kept");
    assert_eq!(
        n.mail.first_unsaved_for("carol"),
        Some((DmId(1), 0)),
        "\"one\" is kept first"
    );
}

#[test]
fn a_message_for_a_member_back_online_follows_ours_the_leader_still_keeps_for_it() {
    let t0 = base_time();
    let mut n = follower(t0);
    ask_to_keep_one(&mut n, t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 50, saved(1)));
    drain(&mut n);

    // Carol is back, but "one" is not yet handed over: "two" goes behind it.
    n.ring.merge(carol_is(Presence::Online, 10));
    send_to_carol(&mut n, t0, "two");
    let out = drain(&mut n);
    assert_eq!(
        stores(&out),
        vec![DmId(2)],
        "{:?} {:?}",
        out.sent,
        out.events
    );
    assert!(directs_to_carol(&out).is_empty(), "{:?}", out.sent);

    // The leader says "one" was handed over: the next goes to carol directly.
    n.handle_datagram(t0, addr(1), &data(LEADER, 51, dequeued(&n, 1)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 52, saved(2)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 53, dequeued(&n, 2)));
    drain(&mut n);
    send_to_carol(&mut n, t0, "three");
    assert_eq!(directs_to_carol(&drain(&mut n)), vec![DmId(3)]);
}

/// The leader's word that "one" was handed over came before its "saved" and before
/// bob's replica of it: bob knows "one" is gone, and "two" goes to carol directly.
#[test]
fn word_of_a_hand_over_before_the_saved_notice_is_not_lost() {
    let t0 = base_time();
    let mut n = follower(t0);
    ask_to_keep_one(&mut n, t0);
    n.ring.merge(carol_is(Presence::Online, 10));
    n.handle_datagram(t0, addr(1), &data(LEADER, 51, dequeued(&n, 1)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 52, saved(1)));
    drain(&mut n);
    send_to_carol(&mut n, t0, "two");
    let out = drain(&mut n);
    assert_eq!(directs_to_carol(&out), vec![DmId(2)], "{:?}", out.sent);
    assert!(stores(&out).is_empty());
}

/// A message behind earlier ones that the queue refuses is not called one for an
/// offline member: carol is online.
#[test]
fn a_refused_message_behind_earlier_ones_says_why() {
    let t0 = base_time();
    let mut n = follower(t0);
    ask_to_keep_one(&mut n, t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 50, saved(1)));
    n.ring.merge(carol_is(Presence::Online, 10));
    drain(&mut n);
    send_to_carol(&mut n, t0, "two");
    assert_eq!(stores(&drain(&mut n)), vec![DmId(2)], "behind \"one\"");
    let refused = Message::Saved {
        id: DmId(2),
        to: 0,
        full: Some(crate::wire::QueueLimit::Sender),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 52, refused));
    let reasons: Vec<String> = drain(&mut n)
        .events
        .into_iter()
        .filter_map(|e| match e {
            Event::Undelivered { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("behind your earlier messages to carol")
            && !reasons[0].contains("offline"),
        "{reasons:?}"
    );
}

/// Bob leaves for good with private messages not yet sent (held behind one carol never
/// acks): he waits for them up to the leave timeout, then is told of each one not sent
/// nor kept.
#[test]
fn leaving_for_good_tells_of_private_messages_never_sent() {
    let t0 = base_time();
    let mut n = follower(t0);
    for text in ["one", "two", "three"] {
        send_to_carol(&mut n, t0, text);
    }
    drain(&mut n);
    n.handle_command(t0, WallMillis(0), Command::Leave);
    let mut t = t0;
    let mut events = Vec::new();
    while t < t0 + Duration::from_secs(20) {
        t += Duration::from_millis(100);
        n.handle_timeout(t);
        let out = drain(&mut n);
        // The leader acks whatever bob sends it (his leave notice among it), and keeps
        // nothing.
        let ids = out.ids_to(addr(1), |_| true);
        if !ids.is_empty() {
            n.handle_datagram(t, addr(1), &ack_of(n.id(), LEADER, &ids));
        }
        events.extend(out.events);
    }
    assert!(
        events.iter().any(|e| matches!(e, Event::Left)),
        "{events:?}"
    );
    let undelivered: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Undelivered { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(undelivered, ["one", "two", "three"], "{events:?}");
    assert_eq!(n.mail.unsaved_len(), 0);
}

/// Bob restarted (a new node id) with one of his messages for carol in his replica of
/// the queue, not yet handed over: his next one for carol, who is online, goes behind it.
#[test]
fn a_restarted_sender_finds_its_kept_messages_by_name() {
    let t0 = base_time();
    let mut n = follower(t0);
    let mut saved = Restored {
        kept: vec![QueuedDm {
            origin: NodeId(999),
            to: 0,
            dm: DirectMessage {
                id: DmId(7),
                from_name: "bob".into(),
                to: vec!["carol".into()],
                sealed: Vec::new(),
            },
        }],
        ..Restored::default()
    };
    n.mail.restore(&mut saved);
    send_to_carol(&mut n, t0, "after the restart");
    let out = drain(&mut n);
    assert_eq!(stores(&out), vec![DmId(1)], "{:?}", out.sent);
    assert!(directs_to_carol(&out).is_empty());
}
