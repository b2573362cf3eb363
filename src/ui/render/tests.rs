//! Rendering tests: every event's lines, styled and plain.

use super::*;
use crate::ids::{Lamport, NodeId, OriginSeq, Seq};

fn entry(name: &str, text: &str) -> ChatEntry {
    ChatEntry {
        seq: Seq(12),
        origin: NodeId(1),
        name: name.into(),
        origin_seq: OriginSeq(1),
        lamport: Lamport(42),
        sent_at: WallMillis(1_700_000_000_000),
        text: text.into(),
        term: 0,
        proof: Default::default(),
    }
}

#[test]
fn receipts_and_members() {
    assert_eq!(
        render(&Event::Receipt { to: "bob".into() }),
        vec!["[Message received by bob.]"]
    );
    let line = &render(&Event::Members(vec![MemberView {
        name: "alice".into(),
        addr: "127.0.0.1:5001".parse().unwrap(),
        online: true,
        leader: true,
        me: false,
    }]))[0];
    assert!(line.contains("alice") && line.contains("ONLINE") && line.contains("leader"));
}

/// Room lines: local time, sequence number, Lamport time, name, text; unicode intact.
#[test]
fn a_saved_message_says_why_it_was_kept() {
    let saved = |behind| Event::Saved {
        to: "bob".into(),
        leader: "alice".into(),
        behind,
    };
    assert_eq!(
        render(&saved(false)),
        vec!["[bob is offline: message saved by alice.]"]
    );
    assert_eq!(
        render(&saved(true)),
        vec!["[Message to bob saved by alice: it goes after your earlier ones to bob.]"]
    );
}

#[test]
fn a_room_carried_on_after_a_restart_is_not_called_new() {
    let joined = |members| Event::Joined {
        leader: "ann".into(),
        is_leader: true,
        members,
    };
    assert_eq!(
        render(&joined(1)),
        ["created a new room; you (ann) are the leader"]
    );
    assert_eq!(
        render(&joined(3)),
        ["you (ann) lead the room again: 3 members known, the others offline"]
    );
}

/// A restarted node alone, carrying its saved room on, is not told it created one;
/// `status` says whether the room is keyed.
#[test]
fn the_narrator_remembers_a_room_carried_on_and_the_key() {
    let joined = Event::Joined {
        leader: "ann".into(),
        is_leader: true,
        members: 1,
    };
    let notice = Event::Notice(
        "no member of the saved room answered; the room goes on here, with you as leader".into(),
    );
    let mut n = Narrator::new(false);
    let st = Style::plain();
    assert_eq!(
        n.lines(&joined, &st),
        ["created a new room; you (ann) are the leader"]
    );
    assert_eq!(n.lines(&notice, &st).len(), 1);
    assert_eq!(
        n.lines(&joined, &st),
        ["you (ann) lead the room again; no other member is known"]
    );
    // Only the join right after the notice.
    assert_eq!(
        n.lines(&joined, &st),
        ["created a new room; you (ann) are the leader"]
    );
    let status = Event::Status(Box::new(StatusView {
        ring: vec![],
        name: "ann".into(),
        id: crate::ids::NodeId(1),
        addr: "127.0.0.1:1".parse().unwrap(),
        prev: None,
        next: None,
        leader: None,
        suspected: vec![],
        lamport: Lamport(1),
        stats: Default::default(),
        in_flight: 0,
        unconfirmed: 0,
        history: 0,
        voters: vec!["ann".into()],
        reachable: 1,
        waiting_for_majority: false,
    }));
    let lines = n.lines(&status, &st);
    let open = lines.last().unwrap();
    assert!(
        open.starts_with("key:     none: an OPEN room (--insecure)"),
        "{open}"
    );
    let lines = Narrator::new(true).lines(&status, &st);
    assert!(lines.last().unwrap().starts_with("key:     keyed"));
    let json = Narrator::new(true).json(&status);
    assert_eq!(json.len(), 1);
    let json: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(json["room_key"], true);
    assert_eq!(json["insecure"], false);
    assert_eq!(json["event"], "status");
    let json: serde_json::Value =
        serde_json::from_str(&Narrator::new(false).json(&status)[0]).unwrap();
    assert_eq!(
        (&json["room_key"], &json["insecure"]),
        (&false.into(), &true.into())
    );
}

/// A keyed room's creator is shown its invitation below `created a new room` (in JSON
/// as an `invitation` event), and only then: not when it carries a saved room on, nor
/// when it joins.
#[test]
fn the_invitation_comes_with_the_new_room() {
    let token = "ringchat1:127.0.0.1:5001/00";
    let created = Event::Joined {
        leader: "ann".into(),
        is_leader: true,
        members: 1,
    };
    let joined = Event::Joined {
        leader: "ann".into(),
        is_leader: false,
        members: 2,
    };
    let carried = Event::Notice(format!("{CARRIED_ON}; the room goes on here"));
    let st = Style::plain();
    let mut n = Narrator::new(true).inviting(Some(token.into()));
    assert_eq!(
        n.lines(&created, &st),
        [
            "created a new room; you (ann) are the leader",
            INVITATION_INTRO,
            token
        ]
    );
    assert_eq!(n.lines(&joined, &st).len(), 1);
    n.lines(&carried, &st);
    assert_eq!(n.lines(&created, &st).len(), 1, "carried on: no invitation");
    let json = n.json(&created);
    assert_eq!(json.len(), 2, "{json:?}");
    let second: serde_json::Value = serde_json::from_str(&json[1]).unwrap();
    assert_eq!(second["event"], "invitation");
    assert_eq!(second["invitation"], token);
    n.json(&carried);
    assert_eq!(n.json(&created).len(), 1, "carried on: no invitation");
    let mut open = Narrator::new(false);
    assert_eq!(open.lines(&created, &st).len(), 1, "an open room has none");
    assert_eq!(
        invite_lines(None, "127.0.0.1:5001".parse().unwrap()),
        [
            "this room is open (--insecure), so there is no invitation: a friend joins with --join 127.0.0.1:5001 --insecure"
        ]
    );
    assert_eq!(
        invite_lines(Some(token), "127.0.0.1:5001".parse().unwrap()),
        [INVITATION_INTRO, token]
    );
}

/// A join nobody answered says what to do: a node without a key is told that the
/// room may be keyed and how to get an invitation; one with a key, that the room
/// may have another.
#[test]
fn a_join_without_an_answer_says_how_to_get_in() {
    let failed = Event::JoinFailed(JoinError::Unreachable("127.0.0.1:5001".parse().unwrap()));
    let st = Style::plain();
    let keyless = Narrator::new(false).lines(&failed, &st).join("\n");
    for needle in [
        "no answer from 127.0.0.1:5001",
        "is keyed",
        "invite",
        "--join <invitation>",
    ] {
        assert!(keyless.contains(needle), "{needle:?} in {keyless}");
    }
    let keyed = Narrator::new(true).lines(&failed, &st).join("\n");
    assert!(keyed.contains("another key"), "{keyed}");
    let json: serde_json::Value =
        serde_json::from_str(&Narrator::new(false).json(&failed)[0]).unwrap();
    assert_eq!(json["event"], "join_failed");
    let error = json["error"].as_str().unwrap();
    assert!(
        error.starts_with("no answer from 127.0.0.1:5001") && error.contains("keyed"),
        "{error}"
    );
}

#[test]
fn room_lines_carry_time_and_lamport() {
    let e = Event::Room {
        entry: entry("zoë", "héllo ✓ 你好"),
        mine: false,
        history: false,
    };
    let line = &render(&e)[0];
    let time = local_time(WallMillis(1_700_000_000_000));
    assert_eq!(line, &format!("[{time} #12 L42] zoë: héllo ✓ 你好"));
    assert_eq!(time.len(), 8);
}

/// History marks your own lines, and tells an empty search from an empty room.
#[test]
fn history_marks_own_lines_and_empty_searches() {
    let history = |entries, searched| Event::History {
        entries,
        own: NodeId(1),
        searched,
    };
    let mut other = entry("bob", "hi");
    other.origin = NodeId(2);
    let lines = render(&history(vec![entry("ann", "yo"), other], false));
    assert!(lines[0].ends_with("history] ann (you): yo"), "{lines:?}");
    assert!(lines[1].ends_with("history] bob: hi"), "{lines:?}");
    assert_eq!(
        render(&history(vec![], true)),
        ["(no matching room messages)"]
    );
    assert_eq!(render(&history(vec![], false)), ["(no room messages yet)"]);
}

#[test]
fn private_lines_are_marked() {
    let e = Event::Direct {
        from: "bob".into(),
        to: vec!["alice".into(), "carol".into()],
        lamport: Lamport(5),
        sent_at: WallMillis(0),
        text: "psst".into(),
        offline: true,
        mine: false,
        history: false,
    };
    let line = &render(&e)[0];
    assert!(line.contains("private to alice,carol, kept while you were offline, L5]"));
    assert!(line.ends_with("bob: psst"));
}

/// A private message shown again after a restart says so, as a room message does.
#[test]
fn private_lines_shown_again_are_marked_history() {
    let e = Event::Direct {
        from: "bob".into(),
        to: vec!["alice".into()],
        lamport: Lamport(5),
        sent_at: WallMillis(0),
        text: "psst".into(),
        offline: false,
        mine: false,
        history: true,
    };
    let time = local_time(WallMillis(0));
    assert_eq!(
        render(&e),
        [format!("[{time} private L5 history] bob: psst")]
    );
}

/// Your own private message is shown as sent, with whom it went to.
#[test]
fn own_private_lines_say_to_whom() {
    let e = Event::Direct {
        from: "alice".into(),
        to: vec!["bob".into()],
        lamport: Lamport(47),
        sent_at: WallMillis(0),
        text: "psst".into(),
        offline: false,
        mine: true,
        history: false,
    };
    let time = local_time(WallMillis(0));
    assert_eq!(
        render(&e),
        [format!("[{time} private to bob L47] alice (you): psst")]
    );
}

#[test]
fn colour_only_when_asked() {
    let e = Event::Error(crate::proto::CommandError::Empty);
    assert_eq!(render(&e), vec!["error: empty message"]);
    let coloured = render_styled(&e, &Style { color: true });
    assert!(coloured[0].starts_with("\x1b[31m") && coloured[0].ends_with("\x1b[0m"));
    assert!(!Style::for_output(false).color);
}

#[test]
fn the_ring_closes() {
    let seat = |name: &str, leader, me, suspected| RingSeat {
        name: name.into(),
        leader,
        me,
        suspected,
    };
    let ring = vec![
        seat("alice", true, true, false),
        seat("bob", false, false, false),
        seat("carol", false, false, true),
    ];
    assert_eq!(
        ring_line(&ring),
        "alice (you) [leader] -> bob -> carol (suspected) -> alice"
    );
    assert_eq!(ring_line(&ring[..1]), "alice (you) [leader]");
}
