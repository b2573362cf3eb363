//! Acks coming back to [`Reliable`]: the pending messages they settle and the round-trip
//! samples they give (see the module documentation of [`super`]).

use super::Reliable;
use crate::ids::MsgId;
use crate::wire::Ack;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

impl<T: Clone> Reliable<T> {
    /// Lets an ack from outside a session settle message `id` too (a welcome, whose
    /// newcomer acks from outside the room; a leave notice, whose receivers drop our
    /// sessions as they take it): see [`Reliable::on_ack_outside`].
    pub fn allow_outside_ack(&mut self, id: MsgId) {
        if let Some(p) = self.pending.get_mut(&id) {
            p.outside_ok = true;
        }
    }

    /// Handles an ack from `from` (whose `of` the caller checked is this node). Returns
    /// the tokens of the pending messages to `from` it covers, in id order; unknown,
    /// repeated or misdirected acks return nothing. The most recently sent of the
    /// messages it newly covers gives a round-trip sample, unless it was retransmitted and
    /// the ack may answer the resend (see the module's notes).
    pub fn on_ack(&mut self, now: Instant, from: SocketAddr, ack: &Ack) -> Vec<T> {
        self.settle_acked(now, from, ack, false)
    }

    /// [`Reliable::on_ack`] for an ack that came outside a session, where anyone may
    /// claim an address and an id: it settles only the messages sent outside sessions
    /// and those let through by [`Reliable::allow_outside_ack`], never the rest of what
    /// sessions carry.
    pub fn on_ack_outside(&mut self, now: Instant, from: SocketAddr, ack: &Ack) -> Vec<T> {
        self.settle_acked(now, from, ack, true)
    }

    fn settle_acked(&mut self, now: Instant, from: SocketAddr, ack: &Ack, outside: bool) -> Vec<T> {
        if ack.stream > MsgId::MAX_STREAM {
            return Vec::new();
        }
        let lo = MsgId::new(ack.stream, 1);
        let mut spans = vec![(lo, MsgId::new(ack.stream, ack.upto.min(MsgId::MAX_SEQ)))];
        for &(a, b) in &ack.ranges {
            let (a, b) = (a.clamp(1, MsgId::MAX_SEQ), b.min(MsgId::MAX_SEQ));
            spans.push((MsgId::new(ack.stream, a), MsgId::new(ack.stream, b)));
        }
        let mut acked: Vec<MsgId> = Vec::new();
        for (a, b) in spans {
            if a.seq() == 0 || a > b {
                continue;
            }
            acked.extend(
                self.pending
                    .range(a..=b)
                    .filter(|(_, p)| p.to == from && (p.outside_ok || !outside))
                    .map(|(id, _)| id),
            );
        }
        acked.sort_unstable();
        acked.dedup();
        // The newest copy acked: when it was sent, when its message was first sent, and
        // how many times it was resent.
        let mut latest: Option<(Instant, Instant, u32)> = None;
        let mut tokens = Vec::with_capacity(acked.len());
        for id in acked {
            let taken = self.pending.remove_with(&id, |p| {
                ((p.sent_at, p.first_sent, p.resends), p.token.clone())
            });
            if let Some((sent, token)) = taken {
                if latest.is_none_or(|(t, _, _)| sent.0 >= t) {
                    latest = Some(sent);
                }
                tokens.push(token);
            }
        }
        self.drop_stale_deadlines();
        let (floor, cap) = (self.floor(), self.max_rto());
        let unsampled_before = self.unsampled_before;
        if let Some(peer) = self.peers.get_mut(&from) {
            // Every message taken was to `from`.
            peer.in_flight = peer.in_flight.saturating_sub(tokens.len());
            if let Some((sent_at, _, _)) = latest {
                peer.heard_us = peer.heard_us.max(Some(sent_at));
            }
            let sample = latest.and_then(|(sent_at, first_sent, resends)| {
                // Since the newest copy was sent (the round trip, if it was the only one).
                let since_resend = now.saturating_duration_since(sent_at);
                let too_soon = |least: Duration| since_resend < least / 2;
                match resends {
                    0 => Some(since_resend),
                    1 if peer.least_rtt.is_some_and(too_soon) => {
                        Some(now.saturating_duration_since(first_sent))
                    }
                    _ => None,
                }
                .filter(|_| unsampled_before.is_none_or(|t| first_sent >= t))
            });
            if let Some(r) = sample {
                peer.least_rtt = Some(peer.least_rtt.map_or(r, |l| l.min(r)));
                peer.rtt.sample(r, floor, cap);
                self.paths_version += 1;
            }
        }
        tokens
    }
}
