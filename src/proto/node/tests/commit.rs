//! The commit rule: a leader shows a proposal and tells the members only once a majority
//! holds it, says when the room waits for a majority and when it goes on; a member skips
//! what nobody keeps any more, on the leader's word.

use super::*;
use crate::wire::ConfigChange;

/// Hold-back: messages are shown in sequence order; a gap is fetched from the leader.
#[test]
fn follower_holds_back_and_fetches_gaps() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, Message::Sequenced(entry(3, CAROL, "carol", 1))),
    );
    assert!(room_seqs(&drain(&mut n)).is_empty());
    let later = t0 + Duration::from_millis(400);
    n.handle_timeout(later);
    let out = drain(&mut n);
    assert_eq!(
        out.messages_to(addr(1)),
        vec![&Message::Fetch {
            from: Seq(1),
            to: Seq(2)
        }]
    );
    n.handle_datagram(
        later,
        addr(1),
        &data(LEADER, 3, Message::Sequenced(entry(2, CAROL, "carol", 2))),
    );
    n.handle_datagram(
        later,
        addr(1),
        &data(LEADER, 4, Message::Sequenced(entry(1, LEADER, "alice", 1))),
    );
    assert!(
        room_seqs(&drain(&mut n)).is_empty(),
        "nothing is shown before the leader says it is committed"
    );
    n.handle_datagram(later, addr(1), &data(LEADER, 5, commit(2)));
    assert_eq!(room_seqs(&drain(&mut n)), vec![1, 2]);
    n.handle_datagram(later, addr(1), &data(LEADER, 6, commit(3)));
    assert_eq!(room_seqs(&drain(&mut n)), vec![3]);
}

/// The leader shows a proposal, and tells the members, only once a majority holds it:
/// with bob in the room, that is once bob acked it.
#[test]
fn leader_commits_once_a_majority_holds_a_proposal() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    n.handle_datagram(t0, addr(2), &data(BOB, 3, Message::Submit(submit(1))));
    let out = drain(&mut n);
    assert!(room_seqs(&out).is_empty(), "held by the leader alone");
    let proposals = out.ids_to(addr(2), |m| matches!(m, Message::Sequenced(_)));
    assert_eq!(proposals.len(), 1);
    n.handle_datagram(t0, addr(2), &ack_of(n.id(), BOB, &proposals));
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), vec![2]);
    assert_eq!(
        out.messages_to(addr(2)),
        vec![&Message::Commit {
            term: n.epoch().unwrap().term,
            upto: Seq(2)
        }]
    );
}

/// CheckQuorum, made visible: a leader whose proposal waits an election timeout for a
/// majority says the room is unreachable (and `status` says so); once the proposal
/// commits, it says the room goes on.
#[test]
fn a_leader_without_a_majority_says_so_and_says_when_it_has_one_again() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    n.handle_datagram(t0, addr(2), &data(BOB, 3, Message::Submit(submit(1))));
    let out = drain(&mut n);
    let mut proposals = out.ids_to(addr(2), |m| matches!(m, Message::Sequenced(_)));
    // Bob's heartbeats keep coming (he is alive), but he never acks: no majority.
    let mut said = Vec::new();
    let mut t = t0;
    for k in 0..30u64 {
        t = t0 + Duration::from_millis(100 * (k + 1));
        beat_from(&mut n, t, BOB, 2);
        n.handle_timeout(t);
        let out = drain(&mut n);
        // (Sent again when the first copies are given up.)
        proposals.extend(out.ids_to(addr(2), |m| matches!(m, Message::Sequenced(_))));
        said.extend(notices(&out));
    }
    assert_eq!(
        said,
        ["the room is unreachable: 1 of 2 members answer, 2 needed; your messages wait"],
        "one notice once the proposal waited an election timeout"
    );
    assert!(n.status_view().waiting_for_majority);
    n.handle_datagram(t, addr(2), &ack_of(n.id(), BOB, &proposals));
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), vec![2]);
    assert_eq!(
        notices(&out),
        ["the room is reachable again; messages go through"]
    );
    assert!(!n.status_view().waiting_for_majority);
}

/// Messages the leader no longer keeps are skipped, with a line saying how many, and the
/// member goes on from there instead of waiting for them.
#[test]
fn a_member_skips_what_nobody_keeps_and_says_so() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, Message::Sequenced(entry(6, CAROL, "carol", 1))),
    );
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, commit(6)));
    assert!(room_seqs(&drain(&mut n)).is_empty(), "1 to 5 are missing");
    // Only the leader may say so.
    let forgotten = Message::Forgotten {
        from: Seq(1),
        to: Seq(5),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, forgotten.clone()));
    assert!(
        room_seqs(&drain(&mut n)).is_empty(),
        "carol is not the leader"
    );
    // The leader keeps nothing older, but carol may (the leader may have joined after
    // them): she is asked first, and says she does not either.
    n.handle_datagram(t0, addr(1), &data(LEADER, 4, forgotten.clone()));
    let out = drain(&mut n);
    assert!(room_seqs(&out).is_empty(), "carol is asked first");
    let asked = out.ids_to(addr(3), |m| {
        matches!(m, Message::Fetch { from: Seq(1), .. })
    });
    assert_eq!(asked.len(), 1, "{:?}", out.messages_to(addr(3)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, forgotten.clone()));
    let out = drain(&mut n);
    assert!(room_seqs(&out).is_empty(), "the leader is asked again");
    let asked = out.ids_to(addr(1), |m| {
        matches!(m, Message::Fetch { from: Seq(1), .. })
    });
    assert_eq!(asked.len(), 1, "{:?}", out.messages_to(addr(1)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, forgotten));
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), vec![6]);
    assert!(out.events.iter().any(
        |e| matches!(e, Event::Notice(t) if t == "5 older messages are no longer kept by anyone")
    ));
}

/// A message typed just before `exit`, in the same batch of commands (a script piped in),
/// is sealed and committed before the node leaves, not reported unconfirmed.
#[test]
fn a_message_typed_just_before_leaving_is_sent_first() {
    let t0 = base_time();
    let mut n = leader(t0);
    n.handle_command(
        t0,
        WallMillis(1),
        Command::SendAll {
            text: "bye all".into(),
        },
    );
    n.handle_command(t0, WallMillis(1), Command::Leave);
    let out = drain(&mut n);
    assert!(
        !out.events
            .iter()
            .any(|e| matches!(e, Event::Unconfirmed { .. })),
        "nothing left unconfirmed: {:?}",
        out.events
    );
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::Room { entry, .. } if entry.text == "bye all")),
        "shown before leaving: {:?}",
        out.events
    );
}

/// A leader proposes removing a voter only while a majority of the configuration without
/// it hears the leader: otherwise the removal, which counts at once, could never commit
/// and would stall the room. Here carol leaves when bob has acked nothing for longer than
/// an election timeout: the leader first checks that bob hears it, and proposes the
/// removal on his ack.
#[test]
fn a_removal_waits_until_a_majority_without_the_member_hears_the_leader() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    let key = identity(CAROL.0 as u8);
    let out = join_as(&mut n, t0, (CAROL, 3, "carol"), &key, &key);
    ack_proposals(&mut n, t0, &out, &[(BOB, 2), (CAROL, 3)]);
    assert!(n.room.voters().contains("carol"), "carol votes");

    // Bob's last ack is older than the election timeout.
    n.ctx.cfg.election_timeout = Duration::from_millis(100);
    let later = t0 + Duration::from_millis(150);
    n.handle_datagram(
        later,
        addr(3),
        &member_says((CAROL, "carol", 3), Presence::Offline, 1000),
    );
    assert!(!n.members().is_online(CAROL), "carol left");
    let mut out = drain(&mut n);
    // What waits to be batched leaves too.
    if let Some(due) = n.transport.held_until() {
        n.handle_timeout(due);
        out.sent.extend(drain(&mut n).sent);
    }
    let is_removal = |m: &Message| {
        matches!(m, Message::Sequenced(e)
            if matches!(e.config_change(), Some(ConfigChange::Remove(u)) if u == "carol"))
    };
    assert!(
        out.ids_to(addr(2), is_removal).is_empty(),
        "not proposed before bob is known to hear the leader"
    );
    let leader_id = n.id();
    let asked = out.ids_to(
        addr(2),
        |m| matches!(m, Message::Members(list) if list.len() == 1 && list[0].id == leader_id),
    );
    assert_eq!(asked.len(), 1, "bob is sent the leader's own entry");

    // Bob acks: the removal goes out at once.
    n.handle_datagram(later, addr(2), &ack_of(n.id(), BOB, &asked));
    let out = drain(&mut n);
    assert_eq!(out.ids_to(addr(2), is_removal).len(), 1, "proposed now");
}

/// The same rule for a newcomer: in a room of one, adding bob makes two voters, both
/// needed, so bob is added only once he acked the welcome (a newcomer that crashed right
/// after its proof would otherwise stall the room).
#[test]
fn a_newcomer_is_added_once_it_acked_its_welcome() {
    let t0 = base_time();
    let mut n = leader(t0);
    let out = join_bob(&mut n, t0);
    let is_add = |m: &Message| {
        matches!(m, Message::Sequenced(e)
            if matches!(e.config_change(), Some(ConfigChange::Add(u)) if u == "bob"))
    };
    assert!(
        out.ids_to(addr(2), is_add).is_empty(),
        "not before bob acked"
    );
    let welcome = out.ids_to(addr(2), |m| matches!(m, Message::Welcome(_)));
    assert!(!welcome.is_empty(), "bob is welcomed");
    n.handle_datagram(t0, addr(2), &ack_of(n.id(), BOB, &welcome));
    let out = drain(&mut n);
    assert_eq!(out.ids_to(addr(2), is_add).len(), 1, "added on his ack");
}

/// A newcomer that goes after its addition was proposed and before it acked it: in a
/// room of one the addition needs its copy, and a removal after it would wait for it,
/// so the room would wait for good. The leader removes it again at once, and that
/// removal, with the addition before it, commits by the leader alone. (Before: alice's
/// messages waited for bob, gone, for good.)
#[test]
fn a_newcomer_gone_before_acking_its_addition_is_removed_again() {
    let t0 = base_time();
    let mut n = leader(t0);
    let out = join_bob(&mut n, t0);
    let welcome = out.ids_to(addr(2), |m| matches!(m, Message::Welcome(_)));
    n.handle_datagram(t0, addr(2), &ack_of(n.id(), BOB, &welcome));
    let out = drain(&mut n);
    let is_add = |m: &Message| {
        matches!(m, Message::Sequenced(e)
            if matches!(e.config_change(), Some(ConfigChange::Add(u)) if u == "bob"))
    };
    assert_eq!(out.ids_to(addr(2), is_add).len(), 1, "bob's addition");
    assert!(n.room.voters().len() == 1, "not committed without bob");
    // Bob leaves before acking it.
    let later = t0 + Duration::from_millis(10);
    n.handle_datagram(
        later,
        addr(2),
        &member_says((BOB, "bob", 2), Presence::Offline, 1000),
    );
    assert!(!n.members().is_online(BOB), "bob left");
    let out = drain_after_hold(&mut n, later);
    let voters: Vec<String> = n.room.log_voters().iter().cloned().collect();
    assert_eq!(voters, ["alice"], "added and removed: {:?}", out.events);
    // Alice's own messages commit on her copy alone.
    n.handle_command(later, WallMillis(5), Command::SendAll { text: "hi".into() });
    let out = drain_after_hold(&mut n, later);
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::Room { entry, .. } if entry.text == "hi")),
        "shown at once: {:?}",
        out.events
    );
}

/// Member `id` (at `port`) heartbeats the node: alive, following it, at the room's start.
pub(super) fn beat_from(n: &mut Node, t: Instant, id: NodeId, port: u16) {
    let hb = Heartbeat {
        epoch: n.epoch(),
        digest: n.members().digest(),
        delivered: Seq(1),
        probe: false,
        unknown: false,
    };
    n.handle_datagram(t, addr(port), &datagram(id, vec![Packet::Heartbeat(hb)]));
}

/// A leader "alice" with bob, carol, dave (port 4) and erin (port 5), all five voting.
pub(super) fn leader_of_five(t0: Instant) -> Node {
    let mut n = leader_with_bob(t0);
    let others = [
        (CAROL, 3, "carol"),
        (NodeId(400), 4, "dave"),
        (NodeId(500), 5, "erin"),
    ];
    let mut all = vec![(BOB, 2)];
    for (id, port, name) in others {
        let key = identity(id.0 as u8);
        let out = join_as(&mut n, t0, (id, port, name), &key, &key);
        all.push((id, port));
        ack_proposals(&mut n, t0, &out, &all);
    }
    assert_eq!(
        n.room.voters().len(),
        5,
        "five voters: {:?}",
        n.room.voters()
    );
    n
}

/// CheckQuorum holds while a minority keeps answering: a leader of five voters that hears
/// only bob (the other three cut off) while bob keeps sending, each proposal acked by him
/// at once, still has no majority. Bob's acks are no progress: within an election timeout
/// (and a heartbeat) it says the room is unreachable, and within three it stops leading.
#[test]
fn acks_from_a_minority_do_not_hide_that_a_majority_is_missing() {
    let t0 = base_time();
    let mut n = leader_of_five(t0);

    // From now on only bob answers; carol, dave and erin hear nothing and say nothing.
    let timeout = n.ctx.cfg.election_timeout;
    let mut link = seal::chain_start(BOB);
    let mut said = Vec::new();
    let mut stepped_down_at = None;
    let mut proposed = 0;
    let step = Duration::from_millis(100);
    let mut t = t0;
    for k in 1..=(4 * timeout.as_millis() as u64 / 100) {
        t += step;
        beat_from(&mut n, t, BOB, 2);
        // Bob's next message, a run of its own.
        let mut s = submit(k);
        s.committed_below = OriginSeq(1);
        s.proof.link = Some(link);
        link = seal::chain(&link, &s.written(BOB));
        s.proof.seal = Some(seal::seal_run(&identity(BOB.0 as u8), &link));
        n.handle_datagram(t, addr(2), &data(BOB, 1000 + k, Message::Submit(s)));
        n.handle_timeout(t);
        let out = drain(&mut n);
        // Bob holds every proposal at once.
        let proposals = out.ids_to(addr(2), |m| matches!(m, Message::Sequenced(_)));
        proposed += proposals.len();
        if !proposals.is_empty() {
            n.handle_datagram(t, addr(2), &ack_of(n.id(), BOB, &proposals));
        }
        let out2 = drain(&mut n);
        for e in out.events.iter().chain(&out2.events) {
            if let Event::Notice(text) = e {
                said.push((t - t0, text.clone()));
            }
        }
        assert!(
            room_seqs(&out2).is_empty(),
            "nothing commits without a majority"
        );
        if stepped_down_at.is_none() && !n.room.is_sequencing() {
            stepped_down_at = Some(t - t0);
        }
    }
    assert!(proposed >= 5, "bob's messages were proposed: {proposed}");
    let unreachable = said
        .iter()
        .find(|(_, text)| text.starts_with("the room is unreachable"))
        .map(|(at, _)| *at);
    assert!(
        unreachable.is_some_and(|at| at <= timeout + 2 * step),
        "the user is told within an election timeout: {said:?}"
    );
    assert!(
        stepped_down_at.is_some_and(|at| at <= 3 * timeout + 2 * step),
        "the leader stops leading within three election timeouts: {stepped_down_at:?}, {said:?}"
    );
}

/// An ack counts again once its member is back online: a proposal a majority then holds
/// commits at once, though no further ack of it comes. Alice leads five voters; dave and
/// erin are cut off (not yet found so). Bob acks the first proposal, is held offline a
/// moment (on his own word), and comes back; meanwhile carol acked it: alice, bob and
/// carol hold it. With a second proposal, bob acks only that one when it is sent again.
#[test]
fn an_ack_counts_again_when_its_member_is_back_online() {
    for texts in [&["one"][..], &["one", "two"][..]] {
        let t0 = base_time();
        let mut n = leader_of_five(t0);
        n.ctx.cfg.election_timeout = Duration::from_millis(100);
        let t = t0 + Duration::from_millis(150);
        for text in texts {
            n.handle_command(
                t,
                WallMillis(1),
                Command::SendAll {
                    text: (*text).into(),
                },
            );
        }
        let mut out = drain(&mut n);
        if let Some(due) = n.transport.held_until() {
            n.handle_timeout(due);
            out.sent.extend(drain(&mut n).sent);
        }
        let proposed = |m: &Message| matches!(m, Message::Sequenced(_));
        let to_bob = out.ids_to(addr(2), proposed);
        let to_carol = out.ids_to(addr(3), proposed);
        assert_eq!((to_bob.len(), to_carol.len()), (texts.len(), texts.len()));
        n.handle_datagram(t, addr(2), &ack_of(n.id(), BOB, &to_bob[..1]));
        n.handle_datagram(t, addr(3), &ack_of(n.id(), CAROL, &to_carol[1..]));
        assert!(
            room_seqs(&drain(&mut n)).is_empty(),
            "two of five hold each"
        );

        n.handle_datagram(t, addr(2), &bob_says(Presence::Offline, 1000));
        assert!(!n.members().is_online(BOB));
        drain(&mut n);
        n.handle_datagram(t, addr(3), &ack_of(n.id(), CAROL, &to_carol[..1]));
        assert!(
            room_seqs(&drain(&mut n)).is_empty(),
            "bob is offline: two of five"
        );

        n.handle_datagram(t, addr(2), &bob_says(Presence::Online, 1001));
        let mut out = drain(&mut n);
        if let Some(due) = n.transport.held_until() {
            n.handle_timeout(due);
            out.sent.extend(drain(&mut n).sent);
        }
        let mut shown = room_seqs(&out);
        let resent = out.ids_to(addr(2), proposed);
        if !resent.is_empty() {
            n.handle_datagram(t, addr(2), &ack_of(n.id(), BOB, &resent));
            shown.extend(room_seqs(&drain(&mut n)));
        }
        assert_eq!(
            shown.len(),
            texts.len(),
            "alice, bob and carol hold {texts:?}: shown at once, not at a later tick"
        );
    }
}

/// A leader's proposal waited through the leader's own absence (a pause, a closed
/// laptop), not for the room: back, it asks the members whether they still follow it,
/// and does not tell its user the room is unreachable before an election timeout of
/// its own has passed.
#[test]
fn a_leader_back_from_a_pause_does_not_blame_the_room_for_it() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    n.handle_command(t0, WallMillis(1), Command::SendAll { text: "hi".into() });
    drain(&mut n);
    let timeout = n.ctx.cfg.election_timeout;
    // Away for five election timeouts: no timer ran, nothing was heard.
    let back = t0 + 5 * timeout;
    n.handle_timeout(back);
    let out = drain(&mut n);
    assert!(n.room.is_confirming(), "it asks before it sequences again");
    let said = notices(&out);
    assert!(
        said.iter().all(|t| !t.contains("unreachable")),
        "nothing waited for the room yet: {said:?}"
    );
    assert!(!n.status_view().waiting_for_majority);
}

/// A newcomer welcomed while a change of the voters is in flight is given the committed
/// configuration, not the one the change makes: the change reaches it as a held entry
/// (counted while held, applied once committed). Taken as applied, a change a later
/// leader overwrote would stay in the newcomer's configuration for good, and its
/// majorities would be counted among the wrong voters.
#[test]
fn a_newcomer_is_given_the_committed_voters_not_a_change_in_flight() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    let (_, committed_at) = n.room.committed_voters();
    n.handle_datagram(
        t0,
        addr(3),
        &member_says((CAROL, "carol", 3), Presence::Offline, 1000),
    );
    drain_after_hold(&mut n, t0);
    assert!(
        !n.room.log_voters().contains("carol") && n.room.voters().contains("carol"),
        "carol's removal is in flight"
    );
    let dave = identity(4);
    let out = join_as(&mut n, t0, (NodeId(400), 4, "dave"), &dave, &dave);
    let welcomes: Vec<&Welcome> = out
        .messages_to(addr(4))
        .into_iter()
        .filter_map(|m| match m {
            Message::Welcome(w) => Some(w),
            _ => None,
        })
        .collect();
    assert!(!welcomes.is_empty(), "dave is welcomed");
    for w in welcomes {
        let voting: Vec<&str> = w
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| w.voting.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
            .map(|(_, m)| m.name.as_str())
            .collect();
        assert!(voting.contains(&"carol"), "carol still votes: {voting:?}");
        assert_eq!(w.voters_at, committed_at, "as of the committed change");
    }
}

/// A voter the leader's table holds no entry for (forgotten, or not saved across a
/// restart) has no bit in the welcome's flags: it is named in a part of its own, and the
/// newcomer counts majorities among every voter. Without it, `sim_chaos` majority seed
/// 3722 welcomed a member into a configuration of one and two numbers got two
/// committed entries.
#[test]
fn a_voter_with_no_entry_here_is_named_in_the_welcome() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    let (mut voters, at) = n.room.committed_voters();
    voters.insert("erin".into());
    n.room.set_voters(voters.clone(), at);
    let dave = identity(4);
    let out = join_as(&mut n, t0, (NodeId(400), 4, "dave"), &dave, &dave);
    let welcomes: Vec<Welcome> = out
        .messages_to(addr(4))
        .into_iter()
        .filter_map(|m| match m {
            Message::Welcome(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    let named: Vec<&Welcome> = welcomes
        .iter()
        .filter(|w| !w.unlisted_voters.is_empty())
        .collect();
    assert_eq!(named.len(), 1, "one part names erin: {welcomes:?}");
    assert_eq!(named[0].unlisted_voters, ["erin"]);
    assert!(named[0].members.is_empty(), "a part of its own");
    assert!(
        welcomes.iter().all(|w| w.parts as usize == welcomes.len()),
        "every part counts it"
    );

    // The newcomer's side: the named voter is one of its configuration.
    let mut bob = joining_bob(t0);
    let mut table = welcome_for_bob(bob_as_written_by_leader(&bob, 2));
    table.voting = vec![0b111];
    table.parts = 2;
    let names = Welcome {
        part: 1,
        members: Vec::new(),
        voting: Vec::new(),
        unlisted_voters: vec!["erin".into()],
        ..table.clone()
    };
    bob.handle_datagram(t0, addr(1), &join_answered(table, 1));
    assert!(!bob.is_member(), "half a welcome");
    bob.handle_datagram(t0, addr(1), &data(LEADER, 77, Message::Welcome(names)));
    assert!(bob.is_member());
    let voters: Vec<String> = bob.room.voters().iter().cloned().collect();
    assert_eq!(voters, ["alice", "bob", "carol", "erin"]);
}
