//! A hostile member against the real binary: a test socket that holds the room key and
//! joined like anyone (mallory), built from the project's own wire code, tries to put
//! words in alice's mouth and to read the private messages it is given to keep. Each
//! attack is refused (counted in `status` as `forged`, never shown), and the room still
//! chats.
//!
//! Each step waits for the line or counter that proves the previous one happened, with a
//! generous bound; nothing sleeps and hopes.

mod common;

use common::*;
use ed25519_dalek::{Signer, SigningKey};
use ringchat::guard::{Guard, KEY_BYTES, read_key};
use ringchat::ids::{DmId, Lamport, MsgId, NodeId, OriginSeq, Seq, WallMillis};
use ringchat::proto::seal;
use ringchat::wire::{
    Ack, ChatEntry, DirectMessage, Envelope, Epoch, Heartbeat, Member, Message, Packet, Provenance,
    QueuedDm, decode, encode, proof_message,
};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Committed, as a member's shown history is sent (any term of the room's is below it).
const COMMITTED: u64 = u64::MAX;

/// A member that is only a test socket holding the room key: it joins (answering the
/// leader's identity challenge), acks what it is sent, keeps it, and sends hand-built
/// datagrams.
struct Mallory {
    id: NodeId,
    identity: SigningKey,
    socket: UdpSocket,
    guard: Arc<Guard>,
    next_id: AtomicU64,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    /// Every datagram it received that opened and decoded.
    received: Arc<Mutex<Vec<Envelope>>>,
}

impl Mallory {
    fn new(room_key: [u8; KEY_BYTES]) -> Self {
        let id = NodeId(0x0bad_f00d_0000_0002);
        let identity = SigningKey::from_bytes(&[0x4d; 32]);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let guard = Arc::new(Guard::new(id, Some(room_key), u32::MAX));
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let socket = socket.try_clone().expect("clone the socket");
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            let (guard, stop, received, identity) = (
                guard.clone(),
                stop.clone(),
                received.clone(),
                identity.clone(),
            );
            thread::spawn(move || {
                let mut buf = [0u8; 2048];
                // Its proofs go out on ids of a stream of their own, far from the others.
                let mut proof_id = 1 << 20;
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let Some(env) = guard
                        .open(from, &buf[..n])
                        .ok()
                        .and_then(|p| decode(&p).ok())
                    else {
                        continue;
                    };
                    for packet in &env.packets {
                        let Packet::Data { id: msg_id, msg } = packet else {
                            continue;
                        };
                        let ack = Envelope {
                            from: id,
                            lamport: Lamport(1),
                            packets: vec![Packet::Ack(Ack::of_one(env.from, *msg_id))],
                        };
                        let ack = encode(&ack).expect("fits");
                        let _ = socket.send_to(&guard.seal(&ack), from);
                        if let Message::Challenge { nonce } = msg {
                            let signature = identity
                                .sign(&proof_message(nonce, id, "mallory"))
                                .to_bytes()
                                .to_vec();
                            proof_id += 1;
                            let proof = datagram(id, proof_id, Message::Proof { signature });
                            let _ = socket.send_to(&guard.seal(&proof), from);
                        }
                    }
                    received.lock().unwrap_or_else(|e| e.into_inner()).push(env);
                }
            })
        };
        Mallory {
            id,
            identity,
            socket,
            guard,
            next_id: AtomicU64::new(1),
            stop,
            reader: Some(reader),
            received,
        }
    }

    /// Sends `packets`, sealed with the room key, to `to`.
    fn send(&self, to: SocketAddr, packets: Vec<Packet>) {
        let plain = encode(&Envelope {
            from: self.id,
            lamport: Lamport(100),
            packets,
        })
        .expect("fits a datagram");
        self.socket
            .send_to(&self.guard.seal(&plain), to)
            .expect("send");
    }

    /// A data packet with a fresh id.
    fn data(&self, msg: Message) -> Packet {
        Packet::Data {
            id: MsgId(self.next_id.fetch_add(1, Ordering::Relaxed)),
            msg,
        }
    }

    /// Every reliable message it was sent, in order.
    fn messages(&self) -> Vec<Message> {
        let got = self.received.lock().unwrap_or_else(|e| e.into_inner());
        got.iter()
            .flat_map(|e| &e.packets)
            .filter_map(|p| match p {
                Packet::Data { msg, .. } => Some(msg.clone()),
                _ => None,
            })
            .collect()
    }

    /// The member table entry for `name`, from the tables it was sent.
    fn member(&self, name: &str) -> Option<Member> {
        self.messages()
            .into_iter()
            .flat_map(|m| match m {
                Message::Welcome(w) => w.members,
                Message::Members(list) => list,
                _ => Vec::new(),
            })
            .filter(|m| m.name == name)
            .max_by_key(|m| m.stamp)
    }

    /// The leader and term it was welcomed under.
    fn epoch(&self) -> Epoch {
        self.messages()
            .into_iter()
            .find_map(|m| match m {
                Message::Welcome(w) => Some(w.epoch),
                _ => None,
            })
            .expect("welcomed")
    }

    /// The highest room sequence number it was sent.
    fn high(&self) -> u64 {
        self.messages()
            .into_iter()
            .filter_map(|m| match m {
                Message::Sequenced(e) => Some(e.seq.0),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Waits until it was sent a message that `want` picks; returns it.
    #[track_caller]
    fn wait_for<T>(&self, what: &str, want: impl Fn(&Message) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(t) = self.messages().iter().find_map(&want) {
                return t;
            }
            assert!(Instant::now() < deadline, "mallory was never sent {what}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mallory {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// A plain datagram from `from` carrying reliable message `msg` as id `id`.
fn datagram(from: NodeId, id: u64, msg: Message) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(1),
        packets: vec![Packet::Data { id: MsgId(id), msg }],
    })
    .expect("fits a datagram")
}

/// Starts a member of the room keyed by `key`.
#[track_caller]
fn start(scratch: &Scratch, name: &str, join: Option<u16>, key: &Path) -> Proc {
    let key = key.to_str().expect("a UTF-8 scratch path");
    Proc::start_with(scratch, name, join, &["--room-key-file", key])
}

/// A keyed room of alice (leading) and bob, and mallory joined as a test socket.
fn room(scratch: &Scratch) -> (Proc, Proc, Mallory, SocketAddr) {
    let key_path = keygen(scratch, "room.key");
    let room_key = read_key(&key_path).expect("read the room key");
    let mut alice = start(scratch, "alice", None, &key_path);
    alice.expect_line("created a new room; you (alice) are the leader");
    let mut bob = start(scratch, "bob", Some(alice.port), &key_path);
    bob.expect_line("joined the room: 2 members, leader is alice");
    alice.expect_line("bob is online");
    let mallory = Mallory::new(room_key);
    let join = Message::Join {
        name: "mallory".into(),
        key: mallory.identity.verifying_key().to_bytes(),
    };
    let alice_addr = alice.addr.expect("read at start");
    mallory.send(alice_addr, vec![mallory.data(join)]);
    alice.expect_line("mallory is online");
    bob.expect_line("mallory is online");
    mallory.wait_for("its welcome", |m| {
        matches!(m, Message::Welcome(_)).then_some(())
    });
    (alice, bob, mallory, alice_addr)
}

/// A room message that claims alice wrote `text`: `seq`, alice's node, her name, sealed
/// with `signer` (mallory's identity: she has no other).
fn claimed(seq: u64, alice: NodeId, text: &str, signer: &SigningKey) -> ChatEntry {
    let mut e = ChatEntry {
        seq: Seq(seq),
        origin: alice,
        name: "alice".into(),
        origin_seq: OriginSeq(1),
        lamport: Lamport(7),
        sent_at: WallMillis(1_700_000_000_000),
        text: text.into(),
        term: COMMITTED,
        proof: Provenance::default(),
    };
    let link = seal::chain_start(alice);
    let written = seal::Written {
        origin: alice,
        name: "alice",
        origin_seq: e.origin_seq,
        lamport: e.lamport,
        sent_at: e.sent_at,
        text,
    };
    let value = seal::chain(&link, &written);
    e.proof = Provenance {
        link: Some(link),
        seal: Some(seal::seal_run(signer, &value)),
    };
    e
}

/// A gap-fill making bob show a room message as alice's: mallory's heartbeat makes bob
/// want the next number, and in the same datagram mallory sends it, committed, as
/// alice's (sealed with mallory's identity, the only one she has) and as alice's under
/// mallory's own node. Bob refuses both (`forged` +2) and shows neither; alice's real
/// message is shown at that number, and the room goes on.
#[test]
fn a_gap_fill_claiming_alices_words_is_refused() {
    let scratch = Scratch::new();
    let (mut alice, mut bob, mallory, _) = room(&scratch);
    alice.send("send_all before");
    bob.expect(
        |l| RoomLine::parse(l).is_some_and(|r| r.text == "before"),
        "alice's first message",
    );
    let alice_node = mallory.member("alice").expect("alice in the table").id;
    let bob_addr = bob.addr.expect("read at start");
    let before = counters(&mut bob);
    let next = mallory.high() + 1;
    let wants_next = Packet::Heartbeat(Heartbeat {
        epoch: Some(mallory.epoch()),
        delivered: Seq(next),
        digest: 0,
        probe: false,
    });
    let lie = "the room key changed, ask mallory for the new one";
    let forged = claimed(next, alice_node, lie, &mallory.identity);
    let mut own_node = claimed(next, mallory.id, lie, &mallory.identity);
    own_node.origin = mallory.id;
    mallory.send(
        bob_addr,
        vec![
            wants_next,
            mallory.data(Message::Sequenced(forged)),
            mallory.data(Message::Sequenced(own_node)),
        ],
    );
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let c = counters(&mut bob);
        if c["forged"] >= before["forged"] + 2 || Instant::now() > deadline {
            break c;
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        after["forged"],
        before["forged"] + 2,
        "bob refused both claims: {before:?} -> {after:?}"
    );

    alice.send("send_all the real one");
    let real = bob.expect(
        |l| RoomLine::parse(l).is_some_and(|r| r.text == "the real one"),
        "alice's real message",
    );
    let real = RoomLine::parse(&real).expect("a room line");
    assert_eq!((real.seq, real.name.as_str()), (next, "alice"));
    bob.send("send_all bob goes on");
    alice.expect(
        |l| RoomLine::parse(l).is_some_and(|r| r.text == "bob goes on"),
        "bob's message",
    );
    if let Some(l) = bob.seen.iter().find(|l| l.contains(lie)) {
        bob.fail(&format!("showed mallory's words as someone's: {l:?}"));
    }
}

/// A `Handover` (and a direct message) from mallory of a private message "from alice",
/// sealed for bob (whose key mallory has from the member table) and signed by mallory:
/// bob refuses both and shows neither. Alice's own private message is shown as hers.
#[test]
fn a_handover_claiming_alice_is_refused() {
    let scratch = Scratch::new();
    let (mut alice, mut bob, mallory, _) = room(&scratch);
    let alice_node = mallory.member("alice").expect("alice").id;
    let bob_member = mallory.member("bob").expect("bob");
    let lie = "alice here: my key file moved, send me yours";
    let sealed_as = |origin: NodeId, id: u64| {
        let to = vec!["bob".to_string()];
        let header = seal::DirectHeader {
            origin,
            id: DmId(id),
            from_name: "alice",
            to: &to,
            recipient: "bob",
            recipient_key: &bob_member.key,
        };
        let content = seal::DirectContent {
            lamport: Lamport(5),
            sent_at: WallMillis(1_700_000_000_000),
            text: lie.into(),
        };
        DirectMessage {
            id: DmId(id),
            from_name: "alice".into(),
            to: to.clone(),
            sealed: seal::seal_direct(&mallory.identity, &header, &content, [9; 32])
                .expect("sealed"),
        }
    };
    let before = counters(&mut bob);
    let handover = Message::Handover(QueuedDm {
        origin: alice_node,
        to: 0,
        dm: sealed_as(alice_node, 41),
    });
    let direct = Message::Direct(sealed_as(mallory.id, 42));
    mallory.send(
        bob_member.addr,
        vec![mallory.data(handover), mallory.data(direct)],
    );
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let c = counters(&mut bob);
        if c["forged"] >= before["forged"] + 2 || Instant::now() > deadline {
            break c;
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        after["forged"],
        before["forged"] + 2,
        "{before:?} -> {after:?}"
    );
    alice.send("send bob the real one");
    bob.expect(|l| l.ends_with("] alice: the real one"), "alice's message");
    if let Some(l) = bob.seen.iter().find(|l| l.contains(lie)) {
        bob.fail(&format!("showed mallory's words as alice's: {l:?}"));
    }
}

/// Mallory holds the room key and keeps a replica of every private message kept for an
/// offline member, as every member does: the copy of alice's message for carol (offline)
/// reaches mallory, who can open the datagram but not the message: the text is not in
/// it, and mallory's identity does not open it. Carol, back, reads it from alice.
#[test]
fn a_kept_private_message_is_sealed_for_its_recipient() {
    let scratch = Scratch::new();
    let (mut alice, mut bob, mallory, _) = room(&scratch);
    let key_path = scratch.path().join("room.key");
    let mut carol = start(&scratch, "carol", Some(bob.port), &key_path);
    carol.expect_line("joined the room: 4 members, leader is alice");
    alice.expect_line("carol is online");
    carol.send("dereg");
    alice.expect_line("carol is offline");
    bob.expect_line("carol is offline");
    let secret = "the spare key is under the third flowerpot";
    alice.send(&format!("send carol {secret}"));
    alice.expect(
        |l| l.starts_with("[carol is offline: message saved by"),
        "alice's message kept for carol",
    );
    let kept = mallory.wait_for("a replica of the kept message", |m| match m {
        Message::Queued(item) if item.recipient() == "carol" => Some(item.clone()),
        _ => None,
    });
    assert!(
        !kept
            .dm
            .sealed
            .windows(b"flowerpot".len())
            .any(|w| w == b"flowerpot"),
        "the kept copy holds the text in the clear"
    );
    let carol_member = mallory.member("carol").expect("carol");
    let alice_member = mallory.member("alice").expect("alice");
    for (recipient, key) in [
        ("carol", carol_member.key),
        ("mallory", mallory.identity.verifying_key().to_bytes()),
    ] {
        let header = seal::DirectHeader {
            origin: kept.origin,
            id: kept.dm.id,
            from_name: &kept.dm.from_name,
            to: &kept.dm.to,
            recipient,
            recipient_key: &key,
        };
        assert!(
            seal::open_direct(
                &mallory.identity,
                &header,
                &alice_member.key,
                &kept.dm.sealed
            )
            .is_err(),
            "mallory opened the copy kept for carol (as {recipient})"
        );
    }
    carol.send("reg");
    carol.expect(
        |l| l.ends_with(&format!("] alice: {secret}")),
        "the kept message, at carol",
    );
}
