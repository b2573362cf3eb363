//! Newtypes for every identifier and counter that crosses module boundaries.
//!
//! Bare `u64`s are never passed around: a `Seq` cannot be confused with a `MsgId`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node's identity for its process lifetime: random, unique, compared by value
/// (Chang-Roberts elects the largest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Transport message id: unique per sending node, carried by every datagram that must be acked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MsgId(pub u64);

/// Global sequence number the leader gives a room message; the room's total order.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

impl Seq {
    /// The sequence number after this one.
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Per-origin number of a room message a node submitted (1, 2, 3, ...): with the origin's
/// `NodeId` it names a submission, so a retried submission is recognised and never posted twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OriginSeq(pub u64);

impl OriginSeq {
    /// The number after this one.
    pub fn next(self) -> OriginSeq {
        OriginSeq(self.0.saturating_add(1))
    }
}

/// Per-origin id of a direct message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DmId(pub u64);

/// A Lamport timestamp.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Lamport(pub u64);

impl fmt::Display for Lamport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Wall-clock time in milliseconds since the Unix epoch, as read by the sender's driver.
/// Only ever displayed; never used for ordering or timeouts.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct WallMillis(pub u64);
