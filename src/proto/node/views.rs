//! What `list` and `status` show.

use super::*;

impl Node {
    // ----- views -----

    /// Own room messages not yet seen committed (what `status` shows as `unconfirmed`).
    /// Read it after any input; the node task stops taking commands while it is at its
    /// bound.
    pub fn unconfirmed(&self) -> usize {
        self.room.unconfirmed()
    }

    /// The member table for `list`: online members first, then by name.
    pub(super) fn member_views(&self) -> Vec<MemberView> {
        let mut views: Vec<MemberView> = self
            .ring
            .members()
            .current()
            .into_iter()
            .map(|m| MemberView {
                name: m.name.clone(),
                addr: m.addr,
                online: m.presence == Presence::Online,
                leader: Some(m.id) == self.leader(),
                me: m.id == self.ctx.id,
            })
            .collect();
        views.sort_by(|a, b| (!a.online, &a.name).cmp(&(!b.online, &b.name)));
        views
    }

    /// How many voters this node can reach (the voters its table holds online, itself
    /// included unless offline or out of the room), and how many voters there are.
    fn reachable_voters(&self, voters: &BTreeSet<String>) -> usize {
        let online: BTreeSet<&str> = self
            .ring
            .members()
            .online_peers()
            .map(|m| m.name.as_str())
            .collect();
        let here = !matches!(self.life.phase(), Phase::Offline | Phase::Done);
        voters
            .iter()
            .filter(|v| {
                if **v == self.ctx.cfg.name {
                    here
                } else {
                    online.contains(v.as_str())
                }
            })
            .count()
    }

    pub(super) fn status_view(&self) -> StatusView {
        let voters = self.room.log_voters().into_owned();
        let reachable = self.reachable_voters(&voters);
        // Without a configuration (a newcomer not yet welcomed) there is nothing to reach.
        let cut_off = !voters.is_empty() && reachable < voters.len() / 2 + 1;
        // Walk the ring from this node along `next` until it closes.
        let mut ring = Vec::new();
        let mut at = Some(self.ctx.id);
        while let Some(id) = at {
            if ring.len() > self.ring.members().len() {
                break;
            }
            let Some(m) = self.ring.members().get(id) else {
                break;
            };
            ring.push(RingSeat {
                name: m.name.clone(),
                leader: Some(id) == self.leader(),
                me: id == self.ctx.id,
                suspected: self.ring.is_suspected(id),
            });
            at = self
                .ring
                .members()
                .successor_of(id)
                .filter(|n| *n != self.ctx.id);
        }
        StatusView {
            ring,
            name: self.ctx.cfg.name.clone(),
            id: self.ctx.id,
            addr: self.ctx.cfg.addr,
            prev: self.ring.members().prev().and_then(|id| self.name_of(id)),
            next: self.ring.members().next().and_then(|id| self.name_of(id)),
            leader: self.leader().and_then(|id| self.name_of(id)),
            suspected: self
                .ring
                .members()
                .online_peers()
                .filter(|m| self.ring.is_suspected(m.id))
                .map(|m| m.name.clone())
                .collect(),
            lamport: self.ctx.clock.now(),
            stats: self.transport.stats().clone(),
            in_flight: self.transport.in_flight(),
            unconfirmed: self.room.unconfirmed(),
            reachable,
            waiting_for_majority: self.room.is_waiting() || cut_off,
            voters: voters.into_iter().collect(),
            history: self.room.history().len(),
        }
    }
}
