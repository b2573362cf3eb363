//! The member table: entries merged from others (our own refuted when wrong), a silent
//! neighbour declared dead, and everything that follows a member going offline.
//!
//! **Who may say what.** An entry's stamp is never later than the Lamport time of the
//! datagram that carries it (see `dispatch.rs`) and never past
//! `LamportClock::MAX_STAMP`, so a member can always refute a claim about itself with a
//! later stamp. A claim that changes what the table holds of member M, or adds a member,
//! is taken only
//!
//! - from the leader followed (admissions, and whatever it relays: membership decisions);
//!   only the leader moves M to another address (M letting itself in again from there);
//! - from M itself, about its presence (its refutation, its leave, its `dereg`);
//! - or, for "M is offline", from M's ring successor, the member that watches M and
//!   declares it dead.
//!
//! Anyone else's claim is only a hint: this node checks it itself. Told that M is
//! offline, it probes M and watches it as it watches its own predecessor (declaring it
//! dead, with its own stamp, if it stays silent); told that M is online again, it probes
//! M, whose answer shows M this node's view so that M refutes it. A newer stamp that
//! changes neither presence nor address is taken from anyone (anti-entropy).

use super::*;

/// How often one member is probed, at most, to check another's claim about it.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long after this node's verdict that a member is dead one of its heartbeats may
/// still be in flight: a heartbeat later than that shows it lives (see
/// `take_back_verdict`).
const VERDICT_IN_FLIGHT: Duration = Duration::from_secs(2);

impl Node {
    /// Member table entries from `sender` (at `from`): merge what it may say (see the
    /// module documentation), check what it may not, and say what changed.
    pub(in crate::proto::node) fn on_members(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        list: Vec<Member>,
    ) {
        for m in list {
            if m.id == self.ctx.id {
                // A newer "online" of ours (the leader's, from our admission) is taken as
                // it is; a newer "offline", or one elsewhere, is refuted.
                let newer = self
                    .ring
                    .members
                    .get(self.ctx.id)
                    .is_some_and(|me| m.stamp > me.stamp);
                if newer && self.life.is_member() && !self.adopt_own_entry(m.clone()) {
                    self.ctx.clock.restore(m.stamp.lamport);
                    self.refute(now, from);
                } else if !newer && m.presence == Presence::Offline && self.life.is_member() {
                    // An old report of our absence (our refutation never reached them):
                    // our own word, to them; nobody else's is taken for it. (One answer
                    // per report; reports of a table are sent at most once a second.)
                    if let Some(me) = self.ring.members.get(self.ctx.id).cloned() {
                        let msg = Message::Members(vec![me]);
                        self.send_reliable(now, from, msg, Token::Control);
                    }
                }
                continue;
            }
            if m.addr == self.ctx.cfg.addr {
                // Another process at our address is an earlier run of ours (one socket to
                // an address): it no longer runs, whatever a table says. Taken in, it was
                // held online here for good: nobody watches it, and the check that drops
                // a replaced process looks at others' addresses (`sim_chaos` majority
                // seed 30908).
                continue;
            }
            if self.ring.members.get(m.id).is_none() && self.ring.members.len() >= MAX_MEMBERS {
                continue; // a full table takes no strangers
            }
            // A node's name and identity never change, and a name stays with its identity.
            let renamed = self
                .ring
                .members
                .get(m.id)
                .is_some_and(|old| old.name != m.name || old.key != m.key);
            let owned = self
                .ring
                .members
                .entries()
                .any(|o| o.id != m.id && o.name == m.name && o.key != m.key);
            if renamed || owned {
                continue;
            }
            if !self.may_claim(sender, &m) {
                self.check_claim(now, sender, &m);
                continue;
            }
            let name = m.name.clone();
            match self.ring.members.merge(m.clone()) {
                Change::CameOnline => {
                    self.forget_replaced_at(&m, self.leader());
                    self.member_came_online(now, &m)
                }
                Change::WentOffline => {
                    if sender == m.id {
                        // Its goodbye: a proof of a challenge sent before it (a late
                        // resend) does not let it in again.
                        self.life.forget_challenges_of(m.id);
                    }
                    self.ctx.out.event(Event::MemberOffline { name });
                    self.member_gone(now, &m, false);
                }
                Change::Updated | Change::Unchanged => {}
            }
        }
    }

    /// Whether `sender` may tell us `m` (see the module documentation): its subject, the
    /// leader, M's watcher declaring it offline, or a change of nothing but the stamp.
    fn may_claim(&self, sender: NodeId, m: &Member) -> bool {
        let leader = self.leader() == Some(sender);
        let Some(old) = self.ring.members.get(m.id) else {
            return leader; // a new member: only the leader admits one
        };
        if old.addr != m.addr {
            // A node speaks from its address: only the leader, letting it in again
            // from another, moves it (its own word would cut its real self off).
            return leader;
        }
        if sender == m.id || leader {
            return true;
        }
        match (old.presence, m.presence) {
            (Presence::Online, Presence::Offline) => {
                self.ring.members.successor_of(m.id) == Some(sender)
            }
            // The author of a verdict takes it back (see `take_back_verdict`).
            (Presence::Offline, Presence::Online) => old.stamp.by == sender && m.stamp.by == sender,
            _ => true,
        }
    }

    /// `sender` told us of a member we never heard of, which only the leader may do: our
    /// leader may have let it in while its word could not reach us (we were cut off), and
    /// its table does not change again to tell us, nor does it beat to us unless we are
    /// its successor. A probe to the leader carries our table's digest, and a leader whose
    /// table differs sends it (anti-entropy, see `on_heartbeat`): its word we take. At
    /// most once a second.
    fn ask_leader_for_table(&mut self, now: Instant, sender: NodeId) {
        let Some(leader) = self.leader().filter(|l| *l != sender && *l != self.ctx.id) else {
            return;
        };
        let Some(addr) = self.ring.members.get(leader).map(|m| m.addr) else {
            return;
        };
        if self.life.is_member() && self.ring.table_asked.due(leader, now) {
            log_at!(debug, self, "asking leader {leader} for its table");
            self.send_heartbeat(addr, true);
        }
    }

    /// A claim about `m` that `sender` may not make on its own word: if it is newer than
    /// what we hold, check it ourselves (see the module documentation).
    fn check_claim(&mut self, now: Instant, sender: NodeId, m: &Member) {
        let Some(old) = self.ring.members.get(m.id).cloned() else {
            log_at!(
                debug,
                self,
                "not taking {sender}'s word for new member {} ({})",
                m.name,
                m.id
            );
            return self.ask_leader_for_table(now, sender);
        };
        if m.stamp <= old.stamp || m.id == self.ctx.id {
            return;
        }
        log_at!(
            debug,
            self,
            "checking {sender}'s claim that {} is {:?} at {}",
            m.name,
            m.presence,
            m.addr
        );
        if old.presence == Presence::Online
            && m.presence == Presence::Offline
            && self.life.is_member()
        {
            // Watched from now on as our own predecessor is, until heard from.
            self.ring.checking.insert(m.id);
            self.refresh_watch(now);
            // Our predecessor, found dead by our successor (which watched it while we were
            // away, see `Detector::claimed_dead`), whoever passes the word on: judged at
            // once (probes, direct and indirect).
            if self.ring.members.prev() == Some(m.id)
                && self.ring.members.next() == Some(m.stamp.by)
                && self.ring.detector.claimed_dead(m.id, now)
            {
                log_at!(debug, self, "{} said to be gone: suspected", m.name);
                self.ctx.timers.set(Timer::Probe, now);
            }
        }
        let due = self
            .ring
            .probed
            .get(&m.id)
            .is_none_or(|t| now.saturating_duration_since(*t) >= CHECK_INTERVAL);
        if due && self.in_ring() {
            // Ids of the table only: bounded by the table.
            self.ring.probed.insert(m.id, now);
            self.send_heartbeat(old.addr, true);
            if old.presence == Presence::Offline && m.presence == Presence::Online {
                // Checked through others too, as a suspicion is: only the silence of
                // every path renews the verdict (a link cut one way, from it to us, would
                // otherwise have it declared dead again and again).
                self.ring.disputed.insert(m.id, (now, m.stamp.lamport));
                self.ring.asked_about.remove(&m.id);
                self.ask_indirect_probes(now, m.id);
            }
        }
    }

    /// Members held offline here that another member said are online, and that did not
    /// answer the probes sent to check it, directly or through others (a live one
    /// answers, and refutes; an answer through others ends the check): declared
    /// offline again, under a stamp newer than the claim, and the room told. Otherwise a
    /// member that came back from a partition and crashed before its watcher heard of
    /// it stays online at the others for good: its predecessor beats it, its successor,
    /// holding it offline, watches it not.
    pub(in crate::proto::node) fn renew_verdicts(&mut self, now: Instant) {
        if self.ring.disputed.is_empty() {
            return;
        }
        let wait = self.ctx.cfg.dead_after() + self.probe_windows().0;
        let due: Vec<(NodeId, Lamport)> = self
            .ring
            .disputed
            .iter()
            .filter(|(_, (since, _))| now.saturating_duration_since(*since) >= wait)
            .map(|(id, (_, claim))| (*id, *claim))
            .collect();
        for (id, claim) in due {
            self.ring.disputed.remove(&id);
            self.ring.asked_about.remove(&id);
            let Some(mut m) = self.ring.members.get(id).cloned() else {
                continue;
            };
            if m.presence != Presence::Offline {
                continue;
            }
            log_at!(
                info,
                self,
                "{} ({id}), said to be online, did not answer here; cutting it out again",
                m.name
            );
            self.ctx.clock.observe(claim);
            m.stamp = Stamp {
                lamport: self.ctx.clock.tick(),
                by: self.ctx.id,
            };
            self.ring.members.merge(m.clone());
            self.broadcast(now, &Message::Members(vec![m]), &Token::Control);
        }
    }

    /// Takes someone else's version of our own entry if it says we are online where we
    /// are, and is newer than ours or the same; whether our entry now is that version.
    pub(in crate::proto::node) fn adopt_own_entry(&mut self, m: Member) -> bool {
        let Some(me) = self.ring.members.get(self.ctx.id) else {
            return false;
        };
        let faithful = m.presence == Presence::Online && m.addr == me.addr && m.key == me.key;
        if !faithful || m.stamp < me.stamp {
            return false;
        }
        self.ctx.clock.restore(m.stamp.lamport);
        self.ring.members.merge(m);
        true
    }

    /// Everything that follows a member coming online, however we learned of it.
    pub(in crate::proto::node) fn member_came_online(&mut self, now: Instant, m: &Member) {
        self.ring.detector.arrived(m.id, now);
        self.ctx.out.event(Event::MemberOnline {
            name: m.name.clone(),
        });
        self.start_handover(now, &m.name);
        self.member_back(now, m.id);
        // Its answer to a take-over under way counts again; one not asked yet is asked
        // (the take-over may need a majority of the committed voters it is one of).
        self.ask_back_during_recovery(now, m);
        self.maybe_finish_recovery(now);
        // It may watch a member we found dead while it was away: back, it would count
        // that member's silence from nothing, and the others wait for its word.
        let verdicts = self.latest_verdicts(now);
        if !verdicts.is_empty() && self.life.is_member() {
            self.send_reliable(now, m.addr, Message::Members(verdicts), Token::Control);
        }
        if self.is_leader() && self.life.is_member() {
            if self.may_push_table_back(m.id, now) {
                self.send_table_to_returning(now, m.addr);
            } else {
                // Back again within the limit: it may have missed a newcomer since the
                // last push, so one is owed, sent at a heartbeat once the limit allows.
                self.ring.table_owed.insert(m.id);
            }
        }
        self.take_parked_ring_message(now, m.id);
        if self.leader() == Some(m.id) {
            self.leader_back(now);
        }
        if self.life.is_member() {
            // A partition may have healed: the others held offline are looked for now.
            self.probe_offline_now();
            self.prevote_again(now);
        }
    }

    /// A member this node itself declared dead speaks to it after all: the verdict was
    /// wrong (this node was cut off, or the member was away), so this node takes it back.
    /// The evidence must postdate the verdict: an answer to a request sent after it (its
    /// pre-vote), or a heartbeat at least [`VERDICT_IN_FLIGHT`] after it (one sent before
    /// a crash may still arrive just after the verdict). Nobody else takes another's word
    /// that a member is online; this is this node's own word about its own verdict. (The
    /// member also refutes the verdict itself once it hears of it.)
    pub(in crate::proto::node) fn take_back_verdict(
        &mut self,
        now: Instant,
        id: NodeId,
        by_heartbeat: bool,
    ) {
        let Some(mut m) = self.ring.members.get(id).cloned() else {
            return;
        };
        if m.presence != Presence::Offline || m.stamp.by != self.ctx.id || id == self.ctx.id {
            return;
        }
        let recent = self
            .ring
            .verdicts
            .get(&id)
            .is_none_or(|at| now.saturating_duration_since(*at) < VERDICT_IN_FLIGHT);
        if by_heartbeat && recent {
            return;
        }
        if !self.life.is_member() {
            return;
        }
        log_at!(
            info,
            self,
            "{} ({id}) answers after all; back online",
            m.name
        );
        m.presence = Presence::Online;
        m.stamp = Stamp {
            lamport: self.ctx.clock.tick(),
            by: self.ctx.id,
        };
        if self.ring.members.merge(m.clone()) == Change::CameOnline {
            self.member_came_online(now, &m);
        }
        // Everyone told of the verdict is told it is taken back: a resend of the verdict
        // that arrives later is older than this.
        let msg = Message::Members(vec![m]);
        self.broadcast(now, &msg, &Token::Control);
        if self.leader() == Some(id) {
            // The leader lives: no round to replace it, whoever else agrees.
            self.end_prevote();
        }
    }

    /// Everything that follows a member going offline, however we learned of it: a round
    /// to replace a leader that left starts at once; on our own word (`own`) it asks the
    /// voters first; on its watcher's word it waits for the watcher's round.
    pub(in crate::proto::node) fn member_gone(&mut self, now: Instant, m: &Member, own: bool) {
        self.ring.detector.forget(m.id);
        self.ring.asked_about.remove(&m.id);
        self.ring.probing_for.remove(&m.id);
        self.ring.checking.remove(&m.id);
        for token in self.transport.cancel_to(m.addr) {
            self.settle(now, m.addr, token, Fate::Cancelled);
        }
        // A smaller room may make a majority of what waited.
        self.room.forget_member(m.id, &m.name);
        self.advance_commit(now);
        self.reconcile_voters(now);
        self.refresh_watch(now);
        self.survivor_gone(now, m.id);
        self.maybe_confirmed(now, None);
        // A leaving voter whose last peer went has nobody left to wait for.
        self.maybe_notify_leave(now);
        self.repass_ring(now, m.id);
        let was_leader = self.leader() == Some(m.id);
        let participant = self.ring.election.is_participant();
        // The round's largest candidate this node passed on: its token will not come
        // back, and this node swallows every smaller one of the round.
        let carried = self.ring.election_carried(self.ring.election.term(), m.id);
        if self.life.is_member() && participant && (!was_leader || carried) {
            // A round under way may carry the dead member's id as its candidate, which
            // would never come back: start a newer round. (A leader still alive when a
            // round began, by members that lost it, stands in it too.)
            log_at!(
                info,
                self,
                "{} left during an election; starting a new round",
                m.name
            );
            self.start_election(now);
        } else if self.life.is_member() && was_leader && !participant {
            if m.stamp.by == m.id {
                // It left, on its own word: nobody needs asking.
                log_at!(info, self, "leader {} left; electing", m.name);
                self.start_election(now);
            } else if own {
                log_at!(info, self, "leader {} is gone; electing", m.name);
                self.seek_election(now);
            } else {
                // The watcher's word: its own round comes round the ring; this node asks
                // the voters itself only if none comes (the watcher's verdict may also be a
                // late copy, from before it was cut off).
                log_at!(info, self, "leader {} is gone, says its watcher", m.name);
                self.seek_election_later(now);
            }
        }
    }

    /// A neighbour went silent: cut it out of the ring and tell everyone.
    pub(in crate::proto::node) fn declare_dead(&mut self, now: Instant, id: NodeId) {
        let Some(m) = self.ring.members.get(id).cloned() else {
            return;
        };
        if m.presence == Presence::Offline {
            return;
        }
        log_at!(
            info,
            self,
            "{} ({id}) stopped answering; cutting it out",
            m.name
        );
        let m = self.mark_offline(m);
        let members = &self.ring.members;
        self.ring.verdicts.retain(|id, _| {
            members
                .get(*id)
                .is_some_and(|m| m.presence == Presence::Offline)
        });
        self.ring.verdicts.insert(id, now);
        let msg = Message::Members(vec![m.clone()]);
        self.broadcast(now, &msg, &Token::Control);
        self.member_gone(now, &m, true);
    }

    /// Marks `m` offline on this node's word (a newer stamp of ours) and tells the user.
    fn mark_offline(&mut self, mut m: Member) -> Member {
        m.presence = Presence::Offline;
        m.stamp = Stamp {
            lamport: self.ctx.clock.tick(),
            by: self.ctx.id,
        };
        self.ring.members.merge(m.clone());
        self.ctx.out.event(Event::MemberOffline {
            name: m.name.clone(),
        });
        m
    }

    /// A join from `n`, taken at our Lamport time `taken_at`, while no leader can take it:
    /// if our table has it online at that address with that identity, its own join says
    /// it is not in the ring. It is cut out here only (its watcher may not see it online at
    /// all); a later welcome brings it back, and a member that was in the ring after all
    /// refutes it. Not if its entry is newer than the join: let in after it asked (the
    /// join was passed to a leader that went, and is handled again), it is in the ring
    /// (seed 960227: such a member was cut out, the next leader took it out of the voters,
    /// and with two voters left its crash stopped the room for good).
    pub(in crate::proto::node) fn cut_out_joiner(
        &mut self,
        now: Instant,
        n: &Newcomer,
        taken_at: Lamport,
    ) {
        let Some(m) = self.ring.members.get(n.id).cloned() else {
            return;
        };
        if m.presence != Presence::Online
            || m.addr != n.addr
            || m.key != n.key
            || m.id == self.ctx.id
            || m.stamp.lamport > taken_at
        {
            return;
        }
        log_at!(
            info,
            self,
            "{} ({}) asks to join, so it is not in the ring; cutting it out",
            m.name,
            m.id
        );
        let m = self.mark_offline(m);
        self.member_gone(now, &m, true);
    }

    /// Whether newcomer `n` is the user of the leader we follow (another node), asking
    /// from the leader's address: the leader itself back by `reg`, or its user restarted.
    pub(in crate::proto::node) fn is_leaders_user(&self, n: &Newcomer) -> bool {
        self.leader()
            .filter(|l| *l != self.ctx.id)
            .and_then(|l| self.ring.members.get(l))
            .is_some_and(|m| m.addr == n.addr && m.key == n.key && m.name == n.name)
    }

    /// Our leader's user proved it asks to be let in from the leader's address (see
    /// [`Node::is_leaders_user`]): the leader is not in the ring. The same process is
    /// cut out as any joiner our table holds online; an earlier process of the user is
    /// gone, as a process replaced at its address is.
    pub(in crate::proto::node) fn cut_out_leader_asking_in(&mut self, now: Instant, n: &Newcomer) {
        if !self.is_leaders_user(n) {
            return;
        }
        let Some(m) = self
            .leader()
            .and_then(|l| self.ring.members.get(l))
            .cloned()
        else {
            return;
        };
        if m.presence != Presence::Online {
            return;
        }
        log_at!(
            info,
            self,
            "our leader {} ({}) asks to be let in, so it is not in the ring; cutting it out",
            m.name,
            m.id
        );
        let m = self.mark_offline(m);
        self.member_gone(now, &m, true);
    }
}
