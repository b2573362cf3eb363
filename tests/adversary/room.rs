//! A keyed room of three real nodes (alice leading, bob, carol) with mallory, a
//! [`FakeMember`] that joined like anyone and holds a session with every member it talks
//! to; and what a test asks of such a room: who leads, whether it still chats.

use super::{FakeMember, plain};
use crate::common::*;
use ed25519_dalek::SigningKey;
use ringchat::guard::read_key;
use ringchat::ids::{Lamport, MsgId, NodeId};
use ringchat::wire::{Envelope, Message, Packet, encode};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

/// The transport stream forged messages use: far from the few streams a real member
/// numbers its destinations with, so none is taken for a duplicate of the member's own.
pub const FORGED_STREAM: u32 = 4000;

/// A datagram from `from` at Lamport time `lamport` carrying `packets`.
pub fn datagram(from: NodeId, lamport: u64, packets: Vec<Packet>) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(lamport),
        packets,
    })
    .expect("fits a datagram")
}

/// A datagram from `from` carrying reliable message `msg` as number `n` of the forged
/// stream.
pub fn forged(from: NodeId, n: u64, lamport: u64, msg: Message) -> Vec<u8> {
    let id = MsgId::new(FORGED_STREAM, n);
    datagram(from, lamport, vec![Packet::Data { id, msg }])
}

/// The three real nodes and mallory.
pub struct Room {
    /// The leader.
    pub alice: Proc,
    /// A member (joined through alice).
    pub bob: Proc,
    /// A member (joined through bob).
    pub carol: Proc,
    /// The hostile member.
    pub mallory: FakeMember,
    /// alice, bob and carol as their `status` says.
    pub seen: [Seen; 3],
}

/// alice creates a keyed room (`--ephemeral`, a key file in `scratch`), bob joins through
/// alice, carol through bob, then mallory through alice; returns once every node saw
/// mallory online and mallory has its welcome.
#[track_caller]
pub fn room_with_mallory(scratch: &Scratch) -> Room {
    let key_path = keygen(scratch, "room.key");
    let room_key = read_key(&key_path).expect("read the room key");
    let key = key_path.to_str().expect("a UTF-8 scratch path");
    let flags = ["--ephemeral", "--room-key-file", key];
    let mut alice = Proc::start_with(scratch, "alice", None, &flags);
    alice.expect_line("created a new room; you (alice) are the leader");
    let mut bob = Proc::start_with(scratch, "bob", Some(alice.port), &flags);
    bob.expect_line("joined the room: 2 members, leader is alice");
    alice.expect_line("bob is online");
    let mut carol = Proc::start_with(scratch, "carol", Some(bob.port), &flags);
    carol.expect_line("joined the room: 3 members, leader is alice");
    alice.expect_line("carol is online");
    bob.expect_line("carol is online");
    let mallory = FakeMember::new(
        NodeId(0x0bad_f00d_0000_0003),
        "mallory",
        Some(room_key),
        SigningKey::from_bytes(&[0x4e; 32]),
    );
    let join = Message::Join {
        name: "mallory".into(),
        key: mallory.identity.verifying_key().to_bytes(),
    };
    let alice_addr = alice.addr.expect("read at start");
    mallory.send(&plain(mallory.id, mallory.next_id(), join), alice_addr);
    for p in [&mut alice, &mut bob, &mut carol] {
        p.expect_line("mallory is online");
    }
    mallory.wait_for("its welcome", |m| {
        matches!(m, Message::Welcome(_)).then_some(())
    });
    let seen = [seen(&mut alice), seen(&mut bob), seen(&mut carol)];
    Room {
        alice,
        bob,
        carol,
        mallory,
        seen,
    }
}

/// What `status` says of a node: its id, its address, its leader's name.
pub struct Seen {
    /// Its node id.
    pub id: NodeId,
    /// Its address.
    pub addr: SocketAddr,
    /// The name of the leader it follows.
    pub leader: String,
}

/// What `status` says of `p` now.
#[track_caller]
pub fn seen(p: &mut Proc) -> Seen {
    let lines = status(p);
    let me = lines
        .iter()
        .find_map(|l| l.strip_prefix("me:"))
        .unwrap_or_else(|| p.fail("no `me:` line in status"));
    // `me:      alice (00f3...) at 127.0.0.1:4242`
    let id = me
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(hex, _)| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| p.fail(&format!("no id in {me:?}")));
    let addr = me
        .rsplit_once(" at ")
        .and_then(|(_, a)| a.trim().parse().ok())
        .unwrap_or_else(|| p.fail(&format!("no address in {me:?}")));
    let leader = lines
        .iter()
        .find_map(|l| l.strip_prefix("leader:"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| p.fail("no `leader:` line in status"));
    Seen {
        id: NodeId(id),
        addr,
        leader,
    }
}

/// A room message typed at `from` is shown at every node of `others` (checked by text).
#[track_caller]
pub fn chats(from: &mut Proc, others: &mut [&mut Proc], text: &str) {
    from.send(&format!("send_all {text}"));
    let shown = |l: &str| RoomLine::parse(l).is_some_and(|r| r.text == text);
    from.expect(shown, "our own message, committed");
    for p in others.iter_mut() {
        p.expect(shown, "the message after the attack");
    }
}

/// Fails if any of `procs` printed that the leader changed.
#[track_caller]
pub fn leader_never_changed(procs: &[&Proc]) {
    for p in procs {
        if let Some(l) = p.seen.iter().find(|l| l.starts_with("leader is now")) {
            p.fail(&format!("the leader changed: {l:?}"));
        }
    }
}

/// Polls `status` at every node until they all name the same leader, one of `names`
/// (within [`WAIT`]); returns its name.
#[track_caller]
pub fn one_leader(procs: &mut [&mut Proc], names: &[&str]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let leaders: Vec<String> = procs.iter_mut().map(|p| seen(p).leader).collect();
        if leaders.iter().all(|l| *l == leaders[0]) && names.contains(&leaders[0].as_str()) {
            return leaders[0].clone();
        }
        if Instant::now() > deadline {
            procs[0].fail(&format!("no one leader after {WAIT:?}: {leaders:?}"));
        }
        thread::sleep(Duration::from_millis(200));
    }
}
