//! The receiving side of the reliability layer: which ids arrived from each sender's
//! stream (duplicate suppression), and which acks are owed.
//!
//! A sender numbers the messages for one destination 1, 2, 3, ... in its own stream, so a
//! receiver that got them all holds a contiguous prefix: the [`DedupeWindow`]'s floor.
//! One ack packet per stream then says "everything up to the floor" plus ranges for the
//! numbers above it that are owed an ack now. Every message accepted in an input (or in
//! several inputs before the outputs are drained) is acked by one packet, not one each.

use crate::ids::{MsgId, NodeId};
use crate::wire::Ack;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// How many recent ids per sender the duplicate window remembers above its contiguous
/// prefix. Ids at or below the window's floor count as duplicates: a sender's retries end
/// within seconds, long before this many newer messages from it have arrived in any
/// realistic room.
pub const DEDUPE_WINDOW: usize = 4096;

/// The most ranges one ack packet carries (a longer list is split over several packets);
/// 48 ranges of two 6-byte varints stay far below the packet limit.
pub const MAX_ACK_RANGES: usize = 48;

/// Remembers which ids from one sender were delivered: every id up to the floor, and the
/// ids above it in a set.
#[derive(Debug, Default, Clone)]
pub struct DedupeWindow {
    floor: u64,
    seen: BTreeSet<u64>,
}

impl DedupeWindow {
    /// Records `id`; returns `true` the first time, `false` for a duplicate or an id too old
    /// to judge (at or below the floor). The floor moves up over ids that arrived in a row,
    /// and jumps over a gap only once [`DEDUPE_WINDOW`] ids above it have arrived.
    pub fn first_time(&mut self, id: u64) -> bool {
        if id <= self.floor || !self.seen.insert(id) {
            return false;
        }
        while self.seen.len() > DEDUPE_WINDOW {
            if let Some(oldest) = self.seen.pop_first() {
                self.floor = oldest;
            }
        }
        while let Some(next) = self.floor.checked_add(1) {
            if !self.seen.remove(&next) {
                break;
            }
            self.floor = next;
        }
        true
    }

    /// Whether `id` was recorded (or lies at or below the floor). Changes nothing.
    pub fn contains(&self, id: u64) -> bool {
        id <= self.floor || self.seen.contains(&id)
    }

    /// Every id up to this one counts as delivered.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    #[cfg(test)]
    /// How many ids above the floor are remembered.
    pub fn above_floor(&self) -> usize {
        self.seen.len()
    }
}

/// Duplicate windows per sender stream, and the acks owed.
#[derive(Debug, Default)]
pub(super) struct Receipts {
    /// Per sender and stream.
    windows: BTreeMap<(NodeId, u32), DedupeWindow>,
    /// Numbers to ack, per (sender address, sender, stream).
    owed: BTreeMap<(SocketAddr, NodeId, u32), BTreeSet<u64>>,
    /// Whether its acks name only the numbers received, never "everything up to": the
    /// receipts of what came outside a session, where anyone may claim a sender's id
    /// (see [`Receipts::outside`]).
    floorless: bool,
}

impl Receipts {
    /// Receipts for datagrams that came outside a session (the join exchange), kept apart
    /// from a sender's session receipts: a forged join under a member's id cannot mark
    /// numbers of the member's real stream as seen, and its acks claim no prefix of it.
    pub(super) fn outside() -> Receipts {
        Receipts {
            floorless: true,
            ..Receipts::default()
        }
    }

    /// Records an accepted message and owes its ack (a duplicate is acked again: the
    /// sender lost our first ack). Returns whether it is new.
    pub(super) fn accept(&mut self, from: SocketAddr, sender: NodeId, id: MsgId) -> bool {
        let (stream, seq) = (id.stream(), id.seq());
        self.owed
            .entry((from, sender, stream))
            .or_default()
            .insert(seq);
        self.windows
            .entry((sender, stream))
            .or_default()
            .first_time(seq)
    }

    /// Whether data packet `id` from `sender` was accepted already.
    pub(super) fn was_accepted(&self, sender: NodeId, id: MsgId) -> bool {
        self.windows
            .get(&(sender, id.stream()))
            .is_some_and(|w| w.contains(id.seq()))
    }

    /// Whether any ack is owed.
    pub(super) fn owes(&self) -> bool {
        !self.owed.is_empty()
    }

    /// The ack packets owed, with their destinations; afterwards none is owed.
    pub(super) fn take_acks(&mut self) -> Vec<(SocketAddr, Ack)> {
        let mut acks = Vec::new();
        for ((to, sender, stream), seqs) in std::mem::take(&mut self.owed) {
            let upto = match self.windows.get(&(sender, stream)) {
                Some(w) if !self.floorless => w.floor(),
                _ => 0,
            };
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            for seq in seqs.into_iter().filter(|s| *s > upto) {
                match ranges.last_mut() {
                    Some((_, last)) if *last + 1 == seq => *last = seq,
                    _ => ranges.push((seq, seq)),
                }
            }
            let mut chunks = ranges.chunks(MAX_ACK_RANGES).peekable();
            if chunks.peek().is_none() {
                acks.push((to, ack(sender, stream, upto, Vec::new())));
            }
            for chunk in chunks {
                acks.push((to, ack(sender, stream, upto, chunk.to_vec())));
            }
        }
        acks
    }

    #[cfg(test)]
    /// Forgets every window of `sender`, a node gone for good.
    pub(super) fn forget(&mut self, sender: NodeId) {
        self.windows.retain(|(node, _), _| *node != sender);
    }

    /// How many sender streams have a duplicate window.
    pub(super) fn windows(&self) -> usize {
        self.windows.len()
    }

    /// Forgets the windows of every sender `keep` does not keep.
    pub(super) fn retain_senders(&mut self, keep: impl Fn(NodeId) -> bool) {
        self.windows.retain(|(node, _), _| keep(*node));
    }
}

fn ack(of: NodeId, stream: u32, upto: u64, ranges: Vec<(u64, u64)>) -> Ack {
    Ack {
        of,
        stream,
        upto,
        ranges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn window_floor_follows_the_contiguous_prefix() {
        let mut w = DedupeWindow::default();
        assert!(w.first_time(2));
        assert_eq!(w.floor(), 0, "1 is missing");
        assert!(w.first_time(1));
        assert_eq!((w.floor(), w.above_floor()), (2, 0));
        assert!(!w.first_time(2) && !w.first_time(1));
    }

    #[test]
    fn window_floor_jumps_a_gap_only_when_full() {
        let mut w = DedupeWindow::default();
        // 1 never arrives.
        for id in 2..=(DEDUPE_WINDOW as u64 + 1) {
            assert!(w.first_time(id));
        }
        assert_eq!((w.floor(), w.above_floor()), (0, DEDUPE_WINDOW));
        assert!(w.first_time(DEDUPE_WINDOW as u64 + 2));
        assert_eq!(
            w.floor(),
            DEDUPE_WINDOW as u64 + 2,
            "jumped, then caught up"
        );
        assert_eq!(w.above_floor(), 0);
        assert!(!w.first_time(1), "below the floor counts as seen");
    }

    #[test]
    fn window_is_safe_at_the_top_of_the_range() {
        let mut w = DedupeWindow::default();
        assert!(w.first_time(u64::MAX));
        assert!(!w.first_time(u64::MAX));
    }

    #[test]
    fn one_ack_per_stream_with_prefix_and_ranges() {
        let mut r = Receipts::default();
        let (a, n) = (addr(1), NodeId(7));
        for seq in [1, 2, 4, 5, 9] {
            assert!(r.accept(a, n, MsgId::new(0, seq)));
        }
        assert!(
            r.accept(a, n, MsgId::new(3, 1)),
            "another stream, own window"
        );
        let acks = r.take_acks();
        assert_eq!(
            acks,
            vec![
                (a, ack(n, 0, 2, vec![(4, 5), (9, 9)])),
                (a, ack(n, 3, 1, vec![])),
            ]
        );
        assert!(!r.owes() && r.take_acks().is_empty(), "owed once");
        // A duplicate is acked again (here by the prefix).
        assert!(!r.accept(a, n, MsgId::new(0, 1)));
        assert_eq!(r.take_acks(), vec![(a, ack(n, 0, 2, vec![]))]);
    }

    #[test]
    fn long_range_lists_are_split() {
        let mut r = Receipts::default();
        for k in 1..=(MAX_ACK_RANGES as u64 + 1) {
            r.accept(addr(1), NodeId(1), MsgId::new(0, 2 * k));
        }
        let acks = r.take_acks();
        assert_eq!(acks.len(), 2);
        assert_eq!(acks[0].1.ranges.len(), MAX_ACK_RANGES);
        assert_eq!(acks[1].1.ranges, vec![(98, 98)]);
    }
}
