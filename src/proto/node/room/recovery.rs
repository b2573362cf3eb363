//! The new leader's take-over: it gathers every room message and kept direct message the
//! survivors hold (in a second round from further back if a member needs it), fills what
//! nobody has, brings every member up to date, and only then sequences anything new.

use super::*;

/// Room messages a member sends a new leader in answer to one sync request, at most.
const SYNC_BATCH: usize = 512;

impl Node {
    /// Asks every survivor for the room messages it has beyond ours.
    pub(in crate::proto::node) fn start_recovery(&mut self, now: Instant) {
        let Some(epoch) = self.ring.epoch() else {
            return;
        };
        // Nothing is sequenced until recovery ends (own messages wait in the outbox).
        // Re-elected while own messages still waited for a first ack: they were broadcast
        // under their numbers already, so they are part of the log from here on.
        let unstable = self.room.unstable_mut().map(std::mem::take);
        self.room.role = Role::Follower;
        for (_, e) in unstable.unwrap_or_default() {
            self.on_sequenced(now, e);
        }
        let from = self.room.holdback.next();
        self.room.role = Role::Recovering(Box::new(Recovery {
            high: self.room.holdback.high(),
            ..Recovery::default()
        }));
        self.ask_survivors(now, epoch, from);
    }

    /// One round of recovery: every online member is asked for its messages from `from`.
    pub(in crate::proto::node) fn ask_survivors(&mut self, now: Instant, epoch: Epoch, from: Seq) {
        let peers: Vec<(NodeId, SocketAddr)> = self
            .ring
            .members()
            .online_peers()
            .map(|m| (m.id, m.addr))
            .collect();
        let asked_at = self.room.holdback.next();
        if let Some(rec) = self.room.recovery_mut() {
            rec.waiting = peers.iter().map(|(id, _)| *id).collect();
            rec.requested_from = from;
            rec.asked_at = asked_at;
        }
        for (_, addr) in peers {
            let msg = Message::SyncRequest { epoch, from };
            self.send_reliable(now, addr, msg, Token::Control);
        }
        self.ctx
            .timers
            .set(Timer::Recovery, now + self.ctx.cfg.recovery_timeout);
        self.maybe_finish_recovery(now);
    }

    /// During recovery, a message older than this leader's own delivery point: kept aside
    /// for members that lack it. Returns whether it was taken.
    pub(in crate::proto::node) fn backfill(&mut self, e: &ChatEntry) -> bool {
        let next = self.room.holdback.next();
        let in_history = self.room.history.range(e.seq, e.seq).next().is_some();
        match self.room.recovery_mut() {
            Some(rec) if e.seq < next => {
                if !in_history {
                    rec.backfill.insert(e.seq, e.clone());
                }
                true
            }
            _ => false,
        }
    }

    /// Member `id` is gone: a recovery under way waits for it no more.
    pub(in crate::proto::node) fn survivor_gone(&mut self, now: Instant, id: NodeId) {
        if let Some(rec) = self.room.recovery_mut() {
            rec.waiting.remove(&id);
            self.maybe_finish_recovery(now);
        }
    }

    /// A new leader asks what we have: send it our messages from `from` on, then a reply.
    pub(in crate::proto::node) fn on_sync_request(
        &mut self,
        now: Instant,
        leader: SocketAddr,
        sender: NodeId,
        epoch: Epoch,
        from: Seq,
    ) {
        if Some(epoch) < self.ring.epoch() || !self.life.is_member() {
            return;
        }
        // A leader this node declared gone, or one of a term older than a round this node
        // takes part in, is being replaced: no answer confirms it (see `ring/away.rs`).
        if !self.ring.members().is_online(sender) || self.ring.election_term() > epoch.term {
            return log_at!(
                debug,
                self,
                "not answering {sender}'s sync request: replaced"
            );
        }
        self.accept_leader(now, epoch);
        let mut entries: Vec<ChatEntry> = self
            .room
            .history
            .range(from, Seq(u64::MAX))
            .cloned()
            .collect();
        entries.extend(self.room.holdback.held_from(from).cloned());
        entries.truncate(SYNC_BATCH);
        // Our replica of the offline queue too: the new leader takes the union.
        let kept: Vec<QueuedDm> = self.mail.kept();
        let sent = (entries.len() + kept.len()) as u32;
        for e in entries {
            self.send_entry(now, leader, e);
        }
        for item in kept {
            self.send_reliable(now, leader, Message::Queued(item), Token::Control);
        }
        let msg = Message::SyncReply {
            epoch,
            next: self.room.holdback.next(),
            high: self.room.holdback.high(),
            sent,
        };
        self.send_reliable(now, leader, msg, Token::Control);
    }

    pub(in crate::proto::node) fn on_sync_reply(
        &mut self,
        now: Instant,
        member: NodeId,
        epoch: Epoch,
        (next, high): (Seq, Seq),
        sent: u32,
    ) {
        if self.ring.epoch() != Some(epoch) {
            return;
        }
        if self.room.is_confirming() {
            return self.maybe_confirmed(now, Some(member));
        }
        let Some(rec) = self.room.recovery_mut() else {
            return;
        };
        if !rec.waiting.remove(&member) {
            return; // not asked (or answered already this round)
        }
        log_at!(
            debug,
            self,
            "sync reply from {member}: next {next} high {high}"
        );
        let expected = rec.expected.entry(member).or_default();
        *expected = expected.saturating_add(sent);
        rec.member_next.insert(member, next);
        // Nobody holds more than a hold-back queue's worth beyond what we asked from.
        let ceiling = Seq(rec.requested_from.0.saturating_add(MAX_HOLDBACK as u64));
        rec.high = rec.high.max(high.min(ceiling));
        self.maybe_finish_recovery(now);
    }

    pub(in crate::proto::node) fn maybe_finish_recovery(&mut self, now: Instant) {
        let Role::Recovering(rec) = &self.room.role else {
            return;
        };
        let all_arrived = rec
            .expected
            .iter()
            .all(|(m, n)| rec.received.get(m).copied().unwrap_or(0) >= *n);
        if !rec.waiting.is_empty() || !all_arrived {
            return;
        }
        // A member behind what we asked for (we joined after what it misses): ask again
        // from there, once, so that whatever any survivor has reaches it.
        let lowest = rec.member_next.values().min().copied();
        if let (Some(lowest), Some(epoch)) = (lowest, self.ring.epoch())
            && lowest < rec.requested_from
            && !rec.second_round
        {
            if let Some(rec) = self.room.recovery_mut() {
                rec.second_round = true;
            }
            return self.ask_survivors(now, epoch, lowest);
        }
        // Answers are capped per round: while they move us forward, ask for the rest.
        if let Some(epoch) = self.ring.epoch()
            && self.room.holdback.next() <= rec.high
            && self.room.holdback.next() > rec.asked_at
        {
            let from = self.room.holdback.next();
            return self.ask_survivors(now, epoch, from);
        }
        // Everyone answered and everything they sent is here: what is still missing, no
        // survivor has.
        self.finish_recovery(now);
    }

    /// Ends recovery: fills what no survivor had, brings members up to date, and starts
    /// sequencing (first the submissions that waited).
    pub(in crate::proto::node) fn finish_recovery(&mut self, now: Instant) {
        let Role::Recovering(rec) = std::mem::replace(&mut self.room.role, Role::Follower) else {
            return;
        };
        self.ctx.timers.clear(Timer::Recovery);
        let mut filled = 0;
        while self.room.holdback.next() <= rec.high {
            let next = self.room.holdback.next();
            if !self.room.holdback.has(next) {
                self.room.holdback.offer(ChatEntry::filler(next));
                filled += 1;
            }
            while let Some(e) = self.room.holdback.pop_ready() {
                self.deliver(now, e);
            }
        }
        // Every surviving message a member still lacks is in our history or the backfill;
        // older ones were delivered everywhere, so their origins confirmed them.
        let mut sequencer = Sequencer::resume(self.room.holdback.next(), &self.room.history);
        for e in rec.backfill.values().filter(|e| !e.is_filler()) {
            sequencer.note_sequenced(e.origin, e.origin_seq);
        }
        self.room.role = Role::Leading(Leadership {
            sequencer,
            unstable: BTreeMap::new(),
        });
        log_at!(
            info,
            self,
            "took over sequencing at #{} ({filled} lost numbers filled, {} kept messages)",
            self.room.holdback.next(),
            self.mail.kept_len()
        );
        // Bring every member up to our point: from our history, from what survivors sent
        // us that predates our history, or as a filler where nobody had it.
        let end = self.room.holdback.next();
        for (member, next) in rec.member_next {
            let Some(addr) = self.ring.members().get(member).map(|m| m.addr) else {
                continue;
            };
            for s in (next.0..end.0).take(SYNC_BATCH) {
                let e = self
                    .room
                    .history
                    .range(Seq(s), Seq(s))
                    .next()
                    .cloned()
                    .or_else(|| rec.backfill.get(&Seq(s)).cloned())
                    .unwrap_or_else(|| ChatEntry::filler(Seq(s)));
                self.send_entry(now, addr, e);
            }
        }
        for (origin, s) in rec.held_submits {
            self.sequence(now, origin, s);
        }
        for (from, origin, to, dm) in rec.held_stores {
            self.on_store(now, from, origin, to, dm);
        }
        for newcomer in rec.held_joins {
            self.on_join(now, newcomer);
        }
        self.resubmit(now);
        self.hand_over_all(now);
    }
}
