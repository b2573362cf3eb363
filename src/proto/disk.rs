//! Reads of the room log on the driver's database: how a node answers a fetch for room
//! messages older than its in-memory history.
//!
//! The core never touches a disk. A node with [`NodeConfig::persist`](super::NodeConfig)
//! that is asked for room messages its memory no longer holds queues a [`ReadRange`]; the
//! driver takes it with [`Node::poll_read`](super::Node::poll_read), reads the rows and
//! hands them back with [`Node::handle_read`](super::Node::handle_read), which sends them.
//! [`read_run`] says what a database holding a given log answers: the driver's SQLite
//! store implements it with queries, the simulator on its model of a disk.

use crate::ids::Seq;
use crate::wire::ChatEntry;
use std::net::SocketAddr;

/// A range of room messages a node asks its driver to read from its database, for a
/// member that asked for them. Hand it back, with what was read, to
/// [`Node::handle_read`](super::Node::handle_read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRange {
    /// The first number wanted.
    pub from: Seq,
    /// The last number wanted.
    pub to: Seq,
    /// At most this many entries.
    pub max: usize,
    /// The member that asked.
    pub(crate) requester: SocketAddr,
}

/// What a database whose room log holds `log` (entries in the order they were shown, as
/// written) answers to `read`: the entries of the current numbering (the run of rising
/// numbers at the end of the log, which a restart restores; see `Room::restore`) from the
/// first one numbered `read.from` or later, up to `read.to`, oldest first, stopping
/// before the first number missing, at most `read.max` of them.
pub fn read_run(log: &[ChatEntry], read: &ReadRange) -> Vec<ChatEntry> {
    let mut start = log.len();
    while start > 1 && log[start - 2].seq < log[start - 1].seq {
        start -= 1;
    }
    let run = &log[start.saturating_sub(1)..];
    let first = run.partition_point(|e| e.seq < read.from);
    let mut out: Vec<ChatEntry> = Vec::new();
    for e in &run[first..] {
        let follows = out.last().is_none_or(|p| p.seq.next() == e.seq);
        if e.seq > read.to || !follows || out.len() >= read.max {
            break;
        }
        out.push(e.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Lamport, NodeId, OriginSeq, WallMillis};

    fn e(seq: u64) -> ChatEntry {
        ChatEntry {
            seq: Seq(seq),
            origin: NodeId(1),
            origin_seq: OriginSeq(seq),
            name: "a".into(),
            lamport: Lamport(seq),
            sent_at: WallMillis(0),
            text: format!("m{seq}"),
            term: 0,
            proof: Default::default(),
        }
    }

    fn read(from: u64, to: u64, max: usize) -> ReadRange {
        ReadRange {
            from: Seq(from),
            to: Seq(to),
            max,
            requester: SocketAddr::from(([127, 0, 0, 1], 1)),
        }
    }

    fn seqs(v: &[ChatEntry]) -> Vec<u64> {
        v.iter().map(|e| e.seq.0).collect()
    }

    #[test]
    fn reads_a_range_of_the_current_numbering_only() {
        // An earlier numbering (1..=10), then the current one from 5 on.
        let log: Vec<ChatEntry> = (1..=10).chain(5..=20).map(e).collect();
        assert_eq!(seqs(&read_run(&log, &read(6, 8, 100))), vec![6, 7, 8]);
        assert!(
            read_run(&log, &read(1, 4, 100)).is_empty(),
            "before the run"
        );
        assert_eq!(seqs(&read_run(&log, &read(1, 6, 100))), vec![5, 6]);
        assert_eq!(seqs(&read_run(&log, &read(18, 99, 2))), vec![18, 19]);
        assert!(read_run(&log, &read(21, 30, 5)).is_empty());
        assert!(read_run(&[], &read(1, 30, 5)).is_empty());
    }

    #[test]
    fn stops_at_the_first_number_missing() {
        let log: Vec<ChatEntry> = (1..=4).chain(9..=12).map(e).collect();
        assert_eq!(seqs(&read_run(&log, &read(2, 12, 100))), vec![2, 3, 4]);
        assert_eq!(
            seqs(&read_run(&log, &read(5, 12, 100))),
            vec![9, 10, 11, 12]
        );
        assert_eq!(seqs(&read_run(&log, &read(5, 8, 100))), Vec::<u64>::new());
    }
}
