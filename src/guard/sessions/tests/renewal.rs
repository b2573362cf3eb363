//! Sessions over time: handshakes tried again and given up, sessions renewed after a peer
//! lost its own, keepalives, leaving, and a new process at a member's address.

use super::*;

#[test]
fn handshakes_are_tried_again_then_given_up_and_sessions_renewed() {
    let t0 = Instant::now();
    let (alice, bob) = (node(1, None), node(2, None));
    room(&[&alice, &bob]);
    alice.guard.send(t0, bob.addr, &dm(alice.id, "lost"));
    // The initiation is lost.
    assert!(alice.guard.poll_transmit().is_some());
    let retry = alice.guard.poll_timeout().expect("a retry is due");
    assert_eq!(retry - t0, super::super::first_retry());
    alice.guard.handle_timeout(retry);
    let (got, _) = run(retry, &[&alice, &bob]);
    assert_eq!(
        got,
        vec![(1, dm(alice.id, "lost"))],
        "sent once the retry is answered"
    );
    // A peer that never answers: tries back off, then the queue is dropped.
    let ghost = node(9, None);
    room(&[&alice, &ghost]);
    alice.guard.send(t0, ghost.addr, &dm(alice.id, "void"));
    let mut now = t0;
    let mut tries = 0;
    while let Some(at) = alice
        .guard
        .poll_timeout()
        .filter(|at| *at < t0 + super::super::GIVE_UP * 2)
    {
        while alice.guard.poll_transmit().is_some() {
            tries += 1;
        }
        assert!(at >= now);
        now = at;
        alice.guard.handle_timeout(now);
    }
    assert!((5..=15).contains(&tries), "{tries} tries");
    assert_eq!(alice.guard.session_counts().unsent, 1);
    // Renewal: a session older than REKEY_AFTER is still sent on, and a new handshake
    // starts beside it.
    room(&[&alice, &bob]);
    let later = t0 + super::super::REKEY_AFTER + Duration::from_secs(1);
    let before = alice.guard.session_counts().handshakes;
    alice
        .guard
        .send(later, bob.addr, &dm(alice.id, "old session"));
    let (got, _) = run(later, &[&alice, &bob]);
    assert_eq!(got, vec![(1, dm(alice.id, "old session"))]);
    assert_eq!(alice.guard.session_counts().handshakes, before + 1);
}

#[test]
fn a_keyed_room_seals_handshakes_too() {
    let t0 = Instant::now();
    let key = Some([5u8; KEY_BYTES]);
    let (alice, bob) = (node(1, key), node(2, key));
    let keyless = node(3, None);
    room(&[&alice, &bob, &keyless]);
    keyless.guard.send(t0, bob.addr, &dm(keyless.id, "hi"));
    let (_, init) = keyless.guard.poll_transmit().unwrap();
    assert_eq!(
        bob.guard.receive(t0, keyless.addr, &init),
        Err(Refused::NotSealed)
    );
    alice.guard.send(t0, bob.addr, &dm(alice.id, "hi"));
    let (to, sealed_init) = alice.guard.poll_transmit().unwrap();
    assert_eq!((to, sealed_init[0]), (bob.addr, crate::guard::SEALED));
    assert_eq!(bob.guard.receive(t0, alice.addr, &sealed_init), Ok(None));
    assert!(decode(&dm(alice.id, "x")).is_ok());
}

/// Drives the guards' timers from `from` to `to` in steps of `step`, moving datagrams
/// between `nodes` at every step; returns what was handed on.
fn run_until(nodes: &[&Node], from: Instant, to: Instant, step: Duration) -> Vec<(usize, Vec<u8>)> {
    let mut got = Vec::new();
    let mut now = from;
    while now <= to {
        for n in nodes {
            n.guard.handle_timeout(now);
        }
        got.extend(run(now, nodes).0);
        now += step;
    }
    got
}

#[test]
fn a_peer_that_lost_our_session_gets_a_new_one() {
    let t0 = Instant::now();
    let (alice, bob) = (node(1, None), node(2, None));
    room(&[&alice, &bob]);
    alice.guard.send(t0, bob.addr, &dm(alice.id, "one"));
    assert_eq!(run(t0, &[&alice, &bob]).0.len(), 1);
    // Bob drops alice (she went offline by her own word) and takes her back: his side of
    // their session is gone, hers is not.
    bob.guard.set_table(
        false,
        &[online(&bob), entry(&alice, Presence::Offline, alice.id)],
    );
    room(&[&alice, &bob]);
    let t1 = t0 + Duration::from_millis(10);
    alice.guard.send(t1, bob.addr, &dm(alice.id, "lost"));
    assert!(
        run(t1, &[&alice, &bob]).0.is_empty(),
        "her old session is refused"
    );
    // Within a few seconds of sending without an answer, alice starts a new handshake;
    // what she sends then arrives.
    let t2 = t1 + super::super::NEW_HANDSHAKE_AFTER + Duration::from_secs(1);
    run_until(&[&alice, &bob], t1, t2, Duration::from_millis(100));
    alice.guard.send(t2, bob.addr, &dm(alice.id, "found"));
    assert_eq!(run(t2, &[&alice, &bob]).0, vec![(1, dm(alice.id, "found"))]);
}

#[test]
fn a_peer_that_only_hears_answers_with_keepalives() {
    let t0 = Instant::now();
    let (alice, bob) = (node(1, None), node(2, None));
    room(&[&alice, &bob]);
    // Alice sends bob something every 100 ms (heartbeats round the ring go one way);
    // bob never has anything to send her.
    let mut now = t0;
    let end = t0 + Duration::from_secs(6);
    while now < end {
        alice.guard.send(now, bob.addr, &dm(alice.id, "beat"));
        for n in [&alice, &bob] {
            n.guard.handle_timeout(now);
        }
        run(now, &[&alice, &bob]);
        now += Duration::from_millis(100);
    }
    // Bob's keepalives keep alice from taking his silence for a lost session.
    assert_eq!(
        alice.guard.session_counts().handshakes,
        1,
        "no new handshake"
    );
}

#[test]
fn leaving_the_room_drops_every_session() {
    let t0 = Instant::now();
    let (alice, bob) = (node(1, None), node(2, None));
    room(&[&alice, &bob]);
    alice.guard.send(t0, bob.addr, &dm(alice.id, "hi"));
    assert_eq!(run(t0, &[&alice, &bob]).0.len(), 1);
    // Bob deregisters: out of the room, then back.
    let table = [online(&alice), entry(&bob, Presence::Offline, bob.id)];
    bob.guard.set_table(true, &table);
    alice.guard.set_table(false, &table);
    room(&[&alice, &bob]);
    // Back in, bob starts afresh rather than sending in a session alice dropped.
    bob.guard.send(t0, alice.addr, &dm(bob.id, "back"));
    assert_eq!(run(t0, &[&alice, &bob]).0, vec![(0, dm(bob.id, "back"))]);
}

#[test]
fn a_new_process_at_a_members_address_gets_the_join_exchange_outside_sessions() {
    use crate::wire::{Ack, Refusal};
    let t0 = Instant::now();
    let (alice, bob) = (node(1, None), node(2, None));
    room(&[&alice, &bob]);
    alice.guard.send(t0, bob.addr, &dm(alice.id, "hi"));
    assert_eq!(run(t0, &[&alice, &bob]).0.len(), 1);
    // Bob restarts: a new process (new id) at the same address, outside the room.
    let mut bob2 = node(2, None);
    bob2.id = NodeId(77_777);
    bob2.guard = Guard::new(bob2.id, None, u32::MAX).with_identity(&bob2.secret);
    bob2.guard.set_table(true, &[online(&bob2)]);
    // Its join reaches alice outside a session, while its old entry is still online.
    bob2.guard.send(t0, alice.addr, &join(bob2.id));
    assert_eq!(run(t0, &[&alice, &bob2]).0, vec![(0, join(bob2.id))]);
    // Her answer (an ack of its join, a refusal) goes outside the session with the old
    // process, which nobody at that address holds any more; the rest stays inside it.
    let answer = encode(&Envelope {
        from: alice.id,
        lamport: Lamport(9),
        packets: vec![
            Packet::Ack(Ack::of_one(bob2.id, MsgId(1))),
            Packet::Data {
                id: MsgId(3),
                msg: Message::JoinRefused {
                    reason: Refusal::StillOnline,
                },
            },
            Packet::Data {
                id: MsgId(4),
                msg: dm_message(),
            },
        ],
    })
    .unwrap();
    alice.guard.send(t0, bob.addr, &answer);
    let (got, _) = run(t0, &[&alice, &bob2]);
    assert_eq!(got.len(), 1, "{got:?}");
    let env = decode(&got[0].1).unwrap();
    assert_eq!(
        env.packets.len(),
        2,
        "the ack and the refusal: {:?}",
        env.packets
    );
    // The old entry offline (cut out), a challenge goes outside too, without any join
    // heard from that address.
    let t1 = t0 + crate::guard::JOINING_FOR + Duration::from_secs(1);
    let table = [online(&alice), entry(&bob, Presence::Offline, alice.id)];
    alice.guard.set_table(false, &table);
    let challenge = encode(&Envelope {
        from: alice.id,
        lamport: Lamport(10),
        packets: vec![Packet::Data {
            id: MsgId(5),
            msg: Message::Challenge {
                nonce: [4; 16],
                newcomer: NodeId(1),
                of_member: false,
            },
        }],
    })
    .unwrap();
    alice.guard.send(t1, bob.addr, &challenge);
    assert_eq!(run(t1, &[&alice, &bob2]).0, vec![(1, challenge)]);
}

fn dm_message() -> Message {
    decode(&dm(NodeId(1), "x"))
        .unwrap()
        .packets
        .into_iter()
        .find_map(|p| match p {
            Packet::Data { msg, .. } => Some(msg),
            _ => None,
        })
        .unwrap()
}

/// The node task calls the guard on every timer of its own: a call before anything is due
/// does nothing (no handshake sent early), and the retry still goes at its time.
#[test]
fn a_timer_call_before_anything_is_due_does_nothing() {
    let t0 = Instant::now();
    let (alice, bob) = (node(1, None), node(2, None));
    room(&[&alice, &bob]);
    alice.guard.send(t0, bob.addr, &dm(alice.id, "lost"));
    assert!(
        alice.guard.poll_transmit().is_some(),
        "the initiation (lost)"
    );
    let retry = alice.guard.poll_timeout().expect("a retry is due");
    for k in 1..10u32 {
        alice.guard.handle_timeout(t0 + (retry - t0) * k / 10);
        assert!(
            alice.guard.poll_transmit().is_none(),
            "nothing before the retry"
        );
        assert_eq!(alice.guard.poll_timeout(), Some(retry));
    }
    alice.guard.handle_timeout(retry);
    assert!(
        alice.guard.poll_transmit().is_some(),
        "the retry at its time"
    );
}
