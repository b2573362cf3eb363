//! A member's new process proves itself to a member that has no leader to ask
//! (`life/proven.rs`).

use super::prevote::bob_losing_carol;
use super::terms::{all_packets, beat_naming, epoch, flushed};
use super::*;
use crate::wire::{member_proof_message, proof_message};

/// Carol's new process, unknown to bob.
const CAROL_AGAIN: NodeId = NodeId(301);

/// Carol's user key (the tests' identity of her first process's id).
fn carols_key() -> SigningKey {
    identity(CAROL.0 as u8)
}

/// Bob follows carol's term 1 and she never spoke in it, so no leader leads for him; he
/// holds her process offline. Her new process beats to him from her address; returns
/// the nonces of the challenges bob sent it there.
fn bob_hears_carols_new_process(t0: Instant) -> (Node, Vec<[u8; 16]>) {
    let mut n = bob_losing_carol(t0);
    hold_carol_offline(&mut n);
    flushed(&mut n, t0);
    n.handle_datagram(
        t0,
        addr(3),
        &beat_naming(CAROL_AGAIN, epoch(1, CAROL), false),
    );
    let mut sent = all_packets(&mut n);
    n.handle_timeout(t0 + Duration::from_millis(50));
    sent.extend(all_packets(&mut n));
    let nonces = challenges(sent, addr(3), CAROL_AGAIN);
    (n, nonces)
}

/// The nonces of the challenges in `sent` to `to` that ask `newcomer` to prove itself.
fn challenges(sent: Vec<(SocketAddr, Packet)>, to: SocketAddr, newcomer: NodeId) -> Vec<[u8; 16]> {
    sent.into_iter()
        .filter_map(|(at, p)| match p {
            Packet::Data {
                msg:
                    Message::Challenge {
                        nonce,
                        newcomer: asked,
                        of_member: true,
                    },
                ..
            } if at == to && asked == newcomer => Some(nonce),
            _ => None,
        })
        .collect()
}

/// Bob holds carol's process offline (his own verdict).
fn hold_carol_offline(n: &mut Node) {
    let mut gone = n.members().get(CAROL).cloned().expect("carol is known");
    gone.presence = Presence::Offline;
    gone.stamp = Stamp {
        lamport: Lamport(5000),
        by: BOB,
    };
    n.ring.merge(gone);
}

/// Whether bob holds carol's new process online at her address, and her old one not
/// online (its entry stays while it is the leader he follows).
fn holds_new_carol(n: &Node) -> bool {
    n.members()
        .get(CAROL_AGAIN)
        .is_some_and(|m| m.presence == Presence::Online && m.addr == addr(3) && m.name == "carol")
        && !n.members().is_online(CAROL)
}

/// A member whose leader is gone, told nothing by anyone it may believe, challenges an
/// unknown process speaking from a voter's address; the process's proof, signed with
/// that voter's key and bound to the challenger, puts it in the earlier process's
/// place. Before, it dropped every datagram of the new process for good (`sim_chaos`
/// minority seeds 1880091, 1880441).
#[test]
fn an_unknown_process_at_a_voters_address_proves_itself_when_no_leader_can_tell() {
    let t0 = base_time();
    let (mut n, nonces) = bob_hears_carols_new_process(t0);
    assert_eq!(nonces.len(), 1, "one challenge to carol's address");
    let signed = member_proof_message(&nonces[0], CAROL_AGAIN, "carol", BOB);
    let signature = carols_key().sign(&signed).to_bytes().to_vec();
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL_AGAIN, 1, Message::Proof { signature }),
    );
    assert!(
        holds_new_carol(&n),
        "{:?}",
        n.members().entries().collect::<Vec<_>>()
    );
}

/// A forger's answer to a challenge's nonce.
type Forge = fn(&[u8; 16]) -> Vec<u8>;

/// Nothing else proves it: a join's proof of the same nonce (which another member could
/// have had a leader's challenge answered with), a proof bound to another member, or
/// one signed with another key.
#[test]
fn only_a_proof_bound_to_the_challenger_with_the_voters_key_is_taken() {
    let t0 = base_time();
    let forged: [Forge; 3] = [
        |nonce| {
            let m = proof_message(nonce, CAROL_AGAIN, "carol");
            carols_key().sign(&m).to_bytes().to_vec()
        },
        |nonce| {
            let m = member_proof_message(nonce, CAROL_AGAIN, "carol", LEADER);
            carols_key().sign(&m).to_bytes().to_vec()
        },
        |nonce| {
            let m = member_proof_message(nonce, CAROL_AGAIN, "carol", BOB);
            identity(9).sign(&m).to_bytes().to_vec()
        },
    ];
    for (i, forge) in forged.iter().enumerate() {
        let (mut n, nonces) = bob_hears_carols_new_process(t0);
        let signature = forge(&nonces[0]);
        n.handle_datagram(
            t0,
            addr(3),
            &data(CAROL_AGAIN, 1, Message::Proof { signature }),
        );
        assert!(n.members().get(CAROL_AGAIN).is_none(), "forgery {i} taken");
    }
}

/// While its leader leads, a member asks the leader for the table instead, and
/// challenges no one.
#[test]
fn a_member_whose_leader_leads_challenges_no_one() {
    let t0 = base_time();
    let mut n = follower_welcomed(t0, vec![], true).0;
    hold_carol_offline(&mut n);
    n.handle_datagram(t0, addr(1), &beat_naming(LEADER, epoch(0, LEADER), false));
    flushed(&mut n, t0);
    n.handle_datagram(
        t0,
        addr(3),
        &beat_naming(CAROL_AGAIN, epoch(0, LEADER), false),
    );
    let challenged = all_packets(&mut n).iter().any(|(_, p)| {
        matches!(
            p,
            Packet::Data {
                msg: Message::Challenge { .. },
                ..
            }
        )
    });
    assert!(!challenged);
}

/// The proofs `n` sends to `to` now.
fn proofs_to(n: &mut Node, t: Instant, to: SocketAddr) -> Vec<Vec<u8>> {
    flushed(n, t)
        .into_iter()
        .filter_map(|(at, p)| match p {
            Packet::Data {
                msg: Message::Proof { signature },
                ..
            } if at == to => Some(signature),
            _ => None,
        })
        .collect()
}

/// Whether `signature` is bob's over `signed`.
fn signed_by_bob(n: &Node, signed: &[u8], signature: &[u8]) -> bool {
    let key =
        VerifyingKey::from_bytes(&n.members().get(BOB).expect("own entry").key).expect("a key");
    let sig = Signature::from_bytes(&signature.try_into().expect("64 bytes"));
    key.verify_strict(signed, &sig).is_ok()
}

/// A member's challenge of bob, from `from` (id, port).
fn member_challenge(nonce: [u8; 16], (from, port): (NodeId, u16)) -> Vec<u8> {
    let challenge = Message::Challenge {
        nonce,
        newcomer: BOB,
        of_member: true,
    };
    data(from, 50 + u64::from(port), challenge)
}

/// Carol, a member, challenges bob with `nonce`: he answers her once, bound to her.
fn carol_challenges_bob(n: &mut Node, t0: Instant, nonce: [u8; 16]) {
    n.handle_datagram(t0, addr(3), &member_challenge(nonce, (CAROL, 3)));
    let proofs = proofs_to(n, t0, addr(3));
    assert_eq!(proofs.len(), 1, "one proof, to carol");
    let signed = member_proof_message(&nonce, BOB, "bob", CAROL);
    assert!(signed_by_bob(n, &signed, &proofs[0]), "bound to carol");
}

/// The other side: a member answers a member it knows that challenges it, with a proof
/// bound to that member; a challenge from a stranger gets none.
#[test]
fn a_member_proves_itself_to_a_member_it_knows_only() {
    let t0 = base_time();
    let mut n = follower_with(t0, vec![]).0;
    let nonce = [7u8; 16];
    carol_challenges_bob(&mut n, t0, nonce);

    n.handle_datagram(t0, addr(9), &member_challenge(nonce, (NodeId(900), 9)));
    assert!(
        proofs_to(&mut n, t0, addr(9)).is_empty(),
        "a stranger's challenge is not answered"
    );
}

/// A member asking to be taken in (a re-registration under way) answers a member's
/// challenge as a member, and the leader's challenge of its join as a join. It answered
/// both as a join's, and the member, whose check binds the challenger, dropped its new
/// process as a forger's for good (`sim_chaos` minority seed 12829: "a proof for ben
/// that does not check", 57 times).
#[test]
fn a_member_asking_to_be_taken_in_answers_each_challenge_in_its_kind() {
    let t0 = base_time();
    let mut n = follower_with(t0, vec![]).0;
    n.resync_with(t0, addr(1));
    drain(&mut n);
    let nonce = [7u8; 16];
    carol_challenges_bob(&mut n, t0, nonce);

    let join = Message::Challenge {
        nonce,
        newcomer: BOB,
        of_member: false,
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 60, join));
    let proofs = proofs_to(&mut n, t0, addr(1));
    assert_eq!(proofs.len(), 1, "one proof, to alice");
    assert!(
        signed_by_bob(&n, &proof_message(&nonce, BOB, "bob"), &proofs[0]),
        "a join's proof"
    );
}

/// Not only a voter's: any member's new process unknown here proves itself. Its
/// datagrams (election tokens passed round the ring, above all) are dropped as a
/// stranger's otherwise, so no round through it ends (`sim_chaos` majority seeds 3235
/// and 3315: two leaders for good, each holding the other's followers' new processes
/// unknown).
#[test]
fn a_non_voters_new_process_proves_itself_too() {
    const ERIN: NodeId = NodeId(500);
    const ERIN_AGAIN: NodeId = NodeId(501);
    let t0 = base_time();
    let mut n = bob_losing_carol(t0);
    let mut erin = member(ERIN, "erin", 5);
    erin.presence = Presence::Offline;
    n.ring.merge(erin);
    assert!(!n.room.voters().contains("erin"), "erin does not vote");
    flushed(&mut n, t0);
    n.handle_datagram(
        t0,
        addr(5),
        &beat_naming(ERIN_AGAIN, epoch(1, CAROL), false),
    );
    let nonces = challenges(flushed(&mut n, t0), addr(5), ERIN_AGAIN);
    assert_eq!(nonces.len(), 1, "one challenge to erin's address");
    let signed = member_proof_message(&nonces[0], ERIN_AGAIN, "erin", BOB);
    let signature = identity(ERIN.0 as u8).sign(&signed).to_bytes().to_vec();
    n.handle_datagram(
        t0,
        addr(5),
        &data(ERIN_AGAIN, 1, Message::Proof { signature }),
    );
    assert!(
        n.members()
            .get(ERIN_AGAIN)
            .is_some_and(|m| m.presence == Presence::Online && m.addr == addr(5)),
        "{:?}",
        n.members().entries().collect::<Vec<_>>()
    );
}

/// A leader that challenged an unknown process at a member's address (its datagrams came
/// first) and then gets its join challenges it again, as a newcomer; the process, asking
/// to be taken in, answers each challenge as a join's. The answer to the join's challenge
/// is checked as a join's proof, not refused as a bad answer to the other (`sim_chaos`
/// majority seed 1774: every join of ben's new process was refused so, for good).
#[test]
fn a_join_proof_answers_the_join_not_the_member_challenge_before_it() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    hold_carol_offline(&mut n);
    drain(&mut n);
    n.handle_datagram(
        t0,
        addr(3),
        &beat_naming(CAROL_AGAIN, epoch(0, LEADER), false),
    );
    let out = drain(&mut n);
    assert!(
        out.messages_to(addr(3))
            .iter()
            .any(|m| matches!(m, Message::Challenge { newcomer, .. } if *newcomer == CAROL_AGAIN)),
        "the leader asks the unknown process to prove who it is"
    );
    let key = carols_key();
    let out = join_as(&mut n, t0, (CAROL_AGAIN, 3, "carol"), &key, &key);
    assert!(
        out.messages_to(addr(3))
            .iter()
            .any(|m| matches!(m, Message::Welcome(w) if w.newcomer == CAROL_AGAIN)),
        "carol's new process is let in: {:?}",
        out.messages_to(addr(3))
    );
}
