//! What the node task owes, and when it may go: the writes of each burst handed to the
//! database's writer ([`persist`]), and everything produced after them (datagrams,
//! events, lines) sent at once or kept in order until those writes are on disk ([`owe`],
//! [`pay_ready`], [`settle`]); reads of the database once it holds every write handed
//! over ([`serve_reads`]); and what the user is told when a write fails or the writer
//! stops (the node stops: [`writer_gone`]).

use super::persist::{self, Owed, Writer, WriterGone};
use super::{Io, Output, shown};
use crate::proto::Node;
use std::time::Instant;
use tracing::warn;

/// Hands the node's pending changes to the database's writer, with the last room
/// message the user was shown if that moved; without a database they are dropped (the
/// node keeps nothing).
pub(super) fn persist(io: &mut Io, node: &mut Node) {
    let writes: Vec<crate::proto::Write> = std::iter::from_fn(|| node.poll_write()).collect();
    if let Some(w) = io.disk.as_mut() {
        w.hand_shown(writes, io.shown_writes.due(&io.shown));
    }
}

/// Reads from the database what the node asked for to answer members' fetches (once
/// every write handed over is on disk), and hands it back.
pub(super) async fn serve_reads(io: &mut Io, node: &mut Node) {
    let reads: Vec<_> = std::iter::from_fn(|| node.poll_read()).collect();
    if reads.is_empty() {
        return;
    }
    let fail = |node: &mut Node, reads: Vec<_>, why: &str| {
        for read in reads {
            node.handle_read(Instant::now(), read, Err(why.to_string()));
        }
    };
    let Some(w) = io.disk.as_mut() else {
        return fail(node, reads, "no database");
    };
    let Ok(mut disk) = w.settled().await else {
        fail(node, reads, "the database's writer stopped");
        return writer_gone(io, node).await;
    };
    let persist::Disk { store, runs } = &mut *disk;
    for read in reads {
        let rows = runs.read(store, &read).map_err(|e| e.to_string());
        node.handle_read(Instant::now(), read, rows);
    }
}

/// The database's writer stopped (a write failed, or the thread panicked): what the
/// batches it did apply cover still goes, then the node stops too, with nothing else it
/// owed sent (its acks would claim copies that are on no disk), and says why. Before it
/// says so, it waits for the program to print what went, and tries once more to keep
/// the mark of what was shown (a write of one row, which a full disk often still takes):
/// otherwise a restart shows those messages again.
pub(super) async fn writer_gone(io: &mut Io, node: &Node) {
    if io.stopping {
        return;
    }
    let durable = io.disk.as_ref().map_or(0, Writer::durable);
    while let Some(owed) = io.held.pop_ready(durable) {
        pay(io, node, owed).await;
    }
    io.stopping = true;
    shown::wait_for_screen(&io.shown, &io.handed).await;
    // Whatever was last handed over may have been in the batch that failed.
    let mark = io.shown.point();
    if let Some(w) = io.disk.as_mut()
        && let Err(e) = w.keep_mark_after_stop(mark)
    {
        warn!(
            lamport = node.lamport().0,
            "the mark of what was shown (room message {}, private message row {}) could not be \
             kept either: {e}",
            mark.room.0,
            mark.direct_row
        );
    }
    let why = io
        .disk
        .as_ref()
        .and_then(Writer::failure)
        .map_or("its writer stopped".to_string(), |e| {
            format!("a write failed: {e}")
        });
    warn!(lamport = node.lamport().0, "the database: {why}; stopping");
    let line = format!(
        "error: the database: {why}. What was not written cannot be acknowledged, so this \
         node stops (fix the disk, then start it again to rejoin and catch up)"
    );
    let _ = io.events.send(Output::Stopped(line));
}

/// Sends `owed` now, or keeps it behind the writes in flight and what already waits.
pub(super) async fn owe(io: &mut Io, node: &Node, owed: Owed) {
    if !io.held.is_empty() {
        pay_ready(io, node).await;
    }
    let wait = io
        .disk
        .as_ref()
        .and_then(Writer::in_flight)
        .or(io.held.last_batch());
    match wait {
        Some(batch) => io.held.push(batch, owed),
        None => pay(io, node, owed).await,
    }
}

/// Sends one output that may go.
async fn pay(io: &mut Io, node: &Node, owed: Owed) {
    match owed {
        Owed::Datagram(to, bytes) => {
            if io.loss.drops() {
                return;
            }
            if let Err(e) = io.socket.send_to(&bytes, to).await {
                warn!(lamport = node.lamport().0, "send to {to} failed: {e}");
            }
        }
        // A closed receiver only means nobody is listening any more.
        Owed::Output(out) => {
            if let Output::Event(ev) = &out {
                io.handed.note(ev);
            }
            let _ = io.events.send(out);
        }
    }
}

/// Sends what waited for writes now on disk (taking in what the writer said meanwhile).
pub(super) async fn pay_ready(io: &mut Io, node: &Node) {
    let durable = match io.disk.as_mut().map(Writer::poll_applied) {
        None => u64::MAX,
        Some(Ok(())) => io.disk.as_ref().map_or(u64::MAX, Writer::durable),
        Some(Err(WriterGone)) => return writer_gone(io, node).await,
    };
    while let Some(owed) = io.held.pop_ready(durable) {
        pay(io, node, owed).await;
    }
}

/// The writer's next word (never, without a database).
pub(super) async fn next_applied(disk: &mut Option<Writer>) -> Result<(), WriterGone> {
    match disk.as_mut() {
        Some(w) => w.next_applied().await,
        None => std::future::pending().await,
    }
}

/// Waits until every write handed over is on disk, and sends everything that waited.
pub(super) async fn settle(io: &mut Io, node: &Node) {
    let settled = match io.disk.as_mut() {
        None => Ok(()),
        Some(w) => w.settled().await.map(drop),
    };
    match settled {
        Ok(()) => pay_ready(io, node).await,
        Err(WriterGone) => writer_gone(io, node).await,
    }
}
