//! A take-over whose answers prove a change committed (`room/answers.rs`,
//! `proven_changes`): a change held in the copy of its term by a majority of the
//! configuration it makes, and every number before it (from the new leader's delivery
//! point) so too, is taken as committed, so survivors its leader never told of the commit
//! need no majority of the configuration before it.

use super::takeover_config::bob_wins_without;
use super::terms::epoch;
use super::*;
use crate::wire::{ConfigChange, VotedRun};

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

/// A copy held or sent, and whether as a vote (taken as a proposal from its term's
/// leader, not merged from answers in a take-over).
type Copy = (ChatEntry, bool);

/// Votes for every copy.
fn votes(copies: &[ChatEntry]) -> Vec<Copy> {
    copies.iter().map(|e| (e.clone(), true)).collect()
}

/// `sim_failover` seed 648 in small. Voters {alice, bob} (carol removed); alice, leading
/// term 1, proposed Add(carol), committed it with carol's ack, and crashed before bob
/// heard of the commit. Bob, holding `bob_holds`, wins round 2; carol answers with
/// `carol_sends`, naming her votes among them. Returns bob and what he sent after.
fn bob_taking_over_after_alice(bob_holds: &[Copy], carol_sends: &[Copy]) -> (Node, Out) {
    bob_answered_by_carol(bob_holds, carol_sends, &[], Knows::Leader)
}

/// Whether bob counts alice, whose proposals of term 1 he took as votes, among the
/// holders of the copies of term 1 (see `Room::proposers`).
#[derive(Clone, Copy, PartialEq)]
enum Knows {
    Leader,
    /// Bob's record of who led term 1 is wiped before the take-over, to see what the
    /// answers prove by themselves (a node with votes always knows their leader).
    AnswersOnly,
}

/// [`bob_taking_over_after_alice`], carol naming the votes `named` besides.
fn bob_answered_by_carol(
    bob_holds: &[Copy],
    carol_sends: &[Copy],
    named: &[VotedRun],
    knows: Knows,
) -> (Node, Out) {
    let t0 = base_time();
    let (mut n, _) = follower_with(t0, Vec::new());
    let voters = ["alice", "bob"].map(String::from).into_iter().collect();
    n.room.set_voters(voters, Seq(0));
    for (e, vote) in bob_holds {
        assert!(n.hold(e.clone()));
        if *vote {
            n.room.note_vote(e.seq, e.term, LEADER);
        }
    }
    if knows == Knows::AnswersOnly {
        n.room.forget_proposers();
    }
    let asked = bob_wins_without(&mut n, t0, &[(LEADER, "alice", 1)], (2, CAROL, 3));
    let ids = asked.ids_to(addr(3), |m| matches!(m, Message::SyncRequest { .. }));
    assert!(!ids.is_empty(), "carol asked: {:?}", asked.sent);
    n.handle_datagram(t0, addr(3), &ack_of(n.id(), CAROL, &ids));
    let mut id = 1;
    let mut votes = named.to_vec();
    for (copy, vote) in carol_sends {
        id += 1;
        let msg = Message::SyncEntry(copy.clone());
        n.handle_datagram(t0, addr(3), &data(CAROL, id, msg));
        if *vote {
            votes.push(VotedRun {
                first: copy.seq,
                last: copy.seq,
                term: copy.term,
            });
        }
    }
    let reply = Message::SyncReply {
        epoch: epoch(2, BOB),
        next: Seq(1),
        high: Seq(carol_sends.iter().map(|(e, _)| e.seq.0).max().unwrap_or(0)),
        sent: carol_sends.len() as u32,
        votes,
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, id + 1, reply));
    let out = drain_after_hold(&mut n, t0);
    (n, out)
}

/// Bob and carol hold as votes the copies of term 1 of everything up to the change: 2 of
/// the 3 of {alice, bob, carol}, the configuration it makes, in the term alice counted
/// acks in, so it committed. Bob takes over without alice (1 of the 2 committed voters)
/// and proposes it again in term 2.
#[test]
fn a_change_held_by_a_majority_of_its_configuration_is_taken_as_committed() {
    let runs = [vec![add_carol(1)], vec![text(1), add_carol(2)]];
    for held in runs {
        let (n, out) = bob_taking_over_after_alice(&votes(&held), &votes(&held));
        assert!(!n.room.is_recovering(), "bob took over: {:?}", out.sent);
        let at = held.last().map(|e| e.seq);
        let again = out.messages_to(addr(3)).into_iter().any(|m| {
            matches!(m, Message::Sequenced(e) if Some(e.seq) == at && e.term == 2
                && e.config_change() == Some(ConfigChange::Add("carol".into())))
        });
        assert!(again, "Add(carol) proposed again in term 2: {:?}", out.sent);
    }
}

/// What bob holds and carol sends in
/// [`a_change_not_held_by_a_majority_as_votes_proves_nothing`], and why it proves
/// nothing by the answers alone.
fn answers_short_of_a_majority() -> Vec<(Vec<Copy>, Vec<Copy>, &'static str)> {
    let mut older = add_carol(1);
    older.term = 0;
    let (add, merged) = ((add_carol(1), true), (add_carol(1), false));
    vec![
        (vec![add.clone()], vec![], "carol holds nothing"),
        (
            vec![add.clone()],
            votes(&[older]),
            "carol's copy is of term 0",
        ),
        (vec![], vec![add.clone()], "bob holds only carol's copy"),
        (
            votes(&[text(1), add_carol(2)]),
            votes(&[add_carol(2)]),
            "carol lacks #1",
        ),
        (
            vec![add.clone()],
            vec![merged.clone()],
            "carol's copy is no vote",
        ),
        (vec![merged], vec![add], "bob's copy is no vote"),
    ]
}

/// What the answers do not prove by themselves (bob not counting alice, the leader of
/// term 1: see the next test), leaving bob waiting for alice: carol answering without
/// the change (bob alone holds it, 1 of 3); carol holding a copy of another term; bob
/// holding only the copy carol sent him (a copy merged from an answer is that member's,
/// not counted twice); carol holding the change but not the message before it, which
/// alice may have committed under another change with bob's ack alone; and a copy either
/// of them holds merged from answers in an earlier take-over, not as a vote (its term's
/// leader may never have counted it: `tests/model_config/replays.rs`).
#[test]
fn a_change_not_held_by_a_majority_as_votes_proves_nothing() {
    let runs = answers_short_of_a_majority();
    for (bob_holds, carol_sends, why) in runs {
        let (n, out) = bob_answered_by_carol(&bob_holds, &carol_sends, &[], Knows::AnswersOnly);
        assert!(
            n.room.is_recovering(),
            "{why}: bob waits for alice: {:?}",
            out.sent
        );
    }
    // Carol names a vote of term 1 at #1 but sends no copy of it: her word alone is
    // no holder (nor with a copy of another term).
    let named = [VotedRun {
        first: Seq(1),
        last: Seq(1),
        term: 1,
    }];
    let mut older = add_carol(1);
    older.term = 0;
    for sent in [vec![], vec![(older, false)]] {
        let (n, out) =
            bob_answered_by_carol(&votes(&[add_carol(1)]), &sent, &named, Knows::AnswersOnly);
        assert!(
            n.room.is_recovering(),
            "a vote without its copy: {:?}",
            out.sent
        );
    }
}

/// The leader of the change's term is a holder of every copy of its term (it proposed
/// each, held it, and counted itself towards committing it): in every case of
/// [`answers_short_of_a_majority`] where bob holds the change as a vote (with every
/// number before it), he and alice, who led term 1, are 2 of the 3 of
/// `{alice, bob, carol}`, so bob takes over whatever carol holds (`sim_failover` seeds
/// 1781403 and 1800517, where the room waited for good for the dead leader). Where bob
/// took no proposal of term 1 as a vote, he does not know its leader, and waits.
#[test]
fn the_leader_of_the_changes_term_holds_what_it_proposed() {
    for (bob_holds, carol_sends, why) in answers_short_of_a_majority() {
        let knows_leader = bob_holds.iter().any(|(_, vote)| *vote);
        let (n, out) = bob_taking_over_after_alice(&bob_holds, &carol_sends);
        assert_eq!(
            n.room.is_recovering(),
            !knows_leader,
            "{why}: bob takes over where he holds votes of term 1: {:?}",
            out.sent
        );
        if knows_leader {
            let again = out.messages_to(addr(3)).into_iter().any(|m| {
                matches!(m, Message::Sequenced(e) if e.term == 2
                    && e.config_change() == Some(ConfigChange::Add("carol".into())))
            });
            assert!(
                again,
                "{why}: Add(carol) proposed again in term 2: {:?}",
                out.sent
            );
        }
    }
}

/// A member's answer names as votes the copies it took as proposals from the leader of
/// their term, in runs, and not a copy it merged from answers (see `Room::votes_among`).
#[test]
fn an_answer_names_the_votes_among_its_copies() {
    let mut n = follower(base_time());
    let mut of_2 = text(5);
    of_2.term = 2;
    let copies = [text(1), text(2), add_carol(3), text(4), of_2];
    for e in &copies {
        assert!(n.hold(e.clone()));
    }
    // #4 was merged from an answer: no vote.
    for (seq, term) in [(1, 1), (2, 1), (3, 1), (5, 2)] {
        n.room.note_vote(Seq(seq), term, LEADER);
    }
    let run = |first, last, term| VotedRun {
        first: Seq(first),
        last: Seq(last),
        term,
    };
    let named = n.room.votes_among(&copies);
    assert_eq!(named, vec![run(1, 3, 1), run(5, 5, 2)]);
    // A vote of another term than the copy held is none.
    n.room.note_vote(Seq(4), 2, LEADER);
    assert_eq!(n.room.votes_among(&copies), named);
}
