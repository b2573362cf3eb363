//! The join exchange, the one thing that travels outside sessions: between nodes outside
//! the room, under members' pair keys, to a new identity at an old address, and for an
//! invited member; handshakes only with members.

use super::*;

/// Two nodes restarting at once are both outside the room: each answers the other's ask,
/// for the join exchange between the two of them (how one tells the other it is
/// restarting too).
#[test]
fn two_nodes_outside_the_room_exchange_the_join_exchange() {
    let t0 = Instant::now();
    let key = Some([3u8; KEY_BYTES]);
    let (x, y) = (node(1, key), node(2, key));
    x.guard.set_table(true, &[online(&x), online(&y)]);
    y.guard.set_table(true, &[online(&x), online(&y)]);
    x.guard.send(t0, y.addr, &join(x.id));
    y.guard.send(t0, x.addr, &join(y.id));
    let (got, _) = run(t0, &[&x, &y]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&(1, join(x.id))) && got.contains(&(0, join(y.id))));
}

/// Handshakes between members go under their pair key: one that names a node that holds
/// no member's entry here (one that left, say) is refused before any key agreement.
#[test]
fn a_handshake_from_no_member_is_refused_before_any_key_agreement() {
    let t0 = Instant::now();
    let key = Some([3u8; KEY_BYTES]);
    let (alice, bob, dave) = (node(1, key), node(2, key), node(4, key));
    room(&[&alice, &bob, &dave]);
    // Alice and bob drop dave (he left by his own word).
    let table = vec![
        online(&alice),
        online(&bob),
        entry(&dave, Presence::Offline, dave.id),
    ];
    alice.guard.set_table(false, &table);
    bob.guard.set_table(false, &table);
    dave.guard.send(t0, bob.addr, &dm(dave.id, "let me back"));
    let (_, init) = dave.guard.poll_transmit().unwrap();
    assert_eq!(init[0], crate::guard::SEALED);
    assert_eq!(
        bob.guard.receive(t0, dave.addr, &init),
        Err(Refused::NotAMember(dave.id))
    );
    // Alice's to bob opens at bob alone: carol, a member too, cannot open it.
    let carol = node(3, key);
    room(&[&alice, &bob, &carol]);
    alice.guard.send(t0, bob.addr, &dm(alice.id, "hi"));
    let (_, init) = alice.guard.poll_transmit().unwrap();
    assert_eq!(
        carol.guard.receive(t0, alice.addr, &init),
        Err(Refused::Unauthentic)
    );
    assert_eq!(bob.guard.receive(t0, alice.addr, &init), Ok(None));
}

/// Two members exchange the join exchange outside their session (one healing after a
/// partition asks the other to take it back): sealed with their pair key, which only they
/// hold, and taken as the join exchange.
#[test]
fn members_send_each_other_the_join_exchange_under_their_pair_key() {
    let t0 = Instant::now();
    let key = Some([3u8; KEY_BYTES]);
    let (alice, bob, carol) = (node(1, key), node(2, key), node(3, key));
    room(&[&alice, &bob, &carol]);
    // Alice holds bob offline (cut out): what she sends him goes outside the session.
    alice.guard.set_table(
        false,
        &[
            online(&alice),
            entry(&bob, Presence::Offline, alice.id),
            online(&carol),
        ],
    );
    alice.guard.send(t0, bob.addr, &join(alice.id));
    let (to, bytes) = alice.guard.poll_transmit().unwrap();
    assert_eq!((to, bytes[0]), (bob.addr, crate::guard::SEALED));
    assert_eq!(
        carol.guard.receive(t0, alice.addr, &bytes),
        Err(Refused::Unauthentic),
        "carol, a member too, cannot open it"
    );
    assert!(matches!(
        bob.guard.receive(t0, alice.addr, &bytes),
        Ok(Some(Opened {
            in_session: false,
            ..
        }))
    ));
    assert!(matches!(
        bob.guard.receive(t0, alice.addr, &bytes),
        Err(Refused::Replayed(..))
    ));
}

/// A new process with another identity at a member's old address asks a member for a
/// join key; the leader, which never heard from it and still holds the old member's
/// entry there, sends it the join exchange under the pair key of that entry and under the
/// join key it was handed: the newcomer opens the latter.
#[test]
fn a_new_identity_at_a_members_old_address_gets_the_join_exchange() {
    let t0 = Instant::now();
    let key = Some([3u8; KEY_BYTES]);
    let (leader, contact, old) = (node(1, key), node(2, key), node(3, key));
    let table = vec![
        online(&leader),
        online(&contact),
        entry(&old, Presence::Offline, leader.id),
    ];
    leader.guard.set_table(false, &table);
    contact.guard.set_table(false, &table);
    // The leader and the contact hold a session (the join key goes over it).
    contact
        .guard
        .send(t0, leader.addr, &dm(contact.id, "hello"));
    assert_eq!(run(t0, &[&leader, &contact]).0.len(), 1);
    let mut newcomer = node(9, key);
    newcomer.addr = old.addr;
    newcomer.guard.set_table(true, &[]);
    newcomer.guard.send(t0, contact.addr, &join(newcomer.id));
    let (got, _) = run(t0, &[&leader, &contact, &newcomer]);
    assert_eq!(
        got,
        vec![(1, join(newcomer.id))],
        "the contact took the join"
    );
    // The leader answers (a challenge, here any join exchange).
    let answer = join(leader.id);
    leader.guard.send(t0, newcomer.addr, &answer);
    let (got, wire) = run(t0, &[&leader, &newcomer]);
    let firsts: Vec<u8> = wire.iter().map(|(_, b)| b[0]).collect();
    assert_eq!(firsts, [crate::guard::SEALED, admission::JOIN_SEALED]);
    assert_eq!(
        got,
        vec![(1, answer)],
        "the newcomer opened the join key's copy"
    );
}

/// A new process of a member (a restart, a new id, the same identity and address) let in
/// by a leader whose word never reached bob: bob's table holds only the old process,
/// offline. Its join exchange under their pair key opens at bob (how it shows bob the
/// leader's voucher); its handshakes do not, until bob's table lists it.
#[test]
fn a_members_new_process_unknown_here_gets_the_join_exchange_through_not_a_session() {
    let t0 = Instant::now();
    let key = Some([3u8; KEY_BYTES]);
    let (alice, bob, old) = (node(1, key), node(2, key), node(3, key));
    bob.guard.set_table(
        false,
        &[
            online(&alice),
            online(&bob),
            entry(&old, Presence::Offline, alice.id),
        ],
    );
    let mut new = node(3, key);
    new.id = NodeId(9_999);
    new.guard = Guard::new(new.id, key, u32::MAX).with_identity(&new.secret);
    // It holds bob offline (he never answered it): what goes to him goes outside.
    new.guard.set_table(
        false,
        &[
            online(&alice),
            entry(&bob, Presence::Offline, new.id),
            online(&new),
        ],
    );
    new.guard.send(t0, bob.addr, &join(new.id));
    let (to, sealed) = new.guard.poll_transmit().expect("sent");
    assert_eq!((to, sealed[0]), (bob.addr, crate::guard::SEALED));
    let opened = bob.guard.receive(t0, new.addr, &sealed).expect("opens");
    assert_eq!(
        opened.map(|o| o.plain.into_owned()),
        Some(join(new.id)),
        "bob takes the join exchange"
    );
    // Another identity at that address, under its own pair key with bob: refused.
    let mut other = node(5, key);
    other.addr = old.addr;
    other.guard.set_table(
        false,
        &[entry(&bob, Presence::Offline, other.id), online(&other)],
    );
    other.guard.send(t0, bob.addr, &join(other.id));
    let (_, forged) = other.guard.poll_transmit().expect("sent");
    assert_eq!(
        bob.guard.receive(t0, other.addr, &forged),
        Err(Refused::Unauthentic)
    );
    // A handshake from the new process: no session until bob lists it.
    new.guard
        .set_table(false, &[online(&alice), online(&bob), online(&new)]);
    new.guard.send(t0, bob.addr, &dm(new.id, "hi"));
    let (_, init) = new.guard.poll_transmit().expect("a handshake");
    assert_eq!(init[0], crate::guard::SEALED);
    assert_eq!(
        bob.guard.receive(t0, new.addr, &init),
        Err(Refused::NotAMember(new.id))
    );
    // Bob's node takes the voucher: his table lists the new process, the old one gone.
    // Sessions follow, both ways.
    bob.guard
        .set_table(false, &[online(&alice), online(&bob), online(&new)]);
    new.guard.set_table(
        false,
        &[
            online(&alice),
            entry(&bob, Presence::Offline, new.id),
            online(&new),
        ],
    );
    let later = t0 + Duration::from_secs(1);
    bob.guard.send(later, new.addr, &dm(bob.id, "to new"));
    new.guard.send(later, bob.addr, &dm(new.id, "to bob"));
    let (got, wire) = run(later, &[&bob, &new]);
    let firsts: Vec<(SocketAddr, u8)> = wire.iter().map(|(a, b)| (*a, b[0])).collect();
    assert!(
        got.contains(&(0, dm(new.id, "to bob"))) && got.contains(&(1, dm(bob.id, "to new"))),
        "{got:?} over {firsts:?}"
    );
}

/// A newcomer with a one-time invitation and no room key: its ask opens at the member
/// that minted it (not with the room key), once for its identity; another identity with
/// the same invitation gets nothing; and after a restart (a new process, a new id, the
/// invitation expired) the member comes back under its pair key with the member it asks.
#[test]
fn an_invited_member_gets_in_once_and_comes_back_without_a_room_key() {
    use crate::guard::Invitations;
    use std::sync::Arc;
    let t0 = Instant::now();
    let minted = Arc::new(Invitations::in_memory());
    let secret = minted.mint().unwrap();
    let with_invitation = |n: u8, id: u64| {
        let s = [n; 32];
        Node {
            id: NodeId(id),
            secret: s,
            addr: SocketAddr::from(([127, 0, 0, 1], 5000 + u16::from(n))),
            guard: Guard::new(NodeId(id), None, u32::MAX)
                .with_invitation(Some(secret))
                .with_identity(&s),
        }
    };
    let mut inviter = node(1, Some([3u8; KEY_BYTES]));
    inviter.guard = Guard::new(inviter.id, Some([3u8; KEY_BYTES]), u32::MAX)
        .with_invitations(Some(minted.clone()))
        .with_identity(&inviter.secret);
    inviter.guard.set_table(false, &[online(&inviter)]);
    let bob = with_invitation(5, 5007);
    assert!(bob.guard.is_keyed(), "an invited node seals everything");
    bob.guard.set_table(true, &[online(&bob)]);
    bob.guard.send(t0, inviter.addr, &join(bob.id));
    let (got, wire) = run(t0, &[&inviter, &bob]);
    assert_eq!(got, vec![(0, join(bob.id))]);
    let firsts: Vec<u8> = wire.iter().map(|(_, b)| b[0]).collect();
    assert_eq!(
        firsts,
        [admission::ASK, admission::GRANT, admission::JOIN_SEALED]
    );
    assert_eq!(minted.counts(), (1, 1));

    // Eve holds a copy of the invitation: her ask is refused, nothing goes back.
    let eve = with_invitation(6, 6007);
    eve.guard.set_table(true, &[online(&eve)]);
    eve.guard.send(t0, inviter.addr, &join(eve.id));
    let (_, ask) = eve.guard.poll_transmit().unwrap();
    assert_eq!(ask[0], admission::ASK);
    assert_eq!(
        inviter.guard.receive(t0, eve.addr, &ask),
        Err(Refused::Unanswered(
            "an ask under an invitation another identity used"
        ))
    );
    assert!(inviter.guard.poll_transmit().is_none());

    // Bob is in the room; later he leaves, and starts again: a new process with a new id,
    // knowing the inviter from his saved table, his invitation long expired. He asks under
    // his pair key with the inviter, which holds his entry (left by his own word).
    let left = entry(&bob, Presence::Offline, bob.id);
    inviter
        .guard
        .set_table(false, &[online(&inviter), left.clone()]);
    minted.expire(&secret);
    let again = with_invitation(5, 5008);
    again
        .guard
        .set_table(true, &[online(&inviter), left.clone()]);
    again.guard.send(t0, inviter.addr, &join(again.id));
    let (got, wire) = run(t0, &[&inviter, &again]);
    assert_eq!(got, vec![(0, join(again.id))]);
    assert_eq!(wire[0].1[0], admission::ASK);
    assert_eq!(wire[0].1[admission::ASK_KIND], admission::KIND_PAIR);

    // Once the inviter no longer holds bob's entry, his pair key opens nothing, and his
    // next ask, under the expired invitation, nothing either.
    inviter.guard.set_table(false, &[online(&inviter)]);
    let third = with_invitation(5, 5009);
    third.guard.set_table(true, &[online(&inviter), left]);
    let mut kinds = Vec::new();
    for i in 0..2u32 {
        let t = t0 + admission::ASK_AGAIN * (i + 1);
        third.guard.send(t, inviter.addr, &join(third.id));
        let (_, ask) = third.guard.poll_transmit().expect("an ask");
        assert_eq!(ask[0], admission::ASK);
        kinds.push(ask[admission::ASK_KIND]);
        assert!(matches!(
            inviter.guard.receive(t, third.addr, &ask),
            Err(Refused::Unanswered(_))
        ));
        assert!(inviter.guard.poll_transmit().is_none(), "no answer");
    }
    assert_eq!(kinds, [admission::KIND_PAIR, admission::KIND_INVITATION]);
}
