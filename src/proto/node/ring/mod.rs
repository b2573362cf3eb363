//! The ring: the member table, failure detection of the ring predecessor, heartbeats to
//! the successor, refuting false reports, and the Chang-Roberts election of a leader
//! (`election.rs`), started on a node's own judgement only once a majority of the
//! voters agrees (`prevote.rs`).
//!
//! Owns who is in the room, who leads it (the [`Epoch`]) and what the election and the
//! detector know. Never sequences or shows a room message: when leadership changes it
//! tells the room part (`Room::step_down`, `Node::start_recovery`).

use super::*;

mod away;
mod departed;
mod election;
mod heartbeat;
mod members;
mod pace;
mod prevote;
mod probe;
mod tables;
mod terms;

#[cfg(test)]
pub(super) use departed::FORGET_PER_MESSAGE;
use pace::SlowestPath;
pub(super) use terms::MAX_TERM;
use terms::TermBound;

/// What a reliable message of the ring was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RingToken {
    /// An election token or announcement for the ring successor; rerouted if it dies.
    Pass(Message),
    /// A pre-vote request or answer (see `prevote.rs`): its fate changes nothing.
    PreVote,
    /// A ring message passed past a successor that did not take it (see `election.rs`):
    /// its fate changes nothing (the successor's own copy is rerouted if it dies).
    Beyond,
    /// A request to probe a suspected member (see `probe.rs`): once acked, a member is
    /// probing it for us, and its verdict waits for the answer.
    ProbeFor(NodeId),
}

/// The ring part's state.
pub(super) struct Ring {
    members: Membership,
    /// The leader this node follows and the round it won.
    epoch: Option<Epoch>,
    /// An epoch followed before, above [`Ring::epoch`]: an older leader let this node back
    /// in (after a restart or a partition). Until a round above it ends, no proposal of a
    /// lower term is acked, and it is what goes on disk.
    followed_before: Option<Epoch>,
    election: Election,
    detector: Detector,
    /// When the member table was last pushed to each node (anti-entropy rate limit).
    table_pushed: BTreeMap<NodeId, Instant>,
    /// When the leader last sent its table to each member back online (its own rate
    /// limit: an anti-entropy push just before must not stand in for it).
    table_pushed_back: BTreeMap<NodeId, Instant>,
    /// Members back online again within that limit, owed the leader's table.
    table_owed: BTreeSet<NodeId>,
    /// Heartbeat rounds so far.
    beats: u64,
    /// The offline member probed last.
    last_offline_probe: Option<NodeId>,
    /// Unknown senders answered with a heartbeat in the last second.
    strangers_answered: Quiet<SocketAddr>,
    /// Members told of the epoch followed here (theirs was older) in the last second
    /// (see `Node::tell_newer_epoch`).
    epoch_told: Quiet<NodeId>,
    /// Leaders asked for their table in the last second (see `Node::ask_leader_for_table`).
    table_asked: Quiet<NodeId>,
    /// The epoch our leader was heard following in its own term: it gave way to that
    /// leader (see `Node::yields_term_to`), whose welcome this node then follows.
    gave_way_to: Option<Epoch>,
    /// The highest term known and since when: how far a received term may reach.
    terms: TermBound,
    /// Whether the leader followed has shown that it leads the epoch followed.
    leader_shown: bool,
    /// When the leader followed last spoke in its term here.
    leader_spoke_at: Option<Instant>,
    /// The epoch whose leader itself spoke in its term here (a neighbour's word does not
    /// count): a word of an older term from it after that is a late copy.
    leader_spoke_in: Option<Epoch>,
    /// Checks of the leader passed without a sign from it.
    leader_checks: u8,
    /// When each member was last probed to check a claim about it, or because a
    /// neighbour named it leader (ids of the table only).
    probed: BTreeMap<NodeId, Instant>,
    /// Members another member said are offline, watched here until heard from (see
    /// `members.rs`).
    checking: BTreeSet<NodeId>,
    /// Members held offline here that another member said are online, probed to check
    /// it: since when, and the Lamport time of the claim. Still silent a death bound
    /// later, they are declared offline again (see `Node::renew_verdicts`).
    disputed: BTreeMap<NodeId, (Instant, Lamport)>,
    /// Suspected predecessors other members were asked to probe, and the members asked:
    /// only their answers count (see `probe.rs`).
    asked_about: BTreeMap<NodeId, Vec<SocketAddr>>,
    /// Members we probe for others: target, then who asked and until when.
    probing_for: BTreeMap<NodeId, Vec<(SocketAddr, Instant)>>,
    /// Answers we gave that a member we probed for answered, to give once more on the
    /// next probe tick (the first may be lost, and the asker waits only 150 ms).
    vouch_again: Vec<(SocketAddr, NodeId)>,
    /// While leading: since when each offline member has been seen offline (see
    /// `departed.rs`).
    offline_since: BTreeMap<NodeId, Instant>,
    /// The voters' answers to a round this node would start (see `prevote.rs`).
    prevote: Option<prevote::PreVote>,
    /// Rounds this node took part in that timed out since it last followed a new epoch
    /// (see `Node::on_election_timeout`).
    rounds_timed_out: u32,
    /// When this node declared each member dead, while it stays offline here (see
    /// `Node::take_back_verdict`).
    verdicts: BTreeMap<NodeId, Instant>,
    /// The ring message (election token or announcement) passed on last: passed again to
    /// the next successor if that one turns out to have gone (it may have taken it while
    /// leaving, and dropped it), and past it if it does not take it (see `election.rs`).
    last_pass: Option<election::LastPass>,
    /// The last ring message dropped because its sender, a member, was offline here:
    /// from whom, when, and what (see `Node::park_ring_message`).
    parked: Option<(NodeId, Instant, Message)>,
    /// The predecessor's last heartbeat: who, and how far it had delivered (see
    /// `Node::tell_if_stalled`).
    prev_delivered: Option<(NodeId, Seq)>,
    /// The slowest path last worked out, with the versions of the member table and of
    /// the measured paths it was worked out from (see `pace.rs`).
    slowest: Option<SlowestPath>,
}

impl Ring {
    /// A ring holding only `me`, following no leader.
    pub(super) fn new(me: Member, cfg: &NodeConfig, now: Instant) -> Self {
        Ring {
            members: Membership::new(me),
            epoch: None,
            followed_before: None,
            election: Election::default(),
            detector: Ring::fresh_detector(cfg),
            table_pushed: BTreeMap::new(),
            table_pushed_back: BTreeMap::new(),
            table_owed: BTreeSet::new(),
            beats: 0,
            last_offline_probe: None,
            strangers_answered: Quiet::new(Duration::from_secs(1), 1024),
            epoch_told: Quiet::new(Duration::from_secs(1), 1024),
            table_asked: Quiet::new(Duration::from_secs(1), 16),
            gave_way_to: None,
            terms: TermBound::new(now),
            leader_shown: false,
            slowest: None,
            leader_spoke_at: None,
            leader_spoke_in: None,
            leader_checks: 0,
            probed: BTreeMap::new(),
            checking: BTreeSet::new(),
            disputed: BTreeMap::new(),
            asked_about: BTreeMap::new(),
            probing_for: BTreeMap::new(),
            vouch_again: Vec::new(),
            offline_since: BTreeMap::new(),
            prevote: None,
            rounds_timed_out: 0,
            verdicts: BTreeMap::new(),
            last_pass: None,
            parked: None,
            prev_delivered: None,
        }
    }

    fn fresh_detector(cfg: &NodeConfig) -> Detector {
        Detector::new(cfg.suspect_after(), cfg.dead_after(), cfg.join_timeout)
    }

    /// The member table.
    pub(super) fn members(&self) -> &Membership {
        &self.members
    }

    /// The leader followed and its round, if any.
    pub(super) fn epoch(&self) -> Option<Epoch> {
        self.epoch
    }

    /// The highest epoch followed: the one followed now or one followed before it, if an
    /// older leader let this node back in. What is kept on disk.
    pub(super) fn highest_epoch(&self) -> Option<Epoch> {
        self.epoch.max(self.followed_before)
    }

    /// Whether a proposal of `term` comes from below an epoch followed before (see
    /// [`Ring::followed_before`]).
    pub(super) fn below_followed(&self, term: u64) -> bool {
        self.followed_before.is_some_and(|f| term < f.term)
    }

    /// Whether this node takes part in an election round above `term` (its leader of
    /// that term is being replaced).
    pub(super) fn electing_above(&self, term: u64) -> bool {
        self.election.is_participant() && self.election.term() > term
    }

    /// Whether this node passed `leader`'s token on in round `term`: the evidence of a
    /// real round (see `terms.rs`).
    pub(super) fn election_carried(&self, term: u64, leader: NodeId) -> bool {
        self.election.carried(term, leader)
    }

    /// Whether `id` is currently suspected by the detector.
    pub(super) fn is_suspected(&self, id: NodeId) -> bool {
        self.detector.is_suspected(id)
    }
}

impl Ring {
    /// Merges a member entry into the table; what changed.
    pub(super) fn merge(&mut self, m: Member) -> Change {
        self.members.merge(m)
    }

    /// A heartbeat from `id` came: it is alive (and a claim that it is offline, false).
    pub(super) fn heard(&mut self, id: NodeId, now: Instant) {
        self.detector.heard(id, now);
        self.asked_about.remove(&id);
        self.checking.remove(&id);
        self.disputed.remove(&id);
    }

    /// `id` sent us something within a session: it knows of us.
    pub(super) fn in_touch(&mut self, id: NodeId) {
        self.detector.in_touch(id);
    }

    /// The leader saw `id`'s welcome acked: no longer a newcomer.
    pub(super) fn welcomed(&mut self, id: NodeId, now: Instant) {
        self.detector.welcomed(id, now);
    }

    /// The leader saw `id`'s welcome acked before this node heard that `id` came online.
    pub(super) fn welcomed_early(&mut self, id: NodeId, now: Instant) {
        self.detector.welcomed_early(id, now);
    }

    /// We were welcomed just now into a room holding `id`, which may not know of us yet.
    pub(super) fn met(&mut self, id: NodeId, now: Instant) {
        self.detector.met(id, now);
    }

    /// Member `id` arrived just now (admitted or welcomed): judge it as a newcomer.
    pub(super) fn arrived(&mut self, id: NodeId, now: Instant) {
        self.detector.arrived(id, now);
    }

    /// Follows `epoch` as the outcome of a round (a welcome, a new room, a room carried on),
    /// without the announcements of [`Node::set_epoch`].
    pub(super) fn install(&mut self, epoch: Epoch) {
        self.epoch = Some(epoch);
        self.election.on_elected(epoch.term);
    }

    /// Forgets what the detector heard (the node was out of the ring).
    pub(super) fn reset_detector(&mut self, cfg: &NodeConfig) {
        self.detector = Ring::fresh_detector(cfg);
    }
}
