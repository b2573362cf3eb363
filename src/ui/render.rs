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
        "key:     keyed: every datagram sealed; a newcomer needs an invitation (invite prints one)"
            .into()
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
     next line (it lets one newcomer in, within 24 hours; type invite for another)";

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
            "error: cannot join: no answer from {addr}: nothing runs there, or the room there has another key, or the invitation was used by another newcomer or is more than a day old (or the room is open: then join with --insecure); ask a member for a new invitation (they type invite) and start with --join <invitation>"
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
        Event::Saved {
            to,
            leader,
            behind: false,
        } => sys(format!("[{to} is offline: message saved by {leader}.]")),
        Event::Saved {
            to,
            leader,
            behind: true,
        } => sys(format!(
            "[Message to {to} saved by {leader}: it goes after your earlier ones to {to}.]"
        )),
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
            history,
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
            let tag = if *history { " history" } else { "" };
            let head = st.private(&format!(
                "[{} private{others}{kept} L{lamport}{tag}]",
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
mod tests;
