//! Scale: one large ring in this process, default timings and rate limit.
//!
//! 1. Joins: nodes start one after another, each joining through the one before, each
//!    once the one before has joined and at least a gap after the one before started
//!    (60 ms by default: the leader takes at most 20 joins a second from one IP address,
//!    and every node here has the same one; with `--join-gap-ms 0` the throttle shows);
//!    the time from the first start to the last join. A join that fails is made again
//!    with a fresh node a second later, and counted.
//!    Then every node's `status` is checked: each must see a ring of all the nodes and
//!    the same leader.
//! 2. Memory per node: this process's resident memory after the room formed minus before
//!    the first node started, divided by the nodes (tokio tasks, sockets' user-space
//!    buffers, protocol state; not the kernel's socket buffers).
//! 3. Idle CPU: this process's CPU time over an idle interval (heartbeats only, the
//!    bench itself asleep), as a share of one core for the whole room and per node;
//!    beside it the idle floor ([`floor`]), measured first, in the same process: bare
//!    sockets passing one heartbeat-sized datagram per node per interval.
//! 4. Election: the leader's task is aborted; the time until every survivor has shown
//!    the new leader (all the same one), the election messages the survivors sent
//!    (`Stats::election_messages`: tokens and announcements, not resends) and every
//!    datagram they sent in that window.

use crate::room::{self, Room, Setup};
use crate::{floor, host};
use ringchat::proto::{Event, Stats};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The nodes' heartbeat interval (the default).
const HEARTBEAT: Duration = Duration::from_millis(100);

/// The figures of one scale run.
pub struct Scale {
    /// Nodes in the ring.
    pub nodes: usize,
    /// First start to last join.
    pub join_all: Duration,
    /// Least time between two nodes' starts.
    pub join_gap: Duration,
    /// Joins that failed and were made again with a fresh node.
    pub join_failures: usize,
    /// Whether every node saw a ring of every node and one leader after the joins.
    pub ring_ok: Result<(), String>,
    /// Resident memory added per node, in bytes.
    pub memory_per_node: Option<f64>,
    /// The idle interval.
    pub idle: Duration,
    /// CPU time over the idle interval as a share of one core (0.01 is 1 %).
    pub idle_cpu: Option<f64>,
    /// Datagrams the room's nodes sent a second over the idle interval (their `sent`
    /// counters; the idle floor's sockets pass one each per heartbeat period).
    pub idle_sent_per_second: f64,
    /// The same for bare sockets passing one datagram per node per heartbeat interval.
    pub idle_floor: Result<f64, String>,
    /// Death of the leader to every survivor showing one new leader.
    pub election: Result<Duration, String>,
    /// Survivors' counters over the election window.
    pub election_stats: Stats,
}

impl Scale {
    /// The figures in lines.
    pub fn describe(&self) -> Vec<String> {
        let n = self.nodes as f64;
        vec![
            format!(
                "  join all {} nodes: {} (starts at least {} apart; {} failed joins made \
                 again; ring check: {})",
                self.nodes,
                room::ms(self.join_all),
                room::ms(self.join_gap),
                self.join_failures,
                match &self.ring_ok {
                    Ok(()) => "every node sees the whole ring and one leader".to_string(),
                    Err(e) => format!("FAILED: {e}"),
                }
            ),
            format!(
                "  memory per node: {}",
                self.memory_per_node
                    .map_or("unknown".into(), |b| format!("{:.0} KiB", b / 1024.0))
            ),
            format!(
                "  idle CPU over {:.0} s: {} of one core for the room, {} per node; the nodes \
                 sent {:.0} datagrams a second",
                self.idle.as_secs_f64(),
                self.idle_cpu
                    .map_or("unknown".into(), |c| format!("{:.2}%", c * 100.0)),
                self.idle_cpu
                    .map_or("unknown".into(), |c| format!("{:.4}%", c * 100.0 / n)),
                self.idle_sent_per_second
            ),
            format!(
                "  idle floor: {} of one core for {} bare sockets passing one {}-byte datagram \
                 each per 100 ms round a ring (no protocol)",
                match &self.idle_floor {
                    Ok(c) => format!("{:.2}%", c * 100.0),
                    Err(e) => format!("FAILED: {e}"),
                },
                self.nodes,
                floor::heartbeat_bytes()
            ),
            format!(
                "  election after the leader's death: {} ; election messages {}, all datagrams \
                 sent by survivors meanwhile {} (retransmitted {})",
                match &self.election {
                    Ok(d) => room::ms(*d),
                    Err(e) => format!("FAILED: {e}"),
                },
                self.election_stats.election_messages,
                self.election_stats.sent,
                self.election_stats.retransmitted
            ),
        ]
    }
}

/// Checks that every node sees a ring of `n` and that all name one leader.
async fn check_ring(room: &mut Room, n: usize) -> Result<(), String> {
    let all: Vec<usize> = (0..n).collect();
    let views = room.statuses(&all).await?;
    let short: Vec<String> = views
        .iter()
        .filter(|v| v.ring.len() != n)
        .map(|v| format!("{} sees {}", v.name, v.ring.len()))
        .collect();
    let leaders: BTreeSet<Option<String>> = views.iter().map(|v| v.leader.clone()).collect();
    if !short.is_empty() {
        return Err(format!(
            "{} node(s) see a ring of fewer than {n}: {}",
            short.len(),
            short.join(", ")
        ));
    }
    if leaders.len() != 1 {
        return Err(format!("leaders named: {leaders:?}"));
    }
    Ok(())
}

/// The counters of the nodes `which`, summed; a failure names the bench's phase `when`.
async fn counters(room: &mut Room, which: &[usize], when: &str) -> Result<Stats, String> {
    let views = room
        .statuses(which)
        .await
        .map_err(|e| format!("{when}: {e}"))?;
    Ok(room::total(&views))
}

/// Runs the scale measurements on `n` nodes with `idle` of idle measuring.
pub async fn run(n: usize, idle: Duration, join_gap: Duration) -> Result<Scale, String> {
    let idle_floor = floor::idle_floor(n, HEARTBEAT, idle).await;
    let rss_before = host::resident_bytes("self");
    let started = Instant::now();
    let mut room = Room::empty(&Setup::defaults());
    for i in 0..n {
        let t = Instant::now();
        let join = room.nodes.last().map(|h| h.local_addr);
        room.join(join)
            .await
            .map_err(|e| format!("{e} (after {i} of {n} joined)"))?;
        if i + 1 < n {
            tokio::time::sleep_until((t + join_gap).into()).await;
        }
    }
    let join_all = started.elapsed();
    let join_failures = room.join_failures;
    room.forget();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ring_ok = check_ring(&mut room, n).await;
    room.forget();
    let rss_after = host::resident_bytes("self");
    let memory_per_node = rss_before
        .zip(rss_after)
        .map(|(b, a)| a.saturating_sub(b) as f64 / n as f64);
    let everyone: Vec<usize> = (0..n).collect();
    let sent_before = counters(&mut room, &everyone, "before the idle interval")
        .await?
        .sent;
    room.forget();
    let cpu_before = host::process_cpu_time();
    let wall = Instant::now();
    tokio::time::sleep(idle).await;
    let idle = wall.elapsed();
    let idle_cpu = cpu_before
        .zip(host::process_cpu_time())
        .map(|(b, a)| (a.saturating_sub(b)).as_secs_f64() / idle.as_secs_f64());
    let sent_after = counters(&mut room, &everyone, "after the idle interval")
        .await?
        .sent;
    let idle_sent_per_second = sent_after.saturating_sub(sent_before) as f64 / idle.as_secs_f64();
    room.forget();
    let survivors: Vec<usize> = (1..n).collect();
    let before = counters(&mut room, &survivors, "before the leader's death").await?;
    room.forget();
    room.kill(0);
    let killed = Instant::now();
    let election = elect(&mut room, &survivors, killed).await;
    let after = counters(&mut room, &survivors, "after the election").await?;
    Ok(Scale {
        nodes: n,
        join_all,
        join_gap,
        join_failures,
        ring_ok,
        memory_per_node,
        idle,
        idle_cpu,
        idle_sent_per_second,
        idle_floor,
        election,
        election_stats: room::delta(&after, &before),
    })
}

/// Waits until every survivor has shown a new leader, the same one; the time since
/// `killed`.
async fn elect(room: &mut Room, survivors: &[usize], killed: Instant) -> Result<Duration, String> {
    let latest = |r: &Room, i: usize| {
        r.seen[i].iter().rev().find_map(|(t, e)| match e {
            Event::LeaderChanged { name } => Some((*t, name.clone())),
            _ => None,
        })
    };
    let agreed = |r: &Room| {
        let views: Vec<_> = survivors.iter().map(|&i| latest(r, i)).collect();
        let names: BTreeSet<_> = views.iter().map(|v| v.as_ref().map(|x| &x.1)).collect();
        names.len() == 1 && views.iter().all(Option::is_some)
    };
    room.wait_for(
        Duration::from_secs(60),
        "one new leader at every survivor",
        agreed,
    )
    .await
    .map_err(|e| {
        let with = survivors
            .iter()
            .filter(|&&i| latest(room, i).is_some())
            .count();
        format!(
            "{e} ({with} of {} survivors saw a new leader)",
            survivors.len()
        )
    })?;
    let last = survivors
        .iter()
        .filter_map(|&i| latest(room, i).map(|x| x.0))
        .max()
        .unwrap_or(killed);
    Ok(last - killed)
}

/// The `scale` subcommand.
pub async fn command(n: usize, idle: Duration, join_gap: Duration) {
    println!(
        "scale: {n} nodes in this process on 127.0.0.1, default timings (heartbeat 100 ms) and \
         rate limit, idle interval {:.0} s",
        idle.as_secs_f64()
    );
    match run(n, idle, join_gap).await {
        Ok(s) => s.describe().iter().for_each(|l| println!("{l}")),
        Err(e) => println!("  failed: {e}"),
    }
}
