//! The write path: one batch of [`Write`]s applied inside a transaction, with the
//! statements a burst runs per message prepared once per batch, and the held rows it
//! changes tracked so a delivery deletes a held row only where there is one.

use super::{REMEMBERED, ShownPoint};
use crate::proto::Write;
use rusqlite::{CachedStatement, Transaction, params};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Applies `writes` in `tx`, given `held_rows`, the numbers with a held row before it
/// (or a superset of them). Returns the numbers it gave a held row (`true`) or deleted
/// one of (`false`), for the caller to apply to its set once `tx` commits.
pub(super) fn apply_all(
    tx: &Transaction<'_>,
    held_rows: &BTreeSet<u64>,
    writes: &[Write],
) -> rusqlite::Result<BTreeMap<u64, bool>> {
    let delivered_later = delivered_later(writes);
    let mut rows = HeldRows {
        known: held_rows,
        changed: BTreeMap::new(),
    };
    let mut hot = Hot::default();
    for (i, w) in writes.iter().enumerate() {
        // A copy held and delivered within one transaction never needs its held row.
        if let Write::Held(e) = w
            && delivered_later.get(&e.seq.0).is_some_and(|&j| j > i)
        {
            continue;
        }
        apply_one(tx, &mut hot, &mut rows, w)?;
    }
    Ok(rows.changed)
}

/// For each number delivered in `writes`, where it is delivered last (empty if nothing
/// is held in them: then no held row is skipped).
fn delivered_later(writes: &[Write]) -> HashMap<u64, usize> {
    if !writes.iter().any(|w| matches!(w, Write::Held(_))) {
        return Default::default();
    }
    let mut last = HashMap::new();
    for (i, w) in writes.iter().enumerate() {
        if let Write::Delivered(e) = w {
            last.insert(e.seq.0, i);
        }
    }
    last
}

fn blob<T: serde::Serialize>(v: &T) -> rusqlite::Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Writes what the user was shown: the number of the last room message, and the row of
/// the last private message. The private messages printed (rows after `dropped_to` up to
/// that one) keep their ids but no longer their text: they are never shown again.
pub(super) fn set_shown(
    tx: &Transaction<'_>,
    shown: ShownPoint,
    dropped_to: u64,
) -> rusqlite::Result<()> {
    set_meta(tx, "shown_point", shown.room.0)?;
    set_meta(tx, "directs_shown_row", shown.direct_row)?;
    if shown.direct_row > dropped_to {
        tx.execute(
            "UPDATE directs_shown SET item = NULL WHERE row > ?1 AND row <= ?2",
            params![dropped_to as i64, shown.direct_row as i64],
        )?;
    }
    Ok(())
}

fn set_meta(tx: &Transaction<'_>, key: &str, value: impl ToString) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![key, value.to_string()],
    )
    .map(drop)
}

/// The statements a burst runs once per message, prepared once per transaction.
#[derive(Default)]
struct Hot<'t> {
    history: Option<CachedStatement<'t>>,
    unhold: Option<CachedStatement<'t>>,
    hold: Option<CachedStatement<'t>>,
}

/// The held rows as a transaction changes them: the set from before it, and the numbers
/// it gave a row (`true`) or deleted one of (`false`), the last change of each.
struct HeldRows<'s> {
    known: &'s BTreeSet<u64>,
    changed: BTreeMap<u64, bool>,
}

impl HeldRows<'_> {
    /// Whether `seq` may have a held row now.
    fn may_hold(&self, seq: u64) -> bool {
        self.changed
            .get(&seq)
            .copied()
            .unwrap_or_else(|| self.known.contains(&seq))
    }
}

/// `slot`'s statement, prepared from `sql` the first time.
fn hot<'a, 't>(
    tx: &'t Transaction<'_>,
    slot: &'a mut Option<CachedStatement<'t>>,
    sql: &str,
) -> rusqlite::Result<&'a mut CachedStatement<'t>> {
    if slot.is_none() {
        *slot = Some(tx.prepare_cached(sql)?);
    }
    Ok(slot.as_mut().expect("prepared just above"))
}

fn apply_one<'t>(
    tx: &'t Transaction<'_>,
    hot_: &mut Hot<'t>,
    rows: &mut HeldRows<'_>,
    w: &Write,
) -> rusqlite::Result<()> {
    match w {
        Write::Delivered(e) => {
            hot(
                tx,
                &mut hot_.history,
                "INSERT INTO history \
                 (seq, origin, origin_seq, name, lamport, sent_at, text, link, seal) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                e.seq.0 as i64,
                e.origin.0 as i64,
                e.origin_seq.0 as i64,
                e.name,
                e.lamport.0 as i64,
                e.sent_at.0 as i64,
                e.text,
                e.proof.link.map(|l| l.to_vec()),
                e.proof.seal.as_ref().map(|s| s.0.to_vec())
            ])?;
            if rows.may_hold(e.seq.0) {
                hot(tx, &mut hot_.unhold, "DELETE FROM held WHERE seq = ?1")?
                    .execute(params![e.seq.0 as i64])?;
                rows.changed.insert(e.seq.0, false);
            }
        }
        Write::Held(e) => {
            hot(
                tx,
                &mut hot_.hold,
                "INSERT OR REPLACE INTO held (seq, entry) VALUES (?1, ?2)",
            )?
            .execute(params![e.seq.0 as i64, blob(e)?])?;
            rows.changed.insert(e.seq.0, true);
        }
        Write::Kept(item) => {
            tx.execute(
                "INSERT OR IGNORE INTO kept (recipient, origin, dm_id, item) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    item.recipient(),
                    item.origin.0 as i64,
                    item.dm.id.0 as i64,
                    blob(item)?
                ],
            )?;
        }
        Write::HandedOver { to, origin, id } => {
            tx.execute(
                "DELETE FROM kept WHERE recipient = ?1 AND origin = ?2 AND dm_id = ?3",
                params![to, origin.0 as i64, id.0 as i64],
            )?;
            tx.execute(
                "INSERT INTO handed_over (recipient, origin, dm_id) VALUES (?1, ?2, ?3)",
                params![to, origin.0 as i64, id.0 as i64],
            )?;
            tx.execute(
                "DELETE FROM handed_over WHERE row <= (SELECT MAX(row) FROM handed_over) - ?1",
                params![REMEMBERED],
            )?;
        }
        Write::Clock(lamport) => set_meta(tx, "lamport", lamport.0)?,
        Write::DirectShown {
            origin,
            id,
            message,
        } => {
            tx.execute(
                "INSERT INTO directs_shown (origin, dm_id, item) VALUES (?1, ?2, ?3)",
                params![origin.0 as i64, id.0 as i64, blob(message)?],
            )?;
            tx.execute(
                "DELETE FROM directs_shown WHERE row <= (SELECT MAX(row) FROM directs_shown) - ?1",
                params![REMEMBERED],
            )?;
        }
        Write::Room {
            members,
            epoch,
            lamport,
        } => {
            tx.execute("DELETE FROM members", [])?;
            for m in members {
                tx.execute(
                    "INSERT OR REPLACE INTO members (id, entry) VALUES (?1, ?2)",
                    params![m.id.0 as i64, blob(m)?],
                )?;
            }
            if let Some(e) = epoch {
                set_meta(tx, "epoch_term", e.term)?;
                set_meta(tx, "epoch_leader", e.leader.0)?;
            }
            set_meta(tx, "lamport", lamport.0)?;
        }
        Write::DeliveryPoint(seq) => {
            // With the last history row at the time: a later row means a delivery since.
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('delivery_point', \
                 ?1 || ' ' || (SELECT IFNULL(MAX(row), 0) FROM history))",
                params![seq.0 as i64],
            )?;
        }
        Write::Voters { voters, at } => {
            // "at" first, then the names (names never contain a newline).
            set_meta(tx, "voters", format!("{}\n{}", at.0, voters.join("\n")))?;
        }
    }
    Ok(())
}
