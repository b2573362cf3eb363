//! The room: the log of room messages (the hold-back queue, the history), the outbox of
//! own messages until they commit, gap repair, and this node's role in sequencing.
//!
//! A room message is shown only once it is committed: held by a majority of the room.
//! The leader counts the members' acks of each number it proposed in its term, and tells
//! them how far the log is committed; a member shows an entry it took from the leader of
//! term `t` once that leader says `t` committed it, or an entry it took from another
//! member's shown history (committed already). Nothing shown is ever taken back.
//!
//! Owns the sequence: what was delivered, what is held, who sequences. Never decides
//! membership or leadership (the ring does and tells it), never touches direct messages.

use super::*;

mod answers;
mod catchup;
mod config;
mod deliver;
mod links;
mod own_runs;
mod pace;
mod proof;
mod proven_answers;
mod recovery;
mod relay;
mod role;
mod sequence;
mod serve;
mod submit;
mod sync_answer;
mod takeover;
mod vouch;

use crate::proto::chat::VOUCHED_ORIGINS;
use crate::proto::seal::RunKey;
use crate::wire::PublicKey;
#[cfg(test)]
pub(super) use catchup::{CATCH_UP_WINDOW, FETCH_CHUNK};
use config::fill_changes_leaving_no_voter;
pub(super) use proof::RUN_MAX;
use proof::to_run_end;
pub(super) use proof::{Binding, Staged};
pub(super) use relay::MAX_VOTERS;
#[cfg(test)]
pub(super) use relay::{RELAY_DEGREE, tree_children};
use role::{Answer, Leadership, Recovery, Role};

/// How many members asked before the current one a catch-up still takes answers from.
pub(super) const FETCHES_REMEMBERED: usize = 2;

/// What a reliable message of the room was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RoomToken {
    /// An own room message submitted to the leader (resubmitted by the resubmit timer).
    Submit,

    /// A sequenced message sent to fill a gap or bring a member up to date.
    Sequenced,
    /// The leader of `term` proposed entry `seq`: its ack counts towards committing it.
    Proposed {
        /// The leader's term.
        term: u64,
        /// The entry's number.
        seq: Seq,
    },
    /// The leader of `term` sent a member a committed copy of entry `seq`, which it owed
    /// (see `Leadership::owed`): its ack settles that; given up, the member fetches it.
    Copied {
        /// The leader's term.
        term: u64,
        /// The entry's number.
        seq: Seq,
    },
    /// The leader of `term` told a member the log is committed up to `upto`.
    Commit {
        /// The leader's term.
        term: u64,
        /// The commit point told.
        upto: Seq,
    },
}

/// The term of a held entry known to be committed already (taken from a member's shown
/// history): shown in its turn whatever the commit point, and never replaced.
pub(super) const COMMITTED_TERM: u64 = u64::MAX;

/// Recovery timeouts, or election timeouts of a leader without a majority, after which
/// a new election round (a higher term) starts: two candidates of one term, each followed
/// by part of the room, would otherwise wait for each other for ever.
const REELECT_AFTER: u32 = 3;

/// Submissions and requests to keep direct messages a leader holds while it recovers or
/// waits for a majority's confirmation, at most; past it they are dropped (and counted):
/// their senders ask again.
pub(super) const MAX_HELD: usize = 4096;

/// Proposals sent at once to a member back online; it fetches the rest.
const MAX_CATCH_UP: usize = 512;

/// Submissions a leader holds, at most, while the room waits for a member whose flow
/// window is full (see `sequence.rs`); past it they are dropped (counted), and their
/// origins submit them again.
const MAX_PACED: usize = 4096;

/// How many numbers a leader may have proposed and not yet committed; submissions past
/// it wait for their origin's next resubmission.
const MAX_UNCOMMITTED: u64 = (MAX_HOLDBACK - MAX_HELD_PER_ORIGIN - 64) as u64;

/// The room part's state.
pub(super) struct Room {
    role: Role,
    /// The last term in which this node sequenced (took over, or led a room from its
    /// start): it gives way to no other leader of that term (see
    /// `Node::yields_term_to`).
    led_term: Option<u64>,
    /// While one ack's messages are settled: whether to move the commit point after.
    acks_in_hand: Option<bool>,
    holdback: HoldBackQueue,
    /// The numbers whose held copy this node holds as a vote, with that copy's term:
    /// taken as a proposal from the leader of its term (and acked), or proposed itself.
    /// A copy merged from answers in a take-over is no vote. Not on disk: after a restart
    /// nothing held counts as a vote (see `Node::proven_changes`).
    voted: BTreeMap<Seq, u64>,
    /// The leader whose proposals of each term this node took as votes (or this node, of
    /// a term it led), for the last `PROPOSER_TERMS` such terms: one leader sequences
    /// in a term, and it held every copy of that term it proposed and counted itself
    /// towards committing it, so a take-over counts it a holder of the copies of that
    /// term it keeps (see `Node::proven_changes`).
    proposers: BTreeMap<u64, NodeId>,
    history: History,
    outbox: Outbox,
    /// The highest sequence number heard of as delivered or committed (from neighbours'
    /// heartbeats, commit notices and committed copies).
    known_high: Seq,
    /// See [`Node::first_seq`].
    first_seq: Seq,
    /// Gap repairs asked so far (alternates between the leader and other members).
    fetch_attempts: u64,
    /// The next number to show when the last gap repair was asked for.
    fetch_mark: Seq,
    /// What members asked for numbers not known committed said each holds (see
    /// [`Room::corroborates`]): by number, who said so and the message (origin and its
    /// number there).
    unvouched: BTreeMap<Seq, Vec<vouch::Word>>,
    /// The last number a welcome said was committed (what it called pending comes after).
    welcome_committed: Seq,
    /// Room messages below this number are shown as history.
    history_until: Seq,
    /// Room messages below this number are taken in without being shown: a newcomer
    /// holds the log from the first number that may still wait for a majority, which may
    /// lie before the last `join_history` messages it is shown.
    shown_from: Seq,
    /// The commit point as the leader of `commit_term` last said it.
    commit: Seq,
    /// The term whose leader said `commit`: entries taken from it are shown up to there.
    commit_term: u64,
    /// The leader whose notice said `commit` (it showed everything up to there), if it
    /// was another node's.
    committer: Option<NodeId>,
    /// The highest term whose leader's sync request this node answered: its answer may
    /// count towards that leader's take-over.
    synced_term: Option<u64>,
    /// The voting configuration: the users whose copies count towards a majority.
    voters: BTreeSet<String>,
    /// The last configuration entry applied to `voters` (an earlier one is not applied
    /// again: the configuration came with a welcome or from disk as of this entry).
    voters_at: Seq,
    /// Whether this node (leading or taking over) told the user the room waits for a
    /// majority, and has not yet told it goes on.
    waiting: bool,
    /// The first number the leader still keeps, after it said the ones before are gone:
    /// the skip waits for that entry itself (see `catchup.rs`).
    skip_to: Option<Seq>,
    /// Room messages known to be their origin's (see `proto::seal`).
    vouched: Vouched,
    /// The leader's intake: submissions waiting for the message that closes their run.
    intake: Pending<Submit>,
    /// Sequenced messages waiting for the message that closes their run, not yet acked.
    staged: Pending<Staged>,
    /// Messages of survivors' answers to this node's take-over, waiting for their proof
    /// (see `proven_answers.rs`).
    answered: Pending<Staged>,
    /// Answered copies of a message `answered` holds from the same sender at another
    /// number, with their sender: taken once it is proven (see `proven_answers.rs`).
    answered_twins: Vec<(NodeId, ChatEntry)>,
    /// Copies an answer sent from before this node's delivery point, unsealed, to close
    /// a run whose first message it answered, that nothing vouched for yet: each is
    /// vouched for once the message after it in its origin's chain is (see
    /// `Node::vouch_sealed_before`). Cleared with each take-over; at most `CLOSING_MAX`.
    closing: Vec<ChatEntry>,
    /// Whether answered copies were vouched for since the staged ones were last looked
    /// at (see `Node::take_answers_proven_elsewhere`).
    answers_vouched: bool,
    /// Of the answered copies just proven, how many are still to be held (the take-over
    /// waits for them: see `proven_answers.rs`).
    answers_in_hand: usize,
    /// This node's chain value after its latest own room message.
    chain_head: ChainLink,
    /// Own room messages typed since the outputs were last drained: sealed as one run and
    /// sent when they are (see [`Node::flush_own`]).
    unsealed: Vec<OriginSeq>,
    /// An own run handed to the leader without its seal yet (see [`Node::flush_own`]).
    open_run: Option<OpenRun>,
    /// When own room messages were last typed (taken in at a drain).
    last_typed: Option<Instant>,
    /// When a refused message was last logged.
    forged_logged: Option<Instant>,
    /// Origins' identities made ready for checking seals, by key (at most
    /// [`VOUCHED_ORIGINS`]; forgotten all at once past that).
    run_keys: BTreeMap<PublicKey, RunKey>,
    /// Whom a catch-up under way asks for what is missing (see `catchup.rs`).
    fetch_from: Option<SocketAddr>,
    /// The [`FETCHES_REMEMBERED`] members asked before it, latest first, each with the
    /// highest number it was asked for: their answers may still be on their way over a
    /// slow path (a fetch is asked of the next member every 600 ms, a round trip to a
    /// far member takes up to a second), and are taken as the current one's is.
    fetch_before: VecDeque<(SocketAddr, Seq)>,
    /// The highest number asked for in the catch-up under way.
    fetch_upto: Seq,
    /// The next number to show when the catch-up last made progress.
    fetch_seen: Seq,
    /// A configuration entry or filler was refused from a member while the leader was
    /// offline here: what we lack is asked of the leader once it is back.
    awaits_leader: bool,
    /// The members asked, since the leader last said it keeps nothing older than what we
    /// lack, whether they do (see [`Node::on_forgotten`]).
    asked_past_leader: Vec<SocketAddr>,
    /// Reads of the database for fetches, waiting for the driver.
    reads: VecDeque<crate::proto::disk::ReadRange>,
    /// The relay tree last worked out (see `relay.rs`).
    layout: std::sync::Mutex<relay::Layout>,
}

/// An own run whose first message went to the leader ahead of its seal (see
/// [`Node::flush_own`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct OpenRun {
    /// Its first message, sent without the seal.
    opener: OriginSeq,
    /// When it was sent: the run is closed at most
    /// [`HOLD_LIMIT`](crate::proto::batch::HOLD_LIMIT) later.
    since: Instant,
}

/// Submissions that waited for a leader to be confirmed.
pub(super) type Waited = Vec<(NodeId, Submit)>;

impl Room {
    /// An empty room log, following nobody.
    pub(super) fn new(cfg: &NodeConfig) -> Self {
        Room {
            role: Role::Follower,
            led_term: None,
            acks_in_hand: None,
            holdback: HoldBackQueue::new(Seq(1)),
            history: History::new(cfg.history_limit),
            outbox: Outbox::default(),
            known_high: Seq(0),
            voted: BTreeMap::new(),
            proposers: BTreeMap::new(),
            first_seq: Seq(1),
            fetch_attempts: 0,
            fetch_mark: Seq(0),
            unvouched: BTreeMap::new(),
            welcome_committed: Seq(0),
            history_until: Seq(0),
            shown_from: Seq(0),
            commit: Seq(0),
            commit_term: 0,
            committer: None,
            synced_term: None,
            voters: BTreeSet::new(),
            voters_at: Seq(0),
            waiting: false,
            skip_to: None,
            vouched: Vouched::default(),
            intake: Pending::default(),
            staged: Pending::default(),
            answered: Pending::default(),
            answered_twins: Vec::new(),
            closing: Vec::new(),
            answers_vouched: false,
            answers_in_hand: 0,
            chain_head: [0; 32],
            unsealed: Vec::new(),
            open_run: None,
            last_typed: None,
            forged_logged: None,
            run_keys: BTreeMap::new(),
            fetch_from: None,
            fetch_before: VecDeque::new(),
            fetch_upto: Seq(0),
            fetch_seen: Seq(0),
            awaits_leader: false,
            asked_past_leader: Vec::new(),
            reads: VecDeque::new(),
            layout: Default::default(),
        }
    }

    /// Starts this node's own chain of room messages (its first link names its id).
    pub(super) fn start_chain(&mut self, me: NodeId) {
        self.chain_head = crate::proto::seal::chain_start(me);
    }

    /// The delivered room messages kept in memory.
    pub(super) fn history(&self) -> &History {
        &self.history
    }

    /// See [`Node::first_seq`].
    pub(super) fn first_seq(&self) -> Seq {
        self.first_seq
    }

    /// The next sequence number to deliver.
    pub(super) fn next(&self) -> Seq {
        self.holdback.next()
    }

    /// Own room messages not yet seen committed.
    pub(super) fn unconfirmed(&self) -> usize {
        self.outbox.len()
    }

    /// Whether every own room message is committed.
    pub(super) fn outbox_empty(&self) -> bool {
        self.outbox.is_empty()
    }

    /// The texts of own room messages not yet seen committed.
    pub(super) fn unconfirmed_texts(&self) -> Vec<String> {
        self.outbox
            .unconfirmed()
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    /// Whether this node sequences room messages.
    pub(super) fn is_sequencing(&self) -> bool {
        matches!(self.role, Role::Leading(_))
    }

    /// Whether this node gave anything to a leader of term `term` or later, or took
    /// anything from one: an answer to its sync request (which its take-over may count),
    /// an entry proposed in it (held), or a commit notice of it.
    pub(super) fn took_part_in_term(&self, term: u64) -> bool {
        let told = self.commit_term > term || (self.commit_term == term && self.commit > Seq(0));
        let synced = self.synced_term.is_some_and(|t| t >= term);
        told || synced || self.holdback.holds_term(term)
    }

    /// This node answers the sync request of the leader of `term`.
    pub(super) fn note_synced(&mut self, term: u64) {
        self.synced_term = self.synced_term.max(Some(term));
    }

    /// Whether this node sequenced in term `term`.
    pub(super) fn led_in(&self, term: u64) -> bool {
        self.led_term == Some(term)
    }

    /// Whether this node is a new leader still gathering the survivors' messages.
    pub(super) fn is_recovering(&self) -> bool {
        matches!(self.role, Role::Recovering(_))
    }

    /// The entry held (proposed, not yet delivered) at `seq`, if any.
    #[cfg(test)]
    pub(super) fn held_at(&self, seq: Seq) -> Option<&ChatEntry> {
        self.holdback.held_from(seq).find(|e| e.seq == seq)
    }

    /// The next sequence number this node would give or expect.
    pub(super) fn next_seq(&self) -> Seq {
        match &self.role {
            Role::Leading(l) | Role::Confirming(l, _) => l.sequencer.next_seq(),
            _ => self.holdback.next(),
        }
    }

    /// The oldest room message kept in memory, or `default`.
    pub(super) fn oldest_or(&self, default: Seq) -> Seq {
        self.history.iter().next().map_or(default, |e| e.seq)
    }

    /// A restarted node's log as saved: `history` in the order shown, going on at `next`.
    /// After a restart into a room with another numbering, the log on disk holds both
    /// numberings; only the current one (the run of rising numbers at its end) goes back
    /// into memory, at most `limit` messages. The rest stays on disk for `history`.
    /// Also holds `held` again: copies acked but not known committed, which a majority
    /// that acked them may need.
    pub(super) fn restore(
        &mut self,
        history: Vec<ChatEntry>,
        held: Vec<ChatEntry>,
        next: Seq,
        limit: usize,
    ) {
        let mut run = history.len();
        while run > 1 && history[run - 2].seq < history[run - 1].seq {
            run -= 1;
        }
        let start = run
            .saturating_sub(1)
            .max(history.len().saturating_sub(limit));
        // A message kept by a version that did not keep its origin's proof stays on disk
        // for `history`, but is never passed on: nobody could prove it.
        // What lies from `next` on is not this log (below): not even recorded as shown.
        for e in history
            .into_iter()
            .skip(start)
            .filter(|e| e.seq < next)
            .filter(|e| e.is_filler() || e.proof.link.is_some())
        {
            self.history.push(e);
        }
        // A welcome into another numbering before anything was delivered in it leaves
        // `next` below the last entry on disk: what lies from there on is not this log.
        self.history.forget_from(next);
        self.holdback = HoldBackQueue::new(next);
        for e in held {
            self.holdback.offer(e);
        }
        self.history_until = next;
        self.first_seq = self.history.iter().next().map_or(next, |e| e.seq);
    }

    /// The last `count` room messages (fillers left out) whose text or sender contains
    /// `search` (ASCII case ignored), oldest first.
    pub(super) fn search(&self, count: usize, search: Option<String>) -> Vec<ChatEntry> {
        let wanted = search.map(|s| s.to_ascii_lowercase());
        let matches = |e: &ChatEntry| {
            wanted.as_ref().is_none_or(|w| {
                e.text.to_ascii_lowercase().contains(w) || e.name.to_ascii_lowercase().contains(w)
            })
        };
        let mut last: Vec<ChatEntry> = self
            .history
            .iter()
            .rev()
            .filter(|e| !e.is_filler() && matches(e))
            .take(count)
            .cloned()
            .collect();
        last.reverse();
        last
    }

    /// Heard from a neighbour that the room has delivered up to `high`; whether that is
    /// news beyond what we have.
    pub(super) fn heard_high(&mut self, high: Seq) -> bool {
        if high > self.known_high {
            self.known_high = high;
            return high >= self.holdback.next();
        }
        false
    }

    /// The recovery under way, if this node is recovering.
    fn recovery_mut(&mut self) -> Option<&mut Recovery> {
        match &mut self.role {
            Role::Recovering(rec) => Some(rec),
            _ => None,
        }
    }

    /// The sequencer, if this node sequences.
    fn sequencer_mut(&mut self) -> Option<&mut Sequencer> {
        match &mut self.role {
            Role::Leading(l) => Some(&mut l.sequencer),
            _ => None,
        }
    }

    /// The leadership, sequencing or not (confirming, retiring), if this node leads.
    fn leadership(&self) -> Option<&Leadership> {
        match &self.role {
            Role::Leading(l) | Role::Confirming(l, _) | Role::Retiring(l) => Some(l),
            _ => None,
        }
    }

    /// The leadership, sequencing or not (confirming, retiring), if this node leads.
    fn leadership_mut(&mut self) -> Option<&mut Leadership> {
        match &mut self.role {
            Role::Leading(l) | Role::Confirming(l, _) | Role::Retiring(l) => Some(l),
            _ => None,
        }
    }

    /// Whether `e` may be shown now: known committed, or taken from the leader whose
    /// commit point covers it.
    fn committed(&self, e: &ChatEntry) -> bool {
        e.term == COMMITTED_TERM || (e.term == self.commit_term && e.seq <= self.commit)
    }

    /// The next entry, if it is here and committed.
    fn pop_committed(&mut self) -> Option<ChatEntry> {
        let (term, upto) = (self.commit_term, self.commit);
        self.holdback
            .pop_if(|e| e.term == COMMITTED_TERM || (e.term == term && e.seq <= upto))
    }

    /// The leader of `term` says the log is committed up to `upto`.
    /// Whether the commit point moved.
    pub(super) fn note_commit(&mut self, term: u64, upto: Seq) -> bool {
        let before = (self.commit_term, self.commit);
        if term > self.commit_term {
            self.commit_term = term;
            self.commit = upto;
        } else if term == self.commit_term {
            self.commit = self.commit.max(upto);
        }
        let moved = (self.commit_term, self.commit) != before;
        if moved {
            // Moved by this node's own word (it leads), unless `note_commit_of` names
            // the leader next.
            self.committer = None;
        }
        moved
    }

    /// Member `id` left the room (or was cut out): the leader forgets what it told it and
    /// what it owes it; should it come back, it is told and sent everything again.
    /// A user that asked to leave and is gone now is added again when it comes back.
    pub(super) fn forget_member(&mut self, id: NodeId, name: &str) {
        self.staged.forget_sender(id);
        self.answered.forget_sender(id);
        self.answered_twins.retain(|(sender, _)| *sender != id);
        self.intake.forget_sender(id);
        if let Some(l) = self.leadership_mut() {
            l.told.remove(&id);
            l.telling.remove(&id);
            l.lost.remove(&id);
            l.owed.remove(&id);
            l.leaving.remove(name);
        }
    }

    /// User `name` was let in again: a request to leave it sent before is over.
    pub(super) fn back_from_leaving(&mut self, name: &str) {
        if let Some(l) = self.leadership_mut() {
            l.leaving.remove(name);
        }
    }

    /// Another leader leads from now on: what a newcomer was spared (proposals that
    /// waited for a majority when it was welcomed) may be numbered anew, with messages
    /// written since, so from here on everything is shown.
    pub(super) fn leader_changed(&mut self) {
        self.shown_from = Seq(0);
    }

    /// Whether the room waits for a majority, as this node told the user.
    pub(super) fn is_waiting(&self) -> bool {
        self.waiting
    }

    /// Notes whether the room waits for a majority; whether that changed.
    pub(super) fn set_waiting(&mut self, waiting: bool) -> bool {
        std::mem::replace(&mut self.waiting, waiting) != waiting
    }

    /// The first number not known committed here: every one below was committed, by
    /// some leader's word (its commit notice), whoever holds it.
    pub(super) fn first_not_known_committed(&self) -> Seq {
        self.commit.next()
    }

    /// The leader `sender`'s notice of `term` says the log is committed up to `upto`.
    pub(super) fn note_commit_of(&mut self, sender: NodeId, term: u64, upto: Seq) {
        if self.note_commit(term, upto) {
            self.committer = Some(sender);
        }
    }

    /// The leader whose notice gave the commit point, if it was another node's.
    pub(super) fn committer(&self) -> Option<NodeId> {
        self.committer
    }

    /// The commit point and its term (for `status`).
    pub(super) fn commit_point(&self) -> (u64, Seq) {
        (self.commit_term, self.commit)
    }

    /// The leader's next number, and the oldest one member `m` has not acked.
    #[cfg(test)]
    pub(super) fn next_and_oldest_owed(&self, m: NodeId) -> Option<(Seq, Option<Seq>)> {
        let l = self.leadership()?;
        let oldest = l.owed.get(&m).and_then(|o| o.first()).copied();
        Some((l.sequencer.next_seq(), oldest))
    }

    /// Numbers proposed by this leader and not yet committed.
    pub(super) fn uncommitted(&self) -> u64 {
        match &self.role {
            Role::Leading(l) | Role::Confirming(l, _) | Role::Retiring(l) => l
                .sequencer
                .next_seq()
                .0
                .saturating_sub(self.holdback.next().0),
            _ => 0,
        }
    }
}
