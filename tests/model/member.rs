//! What one node of the model does with what it is told: follow an epoch, hold a copy,
//! note a commit point, show what is committed, and what survives a crash. The rules each
//! follows are [`Rules`]; the transitions that call them are in `spec.rs`.

use crate::spec::Rules;
use crate::state::{COMMITTED, MAX_LOG, Node, Role, Slot};

impl Node {
    /// Follows the epoch (`term`, `leader`): a leader or candidate of an older one steps
    /// down (`set_epoch`).
    pub(crate) fn follow(&mut self, term: u8, leader: u8) {
        self.term = term;
        self.leader = leader;
        self.role = Role::Follower;
    }

    /// Takes `copy` at `index` unless it has shown that index or holds a copy that ranks
    /// as high (`HoldBackQueue::offer`); with `lowest`, keeps the lower-ranked copy instead.
    pub(crate) fn offer(&mut self, index: u8, copy: Slot, rules: Rules, lowest: bool) {
        if index < self.next {
            return;
        }
        let held = self.at(index);
        let better = if !held.is_some() {
            true
        } else if lowest {
            rules.rank(copy) < rules.rank(held)
        } else {
            rules.rank(copy) > rules.rank(held)
        };
        if better {
            *self.at_mut(index) = copy;
        }
    }

    /// The leader of `term` says its copies are committed up to `upto` (`note_commit`).
    pub(crate) fn note_commit(&mut self, term: u8, upto: u8) {
        if term > self.commit.0 {
            self.commit = (term, upto);
        } else if term == self.commit.0 {
            self.commit.1 = self.commit.1.max(upto);
        }
    }

    /// Shows, in order, every copy that is committed or that the commit point covers
    /// (`pop_committed`); a shown copy is kept as a committed one.
    pub(crate) fn show(&mut self) {
        while usize::from(self.next) <= MAX_LOG {
            let s = self.at(self.next);
            let (term, upto) = self.commit;
            let covered = s.is_some() && s.term == term && self.next <= upto;
            if s.term != COMMITTED && !covered {
                break;
            }
            *self.at_mut(self.next) = Slot {
                term: COMMITTED,
                value: s.value,
            };
            self.next += 1;
        }
    }

    /// The index a leader gives the next client value: after everything it proposed.
    pub(crate) fn write_index(&self) -> u8 {
        match self.role {
            Role::Leader { proposed, .. } => (1..=MAX_LOG as u8)
                .filter(|&i| proposed[usize::from(i) - 1] != 0)
                .map(|i| i + 1)
                .fold(self.next, u8::max),
            _ => self.next,
        }
    }

    /// Drops what can matter no more, so that equal situations are equal states: a
    /// leader's counts for indexes it has shown; a commit point below what it has shown
    /// (with epochs on disk its term can matter no more either: the node follows that
    /// term or a newer one, so no notice of a lower term is ever taken again).
    pub(crate) fn tidy(&mut self, durable_epoch: bool) {
        let shown = usize::from(self.next) - 1;
        if let Role::Leader { acks, proposed } = &mut self.role {
            acks[..shown].fill(0);
            proposed[..shown].fill(0);
        }
        if self.commit.1 < self.next {
            self.commit.1 = 0;
            if durable_epoch {
                self.commit.0 = 0;
            }
        }
    }
}
