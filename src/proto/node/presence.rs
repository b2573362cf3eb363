//! Going offline and coming back: `dereg`/`reg`, the leader's replicated offline queue of
//! direct messages, and its hand-over to a recipient back online.

use super::{Event, Node, Phase, Token};
use crate::ids::{DmId, NodeId};
use crate::proto::detector::Detector;
use crate::proto::event::CommandError;
use crate::proto::timers::Timer;
use crate::wire::{DirectMessage, Message, Presence, QueuedDm};
use std::net::SocketAddr;
use std::time::Instant;
use tracing::{debug, info};

impl Node {
    fn check_own_name(&mut self, name: Option<String>) -> bool {
        match name {
            Some(n) if n != self.ctx.cfg.name => {
                self.ctx.events.push_back(Event::Error(CommandError::NotYou(n)));
                false
            }
            _ => true,
        }
    }

    /// `dereg`: leave the ring like `exit`, but keep running, offline.
    pub(super) fn dereg(&mut self, now: Instant, name: Option<String>) {
        if !self.check_own_name(name) {
            return;
        }
        if self.life.phase != Phase::Member {
            return self.ctx.events.push_back(Event::Error(CommandError::NotInRoom));
        }
        self.life.going_offline = true;
        self.leave(now);
    }

    /// Called when a `dereg` leave is complete.
    pub(super) fn went_offline(&mut self) {
        self.life.going_offline = false;
        self.life.phase = Phase::Offline;
        self.room.sequencer = None;
        self.room.recovery = None;
        self.room.unstable.clear();
        self.mail.handing_over.clear();
        // What we heard before going offline says nothing about the room when we are back.
        self.ring.detector = Detector::new(
            self.ctx.cfg.suspect_after(),
            self.ctx.cfg.dead_after(),
            self.ctx.cfg.join_timeout,
        );
        self.ctx.timers.clear(Timer::Recovery);
        self.ctx.timers.clear(Timer::Election);
        self.ctx.timers.clear(Timer::GapRepair);
        info!(lamport = self.ctx.clock.now().0, "offline; reg to come back");
        self.ctx.events.push_back(Event::Deregistered {
            pending: self.room.outbox.len() + self.mail.unsaved.len(),
        });
    }

    /// `reg`: rejoin through `via`, or the leader or any member still known.
    pub(super) fn reg(&mut self, now: Instant, name: Option<String>, via: Option<SocketAddr>) {
        if !self.check_own_name(name) {
            return;
        }
        if self.life.phase != Phase::Offline {
            let e = if self.life.phase == Phase::Member {
                CommandError::AlreadyOnline
            } else {
                CommandError::NotInRoom
            };
            return self.ctx.events.push_back(Event::Error(e));
        }
        // Whom to try, in order: the given member; else the leader we knew, then the
        // members we knew online, then the offline ones (they may be back by now).
        let known: Vec<SocketAddr> = match via {
            Some(v) => vec![v],
            None => self
                .leader_addr()
                .into_iter()
                .chain(self.ring.members.online_peers().map(|m| m.addr))
                .chain(
                    self.ring.members
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
        let Some(first) = contacts.pop() else {
            return self.ctx.events.push_back(Event::Error(CommandError::NoContact));
        };
        self.life.reg_contacts = contacts;
        // Our replica of the queue goes to the leader once we are back (it may hold the
        // only copy of a message, if the leader that kept it died meanwhile).
        self.start_join(now, first);
    }

    // ----- the sender's side -----

    /// Has the leader keep `dm` for the offline recipient `to`.
    pub(super) fn store_offline_for(&mut self, now: Instant, to: &str, dm: DirectMessage) {
        let Some(idx) = dm.to.iter().position(|n| n == to) else {
            return;
        };
        let idx = idx as u8;
        self.mail.unsaved.insert((dm.id, idx), dm.clone());
        self.send_store(now, idx, dm);
        self.ctx.timers
            .set_if_unset(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
    }

    fn send_store(&mut self, now: Instant, to: u8, dm: DirectMessage) {
        debug!(
            lamport = self.ctx.clock.now().0,
            "asking the leader to keep {:?} for {}",
            dm.id,
            dm.to.get(to as usize).map_or("?", |s| s.as_str())
        );
        if self.is_leader() && self.room.recovery.is_none() {
            let me = self.ctx.id;
            self.keep(now, me, None, to, dm);
        } else if let Some(leader) = self.leader_addr() {
            self.send_reliable(now, leader, Message::Store { to, dm }, Token::Control);
        }
        // No leader now: sent again by the resubmit timer or on the leader change.
    }

    /// Sends again what the leader has not confirmed.
    pub(super) fn resend_unsaved(&mut self, now: Instant) {
        if self.life.phase != Phase::Member {
            return;
        }
        let pending: Vec<(u8, DirectMessage)> = self
            .mail.unsaved
            .iter()
            .map(|((_, to), dm)| (*to, dm.clone()))
            .collect();
        for (to, dm) in pending {
            self.send_store(now, to, dm);
        }
        if !self.mail.unsaved.is_empty() {
            self.ctx.timers
                .set_if_unset(Timer::Resubmit, now + self.ctx.cfg.resubmit_after);
        }
    }

    /// The leader's answer to our store request.
    pub(super) fn on_saved(&mut self, id: DmId, to: u8, full: bool) {
        let Some(dm) = self.mail.unsaved.remove(&(id, to)) else {
            return;
        };
        let name = dm.to.get(to as usize).cloned().unwrap_or_default();
        if full {
            self.ctx.events.push_back(Event::Undelivered {
                to: name.clone(),
                text: dm.text,
                reason: format!("{name} is offline and their message queue is full"),
            });
        } else {
            let leader = self
                .leader()
                .and_then(|l| self.name_of(l))
                .unwrap_or_else(|| "the leader".into());
            self.ctx.events.push_back(Event::Saved { to: name, leader });
        }
    }

    // ----- the leader's side -----

    /// A member asks us to keep a direct message.
    pub(super) fn on_store(
        &mut self,
        now: Instant,
        from: SocketAddr,
        origin: NodeId,
        to: u8,
        dm: DirectMessage,
    ) {
        debug!(
            lamport = self.ctx.clock.now().0,
            "store request {:?} from {origin}", dm.id
        );
        if let Some(rec) = self.room.recovery.as_mut() {
            rec.held_stores.push((from, origin, to, dm));
        } else if self.is_leader() {
            self.keep(now, origin, Some(from), to, dm);
        }
        // Not the leader: the sender sends it again to whoever leads.
    }

    /// Keeps a message, replicates it to every member, and confirms it to the sender once
    /// one replica holds it (or at once when there is nobody to hold it).
    fn keep(
        &mut self,
        now: Instant,
        origin: NodeId,
        reply_to: Option<SocketAddr>,
        to: u8,
        dm: DirectMessage,
    ) {
        let item = QueuedDm { origin, to, dm };
        let recipient = item.recipient().to_string();
        let key = (origin, item.dm.id, to);
        match self.mail.offline.push(item.clone()) {
            Err(_) => self.confirm_saved(now, origin, reply_to, item.dm.id, to, true),
            Ok(false) if !self.mail.awaiting_replica.contains_key(&key) => {
                // A retry of one already kept and replicated.
                self.confirm_saved(now, origin, reply_to, item.dm.id, to, false);
            }
            Ok(false) => {}
            Ok(true) => {
                info!(
                    lamport = self.ctx.clock.now().0,
                    "keeping a message for {recipient}"
                );
                let peers: Vec<SocketAddr> = self.ring.members.online_peers().map(|m| m.addr).collect();
                if peers.is_empty() {
                    self.confirm_saved(now, origin, reply_to, item.dm.id, to, false);
                } else {
                    self.mail.awaiting_replica.insert(key, reply_to);
                    let token = Token::Replica {
                        origin,
                        id: item.dm.id,
                        to,
                    };
                    for addr in peers {
                        self.send_reliable(now, addr, Message::Queued(item.clone()), token.clone());
                    }
                }
                self.start_handover(now, &recipient);
            }
        }
    }

    fn confirm_saved(
        &mut self,
        now: Instant,
        origin: NodeId,
        reply_to: Option<SocketAddr>,
        id: DmId,
        to: u8,
        full: bool,
    ) {
        if origin == self.ctx.id {
            self.on_saved(id, to, full);
        } else if let Some(addr) = reply_to {
            self.send_reliable(now, addr, Message::Saved { id, to, full }, Token::Control);
        }
    }

    pub(super) fn replica_acked(&mut self, now: Instant, origin: NodeId, id: DmId, to: u8) {
        if let Some(reply_to) = self.mail.awaiting_replica.remove(&(origin, id, to)) {
            self.confirm_saved(now, origin, reply_to, id, to, false);
        }
    }

    /// A replica never acked; if none is left to ack, the message is as safe as it gets.
    pub(super) fn replica_lost(&mut self, now: Instant, origin: NodeId, id: DmId, to: u8) {
        let others = self
            .transport.reliable
            .any_pending(|t| *t == Token::Replica { origin, id, to });
        if !others {
            self.replica_acked(now, origin, id, to);
        }
    }

    /// Hands the oldest kept message to `name` if it is online, one at a time, in order.
    pub(super) fn start_handover(&mut self, now: Instant, name: &str) {
        if !self.is_leader() || self.room.recovery.is_some() || self.mail.handing_over.contains(name) {
            debug!(
                lamport = self.ctx.clock.now().0,
                "not handing over to {name}: leader {} recovering {} busy {}",
                self.is_leader(),
                self.room.recovery.is_some(),
                self.mail.handing_over.contains(name)
            );
            return;
        }
        let Some(addr) = self
            .ring.members
            .by_name(name)
            .filter(|m| m.presence == Presence::Online)
            .map(|m| m.addr)
        else {
            return;
        };
        let Some(item) = self.mail.offline.front(name).cloned() else {
            return;
        };
        if name == self.ctx.cfg.name {
            // Kept for us while we were offline, and now we lead: hand it to ourselves.
            let (to, origin, id, idx) = (name.to_string(), item.origin, item.dm.id, item.to);
            self.on_direct(item.origin, item.dm, true);
            return self.handed_over(now, to, origin, id, idx);
        }
        debug!(
            lamport = self.ctx.clock.now().0,
            "handing {:?} over to {name}", item.dm.id
        );
        self.mail.handing_over.insert(name.to_string());
        let token = Token::Handover {
            to: name.to_string(),
            origin: item.origin,
            id: item.dm.id,
            idx: item.to,
        };
        self.send_reliable(now, addr, Message::Handover(item), token);
    }

    /// Hands over whatever is kept for members who are online now.
    pub(super) fn hand_over_all(&mut self, now: Instant) {
        let names: Vec<String> = self.mail.offline.recipients().map(str::to_string).collect();
        for name in names {
            self.start_handover(now, &name);
        }
    }

    /// The recipient acked a hand-over: forget it everywhere, then the next one.
    pub(super) fn handed_over(
        &mut self,
        now: Instant,
        to: String,
        origin: NodeId,
        id: DmId,
        idx: u8,
    ) {
        self.mail.handing_over.remove(&to);
        if self.mail.offline.remove(&to, origin, id) {
            let msg = Message::Dequeued {
                origin,
                id,
                to: idx,
            };
            self.broadcast(now, &msg, &Token::Control);
        }
        self.start_handover(now, &to);
    }

    /// A replica learns a kept message was handed over.
    pub(super) fn on_dequeued(&mut self, origin: NodeId, id: DmId, to: u8) {
        let name = self
            .mail.offline
            .items()
            .find(|i| i.origin == origin && i.dm.id == id && i.to == to)
            .map(|i| i.recipient().to_string())
            .unwrap_or_default();
        // Remembered even if we did not hold it, so no stale replica brings it back.
        self.mail.offline.remove(&name, origin, id);
    }

    /// Back after `dereg`: give the leader our replica of the queue; it keeps what it
    /// lacks and ignores what was handed over meanwhile.
    pub(super) fn return_replica(&mut self, now: Instant) {
        let Some(leader) = self.leader_addr().filter(|_| !self.is_leader()) else {
            return;
        };
        let kept: Vec<QueuedDm> = self.mail.offline.items().cloned().collect();
        for item in kept {
            self.send_reliable(now, leader, Message::Queued(item), Token::Control);
        }
    }

    /// A newcomer gets a replica of the whole queue.
    pub(super) fn replicate_queue_to(&mut self, now: Instant, addr: SocketAddr) {
        let items: Vec<QueuedDm> = self.mail.offline.items().cloned().collect();
        for item in items {
            self.send_reliable(now, addr, Message::Queued(item), Token::Control);
        }
    }
}
