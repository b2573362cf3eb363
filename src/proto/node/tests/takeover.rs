//! A new leader's take-over (`room/recovery.rs`): while it gathers the survivors' answers
//! it acks those, and no proposal of the leader it replaces, whose majority its ack could
//! complete. Likewise a node let back in by a leader of a lower term than one it followed
//! before (`life/join.rs`) acks none of that leader's proposals, and replaces it.

use super::terms::epoch;
use super::*;
use crate::wire::ConfigChange;

/// Whether `out` acks `from`'s data packet `id`.
fn acked(out: &Out, to: SocketAddr, id: MsgId) -> bool {
    out.acks_to(to).iter().any(|a| {
        a.stream == id.stream()
            && (a.upto >= id.seq() || a.ranges.iter().any(|(f, l)| (*f..=*l).contains(&id.seq())))
    })
}

/// Bob, following alice in term 0, wins round 1 (his own token came back from carol)
/// and asks the survivors what they hold.
pub(super) fn bob_taking_over(t0: Instant) -> Node {
    bob_taking_over_sent(t0).0
}

/// [`bob_taking_over`], and what bob sent.
fn bob_taking_over_sent(t0: Instant) -> (Node, Out) {
    bob_taking_over_with(t0, Vec::new())
}

/// [`bob_taking_over_sent`] with `more` members in the room besides alice and carol
/// (online, not voting).
pub(super) fn bob_taking_over_with(t0: Instant, more: Vec<Member>) -> (Node, Out) {
    let (mut n, _) = follower_with(t0, more);
    let out = bob_wins_round_1(&mut n, t0);
    (n, out)
}

/// Bob (`n`), with alice, bob and carol voting, wins round 1 and asks alice and carol
/// what they hold; what he sent.
pub(super) fn bob_wins_round_1(n: &mut Node, t0: Instant) -> Out {
    let voters = ["alice", "bob", "carol"]
        .map(String::from)
        .into_iter()
        .collect();
    n.room.set_voters(voters, Seq(0));
    let token = Message::Election {
        term: 1,
        candidate: BOB,
        log: Seq(1000),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, token));
    let out = drain(n);
    assert!(
        n.room.is_recovering(),
        "bob won round 1 and gathers answers"
    );
    for to in [addr(1), addr(3)] {
        assert!(
            out.messages_to(to)
                .iter()
                .any(|m| matches!(m, Message::SyncRequest { .. })),
            "{to} is asked what it holds"
        );
    }
    out
}

#[test]
fn a_new_leader_gathering_answers_acks_no_proposal_of_the_leader_it_replaces() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    // Alice has not heard of round 1 yet: she proposes #1 in term 0. Were bob to ack it,
    // alice would hold a majority (alice and bob) for a message bob's own majority (bob
    // and carol) may never see.
    let proposal = entry(1, LEADER, "alice", 1);
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, Message::Sequenced(proposal)));
    let out = drain(&mut n);
    assert!(
        !acked(&out, addr(1), MsgId(5)),
        "the deposed leader's proposal is not acked"
    );
}

#[test]
fn a_new_leader_takes_and_acks_the_survivors_answers() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    // Carol answers: she holds #1 of term 0, then says how many she sent.
    let held = entry(1, LEADER, "alice", 1);
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::SyncEntry(held)));
    let out = drain(&mut n);
    assert!(acked(&out, addr(3), MsgId(2)), "an answer is acked");
    n.handle_datagram(t0, addr(3), &data(CAROL, 3, answer_to_bob(1, 1)));
    // Alice, told of round 1, holds nothing.
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, answer_to_bob(0, 0)));
    let out = drain(&mut n);
    assert!(!n.room.is_recovering(), "bob and carol are a majority");
    let proposed: Vec<&ChatEntry> = out
        .messages_to(addr(3))
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(
        proposed
            .iter()
            .any(|e| e.seq == Seq(1) && e.text == "m1" && e.term == 1),
        "carol's copy of #1 is proposed again in term 1: {proposed:?}"
    );
}

/// Bob restarted: on disk, the room of alice and carol and carol's epoch of term 3.
fn bob_restarted_after_term_3(t0: Instant) -> Node {
    let mut cfg = NodeConfig::new("bob", addr(2), Some(addr(1)));
    cfg.join_timeout = Duration::from_secs(600);
    let saved = crate::proto::durable::Restored {
        members: vec![member(LEADER, "alice", 1), member(CAROL, "carol", 3)],
        epoch: Some(Epoch {
            term: 3,
            leader: CAROL,
        }),
        voters: Some((Seq(0), ["alice", "bob", "carol"].map(String::from).to_vec())),
        ..Default::default()
    };
    let mut n = Node::restore(cfg, BOB, t0, saved);
    drain(&mut n);
    while n.poll_write().is_some() {}
    n
}

#[test]
fn a_node_let_in_by_an_older_leader_acks_none_of_its_proposals_and_replaces_it() {
    let t0 = base_time();
    let mut n = bob_restarted_after_term_3(t0);
    // Alice still leads term 0 (she never heard of terms 1 to 3) and lets bob in.
    let w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    n.handle_datagram(t0, addr(1), &data(LEADER, 1, Message::Welcome(w)));
    let out = drain(&mut n);
    assert!(
        out.events.iter().any(|e| matches!(e, Event::Joined { .. })),
        "bob is back in the room: {:?}",
        out.events
    );
    let rounds: Vec<u64> = out
        .messages_to(addr(3))
        .iter()
        .filter_map(|m| match m {
            Message::Election { term, .. } => Some(*term),
            _ => None,
        })
        .collect();
    assert_eq!(rounds, vec![4], "bob starts a round above term 3");
    while let Some(w) = n.poll_write() {
        if let crate::proto::durable::Write::Room { epoch, .. } = w {
            assert_eq!(epoch.map(|e| e.term), Some(3), "term 3 stays on disk");
        }
    }
    let proposal = entry(1, LEADER, "alice", 1);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, Message::Sequenced(proposal)));
    let out = drain(&mut n);
    assert!(
        !acked(&out, addr(1), MsgId(2)),
        "a proposal of term 0 is not acked by a node that followed term 3"
    );
}

#[test]
fn what_a_restarted_node_is_given_while_it_looks_for_the_room_waits_for_it() {
    let t0 = base_time();
    let mut n = bob_restarted_after_term_3(t0);
    n.handle_command(
        t0,
        WallMillis(5),
        Command::SendAll {
            text: "typed early".into(),
        },
    );
    let out = drain(&mut n);
    assert!(
        !out.events.iter().any(|e| matches!(e, Event::Error(_))),
        "not refused: {:?}",
        out.events
    );
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::Notice(t) if t.contains("waits"))),
        "the user is told it waits: {:?}",
        out.events
    );
    assert!(
        !out.sent.iter().any(|(_, p)| matches!(
            p,
            Packet::Data {
                msg: Message::Submit(_),
                ..
            }
        )),
        "nothing is submitted before the room is found"
    );
    n.handle_command(
        t0,
        WallMillis(5),
        Command::Send {
            to: vec!["carol".into()],
            text: "psst".into(),
        },
    );
    let out = drain(&mut n);
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::Error(CommandError::LookingForRoom))),
        "a private message is refused, saying why: {:?}",
        out.events
    );
    // Alice lets bob back in (of term 3 this time): what he typed goes to her.
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    w.epoch = Epoch {
        term: 3,
        leader: CAROL,
    };
    w.members[0].presence = Presence::Online;
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, Message::Welcome(w)));
    let out = drain(&mut n);
    let submitted: Vec<&str> = out
        .messages_to(addr(3))
        .into_iter()
        .filter_map(|m| match m {
            Message::Submit(s) => Some(s.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(submitted, vec!["typed early"]);
}

/// A survivor's answer to bob's round 1: it holds nothing beyond #0.
fn holds_nothing() -> Message {
    Message::SyncReply {
        epoch: Epoch {
            term: 1,
            leader: BOB,
        },
        next: Seq(1),
        high: Seq(0),
        sent: 0,
        votes: Vec::new(),
    }
}

/// A survivor that missed the round (paused while it ran) asks the new leader to let it
/// in instead of answering: the take-over no longer waits for its answer (it waited a
/// recovery timeout before).
#[test]
fn a_survivor_asking_to_be_let_in_is_not_waited_for() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let reply = holds_nothing();
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, reply));
    drain(&mut n);
    assert!(n.room.is_recovering(), "carol has not answered yet");
    let join = Message::Join {
        name: "carol".into(),
        key: identity(CAROL.0 as u8).verifying_key().to_bytes(),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, join));
    drain(&mut n);
    assert!(
        !n.room.is_recovering(),
        "bob and alice are a majority; carol's join is her answer"
    );
}

/// Anyone may send a join, under any id: joins claiming alice's and carol's ids from
/// another address, with another key, excuse nobody, and their real answers still end
/// the take-over.
#[test]
fn forged_joins_do_not_discard_the_survivors_answers() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    for (id, msg_id) in [(LEADER, 90), (CAROL, 91)] {
        n.handle_datagram(t0, addr(9), &data(id, msg_id, forged_join()));
        drain(&mut n);
    }
    assert!(n.room.is_recovering(), "nobody answered yet");
    let reply = holds_nothing();
    n.handle_datagram(t0, addr(1), &data(LEADER, 6, reply.clone()));
    n.handle_datagram(t0, addr(3), &data(CAROL, 6, reply));
    drain(&mut n);
    assert!(
        !n.room.is_recovering(),
        "alice and carol answered: a stranger's joins must not void their answers"
    );
}

/// The same rule for the first number kept after a skip: bob, let in by alice (term 0)
/// after following term 3, is told #1 to #4 are no longer kept; alice's proposal #5 of
/// term 0, which his skip waits for, is not acked either (its ack would count towards a
/// majority of term 0, as any other proposal's would).
#[test]
fn a_node_let_in_by_an_older_leader_acks_no_proposal_its_skip_waits_for() {
    let t0 = base_time();
    let mut n = bob_restarted_after_term_3(t0);
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    w.next_seq = Seq(6);
    w.pending_from = Seq(5);
    n.handle_datagram(t0, addr(1), &data(LEADER, 1, Message::Welcome(w)));
    drain(&mut n);
    let gone = Message::Forgotten {
        from: Seq(1),
        to: Seq(4),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, gone));
    drain(&mut n);
    let proposal = entry(5, LEADER, "alice", 1);
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, Message::Sequenced(proposal)));
    let out = drain(&mut n);
    assert!(
        !acked(&out, addr(1), MsgId(3)),
        "a proposal of term 0 is not acked by a node that followed term 3"
    );
}

/// A survivor's answer to bob's take-over of term 1: it holds up to `high`, and sends `sent`.
pub(super) fn answer_to_bob(high: u64, sent: u32) -> Message {
    Message::SyncReply {
        epoch: Epoch {
            term: 1,
            leader: BOB,
        },
        next: Seq(1),
        high: Seq(high),
        sent,
        votes: Vec::new(),
    }
}

/// Let in by alice (term 0) below carol's term 3, bob's round 4 is lost: when it times
/// out he starts round 5 at once, not a pre-vote (the voters follow alice, who leads,
/// and would refuse, while he acks none of her proposals).
#[test]
fn a_node_let_in_by_an_older_leader_starts_again_when_its_round_times_out() {
    let t0 = base_time();
    let mut n = bob_restarted_after_term_3(t0);
    let w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    n.handle_datagram(t0, addr(1), &data(LEADER, 1, Message::Welcome(w)));
    drain(&mut n);
    let at = t0 + n.ctx.cfg.election_timeout + Duration::from_millis(10);
    n.handle_timeout(at);
    let out = drain(&mut n);
    let sent: Vec<&Message> = [addr(1), addr(3)]
        .iter()
        .flat_map(|a| out.messages_to(*a))
        .collect();
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::Election { term, .. } if *term > 4)),
        "a new round: {sent:?}"
    );
    assert!(
        !sent.iter().any(|m| matches!(m, Message::PreVote { .. })),
        "no pre-vote: {sent:?}"
    );
}

/// A new leader with nothing to propose again proposes a filler of its own term first,
/// and no change of the configuration until that commits: its configuration may end with
/// a change a majority never held (an addition only the old leader and the newcomer
/// got), and a change of its own on top could then commit beside another leader's
/// conflicting one at the same number (Raft's one-change-at-a-time membership bug).
#[test]
fn a_new_leader_changes_no_voter_before_an_entry_of_its_term_commits() {
    let t0 = base_time();
    let (mut n, asked) = bob_taking_over_sent(t0);
    // Carol hears bob (she acks his question), so only the rule below holds the change.
    let ids = asked.ids_to(addr(3), |m| matches!(m, Message::SyncRequest { .. }));
    n.handle_datagram(t0, addr(3), &ack_of(n.id(), CAROL, &ids));
    // Alice, the old leader, is gone: she should be removed.
    n.handle_datagram(
        t0,
        addr(1),
        &member_says((LEADER, "alice", 1), Presence::Offline, 1000),
    );
    drain(&mut n);
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, answer_to_bob(0, 0)));
    let out = drain_after_hold(&mut n, t0);
    assert!(!n.room.is_recovering(), "bob and carol are a majority");
    let proposed = |out: &Out| -> Vec<ChatEntry> {
        out.messages_to(addr(3))
            .into_iter()
            .filter_map(|m| match m {
                Message::Sequenced(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    };
    let first = proposed(&out);
    assert!(
        matches!(first.as_slice(), [e] if e.seq == Seq(1) && e.term == 1 && e.is_filler() && e.config_change().is_none()),
        "a filler of term 1 first, and nothing else: {first:?}"
    );
    // Carol acks it: it commits, and alice's removal follows at once.
    let ids = out.ids_to(addr(3), |m| matches!(m, Message::Sequenced(_)));
    n.handle_datagram(t0, addr(3), &ack_of(n.id(), CAROL, &ids));
    let out = drain_after_hold(&mut n, t0);
    let next = proposed(&out);
    assert!(
        next.iter().any(|e| e.seq == Seq(2)
            && matches!(e.config_change(), Some(ConfigChange::Remove(u)) if u == "alice")),
        "alice's removal follows the filler: {next:?}"
    );
}

/// Alice restarted from disk (carol's #1 shown, voters {alice}, `held` held uncommitted,
/// the saved `members` and `epoch`), with nobody to answer: she carries the room on and
/// types one message. Returns her node, the time, and the notices she was shown.
pub(super) fn alice_restarted_alone(
    members: Vec<Member>,
    epoch: Epoch,
    held: ChatEntry,
) -> (Node, Instant, Vec<String>) {
    use crate::proto::durable::Restored;
    let t0 = base_time();
    let mut first = entry(1, CAROL, "carol", 1);
    first.term = 0;
    let saved = Restored {
        history: vec![first],
        members,
        epoch: Some(epoch),
        voters: Some((Seq(0), vec!["alice".into()])),
        held: vec![held],
        ..Restored::default()
    };
    let cfg = NodeConfig::new("alice", addr(1), None);
    let mut n = Node::restore(cfg, LEADER, t0, saved);
    let mut said = notices(&drain(&mut n));
    let mut now = t0;
    while !n.is_member() {
        assert!(now < t0 + Duration::from_secs(60), "no room after a minute");
        now += Duration::from_millis(50);
        n.handle_timeout(now);
        said.extend(notices(&drain(&mut n)));
    }
    n.handle_command(
        now,
        WallMillis(5),
        Command::SendAll {
            text: "after the restart".into(),
        },
    );
    (n, now, said)
}

/// [`alice_restarted_alone`] where her earlier process led `term`, holding `held`; run
/// for 200 ms after she typed.
fn alice_restarted_after_leading(term: u64, held: ChatEntry) -> Node {
    let earlier = NodeId(99);
    let (mut n, now, _) = alice_restarted_alone(
        vec![member(earlier, "alice", 1), member(BOB, "bob", 2)],
        epoch(term, earlier),
        held,
    );
    n.handle_timeout(now + Duration::from_millis(200));
    drain(&mut n);
    n
}

/// What alice showed from #2 on, as `(number, text)`.
pub(super) fn shown_from_2(n: &Node) -> Vec<(Seq, String)> {
    n.room
        .history()
        .range(Seq(2), Seq(10))
        .map(|e| (e.seq, e.text.clone()))
        .collect()
}

/// A node restarted whose committed configuration is itself alone, with nobody to answer,
/// carries the room on; a copy it held uncommitted may be another leader's committed
/// entry, so it is proposed again, not dropped. A room alice created (voters {alice});
/// bob joins and alice proposes Add(bob) at #2 in term 0, then crashes before bob's ack
/// reaches her. Bob (his log's configuration {alice, bob}) seeks a round; alice, looking
/// for the room, joins through him, which is her pre-vote yes; bob wins term 1, lets her
/// in, she answers, and he takes over and proposes Add(bob) again at #2 in term 1. She
/// acks it (alice and bob are a majority of {alice, bob}: committed, bob shows it) and
/// crashes again before his commit notice comes; on her disk, voters {alice}, Add(bob)
/// held. Back with bob out of reach, she must not number her own next message #2: she
/// waits for bob, and says so.
#[test]
fn a_node_carrying_the_room_on_alone_keeps_what_it_acked_of_a_later_leader() {
    let mut add = ChatEntry::config(Seq(2), ConfigChange::Add("bob".into()), Seq(0));
    add.term = 1;
    let (mut n, now, notices) =
        alice_restarted_alone(vec![member(BOB, "bob", 2)], epoch(1, BOB), add);
    n.handle_timeout(now + Duration::from_secs(1));
    drain(&mut n);
    assert_eq!(shown_from_2(&n), vec![], "alice shows nothing past #1");
    assert!(!n.is_sequencing(), "alice waits for bob");
    assert!(
        notices
            .iter()
            .any(|s| s.contains("once a majority of its 2 voters is back")),
        "{notices:?}"
    );
}

/// A node alone in both configurations, restarted holding another leader's message
/// uncommitted, carries the room on at once and shows that copy at its number before
/// anything of its own: with its ack the copy may have been committed (and shown there).
#[test]
fn a_node_carrying_the_room_on_alone_proposes_a_held_copy_again() {
    let mut held = entry(2, BOB, "bob", 2);
    held.term = 1;
    let text = held.text.clone();
    let (mut n, now, _) = alice_restarted_alone(vec![member(BOB, "bob", 2)], epoch(1, BOB), held);
    n.handle_timeout(now + Duration::from_millis(200));
    drain(&mut n);
    assert_eq!(
        shown_from_2(&n),
        vec![(Seq(2), text), (Seq(3), "after the restart".to_string())],
        "the held copy first, at its number, then alice's own message"
    );
}

/// Alice led a room of one (voters {alice}), proposed Add(bob) at #2 in her own term 0
/// for a newcomer, and crashed; bob went for good. Her disk: epoch (0, her earlier
/// process), voters {alice}, Add(bob) held (her own proposal: no later leader can have
/// counted her ack, and nobody was told it committed). Back with nobody answering, she
/// goes on alone, not waiting for bob.
#[test]
fn a_node_restarted_alone_with_its_own_held_add_goes_on() {
    let mut add = ChatEntry::config(Seq(2), ConfigChange::Add("bob".into()), Seq(0));
    add.term = 0;
    let n = alice_restarted_after_leading(0, add);
    assert_eq!(
        shown_from_2(&n),
        vec![(Seq(2), "after the restart".to_string())],
        "alice goes on at #2 (sequencing: {})",
        n.is_sequencing()
    );
}

/// The control: alice led term 2 after a take-over (her earlier process; voters {alice})
/// and crashed holding bob's message of an earlier term that she proposed again in term
/// 2. That entry may have been committed, and shown, in its first term (her ack was its
/// majority), so back alone she proposes it again at its number rather than dropping it
/// as her own first proposal.
#[test]
fn a_node_restarted_alone_keeps_a_copy_it_proposed_again_in_a_later_term() {
    let mut held = entry(2, BOB, "bob", 2);
    held.term = 2;
    let text = held.text.clone();
    let n = alice_restarted_after_leading(2, held);
    assert_eq!(
        shown_from_2(&n),
        vec![(Seq(2), text), (Seq(3), "after the restart".to_string())],
        "bob's message at its number, then alice's own"
    );
}
