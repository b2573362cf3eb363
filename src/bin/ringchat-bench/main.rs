//! `ringchat-bench`: figures from real nodes on real UDP sockets on 127.0.0.1. Programs
//! that print figures, never pass/fail tests; `cargo test` does not run them.
//!
//! Every subcommand prints its parameters with its figures. The nodes run in this process
//! (`driver::NodeTask`), except for `memory`, which runs the `ringchat` binary.
//!
//! - `raw [--size B] [--seconds S] [--trials T]`: the raw reference ([`raw`]): one thread
//!   blasting datagrams of a room message's size at another on loopback, datagrams/s.
//! - `throughput --nodes N --messages M [--senders one|all] [--window W] [--loss F]
//!   [--key] [--compare-key] [--persist] [--compare-persist] [--compare-seal] [--trials T]`
//!   ([`throughput`]): room messages shown at every member per second, sent as fast as
//!   the room confirms them; with `--compare-key`, without and with a room key,
//!   alternating, and their ratio; with `--compare-persist`, without and with a database
//!   at every node (the write path's cost); with `--compare-seal`, with a room key and
//!   room messages unsealed and sealed by their origin (what the seal costs).
//! - `latency --nodes N --rate R --messages M [--loss F] [--trials T]` ([`latency`]):
//!   submit to shown at every member at an offered rate: p50, p99, p99.9, max.
//! - `failover --nodes 5 --nodes 50 --trials 20` ([`failover`]): leader killed to the
//!   first new message shown at every survivor: each trial, median and worst.
//! - `scale --nodes 100 [--idle-seconds S] [--join-gap-ms G]` ([`scale`]): time to join
//!   all, ring check, memory per node, idle CPU, election time and messages after the
//!   leader dies.
//! - `memory [--messages 100000]` ([`memory`]): resident memory of one `ringchat`
//!   process at idle and after that many messages of history.
//! - `program [--messages 100000] [--trials 3]` ([`program`]): three real `ringchat`
//!   processes, a burst piped into one, both others' stdout read from files, with default
//!   flags and `--ephemeral`; the same fan-out through Redis pub/sub in the same run when
//!   `redis-server` and `redis-cli` are installed (skipped, saying so, when not).
//! - `catchup [--away dereg|pause] [--behind 100000] [--trials 3]` ([`catchup`]): a real
//!   member back from `dereg` (or from its process stopped with `SIGSTOP`, with `--away
//!   pause`) while the room said that many messages: the time until it shows the last,
//!   beside the time the room took to show them in the first place; with databases,
//!   with `--ephemeral --history-limit` large enough to keep them all, and with
//!   `--ephemeral` keeping 10 000 (the rest is reported kept by nobody).
//! - `sessions [--messages M] [--trials T]` ([`sessions`]): keyed rooms with every
//!   datagram sealed with the room key alone (room messages unsealed) against the
//!   program's way (members in pairwise sessions, room messages sealed by their origin),
//!   alternating: 3-node throughput and its ratio, join time, failover.
//! - `all [--trials T]` ([`report`]): all of the above at modest sizes and one table,
//!   each rate also as a ratio to the raw reference, then the project's goals.
//!
//! Loss (`--loss`) is injected with `driver::Loss`: that fraction of every node's
//! outgoing datagrams is dropped just before `send_to`. See `docs/BENCHMARKS.md` for how
//! each figure is taken and the latest figures.
//!
//! Figures taken while other programs use the cores (a build, say) are noisy: use
//! `--trials` and look at the medians and at the load average printed by `all`.

mod catchup;
mod failover;
mod floor;
mod host;
mod latency;
mod memory;
mod procs;
mod program;
mod raw;
mod report;
mod room;
mod scale;
mod sessions;
mod table;
mod throughput;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use throughput::Senders;

/// The allocator the `ringchat` program runs its nodes with (see `src/main.rs`), so the
/// nodes measured here allocate as the program's do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The command line.
#[derive(Parser)]
#[command(
    name = "ringchat-bench",
    about = "Measure ringchat on real UDP sockets on 127.0.0.1"
)]
struct Args {
    /// Runtime worker threads (default: the number of cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    what: What,
}

/// The measurements.
#[derive(Subcommand)]
enum What {
    /// Raw reference: one UDP sender to one receiver on loopback, datagrams per second.
    Raw {
        /// Datagram size in bytes (default: a sequenced room message of the benchmarks).
        #[arg(long)]
        size: Option<usize>,
        /// Seconds per blast.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Blasts (the median is reported).
        #[arg(long, default_value_t = 3)]
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
        /// Fraction (0 to 1) of every node's outgoing datagrams dropped.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Seal every datagram with a (fresh, random) room key.
        #[arg(long)]
        key: bool,
        /// Run without and with a room key and print both and their ratio.
        #[arg(long)]
        compare_key: bool,
        /// Every node keeps its state in a database (as the program does by default).
        #[arg(long)]
        persist: bool,
        /// Run without and with a database at every node and print both and their ratio
        /// (the write path's cost).
        #[arg(long, conflicts_with = "compare_key")]
        compare_persist: bool,
        /// Run with a room key, room messages unsealed (the room key alone) and sealed by
        /// their origin (as the program runs), and print both and their ratio (what the
        /// origin's seal costs).
        #[arg(long, conflicts_with_all = ["compare_key", "compare_persist"])]
        compare_seal: bool,
        /// Runs per configuration (a fresh room each; the median is reported).
        #[arg(long, default_value_t = 1)]
        trials: usize,
    },
    /// Keyed rooms, the room key alone against pairwise sessions with sealed room
    /// messages, alternating: 3-node throughput and its ratio, join time, failover.
    Sessions {
        /// Room messages per throughput run.
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Trials per configuration (medians reported).
        #[arg(long, default_value_t = 3)]
        trials: usize,
    },
    /// Submit to shown at every member, p50/p99/p99.9/max, at an offered rate.
    Latency {
        /// Nodes in the room.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Room messages offered per second (by n1).
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Room messages in all.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Fraction (0 to 1) of every node's outgoing datagrams dropped.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Runs (a fresh room each; the one with the median p99 is reported).
        #[arg(long, default_value_t = 1)]
        trials: usize,
    },
    /// Leader crash to the first new message shown at all survivors.
    Failover {
        /// Nodes in the room; repeat for several sizes (default 5 and 50).
        #[arg(long)]
        nodes: Vec<usize>,
        /// Trials per size (a fresh room each).
        #[arg(long, default_value_t = 20)]
        trials: usize,
    },
    /// A large ring: join time, memory and idle CPU per node, election after a crash.
    Scale {
        /// Nodes in the ring.
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        /// Seconds of idle CPU measuring.
        #[arg(long, default_value_t = 10.0)]
        idle_seconds: f64,
        /// Least milliseconds between two nodes' starts (the leader takes 20 joins a
        /// second from one IP address).
        #[arg(long, default_value_t = 60)]
        join_gap_ms: u64,
    },
    /// Resident memory of one `ringchat` process at idle and after many messages.
    Memory {
        /// Room messages fed to it (its history limit is raised to hold them all).
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Bytes of text per message.
        #[arg(long, default_value_t = 40)]
        text_bytes: usize,
        /// The `ringchat` binary (default: the one beside this program).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// The program path: three real `ringchat` processes, a burst piped into one, both
    /// others' stdout read from files, default flags and `--ephemeral`; the same fan-out
    /// through Redis pub/sub when installed.
    Program {
        /// Lines in the burst.
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Rounds (each: ringchat with a database, ephemeral, Redis; medians reported).
        #[arg(long, default_value_t = 3)]
        trials: usize,
        /// The `ringchat` binary (default: the one beside this program).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// Catch-up of a real member back from `dereg` (or a pause) while the room said many
    /// messages.
    Catchup {
        /// How the member is away: `dereg` and `reg`, or its process stopped and continued.
        #[arg(long, value_enum, default_value_t = catchup::Away::Dereg)]
        away: catchup::Away,
        /// Messages said while it was away.
        #[arg(long, default_value_t = 100_000)]
        behind: usize,
        /// Seconds to wait for it to show the last.
        #[arg(long, default_value_t = 30.0)]
        limit_seconds: f64,
        /// Trials per setup (default flags; `--ephemeral --history-limit` behind + 100;
        /// `--ephemeral`; median reported).
        #[arg(long, default_value_t = 3)]
        trials: usize,
        /// The `ringchat` binary (default: the one beside this program).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// Everything at modest sizes, then one table with the parameters of each figure.
    All {
        /// Runs per throughput, latency and raw figure (medians reported).
        #[arg(long, default_value_t = 1)]
        trials: usize,
        /// Trials per failover size.
        #[arg(long, default_value_t = 5)]
        failover_trials: usize,
        /// Nodes of the scale ring.
        #[arg(long, default_value_t = 100)]
        scale_nodes: usize,
        /// Seconds of idle CPU measuring on the scale ring.
        #[arg(long, default_value_t = 10.0)]
        idle_seconds: f64,
        /// Room messages fed to the process of the memory figure.
        #[arg(long, default_value_t = 100_000)]
        memory_messages: usize,
        /// Lines in the program-path burst (ringchat and Redis).
        #[arg(long, default_value_t = 100_000)]
        program_messages: usize,
        /// Messages a member is behind for the catch-up figure.
        #[arg(long, default_value_t = 100_000)]
        catchup_behind: usize,
        /// The `ringchat` binary (default: the one beside this program).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
}

/// Exits with a usage error.
fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2);
}

/// Parses the command line and runs the measurement on a multi-threaded runtime.
fn main() {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    let threads = threads.to_string();
    rt.block_on(async {
        match args.what {
            What::Raw {
                size,
                seconds,
                trials,
            } => {
                let size = size.unwrap_or_else(|| raw::room_datagram_size(&room::text_of(1, 1000)));
                println!("raw: one sender thread, one receiver thread, 127.0.0.1, {size}-byte datagrams, {seconds} s, {trials} trial(s)");
                match raw::median_blast(size, Duration::from_secs_f64(seconds), trials) {
                    Ok(r) => println!("median: {}", r.describe()),
                    Err(e) => println!("failed: {e}"),
                }
            }
            What::Throughput {
                nodes,
                messages,
                senders,
                window,
                loss,
                key,
                compare_key,
                persist,
                compare_persist,
                compare_seal,
                trials,
            } => {
                if nodes < 2 || messages == 0 || window == 0 || trials == 0 {
                    usage("need at least 2 nodes, 1 message, a window of 1, 1 trial");
                }
                let configs: &[bool] = if compare_key {
                    &[false, true]
                } else if key {
                    &[true]
                } else {
                    &[false]
                };
                let load = throughput::Load {
                    nodes,
                    messages,
                    senders,
                    window,
                    loss,
                    persist,
                    seal: true,
                };
                if compare_seal {
                    throughput::compare_seal(load, trials).await;
                } else if compare_persist {
                    throughput::compare_persist(load, trials).await;
                } else {
                    throughput::command(load, configs, trials, &threads).await;
                }
            }
            What::Sessions { messages, trials } => {
                if messages == 0 || trials == 0 {
                    usage("need at least 1 message and 1 trial");
                }
                sessions::command(messages, trials).await;
            }
            What::Latency {
                nodes,
                rate,
                messages,
                loss,
                trials,
            } => {
                if nodes < 2 || messages == 0 || rate <= 0.0 {
                    usage("need at least 2 nodes, 1 message, a positive rate");
                }
                let load = latency::Load {
                    nodes,
                    rate,
                    messages,
                    loss,
                };
                latency::command(load, trials).await;
            }
            What::Failover { nodes, trials } => {
                let nodes = if nodes.is_empty() { vec![5, 50] } else { nodes };
                if nodes.iter().any(|&n| n < 2) || trials == 0 {
                    usage("need at least 2 nodes and 1 trial");
                }
                failover::command(&nodes, trials).await;
            }
            What::Scale {
                nodes,
                idle_seconds,
                join_gap_ms,
            } => {
                if nodes < 2 {
                    usage("need at least 2 nodes");
                }
                scale::command(
                    nodes,
                    Duration::from_secs_f64(idle_seconds),
                    Duration::from_millis(join_gap_ms),
                )
                .await;
            }
            What::Memory {
                messages,
                text_bytes,
                binary,
            } => {
                let feed = memory::Feed {
                    binary: binary.unwrap_or_else(memory::default_binary),
                    messages,
                    text_bytes,
                    window: 64,
                };
                memory::command(feed).await;
            }
            What::Program {
                messages,
                trials,
                binary,
            } => {
                if messages == 0 || trials == 0 {
                    usage("need at least 1 message and 1 trial");
                }
                let binary = binary.unwrap_or_else(memory::default_binary);
                program::command(&binary, messages, trials);
            }
            What::Catchup {
                away,
                behind,
                limit_seconds,
                trials,
                binary,
            } => {
                if behind == 0 || trials == 0 || limit_seconds.is_nan() || limit_seconds <= 0.0 {
                    usage("need at least 1 message behind, 1 trial and a positive limit");
                }
                let binary = binary.unwrap_or_else(memory::default_binary);
                let limit = Duration::from_secs_f64(limit_seconds.min(3600.0));
                catchup::command(&binary, away, behind, limit, trials);
            }
            What::All {
                trials,
                failover_trials,
                scale_nodes,
                idle_seconds,
                memory_messages,
                program_messages,
                catchup_behind,
                binary,
            } => {
                let sizes = report::Sizes {
                    trials: trials.max(1),
                    failover_trials: failover_trials.max(1),
                    scale_nodes: scale_nodes.max(2),
                    idle: Duration::from_secs_f64(idle_seconds),
                    memory_messages,
                    program_messages: program_messages.max(1),
                    catchup_behind: catchup_behind.max(1),
                    binary: binary.unwrap_or_else(memory::default_binary),
                };
                report::all(sizes, &threads).await;
            }
        }
    });
}
