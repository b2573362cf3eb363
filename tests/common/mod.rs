//! The process harness shared by the integration tests that drive the real `ringchat`
//! binary: a scratch directory per test, one [`Proc`] per running node (stdin in, stdout
//! lines and stderr out), and parsers for the lines the program prints.
//!
//! Nothing sleeps and hopes: each step waits for the line that proves the previous one
//! happened, with a generous bound ([`WAIT`] unless told otherwise) so that a slow machine
//! does not fail a correct program.

#![allow(dead_code)]

pub mod lines;
pub mod node_task;
pub mod ports;
pub mod pty;
pub mod screen;

#[allow(unused_imports)] // each test binary uses some of them
pub use lines::{MemberLine, RoomLine, list, status};
#[allow(unused_imports)]
pub use ports::fixed_port;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ringchat");

/// How long any one expected line (or exit) may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A fresh scratch directory for one test's log files, removed when the test passes and
/// kept (with its path printed) when it fails.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ringchat-cli-{}-{n}", std::process::id()));
        // A leftover from an earlier run with the same pid would mix its logs into ours.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One running `ringchat` process with piped stdin, stdout and stderr. Killed on drop.
pub struct Proc {
    /// Who this is, for failure messages.
    pub label: String,
    /// The UDP port it listens on (0 until the `listening on` line was read).
    pub port: u16,
    /// The address it listens on (`None` until the `listening on` line was read).
    pub addr: Option<SocketAddr>,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Stdout lines as a background thread reads them, with the time each was read.
    lines: Receiver<(Instant, String)>,
    /// Set to make that thread stop reading (see [`Proc::stop_reading`]).
    stalled: Arc<AtomicBool>,
    /// Every stdout line received so far, in order (matched or not).
    pub seen: Vec<String>,
    /// When each line of [`Proc::seen`] was read (same index).
    pub seen_at: Vec<Instant>,
    /// Stderr so far, as a background thread reads it.
    stderr: Arc<Mutex<String>>,
    /// That thread; joined once the process has exited, so that stderr is complete.
    stderr_reader: Option<JoinHandle<()>>,
    /// The exit status once known.
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts the binary with `args` plus `--log-dir` in `scratch` and `--local-key`.
    /// Identity and history files go to `scratch` (never the user's own), one identity
    /// per label unless the args name one. The room is keyed: every node of a test shares
    /// the local room key, which lives in `scratch` too (made by the first node), unless
    /// the args say otherwise (`--insecure`, `--room-key-file`, an invitation).
    pub fn spawn(label: &str, scratch: &Scratch, args: &[&str]) -> Proc {
        let mut with_key = args.to_vec();
        with_key.push("--local-key");
        Proc::spawn_as_user(label, scratch, &with_key)
    }

    /// [`Proc::spawn`] without `--local-key`: the flags as a user gives them, so that a
    /// node creating a room makes a key of its own and a joiner needs an invitation. No
    /// room key from the environment either.
    pub fn spawn_as_user(label: &str, scratch: &Scratch, args: &[&str]) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--log-dir")
            .arg(scratch.path())
            .env("XDG_DATA_HOME", scratch.path())
            .env(
                "RINGCHAT_IDENTITY",
                scratch.path().join(format!("{label}.identity")),
            )
            .env_remove("RINGCHAT_ROOM_KEY_FILE");
        Proc::spawn_command(label, cmd)
    }

    /// Starts `cmd` (the binary, possibly behind a wrapper such as `ip netns exec`) with
    /// debug logging and piped stdin, stdout and stderr.
    pub fn spawn_command(label: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .env("RINGCHAT_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        let stalled = Arc::new(AtomicBool::new(false));
        let stall = Arc::clone(&stalled);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
                // Stalled for good: what the process prints from now on fills the pipe,
                // and then its writes block, as on a terminal nobody reads.
                while stall.load(Ordering::Relaxed) {
                    thread::park();
                }
            }
        });
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let stderr_reader = thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        Proc {
            label: label.to_string(),
            port: 0,
            addr: None,
            stdin: child.stdin.take(),
            child,
            lines,
            stalled,
            seen: Vec::new(),
            seen_at: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
            status: None,
        }
    }

    /// Starts `--name name --port 0 [--join 127.0.0.1:join]` and reads the port from the
    /// first line.
    #[track_caller]
    pub fn start(scratch: &Scratch, name: &str, join: Option<u16>) -> Proc {
        Proc::start_with(scratch, name, join, &[])
    }

    /// [`Proc::start`] with `extra` flags appended.
    #[track_caller]
    pub fn start_with(scratch: &Scratch, name: &str, join: Option<u16>, extra: &[&str]) -> Proc {
        let contact = join.map(|port| format!("127.0.0.1:{port}"));
        let mut args = vec!["--name", name, "--port", "0"];
        if let Some(c) = &contact {
            args.extend(["--join", c.as_str()]);
        }
        args.extend(extra);
        let mut p = Proc::spawn(name, scratch, &args);
        p.read_listening(IpAddr::V4(Ipv4Addr::LOCALHOST));
        p
    }

    /// Reads the first line, `listening on <ip>:<port>`, and records the address.
    #[track_caller]
    pub fn read_listening(&mut self, ip: IpAddr) -> SocketAddr {
        let first = self.next_line("the `listening on` line");
        let addr: SocketAddr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .filter(|a: &SocketAddr| a.ip() == ip)
            .unwrap_or_else(|| {
                self.fail(&format!(
                    "first line {first:?} is not `listening on {ip}:<port>`"
                ))
            });
        assert_ne!(addr.port(), 0, "{}: listening on port 0", self.label);
        self.port = addr.port();
        self.addr = Some(addr);
        addr
    }

    /// A node that creates a new room and leads it.
    #[track_caller]
    pub fn create(scratch: &Scratch, name: &str) -> Proc {
        let mut p = Proc::start(scratch, name, None);
        p.expect_line(&format!("created a new room; you ({name}) are the leader"));
        p
    }

    /// A node that joins through `contact` and sees `members` members led by `leader`.
    #[track_caller]
    pub fn join(
        scratch: &Scratch,
        name: &str,
        contact: &Proc,
        members: usize,
        leader: &str,
    ) -> Proc {
        let mut p = Proc::start(scratch, name, Some(contact.port));
        p.expect_line(&format!(
            "joined the room: {members} members, leader is {leader}"
        ));
        p
    }

    /// The process id (of the binary itself when a wrapper execs it, as `ip netns exec`
    /// does).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types one line.
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        let Some(stdin) = self.stdin.as_mut() else {
            self.fail(&format!("cannot type {line:?}: stdin is closed"));
        };
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            self.fail(&format!("cannot type {line:?}: {e}"));
        }
    }

    /// Closes stdin (end of input, like Ctrl-D).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the next stdout line matching `pred`, skipping (but recording) others.
    /// Panics with everything seen so far if none comes within [`WAIT`] or stdout closes.
    #[track_caller]
    pub fn expect(&mut self, pred: impl Fn(&str) -> bool, what: &str) -> String {
        self.expect_within(WAIT, pred, what)
    }

    /// [`Proc::expect`] with a bound of `limit` instead of [`WAIT`].
    #[track_caller]
    pub fn expect_within(
        &mut self,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
        what: &str,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    self.record(at, line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no {what} within {limit:?}"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Most likely the process ended: say how, with all of its stderr.
                    let how = match self.reap(Duration::from_secs(2)) {
                        Some(status) => format!("exited with {status}"),
                        None => "still running".to_string(),
                    };
                    self.fail(&format!("stdout closed ({how}) before {what}"));
                }
            }
        }
    }

    fn record(&mut self, at: Instant, line: String) {
        self.seen.push(line);
        self.seen_at.push(at);
    }

    /// Stops reading the process's stdout (after at most one more line): its output then
    /// fills the pipe, and its writes block, as on a stalled terminal.
    pub fn stop_reading(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }

    /// Moves every stdout line read so far into [`Proc::seen`] without waiting; returns
    /// `false` once stdout has closed and everything was taken.
    pub fn pump(&mut self) -> bool {
        loop {
            match self.lines.try_recv() {
                Ok((at, line)) => self.record(at, line),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Waits for exactly this line.
    #[track_caller]
    pub fn expect_line(&mut self, exact: &str) -> String {
        self.expect(|l| l == exact, &format!("line {exact:?}"))
    }

    /// The very next stdout line, whatever it is.
    #[track_caller]
    pub fn next_line(&mut self, what: &str) -> String {
        self.expect(|_| true, what)
    }

    /// The next `n` room-message lines, skipping other lines.
    #[track_caller]
    pub fn room_lines(&mut self, n: usize) -> Vec<RoomLine> {
        let mut room = Vec::with_capacity(n);
        for i in 1..=n {
            let what = format!("room message {i} of {n}");
            let line = self.expect(|l| RoomLine::parse(l).is_some(), &what);
            room.extend(RoomLine::parse(&line));
        }
        room
    }

    /// Every room-message line seen so far, in the order shown.
    pub fn room_seen(&self) -> Vec<RoomLine> {
        self.seen
            .iter()
            .filter_map(|l| RoomLine::parse(l))
            .collect()
    }

    /// Waits for the process to exit, then collects the rest of stdout and all of stderr.
    #[track_caller]
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match self.reap(limit) {
            Some(status) => status,
            None => self.fail(&format!("still running after {limit:?}")),
        }
    }

    /// Kills the process with SIGKILL (no chance to leave the room), waits for it, and
    /// collects the rest of its stdout and stderr.
    #[track_caller]
    pub fn kill(&mut self) -> ExitStatus {
        if self.status.is_none() {
            if let Err(e) = self.child.kill() {
                self.fail(&format!("cannot kill the process: {e}"));
            }
            match self.child.wait() {
                Ok(status) => self.status = Some(status),
                Err(e) => self.fail(&format!("cannot wait for the killed process: {e}")),
            }
            self.collect_rest();
        }
        self.status.expect("set above")
    }

    /// Waits up to `limit` for the process to exit; once it has, reads the rest of its
    /// stdout into [`Proc::seen`] and the rest of its stderr.
    #[track_caller]
    pub fn reap(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            let deadline = Instant::now() + limit;
            loop {
                match self.child.try_wait() {
                    Ok(Some(status)) => {
                        self.status = Some(status);
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(20));
                    }
                    Ok(None) => return None,
                    Err(e) => self.fail(&format!("cannot wait for the process: {e}")),
                }
            }
            self.collect_rest();
        }
        self.status
    }

    /// Once the process has exited: the rest of stdout and all of stderr.
    fn collect_rest(&mut self) {
        // The pipes close with the process, so both readers finish promptly.
        while let Ok((at, line)) = self.lines.recv_timeout(WAIT) {
            self.record(at, line);
        }
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Panics with `why` and the transcript so far.
    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        let mut transcript = String::new();
        for l in &self.seen {
            transcript.push_str("\n    | ");
            transcript.push_str(l);
        }
        if self.seen.is_empty() {
            transcript.push_str("\n    (nothing)");
        }
        panic!(
            "{} (port {}): {why}\n  stdout so far:{transcript}\n  stderr: {:?}",
            self.label,
            self.port,
            self.stderr_text()
        );
    }

    /// The transcript so far, for a failure message that names several processes.
    pub fn transcript(&self) -> String {
        let mut t = format!("  {} (port {}):", self.label, self.port);
        for l in &self.seen {
            t.push_str("\n    | ");
            t.push_str(l);
        }
        if self.seen.is_empty() {
            t.push_str("\n    (nothing)");
        }
        t
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Pumps every process in `procs` until `done` holds for them, re-checking every few
/// milliseconds; panics with `what` and every transcript after `limit`. Returns how long
/// it took.
#[track_caller]
pub fn wait_until(
    procs: &mut [&mut Proc],
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&[&mut Proc]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        for p in procs.iter_mut() {
            p.pump();
        }
        if done(procs) {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            let transcripts: Vec<String> = procs.iter().map(|p| p.transcript()).collect();
            panic!("not within {limit:?}: {what}\n{}", transcripts.join("\n"));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// alice creates a room, bob joins through alice, carol joins through bob (not the
/// leader); returns once every node knows every other one is online.
#[track_caller]
pub fn trio(scratch: &Scratch) -> (Proc, Proc, Proc) {
    let mut alice = Proc::create(scratch, "alice");
    let mut bob = Proc::join(scratch, "bob", &alice, 2, "alice");
    alice.expect_line("bob is online");
    let carol = Proc::join(scratch, "carol", &bob, 3, "alice");
    alice.expect_line("carol is online");
    bob.expect_line("carol is online");
    (alice, bob, carol)
}

/// Runs `ringchat keygen --room <scratch>/<file>` and returns the new key file's path.
#[track_caller]
pub fn keygen(scratch: &Scratch, file: &str) -> PathBuf {
    let path = scratch.path().join(file);
    let out = Command::new(BIN)
        .arg("keygen")
        .arg("--room")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN} keygen: {e}"));
    assert!(
        out.status.success(),
        "keygen --room {} failed with {}: {}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Types `status` at `p` and returns its `counters:` line as name → value.
#[track_caller]
pub fn counters(p: &mut Proc) -> std::collections::BTreeMap<String, u64> {
    let lines = status(p);
    let Some(line) = lines.iter().find_map(|l| l.strip_prefix("counters:")) else {
        p.fail(&format!("no `counters:` line in `status`: {lines:#?}"));
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out = std::collections::BTreeMap::new();
    for pair in words.chunks(2) {
        let [name, value] = pair else {
            p.fail(&format!("`counters:` is not `name number` pairs: {line:?}"));
        };
        let Ok(v) = value.parse::<u64>() else {
            p.fail(&format!("`counters:` is not `name number` pairs: {line:?}"));
        };
        out.insert(name.to_string(), v);
    }
    out
}

/// One counter from [`counters`]; fails if `status` does not show it.
#[track_caller]
pub fn counter(p: &mut Proc, name: &str) -> u64 {
    let all = counters(p);
    match all.get(name) {
        Some(v) => *v,
        None => p.fail(&format!("no counter {name:?} in {all:?}")),
    }
}
