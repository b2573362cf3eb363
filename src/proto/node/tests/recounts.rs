//! Waits on a count (answers, holders, peers) that an event changes: the event looks
//! again at once, not the next timer; and one user counts once however many processes.

use super::*;

/// `id`'s own word that it is `presence`, at Lamport time `lamport`.
pub(super) fn says(id: NodeId, name: &str, port: u16, presence: Presence, lamport: u64) -> Vec<u8> {
    let mut m = member(id, name, port);
    m.presence = presence;
    m.stamp = Stamp {
        lamport: Lamport(lamport),
        by: id,
    };
    encode(&Envelope {
        from: id,
        lamport: Lamport(lamport),
        packets: vec![Packet::Data {
            id: MsgId(900 + lamport),
            msg: Message::Members(vec![m]),
        }],
    })
    .unwrap()
}

/// `id` at `port` says it is `presence`, on its own word, at Lamport time `lamport`.
fn member_says(
    n: &mut Node,
    t: Instant,
    (id, name, port): (NodeId, &str, u16),
    presence: Presence,
    lamport: u64,
) {
    n.handle_datagram(t, addr(port), &says(id, name, port, presence, lamport));
}

/// A new leader's take-over counts the answers of members online: an answer counts again
/// once its member is back online, and the take-over ends at once if that makes a
/// majority. Bob takes over from alice (voters alice, bob, carol). Carol answers, is held
/// offline a moment, and comes back; alice meanwhile is gone. Bob and carol are a
/// majority that answered, but nothing looks again until the recovery timer.
#[test]
fn an_answer_counts_again_when_its_member_is_back_online() {
    let t0 = base_time();
    let mut n = super::takeover::bob_taking_over(t0);
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL, 2, super::takeover::answer_to_bob(0, 0)),
    );
    drain(&mut n);
    assert!(n.room.is_recovering(), "alice has not answered yet");
    member_says(&mut n, t0, (CAROL, "carol", 3), Presence::Offline, 1000);
    member_says(&mut n, t0, (LEADER, "alice", 1), Presence::Offline, 1000);
    drain(&mut n);
    assert!(n.room.is_recovering(), "only bob's answer counts now");
    member_says(&mut n, t0, (CAROL, "carol", 3), Presence::Online, 1001);
    drain(&mut n);
    assert!(n.members().is_online(CAROL));
    assert!(
        !n.room.is_recovering(),
        "bob and carol answered: a majority, taking over at once"
    );
}

/// What a member gone said it sent is no longer awaited: bob takes over (voters alice,
/// bob, carol); carol says she sent one message, which never comes (she goes); alice
/// answers. Bob and alice are a majority, everyone online answered, and carol's message
/// cannot come, but the take-over waits for it until the recovery timer.
#[test]
fn what_a_member_gone_said_it_sent_is_not_awaited() {
    let t0 = base_time();
    let mut n = super::takeover::bob_taking_over(t0);
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL, 2, super::takeover::answer_to_bob(1, 1)),
    );
    member_says(&mut n, t0, (CAROL, "carol", 3), Presence::Offline, 1000);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, super::takeover::answer_to_bob(1, 0)),
    );
    drain(&mut n);
    assert!(
        !n.room.is_recovering(),
        "bob and alice answered; carol's message will not come"
    );
}

/// A leaving voter waits to be taken out of the configuration only while someone is
/// there to take it out: once its last peer is gone, it goes at once. Bob (a voter with
/// alice and carol) leaves; carol and alice go before the leader takes him out.
#[test]
fn a_leaving_voter_left_alone_goes_at_once() {
    let t0 = base_time();
    let (mut n, _) = follower_welcomed(t0, Vec::new(), true);
    assert!(n.room.voters().contains("bob"));
    n.handle_command(t0, WallMillis(1), Command::Leave);
    drain(&mut n);
    assert_eq!(*n.life.phase(), Phase::Leaving { notified: false });
    member_says(&mut n, t0, (CAROL, "carol", 3), Presence::Offline, 1000);
    member_says(&mut n, t0, (LEADER, "alice", 1), Presence::Offline, 1000);
    let out = drain(&mut n);
    assert_eq!(n.members().online_peers().count(), 0);
    assert!(
        out.events.iter().any(|e| matches!(e, Event::Left)),
        "nobody is left to wait for: {:?}",
        n.life.phase()
    );
}

/// One user's copy counts once: bob's new process (restarted elsewhere while the old one
/// was paused and held offline) and his old one, back and refuting, are both online, and
/// both ack. Alice, with bob twice, is not three of five voters.
#[test]
fn two_processes_of_one_user_count_once() {
    let t0 = base_time();
    let mut n = super::commit::leader_of_five(t0);
    let all = [(BOB, 2), (CAROL, 3), (NodeId(400), 4), (NodeId(500), 5)];
    n.handle_datagram(t0, addr(2), &says(BOB, "bob", 2, Presence::Offline, 1000));
    let out = drain(&mut n);
    ack_proposals(&mut n, t0, &out, &all[1..]);
    let bob2 = NodeId(201);
    let key = identity(BOB.0 as u8);
    let out = join_as(&mut n, t0, (bob2, 6, "bob"), &key, &key);
    assert!(n.members().is_online(bob2));
    let with_bob2 = [(bob2, 6), (CAROL, 3), (NodeId(400), 4), (NodeId(500), 5)];
    ack_proposals(&mut n, t0, &out, &with_bob2);
    if let Some(due) = n.transport.held_until() {
        n.handle_timeout(due);
        let out = drain(&mut n);
        ack_proposals(&mut n, t0, &out, &with_bob2);
    }
    assert!(n.room.voters().contains("bob"));
    // The old process wakes and refutes the verdict.
    n.handle_datagram(t0, addr(2), &says(BOB, "bob", 2, Presence::Online, 2000));
    drain(&mut n);
    assert!(n.members().is_online(BOB) && n.members().is_online(bob2));

    n.handle_command(t0, WallMillis(1), Command::SendAll { text: "hi".into() });
    let mut out = drain(&mut n);
    if let Some(due) = n.transport.held_until() {
        n.handle_timeout(due);
        out.sent.extend(drain(&mut n).sent);
    }
    let proposed = |m: &Message| matches!(m, Message::Sequenced(e) if e.text == "hi");
    let old = out.ids_to(addr(2), proposed);
    let new = out.ids_to(addr(6), proposed);
    assert_eq!((old.len(), new.len()), (1, 1));
    n.handle_datagram(t0, addr(2), &ack_of(n.id(), BOB, &old));
    n.handle_datagram(t0, addr(6), &ack_of(n.id(), bob2, &new));
    let out = drain(&mut n);
    assert!(
        room_seqs(&out).is_empty(),
        "only alice and bob hold it: two of five voters"
    );
}
