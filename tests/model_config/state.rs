//! What the model's state is made of: nodes with the epoch they follow, their part in
//! sequencing and their copies of the log (configuration entries among them); the
//! messages in flight; and the history the properties read.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Node slots in the model, numbered 0 to 4 (`a`, `b`, `c`, `d`, `u`); a model uses the
/// first [`crate::spec::ConfigLog::nodes`] of them.
pub const NODES: usize = 5;
/// How the nodes are named in printed runs.
pub const NAMES: [char; NODES] = ['a', 'b', 'c', 'd', 'u'];
/// The highest log index the model holds (a model may stop lower).
pub const MAX_LOG: usize = 4;
/// The highest term the model reaches.
pub const MAX_TERM: usize = 4;
/// The term a committed copy is held in: one taken from a member's shown history
/// (`COMMITTED_TERM` in `src/proto/node/room/mod.rs`), and every shown entry.
pub const COMMITTED: u8 = u8::MAX;
/// No node (the leader followed before any election).
pub const NOBODY: u8 = u8::MAX;
/// The value of a filler. Client values are 1, 2, ...; a configuration entry is
/// [`ADD`] or [`REMOVE`] plus the user's node number.
pub const FILLER: u8 = 0;
/// A configuration entry adding node `v - ADD` to the voters.
pub const ADD: u8 = 0x10;
/// A configuration entry removing node `v - REMOVE` from the voters.
pub const REMOVE: u8 = 0x20;

/// A set of nodes, bit k for node k.
pub type Set = u8;

/// What a configuration entry changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Adds the node to the voters.
    Add(u8),
    /// Removes the node from the voters.
    Remove(u8),
}

impl Change {
    /// The change a value stands for, if it is a configuration entry.
    pub fn of(value: u8) -> Option<Change> {
        match value & 0xf0 {
            ADD => Some(Change::Add(value & 0x0f)),
            REMOVE => Some(Change::Remove(value & 0x0f)),
            _ => None,
        }
    }

    /// The entry's value.
    pub fn value(self) -> u8 {
        match self {
            Change::Add(k) => ADD | k,
            Change::Remove(k) => REMOVE | k,
        }
    }

    /// `voters` with the change applied.
    pub fn apply(self, voters: Set) -> Set {
        match self {
            Change::Add(k) => voters | 1 << k,
            Change::Remove(k) => voters & !(1 << k),
        }
    }
}

/// How many of `voters` make a majority of them.
pub fn majority(voters: Set) -> u32 {
    voters.count_ones() / 2 + 1
}

/// Whether `holders` are a majority of `voters`.
pub fn is_majority(holders: Set, voters: Set) -> bool {
    (holders & voters).count_ones() >= majority(voters)
}

/// A value as the printed runs show it: `f` a filler, `+u` an addition, `-d` a removal,
/// a number a client value.
pub struct Shown(pub u8);

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Change::of(self.0) {
            Some(Change::Add(k)) => write!(f, "+{}", NAMES[usize::from(k)]),
            Some(Change::Remove(k)) => write!(f, "-{}", NAMES[usize::from(k)]),
            None if self.0 == FILLER => write!(f, "f"),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A copy of a log entry as a node holds it.
#[derive(Clone, Copy, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// The term of the leader it was taken from, [`COMMITTED`] for a committed copy (and
    /// every shown entry), 0 for no copy.
    pub term: u8,
    /// The value: [`FILLER`], a client value or a configuration entry.
    pub value: u8,
    /// For a committed copy, the term it was proposed in if that is kept (see
    /// [`crate::spec::Rules::committed_terms`]), else 0.
    pub of: u8,
    /// For a configuration entry, its parent: the index of the last configuration entry
    /// in the log of the leader that first proposed it, when it did (0 if none; kept by a
    /// take-over that proposes it again, and by a committed copy); 0 for other values.
    pub parent: u8,
}

impl Slot {
    /// No copy.
    pub const EMPTY: Slot = Slot {
        term: 0,
        value: 0,
        of: 0,
        parent: 0,
    };

    /// A copy taken from the leader of `term`, with its parent.
    pub fn new(term: u8, value: u8, parent: u8) -> Slot {
        Slot {
            term,
            value,
            of: 0,
            parent,
        }
    }

    /// The term it was proposed in, if known.
    pub fn proposed_in(self) -> Option<u8> {
        match self.term {
            0 => None,
            COMMITTED if self.of == 0 => None,
            COMMITTED => Some(self.of),
            t => Some(t),
        }
    }

    /// Whether there is a copy.
    pub fn is_some(self) -> bool {
        self.term != 0
    }

    /// The configuration change it holds, if it is a copy of one.
    pub fn change(self) -> Option<Change> {
        if self.is_some() {
            Change::of(self.value)
        } else {
            None
        }
    }
}

/// A value as the printed runs show it, with its parent if it is a configuration entry:
/// `+u^2` adds `u` after the change at #2 (`^0`: after none).
pub struct WithParent(pub u8, pub u8);

impl fmt::Debug for WithParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Change::of(self.0) {
            Some(_) => write!(f, "{:?}^{}", Shown(self.0), self.1),
            None => write!(f, "{:?}", Shown(self.0)),
        }
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = WithParent(self.value, self.parent);
        match self.term {
            0 => write!(f, "_"),
            COMMITTED if self.of == 0 => write!(f, "c:{v:?}"),
            COMMITTED => write!(f, "c{}:{v:?}", self.of),
            t => write!(f, "{t}:{v:?}"),
        }
    }
}

/// A node's copies of the log, index 1 first.
pub type Log = [Slot; MAX_LOG];

/// One configuration a node's log passes through (`LoggedConfig`, see
/// [`Node::configs_in_log`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoggedConfig {
    /// The voters.
    pub voters: Set,
    /// The term of the copy of the change that made it ([`COMMITTED`] for a committed
    /// copy); 0 for the committed configuration.
    pub term: u8,
    /// The index of the change that made it; for the committed configuration, of the
    /// last change it has shown (0 if none).
    pub index: u8,
    /// The parent of the change that made it (see [`Slot::parent`]); for the committed
    /// configuration, its `index`.
    pub parent: u8,
    /// Whether an index between it and the next change held is not held.
    pub gap_after: bool,
}

/// What a node is doing in the term it follows (forgotten by a crash).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Follows the leader of its epoch (or waits for one).
    Follower,
    /// Won its term's round and gathers the answers to its sync request.
    Candidate {
        /// Who has answered since its delivery point last moved, itself included.
        answered: Set,
        /// Per index: those of them whose answer held the very copy it keeps there (the
        /// same term, value and parent), itself included.
        holders: [Set; MAX_LOG],
    },
    /// Took over: proposes in its term and commits by majority.
    Leader {
        /// Per index: the other nodes whose acks of this term's proposal it counted.
        acks: [Set; MAX_LOG],
        /// Per index: the value proposed in this term, plus one (0: nothing proposed).
        proposed: [u8; MAX_LOG],
        /// The first index it proposed at its take-over, until that is committed
        /// (`Leadership::settles_at`); 0 once it is.
        settles_at: u8,
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
    /// Its copies: shown ones below `next` (on disk as its history, the configuration
    /// entries among them applied), held ones from `next` on (on disk, except committed
    /// ones).
    pub log: Log,
    /// The first index it has not shown (on disk, as its history).
    pub next: u8,
    /// The commit point as the leader of a term last told it: (term, last index)
    /// (forgotten by a crash).
    pub commit: (u8, u8),
    /// The indexes (bit `i - 1` for index `i`) whose copy it holds as a vote: taken as a
    /// proposal from the leader of the copy's term, or proposed itself; not a copy
    /// merged from answers (forgotten by a crash: `Room::voted` is not on disk).
    pub voted: u8,
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
        voted: 0,
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

    /// The indexes it has shown, with their values and parents.
    pub fn shown(&self) -> impl Iterator<Item = (u8, u8, u8)> + '_ {
        (1..self.next).map(|i| (i, self.at(i).value, self.at(i).parent))
    }

    /// The configuration changes it holds, shown or not, by index.
    fn changes(&self) -> impl Iterator<Item = (u8, Change)> + '_ {
        (1..=MAX_LOG as u8).filter_map(|i| self.at(i).change().map(|c| (i, c)))
    }

    /// The committed configuration (`Room::voters`): `initial` with every configuration
    /// entry it has shown applied.
    pub fn committed_voters(&self, initial: Set) -> Set {
        self.changes()
            .filter(|&(i, _)| i < self.next)
            .fold(initial, |v, (_, c)| c.apply(v))
    }

    /// The configuration its log ends with (`Room::log_voters`): the committed one with
    /// every configuration entry it holds applied too, in index order; with `gapless`,
    /// only those before the first index it holds no copy of.
    pub fn log_voters(&self, initial: Set, gapless: bool) -> Set {
        let end = if gapless {
            (self.next..=MAX_LOG as u8)
                .find(|&i| !self.at(i).is_some())
                .unwrap_or(MAX_LOG as u8 + 1)
        } else {
            MAX_LOG as u8 + 1
        };
        self.changes()
            .filter(|&(i, _)| i < end)
            .fold(initial, |v, (_, c)| c.apply(v))
    }

    /// The index of the last configuration change it holds, shown or not, below `upto`
    /// (0 if none): the parent of a change it proposes at `upto`.
    pub fn last_change_before(&self, upto: u8) -> u8 {
        self.changes()
            .map(|(i, _)| i)
            .filter(|&i| i < upto)
            .last()
            .unwrap_or(0)
    }

    /// Every configuration its log passes through (`Room::configs_in_log`): the
    /// committed one, then one for each configuration change it holds and has not shown,
    /// applied in index order (the last is [`Node::log_voters`]'s; with `gapless`, only
    /// the changes before the first index it holds no copy of), with the term, index and
    /// parent of the copy that made it and whether an index after it, before the next
    /// change held, is not held. The array's first `len` configurations, `len` returned
    /// beside it.
    pub fn configs_in_log(
        &self,
        initial: Set,
        gapless: bool,
    ) -> ([LoggedConfig; MAX_LOG + 1], usize) {
        let shown = self.last_change_before(self.next);
        let mut all = [LoggedConfig {
            voters: self.committed_voters(initial),
            term: 0,
            index: shown,
            parent: shown,
            gap_after: false,
        }; MAX_LOG + 1];
        let mut len = 1;
        let mut gap = false;
        for i in self.next..=MAX_LOG as u8 {
            let copy = self.at(i);
            if !copy.is_some() {
                if gapless {
                    break;
                }
                gap = true;
                continue;
            }
            let Some(change) = copy.change() else {
                continue;
            };
            all[len - 1].gap_after = gap;
            all[len] = LoggedConfig {
                voters: change.apply(all[len - 1].voters),
                term: copy.term,
                index: i,
                parent: copy.parent,
                gap_after: false,
            };
            len += 1;
            gap = false;
        }
        (all, len)
    }

    /// The configuration changes held, not shown (`changes_in_flight`).
    pub fn changes_in_flight(&self) -> impl Iterator<Item = Change> + '_ {
        self.changes()
            .filter(|&(i, _)| i >= self.next)
            .map(|(_, c)| c)
    }

    /// Whether a held configuration change is of an older term than a copy of a term held
    /// or shown before it (`Room::holds_overtaken_change`, which looks at held copies
    /// only; committed copies whose term is not known are passed over).
    pub fn holds_overtaken_change(&self, shown_too: bool) -> bool {
        let from = if shown_too { 1 } else { self.next };
        let mut newest = 0;
        for i in from..=MAX_LOG as u8 {
            let s = self.at(i);
            let Some(term) = s.proposed_in() else {
                continue;
            };
            if i >= self.next && s.change().is_some() && term < newest {
                return true;
            }
            newest = newest.max(term);
        }
        false
    }
}

/// A datagram in flight, sent to every other node. Each stays in the network until it
/// can change nothing any more at any node, so it may be delivered to each any number of
/// times, in any order, or never.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Msg {
    /// A candidate's sync request (an answer is delivered with it, or lost).
    Sync {
        /// The candidate.
        cand: u8,
        /// The candidate's term.
        term: u8,
    },
    /// A leader's proposal of `value` at `index` in its term (an ack is counted with its
    /// delivery, or lost).
    Propose {
        /// The leader.
        from: u8,
        /// The leader's term.
        term: u8,
        /// The index.
        index: u8,
        /// The value.
        value: u8,
        /// Its parent, if a configuration entry (see [`Slot::parent`]).
        parent: u8,
    },
    /// A leader's commit notice: its term's copies are committed up to `upto`.
    Commit {
        /// The leader.
        from: u8,
        /// The leader's term.
        term: u8,
        /// The last index committed.
        upto: u8,
    },
}

impl Msg {
    /// The node that sent it.
    pub fn from(&self) -> u8 {
        match *self {
            Msg::Sync { cand: from, .. } | Msg::Propose { from, .. } | Msg::Commit { from, .. } => {
                from
            }
        }
    }
}

/// An entry a leader has committed (see [`State::committed`]).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Committed {
    /// Its index.
    pub index: u8,
    /// Its value.
    pub value: u8,
    /// Its parent (see [`Slot::parent`]).
    pub parent: u8,
    /// The lowest term in which a leader committed it.
    pub term: u8,
}

/// The whole system, plus the history the properties need.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct State {
    /// The nodes, by number (those the model does not use stay [`Node::NEW`]).
    pub nodes: [Node; NODES],
    /// Every message sent that can still change something, sorted, each once.
    pub net: Vec<Msg>,
    /// The next client value.
    pub next_value: u8,
    /// How many configuration changes leaders have proposed (not counting a take-over's
    /// proposing one again).
    pub changes: u8,
    /// History: bit k of `elected[t]` is set once node k took over in term t.
    pub elected: [Set; MAX_TERM + 1],
    /// History: every (index, value, parent) a leader has committed, with the lowest term
    /// in which one did; sorted.
    pub committed: Vec<Committed>,
}

impl State {
    /// Puts `msg` in the network (once: a copy is the same message).
    pub fn send(&mut self, msg: Msg) {
        if let Err(at) = self.net.binary_search(&msg) {
            self.net.insert(at, msg);
        }
    }

    /// Records that the leader of `term` committed `copy` at `index`.
    pub fn note_commit(&mut self, index: u8, copy: Slot, term: u8) {
        let (value, parent) = (copy.value, copy.parent);
        match self
            .committed
            .binary_search_by_key(&(index, value, parent), |c| (c.index, c.value, c.parent))
        {
            Ok(at) => self.committed[at].term = self.committed[at].term.min(term),
            Err(at) => self.committed.insert(
                at,
                Committed {
                    index,
                    value,
                    parent,
                    term,
                },
            ),
        }
    }
}

impl Node {
    /// Its fields, in a few bytes (for hashing).
    fn bytes(&self) -> [u8; 5 + 4 * MAX_LOG + 2 * MAX_LOG + 3] {
        let mut b = [0; 5 + 4 * MAX_LOG + 2 * MAX_LOG + 3];
        b[0] = self.term;
        b[1] = self.leader;
        b[2] = self.next;
        b[3] = self.commit.0;
        b[4] = self.commit.1;
        for (i, s) in self.log.iter().enumerate() {
            b[5 + 4 * i] = s.term;
            b[6 + 4 * i] = s.value;
            b[7 + 4 * i] = s.of;
            b[8 + 4 * i] = s.parent;
        }
        let r = 5 + 4 * MAX_LOG;
        match self.role {
            Role::Follower => {}
            Role::Candidate { answered, holders } => {
                b[r] = answered;
                b[r + MAX_LOG..r + 2 * MAX_LOG].copy_from_slice(&holders);
                b[r + 2 * MAX_LOG] = 1;
            }
            Role::Leader {
                acks,
                proposed,
                settles_at,
            } => {
                b[r..r + MAX_LOG].copy_from_slice(&acks);
                b[r + MAX_LOG..r + 2 * MAX_LOG].copy_from_slice(&proposed);
                b[r + 2 * MAX_LOG] = 2;
                b[r + 2 * MAX_LOG + 1] = settles_at;
            }
        }
        b[r + 2 * MAX_LOG + 2] = self.voted;
        b
    }
}

impl Hash for State {
    /// Hashes the bytes of the state in a few writes: the checker hashes every state it
    /// generates, and field by field that was a sixth of its time.
    fn hash<H: Hasher>(&self, h: &mut H) {
        for n in &self.nodes {
            h.write(&n.bytes());
        }
        let mut rest = Vec::with_capacity(8 + 6 * self.net.len() + 4 * self.committed.len());
        rest.push(self.next_value);
        rest.push(self.changes);
        rest.extend_from_slice(&self.elected);
        for m in &self.net {
            rest.extend_from_slice(&match *m {
                Msg::Sync { cand, term } => [0, cand, term, 0, 0, 0],
                Msg::Propose {
                    from,
                    term,
                    index,
                    value,
                    parent,
                } => [1, from, term, index, value, parent],
                Msg::Commit { from, term, upto } => [2, from, term, upto, 0, 0],
            });
        }
        for c in &self.committed {
            rest.extend_from_slice(&[c.index, c.value, c.parent, c.term]);
        }
        h.write(&rest);
    }
}
