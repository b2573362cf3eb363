//! One `ringchat --json` process of a burst run and its scratch directory: [`Member`]
//! starts the binary with its data, identity and logs in the scratch directory, reads the
//! JSON events its stdout file gains, waits for the ones a step needs, types lines into its
//! stdin, and counts the burst messages it showed; [`Scratch`] is kept when a test fails.

use crate::STEP;
use serde_json::Value;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_ringchat");

/// A scratch directory, removed when the test passes and kept when it fails.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ringchat-burst-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("stdout, stderr and logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One `ringchat --json` process whose stdout goes to a file; killed on drop.
pub struct Member {
    pub name: String,
    child: Child,
    pub stdin: Option<ChildStdin>,
    out: Tail,
    /// Every JSON event read from its stdout so far.
    pub events: Vec<Value>,
    /// Where the next [`Member::wait_event`] starts looking: past the last one it found.
    cursor: usize,
    pub addr: SocketAddr,
    /// The burst messages an earlier process of this member showed, before it was killed.
    pub earlier: Vec<usize>,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a file as it grows, one complete line at a time.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    /// The complete lines appended since the last call.
    fn new_lines(&mut self) -> Vec<String> {
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        let mut chunk = String::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_string(&mut chunk).is_err() {
            return Vec::new();
        }
        self.offset += chunk.len() as u64;
        self.partial.push_str(&chunk);
        let Some(end) = self.partial.rfind('\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.lines().map(str::to_string).collect()
    }
}

impl Member {
    /// Starts `name` (joining through `join` if given) with `flags`, its data, identity
    /// and logs in the scratch directory, and waits for its `listening` line. Its port is
    /// fixed outside the ephemeral range: a restart needs it back.
    pub fn start(scratch: &Path, name: &str, join: Option<SocketAddr>, flags: &[&str]) -> Member {
        let port = crate::ports::fixed_port();
        Member::start_at(scratch, name, port, name, join, flags)
    }

    /// [`Member::start`] on `port`, its stdout and stderr in files named `file`.
    fn start_at(
        scratch: &Path,
        name: &str,
        port: u16,
        file: &str,
        join: Option<SocketAddr>,
        flags: &[&str],
    ) -> Member {
        let out_path = scratch.join(format!("{file}.jsonl"));
        let stdout = File::create(&out_path).expect("create the stdout file");
        let stderr = File::create(scratch.join(format!("{file}.stderr"))).expect("stderr file");
        let mut cmd = Command::new(BIN);
        let port = port.to_string();
        // Keyed, as by default: the members share the local room key in scratch.
        cmd.args(["--name", name, "--port", &port, "--json", "--local-key"])
            .args(flags)
            .arg("--log-dir")
            .arg(scratch)
            .env("XDG_DATA_HOME", scratch)
            .env(
                "RINGCHAT_IDENTITY",
                scratch.join(format!("{name}.identity")),
            )
            .env_remove("RINGCHAT_ROOM_KEY_FILE")
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr);
        if let Some(j) = join {
            cmd.arg("--join").arg(j.to_string());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdin = child.stdin.take();
        let mut m = Member {
            name: name.to_string(),
            child,
            stdin,
            out: Tail {
                path: out_path,
                offset: 0,
                partial: String::new(),
            },
            events: Vec::new(),
            cursor: 0,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            earlier: Vec::new(),
        };
        let listening = m.wait_event(STEP, "its `listening` line", |v| v["event"] == "listening");
        m.addr = listening["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| m.fail(&format!("bad `listening` line {listening}")));
        m
    }

    /// Reads what its stdout file has gained; `false` if the process has exited.
    pub fn pump(&mut self) -> bool {
        for line in self.out.new_lines() {
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => self.events.push(v),
                Err(e) => self.fail(&format!("stdout line is not JSON ({e}): {line:?}")),
            }
        }
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the next event satisfying `pred` after the one the last call found, at
    /// most `limit`.
    #[track_caller]
    pub fn wait_event(
        &mut self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let alive = self.pump();
            if let Some(k) = self.events[self.cursor..].iter().position(&pred) {
                self.cursor += k + 1;
                return self.events[self.cursor - 1].clone();
            }
            if !alive {
                self.pump();
                self.fail(&format!("exited before {what}"));
            }
            if Instant::now() > deadline {
                self.fail(&format!("no {what} within {limit:?}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types one line.
    pub fn type_line(&mut self, line: &str) {
        let Some(stdin) = self.stdin.as_mut() else {
            self.fail("stdin is closed");
        };
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            self.fail(&format!("cannot type {line:?}: {e}"));
        }
    }

    /// The burst texts shown as room messages so far, in order: by an earlier process of
    /// this member, then as new messages, or, by a process started again, also as history
    /// (what it missed while it was down comes as history). A process started again may
    /// first show, as history, the last messages its earlier process printed while the
    /// mark of what was printed was on its way to disk: those are left out here, and
    /// counted in [`Member::reshown`].
    pub fn burst_shown(&self) -> Vec<usize> {
        self.burst_shown_and_reshown().0
    }

    /// How many messages a process started again showed again (see [`Member::burst_shown`]).
    pub fn reshown(&self) -> usize {
        self.burst_shown_and_reshown().1
    }

    /// The texts of the room messages shown so far as new (not as history), in order.
    pub fn live_texts(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter(|v| v["event"] == "room" && v["history"] != true)
            .filter_map(|v| v["text"].as_str())
            .collect()
    }

    fn burst_shown_and_reshown(&self) -> (Vec<usize>, usize) {
        let again = !self.earlier.is_empty();
        let last_earlier = self.earlier.last().copied().unwrap_or(0);
        let mut shown = self.earlier.clone();
        let mut reshown = 0;
        let mut catching_up = again;
        for v in self.events.iter().filter(|v| v["event"] == "room") {
            let history = v["history"] == true;
            let Some(k) = v["text"]
                .as_str()
                .and_then(|t| t.strip_prefix("b")?.parse::<usize>().ok())
            else {
                continue;
            };
            if catching_up && history && k <= last_earlier {
                reshown += 1;
                continue;
            }
            catching_up = false;
            if again || !history {
                shown.push(k);
            }
        }
        (shown, reshown)
    }

    /// Sends the process `signal`.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        if unsafe { libc::kill(pid, signal) } != 0 {
            self.fail(&format!("cannot send signal {signal}"));
        }
    }

    /// Kills the process and starts it again on its own port and data, joining through
    /// `join`; what the killed one showed is kept in [`Member::earlier`].
    pub fn restart(&mut self, scratch: &Path, join: SocketAddr, flags: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.pump();
        let earlier = self.burst_shown();
        let file = format!("{}-again", self.name);
        let mut again = Member::start_at(
            scratch,
            &self.name,
            self.addr.port(),
            &file,
            Some(join),
            flags,
        );
        if earlier.is_empty() {
            self.fail("killed before it showed any of the burst");
        }
        again.earlier = earlier;
        *self = again;
    }

    /// Its `status` counters.
    pub fn counters(&mut self) -> Value {
        self.type_line("status");
        let s = self.wait_event(STEP, "the `status` answer", |v| v["event"] == "status");
        s["counters"].clone()
    }

    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        let last: Vec<String> = self
            .events
            .iter()
            .rev()
            .filter(|v| v["event"] != "room")
            .take(10)
            .map(Value::to_string)
            .collect();
        panic!(
            "{}: {why}\n  {} events read; the last ones other than room messages (newest \
             first): {last:#?}",
            self.name,
            self.events.len()
        );
    }
}
