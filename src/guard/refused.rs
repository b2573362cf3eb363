//! Why the guard refused a datagram, and the counts and log lines of refusals.

use super::Guard;
use crate::ids::NodeId;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use thiserror::Error;

/// Why a datagram was refused before it reached the node.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refused {
    /// The source sent more than its share this second.
    #[error("over the per-source rate limit")]
    RateLimited,
    /// Sealed with another key, altered, or cut short.
    #[error("does not open with the room key")]
    Unauthentic,
    /// A plain datagram in a keyed room.
    #[error("not sealed, and this room has a key")]
    NotSealed,
    /// A sealed datagram, and we have no key.
    #[error("sealed, and this node has no room key")]
    NoKey,
    /// A packet number already seen, or too old to tell.
    #[error("replayed (packet {0} from {1})")]
    Replayed(u64, NodeId),
    /// A transport datagram naming no live session of ours: an old capture (from before a
    /// restart, or meant for another node), or a session that ended.
    #[error("names no session of ours")]
    NoSession,
    /// A session datagram whose counter is past what any session uses.
    #[error("session counter {0} out of range")]
    OutOfRange(u64),
    /// A handshake from a key that is no member's (or not that member's).
    #[error("handshake from {0}, whose key is no member's")]
    NotAMember(NodeId),
    /// A handshake meant for another node (an earlier process at this address?).
    #[error("handshake for node {0}, not us")]
    NotForUs(NodeId),
    /// A datagram that opened in one member's session but claims another sender.
    #[error("claims to be from {claimed} inside {peer}'s session")]
    Impersonation {
        /// The sender its envelope names.
        claimed: NodeId,
        /// The member whose session it opened in.
        peer: NodeId,
    },
    /// Outside a session (plain, or sealed with the room key only), something other than
    /// the join exchange.
    #[error("{0} outside a session (only the join exchange travels so)")]
    OutsideSession(&'static str),
    /// A session datagram, and this guard holds no sessions (made without an identity).
    #[error("a session datagram, and this node holds no sessions")]
    NoSessions,
    /// An ask for a join key that this node does not answer (see [`super::admission`]).
    #[error("not answered: {0}")]
    Unanswered(&'static str),
    /// A grant of a join key that this node did not ask for, or that does not open.
    #[error("a join key this node did not ask for, or cannot open")]
    NotAsked,
    /// One of the guard's own messages, in a session with this member, not taken.
    #[error("a malformed control message in {0}'s session")]
    Control(NodeId),
}

/// Datagrams refused before they reached the node, by reason.
#[derive(Debug, Default)]
pub struct RefusedCounts {
    /// Over the per-source rate.
    pub rate_limited: AtomicU64,
    /// Did not open with the room key, or were not sealed, or were sealed without our key.
    pub unauthentic: AtomicU64,
    /// Replayed.
    pub replayed: AtomicU64,
}

impl Guard {
    /// Counts a refusal and logs it, at most once a second per source.
    pub fn note_refused(&self, from: SocketAddr, why: &Refused) {
        let counter = match why {
            Refused::RateLimited => &self.refused.rate_limited,
            Refused::Replayed(..) => &self.refused.replayed,
            _ => &self.refused.unauthentic,
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let quiet = self
            .last_logged
            .get(&from.ip())
            .is_some_and(|t| now.duration_since(*t).as_secs() < 1);
        if !quiet {
            if self.last_logged.len() > 4096 {
                self.last_logged.clear();
            }
            self.last_logged.insert(from.ip(), now);
            tracing::warn!("refused a datagram from {from}: {why} ({n} so far)");
        } else {
            tracing::debug!("refused a datagram from {from}: {why} ({n} so far)");
        }
    }

    /// How many datagrams were refused in all.
    pub fn refused_total(&self) -> u64 {
        self.refused.rate_limited.load(Ordering::Relaxed)
            + self.refused.unauthentic.load(Ordering::Relaxed)
            + self.refused.replayed.load(Ordering::Relaxed)
    }
}
