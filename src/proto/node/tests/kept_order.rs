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
    let saved = Message::Saved {
        id: DmId(1),
        to: 0,
        full: None,
    };
    n.handle_datagram(later, addr(1), &data(LEADER, 50, saved));
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
