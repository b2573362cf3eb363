//! Membership handling: creating a room, joining through any member (the joiner's side;
//! the leader's is in `admission.rs`), merging member updates, and the graceful leave.

use super::{Event, JoinError, Node, Phase, Token};
use crate::ids::Seq;
use crate::proto::chat::{HoldBackQueue, Sequencer};
use crate::proto::ring::{Change, MAX_MEMBERS};
use crate::proto::timers::Timer;
use crate::wire::{
    ChatEntry, Epoch, Member, Message, Presence, Refusal, Stamp, Welcome, proof_message,
};
use ed25519_dalek::Signer;

use std::net::SocketAddr;
use std::time::Instant;
use tracing::info;

impl Node {
    /// No contact: this node is the room and its leader.
    pub(super) fn create_room(&mut self, now: Instant) {
        self.ring.epoch = Some(Epoch {
            term: 0,
            leader: self.ctx.id,
        });
        self.start_heartbeats(now);
        self.room.sequencer = Some(Sequencer::resume(Seq(1), &self.room.history));
        self.life.phase = Phase::Member;
        info!(
            lamport = self.ctx.clock.now().0,
            "created room as leader {}", self.ctx.id
        );
        self.ctx.events.push_back(Event::Joined {
            leader: self.ctx.cfg.name.clone(),
            is_leader: true,
            members: 1,
        });
    }

    pub(super) fn start_join(&mut self, now: Instant, contact: SocketAddr) {
        self.life.join_refusal = None;
        self.life.phase = Phase::Joining {
            contact,
            parts: Default::default(),
        };
        self.ctx.timers
            .set(Timer::JoinDeadline, now + self.ctx.cfg.join_timeout);
        self.send_join(now);
    }

    /// Sends the join request to the contact (again, after a "no leader" refusal).
    pub(super) fn send_join(&mut self, now: Instant) {
        let Phase::Joining { contact, .. } = self.life.phase else {
            return;
        };
        // Retries end at the join deadline, so "unreachable" is reported within it. A
        // restarted node has more members to try, and the one it tries may be gone too.
        let retries = if self.is_restarting() {
            1
        } else {
            (self.ctx.cfg.join_timeout.as_millis() / self.ctx.cfg.ack_timeout.as_millis().max(1))
                .saturating_sub(1) as u32
        };
        let msg = Message::Join {
            name: self.ctx.cfg.name.clone(),
            key: self.public_key(),
        };
        self.send_reliable_with(now, contact, msg, Token::Join, retries);
    }

    /// The room refused us. With no leader (an election is running) we ask again shortly,
    /// within the join deadline; any other reason is final.
    pub(super) fn on_join_refused(&mut self, now: Instant, reason: Refusal) {
        if self.life.phase == Phase::Member {
            self.life.resyncing = false; // the winner would not have us back; stop waiting
            return;
        }
        if reason == Refusal::Restarting && self.is_restarting() {
            return self.restarting_peer(now);
        }
        let retry = matches!(
            reason,
            Refusal::NoLeader | Refusal::Throttled | Refusal::StillOnline | Refusal::Restarting
        );
        if retry && matches!(self.life.phase, Phase::Joining { .. }) {
            info!(
                lamport = self.ctx.clock.now().0,
                "join refused for now ({reason}); asking again"
            );
            if reason == Refusal::StillOnline && self.life.join_refusal.is_none() {
                // The room notices a crashed process within a second when idle, within
                // its newcomer grace (a join timeout) when busy; a live one stays, and
                // that is what the user is told if it does.
                self.ctx.timers
                    .set(Timer::JoinDeadline, now + self.ctx.cfg.join_timeout * 2);
                self.life.join_refusal = Some(reason);
            }
            self.ctx.timers
                .set(Timer::JoinRetry, now + self.ctx.cfg.ack_timeout);
        } else {
            self.fail_join(now, JoinError::Refused(reason));
        }
    }

    /// The join deadline passed: still refused (see [`Refusal::StillOnline`]), or
    /// unreachable if the contact never acked, else no welcome.
    pub(super) fn join_deadline(&mut self, now: Instant) {
        if let Phase::Joining { contact, .. } = self.life.phase {
            let unacked = self.transport.reliable.any_pending(|t| *t == Token::Join);
            let err = if let Some(reason) = self.life.join_refusal.take() {
                JoinError::Refused(reason)
            } else if unacked {
                JoinError::Unreachable(contact)
            } else {
                JoinError::Timeout
            };
            self.fail_join(now, err);
        }
    }

    pub(super) fn fail_join(&mut self, now: Instant, err: JoinError) {
        if !matches!(self.life.phase, Phase::Joining { .. }) {
            return;
        }
        info!(lamport = self.ctx.clock.now().0, "join failed: {err}");
        self.ctx.timers.clear(Timer::JoinDeadline);
        self.ctx.timers.clear(Timer::JoinRetry);
        if self.is_restarting() {
            return self.restart_join_failed(now, err);
        }
        if !self.life.was_member {
            self.life.phase = Phase::Done;
            return self.ctx.events.push_back(Event::JoinFailed(err));
        }
        // Coming back after `dereg`: try the next member we know; refusals are final.
        let retry = !matches!(err, JoinError::Refused(_));
        match self.life.reg_contacts.pop() {
            Some(next) if retry => self.start_join(now, next),
            _ => {
                self.life.reg_contacts.clear();
                self.life.phase = Phase::Offline;
                self.ctx.events.push_back(Event::RegFailed(err));
            }
        }
    }

    /// The leader's challenge: sign it with our identity.
    pub(super) fn on_challenge(&mut self, now: Instant, from: SocketAddr, nonce: [u8; 16]) {
        if !matches!(self.life.phase, Phase::Joining { .. }) && !self.life.resyncing {
            return;
        }
        self.ctx.timers.clear(Timer::JoinRetry);
        let message = proof_message(&nonce, self.ctx.id, &self.ctx.cfg.name);
        let signature = self.life.identity.sign(&message).to_bytes().to_vec();
        self.send_reliable(now, from, Message::Proof { signature }, Token::Control);
    }

    /// A part of our welcome arrived; once all parts are here, we are in.
    pub(super) fn on_welcome(&mut self, now: Instant, w: Welcome) {
        if self.life.phase == Phase::Member {
            return self.on_resync_welcome(now, w);
        }
        let Phase::Joining { parts, .. } = &mut self.life.phase else {
            return;
        };
        if w.part >= w.parts {
            return;
        }
        parts.insert(w.part, w.members);
        if parts.len() < w.parts as usize {
            return;
        }
        let parts = std::mem::take(parts);
        let mut leaders_view_of_me = None;
        for m in parts.into_values().flatten() {
            if m.id == self.ctx.id {
                leaders_view_of_me = Some(m);
            } else {
                // Any of them may have been admitted just before us.
                self.ring.detector.arrived(m.id, now);
                self.ring.members.merge(m);
            }
        }
        self.ring.epoch = Some(w.epoch);
        self.ring.election.on_elected(w.epoch.term);
        self.restart_done();
        // Catch up as history: a newcomer the last `join_history` messages, a member back
        // from `dereg` everything since it left (as far as the leader still keeps).
        let from = if self.life.was_member {
            self.room.holdback.next()
        } else {
            Seq(w
                .next_seq
                .0
                .saturating_sub(self.ctx.cfg.join_history as u64)
                .max(1))
        };
        let from = from.max(w.oldest).min(w.next_seq);
        // Back after a restart into a room that never got our last messages (it was carried
        // on by a member that had missed them): they go to the leader to sequence again.
        let republish: Vec<ChatEntry> = if self.life.was_member && self.room.holdback.next() > w.next_seq {
            self.room.history
                .range(w.next_seq, Seq(u64::MAX))
                .filter(|e| !e.is_filler())
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        if !(self.life.was_member && from == self.room.holdback.next()) {
            self.room.holdback = HoldBackQueue::new(from);
            self.room.history.forget_from(from);
        }
        if !self.life.was_member {
            self.room.first_seq = w.next_seq;
        }
        self.room.history_until = w.next_seq;
        if self.life.was_member {
            self.return_replica(now);
            // What we wrote while away (or could not hand over before) goes out now.
            self.resubmit(now);
        }
        if from < w.next_seq {
            self.room.known_high = self.room.known_high.max(Seq(w.next_seq.0 - 1));
            self.ctx.timers.set(Timer::GapRepair, now);
        }
        self.life.was_member = true;
        // The leader stamped our entry online when it admitted us, and every member holds
        // that version: take it, so that our table is the same as theirs. Only if it is
        // missing or older than what we wrote ourselves (an "offline" from our last
        // `dereg`, say) do we write a newer one, and then everyone is told.
        let adopted = leaders_view_of_me.is_some_and(|m| self.adopt_own_entry(m));
        self.life.phase = Phase::Member;
        if !adopted && let Some(mut me) = self.ring.members.get(self.ctx.id).cloned() {
            me.presence = Presence::Online;
            me.stamp = Stamp {
                lamport: self.ctx.clock.tick(),
                by: self.ctx.id,
            };
            self.ring.members.merge(me.clone());
            self.broadcast(now, &Message::Members(vec![me]), &Token::Control);
        }
        self.ctx.timers.clear(Timer::JoinDeadline);
        self.ctx.timers.clear(Timer::JoinRetry);
        self.start_heartbeats(now);
        if let Some(leader) = self.leader_addr() {
            for e in republish {
                self.send_reliable(now, leader, Message::Republish(e), Token::Control);
            }
        }
        let leader = self
            .name_of(w.epoch.leader)
            .unwrap_or_else(|| w.epoch.leader.to_string());
        info!(lamport = self.ctx.clock.now().0, "joined; leader is {leader}");
        self.ctx.events.push_back(Event::Joined {
            leader,
            is_leader: false,
            members: self.ring.members.current().len(),
        });
    }

    /// A welcome while already in the room: the answer to re-registering with a leader
    /// learned of by gossip. Merge its table; if its sequence is behind ours, ours diverged
    /// (a partition had its own leader), so follow its numbering from here on.
    fn on_resync_welcome(&mut self, now: Instant, w: Welcome) {
        if !self.life.resyncing || Some(w.epoch) != self.ring.epoch {
            return;
        }
        let leader = self.leader_addr();
        if let Some(from) = leader {
            self.on_members(now, from, w.members);
        }
        if w.part >= w.parts {
            return;
        }
        if w.part + 1 < w.parts {
            return;
        }
        self.life.resyncing = false;
        if w.next_seq < self.room.holdback.next() {
            info!(
                lamport = self.ctx.clock.now().0,
                "our sequence diverged from the leader's; following it from #{}", w.next_seq
            );
            self.room.holdback.reset(w.next_seq);
            self.room.history.forget_from(w.next_seq);
        } else if w.next_seq > self.room.holdback.next() {
            self.room.known_high = self.room.known_high.max(Seq(w.next_seq.0 - 1));
            self.ctx.timers.set(Timer::GapRepair, now);
        }
    }

    /// Takes someone else's version of our own entry if it says we are online where we
    /// are, and is newer than ours or the same; whether our entry now is that version.
    fn adopt_own_entry(&mut self, m: Member) -> bool {
        let Some(me) = self.ring.members.get(self.ctx.id) else {
            return false;
        };
        let faithful = m.presence == Presence::Online && m.addr == me.addr && m.key == me.key;
        if !faithful || m.stamp < me.stamp {
            return false;
        }
        self.ctx.clock.observe(m.stamp.lamport);
        self.ring.members.merge(m);
        true
    }

    /// Member table entries from someone: merge them and say what changed.
    pub(super) fn on_members(&mut self, now: Instant, from: SocketAddr, list: Vec<Member>) {
        for m in list {
            if m.id == self.ctx.id {
                // A newer "online" of ours (the leader's, from our admission) is taken as
                // it is; a newer "offline", or one elsewhere, is refuted.
                let newer = self
                    .ring.members
                    .get(self.ctx.id)
                    .is_some_and(|me| m.stamp > me.stamp);
                if newer && self.life.phase == Phase::Member && !self.adopt_own_entry(m.clone()) {
                    self.ctx.clock.observe(m.stamp.lamport);
                    self.refute(now, from);
                }
                continue;
            }
            if self.ring.members.get(m.id).is_none() && self.ring.members.len() >= MAX_MEMBERS {
                continue; // a full table takes no strangers
            }
            // A node's name and identity never change, and a name stays with its identity.
            let renamed = self
                .ring.members
                .get(m.id)
                .is_some_and(|old| old.name != m.name || old.key != m.key);
            let owned = self
                .ring.members
                .entries()
                .any(|o| o.id != m.id && o.name == m.name && o.key != m.key);
            if renamed || owned {
                continue;
            }
            let name = m.name.clone();
            match self.ring.members.merge(m.clone()) {
                Change::CameOnline => {
                    self.ring.detector.arrived(m.id, now);
                    self.ctx.events
                        .push_back(Event::MemberOnline { name: name.clone() });
                    self.start_handover(now, &name);
                }
                Change::WentOffline => {
                    self.ctx.events.push_back(Event::MemberOffline { name });
                    self.member_gone(now, &m);
                }
                Change::Updated | Change::Unchanged => {}
            }
        }
    }

    /// Starts a graceful leave: first let own room messages commit (up to the leave
    /// timeout), then tell every member, then report [`Event::Left`].
    pub(super) fn leave(&mut self, now: Instant) {
        match self.life.phase {
            Phase::Member => {}
            Phase::Joining { .. } => {
                self.life.phase = Phase::Done;
                self.ctx.timers.clear(Timer::JoinDeadline);
                self.ctx.events.push_back(Event::Left);
                return;
            }
            Phase::Offline => {
                self.life.phase = Phase::Done;
                self.ctx.events.push_back(Event::Left);
                return;
            }
            Phase::Leaving { .. } | Phase::Done => return,
        }
        self.life.phase = Phase::Leaving { notified: false };
        // A leaving leader sequences nothing more (submissions wait for the next leader).
        self.room.sequencer = None;
        self.room.recovery = None;
        self.ctx.timers.clear(Timer::Recovery);
        self.ctx.timers
            .set(Timer::LeaveDeadline, now + self.ctx.cfg.leave_timeout);
        self.maybe_notify_leave(now);
    }

    /// While leaving: once our own messages are committed and, if we led, every message we
    /// sequenced has reached the members (so the next leader finds it), say goodbye.
    pub(super) fn maybe_notify_leave(&mut self, now: Instant) {
        let sequenced_in_flight = self
            .transport.reliable
            .any_pending(|t| matches!(t, Token::Sequenced(_)));
        if self.life.phase == (Phase::Leaving { notified: false })
            && self.room.outbox.is_empty()
            && !sequenced_in_flight
        {
            self.send_leave_notices(now);
        }
    }

    /// Called when an own message commits during a leave.
    pub(super) fn on_outbox_drained(&mut self, now: Instant) {
        self.maybe_notify_leave(now);
    }

    fn send_leave_notices(&mut self, now: Instant) {
        self.life.phase = Phase::Leaving { notified: true };
        let unconfirmed: Vec<String> = self
            .room.outbox
            .unconfirmed()
            .into_iter()
            .map(|s| s.text)
            .collect();
        // Going offline keeps them: they are posted once we are back.
        if !unconfirmed.is_empty() && !self.life.going_offline {
            self.ctx.events
                .push_back(Event::Unconfirmed { texts: unconfirmed });
        }
        let mut me = self.ring.members.get(self.ctx.id).cloned().expect("own entry");
        me.presence = Presence::Offline;
        me.stamp = Stamp {
            lamport: self.ctx.clock.tick(),
            by: self.ctx.id,
        };
        let peers: Vec<SocketAddr> = self.ring.members.online_peers().map(|m| m.addr).collect();
        self.ring.members.merge(me.clone());
        info!(
            lamport = self.ctx.clock.now().0,
            "leaving; telling {} members",
            peers.len()
        );
        for peer in peers {
            // Few retries: a leave must not hang on a dead peer.
            self.send_reliable_with(
                now,
                peer,
                Message::Members(vec![me.clone()]),
                Token::LeaveNotice,
                3,
            );
        }
        self.ctx.timers
            .set(Timer::LeaveDeadline, now + self.ctx.cfg.leave_timeout);
        self.maybe_finish_leave(now);
    }

    pub(super) fn maybe_finish_leave(&mut self, _now: Instant) {
        if self.life.phase == (Phase::Leaving { notified: true }) && !self.leave_notices_pending() {
            self.finish_leave();
        }
    }

    fn leave_notices_pending(&self) -> bool {
        self.transport.reliable.any_pending(|t| *t == Token::LeaveNotice)
    }

    pub(super) fn leave_deadline(&mut self, now: Instant) {
        match self.life.phase {
            Phase::Leaving { notified: false } => self.send_leave_notices(now),
            Phase::Leaving { notified: true } => self.finish_leave(),
            _ => {}
        }
    }

    fn finish_leave(&mut self) {
        self.ctx.timers.clear(Timer::LeaveDeadline);
        if self.life.going_offline {
            return self.went_offline();
        }
        self.life.phase = Phase::Done;
        self.ctx.timers.clear(Timer::LeaveDeadline);
        info!(lamport = self.ctx.clock.now().0, "left the room");
        self.ctx.events.push_back(Event::Left);
    }
}
