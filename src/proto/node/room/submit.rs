//! The member's side of a room message: `send_all` numbers it and keeps it in the outbox
//! until it is seen committed, seals it with the others typed at once and hands them to
//! the leader (see `proof.rs`), and resubmits what is still unconfirmed; the leader's
//! intake of submissions (held while it recovers or confirms).

use super::*;

impl Node {
    /// `send_all`: number the message, keep it until committed, hand it to the leader.
    pub(in crate::proto::node) fn send_all(
        &mut self,
        now: Instant,
        wall: WallMillis,
        text: String,
    ) {
        let looking = self.looking_for_room();
        if !self.life.is_member() && !looking {
            return self.refuse_command(CommandError::NotInRoom);
        }
        if let Err(e) = check_text(&text, MAX_TEXT_BYTES) {
            return self.refuse_command(e);
        }
        let submit = self.room.outbox.push(Submit {
            origin_seq: OriginSeq(0),
            committed_below: OriginSeq(0),
            name: self.ctx.cfg.name.clone(),
            lamport: self.ctx.clock.tick(),
            sent_at: wall,
            text,
            proof: Provenance::default(),
        });
        // Sealed (and, in the room, sent) with whatever else is typed before the outputs
        // are drained; while the room is looked for, kept until it is found (`on_welcome`).
        self.room.unsealed.push(submit.origin_seq);
        if looking {
            self.ctx.out.event(Event::Notice(
                "looking for the room's members: your message waits, and is sent once they are found"
                    .into(),
            ));
        }
        self.ctx
            .timers
            .set_if_unset(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
    }

    fn submit(&mut self, now: Instant, s: Submit) {
        if self.is_leader() {
            let me = self.ctx.id;
            self.sequence(now, me, s);
        } else if let Some(leader) = self.leader_addr() {
            self.send_reliable(
                now,
                leader,
                Message::Submit(s),
                Token::Room(RoomToken::Submit),
            );
        }
        // No leader known: the resubmit timer retries once there is one.
    }

    /// Resubmits own messages not yet seen committed (the leader recognises repeats), and
    /// own direct messages not yet confirmed kept for offline recipients.
    pub(in crate::proto::node) fn resubmit(&mut self, now: Instant) {
        self.resend_unsaved(now);
        if *self.life.phase() == (Phase::Leaving { notified: false })
            && self.room.voters().contains(&self.ctx.cfg.name)
        {
            self.ask_to_leave(now);
            self.ctx
                .timers
                .set(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
        }
        if !self.room.outbox.is_empty()
            && matches!(
                self.life.phase(),
                Phase::Member | Phase::Leaving { notified: false }
            )
        {
            let pending = self.resubmissions();
            log_at!(debug, self, "resubmitting {} messages", pending.len());
            for s in pending {
                self.submit(now, s);
            }
        }
        // Kept armed while anything of ours waits, whatever the phase: a member offline or
        // rejoining sends it once it is in the room again.
        if !self.room.outbox.is_empty() || self.mail.unsaved_len() > 0 {
            self.ctx
                .timers
                .set(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
        }
    }

    /// The leader got a submission.
    pub(in crate::proto::node) fn on_submit(&mut self, now: Instant, origin: NodeId, s: Submit) {
        if self.room.held() >= MAX_HELD {
            return self.note_limited(
                now,
                &format!("dropped a submission from {origin}: too many wait"),
            );
        }
        if let Role::Recovering(rec) = &mut self.room.role {
            return rec.held_submits.push((origin, s));
        }
        if !self.is_leader() {
            // A stale view at the origin; it resubmits to the right leader once it
            // follows it, which our heartbeat tells it of.
            log_at!(debug, self, "submit from {origin} but not leader");
            self.tell_newer_epoch(now, origin);
            return;
        }
        self.take_submission(now, origin, s);
    }
}
