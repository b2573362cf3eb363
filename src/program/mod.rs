//! The interactive program: reads what the user types (a line editor on a terminal,
//! plain lines from a pipe), hands it to the node task, and prints what comes back as
//! text or JSON.
//!
//! It uses the node task (`crate::driver`) through a `NodeHandle`; the node task knows
//! nothing of it. Parts:
//!
//! - [`line`]: a typed line into a request; the plain stdin reader.
//! - [`terminal`]: the line editor (history, completion, the prompt).
//! - [`screen`]: where every line the program prints goes, whole and in order, above
//!   the prompt while the line editor runs.
//! - this module: [`run`], which wires them to a node and renders its output.

pub mod line;
pub mod screen;
pub mod terminal;

use crate::driver::{NodeTask, Output, Request, Security};
use crate::proto::{Command, Event, NodeConfig};
use crate::store::Store;
use crate::ui::{self, Style};
use line::read_stdin;
use screen::{Screen, print_lines};
use std::path::PathBuf;
use std::process::ExitCode;
use terminal::Names;
use tokio::net::UdpSocket;

/// How the program talks to the user.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Where the line editor keeps what was typed across runs; `None` keeps it for this
    /// run only.
    pub editor_history: Option<PathBuf>,
}

/// The program: runs a node on `socket`, reading commands from stdin and printing events
/// to stdout, until the user leaves (exit code 0) or joining fails (exit code 1).
///
/// On a terminal it uses the line editor ([`terminal`]), with colour unless `NO_COLOR`
/// is set; on pipes, plain lines; with `settings.json`, one JSON object per line.
///
/// With `store`, the node starts from what it holds and keeps its state there.
pub async fn run(
    cfg: NodeConfig,
    socket: UdpSocket,
    security: Security,
    store: Option<Store>,
    settings: Settings,
) -> ExitCode {
    use std::io::IsTerminal;
    let json = settings.json;
    let stdout_tty = std::io::stdout().is_terminal();
    let interactive = !json && stdout_tty && std::io::stdin().is_terminal();
    // The first line, before anything else can print (the warning below goes to stderr).
    let listening = if json {
        serde_json::json!({"event": "listening", "addr": cfg.addr.to_string()}).to_string()
    } else {
        format!("listening on {}", cfg.addr)
    };
    print_lines(&[listening]);
    let out = UserOutput {
        json,
        style: Style::for_output(stdout_tty && !json),
        screen: Screen::open(),
    };
    let prompt = format!("{}@{}> ", cfg.name, cfg.addr);
    let me = cfg.name.clone();
    if security.room_key.is_none() {
        eprintln!(
            "warning: no room key: this room is unauthenticated (anyone who can reach it can \
             join, read and post); create a key with `ringchat keygen --room FILE` and start \
             every member with --room-key-file FILE"
        );
    }
    let mut handle = match NodeTask::new(socket, cfg)
        .security(security)
        .store(store)
        .start()
    {
        Ok(h) => h,
        Err(e) => {
            out.screen.close();
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Typed (or piped) commands run once the node is in the room.
    let mut input = Some(handle.commands.clone());
    let ctrl_c = handle.commands.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = ctrl_c.send(Request::Command(Command::Leave));
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            print_lines(&["interrupted twice; exiting without leaving"]);
            std::process::exit(130);
        }
    });
    drop(handle.commands);
    let names = Names::default();
    let mut seeding_names = false;
    let mut code = ExitCode::SUCCESS;
    while let Some(item) = handle.events.recv().await {
        let ev = match item {
            Output::Say(lines) => {
                out.say(lines);
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
        // The editor starts after the joined line is given to the screen, so its first
        // prompt comes below that line.
        let editor = interactive.then(|| {
            let link = out.screen.link();
            let history = settings.editor_history.clone();
            terminal::start(
                prompt.clone(),
                me.clone(),
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
                tokio::spawn(read_stdin(commands, me.clone()));
            }
            None => {
                tokio::spawn(read_stdin(commands, me.clone()));
            }
        }
    }
    // Every line is out, with its newline, before the program ends.
    out.screen.close();
    code
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

/// What the program prints, as text (plain or coloured) or JSON, on its screen.
struct UserOutput {
    json: bool,
    style: Style,
    screen: Screen,
}

impl UserOutput {
    fn line(&self, line: String) {
        self.screen.line(line);
    }

    fn event(&self, ev: &Event) {
        if self.json {
            return self.line(ui::render_json(ev));
        }
        for l in ui::render_styled(ev, &self.style) {
            self.line(l);
        }
    }

    /// The REPL's own lines (help, typing errors).
    fn say(&self, lines: Vec<String>) {
        for l in lines {
            let l = if self.json {
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
