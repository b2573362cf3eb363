//! Real processes for the program-path figures: `ringchat --json` children whose stdout
//! goes to a file that the bench reads as it grows, and a scratch directory for their
//! data, identities, logs and output. Used by [`crate::program`] and [`crate::catchup`].
//!
//! A child's room lines are not kept: each is only counted when its text starts with the
//! current tag ([`Member::count`]), so that a run of 100 000 messages costs the bench a
//! substring search per line. Every other event is parsed and kept for
//! [`Member::wait_event`].

use serde_json::Value;
use std::fs::File;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Forming a room, one step at most.
pub const STEP: Duration = Duration::from_secs(15);

/// How often the output files are read while waiting.
pub const POLL: Duration = Duration::from_millis(2);

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory named after this process and `tag`.
    pub fn new(tag: &str) -> Result<Scratch, String> {
        let dir = std::env::temp_dir().join(format!(
            "ringchat-bench-{}-{tag}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process writing to a file: its stdin, and its stdout read as it grows. Killed
/// on drop.
pub struct Output {
    child: Child,
    /// Its stdin, while open.
    pub stdin: Option<ChildStdin>,
    file: File,
    partial: Vec<u8>,
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Output {
    /// Starts `cmd` with piped stdin, stdout to `out` and stderr to `err`.
    pub fn spawn(mut cmd: Command, out: &Path, err: &Path) -> Result<Output, String> {
        let stdout = File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
        let stderr = File::create(err).map_err(|e| format!("{}: {e}", err.display()))?;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let stdin = child.stdin.take();
        let file = File::open(out).map_err(|e| format!("{}: {e}", out.display()))?;
        Ok(Output {
            child,
            stdin,
            file,
            partial: Vec::new(),
        })
    }

    /// Hands every complete line written since the last call to `each`; `false` once the
    /// process has exited.
    pub fn lines(&mut self, mut each: impl FnMut(&str)) -> bool {
        let alive = matches!(self.child.try_wait(), Ok(None));
        let mut chunk = Vec::new();
        let _ = self.file.read_to_end(&mut chunk);
        self.partial.extend_from_slice(&chunk);
        if let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') {
            let rest = self.partial.split_off(end + 1);
            let done = std::mem::replace(&mut self.partial, rest);
            for line in String::from_utf8_lossy(&done).lines() {
                each(line);
            }
        }
        alive
    }

    /// Writes `bytes` to its stdin.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin is closed")?;
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to stdin: {e}"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// One `ringchat --json` process.
pub struct Member {
    /// Its name.
    pub name: String,
    /// The process and its output.
    pub out: Output,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its events other than room messages, in order.
    events: Vec<Value>,
    /// Where [`Member::wait_event`] looks from: past the last event it found.
    cursor: usize,
    /// Room lines whose text starts with this are counted.
    tag: String,
    /// Room lines counted since the tag was set.
    pub count: usize,
    /// A text whose room line is waited for, and when it was read.
    needle: Option<(String, Option<Instant>)>,
}

impl Member {
    /// Starts `ringchat --json --name name --port 0 [--join join] flags` from `binary`, its
    /// data, identity, logs and output in `scratch`, and waits for its `listening` line.
    pub fn start(
        binary: &Path,
        scratch: &Path,
        name: &str,
        join: Option<SocketAddr>,
        flags: &[&str],
    ) -> Result<Member, String> {
        let mut cmd = Command::new(binary);
        // Keyed, as a user's room is by default: the members share the local room key,
        // which lives in `scratch` with the rest.
        cmd.args(["--name", name, "--port", "0", "--json", "--local-key"])
            .args(flags)
            .arg("--log-dir")
            .arg(scratch)
            .env("XDG_DATA_HOME", scratch)
            .env(
                "RINGCHAT_IDENTITY",
                scratch.join(format!("{name}.identity")),
            )
            .env_remove("RINGCHAT_ROOM_KEY_FILE")
            .env_remove("RINGCHAT_LOG");
        if let Some(j) = join {
            cmd.arg("--join").arg(j.to_string());
        }
        let out = Output::spawn(
            cmd,
            &scratch.join(format!("{name}.jsonl")),
            &scratch.join(format!("{name}.stderr")),
        )?;
        let mut m = Member {
            name: name.to_string(),
            out,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            events: Vec::new(),
            cursor: 0,
            tag: String::new(),
            count: 0,
            needle: None,
        };
        let l = m.wait_event(STEP, "its `listening` line", |v| v["event"] == "listening")?;
        m.addr = l["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("{name}: bad `listening` line {l}"))?;
        Ok(m)
    }

    /// Counts room lines whose text starts with `tag` from now on (from 0); with `needle`,
    /// also notes when the room line with exactly that text is read.
    pub fn count_tag(&mut self, tag: &str, needle: Option<String>) {
        self.tag = format!("\"text\":\"{tag}");
        self.count = 0;
        self.needle = needle.map(|n| (format!("\"text\":\"{n}\""), None));
    }

    /// When the needle's room line was read, if it was.
    pub fn needle_at(&self) -> Option<Instant> {
        self.needle.as_ref().and_then(|(_, at)| *at)
    }

    /// Reads what the output file has gained; an error once the process has exited.
    pub fn pump(&mut self) -> Result<(), String> {
        let Member {
            out,
            events,
            tag,
            count,
            needle,
            ..
        } = self;
        let now = Instant::now();
        let alive = out.lines(|line| {
            if line.contains("\"event\":\"room\"") {
                if !tag.is_empty() && line.contains(tag.as_str()) {
                    *count += 1;
                }
                if let Some((n, at @ None)) = needle
                    && line.contains(n.as_str())
                {
                    *at = Some(now);
                }
            } else if let Ok(v) = serde_json::from_str::<Value>(line) {
                events.push(v);
            }
        });
        if alive {
            Ok(())
        } else {
            Err(format!("{} exited", self.name))
        }
    }

    /// Waits for the next event (other than a room line) satisfying `pred` after the one
    /// the last call found, at most `limit`.
    pub fn wait_event(
        &mut self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + limit;
        loop {
            let alive = self.pump();
            if let Some(k) = self.events[self.cursor..].iter().position(&pred) {
                self.cursor += k + 1;
                return Ok(self.events[self.cursor - 1].clone());
            }
            if let Err(e) = alive {
                return Err(format!("{e} before {what}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{}: no {what} within {limit:?}", self.name));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Types one line.
    pub fn type_line(&mut self, line: &str) -> Result<(), String> {
        self.out
            .write(format!("{line}\n").as_bytes())
            .map_err(|e| format!("{}: {e}", self.name))
    }

    /// Its `status`: the `refused` counter and the whole answer.
    pub fn status(&mut self) -> Result<Value, String> {
        self.type_line("status")?;
        self.wait_event(STEP, "the `status` answer", |v| v["event"] == "status")
    }
}

/// A room of three `ringchat --json` processes on 127.0.0.1 with `flags`: alice creates it
/// and leads, bob joins through alice, carol through bob; returned once alice and bob have
/// seen carol online.
pub fn trio(binary: &Path, scratch: &Path, flags: &[&str]) -> Result<[Member; 3], String> {
    let mut alice = Member::start(binary, scratch, "alice", None, flags)?;
    alice.wait_event(STEP, "the room created", |v| {
        v["event"] == "joined" && v["is_leader"] == true
    })?;
    let mut bob = Member::start(binary, scratch, "bob", Some(alice.addr), flags)?;
    bob.wait_event(STEP, "joining", |v| v["event"] == "joined")?;
    let mut carol = Member::start(binary, scratch, "carol", Some(bob.addr), flags)?;
    carol.wait_event(STEP, "joining", |v| v["event"] == "joined")?;
    for m in [&mut alice, &mut bob] {
        m.wait_event(STEP, "carol online", |v| {
            v["event"] == "member_online" && v["name"] == "carol"
        })?;
    }
    Ok([alice, bob, carol])
}

/// `n` lines `send_all <tag>1` ... `send_all <tag>n`.
pub fn send_lines(tag: &str, n: usize) -> Vec<u8> {
    let mut text = String::with_capacity(n * (tag.len() + 18));
    for k in 1..=n {
        text.push_str("send_all ");
        text.push_str(tag);
        text.push_str(&k.to_string());
        text.push('\n');
    }
    text.into_bytes()
}

/// Writes `bytes` into `stdin` from a thread (the pipe may fill while the child works
/// through it); the thread gives the pipe back, still open, with the outcome.
pub fn feed(
    mut stdin: ChildStdin,
    bytes: Vec<u8>,
) -> std::thread::JoinHandle<(ChildStdin, std::io::Result<()>)> {
    std::thread::spawn(move || {
        let r = stdin.write_all(&bytes).and_then(|()| stdin.flush());
        (stdin, r)
    })
}
