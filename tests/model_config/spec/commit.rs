//! A leader's side of the log in the model: the configuration changes it may propose
//! (`reconcile_voters`), its proposals (`propose`), the acks it counts (`room_settled`)
//! and the commits they allow (`advance_commit`).

use super::{ConfigLog, Undo};
use crate::state::{Change, MAX_LOG, Msg, Node, Role, Slot, State, is_majority};

impl ConfigLog {
    /// The changes the leader `n` may propose now (`reconcile_voters`).
    pub(super) fn changes_allowed(&self, s: &State, n: &Node, out: &mut Vec<Change>) {
        if s.changes >= self.max_changes || n.write_index() > self.max_log {
            return;
        }
        let settled = n.settled() || !self.rules.own_term_first;
        let in_flight: Vec<Change> = n.changes_in_flight().collect();
        let voters = self.log_voters(n);
        match in_flight.as_slice() {
            [] if settled => {
                for x in self.ids() {
                    if voters & 1 << x == 0 {
                        out.push(Change::Add(x));
                    } else if voters.count_ones() > 1 {
                        out.push(Change::Remove(x));
                    }
                }
            }
            &[Change::Add(user)] => {
                let undo = match self.rules.undo {
                    Undo::Never => false,
                    Undo::Settled => settled,
                    Undo::Early => true,
                };
                if undo {
                    out.push(Change::Remove(user));
                }
            }
            _ => {}
        }
    }

    /// The leader `node` proposes `value` at `index` in its term, with `parent` if it is
    /// a configuration entry (`propose`): holds it, sends it to the others, and commits
    /// what its configuration now lets it.
    pub(super) fn propose(&self, s: &mut State, node: u8, index: u8, value: u8, parent: u8) {
        let n = &mut s.nodes[usize::from(node)];
        let term = n.term;
        if let Role::Leader { proposed, .. } = &mut n.role {
            proposed[usize::from(index) - 1] = value + 1;
        }
        n.offer(index, Slot::new(term, value, parent));
        n.vote(index, term);
        s.send(Msg::Propose {
            from: node,
            term,
            index,
            value,
            parent,
        });
        self.advance_commit(s, node);
    }

    /// The leader `leader` of `term` counts `member`'s ack of its proposal at `index`
    /// (`room_settled`), and commits what a majority holds.
    pub(super) fn count_ack(&self, s: &mut State, leader: u8, term: u8, index: u8, member: u8) {
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
    /// its term that a majority of its log's configuration holds, itself included if it
    /// is a voter (`advance_commit`, `holders_among`); shows them, settles its term once
    /// the first entry of it is committed, and tells the others (a newer notice replaces
    /// an older one in flight: it says more).
    fn advance_commit(&self, s: &mut State, leader: u8) {
        let l = s.nodes[usize::from(leader)];
        let Role::Leader {
            acks,
            proposed,
            settles_at,
        } = l.role
        else {
            return;
        };
        let voters = self.log_voters(&l);
        let mut upto = None;
        for index in l.next..=MAX_LOG as u8 {
            let k = usize::from(index) - 1;
            if proposed[k] == 0 || !is_majority(acks[k] | 1 << leader, voters) {
                break;
            }
            upto = Some(index);
        }
        let Some(upto) = upto else {
            return;
        };
        // The leader holds its term's copy of each (proposed, so no other copy as high).
        for index in l.next..=upto {
            s.note_commit(index, l.at(index), l.term);
        }
        let n = &mut s.nodes[usize::from(leader)];
        n.note_commit(l.term, upto);
        n.show(self.rules.committed_terms);
        if settles_at != 0
            && settles_at <= upto
            && let Role::Leader { settles_at, .. } = &mut n.role
        {
            *settles_at = 0;
        }
        let term = l.term;
        s.net.retain(
            |m| !matches!(*m, Msg::Commit { from, term: t, .. } if from == leader && t == term),
        );
        s.send(Msg::Commit {
            from: leader,
            term,
            upto,
        });
    }
}
