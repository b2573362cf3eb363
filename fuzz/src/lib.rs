//! Shared code of the fuzz targets: the harnesses, the member nodes they drive, and the
//! seed inputs (`cargo run --example seeds` writes them to `corpus/<target>/`).
//!
//! # `node_datagram` input
//!
//! Byte 0 picks the node: bit 0 clear, a follower `bob` (port 2) in a room led by
//! `alice` (port 1) with `carol` (port 3); set, `alice` leading `bob` and `carol`. Then
//! frames, each `ctl`, a length (`u16`, little-endian, modulo 2048) and that many bytes
//! (fewer if the input ends):
//!
//! - `ctl` bits 0-1: the source address: port 1, 2, 3, or a stranger's port 9;
//! - bits 2-4: time that passes first (then `handle_timeout`): 0, 1 ms, 30 ms, 100 ms,
//!   500 ms, 3 s, 10 s, 60 s;
//! - bit 5: the bytes are a command (first byte the kind, the rest its text) instead of a
//!   datagram.
//!
//! After every input every poll is drained, and each datagram the node sends must decode
//! and fit the plain-datagram limit. At the end, time runs on through the node's next
//! deadlines (bounded), so retransmissions, give-ups and failure detection run too.

mod corpus;
mod room;

pub use corpus::{sample_datagrams, seeds};
pub use room::{Room, run_room_burst};

use ed25519_dalek::{Signer, SigningKey};
use ringchat::ids::{DmId, Lamport, MsgId, NodeId, OriginSeq, Seq, WallMillis};
use ringchat::proto::{Command, Event, Node, NodeConfig, seal};
use ringchat::wire::{
    Ack, ChatEntry, DirectMessage, Envelope, Epoch, Heartbeat, MAX_PLAIN, Member, Message, Packet,
    Presence, Provenance, QueuedDm, Stamp, Submit, Welcome, decode, encode, proof_message,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The leader's id in both rooms.
pub const ALICE: NodeId = NodeId(100);
/// bob's id.
pub const BOB: NodeId = NodeId(200);
/// carol's id.
pub const CAROL: NodeId = NodeId(300);
/// A stranger's id.
pub const DAN: NodeId = NodeId(400);

/// Frames taken from one input, at most (longer inputs are cut).
const MAX_FRAMES: usize = 64;
/// Deadlines run through after the input, at most; each moves time on by at least
/// [`TAIL_STEP`] (so the tail covers retransmission give-ups and failure detection).
const MAX_TAIL_STEPS: usize = 60;
const TAIL_STEP: Duration = Duration::from_millis(150);
const ADVANCE_MS: [u64; 8] = [0, 1, 30, 100, 500, 3_000, 10_000, 60_000];

/// `127.0.0.1:port`.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The port each test node listens on.
pub fn port_of(id: NodeId) -> u16 {
    match id {
        ALICE => 1,
        BOB => 2,
        CAROL => 3,
        _ => 9,
    }
}

fn name_of(id: NodeId) -> &'static str {
    match id {
        ALICE => "alice",
        BOB => "bob",
        CAROL => "carol",
        _ => "dan",
    }
}

/// A test identity for a node that is not under test: its id's low byte, repeated.
pub fn signer(id: NodeId) -> SigningKey {
    SigningKey::from_bytes(&[id.0 as u8; 32])
}

/// The public key of [`signer`]`(id)`, computed once per process (deriving it is most of
/// the cost of building a node for each input).
pub fn public_key(id: NodeId) -> [u8; 32] {
    static KEYS: OnceLock<Mutex<HashMap<NodeId, [u8; 32]>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *keys
        .entry(id)
        .or_insert_with(|| signer(id).verifying_key().to_bytes())
}

/// Signatures already made, by signer and nonce.
type Proofs = Mutex<HashMap<(NodeId, [u8; 16]), Vec<u8>>>;

/// `id`'s proof for `nonce` (the leader's nonces are the same on every run, so this is
/// signed once per process).
fn proof(id: NodeId, nonce: [u8; 16]) -> Vec<u8> {
    static PROOFS: OnceLock<Proofs> = OnceLock::new();
    let mut proofs = PROOFS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    proofs
        .entry((id, nonce))
        .or_insert_with(|| {
            signer(id)
                .sign(&proof_message(&nonce, id, name_of(id)))
                .to_bytes()
                .to_vec()
        })
        .clone()
}

/// The public key `NodeConfig::new("bob", ..)` gives the follower, computed once.
fn follower_key(cfg: &NodeConfig) -> [u8; 32] {
    static KEY: OnceLock<([u8; 32], [u8; 32])> = OnceLock::new();
    let (secret, public) = KEY.get_or_init(|| {
        (
            cfg.identity,
            SigningKey::from_bytes(&cfg.identity)
                .verifying_key()
                .to_bytes(),
        )
    });
    if *secret == cfg.identity {
        *public
    } else {
        SigningKey::from_bytes(&cfg.identity)
            .verifying_key()
            .to_bytes()
    }
}

/// The datagram `from` sends carrying reliable message `msg` with transport id `id`.
pub fn data(from: NodeId, id: u64, msg: Message) -> Vec<u8> {
    datagram(from, Packet::Data { id: MsgId(id), msg })
}

/// The datagram `from` sends carrying `packet`.
pub fn datagram(from: NodeId, packet: Packet) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(50),
        packets: vec![packet],
    })
    .expect("test datagrams fit")
}

/// Drains every output; panics if the node sends a datagram that is not a valid one.
fn drain(node: &mut Node) -> (Vec<(SocketAddr, Envelope)>, Vec<Event>) {
    let mut sent = Vec::new();
    while let Some(t) = node.poll_transmit() {
        assert!(
            t.bytes.len() <= MAX_PLAIN,
            "the node sent {} bytes to {}, over the {MAX_PLAIN}-byte limit",
            t.bytes.len(),
            t.to
        );
        match decode(&t.bytes) {
            Ok(env) => sent.push((t.to, env)),
            Err(e) => panic!("the node sent an invalid datagram to {}: {e}", t.to),
        }
    }
    let mut events = Vec::new();
    while let Some(e) = node.poll_event() {
        events.push(e);
    }
    (sent, events)
}

fn member(id: NodeId, key: [u8; 32]) -> Member {
    Member {
        id,
        name: name_of(id).into(),
        addr: addr(port_of(id)),
        presence: Presence::Online,
        key,
        stamp: Stamp {
            lamport: Lamport(1),
            by: id,
        },
    }
}

/// A follower `bob` (port 2) welcomed into a room led by `alice` (port 1) with `carol`
/// (port 3).
pub fn follower(t0: Instant) -> Node {
    let cfg = NodeConfig::new("bob", addr(2), Some(addr(1)));
    let own_key = follower_key(&cfg);
    let mut n = Node::new(cfg, BOB, t0);
    drain(&mut n);
    let w = Welcome {
        newcomer: BOB,
        epoch: Epoch {
            term: 0,
            leader: ALICE,
        },
        next_seq: Seq(1),
        pending_from: Seq(1),
        oldest: Seq(1),
        part: 0,
        parts: 1,
        voting: Vec::new(),
        unlisted_voters: Vec::new(),
        voters_at: Seq(0),
        settling: vec![],
        voucher: None,
        members: vec![
            member(ALICE, public_key(ALICE)),
            member(BOB, own_key),
            member(CAROL, public_key(CAROL)),
        ],
    };
    n.handle_datagram(t0, addr(1), &data(ALICE, 1, Message::Welcome(w)));
    let (_, events) = drain(&mut n);
    assert!(
        events.iter().any(|e| matches!(e, Event::Joined { .. })),
        "harness: the follower was not welcomed: {events:?}"
    );
    n
}

/// `alice` (port 1) leading a room she created, into which `bob` (port 2) and `carol`
/// (port 3) joined, each answering the identity challenge.
pub fn leader(t0: Instant) -> Node {
    let mut n = Node::new(NodeConfig::new("alice", addr(1), None), ALICE, t0);
    drain(&mut n);
    for id in [BOB, CAROL] {
        let from = addr(port_of(id));
        let join = Message::Join {
            name: name_of(id).into(),
            key: public_key(id),
        };
        n.handle_datagram(t0, from, &data(id, 1, join));
        let (sent, _) = drain(&mut n);
        let nonce = sent
            .iter()
            .flat_map(|(to, env)| env.packets.iter().map(move |p| (to, p)))
            .find_map(|(to, packet)| match packet {
                Packet::Data {
                    msg: Message::Challenge { nonce, .. },
                    ..
                } if *to == from => Some(*nonce),
                _ => None,
            })
            .unwrap_or_else(|| panic!("harness: no challenge for {}: {sent:?}", name_of(id)));
        let signature = proof(id, nonce);
        n.handle_datagram(t0, from, &data(id, 2, Message::Proof { signature }));
        let (_, events) = drain(&mut n);
        assert!(
            events.contains(&Event::MemberOnline {
                name: name_of(id).into()
            }),
            "harness: {} was not admitted: {events:?}",
            name_of(id)
        );
    }
    n
}

fn command(payload: &[u8]) -> Command {
    let (&kind, rest) = payload.split_first().unwrap_or((&0, &[]));
    let text = String::from_utf8_lossy(rest).into_owned();
    match kind % 10 {
        0 => Command::SendAll { text },
        1 => Command::Send {
            to: vec!["carol".into()],
            text,
        },
        2 => Command::Send {
            to: vec!["alice".into(), "bob".into(), "carol".into()],
            text,
        },
        3 => Command::List,
        4 => Command::Status,
        5 => Command::Leave,
        6 => Command::Dereg { name: None },
        7 => Command::Reg {
            name: None,
            via: None,
        },
        8 => Command::History {
            count: rest.len(),
            search: None,
        },
        _ => Command::Send {
            to: text.split(',').map(str::to_string).collect(),
            text: "x".into(),
        },
    }
}

/// The `node_datagram` harness (the input format is in the crate documentation).
pub fn run_node(data: &[u8]) {
    let Some((&role, mut rest)) = data.split_first() else {
        return;
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut node = if role & 1 == 0 {
        follower(t0)
    } else {
        leader(t0)
    };
    let sources = [addr(1), addr(2), addr(3), addr(9)];
    for _ in 0..MAX_FRAMES {
        let Some((&ctl, after)) = rest.split_first() else {
            break;
        };
        let len = match after {
            [lo, hi, ..] => usize::from(u16::from_le_bytes([*lo, *hi])) % 2048,
            _ => after.len(),
        };
        let after = after.get(2..).unwrap_or(&[]);
        let (bytes, tail) = after.split_at(len.min(after.len()));
        rest = tail;

        let advance = ADVANCE_MS[usize::from(ctl >> 2 & 7)];
        if advance > 0 {
            now += Duration::from_millis(advance);
            node.handle_timeout(now);
            drain(&mut node);
        }
        if ctl & 0x20 != 0 {
            node.handle_command(now, WallMillis(1_700_000_000_000), command(bytes));
        } else {
            node.handle_datagram(now, sources[usize::from(ctl & 3)], bytes);
        }
        drain(&mut node);
    }
    for _ in 0..MAX_TAIL_STEPS {
        let Some(deadline) = node.poll_timeout() else {
            break;
        };
        now = deadline.max(now + TAIL_STEP);
        node.handle_timeout(now);
        drain(&mut node);
    }
}

/// The `decode` harness: no panic on any input, and an accepted envelope survives an
/// encode/decode round trip unchanged.
pub fn check_decode(data: &[u8]) {
    if let Ok(env) = decode(data) {
        let again = encode(&env).expect("a decoded envelope encodes again");
        assert!(
            again.len() <= data.len(),
            "re-encoding grew {} bytes to {}",
            data.len(),
            again.len()
        );
        assert_eq!(decode(&again).as_ref(), Ok(&env), "round trip changed it");
    }
}

/// One frame of a `node_datagram` input: a datagram from `port` after `advance_idx`.
pub fn frame(port_idx: u8, advance_idx: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(port_idx & 3) | (advance_idx & 7) << 2];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// One command frame of a `node_datagram` input.
pub fn command_frame(kind: u8, text: &str) -> Vec<u8> {
    let mut payload = vec![kind];
    payload.extend_from_slice(text.as_bytes());
    let mut out = vec![0x20];
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_run_and_decode() {
        for (target, name, bytes) in seeds() {
            match target {
                "decode" => {
                    assert!(decode(&bytes).is_ok(), "{name}");
                    check_decode(&bytes);
                }
                "room_burst" => run_room_burst(&bytes),
                _ => run_node(&bytes),
            }
        }
    }
}
