//! Room throughput: room messages sent as fast as the room confirms them (each sender
//! keeps at most `window` of its own unconfirmed; its own message is confirmed when it
//! comes back sequenced), and the rate at which they are shown at every member: the
//! count divided by the time from the first send to the last member showing the last
//! message.

use crate::host;
use crate::room::{self, Room, Setup};
use clap::ValueEnum;
use ringchat::driver::Security;
use ringchat::guard::KEY_BYTES;
use ringchat::proto::{Command, Event, Stats};
use std::time::{Duration, Instant};

/// Who sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Senders {
    /// n1 alone (a member that does not lead: submit, sequence, fan out).
    One,
    /// Every member, the leader included.
    All,
}

impl Senders {
    /// For the report's parameters.
    pub fn describe(self) -> &'static str {
        match self {
            Senders::One => "sender n1 (not the leader)",
            Senders::All => "every member sends",
        }
    }
}

/// What one throughput run does.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Nodes in the room.
    pub nodes: usize,
    /// Room messages in all (split evenly among the senders).
    pub messages: usize,
    /// Who sends.
    pub senders: Senders,
    /// Own messages a sender may have unconfirmed at once.
    pub window: usize,
    /// Fraction of every node's outgoing datagrams dropped once the room is formed.
    pub loss: f64,
    /// Whether every node keeps its state in a database (durable before acknowledged).
    pub persist: bool,
    /// Whether room messages carry and need their origin's seal (as the program does).
    pub seal: bool,
}

/// One throughput run's figures.
pub struct Throughput {
    /// First send to the last member showing the last message.
    pub elapsed: Duration,
    /// Room messages shown at every member.
    pub messages: usize,
    /// Counters summed over the room's nodes at the end.
    pub totals: Stats,
    /// Members in the room.
    pub nodes: usize,
    /// CPU time this process (every node of the room) used over the run.
    pub cpu: Option<Duration>,
    /// Datagrams the leader sent over the run, retransmissions included.
    pub leader_sent: Option<u64>,
}

impl Throughput {
    /// Room messages shown at every member per second.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    /// One line for the report.
    pub fn describe(&self, label: &str) -> String {
        format!(
            "  {label}: {} messages shown at every member in {:.0} ms: {:.0} messages/s \
             ({}; room totals: {})",
            self.messages,
            self.elapsed.as_secs_f64() * 1e3,
            self.per_second(),
            self.costs(),
            room::describe_stats(&self.totals)
        )
    }

    /// Where the work goes: the room's CPU time per message, and per message and member
    /// (every member takes in and shows every message: this share is what a room of more
    /// members on the same cores pays again for each one), and the leader's datagrams per
    /// message (what relays would take off it).
    pub fn costs(&self) -> String {
        let per = |x: f64| x / self.messages.max(1) as f64;
        let cpu = self.cpu.map_or("CPU unknown".to_string(), |c| {
            let us = per(c.as_secs_f64() * 1e6);
            format!(
                "CPU {us:.1} µs a message, {:.1} µs a message per member",
                us / self.nodes.max(1) as f64
            )
        });
        let leader = self.leader_sent.map_or(String::new(), |d| {
            format!(", the leader {:.3} datagrams a message", per(d as f64))
        });
        format!("{cpu}{leader}")
    }
}

/// How long the room may make no progress at all before the run is abandoned.
const STALL: Duration = Duration::from_secs(15);

/// Forms a room with `room_key` (and no rate limit) and runs `load` through it. The
/// measuring loop runs as a task of the runtime, beside the nodes, so that the nodes'
/// events wake it without waking another thread.
pub async fn run(load: Load, room_key: Option<[u8; KEY_BYTES]>) -> Result<Throughput, String> {
    run_with(load, room_key, true).await
}

/// [`run`], with members talking in sessions or (`sessions` false) everything sealed with
/// the room key alone.
pub async fn run_with(
    load: Load,
    room_key: Option<[u8; KEY_BYTES]>,
    sessions: bool,
) -> Result<Throughput, String> {
    tokio::spawn(measure(load, room_key, sessions))
        .await
        .map_err(|e| format!("the measuring task failed: {e}"))?
}

async fn measure(
    load: Load,
    room_key: Option<[u8; KEY_BYTES]>,
    sessions: bool,
) -> Result<Throughput, String> {
    let Load {
        nodes: n,
        messages,
        senders,
        window,
        loss,
        persist,
        seal,
    } = load;
    let setup = Setup {
        security: Security {
            room_key,
            ..Setup::unlimited().security
        },
        persist,
        sessions,
        seal,
        ..Setup::unlimited()
    };
    let mut room = Room::form(n, &setup).await?;
    room.forget();
    room.loss.set(loss);
    let who: Vec<usize> = match senders {
        Senders::One => vec![1.min(n - 1)],
        Senders::All => (0..n).collect(),
    };
    let quota: Vec<usize> = (0..who.len())
        .map(|k| messages / who.len() + usize::from(k < messages % who.len()))
        .collect();
    let mut sent = vec![0usize; who.len()];
    let mut confirmed = vec![0usize; who.len()];
    let mut delivered = vec![0usize; n];
    let top_up = |sent: &mut Vec<usize>, confirmed: &[usize], room: &Room| {
        for (k, &i) in who.iter().enumerate() {
            while sent[k] < quota[k] && sent[k] - confirmed[k] < window {
                sent[k] += 1;
                let text = room::text_of(i, sent[k]);
                room.send(i, Command::SendAll { text });
            }
        }
    };
    let all: Vec<usize> = (0..n).collect();
    let before = room.statuses(&all).await.unwrap_or_default();
    let cpu_before = host::process_cpu_time();
    let started = Instant::now();
    let mut last = started;
    top_up(&mut sent, &confirmed, &room);
    // Events are taken in batches of whatever has arrived; the senders are topped up once
    // per batch, with every confirmation in it.
    let mut batch = Vec::new();
    while delivered.iter().any(|&d| d < messages) {
        batch.clear();
        if !room.next_batch(STALL, &mut batch).await {
            return Err(format!(
                "no progress for {STALL:?}: sent {sent:?}, confirmed {confirmed:?}, \
                 delivered {delivered:?}"
            ));
        }
        let mut newly_confirmed = false;
        for s in batch.drain(..) {
            if let Event::Room {
                mine,
                history: false,
                ..
            } = s.event
            {
                delivered[s.node] += 1;
                last = s.at;
                if mine && let Some(k) = who.iter().position(|&w| w == s.node) {
                    confirmed[k] += 1;
                    newly_confirmed = true;
                }
            }
        }
        if newly_confirmed {
            top_up(&mut sent, &confirmed, &room);
        }
    }
    let elapsed = last - started;
    let cpu = host::process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    room.loss.set(0.0);
    let after = room.statuses(&all).await.unwrap_or_default();
    let totals = room::total(&after);
    let sent_by_leader = |views: &[ringchat::proto::StatusView]| {
        views
            .iter()
            .find(|v| v.leader.as_ref() == Some(&v.name))
            .map(|v| (v.id, v.stats.sent))
    };
    let leader_sent = match (sent_by_leader(&before), sent_by_leader(&after)) {
        (Some((a, s0)), Some((b, s1))) if a == b => Some(s1.saturating_sub(s0)),
        _ => None,
    };
    Ok(Throughput {
        elapsed,
        messages,
        totals,
        nodes: n,
        cpu,
        leader_sent,
    })
}

/// The write path's cost: `trials` rooms without and with a database at every node
/// (alternating, no key), the medians and their ratio.
pub async fn compare_persist(load: Load, n_trials: usize) {
    println!(
        "throughput without and with persistence: {} nodes on 127.0.0.1, {} room messages, \
         {}, window {}, no key, no rate limit, {n_trials} trial(s) each, alternating",
        load.nodes,
        load.messages,
        load.senders.describe(),
        load.window
    );
    let mut runs: [Vec<Throughput>; 2] = [Vec::new(), Vec::new()];
    for t in 0..n_trials {
        for (c, persist) in [false, true].into_iter().enumerate() {
            let label = format!(
                "trial {:>2} {}",
                t + 1,
                if persist {
                    "with a database   "
                } else {
                    "without a database"
                }
            );
            match run(Load { persist, ..load }, None).await {
                Ok(r) => {
                    println!("{}", r.describe(&label));
                    runs[c].push(r);
                }
                Err(e) => println!("  {label}: failed: {e}"),
            }
        }
    }
    let [mut plain, mut stored] = runs;
    let median = |v: &mut Vec<Throughput>| {
        v.sort_by_key(|r| r.elapsed);
        let mid = v.len() / 2;
        (!v.is_empty()).then(|| v.swap_remove(mid))
    };
    if let (Some(p), Some(s)) = (median(&mut plain), median(&mut stored)) {
        println!("{}", p.describe("median without a database"));
        println!("{}", s.describe("median with a database   "));
        println!(
            "with / without a database: {:.2} (messages/s)",
            s.per_second() / p.per_second()
        );
    }
}

/// What issue 17's scheme costs: `trials` rooms of each of three configurations, each
/// with a fresh room key, alternating: every datagram sealed with the room key alone and
/// room messages unsealed (as rooms ran before); members in pairwise sessions, room
/// messages unsealed; and sessions with room messages sealed by their origin (as the
/// program runs). Prints every trial, the medians and their ratios to the first.
pub async fn compare_seal(load: Load, n_trials: usize) {
    println!(
        "throughput with the room key alone, with sessions, and with sessions and sealed \
         room messages: {} nodes on 127.0.0.1, {} room messages, {}, window {}, no rate \
         limit, {n_trials} trial(s) each, alternating",
        load.nodes,
        load.messages,
        load.senders.describe(),
        load.window
    );
    // (label, sessions, sealed)
    let configs = [
        ("room key alone   ", false, false),
        ("sessions         ", true, false),
        ("sessions + sealed", true, true),
    ];
    let mut runs: Vec<Vec<Throughput>> = configs.iter().map(|_| Vec::new()).collect();
    for t in 0..n_trials {
        for (c, &(name, sessions, seal)) in configs.iter().enumerate() {
            let label = format!("trial {:>2} {name}", t + 1);
            let key = rand::random::<[u8; KEY_BYTES]>();
            match run_with(Load { seal, ..load }, Some(key), sessions).await {
                Ok(r) => {
                    println!("{}", r.describe(&label));
                    runs[c].push(r);
                }
                Err(e) => println!("  {label}: failed: {e}"),
            }
        }
    }
    let medians: Vec<Option<Throughput>> = runs
        .into_iter()
        .map(|mut v| {
            v.sort_by_key(|r| r.elapsed);
            let mid = v.len() / 2;
            (!v.is_empty()).then(|| v.swap_remove(mid))
        })
        .collect();
    for ((name, _, _), m) in configs.iter().zip(&medians) {
        if let Some(m) = m {
            println!("{}", m.describe(&format!("median {name}")));
        }
    }
    if let Some(base) = &medians[0] {
        for ((name, _, _), m) in configs.iter().zip(&medians).skip(1) {
            if let Some(m) = m {
                println!(
                    "{} / room key alone: {:.2} (messages/s)",
                    name.trim_end(),
                    m.per_second() / base.per_second()
                );
            }
        }
    }
}

/// Runs `trials` rooms of each configuration (`false`: no key, `true`: a fresh random
/// key), alternating; returns the median run of each, in the order of `configs`.
pub async fn trials(load: Load, configs: &[bool], trials: usize) -> Vec<Option<Throughput>> {
    let mut runs: Vec<Vec<Throughput>> = configs.iter().map(|_| Vec::new()).collect();
    for t in 0..trials {
        for (c, &keyed) in configs.iter().enumerate() {
            let key = keyed.then(rand::random::<[u8; KEY_BYTES]>);
            let label = format!(
                "trial {:>2} {}",
                t + 1,
                if keyed { "with key   " } else { "without key" }
            );
            match run(load, key).await {
                Ok(r) => {
                    println!("{}", r.describe(&label));
                    runs[c].push(r);
                }
                Err(e) => println!("  {label}: failed: {e}"),
            }
        }
    }
    runs.into_iter()
        .map(|mut v| {
            v.sort_by_key(|r| r.elapsed);
            let mid = v.len() / 2;
            (!v.is_empty()).then(|| v.swap_remove(mid))
        })
        .collect()
}

/// The `throughput` subcommand: prints every trial and the medians; with both
/// configurations, their ratio.
pub async fn command(load: Load, configs: &[bool], n_trials: usize, threads: &str) {
    println!(
        "throughput: {} nodes on 127.0.0.1, {} room messages, {}, window {} unconfirmed per \
         sender, no rate limit, loss {:.0}%, {n_trials} trial(s), runtime threads {threads}",
        load.nodes,
        load.messages,
        load.senders.describe(),
        load.window,
        load.loss * 100.0
    );
    let best = trials(load, configs, n_trials).await;
    for (&keyed, r) in configs.iter().zip(&best) {
        if let Some(r) = r {
            let label = if keyed {
                "median with key   "
            } else {
                "median without key"
            };
            println!("{}", r.describe(label));
        }
    }
    if let [Some(plain), Some(keyed)] = best.as_slice() {
        println!(
            "with key / without key: {:.2} (messages/s), {:.2} (time)",
            keyed.per_second() / plain.per_second(),
            keyed.elapsed.as_secs_f64() / plain.elapsed.as_secs_f64()
        );
    }
}
