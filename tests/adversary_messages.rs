//! A hostile member against the real binary: a test socket that holds the room key and
//! joined like anyone (mallory, [`FakeMember`], built from the project's own wire and
//! guard code), so it holds a valid session with every member it talks to. It tries to
//! put words in alice's mouth and to read the private messages it is given to keep. Each
//! attack is refused (not taken from her at all, or counted in `status` as `forged`;
//! never shown), and the room still chats.
//!
//! Each step waits for the line or counter that proves the previous one happened, with a
//! generous bound; nothing sleeps and hopes.

mod adversary;
mod common;

use adversary::{FakeMember, plain};
use common::*;
use ed25519_dalek::SigningKey;
use ringchat::guard::read_key;
use ringchat::ids::{DmId, Lamport, MsgId, NodeId, OriginSeq, Seq, WallMillis};
use ringchat::proto::seal;
use ringchat::wire::{
    ChatEntry, DirectMessage, Envelope, Epoch, Heartbeat, Message, Packet, Provenance, QueuedDm,
    encode,
};
use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// Committed, as a member's shown history is sent (any term of the room's is below it).
const COMMITTED: u64 = u64::MAX;

/// Sends `packets` in one datagram from `m` to `to`, in its session with the member there.
#[track_caller]
fn send(m: &FakeMember, to: SocketAddr, packets: Vec<Packet>) {
    let plain = encode(&Envelope {
        from: m.id,
        lamport: Lamport(100),
        packets,
    })
    .expect("fits a datagram");
    assert!(
        !m.send(&plain, to).is_empty(),
        "no session with {to} carried it"
    );
}

/// A data packet from `m` with a fresh id.
fn data(m: &FakeMember, msg: Message) -> Packet {
    Packet::Data {
        id: MsgId(m.next_id()),
        msg,
    }
}

/// The leader and term `m` was welcomed under.
fn epoch(m: &FakeMember) -> Epoch {
    m.messages()
        .into_iter()
        .find_map(|m| match m {
            Message::Welcome(w) => Some(w.epoch),
            _ => None,
        })
        .expect("welcomed")
}

/// The highest room sequence number `m` was sent.
fn high(m: &FakeMember) -> u64 {
    m.messages()
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) => Some(e.seq.0),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Starts a member of the room keyed by `key`.
#[track_caller]
fn start(scratch: &Scratch, name: &str, join: Option<u16>, key: &Path) -> Proc {
    let key = key.to_str().expect("a UTF-8 scratch path");
    Proc::start_with(scratch, name, join, &["--room-key-file", key])
}

/// A keyed room of alice (leading) and bob, and mallory joined as a test socket with the
/// room key and an identity of its own (its sessions with the members start as it speaks).
fn room(scratch: &Scratch) -> (Proc, Proc, FakeMember, SocketAddr) {
    let key_path = keygen(scratch, "room.key");
    let room_key = read_key(&key_path).expect("read the room key");
    let mut alice = start(scratch, "alice", None, &key_path);
    alice.expect_line("created a new room; you (alice) are the leader");
    let mut bob = start(scratch, "bob", Some(alice.port), &key_path);
    bob.expect_line("joined the room: 2 members, leader is alice");
    alice.expect_line("bob is online");
    let mallory = FakeMember::new(
        NodeId(0x0bad_f00d_0000_0002),
        "mallory",
        Some(room_key),
        SigningKey::from_bytes(&[0x4d; 32]),
    );
    let join = Message::Join {
        name: "mallory".into(),
        key: mallory.identity.verifying_key().to_bytes(),
    };
    let alice_addr = alice.addr.expect("read at start");
    mallory.send(&plain(mallory.id, mallory.next_id(), join), alice_addr);
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

/// A gap-fill making bob show a room message as alice's: mallory's heartbeats say the
/// room is one number further than it is, and with each she sends that number,
/// committed, as alice's (sealed with mallory's identity, the only one she has) and as
/// alice's under mallory's own node. Bob asks the leader for it and then, with no
/// answer, mallory: he refuses both copies (`forged` +2 each time she sends them once
/// asked) and shows neither; alice's real message is shown at that number, and the
/// room goes on. (Unasked, her copies are not even looked at, and a genuine message of
/// hers there would still wait for another member's word: `numbers.rs`.)
#[test]
fn a_gap_fill_claiming_alices_words_is_refused() {
    let scratch = Scratch::new();
    let (mut alice, mut bob, mallory, _) = room(&scratch);
    alice.send("send_all before");
    let shown = bob.expect(
        |l| RoomLine::parse(l).is_some_and(|r| r.text == "before"),
        "alice's first message",
    );
    let alice_node = mallory.member("alice").expect("alice in the table").id;
    let bob_addr = bob.addr.expect("read at start");
    // The number after the last one bob showed, whether or not mallory has heard of it
    // yet (on a busy machine she may not have: she then named a number bob had shown,
    // which he never asks for).
    let shown_seq = RoomLine::parse(&shown).map_or(0, |r| r.seq);
    let next = high(&mallory).max(shown_seq) + 1;
    let wants_next = Packet::Heartbeat(Heartbeat {
        epoch: Some(epoch(&mallory)),
        delivered: Seq(next),
        digest: 0,
        probe: false,
        unknown: false,
    });
    let lie = "the room key changed, ask mallory for the new one";
    let forged = claimed(next, alice_node, lie, &mallory.identity);
    let mut own_node = claimed(next, mallory.id, lie, &mallory.identity);
    own_node.origin = mallory.id;
    let before = counters(&mut bob);
    // Claims and copies a heartbeat interval apart, until bob has refused a pair: his
    // repairs ask the leader, which has nothing there yet, then mallory.
    let deadline = Instant::now() + WAIT;
    let after = loop {
        send(
            &mallory,
            bob_addr,
            vec![
                wants_next.clone(),
                data(&mallory, Message::Sequenced(forged.clone())),
                data(&mallory, Message::Sequenced(own_node.clone())),
            ],
        );
        let c = counters(&mut bob);
        if c["forged"] >= before["forged"] + 2 || Instant::now() > deadline {
            break c;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert!(
        after["forged"] >= before["forged"] + 2
            && (after["forged"] - before["forged"]).is_multiple_of(2),
        "bob refused both claims each time: {before:?} -> {after:?}"
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
    send(
        &mallory,
        bob_member.addr,
        vec![data(&mallory, handover), data(&mallory, direct)],
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
