//! Own room messages sealed (see `proto::seal`): typed ones as one run when the outputs
//! are drained, an open run closed when nothing follows it in time, and what is
//! submitted again closed by a seal. The other side, checking others' runs, is `proof.rs`.

use super::proof::RUN_MAX;
use super::*;
use crate::proto::batch::HOLD_LIMIT;
use crate::proto::seal;

impl Node {
    /// Seals the own room messages typed since the outputs were last drained (one run,
    /// one signature per [`RUN_MAX`]) and hands them to the leader. Called first thing
    /// when the driver drains the outputs, so a burst of typed messages costs one
    /// signature, not one each.
    ///
    /// A busy sender's bursts (a paste, a pipe, a bot answering what it was shown) often
    /// wake the node with their first line alone. So a message typed alone less than
    /// [`HOLD_LIMIT`] after the one before goes to the leader at once but without its
    /// seal, and opens a run: what is typed next, within [`HOLD_LIMIT`], goes sealed at
    /// once as the rest of that run (the leader could prove nothing of it before that
    /// seal anyway), and that one seal proves all of it; if nothing is, the first message
    /// is sent again with its seal when the time is up (the leader keeps the later copy).
    /// A message typed after a quiet spell is sealed at once. One signature (and one check
    /// at every member) then covers a burst, as Nagle's rule makes one datagram of it.
    pub(in crate::proto::node) fn flush_own(&mut self) {
        self.seal_own(true);
    }

    /// Seals and sends everything typed at once, a run left open included (before a
    /// leave: nothing may wait for a later drain).
    pub(in crate::proto::node) fn flush_own_now(&mut self) {
        self.seal_own(false);
    }

    /// [`Node::flush_own`]; with `may_hold` false, nothing is left open.
    fn seal_own(&mut self, may_hold: bool) {
        let now = self.ctx.now;
        let leading = self.is_leader();
        // A leader sequences its own messages at once: nothing of its stays open (one
        // left from before it led is sealed by the resubmit timer).
        let open = self.room.open_run.take().filter(|_| !leading);
        if let Some(o) = open {
            if self.room.unsealed.is_empty() {
                if may_hold && now < o.since + HOLD_LIMIT {
                    self.room.open_run = Some(o);
                } else {
                    self.close_open_run(now, o.opener);
                }
                return;
            }
            self.ctx.timers.clear(Timer::SealRun);
        }
        if self.room.unsealed.is_empty() {
            return;
        }
        let me = self.ctx.id;
        let seal_room = self.ctx.cfg.seal_room;
        let numbers = std::mem::take(&mut self.room.unsealed);
        let busy = self
            .room
            .last_typed
            .is_some_and(|t| now.saturating_duration_since(t) < HOLD_LIMIT);
        self.room.last_typed = Some(now);
        // (One typed while the room is looked for is sealed and kept: see below.)
        let lone = may_hold
            && seal_room
            && !leading
            && busy
            && open.is_none()
            && numbers.len() == 1
            && !self.looking_for_room();
        // Messages of the run before these: the open run's first one.
        let before = usize::from(open.is_some());
        let mut run = Vec::with_capacity(numbers.len());
        for (i, k) in numbers.iter().enumerate() {
            if seal_room {
                let Some(s) = self.room.outbox.get(*k) else {
                    continue;
                };
                let link = self.room.chain_head;
                let value = seal::chain(&link, &s.written(me));
                self.room.chain_head = value;
                self.room.vouched.insert(me, *k, link, value);
                let closes = (!lone && i + 1 == numbers.len()) || (before + i + 1) % RUN_MAX == 0;
                let proof = Provenance {
                    link: Some(link),
                    seal: closes.then(|| seal::seal_run(&self.ctx.identity, &value)),
                };
                self.room.outbox.set_proof(*k, proof);
            }
            if let Some(s) = self.room.outbox.get(*k) {
                run.push(s.clone());
            }
        }
        if self.looking_for_room() {
            // Sealed and kept: submitted once the room is found (see `on_welcome`).
            return;
        }
        if leading {
            return self.sequence_run(now, me, run);
        }
        if lone && let Some(s) = run.first() {
            self.room.open_run = Some(OpenRun {
                opener: s.origin_seq,
                since: now,
            });
            self.ctx.timers.set(Timer::SealRun, now + HOLD_LIMIT);
        }
        let Some(leader) = self.leader_addr() else {
            // No leader now: the resubmit timer sends them once there is one.
            return;
        };
        for (i, mut s) in run.into_iter().enumerate() {
            if i % RUN_MAX != 0 {
                s.proof.link = None;
            }
            let token = Token::Room(RoomToken::Submit);
            self.send_reliable(now, leader, Message::Submit(s), token);
        }
    }

    /// Closes the open own run of `last` alone (nothing was typed after it in time): it
    /// is sealed and sent to the leader again (the leader keeps the new copy in place of
    /// the first).
    fn close_open_run(&mut self, now: Instant, last: OriginSeq) {
        let me = self.ctx.id;
        let Some(s) = self.room.outbox.get(last) else {
            return; // confirmed meanwhile: nothing is left to prove
        };
        let Some(link) = s.proof.link else {
            return;
        };
        let value = seal::chain(&link, &s.written(me));
        let proof = Provenance {
            link: Some(link),
            seal: Some(seal::seal_run(&self.ctx.identity, &value)),
        };
        self.room.outbox.set_proof(last, proof);
        if let (Some(leader), Some(s)) = (self.leader_addr(), self.room.outbox.get(last).cloned()) {
            let token = Token::Room(RoomToken::Submit);
            self.send_reliable(now, leader, Message::Submit(s), token);
        }
    }

    /// Own unconfirmed messages to submit again: those sealed already, each unbroken
    /// stretch of them closed by a seal (one is added where the message that closed the
    /// run is confirmed and the rest is not).
    pub(in crate::proto::node) fn resubmissions(&mut self) -> Vec<Submit> {
        let mut pending = self.room.outbox.unconfirmed();
        if !self.ctx.cfg.seal_room {
            return pending;
        }
        pending.retain(|s| s.proof.link.is_some());
        let me = self.ctx.id;
        for i in 0..pending.len() {
            let closes = pending
                .get(i + 1)
                .is_none_or(|n| n.origin_seq != pending[i].origin_seq.next());
            if !closes || pending[i].proof.seal.is_some() {
                continue;
            }
            let s = &pending[i];
            let value = match self.room.vouched.get(me, s.origin_seq) {
                Some((_, v)) => *v,
                None => match s.proof.link {
                    Some(link) => seal::chain(&link, &s.written(me)),
                    None => continue,
                },
            };
            let seal = seal::seal_run(&self.ctx.identity, &value);
            pending[i].proof.seal = Some(seal);
            self.room
                .outbox
                .set_proof(pending[i].origin_seq, pending[i].proof.clone());
        }
        pending
    }
}
