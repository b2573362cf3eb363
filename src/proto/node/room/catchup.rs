//! Catch-up: a member behind the room (back from `dereg`, a partition or a pause, or with
//! a gap in what it was sent) asks for what it lacks; whoever it asks answers from its
//! in-memory history, or from its database through the driver (see `serve.rs`); the
//! leader says plainly what nobody keeps any more, and the member skips it and says so.
//!
//! # The window
//!
//! A member asks for [`FETCH_CHUNK`] numbers in one fetch, and asks again while what it
//! asked for stays within [`CATCH_UP_WINDOW`] numbers of its delivery point: each chunk
//! shown opens the window for the next, so answers flow without a round trip between
//! chunks, and the member never holds more than the window (well inside its hold-back
//! bound, [`MAX_HOLDBACK`]). Every entry of an answer is a reliable message of its own;
//! the transport packs them into full datagrams and resends what is lost. When nothing is
//! shown for the gap-repair interval, the member asks again for what it still lacks, of
//! the next member in turn (the leader first).

use super::*;
use crate::proto::disk::ReadRange;

/// Numbers a member asks for in one fetch; a fetch is answered with at most this many.
pub(in crate::proto::node) const FETCH_CHUNK: u64 = 1024;

/// How far past its delivery point (or the first number kept, after a skip) a member
/// catching up asks for room messages.
pub(in crate::proto::node) const CATCH_UP_WINDOW: u64 = 4 * FETCH_CHUNK;

const _: () = assert!(CATCH_UP_WINDOW + FETCH_CHUNK < MAX_HOLDBACK as u64);

impl Room {
    /// Welcomed into a room that goes on from `next_seq`, keeps history from `oldest`
    /// and has committed everything before `pending_from`: a newcomer is shown the last
    /// `join_history` messages as history, a member back from `dereg` (or a restart)
    /// everything since it left (as far as the leader still keeps). What a returning
    /// member showed is committed and stays: a leader behind it learns it when it asks
    /// what the members hold. Returns whether we are behind the room, and how many
    /// messages a returning member skips because the leader keeps them no more.
    ///
    /// A newcomer holds the log from `pending_from` at the latest, even where that is
    /// before what it is shown: a leader (this one, or the next, re-proposing what this
    /// one left uncommitted) may ask it to ack any proposal from there on, and an ack is
    /// the word of a copy held. Everything before its start is committed, so no ack of
    /// a number it does not hold can make a majority of what a majority does not hold.
    pub(in crate::proto::node) fn welcomed(
        &mut self,
        join_history: usize,
        was_member: bool,
        next_seq: Seq,
        oldest: Seq,
        pending_from: Seq,
    ) -> (bool, u64) {
        // No leader has more than its hold-back bound waiting for a majority: a welcome
        // that says so is held to that.
        let pending_from = pending_from.max(Seq(next_seq.0.saturating_sub(MAX_HOLDBACK as u64)));
        let (from, shown_from) = if was_member {
            (self.holdback.next(), Seq(0))
        } else {
            let shown = Seq(next_seq.0.saturating_sub(join_history as u64).max(1))
                .max(oldest)
                .min(next_seq);
            (shown.min(pending_from).max(Seq(1)), shown)
        };
        // A member back after the leader stopped keeping what it missed skips to there.
        let (from, skipped) = if was_member && from < oldest && oldest <= next_seq {
            (oldest, oldest.0 - from.0)
        } else {
            (from, 0)
        };
        if was_member {
            // What it holds from there on stays: copies it acked, which the leader counts
            // again once it is back (and does not send again).
            self.holdback.skip_to(from);
        } else if from != self.holdback.next() {
            self.holdback = HoldBackQueue::new(from);
            self.history.forget_from(from);
        }
        if !was_member {
            self.first_seq = next_seq;
        }
        self.shown_from = shown_from;
        self.history_until = next_seq.max(from);
        self.welcome_committed =
            Seq(pending_from.0.saturating_sub(1)).min(Seq(next_seq.0.saturating_sub(1)));
        let behind = from < next_seq;
        if behind {
            self.known_high = self.known_high.max(Seq(next_seq.0 - 1));
        }
        (behind, skipped)
    }

    /// A catch-up asks `target` from now on (none: nobody). The members asked until now
    /// (the last [`FETCHES_REMEMBERED`]) stay taken at their word for what they were
    /// asked; a pause in the fetching (nobody asked) forgets them.
    pub(in crate::proto::node) fn fetch_of(&mut self, target: Option<SocketAddr>) {
        if self.fetch_from == target {
            return;
        }
        match self.fetch_from {
            Some(before) => {
                let upto = self.fetch_upto;
                self.fetch_before.retain(|(a, _)| *a != before);
                self.fetch_before.push_front((before, upto));
                self.fetch_before.truncate(FETCHES_REMEMBERED);
            }
            None => self.fetch_before.clear(),
        }
        self.fetch_from = target;
    }

    /// No catch-up is under way any more: nobody is taken at its word for a number.
    pub(in crate::proto::node) fn stop_fetch(&mut self) {
        self.fetch_from = None;
        self.fetch_before.clear();
        self.asked_past_leader.clear();
    }

    /// The highest number member `addr` was asked for in the catch-up under way, if it
    /// was asked (now or among the last members asked).
    pub(in crate::proto::node) fn asked_of(&self, addr: SocketAddr) -> Option<Seq> {
        self.fetch_from?;
        if self.fetch_from == Some(addr) {
            return Some(self.fetch_upto);
        }
        self.fetch_before
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, upto)| *upto)
    }

    /// The next read of the database for the driver.
    pub(in crate::proto::node) fn next_read(&mut self) -> Option<ReadRange> {
        self.reads.pop_front()
    }
}

impl Node {
    /// What this node still lacks: a committed number it holds no showable copy of, a gap
    /// before a held message, or messages neighbours have delivered that it has not seen.
    pub(in crate::proto::node) fn wanted(&self) -> Option<(Seq, Seq)> {
        let next = self.room.holdback.next();
        let (_, commit) = self.room.commit_point();
        let stale = next <= commit
            && !self
                .room
                .holdback
                .get(next)
                .is_some_and(|e| self.room.committed(e));
        if stale && !self.is_leader() {
            return Some((next, commit));
        }
        self.room.holdback.missing().or_else(|| {
            (self.room.known_high >= self.room.holdback.next())
                .then(|| (self.room.holdback.next(), self.room.known_high))
        })
    }

    /// The gap timer fired: nothing was shown for a while and something is missing. Ask
    /// for it again, from its first missing number, of the leader first, then of the other
    /// members in turn: a new leader may have joined after the messages we miss. While
    /// each answer moves us on, the same member is asked.
    pub(in crate::proto::node) fn repair_gap(&mut self, now: Instant) {
        if !self.in_ring() {
            return;
        }
        let Some((from, _)) = self.wanted() else {
            self.room.stop_fetch();
            return;
        };
        let looked = self.room.fetch_mark > Seq(0);
        let progressed = self.room.holdback.next() > self.room.fetch_mark;
        self.room.fetch_mark = self.room.holdback.next();
        if looked && progressed && self.fed_by_relay() && !self.is_catching_up() {
            // A learner its relay still feeds (it was shown something since the last
            // look) is only behind by the relay's delay: look again later.
            self.ctx
                .timers
                .set(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after);
            return;
        }
        if !progressed || self.room.fetch_attempts == 0 {
            self.room.fetch_attempts += 1;
        }
        let peers: Vec<SocketAddr> = self
            .ring
            .members()
            .online_peers()
            .filter(|m| Some(m.id) != self.leader())
            .map(|m| m.addr)
            .collect();
        let target = match self.leader_addr().filter(|_| !self.is_leader()) {
            Some(leader) if self.room.fetch_attempts % 2 == 1 || peers.is_empty() => Some(leader),
            _ if !peers.is_empty() => {
                Some(peers[(self.room.fetch_attempts / 2) as usize % peers.len()])
            }
            _ => None,
        };
        self.fetch_from_now(now, target, from);
    }

    /// Starts a fetch of what we lack, from `from` on, of `target` (none: nobody asked).
    fn fetch_from_now(&mut self, now: Instant, target: Option<SocketAddr>, from: Seq) {
        self.room.fetch_of(target);
        self.room.fetch_upto = Seq(from.0.saturating_sub(1));
        self.room.fetch_seen = self.room.holdback.next();
        self.top_up_fetch(now);
        self.ctx
            .timers
            .set(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after * 2);
    }

    /// A new leader behind what a member showed fetches it from that member (at `addr`)
    /// before it takes over (see `recovery.rs`).
    pub(in crate::proto::node) fn catch_up_from(&mut self, now: Instant, addr: SocketAddr) {
        self.room.fetch_of(Some(addr));
        self.room.fetch_upto = Seq(self.room.holdback.next().0.saturating_sub(1));
        self.room.fetch_seen = self.room.holdback.next();
        self.top_up_fetch(now);
        self.ctx
            .timers
            .set(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after * 2);
    }

    /// While catching up and something is still missing: a number shown puts the next
    /// repair off (nothing is stalled), and the window takes more fetches.
    pub(in crate::proto::node) fn keep_catching_up(&mut self, now: Instant) {
        let next = self.room.holdback.next();
        if next > self.room.fetch_seen {
            self.room.fetch_seen = next;
            self.ctx
                .timers
                .set(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after);
        } else {
            self.ctx
                .timers
                .set_if_unset(Timer::GapRepair, now + self.ctx.cfg.gap_repair_after);
        }
        self.top_up_fetch(now);
    }

    /// Whether a catch-up is under way (a repair asked someone, and something is missing).
    pub(in crate::proto::node) fn is_catching_up(&self) -> bool {
        self.room.fetch_from.is_some()
    }

    /// Asks for more of what is missing, a chunk per fetch, while the window has room for
    /// a whole chunk (or for the rest of what is missing).
    fn top_up_fetch(&mut self, now: Instant) {
        let Some(to_addr) = self.room.fetch_from else {
            return;
        };
        let Some((_, end)) = self.wanted() else {
            return;
        };
        let next = self.room.holdback.next();
        let base = self.room.skip_to.map_or(next, |s| s.max(next));
        let limit = Seq(base.0.saturating_add(CATCH_UP_WINDOW - 1)).min(end);
        while self.room.fetch_upto < limit {
            let start = base.max(self.room.fetch_upto.next());
            if start > limit {
                return;
            }
            let stop = Seq(start.0.saturating_add(FETCH_CHUNK - 1)).min(limit);
            if stop < end && stop.0 - start.0 + 1 < FETCH_CHUNK {
                return;
            }
            log_at!(debug, self, "fetching {start}..={stop} from {to_addr}");
            let msg = Message::Fetch {
                from: start,
                to: stop,
            };
            self.send_reliable(now, to_addr, msg, Token::Control);
            self.room.fetch_upto = stop;
        }
    }

    /// The leader no longer keeps room messages `from..=to`: skip the ones we lack once
    /// the first one it does keep (`to + 1`, sent with the notice) is here, and tell the
    /// user how many. A skip is a jump of the delivery point: it waits for that entry, so
    /// a notice alone (a forged or mutated one, naming any number) moves nothing.
    pub(in crate::proto::node) fn on_forgotten(
        &mut self,
        now: Instant,
        sender: NodeId,
        from: Seq,
        to: Seq,
    ) {
        let next = self.room.holdback.next();
        // A skip waiting for its first kept number, which is now not kept either (it was
        // lost on the way, and the room said more since): what we lack runs on from our
        // delivery point, as the word that set the skip said.
        let from = match self.room.skip_to {
            Some(first) if (from..=to).contains(&first) => from.min(next),
            _ => from,
        };
        if next < from || next > to || to.0 == u64::MAX {
            return;
        }
        if self.room.is_recovering() {
            return self.forgotten_while_recovering(now, sender, to);
        }
        if self.leader() != Some(sender) {
            // A member we fetch from does not keep it: the leader (which reads its
            // database, or says what nobody keeps) is asked instead.
            return self.fetch_from_leader_instead(now, sender);
        }
        if let Some(peer) = self.not_asked_past_leader(to) {
            // The leader keeps nothing older (it may have joined after it), but a member
            // that was in the room before may: each online member is asked once before
            // what we lack is taken as kept by nobody. What it cannot send (it does not
            // keep it either, or it is the leader's to vouch for) brings us back here.
            log_at!(
                debug,
                self,
                "the leader keeps nothing before #{}; asking {peer} first",
                to.next()
            );
            self.room.asked_past_leader.push(peer);
            return self.catch_up_from(now, peer);
        }
        self.skip_through(now, to);
    }

    /// An online member other than the leader not asked yet for what we lack up to `to`
    /// (in this catch-up, or since the leader said it keeps nothing older).
    fn not_asked_past_leader(&self, to: Seq) -> Option<SocketAddr> {
        let leader = self.leader();
        self.ring
            .members()
            .online_peers()
            .filter(|m| Some(m.id) != leader)
            .map(|m| m.addr)
            .find(|a| {
                !self.room.asked_past_leader.contains(a)
                    && self.room.asked_of(*a).is_none_or(|upto| upto < to)
            })
    }

    /// What we fetch from `sender`, a member that is not the leader, cannot come from it
    /// (it does not keep it, or it is the leader's to vouch for): if the leader is online
    /// here, the fetch moves to it. If not, the fetch stops here: what we lack is asked
    /// for again at the next repair, and of the leader once it is back (see
    /// [`Node::leader_back`]).
    pub(in crate::proto::node) fn fetch_from_leader_instead(
        &mut self,
        now: Instant,
        sender: NodeId,
    ) {
        let from_sender = self.ring.members().get(sender).map(|m| m.addr);
        if from_sender.is_none() || self.room.fetch_from != from_sender {
            return;
        }
        match self.leader_addr().filter(|_| !self.is_leader()) {
            Some(leader) => self.catch_up_from(now, leader),
            None => {
                self.room.awaits_leader = true;
                self.room.stop_fetch();
                self.schedule_gap_repair(now);
            }
        }
    }

    /// The leader is online here again: if a member we asked while it was held offline
    /// had something only the leader vouches for, what we lack is asked of the leader,
    /// from our delivery point.
    pub(in crate::proto::node) fn leader_back(&mut self, now: Instant) {
        let Some(leader) = self.leader_addr().filter(|_| !self.is_leader()) else {
            return;
        };
        if std::mem::take(&mut self.room.awaits_leader) && self.wanted().is_some() {
            self.catch_up_from(now, leader);
        }
    }

    /// Skips what we lack up to `to` once the first number after it is here (sent with
    /// the notice, with a chunk after it, which is not asked for again).
    pub(super) fn skip_through(&mut self, now: Instant, to: Seq) {
        self.room.skip_to = Some(to.next());
        self.room.fetch_upto = self
            .room
            .fetch_upto
            .max(Seq(to.0.saturating_add(FETCH_CHUNK)));
        self.skip_if_anchored(now);
        self.schedule_gap_repair(now);
    }

    /// Skips to the first number the leader still keeps, if its entry is here.
    fn skip_if_anchored(&mut self, now: Instant) {
        let next = self.room.holdback.next();
        let Some(first) = self.room.skip_to else {
            return;
        };
        if first <= next {
            self.room.skip_to = None;
            return;
        }
        if self.room.holdback.get(first).is_none() {
            return;
        }
        self.skip_unkept(now, first);
    }

    /// Skips what we lack before `floor` (committed numbers nobody we asked could send:
    /// a member's leader keeps nothing older, or a new leader's survivors keep nothing
    /// older), telling the user, and shows what follows. Committed copies held before
    /// it (sent by a member that keeps more than the leader) are shown, not skipped: only
    /// the runs nobody sent are. An uncommitted copy there is not the text the room
    /// showed, and is skipped with them. A filler in place of a skipped number would give
    /// it two entries.
    pub(in crate::proto::node) fn skip_unkept(&mut self, now: Instant, floor: Seq) {
        self.deliver_committed(now);
        while self.room.holdback.next() < floor {
            let next = self.room.holdback.next();
            let first = self
                .room
                .holdback
                .held_from(next)
                .take_while(|e| e.seq < floor)
                .find(|e| self.room.committed(e))
                .map_or(floor, |e| e.seq);
            if first > next {
                self.skip_to_kept(first);
            }
            self.deliver_committed(now);
            if self.room.holdback.next() == next {
                break; // nothing moved: never loop
            }
        }
    }

    /// Moves the delivery point on to `first`, the first number the leader keeps, and
    /// tells the user how many messages before it are no longer kept by anyone.
    fn skip_to_kept(&mut self, first: Seq) {
        let next = self.room.holdback.next();
        self.room.skip_to = None;
        self.room.asked_past_leader.clear();
        if first <= next {
            return;
        }
        log_at!(
            info,
            self,
            "#{next}..#{first} are no longer kept by anyone; skipping them"
        );
        self.room.holdback.skip_to(first);
        self.note_delivery_point();
        self.say_skipped(first.0 - next.0);
    }

    /// Tells the user `count` room messages are no longer kept by anyone.
    pub(in crate::proto::node) fn say_skipped(&mut self, count: u64) {
        self.ctx.out.event(Event::Notice(format!(
            "{count} older messages are no longer kept by anyone"
        )));
    }
}

#[cfg(test)]
mod tests;
