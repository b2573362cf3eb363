//! The leader's side: submissions given their global sequence number (each origin's in
//! the order sent, repeats recognised) and proposed to the room; each proposal committed
//! once a majority of the room holds it (the members' acks counted per number), and the
//! commit point told to every member, one notice in flight each.

use super::*;

impl Node {
    /// Settles the messages one ack from `from` covers. The commit point moves once for
    /// all of them, not once per message: an ack covers the tens of proposals a burst
    /// puts in flight, and each would otherwise commit (and tell, and show) only itself.
    pub(in crate::proto::node) fn settle_acks(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tokens: Vec<Token>,
    ) {
        let outer = self.room.acks_in_hand.replace(false);
        for token in tokens {
            self.settle(now, from, token, Fate::Acked);
        }
        let due = std::mem::replace(&mut self.room.acks_in_hand, outer);
        if due == Some(true) {
            self.advance_commit(now);
        }
        // What the flow window held back goes as soon as the window opens.
        let held_back = self.room.leadership().is_some_and(|l| !l.lost.is_empty());
        let member = held_back
            .then(|| self.ring.members().entries().find(|m| m.addr == from))
            .flatten()
            .map(|m| m.id);
        if let Some(m) = member {
            self.resend_held_back(now, m);
        }
        self.release_paced(now);
    }

    /// What became of a reliable message of the room. An acked proposal may commit; an
    /// acked commit notice lets the next one go; a sequenced message given up is fetched
    /// by the member when it sees the gap.
    pub(in crate::proto::node) fn room_settled(
        &mut self,
        now: Instant,
        to: SocketAddr,
        t: RoomToken,
        fate: Fate,
    ) {
        // An address may also be in the table under an earlier process's id (offline).
        let member = self
            .ring
            .members()
            .online_peers()
            .find(|m| m.addr == to)
            .map(|m| m.id);
        match (t, fate) {
            (RoomToken::Proposed { term, seq }, Fate::Acked) => {
                let first = self.room.holdback.next();
                if let (Some(m), Some(l)) = (member, self.room.leadership_mut())
                    && l.term == term
                    && let Some(acks) = {
                        if let Some(owed) = l.owed.get_mut(&m) {
                            owed.remove(&seq);
                        }
                        l.acks.get_mut(&seq)
                    }
                {
                    acks.insert(m);
                    // Proposals commit in order: only an ack of the oldest one waiting can
                    // move the commit point (which then takes every later one a majority
                    // holds). In a room of n, that spares n calls per proposal.
                    if l.acks.range(first..).next().map(|(s, _)| *s) == Some(seq) {
                        match &mut self.room.acks_in_hand {
                            // Worked out once the whole ack is taken (see `settle_acks`).
                            Some(due) => *due = true,
                            None => self.advance_commit(now),
                        }
                    }
                }
                self.tell_leaving_members(now);
                self.maybe_notify_leave(now);
            }
            (RoomToken::Commit { term, upto }, fate) => {
                // Whoever is at that address now (online or not): the next notice may go.
                let at: Vec<NodeId> = self
                    .ring
                    .members()
                    .entries()
                    .filter(|m| m.addr == to)
                    .map(|m| m.id)
                    .collect();
                let Some(l) = self.room.leadership_mut().filter(|l| l.term == term) else {
                    return;
                };
                for id in &at {
                    l.telling.remove(id);
                }
                if let (Some(m), Fate::Acked) = (member, fate) {
                    let told = l.told.entry(m).or_default();
                    *told = (*told).max(upto);
                    self.tell_commit(now, m);
                    self.tell_leaving_members(now);
                    self.maybe_notify_leave(now);
                }
            }
            (RoomToken::Proposed { term, seq }, Fate::GaveUp) => {
                // Committed meanwhile or not: what it never acked is sent again.
                if let (Some(m), Some(l)) = (member, self.room.leadership_mut())
                    && l.term == term
                    && l.owed.get(&m).is_some_and(|owed| owed.contains(&seq))
                {
                    l.lost.entry(m).or_default().insert(seq);
                }
                self.maybe_notify_leave(now);
            }
            (RoomToken::Copied { term, seq }, _) => {
                // Acked, it is held; given up, it is not sent again (the member fetches it,
                // and a member that acks nothing holds the room up no longer).
                if let (Some(m), Some(l)) = (member, self.room.leadership_mut())
                    && l.term == term
                    && let Some(owed) = l.owed.get_mut(&m)
                {
                    owed.remove(&seq);
                }
                self.maybe_notify_leave(now);
            }
            (RoomToken::Proposed { .. } | RoomToken::Sequenced, _) => self.maybe_notify_leave(now),
            (RoomToken::Submit, _) => {}
        }
    }

    /// Sequences submission `s` of `origin` and proposes what that gives (or holds it
    /// while the room waits for a member: see [`Node::pace`]).
    pub(in crate::proto::node) fn sequence(&mut self, now: Instant, origin: NodeId, s: Submit) {
        let Some(mut run) = self.pace(now, origin, vec![s]) else {
            return;
        };
        let mut entries = Vec::new();
        if let Some(s) = run.pop() {
            self.accept_submission(now, origin, s, &mut entries);
        }
        self.propose_run(now, entries);
    }

    /// Gives submission `s` of `origin` its number (or holds it, or knows it for a
    /// repeat): the entries that lets the leader propose are added to `entries`, for the
    /// caller to propose together (they count as uncommitted already).
    pub(in crate::proto::node) fn accept_submission(
        &mut self,
        now: Instant,
        origin: NodeId,
        s: Submit,
        entries: &mut Vec<ChatEntry>,
    ) {
        if let Role::Confirming(_, c) = &mut self.room.role {
            // This node's own too: sequenced once a majority confirms it still leads.
            return c.held_submits.push((origin, s));
        }
        let origin_seq = s.origin_seq;
        if self.room.history.in_log(origin, origin_seq) {
            // Shown in this log, so committed: whatever a sequencer that never saw it
            // would say (numbered before this node led, out of its history since).
            return self.answer_repeat(now, origin, origin_seq);
        }
        if self.room.uncommitted() >= MAX_UNCOMMITTED {
            // The origin resubmits it; by then the room has caught up.
            return log_at!(
                debug,
                self,
                "submission {origin_seq:?} from {origin}: too much uncommitted"
            );
        }
        let Some(seqr) = self.room.sequencer_mut() else {
            return;
        };
        if seqr.settle_claim(origin, &s) == ClaimCheck::Refuted {
            // A survivor's take-over answer said another message was sent under this
            // number: made up (the origin's own word, proven, says otherwise).
            self.transport.note_forged(1);
            log_at!(
                warn,
                self,
                "submission {origin_seq:?} from {origin} is not what a take-over answer said it was; sequenced"
            );
        }
        let Some(seqr) = self.room.sequencer_mut() else {
            return;
        };
        // The name as the table knows it; the claim only for an origin not known yet.
        let accepted = match self.ring.members().get(origin) {
            Some(m) => seqr.accept(origin, &m.name, s),
            None => {
                let claimed = s.name.clone();
                seqr.accept(origin, &claimed, s)
            }
        };
        log_at!(
            debug,
            self,
            "submission {origin_seq:?} from {origin}: {accepted:?}"
        );
        match accepted {
            Accepted::Sequenced(mut sequenced) => entries.append(&mut sequenced),
            Accepted::Duplicate => self.answer_repeat(now, origin, origin_seq),
            Accepted::Held | Accepted::Overflow => {}
        }
    }

    /// A submission sequenced already came again: its origin may have missed its commit.
    /// If it is shown here, the origin is sent it again (committed), or, where this node
    /// keeps it no more, told that it is committed (see [`Message::Settled`]); if not, it
    /// is still to commit, and the origin hears of it then.
    fn answer_repeat(&mut self, now: Instant, origin: NodeId, origin_seq: OriginSeq) {
        // Only to the origin itself, online (another process may hold its address now).
        let Some(addr) = self
            .ring
            .members()
            .get(origin)
            .filter(|m| m.presence == Presence::Online)
            .map(|m| m.addr)
        else {
            return;
        };
        if origin == self.ctx.id {
            return;
        }
        match self.room.history.find_submission(origin, origin_seq) {
            Some(e) => {
                let e = ChatEntry {
                    term: COMMITTED_TERM,
                    ..e.clone()
                };
                self.send_entry(now, addr, e);
            }
            None if self.room.history.in_log(origin, origin_seq) => {
                let msg = Message::Settled { origin, origin_seq };
                self.send_reliable(now, addr, msg, Token::Control);
            }
            None => {}
        }
    }

    /// The leader proposes a sequenced message in its term: held, sent to every member
    /// (every voter in a large room, see `relay.rs`),
    /// committed once a majority holds it.
    pub(in crate::proto::node) fn propose(&mut self, now: Instant, e: ChatEntry) {
        self.propose_run(now, vec![e]);
    }

    /// [`Node::propose`] for entries sequenced together: the members are looked up and the
    /// commit point worked out once for all of them. More than one entry only for room
    /// messages (a change of the voters is proposed alone: the members after it differ).
    pub(in crate::proto::node) fn propose_run(&mut self, now: Instant, entries: Vec<ChatEntry>) {
        if entries.is_empty() {
            return;
        }
        let Some(l) = self.room.leadership() else {
            return;
        };
        let (term, linked_below) = (l.term, l.linked_below);
        let members = self.proposal_peers(&self.room.log_voters());
        let mut peers: Vec<SocketAddr> = Vec::with_capacity(members.len());
        for mut e in entries {
            // A member with a flow window's worth in flight is sent it later (see
            // `replicate_lost`), or fetches it once it is committed.
            peers.clear();
            for &(m, addr) in &members {
                let open = self.has_room_for(addr);
                let Some(l) = self.room.leadership_mut() else {
                    return;
                };
                l.owed.entry(m).or_default().insert(e.seq);
                if open {
                    peers.push(addr);
                } else {
                    l.lost.entry(m).or_default().insert(e.seq);
                }
            }
            let Some(l) = self.room.leadership_mut() else {
                return;
            };
            e.term = term;
            if l.acks.is_empty() {
                l.stuck_since = Some(now);
            }
            l.acks.insert(e.seq, BTreeSet::new());
            let token = Token::Room(RoomToken::Proposed { term, seq: e.seq });
            // Sent without its link where the member works it out (see `proof.rs`).
            let link = e.proof.link;
            if e.seq >= linked_below && self.follows_in_log(&e) {
                e.proof.link = None;
            }
            let encoded = EncodedMessage::sequenced(&e);
            e.proof.link = link;
            self.send_encoded_to(now, encoded, &token, &peers);
            let seq = e.seq;
            self.hold(e);
            self.room.note_vote(seq, term, self.ctx.id);
        }
        self.advance_commit(now);
    }

    /// Sends `e`, proposed in this leader's term, to one member; its ack counts.
    pub(in crate::proto::node) fn send_proposal(
        &mut self,
        now: Instant,
        to: SocketAddr,
        e: ChatEntry,
    ) {
        let token = Token::Room(RoomToken::Proposed {
            term: e.term,
            seq: e.seq,
        });
        self.send_reliable(now, to, Message::Sequenced(e), token);
    }

    /// CheckQuorum, made visible: a leader whose oldest proposal has waited an election
    /// timeout for a majority tells the user the room is unreachable (how many voters hold
    /// it, how many are needed) and that messages wait; once proposals commit again, it
    /// says the room goes on. Called on every heartbeat tick.
    pub(in crate::proto::node) fn check_quorum(&mut self, now: Instant) {
        // Whatever changed the count without an ack of the oldest proposal is judged
        // before the wait is.
        self.advance_commit(now);
        let Some(l) = self.room.leadership() else {
            return;
        };
        let waited = l
            .stuck_since
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or_default();
        let timeout = self.ctx.cfg.election_timeout;
        if waited >= timeout * REELECT_AFTER && self.room.is_sequencing() {
            // CheckQuorum: a leader that cannot reach a majority stops leading; a new
            // round finds the leader a majority follows (or a newer term for everyone).
            log_at!(info, self, "no majority for {waited:?}; electing again");
            self.room.step_down();
            return self.seek_election(now);
        }
        let Some(l) = self.room.leadership() else {
            return;
        };
        let stuck = waited >= timeout;
        let held = l.acks.values().next().map(|acks| self.holders(acks));
        if !self.room.set_waiting(stuck) {
            return;
        }
        match held {
            Some((majority, held)) if stuck => self.say_unreachable(held, majority),
            _ => self.say_reachable(),
        }
    }

    /// Tells the user the room waits for a majority: `held` of the voters answer,
    /// `majority` are needed.
    pub(in crate::proto::node) fn say_unreachable(&mut self, held: usize, majority: usize) {
        let voters = self.room.log_voters().len();
        self.say_unreachable_of(held, voters, majority);
    }

    /// [`Node::say_unreachable`] with `held` of `voters` voters answering.
    pub(in crate::proto::node) fn say_unreachable_of(
        &mut self,
        held: usize,
        voters: usize,
        majority: usize,
    ) {
        log_at!(
            info,
            self,
            "waiting for a majority: {held} of {voters} voters"
        );
        self.ctx.out.event(Event::Notice(format!(
            "the room is unreachable: {held} of {voters} members answer, {majority} needed; your messages wait"
        )));
    }

    /// Tells the user the room has a majority again.
    pub(in crate::proto::node) fn say_reachable(&mut self) {
        log_at!(info, self, "a majority answers again");
        self.ctx.out.event(Event::Notice(
            "the room is reachable again; messages go through".into(),
        ));
    }

    /// Commits every proposal, in order, that a majority of the room holds: shown here,
    /// and the new commit point told to every member.
    pub(in crate::proto::node) fn advance_commit(&mut self, now: Instant) {
        let first = self.room.holdback.next();
        let voters = self.room.log_voters();
        let Some(l) = self.room.leadership() else {
            return;
        };
        let term = l.term;
        let mut upto = None;
        let mut committed = Vec::new();
        // Proposals in flight together are mostly acked by the same members: their count
        // is worked out once per run of equal acks.
        let mut counted: Option<(&BTreeSet<NodeId>, (usize, usize))> = None;
        for (&seq, acks) in &l.acks {
            if seq >= first {
                let (majority, held) = match counted {
                    Some((same, count)) if same == acks => count,
                    _ => {
                        let count = self.holders_among(&voters, acks);
                        counted = Some((acks, count));
                        count
                    }
                };
                if held < majority {
                    break;
                }
                upto = Some(seq);
            }
            committed.push(seq);
        }
        let Some(l) = self.room.leadership_mut() else {
            return;
        };
        // Only a commit is progress: acks from a minority, however many, leave the oldest
        // proposal waiting (CheckQuorum must still see it stuck).
        let progress = !committed.is_empty();
        for seq in committed {
            l.acks.remove(&seq);
        }
        if l.acks.is_empty() {
            l.stuck_since = None;
        } else if progress || l.stuck_since.is_none() {
            l.stuck_since = Some(now);
        }
        let Some(upto) = upto else {
            return;
        };
        log_at!(debug, self, "committed up to #{upto} in term {term}");
        // The members that hold proposals (all of them in a small room; see `relay.rs`).
        let online: Vec<NodeId> = self
            .proposal_peers(&self.room.log_voters())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        self.room.note_commit(term, upto);
        // The first entry of this term committed: changes of the configuration may follow.
        let settled = self
            .room
            .leadership_mut()
            .is_some_and(|l| l.settles_at.take_if(|s| *s <= upto).is_some());
        self.deliver_committed(now);
        for m in online {
            self.tell_commit(now, m);
        }
        if settled {
            self.reconcile_voters(now);
        }
        self.maybe_notify_leave(now);
    }

    /// Tells `member` the commit point, unless it knows it or a notice is on its way. A
    /// member taken out of the configuration to leave is told only once a majority of
    /// the configuration after it was: it goes when told, and the others, until told,
    /// need its answer to take over (see `room_told_of_config`).
    pub(in crate::proto::node) fn tell_commit(&mut self, now: Instant, member: NodeId) {
        let (term, upto) = self.room.commit_point();
        let Some((addr, name)) = self
            .ring
            .members()
            .get(member)
            .map(|m| (m.addr, m.name.clone()))
        else {
            return;
        };
        let held_back = self.withholds_removal(&name).is_some();
        let Some(l) = self.room.leadership_mut() else {
            return;
        };
        if held_back
            || l.term != term
            || l.telling.contains(&member)
            || l.told.get(&member).is_some_and(|t| *t >= upto)
        {
            return;
        }
        l.telling.insert(member);
        let token = Token::Room(RoomToken::Commit { term, upto });
        self.send_reliable(now, addr, Message::Commit { term, upto }, token);
    }

    /// Tells every voter the commit point that does not know it yet (as far as this node
    /// leads): a leaving leader's notices given up on go again.
    pub(in crate::proto::node) fn tell_voters_commit(&mut self, now: Instant) {
        let voters = self.room.voters();
        let ids: Vec<NodeId> = self
            .ring
            .members()
            .entries()
            .filter(|m| m.id != self.ctx.id && voters.contains(&m.name))
            .map(|m| m.id)
            .collect();
        for id in ids {
            self.tell_commit(now, id);
        }
    }

    /// The number of user `name`'s removal, while this leader keeps it from that user:
    /// taken out to leave, it goes once it knows, and until a majority of the others were
    /// told (see [`Node::room_told_of_config`]) they would need its answer to take over.
    fn withholds_removal(&self, name: &str) -> Option<Seq> {
        let l = self.room.leadership()?;
        (l.leaving.contains(name)
            && !self.room.voters().contains(name)
            && !self.room_told_of_config())
        .then(|| self.room.committed_voters().1)
    }

    /// [`Node::withholds_removal`] of the member at `addr`.
    pub(in crate::proto::node) fn withheld_from(&self, addr: SocketAddr) -> Option<Seq> {
        let name = &self.ring.members().entries().find(|m| m.addr == addr)?.name;
        self.withholds_removal(name)
    }

    /// Tells the members taken out to leave their removal, once a majority of the others
    /// know it (see `tell_commit`): on their acks of commit notices and of proposals.
    fn tell_leaving_members(&mut self, now: Instant) {
        if self.room.leadership().is_none_or(|l| l.leaving.is_empty())
            || !self.room_told_of_config()
        {
            return;
        }
        for id in self.leaving_members() {
            self.tell_commit(now, id);
        }
    }

    /// The members whose users asked this leader to take them out so they can leave.
    fn leaving_members(&self) -> Vec<NodeId> {
        let Some(l) = self.room.leadership() else {
            return Vec::new();
        };
        self.ring
            .members()
            .online_peers()
            .filter(|m| l.leaving.contains(&m.name))
            .map(|m| m.id)
            .collect()
    }
}
