//! Skips: what the leader says nobody keeps any more is asked of the other members
//! first, then skipped once the first number kept is here, and the user is told how many.

use super::catchup::{committed, fetches, leader_acks};
use super::*;
use crate::proto::chat::MAX_HOLDBACK;
use crate::proto::node::room::RUN_MAX;

/// A skip waits for the first number the leader keeps. When that entry is lost on the
/// way and the leader, having said more meanwhile, keeps it no more either, the leader's
/// next word (from that number on) moves the skip on: the member does not wait at its old
/// delivery point for good.
#[test]
fn a_skip_moves_on_when_its_first_kept_number_is_forgotten_too() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, commit(10)));
    let forgotten = |from, to| Message::Forgotten {
        from: Seq(from),
        to: Seq(to),
    };
    // Carol, asked first, keeps nothing older either; the leader, asked again, says so
    // again. #6, sent with that word, is lost; #8 to #10 arrive.
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, forgotten(1, 5)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, forgotten(1, 5)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 4, forgotten(1, 5)));
    for s in 8..=10 {
        let e = Message::Sequenced(entry(s, CAROL, "carol", s - 7));
        n.handle_datagram(t0, addr(1), &data(LEADER, s, e));
    }
    assert!(room_seqs(&drain(&mut n)).is_empty(), "waiting for #6");
    n.handle_datagram(t0, addr(1), &data(LEADER, 20, forgotten(6, 7)));
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), vec![8, 9, 10]);
    assert!(out.events.iter().any(
        |e| matches!(e, Event::Notice(t) if t == "7 older messages are no longer kept by anyone")
    ));
}

/// The leader keeps nothing before #6 (it joined after them), carol keeps #3 to #5 and
/// sent them when asked. The leader's word that it keeps nothing older skips only what
/// nobody sent (#1 and #2): what carol sent is shown, with the first kept number after
/// it, whichever of the word and #6 comes first. A skip that dropped them lost messages
/// a member keeps.
#[test]
fn a_skip_shows_what_another_member_sent_before_the_first_kept_number() {
    for anchor_first in [false, true] {
        let t0 = base_time();
        let mut n = follower(t0);
        n.handle_datagram(t0, addr(1), &data(LEADER, 2, commit(6)));
        drain(&mut n);
        n.handle_timeout(t0 + Duration::from_millis(400));
        let out = drain(&mut n);
        assert_eq!(fetches(&out, addr(1)), vec![(1, 6)]);
        leader_acks(&mut n, t0 + Duration::from_millis(401), &out);
        let t1 = t0 + Duration::from_millis(1300);
        n.handle_timeout(t1);
        assert_eq!(
            fetches(&drain(&mut n), addr(3)),
            vec![(1, 6)],
            "carol asked"
        );
        for s in 3..=5 {
            let m = Message::Sequenced(committed(s));
            n.handle_datagram(t1, addr(3), &data(CAROL, 10 + s, m));
        }
        assert!(
            room_seqs(&drain(&mut n)).is_empty(),
            "#1 and #2 are missing"
        );
        let (forgotten_id, anchor_id) = if anchor_first { (4, 3) } else { (3, 4) };
        let forgotten = data(
            LEADER,
            forgotten_id,
            Message::Forgotten {
                from: Seq(1),
                to: Seq(5),
            },
        );
        let anchor = data(LEADER, anchor_id, Message::Sequenced(committed(6)));
        let (a, b) = if anchor_first {
            (anchor, forgotten)
        } else {
            (forgotten, anchor)
        };
        n.handle_datagram(t1, addr(1), &a);
        assert!(
            room_seqs(&drain(&mut n)).is_empty(),
            "anchor first: {anchor_first}"
        );
        n.handle_datagram(t1, addr(1), &b);
        let out = drain(&mut n);
        assert_eq!(
            room_seqs(&out),
            vec![3, 4, 5, 6],
            "anchor first: {anchor_first}"
        );
        assert_eq!(
            notices(&out),
            vec!["2 older messages are no longer kept by anyone"]
        );
    }
}

/// The leader keeps nothing before #6 (it joined after them); carol, in the room before
/// it, keeps them all. Told so by the leader, bob asks carol before taking them as kept
/// by nobody, and shows every one: no skip, no notice.
#[test]
fn a_member_asks_the_others_before_taking_the_leaders_word_that_nobody_keeps() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, commit(6)));
    drain(&mut n);
    let forgotten = Message::Forgotten {
        from: Seq(1),
        to: Seq(5),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, forgotten));
    let out = drain(&mut n);
    assert_eq!(fetches(&out, addr(3)), vec![(1, 6)], "carol is asked");
    for s in 1..=5 {
        let m = Message::Sequenced(committed(s));
        n.handle_datagram(t0, addr(3), &data(CAROL, 10 + s, m));
    }
    let m = Message::Sequenced(committed(6));
    n.handle_datagram(t0, addr(1), &data(LEADER, 4, m));
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), vec![1, 2, 3, 4, 5, 6]);
    assert!(notices(&out).is_empty(), "nothing is skipped");
}

/// Bob lacks #1 up to #10 000 and the leader keeps nothing before #10 001, the first
/// number past his hold-back bound; carol, asked too, keeps nothing older either. The
/// leader's answer brings #10 001 with the rest of its run, which only the seal on its
/// last message proves: all three are taken though they lie past the bound, and the skip
/// happens once the seal is here. (Before, the rest was refused, #10 001 waited for its
/// seal, and the skip waited for a repair to ask carol again.)
#[test]
fn the_first_kept_number_is_proven_with_the_rest_of_its_run_past_the_bound() {
    let t0 = base_time();
    let mut n = follower(t0);
    let first = MAX_HOLDBACK as u64 + 1;
    let forgotten = || Message::Forgotten {
        from: Seq(1),
        to: Seq(first - 1),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, commit(first + 2)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, forgotten()));
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, forgotten()));
    n.handle_datagram(t0, addr(1), &data(LEADER, 4, forgotten()));
    drain(&mut n);
    for (i, e) in sealed_run(CAROL, (first..first + 3).map(committed))
        .into_iter()
        .enumerate()
    {
        let id = 10 + i as u64;
        n.handle_datagram(t0, addr(1), &data(LEADER, id, Message::Sequenced(e)));
    }
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), vec![first, first + 1, first + 2]);
    assert_eq!(
        notices(&out),
        vec![format!(
            "{} older messages are no longer kept by anyone",
            first - 1
        )]
    );
    assert!(
        (10..13).all(|id| acked(&out, addr(1), id)),
        "held and acked"
    );
    // Past the anchor's run, nothing beyond the bound is taken before the skip.
    let mut m = follower(t0);
    m.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, commit(first + RUN_MAX as u64 + 5)),
    );
    for id in 3..=5 {
        let who = if id == 4 {
            (CAROL, addr(3))
        } else {
            (LEADER, addr(1))
        };
        m.handle_datagram(t0, who.1, &data(who.0, id, forgotten()));
    }
    drain(&mut m);
    let far = committed(first + RUN_MAX as u64);
    m.handle_datagram(t0, addr(1), &data(LEADER, 20, Message::Sequenced(far)));
    let out = drain(&mut m);
    assert!(room_seqs(&out).is_empty());
    assert!(!acked(&out, addr(1), 20), "neither held nor acked");
}

/// A member told the room committed past what it could hold (back from a pause, say)
/// asks for a window of what it lacks at once; one told of a commit within its bound
/// waits the gap-repair interval first (the rest may be on its way).
#[test]
fn a_commit_past_the_bound_starts_the_catch_up_at_once() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, commit(MAX_HOLDBACK as u64 + 1)),
    );
    let out = drain(&mut n);
    assert_eq!(
        fetches(&out, addr(1)).first(),
        Some(&(1, 1024)),
        "asked at once"
    );
    let mut m = follower(t0);
    m.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, commit(MAX_HOLDBACK as u64 - 1)),
    );
    assert!(
        fetches(&drain(&mut m), addr(1)).is_empty(),
        "within the bound: waits"
    );
    m.handle_timeout(t0 + Duration::from_millis(400));
    assert!(
        !fetches(&drain(&mut m), addr(1)).is_empty(),
        "asked after the interval"
    );
}
