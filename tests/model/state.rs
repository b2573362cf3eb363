//! What the model's state is made of: nodes with the epoch they follow, their part in
//! sequencing and their copies of the log; the messages in flight; and the history the
//! properties read.

use std::fmt;

/// Nodes in the room, numbered 0, 1, 2; every one votes.
pub const NODES: usize = 3;
/// How many voters make a majority of [`NODES`].
pub const MAJORITY: u32 = 2;
/// The highest log index the model holds. Every index held anywhere was first given to a
/// client value (fillers only fill indexes below one), so this bounds the client values.
pub const MAX_LOG: usize = 3;
/// The highest term the model reaches.
pub const MAX_TERM: usize = 5;
/// The term a committed copy is held in: one taken from a member's shown history
/// (`COMMITTED_TERM` in `src/proto/node/room/mod.rs`), and every shown entry.
pub const COMMITTED: u8 = u8::MAX;
/// No node (the leader followed before any election).
pub const NOBODY: u8 = u8::MAX;
/// The value of a filler, proposed where no answer held a copy. Client values are 1, 2, ...
pub const FILLER: u8 = 0;

/// A copy of a log entry as a node holds it.
#[derive(Clone, Copy, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// The term of the leader it was taken from, [`COMMITTED`] for a committed copy (and
    /// every shown entry), 0 for no copy.
    pub term: u8,
    /// The value: [`FILLER`] or a client value.
    pub value: u8,
}

impl Slot {
    /// No copy.
    pub const EMPTY: Slot = Slot { term: 0, value: 0 };

    /// Whether there is a copy.
    pub fn is_some(self) -> bool {
        self.term != 0
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.term {
            0 => write!(f, "-"),
            COMMITTED => write!(f, "c:{}", self.value),
            t => write!(f, "{t}:{}", self.value),
        }
    }
}

/// A node's copies of the log, index 1 first.
pub type Log = [Slot; MAX_LOG];

/// What a node is doing in the term it follows (forgotten by a crash).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Follows the leader of its epoch (or waits for one).
    Follower,
    /// Won its term's round and gathers the answers to its sync request.
    Candidate {
        /// Who has answered (bit k: node k), itself included.
        answered: u8,
    },
    /// Took over: proposes in its term and commits by majority.
    Leader {
        /// Per index: the other nodes whose acks of this term's proposal it counted.
        acks: [u8; MAX_LOG],
        /// Per index: the value proposed in this term, plus one (0: nothing proposed).
        proposed: [u8; MAX_LOG],
    },
}

/// One node's state.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    /// The term of the epoch it follows (on disk).
    pub term: u8,
    /// The leader of that epoch, or [`NOBODY`] (on disk).
    pub leader: u8,
    /// Its part in sequencing (forgotten by a crash).
    pub role: Role,
    /// Its copies: shown ones below `next` (on disk as its history), held ones from
    /// `next` on (on disk, except committed ones).
    pub log: Log,
    /// The first index it has not shown (on disk, as its history).
    pub next: u8,
    /// The commit point as the leader of a term last told it: (term, last index)
    /// (forgotten by a crash).
    pub commit: (u8, u8),
}

impl Node {
    /// A node that has seen nothing: no epoch, no copies.
    pub const NEW: Node = Node {
        term: 0,
        leader: NOBODY,
        role: Role::Follower,
        log: [Slot::EMPTY; MAX_LOG],
        next: 1,
        commit: (0, 0),
    };

    /// The copy at `index` (1-based).
    pub fn at(&self, index: u8) -> Slot {
        self.log[usize::from(index) - 1]
    }

    /// The copy at `index` (1-based), to change.
    pub fn at_mut(&mut self, index: u8) -> &mut Slot {
        &mut self.log[usize::from(index) - 1]
    }

    /// Whether it leads (took over) in its term.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// Whether it is a candidate gathering answers.
    pub fn is_candidate(&self) -> bool {
        matches!(self.role, Role::Candidate { .. })
    }

    /// The indexes it has shown, with their values.
    pub fn shown(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        (1..self.next).map(|i| (i, self.at(i).value))
    }
}

/// A datagram in flight. Each stays in the network until it can change nothing any more,
/// so it may be delivered any number of times, in any order, or never.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Msg {
    /// A candidate's sync request (its answer is delivered with it, or lost).
    Sync {
        /// The member asked.
        to: u8,
        /// The candidate.
        cand: u8,
        /// The candidate's term.
        term: u8,
    },
    /// A leader's proposal of `value` at `index` in its term (its ack is counted with its
    /// delivery, or lost).
    Propose {
        /// The member.
        to: u8,
        /// The leader.
        from: u8,
        /// The leader's term.
        term: u8,
        /// The index.
        index: u8,
        /// The value.
        value: u8,
    },
    /// A leader's commit notice: its term's copies are committed up to `upto`.
    Commit {
        /// The member.
        to: u8,
        /// The leader.
        from: u8,
        /// The leader's term.
        term: u8,
        /// The last index committed.
        upto: u8,
    },
}

impl Msg {
    /// The node it is addressed to.
    pub fn to(&self) -> u8 {
        match *self {
            Msg::Sync { to, .. } | Msg::Propose { to, .. } | Msg::Commit { to, .. } => to,
        }
    }
}

/// The whole system, plus the history the properties need.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct State {
    /// The nodes, by number.
    pub nodes: [Node; NODES],
    /// Every message sent that can still change something, sorted, each once.
    pub net: Vec<Msg>,
    /// The next client value.
    pub next_value: u8,
    /// History: bit k of `elected[t]` is set once node k took over in term t.
    pub elected: [u8; MAX_TERM + 1],
    /// History: every (index, value) a leader has committed, with the lowest term in which
    /// one did; sorted.
    pub committed: Vec<(u8, u8, u8)>,
}

impl State {
    /// Puts `msg` in the network (once: a copy is the same message).
    pub fn send(&mut self, msg: Msg) {
        if let Err(at) = self.net.binary_search(&msg) {
            self.net.insert(at, msg);
        }
    }

    /// Records that the leader of `term` committed `value` at `index`.
    pub fn note_commit(&mut self, index: u8, value: u8, term: u8) {
        match self
            .committed
            .binary_search_by_key(&(index, value), |c| (c.0, c.1))
        {
            Ok(at) => self.committed[at].2 = self.committed[at].2.min(term),
            Err(at) => self.committed.insert(at, (index, value, term)),
        }
    }
}
