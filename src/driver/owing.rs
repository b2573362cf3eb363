//! What the node task owes, and when it may go: the writes of each burst handed to the
//! database's writer ([`persist`]), and everything produced after them (datagrams,
//! events, lines) sent at once or kept in order until those writes are on disk ([`owe`],
//! [`pay_ready`], [`settle`]); reads of the database once it holds every write handed
//! over ([`serve_reads`]); and what the user is told when writes fail or the writer stops.

use super::persist::{self, Owed, Writer, WriterGone};
use super::{Io, Output};
use crate::proto::Node;
use std::time::Instant;
use tracing::warn;

/// Hands the node's pending changes to the database's writer; without a database they
/// are dropped (the node keeps nothing).
pub(super) fn persist(disk: &mut Option<Writer>, node: &mut Node) {
    let writes: Vec<crate::proto::Write> = std::iter::from_fn(|| node.poll_write()).collect();
    if let Some(w) = disk.as_mut() {
        w.hand(writes);
    }
}

/// Reads from the database what the node asked for to answer members' fetches (once
/// every write handed over is on disk), and hands it back.
pub(super) async fn serve_reads(io: &mut Io, node: &mut Node) {
    let reads: Vec<_> = std::iter::from_fn(|| node.poll_read()).collect();
    if reads.is_empty() {
        return;
    }
    let errors = {
        let settled = match io.disk.as_mut() {
            Some(w) => w
                .settled()
                .await
                .map_err(|_| "the database's writer stopped"),
            None => Err("no database"),
        };
        match settled {
            Ok((mut disk, errors)) => {
                let persist::Disk { store, runs } = &mut *disk;
                for read in reads {
                    let rows = runs.read(store, &read).map_err(|e| e.to_string());
                    node.handle_read(Instant::now(), read, rows);
                }
                errors
            }
            Err(why) => {
                for read in reads {
                    node.handle_read(Instant::now(), read, Err(why.to_string()));
                }
                Vec::new()
            }
        }
    };
    not_kept(io, node, errors).await;
}

/// Tells the user (and the log) that writes were not kept on disk, after what waited
/// for earlier writes: the node goes on, and what it keeps from then on may be lost on
/// a crash.
pub(super) async fn not_kept(io: &mut Io, node: &Node, errors: Vec<String>) {
    if errors.is_empty() {
        return;
    }
    pay_ready(io, node).await;
    tell_not_kept(io, node, errors);
}

/// Says each of `errors` (writes not kept on disk) to the user and the log.
pub(super) fn tell_not_kept(io: &Io, node: &Node, errors: Vec<String>) {
    for error in errors {
        warn!(lamport = node.lamport().0, "not kept on disk: {error}");
        let line = format!("error: not kept on disk: {error}");
        let _ = io.events.send(Output::Say(vec![line]));
    }
}

/// The database's writer stopped: the node stops too, with nothing it owed sent (its
/// acks would claim copies that are on no disk), and says why.
pub(super) fn writer_gone(io: &mut Io, node: &Node) {
    if io.stopping {
        return;
    }
    io.stopping = true;
    warn!(lamport = node.lamport().0, "the database's writer stopped");
    let line = "error: the database's writer stopped: nothing more can be kept on disk, \
                so this node stops (start it again to rejoin)";
    let _ = io.events.send(Output::Say(vec![line.to_string()]));
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
            let _ = io.events.send(out);
        }
    }
}

/// Sends what waited for writes now on disk (taking in what the writer said meanwhile).
pub(super) async fn pay_ready(io: &mut Io, node: &Node) {
    let mut errors = Vec::new();
    let durable = match io.disk.as_mut().map(Writer::poll_applied) {
        None => u64::MAX,
        Some(Ok(e)) => {
            errors = e;
            io.disk.as_ref().map_or(u64::MAX, Writer::durable)
        }
        Some(Err(WriterGone)) => {
            writer_gone(io, node);
            return;
        }
    };
    while let Some(owed) = io.held.pop_ready(durable) {
        pay(io, node, owed).await;
    }
    tell_not_kept(io, node, errors);
}

/// The writer's next word (never, without a database).
pub(super) async fn next_applied(disk: &mut Option<Writer>) -> Result<Option<String>, WriterGone> {
    match disk.as_mut() {
        Some(w) => w.next_applied().await,
        None => std::future::pending().await,
    }
}

/// Waits until every write handed over is on disk, and sends everything that waited.
pub(super) async fn settle(io: &mut Io, node: &Node) {
    let settled = match io.disk.as_mut() {
        None => Ok(Vec::new()),
        Some(w) => w.settled().await.map(|(_, errors)| errors),
    };
    match settled {
        Ok(errors) => not_kept(io, node, errors).await,
        Err(WriterGone) => {
            writer_gone(io, node);
            return;
        }
    }
    pay_ready(io, node).await;
}
