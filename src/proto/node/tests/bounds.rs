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
        sealed: format!("m{id}").into_bytes(),
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

fn join_from(n: &mut Node, at: Instant, from: SocketAddr, id: u64) {
    let join = Message::Join {
        name: format!("n{id}"),
        key: [7; 32],
    };
    n.handle_datagram(at, from, &data(NodeId(10_000 + id), 1, join));
}

/// How many challenges `out` holds, to any address.
fn challenges(out: &Out) -> usize {
    out.sent
        .iter()
        .filter(|(_, p)| {
            matches!(
                p,
                Packet::Data {
                    msg: Message::Challenge { .. },
                    ..
                }
            )
        })
        .count()
}

fn ip_addr(k: u32) -> SocketAddr {
    SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x7f01_0000 + k)),
        5000,
    )
}

/// The attack of issue 17: joins from 6 000 addresses wiped the per-address table (at
/// 1 024 entries) and every one was challenged. Now at most 100 joins a second are taken
/// in all, an address over its own 20 stays counted through the churn, and what the
/// leader keeps for strangers stays bounded.
#[test]
fn address_churn_gets_no_more_joins_through() {
    let t0 = base_time();
    let mut n = leader(t0);
    let x = ip_addr(0);
    for k in 0..20 {
        join_from(&mut n, t0, x, k);
    }
    assert_eq!(challenges(&drain(&mut n)), 20);
    let mut taken = 0;
    for k in 1..6001u32 {
        join_from(&mut n, t0, ip_addr(k), 100 + u64::from(k));
        taken += challenges(&drain(&mut n));
    }
    assert_eq!(taken, 80, "the room's 100 a second, 20 of them x's");
    join_from(&mut n, t0, x, 99);
    let out = drain(&mut n);
    assert_eq!(challenges(&out), 0, "x is still counted");
    // A minute of it: bounded tables, and the room's share taken each second.
    for s in 1..60u32 {
        let at = t0 + Duration::from_secs(u64::from(s));
        let mut taken = 0;
        for k in 0..6000u32 {
            let id = u64::from(s * 10_000 + k) + 10_000;
            join_from(&mut n, at, ip_addr(s * 10_000 + k), id);
            taken += challenges(&drain(&mut n));
        }
        n.handle_timeout(at);
        drain(&mut n);
        assert_eq!(taken, 100, "second {s}");
    }
    let (counted, proofs) = n.life.join_tables();
    assert!(counted <= crate::proto::limits::MAX_COUNTED, "{counted}");
    assert!(proofs <= 256, "{proofs}");
    assert!(n.transport.budget.len() <= crate::proto::limits::MAX_STRANGERS);
    assert!(n.transport.windows() <= 4096 + n.members().len());
}

/// Total bytes the node sent to `to` while time runs for `secs` seconds.
fn bytes_to(n: &mut Node, from: Instant, secs: u64, to: SocketAddr) -> usize {
    let mut total = 0;
    for ms in (0..=secs * 1000).step_by(10) {
        n.handle_timeout(from + Duration::from_millis(ms));
        while let Some(t) = n.poll_transmit() {
            if t.to == to {
                total += t.bytes.len();
            }
        }
        while n.poll_event().is_some() {}
    }
    total
}

/// The attack of issue 17: a join's challenge, resent nine times to a stranger that never
/// answers, added up to 6.75 times the join. Everything sent to a stranger (acks, the
/// challenge, its resends) is at most three times what came from it.
#[test]
fn a_stranger_gets_at_most_three_times_what_it_sent() {
    let t0 = base_time();
    let mut n = leader(t0);
    let stranger = ip_addr(1);
    let join = data(
        NodeId(4242),
        1,
        Message::Join {
            name: "quiet".into(),
            key: [7; 32],
        },
    );
    n.handle_datagram(t0, stranger, &join);
    let mut sent = 0;
    while let Some(t) = n.poll_transmit() {
        sent += t.bytes.len();
    }
    assert!(sent > 0, "the challenge goes");
    sent += bytes_to(&mut n, t0, 10, stranger);
    assert!(
        sent <= 3 * join.len(),
        "{sent} bytes sent for a join of {}",
        join.len()
    );
    assert!(n.stats().limited > 0, "the bound held something back");
    assert_eq!(
        n.transport.in_flight(),
        0,
        "no retries left after the budget"
    );
}

/// In a keyed room every datagram on the wire carries the guard's seal: the bound holds
/// for the bytes that travel (a join with the longest name, the challenge resent), not
/// only for what the node wrote.
#[test]
fn the_bound_counts_the_seal_in_a_keyed_room() {
    let t0 = base_time();
    let mut cfg = NodeConfig::new("alice", addr(1), None);
    cfg.wire_overhead = crate::wire::SEAL_OVERHEAD;
    let mut n = Node::new(cfg, LEADER, t0);
    drain(&mut n);
    let stranger = ip_addr(3);
    let join = data(
        NodeId(4244),
        1,
        Message::Join {
            name: "x".repeat(32),
            key: [7; 32],
        },
    );
    n.handle_datagram(t0, stranger, &join);
    let mut datagrams = 0;
    let mut wire = 0;
    for ms in (0..=10_000).step_by(10) {
        n.handle_timeout(t0 + Duration::from_millis(ms));
        while let Some(t) = n.poll_transmit() {
            if t.to == stranger {
                datagrams += 1;
                wire += t.bytes.len() + crate::wire::SEAL_OVERHEAD;
            }
        }
        while n.poll_event().is_some() {}
    }
    let came = join.len() + crate::wire::SEAL_OVERHEAD;
    assert!(datagrams > 0, "the challenge goes");
    assert!(
        wire <= 3 * came,
        "{wire} bytes on the wire in {datagrams} datagrams for a join of {came}"
    );
}

/// A join passed on by a member is answered from the leader, which never heard from the
/// newcomer: the join's size counts as received from it, so the same bound holds.
#[test]
fn a_forwarded_join_is_answered_within_the_same_bound() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    let stranger = ip_addr(2);
    let newcomer = Newcomer {
        id: NodeId(4243),
        name: "quiet".into(),
        key: [7; 32],
        addr: stranger,
    };
    let join_len = data(
        newcomer.id,
        1,
        Message::Join {
            name: newcomer.name.clone(),
            key: newcomer.key,
        },
    )
    .len();
    n.handle_datagram(t0, addr(2), &data(BOB, 10, Message::JoinForward(newcomer)));
    let sent = bytes_to(&mut n, t0, 10, stranger);
    assert!(sent > 0, "the challenge goes");
    assert!(
        sent <= 3 * join_len,
        "{sent} bytes for a join of {join_len}"
    );
}

/// Nothing at all goes to an address that never sent anything (a newcomer named by a
/// forged welcome or refusal path), and a real join still gets through (the control).
#[test]
fn a_newcomer_that_answers_is_admitted_within_its_budget() {
    let t0 = base_time();
    let mut n = leader(t0);
    let key = identity(BOB.0 as u8);
    let out = join_as(&mut n, t0, (BOB, 2, "bob"), &key, &key);
    assert!(
        out.messages_to(addr(2))
            .iter()
            .any(|m| matches!(m, Message::Welcome(_))),
        "welcomed: {:?}",
        out.sent
    );
    assert_eq!(n.stats().limited, 0);
}
