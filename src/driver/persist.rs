//! Writing behind: the node's database on a thread of its own.
//!
//! The node loop hands each drain's writes to the writer thread as one numbered batch and
//! goes on taking inputs while the writer makes them durable. Everything the node owes
//! from that drain on (datagrams, events, lines to print) waits in [`Held`] until the
//! writer says the batch is on disk, and leaves in the order it was produced: an ack is
//! never sent before what it acknowledges is kept, as before, but the node no longer
//! stops while the disk syncs. Batches that queue up while the writer is busy are made
//! durable together in one transaction (group commit that grows with the load).
//!
//! Reads (`history`, fetches of room messages older than memory) wait until every batch
//! handed over is on disk, then use the database under its lock.
//!
//! A write that fails (a full disk, an I/O error) stops the writer, and the node with it:
//! what waited for that batch (acks among it) is never sent, since an ack claims a copy
//! on disk, and the user is told why. So does a writer thread that stops (a panic). While
//! [`MAX_HELD`] outputs wait, the node takes no input, so a stalled disk holds the room's
//! traffic back in the kernel's buffers, not in memory.

use crate::proto::Write;
use crate::store::{RunIndex, ShownPoint, Store};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, mpsc as std_mpsc};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

use super::Output;

/// The database and where its current numbering starts, shared by the loop (reads) and
/// the writer (writes).
pub(super) struct Disk {
    /// The database.
    pub(super) store: Store,
    /// Where the current numbering starts in its history table (for fetches).
    pub(super) runs: RunIndex,
}

/// A batch of writes, numbered from 1 in the order handed over.
struct Batch {
    number: u64,
    writes: Vec<Write>,
    /// What the user was shown, if it moved (see `shown.rs`).
    shown: Option<ShownPoint>,
}

/// The writer's word: every batch up to `upto` is applied, or (with `error`) the batches
/// after those it applied before failed, and it stopped.
pub(super) struct Applied {
    upto: u64,
    error: Option<String>,
}

/// The writer thread stopped (a write failed, or it panicked): nothing more can be kept,
/// and what waits for its writes must never leave. [`Writer::failure`] says why, if a
/// write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct WriterGone;

/// The writer thread and what the loop knows of it.
pub(super) struct Writer {
    batches: Option<std_mpsc::Sender<Batch>>,
    applied: mpsc::UnboundedReceiver<Applied>,
    disk: Arc<Mutex<Disk>>,
    thread: Option<JoinHandle<()>>,
    /// Batches handed over.
    sent: u64,
    /// Batches known applied.
    durable: u64,
    /// Whether the writer thread is known to have stopped.
    gone: bool,
    /// The error of the write that stopped it, if one did.
    failure: Option<String>,
}

impl Writer {
    /// Starts the writer thread for `store`.
    pub(super) fn start(store: Store) -> std::io::Result<Writer> {
        let disk = Arc::new(Mutex::new(Disk {
            store,
            runs: RunIndex::default(),
        }));
        let (batch_tx, batch_rx) = std_mpsc::channel::<Batch>();
        let (applied_tx, applied_rx) = mpsc::unbounded_channel();
        let shared = disk.clone();
        let thread = std::thread::Builder::new()
            .name("ringchat-disk".into())
            .spawn(move || write_batches(&batch_rx, &applied_tx, &shared))?;
        Ok(Writer {
            batches: Some(batch_tx),
            applied: applied_rx,
            disk,
            thread: Some(thread),
            sent: 0,
            durable: 0,
            gone: false,
            failure: None,
        })
    }

    /// Hands `writes` to the writer as the next batch (nothing if empty).
    #[cfg(test)]
    pub(super) fn hand(&mut self, writes: Vec<Write>) {
        self.hand_shown(writes, None);
    }

    /// [`Writer::hand`], with what the user was shown if it moved. That mark alone makes
    /// a batch nothing waits for: it takes the number of the batch before it, so the
    /// outputs after it go as soon as that one is on disk.
    pub(super) fn hand_shown(&mut self, writes: Vec<Write>, shown: Option<ShownPoint>) {
        if writes.is_empty() && shown.is_none() {
            return;
        }
        if !writes.is_empty() {
            self.sent += 1;
        }
        let batch = Batch {
            number: self.sent,
            writes,
            shown,
        };
        // If the writer has stopped, the batch is lost with the channel; its last word
        // (why it stopped) or the channel's end is read as usual, so that is what counts.
        if let Some(tx) = &self.batches
            && tx.send(batch).is_err()
        {
            self.batches = None;
        }
    }

    /// The batch number that outputs produced now must wait for, if any is in flight.
    pub(super) fn in_flight(&self) -> Option<u64> {
        (self.durable < self.sent).then_some(self.sent)
    }

    /// Takes in a word of the writer's: a failed write is the writer's last word, and
    /// moves nothing on.
    fn take(&mut self, a: Applied) {
        match a.error {
            None => self.durable = self.durable.max(a.upto),
            Some(error) => {
                self.failure = Some(error);
                self.gone = true;
            }
        }
    }

    /// Waits for the writer's next word.
    pub(super) async fn next_applied(&mut self) -> Result<(), WriterGone> {
        if !self.gone {
            match self.applied.recv().await {
                Some(a) => self.take(a),
                None => self.gone = true,
            }
        }
        match self.gone {
            true => Err(WriterGone),
            false => Ok(()),
        }
    }

    /// Takes in the words the writer already said, without waiting.
    pub(super) fn poll_applied(&mut self) -> Result<(), WriterGone> {
        while !self.gone {
            match self.applied.try_recv() {
                Ok(a) => self.take(a),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.gone = true,
            }
        }
        match self.gone {
            true => Err(WriterGone),
            false => Ok(()),
        }
    }

    /// Batches known applied.
    pub(super) fn durable(&self) -> u64 {
        self.durable
    }

    /// Why the writer stopped, if a write failed (a panic leaves none).
    pub(super) fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Once the writer has stopped after a failed write, keeps the mark of what was
    /// shown (`shown`) alone: the last word the database takes. The mark stands at or
    /// before the last batch applied (nothing after it was handed to the program), so it
    /// claims nothing the database lacks.
    pub(super) fn keep_mark_after_stop(&mut self, shown: ShownPoint) -> Result<(), String> {
        if !self.gone {
            return Err("the writer is still running".into());
        }
        self.batches = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut d = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        d.store
            .apply_shown(&[], Some(shown))
            .map_err(|e| e.to_string())
    }

    /// The database, once every batch handed over is applied.
    pub(super) async fn settled(&mut self) -> Result<MutexGuard<'_, Disk>, WriterGone> {
        while self.in_flight().is_some() {
            self.next_applied().await?;
        }
        if self.gone {
            return Err(WriterGone);
        }
        Ok(self.disk.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Writer {
    /// Closes the writer's channel and waits for it to write every batch handed over
    /// but none after a failed one (the node task ends after what it sent, as a crash
    /// after those writes would), so
    /// the database is closed and its lock released when the node task ends.
    fn drop(&mut self) {
        self.batches = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer thread: applies batches as they come, every batch already waiting joined
/// into one transaction, and says how far it got. A failed transaction (nothing of it
/// kept) is its last: it says so and stops, so no later batch is ever kept after a
/// lost one.
fn write_batches(
    batches: &std_mpsc::Receiver<Batch>,
    applied: &mpsc::UnboundedSender<Applied>,
    disk: &Mutex<Disk>,
) {
    while let Ok(first) = batches.recv() {
        let mut upto = first.number;
        let mut writes = first.writes;
        let mut shown = first.shown;
        while let Ok(more) = batches.try_recv() {
            upto = more.number;
            writes.extend(more.writes);
            shown = more.shown.or(shown);
        }
        let error = {
            let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
            match d.store.apply_shown(&writes, shown) {
                Ok(()) => {
                    d.runs.note(&writes);
                    None
                }
                Err(e) => Some(e.to_string()),
            }
        };
        let failed = error.is_some();
        if applied.send(Applied { upto, error }).is_err() || failed {
            return;
        }
    }
}

/// What a drain produced while a batch was in flight: it leaves once that batch is on
/// disk, in the order produced.
pub(super) enum Owed {
    /// A sealed datagram for `to`.
    Datagram(SocketAddr, Vec<u8>),
    /// An output for the program.
    Output(Output),
}

/// Outputs that may wait for the writer at once; past it the node takes no input.
pub(super) const MAX_HELD: usize = 4096;

/// Outputs waiting for their batch, oldest first.
#[derive(Default)]
pub(super) struct Held {
    queue: VecDeque<(u64, Owed)>,
}

impl Held {
    /// Whether nothing waits.
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether [`MAX_HELD`] outputs wait: the loop then takes no input until the writer
    /// catches up, as the kernel's receive buffer would hold it back before.
    pub(super) fn is_full(&self) -> bool {
        self.queue.len() >= MAX_HELD
    }

    /// Keeps `owed` until batch `upto` is applied.
    pub(super) fn push(&mut self, upto: u64, owed: Owed) {
        self.queue.push_back((upto, owed));
    }

    /// The oldest output whose batch is applied (`durable` batches are).
    pub(super) fn pop_ready(&mut self, durable: u64) -> Option<Owed> {
        match self.queue.front() {
            Some((upto, _)) if *upto <= durable => self.queue.pop_front().map(|(_, o)| o),
            _ => None,
        }
    }

    /// The batch the newest waiting output waits for.
    pub(super) fn last_batch(&self) -> Option<u64> {
        self.queue.back().map(|(b, _)| *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Seq;
    use crate::store::tests::{KEY, entry, scratch};

    fn say(n: u32) -> Owed {
        Owed::Output(Output::Say(vec![n.to_string()]))
    }

    fn said(o: Owed) -> String {
        match o {
            Owed::Output(Output::Say(l)) => l.join(""),
            _ => "datagram".into(),
        }
    }

    fn delivered(seq: u64) -> Vec<Write> {
        vec![Write::Delivered(entry(seq, &format!("m{seq}")))]
    }

    #[test]
    fn held_outputs_leave_in_order_once_their_batch_is_applied() {
        let mut held = Held::default();
        held.push(1, say(1));
        held.push(1, Owed::Datagram("127.0.0.1:1".parse().unwrap(), vec![1]));
        held.push(2, say(2));
        assert!(held.pop_ready(0).is_none(), "nothing applied yet");
        assert_eq!(held.pop_ready(1).map(said).as_deref(), Some("1"));
        assert_eq!(held.pop_ready(1).map(said).as_deref(), Some("datagram"));
        assert!(held.pop_ready(1).is_none(), "batch 2 is not applied");
        assert_eq!(held.last_batch(), Some(2));
        assert_eq!(held.pop_ready(5).map(said).as_deref(), Some("2"));
        assert!(held.is_empty());
    }

    /// Reads wait for every batch handed over; batches that queued while the writer was
    /// busy go to disk together; dropping the writer closes the database.
    #[tokio::test]
    async fn batches_queued_behind_a_busy_writer_share_a_transaction() {
        let dir = scratch("writer");
        let mut w = Writer::start(Store::open(&dir, &KEY).unwrap()).unwrap();
        assert_eq!(w.in_flight(), None);
        w.hand(Vec::new());
        assert_eq!(w.in_flight(), None, "an empty batch is not handed over");
        let busy = w.disk.clone();
        let lock = busy.lock().unwrap();
        for seq in 1..=5 {
            w.hand(delivered(seq));
        }
        assert_eq!(w.in_flight(), Some(5));
        drop(lock);
        let mut words = 0;
        while w.durable() < 5 {
            assert_eq!(w.next_applied().await, Ok(()), "no write failed");
            words += 1;
        }
        // The writer took batch 1 alone at most, then found the rest waiting.
        assert!(words <= 2, "5 batches took {words} transactions");
        w.hand(delivered(6));
        let disk = w.settled().await.unwrap();
        let shown = disk.store.history(10, None).unwrap();
        let seqs: Vec<u64> = shown.iter().map(|e| e.seq.0).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        drop(disk);
        drop(busy);
        drop(w);
        let reopened = Store::open(&dir, &KEY);
        assert!(reopened.is_ok(), "database still held: {reopened:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn room_mark(seq: u64) -> ShownPoint {
        ShownPoint {
            room: Seq(seq),
            direct_row: 0,
        }
    }

    /// The mark of what was printed, handed alone, holds nothing back (outputs wait for no
    /// batch of its own), and is on disk once the writer has taken it.
    #[tokio::test]
    async fn a_mark_alone_holds_nothing_back() {
        let dir = scratch("writer-mark");
        let mut w = Writer::start(Store::open(&dir, &KEY).unwrap()).unwrap();
        w.hand(delivered(1));
        drop(w.settled().await.unwrap());
        w.hand_shown(Vec::new(), Some(room_mark(1)));
        assert_eq!(w.in_flight(), None, "nothing waits for the mark");
        w.hand_shown(delivered(2), Some(room_mark(2)));
        assert_eq!(w.in_flight(), Some(2));
        let disk = w.settled().await.unwrap();
        assert_eq!(disk.store.shown_point().unwrap(), Some(Seq(2)));
        drop(disk);
        drop(w);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A failed write stops the writer: the batch is not counted as applied, nor is any
    /// batch after it (never written, although the disk works again), and the error is
    /// kept to tell the user.
    #[tokio::test]
    async fn a_failed_write_is_the_writers_last() {
        let dir = scratch("writer-failed");
        let mut w = Writer::start(Store::open(&dir, &KEY).unwrap()).unwrap();
        w.hand(delivered(1));
        assert_eq!(w.next_applied().await, Ok(()));
        assert_eq!(w.failure(), None);
        let busy = w.disk.clone();
        {
            // Both batches are handed over while the writer waits for the lock.
            let lock = busy.lock().unwrap();
            lock.store.refuse_writes();
            w.hand(delivered(2));
            w.hand(delivered(3));
        }
        assert_eq!(w.next_applied().await, Err(WriterGone));
        assert_eq!(w.durable(), 1, "batches 2 and 3 are not on disk");
        let why = w.failure().expect("the error kept");
        assert!(why.contains("readonly"), "{why}");
        assert_eq!(w.poll_applied(), Err(WriterGone));
        assert!(w.settled().await.is_err());
        w.hand(delivered(4));
        assert_eq!(w.durable(), 1);
        drop(w);
        drop(busy);
        let store = Store::open(&dir, &KEY).unwrap();
        let seqs: Vec<u64> = store
            .history(10, None)
            .unwrap()
            .iter()
            .map(|e| e.seq.0)
            .collect();
        assert_eq!(seqs, [1], "nothing after the failed batch was written");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A writer that stopped is seen as stopped, and a batch it never took is never
    /// counted as applied.
    #[tokio::test]
    async fn a_stopped_writer_is_never_taken_for_a_durable_one() {
        let dir = scratch("writer-gone");
        let mut w = Writer::start(Store::open(&dir, &KEY).unwrap()).unwrap();
        w.hand(delivered(1));
        assert_eq!(w.next_applied().await, Ok(()));
        // Stop the thread as a panic would: its channels close.
        w.batches = None;
        w.thread.take().unwrap().join().unwrap();
        w.hand(delivered(2));
        assert_eq!(w.in_flight(), Some(2), "batch 2 still waits");
        assert_eq!(w.poll_applied(), Err(WriterGone));
        assert_eq!(w.next_applied().await, Err(WriterGone));
        assert!(w.settled().await.is_err());
        assert_eq!(w.durable(), 1, "batch 2 is not on disk");
        drop(w);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
