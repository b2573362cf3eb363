//! Reading a range of the room log back for a fetch ([`crate::proto::ReadRange`]).
//!
//! The history table keeps room messages in the order they were shown, one row each;
//! after a restart into a room with another numbering it holds both numberings, and only
//! the current one, the run of rising numbers at its end, may be served (as
//! [`crate::proto::read_run`] says). The table has no index on the number, so a
//! [`RunIndex`] remembers the row where that run starts: found once by walking back from
//! the last row, and kept up to date from the writes the driver applies. Within the run
//! numbers rise with rows, so the first row of a range is found by bisecting rows.

use super::{Store, StoreError, classify, entry_from_row};
use crate::ids::Seq;
use crate::proto::{ReadRange, Write};
use crate::wire::ChatEntry;
use rusqlite::{OptionalExtension, params};

/// Where the current numbering starts in a database's history table (see the module
/// documentation). Keep one per [`Store`], and tell it every batch of writes applied.
#[derive(Debug, Default)]
pub struct RunIndex {
    /// The first row of the run, once found.
    start: Option<i64>,
    /// The number of the last room message written, as far as seen.
    last: Option<Seq>,
}

impl RunIndex {
    /// Notes writes just applied to the store: a room message numbered at or below the
    /// last one starts a new run, which is looked for again at the next read.
    pub fn note(&mut self, writes: &[Write]) {
        for w in writes {
            if let Write::Delivered(e) = w {
                if self.last.is_some_and(|l| e.seq <= l) {
                    self.start = None;
                }
                self.last = Some(e.seq);
            }
        }
    }

    /// Reads what `read` asks for from `store`: the entries of the current numbering from
    /// the first one numbered `read.from` or later up to `read.to`, oldest first, stopping
    /// before the first number missing, at most `read.max`.
    pub fn read(&mut self, store: &Store, read: &ReadRange) -> Result<Vec<ChatEntry>, StoreError> {
        let start = match self.start {
            Some(row) => row,
            None => {
                let Some((row, last)) = store.run_start().map_err(|e| classify(&store.path, e))?
                else {
                    return Ok(Vec::new());
                };
                self.start = Some(row);
                self.last = Some(last);
                row
            }
        };
        store
            .run_range(start, read)
            .map_err(|e| classify(&store.path, e))
    }
}

impl Store {
    /// The first row of the run of rising numbers at the end of the history table, and
    /// the number of the last row; `None` if the table is empty. Walks back from the end.
    fn run_start(&self) -> rusqlite::Result<Option<(i64, Seq)>> {
        let mut q = self
            .conn
            .prepare("SELECT row, seq FROM history ORDER BY row DESC")?;
        let mut rows = q.query([])?;
        let mut found: Option<(i64, i64)> = None;
        let mut last = None;
        while let Some(r) = rows.next()? {
            let (row, seq): (i64, i64) = (r.get(0)?, r.get(1)?);
            last.get_or_insert(seq);
            match found {
                Some((_, later)) if seq >= later => break,
                _ => found = Some((row, seq)),
            }
        }
        Ok(found
            .zip(last)
            .map(|((row, _), last)| (row, Seq(last as u64))))
    }

    /// The entries `read` asks for among the rows from `start` on, where numbers rise.
    fn run_range(&self, start: i64, read: &ReadRange) -> rusqlite::Result<Vec<ChatEntry>> {
        let first_at = |row: i64| -> rusqlite::Result<Option<(i64, u64)>> {
            self.conn
                .prepare_cached(
                    "SELECT row, seq FROM history WHERE row >= ?1 ORDER BY row LIMIT 1",
                )?
                .query_row(params![row], |r| {
                    Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
                })
                .optional()
        };
        let Some(end) = self
            .conn
            .query_row("SELECT MAX(row) FROM history", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
        else {
            return Ok(Vec::new());
        };
        // The first row at or after `start` numbered `read.from` or later.
        let (mut lo, mut hi) = (start, end + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match first_at(mid)? {
                Some((row, seq)) if seq < read.from.0 => lo = row + 1,
                _ => hi = mid,
            }
        }
        let limit = i64::try_from(read.max).unwrap_or(i64::MAX);
        let mut q = self.conn.prepare_cached(
            "SELECT seq, origin, origin_seq, name, lamport, sent_at, text, link, seal FROM history \
             WHERE row >= ?1 ORDER BY row LIMIT ?2",
        )?;
        let mut out: Vec<ChatEntry> = Vec::new();
        for e in q.query_map(params![lo, limit], entry_from_row)? {
            let e = e?;
            let follows = out.last().is_none_or(|p| p.seq.next() == e.seq);
            if e.seq < read.from || e.seq > read.to || !follows {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Lamport, NodeId, OriginSeq, WallMillis};
    use crate::proto::read_run;
    use std::net::SocketAddr;

    fn entry(seq: u64, run: u64) -> ChatEntry {
        ChatEntry {
            seq: Seq(seq),
            origin: NodeId(9),
            name: "bob".into(),
            origin_seq: OriginSeq(seq + 1000 * run),
            lamport: Lamport(seq),
            sent_at: WallMillis(seq),
            text: format!("run {run} #{seq}"),
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

    /// The store answers as the model says ([`read_run`]), for every range over a log of
    /// two numberings with a skip, as it grows and starts a third numbering.
    #[test]
    fn reads_what_the_model_reads() {
        let dir = std::env::temp_dir().join(format!(
            "ringchat-range-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut store = Store::open(&dir, &[3; 32]).unwrap();
        let mut index = RunIndex::default();
        let mut log: Vec<ChatEntry> = Vec::new();
        let mut write = |store: &mut Store, index: &mut RunIndex, entries: Vec<ChatEntry>| {
            let writes: Vec<Write> = entries.iter().cloned().map(Write::Delivered).collect();
            store.apply(&writes).unwrap();
            index.note(&writes);
            log.extend(entries);
            log.clone()
        };
        let check = |store: &Store, index: &mut RunIndex, log: &[ChatEntry]| {
            for from in 0..=45 {
                for to in [from, from + 3, from + 20, 60] {
                    for max in [1, 4, 100] {
                        let r = read(from, to, max);
                        let got = index.read(store, &r).unwrap();
                        assert_eq!(got, read_run(log, &r), "{from}..={to} max {max}");
                    }
                }
            }
        };
        assert!(index.read(&store, &read(1, 9, 9)).unwrap().is_empty());
        let first: Vec<ChatEntry> = (1..=20).map(|s| entry(s, 1)).collect();
        let log1 = write(&mut store, &mut index, first);
        check(&store, &mut index, &log1);
        // Another numbering from 8, with a skip from 15 to 19.
        let second: Vec<ChatEntry> = (8..=14).chain(19..=30).map(|s| entry(s, 2)).collect();
        let log2 = write(&mut store, &mut index, second);
        check(&store, &mut index, &log2);
        assert_eq!(
            index.read(&store, &read(10, 10, 1)).unwrap()[0].text,
            "run 2 #10"
        );
        // It grows; then a third numbering starts, which a fresh index finds too.
        let log3 = write(
            &mut store,
            &mut index,
            (31..=40).map(|s| entry(s, 2)).collect(),
        );
        check(&store, &mut index, &log3);
        let log4 = write(
            &mut store,
            &mut index,
            (2..=5).map(|s| entry(s, 3)).collect(),
        );
        check(&store, &mut index, &log4);
        check(&store, &mut RunIndex::default(), &log4);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
