//! What the user was shown: the program marks the last room message it printed (or
//! drew), the node task keeps that mark in the database with its writes, and a restarted
//! node shows again, as history, the messages it had taken (and written as shown) but had
//! not printed when it stopped. A node killed mid-burst has taken more than its screen
//! shows: those messages are on its disk, past its delivery point, and would otherwise
//! never reach the user.
//!
//! The mark is written behind, with the next batch of writes (or, in a quiet room, on
//! its own), so a crash in the instant after a line is printed may show that line again
//! after the restart, marked as history: a line shown twice, never one not shown.

use crate::ids::Seq;
use crate::proto::Event;
use crate::wire::ChatEntry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The number of the last room message the program printed, shared by the program (which
/// moves it) and the node task (which keeps it on disk). It only moves forward.
#[derive(Clone, Debug, Default)]
pub struct ShownMark(Arc<AtomicU64>);

impl ShownMark {
    /// Room message `seq` (and every one before it) is on the user's screen.
    pub fn shown(&self, seq: Seq) {
        self.0.fetch_max(seq.0, Ordering::Relaxed);
    }

    /// The mark: 0 before anything was shown.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the node task has written of the mark.
#[derive(Debug, Default)]
pub(super) struct ShownWrites {
    /// The mark as last handed to the writer.
    written: u64,
}

impl ShownWrites {
    /// The mark to write now, if it moved since it was last handed over.
    pub(super) fn due(&mut self, mark: &ShownMark) -> Option<Seq> {
        let now = mark.get();
        (now > self.written).then(|| {
            self.written = now;
            Seq(now)
        })
    }
}

/// The room messages of a restored `history` (oldest first) that were delivered after
/// `shown`, the last one the user was shown: the run at its end numbered above it. None
/// if nothing was ever marked (a database from before the mark, or a node not run by the
/// program), and none past a message numbered at or below the mark (a room whose
/// numbering started again is never shown twice).
pub(super) fn not_shown(history: &[ChatEntry], shown: Option<Seq>) -> &[ChatEntry] {
    let Some(shown) = shown else {
        return &[];
    };
    let start = history
        .iter()
        .rposition(|e| e.seq <= shown)
        .map_or(0, |i| i + 1);
    &history[start..]
}

/// The events that show `entries` again, as history; `own_name` is this node's user.
pub(super) fn reshow(entries: &[ChatEntry], own_name: &str) -> Vec<Event> {
    entries
        .iter()
        .filter(|e| !e.is_filler())
        .map(|e| Event::Room {
            entry: e.clone(),
            mine: e.name == own_name,
            history: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Lamport, NodeId, OriginSeq, WallMillis};
    use crate::wire::{FILLER_ORIGIN, Provenance};

    fn entry(seq: u64) -> ChatEntry {
        ChatEntry {
            seq: Seq(seq),
            term: 0,
            origin: NodeId(7),
            origin_seq: OriginSeq(seq),
            name: "bob".into(),
            lamport: Lamport(seq),
            sent_at: WallMillis(0),
            text: format!("m{seq}"),
            proof: Provenance::default(),
        }
    }

    fn seqs(entries: &[ChatEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.seq.0).collect()
    }

    #[test]
    fn what_was_delivered_after_the_mark_is_shown_again() {
        let history: Vec<ChatEntry> = (1..=10).map(entry).collect();
        assert_eq!(seqs(not_shown(&history, Some(Seq(7)))), vec![8, 9, 10]);
        assert!(not_shown(&history, Some(Seq(10))).is_empty());
        assert_eq!(
            seqs(not_shown(&history, Some(Seq(0)))),
            (1..=10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn no_mark_shows_nothing_again() {
        let history: Vec<ChatEntry> = (1..=10).map(entry).collect();
        assert!(not_shown(&history, None).is_empty());
    }

    #[test]
    fn a_numbering_that_started_again_is_not_shown_twice() {
        // 1..=10, then the room's numbering started again at 1: the mark 9 belongs to the
        // earlier numbering; the later messages are at or below it, so none is shown again.
        let history: Vec<ChatEntry> = (1..=10).chain(1..=4).map(entry).collect();
        assert!(not_shown(&history, Some(Seq(9))).is_empty());
    }

    #[test]
    fn the_mark_only_moves_forward_and_is_written_once_per_move() {
        let mark = ShownMark::default();
        let mut writes = ShownWrites::default();
        assert_eq!(writes.due(&mark), None);
        mark.shown(Seq(5));
        mark.shown(Seq(3));
        assert_eq!(mark.get(), 5);
        assert_eq!(writes.due(&mark), Some(Seq(5)));
        assert_eq!(writes.due(&mark), None);
        mark.shown(Seq(6));
        assert_eq!(writes.due(&mark), Some(Seq(6)));
    }

    #[test]
    fn fillers_are_not_shown_again_and_own_messages_are_marked_mine() {
        let mut filler = entry(2);
        filler.origin = FILLER_ORIGIN;
        let mut own = entry(3);
        own.name = "alice".into();
        let events = reshow(&[entry(1), filler, own], "alice");
        let mine: Vec<bool> = events
            .iter()
            .map(|e| {
                matches!(
                    e,
                    Event::Room {
                        mine: true,
                        history: true,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(mine, vec![false, true]);
    }
}
