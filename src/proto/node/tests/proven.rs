//! A voter's new process proves itself to a member that has no leader to ask
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
    let nonces = sent
        .into_iter()
        .filter_map(|(to, p)| match p {
            Packet::Data {
                msg: Message::Challenge { nonce, newcomer },
                ..
            } if to == addr(3) && newcomer == CAROL_AGAIN => Some(nonce),
            _ => None,
        })
        .collect();
    (n, nonces)
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

/// The other side: a member answers a member it knows that challenges it, with a proof
/// bound to that member; a challenge from a stranger gets none.
#[test]
fn a_member_proves_itself_to_a_member_it_knows_only() {
    let t0 = base_time();
    let mut n = follower_with(t0, vec![]).0;
    let nonce = [7u8; 16];
    let challenge = Message::Challenge {
        nonce,
        newcomer: BOB,
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 50, challenge.clone()));
    let proofs: Vec<Vec<u8>> = flushed(&mut n, t0)
        .into_iter()
        .filter_map(|(to, p)| match p {
            Packet::Data {
                msg: Message::Proof { signature },
                ..
            } if to == addr(3) => Some(signature),
            _ => None,
        })
        .collect();
    assert_eq!(proofs.len(), 1, "one proof, to carol");
    let signed = member_proof_message(&nonce, BOB, "bob", CAROL);
    let key =
        VerifyingKey::from_bytes(&n.members().get(BOB).expect("own entry").key).expect("a key");
    let sig = Signature::from_bytes(&proofs[0].clone().try_into().expect("64 bytes"));
    assert!(key.verify_strict(&signed, &sig).is_ok(), "bound to carol");

    n.handle_datagram(t0, addr(9), &data(NodeId(900), 1, challenge));
    let answered = flushed(&mut n, t0).iter().any(|(_, p)| {
        matches!(
            p,
            Packet::Data {
                msg: Message::Proof { .. },
                ..
            }
        )
    });
    assert!(!answered, "a stranger's challenge is not answered");
}
