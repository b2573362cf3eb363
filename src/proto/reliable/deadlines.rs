//! [`Deadlines`]: when each pending message is due for a resend, earliest first.
//!
//! A heap of `(deadline, id)`, emptied lazily: an entry whose message was acked, given
//! up or resent since (its deadline moved) stays until it comes to the top, where the
//! owner drops it ([`Deadlines::drop_stale`]). A burst's messages are acked in about the
//! order they were sent, so their entries reach the top soon after their acks; a message
//! that waits long at the top (to a paused peer) lets the others pile up behind it, so
//! the heap is rebuilt from the live deadlines once it holds more than twice as many.

use crate::ids::MsgId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Entries always kept before a rebuild is considered.
const REBUILD_FLOOR: usize = 1024;

/// The resend deadlines of pending messages, possibly with stale ones among them.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, MsgId)>>,
}

impl Deadlines {
    /// Message `id` is due at `at` (a deadline it had before goes stale).
    pub(super) fn push(&mut self, at: Instant, id: MsgId) {
        self.heap.push(Reverse((at, id)));
    }

    /// The earliest entry, stale or not.
    pub(super) fn first(&self) -> Option<(Instant, MsgId)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }

    /// Takes the earliest entry out.
    pub(super) fn pop_first(&mut self) -> Option<(Instant, MsgId)> {
        self.heap.pop().map(|Reverse(e)| e)
    }

    /// Drops stale entries from the top, so [`Deadlines::first`] is a live one (`live`
    /// says whether message `id` is still due at that time); past twice `pending`
    /// entries, rebuilds the heap from `all`, every live deadline.
    pub(super) fn drop_stale(
        &mut self,
        live: impl Fn(Instant, MsgId) -> bool,
        pending: usize,
        all: impl FnOnce() -> Vec<(Instant, MsgId)>,
    ) {
        while let Some((at, id)) = self.first() {
            if live(at, id) {
                break;
            }
            self.heap.pop();
        }
        if self.heap.len() > REBUILD_FLOOR.max(2 * pending) {
            self.heap = all().into_iter().map(Reverse).collect();
        }
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}
