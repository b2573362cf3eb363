//! A candidate's take-over in the model: whether the answers it merged are enough under
//! the rule under test ([`Quorum`], `take_over_shortfall`), and the take-over itself
//! (`finish_recovery`): everything from its shown history on proposed again in its term.

use super::{ConfigLog, Quorum};
use crate::state::{COMMITTED, FILLER, LoggedConfig, MAX_LOG, Node, Role, Set, State, is_majority};

impl ConfigLog {
    /// Whether the candidate `n` has the answers it needs to take over.
    pub(crate) fn has_quorum(&self, n: &Node, answered: Set, holders: &[Set; MAX_LOG]) -> bool {
        let log = is_majority(answered, self.log_voters(n));
        let committed = is_majority(answered, n.committed_voters(self.initial));
        let overtaken = || n.holds_overtaken_change(self.rules.committed_terms);
        match self.rules.quorum {
            Quorum::LogVoters => log,
            Quorum::CommittedIfOvertaken => log && (committed || !overtaken()),
            Quorum::Both => log && committed,
            Quorum::Chain => log && committed && self.chain_answered(n, answered, false, 0),
            Quorum::ChainGaps => log && committed && self.chain_answered(n, answered, true, 0),
            Quorum::ChainProven | Quorum::ChainProvenByLeader => {
                let from = self.proven_by_answers(n, holders);
                let (chain, _) = n.configs_in_log(self.initial, self.rules.gapless_config);
                log && is_majority(answered, chain[from].voters)
                    && self.chain_answered(n, answered, false, from)
            }
        }
    }

    /// `holders`, with the leader of each copy's term among the holders of that copy under
    /// [`Quorum::ChainProvenByLeader`] (unchanged otherwise).
    pub(crate) fn with_leaders(
        &self,
        n: &Node,
        mut holders: [Set; MAX_LOG],
        s: &State,
    ) -> [Set; MAX_LOG] {
        if self.rules.quorum != Quorum::ChainProvenByLeader {
            return holders;
        }
        for (index, h) in (1..).zip(holders.iter_mut()) {
            let copy = n.at(index);
            if copy.is_some() && copy.term != COMMITTED {
                *h |= s.elected[usize::from(copy.term)];
            }
        }
        holders
    }

    /// How many changes of `n`'s chain, from the committed configuration on, its answers
    /// prove committed ([`Quorum::ChainProven`]): each a proposal (not a committed copy)
    /// whose parent is the change before it in the chain, held, in the very copy the
    /// candidate keeps, by a majority of the configuration it makes (`holders`: those
    /// holding that copy as a vote, [`Node::voted`]), and so is every index from the candidate's delivery
    /// point to it, each in a copy of the change's term. The leader that proposed it
    /// counts acks in that configuration and commits in index order, so those majorities,
    /// all in one term, are ones it commits them by. (Without the indexes before it, a
    /// change held by a majority of its configuration proves nothing of an entry before
    /// it, which an older leader committed under a sibling change: a take-over by that
    /// majority alone filled it, in 17 steps with a client value.)
    fn proven_by_answers(&self, n: &Node, holders: &[Set; MAX_LOG]) -> usize {
        let (chain, len) = n.configs_in_log(self.initial, self.rules.gapless_config);
        let mut from = 0;
        while from + 1 < len {
            let (before, next) = (&chain[from], &chain[from + 1]);
            // Every index from its delivery point to the change: held in a copy of the
            // change's term by a majority of the change's configuration (that leader
            // commits in order, so those copies commit with the change).
            let prefix_held = (n.next..=next.index).all(|i| {
                n.at(i).term == next.term && is_majority(holders[usize::from(i) - 1], next.voters)
            });
            if next.term == COMMITTED || next.parent != before.index || !prefix_held {
                break;
            }
            from += 1;
        }
        from
    }

    /// Whether `answered` are a majority of each configuration of `n`'s chain
    /// ([`Node::configs_in_log`]) that `take_over_shortfall` asks for besides the
    /// committed one and the last: a branch point (made by a held proposal that a held
    /// proposal of a lower term follows; a committed copy is neither); and one followed
    /// by a change whose parent is not the index of the change that made it (of the last
    /// change shown, for the committed one), or with `gaps` instead, one in between after
    /// which an index is not held before the next change held.
    fn chain_answered(&self, n: &Node, answered: Set, gaps: bool, from: usize) -> bool {
        let (chain, len) = n.configs_in_log(self.initial, self.rules.gapless_config);
        let chain = &chain[from..len];
        let len = len - from;
        let asked = |c: &LoggedConfig| is_majority(answered, c.voters);
        let proposal = |c: &LoggedConfig| c.term != COMMITTED;
        let branch_points = chain.windows(3).all(|w| {
            let branch = proposal(&w[1]) && proposal(&w[2]) && w[2].term < w[1].term;
            !branch || asked(&w[1])
        });
        let unknown_between = if gaps {
            let middle = chain.iter().take(len.saturating_sub(1)).skip(1);
            middle.filter(|c| c.gap_after).all(asked)
        } else {
            chain
                .windows(2)
                .all(|w| w[1].parent == w[0].index || asked(&w[0]))
        };
        branch_points && unknown_between
    }

    /// The candidate takes over (`finish_recovery`): from its shown history to the last
    /// index any answer held, it proposes in its term the copy it kept (a configuration
    /// entry with its parent), or a filler; with nothing to propose again, a filler at
    /// its first index (under [`Rules::own_term_first`]). Its term settles once the first
    /// of them is committed.
    pub(super) fn take_over(&self, s: &mut State, node: u8) {
        let n = &mut s.nodes[usize::from(node)];
        let term = n.term;
        let start = n.next;
        let end = (1..=MAX_LOG as u8)
            .filter(|&i| n.at(i).is_some())
            .fold(start - 1, u8::max);
        n.role = Role::Leader {
            acks: [0; MAX_LOG],
            proposed: [0; MAX_LOG],
            settles_at: if self.rules.own_term_first { start } else { 0 },
        };
        n.note_commit(term, start - 1);
        s.elected[usize::from(term)] |= 1 << node;
        for index in start..=end {
            let held = s.nodes[usize::from(node)].at(index);
            let (value, parent) = if held.is_some() {
                (held.value, held.parent)
            } else {
                (FILLER, 0)
            };
            self.propose(s, node, index, value, parent);
        }
        if self.rules.own_term_first && start > end {
            self.propose(s, node, start, FILLER, 0);
        }
    }
}
