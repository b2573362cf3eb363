//! A room message sent without its link (`room/proof.rs`): a member works the link out
//! from the message before it in its origin's chain, vouched for when it was taken or,
//! after a restart, from its own copy; and a run whose last message the member showed
//! before the rest, proven by its own copy of that one.

use super::forgery::bob_restored_and_welcomed;
use super::*;
use crate::proto::seal;

/// Carol's first two messages, #1 and #2, each closing a run of its own; #2 as a leader
/// holding #1 just before it sends it: without its link.
fn carols_two() -> (ChatEntry, ChatEntry) {
    let first = entry(1, CAROL, "carol", 1);
    let start = first.proof.link.expect("a first message carries its link");
    let link = seal::chain(&start, &first.written(CAROL));
    let mut second = ChatEntry {
        seq: Seq(2),
        origin_seq: OriginSeq(2),
        text: "m2".into(),
        ..first.clone()
    };
    let value = seal::chain(&link, &second.written(CAROL));
    second.proof = Provenance {
        link: None,
        seal: Some(seal::seal_run(&identity(CAROL.0 as u8), &value)),
    };
    (first, second)
}

/// Bob, restarted with carol's #1 shown, is welcomed at #2; the leader's #2, carol's next
/// message, comes without its link. Bob works the link out from his own copy of #1 and
/// acks it. Before, nothing he held after the restart placed it: it waited for good, and
/// the room for his ack (`sim_chaos` majority seed 4004).
#[test]
fn a_restarted_member_places_a_message_sent_without_its_link() {
    let t0 = base_time();
    let (first, second) = carols_two();
    let saved = Restored {
        history: vec![first],
        ..Restored::default()
    };
    let mut n = bob_restored_and_welcomed(t0, saved, |w| {
        w.next_seq = Seq(2);
        w.pending_from = Seq(2);
    });
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, Message::Sequenced(second)));
    let out = drain_after_hold(&mut n, t0);
    assert!(
        acked(&out, addr(1), 2),
        "carol's #2 without its link is placed after bob's own #1 and acked"
    );
    assert_eq!(n.stats().forged, 0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, commit(2)));
    assert_eq!(room_seqs(&drain(&mut n)), vec![2]);
}

/// Bob, restarted with carol's #1 shown: the last message of her run of three, which
/// the log holds first (her first two, sent again after a take-over, were sequenced
/// after it; the leader took the repeat of the third as the copy it had). Her first two
/// come at #2 and #3, the run's seal on the copy bob showed only. Bob vouches for his
/// own copy of the third, which closes the run in its stead, and acks both. Before, they
/// waited for good (`sim_failover` two-leaders seeds 1522 and 2591, where the member had
/// shown the last message from a take-over's answers).
#[test]
fn a_run_whose_last_message_was_shown_before_it_is_proven_by_that_copy() {
    let (acked_both, mut n) = carols_first_two_after_her_third_shown(true);
    assert!(
        acked_both,
        "carol's first two, proven by bob's copy of her third, are acked"
    );
    assert_eq!(n.stats().forged, 0);
    n.handle_datagram(base_time(), addr(1), &data(LEADER, 4, commit(3)));
    assert_eq!(room_seqs(&drain(&mut n)), vec![2, 3]);
}

/// The same with bob's copy of carol's third bare of its seal (as a take-over shows a
/// copy on one member's word): it proves nothing, and her first two wait for their own
/// proof. A forged copy shown so cannot prove forged messages before it.
#[test]
fn a_shown_copy_without_a_seal_proves_nothing_before_it() {
    let (acked_any, _) = carols_first_two_after_her_third_shown(false);
    assert!(!acked_any, "nothing proven by an unsealed copy");
}

/// Bob, restarted with carol's #1 shown (`sealed`: with its seal, else bare of it), gets
/// her first two at #2 and #3 (see above); whether he acked both, and him.
fn carols_first_two_after_her_third_shown(sealed: bool) -> (bool, Node) {
    let t0 = base_time();
    let run = sealed_run(CAROL, (1..=3).map(|k| entry(k, CAROL, "carol", k)));
    let start = run[0].proof.link.expect("a first message carries its link");
    let before_third = seal::chain(
        &seal::chain(&start, &run[0].written(CAROL)),
        &run[1].written(CAROL),
    );
    let third = ChatEntry {
        seq: Seq(1),
        proof: Provenance {
            link: Some(before_third),
            seal: run[2].proof.seal.clone().filter(|_| sealed),
        },
        ..run[2].clone()
    };
    let saved = Restored {
        history: vec![third],
        ..Restored::default()
    };
    let mut n = bob_restored_and_welcomed(t0, saved, |w| {
        w.next_seq = Seq(2);
        w.pending_from = Seq(2);
    });
    for (id, e) in [(2, &run[0]), (3, &run[1])] {
        let again = ChatEntry {
            seq: Seq(id),
            ..e.clone()
        };
        n.handle_datagram(t0, addr(1), &data(LEADER, id, Message::Sequenced(again)));
    }
    let out = drain_after_hold(&mut n, t0);
    (acked(&out, addr(1), 2) && acked(&out, addr(1), 3), n)
}
