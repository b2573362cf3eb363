//! Delivery: sequenced messages taken from whoever may send them, held back until they
//! are committed and every earlier one is shown, shown strictly in order. Gaps are
//! repaired by fetching (see `catchup.rs`).

use super::*;

impl Node {
    /// Sends one sequenced room message to `to` (a fetch answered, a recovery, a repair);
    /// not the leader's own first broadcast, whose ack may commit it.
    pub(in crate::proto::node) fn send_entry(
        &mut self,
        now: Instant,
        to: SocketAddr,
        e: ChatEntry,
    ) {
        let token = Token::Room(RoomToken::Sequenced);
        self.send_reliable(now, to, Message::Sequenced(e), token);
    }

    /// Whether a sequenced message from `sender` may be acked: the reliability layer acks
    /// only those, and a leader counts acks as copies held towards committing. A member
    /// takes the proposals of the leader it follows (that it has room to hold), and
    /// committed copies from anyone (what is not wanted is dropped after the ack). A
    /// deposed leader's proposals go unacked, by a new leader gathering the survivors'
    /// answers too: those come as [`Message::SyncEntry`], never as proposals, so its ack
    /// cannot let the deposed leader commit what its own majority never held.
    pub(in crate::proto::node) fn can_hold(&self, sender: NodeId, e: &ChatEntry) -> bool {
        if self.room.is_recovering() {
            e.term == COMMITTED_TERM
        } else if self.leader() == Some(sender) {
            // Only a proposal of the term followed (or a committed copy): a late proposal
            // of an earlier term of the same leader is no copy of this term's entry.
            // None either of a term below one followed before (see `life/join.rs`).
            let term_ok = e.term == COMMITTED_TERM
                || (Some(e.term) == self.ring.epoch().map(|ep| ep.term)
                    && !self.ring.below_followed(e.term));
            term_ok && (self.room.holdback.within_reach(e.seq) || self.anchors_skip(e))
        } else {
            e.term == COMMITTED_TERM
        }
    }

    /// Whether `e` is the first number kept after a skip under way, or a committed copy of
    /// the rest of its run: they may lie beyond the hold-back bound (never in another
    /// term). The first is proven only by the seal that closes its run, so the rest comes
    /// with it; refused, they left it waiting for proof, and the skip with it, until a
    /// repair asked another member (a member stopped with `SIGSTOP` while the room said
    /// 100 000 it kept 10 000 of waited 0.6 s more).
    fn anchors_skip(&self, e: &ChatEntry) -> bool {
        let Some(first) = self.room.skip_to else {
            return false;
        };
        e.seq == first
            || (e.term == COMMITTED_TERM && e.seq > first && e.seq.0 - first.0 < RUN_MAX as u64)
    }

    /// A sequenced message from `sender`: taken if the sender may say it (see
    /// [`Node::accepts_sequenced`]). A copy from the leader is of its term; one from
    /// another member's shown history is committed already.
    pub(in crate::proto::node) fn on_sequenced_from(
        &mut self,
        now: Instant,
        sender: NodeId,
        e: ChatEntry,
    ) {
        if !self.accepts_sequenced(sender, e.seq) {
            return log_at!(debug, self, "ignoring #{} from {sender}", e.seq);
        }
        if self.leader() != Some(sender)
            && !self.room.is_recovering()
            && !self.is_relay_of_mine(sender)
            && e.seq > self.room.vouched_high()
            && !self.room.corroborates(sender, &e)
        {
            return log_at!(
                debug,
                self,
                "#{} from {sender}, not known committed: waiting for another member's word",
                e.seq
            );
        }
        if !self.room.is_recovering() {
            // The leader's copy keeps the term it was proposed in: one of an earlier term
            // (sent before it led again) is dropped, never taken as this term's. Another
            // member's copy is one it showed, sent as committed; one still of a term is
            // a proposal: of a leader we followed when it came and no longer do (it
            // waited for its origin's seal meanwhile), or of one we never followed.
            // Taken as committed, it would be shown where the room may have committed
            // another (`sim_chaos` minority seed 1881786: a deposed leader's own
            // message, at the number its successor gave a change).
            let term_ok = match self.ring.epoch() {
                Some(epoch) if epoch.leader == sender => {
                    e.term == COMMITTED_TERM || e.term == epoch.term
                }
                _ => e.term == COMMITTED_TERM,
            };
            if !term_ok {
                return log_at!(
                    debug,
                    self,
                    "ignoring #{} of term {} from {sender}: not committed, nor our leader's",
                    e.seq,
                    e.term
                );
            }
        }
        if e.origin == self.ctx.id
            && e.term == COMMITTED_TERM
            && e.seq < self.room.holdback.next()
            && self.leader() == Some(sender)
        {
            // The leader answering a repeat of ours that we skipped past: it is sent.
            self.confirm_own(now, e.origin_seq);
        }
        // A proposal of the term we follow, from its leader: held, it is our vote. Only
        // where the ack gate holds now: a proposal staged for its proof is taken later,
        // perhaps after this node answered a newer leader (`can_hold` refuses a term
        // below one followed since).
        let vote = (self.leader() == Some(sender)
            && !self.room.is_recovering()
            && e.term != COMMITTED_TERM
            && self.ring.epoch().is_some_and(|ep| ep.term == e.term)
            && self.can_hold(sender, &e))
        .then_some((e.seq, e.term));
        self.on_sequenced(now, e);
        if let Some((seq, term)) = vote {
            self.room.note_vote(seq, term, sender);
        }
    }

    /// Sequenced messages are taken from the leader of our epoch; by a new leader from the
    /// survivors it asked during recovery; from the member a fetch went to, for the
    /// numbers we lack and asked it for (a new leader may have joined after what we
    /// miss; a later chunk may come before an earlier one); and by a learner from its
    /// relay. A seal proves a message, not its number: a member nobody asked could
    /// otherwise show a genuine message at a number of its choosing.
    pub(in crate::proto::node) fn accepts_sequenced(&self, sender: NodeId, seq: Seq) -> bool {
        if self.is_leader() && !self.room.is_recovering() {
            // The leader numbers the log: another member's word for a number (a copy
            // in a window a heartbeat claimed) would replace what it proposed there.
            return sender == self.ctx.id;
        }
        self.leader() == Some(sender)
            || self.room.is_recovering()
            || (self.ring.members().is_online(sender)
                && (self.was_asked_for(sender, seq) || self.is_relay_of_mine(sender)))
    }

    /// Whether `seq` is a number we lack and asked `sender` for, in the fetch under way
    /// (of `sender`, or of it among the members asked just before: over a slow path its
    /// answer comes after the next member was asked). Above what is known committed, its
    /// word is taken only once another member's agrees: see [`Room::corroborates`].
    fn was_asked_for(&self, sender: NodeId, seq: Seq) -> bool {
        let Some(addr) = self.ring.members().get(sender).map(|m| m.addr) else {
            return false;
        };
        let Some(upto) = self.room.asked_of(addr) else {
            return false;
        };
        self.wanted().is_some_and(|(a, _)| a <= seq && seq <= upto)
    }

    /// The leader we re-registered with (after a partition) goes on from `next_seq`: if it
    /// is behind us, our numbering diverged, so follow its numbering from here on.
    pub(in crate::proto::node) fn follow_numbering(&mut self, now: Instant, next_seq: Seq) {
        if next_seq < self.room.holdback.next() {
            // What we showed is committed: the leader learns it when it asks what we hold
            // (it is still recovering), and numbers on from there.
            log_at!(
                info,
                self,
                "the leader is at #{next_seq}, behind what we showed (#{})",
                self.room.holdback.next()
            );
        } else if next_seq > self.room.holdback.next() {
            self.room.known_high = self.room.known_high.max(Seq(next_seq.0 - 1));
            self.ctx.timers.set(Timer::GapRepair, now);
        }
    }

    /// A proposal or a commit notice of a term above the one this node follows: its
    /// sender leads that term (it won an election this node missed the end of), so
    /// follow it, as Raft does on any message of a higher term.
    pub(in crate::proto::node) fn follow_higher_term(
        &mut self,
        now: Instant,
        sender: NodeId,
        msg: &Message,
    ) {
        let term = match msg {
            Message::Commit { term, .. } => *term,
            Message::Sequenced(e) if e.term != COMMITTED_TERM => e.term,
            _ => return,
        };
        if self.life.takes_part()
            && self.ring.members().is_online(sender)
            && self.ring.epoch().is_some_and(|e| e.term < term)
            && !self.room.is_recovering()
        {
            if !self.ring.election_carried(term, sender) {
                // A newer term than any round this node saw: its word alone.
                return self.seek_leader(now, sender);
            }
            log_at!(info, self, "following {sender}, leader of term {term}");
            self.accept_leader(
                now,
                Epoch {
                    term,
                    leader: sender,
                },
            );
            self.leader_spoke_itself(now);
        }
    }

    /// Whether a commit notice from `sender` of `term` may be acked: only one from the
    /// leader this node follows (the leader takes the ack as told, and tells no more).
    pub(in crate::proto::node) fn can_take_commit(&self, sender: NodeId, term: u64) -> bool {
        self.ring.epoch()
            == Some(Epoch {
                term,
                leader: sender,
            })
    }

    /// The leader of `term` says the log is committed up to `upto`: show what that covers.
    pub(in crate::proto::node) fn on_commit(
        &mut self,
        now: Instant,
        sender: NodeId,
        term: u64,
        upto: Seq,
    ) {
        if self.ring.epoch()
            != Some(Epoch {
                term,
                leader: sender,
            })
        {
            return log_at!(
                debug,
                self,
                "ignoring a commit notice of {sender} in term {term}"
            );
        }
        self.room.note_commit_of(sender, term, upto);
        self.room.known_high = self.room.known_high.max(upto);
        self.deliver_committed(now);
        if !self.is_catching_up() && !self.room.holdback.within_reach(upto) {
            // Committed past what we could hold: no reordering or flow window explains a
            // gap that wide (a member back from a pause, or cut off a while). The repair
            // starts now instead of a gap-repair interval on (and if it could not, the
            // timer below still tries again).
            self.repair_gap(now);
        }
        self.schedule_gap_repair(now);
    }

    /// Shows every held entry that is committed, in order.
    pub(in crate::proto::node) fn deliver_committed(&mut self, now: Instant) {
        // Copies for the relay tree only where there is one (a small room has none).
        let relaying = self.relays_in_use();
        let mut shown = Vec::new();
        let mut delivered = None;
        while let Some(e) = self.room.pop_committed() {
            delivered = Some((delivered.map_or(e.seq, |(first, _)| first), e.seq));
            if relaying && e.config_change().is_some() && !shown.is_empty() {
                // What came before a change of the voters goes down the tree as it was
                // before it: its learners have not shown the change yet.
                self.relay(now, std::mem::take(&mut shown));
            }
            if relaying {
                shown.push(e.clone());
            }
            self.deliver(now, e);
        }
        let any = delivered.is_some();
        if let Some((first, last)) = delivered
            && !relaying
            && self.relays_in_use()
        {
            // The room grew into relays meanwhile: what was shown is in the history.
            shown = self.room.history.range(first, last).cloned().collect();
        }
        self.relay(now, shown);
        // Something committed: the room has a majority again.
        if any && self.room.is_waiting() && !self.room.is_recovering() {
            self.room.set_waiting(false);
            self.say_reachable();
        }
    }

    /// A sequenced message arrived (or the leader proposed one): held until it is
    /// committed and every earlier one is shown.
    pub(in crate::proto::node) fn on_sequenced(&mut self, now: Instant, e: ChatEntry) {
        let seq = e.seq;
        if self.backfill(&e) {
            return;
        }
        if self.room.skip_to == Some(seq) {
            // The first number the leader keeps after the ones it no longer does: the
            // skip happens now (its entry is held just after).
            self.skip_unkept(now, seq);
        }
        if !self.hold(e) {
            log_at!(
                debug,
                self,
                "not holding #{seq} (next #{})",
                self.room.holdback.next()
            );
            return;
        }
        self.deliver_committed(now);
        self.schedule_gap_repair(now);
    }

    /// Holds a copy until it can be shown; an uncommitted one goes to disk too (before the
    /// ack this input causes: the driver writes before it sends). Whether it was taken.
    /// A committed copy also says how far the room committed (see [`Node::wanted`]).
    pub(in crate::proto::node) fn hold(&mut self, e: ChatEntry) -> bool {
        let durable = (self.ctx.cfg.persist && e.term != COMMITTED_TERM).then(|| e.clone());
        if e.term == COMMITTED_TERM {
            // The room committed everything up to it. Behind a proposal held at the
            // delivery point (a deposed leader's, never to commit) the hold-back queue
            // sees no gap, and a learner hears of no commit point: without this it would
            // wait for the numbers between for good.
            self.room.known_high = self.room.known_high.max(e.seq);
        }
        let taken = self.room.holdback.offer(e);
        if taken && let Some(e) = durable {
            self.ctx.out.write(Write::Held(e));
        }
        taken
    }

    /// Keeps on disk where delivery goes on after a move without a delivery (a welcome, a
    /// skip), so that a restart holds again what was acked past it.
    pub(in crate::proto::node) fn note_delivery_point(&mut self) {
        if self.ctx.cfg.persist {
            let next = self.room.holdback.next();
            self.ctx.out.write(Write::DeliveryPoint(next));
        }
    }

    /// Sets the gap timer while something is missing, clears it otherwise; while catching
    /// up, asks for more as what was asked for is shown (see `catchup.rs`).
    pub(in crate::proto::node) fn schedule_gap_repair(&mut self, now: Instant) {
        if self.room.is_recovering() {
            self.maybe_finish_recovery(now);
        }
        if self.wanted().is_none() {
            self.room.stop_fetch();
            self.room.awaits_leader = false;
            self.ctx.timers.clear(Timer::GapRepair);
        } else if self.is_catching_up() {
            self.keep_catching_up(now);
        } else {
            self.ctx
                .timers
                .set_if_unset(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after);
        }
    }

    /// Our own room message `origin_seq` is committed: it is not submitted again.
    pub(in crate::proto::node) fn confirm_own(&mut self, now: Instant, origin_seq: OriginSeq) {
        if self.room.outbox.confirm(origin_seq).is_some() && self.room.outbox.is_empty() {
            // The timer also resends direct messages not yet confirmed kept.
            if self.mail.unsaved_len() == 0 {
                self.ctx.timers.clear(Timer::Resubmit);
            }
            self.on_outbox_drained(now);
        }
    }

    /// The leader's word that our submission `origin_seq` is committed where we will not
    /// see it (see [`Message::Settled`]).
    pub(in crate::proto::node) fn on_settled(
        &mut self,
        now: Instant,
        sender: NodeId,
        origin: NodeId,
        origin_seq: OriginSeq,
    ) {
        if self.leader() != Some(sender) || self.is_leader() || origin != self.ctx.id {
            return log_at!(debug, self, "ignoring settled {origin_seq:?} from {sender}");
        }
        log_at!(debug, self, "{origin_seq:?} is committed where we skipped");
        self.confirm_own(now, origin_seq);
    }

    /// Shows a message in order. A filler, or a message already shown under another
    /// number (possible only after a leader change), advances the sequence silently.
    pub(in crate::proto::node) fn deliver(&mut self, now: Instant, e: ChatEntry) {
        let mine = e.origin == self.ctx.id;
        if mine {
            self.confirm_own(now, e.origin_seq);
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
        if e.is_filler() {
            self.on_config_committed(now, &e);
        }
        // A newcomer takes in what it holds before the history it is shown silently.
        if !seen && e.seq >= self.room.shown_from {
            let history = e.seq < self.room.history_until;
            self.ctx.out.event(Event::Room {
                entry: e,
                mine,
                history,
            });
        }
    }
}
