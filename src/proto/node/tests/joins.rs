//! Fixtures of the join exchange and of followers: a newcomer joined through the
//! leader under test, a follower welcomed into a room, a member going offline and back.

use super::*;

/// Sends a join for `name` from `id` at `port` with identity `key`, and answers the
/// leader's challenge by signing with `signer`, both outside a session (as a newcomer
/// does). Returns what the node sent after the proof.
pub(super) fn join_as(
    n: &mut Node,
    t0: Instant,
    (id, port, name): (NodeId, u16, &str),
    key: &SigningKey,
    signer: &SigningKey,
) -> Out {
    let join = Message::Join {
        name: name.into(),
        key: key.verifying_key().to_bytes(),
    };
    n.handle_outside_datagram(t0, addr(port), &data(id, 1, join));
    let out = drain(n);
    let nonce = match out.messages_to(addr(port)).first() {
        Some(Message::Challenge { nonce, .. }) => *nonce,
        _ => return out,
    };
    let signature = signer
        .sign(&proof_message(&nonce, id, name))
        .to_bytes()
        .to_vec();
    let proof = data(id, 2, Message::Proof { signature });
    n.handle_outside_datagram(t0, addr(port), &proof);
    drain(n)
}

pub(super) fn join_bob(n: &mut Node, t0: Instant) -> Out {
    let key = identity(BOB.0 as u8);
    join_as(n, t0, (BOB, 2, "bob"), &key, &key)
}

/// The identity the test node named `name` runs with (see [`NodeConfig::new`]).
pub(super) fn own_identity(name: &str) -> SigningKey {
    SigningKey::from_bytes(&NodeConfig::new(name, addr(1), None).identity)
}

/// Direct message `id` from `from` (node `origin`, signing with `signer`) to `to`, the
/// copy sealed for `recipient` (whose identity is `recipient_key`).
pub(super) fn sealed_dm(
    (origin, from, signer): (NodeId, &str, &SigningKey),
    to: &[&str],
    (recipient, recipient_key): (&str, &SigningKey),
    id: u64,
    text: &str,
) -> DirectMessage {
    let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
    let key = recipient_key.verifying_key().to_bytes();
    let header = seal::DirectHeader {
        origin,
        id: DmId(id),
        from_name: from,
        to: &to,
        recipient,
        recipient_key: &key,
    };
    let content = seal::DirectContent {
        lamport: Lamport(3),
        sent_at: WallMillis(0),
        text: text.into(),
    };
    let sealed = seal::seal_direct(signer, &header, &content, [7; 32]).expect("sealed");
    DirectMessage {
        id: DmId(id),
        from_name: from.into(),
        to,
        sealed,
    }
}

/// A direct message from carol to bob (the follower), id 1.
pub(super) fn dm_from_carol(text: &str) -> Message {
    let carol = (CAROL, "carol", &identity(CAROL.0 as u8));
    Message::Direct(sealed_dm(
        carol,
        &["bob"],
        ("bob", &own_identity("bob")),
        1,
        text,
    ))
}

/// "bob" at port 2 asking to join through alice (port 1), its join drained.
pub(super) fn joining_bob(t0: Instant) -> Node {
    let mut cfg = NodeConfig::new("bob", addr(2), Some(addr(1)));
    // These tests send no heartbeats: keep the failure detector's newcomer grace long.
    cfg.join_timeout = Duration::from_secs(600);
    let mut n = Node::new(cfg, BOB, t0);
    drain(&mut n);
    n
}

/// Bob's own entry as the leader wrote it, at Lamport time `lamport`.
pub(super) fn bob_as_written_by_leader(n: &Node, lamport: u64) -> Member {
    let mut bob = n.members().get(BOB).cloned().expect("own entry");
    bob.stamp = Stamp {
        lamport: Lamport(lamport),
        by: LEADER,
    };
    bob
}

/// Alice's welcome for bob into a room of alice, bob (entry `bob`) and carol (port 3).
pub(super) fn welcome_for_bob(bob: Member) -> Welcome {
    Welcome {
        newcomer: BOB,
        epoch: Epoch {
            term: 0,
            leader: LEADER,
        },
        next_seq: Seq(1),
        oldest: Seq(1),
        pending_from: Seq(1),
        part: 0,
        parts: 1,
        voting: Vec::new(),
        unlisted_voters: Vec::new(),
        voters_at: Seq(0),
        settling: vec![],
        voucher: None,
        members: vec![member(LEADER, "alice", 1), bob, member(CAROL, "carol", 3)],
    }
}

/// The leader's answer to bob's join: its ack (the first message of bob's join-exchange
/// stream to it, stream 1: stream 0 is the session's) with welcome `w`, as message `id`.
pub(super) fn join_answered(w: Welcome, id: u64) -> Vec<u8> {
    let packets = vec![
        Packet::Ack(Ack {
            of: BOB,
            stream: 1,
            upto: 1,
            ranges: Vec::new(),
        }),
        Packet::Data {
            id: MsgId(id),
            msg: Message::Welcome(w),
        },
    ];
    datagram(LEADER, packets)
}

/// Bob (node `n`) goes offline as [`bob_deregs`], then types `reg` through alice a
/// second later; returns that time (outputs drained).
pub(super) fn bob_deregs_and_regs_through_alice(n: &mut Node, t0: Instant) -> Instant {
    bob_deregs(n, t0);
    let t1 = t0 + Duration::from_secs(1);
    n.handle_command(
        t1,
        WallMillis(2),
        Command::Reg {
            name: None,
            via: Some(addr(1)),
        },
    );
    drain(n);
    t1
}

/// Bob (node `n`) types `dereg`; alice (port 1) and carol (port 3) ack all he sends
/// them, until he is out of the ring.
pub(super) fn bob_deregs(n: &mut Node, t0: Instant) {
    n.handle_command(t0, WallMillis(1), Command::Dereg { name: None });
    let mut out = drain(n);
    for _ in 0..4 {
        for (id, port) in [(LEADER, 1), (CAROL, 3)] {
            let ids = out.ids_to(addr(port), |_| true);
            if !ids.is_empty() {
                n.handle_datagram(t0, addr(port), &ack_of(BOB, id, &ids));
            }
        }
        out = drain(n);
    }
    assert!(!n.in_ring(), "bob is offline: {:?}", n.life.phase());
}

/// Bob's own word about himself (port 2): `presence`, stamped and sent at `lamport`.
pub(super) fn bob_says(presence: Presence, lamport: u64) -> Vec<u8> {
    member_says((BOB, "bob", 2), presence, lamport)
}

/// Member `id` (`name`, at `port`) says it is `presence`, its own word stamped `lamport`.
pub(super) fn member_says(
    (id, name, port): (NodeId, &str, u16),
    presence: Presence,
    lamport: u64,
) -> Vec<u8> {
    let mut m = member(id, name, port);
    m.presence = presence;
    m.stamp = Stamp {
        lamport: Lamport(lamport),
        by: id,
    };
    let env = Envelope {
        from: id,
        lamport: Lamport(lamport),
        packets: vec![Packet::Data {
            id: MsgId(900 + lamport),
            msg: Message::Members(vec![m]),
        }],
    };
    encode(&env).unwrap()
}

/// A follower "bob" at port 2 in a room led by alice (port 1), carol at port 3.
pub(super) fn follower(t0: Instant) -> Node {
    follower_with(t0, Vec::new()).0
}

/// [`follower`], with `more` members in the welcome's table; also what the join showed.
pub(super) fn follower_with(t0: Instant, more: Vec<Member>) -> (Node, Out) {
    follower_welcomed(t0, more, false)
}

/// As [`follower_with`]; with `all_vote`, every member named is a voter.
pub(super) fn follower_welcomed(t0: Instant, more: Vec<Member>, all_vote: bool) -> (Node, Out) {
    follower_welcomed_as(t0, |w| {
        w.members.extend(more);
        if all_vote {
            w.voting = vec![0xff; w.members.len().div_ceil(8)];
        }
    })
}

/// Bob welcomed by [`welcome_for_bob`] as `edit` changes it; also what the join showed
/// and what bob sent then (nothing acked).
pub(super) fn welcomed_as(t0: Instant, edit: impl FnOnce(&mut Welcome)) -> (Node, Out) {
    let mut n = joining_bob(t0);
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    edit(&mut w);
    n.handle_datagram(t0, addr(1), &join_answered(w, 1));
    let out = drain(&mut n);
    (n, out)
}

/// [`welcomed_as`], alice acking bob's word that he holds his welcome (and nothing else
/// in flight).
pub(super) fn follower_welcomed_as(t0: Instant, edit: impl FnOnce(&mut Welcome)) -> (Node, Out) {
    let (mut n, out) = welcomed_as(t0, edit);
    assert!(matches!(out.events[0], Event::Joined { .. }));
    // It tells the leader it holds its welcome; the leader acks.
    let taken = out.ids_to(addr(1), |m| matches!(m, Message::WelcomeTaken));
    assert_eq!(taken.len(), 1, "the newcomer says it holds its welcome");
    n.handle_datagram(t0, addr(1), &ack_of(BOB, LEADER, &taken));
    assert_eq!(n.transport.in_flight(), 0, "nothing awaits an ack");
    (n, out)
}
