//! The room log's election and commit rules as a small pure state machine: three nodes,
//! terms, logs of (term, value) entries, Chang-Roberts tokens that gather supporters on
//! their way round the ring, leaders that send their log, and commit by majority.
//!
//! Faults are what the transitions allow rather than extra machinery:
//!
//! - the network is a set of messages; delivering one does not remove it, so any message
//!   may arrive any number of times (duplication), in any order (reordering), or never
//!   (loss: nothing forces a delivery, and the properties only read the nodes);
//! - a pause is a node that takes no steps while the others go on, then acts on what it
//!   believed before, with every message sent to it meanwhile still deliverable;
//! - a partition is messages across the cut not being delivered until the heal, and a
//!   token's holder passing it past a successor it cannot reach: every holder may pass
//!   to its successor or to the node after it (with three nodes, to either other node);
//! - a crash is a pause followed by [`Action::Restart`], which keeps what is durable (term,
//!   vote, log) and forgets the rest (role, commit index, what a leader knew of others).
//!   Only candidates and leaders crash in the model: a follower's crash would only make it
//!   forget its commit index, which it learns again and which no property needs lower
//!   (unless [`Rules::durable_vote`] is off: then any node that voted may crash).
//!
//! After each step the messages that can no longer change anything are forgotten (see
//! [`State::forget_dead_messages`]), so that runs differing only in them meet again.

use crate::state::{MAJORITY, MAX_LOG, MAX_TERM, Msg, NODES, Node, Role, State};

/// Which rules of the room log are on. [`Rules::SAFE`] is the design; each broken variant
/// turns one rule off, so a test can show that the checker notices.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// A node supports at most one candidate in a term.
    pub one_vote_per_term: bool,
    /// A node supports only a candidate whose log is at least as up to date as its own,
    /// by (last term, last index).
    pub up_to_date_votes: bool,
    /// A leader counts copies only of entries of its own term; older entries are committed
    /// by the commit of a later entry of its term (Raft figure 8).
    pub commit_own_term_only: bool,
    /// A node's vote survives its crash.
    pub durable_vote: bool,
}

/// A rule that a broken variant turns off.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// [`Rules::one_vote_per_term`]
    OneVotePerTerm,
    /// [`Rules::up_to_date_votes`]
    UpToDateVotes,
    /// [`Rules::commit_own_term_only`]
    CommitOwnTermOnly,
    /// [`Rules::durable_vote`]
    DurableVote,
}

impl Rules {
    /// Every rule on: the design.
    pub const SAFE: Rules = Rules {
        one_vote_per_term: true,
        up_to_date_votes: true,
        commit_own_term_only: true,
        durable_vote: true,
    };

    /// These rules with `rule` off.
    pub const fn without(mut self, rule: Rule) -> Rules {
        match rule {
            Rule::OneVotePerTerm => self.one_vote_per_term = false,
            Rule::UpToDateVotes => self.up_to_date_votes = false,
            Rule::CommitOwnTermOnly => self.commit_own_term_only = false,
            Rule::DurableVote => self.durable_vote = false,
        }
        self
    }
}

impl Node {
    /// Takes a message's term into account: a higher one deposes at once and clears the
    /// vote. Returns whether the message is of the current term (a lower one is ignored).
    fn observe(&mut self, term: u8) -> bool {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.role = Role::Follower;
            self.matched = [0; NODES];
        }
        term == self.term
    }

    /// The leader's commit rule: the highest index a majority holds, if the rules let it
    /// count copies of the entry there.
    fn advance_commit(&mut self, me: u8, rules: Rules) {
        for index in (self.commit + 1..=self.log.len()).rev() {
            let holders = (0..NODES)
                .filter(|&k| k == usize::from(me) || self.matched[k] >= index)
                .count();
            let own_term = self.log.at(index).is_some_and(|e| e.0 == self.term);
            if holders as u32 >= MAJORITY && (own_term || !rules.commit_own_term_only) {
                self.commit = index;
                return;
            }
        }
    }
}

/// A step of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `node` times out and starts an election in its next term, sending its token to `to`.
    Timeout {
        /// The new candidate.
        node: u8,
        /// Its successor, or the node after it.
        to: u8,
    },
    /// The leader `node`, which holds no entry of its term yet, appends a no-op in its term.
    Noop {
        /// The leader.
        node: u8,
    },
    /// A client hands the leader `node` the next value.
    Write {
        /// The leader.
        node: u8,
    },
    /// Leader `from` sends follower `to` its log.
    Replicate {
        /// The leader.
        from: u8,
        /// The follower.
        to: u8,
    },
    /// The network delivers `msg` (again); a token its holder passes on goes to `next`.
    Deliver {
        /// The message; it stays in the network.
        msg: Msg,
        /// Where a token goes next: the holder's successor or the node after it.
        next: u8,
    },
    /// `node` crashes and restarts from what is durable.
    Restart {
        /// The node.
        node: u8,
    },
}

/// The two nodes a holder may pass a token to: its successor, or the node after it.
pub fn next_hops(node: u8) -> [u8; 2] {
    let n = NODES as u8;
    [(node + 1) % n, (node + 2) % n]
}

/// The model: the rules under test and how far terms and client values go.
#[derive(Clone, Copy, Debug)]
pub struct RoomLog {
    /// The rules the nodes follow.
    pub rules: Rules,
    /// No node starts an election beyond this term.
    pub max_term: u8,
    /// How many client values are written.
    pub max_values: u8,
    /// Whether each state is replaced by its least renumbering (see `symmetry`).
    pub symmetry: bool,
    /// Steps taken from the initial state, in the nodes' own numbers, before the check
    /// starts: a way to begin a search deep in a run.
    pub opening: &'static [Action],
}

impl RoomLog {
    /// The start: every node a follower in term 0 with an empty log.
    pub fn init(&self) -> State {
        assert!(usize::from(self.max_term) <= MAX_TERM);
        assert!(usize::from(self.max_term + self.max_values) <= MAX_LOG);
        State {
            nodes: [Node::NEW; NODES],
            net: Vec::new(),
            next_value: 1,
            elected: [0; MAX_TERM + 1],
            committed: Vec::new(),
        }
    }

    /// The initial state after the opening steps, in the nodes' own numbers.
    pub fn opened(&self) -> State {
        let plain = RoomLog {
            symmetry: false,
            ..*self
        };
        let after = |s: State, &a: &Action| plain.step(&s, a).expect("an opening step acts");
        self.opening.iter().fold(self.init(), after)
    }

    /// The state the checker keeps for `s`: its least renumbering under symmetry.
    pub fn settle(&self, s: State) -> State {
        if self.symmetry {
            crate::symmetry::canonical(&s).0
        } else {
            s
        }
    }

    /// Every step that `state` allows.
    pub fn enabled(&self, state: &State, actions: &mut Vec<Action>) {
        for (node, n) in (0..).zip(&state.nodes) {
            if n.role != Role::Leader && n.term < self.max_term {
                actions.extend(next_hops(node).map(|to| Action::Timeout { node, to }));
            }
            if n.role == Role::Leader {
                if n.log.last().0 < n.term {
                    actions.push(Action::Noop { node });
                }
                if state.next_value <= self.max_values {
                    actions.push(Action::Write { node });
                }
                actions.extend(next_hops(node).map(|to| Action::Replicate { from: node, to }));
            }
            let forgets_vote = n.vote.is_some() && !self.rules.durable_vote;
            if n.role != Role::Follower || forgets_vote {
                actions.push(Action::Restart { node });
            }
        }
        for &msg in &state.net {
            match msg {
                Msg::Token { to, cand, .. } if to != cand => {
                    actions.extend(next_hops(to).map(|next| Action::Deliver { msg, next }));
                }
                _ => actions.push(Action::Deliver {
                    msg,
                    next: msg.to(),
                }),
            }
        }
    }

    /// The state after `action`, or `None` when it changes nothing.
    pub fn step(&self, state: &State, action: Action) -> Option<State> {
        let mut s = state.clone();
        let acted = match action {
            Action::Timeout { node, to } => {
                let n = &mut s.nodes[usize::from(node)];
                n.term += 1;
                n.vote = Some(node);
                n.role = Role::Candidate;
                n.matched = [0; NODES];
                let (term, last) = (n.term, n.log.last());
                s.send(Msg::Token {
                    to,
                    term,
                    cand: node,
                    last,
                    support: 1 << node,
                });
                node
            }
            Action::Noop { node } => {
                let n = &mut s.nodes[usize::from(node)];
                n.log.push((n.term, 0));
                node
            }
            Action::Write { node } => {
                let n = &mut s.nodes[usize::from(node)];
                n.log.push((n.term, s.next_value));
                s.next_value += 1;
                node
            }
            Action::Replicate { from, to } => {
                let n = &s.nodes[usize::from(from)];
                let (term, log, commit) = (n.term, n.log, n.commit);
                s.send(Msg::Append {
                    to,
                    from,
                    term,
                    log,
                    commit,
                });
                from
            }
            Action::Deliver { msg, next } => {
                self.deliver(&mut s, msg, next);
                msg.to()
            }
            Action::Restart { node } => {
                let n = &mut s.nodes[usize::from(node)];
                n.role = Role::Follower;
                n.commit = 0;
                n.matched = [0; NODES];
                if !self.rules.durable_vote {
                    n.vote = None;
                }
                node
            }
        };
        s.note_commits(acted);
        s.forget_dead_messages();
        (s != *state).then(|| self.settle(s))
    }

    fn deliver(&self, s: &mut State, msg: Msg, next: u8) {
        let me = msg.to();
        let n = &mut s.nodes[usize::from(me)];
        match msg {
            Msg::Token {
                term,
                cand,
                support,
                ..
            } if cand == me => {
                let won = support.count_ones() >= MAJORITY;
                if term == n.term && n.role == Role::Candidate && won {
                    n.role = Role::Leader;
                    n.matched = [0; NODES];
                    s.elected[usize::from(term)] |= 1 << me;
                }
            }
            Msg::Token {
                term,
                cand,
                last,
                mut support,
                ..
            } => {
                if !n.observe(term) {
                    return;
                }
                let free = n.vote.is_none() || n.vote == Some(cand);
                let free = free || !self.rules.one_vote_per_term;
                let fresh = last >= n.log.last() || !self.rules.up_to_date_votes;
                if free && fresh {
                    n.vote = Some(cand);
                    support |= 1 << me;
                }
                s.send(Msg::Token {
                    to: next,
                    term,
                    cand,
                    last,
                    support,
                });
            }
            Msg::Append {
                from,
                term,
                log,
                commit,
                ..
            } => {
                if !n.observe(term) || n.role == Role::Leader {
                    return;
                }
                n.role = Role::Follower;
                for (index, e) in (1..).zip(log.entries()) {
                    if n.log.at(index).is_none_or(|had| had.0 != e.0) {
                        n.log.truncate(index - 1);
                        n.log.push(*e);
                    }
                }
                n.commit = n.commit.max(commit.min(log.len()));
                s.send(Msg::Ack {
                    to: from,
                    from: me,
                    term,
                    index: log.len(),
                });
            }
            Msg::Ack {
                from, term, index, ..
            } => {
                if n.observe(term) && n.role == Role::Leader {
                    let m = &mut n.matched[usize::from(from)];
                    *m = (*m).max(index);
                    n.advance_commit(me, self.rules);
                }
            }
        }
    }
}
