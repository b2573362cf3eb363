//! A table of deadlines keyed by [`Timer`] (after quinn-proto's `TimerTable`).
//!
//! Setting a timer replaces its deadline; an early or late `handle_timeout` is harmless
//! because the node only acts on timers whose deadline has passed.

use std::time::Instant;

/// The node's protocol timers (the reliability layer keeps its own per-message deadlines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Give up joining if no welcome arrived by then.
    JoinDeadline,
    /// Ask to join again (the room had no leader a moment ago).
    JoinRetry,
    /// Ask the leader for missing room messages if a gap is still open.
    GapRepair,
    /// Resubmit own room messages that are still not seen committed.
    Resubmit,
    /// Stop waiting for confirmations and acks while leaving.
    LeaveDeadline,
    /// Send heartbeats to the ring neighbours and judge them.
    Heartbeat,
    /// Judge and probe suspected neighbours more often than heartbeats go.
    Probe,
    /// Start the election again if no leader was announced.
    Election,
    /// A new leader stops waiting for survivors' room messages.
    Recovery,
    /// A restarted node tries its saved members again.
    RestartRound,
    /// A follower checks that the leader it follows has shown that it leads.
    LeaderCheck,
    /// Own room messages waiting for an open run's first message to be acked are sealed
    /// and sent anyway (see `room/proof.rs`).
    SealRun,
    /// Ask the voters again whether they lost the leader (see `ring/prevote.rs`).
    PreVote,
}

const COUNT: usize = 13;

impl Timer {
    const ALL: [Timer; COUNT] = [
        Timer::JoinDeadline,
        Timer::JoinRetry,
        Timer::GapRepair,
        Timer::Resubmit,
        Timer::LeaveDeadline,
        Timer::Heartbeat,
        Timer::Probe,
        Timer::Election,
        Timer::Recovery,
        Timer::RestartRound,
        Timer::LeaderCheck,
        Timer::SealRun,
        Timer::PreVote,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines for each [`Timer`].
#[derive(Debug, Default, Clone)]
pub struct TimerTable {
    slots: [Option<Instant>; COUNT],
}

impl TimerTable {
    /// Arms `timer` to fire at `at`, replacing any earlier deadline.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.slots[timer.index()] = Some(at);
    }

    /// Arms `timer` only if it is not armed already.
    pub fn set_if_unset(&mut self, timer: Timer, at: Instant) {
        self.slots[timer.index()].get_or_insert(at);
    }

    /// Disarms `timer`.
    pub fn clear(&mut self, timer: Timer) {
        self.slots[timer.index()] = None;
    }

    /// When `timer` fires, if armed.
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.slots[timer.index()]
    }

    #[cfg(test)]
    /// Whether `timer` is armed.
    pub fn is_set(&self, timer: Timer) -> bool {
        self.slots[timer.index()].is_some()
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.slots.iter().flatten().min().copied()
    }

    /// Disarms and returns every timer whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<Timer> {
        Timer::ALL
            .into_iter()
            .filter(|t| {
                let slot = &mut self.slots[t.index()];
                if slot.is_some_and(|at| at <= now) {
                    *slot = None;
                    true
                } else {
                    false
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_due_timers_expire_and_early_calls_are_harmless() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        t.set(Timer::GapRepair, t0 + Duration::from_millis(10));
        t.set(Timer::JoinDeadline, t0 + Duration::from_millis(20));
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(10)));
        assert!(t.expire(t0).is_empty());
        assert_eq!(
            t.expire(t0 + Duration::from_millis(15)),
            vec![Timer::GapRepair]
        );
        assert!(!t.is_set(Timer::GapRepair));
        t.set_if_unset(Timer::JoinDeadline, t0);
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(20)));
    }
}
