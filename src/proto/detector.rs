//! The failure detector for the ring predecessor.
//!
//! Every node heartbeats its successor, so each node is watched by one other: the node
//! after it. A watched node's heartbeats are its signs of life. Silent for
//! `suspect_after`, it is suspected (the watcher then probes it); silent for `dead_after`,
//! and suspected for the probe window (a shorter one if no member took our request to
//! probe), it is declared dead. The probe window is the time a probe needs to come back
//! through another member (see [`Detector::set_probe_windows`]): on a LAN it is well
//! inside `dead_after - suspect_after` and changes nothing, while on a slow path (a link
//! of 100 ms each way) an indirect probe's answer takes longer than that, and a live
//! predecessor whose heartbeats do not come here (it beats another it still takes for its
//! successor) would be found dead before any answer could come.
//!
//! A node that just became the watched one is judged by the same bounds, counted from
//! when watching began, unless it is a newcomer (it came online
//! less than `grace` before watching began, and may still be receiving its welcome): a
//! newcomer not yet heard from is judged only after the longer `grace`. It stops being a
//! newcomer once heard from (a heartbeat, perhaps before watching began) or once the
//! leader says it holds its welcome and follows it (`Welcomed`).
//!
//! The other way round, a node just welcomed watches a member it met in its welcome, which
//! may not know of it yet (a welcome from a leader about to be replaced, whose word on the
//! newcomer the others did not take) and so sends it no heartbeat. Such a member is
//! suspected by the usual bound (and probed through others); it is found dead by the
//! usual bound only once another member said it is probing it for us (one it reached
//! within a session) and had `dead_after - suspect_after` to hear it, else after the grace:
//! silence that nobody else could check is not taken as death.

use crate::ids::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long after coming back from an absence a node takes its successor's word that its
/// predecessor is dead as a suspicion (see [`Detector::claimed_dead`]).
pub const CLAIM_WINDOW: Duration = Duration::from_secs(2);

/// What [`Detector::check`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Neighbours silent past the suspicion bound (to probe).
    pub suspected: Vec<NodeId>,
    /// Neighbours silent past the death bound.
    pub dead: Vec<NodeId>,
}

/// Last-heard times and the current suspicions.
#[derive(Debug, Clone)]
pub struct Detector {
    suspect_after: Duration,
    dead_after: Duration,
    grace: Duration,
    last_heard: BTreeMap<NodeId, Instant>,
    /// Watched nodes, with when watching began.
    watched: BTreeMap<NodeId, Instant>,
    /// Nodes no longer watched that were suspected when they stopped being: still judged,
    /// from when watching them began, until heard from or found dead.
    lingering: BTreeMap<NodeId, Instant>,
    /// When nodes came online, for the last `grace`: the newcomers.
    arrivals: BTreeMap<NodeId, Instant>,
    /// Nodes said to have their welcome before they arrived here, and when.
    welcomed_early: BTreeMap<NodeId, Instant>,
    /// Members met in this node's own welcome, and when: they may not know of it yet.
    met: BTreeMap<NodeId, Instant>,
    /// Members that reached this node within a session: they hold its key.
    reached: BTreeSet<NodeId>,
    /// Watched members met in our welcome that another member agreed to probe for us, and
    /// when it first did (since last heard).
    relayed: BTreeMap<NodeId, Instant>,
    /// Suspected nodes, with when the suspicion began (when probing them began).
    suspected: BTreeMap<NodeId, Instant>,
    /// The least time a suspected node is probed before it is found dead on silence, once
    /// a member took our request to probe it.
    probe_window: Duration,
    /// The same while no member took it.
    untaken_window: Duration,
    /// Suspected nodes another member took our request to probe (it acked it).
    probers_took: BTreeSet<NodeId>,
    /// Watched nodes another member said are dead, and when: dead unless heard from since
    /// (see [`Detector::claimed_dead`]).
    claims: BTreeMap<NodeId, Instant>,
    /// When this node last came back from an absence, until a claim is taken on it.
    woke: Option<Instant>,
}

impl Detector {
    /// A detector with the given bounds; `grace` applies to a neighbour not heard from
    /// since it became one.
    pub fn new(suspect_after: Duration, dead_after: Duration, grace: Duration) -> Self {
        Detector {
            suspect_after,
            dead_after,
            grace: grace.max(dead_after),
            last_heard: BTreeMap::new(),
            watched: BTreeMap::new(),
            lingering: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            welcomed_early: BTreeMap::new(),
            met: BTreeMap::new(),
            reached: BTreeSet::new(),
            relayed: BTreeMap::new(),
            suspected: BTreeMap::new(),
            probe_window: Duration::ZERO,
            untaken_window: Duration::ZERO,
            probers_took: BTreeSet::new(),
            claims: BTreeMap::new(),
            woke: None,
        }
    }

    /// `id` sent us something within a session: it holds our key, so it knows of us (no
    /// longer only met in our welcome).
    pub fn in_touch(&mut self, id: NodeId) {
        self.met.remove(&id);
        self.reached.insert(id);
    }

    /// Records a sign of life from `id` (its heartbeat, or another member's word that it
    /// answered a probe).
    pub fn heard(&mut self, id: NodeId, now: Instant) {
        self.last_heard.insert(id, now);
        self.suspected.remove(&id);
        self.probers_took.remove(&id);
        self.claims.remove(&id);
        self.relayed.remove(&id);
    }

    /// Sets which nodes are watched (the ring neighbours). A newly watched node is not
    /// judged on silence from before it was a neighbour.
    pub fn watch(&mut self, ids: &[NodeId], now: Instant) {
        if ids.len() == self.watched.len() && ids.iter().all(|id| self.watched.contains_key(id)) {
            return; // the same nodes: nothing to change
        }
        let old = std::mem::take(&mut self.watched);
        for id in ids {
            let since = old.get(id).or(self.lingering.get(id)).copied();
            self.watched.insert(*id, since.unwrap_or(now));
            self.lingering.remove(id);
        }
        // A suspected node handed on (a member came back between us, say, one that was
        // away and judges its neighbours afresh) is still judged here until it answers or
        // is found dead: the new watcher would start its count from nothing.
        for (id, since) in old {
            if !self.watched.contains_key(&id) && self.suspected.contains_key(&id) {
                self.lingering.insert(id, since);
            }
        }
        self.suspected
            .retain(|id, _| self.watched.contains_key(id) || self.lingering.contains_key(id));
        self.relayed
            .retain(|id, _| self.watched.contains_key(id) || self.lingering.contains_key(id));
        let suspected = &self.suspected;
        self.probers_took.retain(|id| suspected.contains_key(id));
    }

    /// Drops the claims about any node but `prev`, the predecessor: a claim was about
    /// the ring as it was.
    pub fn keep_claims_on(&mut self, prev: Option<NodeId>) {
        self.claims.retain(|id, _| Some(*id) == prev);
    }

    /// Records that `id` came online at `now`: watched from before `grace` has passed, it
    /// is a newcomer and gets the longer grace before its first heartbeat.
    /// One already said to have its welcome (within `grace`) is no newcomer.
    pub fn arrived(&mut self, id: NodeId, now: Instant) {
        let early = self.welcomed_early.remove(&id);
        if early.is_some_and(|t| now.saturating_duration_since(t) < self.grace) {
            return;
        }
        self.arrivals.insert(id, now);
    }

    /// This node was welcomed at `now` into a room holding `id`: `id` may not know of it
    /// yet (see the module doc).
    pub fn met(&mut self, id: NodeId, now: Instant) {
        self.met.insert(id, now);
    }

    /// Whether `id` is known to know of us: it reached us within a session. A member asked
    /// to probe `id` vouches for its silence only then: a probe from one it does not know
    /// would go unanswered.
    pub fn knows_us(&self, id: NodeId) -> bool {
        self.reached.contains(&id)
    }

    /// Another member said at `now` that it is probing `id` for us: if `id` is a member we
    /// met in our welcome, its silence is judged by the usual bounds, but no sooner than
    /// `dead_after - suspect_after` from now (the time the relay has to reach it and say
    /// so, as we would have had ourselves). Forgotten once `id` is heard from.
    pub fn relay_took(&mut self, id: NodeId, now: Instant) {
        if self.watched.contains_key(&id) || self.lingering.contains_key(&id) {
            self.relayed.entry(id).or_insert(now);
        }
    }

    /// `id` is said to have its welcome before it arrived here: when it does (within
    /// `grace`), it is no newcomer.
    pub fn welcomed_early(&mut self, id: NodeId, now: Instant) {
        self.welcomed_early.insert(id, now);
    }

    /// `id` is known to hold its welcome (it told the leader so, within its session) at
    /// `now`: it is no longer a newcomer, and if watched and not heard from since, its
    /// silence counts from `now` by the usual bounds (its first heartbeat may be on its
    /// way).
    pub fn welcomed(&mut self, id: NodeId, now: Instant) {
        if self.arrivals.remove(&id).is_none() {
            return;
        }
        if let Some(since) = self.watched.get_mut(&id) {
            let heard = self.last_heard.get(&id).is_some_and(|t| t >= since);
            if !heard {
                *since = (*since).max(now);
            }
        }
    }

    /// Our successor says `id`, our predecessor, is dead, soon after we came back from an
    /// absence: it watched `id` while we were away, and we would count `id`'s silence from
    /// our wake (what we heard since may be a backlog). The word counts as a suspicion (to
    /// probe at once): `id` is found dead unless heard from within `dead_after -
    /// suspect_after` of it (a probe's round trip and a heartbeat or more), and the probe
    /// window (see [`Detector::set_probe_windows`]); only a sign of
    /// life after the word clears it. Taken once per absence, within [`CLAIM_WINDOW`] of
    /// the wake, and never against a newcomer's grace; any other word changes nothing
    /// here. Returns whether `id` is now suspected on it.
    pub fn claimed_dead(&mut self, id: NodeId, now: Instant) -> bool {
        let Some(woke) = self.woke else {
            return false;
        };
        if now.saturating_duration_since(woke) > CLAIM_WINDOW {
            self.woke = None;
            return false;
        }
        let Some(since) = self.watched.get(&id) else {
            return false;
        };
        if self.is_newcomer(id, *since) {
            return false;
        }
        self.woke = None;
        self.claims.insert(id, now);
        self.suspected.entry(id).or_insert(now);
        true
    }

    /// Forgets a node (it is gone).
    pub fn forget(&mut self, id: NodeId) {
        self.lingering.remove(&id);
        self.arrivals.remove(&id);
        self.welcomed_early.remove(&id);
        self.met.remove(&id);
        self.reached.remove(&id);
        self.relayed.remove(&id);
        self.last_heard.remove(&id);
        self.suspected.remove(&id);
        self.probers_took.remove(&id);
        self.claims.remove(&id);
        self.watched.remove(&id);
    }

    /// This node was away (stopped, suspended, starved of CPU) until `now`: what it heard
    /// before says nothing about its neighbours now. Every watched node is judged afresh,
    /// from `now`, as if just watched; no suspicion stands.
    pub fn restart_watch(&mut self, now: Instant) {
        for since in self.watched.values_mut() {
            *since = now;
        }
        self.lingering.clear();
        self.suspected.clear();
        self.probers_took.clear();
        self.claims.clear();
        self.relayed.clear();
        self.woke = Some(now);
    }

    /// Judges the watched nodes at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        // An arrival matters while a watch that began within `grace` of it can last.
        let keep = self.grace * 2;
        self.arrivals
            .retain(|_, t| now.saturating_duration_since(*t) < keep);
        self.met
            .retain(|_, t| now.saturating_duration_since(*t) < keep);
        self.welcomed_early
            .retain(|_, t| now.saturating_duration_since(*t) < self.grace);
        let suspected = &self.suspected;
        self.probers_took.retain(|id| suspected.contains_key(id));
        let mut v = Verdict::default();
        let lingering: Vec<(NodeId, Instant)> =
            self.lingering.iter().map(|(id, t)| (*id, *t)).collect();
        for (id, since) in lingering {
            if !self.suspected.contains_key(&id) {
                self.lingering.remove(&id); // heard from since (which ends the suspicion)
                continue;
            }
            let from = self.last_heard.get(&id).copied().filter(|t| *t >= since);
            let from = from.unwrap_or(since);
            // A member met in our welcome keeps its rule when handed on.
            let dead_after = if self.unknown_to(id, since) {
                self.met_dead_after(id, from)
            } else {
                self.dead_after
            };
            if now.saturating_duration_since(from) >= dead_after && self.probed_enough(id, now) {
                v.dead.push(id);
                self.suspected.remove(&id);
                self.lingering.remove(&id);
            }
        }
        for (id, since) in &self.watched {
            let heard = self.last_heard.get(id).copied().filter(|t| t >= since);
            let newcomer = self.is_newcomer(*id, *since);
            let unknown = self.unknown_to(*id, *since);
            let (silent, suspect_after, dead_after) = match heard {
                Some(t) if unknown => (
                    now.saturating_duration_since(t),
                    self.suspect_after,
                    self.met_dead_after(*id, t),
                ),
                Some(t) => (
                    now.saturating_duration_since(t),
                    self.suspect_after,
                    self.dead_after,
                ),
                None if newcomer => (
                    now.saturating_duration_since(*since),
                    self.grace - (self.dead_after - self.suspect_after),
                    self.grace,
                ),
                None if unknown => (
                    now.saturating_duration_since(*since),
                    self.suspect_after,
                    self.met_dead_after(*id, *since),
                ),
                None => (
                    now.saturating_duration_since(*since),
                    self.suspect_after,
                    self.dead_after,
                ),
            };
            let claimed = self.claims.get(id).is_some_and(|c| {
                now.saturating_duration_since(*c) >= self.dead_after - self.suspect_after
            }) && self.probed_enough(*id, now);
            if (silent >= dead_after && self.probed_enough(*id, now)) || claimed {
                v.dead.push(*id);
            } else if silent >= suspect_after || self.claims.contains_key(id) {
                self.suspected.entry(*id).or_insert(now);
                v.suspected.push(*id);
            }
        }
        v
    }

    /// Whether `id`, watched since `since`, is a newcomer that gets the longer grace: it
    /// arrived within `grace` before the watch began, and was not heard from since (a
    /// newcomer heard from has its welcome).
    fn is_newcomer(&self, id: NodeId, since: Instant) -> bool {
        self.arrivals.get(&id).is_some_and(|t| {
            since.saturating_duration_since(*t) < self.grace
                && self.last_heard.get(&id).is_none_or(|h| h < t)
        })
    }

    /// Whether `id`, watched since `since`, is a member we met in our welcome within
    /// `grace` before the watch began and whose own heartbeat never came: it may not know
    /// of us (what others say of it does not tell).
    fn unknown_to(&self, id: NodeId, since: Instant) -> bool {
        self.met
            .get(&id)
            .is_some_and(|t| since.saturating_duration_since(*t) < self.grace)
    }

    /// How long a member met in our welcome, silent since `from`, may stay silent: the
    /// usual bound, but at least until `dead_after - suspect_after` after another member
    /// took our request to probe it; the grace if none did.
    fn met_dead_after(&self, id: NodeId, from: Instant) -> Duration {
        match self.relayed.get(&id) {
            Some(took) => {
                let relay_done = *took + (self.dead_after - self.suspect_after);
                self.dead_after
                    .max(relay_done.saturating_duration_since(from))
                    .min(self.grace)
            }
            None => self.grace,
        }
    }

    /// Whether `id` has been suspected, and so probed, long enough at `now`: for the
    /// probe window if a member took our request to probe it, for the untaken window (the
    /// time for a request to be taken) if none did. A node cut off from every member so
    /// waits no longer than it has to for answers that cannot come.
    fn probed_enough(&self, id: NodeId, now: Instant) -> bool {
        // One not suspected yet would be from now.
        let since = self.suspected.get(&id).copied().unwrap_or(now);
        let window = if self.probers_took.contains(&id) {
            self.probe_window
        } else {
            self.untaken_window
        };
        now.saturating_duration_since(since) >= window
    }

    /// A member acked our request to probe `id`, suspected: it is probing it for us.
    pub fn prober_took(&mut self, id: NodeId) {
        if self.suspected.contains_key(&id) {
            self.probers_took.insert(id);
        }
    }

    /// Sets the probe windows: the least time a suspected node is probed (directly and
    /// through other members) before its silence is taken as death, whatever the bounds
    /// say, once a member took our request to probe it (`taken`) and while none did
    /// (`untaken`). The node sets them from the round trips it measures (see
    /// `ring/probe.rs`).
    pub fn set_probe_windows(&mut self, taken: Duration, untaken: Duration) {
        self.probe_window = taken;
        self.untaken_window = untaken;
    }

    /// When the next watched node not yet suspected falls silent for `suspect_after`
    /// (counted from its last sign of life since watching began, or from then): the node
    /// checks then, not on its next heartbeat, which may come up to an interval later (a
    /// suspicion up to 400 ms after the last beat, and a crash found after 510 ms
    /// instead of 450). Newcomers and members met in our welcome are judged on the
    /// heartbeats, as their bounds are the longer ones.
    pub fn next_suspicion(&self) -> Option<Instant> {
        self.watched
            .iter()
            .filter(|(id, _)| !self.suspected.contains_key(id))
            .filter(|(id, since)| {
                !self.is_newcomer(**id, **since) && !self.unknown_to(**id, **since)
            })
            .map(|(id, since)| {
                let heard = self.last_heard.get(id).filter(|t| *t >= since);
                *heard.unwrap_or(since) + self.suspect_after
            })
            .min()
    }

    /// Whether `id` is currently suspected.
    pub fn is_suspected(&self, id: NodeId) -> bool {
        self.suspected.contains_key(&id)
    }

    /// Whether any watched node is suspected (the node then checks more often).
    pub fn any_suspected(&self) -> bool {
        !self.suspected.is_empty()
    }
}

#[cfg(test)]
mod tests;
