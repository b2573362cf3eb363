//! Pre-vote (Ongaro's thesis, section 9.6): a node that would start a round to replace a
//! leader on its own judgement first asks the voters whether they lost that leader too,
//! and starts the round (a new term) only once a majority of the voting configuration,
//! itself included, says yes. So a node cut off alone, or one that alone lost a leader
//! the others follow, never moves the room's term: after a heal it comes back as a
//! follower instead of deposing a leader the room had all along.
//!
//! A voter says yes unless it knows a leader that leads: it leads and sequences itself,
//! or it follows another leader that is online in its table (no verdict of its death
//! reached it) and has spoken in its own term since (a heartbeat naming it, a proposal, a
//! commit notice, a sync request), however long ago: in an idle room only the leader's
//! ring successor hears it often. It also says no to a round not above the term it
//! follows. Saying yes changes nothing at the voter (no term moves, no vote is spent),
//! so asking costs one request and one answer per voter. A voter that restarted and is
//! looking for the room proves its identity in its join, and that is its yes.
//!
//! Which rounds ask: a round after this node's own verdict that the leader is dead, after
//! a leader that never showed it leads, after a take-over that found no majority, and
//! after a leader's own check-quorum, and a round for a leader this node follows but holds
//! offline with nothing under way to replace it and silent for a suspicion bound (checked
//! at every heartbeat: welcomed by a leader its table held offline under a newer stamp,
//! which then died, a member never judged it gone, so nothing else asked; `sim_chaos`
//! seed 3722). A member told by the leader's watcher that the
//! leader is dead waits a suspicion bound for the watcher's round to come round the ring
//! (it joins it as any token), and asks the voters itself only if none came: the watcher
//! may have died too, or its verdict may be a late copy from before it was cut off. A
//! leader that left on its own word is replaced at once. A round that timed out asks
//! the voters before another starts: their answers name the epoch each follows, and an
//! epoch two voters name is followed at once (its announcement was lost on the way
//! here). A node asks again after a suspicion bound, then every election timeout, and
//! from the second time on tells its user once that the room is unreachable.
//!
//! A pre-vote names the epoch its sender follows. Two winners of one term, each elected
//! in a ring of its own, cannot follow each other (one leader per term): the one that
//! leads hears the other ask and starts a round above both.

use super::*;

/// Asks of the voters without a majority (or rounds timed out in a row) after which this
/// node also knocks on a known address with a join (see [`Node::knock`]).
pub(in crate::proto::node) const KNOCK_AFTER: u32 = 3;

/// A pending pre-vote: the term this node would start, and the voters that agreed.
#[derive(Debug)]
pub(in crate::proto::node) struct PreVote {
    /// The round that would start: one above every term known when asked.
    term: u64,
    /// Voters (by user name) that agreed, this node included if it votes.
    granted: BTreeSet<String>,
    /// The epoch each voter that answered (by user name) says it follows.
    named: BTreeMap<String, Epoch>,
    /// Times the voters were asked.
    asked: u32,
    /// Whether the user was told that the room is unreachable.
    told: bool,
}

impl Node {
    /// This node lost its leader on its own judgement: ask the voters whether they did too,
    /// and start a round once a majority agrees (see the module documentation).
    pub(in crate::proto::node) fn seek_election(&mut self, now: Instant) {
        if self.begin_prevote() {
            log_at!(
                debug,
                self,
                "asking the voters whether they lost the leader"
            );
            self.ask_prevotes(now);
        }
    }

    /// The leader this node follows is offline in its table (or not in it) and neither a
    /// pre-vote nor a round is under way, and it has not spoken to us itself for a suspicion
    /// bound: nothing else would replace it, since only a member going offline starts one
    /// (see `member_gone`), so ask the voters now.
    pub(in crate::proto::node) fn seek_leader_held_offline(&mut self, now: Instant) {
        if !self.life.is_member() || self.is_leader() {
            return;
        }
        let Some(leader) = self.leader() else {
            return;
        };
        // Its own word within a suspicion bound (its welcome, say) shows it lives: our
        // table is what is wrong, and its next heartbeat lets it refute our entry. (Asked
        // at once, a member welcomed back into a configuration it alone votes in elected
        // itself over its living leader: `sim_chaos` seed 88.)
        let recently = now.checked_sub(self.ctx.cfg.suspect_after());
        if self.ring.members.is_online(leader)
            || recently.is_some_and(|since| self.leader_spoke_since(since))
        {
            return;
        }
        if self.begin_prevote() {
            log_at!(
                info,
                self,
                "the leader followed is offline here and nothing replaces it; asking the voters"
            );
            self.ask_prevotes(now);
        }
    }

    /// A pre-vote starts, unless one is pending or a round is under way already; whether
    /// it did.
    fn begin_prevote(&mut self) -> bool {
        if self.ring.prevote.is_some() || self.ring.election.is_participant() {
            return false;
        }
        self.ring.prevote = Some(PreVote {
            term: 0,
            granted: BTreeSet::new(),
            named: BTreeMap::new(),
            asked: 0,
            told: false,
        });
        true
    }

    /// A member held offline came back while this node seeks a round: the room may be
    /// reachable again, so the voters are asked again now (the leader's answer, if it
    /// lives, brings it back here too).
    pub(in crate::proto::node) fn prevote_again(&mut self, now: Instant) {
        if self.ring.prevote.is_some() {
            self.ask_prevotes(now);
        }
    }

    /// Told by the leader's watcher that the leader is dead: the watcher's round should
    /// come round the ring; if none has come within a suspicion bound, this node asks the
    /// voters itself (the watcher may have died too).
    pub(in crate::proto::node) fn seek_election_later(&mut self, now: Instant) {
        if self.begin_prevote() {
            self.ctx
                .timers
                .set(Timer::PreVote, now + self.ctx.cfg.suspect_after());
        }
    }

    /// No pre-vote is needed any more: a round started or a leader was followed.
    pub(in crate::proto::node) fn end_prevote(&mut self) {
        if let Some(p) = self.ring.prevote.take() {
            self.ctx.timers.clear(Timer::PreVote);
            if p.told {
                self.say_reachable();
            }
        }
    }

    /// Asks every other voter (by the address in the member table, online or not: a node
    /// cut off may have marked them all offline) about a round above every known term.
    fn ask_prevotes(&mut self, now: Instant) {
        let voters = self.prevote_voters();
        let term = self.known_term().saturating_add(1).min(MAX_TERM);
        let me = self.ctx.cfg.name.clone();
        let Some(p) = self.ring.prevote.as_mut() else {
            return;
        };
        p.term = term;
        p.granted.clear();
        p.named.clear();
        if voters.contains(&me) {
            p.granted.insert(me.clone());
        }
        p.asked += 1;
        let wait = if p.asked == 1 {
            self.ctx.cfg.suspect_after()
        } else {
            self.ctx.cfg.election_timeout
        };
        if self.prevote_won(&voters) {
            return self.start_election(now);
        }
        let to: Vec<SocketAddr> = self
            .ring
            .members
            .entries()
            .filter(|m| m.name != me && voters.contains(&m.name))
            .map(|m| m.addr)
            .collect();
        let follows = self.ring.epoch;
        for addr in to {
            // A voter that never heard of us (our leader died before its word went round)
            // drops the question; the voucher makes us known to it.
            self.show_voucher(now, addr);
            let msg = Message::PreVote { term, follows };
            self.send_reliable_with(now, addr, msg, Token::Ring(RingToken::PreVote), 2);
        }
        self.ctx.timers.set(Timer::PreVote, now + wait);
    }

    /// Whether the voters that agreed make a majority of `voters`; if so the pre-vote ends
    /// (the caller starts the round).
    fn prevote_won(&mut self, voters: &BTreeSet<String>) -> bool {
        let Some(p) = self.ring.prevote.as_ref() else {
            return false;
        };
        let agreed = p.granted.iter().filter(|n| voters.contains(*n)).count();
        if agreed < voters.len() / 2 + 1 {
            return false;
        }
        log_at!(
            info,
            self,
            "{agreed} of {} voters lost the leader too; electing",
            voters.len()
        );
        self.end_prevote();
        true
    }

    /// The pre-vote timer fired: no majority agreed yet. Unless this node hears its leader
    /// again, tell the user once that the room is unreachable, and ask again.
    pub(in crate::proto::node) fn on_prevote_timeout(&mut self, now: Instant) {
        if self.ring.prevote.is_none() {
            return;
        }
        if self.leader_leads() || !self.life.is_member() {
            log_at!(info, self, "the leader is heard again; no round");
            return self.end_prevote();
        }
        let voters = self.prevote_voters();
        let majority = voters.len() / 2 + 1;
        let Some(p) = self.ring.prevote.as_mut() else {
            return;
        };
        let agreed = p.granted.iter().filter(|n| voters.contains(*n)).count();
        // Not at the first timeout: in an ordinary failover the round usually starts from
        // another member's side before the voters' answers are all in.
        let asked = p.asked;
        if asked >= 2 && !std::mem::replace(&mut p.told, true) {
            self.say_unreachable_of(agreed, voters.len(), majority);
        }
        if asked >= KNOCK_AFTER {
            self.knock(now, asked);
        }
        self.ask_prevotes(now);
    }

    /// Asked [`KNOCK_AFTER`] times with no majority: the room may go on under processes
    /// this node does not know (every member it knows restarted, or it was taken out of
    /// the voters while away), whose members drop its questions. Knock on one known
    /// address in turn with a join, as a restarted node does: a member there passes it on
    /// to its leader, whose own welcome, after our proof, is followed only if its term is
    /// above ours. Nothing else moves.
    pub(in crate::proto::node) fn knock(&mut self, now: Instant, asked: u32) {
        if self.resync_busy(now) {
            return;
        }
        let me = self.ctx.cfg.addr;
        let mut doors: Vec<SocketAddr> = self
            .ring
            .members
            .entries()
            .filter(|m| m.id != self.ctx.id && m.addr != me)
            .map(|m| m.addr)
            .collect();
        doors.sort();
        doors.dedup();
        if doors.is_empty() {
            return;
        }
        let door = doors[asked as usize % doors.len()];
        log_at!(
            info,
            self,
            "no majority after {asked} asks; asking {door} to take us in"
        );
        self.resync_with(now, door);
    }

    /// `sender` at `from` asks whether this node lost its leader too (see the module
    /// documentation): answered yes or no, nothing changes here.
    pub(in crate::proto::node) fn on_prevote(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        term: u64,
        follows: Option<Epoch>,
    ) {
        // A member leaving still answers while it has not said goodbye: it may still be
        // a voter, and without its yes a room that lost its leader as it left (four
        // voters, two gone) elected nobody.
        if !self.life.takes_part() {
            return;
        }
        self.settle_split_term(now, sender, follows);
        let granted = self.grants_prevote(sender, term);
        log_at!(
            debug,
            self,
            "pre-vote for round {term} from {sender}: {}",
            if granted { "yes" } else { "no" }
        );
        // With every retry: to a node that was cut off, this answer is how it learns that
        // this voter lives (see `take_back_verdict`), through whatever losses remain.
        let msg = Message::PreVoteReply {
            term,
            granted,
            follows: self.ring.epoch,
        };
        self.send_reliable(now, from, msg, Token::Ring(RingToken::PreVote));
        // A voter lost the leader: it may be one that never heard of us (see
        // `life/voucher.rs`).
        self.voucher_wanted(now, from);
    }

    /// Two rounds of one term, each won in a ring of its own (a room restarted, or split
    /// while it elected): the winner that leads a majority hears the other ask, or a
    /// member that follows the other, and starts a round above both, which takes the
    /// other in. (Neither may follow the other in their term: one leader per term; nor
    /// may a member that answered one's sync request answer the other's, see
    /// `Node::yields_term_to`. Without this such a member, its leader dead, stayed apart
    /// for good: `sim_chaos` majority seed 19419.)
    fn settle_split_term(&mut self, now: Instant, sender: NodeId, follows: Option<Epoch>) {
        let (Some(mine), Some(theirs)) = (self.ring.epoch, follows) else {
            return;
        };
        if mine.leader == self.ctx.id
            && self.room.is_sequencing()
            && theirs.term == mine.term
            && theirs.leader != self.ctx.id
            && sender != self.ctx.id
            && !self.ring.election.is_participant()
        {
            log_at!(
                info,
                self,
                "{sender} won a round of our term {} too; electing above both",
                mine.term
            );
            self.start_election(now);
        }
    }

    fn grants_prevote(&self, sender: NodeId, term: u64) -> bool {
        let Some(epoch) = self.ring.epoch else {
            return true;
        };
        if term <= epoch.term {
            return false; // the asker is behind: it hears of our leader soon
        }
        if epoch.leader == self.ctx.id {
            return !self.room.is_sequencing();
        }
        epoch.leader == sender || !self.leader_leads()
    }

    /// `sender` answered our pre-vote for round `term`, and follows `follows`.
    pub(in crate::proto::node) fn on_prevote_reply(
        &mut self,
        now: Instant,
        sender: NodeId,
        term: u64,
        granted: bool,
        follows: Option<Epoch>,
    ) {
        if self.ring.prevote.as_ref().is_none_or(|p| p.term != term) {
            return;
        }
        // An answer to what we ask now is a sign of life: a member this node declared dead
        // answers after all.
        self.take_back_verdict(now, sender, false);
        let Some(name) = self.ring.members.get(sender).map(|m| m.name.clone()) else {
            return;
        };
        // Only a voter that refused names a leader that leads for it: one that agreed
        // lost its leader too.
        if let Some(epoch) = follows.filter(|e| !granted && self.term_in_range(now, e.term))
            && let Some(p) = self.ring.prevote.as_mut()
        {
            p.named.insert(name.clone(), epoch);
            self.follow_epoch_named(now);
        }
        if granted {
            self.prevote_granted_by(now, &name);
        }
    }

    /// Two voters (the only other one, in a room of two) refused our pre-vote naming the
    /// same epoch, newer than ours, whose leader is in our table (offline there, often: a
    /// member cut from it declared it dead, which started the round): its round ended
    /// without this node hearing the announcement (a member cut from the winner, its ring
    /// predecessor, never does, and the winner may be all the others reach but for it).
    /// One leader per term, and a member follows one only after a real round or its
    /// leader's own welcome, so this node follows it too, as if announced, instead of
    /// starting a round that would depose a leader the room has. In a room of three or
    /// more one member's word moves nothing; in a room of two the other member's word is
    /// all there is, as its yes is to a pre-vote, and this node's leader checks (see
    /// `terms.rs`) undo a follow its leader does not confirm. A leader not in our table
    /// at all is asked, through one of those voters, to take this node in.
    fn follow_epoch_named(&mut self, now: Instant) {
        let voters = self.prevote_voters();
        let Some(p) = self.ring.prevote.as_ref() else {
            return;
        };
        let mut counts: BTreeMap<Epoch, usize> = BTreeMap::new();
        for (name, epoch) in &p.named {
            if voters.contains(name) && self.ring.epoch.is_none_or(|e| e.term < epoch.term) {
                *counts.entry(*epoch).or_default() += 1;
            }
        }
        let others = voters.iter().filter(|n| **n != self.ctx.cfg.name).count();
        let needed = others.clamp(1, 2);
        let Some(epoch) = counts
            .into_iter()
            .find(|(_, n)| *n >= needed)
            .map(|(e, _)| e)
            .filter(|e| e.leader != self.ctx.id)
        else {
            return;
        };
        if self.ring.members.get(epoch.leader).is_none() {
            // A leader this node never heard of (a process restarted under a new id
            // while this node followed its dead predecessor): no table here gives its
            // address, and one member's word does not add it. Ask one of the voters that
            // named it to pass our join on to its leader; the leader's own welcome, as
            // after a heal, is what this node then follows.
            let via = p
                .named
                .iter()
                .filter(|(_, e)| **e == epoch)
                .filter_map(|(name, _)| self.ring.members.by_name(name))
                .find(|m| m.presence == Presence::Online)
                .map(|m| m.addr);
            if let Some(addr) = via
                && !self.resync_busy(now)
            {
                log_at!(
                    info,
                    self,
                    "voters follow {} in term {}, unknown here; asking them to take us in",
                    epoch.leader,
                    epoch.term
                );
                self.resync_with(now, addr);
            }
            return;
        }
        log_at!(
            info,
            self,
            "voters follow {} in term {}; following it too",
            epoch.leader,
            epoch.term
        );
        self.accept_leader(now, epoch);
    }

    /// The voting configuration the pre-vote counts in: the one the log ends with (as a
    /// commit counts), or the online members if no configuration is known yet.
    fn prevote_voters(&self) -> BTreeSet<String> {
        let voters = self.room.log_voters();
        if !voters.is_empty() {
            return voters.into_owned();
        }
        self.ring
            .members
            .entries()
            .filter(|m| m.presence == Presence::Online)
            .map(|m| m.name.clone())
            .collect()
    }

    /// Whether the leader this node follows (another node) leads as far as this node
    /// knows: online in its table (no verdict of its death reached it) and it spoke in
    /// its own term since this node followed it. A voter that knows such a leader agrees
    /// to no round to replace it.
    pub(in crate::proto::node) fn leader_leads(&self) -> bool {
        self.leader()
            .filter(|l| *l != self.ctx.id)
            .is_some_and(|l| self.ring.members.is_online(l) && self.ring.leader_shown)
    }

    /// Voter `name` said yes to our pre-vote: its answer, or its proof of identity in a
    /// join while this node seeks a round (it is looking for the room, so it follows no
    /// leader; a room of two whose leader restarted comes back this way). Counted if it
    /// votes; the round starts once a majority did.
    pub(in crate::proto::node) fn prevote_granted_by(&mut self, now: Instant, name: &str) {
        let voters = self.prevote_voters();
        let Some(p) = self.ring.prevote.as_mut() else {
            return;
        };
        if !voters.contains(name) {
            return;
        }
        p.granted.insert(name.to_string());
        if self.prevote_won(&voters) {
            self.start_election(now);
        }
    }

    /// Whether this node seeks a round and `name` is a voter it would count.
    pub(in crate::proto::node) fn seeks_prevote_of(&self, name: &str) -> bool {
        self.ring.prevote.is_some() && self.prevote_voters().contains(name)
    }
}
