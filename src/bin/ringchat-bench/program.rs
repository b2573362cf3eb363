//! The program path and its peer: the same fan-out (one sender, two receivers, a burst of
//! short messages, every one shown at both) done by three real `ringchat` processes and by
//! Redis pub/sub, in the same run.
//!
//! - **ringchat**: alice creates the room and leads, bob joins through alice, carol through
//!   bob, all `--json` on 127.0.0.1 ([`procs::trio`]). N lines `send_all <tag>k` are
//!   written into bob's stdin as fast as the pipe takes them (stdin stays open: its end
//!   would make bob leave). Alice's and carol's stdout go to files that the bench reads as
//!   they grow; the figure is N over the time from the first byte written to the moment
//!   both files hold N room lines of the burst. Then every member's `status`: the guard's
//!   refusals (`refused`) must stay 0 for members.
//! - **Redis pub/sub**: a `redis-server` of its own on a free port (no persistence), two
//!   `redis-cli subscribe` readers writing to files, one `redis-cli --pipe` publishing N
//!   `PUBLISH` commands (the RESP protocol, written into its stdin); the figure is N over
//!   the time from the first byte written to the moment both files hold N payload lines.
//!   Skipped, with a line saying so, when `redis-server` or `redis-cli` is not installed.

use crate::host;
use crate::procs::{self, Output, POLL, Scratch};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A run with no progress for this long is abandoned.
const STALL: Duration = Duration::from_secs(20);

/// Flags of the ringchat processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Default flags: every node keeps its state in its database.
    Database,
    /// `--ephemeral`: nothing on disk.
    Ephemeral,
}

impl Mode {
    /// The command-line flags.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Mode::Database => &[],
            Mode::Ephemeral => &["--ephemeral"],
        }
    }

    /// For the report.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Database => "default flags (database)",
            Mode::Ephemeral => "--ephemeral",
        }
    }
}

/// One fan-out run's figures.
pub struct Fanout {
    /// Messages in the burst.
    pub messages: usize,
    /// First byte written to the last receiver showing the last message.
    pub elapsed: Duration,
    /// Each ringchat member's `refused` counter afterwards (empty for Redis).
    pub refused: Vec<(String, u64)>,
    /// The first log lines of each member that refused anything, saying why (the guard
    /// logs each refusal, at most once a second per source).
    pub why_refused: Vec<String>,
    /// The sender's largest resident memory seen while the burst went through (bytes;
    /// ringchat only, sampled every [`POLL`]).
    pub sender_peak: Option<u64>,
    /// Each ringchat member's CPU time (every thread) from the first byte written to the
    /// end of the run (empty for Redis): whether the room was short of CPU or waiting.
    pub cpu: Vec<(String, Duration)>,
    /// Each ringchat member's datagrams sent (its `status` counter, the room's forming
    /// included) per message of the burst (empty for Redis).
    pub sent: Vec<(String, f64)>,
}

impl Fanout {
    /// Messages shown at both receivers per second.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line for the report.
    pub fn describe(&self, label: &str) -> String {
        let refused: Vec<String> = self
            .refused
            .iter()
            .map(|(n, r)| format!("{n} {r}"))
            .collect();
        // The three processes' CPU together, per message: steadier between rounds than
        // the rate on a machine whose speed moves (see docs/BENCHMARKS.md).
        let all_cpu = self.cpu.iter().map(|(_, t)| t.as_secs_f64()).sum::<f64>();
        let per_message = if self.cpu.is_empty() {
            String::new()
        } else {
            format!(
                " ({:.1} µs a message in all)",
                all_cpu * 1e6 / self.messages.max(1) as f64
            )
        };
        format!(
            "  {label}: {} messages at both receivers in {:.0} ms: {:.0} messages/s{}{}{}{}{}{}",
            self.messages,
            self.elapsed.as_secs_f64() * 1e3,
            self.per_second(),
            if refused.is_empty() {
                String::new()
            } else {
                format!(" (refused: {})", refused.join(", "))
            },
            if self.why_refused.is_empty() {
                String::new()
            } else {
                format!(" [why: {}]", self.why_refused.join(" | "))
            },
            self.sender_peak.map_or(String::new(), |b| format!(
                "; sender's peak VmRSS {}",
                host::mib(b as f64)
            )),
            per_member(
                "; CPU ",
                self.cpu
                    .iter()
                    .map(|(n, t)| format!("{n} {:.0} ms", t.as_secs_f64() * 1e3))
            ),
            per_message,
            per_member(
                "; datagrams sent a message: ",
                self.sent.iter().map(|(n, k)| format!("{n} {k:.2}"))
            ),
        )
    }
}

/// `label` and the figures of each member, comma-separated; nothing if there are none
/// (Redis).
fn per_member(label: &str, each: impl Iterator<Item = String>) -> String {
    let each: Vec<String> = each.collect();
    if each.is_empty() {
        String::new()
    } else {
        format!("{label}{}", each.join(", "))
    }
}

/// Reads the outputs with `step` every [`POLL`] until every count it returns reaches
/// `target`; the time then. Fails after [`STALL`] without a count moving, or once `step`
/// fails.
pub fn wait_counts(
    what: &str,
    target: usize,
    mut step: impl FnMut() -> Result<Vec<usize>, String>,
) -> Result<Instant, String> {
    let mut last = Vec::new();
    let mut moved = Instant::now();
    loop {
        let counts = step()?;
        if counts.iter().all(|&c| c >= target) {
            return Ok(Instant::now());
        }
        if counts != last {
            last = counts;
            moved = Instant::now();
        } else if moved.elapsed() > STALL {
            return Err(format!(
                "{what}: no progress for {STALL:?} at {last:?} of {target}"
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// One ringchat trial: a fresh room of three in `mode`, `n` lines piped into bob.
pub fn ringchat(binary: &Path, mode: Mode, n: usize, trial: usize) -> Result<Fanout, String> {
    let scratch = Scratch::new("program")?;
    let [mut alice, mut bob, mut carol] = procs::trio(binary, &scratch.0, mode.flags())?;
    let tag = format!("t{trial}x");
    alice.count_tag(&tag, None);
    carol.count_tag(&tag, None);
    let stdin = bob.out.stdin.take().ok_or("bob's stdin")?;
    let bytes = procs::send_lines(&tag, n);
    let pid = bob.out.pid().to_string();
    let mut peak = host::resident_bytes(&pid);
    let pids: Vec<String> = [&alice, &bob, &carol]
        .iter()
        .map(|m| m.out.pid().to_string())
        .collect();
    let cpu_before: Vec<Option<Duration>> = pids.iter().map(|p| host::cpu_time_of(p)).collect();
    let started = Instant::now();
    let writer = procs::feed(stdin, bytes);
    let end = wait_counts("the burst at alice and carol", n, || {
        alice.pump()?;
        carol.pump()?;
        peak = peak.max(host::resident_bytes(&pid));
        Ok(vec![alice.count, carol.count])
    })?;
    let cpu = [&alice, &bob, &carol]
        .iter()
        .zip(pids.iter().zip(cpu_before))
        .filter_map(|(m, (p, before))| {
            Some((m.name.clone(), host::cpu_time_of(p)?.checked_sub(before?)?))
        })
        .collect();
    let (stdin, written) = writer.join().map_err(|_| "the writer thread failed")?;
    written.map_err(|e| format!("writing bob's stdin: {e}"))?;
    bob.out.stdin = Some(stdin);
    let mut refused = Vec::new();
    let mut why_refused = Vec::new();
    let mut sent = Vec::new();
    for m in [&mut alice, &mut bob, &mut carol] {
        let s = m.status()?;
        let r = s["counters"]["refused"].as_u64().unwrap_or(u64::MAX);
        refused.push((m.name.clone(), r));
        if r > 0 {
            why_refused.extend(refusals_logged(&scratch.0, m));
        }
        if let Some(k) = s["counters"]["sent"].as_u64() {
            sent.push((m.name.clone(), k as f64 / n.max(1) as f64));
        }
    }
    Ok(Fanout {
        messages: n,
        elapsed: end - started,
        refused,
        why_refused,
        sender_peak: peak,
        cpu,
        sent,
    })
}

/// The first three refusals `m` logged (its log file is `chat_<port>.log` in `dir`), each
/// as `name: line`.
fn refusals_logged(dir: &Path, m: &procs::Member) -> Vec<String> {
    let log = dir.join(format!("chat_{}.log", m.addr.port()));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("refused a datagram"))
        .take(3)
        .map(|l| format!("{}: {}", m.name, l.trim()))
        .collect()
}

/// Why Redis cannot be measured here, if it cannot.
pub fn redis_missing() -> Option<String> {
    for tool in ["redis-server", "redis-cli"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// A free TCP port on 127.0.0.1 (free when asked).
fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// `redis-cli -p port args...`'s output, trimmed.
fn redis_cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .map_err(|e| format!("redis-cli: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Polls `redis-cli args` until its output satisfies `ok`, at most [`procs::STEP`].
fn redis_wait(port: u16, args: &[&str], ok: impl Fn(&str) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + procs::STEP;
    loop {
        let out = redis_cli(port, args)?;
        if ok(&out) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("redis-cli {args:?} answered {out:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One RESP command.
fn resp(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One Redis trial: a server of its own, two subscribers, `n` messages published.
pub fn redis(n: usize, trial: usize) -> Result<Fanout, String> {
    let scratch = Scratch::new("redis")?;
    let dir = &scratch.0;
    let port = free_port()?;
    let mut server = Command::new("redis-server");
    server
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir);
    let _server = Output::spawn(server, &dir.join("server.out"), &dir.join("server.err"))?;
    redis_wait(port, &["ping"], |o| o == "PONG")?;
    let channel = "room";
    let mut readers = Vec::new();
    for k in 0..2 {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &port.to_string(), "subscribe", channel]);
        readers.push(Output::spawn(
            cmd,
            &dir.join(format!("sub{k}.out")),
            &dir.join(format!("sub{k}.err")),
        )?);
    }
    redis_wait(port, &["pubsub", "numsub", channel], |o| {
        o.lines().nth(1) == Some("2")
    })?;
    let tag = format!("t{trial}x");
    let mut bytes = Vec::with_capacity(n * 40);
    for k in 1..=n {
        let text = format!("{tag}{k}");
        resp(
            &mut bytes,
            &[b"PUBLISH", channel.as_bytes(), text.as_bytes()],
        );
    }
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-p", &port.to_string(), "--pipe"]);
    let mut publisher = Output::spawn(cmd, &dir.join("pub.out"), &dir.join("pub.err"))?;
    let stdin = publisher.stdin.take().ok_or("the publisher's stdin")?;
    let mut counts = vec![0usize; 2];
    let started = Instant::now();
    let writer = procs::feed(stdin, bytes);
    let end = wait_counts("the messages at both subscribers", n, || {
        for (k, r) in readers.iter_mut().enumerate() {
            let c = &mut counts[k];
            if !r.lines(|l| *c += usize::from(l.starts_with(tag.as_str()))) {
                return Err(format!("subscriber {k} exited"));
            }
        }
        Ok(counts.clone())
    })?;
    // The publisher reads to the end of its input and exits.
    let (stdin, written) = writer.join().map_err(|_| "the writer thread failed")?;
    drop(stdin);
    written.map_err(|e| format!("writing to redis-cli --pipe: {e}"))?;
    Ok(Fanout {
        messages: n,
        elapsed: end - started,
        refused: Vec::new(),
        why_refused: Vec::new(),
        sender_peak: None,
        cpu: Vec::new(),
        sent: Vec::new(),
    })
}

/// The median run by elapsed time.
pub fn median(mut runs: Vec<Fanout>) -> Option<Fanout> {
    runs.sort_by_key(|r| r.elapsed);
    let mid = runs.len() / 2;
    (!runs.is_empty()).then(|| runs.swap_remove(mid))
}

/// The medians of one comparison: ringchat with a database, ephemeral, and Redis (`None`
/// where every trial failed; Redis also when it is not installed, with why).
pub struct Comparison {
    /// ringchat with default flags.
    pub database: Option<Fanout>,
    /// ringchat `--ephemeral`.
    pub ephemeral: Option<Fanout>,
    /// Redis pub/sub, or why it was not measured.
    pub redis: Result<Option<Fanout>, String>,
}

/// `trials` rounds of ringchat with a database, ringchat ephemeral and Redis, in turn,
/// printing each run; the medians.
pub fn compare(binary: &Path, n: usize, trials: usize) -> Comparison {
    let missing = redis_missing();
    if let Some(why) = &missing {
        println!("  Redis pub/sub: skipped ({why})");
    }
    let mut runs: [Vec<Fanout>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for t in 1..=trials {
        for (k, mode) in [Mode::Database, Mode::Ephemeral].into_iter().enumerate() {
            let label = format!("trial {t} ringchat, {}", mode.describe());
            match ringchat(binary, mode, n, t) {
                Ok(r) => {
                    println!("{}", r.describe(&label));
                    runs[k].push(r);
                }
                Err(e) => println!("  {label}: failed: {e}"),
            }
        }
        if missing.is_none() {
            let label = format!("trial {t} Redis pub/sub");
            match redis(n, t) {
                Ok(r) => {
                    println!("{}", r.describe(&label));
                    runs[2].push(r);
                }
                Err(e) => println!("  {label}: failed: {e}"),
            }
        }
    }
    let [db, eph, red] = runs;
    Comparison {
        database: median(db),
        ephemeral: median(eph),
        redis: match missing {
            Some(why) => Err(why),
            None => Ok(median(red)),
        },
    }
}

/// The `program` subcommand: the comparison and its medians, side by side.
pub fn command(binary: &Path, n: usize, trials: usize) {
    println!(
        "program path: three `ringchat --json` processes ({}) on 127.0.0.1, {n} `send_all` \
         lines piped into bob (not the leader), alice's and carol's stdout read from files; \
         Redis pub/sub: redis-server, `redis-cli --pipe` publishing {n} messages, two \
         `redis-cli subscribe` readers; {trials} trial(s), in turn",
        binary.display()
    );
    let c = compare(binary, n, trials);
    let redis_rate = c
        .redis
        .as_ref()
        .ok()
        .and_then(|r| r.as_ref())
        .map(Fanout::per_second);
    for (label, r) in [
        ("median ringchat, default flags (database)", &c.database),
        ("median ringchat, --ephemeral            ", &c.ephemeral),
    ] {
        if let Some(r) = r {
            let ratio = redis_rate.map_or(String::new(), |x| {
                format!(" = {:.2} of Redis", r.per_second() / x)
            });
            println!("{}{ratio}", r.describe(label));
        }
    }
    match &c.redis {
        Ok(Some(r)) => println!("{}", r.describe("median Redis pub/sub                    ")),
        Ok(None) => println!("  Redis pub/sub: every trial failed"),
        Err(why) => println!("  Redis pub/sub: not measured ({why})"),
    }
}
