//! [`Coalescer`]: packets queued per destination, packed into as few datagrams as the
//! size limit allows, and new data held back briefly while earlier data is unacked.
//!
//! The node queues every packet it sends (reliable messages, retransmissions, acks,
//! heartbeats) here instead of making a datagram of each. When its outputs are drained,
//! the packets for each destination go out together, in the order they were queued,
//! in datagrams of at most [`MAX_PLAIN`] bytes (so at most [`crate::wire::MAX_DATAGRAM`]
//! once sealed). A driver that handles several inputs before draining gets their outputs
//! coalesced too.
//!
//! # Holding back (Nagle's rule)
//!
//! A destination's queue leaves at a drain if any of these holds:
//! 1. it has a packet that never waits: an ack, a heartbeat, a retransmission (new data
//!    queued with it rides along);
//! 2. nothing sent to it in an earlier datagram awaits an ack;
//! 3. it acked something since the last datagram to it left;
//! 4. its packets fill a datagram;
//! 5. it has been held for [`HOLD_LIMIT`].
//!
//! Otherwise, when it holds only new reliable messages and earlier ones to the same
//! destination are unacked, it waits: the messages queued while one datagram is on its way
//! go together when its ack comes back (one datagram per round trip instead of one per
//! message), and never later than [`HOLD_LIMIT`] after they were first held. The first
//! message after a quiet spell leaves at once (rule 2), and acks never wait (rule 1), so
//! a peer's own held data is released as soon as it can be.

use crate::ids::{Lamport, NodeId};
use crate::proto::Transmit;
use crate::wire::{HEADER_MAX, MAX_PLAIN, assemble};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The longest new data is held back while earlier data to its destination is unacked
/// (see the module documentation). A driver whose timer is coarser adds its granularity.
pub const HOLD_LIMIT: Duration = Duration::from_millis(1);

/// The packet bytes that fill a datagram.
const FULL: usize = MAX_PLAIN - HEADER_MAX;

/// One destination's queued packets.
#[derive(Debug, Default)]
struct Queue {
    /// Encoded packets, in order.
    packets: Vec<Vec<u8>>,
    /// Their total size.
    bytes: usize,
    /// Whether a packet that never waits is among them.
    urgent: bool,
    /// New reliable messages among them (counted in flight by the reliability layer
    /// already, though not sent yet).
    fresh: usize,
    /// When the queue was first held back.
    held_since: Option<Instant>,
}

/// Packets waiting to be packed into datagrams, per destination.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// Destinations in the order their first packet was queued.
    order: Vec<SocketAddr>,
    /// Each destination's queue.
    queued: BTreeMap<SocketAddr, Queue>,
    /// Destinations that acked something since their last datagram left.
    acked: BTreeSet<SocketAddr>,
    /// The earliest instant a held queue must leave.
    deadline: Option<Instant>,
    /// Whether packets were queued or acks noted since the last drain.
    changed: bool,
}

impl Coalescer {
    /// Queues an encoded packet (at most [`crate::wire::MAX_PACKET`] bytes) for `to`
    /// that never waits: it leaves at the next drain, with everything queued for `to`.
    pub fn push(&mut self, to: SocketAddr, packet: Vec<u8>) {
        let queue = self.queue(to);
        queue.urgent = true;
        queue.bytes += packet.len();
        queue.packets.push(packet);
    }

    /// Queues a new reliable message for `to`, which may be held back while earlier data
    /// to `to` is unacked (see the module documentation).
    pub fn push_data(&mut self, to: SocketAddr, packet: Vec<u8>) {
        let queue = self.queue(to);
        queue.fresh += 1;
        queue.bytes += packet.len();
        queue.packets.push(packet);
    }

    /// Queues encoded packets for `to` ahead of those already queued for it (acks go
    /// first, as they did when each was a datagram of its own sent before the answer).
    /// They never wait.
    pub fn push_front(&mut self, to: SocketAddr, packets: Vec<Vec<u8>>) {
        let queue = self.queue(to);
        queue.urgent = true;
        queue.bytes += packets.iter().map(Vec::len).sum::<usize>();
        queue.packets.splice(0..0, packets);
    }

    fn queue(&mut self, to: SocketAddr) -> &mut Queue {
        self.changed = true;
        if !self.queued.contains_key(&to) {
            self.order.push(to);
        }
        self.queued.entry(to).or_default()
    }

    /// Notes that `to` acked something: what is held for it leaves at the next drain.
    pub fn note_acked(&mut self, to: SocketAddr) {
        self.changed = true;
        self.acked.insert(to);
    }

    /// Whether nothing is queued, held or not.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether a drain at `now` could send anything: something was queued or acked since
    /// the last drain, or a held queue's time is up.
    pub fn is_due(&self, now: Instant) -> bool {
        self.changed || self.deadline.is_some_and(|d| d <= now)
    }

    /// When the earliest held queue must leave (call [`Coalescer::drain_into`] then).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Packs into datagrams pushed to `out`, destination by destination, every queue that
    /// leaves at `now` (see the module documentation); the others stay held. A datagram
    /// is closed when the next packet would not fit. `in_flight(to)` is how many reliable
    /// messages to `to` await an ack, those queued here included. `stamp` gives each
    /// datagram's sender id and Lamport time. Returns how many datagrams.
    pub fn drain_into(
        &mut self,
        now: Instant,
        in_flight: impl Fn(SocketAddr) -> usize,
        mut stamp: impl FnMut() -> (NodeId, Lamport),
        out: &mut impl Extend<Transmit>,
    ) -> usize {
        self.changed = false;
        self.deadline = None;
        let mut datagrams = 0;
        let mut held = Vec::new();
        for to in std::mem::take(&mut self.order) {
            let Some(mut queue) = self.queued.remove(&to) else {
                continue;
            };
            let leaves = queue.urgent
                || in_flight(to) <= queue.fresh
                || self.acked.contains(&to)
                || queue.bytes >= FULL
                || queue.held_since.is_some_and(|t| now >= t + HOLD_LIMIT);
            if !leaves {
                let since = *queue.held_since.get_or_insert(now);
                let due = since + HOLD_LIMIT;
                self.deadline = Some(self.deadline.map_or(due, |d| d.min(due)));
                self.queued.insert(to, queue);
                held.push(to);
                continue;
            }
            self.acked.remove(&to);
            let mut batch: Vec<Vec<u8>> = Vec::new();
            let mut size = 0;
            for p in queue.packets.drain(..) {
                if !batch.is_empty() && size + p.len() > FULL {
                    let (from, lamport) = stamp();
                    let bytes = assemble(from, lamport, &std::mem::take(&mut batch));
                    out.extend([Transmit { to, bytes }]);
                    datagrams += 1;
                    size = 0;
                }
                size += p.len();
                batch.push(p);
            }
            if !batch.is_empty() {
                let (from, lamport) = stamp();
                out.extend([Transmit {
                    to,
                    bytes: assemble(from, lamport, &batch),
                }]);
                datagrams += 1;
            }
        }
        self.order = held;
        datagrams
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MsgId;
    use crate::wire::{Ack, MAX_PACKET, Packet, decode, encode_packet};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn ack(n: u64) -> Vec<u8> {
        encode_packet(&Packet::Ack(Ack::of_one(NodeId(n), MsgId(n)))).unwrap()
    }

    /// Drains at `now`, with `in_flight` messages awaiting an ack per destination.
    fn drain_at(c: &mut Coalescer, now: Instant, in_flight: &[(u16, usize)]) -> Vec<Transmit> {
        let mut out = Vec::new();
        let mut lamport = 0;
        c.drain_into(
            now,
            |to| {
                in_flight
                    .iter()
                    .find(|(port, _)| addr(*port) == to)
                    .map_or(0, |(_, n)| *n)
            },
            || {
                lamport += 1;
                (NodeId(u64::MAX), Lamport(u64::MAX - 100 + lamport))
            },
            &mut out,
        );
        out
    }

    /// The instant a test starts from: only differences from it matter to the coalescer,
    /// so the tests stay deterministic; the one place they read the clock.
    fn base_time() -> Instant {
        Instant::now()
    }

    fn drain(c: &mut Coalescer) -> Vec<Transmit> {
        drain_at(c, base_time(), &[])
    }

    fn data(n: u8) -> Vec<u8> {
        vec![n; 40]
    }

    /// The `data` packets a datagram ends with, by their first byte (whatever precedes
    /// them, header and acks, is shorter than one of them).
    fn data_of(t: &Transmit) -> Vec<u8> {
        let body = &t.bytes[t.bytes.len() - 40 * (t.bytes.len() / 40)..];
        body.chunks(40).map(|c| c[0]).collect()
    }

    /// Rule 2: with nothing unacked, new data leaves at once (the first message after a
    /// quiet spell is not delayed).
    #[test]
    fn new_data_to_an_idle_peer_leaves_at_once() {
        let t0 = base_time();
        let mut c = Coalescer::default();
        c.push_data(addr(1), data(1));
        // The one in flight is this message itself.
        let out = drain_at(&mut c, t0, &[(1, 1)]);
        assert_eq!(out.len(), 1);
        assert!(c.is_empty());
        assert_eq!(c.deadline(), None);
    }

    /// New data to a peer with earlier data unacked waits; more queued meanwhile joins
    /// it; the peer's ack releases all of it in one datagram.
    #[test]
    fn new_data_waits_for_the_ack_of_earlier_data() {
        let t0 = base_time();
        let mut c = Coalescer::default();
        c.push_data(addr(1), data(1));
        assert_eq!(drain_at(&mut c, t0, &[(1, 1)]).len(), 1);
        c.push_data(addr(1), data(2));
        assert!(drain_at(&mut c, t0, &[(1, 2)]).is_empty(), "1 is unacked");
        assert_eq!(c.deadline(), Some(t0 + HOLD_LIMIT));
        let t1 = t0 + Duration::from_micros(100);
        c.push_data(addr(1), data(3));
        assert!(c.is_due(t1));
        assert!(drain_at(&mut c, t1, &[(1, 3)]).is_empty());
        assert_eq!(c.deadline(), Some(t0 + HOLD_LIMIT), "held since the first");
        assert!(!c.is_due(t1), "nothing changed");
        c.note_acked(addr(1));
        let out = drain_at(&mut c, t1, &[(1, 2)]);
        assert_eq!(out.len(), 1);
        assert_eq!(data_of(&out[0]), [2, 3]);
        assert!(c.is_empty());
        assert_eq!(c.deadline(), None);
    }

    /// Rule 5: held data leaves after `HOLD_LIMIT` even if no ack ever comes (a lost
    /// datagram), and not before.
    #[test]
    fn held_data_leaves_within_the_hold_limit() {
        let t0 = base_time();
        let mut c = Coalescer::default();
        c.push_data(addr(1), data(1));
        assert!(drain_at(&mut c, t0, &[(1, 5)]).is_empty());
        let almost = t0 + HOLD_LIMIT - Duration::from_nanos(1);
        assert!(!c.is_due(almost));
        assert!(drain_at(&mut c, almost, &[(1, 5)]).is_empty());
        assert!(c.is_due(t0 + HOLD_LIMIT));
        assert_eq!(drain_at(&mut c, t0 + HOLD_LIMIT, &[(1, 5)]).len(), 1);
        assert!(c.is_empty());
    }

    /// Rule 1: an ack (or heartbeat, or retransmission) for the peer takes the held data
    /// with it; rule 4: data that fills a datagram does not wait.
    #[test]
    fn urgent_packets_and_full_datagrams_do_not_wait() {
        let t0 = base_time();
        let mut c = Coalescer::default();
        c.push_data(addr(1), data(1));
        c.push_data(addr(2), data(2));
        assert!(drain_at(&mut c, t0, &[(1, 5), (2, 5)]).is_empty());
        c.push_front(addr(1), vec![ack(7)]);
        let out = drain_at(&mut c, t0, &[(1, 5), (2, 5)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, addr(1));
        assert_eq!(data_of(&out[0]), [1], "the held packet rode with the ack");
        for n in 0..(FULL / 40) as u8 {
            c.push_data(addr(2), data(n));
        }
        let out = drain_at(&mut c, t0, &[(2, 100)]);
        // The one held before and a datagram's worth: two datagrams, all of it.
        assert_eq!(out.len(), 2, "a full datagram's worth leaves");
        assert!(out.iter().all(|t| t.to == addr(2)));
        assert!(c.is_empty());
    }

    /// Rule 3: an ack that leaves other data unacked still releases one datagram.
    #[test]
    fn each_ack_releases_what_is_held() {
        let t0 = base_time();
        let mut c = Coalescer::default();
        c.push_data(addr(1), data(1));
        assert!(drain_at(&mut c, t0, &[(1, 9)]).is_empty());
        c.note_acked(addr(1));
        assert_eq!(drain_at(&mut c, t0, &[(1, 8)]).len(), 1);
        c.push_data(addr(1), data(2));
        assert!(
            drain_at(&mut c, t0, &[(1, 9)]).is_empty(),
            "the ack was used up by the datagram it released"
        );
    }

    #[test]
    fn packets_for_one_destination_share_a_datagram_in_order() {
        let mut c = Coalescer::default();
        c.push(addr(2), ack(1));
        c.push(addr(1), ack(2));
        c.push(addr(2), ack(3));
        c.push_front(addr(2), vec![ack(4)]);
        let out = drain(&mut c);
        assert!(c.is_empty());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].to, addr(2), "first queued, first out");
        let ids: Vec<NodeId> = decode(&out[0].bytes)
            .unwrap()
            .packets
            .into_iter()
            .map(|p| match p {
                Packet::Ack(a) => a.of,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(ids, [NodeId(4), NodeId(1), NodeId(3)]);
        assert_eq!(decode(&out[1].bytes).unwrap().packets.len(), 1);
    }

    #[test]
    fn datagrams_never_exceed_the_limit() {
        let mut c = Coalescer::default();
        let big = vec![0u8; MAX_PACKET];
        for k in 0..5 {
            c.push(addr(1), big.clone());
            for n in 0..40 {
                c.push(addr(1), ack(k * 100 + n));
            }
        }
        let out = drain(&mut c);
        assert!(out.iter().all(|t| t.bytes.len() <= MAX_PLAIN));
        assert!(out.len() >= 5 && out.len() <= 10, "{} datagrams", out.len());
        let total: usize = out.iter().map(|t| t.bytes.len()).sum();
        assert!(total > 5 * MAX_PACKET);
    }
}
