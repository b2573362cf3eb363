//! Surviving crashes: heartbeats round the ring (each node to its successor), failure
//! detection of the predecessor, cutting dead members out, refuting false suspicion, and
//! Chang-Roberts election (the new leader's take-over is in `recovery.rs`).
//!
//! Split brain: after a partition heals, the leader with the larger [`Epoch`] (term, then
//! id) wins. A node that hears of a larger epoch from a neighbour's heartbeat adopts it;
//! a leader steps down. Such a node re-registers with the winner (a join under its own
//! id), which hands it the table and the winner's next sequence number.

use super::{Event, Node, Phase, Token};
use crate::ids::{NodeId, Seq};
use crate::proto::election::Decision;
use crate::proto::timers::Timer;
use crate::wire::{
    Epoch, Heartbeat, Member, Message, Packet, Presence, QueuedDm, Stamp, encode_packet,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// The largest election term accepted (a bad peer cannot push terms to the limit).
pub const MAX_TERM: u64 = 1 << 62;
/// Least time between two pushes of the member table to the same node.
const TABLE_PUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Every this many heartbeat rounds, one offline member (round-robin) gets a heartbeat
/// too, so that the two sides of a healed partition find each other again.
const OFFLINE_PROBE_ROUNDS: u64 = 10;

impl Node {
    /// Starts heartbeating; called once the node is in the room.
    pub(super) fn start_heartbeats(&mut self, now: Instant) {
        self.refresh_watch(now);
        self.ctx.timers.set(Timer::Heartbeat, now);
    }

    /// Watches the current ring predecessor (whose heartbeats come to this node).
    fn refresh_watch(&mut self, now: Instant) {
        let ids: Vec<NodeId> = self.ring.members.prev().into_iter().collect();
        self.ring.detector.watch(&ids, now);
    }

    fn heartbeat(&self, probe: bool) -> Heartbeat {
        // While re-registering, what we delivered may be another leader's numbering.
        let delivered = if self.life.resyncing {
            Seq(0)
        } else {
            Seq(self.room.holdback.next().0.saturating_sub(1))
        };
        Heartbeat {
            epoch: self.ring.epoch,
            delivered,
            digest: self.ring.members.digest(),
            probe,
        }
    }

    fn send_heartbeat(&mut self, to: SocketAddr, probe: bool) {
        let hb = self.heartbeat(probe);
        if let Ok(bytes) = encode_packet(&Packet::Heartbeat(hb)) {
            self.queue_packet(to, bytes);
        }
    }

    /// A node not in our table sent a message only members may send: it believes it is in
    /// the room (admitted by a leader that died before its announcement reached us, say).
    /// We answer with a heartbeat, at most once a second per address: if ours names a newer
    /// leader, it re-registers with that leader (see `adopt_gossiped_epoch`), which makes
    /// it known to all; otherwise it changes nothing. Never a reply larger than a heartbeat.
    pub(super) fn answer_stranger(&mut self, now: Instant, from: SocketAddr) {
        if !self.in_ring() {
            return;
        }
        let quiet = self
            .ring.strangers_answered
            .get(&from)
            .is_some_and(|t| now.saturating_duration_since(*t) < Duration::from_secs(1));
        if quiet {
            return;
        }
        if self.ring.strangers_answered.len() >= 1024 {
            self.ring.strangers_answered.clear();
        }
        self.ring.strangers_answered.insert(from, now);
        self.send_heartbeat(from, false);
    }

    /// Where this node's heartbeats go: its ring successor, which watches it.
    fn successor_addr(&self) -> Option<SocketAddr> {
        let next = self.ring.members.next()?;
        self.ring.members.get(next).map(|m| m.addr)
    }

    pub(super) fn on_heartbeat_timer(&mut self, now: Instant) {
        // A node waiting for its own messages to commit before it leaves is still in the
        // ring: it keeps heartbeating until it has told everyone it is leaving.
        if !self.in_ring() {
            return;
        }
        self.judge_neighbours(now);
        if let Some(addr) = self.successor_addr() {
            self.send_heartbeat(addr, false);
        }
        self.ring.beats += 1;
        if self.ring.beats.is_multiple_of(OFFLINE_PROBE_ROUNDS)
            && let Some(addr) = self.next_offline_to_probe()
        {
            self.send_heartbeat(addr, false);
        }
        self.ctx.timers
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
            .ctx.timers
            .deadline(Timer::Heartbeat)
            .is_some_and(|at| at.saturating_duration_since(now) <= half);
        if due_soon {
            self.on_heartbeat_timer(now);
        }
    }

    pub(super) fn on_probe_timer(&mut self, now: Instant) {
        if self.in_ring() {
            self.judge_neighbours(now);
        }
    }

    /// The offline member after the last one probed, in id order.
    fn next_offline_to_probe(&mut self) -> Option<SocketAddr> {
        let offline: Vec<(NodeId, SocketAddr)> = self
            .ring.members
            .entries()
            .filter(|m| m.presence == Presence::Offline && m.id != self.ctx.id)
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
        let verdict = self.ring.detector.check(now);
        for id in verdict.dead {
            self.declare_dead(now, id);
        }
        for id in verdict.suspected {
            if let Some(addr) = self.ring.members.get(id).map(|m| m.addr) {
                self.send_heartbeat(addr, true);
            }
        }
        if self.ring.detector.any_suspected() {
            self.ctx.timers
                .set(Timer::Probe, now + self.ctx.cfg.heartbeat_interval / 4);
        }
    }

    /// A neighbour went silent: cut it out of the ring and tell everyone.
    fn declare_dead(&mut self, now: Instant, id: NodeId) {
        let Some(mut m) = self.ring.members.get(id).cloned() else {
            return;
        };
        if m.presence == Presence::Offline {
            return;
        }
        info!(
            lamport = self.ctx.clock.now().0,
            "{} ({id}) stopped answering; cutting it out", m.name
        );
        m.presence = Presence::Offline;
        m.stamp = Stamp {
            lamport: self.ctx.clock.tick(),
            by: self.ctx.id,
        };
        self.ring.members.merge(m.clone());
        self.ctx.events.push_back(Event::MemberOffline {
            name: m.name.clone(),
        });
        let msg = Message::Members(vec![m.clone()]);
        self.broadcast(now, &msg, &Token::Control);
        self.member_gone(now, &m);
    }

    /// Everything that follows a member going offline, however we learned of it.
    pub(super) fn member_gone(&mut self, now: Instant, m: &Member) {
        self.ring.detector.forget(m.id);
        for token in self.transport.reliable.cancel_to(m.addr) {
            match token {
                Token::Direct { to, dm } => self.store_offline_for(now, &to, dm),
                Token::Replica { origin, id, to } => self.replica_lost(now, origin, id, to),
                Token::Handover { to, .. } => {
                    self.mail.handing_over.remove(&to);
                }
                Token::Ring(msg) => self.reroute_ring(now, m.addr, msg),
                Token::LeaveNotice => self.maybe_finish_leave(now),
                Token::Forward(newcomer) => self.on_join(now, newcomer),
                _ => {}
            }
        }
        // The leader's own messages that now wait for nobody are as stable as they get.
        let orphaned: Vec<Seq> = self
            .room.unstable
            .keys()
            .copied()
            .filter(|s| {
                !self
                    .transport.reliable
                    .any_pending(|t| *t == Token::Sequenced(Some(*s)))
            })
            .collect();
        for seq in orphaned {
            self.stabilise(now, seq);
        }
        self.refresh_watch(now);
        if let Some(rec) = self.room.recovery.as_mut() {
            rec.waiting.remove(&m.id);
            self.maybe_finish_recovery(now);
        }
        let was_leader = self.leader() == Some(m.id);
        if self.life.phase == Phase::Member && self.ring.election.is_participant() && !was_leader {
            // A round under way may carry the dead member's id as its candidate, which
            // would never come back: start a newer round.
            info!(
                lamport = self.ctx.clock.now().0,
                "{} left during an election; starting a new round", m.name
            );
            self.start_election(now);
        } else if self.life.phase == Phase::Member && was_leader && !self.ring.election.is_participant() {
            info!(
                lamport = self.ctx.clock.now().0,
                "leader {} is gone; electing", m.name
            );
            self.start_election(now);
        }
    }

    /// Someone (at `reporter`) says this node is offline while it is not: re-announce
    /// itself with a newer stamp (refutation), to everyone and to the reporter.
    pub(super) fn refute(&mut self, now: Instant, reporter: SocketAddr) {
        let Some(mut me) = self.ring.members.get(self.ctx.id).cloned() else {
            return;
        };
        me.presence = Presence::Online;
        me.stamp = Stamp {
            lamport: self.ctx.clock.tick(),
            by: self.ctx.id,
        };
        info!(
            lamport = self.ctx.clock.now().0,
            "refuting a report that this node is offline"
        );
        self.ring.members.merge(me.clone());
        let msg = Message::Members(vec![me]);
        self.broadcast(now, &msg, &Token::Control);
        if !self.ring.members.online_peers().any(|m| m.addr == reporter) {
            self.send_reliable(now, reporter, msg, Token::Control);
        }
    }

    /// A neighbour's heartbeat.
    pub(super) fn on_heartbeat(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        hb: Heartbeat,
    ) {
        if hb.probe {
            self.send_heartbeat(from, false);
        }
        let Some(entry) = self.ring.members.get(sender).cloned() else {
            return;
        };
        if self.ring.members.prev() == Some(sender) {
            self.follow_the_beat(now);
        }
        if entry.presence == Presence::Offline {
            // It believes it is in the ring; show it our view so it can refute.
            if self.may_push_table(sender, now) {
                self.send_reliable(now, from, Message::Members(vec![entry]), Token::Control);
            }
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
        if hb.epoch > self.ring.epoch
            && let Some(epoch) = hb.epoch
        {
            self.adopt_gossiped_epoch(now, epoch);
        }
        if hb.epoch == self.ring.epoch && hb.delivered > self.room.known_high {
            self.room.known_high = hb.delivered;
            if hb.delivered >= self.room.holdback.next() && !self.is_leader() {
                self.ctx.timers
                    .set_if_unset(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after);
            }
        }
    }

    fn may_push_table(&mut self, to: NodeId, now: Instant) -> bool {
        let due = self
            .ring.table_pushed
            .get(&to)
            .is_none_or(|t| now.saturating_duration_since(*t) >= TABLE_PUSH_INTERVAL);
        if due {
            self.ring.table_pushed.insert(to, now);
        }
        due
    }

    /// A larger epoch heard from a neighbour (typically after a partition healed).
    fn adopt_gossiped_epoch(&mut self, now: Instant, epoch: Epoch) {
        info!(
            lamport = self.ctx.clock.now().0,
            "heard of a newer leader {} (term {})", epoch.leader, epoch.term
        );
        self.ring.election.on_elected(epoch.term);
        self.ctx.timers.clear(Timer::Election);
        self.set_epoch(now, epoch);
        if epoch.leader != self.ctx.id
            && let Some(addr) = self.ring.members.get(epoch.leader).map(|m| m.addr)
        {
            // Re-register with the winner to learn its table and where its sequence is,
            // and give it our replica of the offline queue (the union survives the heal).
            self.life.resyncing = true;
            let msg = Message::Join {
                name: self.ctx.cfg.name.clone(),
                key: self.public_key(),
            };
            self.send_reliable(now, addr, msg, Token::Resync);
            let kept: Vec<QueuedDm> = self.mail.offline.items().cloned().collect();
            for item in kept {
                self.send_reliable(now, addr, Message::Queued(item), Token::Control);
            }
        }
    }

    /// Follows `epoch` from now on. A leader of an older epoch steps down; own unconfirmed
    /// room messages go to the new leader at once.
    pub(super) fn set_epoch(&mut self, now: Instant, epoch: Epoch) {
        if Some(epoch) <= self.ring.epoch {
            return;
        }
        let was_leader = self.is_leader();
        self.ring.epoch = Some(epoch);
        if was_leader && epoch.leader != self.ctx.id {
            info!(
                lamport = self.ctx.clock.now().0,
                "stepping down for {}", epoch.leader
            );
            self.room.sequencer = None;
            self.room.recovery = None;
            // Still in the outbox: resubmitted to the new leader below.
            self.room.unstable.clear();
            self.ctx.timers.clear(Timer::Recovery);
        }
        let name = self
            .name_of(epoch.leader)
            .unwrap_or_else(|| epoch.leader.to_string());
        self.ctx.events.push_back(Event::LeaderChanged { name });
        if epoch.leader != self.ctx.id {
            self.resubmit(now);
        }
    }

    // ----- election -----

    /// Starts a Chang-Roberts round above every term known.
    pub(super) fn start_election(&mut self, now: Instant) {
        let known = self
            .ring.epoch
            .map_or(0, |e| e.term)
            .max(self.ring.election.term())
            .min(MAX_TERM - 1);
        let decision = self.ring.election.start(self.ctx.id, known + 1);
        debug!(
            lamport = self.ctx.clock.now().0,
            "starting election round {}",
            known + 1
        );
        self.ctx.timers
            .set(Timer::Election, now + self.ctx.cfg.election_timeout);
        match self.ring.members.next() {
            None => self.become_leader(now, known + 1),
            Some(_) => self.follow(now, decision),
        }
    }

    pub(super) fn on_election_timeout(&mut self, now: Instant) {
        if self.ring.election.is_participant() && self.life.phase == Phase::Member {
            debug!(
                lamport = self.ctx.clock.now().0,
                "election timed out; starting again"
            );
            self.start_election(now);
        }
    }

    pub(super) fn on_election(&mut self, now: Instant, term: u64, candidate: NodeId) {
        if self.life.phase != Phase::Member {
            return;
        }
        if self.ring.epoch.is_some_and(|e| e.term >= term) {
            return; // a round already decided
        }
        if candidate != self.ctx.id && !self.ring.members.is_online(candidate) {
            debug!(
                lamport = self.ctx.clock.now().0,
                "dropping a token for departed {candidate}"
            );
            return;
        }
        let decision = self.ring.election.on_token(self.ctx.id, term, candidate);
        debug!(
            lamport = self.ctx.clock.now().0,
            "election token ({term}, {candidate}): {decision:?}"
        );
        if matches!(decision, Decision::Forward { .. }) {
            self.ctx.timers
                .set(Timer::Election, now + self.ctx.cfg.election_timeout);
        }
        self.follow(now, decision);
    }

    fn follow(&mut self, now: Instant, decision: Decision) {
        match decision {
            Decision::Forward { term, candidate } => {
                self.send_ring(now, Message::Election { term, candidate })
            }
            Decision::Swallow => {}
            Decision::Won { term } => self.become_leader(now, term),
        }
    }

    /// Sends a ring message to the successor, reliably; rerouted if the successor dies.
    fn send_ring(&mut self, now: Instant, msg: Message) {
        if let Some(next) = self.ring.members.next().and_then(|id| self.ring.members.get(id)) {
            let addr = next.addr;
            self.transport.stats.election_messages += 1;
            self.send_reliable(now, addr, msg.clone(), Token::Ring(msg));
        }
    }

    /// A ring message could not reach `dead`: give it to the current successor instead.
    pub(super) fn reroute_ring(&mut self, now: Instant, dead: SocketAddr, msg: Message) {
        let next = self.ring.members.next().and_then(|id| self.ring.members.get(id));
        if next.is_some_and(|m| m.addr != dead) && self.life.phase == Phase::Member {
            self.transport.stats.election_messages = self.transport.stats.election_messages.saturating_sub(1);
            self.send_ring(now, msg);
        }
    }

    fn become_leader(&mut self, now: Instant, term: u64) {
        let epoch = Epoch {
            term,
            leader: self.ctx.id,
        };
        info!(
            lamport = self.ctx.clock.now().0,
            "elected leader for term {term}"
        );
        self.ring.election.on_elected(term);
        self.ctx.timers.clear(Timer::Election);
        self.set_epoch(now, epoch);
        self.send_ring(now, Message::Elected(epoch));
        self.start_recovery(now);
    }

    pub(super) fn on_elected(&mut self, now: Instant, epoch: Epoch) {
        // An announcement older than what we follow, or than a round under way, is stale
        // (a rerouted token of a leader that died while announcing): it must not end the
        // round that replaces it.
        if self.life.phase != Phase::Member
            || Some(epoch) < self.ring.epoch
            || epoch.term < self.ring.election.term()
        {
            return;
        }
        if Some(epoch) > self.ring.epoch {
            self.ring.election.on_elected(epoch.term);
            self.ctx.timers.clear(Timer::Election);
            self.set_epoch(now, epoch);
        }
        if epoch.leader != self.ctx.id {
            self.send_ring(now, Message::Elected(epoch));
        }
    }
}
