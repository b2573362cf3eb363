//! The room key, the replay window and the per-source rate limit, against the real
//! binary on 127.0.0.1: a node without the room's key can neither join nor get an answer,
//! a captured datagram sent again is refused by the guard (not merely suppressed by the
//! protocol), and a flood of garbage neither crashes a node nor stops the room.
//!
//! Each step waits for the line (or counter) that proves the previous one happened, with a
//! generous bound; nothing sleeps and hopes.

mod adversary;
mod common;
#[path = "security/flood.rs"]
mod flood;

use adversary::{FakeMember, plain};
use common::*;
use ed25519_dalek::SigningKey;
use ringchat::guard::{Guard, KEY_BYTES, read_key};
use ringchat::ids::{DmId, Lamport, NodeId, WallMillis};
use ringchat::proto::seal;
use ringchat::wire::{DirectMessage, Message, decode};
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Starts `ringchat --name name --port 0 [--join 127.0.0.1:join] (--room-key-file key |
/// --insecure)`,
/// with no room key from the environment and an identity of its own in the scratch
/// directory, and reads its port.
#[track_caller]
fn start(scratch: &Scratch, name: &str, join: Option<u16>, key: Option<&Path>) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("RINGCHAT_ROOM_KEY_FILE")
        .env(
            "RINGCHAT_IDENTITY",
            scratch.path().join(format!("{name}.identity")),
        )
        // History databases in scratch too, never the user's own data directory.
        .env("XDG_DATA_HOME", scratch.path())
        .args(["--name", name, "--port", "0"])
        .arg("--log-dir")
        .arg(scratch.path());
    if let Some(port) = join {
        cmd.arg("--join").arg(format!("127.0.0.1:{port}"));
    }
    match key {
        Some(key) => cmd.arg("--room-key-file").arg(key),
        None => cmd.arg("--insecure"),
    };
    let mut p = Proc::spawn_command(name, cmd);
    p.read_listening(LOCALHOST);
    p
}

/// A node that creates a room (keyed when `key` is given) and leads it.
#[track_caller]
fn create(scratch: &Scratch, name: &str, key: Option<&Path>) -> Proc {
    let mut p = start(scratch, name, None, key);
    p.expect_line(&format!("created a new room; you ({name}) are the leader"));
    p
}

/// A node that joins through `contact` and sees `members` members led by `leader`.
#[track_caller]
fn join(
    scratch: &Scratch,
    name: &str,
    contact: &Proc,
    key: Option<&Path>,
    (members, leader): (usize, &str),
) -> Proc {
    let mut p = start(scratch, name, Some(contact.port), key);
    p.expect_line(&format!(
        "joined the room: {members} members, leader is {leader}"
    ));
    p
}

/// Where `p` listens.
fn addr_of(p: &Proc) -> SocketAddr {
    p.addr.expect("read at start")
}

/// `p` fails to join through `contact`: the documented error line, then exit code 1.
#[track_caller]
fn expect_cannot_join(p: &mut Proc, contact: u16) {
    let no_answer = format!("error: cannot join: no answer from 127.0.0.1:{contact}: ");
    p.expect(
        |l| l.starts_with(&no_answer) && l.contains("invitation (they type invite)"),
        &format!("{no_answer}..."),
    );
    let status = p.wait_exit(WAIT);
    if status.code() != Some(1) {
        p.fail(&format!("exited with {status}, not 1"));
    }
}

/// Polls `status` at `p` until counter `name` satisfies `done`; returns all counters then.
#[track_caller]
fn wait_counter(
    p: &mut Proc,
    name: &str,
    what: &str,
    done: impl Fn(u64) -> bool,
) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let c = counters(p);
        let Some(&v) = c.get(name) else {
            p.fail(&format!("no counter {name:?} in {c:?}"));
        };
        if done(v) {
            return c;
        }
        if Instant::now() > deadline {
            p.fail(&format!(
                "{what}: counter {name} is {v} after {WAIT:?} ({c:?})"
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn join_message(name: &str, identity: &SigningKey) -> Message {
    Message::Join {
        name: name.into(),
        key: identity.verifying_key().to_bytes(),
    }
}

/// A room key file holds 64 hex digits and is private to its owner.
#[track_caller]
fn check_key_file(path: &Path) -> [u8; KEY_BYTES] {
    let text = std::fs::read_to_string(path).expect("read the key file");
    let hex = text.trim();
    assert!(
        hex.len() == 2 * KEY_BYTES && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{}: {text:?} is not 64 hex digits",
        path.display()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{} mode {mode:o}", path.display());
    }
    read_key(path).expect("the key reads back")
}

/// a. In a keyed room, a node with another room's key (joining through the leader) and a
/// node with no key (joining through a member that does not lead) both fail to join with
/// the documented error and exit code 1; the members they tried refused their datagrams
/// and count them, and neither was ever announced. A node with the key joins (the
/// control: the room itself works).
#[test]
fn only_holders_of_the_room_key_can_join() {
    let scratch = Scratch::new();
    let key = keygen(&scratch, "room.key");
    let other = keygen(&scratch, "other.key");
    assert_ne!(
        check_key_file(&key),
        check_key_file(&other),
        "two fresh keys"
    );

    let mut alice = create(&scratch, "alice", Some(&key));
    let mut bob = join(&scratch, "bob", &alice, Some(&key), (2, "alice"));
    alice.expect_line("bob is online");
    let alice_before = counter(&mut alice, "refused");
    let bob_before = counter(&mut bob, "refused");

    let started = Instant::now();
    let mut eve = start(&scratch, "eve", Some(alice.port), Some(&other));
    let mut mallory = start(&scratch, "mallory", Some(bob.port), None);
    expect_cannot_join(&mut eve, alice.port);
    expect_cannot_join(&mut mallory, bob.port);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "failing to join took {took:?}"
    );
    if !mallory
        .stderr_text()
        .lines()
        .any(|l| l.starts_with("warning: --insecure: this room is OPEN"))
    {
        mallory.fail("no `warning: --insecure` line on stderr");
    }
    for p in [&alice, &bob, &eve] {
        if p.stderr_text().contains("warning: --insecure") {
            p.fail("warned of an open room although it has a key");
        }
    }

    let alice_after = counter(&mut alice, "refused");
    let bob_after = counter(&mut bob, "refused");
    assert!(
        alice_after > alice_before,
        "alice refused {alice_before} before eve's tries and {alice_after} after"
    );
    assert!(
        bob_after > bob_before,
        "bob refused {bob_before} before mallory's tries and {bob_after} after"
    );

    for p in [&mut alice, &mut bob] {
        let names: Vec<String> = list(p, 2).into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["alice", "bob"], "{}", p.label);
        status(p); // anything printed before the status is in `seen` now
        let listed = p.seen.iter().filter(|l| MemberLine::parse(l).is_some());
        assert_eq!(listed.count(), 2, "{}: a third member was listed", p.label);
        if let Some(l) = p
            .seen
            .iter()
            .find(|l| l.contains("is online") && !l.contains("bob"))
        {
            p.fail(&format!("a node without the key was announced: {l:?}"));
        }
    }
}

/// b. A socket that joined nothing sends a keyed leader a plain `Join` (twice), and a
/// `Join` sealed with another key: no reply at all within 2 s, and each is counted as
/// refused before it reached the protocol (neither received nor dropped there). The
/// control: the same plain `Join` sent to a keyless node is answered.
#[test]
fn a_node_without_the_key_gets_no_answer() {
    let scratch = Scratch::new();
    let key = keygen(&scratch, "room.key");
    let mut keyed = create(&scratch, "alice", Some(&key));
    let open = create(&scratch, "olivia", None);

    let snoop_id = NodeId(0x5e0f_5e0f_5e0f_5e0f);
    let identity = SigningKey::from_bytes(&[0x5e; 32]);
    let join = plain(snoop_id, 1, join_message("snoop", &identity));
    let mut buf = [0u8; 2048];

    // The control: a keyless node answers this very datagram.
    let control = UdpSocket::bind("127.0.0.1:0").expect("bind");
    control
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    control.send_to(&join, addr_of(&open)).expect("send");
    match recv_retrying(&control, &mut buf) {
        Ok((n, from)) => {
            assert_eq!(from, addr_of(&open));
            if let Err(e) = decode(&buf[..n]) {
                panic!("the keyless node's answer does not decode: {e}");
            }
        }
        Err(e) => panic!("the keyless control node did not answer the join: {e}"),
    }

    let before = counters(&mut keyed);
    let snoop = UdpSocket::bind("127.0.0.1:0").expect("bind");
    snoop
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let wrong_key = Guard::new(snoop_id, Some([0x42; KEY_BYTES]), u32::MAX);
    let tries = [
        join.clone(),
        plain(snoop_id, 2, join_message("snoop", &identity)),
        wrong_key
            .seal(&plain(snoop_id, 3, join_message("snoop", &identity)))
            .expect("a room key seals"),
    ];
    for d in &tries {
        snoop.send_to(d, addr_of(&keyed)).expect("send");
    }
    let sent_at = Instant::now();
    match recv_retrying(&snoop, &mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Err(e) => panic!("receive failed: {e}"),
        Ok((n, from)) => keyed.fail(&format!(
            "answered a node without the key: {n} bytes from {from}: {:?}",
            decode(&buf[..n])
        )),
    }
    assert!(sent_at.elapsed() >= Duration::from_millis(1900));

    let after = wait_counter(&mut keyed, "refused", "refusing the snoop", |v| {
        v >= before["refused"] + tries.len() as u64
    });
    assert_eq!(
        after["refused"],
        before["refused"] + tries.len() as u64,
        "{before:?} -> {after:?}"
    );
    for name in ["received", "dropped", "duplicates"] {
        assert_eq!(
            after[name], before[name],
            "{name}: refused datagrams must not reach the protocol ({before:?} -> {after:?})"
        );
    }
}

/// c. Replay. A test socket holding the room key and an identity joins as `mallory`. Its
/// sealed `Join`, sent again byte for byte once it is in, is refused by the leader's guard
/// (refused grows by one, no new challenge). A private message to bob, in mallory's session
/// with bob, is shown; the same bytes sent again are refused by bob's guard (refused +1,
/// duplicates unchanged, not shown again). The control: the same message sealed anew (the
/// session's next counter) does pass the guard and is suppressed by the protocol instead
/// (duplicates +1, refused unchanged), so the first refusal was the replay window's doing.
#[test]
fn a_replayed_datagram_is_refused_by_the_guard() {
    let scratch = Scratch::new();
    let key_path = keygen(&scratch, "room.key");
    let room_key = read_key(&key_path).expect("read the room key");
    let mut alice = create(&scratch, "alice", Some(&key_path));
    let mut bob = join(&scratch, "bob", &alice, Some(&key_path), (2, "alice"));
    alice.expect_line("bob is online");

    let identity = SigningKey::from_bytes(&[0x4d; 32]);
    let fake = FakeMember::new(
        NodeId(0x0bad_f00d_0000_0001),
        "mallory",
        Some(room_key),
        identity.clone(),
    );
    let join_plain = plain(fake.id, fake.next_id(), join_message("mallory", &identity));
    let join_sealed = fake.send(&join_plain, addr_of(&alice)).remove(0);
    alice.expect_line("mallory is online");
    bob.expect_line("mallory is online");
    let challenges = fake.challenges();
    assert_eq!(challenges, 1, "one identity challenge for one join");

    // The captured join, again: the leader's guard refuses it.
    let a0 = counters(&mut alice);
    fake.send_raw(&join_sealed, addr_of(&alice));
    let a1 = wait_counter(&mut alice, "refused", "refusing the replayed join", |v| {
        v > a0["refused"]
    });
    assert_eq!(a1["refused"], a0["refused"] + 1, "{a0:?} -> {a1:?}");
    assert_eq!(a1["duplicates"], a0["duplicates"], "{a0:?} -> {a1:?}");
    assert_eq!(fake.challenges(), 1, "the replayed join was challenged");

    // A private message to bob, sealed for him and signed by mallory, shown once.
    let bob_key = fake
        .key_of("bob")
        .expect("bob's identity, from the welcome");
    let dm = |id: u64, text: &str| {
        let to = vec!["bob".to_string()];
        let header = seal::DirectHeader {
            origin: fake.id,
            id: DmId(id),
            from_name: "mallory",
            to: &to,
            recipient: "bob",
            recipient_key: &bob_key,
        };
        let content = seal::DirectContent {
            lamport: Lamport(40 + id),
            sent_at: WallMillis(1_700_000_000_000),
            text: text.into(),
        };
        let sealed = seal::seal_direct(&identity, &header, &content, [id as u8; 32]).expect("seal");
        Message::Direct(DirectMessage {
            id: DmId(id),
            from_name: "mallory".into(),
            to,
            sealed,
        })
    };
    let replay_me = plain(fake.id, fake.next_id(), dm(1, "replay me"));
    let captured = fake.send(&replay_me, addr_of(&bob));
    assert_eq!(captured.len(), 1, "one datagram in the session");
    bob.expect(|l| l.ends_with("] mallory: replay me"), "mallory's message");
    let b0 = counters(&mut bob);

    // The same bytes again: refused by bob's guard.
    fake.send_raw(&captured[0], addr_of(&bob));
    let b1 = wait_counter(&mut bob, "refused", "refusing the replayed message", |v| {
        v > b0["refused"]
    });
    assert_eq!(b1["refused"], b0["refused"] + 1, "{b0:?} -> {b1:?}");
    assert_eq!(b1["duplicates"], b0["duplicates"], "{b0:?} -> {b1:?}");

    // The control: sealed anew, it passes the guard and the protocol suppresses it.
    fake.send(&replay_me, addr_of(&bob));
    let b2 = wait_counter(
        &mut bob,
        "duplicates",
        "suppressing the resent message",
        |v| v > b1["duplicates"],
    );
    assert_eq!(b2["duplicates"], b1["duplicates"] + 1, "{b1:?} -> {b2:?}");
    assert_eq!(b2["refused"], b1["refused"], "{b1:?} -> {b2:?}");

    // Still in: a new message is shown, and the first one was shown exactly once.
    let fresh = plain(fake.id, fake.next_id(), dm(2, "after the replay"));
    fake.send(&fresh, addr_of(&bob));
    bob.expect(
        |l| l.ends_with("] mallory: after the replay"),
        "the new message",
    );
    let shown = bob
        .seen
        .iter()
        .filter(|l| l.ends_with("] mallory: replay me"))
        .count();
    assert_eq!(shown, 1, "{}", bob.transcript());
}

/// `recv_from` that goes on waiting when a signal interrupts it (`EINTR`): only a datagram
/// or the socket's own read timeout ends it.
fn recv_retrying(socket: &UdpSocket, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    loop {
        match socket.recv_from(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
