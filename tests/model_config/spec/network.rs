//! The network in the model: a message delivered to a node, with the answer or ack it
//! causes (`on_sync_request`, `can_hold`, `can_take_commit`), and which messages can
//! change nothing any more and are dropped.

use super::ConfigLog;
use crate::state::{Msg, Node, Role, Slot, State};

impl ConfigLog {
    /// Delivers `msg` to `to`, and the answer or ack it causes if `answer` (see
    /// `tests/model/spec.rs` for why at once).
    pub(super) fn deliver(&self, s: &mut State, msg: Msg, to: u8, answer: bool) {
        let n = &mut s.nodes[usize::from(to)];
        match msg {
            Msg::Sync { cand, term } => {
                // `on_sync_request`: answers a candidate of a newer term, or the one of
                // its own term that it follows already.
                if n.term > term || (n.term == term && n.leader != cand) {
                    return;
                }
                n.follow(term, cand);
                let (log, voted) = (n.log, n.voted);
                let c = &mut s.nodes[usize::from(cand)];
                if answer
                    && c.term == term
                    && let Role::Candidate { answered, holders } = &mut c.role
                {
                    *answered |= 1 << to;
                    let mut holders = *holders;
                    for (index, &copy) in (1..).zip(&log) {
                        if !copy.is_some() || index < c.next {
                            continue;
                        }
                        // Only a copy the answer holds as a vote counts it a holder.
                        let vote = if voted & (1 << (index - 1)) != 0 {
                            1 << to
                        } else {
                            0
                        };
                        let kept = c.at(index);
                        let h = &mut holders[usize::from(index) - 1];
                        if copy.term > kept.term {
                            *h = vote;
                        } else if copy == kept {
                            *h |= vote;
                        }
                        c.offer(index, copy);
                    }
                    if let Role::Candidate { holders: h, .. } = &mut c.role {
                        *h = holders;
                    }
                    let before = c.next;
                    c.show(self.rules.committed_terms);
                    // `maybe_finish_recovery`: its delivery point moved, so it asks
                    // everyone again from there, and only the new answers count.
                    // Its own votes count as held still; the answers' do not.
                    if c.next != before {
                        c.role = Role::Candidate {
                            answered: 1 << cand,
                            holders: holders.map(|h| h & 1 << cand),
                        };
                    }
                }
            }
            Msg::Propose {
                from,
                term,
                index,
                value,
                parent,
            } => {
                // `can_hold`: a candidate takes only answers; a member follows a leader
                // of a newer term and takes only the proposals of the term and leader it
                // follows.
                if n.is_candidate() {
                    return;
                }
                if term > n.term {
                    n.follow(term, from);
                }
                if n.leader != from || n.term != term {
                    return;
                }
                n.offer(index, Slot::new(term, value, parent));
                n.vote(index, term);
                n.show(self.rules.committed_terms);
                if answer {
                    self.count_ack(s, from, term, index, to);
                }
            }
            Msg::Commit { from, term, upto } => {
                // `can_take_commit`: only from the leader it follows.
                if n.is_candidate() {
                    return;
                }
                if term > n.term {
                    n.follow(term, from);
                }
                if n.term == term && n.leader == from {
                    n.note_commit(term, upto);
                    n.show(self.rules.committed_terms);
                }
            }
        }
    }

    /// Whether delivering `msg` to `n` can still change anything. Epochs are on disk, so
    /// a node never follows a lower term again: a message of a lower term than its
    /// addressee's, or of another leader of that term, is dead; a sync request once the
    /// candidacy is over; a proposal its addressee cannot take any more (shown, or a copy
    /// of a term as high held) once its ack can count no more; a commit notice that covers
    /// nothing its addressee has not shown or been told.
    pub(super) fn may_change(&self, s: &State, msg: Msg, n: &Node, to: u8) -> bool {
        match msg {
            Msg::Sync { cand, term } => {
                let c = &s.nodes[usize::from(cand)];
                let open = c.term == term && c.is_candidate();
                n.term < term || (n.term == term && n.leader == cand && open)
            }
            Msg::Propose {
                from, term, index, ..
            } => {
                let followed = n.term == term && n.leader == from && !n.is_candidate();
                let l = &s.nodes[usize::from(from)];
                let counts = match l.role {
                    Role::Leader { acks, .. } => {
                        l.term == term
                            && index >= l.next
                            && acks[usize::from(index) - 1] & (1 << to) == 0
                    }
                    _ => false,
                };
                let takes = index >= n.next && n.at(index).term < term;
                n.term < term || (followed && (counts || takes))
            }
            Msg::Commit { from, term, upto } => {
                let followed = n.term == term && n.leader == from && !n.is_candidate();
                let told = n.commit.0 == term && n.commit.1 >= upto;
                n.term < term || (followed && upto >= n.next && !told)
            }
        }
    }

    /// Drops the messages that can change nothing at any node any more (see
    /// [`ConfigLog::may_change`]), so that runs differing only in them meet again.
    pub fn forget_dead_messages(&self, s: &mut State) {
        let mut net = std::mem::take(&mut s.net);
        net.retain(|&m| {
            self.others(m.from())
                .any(|to| self.may_change(s, m, &s.nodes[usize::from(to)], to))
        });
        s.net = net;
    }
}
