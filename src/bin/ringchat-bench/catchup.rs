//! Catch-up: how long a member that was away takes to show what the room said meanwhile.
//! Three real `ringchat --json` processes on 127.0.0.1 ([`procs::trio`]); carol types
//! `dereg` (offline, process running), bob is fed N `send_all` lines and the room shows
//! them (alice has them all), then carol types `reg`; the figure is the time from typing
//! `reg` until carol shows the last of the N (as history or live), with how many of the N
//! she shows by then. A member that never shows the last within the limit is reported as
//! such, with what it showed.

use crate::procs::{self, Member, POLL, STEP, Scratch};
use crate::program::{Mode, wait_counts};
use std::path::Path;
use std::time::{Duration, Instant};

/// One catch-up's figures.
pub struct Catchup {
    /// Messages said while the member was away.
    pub behind: usize,
    /// From `reg` typed to the last one shown; `None` if it was not shown within the limit.
    pub took: Option<Duration>,
    /// How many of them the member showed (by the last, or by the limit).
    pub shown: usize,
    /// The limit waited.
    pub limit: Duration,
}

impl Catchup {
    /// One line for the report.
    pub fn describe(&self, label: &str) -> String {
        match self.took {
            Some(t) => format!(
                "  {label}: behind by {}, current after {:.0} ms, showing {} of them",
                self.behind,
                t.as_secs_f64() * 1e3,
                self.shown
            ),
            None => format!(
                "  {label}: behind by {}, NOT current after {:.0} s: showing {} of them",
                self.behind,
                self.limit.as_secs_f64(),
                self.shown
            ),
        }
    }

    /// The value for the table.
    pub fn value(&self) -> String {
        match self.took {
            Some(t) => format!(
                "{:.0} ms ({} of {} shown)",
                t.as_secs_f64() * 1e3,
                self.shown,
                self.behind
            ),
            None => format!(
                "not current after {:.0} s ({} of {} shown)",
                self.limit.as_secs_f64(),
                self.shown,
                self.behind
            ),
        }
    }
}

/// Waits until `m` has an event satisfying `pred`.
fn expect(
    m: &mut Member,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Result<(), String> {
    m.wait_event(STEP, what, pred).map(|_| ())
}

/// One trial in a fresh room of three in `mode`: carol away while `n` messages are said.
pub fn trial(
    binary: &Path,
    mode: Mode,
    n: usize,
    limit: Duration,
    trial: usize,
) -> Result<Catchup, String> {
    let scratch = Scratch::new("catchup")?;
    let [mut alice, mut bob, mut carol] = procs::trio(binary, &scratch.0, mode.flags())?;
    carol.type_line("dereg")?;
    expect(&mut carol, "`deregistered`", |v| {
        v["event"] == "deregistered"
    })?;
    for m in [&mut alice, &mut bob] {
        expect(m, "carol offline", |v| {
            v["event"] == "member_offline" && v["name"] == "carol"
        })?;
    }
    let tag = format!("c{trial}x");
    alice.count_tag(&tag, None);
    carol.count_tag(&tag, Some(format!("{tag}{n}")));
    let stdin = bob.out.stdin.take().ok_or("bob's stdin")?;
    let writer = procs::feed(stdin, procs::send_lines(&tag, n));
    wait_counts("the room's burst at alice", n, || {
        alice.pump()?;
        bob.pump()?;
        Ok(vec![alice.count])
    })?;
    let (stdin, written) = writer.join().map_err(|_| "the writer thread failed")?;
    written.map_err(|e| format!("writing bob's stdin: {e}"))?;
    bob.out.stdin = Some(stdin);
    carol.pump()?;
    if carol.count > 0 {
        return Err(format!("carol showed {} while offline", carol.count));
    }
    let asked = Instant::now();
    carol.type_line("reg")?;
    let deadline = asked + limit;
    while carol.needle_at().is_none() && Instant::now() < deadline {
        carol.pump()?;
        alice.pump()?;
        bob.pump()?;
        std::thread::sleep(POLL);
    }
    Ok(Catchup {
        behind: n,
        took: carol.needle_at().map(|at| at - asked),
        shown: carol.count,
        limit,
    })
}

/// `trials` catch-ups in `mode`; every run printed, the median returned (a run that never
/// caught up counts as slowest).
pub fn trials(
    binary: &Path,
    mode: Mode,
    n: usize,
    limit: Duration,
    trials: usize,
) -> Option<Catchup> {
    let mut runs = Vec::new();
    for t in 1..=trials {
        let label = format!("trial {t} catch-up, {}", mode.describe());
        match trial(binary, mode, n, limit, t) {
            Ok(c) => {
                println!("{}", c.describe(&label));
                runs.push(c);
            }
            Err(e) => println!("  {label}: failed: {e}"),
        }
    }
    runs.sort_by_key(|c| c.took.unwrap_or(Duration::MAX));
    let mid = runs.len() / 2;
    (!runs.is_empty()).then(|| runs.swap_remove(mid))
}

/// The `catchup` subcommand.
pub fn command(binary: &Path, n: usize, limit: Duration, n_trials: usize) {
    println!(
        "catch-up: three `ringchat --json` processes on 127.0.0.1; carol `dereg`s, {n} \
         `send_all` lines are piped into bob and shown at alice, carol `reg`s: the time until \
         she shows the last (limit {:.0} s); {n_trials} trial(s) per mode",
        limit.as_secs_f64()
    );
    for mode in [Mode::Database, Mode::Ephemeral] {
        if let Some(c) = trials(binary, mode, n, limit, n_trials) {
            println!("{}", c.describe(&format!("median, {}", mode.describe())));
        }
    }
}
