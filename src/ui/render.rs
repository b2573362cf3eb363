//! Events as lines of text: plain for pipes and files, coloured on a terminal.
//!
//! Message lines start with the sender's local wall-clock time and carry the Lamport time:
//! `[12:03:04 #12 L42] bob: hi` (room, sequence number 12), `[12:03:04 private L51] bob:
//! psst` (direct).

use crate::ids::WallMillis;
use crate::proto::{Event, JoinError, MemberView, RingSeat, StatusView};
use crate::wire::ChatEntry;
use std::net::SocketAddr;

/// How lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours.
    pub color: bool,
}

impl Style {
    /// Plain text.
    pub fn plain() -> Style {
        Style { color: false }
    }

    /// Colour on a terminal, unless `NO_COLOR` is set (to anything non-empty).
    pub fn for_output(is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: is_terminal && !no_color,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn name(&self, s: &str) -> String {
        self.paint("1;36", s)
    }

    fn you(&self, s: &str) -> String {
        self.paint("1;32", s)
    }

    fn private(&self, s: &str) -> String {
        self.paint("35", s)
    }

    fn system(&self, s: &str) -> String {
        self.paint("2", s)
    }

    fn error(&self, s: &str) -> String {
        self.paint("31", s)
    }
}

/// `HH:MM:SS` of a wall-clock stamp in the local time zone.
pub fn local_time(t: WallMillis) -> String {
    i64::try_from(t.0)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "--:--:--".into())
}

fn room_line(e: &ChatEntry, mine: bool, history: bool, st: &Style) -> String {
    let who = if mine {
        st.you(&format!("{} (you)", e.name))
    } else {
        st.name(&e.name)
    };
    let tag = if history { " history" } else { "" };
    format!(
        "[{} #{} L{}{tag}] {who}: {}",
        local_time(e.sent_at),
        e.seq,
        e.lamport,
        e.text
    )
}

fn member_line(m: &MemberView, st: &Style) -> String {
    let mut line = format!(
        "{:<16} {:<22} {}",
        m.name,
        m.addr.to_string(),
        if m.online { "ONLINE" } else { "OFFLINE" }
    );
    if m.leader {
        line.push_str("  leader");
    }
    if m.me {
        line.push_str("  (you)");
    }
    if m.online { line } else { st.system(&line) }
}

/// The ring as text: `alice (you) [leader] -> bob -> carol (suspected) -> alice`.
pub fn ring_line(ring: &[RingSeat]) -> String {
    let seat = |s: &RingSeat| {
        let mut t = s.name.clone();
        if s.me {
            t.push_str(" (you)");
        }
        if s.leader {
            t.push_str(" [leader]");
        }
        if s.suspected {
            t.push_str(" (suspected)");
        }
        t
    };
    let mut parts: Vec<String> = ring.iter().map(seat).collect();
    if let Some(first) = ring.first().filter(|_| ring.len() > 1) {
        parts.push(first.name.clone());
    }
    parts.join(" -> ")
}

fn status_lines(s: &StatusView) -> Vec<String> {
    let or_none = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    vec![
        format!("ring:    {}", ring_line(&s.ring)),
        format!("me:      {} ({}) at {}", s.name, s.id, s.addr),
        format!("prev:    {}", or_none(&s.prev)),
        format!("next:    {}", or_none(&s.next)),
        format!("leader:  {}", or_none(&s.leader)),
        format!(
            "suspected: {}",
            if s.suspected.is_empty() {
                "-".to_string()
            } else {
                s.suspected.join(", ")
            }
        ),
        format!("lamport: {}", s.lamport),
        format!(
            "counters: sent {} retransmitted {} received {} dropped {} refused {} duplicates {} gave_up {} election_messages {} limited {} forged {}",
            s.stats.sent,
            s.stats.retransmitted,
            s.stats.received,
            s.stats.dropped,
            s.stats.refused,
            s.stats.duplicates,
            s.stats.gave_up,
            s.stats.election_messages,
            s.stats.limited,
            s.stats.forged
        ),
        format!(
            "pending: {} awaiting ack, {} own messages awaiting commit, {} in history",
            s.in_flight, s.unconfirmed, s.history
        ),
        format!(
            "voters:  {} ({} make a majority, {} reachable){}",
            if s.voters.is_empty() {
                "-".to_string()
            } else {
                s.voters.join(", ")
            },
            s.voters.len() / 2 + 1,
            s.reachable,
            if s.waiting_for_majority {
                "; waiting for a majority: messages wait"
            } else {
                ""
            }
        ),
    ]
}

/// The `status` line saying whether the room is keyed (the program knows; the node does
/// not say).
pub fn key_line(keyed: bool) -> String {
    if keyed {
        "key:     room key: every datagram sealed, only key holders can join (invite prints an invitation)".into()
    } else {
        "key:     none: an OPEN room (--insecure): anyone who can reach it can join, read and post"
            .into()
    }
}

/// Said on every start of a node whose room is open (`--insecure`).
pub const OPEN_ROOM_WARNING: &str = "warning: --insecure: this room is OPEN: no key, so anyone \
     who can reach it can join, read and post (without --insecure a room is keyed)";

/// The first of the two lines that give an invitation; the second is the invitation
/// alone, so that it can be copied whole.
pub const INVITATION_INTRO: &str = "invitation: a friend starts ringchat with --join and the \
     next line (whoever has it can join this room and read it; type invite to see it again)";

/// What `invite` prints: the room's invitation (`None` for an open room, which has none:
/// then how to join it through `addr`).
pub fn invite_lines(invitation: Option<&str>, addr: SocketAddr) -> Vec<String> {
    match invitation {
        Some(token) => vec![INVITATION_INTRO.to_string(), token.to_string()],
        None => vec![format!(
            "this room is open (--insecure), so there is no invitation: a friend joins with --join {addr} --insecure"
        )],
    }
}

/// Why a join got no answer, with what to do about it: nothing runs there, or the room
/// there is keyed and this node has no key (`keyed` false) or another key.
fn unreachable_line(addr: SocketAddr, keyed: bool) -> String {
    if keyed {
        format!(
            "error: cannot join: no answer from {addr}: nothing runs there, or the room there has another key (or is open: then join with --insecure); ask a member for an invitation (they type invite) and start with --join <invitation>"
        )
    } else {
        format!(
            "error: cannot join: no answer from {addr}: nothing runs there, or the room there is keyed (rooms are, unless started with --insecure) and this node has no key; ask a member for an invitation (they type invite) and start with --join <invitation>"
        )
    }
}

/// The start of the notice a restarted node gives when it carries its saved room on
/// because no saved member answered.
const CARRIED_ON: &str = "no member of the saved room answered";

/// Renders one node's events in order, where a line depends on more than its event: on
/// an earlier event (after a restarted node says it carries its saved room on, its
/// `Joined` as a leader alone is not `created a new room`) or on what the program knows
/// (whether the room is keyed, shown by `status` and in why a join got no answer; the
/// invitation, shown when the node creates a room).
#[derive(Clone, Debug, Default)]
pub struct Narrator {
    keyed: bool,
    invitation: Option<String>,
    carried_on: bool,
}

impl Narrator {
    /// A narrator for a node whose room is `keyed` or not.
    pub fn new(keyed: bool) -> Narrator {
        Narrator {
            keyed,
            invitation: None,
            carried_on: false,
        }
    }

    /// The same, showing `invitation` (the one-line invitation to the room) when the node
    /// creates a room.
    pub fn inviting(mut self, invitation: Option<String>) -> Narrator {
        self.invitation = invitation;
        self
    }

    /// The lines for the next event.
    pub fn lines(&mut self, event: &Event, st: &Style) -> Vec<String> {
        match event {
            Event::Notice(text) if text.starts_with(CARRIED_ON) => self.carried_on = true,
            Event::Joined {
                leader,
                is_leader: true,
                members: 1,
            } if std::mem::take(&mut self.carried_on) => {
                return vec![st.system(&format!(
                    "you ({leader}) lead the room again; no other member is known"
                ))];
            }
            Event::Status(_) => {
                let mut lines = render_styled(event, st);
                lines.push(key_line(self.keyed));
                return lines;
            }
            Event::Joined {
                is_leader: true,
                members: 1,
                ..
            } => {
                let mut lines = render_styled(event, st);
                if let Some(token) = &self.invitation {
                    lines.push(st.system(INVITATION_INTRO));
                    lines.push(token.clone());
                }
                return lines;
            }
            Event::Joined { .. } => self.carried_on = false,
            Event::JoinFailed(JoinError::Unreachable(addr)) => {
                return vec![st.error(&unreachable_line(*addr, self.keyed))];
            }
            _ => {}
        }
        render_styled(event, st)
    }

    /// The JSON lines for the next event: one, or with a creation the `invitation` after
    /// it (`status` has `room_key` and `insecure`; a `join_failed` without an answer says
    /// what to do).
    pub fn json(&mut self, event: &Event) -> Vec<String> {
        match event {
            Event::Notice(text) if text.starts_with(CARRIED_ON) => self.carried_on = true,
            Event::Status(_) => {
                return vec![super::json::render_json_keyed(event, self.keyed)];
            }
            Event::Joined {
                is_leader: true,
                members: 1,
                ..
            } if !std::mem::take(&mut self.carried_on) => {
                let mut lines = vec![super::render_json(event)];
                if let Some(token) = &self.invitation {
                    lines.push(super::json::invitation(token));
                }
                return lines;
            }
            Event::Joined { .. } => self.carried_on = false,
            Event::JoinFailed(JoinError::Unreachable(addr)) => {
                let line = unreachable_line(*addr, self.keyed);
                let text = line.trim_start_matches("error: cannot join: ");
                let value = serde_json::json!({"event": "join_failed", "error": text});
                return vec![value.to_string()];
            }
            _ => {}
        }
        vec![super::render_json(event)]
    }
}

/// The lines to print for an event, plain.
pub fn render(event: &Event) -> Vec<String> {
    render_styled(event, &Style::plain())
}

/// The lines to print for an event (one event may take several lines: `list`, `status`).
pub fn render_styled(event: &Event, st: &Style) -> Vec<String> {
    let sys = |s: String| vec![st.system(&s)];
    let err = |s: String| vec![st.error(&s)];
    match event {
        Event::Joined {
            leader,
            is_leader: true,
            members: 1,
        } => sys(format!("created a new room; you ({leader}) are the leader")),
        Event::Joined {
            leader,
            is_leader: true,
            members,
        } => sys(format!(
            "you ({leader}) lead the room again: {members} members known, the others offline"
        )),
        Event::Joined {
            leader, members, ..
        } => sys(format!(
            "joined the room: {members} members, leader is {leader}"
        )),
        Event::JoinFailed(e) => err(format!("error: cannot join: {e}")),
        Event::RegFailed(e) => err(format!(
            "error: cannot come back online: {e} (still offline; try reg <name> <host:port>)"
        )),
        Event::Room {
            entry,
            mine,
            history,
        } => vec![room_line(entry, *mine, *history, st)],
        Event::History {
            entries, searched, ..
        } if entries.is_empty() => sys(if *searched {
            "(no matching room messages)".into()
        } else {
            "(no room messages yet)".into()
        }),
        Event::History { entries, own, .. } => entries
            .iter()
            .map(|e| room_line(e, e.origin == *own, true, st))
            .collect(),
        Event::Saved { to, leader } => {
            sys(format!("[{to} is offline: message saved by {leader}.]"))
        }
        Event::Deregistered { pending } => {
            let mut line =
                "you are offline; messages for you are kept (type reg to come back)".to_string();
            if *pending > 0 {
                line.push_str(&format!("; {pending} of yours go out when you are back"));
            }
            sys(line)
        }
        Event::Direct {
            from,
            to,
            lamport,
            sent_at,
            text,
            offline,
            mine,
        } => {
            let others = if *mine || to.len() > 1 {
                format!(" to {}", to.join(","))
            } else {
                String::new()
            };
            let kept = if *offline {
                ", kept while you were offline,"
            } else {
                ""
            };
            let head = st.private(&format!(
                "[{} private{others}{kept} L{lamport}]",
                local_time(*sent_at)
            ));
            let who = if *mine {
                st.you(&format!("{from} (you)"))
            } else {
                st.name(from)
            };
            vec![format!("{head} {who}: {text}")]
        }
        Event::Receipt { to } => sys(format!("[Message received by {to}.]")),
        Event::Undelivered { to, text, reason } => err(format!(
            "error: private message to {to} not delivered ({reason}): {text}"
        )),
        Event::MemberOnline { name } => sys(format!("{name} is online")),
        Event::MemberOffline { name } => sys(format!("{name} is offline")),
        Event::LeaderChanged { name } => sys(format!("leader is now {name}")),
        Event::PeerUnreachable { addr, name } => sys(format!(
            "{} at {addr} is not answering",
            name.as_deref().unwrap_or("a peer")
        )),
        Event::Unconfirmed { texts } => texts
            .iter()
            .map(|t| {
                st.error(&format!(
                    "error: not confirmed by the leader before leaving: {t}"
                ))
            })
            .collect(),
        Event::Members(list) => list.iter().map(|m| member_line(m, st)).collect(),
        Event::Status(s) => status_lines(s),
        Event::Error(e) => err(format!("error: {e}")),
        Event::Left => sys("left the room".into()),
        Event::Notice(text) => sys(text.clone()),
    }
}

#[cfg(test)]
mod tests {
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
            "no member of the saved room answered; the room goes on here, with you as leader"
                .into(),
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
        assert!(lines.last().unwrap().starts_with("key:     room key"));
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
        };
        let line = &render(&e)[0];
        assert!(line.contains("private to alice,carol, kept while you were offline, L5]"));
        assert!(line.ends_with("bob: psst"));
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
}
