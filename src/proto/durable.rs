//! What a node keeps across restarts, as plain data: the [`Write`]s a node asks its
//! driver to make durable, and the [`Restored`] state it starts again from.
//!
//! The core never touches a disk. With [`NodeConfig::persist`](super::NodeConfig) set, it
//! queues a [`Write`] for every change worth keeping; the driver drains them with
//! [`Node::poll_write`](super::Node::poll_write) **before** sending any datagram of the
//! same input, so a message is on disk before its acknowledgement leaves.

use super::Event;
use crate::ids::{DmId, Lamport, NodeId, Seq, WallMillis};
use crate::wire::{ChatEntry, Epoch, Member, QueuedDm};
use serde::{Deserialize, Serialize};

/// How far the Lamport clock moves between two [`Write::Clock`]s.
pub const CLOCK_WRITE_STEP: u64 = 64;

/// One change to keep on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A room message (or a filler) was delivered, in sequence order.
    Delivered(ChatEntry),
    /// This node now holds a replica of a direct message kept for an offline member.
    Kept(QueuedDm),
    /// A kept message was handed over to `to`: drop it and never keep it again.
    HandedOver {
        /// The recipient.
        to: String,
        /// The sending node.
        origin: NodeId,
        /// The sender's id for the message.
        id: DmId,
    },
    /// This node holds an uncommitted copy of a room entry (a leader's proposal, its
    /// own included): on disk before it is acked, so a majority that acked still holds it
    /// after every member crashed. Replaces a copy of the same number; dropped once that
    /// number is delivered.
    Held(ChatEntry),
    /// A private message was shown (it is never shown again, even if a kept copy comes).
    DirectShown {
        /// The sending node.
        origin: NodeId,
        /// The sender's id for the message.
        id: DmId,
        /// What the user is shown: shown again after a restart if the program had not
        /// printed it when the node stopped.
        message: ShownDirect,
    },
    /// The voting configuration changed: the users in it, as of entry `at`.
    Voters {
        /// The voting users.
        voters: Vec<String>,
        /// The last entry applied.
        at: Seq,
    },
    /// This node's Lamport time moved on (written every `CLOCK_WRITE_STEP` ticks, so a
    /// restart starts at most that far behind; the history holds later times too).
    Clock(Lamport),
    /// The delivery point moved on to this number without a delivery (a welcome into the
    /// room, or a skip past messages nobody keeps): a restart before the next delivery goes
    /// on from here, so that the copies it held and acked past it are held again.
    DeliveryPoint(Seq),
    /// The member table or the leader changed (the Lamport time comes along).
    Room {
        /// Every entry of the member table.
        members: Vec<Member>,
        /// The leader and its election round.
        epoch: Option<Epoch>,
        /// This node's Lamport time.
        lamport: Lamport,
    },
}

/// A private message received, as the user is shown it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownDirect {
    /// The sender's user name.
    pub from: String,
    /// Every recipient it was written to.
    pub to: Vec<String>,
    /// The sender's Lamport time.
    pub lamport: Lamport,
    /// The sender's wall clock when written.
    pub sent_at: WallMillis,
    /// The text.
    pub text: String,
    /// Whether it was kept while this user was offline.
    pub offline: bool,
}

impl ShownDirect {
    /// The event that shows it to the user; `history` if it is shown again.
    pub fn event(self, history: bool) -> Event {
        Event::Direct {
            from: self.from,
            to: self.to,
            lamport: self.lamport,
            sent_at: self.sent_at,
            text: self.text,
            offline: self.offline,
            mine: false,
            history,
        }
    }
}

/// The state a restarted node starts from (read from disk by the driver).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Delivered room messages, oldest first (the last `history_limit` are used).
    pub history: Vec<ChatEntry>,
    /// Replicas of kept direct messages, in the order they were kept.
    pub kept: Vec<QueuedDm>,
    /// Kept messages already handed over (recipient, origin, id), oldest first.
    pub handed_over: Vec<(String, NodeId, DmId)>,
    /// Private messages shown (origin, id), oldest first.
    pub directs_shown: Vec<(NodeId, DmId)>,
    /// The member table as last written.
    pub members: Vec<Member>,
    /// The last known leader.
    pub epoch: Option<Epoch>,
    /// The highest Lamport time written.
    pub lamport: Lamport,
    /// The voting configuration as last written, and the entry it is as of.
    pub voters: Option<(Seq, Vec<String>)>,
    /// Uncommitted copies held (see [`Write::Held`]), by number.
    pub held: Vec<ChatEntry>,
    /// The last [`Write::DeliveryPoint`], if nothing was delivered after it.
    pub delivery_point: Option<Seq>,
}

impl Restored {
    /// Whether there is nothing to restore (a first start).
    pub fn is_empty(&self) -> bool {
        self.history.is_empty() && self.kept.is_empty() && self.members.is_empty()
    }

    /// The next number to deliver: the delivery point moved to since the last delivery,
    /// or the number after the last delivered message (1 if none).
    pub fn next_seq(&self) -> Seq {
        self.delivery_point
            .unwrap_or_else(|| self.history.last().map_or(Seq(1), |e| e.seq.next()))
    }
}

/// Where a node reads the room's history beyond what it keeps in memory: the driver's
/// database. [`Node::handle_command_with`](crate::proto::Node::handle_command_with) asks it
/// for `history`; without one the node answers from memory.
pub trait HistorySource {
    /// The last `count` room messages (fillers left out) whose text or sender contains
    /// `search` (ASCII case ignored), oldest first; or why they could not be read.
    fn history(&self, count: usize, search: Option<&str>) -> Result<Vec<ChatEntry>, String>;
}
