//! Pre-vote (see `ring/prevote.rs`): a round this node would start on its own judgement
//! starts only once a majority of the voters lost the leader too; a node nobody answers
//! never moves the room's term; a voter says no while it hears its leader.

use super::terms::{DAVE, all_packets, election_terms_sent, epoch, flushed, follower_with_dave};
use super::*;
use crate::wire::Heartbeat;

/// The pre-votes a node sent: to whom, for which round.
pub(super) fn prevotes_sent(sent: &[(SocketAddr, Packet)]) -> Vec<(SocketAddr, u64)> {
    sent.iter()
        .filter_map(|(a, p)| match p {
            Packet::Data {
                msg: Message::PreVote { term, .. },
                ..
            } => Some((*a, *term)),
            _ => None,
        })
        .collect()
}

/// The pre-vote answers a node sent: (to whom, round, yes), resends of one counted once.
fn answers_sent(sent: &[(SocketAddr, Packet)]) -> Vec<(SocketAddr, u64, bool)> {
    let mut answers: Vec<(SocketAddr, u64, bool)> = sent
        .iter()
        .filter_map(|(a, p)| match p {
            Packet::Data {
                msg: Message::PreVoteReply { term, granted, .. },
                ..
            } => Some((*a, *term, *granted)),
            _ => None,
        })
        .collect();
    answers.dedup();
    answers
}

/// Answers one pre-vote `n` sent to `to` (a member's address) with `granted`, as that
/// member; what `n` sent then.
fn answer(
    n: &mut Node,
    at: Instant,
    to: SocketAddr,
    term: u64,
    granted: bool,
) -> Vec<(SocketAddr, Packet)> {
    answer_following(n, at, to, (term, granted), None)
}

/// [`answer`], naming the epoch the member follows.
pub(super) fn answer_following(
    n: &mut Node,
    at: Instant,
    to: SocketAddr,
    (term, granted): (u64, bool),
    follows: Option<Epoch>,
) -> Vec<(SocketAddr, Packet)> {
    let id = n
        .members()
        .entries()
        .find(|m| m.addr == to)
        .map(|m| m.id)
        .expect("asked a member");
    let reply = Message::PreVoteReply {
        term,
        granted,
        follows,
    };
    n.handle_datagram(at, to, &data(id, 900 + term, reply));
    flushed(n, at)
}

/// Every voter `n` asked in `sent` says yes; what `n` sent then.
pub(super) fn grant_prevotes(
    n: &mut Node,
    at: Instant,
    sent: &[(SocketAddr, Packet)],
) -> Vec<(SocketAddr, Packet)> {
    let mut out = Vec::new();
    for (i, (to, term)) in prevotes_sent(sent).into_iter().enumerate() {
        let at = at + Duration::from_millis(5) * i as u32;
        out.extend(answer(n, at, to, term, true));
    }
    out
}

/// Bob (with dave, see [`follower_with_dave`]) passed on carol's token of round 1.
fn bob_passed_carols_token(t0: Instant) -> Node {
    let mut n = follower_with_dave(t0);
    let token = Message::Election {
        term: 1,
        candidate: CAROL,
        log: Seq(1000),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, token));
    n
}

/// Bob follows carol's term 1 (he passed her token on, dave announced her win), and
/// carol never speaks in it: after two leader checks bob wants a new round.
pub(super) fn bob_losing_carol(t0: Instant) -> Node {
    let mut n = bob_passed_carols_token(t0);
    n.handle_datagram(
        t0,
        addr(4),
        &data(DAVE, 1, Message::Elected(epoch(1, CAROL))),
    );
    flushed(&mut n, t0);
    assert_eq!(n.epoch(), Some(epoch(1, CAROL)));
    n
}

/// [`bob_losing_carol`] an election timeout on: he probed carol and, with no answer,
/// asks the other voters whether they lost her too. Returns him, the time and what he
/// sent then.
pub(super) fn bob_asking_the_voters(t0: Instant) -> (Node, Instant, Vec<(SocketAddr, Packet)>) {
    let mut n = bob_losing_carol(t0);
    let half = n.ctx.cfg.election_timeout / 2;
    n.handle_timeout(t0 + half);
    all_packets(&mut n);
    let at = t0 + 2 * half;
    n.handle_timeout(at);
    let sent = all_packets(&mut n);
    (n, at, sent)
}

/// Bob asks alice, carol and dave; with one yes (two of four voters, bob included) no
/// round starts, a no counts nothing, and the second yes (three of four) starts round 2.
#[test]
fn a_round_starts_only_once_a_majority_lost_the_leader() {
    let (mut n, at, sent) = bob_asking_the_voters(base_time());
    let mut asked = prevotes_sent(&sent);
    asked.sort();
    assert_eq!(
        asked,
        vec![(addr(1), 2), (addr(3), 2), (addr(4), 2)],
        "every other voter asked about round 2: {sent:?}"
    );
    assert!(election_terms_sent(&sent).iter().all(|t| *t == 1));

    let ms = Duration::from_millis(5);
    let sent = answer(&mut n, at, addr(4), 2, true);
    assert!(election_terms_sent(&sent).is_empty(), "2 of 4: {sent:?}");
    let sent = answer(&mut n, at + ms, addr(3), 2, false);
    assert!(election_terms_sent(&sent).is_empty(), "a no: {sent:?}");
    let sent = answer(&mut n, at + 2 * ms, addr(4), 2, true);
    assert!(
        election_terms_sent(&sent).is_empty(),
        "dave twice: {sent:?}"
    );
    let sent = answer(&mut n, at + 3 * ms, addr(1), 2, true);
    assert_eq!(election_terms_sent(&sent), vec![2], "3 of 4: {sent:?}");
}

/// A node cut off (nobody answers) asks again and again but never starts a round, so
/// its term never moves; it tells its user once that the room is unreachable.
#[test]
fn a_node_nobody_answers_never_moves_the_term() {
    let t0 = base_time();
    let mut n = bob_losing_carol(t0);
    let mut asked = 0;
    let mut terms = Vec::new();
    let mut notices = Vec::new();
    let step = Duration::from_millis(50);
    for i in 1..=600 {
        n.handle_timeout(t0 + step * i);
        while let Some(t) = n.poll_transmit() {
            let env = decode(&t.bytes).expect("valid datagram");
            asked += prevotes_sent(
                &env.packets
                    .iter()
                    .map(|p| (t.to, p.clone()))
                    .collect::<Vec<_>>(),
            )
            .len();
            for p in env.packets {
                if let Packet::Data {
                    msg: Message::Election { term, .. },
                    ..
                } = p
                {
                    terms.push(term);
                }
            }
        }
        while let Some(e) = n.poll_event() {
            if let Event::Notice(text) = e
                && text.contains("unreachable")
            {
                notices.push(text);
            }
        }
    }
    assert!(terms.iter().all(|t| *t == 1), "no new round: {terms:?}");
    assert!(asked >= 3 * 10, "asked again and again: {asked}");
    assert_eq!(notices.len(), 1, "told once: {notices:?}");
    assert!(notices[0].contains("1 of 4"), "{notices:?}");
    assert!(n.epoch() == Some(epoch(1, CAROL)), "still term 1");
}

/// A heartbeat from `from` naming `epoch`.
fn beat(from: NodeId, epoch: Epoch) -> Vec<u8> {
    let hb = Heartbeat {
        epoch: Some(epoch),
        delivered: Seq(0),
        digest: 0,
        probe: false,
        unknown: false,
    };
    datagram(from, vec![Packet::Heartbeat(hb)])
}

/// Bob, following alice: no while alice is online in his table and spoke in her term
/// (however long ago: in an idle room only her ring successor hears her often); no to a
/// round not above the term he follows; yes when alice herself asks (she steps down);
/// yes once a verdict of her death reached him.
#[test]
fn a_voter_says_no_while_its_leader_leads() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    n.handle_datagram(t0, addr(1), &beat(LEADER, epoch(0, LEADER)));
    all_packets(&mut n);
    let ask = |id: u64, term: u64| {
        data(
            CAROL,
            id,
            Message::PreVote {
                term,
                follows: None,
            },
        )
    };

    n.handle_datagram(t0, addr(3), &ask(1, 1));
    assert_eq!(
        answers_sent(&flushed(&mut n, t0)),
        vec![(addr(3), 1, false)]
    );

    let later = t0 + Duration::from_secs(60);
    n.handle_datagram(later, addr(3), &ask(2, 1));
    assert_eq!(
        answers_sent(&flushed(&mut n, later)),
        vec![(addr(3), 1, false)],
        "a minute of silence is an idle room"
    );

    n.handle_datagram(later, addr(3), &ask(3, 0));
    assert_eq!(
        answers_sent(&flushed(&mut n, later)),
        vec![(addr(3), 0, false)],
        "not above the term followed"
    );

    let alice_asks = data(
        LEADER,
        7,
        Message::PreVote {
            term: 1,
            follows: None,
        },
    );
    n.handle_datagram(later, addr(1), &alice_asks);
    assert_eq!(
        answers_sent(&flushed(&mut n, later)),
        vec![(addr(1), 1, true)],
        "the leader itself gives up"
    );

    n.declare_dead(later, LEADER);
    all_packets(&mut n);
    n.handle_datagram(later, addr(3), &ask(4, 1));
    assert_eq!(
        answers_sent(&flushed(&mut n, later)),
        vec![(addr(3), 1, true)],
        "alice is dead here"
    );
}

/// Bob passed carol's token of round 1 on and follows her on her own sync request;
/// then a resend of a proposal she made in term 0 reaches him, late.
pub(super) fn bob_following_carol_then_her_late_resend(t0: Instant) -> Node {
    let mut n = bob_passed_carols_token(t0);
    let request = Message::SyncRequest {
        epoch: epoch(1, CAROL),
        from: Seq(1),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, request));
    flushed(&mut n, t0);
    assert_eq!(n.epoch(), Some(epoch(1, CAROL)));
    let mut old = entry(1, CAROL, "carol", 1);
    old.term = 0;
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::Sequenced(old)));
    all_packets(&mut n);
    n
}

/// Bob follows carol in term 1 and she spoke in it; a copy of a datagram she sent in
/// term 0 arrives late (a retry from before the round). Bob still knows she leads, and
/// says no to dave's round. (Before, the late copy made bob doubt her and say yes: a
/// member cut from carol started round after round, each one agreed to, and never caught
/// up: `sim_catchup` seed 1850240.)
#[test]
fn a_late_copy_of_an_older_term_from_a_leader_that_spoke_in_ours_keeps_it_leading() {
    let t0 = base_time();
    let mut n = bob_following_carol_then_her_late_resend(t0);
    let ask = Message::PreVote {
        term: 2,
        follows: Some(epoch(0, LEADER)),
    };
    let at = t0 + Duration::from_millis(100);
    n.handle_datagram(at, addr(4), &data(DAVE, 3, ask));
    assert_eq!(
        answers_sent(&flushed(&mut n, at)),
        vec![(addr(4), 2, false)],
        "carol leads term 1"
    );
}

/// A leader that sequences says no to anyone; a pre-vote moves nothing at the voter.
#[test]
fn a_leader_that_sequences_says_no() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    drain(&mut n);
    let before = n.epoch();
    n.handle_datagram(
        t0,
        addr(2),
        &data(
            BOB,
            50,
            Message::PreVote {
                term: 1,
                follows: None,
            },
        ),
    );
    let sent = flushed(&mut n, t0);
    assert_eq!(answers_sent(&sent), vec![(addr(2), 1, false)]);
    assert_eq!(n.epoch(), before);
    assert!(n.is_leader());
}

/// Two winners of one term (each in a ring of its own): the one that leads a majority
/// hears the other ask, or a member following the other, and starts a round above both
/// (see also `gave_way.rs`); a pre-vote from its own follower, or naming no leader,
/// starts nothing.
#[test]
fn a_leader_hearing_another_winner_of_its_term_elects_above_both() {
    let t0 = base_time();
    let ask =
        |id: u64, follows: Option<Epoch>| data(BOB, id, Message::PreVote { term: 1, follows });
    for (follows, expected) in [
        (Some(epoch(0, BOB)), vec![1]),
        (Some(epoch(0, LEADER)), vec![]),
        (Some(epoch(0, CAROL)), vec![1]),
        (None, vec![]),
    ] {
        let mut n = leader_with_bob(t0);
        drain(&mut n);
        n.handle_datagram(t0, addr(2), &ask(50, follows));
        let sent = flushed(&mut n, t0);
        assert_eq!(election_terms_sent(&sent), expected, "{follows:?}");
        assert_eq!(answers_sent(&sent), vec![(addr(2), 1, false)]);
    }
}

/// Bob declares alice (his leader) dead himself and asks the voters. A heartbeat from her
/// brings her back to nobody (one sent before a crash can arrive after the verdict), but
/// her answer to his pre-vote, sent after it, does: he takes his own verdict back. A
/// member offline on another's word stays offline whatever it answers, until it refutes
/// that word itself.
#[test]
fn a_verdict_of_ones_own_is_taken_back_when_the_member_answers() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    let mut dave = member(DAVE, "dave", 4);
    dave.presence = Presence::Offline;
    dave.stamp = Stamp {
        lamport: Lamport(50),
        by: LEADER,
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 9, Message::Members(vec![dave])));
    n.declare_dead(t0, LEADER);
    let sent = flushed(&mut n, t0);
    assert!(!n.members().is_online(LEADER));
    let term = prevotes_sent(&sent)
        .first()
        .map(|(_, t)| *t)
        .expect("bob asks the voters");

    let later = t0 + Duration::from_millis(10);
    n.handle_datagram(later, addr(1), &beat(LEADER, epoch(0, LEADER)));
    drain(&mut n);
    assert!(!n.members().is_online(LEADER), "a heartbeat proves nothing");

    let reply = Message::PreVoteReply {
        term,
        granted: false,
        follows: None,
    };
    n.handle_datagram(later, addr(4), &data(DAVE, 30, reply.clone()));
    drain(&mut n);
    assert!(!n.members().is_online(DAVE), "the leader's word stands");

    n.handle_datagram(later, addr(1), &data(LEADER, 30, reply));
    let out = drain(&mut n);
    assert!(n.members().is_online(LEADER), "taken back");
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::MemberOnline { name } if name == "alice")),
        "{:?}",
        out.events
    );
}
