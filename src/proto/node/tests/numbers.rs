//! A seal proves who wrote a message, not the number it is shown at: a member takes a
//! committed copy only from the leader, from the member it asked for that number, or, as
//! a learner, from its own relay. A heartbeat's claim that the room showed more, or a
//! filler ahead of a gap, makes a member ask; it does not let anyone answer.

use super::relays::bob_in_large_room;
use super::*;
use crate::proto::node::room::COMMITTED_TERM;
use crate::wire::Heartbeat;

/// The numbers `n` shows when the leader sends its own #1 and says it is committed.
fn leaders_first_shown(n: &mut Node, t: Instant) -> Vec<u64> {
    let first = Message::Sequenced(entry(1, LEADER, "alice", 1));
    n.handle_datagram(t, addr(1), &data(LEADER, 2, first));
    n.handle_datagram(t, addr(1), &data(LEADER, 3, commit(1)));
    room_seqs(&drain(n))
}

/// `from` (id, port) says in a heartbeat that the room showed up to #5.
fn claims_five(n: &mut Node, t0: Instant, (id, port): (NodeId, u16)) {
    let hb = Heartbeat {
        epoch: n.epoch(),
        digest: n.members().digest(),
        delivered: Seq(5),
        probe: false,
        unknown: false,
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
    assert_eq!(leaders_first_shown(&mut n, t0), [1]);
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

/// Dave, a fourth member, at port 4.
const DAVE: NodeId = NodeId(400);

/// Bob's repairs for `steps` heartbeat intervals: the leader and the `members` (id,
/// port) heartbeat, saying they showed up to `claim`; the leader answers no fetch (it
/// acks them), each member answers every fetch with what `answer` gives for it. Returns
/// the numbers shown, the fetches the leader got, and those each member got.
fn repairs(
    n: &mut Node,
    t0: Instant,
    steps: usize,
    members: &[(NodeId, u16)],
    claim: u64,
    answer: impl Fn(NodeId, Seq, Seq) -> Vec<ChatEntry>,
) -> (Instant, Vec<u64>, usize, Vec<usize>) {
    let mut t = t0;
    let (mut shown, mut to_leader, mut to_members) = (vec![], 0, vec![0; members.len()]);
    let mut id = 1000;
    for _ in 0..steps {
        for &(who, port) in [(LEADER, 1)].iter().chain(members) {
            let hb = Heartbeat {
                epoch: n.epoch(),
                digest: n.members().digest(),
                delivered: Seq(if who == LEADER { 0 } else { claim }),
                probe: false,
                unknown: false,
            };
            n.handle_datagram(t, addr(port), &datagram(who, vec![Packet::Heartbeat(hb)]));
        }
        t += Duration::from_millis(100);
        n.handle_timeout(t);
        let out = drain(n);
        shown.extend(room_seqs(&out));
        let fetch = |m: &&&Message| matches!(m, Message::Fetch { .. });
        to_leader += out.messages_to(addr(1)).iter().filter(fetch).count();
        n.handle_datagram(
            t,
            addr(1),
            &ack_of(n.id(), LEADER, &out.ids_to(addr(1), |_| true)),
        );
        for (k, &(who, port)) in members.iter().enumerate() {
            for m in out.messages_to(addr(port)) {
                if let Message::Fetch { from, to } = m {
                    to_members[k] += 1;
                    for e in answer(who, *from, *to) {
                        id += 1;
                        n.handle_datagram(t, addr(port), &data(who, id, Message::Sequenced(e)));
                    }
                }
            }
            n.handle_datagram(
                t,
                addr(port),
                &ack_of(n.id(), who, &out.ids_to(addr(port), |_| true)),
            );
        }
        shown.extend(room_seqs(&drain(n)));
    }
    (t, shown, to_leader, to_members)
}

/// Carol's genuine messages #1 to #`last`, committed, as a member's fetch answer has them.
fn carols_copies(from: Seq, to: Seq, last: u64) -> Vec<ChatEntry> {
    (from.0..=to.0.min(last))
        .map(|seq| ChatEntry {
            term: COMMITTED_TERM,
            ..entry(seq, CAROL, "carol", seq)
        })
        .collect()
}

/// Carol claims #5 (the room is at #0); bob asks the leader, which has nothing, and then
/// carol, who answers with her genuine #5 put at #1. Her word alone puts nothing at a
/// number not known committed; the leader's real #1 is then shown there.
#[test]
fn a_claimants_word_alone_puts_no_message_at_a_number() {
    let t0 = base_time();
    let mut n = follower(t0);
    let relabelled = |_, _, _| {
        let mut e = ChatEntry {
            term: COMMITTED_TERM,
            ..entry(5, CAROL, "carol", 1)
        };
        e.seq = Seq(1);
        vec![e]
    };
    let (t, shown, _, asked) = repairs(&mut n, t0, 30, &[(CAROL, 3)], 5, relabelled);
    assert!(asked[0] > 0, "carol was never asked");
    assert!(shown.is_empty(), "carol put her #5 at #1: {shown:?}");
    assert_eq!(leaders_first_shown(&mut n, t), [1]);
}

/// Bob cannot reach the leader (the others can): carol and dave, asked in turn, both
/// send #1 to #3, the same messages, and bob shows them.
#[test]
fn two_members_agreeing_fill_what_the_leader_does_not_send() {
    let t0 = base_time();
    let (mut n, _) = follower_with(t0, vec![member(DAVE, "dave", 4)]);
    drain(&mut n);
    let members = [(CAROL, 3), (DAVE, 4)];
    let (_, shown, _, asked) = repairs(&mut n, t0, 100, &members, 3, |_, a, b| {
        carols_copies(a, b, 3)
    });
    assert!(asked.iter().all(|k| *k > 0), "both asked: {asked:?}");
    assert_eq!(shown, [1, 2, 3]);
}

/// One of them lying does not do: carol sends each of her messages one number off (her
/// #2 at #1, #3 at #2, #1 at #3), dave the truth; bob shows nothing on either's word
/// alone.
#[test]
fn one_member_lying_blocks_but_does_not_choose() {
    let t0 = base_time();
    let (mut n, _) = follower_with(t0, vec![member(DAVE, "dave", 4)]);
    drain(&mut n);
    let members = [(CAROL, 3), (DAVE, 4)];
    let (_, shown, _, asked) = repairs(&mut n, t0, 60, &members, 3, |who, a, b| {
        let mut copies = carols_copies(a, b, 3);
        if who == CAROL {
            for e in &mut copies {
                let said = e.seq.0 % 3 + 1;
                *e = ChatEntry {
                    seq: e.seq,
                    ..carols_copies(Seq(said), Seq(said), 3).remove(0)
                };
            }
        }
        copies
    });
    assert!(asked.iter().all(|k| *k > 0), "both asked: {asked:?}");
    assert!(shown.is_empty(), "shown on one member's word: {shown:?}");
}

/// A gap before a proposal the leader sent (not committed yet) is asked of the leader
/// again and again while it stays silent; carol's word alone, asked in between, fills
/// none of it.
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
    let (_, shown, to_leader, _) = repairs(&mut n, t0, 40, &[(CAROL, 3)], 0, |_, a, b| {
        carols_copies(a, b, 2)
    });
    assert!(shown.is_empty(), "shown on carol's word alone: {shown:?}");
    assert!(
        to_leader >= 2,
        "the leader was asked {to_leader} times in 4 s"
    );
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

/// The answer of a member asked for `a..=b` in a room whose #1 is a change of the voting
/// configuration (`change`, as that member says it) and whose #2 and #3 are carol's.
fn config_then_carols(a: Seq, b: Seq, change: crate::wire::ConfigChange) -> Vec<ChatEntry> {
    let mut copies = carols_copies(a.max(Seq(2)), b, 3);
    if a <= Seq(1) {
        let e = ChatEntry {
            term: COMMITTED_TERM,
            ..ChatEntry::config(Seq(1), change, Seq(0))
        };
        copies.insert(0, e);
    }
    copies
}

/// What each member says is at #1, if it answers.
type Says = fn(NodeId) -> Option<crate::wire::ConfigChange>;

/// A change of the voting configuration carries no seal: one member's word is not taken
/// for it (it could change who votes, or hide a message under it), and the leader is
/// silent. Two members asked that say the same change get bob past it, and he shows
/// carol's #2 and #3; if they say different changes, or only one of them answers, he
/// shows nothing.
#[test]
fn a_configuration_change_is_taken_from_two_members_that_agree() {
    use crate::wire::ConfigChange::Remove;
    let t0 = base_time();
    let cases: [(&str, Says, &[u64]); 3] = [
        ("agree", |_| Some(Remove("erin".into())), &[2, 3]),
        (
            "differ",
            |who| Some(Remove(if who == CAROL { "erin" } else { "dave" }.into())),
            &[],
        ),
        (
            "one answers",
            |who| (who == CAROL).then(|| Remove("erin".into())),
            &[],
        ),
    ];
    for (case, says, expected) in cases {
        let (mut n, _) = follower_with(t0, vec![member(DAVE, "dave", 4)]);
        drain(&mut n);
        let members = [(CAROL, 3), (DAVE, 4)];
        let (_, shown, _, asked) = repairs(&mut n, t0, 100, &members, 3, |who, a, b| {
            says(who).map_or_else(Vec::new, |change| config_then_carols(a, b, change))
        });
        assert!(
            asked.iter().all(|k| *k > 0),
            "{case}: both asked: {asked:?}"
        );
        assert_eq!(shown, expected, "{case}");
    }
}
