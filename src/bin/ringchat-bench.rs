//! `ringchat-bench`: figures from real nodes on real UDP sockets on 127.0.0.1.
//!
//! `ringchat-bench failover --nodes 4 --trials 20`: time from the leader's sudden death
//! (its task aborted: no goodbye, no further datagrams) to the first room message sent
//! after the death being shown at every survivor. Prints each trial, the median and the
//! worst, with the parameters.
//!
//! `ringchat-bench throughput --nodes 3 --messages 2000 [--senders one|all] [--key]
//! [--compare-key]`: room messages sent as fast as the room confirms them (each sender
//! keeps at most `--window` of its own unconfirmed; its own message is confirmed when it
//! comes back sequenced), and the rate at which they are shown at every member: the
//! count divided by the time from the first send to the last member showing the last
//! message. With `--compare-key` the same run is made without and with a room key
//! (alternating, `--trials` times each) and the ratio is printed.

use clap::{Parser, Subcommand, ValueEnum};
use ringchat::driver::{self, NodeHandle, Output, Request, Security};
use ringchat::guard::KEY_BYTES;
use ringchat::proto::{Command, Event, NodeConfig, Stats};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(
    name = "ringchat-bench",
    about = "Measure ringchat on real UDP sockets on 127.0.0.1"
)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Leader crash to the first new message shown at all survivors.
    Failover {
        /// Nodes in the room.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Trials (a fresh room each).
        #[arg(long, default_value_t = 20)]
        trials: usize,
    },
    /// Room messages shown at every member per second, sent as fast as the room confirms.
    Throughput {
        /// Nodes in the room.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Room messages in all (split evenly among the senders).
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        /// Who sends: one member that does not lead (n1), or every member.
        #[arg(long, value_enum, default_value_t = Senders::One)]
        senders: Senders,
        /// Own messages a sender may have unconfirmed at once.
        #[arg(long, default_value_t = 64)]
        window: usize,
        /// Seal every datagram with a (fresh, random) room key.
        #[arg(long)]
        key: bool,
        /// Run without and with a room key and print both and their ratio.
        #[arg(long)]
        compare_key: bool,
        /// Runs per configuration (a fresh room each; the median is reported).
        #[arg(long, default_value_t = 1)]
        trials: usize,
        /// Runtime worker threads (default: the number of cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Senders {
    /// n1 alone (a member that does not lead: submit, sequence, fan out).
    One,
    /// Every member, the leader included.
    All,
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Every node's events, stamped with when the bench saw them.
struct Room {
    nodes: Vec<NodeHandle>,
    seen: Vec<Vec<(Instant, Event)>>,
}

impl Room {
    fn pump(&mut self) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            while let Ok(out) = n.events.try_recv() {
                if let Output::Event(e) = out {
                    self.seen[i].push((Instant::now(), e));
                }
            }
        }
    }

    async fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Room) -> bool,
    ) -> Result<(), String> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            self.pump();
            if done(self) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(format!("timed out waiting for {what}"))
    }

    fn joined(&self, i: usize) -> bool {
        self.seen[i]
            .iter()
            .any(|(_, e)| matches!(e, Event::Joined { .. }))
    }
}

async fn start(
    name: String,
    join: Option<std::net::SocketAddr>,
    security: &Security,
) -> Result<NodeHandle, String> {
    let socket = driver::bind(LOCALHOST, 0)
        .await
        .map_err(|e| e.to_string())?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    Ok(driver::spawn_with(
        socket,
        NodeConfig::new(name, addr, join),
        security.clone(),
    ))
}

async fn form_room(n: usize) -> Result<Room, String> {
    form_room_with(n, &Security::default()).await
}

async fn form_room_with(n: usize, security: &Security) -> Result<Room, String> {
    let mut room = Room {
        nodes: Vec::new(),
        seen: Vec::new(),
    };
    for i in 0..n {
        let join = room.nodes.last().map(|h: &NodeHandle| h.local_addr);
        room.nodes
            .push(start(format!("n{i}"), join, security).await?);
        room.seen.push(Vec::new());
        room.wait_for(Duration::from_secs(10), "a join", |r| r.joined(i))
            .await?;
    }
    // Let every member be heard from by its neighbours before anything dies.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    room.pump();
    Ok(room)
}

async fn failover_trial(n: usize) -> Result<Duration, String> {
    let mut room = form_room(n).await?;
    room.nodes[0].task.abort();
    let killed = Instant::now();
    let survivors: Vec<usize> = (1..n).collect();
    let mut k = 0u64;
    let mut next_send = Instant::now();
    let shown_everywhere = |r: &Room, text: &str| -> Option<Instant> {
        survivors
            .iter()
            .map(|&i| {
                r.seen[i].iter().find_map(|(t, e)| match e {
                    Event::Room { entry, .. } if entry.text == text => Some(*t),
                    _ => None,
                })
            })
            .collect::<Option<Vec<_>>>()
            .and_then(|ts| ts.into_iter().max())
    };
    let deadline = killed + Duration::from_secs(20);
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            k += 1;
            let text = format!("probe{k}");
            let _ = room.nodes[1]
                .commands
                .send(Request::Command(Command::SendAll { text }));
            next_send += Duration::from_millis(10);
        }
        room.pump();
        let first = (1..=k).find_map(|j| shown_everywhere(&room, &format!("probe{j}")));
        if let Some(t) = first {
            for h in &room.nodes {
                h.task.abort();
            }
            return Ok(t - killed);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err("no message reached every survivor within 20 s".into())
}

fn summarize(label: &str, mut v: Vec<Duration>) {
    v.sort();
    let median = v[v.len() / 2];
    let worst = v[v.len() - 1];
    println!(
        "{label}: trials {} median {:.0} ms worst {:.0} ms best {:.0} ms",
        v.len(),
        median.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
        v[0].as_secs_f64() * 1e3
    );
}

/// One throughput run's figures.
struct Throughput {
    elapsed: Duration,
    messages: usize,
    /// Counters summed over the room's nodes at the end.
    totals: Stats,
}

impl Throughput {
    fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// How long the room may make no progress at all before the run is abandoned.
const STALL: Duration = Duration::from_secs(15);

async fn throughput_run(
    n: usize,
    messages: usize,
    senders: Senders,
    window: usize,
    room_key: Option<[u8; KEY_BYTES]>,
) -> Result<Throughput, String> {
    let security = Security {
        room_key,
        per_source_per_second: u32::MAX,
    };
    let mut room = form_room_with(n, &security).await?;
    // Every node's events into one channel, tagged with the node's index.
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Output)>();
    for (i, h) in room.nodes.iter_mut().enumerate() {
        let (_, idle) = mpsc::unbounded_channel();
        let mut events = std::mem::replace(&mut h.events, idle);
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(out) = events.recv().await {
                if tx.send((i, out)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
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
                let text = format!("n{i} m{}", sent[k]);
                let _ = room.nodes[i]
                    .commands
                    .send(Request::Command(Command::SendAll { text }));
            }
        }
    };
    let started = Instant::now();
    top_up(&mut sent, &confirmed, &room);
    while delivered.iter().any(|&d| d < messages) {
        let Ok(Some((i, out))) = tokio::time::timeout(STALL, rx.recv()).await else {
            return Err(format!(
                "no progress for {STALL:?}: sent {sent:?}, confirmed {confirmed:?}, \
                 delivered {delivered:?}"
            ));
        };
        if let Output::Event(Event::Room {
            mine,
            history: false,
            ..
        }) = out
        {
            delivered[i] += 1;
            if mine && let Some(k) = who.iter().position(|&w| w == i) {
                confirmed[k] += 1;
                top_up(&mut sent, &confirmed, &room);
            }
        }
    }
    let elapsed = started.elapsed();
    // The room's counters, for the report (retransmissions, refusals).
    let mut totals = Stats::default();
    for h in &room.nodes {
        let _ = h.commands.send(Request::Command(Command::Status));
    }
    let mut answered = 0;
    while answered < n {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some((_, Output::Event(Event::Status(s))))) => {
                answered += 1;
                let t = &mut totals;
                t.sent += s.stats.sent;
                t.retransmitted += s.stats.retransmitted;
                t.received += s.stats.received;
                t.dropped += s.stats.dropped;
                t.refused += s.stats.refused;
                t.duplicates += s.stats.duplicates;
                t.gave_up += s.stats.gave_up;
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    for h in &room.nodes {
        h.task.abort();
    }
    Ok(Throughput {
        elapsed,
        messages,
        totals,
    })
}

fn describe(label: &str, t: &Throughput) {
    let s = &t.totals;
    println!(
        "  {label}: {} messages shown at every member in {:.0} ms: {:.0} messages/s \
         (room totals: sent {} received {} retransmitted {} refused {} dropped {} duplicates {} gave_up {})",
        t.messages,
        t.elapsed.as_secs_f64() * 1e3,
        t.per_second(),
        s.sent,
        s.received,
        s.retransmitted,
        s.refused,
        s.dropped,
        s.duplicates,
        s.gave_up
    );
}

/// Runs `trials` rooms with the key and/or without, alternating; returns the median run
/// of each configuration (plain first).
async fn throughput(
    args: (usize, usize, Senders, usize),
    configs: &[bool],
    trials: usize,
) -> Vec<Option<Throughput>> {
    let (nodes, messages, senders, window) = args;
    let mut runs: Vec<Vec<Throughput>> = configs.iter().map(|_| Vec::new()).collect();
    for t in 0..trials {
        for (c, &keyed) in configs.iter().enumerate() {
            let key = keyed.then(rand::random::<[u8; KEY_BYTES]>);
            let label = format!(
                "trial {:>2} {}",
                t + 1,
                if keyed { "with key   " } else { "without key" }
            );
            match throughput_run(nodes, messages, senders, window, key).await {
                Ok(r) => {
                    describe(&label, &r);
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

fn main() {
    let args = Args::parse();
    let rt = match &args.what {
        What::Failover { .. } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        What::Throughput { threads, .. } => {
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .enable_all()
                .build()
        }
    }
    .expect("runtime");
    rt.block_on(async {
        match args.what {
            What::Failover { nodes, trials } => {
                if nodes < 2 || trials == 0 {
                    eprintln!("error: need at least 2 nodes and 1 trial");
                    std::process::exit(2);
                }
                println!("failover: {nodes} nodes on 127.0.0.1, default timings (heartbeat 100 ms, suspect after 3), leader task aborted");
                let mut times = Vec::new();
                for t in 0..trials {
                    match failover_trial(nodes).await {
                        Ok(d) => {
                            println!("  trial {:>2}: {:.0} ms", t + 1, d.as_secs_f64() * 1e3);
                            times.push(d);
                        }
                        Err(e) => println!("  trial {:>2}: failed: {e}", t + 1),
                    }
                }
                if !times.is_empty() {
                    summarize("failover", times);
                }
            }
            What::Throughput {
                nodes,
                messages,
                senders,
                window,
                key,
                compare_key,
                trials,
                threads,
            } => {
                if nodes < 2 || messages == 0 || window == 0 || trials == 0 {
                    eprintln!("error: need at least 2 nodes, 1 message, a window of 1, 1 trial");
                    std::process::exit(2);
                }
                let configs: &[bool] = if compare_key {
                    &[false, true]
                } else if key {
                    &[true]
                } else {
                    &[false]
                };
                let threads = threads.map_or_else(|| "one per core".to_string(), |t| t.to_string());
                println!(
                    "throughput: {nodes} nodes on 127.0.0.1, {messages} room messages, senders {}, \
                     window {window} unconfirmed per sender, no rate limit, {trials} trial(s), \
                     runtime threads {threads}",
                    match senders {
                        Senders::One => "n1 (not the leader)",
                        Senders::All => "every member",
                    }
                );
                let best = throughput((nodes, messages, senders, window), configs, trials).await;
                for (&keyed, r) in configs.iter().zip(&best) {
                    if let Some(r) = r {
                        describe(
                            if keyed { "median with key   " } else { "median without key" },
                            r,
                        );
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
        }
    });
}
