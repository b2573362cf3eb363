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

/// How many gaps (runs of ids not arrived) above its contiguous prefix a duplicate window
/// remembers. Past that, the oldest gap is given up: its ids count as seen, and the next
/// cumulative ack claims them. A gap is a message lost and not yet resent, or one its
/// sender gave up; a sender has at most a flow window of room messages in flight to one
/// member (`node::transport::FLOW_WINDOW`) and gives up in send order, so the oldest gap
/// is one nobody resends any more.
///
/// The bound is in gaps, not in ids: however many later ids arrive while one is missing,
/// the missing one is never taken for a duplicate nor claimed by an ack. (A window bounded
/// in ids moved its floor over a gap once 4 096 later ids had arrived, and a proposal
/// resent after that was acked unheld and counted as a copy.)
pub const DEDUPE_WINDOW: usize = 4096;

/// The most ranges one ack packet carries (a longer list is split over several packets);
/// 48 ranges of two 6-byte varints stay far below the packet limit.
pub const MAX_ACK_RANGES: usize = 48;

/// Remembers which ids from one sender were delivered: every id up to the floor, and the
/// runs of ids above it that arrived, as ranges.
#[derive(Debug, Default, Clone)]
pub struct DedupeWindow {
    floor: u64,
    /// Runs of ids that arrived above `floor + 1`: first id to last, disjoint, with at
    /// least one id missing between two runs and between the floor and the first.
    above: BTreeMap<u64, u64>,
}

impl DedupeWindow {
    /// Records `id`; returns `true` the first time, `false` for a duplicate (or an id of a
    /// gap given up, see [`DEDUPE_WINDOW`]). The floor moves up over ids that arrived in a
    /// row, and over the oldest gap only once more than [`DEDUPE_WINDOW`] gaps are open.
    pub fn first_time(&mut self, id: u64) -> bool {
        if id <= self.floor {
            return false;
        }
        if id == self.floor + 1 && self.above.is_empty() {
            self.floor = id;
            return true;
        }
        let below = self.above.range(..=id).next_back().map(|(s, e)| (*s, *e));
        if below.is_some_and(|(_, end)| end >= id) {
            return false;
        }
        // The run ending just below `id` (or the floor) takes it, and merges with the run
        // starting just above it.
        let after = id
            .checked_add(1)
            .and_then(|next| self.above.remove(&next).map(|end| (next, end)));
        let end = after.map_or(id, |(_, end)| end);
        if id == self.floor + 1 {
            self.floor = end;
        } else if let Some((start, last)) = below
            && last + 1 == id
        {
            self.above.insert(start, end);
        } else {
            self.above.insert(id, end);
        }
        if self.above.len() > DEDUPE_WINDOW
            && let Some((_, end)) = self.above.pop_first()
        {
            self.floor = end;
        }
        true
    }

    /// Whether `id` was recorded (or lies at or below the floor). Changes nothing.
    pub fn contains(&self, id: u64) -> bool {
        id <= self.floor
            || self
                .above
                .range(..=id)
                .next_back()
                .is_some_and(|(_, end)| *end >= id)
    }

    /// Every id up to this one counts as delivered.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    #[cfg(test)]
    /// How many gaps above the floor are open.
    pub fn gaps(&self) -> usize {
        self.above.len()
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
        assert_eq!((w.floor(), w.gaps()), (2, 0));
        assert!(!w.first_time(2) && !w.first_time(1));
    }

    /// However many later ids arrive while one is missing, it is new when it comes, and
    /// no ack claims it before.
    #[test]
    fn a_missing_id_is_never_taken_as_seen() {
        let mut r = Receipts::default();
        let (a, n) = (addr(1), NodeId(7));
        // 1 is lost; a burst of later ones arrives, acked as it comes.
        for seq in 2..=(4 * DEDUPE_WINDOW as u64) {
            assert!(r.accept(a, n, MsgId::new(0, seq)));
            if seq % 100 == 0 {
                for (_, ack) in r.take_acks() {
                    assert_eq!(ack.upto, 0, "an ack claims the missing id");
                }
            }
        }
        assert!(!r.was_accepted(n, MsgId::new(0, 1)));
        assert!(r.accept(a, n, MsgId::new(0, 1)), "the resent id is new");
        let acks = r.take_acks();
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].1.upto, 4 * DEDUPE_WINDOW as u64);
        assert!(!r.accept(a, n, MsgId::new(0, 1)), "and a duplicate after");
    }

    #[test]
    fn the_oldest_gap_is_given_up_past_the_bound() {
        let mut w = DedupeWindow::default();
        // 1, 3, 5, ... never arrive: one gap each.
        for k in 1..=DEDUPE_WINDOW as u64 {
            assert!(w.first_time(2 * k));
        }
        assert_eq!((w.floor(), w.gaps()), (0, DEDUPE_WINDOW));
        assert!(w.first_time(2 * DEDUPE_WINDOW as u64 + 2));
        assert_eq!((w.floor(), w.gaps()), (2, DEDUPE_WINDOW), "gap 1 given up");
        assert!(!w.first_time(1), "a gap given up counts as seen");
        assert!(w.first_time(3), "the next gap is still open");
        assert_eq!(w.floor(), 4);
    }

    proptest::proptest! {
        /// Within its bound the window answers as a set of every id recorded would.
        #[test]
        fn window_answers_as_the_set_of_ids_recorded(
            ids in proptest::collection::vec(1u64..400, 0..600)
        ) {
            let mut w = DedupeWindow::default();
            let mut model = BTreeSet::new();
            for id in ids {
                proptest::prop_assert_eq!(w.first_time(id), model.insert(id), "id {}", id);
                let prefix = (1..).take_while(|k| model.contains(k)).last().unwrap_or(0);
                proptest::prop_assert_eq!(w.floor(), prefix);
                for probe in [id.saturating_sub(1), id, id + 1, prefix + 1] {
                    proptest::prop_assert_eq!(w.contains(probe), probe == 0 || model.contains(&probe));
                }
            }
            for probe in 1..401 {
                proptest::prop_assert_eq!(w.contains(probe), model.contains(&probe));
            }
        }
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
