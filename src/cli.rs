//! Command-line flags.

use crate::program::invitation::{self, Invitation};
use crate::program::room_key::KeySources;
use crate::proto::NodeConfig;
use crate::wire::{MAX_NAME_BYTES, valid_name};
use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// `ringchat --name NAME --port PORT [--addr IP] [--join HOST:PORT] [-v]`
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ringchat",
    version,
    about = "A serverless group chat over UDP: nodes form a ring, a leader orders the room.",
    after_help = "Without --join, creates a new room and leads it. A room is keyed: its \
                  creator makes a key (kept in its data directory) and prints an invitation, \
                  one line holding its address and the key, that a newcomer passes to --join; \
                  any member prints one with `invite`. A later flag overrides an earlier one, \
                  so `./s2 --join 127.0.0.1:5003` works.\n\n\
                  Examples:\n  \
                  ringchat --name alice --port 5001                      create a room\n  \
                  ringchat --name bob --port 5002 --join ringchat1:127.0.0.1:5001/...  join it\n  \
                  ringchat keygen --room room.key                        make a room key\n  \
                  ringchat --name carol --port 5003 --join 127.0.0.1:5001 --room-key-file room.key\n  \
                  ringchat invite --at 127.0.0.1:5001 --room room.key    print an invitation\n  \
                  ringchat --name dave --port 5004 --insecure            an open room, no key\n  \
                  ringchat --name bot --port 0 --join ringchat1:... --json   one JSON object per event\n\n\
                  On a terminal ringchat opens a full-screen chat (--line for a line editor \
                  instead). Type `help` in the room for its commands.",
    args_override_self = true,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Something other than running a node.
    #[command(subcommand)]
    pub command: Option<Tool>,
    /// Your name in the room (1 to 32 bytes, no spaces or commas).
    #[arg(long, required = true, value_parser = parse_name)]
    pub name: Option<String>,
    /// UDP port to listen on; 0 picks a free one (printed at start).
    #[arg(long, required = true)]
    pub port: Option<u16>,
    /// The room key file (made by `ringchat keygen --room FILE`, or by a node that creates
    /// a room with this flag and no such file); every member needs the same key. Without
    /// it, a node creating a room makes a key of its own (kept in its data directory).
    #[arg(long, value_name = "FILE", env = "RINGCHAT_ROOM_KEY_FILE")]
    pub room_key_file: Option<PathBuf>,
    /// Use the local room key that every node of yours on this machine shares
    /// (~/.local/share/ringchat/local-room.key, made on first use) unless an invitation,
    /// --room-key-file or --insecure says otherwise. ./s1, ./s2 and ./s3 pass it.
    #[arg(long)]
    pub local_key: bool,
    /// An open room: no key, so anyone who can reach it can join, read and post. Said at
    /// every start and in `status`. Without it, a room is keyed.
    #[arg(long)]
    pub insecure: bool,
    /// Your identity file (an ed25519 secret, created on first run, readable by you only);
    /// your name in a room is bound to it. Default: ~/.local/share/ringchat/identity.
    #[arg(long, value_name = "FILE", env = "RINGCHAT_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Datagrams accepted per second from one source address; more are dropped unread.
    #[arg(long, default_value_t = crate::driver::DEFAULT_RATE_LIMIT, value_parser = clap::value_parser!(u32).range(10..))]
    pub rate_limit: u32,
    /// The address to listen on, which other members use to reach you.
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_addr)]
    pub addr: IpAddr,
    /// Join the room with an invitation (`ringchat1:...`, printed by a member's `invite`),
    /// or through a member's address (any member, not only the leader) when the key comes
    /// from elsewhere (--room-key-file, --local-key, a restart) or the room is open
    /// (--insecure).
    #[arg(long, value_name = "INVITATION|HOST:PORT", value_parser = parse_contact)]
    pub join: Option<Contact>,
    /// One JSON object per event on stdout (commands still come from stdin); see the
    /// README for the shapes.
    #[arg(long)]
    pub json: bool,
    /// On a terminal, a line editor (lines scroll by, typed below them) instead of the
    /// full-screen client.
    #[arg(long)]
    pub line: bool,
    /// Also print the log to stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Where this node keeps its history, kept private messages and member table
    /// (SQLite). Default: ~/.local/share/ringchat/<name>-<port>/.
    #[arg(long, value_name = "DIR", env = "RINGCHAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep nothing on disk: no database, no log file (unless --log-dir is given), no
    /// line-editor history; no new identity file (unless --identity is given): an
    /// existing one is used, else an identity for this run only; and no room key file (a
    /// new room's key lives in memory, unless --room-key-file is given).
    #[arg(long, conflicts_with = "data_dir")]
    pub ephemeral: bool,
    /// Directory for the log file `chat_<port>.log` (one per run; the previous run's is
    /// kept as `chat_<port>.log.1`). Default: the working directory, or no log file at all
    /// with --ephemeral.
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Milliseconds before an unacknowledged message is resent to a peer whose round trip
    /// is not measured yet; also the longest wait between resends to a peer measured
    /// faster (a slower path's timeout may reach 4 times it).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub ack_timeout_ms: u64,
    /// Resends before a peer is reported unreachable.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub max_retries: u32,
    /// Room messages each node keeps in its history.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub history_limit: u64,
    /// Recent room messages a newcomer is shown when it joins.
    #[arg(long, default_value_t = 100)]
    pub join_history: usize,
    /// Milliseconds between heartbeats to the ring successor.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(5..=60_000))]
    pub heartbeat_ms: u64,
    /// Heartbeat intervals of silence before a neighbour is suspected and probed; it is
    /// declared dead after one and a half times as long.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub suspect_after: u32,
    /// Seconds a departed member stays in the member table (`list`, the sidebar) once it
    /// is offline, if nobody holds messages for it; the leader's setting is the room's.
    #[arg(long, value_name = "SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=315_360_000))]
    pub forget_after: u64,
}

/// How the program talks to the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The full-screen client (a terminal, and neither `--json` nor `--line`).
    FullScreen,
    /// One line per event: the line editor on a terminal, plain lines on pipes.
    Line,
    /// One JSON object per event.
    Json,
}

/// The terminals the program runs on: which of its standard streams are terminals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Terminals {
    /// Standard input.
    pub stdin: bool,
    /// Standard output.
    pub stdout: bool,
    /// Standard error.
    pub stderr: bool,
}

impl Terminals {
    /// The process's own standard streams.
    pub fn of_process() -> Terminals {
        use std::io::IsTerminal;
        Terminals {
            stdin: std::io::stdin().is_terminal(),
            stdout: std::io::stdout().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
        }
    }
}

/// Where `--join` points: an invitation, or a member's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    /// `host:port` of a member.
    Address(String),
    /// An invitation: a member's address and the room key.
    Invitation(Invitation),
}

impl Contact {
    /// The member's address, `host:port`.
    pub fn address(&self) -> &str {
        match self {
            Contact::Address(a) => a,
            Contact::Invitation(i) => &i.contact,
        }
    }
}

/// Tools besides running a node.
#[derive(Subcommand, Debug, Clone)]
pub enum Tool {
    /// Write a fresh random room key to a new file (readable by you only).
    Keygen {
        /// The file to create (an existing file is never overwritten).
        #[arg(long, value_name = "FILE")]
        room: PathBuf,
    },
    /// Print an invitation to a room: a member's address and the room key, as one line
    /// that a newcomer passes to --join. Whoever holds it can join the room and read it.
    #[command(group(clap::ArgGroup::new("key").required(true).args(["room", "local_key"])))]
    Invite {
        /// The member the newcomer joins through, `host:port` (yours, say).
        #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
        at: String,
        /// The room key file.
        #[arg(long, value_name = "FILE")]
        room: Option<PathBuf>,
        /// The local room key (see `ringchat --help`), as ./s1, ./s2 and ./s3 use.
        #[arg(long)]
        local_key: bool,
    },
}

fn parse_contact(s: &str) -> Result<Contact, String> {
    if invitation::looks_like_one(s) {
        return Invitation::parse(s)
            .map(Contact::Invitation)
            .map_err(|e| format!("not a usable invitation: {e}"));
    }
    Ok(Contact::Address(s.to_string()))
}

fn parse_host_port(s: &str) -> Result<String, String> {
    // The same rule as an invitation's address.
    let probe = Invitation {
        contact: s.to_string(),
        key: [0; crate::guard::KEY_BYTES],
        once: true,
    };
    match Invitation::parse(&probe.to_string()) {
        Ok(_) => Ok(s.to_string()),
        Err(_) => Err("want HOST:PORT (an IPv6 address in brackets: [::1]:5001)".into()),
    }
}

fn parse_name(s: &str) -> Result<String, String> {
    if valid_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "a name is 1 to {MAX_NAME_BYTES} bytes with no spaces or commas"
        ))
    }
}

fn parse_addr(s: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = s.parse().map_err(|e| format!("{e}"))?;
    if ip.is_unspecified() {
        return Err("give the address other members reach you at, not a wildcard".into());
    }
    Ok(ip)
}

impl Args {
    /// The invitation `--join` gives, if it gives one.
    pub fn invitation(&self) -> Option<&Invitation> {
        match &self.join {
            Some(Contact::Invitation(i)) => Some(i),
            _ => None,
        }
    }

    /// Where the room key may come from, as these flags give them (see
    /// [`crate::program::room_key`]); `local_key` is where `--local-key` points
    /// ([`crate::program::room_key::local_key_path`]).
    pub fn key_sources<'a>(&'a self, local_key: &'a std::path::Path) -> KeySources<'a> {
        KeySources {
            insecure: self.insecure,
            invitation: self.invitation(),
            room_key_file: self.room_key_file.as_deref(),
            local_key: self.local_key.then_some(local_key),
            contact: match &self.join {
                Some(Contact::Address(a)) => Some(a.as_str()),
                _ => None,
            },
        }
    }

    /// Resolves `--join` to one socket address (a host name is looked up).
    pub fn resolve_join(&self) -> Result<Option<SocketAddr>, String> {
        let Some(contact) = &self.join else {
            return Ok(None);
        };
        let j = contact.address();
        let mut addrs = j
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve --join {j}: {e}"))?;
        addrs
            .find(|a| a.is_ipv4() == self.addr.is_ipv4())
            .map(Some)
            .ok_or_else(|| format!("--join {j} has no address of the same family as --addr"))
    }

    /// How to talk to the user on `terminals`, and a note to print when the full-screen
    /// client was wanted but cannot be had (`-v` writes the log on the same terminal).
    pub fn mode(&self, terminals: Terminals) -> (Mode, Option<&'static str>) {
        if self.json {
            return (Mode::Json, None);
        }
        if self.line || !terminals.stdin || !terminals.stdout {
            return (Mode::Line, None);
        }
        if self.verbose && terminals.stderr {
            let note = "note: -v writes the log on this terminal, so the line mode is used; \
                        for the full-screen client, send the log elsewhere (2>FILE)";
            return (Mode::Line, Some(note));
        }
        (Mode::FullScreen, None)
    }

    /// The data directory for a node listening on `port`, or `None` with `--ephemeral`.
    pub fn data_dir(&self, port: u16) -> Option<PathBuf> {
        if self.ephemeral {
            return None;
        }
        Some(self.data_dir.clone().unwrap_or_else(|| {
            crate::store::default_dir(self.name.as_deref().unwrap_or_default(), port)
        }))
    }

    /// Where the log file goes: `--log-dir`, else the working directory, or nowhere with
    /// `--ephemeral`.
    pub fn log_dir(&self) -> Option<PathBuf> {
        match &self.log_dir {
            Some(dir) => Some(dir.clone()),
            None if self.ephemeral => None,
            None => Some(PathBuf::from(".")),
        }
    }

    /// Where the line editor keeps what was typed across runs, or `None` with
    /// `--ephemeral` (then only for this run).
    pub fn editor_history(&self) -> Option<PathBuf> {
        let name = self.name.as_deref().unwrap_or_default();
        let file = format!("history-{name}");
        (!self.ephemeral).then(|| crate::identity::data_home().join(file))
    }

    /// Whether to create the identity file when there is none: unless `--ephemeral`
    /// (then only when `--identity` names one).
    pub fn may_create_identity(&self) -> bool {
        !self.ephemeral || self.identity.is_some()
    }

    /// The node settings for a node listening at `local`.
    pub fn node_config(&self, local: SocketAddr, join: Option<SocketAddr>) -> NodeConfig {
        let mut cfg = NodeConfig::new(self.name.clone().unwrap_or_default(), local, join);
        cfg.ack_timeout = Duration::from_millis(self.ack_timeout_ms);
        cfg.max_retries = self.max_retries;
        cfg.heartbeat_interval = Duration::from_millis(self.heartbeat_ms);
        cfg.history_limit = self.history_limit as usize;
        cfg.join_history = self.join_history;
        cfg.suspect_after = self.suspect_after;
        cfg.forget_after = Duration::from_secs(self.forget_after);
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_join_overrides_earlier() {
        let a = Args::try_parse_from([
            "ringchat",
            "--name",
            "bob",
            "--port",
            "5002",
            "--join",
            "127.0.0.1:5001",
            "--join",
            "127.0.0.1:5003",
        ])
        .unwrap();
        assert_eq!(a.join, Some(Contact::Address("127.0.0.1:5003".into())));
    }

    /// `--join` takes an invitation or an address; a damaged invitation is a bad flag
    /// (clap's error, exit code 2), never taken for a host name.
    #[test]
    fn join_takes_an_invitation_or_an_address() {
        let invitation = Invitation {
            contact: "127.0.0.1:5001".into(),
            key: [5; crate::guard::KEY_BYTES],
            once: false,
        };
        let token = invitation.to_string();
        let parse = |join: &str| {
            Args::try_parse_from(["ringchat", "--name", "b", "--port", "1", "--join", join])
        };
        let a = parse(&token).unwrap();
        assert_eq!(a.invitation(), Some(&invitation));
        assert_eq!(
            a.resolve_join().unwrap(),
            Some("127.0.0.1:5001".parse().unwrap())
        );
        let sources = a.key_sources(std::path::Path::new("local"));
        assert_eq!(
            sources.contact, None,
            "an invitation is not an address alone"
        );
        let a = parse("127.0.0.1:5001").unwrap();
        assert_eq!(a.invitation(), None);
        assert_eq!(
            a.key_sources(std::path::Path::new("l")).contact,
            Some("127.0.0.1:5001")
        );
        let err = parse(&token[..token.len() - 3]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("not a usable invitation") && text.contains("cut short"),
            "{text}"
        );
    }

    #[test]
    fn insecure_and_local_key_are_flags_and_invite_wants_a_key() {
        let a =
            Args::try_parse_from(["ringchat", "--name", "a", "--port", "1", "--insecure"]).unwrap();
        let local = std::path::Path::new("local");
        assert!(a.key_sources(local).insecure);
        assert_eq!(a.key_sources(local).local_key, None);
        let a = Args::try_parse_from(["ringchat", "--name", "a", "--port", "1", "--local-key"])
            .unwrap();
        assert_eq!(a.key_sources(local).local_key, Some(local));
        let invite = |extra: &[&str]| {
            let mut args = vec!["ringchat", "invite", "--at", "127.0.0.1:5001"];
            args.extend(extra);
            Args::try_parse_from(args)
        };
        assert!(matches!(
            invite(&["--local-key"]).unwrap().command,
            Some(Tool::Invite {
                local_key: true,
                ..
            })
        ));
        assert!(invite(&["--room", "k"]).is_ok());
        assert!(invite(&[]).is_err(), "a key is needed");
        assert!(invite(&["--room", "k", "--local-key"]).is_err(), "one key");
        assert!(
            Args::try_parse_from(["ringchat", "invite", "--at", "nowhere", "--local-key"]).is_err(),
            "HOST:PORT"
        );
    }

    #[test]
    fn keygen_needs_no_name_or_port() {
        let a = Args::try_parse_from(["ringchat", "keygen", "--room", "k"]).unwrap();
        assert!(matches!(a.command, Some(Tool::Keygen { .. })));
        assert!(Args::try_parse_from(["ringchat", "keygen"]).is_err());
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(Args::try_parse_from(["ringchat", "--name", "a b", "--port", "1"]).is_err());
        assert!(Args::try_parse_from(["ringchat", "--name", "a", "--port", "70000"]).is_err());
        assert!(Args::try_parse_from(["ringchat", "--name", "a"]).is_err());
        assert!(
            Args::try_parse_from([
                "ringchat", "--name", "a", "--port", "1", "--addr", "0.0.0.0"
            ])
            .is_err()
        );
        assert!(
            Args::try_parse_from(["ringchat", "--name", "a", "--port", "1", "--bogus"]).is_err()
        );
    }

    #[test]
    fn data_dir_defaults_per_name_and_port_and_ephemeral_has_none() {
        let a = Args::try_parse_from(["ringchat", "--name", "ann", "--port", "5001"]).unwrap();
        assert!(a.data_dir(5001).unwrap().ends_with("ringchat/ann-5001"));
        let e = Args::try_parse_from(["ringchat", "--name", "a", "--port", "1", "--ephemeral"])
            .unwrap();
        assert_eq!(e.data_dir(1), None);
        let d = Args::try_parse_from(["ringchat", "--name", "a", "--port", "1", "--data-dir", "x"])
            .unwrap();
        assert_eq!(d.data_dir(1), Some(PathBuf::from("x")));
        assert!(
            Args::try_parse_from([
                "ringchat",
                "--name",
                "a",
                "--port",
                "1",
                "--ephemeral",
                "--data-dir",
                "x"
            ])
            .is_err(),
            "--ephemeral and --data-dir contradict each other"
        );
    }

    #[test]
    fn ephemeral_writes_nothing_unless_asked() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["ringchat", "--name", "ann", "--port", "1"];
            args.extend(extra);
            Args::try_parse_from(args).unwrap()
        };
        let kept = parse(&[]);
        assert_eq!(kept.log_dir(), Some(PathBuf::from(".")));
        assert!(
            kept.editor_history()
                .unwrap()
                .ends_with("ringchat/history-ann")
        );
        assert!(kept.may_create_identity());
        let none = parse(&["--ephemeral"]);
        assert_eq!(none.log_dir(), None);
        assert_eq!(none.editor_history(), None);
        assert!(!none.may_create_identity());
        let asked = parse(&["--ephemeral", "--log-dir", "logs", "--identity", "id"]);
        assert_eq!(asked.log_dir(), Some(PathBuf::from("logs")));
        assert!(asked.may_create_identity());
    }

    #[test]
    fn full_screen_only_on_terminals_and_unless_asked_otherwise() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["ringchat", "--name", "ann", "--port", "1"];
            args.extend(extra);
            Args::try_parse_from(args).unwrap()
        };
        let all = Terminals {
            stdin: true,
            stdout: true,
            stderr: true,
        };
        let piped = Terminals {
            stdout: false,
            ..all
        };
        assert_eq!(parse(&[]).mode(all), (Mode::FullScreen, None));
        assert_eq!(parse(&[]).mode(piped), (Mode::Line, None));
        assert_eq!(parse(&["--line"]).mode(all), (Mode::Line, None));
        assert_eq!(parse(&["--json"]).mode(all), (Mode::Json, None));
        assert_eq!(parse(&["--json"]).mode(piped), (Mode::Json, None));
        let (mode, note) = parse(&["-v"]).mode(all);
        assert_eq!(mode, Mode::Line);
        assert!(note.is_some_and(|n| n.contains("2>FILE")));
        let log_elsewhere = Terminals {
            stderr: false,
            ..all
        };
        assert_eq!(parse(&["-v"]).mode(log_elsewhere), (Mode::FullScreen, None));
    }

    #[test]
    fn join_resolves_or_says_why() {
        let mut a =
            Args::try_parse_from(["ringchat", "--name", "a", "--port", "1", "--join", "nope"])
                .unwrap();
        assert!(a.resolve_join().unwrap_err().contains("cannot resolve"));
        a.join = Some(Contact::Address("127.0.0.1:9".into()));
        assert_eq!(
            a.resolve_join().unwrap(),
            Some("127.0.0.1:9".parse().unwrap())
        );
    }
}
