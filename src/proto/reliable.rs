//! The reliability layer: message ids, the pending table with deadlines, acks, bounded
//! retries, the duplicate window, and give-up reports.
//!
//! It knows nothing of chat: each pending message carries an opaque token `T` that the
//! owner gets back when the message is acked ([`Reliable::on_ack`]) or given up
//! ([`Reliable::poll_retransmits`]).

use crate::ids::{MsgId, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// The encoded datagram.
    pub bytes: Vec<u8>,
}

#[derive(Debug)]
struct Pending<T> {
    to: SocketAddr,
    bytes: Vec<u8>,
    retries_left: u32,
    deadline: Instant,
    token: T,
}

/// A message the layer stopped retransmitting without an ack.
#[derive(Debug, PartialEq, Eq)]
pub struct GaveUp<T> {
    /// The owner's token.
    pub token: T,
    /// The peer that never acked.
    pub to: SocketAddr,
}

/// How many recent ids per sender the duplicate window remembers. Ids at or below the
/// window's floor count as duplicates: a sender's retries end within seconds, long before
/// this many newer messages from it have arrived in any realistic room.
pub const DEDUPE_WINDOW: usize = 4096;

/// Remembers which ids from one sender were delivered.
#[derive(Debug, Default, Clone)]
pub struct DedupeWindow {
    floor: u64,
    seen: BTreeSet<u64>,
}

impl DedupeWindow {
    /// Records `id`; returns `true` the first time, `false` for a duplicate or an id too old
    /// to judge (at or below the floor).
    pub fn first_time(&mut self, id: u64) -> bool {
        if id <= self.floor || !self.seen.insert(id) {
            return false;
        }
        while self.seen.len() > DEDUPE_WINDOW {
            if let Some(oldest) = self.seen.pop_first() {
                self.floor = oldest;
            }
        }
        true
    }
}

/// Ack tracking and retransmission for reliable messages.
#[derive(Debug)]
pub struct Reliable<T> {
    next_id: u64,
    pending: BTreeMap<MsgId, Pending<T>>,
    windows: BTreeMap<NodeId, DedupeWindow>,
    ack_timeout: Duration,
}

impl<T> Reliable<T> {
    /// A layer that retransmits unacked messages every `ack_timeout`.
    pub fn new(ack_timeout: Duration) -> Self {
        Reliable {
            next_id: 1,
            pending: BTreeMap::new(),
            windows: BTreeMap::new(),
            ack_timeout,
        }
    }

    /// Allocates the id for a new reliable message. Call [`Reliable::track`] with it once the
    /// datagram is encoded.
    pub fn allocate_id(&mut self) -> MsgId {
        let id = MsgId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Starts tracking a sent datagram: it is retransmitted every ack timeout until acked,
    /// at most `retries` times, then reported by [`Reliable::poll_retransmits`].
    pub fn track(
        &mut self,
        now: Instant,
        id: MsgId,
        to: SocketAddr,
        bytes: Vec<u8>,
        token: T,
        retries: u32,
    ) {
        self.pending.insert(
            id,
            Pending {
                to,
                bytes,
                retries_left: retries,
                deadline: now + self.ack_timeout,
                token,
            },
        );
    }

    /// Handles an ack from `from`. Returns the token the first time a pending message is
    /// acked by the peer it was sent to; `None` for unknown, repeated or misdirected acks.
    pub fn on_ack(&mut self, from: SocketAddr, id: MsgId) -> Option<T> {
        match self.pending.get(&id) {
            Some(p) if p.to == from => self.pending.remove(&id).map(|p| p.token),
            _ => None,
        }
    }

    /// Records a received reliable message; `false` means it was seen before and must not
    /// be handled again (it must still be acked: the sender lost our first ack).
    pub fn first_delivery(&mut self, from: NodeId, id: MsgId) -> bool {
        self.windows.entry(from).or_default().first_time(id.0)
    }

    /// Retransmits every message whose deadline passed, pushing the datagrams to `out`.
    /// Messages out of retries are dropped and returned. Returns also how many were resent.
    pub fn poll_retransmits(
        &mut self,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> (usize, Vec<GaveUp<T>>) {
        let due: Vec<MsgId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut resent = 0;
        let mut gave_up = Vec::new();
        for id in due {
            let Some(p) = self.pending.get_mut(&id) else {
                continue;
            };
            if p.retries_left == 0 {
                if let Some(p) = self.pending.remove(&id) {
                    gave_up.push(GaveUp {
                        token: p.token,
                        to: p.to,
                    });
                }
                continue;
            }
            p.retries_left -= 1;
            p.deadline = now + self.ack_timeout;
            out.push(Transmit {
                to: p.to,
                bytes: p.bytes.clone(),
            });
            resent += 1;
        }
        (resent, gave_up)
    }

    /// Stops retransmitting everything addressed to `to` (the peer is known gone) and
    /// returns the tokens, so the owner can reroute or report them.
    pub fn cancel_to(&mut self, to: SocketAddr) -> Vec<T> {
        let ids: Vec<MsgId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.to == to)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.pending.remove(&id).map(|p| p.token))
            .collect()
    }

    /// Forgets the duplicate window of a node that is gone for good.
    pub fn forget_sender(&mut self, id: NodeId) {
        self.windows.remove(&id);
    }

    /// The earliest retransmission deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Whether any message whose token matches `f` awaits an ack.
    pub fn any_pending(&self, f: impl Fn(&T) -> bool) -> bool {
        self.pending.values().any(|p| f(&p.token))
    }

    /// How many messages await an ack.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn retransmits_after_timeout_then_gives_up() {
        let t0 = Instant::now();
        let timeout = Duration::from_millis(500);
        let mut r: Reliable<&str> = Reliable::new(timeout);
        let id = r.allocate_id();
        r.track(t0, id, addr(1), vec![1, 2], "hello", 2);
        let mut out = Vec::new();
        // Not yet due.
        assert_eq!(r.poll_retransmits(t0 + timeout / 2, &mut out).0, 0);
        assert!(out.is_empty());
        // Two retries, 500 ms apart.
        assert_eq!(r.poll_retransmits(t0 + timeout, &mut out).0, 1);
        assert_eq!(r.poll_retransmits(t0 + timeout * 2, &mut out).0, 1);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].bytes, vec![1, 2]);
        // Out of retries: reported, not resent.
        let (resent, gave_up) = r.poll_retransmits(t0 + timeout * 3, &mut out);
        assert_eq!(resent, 0);
        assert_eq!(
            gave_up,
            vec![GaveUp {
                token: "hello",
                to: addr(1)
            }]
        );
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn ack_only_counts_from_the_destination_and_once() {
        let t0 = Instant::now();
        let mut r: Reliable<u8> = Reliable::new(Duration::from_millis(500));
        let id = r.allocate_id();
        r.track(t0, id, addr(1), vec![], 7, 3);
        assert_eq!(r.on_ack(addr(2), id), None, "ack from a stranger ignored");
        assert_eq!(r.on_ack(addr(1), id), Some(7));
        assert_eq!(r.on_ack(addr(1), id), None, "second ack ignored");
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn duplicates_are_suppressed_per_sender() {
        let mut r: Reliable<()> = Reliable::new(Duration::from_millis(500));
        assert!(r.first_delivery(NodeId(1), MsgId(5)));
        assert!(!r.first_delivery(NodeId(1), MsgId(5)));
        assert!(
            r.first_delivery(NodeId(2), MsgId(5)),
            "other sender, own window"
        );
        assert!(
            r.first_delivery(NodeId(1), MsgId(3)),
            "reordered older id still new"
        );
    }

    #[test]
    fn window_floor_advances_and_stays_bounded() {
        let mut w = DedupeWindow::default();
        for id in 1..=(DEDUPE_WINDOW as u64 + 10) {
            assert!(w.first_time(id));
        }
        assert_eq!(w.seen.len(), DEDUPE_WINDOW);
        assert!(!w.first_time(5), "below the floor counts as seen");
    }

    #[test]
    fn cancel_to_returns_tokens() {
        let t0 = Instant::now();
        let mut r: Reliable<u8> = Reliable::new(Duration::from_millis(500));
        for (port, tok) in [(1, 1), (2, 2), (1, 3)] {
            let id = r.allocate_id();
            r.track(t0, id, addr(port), vec![], tok, 3);
        }
        assert_eq!(r.cancel_to(addr(1)), vec![1, 3]);
        assert_eq!(r.in_flight(), 1);
    }
}
