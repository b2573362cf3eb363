//! Coming back from an absence. A node that was stopped (SIGSTOP, a closed laptop lid, a
//! long pause of its process or its machine) gets its inputs late, all at once, with a
//! clock that jumped. What it heard before says nothing about its neighbours now, and the
//! room may have judged it dead and chosen another leader meanwhile.
//!
//! The sign is its own heartbeat timer: armed every interval while it is in the ring, so
//! an input that comes more than a suspicion bound after that deadline means the node did
//! not run. It then judges its neighbours afresh (never declaring them dead on silence
//! from before), and if it led, it sequences nothing until a majority of the room has
//! confirmed its leadership: it sends every member a sync request for its own epoch, as a
//! new leader does, and a member answers only if it still follows that epoch, holds the
//! leader online, and takes part in no newer election round. A member that follows a newer
//! leader stays silent, and its heartbeats name that leader, which deposes this one (see
//! `heartbeat.rs`). A heartbeat is no confirmation: one in the socket's backlog may have
//! been sent before the room replaced this leader.

use super::*;

impl Node {
    /// Called before every input: notices that this node was away until `now`.
    pub(in crate::proto::node) fn notice_absence(&mut self, now: Instant) {
        if !self.in_ring() {
            return;
        }
        let Some(due) = self.ctx.timers.deadline(Timer::Heartbeat) else {
            return;
        };
        let late = now.saturating_duration_since(due);
        if late < self.ctx.cfg.suspect_after() {
            return;
        }
        log_at!(
            info,
            self,
            "this node was away for about {} ms; judging its neighbours afresh",
            late.as_millis()
        );
        self.ring.detector.restart_watch(now);
        self.transport.was_away(now);
        // Requests to probe made before the absence are stale (answers to them too).
        self.ring.asked_about.clear();
        self.room.restart_quorum_clock(now);
        if self.room.is_sequencing() {
            log_at!(
                info,
                self,
                "not sequencing until a majority of the room answers this leadership"
            );
            self.room.start_confirming();
            self.ask_confirmation(now);
            self.maybe_confirmed(now, None);
        }
    }

    /// While confirming: asks every online member not heard from yet whether it still
    /// follows this leadership (a sync request from our own delivery point).
    pub(in crate::proto::node) fn ask_confirmation(&mut self, now: Instant) {
        let Some(epoch) = self.ring.epoch else {
            return;
        };
        let from = self.room.next();
        let addrs = self.room.unconfirmed_by(self.ring.members.online_peers());
        for addr in addrs {
            let msg = Message::SyncRequest { epoch, from };
            self.send_reliable(now, addr, msg, Token::Control);
        }
    }

    /// While confirming: `member` (if any) answered under our leadership; once a majority
    /// of the online members, this node included, has, sequencing resumes with what
    /// waited meanwhile.
    pub(in crate::proto::node) fn maybe_confirmed(&mut self, now: Instant, member: Option<NodeId>) {
        let online = self.ring.members.online_peers().count() + 1;
        let majority = online / 2 + 1;
        if let Some(submits) = self.room.confirmed_by(member, majority) {
            log_at!(info, self, "a majority answered; sequencing again");
            for (origin, s) in submits {
                self.sequence(now, origin, s);
            }
        }
    }
}
