//! A process restarted at an address where the leader still talks to the old one: the
//! join exchange of each process stays its own, and a proof nobody waits for ends
//! nothing.

use super::*;

/// The leader's challenge of process `newcomer`, outside a session as to any newcomer.
fn challenge(nonce: [u8; 16], newcomer: NodeId, id: u64) -> Vec<u8> {
    data(LEADER, id, Message::Challenge { nonce, newcomer })
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

/// A proof that brings neither a welcome nor a refusal (the leader dropped its
/// challenge among too many, or lost its lead) is followed by a new join a join timeout
/// later, within the join's deadline: the newcomer does not wait for an answer that
/// will not come.
#[test]
fn a_proof_left_unanswered_is_followed_by_a_new_join() {
    let t0 = base_time();
    // The usual join timeout (3 s), not the long one of `joining_bob`.
    let mut n = Node::new(NodeConfig::new("bob", addr(2), Some(addr(1))), BOB, t0);
    drain(&mut n);
    let joins = |out: &Out| {
        out.messages_to(addr(1))
            .iter()
            .filter(|m| matches!(m, Message::Join { .. }))
            .count()
    };
    // The leader acks the join (the first message of bob's join-exchange stream to it,
    // stream 1), and challenges bob.
    let acked = Packet::Ack(Ack {
        of: BOB,
        stream: 1,
        upto: 1,
        ranges: Vec::new(),
    });
    n.handle_outside_datagram(t0, addr(1), &datagram(LEADER, vec![acked]));
    n.handle_outside_datagram(t0, addr(1), &challenge([2; 16], BOB, 1));
    assert_eq!(proofs(&drain(&mut n)), 1);
    // The leader acks everything bob sends, and answers nothing more.
    let mut asked_again = None;
    while let Some(now) = n.poll_timeout() {
        if now > t0 + n.ctx.cfg.join_timeout * 3 {
            break;
        }
        n.handle_timeout(now);
        let out = drain(&mut n);
        if joins(&out) > 0 {
            asked_again = Some(now);
            break;
        }
        let ids: Vec<MsgId> = out.ids_to(addr(1), |_| true);
        if !ids.is_empty() {
            n.handle_outside_datagram(now, addr(1), &ack_of(BOB, LEADER, &ids));
        }
    }
    let at = asked_again.expect("bob asks to join again");
    assert!(
        at <= t0 + n.ctx.cfg.join_timeout + Duration::from_millis(1),
        "within a join timeout of the challenge: {:?}",
        at - t0
    );
}
