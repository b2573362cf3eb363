//! A take-over's answers proven before they are taken. A survivor's copies of sealed room
//! messages (proposals and committed copies alike) wait, as a member's staging does
//! (`proof.rs`), for the seal that closes their run, checked against their origin's key;
//! what fails is refused and counted (`status`: `forged`), and the answer that carried
//! it counts no more. A new leader so never shows, nor proposes again, a message one
//! member made up or altered. The take-over does not end while copies it was sent wait
//! for their proof (an unproven copy may be the only one of a committed entry); once its
//! timer finds a majority answered and nothing else to wait for, what still cannot be
//! proven (an origin nobody knows, a run whose seal nobody sent) is given up.
//!
//! Fillers and changes of the voters carry no one's seal: they are taken as they come.
//! Copies of numbers this node showed already are kept aside unproven (see
//! `Node::backfill`): they are never shown, and whoever is sent one proves it.

use super::proof::Proof;
use super::*;

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
        let e = if self.proven_first(&e) {
            match self.proof_known(now, sender, e) {
                Proof::Known(e) => e,
                Proof::Refused => return self.answer_refused(sender),
                Proof::Awaited(e) => return self.stage_answered((from, sender), id, e),
            }
        } else {
            e
        };
        self.room.count_answer(sender, id, e.seq);
        self.take_answered(now, sender, e);
    }

    /// Whether answered copy `e` must be proven before it is taken: a sealed message of
    /// a number not shown yet, in a sealed room.
    fn proven_first(&self, e: &ChatEntry) -> bool {
        self.ctx.cfg.seal_room && !e.is_filler() && e.seq >= self.room.holdback.next()
    }

    /// Keeps answered copy `e` until its run's seal proves it; it counts as arrived
    /// once kept. Kept nowhere (too many of `sender`'s wait), it does not count: the
    /// answer is short, and asked for again (see `Node::await_answers`).
    fn stage_answered(&mut self, (from, sender): (SocketAddr, NodeId), id: MsgId, e: ChatEntry) {
        let (origin, k, seq) = (e.origin, e.origin_seq, e.seq);
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
        self.room.answers_in_hand > 0 || self.room.answered.any(|s| s.entry().seq >= next)
    }

    /// The take-over ends on its timer: what still waits for proof never will (nothing
    /// it was sent closes its run) and is given up, said in the log.
    pub(super) fn give_up_unproven_answers(&mut self) {
        if self.room.answered.is_empty() {
            return;
        }
        let given_up = self.room.answered.len();
        self.room.answered.retain(|_| false);
        log_at!(
            warn,
            self,
            "{given_up} answered messages could not be proven: not taken"
        );
    }
}
