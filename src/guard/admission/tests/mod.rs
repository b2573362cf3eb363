//! Admission's own tests: asks and grants, join keys, pair keys.

use super::grant::unix_millis;
use super::*;
use crate::guard::Invitations;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Admission for node `n` (identity secret `[n; 32]`), outside the room.
fn admission(n: u8, now: Instant) -> Admission {
    let secret = [n; 32];
    let statics = super::super::StaticKeys::from_identity(&secret);
    let public = SigningKey::from_bytes(&secret).verifying_key().to_bytes();
    Admission::new(public, statics.private, statics.public, now)
}

/// A member `n` in the room, with the other online members at `others`' ports.
fn leader(n: u8, others: &[(u8, u16)], now: Instant) -> Admission {
    let mut a = admission(n, now);
    a.set_table(
        false,
        others.iter().map(|(_, port)| addr(*port)).collect(),
        [],
    );
    a
}

const ROOM: [u8; 32] = [7; 32];

/// What a member holding the room key [`ROOM`] answers with.
fn room() -> AskKeys<'static> {
    AskKeys {
        room: Some(&ROOM),
        invitations: None,
    }
}

/// An ask from `a` to `to`, sealed with the room key [`ROOM`].
fn room_ask(a: &mut Admission, now: Instant, to: SocketAddr) -> Vec<u8> {
    a.ask(now, &[AskWith::Room(ROOM)], to).expect("an ask")
}

#[test]
fn an_ask_gets_a_join_key_that_only_the_asking_identity_opens() {
    let t0 = Instant::now();
    let mut member = leader(1, &[(2, 6002)], t0);
    let mut joiner = admission(5, t0);
    let (at_member, at_joiner) = (addr(6001), addr(6005));
    assert!(joiner.should_ask(t0, at_member));
    assert!(!joiner.should_ask(t0, at_member), "not again at once");
    let ask = room_ask(&mut joiner, t0, at_member);
    assert_eq!(ask.len(), ASK_LEN);
    let mut sends = Vec::new();
    member
        .answer(t0, at_joiner, room(), &ask, &mut sends)
        .expect("answered");
    let Some(Send::Wire(to, grant)) = sends.first() else {
        panic!("{sends:?}")
    };
    assert_eq!(*to, at_joiner);
    assert!(grant.len() < ask.len(), "an answer never amplifies");
    // The join key goes to the other online member, in its session.
    assert!(
        sends[1..]
            .iter()
            .all(|s| matches!(s, Send::Session(a, f) if *a == addr(6002) && f[0] == JOIN_KEY))
    );
    assert_eq!(sends.len(), 2);
    // Another identity that captured the grant cannot open it, even one that asked.
    let mut thief = admission(6, t0);
    assert!(thief.should_ask(t0, at_member));
    assert!(!thief.take_grant(t0, at_member, grant));
    // The asker can, and then holds the key the member keeps for its address.
    assert!(joiner.take_grant(t0, at_member, grant));
    // It asks each node it turns to, each at most once within ASK_AGAIN.
    assert!(joiner.should_ask(t0, addr(6009)));
    assert!(!joiner.should_ask(t0, addr(6009)));
    assert!(joiner.should_ask(t0 + ASK_AGAIN, addr(6009)));
    let key = joiner.join_keys_for(t0, at_member)[0];
    assert_eq!(member.join_keys_for(t0, at_joiner), vec![key]);
    assert_eq!(member.join_keys_from(t0, at_joiner), vec![key]);
    // Not used for a handshake until something from the joiner opened with it here.
    assert!(!member.joins_at(t0, at_joiner));
    member.used(t0, at_joiner, &key);
    assert!(member.joins_at(t0, at_joiner));
    assert_eq!(member.handshake_key_for(t0, at_joiner), Some(key));
    // Unasked, a grant is not taken.
    let mut other = admission(8, t0);
    assert!(!other.take_grant(t0, at_member, grant));
    // The join key is forgotten when unused for its life.
    let later = t0 + JOIN_KEY_LIFE;
    assert!(member.join_keys_for(later, at_joiner).is_empty());
    assert!(joiner.join_keys_for(later, at_member).is_empty());
}

#[test]
fn asks_are_answered_only_with_the_same_room_key_fresh_once_and_within_the_rate() {
    let t0 = Instant::now();
    let mut joiner = admission(5, t0);
    let mut member = leader(1, &[], t0);
    let mut sends = Vec::new();
    assert_eq!(
        member.answer(
            t0,
            addr(6005),
            AskKeys {
                room: Some(&[8; 32]),
                invitations: None,
            },
            &room_ask(&mut joiner, t0, addr(6001)),
            &mut sends
        ),
        Err("an ask that does not open with the key it names")
    );
    let mut short = room_ask(&mut joiner, t0, addr(6001));
    short.pop();
    assert_eq!(
        member.answer(t0, addr(6005), room(), &short, &mut sends),
        Err("a malformed ask")
    );
    // A captured ask is answered once; an old one (or one from a clock far off) never.
    let ask = room_ask(&mut joiner, t0, addr(6001));
    member
        .answer(t0, addr(6005), room(), &ask, &mut sends)
        .unwrap();
    assert_eq!(
        member.answer(t0, addr(6005), room(), &ask, &mut sends),
        Err("an ask answered before (a replay)")
    );
    let stale = unix_millis() - ASK_FRESH.as_millis() as u64 - 1000;
    assert_eq!(
        member.answer(
            t0,
            addr(6005),
            room(),
            &joiner.ask_at(AskWith::Room(ROOM), stale, [1; 24]),
            &mut sends
        ),
        Err("an ask that is not fresh (a replay, or a clock far off)")
    );
    // A node outside the room answers too, for its own join exchange (no one to hand
    // the key on to): nodes restarting at once tell each other so.
    let mut outsider = admission(3, t0);
    let mut theirs = Vec::new();
    outsider
        .answer(
            t0,
            addr(6005),
            room(),
            &room_ask(&mut joiner, t0, addr(6001)),
            &mut theirs,
        )
        .unwrap();
    assert!(matches!(&theirs[..], [Send::Wire(..)]), "{theirs:?}");
    // At most GRANTS_PER_IP a second from one IP address, GRANTS_PER_SECOND from all.
    let t1 = t0 + Duration::from_secs(1);
    for _ in 0..GRANTS_PER_IP {
        member
            .answer(
                t1,
                addr(6005),
                room(),
                &room_ask(&mut joiner, t0, addr(6001)),
                &mut sends,
            )
            .expect("within the rate");
    }
    assert_eq!(
        member.answer(
            t1,
            addr(6006),
            room(),
            &room_ask(&mut joiner, t0, addr(6001)),
            &mut sends
        ),
        Err("an ask over the grants' rate")
    );
    let from_ip = |i: u32| SocketAddr::from(([127, 0, 1, i as u8], 7000));
    for i in 0..GRANTS_PER_SECOND - GRANTS_PER_IP {
        member
            .answer(
                t1,
                from_ip(i),
                room(),
                &room_ask(&mut joiner, t0, addr(6001)),
                &mut sends,
            )
            .expect("within the rate");
    }
    assert_eq!(
        member.answer(
            t1,
            from_ip(200),
            room(),
            &room_ask(&mut joiner, t0, addr(6001)),
            &mut sends
        ),
        Err("an ask over the grants' rate")
    );
    assert_eq!(member.counts.granted, u64::from(GRANTS_PER_SECOND) + 1);
    // Join keys kept per address are bounded.
    assert_eq!(
        member.join_keys_from(t1, addr(6005)).len(),
        JOIN_KEYS_PER_ADDR
    );
}

/// Asks forged from a node's address make keys that node does not hold: the join
/// exchange then goes under each key held for it (its own among them) until one of its
/// own datagrams opens, and a handshake only under the key that did.
#[test]
fn asks_forged_from_an_address_do_not_take_its_join_exchange_or_handshakes() {
    let t0 = Instant::now();
    let mut member = leader(1, &[], t0);
    let mut joiner = admission(5, t0);
    let mut forger = admission(9, t0);
    let (at_member, at_joiner) = (addr(6001), addr(6005));
    assert!(joiner.should_ask(t0, at_member));
    let mut sends = Vec::new();
    member
        .answer(
            t0,
            at_joiner,
            room(),
            &room_ask(&mut joiner, t0, at_member),
            &mut sends,
        )
        .unwrap();
    let Send::Wire(_, grant) = &sends[0] else {
        panic!()
    };
    assert!(joiner.take_grant(t0, at_member, grant));
    let own = joiner.join_keys_for(t0, at_member)[0];
    // Two asks forged from the joiner's address, each answered.
    for _ in 0..2 {
        member
            .answer(
                t0,
                at_joiner,
                room(),
                &room_ask(&mut forger, t0, at_member),
                &mut Vec::new(),
            )
            .unwrap();
    }
    let copies = member.join_keys_for(t0, at_joiner);
    assert_eq!(copies.len(), 3);
    assert!(copies.contains(&own));
    assert!(!member.joins_at(t0, at_joiner));
    assert_eq!(member.handshake_key_for(t0, at_joiner), None);
    // The joiner's own datagram opened with its key: that key alone from now on.
    member.used(t0, at_joiner, &own);
    assert_eq!(member.join_keys_for(t0, at_joiner), vec![own]);
    assert_eq!(member.handshake_key_for(t0, at_joiner), Some(own));
    // A forged ask from a member's address never makes its handshakes go under a join
    // key it does not hold.
    member
        .answer(
            t0,
            addr(6002),
            room(),
            &room_ask(&mut forger, t0, at_member),
            &mut Vec::new(),
        )
        .unwrap();
    assert!(!member.joins_at(t0, addr(6002)));
}

/// A pair key is the same at both ends of a pair, and differs for every other pair.
#[test]
fn a_pair_key_is_shared_by_its_pair_alone() {
    let t0 = Instant::now();
    let statics = |n: u8| super::super::StaticKeys::from_identity(&[n; 32]).public;
    let (mut a, mut b, mut c) = (admission(1, t0), admission(2, t0), admission(3, t0));
    let ab = a.pair_key(&statics(2));
    assert_eq!(b.pair_key(&statics(1)), ab);
    assert_ne!(c.pair_key(&statics(1)), ab);
    assert_ne!(c.pair_key(&statics(2)), ab);
    assert_ne!(a.pair_key(&statics(3)), ab);
    // Computed once, kept, and bounded.
    assert_eq!(a.pair_key(&statics(2)), ab);
    for n in 0..=255u8 {
        a.pair_key(&[n; 32]);
    }
    assert!(a.pairs.len() <= MAX_PAIR_KEYS);
}

#[test]
fn join_keys_handed_on_are_bounded_and_malformed_control_is_refused() {
    let t0 = Instant::now();
    let mut m = leader(1, &[], t0);
    let mut hand = vec![JOIN_KEY];
    hand.extend_from_slice(&addr_bytes(addr(7000)));
    hand.extend_from_slice(&[4; 32]);
    assert!(m.on_control(t0, &hand));
    assert_eq!(m.join_keys_from(t0, addr(7000)), vec![[4; 32]]);
    assert!(!m.on_control(t0, &hand[..10]));
    assert!(!m.on_control(t0, &[0xC9, 1, 2]));
    // Outside the room, none is taken.
    let mut out = admission(4, t0);
    assert!(!out.on_control(t0, &hand));
    for a in [
        addr(1),
        SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 9)),
        SocketAddr::from(([10, 1, 2, 3], 65535)),
    ] {
        assert_eq!(addr_from(&addr_bytes(a)), Some(a));
    }
    for port in 0..(MAX_JOINING as u16 + 10) {
        let mut hand = vec![JOIN_KEY];
        hand.extend_from_slice(&addr_bytes(addr(10_000 + port)));
        hand.extend_from_slice(&[5; 32]);
        assert!(m.on_control(t0, &hand));
    }
    assert!(m.joining.len() <= MAX_JOINING);
}

/// Out of the room (after `dereg`), a node forgets its join keys and asks again; what it
/// sends meanwhile waits, bounded.
#[test]
fn a_node_that_leaves_asks_again() {
    let t0 = Instant::now();
    let mut member = leader(1, &[], t0);
    let mut joiner = admission(5, t0);
    assert!(joiner.should_ask(t0, addr(6001)));
    let mut sends = Vec::new();
    member
        .answer(
            t0,
            addr(6005),
            room(),
            &room_ask(&mut joiner, t0, addr(6001)),
            &mut sends,
        )
        .unwrap();
    let Send::Wire(_, grant) = &sends[0] else {
        panic!()
    };
    assert!(joiner.take_grant(t0, addr(6001), grant));
    joiner.set_table(false, vec![addr(6001)], []);
    joiner.set_table(true, vec![], []);
    assert!(joiner.join_keys_for(t0, addr(6001)).is_empty());
    assert!(joiner.should_ask(t0, addr(6001)));
    for i in 0..MAX_WAITING + 5 {
        joiner.wait(addr(6001), vec![i as u8]);
    }
    let waiting = joiner.take_waiting();
    assert_eq!(waiting.len(), MAX_WAITING);
    assert_eq!(waiting.front().unwrap().1, vec![5u8]);
}

/// Two nodes outside the room ask each other: a key one granted the other may seal what
/// comes back. Whichever key opened something from an address is the one used there.
#[test]
fn the_key_that_opened_something_from_an_address_answers_it() {
    let t0 = Instant::now();
    let (mut x, mut y) = (admission(1, t0), admission(2, t0));
    let (at_x, at_y) = (addr(6001), addr(6002));
    assert!(x.should_ask(t0, at_y) && y.should_ask(t0, at_x));
    let mut to_x = Vec::new();
    y.answer(t0, at_x, room(), &room_ask(&mut x, t0, at_y), &mut to_x)
        .unwrap();
    let Send::Wire(_, grant) = &to_x[0] else {
        panic!()
    };
    assert!(x.take_grant(t0, at_y, grant));
    let granted_to_x = x.join_keys_for(t0, addr(6099))[0];
    // x seals for y with the key y granted it; y opens it with the key it granted.
    assert_eq!(x.join_keys_for(t0, at_y), vec![granted_to_x]);
    assert_eq!(y.join_keys_from(t0, at_x), vec![granted_to_x]);
    // y answers with it, and once y is in the room, its handshakes to x go under it.
    y.set_table(false, vec![], []);
    y.used(t0, at_x, &granted_to_x);
    assert_eq!(y.handshake_key_for(t0, at_x), Some(granted_to_x));
    // And the other way: a key of a node's own (granted to it) opening something from
    // an address makes it the one for that address.
    let mut z = admission(3, t0);
    z.own.push_front(JoinKey {
        key: [9; 32],
        used: t0,
        confirmed: true,
        by: None,
    });
    z.used(t0, at_x, &[9; 32]);
    assert!(z.joins_at(t0, at_x));
    assert_eq!(z.join_keys_for(t0, at_x), vec![[9; 32]]);
}

/// A grant answers one of the node's last few asks there (an answer may come after the
/// node asked again), once: after one opened, no other grant does, nor a grant for an ask
/// older than the last few.
#[test]
fn a_grant_opens_only_for_the_ask_it_answers_and_once() {
    let t0 = Instant::now();
    let mut member = leader(1, &[], t0);
    let mut joiner = admission(5, t0);
    let (at_member, at_joiner) = (addr(6001), addr(6005));
    let grant_for = |member: &mut Admission, ask: &[u8]| {
        let mut sends = Vec::new();
        member
            .answer(t0, at_joiner, room(), ask, &mut sends)
            .unwrap();
        match sends.remove(0) {
            Send::Wire(_, g) => g,
            s => panic!("{s:?}"),
        }
    };
    let oldest = room_ask(&mut joiner, t0, at_member);
    let too_old = grant_for(&mut member, &oldest);
    let mut grants = Vec::new();
    for _ in 0..NONCES_KEPT {
        let ask = room_ask(&mut joiner, t0, at_member);
        grants.push(grant_for(&mut member, &ask));
    }
    assert!(
        !joiner.take_grant(t0, at_member, &too_old),
        "a grant for an ask older than the last few"
    );
    let (old, new) = (&grants[0], &grants[NONCES_KEPT - 1]);
    assert!(joiner.take_grant(t0, at_member, old), "a late answer");
    assert!(
        !joiner.take_grant(t0, at_member, new),
        "a second grant once one opened"
    );
    assert!(!joiner.take_grant(t0, at_member, old), "a replay");
    let ask = room_ask(&mut joiner, t0, at_member);
    let new = grant_for(&mut member, &ask);
    assert!(joiner.take_grant(t0, at_member, &new));
    assert!(!joiner.take_grant(t0, at_member, &new), "twice");
}

/// However many asks come, the cache of those answered never stops admission: past its
/// bound the oldest quarter goes.
#[test]
fn a_flood_of_asks_never_stops_admission() {
    let t0 = Instant::now();
    let mut member = leader(1, &[], t0);
    let mut joiner = admission(5, t0);
    let mut answered = 0;
    for i in 0..MAX_ASKS_SEEN + 10 {
        let t = t0 + Duration::from_millis(20 * i as u64 + 1000);
        let from = SocketAddr::from(([10, (i / 250) as u8, (i % 250) as u8, 1], 7000));
        let ask = room_ask(&mut joiner, t, addr(6001));
        answered += usize::from(
            member
                .answer(t, from, room(), &ask, &mut Vec::new())
                .is_ok(),
        );
    }
    assert_eq!(answered, MAX_ASKS_SEEN + 10);
    assert!(member.asks_seen.len() <= MAX_ASKS_SEEN);
}

mod invited;

/// A joiner's own join key opened its contact's answers: the contact is not joining.
/// Once the joiner is in the room it seals handshakes there under their pair key (a new
/// process at the contact's address, a restart, does not hold the joiner's key), and a
/// late answer under its key does not bring the join key back.
#[test]
fn a_joiner_in_the_room_no_longer_takes_its_contact_for_a_joiner() {
    let t0 = Instant::now();
    let mut member = leader(1, &[], t0);
    let mut joiner = admission(5, t0);
    let (at_member, at_joiner) = (addr(6001), addr(6005));
    let ask = room_ask(&mut joiner, t0, at_member);
    let mut sends = Vec::new();
    member
        .answer(t0, at_joiner, room(), &ask, &mut sends)
        .expect("answered");
    let Some(Send::Wire(_, grant)) = sends.first() else {
        panic!("{sends:?}")
    };
    assert!(joiner.take_grant(t0, at_member, grant));
    let key = joiner.join_keys_for(t0, at_member)[0];
    joiner.used(t0, at_member, &key);
    assert!(
        joiner.joins_at(t0, at_member),
        "while joining, its key seals there"
    );
    joiner.set_table(false, vec![at_member], []);
    assert!(!joiner.joins_at(t0, at_member), "in the room: the pair key");
    joiner.used(t0, at_member, &key);
    assert!(
        !joiner.joins_at(t0, at_member),
        "a late answer changes nothing"
    );
    // The member still takes the joiner's handshakes under the joiner's key.
    member.used(t0, at_joiner, &key);
    assert!(member.joins_at(t0, at_joiner));
}
