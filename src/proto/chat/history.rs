//! The [`History`] of delivered room messages.

use super::*;

/// The room messages this node has delivered, in sequence order, up to a bound, indexed
/// by submission `(origin, origin_seq)` so a message is recognised if it comes again.
#[derive(Debug, Clone)]
pub struct History {
    entries: VecDeque<ChatEntry>,
    by_submission: Submissions,
    /// Every submission shown, kept or not.
    shown: Shown,
    /// The submissions shown in this log, kept or not: as `shown`, less what was shown in
    /// a numbering this node has left since (see [`History::forget_from`]).
    in_log: Shown,
    limit: usize,
}

impl History {
    /// An empty history keeping at most `limit` messages (the oldest go first).
    pub fn new(limit: usize) -> Self {
        History {
            entries: VecDeque::new(),
            by_submission: Submissions::default(),
            shown: Shown::default(),
            in_log: Shown::default(),
            limit: limit.max(1),
        }
    }

    /// Appends a delivered message.
    pub fn push(&mut self, e: ChatEntry) {
        if self.entries.len() == self.limit
            && let Some(old) = self.entries.pop_front()
        {
            self.by_submission.remove(old.origin, old.origin_seq);
        }
        if !e.is_filler() {
            self.by_submission.insert(e.origin, e.origin_seq, e.seq);
            self.shown.insert(e.origin, e.origin_seq);
            self.in_log.insert(e.origin, e.origin_seq);
        }
        self.entries.push_back(e);
    }

    /// Drops the kept messages numbered `from` or later (a sequence that diverged from the
    /// leader's), so they are never served to others. What was shown stays recorded, so a
    /// message is not shown again when it comes back under the leader's numbering.
    pub fn forget_from(&mut self, from: Seq) {
        let keep = self.entries.partition_point(|e| e.seq < from);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            // What is known to be in this log is what is kept of it now.
            self.in_log = Shown::default();
            for e in self.entries.iter().filter(|e| !e.is_filler()) {
                self.in_log.insert(e.origin, e.origin_seq);
            }
        }
    }

    /// Whether the submission `(origin, origin_seq)` was delivered (under any number),
    /// kept still or not.
    pub fn contains_submission(&self, origin: NodeId, origin_seq: OriginSeq) -> bool {
        self.shown.contains(origin, origin_seq)
    }

    /// Every kept message, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &ChatEntry> {
        self.entries.iter()
    }

    /// The kept messages with `from <= seq <= to`.
    pub fn range(&self, from: Seq, to: Seq) -> impl Iterator<Item = &ChatEntry> {
        let start = self.entries.partition_point(|e| e.seq < from);
        self.entries.range(start..).take_while(move |e| e.seq <= to)
    }

    /// Whether the submission `(origin, origin_seq)` was delivered in this log (so it is
    /// committed in it), kept still or not; not for one shown in a numbering left since.
    pub fn in_log(&self, origin: NodeId, origin_seq: OriginSeq) -> bool {
        self.in_log.contains(origin, origin_seq)
    }

    /// The message `origin` submitted as `origin_seq`, if kept.
    pub fn find_submission(&self, origin: NodeId, origin_seq: OriginSeq) -> Option<&ChatEntry> {
        let seq = self.by_submission.get(origin, origin_seq)?;
        self.range(seq, seq).next()
    }

    /// How many messages are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
