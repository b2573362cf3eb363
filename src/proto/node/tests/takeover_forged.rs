//! A new leader takes a survivor's answer only as far as its origins' seals prove it
//! (`room/proven_answers.rs`): a forged copy, committed or a proposal, is never shown nor
//! proposed again, and the answer that carried it counts no more; a copy whose run's
//! seal never comes holds the take-over up until its timer, then is given up.

use super::takeover::{answer_to_bob, bob_taking_over};
use super::takeover_answers::recovery_timer;
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
fn shown(out: &Out) -> Vec<String> {
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
