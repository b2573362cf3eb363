//! The room log's rules for changing the voting configuration, as a small pure state
//! machine, as `src/proto/node/room` (`config.rs`, `recovery.rs`, `answers.rs`,
//! `sequence.rs`) implements them: epochs (term, leader) that a node follows; a
//! candidate that takes over once a majority of the configuration its log ends with
//! (the answers merged in) has answered, keeps of each index the copy of the highest
//! term, fills the rest, and proposes everything again in its term; members that hold and
//! ack only the proposals of the leader and term they follow; a leader that commits an
//! index once a majority of the configuration its log ends with holds its term's copy of
//! it and of everything before; configuration entries that add or remove one node each,
//! counted as soon as they are held and applied as committed once shown. Each rule names
//! the code it stands for.
//!
//! The election is abstracted as in `tests/model/spec.rs`: any node may win a round of
//! any term above the one it follows ([`Action::Candidate`]), a node outside the
//! configuration too (alone in its part of a partition, it wins its own round). Which
//! change a leader proposes is the environment's choice: any node may be added or removed
//! (the last voter stays), and an addition in flight may be undone at any time (the
//! code undoes it once its user is gone, which only the leader's view decides).
//!
//! Faults are what the transitions allow: the network is a set of messages, each sent to
//! every other node (in a room of at most seven members every member gets the
//! proposals); delivering one to a node does not remove it, so any message reaches any
//! node any number of times, in any order, or never. A sync answer is delivered together
//! with its request, or lost, and so is a proposal's ack (`tests/model/spec.rs` says why
//! that loses no run). A pause is a node taking no steps; a crash is
//! [`Action::Restart`], which keeps what is on disk (the epoch, the shown history and
//! with it the committed configuration, the held copies) and loses the rest.
//!
//! [`ConfigLog::enabled`] and [`ConfigLog::step`] are here; a candidate's quorum and its
//! take-over are in `spec/takeover.rs`, a leader's changes, proposals, acks and commits in
//! `spec/commit.rs`, and the delivery of a message (and which messages are dead) in
//! `spec/network.rs`.

#[path = "spec/commit.rs"]
mod commit;
#[path = "spec/network.rs"]
mod network;
#[path = "spec/takeover.rs"]
mod takeover;

use crate::state::{
    COMMITTED, Change, MAX_LOG, MAX_TERM, Msg, NODES, Node, Role, Set, Slot, State,
};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// When a leader may undo an addition in flight (propose `Remove(u)` behind `Add(u)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undo {
    /// Never: a change waits for the one before it to commit.
    Never,
    /// Like any change: once an entry of the leader's term is committed.
    Settled,
    /// At once, before an entry of its term is committed.
    Early,
}

/// How many answers a candidate needs before it takes over (`take_over_shortfall`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// A majority of the configuration its log ends with, the answers merged in.
    LogVoters,
    /// That, and a majority of its committed configuration too when its log holds a
    /// change overtaken by a later term (`Room::holds_overtaken_change`, the rule before
    /// the fix).
    CommittedIfOvertaken,
    /// A majority of both configurations, always (`take_over_shortfall` asks for the
    /// committed one whenever a change is in flight, the only time the two differ): the
    /// code's rule before it asked for branch points (`sim_chaos` seed 5063) and for the
    /// configurations before a gap (seed 18849).
    Both,
    /// A majority of every configuration of the chain its log passes through
    /// (`Node::configs_in_log`, `Room::configs_in_log`) that `take_over_shortfall` asks
    /// for: the committed one and the one its log ends with (as [`Quorum::Both`]); each
    /// branch point, a configuration made by a held proposal that a held proposal of a
    /// lower term follows (neither a committed copy); and each one followed in the chain
    /// by a change whose parent ([`crate::state::Slot::parent`]) is not the index of the
    /// change that made it (of the last change shown, for the committed one): a change
    /// the chain does not know of may come between, so the change after it may be two
    /// changes away from it. The code's rule.
    Chain,
    /// As [`Quorum::Chain`], but instead of the parent, a gap: each configuration in
    /// between after which an index is not held before the next change held (the log may
    /// go on there with a change no answer holds). The code's rule after `sim_chaos` seed
    /// 18849, before seed 16088 (a gap that holds no change, as the parent shows, made a
    /// room wait for a voter gone for good).
    ChainGaps,
    /// As [`Quorum::Chain`], but a change its answers prove committed counts as committed:
    /// held in the copy the candidate keeps, as votes ([`crate::state::Node::voted`]), by
    /// a majority of the configuration it makes, with the change before it in the chain
    /// as its parent, and every index from the candidate's delivery point to it held so
    /// too, in copies of the change's term (`sim_failover` seed 648: a committed addition
    /// no survivor was told of).
    ChainProven,
    /// As [`Quorum::ChainProven`], and the leader of the change's term counts as a holder
    /// of every index the candidate keeps in a copy of that term: it proposed that very
    /// copy, held it, and counted itself towards committing it (the model gives the
    /// candidate the leader of every term; the code knows only the one it followed
    /// before it won, which counts no more than this).
    ChainProvenByLeader,
}

/// Which rules the nodes follow. Each test names the set it checks.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// A leader proposes no configuration change until an entry of its own term is
    /// committed, and a take-over with nothing to propose again proposes a filler in its
    /// term (`Room::settled`, `finish_recovery`).
    pub own_term_first: bool,
    /// When an addition in flight may be undone (`reconcile_voters`).
    pub undo: Undo,
    /// What a take-over needs.
    pub quorum: Quorum,
    /// The configuration a log ends with counts held configuration entries only up to
    /// the first index not held (the code counts every one held, beyond a gap too).
    pub gapless_config: bool,
    /// A committed copy keeps the term it was proposed in, and
    /// [`Quorum::CommittedIfOvertaken`] compares it too, shown ones included (the code
    /// holds a committed copy in `COMMITTED_TERM` and looks at held copies only).
    pub committed_terms: bool,
}

/// A step of the system.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `node` wins a round of `term` (above the term it follows): it follows itself and
    /// asks every other node what it holds.
    Candidate {
        /// The winner.
        node: u8,
        /// The round's term.
        term: u8,
    },
    /// The candidate `node`, answered by enough voters, takes over: of each index from its
    /// shown history on, it proposes in its term the copy it kept, or a filler.
    TakeOver {
        /// The candidate.
        node: u8,
    },
    /// A client hands the leader `node` the next value, proposed at the next index.
    Write {
        /// The leader.
        node: u8,
    },
    /// The leader `node` proposes a configuration change at the next index.
    Change {
        /// The leader.
        node: u8,
        /// The change.
        change: Change,
    },
    /// The network delivers `msg` (again) to `to`. For a sync request, `answer` says
    /// whether the answer reaches the candidate; for a proposal, whether the ack reaches
    /// the leader.
    Deliver {
        /// The message; it stays in the network.
        msg: Msg,
        /// The node it reaches.
        to: u8,
        /// Whether the answer or ack it causes arrives.
        answer: bool,
    },
    /// `node` takes the next entry it has not shown from `from`'s shown history, as a
    /// committed copy (a fetch answered).
    CatchUp {
        /// The node catching up.
        node: u8,
        /// The node that showed the entry.
        from: u8,
    },
    /// `node` crashes and restarts from what is on disk.
    Restart {
        /// The node.
        node: u8,
    },
}

/// A node's name.
fn name(k: u8) -> char {
    crate::state::NAMES[usize::from(k)]
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::state::{Shown, WithParent};
        match *self {
            Action::Candidate { node, term } => write!(f, "{} wins round {term}", name(node)),
            Action::TakeOver { node } => write!(f, "{} takes over", name(node)),
            Action::Write { node } => write!(f, "{} is given a client value", name(node)),
            Action::Change { node, change } => {
                write!(f, "{} proposes {:?}", name(node), Shown(change.value()))
            }
            Action::Deliver { msg, to, answer } => {
                let back = if answer { "" } else { ", reply lost" };
                match msg {
                    Msg::Sync { cand, term } => write!(
                        f,
                        "{} answers {}'s sync request of term {term}{}",
                        name(to),
                        name(cand),
                        if answer { "" } else { " (answer lost)" }
                    ),
                    Msg::Propose {
                        from,
                        term,
                        index,
                        value,
                        parent,
                    } => write!(
                        f,
                        "{} takes {}'s proposal #{index} = {:?} of term {term}{back}",
                        name(to),
                        name(from),
                        WithParent(value, parent)
                    ),
                    Msg::Commit { from, term, upto } => write!(
                        f,
                        "{} takes {}'s commit notice of term {term} up to #{upto}",
                        name(to),
                        name(from)
                    ),
                }
            }
            Action::CatchUp { node, from } => {
                write!(
                    f,
                    "{} fetches its next entry from {}",
                    name(node),
                    name(from)
                )
            }
            Action::Restart { node } => write!(f, "{} crashes and restarts", name(node)),
        }
    }
}

/// The model: the rules under test, the room, and how far terms, values and changes go.
#[derive(Clone, Debug)]
pub struct ConfigLog {
    /// The rules the nodes follow.
    pub rules: Rules,
    /// How many nodes take part (the first ones of [`NODES`]).
    pub nodes: u8,
    /// The configuration every node starts with.
    pub initial: Set,
    /// The nodes that may win rounds (a bound, like the terms: runs in which other nodes
    /// win are left out).
    pub campaigners: Set,
    /// No round is won beyond this term.
    pub max_term: u8,
    /// How many client values are written.
    pub max_values: u8,
    /// How many configuration changes leaders propose.
    pub max_changes: u8,
    /// No entry is proposed beyond this index.
    pub max_log: u8,
    /// Whether nodes crash and restart.
    pub crashes: bool,
    /// Whether nodes fetch committed entries from each other's shown history.
    pub catch_up: bool,
    /// The renumberings of the nodes that keep `initial` and `campaigners`, if states are replaced by their
    /// least renumbering (see `symmetry`); empty otherwise.
    pub perms: Vec<[u8; NODES]>,
    /// No new state is kept after this instant, if set: the checker then drains its
    /// queue and stops, its run incomplete (`stateright`'s own timeout does not stop a
    /// checker of one thread).
    pub deadline: Option<std::time::Instant>,
    /// Set once the deadline has passed: no state has a step any more, so the queue
    /// drains fast. Cleared before the runs found are replayed.
    pub stopped: Arc<AtomicBool>,
}

impl ConfigLog {
    /// The nodes taking part.
    pub fn ids(&self) -> std::ops::Range<u8> {
        0..self.nodes
    }

    /// The nodes taking part other than `node`.
    pub fn others(&self, node: u8) -> impl Iterator<Item = u8> {
        self.ids().filter(move |&k| k != node)
    }

    /// The start: no epoch, no copies anywhere.
    pub fn init(&self) -> State {
        assert!(usize::from(self.max_term) <= MAX_TERM);
        assert!(usize::from(self.max_log) <= MAX_LOG);
        assert!(usize::from(self.nodes) <= NODES);
        State {
            nodes: [Node::NEW; NODES],
            net: Vec::new(),
            next_value: 1,
            changes: 0,
            elected: [0; MAX_TERM + 1],
            committed: Vec::new(),
        }
    }

    /// The state the checker keeps for `s`: its least renumbering under symmetry.
    pub fn settle(&self, s: State) -> State {
        if self.perms.is_empty() {
            s
        } else {
            crate::symmetry::canonical(self, &s).0
        }
    }

    /// The configuration `n`'s log ends with, under these rules.
    pub fn log_voters(&self, n: &Node) -> Set {
        n.log_voters(self.initial, self.rules.gapless_config)
    }

    /// Every step that `state` allows (some may change nothing: `step` drops those); none
    /// once stopped.
    pub fn enabled(&self, state: &State, actions: &mut Vec<Action>) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        for node in self.ids() {
            let n = &state.nodes[usize::from(node)];
            if self.campaigners & 1 << node != 0 {
                for term in n.term + 1..=self.max_term {
                    actions.push(Action::Candidate { node, term });
                }
            }
            if let Role::Candidate { answered, holders } = n.role
                && self.has_quorum(n, answered, &self.with_leaders(n, holders, state))
                && (!self.rules.own_term_first || n.next <= self.max_log)
            {
                actions.push(Action::TakeOver { node });
            }
            if n.is_leader() {
                if state.next_value <= self.max_values && n.write_index() <= self.max_log {
                    actions.push(Action::Write { node });
                }
                let mut changes = Vec::new();
                self.changes_allowed(state, n, &mut changes);
                for change in changes {
                    actions.push(Action::Change { node, change });
                }
            }
            // A leader does not catch up (`catchup.rs` fetches only at a node that does
            // not lead).
            if self.catch_up && !n.is_leader() {
                for from in self.others(node) {
                    let f = &state.nodes[usize::from(from)];
                    if f.next > n.next && n.at(n.next).term != COMMITTED {
                        actions.push(Action::CatchUp { node, from });
                    }
                }
            }
            if self.crashes {
                actions.push(Action::Restart { node });
            }
        }
        for &msg in &state.net {
            for to in self.others(msg.from()) {
                if !self.may_change(state, msg, &state.nodes[usize::from(to)], to) {
                    continue;
                }
                actions.push(Action::Deliver {
                    msg,
                    to,
                    answer: true,
                });
                if !matches!(msg, Msg::Commit { .. }) {
                    actions.push(Action::Deliver {
                        msg,
                        to,
                        answer: false,
                    });
                }
            }
        }
    }

    /// The state after `action`, or `None` when it changes nothing.
    pub fn step(&self, state: &State, action: Action) -> Option<State> {
        let mut s = state.clone();
        match action {
            Action::Candidate { node, term } => {
                let n = &mut s.nodes[usize::from(node)];
                n.follow(term, node);
                n.role = n.candidacy(node);
                s.send(Msg::Sync { cand: node, term });
            }
            Action::TakeOver { node } => self.take_over(&mut s, node),
            Action::Write { node } => {
                let value = s.next_value;
                s.next_value += 1;
                let index = s.nodes[usize::from(node)].write_index();
                self.propose(&mut s, node, index, value, 0);
            }
            Action::Change { node, change } => {
                s.changes += 1;
                let n = &s.nodes[usize::from(node)];
                let index = n.write_index();
                let parent = n.last_change_before(index);
                self.propose(&mut s, node, index, change.value(), parent);
            }
            Action::Deliver { msg, to, answer } => self.deliver(&mut s, msg, to, answer),
            Action::CatchUp { node, from } => {
                let keep = self.rules.committed_terms;
                let src = s.nodes[usize::from(from)];
                let n = &mut s.nodes[usize::from(node)];
                *n.at_mut(n.next) = Slot {
                    term: COMMITTED,
                    ..src.at(n.next)
                };
                n.voted &= !(1 << (n.next - 1));
                n.show(keep);
            }
            Action::Restart { node } => {
                let n = &mut s.nodes[usize::from(node)];
                n.role = Role::Follower;
                n.commit = (0, 0);
                n.voted = 0;
                for i in n.next..=MAX_LOG as u8 {
                    if n.at(i).term == COMMITTED {
                        *n.at_mut(i) = Slot::EMPTY;
                    }
                }
            }
        }
        for n in &mut s.nodes {
            n.tidy();
        }
        self.forget_dead_messages(&mut s);
        (s != *state).then(|| self.settle(s))
    }
}
