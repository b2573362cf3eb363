//! Admission's own tests: asks and grants, join keys, the members' key.

use super::*;
use ed25519_dalek::SigningKey;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Admission for node `n` (identity secret `[n; 32]`), outside the room.
fn admission(n: u8, now: Instant) -> Admission {
    let secret = [n; 32];
    let statics = super::super::StaticKeys::from_identity(&secret);
    let public = SigningKey::from_bytes(&secret).verifying_key().to_bytes();
    Admission::new(NodeId(u64::from(n)), public, statics.private, now)
}

/// A member `n` in the room, leading it with `others` online, holding a members' key.
fn leader(n: u8, others: &[(u8, u16)], now: Instant) -> Admission {
    let mut a = admission(n, now);
    let online = others
        .iter()
        .map(|(m, port)| (NodeId(u64::from(*m)), addr(*port)))
        .collect();
    a.set_table(now, false, online);
    a.set_leader(now, Some((NodeId(u64::from(n)), 3)));
    let mut sends = Vec::new();
    a.handle_timeout(now + ROTATE_AFTER, &mut sends);
    assert!(a.members_key().is_some(), "the leader made a members' key");
    a
}

const ROOM: [u8; 32] = [7; 32];

#[test]
fn an_ask_gets_a_join_key_that_only_the_asking_identity_opens() {
    let t0 = Instant::now();
    let mut member = leader(1, &[(2, 6002)], t0);
    let mut joiner = admission(5, t0);
    let (at_member, at_joiner) = (addr(6001), addr(6005));
    assert!(joiner.should_ask(t0, at_member));
    assert!(!joiner.should_ask(t0, at_member), "not again at once");
    let ask = joiner.ask(&ROOM);
    assert_eq!(ask.len(), ASK_LEN);
    let mut sends = Vec::new();
    member
        .answer(t0, at_joiner, &ROOM, &ask, &mut sends)
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
    // With a fresh join key, it does not ask the leader it turns to next; it asks again
    // only if its join stalls.
    assert!(!joiner.should_ask(t0, addr(6009)));
    assert!(joiner.should_ask(t0 + ASK_AGAIN, addr(6009)));
    let key = joiner
        .join_key_for(t0, at_member)
        .expect("its own join key");
    assert_eq!(member.join_key_for(t0, at_joiner), Some(key));
    assert_eq!(member.join_keys_from(t0, at_joiner), vec![key]);
    // Unasked, a grant is not taken.
    let mut other = admission(8, t0);
    assert!(!other.take_grant(t0, at_member, grant));
    // The join key is forgotten when unused for its life.
    let later = t0 + JOIN_KEY_LIFE;
    assert_eq!(member.join_key_for(later, at_joiner), None);
    assert_eq!(joiner.join_key_for(later, at_member), None);
}

#[test]
fn asks_are_answered_only_by_members_holding_the_same_room_key() {
    let t0 = Instant::now();
    let joiner = admission(5, t0);
    let mut member = leader(1, &[], t0);
    let mut sends = Vec::new();
    assert_eq!(
        member.answer(t0, addr(6005), &[8; 32], &joiner.ask(&ROOM), &mut sends),
        Err("an ask that does not open with the room key")
    );
    let mut short = joiner.ask(&ROOM);
    short.pop();
    assert_eq!(
        member.answer(t0, addr(6005), &ROOM, &short, &mut sends),
        Err("a malformed ask")
    );
    // A node outside the room answers nothing.
    let mut outsider = admission(3, t0);
    assert_eq!(
        outsider.answer(t0, addr(6005), &ROOM, &joiner.ask(&ROOM), &mut sends),
        Ok(())
    );
    assert!(sends.is_empty());
    // At most GRANTS_PER_SECOND a second.
    for _ in 0..GRANTS_PER_SECOND {
        member
            .answer(t0, addr(6005), &ROOM, &joiner.ask(&ROOM), &mut sends)
            .expect("within the rate");
    }
    assert_eq!(
        member.answer(t0, addr(6005), &ROOM, &joiner.ask(&ROOM), &mut sends),
        Err("an ask over the grants' rate")
    );
    assert_eq!(member.counts.granted, u64::from(GRANTS_PER_SECOND));
    // Join keys kept per address are bounded.
    assert_eq!(
        member.join_keys_from(t0, addr(6005)).len(),
        JOIN_KEYS_PER_ADDR
    );
}

/// The leader makes a new members' key whenever the online members change, hands it to
/// each over its session until acked; a member takes it only from its leader, and only
/// a newer one.
#[test]
fn the_leader_renews_the_members_key_on_every_change() {
    let t0 = Instant::now();
    let mut lead = leader(1, &[(2, 6002), (3, 6003)], t0);
    let (e1, k1) = lead.members_key().unwrap();
    assert_eq!(e1, KeyEpoch { term: 3, n: 1 });
    // Sent at once (by `leader`), and again until acked.
    let mut sends = Vec::new();
    lead.handle_timeout(t0 + ROTATE_AFTER + KEY_AGAIN, &mut sends);
    assert_eq!(sends.len(), 2, "one for each online member: {sends:?}");
    let Send::Session(_, frame) = &sends[0] else {
        panic!()
    };
    let mut m2 = admission(2, t0);
    m2.set_table(t0, false, vec![(NodeId(1), addr(6001))]);
    // Not from its leader: ignored, not acked.
    let mut answers = Vec::new();
    assert!(!m2.on_control(t0, NodeId(1), addr(6001), frame, &mut answers));
    assert!(answers.is_empty() && m2.members_key().is_none());
    m2.set_leader(t0, Some((NodeId(1), 3)));
    assert!(!m2.on_control(t0, NodeId(3), addr(6003), frame, &mut answers));
    assert!(m2.on_control(t0, NodeId(1), addr(6001), frame, &mut answers));
    assert_eq!(m2.members_key(), Some((e1, k1)));
    let [Send::Session(to, ack)] = &answers[..] else {
        panic!("{answers:?}")
    };
    assert_eq!(*to, addr(6001));
    // Acked by 2: sent again only to 3.
    assert!(lead.on_control(t0, NodeId(2), addr(6002), ack, &mut Vec::new()));
    let mut again = Vec::new();
    lead.handle_timeout(t0 + ROTATE_AFTER + 2 * KEY_AGAIN, &mut again);
    assert!(
        matches!(&again[..], [Send::Session(a, _)] if *a == addr(6003)),
        "{again:?}"
    );
    // 3 leaves: a new key, newer, that 2 takes; the old one stays for opening.
    let t1 = t0 + Duration::from_secs(1);
    lead.set_table(t1, false, vec![(NodeId(2), addr(6002))]);
    let mut sends = Vec::new();
    lead.handle_timeout(t1 + ROTATE_AFTER, &mut sends);
    let (e2, k2) = lead.members_key().unwrap();
    assert!(e2 > e1 && k2 != k1);
    let [Send::Session(_, frame2)] = &sends[..] else {
        panic!("{sends:?}")
    };
    assert!(m2.on_control(t1, NodeId(1), addr(6001), frame2, &mut Vec::new()));
    assert_eq!(m2.members_key(), Some((e2, k2)));
    assert_eq!(m2.members_keys().count(), 2);
    // The older key again (a late resend): kept, not taken as the newest.
    assert!(m2.on_control(t1, NodeId(1), addr(6001), frame, &mut Vec::new()));
    assert_eq!(m2.members_key(), Some((e2, k2)));
    // Nothing changes: no new key.
    lead.set_table(t1, false, vec![(NodeId(2), addr(6002))]);
    assert!(lead.poll_timeout().is_none_or(|t| t > t1 + ROTATE_AFTER));
    // A new leader (a higher term) makes one above every earlier key.
    let mut m2 = m2;
    m2.set_leader(t1, Some((NodeId(2), 4)));
    let mut sends = Vec::new();
    m2.handle_timeout(t1 + ROTATE_AFTER, &mut sends);
    assert_eq!(m2.members_key().unwrap().0, KeyEpoch { term: 4, n: 1 });
    // Old keys are kept up to KEPT_KEYS.
    let mut lead = lead;
    for i in 0..2 * KEPT_KEYS as u64 {
        let t = t1 + Duration::from_secs(2 + i);
        let online = if i % 2 == 0 {
            vec![]
        } else {
            vec![(NodeId(2), addr(6002))]
        };
        lead.set_table(t, false, online);
        lead.handle_timeout(t + ROTATE_AFTER, &mut Vec::new());
    }
    assert_eq!(lead.members_keys().count(), KEPT_KEYS);
}

#[test]
fn join_keys_handed_on_are_bounded_and_malformed_control_is_refused() {
    let t0 = Instant::now();
    let mut m = leader(1, &[], t0);
    let mut hand = vec![JOIN_KEY];
    hand.extend_from_slice(&addr_bytes(addr(7000)));
    hand.extend_from_slice(&[4; 32]);
    assert!(m.on_control(t0, NodeId(2), addr(6002), &hand, &mut Vec::new()));
    assert_eq!(m.join_keys_from(t0, addr(7000)), vec![[4; 32]]);
    assert!(!m.on_control(t0, NodeId(2), addr(6002), &hand[..10], &mut Vec::new()));
    assert!(!m.on_control(t0, NodeId(2), addr(6002), &[KEY, 1, 2], &mut Vec::new()));
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
        assert!(m.on_control(t0, NodeId(2), addr(6002), &hand, &mut Vec::new()));
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
        .answer(t0, addr(6005), &ROOM, &joiner.ask(&ROOM), &mut sends)
        .unwrap();
    let Send::Wire(_, grant) = &sends[0] else {
        panic!()
    };
    assert!(joiner.take_grant(t0, addr(6001), grant));
    joiner.set_table(t0, false, vec![(NodeId(1), addr(6001))]);
    joiner.set_table(t0, true, vec![]);
    assert_eq!(joiner.join_key_for(t0, addr(6001)), None);
    assert!(joiner.should_ask(t0, addr(6001)));
    for i in 0..MAX_WAITING + 5 {
        joiner.wait(addr(6001), vec![i as u8]);
    }
    let waiting = joiner.take_waiting();
    assert_eq!(waiting.len(), MAX_WAITING);
    assert_eq!(waiting.front().unwrap().1, vec![5u8]);
}
