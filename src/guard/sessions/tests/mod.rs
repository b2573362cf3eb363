//! The sessions through the guard, as the node task uses it: members' datagrams open only
//! in their own sessions, once, and only at their recipient; the join exchange alone
//! travels outside sessions.

use crate::guard::{Guard, KEY_BYTES, Opened, Refused, admission};
use crate::ids::{DmId, Lamport, MsgId, NodeId};
use crate::wire::{
    DirectMessage, Envelope, Member, Message, Packet, Presence, Stamp, decode, encode,
};
use ed25519_dalek::SigningKey;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A node: its id, identity secret, address and guard.
struct Node {
    id: NodeId,
    secret: [u8; 32],
    addr: SocketAddr,
    guard: Guard,
}

fn node(n: u8, key: Option<[u8; KEY_BYTES]>) -> Node {
    let id = NodeId(u64::from(n) * 1000 + 7);
    let secret = [n; 32];
    Node {
        id,
        secret,
        addr: SocketAddr::from(([127, 0, 0, 1], 5000 + u16::from(n))),
        guard: Guard::new(id, key, u32::MAX).with_identity(&secret),
    }
}

fn entry(n: &Node, presence: Presence, by: NodeId) -> Member {
    Member {
        id: n.id,
        name: format!("n{}", n.id.0),
        addr: n.addr,
        presence,
        key: SigningKey::from_bytes(&n.secret).verifying_key().to_bytes(),
        stamp: Stamp {
            lamport: Lamport(1),
            by,
        },
    }
}

fn online(n: &Node) -> Member {
    entry(n, Presence::Online, NodeId(1))
}

/// Every node holds the same table of `nodes`, and is in the room.
fn room(nodes: &[&Node]) {
    let table: Vec<Member> = nodes.iter().map(|n| online(n)).collect();
    for n in nodes {
        n.guard.set_table(false, &table);
    }
}

fn dm(from: NodeId, text: &str) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(5),
        packets: vec![Packet::Data {
            id: MsgId(1),
            msg: Message::Direct(DirectMessage {
                id: DmId(1),
                from_name: "x".into(),
                to: vec!["y".into()],
                sealed: text.as_bytes().to_vec(),
            }),
        }],
    })
    .unwrap()
}

fn join(from: NodeId) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(1),
        packets: vec![Packet::Data {
            id: MsgId(1),
            msg: Message::Join {
                name: "newcomer".into(),
                key: [9; 32],
            },
        }],
    })
    .unwrap()
}

/// Datagrams, each with where it went (or, handed on by a guard, the index of its node).
type Datagrams<T> = Vec<(T, Vec<u8>)>;

/// Moves datagrams between `nodes` until none is left; returns what each node's guard
/// handed on (receiver index, bytes) and every datagram put on the wire, in order.
fn run(now: Instant, nodes: &[&Node]) -> (Datagrams<usize>, Datagrams<SocketAddr>) {
    let mut delivered = Vec::new();
    let mut wire = Vec::new();
    for _ in 0..50 {
        let mut moved = false;
        for n in nodes {
            while let Some((to, bytes)) = n.guard.poll_transmit() {
                moved = true;
                wire.push((to, bytes.clone()));
                if let Some(r) = nodes.iter().position(|m| m.addr == to)
                    && let Ok(Some(plain)) = nodes[r].guard.receive(now, n.addr, &bytes)
                {
                    delivered.push((r, plain.plain.into_owned()));
                }
            }
        }
        if !moved {
            break;
        }
    }
    (delivered, wire)
}

/// The transport datagrams among `wire` (the sessions' own, not handshakes).
fn transports(wire: &[(SocketAddr, Vec<u8>)]) -> Vec<(SocketAddr, Vec<u8>)> {
    wire.iter()
        .filter(|(_, b)| b[0] == super::super::frame::TRANSPORT && b.len() > 29)
        .cloned()
        .collect()
}

#[test]
fn members_talk_in_sessions_and_each_datagram_opens_once_at_its_recipient() {
    let t0 = Instant::now();
    for key in [None, Some([7u8; KEY_BYTES])] {
        let (alice, bob, carol) = (node(1, key), node(2, key), node(3, key));
        room(&[&alice, &bob, &carol]);
        let hello = dm(alice.id, "hello bob");
        alice.guard.send(t0, bob.addr, &hello);
        let (got, wire) = run(t0, &[&alice, &bob, &carol]);
        assert_eq!(got, vec![(1, hello.clone())], "bob, once, in a session");
        // Bob answers at once in the session alice started.
        bob.guard.send(t0, alice.addr, &dm(bob.id, "hi"));
        let (got, _) = run(t0, &[&alice, &bob, &carol]);
        assert_eq!(got, vec![(0, dm(bob.id, "hi"))]);
        let captured = transports(&wire);
        assert!(!captured.is_empty());
        for (_, bytes) in &captured {
            // Replayed to bob: refused by the session's window.
            assert!(matches!(
                bob.guard.receive(t0, alice.addr, bytes),
                Err(Refused::Replayed(..))
            ));
            // Replayed to carol: no session of hers opens it (the recipient is bound in).
            assert_eq!(
                carol.guard.receive(t0, alice.addr, bytes),
                Err(Refused::NoSession)
            );
        }
        // The text is not in the clear on the wire.
        assert!(
            wire.iter()
                .all(|(_, b)| !b.windows(9).any(|w| w == b"hello bob"))
        );
    }
}

#[test]
fn a_restart_starts_new_sessions_and_old_captures_never_open() {
    let t0 = Instant::now();
    let (alice, bob) = (node(1, None), node(2, None));
    room(&[&alice, &bob]);
    alice.guard.send(t0, bob.addr, &dm(alice.id, "before"));
    let (got, wire) = run(t0, &[&alice, &bob]);
    assert_eq!(got.len(), 1);
    // Bob restarts: the same identity and address, a new process (a new node id).
    let mut bob2 = node(2, None);
    bob2.id = NodeId(99_999);
    bob2.guard = Guard::new(bob2.id, None, u32::MAX).with_identity(&bob2.secret);
    let mut table = vec![online(&alice), online(&bob2)];
    table.push(entry(&bob, Presence::Offline, alice.id));
    bob2.guard.set_table(false, &table);
    for (_, bytes) in &wire {
        let r = bob2.guard.receive(t0, alice.addr, bytes);
        assert!(
            matches!(r, Err(Refused::NoSession) | Err(Refused::NotForUs(_))),
            "{r:?}"
        );
    }
    // Alice learns of the new process and talks to it in a new session.
    alice.guard.set_table(false, &table);
    alice.guard.send(t0, bob2.addr, &dm(alice.id, "after"));
    let (got, _) = run(t0, &[&alice, &bob2]);
    assert_eq!(got, vec![(1, dm(alice.id, "after"))]);
}

#[test]
fn only_a_member_can_send_as_itself() {
    let t0 = Instant::now();
    let (alice, bob, mallory) = (node(1, None), node(2, None), node(3, None));
    room(&[&alice, &bob, &mallory]);
    // Mallory, a member, sends bob a message claiming alice's id, in her own session.
    mallory
        .guard
        .send(t0, bob.addr, &dm(alice.id, "I am alice"));
    let (got, _) = run(t0, &[&alice, &bob, &mallory]);
    assert!(got.is_empty(), "{got:?}");
    // The refusal itself: once the session exists, the forged envelope is named.
    mallory
        .guard
        .send(t0, bob.addr, &dm(alice.id, "I am alice"));
    let (to, bytes) = mallory.guard.poll_transmit().unwrap();
    assert_eq!(to, bob.addr);
    assert_eq!(
        bob.guard.receive(t0, alice.addr, &bytes),
        Err(Refused::Impersonation {
            claimed: alice.id,
            peer: mallory.id
        })
    );
    // Outside a session, plain: only the join exchange passes, whatever the source.
    assert_eq!(
        bob.guard.receive(t0, alice.addr, &dm(alice.id, "plain")),
        Err(Refused::OutsideSession("a private message"))
    );
    // The node is told it came outside a session (see `Node::handle_outside_datagram`).
    assert!(matches!(
        bob.guard.receive(t0, alice.addr, &join(NodeId(5))),
        Ok(Some(Opened {
            in_session: false,
            ..
        }))
    ));
    // Mallory as herself, in her session: told it came in one.
    mallory
        .guard
        .send(t0, bob.addr, &dm(mallory.id, "I am mallory"));
    let (_, bytes) = mallory.guard.poll_transmit().unwrap();
    assert!(matches!(
        bob.guard.receive(t0, mallory.addr, &bytes),
        Ok(Some(Opened {
            in_session: true,
            ..
        }))
    ));
    // A stranger's handshake: its key is no member's.
    let stranger = node(4, None);
    stranger
        .guard
        .set_table(false, &[online(&stranger), online(&bob)]);
    stranger
        .guard
        .send(t0, bob.addr, &dm(stranger.id, "let me in"));
    let (_, init) = stranger.guard.poll_transmit().unwrap();
    assert_eq!(
        bob.guard.receive(t0, stranger.addr, &init),
        Err(Refused::NotAMember(stranger.id))
    );
}

#[test]
fn a_forged_counter_changes_nothing_for_the_member_it_names() {
    let t0 = Instant::now();
    let (bob, carol) = (node(2, None), node(3, None));
    room(&[&bob, &carol]);
    carol.guard.send(t0, bob.addr, &dm(carol.id, "one"));
    let (got, wire) = run(t0, &[&bob, &carol]);
    assert_eq!(got.len(), 1);
    // Carol's session index at bob, the largest counter, any bytes.
    let (_, real) = transports(&wire).pop().unwrap();
    for counter in [u64::MAX, u64::MAX / 2, 5] {
        let mut forged = real.clone();
        forged[5..13].copy_from_slice(&counter.to_le_bytes());
        let r = bob.guard.receive(t0, carol.addr, &forged);
        assert!(
            matches!(r, Err(Refused::OutOfRange(_)) | Err(Refused::Unauthentic)),
            "{r:?}"
        );
    }
    // Carol's next datagrams open as ever.
    for text in ["two", "three"] {
        carol.guard.send(t0, bob.addr, &dm(carol.id, text));
    }
    let (got, _) = run(t0, &[&bob, &carol]);
    assert_eq!(got.len(), 2);
}

#[test]
fn a_member_that_left_keeps_no_session() {
    let t0 = Instant::now();
    let (alice, bob, dave) = (node(1, None), node(2, None), node(4, None));
    room(&[&alice, &bob, &dave]);
    dave.guard.send(t0, alice.addr, &dm(dave.id, "bye soon"));
    alice.guard.send(t0, dave.addr, &dm(alice.id, "ok"));
    let (got, _) = run(t0, &[&alice, &bob, &dave]);
    assert_eq!(got.len(), 2);
    // Dave leaves (his entry offline by his own word): alice and bob drop him.
    let table = vec![
        online(&alice),
        online(&bob),
        entry(&dave, Presence::Offline, dave.id),
    ];
    alice.guard.set_table(false, &table);
    bob.guard.set_table(false, &table);
    // His old session no longer opens anything, and a new handshake is refused.
    dave.guard.send(t0, alice.addr, &dm(dave.id, "still here"));
    let (to, bytes) = dave.guard.poll_transmit().unwrap();
    assert_eq!(to, alice.addr);
    assert_eq!(
        alice.guard.receive(t0, dave.addr, &bytes),
        Err(Refused::NoSession)
    );
    dave.guard
        .set_table(false, &[online(&alice), online(&dave)]);
    let fresh = node(4, None); // the same identity, no sessions: it must handshake
    fresh
        .guard
        .set_table(false, &[online(&alice), online(&dave)]);
    fresh.guard.send(t0, alice.addr, &dm(dave.id, "again"));
    let (_, init) = fresh.guard.poll_transmit().unwrap();
    assert_eq!(
        alice.guard.receive(t0, dave.addr, &init),
        Err(Refused::NotAMember(dave.id))
    );
    // What alice sends dave from now on is the join exchange at most: nothing else.
    alice.guard.send(t0, dave.addr, &dm(alice.id, "secret"));
    assert_eq!(alice.guard.poll_transmit(), None);
    // Alice and bob go on in their own session, which dave cannot open.
    alice.guard.send(t0, bob.addr, &dm(alice.id, "after dave"));
    let (got, wire) = run(t0, &[&alice, &bob]);
    assert_eq!(got, vec![(1, dm(alice.id, "after dave"))]);
    for (_, bytes) in transports(&wire) {
        assert_eq!(
            dave.guard.receive(t0, alice.addr, &bytes),
            Err(Refused::NoSession)
        );
    }
}

#[test]
fn a_newcomer_takes_the_leaders_session_and_then_only_members() {
    let t0 = Instant::now();
    let key = Some([3u8; KEY_BYTES]);
    let (leader, newcomer, outsider) = (node(1, key), node(5, key), node(6, key));
    // The newcomer is outside the room, knowing nobody.
    newcomer.guard.set_table(true, &[online(&newcomer)]);
    // Its join travels outside sessions, sealed with a join key it asks the leader for
    // (the room key seals only the ask).
    newcomer.guard.send(t0, leader.addr, &join(newcomer.id));
    leader.guard.set_table(false, &[online(&leader)]);
    let (got, wire) = run(t0, &[&leader, &newcomer]);
    assert_eq!(got, vec![(0, join(newcomer.id))]);
    let firsts: Vec<u8> = wire.iter().map(|(_, b)| b[0]).collect();
    assert_eq!(
        firsts,
        [admission::ASK, admission::GRANT, admission::JOIN_SEALED]
    );
    // Another holder of the room key (a member that left, say) opens none of it, nor
    // can it take the grant.
    outsider.guard.set_table(true, &[]);
    outsider.guard.send(t0, leader.addr, &join(outsider.id));
    while outsider.guard.poll_transmit().is_some() {}
    for (_, bytes) in &wire {
        if bytes[0] == admission::ASK {
            // The ask names the newcomer's identity key (public), nothing else.
            continue;
        }
        assert!(
            matches!(
                outsider.guard.receive(t0, leader.addr, bytes),
                Err(Refused::Unanswered(_) | Refused::NotAsked | Refused::Unauthentic)
            ),
            "{:x}",
            bytes[0]
        );
    }
    // Admitted: the leader's table has it, and the welcome goes in a session the leader
    // starts.
    let table = vec![online(&leader), online(&newcomer)];
    leader.guard.set_table(false, &table);
    let welcome = dm(leader.id, "welcome");
    leader.guard.send(t0, newcomer.addr, &welcome);
    let (got, _) = run(t0, &[&leader, &newcomer]);
    assert_eq!(got, vec![(1, welcome)]);
    // Inside, the newcomer keeps that session (the leader is in its table) and answers.
    newcomer.guard.set_table(false, &table);
    newcomer
        .guard
        .send(t0, leader.addr, &dm(newcomer.id, "thanks"));
    let (got, _) = run(t0, &[&leader, &newcomer]);
    assert_eq!(got, vec![(0, dm(newcomer.id, "thanks"))]);
    // A key holder that is no member cannot start a session with it any more.
    outsider
        .guard
        .set_table(false, &[online(&outsider), online(&newcomer)]);
    outsider
        .guard
        .send(t0, newcomer.addr, &dm(outsider.id, "hi"));
    let (_, init) = outsider.guard.poll_transmit().unwrap();
    assert_eq!(
        newcomer.guard.receive(t0, outsider.addr, &init),
        Err(Refused::NotAMember(outsider.id))
    );
}

#[test]
fn both_sides_may_start_at_once() {
    let t0 = Instant::now();
    let (alice, bob) = (node(1, None), node(2, None));
    room(&[&alice, &bob]);
    alice.guard.send(t0, bob.addr, &dm(alice.id, "a"));
    bob.guard.send(t0, alice.addr, &dm(bob.id, "b"));
    let (mut got, _) = run(t0, &[&alice, &bob]);
    got.sort();
    assert_eq!(got, vec![(0, dm(bob.id, "b")), (1, dm(alice.id, "a"))]);
    for i in 0..5 {
        alice
            .guard
            .send(t0, bob.addr, &dm(alice.id, &format!("a{i}")));
        bob.guard
            .send(t0, alice.addr, &dm(bob.id, &format!("b{i}")));
    }
    let (got, _) = run(t0, &[&alice, &bob]);
    assert_eq!(got.len(), 10);
    assert_eq!(alice.guard.session_counts().handshakes, 2);
}

mod outside;
mod renewal;
