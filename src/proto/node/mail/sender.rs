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
        self.mail.unsaved.insert((dm.id, idx), (dm.clone(), text));
        self.send_store(now, idx, dm);
        self.ctx
            .timers
            .set_if_unset(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
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
        let pending: Vec<(u8, DirectMessage)> = self
            .mail
            .unsaved
            .iter()
            .map(|((_, to), (dm, _))| (*to, dm.clone()))
            .collect();
        for (to, dm) in pending {
            self.send_store(now, to, dm);
        }
        if !self.mail.unsaved.is_empty() {
            self.ctx
                .timers
                .set_if_unset(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
        }
    }

    /// The leader's answer to our store request.
    pub(in crate::proto::node) fn on_saved(&mut self, id: DmId, to: u8, full: Option<QueueLimit>) {
        let Some((dm, text)) = self.mail.unsaved.remove(&(id, to)) else {
            return;
        };
        let name = dm.to.get(to as usize).cloned().unwrap_or_default();
        if let Some(limit) = full {
            let reason = match limit {
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
            self.ctx.out.event(Event::Saved { to: name, leader });
        }
    }
}
