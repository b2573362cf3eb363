//! Asks that need more than the room key: a one-time invitation, a member's pair key,
//! and a node holding several kinds of key.

use super::super::grant::seal_grant;
use super::*;

/// The identity (ed25519 public key) of node `n` as [`admission`] makes it.
fn identity_of(n: u8) -> [u8; 32] {
    SigningKey::from_bytes(&[n; 32]).verifying_key().to_bytes()
}

/// Whether `answer`'s sends hold a grant that `joiner` takes as from `from`.
fn granted(joiner: &mut Admission, now: Instant, from: SocketAddr, sends: &[Send]) -> bool {
    sends.iter().any(|s| match s {
        Send::Wire(_, g) => joiner.take_grant(now, from, g),
        Send::Session(..) => false,
    })
}

/// A one-time invitation: its ask opens only at the member that minted it, for the first
/// identity that used it (again, if it asks again), never for another, and not once it
/// expired; a room key does not open it, nor does it open as a room key.
#[test]
fn an_invitation_lets_one_identity_ask_its_inviter_alone() {
    let t0 = Instant::now();
    let minted = Invitations::in_memory();
    let secret = minted.mint().unwrap();
    let inviter_keys = AskKeys {
        room: Some(&ROOM),
        invitations: Some(&minted),
    };
    let (at_inviter, at_other) = (addr(6001), addr(6002));
    let mut inviter = leader(1, &[(2, 6002)], t0);
    let mut other = leader(2, &[(1, 6001)], t0);
    let mut bob = admission(5, t0);
    let with = [AskWith::Invitation(secret)];

    // Another member, holding the room key but not the invitation, cannot open it.
    let ask = bob.ask(t0, &with, at_other).unwrap();
    assert_eq!(
        other.answer(t0, addr(6005), room(), &ask, &mut Vec::new()),
        Err("an ask under an invitation not made here, or expired")
    );
    // The inviter answers it, and hands the join key to the others.
    let ask = bob.ask(t0, &with, at_inviter).unwrap();
    let mut sends = Vec::new();
    inviter
        .answer(t0, addr(6005), inviter_keys, &ask, &mut sends)
        .unwrap();
    assert!(granted(&mut bob, t0, at_inviter, &sends));
    assert!(sends.contains(&Send::Session(at_other, {
        let mut hand = vec![JOIN_KEY];
        hand.extend_from_slice(&addr_bytes(addr(6005)));
        hand.extend_from_slice(&bob.join_keys_for(t0, at_inviter)[0]);
        hand
    })));
    assert_eq!(minted.counts(), (1, 1), "used, by bob");
    // Bob again (he crashed before he was in): answered.
    let ask = bob.ask(t0, &with, at_inviter).unwrap();
    let mut sends = Vec::new();
    inviter
        .answer(t0, addr(6005), inviter_keys, &ask, &mut sends)
        .unwrap();
    assert!(granted(&mut bob, t0, at_inviter, &sends));
    // Eve, another identity with the same invitation (a copy, or bob with a new identity).
    let mut eve = admission(6, t0);
    let ask = eve.ask(t0, &with, at_inviter).unwrap();
    let mut sends = Vec::new();
    assert_eq!(
        inviter.answer(t0, addr(6006), inviter_keys, &ask, &mut sends),
        Err("an ask under an invitation another identity used")
    );
    assert!(sends.is_empty(), "nothing at all goes back");
    // Expired: not even bob.
    minted.expire(&secret);
    let ask = bob.ask(t0, &with, at_inviter).unwrap();
    assert!(
        inviter
            .answer(t0, addr(6005), inviter_keys, &ask, &mut Vec::new())
            .is_err()
    );
    // The invitation's secret is no room key: a node holding it as one answers nothing
    // under it, and asks under the room key do not open with invitations.
    let fresh = Invitations::in_memory();
    let s2 = fresh.mint().unwrap();
    let mut carol = admission(7, t0);
    let under_room = carol.ask(t0, &[AskWith::Room(ROOM)], at_inviter).unwrap();
    let only_invitations = AskKeys {
        room: None,
        invitations: Some(&fresh),
    };
    assert!(
        inviter
            .answer(
                t0,
                addr(6007),
                only_invitations,
                &under_room,
                &mut Vec::new()
            )
            .is_err()
    );
    let mut bob_as_member = leader(5, &[], t0);
    let ask = carol
        .ask(t0, &[AskWith::Invitation(s2)], addr(6005))
        .unwrap();
    assert!(
        bob_as_member
            .answer(t0, addr(6007), AskKeys::default(), &ask, &mut Vec::new())
            .is_err(),
        "only the table of the member that minted it opens it"
    );
}

/// A member coming back (a restart, `reg`) asks under its pair key with the member it
/// turns to, tagged (not named): answered where that identity is in the table (whatever
/// its entry says); not where it is unknown, nor for a node that holds another identity.
/// A grant answers only an ask it could open: one forged from what the wire shows (the
/// nonce, and the asker's identity if known) does not open.
#[test]
fn a_member_asks_under_its_pair_key_and_a_stranger_cannot() {
    let t0 = Instant::now();
    let mut member = leader(1, &[], t0);
    member.set_table(false, vec![], [(addr(6005), identity_of(5))]);
    let at_member = addr(6001);
    let members_static = super::super::super::StaticKeys::from_identity(&[1; 32]).public;
    let mut bob = admission(5, t0);
    let pair = bob.pair_key(&members_static);
    let ask = bob.ask(t0, &[AskWith::Pair(pair)], at_member).unwrap();
    assert_eq!(ask[ASK_KIND], KIND_PAIR);
    assert!(
        !ask.windows(32).any(|w| w == identity_of(5)),
        "the ask does not name bob's identity"
    );
    // A grant an eavesdropper makes from the wire (bob's identity, the nonce) does not open.
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&ask[1..25]);
    let forged = seal_grant(&identity_of(5), &[0xEE; 32], &nonce, &[0; 32]).unwrap();
    assert!(!bob.take_grant(t0, at_member, &forged), "a forged grant");
    let mut sends = Vec::new();
    member
        .answer(t0, addr(6005), AskKeys::default(), &ask, &mut sends)
        .unwrap();
    assert!(granted(&mut bob, t0, at_member, &sends));

    // Eve, another identity: her pair key with the member is another, unknown there.
    let mut eve = admission(6, t0);
    let eves_pair = eve.pair_key(&members_static);
    let ask = eve.ask(t0, &[AskWith::Pair(eves_pair)], at_member).unwrap();
    assert_eq!(
        member.answer(t0, addr(6006), AskKeys::default(), &ask, &mut Vec::new()),
        Err("an ask under a pair key with no member of our table")
    );
    // Bob's tag on an ask eve seals with her own key: it does not open.
    let mut ask = eve.ask(t0, &[AskWith::Pair(eves_pair)], at_member).unwrap();
    ask[ASK_KIND + 1..ASK_KIND + 1 + TAG_LEN].copy_from_slice(&pair_tag(&pair));
    assert_eq!(
        member.answer(t0, addr(6006), AskKeys::default(), &ask, &mut Vec::new()),
        Err("an ask that does not open with the key it names")
    );
    // Once bob is no longer in the member's table, his pair key opens nothing either.
    member.set_table(false, vec![], []);
    let ask = bob.ask(t0, &[AskWith::Pair(pair)], at_member).unwrap();
    assert!(
        member
            .answer(t0, addr(6005), AskKeys::default(), &ask, &mut Vec::new())
            .is_err()
    );
    // Where the table has a member, this node knows whom to ask under their pair key.
    let mut back = admission(5, t0);
    back.set_table(true, vec![], [(at_member, identity_of(1))]);
    assert_eq!(back.static_at(at_member), Some(members_static));
    assert_eq!(back.static_at(addr(6009)), None);
}

/// A node with several kinds of key asks under each in turn, so that a member holding
/// only one of them answers within a few asks; each says its kind in the clear.
#[test]
fn asks_turn_to_each_kind_of_key_in_turn() {
    let t0 = Instant::now();
    let mut joiner = admission(5, t0);
    let to = addr(6001);
    let with = [
        AskWith::Pair([1; 32]),
        AskWith::Room(ROOM),
        AskWith::Invitation([3; 32]),
    ];
    let kinds = [KIND_PAIR, KIND_ROOM, KIND_INVITATION];
    let opens_with = |ask: &[u8], key: &[u8; 32]| {
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&ask[1..25]);
        let mut aad = vec![ASK];
        aad.extend_from_slice(&ask[ASK_KIND..ASK_KIND + 1 + TAG_LEN]);
        XChaCha20Poly1305::new(key.into())
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &ask[25..ASK_KIND],
                    aad: &aad,
                },
            )
            .is_ok()
    };
    let keys = [[1u8; 32], ROOM, [3; 32]];
    for round in 0..6 {
        let ask = joiner.ask(t0, &with, to).unwrap();
        let which: Vec<usize> = (0..3).filter(|&i| opens_with(&ask, &keys[i])).collect();
        assert_eq!(which, [round % 3], "ask {round}");
        assert_eq!(ask[ASK_KIND], kinds[round % 3]);
        // The kind is bound: changed on the wire, the ask no longer opens.
        let mut changed = ask.clone();
        changed[ASK_KIND] = kinds[(round + 1) % 3];
        assert!(!opens_with(&changed, &keys[round % 3]));
    }
    assert_eq!(joiner.ask(t0, &[], to), None, "no key: no ask");
}
