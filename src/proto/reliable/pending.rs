//! [`PendingTable`]: the messages awaiting an ack, by id.
//!
//! The ordered index holds only ids and slot numbers; the messages themselves (each with
//! its encoded bytes and the owner's token, a few hundred bytes) stay put in a slab, so
//! acking the oldest message does not shift its neighbours in the index's nodes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use crate::ids::MsgId;

/// One message awaiting an ack.
#[derive(Debug)]
pub(super) struct Pending<T> {
    pub(super) to: SocketAddr,
    /// The encoded packet, sent again as it is.
    pub(super) bytes: Vec<u8>,
    pub(super) retries_left: u32,
    /// Retransmissions so far (0: sent once, a round-trip sample is valid).
    pub(super) resends: u32,
    /// When it was last sent.
    pub(super) sent_at: Instant,
    /// When it was first sent.
    pub(super) first_sent: Instant,
    /// The destination's timeout when it was first sent (before patience): a timeout of
    /// its first copy backs off an unmeasured destination only if no other did since.
    pub(super) first_rto: Duration,
    pub(super) deadline: Instant,
    /// The shortest wait before a resend (see [`super::Reliable::send_patient`]).
    pub(super) patience: Duration,
    /// Whether an ack from outside a session may settle it: a message of the join
    /// exchange, the only kind sent outside sessions (see `guard::phase`).
    pub(super) outside_ok: bool,
    pub(super) token: T,
}

/// Pending messages by id.
#[derive(Debug)]
pub(super) struct PendingTable<T> {
    index: BTreeMap<MsgId, usize>,
    slots: Vec<Option<Pending<T>>>,
    /// Empty slots.
    free: Vec<usize>,
}

impl<T> Default for PendingTable<T> {
    fn default() -> Self {
        PendingTable {
            index: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> PendingTable<T> {
    /// Adds (or replaces) the message `id`.
    pub(super) fn insert(&mut self, id: MsgId, p: Pending<T>) {
        if let Some(&slot) = self.index.get(&id) {
            self.slots[slot] = Some(p);
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(p);
                slot
            }
            None => {
                self.slots.push(Some(p));
                self.slots.len() - 1
            }
        };
        self.index.insert(id, slot);
    }

    /// Takes the message `id` out.
    pub(super) fn remove(&mut self, id: &MsgId) -> Option<Pending<T>> {
        let slot = self.index.remove(id)?;
        let p = self.slots.get_mut(slot)?.take();
        self.free.push(slot);
        p
    }

    /// The message `id`.
    pub(super) fn get_mut(&mut self, id: &MsgId) -> Option<&mut Pending<T>> {
        let slot = *self.index.get(id)?;
        self.slots.get_mut(slot)?.as_mut()
    }

    /// The messages with ids in `range`, in id order.
    pub(super) fn range(
        &self,
        range: RangeInclusive<MsgId>,
    ) -> impl Iterator<Item = (MsgId, &Pending<T>)> {
        self.index
            .range(range)
            .filter_map(|(id, &slot)| Some((*id, self.slots.get(slot)?.as_ref()?)))
    }

    /// Every message, in id order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (MsgId, &Pending<T>)> {
        self.index
            .iter()
            .filter_map(|(id, &slot)| Some((*id, self.slots.get(slot)?.as_ref()?)))
    }

    /// How many messages.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(n: u32) -> Pending<u32> {
        let t = Instant::now();
        Pending {
            to: SocketAddr::from(([127, 0, 0, 1], 1)),
            bytes: Vec::new(),
            retries_left: 0,
            resends: 0,
            sent_at: t,
            first_sent: t,
            first_rto: Duration::ZERO,
            deadline: t,
            patience: Duration::ZERO,
            outside_ok: false,
            token: n,
        }
    }

    /// Against a plain ordered map: slots are reused and lookups stay right.
    #[test]
    fn behaves_as_an_ordered_map() {
        let mut t = PendingTable::default();
        let mut model = BTreeMap::new();
        let mut x: u64 = 3;
        for step in 0..3000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = MsgId::new((x >> 63) as u32, (x >> 40) % 200);
            if (x >> 20).is_multiple_of(2) {
                t.insert(id, pending(step));
                model.insert(id, step);
            } else {
                assert_eq!(t.remove(&id).map(|p| p.token), model.remove(&id));
            }
            if let Some(p) = t.get_mut(&id) {
                p.token += 1;
                *model.get_mut(&id).unwrap() += 1;
            }
            assert_eq!(t.len(), model.len());
        }
        let all: Vec<(MsgId, u32)> = t.iter().map(|(id, p)| (id, p.token)).collect();
        let expected: Vec<(MsgId, u32)> = model.iter().map(|(id, n)| (*id, *n)).collect();
        assert_eq!(all, expected);
        let lo = MsgId::new(0, 50);
        let hi = MsgId::new(0, 150);
        let some: Vec<MsgId> = t.range(lo..=hi).map(|(id, _)| id).collect();
        let expected: Vec<MsgId> = model.range(lo..=hi).map(|(id, _)| *id).collect();
        assert_eq!(some, expected);
        assert!(t.slots.len() <= 400, "slots are reused: {}", t.slots.len());
    }
}
