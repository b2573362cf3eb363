//! Chang-Roberts election on the ring: rounds started when the leader is gone, tokens
//! passed to the successor (rerouted when it dies), the winner announced round the ring,
//! and the epoch every node then follows (a leader of an older one steps down).

use super::prevote::KNOCK_AFTER;
use super::*;

/// The ring message passed on last: to which successor, when, and what became of it.
#[derive(Clone, Debug)]
pub(super) struct LastPass {
    /// The successor it went to.
    to: NodeId,
    /// When.
    at: Instant,
    /// The election token or announcement.
    msg: Message,
    /// Whether the successor acked it.
    acked: bool,
    /// Whether it went to the member after the successor too (see
    /// [`Node::pass_beyond_silent_successor`]).
    beyond: bool,
}

impl Node {
    /// What became of a ring message: one that never reached the successor `to` goes to
    /// the current successor instead.
    pub(in crate::proto::node) fn ring_settled(
        &mut self,
        now: Instant,
        to: SocketAddr,
        t: RingToken,
        fate: Fate,
    ) {
        match (t, fate) {
            (RingToken::Pass(msg), Fate::Acked) => {
                let members = &self.ring.members;
                if let Some(pass) = self.ring.last_pass.as_mut()
                    && members.get(pass.to).map(|m| m.addr) == Some(to)
                    && pass.msg == msg
                {
                    pass.acked = true;
                }
            }
            (RingToken::PreVote | RingToken::Beyond, _) => {}
            (RingToken::ProbeFor(target), Fate::Acked) => {
                if self.asked(to, target) {
                    self.ring.detector.prober_took(target);
                }
            }
            (RingToken::ProbeFor(_), _) => {}
            (RingToken::Pass(msg), Fate::GaveUp | Fate::Cancelled) => {
                self.reroute_ring(now, to, msg)
            }
        }
    }

    /// Follows `epoch`, the outcome of a round: no round of ours is under way any more.
    pub(in crate::proto::node) fn accept_leader(&mut self, now: Instant, epoch: Epoch) {
        self.ring.election.on_elected(epoch.term);
        self.ctx.timers.clear(Timer::Election);
        self.set_epoch(now, epoch);
    }

    /// Follows `epoch` from now on. A leader of an older epoch steps down; own unconfirmed
    /// room messages go to the new leader at once. One leader per term: once this node
    /// follows a leader of term `t`, no other leader of `t` is followed (two would each
    /// count this node's copies of different entries under the same term), except by
    /// [`Node::yield_term`], where the first sequenced nothing in `t`.
    pub(in crate::proto::node) fn set_epoch(&mut self, now: Instant, epoch: Epoch) {
        if self.ring.epoch.is_some_and(|e| e.term >= epoch.term) {
            return;
        }
        self.change_epoch(now, epoch);
    }

    /// Whether this node gives way to `epoch`'s leader, which took it in, in the term this
    /// node leads itself but never sequenced in: it won its round alone (every member it
    /// knew was cut out, or had restarted under an id it does not know) and found no
    /// majority to take over with, so it proposed nothing in that term (proposals come
    /// only with the take-over). As a Raft candidate that hears of its term's leader, it
    /// follows that one, which gathered a majority: no copy of this node's counts under
    /// the term for two leaders.
    /// A follower of such a leader, which heard it follow `epoch`, gives way too: the
    /// leader it followed sequenced nothing in the term, so it holds no copy of that
    /// leader's in it either. So does a follower whose leader is offline in its table
    /// (gone, or replaced by a new process) and that took no part in that leader's term:
    /// it answered no sync request of it (an answer counts towards its take-over: having
    /// answered both leaders of a term, a member let both take over, and one number got
    /// two entries, `sim_chaos` minority seed 6222), holds no proposal of it and heard no
    /// commit notice of it. Without this it refused the room's leader of the same term
    /// for good, whose voters refuse the rounds that would move it on (`sim_chaos`
    /// majority seed 19419: the leader it followed won its round in a ring cut off from
    /// the room, and crashed).
    pub(in crate::proto::node) fn yields_term_to(&self, epoch: Epoch) -> bool {
        let Some(ours) = self.ring.epoch else {
            return false;
        };
        if ours.term != epoch.term || ours.leader == epoch.leader || epoch.leader == self.ctx.id {
            return false;
        }
        if ours.leader == self.ctx.id {
            !self.room.is_sequencing() && !self.room.led_in(epoch.term)
        } else {
            self.ring.gave_way_to == Some(epoch)
                || (!self.ring.members.is_online(ours.leader)
                    && !self.room.took_part_in_term(ours.term))
        }
    }

    /// Our leader's beat names another leader of its own term: it gave way to that one
    /// (see [`Node::yields_term_to`]). Ask that one to take us in, as it did our leader.
    pub(in crate::proto::node) fn leader_gave_way(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        theirs: Epoch,
    ) {
        let Some(ours) = self.ring.epoch else {
            return;
        };
        if sender != ours.leader
            || sender == self.ctx.id
            || theirs.term != ours.term
            || theirs.leader == sender
            || theirs.leader == self.ctx.id
        {
            return;
        }
        if self.ring.gave_way_to != Some(theirs) {
            log_at!(
                info,
                self,
                "our leader {sender} follows {} in its own term {}: it gave way",
                theirs.leader,
                theirs.term
            );
            self.ring.gave_way_to = Some(theirs);
        }
        if self.ring.members.get(theirs.leader).is_some() {
            self.seek_leader(now, theirs.leader);
        } else {
            self.seek_leader_via(now, theirs.leader, from);
        }
    }

    /// Follows `epoch` in place of this node's own leadership of that term (see
    /// [`Node::yields_term_to`]).
    pub(in crate::proto::node) fn yield_term(&mut self, now: Instant, epoch: Epoch) {
        if !self.yields_term_to(epoch) {
            return;
        }
        log_at!(
            info,
            self,
            "giving way to {} in term {}: it took us in, and nothing was sequenced there by the leader we followed",
            epoch.leader,
            epoch.term
        );
        let was_leader = self.is_leader();
        self.ring.election.on_elected(epoch.term);
        self.ctx.timers.clear(Timer::Election);
        self.change_epoch(now, epoch);
        if was_leader {
            // Members this node let in during the term follow it there and take no other
            // leader of the term unless they hear it gave way (see `leader_gave_way`);
            // its beats reach only its successor, so each is told once now.
            let followers: Vec<SocketAddr> = self
                .ring
                .members
                .online_peers()
                .filter(|m| m.id != epoch.leader)
                .map(|m| m.addr)
                .collect();
            for addr in followers {
                self.send_heartbeat(addr, true);
            }
        }
    }

    fn change_epoch(&mut self, now: Instant, epoch: Epoch) {
        let was_leader = self.is_leader();
        self.ring.epoch = Some(epoch);
        self.ring.rounds_timed_out = 0;
        self.room.leader_changed();
        self.end_prevote();
        if self
            .ring
            .followed_before
            .is_some_and(|f| f.term < epoch.term)
        {
            self.ring.followed_before = None;
        }
        self.watch_leader(now);
        if was_leader && epoch.leader != self.ctx.id {
            log_at!(info, self, "stepping down for {}", epoch.leader);
            self.room.step_down();
            // Still in the outbox: resubmitted to the new leader below.
            self.ctx.timers.clear(Timer::Recovery);
        }
        let name = self
            .name_of(epoch.leader)
            .unwrap_or_else(|| epoch.leader.to_string());
        self.ctx.out.event(Event::LeaderChanged { name });
        if epoch.leader != self.ctx.id {
            self.resubmit(now);
            // Our table's digest, to the new leader: members it let in before we followed
            // it were its word, not our leader's, then; where the tables differ it sends
            // its own (see `on_heartbeat`), whose word we now take.
            if let Some(addr) = self.leader_addr() {
                self.send_heartbeat(addr, true);
            }
        }
    }

    /// An older leader let this node back in, below `before`, an epoch it followed: it
    /// follows the older leader's epoch for what it shows, acks none of its proposals, and
    /// starts a round above `before` at once (see `life/join.rs`).
    pub(in crate::proto::node) fn replace_older_leader(&mut self, now: Instant, before: Epoch) {
        self.ring.followed_before = Some(before);
        self.ring.election.on_elected(before.term);
        self.start_election(now);
    }

    /// This node as an election compares it: by what it showed, then by id. A node that
    /// does not vote in the configuration its log ends with (a learner of a large room,
    /// see `room/relay.rs`, or a newcomer not yet added) stands as having shown nothing,
    /// so any voter wins over it: a learner's configuration is the committed one only,
    /// which may lag the voters' by a change, and a take-over counts a majority of it.
    fn as_candidate(&self) -> Candidate {
        let log = if !self.room.log_voters().contains(&self.ctx.cfg.name) {
            Seq(0)
        } else {
            self.room.next()
        };
        Candidate {
            log,
            id: self.ctx.id,
        }
    }

    /// Starts a Chang-Roberts round above every term known, at once (a round this node
    /// seeks on its own judgement asks the voters first: [`Node::seek_election`]).
    pub(in crate::proto::node) fn start_election(&mut self, now: Instant) {
        self.end_prevote();
        let known = self
            .ring
            .epoch
            .map_or(0, |e| e.term)
            .max(self.ring.election.term())
            .min(MAX_TERM - 1);
        let decision = self.ring.election.start(self.as_candidate(), known + 1);
        log_at!(debug, self, "starting election round {}", known + 1);
        self.ctx
            .timers
            .set(Timer::Election, now + self.round_timeout());
        match self.ring.members.next() {
            None => self.become_leader(now, known + 1),
            Some(_) => self.follow(now, decision),
        }
    }

    /// A round this node takes part in did not end within the round timeout (see
    /// `Node::round_timeout`): its tokens were lost, or its winner's announcement never
    /// came here. The node asks the voters before it starts another (see `prevote.rs`):
    /// if the others follow a leader that leads, a new round would only depose it, and
    /// would be followed by another whenever the announcement is lost again (a member cut
    /// from the winner, its ring predecessor, never hears one); their answers name that
    /// leader instead. A node an
    /// older leader let back in (see [`Node::replace_older_leader`]) starts again at
    /// once: the voters follow that leader and would refuse, and it acks none of its
    /// proposals meanwhile. After [`KNOCK_AFTER`] rounds in a row timed out, it also
    /// knocks, as after as many pre-votes without a majority: a round through this node
    /// ends its pre-vote, so another member's rounds, timing out in turn, kept it from
    /// ever knocking (`sim_chaos` majority seed 11376: ben, restarted, and ann, whom
    /// he let in, each ran rounds the room's members dropped, while the room went on
    /// under a leader neither knew).
    pub(in crate::proto::node) fn on_election_timeout(&mut self, now: Instant) {
        if !self.ring.election.is_participant() || !self.life.is_member() {
            return;
        }
        self.ring.rounds_timed_out += 1;
        if self.ring.rounds_timed_out >= KNOCK_AFTER {
            self.knock(now, self.ring.rounds_timed_out);
        }
        if self.ring.followed_before.is_some() {
            log_at!(
                debug,
                self,
                "election timed out below a followed epoch; starting again"
            );
            return self.start_election(now);
        }
        log_at!(
            debug,
            self,
            "election round {} timed out; asking the voters",
            self.ring.election.term()
        );
        self.ring.election.abandon();
        self.seek_election(now);
    }

    pub(in crate::proto::node) fn on_election(
        &mut self,
        now: Instant,
        term: u64,
        candidate: Candidate,
    ) {
        if !self.life.takes_part() {
            return;
        }
        if self.ring.epoch.is_some_and(|e| e.term >= term) {
            return; // a round already decided
        }
        if candidate.id != self.ctx.id && !self.ring.members.is_online(candidate.id) {
            log_at!(
                debug,
                self,
                "dropping a token for departed {}",
                candidate.id
            );
            return;
        }
        let decision = self
            .ring
            .election
            .on_token(self.as_candidate(), term, candidate);
        log_at!(
            debug,
            self,
            "election token ({term}, {}, log #{}): {decision:?}",
            candidate.id,
            candidate.log
        );
        if matches!(decision, Decision::Forward { .. }) {
            // A round under way: this node's own pre-vote is moot.
            self.end_prevote();
            self.ctx
                .timers
                .set(Timer::Election, now + self.round_timeout());
        }
        self.follow(now, decision);
    }

    fn follow(&mut self, now: Instant, decision: Decision) {
        match decision {
            Decision::Forward { term, candidate } => self.send_ring(
                now,
                Message::Election {
                    term,
                    candidate: candidate.id,
                    log: candidate.log,
                },
            ),
            Decision::Swallow => {}
            Decision::Won { term } => self.become_leader(now, term),
        }
    }

    /// Sends a ring message to the successor, reliably; rerouted if the successor dies.
    fn send_ring(&mut self, now: Instant, msg: Message) {
        if let Some(next) = self
            .ring
            .members
            .next()
            .and_then(|id| self.ring.members.get(id))
        {
            let addr = next.addr;
            self.ring.last_pass = Some(LastPass {
                to: next.id,
                at: now,
                msg: msg.clone(),
                acked: false,
                beyond: false,
            });
            self.transport.count_election_message(true);
            self.send_reliable(now, addr, msg.clone(), Token::Ring(RingToken::Pass(msg)));
        }
    }

    /// Member `gone` left or died: if it was the last to be passed a ring message of a
    /// round still under way (or an announcement within the round timeout), it may
    /// have taken it and gone (a leader that left, say, before this node heard its
    /// goodbye): pass it to the current successor too. A token seen twice changes nothing.
    pub(in crate::proto::node) fn repass_ring(&mut self, now: Instant, gone: NodeId) {
        let Some(pass) = self.ring.last_pass.clone() else {
            return;
        };
        if pass.to != gone || !self.ring_message_current(now, &pass) {
            return;
        }
        log_at!(
            debug,
            self,
            "{gone} went with a ring message; passing it on again"
        );
        self.transport.count_election_message(false);
        self.send_ring(now, pass.msg);
    }

    /// Whether the ring message passed on last still matters: a token of the round under
    /// way, or the announcement of the epoch followed within the round timeout.
    fn ring_message_current(&self, now: Instant, pass: &LastPass) -> bool {
        let recent = now.saturating_duration_since(pass.at) < self.round_timeout();
        let open = match &pass.msg {
            Message::Election { term, .. } => {
                self.ring.election.is_participant()
                    && *term == self.ring.election.term()
                    && self.ring.epoch.is_none_or(|e| e.term < *term)
            }
            Message::Elected(epoch) => recent && self.ring.epoch == Some(*epoch),
            _ => false,
        };
        open && self.life.takes_part()
    }

    /// On the heartbeat tick: the ring message passed on last has not been acked for a
    /// quarter of the election timeout (or, on a slower path, a round trip and a resend's
    /// wait). The successor may be alive to everyone and still
    /// take nothing from this node: its table lacks this node (a member let in again just
    /// before the leader died, say: only a leader's word adds a member, and there is no
    /// leader until the round ends), or the link drops one way. A round must not wait on
    /// it (its resends take longer than the round's timeout): the message goes to the
    /// member after it as well, once. A token or an announcement seen twice changes
    /// nothing.
    pub(in crate::proto::node) fn pass_beyond_silent_successor(&mut self, now: Instant) {
        if self
            .ring
            .last_pass
            .as_ref()
            .is_none_or(|pass| pass.acked || pass.beyond)
        {
            return;
        }
        let (srtt, rto) = self.slowest_path();
        let Some(pass) = self.ring.last_pass.as_ref() else {
            return;
        };
        let patience = (self.ctx.cfg.election_timeout / 4).max(srtt + rto);
        if now.saturating_duration_since(pass.at) < patience
            || !self.ring_message_current(now, pass)
        {
            return;
        }
        let Some(after) = self
            .ring
            .members
            .successor_of(pass.to)
            .filter(|id| *id != self.ctx.id && *id != pass.to)
            .and_then(|id| self.ring.members.get(id))
            .map(|m| (m.id, m.addr))
        else {
            return;
        };
        let (to, msg) = (pass.to, pass.msg.clone());
        if let Some(last) = self.ring.last_pass.as_mut() {
            last.beyond = true;
        }
        log_at!(
            debug,
            self,
            "{to} took no ring message in {patience:?}; passing it to {} too",
            after.0
        );
        // The same pass, another way: not counted again (as a rerouted one is not).
        self.send_reliable(now, after.1, msg, Token::Ring(RingToken::Beyond));
    }

    /// A ring message (election token or announcement) from `sender`, a member held
    /// offline here, was dropped (it passed every other check: see `dispatch.rs`): only
    /// a member online here may move a round. It is kept
    /// (the last one only) and taken if the sender comes back online within the round
    /// timeout. A member back from a pause often sends its refutation and the token it
    /// passes on a few milliseconds apart, and the two may arrive the other way round:
    /// dropped, the token came again only with the sender's resend, 500 ms later
    /// (`sim_election` seed 1701390: the new leader 1.02 s after the crash). Not acked,
    /// so the resend still comes; a token seen twice changes nothing.
    pub(in crate::proto::node) fn park_ring_message(
        &mut self,
        now: Instant,
        sender: NodeId,
        msg: &Message,
    ) {
        let offline_member = self
            .ring
            .members
            .get(sender)
            .is_some_and(|m| m.presence != Presence::Online);
        if offline_member && matches!(msg, Message::Election { .. } | Message::Elected(_)) {
            self.ring.parked = Some((sender, now, msg.clone()));
        }
    }

    /// Member `id` is online here again: a ring message of its dropped within the round
    /// timeout is taken now (see [`Node::park_ring_message`]).
    pub(in crate::proto::node) fn take_parked_ring_message(&mut self, now: Instant, id: NodeId) {
        let timeout = self.round_timeout();
        let Some((_, _, msg)) = self
            .ring
            .parked
            .take_if(|(from, at, _)| *from == id && now.saturating_duration_since(*at) < timeout)
        else {
            return;
        };
        log_at!(debug, self, "{id} is online again: taking its ring message");
        match msg {
            Message::Election {
                term,
                candidate,
                log,
            } => self.on_election(now, term, Candidate { log, id: candidate }),
            Message::Elected(epoch) => self.on_elected(now, id, epoch),
            _ => {}
        }
    }

    /// A ring message could not reach `dead`: give it to the current successor instead.
    pub(in crate::proto::node) fn reroute_ring(
        &mut self,
        now: Instant,
        dead: SocketAddr,
        msg: Message,
    ) {
        let next = self
            .ring
            .members
            .next()
            .and_then(|id| self.ring.members.get(id));
        if next.is_some_and(|m| m.addr != dead) && self.life.takes_part() {
            self.transport.count_election_message(false);
            self.send_ring(now, msg);
        }
    }

    fn become_leader(&mut self, now: Instant, term: u64) {
        let epoch = Epoch {
            term,
            leader: self.ctx.id,
        };
        log_at!(info, self, "elected leader for term {term}");
        self.accept_leader(now, epoch);
        self.send_ring(now, Message::Elected(epoch));
        self.start_recovery(now);
    }

    /// An announcement that `epoch.leader` won round `epoch.term`, from `sender`. Taken
    /// only with the evidence a real round leaves: this node passed the winner's token
    /// on in that round (the winning token goes all the way round); and it names an
    /// online member (this node only if it won). Anything else is one member's word:
    /// ignored and not passed on.
    pub(in crate::proto::node) fn on_elected(
        &mut self,
        now: Instant,
        sender: NodeId,
        epoch: Epoch,
    ) {
        // An announcement older than what we follow, or than a round under way, is stale
        // (a rerouted token of a leader that died while announcing): it must not end the
        // round that replaces it.
        if !self.life.takes_part()
            || Some(epoch) < self.ring.epoch
            || epoch.term < self.ring.election.term()
        {
            return;
        }
        if epoch.leader == self.ctx.id {
            if Some(epoch) != self.ring.epoch {
                log_at!(
                    info,
                    self,
                    "ignoring {sender}'s announcement that this node won term {}",
                    epoch.term
                );
            }
            return;
        }
        let evidence =
            self.ring.election.carried(epoch.term, epoch.leader) || Some(epoch) == self.ring.epoch;
        if !evidence || !self.ring.members.is_online(epoch.leader) {
            return log_at!(
                info,
                self,
                "ignoring {sender}'s announcement of {} for term {}: not a round this node saw",
                epoch.leader,
                epoch.term
            );
        }
        if Some(epoch) > self.ring.epoch {
            self.accept_leader(now, epoch);
        }
        self.send_ring(now, Message::Elected(epoch));
    }
}
