//! The guard's timers: handshakes tried again, the sessions' silence tick and sweep, and
//! the counts the sessions keep.

use super::sessions::{SessionCounts, Sessions};
use super::{Guard, Inner};
use std::time::Instant;

impl Guard {
    /// Tries again handshakes that are due (and forgets expired sessions).
    pub fn handle_timeout(&self, now: Instant) {
        let mut inner = self.lock();
        let Inner { sessions, out, .. } = &mut *inner;
        if let Some(s) = sessions.as_mut() {
            s.handle_timeout(now, out);
        }
    }

    /// When [`Guard::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lock()
            .sessions
            .as_mut()
            .and_then(Sessions::poll_timeout)
    }

    /// [`Guard::poll_timeout`] in two parts: when a handshake is due to be tried again,
    /// and when the sessions' tick or sweep is, which may wait for another wake.
    pub fn poll_timers(&self) -> (Option<Instant>, Option<Instant>) {
        let mut inner = self.lock();
        match inner.sessions.as_mut() {
            Some(s) => (s.poll_urgent(), s.poll_lazy()),
            None => (None, None),
        }
    }

    /// Handshakes completed and datagrams dropped unsent, so far.
    pub fn session_counts(&self) -> SessionCounts {
        self.lock()
            .sessions
            .as_ref()
            .map(|s| s.counts)
            .unwrap_or_default()
    }
}
