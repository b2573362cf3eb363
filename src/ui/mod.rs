//! The REPL's two halves: [`parse`] turns a typed line into an [`Input`], [`render`] turns
//! an [`Event`] into the lines to print. No protocol decisions here.
//!
//! A line whose first word is a command name is that command; a line starting with `/` is
//! a command too (`/list`), and an unknown `/word` is an error; so is a lone word that
//! looks like a mistyped command name (`lsit`); any other line is a room message (as
//! `send_all`). The irssi habits `/me <action>` and `/msg <name> <text>` work too.

use crate::proto::Command;
use thiserror::Error;

mod json;
mod render;

pub use json::{invitation as json_invitation, render_json, render_json_keyed};
pub use render::{
    INVITATION_INTRO, Narrator, OPEN_ROOM_WARNING, Style, invite_lines, key_line, local_time,
    render, render_styled,
};

/// What a typed line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A command for the node.
    Command(Command),
    /// Show the help text.
    Help,
    /// Leave and exit.
    Exit,
    /// Clear the terminal screen.
    Clear,
    /// `/me <action>`: a room message saying what the sender does (the program, which
    /// knows the sender's name, makes it `* <name> <action>`).
    Me(String),
    /// Show the room's invitation (the program knows it; the node does not).
    Invite,
    /// A blank line: nothing.
    Nothing,
}

/// A room text cut into pieces of at most `max` bytes (`max` at least 4), in order, so
/// that a long paste goes out as several messages instead of being refused. Cuts fall on
/// character boundaries, at the last space (or other whitespace) that fits when there is
/// one, the whitespace at a cut dropped; a text within `max` comes back whole.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let at_space = rest[cut..].starts_with(char::is_whitespace);
        let space = rest[..cut].rfind(char::is_whitespace).filter(|&s| s > 0);
        if let (false, Some(space)) = (at_space, space) {
            cut = space;
        }
        let piece = rest[..cut].trim_end();
        if !piece.is_empty() {
            pieces.push(piece.to_string());
        }
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest.to_string());
    }
    pieces
}

/// The room message for `/me <action>` by `name`.
pub fn me_text(name: &str, action: &str) -> String {
    format!("* {name} {action}")
}

/// A line that could not be parsed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// `/word` where `word` is no command.
    #[error("unknown command {0} (type help)")]
    UnknownCommand(String),
    /// A known command with the wrong arguments.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// An address that does not resolve.
    #[error("cannot resolve {0} (want host:port)")]
    BadAddress(String),
    /// A lone word close to a command name: probably a typo, so not posted.
    #[error(
        "unknown command {word} (did you mean {command}?); to post a single word, type send_all {word}"
    )]
    Typo {
        /// What was typed.
        word: String,
        /// The command name it is closest to.
        command: &'static str,
    },
}

/// The command names a lone typed word is compared with, to catch typos.
const COMMAND_NAMES: [&str; 12] = [
    "list", "status", "history", "help", "exit", "quit", "dereg", "reg", "send", "send_all",
    "clear", "invite",
];

/// Edit distance with transpositions (optimal string alignment), over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The command name a lone word is probably a typo of: within 2 edits of a name of five
/// letters or more, within 1 of a shorter one (so `hello` and `hey` are not taken for
/// `help`), ASCII case ignored.
fn typo_of(word: &str) -> Option<&'static str> {
    let lower = word.to_ascii_lowercase();
    COMMAND_NAMES
        .iter()
        .map(|c| (edit_distance(&lower, c), *c))
        .filter(|(d, c)| *d <= if c.len() >= 5 { 2 } else { 1 })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// How many room messages `history` shows without a count.
pub const DEFAULT_HISTORY_LINES: usize = 20;

fn resolve(addr: &str) -> Option<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs().ok()?.next()
}

/// The commands as `help` shows them: what to type, and what it does.
const COMMANDS: [(&str, &str); 14] = [
    ("send_all <text>", "post to the room"),
    (
        "send <name>[,<name>...] <text>",
        "private message, with receipts",
    ),
    ("list", "members, ONLINE/OFFLINE, leader"),
    ("status", "ring, neighbours, leader, clock, counters"),
    ("history [N]", "the last N room messages (20 if no N)"),
    (
        "history --search <word> [N]",
        "the last N that mention word",
    ),
    ("dereg [<name>]", "go offline; messages for you are kept"),
    (
        "reg [<name>] [<host:port>]",
        "come back and get what was kept",
    ),
    ("/me <action>", "post `* <you> <action>` to the room"),
    ("/msg <name> <text>", "the same as send"),
    ("clear | /clear", "clear the terminal screen"),
    ("invite", "the room's invitation, for a newcomer's --join"),
    ("help", "this text"),
    (
        "exit | quit | //exit",
        "leave and exit (Ctrl-D, Ctrl-C too)",
    ),
];

/// Examples shown below the commands.
const EXAMPLES: [&str; 4] = [
    "send_all lunch at noon?",
    "send bob,carol see you",
    "history --search lunch",
    "reg alice 10.0.0.5:5001",
];

/// The help text, one string a line: the commands in two aligned columns, then
/// examples, within 80 columns.
pub fn help() -> Vec<String> {
    let width = COMMANDS.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut lines = vec!["commands (a line that is not a command goes to the room):".to_string()];
    lines.extend(
        COMMANDS
            .iter()
            .map(|(command, what)| format!("  {command:width$}  {what}")),
    );
    // Two columns of examples, aligned too.
    let left = EXAMPLES
        .iter()
        .step_by(2)
        .map(|e| e.len())
        .max()
        .unwrap_or(0);
    for (i, pair) in EXAMPLES.chunks(2).enumerate() {
        let head = if i == 0 { "examples:" } else { "" };
        let row = format!(
            "{head:9} {:left$}   {}",
            pair[0],
            pair.get(1).unwrap_or(&"")
        );
        lines.push(row.trim_end().to_string());
    }
    lines.push("a line starting with / is always a command: /list, /send bob hi".into());
    lines.push("a lone word like a command (lsit) is refused; send_all lsit posts it".into());
    lines.push("Tab completes commands and member names (repeat for the next one).".into());
    lines.push(
        "full screen: PgUp/PgDn or the wheel scroll, Esc back down; Up/Down: typed lines".into(),
    );
    lines
}

/// Parses one typed line.
pub fn parse(line: &str) -> Result<Input, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(Input::Nothing);
    }
    if trimmed == "//exit" {
        return Ok(Input::Exit);
    }
    let slash = trimmed.starts_with('/');
    let body = trimmed.strip_prefix('/').unwrap_or(trimmed);
    let (word, rest) = match body.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim_start()),
        None => (body, ""),
    };
    let no_args = |input: Input, usage| {
        if rest.is_empty() {
            Ok(input)
        } else {
            Err(ParseError::Usage(usage))
        }
    };
    match word {
        "send_all" => Ok(Input::Command(Command::SendAll {
            text: rest.to_string(),
        })),
        "me" if slash => {
            if rest.is_empty() {
                return Err(ParseError::Usage("/me <action>"));
            }
            Ok(Input::Me(rest.to_string()))
        }
        "clear" => no_args(Input::Clear, "clear"),
        "send" | "msg" if word == "send" || slash => {
            const USAGE: &str = "send <name>[,<name>...] <text>";
            let (names, text) = rest
                .split_once(char::is_whitespace)
                .ok_or(ParseError::Usage(USAGE))?;
            let to: Vec<String> = names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            if to.is_empty() {
                return Err(ParseError::Usage(USAGE));
            }
            Ok(Input::Command(Command::Send {
                to,
                text: text.trim_start().to_string(),
            }))
        }
        "list" => no_args(Input::Command(Command::List), "list"),
        "dereg" => {
            let mut words = rest.split_whitespace();
            let name = words.next().map(str::to_string);
            if words.next().is_some() {
                return Err(ParseError::Usage("dereg [<name>]"));
            }
            Ok(Input::Command(Command::Dereg { name }))
        }
        "reg" => {
            const USAGE: &str = "reg [<name>] [<host:port>]";
            let words: Vec<&str> = rest.split_whitespace().collect();
            if words.len() > 2 {
                return Err(ParseError::Usage(USAGE));
            }
            let via = match words.get(1) {
                Some(a) => Some(resolve(a).ok_or(ParseError::BadAddress(a.to_string()))?),
                None => None,
            };
            Ok(Input::Command(Command::Reg {
                name: words.first().map(|s| s.to_string()),
                via,
            }))
        }
        "history" => {
            const USAGE: &str = "history [<count>] [--search <word>] (count 1 or more)";
            let mut count = DEFAULT_HISTORY_LINES;
            let mut search = None;
            let mut words = rest.split_whitespace();
            while let Some(w) = words.next() {
                match w {
                    "--search" | "-s" => {
                        let word = words.next().ok_or(ParseError::Usage(USAGE))?;
                        search = Some(word.to_string());
                    }
                    n => count = n.parse().map_err(|_| ParseError::Usage(USAGE))?,
                }
            }
            if count == 0 {
                return Err(ParseError::Usage(USAGE));
            }
            Ok(Input::Command(Command::History { count, search }))
        }
        "status" => no_args(Input::Command(Command::Status), "status"),
        "help" => no_args(Input::Help, "help"),
        "invite" => no_args(Input::Invite, "invite"),
        "exit" | "quit" => no_args(Input::Exit, "exit"),
        other if slash => Err(ParseError::UnknownCommand(format!("/{other}"))),
        other if rest.is_empty() && typo_of(other).is_some() => Err(ParseError::Typo {
            word: other.to_string(),
            command: typo_of(other).unwrap_or_default(),
        }),
        _ => Ok(Input::Command(Command::SendAll {
            text: trimmed.to_string(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Command {
        match parse(line) {
            Ok(Input::Command(c)) => c,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn plain_lines_go_to_the_room() {
        assert_eq!(
            cmd("hello there"),
            Command::SendAll {
                text: "hello there".into()
            }
        );
        assert_eq!(cmd("send_all  hi "), Command::SendAll { text: "hi".into() });
    }

    #[test]
    fn send_takes_one_or_more_names() {
        assert_eq!(
            cmd("send bob,carol  hi you"),
            Command::Send {
                to: vec!["bob".into(), "carol".into()],
                text: "hi you".into()
            }
        );
        assert_eq!(
            cmd("/send zoë ünïcode ✓"),
            Command::Send {
                to: vec!["zoë".into()],
                text: "ünïcode ✓".into()
            }
        );
        assert_eq!(
            parse("send bob"),
            Err(ParseError::Usage("send <name>[,<name>...] <text>"))
        );
    }

    #[test]
    fn commands_and_errors() {
        assert_eq!(cmd("list"), Command::List);
        assert_eq!(cmd("/status"), Command::Status);
        assert_eq!(parse("help"), Ok(Input::Help));
        assert_eq!(parse("invite"), Ok(Input::Invite));
        assert_eq!(parse("/invite"), Ok(Input::Invite));
        assert_eq!(parse("invite bob"), Err(ParseError::Usage("invite")));
        assert!(matches!(
            parse("invtie"),
            Err(ParseError::Typo {
                command: "invite",
                ..
            })
        ));
        for e in ["exit", "quit", "//exit", " /exit "] {
            assert_eq!(parse(e), Ok(Input::Exit), "{e}");
        }
        assert_eq!(parse("   "), Ok(Input::Nothing));
        assert_eq!(
            parse("/frobnicate x"),
            Err(ParseError::UnknownCommand("/frobnicate".into()))
        );
        assert_eq!(parse("list all"), Err(ParseError::Usage("list")));
    }

    /// A lone word close to a command name is refused, not posted; a longer line, a word
    /// far from every name, and `send_all word` are posted.
    #[test]
    fn lone_typos_of_commands_are_refused() {
        let typo = |word: &str, command| {
            Err(ParseError::Typo {
                word: word.into(),
                command,
            })
        };
        assert_eq!(parse("lsit"), typo("lsit", "list"));
        assert_eq!(parse("sttaus"), typo("sttaus", "status"));
        assert_eq!(parse("histroy"), typo("histroy", "history"));
        assert_eq!(parse("List"), typo("List", "list"));
        assert_eq!(
            parse("lsit").unwrap_err().to_string(),
            "unknown command lsit (did you mean list?); to post a single word, type send_all lsit"
        );
        for posted in ["hello", "hey", "yes", "thanks", "lsit please", "ok"] {
            assert_eq!(
                cmd(posted),
                Command::SendAll {
                    text: posted.into()
                },
                "{posted}"
            );
        }
        assert_eq!(
            cmd("send_all lsit"),
            Command::SendAll {
                text: "lsit".into()
            }
        );
    }

    /// Long texts are cut at character boundaries, at spaces when there are any, each
    /// piece within the limit, nothing lost but the spaces at the cuts.
    #[test]
    fn long_texts_are_split_within_the_limit() {
        let accents = "é".repeat(400);
        let pieces = split_text(&accents, 760);
        assert_eq!(pieces, ["é".repeat(380), "é".repeat(20)]);
        let words = "lunch at noon? ".repeat(60);
        let pieces = split_text(words.trim(), 100);
        for p in &pieces {
            let whole = p.split(' ').all(|w| ["lunch", "at", "noon?"].contains(&w));
            assert!(p.len() <= 100 && whole, "a word cut: {p:?}");
        }
        assert_eq!(pieces.join(" "), words.trim());
        let mixed = format!("{} {}", "a".repeat(50), "✓".repeat(30));
        for p in split_text(&mixed, 40) {
            assert!(p.len() <= 40 && !p.starts_with(' '), "{p:?}");
        }
        assert_eq!(split_text("short", 760), ["short"]);
        assert_eq!(split_text("", 760), [""]);
    }

    /// The irssi habits: `/me`, `/msg`, `/quit`, `/clear`.
    #[test]
    fn irssi_habits() {
        assert_eq!(parse("/me waves"), Ok(Input::Me("waves".into())));
        assert_eq!(me_text("alice", "waves"), "* alice waves");
        assert_eq!(parse("/me"), Err(ParseError::Usage("/me <action>")));
        assert_eq!(
            cmd("me too"),
            Command::SendAll {
                text: "me too".into()
            }
        );
        assert_eq!(
            cmd("/msg bob hi there"),
            Command::Send {
                to: vec!["bob".into()],
                text: "hi there".into()
            }
        );
        assert_eq!(
            cmd("msg bob hi"),
            Command::SendAll {
                text: "msg bob hi".into()
            }
        );
        assert_eq!(parse("/quit"), Ok(Input::Exit));
        assert_eq!(parse("/clear"), Ok(Input::Clear));
        assert_eq!(parse("clear"), Ok(Input::Clear));
    }

    #[test]
    fn help_is_aligned_and_fits_80_columns() {
        let lines = help();
        for l in &lines {
            assert!(l.chars().count() <= 80, "too wide: {l:?}");
        }
        // The descriptions start in one column, two spaces after the widest command.
        let column = 2 + "send <name>[,<name>...] <text>".len() + 2;
        for (line, (command, what)) in lines[1..].iter().zip(COMMANDS) {
            assert_eq!(line.find(what), Some(column), "{line:?}");
            assert!(line[2..].starts_with(command), "{line:?}");
        }
        let examples: Vec<&String> = lines.iter().skip(1 + COMMANDS.len()).take(2).collect();
        assert!(
            examples[0].starts_with("examples: send_all"),
            "{examples:?}"
        );
        assert_eq!(
            examples[0].find(EXAMPLES[1]),
            examples[1].find(EXAMPLES[3]),
            "{examples:?}"
        );
    }

    #[test]
    fn presence_and_history_commands() {
        assert_eq!(cmd("dereg"), Command::Dereg { name: None });
        assert_eq!(
            cmd("dereg x"),
            Command::Dereg {
                name: Some("x".into())
            }
        );
        assert_eq!(
            cmd("reg x 127.0.0.1:5001"),
            Command::Reg {
                name: Some("x".into()),
                via: Some("127.0.0.1:5001".parse().unwrap())
            }
        );
        assert_eq!(
            cmd("reg"),
            Command::Reg {
                name: None,
                via: None
            }
        );
        assert!(matches!(
            parse("reg x nowhere"),
            Err(ParseError::BadAddress(_))
        ));
        assert_eq!(
            cmd("history"),
            Command::History {
                count: 20,
                search: None
            }
        );
        assert_eq!(
            cmd("history 5"),
            Command::History {
                count: 5,
                search: None
            }
        );
        assert_eq!(
            cmd("history --search lunch 3"),
            Command::History {
                count: 3,
                search: Some("lunch".into())
            }
        );
        assert!(parse("history --search").is_err());
        assert!(parse("history many").is_err());
        assert!(parse("history lots").is_err());
        assert_eq!(
            parse("history 0"),
            Err(ParseError::Usage(
                "history [<count>] [--search <word>] (count 1 or more)"
            ))
        );
    }
}
