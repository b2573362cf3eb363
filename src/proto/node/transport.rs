//! The node's transport: the packets of a received datagram dispatched one by one, the
//! packets it sends queued per destination and packed into datagrams with the acks it
//! owes (reliable sends and the flow window in `send.rs`), and the handling of bad
//! input.

use super::*;

mod send;

/// The transport part's state: reliability, batching, outgoing datagrams and counters.
pub(super) struct Transport {
    reliable: Reliable<Token>,
    /// Packets queued for sending, packed into datagrams when the outputs are drained.
    outgoing: Coalescer,
    /// Datagrams ready to send.
    transmits: VecDeque<Transmit>,
    stats: Stats,
    /// Which sources a dropped datagram was logged for in the last second.
    drop_logged: Quiet<SocketAddr>,
    /// When a bound last logged what it held back.
    last_limit_log: Option<Instant>,
    /// Bytes from and to addresses not in the member table (see `proto::limits`).
    pub(super) budget: AmplificationBudget,
}

/// Sender streams whose duplicate windows are kept, at most, beyond the members'.
const MAX_WINDOWS: usize = 4096;

/// Reliable messages in flight to one member at most before the leader (or a relay)
/// sends it no more room messages: a member slower than the room is not overrun (its
/// socket's buffer overflowing, every copy resent), it falls behind and fetches what it
/// missed (see `room/catchup.rs`); the leader's proposals it was not sent are sent as it
/// acks (see `room/sequence.rs`). Below the number of gaps a receiver's duplicate window
/// keeps open: what is in flight is all a gap can still be resent for, so the window only
/// gives up gaps nobody resends (see [`crate::proto::reliable::receipts::DEDUPE_WINDOW`]).
pub(super) const FLOW_WINDOW: usize = 2048;
const _: () = assert!(FLOW_WINDOW < crate::proto::reliable::receipts::DEDUPE_WINDOW);
/// Sources remembered for the once-a-second drop log.
const MAX_DROP_LOGGED: usize = 1024;

impl Transport {
    /// Nothing sent or received yet.
    pub(super) fn new(cfg: &NodeConfig) -> Self {
        Transport {
            reliable: Reliable::new(cfg.ack_timeout),
            outgoing: Coalescer::default(),
            transmits: VecDeque::new(),
            stats: Stats::default(),
            drop_logged: Quiet::new(Duration::from_secs(1), MAX_DROP_LOGGED),
            last_limit_log: None,
            budget: AmplificationBudget::default(),
        }
    }

    /// The counters.
    pub(super) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Reliable messages awaiting an ack.
    pub(super) fn in_flight(&self) -> usize {
        self.reliable.in_flight()
    }

    /// The smoothed round trip to `to` and its retransmission timeout, once measured.
    pub(super) fn measured_rtt(&self, to: SocketAddr) -> Option<(Duration, Duration)> {
        self.reliable.measured(to)
    }

    /// See [`Reliable::paths_version`].
    pub(super) fn paths_version(&self) -> u64 {
        self.reliable.paths_version()
    }

    /// This node was away until `now`: round trips of what it sent before are not sampled.
    pub(super) fn was_away(&mut self, now: Instant) {
        self.reliable.was_away(now);
    }

    /// Whether `to` acked a message of ours sent at `since` or later (it hears us), and
    /// whether one sent since then awaits its ack.
    pub(super) fn hears_us(&self, to: SocketAddr, since: Instant) -> (bool, bool) {
        let heard = self.reliable.heard_us_at(to).is_some_and(|t| t >= since);
        (heard, self.reliable.sent_since(to, since))
    }

    /// Whether a reliable message whose token matches is still awaiting its ack.
    pub(super) fn any_pending(&self, f: impl Fn(&Token) -> bool) -> bool {
        self.reliable.any_pending(f)
    }

    /// The tokens of the reliable messages still awaiting their ack that `f` picks.
    pub(super) fn pending_tokens(&self, f: impl Fn(&Token) -> bool) -> Vec<Token> {
        self.reliable.pending_tokens(f)
    }

    #[cfg(test)]
    /// How many sender streams have a duplicate window.
    pub(super) fn windows(&self) -> usize {
        self.reliable.windows()
    }

    /// Counts one election message sent (`true`) or taken back when rerouted (`false`).
    pub(super) fn count_election_message(&mut self, sent: bool) {
        if sent {
            self.stats.election_messages += 1;
        } else {
            self.stats.election_messages = self.stats.election_messages.saturating_sub(1);
        }
    }

    /// Counts one datagram received.
    pub(super) fn note_received(&mut self) {
        self.stats.received += 1;
    }

    /// The guard's refusals so far, as the driver reports them.
    pub(super) fn note_guard_refused(&mut self, total: u64) {
        self.stats.refused = total;
    }

    /// Whether data packet `id` from `sender` was taken already. Changes nothing.
    pub(super) fn was_received(&self, sender: NodeId, id: MsgId) -> bool {
        self.reliable.was_received(sender, id)
    }

    /// Takes data packet `id` from `sender` at `from`: its ack is owed. Whether it is new.
    pub(super) fn accept_data(&mut self, from: SocketAddr, sender: NodeId, id: MsgId) -> bool {
        self.reliable.on_data(from, sender, id)
    }

    /// Counts one reliable message received again and suppressed.
    pub(super) fn count_duplicate(&mut self) {
        self.stats.duplicates += 1;
    }

    /// Counts messages refused because their proof of origin did not check.
    pub(super) fn note_forged(&mut self, n: u64) {
        self.stats.forged += n;
    }

    /// Counts one reliable message given up.
    pub(super) fn note_gave_up(&mut self) {
        self.stats.gave_up += 1;
    }

    /// Queues the resends that are due; returns the messages given up.
    pub(super) fn resend_due(&mut self, now: Instant) -> Vec<GaveUp<Token>> {
        let mut out = Vec::new();
        let (resent, gave_up) = self.reliable.poll_retransmits(now, &mut out);
        self.stats.retransmitted += resent as u64;
        for t in out {
            self.outgoing.push(t.to, t.bytes);
        }
        gave_up
    }

    /// Cancels every reliable message to `to`; returns their tokens.
    pub(super) fn cancel_to(&mut self, to: SocketAddr) -> Vec<Token> {
        self.reliable.cancel_to(to)
    }

    /// Until when new messages held back for an ack may wait (see `proto::batch`).
    #[cfg(test)]
    pub(super) fn held_until(&self) -> Option<Instant> {
        self.outgoing.deadline()
    }

    /// The earliest deadline of the transport: a resend or the end of a hold.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.reliable.next_deadline(), self.outgoing.deadline()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// How a datagram reached the node: in a session with its sender (authenticated to it),
/// or outside one (the join exchange, which anyone can claim to send from anywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    Session,
    Outside,
}

impl Node {
    /// A packet that came outside a session: only the join exchange and acks. Its
    /// receipts are kept apart from the sender's session stream, and an ack settles only
    /// what this node sent outside sessions, welcome parts and leave notices (see
    /// [`Node::send_patient`]), so a forged one (any id, any address) can neither hide a
    /// member's real messages as duplicates nor pass for their acks.
    fn handle_outside_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        (sender, lamport): (NodeId, Lamport),
        packet: Packet,
    ) {
        match packet {
            Packet::Ack(ack) if ack.of == self.ctx.id => {
                self.ctx.clock.observe(lamport);
                let tokens = self.transport.reliable.on_ack_outside(now, from, &ack);
                if !tokens.is_empty() {
                    self.transport.outgoing.note_acked(from);
                }
                self.settle_acks(now, from, tokens);
            }
            Packet::Ack(_) => {}
            Packet::Data { id, msg } if msg.is_join_exchange() => {
                if let Err(why) = self.admissible(now, (sender, lamport), from, &msg) {
                    if self.ring.members().get(sender).is_none() {
                        self.answer_stranger(now, from);
                    }
                    return self.drop_datagram(now, from, why);
                }
                if !self.accepts_now(&msg) {
                    return;
                }
                self.ctx.clock.observe(lamport);
                if !self.transport.reliable.on_data_outside(from, sender, id) {
                    self.transport.stats.duplicates += 1;
                    return;
                }
                self.on_message(now, from, sender, id, msg);
            }
            _ => self.drop_datagram(now, from, "outside a session, only the join exchange"),
        }
    }

    /// Handles one packet of a datagram from `sender` at `from`.
    pub(super) fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        (sender, lamport): (NodeId, Lamport),
        packet: Packet,
        arrival: Arrival,
    ) {
        if arrival == Arrival::Outside {
            return self.handle_outside_packet(now, from, (sender, lamport), packet);
        }
        match packet {
            Packet::Heartbeat(hb) => {
                self.note_terms(now);
                if self.in_ring()
                    && self
                        .ring
                        .members()
                        .get(sender)
                        .is_some_and(|m| m.addr == from)
                {
                    // Only heartbeats prove liveness: a newcomer sends other traffic
                    // before it starts heartbeating.
                    self.ring.heard(sender, now);
                    self.ctx.clock.observe(lamport);
                    self.on_heartbeat(now, from, sender, hb);
                } else if self.in_ring() && self.ring.members().get(sender).is_none() {
                    self.on_stranger_heartbeat(now, from, sender, &hb);
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
                    let any = !tokens.is_empty();
                    self.settle_acks(now, from, tokens);
                    if any {
                        self.on_ack_for_config(now);
                    }
                }
            }
            Packet::Data { id, msg } => {
                self.note_terms(now);
                if let Err(why) = self.admissible(now, (sender, lamport), from, &msg) {
                    // Not acked: a member not known yet retries, and is known by then.
                    if self.ring.members().get(sender).is_none() {
                        self.answer_stranger(now, from);
                        self.ask_stranger_to_prove(now, from, sender);
                    }
                    if why == dispatch::RING_FROM_OFFLINE {
                        self.park_ring_message(now, sender, &msg);
                    }
                    return self.drop_datagram(now, from, why);
                }
                // A leader speaking of its term shows it leads it (or, of an older one,
                // that it may not know of ours): see `ring/terms.rs`.
                if let Some(term) = dispatch::message_term(&msg)
                    && !matches!(msg, Message::Election { .. } | Message::Elected(_))
                {
                    self.leader_spoke(now, sender, term, true);
                }
                self.follow_higher_term(now, sender, &msg);
                if let Message::Sequenced(e) = &msg
                    && !self.can_hold(sender, e)
                {
                    // Not acked: an ack would count as a copy held (see `room/deliver.rs`).
                    log_at!(debug, self, ?from, "not holding #{} from {sender}", e.seq);
                    return;
                }
                if let Message::Commit { term, .. } = &msg
                    && !self.can_take_commit(sender, *term)
                {
                    log_at!(
                        debug,
                        self,
                        ?from,
                        "not taking a commit notice of term {term}"
                    );
                    return;
                }
                if !self.accepts_now(&msg) {
                    // Not acked: the sender will retry once we are ready for it.
                    log_at!(debug, self, ?from, "not ready for {:?} yet", msg_kind(&msg));
                    return;
                }
                self.ctx.clock.observe(lamport);
                // A stamp taken into the table is one this node may relay: its clock
                // moves past it, so every datagram that carries it is later than it (a
                // received time alone pushes the clock no further than 2^62; a stamp,
                // at most `LamportClock::MAX_STAMP`).
                let stamps: &[Member] = match &msg {
                    Message::Members(list) => list,
                    Message::Welcome(w) => &w.members,
                    _ => &[],
                };
                for m in stamps {
                    self.ctx.clock.restore(m.stamp.lamport);
                }
                // A sequenced message is acked once its origin's proof checks.
                let msg = match msg {
                    Message::Sequenced(e) => return self.stage_sequenced(now, from, sender, id, e),
                    msg => msg,
                };
                // Acked (with everything else accepted before the outputs are drained),
                // duplicates too: the sender lost our first ack.
                if !self.transport.reliable.on_data(from, sender, id) {
                    self.transport.stats.duplicates += 1;
                    // A recovering leader counts an answer's messages by their ids, once
                    // each: one the window takes for a duplicate only because its gap
                    // was given up (past `DEDUPE_WINDOW` gaps) is still taken (taking a
                    // copy twice changes nothing).
                    if self.room.is_recovering()
                        && matches!(msg, Message::SyncEntry(_) | Message::Queued(_))
                    {
                        self.on_message(now, from, sender, id, msg);
                    }
                    return;
                }
                self.on_message(now, from, sender, id, msg);
            }
        }
    }

    /// Queues an encoded packet for `to`; it goes out in a datagram with whatever else is
    /// queued for `to` when the outputs are drained.
    pub(super) fn queue_packet(&mut self, to: SocketAddr, packet: Vec<u8>) {
        self.transport.outgoing.push(to, packet);
    }

    /// The next datagram to send; see [`Node::poll_transmit`]. One to an address not in
    /// the member table goes only within its anti-amplification budget (see
    /// `proto::limits`); past it, it is dropped, counted, and nothing more to that
    /// address is retried.
    pub(super) fn next_transmit(&mut self) -> Option<Transmit> {
        loop {
            if self.transport.transmits.is_empty() {
                self.pack_datagrams();
            }
            let t = self.transport.transmits.pop_front()?;
            let in_room = self.in_ring();
            if self.ring.members().has_addr(t.to)
                || self.transport.budget.may_send(
                    t.to,
                    t.bytes.len() + self.ctx.cfg.wire_overhead,
                    in_room,
                )
            {
                return Some(t);
            }
            let now = self.ctx.now;
            self.transport.stats.sent = self.transport.stats.sent.saturating_sub(1);
            self.note_limited(
                now,
                &format!(
                    "not sending {} to {}: over three times what came from there",
                    t.bytes.len(),
                    t.to
                ),
            );
            for token in self.transport.cancel_to(t.to) {
                self.settle(now, t.to, token, Fate::Cancelled);
            }
        }
    }

    /// Counts a datagram of `bytes` from `from` towards what may be sent back there, if
    /// `from` is not a member's address; `join` if it asks to join.
    pub(super) fn note_stranger_bytes(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: usize,
        join: bool,
    ) {
        if !self.ring.members().has_addr(from) {
            let bytes = bytes + self.ctx.cfg.wire_overhead;
            self.transport.budget.received(now, from, bytes, join);
        }
    }

    /// Bounds what strangers leave in the reliability layer (see [`MAX_WINDOWS`]).
    pub(super) fn bound_windows(&mut self) {
        let members = self.ring.members();
        self.transport
            .reliable
            .bound_windows(MAX_WINDOWS, |id| members.get(id).is_some());
    }

    /// Packs the queued packets, the owed acks first, into datagrams; new messages to a
    /// peer with earlier ones unacked may stay held (see `proto::batch`).
    fn pack_datagrams(&mut self) {
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

    /// Something a bound held back (see [`Stats::limited`]): counted, and logged at most
    /// once a second (with how many since the last line).
    pub(super) fn note_limited(&mut self, now: Instant, what: &str) {
        self.transport.stats.limited += 1;
        let quiet = self
            .transport
            .last_limit_log
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        if !quiet {
            self.transport.last_limit_log = Some(now);
            log_at!(
                warn,
                self,
                "{what} ({} held back by a bound so far)",
                self.transport.stats.limited
            );
        }
    }

    pub(super) fn drop_datagram(&mut self, now: Instant, from: SocketAddr, why: &str) {
        self.transport.stats.dropped += 1;
        // At most one line a second per source, and from at most 1024 sources a second: a
        // flood cannot flood the log.
        if self.transport.drop_logged.due(from, now) {
            log_at!(
                warn,
                self,
                "dropped datagram from {from}: {why} ({} dropped so far)",
                self.transport.stats.dropped
            );
        }
    }
}
