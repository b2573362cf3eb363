//! What one member or stranger can make a node hold: the offline queue's caps (per
//! sender, per recipient, in all; only for names the room knows), the join limits that
//! address churn cannot wipe, and the anti-amplification budget towards strangers.

use super::*;
use crate::proto::offline::{MAX_QUEUE_PER_SENDER, MAX_QUEUE_PER_USER};
use crate::wire::QueueLimit;

const DAVE: NodeId = NodeId(400);

/// Alice leading bob (port 2) and carol (port 3); dave (port 4) is a member who is
/// offline, so direct messages for him are kept.
fn leader_with_dave_away(t0: Instant) -> Node {
    let mut n = leader_with_bob(t0);
    let key = identity(CAROL.0 as u8);
    join_as(&mut n, t0, (CAROL, 3, "carol"), &key, &key);
    n.ring.merge(Member {
        presence: Presence::Offline,
        ..member(DAVE, "dave", 4)
    });
    drain(&mut n);
    n
}

fn dm_for(to: &str, from: &str, id: u64) -> DirectMessage {
    DirectMessage {
        id: DmId(id),
        from_name: from.into(),
        to: vec![to.into()],
        lamport: Lamport(3),
        sent_at: WallMillis(0),
        text: format!("m{id}"),
    }
}

fn saved_with(out: &Out, to: SocketAddr, limit: Option<QueueLimit>) -> usize {
    out.messages_to(to)
        .iter()
        .filter(|m| matches!(m, Message::Saved { full, .. } if *full == limit))
        .count()
}

/// The attack of issue 17: 1 010 store requests for dave from bob, then a real message
/// for dave from carol got "queue is full". Bob's share stops at
/// [`MAX_QUEUE_PER_SENDER`], and he is told so; carol's message is kept.
#[test]
fn one_member_cannot_fill_anothers_offline_queue() {
    let t0 = base_time();
    let mut n = leader_with_dave_away(t0);
    let mut refused = 0;
    for k in 0..1010u64 {
        let store = Message::Store {
            to: 0,
            dm: dm_for("dave", "bob", k + 1),
        };
        n.handle_datagram(t0, addr(2), &data(BOB, 10 + k, store));
        refused += saved_with(&drain(&mut n), addr(2), Some(QueueLimit::Sender));
    }
    assert_eq!(n.mail.kept_for("dave"), MAX_QUEUE_PER_SENDER);
    assert_eq!(
        refused,
        1010 - MAX_QUEUE_PER_SENDER,
        "bob is told each time"
    );
    assert_eq!(n.stats().limited, refused as u64);
    let store = Message::Store {
        to: 0,
        dm: dm_for("dave", "carol", 1),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 10, store));
    let out = drain(&mut n);
    assert_eq!(saved_with(&out, addr(3), Some(QueueLimit::Sender)), 0);
    assert_eq!(n.mail.kept_for("dave"), MAX_QUEUE_PER_SENDER + 1);
}

/// The sender hears which limit kept its message out, in words.
#[test]
fn the_sender_is_told_which_limit_it_met() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.ring.merge(Member {
        presence: Presence::Offline,
        stamp: Stamp {
            lamport: Lamport(9),
            by: CAROL,
        },
        ..member(CAROL, "carol", 3)
    });
    let send = Command::Send {
        to: vec!["carol".into()],
        text: "psst".into(),
    };
    n.handle_command(t0, WallMillis(0), send);
    let out = drain(&mut n);
    assert!(
        out.messages_to(addr(1))
            .iter()
            .any(|m| matches!(m, Message::Store { .. })),
        "kept by the leader: {:?}",
        out.sent
    );
    let saved = Message::Saved {
        id: DmId(1),
        to: 0,
        full: Some(QueueLimit::Sender),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, saved));
    let out = drain(&mut n);
    let reason = out
        .events
        .iter()
        .find_map(|e| match e {
            Event::Undelivered { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("told");
    assert!(
        reason.contains(&format!("{MAX_QUEUE_PER_SENDER} of your messages")),
        "{reason}"
    );
}

/// The attack of issue 17: 15 000 kept messages for invented names grew a member's
/// memory without bound. A member takes replicas only from the leader it follows, and
/// keeps them only for names the room knows, within the caps; the rest is counted.
#[test]
fn replicas_for_unknown_names_or_from_others_than_the_leader_are_not_kept() {
    let t0 = base_time();
    let mut n = follower(t0);
    let item = |k: u64, to: &str, origin: NodeId| {
        Message::Queued(QueuedDm {
            origin,
            to: 0,
            dm: dm_for(to, "x", k),
        })
    };
    // From carol, who does not lead: nothing kept, even for a known name.
    for k in 0..1000u64 {
        n.handle_datagram(t0, addr(3), &data(CAROL, 10 + k, item(k, "alice", CAROL)));
    }
    // From the leader, for 15 000 invented names: nothing kept.
    for k in 0..15_000u64 {
        let name = format!("ghost{k}");
        n.handle_datagram(t0, addr(1), &data(LEADER, 10 + k, item(k, &name, CAROL)));
    }
    drain(&mut n);
    assert_eq!(n.mail.kept_len(), 0);
    assert_eq!(n.stats().limited, 16_000);
    // From the leader for carol, from 20 invented origins: at most one recipient's cap.
    for k in 0..1200u64 {
        let origin = NodeId(1000 + k % 20);
        n.handle_datagram(
            t0,
            addr(1),
            &data(LEADER, 20_000 + k, item(k, "carol", origin)),
        );
    }
    drain(&mut n);
    assert_eq!(n.mail.kept_len(), MAX_QUEUE_PER_USER);
}
