//! The leader's side: submissions given their global sequence number (each origin's in
//! the order sent, repeats recognised), broadcast to the room, the leader's own messages
//! counted as committed once another member holds them; what became of a sequenced
//! message sent reliably.

use super::*;

impl Node {
    /// What became of a reliable message of the room. A sequenced message acked or given
    /// up may let the leader's own message count as committed, and a leave go on; one
    /// given up is fetched by the members that see the gap.
    pub(in crate::proto::node) fn room_settled(&mut self, now: Instant, t: RoomToken, fate: Fate) {
        match (t, fate) {
            (_, Fate::Cancelled) | (RoomToken::Submit, _) => {}
            (RoomToken::Sequenced(seq), Fate::Acked | Fate::GaveUp) => {
                if let Some(seq) = seq {
                    self.stabilise(now, seq);
                }
                self.maybe_notify_leave(now);
            }
        }
    }

    pub(in crate::proto::node) fn sequence(&mut self, now: Instant, origin: NodeId, s: Submit) {
        if let Role::Confirming(_, c) = &mut self.room.role {
            // This node's own too: sequenced once a majority confirms it still leads.
            return c.held_submits.push((origin, s));
        }
        let origin_seq = s.origin_seq;
        let Some(seqr) = self.room.sequencer_mut() else {
            return;
        };
        // The name as the table knows it; the claim only for an origin not known yet.
        let accepted = match self.ring.members().get(origin) {
            Some(m) => seqr.accept(origin, &m.name, s),
            None => {
                let claimed = s.name.clone();
                seqr.accept(origin, &claimed, s)
            }
        };
        log_at!(
            debug,
            self,
            "submission {origin_seq:?} from {origin}: {accepted:?}"
        );
        match accepted {
            Accepted::Sequenced(entries) => {
                for e in entries {
                    self.commit(now, e);
                }
            }
            Accepted::Duplicate => {
                // The origin may have missed its commit: send it again, to it alone.
                if origin != self.ctx.id
                    && let Some(e) = self
                        .room
                        .history
                        .find_submission(origin, origin_seq)
                        .cloned()
                    && let Some(addr) = self.ring.members().get(origin).map(|m| m.addr)
                {
                    self.send_entry(now, addr, e);
                }
            }
            Accepted::Held | Accepted::Overflow => {}
        }
    }

    /// A restarted member had a message this room never sequenced: sequence it again.
    pub(in crate::proto::node) fn on_republish(&mut self, now: Instant, e: ChatEntry) {
        if self.room.is_recovering()
            || self
                .room
                .history
                .contains_submission(e.origin, e.origin_seq)
        {
            return;
        }
        if let Role::Confirming(_, c) = &mut self.room.role {
            return c.held_republished.push(e);
        }
        let Some(seqr) = self.room.sequencer_mut() else {
            log_at!(debug, self, "republish but not sequencing");
            return;
        };
        if let Some(e) = seqr.republish(e) {
            log_at!(
                info,
                self,
                "sequencing {}'s message again as #{}",
                e.name,
                e.seq
            );
            self.commit(now, e);
        }
    }

    /// The leader commits a sequenced message: deliver locally, broadcast to the room.
    fn commit(&mut self, now: Instant, e: ChatEntry) {
        let token = Token::Room(RoomToken::Sequenced(Some(e.seq)));
        self.broadcast_encoded(now, EncodedMessage::sequenced(&e), &token);
        if e.origin == self.ctx.id && self.ring.members().online_peers().next().is_some() {
            // The leader's own message counts as committed only once another member holds
            // it: were the leader to crash now, the survivors could not recover it.
            if let Some(unstable) = self.room.unstable_mut() {
                unstable.insert(e.seq, e);
            }
        } else {
            self.on_sequenced(now, e);
        }
    }

    /// A peer acked (or never will ack) the leader's own message `seq`: deliver it.
    pub(in crate::proto::node) fn stabilise(&mut self, now: Instant, seq: Seq) {
        if let Some(e) = self.room.unstable_mut().and_then(|u| u.remove(&seq)) {
            self.on_sequenced(now, e);
        }
    }
}
