//! Surviving crashes: heartbeats round the ring (each node to its successor), failure
//! detection of the predecessor, cutting dead members out, refuting false suspicion, and
//! Chang-Roberts election (the new leader's take-over is in `recovery.rs`).
//!
//! Split brain: after a partition heals, the leader with the larger [`Epoch`] (term, then
//! id) wins. A node that hears of a larger epoch from a neighbour's heartbeat adopts it;
//! a leader steps down. Such a node re-registers with the winner (a join under its own
//! id), which hands it the table and the winner's next sequence number.

use super::*;

/// Least time between two pushes of the member table to the same node.
const TABLE_PUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Every this many heartbeat rounds, one offline member (round-robin) gets a heartbeat
/// too, so that the two sides of a healed partition find each other again.
const OFFLINE_PROBE_ROUNDS: u64 = 10;
/// Every this many heartbeat rounds, while a pre-vote is pending, a few offline members
/// are probed (see `probe_offline_now`).
const SEEKING_PROBE_ROUNDS: u64 = 3;
/// Offline members probed at once when one of them comes back (see `probe_offline_now`).
const HEAL_PROBES: usize = 4;
/// How recent a verdict of ours a member coming online is told of (see
/// `latest_verdicts`), and how many at most.
const VERDICTS_TOLD_FOR: Duration = Duration::from_secs(5);
const VERDICTS_TOLD: usize = 4;
/// Every this many heartbeat rounds, a leader back from an absence asks the members it has
/// not heard from again (see `away.rs`).
const CONFIRM_ASK_ROUNDS: u64 = 3;

impl Node {
    /// Starts heartbeating; called once the node is in the room.
    pub(in crate::proto::node) fn start_heartbeats(&mut self, now: Instant) {
        self.refresh_watch(now);
        self.ctx.timers.set(Timer::Heartbeat, now);
    }

    /// Watches the current ring predecessor (whose heartbeats come to this node).
    /// Also watched: online members another member said are offline (see `members.rs`).
    pub(in crate::proto::node) fn refresh_watch(&mut self, now: Instant) {
        let members = &self.ring.members;
        self.ring.checking.retain(|id| members.is_online(*id));
        let ids: Vec<NodeId> = members
            .prev()
            .into_iter()
            .chain(self.ring.checking.iter().copied())
            .collect();
        self.ring.detector.watch(&ids, now);
        self.ring.detector.keep_claims_on(members.prev());
    }

    fn heartbeat(&self, probe: bool) -> Heartbeat {
        // While re-registering, what we delivered may be another leader's numbering.
        let delivered = if self.life.is_resyncing() {
            Seq(0)
        } else {
            Seq(self.room.next().0.saturating_sub(1))
        };
        Heartbeat {
            epoch: self.ring.epoch,
            delivered,
            digest: self.ring.members.digest(),
            probe,
            unknown: false,
        }
    }

    pub(in crate::proto::node) fn send_heartbeat(&mut self, to: SocketAddr, probe: bool) {
        let hb = self.heartbeat(probe);
        if let Ok(bytes) = encode_packet(&Packet::Heartbeat(hb)) {
            self.queue_packet(to, bytes);
        }
    }

    /// A node not in our table sent a message only members may send: it believes it is in
    /// the room (admitted by a leader that died before its announcement reached us, say).
    /// We answer with a heartbeat marked `unknown`, at most once a second per address: if
    /// ours names a newer leader, it re-registers with that leader (see
    /// `adopt_gossiped_epoch`), which makes it known to all; if we lead the epoch it
    /// follows, it asks us to take it in (see `on_unknown_to_leader`); otherwise it
    /// changes nothing. Never a reply larger than a heartbeat.
    pub(in crate::proto::node) fn answer_stranger(&mut self, now: Instant, from: SocketAddr) {
        if !self.in_ring() {
            return;
        }
        if self.ring.strangers_answered.due(from, now) {
            let hb = Heartbeat {
                unknown: true,
                ..self.heartbeat(false)
            };
            if let Ok(bytes) = encode_packet(&Packet::Heartbeat(hb)) {
                self.queue_packet(from, bytes);
            }
        }
    }

    /// Where this node's heartbeats go: its ring successor, which watches it.
    fn successor_addr(&self) -> Option<SocketAddr> {
        let next = self.ring.members.next()?;
        self.ring.members.get(next).map(|m| m.addr)
    }

    pub(in crate::proto::node) fn on_heartbeat_timer(&mut self, now: Instant) {
        // A node waiting for its own messages to commit before it leaves is still in the
        // ring: it keeps heartbeating until it has told everyone it is leaving.
        if !self.in_ring() {
            return;
        }
        self.judge_neighbours(now);
        self.renew_verdicts(now);
        self.replicate_lost(now);
        self.release_paced(now);
        self.reconcile_voters(now);
        self.check_quorum(now);
        self.seek_leader_held_offline(now);
        self.push_owed_tables(now);
        self.pass_beyond_silent_successor(now);
        self.voucher_check_due(now);
        if self.room.is_confirming() {
            self.maybe_confirmed(now, None);
            if self.ring.beats.is_multiple_of(CONFIRM_ASK_ROUNDS) {
                self.ask_confirmation(now);
            }
        }
        if let Some(addr) = self.successor_addr() {
            self.send_heartbeat(addr, false);
        }
        self.ring.beats += 1;
        if self.ring.prevote.is_some() && self.ring.beats.is_multiple_of(SEEKING_PROBE_ROUNDS) {
            // The leader is gone and no round under way yet (asking the voters, or
            // waiting for the watcher's round): cut off, perhaps. The room is sought
            // faster, and the first member back brings the rest (`member_came_online`).
            self.probe_offline_now();
        } else if self.ring.beats.is_multiple_of(OFFLINE_PROBE_ROUNDS)
            && let Some(addr) = self.next_offline_to_probe()
        {
            // A probe: a live member answers at once, and its answer shows it whether it
            // is offline here (see `on_heartbeat`), so it refutes.
            log_at!(debug, self, "probing offline {addr}");
            self.send_heartbeat(addr, true);
        }
        if self.ring.beats.is_multiple_of(departed::AGE_OUT_ROUNDS) {
            self.age_out(now);
        }
        self.ctx
            .timers
            .set(Timer::Heartbeat, now + self.ctx.cfg.heartbeat_interval);
    }

    /// The predecessor's heartbeat came: if ours is due within half an interval, it goes
    /// now, and the next one an interval from now. The beats of a ring then settle into
    /// one phase: every node's timer comes due at about the time its predecessor's beat
    /// arrives, so a node wakes about once per interval for both, and nodes sharing a
    /// process or a machine wake together. Beats to one successor are never more than an
    /// interval apart, and never less than half of one.
    fn follow_the_beat(&mut self, now: Instant) {
        let half = self.ctx.cfg.heartbeat_interval / 2;
        let due_soon = self
            .ctx
            .timers
            .deadline(Timer::Heartbeat)
            .is_some_and(|at| at.saturating_duration_since(now) <= half);
        if due_soon {
            self.on_heartbeat_timer(now);
        }
    }

    pub(in crate::proto::node) fn on_probe_timer(&mut self, now: Instant) {
        if self.in_ring() {
            self.judge_neighbours(now);
            self.probe_again_for_others(now);
        }
    }

    /// A member held offline here came back: a partition may have healed, so the other
    /// members held offline are probed at once (a few, round-robin), not one a second.
    pub(in crate::proto::node) fn probe_offline_now(&mut self) {
        let mut probed = Vec::with_capacity(HEAL_PROBES);
        for _ in 0..HEAL_PROBES {
            match self.next_offline_to_probe() {
                // Round again: fewer offline than probes.
                Some(addr) if probed.contains(&addr) => return,
                Some(addr) => {
                    probed.push(addr);
                    self.send_heartbeat(addr, true);
                }
                None => return,
            }
        }
    }

    /// The offline member after the last one probed, in id order.
    fn next_offline_to_probe(&mut self) -> Option<SocketAddr> {
        let offline: Vec<(NodeId, SocketAddr)> = self
            .ring
            .members
            .entries()
            // An earlier process at our own address is us: probing it would only bring
            // our own datagram back, claiming our id.
            .filter(|m| {
                m.presence == Presence::Offline
                    && m.id != self.ctx.id
                    && m.addr != self.ctx.cfg.addr
            })
            .map(|m| (m.id, m.addr))
            .collect();
        let (id, addr) = offline
            .iter()
            .find(|(id, _)| Some(*id) > self.ring.last_offline_probe)
            .or(offline.first())
            .copied()?;
        self.ring.last_offline_probe = Some(id);
        Some(addr)
    }

    /// Declares silent neighbours dead and probes suspected ones.
    fn judge_neighbours(&mut self, now: Instant) {
        self.refresh_watch(now);
        let (taken, untaken) = self.probe_windows();
        self.ring.detector.set_probe_windows(taken, untaken);
        let verdict = self.ring.detector.check(now);
        for id in verdict.dead {
            self.declare_dead(now, id);
        }
        for id in verdict.suspected {
            if let Some(addr) = self.ring.members.get(id).map(|m| m.addr) {
                self.send_heartbeat(addr, true);
            }
            self.ask_indirect_probes(now, id);
        }
        if self.ring.detector.any_suspected() {
            self.arm_probe_timer(now);
        }
        // A neighbour that would be suspected before the next beat's check is checked
        // then (a wake of its own only once it has been silent for two intervals).
        let next_beat = now + self.ctx.cfg.heartbeat_interval;
        if let Some(at) = self
            .ring
            .detector
            .next_suspicion()
            .filter(|at| *at > now && *at < next_beat)
        {
            self.arm_probe_timer_at(at);
        }
    }

    /// A neighbour's heartbeat.
    pub(in crate::proto::node) fn on_heartbeat(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        hb: Heartbeat,
    ) {
        if hb.probe {
            self.send_heartbeat(from, false);
        } else {
            // Only an answer, or a beat, vouches: a probe shows that its sender can send,
            // not that it hears. A deaf member (a leader nothing reaches) still probes
            // the members it cut out, and the members they probe for would vouch for it
            // each time, so its watcher would never find it dead.
            self.vouch_for(now, sender);
        }
        if hb.unknown && hb.epoch.is_some_and(|e| e.leader == sender) && hb.epoch == self.ring.epoch
        {
            self.on_unknown_to_leader(now, from);
        } else if hb.unknown && hb.epoch.is_some() && hb.epoch == self.ring.epoch {
            // A member of our leader's epoch that never heard of us.
            self.voucher_wanted(now, from);
        }
        let Some(entry) = self.ring.members.get(sender).cloned() else {
            return;
        };
        if self.ring.members.prev() == Some(sender) {
            self.follow_the_beat(now);
            self.tell_if_stalled(from, sender, &hb);
        }
        if entry.presence == Presence::Offline {
            // It believes it is in the ring; show it our view so it can refute.
            log_at!(debug, self, "heartbeat from {sender}, offline here");
            if self.may_push_table(sender, now) {
                self.send_reliable(now, from, Message::Members(vec![entry]), Token::Control);
            }
            self.take_back_verdict(now, sender, true);
        } else if hb.digest != self.ring.members.digest() && self.may_push_table(sender, now) {
            // Anti-entropy: tables differ, send ours, and a heartbeat with our digest so
            // that the sender (who does not hear our heartbeats: they go the other way
            // round the ring) sends us its table too.
            for part in self.ring.members.chunks() {
                self.send_reliable(now, from, Message::Members(part), Token::Control);
            }
            if !hb.probe {
                self.send_heartbeat(from, false);
            }
        }
        if let Some(epoch) = hb.epoch {
            self.leader_spoke(now, sender, epoch.term, false);
            self.leader_gave_way(now, from, sender, epoch);
        }
        if let Some(epoch) = hb.epoch
            && self.ring.epoch.is_none_or(|e| e.term < epoch.term)
        {
            if !self.term_in_range(now, epoch.term) {
                self.drop_datagram(now, from, "heartbeat naming a term out of range");
            } else if self.ring.election.carried(epoch.term, epoch.leader) {
                // A round this node took part in: its winner.
                self.adopt_gossiped_epoch(now, epoch);
            } else if self.ring.members.get(epoch.leader).is_none() {
                // A leader this node never heard of (a process restarted under a
                // new id while this node was cut off): no table here gives its address.
                // Ask the member that named it to pass our join on to it; the leader's
                // own welcome is what this node then follows.
                self.seek_leader_via(now, epoch.leader, from);
            } else {
                // Someone's word only: ask the leader it names to take us in.
                self.seek_leader(now, epoch.leader);
            }
        }
        if !hb.probe && hb.epoch.map(|e| e.term) < self.ring.epoch.map(|e| e.term) {
            self.tell_newer_epoch(now, sender);
        }
        if hb.epoch == self.ring.epoch && !self.is_leader() && self.room.heard_high(hb.delivered) {
            self.ctx
                .timers
                .set_if_unset(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after);
        }
    }

    /// Our predecessor's beat: if it says it delivered less than we showed, and no more
    /// than at its last beat, it may hear nothing of the room. Heartbeats go round the
    /// ring one way, so a member whose predecessor is the leader hears the room's progress
    /// only from the leader: with that link cut (the leader still reachable from the
    /// others, who vouch for it) it would never learn that it is behind. Our heartbeat back
    /// says how far the room is, and it fetches the rest from the members (see
    /// `room/catchup.rs`). Nothing is sent while it keeps up or moves on.
    fn tell_if_stalled(&mut self, from: SocketAddr, sender: NodeId, hb: &Heartbeat) {
        let ours = Seq(self.room.next().0.saturating_sub(1));
        let before = self.ring.prev_delivered.replace((sender, hb.delivered));
        let stalled = before == Some((sender, hb.delivered));
        if stalled
            && hb.delivered < ours
            && !hb.probe
            && hb.epoch == self.ring.epoch
            && !self.life.is_resyncing()
        {
            self.send_heartbeat(from, false);
        }
    }

    /// The entries of members this node itself declared dead within the last
    /// [`VERDICTS_TOLD_FOR`] (at most [`VERDICTS_TOLD`], the latest), still offline here.
    pub(in crate::proto::node) fn latest_verdicts(&self, now: Instant) -> Vec<Member> {
        let mut recent: Vec<(Instant, NodeId)> = self
            .ring
            .verdicts
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) < VERDICTS_TOLD_FOR)
            .map(|(id, at)| (*at, *id))
            .collect();
        recent.sort_unstable_by(|a, b| b.cmp(a));
        recent
            .into_iter()
            .take(VERDICTS_TOLD)
            .filter_map(|(_, id)| self.ring.members.get(id))
            .filter(|m| m.presence == Presence::Offline && m.stamp.by == self.ctx.id)
            .cloned()
            .collect()
    }

    fn may_push_table(&mut self, to: NodeId, now: Instant) -> bool {
        due_once_a_second(&mut self.ring.table_pushed, to, now)
    }

    /// Whether the leader may send its table to `to`, back online, now (at most once a
    /// [`TABLE_PUSH_INTERVAL`]: a member's own word takes it offline and back).
    pub(in crate::proto::node) fn may_push_table_back(&mut self, to: NodeId, now: Instant) -> bool {
        due_once_a_second(&mut self.ring.table_pushed_back, to, now)
    }

    /// A heartbeat from `sender` at `from`, not in our table. If it names itself leader
    /// of a newer term while ours does not lead here (it restarted under a new id while
    /// we were cut off, and every member we know did too), ask it to take us in: only its
    /// welcome, after our proof, is followed. Anything else from a stranger is ignored.
    pub(in crate::proto::node) fn on_stranger_heartbeat(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        hb: &Heartbeat,
    ) {
        let newer_leader = hb.epoch.is_some_and(|e| {
            e.leader == sender
                && self.ring.epoch().is_none_or(|o| o.term < e.term)
                && self.term_in_range(now, e.term)
        });
        if newer_leader && !self.leader_leads() {
            self.seek_leader_via(now, sender, from);
        }
        self.ask_stranger_to_prove(now, from, sender);
    }

    /// Member `to` follows an older epoch than this node (its beat said so, or it
    /// submitted to this node, which leads no more): our heartbeat, which names ours, goes
    /// back at most once a second. Heartbeats go one way round the ring and
    /// announcements go round once, so a member cut from its predecessor that missed the
    /// announcement, and whose old leader lives on as a member, hears of the new epoch
    /// from nobody else: it would submit to the old leader for good. Told, it takes our
    /// word as a neighbour's (see [`Node::on_heartbeat`]): it follows a winner of a round
    /// it carried, asks a leader it holds online to take it in, or else asks the voters,
    /// whose answers name the epoch to follow (see `prevote.rs`).
    pub(in crate::proto::node) fn tell_newer_epoch(&mut self, now: Instant, to: NodeId) {
        if self.ring.epoch.is_none() || !self.in_ring() {
            return;
        }
        let Some(addr) = self.ring.members.get(to).map(|m| m.addr) else {
            return;
        };
        if self.ring.epoch_told.due(to, now) {
            log_at!(debug, self, "{to} follows an older epoch; telling it ours");
            self.send_heartbeat(addr, false);
        }
    }

    /// A larger epoch heard of, of a round this node took part in. A winner online here
    /// is followed as its announcement would have it (a neighbour's heartbeat often
    /// overtakes the announcement, which is on its way round the ring): the winner's
    /// take-over asks this node's log like any voter's. A winner this node holds offline
    /// is asked to take it in again, to learn its table.
    fn adopt_gossiped_epoch(&mut self, now: Instant, epoch: Epoch) {
        log_at!(
            info,
            self,
            "heard of a newer leader {} (term {})",
            epoch.leader,
            epoch.term
        );
        self.accept_leader(now, epoch);
        self.leader_shown();
        if epoch.leader != self.ctx.id
            && !self.ring.members.is_online(epoch.leader)
            && let Some(addr) = self.ring.members.get(epoch.leader).map(|m| m.addr)
        {
            self.resync_with(now, addr);
        }
    }

    // ----- election -----
}

/// Whether a table push to `to` is due (none in the last [`TABLE_PUSH_INTERVAL`] by
/// `pushed`); if so, it counts as made now.
fn due_once_a_second(pushed: &mut BTreeMap<NodeId, Instant>, to: NodeId, now: Instant) -> bool {
    let due = pushed
        .get(&to)
        .is_none_or(|t| now.saturating_duration_since(*t) >= TABLE_PUSH_INTERVAL);
    if due {
        pushed.insert(to, now);
    }
    due
}
