//! A node's part in sequencing the room, and the state of each part: leading (and
//! confirming, or retiring), or gathering what the survivors hold as a new leader.

use super::*;
use crate::wire::MAX_VOTED_RUNS;

/// This node's part in sequencing the room. One value, so that a node cannot both
/// recover and sequence, or sequence without being the one that won.
#[derive(Debug)]
pub(super) enum Role {
    /// Follows whoever leads (or waits for one).
    Follower,
    /// Elected: gathering what the survivors hold before sequencing anything.
    Recovering(Box<Recovery>),
    /// Sequences room messages.
    Leading(Leadership),
    /// Leads, but was away (paused, suspended) and may have been deposed meanwhile:
    /// sequences nothing until a majority of the room is heard from under its leadership.
    Confirming(Leadership, Confirmation),
    /// Stopped sequencing to leave; what it proposed may still commit meanwhile.
    Retiring(Leadership),
}

/// A leader's state in its term.
#[derive(Debug)]
pub(super) struct Leadership {
    /// The term it leads.
    pub(super) term: u64,
    pub(super) sequencer: Sequencer,
    /// Members that acked each number proposed and not yet committed.
    pub(super) acks: BTreeMap<Seq, BTreeSet<NodeId>>,
    /// The commit point each member acked hearing of.
    pub(super) told: BTreeMap<NodeId, Seq>,
    /// Members with a commit notice in flight (one at a time each: the next one carries
    /// whatever committed meanwhile).
    pub(super) telling: BTreeSet<NodeId>,
    /// Proposals a member never acked within the retries (cut off, paused), or was not
    /// sent while its flow window was full: sent again as it acks, or on the next
    /// heartbeat tick (as committed copies once committed, while the leader keeps them).
    pub(super) lost: BTreeMap<NodeId, BTreeSet<Seq>>,
    /// The numbers proposed in this term that each member has not acked: in flight,
    /// held back by its flow window, or given up on. Sent again, committed or not, until
    /// it acks them (or it goes offline); the oldest bounds how far the room runs ahead
    /// of it (see `Node::pace`).
    pub(super) owed: BTreeMap<NodeId, BTreeSet<Seq>>,
    /// Users that asked to be taken out of the configuration before they go.
    pub(super) leaving: BTreeSet<String>,
    /// Since when the oldest uncommitted proposal has waited (reset when one commits).
    pub(super) stuck_since: Option<Instant>,
    /// Whether a change of the configuration waits to hear that a majority of the
    /// configuration after it hears this leader (tried again on acks and heartbeats).
    pub(super) change_waits: bool,
    /// Runs of submissions taken while a member had a full flow window, in the order
    /// taken, and how many submissions they hold: sequenced once none has (see
    /// `sequence.rs`).
    pub(super) paced: VecDeque<(NodeId, Vec<Submit>)>,
    pub(super) paced_len: usize,
    /// The first number proposed in this term at a take-over, until it commits: no change
    /// of the configuration is proposed before an entry of the leader's own term is
    /// committed (see `config.rs`). `None` once committed, or when nobody else could
    /// hold anything (a new room, one carried on alone).
    pub(super) settles_at: Option<Seq>,
    /// The numbers a take-over proposed again lie below it: they go with their links. A
    /// member may no longer vouch for the message before one (it showed it long ago, and
    /// forgot it, see `VOUCHED_MAX`), and could not work a link out from it; it would
    /// never ack (`sim_failover` burst seed 186).
    pub(super) linked_below: Seq,
}

impl Leadership {
    pub(super) fn new(term: u64, sequencer: Sequencer) -> Self {
        Leadership {
            settles_at: None,
            linked_below: Seq(0),
            term,
            sequencer,
            acks: BTreeMap::new(),
            told: BTreeMap::new(),
            telling: BTreeSet::new(),
            lost: BTreeMap::new(),
            owed: BTreeMap::new(),
            leaving: BTreeSet::new(),
            stuck_since: None,
            change_waits: false,
            paced: VecDeque::new(),
            paced_len: 0,
        }
    }
}

/// What a leader back from an absence has heard, and what waits for it.
#[derive(Debug, Default)]
pub(super) struct Confirmation {
    /// Members heard from (a heartbeat under our leadership) since this node came back.
    pub(super) heard: BTreeSet<NodeId>,
    /// Submissions received meanwhile, sequenced once confirmed.
    pub(super) held_submits: Vec<(NodeId, Submit)>,
}

/// A new leader's state while it gathers the room messages survivors have.
#[derive(Debug, Default)]
pub(super) struct Recovery {
    /// Members that have not answered yet.
    pub(super) waiting: BTreeSet<NodeId>,
    /// Members asked that asked to be let in instead: not waited for, but their answer
    /// still counts if it comes (see `Node::survivor_asks_in`).
    pub(super) excused: BTreeSet<NodeId>,
    /// Members that answered (their users count towards the majority recovery needs).
    pub(super) answered: BTreeSet<NodeId>,
    /// The answer counted for each member (see [`Answer`]).
    pub(super) answers: BTreeMap<NodeId, Answer>,
    /// The transport ids of the room messages and kept messages that arrived from each
    /// member while recovering (an answer's are counted by them, once each), with the
    /// number of each room message (0 for a kept one).
    pub(super) arrived: BTreeMap<NodeId, BTreeMap<MsgId, Seq>>,
    /// How many times each member was asked again for an answer that never all arrived.
    pub(super) asked_again: BTreeMap<NodeId, u32>,
    /// The highest sequence number any survivor reported.
    pub(super) high: Seq,
    /// Each answering member's next undelivered sequence number.
    pub(super) member_next: BTreeMap<NodeId, Seq>,
    /// The first sequence number asked for.
    pub(super) requested_from: Seq,
    /// Our own next undelivered number when we last asked (to see progress).
    pub(super) asked_at: Seq,
    /// Whether the second round (asking from the lowest point any member still needs) ran.
    pub(super) second_round: bool,
    /// Recovery timeouts passed without a majority answering.
    pub(super) timeouts: u32,
    /// Messages from before this leader's own history, gathered for members that lack them.
    pub(super) backfill: BTreeMap<Seq, ChatEntry>,
    /// Submissions received meanwhile, sequenced once recovery ends.
    pub(super) held_submits: Vec<(NodeId, Submit)>,
    /// Requests to keep direct messages received meanwhile, handled once recovery ends.
    pub(super) held_stores: Vec<(SocketAddr, NodeId, u8, DirectMessage)>,
    /// Joins received meanwhile, admitted once recovery ends.
    pub(super) held_joins: Vec<Newcomer>,
    /// The member this node fetches what it showed from (see `recovery.rs`).
    pub(super) fetch_target: Option<NodeId>,
    /// Our delivery point when the fetch began or at the last recovery timeout since (to
    /// see it progress); `None` before any fetch.
    pub(super) fetched_to: Option<Seq>,
    /// Members that said they no longer keep what this node fetched from them, or sent
    /// nothing of it for a whole recovery timeout.
    pub(super) not_kept: BTreeSet<NodeId>,
    /// Whether this recovery skipped numbers no answering member would send.
    pub(super) skipped: bool,
    /// Since when nobody online would send what this node fetches (see
    /// `Node::fetch_timed_out`).
    pub(super) sourceless_since: Option<Instant>,
    /// This node's own votes when the take-over began (see `Room::voted`): the term of
    /// each, by number. One leader proposes one entry at a number in its term, so two
    /// copies of one term are one copy.
    pub(super) own_votes: BTreeMap<Seq, u64>,
    /// The votes each member named in its answers this round (see `Node::proven_changes`),
    /// at most [`MAX_VOTED_RUNS`] runs per answer (a cut answer's rest adds its own).
    pub(super) answered_votes: BTreeMap<NodeId, Vec<VotedRun>>,
    /// The term of each proposal each member sent with its answer this round, by number:
    /// a vote counts only where the member sent a copy of its term.
    pub(super) answered_copies: BTreeMap<Seq, BTreeMap<NodeId, u64>>,
    /// The highest number each member said it holds, if its last answer was full
    /// (`SYNC_BATCH` messages: it may have been cut short of that; see
    /// `Node::ask_for_the_rest`).
    pub(super) claimed: BTreeMap<NodeId, Seq>,
    /// Where each member was last asked for the rest of a cut answer, since it was last
    /// asked for all of it.
    pub(super) rest_from: BTreeMap<NodeId, Seq>,
}

/// A member's answer, as counted. Its messages go to the leader just before its reply,
/// one after the other in its stream, so the reply's transport id says which they are:
/// an entry from an earlier answer (asked twice, or in an earlier round or term) is never
/// taken for one of them.
#[derive(Clone, Copy, Debug)]
pub(super) enum Answer {
    /// The reply came at `at`; its messages are ids `first..end` (one stream's).
    Sent {
        first: MsgId,
        end: MsgId,
        /// How many of them have not arrived.
        missing: u64,
        at: Instant,
    },
    /// Asked again at `at` (what it sent never all arrived, or it was cut short): it
    /// counts only once the new answer is here in full.
    AskedAgain { at: Instant },
}

impl Recovery {
    /// The member that showed the most, and the number after the last it showed: every
    /// number below that is committed.
    pub(super) fn showed_most(&self) -> Option<(NodeId, Seq)> {
        self.member_next
            .iter()
            .max_by_key(|(_, next)| **next)
            .map(|(id, next)| (*id, *next))
    }

    /// What a take-over must not fill or propose again (all committed): every number
    /// below what an answering member showed, and below `known`, the first number this
    /// node does not know committed.
    pub(super) fn floor(&self, known: Seq) -> Seq {
        self.showed_most().map_or(known, |(_, f)| f.max(known))
    }

    /// The member to fetch from: of those that showed beyond `next`, the one that showed
    /// the most and has not said (or shown by silence) that it no longer keeps it.
    pub(super) fn best_source(&self, next: Seq) -> Option<NodeId> {
        self.member_next
            .iter()
            .filter(|(id, n)| **n > next && !self.not_kept.contains(id))
            .max_by_key(|(_, n)| **n)
            .map(|(id, _)| *id)
    }
}

/// The terms whose leader a node remembers as the proposer of its votes (see
/// `Room::proposers`): a hold-back queue's votes span a few terms at most.
const PROPOSER_TERMS: usize = 16;

/// Moving between the parts, and what waits while a leader confirms or recovers.
impl Room {
    /// Whether this node leads but waits to hear from a majority after an absence.
    pub(in crate::proto::node) fn is_confirming(&self) -> bool {
        matches!(self.role, Role::Confirming(..))
    }

    /// This node was away (paused, suspended): a leader's proposals waited for the
    /// absence, not for the room, so the wait CheckQuorum judges starts again now.
    pub(in crate::proto::node) fn restart_quorum_clock(&mut self, now: Instant) {
        if let Some(l) = self.leadership_mut()
            && l.stuck_since.is_some()
        {
            l.stuck_since = Some(now);
        }
    }

    /// A leader back from an absence stops sequencing until it is confirmed.
    pub(in crate::proto::node) fn start_confirming(&mut self) {
        self.role = match std::mem::replace(&mut self.role, Role::Follower) {
            Role::Leading(l) => Role::Confirming(l, Confirmation::default()),
            other => other,
        };
    }

    /// Members not yet heard from while confirming, among `peers`.
    pub(in crate::proto::node) fn unconfirmed_by<'a>(
        &self,
        peers: impl Iterator<Item = &'a Member>,
    ) -> Vec<SocketAddr> {
        match &self.role {
            Role::Confirming(_, c) => peers
                .filter(|m| !c.heard.contains(&m.id))
                .map(|m| m.addr)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// While confirming: `member` answered under our leadership. Once `majority` members
    /// (this node included) have, leading resumes; returns what waited meanwhile.
    pub(in crate::proto::node) fn confirmed_by(
        &mut self,
        member: Option<NodeId>,
        majority: usize,
    ) -> Option<Waited> {
        let Role::Confirming(_, c) = &mut self.role else {
            return None;
        };
        if let Some(m) = member {
            c.heard.insert(m);
        }
        if c.heard.len() + 1 < majority {
            return None;
        }
        let Role::Confirming(l, c) = std::mem::replace(&mut self.role, Role::Follower) else {
            return None;
        };
        self.role = Role::Leading(l);
        Some(c.held_submits)
    }

    /// How many submissions and store requests wait for recovery or confirmation to end.
    pub(in crate::proto::node) fn held(&self) -> usize {
        match &self.role {
            Role::Recovering(rec) => rec.held_submits.len() + rec.held_stores.len(),
            Role::Confirming(_, c) => c.held_submits.len(),
            _ => 0,
        }
    }

    /// During recovery, keeps a request to keep a direct message until sequencing
    /// starts; gives it back when not recovering.
    pub(in crate::proto::node) fn hold_store(
        &mut self,
        store: (SocketAddr, NodeId, u8, DirectMessage),
    ) -> Option<(SocketAddr, NodeId, u8, DirectMessage)> {
        match self.recovery_mut() {
            Some(rec) => {
                rec.held_stores.push(store);
                None
            }
            None => Some(store),
        }
    }

    /// During recovery, keeps a join (up to `cap` of them) until sequencing starts;
    /// gives it back when not recovering.
    pub(in crate::proto::node) fn hold_join(
        &mut self,
        n: Newcomer,
        cap: usize,
    ) -> Option<Newcomer> {
        match self.recovery_mut() {
            Some(rec) => {
                if rec.held_joins.len() < cap {
                    rec.held_joins.push(n);
                }
                None
            }
            None => Some(n),
        }
    }

    /// During recovery, counts one message of an answer (a room message numbered `seq`,
    /// or a kept one: 0) from `member`, sent as `id`; whether recovering.
    pub(in crate::proto::node) fn count_answer(
        &mut self,
        member: NodeId,
        id: MsgId,
        seq: Seq,
    ) -> bool {
        match self.recovery_mut() {
            Some(rec) => {
                let new = rec
                    .arrived
                    .entry(member)
                    .or_default()
                    .insert(id, seq)
                    .is_none();
                if let Some(Answer::Sent {
                    first,
                    end,
                    missing,
                    ..
                }) = rec.answers.get_mut(&member)
                    && new
                    && (*first..*end).contains(&id)
                {
                    *missing = missing.saturating_sub(1);
                }
                true
            }
            None => false,
        }
    }

    /// During a take-over, the term of a proposal `member` sent with its answer is noted
    /// (see `Node::proven_changes`).
    pub(in crate::proto::node) fn note_answered_copy(&mut self, member: NodeId, e: &ChatEntry) {
        if e.term == COMMITTED_TERM {
            return;
        }
        if let Some(rec) = self.recovery_mut() {
            let copies = rec.answered_copies.entry(e.seq).or_default();
            copies.insert(member, e.term);
        }
    }

    /// The copy held at `seq`, if of `term`, is a vote: taken as a proposal from
    /// `proposer`, the leader of `term` (and acked), or proposed by this node as that
    /// leader.
    pub(in crate::proto::node) fn note_vote(&mut self, seq: Seq, term: u64, proposer: NodeId) {
        // Votes for numbers shown are of no use any more (one at a time: a split would
        // move every vote in flight on each proposal).
        let next = self.holdback.next();
        while self.voted.first_key_value().is_some_and(|(s, _)| *s < next) {
            self.voted.pop_first();
        }
        if term != COMMITTED_TERM && self.holdback.get(seq).is_some_and(|e| e.term == term) {
            self.voted.insert(seq, term);
            self.proposers.insert(term, proposer);
            while self.proposers.len() > PROPOSER_TERMS {
                self.proposers.pop_first();
            }
        }
    }

    /// Forgets who led the terms of this node's votes (tests: what answers prove alone).
    #[cfg(test)]
    pub(in crate::proto::node) fn forget_proposers(&mut self) {
        self.proposers.clear();
    }

    /// The leader whose proposals of `term` this node took as votes, or proposed itself
    /// (see [`Room::note_vote`]).
    pub(in crate::proto::node) fn proposer_of(&self, term: u64) -> Option<NodeId> {
        self.proposers.get(&term).copied()
    }

    /// This node's votes among its held copies from `from` on (see [`Room::note_vote`]).
    pub(in crate::proto::node) fn votes_from(&self, from: Seq) -> BTreeMap<Seq, u64> {
        self.voted
            .range(from..)
            .filter(|(seq, term)| self.holdback.get(**seq).is_some_and(|e| e.term == **term))
            .map(|(seq, term)| (*seq, *term))
            .collect()
    }

    /// The runs of `entries` (an answer to a new leader, in number order) this node
    /// holds as votes, at most [`MAX_VOTED_RUNS`] (the rest are left out: the new leader
    /// then counts fewer votes, never more).
    pub(in crate::proto::node) fn votes_among(&self, entries: &[ChatEntry]) -> Vec<VotedRun> {
        let mut runs: Vec<VotedRun> = Vec::new();
        for e in entries {
            if e.term == COMMITTED_TERM || self.voted.get(&e.seq) != Some(&e.term) {
                continue;
            }
            if let Some(r) = runs.last_mut()
                && r.term == e.term
                && r.last.next() == e.seq
            {
                r.last = e.seq;
            } else if runs.len() == MAX_VOTED_RUNS {
                break;
            } else {
                runs.push(VotedRun {
                    first: e.seq,
                    last: e.seq,
                    term: e.term,
                });
            }
        }
        runs
    }

    /// Stops sequencing and recovering. What it proposed and did not commit stays held
    /// (a later leader may gather it); own messages are still in the outbox, and are
    /// resubmitted to the new leader.
    pub(in crate::proto::node) fn step_down(&mut self) {
        self.role = Role::Follower;
    }

    /// Stops sequencing to leave; what it proposed may still commit until it goes.
    pub(in crate::proto::node) fn retire(&mut self) {
        self.role = match std::mem::replace(&mut self.role, Role::Follower) {
            Role::Leading(l) | Role::Confirming(l, _) | Role::Retiring(l) => Role::Retiring(l),
            Role::Follower | Role::Recovering(_) => Role::Follower,
        };
    }

    /// Whether any copy past the delivery point is held (proposed, not known committed).
    pub(in crate::proto::node) fn holds_copies(&self) -> bool {
        let next = self.holdback.next();
        self.holdback.held_from(next).next().is_some()
    }

    /// Whether every copy held past the delivery point is of `term`.
    pub(in crate::proto::node) fn held_copies_all_of(&self, term: u64) -> bool {
        let next = self.holdback.next();
        self.holdback.held_from(next).all(|e| e.term == term)
    }

    /// Starts sequencing in `term` from the next undelivered number (a new room, or one
    /// carried on alone holding nothing, or only its own first proposals of the room's
    /// first term, which are dropped: any other copy held may be a committed entry, and
    /// goes through a take-over instead).
    pub(in crate::proto::node) fn lead(&mut self, term: u64) {
        let next = self.holdback.next();
        self.holdback = HoldBackQueue::new(next);
        let sequencer = Sequencer::resume(next, &self.history);
        self.role = Role::Leading(Leadership::new(term, sequencer));
        self.led_term = Some(term);
        self.note_commit(term, Seq(next.0.saturating_sub(1)));
    }
}
