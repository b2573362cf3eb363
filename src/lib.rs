//! ringchat: a serverless group chat over UDP.
//!
//! # Module map
//!
//! ```text
//!  you type ─► program ─ui::parse─Request─► driver (node task) ─► proto::Node ─► UdpSocket
//!  stdout   ◄─ program ◄─ui::render──Output──┘   ▲                                │
//!                                                └────── handle_datagram ◄────────┘
//! ```
//!
//! - [`ids`]: newtypes for node ids, message ids, sequence numbers, clocks.
//! - [`wire`]: the datagram format (versioned postcard envelope) and size limits.
//! - [`proto`]: the pure protocol state machine ([`proto::Node`]): reliability layer,
//!   membership ring, the room log (leader proposals committed by a majority of the
//!   voting configuration, at most 7 voters, terms, recovery; in larger rooms committed
//!   entries reach the other members through a relay tree), direct messages. No I/O, no
//!   clocks.
//! - [`driver`]: the node task (tokio): one UDP socket, one timer, the command channel,
//!   the database (written behind by a thread of its own), the guard (every datagram in
//!   and out goes through it), shutdown. It prints nothing and reads no terminal.
//! - [`program`]: the interactive program on top of a node task: the full-screen client
//!   on a terminal ([`program::tui`]), or line mode for pipes, `--json` and `--line`
//!   ([`program::line`], or the line editor [`program::terminal`]); it prints what the
//!   node says. It uses [`driver`]; nothing below it uses it.
//! - [`ui`]: parse a typed line into a [`proto::Command`]; render a [`proto::Event`].
//! - [`guard`]: pairwise Noise sessions between members (every datagram authenticated to
//!   its sender), admission (a one-time invitation, a member's pair key or the room key
//!   lets a node ask for a join key of its own; handshakes go under pair keys), one-time
//!   invitations, replay windows, rate limits.
//! - [`identity`]: a user's ed25519 identity file, to which names are bound.
//! - [`logging`]: the log file, each line prefixed with its node's Lamport time.
//! - [`store`]: the node's SQLite database (history, offline-queue replicas, member
//!   table), written before anything is acknowledged, read back on restart and for a
//!   member catching up on what memory no longer holds.
//! - [`cli`]: command-line flags.

pub mod cli;
pub mod driver;
pub mod guard;
pub mod identity;
pub mod ids;
pub mod logging;
pub mod program;
pub mod proto;
pub mod store;
pub mod ui;
pub mod wire;
