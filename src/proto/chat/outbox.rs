//! The [`Outbox`] of this node's own room messages awaiting commit.

use super::*;

/// This node's own room messages that the leader has not yet been seen to commit.
#[derive(Debug, Clone)]
pub struct Outbox {
    next: OriginSeq,
    unconfirmed: BTreeMap<OriginSeq, Submit>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            next: OriginSeq(1),
            unconfirmed: BTreeMap::new(),
        }
    }
}

impl Outbox {
    /// Numbers a new submission and keeps it until confirmed.
    pub fn push(&mut self, mut s: Submit) -> Submit {
        s.origin_seq = self.next;
        self.next = self.next.next();
        self.unconfirmed.insert(s.origin_seq, s.clone());
        s.committed_below = self.committed_below();
        s
    }

    /// Marks a submission committed (seen sequenced); returns it the first time.
    pub fn confirm(&mut self, origin_seq: OriginSeq) -> Option<Submit> {
        self.unconfirmed.remove(&origin_seq)
    }

    /// The lowest unconfirmed number: everything below it is committed.
    pub fn committed_below(&self) -> OriginSeq {
        self.unconfirmed.keys().next().copied().unwrap_or(self.next)
    }

    /// The unconfirmed submissions, oldest first, with `committed_below` brought up to date.
    pub fn unconfirmed(&self) -> Vec<Submit> {
        let below = self.committed_below();
        self.unconfirmed
            .values()
            .map(|s| Submit {
                committed_below: below,
                ..s.clone()
            })
            .collect()
    }

    /// The unconfirmed submission numbered `origin_seq`.
    pub fn get(&self, origin_seq: OriginSeq) -> Option<&Submit> {
        self.unconfirmed.get(&origin_seq)
    }

    /// Sets the proof of origin of the unconfirmed submission numbered `origin_seq`.
    pub fn set_proof(&mut self, origin_seq: OriginSeq, proof: crate::wire::Provenance) {
        if let Some(s) = self.unconfirmed.get_mut(&origin_seq) {
            s.proof = proof;
        }
    }

    /// How many submissions await confirmation.
    pub fn len(&self) -> usize {
        self.unconfirmed.len()
    }

    /// Whether every submission is confirmed.
    pub fn is_empty(&self) -> bool {
        self.unconfirmed.is_empty()
    }
}
