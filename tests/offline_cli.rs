//! Going offline and coming back, with real processes on 127.0.0.1: x, y and z exchange
//! private messages with receipts; x deregisters; y and z each leave x a message (both are
//! told it was saved); the leader is killed and a new one elected; x registers again and
//! sees both messages, in order, with their original send times, exactly once. Departed
//! members age out of `list` (`--forget-after`), and come back by registering again.

mod common;

use common::{MemberLine, Proc, Scratch, trio};
use std::time::{Duration, Instant};

/// Seconds since midnight, local time, now.
fn local_seconds_now() -> u64 {
    let now = ringchat::ui::local_time(ringchat::driver::wall_now());
    seconds_of(&now)
}

fn seconds_of(hms: &str) -> u64 {
    let parts: Vec<u64> = hms.split(':').map(|p| p.parse().expect("digits")).collect();
    parts[0] * 3600 + parts[1] * 60 + parts[2]
}

/// Seconds since midnight of the `[HH:MM:SS ...` stamp that starts `line`.
fn stamp_in(line: &str) -> u64 {
    seconds_of(line.get(1..9).expect("a time stamp"))
}

/// Whether two seconds-of-day are within `slack` of each other (across midnight too).
fn close(a: u64, b: u64, slack: u64) -> bool {
    let d = a.abs_diff(b);
    d.min(86_400 - d) <= slack
}

#[test]
fn kept_messages_survive_the_leader_and_arrive_once_in_order() {
    let scratch = Scratch::new();
    let mut z = Proc::create(&scratch, "z");
    let mut x = Proc::join(&scratch, "x", &z, 2, "z");
    let mut y = Proc::join(&scratch, "y", &x, 3, "z");
    z.expect_line("y is online");
    x.expect_line("y is online");
    // A fourth member, so that with x offline and the leader dead two of the three
    // voters are left: a majority, and the room goes on.
    let mut w = Proc::join(&scratch, "w", &y, 4, "z");
    y.expect_line("w is online");

    // Private messages with receipts while everyone is online.
    x.send("send y hi y");
    y.expect(
        |l| l.contains(" private L") && l.ends_with("x: hi y"),
        "x's message",
    );
    x.expect_line("[Message received by y.]");
    y.send("send x,z hello both");
    let mut receipts: Vec<String> = (0..2)
        .map(|_| y.expect(|l| l.starts_with("[Message received by "), "a receipt"))
        .collect();
    receipts.sort();
    assert_eq!(
        receipts,
        ["[Message received by x.]", "[Message received by z.]"]
    );
    x.expect(|l| l.ends_with("y: hello both"), "y's message");
    z.expect(|l| l.ends_with("y: hello both"), "y's message");

    // x goes offline; everyone sees it.
    x.send("dereg x");
    x.expect(|l| l.starts_with("you are offline"), "the offline notice");
    y.expect_line("x is offline");
    z.expect_line("x is offline");

    // y and z each leave x a message; both are told it was saved by the leader z.
    let sent_one = local_seconds_now();
    y.send("send x one, from y");
    y.expect_line("[x is offline: message saved by z.]");
    let sent_two = local_seconds_now();
    z.send("send x two, from z");
    z.expect_line("[x is offline: message saved by z.]");

    // The leader dies; y or w is elected.
    z.kill();
    y.expect_line("z is offline");
    y.expect(|l| l.starts_with("leader is now "), "a new leader");
    w.expect_line("z is offline");

    // x comes back (its last leader z is dead: it tries the next member it knows) and
    // gets both messages, in order, with their original send times.
    x.send("reg x");
    let one = x.expect_within(
        Duration::from_secs(20),
        |l| l.contains("kept while you were offline") && l.ends_with("y: one, from y"),
        "y's kept message",
    );
    let two = x.expect(
        |l| l.contains("kept while you were offline"),
        "the next kept message",
    );
    assert!(
        two.ends_with("z: two, from z"),
        "kept messages out of order: {one:?} then {two:?}"
    );
    assert!(close(stamp_in(&one), sent_one, 2), "send time of {one:?}");
    assert!(close(stamp_in(&two), sent_two, 2), "send time of {two:?}");

    // Exactly once: after a later message has gone through, neither came again.
    y.send("send x after");
    x.expect(|l| l.ends_with("y: after"), "a later private message");
    x.pump();
    let kept_lines = x
        .seen
        .iter()
        .filter(|l| l.contains("one, from y") || l.contains("two, from z"))
        .count();
    assert_eq!(kept_lines, 2, "{}", x.transcript());
    // x is listed online again.
    y.send("list");
    let line = y.expect(
        |l| l.starts_with("x ") && l.contains("127.0.0.1:"),
        "x's line in list",
    );
    assert!(line.contains("ONLINE"), "{line}");
}

#[test]
fn presence_errors_are_clear() {
    let scratch = Scratch::new();
    let mut a = Proc::create(&scratch, "a");
    let mut b = Proc::join(&scratch, "b", &a, 2, "a");
    a.expect_line("b is online");
    b.send("reg b");
    b.expect_line("error: you are already online");
    b.send("dereg a");
    b.expect_line("error: a is not you; you can only (de)register yourself");
    b.send("send nobody hi");
    b.expect_line("error: no such user nobody");
    b.send("dereg");
    b.expect(|l| l.starts_with("you are offline"), "the offline notice");
    b.send("send a hi");
    b.expect(
        |l| l.starts_with("error: not in the room"),
        "an error while offline",
    );
    b.send("reg");
    b.expect(|l| l.starts_with("joined the room"), "the rejoin");
    b.send("send a back again");
    b.expect_line("[Message received by a.]");
}

/// Names belong to identities: an impostor with another identity file cannot register as
/// an offline member, and never receives what was kept for it; the owner can.
#[test]
fn an_impostor_cannot_take_an_offline_name() {
    let scratch = Scratch::new();
    let id = |who: &str| scratch.path().join(format!("{who}.identity"));
    let alice_id = id("alice");
    let bob_id = id("bob");
    let mallory_id = id("mallory");
    let mut a = Proc::start_with(
        &scratch,
        "alice",
        None,
        &["--identity", alice_id.to_str().unwrap()],
    );
    a.expect_line("created a new room; you (alice) are the leader");
    let mut b = Proc::start_with(
        &scratch,
        "bob",
        Some(a.port),
        &["--identity", bob_id.to_str().unwrap()],
    );
    b.expect(|l| l.starts_with("joined the room"), "bob's join");
    a.expect_line("bob is online");
    b.send("dereg");
    a.expect_line("bob is offline");
    a.send("send bob for your eyes only");
    a.expect_line("[bob is offline: message saved by alice.]");

    let mut m = Proc::start_with(
        &scratch,
        "bob",
        Some(a.port),
        &["--identity", mallory_id.to_str().unwrap()],
    );
    m.expect_line(
        "error: cannot join: join refused: that name belongs to another identity in this room",
    );
    assert_eq!(m.wait_exit(Duration::from_secs(10)).code(), Some(1));
    assert!(
        !m.seen.iter().any(|l| l.contains("for your eyes only")),
        "{}",
        m.transcript()
    );

    b.send("reg");
    b.expect(
        |l| l.contains("kept while you were offline") && l.ends_with("alice: for your eyes only"),
        "the kept message",
    );
}

/// The names `list` shows at `p`, in its order: `list` and then `status` are typed, and
/// the member lines before the `status` output are taken.
#[track_caller]
fn listed(p: &mut Proc) -> Vec<String> {
    p.send("list");
    p.send("status");
    let mut names = Vec::new();
    loop {
        let line = p.next_line("a `list` line or the `status` output");
        if line.starts_with("me:") {
            break;
        }
        if let Some(m) = MemberLine::parse(&line) {
            names.push(m.name);
        }
    }
    while !p.next_line("the rest of `status`").starts_with("pending:") {}
    names
}

/// `--forget-after 2`: an ephemeral member that exited and a member offline with nothing
/// kept for it leave `list` at every member; one with a kept message stays. Both come
/// back with `reg`: the one forgotten is admitted again and listed online, the other
/// gets its message.
#[test]
fn departed_members_age_out_of_list_and_come_back_with_reg() {
    let scratch = Scratch::new();
    let forget = ["--forget-after", "2"];
    let mut a = Proc::start_with(&scratch, "a", None, &forget);
    a.expect_line("created a new room; you (a) are the leader");
    let join = |name: &str, extra: &[&str]| {
        let mut p = Proc::start_with(&scratch, name, Some(a.port), &[&forget[..], extra].concat());
        p.expect(|l| l.starts_with("joined the room"), "the join");
        p
    };
    let mut b = join("b", &[]);
    let mut c = join("c", &["--ephemeral"]);
    let mut d = join("d", &[]);
    let mut e = join("e", &[]);
    c.send("exit");
    assert_eq!(c.wait_exit(Duration::from_secs(10)).code(), Some(0));
    for p in [&mut d, &mut e] {
        p.send("dereg");
        p.expect(|l| l.starts_with("you are offline"), "the offline notice");
    }
    b.send("send d kept for d");
    b.expect_line("[d is offline: message saved by a.]");
    for p in [&mut a, &mut b] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let names = listed(p);
            if names == ["a", "b", "d"] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: c and e not gone from `list` within 20 s: {names:?}",
                p.label
            );
        }
    }
    e.send("reg");
    e.expect(|l| l.starts_with("joined the room"), "e back");
    d.send("reg");
    d.expect(
        |l| l.contains("kept while you were offline") && l.ends_with("b: kept for d"),
        "d's kept message",
    );
    a.send("list");
    let line = a.expect(
        |l| MemberLine::parse(l).is_some_and(|m| m.name == "e"),
        "e's line in list",
    );
    assert!(line.contains("ONLINE"), "{line}");
}

/// Carol joins through bob, goes offline and comes back at once (within a minute of
/// joining, while bob still holds the join key she first joined with): bob and carol talk
/// directly again, both ways, with receipts. Carol dropped that key when she went offline
/// and came back through the leader with another; bob answered her handshakes under the
/// old one, which she could not open, so no session between them ever formed (her
/// message was kept by the leader, his never came).
#[test]
fn a_member_back_from_dereg_talks_directly_with_the_member_it_joined_through() {
    let scratch = Scratch::new();
    let (mut alice, mut bob, mut carol) = trio(&scratch);
    carol.send("dereg");
    carol.expect(|l| l.starts_with("you are offline"), "the offline notice");
    bob.expect_line("carol is offline");
    alice.expect_line("carol is offline");
    carol.send("reg");
    carol.expect(|l| l.starts_with("joined the room"), "the rejoin");
    bob.expect_line("carol is online");
    carol.send("send bob from carol");
    bob.expect(
        |l| l.contains(" private L") && l.ends_with("carol: from carol"),
        "carol's direct message",
    );
    carol.expect_line("[Message received by bob.]");
    bob.send("send carol from bob");
    carol.expect(
        |l| l.contains(" private L") && l.ends_with("bob: from bob"),
        "bob's direct message",
    );
    bob.expect_line("[Message received by carol.]");
}
