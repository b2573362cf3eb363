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

    /// The largest time a received datagram may push this clock to (far beyond any real
    /// clock). Past it the clock only ticks, by its own events: it has 2^62 more ticks
    /// before [`LamportClock::MAX_ACCEPTED`], which it never reaches, so no datagram can
    /// push a node to where its own datagrams would be refused.
    pub const MAX_OBSERVED: Lamport = Lamport(1 << 62);

    /// The latest stamp a member-table entry may carry (no later than its datagram
    /// either): a member told of one about itself moves its clock past it and outdoes
    /// it, and is still 2^61 ticks short of [`LamportClock::MAX_ACCEPTED`]. An honest
    /// stamp past [`LamportClock::MAX_OBSERVED`] takes that many ticks of its writer's
    /// own, which never happens.
    pub const MAX_STAMP: Lamport = Lamport((1 << 62) + (1 << 61));

    /// The largest Lamport time accepted in a datagram; larger ones are dropped as bad.
    /// (A received time is not held to what this node has seen: a clock counts its own
    /// node's events, so a member legitimately hears times far ahead of its own, and
    /// must take them to stay in the room. What a received time can never do is push a
    /// clock to where its own datagrams, or its refutations, would fail.)
    pub const MAX_ACCEPTED: Lamport = Lamport(1 << 63);

    /// Merges a received timestamp: `max(local, received) + 1`, where `received` counts
    /// at most [`LamportClock::MAX_OBSERVED`].
    pub fn observe(&mut self, received: Lamport) -> Lamport {
        let received = received.0.min(Self::MAX_OBSERVED.0);
        self.now.0 = self.now.0.max(received).saturating_add(1);
        self.now
    }

    /// Moves on to at least `saved`: this node's own time as it was saved, or a stamp of
    /// its own entry it must outdo (not capped as a received time is; a stamp is at
    /// most [`LamportClock::MAX_STAMP`]).
    pub fn restore(&mut self, saved: Lamport) {
        self.now.0 = self.now.0.max(saved.0);
    }

    /// Whether a datagram stamped `received` may be taken: not beyond
    /// [`LamportClock::MAX_ACCEPTED`].
    pub fn in_range(received: Lamport) -> bool {
        received <= Self::MAX_ACCEPTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No received time pushes the clock past [`LamportClock::MAX_OBSERVED`]; it still
    /// ticks on from there, far from the limit of what others accept.
    #[test]
    fn a_received_time_cannot_push_the_clock_to_its_limit() {
        let mut c = LamportClock::default();
        c.observe(Lamport(u64::MAX));
        assert_eq!(c.now(), Lamport((1 << 62) + 1));
        assert!(c.tick() < LamportClock::MAX_ACCEPTED);
        assert!(
            LamportClock::in_range(c.now()),
            "its own datagrams are taken"
        );
        assert!(!LamportClock::in_range(Lamport(u64::MAX)));
    }

    #[test]
    fn receive_moves_past_sender() {
        let mut c = LamportClock::default();
        assert_eq!(c.tick(), Lamport(1));
        assert_eq!(c.observe(Lamport(10)), Lamport(11));
        assert_eq!(c.observe(Lamport(3)), Lamport(12));
    }
}
