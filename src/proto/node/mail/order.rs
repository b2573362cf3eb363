//! One order per recipient: each sender's private messages reach a recipient in the
//! order it wrote them, whichever way each goes.
//!
//! Reliable messages may overtake each other (a lost first try is sent again after the
//! next one went through), and the leader's queue hands over what it keeps only when it
//! gets to it. So a copy for a recipient online is sent directly only when nothing
//! written before it for that recipient is still on its way:
//! - behind a direct copy not yet acked, it waits here ([`Mailbox::held`]) until that
//!   one's fate is known, then goes as the rule says;
//! - behind one of ours the leader has still to keep or hand over (waiting for its store
//!   request's answer, kept in the queue, or saved but not yet known handed over), it
//!   goes through the queue too, and the leader hands it over after the earlier ones.
//!
//! "Kept and not yet handed over" is read from our replica of the queue, by our name (a
//! restarted sender has a new node id); a message the leader said it keeps is counted
//! on its word until the replica has it, for at most [`KEPT_BRIDGE`], so that a replica
//! that never comes (or a word of its hand-over that never does) cannot keep a
//! recipient on the queue path for good.

use super::*;

/// How long the leader's word that it keeps one of our messages stands in for our
/// replica of it.
pub(in crate::proto::node) const KEPT_BRIDGE: Duration = Duration::from_secs(30);

impl Node {
    /// Sends our copy `dm` (text `text`) for `name` the way that keeps our messages to
    /// `name` in order (see the module notes).
    pub(in crate::proto::node) fn send_copy(
        &mut self,
        now: Instant,
        name: String,
        dm: DirectMessage,
        text: String,
    ) {
        if self.mail.held.get(&name).is_some_and(|q| !q.is_empty()) {
            return self.hold_copy(name, dm, text, false);
        }
        if let Some((dm, text)) = self.route_copy(now, &name, dm, text) {
            self.hold_copy(name, dm, text, false);
        }
    }

    /// Sends the copies held for `name` that may go now (after the fate of the direct
    /// copy they waited for is known), oldest first.
    pub(in crate::proto::node) fn release_held(&mut self, now: Instant, name: &str) {
        while let Some((dm, text)) = self.mail.held.get_mut(name).and_then(VecDeque::pop_front) {
            if let Some((dm, text)) = self.route_copy(now, name, dm, text) {
                return self.hold_copy(name.to_string(), dm, text, true);
            }
        }
        self.mail.held.remove(name);
    }

    fn hold_copy(&mut self, name: String, dm: DirectMessage, text: String, front: bool) {
        log_at!(
            debug,
            self,
            "holding {:?} for {name} behind an earlier one",
            dm.id
        );
        let q = self.mail.held.entry(name).or_default();
        match front {
            true => q.push_front((dm, text)),
            false => q.push_back((dm, text)),
        }
    }

    /// Sends `dm` for `name` directly, or through the leader's queue, or (if a direct
    /// copy written before it is still on its way) gives it back to wait.
    fn route_copy(
        &mut self,
        now: Instant,
        name: &str,
        dm: DirectMessage,
        text: String,
    ) -> Option<(DirectMessage, String)> {
        // Not in the room ourselves (gone offline since it was written): it waits with
        // the store requests, sent once we are back.
        let online = self
            .ring
            .members()
            .by_name(name)
            .filter(|m| m.presence == Presence::Online && self.life.is_member())
            .map(|m| m.addr);
        let Some(addr) = online else {
            self.store_offline_for(now, name, dm, text);
            return None;
        };
        if self.queue_ahead(now, name) {
            if let Some(idx) = dm.to.iter().position(|n| n == name) {
                self.mail.behind.insert((dm.id, idx as u8));
            }
            self.store_offline_for(now, name, dm, text);
            return None;
        }
        let direct_ahead = self
            .transport
            .any_pending(|t| matches!(t, Token::Mail(MailToken::Direct { to, .. }) if to == name));
        if direct_ahead {
            return Some((dm, text));
        }
        let token = Token::Mail(MailToken::Direct {
            to: name.to_string(),
            dm: dm.clone(),
            text,
        });
        self.send_reliable(now, addr, Message::Direct(dm), token);
        None
    }

    /// Whether one of our messages for `name` is with the leader's queue: waiting for its
    /// store request's answer, or kept and not yet known handed over.
    fn queue_ahead(&mut self, now: Instant, name: &str) -> bool {
        let me = self.ctx.id;
        let offline = &self.mail.offline;
        self.mail.kept_mine.retain(|(id, _), (to, at)| {
            now.saturating_duration_since(*at) < KEPT_BRIDGE
                && !offline.was_handed_over(to, me, *id)
        });
        self.mail.first_unsaved_for(name).is_some()
            || offline.holds_from(name, &self.ctx.cfg.name)
            || self.mail.kept_mine.values().any(|(to, _)| to == name)
    }
}
