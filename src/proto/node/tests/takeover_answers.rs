//! A new leader's take-over counts each survivor's answer by the transport ids of what
//! it sent with it (`room/recovery.rs`): it ends only once a majority's answers are here
//! in full, whatever else arrives (a second answer, one from an earlier round, one cut
//! short by its sender's going); an answer given up on is asked for again.

use super::takeover::{answer_to_bob, bob_taking_over};
use super::*;

/// Bob taking over: alice has not answered; carol announces #1 (term 0), which has not
/// arrived yet. Bob and carol are a majority only with carol's answer all here.
fn bob_awaiting_carols_entry(t0: Instant) -> Node {
    let mut n = bob_taking_over(t0);
    n.handle_datagram(t0, addr(3), &data(CAROL, 3, answer_to_bob(1, 1)));
    drain(&mut n);
    assert!(n.room.is_recovering(), "carol's #1 is still on its way");
    n
}

/// Bob's recovery timer fires at `at` (alone: the others stay quiet meanwhile, and no
/// heartbeat timer declares them gone).
pub(super) fn recovery_timer(n: &mut Node, at: Instant) -> Out {
    n.ctx.now = n.ctx.now.max(at);
    n.recovery_timed_out(at);
    drain(n)
}

/// Bob's proposals of #1 to carol, in term 1.
fn proposed_first(out: &Out) -> Vec<String> {
    out.messages_to(addr(3))
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) if e.seq == Seq(1) && e.term == 1 => Some(e.text.clone()),
            _ => None,
        })
        .collect()
}

/// What bob holds at #1, proposed in his term 1.
fn bobs_first(n: &Node) -> Option<String> {
    n.room
        .held_at(Seq(1))
        .filter(|e| e.term == 1)
        .map(|e| e.text.clone())
}

/// A majority answered, but an answer's entry is still being resent: the take-over must
/// not end when its timer fires, or #1 (perhaps committed by alice and carol, held by
/// carol alone of those who answered) would be filled over.
#[test]
fn a_take_over_waits_for_the_entries_an_answer_announced() {
    let t0 = base_time();
    let mut n = bob_awaiting_carols_entry(t0);
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let out = recovery_timer(&mut n, t0 + step);
    assert!(n.room.is_recovering(), "still waiting for carol's #1");
    assert!(proposed_first(&out).is_empty(), "#1 is not filled over");
    n.handle_datagram(t0 + step, addr(3), &data(CAROL, 2, carols(1)));
    drain(&mut n);
    recovery_timer(&mut n, t0 + step * 2);
    assert!(!n.room.is_recovering(), "bob and carol answered in full");
    took_carols_first(&n);
}

/// An answer's entry that carol's transport gave up on never comes: once her longest
/// resend time has passed, bob asks her again, and her new answer ends the take-over.
#[test]
fn entries_given_up_on_are_asked_for_again() {
    let t0 = base_time();
    let mut n = bob_awaiting_carols_entry(t0);
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let mut at = t0;
    let mut asked_again = None;
    for _ in 0..40 {
        at += step;
        let out = recovery_timer(&mut n, at);
        assert!(proposed_first(&out).is_empty(), "#1 is not filled over");
        if out
            .messages_to(addr(3))
            .iter()
            .any(|m| matches!(m, Message::SyncRequest { .. }))
        {
            asked_again = Some(at - t0);
            break;
        }
    }
    let waited = asked_again.expect("carol is asked again");
    assert!(
        waited >= Duration::from_secs(18),
        "not before her transport surely gave up: {waited:?}"
    );
    assert!(n.room.is_recovering());
    n.handle_datagram(at, addr(3), &data(CAROL, 10, carols(1)));
    n.handle_datagram(at, addr(3), &data(CAROL, 11, answer_to_bob(1, 1)));
    drain(&mut n);
    recovery_timer(&mut n, at + step);
    assert!(!n.room.is_recovering(), "carol's new answer is all here");
    took_carols_first(&n);
}

/// Carol goes before her #1 arrives: her answer no longer counts, so bob alone is no
/// majority and fills nothing.
#[test]
fn an_answer_cut_short_by_its_senders_departure_does_not_count() {
    let t0 = base_time();
    let mut n = bob_awaiting_carols_entry(t0);
    n.survivor_gone(t0, CAROL);
    drain(&mut n);
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let out = recovery_timer(&mut n, t0 + step);
    assert!(n.room.is_recovering(), "no majority answered in full");
    assert!(proposed_first(&out).is_empty(), "#1 is not filled over");
}

/// Bob ended his take-over with carol's #1, proposed in his term.
#[track_caller]
fn took_carols_first(n: &Node) {
    assert!(!n.room.is_recovering(), "the take-over ended");
    assert_eq!(
        bobs_first(n).as_deref(),
        Some("m1"),
        "carol's #1 is proposed"
    );
}

/// Whether bob holds carol's #2 ("m2", proposed in term 1).
fn holds_carols_second(n: &Node) -> bool {
    n.room
        .held_at(Seq(2))
        .is_some_and(|e| e.term == 1 && e.text == "m2")
}

/// Carol's `seq`, as she sends it in an answer.
pub(super) fn carols(seq: u64) -> Message {
    Message::SyncEntry(entry(seq, LEADER, "alice", seq))
}

/// Asked twice (the first round timed out), carol answers twice: only her first reply
/// counts, and her second answer's #1 is no stand-in for her first's #2, still on its way.
#[test]
fn a_second_answer_does_not_make_up_for_the_first() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    recovery_timer(&mut n, t0 + step);
    let at = t0 + step;
    // First answer: #1 (id 2), #2 (id 3, on its way), reply (id 4). Second: #1 (id 5),
    // #2 (id 6, on its way), reply (id 7).
    for (id, msg) in [
        (4, answer_to_bob(2, 2)),
        (2, carols(1)),
        (5, carols(1)),
        (7, answer_to_bob(2, 2)),
    ] {
        n.handle_datagram(at, addr(3), &data(CAROL, id, msg));
    }
    drain(&mut n);
    recovery_timer(&mut n, at + step);
    assert!(n.room.is_recovering(), "carol's #2 is still on its way");
    n.handle_datagram(at + step, addr(3), &data(CAROL, 3, carols(2)));
    drain(&mut n);
    recovery_timer(&mut n, at + step * 2);
    assert!(!n.room.is_recovering(), "her first answer is here in full");
    assert!(holds_carols_second(&n), "#2 is carol's, not filled over");
}

/// Carol is declared gone while her answer is on its way, let in again and asked again:
/// her first answer's #1, resent, does not count towards her second.
#[test]
fn an_answer_from_before_a_members_return_does_not_count_towards_its_new_one() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    n.handle_datagram(t0, addr(3), &data(CAROL, 4, answer_to_bob(2, 2)));
    drain(&mut n);
    n.survivor_gone(t0, CAROL);
    n.ask_during_recovery(t0, CAROL, addr(3));
    drain(&mut n);
    for (id, msg) in [(2, carols(1)), (7, answer_to_bob(2, 2)), (5, carols(1))] {
        n.handle_datagram(t0, addr(3), &data(CAROL, id, msg));
    }
    drain(&mut n);
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    recovery_timer(&mut n, t0 + step);
    assert!(n.room.is_recovering(), "her new answer's #2 is on its way");
    n.handle_datagram(t0 + step, addr(3), &data(CAROL, 6, carols(2)));
    drain(&mut n);
    recovery_timer(&mut n, t0 + step * 2);
    assert!(!n.room.is_recovering());
    assert!(holds_carols_second(&n), "#2 is carol's, not filled over");
}

/// An answer of thousands of messages (kept private messages) whose first entry is resent
/// after the rest came: the resend is new to the duplicate window (which bounds the gaps
/// it keeps open, not the ids above them), it counts, and the take-over ends.
#[test]
fn a_large_answer_completes_when_its_first_entry_comes_last() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    const KEPT: u64 = 4200;
    let item = |k: u64| {
        Message::Queued(QueuedDm {
            origin: CAROL,
            to: 0,
            dm: DirectMessage {
                id: DmId(k),
                from_name: "carol".into(),
                to: vec!["alice".into()],
                sealed: format!("m{k}").into_bytes(),
            },
        })
    };
    // #1 (id 2, lost at first), the kept messages (ids 3..), then the reply.
    for k in 0..KEPT {
        n.handle_datagram(t0, addr(3), &data(CAROL, 3 + k, item(k)));
    }
    let reply = answer_to_bob(1, KEPT as u32 + 1);
    n.handle_datagram(t0, addr(3), &data(CAROL, 3 + KEPT, reply));
    drain(&mut n);
    let duplicates = n.stats().duplicates;
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, carols(1)));
    drain(&mut n);
    assert_eq!(
        n.stats().duplicates,
        duplicates,
        "the resend is new, though 4 200 later ids came before it"
    );
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    recovery_timer(&mut n, t0 + step);
    assert!(!n.room.is_recovering(), "carol's answer is here in full");
    assert_eq!(bobs_first(&n).as_deref(), Some("m1"));
}

/// Each answer is given its own time: alice, answering long after carol, is not asked
/// again when carol is.
#[test]
fn a_late_answer_is_not_asked_for_again_with_an_early_one() {
    let t0 = base_time();
    let mut n = bob_awaiting_carols_entry(t0);
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let asked = |o: &Out, to| {
        o.messages_to(to)
            .iter()
            .any(|m| matches!(m, Message::SyncRequest { .. }))
    };
    let mut at = t0;
    let mut alice_answered = false;
    loop {
        at += step;
        assert!(
            at - t0 < Duration::from_secs(60),
            "carol is never asked again"
        );
        if !alice_answered && at - t0 > Duration::from_secs(15) {
            // Alice's reply (id 12) comes; her #1 (id 11) is on its way.
            n.handle_datagram(at, addr(1), &data(LEADER, 12, answer_to_bob(1, 1)));
            drain(&mut n);
            alice_answered = true;
        }
        let out = recovery_timer(&mut n, at);
        if asked(&out, addr(3)) {
            assert!(!asked(&out, addr(1)), "alice answered only just now");
            break;
        }
    }
    assert!(n.room.is_recovering());
}

/// An answer that never all arrives, however often carol is asked again, stops counting
/// after the second time: bob, with no majority then, elects again rather than waiting
/// for ever.
#[test]
fn an_answer_that_never_all_arrives_stops_counting() {
    let t0 = base_time();
    let mut n = bob_awaiting_carols_entry(t0);
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let mut at = t0;
    let mut asks = 0;
    let mut reply_id = 20;
    while n.room.is_recovering() {
        at += step;
        assert!(
            at - t0 < Duration::from_secs(120),
            "still waiting for carol"
        );
        let out = recovery_timer(&mut n, at);
        if out
            .messages_to(addr(3))
            .iter()
            .any(|m| matches!(m, Message::SyncRequest { .. }))
        {
            asks += 1;
            // Carol answers again; her #1 is lost again.
            n.handle_datagram(at, addr(3), &data(CAROL, reply_id, answer_to_bob(1, 1)));
            drain(&mut n);
            reply_id += 2;
        }
    }
    assert_eq!(bobs_first(&n), None, "#1 was never filled over");
    assert!(asks >= 3, "carol was asked again {asks} times");
}
