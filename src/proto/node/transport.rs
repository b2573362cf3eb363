//! The node's transport: the packets of a received datagram dispatched one by one, the
//! packets it sends queued per destination and packed into datagrams with the acks it
//! owes, and the handling of bad input.

use super::*;
use crate::proto::packet::{EncodedMessage, data_packet};
use crate::wire::WireError;

impl Node {
    /// Handles one packet of a datagram from `sender` at `from`.
    pub(super) fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        lamport: Lamport,
        packet: Packet,
    ) {
        match packet {
            Packet::Heartbeat(hb) => {
                if self.in_ring() && self.ring.members.get(sender).is_some_and(|m| m.addr == from) {
                    // Only heartbeats prove liveness: a newcomer sends other traffic
                    // before it starts heartbeating.
                    self.ring.detector.heard(sender, now);
                    self.ctx.clock.observe(lamport);
                    self.on_heartbeat(now, from, sender, hb);
                }
            }
            Packet::Ack(ack) => {
                // An ack meant for an earlier process at our address is not ours.
                if ack.of == self.ctx.id {
                    self.ctx.clock.observe(lamport);
                    let tokens = self.transport.reliable.on_ack(now, from, &ack);
                    if !tokens.is_empty() {
                        self.transport.outgoing.note_acked(from);
                    }
                    for token in tokens {
                        self.on_acked(now, token);
                    }
                }
            }
            Packet::Data { id, msg } => {
                if let Err(why) = self.admissible(sender, from, &msg) {
                    // Not acked: a member not known yet retries, and is known by then.
                    if self.ring.members.get(sender).is_none() {
                        self.answer_stranger(now, from);
                    }
                    return self.drop_datagram(now, from, why);
                }
                if !self.accepts_now(&msg) {
                    // Not acked: the sender will retry once we are ready for it.
                    debug!(?from, "not ready for {:?} yet", msg_kind(&msg));
                    return;
                }
                self.ctx.clock.observe(lamport);
                // Acked (with everything else accepted before the outputs are drained),
                // duplicates too: the sender lost our first ack.
                if !self.transport.reliable.on_data(from, sender, id) {
                    self.transport.stats.duplicates += 1;
                    return;
                }
                self.on_message(now, from, sender, msg);
            }
        }
    }

    /// Queues an encoded packet for `to`; it goes out in a datagram with whatever else is
    /// queued for `to` when the outputs are drained.
    pub(super) fn queue_packet(&mut self, to: SocketAddr, packet: Vec<u8>) {
        self.transport.outgoing.push(to, packet);
    }

    /// Packs the queued packets, the owed acks first, into datagrams; new messages to a
    /// peer with earlier ones unacked may stay held (see `proto::batch`).
    pub(super) fn pack_datagrams(&mut self) {
        if self.transport.reliable.owes_acks() {
            let mut acks: BTreeMap<SocketAddr, Vec<Vec<u8>>> = BTreeMap::new();
            for (to, ack) in self.transport.reliable.take_acks() {
                if let Ok(bytes) = encode_packet(&Packet::Ack(ack)) {
                    acks.entry(to).or_default().push(bytes);
                }
            }
            for (to, packets) in acks {
                self.transport.outgoing.push_front(to, packets);
            }
        }
        if self.transport.outgoing.is_empty() || !self.transport.outgoing.is_due(self.ctx.now) {
            return;
        }
        let (id, clock, reliable) = (self.ctx.id, &mut self.ctx.clock, &self.transport.reliable);
        let n = self.transport.outgoing.drain_into(
            self.ctx.now,
            |to| reliable.in_flight_to(to),
            || (id, clock.tick()),
            &mut self.transport.transmits,
        );
        self.transport.stats.sent += n as u64;
    }

    /// Sends `msg` reliably to `to` with the default retry bound.
    pub(super) fn send_reliable(
        &mut self,
        now: Instant,
        to: SocketAddr,
        msg: Message,
        token: Token,
    ) {
        let retries = self.ctx.cfg.max_retries;
        self.send_reliable_with(now, to, msg, token, retries);
    }

    pub(super) fn send_reliable_with(
        &mut self,
        now: Instant,
        to: SocketAddr,
        msg: Message,
        token: Token,
        retries: u32,
    ) {
        let sent = self
            .transport.reliable
            .send(now, to, token, retries, |id| data_packet(id, msg));
        match sent {
            Ok(bytes) => self.transport.outgoing.push_data(to, bytes),
            // Unreachable by construction (limits are checked before); never silent.
            Err(e) => warn!(lamport = self.ctx.clock.now().0, "not sent to {to}: {e}"),
        }
    }

    /// Sends `msg` reliably to every online member but this node (encoded once).
    pub(super) fn broadcast(&mut self, now: Instant, msg: &Message, token: &Token) {
        if self.ring.members.online_peers().next().is_some() {
            self.broadcast_encoded(now, EncodedMessage::new(msg), token);
        }
    }

    /// Sends an encoded message reliably to every online member but this node.
    pub(super) fn broadcast_encoded(
        &mut self,
        now: Instant,
        encoded: Result<EncodedMessage, WireError>,
        token: &Token,
    ) {
        let peers: Vec<SocketAddr> = self.ring.members.online_peers().map(|m| m.addr).collect();
        if peers.is_empty() {
            return;
        }
        let encoded = match encoded {
            Ok(e) => e,
            // Unreachable by construction (limits are checked before); never silent.
            Err(e) => return warn!(lamport = self.ctx.clock.now().0, "not broadcast: {e}"),
        };
        let retries = self.ctx.cfg.max_retries;
        for to in peers {
            let sent = self
                .transport.reliable
                .send(now, to, token.clone(), retries, |id| encoded.packet(id));
            match sent {
                Ok(bytes) => self.transport.outgoing.push_data(to, bytes),
                Err(e) => warn!(lamport = self.ctx.clock.now().0, "not sent to {to}: {e}"),
            }
        }
    }

    pub(super) fn drop_datagram(&mut self, now: Instant, from: SocketAddr, why: &str) {
        self.transport.stats.dropped += 1;
        // At most one line a second per source: a flood cannot flood the log.
        let quiet = self
            .transport.last_drop_log
            .get(&from)
            .is_some_and(|t| now.saturating_duration_since(*t) < Duration::from_secs(1));
        if !quiet {
            if self.transport.last_drop_log.len() >= 1024 {
                self.transport.last_drop_log.clear();
            }
            self.transport.last_drop_log.insert(from, now);
            warn!(
                lamport = self.ctx.clock.now().0,
                "dropped datagram from {from}: {why} ({} dropped so far)", self.transport.stats.dropped
            );
        }
    }
}
