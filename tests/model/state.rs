//! What the model's state is made of: nodes with their terms, votes and logs, the
//! messages in flight, and the history the properties read.

use std::fmt;

/// Nodes on the ring, numbered 0, 1, 2 in ring order.
pub const NODES: usize = 3;
/// How many nodes make a majority of [`NODES`].
pub const MAJORITY: u32 = 2;
/// The longest log the model holds: a no-op per term plus the client values.
pub const MAX_LOG: usize = 8;
/// The highest term the model reaches.
pub const MAX_TERM: usize = 7;

/// A log entry: (term, value). Value 0 is a leader's no-op; client values are 1, 2, ...
pub type Entry = (u8, u8);

/// A log: its first `len` entries are the log, index `i` (1-based) at `e[i - 1]`; the
/// rest are zero, so equal logs are equal values.
#[derive(Clone, Copy, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Log {
    /// How many entries.
    len: u8,
    /// The entries, then zeros.
    e: [Entry; MAX_LOG],
}

impl Log {
    /// The entries, index 1 first.
    pub fn entries(&self) -> &[Entry] {
        &self.e[..self.len as usize]
    }

    /// How many entries.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// The entry at `index` (1-based), if there is one.
    pub fn at(&self, index: u8) -> Option<Entry> {
        self.entries()
            .get(usize::from(index).checked_sub(1)?)
            .copied()
    }

    /// (last term, last index): how up to date the log is.
    pub fn last(&self) -> (u8, u8) {
        (self.entries().last().map_or(0, |e| e.0), self.len)
    }

    /// Appends `e`.
    pub fn push(&mut self, e: Entry) {
        self.e[self.len as usize] = e;
        self.len += 1;
    }

    /// Keeps the first `len` entries.
    pub fn truncate(&mut self, len: u8) {
        self.e[len as usize..].fill((0, 0));
        self.len = self.len.min(len);
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

/// What a node is doing in its term.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Obeys the leader of its term.
    Follower,
    /// Has sent a token for its term and waits for it to come back.
    Candidate,
    /// Won its term: appends, replicates, commits.
    Leader,
}

/// One node's state.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    /// Current term (durable).
    pub term: u8,
    /// The candidate it supported in `term` (durable when [`Rules::durable_vote`]).
    pub vote: Option<u8>,
    /// Role in `term` (forgotten by a crash).
    pub role: Role,
    /// The log (durable).
    pub log: Log,
    /// How many entries it knows are committed (forgotten by a crash).
    pub commit: u8,
    /// As leader: the longest log each node acknowledged in this term.
    pub matched: [u8; NODES],
}

impl Node {
    /// A node that has seen nothing: a follower in term 0 with an empty log.
    pub const NEW: Node = Node {
        term: 0,
        vote: None,
        role: Role::Follower,
        log: Log {
            len: 0,
            e: [(0, 0); MAX_LOG],
        },
        commit: 0,
        matched: [0; NODES],
    };
}

/// A datagram in flight.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Msg {
    /// A Chang-Roberts election token for `cand` in `term`.
    Token {
        /// The node holding it next.
        to: u8,
        /// The election's term.
        term: u8,
        /// The candidate.
        cand: u8,
        /// The candidate's (last term, last index) when it started.
        last: (u8, u8),
        /// Who supports the candidate so far: bit k for node k.
        support: u8,
    },
    /// The leader's log and commit index.
    Append {
        /// The follower.
        to: u8,
        /// The leader.
        from: u8,
        /// The leader's term.
        term: u8,
        /// The leader's log when it sent this.
        log: Log,
        /// The leader's commit index when it sent this.
        commit: u8,
    },
    /// A follower holds the leader's log up to `index`.
    Ack {
        /// The leader.
        to: u8,
        /// The follower.
        from: u8,
        /// The term of the append it answers.
        term: u8,
        /// How many of the leader's entries it holds.
        index: u8,
    },
}

impl Msg {
    /// The node it is addressed to.
    pub fn to(&self) -> u8 {
        match *self {
            Msg::Token { to, .. } | Msg::Append { to, .. } | Msg::Ack { to, .. } => to,
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
    /// History: bit k of `elected[t]` is set once node k became leader in term t.
    pub elected: [u8; MAX_TERM + 1],
    /// History: every (index, entry) any node has counted as committed, with the lowest
    /// term in which one did; sorted.
    pub committed: Vec<(u8, Entry, u8)>,
}

impl State {
    /// Puts `msg` in the network (once: a copy is the same message).
    pub fn send(&mut self, msg: Msg) {
        if let Err(at) = self.net.binary_search(&msg) {
            self.net.insert(at, msg);
        }
    }

    /// Drops the messages that can change nothing any more: those of a term lower than
    /// their addressee's (terms only grow, and a lower term is ignored); tokens and
    /// acknowledgements back at a node no longer candidate or leader in their term (it
    /// cannot become one again in that term); acknowledgements the leader already counted.
    pub fn forget_dead_messages(&mut self) {
        let nodes = self.nodes;
        self.net.retain(|m| {
            let n = &nodes[usize::from(m.to())];
            match *m {
                Msg::Token { term, cand, to, .. } if cand == to => {
                    term == n.term && n.role == Role::Candidate
                }
                Msg::Ack {
                    term, from, index, ..
                } => {
                    term == n.term && n.role == Role::Leader && n.matched[usize::from(from)] < index
                }
                Msg::Token { term, .. } | Msg::Append { term, .. } => term >= n.term,
            }
        });
    }

    /// Records in the history every entry `node` now counts as committed.
    pub fn note_commits(&mut self, node: u8) {
        let n = &self.nodes[usize::from(node)];
        for (index, &e) in (1..=n.commit).zip(n.log.entries()) {
            let key = (index, e);
            match self.committed.binary_search_by_key(&key, |c| (c.0, c.1)) {
                Ok(at) => self.committed[at].2 = self.committed[at].2.min(n.term),
                Err(at) => self.committed.insert(at, (index, e, n.term)),
            }
        }
    }
}
