//! The replay window: which packet numbers of one sender (or one session) were seen, over a sliding window
//! of the latest [`REPLAY_WINDOW`], so that a datagram captured and sent again is refused.

/// Packet numbers remembered per sender.
pub const REPLAY_WINDOW: u64 = 1024;

/// A sliding window over one sender's packet numbers.
#[derive(Debug, Default, Clone)]
pub struct ReplayWindow {
    highest: u64,
    seen: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl ReplayWindow {
    /// Whether `pn` would be accepted (neither seen nor older than the window), without
    /// recording it: checked before the work of opening a datagram.
    pub fn fresh(&self, pn: u64) -> bool {
        if pn == 0 {
            return false;
        }
        if pn > self.highest {
            return true;
        }
        let age = self.highest - pn;
        age < REPLAY_WINDOW && !self.get(age)
    }

    /// Records `pn`; `false` if it was seen before or is older than the window.
    pub fn accept(&mut self, pn: u64) -> bool {
        if pn == 0 {
            return false;
        }
        if pn > self.highest {
            let shift = pn - self.highest;
            if shift >= REPLAY_WINDOW {
                self.seen = Default::default();
            } else {
                for _ in 0..shift {
                    self.shift_one();
                }
            }
            self.highest = pn;
            self.set(0);
            return true;
        }
        let age = self.highest - pn;
        if age >= REPLAY_WINDOW || self.get(age) {
            return false;
        }
        self.set(age);
        true
    }

    fn shift_one(&mut self) {
        // Bit `age` of the window lives at word age/64, bit age%64; ageing by one moves
        // every bit up by one position across the words.
        let mut carry = 0;
        for w in self.seen.iter_mut() {
            let next = *w >> 63;
            *w = (*w << 1) | carry;
            carry = next;
        }
    }

    fn get(&self, age: u64) -> bool {
        self.seen[(age / 64) as usize] >> (age % 64) & 1 == 1
    }

    fn set(&mut self, age: u64) {
        self.seen[(age / 64) as usize] |= 1 << (age % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window_slides() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(5));
        assert!(w.accept(3), "late but new");
        assert!(!w.accept(3));
        assert!(w.accept(5 + REPLAY_WINDOW - 1));
        assert!(!w.accept(5), "seen");
        assert!(!w.accept(4), "too old to tell");
        assert!(w.accept(5 + 10 * REPLAY_WINDOW));
        assert!(!w.accept(0));
        assert!(!w.fresh(0) && !w.fresh(5 + 10 * REPLAY_WINDOW));
        assert!(w.fresh(5 + 10 * REPLAY_WINDOW - 1) && w.fresh(u64::MAX));
    }
}
