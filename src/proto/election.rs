//! Chang-Roberts leader election on a unidirectional ring.
//!
//! A starter marks itself participant and sends `Election(term, own id)` to its successor.
//! On receiving `Election(term, c)`:
//! - `c > me`: mark participant, pass `c` on;
//! - `c < me` and not participant: mark participant, pass `me` on instead;
//! - `c < me` and participant: swallow the token (a larger one is already travelling);
//! - `c == me`: the token went all the way round; this node won.
//!
//! The winner sends `Elected` round the ring; each node clears its participant flag. With
//! n nodes this takes at most n(n+1)/2 election tokens plus n announcements.
//!
//! Terms separate rounds: a token of an older round is discarded, a newer round resets the
//! participant flag. This module only decides; the node sends what it returns.

use crate::ids::NodeId;

/// What to do with a received election token.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send `Election(term, candidate)` to the successor.
    Forward {
        /// The round.
        term: u64,
        /// The candidate to pass on.
        candidate: NodeId,
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
    /// The largest candidate of round `term` this node passed on: the winner's token
    /// goes all the way round, so every node on the ring passes the winner on before
    /// the winner's announcement comes.
    carried: Option<NodeId>,
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
        self.term == term && self.carried == Some(candidate)
    }

    /// Starts round `term` (above every term known); returns the token to send.
    pub fn start(&mut self, me: NodeId, term: u64) -> Decision {
        if term > self.term {
            self.carried = None;
        }
        self.term = self.term.max(term);
        self.participant = true;
        Decision::Forward {
            term: self.term,
            candidate: me,
        }
    }

    /// Applies the Chang-Roberts rules to a received token.
    pub fn on_token(&mut self, me: NodeId, term: u64, candidate: NodeId) -> Decision {
        if term < self.term {
            return Decision::Swallow;
        }
        if term > self.term {
            self.term = term;
            self.participant = false;
            self.carried = None;
        }
        if candidate > me {
            self.participant = true;
            self.carried = self.carried.max(Some(candidate));
            Decision::Forward { term, candidate }
        } else if candidate == me {
            Decision::Won { term }
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

    /// Records the announcement of round `term`: the election is over.
    pub fn on_elected(&mut self, term: u64) {
        self.term = self.term.max(term);
        self.participant = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a whole ring in memory: `starters` start at once; returns (winner, tokens).
    fn run_ring(ids: &[u64], starters: &[usize]) -> (NodeId, usize) {
        let n = ids.len();
        let mut nodes = vec![Election::default(); n];
        let mut queue = std::collections::VecDeque::new();
        for &s in starters {
            if let Decision::Forward { term, candidate } = nodes[s].start(NodeId(ids[s]), 1) {
                queue.push_back(((s + 1) % n, term, candidate));
            }
        }
        let mut tokens = queue.len();
        while let Some((at, term, c)) = queue.pop_front() {
            match nodes[at].on_token(NodeId(ids[at]), term, c) {
                Decision::Forward { term, candidate } => {
                    tokens += 1;
                    queue.push_back(((at + 1) % n, term, candidate));
                }
                Decision::Swallow => {}
                Decision::Won { .. } => return (NodeId(ids[at]), tokens),
            }
        }
        panic!("no winner");
    }

    /// The largest id wins, whoever starts.
    #[test]
    fn largest_id_wins() {
        let ids = [5, 9, 2, 7, 3];
        for s in 0..ids.len() {
            assert_eq!(run_ring(&ids, &[s]).0, NodeId(9));
        }
        assert_eq!(run_ring(&ids, &[0, 1, 2, 3, 4]).0, NodeId(9));
    }

    /// The worst case (ids decreasing along the ring, everyone starting) stays within
    /// n(n+1)/2 election tokens.
    #[test]
    fn tokens_within_chang_roberts_bound() {
        for n in [3usize, 10, 50] {
            let ids: Vec<u64> = (1..=n as u64).rev().collect();
            let all: Vec<usize> = (0..n).collect();
            let (winner, tokens) = run_ring(&ids, &all);
            assert_eq!(winner, NodeId(n as u64));
            assert!(tokens <= n * (n + 1) / 2, "{tokens} tokens for {n} nodes");
        }
    }

    /// The participant flag swallows smaller tokens.
    #[test]
    fn participant_swallows_smaller_tokens() {
        let mut e = Election::default();
        e.start(NodeId(5), 1);
        assert_eq!(e.on_token(NodeId(5), 1, NodeId(3)), Decision::Swallow);
        assert_eq!(
            e.on_token(NodeId(5), 1, NodeId(8)),
            Decision::Forward {
                term: 1,
                candidate: NodeId(8)
            }
        );
    }

    #[test]
    fn old_rounds_are_discarded_and_new_rounds_reset() {
        let mut e = Election::default();
        e.start(NodeId(5), 3);
        assert_eq!(e.on_token(NodeId(5), 2, NodeId(9)), Decision::Swallow);
        // Round 4 resets the participant flag: a smaller candidate is replaced, not swallowed.
        assert_eq!(
            e.on_token(NodeId(5), 4, NodeId(3)),
            Decision::Forward {
                term: 4,
                candidate: NodeId(5)
            }
        );
        e.on_elected(4);
        assert!(!e.is_participant());
    }

    /// A node remembers the largest candidate it passed on in the current round, and
    /// forgets it when a newer round begins.
    #[test]
    fn remembers_the_candidate_it_carried() {
        let mut e = Election::default();
        e.on_token(NodeId(5), 3, NodeId(7));
        e.on_token(NodeId(5), 3, NodeId(9));
        assert!(e.carried(3, NodeId(9)));
        assert!(!e.carried(3, NodeId(7)), "only the largest");
        assert!(!e.carried(4, NodeId(9)), "only in its round");
        e.on_token(NodeId(5), 4, NodeId(3));
        assert!(!e.carried(4, NodeId(9)) && !e.carried(4, NodeId(3)));
    }
}
