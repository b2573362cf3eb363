//! The new leader's take-over: it gathers every room message and kept direct message the
//! survivors hold (in a second round from further back if a member needs it), keeps of
//! each uncommitted number the copy of the highest term, fills what nobody has, proposes
//! all of it again in its own term (committed like any proposal, by a majority), brings
//! every member up to date, and only then sequences anything new.

use super::*;
use crate::wire::MAX_VOTED_RUNS;

/// How long a take-over that cannot fetch numbers it knows committed waits for the
/// leader whose commit notice said so, while that leader is away (paused, cut off,
/// restarting), before it skips them as kept by nobody: that leader showed them, and
/// the members online may hold only copies of an older term, which cannot stand for
/// the committed ones.
const AWAIT_COMMITTER: Duration = Duration::from_secs(20);

/// Room messages a member sends a new leader in answer to one sync request, at most.
pub(super) const SYNC_BATCH: usize = 512;

impl Node {
    /// Asks every survivor for the room messages it has beyond ours.
    pub(in crate::proto::node) fn start_recovery(&mut self, now: Instant) {
        let Some(epoch) = self.ring.epoch() else {
            return;
        };
        // Nothing is sequenced until recovery ends (own messages wait in the outbox).
        // What this node proposed in an earlier term and did not commit is still held,
        // and is gathered with the rest.
        let from = self.room.holdback.next();
        let own_votes = self.room.votes_from(from);
        // Copies of an earlier take-over's answers still unproven: asked for again.
        self.room.answered.retain(|_| false);
        self.room.answered_twins.clear();
        self.room.closing.clear();
        self.room.role = Role::Recovering(Box::new(Recovery {
            high: self.room.holdback.high(),
            own_votes,
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
            // Asking from further on: only answers to this round count towards the
            // majority (an earlier one may have been cut short of what lies beyond).
            if from > rec.requested_from {
                rec.answered.clear();
                rec.answered_votes.clear();
                rec.answered_copies.clear();
            }
            // Every member is asked for all it holds from there: a cut answer is asked
            // for its rest again.
            rec.rest_from.clear();
            rec.waiting = peers
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| !rec.excused.contains(id))
                .collect();
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

    /// A member let in while this leader recovers is asked what it holds too.
    pub(in crate::proto::node) fn ask_during_recovery(
        &mut self,
        now: Instant,
        id: NodeId,
        addr: SocketAddr,
    ) {
        let Some(epoch) = self.ring.epoch() else {
            return;
        };
        let Some(rec) = self.room.recovery_mut() else {
            return;
        };
        rec.excused.remove(&id);
        rec.waiting.insert(id);
        rec.rest_from.remove(&id);
        let from = rec.requested_from;
        self.send_reliable(
            now,
            addr,
            Message::SyncRequest { epoch, from },
            Token::Control,
        );
    }

    /// Member `m` came back online during a take-over: a voter (of the committed
    /// configuration or the log's) is asked what it holds, unless it answered, was asked
    /// already, or asked to be let in instead (it will not answer: the take-over would
    /// wait for it until its timeout).
    pub(in crate::proto::node) fn ask_back_during_recovery(&mut self, now: Instant, m: &Member) {
        // The leader whose commit notice this node holds too: it showed what that covers.
        let votes = self.room.voters().contains(&m.name)
            || self.room.log_voters().contains(&m.name)
            || self.room.committer() == Some(m.id);
        let Some(rec) = self.room.recovery_mut() else {
            return;
        };
        if !votes
            || rec.answered.contains(&m.id)
            || rec.waiting.contains(&m.id)
            || rec.excused.contains(&m.id)
        {
            return;
        }
        self.ask_during_recovery(now, m.id, m.addr);
    }

    /// A survivor asked what it holds asks to be let in instead (it missed the round:
    /// paused, say): it will not answer, so recovery waits for it no longer (in this
    /// round or a later one), though an answer from it still counts. Only a join from
    /// the member's own address and identity key excuses it: anyone may send a join. Its
    /// join is taken up once this leader sequences, or at once if it votes.
    pub(in crate::proto::node) fn survivor_asks_in(&mut self, now: Instant, n: &Newcomer) {
        let same = self
            .ring
            .members()
            .get(n.id)
            .is_some_and(|m| m.addr == n.addr && m.key == n.key);
        let Some(rec) = self.room.recovery_mut().filter(|_| same) else {
            return;
        };
        if rec.waiting.remove(&n.id) {
            rec.excused.insert(n.id);
            log_at!(
                debug,
                self,
                "{} asks to be let in instead of answering",
                n.name
            );
            self.maybe_finish_recovery(now);
        }
    }

    /// During recovery, a message older than this leader's own delivery point: kept aside
    /// for members that lack it, if a member showed it (committed). Returns whether it was
    /// taken.
    pub(in crate::proto::node) fn backfill(&mut self, e: &ChatEntry) -> bool {
        let next = self.room.holdback.next();
        if e.seq >= next {
            return false;
        }
        let in_history = self.room.history.range(e.seq, e.seq).next().is_some();
        match self.room.recovery_mut() {
            Some(rec) => {
                // Only a copy some member showed is known to be the committed one.
                if !in_history && e.term == COMMITTED_TERM {
                    rec.backfill.insert(e.seq, e.clone());
                }
                true
            }
            None => false,
        }
    }

    /// Member `id` is gone: a recovery under way waits for it no more.
    pub(in crate::proto::node) fn survivor_gone(&mut self, now: Instant, id: NodeId) {
        let next = self.room.holdback.next();
        if let Some(rec) = self.room.recovery_mut() {
            rec.waiting.remove(&id);
            // Nor for what it said it sent: it may never come. Its answer no longer
            // counts towards the majority unless all of it is here, and not cut short
            // (see `ask_for_the_rest`): a committed entry may be held by it alone among
            // those that answered.
            if !Self::answer_counts(rec, id, next) {
                rec.answered.remove(&id);
            }
            // What it showed was held by a majority, so an answering member holds it too
            // (shown, and fetched from it; or uncommitted, and proposed again).
            rec.member_next.remove(&id);
            rec.answers.remove(&id);
            rec.arrived.remove(&id);
            if rec.fetch_target == Some(id) {
                rec.fetch_target = None;
            }
            self.maybe_finish_recovery(now);
        }
    }

    pub(in crate::proto::node) fn on_sync_reply(
        &mut self,
        now: Instant,
        member: NodeId,
        id: MsgId,
        epoch: Epoch,
        (next, high): (Seq, Seq),
        (sent, votes): (u32, Vec<VotedRun>),
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
        let asked = rec.waiting.remove(&member) | rec.excused.remove(&member);
        if !asked {
            return; // not asked (or answered already this round)
        }
        rec.answered.insert(member);
        // One answer's votes, added to those of the answer it continues (see
        // `ask_for_the_rest`).
        let mut votes = votes;
        votes.truncate(MAX_VOTED_RUNS);
        rec.answered_votes.entry(member).or_default().extend(votes);
        log_at!(
            debug,
            self,
            "sync reply from {member}: next {next} high {high}"
        );
        // Its messages are the `sent` ids just before its reply's.
        let first = MsgId::new(id.stream(), id.seq().saturating_sub(u64::from(sent)));
        let came = rec
            .arrived
            .get(&member)
            .map_or(0, |a| a.range(first..id).count() as u64);
        let answer = Answer::Sent {
            first,
            end: id,
            missing: u64::from(sent).saturating_sub(came),
            at: now,
        };
        rec.answers.insert(member, answer);
        // Nobody holds more than a hold-back queue's worth beyond what we asked from, nor
        // showed beyond what it holds: a claim past that (confused, or a lie) is capped,
        // and the rest asked for once this is here.
        let ceiling = Seq(rec.requested_from.0.saturating_add(MAX_HOLDBACK as u64));
        let high = high.min(ceiling);
        rec.member_next.insert(member, next.min(high.next()));
        // A full answer may have been cut short of what its member holds.
        if sent as usize >= SYNC_BATCH {
            rec.claimed.insert(member, high);
        } else {
            rec.claimed.remove(&member);
        }
        rec.high = rec.high.max(high);
        self.maybe_finish_recovery(now);
    }

    pub(in crate::proto::node) fn maybe_finish_recovery(&mut self, now: Instant) {
        // Both at once: the rest of a cut answer may hold copies of numbers this node
        // knows committed, which nobody showed and so no fetch brings; and numbers a
        // member showed that a fetch cannot prove (see `rest_due`).
        let asked = self.ask_for_the_rest(now);
        if self.fetch_shown(now) || asked {
            return;
        }

        let Role::Recovering(rec) = &self.room.role else {
            return;
        };
        // An answered copy waiting for its proof may be the only one of a committed entry.
        if !rec.waiting.is_empty() || !self.answers_arrived() || self.answers_unproven() {
            return;
        }
        if self.ask_second_round(now) {
            return;
        }
        // Answers are capped per round, and what members showed was fetched: while our
        // delivery point moves, ask again from there (what lies beyond it may have been
        // cut from an answer, or lie past a capped claim).
        let asked_at = self.room.recovery_mut().map(|r| r.asked_at);
        if let (Some(epoch), Some(asked_at)) = (self.ring.epoch(), asked_at)
            && self.room.holdback.next() > asked_at
        {
            let from = self.room.holdback.next();
            return self.ask_survivors(now, epoch, from);
        }
        // Everyone answered and everything they sent is here: what is still missing, no
        // survivor has. Only a majority of the voters answering makes that so: any entry
        // a majority held (committed) is then among the answers.
        if self.recovery_quorum(true) {
            self.finish_recovery(now);
        }
    }

    /// A member behind what we asked for (we joined after what it misses): ask again from
    /// there, once, so that whatever any survivor has reaches it. Whether it asked.
    fn ask_second_round(&mut self, now: Instant) -> bool {
        let Role::Recovering(rec) = &self.room.role else {
            return false;
        };
        let lowest = rec.member_next.values().min().copied();
        let (Some(lowest), Some(epoch)) = (lowest, self.ring.epoch()) else {
            return false;
        };
        if lowest >= rec.requested_from || rec.second_round {
            return false;
        }
        if let Some(rec) = self.room.recovery_mut() {
            rec.second_round = true;
        }
        self.ask_survivors(now, epoch, lowest);
        true
    }

    /// Whether this node is behind what an answering member showed: those numbers are
    /// committed, so none of them may be filled or proposed again. They are fetched first
    /// (see `catchup.rs`), from the member that showed the most (its memory or database),
    /// moving on to the next one ahead when a member says it no longer keeps them or
    /// stays silent for a recovery timeout; what none sends is skipped, once (see
    /// `recovery_timed_out`).
    fn fetch_shown(&mut self, now: Instant) -> bool {
        let next = self.room.holdback.next();
        let Some(floor) = self.take_over_floor().filter(|floor| *floor > next) else {
            return false;
        };
        let Some(rec) = self.room.recovery_mut() else {
            return false;
        };
        if rec.fetched_to.is_none() {
            // Progress is judged from here (see `recovery_timed_out`).
            rec.fetched_to = Some(Seq(next.0.saturating_sub(1)));
        }
        let best = rec.best_source(next);
        let current = rec.fetch_target;
        self.room.known_high = self.room.known_high.max(Seq(floor.0 - 1));
        let Some(best) = best else {
            return true;
        };
        if current == Some(best) && self.room.fetch_from.is_some() {
            return true;
        }
        let Some(addr) = self.ring.members().get(best).map(|m| m.addr) else {
            return true;
        };
        if let Some(rec) = self.room.recovery_mut() {
            rec.fetch_target = Some(best);
        }
        log_at!(
            info,
            self,
            "fetching #{next}..#{floor}, shown by {best}, before taking over"
        );
        self.catch_up_from(now, addr);
        true
    }

    /// What a take-over must not fill or propose again: every number below what an
    /// answering member showed, and below what this node knows committed (a leader's
    /// commit notice). Both were committed; the first also shown. Without the second, a
    /// member back with a gap it was still fetching, left the sole voter by changes it
    /// acked (an ack here is of one number, not of a whole log as in Raft), filled the
    /// committed numbers it lacked (`sim_chaos` seed 88, with an early pre-vote). `None`
    /// while recovering nothing.
    fn take_over_floor(&self) -> Option<Seq> {
        let Role::Recovering(rec) = &self.room.role else {
            return None;
        };
        Some(rec.floor(self.room.first_not_known_committed()))
    }

    /// The recovery timer fired while fetching what members showed: whether to wait on.
    /// A fetch that moved since the last timeout goes on; a silent source is treated as
    /// keeping nothing and the next one ahead is asked; with none left, what could not
    /// be fetched is skipped (once; after that the room waits for a source to answer).
    fn fetch_timed_out(&mut self, now: Instant) -> bool {
        if !self.fetch_shown(now) {
            return false;
        }
        let next = self.room.holdback.next();
        let committer = self.committer_elsewhere();
        let Some(rec) = self.room.recovery_mut() else {
            return false;
        };
        let progressed = rec.fetched_to.is_some_and(|f| next > f);
        rec.fetched_to = Some(next);
        if progressed {
            rec.sourceless_since = None;
        } else {
            if let Some(silent) = rec.fetch_target.take() {
                rec.not_kept.insert(silent);
            }
            // The rest of a cut answer may still bring them.
            let rest_to_come = rec.answered.iter().any(|m| {
                (rec.waiting.contains(m) && rec.rest_from.contains_key(m))
                    || Self::rest_due(rec, *m, next).is_some()
            });
            if rec.best_source(next).is_none() && !rest_to_come {
                let since = *rec.sourceless_since.get_or_insert(now);
                let patient = now.saturating_duration_since(since) < AWAIT_COMMITTER;
                // Away, or back and asked, its answer still to come.
                let awaited = committer
                    .filter(|(c, online)| !online || rec.waiting.contains(c))
                    .map(|(c, _)| c);
                if rec.skipped {
                    // Skipped once already: wait for a source, asking each again.
                    rec.not_kept.clear();
                } else if let Some(committer) = awaited.filter(|_| patient) {
                    // The leader that said they are committed showed them: it is away
                    // (paused, cut off), and asked once it is back.
                    log_at!(
                        info,
                        self,
                        "#{next}.. committed, held by no member online: waiting for {committer}, whose commit notice said so"
                    );
                } else {
                    rec.skipped = true;
                    let floor = self.take_over_floor().unwrap_or(next);
                    self.skip_unkept(now, floor);
                    return false;
                }
            }
            self.fetch_shown(now);
        }
        self.ctx
            .timers
            .set(Timer::Recovery, now + self.ctx.cfg.recovery_timeout);
        true
    }

    /// The leader whose commit notice this node holds, if it is another node in the
    /// member table (it showed everything up to that point), and whether it is online.
    fn committer_elsewhere(&self) -> Option<(NodeId, bool)> {
        let members = self.ring.members();
        self.room
            .committer()
            .filter(|c| *c != self.ctx.id && members.get(*c).is_some())
            .map(|c| (c, members.is_online(c)))
    }

    /// The recovery timer fired: with a majority of the voters answered, recovery ends
    /// with what came; without, the room waits (visibly) and every member is asked again.
    pub(in crate::proto::node) fn recovery_timed_out(&mut self, now: Instant) {
        if !self.room.is_recovering() {
            return;
        }
        if self.recovery_quorum(true) {
            // A member asked for the rest and silent may hold a fetch up (see
            // `fetch_timed_out`): asked again here too.
            self.ask_silent_again(now);
            if self.fetch_timed_out(now) {
                return;
            }
            // The delivery point moved since the survivors were asked (a fetch, a skip):
            // ask again from there before numbering anything.
            if let (Some(epoch), Some(asked_at)) = (
                self.ring.epoch(),
                self.room.recovery_mut().map(|r| r.asked_at),
            ) && self.room.holdback.next() > asked_at
            {
                let from = self.room.holdback.next();
                return self.ask_survivors(now, epoch, from);
            }
            if self.ask_for_the_rest(now) {
                return;
            }
            self.give_up_unproven_answers();
            return self.finish_recovery(now);
        }
        if self.recovery_quorum(false) {
            // Ending now could fill over what an answer still brings.
            return self.await_answers(now);
        }
        // Said of the configuration whose majority is missing (see `recovery_quorum`).
        let (held, voters, majority) = match &self.room.role {
            Role::Recovering(rec) => match self.take_over_shortfall(&rec.answered) {
                Some(short) => short,
                None => return,
            },
            _ => return,
        };
        let timeouts = self.room.recovery_mut().map_or(0, |r| {
            r.timeouts += 1;
            r.timeouts
        });
        if timeouts >= REELECT_AFTER {
            // Alone in its ring: an election would only elect it again. Others may lead a
            // room of their own (restarted at once and missed): look for them.
            if self.ring.members().online_peers().next().is_none() && self.look_again(now) {
                return;
            }
            log_at!(
                info,
                self,
                "no majority after {timeouts} tries; electing again"
            );
            self.room.step_down();
            return self.seek_election(now);
        }
        if self.room.set_waiting(true) {
            self.say_unreachable_of(held, voters, majority);
        }
        let (Some(epoch), Some(from)) = (
            self.ring.epoch(),
            self.room.recovery_mut().map(|r| r.requested_from),
        ) else {
            return;
        };
        self.ask_survivors(now, epoch, from);
    }
}
