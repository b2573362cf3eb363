//! The node's database: what it keeps across restarts, in SQLite (WAL mode).
//!
//! One file, `ringchat.db`, in the node's data directory, owned by one process at a time
//! (exclusive locking: a second process gets [`StoreError::Locked`]). The driver's writer
//! thread applies the node's [`Write`]s, every batch waiting joined into one transaction,
//! with `synchronous = FULL`, and the driver sends nothing those writes' inputs produced
//! until they are applied: a message is on disk before it is acknowledged.
//!
//! Kept: the room messages this node showed (in the order it showed them), the
//! offline-queue replicas it holds and the ones already handed over, the private
//! messages it showed (so none is shown twice, and one not printed before the node
//! stopped is shown again), what the program printed of both ([`ShownPoint`]), the
//! member table and last known leader, its Lamport time, and which identity the
//! directory belongs to.
//!
//! Read back: everything at a restart ([`Store::load`]), the last messages for `history`
//! ([`Store::history`]), and ranges of the room log for a member catching up
//! ([`RunIndex::read`]).

mod range;
mod schema;
mod shown;
mod write;

pub use range::RunIndex;
pub use schema::CURRENT as SCHEMA_VERSION;
pub use shown::{ShownPoint, UnprintedDirects};

use crate::ids::{DmId, Lamport, NodeId, OriginSeq, Seq, WallMillis};
use crate::proto::{Restored, Write};
use crate::wire::{ChatEntry, Epoch, FILLER_ORIGIN, Member, Provenance, QueuedDm, SignatureBytes};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "ringchat.db";
/// Handed-over messages, and private messages shown, remembered on disk (the oldest are
/// forgotten past it).
const REMEMBERED: i64 = 10_000;

/// Why the database cannot be used. Nothing was changed on disk by a failed open.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The data directory cannot be created or read.
    #[error("cannot use the data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another process holds the database.
    #[error(
        "the database {path} is in use by another process (another ringchat with the same \
         name and port?); stop it or choose another --data-dir"
    )]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The file is not a SQLite database, or it is damaged.
    #[error(
        "the database {path} is damaged or not a ringchat database ({detail}); move it \
         away to start afresh, or choose another --data-dir"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The database was written by a newer version of ringchat; it is left untouched.
    #[error(
        "the database {path} has schema version {found}, newer than this ringchat \
         understands ({supported}); it was left untouched: run a newer ringchat or \
         choose another --data-dir"
    )]
    Newer {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest this program knows.
        supported: u32,
    },
    /// The directory belongs to another identity.
    #[error(
        "the data directory {path} belongs to another identity ({found}); use the \
         identity it was made with, or another --data-dir"
    )]
    OtherIdentity {
        /// The directory.
        path: PathBuf,
        /// The public key recorded there (hex).
        found: String,
    },
    /// Any other database failure.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The thread that writes to the database could not be started.
    #[error("cannot start the thread that writes {path}: {source}")]
    Writer {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The default data directory of `name` at `port`: `$XDG_DATA_HOME/ringchat/<name>-<port>`
/// (or `~/.local/share/ringchat/<name>-<port>`).
pub fn default_dir(name: &str, port: u16) -> PathBuf {
    crate::identity::data_home().join(format!("{name}-{port}"))
}

/// An open database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The numbers with a row in `held` (or that may have one: a superset), so a delivery
    /// deletes a held row only where there is one. A burst's entries are mostly delivered
    /// in the transaction that holds them, and never get a row.
    held_rows: BTreeSet<u64>,
    /// The private messages' rows whose text is dropped, up to this one: printed, they
    /// are never shown again, so their text is not kept (see `write::set_shown`).
    texts_dropped_to: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl crate::proto::HistorySource for Store {
    fn history(&self, count: usize, search: Option<&str>) -> Result<Vec<ChatEntry>, String> {
        Store::history(self, count, search).map_err(|e| e.to_string())
    }
}

impl Store {
    /// Opens (creating if needed) the database in `dir` for the identity `public_key`,
    /// checks it, and brings its schema up to date.
    pub fn open(dir: &Path, public_key: &[u8; 32]) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(|e| classify(&path, e))?;
        let mut store = Store {
            conn,
            path,
            held_rows: BTreeSet::new(),
            texts_dropped_to: 0,
        };
        store.prepare().map_err(|e| classify(&store.path, e))?;
        store.check_version()?;
        store.migrate().map_err(|e| classify(&store.path, e))?;
        store.claim(public_key)?;
        store.held_rows = store.held_numbers().map_err(|e| classify(&store.path, e))?;
        Ok(store)
    }

    fn held_numbers(&self) -> rusqlite::Result<BTreeSet<u64>> {
        let mut q = self.conn.prepare("SELECT seq FROM held")?;
        q.query_map([], |row| row.get::<_, i64>(0).map(|s| s as u64))?
            .collect()
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn prepare(&mut self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(Duration::from_millis(250))?;
        // Exclusive: one process at a time; the lock is taken by the first write below.
        self.conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        let mode: String = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("journal mode is {mode}, not WAL")),
            ));
        }
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(check),
            ));
        }
        Ok(())
    }

    /// The schema version on disk.
    pub fn version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))
            .map_err(|e| classify(&self.path, e))
    }

    fn check_version(&self) -> Result<(), StoreError> {
        let found = self.version()?;
        if found > schema::CURRENT {
            return Err(StoreError::Newer {
                path: self.path.clone(),
                found,
                supported: schema::CURRENT,
            });
        }
        Ok(())
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let found: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for step in &schema::MIGRATIONS[found as usize..] {
            tx.execute_batch(step)?;
        }
        tx.pragma_update(None, "user_version", schema::CURRENT)?;
        tx.commit()
    }

    /// Records the identity on first use; refuses a directory of another identity. This
    /// first write also takes the exclusive lock.
    fn claim(&mut self, public_key: &[u8; 32]) -> Result<(), StoreError> {
        let mine = hex(public_key);
        let tx = self
            .conn
            .transaction()
            .map_err(|e| classify(&self.path, e))?;
        let found: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'identity'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| classify(&self.path, e))?;
        match found {
            Some(f) if f != mine => {
                return Err(StoreError::OtherIdentity {
                    path: self.path.parent().unwrap_or(&self.path).to_path_buf(),
                    found: f,
                });
            }
            _ => {}
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('identity', ?1)",
            params![mine],
        )
        .and_then(|_| tx.commit())
        .map_err(|e| classify(&self.path, e))
    }

    /// Reads what a restarted node needs: the last `history_limit` room messages, the
    /// kept messages, the handed-over ones, the member table, leader and Lamport time.
    pub fn load(&self, history_limit: usize) -> Result<Restored, StoreError> {
        self.load_inner(history_limit)
            .map_err(|e| classify(&self.path, e))
    }

    fn load_inner(&self, history_limit: usize) -> rusqlite::Result<Restored> {
        let mut r = Restored::default();
        let mut q = self.conn.prepare(
            "SELECT seq, origin, origin_seq, name, lamport, sent_at, text, link, seal FROM history \
             ORDER BY row DESC LIMIT ?1",
        )?;
        let limit = i64::try_from(history_limit).unwrap_or(i64::MAX);
        r.history = q
            .query_map(params![limit], entry_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        r.history.reverse();
        let mut q = self.conn.prepare("SELECT item FROM kept ORDER BY row")?;
        for blob in q.query_map([], |row| row.get::<_, Vec<u8>>(0))? {
            if let Ok(item) = postcard::from_bytes::<QueuedDm>(&blob?) {
                r.kept.push(item);
            }
        }
        let mut q = self
            .conn
            .prepare("SELECT recipient, origin, dm_id FROM handed_over ORDER BY row")?;
        r.handed_over = q
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    NodeId(row.get::<_, i64>(1)? as u64),
                    DmId(row.get::<_, i64>(2)? as u64),
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut q = self
            .conn
            .prepare("SELECT origin, dm_id FROM directs_shown ORDER BY row")?;
        r.directs_shown = q
            .query_map([], |row| {
                Ok((
                    NodeId(row.get::<_, i64>(0)? as u64),
                    DmId(row.get::<_, i64>(1)? as u64),
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut q = self.conn.prepare("SELECT entry FROM held ORDER BY seq")?;
        for blob in q.query_map([], |row| row.get::<_, Vec<u8>>(0))? {
            if let Ok(e) = postcard::from_bytes::<ChatEntry>(&blob?) {
                r.held.push(e);
            }
        }
        let mut q = self.conn.prepare("SELECT entry FROM members ORDER BY id")?;
        for blob in q.query_map([], |row| row.get::<_, Vec<u8>>(0))? {
            if let Ok(m) = postcard::from_bytes::<Member>(&blob?) {
                r.members.push(m);
            }
        }
        let meta = |key: &str| -> rusqlite::Result<Option<u64>> {
            self.conn
                .query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    params![key],
                    |row| row.get::<_, String>(0),
                )
                .optional()
                .map(|v| v.and_then(|s| s.parse().ok()))
        };
        r.lamport = Lamport(meta("lamport")?.unwrap_or(0));
        let voters: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'voters'", [], |row| {
                row.get(0)
            })
            .optional()?;
        r.voters = voters.and_then(|v| {
            let mut lines = v.split('\n');
            let at = Seq(lines.next()?.parse().ok()?);
            Some((
                at,
                lines.filter(|l| !l.is_empty()).map(String::from).collect(),
            ))
        });
        r.delivery_point = self.delivery_point()?;
        if let (Some(term), Some(leader)) = (meta("epoch_term")?, meta("epoch_leader")?) {
            r.epoch = Some(Epoch {
                term,
                leader: NodeId(leader),
            });
        }
        Ok(r)
    }

    /// The value of `key` in the settings table, as written.
    fn meta_text(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
    }

    /// The last delivery point written, if no room message was written after it.
    fn delivery_point(&self) -> rusqlite::Result<Option<Seq>> {
        let written = self.meta_text("delivery_point")?;
        let Some((seq, row)) = written.as_deref().and_then(|v| v.split_once(' ')) else {
            return Ok(None);
        };
        let last: i64 =
            self.conn
                .query_row("SELECT IFNULL(MAX(row), 0) FROM history", [], |r| r.get(0))?;
        Ok(match (seq.parse::<u64>(), row.parse::<i64>()) {
            (Ok(seq), Ok(row)) if row == last => Some(Seq(seq)),
            _ => None,
        })
    }

    /// [`Store::apply`], and, if given, what the program printed ([`ShownPoint`]), in
    /// the same transaction.
    pub fn apply_shown(
        &mut self,
        writes: &[Write],
        shown: Option<ShownPoint>,
    ) -> Result<(), StoreError> {
        if writes.is_empty() && shown.is_none() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction()
            .map_err(|e| classify(&self.path, e))?;
        let changed =
            write::apply_all(&tx, &self.held_rows, writes).map_err(|e| classify(&self.path, e))?;
        if let Some(shown) = shown {
            write::set_shown(&tx, shown, self.texts_dropped_to)
                .map_err(|e| classify(&self.path, e))?;
        }
        tx.commit().map_err(|e| classify(&self.path, e))?;
        self.note_held(changed);
        if let Some(shown) = shown {
            self.texts_dropped_to = self.texts_dropped_to.max(shown.direct_row);
        }
        Ok(())
    }

    /// Makes `writes` durable, all or nothing, before returning.
    pub fn apply(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        self.apply_shown(writes, None)
    }

    /// Takes in which numbers gained or lost a held row in a committed transaction (only
    /// what is on disk changes the set: a failed commit rolled every row back).
    fn note_held(&mut self, changed: impl IntoIterator<Item = (u64, bool)>) {
        for (seq, held) in changed {
            if held {
                self.held_rows.insert(seq);
            } else {
                self.held_rows.remove(&seq);
            }
        }
    }

    /// From now on every write fails (as on a full or broken disk), for tests of what a
    /// failed write does.
    #[cfg(test)]
    pub(crate) fn refuse_writes(&self) {
        self.conn
            .pragma_update(None, "query_only", "ON")
            .expect("query_only");
    }

    /// The last `count` room messages shown here (fillers left out), oldest first; with
    /// `search`, only those whose text or sender contains it (ASCII case ignored).
    pub fn history(
        &self,
        count: usize,
        search: Option<&str>,
    ) -> Result<Vec<ChatEntry>, StoreError> {
        let limit = i64::try_from(count).unwrap_or(i64::MAX);
        // Without a search word the pattern matches everything.
        let pattern = format!("%{}%", escape_like(search.unwrap_or_default()));
        let mut entries = self
            .conn
            .prepare(
                "SELECT seq, origin, origin_seq, name, lamport, sent_at, text, link, seal FROM history \
                 WHERE origin != ?1 AND (text LIKE ?2 ESCAPE '\\' OR name LIKE ?2 ESCAPE '\\') \
                 ORDER BY row DESC LIMIT ?3",
            )
            .and_then(|mut q| {
                q.query_map(
                    params![FILLER_ORIGIN.0 as i64, pattern, limit],
                    entry_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| classify(&self.path, e))?;
        entries.reverse();
        Ok(entries)
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ChatEntry> {
    Ok(ChatEntry {
        seq: Seq(row.get::<_, i64>(0)? as u64),
        origin: NodeId(row.get::<_, i64>(1)? as u64),
        origin_seq: OriginSeq(row.get::<_, i64>(2)? as u64),
        name: row.get(3)?,
        lamport: Lamport(row.get::<_, i64>(4)? as u64),
        sent_at: WallMillis(row.get::<_, i64>(5)? as u64),
        text: row.get(6)?,
        term: 0,
        proof: Provenance {
            link: row
                .get::<_, Option<Vec<u8>>>(7)?
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()),
            seal: row
                .get::<_, Option<Vec<u8>>>(8)?
                .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
                .map(|b| Box::new(SignatureBytes(b))),
        },
    })
}

/// Turns SQLite's error into one that says what to do.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked { path },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path,
            detail: e.to_string(),
        },
        _ => StoreError::Sqlite { path, source: e },
    }
}

#[cfg(test)]
pub(crate) mod tests;
