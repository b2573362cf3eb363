//! Private messages: sending them, each copy sealed to its recipient, and showing the
//! ones that come in once they open and their sender's signature checks.

use super::*;
use crate::proto::seal::{DirectContent, DirectHeader, open_direct, seal_direct};

impl Node {
    /// `send`: a private message to each named recipient, directly.
    pub(in crate::proto::node) fn send_direct(
        &mut self,
        now: Instant,
        wall: WallMillis,
        to: Vec<String>,
        text: String,
    ) {
        if self.looking_for_room() {
            return self.refuse_command(CommandError::LookingForRoom);
        }
        if !self.life.is_member() {
            return self.refuse_command(CommandError::NotInRoom);
        }
        if let Err(e) = check_text(&text, MAX_DIRECT_TEXT_BYTES) {
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
        // Online recipients get it directly; offline ones through the leader's queue (and
        // so may online ones, to stay behind an earlier message: see `order.rs`). Either
        // way each gets a copy sealed to the identity its name is bound to.
        let mut targets = Vec::new();
        for name in &recipients {
            if *name == self.ctx.cfg.name {
                return self.refuse_command(CommandError::ToSelf);
            }
            match self.ring.members().by_name(name) {
                None => return self.refuse_command(CommandError::UnknownRecipient(name.clone())),
                Some(m) => targets.push((name.clone(), m.key)),
            }
        }
        let id = self.mail.next_dm_id();
        let content = DirectContent {
            lamport: self.ctx.clock.tick(),
            sent_at: wall,
            text,
        };
        self.ctx.out.event(Event::Direct {
            from: self.ctx.cfg.name.clone(),
            to: recipients.clone(),
            lamport: content.lamport,
            sent_at: content.sent_at,
            text: content.text.clone(),
            offline: false,
            mine: true,
            history: false,
        });
        for (name, key) in targets {
            let header = DirectHeader {
                origin: self.ctx.id,
                id,
                from_name: &self.ctx.cfg.name,
                to: &recipients,
                recipient: &name,
                recipient_key: &key,
            };
            let entropy = self.mail.entropy();
            let sealed = match seal_direct(&self.ctx.identity, &header, &content, entropy) {
                Ok(sealed) => sealed,
                Err(e) => {
                    log_at!(warn, self, "cannot seal a private message for {name}: {e}");
                    self.ctx.out.event(Event::Undelivered {
                        to: name.clone(),
                        text: content.text.clone(),
                        reason: format!("{name}'s identity key cannot be used ({e})"),
                    });
                    continue;
                }
            };
            let dm = DirectMessage {
                id,
                from_name: self.ctx.cfg.name.clone(),
                to: recipients.clone(),
                sealed,
            };
            self.send_copy(now, name, dm, content.text.clone());
        }
    }

    /// A private message for us, sent directly or kept while we were offline. Shown only
    /// if it opens with our identity and its sender's signature checks against the key
    /// bound to the sender's name; shown once even if it comes both ways (or again after
    /// a restart, with a database).
    pub(in crate::proto::node) fn on_direct(
        &mut self,
        now: Instant,
        origin: NodeId,
        dm: DirectMessage,
        offline: bool,
    ) {
        let me = self.ctx.cfg.name.clone();
        if !dm.to.contains(&me) {
            let why = format!("a private message from {origin} not addressed to us");
            return self.refuse_forged(now, 1, &why);
        }
        // The sender is the node the message names (the one that sent it directly, or
        // the one a kept copy says it came from), under the name its identity registered.
        let Binding::Key(sender) = self.bound_key(origin, &dm.from_name) else {
            let why = format!(
                "a private message claiming to be from {} (node {origin})",
                dm.from_name
            );
            return self.refuse_forged(now, 1, &why);
        };
        let my_key = self.ctx.identity.verifying_key().to_bytes();
        let header = DirectHeader {
            origin,
            id: dm.id,
            from_name: &dm.from_name,
            to: &dm.to,
            recipient: &me,
            recipient_key: &my_key,
        };
        let content = match open_direct(&self.ctx.identity, &header, &sender, &dm.sealed) {
            Ok(content) => content,
            Err(e) => {
                let why = format!(
                    "private message {:?} from {} (node {origin}): {e}",
                    dm.id, dm.from_name
                );
                return self.refuse_forged(now, 1, &why);
            }
        };
        if !self
            .mail
            .seen_dms
            .entry(origin)
            .or_default()
            .first_time(dm.id.0)
        {
            return;
        }
        log_at!(
            info,
            self,
            "private message from {}{}",
            dm.from_name,
            if offline { " (kept while offline)" } else { "" }
        );
        let message = ShownDirect {
            from: dm.from_name,
            to: dm.to,
            lamport: content.lamport,
            sent_at: content.sent_at,
            text: content.text,
            offline,
        };
        if self.ctx.cfg.persist {
            // Remembered across restarts: a copy kept for us must not be shown again; and
            // shown again if the program had not printed it.
            let write = Write::DirectShown {
                origin,
                id: dm.id,
                message: message.clone(),
            };
            self.ctx.out.write(write);
        }
        self.ctx.out.event(message.event(false));
    }
}
