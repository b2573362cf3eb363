//! A process restarted at an address where the leader still talks to the old one: the
//! join exchange of each process stays its own, and a proof nobody waits for ends
//! nothing.

use super::*;

/// The leader's challenge of process `newcomer`, outside a session as to any newcomer.
fn challenge(nonce: [u8; 16], newcomer: NodeId, id: u64) -> Vec<u8> {
    let msg = Message::Challenge {
        nonce,
        newcomer,
        of_member: false,
    };
    data(LEADER, id, msg)
}

fn proofs(out: &Out) -> usize {
    out.messages_to(addr(1))
        .iter()
        .filter(|m| matches!(m, Message::Proof { .. }))
        .count()
}

/// A challenge the leader resends to an earlier process at bob's address (it crashed
/// before acking it) is not bob's to answer: a proof of its nonce under bob's id would
/// not verify, and the leader's refusal would end bob's join. Bob answers his own.
#[test]
fn a_challenge_for_an_earlier_process_at_the_address_is_not_answered() {
    let t0 = base_time();
    let mut n = joining_bob(t0);
    let earlier = NodeId(0xE1);
    n.handle_outside_datagram(t0, addr(1), &challenge([1; 16], earlier, 1));
    assert_eq!(proofs(&drain(&mut n)), 0, "no proof for another process");
    n.handle_outside_datagram(t0, addr(1), &challenge([2; 16], BOB, 2));
    assert_eq!(proofs(&drain(&mut n)), 1, "bob answers his own challenge");
}

/// A proof the leader no longer waits for (a late copy, or one answering a challenge
/// it answered already with a refusal) is acked and ignored. Left unacked, its sender
/// would resend it until it gave the leader up, and hold its next join behind it.
#[test]
fn a_proof_no_challenge_waits_for_is_acked_and_ignored() {
    let t0 = base_time();
    let mut n = leader(t0);
    let carol = identity(CAROL.0 as u8);
    let signature = carol
        .sign(&proof_message(&[3; 16], CAROL, "carol"))
        .to_bytes()
        .to_vec();
    n.handle_outside_datagram(t0, addr(3), &data(CAROL, 7, Message::Proof { signature }));
    let out = drain(&mut n);
    assert!(
        out.acks_to(addr(3))
            .iter()
            .any(|a| a.upto >= 7 || a.ranges.iter().any(|&(lo, hi)| lo <= 7 && 7 <= hi)),
        "the proof is acked: {:?}",
        out.sent
    );
    assert!(
        out.messages_to(addr(3)).is_empty(),
        "and answered with nothing"
    );
    assert!(n.members().get(CAROL).is_none(), "nobody was admitted");
}

/// Bob (the usual 3 s join timeout, not the long one of `joining_bob`) asked alice to
/// join; she acked his join (the first message of his join-exchange stream to her,
/// stream 1) and challenged him, and he answered.
fn challenged_bob(t0: Instant) -> Node {
    let mut n = Node::new(NodeConfig::new("bob", addr(2), Some(addr(1))), BOB, t0);
    drain(&mut n);
    let acked = Packet::Ack(Ack {
        of: BOB,
        stream: 1,
        upto: 1,
        ranges: Vec::new(),
    });
    n.handle_outside_datagram(t0, addr(1), &datagram(LEADER, vec![acked]));
    n.handle_outside_datagram(t0, addr(1), &challenge([2; 16], BOB, 1));
    assert_eq!(proofs(&drain(&mut n)), 1);
    n
}

/// Runs bob's timers up to `until`, the leader acking all he sends and answering
/// nothing; when he first asked to join again, if he did.
fn first_join_again(n: &mut Node, until: Instant) -> Option<Instant> {
    while let Some(now) = n.poll_timeout() {
        if now > until {
            break;
        }
        n.handle_timeout(now);
        let out = drain(n);
        let joins = out.messages_to(addr(1));
        if joins.iter().any(|m| matches!(m, Message::Join { .. })) {
            return Some(now);
        }
        let ids: Vec<MsgId> = out.ids_to(addr(1), |_| true);
        if !ids.is_empty() {
            n.handle_outside_datagram(now, addr(1), &ack_of(BOB, LEADER, &ids));
        }
    }
    None
}

/// A proof that brings neither a welcome nor a refusal (the leader dropped its
/// challenge among too many, or lost its lead) is followed by a new join a join timeout
/// later, within the join's deadline: the newcomer does not wait for an answer that
/// will not come.
#[test]
fn a_proof_left_unanswered_is_followed_by_a_new_join() {
    let t0 = base_time();
    let mut n = challenged_bob(t0);
    let timeout = n.ctx.cfg.join_timeout;
    let at = first_join_again(&mut n, t0 + timeout * 3).expect("bob asks to join again");
    assert!(
        at <= t0 + timeout + Duration::from_millis(1),
        "within a join timeout of the challenge: {:?}",
        at - t0
    );
}

/// Part `part` of 2 of alice's welcome for bob as of `voters_at`, naming `members`,
/// voters flagged by `voting`.
fn welcome_part(part: u16, members: Vec<Member>, voting: u8, voters_at: u64) -> Message {
    Message::Welcome(Welcome {
        newcomer: BOB,
        epoch: Epoch {
            term: 0,
            leader: LEADER,
        },
        next_seq: Seq(voters_at + 1),
        oldest: Seq(1),
        pending_from: Seq(voters_at + 1),
        part,
        parts: 2,
        voting: vec![voting],
        unlisted_voters: Vec::new(),
        voters_at: Seq(voters_at),
        settling: vec![],
        voucher: None,
        members,
    })
}

/// Alice admitted bob: part 1 of his two-part welcome is here, part 0 is being resent
/// by alice (lost so far). Bob does not ask to join again meanwhile: a new join would be
/// answered with a second, whole welcome, whose parts would mix with the first's.
#[test]
fn a_partly_received_welcome_is_not_followed_by_a_new_join() {
    let t0 = base_time();
    let mut n = challenged_bob(t0);
    let t1 = t0 + Duration::from_millis(100);
    let carol = member(CAROL, "carol", 3);
    n.handle_datagram(
        t1,
        addr(1),
        &data(LEADER, 2, welcome_part(1, vec![carol], 0b1, 9)),
    );
    drain(&mut n);
    let until = t0 + n.ctx.cfg.join_timeout * 2;
    assert_eq!(
        first_join_again(&mut n, until),
        None,
        "bob asked to join again while his welcome was arriving"
    );
}

/// Parts of two welcomes are not taken as one: bob asked again before any part of the
/// first came (all lost for a join timeout); then part 1 of the first (as of #9: alice
/// and carol vote) and part 0 of the second (as of #10: carol was removed) arrive.
/// Together they would make bob's configuration {alice, carol} as of #10, one the room
/// never had, and carol's removal would never be applied. Bob waits for the second's
/// part 1 instead.
#[test]
fn parts_of_two_welcomes_are_not_taken_as_one() {
    let t0 = base_time();
    let mut n = challenged_bob(t0);
    let carol = member(CAROL, "carol", 3);
    let first = welcome_part(1, vec![carol.clone()], 0b1, 9);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, first));
    drain(&mut n);
    let bob = n.members().get(BOB).cloned().expect("own entry");
    let alice_bob = vec![member(LEADER, "alice", 1), bob];
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 3, welcome_part(0, alice_bob, 0b1, 10)),
    );
    let out = drain(&mut n);
    assert!(
        !out.events.iter().any(|e| matches!(e, Event::Joined { .. })),
        "joined with voters {:?} as of #10",
        n.voters()
    );
    let mut offline = carol;
    offline.presence = Presence::Offline;
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 4, welcome_part(1, vec![offline], 0, 10)),
    );
    let out = drain(&mut n);
    assert!(out.events.iter().any(|e| matches!(e, Event::Joined { .. })));
    assert!(
        !n.voters().contains(&"carol".to_string()),
        "{:?}",
        n.voters()
    );
}

/// Every ack of bob's join was lost, but alice's challenge came, late in his join
/// timeout: the room heard him, so he waits for its welcome as for an acked join rather
/// than report it unreachable at the deadline (sim_chat seed 1781715: the welcome came
/// 31 ms after such a report).
#[test]
fn a_challenge_without_an_ack_of_the_join_waits_for_the_welcome() {
    let t0 = base_time();
    let mut n = Node::new(NodeConfig::new("bob", addr(2), Some(addr(1))), BOB, t0);
    drain(&mut n);
    let timeout = n.ctx.cfg.join_timeout;
    let challenged_at = t0 + timeout - Duration::from_millis(400);
    let mut challenged = false;
    let mut events = Vec::new();
    while let Some(now) = n.poll_timeout() {
        if now > t0 + timeout * 2 {
            break;
        }
        if !challenged && now >= challenged_at {
            n.handle_outside_datagram(challenged_at, addr(1), &challenge([2; 16], BOB, 1));
            challenged = true;
        }
        n.handle_timeout(now);
        events.extend(drain(&mut n).events);
    }
    assert!(challenged, "bob's timers ran to the challenge");
    assert!(
        events.is_empty(),
        "a join timeout on, bob still waits for his welcome: {events:?}"
    );
}
