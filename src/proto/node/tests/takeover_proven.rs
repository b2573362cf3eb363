//! A take-over whose answers prove a change committed (`room/answers.rs`,
//! `proven_changes`): a change held in the copy of its term by a majority of the
//! configuration it makes, and every number before it (from the new leader's delivery
//! point) so too, is taken as committed, so survivors its leader never told of the commit
//! need no majority of the configuration before it.

use super::takeover_config::bob_wins_without;
use super::terms::epoch;
use super::*;
use crate::wire::ConfigChange;

/// Add(carol) at `seq`, proposed in term 1 after the change at #0 (none).
fn add_carol(seq: u64) -> ChatEntry {
    let mut add = ChatEntry::config(Seq(seq), ConfigChange::Add("carol".into()), Seq(0));
    add.term = 1;
    add
}

/// A message of term 1 at `seq`.
fn text(seq: u64) -> ChatEntry {
    let mut e = entry(seq, LEADER, "alice", seq);
    e.term = 1;
    e
}

/// `sim_failover` seed 648 in small. Voters {alice, bob} (carol removed); alice, leading
/// term 1, proposed Add(carol), committed it with carol's ack, and crashed before bob
/// heard of the commit. Bob, holding `bob_holds`, wins round 2; carol answers with
/// `carol_sends`. Returns bob and what he sent after the answer.
fn bob_taking_over_after_alice(bob_holds: &[ChatEntry], carol_sends: &[ChatEntry]) -> (Node, Out) {
    let t0 = base_time();
    let (mut n, _) = follower_with(t0, Vec::new());
    let voters = ["alice", "bob"].map(String::from).into_iter().collect();
    n.room.set_voters(voters, Seq(0));
    for e in bob_holds {
        assert!(n.hold(e.clone()));
    }
    let asked = bob_wins_without(&mut n, t0, &[(LEADER, "alice", 1)], (2, CAROL, 3));
    let ids = asked.ids_to(addr(3), |m| matches!(m, Message::SyncRequest { .. }));
    assert!(!ids.is_empty(), "carol asked: {:?}", asked.sent);
    n.handle_datagram(t0, addr(3), &ack_of(n.id(), CAROL, &ids));
    let mut id = 1;
    for copy in carol_sends {
        id += 1;
        let msg = Message::SyncEntry(copy.clone());
        n.handle_datagram(t0, addr(3), &data(CAROL, id, msg));
    }
    let reply = Message::SyncReply {
        epoch: epoch(2, BOB),
        next: Seq(1),
        high: Seq(carol_sends.iter().map(|e| e.seq.0).max().unwrap_or(0)),
        sent: carol_sends.len() as u32,
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, id + 1, reply));
    let out = drain_after_hold(&mut n, t0);
    (n, out)
}

/// Bob and carol hold the copies of term 1 of everything up to the change: 2 of the 3
/// of {alice, bob, carol}, the configuration it makes, in the term alice counted acks
/// in, so it committed. Bob takes over without alice (1 of the 2 committed voters) and
/// proposes it again in term 2.
#[test]
fn a_change_held_by_a_majority_of_its_configuration_is_taken_as_committed() {
    let runs = [vec![add_carol(1)], vec![text(1), add_carol(2)]];
    for held in runs {
        let (n, out) = bob_taking_over_after_alice(&held, &held);
        assert!(!n.room.is_recovering(), "bob took over: {:?}", out.sent);
        let at = held.last().map(|e| e.seq);
        let again = out.messages_to(addr(3)).into_iter().any(|m| {
            matches!(m, Message::Sequenced(e) if Some(e.seq) == at && e.term == 2
                && e.config_change() == Some(ConfigChange::Add("carol".into())))
        });
        assert!(again, "Add(carol) proposed again in term 2: {:?}", out.sent);
    }
}

/// What proves nothing, and leaves bob waiting for alice: carol answering without the
/// change (bob alone holds it, 1 of 3); carol holding a copy of another term; bob
/// holding only the copy carol sent him (a copy merged from an answer is that member's,
/// not counted twice); and carol holding the change but not the message before it,
/// which alice may have committed under another change with bob's ack alone.
#[test]
fn a_change_not_held_by_a_majority_in_one_copy_proves_nothing() {
    let mut older = add_carol(1);
    older.term = 0;
    let runs = [
        (vec![add_carol(1)], vec![], "carol holds nothing"),
        (vec![add_carol(1)], vec![older], "carol's copy is of term 0"),
        (vec![], vec![add_carol(1)], "bob holds only carol's copy"),
        (
            vec![text(1), add_carol(2)],
            vec![add_carol(2)],
            "carol lacks #1",
        ),
    ];
    for (bob_holds, carol_sends, why) in runs {
        let (n, out) = bob_taking_over_after_alice(&bob_holds, &carol_sends);
        assert!(
            n.room.is_recovering(),
            "{why}: bob waits for alice: {:?}",
            out.sent
        );
    }
}
