//! The full-screen client (ratatui on crossterm): a scrollable message pane with day
//! separators and an unread marker, a member sidebar, a status bar and an input line
//! with history, editing and completion. Used when stdin and stdout are a terminal,
//! unless `--json` or `--line`.
//!
//! One thread owns the terminal and draws; it takes, in one queue and so in order, what
//! the node gives out ([`FullScreen::show`]) and what the user does (a second thread
//! reads the terminal's events). Parts, each apart from the terminal:
//!
//! - [`state`]: the client's state; events and actions change it.
//! - [`view`]: draws the state.
//! - [`pane`], [`roster`], [`editor`] (with [`complete`]): the message pane, the member
//!   sidebar, the input line.
//! - [`entries`]: messages as pane entries; [`keys`]: terminal events as actions.
//!
//! The terminal is put back as it was (raw mode off, the main screen back, the mouse
//! released) when the client closes, on a panic, and before an exit at once.

pub mod complete;
pub mod editor;
pub mod entries;
pub mod keys;
pub mod pane;
pub mod roster;
pub mod state;
pub mod view;

use super::screen::Printed;
use crate::driver::{Output, Request, ShownMark};
use crate::proto::Event;
use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, DisableMouseCapture, EnableBracketedPaste,
    EnableFocusChange, EnableMouseCapture,
};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use state::{Effect, Setup, State};
use std::io::Stdout;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// What the drawing thread takes, in order.
// Each message is moved once through the queue; boxing outputs would only add allocations.
#[allow(clippy::large_enum_variant)]
enum Message {
    /// What the node gave out.
    Node(Output),
    /// A terminal event.
    Terminal(crossterm::event::Event),
    /// Reading the terminal failed; the user can no longer type.
    TerminalLost(String),
    /// Put the terminal back and stop.
    Close,
}

/// Whether the terminal is in the client's modes (so that putting it back is needed).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was before the client: raw mode off, the main screen,
/// mouse, paste and focus reporting off, the cursor shown. Does nothing if the client
/// does not have the terminal; safe to call from anywhere, more than once.
pub fn restore_terminal() {
    if !TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(
        out,
        DisableFocusChange,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
}

/// Takes the terminal: raw mode, the alternate screen, mouse, paste and focus reports.
fn take_terminal() -> std::io::Result<()> {
    enable_raw_mode()?;
    TAKEN.store(true, Ordering::SeqCst);
    let mut out = std::io::stdout();
    let taken = crossterm::execute!(
        out,
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste,
        EnableFocusChange
    );
    if let Err(e) = taken {
        restore_terminal();
        return Err(e);
    }
    // A panic anywhere puts the terminal back before its message is printed.
    static HOOKED: AtomicBool = AtomicBool::new(false);
    if !HOOKED.swap(true, Ordering::SeqCst) {
        let earlier = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            earlier(info);
        }));
    }
    Ok(())
}

/// What the client needs to start.
pub struct Start {
    /// Who and where.
    pub setup: Setup,
    /// Where the typed lines are kept across runs (the line editor's file), if anywhere.
    pub history: Option<PathBuf>,
    /// Lines to show first (the listening address, warnings).
    pub first_lines: Vec<String>,
    /// Where requests for the node go.
    pub commands: UnboundedSender<Request>,
    /// Moved to each room message once it is drawn (see [`ShownMark`]).
    pub shown: ShownMark,
}

/// The running client.
pub struct FullScreen {
    queue: Sender<Message>,
    drawer: Option<JoinHandle<()>>,
}

impl FullScreen {
    /// Takes the terminal and starts drawing. On an error nothing was started and the
    /// terminal is as it was.
    pub fn start(start: Start) -> std::io::Result<FullScreen> {
        take_terminal()?;
        let terminal = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
            Ok(t) => t,
            Err(e) => {
                restore_terminal();
                return Err(e);
            }
        };
        let (columns, rows) = crossterm::terminal::size().unwrap_or((80, 24));
        let mut state = State::new(start.setup, columns, rows);
        if let Some(path) = &start.history {
            state.editor.load_history(path);
        }
        for line in &start.first_lines {
            state.say(line);
        }
        let (queue, messages) = mpsc::channel();
        let events = queue.clone();
        std::thread::spawn(move || read_terminal(&events));
        let commands = start.commands;
        let history = start.history;
        let shown = start.shown;
        let drawer = std::thread::spawn(move || {
            let state = run(terminal, state, &messages, &commands, &shown);
            restore_terminal();
            if let Some(path) = &history {
                // Best effort: a history that cannot be kept is no reason to fail.
                let _ = state.editor.save_history(path);
            }
        });
        Ok(FullScreen {
            queue,
            drawer: Some(drawer),
        })
    }

    /// Shows what the node gave out.
    pub fn show(&self, output: Output) {
        // The drawer only stops when closed.
        let _ = self.queue.send(Message::Node(output));
    }

    /// Draws what is left, puts the terminal back and stops.
    pub fn close(mut self) {
        let _ = self.queue.send(Message::Close);
        if let Some(drawer) = self.drawer.take() {
            let _ = drawer.join();
        }
        restore_terminal();
    }
}

/// Reads terminal events into the queue until the queue is gone.
fn read_terminal(queue: &Sender<Message>) {
    loop {
        let message = match crossterm::event::read() {
            Ok(event) => Message::Terminal(event),
            Err(e) => {
                let _ = queue.send(Message::TerminalLost(e.to_string()));
                return;
            }
        };
        if queue.send(message).is_err() {
            return;
        }
    }
}

/// How often the client asks the node for the room's health (a quiet `status`).
const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// The drawing thread: draws, then takes every message waiting before drawing again,
/// and ticks the state every [`HEALTH_EVERY`] (see [`State::tick`]); gives the state
/// back when closed. Once a room message is drawn, `shown` moves to it.
fn run(
    mut terminal: Terminal<CrosstermBackend<Stdout>>,
    mut state: State,
    messages: &Receiver<Message>,
    commands: &UnboundedSender<Request>,
    shown: &ShownMark,
) -> State {
    let mut drawable = true;
    let mut health_due = Instant::now() + HEALTH_EVERY;
    // What was taken into the state since the last draw, drawn at the next.
    let mut taken = Printed::default();
    loop {
        if drawable {
            match terminal.draw(|frame| view::draw(frame, &state)) {
                Ok(_) => std::mem::take(&mut taken).mark(shown),
                Err(e) => {
                    // The terminal is gone (hung up): nobody can see or type; leave.
                    drawable = false;
                    tracing::warn!("cannot draw on the terminal: {e}; leaving");
                    let _ = commands.send(Request::Command(crate::proto::Command::Leave));
                }
            }
        }
        let first =
            match messages.recv_timeout(health_due.saturating_duration_since(Instant::now())) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return state,
            };
        if Instant::now() >= health_due {
            health_due = Instant::now() + HEALTH_EVERY;
            carry_out(state.tick(), &mut terminal, commands);
        }
        let mut next = first;
        while let Some(message) = next.take() {
            let effects = match message {
                Message::Node(output) => {
                    match &output {
                        Output::Event(Event::Room { entry, .. }) => taken.room = Some(entry.seq),
                        Output::Event(Event::Direct { mine: false, .. }) => taken.directs += 1,
                        _ => {}
                    }
                    state.apply(output)
                }
                Message::Terminal(event) => state.act(keys::action(&event)),
                Message::TerminalLost(why) => {
                    state.say(&format!("error: cannot read the terminal: {why}"));
                    Vec::new()
                }
                Message::Close => {
                    if drawable {
                        let _ = terminal.draw(|frame| view::draw(frame, &state));
                    }
                    return state;
                }
            };
            carry_out(effects, &mut terminal, commands);
            next = messages.try_recv().ok();
        }
    }
}

/// Does what the state asked for.
fn carry_out(
    effects: Vec<Effect>,
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    commands: &UnboundedSender<Request>,
) {
    for effect in effects {
        match effect {
            Effect::Send(request) => {
                let _ = commands.send(request);
            }
            Effect::Redraw => {
                // Not `Terminal::clear`: it asks the terminal where the cursor is, and the
                // answer would go to the thread reading keys (a 2 s stall, then nothing).
                // A resize to the same size clears the screen and forgets what was drawn,
                // so the next draw paints every cell.
                if let Ok(size) = terminal.size() {
                    let _ =
                        terminal.resize(ratatui::layout::Rect::new(0, 0, size.width, size.height));
                }
            }
            Effect::ExitNow => {
                restore_terminal();
                println!("interrupted twice; exiting without leaving");
                std::process::exit(130);
            }
        }
    }
}
