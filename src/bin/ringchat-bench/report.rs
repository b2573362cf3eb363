//! The `all` subcommand: every measurement at modest sizes, one after another in this
//! process (the scale ring first, while the process has allocated little, so that its
//! memory per node is the growth of a small heap), then one table (Markdown) with each
//! figure, its ratio to the raw reference where it is a rate, and the parameters it was
//! taken with; then the project's goals and whether these figures meet them.

use crate::host::{self, Machine};
use crate::latency::{self, Latency};
use crate::memory::{self, Feed};
use crate::program::{self, Fanout, Mode};
use crate::table::{Table, goal};
use crate::throughput::{self, Load, Senders};
use crate::{catchup, failover, raw, room, scale};
use std::time::Duration;

/// Sizes for `all`.
pub struct Sizes {
    /// Runs per throughput and latency figure (median reported); raw trials too.
    pub trials: usize,
    /// Trials per failover room size.
    pub failover_trials: usize,
    /// Nodes of the scale ring.
    pub scale_nodes: usize,
    /// Idle interval of the scale ring.
    pub idle: Duration,
    /// Messages fed to the child for the memory figure.
    pub memory_messages: usize,
    /// Lines in the program-path burst (ringchat and Redis).
    pub program_messages: usize,
    /// Messages a member is behind for the catch-up figure.
    pub catchup_behind: usize,
    /// The `ringchat` binary for the memory figure.
    pub binary: std::path::PathBuf,
}

/// Runs everything and prints the table and the goals.
pub async fn all(sizes: Sizes, threads: &str) {
    let machine = Machine::read();
    println!("ringchat-bench all: {}", machine.describe());
    println!("runtime threads {threads}; every node in this process unless said otherwise\n");

    // First, while this process has allocated little: the memory per node is the growth
    // of its resident memory.
    let n = sizes.scale_nodes;
    println!("scale: {n} nodes, idle {:.0} s", sizes.idle.as_secs_f64());
    let scaled = scale::run(n, sizes.idle, room::PACED).await;
    match &scaled {
        Ok(s) => s.describe().iter().for_each(|l| println!("{l}")),
        Err(e) => println!("  failed: {e}"),
    }

    let text = room::text_of(1, 1000);
    let size = raw::room_datagram_size(&text);
    println!(
        "raw reference: {size}-byte datagrams, 2 s, {} trial(s)",
        sizes.trials
    );
    let raw = match raw::median_blast(size, Duration::from_secs(2), sizes.trials) {
        Ok(r) => r,
        Err(e) => {
            println!("raw reference failed: {e}");
            return;
        }
    };
    let mut t = Table::new(raw.per_second());
    t.rate_in(
        "raw UDP, 1 sender → 1 receiver",
        raw.per_second(),
        "datagrams/s",
        format!("{size}-byte datagrams (a sequenced room message), 2 s blast, loopback"),
    );

    let mut three_one = None;
    let mut fifty_one = None;
    for (nodes, messages) in [(3, 5000), (10, 2000), (50, 500), (100, 200)] {
        for senders in [Senders::One, Senders::All] {
            let load = Load {
                nodes,
                messages,
                senders,
                window: 64,
                loss: 0.0,
                persist: false,
                seal: true,
            };
            println!(
                "\nthroughput: {nodes} nodes, {messages} messages, {}",
                senders.describe()
            );
            if let Some(Some(r)) = throughput::trials(load, &[false], sizes.trials).await.pop() {
                if nodes == 3 && senders == Senders::One {
                    three_one = Some(r.per_second());
                }
                if nodes == 50 && senders == Senders::One {
                    fifty_one = Some(r.per_second());
                }
                t.rate(
                    format!(
                        "room throughput, {nodes} nodes, {}",
                        match senders {
                            Senders::One => "one sender",
                            Senders::All => "all send",
                        }
                    ),
                    r.per_second(),
                    format!(
                        "{messages} msgs, window 64/sender, no key, no rate limit, loss 0, \
                         median of {}",
                        sizes.trials
                    ),
                );
            }
        }
    }

    let light = latency::Load {
        nodes: 3,
        rate: 200.0,
        messages: 1000,
        loss: 0.0,
    };
    // Heavy: half the 3-node closed-loop throughput, offered open-loop. Overload: 80% of
    // it, which the room does not sustain today (see docs/BENCHMARKS.md).
    let at = |share: f64| {
        let rate = (three_one.unwrap_or(10_000.0) * share).round();
        latency::Load {
            rate,
            messages: (rate * 3.0) as usize,
            ..light
        }
    };
    let (heavy, overload) = (at(0.5), at(0.8));
    let mut lat: Vec<(String, Option<Latency>)> = Vec::new();
    for (label, load) in [
        ("latency, light load", light),
        ("latency, heavy load (50% of 3-node throughput)", heavy),
        ("latency, overload (80% of 3-node throughput)", overload),
        (
            "latency, light load, 5% loss",
            latency::Load {
                loss: 0.05,
                ..light
            },
        ),
        (
            "latency, light load, 20% loss",
            latency::Load {
                loss: 0.20,
                ..light
            },
        ),
    ] {
        println!("\n{label}: {}", load.describe());
        let r = latency::trials(load, sizes.trials, "latency").await;
        match &r {
            Some(r) => t.add(
                label,
                format!(
                    "{} ({} missing, {} membership changes)",
                    r.summary(),
                    r.missing,
                    r.membership_changes.len()
                ),
                format!("{}, median of {} by p99", load.describe(), sizes.trials),
            ),
            None => t.add(label, "failed", load.describe()),
        }
        lat.push((label.to_string(), r));
    }
    for loss in [0.05, 0.20] {
        let load = Load {
            nodes: 3,
            messages: 2000,
            senders: Senders::One,
            window: 64,
            loss,
            persist: false,
            seal: true,
        };
        println!("\nthroughput under {:.0}% loss", loss * 100.0);
        if let Some(Some(r)) = throughput::trials(load, &[false], sizes.trials).await.pop() {
            t.rate(
                format!(
                    "room throughput, 3 nodes, one sender, {:.0}% loss",
                    loss * 100.0
                ),
                r.per_second(),
                format!(
                    "2000 msgs, window 64, no rate limit; retransmitted {}, median of {}",
                    r.totals.retransmitted, sizes.trials
                ),
            );
        }
    }

    let mut fail_worst = Vec::new();
    for nodes in [5, 50] {
        println!(
            "\nfailover: {nodes} nodes, {} trials",
            sizes.failover_trials
        );
        let mut times = failover::trials(nodes, sizes.failover_trials).await;
        let ok = times.len();
        match room::median_worst(&mut times) {
            Some((median, worst)) => {
                fail_worst.push(worst);
                t.add(
                    format!("failover, {nodes} nodes"),
                    format!("median {} worst {}", room::ms(median), room::ms(worst)),
                    format!(
                        "{ok}/{} trials ok, default timings and rate limit, leader task aborted",
                        sizes.failover_trials
                    ),
                );
            }
            None => t.add(
                format!("failover, {nodes} nodes"),
                "failed",
                "every trial failed",
            ),
        }
    }

    let mut idle_cpu = None;
    let mut idle_floor = None;
    match scaled {
        Ok(s) => {
            let p = format!("{n} nodes in one process, default timings and rate limit");
            let ring = match &s.ring_ok {
                Ok(()) => String::new(),
                Err(e) => format!(" — ring check FAILED: {e}"),
            };
            t.add(
                format!("scale: join all {n}"),
                format!("{}{ring}", room::ms(s.join_all)),
                format!(
                    "{p}; one join at a time, starts ≥ {} apart; {} failed joins made again",
                    room::ms(s.join_gap),
                    s.join_failures
                ),
            );
            t.add(
                format!("scale: election after leader death, {n} nodes"),
                match &s.election {
                    Ok(d) => format!(
                        "{}, {} election msgs, {} datagrams",
                        room::ms(*d),
                        s.election_stats.election_messages,
                        s.election_stats.sent
                    ),
                    Err(e) => format!("FAILED: {e}"),
                },
                format!("{p}; datagrams = all sent by survivors in the window"),
            );
            idle_cpu = s.idle_cpu;
            idle_floor = s.idle_floor.as_ref().ok().copied();
            t.add(
                format!("scale: idle CPU, {n} nodes"),
                s.idle_cpu.map_or("unknown".into(), |c| {
                    format!(
                        "{:.2}% of a core ({:.4}% per node)",
                        c * 100.0,
                        c * 100.0 / n as f64
                    )
                }),
                format!("{p}; over {:.0} s of heartbeats only", s.idle.as_secs_f64()),
            );
            t.add(
                format!("scale: idle floor, {n} bare sockets"),
                match &s.idle_floor {
                    Ok(c) => format!("{:.2}% of a core", c * 100.0),
                    Err(e) => format!("FAILED: {e}"),
                },
                "one heartbeat-sized datagram per socket per 100 ms round a ring, no protocol: \
                 the cost of the sends, receives and wake-ups alone",
            );
            t.add(
                format!("scale: memory per node, {n} nodes"),
                s.memory_per_node
                    .map_or("unknown".into(), |b| format!("{:.0} KiB", b / 1024.0)),
                "bench process VmRSS after the ring formed minus before, / nodes (measured first)",
            );
        }
        Err(e) => t.add(format!("scale, {n} nodes"), format!("FAILED: {e}"), ""),
    }

    let feed = Feed {
        binary: sizes.binary.clone(),
        messages: sizes.memory_messages,
        text_bytes: 40,
        window: 64,
    };
    println!("\nmemory: {} messages", feed.messages);
    match memory::run(&feed).await {
        Ok(m) => {
            println!("{}", memory::describe(&m));
            let p = format!(
                "ringchat binary, leader of a room of 2, --history-limit {}, {}-byte texts",
                feed.messages.max(10_000),
                feed.text_bytes
            );
            t.add(
                "memory: one node process at idle",
                host::mib(m.idle as f64),
                p.clone(),
            );
            if let Some((k, b)) = m.after.last() {
                t.add(
                    format!("memory: after {k} messages of history"),
                    host::mib(*b as f64),
                    p,
                );
            }
        }
        Err(e) => t.add("memory", format!("FAILED: {e}"), ""),
    }

    let burst = sizes.program_messages;
    println!(
        "\nprogram path: {burst} lines piped into one of three `ringchat` processes; Redis pub/sub"
    );
    let fan = program::compare(&sizes.binary, burst, sizes.trials);
    let redis_rate = fan
        .redis
        .as_ref()
        .ok()
        .and_then(|r| r.as_ref())
        .map(Fanout::per_second);
    let fan_params = format!(
        "3 real processes on 127.0.0.1, {burst} `send_all` lines piped into bob (not the leader), \
         stdout of alice and carol read from files, median of {}",
        sizes.trials
    );
    let mut fan_ratio = Vec::new();
    for (mode, r) in [
        (Mode::Database, &fan.database),
        (Mode::Ephemeral, &fan.ephemeral),
    ] {
        let label = format!("program path, 3 members, {}", mode.describe());
        let Some(r) = r else {
            t.add(label, "failed", fan_params.clone());
            continue;
        };
        let ratio = redis_rate.map(|x| r.per_second() / x);
        fan_ratio.push((mode, ratio));
        let refused: u64 = r.refused.iter().map(|(_, k)| k).sum();
        t.add(
            label,
            format!(
                "{:.0} msg/s{}; refused {refused}",
                r.per_second(),
                ratio.map_or(String::new(), |x| format!(" ({x:.2} of Redis)"))
            ),
            fan_params.clone(),
        );
    }
    match &fan.redis {
        Ok(Some(r)) => t.add(
            "Redis pub/sub, 1 publisher → 2 subscribers",
            format!("{:.0} msg/s", r.per_second()),
            format!(
                "redis-server (no persistence), `redis-cli --pipe` publishing {burst}, two \
                 `redis-cli subscribe` writing to files, median of {}",
                sizes.trials
            ),
        ),
        Ok(None) => t.add("Redis pub/sub", "failed", ""),
        Err(why) => t.add("Redis pub/sub", format!("skipped: {why}"), ""),
    }

    let behind = sizes.catchup_behind;
    let limit = Duration::from_secs(30);
    println!("\ncatch-up: a member behind by {behind}");
    let mut caught = Vec::new();
    for setup in [
        catchup::Setup::Database,
        catchup::Setup::EphemeralKept,
        catchup::Setup::EphemeralDefault,
    ] {
        let c = catchup::trials(
            &sizes.binary,
            (setup, catchup::Away::Dereg),
            behind,
            limit,
            sizes.trials,
        );
        t.add(
            format!(
                "catch-up after dereg, behind by {behind}, {}",
                setup.describe(behind)
            ),
            c.as_ref().map_or("failed".into(), catchup::Catchup::value),
            format!(
                "3 real processes; `reg` typed to the last shown, limit 30 s, median of {}",
                sizes.trials
            ),
        );
        if setup.keeps_all() {
            caught.push(c.and_then(|c| c.current(true).then_some(c.took).flatten()));
        }
    }

    println!("\n## Figures ({})\n", machine.describe());
    t.print();
    println!("\n## Goals\n");
    goal(
        "3-node throughput ≥ 0.5 of raw",
        three_one.map(|x| x / t.raw >= 0.5),
        three_one.map_or("-".into(), |x| format!("{:.3} of raw", x / t.raw)),
    );
    let light_p99 = lat[0].1.as_ref().map(|l| l.at(99.0));
    goal(
        "p99 at light load < 1 ms",
        light_p99.map(|d| d < Duration::from_millis(1)),
        light_p99.map_or("-".into(), room::ms),
    );
    let lossy = lat[4].1.as_ref();
    goal(
        "20% loss: all delivered and p99 < 1.5 s",
        lossy.map(|l| l.missing == 0 && l.at(99.0) < Duration::from_millis(1500)),
        lossy.map_or("-".into(), |l| {
            format!("{} missing, p99 {}", l.missing, room::ms(l.at(99.0)))
        }),
    );
    let worst = fail_worst.iter().max().copied();
    goal(
        "failover worst < 1 s",
        worst.map(|w| w < Duration::from_secs(1)),
        worst.map_or("-".into(), room::ms),
    );
    for (mode, ratio) in &fan_ratio {
        let (want, text) = match mode {
            Mode::Ephemeral => (1.0, "program path, 3 members, --ephemeral: ≥ 1.0 of Redis"),
            Mode::Database => (
                0.5,
                "program path, 3 members, with the database: ≥ 0.5 of Redis",
            ),
        };
        goal(
            text,
            ratio.map(|x| x >= want),
            ratio.map_or("-".into(), |x| format!("{x:.2}")),
        );
    }
    let worst_catchup = caught.iter().copied().max();
    goal(
        &format!("catch-up of {behind} behind ≤ 1 s"),
        worst_catchup.map(|c| c.is_some_and(|d| d <= Duration::from_secs(1))),
        worst_catchup.map_or("-".into(), |c| {
            c.map_or("not current within 30 s".into(), room::ms)
        }),
    );
    let share = three_one.zip(fifty_one).map(|(a, b)| b / a);
    goal(
        "50 members ≥ 0.25 of the 3-member rate",
        share.map(|x| x >= 0.25),
        share.map_or("-".into(), |x| format!("{x:.3}")),
    );
    let over_floor = idle_cpu.zip(idle_floor).map(|(c, f)| c / f);
    goal(
        &format!("{n}-node ring idle CPU ≤ 1.25 × the bare-socket floor of the same run"),
        over_floor.map(|x| x <= 1.25),
        over_floor.map_or("-".into(), |x| format!("{x:.2} ×")),
    );
    goal(
        &format!("{n}-node ring idle CPU < 1% of a core for the whole room"),
        idle_cpu.map(|c| c < 0.01),
        idle_cpu.map_or("-".into(), |c| format!("{:.2}%", c * 100.0)),
    );
}
