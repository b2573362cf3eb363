//! Going offline and coming back: `dereg` leaves the ring but keeps the process, listed
//! as offline; `reg` rejoins through a given member, the leader or any member known.

use super::*;

impl Node {
    fn check_own_name(&mut self, name: Option<String>) -> bool {
        match name {
            Some(n) if n != self.ctx.cfg.name => {
                self.ctx.out.event(Event::Error(CommandError::NotYou(n)));
                false
            }
            _ => true,
        }
    }

    /// `dereg`: leave the ring like `exit`, but keep running, offline.
    pub(in crate::proto::node) fn dereg(&mut self, now: Instant, name: Option<String>) {
        if !self.check_own_name(name) {
            return;
        }
        if self.life.phase != Phase::Member {
            return self.ctx.out.event(Event::Error(CommandError::NotInRoom));
        }
        self.life.going_offline = true;
        self.leave(now);
    }

    /// Called when a `dereg` leave is complete.
    pub(in crate::proto::node) fn went_offline(&mut self) {
        self.life.going_offline = false;
        self.life.phase = Phase::Offline;
        self.room.step_down();
        self.mail.stop_handing_over();
        // What we heard before going offline says nothing about the room when we are back.
        self.ring.reset_detector(&self.ctx.cfg);
        self.ctx.timers.clear(Timer::Recovery);
        self.ctx.timers.clear(Timer::Election);
        self.ctx.timers.clear(Timer::GapRepair);
        log_at!(info, self, "offline; reg to come back");
        self.ctx.out.event(Event::Deregistered {
            pending: self.room.unconfirmed() + self.mail.unsaved_len(),
        });
    }

    /// `reg`: rejoin through `via`, or the leader or any member still known.
    pub(in crate::proto::node) fn reg(
        &mut self,
        now: Instant,
        name: Option<String>,
        via: Option<SocketAddr>,
    ) {
        if !self.check_own_name(name) {
            return;
        }
        if matches!(self.life.phase, Phase::Leaving { .. }) && self.life.going_offline {
            self.life.reg_after_leave = Some(via);
            return self.ctx.out.event(Event::Notice(
                "still going offline (your last messages are being confirmed); back in the room once that is done".into(),
            ));
        }
        if self.life.phase != Phase::Offline {
            let e = if self.life.phase == Phase::Member {
                CommandError::AlreadyOnline
            } else {
                CommandError::NotInRoom
            };
            return self.ctx.out.event(Event::Error(e));
        }
        // Whom to try, in order: the given member; else the leader we knew, then the
        // members we knew online, then the offline ones (they may be back by now).
        let known: Vec<SocketAddr> = match via {
            Some(v) => vec![v],
            None => self
                .leader_addr()
                .into_iter()
                .chain(self.ring.members().online_peers().map(|m| m.addr))
                .chain(
                    self.ring
                        .members()
                        .entries()
                        .filter(|m| m.presence == Presence::Offline && m.id != self.ctx.id)
                        .map(|m| m.addr),
                )
                .collect(),
        };
        let mut contacts: Vec<SocketAddr> = Vec::new();
        for a in known {
            if !contacts.contains(&a) && a != self.ctx.cfg.addr {
                contacts.push(a);
            }
        }
        contacts.reverse();
        self.life.reg_round = (contacts.clone(), Some(now), REG_ROUNDS - 1);
        let Some(first) = contacts.pop() else {
            return self.ctx.out.event(Event::Error(CommandError::NoContact));
        };
        self.life.reg_contacts = contacts;
        // Our replica of the queue goes to the leader once we are back (it may hold the
        // only copy of a message, if the leader that kept it died meanwhile).
        self.start_join(now, first);
    }
}
