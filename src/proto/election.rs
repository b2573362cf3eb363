//! Chang-Roberts leader election on a unidirectional ring.
//!
//! Candidates are compared by [`Candidate`]: the one that showed the most room messages
//! first, then the largest id. A starter marks itself participant and sends
//! `Election(term, itself)` to its successor. On receiving `Election(term, c)`:
//! - `c` smaller than a candidate this node already passed on in the round: swallow it
//!   (a copy of a token, sent round a silent member, skipped the node that swallowed it);
//! - `c > me`: mark participant, pass `c` on;
//! - `c < me` and not participant: mark participant, pass `me` on instead;
//! - `c < me` and participant: swallow the token (a larger one is already travelling);
//! - `c == me`: the token went all the way round; this node won.
//!
//! The winner sends `Elected` round the ring; each node clears its participant flag. With
//! n nodes this takes at most n(n+1)/2 election tokens plus n announcements, whatever the
//! order of the candidates.
//!
//! A node compares tokens with itself as it was when it entered the round, so a round's
//! order does not change while its tokens travel. The winner is the candidate whose log
//! is the longest of the ring's: the new leader then has the least to fetch before it
//! takes over (what keeps committed messages is its recovery, which gathers a majority's
//! logs; see `node/room/recovery.rs`).
//!
//! Terms separate rounds: a token of an older round is discarded, a newer round resets the
//! participant flag. This module only decides; the node sends what it returns.

use crate::ids::{NodeId, Seq};

/// A node as an election compares it: most room messages shown first, then largest id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    /// Its delivery point: the number after the last room message it showed.
    pub log: Seq,
    /// Its id, which breaks ties.
    pub id: NodeId,
}

/// What to do with a received election token.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send `Election(term, candidate)` to the successor.
    Forward {
        /// The round.
        term: u64,
        /// The candidate to pass on.
        candidate: Candidate,
    },
    /// Drop the token.
    Swallow,
    /// This node won round `term`.
    Won {
        /// The round.
        term: u64,
    },
}

/// One node's election state.
#[derive(Debug, Clone, Default)]
pub struct Election {
    term: u64,
    participant: bool,
    /// This node as it entered round `term` (what tokens of the round are compared with).
    entered_as: Option<Candidate>,
    /// The largest candidate of round `term` this node passed on: the winner's token
    /// goes all the way round, so every node on the ring passes the winner on before
    /// the winner's announcement comes.
    carried: Option<Candidate>,
}

impl Election {
    /// The newest round this node took part in or heard of.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Whether this node is taking part in a round that has not been announced yet.
    pub fn is_participant(&self) -> bool {
        self.participant
    }

    /// Whether this node passed on `candidate`'s token in round `term`: the evidence that
    /// an announcement of `candidate` winning `term` ends a round this node took part in.
    pub fn carried(&self, term: u64, candidate: NodeId) -> bool {
        self.term == term && self.carried.is_some_and(|c| c.id == candidate)
    }

    /// Starts round `term` (above every term known) as `me`; returns the token to send.
    pub fn start(&mut self, me: Candidate, term: u64) -> Decision {
        if term > self.term {
            self.carried = None;
        }
        self.term = self.term.max(term);
        self.participant = true;
        self.entered_as = Some(me);
        Decision::Forward {
            term: self.term,
            candidate: me,
        }
    }

    /// Applies the Chang-Roberts rules to a received token; `me` is this node now (used
    /// if it has not entered the round yet).
    pub fn on_token(&mut self, me: Candidate, term: u64, candidate: Candidate) -> Decision {
        if term < self.term {
            return Decision::Swallow;
        }
        if term > self.term {
            self.term = term;
            self.participant = false;
            self.carried = None;
            self.entered_as = None;
        }
        let me = *self.entered_as.get_or_insert(me);
        if self.carried.is_some_and(|c| c > candidate) {
            // A larger candidate of this round already went on from here. Only a copy of
            // a token can bring a smaller one after it (a pass that went beyond a silent
            // successor as well, see `ring/election.rs`): the copy skipped a node that
            // would have swallowed it, and two winners of one round would each wait for
            // a majority that follows only one of them.
            Decision::Swallow
        } else if candidate.id == me.id {
            Decision::Won { term }
        } else if candidate > me {
            self.participant = true;
            self.carried = self.carried.max(Some(candidate));
            Decision::Forward { term, candidate }
        } else if self.participant {
            Decision::Swallow
        } else {
            self.participant = true;
            Decision::Forward {
                term,
                candidate: me,
            }
        }
    }

    /// Records the announcement of round `term`: the election is over. What this node
    /// carried in an older round says nothing of this one.
    pub fn on_elected(&mut self, term: u64) {
        if term > self.term {
            self.carried = None;
        }
        self.term = self.term.max(term);
        self.participant = false;
    }

    /// Gives up round `term` without hearing its end (it timed out): this node takes
    /// part in no round until it starts or joins another. What it carried is kept, the
    /// evidence should the round's announcement still come.
    pub fn abandon(&mut self) {
        self.participant = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A candidate with id `id` that showed everything before `log`.
    fn cand(id: u64, log: u64) -> Candidate {
        Candidate {
            log: Seq(log),
            id: NodeId(id),
        }
    }

    /// Runs a whole ring in memory: `starters` start at once; returns (winner, tokens).
    fn run_ring_of(nodes_as: &[Candidate], starters: &[usize]) -> (NodeId, usize) {
        let n = nodes_as.len();
        let mut nodes = vec![Election::default(); n];
        let mut queue = std::collections::VecDeque::new();
        for &s in starters {
            if let Decision::Forward { term, candidate } = nodes[s].start(nodes_as[s], 1) {
                queue.push_back(((s + 1) % n, term, candidate));
            }
        }
        let mut tokens = queue.len();
        while let Some((at, term, c)) = queue.pop_front() {
            match nodes[at].on_token(nodes_as[at], term, c) {
                Decision::Forward { term, candidate } => {
                    tokens += 1;
                    queue.push_back(((at + 1) % n, term, candidate));
                }
                Decision::Swallow => {}
                Decision::Won { .. } => return (nodes_as[at].id, tokens),
            }
        }
        panic!("no winner");
    }

    /// [`run_ring_of`] with equal logs: the id decides.
    fn run_ring(ids: &[u64], starters: &[usize]) -> (NodeId, usize) {
        let nodes: Vec<Candidate> = ids.iter().map(|id| cand(*id, 1)).collect();
        run_ring_of(&nodes, starters)
    }

    /// The largest id wins, whoever starts, when every log is as long.
    #[test]
    fn largest_id_wins() {
        let ids = [5, 9, 2, 7, 3];
        for s in 0..ids.len() {
            assert_eq!(run_ring(&ids, &[s]).0, NodeId(9));
        }
        assert_eq!(run_ring(&ids, &[0, 1, 2, 3, 4]).0, NodeId(9));
    }

    /// The node that showed the most wins, whatever its id and whoever starts.
    #[test]
    fn longest_log_wins() {
        let nodes = [
            cand(5, 40),
            cand(9, 12),
            cand(2, 41),
            cand(7, 41),
            cand(3, 0),
        ];
        for s in 0..nodes.len() {
            assert_eq!(run_ring_of(&nodes, &[s]).0, NodeId(7), "started by {s}");
        }
        assert_eq!(run_ring_of(&nodes, &[0, 1, 2, 3, 4]).0, NodeId(7));
    }

    /// The worst case (candidates decreasing along the ring, everyone starting) stays
    /// within n(n+1)/2 election tokens.
    #[test]
    fn tokens_within_chang_roberts_bound() {
        for n in [3usize, 10, 50] {
            let ids: Vec<u64> = (1..=n as u64).rev().collect();
            let all: Vec<usize> = (0..n).collect();
            let (winner, tokens) = run_ring(&ids, &all);
            assert_eq!(winner, NodeId(n as u64));
            assert!(tokens <= n * (n + 1) / 2, "{tokens} tokens for {n} nodes");
            // Ordered by log against the ids' order: the bound holds all the same.
            let nodes: Vec<Candidate> = (0..n as u64).map(|i| cand(i + 1, 100 - i)).collect();
            let (winner, tokens) = run_ring_of(&nodes, &all);
            assert_eq!(winner, NodeId(1));
            assert!(tokens <= n * (n + 1) / 2, "{tokens} tokens for {n} nodes");
        }
    }

    /// The participant flag swallows smaller tokens.
    #[test]
    fn participant_swallows_smaller_tokens() {
        let mut e = Election::default();
        e.start(cand(5, 10), 1);
        assert_eq!(e.on_token(cand(5, 10), 1, cand(3, 10)), Decision::Swallow);
        assert_eq!(e.on_token(cand(5, 10), 1, cand(9, 9)), Decision::Swallow);
        assert_eq!(
            e.on_token(cand(5, 10), 1, cand(8, 10)),
            Decision::Forward {
                term: 1,
                candidate: cand(8, 10)
            }
        );
        assert_eq!(
            e.on_token(cand(5, 10), 1, cand(1, 11)),
            Decision::Forward {
                term: 1,
                candidate: cand(1, 11)
            }
        );
    }

    /// A node compares the tokens of a round with itself as it entered the round: what it
    /// shows meanwhile does not change the round's order.
    #[test]
    fn compares_as_it_entered_the_round() {
        let mut e = Election::default();
        e.start(cand(5, 10), 1);
        // Shown more since: a candidate with the log it entered with still beats it.
        assert!(matches!(
            e.on_token(cand(5, 20), 1, cand(6, 10)),
            Decision::Forward { .. }
        ));
        // Its own token comes back (in a round where it passed no larger one): won,
        // whatever its log now.
        let mut e = Election::default();
        e.start(cand(5, 10), 1);
        assert_eq!(e.on_token(cand(5, 20), 1, cand(4, 9)), Decision::Swallow);
        assert_eq!(
            e.on_token(cand(5, 20), 1, cand(5, 10)),
            Decision::Won { term: 1 }
        );
    }

    #[test]
    fn old_rounds_are_discarded_and_new_rounds_reset() {
        let mut e = Election::default();
        e.start(cand(5, 1), 3);
        assert_eq!(e.on_token(cand(5, 1), 2, cand(9, 1)), Decision::Swallow);
        // Round 4 resets the participant flag: a smaller candidate is replaced, not swallowed.
        assert_eq!(
            e.on_token(cand(5, 1), 4, cand(3, 1)),
            Decision::Forward {
                term: 4,
                candidate: cand(5, 1)
            }
        );
        e.on_elected(4);
        assert!(!e.is_participant());
    }

    /// A token's copy that skipped a node makes no second winner. The ring is cat, ben,
    /// ann, dan; ben starts, and its token goes to ann and, ann being silent, to dan too.
    /// Ann (the longest log) puts herself in, and her token goes round; ben's copy goes
    /// round too, ahead of hers at cat or behind it. Either way ann alone wins.
    #[test]
    fn a_copy_of_a_token_makes_no_second_winner() {
        let (cat, ben, ann, dan) = (cand(1, 11), cand(3, 11), cand(4, 21), cand(2, 11));
        let forward = |candidate| Decision::Forward { term: 1, candidate };
        for copy_first_at_cat in [false, true] {
            let [mut c, mut b, mut a, mut d] = [(); 4].map(|_| Election::default());
            assert_eq!(b.start(ben, 1), forward(ben));
            assert_eq!(
                d.on_token(dan, 1, ben),
                forward(ben),
                "the copy, beyond ann"
            );
            assert_eq!(a.on_token(ann, 1, ben), forward(ann), "ann puts herself in");
            assert_eq!(d.on_token(dan, 1, ann), forward(ann));
            if copy_first_at_cat {
                assert_eq!(c.on_token(cat, 1, ben), forward(ben));
                assert_eq!(c.on_token(cat, 1, ann), forward(ann));
            } else {
                assert_eq!(c.on_token(cat, 1, ann), forward(ann));
                assert_eq!(
                    c.on_token(cat, 1, ben),
                    Decision::Swallow,
                    "behind a larger"
                );
            }
            assert_eq!(b.on_token(ben, 1, ann), forward(ann));
            // Ben's own token, back after ann's passed: swallowed, not a win.
            assert_eq!(b.on_token(ben, 1, ben), Decision::Swallow);
            assert_eq!(a.on_token(ann, 1, ann), Decision::Won { term: 1 });
        }
    }

    /// A node remembers the largest candidate it passed on in the current round, and
    /// forgets it when a newer round begins.
    #[test]
    fn remembers_the_candidate_it_carried() {
        let mut e = Election::default();
        e.on_token(cand(5, 1), 3, cand(7, 1));
        e.on_token(cand(5, 1), 3, cand(9, 1));
        assert!(e.carried(3, NodeId(9)));
        assert!(!e.carried(3, NodeId(7)), "only the largest");
        assert!(!e.carried(4, NodeId(9)), "only in its round");
        e.on_token(cand(5, 1), 4, cand(3, 1));
        assert!(!e.carried(4, NodeId(9)) && !e.carried(4, NodeId(3)));
        // An announcement of a newer round it took no part in: what it carried before
        // does not count as carried in that round.
        e.on_elected(6);
        assert!(!e.carried(6, NodeId(3)), "carried in round 4, not 6");
    }
}
