//! Private messages: sending them, and showing the ones that come in.

use super::*;

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
            match self.ring.members().by_name(name) {
                None => return self.refuse_command(CommandError::UnknownRecipient(name.clone())),
                Some(m) if m.presence == Presence::Offline => offline.push(name.clone()),
                Some(m) => addrs.push((name.clone(), m.addr)),
            }
        }
        let dm = DirectMessage {
            id: self.mail.next_dm_id(),
            from_name: self.ctx.cfg.name.clone(),
            to: recipients,
            lamport: self.ctx.clock.tick(),
            sent_at: wall,
            text,
        };
        self.show_direct(dm.clone(), false, true);
        for (name, addr) in addrs {
            let token = Token::Mail(MailToken::Direct {
                to: name,
                dm: dm.clone(),
            });
            self.send_reliable(now, addr, Message::Direct(dm.clone()), token);
        }
        for name in offline {
            self.store_offline_for(now, &name, dm.clone());
        }
    }

    /// A private message for us, sent directly or kept while we were offline. Shown once
    /// even if it comes both ways.
    pub(in crate::proto::node) fn on_direct(
        &mut self,
        origin: NodeId,
        dm: DirectMessage,
        offline: bool,
    ) {
        if !self
            .mail
            .seen_dms
            .entry(origin)
            .or_default()
            .first_time(dm.id.0)
        {
            return;
        }
        if self.ctx.cfg.persist {
            // Remembered across restarts: a copy kept for us must not be shown again.
            self.ctx.out.write(Write::DirectShown { origin, id: dm.id });
        }
        // The sender's name is the one its identity registered, whatever the message says.
        let dm = DirectMessage {
            from_name: self.name_of(origin).unwrap_or(dm.from_name),
            ..dm
        };
        log_at!(
            info,
            self,
            "private message from {}{}",
            dm.from_name,
            if offline { " (kept while offline)" } else { "" }
        );
        self.show_direct(dm, offline, false);
    }

    /// Shows a private message: one for this node, or (`mine`) one it sent.
    fn show_direct(&mut self, dm: DirectMessage, offline: bool, mine: bool) {
        self.ctx.out.event(Event::Direct {
            from: dm.from_name,
            to: dm.to,
            lamport: dm.lamport,
            sent_at: dm.sent_at,
            text: dm.text,
            offline,
            mine,
        });
    }
}
