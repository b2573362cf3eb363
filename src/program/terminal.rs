//! The interactive terminal: a line editor with history (kept in the data directory),
//! tab completion of commands and of member names after `send`, a prompt saying who and
//! where you are, and incoming lines printed above the line being typed.
//!
//! Used only when stdin and stdout are both terminals and `--json` is off.

use super::line::hand_over;
use crate::driver::Request;
use crate::proto::Command;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Context, Editor, ExternalPrinter, Helper, Highlighter, Hinter, Validator};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Command words offered by completion.
const COMMANDS: [&str; 11] = [
    "send_all", "send", "list", "status", "history", "dereg", "reg", "help", "exit", "quit",
    "//exit",
];

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

    fn starting_with(&self, prefix: &str) -> Vec<String> {
        self.0.lock().map_or_else(
            |_| Vec::new(),
            |set| {
                set.iter()
                    .filter(|n| n.starts_with(prefix))
                    .cloned()
                    .collect()
            },
        )
    }
}

#[derive(Helper, Highlighter, Hinter, Validator)]
struct ChatHelper {
    names: Names,
}

/// What to complete at `pos` in `line`: `(start of the word, candidates)`.
fn completions(names: &Names, line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = line.get(..pos).unwrap_or(line);
    let first_end = before.find(char::is_whitespace);
    let Some(first_end) = first_end else {
        // In the first word: a command.
        let word = before.trim_start();
        let word = word
            .strip_prefix('/')
            .filter(|w| !w.starts_with('/'))
            .unwrap_or(word);
        let start = before.len() - word.len();
        let found = COMMANDS
            .iter()
            .filter(|c| c.starts_with(word))
            .map(|c| c.to_string())
            .collect();
        return (start, found);
    };
    let command = before[..first_end].trim_start_matches('/');
    let rest = before[first_end..].trim_start();
    if command == "send" && !rest.contains(char::is_whitespace) {
        // In the recipients: a name after the last comma.
        let partial = rest.rsplit(',').next().unwrap_or("");
        return (pos - partial.len(), names.starting_with(partial));
    }
    (pos, Vec::new())
}

impl Completer for ChatHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(completions(&self.names, line, pos))
    }
}

/// Prints lines above the prompt.
pub type Printer = Box<dyn ExternalPrinter + Send>;

/// Starts the line editor on its own thread. Typed lines become requests on `commands`;
/// Ctrl-C, Ctrl-D and `exit` leave gracefully. Returns the printer for incoming lines.
pub fn start(
    prompt: String,
    names: Names,
    history: Option<PathBuf>,
    commands: mpsc::UnboundedSender<Request>,
) -> Result<Printer, String> {
    let (printer_tx, printer_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rl: Editor<ChatHelper, DefaultHistory> = match Editor::new() {
            Ok(rl) => rl,
            Err(e) => {
                let _ = printer_tx.send(Err(e.to_string()));
                return;
            }
        };
        rl.set_helper(Some(ChatHelper { names }));
        if let Some(h) = &history {
            let _ = rl.load_history(h);
        }
        match rl.create_external_printer() {
            Ok(p) => {
                let _ = printer_tx.send(Ok(Box::new(p) as Printer));
            }
            Err(e) => {
                let _ = printer_tx.send(Err(e.to_string()));
                return;
            }
        }
        loop {
            let line = match rl.readline(&prompt) {
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
            if !hand_over(&line, &commands) {
                break;
            }
        }
        if let Some(h) = &history {
            if let Some(dir) = h.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = rl.save_history(h);
        }
        let _ = commands.send(Request::Command(Command::Leave));
    });
    printer_rx.recv().map_err(|e| e.to_string()).and_then(|r| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_commands_and_recipients() {
        let names = Names::default();
        for n in ["alice", "albert", "bob", "zoë"] {
            names.add(n);
        }
        assert_eq!(
            completions(&names, "se", 2),
            (0, vec!["send_all".into(), "send".into()])
        );
        assert_eq!(completions(&names, "/li", 3), (1, vec!["list".into()]));
        assert_eq!(
            completions(&names, "send al", 7),
            (5, vec!["albert".into(), "alice".into()])
        );
        assert_eq!(
            completions(&names, "send bob,z", 10),
            (9, vec!["zoë".into()])
        );
        assert_eq!(
            completions(&names, "send bob hel", 12).1,
            Vec::<String>::new()
        );
        assert_eq!(completions(&names, "hello al", 8).1, Vec::<String>::new());
    }
}
