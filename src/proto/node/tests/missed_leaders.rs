//! Leaders this node missed the word of (see `ring/prevote.rs`): a round whose end it
//! never heard, a leader the voters name that its table lacks, a leader its table holds
//! offline that says nothing: each followed or replaced on the voters' word.

use super::prevote::{answer_following, bob_losing_carol, prevotes_sent};
use super::terms::{DAVE, all_packets, election_terms_sent, epoch, flushed, follower_with_dave};
use super::*;
use crate::wire::Heartbeat;

/// Bob passed carol's token on in round 1 and never heard her announcement (his link
/// from her was cut, say). When the round times out he starts no round 2 at once: he asks
/// the voters. One voter naming carol's term 1 moves nothing; a second one does, and he
/// follows her; voters naming different epochs move nothing either. In the seconds after,
/// no token of a round above 1 leaves him (before, he started a round every timeout, and
/// the room re-elected carol every time).
#[test]
fn a_round_whose_end_was_missed_is_followed_on_two_voters_word() {
    let t0 = base_time();
    let token = Message::Election {
        term: 1,
        candidate: CAROL,
        log: Seq(1000),
    };
    for (carol_names, follows) in [(epoch(1, CAROL), true), (epoch(1, LEADER), false)] {
        let mut n = follower_with_dave(t0);
        n.handle_datagram(t0, addr(1), &data(LEADER, 5, token.clone()));
        flushed(&mut n, t0);
        let at = t0 + n.ctx.cfg.election_timeout + Duration::from_millis(10);
        n.handle_timeout(at);
        let sent = flushed(&mut n, at);
        let above_1 =
            |sent: &[(SocketAddr, Packet)]| election_terms_sent(sent).iter().any(|t| *t > 1);
        assert!(!above_1(&sent), "no round 2: {sent:?}");
        let term = prevotes_sent(&sent)
            .first()
            .map(|(_, t)| *t)
            .expect("the voters asked");
        assert_eq!(term, 2);

        let named = Some(epoch(1, CAROL));
        answer_following(&mut n, at, addr(4), (term, false), named);
        assert_eq!(n.epoch(), Some(epoch(0, LEADER)), "dave's word alone");
        let sent = answer_following(&mut n, at, addr(3), (term, false), Some(carol_names));
        assert!(!above_1(&sent), "{sent:?}");
        if follows {
            assert_eq!(n.epoch(), Some(epoch(1, CAROL)), "dave and carol agree");
        } else {
            assert_eq!(n.epoch(), Some(epoch(0, LEADER)), "they differ");
        }

        let mut terms = Vec::new();
        for i in 1..=100 {
            n.handle_timeout(at + Duration::from_millis(50) * i);
            terms.extend(election_terms_sent(&all_packets(&mut n)));
        }
        assert!(
            terms.iter().all(|t| *t <= 1),
            "nobody agreed to a round, so none started: {terms:?}"
        );
    }

    // Voters that agreed lost their leader: the epoch they name moves nothing.
    let mut n = follower_with_dave(t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, token));
    flushed(&mut n, t0);
    let at = t0 + n.ctx.cfg.election_timeout + Duration::from_millis(10);
    n.handle_timeout(at);
    let sent = flushed(&mut n, at);
    let (_, term) = *prevotes_sent(&sent).first().expect("the voters asked");
    for voter in [addr(4), addr(3)] {
        answer_following(&mut n, at, voter, (term, true), Some(epoch(1, CAROL)));
    }
    assert_ne!(n.epoch(), Some(epoch(1, CAROL)), "they agreed: no follow");
}

/// Bob follows carol's term 1 and she never shows it; asked, alice and dave refuse his
/// round and name a leader of term 2 bob's table does not hold (a process restarted
/// under a new id while bob followed carol). Bob cannot follow it on their word, nor
/// reach it by address: he asks one of them to take him in, which passes his join on to
/// its leader, whose own welcome he then follows. (Before, he kept asking the voters, who
/// kept refusing: `sim_chaos` minority seed 94, cat following a dead process for good.)
#[test]
fn voters_naming_a_leader_unknown_here_are_asked_to_take_this_node_in() {
    let t0 = base_time();
    let mut n = bob_losing_carol(t0);
    let stranger = Some(epoch(2, NodeId(999)));
    let is_join_to_them = |(a, p): &(SocketAddr, Packet)| {
        (*a == addr(1) || *a == addr(4))
            && matches!(
                p,
                Packet::Data {
                    msg: Message::Join { .. },
                    ..
                }
            )
    };
    // Bob may be asking carol to take him in first (her leader checks ran out): a join
    // timeout later at most, the voters' answers send his join through them.
    let mut asked = 0;
    let mut at = t0;
    loop {
        at += Duration::from_millis(100);
        assert!(
            at < t0 + Duration::from_secs(30),
            "bob never asked alice or dave to take him in ({asked} pre-votes answered)"
        );
        n.handle_timeout(at);
        let sent = all_packets(&mut n);
        let mut after = Vec::new();
        for (to, term) in prevotes_sent(&sent) {
            let Some(from) = [(addr(1), LEADER), (addr(4), DAVE)]
                .into_iter()
                .find_map(|(a, id)| (a == to).then_some(id))
            else {
                continue;
            };
            asked += 1;
            let reply = Message::PreVoteReply {
                term,
                granted: false,
                follows: stranger,
            };
            n.handle_datagram(at, to, &data(from, 2000 + asked, reply));
            after.extend(flushed(&mut n, at));
        }
        if sent.iter().chain(&after).any(is_join_to_them) {
            break;
        }
    }
    assert!(asked > 0, "bob asked the voters");
    assert_eq!(
        n.epoch(),
        Some(epoch(1, CAROL)),
        "nobody followed on their word"
    );
}

/// Bob is welcomed by alice while his table holds her offline (here the welcome's own
/// table says so; in `sim_chaos` seed 3722 a verdict of his own from before, under a
/// newer stamp, outlived the welcome). Nobody judges her gone again (she is offline
/// already), so before, bob followed her for good once she died and the room never
/// elected. Now, once she has said nothing for a suspicion bound, he asks the voters;
/// while she beats to him he does not (she lives: her next word lets her refute his
/// entry; asked at once, a member welcomed back into a configuration it alone voted in
/// elected itself over its living leader, `sim_chaos` seed 88).
#[test]
fn a_leader_held_offline_and_silent_is_replaced() {
    for alice_beats in [false, true] {
        let t0 = base_time();
        let (mut n, out) = welcomed_as(t0, |w| {
            w.voting = vec![0xff];
            w.members[0].presence = Presence::Offline;
        });
        // Alice acks what bob sent her (that he holds his welcome, and her entry as he
        // holds it), and refutes nothing: she is silent from here, or beats on.
        let ids = out.ids_to(addr(1), |_| true);
        n.handle_datagram(t0, addr(1), &ack_of(BOB, LEADER, &ids));
        assert_eq!(n.epoch(), Some(epoch(0, LEADER)));
        let bound = n.ctx.cfg.suspect_after();
        let mut asked = Vec::new();
        for k in 1..=20u64 {
            let at = t0 + Duration::from_millis(100 * k);
            if alice_beats {
                let beat = Heartbeat {
                    epoch: Some(epoch(0, LEADER)),
                    delivered: Seq(0),
                    digest: 0,
                    probe: false,
                    unknown: false,
                };
                n.handle_datagram(
                    at,
                    addr(1),
                    &datagram(LEADER, vec![Packet::Heartbeat(beat)]),
                );
            }
            n.handle_timeout(at);
            for (to, term) in prevotes_sent(&all_packets(&mut n)) {
                asked.push((at - t0, to, term));
            }
        }
        if alice_beats {
            assert_eq!(asked, vec![], "alice speaks: bob asks nobody");
            continue;
        }
        let first = asked.first().map(|a| a.0);
        assert!(
            first.is_some_and(|t| t >= bound && t <= Duration::from_secs(1)),
            "bob asks once alice has been silent for a suspicion bound ({bound:?}): {asked:?}"
        );
        let mut to: Vec<(SocketAddr, u64)> = asked.iter().map(|a| (a.1, a.2)).collect();
        to.sort();
        to.dedup();
        assert_eq!(
            to,
            vec![(addr(1), 1), (addr(3), 1)],
            "both other voters, round 1"
        );
    }
}
