//! The sans-IO protocol core: a deterministic state machine with no sockets, clocks,
//! threads or OS randomness. [`Node`] is the whole of it behind one API; the rest of the
//! crate uses only what is re-exported here.
//!
//! # Map
//!
//! ```text
//!  datagram ─► Node::handle_datagram ─► node::transport (decode, acks, duplicates)
//!                                          └─► node::dispatch ─► the owning part:
//!      node::ring       member table, heartbeats, failure detection, election
//!      node::room       the room log: hold-back, history, outbox, the role (follower,
//!                       recovering, leading, retiring), recovery after an election
//!      node::mail       direct messages, receipts, the offline queue and its hand-over
//!      node::life       join, admission, leave, dereg/reg, restart from disk
//!  acks, give-ups ─► node::token (which part sent it) ─► that part
//!  timers ─► Node::handle_timeout ─► the part that armed it
//!  outputs: node::context::Outputs (events, durable writes), node::transport (datagrams),
//!           node::room (reads of the database for a fetch, see `disk`)
//! ```
//!
//! The building blocks the parts own: [`batch`] (packing packets into datagrams, Nagle's
//! rule), `reliable` (message ids, resends, acks, duplicate windows), `packet`, `chat`
//! (sequencer, hold-back queue, history, outbox), `offline` (the offline queue), `ring`
//! (the member table), `detector`, `election` (Chang-Roberts), `clock` (Lamport),
//! `timers`, `event` (commands in, events out), `durable` (what is written to disk), `disk`
//! (what is read back from it to answer a fetch), `limits` (the join limits and the
//! anti-amplification budget towards strangers) and [`seal`] (room messages signed by
//! their origin, direct messages sealed to their recipient).

pub mod batch;
mod chat;
mod clock;
mod detector;
mod disk;
mod durable;
mod election;
mod event;
mod limits;
mod node;
mod offline;
mod packet;
mod reliable;
mod ring;
pub mod seal;
mod timers;

pub use chat::{History, MAX_HOLDBACK};
pub use disk::{ReadRange, read_run};
pub use durable::{HistorySource, Restored, ShownDirect, Write};
pub use event::{Command, CommandError, Event, JoinError, MemberView, RingSeat, Stats, StatusView};
pub use node::{Node, NodeConfig};
pub use reliable::Transmit;
pub use ring::Membership;

#[cfg(test)]
pub(crate) use ring::{MEMBER_WIRE_MAX, MEMBERS_PER_DATAGRAM};
