//! The room log's entry: a sequenced room message, a filler for a number lost with a
//! leader, or a change of the voting configuration.

use super::SignatureBytes;
use crate::ids::{Lamport, NodeId, OriginSeq, Seq, WallMillis};
use serde::{Deserialize, Serialize};

/// A value of an origin's chain of room messages (SHA-256, see `proto::seal`).
pub type ChainLink = [u8; 32];

/// How a room message proves who wrote it (see `proto::seal`). Its origin chains the
/// messages it writes and signs the last of each run it hands the leader at once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The origin's chain value before this message. Left out only where the message
    /// before it in the log (or in the same batch of submissions) is the one before it in
    /// its origin's chain: the receiver works it out from that one.
    pub link: Option<ChainLink>,
    /// The origin's signature over this message's chain value, on the last message of
    /// each run: it vouches for the run up to here. Boxed: most messages carry none, and
    /// entries are moved about a lot.
    pub seal: Option<Box<SignatureBytes>>,
}

/// A sequenced room message: the unit of the room's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEntry {
    /// Global sequence number.
    pub seq: Seq,
    /// The node that sent it.
    pub origin: NodeId,
    /// The sender's name.
    pub name: String,
    /// The origin's number for this message (with `origin`, identifies a submission). In
    /// a configuration entry, its parent (see [`ChatEntry::config_parent`]).
    pub origin_seq: OriginSeq,
    /// Origin's Lamport time at send.
    pub lamport: Lamport,
    /// Origin's wall-clock time at send.
    pub sent_at: WallMillis,
    /// The text.
    pub text: String,
    /// The term of the leader this copy was taken from (the one that sequenced it, or a
    /// later one that proposed it again): of two uncommitted copies of one number, the one
    /// of the higher term wins. Meaningless once committed (not kept on disk).
    pub term: u64,
    /// The origin's proof that it wrote this (none for fillers and configuration changes,
    /// which are never shown as anyone's words).
    pub proof: Provenance,
}

/// The origin of a filler entry: a sequence number a new leader found lost with the old
/// leader (no survivor had it), filled so that members move past the gap. Never shown.
pub const FILLER_ORIGIN: NodeId = NodeId(0);

impl ChatEntry {
    /// A filler for `seq`.
    pub fn filler(seq: Seq) -> ChatEntry {
        ChatEntry {
            seq,
            origin: FILLER_ORIGIN,
            name: String::new(),
            origin_seq: OriginSeq(0),
            lamport: Lamport(0),
            sent_at: WallMillis(0),
            text: String::new(),
            term: 0,
            proof: Provenance::default(),
        }
    }

    /// Whether this is a filler (see [`FILLER_ORIGIN`]) or a change of the voting
    /// configuration: never shown, never searched.
    pub fn is_filler(&self) -> bool {
        self.origin == FILLER_ORIGIN
    }

    /// An entry that changes the room's voting configuration (see [`ConfigChange`]),
    /// proposed on the configuration the log makes up to the change at `parent` (its
    /// last change before this one; 0 for none).
    pub fn config(seq: Seq, change: ConfigChange, parent: Seq) -> ChatEntry {
        let (kind, user) = match change {
            ConfigChange::Add(user) => (CONFIG_ADD, user),
            ConfigChange::Remove(user) => (CONFIG_REMOVE, user),
        };
        ChatEntry {
            name: kind.into(),
            text: user,
            origin_seq: OriginSeq(parent.0),
            ..ChatEntry::filler(seq)
        }
    }

    /// The number of the configuration change this one was proposed after (its
    /// proposer's last change, committed or not; 0 for none): a log holding a later
    /// change whose parent is not the change before it in that log lacks a change
    /// between (see `take_over_shortfall`).
    pub fn config_parent(&self) -> Seq {
        Seq(self.origin_seq.0)
    }

    /// The change of the voting configuration this entry makes, if it is one.
    pub fn config_change(&self) -> Option<ConfigChange> {
        if !self.is_filler() || self.text.is_empty() {
            return None;
        }
        match self.name.as_str() {
            CONFIG_ADD => Some(ConfigChange::Add(self.text.clone())),
            CONFIG_REMOVE => Some(ConfigChange::Remove(self.text.clone())),
            _ => None,
        }
    }
}

/// The name field of a configuration entry that adds a voter.
const CONFIG_ADD: &str = "+voter";
/// The name field of a configuration entry that removes a voter.
const CONFIG_REMOVE: &str = "-voter";

/// One change of the room's voting configuration: the users whose copies count towards
/// a majority (by name, which is bound to the user's identity: a restarted process is
/// the same voter). Carried by a log entry (origin [`FILLER_ORIGIN`]), so that every
/// member applies the same changes in the same order, once committed; one user at a
/// time, so that any majority of the configuration before overlaps any majority of the
/// one after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigChange {
    /// The user votes from now on.
    Add(String),
    /// The user no longer votes.
    Remove(String),
}
