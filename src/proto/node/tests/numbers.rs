//! A seal proves who wrote a message, not the number it is shown at: a member takes a
//! committed copy only from the leader, from the member it asked for that number, or, as
//! a learner, from its own relay. A heartbeat's claim that the room showed more, or a
//! filler ahead of a gap, makes a member ask; it does not let anyone answer.

use super::relays::bob_in_large_room;
use super::*;
use crate::proto::node::room::COMMITTED_TERM;
use crate::wire::Heartbeat;

/// `from` (id, port) says in a heartbeat that the room showed up to #5.
fn claims_five(n: &mut Node, t0: Instant, (id, port): (NodeId, u16)) {
    let hb = Heartbeat {
        epoch: n.epoch(),
        digest: n.members().digest(),
        delivered: Seq(5),
        probe: false,
    };
    n.handle_datagram(t0, addr(port), &datagram(id, vec![Packet::Heartbeat(hb)]));
    drain(n);
}

/// The numbers `n` shows when `from` (id, port) sends it carol's genuine #5 put at #1.
fn shows_relabelled(n: &mut Node, t0: Instant, (id, port): (NodeId, u16), msg: u64) -> Vec<u64> {
    let mut e = ChatEntry {
        term: COMMITTED_TERM,
        ..entry(5, CAROL, "carol", 1)
    };
    e.seq = Seq(1);
    n.handle_datagram(t0, addr(port), &data(id, msg, Message::Sequenced(e)));
    room_seqs(&drain(n))
}

/// Carol's heartbeat says the room showed up to #5: bob, a voter of a small room, asks
/// the leader, and does not take carol's #5 put at #1.
#[test]
fn a_heartbeats_claim_lets_no_member_choose_a_number() {
    let t0 = base_time();
    let mut n = follower(t0);
    claims_five(&mut n, t0, (CAROL, 3));
    let shown = shows_relabelled(&mut n, t0, (CAROL, 3), 1);
    assert!(shown.is_empty(), "carol put her #5 at #1: {shown:?}");
    // The leader's own #1 is still shown.
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, Message::Sequenced(entry(1, LEADER, "alice", 1))),
    );
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, commit(1)));
    assert_eq!(room_seqs(&drain(&mut n)), [1]);
}

/// In a large room, m9 (a learner, not bob's relay) claims #5 and puts carol's #5 at #1:
/// bob, a learner, does not take it.
#[test]
fn a_learner_takes_no_number_from_a_member_that_is_not_its_relay() {
    let t0 = base_time();
    let mut n = bob_in_large_room(t0, &[0, 2, 3, 4, 5, 6, 7]);
    assert!(n.fed_by_relay(), "bob is a learner");
    claims_five(&mut n, t0, (NodeId(900), 9));
    let shown = shows_relabelled(&mut n, t0, (NodeId(900), 9), 1);
    assert!(shown.is_empty(), "m9 put carol's #5 at #1: {shown:?}");
}

/// The leader's filler for #3 comes ahead of the relayed #1 and #2: the gap it opens is
/// fetched, not filled by m9's copy.
#[test]
fn a_filler_ahead_opens_no_gap_to_another_member() {
    let t0 = base_time();
    let mut n = bob_in_large_room(t0, &[0, 2, 3, 4, 5, 6, 7]);
    let filler = ChatEntry {
        term: COMMITTED_TERM,
        ..ChatEntry::filler(Seq(3))
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 10, Message::Sequenced(filler)));
    drain(&mut n);
    let shown = shows_relabelled(&mut n, t0, (NodeId(900), 9), 1);
    assert!(shown.is_empty(), "m9 put carol's #5 at #1: {shown:?}");
}

/// Bob, behind, asks the leader first; the leader acks and answers nothing, so a repair
/// interval later bob asks carol. Returns that time and the ranges bob asked carol for.
pub(super) fn asks_carol_once_the_leader_is_silent(
    n: &mut Node,
    t0: Instant,
) -> (Instant, Vec<(Seq, Seq)>) {
    n.handle_timeout(t0 + Duration::from_millis(400));
    let out = drain(n);
    let ids = out.ids_to(addr(1), |_| true);
    n.handle_datagram(t0, addr(1), &ack_of(n.id(), LEADER, &ids));
    let t1 = t0 + Duration::from_millis(1300);
    n.handle_timeout(t1);
    let asked = drain(n)
        .messages_to(addr(3))
        .iter()
        .filter_map(|m| match m {
            Message::Fetch { from, to } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    (t1, asked)
}

/// Bob asked carol for #1 up to #5 (the leader did not answer): her copies are taken.
/// The member asked is taken at its word for the numbers it was asked for (see the
/// README's "Who wrote it").
#[test]
fn the_member_asked_fills_the_gap() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, commit(5)));
    drain(&mut n);
    let (t1, asked) = asks_carol_once_the_leader_is_silent(&mut n, t0);
    assert_eq!(asked, [(Seq(1), Seq(5))], "bob asks carol for #1..=#5");
    for seq in (1..=5).rev() {
        let copy = ChatEntry {
            term: COMMITTED_TERM,
            ..entry(seq, CAROL, "carol", seq)
        };
        n.handle_datagram(t1, addr(3), &data(CAROL, seq, Message::Sequenced(copy)));
    }
    assert_eq!(room_seqs(&drain(&mut n)), [1, 2, 3, 4, 5]);
}

/// Carol claims #5 (the room is at #0), again at every heartbeat for two seconds, and
/// bob, the leader having nothing, would ask the members in turn, carol among them.
/// Returns the ranges bob asked carol for (none: the leader alone is asked for what only
/// a claim says), with the time.
fn bob_after_carols_claims(n: &mut Node, t0: Instant) -> (Instant, Vec<(Seq, Seq)>) {
    let mut t = t0;
    let mut asked_carol = Vec::new();
    let mut asked_leader = 0;
    for _ in 0..20 {
        claims_five(n, t, (CAROL, 3));
        t += Duration::from_millis(100);
        n.handle_timeout(t);
        let out = drain(n);
        let to_leader = out.ids_to(addr(1), |_| true);
        asked_leader += out
            .messages_to(addr(1))
            .iter()
            .filter(|m| matches!(m, Message::Fetch { .. }))
            .count();
        if !to_leader.is_empty() {
            n.handle_datagram(t, addr(1), &ack_of(n.id(), LEADER, &to_leader));
        }
        asked_carol.extend(out.messages_to(addr(3)).iter().filter_map(|m| match m {
            Message::Fetch { from, to } => Some((*from, *to)),
            _ => None,
        }));
    }
    assert!(
        asked_leader > 0,
        "the leader is asked for what carol claimed"
    );
    (t, asked_carol)
}

/// A claim lets the claimant choose no number either: bob asks the leader, never carol,
/// and carol's message put at #1, sent as if asked, is not taken. The leader's real #1
/// is then shown at #1.
#[test]
fn a_claim_gets_the_claimant_asked_for_nothing() {
    let t0 = base_time();
    let mut n = follower(t0);
    let (t, asked) = bob_after_carols_claims(&mut n, t0);
    assert!(asked.is_empty(), "bob asked carol for {asked:?}");
    let shown = shows_relabelled(&mut n, t, (CAROL, 3), 1);
    assert!(shown.is_empty(), "carol put her #5 at #1: {shown:?}");
    n.handle_datagram(
        t,
        addr(1),
        &data(LEADER, 2, Message::Sequenced(entry(1, LEADER, "alice", 1))),
    );
    n.handle_datagram(t, addr(1), &data(LEADER, 3, commit(1)));
    assert_eq!(room_seqs(&drain(&mut n)), [1]);
}

/// Even asked, a member is taken at its word only up to what the leader said is
/// committed: bob, told #1 to #3 are and asking carol for them, goes on to ask her for
/// #4 and #5, which only her heartbeat claimed, and does not take her copy of #4.
#[test]
fn the_member_asked_is_taken_only_up_to_what_the_leader_vouched_for() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, commit(3)));
    drain(&mut n);
    claims_five(&mut n, t0, (CAROL, 3));
    let (t1, asked) = asks_carol_once_the_leader_is_silent(&mut n, t0);
    assert_eq!(asked, [(Seq(1), Seq(3))], "bob asks carol for #1..=#3");
    let copy = |seq| ChatEntry {
        term: COMMITTED_TERM,
        ..entry(seq, CAROL, "carol", seq)
    };
    for seq in 1..=3 {
        n.handle_datagram(
            t1,
            addr(3),
            &data(CAROL, seq, Message::Sequenced(copy(seq))),
        );
    }
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), [1, 2, 3]);
    n.handle_datagram(t1, addr(3), &data(CAROL, 4, Message::Sequenced(copy(4))));
    let shown = room_seqs(&drain(&mut n));
    assert!(shown.is_empty(), "#4 taken on carol's word: {shown:?}");
}

/// A gap before a proposal the leader sent (not committed yet, so no member's copy of
/// it is taken) is asked of the leader at every repair, however long it stays silent:
/// a claim is dropped after one ask, a gap never is.
#[test]
fn a_gap_before_a_proposal_is_asked_of_the_leader_until_filled() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, Message::Sequenced(entry(3, LEADER, "alice", 3))),
    );
    drain(&mut n);
    let mut asks = 0;
    let mut t = t0;
    for _ in 0..40 {
        // Both alive, saying nothing about numbers.
        for (id, port) in [(LEADER, 1), (CAROL, 3)] {
            let hb = Heartbeat {
                epoch: n.epoch(),
                digest: n.members().digest(),
                delivered: Seq(0),
                probe: false,
            };
            n.handle_datagram(t, addr(port), &datagram(id, vec![Packet::Heartbeat(hb)]));
        }
        t += Duration::from_millis(100);
        n.handle_timeout(t);
        let out = drain(&mut n);
        asks += out
            .messages_to(addr(1))
            .iter()
            .filter(|m| matches!(m, Message::Fetch { from, .. } if *from == Seq(1)))
            .count();
        assert!(
            out.messages_to(addr(3))
                .iter()
                .all(|m| !matches!(m, Message::Fetch { .. })),
            "carol asked for what only the leader may fill"
        );
        let ids = out.ids_to(addr(1), |_| true);
        n.handle_datagram(t, addr(1), &ack_of(n.id(), LEADER, &ids));
        n.handle_datagram(
            t,
            addr(3),
            &ack_of(n.id(), CAROL, &out.ids_to(addr(3), |_| true)),
        );
    }
    assert!(asks >= 3, "the leader was asked {asks} times in 4 s");
}

/// A welcome says the room goes on from #6 and that #3 on wait for a majority: bob asks
/// carol for #1 to #5 (the leader silent) and takes her word for #1 and #2 only, the
/// committed ones; #3, which the leader proposed and bob holds, stays the leader's.
#[test]
fn the_member_asked_is_not_taken_at_its_word_for_what_a_welcome_left_pending() {
    let t0 = base_time();
    let (mut n, _) = follower_welcomed_as(t0, |w| {
        w.next_seq = Seq(6);
        w.pending_from = Seq(3);
    });
    let (t1, asked) = asks_carol_once_the_leader_is_silent(&mut n, t0);
    assert_eq!(asked, [(Seq(1), Seq(5))], "bob asks carol for #1..=#5");
    n.handle_datagram(
        t1,
        addr(1),
        &data(LEADER, 2, Message::Sequenced(entry(3, LEADER, "alice", 1))),
    );
    drain(&mut n);
    for seq in 1..=5 {
        let copy = ChatEntry {
            term: COMMITTED_TERM,
            ..entry(seq, CAROL, "carol", seq)
        };
        n.handle_datagram(t1, addr(3), &data(CAROL, seq, Message::Sequenced(copy)));
    }
    assert_eq!(
        room_seqs(&drain(&mut n)),
        [1, 2],
        "carol's word taken past #2"
    );
}
