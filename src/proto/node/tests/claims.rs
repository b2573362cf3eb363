//! Claims about members (see `ring/members.rs`): stamps no later than their datagram, so a
//! member can always refute; a change to a member's presence or address taken only from
//! that member, the leader, or (for "offline") its watcher; anyone else's word checked.

use super::*;

const DAVE: NodeId = NodeId(400);
const ERIN: NodeId = NodeId(500);

/// Bob (port 2) in a room led by alice (1), with carol (3), dave (4) and erin (5). The
/// ring is alice → bob → carol → dave → erin → alice: carol's watcher is dave.
fn room_of_five(t0: Instant) -> Node {
    let more = vec![member(DAVE, "dave", 4), member(ERIN, "erin", 5)];
    follower_with(t0, more).0
}

/// `id`'s entry (named `name`, at `port`) as `by` wrote it at Lamport time `lamport`.
fn entry_of(
    id: NodeId,
    name: &str,
    port: u16,
    presence: Presence,
    lamport: u64,
    by: NodeId,
) -> Member {
    Member {
        presence,
        stamp: Stamp {
            lamport: Lamport(lamport),
            by,
        },
        ..member(id, name, port)
    }
}

fn members_from(from: NodeId, id: u64, list: Vec<Member>) -> Vec<u8> {
    data(from, id, Message::Members(list))
}

/// Probe heartbeats a node sent to `to` (everything else drained too).
fn probes_to(node: &mut Node, to: SocketAddr) -> usize {
    let mut n = 0;
    while let Some(t) = node.poll_transmit() {
        let env = decode(&t.bytes).expect("node sends valid datagrams");
        n += env
            .packets
            .iter()
            .filter(|p| t.to == to && matches!(p, Packet::Heartbeat(hb) if hb.probe))
            .count();
    }
    while node.poll_event().is_some() {}
    n
}

/// The attack of issue 17: carol marked offline with stamp (2^64-1, 2^64-1), which no
/// refutation can beat. A stamp later than the datagram that carries it is forged: the
/// datagram is dropped, whoever sends it (here even the leader).
#[test]
fn a_stamp_later_than_its_datagram_is_dropped() {
    let t0 = base_time();
    let mut n = follower(t0);
    let forged = entry_of(
        CAROL,
        "carol",
        3,
        Presence::Offline,
        u64::MAX,
        NodeId(u64::MAX),
    );
    n.handle_datagram(t0, addr(1), &members_from(LEADER, 5, vec![forged]));
    let out = drain(&mut n);
    assert!(out.sent.is_empty(), "not even acked: {:?}", out.sent);
    assert!(n.members().is_online(CAROL));
    assert_eq!(n.stats().dropped, 1);
}

/// The same about bob himself: before, he could never refute it (his clock saturates
/// at the forged time, and the tie goes to the larger writer id).
#[test]
fn a_member_can_always_refute_a_claim_about_itself() {
    let t0 = base_time();
    let mut n = follower(t0);
    let forged = entry_of(BOB, "bob", 2, Presence::Offline, u64::MAX, NodeId(u64::MAX));
    n.handle_datagram(t0, addr(1), &members_from(LEADER, 5, vec![forged]));
    drain(&mut n);
    assert_eq!(n.stats().dropped, 1);
    // The latest stamp an entry may carry, in a datagram at the latest time accepted:
    // taken, and refuted with a later one; bob's own datagrams are still in range.
    let limit = LamportClock::MAX_STAMP.0;
    let highest = entry_of(BOB, "bob", 2, Presence::Offline, limit, NodeId(u64::MAX));
    let bytes = encode(&Envelope {
        from: LEADER,
        lamport: LamportClock::MAX_ACCEPTED,
        packets: vec![Packet::Data {
            id: MsgId(6),
            msg: Message::Members(vec![highest.clone()]),
        }],
    })
    .unwrap();
    n.handle_datagram(t0, addr(1), &bytes);
    drain(&mut n);
    let me = n.members().get(BOB).cloned().expect("own entry");
    assert_eq!(me.presence, Presence::Online);
    assert!(me.stamp > highest.stamp, "{:?}", me.stamp);
    assert!(
        n.lamport() < LamportClock::MAX_ACCEPTED,
        "{:?}",
        n.lamport()
    );
    // Past the latest stamp: dropped.
    let beyond = entry_of(
        BOB,
        "bob",
        2,
        Presence::Offline,
        limit + 1,
        NodeId(u64::MAX),
    );
    let bytes = encode(&Envelope {
        from: LEADER,
        lamport: LamportClock::MAX_ACCEPTED,
        packets: vec![Packet::Data {
            id: MsgId(7),
            msg: Message::Members(vec![beyond]),
        }],
    })
    .unwrap();
    n.handle_datagram(t0, addr(1), &bytes);
    drain(&mut n);
    assert_eq!(n.stats().dropped, 2);
}

/// Erin (neither carol, nor the leader, nor carol's watcher) says carol is offline: bob
/// does not take it, probes carol, and watches her; carol answers, and stays online.
#[test]
fn a_third_partys_word_that_a_member_is_offline_is_checked() {
    let t0 = base_time();
    let mut n = room_of_five(t0);
    let claim = entry_of(CAROL, "carol", 3, Presence::Offline, 45, ERIN);
    n.handle_datagram(t0, addr(5), &members_from(ERIN, 1, vec![claim]));
    assert_eq!(probes_to(&mut n, addr(3)), 1, "carol is probed");
    assert!(n.members().is_online(CAROL), "not on erin's word");
    // Carol answers.
    let beat = datagram(
        CAROL,
        vec![Packet::Heartbeat(crate::wire::Heartbeat {
            epoch: n.epoch(),
            delivered: Seq(0),
            digest: 0,
            probe: false,
            unknown: false,
        })],
    );
    let t1 = t0 + Duration::from_millis(50);
    n.handle_datagram(t1, addr(3), &beat);
    n.handle_timeout(t0 + Duration::from_secs(2));
    drain(&mut n);
    assert!(n.members().is_online(CAROL), "she answered");
}

/// The control: carol is really gone. Bob, told by erin, watches her himself and declares
/// her dead once she stays silent past the death bound, with his own stamp, to everyone.
#[test]
fn a_third_partys_true_word_is_confirmed_by_silence() {
    let start = base_time();
    let mut n = room_of_five(start);
    // Past the newcomers' grace (bob's join timeout, long in these tests), with alice,
    // bob's predecessor, heard all along.
    let t0 = start + n.ctx.cfg.join_timeout * 3;
    let alive = |n: &mut Node, at: Instant| {
        let hb = crate::wire::Heartbeat {
            epoch: n.epoch(),
            delivered: Seq(0),
            digest: n.members().digest(),
            probe: false,
            unknown: false,
        };
        n.handle_datagram(at, addr(1), &datagram(LEADER, vec![Packet::Heartbeat(hb)]));
        n.handle_timeout(at);
        drain(n);
    };
    alive(&mut n, t0);
    let claim = entry_of(CAROL, "carol", 3, Presence::Offline, 45, ERIN);
    n.handle_datagram(t0, addr(5), &members_from(ERIN, 1, vec![claim]));
    drain(&mut n);
    assert!(n.members().is_online(CAROL));
    let mut declared = None;
    for ms in (100..=1000).step_by(100) {
        alive(&mut n, t0 + Duration::from_millis(ms));
        if !n.members().is_online(CAROL) {
            declared = Some(ms);
            break;
        }
    }
    let at = declared.expect("carol declared dead within a second");
    assert!(at >= 400, "not before the death bound: {at} ms");
    assert_eq!(n.members().get(CAROL).map(|m| m.stamp.by), Some(BOB));
}

/// Carol's watcher (dave, her ring successor) declaring her dead is taken at once, as
/// is carol's own leave and the leader's word.
#[test]
fn the_watcher_the_member_and_the_leader_are_taken_at_once() {
    let t0 = base_time();
    for (from, port) in [(DAVE, 4), (CAROL, 3), (LEADER, 1)] {
        let mut n = room_of_five(t0);
        let claim = entry_of(CAROL, "carol", 3, Presence::Offline, 45, from);
        n.handle_datagram(t0, addr(port), &members_from(from, 10, vec![claim]));
        drain(&mut n);
        assert!(!n.members().is_online(CAROL), "from {from}");
    }
}

/// Moving a member to another address (where its direct messages would go) or adding a
/// member nobody admitted: only the leader may (not even the member itself: a node
/// speaks from its address, and its own claim to be elsewhere would cut it off).
/// Bringing a departed member back online: the leader or the member itself.
#[test]
fn addresses_returns_and_new_members_need_the_leader_or_the_member() {
    let t0 = base_time();
    let moved = entry_of(CAROL, "carol", 66, Presence::Online, 45, ERIN);
    let mallory = entry_of(NodeId(900), "mallory", 9, Presence::Online, 45, ERIN);
    let mut n = room_of_five(t0);
    n.handle_datagram(
        t0,
        addr(5),
        &members_from(ERIN, 1, vec![moved.clone(), mallory.clone()]),
    );
    let mut own = moved.clone();
    own.stamp.by = CAROL;
    n.handle_datagram(t0, addr(3), &members_from(CAROL, 1, vec![own]));
    drain(&mut n);
    assert_eq!(n.members().get(CAROL).map(|m| m.addr), Some(addr(3)));
    assert!(n.members().get(NodeId(900)).is_none());
    // From the leader: taken.
    n.handle_datagram(t0, addr(1), &members_from(LEADER, 9, vec![moved, mallory]));
    drain(&mut n);
    assert_eq!(n.members().get(CAROL).map(|m| m.addr), Some(addr(66)));
    assert!(n.members().is_online(NodeId(900)));

    // Dave left; erin says he is back: not taken (dave is probed instead).
    let mut n = room_of_five(t0);
    let left = entry_of(DAVE, "dave", 4, Presence::Offline, 40, DAVE);
    n.handle_datagram(t0, addr(4), &members_from(DAVE, 1, vec![left]));
    drain(&mut n);
    let back = entry_of(DAVE, "dave", 4, Presence::Online, 45, ERIN);
    n.handle_datagram(t0, addr(5), &members_from(ERIN, 1, vec![back]));
    assert_eq!(probes_to(&mut n, addr(4)), 1);
    assert!(!n.members().is_online(DAVE));
}

/// Someone still holding an old report of bob's absence (older than bob's refutation,
/// which never reached it) shows it to bob: bob tells it his own entry.
#[test]
fn an_old_report_of_our_absence_is_answered_with_our_entry() {
    let t0 = base_time();
    let mut n = follower(t0);
    let old = entry_of(BOB, "bob", 2, Presence::Offline, 1, CAROL);
    n.handle_datagram(t0, addr(3), &members_from(CAROL, 1, vec![old]));
    let out = drain(&mut n);
    let own = n.members().get(BOB).cloned().expect("own entry");
    let told = out.messages_to(addr(3));
    assert!(
        told.iter()
            .any(|m| matches!(m, Message::Members(l) if l == &vec![own.clone()])),
        "{told:?}"
    );
}

/// A stamp beyond 2^62 (as far as a received time alone can push a clock) that a node
/// takes into its table moves its clock past it: every datagram of its own that relays
/// the entry is later than the stamp, so nobody drops it as forged. (Found by fuzzing:
/// a leader whose relays were all dropped, its members never told they were offline.)
#[test]
fn a_stamp_taken_is_one_the_node_can_relay() {
    let t0 = base_time();
    let mut n = follower(t0);
    let stamp = (1u64 << 62) + 1000;
    let gone = entry_of(CAROL, "carol", 3, Presence::Offline, stamp, LEADER);
    let bytes = encode(&Envelope {
        from: LEADER,
        lamport: LamportClock::MAX_ACCEPTED,
        packets: vec![Packet::Data {
            id: MsgId(7),
            msg: Message::Members(vec![gone]),
        }],
    })
    .unwrap();
    n.handle_datagram(t0, addr(1), &bytes);
    drain(&mut n);
    assert!(!n.members().is_online(CAROL));
    assert!(n.lamport().0 > stamp, "{:?}", n.lamport());
    assert!(n.lamport() < LamportClock::MAX_ACCEPTED);
}

/// Carol tells bob of a member he never heard of (fred, let in by alice while bob was cut
/// off, say): not taken on her word, but bob asks alice, his leader, with a probe that
/// carries his table's digest, so that she sends her table (anti-entropy); once a second
/// at most. (Before, bob held fred's earlier process offline for good: alice's table did
/// not change again to tell him, and she beats only to her successor. `sim_chaos` seed
/// 444 of the minority nemesis.)
#[test]
fn a_member_unknown_here_gets_the_leaders_table_asked_for() {
    let t0 = base_time();
    let mut n = room_of_five(t0);
    drain(&mut n);
    let fred = entry_of(NodeId(600), "fred", 6, Presence::Online, 20, LEADER);
    n.handle_datagram(t0, addr(3), &members_from(CAROL, 5, vec![fred.clone()]));
    assert!(
        n.members().get(NodeId(600)).is_none(),
        "not on carol's word"
    );
    assert_eq!(probes_to(&mut n, addr(1)), 1, "alice asked");
    let soon = t0 + Duration::from_millis(300);
    n.handle_datagram(soon, addr(4), &members_from(DAVE, 6, vec![fred.clone()]));
    assert_eq!(probes_to(&mut n, addr(1)), 0, "not again within a second");
    let later = t0 + Duration::from_millis(1100);
    n.handle_datagram(later, addr(3), &members_from(CAROL, 7, vec![fred.clone()]));
    assert_eq!(probes_to(&mut n, addr(1)), 1, "asked again after a second");
    // Alice's answer is her word: taken.
    n.handle_datagram(later, addr(1), &members_from(LEADER, 8, vec![fred]));
    drain(&mut n);
    assert!(n.members().is_online(NodeId(600)));
}
