//! `--json`: one JSON object per event on a line, for bots and scripts. The shapes are
//! listed in the README ("JSON events"); every object has an `"event"` field naming it.

use crate::proto::{Event, MemberView, StatusView};
use crate::wire::ChatEntry;
use serde::Serialize;
use serde_json::{Value, json};

/// A room message's line, written straight from the entry (it is by far the commonest
/// line; a `Value` would build and sort a map for each). Fields in the order a `Value`
/// writes them, so the line is the same either way.
#[derive(Serialize)]
struct RoomLine<'a> {
    event: &'static str,
    from: &'a str,
    history: bool,
    lamport: u64,
    mine: bool,
    sent_at_ms: u64,
    seq: u64,
    text: &'a str,
}

impl<'a> RoomLine<'a> {
    fn of(e: &'a ChatEntry, mine: bool, history: bool) -> Self {
        RoomLine {
            event: "room",
            from: &e.name,
            history,
            lamport: e.lamport.0,
            mine,
            sent_at_ms: e.sent_at.0,
            seq: e.seq.0,
            text: &e.text,
        }
    }

    fn line(&self) -> String {
        // Plain fields and strings: serde_json cannot fail on them.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn member(m: &MemberView) -> Value {
    json!({
        "name": m.name,
        "addr": m.addr.to_string(),
        "online": m.online,
        "leader": m.leader,
        "me": m.me,
    })
}

/// The JSON line for an event, with `room_key` and `insecure` on a `status` (the program
/// knows whether the room is keyed; the node does not say).
pub fn render_json_keyed(ev: &Event, keyed: bool) -> String {
    if !matches!(ev, Event::Status(_)) {
        return render_json(ev);
    }
    let mut value = value(ev);
    if let (Event::Status(_), Some(object)) = (ev, value.as_object_mut()) {
        object.insert("room_key".into(), Value::Bool(keyed));
        object.insert("insecure".into(), Value::Bool(!keyed));
    }
    value.to_string()
}

/// The JSON line giving the room's invitation.
pub fn invitation(token: &str) -> String {
    json!({"event": "invitation", "invitation": token}).to_string()
}

fn status(s: &StatusView) -> Value {
    json!({
        "event": "status",
        "name": s.name,
        "id": s.id.to_string(),
        "addr": s.addr.to_string(),
        "prev": s.prev,
        "next": s.next,
        "leader": s.leader,
        "suspected": s.suspected,
        "lamport": s.lamport.0,
        "ring": s.ring.iter().map(|r| json!({
            "name": r.name, "leader": r.leader, "me": r.me, "suspected": r.suspected,
        })).collect::<Vec<_>>(),
        "counters": {
            "sent": s.stats.sent,
            "retransmitted": s.stats.retransmitted,
            "received": s.stats.received,
            "dropped": s.stats.dropped,
            "refused": s.stats.refused,
            "duplicates": s.stats.duplicates,
            "gave_up": s.stats.gave_up,
            "election_messages": s.stats.election_messages,
            "limited": s.stats.limited,
            "forged": s.stats.forged,
        },
        "in_flight": s.in_flight,
        "unconfirmed": s.unconfirmed,
        "history": s.history,
        "voters": s.voters,
        "reachable": s.reachable,
        "waiting_for_majority": s.waiting_for_majority,
    })
}

/// The JSON object for an event, as one line.
pub fn render_json(event: &Event) -> String {
    match event {
        Event::Room {
            entry,
            mine,
            history,
        } => RoomLine::of(entry, *mine, *history).line(),
        _ => value(event).to_string(),
    }
}

/// The JSON object for an event.
fn value(event: &Event) -> Value {
    match event {
        Event::Joined {
            leader,
            is_leader,
            members,
        } => {
            json!({"event": "joined", "leader": leader, "is_leader": is_leader, "members": members})
        }
        Event::JoinFailed(e) => json!({"event": "join_failed", "error": e.to_string()}),
        Event::RegFailed(e) => json!({"event": "reg_failed", "error": e.to_string()}),
        Event::Room {
            entry,
            mine,
            history,
        } => json!(RoomLine::of(entry, *mine, *history)),
        Event::History { entries, own, .. } => json!({
            "event": "history",
            "entries": entries.iter().map(|e| RoomLine::of(e, e.origin == *own, true)).collect::<Vec<_>>(),
        }),
        Event::Direct {
            from,
            to,
            lamport,
            sent_at,
            text,
            offline,
            mine,
            history,
        } => json!({
            "event": "private", "from": from, "to": to, "lamport": lamport.0,
            "sent_at_ms": sent_at.0, "text": text, "offline": offline, "mine": mine,
            "history": history,
        }),
        Event::Saved { to, leader, behind } => {
            json!({"event": "saved", "to": to, "leader": leader, "behind": behind})
        }
        Event::Deregistered { pending } => json!({"event": "deregistered", "pending": pending}),
        Event::Receipt { to } => json!({"event": "receipt", "to": to}),
        Event::Undelivered { to, text, reason } => {
            json!({"event": "undelivered", "to": to, "text": text, "reason": reason})
        }
        Event::MemberOnline { name } => json!({"event": "member_online", "name": name}),
        Event::MemberOffline { name } => json!({"event": "member_offline", "name": name}),
        Event::LeaderChanged { name } => json!({"event": "leader_changed", "name": name}),
        Event::PeerUnreachable { addr, name } => {
            json!({"event": "peer_unreachable", "addr": addr.to_string(), "name": name})
        }
        Event::Unconfirmed { texts } => json!({"event": "unconfirmed", "texts": texts}),
        Event::Members(list) => json!({
            "event": "members",
            "members": list.iter().map(member).collect::<Vec<_>>(),
        }),
        Event::Status(s) => status(s),
        Event::Error(e) => json!({"event": "error", "error": e.to_string()}),
        Event::Left => json!({"event": "left"}),
        Event::Notice(text) => json!({"event": "notice", "text": text}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_single_line_objects_named_by_event() {
        let line = render_json(&Event::Receipt {
            to: "zoë \"q\"\nx".into(),
        });
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "receipt");
        assert_eq!(v["to"], "zoë \"q\"\nx");
        let v: Value = serde_json::from_str(&render_json(&Event::Left)).unwrap();
        assert_eq!(v, json!({"event": "left"}));
    }

    /// A room line written from the entry is the line a `Value` of the same fields writes,
    /// byte for byte, whatever the text holds.
    #[test]
    fn a_room_line_is_the_same_as_its_value() {
        use crate::ids::{Lamport, NodeId, OriginSeq, Seq, WallMillis};
        for text in ["plain", "q\"uo\\te", "tab\tnew\nline\u{1}", "zoë 字 🎉", ""] {
            let entry = ChatEntry {
                seq: Seq(u64::MAX),
                origin: NodeId(7),
                name: format!("n\"{text}"),
                origin_seq: OriginSeq(1),
                lamport: Lamport(42),
                sent_at: WallMillis(1_700_000_000_000),
                text: text.into(),
                term: 3,
                proof: Default::default(),
            };
            for (mine, history) in [(false, false), (true, false), (false, true)] {
                let by_value = json!({
                    "event": "room",
                    "seq": entry.seq.0,
                    "lamport": entry.lamport.0,
                    "sent_at_ms": entry.sent_at.0,
                    "from": entry.name,
                    "text": entry.text,
                    "mine": mine,
                    "history": history,
                })
                .to_string();
                let event = Event::Room {
                    entry: entry.clone(),
                    mine,
                    history,
                };
                assert_eq!(render_json(&event), by_value);
                assert_eq!(render_json_keyed(&event, true), by_value);
            }
        }
    }

    #[test]
    fn history_entries_say_which_are_mine() {
        use crate::ids::{Lamport, NodeId, OriginSeq, Seq, WallMillis};
        let entry = |origin| ChatEntry {
            seq: Seq(origin),
            origin: NodeId(origin),
            name: format!("n{origin}"),
            origin_seq: OriginSeq(1),
            lamport: Lamport(1),
            sent_at: WallMillis(0),
            text: "t".into(),
            term: 0,
            proof: Default::default(),
        };
        let line = render_json(&Event::History {
            entries: vec![entry(1), entry(2)],
            own: NodeId(2),
            searched: false,
        });
        let v: Value = serde_json::from_str(&line).unwrap();
        let mine: Vec<&Value> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["mine"])
            .collect();
        assert_eq!(mine, [&json!(false), &json!(true)]);
    }
}
