//! The interactive terminal: a line editor with history (kept in the data directory,
//! unless the node is ephemeral), tab completion as in the full-screen client (commands,
//! member names anywhere, recipients without yourself), a prompt saying who and where you are; the program's lines are printed above
//! the line being typed (see `screen`).
//!
//! Used only when stdin and stdout are both terminals and `--json` is off.

use super::line::{Typist, hand_over};
use super::screen::EditorLink;
use super::tui::complete;
use crate::driver::Request;
use crate::proto::Command;
use crate::ui::{self, Input};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{
    Cmd, ConditionalEventHandler, Context, Editor, Event, EventContext, EventHandler, Helper,
    Highlighter, KeyEvent, RepeatCount,
};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Member names known so far, for completion (filled from events by the output side).
#[derive(Clone, Default)]
pub struct Names(Arc<Mutex<BTreeSet<String>>>);

impl Names {
    /// Adds a name.
    pub fn add(&self, name: &str) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(name.to_string());
        }
    }

    /// Every name known, in name order.
    fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .map_or_else(|_| Vec::new(), |set| set.iter().cloned().collect())
    }
}

/// Completes, and tells the screen where the editor is in its read (the calls the
/// editor makes while it reads are the only way to know).
#[derive(Helper, Highlighter)]
struct ChatHelper {
    names: Names,
    /// Your name (never offered as a recipient).
    me: String,
    screen: EditorLink,
}

impl Hinter for ChatHelper {
    type Hint = String;

    /// Called whenever the editor draws the line, the first time once it has the
    /// terminal; no hints are shown.
    fn hint(&self, _line: &str, _pos: usize, _ctx: &Context<'_>) -> Option<String> {
        self.screen.reading();
        None
    }
}

impl Validator for ChatHelper {
    /// Called when Enter is taken, before the read returns; every line is accepted.
    fn validate(&self, _ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        self.screen.leaving();
        Ok(ValidationResult::Valid(None))
    }
}

/// Tells the screen the editor has stopped for good, when dropped after the editor.
struct Stopped(EditorLink);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.detach();
    }
}

/// Ctrl-C, and Ctrl-D on an empty line, end the read (and the session): the screen is
/// told first, then the editor does what these keys do.
struct Leaving(EditorLink);

impl ConditionalEventHandler for Leaving {
    fn handle(&self, evt: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        if *evt == Event::from(KeyEvent::ctrl('C')) || ctx.line().is_empty() {
            self.0.leaving();
        }
        None
    }
}

impl Completer for ChatHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(completions(&self.names, &self.me, line, pos))
    }
}

/// What to complete at `pos` in `line`, `(start of the word, candidates)`: the
/// full-screen client's completion (commands in the first word, a member's name
/// anywhere, recipients after `send` and `/msg` without `me`).
fn completions(names: &Names, me: &str, line: &str, pos: usize) -> (usize, Vec<String>) {
    let offer = complete::offer(line, pos, &names.all(), me);
    (offer.start, offer.candidates)
}

/// Starts the line editor on its own thread and attaches it to the screen through
/// `link`: from then on the program's lines are printed above the prompt. Typed lines
/// (typed by `typist`) become requests on `commands`; `clear` clears the screen; Ctrl-C, Ctrl-D and `exit` leave gracefully. With
/// `history`, what was typed is read from there at start and saved there at the end.
/// Returns once the editor exists, or why it cannot (then nothing was started).
pub fn start(
    prompt: String,
    typist: Typist,
    names: Names,
    history: Option<PathBuf>,
    commands: mpsc::UnboundedSender<Request>,
    link: EditorLink,
) -> Result<(), String> {
    let (started_tx, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Declared before the editor, so dropped after it, also on a panic.
        let stopped = Stopped(link.clone());
        let editor = Editor::<ChatHelper, DefaultHistory>::new().and_then(|mut rl| {
            let printer = rl.create_external_printer()?;
            Ok((rl, printer))
        });
        let (mut rl, printer) = match editor {
            Ok(made) => made,
            Err(e) => {
                let _ = started_tx.send(Err(e.to_string()));
                return;
            }
        };
        let _ = started_tx.send(Ok(()));
        rl.set_helper(Some(ChatHelper {
            names,
            me: typist.me.clone(),
            screen: link.clone(),
        }));
        for key in ['C', 'D'] {
            let leaving = EventHandler::Conditional(Box::new(Leaving(link.clone())));
            rl.bind_sequence(KeyEvent::ctrl(key), leaving);
        }
        if let Some(h) = &history {
            let _ = rl.load_history(h);
        }
        // Every line printed so far is out before the first prompt is drawn.
        link.attach(Box::new(printer));
        loop {
            let read = rl.readline(&prompt);
            link.between();
            let line = match read {
                Ok(line) => line,
                Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
                Err(e) => {
                    let _ = commands.send(Request::Say(vec![format!("error: terminal: {e}")]));
                    break;
                }
            };
            if !line.trim().is_empty() {
                let _ = rl.add_history_entry(line.as_str());
            }
            if ui::parse(&line) == Ok(Input::Clear) {
                let _ = rl.clear_screen();
                continue;
            }
            if !hand_over(&line, &typist, &commands) {
                break;
            }
        }
        if let Some(h) = &history {
            if let Some(dir) = h.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = rl.save_history(h);
        }
        // What the node says from now on (`left the room`) goes straight to stdout.
        drop(rl);
        drop(stopped);
        let _ = commands.send(Request::Command(Command::Leave));
    });
    started.recv().map_err(|e| e.to_string()).and_then(|r| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line mode completes as the full-screen client does.
    #[test]
    fn completes_commands_names_anywhere_and_recipients_but_you() {
        let names = Names::default();
        for n in ["alice", "albert", "bob", "zoë"] {
            names.add(n);
        }
        let at_end = |line: &str| completions(&names, "alice", line, line.len());
        assert_eq!(at_end("/li"), (0, vec!["/list ".into()]));
        assert_eq!(
            at_end("hello al"),
            (6, vec!["albert ".into(), "alice ".into()])
        );
        assert_eq!(
            at_end("send "),
            (5, vec!["albert ".into(), "bob ".into(), "zoë ".into()])
        );
        assert_eq!(at_end("send bob,z"), (9, vec!["zoë ".into()]));
        assert_eq!(at_end("hi zed").1, Vec::<String>::new());
    }
}
