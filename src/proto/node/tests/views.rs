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
