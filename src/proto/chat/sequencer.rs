//! The leader's [`Sequencer`]: each origin's submissions in the order sent, one global
//! sequence number each.

use super::*;
use crate::ids::{Lamport, WallMillis};

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
    /// Submissions a survivor's take-over answer said were sequenced before this node
    /// led, unproven (see [`Sequencer::note_claimed`]).
    claims: BTreeMap<(NodeId, OriginSeq), Claim>,
}

/// What one survivor said an origin's submission was: taken as sequenced only when the
/// origin's own submission of that number (checked against its proof of origin before it
/// reaches the sequencer) says the same.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Claim {
    lamport: Lamport,
    sent_at: WallMillis,
    text: String,
}

impl Claim {
    fn of(e: &ChatEntry) -> Claim {
        Claim {
            lamport: e.lamport,
            sent_at: e.sent_at,
            text: e.text.clone(),
        }
    }

    /// Whether submission `s` is the message claimed.
    fn is(&self, s: &Submit) -> bool {
        self.lamport == s.lamport && self.sent_at == s.sent_at && self.text == s.text
    }
}

/// What the origin's own submission made of a claim (see [`Sequencer::settle_claim`]).
#[derive(Debug, PartialEq, Eq)]
pub enum ClaimCheck {
    /// Nothing was claimed of that submission.
    Unclaimed,
    /// The claim was true: the submission is sequenced already.
    Confirmed,
    /// The claim was false (another message under the origin's number): forgotten, and
    /// the submission is sequenced as new.
    Refuted,
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
            claims: BTreeMap::new(),
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

    /// Records that a survivor's answer said `e` was sequenced before this node led, on its
    /// word alone: `e`'s origin is not taken to have sent its number until the origin's
    /// own submission of it matches (see [`Sequencer::settle_claim`]). So a made-up copy
    /// cannot make the sequencer take a genuine submission as sent already.
    pub fn note_claimed(&mut self, e: &ChatEntry) {
        self.claims.insert((e.origin, e.origin_seq), Claim::of(e));
    }

    /// Settles what was claimed of submission `s` of `origin` (proven its origin's by the
    /// caller): a true claim marks it sequenced, a false one is forgotten.
    pub fn settle_claim(&mut self, origin: NodeId, s: &Submit) -> ClaimCheck {
        let Some(claim) = self.claims.remove(&(origin, s.origin_seq)) else {
            return ClaimCheck::Unclaimed;
        };
        if claim.is(s) {
            self.note_sequenced(origin, s.origin_seq);
            ClaimCheck::Confirmed
        } else {
            ClaimCheck::Refuted
        }
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
        let duplicate = s.origin_seq < q.floor || q.done.contains(&s.origin_seq);
        let was_held = duplicate || q.held.contains_key(&s.origin_seq);
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
        // `committed_below` or a confirmed claim just made ready) is sequenced, with all
        // that follows it (a repeat then releases what waited for it).
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
        // Claims below the origin's floor are settled: sequenced, or committed on the
        // origin's own word.
        let floor = q.floor;
        self.next = next;
        if self.claims.keys().next().is_some() {
            let below: Vec<_> = self
                .claims
                .range((origin, OriginSeq(0))..(origin, floor))
                .map(|(k, _)| *k)
                .collect();
            for k in below {
                self.claims.remove(&k);
            }
        }
        match (out.is_empty(), was_held) {
            (false, _) => Accepted::Sequenced(out),
            (true, true) => Accepted::Duplicate,
            (true, false) => Accepted::Held,
        }
    }
}
