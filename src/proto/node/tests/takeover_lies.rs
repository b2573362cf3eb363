//! What one lying survivor can still make a new leader take in its take-over
//! (`room/recovery.rs`): answers are taken as they come. The tests marked `ignore` show
//! holes listed in README's Known limits ("A new leader takes what survivors answer on
//! their word"); each passes once its hole is closed. Proving answers by their seals is
//! not enough on its own: an origin holds its own messages before their run's seal
//! (the first test).

use super::joins::follower_welcomed_as;
use super::takeover::{answer_to_bob, bob_taking_over, bob_wins_round_1};
use super::takeover_forged::shown;
use super::*;
use crate::proto::node::room::COMMITTED_TERM;
use crate::wire::ConfigChange;

/// Bob taking over, carol's answer in: `e` at #1, sent as committed, and her reply.
fn bob_told_by_carol(t0: Instant, mut e: ChatEntry) -> Node {
    let mut n = bob_taking_over(t0);
    e.term = COMMITTED_TERM;
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::SyncEntry(e)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 3, answer_to_bob(1, 1)));
    n
}

/// An origin acks its own message from the leader without its run's seal (bob types two
/// lines, sealed as one run on the second; alice proposes the first alone). So a
/// committed stretch of a run may carry no seal anywhere, and a new leader cannot require
/// one of a survivor's answer: a build that did gave such copies up and filled their
/// numbers (`sim_failover` two-leaders seeds 602, 751, 918, 1108, 1262, 1278).
#[test]
fn an_origin_acks_its_own_message_before_its_runs_seal() {
    let t0 = base_time();
    let (mut n, _) = super::joins::follower_with(t0, Vec::new());
    for text in ["x", "y"] {
        n.handle_command(t0, WallMillis(1), Command::SendAll { text: text.into() });
    }
    let out = drain(&mut n);
    let first = out
        .messages_to(addr(1))
        .into_iter()
        .find_map(|m| match m {
            Message::Submit(s) if s.origin_seq == OriginSeq(1) => Some(s.clone()),
            _ => None,
        })
        .expect("bob submits his first line");
    assert!(
        first.proof.seal.is_none(),
        "the run is sealed on its last line"
    );
    let e = entry_of(1, BOB, &first);
    n.handle_datagram(t0, addr(1), &data(LEADER, 9, Message::Sequenced(e)));
    let out = drain(&mut n);
    assert!(
        acked(&out, addr(1), 9),
        "acked at once: it counts towards #1's majority"
    );
}

/// One lying member (carol) sends, as committed, a change of the voters at #1: bob
/// applies it at once on her word alone (alice is no longer a voter).
#[test]
#[ignore = "a known hole: README Known limits, a new leader takes what survivors answer on their word"]
fn a_lying_member_changes_the_voters_with_a_committed_change() {
    let t0 = base_time();
    let change = ChatEntry::config(Seq(1), ConfigChange::Remove("alice".into()), Seq(0));
    let mut n = bob_told_by_carol(t0, change);
    drain(&mut n);
    let voters: Vec<String> = n.room.voters().iter().cloned().collect();
    assert!(
        voters.contains(&"alice".to_string()),
        "one member's word changed who votes"
    );
}

/// One lying member (carol) sends a committed filler at #1, where alice (honest) holds
/// her own message: bob shows the filler at once, and alice's #1 is never shown nor
/// proposed.
#[test]
#[ignore = "a known hole: README Known limits, a new leader takes what survivors answer on their word"]
fn a_lying_members_committed_filler_hides_a_message() {
    let t0 = base_time();
    let filler = ChatEntry::filler(Seq(1));
    let mut n = bob_told_by_carol(t0, filler);
    let m1 = entry(1, LEADER, "alice", 1);
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, Message::SyncEntry(m1)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 7, answer_to_bob(1, 1)));
    let out = drain(&mut n);
    let at_1: Vec<String> = n
        .room
        .history()
        .range(Seq(1), Seq(1))
        .map(|e| e.text.clone())
        .collect();
    eprintln!("bob's history at #1: {at_1:?}; shown {:?}", shown(&out));
    assert_eq!(at_1, ["m1"], "alice's #1, not carol's filler");
}

/// One lying member (carol) replays a genuine sealed message of alice's (her #7, shown
/// long before bob joined) as committed at #1: bob shows it at once, at the number
/// carol chose.
#[test]
#[ignore = "a known hole: README Known limits, a new leader takes what survivors answer on their word"]
fn a_lying_member_replays_a_genuine_message_at_a_number_of_its_choosing() {
    let t0 = base_time();
    let mut old = entry(1, LEADER, "alice", 1);
    old.text = "alice: yes, do it".into();
    let old = sealed_by(&identity(LEADER.0 as u8), old);
    let mut n = bob_told_by_carol(t0, old);
    let out = drain(&mut n);
    assert!(
        shown(&out).is_empty(),
        "shown on carol's word for its number"
    );
}

/// Bob joined at #5 (#1..#4 are not in his history). Carol sends a "committed" copy of
/// #1 as alice's submission 1, kept aside (`Node::backfill`) for members that lack it.
/// When alice's own submission 1 (sealed, so hers) then comes, bob sequences it only if
/// carol's copy was not it: a made-up copy (text changed, unsealed) is counted forged and
/// the genuine message is sequenced; a true copy makes it a repeat, never numbered twice.
#[test]
fn a_forged_backfill_copy_does_not_censor_a_genuine_submission() {
    // Alice's genuine submission 1, sealed (`m9` at #9 as bob will sequence it).
    let genuine = entry(9, LEADER, "alice", 1);
    let mut made_up = entry(1, LEADER, "alice", 1);
    made_up.text = "made up".into();
    made_up.proof = Provenance::default();
    let mut true_copy = genuine.clone();
    true_copy.seq = Seq(1);
    let cases = [
        ("no copy", None, vec!["m9"], 0),
        ("a made-up copy", Some(made_up), vec!["m9"], 1),
        ("a true copy", Some(true_copy), vec![], 0),
    ];
    for (case, copy, expected, forged) in cases {
        let t0 = base_time();
        let (mut n, _) = follower_welcomed_as(t0, |w| {
            w.next_seq = Seq(5);
            w.oldest = Seq(5);
            w.pending_from = Seq(5);
        });
        bob_wins_round_1(&mut n, t0);
        let reply = |id| {
            let Message::SyncReply {
                epoch, sent, votes, ..
            } = answer_to_bob(4, id)
            else {
                unreachable!()
            };
            Message::SyncReply {
                epoch,
                next: Seq(5),
                high: Seq(4),
                sent,
                votes,
            }
        };
        let sent = u32::from(copy.is_some());
        if let Some(mut copy) = copy {
            copy.term = COMMITTED_TERM;
            n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::SyncEntry(copy)));
        }
        n.handle_datagram(t0, addr(3), &data(CAROL, 3, reply(sent)));
        n.handle_datagram(t0, addr(1), &data(LEADER, 6, reply(0)));
        drain(&mut n);
        assert!(!n.room.is_recovering(), "{case}: bob leads");
        let s = Submit {
            origin_seq: genuine.origin_seq,
            committed_below: OriginSeq(1),
            name: genuine.name.clone(),
            lamport: genuine.lamport,
            sent_at: genuine.sent_at,
            text: genuine.text.clone(),
            proof: genuine.proof.clone(),
        };
        n.handle_datagram(t0, addr(1), &data(LEADER, 8, Message::Submit(s)));
        let out = drain(&mut n);
        let proposed: Vec<String> = out
            .sent
            .iter()
            .filter_map(|(_, p)| match p {
                Packet::Data {
                    msg: Message::Sequenced(e),
                    ..
                } if e.origin == LEADER => Some(e.text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(proposed, expected, "{case}: alice's submission 1 proposed");
        assert_eq!(n.stats().forged, forged, "{case}: counted forged");
    }
}

/// One lying member (carol) answers with alice's #1 as committed, its text altered after
/// alice sealed it: bob refuses it as forged, and shows nothing of it.
#[test]
fn a_lying_members_altered_copy_is_refused() {
    let t0 = base_time();
    let mut bent = entry(1, LEADER, "alice", 1);
    bent.text = "alice: send the room key to carol".into();
    let mut n = bob_told_by_carol(t0, bent);
    let out = drain(&mut n);
    assert!(shown(&out).is_empty(), "shown: {:?}", shown(&out));
    assert_eq!(n.stats().forged, 1, "refused as forged");
}
