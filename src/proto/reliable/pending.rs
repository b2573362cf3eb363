//! [`PendingTable`]: the messages awaiting an ack, by id.
//!
//! The index holds only slot numbers, per stream in a deque from its oldest pending
//! number (ids are given out in order, and mostly acked in order); the messages
//! themselves (each with its encoded bytes and the owner's token, a few hundred bytes)
//! stay put in a slab, so acking the oldest message moves nothing else.

use std::collections::{BTreeMap, VecDeque};
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
    /// Per stream, the slot of each number from its first pending one on.
    streams: BTreeMap<u32, Stream>,
    slots: Vec<Option<Pending<T>>>,
    /// Empty slots.
    free: Vec<usize>,
    /// Messages held.
    len: usize,
}

/// No slot: that number is not pending.
const NONE: u32 = u32::MAX;

/// One stream's pending numbers: `slots[i]` is the slot of number `first + i` (or
/// [`NONE`]). Its ids are given out in order and mostly acked in order, so a message is
/// added at the back and taken near the front; both ends are kept on a pending number.
#[derive(Debug, Default)]
struct Stream {
    first: u64,
    slots: VecDeque<u32>,
}

impl Stream {
    /// Where number `seq` is (or would be) among `slots`.
    fn index(&self, seq: u64) -> Option<usize> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        (i < self.slots.len()).then_some(i)
    }

    /// The slot of number `seq`, if pending.
    fn slot(&self, seq: u64) -> Option<usize> {
        let s = *self.slots.get(self.index(seq)?)?;
        (s != NONE).then_some(s as usize)
    }

    /// Makes room for number `seq` and returns its index.
    fn place(&mut self, seq: u64) -> usize {
        if self.slots.is_empty() {
            self.first = seq;
        }
        if seq < self.first {
            for _ in seq..self.first {
                self.slots.push_front(NONE);
            }
            self.first = seq;
        }
        let i = (seq - self.first) as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, NONE);
        }
        i
    }

    /// Drops the numbers no longer pending from both ends.
    fn trim(&mut self) {
        while self.slots.back() == Some(&NONE) {
            self.slots.pop_back();
        }
        while self.slots.front() == Some(&NONE) {
            self.slots.pop_front();
            self.first += 1;
        }
    }
}

impl<T> Default for PendingTable<T> {
    fn default() -> Self {
        PendingTable {
            streams: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> PendingTable<T> {
    /// Adds (or replaces) the message `id`.
    pub(super) fn insert(&mut self, id: MsgId, p: Pending<T>) {
        let stream = self.streams.entry(id.stream()).or_default();
        if let Some(slot) = stream.slot(id.seq()) {
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
        let i = stream.place(id.seq());
        stream.slots[i] = u32::try_from(slot).expect("fewer pending messages than u32::MAX");
        self.len += 1;
    }

    /// Takes the message `id` out.
    pub(super) fn remove(&mut self, id: &MsgId) -> Option<Pending<T>> {
        let slot = self.unlink(id)?;
        self.slots.get_mut(slot)?.take()
    }

    /// Takes the message `id` out, keeping only what `keep` reads from it: the message
    /// is dropped where it lies, not moved out whole (on an ack, the few fields wanted).
    pub(super) fn remove_with<R>(
        &mut self,
        id: &MsgId,
        keep: impl FnOnce(&Pending<T>) -> R,
    ) -> Option<R> {
        let slot = self.unlink(id)?;
        let cell = self.slots.get_mut(slot)?;
        let kept = keep(cell.as_ref()?);
        *cell = None;
        Some(kept)
    }

    /// Forgets number `id` in its stream and frees its slot, which it returns (still
    /// holding the message).
    fn unlink(&mut self, id: &MsgId) -> Option<usize> {
        let stream = self.streams.get_mut(&id.stream())?;
        let i = stream.index(id.seq())?;
        let slot = std::mem::replace(&mut stream.slots[i], NONE);
        if slot == NONE {
            return None;
        }
        stream.trim();
        if stream.slots.is_empty() {
            self.streams.remove(&id.stream());
        }
        self.free.push(slot as usize);
        self.len -= 1;
        Some(slot as usize)
    }

    /// The message `id`.
    pub(super) fn get(&self, id: &MsgId) -> Option<&Pending<T>> {
        let slot = self.streams.get(&id.stream())?.slot(id.seq())?;
        self.slots.get(slot)?.as_ref()
    }

    /// The message `id`, to change.
    pub(super) fn get_mut(&mut self, id: &MsgId) -> Option<&mut Pending<T>> {
        let slot = self.streams.get(&id.stream())?.slot(id.seq())?;
        self.slots.get_mut(slot)?.as_mut()
    }

    /// The messages with ids in `range`, in id order.
    pub(super) fn range(
        &self,
        range: RangeInclusive<MsgId>,
    ) -> impl Iterator<Item = (MsgId, &Pending<T>)> {
        let (lo, hi) = (*range.start(), *range.end());
        // An empty range (start above end) reads nothing.
        let streams = if lo <= hi { usize::MAX } else { 0 };
        self.streams
            .range(lo.stream().min(hi.stream())..=hi.stream())
            .take(streams)
            .flat_map(move |(&n, stream)| {
                // This stream's part of the range, as indices into its slots.
                let from = if n == lo.stream() { lo.seq() } else { 0 };
                let to = if n == hi.stream() { hi.seq() } else { u64::MAX };
                let start = from.saturating_sub(stream.first);
                let end = to
                    .checked_sub(stream.first)
                    .map_or(0, |e| e.saturating_add(1))
                    .min(stream.slots.len() as u64);
                let (start, end) = (start.min(end) as usize, end as usize);
                stream
                    .slots
                    .range(start..end)
                    .enumerate()
                    .map(move |(k, &slot)| (n, stream.first + (start + k) as u64, slot))
            })
            .filter(|&(_, _, slot)| slot != NONE)
            .filter_map(|(n, seq, slot)| {
                Some((MsgId::new(n, seq), self.slots.get(slot as usize)?.as_ref()?))
            })
    }

    /// Every message, in id order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (MsgId, &Pending<T>)> {
        self.range(MsgId(0)..=MsgId(u64::MAX))
    }

    /// How many messages.
    pub(super) fn len(&self) -> usize {
        self.len
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
            // Three streams; each mostly sends in order and is acked mostly in order.
            let id = MsgId::new(((x >> 61) % 3) as u32, (x >> 40) % 200);
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
            // Any range, across streams or empty, reads what the map's would.
            let (a, b) = (x.rotate_left(17), x.rotate_left(41));
            let end = |v: u64| MsgId::new(((v >> 61) % 3) as u32, (v >> 30) % 220);
            let (lo, hi) = (end(a), end(b));
            let got: Vec<(MsgId, u32)> = t.range(lo..=hi).map(|(id, p)| (id, p.token)).collect();
            let want: Vec<(MsgId, u32)> = if lo <= hi {
                model.range(lo..=hi).map(|(id, n)| (*id, *n)).collect()
            } else {
                Vec::new()
            };
            assert_eq!(got, want, "range {lo:?}..={hi:?} at step {step}");
        }
        let all: Vec<(MsgId, u32)> = t.iter().map(|(id, p)| (id, p.token)).collect();
        let expected: Vec<(MsgId, u32)> = model.iter().map(|(id, n)| (*id, *n)).collect();
        assert_eq!(all, expected);
        let lo = MsgId::new(0, 50);
        let hi = MsgId::new(0, 150);
        let some: Vec<MsgId> = t.range(lo..=hi).map(|(id, _)| id).collect();
        let expected: Vec<MsgId> = model.range(lo..=hi).map(|(id, _)| *id).collect();
        assert_eq!(some, expected);
        assert!(t.slots.len() <= 600, "slots are reused: {}", t.slots.len());
    }

    /// `remove_with` keeps `len`, `free`, streams and slots as `remove` does: against a
    /// plain map, with every slot free or used once and every stream trimmed.
    #[test]
    fn remove_with_keeps_the_table_as_remove_does() {
        let mut t = PendingTable::default();
        let mut model = BTreeMap::new();
        let mut x: u64 = 11;
        for step in 0..20000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = MsgId::new(((x >> 61) % 3) as u32, (x >> 40) % 300);
            match (x >> 20) % 3 {
                0 => {
                    t.insert(id, pending(step));
                    model.insert(id, step);
                }
                1 => assert_eq!(t.remove_with(&id, |p| p.token), model.remove(&id)),
                _ => assert_eq!(t.remove(&id).map(|p| p.token), model.remove(&id)),
            }
            assert_eq!(t.len(), model.len());
            let used = t.slots.iter().filter(|c| c.is_some()).count();
            assert_eq!(used, model.len(), "cells held = len");
            let free: std::collections::BTreeSet<usize> = t.free.iter().copied().collect();
            assert_eq!(free.len(), t.free.len(), "a slot freed twice");
            for &f in &t.free {
                assert!(t.slots[f].is_none(), "freed slot {f} still holds a message");
            }
            assert_eq!(free.len() + used, t.slots.len(), "every slot free or used");
            let mut seen = std::collections::BTreeSet::new();
            for st in t.streams.values() {
                assert!(!st.slots.is_empty());
                assert_ne!(st.slots.front(), Some(&NONE));
                assert_ne!(st.slots.back(), Some(&NONE));
                for &s in st.slots.iter().filter(|&&s| s != NONE) {
                    assert!(seen.insert(s), "slot {s} linked twice");
                    assert!(t.slots[s as usize].is_some());
                }
            }
            assert_eq!(seen.len(), used);
        }
    }
}
