//! The interactive program: reads what the user types (a line editor on a terminal,
//! plain lines from a pipe), hands it to the node task, and prints what comes back as
//! text or JSON.
//!
//! It uses the node task (`crate::driver`) through a `NodeHandle`; the node task knows
//! nothing of it. Parts:
//!
//! - [`line`]: a typed line into a request; the plain stdin reader.
//! - [`terminal`]: the line editor (history, completion, printing above the prompt).
//! - this module: [`run`], which wires them to a node and renders its output.

pub mod line;
pub mod terminal;

use crate::driver::{Loss, Output, Request, Security, spawn_stored};
use crate::proto::{Command, Event, NodeConfig};
use crate::store::Store;
use crate::ui::{self, Style};
use line::read_stdin;
use std::io::Write;
use std::process::ExitCode;
use terminal::Names;
use tokio::net::UdpSocket;

/// Prints lines to stdout and flushes at once (readers may be a pipe). A closed stdout
/// is ignored: the node keeps running and leaves cleanly.
pub fn print_lines<S: AsRef<str>>(lines: &[S]) {
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{}", l.as_ref());
    }
    let _ = out.flush();
}

/// The program: runs a node on `socket`, reading commands from stdin and printing events
/// to stdout, until the user leaves (exit code 0) or joining fails (exit code 1).
///
/// On a terminal it uses the line editor (`terminal`), with colour unless `NO_COLOR` is
/// set; on pipes, plain lines; with `json`, one JSON object per line.
///
/// With `store`, the node starts from what it holds and keeps its state there.
pub async fn run(
    cfg: NodeConfig,
    socket: UdpSocket,
    security: Security,
    store: Option<Store>,
    json: bool,
) -> ExitCode {
    use std::io::IsTerminal;
    let stdout_tty = std::io::stdout().is_terminal();
    let interactive = !json && stdout_tty && std::io::stdin().is_terminal();
    let mut out = UserOutput {
        json,
        style: Style::for_output(stdout_tty && !json),
        printer: None,
    };
    let prompt = format!("{}@{}> ", cfg.name, cfg.addr);
    let history = crate::identity::default_path()
        .parent()
        .map(|d| d.join(format!("history-{}", cfg.name)));
    if json {
        out.line(
            serde_json::json!({"event": "listening", "addr": cfg.addr.to_string()}).to_string(),
        );
    } else {
        out.line(format!("listening on {}", cfg.addr));
    }
    if security.room_key.is_none() {
        eprintln!(
            "warning: no room key: this room is unauthenticated (anyone who can reach it can \
             join, read and post); create a key with `ringchat keygen --room FILE` and start \
             every member with --room-key-file FILE"
        );
    }
    let mut handle = match spawn_stored(socket, cfg, security, store, Loss::default()) {
        Ok(h) => h,
        Err(e) => {
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
            Event::Joined { .. } => {
                if let Some(commands) = input.take() {
                    if interactive {
                        match terminal::start(
                            prompt.clone(),
                            names.clone(),
                            history.clone(),
                            commands.clone(),
                        ) {
                            Ok(p) => {
                                out.printer = Some(p);
                                // Learn the members' names for completion, quietly.
                                seeding_names =
                                    commands.send(Request::Command(Command::List)).is_ok();
                            }
                            Err(e) => {
                                eprintln!("warning: no line editor ({e}); reading plain lines");
                                tokio::spawn(read_stdin(commands));
                            }
                        }
                    } else {
                        tokio::spawn(read_stdin(commands));
                    }
                }
            }
            Event::Members(_) if seeding_names => {
                seeding_names = false;
                continue;
            }
            _ => {}
        }
        out.event(&ev);
    }
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

/// Where the program's lines go: stdout (plain, coloured or JSON), or above the prompt.
struct UserOutput {
    json: bool,
    style: Style,
    printer: Option<terminal::Printer>,
}

impl UserOutput {
    fn line(&mut self, line: String) {
        match &mut self.printer {
            Some(p) => {
                if p.print(line.clone()).is_err() {
                    print_lines(&[line]);
                }
            }
            None => print_lines(&[line]),
        }
    }

    fn event(&mut self, ev: &Event) {
        if self.json {
            return self.line(ui::render_json(ev));
        }
        for l in ui::render_styled(ev, &self.style) {
            self.line(l);
        }
    }

    /// The REPL's own lines (help, typing errors).
    fn say(&mut self, lines: Vec<String>) {
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
