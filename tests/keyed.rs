//! Secure by default, with the real binary: a new room is keyed (its creator makes a key,
//! kept in its data directory, and prints a one-time invitation); a newcomer with the
//! invitation joins and chats, another identity with the same invitation does not get in,
//! one with an address only is refused before it starts, saying how to get in; a damaged
//! invitation is a bad flag; an open room needs `--insecure` and says so; a keyed creator
//! restarted keeps its key, and a member that joined by invitation comes back without
//! one; `./s1`, `./s2` and `./s3` share the local key without being told.

mod common;
#[path = "keyed/kept.rs"]
mod kept;

use common::{Proc, Scratch, WAIT, counter, status};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The line above an invitation (`ringchat::ui::INVITATION_INTRO`).
const INTRO: &str = "invitation: a friend starts ringchat with --join and the next line \
                     (it lets one newcomer in, within 24 hours; type invite for another)";

/// Starts a node with exactly `args` (no key given by the harness) and reads its port.
#[track_caller]
fn start(scratch: &Scratch, name: &str, args: &[&str]) -> Proc {
    let mut all = vec!["--name", name];
    all.extend(args);
    let mut p = Proc::spawn_as_user(name, scratch, &all);
    p.read_listening(LOCALHOST);
    p
}

/// Reads the two invitation lines (the intro, then the invitation alone) and returns the
/// invitation, checking that it names `addr`.
#[track_caller]
fn invitation(p: &mut Proc) -> String {
    p.expect_line(INTRO);
    let token = p.next_line("the invitation");
    let addr = p.addr.expect("the listening address");
    if !token.starts_with(&format!("ringchat2:{addr}/")) {
        p.fail(&format!("{token:?} is not an invitation to {addr}"));
    }
    token
}

/// The key part of an invitation: the 64 hex digits after the `/`.
fn key_of(token: &str) -> String {
    let (_, secret) = token.rsplit_once('/').expect("a / in the invitation");
    secret[..64].to_string()
}

/// The key in a key file, as hex.
fn key_in(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.trim().to_string()
}

/// The permission bits of a file.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Types `exit` and checks the node leaves with exit code 0.
#[track_caller]
fn leave(p: &mut Proc) {
    p.send("exit");
    p.expect_line("left the room");
    let status = p.wait_exit(WAIT);
    assert!(status.success(), "{} exited with {status}", p.label);
}

/// The data directory a node named `name` on `port` uses by default in `scratch`.
fn data_dir(scratch: &Scratch, name: &str, port: u16) -> PathBuf {
    scratch
        .path()
        .join("ringchat")
        .join(format!("{name}-{port}"))
}

/// A room created with no key given is keyed: its creator makes a key (kept in its data
/// directory, mode 0600) and shows a one-time invitation, which is not that key; a node
/// given only the address cannot start (exit code 2, saying the room is keyed and how to
/// get an invitation), and an open node's join gets no answer and is told why; with the
/// invitation a newcomer joins and chats, holding no room key; another identity with the
/// same invitation (a copy, or the newcomer under a new name) gets no answer; the
/// newcomer's own `invite` lets a third one in.
#[test]
fn a_new_room_is_keyed_and_an_invitation_lets_a_newcomer_in() {
    let scratch = Scratch::new();
    let mut alice = start(&scratch, "alice", &["--port", "0"]);
    alice.expect_line("created a new room; you (alice) are the leader");
    let token = invitation(&mut alice);
    let alices_dir = data_dir(&scratch, "alice", alice.port);
    let key_file = alices_dir.join("room.key");
    assert_ne!(
        key_of(&token),
        key_in(&key_file),
        "a one-time invitation is not the room key"
    );
    let minted = alices_dir.join("invitations");
    assert!(
        key_in(&minted).starts_with(&key_of(&token)),
        "alice keeps what she minted"
    );
    assert_eq!(mode(&minted), 0o600);
    assert_eq!(
        mode(&key_file),
        0o600,
        "the key is readable by its owner only"
    );
    let addr = alice.addr.expect("address").to_string();

    // An address alone: refused before anything starts, with what to do.
    let mut bare = Proc::spawn_as_user(
        "bare",
        &scratch,
        &["--name", "bare", "--port", "0", "--join", &addr],
    );
    let status = bare.wait_exit(WAIT);
    assert_eq!(
        status.code(),
        Some(2),
        "exit code; {:?}",
        bare.stderr_text()
    );
    assert!(bare.seen.is_empty(), "nothing on stdout: {:?}", bare.seen);
    let said = bare.stderr_text();
    let gives = format!("--join {addr} gives an address but no room key, and rooms are keyed");
    for needle in [
        gives.as_str(),
        "ask a member for an invitation (they type invite)",
        "--join <invitation>",
        "--insecure",
    ] {
        assert!(said.contains(needle), "{needle:?} in {said:?}");
    }
    assert!(
        std::fs::read_dir(scratch.path().join("ringchat"))
            .expect("the data folder")
            .all(|e| !e
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .starts_with("bare")),
        "a node refused at start keeps nothing"
    );

    // An open node: its join never opens at alice, so no answer, and it is told why.
    let refused_before = counter(&mut alice, "refused");
    let mut open = start(
        &scratch,
        "open",
        &["--port", "0", "--join", &addr, "--insecure"],
    );
    open.expect_line(&format!(
        "error: cannot join: no answer from {addr}: nothing runs there, or the room there \
         is keyed (rooms are, unless started with --insecure) and this node has no key; ask \
         a member for an invitation (they type invite) and start with --join <invitation>"
    ));
    assert_eq!(open.wait_exit(WAIT).code(), Some(1));
    assert!(
        counter(&mut alice, "refused") > refused_before,
        "refused at the guard"
    );

    // With the invitation: in, and talking both ways.
    let mut carol = start(&scratch, "carol", &["--port", "0", "--join", &token]);
    carol.expect_line("joined the room: 2 members, leader is alice");
    alice.expect_line("carol is online");
    carol.send("hello from carol");
    alice.expect(
        |l| l.ends_with("] carol: hello from carol"),
        "carol's message",
    );
    alice.send("welcome carol");
    carol.expect(|l| l.ends_with("] alice: welcome carol"), "alice's answer");
    let carols_dir = data_dir(&scratch, "carol", carol.port);
    assert!(
        !carols_dir.join("room.key").exists(),
        "the newcomer holds no room key"
    );
    let kept = carols_dir.join("invitation.key");
    assert_eq!(
        key_in(&kept),
        key_of(&token),
        "the newcomer keeps the invitation"
    );
    assert_eq!(mode(&kept), 0o600);

    // The same invitation, used by another identity: no answer, and told what may be wrong.
    let mut eve = start(&scratch, "eve", &["--port", "0", "--join", &token]);
    eve.expect(
        |l| {
            l.starts_with(&format!("error: cannot join: no answer from {addr}"))
                && l.contains("the invitation was used by another newcomer")
        },
        "eve's join, unanswered",
    );
    assert_eq!(eve.wait_exit(WAIT).code(), Some(1));

    // Any member's invitation works, with its own address; each is a new one.
    carol.send("invite");
    let from_carol = invitation(&mut carol);
    assert_ne!(key_of(&from_carol), key_of(&token));
    let mut dave = start(&scratch, "dave", &["--port", "0", "--join", &from_carol]);
    dave.expect_line("joined the room: 3 members, leader is alice");
    dave.send("dave here");
    for p in [&mut alice, &mut carol] {
        p.expect(|l| l.ends_with("] dave: dave here"), "dave's message");
    }
    for p in [&mut dave, &mut carol, &mut alice] {
        leave(p);
    }
    assert!(
        alice.stderr_text().contains(&format!(
            "made a room key for this room, kept in {}",
            key_file.display()
        )),
        "{:?}",
        alice.stderr_text()
    );
    assert!(
        !alice.stderr_text().contains("--insecure"),
        "a keyed room is not called open: {:?}",
        alice.stderr_text()
    );
}

/// A damaged invitation, or one with a contradicting flag, is refused before anything
/// starts: exit code 2, one error saying what is wrong, nothing on stdout, nothing kept.
/// (The good one comes from `ringchat invite --room FILE`, and holds FILE's key.)
#[test]
fn a_malformed_invitation_is_refused_with_a_clear_error() {
    let scratch = Scratch::new();
    let key_file = common::keygen(&scratch, "room.key");
    let out = Command::new(common::BIN)
        .args(["invite", "--at", "127.0.0.1:5001", "--room"])
        .arg(&key_file)
        .output()
        .expect("run ringchat invite");
    assert!(
        out.status.success(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let good = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim_end()
        .to_string();
    assert!(good.starts_with("ringchat1:127.0.0.1:5001/"), "{good}");
    assert_eq!(key_of(&good), key_in(&key_file));
    let mut changed = good.clone().into_bytes();
    let at = good.find('/').expect("a /") + 1;
    // One hex digit of the key changed (to another digit: the key is random).
    changed[at] = if changed[at] == b'c' { b'd' } else { b'c' };
    let changed = String::from_utf8(changed).expect("ASCII");
    let cases: Vec<(String, &str)> = vec![
        (good[..good.len() - 4].to_string(), "cut short"),
        (changed, "check digits do not match"),
        (
            good.replace("ringchat1:", "ringchat9:"),
            "version 9 invitation",
        ),
        ("ringchat1:127.0.0.1:5001".to_string(), "it has no key"),
        (
            good.replace("127.0.0.1:5001", "127.0.0.1"),
            "is not HOST:PORT",
        ),
        (format!("{}zz", &good[..good.len() - 2]), "not a hex digit"),
    ];
    for (i, (text, why)) in cases.iter().enumerate() {
        let name = format!("m{i}");
        let mut p = Proc::spawn_as_user(
            &name,
            &scratch,
            &["--name", &name, "--port", "0", "--join", text],
        );
        let status = p.wait_exit(WAIT);
        let said = p.stderr_text();
        assert_eq!(status.code(), Some(2), "{text}: {status}; {said:?}");
        assert!(p.seen.is_empty(), "{text}: stdout {:?}", p.seen);
        assert!(
            said.starts_with("error: invalid value") && said.contains("not a usable invitation"),
            "{text}: {said:?}"
        );
        assert!(said.contains(why), "{text}: {why:?} in {said:?}");
        assert!(!said.contains("panicked"), "{said}");
    }
    // A good invitation with --insecure: a contradiction, said as such.
    let mut p = Proc::spawn_as_user(
        "both",
        &scratch,
        &[
            "--name",
            "both",
            "--port",
            "0",
            "--join",
            &good,
            "--insecure",
        ],
    );
    assert_eq!(p.wait_exit(WAIT).code(), Some(2));
    let said = p.stderr_text();
    assert!(
        said.starts_with("error: --insecure opens the room, and the invitation gives it a key"),
        "{said:?}"
    );
    assert!(
        !scratch.path().join("ringchat").exists(),
        "nothing kept by refused starts"
    );
    // The good one, to show that the cases above differ from it only by their damage.
    let mut p = start(&scratch, "fine", &["--port", "0", "--join", &good]);
    p.expect(
        |l| l.starts_with("error: cannot join: no answer"),
        "a join nobody answers",
    );
}

/// An open room needs `--insecure` and says so: a warning at start, a `key:` line in
/// `status` (in `--json`, `insecure: true`), and `invite` says how to join it. A keyed
/// node's `status` and JSON say the opposite, and its JSON creation carries an
/// `invitation` event that `invite` repeats.
#[test]
fn an_open_room_says_so_at_start_and_in_status() {
    let scratch = Scratch::new();
    let mut open = start(&scratch, "olivia", &["--port", "0", "--insecure"]);
    open.expect_line("created a new room; you (olivia) are the leader");
    let lines = status(&mut open);
    assert!(!lines.is_empty());
    open.expect_line(
        "key:     none: an OPEN room (--insecure): anyone who can reach it can join, read and post",
    );
    let addr = open.addr.expect("address").to_string();
    open.send("invite");
    open.expect_line(&format!(
        "this room is open (--insecure), so there is no invitation: a friend joins with --join {addr} --insecure"
    ));
    // Joinable with an address and --insecure, as before.
    let mut pat = start(
        &scratch,
        "pat",
        &["--port", "0", "--join", &addr, "--insecure"],
    );
    pat.expect_line("joined the room: 2 members, leader is olivia");
    leave(&mut pat);
    leave(&mut open);
    let warning = "warning: --insecure: this room is OPEN: no key, so anyone who can reach it \
                   can join, read and post (without --insecure a room is keyed)";
    for p in [&open, &pat] {
        assert!(
            p.stderr_text().lines().any(|l| l == warning),
            "{}: {:?}",
            p.label,
            p.stderr_text()
        );
    }

    // JSON: the status fields, and the invitation as an event.
    let json = |p: &mut Proc, kind: &str| -> Value {
        let line = p.expect(
            |l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["event"] == kind),
            &format!("a {kind} event"),
        );
        serde_json::from_str(&line).expect("JSON")
    };
    let mut quinn = Proc::spawn_as_user(
        "quinn",
        &scratch,
        &["--name", "quinn", "--port", "0", "--json", "--insecure"],
    );
    quinn.next_line("the listening event");
    quinn.send("status");
    let s = json(&mut quinn, "status");
    assert_eq!(
        (&s["insecure"], &s["room_key"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
    let mut kim = Proc::spawn_as_user(
        "kim",
        &scratch,
        &["--name", "kim", "--port", "0", "--json", "--ephemeral"],
    );
    kim.next_line("the listening event");
    json(&mut kim, "joined");
    let first = json(&mut kim, "invitation");
    let token = first["invitation"].as_str().expect("a string").to_string();
    assert!(token.starts_with("ringchat2:127.0.0.1:"), "{token}");
    kim.send("invite");
    let again = json(&mut kim, "invitation")["invitation"].clone();
    let again = again.as_str().expect("a string");
    assert!(again.starts_with("ringchat2:127.0.0.1:"), "{again}");
    assert_ne!(again, token, "a new invitation each time");
    kim.send("status");
    let s = json(&mut kim, "status");
    assert_eq!(
        (&s["insecure"], &s["room_key"]),
        (&Value::Bool(false), &Value::Bool(true))
    );
    for p in [&mut quinn, &mut kim] {
        p.send("exit");
        json(p, "left");
        assert!(p.wait_exit(WAIT).success());
    }
    assert!(
        kim.stderr_text()
            .contains("made a room key for this run only (--ephemeral)"),
        "{:?}",
        kim.stderr_text()
    );
}
