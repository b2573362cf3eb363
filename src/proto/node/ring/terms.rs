//! Terms a node takes from others, and the leader it follows proving that it leads.
//!
//! **Range.** A term rises by one per election round, and a round takes time: its
//! tokens go round the ring, and a failed round is started again only after a timeout.
//! So a term far above every one this node knows is no real election's: a received term
//! may exceed the highest this node knows by at most [`TERM_WINDOW`], plus one for every
//! [`TERM_STEP_EVERY`] since that term last rose (a partition of a week leaves room for
//! six million rounds on the other side, where about one every two seconds is real), and
//! never [`MAX_TERM`]. A message naming a term beyond that is dropped and counted. No
//! datagram can push a term near its limit, so a new round always finds a higher term.
//!
//! **Who.** A higher term counts only with what a real round leaves behind: in a
//! Chang-Roberts round the winner's token goes all the way round, so every member passes
//! it on before the winner can know it won. A node takes a leader of term `t` (from its
//! announcement, its sync request, its proposals or commit notices, a heartbeat naming it)
//! only if it passed that leader's token on in round `t` (`Election::carried`). Anything
//! else (a member saying it leads, or a neighbour naming a leader, of a term this node
//! saw no round of) is one member's word: the node asks the leader named to take it in
//! (a join under its own id, see `life/join.rs`), and follows it only on that leader's
//! welcome, its own answer to this node, or once two voters, asked in a pre-vote, name
//! it (see `prevote.rs`). A member that missed a round (paused, or cut
//! off during it) comes back this way; one member's say-so alone moves nobody (but in a
//! room of two, where the other member is every other voter).
//!
//! **Liveness.** Once a node follows a leader that is not itself, the leader must show it
//! leads that term: a message of the term from the leader itself. Until it has, and again
//! whenever the leader's heartbeat names an older term (a message of an older term once
//! it spoke in ours is a late retry), the node probes it every half election timeout;
//! after two such checks without a sign, it starts a new round. A room told of a leader
//! that never leads (or of a term its leader never had) elects again within an election
//! timeout, whatever term it was told.

use super::*;

/// The largest election term accepted at all, far below `u64::MAX` so that counting on
/// from any accepted term never runs out.
pub const MAX_TERM: u64 = 1 << 62;
/// How many terms above the highest this node knows a received message may name at once.
pub const TERM_WINDOW: u64 = 64;
/// For every this much time since this node's own term last rose, one more term may be
/// named (a real round takes seconds; this is twenty times faster than any).
pub const TERM_STEP_EVERY: Duration = Duration::from_millis(100);
/// Checks (each half an election timeout apart) without a sign from the leader after
/// which a follower starts a new round.
const LEADER_CHECKS: u8 = 2;

/// The highest term this node knows, and since when.
#[derive(Debug, Clone, Copy)]
pub(in crate::proto::node) struct TermBound {
    known: u64,
    since: Instant,
}

impl TermBound {
    /// Nothing known but term 0, from `now`.
    pub(in crate::proto::node) fn new(now: Instant) -> Self {
        TermBound {
            known: 0,
            since: now,
        }
    }

    /// This node now knows `term` (its followed epoch's or its election's).
    fn note(&mut self, term: u64, now: Instant) {
        if term > self.known {
            self.known = term;
            self.since = now;
        }
    }

    /// The highest term a received message may name at `now`.
    pub(in crate::proto::node) fn reach(&self, now: Instant) -> u64 {
        let steps = now.saturating_duration_since(self.since).as_millis()
            / TERM_STEP_EVERY.as_millis().max(1);
        let steps = u64::try_from(steps).unwrap_or(u64::MAX);
        self.known
            .saturating_add(TERM_WINDOW)
            .saturating_add(steps)
            .min(MAX_TERM)
    }
}

impl Node {
    /// The highest term this node knows: the one it follows, or a round it took part in.
    pub(in crate::proto::node) fn known_term(&self) -> u64 {
        self.ring
            .epoch
            .map_or(0, |e| e.term)
            .max(self.ring.election.term())
    }

    /// Records the terms this node knows now; called before every received packet, so
    /// each message is judged against what the ones before it taught.
    pub(in crate::proto::node) fn note_terms(&mut self, now: Instant) {
        let known = self.known_term();
        self.ring.terms.note(known, now);
    }

    /// Whether a received message may name `term` (see the module documentation).
    pub(in crate::proto::node) fn term_in_range(&self, now: Instant, term: u64) -> bool {
        term <= self.known_term() || term <= self.ring.terms.reach(now)
    }

    /// This node follows a new epoch: unless it leads it, its leader must show that it
    /// does (see the module documentation).
    pub(in crate::proto::node) fn watch_leader(&mut self, now: Instant) {
        self.ring.leader_shown = false;
        self.ring.leader_checks = 0;
        match self.ring.epoch {
            Some(e) if e.leader != self.ctx.id => self
                .ctx
                .timers
                .set(Timer::LeaderCheck, now + self.ctx.cfg.election_timeout / 2),
            _ => self.ctx.timers.clear(Timer::LeaderCheck),
        }
    }

    /// The leader followed spoke in its own term: it leads it.
    pub(in crate::proto::node) fn leader_shown(&mut self) {
        self.ring.leader_shown = true;
        self.ring.leader_checks = 0;
        self.ctx.timers.clear(Timer::LeaderCheck);
    }

    /// The leader followed spoke in its term here itself (not a neighbour's word of it).
    pub(in crate::proto::node) fn leader_spoke_itself(&mut self, now: Instant) {
        self.ring.leader_spoke_at = Some(now);
        self.ring.leader_spoke_in = self.ring.epoch;
        self.leader_shown();
    }

    /// Whether the leader followed spoke in its term here since `since`.
    pub(in crate::proto::node) fn leader_spoke_since(&self, since: Instant) -> bool {
        self.ring.leader_spoke_at.is_some_and(|at| at >= since)
    }

    /// `sender` spoke in `term` (a heartbeat's epoch, a proposal, a commit notice, a sync
    /// request, a welcome): if it is the leader followed, that shows it leads our term,
    /// or, of an older term, that it may not know of ours (a term it never had, if only a
    /// neighbour named it leader, or one it left): it is probed until it shows it. A
    /// `retried` word (a message the reliable layer may send again, with the term it had
    /// when first sent) of an older term, once the leader itself spoke in ours, is a late
    /// copy and changes nothing: else every retry of a datagram it sent before the round
    /// would leave it unshown, and its voters would agree to a member cut from it
    /// starting round after round. A heartbeat names the sender's epoch when sent.
    pub(in crate::proto::node) fn leader_spoke(
        &mut self,
        now: Instant,
        sender: NodeId,
        term: u64,
        retried: bool,
    ) {
        let Some(epoch) = self.ring.epoch.filter(|e| e.leader == sender) else {
            return;
        };
        if sender == self.ctx.id {
            return;
        }
        if term == epoch.term {
            self.leader_spoke_itself(now);
        } else if term < epoch.term
            && self.ring.leader_shown
            && !(retried && self.ring.leader_spoke_in == Some(epoch))
        {
            log_at!(
                debug,
                self,
                "leader {sender} spoke of term {term}, we follow {}; checking",
                epoch.term
            );
            self.ring.leader_shown = false;
            self.ctx
                .timers
                .set_if_unset(Timer::LeaderCheck, now + self.ctx.cfg.election_timeout / 2);
        }
    }

    /// The leader check fired: a leader that has not shown it leads our term is probed
    /// (its answer is a heartbeat naming its epoch), and after [`LEADER_CHECKS`] checks
    /// without a sign, a new round starts.
    pub(in crate::proto::node) fn on_leader_check(&mut self, now: Instant) {
        let Some(epoch) = self.ring.epoch else {
            return;
        };
        if self.ring.leader_shown || epoch.leader == self.ctx.id || !self.life.is_member() {
            return;
        }
        self.ring.leader_checks += 1;
        if self.ring.leader_checks >= LEADER_CHECKS {
            if !self.ring.election.is_participant() {
                log_at!(
                    info,
                    self,
                    "leader {} never showed it leads term {}; electing",
                    epoch.leader,
                    epoch.term
                );
                self.seek_election(now);
            }
            return;
        }
        if let Some(addr) = self.ring.members.get(epoch.leader).map(|m| m.addr) {
            self.send_heartbeat(addr, true);
        }
        self.ctx
            .timers
            .set(Timer::LeaderCheck, now + self.ctx.cfg.election_timeout / 2);
    }
}
