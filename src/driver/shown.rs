//! What the user was shown: the program marks the last room message and the last private
//! message it printed (or drew), the node task keeps that mark in the database with its
//! writes, and a restarted node shows again, as history, the messages it had taken (and
//! written as shown) but had not printed when it stopped. A node killed mid-burst has
//! taken more than its screen shows: those messages are on its disk, past its delivery
//! point or its last printed private message, and would otherwise never reach the user
//! (a private message's sender was told it was delivered).
//!
//! The mark is written behind, with the next batch of writes (or, in a quiet room, on
//! its own), so a crash in the instant after a line is printed may show that line again
//! after the restart, marked as history: a line shown twice, never one not shown.

use crate::ids::Seq;
use crate::proto::{Event, Restored};
use crate::store::{ShownPoint, Store, StoreError};
use crate::wire::ChatEntry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What the program printed, shared by the program (which moves it) and the node task
/// (which keeps it on disk): the number of the last room message, and the row of the last
/// private message received. Room messages are printed in the order they are shown, so
/// the last one printed is the mark, even where a room's numbering started again lower;
/// private messages are printed in the order their rows were written, one row each, so
/// the program moves that mark by how many it printed.
#[derive(Clone, Debug, Default)]
pub struct ShownMark(Arc<Marks>);

#[derive(Debug, Default)]
struct Marks {
    room: AtomicU64,
    direct_row: AtomicU64,
    /// Whether the program moved either in this run (it marks what it prints).
    moved: AtomicBool,
}

impl ShownMark {
    /// A mark standing at room message `room` and private message row `direct_row`.
    pub(super) fn at(room: Seq, direct_row: u64) -> ShownMark {
        let marks = Marks {
            room: AtomicU64::new(room.0),
            direct_row: AtomicU64::new(direct_row),
            moved: AtomicBool::new(false),
        };
        ShownMark(Arc::new(marks))
    }

    /// Room message `seq` (and every one shown before it) is on the user's screen.
    pub fn shown(&self, seq: Seq) {
        self.0.room.store(seq.0, Ordering::Relaxed);
        self.0.moved.store(true, Ordering::Relaxed);
    }

    /// The next `count` private messages received (after those marked before) are on the
    /// user's screen.
    pub fn directs_shown(&self, count: u64) {
        if count > 0 {
            self.0.direct_row.fetch_add(count, Ordering::Relaxed);
            self.0.moved.store(true, Ordering::Relaxed);
        }
    }

    /// The room mark: 0 before anything was shown.
    pub fn get(&self) -> u64 {
        self.0.room.load(Ordering::Relaxed)
    }

    /// The row of the last private message printed.
    fn direct_row(&self) -> u64 {
        self.0.direct_row.load(Ordering::Relaxed)
    }

    /// Both marks, as the database keeps them.
    pub(super) fn point(&self) -> ShownPoint {
        ShownPoint {
            room: Seq(self.get()),
            direct_row: self.direct_row(),
        }
    }

    /// Whether the program moved it in this run (it marks what it prints).
    fn moved(&self) -> bool {
        self.0.moved.load(Ordering::Relaxed)
    }
}

/// What the node task handed to the program (sent on its channel, not only produced:
/// what waits for a write that failed is never handed).
#[derive(Debug, Default)]
pub(super) struct Handed {
    /// The number of the last room message.
    pub(super) room: Option<u64>,
    /// The row of the last private message received (those shown again at a restart
    /// included).
    pub(super) direct_row: u64,
}

impl Handed {
    /// Counts one output handed to the program.
    pub(super) fn note(&mut self, ev: &Event) {
        match ev {
            Event::Room { entry, .. } => self.room = Some(entry.seq.0),
            Event::Direct { mine: false, .. } => self.direct_row += 1,
            _ => {}
        }
    }
}

/// What the node task has written of the mark.
#[derive(Debug, Default)]
pub(super) struct ShownWrites {
    /// The mark as last handed to the writer (none yet: the first is written whatever
    /// it is, so that a database always has one once the node has run).
    written: Option<ShownPoint>,
}

impl ShownWrites {
    /// The mark to write now, if it moved since it was last handed over.
    pub(super) fn due(&mut self, mark: &ShownMark) -> Option<ShownPoint> {
        let now = mark.point();
        (self.written != Some(now)).then(|| {
            self.written = Some(now);
            now
        })
    }
}

/// How long a node leaving in good order waits for the program to print what it was
/// handed, so that its mark is written before the node task ends.
const LEAVING_WAIT: Duration = Duration::from_secs(2);

/// Waits, at most [`LEAVING_WAIT`], until the program has printed the last room message
/// and the last private message it was handed, if it marks what it prints at all (it
/// moved the mark in this run). What is not printed by then is shown again after a
/// restart.
pub(super) async fn wait_for_screen(mark: &ShownMark, handed: &Handed) {
    let printed = |m: &ShownMark| {
        handed.room.is_none_or(|r| m.get() == r) && m.direct_row() >= handed.direct_row
    };
    if printed(mark) {
        return;
    }
    if !mark.moved() {
        // Nothing marks what it prints (a node driven through its handle alone): what it
        // was handed counts as shown, so a restart does not give it all again.
        if let Some(room) = handed.room {
            mark.0.room.store(room, Ordering::Relaxed);
        }
        mark.0
            .direct_row
            .store(handed.direct_row, Ordering::Relaxed);
        return;
    }
    let deadline = tokio::time::Instant::now() + LEAVING_WAIT;
    while !printed(mark) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Where a restarted node's screen starts: its mark, what counts as handed to the
/// program already, and the events to show first (a notice of what was restored, then
/// what was taken but not printed when it stopped, shown again).
pub(super) struct Restore {
    pub(super) mark: ShownMark,
    pub(super) handed: Handed,
    pub(super) events: Vec<Event>,
}

/// What a node restarted from `store`, which read `saved` from it, shows first (see
/// [`Restore`]); `own_name` is this node's user.
pub(super) fn restore(
    store: &Store,
    saved: &Restored,
    own_name: &str,
) -> Result<Restore, StoreError> {
    let shown_point = store.shown_point()?;
    let directs = store.directs_not_shown()?;
    let mark = start_mark(&saved.history, shown_point, directs.start);
    let handed = Handed {
        room: None,
        direct_row: directs.start + directs.messages.len() as u64,
    };
    let mut events = Vec::new();
    if !saved.is_empty() {
        let again = reshow(not_shown(&saved.history, shown_point), own_name);
        let mut notice = format!(
            "restored {} room messages and {} kept private messages from {}",
            saved.history.iter().filter(|e| !e.is_filler()).count(),
            saved.kept.len(),
            store.path().display()
        );
        if !again.is_empty() {
            notice.push_str(&format!(
                "; the last {} of them are shown again, as history: taken just before it \
                 stopped, they may not have reached the screen",
                again.len()
            ));
        }
        if !directs.messages.is_empty() {
            notice.push_str(&format!(
                "; {} private messages taken just before it stopped are shown again: they \
                 may not have reached the screen",
                directs.messages.len()
            ));
        }
        events.push(Event::Notice(notice));
        events.extend(again);
    }
    events.extend(directs.messages.into_iter().map(|m| m.event(true)));
    Ok(Restore {
        mark,
        handed,
        events,
    })
}

/// Where the mark starts for a node restored with `history` and the mark `saved` on its
/// disk: there, or, for a database from before the mark, at its last message (an earlier
/// version printed what it took, as far as it can be known); 0 for a first start. The
/// private messages' mark starts at `direct_row` (see `Store::directs_not_shown`).
pub(super) fn start_mark(history: &[ChatEntry], saved: Option<Seq>, direct_row: u64) -> ShownMark {
    let room = saved.unwrap_or_else(|| history.last().map_or(Seq(0), |e| e.seq));
    ShownMark::at(room, direct_row)
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

    fn handed(room: u64, direct_row: u64) -> Handed {
        Handed {
            room: Some(room),
            direct_row,
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
        // earlier numbering (nothing of the new one printed yet); the later messages are
        // at or below it, so none is shown again rather than all of them.
        let history: Vec<ChatEntry> = (1..=10).chain(1..=4).map(entry).collect();
        assert!(not_shown(&history, Some(Seq(9))).is_empty());
    }

    fn point(room: u64, direct_row: u64) -> Option<ShownPoint> {
        Some(ShownPoint {
            room: Seq(room),
            direct_row,
        })
    }

    #[test]
    fn the_mark_is_written_first_and_then_once_per_move() {
        let mark = ShownMark::default();
        let mut writes = ShownWrites::default();
        assert_eq!(writes.due(&mark), point(0, 0), "a first mark, even at 0");
        assert_eq!(writes.due(&mark), None);
        mark.shown(Seq(5));
        assert_eq!(writes.due(&mark), point(5, 0));
        assert_eq!(writes.due(&mark), None);
        // A room numbered again from 1: the mark follows it down.
        mark.shown(Seq(3));
        assert_eq!(writes.due(&mark), point(3, 0));
        // Two private messages printed: the row moves by two.
        mark.directs_shown(2);
        assert_eq!(writes.due(&mark), point(3, 2));
        mark.directs_shown(0);
        assert_eq!(writes.due(&mark), None);
    }

    #[test]
    fn a_mark_that_followed_a_new_numbering_shows_its_unprinted_tail_again() {
        // 1..=10, then a numbering from 1 again, printed up to 3 of 4.
        let history: Vec<ChatEntry> = (1..=10).chain(1..=4).map(entry).collect();
        assert_eq!(seqs(not_shown(&history, Some(Seq(3)))), vec![4]);
    }

    #[tokio::test]
    async fn leaving_waits_for_the_screen_only_where_something_marks_it() {
        // Driven through its handle alone: what was handed counts as shown, at once.
        let unmarked = ShownMark::at(Seq(3), 0);
        wait_for_screen(&unmarked, &handed(9, 0)).await;
        assert_eq!(unmarked.get(), 9);
        // A program that marks: the mark is its own, whatever is left after the wait.
        let marked = ShownMark::at(Seq(3), 0);
        marked.shown(Seq(5));
        let screen = marked.clone();
        let printer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            screen.shown(Seq(9));
        });
        wait_for_screen(&marked, &handed(9, 0)).await;
        assert_eq!(
            marked.get(),
            9,
            "waited for the screen to print the last one"
        );
        printer.await.unwrap();
    }

    #[tokio::test]
    async fn leaving_waits_for_private_messages_printed_too() {
        // Driven through its handle alone: what was handed counts as shown, at once.
        let unmarked = ShownMark::at(Seq(3), 10);
        wait_for_screen(
            &unmarked,
            &Handed {
                room: None,
                direct_row: 12,
            },
        )
        .await;
        assert_eq!(unmarked.point(), point(3, 12).unwrap());
        // A program that marks: it is waited for until its mark has both.
        let marked = ShownMark::at(Seq(3), 10);
        marked.shown(Seq(9));
        let screen = marked.clone();
        let printer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            screen.directs_shown(2);
        });
        wait_for_screen(&marked, &handed(9, 12)).await;
        assert_eq!(marked.point(), point(9, 12).unwrap(), "waited for both");
        printer.await.unwrap();
    }

    #[test]
    fn a_database_from_before_the_mark_starts_at_its_last_message() {
        let history: Vec<ChatEntry> = (1..=10).map(entry).collect();
        assert_eq!(start_mark(&history, None, 0).get(), 10);
        assert_eq!(start_mark(&history, Some(Seq(7)), 0).get(), 7);
        assert_eq!(start_mark(&[], None, 0).get(), 0);
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
