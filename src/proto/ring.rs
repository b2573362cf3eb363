//! Membership: the member table every node holds, and the ring derived from it.
//!
//! The table maps `NodeId` to a [`Member`] entry. Each entry is a last-writer-wins register
//! versioned by a [`Stamp`] (Lamport time, then writer id), so merging any two tables in any
//! order gives the same result: updates can arrive from anyone, twice, or late.
//!
//! The ring is not stored: it is the online members sorted by `NodeId`, each node's `next`
//! being the following id (wrapping). Every node that holds the same table sees the same
//! ring, and removing a dead node from the table repairs the ring by itself.

use crate::ids::NodeId;
use crate::wire::{MAX_PLAIN, Member, Presence};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Upper bound of one encoded [`Member`] (a longest name, an IPv6 address, largest stamps).
pub const MEMBER_WIRE_MAX: usize = 135;
/// Upper bound of one encoded voucher in a welcome: an entry, an epoch, a signature.
pub const VOUCHER_WIRE_MAX: usize = MEMBER_WIRE_MAX + 90;
/// Members per welcome datagram, leaving room for the envelope, the welcome header and
/// the newcomer's voucher.
pub const MEMBERS_PER_DATAGRAM: usize = (MAX_PLAIN - 120 - VOUCHER_WIRE_MAX) / MEMBER_WIRE_MAX;
/// The most entries a member table holds; a join beyond it is refused as room full.
pub const MAX_MEMBERS: usize = 1000;

/// What a merge changed, as far as users can see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing (older or equal version).
    Unchanged,
    /// The entry is now online and was not before.
    CameOnline,
    /// The entry is now offline and was online before.
    WentOffline,
    /// A newer version with the same presence (an address change, say).
    Updated,
}

/// The member table.
#[derive(Debug, Clone)]
pub struct Membership {
    me: NodeId,
    members: BTreeMap<NodeId, Member>,
    /// The wrapping sum of every entry's [`entry_hash`], kept up to date by `merge`, so
    /// that [`Membership::digest`] (sent in every heartbeat and compared with every one
    /// received) costs nothing however large the table.
    digest: u64,
    /// This node's predecessor and successor, found again by every merge that changes
    /// the table (they are asked for on every heartbeat).
    neighbours: (Option<NodeId>, Option<NodeId>),
    /// How many entries have each address (a restarted process at the same address
    /// has a new id), so that "is this a member's address" costs a lookup.
    addrs: BTreeMap<SocketAddr, u32>,
    /// How many times the table changed (see [`Membership::version`]).
    version: u64,
}

/// splitmix64's finaliser: a cheap, well-mixing 64-bit hash step.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One entry's share of the table digest: its id, version and presence.
fn entry_hash(m: &Member) -> u64 {
    let online = u64::from(m.presence == Presence::Online);
    mix(m.id.0 ^ mix(m.stamp.lamport.0 ^ mix(m.stamp.by.0 ^ online)))
}

impl Membership {
    /// A table holding only this node's own entry.
    pub fn new(me: Member) -> Self {
        let id = me.id;
        let digest = entry_hash(&me);
        let addrs = BTreeMap::from([(me.addr, 1)]);
        let mut members = BTreeMap::new();
        members.insert(id, me);
        let mut table = Membership {
            me: id,
            members,
            digest,
            neighbours: (None, None),
            addrs,
            version: 0,
        };
        table.find_neighbours();
        table
    }

    /// A table of saved `entries` for the node `me` (which need not be among them).
    pub fn from_entries(me: NodeId, entries: Vec<Member>) -> Self {
        let members: BTreeMap<NodeId, Member> = entries.into_iter().map(|m| (m.id, m)).collect();
        let digest = members
            .values()
            .fold(0u64, |d, m| d.wrapping_add(entry_hash(m)));
        let mut addrs = BTreeMap::new();
        for m in members.values() {
            *addrs.entry(m.addr).or_insert(0) += 1;
        }
        let mut table = Membership {
            me,
            members,
            digest,
            neighbours: (None, None),
            addrs,
            version: 0,
        };
        table.find_neighbours();
        table
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The entry for `id`.
    pub fn get(&self, id: NodeId) -> Option<&Member> {
        self.members.get(&id)
    }

    /// Merges one entry (last writer wins by stamp) and says what changed.
    pub fn merge(&mut self, m: Member) -> Change {
        match self.members.get(&m.id) {
            Some(old) if old.stamp >= m.stamp => Change::Unchanged,
            old => {
                let was_online = old.is_some_and(|o| o.presence == Presence::Online);
                let now_online = m.presence == Presence::Online;
                let existed = old.is_some();
                let old_hash = old.map_or(0, entry_hash);
                self.digest = self
                    .digest
                    .wrapping_sub(old_hash)
                    .wrapping_add(entry_hash(&m));
                if let Some(old_addr) = old.map(|o| o.addr)
                    && let Some(n) = self.addrs.get_mut(&old_addr)
                {
                    *n -= 1;
                    if *n == 0 {
                        self.addrs.remove(&old_addr);
                    }
                }
                *self.addrs.entry(m.addr).or_insert(0) += 1;
                self.members.insert(m.id, m);
                self.version += 1;
                self.find_neighbours();
                match (was_online, now_online) {
                    (false, true) => Change::CameOnline,
                    (true, false) => Change::WentOffline,
                    _ if existed => Change::Updated,
                    // A new entry that is offline from the start (a crashed node we hear of).
                    _ => Change::Updated,
                }
            }
        }
    }

    /// Drops the entry for `id` (never this node's own); the entry dropped, if any. The
    /// table is then as if the entry had never been merged.
    pub fn remove(&mut self, id: NodeId) -> Option<Member> {
        if id == self.me {
            return None;
        }
        let old = self.members.remove(&id)?;
        self.version += 1;
        self.digest = self.digest.wrapping_sub(entry_hash(&old));
        if let Some(n) = self.addrs.get_mut(&old.addr) {
            *n -= 1;
            if *n == 0 {
                self.addrs.remove(&old.addr);
            }
        }
        self.find_neighbours();
        Some(old)
    }

    /// A number that grows with every change of the table (an entry merged or dropped):
    /// what is worked out from the table alone holds while it stays the same.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every entry, in ring (id) order.
    pub fn entries(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// How many entries the table holds.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the table holds no entries (never true: it always holds this node).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Online members other than this node, in ring order.
    pub fn online_peers(&self) -> impl Iterator<Item = &Member> {
        self.members
            .values()
            .filter(move |m| m.presence == Presence::Online && m.id != self.me)
    }

    /// Whether some entry of the table (online or not) has address `addr`.
    pub fn has_addr(&self, addr: SocketAddr) -> bool {
        self.addrs.contains_key(&addr)
    }

    /// Whether `id` is in the table and online.
    pub fn is_online(&self, id: NodeId) -> bool {
        self.get(id).is_some_and(|m| m.presence == Presence::Online)
    }

    /// The online member after `id` in ring order (wrapping), other than `id` itself.
    pub fn successor_of(&self, id: NodeId) -> Option<NodeId> {
        let online = |m: &&Member| m.presence == Presence::Online && m.id != id;
        self.members
            .range(id..)
            .map(|(_, m)| m)
            .filter(online)
            .chain(self.members.values().filter(online))
            .map(|m| m.id)
            .next()
    }

    /// The online member before `id` in ring order (wrapping), other than `id` itself.
    pub fn predecessor_of(&self, id: NodeId) -> Option<NodeId> {
        let online = |m: &&Member| m.presence == Presence::Online && m.id != id;
        self.members
            .range(..id)
            .rev()
            .map(|(_, m)| m)
            .filter(online)
            .chain(self.members.values().rev().filter(online))
            .map(|m| m.id)
            .next()
    }

    /// This node's successor on the ring.
    pub fn next(&self) -> Option<NodeId> {
        self.neighbours.1
    }

    /// This node's predecessor on the ring.
    pub fn prev(&self) -> Option<NodeId> {
        self.neighbours.0
    }

    fn find_neighbours(&mut self) {
        self.neighbours = (self.predecessor_of(self.me), self.successor_of(self.me));
    }

    /// The entry that currently stands for `name`: its online entry if there is one,
    /// else its most recent one. (A restarted process gets a new id, so a name can have
    /// older, offline entries.)
    pub fn by_name(&self, name: &str) -> Option<&Member> {
        self.members
            .values()
            .filter(|m| m.name == name)
            .max_by_key(|m| (m.presence == Presence::Online, m.stamp))
    }

    /// One entry per name (the one [`Membership::by_name`] picks), in ring order.
    pub fn current(&self) -> Vec<&Member> {
        self.members
            .values()
            .filter(|m| self.by_name(&m.name).is_some_and(|c| c.id == m.id))
            .collect()
    }

    /// A digest of the whole table (ids, presence, stamps): equal tables, equal digests.
    /// Kept up to date by every merge, so reading it is free.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The table cut into parts that each fit one datagram.
    pub fn chunks(&self) -> Vec<Vec<Member>> {
        let all: Vec<Member> = self.members.values().cloned().collect();
        all.chunks(MEMBERS_PER_DATAGRAM)
            .map(|c| c.to_vec())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Lamport;
    use crate::wire::Stamp;
    use std::net::SocketAddr;

    fn member(id: u64, name: &str, presence: Presence, lamport: u64) -> Member {
        Member {
            id: NodeId(id),
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 5000 + id as u16)),
            presence,
            key: [id as u8; 32],
            stamp: Stamp {
                lamport: Lamport(lamport),
                by: NodeId(id),
            },
        }
    }

    fn table() -> Membership {
        let mut t = Membership::new(member(20, "me", Presence::Online, 1));
        t.merge(member(10, "a", Presence::Online, 1));
        t.merge(member(30, "b", Presence::Online, 1));
        t.merge(member(40, "c", Presence::Online, 1));
        t
    }

    #[test]
    fn ring_is_sorted_by_id_and_wraps() {
        let t = table();
        assert_eq!(t.next(), Some(NodeId(30)));
        assert_eq!(t.prev(), Some(NodeId(10)));
        assert_eq!(t.successor_of(NodeId(40)), Some(NodeId(10)));
        assert_eq!(t.predecessor_of(NodeId(10)), Some(NodeId(40)));
    }

    #[test]
    fn offline_member_is_cut_out_of_the_ring() {
        let mut t = table();
        assert_eq!(
            t.merge(member(30, "b", Presence::Offline, 2)),
            Change::WentOffline
        );
        assert_eq!(t.next(), Some(NodeId(40)));
        assert_eq!(t.online_peers().count(), 2);
    }

    #[test]
    fn alone_has_no_neighbours() {
        let t = Membership::new(member(1, "solo", Presence::Online, 1));
        assert_eq!(t.next(), None);
        assert_eq!(t.prev(), None);
    }

    /// Last writer wins: merge order does not matter, stale updates are ignored.
    #[test]
    fn merge_is_order_independent() {
        let updates = [
            member(30, "b", Presence::Offline, 5),
            member(30, "b", Presence::Online, 3),
            member(50, "d", Presence::Online, 2),
        ];
        let mut a = table();
        let mut b = table();
        for u in updates.iter() {
            a.merge(u.clone());
        }
        for u in updates.iter().rev() {
            b.merge(u.clone());
        }
        let ea: Vec<_> = a.entries().cloned().collect();
        let eb: Vec<_> = b.entries().cloned().collect();
        assert_eq!(ea, eb);
        assert_eq!(
            a.merge(member(30, "b", Presence::Online, 4)),
            Change::Unchanged
        );
    }

    #[test]
    fn a_name_is_represented_by_its_online_entry() {
        let mut t = table();
        t.merge(member(30, "b", Presence::Offline, 5));
        t.merge(member(35, "b", Presence::Online, 6));
        assert_eq!(t.by_name("b").unwrap().id, NodeId(35));
        let names: Vec<_> = t.current().iter().map(|m| m.name.clone()).collect();
        assert_eq!(names, vec!["a", "me", "b", "c"]);
    }

    #[test]
    fn digest_follows_content_not_merge_order() {
        let mut a = table();
        let mut b = table();
        assert_eq!(a.digest(), b.digest());
        a.merge(member(30, "b", Presence::Offline, 2));
        assert_ne!(a.digest(), b.digest());
        b.merge(member(30, "b", Presence::Offline, 2));
        assert_eq!(a.digest(), b.digest());
    }

    /// The digest kept up to date merge by merge equals one computed from the final
    /// entries, and an update back and forth leaves it where it was.
    #[test]
    fn the_running_digest_matches_the_table() {
        let mut t = table();
        let start = t.digest();
        for (id, presence, lamport) in [
            (30, Presence::Offline, 2),
            (30, Presence::Online, 7),
            (40, Presence::Online, 3),
            (30, Presence::Online, 5), // stale: ignored
            (40, Presence::Offline, 9),
        ] {
            t.merge(member(id, "x", presence, lamport));
            let fresh = Membership::from_entries(t.me(), t.entries().cloned().collect());
            assert_eq!(t.digest(), fresh.digest());
        }
        assert_ne!(t.digest(), start);
        let fresh = Membership::from_entries(t.me(), table().entries().cloned().collect());
        assert_eq!(fresh.digest(), start);
    }

    /// Removing an entry leaves the table, its digest and its addresses as if the entry
    /// had never been merged; this node's own entry is never removed.
    #[test]
    fn a_removed_entry_leaves_no_trace() {
        let mut t = table();
        let without = table();
        t.merge(member(50, "d", Presence::Offline, 3));
        assert!(t.has_addr(member(50, "d", Presence::Offline, 3).addr));
        assert_eq!(t.remove(NodeId(50)).map(|m| m.name), Some("d".into()));
        assert_eq!(t.digest(), without.digest());
        assert!(!t.has_addr(member(50, "d", Presence::Offline, 3).addr));
        assert_eq!(t.remove(NodeId(50)), None);
        assert_eq!(t.remove(t.me()), None, "never its own entry");
        t.remove(NodeId(30));
        assert_eq!(t.next(), Some(NodeId(40)), "the ring closes over the gap");
    }

    #[test]
    fn chunks_cover_the_table() {
        let mut t = table();
        for i in 100..130 {
            t.merge(member(i, &format!("n{i}"), Presence::Online, 1));
        }
        let chunks = t.chunks();
        assert!(chunks.iter().all(|c| c.len() <= MEMBERS_PER_DATAGRAM));
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), t.len());
    }
}
