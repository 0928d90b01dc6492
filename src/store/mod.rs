//! SQLite storage: users, profiles, sessions, inquiries and subscriptions, one transaction per turn.
//!
//! The database runs in WAL mode with a busy timeout. Migrations are append-only SQL on
//! `PRAGMA user_version`. A turn loads the session and profile, runs the engine, and saves the new
//! session together with every effect in one transaction, so a crash leaves either all of a turn
//! or none of it.
//!
//! For the Telegram front end the store also keeps the incoming updates (recorded before they are
//! acknowledged, marked done in the turn's transaction) and an outbox of replies to send.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Params, Row, Transaction, params};

use crate::desk::Status;
use crate::engine::{Effect, Inquiry, InquiryKind, Profile, SESSION_VERSION, Session, Step, Timestamp};

mod broadcast;
mod desk;
mod ops;
mod web;

pub use crate::desk::{Event, InquiryRow, RoleGrant};
pub use crate::engine::UserId;
pub use broadcast::{BroadcastRow, Delivered, Delivery, Reminder};
pub use desk::InquiryFilter;
pub use ops::{Checkpointer, Quarantined};
pub use web::{AuditLine, DayCount, InboxQuery, LoginOutcome, WebSession};

/// Append-only: never edit a migration that has shipped, add a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE TABLE profiles (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    lang TEXT NOT NULL,
    country TEXT,
    sector TEXT,
    size TEXT,
    stage TEXT,
    needs TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE inquiries (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    lang TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    matched TEXT NOT NULL,
    confidence REAL NOT NULL,
    answered INTEGER NOT NULL,
    status TEXT NOT NULL,
    topic TEXT,
    country TEXT,
    sector TEXT
);
CREATE INDEX inquiries_by_time ON inquiries (at);
CREATE INDEX inquiries_by_status ON inquiries (status, at);
CREATE TABLE subscriptions (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    active INTEGER NOT NULL,
    topics TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE updates (
    update_id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL,
    payload TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    done_at INTEGER
);
CREATE INDEX updates_pending ON updates (done_at, update_id);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before_ms INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX outbox_by_chat ON outbox (chat_id, id);
ALTER TABLE users ADD COLUMN blocked_at INTEGER;
"#,
    r#"
CREATE TABLE roles (
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    role TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (channel, external_id, role)
);
CREATE TABLE inquiry_events (
    id INTEGER PRIMARY KEY,
    inquiry_id INTEGER NOT NULL REFERENCES inquiries(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT ''
);
CREATE INDEX inquiry_events_by_inquiry ON inquiry_events (inquiry_id, id);
CREATE TABLE handoff_posts (
    chat_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    inquiry_id INTEGER NOT NULL REFERENCES inquiries(id) ON DELETE CASCADE,
    PRIMARY KEY (chat_id, message_id)
);
CREATE TABLE learned_examples (
    id INTEGER PRIMARY KEY,
    entry_id TEXT NOT NULL,
    lang TEXT NOT NULL,
    text TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    UNIQUE (entry_id, lang, text)
);
ALTER TABLE inquiries ADD COLUMN taken_by TEXT;
"#,
    r#"
CREATE TABLE broadcasts (
    id INTEGER PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    call TEXT NOT NULL,
    status TEXT NOT NULL,
    send_at INTEGER,
    report_chat INTEGER,
    report_message INTEGER,
    started_at INTEGER,
    finished_at INTEGER
);
CREATE TABLE deliveries (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    chat_id INTEGER NOT NULL,
    lang TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before_ms INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER,
    PRIMARY KEY (broadcast_id, user_id)
);
CREATE INDEX deliveries_pending ON deliveries (broadcast_id, status, not_before_ms);
CREATE TABLE saved_calls (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    saved_at INTEGER NOT NULL,
    reminded_at INTEGER,
    PRIMARY KEY (user_id, broadcast_id)
);
"#,
    // The sender reads a broadcast's pending deliveries in user order.
    "CREATE INDEX deliveries_queue ON deliveries (broadcast_id, status, user_id);",
    // A user's inquiries (for /forget and its cascade) without reading every inquiry.
    "CREATE INDEX inquiries_by_user ON inquiries (user_id);",
    // Updates that failed every attempt are moved aside, so they block no chat and never come back
    // by themselves; the health check writes its heartbeat.
    r#"
ALTER TABLE updates ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE updates ADD COLUMN retry_requested INTEGER NOT NULL DEFAULT 0;
CREATE TABLE quarantine (
    update_id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL,
    payload TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    quarantined_at INTEGER NOT NULL
);
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
"#,
    // Statuses, kinds and roles are stored as text that the database checks: the tables are rebuilt
    // with CHECK constraints (SQLite cannot add one to a column), keeping every row and index.
    r#"
CREATE TABLE inquiries_checked (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    lang TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('question', 'recommendation', 'handoff')),
    text TEXT NOT NULL,
    matched TEXT NOT NULL,
    confidence REAL NOT NULL,
    answered INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'needs_human', 'answered', 'answered_by_staff', 'resolved')),
    topic TEXT,
    country TEXT,
    sector TEXT,
    taken_by TEXT
);
INSERT INTO inquiries_checked SELECT id, user_id, at, lang, kind, text, matched, confidence, answered, status, topic, country, sector, taken_by FROM inquiries;
DROP TABLE inquiries;
ALTER TABLE inquiries_checked RENAME TO inquiries;
CREATE INDEX inquiries_by_time ON inquiries (at);
CREATE INDEX inquiries_by_status ON inquiries (status, at);
CREATE INDEX inquiries_by_user ON inquiries (user_id);

CREATE TABLE roles_checked (
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('staff', 'agency')),
    granted_by TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (channel, external_id, role)
);
INSERT INTO roles_checked SELECT channel, external_id, role, granted_by, granted_at FROM roles;
DROP TABLE roles;
ALTER TABLE roles_checked RENAME TO roles;

CREATE TABLE broadcasts_checked (
    id INTEGER PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    call TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'done', 'cancelled')),
    send_at INTEGER,
    report_chat INTEGER,
    report_message INTEGER,
    started_at INTEGER,
    finished_at INTEGER
);
INSERT INTO broadcasts_checked SELECT id, created_by, created_at, call, status, send_at, report_chat, report_message, started_at, finished_at FROM broadcasts;
DROP TABLE broadcasts;
ALTER TABLE broadcasts_checked RENAME TO broadcasts;

CREATE TABLE deliveries_checked (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    chat_id INTEGER NOT NULL,
    lang TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'blocked', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before_ms INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER,
    PRIMARY KEY (broadcast_id, user_id)
);
INSERT INTO deliveries_checked SELECT broadcast_id, user_id, chat_id, lang, status, attempts, not_before_ms, sent_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_checked RENAME TO deliveries;
CREATE INDEX deliveries_pending ON deliveries (broadcast_id, status, not_before_ms);
CREATE INDEX deliveries_queue ON deliveries (broadcast_id, status, user_id);
"#,
    // The web desk: one-time sign-in links and sessions (only hashes of their tokens are kept), the
    // audit log of staff actions, full-text search over inquiry texts (kept in step by triggers,
    // also when a user's inquiries go with /forget), and the inbox order as an index. Written to run again safely (a test
    // re-runs the migrations after 7 on a migrated database).
    r#"
CREATE TABLE IF NOT EXISTS web_login_links (
    token_hash TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE TABLE IF NOT EXISTS web_sessions (
    token_hash TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_log_by_time ON audit_log (at);
CREATE VIRTUAL TABLE IF NOT EXISTS inquiries_fts USING fts5(text, content = 'inquiries', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO inquiries_fts (inquiries_fts) VALUES ('rebuild');
CREATE TRIGGER IF NOT EXISTS inquiries_fts_insert AFTER INSERT ON inquiries BEGIN
    INSERT INTO inquiries_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS inquiries_fts_delete AFTER DELETE ON inquiries BEGIN
    INSERT INTO inquiries_fts (inquiries_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER IF NOT EXISTS inquiries_fts_update AFTER UPDATE OF text ON inquiries BEGIN
    INSERT INTO inquiries_fts (inquiries_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO inquiries_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE INDEX IF NOT EXISTS inquiries_inbox ON inquiries ((CASE status WHEN 'needs_human' THEN 0 WHEN 'new' THEN 1 ELSE 2 END), at DESC, id DESC);
-- Covering indexes, so the statistics and the filtered inbox read narrow index entries instead
-- of whole rows scattered over the table (measured with benches/web_load.rs on 100,000 inquiries).
CREATE INDEX IF NOT EXISTS inquiries_stats ON inquiries (at, kind, answered, topic, country, lang);
CREATE INDEX IF NOT EXISTS inquiries_unanswered ON inquiries (at, text) WHERE kind = 'question' AND answered = 0;
CREATE INDEX IF NOT EXISTS inquiries_filters ON inquiries (status, lang, country, kind, at);
"#,
];

/// Whether opening a database may bring an existing one's schema up to date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migrate {
    Yes,
    /// Refuse with [`StoreError::NeedsMigration`]: only `serve` and `migrate` change the schema.
    No,
}

/// Pages of write-ahead log (4 KiB each, so about 16 MiB) before SQLite copies it into the database.
pub const WAL_CHECKPOINT_PAGES: i64 = 4000;
/// With a background [`Checkpointer`], the log is copied by the connection that writes only
/// past this many pages (about 80 MB): a backstop should the checkpointer stop.
pub const WAL_BACKSTOP_PAGES: i64 = 20_000;

/// Inquiry texts are kept up to this many characters.
pub const MAX_STORED_TEXT: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot create the database folder {path}: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("the database has schema version {found}, newer than this program's {known}; upgrade the program")]
    TooNew { found: i64, known: i64 },
    #[error(
        "the database has schema version {found} and this program needs {known}: run `sme-advisor migrate` (or start `sme-advisor serve`, which backs it up and migrates)"
    )]
    NeedsMigration { found: i64, known: i64 },
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("backup failed: {0}")]
    Backup(String),
}

pub struct Store {
    conn: Connection,
}

impl StoreError {
    /// A problem of the storage itself (full or read-only disk, I/O error, lock held elsewhere),
    /// which may pass; not a problem of the data.
    pub fn is_storage(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sql(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, DiskFull | ReadOnly | SystemIoFailure | DatabaseBusy | DatabaseLocked | CannotOpen | OutOfMemory)
            }
            StoreError::Folder { .. } => true,
            _ => false,
        }
    }
}

/// Statements through the connection's cache: each SQL text is parsed once, not on every call.
pub(crate) trait Cached {
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, Migrate::Yes)
    }

    /// Opens the database file; a new database is always created, but an existing one older than
    /// this program is migrated only with [`Migrate::Yes`].
    pub fn open_with(path: &Path, migrate: Migrate) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder { path: parent.display().to_string(), source })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The log is copied into the database (and both synced) every WAL_CHECKPOINT_PAGES pages
        // rather than SQLite's 1000: the same few pages (the update log, the outbox, sessions)
        // change on every turn, so a longer log is copied less often for the same data.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        Store::setup(conn, migrate)
    }

    /// The schema version this program writes.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// The schema version of a database file (0 for a new one) and the version this program writes.
    pub fn schema_version(path: &Path) -> Result<(i64, i64), StoreError> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let version: i64 = conn.row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok((version, MIGRATIONS.len() as i64))
    }

    /// Caps the database file at about `megabytes`; beyond it writes fail with "database or disk
    /// is full", as on a full disk.
    pub fn limit_size(&mut self, megabytes: u64) -> Result<(), StoreError> {
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = (megabytes as i64 * 1024 * 1024 / page_size.max(512)).max(1);
        self.conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        Ok(())
    }

    /// A private database in memory, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::setup(Connection::open_in_memory()?, Migrate::Yes)
    }

    fn setup(mut conn: Connection, migrate: Migrate) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(128);
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew { found: version, known });
        }
        if version > 0 && version < known && migrate == Migrate::No {
            return Err(StoreError::NeedsMigration { found: version, known });
        }
        if version < known {
            // A migration may rebuild a table that others reference (SQLite's way to add a CHECK
            // constraint): foreign keys are off while it runs, and checked before it commits.
            conn.pragma_update(None, "foreign_keys", "OFF")?;
            let tx = conn.transaction()?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", i as i64 + 1)?;
            }
            let broken: i64 = tx.row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
            if broken > 0 {
                return Err(StoreError::Migration(format!("the migration left {broken} broken references; nothing was changed")));
            }
            tx.commit()?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
        }
        Ok(Store { conn })
    }

    /// The internal id for a user of a channel (`telegram`, `terminal`), created on first contact.
    pub fn user_id(&mut self, channel: &str, external_id: &str, now: Timestamp) -> Result<UserId, StoreError> {
        let tx = self.conn.transaction()?;
        let user = ensure_user(&tx, channel, external_id, now)?;
        tx.commit()?;
        Ok(user)
    }

    /// Runs one conversation turn in one transaction: find or create the user, load, decide, save
    /// the session and every effect. `lang` is used for a user seen for the first time.
    pub fn turn(
        &mut self,
        channel: &str,
        external_id: &str,
        lang: &str,
        now: Timestamp,
        decide: impl FnOnce(&Session) -> Step,
    ) -> Result<(UserId, Step), StoreError> {
        let tx = self.conn.transaction()?;
        let user = ensure_user(&tx, channel, external_id, now)?;
        let (session, stored) = load_session(&tx, user, lang)?;
        let step = decide(&session);
        save_turn(&tx, user, &step, stored.as_ref(), now)?;
        tx.commit()?;
        Ok((user, step))
    }

    /// The stored session of a user, as the next turn would see it.
    pub fn session(&mut self, user: UserId, lang: &str) -> Result<Session, StoreError> {
        let tx = self.conn.transaction()?;
        let (session, _) = load_session(&tx, user, lang)?;
        tx.commit()?;
        Ok(session)
    }

    /// Inquiries, newest first.
    pub fn inquiries(&self, limit: usize) -> Result<Vec<InquiryRow>, StoreError> {
        self.query_inquiries(&InquiryFilter::default(), limit)
    }

    /// Records incoming updates durably; a repeated `update_id` is ignored. Returns the new ones.
    pub fn record_updates(&mut self, updates: &[IncomingUpdate], now: Timestamp) -> Result<Vec<i64>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut fresh = Vec::new();
        for u in updates {
            let n = tx.exec(
                "INSERT INTO updates (update_id, chat_id, payload, received_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![u.update_id, u.chat_id, u.payload, now],
            )?;
            if n == 1 {
                fresh.push(u.update_id);
            }
        }
        tx.commit()?;
        Ok(fresh)
    }

    /// Updates recorded but not yet handled, oldest first.
    pub fn pending_updates(&mut self) -> Result<Vec<IncomingUpdate>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT update_id, chat_id, payload FROM updates WHERE done_at IS NULL ORDER BY update_id")?;
        let rows = stmt.query_map([], |r| Ok(IncomingUpdate { update_id: r.get(0)?, chat_id: r.get(1)?, payload: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One pending update, if it is still pending.
    pub fn pending_update(&mut self, update_id: i64) -> Result<Option<IncomingUpdate>, StoreError> {
        Ok(self
            .conn
            .row("SELECT update_id, chat_id, payload FROM updates WHERE update_id = ?1 AND done_at IS NULL", [update_id], |r| {
                Ok(IncomingUpdate { update_id: r.get(0)?, chat_id: r.get(1)?, payload: r.get(2)? })
            })
            .optional()?)
    }

    /// The highest update id ever recorded.
    pub fn last_update_id(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.row("SELECT max(update_id) FROM updates", [], |r| r.get(0))?)
    }

    /// Handles an update as a conversation turn: the turn, its outgoing messages and the update's
    /// completion commit together. `None` when the update was already handled.
    pub fn update_turn(
        &mut self,
        update_id: i64,
        who: (&str, &str),
        lang: &str,
        now: Timestamp,
        decide: impl FnOnce(&Session) -> Step,
        outgoing: impl FnOnce(&TurnRecord) -> Vec<Outgoing>,
    ) -> Result<Option<TurnRecord>, StoreError> {
        let tx = self.conn.transaction()?;
        if !claim_update(&tx, update_id, now)? {
            return Ok(None);
        }
        let user = ensure_user(&tx, who.0, who.1, now)?;
        // Only when set: an UPDATE that changes nothing still writes its page to the log.
        tx.exec("UPDATE users SET blocked_at = NULL WHERE id = ?1 AND blocked_at IS NOT NULL", [user.0])?;
        let (session, stored) = load_session(&tx, user, lang)?;
        let step = decide(&session);
        let inquiries = save_turn(&tx, user, &step, stored.as_ref(), now)?;
        let record = TurnRecord { user, step, inquiries };
        insert_outgoing(&tx, &outgoing(&record), now)?;
        tx.commit()?;
        Ok(Some(record))
    }

    /// Marks an update handled without a turn, queueing any messages it needs.
    pub fn finish_update(&mut self, update_id: i64, outgoing: &[Outgoing], now: Timestamp) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        if !claim_update(&tx, update_id, now)? {
            return Ok(false);
        }
        insert_outgoing(&tx, outgoing, now)?;
        tx.commit()?;
        Ok(true)
    }

    /// Forgets handled updates older than `before`, keeping the newest so repeats are still recognised.
    pub fn prune_updates(&mut self, before: Timestamp) -> Result<usize, StoreError> {
        Ok(self.conn.exec(
            "DELETE FROM updates WHERE done_at IS NOT NULL AND done_at < ?1 AND update_id < (SELECT max(update_id) FROM updates)",
            [before],
        )?)
    }

    /// The first queued message of each chat that may be sent now, oldest chats first, at most
    /// 256 of them.
    pub fn outbox_heads(&mut self, now_ms: i64) -> Result<Vec<OutboxHead>, StoreError> {
        let mut stmt = self.conn.prepare_cached(OUTBOX_HEADS_SQL)?;
        let rows = stmt.query_map(params![now_ms], |r| Ok(OutboxHead { id: r.get(0)?, chat_id: r.get(1)?, attempts: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The oldest queued message of one chat, if it may be sent now.
    pub fn outbox_head_of(&self, chat_id: i64, now_ms: i64) -> Result<Option<OutboxHead>, StoreError> {
        Ok(self
            .conn
            .row("SELECT id, chat_id, attempts, not_before_ms FROM outbox WHERE chat_id = ?1 ORDER BY id LIMIT 1", [chat_id], |r| {
                Ok((OutboxHead { id: r.get(0)?, chat_id: r.get(1)?, attempts: r.get(2)? }, r.get::<_, i64>(3)?))
            })
            .optional()?
            .filter(|(_, not_before)| *not_before <= now_ms)
            .map(|(head, _)| head))
    }

    /// The payload of a queued message, read only when it is about to be sent.
    pub fn outbox_payload(&self, id: i64, now_ms: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .row("SELECT payload FROM outbox WHERE id = ?1 AND not_before_ms <= ?2", params![id, now_ms], |r| r.get(0))
            .optional()?)
    }

    /// Queued messages that may be sent now.
    pub fn outbox_due(&self, now_ms: i64) -> Result<i64, StoreError> {
        Ok(self.conn.row("SELECT count(*) FROM outbox WHERE not_before_ms <= ?1", [now_ms], |r| r.get(0))?)
    }

    pub fn outbox_len(&self) -> Result<i64, StoreError> {
        Ok(self.conn.row("SELECT count(*) FROM outbox", [], |r| r.get(0))?)
    }

    /// Whether a queued message is still there (not yet delivered by someone else).
    pub fn outbox_contains(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self.conn.row("SELECT count(*) > 0 FROM outbox WHERE id = ?1", [id], |r| r.get(0))?)
    }

    /// A message was delivered (or given up on): remove it.
    pub fn outbox_done(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn.exec("DELETE FROM outbox WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Several messages were delivered (or given up on): remove them in one transaction, one
    /// write to the log instead of one per message.
    pub fn outbox_done_many(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        if let [id] = ids {
            return self.outbox_done(*id);
        }
        let tx = self.conn.transaction()?;
        for id in ids {
            tx.exec("DELETE FROM outbox WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A message failed for now: try again no earlier than `not_before_ms`.
    pub fn outbox_retry(&mut self, id: i64, not_before_ms: i64) -> Result<(), StoreError> {
        self.conn.exec("UPDATE outbox SET attempts = attempts + 1, not_before_ms = ?2 WHERE id = ?1", params![id, not_before_ms])?;
        Ok(())
    }

    /// Replaces a queued message, e.g. an edit that must become a new message.
    pub fn outbox_replace(&mut self, id: i64, payload: &str) -> Result<(), StoreError> {
        self.conn.exec("UPDATE outbox SET payload = ?2 WHERE id = ?1", params![id, payload])?;
        Ok(())
    }

    /// The chat blocked the bot: drop what was queued for it and mark the user inactive.
    pub fn chat_blocked(&mut self, channel: &str, chat_id: i64, now: Timestamp) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.exec("DELETE FROM outbox WHERE chat_id = ?1", [chat_id])?;
        tx.exec("UPDATE users SET blocked_at = ?3 WHERE channel = ?1 AND external_id = ?2", params![channel, chat_id.to_string(), now])?;
        tx.exec(
            "UPDATE subscriptions SET active = 0 WHERE user_id = (SELECT id FROM users WHERE channel = ?1 AND external_id = ?2)",
            params![channel, chat_id.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Whether a user of a channel is marked as having blocked the bot.
    pub fn is_blocked(&self, channel: &str, external_id: &str) -> Result<bool, StoreError> {
        let at: Option<Option<i64>> = self
            .conn
            .row("SELECT blocked_at FROM users WHERE channel = ?1 AND external_id = ?2", params![channel, external_id], |r| r.get(0))
            .optional()?;
        Ok(at.flatten().is_some())
    }

    /// How many rows of each table name this user, for privacy checks.
    pub fn rows_for_user(&self, user: UserId) -> Result<i64, StoreError> {
        let mut total = 0;
        for table in ["profiles", "sessions", "inquiries", "subscriptions"] {
            let n: i64 = self.conn.row(&format!("SELECT count(*) FROM {table} WHERE user_id = ?1"), [user.0], |r| r.get(0))?;
            total += n;
        }
        let n: i64 = self.conn.row("SELECT count(*) FROM users WHERE id = ?1", [user.0], |r| r.get(0))?;
        total += n;
        for table in ["inquiry_events", "handoff_posts"] {
            let n: i64 = self.conn.row(
                &format!("SELECT count(*) FROM {table} WHERE inquiry_id IN (SELECT id FROM inquiries WHERE user_id = ?1)"),
                [user.0],
                |r| r.get(0),
            )?;
            total += n;
        }
        Ok(total)
    }

    /// Whether the user has an active subscription, and its topics.
    pub fn subscription(&self, user: UserId) -> Result<Option<(bool, String)>, StoreError> {
        Ok(self
            .conn
            .row("SELECT active, topics FROM subscriptions WHERE user_id = ?1", [user.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }
}

/// What a turn did: who, the engine's step, and the inquiries it logged (kind, id).
#[derive(Clone, Debug)]
pub struct TurnRecord {
    pub user: UserId,
    pub step: Step,
    pub inquiries: Vec<(InquiryKind, i64)>,
}

/// An update as received: its id, the chat it belongs to, and the raw JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingUpdate {
    pub update_id: i64,
    pub chat_id: i64,
    pub payload: String,
}

/// A message to queue for a chat; the payload is the front end's own format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub chat_id: i64,
    pub payload: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxHead {
    pub id: i64,
    pub chat_id: i64,
    pub attempts: i64,
}

/// Marks an update done, dropping its payload (it may hold message text); false if it already was.
/// A column stored as one of an enum's names; any other text is an error, not a default.
pub(crate) fn named<T>(r: &Row<'_>, index: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = r.get(index)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, format!("unknown value `{text}`").into())
    })
}

/// The sender's read of every chat's first due message. The limit is written into the statement,
/// not bound: with a bound LIMIT on a join with a subquery SQLite prepares the statement again at
/// every call (its plan depends on the value), which cost about 6% of the bot's CPU under load.
const OUTBOX_HEADS_SQL: &str = "SELECT o.id, o.chat_id, o.attempts FROM outbox o
     JOIN (SELECT chat_id, min(id) AS id FROM outbox GROUP BY chat_id) h ON h.id = o.id
     WHERE o.not_before_ms <= ?1 ORDER BY o.id LIMIT 256";

fn claim_update(tx: &Transaction<'_>, update_id: i64, now: Timestamp) -> Result<bool, StoreError> {
    let n = tx.exec("UPDATE updates SET done_at = ?2, payload = '' WHERE update_id = ?1 AND done_at IS NULL", params![update_id, now])?;
    Ok(n == 1)
}

pub(crate) fn insert_outgoing(tx: &Transaction<'_>, outgoing: &[Outgoing], now: Timestamp) -> Result<(), StoreError> {
    for o in outgoing {
        tx.exec("INSERT INTO outbox (chat_id, payload, created_at) VALUES (?1, ?2, ?3)", params![o.chat_id, o.payload, now])?;
    }
    Ok(())
}

fn ensure_user(tx: &Transaction<'_>, channel: &str, external_id: &str, now: Timestamp) -> Result<UserId, StoreError> {
    tx.exec(
        "INSERT INTO users (channel, external_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![channel, external_id, now],
    )?;
    let id = tx.row("SELECT id FROM users WHERE channel = ?1 AND external_id = ?2", params![channel, external_id], |r| r.get(0))?;
    Ok(UserId(id))
}

/// The user's session with their stored profile in it, and the stored profile row (language and
/// profile) as it was read, if there is one.
fn load_session(tx: &Transaction<'_>, user: UserId, lang: &str) -> Result<(Session, Option<(String, Profile)>), StoreError> {
    let state: Option<String> = tx.row("SELECT state FROM sessions WHERE user_id = ?1", [user.0], |r| r.get(0)).optional()?;
    // A session from an older program version, or one that no longer parses, starts afresh.
    let mut session = state
        .and_then(|s| serde_json::from_str::<Session>(&s).ok())
        .filter(|s| s.version == SESSION_VERSION)
        .unwrap_or_else(|| Session::new(lang));
    let profile = tx
        .row("SELECT lang, country, sector, size, stage, needs FROM profiles WHERE user_id = ?1", [user.0], |r| {
            let needs: String = r.get(5)?;
            Ok((
                r.get::<_, String>(0)?,
                Profile {
                    country: r.get(1)?,
                    sector: r.get(2)?,
                    size: r.get(3)?,
                    stage: r.get(4)?,
                    needs: needs.split(',').filter(|n| !n.is_empty()).map(str::to_string).collect(),
                },
            ))
        })
        .optional()?;
    if let Some((profile_lang, profile)) = &profile {
        session.lang = profile_lang.clone();
        session.profile = profile.clone();
    }
    Ok((session, profile))
}

/// Saves a turn; returns the ids of the inquiries it logged, with their kinds.
/// Saves what a turn changed; `stored` is the profile row as [`load_session`] read it, so an
/// unchanged profile is not written again (most turns change nothing in it).
fn save_turn(
    tx: &Transaction<'_>,
    user: UserId,
    step: &Step,
    stored: Option<&(String, Profile)>,
    now: Timestamp,
) -> Result<Vec<(InquiryKind, i64)>, StoreError> {
    let mut logged = Vec::new();
    if step.effects.contains(&Effect::Forget) {
        // Everything about the user goes; the next message starts a new user. Quarantined updates
        // of their private chat (the chat id is the user id) hold their text: they go too.
        tx.exec(
            "DELETE FROM quarantine WHERE chat_id IN (SELECT CAST(external_id AS INTEGER) FROM users WHERE id = ?1 AND channel = 'telegram')",
            [user.0],
        )?;
        tx.exec("DELETE FROM users WHERE id = ?1", [user.0])?;
        return Ok(logged);
    }
    let session = &step.session;
    let p = &session.profile;
    if stored.is_none_or(|(lang, profile)| *lang != session.lang || profile != p) {
        tx.exec(
            "INSERT INTO profiles (user_id, lang, country, sector, size, stage, needs, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (user_id) DO UPDATE SET lang = ?2, country = ?3, sector = ?4, size = ?5, stage = ?6, needs = ?7, updated_at = ?8",
            params![user.0, session.lang, p.country, p.sector, p.size, p.stage, p.needs.join(","), now],
        )?;
    }
    let state = serde_json::to_string(session).expect("a session always serialises");
    tx.exec(
        "INSERT INTO sessions (user_id, state, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (user_id) DO UPDATE SET state = ?2, updated_at = ?3",
        params![user.0, state, now],
    )?;
    for effect in &step.effects {
        match effect {
            Effect::Inquiry(inquiry) => logged.push((inquiry.kind, insert_inquiry(tx, user, session, inquiry, now)?)),
            Effect::Subscription { active, topics } => {
                tx.exec(
                    "INSERT INTO subscriptions (user_id, active, topics, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (user_id) DO UPDATE SET active = ?2, topics = ?3, updated_at = ?4",
                    params![user.0, active, topics.join(","), now],
                )?;
            }
            // Profile and language changes are saved with the profile above; a handoff is logged as an inquiry.
            Effect::SaveCall(id) => {
                tx.exec(
                    "INSERT INTO saved_calls (user_id, broadcast_id, saved_at) SELECT ?1, id, ?3 FROM broadcasts WHERE id = ?2 ON CONFLICT DO NOTHING",
                    params![user.0, id, now],
                )?;
            }
            // A draft programme call is created by the front end, which checks the role first.
            Effect::ProfileSet { .. } | Effect::LanguageSet(_) | Effect::Handoff { .. } | Effect::Forget | Effect::BroadcastDraft(_) => {}
        }
    }
    Ok(logged)
}

fn insert_inquiry(tx: &Transaction<'_>, user: UserId, session: &Session, inquiry: &Inquiry, now: Timestamp) -> Result<i64, StoreError> {
    let status = match (inquiry.kind, inquiry.answered) {
        (InquiryKind::Handoff, _) => Status::NeedsHuman,
        (_, true) => Status::Answered,
        (_, false) => Status::New,
    };
    let text: String = inquiry.text.chars().take(MAX_STORED_TEXT).collect();
    tx.exec(
        "INSERT INTO inquiries (user_id, at, lang, kind, text, matched, confidence, answered, status, topic, country, sector)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            user.0,
            now,
            session.lang,
            inquiry.kind.name(),
            text,
            inquiry.matched.join(","),
            f64::from(inquiry.confidence),
            inquiry.answered,
            status.name(),
            inquiry.topic,
            session.profile.country,
            session.profile.sector,
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cached statement that SQLite prepares again at every use costs as much as no cache.
    #[test]
    fn the_senders_outbox_read_is_prepared_once() {
        let mut store = Store::open_in_memory().unwrap();
        store.record_updates(&[IncomingUpdate { update_id: 1, chat_id: 7, payload: "{}".into() }], 100).unwrap();
        let rows: Vec<Outgoing> = (0..5).map(|i| Outgoing { chat_id: i % 3, payload: format!("m{i}") }).collect();
        assert!(store.finish_update(1, &rows, 100).unwrap());
        for now in 0..20 {
            assert_eq!(store.outbox_heads(now).unwrap().len(), 3);
        }
        let stmt = store.conn.prepare_cached(OUTBOX_HEADS_SQL).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
