//! The offline queue: direct messages kept for members who are offline, per recipient
//! name, in the order the leader saved them.
//!
//! The leader keeps the queue and replicates every change to every online member, so
//! any member that becomes leader holds it too. A message is removed only after its
//! recipient acknowledged the hand-over.
//!
//! Bounded three ways, so that no sender can fill it for others: at most
//! [`MAX_QUEUE_PER_SENDER`] messages from one sender for one recipient, at most
//! [`MAX_QUEUE_PER_USER`] for one recipient, and [`MAX_QUEUE_TOTAL`] in all.

use super::durable::Write;
use crate::ids::{DmId, NodeId};
use crate::wire::{QueueLimit, QueuedDm};
use std::collections::{BTreeMap, VecDeque};
use thiserror::Error;

/// Messages kept per offline recipient, at most; past it the sender is told.
pub const MAX_QUEUE_PER_USER: usize = 1000;
/// Messages kept from one sender for one offline recipient, at most: one sender cannot
/// fill a recipient's queue for the others. Past it the sender is told.
pub const MAX_QUEUE_PER_SENDER: usize = 200;
/// Messages kept in all, for every recipient together (about 1 KB each at most).
pub const MAX_QUEUE_TOTAL: usize = 10_000;

/// Why nothing was stored.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QueueFull {
    /// The recipient's queue is full.
    #[error("the offline queue for {0} is full ({MAX_QUEUE_PER_USER} messages)")]
    Recipient(String),
    /// The sender has as many messages waiting for this recipient as one sender may.
    #[error("{MAX_QUEUE_PER_SENDER} messages from this sender already wait for {0}")]
    Sender(String),
    /// The queue holds as many messages as it may in all.
    #[error("the offline queue is full ({MAX_QUEUE_TOTAL} messages in all)")]
    Room,
}

impl QueueFull {
    /// Which limit it was, as the sender is told.
    pub fn limit(&self) -> QueueLimit {
        match self {
            QueueFull::Recipient(_) => QueueLimit::Recipient,
            QueueFull::Sender(_) => QueueLimit::Sender,
            QueueFull::Room => QueueLimit::Room,
        }
    }
}

/// Handed-over messages remembered so that a stale replica cannot bring them back.
pub const TOMBSTONES: usize = 10_000;

/// Kept direct messages by recipient name.
#[derive(Debug, Default, Clone)]
pub struct OfflineQueue {
    by_recipient: BTreeMap<String, VecDeque<QueuedDm>>,
    /// How many messages `by_recipient` holds in all.
    total: usize,
    /// Messages handed over (oldest first, by origin, id and recipient), never kept again.
    handed_over: VecDeque<(NodeId, DmId, String)>,
    /// Changes not yet taken by [`OfflineQueue::take_journal`] (`None`: not recorded).
    journal: Option<Vec<Write>>,
}

fn same(a: &QueuedDm, origin: NodeId, id: DmId) -> bool {
    a.origin == origin && a.dm.id == id
}

impl OfflineQueue {
    /// Starts recording every change, for [`OfflineQueue::take_journal`].
    pub fn record_changes(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// The changes since the last call, oldest first (none unless recording).
    pub fn take_journal(&mut self) -> Vec<Write> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Remembers that a message was handed over already (restoring saved state): it is
    /// never kept again.
    pub fn remember_handed_over(&mut self, to: &str, origin: NodeId, id: DmId) {
        if !to.is_empty() && !self.was_handed_over(to, origin, id) {
            if self.handed_over.len() == TOMBSTONES {
                self.handed_over.pop_front();
            }
            self.handed_over.push_back((origin, id, to.to_string()));
            if let Some(j) = self.journal.as_mut() {
                j.push(Write::HandedOver {
                    to: to.to_string(),
                    origin,
                    id,
                });
            }
        }
    }

    /// Keeps `item` for its recipient. `Ok(false)` if it was kept already (a retry).
    pub fn push(&mut self, item: QueuedDm) -> Result<bool, QueueFull> {
        let to = item.recipient().to_string();
        if self.was_handed_over(&to, item.origin, item.dm.id) {
            return Ok(false);
        }
        let q = self.by_recipient.entry(to.clone()).or_default();
        if q.iter().any(|x| same(x, item.origin, item.dm.id)) {
            return Ok(false);
        }
        if q.len() >= MAX_QUEUE_PER_USER {
            return Err(QueueFull::Recipient(to));
        }
        if q.iter().filter(|x| x.origin == item.origin).count() >= MAX_QUEUE_PER_SENDER {
            return Err(QueueFull::Sender(to));
        }
        if self.total >= MAX_QUEUE_TOTAL {
            if q.is_empty() {
                self.by_recipient.remove(&to);
            }
            return Err(QueueFull::Room);
        }
        // Keep each sender's messages in the order it sent them (ids grow per sender),
        // even if its store requests arrived out of order.
        let at = q
            .iter()
            .position(|x| x.origin == item.origin && x.dm.id > item.dm.id)
            .unwrap_or(q.len());
        if let Some(j) = self.journal.as_mut() {
            j.push(Write::Kept(item.clone()));
        }
        q.insert(at, item);
        self.total += 1;
        Ok(true)
    }

    /// Whether a message was handed over to `to` already.
    pub fn was_handed_over(&self, to: &str, origin: NodeId, id: DmId) -> bool {
        self.handed_over
            .iter()
            .any(|(o, i, t)| *o == origin && *i == id && t == to)
    }

    /// Removes a handed-over message and remembers it; `true` if it was kept here.
    pub fn remove(&mut self, to: &str, origin: NodeId, id: DmId) -> bool {
        self.remember_handed_over(to, origin, id);
        let Some(q) = self.by_recipient.get_mut(to) else {
            return false;
        };
        let before = q.len();
        q.retain(|x| !same(x, origin, id));
        let removed = q.len() != before;
        self.total -= before - q.len();
        if q.is_empty() {
            self.by_recipient.remove(to);
        }
        removed
    }

    /// Whether a message from the user `from` is kept for `to`.
    pub fn holds_from(&self, to: &str, from: &str) -> bool {
        self.by_recipient
            .get(to)
            .is_some_and(|q| q.iter().any(|x| x.dm.from_name == from))
    }

    /// The oldest message kept for `to`.
    pub fn front(&self, to: &str) -> Option<&QueuedDm> {
        self.by_recipient.get(to).and_then(VecDeque::front)
    }

    /// Recipients with kept messages.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.by_recipient.keys().map(String::as_str)
    }

    /// Every kept message, by recipient, oldest first.
    pub fn items(&self) -> impl Iterator<Item = &QueuedDm> {
        self.by_recipient.values().flatten()
    }

    #[cfg(test)]
    /// How many messages are kept for `to`.
    pub fn len_for(&self, to: &str) -> usize {
        self.by_recipient.get(to).map_or(0, VecDeque::len)
    }

    /// How many messages are kept in all.
    pub fn len(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DirectMessage;

    fn item(origin: u64, id: u64, to: &str) -> QueuedDm {
        QueuedDm {
            origin: NodeId(origin),
            to: 0,
            dm: DirectMessage {
                id: DmId(id),
                from_name: "y".into(),
                to: vec![to.into()],
                sealed: format!("t{id}").into_bytes(),
            },
        }
    }

    #[test]
    fn keeps_order_per_recipient_and_ignores_retries() {
        let mut q = OfflineQueue::default();
        assert_eq!(q.push(item(1, 1, "x")), Ok(true));
        assert_eq!(q.push(item(2, 1, "x")), Ok(true));
        assert_eq!(
            q.push(item(1, 1, "x")),
            Ok(false),
            "a retry is not kept twice"
        );
        assert_eq!(q.push(item(1, 2, "z")), Ok(true));
        assert_eq!(q.front("x").unwrap().origin, NodeId(1));
        assert!(q.remove("x", NodeId(1), DmId(1)));
        assert!(!q.remove("x", NodeId(1), DmId(1)));
        assert_eq!(q.front("x").unwrap().origin, NodeId(2));
        assert_eq!(q.len(), 2);
        assert_eq!(
            q.push(item(1, 1, "x")),
            Ok(false),
            "handed over: not kept again"
        );
    }

    #[test]
    fn a_senders_messages_stay_in_its_order() {
        let mut q = OfflineQueue::default();
        q.push(item(1, 2, "x")).unwrap();
        q.push(item(2, 1, "x")).unwrap();
        q.push(item(1, 1, "x")).unwrap();
        let order: Vec<(u64, u64)> = q.items().map(|i| (i.origin.0, i.dm.id.0)).collect();
        assert_eq!(order, vec![(1, 1), (1, 2), (2, 1)]);
    }

    #[test]
    fn records_changes_only_when_asked() {
        let mut q = OfflineQueue::default();
        q.push(item(1, 1, "x")).unwrap();
        assert!(q.take_journal().is_empty(), "not recording");
        q.record_changes();
        q.push(item(1, 2, "x")).unwrap();
        q.push(item(1, 2, "x")).unwrap(); // a retry: nothing new
        q.remove("x", NodeId(1), DmId(1));
        q.remove("x", NodeId(1), DmId(1)); // again: nothing new
        let j = q.take_journal();
        assert_eq!(j.len(), 2, "{j:?}");
        assert!(matches!(&j[0], Write::Kept(i) if i.dm.id == DmId(2)));
        assert_eq!(
            j[1],
            Write::HandedOver {
                to: "x".into(),
                origin: NodeId(1),
                id: DmId(1)
            }
        );
        assert!(q.take_journal().is_empty());
    }

    #[test]
    fn full_queue_refuses_and_says_so() {
        let mut q = OfflineQueue::default();
        let senders = (MAX_QUEUE_PER_USER / MAX_QUEUE_PER_SENDER) as u64;
        for i in 0..MAX_QUEUE_PER_USER as u64 {
            q.push(item(i % senders, i, "x")).unwrap();
        }
        assert_eq!(
            q.push(item(99, 99_999, "x")),
            Err(QueueFull::Recipient("x".into()))
        );
        assert_eq!(q.len_for("x"), MAX_QUEUE_PER_USER);
    }

    /// One sender fills its own share of a recipient's queue, not the others': past
    /// [`MAX_QUEUE_PER_SENDER`] it is refused, and another sender's message is kept.
    #[test]
    fn one_sender_cannot_fill_a_recipients_queue() {
        let mut q = OfflineQueue::default();
        for i in 0..MAX_QUEUE_PER_SENDER as u64 {
            q.push(item(1, i, "dave")).unwrap();
        }
        assert_eq!(
            q.push(item(1, 5_000, "dave")),
            Err(QueueFull::Sender("dave".into()))
        );
        assert_eq!(q.push(item(2, 1, "dave")), Ok(true));
        // Its share frees up as its messages are handed over.
        assert!(q.remove("dave", NodeId(1), DmId(0)));
        assert_eq!(q.push(item(1, 5_000, "dave")), Ok(true));
    }

    /// The whole queue is bounded, whatever the recipients and senders, and the count
    /// follows removals.
    #[test]
    fn the_whole_queue_is_bounded() {
        let mut q = OfflineQueue::default();
        let mut i = 0u64;
        while q.len() < MAX_QUEUE_TOTAL {
            q.push(item(i % 1000, i, &format!("r{}", i / 500))).unwrap();
            i += 1;
        }
        assert_eq!(q.push(item(7, u64::MAX, "fresh")), Err(QueueFull::Room));
        assert!(q.recipients().all(|r| r != "fresh"), "no empty entry left");
        assert!(q.remove("r0", NodeId(0), DmId(0)));
        assert_eq!(q.len(), MAX_QUEUE_TOTAL - 1);
        assert_eq!(q.len(), q.items().count());
        assert_eq!(q.push(item(7, u64::MAX, "fresh")), Ok(true));
    }
}
