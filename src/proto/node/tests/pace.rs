//! The slowest path kept between heartbeats: worked out again whenever a round trip is
//! sampled or the member table changes, so it is always what a walk over every member
//! would give.

use super::*;

/// The kept slowest path, checked against a walk over every online member.
fn slowest(n: &mut Node) -> (Duration, Duration) {
    let kept = n.slowest_path();
    assert_eq!(
        kept,
        n.walk_slowest_path(),
        "the kept slowest path is what every online member's path gives"
    );
    kept
}

#[test]
fn the_slowest_path_follows_each_sample_and_each_change_of_the_table() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    let first = slowest(&mut n);
    // Asked again with nothing changed: the same.
    assert_eq!(slowest(&mut n), first);

    // A room message bob acks 80 ms later: a slower path than any measured so far.
    let t1 = t0 + Duration::from_millis(10);
    n.handle_command(t1, WallMillis(1), Command::SendAll { text: "hi".into() });
    let out = drain(&mut n);
    let ids = out.ids_to(addr(2), |_| true);
    assert!(!ids.is_empty(), "the proposal went to bob");
    let t2 = t1 + Duration::from_millis(80);
    n.handle_datagram(t2, addr(2), &ack_of(n.id(), BOB, &ids));
    drain(&mut n);
    let slower = slowest(&mut n);
    assert!(
        slower.0 > first.0,
        "the 80 ms sample shows: {slower:?} after {first:?}"
    );

    // Bob offline: no online member is measured any more.
    n.handle_datagram(t2, addr(2), &bob_says(Presence::Offline, 1000));
    assert!(!n.members().is_online(BOB));
    drain(&mut n);
    assert_eq!(slowest(&mut n), (Duration::ZERO, Duration::ZERO));

    // Back online: his path counts again.
    n.handle_datagram(t2, addr(2), &bob_says(Presence::Online, 1001));
    drain(&mut n);
    assert_eq!(slowest(&mut n), slower);
}
