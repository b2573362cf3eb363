//! A burst piped into one member, on real processes: three `ringchat --json` nodes on
//! 127.0.0.1 (alice creates and leads, bob joins through alice, carol through bob), 20 000
//! `send_all` lines written into bob's stdin as fast as the pipe takes them, and every
//! member's stdout written to a file that the test reads as it grows. Every member must
//! show every message exactly once, in bob's order, and no member's guard may refuse a
//! datagram during the burst (`status`: `refused` does not grow): the rate limit never
//! cuts a member (issue 15).
//!
//! Run with the database (default flags), with `--ephemeral`, and with `--ephemeral` under
//! a per-source limit of 100 datagrams a second (members keep their own budget); and, with
//! the database, with the leader paused (`SIGSTOP`) for 3 s or killed and started again on
//! its own data once it has shown a quarter of the burst: the room fails over under load,
//! and the old leader, back, shows every message it missed, once. Two bursts of 50 000
//! piped into bob and carol at once reach everyone too, in one order. Each step
//! waits for the lines that prove it happened, with generous bounds and a failure message
//! that says what was missing; nothing sleeps and hopes. The runs take a lock so that they
//! do not share the two cores with each other.
//!
//! The process harness (one member, its stdout file, the scratch directory) is in
//! `burst/member.rs`; the runs and the tests are here.

#[path = "burst/member.rs"]
mod member;
#[path = "common/ports.rs"]
mod ports;

use member::{Member, Scratch};
use std::io::Write;
use std::path::Path;
use std::process::ChildStdin;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Lines piped into bob, unless `BURST_LINES` says otherwise (e.g. 100000).
const BURST: usize = 20_000;

/// How many lines to pipe.
fn burst_lines() -> usize {
    std::env::var("BURST_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(BURST)
}

/// Lines piped into each of two members at once (see [`two_bursts`]).
const TWO_BURSTS: usize = 50_000;

/// Forming the room, one step.
const STEP: Duration = Duration::from_secs(15);

/// The whole burst shown everywhere: about a second on a quiet machine, far more allowed.
const DELIVERY: Duration = Duration::from_secs(180);

/// One run at a time: each has three busy processes.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What happens to the leader (alice) once it has shown a quarter of the burst.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    /// Nothing.
    None,
    /// Stopped (`SIGSTOP`) for [`PAUSE`], then continued.
    Pause,
    /// Killed, and started again on its own port and data.
    Restart,
}

/// How long [`Fault::Pause`] holds the leader: past the election timeout.
const PAUSE: Duration = Duration::from_secs(3);

/// Forms the room of three with `flags`, pipes the burst into bob and checks every member.
fn burst(tag: &str, flags: &[&str]) {
    burst_with(tag, flags, Fault::None);
}

/// Alice, bob (joining through alice) and carol (through bob), with `flags`, once each
/// knows the others online.
fn room_of_three(dir: &Path, flags: &[&str]) -> [Member; 3] {
    let mut alice = Member::start(dir, "alice", None, flags);
    alice.wait_event(STEP, "the room created", |v| {
        v["event"] == "joined" && v["is_leader"] == true
    });
    let mut bob = Member::start(dir, "bob", Some(alice.addr), flags);
    bob.wait_event(STEP, "joining through alice", |v| v["event"] == "joined");
    alice.wait_event(STEP, "bob online", |v| {
        v["event"] == "member_online" && v["name"] == "bob"
    });
    let mut carol = Member::start(dir, "carol", Some(bob.addr), flags);
    carol.wait_event(STEP, "joining through bob", |v| v["event"] == "joined");
    for m in [&mut alice, &mut bob] {
        m.wait_event(STEP, "carol online", |v| {
            v["event"] == "member_online" && v["name"] == "carol"
        });
    }
    [alice, bob, carol]
}

/// `send_all <tag>1` to `send_all <tag>lines`, written into `stdin` from a thread (the
/// pipe may fill while the member works through it); the pipe is given back, still open
/// (its end would make the member leave).
fn pipe_lines(
    mut stdin: ChildStdin,
    tag: &'static str,
    lines: usize,
) -> thread::JoinHandle<(ChildStdin, std::io::Result<()>)> {
    thread::spawn(move || {
        let mut text = String::with_capacity(lines * 16);
        for k in 1..=lines {
            text.push_str(&format!("send_all {tag}{k}\n"));
        }
        let written = stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush());
        (stdin, written)
    })
}

/// [`burst`] with `fault` done to the leader mid-burst.
fn burst_with(tag: &str, flags: &[&str], fault: Fault) {
    let lines = burst_lines();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new(tag);
    let dir = scratch.0.clone();
    let mut members = room_of_three(&dir, flags);

    // What the guards refused while the room formed: a newcomer's first handshake to a
    // member may arrive before the leader's word that the newcomer is in, and is sent
    // again. The burst itself must cause no refusal.
    let refused_before: Vec<u64> = members
        .iter_mut()
        .map(|m| m.counters()["refused"].as_u64().unwrap_or(0))
        .collect();

    // The burst, from a thread: the pipe may fill while bob works through it. Stdin stays
    // open afterwards (its end would make bob leave).
    let stdin = members[1].stdin.take().expect("bob's stdin");
    let started = Instant::now();
    let writer = pipe_lines(stdin, "b", lines);

    let deadline = started + DELIVERY;
    let mut fault_due = fault != Fault::None;
    let mut paused_at: Option<Instant> = None;
    loop {
        for m in members.iter_mut() {
            if !m.pump() {
                m.fail("exited during the burst");
            }
        }
        if fault_due && members[0].burst_shown().len() >= lines / 4 {
            fault_due = false;
            let at = members[0].burst_shown().len();
            eprintln!("{tag}: {fault:?} of alice once she showed {at}");
            match fault {
                Fault::Pause => {
                    members[0].signal(libc::SIGSTOP);
                    paused_at = Some(Instant::now());
                }
                Fault::Restart => {
                    let join = members[2].addr;
                    members[0].restart(&dir, join, flags);
                }
                Fault::None => {}
            }
        }
        if paused_at.is_some_and(|t| t.elapsed() >= PAUSE) {
            paused_at = None;
            members[0].signal(libc::SIGCONT);
        }
        let counts: Vec<usize> = members.iter().map(|m| m.burst_shown().len()).collect();
        if counts.iter().all(|&c| c >= lines) {
            break;
        }
        if Instant::now() > deadline {
            let (worst, _) = counts
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| **c)
                .expect("three members");
            let shown = members[worst].burst_shown();
            let first_missing = (1..=lines).find(|k| !shown.contains(k));
            // What each member's status says now (bob's once his stdin is free again).
            if writer.is_finished()
                && let Ok((stdin, _)) = writer.join()
            {
                members[1].stdin = Some(stdin);
            }
            let mut statuses = Vec::new();
            for m in members.iter_mut().filter(|m| m.stdin.is_some()) {
                m.type_line("status");
                let s = m.wait_event(STEP, "the `status` answer", |v| v["event"] == "status");
                statuses.push(format!(
                    "{}: counters {}, unconfirmed {}",
                    m.name, s["counters"], s["unconfirmed"]
                ));
            }
            members[worst].fail(&format!(
                "after {DELIVERY:?} the members show {counts:?} of the {lines} burst messages \
                 (alice, bob, carol); this one misses b{first_missing:?} first\n  {}",
                statuses.join("\n  ")
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    let (stdin, written) = writer.join().expect("the writer thread");
    if let Err(e) = written {
        members[1].fail(&format!("writing the burst into bob's stdin failed: {e}"));
    }
    members[1].stdin = Some(stdin);
    eprintln!(
        "{tag}: {lines} messages shown at all three in {:.2} s ({:.0}/s)",
        took.as_secs_f64(),
        lines as f64 / took.as_secs_f64()
    );

    let expected: Vec<usize> = (1..=lines).collect();
    for (m, before) in members.iter_mut().zip(refused_before) {
        let shown = m.burst_shown();
        if shown != expected {
            let at = shown
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(shown.len().min(lines));
            m.fail(&format!(
                "shows {} burst messages, not b1..b{lines} once each in order: they differ at \
                 position {at} ({:?})",
                shown.len(),
                &shown[at.saturating_sub(2)..(at + 3).min(shown.len())]
            ));
        }
        let c = m.counters();
        eprintln!("{tag}: {}: counters {c}", m.name);
        if !m.earlier.is_empty() {
            eprintln!(
                "{tag}: {}: showed {} before it was killed, {} of them again after",
                m.name,
                m.earlier.len(),
                m.reshown()
            );
        }
        let refused = c["refused"].as_u64().unwrap_or(u64::MAX);
        // Under a fault a member may refuse what comes from the process it lost (a
        // session the new one does not hold, a datagram from before the pause).
        if fault == Fault::None && refused != before {
            m.fail(&format!(
                "its guard refused {} datagrams during the burst ({before} before it): {c}",
                refused.wrapping_sub(before)
            ));
        }
    }
}

/// Default flags: every node keeps its state in its database.
#[test]
fn a_burst_of_20000_lines_reaches_every_member_with_a_database() {
    burst("db", &[]);
}

/// `--ephemeral`: nothing on disk, the fastest path.
#[test]
fn a_burst_of_20000_lines_reaches_every_member_ephemeral() {
    burst("ephemeral", &["--ephemeral"]);
}

/// `--ephemeral --rate-limit 100`: strangers get 100 datagrams a second, far below what the
/// burst moves between members; members keep their own budget, so nothing is refused.
#[test]
fn a_burst_of_20000_lines_is_never_refused_under_a_tiny_stranger_limit() {
    burst("limited", &["--ephemeral", "--rate-limit", "100"]);
}

/// The database, and the leader paused for 3 s a quarter into the burst: the room fails
/// over under load, and the old leader, continued, shows every message once, in order.
#[test]
fn a_burst_survives_its_leader_paused_midway() {
    burst_with("paused", &[], Fault::Pause);
}

/// The database, and the leader killed a quarter into the burst and started again on its
/// own data: the others go on under a new leader, and it shows what it missed.
#[test]
fn a_burst_survives_its_leader_killed_and_started_again_midway() {
    burst_with("restarted", &[], Fault::Restart);
}

/// Bursts piped into two members at once: bob's `b1..bN` and carol's `c1..cN`, with
/// `flags`. Every member shows all 2N once, each sender's in the order typed, and all
/// three the same order; nobody is told messages are no longer kept. (A member busy with
/// its own burst fell behind its hold-back bound: the leader gave up what it could not
/// hold, the room ran on past what it kept, and the member skipped, or stalled for good on
/// its own messages it skipped.)
fn two_bursts(tag: &str, flags: &[&str]) {
    // Past what a member holds back and the leader keeps in memory (10 000 each), so a
    // member that falls behind by that much shows here.
    let lines = if std::env::var_os("BURST_LINES").is_some() {
        burst_lines()
    } else {
        TWO_BURSTS
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new(tag);
    let dir = scratch.0.clone();
    let mut members = room_of_three(&dir, flags);
    let started = Instant::now();
    let bob_in = members[1].stdin.take().expect("bob's stdin");
    let carol_in = members[2].stdin.take().expect("carol's stdin");
    let writers = [
        pipe_lines(bob_in, "b", lines),
        pipe_lines(carol_in, "c", lines),
    ];
    let deadline = started + DELIVERY;
    loop {
        for m in members.iter_mut() {
            if !m.pump() {
                m.fail("exited during the bursts");
            }
        }
        let counts: Vec<usize> = members.iter().map(|m| m.live_texts().len()).collect();
        if counts.iter().all(|&c| c >= 2 * lines) {
            break;
        }
        if Instant::now() > deadline {
            let worst = counts
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| **c)
                .map(|(i, _)| i)
                .expect("three members");
            members[worst].fail(&format!(
                "after {DELIVERY:?} the members show {counts:?} of the {} messages (alice, \
                 bob, carol)",
                2 * lines
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    for (w, i) in writers.into_iter().zip([1, 2]) {
        let (stdin, written) = w.join().expect("a writer thread");
        if let Err(e) = written {
            members[i].fail(&format!("writing its burst into stdin failed: {e}"));
        }
        members[i].stdin = Some(stdin);
    }
    eprintln!(
        "{tag}: {} messages from two members shown at all three in {:.2} s",
        2 * lines,
        took.as_secs_f64()
    );
    let order: Vec<String> = members[0]
        .live_texts()
        .iter()
        .map(|t| t.to_string())
        .collect();
    for m in &members {
        let texts = m.live_texts();
        if texts != order {
            let at = texts.iter().zip(&order).position(|(a, b)| a != b);
            m.fail(&format!(
                "shows {} messages in another order than alice's {} (first difference at {at:?})",
                texts.len(),
                order.len()
            ));
        }
        for sender in ["b", "c"] {
            let seen: Vec<usize> = texts
                .iter()
                .filter_map(|t| t.strip_prefix(sender)?.parse().ok())
                .collect();
            if seen != (1..=lines).collect::<Vec<_>>() {
                m.fail(&format!(
                    "shows {} of {sender}'s {lines}, not {sender}1..{sender}{lines} once each in order",
                    seen.len()
                ));
            }
        }
        let skipped = m
            .events
            .iter()
            .filter(|v| {
                v["event"] == "notice"
                    && v["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("no longer kept"))
            })
            .count();
        if skipped > 0 {
            m.fail(&format!(
                "was told {skipped} times that messages are no longer kept"
            ));
        }
    }
}

/// Two bursts at once, `--ephemeral` (the leader keeps 10 000 messages in memory only).
#[test]
fn two_bursts_at_once_reach_every_member_ephemeral() {
    two_bursts("two-ephemeral", &["--ephemeral"]);
}

/// Two bursts at once, with the database.
#[test]
fn two_bursts_at_once_reach_every_member_with_a_database() {
    two_bursts("two-db", &[]);
}
