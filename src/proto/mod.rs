//! The sans-IO protocol core: a deterministic state machine with no sockets, clocks,
//! threads or OS randomness. See [`node`] for how to drive it.

pub mod batch;
pub mod chat;
pub mod clock;
pub mod detector;
pub mod durable;
pub mod election;
pub mod event;
pub mod node;
pub mod offline;
pub mod packet;
pub mod reliable;
pub mod ring;
pub mod timers;

pub use durable::{Restored, Write};
pub use event::{Command, CommandError, Event, JoinError, MemberView, RingSeat, Stats, StatusView};
pub use node::{Node, NodeConfig};
pub use reliable::Transmit;
