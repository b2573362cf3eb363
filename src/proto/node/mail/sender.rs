//! The sender's side of a direct message for an offline recipient: the leader is asked to
//! keep it, asked again until it confirms, and the sender is told it was saved or which
//! limit of the queue kept it out (the recipient's, the sender's own share, or the whole
//! queue's).

use super::*;

impl Node {
    /// Has the leader keep `dm`, the copy sealed for the offline recipient `to` (whose
    /// text is `text`, told back to the user if it cannot be kept).
    pub(in crate::proto::node) fn store_offline_for(
        &mut self,
        now: Instant,
        to: &str,
        dm: DirectMessage,
        text: String,
    ) {
        let Some(idx) = dm.to.iter().position(|n| n == to) else {
            return;
        };
        let idx = idx as u8;
        let key = (dm.id, idx);
        self.mail.unsaved.insert(key, (dm, text));
        // Behind an earlier one for the same recipient, it goes once that one is saved.
        if self.mail.first_unsaved_for(to) == Some(key) {
            self.send_next_store(now, to);
        }
        self.ctx
            .timers
            .set_if_unset(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
    }

    /// Asks the leader to keep the first of our unsaved messages for `to`, unless a
    /// message written before it is still on its way to `to` directly (if that one is
    /// never acked, it is kept first). One at a time per recipient: store requests, like
    /// all reliable messages, may overtake each other, and the leader keeps (and hands
    /// over) in the order they come; the next goes once this one is saved.
    pub(in crate::proto::node) fn send_next_store(&mut self, now: Instant, to: &str) {
        let Some(key) = self.mail.first_unsaved_for(to) else {
            return;
        };
        let earlier_direct = self.transport.any_pending(|t| {
            matches!(t, Token::Mail(MailToken::Direct { to: name, dm, .. })
                if name == to && dm.id < key.0)
        });
        if earlier_direct {
            return;
        }
        if let Some((dm, _)) = self.mail.unsaved.get(&key) {
            let dm = dm.clone();
            self.send_store(now, key.1, dm);
        }
    }

    fn send_store(&mut self, now: Instant, to: u8, dm: DirectMessage) {
        log_at!(
            debug,
            self,
            "asking the leader to keep {:?} for {}",
            dm.id,
            dm.to.get(to as usize).map_or("?", |s| s.as_str())
        );
        if self.is_leader() {
            // While recovering, kept once it has taken over (it resubmits then).
            if !self.room.is_recovering() {
                let me = self.ctx.id;
                self.keep(now, me, None, to, dm);
            }
        } else if let Some(leader) = self.leader_addr() {
            self.send_reliable(now, leader, Message::Store { to, dm }, Token::Control);
        }
        // No leader now: sent again by the resubmit timer or on the leader change.
    }

    /// Sends again what the leader has not confirmed.
    pub(in crate::proto::node) fn resend_unsaved(&mut self, now: Instant) {
        if !self.life.is_member() {
            return;
        }
        // The first for each recipient (see `send_next_store`).
        let recipients: BTreeSet<String> = self
            .mail
            .unsaved
            .iter()
            .filter_map(|((_, to), (dm, _))| dm.to.get(*to as usize).cloned())
            .collect();
        for name in recipients {
            self.send_next_store(now, &name);
        }
        if !self.mail.unsaved.is_empty() {
            self.ctx
                .timers
                .set_if_unset(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
        }
    }

    /// The leader's answer to our store request.
    pub(in crate::proto::node) fn on_saved(
        &mut self,
        now: Instant,
        id: DmId,
        to: u8,
        full: Option<QueueLimit>,
    ) {
        let Some((dm, text)) = self.mail.unsaved.remove(&(id, to)) else {
            return;
        };
        let name = dm.to.get(to as usize).cloned().unwrap_or_default();
        let behind = self.mail.behind.remove(&(id, to));
        if let Some(limit) = full {
            let reason = match limit {
                // Online, but behind earlier ones the queue still holds for them.
                _ if behind => format!(
                    "it waited behind your earlier messages to {name}, which the room is \
                     still handing over, and the queue they wait in is full; send it again \
                     once they have arrived"
                ),
                QueueLimit::Recipient => {
                    format!("{name} is offline and their message queue is full")
                }
                QueueLimit::Sender => format!(
                    "{name} is offline and {MAX_QUEUE_PER_SENDER} of your messages already \
                     wait for them; send more once those are handed over"
                ),
                QueueLimit::Room => format!(
                    "{name} is offline and the room keeps no more messages for offline \
                     members now ({MAX_QUEUE_TOTAL} wait)"
                ),
            };
            self.ctx.out.event(Event::Undelivered {
                to: name.clone(),
                text,
                reason,
            });
        } else {
            let leader = self
                .leader()
                .and_then(|l| self.name_of(l))
                .unwrap_or_else(|| "the leader".into());
            let me = self.ctx.id;
            let in_replica = self
                .mail
                .offline
                .items()
                .any(|i| i.origin == me && i.dm.id == id);
            if !self.mail.offline.was_handed_over(&name, me, id) && !in_replica {
                self.mail.kept_mine.insert((id, to), (name.clone(), now));
            }
            self.ctx.out.event(Event::Saved {
                to: name.clone(),
                leader,
                behind,
            });
        }
        // The next one for the same recipient, now that this one is kept before it (told
        // after this one's answer, which a leader keeping its own gives at once).
        self.send_next_store(now, &name);
        self.maybe_notify_leave(now);
    }
}
