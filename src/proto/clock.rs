//! The Lamport clock.

use crate::ids::Lamport;

/// A Lamport clock: ticks on every local event and send, jumps past every time it receives.
#[derive(Debug, Default, Clone)]
pub struct LamportClock {
    now: Lamport,
}

impl LamportClock {
    /// The current time, without ticking.
    pub fn now(&self) -> Lamport {
        self.now
    }

    /// Ticks for a local event or a send and returns the new time.
    pub fn tick(&mut self) -> Lamport {
        self.now.0 = self.now.0.saturating_add(1);
        self.now
    }

    /// The largest timestamp accepted from a peer: far beyond any real clock, and far
    /// enough below `u64::MAX` that it never runs out. Larger stamps are dropped as bad.
    pub const MAX_ACCEPTED: Lamport = Lamport(1 << 62);

    /// Merges a received timestamp: `max(local, received) + 1`.
    pub fn observe(&mut self, received: Lamport) -> Lamport {
        self.now.0 = self.now.0.max(received.0).saturating_add(1);
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lamport's rule IR2: on receipt, the clock moves past the received time.
    #[test]
    fn never_overflows() {
        let mut c = LamportClock::default();
        c.observe(Lamport(u64::MAX));
        assert_eq!(c.tick(), Lamport(u64::MAX));
    }

    #[test]
    fn receive_moves_past_sender() {
        let mut c = LamportClock::default();
        assert_eq!(c.tick(), Lamport(1));
        assert_eq!(c.observe(Lamport(10)), Lamport(11));
        assert_eq!(c.observe(Lamport(3)), Lamport(12));
    }
}
