//! Indirect probes (SWIM, Lifeguard): a watcher whose predecessor went silent asks a few
//! other members to probe it too, and a member that answers any of them is alive. So one
//! lossy link, or one slow observer, does not make the room declare a live member dead:
//! death needs the silence of every path tried. A dead member answers nobody, and is
//! declared dead on the watcher's own bounds, once the probes had the time to come back
//! (the probe window, see `proto::detector`); one that may not know the
//! watcher yet (met in the watcher's welcome) only once a member said it is probing it
//! (`Probing`) and had the time to hear it.

use super::*;

/// Other members asked to probe a suspected predecessor, besides the leader.
const INDIRECT_PROBERS: usize = 2;
/// Members we probe for others at once, at most (older requests are dropped).
const MAX_PROBING_FOR: usize = 64;

impl Node {
    /// The probe windows (see `proto::detector`), from the longest smoothed round trip
    /// and the longest retransmission timeout measured to an online member: a request to
    /// probe not acked within the timeout was lost, and nobody probes for us; one taken
    /// is answered within a round trip and a timeout (a request to the prober and the
    /// answer back, plus the prober's own round trip to the target, not measured here and
    /// taken to be no longer than ours, with the variation the timeout allows for). Each
    /// at most twice the ack timeout (1 s), so that a crash is still found within about
    /// 1.5 s on the slowest paths measured (round trips of 800 ms, whose timeouts reach
    /// that cap). Zero while nothing is measured.
    pub(in crate::proto::node) fn probe_windows(&mut self) -> (Duration, Duration) {
        let (srtt, rto) = self.slowest_path();
        let cap = self.ctx.cfg.ack_timeout * 2;
        ((srtt + rto).min(cap), rto.min(cap))
    }

    /// The watcher suspects `target`: ask up to [`INDIRECT_PROBERS`] other online members
    /// (the ones after this node on the ring) to probe it, once per suspicion; and the
    /// leader too if `target` is a member we only met in our welcome: the leader has heard
    /// from every member, so it can say it probes one (see [`Node::on_probe_for`]), which
    /// members that joined just before may not.
    pub(in crate::proto::node) fn ask_indirect_probes(&mut self, now: Instant, target: NodeId) {
        if self.ring.asked_about.contains_key(&target) {
            return;
        }
        let mut probers = Vec::new();
        if !self.ring.detector.knows_us(target)
            && let Some(leader) = self.leader().filter(|l| *l != target && *l != self.ctx.id)
            && self.ring.members.is_online(leader)
            && let Some(addr) = self.ring.members.get(leader).map(|m| m.addr)
        {
            probers.push(addr);
        }
        let most = probers.len() + INDIRECT_PROBERS;
        let mut at = self.ring.members.next();
        for _ in 0..self.ring.members.len() {
            let Some(id) = at else { break };
            if id == self.ctx.id || probers.len() == most {
                break;
            }
            if id != target
                && let Some(addr) = self.ring.members.get(id).map(|m| m.addr)
                && !probers.contains(&addr)
            {
                probers.push(addr);
            }
            at = self.ring.members.successor_of(id);
        }
        self.ring.asked_about.insert(target, probers.clone());
        log_at!(
            debug,
            self,
            "suspecting {target}; {} members asked to probe it",
            probers.len()
        );
        for addr in probers {
            let token = Token::Ring(RingToken::ProbeFor(target));
            self.send_reliable(now, addr, Message::ProbeFor { target }, token);
        }
    }

    /// A member at `requester` suspects `target`: probe it for them, and say so if `target`
    /// reached us within a session (it knows of us, so its silence to our probes means
    /// something).
    pub(in crate::proto::node) fn on_probe_for(
        &mut self,
        now: Instant,
        requester: SocketAddr,
        target: NodeId,
    ) {
        if !self.in_ring() || target == self.ctx.id {
            return;
        }
        let Some(addr) = self
            .ring
            .members
            .get(target)
            .filter(|m| m.presence == Presence::Online)
            .map(|m| m.addr)
        else {
            return;
        };
        let until = now + self.ctx.cfg.dead_after() * 2;
        self.ring.probing_for.retain(|_, asks| {
            asks.retain(|(_, t)| *t > now);
            !asks.is_empty()
        });
        if self.ring.probing_for.len() >= MAX_PROBING_FOR
            && !self.ring.probing_for.contains_key(&target)
        {
            return;
        }
        let asks = self.ring.probing_for.entry(target).or_default();
        match asks.iter_mut().find(|(a, _)| *a == requester) {
            Some((_, t)) => *t = until, // asked again: a new window
            None => asks.push((requester, until)),
        }
        self.send_heartbeat(addr, true);
        self.arm_probe_timer(now);
        if self.ring.detector.knows_us(target) {
            self.send_reliable(now, requester, Message::Probing { target }, Token::Control);
        }
    }

    /// Probes again, on the probe timer, every member we probe for that has not answered
    /// yet, for `dead_after - suspect_after` after the request (the time the requester
    /// gives us): one probe or its answer may be lost, and the requester counts on our
    /// word. At most six probes per request, none once the member answered. Answers given
    /// on the last tick are given once more.
    pub(in crate::proto::node) fn probe_again_for_others(&mut self, now: Instant) {
        for (requester, target) in std::mem::take(&mut self.ring.vouch_again) {
            let msg = Message::Alive { target };
            self.send_reliable(now, requester, msg, Token::Control);
        }
        self.ring.probing_for.retain(|_, asks| {
            asks.retain(|(_, t)| *t > now);
            !asks.is_empty()
        });
        // An ask expires `dead_after * 2` after it came; it is probed for again only in
        // the first `dead_after - suspect_after` of that.
        let cfg = &self.ctx.cfg;
        let kept_after = cfg.dead_after() * 2 - (cfg.dead_after() - cfg.suspect_after());
        let targets: Vec<SocketAddr> = self
            .ring
            .probing_for
            .iter()
            .filter(|(_, asks)| asks.iter().any(|(_, t)| *t > now + kept_after))
            .filter_map(|(id, _)| self.ring.members.get(*id))
            .filter(|m| m.presence == Presence::Online)
            .map(|m| m.addr)
            .collect();
        if !targets.is_empty() {
            self.arm_probe_timer(now);
        }
        for addr in targets {
            self.send_heartbeat(addr, true);
        }
    }

    /// The probe timer fires within a quarter heartbeat interval (not later than it was).
    pub(in crate::proto::node) fn arm_probe_timer(&mut self, now: Instant) {
        self.arm_probe_timer_at(now + self.ctx.cfg.heartbeat_interval / 4);
    }

    /// The probe timer fires at `at` at the latest (not later than it was).
    pub(in crate::proto::node) fn arm_probe_timer_at(&mut self, at: Instant) {
        if self
            .ctx
            .timers
            .deadline(Timer::Probe)
            .is_none_or(|d| d > at)
        {
            self.ctx.timers.set(Timer::Probe, at);
        }
    }

    /// A heartbeat from `sender` came: whoever asked us to probe it hears that it lives,
    /// now and once more on the next probe tick.
    pub(in crate::proto::node) fn vouch_for(&mut self, now: Instant, sender: NodeId) {
        let Some(asks) = self.ring.probing_for.remove(&sender) else {
            return;
        };
        for (requester, until) in asks {
            if until > now {
                let msg = Message::Alive { target: sender };
                self.send_reliable(now, requester, msg, Token::Control);
                self.ring.vouch_again.push((requester, sender));
            }
        }
        if !self.ring.vouch_again.is_empty() {
            self.arm_probe_timer(now);
        }
    }

    /// Whether we asked the member at `from` about `target` in the current suspicion.
    pub(in crate::proto::node) fn asked(&self, from: SocketAddr, target: NodeId) -> bool {
        self.ring
            .asked_about
            .get(&target)
            .is_some_and(|asked| asked.contains(&from))
    }

    /// A member we asked says `target` answered it: a sign of life, second hand.
    pub(in crate::proto::node) fn on_alive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        target: NodeId,
    ) {
        // Only an answer to our own question counts: an unasked one would end a
        // newcomer's grace, or judge a neighbour on a member's word alone.
        if !self.asked(from, target) {
            return log_at!(
                debug,
                self,
                "an unasked answer that {target} is alive; ignored"
            );
        }
        if self.ring.members.is_online(target) {
            log_at!(debug, self, "{target} answered an indirect probe");
            self.ring.heard(target, now);
        } else if self.ring.disputed.remove(&target).is_some() {
            // Held offline here, said online by another, and alive through a third: not
            // declared offline again. Not taken online here either: a member whose own
            // datagrams do not reach us, as a leader cut from us, is better sought
            // through the voters than followed (see `seek_leader`).
            log_at!(
                debug,
                self,
                "{target}, offline here, answered an indirect probe"
            );
            self.ring.asked_about.remove(&target);
        }
    }

    /// A member we asked says it is probing `target` for us, a member that reached it
    /// within a session: our silence from `target` is now checked by another.
    pub(in crate::proto::node) fn on_probing(
        &mut self,
        now: Instant,
        from: SocketAddr,
        target: NodeId,
    ) {
        if self.asked(from, target) {
            self.ring.detector.relay_took(target, now);
        }
    }
}
