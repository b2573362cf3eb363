//! The room log's election and commit rules as a small pure state machine, as
//! `src/proto/node/room` and `src/proto/node/ring/election.rs` implement them: three
//! voters; epochs (term, leader) that a node follows, at most one leader per term; a
//! candidate that takes over once a majority has answered its sync request, keeps of each
//! index the copy of the highest term, fills the rest, and proposes everything again in
//! its term; members that hold and ack only the proposals of the leader and term they
//! follow; a leader that commits an index once a majority holds its term's copy; members
//! that show entries once that leader's commit notice covers them. Each rule names the
//! code it stands for.
//!
//! The election itself is abstracted: any node may win a round of any term above the one
//! it follows ([`Action::Candidate`]). Chang-Roberts elects the candidate that showed the
//! most (then the largest id) among the nodes one ring reaches, but once partitions split
//! the ring each part runs its own round (a node cut off alone wins its own), so with
//! three nodes every node can win every term; the tokens carry nothing the rules below
//! rely on. Nor does the model keep answers to one message each, history limits or the
//! fetch a candidate behind a member makes before it takes over (`recovery.rs`): those
//! are checked by node tests (`tests/takeover_fetch.rs`) and the simulations.
//!
//! Faults are what the transitions allow rather than extra machinery:
//!
//! - the network is a set of messages; delivering one does not remove it, so any message
//!   may arrive any number of times (duplication), in any order (reordering), or never
//!   (loss: nothing forces a delivery). A sync answer is delivered together with its
//!   request, or lost ([`Action::Deliver`]'s `answer`), and so is a proposal's ack: the
//!   node that sends them changes nothing meanwhile that the answer or ack reports, and
//!   the node they go to can only have moved on (then they are dead) or done steps that
//!   commute with them (see `deliver` below);
//! - a pause is a node that takes no steps while the others go on, then acts on what it
//!   believed before, with every message sent to it meanwhile still deliverable; a
//!   leader back from a pause goes on leading (the code first has a majority confirm it,
//!   which only takes runs away);
//! - a partition is messages across the cut not being delivered until the heal;
//! - a crash is a pause followed by [`Action::Restart`], which keeps what is on disk (the
//!   epoch followed, the shown history, the held copies: `Write::Room`, `Write::Delivered`,
//!   `Write::Held`) and loses the rest (its role and what it gathered or counted in it, the
//!   commit point, committed copies held but not shown yet).
//!
//! After each step the messages that can no longer change anything are forgotten (see
//! [`RoomLog::forget_dead_messages`]), so that runs differing only in them meet again.

use crate::state::{
    COMMITTED, FILLER, Log, MAJORITY, MAX_LOG, MAX_TERM, Msg, NOBODY, NODES, Node, Role, Slot,
    State,
};

/// Which rules of the room log are on. [`Rules::SAFE`] is the design and the code's rules.
/// Each broken variant turns one rule off, so a test can show that the checker notices.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// A candidate takes over only once a majority of the voters, itself included, has
    /// answered its sync request (`recovery_quorum`).
    pub majority_answers: bool,
    /// Of two copies of one index a node keeps the one of the higher term
    /// (`HoldBackQueue::offer`); off, a candidate keeps the lower one.
    pub highest_term_copy: bool,
    /// A member holds and acks a proposal only from the leader of the epoch it follows
    /// (`can_hold`); off, also a proposal of a lower term than the one it follows.
    pub fenced_acks: bool,
    /// A committed copy (shown, or held as committed) outranks every copy of a term, so it
    /// is never replaced and a candidate keeps it (`COMMITTED_TERM`); off, it counts as a
    /// copy of the lowest term.
    pub committed_wins: bool,
    /// Held copies are on disk before they are acked (`Write::Held`); off, a crash loses
    /// them.
    pub held_on_disk: bool,
    /// A node's epoch is on disk (`Write::Room`) and a restarted node acks no proposal of
    /// a lower term than it (`Ring::followed_before`); off, a restarted node follows the
    /// epoch of whichever leader or candidate lets it back in, as `on_welcome` once did.
    pub durable_epoch: bool,
    /// A candidate takes copies only from the answers to its sync request
    /// (`Message::SyncEntry`) and committed copies; off, it also holds and acks any
    /// leader's proposal while it gathers, as `can_hold` once did while recovering.
    pub candidate_answers_only: bool,
    /// A member takes a proposal only of the term it follows; off, also an older term's
    /// proposal from the leader it follows, held as a copy of the term it follows, as
    /// `can_hold` (which checked the sender only) and `on_sequenced_from` (which gave the
    /// copy the epoch's term) once did.
    pub proposal_term_checked: bool,
}

/// A rule that a broken variant turns off.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// [`Rules::majority_answers`]
    MajorityAnswers,
    /// [`Rules::highest_term_copy`]
    HighestTermCopy,
    /// [`Rules::fenced_acks`]
    FencedAcks,
    /// [`Rules::committed_wins`]
    CommittedWins,
    /// [`Rules::held_on_disk`]
    HeldOnDisk,
    /// [`Rules::durable_epoch`]
    DurableEpoch,
    /// [`Rules::candidate_answers_only`]
    CandidateAnswersOnly,
    /// [`Rules::proposal_term_checked`]
    ProposalTermChecked,
}

impl Rules {
    /// Every rule on: the design.
    pub const SAFE: Rules = Rules {
        majority_answers: true,
        highest_term_copy: true,
        fenced_acks: true,
        committed_wins: true,
        held_on_disk: true,
        durable_epoch: true,
        candidate_answers_only: true,
        proposal_term_checked: true,
    };

    /// These rules with `rule` off.
    pub const fn without(mut self, rule: Rule) -> Rules {
        match rule {
            Rule::MajorityAnswers => self.majority_answers = false,
            Rule::HighestTermCopy => self.highest_term_copy = false,
            Rule::FencedAcks => self.fenced_acks = false,
            Rule::CommittedWins => self.committed_wins = false,
            Rule::HeldOnDisk => self.held_on_disk = false,
            Rule::DurableEpoch => self.durable_epoch = false,
            Rule::CandidateAnswersOnly => self.candidate_answers_only = false,
            Rule::ProposalTermChecked => self.proposal_term_checked = false,
        }
        self
    }

    /// How a copy ranks against another of the same index: by term, a committed one above
    /// all (unless [`Rules::committed_wins`] is off: then as the lowest term).
    pub(crate) fn rank(self, s: Slot) -> u8 {
        match s.term {
            COMMITTED if !self.committed_wins => 1,
            t => t,
        }
    }
}

/// A step of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `node` wins a round of `term` (above the term it follows): it follows itself and
    /// sends every other node its sync request.
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
    /// The network delivers `msg` (again). For a sync request, `answer` says whether the
    /// member's answer reaches the candidate; for a proposal, whether the ack reaches the
    /// leader.
    Deliver {
        /// The message; it stays in the network.
        msg: Msg,
        /// Whether the answer or ack it causes arrives.
        answer: bool,
    },
    /// `node` takes the next entry it has not shown from `from`'s shown history, as a
    /// committed copy (a fetch answered, a member brought up to date).
    CatchUp {
        /// The node catching up.
        node: u8,
        /// The node that showed the entry.
        from: u8,
    },
    /// `node` crashes and restarts from what is on disk; unless its epoch is on disk, it
    /// then follows the epoch of `via` (the leader or candidate that lets it back in), if
    /// not [`NOBODY`].
    Restart {
        /// The node.
        node: u8,
        /// Whose epoch it follows afterwards, or [`NOBODY`].
        via: u8,
    },
}

/// The other two nodes.
pub fn others(node: u8) -> impl Iterator<Item = u8> {
    (0..NODES as u8).filter(move |&k| k != node)
}

/// The model: the rules under test and how far terms and client values go.
#[derive(Clone, Copy, Debug)]
pub struct RoomLog {
    /// The rules the nodes follow.
    pub rules: Rules,
    /// No round is won beyond this term.
    pub max_term: u8,
    /// How many client values are written.
    pub max_values: u8,
    /// Whether each state is replaced by its least renumbering (see `symmetry`).
    pub symmetry: bool,
}

impl RoomLog {
    /// The start: no epoch, no copies anywhere.
    pub fn init(&self) -> State {
        assert!(usize::from(self.max_term) <= MAX_TERM);
        assert!(usize::from(self.max_values) <= MAX_LOG);
        State {
            nodes: [Node::NEW; NODES],
            net: Vec::new(),
            next_value: 1,
            elected: [0; MAX_TERM + 1],
            committed: Vec::new(),
        }
    }

    /// The state the checker keeps for `s`: its least renumbering under symmetry.
    pub fn settle(&self, s: State) -> State {
        if self.symmetry {
            crate::symmetry::canonical(&s).0
        } else {
            s
        }
    }

    /// Every step that `state` allows (some may change nothing: `step` drops those).
    pub fn enabled(&self, state: &State, actions: &mut Vec<Action>) {
        for (node, n) in (0..).zip(&state.nodes) {
            for term in n.term + 1..=self.max_term {
                actions.push(Action::Candidate { node, term });
            }
            if let Role::Candidate { answered } = n.role {
                let needed = if self.rules.majority_answers {
                    MAJORITY
                } else {
                    1
                };
                if answered.count_ones() >= needed {
                    actions.push(Action::TakeOver { node });
                }
            }
            if n.is_leader()
                && state.next_value <= self.max_values
                && usize::from(n.write_index()) <= MAX_LOG
            {
                actions.push(Action::Write { node });
            }
            for from in others(node) {
                if state.nodes[usize::from(from)].next > n.next && n.at(n.next).term != COMMITTED {
                    actions.push(Action::CatchUp { node, from });
                }
            }
            actions.push(Action::Restart { node, via: NOBODY });
            if !self.rules.durable_epoch {
                for via in others(node) {
                    let k = &state.nodes[usize::from(via)];
                    if k.leader == via && k.role != Role::Follower {
                        actions.push(Action::Restart { node, via });
                    }
                }
            }
        }
        for &msg in &state.net {
            actions.push(Action::Deliver { msg, answer: true });
            if !matches!(msg, Msg::Commit { .. }) {
                actions.push(Action::Deliver { msg, answer: false });
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
                n.role = Role::Candidate {
                    answered: 1 << node,
                };
                for to in others(node) {
                    s.send(Msg::Sync {
                        to,
                        cand: node,
                        term,
                    });
                }
            }
            Action::TakeOver { node } => self.take_over(&mut s, node),
            Action::Write { node } => {
                let value = s.next_value;
                s.next_value += 1;
                let index = s.nodes[usize::from(node)].write_index();
                self.propose(&mut s, node, index, value);
            }
            Action::Deliver { msg, answer } => self.deliver(&mut s, msg, answer),
            Action::CatchUp { node, from } => {
                let src = s.nodes[usize::from(from)];
                let n = &mut s.nodes[usize::from(node)];
                let value = src.at(n.next).value;
                *n.at_mut(n.next) = Slot {
                    term: COMMITTED,
                    value,
                };
                n.show();
            }
            Action::Restart { node, via } => {
                let epoch = (via != NOBODY).then(|| s.nodes[usize::from(via)].term);
                let rules = self.rules;
                let n = &mut s.nodes[usize::from(node)];
                n.role = Role::Follower;
                n.commit = (0, 0);
                for i in n.next..=MAX_LOG as u8 {
                    let held = n.at_mut(i);
                    if held.term == COMMITTED || !rules.held_on_disk {
                        *held = Slot::EMPTY;
                    }
                }
                if let Some(term) = epoch {
                    n.term = term;
                    n.leader = via;
                }
            }
        }
        for n in &mut s.nodes {
            n.tidy(self.rules.durable_epoch);
        }
        self.forget_dead_messages(&mut s);
        (s != *state).then(|| self.settle(s))
    }

    /// The candidate takes over (`finish_recovery`): from its shown history to the last
    /// index any answer held, it proposes in its term the copy it kept, or a filler.
    fn take_over(&self, s: &mut State, node: u8) {
        let n = &mut s.nodes[usize::from(node)];
        let term = n.term;
        let end = (1..=MAX_LOG as u8)
            .filter(|&i| n.at(i).is_some())
            .fold(n.next - 1, u8::max);
        n.role = Role::Leader {
            acks: [0; MAX_LOG],
            proposed: [0; MAX_LOG],
        };
        let start = n.next;
        n.note_commit(term, start - 1);
        s.elected[usize::from(term)] |= 1 << node;
        for index in start..=end {
            let held = s.nodes[usize::from(node)].at(index);
            let value = if held.is_some() { held.value } else { FILLER };
            self.propose(s, node, index, value);
        }
    }

    /// The leader `node` proposes `value` at `index` in its term (`propose`): holds it and
    /// sends it to the others.
    fn propose(&self, s: &mut State, node: u8, index: u8, value: u8) {
        let n = &mut s.nodes[usize::from(node)];
        let term = n.term;
        if let Role::Leader { proposed, .. } = &mut n.role {
            proposed[usize::from(index) - 1] = value + 1;
        }
        n.offer(index, Slot { term, value }, self.rules, false);
        for to in others(node) {
            s.send(Msg::Propose {
                to,
                from: node,
                term,
                index,
                value,
            });
        }
    }

    /// Delivers `msg`, and the answer or ack it causes if `answer`. Delivering the answer
    /// or ack at once covers its later delivery too: a member's answer is what it held
    /// when it answered, and the candidate, until it takes over or moves on (after which
    /// the answer is dead), only merges other copies, which commutes; an ack only adds to
    /// the leader's count, and the leader, until it moves on, only counts, proposes and
    /// commits, which commutes with it, or shows what it committed (after which the ack is
    /// dead).
    fn deliver(&self, s: &mut State, msg: Msg, answer: bool) {
        let rules = self.rules;
        let n = &mut s.nodes[usize::from(msg.to())];
        match msg {
            Msg::Sync { to, cand, term } => {
                // `on_sync_request`: answers a candidate of a newer term, or the one of
                // its own term that it follows already.
                if n.term > term || (n.term == term && n.leader != cand) {
                    return;
                }
                n.follow(term, cand);
                let log: Log = n.log;
                let c = &mut s.nodes[usize::from(cand)];
                if answer
                    && c.term == term
                    && let Role::Candidate { answered } = &mut c.role
                {
                    *answered |= 1 << to;
                    let lowest = !rules.highest_term_copy;
                    for (index, &copy) in (1..).zip(&log) {
                        if copy.is_some() {
                            c.offer(index, copy, rules, lowest);
                        }
                    }
                    c.show();
                }
            }
            Msg::Propose {
                to,
                from,
                term,
                index,
                value,
            } => {
                // `can_hold`: a candidate takes what comes while it gathers; a member
                // follows a leader of a newer term (`follow_higher_term`) and takes only
                // the proposals of the leader it follows.
                let held_as = if n.is_candidate() {
                    (!rules.candidate_answers_only).then_some(term)
                } else {
                    if term > n.term {
                        n.follow(term, from);
                    }
                    let from_leader = n.leader == from;
                    if from_leader && n.term == term {
                        Some(term)
                    } else if from_leader && !rules.proposal_term_checked {
                        Some(n.term)
                    } else {
                        (!rules.fenced_acks && term < n.term).then_some(term)
                    }
                };
                let Some(held_as) = held_as else {
                    return;
                };
                let copy = Slot {
                    term: held_as,
                    value,
                };
                n.offer(index, copy, rules, false);
                n.show();
                if answer {
                    self.count_ack(s, from, term, index, to);
                }
            }
            Msg::Commit {
                from, term, upto, ..
            } => {
                // `can_take_commit`: only from the leader it follows; a commit notice of a
                // newer term is followed first (a candidate follows nothing meanwhile).
                if n.is_candidate() {
                    return;
                }
                if term > n.term {
                    n.follow(term, from);
                }
                if n.term == term && n.leader == from {
                    n.note_commit(term, upto);
                    n.show();
                }
            }
        }
    }

    /// The leader `leader` of `term` counts `member`'s ack of its proposal at `index`
    /// (`room_settled`), and commits what a majority holds.
    fn count_ack(&self, s: &mut State, leader: u8, term: u8, index: u8, member: u8) {
        let l = &mut s.nodes[usize::from(leader)];
        if l.term != term || index < l.next {
            return;
        }
        if let Role::Leader { acks, .. } = &mut l.role {
            acks[usize::from(index) - 1] |= 1 << member;
            self.advance_commit(s, leader);
        }
    }

    /// Commits, in order from the first index the leader has not shown, every proposal of
    /// its term that a majority holds, itself included (`advance_commit`); shows them and
    /// tells the others (a newer notice replaces an older one in flight: it says more).
    fn advance_commit(&self, s: &mut State, leader: u8) {
        let l = s.nodes[usize::from(leader)];
        let Role::Leader { acks, proposed } = l.role else {
            return;
        };
        let mut upto = None;
        for index in l.next..=MAX_LOG as u8 {
            let k = usize::from(index) - 1;
            if proposed[k] == 0 || 1 + acks[k].count_ones() < MAJORITY {
                break;
            }
            upto = Some(index);
        }
        let Some(upto) = upto else {
            return;
        };
        for index in l.next..=upto {
            s.note_commit(index, proposed[usize::from(index) - 1] - 1, l.term);
        }
        let n = &mut s.nodes[usize::from(leader)];
        n.note_commit(l.term, upto);
        n.show();
        let term = l.term;
        s.net.retain(
            |m| !matches!(*m, Msg::Commit { from, term: t, .. } if from == leader && t == term),
        );
        for to in others(leader) {
            s.send(Msg::Commit {
                to,
                from: leader,
                term,
                upto,
            });
        }
    }

    /// Drops the messages that can change nothing any more. With epochs on disk a node
    /// never follows a lower term again, so a message of a lower term than its addressee's
    /// (or of another leader of that term) is dead unless the addressee may take it in a
    /// later role; a sync request to a member that already follows that candidate, once
    /// the candidacy is over; a proposal whose index its addressee has shown, once its ack
    /// can count no more; a commit notice that covers nothing its addressee has not shown.
    pub fn forget_dead_messages(&self, s: &mut State) {
        let rules = self.rules;
        let nodes = s.nodes;
        let ranked = rules.durable_epoch;
        s.net.retain(|m| {
            let n = &nodes[usize::from(m.to())];
            match *m {
                Msg::Sync { cand, term, .. } => {
                    let c = &nodes[usize::from(cand)];
                    let over = !(c.term == term && c.is_candidate());
                    let stale = n.term > term || (n.term == term && (n.leader != cand || over));
                    !(ranked && stale)
                }
                Msg::Propose {
                    to,
                    from,
                    term,
                    index,
                    ..
                } => {
                    let l = &nodes[usize::from(from)];
                    let counts = match l.role {
                        Role::Leader { acks, .. } => {
                            l.term == term
                                && index >= l.next
                                && acks[usize::from(index) - 1] & (1 << to) == 0
                        }
                        _ => false,
                    };
                    let useful = counts || index >= n.next;
                    let followed = n.term == term && n.leader == from;
                    let later_role = !rules.candidate_answers_only
                        || !rules.proposal_term_checked
                        || (!rules.fenced_acks && n.term > term);
                    let may_take = !ranked || n.term < term || followed || later_role;
                    useful && may_take
                }
                Msg::Commit {
                    from, term, upto, ..
                } => {
                    let followed = n.term == term && n.leader == from;
                    let told = upto < n.next && (n.commit.0 >= term || n.commit.0 == 0);
                    let stale = n.term > term || (n.term == term && (!followed || told));
                    !(ranked && stale)
                }
            }
        });
    }
}
