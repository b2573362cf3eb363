//! The end of a new leader's take-over (see `recovery.rs` for how it gathers what the
//! survivors hold): what it proposes again in its term, what it fills, and how it moves
//! past numbers nobody could send it.

use super::*;

impl Node {
    /// Ends recovery: proposes again, in this leader's term, every number past its own
    /// shown history that any survivor held (the copy of the highest term) or nobody did
    /// (a filler), brings members up to date with what was committed before, and starts
    /// sequencing (first the submissions that waited).
    pub(in crate::proto::node) fn finish_recovery(&mut self, now: Instant) {
        let Role::Recovering(rec) = std::mem::replace(&mut self.room.role, Role::Follower) else {
            return;
        };
        self.ctx.timers.clear(Timer::Recovery);
        let Some(epoch) = self.ring.epoch() else {
            return;
        };
        self.skip_unkept(now, rec.floor(self.room.first_not_known_committed()));
        let start = self.room.holdback.next();
        let end = rec.high.max(self.room.holdback.high()).next().max(start);
        let mut proposals = Vec::new();
        let mut filled = 0;
        for s in start.0..end.0 {
            let e = match self.room.holdback.get(Seq(s)) {
                Some(e) => e.clone(),
                None => {
                    filled += 1;
                    ChatEntry::filler(Seq(s))
                }
            };
            proposals.push(e);
        }
        let spliced = fill_changes_leaving_no_voter(self.room.voters().clone(), &mut proposals);
        if spliced > 0 {
            log_at!(
                info,
                self,
                "{spliced} configuration changes held would leave no voter; filled instead"
            );
        }
        // An entry of this term goes first, even with nothing to propose again: until one
        // commits, this node's configuration may end with a change a majority never held,
        // and a change of its own on top could commit beside a conflicting one (see
        // `config.rs`). A filler shows nothing.
        let again = proposals.len();
        if proposals.is_empty() {
            proposals.push(ChatEntry::filler(start));
        }
        let end = end.max(start.next());
        // Every surviving message a member still lacks is in our history, the backfill, or
        // proposed again; older ones were shown everywhere, so their origins confirmed them.
        // What a survivor sent from before our history is its word alone: its origin's
        // next submission of that number confirms it or not (see `Sequencer::note_claimed`).
        let mut sequencer = Sequencer::resume(end, &self.room.history);
        for e in rec.backfill.values().filter(|e| !e.is_filler()) {
            sequencer.note_claimed(e);
        }
        for e in proposals.iter().filter(|e| !e.is_filler()) {
            sequencer.note_sequenced(e.origin, e.origin_seq);
        }
        let mut leadership = Leadership::new(epoch.term, sequencer);
        leadership.settles_at = Some(start);
        leadership.linked_below = end;
        self.room.role = Role::Leading(leadership);
        self.room.led_term = Some(epoch.term);
        self.room
            .note_commit(epoch.term, Seq(start.0.saturating_sub(1)));
        log_at!(
            info,
            self,
            "took over sequencing at #{start}: {again} numbers proposed again ({filled} lost, filled), {} kept messages",
            self.mail.kept_len()
        );
        // Bring every member up to our shown point: from our history, from what survivors
        // sent us that predates our history, or as a filler where nobody had it.
        for (member, next) in rec.member_next {
            let Some(addr) = self.ring.members().get(member).map(|m| m.addr) else {
                continue;
            };
            // What neither holds (older than our history keeps) the member fetches from
            // us, as any member behind does: from our database, or told it is not kept.
            for s in (next.0..start.0).take(super::recovery::SYNC_BATCH) {
                let Some(e) = self
                    .room
                    .history
                    .range(Seq(s), Seq(s))
                    .next()
                    .cloned()
                    .or_else(|| rec.backfill.get(&Seq(s)).cloned())
                else {
                    continue;
                };
                // Shown here (or by a survivor), so committed.
                let e = ChatEntry {
                    term: COMMITTED_TERM,
                    ..e
                };
                self.send_entry(now, addr, e);
            }
            self.tell_commit(now, member);
        }
        for e in proposals {
            self.propose(now, e);
        }
        for (origin, s) in rec.held_submits {
            self.take_submission(now, origin, s);
        }
        for (from, origin, to, dm) in rec.held_stores {
            self.on_store(now, from, origin, to, dm);
        }
        for newcomer in rec.held_joins {
            self.on_join(now, newcomer);
        }
        self.resubmit(now);
        self.hand_over_all(now);
        self.reconcile_voters(now);
    }
}
