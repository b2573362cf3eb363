//! Leader failover with real processes on 127.0.0.1: the leader is SIGKILLed in the middle
//! of room traffic (or leaves with `exit`), the survivors elect a new one, and nothing a
//! sender saw committed is lost, doubled or reordered.
//!
//! Like `tests/cli.rs`, nothing sleeps and hopes: every wait polls the processes' output
//! for the line that proves a step happened, with a generous bound and a failure message
//! that prints every transcript.

mod common;

use common::{Proc, RoomLine, Scratch, WAIT, wait_until};
use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

/// Room messages per sender.
const EACH: usize = 20;
/// The leader is killed once this many messages were committed (seen `(you)`).
const KILL_AFTER: usize = 20;
/// Messages a sender may have typed but not yet seen committed.
const WINDOW: usize = 4;
/// Bound for the whole traffic phase and for convergence after it.
const CONVERGE: Duration = Duration::from_secs(15);

/// The text of `sender`'s `i`-th message (unique in the test).
fn text(sender: &str, i: usize) -> String {
    format!("m{i:02} from {sender}")
}

/// Texts of the room lines `p` showed, in order.
fn shown(p: &Proc) -> Vec<String> {
    p.room_seen().into_iter().map(|r| r.text).collect()
}

/// Texts `p` saw committed: its own `(you)` lines.
fn committed(p: &Proc) -> Vec<String> {
    p.room_seen()
        .into_iter()
        .filter(|r| r.mine)
        .map(|r| r.text)
        .collect()
}

/// The name in `p`'s last `leader is now <name>` line.
fn new_leader(p: &Proc) -> Option<String> {
    p.seen
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("leader is now "))
        .map(str::to_string)
}

/// a creates the room, b joins through a, c through b, d through c; returns once every
/// node knows every other one is online.
fn four(scratch: &Scratch) -> [Proc; 4] {
    let mut a = Proc::create(scratch, "a");
    let mut b = Proc::join(scratch, "b", &a, 2, "a");
    a.expect_line("b is online");
    let mut c = Proc::join(scratch, "c", &b, 3, "a");
    a.expect_line("c is online");
    b.expect_line("c is online");
    let d = Proc::join(scratch, "d", &c, 4, "a");
    for p in [&mut a, &mut b, &mut c] {
        p.expect_line("d is online");
    }
    [a, b, c, d]
}

/// Checks what the survivors showed: each text at most once, the same relative order of
/// common texts, the same sequence number for the same text, each sender's messages in
/// the order typed, and every committed text everywhere.
fn check_views(survivors: &[&mut Proc], all_committed: &BTreeSet<String>) {
    let views: Vec<Vec<RoomLine>> = survivors.iter().map(|p| p.room_seen()).collect();
    for (p, view) in survivors.iter().zip(&views) {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for r in view {
            *count.entry(&r.text).or_default() += 1;
        }
        if let Some((t, n)) = count.iter().find(|(_, n)| **n > 1) {
            p.fail(&format!("showed {t:?} {n} times"));
        }
        let seqs: Vec<u64> = view.iter().map(|r| r.seq).collect();
        if !seqs.windows(2).all(|w| w[0] < w[1]) {
            p.fail(&format!("sequence numbers not increasing: {seqs:?}"));
        }
        for sender in ["b", "c", "d"] {
            let texts: Vec<&str> = view
                .iter()
                .filter(|r| r.name == sender)
                .map(|r| r.text.as_str())
                .collect();
            let mut sorted = texts.clone();
            sorted.sort();
            if texts != sorted {
                p.fail(&format!(
                    "{sender}'s messages out of the order typed: {texts:?}"
                ));
            }
        }
        let mine: BTreeSet<String> = view.iter().map(|r| r.text.clone()).collect();
        if let Some(t) = all_committed.difference(&mine).next() {
            p.fail(&format!("never showed committed message {t:?}"));
        }
    }
    for i in 0..views.len() {
        for j in i + 1..views.len() {
            let in_j: BTreeSet<&str> = views[j].iter().map(|r| r.text.as_str()).collect();
            let in_i: BTreeSet<&str> = views[i].iter().map(|r| r.text.as_str()).collect();
            let common_i: Vec<(u64, &str)> = views[i]
                .iter()
                .filter(|r| in_j.contains(r.text.as_str()))
                .map(|r| (r.seq, r.text.as_str()))
                .collect();
            let common_j: Vec<(u64, &str)> = views[j]
                .iter()
                .filter(|r| in_i.contains(r.text.as_str()))
                .map(|r| (r.seq, r.text.as_str()))
                .collect();
            assert_eq!(
                common_i, common_j,
                "{} and {} show common messages in different orders or numbers",
                survivors[i].label, survivors[j].label
            );
        }
    }
}

/// Four nodes; b, c and d stream room messages; the leader a is SIGKILLed after about a
/// third of them were committed; sending goes on. The survivors agree on a new leader and
/// every message any sender saw committed is shown by every survivor exactly once, in one
/// order.
#[test]
fn leader_sigkill_during_traffic_loses_nothing_committed() {
    let scratch = Scratch::new();
    let [mut a, mut b, mut c, mut d] = four(&scratch);
    let started = Instant::now();

    let mut killed_at: Option<Instant> = None;
    let mut sent_at_kill = [0usize; 3];
    {
        let mut senders = [&mut b, &mut c, &mut d];
        let mut typed = [0usize; 3];
        while typed.iter().any(|&n| n < EACH) {
            for (k, p) in senders.iter_mut().enumerate() {
                p.pump();
                let outstanding = typed[k].saturating_sub(committed(p).len());
                if typed[k] < EACH && outstanding < WINDOW {
                    typed[k] += 1;
                    let t = text(&p.label, typed[k]);
                    p.send(&format!("send_all {t}"));
                }
            }
            let done: usize = senders.iter().map(|p| committed(p).len()).sum();
            if killed_at.is_none() && done >= KILL_AFTER {
                a.kill();
                killed_at = Some(Instant::now());
                sent_at_kill = typed;
            }
            if started.elapsed() > CONVERGE {
                let transcripts: Vec<String> = senders.iter().map(|p| p.transcript()).collect();
                panic!(
                    "could type only {typed:?} of {EACH} messages each within {CONVERGE:?} \
                     (at most {WINDOW} uncommitted per sender)\n{}",
                    transcripts.join("\n")
                );
            }
            // A small pace, so that the stream spans the failover.
            thread::sleep(Duration::from_millis(15));
        }
    }
    let killed_at = killed_at.expect("the leader was killed during the stream");
    eprintln!(
        "leader killed {:?} after the stream started, with {sent_at_kill:?} typed",
        killed_at - started
    );

    let mut survivors = [&mut b, &mut c, &mut d];
    // One new leader, agreed by all.
    wait_until(
        &mut survivors,
        CONVERGE,
        "every survivor shows `leader is now X` for the same X",
        |ps| {
            let leaders: BTreeSet<Option<String>> = ps.iter().map(|p| new_leader(p)).collect();
            leaders.len() == 1
                && leaders
                    .iter()
                    .all(|l| l.as_deref().is_some_and(|l| l != "a"))
        },
    );
    // Every message committed, and every committed message shown everywhere.
    let all_texts: BTreeSet<String> = ["b", "c", "d"]
        .iter()
        .flat_map(|s| (1..=EACH).map(move |i| text(s, i)))
        .collect();
    wait_until(
        &mut survivors,
        CONVERGE,
        "every sender sees all its messages committed and every survivor shows them all",
        |ps| {
            let committed: BTreeSet<String> = ps.iter().flat_map(|p| committed(p)).collect();
            committed == all_texts
                && ps.iter().all(|p| {
                    let s: BTreeSet<String> = shown(p).into_iter().collect();
                    s.is_superset(&committed)
                })
        },
    );
    let all_committed: BTreeSet<String> = survivors.iter().flat_map(|p| committed(p)).collect();
    check_views(&survivors, &all_committed);

    // The failover as users see it: from the kill to the first message shown by every
    // survivor that none of them had shown before the kill.
    let before_kill: BTreeSet<String> = survivors
        .iter()
        .flat_map(|p| {
            p.seen
                .iter()
                .zip(&p.seen_at)
                .filter(|(_, at)| **at <= killed_at)
                .filter_map(|(l, _)| RoomLine::parse(l).map(|r| r.text))
                .collect::<Vec<_>>()
        })
        .collect();
    let shown_at = |p: &Proc, t: &str| -> Option<Instant> {
        p.seen
            .iter()
            .zip(&p.seen_at)
            .find(|(l, _)| RoomLine::parse(l).is_some_and(|r| r.text == t))
            .map(|(_, at)| *at)
    };
    let first_new = all_committed
        .difference(&before_kill)
        .filter_map(|t| {
            survivors
                .iter()
                .map(|p| shown_at(p, t))
                .collect::<Option<Vec<Instant>>>()
                .and_then(|ats| ats.into_iter().max())
        })
        .min()
        .expect("messages shown after the kill");
    let elected = survivors
        .iter()
        .filter_map(|p| {
            p.seen
                .iter()
                .zip(&p.seen_at)
                .find(|(l, _)| l.starts_with("leader is now "))
                .map(|(_, at)| *at)
        })
        .max()
        .expect("checked above");
    eprintln!(
        "failover: `leader is now` at all survivors {:?} after the kill, first new message \
         at all survivors {:?} after the kill; {} messages, total {:?}",
        elected - killed_at,
        first_new - killed_at,
        all_committed.len(),
        started.elapsed()
    );
}

/// The leader leaves with `exit`: the others elect a new one and the chat goes on.
#[test]
fn new_leader_after_leader_exits_gracefully() {
    let scratch = Scratch::new();
    let [mut a, mut b, mut c, mut d] = four(&scratch);

    b.send("send_all before the leader left");
    for p in [&mut a, &mut b, &mut c, &mut d] {
        p.expect(
            |l| l.ends_with(": before the leader left"),
            "the message sent before the leader left",
        );
    }

    a.send("exit");
    a.expect_line("left the room");
    let status = a.wait_exit(WAIT);
    assert!(status.success(), "a exited with {status}");

    let mut leaders = BTreeSet::new();
    for p in [&mut b, &mut c, &mut d] {
        let line = p.expect(|l| l.starts_with("leader is now "), "a new leader");
        leaders.insert(line["leader is now ".len()..].to_string());
    }
    assert_eq!(leaders.len(), 1, "the survivors disagree: {leaders:?}");
    let leader = leaders.pop_first().expect("one leader");
    assert_ne!(leader, "a", "the leader that left is still the leader");

    c.send("send_all after the leader left");
    d.send("send_all from d too");
    let mut views = Vec::new();
    for p in [&mut b, &mut c, &mut d] {
        let room = p.room_lines(2);
        views.push(
            room.iter()
                .map(|r| (r.seq, r.name.clone(), r.text.clone()))
                .collect::<Vec<_>>(),
        );
        let texts: BTreeSet<&str> = room.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(
            texts,
            ["after the leader left", "from d too"].into(),
            "{}: {room:?}",
            p.label
        );
    }
    assert_eq!(views[0], views[1], "b and c disagree");
    assert_eq!(views[0], views[2], "b and d disagree");
    for p in [&b, &c, &d] {
        if let Some(l) = p.seen.iter().find(|l| l.contains("before the leader left")) {
            let n = p.seen.iter().filter(|x| *x == l).count();
            assert_eq!(n, 1, "{}: {l:?} shown {n} times", p.label);
        }
    }
}
