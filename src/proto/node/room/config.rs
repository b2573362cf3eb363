//! The voting configuration: which users' copies count towards a majority. It changes
//! only through committed log entries, one user at a time, so every member applies the
//! same changes in the same order and any majority before a change overlaps any majority
//! after it. The leader proposes the changes: a newcomer or a member back online is
//! added, a member gone (left, offline, or cut out as dead by the ring) is removed, and a
//! member that asks to leave is removed before it goes. One change waits for the one
//! before it, except the undoing of an addition whose user is gone (see
//! [`Node::reconcile_voters`]); the undone user is never a committed voter, so neither
//! the cap on voters nor the rule that the last voter stays applies to it. A new
//! leader proposes no change before an entry of its own term is committed (it proposes
//! a filler at its take-over when it has nothing else to propose again), as Raft's
//! changes one server at a time require: without it, a change left in its log by an
//! older leader and overwritten elsewhere could commit beside the change made there.

use super::relay::MAX_VOTERS;
use super::*;
use crate::wire::ConfigChange;
use std::borrow::Cow;

/// One configuration a node's log passes through (see [`Room::configs_in_log`]).
pub(in crate::proto::node) struct LoggedConfig {
    /// The voting users.
    pub voters: BTreeSet<String>,
    /// The number of the change that made it (of the last change committed, for the
    /// committed configuration).
    pub at: Seq,
    /// The term of the change that made it; none for the committed configuration.
    pub term: Option<u64>,
    /// Whether the next change held was proposed after a change this log lacks (its
    /// parent is not this configuration's change): the log may go on from here with a
    /// change nobody holds.
    pub unknown_after: bool,
}

impl Room {
    /// The voting users.
    pub(in crate::proto::node) fn voters(&self) -> &BTreeSet<String> {
        &self.voters
    }

    /// The committed configuration, and the number of its last change.
    pub(in crate::proto::node) fn committed_voters(&self) -> (BTreeSet<String>, Seq) {
        (self.voters.clone(), self.voters_at)
    }

    /// Takes the configuration `voters`, as of entry `at` (a welcome, the disk, a new
    /// room); entries up to `at` are not applied again.
    pub(in crate::proto::node) fn set_voters(&mut self, voters: BTreeSet<String>, at: Seq) {
        self.voters = voters;
        self.voters_at = at;
    }

    /// The configuration with every configuration entry held (not yet known committed)
    /// applied too: at most one change ahead of the latest committed one, which this node
    /// may not know of yet (or an addition and its undoing, see
    /// [`Node::reconcile_voters`]).
    pub(in crate::proto::node) fn log_voters(&self) -> Cow<'_, BTreeSet<String>> {
        let mut held = self
            .holdback
            .held_configs_from(self.voters_at.next())
            .peekable();
        if held.peek().is_none() {
            // The usual case, asked on every ack: no copy.
            return Cow::Borrowed(&self.voters);
        }
        let mut voters = self.voters.clone();
        for e in held {
            apply_held_change(&mut voters, e);
        }
        Cow::Owned(voters)
    }

    /// Every configuration from the committed one through each held change in turn (the
    /// last is [`Room::log_voters`]'s), each with the term of the change that made it
    /// (none for the committed one) and whether the next change held was proposed after
    /// a change this log lacks (see [`ChatEntry::config_parent`]). See
    /// [`Node::take_over_shortfall`] for what a take-over needs of them.
    pub(in crate::proto::node) fn configs_in_log(&self) -> Vec<LoggedConfig> {
        let mut voters = self.voters.clone();
        let mut all = vec![LoggedConfig {
            voters: voters.clone(),
            at: self.voters_at,
            term: None,
            unknown_after: false,
        }];
        let mut at = self.voters_at;
        for e in self.holdback.held_configs_from(self.voters_at.next()) {
            if let Some(last) = all.last_mut() {
                last.unknown_after = e.config_parent() != at;
            }
            apply_held_change(&mut voters, e);
            at = e.seq;
            all.push(LoggedConfig {
                voters: voters.clone(),
                at: e.seq,
                term: Some(e.term),
                unknown_after: false,
            });
        }
        all
    }

    /// Whether this node leads and an entry of its own term is committed: before, its
    /// configuration may end with a change from an older term that a majority never held
    /// and another leader overwrote, so no change may be proposed on top of it (Raft's
    /// rule for changes one user at a time: the conflicting change could commit with a
    /// majority of the other configuration).
    fn settled(&self) -> bool {
        self.leadership().is_some_and(|l| l.settles_at.is_none())
    }

    /// The number of the last configuration change in the log, held or committed (0 for
    /// none): the parent of the next change proposed.
    pub(in crate::proto::node) fn last_change_at(&self) -> Seq {
        self.holdback
            .held_configs_from(self.voters_at.next())
            .last()
            .map_or(self.voters_at, |e| e.seq)
    }

    /// Whether a configuration change is held and not yet known committed.
    pub(in crate::proto::node) fn holds_changes_in_flight(&self) -> bool {
        self.holdback
            .held_configs_from(self.voters_at.next())
            .next()
            .is_some()
    }

    /// The configuration changes held and not yet known committed, in log order.
    fn changes_in_flight(&self) -> Vec<ConfigChange> {
        self.holdback
            .held_configs_from(self.voters_at.next())
            .filter_map(|e| e.config_change())
            .collect()
    }

    /// Applies a committed configuration entry; whether it changed anything.
    fn apply_config(&mut self, e: &ChatEntry) -> bool {
        let Some(change) = e.config_change() else {
            return false;
        };
        if e.seq <= self.voters_at {
            return false;
        }
        self.voters_at = e.seq;
        match change {
            ConfigChange::Add(user) => {
                self.voters.insert(user);
            }
            ConfigChange::Remove(user) => {
                self.voters.remove(&user);
            }
        }
        true
    }
}

impl Node {
    /// Takes the configuration `voters` as of entry `at` (a new room, a welcome) and keeps
    /// it on disk, so a restart knows whose majority it needs.
    pub(in crate::proto::node) fn adopt_voters(&mut self, voters: BTreeSet<String>, at: Seq) {
        self.room.set_voters(voters, at);
        self.write_voters(at);
    }

    fn write_voters(&mut self, at: Seq) {
        if self.ctx.cfg.persist {
            self.ctx.out.write(Write::Voters {
                voters: self.room.voters().iter().cloned().collect(),
                at,
            });
        }
    }

    /// How many voters make a majority, and how many voters hold entry `acks` (the acking
    /// members' users, and this node's), in the configuration this node's log ends with
    /// (a change proposed or held counts before it is committed, as in Raft: with one
    /// change at a time, any majority of it overlaps any majority of the one before).
    pub(in crate::proto::node) fn holders(&self, acks: &BTreeSet<NodeId>) -> (usize, usize) {
        self.holders_among(&self.room.log_voters(), acks)
    }

    /// [`Node::holders`] in the configuration `voters` (worked out once for many entries).
    pub(in crate::proto::node) fn holders_among(
        &self,
        voters: &BTreeSet<String>,
        acks: &BTreeSet<NodeId>,
    ) -> (usize, usize) {
        self.voters_among(voters, acks, true)
    }

    /// How many of `voters` are among the online members `ids` (this node too, with
    /// `me`), and how many a majority of them is: `(majority, held)`.
    pub(in crate::proto::node) fn voters_among(
        &self,
        voters: &BTreeSet<String>,
        ids: &BTreeSet<NodeId>,
        me: bool,
    ) -> (usize, usize) {
        // One copy per user: two processes of one user (a restart while the old one was
        // paused, which then came back) are one voter.
        let mut held: BTreeSet<&str> = ids
            .iter()
            .filter_map(|id| self.ring.members().get(*id))
            .filter(|m| m.presence == Presence::Online && voters.contains(&m.name))
            .map(|m| m.name.as_str())
            .collect();
        if me && voters.contains(&self.ctx.cfg.name) {
            held.insert(&self.ctx.cfg.name);
        }
        (voters.len() / 2 + 1, held.len())
    }

    /// Whether, as far as this node leads, a majority of the committed configuration
    /// (this node counting, if it votes) has been told the commit point up to its last
    /// change; always, when this node does not lead. Survivors not told that a change
    /// committed still need a majority of the configuration before it to take over (see
    /// `take_over_shortfall`), so a voter taken out to leave (the leader included) goes
    /// only once this holds: else a room of two whose leader left, or a room whose
    /// leader crashed as a voter left, would wait for good for the one that went.
    pub(in crate::proto::node) fn room_told_of_config(&self) -> bool {
        let Some(l) = self.room.leadership() else {
            return true;
        };
        let at = self.room.voters_at;
        // Told the commit point, and holding every number up to the change (a member
        // that lacks one shows nothing past it, and does not apply the change).
        let told: BTreeSet<NodeId> = l
            .told
            .iter()
            .filter(|(id, upto)| {
                **upto >= at
                    && l.owed
                        .get(id)
                        .is_none_or(|owed| owed.first().is_none_or(|s| *s > at))
            })
            .map(|(id, _)| *id)
            .collect();
        let (majority, held) = self.holders_among(self.room.voters(), &told);
        held >= majority
    }

    /// A committed entry was shown: if it changes the configuration, apply it (and keep
    /// it on disk); a leader may propose the next change.
    pub(in crate::proto::node) fn on_config_committed(&mut self, now: Instant, e: &ChatEntry) {
        if !self.room.apply_config(e) {
            return;
        }
        let voters: Vec<&str> = self.room.voters().iter().map(String::as_str).collect();
        log_at!(info, self, "voters now {} (#{})", voters.join(", "), e.seq);
        self.write_voters(e.seq);
        let removed_me = !self.room.voters().contains(&self.ctx.cfg.name);
        if removed_me && matches!(self.life.phase(), Phase::Leaving { notified: false }) {
            // Out of the configuration: the room goes on without us.
            self.room.retire();
            self.maybe_notify_leave(now);
        }
        self.reconcile_voters(now);
    }

    /// The leader proposes the next change of the configuration, if none is in flight
    /// (its own, or one a previous leader proposed): first a user gone (or asking to
    /// go), then one online and not yet voting. One exception: a newcomer whose addition
    /// is in flight and who has gone since (left right after joining, or crashed) is
    /// removed again at once. Its addition needs its copy when the room had only a bare
    /// majority of voters up (a room of one, say), and a removal after it would wait for
    /// the addition to commit first: the room would wait for good. The configurations
    /// before, between and after differ by that one user each, and the last is the
    /// first, so any majority of one overlaps any majority of another, as with one change
    /// at a time; the removal commits by a majority of the voters without it, and the
    /// addition with it.
    pub(in crate::proto::node) fn reconcile_voters(&mut self, now: Instant) {
        if !self.room.is_sequencing() {
            return;
        }
        let Some(wanted) = self.wanted_voters() else {
            return;
        };
        // The undoing goes before the leader's own term settles: an addition proposed
        // again at a take-over, whose user went before acking it, may need that user's
        // copy to commit, and so would every entry of the term. It brings the
        // configuration back to the committed one.
        let change = match self.room.changes_in_flight().as_slice() {
            [ConfigChange::Add(user)] if !wanted.contains(user) => {
                Some(ConfigChange::Remove(user.clone()))
            }
            [] if self.room.settled() => self.next_change(wanted),
            _ => None,
        };
        let Some(change) = change else {
            return;
        };
        let hears = self.majority_hears_us_after(now, &change);
        if let Some(l) = self.room.leadership_mut() {
            l.change_waits = !hears;
        }
        if !hears {
            return;
        }
        let Some(l) = self.room.leadership_mut() else {
            return;
        };
        let seq = l.sequencer.take_next();
        log_at!(debug, self, "proposing {change:?} as #{seq}");
        let added = match &change {
            ConfigChange::Add(user) => Some(user.clone()),
            ConfigChange::Remove(_) => None,
        };
        let parent = self.room.last_change_at();
        self.propose(now, ChatEntry::config(seq, change, parent));
        if let Some(user) = added.filter(|_| self.relays_in_use()) {
            // A learner made a voter gets what waits for a majority, and the commit
            // point, from now on from the leader (see `relay.rs`).
            let ids: Vec<NodeId> = self
                .ring
                .members()
                .online_peers()
                .filter(|m| m.name == user)
                .map(|m| m.id)
                .collect();
            for id in ids {
                self.member_back(now, id);
            }
        }
    }

    /// The users that should vote, uncapped: online members (this node, if it is one)
    /// not asking to leave. `None` if this node does not lead.
    fn wanted_voters(&self) -> Option<BTreeSet<String>> {
        let mut wanted: BTreeSet<String> = self
            .ring
            .members()
            .online_peers()
            .map(|m| m.name.clone())
            .collect();
        if self.life.is_member() {
            wanted.insert(self.ctx.cfg.name.clone());
        }
        let l = self.room.leadership()?;
        for user in &l.leaving {
            wanted.remove(user);
        }
        Some(wanted)
    }

    /// The change of the configuration to propose next, none in flight: first a voter not
    /// `wanted`, then a wanted user not voting (up to [`MAX_VOTERS`]).
    fn next_change(&self, wanted: BTreeSet<String>) -> Option<ConfigChange> {
        let voters = &self.room.voters;
        let wanted = capped(wanted, voters, &self.ctx.cfg.name);
        // The last voter never goes: the room would have no majority left at all.
        voters
            .iter()
            .find(|u| !wanted.contains(*u) && voters.len() > 1)
            .map(|u| ConfigChange::Remove(u.clone()))
            .or_else(|| {
                wanted
                    .iter()
                    .find(|u| !voters.contains(*u))
                    .map(|u| ConfigChange::Add(u.clone()))
            })
    }

    /// Whether a majority of the configuration after `change` hears this leader: itself,
    /// and the voters (a newcomer included) that acked a message of its within the
    /// election timeout. A change counts at once and commits only by that majority:
    /// proposed without it (a leader that hears nothing, a removal on the word of a
    /// member that hears nothing, a newcomer that crashed after its proof), it would
    /// stall the room for good. The voters not known to hear it are sent its own entry,
    /// whose acks tell; it is asked again on every heartbeat.
    fn majority_hears_us_after(&mut self, now: Instant, change: &ConfigChange) -> bool {
        let since = now
            .checked_sub(self.ctx.cfg.election_timeout)
            .unwrap_or(now);
        let mut after = self.room.voters.clone();
        match change {
            ConfigChange::Add(user) => after.insert(user.clone()),
            ConfigChange::Remove(user) => after.remove(user),
        };
        let majority = after.len() / 2 + 1;
        let mut hears = 0;
        let mut ask = Vec::new();
        for u in &after {
            if *u == self.ctx.cfg.name {
                hears += 1;
                continue;
            }
            let Some(m) = self
                .ring
                .members()
                .by_name(u)
                .filter(|m| m.presence == Presence::Online)
            else {
                continue;
            };
            match self.transport.hears_us(m.addr, since) {
                (true, _) => hears += 1,
                (false, false) => ask.push(m.addr),
                (false, true) => {}
            }
        }
        if hears >= majority {
            return true;
        }
        if let Some(me) = self.ring.members().get(self.ctx.id).cloned() {
            for addr in ask {
                let msg = Message::Members(vec![me.clone()]);
                self.send_reliable(now, addr, msg, Token::Control);
            }
        }
        false
    }

    /// An ack came: if a change of the configuration waits to hear from a majority, see
    /// whether it has now.
    pub(in crate::proto::node) fn on_ack_for_config(&mut self, now: Instant) {
        if self.room.leadership().is_some_and(|l| l.change_waits) {
            self.reconcile_voters(now);
        }
    }

    /// A leaving member asks to be taken out of the configuration.
    pub(in crate::proto::node) fn on_leave_request(&mut self, now: Instant, sender: NodeId) {
        // Only from a member online here: a late copy from one that left already (it asks
        // on every beat until it sees itself removed) would keep it out of the voters
        // once it came back.
        let Some(name) = self
            .ring
            .members()
            .get(sender)
            .filter(|m| m.presence == Presence::Online)
            .map(|m| m.name.clone())
        else {
            return log_at!(
                debug,
                self,
                "a leave request from {sender}, not online here; ignored"
            );
        };
        if let Some(l) = self.room.leadership_mut() {
            l.leaving.insert(name);
        }
        self.reconcile_voters(now);
    }

    /// While leaving and still a voter: ask the leader (or, leading, ourselves) to take
    /// us out of the configuration.
    pub(in crate::proto::node) fn ask_to_leave(&mut self, now: Instant) {
        if !self.room.voters().contains(&self.ctx.cfg.name) {
            return;
        }
        if self.is_leader() {
            let me = self.ctx.id;
            return self.on_leave_request(now, me);
        }
        if let Some(leader) = self.leader_addr() {
            self.send_reliable(now, leader, Message::Leave, Token::Control);
        }
    }
}

/// The users that should vote, of the `wanted` ones (online, not leaving): all of them
/// up to [`MAX_VOTERS`]; past it, the voters now first (a configuration changes as little
/// as it can), then `me` (the leader), then the others by name.
fn capped(wanted: BTreeSet<String>, voters: &BTreeSet<String>, me: &str) -> BTreeSet<String> {
    if wanted.len() <= MAX_VOTERS {
        return wanted;
    }
    let mut kept = BTreeSet::new();
    let order = wanted
        .iter()
        .filter(|u| voters.contains(*u))
        .chain(wanted.iter().filter(|u| *u == me))
        .chain(wanted.iter());
    for user in order {
        if kept.len() == MAX_VOTERS {
            break;
        }
        kept.insert(user.clone());
    }
    kept
}

/// Replaces with fillers the changes among `entries` (in log order, following the
/// committed configuration `voters`) that would leave no voter at all; returns how many.
///
/// A new leader proposes again, number by number, the copy of the highest term any
/// survivor holds, so the entries it gathers may come from more than one branch of the
/// log: a change proposed by a leader whose branch lost can land after a change made in
/// the branch that won, where it means something else (`sim_chaos` minority seed
/// 1880420: a removal of `ben` from `ben, cat`, proposed by a leader of term 3, landed
/// after term 5's removal of `cat`). No leader proposes a change that leaves nobody
/// voting (see [`Node::next_change`]), and a committed entry follows only committed ones,
/// which every later leader gathers as they were: so a change that leaves nobody here was
/// never committed. Proposed again, it would leave a configuration in which nothing can
/// ever commit.
pub(super) fn fill_changes_leaving_no_voter(
    mut voters: BTreeSet<String>,
    entries: &mut [ChatEntry],
) -> usize {
    let mut filled = 0;
    for e in entries.iter_mut() {
        match e.config_change() {
            Some(ConfigChange::Add(user)) => {
                voters.insert(user);
            }
            Some(ConfigChange::Remove(user)) if leaves_no_voter(&voters, &user) => {
                *e = ChatEntry::filler(e.seq);
                filled += 1;
            }
            Some(ConfigChange::Remove(user)) => {
                voters.remove(&user);
            }
            None => {}
        }
    }
    filled
}

/// Applies held configuration entry `e` to `voters`.
fn apply_held_change(voters: &mut BTreeSet<String>, e: &ChatEntry) {
    match e.config_change() {
        Some(ConfigChange::Add(user)) => {
            voters.insert(user);
        }
        // One that would leave nobody voting is from a branch of the log that lost, never
        // committed (see [`fill_changes_leaving_no_voter`]): counted, nothing could commit
        // or be elected ever again.
        Some(ConfigChange::Remove(user)) if leaves_no_voter(voters, &user) => {}
        Some(ConfigChange::Remove(user)) => {
            voters.remove(&user);
        }
        None => {}
    }
}

/// Whether removing `user` from `voters` leaves nobody voting.
fn leaves_no_voter(voters: &BTreeSet<String>, user: &str) -> bool {
    voters.len() == 1 && voters.contains(user)
}
