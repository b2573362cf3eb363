//! Room-message ordering: the leader's [`Sequencer`], each member's [`HoldBackQueue`],
//! the [`History`] of delivered messages, and the [`Outbox`] of this node's own
//! submissions awaiting commit.
//!
//! Pure data structures: no sending, no clocks. `proto::node` drives them.

mod submissions;

use crate::ids::{NodeId, OriginSeq, Seq};
use crate::wire::{ChatEntry, Submit};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use submissions::Submissions;

/// Submissions the sequencer holds per origin while waiting for an earlier one.
pub const MAX_HELD_PER_ORIGIN: usize = 1024;
/// Room messages a member holds back while waiting for a gap to fill.
pub const MAX_HOLDBACK: usize = 10_000;

/// One origin's submissions as the sequencer sees them.
#[derive(Debug, Clone)]
struct OriginQueue {
    /// Every number below this is sequenced (or confirmed by the origin).
    floor: OriginSeq,
    /// Numbers at or above the floor known to be sequenced (after a failover a later
    /// submission can survive while an earlier one was lost with the old leader).
    done: BTreeSet<OriginSeq>,
    /// Submissions waiting for an earlier one.
    held: BTreeMap<OriginSeq, Submit>,
}

impl OriginQueue {
    fn mark_done(&mut self, s: OriginSeq) {
        if s >= self.floor {
            self.done.insert(s);
        }
        self.compact();
    }

    fn raise_floor(&mut self, to: OriginSeq) {
        if to > self.floor {
            self.floor = to;
            self.done = self.done.split_off(&to);
            self.held = self.held.split_off(&to);
        }
        self.compact();
    }

    fn compact(&mut self) {
        while self.done.remove(&self.floor) {
            self.floor = self.floor.next();
        }
    }
}

/// The leader's sequencer: gives each new submission the next global sequence number,
/// keeping each origin's messages in the order the origin sent them (per-sender FIFO)
/// and recognising retried submissions by `(origin, origin_seq)`.
#[derive(Debug, Clone)]
pub struct Sequencer {
    next: Seq,
    origins: BTreeMap<NodeId, OriginQueue>,
}

/// What the sequencer did with a submission.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// These entries are now sequenced (the submission and any held ones it released).
    Sequenced(Vec<ChatEntry>),
    /// Held until an earlier submission from the same origin arrives.
    Held,
    /// Already sequenced earlier.
    Duplicate,
    /// The origin has too many held submissions; dropped (the origin resubmits later).
    Overflow,
}

impl Sequencer {
    /// A sequencer whose next number is `next`, knowing the submissions already in `history`.
    pub fn resume(next: Seq, history: &History) -> Self {
        let mut s = Sequencer {
            next,
            origins: BTreeMap::new(),
        };
        for e in history.iter() {
            s.note_sequenced(e.origin, e.origin_seq);
        }
        s
    }

    /// The number the next sequenced message gets.
    pub fn next_seq(&self) -> Seq {
        self.next
    }

    /// Records that `origin`'s submission `origin_seq` is sequenced already.
    pub fn note_sequenced(&mut self, origin: NodeId, origin_seq: OriginSeq) {
        self.queue(origin).mark_done(origin_seq);
    }

    fn queue(&mut self, origin: NodeId) -> &mut OriginQueue {
        self.origins.entry(origin).or_insert(OriginQueue {
            floor: OriginSeq(1),
            done: BTreeSet::new(),
            held: BTreeMap::new(),
        })
    }

    /// Gives a message sequenced before (under a numbering this room lost) the next
    /// number, unless its submission is sequenced already.
    pub fn republish(&mut self, mut e: ChatEntry) -> Option<ChatEntry> {
        let q = self.queue(e.origin);
        if e.is_filler() || e.origin_seq < q.floor || q.done.contains(&e.origin_seq) {
            return None;
        }
        q.mark_done(e.origin_seq);
        e.seq = self.next;
        self.next = self.next.next();
        Some(e)
    }

    /// Accepts a submission from `origin` under `name`.
    pub fn accept(&mut self, origin: NodeId, name: &str, s: Submit) -> Accepted {
        let mut next = self.next;
        let q = self.queue(origin);
        q.raise_floor(s.committed_below);
        if s.origin_seq < q.floor || q.done.contains(&s.origin_seq) {
            return Accepted::Duplicate;
        }
        let was_held = q.held.contains_key(&s.origin_seq);
        if !was_held {
            if q.held.len() >= MAX_HELD_PER_ORIGIN {
                return Accepted::Overflow;
            }
            q.held.insert(s.origin_seq, s);
        }
        // Whatever is now next for this origin (this submission, or one held earlier that
        // `committed_below` just made ready) is sequenced, with all that follows it.
        let mut out = Vec::new();
        let mut current = q.held.remove(&q.floor);
        while let Some(s) = current {
            out.push(ChatEntry {
                seq: next,
                origin,
                name: name.to_string(),
                origin_seq: s.origin_seq,
                lamport: s.lamport,
                sent_at: s.sent_at,
                text: s.text,
            });
            next = next.next();
            q.mark_done(s.origin_seq);
            current = q.held.remove(&q.floor);
        }
        self.next = next;
        match (out.is_empty(), was_held) {
            (false, _) => Accepted::Sequenced(out),
            (true, true) => Accepted::Duplicate,
            (true, false) => Accepted::Held,
        }
    }
}

/// A member's hold-back queue: room messages are shown strictly in sequence order; an
/// out-of-order message waits here until the gap before it is filled.
#[derive(Debug, Clone)]
pub struct HoldBackQueue {
    next: Seq,
    held: BTreeMap<Seq, ChatEntry>,
}

impl HoldBackQueue {
    /// A queue that will deliver `next` first.
    pub fn new(next: Seq) -> Self {
        HoldBackQueue {
            next,
            held: BTreeMap::new(),
        }
    }

    /// The next sequence number to deliver.
    pub fn next(&self) -> Seq {
        self.next
    }

    /// Offers a sequenced message; `false` if it was delivered or held already (a
    /// duplicate) or lies too far ahead to hold.
    pub fn offer(&mut self, e: ChatEntry) -> bool {
        if e.seq < self.next || self.held.contains_key(&e.seq) {
            return false;
        }
        if e.seq.0 - self.next.0 >= MAX_HOLDBACK as u64 {
            return false;
        }
        self.held.insert(e.seq, e);
        true
    }

    /// Takes `e` to deliver at once if it is the next one and nothing is held (the next
    /// is then the one after it); otherwise hands it back, to [`HoldBackQueue::offer`].
    pub fn take_if_next(&mut self, e: ChatEntry) -> Result<ChatEntry, ChatEntry> {
        if e.seq == self.next && self.held.is_empty() {
            self.next = self.next.next();
            Ok(e)
        } else {
            Err(e)
        }
    }

    /// Takes the next message if it is here.
    pub fn pop_ready(&mut self) -> Option<ChatEntry> {
        let e = self.held.remove(&self.next)?;
        self.next = self.next.next();
        Some(e)
    }

    /// The highest sequence number delivered or held (`next - 1` when nothing is held).
    pub fn high(&self) -> Seq {
        self.held
            .last_key_value()
            .map_or(Seq(self.next.0.saturating_sub(1)), |(s, _)| *s)
    }

    /// Whether `seq` is held.
    pub fn has(&self, seq: Seq) -> bool {
        self.held.contains_key(&seq)
    }

    /// The held messages from `from` on.
    pub fn held_from(&self, from: Seq) -> impl DoubleEndedIterator<Item = &ChatEntry> {
        self.held.range(from..).map(|(_, e)| e)
    }

    /// Moves the delivery point to `next`, dropping what is held below it. Used when a
    /// member re-registers with a leader whose sequence diverged from what it had.
    pub fn reset(&mut self, next: Seq) {
        self.held = self.held.split_off(&next);
        self.next = next;
    }

    /// The first gap, `(first missing, last missing)`, if a later message is held.
    pub fn missing(&self) -> Option<(Seq, Seq)> {
        let (&first_held, _) = self.held.first_key_value()?;
        (first_held > self.next).then(|| (self.next, Seq(first_held.0 - 1)))
    }
}

/// The room messages this node has delivered, in sequence order, up to a bound, indexed
/// by submission `(origin, origin_seq)` so a message is recognised if it comes again.
#[derive(Debug, Clone)]
pub struct History {
    entries: VecDeque<ChatEntry>,
    by_submission: Submissions,
    limit: usize,
}

impl History {
    /// An empty history keeping at most `limit` messages (the oldest go first).
    pub fn new(limit: usize) -> Self {
        History {
            entries: VecDeque::new(),
            by_submission: Submissions::default(),
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
        }
        self.entries.push_back(e);
    }

    /// Drops the kept messages numbered `from` or later (a sequence that diverged from the
    /// leader's), so they are never served to others. What was shown stays recorded, so a
    /// message is not shown again when it comes back under the leader's numbering.
    pub fn forget_from(&mut self, from: Seq) {
        let keep = self.entries.partition_point(|e| e.seq < from);
        self.entries.truncate(keep);
    }

    /// Whether the submission `(origin, origin_seq)` was delivered (under any number).
    pub fn contains_submission(&self, origin: NodeId, origin_seq: OriginSeq) -> bool {
        self.by_submission.contains(origin, origin_seq)
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

    /// How many submissions await confirmation.
    pub fn len(&self) -> usize {
        self.unconfirmed.len()
    }

    /// Whether every submission is confirmed.
    pub fn is_empty(&self) -> bool {
        self.unconfirmed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Lamport, WallMillis};

    fn submit(n: u64, below: u64) -> Submit {
        Submit {
            origin_seq: OriginSeq(n),
            committed_below: OriginSeq(below),
            name: "a".into(),
            lamport: Lamport(n),
            sent_at: WallMillis(0),
            text: format!("m{n}"),
        }
    }

    fn seqs(a: Accepted) -> Vec<(u64, u64)> {
        match a {
            Accepted::Sequenced(v) => v.iter().map(|e| (e.seq.0, e.origin_seq.0)).collect(),
            other => panic!("expected sequenced, got {other:?}"),
        }
    }

    #[test]
    fn sequencer_numbers_in_arrival_order_across_origins() {
        let mut s = Sequencer::resume(Seq(1), &History::new(10));
        assert_eq!(seqs(s.accept(NodeId(1), "a", submit(1, 1))), vec![(1, 1)]);
        assert_eq!(seqs(s.accept(NodeId(2), "b", submit(1, 1))), vec![(2, 1)]);
        assert_eq!(s.next_seq(), Seq(3));
    }

    /// A retried submission is recognised by (origin, origin_seq) and never posted twice.
    #[test]
    fn sequencer_recognises_retries() {
        let mut s = Sequencer::resume(Seq(1), &History::new(10));
        seqs(s.accept(NodeId(1), "a", submit(1, 1)));
        assert_eq!(s.accept(NodeId(1), "a", submit(1, 1)), Accepted::Duplicate);
        assert_eq!(s.next_seq(), Seq(2));
    }

    /// Per-sender FIFO: a later submission that overtook an earlier one waits for it.
    #[test]
    fn sequencer_keeps_each_origins_order() {
        let mut s = Sequencer::resume(Seq(1), &History::new(10));
        assert_eq!(s.accept(NodeId(1), "a", submit(2, 1)), Accepted::Held);
        assert_eq!(s.accept(NodeId(1), "a", submit(2, 1)), Accepted::Duplicate);
        assert_eq!(
            seqs(s.accept(NodeId(1), "a", submit(1, 1))),
            vec![(1, 1), (2, 2)]
        );
    }

    /// A new leader that never saw an origin's early messages trusts the origin's
    /// `committed_below` instead of waiting forever for number 1.
    #[test]
    fn sequencer_skips_what_the_origin_says_is_committed() {
        let mut s = Sequencer::resume(Seq(40), &History::new(10));
        assert_eq!(seqs(s.accept(NodeId(1), "a", submit(7, 7))), vec![(40, 7)]);
    }

    /// A held submission is released when the origin says the one it waited for was
    /// committed elsewhere (by a leader on the other side of a partition, say).
    #[test]
    fn sequencer_releases_held_when_committed_below_moves() {
        let mut s = Sequencer::resume(Seq(1), &History::new(10));
        assert_eq!(seqs(s.accept(NodeId(1), "a", submit(1, 1))), vec![(1, 1)]);
        assert_eq!(s.accept(NodeId(1), "a", submit(3, 2)), Accepted::Held);
        // The retry of 3 says everything below 3 is committed: 3 goes out now.
        assert_eq!(seqs(s.accept(NodeId(1), "a", submit(3, 3))), vec![(2, 3)]);
    }

    /// After a failover a later submission can survive while an earlier one was lost with
    /// the old leader: the earlier one is sequenced when resubmitted, the later is not again.
    #[test]
    fn sequencer_takes_a_lost_submission_below_a_surviving_one() {
        let mut s = Sequencer::resume(Seq(30), &History::new(10));
        s.note_sequenced(NodeId(1), OriginSeq(6));
        assert_eq!(s.accept(NodeId(1), "a", submit(6, 5)), Accepted::Duplicate);
        assert_eq!(seqs(s.accept(NodeId(1), "a", submit(5, 5))), vec![(30, 5)]);
        assert_eq!(seqs(s.accept(NodeId(1), "a", submit(7, 5))), vec![(31, 7)]);
    }

    #[test]
    fn sequencer_resumes_from_history() {
        let mut h = History::new(10);
        h.push(ChatEntry {
            seq: Seq(1),
            origin: NodeId(1),
            name: "a".into(),
            origin_seq: OriginSeq(1),
            lamport: Lamport(1),
            sent_at: WallMillis(0),
            text: "x".into(),
        });
        let mut s = Sequencer::resume(Seq(2), &h);
        assert_eq!(s.accept(NodeId(1), "a", submit(1, 1)), Accepted::Duplicate);
    }

    fn entry(seq: u64) -> ChatEntry {
        ChatEntry {
            seq: Seq(seq),
            origin: NodeId(1),
            name: "a".into(),
            origin_seq: OriginSeq(seq),
            lamport: Lamport(seq),
            sent_at: WallMillis(0),
            text: format!("m{seq}"),
        }
    }

    #[test]
    fn holdback_delivers_in_order_and_reports_gaps() {
        let mut q = HoldBackQueue::new(Seq(1));
        assert!(q.offer(entry(3)));
        assert!(q.pop_ready().is_none());
        assert_eq!(q.missing(), Some((Seq(1), Seq(2))));
        assert!(q.offer(entry(1)));
        assert_eq!(q.pop_ready().unwrap().seq, Seq(1));
        assert!(q.pop_ready().is_none());
        assert_eq!(q.missing(), Some((Seq(2), Seq(2))));
        assert!(q.offer(entry(2)));
        assert!(!q.offer(entry(2)), "duplicate while held");
        assert_eq!(q.pop_ready().unwrap().seq, Seq(2));
        assert_eq!(q.pop_ready().unwrap().seq, Seq(3));
        assert!(!q.offer(entry(1)), "duplicate after delivery");
        assert_eq!(q.missing(), None);
    }

    /// Only the next message, with nothing held, skips the queue; anything else is handed
    /// back and held (or refused) as before, so order is kept.
    #[test]
    fn holdback_takes_the_next_message_directly_only_when_nothing_is_held() {
        let mut q = HoldBackQueue::new(Seq(1));
        assert_eq!(q.take_if_next(entry(1)).map(|e| e.seq), Ok(Seq(1)));
        assert_eq!(q.next(), Seq(2));
        let back = q.take_if_next(entry(3)).unwrap_err();
        assert!(q.offer(back));
        // 2 is next, but 3 is held: 2 goes through the queue, and 3 follows it.
        let back = q.take_if_next(entry(2)).unwrap_err();
        assert!(q.offer(back));
        assert_eq!(q.pop_ready().unwrap().seq, Seq(2));
        assert_eq!(q.pop_ready().unwrap().seq, Seq(3));
        assert!(
            q.take_if_next(entry(3)).is_err(),
            "a duplicate is not taken"
        );
        assert!(!q.offer(entry(3)));
        assert_eq!(q.next(), Seq(4));
    }

    #[test]
    fn history_is_bounded_and_ranges_by_seq() {
        let mut h = History::new(3);
        for i in 1..=5 {
            h.push(entry(i));
        }
        assert_eq!(h.len(), 3);
        let r: Vec<u64> = h.range(Seq(2), Seq(4)).map(|e| e.seq.0).collect();
        assert_eq!(r, vec![3, 4]);
    }

    #[test]
    fn outbox_tracks_committed_below() {
        let mut o = Outbox::default();
        let a = o.push(submit(0, 0));
        let b = o.push(submit(0, 0));
        assert_eq!((a.origin_seq, b.origin_seq), (OriginSeq(1), OriginSeq(2)));
        assert_eq!(a.committed_below, OriginSeq(1), "a itself is not committed");
        assert_eq!(b.committed_below, OriginSeq(1));
        o.confirm(OriginSeq(1));
        assert_eq!(o.committed_below(), OriginSeq(2));
        assert_eq!(o.unconfirmed()[0].committed_below, OriginSeq(2));
        o.confirm(OriginSeq(2));
        assert_eq!(o.committed_below(), OriginSeq(3));
    }
}
