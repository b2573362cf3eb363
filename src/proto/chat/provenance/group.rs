//! [`Group`]: one sender's messages of one origin waiting for their run's seal, kept in
//! the origin's order in one vector (they nearly always come in that order, so a new one
//! goes at the end, and a settled run leaves from the front).

use crate::ids::OriginSeq;

/// Messages by their origin's number, in order, at most one per number.
#[derive(Debug, Clone)]
pub struct Group<T> {
    items: Vec<(OriginSeq, T)>,
}

impl<T> Default for Group<T> {
    fn default() -> Self {
        Group { items: Vec::new() }
    }
}

impl<T> Group<T> {
    /// Where number `k` is, or would go.
    fn find(&self, k: OriginSeq) -> Result<usize, usize> {
        match self.items.last() {
            None => Err(0),
            Some((last, _)) if *last < k => Err(self.items.len()),
            Some(_) => self.items.binary_search_by_key(&k, |(n, _)| *n),
        }
    }

    /// Whether number `k` waits here.
    pub fn contains(&self, k: OriginSeq) -> bool {
        self.find(k).is_ok()
    }

    /// Keeps `item` as number `k`, in place of an earlier one; whether `k` is new here.
    pub fn insert(&mut self, k: OriginSeq, item: T) -> bool {
        match self.find(k) {
            Ok(i) => {
                self.items[i].1 = item;
                false
            }
            Err(i) => {
                self.items.insert(i, (k, item));
                true
            }
        }
    }

    /// The lowest-numbered message, if any.
    pub fn first(&self) -> Option<&T> {
        self.items.first().map(|(_, t)| t)
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Keeps only the messages `keep` picks.
    pub fn retain(&mut self, keep: impl Fn(&T) -> bool) {
        self.items.retain(|(_, t)| keep(t));
    }

    /// The messages in order, with their numbers.
    pub fn iter(&self) -> impl Iterator<Item = (OriginSeq, &T)> {
        self.items.iter().map(|(k, t)| (*k, t))
    }

    /// How many it has room for without growing.
    pub fn capacity(&self) -> usize {
        self.items.capacity()
    }

    /// Takes out the messages whose numbers `pick` picks, in order.
    pub fn take(&mut self, mut pick: impl FnMut(OriginSeq) -> bool) -> Vec<(OriginSeq, T)> {
        let mut taken = Vec::with_capacity(self.items.len());
        taken.extend(self.items.extract_if(.., |(k, _)| pick(*k)));
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_numbers_in_order_whatever_order_they_come_in() {
        let mut g = Group::default();
        for k in [3, 1, 4, 2, 6] {
            assert!(g.insert(OriginSeq(k), k * 10));
        }
        assert!(
            !g.insert(OriginSeq(4), 41),
            "a second copy replaces the first"
        );
        let order: Vec<(u64, u64)> = g.iter().map(|(k, t)| (k.0, *t)).collect();
        assert_eq!(order, [(1, 10), (2, 20), (3, 30), (4, 41), (6, 60)]);
        assert!(g.contains(OriginSeq(6)) && !g.contains(OriginSeq(5)));
        assert!(!g.contains(OriginSeq(7)) && !g.contains(OriginSeq(0)));
        let taken: Vec<u64> = g.take(|k| k.0 % 2 == 0).iter().map(|(k, _)| k.0).collect();
        assert_eq!(taken, [2, 4, 6]);
        assert_eq!((g.len(), g.first()), (2, Some(&10)));
        g.retain(|t| *t > 10);
        assert_eq!(g.first(), Some(&30));
    }
}
