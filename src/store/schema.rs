//! The database schema and its migrations.
//!
//! The version lives in SQLite's `user_version`. Each migration takes the schema from
//! one version to the next inside the opening transaction; a database from a newer
//! version of the program is refused, never rewritten.

/// The schema version this program writes.
pub const CURRENT: u32 = 5;

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

/// Version 4: each room message keeps its origin's proof (its link in the origin's chain
/// and, on the message that closes a run, the origin's signature; empty for messages from
/// before, which are read as they were and never passed on). Kept private messages are
/// sealed for their recipient from now on: the copies kept in the clear by an earlier
/// version are dropped, as no recipient could check who wrote them. So are the held
/// copies of version 3: they carry no proof, so no member could take them from this one
/// (and the room, whose wire version changed with this, restarts as a whole anyway).
pub const V4: &str = "
ALTER TABLE history ADD COLUMN link BLOB;
ALTER TABLE history ADD COLUMN seal BLOB;
DELETE FROM kept;
DELETE FROM held;
";

/// Version 5: each private message shown keeps what the user is shown of it (the
/// postcard encoding of a `ShownDirect`), so that one taken but not printed before the
/// node stopped is shown again; rows from before have none, and are never shown again.
pub const V5: &str = "
ALTER TABLE directs_shown ADD COLUMN item BLOB;
";

/// The migrations, in order: `MIGRATIONS[i]` takes version `i` to `i + 1`.
pub const MIGRATIONS: [&str; CURRENT as usize] = [V1, V2, V3, V4, V5];
