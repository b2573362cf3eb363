//! `--json`: one JSON object per event on a line, for bots and scripts. The shapes are
//! listed in the README ("JSON events"); every object has an `"event"` field naming it.

use crate::proto::{Event, MemberView, StatusView};
use crate::wire::ChatEntry;
use serde_json::{Value, json};

fn room(e: &ChatEntry, mine: bool, history: bool) -> Value {
    json!({
        "event": "room",
        "seq": e.seq.0,
        "lamport": e.lamport.0,
        "sent_at_ms": e.sent_at.0,
        "from": e.name,
        "text": e.text,
        "mine": mine,
        "history": history,
    })
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
    value(event).to_string()
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
        } => room(entry, *mine, *history),
        Event::History { entries, own, .. } => json!({
            "event": "history",
            "entries": entries.iter().map(|e| room(e, e.origin == *own, true)).collect::<Vec<_>>(),
        }),
        Event::Direct {
            from,
            to,
            lamport,
            sent_at,
            text,
            offline,
            mine,
        } => json!({
            "event": "private", "from": from, "to": to, "lamport": lamport.0,
            "sent_at_ms": sent_at.0, "text": text, "offline": offline, "mine": mine,
        }),
        Event::Saved { to, leader } => json!({"event": "saved", "to": to, "leader": leader}),
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
