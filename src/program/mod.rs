//! The interactive program: reads what the user types (the full-screen client or a line
//! editor on a terminal, plain lines from a pipe), hands it to the node task, and shows
//! what comes back, on the full screen, as lines of text, or as JSON.
//!
//! It uses the node task (`crate::driver`) through a `NodeHandle`; the node task knows
//! nothing of it. Parts:
//!
//! - [`tui`]: the full-screen client (the default on a terminal).
//! - [`room_key`]: which room key (or one-time invitation) a node uses (a room is keyed
//!   unless `--insecure`), and where it is kept; [`invitation`]: the one-line invitation
//!   that lets a newcomer in, and what mints the one-time ones `invite` prints.
//! - [`line`]: a typed line into a request, for every front end; the plain stdin reader.
//! - [`terminal`]: the line editor of the line mode (history, completion, the prompt).
//! - [`screen`]: where every line the line mode prints goes, whole and in order, above
//!   the prompt while the line editor runs.
//! - this module: [`run`], which wires them to a node.

pub mod invitation;
pub mod line;
pub mod room_key;
pub mod screen;
pub mod terminal;
pub mod tui;

pub use crate::cli::Mode;
use crate::driver::{NodeHandle, NodeTask, Output, Request, Security};
use crate::proto::{Command, Event, NodeConfig};
use crate::store::Store;
use crate::ui::{self, Narrator, Style};
use line::{Typist, read_stdin};
use screen::{Printed, Screen, print_lines};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use terminal::Names;
use tokio::net::UdpSocket;

/// How the program talks to the user.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Full screen, lines, or JSON.
    pub mode: Mode,
    /// Where the typed lines are kept across runs (the line editor's and the full-screen
    /// client's history); `None` keeps them for this run only.
    pub editor_history: Option<PathBuf>,
    /// Lines to say at start besides the listening address (where a key made or kept
    /// by this run is: [`room_key::Access::note`]).
    pub notes: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Line,
            editor_history: None,
            notes: Vec::new(),
        }
    }
}

/// The program: runs a node on `socket`, reading commands from the user and showing what
/// the node says, until the user leaves (exit code 0), or joining fails or the node stops
/// on a fault (its database failed: exit code 1).
///
/// `settings.mode` picks the front end: the full-screen client (which falls back to the
/// line mode if the terminal cannot be taken), lines (the line editor when stdin and
/// stdout are a terminal, with colour unless `NO_COLOR` is set; plain lines on pipes),
/// or one JSON object per line.
///
/// With `store`, the node starts from what it holds and keeps its state there.
///
/// In a keyed room (`security.room_key` or `security.invitation`) `invite` mints a new
/// one-time invitation to this node (into `security.invitations`), and a node that starts
/// a room shows one when it creates it; an open room is said to be open at start, on
/// stderr (in the full-screen client, in its pane).
pub async fn run(
    cfg: NodeConfig,
    socket: UdpSocket,
    security: Security,
    store: Option<Store>,
    settings: Settings,
) -> ExitCode {
    let keyed = security.room_key.is_some() || security.invitation.is_some();
    let inviter = (security.invitations.clone())
        .filter(|_| keyed)
        .map(|minted| invitation::Inviter::new(minted, cfg.addr));
    // A node that starts a room (or its own again) shows an invitation when it is alone.
    let invitation = inviter
        .as_ref()
        .filter(|_| cfg.join.is_none())
        .and_then(|i| match i.mint() {
            Ok(token) => Some(token),
            Err(why) => {
                eprintln!("warning: {why}; type invite to try again");
                None
            }
        });
    let typist = Typist::new(&cfg.name, inviter.clone(), cfg.addr);
    let mut said_first = settings.notes.clone();
    if !keyed {
        said_first.push(ui::OPEN_ROOM_WARNING.to_string());
    }
    let listening = format!("listening on {}", cfg.addr);
    let full_screen = settings.mode == Mode::FullScreen;
    if !full_screen {
        // The first line, before anything else can print (the notes go to stderr).
        print_lines(&[match settings.mode {
            Mode::Json => {
                serde_json::json!({"event": "listening", "addr": cfg.addr.to_string()}).to_string()
            }
            _ => listening.clone(),
        }]);
        said_first.iter().for_each(|l| eprintln!("{l}"));
    }
    let (me, addr, join) = (cfg.name.clone(), cfg.addr, cfg.join);
    let handle = match NodeTask::new(socket, cfg)
        .security(security)
        .store(store)
        .start()
    {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    spawn_signal_handlers(&handle, full_screen);
    if full_screen {
        let mut first_lines = vec![listening.clone()];
        first_lines.extend(said_first.iter().cloned());
        let start = tui::Start {
            setup: tui::state::Setup {
                me: me.clone(),
                addr,
                join,
                keyed,
                invitation: invitation.clone(),
                inviter,
                colour: Style::for_output(true).color,
            },
            history: settings.editor_history.clone(),
            first_lines,
            commands: handle.commands.clone(),
            shown: handle.shown.clone(),
        };
        match tui::FullScreen::start(start) {
            Ok(screen) => return full_screen_loop(handle, screen, keyed).await,
            Err(e) => {
                eprintln!("warning: no full-screen client ({e}); using the line mode");
                print_lines(&[listening]);
                said_first.iter().for_each(|l| eprintln!("{l}"));
            }
        }
    }
    let lines = LineMode {
        typist,
        addr,
        keyed,
        invitation,
        settings,
    };
    lines.run(handle).await
}

/// How long a second Ctrl-C waits for its last words to be written before it exits.
const SAY_BEFORE_EXIT: std::time::Duration = std::time::Duration::from_millis(300);

/// Ctrl-C (SIGINT) leaves gracefully, a second one exits at once. In the full-screen
/// client the terminal sends Ctrl-C as a key instead; there, SIGTERM and SIGHUP (the
/// terminal closed) leave gracefully too, so the terminal is put back.
fn spawn_signal_handlers(handle: &NodeHandle, full_screen: bool) {
    let ctrl_c = handle.commands.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = ctrl_c.send(Request::Command(Command::Leave));
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            // Stdout may be blocked (a reader that stopped reading): the words are tried
            // on a thread of their own, and the process exits regardless soon after.
            let said = std::thread::spawn(|| {
                tui::restore_terminal();
                print_lines(&["interrupted twice; exiting without leaving"]);
            });
            let deadline = tokio::time::Instant::now() + SAY_BEFORE_EXIT;
            while !said.is_finished() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            std::process::exit(130);
        }
    });
    if !full_screen {
        return;
    }
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::terminate(), SignalKind::hangup()] {
        let commands = handle.commands.clone();
        if let Ok(mut signals) = signal(kind) {
            tokio::spawn(async move {
                while signals.recv().await.is_some() {
                    let _ = commands.send(Request::Command(Command::Leave));
                }
            });
        }
    }
}

/// The full-screen client's side of the node: everything the node says goes to the
/// screen; what ends the session (a failed join, the leave and what it could not send)
/// is printed again below the shell's prompt once the terminal is back.
async fn full_screen_loop(
    mut handle: NodeHandle,
    screen: tui::FullScreen,
    keyed: bool,
) -> ExitCode {
    drop(handle.commands);
    let mut code = ExitCode::SUCCESS;
    let mut farewell = Vec::new();
    let mut narrator = Narrator::new(keyed);
    while let Some(item) = handle.events.recv().await {
        if let Output::Stopped(line) = &item {
            code = ExitCode::FAILURE;
            farewell.push(line.clone());
        }
        if let Output::Event(ev) = &item {
            if matches!(ev, Event::JoinFailed(_)) {
                code = ExitCode::FAILURE;
            }
            if matches!(
                ev,
                Event::JoinFailed(_) | Event::Unconfirmed { .. } | Event::Left
            ) {
                farewell.extend(narrator.lines(ev, &Style::plain()));
            }
        }
        screen.show(item);
    }
    // On the runtime's thread: the terminal sends Ctrl-C here as a key, not a signal.
    screen.close();
    print_lines(&farewell);
    code
}

/// The line mode: one line per event (or one JSON object), typed lines from the line
/// editor on a terminal or from stdin.
struct LineMode {
    typist: Typist,
    addr: SocketAddr,
    keyed: bool,
    invitation: Option<String>,
    settings: Settings,
}

impl LineMode {
    async fn run(self, mut handle: NodeHandle) -> ExitCode {
        use std::io::IsTerminal;
        let json = self.settings.mode == Mode::Json;
        let stdout_tty = std::io::stdout().is_terminal();
        let interactive = !json && stdout_tty && std::io::stdin().is_terminal();
        let mut out = UserOutput {
            json,
            style: Style::for_output(stdout_tty && !json),
            screen: Screen::open(handle.shown.clone()),
            narrator: Narrator::new(self.keyed).inviting(self.invitation.clone()),
            pending: Vec::new(),
            pending_shows: Printed::default(),
        };
        let prompt = format!("{}@{}> ", self.typist.me, self.addr);
        let typist = self.typist;
        // Typed (or piped) commands run once the node is in the room.
        let mut input = Some(handle.commands.clone());
        drop(handle.commands);
        let room = handle.input_room.clone();
        let names = Names::default();
        let mut seeding_names = false;
        let mut code = ExitCode::SUCCESS;
        loop {
            // Lines go to the screen in one batch per run of events already waiting.
            if handle.events.is_empty() {
                out.flush();
            }
            let Some(item) = handle.events.recv().await else {
                break;
            };
            let ev = match item {
                Output::Say(lines) => {
                    out.say(lines);
                    continue;
                }
                Output::Stopped(line) => {
                    out.stopped(line);
                    code = ExitCode::FAILURE;
                    continue;
                }
                Output::Event(ev) => ev,
            };
            learn_names(&names, &ev);
            match &ev {
                Event::JoinFailed(_) => code = ExitCode::FAILURE,
                Event::Members(_) if seeding_names => {
                    seeding_names = false;
                    continue;
                }
                _ => {}
            }
            out.event(&ev);
            if !matches!(ev, Event::Joined { .. }) {
                continue;
            }
            let Some(commands) = input.take() else {
                continue;
            };
            // The editor starts after the joined line is given to the screen, so its
            // first prompt comes below that line.
            out.flush();
            let editor = interactive.then(|| {
                let link = out.screen.link();
                let history = self.settings.editor_history.clone();
                terminal::start(
                    prompt.clone(),
                    typist.clone(),
                    names.clone(),
                    history,
                    commands.clone(),
                    link,
                )
            });
            match editor {
                Some(Ok(())) => {
                    // Learn the members' names for completion, quietly.
                    seeding_names = commands.send(Request::Command(Command::List)).is_ok();
                }
                Some(Err(e)) => {
                    eprintln!("warning: no line editor ({e}); reading plain lines");
                    tokio::spawn(read_stdin(commands, room.clone(), typist.clone()));
                }
                None => {
                    tokio::spawn(read_stdin(commands, room.clone(), typist.clone()));
                }
            }
        }
        // Every line is out, with its newline, before the program ends. Stdout may block
        // for good (a reader that stopped reading): the wait is off the runtime's one
        // thread, which must stay free to take the second Ctrl-C that exits anyway.
        out.flush();
        let screen = out.screen;
        let _ = tokio::task::spawn_blocking(move || screen.close()).await;
        code
    }
}

/// Member names for completion, from whatever events mention them.
fn learn_names(names: &Names, ev: &Event) {
    match ev {
        Event::MemberOnline { name } | Event::MemberOffline { name } => names.add(name),
        Event::Members(list) => list.iter().for_each(|m| names.add(&m.name)),
        Event::Room { entry, .. } => names.add(&entry.name),
        Event::Direct { from, .. } => names.add(from),
        _ => {}
    }
}

/// What the line mode prints, as text (plain or coloured) or JSON, on its screen.
struct UserOutput {
    json: bool,
    style: Style,
    screen: Screen,
    narrator: Narrator,
    /// Lines not yet handed to the screen (see [`UserOutput::flush`]).
    pending: Vec<String>,
    /// What they show.
    pending_shows: Printed,
}

/// Lines handed to the screen at most in one batch: a long run of events is printed as
/// it goes, not only at its end.
const MAX_PENDING_LINES: usize = 256;

impl UserOutput {
    fn line(&mut self, line: String) {
        self.pending.push(line);
        if self.pending.len() >= MAX_PENDING_LINES {
            self.flush();
        }
    }

    /// Hands the pending lines to the screen, in order, as one batch: one wake-up of the
    /// writer thread for a burst of messages rather than one per line.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let shows = std::mem::take(&mut self.pending_shows);
            self.screen.lines(std::mem::take(&mut self.pending), shows);
        }
    }

    /// The node's last word: it stopped on a fault (`stopped` in JSON, with the reason).
    fn stopped(&mut self, line: String) {
        if !self.json {
            return self.line(line);
        }
        let why = line.strip_prefix("error: ").unwrap_or(&line);
        self.line(serde_json::json!({"event": "stopped", "error": why}).to_string());
    }

    fn event(&mut self, ev: &Event) {
        let lines = if self.json {
            self.narrator.json(ev)
        } else {
            self.narrator.lines(ev, &self.style)
        };
        for l in lines {
            self.line(l);
        }
        // After its lines: a batch handed over before them does not claim it.
        match ev {
            Event::Room { entry, .. } => self.pending_shows.room = Some(entry.seq),
            Event::Direct { mine: false, .. } => self.pending_shows.directs += 1,
            _ => {}
        }
    }

    /// The REPL's own lines (help, typing errors, the invitation).
    fn say(&mut self, lines: Vec<String>) {
        for l in lines {
            let l = if self.json {
                if l == ui::INVITATION_INTRO {
                    continue;
                }
                if invitation::looks_like_one(&l) {
                    self.line(ui::json_invitation(&l));
                    continue;
                }
                match l.strip_prefix("error: ") {
                    Some(e) => serde_json::json!({"event": "error", "error": e}).to_string(),
                    None => serde_json::json!({"event": "notice", "text": l}).to_string(),
                }
            } else {
                l
            };
            self.line(l);
        }
    }
}
