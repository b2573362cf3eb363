//! The room at its slowest member's pace: the leader sends each member again what it owes
//! (what it never acked: held back by its flow window, given up on, or proposed while it
//! was away), as proposals while uncommitted and as committed copies after, and numbers
//! nothing new while a member is behind (its flow window full, or an old number unacked).

use super::*;

impl Node {
    /// Whether a member this leader sends proposals to has a full flow window (see
    /// `transport::FLOW_WINDOW`), or has not acked a number [`Node::pace_span`] or more
    /// before the next one: past that it could not hold what it is sent (see
    /// [`MAX_HOLDBACK`]), and the leader may keep the number no more.
    fn a_member_is_behind(&self) -> bool {
        let Some(l) = self.room.leadership() else {
            return false;
        };
        let next = l.sequencer.next_seq();
        let span = self.pace_span();
        self.proposal_peers(&self.room.log_voters())
            .iter()
            .any(|(m, addr)| {
                !self.has_room_for(*addr)
                    || l.owed
                        .get(m)
                        .and_then(|owed| owed.first())
                        .is_some_and(|oldest| next.0 >= oldest.0.saturating_add(span))
            })
    }

    /// How far past the oldest number a member has not acked the leader numbers new
    /// messages: [`MAX_UNCOMMITTED`] (a member holds what it is sent, runs of submissions
    /// a sequencer releases at once included), and no more than the leader's history keeps
    /// (what it may have to send again), though at least a flow window.
    pub(in crate::proto::node) fn pace_span(&self) -> u64 {
        let kept = self.ctx.cfg.history_limit.max(transport::FLOW_WINDOW) as u64;
        MAX_UNCOMMITTED.min(kept)
    }

    /// The room goes at the pace of its slowest member rather than leave it behind (past
    /// what anyone keeps, it would skip messages): while a member the leader sends
    /// proposals to is behind (see [`Node::a_member_is_behind`]), or runs wait already,
    /// `run` waits too, in order; past [`MAX_PACED`] it is dropped (counted; its origin
    /// submits it again). Returns it when it may be sequenced now. A member that stops answering holds the
    /// room up until it is found gone.
    pub(in crate::proto::node) fn pace(
        &mut self,
        now: Instant,
        origin: NodeId,
        run: Vec<Submit>,
    ) -> Option<Vec<Submit>> {
        let waiting = match &self.room.role {
            Role::Leading(l) => !l.paced.is_empty(),
            _ => return Some(run),
        };
        if !waiting && !self.a_member_is_behind() {
            return Some(run);
        }
        let Some(l) = self.room.leadership_mut() else {
            return Some(run);
        };
        if l.paced_len + run.len() > MAX_PACED {
            self.note_limited(now, "submissions dropped while a slow member catches up");
            return None;
        }
        l.paced_len += run.len();
        l.paced.push_back((origin, run));
        None
    }

    /// Sequences the runs that waited for a member (see [`Node::pace`]), while no member
    /// is behind. Called as acks come and on heartbeats.
    pub(in crate::proto::node) fn release_paced(&mut self, now: Instant) {
        while self.room.leadership().is_some_and(|l| !l.paced.is_empty())
            && !self.a_member_is_behind()
        {
            let Some(l) = self.room.leadership_mut() else {
                return;
            };
            let Some((origin, run)) = l.paced.pop_front() else {
                return;
            };
            l.paced_len -= run.len();
            self.sequence_run_now(now, origin, run);
        }
    }

    /// Sends again, within each one's flow window, what members never acked (they were
    /// cut off or paused, or their flow window was full): a proposal still uncommitted, a
    /// committed copy of one that committed meanwhile; the rest at the next ack or
    /// heartbeat.
    pub(in crate::proto::node) fn replicate_lost(&mut self, now: Instant) {
        let members: Vec<NodeId> = match self.room.leadership() {
            Some(l) if !l.lost.is_empty() => l.lost.keys().copied().collect(),
            _ => return,
        };
        for m in members {
            self.resend_held_back(now, m);
        }
    }

    /// [`Node::replicate_lost`] for member `m` alone.
    pub(in crate::proto::node) fn resend_held_back(&mut self, now: Instant, m: NodeId) {
        let addr = self
            .ring
            .members()
            .get(m)
            .filter(|x| x.presence == Presence::Online)
            .map(|x| x.addr);
        let room = addr.map_or(0, |a| self.flow_room(a));
        let Some(l) = self.room.leadership_mut() else {
            return;
        };
        let Some(mut seqs) = l.lost.remove(&m) else {
            return;
        };
        // Not online: nothing to send (it is sent what it lacks when it is back).
        let Some(addr) = addr else {
            return;
        };
        let term = l.term;
        let (_, commit) = self.room.commit_point();
        let mut resend: Vec<(ChatEntry, Seq)> = Vec::new();
        let mut unsendable = Vec::new();
        while resend.len() < room {
            let Some(seq) = seqs.pop_first() else {
                break;
            };
            let Some(l) = self.room.leadership() else {
                return;
            };
            if !l.owed.get(&m).is_some_and(|owed| owed.contains(&seq)) {
                continue;
            }
            let entry = if l.acks.contains_key(&seq) {
                self.room
                    .holdback
                    .get(seq)
                    .filter(|e| e.term == term)
                    .cloned()
            } else if seq <= commit {
                self.room
                    .holdback
                    .get(seq)
                    .or_else(|| self.room.history.range(seq, seq).next())
                    .map(|e| ChatEntry {
                        term: COMMITTED_TERM,
                        ..e.clone()
                    })
            } else {
                None
            };
            match entry {
                Some(e) => resend.push((e, seq)),
                // Kept no more: the member fetches it (and hears who keeps it, if anyone).
                None => unsendable.push(seq),
            }
        }
        if let Some(l) = self.room.leadership_mut() {
            if let Some(owed) = l.owed.get_mut(&m) {
                for seq in unsendable {
                    owed.remove(&seq);
                }
            }
            if !seqs.is_empty() {
                l.lost.insert(m, seqs);
            }
        }
        for (e, seq) in resend {
            let token = if e.term == COMMITTED_TERM {
                RoomToken::Copied { term, seq }
            } else {
                RoomToken::Proposed { term, seq }
            };
            self.send_reliable(now, addr, Message::Sequenced(e), Token::Room(token));
        }
    }

    /// Member `id` is back online (it was cut off, or paused): the leader sends it what
    /// it proposed and has not committed yet, and the commit point.
    pub(in crate::proto::node) fn member_back(&mut self, now: Instant, id: NodeId) {
        let Some(addr) = self.ring.members().get(id).map(|m| m.addr) else {
            return;
        };
        if !self.gets_proposals(id) {
            // A learner of a large room: its relay feeds it, and what it missed it
            // fetches (see `relay.rs`).
            return;
        }
        let Some(l) = self.room.leadership() else {
            return;
        };
        let term = l.term;
        let pending: Vec<ChatEntry> = l
            .acks
            .iter()
            .filter(|(_, acks)| !acks.contains(&id))
            .filter_map(|(seq, _)| self.room.holdback.get(*seq))
            .filter(|e| e.term == term)
            .take(MAX_CATCH_UP)
            .cloned()
            .collect();
        // What it owes from before it went is what it is sent now (it fetches the rest).
        if let Some(l) = self.room.leadership_mut() {
            l.lost.remove(&id);
            l.owed.insert(id, pending.iter().map(|e| e.seq).collect());
        }
        for e in pending {
            self.send_proposal(now, addr, e);
        }
        // Its acks from before it was held offline count again: what they complete commits
        // now (no ack of the oldest proposal may come again: it acked that one already).
        self.advance_commit(now);
        self.tell_commit(now, id);
    }
}
