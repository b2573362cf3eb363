//! When the node task wakes: for the node's own deadline, a handshake the guard must try
//! again, or, at most [`LAZY_SLACK`] late, the guard's silence tick and sweep.

use std::time::{Duration, Instant};

/// How late the guard's silence tick and sweep may run: a node in a room wakes for its
/// heartbeats ten times a second, and one of those wakes takes them (a wake of their own
/// for each would cost as much as a heartbeat's).
const LAZY_SLACK: Duration = Duration::from_millis(200);

/// When the node task next wakes: the node's deadline, a handshake due, or the guard's
/// tick and sweep, at most [`LAZY_SLACK`] late when the node has a deadline of its own.
pub(super) fn next_wake(
    node: Option<Instant>,
    urgent: Option<Instant>,
    lazy: Option<Instant>,
) -> Option<Instant> {
    let lazy = lazy.map(|at| if node.is_some() { at + LAZY_SLACK } else { at });
    [node, urgent, lazy].into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guards_tick_waits_for_a_wake_of_the_node_but_not_for_ever() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Alone, the tick is the wake.
        assert_eq!(next_wake(None, None, Some(t0)), Some(t0));
        // A heartbeat 100 ms after the tick is due takes it.
        assert_eq!(
            next_wake(Some(t0 + ms(100)), None, Some(t0)),
            Some(t0 + ms(100))
        );
        // A node deadline far off: the tick goes at most LAZY_SLACK late.
        assert_eq!(
            next_wake(Some(t0 + ms(5000)), None, Some(t0)),
            Some(t0 + LAZY_SLACK)
        );
        // A handshake to try again never waits.
        assert_eq!(
            next_wake(Some(t0 + ms(100)), Some(t0 + ms(10)), Some(t0)),
            Some(t0 + ms(10))
        );
        assert_eq!(next_wake(None, None, None), None);
    }
}
