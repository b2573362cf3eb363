//! A node's part in sequencing the room, and the state of each part: leading (and
//! confirming, or retiring), or gathering what the survivors hold as a new leader.

use super::*;

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
    /// Proposals a member never acked within the retries (cut off, paused): sent again
    /// on the next heartbeat tick while they are uncommitted.
    pub(super) lost: BTreeMap<NodeId, BTreeSet<Seq>>,
    /// Users that asked to be taken out of the configuration before they go.
    pub(super) leaving: BTreeSet<String>,
    /// Since when the oldest uncommitted proposal has waited (reset when one commits).
    pub(super) stuck_since: Option<Instant>,
    /// Whether a change of the configuration waits to hear that a majority of the
    /// configuration after it hears this leader (tried again on acks and heartbeats).
    pub(super) change_waits: bool,
}

impl Leadership {
    pub(super) fn new(term: u64, sequencer: Sequencer) -> Self {
        Leadership {
            term,
            sequencer,
            acks: BTreeMap::new(),
            told: BTreeMap::new(),
            telling: BTreeSet::new(),
            lost: BTreeMap::new(),
            leaving: BTreeSet::new(),
            stuck_since: None,
            change_waits: false,
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
    /// Room messages each member said it sent us, and how many arrived.
    pub(super) expected: BTreeMap<NodeId, u32>,
    pub(super) received: BTreeMap<NodeId, u32>,
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
