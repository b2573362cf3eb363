//! The lifecycle: creating or joining a room (the joiner's side, and the leader's
//! admission of newcomers), leaving, going offline and coming back (`dereg`/`reg`), and
//! restarting from what was kept on disk.
//!
//! Owns where this node is in its life ([`Phase`]) and its identity. Never sequences room
//! messages or keeps direct messages: it tells the other parts when the node is in or out.

use super::*;

mod admission;
mod join;
mod leave;
mod offline;
mod proven;
mod restart;
mod voucher;

#[cfg(test)]
pub(in crate::proto::node) use leave::MAX_LEAVE_WAITS;

/// How many times a `reg` goes round the members it knows when none answers.
const REG_ROUNDS: u8 = 3;

/// A `reg` goes round its members again, past [`REG_ROUNDS`], until this long has passed
/// since it was typed: a run of losses outlasts three quick rounds.
const REG_KEEPS_TRYING: Duration = Duration::from_secs(10);

/// A `reg` starts no new round over its members once this long has passed since it was
/// typed: with many members gone quiet, the user hears of it within a round or so.
const REG_PATIENCE: Duration = Duration::from_secs(30);

/// How often a proof under one node id from another address than any challenged is
/// checked, at most: the newcomer answers from its own, so only a forger's (a signature
/// check each) are bounded.
const PROOF_ELSEWHERE_EVERY: Duration = Duration::from_millis(250);

/// Where the node is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the welcome; holds the parts received so far.
    Joining {
        contact: SocketAddr,
        parts: BTreeMap<u16, Vec<Member>>,
    },
    /// In the room.
    Member,
    /// Leaving: waiting for own messages to commit (`notified == false`), then for the
    /// leave notices to be acked.
    Leaving { notified: bool },
    /// Deregistered: out of the ring but running, listed as offline; can `reg` again.
    Offline,
    /// Out of the room (left, or joining failed). Only acks are still handled.
    Done,
}

/// What a reliable message of the lifecycle was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum LifeToken {
    /// Our join request to the contact.
    Join,
    /// Our leave notice to a member.
    LeaveNotice,
    /// A part of a welcome we sent `newcomer` (the leader's side).
    Welcome {
        /// Who is being welcomed.
        newcomer: NodeId,
        /// Which part.
        part: u16,
    },
    /// Re-registering with a leader learned of by gossip; given up, we stop waiting.
    Resync,
    /// A newcomer's join passed on to the leader; passed on again if that fails.
    Forward {
        /// Who asks to join.
        newcomer: Newcomer,
        /// Our Lamport time when we took its join.
        taken_at: Lamport,
    },
}

/// The lifecycle part's state.
pub(super) struct Lifecycle {
    phase: Phase,
    /// This user's identity.
    identity: SigningKey,
    /// The node's own random generator, seeded from the configuration.
    rng: StdRng,
    /// Newcomers asked to prove their identity (the leader's side), by node id and the
    /// address the challenge went to: nonce, who, when.
    pending_proofs: BTreeMap<(NodeId, SocketAddr), ([u8; 16], Newcomer, Instant)>,
    /// Proofs checked from another address than a challenged one, per node id: at most
    /// one each [`PROOF_ELSEWHERE_EVERY`] (the leader's side).
    proofs_elsewhere: Quiet<NodeId>,
    /// Joins per source address and for the room, per second (the leader's side).
    join_limits: JoinLimiter,
    /// Whether the current leave ends offline (`dereg`) rather than in exit.
    going_offline: bool,
    /// A `reg` typed while still going offline (and the member it named): done once
    /// offline.
    reg_after_leave: Option<Option<SocketAddr>>,
    /// Whether this node was in the room before (a `reg` after `dereg`).
    was_member: bool,
    /// Members still to try if coming back through the current one fails (last first).
    reg_contacts: Vec<SocketAddr>,
    /// Every member the current `reg` tries (last first), when it began, and the rounds
    /// over them still allowed (see [`REG_ROUNDS`]).
    reg_round: (Vec<SocketAddr>, Option<Instant>, u8),
    /// The last "try again" refusal of the current join (reported if it never succeeds).
    join_refusal: Option<Refusal>,
    /// Set while re-registering with a leader learned of by gossip (after a partition).
    resyncing: bool,
    /// When the current re-registration began.
    resync_since: Option<Instant>,
    /// Set while a restarted node looks for its room (see `restart.rs`).
    restart: Option<restart::Restart>,
    /// The voting users named by the welcome's parts so far, and the entry they are as of.
    welcome_voters: (BTreeSet<String>, Seq),
    /// The next number of the welcome whose parts are held: with the entry of the
    /// configuration, what tells one welcome's parts from another's.
    welcome_next: Seq,
    /// Newcomers with welcome parts not yet acked, and those parts (the leader's side).
    welcoming: BTreeMap<NodeId, BTreeSet<u16>>,
    /// Newcomers welcomed by this leader that have not yet said they hold their whole
    /// welcome (`WelcomeTaken`; the leader's side), and when they were admitted.
    welcome_unconfirmed: BTreeMap<NodeId, Instant>,
    /// Members named by the welcome's parts so far as still being welcomed themselves.
    welcome_settling: BTreeSet<NodeId>,
    /// Leave deadlines passed while this node was still a voter (see `leave.rs`).
    leave_waits: u8,
    /// Whether the current join's deadline was already pushed back once, when the contact
    /// first acked or the leader challenged (acks of later resends must not push it again,
    /// or it never comes): the room heard this join.
    join_deadline_extended: bool,
    /// Our leader's voucher for us, and the limits on checking and showing vouchers.
    vouchers: voucher::Vouchers,
    /// Challenges to unknown processes at voters' addresses (see `proven.rs`).
    proving: proven::Proving,
}

impl Lifecycle {
    /// Whether this node is joining through `contact` now.
    pub(super) fn joining_through(&self, contact: SocketAddr) -> bool {
        matches!(self.phase, Phase::Joining { contact: c, .. } if c == contact)
    }

    /// A node in the room by itself, with the identity and random seed of `cfg`.
    pub(super) fn new(cfg: &NodeConfig) -> Self {
        Lifecycle {
            phase: Phase::Member,
            identity: SigningKey::from_bytes(&cfg.identity),
            rng: StdRng::seed_from_u64(cfg.rng_seed),
            pending_proofs: BTreeMap::new(),
            proofs_elsewhere: Quiet::new(PROOF_ELSEWHERE_EVERY, admission::MAX_PENDING_PROOFS),
            join_limits: JoinLimiter::default(),
            going_offline: false,
            reg_after_leave: None,
            was_member: false,
            reg_contacts: Vec::new(),
            reg_round: (Vec::new(), None, 0),
            join_refusal: None,
            resyncing: false,
            resync_since: None,
            restart: None,
            welcome_voters: (BTreeSet::new(), Seq(0)),
            welcome_next: Seq(0),
            welcoming: BTreeMap::new(),
            welcome_unconfirmed: BTreeMap::new(),
            welcome_settling: BTreeSet::new(),
            leave_waits: 0,
            join_deadline_extended: false,
            vouchers: voucher::Vouchers::default(),
            proving: proven::Proving::default(),
        }
    }

    /// Process `id` said goodbye: challenges it was sent before are answered in vain.
    pub(super) fn forget_challenges_of(&mut self, id: NodeId) {
        self.pending_proofs.retain(|(who, _), _| *who != id);
    }

    /// Process `id` was dropped from the member table: no voucher of its is taken since.
    pub(super) fn member_forgotten(&mut self, id: NodeId) {
        self.vouchers.forgot(id);
    }

    /// Where the node is in its life.
    pub(super) fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Whether the node is in the room (welcomed and not leaving).
    pub(super) fn is_member(&self) -> bool {
        self.phase == Phase::Member
    }

    /// Whether this node has left the room for good.
    pub(super) fn has_left(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether this node takes part in elections and recoveries: a member, or one leaving
    /// that has not said goodbye yet (it may still be a voter, and the room needs it to
    /// make a majority until it is taken out).
    pub(super) fn takes_part(&self) -> bool {
        matches!(
            self.phase,
            Phase::Member | Phase::Leaving { notified: false }
        )
    }

    /// This user's public key.
    pub(super) fn public_key(&self) -> crate::wire::PublicKey {
        self.identity.verifying_key().to_bytes()
    }

    #[cfg(test)]
    /// How many addresses' joins are counted, and how many newcomers owe a proof.
    pub(super) fn join_tables(&self) -> (usize, usize) {
        (self.join_limits.counted(), self.pending_proofs.len())
    }

    /// Whether this node is re-registering with a leader learned of by gossip.
    pub(super) fn is_resyncing(&self) -> bool {
        self.resyncing
    }

    /// Whether this node is part of the ring: a member, or one leaving that has not yet
    /// told the others (it still heartbeats and answers probes).
    pub(super) fn in_ring(&self) -> bool {
        matches!(
            self.phase,
            Phase::Member | Phase::Leaving { notified: false }
        )
    }
}
