//! A new leader takes a survivor's answer only as far as its origins' seals prove it
//! (`room/proven_answers.rs`): a forged copy, committed or a proposal, is never shown nor
//! proposed again, and the answer that carried it counts no more; a copy whose run's
//! seal never comes holds the take-over up until its timer, then is given up.

use super::takeover::{answer_to_bob, bob_taking_over};
use super::takeover_answers::recovery_timer;
use super::terms::DAVE;
use super::*;
use crate::proto::node::room::COMMITTED_TERM;

/// Alice's #1 as carol sends it in her answer: of `term`, with its text made up after
/// alice sealed it (`bent`) or as alice wrote it.
fn alices_first(term: u64, bent: bool) -> Message {
    let mut e = entry(1, LEADER, "alice", 1);
    e.term = term;
    if bent {
        e.text = "alice: send the room key to carol".into();
    }
    Message::SyncEntry(e)
}

/// The room texts `out` showed.
pub(super) fn shown(out: &Out) -> Vec<String> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::Room { entry, .. } => Some(entry.text.clone()),
            _ => None,
        })
        .collect()
}

/// The texts bob proposed to carol at #1.
fn proposed_first(out: &Out) -> Vec<String> {
    out.messages_to(addr(3))
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) if e.seq == Seq(1) => Some(e.text.clone()),
            _ => None,
        })
        .collect()
}

/// Carol answers bob's take-over with alice's #1 altered, as a committed copy and as a
/// proposal: bob refuses it (counted), shows and proposes nothing of it, and carol's
/// answer no longer makes a majority with him; her answer to the next round, true, is
/// taken.
#[test]
fn a_forged_copy_in_an_answer_is_never_shown_nor_proposed() {
    for term in [COMMITTED_TERM, 0] {
        let t0 = base_time();
        let mut n = bob_taking_over(t0);
        n.handle_datagram(t0, addr(3), &data(CAROL, 2, alices_first(term, true)));
        n.handle_datagram(t0, addr(3), &data(CAROL, 3, answer_to_bob(1, 1)));
        let out = drain(&mut n);
        assert_eq!(n.stats().forged, 1, "term {term}: the forgery is counted");
        assert!(
            shown(&out).is_empty(),
            "term {term}: shown {:?}",
            shown(&out)
        );
        assert!(
            n.room.is_recovering(),
            "term {term}: carol's answer does not count"
        );
        let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
        let out = recovery_timer(&mut n, t0 + step);
        assert!(n.room.is_recovering(), "term {term}: no majority yet");
        assert!(
            proposed_first(&out).is_empty(),
            "term {term}: nothing at #1"
        );
        // Asked again (the round's timer), she answers true this time.
        let at = t0 + step;
        n.handle_datagram(at, addr(3), &data(CAROL, 4, alices_first(term, false)));
        n.handle_datagram(at, addr(3), &data(CAROL, 5, answer_to_bob(1, 1)));
        let out = drain(&mut n);
        if term == COMMITTED_TERM {
            assert_eq!(shown(&out), ["m1"], "alice's own #1 is shown");
        } else {
            recovery_timer(&mut n, at + step);
            assert!(!n.room.is_recovering(), "bob and carol answered");
            let held = n.room.held_at(Seq(1)).map(|e| (e.term, e.text.clone()));
            assert_eq!(
                held,
                Some((1, "m1".into())),
                "alice's own #1, in bob's term"
            );
        }
        assert_eq!(n.stats().forged, 1, "term {term}");
    }
}

/// Carol's answer is one copy, the first of a run whose seal she does not send: bob
/// waits for its proof with the answer all here, and when his timer fires gives it up
/// and takes over without it (#1 filled, never carol's word). The control: with the
/// run's last copy sent too, bob takes over at once with carol's #1.
#[test]
fn an_answered_copy_without_its_seal_holds_the_take_over_until_its_timer() {
    for with_seal in [true, false] {
        let t0 = base_time();
        let mut n = bob_taking_over(t0);
        let run = sealed_run(
            LEADER,
            [entry(1, LEADER, "alice", 1), entry(2, LEADER, "alice", 2)],
        );
        let sent = if with_seal { 2 } else { 1 };
        for (id, e) in (2..).zip(&run[..sent as usize]) {
            n.handle_datagram(t0, addr(3), &data(CAROL, id, Message::SyncEntry(e.clone())));
        }
        let reply = answer_to_bob(sent, sent as u32);
        n.handle_datagram(t0, addr(3), &data(CAROL, 2 + sent, reply));
        // Alice, told of round 1, holds nothing.
        n.handle_datagram(t0, addr(1), &data(LEADER, 6, answer_to_bob(0, 0)));
        let out = drain(&mut n);
        if with_seal {
            assert!(
                !n.room.is_recovering(),
                "the answer is here in full, and proven"
            );
            assert_eq!(proposed_first(&out), ["m1"], "carol's #1 is proposed");
            continue;
        }
        assert!(n.room.is_recovering(), "#1 waits for the seal of its run");
        let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
        recovery_timer(&mut n, t0 + step);
        assert!(!n.room.is_recovering(), "given up on its timer");
        assert_eq!(n.stats().forged, 0, "unproven is not forged");
        let held = n.room.held_at(Seq(1)).map(|e| (e.term, e.is_filler()));
        assert_eq!(
            held,
            Some((1, true)),
            "#1 is filled in bob's term, not carol's"
        );
    }
}

/// What bob holds at `seq`: `Some(text)` for a message, `Some("")` for a filler.
fn held(n: &Node, seq: u64) -> Option<String> {
    n.room.held_at(Seq(seq)).map(|e| e.text.clone())
}

/// Carol's answer holds one genuine message of alice's at two numbers (as after a
/// leader that filled #1 and sequenced the resubmission again: the log then holds the
/// same submission twice). The staging keeps one copy a message; the other waits aside
/// and is taken once the first is proven: both numbers are proposed again.
#[test]
fn one_message_at_two_numbers_in_one_answer_keeps_both() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let first = entry(1, LEADER, "alice", 1);
    let mut again = first.clone();
    again.seq = Seq(2);
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::SyncEntry(first)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 3, Message::SyncEntry(again)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 4, answer_to_bob(2, 2)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, answer_to_bob(0, 0)));
    drain(&mut n);
    assert!(!n.room.is_recovering(), "all answers here and proven");
    assert_eq!(
        held(&n, 1),
        Some("m1".into()),
        "carol's #1 is proposed again"
    );
    assert_eq!(
        held(&n, 2),
        Some("m1".into()),
        "carol's #2 is proposed again"
    );
}

/// Carol's own messages #1 and #2, as alice sequenced them (one run, sealed on #2):
/// carol got #1 only. She acks her own message at once (see
/// `an_origin_acks_its_own_message_before_its_runs_seal`), so alice and carol were a
/// majority for #1: committed, and no seal covers it anywhere. Her word on her own
/// message is taken: bob proposes it again at once, and never fills it.
#[test]
fn the_origins_own_unsealed_copy_is_taken_on_its_word() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let mut run = sealed_run(
        CAROL,
        [entry(1, CAROL, "carol", 1), entry(2, CAROL, "carol", 2)],
    );
    run.truncate(1);
    assert!(run[0].proof.seal.is_none() && run[0].proof.link.is_some());
    let first = run.remove(0);
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::SyncEntry(first)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 3, answer_to_bob(1, 1)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, answer_to_bob(0, 0)));
    drain(&mut n);
    assert!(!n.room.is_recovering(), "nothing to wait for");
    assert_eq!(
        held(&n, 1),
        Some("m1".into()),
        "carol's own #1 proposed again"
    );
}

/// Carol, who got alice's #1 only, answers first; alice (the origin) answers her run
/// #1..#2 in full. Alice's copies prove #1, and carol's copy, staged before (her answer
/// was acked: nothing sends it again), is taken then: the take-over does not wait for
/// its timer.
#[test]
fn a_copy_proven_by_another_answer_is_taken_at_once() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let run = sealed_run(
        LEADER,
        [entry(1, LEADER, "alice", 1), entry(2, LEADER, "alice", 2)],
    );
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL, 2, Message::SyncEntry(run[0].clone())),
    );
    n.handle_datagram(t0, addr(3), &data(CAROL, 3, answer_to_bob(1, 1)));
    drain(&mut n);
    assert!(n.room.is_recovering(), "carol's #1 waits for its seal");
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 6, Message::SyncEntry(run[0].clone())),
    );
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 7, Message::SyncEntry(run[1].clone())),
    );
    n.handle_datagram(t0, addr(1), &data(LEADER, 8, answer_to_bob(2, 2)));
    drain(&mut n);
    assert!(
        !n.room.is_recovering(),
        "every copy is proven (#1 by alice's seal): nothing to wait for"
    );
    assert_eq!(held(&n, 1), Some("m1".into()));
    assert_eq!(held(&n, 2), Some("m2".into()));
}

/// Dave, let in by alice just before she went, is not in bob's table yet (the update
/// was lost with her). Carol proved and holds dave's #1 (she knows him). Bob cannot
/// check it, and takes it on carol's word rather than fill a committed number.
#[test]
fn a_copy_of_an_origin_bob_does_not_know_is_taken() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    assert!(n.ring.members().get(DAVE).is_none());
    let e = entry(1, DAVE, "dave", 1);
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::SyncEntry(e)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 3, answer_to_bob(1, 1)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, answer_to_bob(0, 0)));
    drain(&mut n);
    assert!(!n.room.is_recovering());
    assert_eq!(held(&n, 1), Some("m1".into()), "dave's #1 proposed again");
}

/// `e` at number `seq` (every field the seal covers unchanged).
fn at(e: &ChatEntry, seq: u64) -> ChatEntry {
    ChatEntry {
        seq: Seq(seq),
        ..e.clone()
    }
}

/// Carol's answer holds two of alice's messages each at two numbers (#1, #2 and again
/// #3, #4). The first copies are proven by their seals, and the twins then taken one by
/// one: the take-over does not end before the last is held (else #4 would be filled).
#[test]
fn every_twin_proven_at_once_is_held_before_the_take_over_ends() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let a1 = entry(1, LEADER, "alice", 1);
    let a2 = entry(2, LEADER, "alice", 2);
    let copies = [a1.clone(), a2.clone(), at(&a1, 3), at(&a2, 4)];
    for (id, e) in (2..).zip(copies) {
        n.handle_datagram(t0, addr(3), &data(CAROL, id, Message::SyncEntry(e)));
    }
    n.handle_datagram(t0, addr(3), &data(CAROL, 6, answer_to_bob(4, 4)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, answer_to_bob(0, 0)));
    drain(&mut n);
    assert!(!n.room.is_recovering(), "all answers here and proven");
    let got: Vec<Option<String>> = (1..=4).map(|s| held(&n, s)).collect();
    assert_eq!(
        got,
        [Some("m1"), Some("m2"), Some("m1"), Some("m2")].map(|s| s.map(String::from)),
        "each of carol's copies proposed again"
    );
}

/// Carol's answer holds alice's #1 at two numbers: at #1 as part of a run whose seal
/// carol does not hold (alice's #2 of it was filled), and at #2 as alice resubmitted it,
/// sealed alone (`resubmissions` seals a stretch whose closer was confirmed). Carol
/// proved #1 by the copy at #2. The sealed copy takes the staging's place and proves
/// itself, and so the unsealed one kept aside: both are proposed again.
#[test]
fn a_sealed_twin_proves_the_unsealed_copy_it_waits_for() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let sealed = entry(1, LEADER, "alice", 1);
    let mut unsealed = sealed.clone();
    unsealed.proof.seal = None;
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::SyncEntry(unsealed)));
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL, 3, Message::SyncEntry(at(&sealed, 2))),
    );
    n.handle_datagram(t0, addr(3), &data(CAROL, 4, answer_to_bob(2, 2)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, answer_to_bob(0, 0)));
    drain(&mut n);
    let waited = n.room.is_recovering();
    if waited {
        let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
        recovery_timer(&mut n, t0 + step);
    }
    assert!(!n.room.is_recovering());
    assert_eq!(
        (held(&n, 1), held(&n, 2)),
        (Some("m1".into()), Some("m1".into())),
        "carol's copies proposed again (waited for the timer: {waited})"
    );
}

/// Dave (online, not voting) lies: his answer holds, at #1, a message of an origin nobody
/// knows ("mallory"), taken on his word. Carol's honest answer, here first, holds
/// alice's #1..#2 (one run, sealed on #2), committed by alice with carol's ack. Her
/// copies wait for the drain to be proven; dave's made-up copy, taken on his word, is
/// held at once, and a copy of the same term never replaces one held: alice's #1 is
/// lost for dave's. (Holding such copies after the proven ones, at the take-over's end,
/// forked the log in `sim_chaos` and stalled `sim_failover` bursts.)
#[test]
#[ignore = "a known hole: README Known limits, a new leader takes some of what survivors answer on their word"]
fn an_unknown_origins_copy_does_not_take_the_number_of_a_copy_awaiting_its_seal() {
    let t0 = base_time();
    let dave = NodeId(400);
    let (mut n, _) = super::takeover::bob_taking_over_with(t0, vec![member(dave, "dave", 4)]);
    let run = sealed_run(
        LEADER,
        [entry(1, LEADER, "alice", 1), entry(2, LEADER, "alice", 2)],
    );
    for (id, e) in (2..).zip(&run) {
        n.handle_datagram(t0, addr(3), &data(CAROL, id, Message::SyncEntry(e.clone())));
    }
    n.handle_datagram(t0, addr(3), &data(CAROL, 4, answer_to_bob(2, 2)));
    let mut lie = entry(1, NodeId(999), "mallory", 1);
    lie.text = "made up by dave".into();
    n.handle_datagram(t0, addr(4), &data(dave, 2, Message::SyncEntry(lie)));
    n.handle_datagram(t0, addr(4), &data(dave, 3, answer_to_bob(1, 1)));
    drain(&mut n);
    if n.room.is_recovering() {
        let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
        recovery_timer(&mut n, t0 + step);
    }
    assert!(!n.room.is_recovering());
    assert_eq!(
        held(&n, 1),
        Some("m1".into()),
        "alice's #1, as carol holds it"
    );
}

/// Ann (online, not voting, id below carol's) answers with alice's #1, proven by its
/// seal; carol (a voter) answers with alice's #2 altered. Both are settled in one drain,
/// ann's group first: taking ann's copy ends the take-over (bob and carol are a
/// majority; alice, the leader that died, is gone) unless carol's forgery is refused
/// first. Her answer must not count: with alice silent there is no majority.
#[test]
fn a_forgery_settled_in_the_same_drain_stops_the_answer_counting() {
    let t0 = base_time();
    let ann = NodeId(50);
    let (mut n, _) = super::takeover::bob_taking_over_with(t0, vec![member(ann, "ann", 5)]);
    // Alice, the leader that died, is declared gone: the take-over waits for her no more.
    n.survivor_gone(t0, LEADER);
    n.handle_datagram(
        t0,
        addr(5),
        &data(ann, 2, Message::SyncEntry(entry(1, LEADER, "alice", 1))),
    );
    n.handle_datagram(t0, addr(5), &data(ann, 3, answer_to_bob(1, 1)));
    let mut bent = entry(2, LEADER, "alice", 2);
    bent.text = "alice: send the room key to carol".into();
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::SyncEntry(bent)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 3, answer_to_bob(2, 1)));
    drain(&mut n);
    assert_eq!(n.stats().forged, 1, "carol's copy is refused");
    assert!(
        n.room.is_recovering(),
        "carol's answer does not count: no majority of alice, bob, carol"
    );
}
