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

/// Transport message id: unique per sending node, carried by every packet that must be
/// acked. It packs a stream number (the sender numbers its destination addresses in the
/// order it first sends to them) above [`MsgId::SEQ_BITS`] bits of per-stream number
/// (1, 2, 3, ...), so the ids one destination sees are contiguous and can be acked
/// cumulatively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MsgId(pub u64);

impl MsgId {
    /// Bits of the per-stream number.
    pub const SEQ_BITS: u32 = 40;
    /// The largest per-stream number.
    pub const MAX_SEQ: u64 = (1 << Self::SEQ_BITS) - 1;
    /// The largest stream number.
    pub const MAX_STREAM: u32 = (1 << (64 - Self::SEQ_BITS)) - 1;

    /// Number `seq` of stream `stream` (both masked to their widths).
    pub fn new(stream: u32, seq: u64) -> MsgId {
        MsgId((u64::from(stream & Self::MAX_STREAM) << Self::SEQ_BITS) | (seq & Self::MAX_SEQ))
    }

    /// The stream this id belongs to.
    pub fn stream(self) -> u32 {
        (self.0 >> Self::SEQ_BITS) as u32
    }

    /// The number within its stream.
    pub fn seq(self) -> u64 {
        self.0 & Self::MAX_SEQ
    }
}

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
