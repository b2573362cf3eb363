//! Room-message ordering: the leader's [`Sequencer`], each member's [`HoldBackQueue`],
//! the [`History`] of delivered messages, the [`Outbox`] of this node's own
//! submissions awaiting commit, and the proof of each message's origin ([`Vouched`],
//! [`Pending`]).
//!
//! Pure data structures: no sending, no clocks. `proto::node` drives them.

mod history;
mod holdback;
mod outbox;
mod provenance;
mod sequencer;
mod submissions;
#[cfg(test)]
mod tests;

use crate::ids::{NodeId, OriginSeq, Seq};
use crate::wire::{ChatEntry, Submit};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use submissions::{Shown, Submissions};

pub use history::History;
pub use holdback::{HoldBackQueue, MAX_HOLDBACK};
pub use outbox::Outbox;
pub use provenance::{Chained, Pending, VOUCHED_ORIGINS, Vouched};
pub use sequencer::{Accepted, ClaimCheck, MAX_HELD_PER_ORIGIN, Sequencer};
