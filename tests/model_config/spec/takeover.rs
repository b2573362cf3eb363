//! A candidate's take-over in the model: whether the answers it merged are enough under
//! the rule under test ([`Quorum`], `take_over_shortfall`), and the take-over itself
//! (`finish_recovery`): everything from its shown history on proposed again in its term.

use super::{ConfigLog, Quorum};
use crate::state::{FILLER, MAX_LOG, Node, Role, Set, State, is_majority};

impl ConfigLog {
    /// Whether the candidate `n` has the answers it needs to take over.
    pub(super) fn has_quorum(&self, n: &Node, answered: Set) -> bool {
        let log = is_majority(answered, self.log_voters(n));
        let committed = is_majority(answered, n.committed_voters(self.initial));
        let overtaken = || n.holds_overtaken_change(self.rules.committed_terms);
        match self.rules.quorum {
            Quorum::LogVoters => log,
            Quorum::CommittedIfOvertaken => log && (committed || !overtaken()),
            Quorum::Both => log && committed,
        }
    }

    /// The candidate takes over (`finish_recovery`): from its shown history to the last
    /// index any answer held, it proposes in its term the copy it kept, or a filler; with
    /// nothing to propose again, a filler at its first index (under
    /// [`Rules::own_term_first`]). Its term settles once the first of them is committed.
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
            let value = if held.is_some() { held.value } else { FILLER };
            self.propose(s, node, index, value);
        }
        if self.rules.own_term_first && start > end {
            self.propose(s, node, start, FILLER);
        }
    }
}
