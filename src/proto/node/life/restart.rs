//! Starting again from what was kept on disk: restore the history, the offline-queue
//! replicas and the Lamport time, find the room through the members known before, and
//! carry the room on if none of them answers.
//!
//! A restarted process has a new [`NodeId`]; its name is bound to its identity, so the
//! room takes it back as the same user. It tries the saved members, lowest address
//! first. A member still looking for its room itself answers
//! [`Refusal::Restarting`]. Rounds over every contact follow each other (an ack
//! timeout apart). Once a round ends with no room found, and no contact with a lower
//! address said it is restarting, neither in that round nor for a join timeout, the node
//! carries the room on. While a lower one is restarting, it waits for that one to carry
//! the room on and joins it (for at most [`GIVE_UP_AFTER`] join timeouts): silence over a
//! whole round rather than one answer missing, because one lost answer must not make two
//! members lead. So when every member restarts at once, the lowest address that is back
//! leads and the others join it; should two carry on anyway and neither find a majority,
//! the one left alone looks for the others again ([`Node::look_again`]).

use super::*;

/// How many join timeouts a restarted node waits, at most, for a restarting member with a
/// lower address to carry the room on.
pub const GIVE_UP_AFTER: u32 = 10;

/// A restarted node's search for its room.
#[derive(Debug)]
pub(in crate::proto::node) struct Restart {
    /// Every member address known before, lowest first.
    contacts: Vec<SocketAddr>,
    /// When the search began.
    started: Instant,
    /// When a contact with a lower address last said it is restarting too.
    lower_heard: Option<Instant>,
    /// When the current round over the contacts began.
    round_started: Instant,
    /// The member table as saved (other members' entries, marked offline).
    members: Vec<Member>,
    /// The leader known before.
    epoch: Option<Epoch>,
    /// Whether that leader was this user's earlier process: then no later leader has
    /// counted its ack (the epoch is written before any ack of a newer one).
    led_before: bool,
}

impl Lifecycle {
    /// The other members' entries as saved, kept aside while a restarted node looks for
    /// its room (none otherwise).
    pub(in crate::proto::node) fn saved_members(&self) -> &[Member] {
        self.restart.as_ref().map_or(&[], |r| &r.members)
    }
}

impl Node {
    /// A node restarted from `saved` (what a previous run of this user at this address
    /// wrote). It shows nothing again that it showed before, holds the kept direct
    /// messages it held, and rejoins through `cfg.join` or else the members it knew;
    /// if none answers, it carries the room on as its leader. With an empty `saved` this
    /// is [`Node::new`].
    pub fn restore(cfg: NodeConfig, id: NodeId, now: Instant, saved: Restored) -> Self {
        if saved.is_empty() {
            return Node::new(cfg, id, now);
        }
        let mut node = Node::blank(cfg, id, now);
        node.apply_restored(now, saved);
        node.start_recording();
        node.look_for_room(now);
        node
    }

    fn apply_restored(&mut self, now: Instant, mut saved: Restored) {
        let lamport = saved
            .history
            .iter()
            .map(|e| e.lamport)
            .chain(saved.members.iter().map(|m| m.stamp.lamport))
            .fold(saved.lamport, std::cmp::max);
        self.ctx.clock.restore(lamport);
        let next = saved.next_seq();
        // After a restart into a room with another numbering, the log on disk holds both
        // numberings; only the current one (the run of rising numbers at its end) goes
        // back into memory. The rest stays on disk for `history`.
        let history = std::mem::take(&mut saved.history);
        let held = std::mem::take(&mut saved.held);
        self.room
            .restore(history, held, next, self.ctx.cfg.history_limit);
        match saved.voters.take() {
            Some((at, voters)) => self.room.set_voters(voters.into_iter().collect(), at),
            // Never written (a crash right after joining, before the welcome was on disk):
            // every user saved might vote, so their majority is needed before going on.
            None => {
                let everyone: BTreeSet<String> = saved
                    .members
                    .iter()
                    .map(|m| m.name.clone())
                    .chain([self.ctx.cfg.name.clone()])
                    .collect();
                self.room.set_voters(everyone, Seq(0));
            }
        }
        self.mail.restore(&mut saved);
        let led_before = saved.epoch.is_some_and(|e| {
            saved
                .members
                .iter()
                .any(|m| m.id == e.leader && m.name == self.ctx.cfg.name)
        });
        // Earlier runs of this user are gone; one entry per other name is enough.
        let table = crate::proto::ring::Membership::from_entries(self.ctx.id, saved.members);
        let others: Vec<Member> = table
            .current()
            .into_iter()
            .filter(|m| m.name != self.ctx.cfg.name)
            .cloned()
            .collect();
        let mut contacts: Vec<SocketAddr> = others
            .iter()
            .map(|m| m.addr)
            .filter(|a| *a != self.ctx.cfg.addr)
            .collect();
        contacts.sort();
        contacts.dedup();
        if let Some(first) = self.ctx.cfg.join {
            contacts.retain(|a| *a != first);
            contacts.insert(0, first);
        }
        self.life.was_member = true;
        self.life.restart = Some(Restart {
            contacts,
            started: now,
            lower_heard: None,
            round_started: now,
            members: others,
            epoch: saved.epoch,
            led_before,
        });
    }

    /// A node that carried the room on (or leads what is left of it) and is alone, with no
    /// majority after several tries: other members may have carried on elsewhere (two
    /// restarted at once and missed each other), so it looks for them again as a restarted
    /// node does, and joins the one it finds. It committed nothing without a majority, so
    /// stepping down loses nothing. Returns `false` if it knows no other member to try.
    pub(in crate::proto::node) fn look_again(&mut self, now: Instant) -> bool {
        let me = self.ctx.cfg.addr;
        let others: Vec<Member> = self
            .ring
            .members()
            .entries()
            .filter(|m| m.name != self.ctx.cfg.name && m.addr != me)
            .cloned()
            .collect();
        let mut contacts: Vec<SocketAddr> = others.iter().map(|m| m.addr).collect();
        contacts.sort();
        contacts.dedup();
        if contacts.is_empty() {
            return false;
        }
        log_at!(
            info,
            self,
            "alone without a majority; looking for the other members again"
        );
        self.ctx.out.event(Event::Notice(
            "no majority of the room answers here; looking for the other members again".into(),
        ));
        self.room.step_down();
        self.ctx.timers.clear(Timer::Recovery);
        self.ctx.timers.clear(Timer::Election);
        self.life.restart = Some(Restart {
            contacts,
            started: now,
            lower_heard: None,
            round_started: now,
            members: others,
            epoch: self.ring.epoch(),
            led_before: false,
        });
        self.look_for_room(now);
        true
    }

    /// Tries the contacts again from the first (a new round), or carries the room on.
    pub(in crate::proto::node) fn look_for_room(&mut self, now: Instant) {
        let Some(r) = self.life.restart.as_mut() else {
            return;
        };
        r.round_started = now;
        let mut queue = r.contacts.clone();
        queue.reverse();
        match queue.pop() {
            Some(first) => {
                log_at!(
                    info,
                    self,
                    "restarted; looking for the room through {} saved members",
                    r.contacts.len()
                );
                self.life.reg_contacts = queue;
                self.start_join(now, first);
            }
            None => self.carry_room_on(now),
        }
    }

    /// Whether this node, a member before, is looking for its room (restarted, or cut
    /// off alone): what its user types for the room waits for it.
    pub(in crate::proto::node) fn looking_for_room(&self) -> bool {
        self.is_restarting() && self.life.was_member && !self.life.is_member()
    }

    /// Whether this node is a restarted one still looking for its room.
    pub(in crate::proto::node) fn is_restarting(&self) -> bool {
        self.life.restart.is_some()
    }

    /// The contact we try is restarting too: note whether it comes before us, and go on.
    pub(in crate::proto::node) fn restarting_peer(&mut self, now: Instant) {
        let Phase::Joining { contact, .. } = self.life.phase else {
            return;
        };
        let me = self.ctx.cfg.addr;
        if let Some(r) = self.life.restart.as_mut()
            && contact < me
        {
            r.lower_heard = Some(now);
        }
        self.fail_join(now, JoinError::Refused(Refusal::Restarting));
    }

    /// Joining through one contact failed while restarting: the next contact, another
    /// round, or carry the room on. A refusal (the name is bound to another identity,
    /// say) is final.
    pub(in crate::proto::node) fn restart_join_failed(&mut self, now: Instant, err: JoinError) {
        if matches!(err, JoinError::Refused(ref r) if *r != Refusal::Restarting) {
            // The search ends, but the saved members and leader stay aside (and so
            // on disk, see `poll_write`): a later start from this disk looks for the
            // room through them again (a refusal such as `StillOnline` is this process's,
            // not the room's). Cleared, the next write left a table of this node alone,
            // and no leader followed: started again, it led a room of one for good.
            self.life.phase = Phase::Done;
            // What the user typed while the room was being looked for is never sent.
            let texts = self.room.unconfirmed_texts();
            if !texts.is_empty() {
                self.ctx.out.event(Event::Unconfirmed { texts });
            }
            return self.ctx.out.event(Event::JoinFailed(err));
        }
        if let Some(next) = self.life.reg_contacts.pop() {
            return self.start_join(now, next);
        }
        let Some(r) = self.life.restart.as_ref() else {
            return;
        };
        // Quiet: no lower contact said it is restarting in this round (a round spent
        // waiting on unreachable contacts is not silence from the ones that answered), nor
        // for a join timeout.
        let quiet_since = r.lower_heard.unwrap_or(r.started);
        let heard_this_round = r.lower_heard.is_some_and(|t| t >= r.round_started);
        let quiet = !heard_this_round
            && now.saturating_duration_since(quiet_since) >= self.ctx.cfg.join_timeout;
        let waited_too_long =
            now.saturating_duration_since(r.started) >= self.ctx.cfg.join_timeout * GIVE_UP_AFTER;
        if quiet || waited_too_long {
            return self.carry_room_on(now);
        }
        self.ctx
            .timers
            .set(Timer::RestartRound, now + self.ctx.cfg.ack_timeout);
    }

    /// Nobody answered: this node leads the room again, with the history, kept messages
    /// and member table it saved. Members who come back join it.
    fn carry_room_on(&mut self, now: Instant) {
        let Some(r) = self.life.restart.take() else {
            return;
        };
        for mut m in r.members {
            if m.presence == Presence::Online {
                // This node's own word that it is away, under a stamp of its own: kept
                // under the saved stamp, "offline" would be a second version of the entry
                // the others hold online, which no merge tells apart (neither side ever
                // took the other's, and its subject never refuted it).
                m.presence = Presence::Offline;
                m.stamp = Stamp {
                    lamport: self.ctx.clock.tick(),
                    by: self.ctx.id,
                };
            }
            self.ring.merge(m);
        }
        let term = r.epoch.map_or(0, |e| e.term.saturating_add(1));
        self.ring.install(Epoch {
            term,
            leader: self.ctx.id,
        });
        self.watch_leader(now);
        self.life.phase = Phase::Member;
        self.start_heartbeats(now);
        let next: Seq = self.room.next();
        let me = BTreeSet::from([self.ctx.cfg.name.clone()]);
        let alone = *self.room.voters() == me && *self.room.log_voters() == me;
        let holds_nothing = !self.room.holds_copies();
        // What it held of the room's first term alone, which it led as the room's
        // creator: each copy is its own first proposal (none is an earlier leader's
        // entry proposed again, which may have been committed and shown), nobody was
        // told any of them committed (its commit is written before its notices), and no
        // later leader took them; so they are dropped and the room goes on, as a leader
        // alone would have gone on. In a later term a copy may be an earlier term's
        // committed entry it proposed again in a take-over: those go through one.
        let own_only = r.led_before
            && *self.room.voters() == me
            && r.epoch.is_some_and(|e| e.term == 0)
            && self.room.held_copies_all_of(0);
        let goes_on_now = (alone && holds_nothing) || own_only;
        if goes_on_now || alone {
            if goes_on_now {
                log_at!(
                    info,
                    self,
                    "no saved member answered; carrying the room on as leader from #{next}"
                );
            } else {
                // Copies held uncommitted may be a later leader's, committed with this
                // node's ack (a newcomer that took over while it was paused): a take-over
                // proposes them again in this term instead of dropping them. Alone a
                // majority of both configurations, it ends at once.
                log_at!(
                    info,
                    self,
                    "no saved member answered; carrying the room on as leader with what it held"
                );
            }
            self.ctx.out.event(Event::Notice(
                "no member of the saved room answered; the room goes on here, with you as leader"
                    .into(),
            ));
            if goes_on_now {
                self.room.lead(term);
            } else {
                self.start_recovery(now);
            }
        } else {
            // Others vote too (in the committed configuration or in a change held):
            // nothing goes on until a majority of them is back and has said what it holds
            // (they are let in meanwhile, see `admission.rs`).
            log_at!(
                info,
                self,
                "no saved member answered; leading the room again once a majority of its voters is back"
            );
            self.ctx.out.event(Event::Notice(format!(
                "no member of the saved room answered yet; the room goes on once a majority of its {} voters is back",
                self.room.log_voters().len().max(self.room.voters().len())
            )));
            self.start_recovery(now);
        }
        self.ctx.out.event(Event::Joined {
            leader: self.ctx.cfg.name.clone(),
            is_leader: true,
            members: self.ring.members().current().len(),
        });
    }

    /// Welcomed back: the search is over.
    /// The highest epoch this node followed: the one in memory, or the one on disk that a
    /// restarted node has not replaced yet.
    pub(in crate::proto::node) fn followed_epoch(&self) -> Option<Epoch> {
        let saved = self.life.restart.as_ref().and_then(|r| r.epoch);
        self.ring.highest_epoch().max(saved)
    }

    pub(in crate::proto::node) fn restart_done(&mut self) {
        self.life.restart = None;
    }
}
