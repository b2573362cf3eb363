//! What `list` and the join report show (`views.rs`, `life/join.rs`).

use super::*;

/// Joining counts the online members only, and `list` shows them first, each part by
/// name.
#[test]
fn join_counts_online_members_and_list_sorts_them_first() {
    let t0 = base_time();
    let offline = |id, name, port| Member {
        presence: Presence::Offline,
        ..member(NodeId(id), name, port)
    };
    let more = vec![
        offline(400, "zed", 4),
        member(NodeId(500), "dave", 5),
        offline(600, "aaron", 6),
    ];
    let (mut n, out) = follower_with(t0, more);
    assert!(
        matches!(out.events[0], Event::Joined { members: 4, .. }),
        "{:?}",
        out.events[0]
    );
    n.handle_command(t0, WallMillis(0), Command::List);
    let Some(Event::Members(list)) = drain(&mut n).events.pop() else {
        panic!("no list")
    };
    let shown: Vec<(&str, bool)> = list.iter().map(|m| (m.name.as_str(), m.online)).collect();
    assert_eq!(
        shown,
        [
            ("alice", true),
            ("bob", true),
            ("carol", true),
            ("dave", true),
            ("aaron", false),
            ("zed", false)
        ]
    );
}

/// `status` says how many voters this node reaches, and that the room waits once fewer
/// than a majority are: a member cut off with a minority knows it, not only a leader.
#[test]
fn status_says_when_fewer_than_a_majority_are_reachable() {
    let t0 = base_time();
    let mut n = joining_bob(t0);
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    w.voting = vec![0b111];
    n.handle_datagram(t0, addr(1), &data(LEADER, 1, Message::Welcome(w)));
    drain(&mut n);
    let health = |n: &Node| {
        let s = n.status_view();
        (s.voters.len(), s.reachable, s.waiting_for_majority)
    };
    assert_eq!(health(&n), (3, 3, false));
    let offline = |id, name, port| Member {
        presence: Presence::Offline,
        stamp: Stamp {
            lamport: Lamport(5),
            by: id,
        },
        ..member(id, name, port)
    };
    // Carol leaves: two of three still make a majority.
    let carol = Message::Members(vec![offline(CAROL, "carol", 3)]);
    n.handle_datagram(t0, addr(3), &data(CAROL, 1, carol));
    drain(&mut n);
    assert_eq!(health(&n), (3, 2, false));
    // Alice goes too: bob alone is no majority.
    let alice = Message::Members(vec![offline(LEADER, "alice", 1)]);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, alice));
    drain(&mut n);
    assert_eq!(health(&n), (3, 1, true));
}
