//! Leaving gracefully: own messages first committed (up to the leave timeout), then every
//! member told, then the node is out (or offline, after `dereg`); what became of the
//! lifecycle's reliable messages.

use super::*;

/// How many leave timeouts more a leaving voter waits to be taken out of the voting
/// configuration (or, having led, for a majority of the voters after it to be told it
/// is out) before it goes anyway.
pub(in crate::proto::node) const MAX_LEAVE_WAITS: u8 = 3;

impl Node {
    /// What became of a reliable message of the lifecycle.
    pub(in crate::proto::node) fn life_settled(
        &mut self,
        now: Instant,
        to: SocketAddr,
        t: LifeToken,
        fate: Fate,
    ) {
        match (t, fate) {
            (LifeToken::Join, Fate::Acked) => self.join_acked(now),
            // A join to a contact tried before (a `reg` moved on since) fails nothing, nor
            // one the room answered already (acked or challenged): its deadline decides.
            (LifeToken::Join, Fate::GaveUp)
                if self.life.joining_through(to) && !self.life.join_deadline_extended =>
            {
                self.fail_join(now, JoinError::Unreachable(to))
            }
            (LifeToken::Join, Fate::GaveUp) => {}
            (LifeToken::Join | LifeToken::Resync, Fate::Cancelled) => {}
            (LifeToken::LeaveNotice, _) => self.maybe_finish_leave(now),
            (LifeToken::Welcome { newcomer, part }, fate) => {
                self.welcome_settled(newcomer, part, fate)
            }
            (LifeToken::Resync, Fate::Acked) => {}
            (LifeToken::Resync, Fate::GaveUp) => self.resync_gave_up(),
            (LifeToken::Forward { .. }, Fate::Acked) => {}
            (LifeToken::Forward { newcomer, taken_at }, _) => {
                self.join_taken_at(now, newcomer, taken_at)
            }
        }
    }

    /// Starts a graceful leave: first let own room messages commit (up to the leave
    /// timeout), then tell every member, then report [`Event::Left`].
    pub(in crate::proto::node) fn leave(&mut self, now: Instant) {
        match self.life.phase {
            Phase::Member => {}
            Phase::Joining { .. } => {
                self.life.phase = Phase::Done;
                self.ctx.timers.clear(Timer::JoinDeadline);
                self.ctx.out.event(Event::Left);
                return;
            }
            Phase::Offline => {
                self.life.phase = Phase::Done;
                self.ctx.out.event(Event::Left);
                return;
            }
            Phase::Leaving { .. } | Phase::Done => return,
        }
        self.life.phase = Phase::Leaving { notified: false };
        self.life.leave_waits = 0;
        // A leaving voter is first taken out of the voting configuration, so that the
        // room keeps a majority without it; a leader goes on sequencing until then, and
        // sequences nothing more after (submissions wait for the next leader).
        let voter = self.room.voters().contains(&self.ctx.cfg.name)
            && self.ring.members().online_peers().next().is_some();
        // A new leader still recovering goes on too: once it leads, it takes itself out.
        if !(voter && (self.room.is_sequencing() || self.room.is_recovering())) {
            self.room.retire();
            self.ctx.timers.clear(Timer::Recovery);
        }
        self.ask_to_leave(now);
        self.ctx
            .timers
            .set(Timer::LeaveDeadline, now + self.ctx.cfg.leave_timeout);
        self.ctx
            .timers
            .set_if_unset(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
        self.maybe_notify_leave(now);
    }

    /// While leaving: once our own messages are committed and, if we led, everything we
    /// proposed is committed (held by a majority, so the next leader finds it), say
    /// goodbye.
    pub(in crate::proto::node) fn maybe_notify_leave(&mut self, now: Instant) {
        // Called on every ack: the counts below only while leaving.
        if self.life.phase != (Phase::Leaving { notified: false }) {
            return;
        }
        // A voter with nobody left to take it out goes; one taken out goes once, if it
        // led, a majority of the room after it was told it is out (a voter it holds
        // offline may only be paused, and would need it to take over without the word).
        let out_of_config = if self.room.voters().contains(&self.ctx.cfg.name) {
            self.ring.members().online_peers().next().is_none()
        } else {
            self.room_told_of_config()
        };
        if self.life.phase == (Phase::Leaving { notified: false })
            && self.room.outbox_empty()
            && self.room.uncommitted() == 0
            && out_of_config
            && (self.life.going_offline || self.private_messages_settled())
        {
            self.send_leave_notices(now);
        }
    }

    /// Whether every own private message has gone (acked, or kept by the leader): a node
    /// leaving for good waits for them too (up to the leave timeout); going offline keeps
    /// them for when it is back.
    fn private_messages_settled(&self) -> bool {
        self.mail.unsaved_len() == 0
            && !self
                .transport
                .any_pending(|t| matches!(t, Token::Mail(MailToken::Direct { .. })))
    }

    /// Called when an own message commits during a leave.
    pub(in crate::proto::node) fn on_outbox_drained(&mut self, now: Instant) {
        self.maybe_notify_leave(now);
    }

    fn send_leave_notices(&mut self, now: Instant) {
        self.life.phase = Phase::Leaving { notified: true };
        // Gone from here on: a newer leader asked to take us in is not answered again.
        self.life.resyncing = false;
        let unconfirmed: Vec<String> = self.room.unconfirmed_texts();
        // Going offline keeps them: they are posted once we are back.
        if !unconfirmed.is_empty() && !self.life.going_offline {
            self.ctx
                .out
                .event(Event::Unconfirmed { texts: unconfirmed });
        }
        if !self.life.going_offline {
            // Sent but not acked by the leave timeout: it may not have arrived.
            let mut unacked: Vec<(DmId, String, String)> = self
                .transport
                .pending_tokens(|t| matches!(t, Token::Mail(MailToken::Direct { .. })))
                .into_iter()
                .filter_map(|t| match t {
                    Token::Mail(MailToken::Direct { to, dm, text }) => Some((dm.id, to, text)),
                    _ => None,
                })
                .collect();
            unacked.sort();
            for (_, to, text) in unacked {
                self.ctx.out.event(Event::Undelivered {
                    reason: format!(
                        "you left before {to} acknowledged it; it may not have arrived"
                    ),
                    to,
                    text,
                });
            }
            // Not sent, nor kept by the leader, by the leave timeout: the user is told.
            for (to, text) in self.mail.take_unsent() {
                self.ctx.out.event(Event::Undelivered {
                    to,
                    text,
                    reason: "you left before it could be delivered or kept".into(),
                });
            }
        }
        let mut me = self
            .ring
            .members()
            .get(self.ctx.id)
            .cloned()
            .expect("own entry");
        me.presence = Presence::Offline;
        me.stamp = Stamp {
            lamport: self.ctx.clock.tick(),
            by: self.ctx.id,
        };
        let peers: Vec<SocketAddr> = self.ring.members().online_peers().map(|m| m.addr).collect();
        self.ring.merge(me.clone());
        log_at!(info, self, "leaving; telling {} members", peers.len());
        for peer in peers {
            // Few retries: a leave must not hang on a dead peer.
            self.send_reliable_with(
                now,
                peer,
                Message::Members(vec![me.clone()]),
                Token::Life(LifeToken::LeaveNotice),
                3,
            );
        }
        self.ctx
            .timers
            .set(Timer::LeaveDeadline, now + self.ctx.cfg.leave_timeout);
        self.maybe_finish_leave(now);
    }

    pub(in crate::proto::node) fn maybe_finish_leave(&mut self, now: Instant) {
        if self.life.phase == (Phase::Leaving { notified: true }) && !self.leave_notices_pending() {
            self.finish_leave(now);
        }
    }

    fn leave_notices_pending(&self) -> bool {
        self.transport
            .any_pending(|t| *t == Token::Life(LifeToken::LeaveNotice))
    }

    pub(in crate::proto::node) fn leave_deadline(&mut self, now: Instant) {
        match self.life.phase {
            // Still a voter (the leader was changing, say): going now would leave the
            // room a voter short; wait a little longer, a bounded number of times. So
            // does a leader whose removal the room has not all been told of yet.
            Phase::Leaving { notified: false }
                if ((self.room.voters().contains(&self.ctx.cfg.name)
                    && self.ring.members().online_peers().next().is_some())
                    || !self.room_told_of_config())
                    && self.life.leave_waits < MAX_LEAVE_WAITS =>
            {
                self.life.leave_waits += 1;
                self.ask_to_leave(now);
                // A commit notice given up on (a voter paused or cut off) goes again.
                self.tell_voters_commit(now);
                self.ctx
                    .timers
                    .set(Timer::LeaveDeadline, now + self.ctx.cfg.leave_timeout);
            }
            Phase::Leaving { notified: false } => self.send_leave_notices(now),
            Phase::Leaving { notified: true } => self.finish_leave(now),
            _ => {}
        }
    }

    fn finish_leave(&mut self, now: Instant) {
        self.ctx.timers.clear(Timer::LeaveDeadline);
        if self.life.going_offline {
            self.went_offline();
            // `reg` typed while going offline: back now.
            if let Some(via) = self.life.reg_after_leave.take() {
                self.reg(now, None, via);
            }
            return;
        }
        self.life.phase = Phase::Done;
        self.ctx.timers.clear(Timer::LeaveDeadline);
        log_at!(info, self, "left the room");
        self.ctx.out.event(Event::Left);
    }
}
