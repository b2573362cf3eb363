//! Chat handling: room messages through the leader's sequencer, delivery through the
//! hold-back queue, gap repair, resubmission, and direct messages.

use super::{Event, Node, Phase, Token, Write};
use crate::ids::{NodeId, OriginSeq, Seq, WallMillis};
use crate::proto::chat::Accepted;
use crate::proto::event::CommandError;
use crate::proto::packet::EncodedMessage;
use crate::proto::timers::Timer;
use crate::wire::{
    ChatEntry, DirectMessage, MAX_RECIPIENTS, MAX_TEXT_BYTES, Message, Presence, Submit,
};
use std::net::SocketAddr;
use std::time::Instant;
use tracing::{debug, info};

/// Sequenced messages sent in answer to one fetch, at most.
const FETCH_BATCH: u64 = 64;

fn check_text(text: &str) -> Result<(), CommandError> {
    if text.trim().is_empty() {
        Err(CommandError::Empty)
    } else if text.len() > MAX_TEXT_BYTES {
        Err(CommandError::TooLong { len: text.len() })
    } else {
        Ok(())
    }
}

impl Node {
    fn refuse_command(&mut self, e: CommandError) {
        self.ctx.events.push_back(Event::Error(e));
    }

    /// `send_all`: number the message, keep it until committed, hand it to the leader.
    pub(super) fn send_all(&mut self, now: Instant, wall: WallMillis, text: String) {
        if self.life.phase != Phase::Member {
            return self.refuse_command(CommandError::NotInRoom);
        }
        if let Err(e) = check_text(&text) {
            return self.refuse_command(e);
        }
        let submit = self.room.outbox.push(Submit {
            origin_seq: OriginSeq(0),
            committed_below: OriginSeq(0),
            name: self.ctx.cfg.name.clone(),
            lamport: self.ctx.clock.tick(),
            sent_at: wall,
            text,
        });
        self.submit(now, submit);
        self.ctx.timers
            .set_if_unset(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
    }

    fn submit(&mut self, now: Instant, s: Submit) {
        if self.is_leader() {
            let me = self.ctx.id;
            self.sequence(now, me, s);
        } else if let Some(leader) = self.leader_addr() {
            self.send_reliable(now, leader, Message::Submit(s), Token::Submit);
        }
        // No leader known: the resubmit timer retries once there is one.
    }

    /// Resubmits own messages not yet seen committed (the leader recognises repeats), and
    /// own direct messages not yet confirmed kept for offline recipients.
    pub(super) fn resubmit(&mut self, now: Instant) {
        self.resend_unsaved(now);
        if self.room.outbox.is_empty() {
            return;
        }
        if matches!(
            self.life.phase,
            Phase::Member | Phase::Leaving { notified: false }
        ) {
            let pending = self.room.outbox.unconfirmed();
            debug!(
                lamport = self.ctx.clock.now().0,
                "resubmitting {} messages",
                pending.len()
            );
            for s in pending {
                self.submit(now, s);
            }
        }
        self.ctx.timers
            .set(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
    }

    /// The leader got a submission.
    pub(super) fn on_submit(&mut self, now: Instant, origin: NodeId, s: Submit) {
        if let Some(rec) = self.room.recovery.as_mut() {
            rec.held_submits.push((origin, s));
            return;
        }
        if !self.is_leader() {
            // A stale view at the origin; it resubmits to the right leader later.
            debug!(
                lamport = self.ctx.clock.now().0,
                "submit from {origin} but not leader"
            );
            return;
        }
        self.sequence(now, origin, s);
    }

    pub(super) fn sequence(&mut self, now: Instant, origin: NodeId, s: Submit) {
        let origin_seq = s.origin_seq;
        let Some(seqr) = self.room.sequencer.as_mut() else {
            return;
        };
        // The name as the table knows it; the claim only for an origin not known yet.
        let accepted = match self.ring.members.get(origin) {
            Some(m) => seqr.accept(origin, &m.name, s),
            None => {
                let claimed = s.name.clone();
                seqr.accept(origin, &claimed, s)
            }
        };
        debug!(
            lamport = self.ctx.clock.now().0,
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
                    && let Some(e) = self.room.history.find_submission(origin, origin_seq).cloned()
                    && let Some(addr) = self.ring.members.get(origin).map(|m| m.addr)
                {
                    self.send_reliable(now, addr, Message::Sequenced(e), Token::Sequenced(None));
                }
            }
            Accepted::Held | Accepted::Overflow => {}
        }
    }

    /// A restarted member had a message this room never sequenced: sequence it again.
    pub(super) fn on_republish(&mut self, now: Instant, e: ChatEntry) {
        if self.room.recovery.is_some() || self.room.history.contains_submission(e.origin, e.origin_seq) {
            return;
        }
        let Some(seqr) = self.room.sequencer.as_mut() else {
            debug!(lamport = self.ctx.clock.now().0, "republish but not sequencing");
            return;
        };
        if let Some(e) = seqr.republish(e) {
            info!(
                lamport = self.ctx.clock.now().0,
                "sequencing {}'s message again as #{}", e.name, e.seq
            );
            self.commit(now, e);
        }
    }

    /// The leader commits a sequenced message: deliver locally, broadcast to the room.
    fn commit(&mut self, now: Instant, e: ChatEntry) {
        let token = Token::Sequenced(Some(e.seq));
        self.broadcast_encoded(now, EncodedMessage::sequenced(&e), &token);
        if e.origin == self.ctx.id && self.ring.members.online_peers().next().is_some() {
            // The leader's own message counts as committed only once another member holds
            // it: were the leader to crash now, the survivors could not recover it.
            self.room.unstable.insert(e.seq, e);
        } else {
            self.on_sequenced(now, e);
        }
    }

    /// A peer acked (or never will ack) the leader's own message `seq`: deliver it.
    pub(super) fn stabilise(&mut self, now: Instant, seq: Seq) {
        if let Some(e) = self.room.unstable.remove(&seq) {
            self.on_sequenced(now, e);
        }
    }

    /// Sequenced messages are taken from the leader of our epoch; by a new leader from the
    /// survivors it asked during recovery; and from any member when they fill a gap we
    /// asked about (a new leader may have joined after what we miss).
    pub(super) fn accepts_sequenced(&self, sender: NodeId, seq: Seq) -> bool {
        self.leader() == Some(sender)
            || self.room.recovery.is_some()
            || (self.ring.members.is_online(sender)
                && self.wanted().is_some_and(|(a, b)| a <= seq && seq <= b))
    }

    /// A sequenced message arrived (or the leader committed one): hold back until every
    /// earlier one is here, then deliver in order.
    pub(super) fn on_sequenced(&mut self, now: Instant, e: ChatEntry) {
        let seq = e.seq;
        if self.backfill(&e) {
            return;
        }
        // The usual case, the next one with nothing held, is delivered without holding.
        match self.room.holdback.take_if_next(e) {
            Ok(e) => self.deliver(now, e),
            Err(e) => {
                if !self.room.holdback.offer(e) {
                    debug!(
                        lamport = self.ctx.clock.now().0,
                        "not holding #{seq} (next #{})",
                        self.room.holdback.next()
                    );
                    return;
                }
            }
        }
        while let Some(e) = self.room.holdback.pop_ready() {
            self.deliver(now, e);
        }
        if self.room.recovery.is_some() {
            self.maybe_finish_recovery(now);
        }
        if self.wanted().is_some() {
            self.ctx.timers
                .set_if_unset(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after);
        } else {
            self.ctx.timers.clear(Timer::GapRepair);
        }
    }

    /// Shows a message in order. A filler, or a message already shown under another
    /// number (possible only after a leader change), advances the sequence silently.
    pub(super) fn deliver(&mut self, now: Instant, e: ChatEntry) {
        let mine = e.origin == self.ctx.id;
        if mine && self.room.outbox.confirm(e.origin_seq).is_some() && self.room.outbox.is_empty() {
            // The timer also resends direct messages not yet confirmed kept.
            if self.mail.unsaved.is_empty() {
                self.ctx.timers.clear(Timer::Resubmit);
            }
            self.on_outbox_drained(now);
        }
        let seen = e.is_filler() || self.room.history.contains_submission(e.origin, e.origin_seq);
        self.room.history.push(e.clone());
        if self.ctx.cfg.persist {
            self.ctx.writes.push_back(Write::Delivered(e.clone()));
        }
        if !seen {
            let history = e.seq < self.room.history_until;
            self.ctx.events.push_back(Event::Room {
                entry: e,
                mine,
                history,
            });
        }
    }

    /// What this node still lacks: a gap before a held message, or messages neighbours
    /// have delivered that it has not seen at all.
    pub(super) fn wanted(&self) -> Option<(Seq, Seq)> {
        self.room.holdback.missing().or_else(|| {
            (self.room.known_high >= self.room.holdback.next())
                .then(|| (self.room.holdback.next(), self.room.known_high))
        })
    }

    /// The gap timer fired: ask the leader for what is still missing.
    pub(super) fn repair_gap(&mut self, now: Instant) {
        if !self.in_ring() {
            return;
        }
        let Some((from, to)) = self.wanted() else {
            return;
        };
        // Ask the leader first, then the other members in turn: a new leader may have
        // joined after the messages we miss.
        self.room.fetch_attempts += 1;
        let peers: Vec<SocketAddr> = self
            .ring.members
            .online_peers()
            .filter(|m| Some(m.id) != self.leader())
            .map(|m| m.addr)
            .collect();
        let target = match self.leader_addr().filter(|_| !self.is_leader()) {
            Some(leader) if self.room.fetch_attempts % 2 == 1 || peers.is_empty() => Some(leader),
            _ if !peers.is_empty() => Some(peers[(self.room.fetch_attempts / 2) as usize % peers.len()]),
            _ => None,
        };
        if let Some(to_addr) = target {
            debug!(
                lamport = self.ctx.clock.now().0,
                "fetching {from}..={to} from {to_addr}"
            );
            self.send_reliable(now, to_addr, Message::Fetch { from, to }, Token::Control);
        }
        self.ctx.timers
            .set(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after * 2);
    }

    /// Someone asked for sequenced messages it missed: answer from our history.
    pub(super) fn on_fetch(&mut self, now: Instant, requester: SocketAddr, from: Seq, to: Seq) {
        let to = Seq(to.0.min(from.0.saturating_add(FETCH_BATCH - 1)));
        let entries: Vec<ChatEntry> = self.room.history.range(from, to).cloned().collect();
        debug!(
            lamport = self.ctx.clock.now().0,
            "fetch {from}..={to} from {requester}: have {}",
            entries.len()
        );
        for e in entries {
            self.send_reliable(
                now,
                requester,
                Message::Sequenced(e),
                Token::Sequenced(None),
            );
        }
    }

    /// `send`: a private message to each named recipient, directly.
    pub(super) fn send_direct(
        &mut self,
        now: Instant,
        wall: WallMillis,
        to: Vec<String>,
        text: String,
    ) {
        if self.life.phase != Phase::Member {
            return self.refuse_command(CommandError::NotInRoom);
        }
        if let Err(e) = check_text(&text) {
            return self.refuse_command(e);
        }
        let mut recipients: Vec<String> = Vec::new();
        for name in to {
            if !recipients.contains(&name) {
                recipients.push(name);
            }
        }
        if recipients.is_empty() {
            return self.refuse_command(CommandError::UnknownRecipient(String::new()));
        }
        if recipients.len() > MAX_RECIPIENTS {
            return self.refuse_command(CommandError::TooManyRecipients);
        }
        // Online recipients get it directly; offline ones through the leader's queue.
        let mut addrs = Vec::new();
        let mut offline = Vec::new();
        for name in &recipients {
            if *name == self.ctx.cfg.name {
                return self.refuse_command(CommandError::ToSelf);
            }
            match self.ring.members.by_name(name) {
                None => return self.refuse_command(CommandError::UnknownRecipient(name.clone())),
                Some(m) if m.presence == Presence::Offline => offline.push(name.clone()),
                Some(m) => addrs.push((name.clone(), m.addr)),
            }
        }
        let dm = DirectMessage {
            id: self.next_dm_id(),
            from_name: self.ctx.cfg.name.clone(),
            to: recipients,
            lamport: self.ctx.clock.tick(),
            sent_at: wall,
            text,
        };
        for (name, addr) in addrs {
            let token = Token::Direct {
                to: name,
                dm: dm.clone(),
            };
            self.send_reliable(now, addr, Message::Direct(dm.clone()), token);
        }
        for name in offline {
            self.store_offline_for(now, &name, dm.clone());
        }
    }

    /// A private message for us, sent directly or kept while we were offline. Shown once
    /// even if it comes both ways.
    pub(super) fn on_direct(&mut self, origin: NodeId, dm: DirectMessage, offline: bool) {
        if !self.mail.seen_dms.entry(origin).or_default().first_time(dm.id.0) {
            return;
        }
        if self.ctx.cfg.persist {
            // Remembered across restarts: a copy kept for us must not be shown again.
            self.ctx.writes
                .push_back(Write::DirectShown { origin, id: dm.id });
        }
        // The sender's name is the one its identity registered, whatever the message says.
        let dm = DirectMessage {
            from_name: self.name_of(origin).unwrap_or(dm.from_name),
            ..dm
        };
        info!(
            lamport = self.ctx.clock.now().0,
            "private message from {}{}",
            dm.from_name,
            if offline { " (kept while offline)" } else { "" }
        );
        self.ctx.events.push_back(Event::Direct {
            from: dm.from_name,
            to: dm.to,
            lamport: dm.lamport,
            sent_at: dm.sent_at,
            text: dm.text,
            offline,
        });
    }
}
