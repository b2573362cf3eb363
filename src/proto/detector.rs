//! The failure detector for the ring predecessor.
//!
//! Every node heartbeats its successor, so each node is watched by one other: the node
//! after it. A watched node's heartbeats are its signs of life. Silent for
//! `suspect_after`, it is suspected (the watcher then probes it); silent for `dead_after`,
//! it is declared dead. A node that just became the watched one is judged by the same
//! bounds, counted from when watching began, unless it is a newcomer (it came online
//! less than `grace` before watching began, and may still be receiving its welcome): a
//! newcomer not yet heard from is judged only after the longer `grace`. It stops being a
//! newcomer once heard from (a heartbeat, perhaps before watching began) or once the
//! leader says it has its welcome and follows it (`Welcomed`).

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
    suspected: BTreeSet<NodeId>,
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
            suspected: BTreeSet::new(),
            claims: BTreeMap::new(),
            woke: None,
        }
    }

    /// Records a sign of life from `id`.
    pub fn heard(&mut self, id: NodeId, now: Instant) {
        self.last_heard.insert(id, now);
        self.suspected.remove(&id);
        self.claims.remove(&id);
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
            if !self.watched.contains_key(&id) && self.suspected.contains(&id) {
                self.lingering.insert(id, since);
            }
        }
        self.suspected
            .retain(|id| self.watched.contains_key(id) || self.lingering.contains_key(id));
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

    /// `id` is said to have its welcome before it arrived here: when it does (within
    /// `grace`), it is no newcomer.
    pub fn welcomed_early(&mut self, id: NodeId, now: Instant) {
        self.welcomed_early.insert(id, now);
    }

    /// `id` is known to have its welcome (the leader saw it acked, and a proposal too) at
    /// `now`: it is no
    /// longer a newcomer, and if watched and not heard from since, its silence counts
    /// from `now` by the usual bounds (its first heartbeat may be on its way).
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
    /// suspect_after` of it (a probe's round trip and a heartbeat or more); only a sign of
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
        self.suspected.insert(id);
        true
    }

    /// Forgets a node (it is gone).
    pub fn forget(&mut self, id: NodeId) {
        self.lingering.remove(&id);
        self.arrivals.remove(&id);
        self.welcomed_early.remove(&id);
        self.last_heard.remove(&id);
        self.suspected.remove(&id);
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
        self.claims.clear();
        self.woke = Some(now);
    }

    /// Judges the watched nodes at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        // An arrival matters while a watch that began within `grace` of it can last.
        let keep = self.grace * 2;
        self.arrivals
            .retain(|_, t| now.saturating_duration_since(*t) < keep);
        self.welcomed_early
            .retain(|_, t| now.saturating_duration_since(*t) < self.grace);
        let mut v = Verdict::default();
        let last_heard = &self.last_heard;
        let suspected = &mut self.suspected;
        self.lingering.retain(|id, since| {
            if !suspected.contains(id) {
                return false; // heard from since (which ends the suspicion)
            }
            let from = last_heard.get(id).copied().filter(|t| t >= since);
            if now.saturating_duration_since(from.unwrap_or(*since)) >= self.dead_after {
                v.dead.push(*id);
                suspected.remove(id);
                return false;
            }
            true
        });
        for (id, since) in &self.watched {
            let heard = self.last_heard.get(id).copied().filter(|t| t >= since);
            let newcomer = self.is_newcomer(*id, *since);
            let (silent, suspect_after, dead_after) = match heard {
                Some(t) => (
                    now.saturating_duration_since(t),
                    self.suspect_after,
                    self.dead_after,
                ),
                None if !newcomer => (
                    now.saturating_duration_since(*since),
                    self.suspect_after,
                    self.dead_after,
                ),
                None => (
                    now.saturating_duration_since(*since),
                    self.grace - (self.dead_after - self.suspect_after),
                    self.grace,
                ),
            };
            let claimed = self.claims.get(id).is_some_and(|c| {
                now.saturating_duration_since(*c) >= self.dead_after - self.suspect_after
            });
            if silent >= dead_after || claimed {
                v.dead.push(*id);
            } else if silent >= suspect_after || self.claims.contains_key(id) {
                self.suspected.insert(*id);
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

    /// Whether `id` is currently suspected.
    pub fn is_suspected(&self, id: NodeId) -> bool {
        self.suspected.contains(&id)
    }

    /// Whether any watched node is suspected (the node then checks more often).
    pub fn any_suspected(&self) -> bool {
        !self.suspected.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A detector with the default bounds, watching node 1, heard at the returned instant.
    fn watching_node_1() -> (Instant, Detector) {
        let t0 = Instant::now();
        let mut d = Detector::new(300 * MS, 450 * MS, 450 * MS);
        d.watch(&[NodeId(1)], t0);
        d.heard(NodeId(1), t0);
        (t0, d)
    }

    #[test]
    fn a_watcher_back_from_an_absence_judges_afresh() {
        let (t0, mut d) = watching_node_1();
        assert!(d.check(t0 + 320 * MS).suspected == vec![NodeId(1)]);
        // Asleep for two seconds: on waking, the silence it slept through counts for nothing.
        let woke = t0 + 2000 * MS;
        d.restart_watch(woke);
        assert!(!d.any_suspected());
        assert_eq!(d.check(woke + 100 * MS), Verdict::default());
        // From then on, silence counts as usual.
        assert_eq!(d.check(woke + 460 * MS).dead, vec![NodeId(1)]);
    }

    /// Back from an absence, a watcher hears its predecessor's backlog, then another
    /// member's word that it is dead: it is suspected at once and found dead
    /// `dead_after - suspect_after` later, the backlog notwithstanding.
    #[test]
    fn a_claim_makes_a_suspicion_that_only_a_later_sign_of_life_clears() {
        let (t0, mut d) = watching_node_1();
        let woke = t0 + 2000 * MS;
        d.restart_watch(woke);
        d.heard(NodeId(1), woke); // the backlog
        let said = woke + 50 * MS;
        assert!(d.claimed_dead(NodeId(1), said));
        assert_eq!(d.check(said).suspected, vec![NodeId(1)]);
        assert!(d.check(said + 140 * MS).dead.is_empty());
        assert_eq!(d.check(said + 150 * MS).dead, vec![NodeId(1)]);

        // Heard from after the word: its own count stands, and a second word (once per
        // absence) changes nothing.
        let (t0, mut d) = watching_node_1();
        d.restart_watch(t0);
        assert!(d.claimed_dead(NodeId(1), t0 + 10 * MS));
        d.heard(NodeId(1), t0 + 60 * MS);
        assert!(!d.any_suspected());
        assert!(!d.claimed_dead(NodeId(1), t0 + 70 * MS));
        assert_eq!(d.check(t0 + 300 * MS), Verdict::default());
        assert_eq!(d.check(t0 + 520 * MS).dead, vec![NodeId(1)]);
    }

    /// Without an absence of ours, or long after it, another member's word changes
    /// nothing: our own count stands.
    #[test]
    fn a_claim_counts_only_just_after_an_absence() {
        let (t0, mut d) = watching_node_1();
        assert!(!d.claimed_dead(NodeId(1), t0 + 10 * MS));
        assert_eq!(d.check(t0 + 200 * MS), Verdict::default());
        d.restart_watch(t0 + 300 * MS);
        assert!(!d.claimed_dead(NodeId(1), t0 + 300 * MS + CLAIM_WINDOW + MS));
        assert!(!d.any_suspected());
    }

    /// A newcomer not yet heard from keeps its grace against another member's word, and a
    /// node not watched is not judged on it.
    #[test]
    fn a_claim_does_not_cut_a_newcomers_grace() {
        let t0 = Instant::now();
        let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
        d.arrived(NodeId(1), t0);
        d.watch(&[NodeId(1)], t0);
        d.restart_watch(t0);
        assert!(!d.claimed_dead(NodeId(1), t0 + 10 * MS));
        assert!(!d.claimed_dead(NodeId(2), t0 + 10 * MS));
        assert_eq!(d.check(t0 + 600 * MS), Verdict::default());
    }

    #[test]
    fn silence_leads_to_suspicion_then_death() {
        let t0 = Instant::now();
        let mut d = Detector::new(300 * MS, 450 * MS, 450 * MS);
        d.watch(&[NodeId(1), NodeId(2)], t0);
        d.heard(NodeId(1), t0);
        d.heard(NodeId(2), t0 + 200 * MS);
        assert_eq!(d.check(t0 + 100 * MS), Verdict::default());
        let v = d.check(t0 + 320 * MS);
        assert_eq!(v.suspected, vec![NodeId(1)]);
        assert!(d.is_suspected(NodeId(1)));
        let v = d.check(t0 + 460 * MS);
        assert_eq!(v.dead, vec![NodeId(1)]);
        assert!(
            v.suspected.is_empty(),
            "2 was heard at 200: silent 260 ms only"
        );
    }

    #[test]
    fn a_sign_of_life_clears_suspicion() {
        let (t0, mut d) = watching_node_1();
        d.check(t0 + 350 * MS);
        d.heard(NodeId(1), t0 + 360 * MS);
        assert!(!d.any_suspected());
        assert_eq!(d.check(t0 + 500 * MS), Verdict::default());
    }

    #[test]
    fn a_newcomer_is_judged_after_the_grace_until_first_heard() {
        let t0 = Instant::now();
        let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
        d.heard(NodeId(5), t0);
        d.arrived(NodeId(5), t0 + 900 * MS);
        d.watch(&[NodeId(5)], t0 + 1000 * MS);
        assert_eq!(
            d.check(t0 + 1500 * MS),
            Verdict::default(),
            "old silence ignored"
        );
        assert_eq!(
            d.check(t0 + 3900 * MS).dead,
            vec![],
            "still within the grace"
        );
        assert_eq!(d.check(t0 + 4000 * MS).dead, vec![NodeId(5)]);
        // Once heard, the short bounds apply.
        let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
        d.arrived(NodeId(6), t0);
        d.watch(&[NodeId(6)], t0);
        d.heard(NodeId(6), t0 + 10 * MS);
        assert_eq!(d.check(t0 + 500 * MS).dead, vec![NodeId(6)]);
    }

    /// A member that was in the room long before it became the watched one (its
    /// successor died, say) gets no grace: the short bounds count from when watching
    /// began, so a second crash next to the first is found as fast as the first.
    #[test]
    fn an_established_member_newly_watched_gets_no_grace() {
        let t0 = Instant::now();
        let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
        d.arrived(NodeId(7), t0);
        d.watch(&[NodeId(7)], t0 + 5000 * MS);
        assert_eq!(d.check(t0 + 5200 * MS), Verdict::default());
        assert_eq!(d.check(t0 + 5310 * MS).suspected, vec![NodeId(7)]);
        assert_eq!(d.check(t0 + 5460 * MS).dead, vec![NodeId(7)]);
        // Heard from in time, it is not judged on the time before.
        let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
        d.watch(&[NodeId(8)], t0);
        d.heard(NodeId(8), t0 + 400 * MS);
        assert_eq!(d.check(t0 + 600 * MS), Verdict::default());
    }

    /// The leader's word that a newcomer has its welcome ends its grace: its silence
    /// counts by the short bounds from then (not from when watching began: its first
    /// heartbeat may be on its way).
    #[test]
    fn a_newcomer_said_welcomed_is_judged_by_the_short_bounds_from_then() {
        let t0 = Instant::now();
        let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
        d.arrived(NodeId(5), t0);
        d.watch(&[NodeId(5)], t0);
        assert_eq!(d.check(t0 + 600 * MS), Verdict::default(), "in its grace");
        d.welcomed(NodeId(5), t0 + 700 * MS);
        assert!(
            d.check(t0 + 1100 * MS).dead.is_empty(),
            "not judged on the time before"
        );
        assert_eq!(d.check(t0 + 1160 * MS).dead, vec![NodeId(5)]);
        // Said of a node that is not a newcomer, it changes nothing.
        let (t0, mut d) = watching_node_1();
        d.welcomed(NodeId(1), t0 + 400 * MS);
        assert_eq!(d.check(t0 + 460 * MS).dead, vec![NodeId(1)]);
    }

    /// A newcomer heard from after it arrived has its welcome, even if that heartbeat came
    /// before watching began (its watcher learned of it late): no grace.
    #[test]
    fn a_newcomer_heard_before_it_was_watched_gets_no_grace() {
        let t0 = Instant::now();
        let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
        d.arrived(NodeId(5), t0);
        d.heard(NodeId(5), t0 + 100 * MS);
        d.watch(&[NodeId(5)], t0 + 200 * MS);
        assert_eq!(d.check(t0 + 520 * MS).suspected, vec![NodeId(5)]);
        assert_eq!(d.check(t0 + 660 * MS).dead, vec![NodeId(5)]);
    }

    /// A suspected neighbour handed on (a member came back between the two) is still
    /// judged here: found dead when its silence reaches the death bound, unless it is
    /// heard from first.
    #[test]
    fn a_suspected_neighbour_handed_on_is_still_judged() {
        for answers in [false, true] {
            let (t0, mut d) = watching_node_1();
            assert_eq!(d.check(t0 + 320 * MS).suspected, vec![NodeId(1)]);
            d.watch(&[NodeId(2)], t0 + 330 * MS);
            d.heard(NodeId(2), t0 + 330 * MS);
            if answers {
                d.heard(NodeId(1), t0 + 400 * MS);
            }
            let v = d.check(t0 + 460 * MS);
            let dead = if answers { vec![] } else { vec![NodeId(1)] };
            assert_eq!(v.dead, dead, "answered: {answers}");
            assert_eq!(
                d.check(t0 + 2000 * MS).dead,
                vec![NodeId(2)],
                "judged once only"
            );
        }
        // One not suspected when handed on is not judged here any more.
        let (t0, mut d) = watching_node_1();
        d.watch(&[NodeId(2)], t0 + 100 * MS);
        d.heard(NodeId(2), t0 + 1000 * MS);
        assert!(d.check(t0 + 1000 * MS).dead.is_empty());
    }
}
