//! A voter taken out of the configuration to leave goes only once a majority of the room
//! after it has been told its removal committed: until told, the others need the
//! configuration before it to take over (see `take_over_shortfall`), so a leader that
//! went at once, or a member told before the others, could leave them waiting for good.

use super::*;

/// Whether `out` holds this node's own leave notice (its entry, offline, to a peer).
fn says_goodbye(out: &Out, me: NodeId) -> bool {
    out.sent.iter().any(|(_, p)| {
        matches!(p, Packet::Data { msg: Message::Members(m), .. }
            if m.iter().any(|e| e.id == me && e.presence == Presence::Offline))
    })
}

fn is_commit(m: &Message) -> bool {
    matches!(m, Message::Commit { .. })
}

fn is_proposal(m: &Message) -> bool {
    matches!(m, Message::Sequenced(_))
}

/// Alice leads bob and leaves: she takes herself out, bob acks her removal, and it
/// commits. She says goodbye only once bob has acked the commit notice: bob, the only
/// voter left, must know it, or he would need her answer to take over (a majority of
/// {alice, bob}) after she is gone.
#[test]
fn a_leaving_leader_goes_once_the_voters_after_it_are_told() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    n.handle_command(t0, WallMillis(1), Command::Leave);
    let out = drain_after_hold(&mut n, t0);
    let proposed = out.ids_to(addr(2), is_proposal);
    assert!(!proposed.is_empty(), "alice proposes her removal to bob");
    n.handle_datagram(t0, addr(2), &ack_of(LEADER, BOB, &proposed));
    let out = drain_after_hold(&mut n, t0);
    assert!(!n.room.voters().contains("alice"), "her removal committed");
    let notice = out.ids_to(addr(2), is_commit);
    assert!(!notice.is_empty(), "bob is told the commit: {:?}", out.sent);
    assert!(
        !says_goodbye(&out, LEADER),
        "alice went before bob was told her removal committed"
    );
    assert_eq!(*n.life.phase(), Phase::Leaving { notified: false });
    n.handle_datagram(t0, addr(2), &ack_of(LEADER, BOB, &notice));
    let out = drain_after_hold(&mut n, t0);
    assert!(
        says_goodbye(&out, LEADER),
        "bob was told; alice says goodbye: {:?}",
        out.sent
    );
}

/// Alice leads bob and carol; carol asks to leave. Her removal commits once bob acks it,
/// and bob is told; carol is told (and so goes) only after bob acked his notice.
#[test]
fn a_leaving_member_is_told_its_removal_after_a_majority_of_the_others() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    n.handle_datagram(t0, addr(3), &data(CAROL, 5000, Message::Leave));
    let out = drain_after_hold(&mut n, t0);
    let proposed = out.ids_to(addr(2), is_proposal);
    assert!(!proposed.is_empty(), "alice proposes carol's removal");
    let to_carol = out.ids_to(addr(3), |_| true);
    n.handle_datagram(t0, addr(3), &ack_of(LEADER, CAROL, &to_carol));
    n.handle_datagram(t0, addr(2), &ack_of(LEADER, BOB, &proposed));
    let out = drain_after_hold(&mut n, t0);
    assert!(
        !n.room.voters().contains("carol"),
        "carol's removal committed"
    );
    let to_bob = out.ids_to(addr(2), is_commit);
    assert!(!to_bob.is_empty(), "bob is told the commit");
    assert!(
        out.ids_to(addr(3), is_commit).is_empty(),
        "carol was told before bob: {:?}",
        out.sent
    );
    n.handle_datagram(t0, addr(2), &ack_of(LEADER, BOB, &to_bob));
    let out = drain_after_hold(&mut n, t0);
    assert!(
        !out.ids_to(addr(3), is_commit).is_empty(),
        "bob acked; carol is told now: {:?}",
        out.sent
    );
}
