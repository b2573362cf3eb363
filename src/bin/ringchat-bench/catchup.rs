//! Catch-up: how long a member that was away takes to show what the room said meanwhile.
//! Three real `ringchat --json` processes on 127.0.0.1 ([`procs::trio`]); carol goes away
//! ([`Away`]: she types `dereg`, offline with her process running, or her process is
//! stopped with `SIGSTOP`, as a closed laptop is), bob is fed N `send_all` lines and the
//! room shows them (alice has them all), then carol comes back (`reg`, or `SIGCONT`); the
//! figure is the time from her coming back until she shows the last of the N (as history
//! or live), with how many of the N she shows by then, and what she was told is kept by
//! nobody. The reference, from the
//! same trial: the time the room took to show those N at alice in the first place (from
//! the first line written into bob's stdin). A member that never shows the last within
//! the limit is reported as such, with what it showed.

use crate::procs::{self, Member, POLL, STEP, Scratch};
use crate::program::wait_counts;
use std::path::Path;
use std::time::{Duration, Instant};

/// Room messages beyond the N a node with `--ephemeral` must keep in memory for a member
/// behind by N to be served them all: the configuration entries of the joins and of
/// carol's `dereg` and `reg` are numbered too.
pub const HISTORY_HEADROOM: usize = 100;

/// How carol is away while the room talks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Away {
    /// She types `dereg`, and `reg` to come back (her process runs all along).
    Dereg,
    /// Her process is stopped (`SIGSTOP`), and continued (`SIGCONT`) to come back: the
    /// room finds her silent and goes on without her.
    Pause,
}

impl Away {
    /// For the report.
    pub fn describe(self) -> &'static str {
        match self {
            Away::Dereg => "carol `dereg`s and later `reg`s",
            Away::Pause => "carol's process is stopped (SIGSTOP) and later continued (SIGCONT)",
        }
    }
}

/// Sends `signal` to `m`'s process.
fn signal(m: &Member, signal: libc::c_int) -> Result<(), String> {
    let pid = libc::pid_t::try_from(m.out.pid()).map_err(|e| e.to_string())?;
    // SAFETY: `kill` takes a process id and a signal number and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "signal {signal} to carol: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// The nodes' flags in a catch-up trial.
#[derive(Clone, Copy, Debug)]
pub enum Setup {
    /// Default flags: every node keeps its state in its database, and a member's fetch of
    /// what memory (10 000 by default) no longer holds is read from it.
    Database,
    /// `--ephemeral --history-limit N + HISTORY_HEADROOM`: nothing on disk; memory holds
    /// everything carol missed.
    EphemeralKept,
    /// `--ephemeral` with the default history limit (10 000): what memory no longer holds
    /// is kept by nobody; carol is told how many and goes on.
    EphemeralDefault,
}

impl Setup {
    /// The command-line flags for a member behind by `n`.
    fn flags(self, n: usize) -> Vec<String> {
        match self {
            Setup::Database => Vec::new(),
            Setup::EphemeralKept => vec![
                "--ephemeral".into(),
                "--history-limit".into(),
                (n + HISTORY_HEADROOM).to_string(),
            ],
            Setup::EphemeralDefault => vec!["--ephemeral".into()],
        }
    }

    /// For the report.
    pub fn describe(self, n: usize) -> String {
        match self {
            Setup::Database => "default flags (database)".into(),
            Setup::EphemeralKept => {
                format!("--ephemeral --history-limit {}", n + HISTORY_HEADROOM)
            }
            Setup::EphemeralDefault => "--ephemeral (history limit 10000)".into(),
        }
    }

    /// Whether every one of the messages missed must be shown.
    pub fn keeps_all(self) -> bool {
        !matches!(self, Setup::EphemeralDefault)
    }
}

/// One catch-up's figures.
pub struct Catchup {
    /// Messages said while the member was away.
    pub behind: usize,
    /// From `reg` typed to the last one shown; `None` if it was not shown within the limit.
    pub took: Option<Duration>,
    /// How many of them the member showed (by the last, or by the limit).
    pub shown: usize,
    /// How many it was told are no longer kept by anyone.
    pub gone: u64,
    /// The reference: the room showing the N at alice, from the first line written.
    pub sent_in: Duration,
    /// The limit waited.
    pub limit: Duration,
}

impl Catchup {
    /// One line for the report.
    pub fn describe(&self, label: &str) -> String {
        format!("  {label}: behind by {}, {}", self.behind, self.value())
    }

    /// The value for the table.
    pub fn value(&self) -> String {
        let gone = if self.gone > 0 {
            format!(", told {} are kept by nobody", self.gone)
        } else {
            String::new()
        };
        let reference = format!(
            "; the room took {:.0} ms to show them at alice",
            self.sent_in.as_secs_f64() * 1e3
        );
        match self.took {
            Some(t) => format!(
                "current after {:.0} ms ({} of {} shown{gone}{reference})",
                t.as_secs_f64() * 1e3,
                self.shown,
                self.behind
            ),
            None => format!(
                "NOT current after {:.0} s ({} of {} shown{gone}{reference})",
                self.limit.as_secs_f64(),
                self.shown,
                self.behind
            ),
        }
    }

    /// Whether the member showed the last message within the limit, and every one of them
    /// if `all`.
    pub fn current(&self, all: bool) -> bool {
        self.took.is_some() && (!all || self.shown == self.behind)
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

/// The count in a notice that messages are no longer kept by anyone.
fn gone_in(v: &serde_json::Value) -> Option<u64> {
    let text = v["text"].as_str()?;
    let count = text.strip_suffix(" older messages are no longer kept by anyone")?;
    count.parse().ok()
}

/// One trial in a fresh room of three set up as `setup`: carol away as `away` while `n`
/// messages are said.
pub fn trial(
    binary: &Path,
    (setup, away): (Setup, Away),
    n: usize,
    limit: Duration,
    trial: usize,
) -> Result<Catchup, String> {
    let scratch = Scratch::new("catchup")?;
    let flags = setup.flags(n);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let [mut alice, mut bob, mut carol] = procs::trio(binary, &scratch.0, &flags)?;
    match away {
        Away::Dereg => {
            carol.type_line("dereg")?;
            expect(&mut carol, "`deregistered`", |v| {
                v["event"] == "deregistered"
            })?;
            for m in [&mut alice, &mut bob] {
                expect(m, "carol offline", |v| {
                    v["event"] == "member_offline" && v["name"] == "carol"
                })?;
            }
        }
        // Stopped at once, the room still counting on her: the burst finds her silent.
        Away::Pause => signal(&carol, libc::SIGSTOP)?,
    }
    let tag = format!("c{trial}x");
    alice.count_tag(&tag, None);
    carol.count_tag(&tag, Some(format!("{tag}{n}")));
    let stdin = bob.out.stdin.take().ok_or("bob's stdin")?;
    let started = Instant::now();
    let writer = procs::feed(stdin, procs::send_lines(&tag, n));
    let shown = wait_counts("the room's burst at alice", n, || {
        alice.pump()?;
        bob.pump()?;
        Ok(vec![alice.count])
    })?;
    let sent_in = shown - started;
    let (stdin, written) = writer.join().map_err(|_| "the writer thread failed")?;
    written.map_err(|e| format!("writing bob's stdin: {e}"))?;
    bob.out.stdin = Some(stdin);
    carol.pump()?;
    if carol.count > 0 {
        return Err(format!("carol showed {} while offline", carol.count));
    }
    let asked = Instant::now();
    match away {
        Away::Dereg => carol.type_line("reg")?,
        Away::Pause => signal(&carol, libc::SIGCONT)?,
    }
    let deadline = asked + limit;
    while carol.needle_at().is_none() && Instant::now() < deadline {
        carol.pump()?;
        alice.pump()?;
        bob.pump()?;
        std::thread::sleep(POLL);
    }
    let took = carol.needle_at().map(|at| at - asked);
    let mut gone = 0;
    while let Ok(v) = carol.wait_event(Duration::ZERO, "a notice", |v| gone_in(v).is_some()) {
        gone += gone_in(&v).unwrap_or(0);
    }
    Ok(Catchup {
        behind: n,
        took,
        shown: carol.count,
        gone,
        sent_in,
        limit,
    })
}

/// `trials` catch-ups set up as `setup`; every run printed, the median returned (a run
/// that never caught up, or that left out messages it should have shown, counts as
/// slowest).
pub fn trials(
    binary: &Path,
    (setup, away): (Setup, Away),
    n: usize,
    limit: Duration,
    trials: usize,
) -> Option<Catchup> {
    let mut runs = Vec::new();
    for t in 1..=trials {
        let label = format!("trial {t} catch-up, {}", setup.describe(n));
        match trial(binary, (setup, away), n, limit, t) {
            Ok(c) => {
                println!("{}", c.describe(&label));
                runs.push(c);
            }
            Err(e) => println!("  {label}: failed: {e}"),
        }
    }
    runs.sort_by_key(|c| {
        let ok = c.current(setup.keeps_all());
        (!ok, c.took.unwrap_or(Duration::MAX))
    });
    let mid = runs.len() / 2;
    (!runs.is_empty()).then(|| runs.swap_remove(mid))
}

/// The `catchup` subcommand.
pub fn command(binary: &Path, away: Away, n: usize, limit: Duration, n_trials: usize) {
    println!(
        "catch-up: three `ringchat --json` processes on 127.0.0.1; {}; meanwhile {n} \
         `send_all` lines are piped into bob and shown at alice: the time from carol's \
         coming back until she shows the last (limit {:.0} s), beside the time the room \
         took to show them at alice; {n_trials} trial(s) per setup",
        away.describe(),
        limit.as_secs_f64()
    );
    for setup in [
        Setup::Database,
        Setup::EphemeralKept,
        Setup::EphemeralDefault,
    ] {
        if let Some(c) = trials(binary, (setup, away), n, limit, n_trials) {
            println!("{}", c.describe(&format!("median, {}", setup.describe(n))));
        }
    }
}
