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
    use super::super::{Reliable, Transmit};
    use super::*;
    use crate::ids::NodeId;
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    const MS: Duration = Duration::from_millis(1);
    const ME: NodeId = NodeId(42);

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

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

    /// Sends `n` messages to `to` (tokens 1 to `n`); returns the packets that left at once.
    fn send_many(r: &mut Reliable<u64>, now: Instant, to: SocketAddr, n: u64) -> Vec<MsgId> {
        let mut left = Vec::new();
        for token in 1..=n {
            let bytes = r
                .send(now, to, token, 3, |id| {
                    Ok::<_, ()>(id.0.to_le_bytes().to_vec())
                })
                .unwrap();
            left.extend(bytes.map(|b| MsgId(u64::from_le_bytes(b.try_into().unwrap()))));
        }
        left
    }

    /// The receiving side takes `ids` from us (at `from`) and acks them; the acks come back.
    /// Returns the ids it took for new.
    fn deliver(
        r: &mut Reliable<u64>,
        receiver: &mut Reliable<u64>,
        now: Instant,
        to: SocketAddr,
        ids: &[MsgId],
    ) -> Vec<MsgId> {
        let new: Vec<MsgId> = ids
            .iter()
            .copied()
            .filter(|id| receiver.on_data(addr(9), ME, *id))
            .collect();
        for (_, ack) in receiver.take_acks() {
            r.on_ack(now, to, &ack);
        }
        new
    }

    fn ids_of(out: &[Transmit]) -> Vec<MsgId> {
        out.iter()
            .map(|t| MsgId(u64::from_le_bytes(t.bytes.clone().try_into().unwrap())))
            .collect()
    }

    /// More messages than the receiver's duplicate window, the first lost once: its resend
    /// is taken as new, not acked as a duplicate and dropped (which the floor of a window
    /// jumped over a gap did to it, its sender counting it delivered), and every message is
    /// taken once.
    #[test]
    fn a_message_lost_once_behind_more_than_a_window_is_still_taken() {
        let t0 = Instant::now();
        let to = addr(1);
        let mut r: Reliable<u64> = Reliable::new(500 * MS);
        let mut receiver: Reliable<u64> = Reliable::new(500 * MS);
        let n = 2 * SEND_WINDOW + 10;
        let left = send_many(&mut r, t0, to, n);
        assert_eq!(left.len() as u64, SEND_WINDOW, "the rest wait");
        assert_eq!(r.waiting() as u64, n - SEND_WINDOW);
        // The first is lost; the others arrive and are acked.
        let mut taken = deliver(&mut r, &mut receiver, t0, to, &left[1..]);
        assert_eq!(taken.len(), left.len() - 1);
        assert!(
            r.take_released().is_empty(),
            "the first still holds the window"
        );
        // Its resend comes after its timeout.
        let mut out = Vec::new();
        r.poll_retransmits(t0 + 500 * MS, &mut out);
        assert_eq!(ids_of(&out), [left[0]]);
        let t1 = t0 + 501 * MS;
        taken.extend(deliver(&mut r, &mut receiver, t1, to, &ids_of(&out)));
        assert!(taken.contains(&left[0]), "the resend is taken as new");
        // Then the window opens, a window's worth at a time.
        for _ in 0..3 {
            let released = ids_of(&r.take_released());
            taken.extend(deliver(&mut r, &mut receiver, t1, to, &released));
        }
        taken.sort();
        assert_eq!(taken.len() as u64, n, "every message once");
        taken.dedup();
        assert_eq!(taken.len() as u64, n);
        assert_eq!((r.in_flight(), r.waiting()), (0, 0));
    }

    /// A message given up opens the window: what waited behind it leaves, and the receiver's
    /// floor moves over the gap only then.
    #[test]
    fn a_message_given_up_lets_the_waiting_ones_go() {
        let t0 = Instant::now();
        let to = addr(1);
        let mut r: Reliable<u64> = Reliable::new(500 * MS);
        let mut receiver: Reliable<u64> = Reliable::new(500 * MS);
        let n = SEND_WINDOW + 5;
        let left = send_many(&mut r, t0, to, n);
        deliver(&mut r, &mut receiver, t0, to, &left[1..]);
        let mut out = Vec::new();
        let mut gave_up = Vec::new();
        let mut t = t0;
        while gave_up.is_empty() {
            t += 500 * MS;
            gave_up.extend(r.poll_retransmits(t, &mut out).1);
            assert!(t < t0 + Duration::from_secs(10), "never given up");
        }
        assert_eq!(gave_up.iter().map(|g| g.token).collect::<Vec<_>>(), [1]);
        let released = ids_of(&r.take_released());
        assert_eq!(released.len(), 5);
        let taken = deliver(&mut r, &mut receiver, t, to, &released);
        assert_eq!(taken, released, "all new");
        assert_eq!((r.in_flight(), r.waiting()), (0, 0));
    }

    /// Cancelling everything to a destination drops what waits for it too.
    #[test]
    fn cancelling_a_destination_drops_its_waiting_messages() {
        let t0 = Instant::now();
        let to = addr(1);
        let mut r: Reliable<u64> = Reliable::new(500 * MS);
        send_many(&mut r, t0, to, SEND_WINDOW + 3);
        assert_eq!(r.cancel_to(to).len() as u64, SEND_WINDOW + 3);
        assert_eq!((r.in_flight(), r.waiting(), r.in_flight_to(to)), (0, 0, 0));
        // The stream goes on from where it was, with nothing waiting ahead of it.
        assert_eq!(send_many(&mut r, t0, to, 1).len(), 1);
    }
}
