//! How a new leader counts the survivors' answers during its take-over (see
//! `recovery.rs`): each answer by the transport ids of the messages sent with it, a
//! majority only of answers here in full, and an answer given up on asked for again.

use super::config::LoggedConfig;
use super::*;
use crate::proto::reliable::longest_resend;

/// How many times a member whose answer never all arrives is asked again while still
/// counting as answered (see `Node::await_answers`).
const ASKED_AGAIN_AT_MOST: u32 = 2;

impl Node {
    /// Whether everything member `m` sent with its answer is here (an answer's reply may
    /// overtake its entries, which are resent on a lossy link).
    pub(super) fn answer_complete(rec: &Recovery, m: NodeId) -> bool {
        match rec.answers.get(&m) {
            None => true,
            Some(Answer::Sent { missing, .. }) => *missing == 0,
            Some(Answer::AskedAgain { .. }) => false,
        }
    }

    /// Whether every entry an answering member sent with its answer is here.
    pub(super) fn answers_arrived(&self) -> bool {
        let Role::Recovering(rec) = &self.room.role else {
            return false;
        };
        rec.answers.keys().all(|m| Self::answer_complete(rec, *m))
    }

    /// A majority answered but not all it announced is here: wait on. A member whose
    /// answer is still short once its transport has surely given up on what is missing
    /// (its longest resend time since the reply came), or that was asked again (for the
    /// rest of a cut answer, say) and sent no reply for as long, is asked again: its answer then
    /// counts only once the new one is here in full (the ids tell the new one's messages
    /// from the old), and it still counts as answered meanwhile, so the take-over goes on
    /// rather than starting an election again; after [`ASKED_AGAIN_AT_MOST`] such tries
    /// it no longer counts (without a majority then, the room elects again).
    pub(super) fn await_answers(&mut self, now: Instant) {
        let recovery_timeout = self.ctx.cfg.recovery_timeout;
        self.ctx.timers.set(Timer::Recovery, now + recovery_timeout);
        self.ask_silent_again(now);
    }

    /// The part of [`Node::await_answers`] that asks again each member whose answer is
    /// short, or who was asked again and sent no reply, for its longest resend time.
    pub(super) fn ask_silent_again(&mut self, now: Instant) {
        let cfg = &self.ctx.cfg;
        let give_up = longest_resend(cfg.ack_timeout, cfg.max_retries);
        let Some(rec) = self.room.recovery_mut() else {
            return;
        };
        // Short, or asked again and silent as long: a member that would not answer then
        // (it was electing, or had declared this node gone) may answer now, and no other
        // path asks it again (`sim_failover` two-leaders seed 723: the room waited for
        // good).
        let short: Vec<NodeId> = rec
            .answers
            .iter()
            .filter(|(_, a)| match a {
                Answer::Sent { missing, at, .. } => {
                    *missing > 0 && now.saturating_duration_since(*at) >= give_up
                }
                Answer::AskedAgain { at } => now.saturating_duration_since(*at) >= give_up,
            })
            .map(|(m, _)| *m)
            .collect();
        for m in &short {
            rec.answers.insert(*m, Answer::AskedAgain { at: now });
            rec.waiting.insert(*m);
            let tries = rec.asked_again.entry(*m).or_default();
            *tries += 1;
            if *tries > ASKED_AGAIN_AT_MOST {
                rec.answered.remove(m);
            }
        }
        // A short rest of a cut answer is asked for again from where it began.
        let from: Vec<Seq> = short
            .iter()
            .map(|m| rec.rest_from.get(m).copied().unwrap_or(rec.requested_from))
            .collect();
        let Some(epoch) = self.ring.epoch() else {
            return;
        };
        for (m, from) in short.into_iter().zip(from) {
            let Some(addr) = self.ring.members().get(m).map(|e| e.addr) else {
                continue;
            };
            log_at!(
                info,
                self,
                "answer from {m} never all arrived; asking it again"
            );
            let msg = Message::SyncRequest { epoch, from };
            self.send_reliable(now, addr, msg, Token::Control);
        }
    }

    /// Answers cut short of what their member holds: one answer carries at most
    /// `SYNC_BATCH` room messages, and a member may hold more proposals than that, none
    /// known committed. Each such member (online) is asked for the rest, from past the
    /// last number its answer carried, and its answer counts again only once that is
    /// here in full (as one asked again, [`Answer::AskedAgain`]). Without this,
    /// `finish_recovery` filled the numbers past the cut, and a leader that died may have
    /// committed and shown them. Whether anyone was asked.
    pub(super) fn ask_for_the_rest(&mut self, now: Instant) -> bool {
        let next = self.room.holdback.next();
        let Some(epoch) = self.ring.epoch() else {
            return false;
        };
        let Some(rec) = self.room.recovery_mut() else {
            return false;
        };
        let members = self.ring.members();
        let cut: Vec<(NodeId, SocketAddr, Seq)> = rec
            .answered
            .iter()
            .filter(|m| !rec.waiting.contains(m) && members.is_online(**m))
            .filter_map(|m| {
                let from = Self::rest_due(rec, *m, next)?;
                Some((*m, members.get(*m)?.addr, from))
            })
            .collect();
        for (m, _, from) in &cut {
            rec.rest_from.insert(*m, *from);
            rec.answers.insert(*m, Answer::AskedAgain { at: now });
            rec.waiting.insert(*m);
        }
        for (m, addr, from) in &cut {
            log_at!(
                debug,
                self,
                "answer from {m} cut before #{from}; asking for the rest"
            );
            let msg = Message::SyncRequest { epoch, from: *from };
            self.send_reliable(now, *addr, msg, Token::Control);
        }
        if cut.is_empty() {
            return false;
        }
        let recovery_timeout = self.ctx.cfg.recovery_timeout;
        self.ctx.timers.set(Timer::Recovery, now + recovery_timeout);
        true
    }

    /// Where the rest of member `m`'s answer is due from, if it was cut: the answer is all
    /// here, was full, and its last number (of the messages sent with that reply, by
    /// their ids: never an earlier answer's) is below the highest `m` said it holds; from
    /// past that number and this node's delivery point `next`, and past what `m` showed
    /// unless `m` is the member fetched from. Of that one, what it showed is asked for
    /// too, while it is fetched (see `fetch_shown`): the end of it may be the first
    /// part of a run whose seal `m` only holds, and a fetch answer, from what `m` showed,
    /// then proves none of it, while an answer carries shown and held copies as one
    /// stream ending with a message that closes its run (`sim_failover` burst seed 1463:
    /// the new leader skipped such numbers as kept by nobody). A member is asked from one
    /// point once: if it sends nothing further, it claimed more than it holds.
    pub(super) fn rest_due(rec: &Recovery, m: NodeId, next: Seq) -> Option<Seq> {
        let Some(Answer::Sent {
            first,
            end,
            missing: 0,
            ..
        }) = rec.answers.get(&m)
        else {
            return None;
        };
        let held = *rec.claimed.get(&m)?;
        let sent = rec
            .arrived
            .get(&m)?
            .range(*first..*end)
            .map(|(_, s)| *s)
            .max()?;
        // What `m` showed, the fetch brings; only the member fetched from is asked for it
        // too (each answer costs up to a batch a round trip).
        let fetched_from = rec.fetch_target == Some(m) || rec.best_source(next) == Some(m);
        let shown_to = rec.member_next.get(&m).copied().unwrap_or_default();
        let from = if fetched_from {
            sent.next().max(next)
        } else {
            sent.next().max(next).max(shown_to)
        };
        let new = rec.rest_from.get(&m).is_none_or(|asked| from > *asked);
        (from <= held && new).then_some(from)
    }

    /// Whether member `m`'s answer counts towards a majority: all of it is here and it
    /// was not cut short of what `m` holds (see [`Node::rest_due`]).
    pub(super) fn answer_counts(rec: &Recovery, m: NodeId, next: Seq) -> bool {
        Self::answer_complete(rec, m) && Self::rest_due(rec, m, next).is_none()
    }

    /// Whether a majority of the voters (this node included, if it votes) answered, of
    /// the configuration its log ends with (with every answer in it): a change held but
    /// not yet known committed counts, as in Raft; with one change at a time, any majority
    /// of it overlaps any majority of the configuration before it. With `complete`, only
    /// answers all of whose entries are here count: a committed entry the majority holds
    /// may be held by one of them alone, and still be on its way (seed 930564).
    pub(super) fn recovery_quorum(&self, complete: bool) -> bool {
        let Role::Recovering(rec) = &self.room.role else {
            return false;
        };
        let next = self.room.holdback.next();
        let counted: BTreeSet<NodeId> = rec
            .answered
            .iter()
            .filter(|m| !complete || Self::answer_counts(rec, **m, next))
            .copied()
            .collect();
        self.take_over_shortfall(&counted).is_none()
    }

    /// What a take-over answered by `answered` lacks: `(answering, voters, majority)` of
    /// the configuration whose majority did not answer, or `None`. A majority of the
    /// configuration the log ends with, and of the committed one too whenever they differ
    /// (a change held and not known committed): that change may be an older leader's that
    /// a later leader overwrote, committing its own change at that number (or before it)
    /// with a majority of its configuration, two changes away from the held one; and a
    /// take-over merges the answers number by number, with no check that the candidate's
    /// log is as new as theirs (as Raft's election makes), so a majority of the held
    /// change's configuration alone could miss every holder of the committed entry. Any
    /// majority of the committed configuration overlaps any majority of one a change away
    /// (the model check in `tests/model_config.rs`). The cost: survivors that were not
    /// yet told a change committed need the committed configuration's majority, so a
    /// leaving voter goes only once a majority of the room after it has been told (see
    /// `life/leave.rs`). A log merged from two branches may hold more than one change;
    /// where it switches branch, the configuration between needs its majority too.
    pub(super) fn take_over_shortfall(
        &self,
        answered: &BTreeSet<NodeId>,
    ) -> Option<(usize, usize, usize)> {
        let (majority, held) = self.holders(answered);
        if held < majority {
            return Some((held, self.room.log_voters().len(), majority));
        }
        if !self.room.holds_changes_in_flight() {
            return None;
        }
        // And of each configuration after which the log goes on in another branch: a
        // held change of a lower term than the change before it (two proposals, neither
        // a committed copy) is a deposed leader's, merged in number by number, and the
        // leader of the higher term may have gone on from the configuration between,
        // one change away from it and two from the others (`sim_chaos` seed 5063: its
        // majority alone held what that leader committed). In one branch's log no term
        // goes down, and this adds nothing. So does a configuration after which the next
        // change held was proposed after a change the log lacks (its parent is not the
        // change before it): the change after is then two changes away from it
        // (`sim_chaos` seed 18849: {ann, cat}, then cat's removal of ann, which cat alone
        // committed, then its addition of ben, held by ben; ann and ben were 2 of 3 of
        // what their log made of that, {ann, ben, cat}). Numbers missing between two
        // changes, the later one's parent the earlier, ask nothing more: asked for, the
        // configuration between an addition and its undoing, a gap between them, waited
        // for good for the user gone (`sim_chaos` minority seed 16088).
        //
        // A change the answers prove committed (see `proven_changes`) stands for the
        // committed configuration: what is asked of the chain starts from it.
        let chain = self.room.configs_in_log();
        let chain = &chain[self.proven_changes(&chain, answered)..];
        let proposal = |t: Option<u64>| t.filter(|t| *t != COMMITTED_TERM);
        let branch_points = chain.windows(3).filter_map(|w| {
            let (made, next) = (proposal(w[1].term)?, proposal(w[2].term)?);
            (next < made).then_some(&w[1].voters)
        });
        let before_unknown = chain
            .iter()
            .skip(1)
            .take(chain.len().saturating_sub(2))
            .filter(|c| c.unknown_after)
            .map(|c| &c.voters);
        std::iter::once(&chain[0].voters)
            .chain(branch_points)
            .chain(before_unknown)
            .find_map(|voters| {
                let (majority, held) = self.holders_among(voters, answered);
                (held < majority).then_some((held, voters.len(), majority))
            })
    }

    /// How many changes of `chain` (the configurations of this node's log, from the
    /// committed one on) the answers `answered` prove committed, in turn: each a proposal
    /// (not a committed copy) whose parent is the change before it in the chain, held in
    /// the very copy this node keeps by a majority of the configuration it makes as votes
    /// (see `Room::voted`: taken as proposals from the leader of their term, or proposed
    /// by it; an answer's vote counts only where it sent the copy of that term), and so is
    /// every number from this node's delivery point to it, each in a copy of the change's
    /// term. The leader of that term counted those acks in that configuration and commits
    /// in order, so those majorities are ones it commits them all by, and any later
    /// leader's majority meets them. What the model check (`tests/model_config.rs`) found
    /// without each part: without the numbers before the change, a take-over filled an
    /// entry before it that an older leader had committed under a sibling change; counting
    /// copies merged from answers (this node's in this take-over, or anyone's in an
    /// earlier one that failed), a take-over committed a stale sibling change beside the
    /// committed one (`tests/model_config/replays.rs`). Without this rule, survivors
    /// holding a change their leader committed with a majority of them, the leader gone
    /// before telling anyone, waited for good for a majority of the configuration before
    /// it (`sim_failover` seed 648: `ann`'s addition back, committed by `ben` with `ann`'s
    /// ack, `ben` crashed; `cat` and `ann` are 2 of 3 of `{ann, ben, cat}` but 1 of 2 of
    /// `{ben, cat}`). The leader of the change's term, where this node knows it (it took
    /// that leader's proposals of the term as votes: see `Room::proposers`), is a holder
    /// too, alive or not: it proposed each copy of its term, held it and counted itself
    /// towards committing it. Without it, a dead leader's removal of a voter, committed
    /// with one survivor's ack, held as a vote by that survivor alone, left the survivors
    /// waiting for good for a majority of the configuration before it (`sim_failover`
    /// seeds 1781403 and 1800517: `dan`, leading term 1, removes `ann` and commits it with
    /// `ben`, then crashes; `ben` is 1 of `{ben, cat, dan}` without `dan`, 2 with it). The
    /// model check's `Quorum::ChainProvenByLeader` counts the leader of every term.
    fn proven_changes(&self, chain: &[LoggedConfig], answered: &BTreeSet<NodeId>) -> usize {
        let Role::Recovering(rec) = &self.room.role else {
            return 0;
        };
        let next = self.room.holdback.next();
        let held_in_term = |seq: Seq, term: u64, voters: &BTreeSet<String>| {
            if self
                .room
                .holdback
                .get(seq)
                .is_none_or(|kept| kept.term != term)
            {
                return false;
            }
            // A vote named for a copy of the term it sent: naming one costs a member
            // the copy as well as the word.
            let sent = rec.answered_copies.get(&seq);
            let votes_for = |m: &&NodeId| {
                sent.and_then(|c| c.get(*m)) == Some(&term)
                    && rec.answered_votes.get(m).is_some_and(|runs| {
                        runs.iter()
                            .any(|r| r.term == term && r.first <= seq && seq <= r.last)
                    })
            };
            let holders: BTreeSet<NodeId> = answered.iter().filter(votes_for).copied().collect();
            let own = rec.own_votes.get(&seq) == Some(&term);
            let (majority, mut held) = self.voters_among(voters, &holders, own);
            if let Some(proposer) = self.room.proposer_of(term)
                && self.proposer_uncounted(proposer, voters, &holders, own)
            {
                held += 1;
            }
            held >= majority
        };
        let mut proven = 0;
        while let [before, change, ..] = &chain[proven..] {
            let Some(term) = change.term.filter(|t| *t != COMMITTED_TERM) else {
                break;
            };
            if before.unknown_after
                || !(next.0..=change.at.0).all(|s| held_in_term(Seq(s), term, &change.voters))
            {
                break;
            }
            proven += 1;
        }
        proven
    }

    /// Whether `proposer`, the leader of a term, votes in `voters` under a name
    /// [`Node::voters_among`] did not count already for `holders` (and this node, if
    /// `own`): online or not, as it held what it proposed.
    fn proposer_uncounted(
        &self,
        proposer: NodeId,
        voters: &BTreeSet<String>,
        holders: &BTreeSet<NodeId>,
        own: bool,
    ) -> bool {
        let name = if proposer == self.ctx.id {
            Some(self.ctx.cfg.name.as_str())
        } else {
            self.ring.members().get(proposer).map(|m| m.name.as_str())
        };
        let Some(name) = name.filter(|n| voters.contains(*n)) else {
            return false;
        };
        let counted = (own && name == self.ctx.cfg.name)
            || holders.iter().any(|id| {
                self.ring
                    .members()
                    .get(*id)
                    .is_some_and(|m| m.presence == Presence::Online && m.name == name)
            });
        !counted
    }
}
