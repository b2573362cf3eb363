//! A node's own entry in the member table: whose version it holds, and when it speaks up.

use super::*;

/// Passes datagrams between `nodes` (node i listens at port i + 1) at `now` until none
/// is left in flight.
pub(super) fn exchange(nodes: &mut [&mut Node], now: Instant) {
    for _ in 0..100 {
        let mut moved = false;
        for i in 0..nodes.len() {
            while let Some(t) = nodes[i].poll_transmit() {
                moved = true;
                let to = usize::from(t.to.port()) - 1;
                if let Some(dest) = nodes.get_mut(to) {
                    dest.handle_datagram(now, addr(i as u16 + 1), &t.bytes);
                }
            }
        }
        if !moved {
            return;
        }
    }
    panic!("the nodes kept talking");
}

/// The leader's version of bob's entry, newer than the fixture's, in `presence`.
fn bob_by_leader(n: &Node, presence: Presence, lamport: u64) -> Member {
    Member {
        presence,
        ..bob_as_written_by_leader(n, lamport)
    }
}

/// Asserts that `me` was sent to alice and carol.
fn told_everyone(out: &Out, me: &Member) {
    for peer in [addr(1), addr(3)] {
        assert!(
            out.messages_to(peer)
                .contains(&&Message::Members(vec![me.clone()])),
            "{peer} is told: {:?}",
            out.sent
        );
    }
}

/// A newcomer keeps the entry its leader wrote for it, so the two tables are the same
/// (equal digests: their heartbeats start no table pushes) and nobody needs telling.
#[test]
fn a_newcomer_holds_the_same_table_as_its_leader() {
    let t0 = base_time();
    let mut alice = leader(t0);
    let mut cfg = NodeConfig::new("bob", addr(2), Some(addr(1)));
    cfg.identity = [BOB.0 as u8; 32];
    let mut bob = Node::new(cfg, BOB, t0);
    exchange(&mut [&mut alice, &mut bob], t0);
    assert!(bob.in_ring(), "bob joined");
    assert_eq!(
        bob.members().get(BOB),
        alice.members().get(BOB),
        "bob holds alice's version of its entry"
    );
    assert_eq!(bob.members().digest(), alice.members().digest());
}

/// A newer "online" version of our entry from someone else is taken quietly; a newer
/// "offline" one is refuted with a newer entry of our own, sent to everyone.
#[test]
fn a_newer_own_entry_is_taken_if_online_and_refuted_if_offline() {
    let t0 = base_time();
    let mut n = follower(t0);
    let online = bob_by_leader(&n, Presence::Online, 40);
    let members = Message::Members(vec![online.clone()]);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, members));
    let out = drain(&mut n);
    assert!(out.messages_to(addr(1)).is_empty(), "{:?}", out.sent);
    assert!(out.messages_to(addr(3)).is_empty(), "{:?}", out.sent);
    assert_eq!(n.members().get(BOB), Some(&online));

    // (Stamped before the datagram's own Lamport time, 50, as any real entry is.)
    let offline = bob_by_leader(&n, Presence::Offline, 45);
    let members = Message::Members(vec![offline.clone()]);
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, members));
    let out = drain(&mut n);
    let me = n.members().get(BOB).cloned().expect("own entry");
    assert_eq!(me.presence, Presence::Online);
    assert!(me.stamp > offline.stamp && me.stamp.by == BOB);
    told_everyone(&out, &me);
}

/// A welcome whose entry for us is older than ours (we wrote "offline" when we left, and
/// the leader never heard it) makes us write a newer "online" and tell everyone.
#[test]
fn a_stale_own_entry_in_a_welcome_is_overwritten_and_announced() {
    let t0 = base_time();
    let mut n = joining_bob(t0);
    let stale = bob_as_written_by_leader(&n, 0);
    let w = welcome_for_bob(stale.clone());
    n.handle_datagram(t0, addr(1), &data(LEADER, 1, Message::Welcome(w)));
    let out = drain(&mut n);
    let me = n.members().get(BOB).cloned().expect("own entry");
    assert!(me.stamp > stale.stamp && me.presence == Presence::Online);
    told_everyone(&out, &me);
}

/// A member back online (it was paused, or cut off) is sent the leader's whole table:
/// it may have missed members let in meanwhile, which only the leader's word adds. The
/// leader's own entry comes first, newly stamped.
#[test]
fn a_member_back_online_is_sent_the_leaders_table() {
    let t0 = base_time();
    let mut n = super::commit::leader_of_five(t0);
    n.handle_datagram(t0, addr(2), &bob_says(Presence::Offline, 1000));
    assert!(!n.members().is_online(BOB));
    drain(&mut n);
    n.handle_datagram(t0, addr(2), &bob_says(Presence::Online, 1001));
    let out = drain(&mut n);
    let told: BTreeSet<NodeId> = out
        .messages_to(addr(2))
        .into_iter()
        .filter_map(|m| match m {
            Message::Members(list) => Some(list.iter().map(|m| m.id)),
            _ => None,
        })
        .flatten()
        .collect();
    let table: BTreeSet<NodeId> = n.members().entries().map(|m| m.id).collect();
    assert_eq!(told, table, "bob is told every entry of the leader's table");
    // Alice's own entry first, stamped after bob's word: a verdict of her death bob made
    // while away gives way before he takes in the rest.
    let first = out
        .messages_to(addr(2))
        .into_iter()
        .find(|m| matches!(m, Message::Members(_)));
    match first {
        Some(Message::Members(list)) => {
            assert_eq!(list.iter().map(|m| m.id).collect::<Vec<_>>(), vec![LEADER]);
            assert!(list[0].stamp.lamport > Lamport(1001), "{:?}", list[0].stamp);
        }
        other => panic!("alice's own entry comes first: {other:?}"),
    }
}

/// The members' ids `out` told `to` of in tables.
fn told_of(out: &Out, to: SocketAddr) -> BTreeSet<NodeId> {
    out.messages_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Message::Members(list) => Some(list.iter().map(|m| m.id).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Bob back online twice within the push limit, frank let in while he was away the
/// second time: the second table is not skipped but owed, and sent once the limit
/// allows, so bob learns of frank (only the leader's word adds a member).
#[test]
fn a_member_back_twice_within_the_limit_is_still_told_of_a_newcomer() {
    let t0 = base_time();
    let mut n = super::commit::leader_of_five(t0);
    n.handle_datagram(t0, addr(2), &bob_says(Presence::Offline, 1000));
    n.handle_datagram(t0, addr(2), &bob_says(Presence::Online, 1001));
    drain(&mut n);
    let t1 = t0 + Duration::from_millis(200);
    n.handle_datagram(t1, addr(2), &bob_says(Presence::Offline, 1002));
    drain(&mut n);
    let frank = NodeId(600);
    let key = identity(frank.0 as u8);
    join_as(&mut n, t1, (frank, 6, "frank"), &key, &key);
    assert!(n.members().is_online(frank));
    let t2 = t0 + Duration::from_millis(600);
    n.handle_datagram(t2, addr(2), &bob_says(Presence::Online, 1003));
    let mut told = told_of(&drain(&mut n), addr(2));
    // Heartbeat rounds until a second past the first push.
    let mut t = t2;
    while t < t0 + Duration::from_millis(1500) {
        t += Duration::from_millis(100);
        n.handle_timeout(t);
        told.extend(told_of(&drain(&mut n), addr(2)));
    }
    assert!(
        told.contains(&frank),
        "bob is never told of frank: {told:?}"
    );
}

/// The leader's table names an earlier process of bob's at bob's own address (a run of
/// his that crashed, which the leader has not dropped yet): bob does not take it in.
/// Before, he held it online for good beside himself, and nobody watched it (`sim_chaos`
/// majority seed 30908).
#[test]
fn an_earlier_process_at_our_own_address_is_not_taken_in() {
    let t0 = base_time();
    let mut n = follower(t0);
    let mut earlier = bob_as_written_by_leader(&n, 40);
    earlier.id = NodeId(201);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, Message::Members(vec![earlier])),
    );
    drain(&mut n);
    only_bobs_own_process(&n);
}

/// The same in a welcome: an earlier process of bob's at his address, in the leader's
/// table, is not taken into his.
#[test]
fn an_earlier_process_at_our_own_address_in_a_welcome_is_not_taken_in() {
    let t0 = base_time();
    let (n, _) = welcomed_as(t0, |w| {
        let mut earlier = w.members[1].clone();
        earlier.id = NodeId(201);
        w.members.push(earlier);
    });
    only_bobs_own_process(&n);
}

/// Bob's table holds one process of his: his own.
#[track_caller]
fn only_bobs_own_process(n: &Node) {
    let bobs: Vec<NodeId> = n
        .members()
        .entries()
        .filter(|m| m.name == "bob")
        .map(|m| m.id)
        .collect();
    assert_eq!(bobs, vec![BOB], "only bob's own process is in his table");
}
