//! The reliability layer: message ids, the pending table with deadlines, acks, bounded
//! retries with an adaptive timeout, the duplicate window, and give-up reports.
//!
//! It knows nothing of chat: each pending message carries an opaque token `T` that the
//! owner gets back when the message is acked ([`Reliable::on_ack`]) or given up
//! ([`Reliable::poll_retransmits`]).
//!
//! # Ids and acks
//!
//! Ids are numbered per destination address (a stream, see [`MsgId`]), so a receiver acks
//! cumulatively: one [`Ack`] packet says "all up to N, and these ranges above". The
//! receiving side is in [`receipts`].
//!
//! # Retransmission timeout
//!
//! Per destination, RFC 6298 ([`rtt`]): the first timeout is the configured one (the
//! `ack_timeout`, 500 ms by default); each ack of a message sent only once gives a
//! round-trip sample (Karn's rule: a retransmitted message is sampled only when its ack
//! cannot be the resend's, see below). Each retransmission of a message doubles its
//! timeout.
//!
//! On a measured fast peer no wait between tries is longer than the configured timeout,
//! so a message to a peer that stopped answering is given up within (1 + `max_retries`)
//! × 500 ms = 4.5 s at most, and sooner (20, 40, 80, 160, 320, then 500 ms waits: 2.6 s).
//! Detecting a dead peer is the heartbeats' job, not this layer's.
//!
//! A path slower than the configured timeout (a round trip of 600 ms on links of 100 to
//! 400 ms each way) gets a timeout of its own, up to [`MAX_RTO_FACTOR`] times the
//! configured one (2 s), and waits as long as its timeout between tries: a message to
//! such a peer is given up after (1 + `max_retries`) of its timeouts, up to 18 s. Two
//! rules let it be learned. While a peer is unmeasured, each timeout doubles its first
//! timeout for later messages too (once per timeout, however many messages it caught),
//! so the next message's ack comes before its resend and is sampled; such a long first
//! wait stands for the resends of the first timeout it replaces, so a message to an
//! unmeasured peer is still given up within 4.5 s. And the ack of a message resent once
//! is a sample of its first copy's round trip when it comes sooner after the resend than
//! half the shortest round trip ever measured to that peer: too soon to answer the
//! resend (a spurious resend, as Eifel detection in TCP finds). Without them a path
//! slower than the first timeout resent every message before its ack could come, and
//! sampled only the fastest round trips, so it never learned the rest. Nothing sent
//! before this node was away (its process stopped) is sampled: its ack waited in our
//! socket for our return.

mod deadlines;
mod pending;
pub mod receipts;
mod receive;
pub mod rtt;
mod settle;

use deadlines::Deadlines;
use pending::{Pending, PendingTable};
pub use receipts::DedupeWindow;
use receipts::Receipts;
use rtt::{MIN_RTO, RttEstimator};

use crate::ids::MsgId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A datagram to send (from [`crate::proto::Node::poll_transmit`]), or, inside the
/// reliability layer, one encoded packet for a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// The encoded datagram (or packet).
    pub bytes: Vec<u8>,
}

/// A message the layer stopped retransmitting without an ack.
#[derive(Debug, PartialEq, Eq)]
pub struct GaveUp<T> {
    /// The owner's token.
    pub token: T,
    /// The peer that never acked.
    pub to: SocketAddr,
}

/// One destination: its id stream and its round-trip estimate.
#[derive(Debug)]
struct Peer {
    stream: u32,
    next_seq: u64,
    /// The stream of what goes to it outside a session (the join exchange), taken on
    /// first use, and its next number: apart from the session stream, whose receiver
    /// then sees 1, 2, 3, ... and can ack a prefix (see `receipts.rs`).
    outside: Option<(u32, u64)>,
    rtt: RttEstimator,
    /// Messages to this destination awaiting an ack.
    in_flight: usize,
    /// When the newest message of ours it acked was sent: it heard us after then.
    heard_us: Option<Instant>,
    /// When a message to it was last sent or resent.
    last_sent: Option<Instant>,
    /// The shortest round trip sampled to it.
    least_rtt: Option<Duration>,
}

/// A path's measured timeout may grow to this many times the configured one.
pub const MAX_RTO_FACTOR: u32 = 4;

/// The longest a message may be resent before it is given up, on the slowest path: after
/// that, whatever of it never arrived never will.
pub fn longest_resend(ack_timeout: Duration, max_retries: u32) -> Duration {
    ack_timeout * MAX_RTO_FACTOR * (1 + max_retries)
}

/// How many destinations are remembered; past it, those with nothing in flight are
/// forgotten (a forgotten destination gets a new stream when sent to again).
pub const MAX_PEERS: usize = 4096;

/// Ack tracking and retransmission for reliable messages.
#[derive(Debug)]
pub struct Reliable<T> {
    peers: BTreeMap<SocketAddr, Peer>,
    next_stream: u32,
    pending: PendingTable<T>,
    /// `pending`'s deadlines, earliest first (with stale ones: see [`Deadlines`]).
    deadlines: Deadlines,
    receipts: Receipts,
    /// Receipts of what came outside a session (see [`Receipts::outside`]).
    outside: Receipts,
    /// The timeout of a destination not measured yet, and the longest wait between tries
    /// to one measured faster.
    initial_rto: Duration,
    /// Messages first sent before this were sent before this node was last away: their
    /// round trips are not sampled.
    unsampled_before: Option<Instant>,
    /// How many times a measured path changed (see [`Reliable::paths_version`]).
    paths_version: u64,
}

impl<T: Clone> Reliable<T> {
    /// A layer whose first timeout to any destination is `ack_timeout`, also the longest
    /// wait between two tries (see the module documentation).
    pub fn new(ack_timeout: Duration) -> Self {
        Reliable {
            peers: BTreeMap::new(),
            next_stream: 0,
            pending: PendingTable::default(),
            deadlines: Deadlines::default(),
            receipts: Receipts::default(),
            outside: Receipts::outside(),
            initial_rto: ack_timeout,
            unsampled_before: None,
            paths_version: 0,
        }
    }

    /// This node was away (its process stopped) until `now`: acks of what it sent before
    /// waited in its socket, and their round trips say nothing of the paths.
    pub fn was_away(&mut self, now: Instant) {
        self.unsampled_before = Some(now);
    }

    /// The longest a measured timeout may grow to.
    fn max_rto(&self) -> Duration {
        self.initial_rto * MAX_RTO_FACTOR
    }

    fn floor(&self) -> Duration {
        MIN_RTO.min(self.initial_rto)
    }

    fn peer(&mut self, to: SocketAddr) -> &mut Peer {
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&to) {
            let busy: BTreeSet<SocketAddr> = self.pending.iter().map(|(_, p)| p.to).collect();
            self.peers.retain(|a, _| busy.contains(a));
            self.paths_version += 1;
        }
        let (streams, initial) = (&mut self.next_stream, self.initial_rto);
        self.peers.entry(to).or_insert_with(|| {
            let stream = *streams;
            *streams = streams.saturating_add(1).min(MsgId::MAX_STREAM);
            Peer {
                stream,
                next_seq: 1,
                outside: None,
                rtt: RttEstimator::new(initial),
                in_flight: 0,
                heard_us: None,
                last_sent: None,
                least_rtt: None,
            }
        })
    }

    /// Sends a new reliable message to `to`: gives it the next id of `to`'s stream,
    /// encodes it with `encode`, and tracks the encoded packet, which it returns for
    /// sending. It is resent when its timeout passes, at most `retries` times, until acked,
    /// then reported by [`Reliable::poll_retransmits`]. If `encode` fails nothing changes
    /// (the id is not used).
    pub fn send<E>(
        &mut self,
        now: Instant,
        to: SocketAddr,
        token: T,
        retries: u32,
        encode: impl FnOnce(MsgId) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        self.send_patient(now, to, token, retries, Duration::ZERO, encode)
    }

    /// [`Reliable::send`], waiting at least `patience` (but never more than the cap, the
    /// `ack_timeout`) before each resend: for a bulk transfer, whose receiver works
    /// through many messages before it acks the last, so that a timeout measured on
    /// single messages would resend what is only waiting its turn.
    pub fn send_patient<E>(
        &mut self,
        now: Instant,
        to: SocketAddr,
        token: T,
        retries: u32,
        patience: Duration,
        encode: impl FnOnce(MsgId) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        self.send_on(now, to, (token, false), retries, patience, encode)
    }

    /// [`Reliable::send`] for a message of the join exchange, which travels outside
    /// sessions: numbered in a stream of its own for `to`, and settled by an ack from
    /// outside a session too (see [`Reliable::on_ack_outside`]).
    pub fn send_outside<E>(
        &mut self,
        now: Instant,
        to: SocketAddr,
        token: T,
        retries: u32,
        encode: impl FnOnce(MsgId) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        self.send_on(now, to, (token, true), retries, Duration::ZERO, encode)
    }

    fn send_on<E>(
        &mut self,
        now: Instant,
        to: SocketAddr,
        (token, outside): (T, bool),
        retries: u32,
        patience: Duration,
        encode: impl FnOnce(MsgId) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        let patience = patience.min(self.initial_rto);
        if outside && self.peer(to).outside.is_none() {
            let stream = self.next_stream;
            self.next_stream = stream.saturating_add(1).min(MsgId::MAX_STREAM);
            self.peer(to).outside = Some((stream, 1));
        }
        let peer = self.peer(to);
        let (stream, seq) = match peer.outside {
            Some(o) if outside => o,
            _ => (peer.stream, peer.next_seq),
        };
        let id = MsgId::new(stream, seq);
        let first_rto = peer.rtt.rto();
        let rto = first_rto.max(patience);
        // A first wait stretched while the destination is unmeasured stands for the
        // resends it replaces: a message to a peer that is gone is still given up within
        // (1 + `retries`) first timeouts (4.5 s by default).
        let retries = retries.saturating_sub(peer.rtt.unmeasured_extra_waits());
        let bytes = encode(id)?;
        let next = (seq + 1).min(MsgId::MAX_SEQ);
        match &mut peer.outside {
            Some((_, n)) if outside => *n = next,
            _ => peer.next_seq = next,
        }
        peer.in_flight += 1;
        peer.last_sent = Some(now);
        let deadline = now + rto;
        self.deadlines.push(deadline, id);
        self.pending.insert(
            id,
            Pending {
                to,
                bytes: bytes.clone(),
                retries_left: retries,
                resends: 0,
                sent_at: now,
                first_sent: now,
                first_rto,
                deadline,
                patience,
                outside_ok: outside,
                token,
            },
        );
        Ok(bytes)
    }

    /// Retransmits every message whose deadline passed, pushing the encoded packets to
    /// `out`; each resend doubles the message's timeout (up to the configured timeout, or
    /// the peer's own if longer). Messages out of
    /// retries are dropped and returned. Returns also how many were resent.
    pub fn poll_retransmits(
        &mut self,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> (usize, Vec<GaveUp<T>>) {
        let mut resent = 0;
        let mut gave_up = Vec::new();
        let max_rto = self.max_rto();
        while let Some((deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            // A stale entry: acked, given up or resent since.
            let Some(p) = self.pending.get_mut(&id).filter(|p| p.deadline == deadline) else {
                continue;
            };
            if p.retries_left == 0 {
                if let Some(p) = self.pending.remove(&id) {
                    self.settled(p.to);
                    gave_up.push(GaveUp {
                        token: p.token,
                        to: p.to,
                    });
                }
                continue;
            }
            p.retries_left -= 1;
            p.resends += 1;
            p.sent_at = now;
            if let Some(peer) = self.peers.get_mut(&p.to) {
                peer.last_sent = Some(now);
                // One doubling per timeout: messages sent together time out together,
                // and only the first of them to come due backs off.
                if p.resends == 1 && peer.rtt.rto() == p.first_rto {
                    peer.rtt.back_off_unmeasured(max_rto);
                }
            }
            let wait = self.peers.get(&p.to).map_or(self.initial_rto, |peer| {
                peer.rtt
                    .backed_off(p.resends, self.initial_rto)
                    .max(p.patience)
            });
            p.deadline = now + wait;
            self.deadlines.push(p.deadline, id);
            out.push(Transmit {
                to: p.to,
                bytes: p.bytes.clone(),
            });
            resent += 1;
        }
        self.drop_stale_deadlines();
        (resent, gave_up)
    }

    /// Stops retransmitting everything addressed to `to` (the peer is known gone) and
    /// returns the tokens, so the owner can reroute or report them.
    pub fn cancel_to(&mut self, to: SocketAddr) -> Vec<T> {
        let ids: Vec<MsgId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.to == to)
            .map(|(id, _)| id)
            .collect();
        let mut tokens = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.pending.remove(&id) {
                self.settled(p.to);
                tokens.push(p.token);
            }
        }
        self.drop_stale_deadlines();
        tokens
    }

    /// Keeps the earliest deadline a live one, and the stale ones bounded.
    fn drop_stale_deadlines(&mut self) {
        let pending = &self.pending;
        self.deadlines.drop_stale(
            |at, id| pending.get(&id).is_some_and(|p| p.deadline == at),
            pending.len(),
            || pending.iter().map(|(id, p)| (p.deadline, id)).collect(),
        );
    }

    /// A message to `to` left the pending table (acked, given up or cancelled).
    fn settled(&mut self, to: SocketAddr) {
        if let Some(peer) = self.peers.get_mut(&to) {
            peer.in_flight = peer.in_flight.saturating_sub(1);
        }
    }

    /// The earliest retransmission deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| t)
    }

    /// Whether any message whose token matches `f` awaits an ack.
    pub fn any_pending(&self, f: impl Fn(&T) -> bool) -> bool {
        self.pending.iter().any(|(_, p)| f(&p.token))
    }

    /// The tokens of the messages awaiting an ack that `f` picks, in no set order.
    pub fn pending_tokens(&self, f: impl Fn(&T) -> bool) -> Vec<T>
    where
        T: Clone,
    {
        self.pending
            .iter()
            .filter(|(_, p)| f(&p.token))
            .map(|(_, p)| p.token.clone())
            .collect()
    }

    /// How many messages await an ack.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether messages to `to` await an ack and one was sent (or resent) at `since` or
    /// later.
    pub fn sent_since(&self, to: SocketAddr, since: Instant) -> bool {
        self.peers
            .get(&to)
            .is_some_and(|p| p.in_flight > 0 && p.last_sent.is_some_and(|t| t >= since))
    }

    /// When the newest message of ours that `to` acked was sent (round-trip evidence
    /// that it hears us), if it acked any.
    pub fn heard_us_at(&self, to: SocketAddr) -> Option<Instant> {
        self.peers.get(&to).and_then(|p| p.heard_us)
    }

    /// How many messages to `to` await an ack.
    pub fn in_flight_to(&self, to: SocketAddr) -> usize {
        self.peers.get(&to).map_or(0, |p| p.in_flight)
    }

    /// A number that grows whenever [`Reliable::measured`] may answer differently for
    /// some destination (a round trip sampled, destinations forgotten).
    pub fn paths_version(&self) -> u64 {
        self.paths_version
    }

    /// The smoothed round trip to `to` and the timeout a new message to it would get,
    /// once a round trip was measured.
    pub fn measured(&self, to: SocketAddr) -> Option<(Duration, Duration)> {
        let rtt = &self.peers.get(&to)?.rtt;
        rtt.srtt().map(|srtt| (srtt, rtt.rto()))
    }

    #[cfg(test)]
    /// The timeout a new message to `to` would get now.
    pub fn rto(&self, to: SocketAddr) -> Duration {
        self.peers
            .get(&to)
            .map_or(self.initial_rto, |p| p.rtt.rto())
    }
}

#[cfg(test)]
mod tests;
