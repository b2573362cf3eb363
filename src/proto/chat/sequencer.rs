//! The leader's [`Sequencer`]: each origin's submissions in the order sent, one global
//! sequence number each.

use super::*;

/// Submissions the sequencer holds per origin while waiting for an earlier one.
pub const MAX_HELD_PER_ORIGIN: usize = 1024;

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
    /// The origin has too many held submissions, all nearer its next one; dropped (the
    /// origin resubmits later). A submission that displaces a farther one is `Held`.
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

    /// Takes the next number for an entry that is not a submission (a configuration
    /// change).
    pub fn take_next(&mut self) -> Seq {
        let seq = self.next;
        self.next = self.next.next();
        seq
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
            // Full: the one the others wait for always enters (refused, it would leave
            // them waiting for good), and a nearer one takes the place of the farthest.
            if q.held.len() >= MAX_HELD_PER_ORIGIN && s.origin_seq != q.floor {
                match q.held.last_key_value() {
                    Some((far, _)) if *far > s.origin_seq => {
                        q.held.pop_last();
                    }
                    _ => return Accepted::Overflow,
                }
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
                term: 0,
                proof: s.proof,
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
