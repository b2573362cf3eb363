//! [`Submissions`]: which submissions `(origin, origin_seq)` the history holds, and under
//! which sequence number.
//!
//! Kept per origin as a run sorted by origin number: an origin's messages are sequenced in
//! the order it numbered them, so a new one goes at the back and the oldest leaves from
//! the front, and a lookup is a binary search in contiguous memory. An out-of-order one
//! (possible after a leader change) is inserted in its place.

use crate::ids::{NodeId, OriginSeq, Seq};
use std::collections::{BTreeMap, VecDeque};

/// A map from `(origin, origin_seq)` to `Seq`.
#[derive(Debug, Clone, Default)]
pub struct Submissions {
    by_origin: BTreeMap<NodeId, VecDeque<(OriginSeq, Seq)>>,
}

impl Submissions {
    /// Records `(origin, origin_seq)` under `seq`, replacing an earlier record of it.
    pub fn insert(&mut self, origin: NodeId, origin_seq: OriginSeq, seq: Seq) {
        let run = self.by_origin.entry(origin).or_default();
        if run.back().is_none_or(|&(last, _)| last < origin_seq) {
            return run.push_back((origin_seq, seq));
        }
        match run.binary_search_by_key(&origin_seq, |&(s, _)| s) {
            Ok(i) => run[i].1 = seq,
            Err(i) => run.insert(i, (origin_seq, seq)),
        }
    }

    /// Forgets `(origin, origin_seq)`.
    pub fn remove(&mut self, origin: NodeId, origin_seq: OriginSeq) {
        let Some(run) = self.by_origin.get_mut(&origin) else {
            return;
        };
        if run.front().is_some_and(|&(first, _)| first == origin_seq) {
            run.pop_front();
        } else if let Ok(i) = run.binary_search_by_key(&origin_seq, |&(s, _)| s) {
            run.remove(i);
        }
        if run.is_empty() {
            self.by_origin.remove(&origin);
        }
    }

    /// The sequence number `(origin, origin_seq)` was recorded under.
    pub fn get(&self, origin: NodeId, origin_seq: OriginSeq) -> Option<Seq> {
        let run = self.by_origin.get(&origin)?;
        // Mostly asked of a new message, past every one recorded.
        if run.back().is_none_or(|&(last, _)| last < origin_seq) {
            return None;
        }
        let i = run.binary_search_by_key(&origin_seq, |&(s, _)| s).ok()?;
        Some(run[i].1)
    }
}

/// Every submission `(origin, origin_seq)` ever recorded, kept as runs of consecutive
/// origin numbers per origin: an origin's messages are shown in the order it numbered
/// them (but after a leader change), so an origin takes one run, or a few, however many
/// of its messages the room has seen.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    /// Per origin, the first number of each run and its last.
    runs: BTreeMap<NodeId, BTreeMap<u64, u64>>,
}

impl Shown {
    /// Records `(origin, origin_seq)`.
    pub fn insert(&mut self, origin: NodeId, origin_seq: OriginSeq) {
        let runs = self.runs.entry(origin).or_default();
        let k = origin_seq.0;
        let mut start = k;
        if let Some((&s, &e)) = runs.range(..=k).next_back() {
            if k <= e {
                return;
            }
            if e.checked_add(1) == Some(k) {
                start = s;
            }
        }
        let end = match k.checked_add(1).and_then(|after| runs.remove(&after)) {
            Some(end) => end,
            None => k,
        };
        runs.insert(start, end);
    }

    /// Whether `(origin, origin_seq)` was recorded.
    pub fn contains(&self, origin: NodeId, origin_seq: OriginSeq) -> bool {
        self.runs
            .get(&origin)
            .and_then(|runs| runs.range(..=origin_seq.0).next_back())
            .is_some_and(|(_, &end)| origin_seq.0 <= end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next step of a fixed pseudo-random walk.
    fn step(x: &mut u64) -> u64 {
        *x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *x
    }

    /// Against a plain ordered map, for any order of inserts and removes.
    #[test]
    fn behaves_as_a_map_whatever_the_order() {
        let mut model: BTreeMap<(NodeId, OriginSeq), Seq> = BTreeMap::new();
        let mut s = Submissions::default();
        // A fixed pseudo-random walk: mostly in order, some out of order, repeats.
        let mut x: u64 = 7;
        for i in 0..5000u64 {
            let x = step(&mut x);
            let origin = NodeId(x >> 62);
            let k = OriginSeq(match (x >> 40) % 4 {
                0 => (x >> 20) % 64,
                _ => i / 4,
            });
            if (x >> 10).is_multiple_of(3) {
                model.remove(&(origin, k));
                s.remove(origin, k);
            } else {
                model.insert((origin, k), Seq(i));
                s.insert(origin, k, Seq(i));
            }
            let probe = OriginSeq((x >> 30) % 1300);
            assert_eq!(s.get(origin, probe), model.get(&(origin, probe)).copied());
        }
        for (&(origin, k), &seq) in &model {
            assert_eq!(s.get(origin, k), Some(seq));
        }
        let held: usize = s.by_origin.values().map(VecDeque::len).sum();
        assert_eq!(held, model.len());
        assert!(s.by_origin.values().all(|run| !run.is_empty()));
    }

    /// Against a plain set, for any order of inserts.
    #[test]
    fn shown_runs_answer_as_a_set() {
        let mut model = std::collections::BTreeSet::new();
        let mut shown = Shown::default();
        let mut x: u64 = 11;
        for i in 0..4000u64 {
            let x = step(&mut x);
            let origin = NodeId(x >> 63);
            let k = match (x >> 40) % 5 {
                0 => (x >> 20) % 3000,
                1 => u64::MAX - (x >> 20) % 3,
                _ => i / 2,
            };
            model.insert((origin, k));
            shown.insert(origin, OriginSeq(k));
            for probe in [k, k.wrapping_add(1), k.wrapping_sub(1), (x >> 8) % 3000] {
                assert_eq!(
                    shown.contains(origin, OriginSeq(probe)),
                    model.contains(&(origin, probe)),
                    "{origin:?} {probe}"
                );
            }
        }
        // Mostly in order: a few runs, not one entry per number.
        let runs: usize = shown.runs.values().map(BTreeMap::len).sum();
        assert!(
            runs < model.len() / 2,
            "{runs} runs for {} numbers",
            model.len()
        );
    }
}
