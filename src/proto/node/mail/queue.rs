//! The leader's offline queue: kept direct messages replicated to every member, confirmed
//! to their sender once a replica holds them, handed over in order to the recipient back
//! online, and forgotten everywhere once it acked; replicas gathered from members.

use super::*;

impl Node {
    /// What became of a reliable message of the mailbox: an acked direct message is a
    /// receipt, an unacked one goes to the leader's queue; a replica counts towards the
    /// sender's confirmation; a hand-over acked is done, one not acked is tried again.
    pub(in crate::proto::node) fn mail_settled(&mut self, now: Instant, t: MailToken, fate: Fate) {
        match (t, fate) {
            (MailToken::Direct { to, .. }, Fate::Acked) => {
                // A later message for `to` may have waited for this one's fate.
                self.send_next_store(now, &to);
                self.ctx.out.event(Event::Receipt { to: to.clone() });
                self.release_held(now, &to);
                self.maybe_notify_leave(now);
            }
            // No ack from the recipient: the leader keeps it for when it is back.
            // Gone for good: the user was told when it left.
            (MailToken::Direct { .. }, _) if self.life.has_left() => {}
            (MailToken::Direct { to, dm, text }, _) => {
                self.store_offline_for(now, &to, dm, text);
                self.release_held(now, &to);
                self.maybe_notify_leave(now);
            }
            (MailToken::Replica { origin, id, to }, Fate::Acked) => {
                self.replica_acked(now, origin, id, to)
            }
            (MailToken::Replica { origin, id, to }, _) => self.replica_lost(now, origin, id, to),
            (
                MailToken::Handover {
                    to,
                    origin,
                    id,
                    idx,
                },
                Fate::Acked,
            ) => self.handed_over(now, to, origin, id, idx),
            (MailToken::Handover { to, .. }, _) => self.mail.handover_failed(&to),
        }
    }

    /// A replica of a kept message: from the leader (we hold a replica), from a member
    /// answering a new leader's recovery, or from a member back after `dereg` or a heal.
    /// Only the leader followed hands replicas out, and only a leader takes them back; a
    /// replica is kept only for a recipient the member table names, and within the
    /// queue's limits. Anything else is dropped, counted (`limited`) and logged.
    pub(in crate::proto::node) fn on_queued(
        &mut self,
        now: Instant,
        (from, sender, id): (SocketAddr, NodeId, MsgId),
        item: QueuedDm,
    ) {
        let to = item.recipient().to_string();
        // A recovering leader counts every answer, kept or not: it waits for all.
        let answer = self.room.count_answer(sender, id, Seq(0));
        let why_not = if self.leader() != Some(sender) && !self.is_leader() {
            Some(format!("a kept message from {sender}, which does not lead"))
        } else if self.ring.members().by_name(&to).is_none() {
            Some(format!("a kept message for {to:?}, not a member"))
        } else {
            None
        };
        if let Some(why) = why_not {
            self.note_limited(now, &format!("dropped {why}"));
            if answer {
                self.maybe_finish_recovery(now);
            }
            return;
        }
        if self.is_leader()
            && self
                .mail
                .offline
                .was_handed_over(&to, item.origin, item.dm.id)
        {
            // A stale replica: tell its holder the message is gone.
            let msg = Message::Dequeued {
                origin: item.origin,
                id: item.dm.id,
                to: item.to,
            };
            self.send_reliable(now, from, msg, Token::Control);
        }
        if item.origin == self.ctx.id {
            // Our replica holds it now (or it was handed over): no bridge needed.
            self.mail.kept_mine.remove(&(item.dm.id, item.to));
        }
        if let Err(full) = self.mail.offline.push(item) {
            self.note_limited(
                now,
                &format!("dropped a kept message from {sender}: {full}"),
            );
        }
        if answer {
            self.maybe_finish_recovery(now);
        } else {
            // A leader given a replica (after a heal) hands it over if it can.
            self.start_handover(now, &to);
        }
    }

    /// A member asks us to keep a direct message.
    pub(in crate::proto::node) fn on_store(
        &mut self,
        now: Instant,
        from: SocketAddr,
        origin: NodeId,
        to: u8,
        dm: DirectMessage,
    ) {
        log_at!(debug, self, "store request {:?} from {origin}", dm.id);
        if self.room.held() >= MAX_HELD {
            return self.note_limited(
                now,
                &format!("dropped a store request from {origin}: too many wait"),
            );
        }
        let Some((from, origin, to, dm)) = self.room.hold_store((from, origin, to, dm)) else {
            return;
        };
        if self.is_leader() {
            self.keep(now, origin, Some(from), to, dm);
        }
        // Not the leader: the sender sends it again to whoever leads.
    }

    /// Keeps a message, replicates it to every member, and confirms it to the sender once
    /// one replica holds it (or at once when there is nobody to hold it).
    pub(in crate::proto::node) fn keep(
        &mut self,
        now: Instant,
        origin: NodeId,
        reply_to: Option<SocketAddr>,
        to: u8,
        dm: DirectMessage,
    ) {
        let item = QueuedDm { origin, to, dm };
        let recipient = item.recipient().to_string();
        let key = (origin, item.dm.id, to);
        match self.mail.offline.push(item.clone()) {
            Err(full) => {
                self.note_limited(now, &format!("not keeping a message from {origin}: {full}"));
                self.confirm_saved(now, origin, reply_to, item.dm.id, to, Some(full.limit()))
            }
            Ok(false) if !self.mail.awaiting_replica.contains_key(&key) => {
                // A retry of one already kept and replicated.
                self.confirm_saved(now, origin, reply_to, item.dm.id, to, None);
            }
            Ok(false) => {}
            Ok(true) => {
                log_at!(info, self, "keeping a message for {recipient}");
                let peers: Vec<SocketAddr> =
                    self.ring.members().online_peers().map(|m| m.addr).collect();
                if peers.is_empty() {
                    self.confirm_saved(now, origin, reply_to, item.dm.id, to, None);
                } else {
                    self.mail.awaiting_replica.insert(key, reply_to);
                    let token = Token::Mail(MailToken::Replica {
                        origin,
                        id: item.dm.id,
                        to,
                    });
                    for addr in peers {
                        self.send_reliable(now, addr, Message::Queued(item.clone()), token.clone());
                    }
                }
                self.start_handover(now, &recipient);
            }
        }
    }

    fn confirm_saved(
        &mut self,
        now: Instant,
        origin: NodeId,
        reply_to: Option<SocketAddr>,
        id: DmId,
        to: u8,
        full: Option<QueueLimit>,
    ) {
        if origin == self.ctx.id {
            self.on_saved(now, id, to, full);
        } else if let Some(addr) = reply_to {
            self.send_reliable(now, addr, Message::Saved { id, to, full }, Token::Control);
        }
    }

    pub(in crate::proto::node) fn replica_acked(
        &mut self,
        now: Instant,
        origin: NodeId,
        id: DmId,
        to: u8,
    ) {
        if let Some(reply_to) = self.mail.awaiting_replica.remove(&(origin, id, to)) {
            self.confirm_saved(now, origin, reply_to, id, to, None);
        }
    }

    /// A replica never acked; if none is left to ack, the message is as safe as it gets.
    pub(in crate::proto::node) fn replica_lost(
        &mut self,
        now: Instant,
        origin: NodeId,
        id: DmId,
        to: u8,
    ) {
        let others = self
            .transport
            .any_pending(|t| *t == Token::Mail(MailToken::Replica { origin, id, to }));
        if !others {
            self.replica_acked(now, origin, id, to);
        }
    }

    /// Hands the oldest kept message to `name` if it is online, one at a time, in order.
    pub(in crate::proto::node) fn start_handover(&mut self, now: Instant, name: &str) {
        if !self.is_leader() || self.room.is_recovering() || self.mail.handing_over.contains(name) {
            log_at!(
                debug,
                self,
                "not handing over to {name}: leader {} recovering {} busy {}",
                self.is_leader(),
                self.room.is_recovering(),
                self.mail.handing_over.contains(name)
            );
            return;
        }
        let Some(addr) = self
            .ring
            .members()
            .by_name(name)
            .filter(|m| m.presence == Presence::Online)
            .map(|m| m.addr)
        else {
            return;
        };
        let Some(item) = self.mail.offline.front(name).cloned() else {
            return;
        };
        if name == self.ctx.cfg.name {
            // Kept for us while we were offline, and now we lead: hand it to ourselves.
            let (to, origin, id, idx) = (name.to_string(), item.origin, item.dm.id, item.to);
            self.on_direct(now, item.origin, item.dm, true);
            return self.handed_over(now, to, origin, id, idx);
        }
        log_at!(debug, self, "handing {:?} over to {name}", item.dm.id);
        self.mail.handing_over.insert(name.to_string());
        let token = Token::Mail(MailToken::Handover {
            to: name.to_string(),
            origin: item.origin,
            id: item.dm.id,
            idx: item.to,
        });
        self.send_reliable(now, addr, Message::Handover(item), token);
    }

    /// Hands over whatever is kept for members who are online now.
    pub(in crate::proto::node) fn hand_over_all(&mut self, now: Instant) {
        let names: Vec<String> = self.mail.offline.recipients().map(str::to_string).collect();
        for name in names {
            self.start_handover(now, &name);
        }
    }

    /// The recipient acked a hand-over: forget it everywhere, then the next one.
    pub(in crate::proto::node) fn handed_over(
        &mut self,
        now: Instant,
        to: String,
        origin: NodeId,
        id: DmId,
        idx: u8,
    ) {
        self.mail.handing_over.remove(&to);
        let mine = origin == self.ctx.id;
        if self.mail.remove_kept(&to, origin, id, idx, mine) {
            let msg = Message::Dequeued {
                origin,
                id,
                to: idx,
            };
            self.broadcast(now, &msg, &Token::Control);
        }
        self.start_handover(now, &to);
    }

    /// A replica learns a kept message was handed over.
    pub(in crate::proto::node) fn on_dequeued(&mut self, origin: NodeId, id: DmId, to: u8) {
        let mine = origin == self.ctx.id;
        // Our own may not be in our replica yet (the leader's word that it was handed
        // over can come before its replica, and before its "saved").
        let name = self
            .mail
            .offline
            .items()
            .find(|i| i.origin == origin && i.dm.id == id && i.to == to)
            .map(|i| i.recipient().to_string())
            .or_else(|| mine.then(|| self.mail.own_recipient(id, to)).flatten())
            .unwrap_or_default();
        // Remembered even if we did not hold it, so no stale replica brings it back.
        self.mail.remove_kept(&name, origin, id, to, mine);
    }

    /// Back after `dereg`: give the leader our replica of the queue; it keeps what it
    /// lacks and ignores what was handed over meanwhile.
    pub(in crate::proto::node) fn return_replica(&mut self, now: Instant) {
        let Some(leader) = self.leader_addr().filter(|_| !self.is_leader()) else {
            return;
        };
        let kept: Vec<QueuedDm> = self.mail.offline.items().cloned().collect();
        for item in kept {
            self.send_reliable(now, leader, Message::Queued(item), Token::Control);
        }
    }

    /// A newcomer gets a replica of the whole queue.
    pub(in crate::proto::node) fn replicate_queue_to(&mut self, now: Instant, addr: SocketAddr) {
        let items: Vec<QueuedDm> = self.mail.offline.items().cloned().collect();
        for item in items {
            self.send_reliable(now, addr, Message::Queued(item), Token::Control);
        }
    }
}
