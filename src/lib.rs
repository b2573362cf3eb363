//! ringchat: a serverless group chat over UDP.
//!
//! # Module map
//!
//! ```text
//!  stdin ─► ui::parse ─Command─► driver ─► proto::Node ─poll_transmit─► UdpSocket
//!  stdout ◄─ ui::render ◄─Event──┘  ▲                                      │
//!                                   └──── handle_datagram ◄───────────────┘
//! ```
//!
//! - [`ids`]: newtypes for node ids, message ids, sequence numbers, clocks.
//! - [`wire`]: the datagram format (versioned postcard envelope) and size limits.
//! - [`proto`]: the pure protocol state machine ([`proto::Node`]): reliability layer,
//!   membership ring, leader sequencing, direct messages. No I/O, no clocks.
//! - [`driver`]: the tokio event loop: one UDP socket, one timer, the command channel.
//! - [`ui`]: parse a typed line into a [`proto::Command`]; render a [`proto::Event`].
//! - [`guard`]: the room key (sealing every datagram), replay windows, rate limits.
//! - [`identity`]: a user's ed25519 identity file, to which names are bound.
//! - [`logging`]: the log file, each line prefixed with the node's Lamport time.
//! - [`store`]: the node's SQLite database (history, offline-queue replicas, member
//!   table), written before anything is acknowledged and read back on restart.
//! - [`cli`]: command-line flags.

pub mod cli;
pub mod driver;
pub mod guard;
pub mod identity;
pub mod ids;
pub mod logging;
pub mod proto;
pub mod store;
pub mod terminal;
pub mod ui;
pub mod wire;
