//! Terms taken from others (see `ring/terms.rs`): range-checked against what the node
//! knows, taken only on the word of the leader they name or with the evidence of a real
//! round, and a followed leader that never shows it leads is replaced.

use super::prevote::{bob_following_carol_then_her_late_resend, bob_losing_carol, grant_prevotes};
use super::*;
use crate::wire::Heartbeat;

pub(super) const DAVE: NodeId = NodeId(400);

/// A follower bob (alice leads, term 0) with carol (port 3) and dave (port 4), all four
/// voters.
pub(super) fn follower_with_dave(t0: Instant) -> Node {
    follower_welcomed(t0, vec![member(DAVE, "dave", 4)], true).0
}

pub(super) fn epoch(term: u64, leader: NodeId) -> Epoch {
    Epoch { term, leader }
}

/// A heartbeat from `from` naming `epoch`.
pub(super) fn beat_naming(from: NodeId, epoch: Epoch, probe: bool) -> Vec<u8> {
    let hb = Heartbeat {
        epoch: Some(epoch),
        delivered: Seq(0),
        digest: 0,
        probe,
        unknown: false,
    };
    datagram(from, vec![Packet::Heartbeat(hb)])
}

/// Everything a node sent by `at` and just after (messages held back for an ack leave
/// within a millisecond), heartbeats included.
pub(super) fn flushed(node: &mut Node, at: Instant) -> Vec<(SocketAddr, Packet)> {
    let mut out = all_packets(node);
    node.handle_timeout(at + Duration::from_millis(2));
    out.extend(all_packets(node));
    out
}

/// Everything a node sent, heartbeats included, with destinations.
pub(super) fn all_packets(node: &mut Node) -> Vec<(SocketAddr, Packet)> {
    let mut out = Vec::new();
    while let Some(t) = node.poll_transmit() {
        let env = decode(&t.bytes).expect("node sends valid datagrams");
        out.extend(env.packets.into_iter().map(|p| (t.to, p)));
    }
    while node.poll_event().is_some() {}
    out
}

pub(super) fn election_terms_sent(sent: &[(SocketAddr, Packet)]) -> Vec<u64> {
    sent.iter()
        .filter_map(|(_, p)| match p {
            Packet::Data {
                msg: Message::Election { term, .. },
                ..
            } => Some(*term),
            _ => None,
        })
        .collect()
}

fn probes_to(sent: &[(SocketAddr, Packet)], to: SocketAddr) -> usize {
    sent.iter()
        .filter(|(a, p)| *a == to && matches!(p, Packet::Heartbeat(hb) if hb.probe))
        .count()
}

/// The attack of issue 17: an announcement of term 2^62 (the former limit itself) made
/// the room follow it for ever, no election able to go higher. A term that far beyond
/// what the node knows is dropped and counted.
#[test]
fn an_announcement_far_beyond_the_known_term_is_dropped() {
    let t0 = base_time();
    let mut n = follower(t0);
    for (i, term) in [1u64 << 62, 1 << 40, 65].into_iter().enumerate() {
        let msg = Message::Elected(epoch(term, CAROL));
        n.handle_datagram(t0, addr(3), &data(CAROL, 10 + i as u64, msg));
    }
    drain(&mut n);
    assert_eq!(n.epoch(), Some(epoch(0, LEADER)));
    assert_eq!(n.stats().dropped, 3);
}

/// The same claims in a heartbeat, a sync request, a proposal, a commit notice and an
/// election token: dropped, and none moves the node's terms.
#[test]
fn every_kind_of_message_is_held_to_the_term_range() {
    let t0 = base_time();
    let mut n = follower(t0);
    let far = 1u64 << 62;
    n.handle_datagram(t0, addr(3), &beat_naming(CAROL, epoch(far, CAROL), false));
    let mut e = entry(1, CAROL, "carol", 1);
    e.term = far;
    let msgs = [
        Message::SyncRequest {
            epoch: epoch(far, CAROL),
            from: Seq(1),
        },
        Message::Sequenced(e),
        Message::Commit {
            term: far,
            upto: Seq(1),
        },
        Message::Election {
            term: far,
            candidate: CAROL,
            log: Seq(1000),
        },
        Message::PreVote {
            term: far,
            follows: None,
        },
    ];
    for (i, m) in msgs.into_iter().enumerate() {
        n.handle_datagram(t0, addr(3), &data(CAROL, 20 + i as u64, m));
    }
    let sent = all_packets(&mut n);
    assert!(
        election_terms_sent(&sent).is_empty(),
        "no token passed on: {sent:?}"
    );
    assert_eq!(n.epoch(), Some(epoch(0, LEADER)));
    assert_eq!(n.stats().dropped, 6);
    // The node's own next round is the next term, not one past the far claim.
    n.start_election(t0);
    assert_eq!(election_terms_sent(&flushed(&mut n, t0)), [1]);
}

/// After a long partition the other side's term is legitimately far ahead: one more term
/// is allowed per 100 ms since the node's own last rose (an hour: 36 000).
#[test]
fn a_term_far_ahead_after_a_long_partition_is_taken() {
    let t0 = base_time();
    let mut n = follower(t0);
    let later = t0 + Duration::from_secs(3600);
    let token = |term| Message::Election {
        term,
        candidate: CAROL,
        log: Seq(1000),
    };
    n.handle_datagram(later, addr(1), &data(LEADER, 5, token(30_000)));
    let request = Message::SyncRequest {
        epoch: epoch(30_000, CAROL),
        from: Seq(1),
    };
    n.handle_datagram(later, addr(3), &data(CAROL, 9, request));
    drain(&mut n);
    assert_eq!(n.epoch(), Some(epoch(30_000, CAROL)));
    assert_eq!(n.stats().dropped, 0);
    // Right after that rise, 30 000 more is far beyond: dropped.
    n.handle_datagram(later, addr(1), &data(LEADER, 6, token(60_000)));
    drain(&mut n);
    assert_eq!(n.stats().dropped, 1);
}

/// An announcement naming an id that is not a member, or a member whose token this node
/// never passed on (even from that member itself), is one member's word: ignored, not
/// passed on. (Before: the room followed a non-existent leader, or any member's claim.)
#[test]
fn an_announcement_without_a_round_behind_it_is_ignored() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    let ghost = NodeId(777);
    n.handle_datagram(
        t0,
        addr(4),
        &data(DAVE, 1, Message::Elected(epoch(1, ghost))),
    );
    n.handle_datagram(
        t0,
        addr(4),
        &data(DAVE, 2, Message::Elected(epoch(1, CAROL))),
    );
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL, 3, Message::Elected(epoch(1, CAROL))),
    );
    let sent = flushed(&mut n, t0);
    assert_eq!(n.epoch(), Some(epoch(0, LEADER)));
    let passed_on = sent.iter().any(|(_, p)| {
        matches!(
            p,
            Packet::Data {
                msg: Message::Elected(_),
                ..
            }
        )
    });
    assert!(!passed_on, "{sent:?}");
}

/// Carol's election token for round 1 (her log well ahead of bob's) reaches bob from
/// alice's side, and bob passes it on; outputs drained.
pub(super) fn pass_carols_token(n: &mut Node, t0: Instant) {
    let token = Message::Election {
        term: 1,
        candidate: CAROL,
        log: Seq(1000),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, token));
    drain(n);
}

/// Bob passes carol's token on ([`pass_carols_token`]), and her win's announcement
/// comes round from dave (what bob sends then is left to read).
pub(super) fn carols_win_announced(n: &mut Node, t0: Instant) {
    pass_carols_token(n, t0);
    n.handle_datagram(
        t0,
        addr(4),
        &data(DAVE, 1, Message::Elected(epoch(1, CAROL))),
    );
}

/// The evidence of a real round: bob passed carol's token on, so the announcement of
/// carol's win that comes round the ring from dave is taken, and passed on.
#[test]
fn an_announcement_after_passing_the_winners_token_is_taken() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    carols_win_announced(&mut n, t0);
    let sent = flushed(&mut n, t0);
    assert_eq!(n.epoch(), Some(epoch(1, CAROL)));
    assert!(
        sent.iter().any(|(to, p)| *to == addr(3)
            && matches!(p, Packet::Data { msg: Message::Elected(e), .. } if *e == epoch(1, CAROL))),
        "{sent:?}"
    );
}

/// A sync request is a leader's own: one naming another leader is dropped. (Before: a
/// member made the room follow any id with one.)
#[test]
fn a_sync_request_for_another_leader_is_dropped() {
    let t0 = base_time();
    let mut n = follower(t0);
    let request = Message::SyncRequest {
        epoch: epoch(1, NodeId(777)),
        from: Seq(1),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, request));
    let out = drain(&mut n);
    assert!(out.sent.is_empty(), "no answer, no ack: {:?}", out.sent);
    assert_eq!(n.epoch(), Some(epoch(0, LEADER)));
    assert_eq!(n.stats().dropped, 1);
}

/// A heartbeat naming a newer leader (a neighbour's word, or the leader's own) of a
/// round this node never saw: the node asks that leader to take it in, and follows it
/// on its welcome, not before. A ghost is not even asked.
#[test]
fn a_newer_leader_named_by_a_neighbour_is_asked_first() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    n.handle_datagram(t0, addr(1), &beat_naming(LEADER, epoch(1, DAVE), false));
    let sent = flushed(&mut n, t0);
    assert_eq!(n.epoch(), Some(epoch(0, LEADER)), "not on alice's word");
    let asked = |sent: &[(SocketAddr, Packet)], to| {
        sent.iter()
            .filter(|(a, p)| {
                *a == to
                    && matches!(
                        p,
                        Packet::Data {
                            msg: Message::Join { .. },
                            ..
                        }
                    )
            })
            .count()
    };
    assert_eq!(asked(&sent, addr(4)), 1, "dave is asked: {sent:?}");
    // Named again, by dave himself: not asked again while the first asking runs.
    n.handle_datagram(t0, addr(4), &beat_naming(DAVE, epoch(1, DAVE), false));
    assert_eq!(asked(&flushed(&mut n, t0), addr(4)), 0);
    assert_eq!(
        n.epoch(),
        Some(epoch(0, LEADER)),
        "not on dave's word either"
    );
    // Dave's welcome, his own answer to bob, counts.
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    w.epoch = epoch(1, DAVE);
    w.members.push(member(DAVE, "dave", 4));
    n.handle_datagram(t0, addr(4), &data(DAVE, 5, Message::Welcome(w)));
    drain(&mut n);
    assert_eq!(n.epoch(), Some(epoch(1, DAVE)));
}

/// Liveness: bob takes carol's win from the ring (he passed her token on), but carol
/// never speaks in that term. Bob probes her after half an election timeout, and starts
/// a new round (term 2) after a whole one. Before, he followed her for ever.
#[test]
fn a_leader_that_never_shows_it_leads_is_replaced() {
    let t0 = base_time();
    let mut n = bob_losing_carol(t0);
    let half = n.ctx.cfg.election_timeout / 2;
    n.handle_timeout(t0 + half);
    let sent = all_packets(&mut n);
    assert_eq!(probes_to(&sent, addr(3)), 1, "carol probed: {sent:?}");
    // (Resends of the token of round 1, unacked here, are no new round.)
    assert!(
        election_terms_sent(&sent).iter().all(|t| *t == 1),
        "not yet: {sent:?}"
    );
    n.handle_timeout(t0 + 2 * half);
    let sent = all_packets(&mut n);
    assert!(
        election_terms_sent(&sent).iter().all(|t| *t == 1),
        "a round only once the voters agree: {sent:?}"
    );
    let sent = grant_prevotes(&mut n, t0 + 2 * half, &sent);
    assert!(election_terms_sent(&sent).contains(&2), "{sent:?}");
}

/// The control: a leader whose round this node saw, and whose sync request comes, is
/// followed without a new round; a late copy of an older term from it after that changes
/// nothing (its term never falls), and nothing probes it.
#[test]
fn a_leader_that_shows_it_leads_is_kept() {
    let t0 = base_time();
    let mut n = bob_following_carol_then_her_late_resend(t0);
    let half = n.ctx.cfg.election_timeout / 2;
    n.handle_timeout(t0 + half);
    let sent = all_packets(&mut n);
    assert_eq!(
        probes_to(&sent, addr(3)),
        0,
        "a late copy: nothing to check"
    );
    for step in 2..6 {
        n.handle_timeout(t0 + half * step);
        let sent = all_packets(&mut n);
        assert!(
            election_terms_sent(&sent).iter().all(|t| *t == 1),
            "{sent:?}"
        );
    }
    assert_eq!(n.epoch(), Some(epoch(1, CAROL)));
}

/// A claim of a newer term by the leader itself (a mutated copy of its own message,
/// say) moves nobody: bob asks alice to take him in, and her welcome names the term she
/// really leads. (Before: bob followed term 5, refused her term-0 proposals, and never
/// showed a message again.)
#[test]
fn a_leaders_word_alone_for_a_newer_term_moves_nobody() {
    let t0 = base_time();
    let mut n = follower(t0);
    let claim = Message::SyncRequest {
        epoch: epoch(5, LEADER),
        from: Seq(1),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 7, claim));
    let sent = flushed(&mut n, t0);
    assert_eq!(n.epoch(), Some(epoch(0, LEADER)));
    assert!(
        sent.iter().any(|(a, p)| *a == addr(1)
            && matches!(
                p,
                Packet::Data {
                    msg: Message::Join { .. },
                    ..
                }
            )),
        "alice is asked: {sent:?}"
    );
    let w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    n.handle_datagram(t0, addr(1), &data(LEADER, 8, Message::Welcome(w)));
    drain(&mut n);
    assert_eq!(n.epoch(), Some(epoch(0, LEADER)));
}

/// A leader whose round this node saw, but whose heartbeats keep naming an older term
/// (it never knew of the round: a forged token and announcement took this node round
/// it), does not lead it: a new round, above both.
#[test]
fn a_leader_of_an_older_term_than_followed_is_replaced() {
    let t0 = base_time();
    let mut n = follower(t0);
    let token = Message::Election {
        term: 5,
        candidate: CAROL,
        log: Seq(1000),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, token));
    let claim = Message::Elected(epoch(5, CAROL));
    n.handle_datagram(t0, addr(1), &data(LEADER, 7, claim));
    flushed(&mut n, t0);
    assert_eq!(n.epoch(), Some(epoch(5, CAROL)));
    // Her heartbeats name term 0.
    let half = n.ctx.cfg.election_timeout / 2;
    let mut terms = Vec::new();
    for step in 1..=4 {
        let at = t0 + half * step / 2;
        n.handle_datagram(at, addr(3), &beat_naming(CAROL, epoch(0, LEADER), false));
        n.handle_timeout(at);
        terms.extend(election_terms_sent(&all_packets(&mut n)));
    }
    n.handle_timeout(t0 + half * 3);
    let sent = all_packets(&mut n);
    terms.extend(election_terms_sent(&sent));
    terms.extend(election_terms_sent(&grant_prevotes(
        &mut n,
        t0 + half * 3,
        &sent,
    )));
    assert!(terms.contains(&6), "{terms:?}");
}

/// The tokens this node passed on: (candidate, its log).
fn election_candidates_sent(sent: &[(SocketAddr, Packet)]) -> Vec<(NodeId, Seq)> {
    sent.iter()
        .filter_map(|(_, p)| match p {
            Packet::Data {
                msg: Message::Election { candidate, log, .. },
                ..
            } => Some((*candidate, *log)),
            _ => None,
        })
        .collect()
}

/// A candidate that showed fewer room messages than this node is replaced by this node on
/// the token, whatever the ids; one that showed more is passed on.
#[test]
fn a_candidate_behind_this_node_is_not_supported() {
    let t0 = base_time();
    for (log, supported) in [(Seq(0), false), (Seq(1000), true)] {
        let mut n = follower_with_dave(t0);
        let own = n.room.next();
        assert!(own > Seq(0) && own < Seq(1000));
        let token = Message::Election {
            term: 1,
            candidate: CAROL,
            log,
        };
        n.handle_datagram(t0, addr(1), &data(LEADER, 5, token));
        let sent = election_candidates_sent(&all_packets(&mut n));
        let expected = if supported {
            (CAROL, log)
        } else {
            (n.ctx.id, own)
        };
        assert_eq!(sent, vec![expected], "carol's token with log {log}");
    }
}

/// A member passed a round's token to the leader, which took it and then left (its
/// goodbye came after the token): the token goes to the next successor as well, instead
/// of the round waiting for its timeout.
#[test]
fn a_token_passed_to_a_leader_that_then_left_is_passed_on_again() {
    let t0 = base_time();
    // Ring 100 (alice, leader) -> 150 (erin) -> 200 (bob) -> 300 (carol); carol leaves,
    // so bob's successor is alice.
    const ERIN: NodeId = NodeId(150);
    let goodbye = |id: NodeId, name: &str, port: u16| {
        let mut m = member(id, name, port);
        m.presence = Presence::Offline;
        m.stamp = Stamp {
            lamport: Lamport(40),
            by: id,
        };
        Message::Members(vec![m])
    };
    let mut n = follower_with(t0, vec![member(ERIN, "erin", 5)]).0;
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, goodbye(CAROL, "carol", 3)));
    drain(&mut n);
    assert!(!n.members().is_online(CAROL), "carol left");
    assert_eq!(n.members().next(), Some(LEADER), "bob's successor is alice");

    let token = Message::Election {
        term: 1,
        candidate: ERIN,
        log: Seq(1000),
    };
    let is_token = |m: &Message| matches!(m, Message::Election { term: 1, .. });
    n.handle_datagram(t0, addr(5), &data(ERIN, 1, token));
    let out = drain(&mut n);
    let ids = out.ids_to(addr(1), is_token);
    assert_eq!(ids.len(), 1, "the token goes to alice");
    // Alice takes it (acks it), and her goodbye comes after.
    n.handle_datagram(t0, addr(1), &ack_of(BOB, LEADER, &ids));
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, goodbye(LEADER, "alice", 1)));
    let out = drain(&mut n);
    assert_eq!(n.members().next(), Some(ERIN));
    assert_eq!(
        out.ids_to(addr(5), is_token).len(),
        1,
        "the token goes round again, now to erin"
    );
}

/// Seed 501132 of `sim_relay`: a relay restarted under a new id and was let in by a leader
/// cut off with a minority, which then learned of the newer term; the newcomer followed
/// the newer leader on the voters' word, but that leader had never heard of it and dropped
/// everything it said, so it stayed out of the room for good. A leader answers such a
/// stranger with a heartbeat marked `unknown`; from the leader it follows, the mark makes a
/// member ask to be taken in (once per join timeout); from anyone else, nothing.
#[test]
fn a_member_its_leader_does_not_know_asks_to_be_taken_in() {
    let t0 = base_time();
    let mut n = follower(t0);
    let followed = n.epoch().expect("bob follows the leader");
    assert_eq!(followed.leader, LEADER);
    let beat = |from: NodeId, unknown: bool| {
        let hb = Heartbeat {
            epoch: Some(followed),
            delivered: Seq(0),
            digest: 0,
            probe: false,
            unknown,
        };
        datagram(from, vec![Packet::Heartbeat(hb)])
    };
    let joins = |sent: &[(SocketAddr, Packet)]| -> Vec<SocketAddr> {
        sent.iter()
            .filter(|(_, p)| {
                matches!(
                    p,
                    Packet::Data {
                        msg: Message::Join { .. },
                        ..
                    }
                )
            })
            .map(|(to, _)| *to)
            .collect()
    };
    let mut at = t0;
    let mut after = |n: &mut Node, from: NodeId, port: u16, unknown: bool| {
        at += Duration::from_millis(10);
        n.handle_datagram(at, addr(port), &beat(from, unknown));
        joins(&flushed(n, at))
    };
    assert!(
        after(&mut n, CAROL, 3, true).is_empty(),
        "carol does not lead"
    );
    assert!(
        after(&mut n, LEADER, 1, false).is_empty(),
        "an ordinary beat"
    );
    assert_eq!(
        after(&mut n, LEADER, 1, true),
        vec![addr(1)],
        "asks the leader"
    );
    assert!(after(&mut n, LEADER, 1, true).is_empty(), "one at a time");
}

/// The other side: a leader that gets a member's message from a node not in its table
/// drops it and answers with a heartbeat marked `unknown` (and only such answers are).
#[test]
fn a_stranger_speaking_as_a_member_is_answered_as_unknown() {
    let t0 = base_time();
    let mut n = leader(t0);
    let _ = all_packets(&mut n);
    let stranger = NodeId(999);
    n.handle_datagram(t0, addr(9), &data(stranger, 1, commit(1)));
    let sent = flushed(&mut n, t0);
    let marks: Vec<(SocketAddr, bool)> = sent
        .iter()
        .filter_map(|(to, p)| match p {
            Packet::Heartbeat(hb) => Some((*to, hb.unknown)),
            _ => None,
        })
        .collect();
    assert_eq!(
        marks,
        vec![(addr(9), true)],
        "one answer, marked, to the stranger"
    );
}
