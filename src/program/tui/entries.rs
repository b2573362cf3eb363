//! Messages as pane entries: `12:03 bob: hi`, `12:03 * bob waves`, `12:04 [private to
//! carol] alice: psst`, each dated for the day separators. Time of day without seconds,
//! no sequence numbers or Lamport times: the line mode and `--json` show those.

use super::pane::{Entry, Tone};
use crate::ids::WallMillis;
use crate::wire::ChatEntry;
use chrono::{DateTime, Local, NaiveDate};

/// Columns a message's wrapped rows are indented by: the width of its time.
const INDENT: usize = 6;

/// A wall-clock stamp in the local time zone.
fn local(t: WallMillis) -> Option<DateTime<Local>> {
    i64::try_from(t.0)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map(|d| d.with_timezone(&Local))
}

/// `HH:MM ` of a stamp, and its local day.
fn when(t: WallMillis) -> (String, Option<NaiveDate>) {
    match local(t) {
        Some(d) => (d.format("%H:%M ").to_string(), Some(d.date_naive())),
        None => ("--:-- ".into(), None),
    }
}

fn nick(name: &str, mine: bool) -> Tone {
    if mine {
        Tone::Own(name.to_string())
    } else {
        Tone::Nick(name.to_string())
    }
}

/// A room message: `HH:MM name: text`, or `HH:MM * name action` for `/me`; history in
/// its own tone.
pub fn room(entry: &ChatEntry, mine: bool, history: bool) -> (Entry, Option<NaiveDate>) {
    let (time, day) = when(entry.sent_at);
    let text_tone = if history { Tone::History } else { Tone::Text };
    let time_tone = if history { Tone::History } else { Tone::Time };
    let who = nick(&entry.name, mine);
    let action = entry
        .text
        .strip_prefix("* ")
        .and_then(|t| t.strip_prefix(entry.name.as_str()))
        .filter(|rest| rest.starts_with(' '));
    let segments = match action {
        Some(rest) => vec![
            (time_tone, time),
            (text_tone.clone(), "* ".into()),
            (who, entry.name.clone()),
            (text_tone, rest.to_string()),
        ],
        None => vec![
            (time_tone, time),
            (who, entry.name.clone()),
            (text_tone, format!(": {}", entry.text)),
        ],
    };
    (
        Entry {
            segments,
            indent: INDENT,
        },
        day,
    )
}

/// What a private message says about itself.
pub struct Private<'a> {
    /// Sender.
    pub from: &'a str,
    /// Recipients.
    pub to: &'a [String],
    /// Sent at.
    pub sent_at: WallMillis,
    /// Text.
    pub text: &'a str,
    /// Kept while you were offline.
    pub offline: bool,
    /// Yours, as it goes out.
    pub mine: bool,
    /// Shown again after a restart (it may not have reached the screen before).
    pub history: bool,
}

/// A private message: `HH:MM [private] bob: psst`; `[private to carol]` for your own or
/// for one sent to several; `, kept` when it waited for you while you were offline;
/// `, history` when shown again after a restart.
pub fn private(p: &Private<'_>) -> (Entry, Option<NaiveDate>) {
    let (time, day) = when(p.sent_at);
    let mut tag = "[private".to_string();
    if p.mine || p.to.len() > 1 {
        tag.push_str(&format!(" to {}", p.to.join(",")));
    }
    if p.offline {
        tag.push_str(", kept while you were offline");
    }
    if p.history {
        tag.push_str(", history");
    }
    tag.push_str("] ");
    let segments = vec![
        (Tone::Time, time),
        (Tone::Private, tag),
        (nick(p.from, p.mine), p.from.to_string()),
        (Tone::Text, format!(": {}", p.text)),
    ];
    (
        Entry {
            segments,
            indent: INDENT,
        },
        day,
    )
}

/// A line the program printed: an error when it says so, else a notice.
pub fn said(line: &str) -> Entry {
    let tone = if line.starts_with("error:") {
        Tone::Error
    } else {
        Tone::Notice
    };
    Entry::plain(tone, line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Lamport, NodeId, OriginSeq, Seq};

    fn chat(name: &str, text: &str) -> ChatEntry {
        ChatEntry {
            seq: Seq(3),
            origin: NodeId(1),
            name: name.into(),
            origin_seq: OriginSeq(1),
            lamport: Lamport(9),
            sent_at: WallMillis(1_700_000_000_000),
            text: text.into(),
            term: 0,
            proof: Default::default(),
        }
    }

    #[test]
    fn room_private_and_me_lines() {
        let (time, day) = when(WallMillis(1_700_000_000_000));
        assert!(day.is_some());
        let (e, _) = room(&chat("bob", "hi all"), false, false);
        assert_eq!(e.text(), format!("{time}bob: hi all"));
        assert_eq!(e.segments[1].0, Tone::Nick("bob".into()));
        let (e, _) = room(&chat("bob", "* bob waves"), false, false);
        assert_eq!(e.text(), format!("{time}* bob waves"));
        let (e, _) = room(&chat("ann", "hi"), true, true);
        assert_eq!(e.segments[0].0, Tone::History);
        assert_eq!(e.segments[1].0, Tone::Own("ann".into()));
        let to = vec!["carol".to_string()];
        let (e, _) = private(&Private {
            from: "ann",
            to: &to,
            sent_at: WallMillis(1_700_000_000_000),
            text: "psst",
            offline: false,
            mine: true,
            history: false,
        });
        assert_eq!(e.text(), format!("{time}[private to carol] ann: psst"));
        let (e, _) = private(&Private {
            from: "bob",
            to: &to,
            sent_at: WallMillis(1_700_000_000_000),
            text: "psst",
            offline: true,
            mine: false,
            history: false,
        });
        assert_eq!(
            e.text(),
            format!("{time}[private, kept while you were offline] bob: psst")
        );
        let (e, _) = private(&Private {
            from: "bob",
            to: &to,
            sent_at: WallMillis(1_700_000_000_000),
            text: "psst",
            offline: false,
            mine: false,
            history: true,
        });
        assert_eq!(e.text(), format!("{time}[private, history] bob: psst"));
        assert_eq!(said("error: no").segments[0].0, Tone::Error);
        assert_eq!(said("bob is online").segments[0].0, Tone::Notice);
    }
}
