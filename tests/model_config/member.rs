//! What one node of the model does with what it is told: follow an epoch, hold a copy,
//! note a commit point, show what is committed. The transitions that call these are in
//! `spec.rs`.

use crate::state::{COMMITTED, MAX_LOG, Node, Role, Slot};

impl Node {
    /// Follows the epoch (`term`, `leader`): a leader or candidate of an older one steps
    /// down (`set_epoch`).
    pub(crate) fn follow(&mut self, term: u8, leader: u8) {
        self.term = term;
        self.leader = leader;
        self.role = Role::Follower;
    }

    /// A candidacy that has heard only itself (`k` is its number): it holds each copy
    /// it voted for.
    pub(crate) fn candidacy(&self, k: u8) -> Role {
        let mut holders = [0; MAX_LOG];
        for (i, h) in holders.iter_mut().enumerate() {
            if self.voted & (1 << i) != 0 {
                *h = 1 << k;
            }
        }
        Role::Candidate {
            answered: 1 << k,
            holders,
        }
    }

    /// Takes `copy` at `index` unless it has shown that index or holds a copy of a term as
    /// high, a committed copy above all (`HoldBackQueue::offer`).
    pub(crate) fn offer(&mut self, index: u8, copy: Slot) {
        if index >= self.next && copy.term > self.at(index).term {
            *self.at_mut(index) = copy;
            self.voted &= !(1 << (index - 1));
        }
    }

    /// A proposal of `term` at `index` from that term's leader, or its own as leader:
    /// the copy it holds there, if of that term, is a vote (`Room::note_vote`).
    pub(crate) fn vote(&mut self, index: u8, term: u8) {
        if index >= self.next && self.at(index).term == term {
            self.voted |= 1 << (index - 1);
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
    /// (`pop_committed`), applying the configuration entries among them; a shown copy is
    /// kept as a committed one, with its parent, and the term it was proposed in if
    /// `keep_terms`.
    pub(crate) fn show(&mut self, keep_terms: bool) {
        while usize::from(self.next) <= MAX_LOG {
            let s = self.at(self.next);
            let (term, upto) = self.commit;
            let covered = s.is_some() && s.term == term && self.next <= upto;
            if s.term != COMMITTED && !covered {
                break;
            }
            *self.at_mut(self.next) = Slot {
                term: COMMITTED,
                of: if keep_terms {
                    s.proposed_in().unwrap_or(0)
                } else {
                    0
                },
                ..s
            };
            self.next += 1;
        }
    }

    /// The index a leader gives the next entry: after everything it proposed.
    pub(crate) fn write_index(&self) -> u8 {
        match self.role {
            Role::Leader { proposed, .. } => (1..=MAX_LOG as u8)
                .filter(|&i| proposed[usize::from(i) - 1] != 0)
                .map(|i| i + 1)
                .fold(self.next, u8::max),
            _ => self.next,
        }
    }

    /// Whether it leads and an entry of its own term is committed (`Room::settled`).
    pub(crate) fn settled(&self) -> bool {
        matches!(self.role, Role::Leader { settles_at: 0, .. })
    }

    /// Drops what can matter no more, so that equal situations are equal states: a
    /// leader's counts for indexes it has shown; a commit point below what it has shown
    /// (epochs are on disk, so no notice of a lower term is ever taken again).
    pub(crate) fn tidy(&mut self) {
        let shown = usize::from(self.next) - 1;
        if let Role::Leader { acks, proposed, .. } = &mut self.role {
            acks[..shown].fill(0);
            proposed[..shown].fill(0);
        }
        if self.commit.1 < self.next {
            self.commit = (0, 0);
        }
        self.voted &= !((1u8 << shown) - 1);
    }
}
