//! Fan-out off the leader. A room of more online members than [`MAX_VOTERS`] keeps at
//! most that many voters (see `config.rs`); the others are learners. The leader sends its
//! proposals and commit notices to the voters only, so its cost per message no longer
//! grows with the room. Every learner gets each committed entry from a relay: the voters
//! (other than the leader) pass what they show on to up to [`RELAY_DEGREE`] learners
//! each, and those learners to [`RELAY_DEGREE`] more each, a tree laid out by node id.
//!
//! A relayed entry is a committed copy, as a fetch answer is, and is proved against its
//! origin's seal like any other; a learner takes committed copies from any online
//! member. Acks are hop by hop. A relay that dies or falls behind shows as a gap, which
//! the learner repairs by fetching, as any member does (from the leader first).
//!
//! A room of at most [`MAX_VOTERS`] online members works as before: every member votes
//! and gets every proposal from the leader.

use super::*;

/// The most voters a room keeps. Seven survive three losses, and the leader's cost per
/// message is six sends whatever the room's size.
pub(in crate::proto::node) const MAX_VOTERS: usize = 7;

/// How many learners each relay passes committed entries on to.
pub(in crate::proto::node) const RELAY_DEGREE: usize = 3;

/// The most entries shown at once that are relayed: more at once is a catch-up (after
/// a pause, a welcome, a skip), and the learners behind it catch up themselves.
const RELAY_MAX: usize = MAX_HOLDBACK;

impl Node {
    /// Whether the room is larger than its voters can be: then only voters get the
    /// leader's proposals, and learners get committed entries from relays.
    pub(in crate::proto::node) fn relays_in_use(&self) -> bool {
        let me = usize::from(self.life.is_member());
        self.ring.members().online_peers().count() + me > MAX_VOTERS
    }

    /// The online members the leader sends its proposals and commit notices to: all of
    /// them in a small room, the voters of `voters` in a large one.
    pub(in crate::proto::node) fn proposal_peers(
        &self,
        voters: &BTreeSet<String>,
    ) -> Vec<(NodeId, SocketAddr)> {
        let all = !self.relays_in_use();
        self.ring
            .members()
            .online_peers()
            .filter(|m| all || voters.contains(&m.name))
            .map(|m| (m.id, m.addr))
            .collect()
    }

    /// Whether member `id` gets the leader's proposals and commit notices (see
    /// [`Node::proposal_peers`]).
    pub(in crate::proto::node) fn gets_proposals(&self, id: NodeId) -> bool {
        !self.relays_in_use()
            || self
                .ring
                .members()
                .get(id)
                .is_some_and(|m| self.room.log_voters().contains(&m.name))
    }

    /// Whether this node is a learner fed by a relay: a large room, and not a voter of
    /// the configuration its log ends with.
    pub(in crate::proto::node) fn fed_by_relay(&self) -> bool {
        self.relays_in_use() && !self.room.log_voters().contains(&self.ctx.cfg.name)
    }

    /// The learners this node passes committed entries on to (none in a small room).
    pub(in crate::proto::node) fn relay_children(&self) -> Vec<SocketAddr> {
        if !self.relays_in_use() {
            return Vec::new();
        }
        let Some(leader) = self.leader() else {
            return Vec::new();
        };
        let voters = self.room.log_voters();
        let members = self.ring.members();
        let me = self.ctx.id;
        let name_of = |id: NodeId| {
            if id == me {
                Some(self.ctx.cfg.name.as_str())
            } else {
                members.get(id).map(|m| m.name.as_str())
            }
        };
        // Every online member in node id order (this node included), split into the
        // voters that relay and the learners they feed.
        let mut ids: Vec<NodeId> = members.online_peers().map(|m| m.id).collect();
        if self.life.is_member() {
            ids.push(me);
        }
        ids.sort_unstable();
        let (mut roots, mut learners): (Vec<NodeId>, Vec<NodeId>) = ids
            .into_iter()
            .partition(|id| name_of(*id).is_some_and(|n| voters.contains(n)));
        // The leader (a voter, or a learner elected) sends proposals, not relays.
        roots.retain(|id| *id != leader);
        learners.retain(|id| *id != leader);
        if roots.is_empty() {
            // No voter besides the leader yet (a room forming fast): it feeds them.
            roots.push(leader);
        }
        tree_children(me, &roots, &learners)
            .into_iter()
            .filter_map(|id| members.get(id).map(|m| m.addr))
            .collect()
    }

    /// Passes entries just shown on to this node's relay children, as committed copies.
    pub(in crate::proto::node) fn relay(&mut self, now: Instant, shown: Vec<ChatEntry>) {
        if shown.is_empty() || shown.len() > RELAY_MAX {
            return;
        }
        let children = self.relay_children();
        if children.is_empty() {
            return;
        }
        for to in children {
            for e in &shown {
                let e = ChatEntry {
                    term: COMMITTED_TERM,
                    ..e.clone()
                };
                self.send_entry(now, to, e);
            }
        }
    }
}

/// The relay tree: the children of `me` among `learners`, fed by `roots` (the voters that
/// relay, at least one). The first [`RELAY_DEGREE`] learners per root hang off the roots
/// in turn; each later learner off an earlier learner, [`RELAY_DEGREE`] each, so a room
/// of n is about log3(n / 6) hops deep.
pub(in crate::proto::node) fn tree_children(
    me: NodeId,
    roots: &[NodeId],
    learners: &[NodeId],
) -> Vec<NodeId> {
    if roots.is_empty() {
        return Vec::new();
    }
    let first = RELAY_DEGREE * roots.len();
    let parent = |i: usize| {
        if i < first {
            roots[i % roots.len()]
        } else {
            learners[(i - first) / RELAY_DEGREE]
        }
    };
    learners
        .iter()
        .enumerate()
        .filter(|&(i, _)| parent(i) == me)
        .map(|(_, id)| *id)
        .collect()
}
