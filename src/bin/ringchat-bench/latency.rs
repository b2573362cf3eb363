//! Latency: from handing a `send_all` command to a node until the last member shows the
//! message, for every message, into an HDR histogram (p50, p99, p99.9, max).
//!
//! The load is open: n1 (a member that does not lead) is handed messages at a fixed
//! offered rate whatever the room does, paced on a 1 ms tick (a light load of a few
//! hundred a second goes one at a time; a heavy one in small bursts per tick). Messages
//! are matched by the counter in their text. Loss, if any, is switched on once the room
//! is formed and applies to every node's outgoing datagrams (data, acks, heartbeats).

use crate::room::{self, Room, Setup};
use hdrhistogram::Histogram;
use ringchat::proto::{Command, Event, Stats};
use std::time::{Duration, Instant};

/// What one latency run does.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Nodes in the room.
    pub nodes: usize,
    /// Room messages offered per second.
    pub rate: f64,
    /// Room messages in all.
    pub messages: usize,
    /// Fraction of every node's outgoing datagrams dropped once the room is formed.
    pub loss: f64,
}

impl Load {
    /// The parameters, for the report.
    pub fn describe(&self) -> String {
        format!(
            "{} nodes, n1 sends {} messages at {:.0}/s offered, loss {:.0}%, no rate limit",
            self.nodes,
            self.messages,
            self.rate,
            self.loss * 100.0
        )
    }
}

/// One latency run's figures.
pub struct Latency {
    /// Submit to shown at every member, in microseconds, for every message shown at all.
    pub histogram: Histogram<u64>,
    /// Messages not shown at every member when the run gave up waiting.
    pub missing: usize,
    /// Rate at which the messages were handed to the node.
    pub offered: f64,
    /// Counters summed over the room's nodes at the end (loss switched off first).
    pub totals: Stats,
    /// Median latency of each tenth of the messages, in sending order (shows a backlog
    /// that grows during the run).
    pub by_tenth: Vec<Duration>,
    /// Members declared offline and leader changes seen during the run (false failure
    /// detection under loss).
    pub membership_changes: Vec<String>,
}

impl Latency {
    /// A percentile as a duration.
    pub fn at(&self, percentile: f64) -> Duration {
        Duration::from_micros(self.histogram.value_at_quantile(percentile / 100.0))
    }

    /// The largest latency.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.histogram.max())
    }

    /// p50 / p99 / p99.9 / max in one string.
    pub fn summary(&self) -> String {
        format!(
            "p50 {} p99 {} p99.9 {} max {}",
            room::ms(self.at(50.0)),
            room::ms(self.at(99.0)),
            room::ms(self.at(99.9)),
            room::ms(self.max())
        )
    }

    /// One line for the report.
    pub fn describe(&self, label: &str) -> String {
        format!(
            "  {label}: {} shown at every member ({} missing), offered {:.0}/s: {} \
             (room totals: {}; membership changes {}; p50 by tenth of the run: {})",
            self.histogram.len(),
            self.missing,
            self.offered,
            self.summary(),
            room::describe_stats(&self.totals),
            if self.membership_changes.is_empty() {
                "0".to_string()
            } else {
                format!(
                    "{}: {}",
                    self.membership_changes.len(),
                    self.membership_changes.join(", ")
                )
            },
            self.by_tenth
                .iter()
                .map(|d| room::ms(*d))
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

/// How long after the last send the run waits for stragglers (retransmissions, gap
/// repair, resubmission) before counting the rest as missing.
const DRAIN: Duration = Duration::from_secs(30);

/// Forms a room (no rate limit) and runs `load` through it.
pub async fn run(load: Load) -> Result<Latency, String> {
    let n = load.nodes;
    let mut room = Room::form(n, &Setup::unlimited()).await?;
    room.forget();
    room.loss.set(load.loss);
    let sender = 1.min(n - 1);
    let mut submitted: Vec<Option<Instant>> = vec![None; load.messages + 1];
    let mut shown = vec![0usize; load.messages + 1];
    let mut each: Vec<Option<Duration>> = vec![None; load.messages + 1];
    let mut changes = Vec::new();
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(|e| e.to_string())?;
    let mut sent = 0usize;
    let started = Instant::now();
    let mut sent_all_at = None;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if sent < load.messages {
            tokio::select! {
                _ = tick.tick() => {
                    let due = (started.elapsed().as_secs_f64() * load.rate) as usize + 1;
                    while sent < due.min(load.messages) {
                        sent += 1;
                        submitted[sent] = Some(Instant::now());
                        room.send(sender, Command::SendAll { text: room::text_of(sender, sent) });
                    }
                    if sent == load.messages {
                        sent_all_at = Some(Instant::now());
                    }
                }
                Some(s) = room.next(Duration::from_secs(3600)) => note(&mut Tally { shown: &mut shown, each: &mut each, changes: &mut changes }, &submitted, &mut histogram, n, s),
            }
            continue;
        }
        if histogram.len() as usize == load.messages {
            break;
        }
        let waited = sent_all_at.map_or(Duration::ZERO, |t| t.elapsed());
        let Some(s) = room.next(DRAIN.saturating_sub(waited)).await else {
            break;
        };
        note(
            &mut Tally {
                shown: &mut shown,
                each: &mut each,
                changes: &mut changes,
            },
            &submitted,
            &mut histogram,
            n,
            s,
        );
    }
    let offered = sent as f64
        / sent_all_at
            .map_or(started.elapsed(), |t| t - started)
            .as_secs_f64()
            .max(1e-9);
    room.loss.set(0.0);
    let all: Vec<usize> = (0..n).collect();
    let totals = room::total(&room.statuses(&all).await.unwrap_or_default());
    let tenth = load.messages.div_ceil(10);
    let by_tenth = each[1..]
        .chunks(tenth.max(1))
        .map(|c| {
            let mut v: Vec<Duration> = c.iter().flatten().copied().collect();
            v.sort();
            v.get(v.len() / 2).copied().unwrap_or_default()
        })
        .collect();
    Ok(Latency {
        missing: load.messages - histogram.len() as usize,
        histogram,
        offered,
        totals,
        by_tenth,
        membership_changes: changes,
    })
}

/// What [`note`] keeps per message and for the run.
struct Tally<'a> {
    /// Members that showed message k.
    shown: &'a mut [usize],
    /// Latency of message k once every member showed it.
    each: &'a mut [Option<Duration>],
    /// Members declared offline and leader changes.
    changes: &'a mut Vec<String>,
}

/// Counts a shown message; records its latency when the last member shows it.
fn note(
    tally: &mut Tally<'_>,
    submitted: &[Option<Instant>],
    histogram: &mut Histogram<u64>,
    n: usize,
    s: room::Stamped,
) {
    match &s.event {
        Event::MemberOffline { name } => tally
            .changes
            .push(format!("n{} saw {name} offline", s.node)),
        Event::MemberOnline { name } => {
            tally.changes.push(format!("n{} saw {name} online", s.node))
        }
        Event::LeaderChanged { name } => {
            tally.changes.push(format!("n{} saw leader {name}", s.node))
        }
        _ => {}
    }
    let shown = &mut *tally.shown;
    let Event::Room {
        entry,
        history: false,
        ..
    } = &s.event
    else {
        return;
    };
    let Some(k) = room::counter_of(&entry.text).filter(|&k| k < shown.len()) else {
        return;
    };
    shown[k] += 1;
    if shown[k] == n
        && let Some(t) = submitted[k]
    {
        tally.each[k] = Some(s.at - t);
        let us = (s.at - t).as_micros().max(1) as u64;
        let _ = histogram.record(us.min(histogram.high()));
    }
}

/// Runs `trials` rooms; returns the run with the median p99 (every run is printed).
pub async fn trials(load: Load, trials: usize, label: &str) -> Option<Latency> {
    let mut runs = Vec::new();
    for t in 0..trials.max(1) {
        match run(load).await {
            Ok(r) => {
                println!("{}", r.describe(&format!("{label} trial {:>2}", t + 1)));
                runs.push(r);
            }
            Err(e) => println!("  {label} trial {:>2}: failed: {e}", t + 1),
        }
    }
    runs.sort_by_key(|r| r.at(99.0));
    let mid = runs.len() / 2;
    (!runs.is_empty()).then(|| runs.swap_remove(mid))
}

/// The `latency` subcommand.
pub async fn command(load: Load, n_trials: usize) {
    println!("latency: {}, {n_trials} trial(s)", load.describe());
    if let Some(r) = trials(load, n_trials, "latency").await {
        println!("{}", r.describe("median (by p99)"));
    }
}
