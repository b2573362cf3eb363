//! What the program printed, kept beside the node's writes: the last room message and
//! the last private message shown on the terminal, and the private messages taken but
//! not printed when the node last stopped (shown again at the next start).

use super::{Store, StoreError, classify};
use crate::ids::Seq;
use crate::proto::ShownDirect;
use rusqlite::params;

/// What the program printed, kept with the writes: the last room message, and the row of
/// the last private message (rows of `directs_shown` are numbered in the order the
/// messages were shown, one after the other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShownPoint {
    /// The number of the last room message printed.
    pub room: Seq,
    /// The row of the last private message printed (0 before any).
    pub direct_row: u64,
}

/// Private messages taken but not printed when the node last stopped, as
/// [`Store::directs_not_shown`] reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnprintedDirects {
    /// The row the program's mark of private messages starts at: before every row after
    /// the last one printed (so the n-th printed from now on is row `start + n`; a row
    /// that cannot be read back makes the mark fall behind, never run ahead).
    pub start: u64,
    /// The messages, in the order they were shown.
    pub messages: Vec<ShownDirect>,
}

impl Store {
    /// The number of the last room message the user was shown, as last written with
    /// [`Store::apply_shown`] (none if never).
    pub fn shown_point(&self) -> Result<Option<Seq>, StoreError> {
        self.meta_text("shown_point")
            .map(|v| v.and_then(|s| s.parse().ok()).map(Seq))
            .map_err(|e| classify(&self.path, e))
    }

    /// The private messages shown after the last one the program printed, as last marked
    /// with [`Store::apply_shown`]. A database never marked (from before the mark) gives
    /// none, and starts the mark at its last row.
    pub fn directs_not_shown(&self) -> Result<UnprintedDirects, StoreError> {
        let read = || -> rusqlite::Result<UnprintedDirects> {
            let mark = self.meta_text("directs_shown_row")?;
            let last: i64 =
                self.conn
                    .query_row("SELECT IFNULL(MAX(row), 0) FROM directs_shown", [], |r| {
                        r.get(0)
                    })?;
            let last = last as u64;
            let mark = match mark.map(|v| v.parse::<u64>()) {
                None => last,
                Some(Ok(mark)) => mark.min(last),
                // Damaged: from the oldest row kept, so that some may come twice, but
                // none is left unshown.
                Some(Err(e)) => {
                    tracing::warn!(
                        "the mark of private messages printed cannot be read ({e}): every \
                         one kept is shown again"
                    );
                    0
                }
            };
            let mut q = self
                .conn
                .prepare("SELECT row, item FROM directs_shown WHERE row > ?1 ORDER BY row")?;
            let mut rows = 0;
            let mut messages = Vec::new();
            for r in q.query_map(params![mark as i64], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Option<Vec<u8>>>(1)?))
            })? {
                let (row, item) = r?;
                rows += 1;
                match item.map(|b| postcard::from_bytes::<ShownDirect>(&b)) {
                    Some(Ok(m)) => messages.push(m),
                    Some(Err(e)) => tracing::warn!(
                        "private message row {row} cannot be read back ({e}): not shown again"
                    ),
                    None => {}
                }
            }
            // The mark starts before every row after it, read or not: the program moves
            // it one row per message printed, and the rows are numbered one after the
            // other, so it may fall behind (one shown twice), never run ahead.
            Ok(UnprintedDirects {
                start: last - rows,
                messages,
            })
        };
        read().map_err(|e| classify(&self.path, e))
    }
}
