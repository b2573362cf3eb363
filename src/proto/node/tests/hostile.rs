//! Hostile input: values at their limits never panic and change nothing; random and
//! mutated datagrams (proptest).

use super::*;

fn data_at(from: NodeId, id: u64, lamport: u64, msg: Message) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(lamport),
        packets: vec![Packet::Data { id: MsgId(id), msg }],
    })
    .unwrap()
}

#[test]
fn a_lamport_time_at_the_limit_is_dropped() {
    let t0 = base_time();
    let mut n = follower(t0);
    let dm = dm_from_carol("x");
    n.handle_datagram(t0, addr(3), &data_at(CAROL, 1, u64::MAX, dm));
    let out = drain(&mut n);
    assert!(out.sent.is_empty() && out.events.is_empty());
    assert_eq!(n.stats().dropped, 1);
    assert!(n.lamport() < Lamport(1 << 62));
}

/// A datagram stamped at the former limit (2^62) was taken, and pushed the node's clock
/// past it: every datagram the node sent from then on was dropped by everyone else, for
/// good. A received time now pushes a clock no further than 2^62, and others take up
/// to 2^63, so the node's own datagrams still go through.
#[test]
fn a_time_at_the_limit_does_not_cut_a_node_off() {
    let t0 = base_time();
    let mut n = follower(t0);
    let dm = dm_from_carol("x");
    n.handle_datagram(t0, addr(3), &data_at(CAROL, 1, 1 << 62, dm));
    drain(&mut n);
    n.handle_timeout(t0 + Duration::from_millis(100));
    let mut other = leader(t0);
    let mut beats = 0;
    while let Some(t) = n.poll_transmit() {
        beats += 1;
        other.handle_datagram(t0, addr(2), &t.bytes);
    }
    assert!(beats > 0, "bob sent something");
    assert_eq!(other.stats().dropped, 0, "bob's datagrams are taken");
}

#[test]
fn an_election_term_at_the_limit_is_dropped() {
    let t0 = base_time();
    let mut n = follower(t0);
    let bad = Epoch {
        term: u64::MAX,
        leader: CAROL,
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, Message::Elected(bad)));
    n.handle_datagram(
        t0,
        addr(3),
        &data(
            CAROL,
            2,
            Message::Election {
                term: u64::MAX,
                candidate: CAROL,
                log: Seq(1000),
            },
        ),
    );
    drain(&mut n);
    assert_eq!(n.leader(), Some(LEADER));
    assert_eq!(n.stats().dropped, 2);
}

#[test]
fn messages_from_strangers_are_dropped_unacked() {
    let t0 = base_time();
    let mut n = follower(t0);
    let stranger = NodeId(999);
    let msgs = [
        Message::Submit(submit(2)),
        Message::Members(vec![member(NodeId(1000), "mallory", 9)]),
        Message::Fetch {
            from: Seq(1),
            to: Seq(u64::MAX),
        },
        Message::SyncReply {
            epoch: Epoch {
                term: 0,
                leader: LEADER,
            },
            next: Seq(1),
            high: Seq(u64::MAX),
            sent: u32::MAX,
            votes: Vec::new(),
        },
    ];
    for (i, m) in msgs.into_iter().enumerate() {
        n.handle_datagram(t0, addr(9), &data(stranger, i as u64 + 1, m));
    }
    let out = drain(&mut n);
    assert!(out.sent.is_empty(), "no acks, no answers: {:?}", out.sent);
    assert_eq!(n.members().len(), 3, "table unchanged");
    assert_eq!(n.stats().dropped, 4);
}

#[test]
fn a_welcome_with_impossible_parts_is_dropped() {
    let t0 = base_time();
    let mut n = Node::new(NodeConfig::new("bob", addr(2), Some(addr(1))), BOB, t0);
    drain(&mut n);
    let w = Welcome {
        newcomer: BOB,
        epoch: Epoch {
            term: 0,
            leader: LEADER,
        },
        next_seq: Seq(u64::MAX),
        oldest: Seq(u64::MAX),
        pending_from: Seq(u64::MAX),
        part: u16::MAX,
        parts: u16::MAX,
        voting: Vec::new(),
        unlisted_voters: Vec::new(),
        voters_at: Seq(0),
        settling: vec![],
        voucher: None,
        members: vec![],
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 1, Message::Welcome(w)));
    assert!(drain(&mut n).events.is_empty());
    assert!(!n.is_member());
}

#[test]
fn sequence_numbers_at_the_limit_do_not_overflow() {
    let t0 = base_time();
    let mut n = follower(t0);
    let mut e = entry(1, CAROL, "carol", 1);
    e.seq = Seq(u64::MAX);
    n.handle_datagram(t0, addr(1), &data(LEADER, 7, Message::Sequenced(e)));
    n.handle_timeout(t0 + Duration::from_secs(1));
    drain(&mut n);
    assert_eq!(n.history().len(), 0, "held, not shown");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Any bytes from anyone: no panic, and neither the member table nor the history
        /// changes.
        #[test]
        fn random_bytes_change_nothing(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let t0 = base_time();
            let mut n = follower(t0);
            let table: Vec<Member> = n.members().entries().cloned().collect();
            n.handle_datagram(t0, addr(7), &bytes);
            n.handle_timeout(t0 + Duration::from_millis(100));
            drain(&mut n);
            prop_assert_eq!(n.members().entries().cloned().collect::<Vec<_>>(), table);
            prop_assert_eq!(n.history().len(), 0);
        }

        /// A valid datagram with some bytes flipped, from a member: no panic.
        #[test]
        fn mutated_datagrams_never_panic(
            which in 0usize..8,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let t0 = base_time();
            let mut n = follower(t0);
            let msgs = [
                Message::Sequenced(entry(1, CAROL, "carol", 1)),
                Message::Members(vec![member(CAROL, "carol", 3)]),
                Message::Submit(submit(1)),
                Message::Election { term: 3, candidate: CAROL, log: Seq(1000) },
                Message::Fetch { from: Seq(1), to: Seq(3) },
                Message::PreVote { term: 3, follows: None },
                Message::PreVoteReply { term: 3, granted: true, follows: None },
                Message::Store {
                    to: 0,
                    dm: sealed_dm(
                        (CAROL, "carol", &identity(CAROL.0 as u8)),
                        &["zed"],
                        ("zed", &identity(9)),
                        1,
                        "x",
                    ),
                },
            ];
            let mut bytes = data(CAROL, 1, msgs[which].clone());
            for (at, x) in flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            n.handle_datagram(t0, addr(3), &bytes);
            n.handle_timeout(t0 + Duration::from_secs(2));
            drain(&mut n);
        }
    }
}

/// A welcome resent to the address of a newcomer that crashed reaches the process that
/// took its place: it is not that process's welcome, and is neither taken nor acked.
#[test]
fn a_welcome_for_an_earlier_process_is_ignored() {
    let t0 = base_time();
    let mut n = Node::new(NodeConfig::new("bob", addr(2), Some(addr(1))), BOB, t0);
    drain(&mut n);
    let w = Welcome {
        newcomer: NodeId(201),
        members: vec![member(LEADER, "alice", 1)],
        ..welcome_for_bob(member(BOB, "bob", 2))
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 1, Message::Welcome(w)));
    let out = drain(&mut n);
    assert!(
        out.events.is_empty() && out.sent.is_empty(),
        "{:?}",
        out.sent
    );
    assert!(!n.is_member());
}

/// A node the member table does not know, speaking as a member, gets one heartbeat a
/// second (our leader, so it can find the room again) and nothing else.
#[test]
fn an_unknown_member_is_answered_with_a_heartbeat_a_second() {
    let t0 = base_time();
    let mut n = follower(t0);
    let heartbeats_to = |n: &mut Node, to: SocketAddr| {
        let mut k = 0;
        while let Some(t) = n.poll_transmit() {
            let env = decode(&t.bytes).unwrap();
            let only_heartbeats = env
                .packets
                .iter()
                .all(|p| matches!(p, Packet::Heartbeat(_)));
            assert!(only_heartbeats || t.to != to);
            k += usize::from(t.to == to);
        }
        k
    };
    let stranger = addr(9);
    let fetch = Message::Fetch {
        from: Seq(1),
        to: Seq(2),
    };
    n.handle_datagram(t0, stranger, &data(NodeId(900), 1, fetch.clone()));
    assert_eq!(heartbeats_to(&mut n, stranger), 1);
    n.handle_datagram(t0, stranger, &data(NodeId(900), 2, fetch.clone()));
    assert_eq!(heartbeats_to(&mut n, stranger), 0, "at most one a second");
    let t1 = t0 + Duration::from_secs(1);
    n.handle_datagram(t1, stranger, &data(NodeId(900), 3, fetch));
    assert_eq!(heartbeats_to(&mut n, stranger), 1);
    assert_eq!(n.stats().dropped, 3);
}

/// The leader's word that numbers are no longer kept moves a member's delivery point
/// only once the first number it keeps is here: a notice alone (forged or mutated, in
/// the fuzz run of issue 17 one sent a member to #9 223 372 036 854 775 811, where it
/// could never show a message again) moves nothing. A real one, however far, does.
#[test]
fn a_skip_waits_for_the_first_kept_entry() {
    let t0 = base_time();
    let mut n = follower(t0);
    let forgotten = |to: u64| Message::Forgotten {
        from: Seq(1),
        to: Seq(to),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, forgotten(1 << 63)));
    let out = drain(&mut n);
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert_eq!(n.room.next(), Seq(1));
    // A real one: 20 000 gone, then #20 001, the first kept, and its commit.
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, forgotten(20_000)));
    assert_eq!(n.room.next(), Seq(1), "not before the entry");
    let mut first = entry(20_001, CAROL, "carol", 1);
    first.term = 0;
    n.handle_datagram(t0, addr(1), &data(LEADER, 4, Message::Sequenced(first)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, commit(20_001)));
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), vec![20_001]);
    assert!(out.events.iter().any(
        |e| matches!(e, Event::Notice(t) if t == "20000 older messages are no longer kept by anyone")
    ));
}

/// The leader's #1 under message id 7, in its session, and its commit: shown.
fn leaders_message_7_is_taken(n: &mut Node, t0: Instant) {
    let real = Message::Sequenced(entry(1, LEADER, "alice", 1));
    n.handle_datagram(t0, addr(1), &data(LEADER, 7, real));
    n.handle_datagram(t0, addr(1), &data(LEADER, 8, commit(1)));
    assert_eq!(room_seqs(&drain(n)), vec![1], "the leader's #1 is taken");
}

/// A join claiming the leader's id from another address takes none of the leader's
/// message ids here: the leader's real message under the same id is still taken.
#[test]
fn a_join_under_a_members_id_from_another_address_is_dropped() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(t0, addr(9), &data(LEADER, 7, forged_join()));
    assert!(drain(&mut n).sent.is_empty(), "no answer");
    assert_eq!(n.stats().dropped, 1);
    leaders_message_7_is_taken(&mut n, t0);
}

/// From the leader's own address but outside a session (anyone can send so), a join under
/// the leader's id takes none of the ids of the leader's session either: the leader's
/// real message under the same id, in the session, is still taken.
#[test]
fn a_join_outside_a_session_takes_no_ids_of_the_senders_session() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_outside_datagram(t0, addr(1), &data(LEADER, 7, forged_join()));
    drain(&mut n);
    leaders_message_7_is_taken(&mut n, t0);
    assert_eq!(n.stats().duplicates, 0);
}

/// An ack outside a session (anyone can send one, from any address, naming any id)
/// settles only the join exchange this node sent outside sessions, never what a session
/// carries: a room message for the leader is sent again until the leader acks it in the
/// session. Nor does anything but the join exchange pass outside a session.
#[test]
fn an_ack_outside_a_session_settles_nothing_a_session_carries() {
    let t0 = base_time();
    let mut n = follower(t0);
    let say = Command::SendAll { text: "hi".into() };
    n.handle_command(t0, WallMillis(1), say);
    let ids = drain(&mut n).ids_to(addr(1), |_| true);
    assert!(!ids.is_empty());
    n.handle_outside_datagram(t0, addr(1), &ack_of(n.id(), LEADER, &ids));
    let t1 = t0 + Duration::from_secs(1);
    n.handle_timeout(t1);
    let resent = drain(&mut n).ids_to(addr(1), |_| true);
    assert!(ids.iter().all(|id| resent.contains(id)), "{resent:?}");
    // The same ack in the session settles it.
    n.handle_datagram(t1, addr(1), &ack_of(n.id(), LEADER, &ids));
    n.handle_timeout(t1 + Duration::from_secs(1));
    let again = drain(&mut n).ids_to(addr(1), |_| true);
    assert!(ids.iter().all(|id| !again.contains(id)), "{again:?}");
    // A commit notice outside a session: dropped, counted.
    let dropped = n.stats().dropped;
    n.handle_outside_datagram(t1, addr(1), &data(LEADER, 9, commit(1)));
    assert_eq!(n.stats().dropped, dropped + 1);
}

/// The join exchange outside sessions still works both ways: the leader's challenge, in
/// a stream of its own (the session's starts at 1 with the welcome), is settled by the
/// newcomer's ack from outside a session, and so is the welcome (a newcomer acks from
/// outside the room until it is in).
#[test]
fn the_join_exchange_and_the_welcome_are_acked_outside_sessions() {
    let t0 = base_time();
    let mut n = leader(t0);
    let join = Message::Join {
        name: "bob".into(),
        key: identity(BOB.0 as u8).verifying_key().to_bytes(),
    };
    n.handle_outside_datagram(t0, addr(2), &data(BOB, 1, join));
    let is_challenge = |m: &Message| matches!(m, Message::Challenge { .. });
    let challenge = drain(&mut n).ids_to(addr(2), is_challenge);
    assert_eq!(challenge.len(), 1);
    n.handle_outside_datagram(t0, addr(2), &ack_of(n.id(), BOB, &challenge));
    let t1 = t0 + Duration::from_secs(1);
    n.handle_timeout(t1);
    let resent = drain(&mut n).ids_to(addr(2), is_challenge);
    assert!(resent.is_empty(), "settled by the ack: {resent:?}");

    let mut n = leader(t0);
    let is_welcome = |m: &Message| matches!(m, Message::Welcome(_));
    let welcome = join_bob(&mut n, t0).ids_to(addr(2), is_welcome);
    assert_eq!(welcome.len(), 1);
    assert_eq!(welcome[0].seq(), 1, "the session's stream starts with it");
    n.handle_outside_datagram(t0, addr(2), &ack_of(n.id(), BOB, &welcome));
    n.handle_timeout(t1);
    let resent = drain(&mut n).ids_to(addr(2), is_welcome);
    assert!(resent.is_empty(), "settled by the ack: {resent:?}");
}
