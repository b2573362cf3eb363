//! Memory of one node process: the real `ringchat` binary runs as a child (scratch
//! identity, data and log directories; `--history-limit` raised so every message stays
//! in its history; the rate limit raised so the sender is not throttled), creates the
//! room and leads it. Its resident memory (`VmRSS`) is read at idle, then a node in this
//! process joins and sends room messages (each keeping at most a window unconfirmed),
//! and the child's memory is read at checkpoints and at the end. The child prints every
//! message on its stdout (a pipe that the bench reads and discards), as it would for a
//! user.

use crate::host;
use crate::room::{self, Room, Setup};
use ringchat::proto::{Command, Event};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

/// What to feed the child.
#[derive(Clone, Debug)]
pub struct Feed {
    /// The `ringchat` binary.
    pub binary: PathBuf,
    /// Room messages to send.
    pub messages: usize,
    /// Bytes of text per message (padded).
    pub text_bytes: usize,
    /// Own messages the sender keeps unconfirmed at most.
    pub window: usize,
}

/// The child's resident memory at each point.
pub struct Memory {
    /// After joining, before any message (bytes).
    pub idle: u64,
    /// (messages sent so far, resident bytes) at checkpoints, the last at the end.
    pub after: Vec<(usize, u64)>,
    /// Time to send them all.
    pub elapsed: Duration,
}

/// Kills the child when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `ringchat` binary beside this one.
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .map(|p| p.with_file_name("ringchat"))
        .unwrap_or_else(|_| PathBuf::from("target/release/ringchat"))
}

/// Starts the child; returns it with its address once it prints `listening on`.
fn start_child(feed: &Feed, scratch: &std::path::Path) -> Result<(Killed, SocketAddr), String> {
    let history = feed.messages.max(10_000).to_string();
    let mut child = Process::new(&feed.binary)
        .args([
            "--name",
            "child",
            "--port",
            "0",
            "--history-limit",
            &history,
        ])
        // Open: the feeding nodes in this process have no key.
        .args(["--insecure", "--rate-limit", "1000000", "--log-dir"])
        .arg(scratch)
        .env("XDG_DATA_HOME", scratch)
        .env("RINGCHAT_IDENTITY", scratch.join("child.identity"))
        .env_remove("RINGCHAT_ROOM_KEY_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", feed.binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let child = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the child never said where it listens")?;
    let addr = addr
        .parse()
        .map_err(|e| format!("bad address {addr}: {e}"))?;
    Ok((child, addr))
}

/// Runs the measurement.
pub async fn run(feed: &Feed) -> Result<Memory, String> {
    let scratch = std::env::temp_dir().join(format!("ringchat-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let result = measure(feed, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Starts the child in `scratch`, joins it, feeds it and reads its memory.
async fn measure(feed: &Feed, scratch: &std::path::Path) -> Result<Memory, String> {
    let (child, addr) = start_child(feed, scratch)?;
    let pid = child.0.id().to_string();
    let mut room = Room::empty(&Setup::unlimited());
    room.add(Some(addr)).await?;
    room.wait_for(Duration::from_secs(10), "joining the child's room", |r| {
        r.joined(0)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    room.forget();
    let rss = || host::resident_bytes(&pid).ok_or("cannot read the child's VmRSS");
    let idle = rss()?;
    let checkpoints: Vec<usize> = [10_000, 50_000]
        .into_iter()
        .filter(|&c| c < feed.messages)
        .chain([feed.messages])
        .collect();
    let mut after = Vec::new();
    let started = Instant::now();
    let (mut sent, mut confirmed) = (0usize, 0usize);
    for &goal in &checkpoints {
        while confirmed < goal {
            while sent < goal && sent - confirmed < feed.window {
                sent += 1;
                let mut text = room::text_of(0, sent);
                while text.len() < feed.text_bytes {
                    text.push('.');
                }
                room.send(0, Command::SendAll { text });
            }
            let Some(s) = room.next(Duration::from_secs(15)).await else {
                return Err(format!("no progress for 15 s at {confirmed} confirmed"));
            };
            if let Event::Room { mine: true, .. } = s.event {
                confirmed += 1;
            }
        }
        // Let the child print and settle before reading.
        tokio::time::sleep(Duration::from_secs(1)).await;
        after.push((goal, rss()?));
    }
    let elapsed = started.elapsed();
    drop(child);
    Ok(Memory {
        idle,
        after,
        elapsed,
    })
}

/// The figures in one line.
pub fn describe(m: &Memory) -> String {
    let points: Vec<String> = m
        .after
        .iter()
        .map(|(k, b)| format!("after {k}: {}", host::mib(*b as f64)))
        .collect();
    format!(
        "  child VmRSS at idle {}; {} (sent in {:.1} s)",
        host::mib(m.idle as f64),
        points.join(", "),
        m.elapsed.as_secs_f64()
    )
}

/// The `memory` subcommand.
pub async fn command(feed: Feed) {
    println!(
        "memory: {} as a child leading a room of 2, --history-limit {} --rate-limit 1000000, \
         a node in this process sends {} room messages of {} bytes (window {})",
        feed.binary.display(),
        feed.messages.max(10_000),
        feed.messages,
        feed.text_bytes,
        feed.window
    );
    match run(&feed).await {
        Ok(m) => println!("{}", describe(&m)),
        Err(e) => println!("  failed: {e}"),
    }
}
