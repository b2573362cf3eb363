//! The full-screen client under a real pseudo-terminal, read through a terminal emulator
//! (the `vt100` crate): a test sees the screen a person would see, cell by cell, and
//! waits for what it expects there with a generous deadline, never a sleep. The pty
//! itself is the shared [`PtyProc`], with `vt100` as its emulator.

use crate::common::pty::{COLUMNS, Emulator, PtyProc, ROWS};
use crate::common::{BIN, Scratch};
use std::process::Command;
use std::time::Duration;

/// How long anything expected on the screen may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// One `ringchat` under a pty, its screen emulated by `vt100`. Killed on drop.
pub type VtProc = PtyProc<vt100::Parser>;

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN)
}

impl Emulator for vt100::Parser {
    fn feed(&mut self, bytes: &[u8]) {
        self.process(bytes);
    }

    fn dump(&self) -> String {
        let (_, cols) = self.screen().size();
        self.screen()
            .rows(0, cols.get())
            .map(|r| format!("\n    | {}", r.trim_end()))
            .collect()
    }
}

impl PtyProc<vt100::Parser> {
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
        let parser = vt100::Parser::new(nonzero(ROWS), nonzero(COLUMNS), 0);
        PtyProc::spawn_with(label, cmd, parser, WAIT)
    }

    /// The emulated screen.
    pub fn screen(&self) -> &vt100::Screen {
        self.screen.screen()
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

    /// Waits until a row satisfies `pred`.
    #[track_caller]
    pub fn wait_row(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        self.wait(what, |p| p.has_row(&pred));
    }

    /// Resizes the terminal (the program gets SIGWINCH) and the emulated screen.
    #[track_caller]
    pub fn resize(&mut self, columns: u16, rows: u16) {
        if let Err(e) = self
            .session()
            .get_process_mut()
            .set_window_size(columns, rows)
        {
            self.fail(&format!("cannot resize the pty: {e}"));
        }
        self.screen.set_size(nonzero(rows), nonzero(columns));
    }
}
