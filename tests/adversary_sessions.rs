//! Every datagram is authenticated to its sender: attacks on real `ringchat` processes on
//! 127.0.0.1, built from the project's own wire code, each refused while the room goes on
//! chatting. An attacker here forges source addresses (a raw socket) and captures every
//! datagram on `lo` (a packet socket), as a neighbour on the same LAN could: those tests
//! need root and say `skipped` without it.
//!
//! Each attack worked before members talked in pairwise sessions (every datagram was
//! sealed with the one room key, with the sender id and a packet number in its header).
//! Each step waits for the line or counter that proves the previous one, with a generous
//! bound.

mod adversary;
mod common;

use adversary::{Capture, Captured, FakeMember, privileged, send_forged};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use common::*;
use ed25519_dalek::SigningKey;
use ringchat::guard::{Guard, KEY_BYTES, SEALED, admission, read_key};
use ringchat::ids::{DmId, Lamport, MsgId, NodeId, OriginSeq, WallMillis};
use ringchat::wire::{DirectMessage, Envelope, Message, Packet, Submit, encode};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// Starts `ringchat --name name --port port` (0: any) in `scratch`, joining through
/// `join`, keyed with `key`, with an identity of its own kept in `scratch` (the same one
/// on every start under that name).
#[track_caller]
fn start(
    scratch: &Scratch,
    name: &str,
    port: u16,
    join: Option<u16>,
    key: Option<&Path>,
    extra: &[&str],
) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("RINGCHAT_ROOM_KEY_FILE")
        .env(
            "RINGCHAT_IDENTITY",
            scratch.path().join(format!("{name}.identity")),
        )
        .env("XDG_DATA_HOME", scratch.path())
        .args(["--name", name, "--port", &port.to_string()])
        .args(extra)
        .arg("--log-dir")
        .arg(scratch.path());
    if let Some(port) = join {
        cmd.arg("--join").arg(format!("127.0.0.1:{port}"));
    }
    // Without a key the room is an open one, which needs saying.
    match key {
        Some(key) => cmd.arg("--room-key-file").arg(key),
        None => cmd.arg("--insecure"),
    };
    let mut p = Proc::spawn_command(name, cmd);
    p.read_listening("127.0.0.1".parse().expect("an address"));
    p
}

/// alice leads, bob joins through her, carol through bob; every one sees every other.
#[track_caller]
fn trio_with(scratch: &Scratch, key: Option<&Path>, extra: &[&str]) -> (Proc, Proc, Proc) {
    let mut alice = start(scratch, "alice", 0, None, key, extra);
    alice.expect_line("created a new room; you (alice) are the leader");
    let mut bob = start(scratch, "bob", 0, Some(alice.port), key, extra);
    bob.expect_line("joined the room: 2 members, leader is alice");
    alice.expect_line("bob is online");
    let carol = start(scratch, "carol", 0, Some(bob.port), key, extra);
    let mut carol = carol;
    carol.expect_line("joined the room: 3 members, leader is alice");
    alice.expect_line("carol is online");
    bob.expect_line("carol is online");
    (alice, bob, carol)
}

fn addr_of(p: &Proc) -> SocketAddr {
    p.addr.expect("read at start")
}

/// `p`'s node id, from the `me:` line of `status` (`me:      name (id) at addr`).
#[track_caller]
fn id_of(p: &mut Proc) -> NodeId {
    let lines = status(p);
    let me = &lines[0];
    let hex = me
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(id, _)| id)
        .unwrap_or_else(|| p.fail(&format!("no id in {me:?}")));
    NodeId(u64::from_str_radix(hex, 16).unwrap_or_else(|_| p.fail(&format!("bad id in {me:?}"))))
}

/// Polls `status` at `p` until counter `name` exceeds `above`; returns it.
#[track_caller]
fn wait_above(p: &mut Proc, name: &str, above: u64, what: &str) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = counter(p, name);
        if v > above {
            return v;
        }
        if Instant::now() > deadline {
            p.fail(&format!("{what}: {name} still {v} after {WAIT:?}"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn datagram(from: NodeId, id: u64, msg: Message) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(1000 + id),
        packets: vec![Packet::Data { id: MsgId(id), msg }],
    })
    .expect("fits a datagram")
}

fn direct(from_name: &str, to: &str, text: &str) -> Message {
    Message::Direct(DirectMessage {
        id: DmId(0x7000_0000 + text.len() as u64),
        from_name: from_name.into(),
        to: vec![to.into()],
        sealed: text.as_bytes().to_vec(),
    })
}

fn submit(name: &str, text: &str) -> Message {
    Message::Submit(Submit {
        origin_seq: OriginSeq(1),
        committed_below: OriginSeq(1),
        name: name.into(),
        lamport: Lamport(999),
        sent_at: WallMillis(1_700_000_000_000),
        text: text.into(),
        proof: Default::default(),
    })
}

/// Seals `plain` with the room key as the guard's header says, claiming `sender` and
/// packet number `pn` (any number: the attacker writes the header).
fn seal_as(key: &[u8; KEY_BYTES], sender: NodeId, pn: u64, plain: &[u8]) -> Vec<u8> {
    let mut out = vec![SEALED];
    out.extend_from_slice(&sender.0.to_le_bytes());
    out.extend_from_slice(&pn.to_le_bytes());
    out.extend_from_slice(&[0x11; 24]);
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let sealed = cipher
        .encrypt(
            &XNonce::from([0x11; 24]),
            Payload {
                msg: plain,
                aad: &out[..],
            },
        )
        .expect("seals");
    out.extend_from_slice(&sealed);
    out
}

/// Whether `p` showed a line containing `text`.
fn showed(p: &Proc, text: &str) -> bool {
    p.seen.iter().any(|l| l.contains(text))
}

/// The room still chats: a private message from `from` to `to` is shown there.
#[track_caller]
fn still_chats(from: &mut Proc, to: &mut Proc, to_name: &str, text: &str) {
    from.send(&format!("send {to_name} {text}"));
    to.expect(
        |l| l.ends_with(&format!(": {text}")),
        "a real message after the attack",
    );
}

/// erin joins through `via` with the room key at `key_path`, and shows the room message
/// `last` in her history.
fn erin_joins(scratch: &Scratch, via: &Proc, key_path: &Path, last: &str) -> Proc {
    let mut erin = start(scratch, "erin", 0, Some(via.port), Some(key_path), &[]);
    erin.expect(|l| l.starts_with("joined the room"), "erin in the room");
    erin.expect(|l| l.ends_with(last), "erin's history");
    erin
}

/// Says why a test that needs root did not run.
fn skipped(what: &str) {
    eprintln!("skipped: {what} needs root (raw and packet sockets)");
}

/// A private message to bob and a room message, both claiming to come from another
/// member (its node id, and its address as the datagram's source), in a room without a
/// key and, by a member holding the key, in a keyed room: bob's and alice's guards refuse
/// them (refused grows), nothing is shown, and the room still chats.
#[test]
fn a_forged_source_and_member_id_are_refused() {
    if !privileged() {
        return skipped("forging a member's source address");
    }
    for keyed in [false, true] {
        let scratch = Scratch::new();
        let key_path = keyed.then(|| keygen(&scratch, "room.key"));
        let room_key = key_path.as_deref().map(|p| read_key(p).expect("a key"));
        let (mut alice, mut bob, mut carol) = trio_with(&scratch, key_path.as_deref(), &[]);
        let (alice_id, carol_id) = (id_of(&mut alice), id_of(&mut carol));
        let wrap = |from: NodeId, plain: Vec<u8>| match &room_key {
            Some(k) => seal_as(k, from, 1 << 40, &plain),
            None => plain,
        };
        let b0 = counter(&mut bob, "refused");
        let a0 = counter(&mut alice, "refused");
        // To bob, as alice (from alice's address): a private message.
        let dm = wrap(
            alice_id,
            datagram(alice_id, 1 << 30, direct("alice", "bob", "forged dm")),
        );
        send_forged(addr_of(&alice), addr_of(&bob), &dm).expect("send a forged datagram");
        // To alice (the leader), as carol: a room message to sequence.
        let room = wrap(
            carol_id,
            datagram(carol_id, 1 << 30, submit("carol", "forged room")),
        );
        send_forged(addr_of(&carol), addr_of(&alice), &room).expect("send a forged datagram");
        wait_above(
            &mut bob,
            "refused",
            b0,
            "bob refusing the forged private message",
        );
        wait_above(
            &mut alice,
            "refused",
            a0,
            "alice refusing the forged room message",
        );
        still_chats(&mut alice, &mut bob, "bob", "real one");
        still_chats(&mut carol, &mut alice, "alice", "real two");
        bob.send("send_all still one room");
        for p in [&mut alice, &mut bob, &mut carol] {
            p.expect(
                |l| l.ends_with("bob: still one room") || l.ends_with("bob (you): still one room"),
                "the room message",
            );
        }
        for p in [&alice, &bob, &carol] {
            for text in ["forged dm", "forged room"] {
                assert!(!showed(p, text), "keyed {keyed}: {}", p.transcript());
            }
        }
    }
}

/// Captures a private message alice sends bob in a keyed room and replays every datagram
/// alice sent bob, from alice's address, to carol: carol's guard refuses them all (no
/// session of hers opens them: the recipient is bound into the keys) and shows nothing.
#[test]
fn a_datagram_for_bob_replayed_to_carol_is_refused() {
    if !privileged() {
        return skipped("capturing on lo and forging sources");
    }
    let scratch = Scratch::new();
    let key_path = keygen(&scratch, "room.key");
    let (mut alice, mut bob, mut carol) = trio_with(&scratch, Some(&key_path), &[]);
    let capture = Capture::start().expect("a packet socket on lo");
    alice.send("send bob for bob only");
    bob.expect(
        |l| l.ends_with("alice: for bob only"),
        "alice's private message",
    );
    thread::sleep(Duration::from_millis(200));
    let captured = capture.between(addr_of(&alice), addr_of(&bob));
    assert!(!captured.is_empty(), "nothing captured from alice to bob");
    let c0 = counter(&mut carol, "refused");
    for c in &captured {
        send_forged(addr_of(&alice), addr_of(&carol), &c.payload).expect("replay");
    }
    let refused = wait_above(
        &mut carol,
        "refused",
        c0 + captured.len() as u64 - 1,
        "carol refusing the replays",
    );
    assert!(refused >= c0 + captured.len() as u64);
    still_chats(&mut alice, &mut carol, "carol", "for carol");
    assert!(!showed(&carol, "for bob only"), "{}", carol.transcript());
}

/// Captures alice's private message to bob, then bob restarts (the same identity and
/// port, a new process): every captured datagram replayed to him is refused (his new
/// process holds new sessions; old captures name none of them), and nothing is shown
/// again.
#[test]
fn a_datagram_replayed_after_a_restart_is_refused() {
    if !privileged() {
        return skipped("capturing on lo and forging sources");
    }
    let scratch = Scratch::new();
    let key_path = keygen(&scratch, "room.key");
    let (mut alice, mut bob, mut carol) = trio_with(&scratch, Some(&key_path), &["--ephemeral"]);
    let capture = Capture::start().expect("a packet socket on lo");
    alice.send("send bob before the restart");
    bob.expect(
        |l| l.ends_with("alice: before the restart"),
        "alice's private message",
    );
    thread::sleep(Duration::from_millis(200));
    let captured: Vec<Captured> = capture.between(addr_of(&alice), addr_of(&bob));
    assert!(!captured.is_empty(), "nothing captured from alice to bob");
    let port = bob.port;
    bob.kill();
    alice.expect_line("bob is offline");
    carol.expect_line("bob is offline");
    let mut bob = start(
        &scratch,
        "bob",
        port,
        Some(alice.port),
        Some(&key_path),
        &["--ephemeral"],
    );
    bob.expect(|l| l.starts_with("joined the room"), "bob back in the room");
    let b0 = counter(&mut bob, "refused");
    for c in &captured {
        send_forged(addr_of(&alice), addr_of(&bob), &c.payload).expect("replay");
    }
    wait_above(
        &mut bob,
        "refused",
        b0 + captured.len() as u64 - 1,
        "bob refusing the old captures",
    );
    still_chats(&mut alice, &mut bob, "bob", "after the restart");
    assert!(!showed(&bob, "before the restart"), "{}", bob.transcript());
}

/// A member holding the room key sends one datagram with carol's id in its header and
/// packet number 2^64-1, and one copy of carol's own last datagram to bob with its
/// counter set to 2^64-1: carol's later messages are still shown everywhere.
#[test]
fn a_forged_packet_number_does_not_silence_a_member() {
    let scratch = Scratch::new();
    let key_path = keygen(&scratch, "room.key");
    let room_key = read_key(&key_path).expect("a key");
    let (mut alice, mut bob, mut carol) = trio_with(&scratch, Some(&key_path), &[]);
    let carol_id = id_of(&mut carol);
    let capture = privileged().then(|| Capture::start().expect("a packet socket on lo"));
    carol.send("send bob first");
    bob.expect(|l| l.ends_with("carol: first"), "carol's first message");
    let b0 = counter(&mut bob, "refused");
    let mallory = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let junk = datagram(carol_id, 1, direct("carol", "bob", "x"));
    let mut sent = 0;
    for to in [addr_of(&bob), addr_of(&alice)] {
        mallory
            .send_to(&seal_as(&room_key, carol_id, u64::MAX, &junk), to)
            .expect("send");
        sent += 1;
    }
    if let Some(capture) = &capture {
        thread::sleep(Duration::from_millis(200));
        let last = capture
            .between(addr_of(&carol), addr_of(&bob))
            .pop()
            .expect("carol's datagrams to bob captured");
        let mut forged = last.payload.clone();
        if forged.len() > 13 {
            forged[5..13].copy_from_slice(&u64::MAX.to_le_bytes());
        }
        send_forged(addr_of(&carol), addr_of(&bob), &forged).expect("send");
    } else {
        skipped("the capture half of this test");
    }
    let _ = sent;
    wait_above(&mut bob, "refused", b0, "bob refusing the forged numbers");
    for text in ["second", "third"] {
        carol.send(&format!("send bob {text}"));
        bob.expect(
            |l| l.ends_with(&format!("carol: {text}")),
            "carol's later message",
        );
    }
    carol.send("send_all carol still speaks");
    for p in [&mut alice, &mut bob] {
        p.expect(
            |l| l.ends_with("carol: carol still speaks"),
            "carol's room message",
        );
    }
}

/// dave leaves a keyed room (`exit`), keeping the room key and his identity, and captures
/// everything on `lo` afterwards: a room message, a private message to bob, and erin's
/// welcome (the member table and history), and erin's whole join exchange. Nothing he
/// captures opens: not with the room key (it seals only erin's ask), not with his
/// identity (the grant is sealed to erin's, her join exchange with her own join key, and
/// he holds no session).
#[test]
fn a_member_that_left_reads_nothing_sent_after() {
    if !privileged() {
        return skipped("capturing on lo");
    }
    let scratch = Scratch::new();
    let key_path = keygen(&scratch, "room.key");
    let room_key = read_key(&key_path).expect("a key");
    let (mut alice, mut bob, mut carol) = trio_with(&scratch, Some(&key_path), &[]);
    let mut dave = start(&scratch, "dave", 0, Some(alice.port), Some(&key_path), &[]);
    dave.expect(|l| l.starts_with("joined the room"), "dave in the room");
    let dave_id = id_of(&mut dave);
    alice.expect_line("dave is online");
    dave.send("exit");
    dave.wait_exit(WAIT);
    for p in [&mut alice, &mut bob, &mut carol] {
        p.expect_line("dave is offline");
    }
    let capture = Capture::start().expect("a packet socket on lo");
    alice.send("send_all said after dave left");
    bob.expect(
        |l| l.ends_with("alice: said after dave left"),
        "the room message",
    );
    alice.send("send bob private after dave left");
    bob.expect(
        |l| l.ends_with("alice: private after dave left"),
        "the private message",
    );
    let mut erin = erin_joins(&scratch, &bob, &key_path, "alice: said after dave left");
    thread::sleep(Duration::from_millis(300));
    let seen = capture.seen();
    assert!(seen.len() > 10, "only {} datagrams captured", seen.len());
    let identity =
        std::fs::read_to_string(scratch.path().join("dave.identity")).expect("dave's identity");
    let secret: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&identity.trim()[i * 2..i * 2 + 2], 16).expect("hex"))
        .collect();
    let secret: [u8; 32] = secret.try_into().expect("32 bytes");
    let mut join_exchange = 0;
    for c in &seen {
        // Erin's join exchange: her ask, its grant, and what is sealed with her join key.
        join_exchange += usize::from(matches!(
            c.payload.first(),
            Some(&(admission::ASK | admission::GRANT | admission::JOIN_SEALED))
        ));
        if c.payload.first() == Some(&admission::ASK) {
            // Erin's ask: sealed with the room key, it names the identity that asks (her
            // public key, which every member's table holds anyway), nothing else.
            continue;
        }
        // The room key opens nothing (a fresh window each time: replays do not matter).
        let by_key = Guard::new(dave_id, Some(room_key), u32::MAX);
        assert!(
            by_key.open(c.from, &c.payload).is_err(),
            "dave opened a datagram from {} to {} with the room key",
            c.from,
            c.to
        );
        // Nor does his identity, with the room key: no session (what he held is gone with
        // his process, and no member starts a new one with him), no join key of erin's,
        // no grant that was not for him.
        let by_identity = Guard::new(dave_id, Some(room_key), u32::MAX).with_identity(&secret);
        by_identity.set_table(true, &[]);
        let r = by_identity.receive(Instant::now(), c.from, &c.payload);
        assert!(
            r.is_err(),
            "dave opened a datagram from {} to {} with his identity: {r:?}",
            c.from,
            c.to
        );
        let text = String::from_utf8_lossy(&c.payload);
        assert!(
            !text.contains("after dave left"),
            "in the clear on the wire"
        );
    }
    assert!(
        join_exchange >= 3,
        "erin's join exchange was captured (the control): {join_exchange} datagrams"
    );
    still_chats(&mut bob, &mut erin, "erin", "welcome erin");
}

/// mallory joins a keyed room as a member (a test socket with the room key and an
/// identity of her own), holds sessions with the leader, and falls silent: the room finds
/// her dead. erin joins after, and mallory captures everything on `lo`. Nothing sent
/// between others opens with all she held: the room key, her join keys, her identity
/// (and the pair keys it makes with each member) and her sessions. (What the room still
/// sends her, probes of herself, is hers.)
#[test]
fn a_member_cut_out_keeps_no_key_that_opens_what_came_after() {
    if !privileged() {
        return skipped("capturing on lo");
    }
    let scratch = Scratch::new();
    let key_path = keygen(&scratch, "room.key");
    let room_key = read_key(&key_path).expect("a key");
    let (mut alice, mut bob, mut carol) = trio_with(&scratch, Some(&key_path), &[]);
    let identity = SigningKey::from_bytes(&[0x6d; 32]);
    let mallory_id = NodeId(0x6d61_6c6c_6f72_7901);
    let mut mallory = FakeMember::new(mallory_id, "mallory", Some(room_key), identity.clone());
    let join = Message::Join {
        name: "mallory".into(),
        key: identity.verifying_key().to_bytes(),
    };
    assert!(
        !mallory
            .send(
                &datagram(mallory_id, mallory.next_id(), join),
                addr_of(&alice)
            )
            .is_empty(),
        "mallory's join went out, sealed with her join key"
    );
    for p in [&mut alice, &mut bob, &mut carol] {
        p.expect_line("mallory is online");
    }
    mallory.go_silent();
    for p in [&mut alice, &mut bob, &mut carol] {
        p.expect_line("mallory is offline");
    }
    let capture = Capture::start().expect("a packet socket on lo");
    alice.send("send_all said after mallory went");
    bob.expect(
        |l| l.ends_with("alice: said after mallory went"),
        "the room message",
    );
    let mut erin = erin_joins(&scratch, &bob, &key_path, "alice: said after mallory went");
    still_chats(&mut carol, &mut erin, "erin", "hello erin");
    thread::sleep(Duration::from_millis(300));
    let seen = capture.seen();
    let mut join_exchange = 0;
    let mut others = 0;
    for c in &seen {
        if c.to == mallory.addr() {
            continue;
        }
        others += 1;
        join_exchange += usize::from(matches!(
            c.payload.first(),
            Some(&(admission::ASK | admission::GRANT | admission::JOIN_SEALED))
        ));
        if c.payload.first() == Some(&admission::ASK) {
            // Erin's ask names her identity key (public, in every table), nothing else.
            continue;
        }
        let r = mallory.guard().receive(Instant::now(), c.from, &c.payload);
        assert!(
            r.is_err(),
            "mallory opened a datagram from {} to {} ({} bytes, first byte {:#x}): {r:?}",
            c.from,
            c.to,
            c.payload.len(),
            c.payload[0]
        );
        let text = String::from_utf8_lossy(&c.payload);
        assert!(!text.contains("after mallory"), "in the clear on the wire");
    }
    assert!(
        others > 10,
        "only {others} datagrams between others captured"
    );
    assert!(
        join_exchange >= 3,
        "erin's join exchange was captured (the control): {join_exchange} datagrams"
    );
}
