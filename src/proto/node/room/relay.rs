//! Fan-out off the leader. A room of more online members than [`MAX_VOTERS`] keeps at
//! most that many voters (see `config.rs`); the others are learners. The leader sends its
//! proposals and commit notices to the voters only, so its cost per message no longer
//! grows with the room. Every learner gets each committed entry from a relay: the voters
//! (other than the leader) pass what they show on to up to [`RELAY_DEGREE`] learners
//! each, and those learners to [`RELAY_DEGREE`] more each, a tree laid out by node id.
//!
//! A relayed entry is a committed copy, as a fetch answer is, and is proved against its
//! origin's seal like any other; a learner takes one unasked only from the relay its
//! own view of the tree gives it (the seal proves a message, not its number). Acks are hop by hop. A relay that dies or falls behind shows as a gap, which
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

/// What a [`Layout`] was worked out for: the table's digest, the leader, the last
/// configuration entry applied and the last one held, whether this node is a member.
type LayoutKey = (u64, Option<NodeId>, Seq, Option<Seq>, bool);

/// The relay tree as worked out for one state of the member table, the configuration
/// and the leader, kept until one of them changes (a learner asks for every entry it
/// takes whether it comes from its relay).
#[derive(Debug, Default)]
pub(in crate::proto::node) struct Layout {
    /// What it was worked out for.
    key: Option<LayoutKey>,
    /// More online members than voters can be: relays are in use.
    large: bool,
    /// Whether this node votes in the configuration as shown (not as held).
    votes: bool,
    /// The voters that relay, in node id order (see [`Node::work_out_layout`]).
    roots: Vec<NodeId>,
    /// The learners, in node id order.
    learners: Vec<NodeId>,
    /// The relay that feeds this node, if it is a learner.
    parent: Option<NodeId>,
}

impl Node {
    /// The relay tree for the current state, worked out again only when it changed.
    fn layout(&self) -> std::sync::MutexGuard<'_, Layout> {
        let key = (
            self.ring.members().digest(),
            self.leader(),
            self.room.voters_at,
            self.room
                .holdback
                .held_configs_from(self.room.voters_at.next())
                .last()
                .map(|e| e.seq),
            self.life.is_member(),
        );
        // A lock only so that a node may be shared between threads: nothing else holds it
        // while this runs, and a poisoned one holds a layout as good as any.
        let mut layout = self.room.layout.lock().unwrap_or_else(|e| e.into_inner());
        if layout.key != Some(key) {
            *layout = self.work_out_layout(key);
        }
        layout
    }

    /// Works the relay tree out (see [`Node::layout`]): every online member in node id
    /// order (this node included) but the leader, which sends proposals, not relays,
    /// split into the voters that relay (the leader alone while no other voter is
    /// online) and the learners they feed.
    fn work_out_layout(&self, key: LayoutKey) -> Layout {
        let me = self.ctx.id;
        let members = self.ring.members();
        let mut ids: Vec<NodeId> = members.online_peers().map(|m| m.id).collect();
        if self.life.is_member() {
            ids.push(me);
        }
        // The tree follows the configuration as shown, not as held: a voter holds the
        // changes the leader proposed, a learner gets none of them until they commit, and
        // a relay and its learners must agree on who feeds whom (a learner takes a
        // relayed copy only from the relay its own tree names). A member being added
        // takes its relay's copies until it shows the change, and the leader's proposals
        // from when it was proposed: what it missed before comes from the relay.
        let shown = self.room.voters();
        let mut layout = Layout {
            key: Some(key),
            large: ids.len() > MAX_VOTERS,
            votes: shown.contains(&self.ctx.cfg.name),
            ..Layout::default()
        };
        let Some(leader) = self.leader().filter(|_| layout.large) else {
            return layout;
        };
        let votes = |id: NodeId| {
            let name = if id == me {
                Some(&self.ctx.cfg.name)
            } else {
                members.get(id).map(|m| &m.name)
            };
            name.is_some_and(|n| shown.contains(n))
        };
        ids.sort_unstable();
        ids.retain(|id| *id != leader);
        let (mut roots, learners): (Vec<NodeId>, Vec<NodeId>) =
            ids.into_iter().partition(|id| votes(*id));
        if roots.is_empty() {
            // No voter besides the leader yet (a room forming fast): it feeds them.
            roots.push(leader);
        }
        layout.parent = tree_parent(me, &roots, &learners);
        layout.roots = roots;
        layout.learners = learners;
        layout
    }

    /// Whether the room is larger than its voters can be: then only voters get the
    /// leader's proposals, and learners get committed entries from relays.
    pub(in crate::proto::node) fn relays_in_use(&self) -> bool {
        self.layout().large
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

    /// Whether this node is a learner fed by a relay: a large room, not a voter of the
    /// configuration as shown, and neither leading nor taking over (a learner elected
    /// takes nothing it did not ask for).
    pub(in crate::proto::node) fn fed_by_relay(&self) -> bool {
        let layout = self.layout();
        layout.large && !layout.votes && !self.is_leader() && !self.room.is_recovering()
    }

    /// The learners this node passes committed entries on to (none in a small room).
    fn relay_children(&self) -> Vec<SocketAddr> {
        let layout = self.layout();
        let members = self.ring.members();
        tree_children(self.ctx.id, &layout.roots, &layout.learners)
            .into_iter()
            .filter_map(|id| members.get(id).map(|m| m.addr))
            .collect()
    }

    /// Whether `sender` is the relay that feeds this learner, as this node sees the tree:
    /// the only member whose committed copies it takes unasked. (Another member's copy
    /// would be its word alone for the number an entry has: the seal proves the entry,
    /// not its place.)
    pub(in crate::proto::node) fn is_relay_of_mine(&self, sender: NodeId) -> bool {
        self.fed_by_relay() && self.layout().parent == Some(sender)
    }

    /// The leader sends the fillers among `shown` to every learner: every online member
    /// that was not a voter before them or is not one after (one added by them, or by a
    /// change proposed as they were shown, gets no proposal of them).
    fn send_fillers_to_learners(&mut self, now: Instant, shown: &[ChatEntry]) {
        let fillers: Vec<ChatEntry> = shown
            .iter()
            .filter(|e| e.is_filler())
            .map(|e| ChatEntry {
                term: COMMITTED_TERM,
                ..e.clone()
            })
            .collect();
        if fillers.is_empty() {
            return;
        }
        let after = self.room.log_voters();
        // A learner with a flow window's worth in flight fetches what it missed.
        let learners: Vec<SocketAddr> = self
            .ring
            .members()
            .online_peers()
            .filter(|m| !after.contains(&m.name) || !self.room.voters().contains(&m.name))
            .map(|m| m.addr)
            .filter(|to| self.has_room_for(*to))
            .collect();
        for to in learners {
            for e in &fillers {
                self.send_entry(now, to, e.clone());
            }
        }
    }

    /// Passes entries just shown on to this node's relay children, as committed copies.
    /// Fillers (configuration changes among them) carry no origin's seal, so a member
    /// takes one from the leader only: the leader sends those to every learner itself
    /// (they are rare), and relays pass on the rest; the leader too, to the learners it
    /// feeds while no other voter is online.
    pub(in crate::proto::node) fn relay(&mut self, now: Instant, shown: Vec<ChatEntry>) {
        if shown.is_empty() || shown.len() > RELAY_MAX || !self.relays_in_use() {
            return;
        }
        let committed = |e: &ChatEntry| ChatEntry {
            term: COMMITTED_TERM,
            ..e.clone()
        };
        if self.is_leader() {
            self.send_fillers_to_learners(now, &shown);
        }
        let children = self.relay_children();
        if children.is_empty() {
            return;
        }
        let token = Token::Room(RoomToken::Sequenced);
        let mut open = Vec::with_capacity(children.len());
        for e in shown.iter().filter(|e| !e.is_filler()) {
            // A child with a flow window's worth in flight fetches what it missed (its
            // neighbours' heartbeats tell it how far the room is).
            open.clear();
            open.extend(children.iter().copied().filter(|c| self.has_room_for(*c)));
            // Encoded once for all the children.
            let encoded = EncodedMessage::sequenced(&committed(e));
            self.send_encoded_to(now, encoded, &token, &open);
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
    (0..learners.len())
        .filter(|&i| parent_at(i, roots, learners) == Some(me))
        .map(|i| learners[i])
        .collect()
}

/// The relay tree: the parent of learner `me` (see [`tree_children`]), if it is one.
pub(in crate::proto::node) fn tree_parent(
    me: NodeId,
    roots: &[NodeId],
    learners: &[NodeId],
) -> Option<NodeId> {
    let i = learners.iter().position(|id| *id == me)?;
    parent_at(i, roots, learners)
}

/// The parent of the learner at position `i` (see [`tree_children`]).
fn parent_at(i: usize, roots: &[NodeId], learners: &[NodeId]) -> Option<NodeId> {
    if roots.is_empty() {
        return None;
    }
    let first = RELAY_DEGREE * roots.len();
    if i < first {
        Some(roots[i % roots.len()])
    } else {
        learners.get((i - first) / RELAY_DEGREE).copied()
    }
}
