//! Membership handling: creating a room, joining through any member (the joiner's side;
//! the leader's is in `admission.rs`), merging member updates, and the graceful leave.

use super::*;

impl Node {
    /// No contact: this node is the room and its leader.
    pub(in crate::proto::node) fn create_room(&mut self, now: Instant) {
        self.ring.install(Epoch {
            term: 0,
            leader: self.ctx.id,
        });
        self.watch_leader(now);
        self.start_heartbeats(now);
        self.adopt_voters(BTreeSet::from([self.ctx.cfg.name.clone()]), Seq(0));
        self.room.lead(0);
        self.life.phase = Phase::Member;
        // Its creator is a member like any other: after `dereg`, `reg` brings it back.
        self.life.was_member = true;
        log_at!(info, self, "created room as leader {}", self.ctx.id);
        self.ctx.out.event(Event::Joined {
            leader: self.ctx.cfg.name.clone(),
            is_leader: true,
            members: 1,
        });
    }

    pub(in crate::proto::node) fn start_join(&mut self, now: Instant, contact: SocketAddr) {
        self.life.join_refusal = None;
        self.life.join_deadline_extended = false;
        self.life.welcome_voters = (BTreeSet::new(), Seq(0));
        self.life.welcome_settling.clear();
        self.life.phase = Phase::Joining {
            contact,
            parts: Default::default(),
        };
        self.ctx
            .timers
            .set(Timer::JoinDeadline, now + self.ctx.cfg.join_timeout);
        self.send_join(now);
    }

    /// Sends the join request to the contact (again, after a "no leader" refusal).
    pub(in crate::proto::node) fn send_join(&mut self, now: Instant) {
        let Phase::Joining { contact, .. } = self.life.phase else {
            return;
        };
        // Retries end at the join deadline, so "unreachable" is reported within it. A
        // restarted node has more members to try, and the one it tries may be gone too.
        let retries = if self.is_restarting() {
            1
        } else {
            (self.ctx.cfg.join_timeout.as_millis() / self.ctx.cfg.ack_timeout.as_millis().max(1))
                .saturating_sub(1) as u32
        };
        let msg = Message::Join {
            name: self.ctx.cfg.name.clone(),
            key: self.life.public_key(),
        };
        self.send_reliable_with(now, contact, msg, Token::Life(LifeToken::Join), retries);
    }

    /// The room refused us. With no leader (an election is running) we ask again shortly,
    /// within the join deadline; any other reason is final.
    pub(in crate::proto::node) fn on_join_refused(&mut self, now: Instant, reason: Refusal) {
        if matches!(self.life.phase, Phase::Member | Phase::Leaving { .. }) {
            self.life.resyncing = false; // the winner would not have us back; stop waiting
            return;
        }
        if reason == Refusal::Restarting && self.is_restarting() {
            return self.restarting_peer(now);
        }
        let retry = matches!(
            reason,
            Refusal::NoLeader | Refusal::Throttled | Refusal::StillOnline | Refusal::Restarting
        );
        if retry && matches!(self.life.phase, Phase::Joining { .. }) {
            log_at!(info, self, "join refused for now ({reason}); asking again");
            if reason == Refusal::StillOnline && self.life.join_refusal.is_none() {
                // The room notices a crashed process within a second when idle, within
                // its newcomer grace (a join timeout) when busy; a live one stays, and
                // that is what the user is told if it does.
                self.ctx
                    .timers
                    .set(Timer::JoinDeadline, now + self.ctx.cfg.join_timeout * 2);
                self.life.join_refusal = Some(reason);
            }
            self.ctx
                .timers
                .set(Timer::JoinRetry, now + self.ctx.cfg.ack_timeout);
        } else {
            self.fail_join(now, JoinError::Refused(reason));
        }
    }

    /// The join deadline passed: still refused (see [`Refusal::StillOnline`]), or
    /// unreachable if the contact never acked, else no welcome.
    pub(in crate::proto::node) fn join_deadline(&mut self, now: Instant) {
        if let Phase::Joining { contact, .. } = self.life.phase {
            let unacked = self
                .transport
                .any_pending(|t| *t == Token::Life(LifeToken::Join));
            let err = if let Some(reason) = self.life.join_refusal.take() {
                JoinError::Refused(reason)
            } else if unacked {
                JoinError::Unreachable(contact)
            } else {
                JoinError::Timeout
            };
            self.fail_join(now, err);
        }
    }

    pub(in crate::proto::node) fn fail_join(&mut self, now: Instant, err: JoinError) {
        if !matches!(self.life.phase, Phase::Joining { .. }) {
            return;
        }
        log_at!(info, self, "join failed: {err}");
        self.ctx.timers.clear(Timer::JoinDeadline);
        self.ctx.timers.clear(Timer::JoinRetry);
        if self.is_restarting() {
            return self.restart_join_failed(now, err);
        }
        if !self.life.was_member {
            self.life.phase = Phase::Done;
            return self.ctx.out.event(Event::JoinFailed(err));
        }
        // Coming back after `dereg`: try the next member we know; refusals are final.
        // Nobody answering may be a run of losses rather than a room gone: go round them
        // again, [`REG_ROUNDS`] times and for [`REG_KEEPS_TRYING`] at least (a contact
        // whose round trip is known gives up within a second), while the `reg` is young.
        let retry = !matches!(err, JoinError::Refused(_));
        let (all, since, rounds_left) = &mut self.life.reg_round;
        let age = since.map(|t| now.saturating_duration_since(t));
        let young = age.is_some_and(|a| a < REG_PATIENCE);
        let more = *rounds_left > 0 || age.is_some_and(|a| a < REG_KEEPS_TRYING);
        if retry && self.life.reg_contacts.is_empty() && more && young {
            let first = *rounds_left + 1 == REG_ROUNDS;
            *rounds_left = rounds_left.saturating_sub(1);
            self.life.reg_contacts = all.clone();
            if first {
                self.ctx.out.event(Event::Notice(format!(
                    "reg: no member answered yet ({err}); asking them again for up to {} s",
                    REG_PATIENCE.as_secs()
                )));
            }
        }
        match self.life.reg_contacts.pop() {
            Some(next) if retry => self.start_join(now, next),
            _ => {
                self.life.reg_contacts.clear();
                self.life.phase = Phase::Offline;
                self.ctx.out.event(Event::RegFailed(err));
            }
        }
    }

    /// Our join reached the contact: the welcome may take longer than the contact's
    /// answer (the leader is further away, or the room is electing), so wait longer for it.
    pub(in crate::proto::node) fn join_acked(&mut self, now: Instant) {
        if matches!(self.life.phase, Phase::Joining { .. })
            && self.life.join_refusal.is_none()
            && !self.life.join_deadline_extended
        {
            self.life.join_deadline_extended = true;
            self.ctx
                .timers
                .set(Timer::JoinDeadline, now + self.ctx.cfg.join_timeout * 3);
        }
        if matches!(self.life.phase, Phase::Joining { .. }) {
            // A leader that took its 20 joins from our address this second ignores
            // more in that second: ask again a second later, until challenged.
            self.ctx
                .timers
                .set_if_unset(Timer::JoinRetry, now + Duration::from_secs(1));
        }
    }

    /// A newer leader was heard of (a partition healed): re-register with it at `addr` to
    /// learn its table and where its sequence is, and give it our replica of the offline
    /// queue (the union survives the heal).
    pub(in crate::proto::node) fn resync_with(&mut self, now: Instant, addr: SocketAddr) {
        self.life.resyncing = true;
        self.life.resync_since = Some(now);
        let msg = Message::Join {
            name: self.ctx.cfg.name.clone(),
            key: self.life.public_key(),
        };
        self.send_reliable(now, addr, msg, Token::Life(LifeToken::Resync));
        let kept: Vec<QueuedDm> = self.mail.kept();
        for item in kept {
            self.send_reliable(now, addr, Message::Queued(item), Token::Control);
        }
    }

    /// The winner never answered our re-registration: stop waiting for it.
    pub(in crate::proto::node) fn resync_gave_up(&mut self) {
        self.life.resyncing = false;
    }

    /// The leader we follow answered us as a stranger: this process is not in its table.
    /// It was let in by a leader of an earlier term whose word the room never took (a
    /// leader cut off with a minority, say, that then learned of the newer term), and
    /// followed the newer one on the voters' word (see `ring/prevote.rs`), which no
    /// announcement to us backs. Nothing of ours counts there, and its other members drop
    /// it too: ask it to take us in, as after a heal. One at a time, and at most one a
    /// join timeout.
    pub(in crate::proto::node) fn on_unknown_to_leader(&mut self, now: Instant, from: SocketAddr) {
        if !self.life.is_member() || self.is_leader() || self.resync_busy(now) {
            return;
        }
        log_at!(
            info,
            self,
            "the leader does not know this process; asking it to take us in"
        );
        self.resync_with(now, from);
    }

    /// Whether a re-registration is under way and not yet past a join timeout.
    pub(in crate::proto::node) fn resync_busy(&self, now: Instant) -> bool {
        self.life.resyncing
            && self
                .life
                .resync_since
                .is_some_and(|t| now.saturating_duration_since(t) < self.ctx.cfg.join_timeout)
    }

    /// `leader` claims (or a neighbour says it claims) a newer term than this node saw
    /// an election for: ask it to take us in (a join under our own id). Its welcome,
    /// its own answer to us, names the epoch this node then follows (see
    /// `ring/terms.rs`). One at a time, and at most one a join timeout.
    pub(in crate::proto::node) fn seek_leader(&mut self, now: Instant, leader: NodeId) {
        // A voter leaving follows too: only a leader it follows takes it out of the voters.
        if leader == self.ctx.id || !self.life.takes_part() {
            return;
        }
        if self.resync_busy(now) {
            return;
        }
        let Some(addr) = self.ring.members().get(leader).map(|m| m.addr) else {
            return log_at!(
                debug,
                self,
                "{leader}, named as a newer leader, is not a member"
            );
        };
        if !self.ring.members().is_online(leader) {
            // We found it dead ourselves: nothing of ours reaches it (a link cut one way
            // or both), so a join to it would go nowhere. The voters' answers to a
            // pre-vote name the epoch they follow, and two of them are enough to follow
            // it too (see `ring/prevote.rs`); what it sequences then comes through the
            // other members (see `room/catchup.rs`).
            return self.seek_election(now);
        }
        log_at!(
            info,
            self,
            "{leader} is named leader of a newer term; asking it to take us in"
        );
        self.resync_with(now, addr);
    }

    /// `leader`, not in our table, is named leader of a newer term by the member at `via`
    /// (or by itself, from there): ask `via` to take us in, which a member passes on to
    /// its leader (see [`Node::seek_leader`]). Nothing is followed before the leader's own
    /// welcome.
    pub(in crate::proto::node) fn seek_leader_via(
        &mut self,
        now: Instant,
        leader: NodeId,
        via: SocketAddr,
    ) {
        if leader == self.ctx.id || !self.life.takes_part() || self.resync_busy(now) {
            return;
        }
        log_at!(
            info,
            self,
            "{leader}, unknown here, is named leader of a newer term; asking {via} to take us in"
        );
        self.resync_with(now, via);
    }

    /// A challenge: sign it with our identity, in the form its kind asks for.
    pub(in crate::proto::node) fn on_challenge(
        &mut self,
        now: Instant,
        (from, sender): (SocketAddr, NodeId),
        nonce: [u8; 16],
        newcomer: NodeId,
        of_member: bool,
    ) {
        if of_member {
            // A member that does not know this process asks who it is (see `proven.rs`),
            // whether or not we are asking to be taken in meanwhile: answered with a
            // join's proof, it did not check there, and that member dropped this process
            // for good (`sim_chaos` minority seed 12829).
            if newcomer == self.ctx.id {
                self.prove_to_member(now, from, sender, nonce);
            }
            return;
        }
        // Asking a newer leader to take us in (a member, or one leaving that has not said
        // goodbye): a node that said goodbye proves nothing, or it would be let in again.
        let resyncing = self.life.resyncing && self.life.takes_part();
        if !resyncing && !matches!(self.life.phase, Phase::Joining { .. }) {
            return;
        }
        if newcomer != self.ctx.id {
            // A resend to an earlier process at our address (it crashed before acking
            // it): our proof of its nonce would not verify, and end our join.
            return log_at!(debug, self, "a challenge for {newcomer}, not this process");
        }
        // Answered by a welcome or a refusal at once, unless the leader no longer waits
        // for our proof (it dropped our challenge among too many, or lost its lead, or
        // a copy of its challenge came after its answer): then ask again, a join
        // timeout on.
        if matches!(self.life.phase, Phase::Joining { .. }) {
            // The challenge shows our join reached the room even if every ack of it was
            // lost: wait for the welcome as long as for an acked join.
            self.join_acked(now);
            self.ctx
                .timers
                .set(Timer::JoinRetry, now + self.ctx.cfg.join_timeout);
        }
        let message = proof_message(&nonce, self.ctx.id, &self.ctx.cfg.name);
        let signature = self.life.identity.sign(&message).to_bytes().to_vec();
        self.send_reliable(now, from, Message::Proof { signature }, Token::Control);
    }

    /// A part of our welcome arrived; once all parts are here, we are in.
    pub(in crate::proto::node) fn on_welcome(
        &mut self,
        now: Instant,
        at: SocketAddr,
        sender: NodeId,
        w: Welcome,
    ) {
        if self.life.takes_part() {
            return self.on_resync_welcome(now, at, sender, w);
        }
        let Phase::Joining { parts, .. } = &mut self.life.phase else {
            return;
        };
        if w.part >= w.parts {
            return;
        }
        // Admitted: the rest of the welcome comes with the leader's own resends, and a
        // new join now would bring a second welcome whose parts mix with this one's.
        self.ctx.timers.clear(Timer::JoinRetry);
        if !parts.is_empty()
            && (self.life.welcome_voters.1 != w.voters_at || self.life.welcome_next != w.next_seq)
        {
            // A part of another welcome (the leader's answer to a join asked again): the
            // parts held are of an older table and configuration; start over.
            parts.clear();
            self.life.welcome_voters.0.clear();
            self.life.welcome_settling.clear();
        }
        let flagged =
            |bits: &[u8], i: usize| bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
        self.life
            .welcome_voters
            .0
            .extend(w.unlisted_voters.iter().cloned());
        for (i, m) in w.members.iter().enumerate() {
            if flagged(&w.voting, i) {
                self.life.welcome_voters.0.insert(m.name.clone());
            }
            if flagged(&w.settling, i) {
                self.life.welcome_settling.insert(m.id);
            }
        }
        self.life.welcome_voters.1 = w.voters_at;
        self.life.welcome_next = w.next_seq;
        parts.insert(w.part, w.members);
        if parts.len() < w.parts as usize {
            return;
        }
        let (voters, voters_at) = std::mem::take(&mut self.life.welcome_voters);
        let settling = std::mem::take(&mut self.life.welcome_settling);
        let parts = std::mem::take(parts);
        let (_, ours_at) = self.room.committed_voters();
        if voters_at >= ours_at {
            self.adopt_voters(voters, voters_at);
        } else {
            // A welcome of an older configuration than the one we hold committed (from a
            // node restarted from an old disk, or built before its sender applied a
            // change): the changes between are committed and not applied again here, so
            // taking it would count majorities in a configuration the room has left.
            log_at!(
                info,
                self,
                "welcome names the voters as of #{}, ours are of #{}: keeping ours",
                voters_at,
                ours_at
            );
        }
        let mut leaders_view_of_me = None;
        let in_welcome: BTreeSet<NodeId> = parts.values().flatten().map(|m| m.id).collect();
        self.forget_departed_since(&in_welcome);
        for m in parts.into_values().flatten() {
            if m.id == self.ctx.id {
                leaders_view_of_me = Some(m);
            } else if m.addr == self.ctx.cfg.addr {
                // An earlier run of ours, still in the leader's table: it no longer runs
                // (see `on_members`).
            } else {
                // Any of them may not know of us yet (a welcome from a leader about to be
                // replaced, whose word on us the others do not take: `sim_restart` seeds
                // 2010, 2368): it is found dead by the usual bounds only once another
                // member agreed to probe it for us (see `detector.rs`). One still being
                // welcomed itself also has the newcomer's grace until heard from.
                self.ring.met(m.id, now);
                if settling.contains(&m.id) {
                    self.ring.arrived(m.id, now);
                }
                let online = m.presence == Presence::Online;
                self.ring.merge(m.clone());
                if online {
                    // A process the leader holds online at an address replaces any other
                    // held there (an earlier process of a user restarted), as in
                    // `on_members`: ours may be online under a stamp newer than the
                    // leader's, and nobody else watches it any more. The leader spared is
                    // the one welcoming us: the one we followed before may be that very
                    // earlier process (`sim_chaos` seed 3663).
                    self.forget_replaced_at(&m, Some(w.epoch.leader));
                }
            }
        }
        // A node never acks a lower epoch's proposals than one it followed before (on
        // disk across a restart): it may have answered that epoch's leader, whose majority
        // counted it, and acking an older leader's proposals now could commit what that
        // majority never saw. It starts a round above it once a member, which replaces
        // the older leader (as a Raft node's higher term does).
        let followed = self.followed_epoch();
        let outranked =
            followed.filter(|f| f.term > w.epoch.term || (f.term == w.epoch.term && *f != w.epoch));
        if let Some(f) = outranked {
            log_at!(
                info,
                self,
                "welcomed by the leader of term {}, below term {} followed before",
                w.epoch.term,
                f.term
            );
        }
        self.ring.install(w.epoch);
        if let Some(v) = w.voucher {
            self.keep_welcome_voucher(w.epoch, *v);
        }
        // The welcome is the leader's own answer to our join.
        self.watch_leader(now);
        self.leader_spoke_itself(now);
        self.restart_done();
        let was_member = self.life.was_member;
        let (behind, skipped) = self.room.welcomed(
            self.ctx.cfg.join_history,
            was_member,
            w.next_seq,
            w.oldest,
            w.pending_from,
        );
        self.note_delivery_point();
        if skipped > 0 {
            self.say_skipped(skipped);
        }
        if was_member {
            self.return_replica(now);
        }
        if behind {
            self.ctx.timers.set(Timer::GapRepair, now);
        }
        self.life.was_member = true;
        // The leader stamped our entry online when it admitted us, and every member holds
        // that version: take it, so that our table is the same as theirs. Only if it is
        // missing or older than what we wrote ourselves (an "offline" from our last
        // `dereg`, say) do we write a newer one, and then everyone is told.
        let adopted = leaders_view_of_me.is_some_and(|m| self.adopt_own_entry(m));
        self.life.phase = Phase::Member;
        if !adopted && let Some(mut me) = self.ring.members().get(self.ctx.id).cloned() {
            me.presence = Presence::Online;
            me.stamp = Stamp {
                lamport: self.ctx.clock.tick(),
                by: self.ctx.id,
            };
            self.ring.merge(me.clone());
            self.broadcast(now, &Message::Members(vec![me]), &Token::Control);
        }
        self.ctx.timers.clear(Timer::JoinDeadline);
        self.ctx.timers.clear(Timer::JoinRetry);
        self.start_heartbeats(now);
        if let Some(f) = outranked {
            self.replace_older_leader(now, f);
        } else if let Some(addr) = self.ring.members().get(w.epoch.leader).map(|m| m.addr) {
            // We hold the whole welcome and follow its leader: say so within our session,
            // so that our watcher judges us by the usual bounds from now on.
            self.send_reliable(now, addr, Message::WelcomeTaken, Token::Control);
            // Our table holds it offline (a verdict from before, under a newer stamp than
            // its own entry in the welcome): shown our view, it refutes it at once, as a
            // heartbeat's sender is shown (see `on_heartbeat`). Until then we neither
            // answer its sync requests nor watch it.
            if let Some(held) = self
                .ring
                .members()
                .get(w.epoch.leader)
                .filter(|m| m.presence == Presence::Offline)
                .cloned()
            {
                self.send_reliable(now, addr, Message::Members(vec![held]), Token::Control);
            }
        }
        if was_member {
            // What we wrote while away (or could not hand over before) goes out now: as a
            // member, since nothing is submitted or kept for a node that is not one.
            self.resubmit(now);
        }
        let leader = self
            .name_of(w.epoch.leader)
            .unwrap_or_else(|| w.epoch.leader.to_string());
        log_at!(info, self, "joined; leader is {leader}");
        self.ctx.out.event(Event::Joined {
            leader,
            is_leader: false,
            members: self
                .ring
                .members()
                .current()
                .iter()
                .filter(|m| m.presence == Presence::Online)
                .count(),
        });
    }

    /// A welcome while already in the room: the answer to re-registering with a leader
    /// learned of by gossip. A welcome from the leader it names, of a newer term than
    /// ours, is that leader's own answer to us: we follow it. Merge its table; if its
    /// sequence is behind ours, ours diverged (a partition had its own leader), so follow
    /// its numbering from here on.
    fn on_resync_welcome(&mut self, now: Instant, at: SocketAddr, sender: NodeId, w: Welcome) {
        if !self.life.resyncing || sender != w.epoch.leader {
            return;
        }
        if self.ring.epoch().is_none_or(|e| e.term < w.epoch.term)
            && self.term_in_range(now, w.epoch.term)
        {
            log_at!(
                info,
                self,
                "{sender} took us in as leader of term {}",
                w.epoch.term
            );
            self.accept_leader(now, w.epoch);
            self.leader_spoke_itself(now);
        } else if self.yields_term_to(w.epoch) {
            self.yield_term(now, w.epoch);
            self.leader_spoke_itself(now);
        }
        if Some(w.epoch) != self.ring.epoch() {
            return;
        }
        // A leader not in our table yet (asked through a member, see `seek_leader_via`)
        // speaks from where its welcome came.
        let from = self.leader_addr().or_else(|| {
            (self.ring.members().get(sender).is_none() && self.leader() == Some(sender))
                .then_some(at)
        });
        if let (Some(from), Some(leader)) = (from, self.leader()) {
            self.on_members(now, from, leader, w.members);
        }
        if w.part >= w.parts {
            return;
        }
        if w.part + 1 < w.parts {
            return;
        }
        self.life.resyncing = false;
        self.follow_numbering(now, w.next_seq);
    }
}
