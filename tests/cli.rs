//! End-to-end tests of the `ringchat` binary: real processes talking UDP over loopback,
//! driven through stdin and observed through stdout, stderr, exit codes and log files.
//!
//! Every node listens on `--port 0` (the port is read back from its first line) and logs
//! into a fresh scratch directory, so tests can run in parallel. Nothing sleeps and hopes:
//! each step waits for the line that proves the previous one happened, with a generous
//! bound ([`WAIT`]) so that a slow machine does not fail a correct program.

mod common;

use common::{MemberLine, Proc, RoomLine, Scratch, WAIT, list, status, trio};
use ringchat::wire::{MAX_DIRECT_TEXT_BYTES, MAX_TEXT_BYTES};
use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

// ----- tests -----

/// Room messages from two concurrent senders (and a plain line from a third member, who
/// joined through a non-leader) are delivered in one total order, the same everywhere,
/// under the same rising numbers, keeping each sender's own order.
#[test]
fn three_nodes_see_room_messages_in_the_same_order() {
    let scratch = Scratch::new();
    let (mut alice, mut bob, mut carol) = trio(&scratch);

    const EACH: usize = 5;
    for i in 1..=EACH {
        alice.send(&format!("send_all from alice {i}"));
        bob.send(&format!("send_all from bob {i}"));
    }
    let plain = "just chatting, no command";
    carol.send(plain);
    let total = 2 * EACH + 1;

    let mut views = Vec::new();
    for p in [&mut alice, &mut bob, &mut carol] {
        let room = p.room_lines(total);
        // Rising numbers; changes of the voting configuration (a member joining) take
        // numbers of their own that are never shown, so the first is above 1.
        let seqs: Vec<u64> = room.iter().map(|r| r.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{}: sequence numbers {seqs:?}",
            p.label
        );
        for r in &room {
            assert_eq!(
                r.mine,
                r.name == p.label,
                "{}: (you) marker on {r:?}",
                p.label
            );
        }
        views.push(room);
    }
    fn shared(v: &[RoomLine]) -> Vec<(u64, u64, &str, &str)> {
        v.iter().map(RoomLine::shared).collect()
    }
    assert_eq!(
        shared(&views[0]),
        shared(&views[1]),
        "alice and bob disagree"
    );
    assert_eq!(
        shared(&views[0]),
        shared(&views[2]),
        "alice and carol disagree"
    );

    for sender in ["alice", "bob"] {
        let texts: Vec<&str> = views[0]
            .iter()
            .filter(|r| r.name == sender)
            .map(|r| r.text.as_str())
            .collect();
        let sent: Vec<String> = (1..=EACH).map(|i| format!("from {sender} {i}")).collect();
        assert_eq!(texts, sent, "{sender}'s messages out of order or missing");
    }
    let from_carol: Vec<&RoomLine> = views[0].iter().filter(|r| r.name == "carol").collect();
    assert_eq!(from_carol.len(), 1, "carol's plain line: {from_carol:?}");
    assert_eq!(from_carol[0].text, plain);
}

/// A private message reaches only its recipients, and the sender gets one receipt per
/// recipient.
#[test]
fn private_messages_reach_only_their_recipients() {
    let scratch = Scratch::new();
    let (mut alice, mut bob, mut carol) = trio(&scratch);

    bob.send("send carol hi carol, it's bob");
    let dm = carol.expect(|l| l.contains(" private"), "a private message");
    let (head, body) = dm.split_once("] ").expect("`] ` in a private line");
    // `[HH:MM:SS private L<lamport>`
    assert!(
        head.get(10..)
            .and_then(|h| h.strip_prefix("private L"))
            .is_some_and(|n| n.parse::<u64>().is_ok()),
        "private line header: {dm:?}"
    );
    assert_eq!(body, "bob: hi carol, it's bob");
    // The sender sees its own message, marked private and to whom, then the receipt.
    let own = bob.expect(|l| l.contains(" private"), "bob's own private line");
    assert!(
        own.contains(" private to carol L") && own.ends_with("] bob (you): hi carol, it's bob"),
        "{own:?}"
    );
    bob.expect_line("[Message received by carol.]");

    // A room message sent after the DM was received: once alice has it, she has had
    // every chance to (wrongly) see the DM.
    bob.send("send_all marker after the DM");
    for p in [&mut alice, &mut carol] {
        p.expect(
            |l| l.ends_with("bob: marker after the DM"),
            "the room marker",
        );
    }
    if let Some(l) = alice
        .seen
        .iter()
        .find(|l| l.contains(" private") || l.contains("hi carol"))
    {
        alice.fail(&format!("saw a DM meant for carol: {l:?}"));
    }

    bob.send("send alice,carol to you both");
    for p in [&mut alice, &mut carol] {
        let dm = p.expect(|l| l.contains(" private"), "the two-recipient DM");
        assert!(
            dm.contains(" private to alice,carol L") && dm.ends_with("] bob: to you both"),
            "{}: {dm:?}",
            p.label
        );
    }
    let mut receipts: Vec<String> = (0..2)
        .map(|_| bob.expect(|l| l.starts_with("[Message received by"), "a receipt"))
        .collect();
    receipts.sort();
    assert_eq!(
        receipts,
        [
            "[Message received by alice.]",
            "[Message received by carol.]"
        ]
    );
}

/// `list` and `status` at a member that joined through a non-leader.
#[test]
fn list_and_status_show_the_room() {
    let scratch = Scratch::new();
    let (alice, bob, mut carol) = trio(&scratch);

    let members = list(&mut carol, 3);
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"], "{members:?}");
    for (m, p) in members.iter().zip([&alice, &bob, &carol]) {
        assert_eq!(m.addr, format!("127.0.0.1:{}", p.port), "{m:?}");
        assert!(m.online, "{m:?}");
        assert_eq!(m.leader, m.name == "alice", "{m:?}");
        assert_eq!(m.me, m.name == "carol", "{m:?}");
    }

    // The lines the user relies on, in this order (others may come between them).
    let lines = status(&mut carol);
    let mut at = 0;
    for prefix in [
        "me:",
        "prev:",
        "next:",
        "leader:",
        "lamport:",
        "counters:",
        "pending:",
    ] {
        match lines[at..].iter().position(|l| l.starts_with(prefix)) {
            Some(i) => at += i + 1,
            None => panic!("no {prefix:?} line after line {at} in {lines:#?}"),
        }
    }
    let field = |prefix: &str| -> String {
        let line = lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .expect("checked above");
        line[prefix.len()..].trim().to_string()
    };
    let me = field("me:");
    assert!(
        me.starts_with("carol ") && me.ends_with(&format!(" at 127.0.0.1:{}", carol.port)),
        "me: {me:?}"
    );
    assert_eq!(field("leader:"), "alice");
    let neighbours: BTreeSet<String> = [field("prev:"), field("next:")].into();
    assert_eq!(
        neighbours,
        ["alice".to_string(), "bob".to_string()].into(),
        "in a ring of three, prev and next are the other two"
    );
    assert!(field("lamport:").parse::<u64>().is_ok(), "{lines:#?}");

    let counters = field("counters:");
    let words: Vec<&str> = counters.split_whitespace().collect();
    let keys: Vec<&str> = words.iter().step_by(2).take(7).copied().collect();
    assert_eq!(
        keys,
        [
            "sent",
            "retransmitted",
            "received",
            "dropped",
            "refused",
            "duplicates",
            "gave_up"
        ],
        "{counters:?}"
    );
    assert!(
        words.len().is_multiple_of(2)
            && words
                .iter()
                .skip(1)
                .step_by(2)
                .all(|v| v.parse::<u64>().is_ok()),
        "counters are `name number` pairs: {counters:?}"
    );
    let value = |key: &str| -> u64 {
        let i = words.iter().position(|w| *w == key).expect("checked above");
        words[i + 1].parse().expect("checked above")
    };
    assert!(value("sent") > 0 && value("received") > 0, "{counters:?}");
    assert_eq!(value("gave_up"), 0, "{counters:?}");
}

/// Every refused command prints one `error:` line, sends nothing, and the node goes on.
#[test]
fn bad_commands_print_errors_and_the_node_keeps_working() {
    let scratch = Scratch::new();
    let mut alice = Proc::create(&scratch, "alice");
    let mut bob = Proc::join(&scratch, "bob", &alice, 2, "alice");
    alice.expect_line("bob is online");

    let cases: Vec<(String, String)> = [
        ("send nobody hi", "error: no such user nobody"),
        (
            "send bob hi me",
            "error: you cannot send a private message to yourself",
        ),
        ("send_all", "error: empty message"),
        ("send_all    ", "error: empty message"),
        (
            "send alice    ",
            "error: usage: send <name>[,<name>...] <text>",
        ),
        ("/foo", "error: unknown command /foo (type help)"),
        ("send bob", "error: usage: send <name>[,<name>...] <text>"),
        (
            "lsit",
            "error: unknown command lsit (did you mean list?); to post a single word, type \
             send_all lsit",
        ),
        (
            "/clear",
            "error: clear works only on a terminal (input is not from one)",
        ),
    ]
    .map(|(typed, error)| (typed.to_string(), error.to_string()))
    .into();
    for (typed, error) in &cases {
        bob.send(typed);
        let got = bob.expect(
            |l| l.starts_with("error:"),
            &format!("the error for {typed:?}"),
        );
        assert_eq!(&got, error, "typing {typed:?}");
    }

    // Still working: the longest allowed message and a normal one go through, under
    // consecutive numbers the same at both (so none of the refused ones was sent between
    // them), and a DM is still delivered.
    let longest = "y".repeat(MAX_TEXT_BYTES);
    bob.send(&longest);
    bob.send("send_all still here");
    let mut firsts = Vec::new();
    for p in [&mut alice, &mut bob] {
        let room = p.room_lines(2);
        let first = room[0].seq;
        assert_eq!(
            room.iter()
                .map(|r| (r.seq, r.name.as_str(), r.text.as_str()))
                .collect::<Vec<_>>(),
            [
                (first, "bob", longest.as_str()),
                (first + 1, "bob", "still here")
            ],
            "{}",
            p.label
        );
        firsts.push(first);
    }
    assert_eq!(firsts[0], firsts[1], "alice and bob number them alike");
    bob.send("send alice still can DM");
    alice.expect(|l| l.ends_with("] bob: still can DM"), "bob's DM");
    bob.expect_line("[Message received by alice.]");
    // The longest private message, sealed for alice, fits a datagram and opens.
    let longest_dm = "d".repeat(MAX_DIRECT_TEXT_BYTES);
    bob.send(&format!("send alice {longest_dm}"));
    alice.expect(
        |l| l.ends_with(&format!("] bob: {longest_dm}")),
        "bob's longest DM",
    );
    bob.expect_line("[Message received by alice.]");

    // The irssi habits: `/me` posts `* bob ...`, `/msg` is `send`.
    bob.send("/me waves");
    alice.expect(|l| l.ends_with("] bob: * bob waves"), "bob's /me");
    bob.expect(|l| l.ends_with("] bob (you): * bob waves"), "bob's own /me");
    bob.send("/msg alice by msg");
    alice.expect(|l| l.ends_with("] bob: by msg"), "bob's /msg");

    // A paste over the limit goes out as several room messages, in order, cut between
    // characters: 400 `é` are 800 bytes.
    bob.send(&"é".repeat(400));
    let first = MAX_TEXT_BYTES / 2;
    for p in [&mut alice, &mut bob] {
        let texts: Vec<String> = p.room_lines(2).into_iter().map(|r| r.text).collect();
        assert_eq!(
            texts,
            ["é".repeat(first), "é".repeat(400 - first)],
            "{}",
            p.label
        );
    }
    // A private paste over the limit too (the crate's own constant): several private
    // messages, each with its receipt.
    bob.send(&format!("send alice {}", "é".repeat(400)));
    let first = MAX_DIRECT_TEXT_BYTES / 2;
    for part in ["é".repeat(first), "é".repeat(400 - first)] {
        let line = alice.expect(
            |l| l.contains(" private L"),
            "a part of bob's private paste",
        );
        assert!(line.ends_with(&format!("] bob: {part}")), "{line}");
    }
    for _ in 0..2 {
        bob.expect_line("[Message received by alice.]");
    }
}

/// A second `alice` (same identity, another process) is refused while the first is
/// online, and the room is unchanged.
#[test]
fn duplicate_name_is_refused() {
    let scratch = Scratch::new();
    let mut alice = Proc::create(&scratch, "alice");
    let mut twin = Proc::start(&scratch, "alice", Some(alice.port));
    twin.expect_line(
        "error: cannot join: join refused: that name is still online from another process \
         with your identity",
    );
    assert_eq!(twin.wait_exit(WAIT).code(), Some(1), "twin's exit code");

    // alice's table still holds only herself: one `list` line, then `status` output.
    let only = list(&mut alice, 1);
    assert!(
        only[0].name == "alice" && only[0].me && only[0].leader,
        "{only:?}"
    );
    status(&mut alice);
    let listed = alice.seen.iter().filter(|l| MemberLine::parse(l).is_some());
    assert_eq!(listed.count(), 1, "a second member was listed");
    if let Some(l) = alice.seen.iter().find(|l| l.contains("is online")) {
        alice.fail(&format!("the refused twin was announced: {l:?}"));
    }
}

/// A `--join` address where nobody answers fails within the join timeout (about 3 s),
/// saying what may be wrong and what to do.
#[test]
fn unreachable_contact_fails_the_join() {
    let scratch = Scratch::new();
    // Bound but silent: no ringchat answers, and no ICMP error shortens the wait.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind a silent socket");
    let port = silent.local_addr().expect("local addr").port();

    let started = Instant::now();
    let mut p = Proc::start(&scratch, "lonely", Some(port));
    p.expect_line(&format!(
        "error: cannot join: no answer from 127.0.0.1:{port}: nothing runs there, or the \
         room there has another key, or the invitation was used by another newcomer or is \
         more than a day old (or the room is open: then join with --insecure); ask a member \
         for a new invitation (they type invite) and start with --join <invitation>"
    ));
    let status = p.wait_exit(WAIT);
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1), "exit code");
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

/// A port that is already in use is reported on stderr with exit code 1.
#[test]
fn port_in_use_is_an_error() {
    let scratch = Scratch::new();
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind a socket");
    let port = taken.local_addr().expect("local addr").port().to_string();

    let mut p = Proc::spawn("squatter", &scratch, &["--name", "bob", "--port", &port]);
    let status = p.wait_exit(WAIT);
    assert_eq!(
        status.code(),
        Some(1),
        "exit code; stderr {:?}",
        p.stderr_text()
    );
    let expected = format!("error: cannot listen on 127.0.0.1:{port}");
    assert!(
        p.stderr_text().starts_with(&expected),
        "stderr {:?} should start with {expected:?}",
        p.stderr_text()
    );
    assert!(p.seen.is_empty(), "stdout: {:?}", p.seen);
}

/// Invalid flags are rejected before anything starts.
#[test]
fn bad_flags_are_rejected() {
    let scratch = Scratch::new();
    let cases: [&[&str]; 3] = [
        &["--name", "bob", "--port", "99999"],
        &["--name", "two words", "--port", "0"],
        &["--port", "0"],
    ];
    for args in cases {
        let mut p = Proc::spawn("bad flags", &scratch, args);
        let status = p.wait_exit(WAIT);
        assert!(!status.success(), "{args:?} exited with {status}");
        assert!(p.seen.is_empty(), "{args:?} printed {:?}", p.seen);
        assert!(
            p.stderr_text().starts_with("error:"),
            "{args:?} stderr {:?}",
            p.stderr_text()
        );
    }
}

/// `exit` and end of input both leave gracefully: exit code 0, `left the room`, and the
/// others see the member go offline.
#[test]
fn members_leave_gracefully() {
    let scratch = Scratch::new();
    let (mut alice, mut bob, mut carol) = trio(&scratch);

    bob.send("exit");
    bob.expect_line("left the room");
    let status = bob.wait_exit(WAIT);
    assert!(status.success(), "bob exited with {status}");
    alice.expect_line("bob is offline");
    carol.expect_line("bob is offline");

    let members = list(&mut alice, 3);
    let presence: Vec<(&str, bool)> = members
        .iter()
        .map(|m| (m.name.as_str(), m.online))
        .collect();
    assert_eq!(
        presence,
        [("alice", true), ("bob", false), ("carol", true)],
        "{members:?}"
    );
    alice.send("send bob are you there");
    // A private message to an offline member is kept by the leader (here alice herself).
    alice.expect_line("[bob is offline: message saved by alice.]");

    carol.close_stdin();
    carol.expect_line("left the room");
    let status = carol.wait_exit(WAIT);
    assert!(status.success(), "carol exited with {status}");
    alice.expect_line("carol is offline");
}

/// The log file `chat_<port>.log` exists and every line starts with a Lamport time.
#[test]
fn log_lines_start_with_the_lamport_time() {
    let scratch = Scratch::new();
    let mut alice = Proc::create(&scratch, "alice");
    let mut bob = Proc::join(&scratch, "bob", &alice, 2, "alice");
    alice.expect_line("bob is online");
    bob.send("hello log");
    alice.expect(|l| l.ends_with("bob: hello log"), "bob's message");
    bob.send("send alice psst");
    bob.expect_line("[Message received by alice.]");

    // Leave so that each log is flushed and complete.
    for p in [&mut bob, &mut alice] {
        p.close_stdin();
        p.expect_line("left the room");
        let status = p.wait_exit(WAIT);
        assert!(status.success(), "{} exited with {status}", p.label);
    }

    for p in [&alice, &bob] {
        let path = scratch.path().join(format!("chat_{}.log", p.port));
        let log = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let lines: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
        assert!(
            lines.len() >= 2,
            "{}: too few log lines: {log}",
            path.display()
        );
        for line in lines {
            let prefix = line.split_once(": ").map(|(n, _)| n);
            assert!(
                prefix.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
                "{}: line without a Lamport prefix: {line:?}",
                path.display()
            );
        }
    }
}

/// `--ephemeral` writes a log file only when asked with `--log-dir`, and then nothing
/// else: no identity file, no database. (The terminal tests check that without
/// `--log-dir` nothing at all is written.)
#[test]
fn ephemeral_writes_only_the_log_it_was_asked_for() {
    let dir = Scratch::new();
    let logs = dir.path().join("logs");
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["--name", "eph", "--port", "0", "--ephemeral", "--log-dir"])
        .arg(&logs)
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env_remove("RINGCHAT_IDENTITY")
        .env_remove("RINGCHAT_DATA_DIR");
    let mut p = Proc::spawn_command("eph", cmd);
    p.read_listening(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    p.expect_line("created a new room; you (eph) are the leader");
    p.close_stdin();
    p.expect_line("left the room");
    let status = p.wait_exit(WAIT);
    assert!(status.success(), "eph exited with {status}");
    let names = |d: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(dir.path()), ["logs"], "only the log directory");
    assert_eq!(names(&logs), [format!("chat_{}.log", p.port)]);
}
