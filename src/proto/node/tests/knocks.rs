//! Knocking (`ring/prevote.rs`, `Node::knock`): a node that finds no majority, asking
//! the voters or taking part in rounds that time out, also asks a known address to take
//! it in with a join, as a restarted node does: the room may go on under processes it
//! does not know, whose members drop its questions and its tokens.

use super::prevote::{bob_losing_carol, prevotes_sent};
use super::terms::{DAVE, all_packets, beat_naming, election_terms_sent, epoch};
use super::*;

/// Where `sent` holds joins to.
fn joins_sent(sent: &[(SocketAddr, Packet)]) -> Vec<SocketAddr> {
    sent.iter()
        .filter_map(|(a, p)| {
            matches!(
                p,
                Packet::Data {
                    msg: Message::Join { .. },
                    ..
                }
            )
            .then_some(*a)
        })
        .collect()
}

/// Bob follows carol's term 1 and she never shows it; nobody answers his pre-votes (the
/// room goes on under processes he does not know, whose members drop his questions).
/// After three asks he also knocks on a known address with a join, as a restarted node
/// does, and no round starts meanwhile. (Before, he asked the voters for good:
/// `sim_chaos` minority seeds 1880208, 1880214, 1880380.)
#[test]
fn a_node_nobody_answers_knocks_on_a_known_address() {
    let t0 = base_time();
    let mut n = bob_losing_carol(t0);
    let mut at = t0;
    let mut joins = Vec::new();
    let mut terms = Vec::new();
    while joins.is_empty() {
        at += Duration::from_millis(100);
        assert!(
            at < t0 + Duration::from_secs(30),
            "bob never knocked: rounds {terms:?}"
        );
        n.handle_timeout(at);
        let sent = all_packets(&mut n);
        terms.extend(election_terms_sent(&sent));
        joins.extend(joins_sent(&sent));
    }
    assert!(
        joins
            .iter()
            .all(|a| [addr(1), addr(3), addr(4)].contains(a)),
        "{joins:?}"
    );
    assert!(terms.iter().all(|t| *t <= 1), "no round: {terms:?}");
}

/// Bob follows carol's term 1 and she never shows it (alice and dave beat to him). Each
/// time he asks the voters, alice's token of a new round comes through him first (a round under way ends his
/// own pre-vote), and the round times out: the others drop its tokens. After three such
/// rounds he knocks too. Before, each of alice's tokens ended his pre-vote, whose count
/// of asks never reached three, and he never knocked (`sim_chaos` majority seed 11376:
/// ben, restarted, and ann, whom he let in, ran rounds for good while the room went on
/// under a leader neither knew).
#[test]
fn a_node_whose_rounds_keep_timing_out_knocks_too() {
    let t0 = base_time();
    let mut n = bob_losing_carol(t0);
    let mut at = t0;
    let mut rounds = 1;
    let mut joins = Vec::new();
    while joins.is_empty() {
        at += Duration::from_millis(100);
        assert!(
            at < t0 + Duration::from_secs(60),
            "bob never knocked after {rounds} rounds"
        );
        // Alice and dave live (they beat, following carol); carol is silent.
        for (id, port) in [(LEADER, 1), (DAVE, 4)] {
            n.handle_datagram(at, addr(port), &beat_naming(id, epoch(1, CAROL), false));
        }
        n.handle_timeout(at);
        let mut sent = all_packets(&mut n);
        if !prevotes_sent(&sent).is_empty() {
            rounds += 1;
            let token = Message::Election {
                term: rounds,
                candidate: DAVE,
                log: Seq(1000),
            };
            n.handle_datagram(at, addr(1), &data(LEADER, 100 + rounds, token));
            sent.extend(all_packets(&mut n));
        }
        joins.extend(joins_sent(&sent));
    }
    assert!(rounds > 3, "three rounds timed out first ({rounds})");
    assert!(
        joins
            .iter()
            .all(|a| [addr(1), addr(3), addr(4)].contains(a)),
        "{joins:?}"
    );
}
