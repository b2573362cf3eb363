//! Tables pushed whole: the leader's to members back online, and this node's own entry
//! to a member that reports it wrongly (a refutation).

use super::*;

impl Node {
    /// The leader sends the tables it owes members back online (see
    /// [`Node::member_came_online`]) once its limit allows; a member gone offline again,
    /// or gone, or a node no longer leading, is owed none.
    pub(in crate::proto::node) fn push_owed_tables(&mut self, now: Instant) {
        if self.ring.table_owed.is_empty() {
            return;
        }
        if !self.is_leader() || !self.life.is_member() {
            return self.ring.table_owed.clear();
        }
        let owed: Vec<NodeId> = self.ring.table_owed.iter().copied().collect();
        for id in owed {
            let online = self
                .ring
                .members
                .get(id)
                .filter(|m| m.presence == Presence::Online);
            let Some(addr) = online.map(|m| m.addr) else {
                self.ring.table_owed.remove(&id);
                continue;
            };
            if self.may_push_table_back(id, now) {
                self.ring.table_owed.remove(&id);
                self.send_table_to_returning(now, addr);
            }
        }
    }

    /// The leader, to a member back online at `addr` (paused, cut off): it missed what
    /// the leader alone may tell, members let in or moved meanwhile, so it is sent the
    /// leader's table, whose word it takes. The leader's own entry goes first, stamped
    /// now: a verdict of the leader's death the member made while cut off gives way
    /// before it takes in the rest, so it passes no such verdict on to the members it
    /// learns of (a newcomer would take the watcher's word and elect another leader).
    pub(super) fn send_table_to_returning(&mut self, now: Instant, addr: SocketAddr) {
        let Some(mut me) = self.ring.members.get(self.ctx.id).cloned() else {
            return;
        };
        me.stamp = Stamp {
            lamport: self.ctx.clock.tick(),
            by: self.ctx.id,
        };
        self.ring.members.merge(me.clone());
        self.send_reliable(now, addr, Message::Members(vec![me]), Token::Control);
        for part in self.ring.members.chunks() {
            self.send_reliable(now, addr, Message::Members(part), Token::Control);
        }
    }

    /// Someone (at `reporter`) says this node is offline while it is not: re-announce
    /// itself with a newer stamp (refutation), to everyone and to the reporter.
    pub(in crate::proto::node) fn refute(&mut self, now: Instant, reporter: SocketAddr) {
        let Some(mut me) = self.ring.members.get(self.ctx.id).cloned() else {
            return;
        };
        me.presence = Presence::Online;
        me.stamp = Stamp {
            lamport: self.ctx.clock.tick(),
            by: self.ctx.id,
        };
        log_at!(info, self, "refuting a report that this node is offline");
        self.ring.members.merge(me.clone());
        let msg = Message::Members(vec![me]);
        self.broadcast(now, &msg, &Token::Control);
        if !self.ring.members.online_peers().any(|m| m.addr == reporter) {
            self.send_reliable(now, reporter, msg, Token::Control);
        }
    }
}
