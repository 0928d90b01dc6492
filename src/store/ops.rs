//! Storage for operations: quarantined updates, the health check's write, backups and schema versions.

use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::{Cached, IncomingUpdate, Outgoing, Store, StoreError, WAL_BACKSTOP_PAGES, insert_outgoing};
use crate::engine::Timestamp;

/// An update that failed every attempt to handle it, kept aside so it blocks nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub update_id: i64,
    pub chat_id: i64,
    pub error: String,
    pub attempts: i64,
    pub at: Timestamp,
}

/// Copies the write-ahead log into the database file from a connection of its own, so that no
/// turn pays for the copy and its syncs while holding the store (see
/// [`Store::checkpoint_in_background`]).
pub struct Checkpointer {
    conn: rusqlite::Connection,
}

impl Checkpointer {
    /// Copies what the log holds that no reader still needs, without waiting for writers
    /// (`PASSIVE`); returns the frames in the log and the frames copied so far.
    pub fn run(&self) -> Result<(i64, i64), StoreError> {
        Ok(self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?)))?)
    }
}

impl Store {
    /// Leaves copying the log to a [`Checkpointer`] on a second connection, run on a timer by the
    /// caller; this connection copies it itself only past [`WAL_BACKSTOP_PAGES`], should the
    /// checkpointer stop. `None` for a store in memory, which has no log.
    pub fn checkpoint_in_background(&mut self) -> Result<Option<Checkpointer>, StoreError> {
        let Some(path) = self.conn.path().filter(|p| !p.is_empty()).map(std::path::PathBuf::from) else { return Ok(None) };
        let conn = rusqlite::Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        self.conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
        Ok(Some(Checkpointer { conn }))
    }

    /// After how many pages of log this connection copies the log itself.
    pub fn autocheckpoint_pages(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?)
    }

    /// Counts one more attempt at handling a pending update, durably, before it is tried; `None`
    /// when the update is no longer pending. The count survives a crash, so an update that takes
    /// the whole process down is quarantined after a few restarts instead of looping forever.
    pub fn begin_attempt(&mut self, update_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .row(
                "UPDATE updates SET attempts = attempts + 1 WHERE update_id = ?1 AND done_at IS NULL RETURNING attempts",
                [update_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// [`Store::begin_attempt`] that also returns the update, in the same statement: the worker
    /// needs no second read of the row it has just counted. `None` when it is no longer pending.
    pub fn begin_update(&mut self, update_id: i64) -> Result<Option<(i64, IncomingUpdate)>, StoreError> {
        Ok(self
            .conn
            .row(
                "UPDATE updates SET attempts = attempts + 1 WHERE update_id = ?1 AND done_at IS NULL RETURNING attempts, chat_id, payload",
                [update_id],
                |r| Ok((r.get(0)?, IncomingUpdate { update_id, chat_id: r.get(1)?, payload: r.get(2)? })),
            )
            .optional()?)
    }

    /// Takes back an attempt that failed for a reason of the storage, not of the update.
    pub fn forgive_attempt(&mut self, update_id: i64) -> Result<(), StoreError> {
        self.conn.exec("UPDATE updates SET attempts = max(attempts - 1, 0) WHERE update_id = ?1", [update_id])?;
        Ok(())
    }

    /// Moves a pending update to the quarantine and queues `outgoing` (the apology), in one
    /// transaction; false when it was not pending any more.
    pub fn quarantine_update(&mut self, update_id: i64, error: &str, outgoing: &[Outgoing], now: Timestamp) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let moved = tx.exec(
            "INSERT OR REPLACE INTO quarantine (update_id, chat_id, payload, error, attempts, quarantined_at)
             SELECT update_id, chat_id, payload, ?2, attempts, ?3 FROM updates WHERE update_id = ?1 AND done_at IS NULL",
            params![update_id, error, now],
        )?;
        if moved == 0 {
            return Ok(false);
        }
        tx.exec("UPDATE updates SET done_at = ?2, payload = '', retry_requested = 0 WHERE update_id = ?1", params![update_id, now])?;
        insert_outgoing(&tx, outgoing, now)?;
        tx.commit()?;
        Ok(true)
    }

    /// Every quarantined update, newest first.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT update_id, chat_id, error, attempts, quarantined_at FROM quarantine ORDER BY quarantined_at DESC, update_id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Quarantined { update_id: r.get(0)?, chat_id: r.get(1)?, error: r.get(2)?, attempts: r.get(3)?, at: r.get(4)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn quarantined_count(&self) -> Result<i64, StoreError> {
        Ok(self.conn.row("SELECT count(*) FROM quarantine", [], |r| r.get(0))?)
    }

    /// Puts a quarantined update back as pending, with its attempts reset, and asks the running
    /// bot to handle it (or the next start does); false when there is no such quarantined update.
    pub fn retry_quarantined(&mut self, update_id: i64) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let Some((chat_id, payload)) = tx
            .row("SELECT chat_id, payload FROM quarantine WHERE update_id = ?1", [update_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?
        else {
            return Ok(false);
        };
        tx.exec(
            "INSERT INTO updates (update_id, chat_id, payload, received_at, done_at, attempts, retry_requested)
             VALUES (?1, ?2, ?3, 0, NULL, 0, 1)
             ON CONFLICT (update_id) DO UPDATE SET payload = excluded.payload, done_at = NULL, attempts = 0, retry_requested = 1",
            params![update_id, chat_id, payload],
        )?;
        tx.exec("DELETE FROM quarantine WHERE update_id = ?1", [update_id])?;
        tx.commit()?;
        Ok(true)
    }

    /// Updates put back by [`Store::retry_quarantined`] since the last call, to hand to the workers.
    pub fn take_retry_requests(&mut self) -> Result<Vec<IncomingUpdate>, StoreError> {
        let tx = self.conn.transaction()?;
        let rows = {
            let mut stmt = tx.prepare_cached(
                "SELECT update_id, chat_id, payload FROM updates WHERE retry_requested = 1 AND done_at IS NULL ORDER BY update_id",
            )?;
            let rows = stmt.query_map([], |r| Ok(IncomingUpdate { update_id: r.get(0)?, chat_id: r.get(1)?, payload: r.get(2)? }))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.exec("UPDATE updates SET retry_requested = 0 WHERE retry_requested = 1", [])?;
        tx.commit()?;
        Ok(rows)
    }

    /// A small write that fails when the database cannot be written (full or read-only disk).
    pub fn check_writable(&mut self, now: Timestamp) -> Result<(), StoreError> {
        self.conn.exec("INSERT INTO heartbeat (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = excluded.at", [now])?;
        Ok(())
    }

    /// How many messages wait in the outbox, and the creation time of the oldest.
    pub fn outbox_depth(&self) -> Result<(i64, Option<Timestamp>), StoreError> {
        Ok(self.conn.row("SELECT count(*), min(created_at) FROM outbox", [], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    /// A consistent copy of a database file of any schema version (before a migration).
    pub fn backup_file(source: &Path, path: &Path) -> Result<(), StoreError> {
        let conn = rusqlite::Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Store { conn }.backup_to(path)
    }

    /// A consistent copy of the whole database in a new file, taken while other connections write
    /// (SQLite's `VACUUM INTO` reads one snapshot). Refuses to overwrite an existing file.
    pub fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        if path.exists() {
            return Err(StoreError::Backup(format!("{} already exists; choose a new file name", path.display())));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder { path: parent.display().to_string(), source })?;
        }
        let target = path.to_str().ok_or_else(|| StoreError::Backup(format!("{} is not a UTF-8 path", path.display())))?;
        self.conn.execute("VACUUM INTO ?1", [target])?;
        Ok(())
    }
}

impl Store {
    /// Deliveries sent and still pending, over the broadcasts being sent now.
    pub fn broadcast_progress(&self) -> Result<(i64, i64), StoreError> {
        Ok(self.conn.row(
            "SELECT coalesce(sum(d.status = 'sent'), 0), coalesce(sum(d.status = 'pending'), 0)
             FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id WHERE b.status = 'sending'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}
