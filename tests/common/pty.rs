//! The real binary under a pseudo-terminal, as a person runs it: what it writes goes
//! through a terminal model (an [`Emulator`]: the line-mode [`Screen`], or a full
//! terminal emulator for the full-screen client), so a test sees what would be on the
//! screen, not only which bytes went by.

use super::screen::Screen;
use super::{BIN, Scratch, WAIT};
use expectrl::process::unix::{Signal, WaitStatus};
use expectrl::session::OsSession;
use std::io::{ErrorKind, Read, Write};
use std::process::Command;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Columns and rows of the pty (the size ptyprocess gives it).
pub const COLUMNS: u16 = 80;
/// Rows of the pty.
pub const ROWS: u16 = 24;

/// What turns the bytes a program writes into a screen.
pub trait Emulator {
    /// Takes bytes the program wrote.
    fn feed(&mut self, bytes: &[u8]);
    /// The screen as text, for failure messages.
    fn dump(&self) -> String;
}

impl Emulator for Screen {
    fn feed(&mut self, bytes: &[u8]) {
        Screen::feed(self, bytes);
    }

    fn dump(&self) -> String {
        Screen::dump(self)
    }
}

/// One `ringchat` under a pty, its output through `E`. Killed on drop.
pub struct PtyProc<E: Emulator = Screen> {
    /// Who this is, for failure messages.
    pub label: String,
    session: OsSession,
    /// What the program wrote, as the reader thread got it, then why reading ended.
    output: Receiver<Result<Vec<u8>, String>>,
    /// The screen so far.
    pub screen: E,
    /// How long anything expected may take.
    patience: Duration,
    /// Why reading the pty ended (the program exited), once it has.
    closed: Option<String>,
    /// Every byte the program wrote, kept for a failure.
    raw: Vec<u8>,
}

impl PtyProc<Screen> {
    /// Starts the binary with `args` under a pty, in `scratch` as working directory and
    /// data home (so nothing lands in the user's own), with no other environment setting.
    pub fn spawn(label: &str, scratch: &Scratch, args: &[&str]) -> PtyProc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(scratch.path())
            .env("HOME", scratch.path())
            .env("XDG_DATA_HOME", scratch.path());
        PtyProc::spawn_command(label, cmd)
    }

    /// Starts `cmd` under a pty, its output through the line-mode screen model.
    pub fn spawn_command(label: &str, cmd: Command) -> PtyProc {
        let screen = Screen::new(usize::from(COLUMNS), usize::from(ROWS));
        PtyProc::spawn_with(label, cmd, screen, WAIT)
    }

    /// Waits until `done` holds for the screen; fails after the patience saying `what`.
    #[track_caller]
    pub fn wait_screen(&mut self, what: &str, done: impl Fn(&Screen) -> bool) {
        self.wait(what, |p| done(&p.screen));
    }

    /// Waits until a finished row satisfies `pred`.
    #[track_caller]
    pub fn wait_row(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        self.wait_screen(what, |s| s.count_finished(&pred) > 0);
    }
}

impl<E: Emulator> PtyProc<E> {
    /// Starts `cmd` under a pty, its output through `screen`; anything expected may take
    /// `patience`.
    pub fn spawn_with(label: &str, cmd: Command, screen: E, patience: Duration) -> PtyProc<E> {
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
                    // The descriptor's flags are shared with the session's; should it be
                    // left non-blocking, wait for output instead of giving up.
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1));
                    }
                    // EIO once the program has exited and the pty closed.
                    end => {
                        let _ = tx.send(Err(format!("{end:?}")));
                        return;
                    }
                }
            }
        });
        PtyProc {
            label: label.to_string(),
            session,
            output,
            screen,
            patience,
            closed: None,
            raw: Vec::new(),
        }
    }

    /// The pty session (to resize it, say).
    pub fn session(&mut self) -> &mut OsSession {
        &mut self.session
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

    /// Waits until `done` holds for this process; fails after its patience saying `what`.
    #[track_caller]
    pub fn wait(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        self.wait_within(self.patience, what, done);
    }

    /// [`PtyProc::wait`] with a bound of its own, for what takes longer.
    #[track_caller]
    pub fn wait_within(&mut self, limit: Duration, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            if let Some(why) = &self.closed {
                self.fail(&format!("the pty closed ({why}) before {what}"));
            }
            self.read_until(deadline, limit, what);
        }
    }

    /// Waits for the program to exit (its pty closes) and returns the exit code.
    #[track_caller]
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + self.patience;
        while self.closed.is_none() {
            self.read_until(deadline, self.patience, "exit");
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

    /// Takes the next output, waiting until `deadline` (`limit` after the wait began) at
    /// the most.
    #[track_caller]
    fn read_until(&mut self, deadline: Instant, limit: Duration, what: &str) {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.output.recv_timeout(left) {
            Ok(Ok(bytes)) => {
                self.raw.extend_from_slice(&bytes);
                self.screen.feed(&bytes);
            }
            Ok(Err(why)) => self.closed = Some(why),
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("no {what} on the screen within {limit:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => self.closed = Some("reader gone".into()),
        }
    }

    /// Panics with `why` and the screen so far; the bytes written go to a file beside.
    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        let file = std::env::temp_dir().join(format!(
            "ringchat-pty-{}-{}.bytes",
            std::process::id(),
            self.label
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ));
        let saved = match std::fs::write(&file, &self.raw) {
            Ok(()) => format!("the bytes written are in {}", file.display()),
            Err(e) => format!("the bytes written could not be saved: {e}"),
        };
        let ended = match &self.closed {
            Some(how) => format!("; reading ended: {how}"),
            None => String::new(),
        };
        panic!(
            "{}: {why} ({saved}{ended})\n  screen:{}",
            self.label,
            self.screen.dump()
        );
    }
}

impl<E: Emulator> Drop for PtyProc<E> {
    fn drop(&mut self) {
        if self.closed.is_none() {
            let process = self.session.get_process_mut();
            let _ = process.kill(Signal::SIGKILL);
            let _ = process.wait();
        }
    }
}
