//! A take-over's answers proven before they are taken. A survivor's copies of another
//! member's sealed room messages (proposals and committed copies alike) wait, as a
//! member's staging does (`proof.rs`), for the seal that closes their run, checked against
//! their origin's key; what fails is refused and counted (`status`: `forged`), and the
//! answer that carried it counts no more. A new leader so never shows, nor proposes
//! again, a message one member made up or altered in another known member's name.
//!
//! A member's copies of its own messages are taken on its word: an origin holds (and
//! acks) its own messages before their run's seal, so a committed stretch of them may be
//! covered by no seal anywhere. They vouch for the same messages in other answers. Copies
//! under a name nobody here knows are taken on the sender's word too (the table that
//! would give the key may have gone with the old leader). Both are held as they come. The
//! take-over does not end while copies it was sent wait
//! for their proof (an unproven copy may be the only one of a committed entry); once its
//! timer finds a majority answered and nothing else to wait for, what still cannot be
//! proven (a run whose seal nobody sent) is given up.
//!
//! Fillers and changes of the voters carry no one's seal: they are taken as they come.
//! Copies of numbers this node showed already are kept aside (see `Node::backfill`):
//! never shown, sent to members that lack them (who prove them), and taken as their
//! origin's messages sent only once the origin's own submission agrees (see
//! `Sequencer::note_claimed`).

use super::proof::{Binding, Proof};
use super::*;
use crate::proto::seal;

/// Answered copies kept aside as a message some answer holds at another number too, at
/// most (past it, the later copy takes the earlier one's place in the staging).
const TWINS_MAX: usize = 4096;

/// Unsealed closing copies a new leader keeps until the next message of their chain is
/// vouched for (see `Room::closing`), at most.
const CLOSING_MAX: usize = 512;

impl Node {
    /// A survivor's answer to our sync request (`from`, `sender`, transport id `id`):
    /// during recovery it keeps the term it was held in and counts towards the answers
    /// awaited. Otherwise (it came after the recovery ended, or answers a leader's
    /// confirmation) only a committed copy is of use. Either way a sealed message is
    /// taken only once proven.
    pub(in crate::proto::node) fn on_sync_entry(
        &mut self,
        now: Instant,
        (from, sender): (SocketAddr, NodeId),
        id: MsgId,
        e: ChatEntry,
    ) {
        if !self.room.is_recovering() && e.term != COMMITTED_TERM {
            return;
        }
        self.vouch_sealed_before(&e);
        let e = if self.proven_first(sender, &e) {
            match self.proof_known(now, sender, e) {
                Proof::Known(e) => e,
                Proof::Refused => return self.answer_refused(sender),
                Proof::Awaited(e) => return self.stage_answered((from, sender), id, e),
            }
        } else {
            self.vouch_own_answer(sender, &e);
            e
        };
        self.room.count_answer(sender, id, e.seq);
        self.take_answered(now, sender, e);
    }

    /// Whether answered copy `e` from `sender` must be proven before it is taken: a
    /// sealed message of a number not shown yet, in a sealed room, not `sender`'s own.
    /// An origin holds its own messages before their run's seal (so may answer with a
    /// committed stretch no seal covers), and its word on them is its own: a copy whose
    /// name is bound to the sender's identity (this process's, or an earlier one's) is
    /// taken as it comes. So is one of an origin nobody here knows (the table that
    /// would give its key may have been lost with the old leader: giving it up could
    /// lose a committed message); it cannot claim a known member's name.
    fn proven_first(&self, sender: NodeId, e: &ChatEntry) -> bool {
        if !self.ctx.cfg.seal_room || e.is_filler() || e.seq < self.room.holdback.next() {
            return false;
        }
        let senders = self.ring.members().get(sender).map(|m| m.key);
        match self.bound_key(e.origin, &e.name) {
            Binding::Key(key) => Some(key) != senders,
            Binding::Other(_) => true,
            Binding::Unknown => false,
        }
    }

    /// An answered copy of `sender`'s own message, taken on its word (see
    /// [`Node::proven_first`]), vouches for it: another survivor's copy of it, waiting for
    /// a seal, is proven by it if it is the same (see
    /// [`Node::take_answers_proven_elsewhere`]).
    fn vouch_own_answer(&mut self, sender: NodeId, e: &ChatEntry) {
        let Some(link) = e.proof.link else { return };
        if !self.room.is_recovering()
            || e.is_filler()
            || self.room.vouched.get(e.origin, e.origin_seq).is_some()
        {
            return;
        }
        let own = match self.bound_key(e.origin, &e.name) {
            Binding::Key(key) => self
                .ring
                .members()
                .get(sender)
                .is_some_and(|m| m.key == key),
            _ => false,
        };
        if own {
            let value = seal::chain(&link, &e.written(e.origin));
            self.room
                .vouched
                .insert(e.origin, e.origin_seq, link, value);
            // Another answer's copy of the message before it, staged, is proven by it.
            self.room.answered.wake_origin(e.origin);
            self.room.answers_vouched = true;
        }
    }

    /// An answered copy of a number this node showed before (sent to close a run whose
    /// first message was sequenced again later: see `Node::closing_copies_before`): the
    /// sealed one vouches for itself if its seal checks against its origin's key, each
    /// unsealed one once the next message of its chain is vouched for (its chain value is
    /// that one's link), whatever order they come in; and so for the messages before
    /// them in other answers (they are never shown again here).
    fn vouch_sealed_before(&mut self, e: &ChatEntry) {
        let Some(link) = e.proof.link else {
            return;
        };
        if !self.ctx.cfg.seal_room
            || !self.room.is_recovering()
            || e.is_filler()
            || e.seq >= self.room.holdback.next()
            || self.room.vouched.get(e.origin, e.origin_seq).is_some()
        {
            return;
        }
        let value = seal::chain(&link, &e.written(e.origin));
        let proven = match &e.proof.seal {
            Some(seal) => match self.bound_key(e.origin, &e.name) {
                Binding::Key(key) => seal::check_run(&key, &value, seal),
                _ => false,
            },
            None => self.next_vouched_links(e.origin, e.origin_seq, &value),
        };
        if !proven {
            if e.proof.seal.is_none() && self.room.closing.len() < CLOSING_MAX {
                self.room.closing.push(e.clone());
            }
            return;
        }
        self.room
            .vouched
            .insert(e.origin, e.origin_seq, link, value);
        // Back along the chain: kept copies of the messages before it.
        let mut next = Some((e.origin, e.origin_seq));
        while let Some((origin, k)) = next.take() {
            let Some(i) = self.room.closing.iter().position(|c| {
                c.origin == origin
                    && c.origin_seq.next() == k
                    && c.proof.link.is_some_and(|l| {
                        self.next_vouched_links(
                            origin,
                            c.origin_seq,
                            &seal::chain(&l, &c.written(origin)),
                        )
                    })
            }) else {
                break;
            };
            let c = self.room.closing.swap_remove(i);
            if let Some(l) = c.proof.link {
                let v = seal::chain(&l, &c.written(origin));
                self.room.vouched.insert(origin, c.origin_seq, l, v);
                next = Some((origin, c.origin_seq));
            }
        }
        self.room.answered.wake_origin(e.origin);
        self.room.answers_vouched = true;
    }

    /// Whether the message after `(origin, k)` in its origin's chain is vouched for with
    /// `value` as its link.
    fn next_vouched_links(&self, origin: NodeId, k: OriginSeq, value: &ChainLink) -> bool {
        self.room
            .vouched
            .get(origin, k.next())
            .is_some_and(|(link, _)| link == value)
    }

    /// Keeps answered copy `e` until its run's seal proves it; it counts as arrived
    /// once kept. Kept nowhere (too many of `sender`'s wait), it does not count: the
    /// answer is short, and asked for again (see `Node::await_answers`).
    fn stage_answered(&mut self, (from, sender): (SocketAddr, NodeId), id: MsgId, e: ChatEntry) {
        let (origin, k, seq) = (e.origin, e.origin_seq, e.seq);
        if self.room.answered.holds(sender, origin, k) && self.room.answered_twins.len() < TWINS_MAX
        {
            // The same message at another number too (a leader filled its first number and
            // sequenced it again): the staging keeps one copy a message, so one waits
            // aside, taken once the other is proven. A sealed copy goes in the staging (it
            // proves itself, and so the other).
            if e.proof.seal.is_none() {
                self.room.answered_twins.push((sender, e));
                self.room.count_answer(sender, id, seq);
                return;
            }
            if let Some(other) = self.room.answered.take_one(sender, origin, k) {
                self.room.answered_twins.push((sender, other.into_entry()));
            }
        }
        if self.room.answered.is_full(sender) {
            let next = self.room.holdback.next();
            self.room.answered.retain(|s| s.entry().seq >= next);
        }
        let staged = Staged::new(e, from, id);
        if self
            .room
            .answered
            .insert(sender, origin, k, staged, &self.room.vouched)
            .is_none()
        {
            return log_at!(
                debug,
                self,
                "not keeping #{seq} of {sender}'s answer: too many wait for proof"
            );
        }
        // Proven when the outputs are drained: see `settle_waiting`.
        self.room.count_answer(sender, id, seq);
    }

    /// Takes a proven copy `e` from `sender`'s answer: held, while recovering, as one of
    /// the answers' copies; after it, only a committed copy, as any member's.
    pub(super) fn take_answered(&mut self, now: Instant, sender: NodeId, e: ChatEntry) {
        if self.room.is_recovering() {
            self.room.note_answered_copy(sender, &e);
            self.on_sequenced(now, e);
            self.maybe_finish_recovery(now);
        } else if e.term == COMMITTED_TERM {
            self.on_sequenced_from(now, sender, e);
        }
    }

    /// `sender`'s answer carried a forgery: it no longer counts towards the take-over's
    /// majority (asked again with the rest if the majority is short).
    pub(super) fn answer_refused(&mut self, sender: NodeId) {
        if let Some(rec) = self.room.recovery_mut()
            && rec.answered.remove(&sender)
        {
            log_at!(
                warn,
                self,
                "the answer from {sender} carried a forged message: it does not count"
            );
        }
    }

    /// Whether copies of the take-over's answers wait for their proof, of numbers not
    /// shown yet: the take-over waits for them (see `maybe_finish_recovery`).
    pub(super) fn answers_unproven(&self) -> bool {
        let next = self.room.holdback.next();
        self.room.answers_in_hand > 0
            || self.room.answered.any(|s| s.entry().seq >= next)
            || self.room.answered_twins.iter().any(|(_, e)| e.seq >= next)
    }

    /// Answered copies that what is vouched for now proves: staged before another
    /// answer proved their messages (an answer is acked on arrival, so nothing sends it
    /// again), or kept aside as the same message at a second number. Taken.
    pub(super) fn take_answers_proven_elsewhere(&mut self, now: Instant) {
        let room = &mut self.room;
        let vouched = &room.vouched;
        let confirms = |e: &ChatEntry| vouched.confirms(&e.written(e.origin), e.proof.link);
        let mut proven: Vec<(NodeId, ChatEntry)> = room
            .answered
            .extract(|s| confirms(s.entry()).is_some())
            .into_iter()
            .map(|(sender, s)| (sender, s.into_entry()))
            .collect();
        let (twins, rest) = std::mem::take(&mut room.answered_twins)
            .into_iter()
            .partition(|(_, e)| confirms(e).is_some());
        room.answered_twins = rest;
        proven.extend::<Vec<_>>(twins);
        // The take-over does not end before the last of them is held.
        self.room.answers_in_hand += proven.len();
        for (sender, mut e) in proven {
            e.proof.link = self
                .room
                .vouched
                .confirms(&e.written(e.origin), e.proof.link);
            self.room.answers_in_hand -= 1;
            self.take_answered(now, sender, e);
        }
    }

    /// The take-over ends on its timer: what still waits for proof never will (nothing
    /// it was sent closes its run) and is given up, said in the log.
    pub(super) fn give_up_unproven_answers(&mut self) {
        if self.room.answered.is_empty() && self.room.answered_twins.is_empty() {
            return;
        }
        let given_up = self.room.answered.len() + self.room.answered_twins.len();
        self.room.answered.retain(|_| false);
        self.room.answered_twins.clear();
        log_at!(
            warn,
            self,
            "{given_up} answered messages could not be proven: not taken"
        );
    }
}
