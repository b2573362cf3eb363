//! Reliable sends: one message to one member (resent until acked or given up), one
//! encoded message to many, and the flow window that bounds what is in flight to each.

use super::*;

impl Node {
    /// Whether `to` may be sent another room message now (see [`FLOW_WINDOW`]).
    pub(in crate::proto::node) fn has_room_for(&self, to: SocketAddr) -> bool {
        self.flow_room(to) > 0
    }

    /// How many more room messages `to` may be sent now (see [`FLOW_WINDOW`]).
    pub(in crate::proto::node) fn flow_room(&self, to: SocketAddr) -> usize {
        FLOW_WINDOW.saturating_sub(self.transport.reliable.in_flight_to(to))
    }

    /// Sends `msg` reliably to `to` with the default retry bound.
    pub(in crate::proto::node) fn send_reliable(
        &mut self,
        now: Instant,
        to: SocketAddr,
        msg: Message,
        token: Token,
    ) {
        let retries = self.ctx.cfg.max_retries;
        self.send_reliable_with(now, to, msg, token, retries);
    }

    /// Sends `msg` reliably to `to`, given up after `retries` resends.
    pub(in crate::proto::node) fn send_reliable_with(
        &mut self,
        now: Instant,
        to: SocketAddr,
        msg: Message,
        token: Token,
        retries: u32,
    ) {
        self.send_patient(now, to, msg, token, retries, Duration::ZERO);
    }

    /// Sends `msg` reliably to `to`, resent no sooner than `patience` after each try (a
    /// bulk transfer's, see [`Reliable::send_patient`]).
    pub(in crate::proto::node) fn send_patient(
        &mut self,
        now: Instant,
        to: SocketAddr,
        msg: Message,
        token: Token,
        retries: u32,
        patience: Duration,
    ) {
        let outside = msg.is_join_exchange();
        // Acks that may come outside a session, besides the join exchange's: those of a
        // welcome (a newcomer acks from outside the room) and of a leave notice (its
        // receivers drop our sessions as they take it). A forged one only makes us
        // resend less: the newcomer asks again, a leaver is found gone by its watcher.
        let acked_outside = matches!(
            (&msg, &token),
            (Message::Welcome(_), _) | (_, Token::Life(LifeToken::LeaveNotice))
        );
        let mut sent_as = None;
        let reliable = &mut self.transport.reliable;
        let encode = |id| {
            sent_as = Some(id);
            data_packet(id, msg)
        };
        let sent = if outside {
            reliable.send_outside(now, to, token, retries, encode)
        } else {
            reliable.send_patient(now, to, token, retries, patience, encode)
        };
        match sent {
            Ok(bytes) => {
                if let Some(id) = sent_as.filter(|_| acked_outside) {
                    self.transport.reliable.allow_outside_ack(id);
                }
                self.transport.outgoing.push_data(to, bytes)
            }
            // Unreachable by construction (limits are checked before); never silent.
            Err(e) => log_at!(warn, self, "not sent to {to}: {e}"),
        }
    }

    /// Sends `msg` reliably to every online member but this node (encoded once).
    pub(in crate::proto::node) fn broadcast(&mut self, now: Instant, msg: &Message, token: &Token) {
        if self.ring.members().online_peers().next().is_some() {
            self.broadcast_encoded(now, EncodedMessage::new(msg), token);
        }
    }

    /// Sends an encoded message reliably to every online member but this node.
    pub(in crate::proto::node) fn broadcast_encoded(
        &mut self,
        now: Instant,
        encoded: Result<EncodedMessage, WireError>,
        token: &Token,
    ) {
        let peers: Vec<SocketAddr> = self.ring.members().online_peers().map(|m| m.addr).collect();
        self.send_encoded_to(now, encoded, token, &peers);
    }

    /// Sends one encoded message reliably to each of `peers`.
    pub(in crate::proto::node) fn send_encoded_to(
        &mut self,
        now: Instant,
        encoded: Result<EncodedMessage, WireError>,
        token: &Token,
        peers: &[SocketAddr],
    ) {
        if peers.is_empty() {
            return;
        }
        let encoded = match encoded {
            Ok(e) => e,
            // Unreachable by construction (limits are checked before); never silent.
            Err(e) => return log_at!(warn, self, "not broadcast: {e}"),
        };
        let retries = self.ctx.cfg.max_retries;
        for &to in peers {
            let sent = self
                .transport
                .reliable
                .send(now, to, token.clone(), retries, |id| encoded.packet(id));
            match sent {
                Ok(bytes) => self.transport.outgoing.push_data(to, bytes),
                Err(e) => log_at!(warn, self, "not sent to {to}: {e}"),
            }
        }
    }
}
