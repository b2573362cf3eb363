//! The full-screen client under a real pseudo-terminal, read through a terminal emulator
//! (the `vt100` crate): a test sees the screen a person would see, cell by cell, and
//! waits for what it expects there with a generous deadline, never a sleep.

use crate::common::{BIN, Scratch};
use expectrl::process::unix::{Signal, WaitStatus};
use expectrl::session::OsSession;
use std::io::{ErrorKind, Read, Write};
use std::process::Command;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long anything expected on the screen may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// Columns and rows the pty starts with (what ptyprocess gives it).
const START: (u16, u16) = (80, 24);

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN)
}

/// One `ringchat` under a pty, its screen emulated. Killed on drop.
pub struct VtProc {
    /// Who this is, for failure messages.
    pub label: String,
    session: OsSession,
    output: Receiver<Result<Vec<u8>, String>>,
    parser: vt100::Parser,
    closed: Option<String>,
    raw: Vec<u8>,
}

impl VtProc {
    /// Starts the binary with `args` and `--local-key` (the room key every node of the
    /// test shares, see `Proc::spawn`) under a pty, in `scratch` (working directory, home
    /// and data home), with `env` set.
    pub fn spawn(label: &str, scratch: &Scratch, args: &[&str], env: &[(&str, &str)]) -> VtProc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--local-key")
            .current_dir(scratch.path())
            .env("HOME", scratch.path())
            .env("XDG_DATA_HOME", scratch.path())
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .env_remove("RINGCHAT_IDENTITY")
            .env_remove("RINGCHAT_DATA_DIR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let session = OsSession::spawn(cmd).unwrap_or_else(|e| panic!("{label}: no pty: {e}"));
        let mut pty = session
            .get_process()
            .get_raw_handle()
            .unwrap_or_else(|e| panic!("{label}: no pty handle: {e}"));
        let (tx, output) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match pty.read(&mut buf) {
                    Ok(n @ 1..) => {
                        if tx.send(Ok(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1));
                    }
                    end => {
                        let _ = tx.send(Err(format!("{end:?}")));
                        return;
                    }
                }
            }
        });
        VtProc {
            label: label.to_string(),
            session,
            output,
            parser: vt100::Parser::new(nonzero(START.1), nonzero(START.0), 0),
            closed: None,
            raw: Vec::new(),
        }
    }

    /// The emulated screen.
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// The screen's rows as text, trailing blanks trimmed.
    pub fn rows(&self) -> Vec<String> {
        let (_, cols) = self.screen().size();
        self.screen()
            .rows(0, cols.get())
            .map(|r| r.trim_end().to_string())
            .collect()
    }

    /// Row `i` counted from the bottom (0 is the last row: the input line).
    pub fn row_from_bottom(&self, i: usize) -> String {
        let rows = self.rows();
        rows.get(rows.len().wrapping_sub(1 + i))
            .cloned()
            .unwrap_or_default()
    }

    /// Whether some row satisfies `pred`.
    pub fn has_row(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.rows().iter().any(|r| pred(r))
    }

    /// Types raw bytes (keys).
    #[track_caller]
    pub fn keys(&mut self, bytes: &str) {
        if let Err(e) = self
            .session
            .write_all(bytes.as_bytes())
            .and_then(|()| self.session.flush())
        {
            self.fail(&format!("cannot type {bytes:?}: {e}"));
        }
    }

    /// Types `line` and Enter.
    #[track_caller]
    pub fn type_line(&mut self, line: &str) {
        self.keys(&format!("{line}\r"));
    }

    /// Waits until `done` holds for this process; fails after [`WAIT`] saying `what`.
    #[track_caller]
    pub fn wait(&mut self, what: &str, done: impl Fn(&VtProc) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            if let Some(why) = &self.closed {
                self.fail(&format!("the pty closed ({why}) before {what}"));
            }
            self.read_until(deadline, what);
        }
    }

    /// Waits until a row satisfies `pred`.
    #[track_caller]
    pub fn wait_row(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        self.wait(what, |p| p.has_row(&pred));
    }

    /// Resizes the terminal (the program gets SIGWINCH) and the emulated screen.
    #[track_caller]
    pub fn resize(&mut self, columns: u16, rows: u16) {
        if let Err(e) = self
            .session
            .get_process_mut()
            .set_window_size(columns, rows)
        {
            self.fail(&format!("cannot resize the pty: {e}"));
        }
        self.parser.set_size(nonzero(rows), nonzero(columns));
    }

    /// Waits for the program to exit (its pty closes); returns the exit code.
    #[track_caller]
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        while self.closed.is_none() {
            self.read_until(deadline, "exit");
        }
        loop {
            match self.session.get_process().status() {
                Ok(WaitStatus::Exited(_, code)) => return code,
                Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                other => self.fail(&format!("did not exit normally: {other:?}")),
            }
        }
    }

    #[track_caller]
    fn read_until(&mut self, deadline: Instant, what: &str) {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.output.recv_timeout(left) {
            Ok(Ok(bytes)) => {
                self.raw.extend_from_slice(&bytes);
                self.parser.process(&bytes);
            }
            Ok(Err(why)) => self.closed = Some(why),
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("no {what} on the screen within {WAIT:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => self.closed = Some("reader gone".into()),
        }
    }

    /// Panics with `why` and the screen; the bytes written go to a file beside.
    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        let file = std::env::temp_dir().join(format!(
            "ringchat-vt-{}-{}.bytes",
            std::process::id(),
            self.label
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ));
        let saved = match std::fs::write(&file, &self.raw) {
            Ok(()) => format!("the bytes written are in {}", file.display()),
            Err(e) => format!("the bytes written could not be saved: {e}"),
        };
        let mut screen = String::new();
        for r in self.rows() {
            screen.push_str("\n    | ");
            screen.push_str(&r);
        }
        panic!("{}: {why} ({saved})\n  screen:{screen}", self.label);
    }
}

impl Drop for VtProc {
    fn drop(&mut self) {
        if self.closed.is_none() {
            let process = self.session.get_process_mut();
            let _ = process.kill(Signal::SIGKILL);
            let _ = process.wait();
        }
    }
}
