//! The send window: at most [`SEND_WINDOW`] numbers of one stream on the wire, counted
//! from its oldest unsettled one; later messages wait, in order, until earlier ones are
//! acked or given up.
//!
//! A receiver's duplicate window ([`super::receipts::DedupeWindow`]) remembers
//! [`DEDUPE_WINDOW`] numbers above its contiguous prefix, and once more than that have
//! arrived it moves its floor over the oldest gap, taking what lies below for seen. Were
//! a sender to have more than that on the wire, a message lost once and resent after
//! [`DEDUPE_WINDOW`] later ones arrived would be acked as a duplicate and never handled:
//! its sender would count it delivered (a proposal counted as held, a submission
//! never sequenced, its sender waiting for it for good). With the window, everything
//! above such a gap was sent while the gap's message was still pending, so at most
//! [`SEND_WINDOW`] - 1 of them can arrive: the floor moves over a gap only once its
//! message was given up.

use super::receipts::DEDUPE_WINDOW;
use crate::ids::MsgId;
use std::collections::{BTreeMap, VecDeque};

/// The most numbers of one stream on the wire at once, from its oldest unsettled one.
pub const SEND_WINDOW: u64 = DEDUPE_WINDOW as u64;

/// Messages waiting for room in their stream's send window, per stream, in number order
/// (they are the newest of their stream: a message waits if one before it waits).
#[derive(Debug, Default)]
pub(super) struct Waiting {
    streams: BTreeMap<u32, VecDeque<MsgId>>,
    len: usize,
}

impl Waiting {
    /// Whether message `id` must wait, its stream's oldest pending number being `oldest`
    /// (before `id` is added).
    pub(super) fn must_wait(&self, id: MsgId, oldest: Option<u64>) -> bool {
        self.streams.contains_key(&id.stream())
            || oldest.is_some_and(|o| id.seq() >= o.saturating_add(SEND_WINDOW))
    }

    /// Adds `id`, the newest of its stream, to wait.
    pub(super) fn push(&mut self, id: MsgId) {
        self.streams.entry(id.stream()).or_default().push_back(id);
        self.len += 1;
    }

    /// Takes the waiting messages of `stream` that fit its window now, its oldest
    /// pending number being `oldest` (a waiting message itself when none before it is).
    pub(super) fn release(&mut self, stream: u32, oldest: Option<u64>) -> Vec<MsgId> {
        let Some(queue) = self.streams.get_mut(&stream) else {
            return Vec::new();
        };
        let end = oldest.map_or(u64::MAX, |o| o.saturating_add(SEND_WINDOW));
        let fit = queue.iter().take_while(|id| id.seq() < end).count();
        let out: Vec<MsgId> = queue.drain(..fit).collect();
        if queue.is_empty() {
            self.streams.remove(&stream);
        }
        self.len -= out.len();
        out
    }

    /// Forgets the waiting messages of `stream` (taken out of the pending table).
    pub(super) fn forget(&mut self, stream: u32) {
        if let Some(queue) = self.streams.remove(&stream) {
            self.len -= queue.len();
        }
    }

    #[cfg(test)]
    /// How many messages wait.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_waits_past_the_window_and_after_one_that_waits() {
        let mut w = Waiting::default();
        let id = |seq| MsgId::new(3, seq);
        assert!(!w.must_wait(id(1), None));
        assert!(!w.must_wait(id(SEND_WINDOW), Some(1)));
        assert!(w.must_wait(id(SEND_WINDOW + 1), Some(1)));
        w.push(id(SEND_WINDOW + 1));
        // Behind one that waits, even with room.
        assert!(w.must_wait(id(SEND_WINDOW + 2), Some(SEND_WINDOW)));
        w.push(id(SEND_WINDOW + 2));
        // Another stream is not held up.
        assert!(!w.must_wait(MsgId::new(4, 1), None));
        assert_eq!(w.release(3, Some(1)), vec![]);
        assert_eq!(w.release(3, Some(2)), vec![id(SEND_WINDOW + 1)]);
        assert_eq!(w.len(), 1);
        // Nothing before it pending: it goes.
        assert_eq!(
            w.release(3, Some(SEND_WINDOW + 2)),
            vec![id(SEND_WINDOW + 2)]
        );
        assert!(w.len() == 0 && w.streams.is_empty());
    }
}
