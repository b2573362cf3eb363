//! Departed members age out of the member table.
//!
//! A member that left (an ephemeral one that exited, say) or has been offline for long
//! would otherwise stay in every table, and in every `list`, for ever. The leader decides,
//! so that every member drops the same entries: about once a second it looks for entries
//! that
//!
//! - have been offline for [`NodeConfig::forget_after`] as far as it has seen (it counts
//!   from when it started leading, or saw the member go, whichever is later),
//! - whose user nobody holds kept messages for (the leader holds every kept message: see
//!   `mail/queue.rs`), and that is not a voter,
//!
//! or that a newer entry of the same user has replaced (a restart gives a new id). It
//! drops them and tells every member with [`Message::Forget`], each named with the stamp
//! of the entry dropped. A member takes that only from the leader it follows, and drops
//! an entry only if it is still offline and no newer than that stamp: a member that came
//! back meanwhile has a newer, online entry, which stays. Only a leader adds entries to
//! tables (see `members.rs`), so nobody else brings a dropped entry back.
//!
//! A departed user who comes back just joins again: the leader admits it as any
//! newcomer, and a returning node drops the entries the leader's welcome does not have
//! (see `life/join.rs`).

use super::*;

/// Heartbeat rounds between two looks for departed members (about a second).
pub(in crate::proto::node) const AGE_OUT_ROUNDS: u64 = 10;
/// Entries named in one [`Message::Forget`] (each at most 30 bytes encoded).
pub(in crate::proto::node) const FORGET_PER_MESSAGE: usize = 30;

impl Node {
    /// The leader's look for departed members (see the module documentation): drops the
    /// ones due and tells every member. Anyone else forgets what it saw as leader.
    pub(in crate::proto::node) fn age_out(&mut self, now: Instant) {
        if !self.room.is_sequencing() || self.room.is_waiting() {
            self.ring.offline_since.clear();
            return;
        }
        let me = self.ctx.id;
        let members = &self.ring.members;
        let since = &mut self.ring.offline_since;
        since.retain(|id, _| {
            members
                .get(*id)
                .is_some_and(|m| m.presence == Presence::Offline)
        });
        // The entry standing for each name (as `Membership::by_name` picks it), in one
        // pass: a table of many offline entries costs no more than a sort.
        let mut current: BTreeMap<&str, &Member> = BTreeMap::new();
        for m in members.entries() {
            if m.presence == Presence::Offline && m.id != me {
                since.entry(m.id).or_insert(now);
            }
            let rank = |m: &Member| (m.presence == Presence::Online, m.stamp);
            let best = current.entry(m.name.as_str()).or_insert(m);
            if rank(m) > rank(best) {
                *best = m;
            }
        }
        let voters = self.room.log_voters();
        let due: Vec<NodeId> = since
            .iter()
            .filter(|(id, at)| {
                let Some(m) = members.get(**id) else {
                    return false;
                };
                let replaced = current.get(m.name.as_str()).is_some_and(|c| c.id != m.id);
                let departed = now.saturating_duration_since(**at) >= self.ctx.cfg.forget_after
                    && !voters.contains(&m.name)
                    && !self.mail.holds_for(&m.name);
                replaced || departed
            })
            .map(|(id, _)| *id)
            .collect();
        if due.is_empty() {
            return;
        }
        let mut dropped = Vec::new();
        for id in due {
            self.ring.offline_since.remove(&id);
            if let Some(m) = self.forget_member(id) {
                log_at!(
                    info,
                    self,
                    "{} ({id}) departed long ago and nobody holds messages for it; dropping it from the member table",
                    m.name
                );
                dropped.push((m.id, m.stamp));
            }
        }
        for part in dropped.chunks(FORGET_PER_MESSAGE) {
            self.broadcast(now, &Message::Forget(part.to_vec()), &Token::Control);
        }
    }

    /// The leader's word to drop departed members: each entry that is still offline and
    /// no newer than the stamp named goes. From anyone else it is ignored.
    pub(in crate::proto::node) fn on_forget(&mut self, sender: NodeId, list: Vec<(NodeId, Stamp)>) {
        if self.leader() != Some(sender) {
            return log_at!(debug, self, "not taking {sender}'s word to forget members");
        }
        for (id, stamp) in list {
            let gone = self
                .ring
                .members
                .get(id)
                .is_some_and(|m| m.presence == Presence::Offline && m.stamp <= stamp);
            if gone && let Some(m) = self.forget_member(id) {
                log_at!(
                    debug,
                    self,
                    "dropping departed {} ({id}) on the leader's word",
                    m.name
                );
            }
        }
    }

    /// Back in the room after being away: drops the entries the leader's table
    /// (`in_welcome`, its ids) does not have. Only a leader adds entries, so these are
    /// ones it dropped meanwhile (departed, online as far as this node last saw), and it
    /// would never tell this node, which was not a member then.
    pub(in crate::proto::node) fn forget_departed_since(&mut self, in_welcome: &BTreeSet<NodeId>) {
        let gone: Vec<NodeId> = self
            .ring
            .members
            .entries()
            .filter(|m| !in_welcome.contains(&m.id))
            .map(|m| m.id)
            .collect();
        for id in gone {
            self.forget_member(id);
        }
    }

    /// `m` came online at its address: another entry there is a process that no longer
    /// runs (one socket to an address), whose going this node may have missed (cut off
    /// meanwhile, say), or whose drop it missed. Nobody would ever tell it: the leader
    /// let `m` in there only once it held that process offline, and drops a process
    /// replaced by a restart at once (see [`Node::age_out`]), so nobody watches it any
    /// more, and its word to drop it is not sent again. It goes from this table; a
    /// leader that still keeps it (offline: another user's, say) brings it back as that
    /// with its table. The leader followed (`leader`: the one that welcomes us, while
    /// joining) is left to the usual bounds.
    pub(in crate::proto::node) fn forget_replaced_at(
        &mut self,
        m: &Member,
        leader: Option<NodeId>,
    ) {
        let stale: Vec<NodeId> = self
            .ring
            .members
            .entries()
            .filter(|o| o.addr == m.addr && o.id != m.id)
            .filter(|o| o.id != self.ctx.id && Some(o.id) != leader)
            .map(|o| o.id)
            .collect();
        for id in stale {
            if let Some(o) = self.forget_member(id) {
                log_at!(
                    info,
                    self,
                    "{} ({id}) at {} is replaced there by {} ({}); dropping it",
                    o.name,
                    o.addr,
                    m.name,
                    m.id
                );
            }
        }
    }

    /// Drops `id`'s entry and what the ring knew of it; the entry, if there was one.
    pub(in crate::proto::node) fn forget_member(&mut self, id: NodeId) -> Option<Member> {
        let m = self.ring.members.remove(id)?;
        self.ring.detector.forget(id);
        self.ring.probed.remove(&id);
        self.ring.checking.remove(&id);
        self.ring.asked_about.remove(&id);
        self.ring.probing_for.remove(&id);
        self.ring.table_pushed.remove(&id);
        self.ring.table_pushed_back.remove(&id);
        self.ring.table_owed.remove(&id);
        // Dropped for good: no voucher of its brings it back (see `life/voucher.rs`).
        self.life.member_forgotten(id);
        Some(m)
    }
}
