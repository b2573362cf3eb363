//! The detector's bounds, claims, newcomers and members met in a welcome.

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

/// A member met in our own welcome, never heard from, may not know of us: suspected by
/// the usual bound (so it is probed through others), but its silence alone is death only
/// after the grace.
#[test]
fn a_member_met_in_our_welcome_is_not_found_dead_on_our_word_alone() {
    let t0 = Instant::now();
    let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
    d.met(NodeId(7), t0);
    d.watch(&[NodeId(7)], t0);
    assert_eq!(d.check(t0 + 310 * MS).suspected, vec![NodeId(7)]);
    let v = d.check(t0 + 2900 * MS);
    assert!(v.dead.is_empty(), "no one else could check it: {v:?}");
    assert_eq!(d.check(t0 + 3010 * MS).dead, vec![NodeId(7)]);
}

/// Once another member took our request to probe it and it answered nobody within the
/// time a probe of our own would have had, it is found dead.
#[test]
fn a_member_met_in_our_welcome_is_dead_once_a_relay_could_not_reach_it() {
    let t0 = Instant::now();
    let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
    d.met(NodeId(7), t0);
    d.watch(&[NodeId(7)], t0);
    assert_eq!(d.check(t0 + 310 * MS).suspected, vec![NodeId(7)]);
    d.relay_took(NodeId(7), t0 + 380 * MS);
    let v = d.check(t0 + 520 * MS);
    assert!(v.dead.is_empty(), "the relay has 150 ms to reach it: {v:?}");
    assert_eq!(d.check(t0 + 531 * MS).dead, vec![NodeId(7)]);
}

/// Another member's word that it answered a probe is a sign of life, but not that it knows
/// of us: the next silence again needs a relay that took our request. A datagram of its
/// own within a session ends that: it is then judged as any member.
#[test]
fn a_member_met_in_our_welcome_is_judged_as_any_once_in_touch() {
    let t0 = Instant::now();
    let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
    d.met(NodeId(7), t0);
    d.watch(&[NodeId(7)], t0);
    d.relay_took(NodeId(7), t0 + 310 * MS);
    d.heard(NodeId(7), t0 + 400 * MS); // a relay's "it answered me"
    assert_eq!(d.check(t0 + 710 * MS).suspected, vec![NodeId(7)]);
    let v = d.check(t0 + 900 * MS);
    assert!(
        v.dead.is_empty(),
        "the relay's earlier yes does not count: {v:?}"
    );
    d.heard(NodeId(7), t0 + 1000 * MS);
    d.in_touch(NodeId(7));
    assert_eq!(d.check(t0 + 1310 * MS).suspected, vec![NodeId(7)]);
    assert_eq!(d.check(t0 + 1460 * MS).dead, vec![NodeId(7)]);
}

/// Handed on while suspected (a member came online between us), a member met in our
/// welcome keeps its rule: no relay said it probes it, so it is not dead before the grace.
#[test]
fn a_member_met_in_our_welcome_handed_on_keeps_its_rule() {
    let t0 = Instant::now();
    let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
    d.met(NodeId(7), t0);
    d.watch(&[NodeId(7)], t0);
    assert_eq!(d.check(t0 + 310 * MS).suspected, vec![NodeId(7)]);
    d.watch(&[NodeId(8)], t0 + 320 * MS);
    d.heard(NodeId(8), t0 + 320 * MS);
    let seven_dead = |v: Verdict| v.dead.contains(&NodeId(7));
    d.heard(NodeId(8), t0 + 990 * MS);
    assert!(!seven_dead(d.check(t0 + 1000 * MS)), "lingering, still met");
    d.relay_took(NodeId(7), t0 + 1000 * MS);
    assert!(!seven_dead(d.check(t0 + 1140 * MS)));
    assert!(seven_dead(d.check(t0 + 1160 * MS)));
}

/// A relay's word from before this node's absence counts for nothing after it: the
/// member is judged afresh, and needs a relay again.
#[test]
fn a_relays_word_does_not_outlive_an_absence() {
    let t0 = Instant::now();
    let mut d = Detector::new(300 * MS, 450 * MS, 3000 * MS);
    d.met(NodeId(7), t0);
    d.watch(&[NodeId(7)], t0);
    d.relay_took(NodeId(7), t0 + 310 * MS);
    d.restart_watch(t0 + 2000 * MS);
    let v = d.check(t0 + 2500 * MS);
    assert!(v.dead.is_empty(), "no relay since the wake: {v:?}");
    assert_eq!(v.suspected, vec![NodeId(7)]);
}

/// On a slow path the probe window holds the verdict back: a predecessor suspected at
/// 300 ms is still probed at 450 ms, and found dead only once suspected for the whole
/// window; a sign of life within it ends the suspicion. A window shorter than
/// `dead_after - suspect_after` (a LAN) changes nothing.
#[test]
fn the_probe_window_holds_a_verdict_back_until_probes_could_answer() {
    let (t0, mut d) = watching_node_1();
    d.set_probe_windows(400 * MS, 200 * MS);
    assert_eq!(d.check(t0 + 300 * MS).suspected, vec![NodeId(1)]);
    d.prober_took(NodeId(1));
    assert!(d.check(t0 + 460 * MS).dead.is_empty(), "within the window");
    assert!(d.check(t0 + 690 * MS).dead.is_empty(), "within the window");
    assert_eq!(d.check(t0 + 700 * MS).dead, vec![NodeId(1)]);

    // An indirect answer within the window: alive, judged afresh from it.
    let (t0, mut d) = watching_node_1();
    d.set_probe_windows(400 * MS, 200 * MS);
    d.check(t0 + 300 * MS);
    d.heard(NodeId(1), t0 + 650 * MS);
    assert_eq!(d.check(t0 + 700 * MS), Verdict::default());

    // Silence already past `dead_after` when first judged: suspected then, dead a
    // window later.
    let (t0, mut d) = watching_node_1();
    d.set_probe_windows(200 * MS, 100 * MS);
    let first = t0 + 500 * MS;
    assert_eq!(d.check(first).suspected, vec![NodeId(1)]);
    d.prober_took(NodeId(1));
    assert!(d.check(first + 190 * MS).dead.is_empty());
    assert_eq!(d.check(first + 200 * MS).dead, vec![NodeId(1)]);

    // A short window: the usual bounds.
    let (t0, mut d) = watching_node_1();
    d.set_probe_windows(60 * MS, 30 * MS);
    assert_eq!(d.check(t0 + 300 * MS).suspected, vec![NodeId(1)]);
    assert_eq!(d.check(t0 + 450 * MS).dead, vec![NodeId(1)]);
}

/// Nobody took our request to probe (we are cut off, say): the verdict waits the untaken
/// window (here half), not the whole of it. Taken, it waits the whole window.
#[test]
fn a_request_nobody_took_holds_the_verdict_back_less_long() {
    let (t0, mut d) = watching_node_1();
    d.set_probe_windows(600 * MS, 300 * MS);
    assert_eq!(d.check(t0 + 300 * MS).suspected, vec![NodeId(1)]);
    assert!(d.check(t0 + 590 * MS).dead.is_empty());
    assert_eq!(d.check(t0 + 600 * MS).dead, vec![NodeId(1)]);

    let (t0, mut d) = watching_node_1();
    d.set_probe_windows(600 * MS, 300 * MS);
    d.prober_took(NodeId(1)); // not suspected yet: nothing to take
    assert_eq!(d.check(t0 + 300 * MS).suspected, vec![NodeId(1)]);
    d.prober_took(NodeId(1));
    assert!(d.check(t0 + 890 * MS).dead.is_empty());
    assert_eq!(d.check(t0 + 900 * MS).dead, vec![NodeId(1)]);
}

/// The next suspicion is due `suspect_after` after the last sign of life of a watched
/// node heard since watching began, or after watching began; a node already suspected
/// is left to the probes.
#[test]
fn the_next_suspicion_is_due_a_suspicion_bound_after_the_last_sign_of_life() {
    let (t0, mut d) = watching_node_1();
    assert_eq!(d.next_suspicion(), Some(t0 + 300 * MS));
    d.heard(NodeId(1), t0 + 80 * MS);
    assert_eq!(d.next_suspicion(), Some(t0 + 380 * MS));
    // Checked at that instant, not a heartbeat later: suspected exactly then.
    assert_eq!(d.check(t0 + 379 * MS), Verdict::default());
    assert_eq!(d.check(t0 + 380 * MS).suspected, vec![NodeId(1)]);
    assert_eq!(d.next_suspicion(), None, "already suspected");
    // A second neighbour, watched from later on: counted from then.
    d.watch(&[NodeId(1), NodeId(2)], t0 + 400 * MS);
    d.heard(NodeId(2), t0 + 390 * MS);
    assert_eq!(
        d.next_suspicion(),
        Some(t0 + 700 * MS),
        "heard only before watching"
    );
    d.heard(NodeId(2), t0 + 410 * MS);
    assert_eq!(d.next_suspicion(), Some(t0 + 710 * MS));
}
