//! What `list` and `status` show.

use super::*;
use crate::proto::event::RingSeat;

impl Node {
    // ----- views -----

    pub(super) fn member_views(&self) -> Vec<MemberView> {
        self.members
            .current()
            .into_iter()
            .map(|m| MemberView {
                name: m.name.clone(),
                addr: m.addr,
                online: m.presence == Presence::Online,
                leader: Some(m.id) == self.leader(),
                me: m.id == self.id,
            })
            .collect()
    }

    pub(super) fn status_view(&self) -> StatusView {
        // Walk the ring from this node along `next` until it closes.
        let mut ring = Vec::new();
        let mut at = Some(self.id);
        while let Some(id) = at {
            if ring.len() > self.members.len() {
                break;
            }
            let Some(m) = self.members.get(id) else { break };
            ring.push(RingSeat {
                name: m.name.clone(),
                leader: Some(id) == self.leader(),
                me: id == self.id,
                suspected: self.detector.is_suspected(id),
            });
            at = self.members.successor_of(id).filter(|n| *n != self.id);
        }
        StatusView {
            ring,
            name: self.cfg.name.clone(),
            id: self.id,
            addr: self.cfg.addr,
            prev: self.members.prev().and_then(|id| self.name_of(id)),
            next: self.members.next().and_then(|id| self.name_of(id)),
            leader: self.leader().and_then(|id| self.name_of(id)),
            suspected: self
                .members
                .online_peers()
                .filter(|m| self.detector.is_suspected(m.id))
                .map(|m| m.name.clone())
                .collect(),
            lamport: self.clock.now(),
            stats: self.stats.clone(),
            in_flight: self.reliable.in_flight(),
            unconfirmed: self.outbox.len(),
            history: self.history.len(),
        }
    }
}
