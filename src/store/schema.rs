//! The database schema and its migrations.
//!
//! The version lives in SQLite's `user_version`. Each migration takes the schema from
//! one version to the next inside the opening transaction; a database from a newer
//! version of the program is refused, never rewritten.

/// The schema version this program writes.
pub const CURRENT: u32 = 3;

/// Version 1: settings, the member table, delivered room messages in the order they
/// were shown, and the offline-queue replicas.
pub const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE members (
    id    INTEGER PRIMARY KEY,
    entry BLOB NOT NULL
);
CREATE TABLE history (
    row        INTEGER PRIMARY KEY,
    seq        INTEGER NOT NULL,
    origin     INTEGER NOT NULL,
    origin_seq INTEGER NOT NULL,
    name       TEXT NOT NULL,
    lamport    INTEGER NOT NULL,
    sent_at    INTEGER NOT NULL,
    text       TEXT NOT NULL
);
CREATE TABLE kept (
    row       INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    origin    INTEGER NOT NULL,
    dm_id     INTEGER NOT NULL,
    item      BLOB NOT NULL,
    UNIQUE (recipient, origin, dm_id)
);
";

/// Version 2: remember handed-over messages and the private messages shown across
/// restarts (so a stale replica cannot bring one back, nor show one twice), and look
/// kept messages up by recipient.
pub const V2: &str = "
CREATE TABLE handed_over (
    row       INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    origin    INTEGER NOT NULL,
    dm_id     INTEGER NOT NULL
);
CREATE TABLE directs_shown (
    row    INTEGER PRIMARY KEY,
    origin INTEGER NOT NULL,
    dm_id  INTEGER NOT NULL
);
CREATE INDEX kept_by_recipient ON kept (recipient);
";

/// Version 3: the uncommitted copies of room entries this node holds (and acked), each
/// the postcard encoding of its entry, term included.
pub const V3: &str = "
CREATE TABLE held (
    seq   INTEGER PRIMARY KEY,
    entry BLOB NOT NULL
);
";

/// The migrations, in order: `MIGRATIONS[i]` takes version `i` to `i + 1`.
pub const MIGRATIONS: [&str; CURRENT as usize] = [V1, V2, V3];
