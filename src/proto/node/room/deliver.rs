//! Delivery: sequenced messages taken from whoever may send them, held back until every
//! earlier one is here, shown strictly in order; gaps repaired by fetching from the
//! leader or other members, and fetches answered from the history.

use super::*;

/// Sequenced messages sent in answer to one fetch, at most.
const FETCH_BATCH: u64 = 64;

impl Node {
    /// Sends one sequenced room message to `to` (a fetch answered, a recovery, a repair);
    /// not the leader's own first broadcast, whose ack may commit it.
    pub(in crate::proto::node) fn send_entry(
        &mut self,
        now: Instant,
        to: SocketAddr,
        e: ChatEntry,
    ) {
        let token = Token::Room(RoomToken::Sequenced(None));
        self.send_reliable(now, to, Message::Sequenced(e), token);
    }

    /// A sequenced message from `sender`: taken if the sender may say it (see
    /// [`Node::accepts_sequenced`]); during recovery it also counts as a survivor's answer.
    pub(in crate::proto::node) fn on_sequenced_from(
        &mut self,
        now: Instant,
        sender: NodeId,
        e: ChatEntry,
    ) {
        if !self.accepts_sequenced(sender, e.seq) {
            return log_at!(debug, self, "ignoring #{} from {sender}", e.seq);
        }
        let recovering = self.room.count_answer(sender);
        self.on_sequenced(now, e);
        if recovering {
            self.maybe_finish_recovery(now);
        }
    }

    /// Sequenced messages are taken from the leader of our epoch; by a new leader from the
    /// survivors it asked during recovery; and from any member when they fill a gap we
    /// asked about (a new leader may have joined after what we miss).
    pub(in crate::proto::node) fn accepts_sequenced(&self, sender: NodeId, seq: Seq) -> bool {
        self.leader() == Some(sender)
            || self.room.is_recovering()
            || (self.ring.members().is_online(sender)
                && self.wanted().is_some_and(|(a, b)| a <= seq && seq <= b))
    }

    /// The leader we re-registered with (after a partition) goes on from `next_seq`: if it
    /// is behind us, our numbering diverged, so follow its numbering from here on.
    pub(in crate::proto::node) fn follow_numbering(&mut self, now: Instant, next_seq: Seq) {
        if next_seq < self.room.holdback.next() {
            log_at!(
                info,
                self,
                "our sequence diverged from the leader's; following it from #{}",
                next_seq
            );
            self.room.holdback.reset(next_seq);
            self.room.history.forget_from(next_seq);
        } else if next_seq > self.room.holdback.next() {
            self.room.known_high = self.room.known_high.max(Seq(next_seq.0 - 1));
            self.ctx.timers.set(Timer::GapRepair, now);
        }
    }

    /// A sequenced message arrived (or the leader committed one): hold back until every
    /// earlier one is here, then deliver in order.
    pub(in crate::proto::node) fn on_sequenced(&mut self, now: Instant, e: ChatEntry) {
        let seq = e.seq;
        if self.backfill(&e) {
            return;
        }
        // The usual case, the next one with nothing held, is delivered without holding.
        match self.room.holdback.take_if_next(e) {
            Ok(e) => self.deliver(now, e),
            Err(e) => {
                if !self.room.holdback.offer(e) {
                    log_at!(
                        debug,
                        self,
                        "not holding #{seq} (next #{})",
                        self.room.holdback.next()
                    );
                    return;
                }
            }
        }
        while let Some(e) = self.room.holdback.pop_ready() {
            self.deliver(now, e);
        }
        if self.room.is_recovering() {
            self.maybe_finish_recovery(now);
        }
        if self.wanted().is_some() {
            self.ctx
                .timers
                .set_if_unset(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after);
        } else {
            self.ctx.timers.clear(Timer::GapRepair);
        }
    }

    /// Shows a message in order. A filler, or a message already shown under another
    /// number (possible only after a leader change), advances the sequence silently.
    pub(in crate::proto::node) fn deliver(&mut self, now: Instant, e: ChatEntry) {
        let mine = e.origin == self.ctx.id;
        if mine && self.room.outbox.confirm(e.origin_seq).is_some() && self.room.outbox.is_empty() {
            // The timer also resends direct messages not yet confirmed kept.
            if self.mail.unsaved_len() == 0 {
                self.ctx.timers.clear(Timer::Resubmit);
            }
            self.on_outbox_drained(now);
        }
        let seen = e.is_filler()
            || self
                .room
                .history
                .contains_submission(e.origin, e.origin_seq);
        self.room.history.push(e.clone());
        if self.ctx.cfg.persist {
            self.ctx.out.write(Write::Delivered(e.clone()));
        }
        if !seen {
            let history = e.seq < self.room.history_until;
            self.ctx.out.event(Event::Room {
                entry: e,
                mine,
                history,
            });
        }
    }

    /// What this node still lacks: a gap before a held message, or messages neighbours
    /// have delivered that it has not seen at all.
    pub(in crate::proto::node) fn wanted(&self) -> Option<(Seq, Seq)> {
        self.room.holdback.missing().or_else(|| {
            (self.room.known_high >= self.room.holdback.next())
                .then(|| (self.room.holdback.next(), self.room.known_high))
        })
    }

    /// The gap timer fired: ask the leader for what is still missing.
    pub(in crate::proto::node) fn repair_gap(&mut self, now: Instant) {
        if !self.in_ring() {
            return;
        }
        let Some((from, to)) = self.wanted() else {
            return;
        };
        // Ask the leader first, then the other members in turn: a new leader may have
        // joined after the messages we miss.
        self.room.fetch_attempts += 1;
        let peers: Vec<SocketAddr> = self
            .ring
            .members()
            .online_peers()
            .filter(|m| Some(m.id) != self.leader())
            .map(|m| m.addr)
            .collect();
        let target = match self.leader_addr().filter(|_| !self.is_leader()) {
            Some(leader) if self.room.fetch_attempts % 2 == 1 || peers.is_empty() => Some(leader),
            _ if !peers.is_empty() => {
                Some(peers[(self.room.fetch_attempts / 2) as usize % peers.len()])
            }
            _ => None,
        };
        if let Some(to_addr) = target {
            log_at!(debug, self, "fetching {from}..={to} from {to_addr}");
            self.send_reliable(now, to_addr, Message::Fetch { from, to }, Token::Control);
        }
        self.ctx
            .timers
            .set(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after * 2);
    }

    /// Someone asked for sequenced messages it missed: answer from our history.
    pub(in crate::proto::node) fn on_fetch(
        &mut self,
        now: Instant,
        requester: SocketAddr,
        from: Seq,
        to: Seq,
    ) {
        let to = Seq(to.0.min(from.0.saturating_add(FETCH_BATCH - 1)));
        let entries: Vec<ChatEntry> = self.room.history.range(from, to).cloned().collect();
        log_at!(
            debug,
            self,
            "fetch {from}..={to} from {requester}: have {}",
            entries.len()
        );
        for e in entries {
            self.send_entry(now, requester, e);
        }
    }
}
