//! SQLite storage: users, profiles, sessions, inquiries and subscriptions, one transaction per turn.
//!
//! The database runs in WAL mode with a busy timeout. Migrations are append-only SQL on
//! `PRAGMA user_version`. A turn loads the session and profile, runs the engine, and saves the new
//! session together with every effect in one transaction, so a crash leaves either all of a turn
//! or none of it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::engine::{Effect, Inquiry, Profile, SESSION_VERSION, Session, Step, Timestamp};

/// Append-only: never edit a migration that has shipped, add a new one.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

/// Inquiry texts are kept up to this many characters.
pub const MAX_STORED_TEXT: usize = 2000;

/// An internal user id; never a Telegram id, phone number or username.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserId(pub i64);

/// A logged inquiry as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct InquiryRow {
    pub id: i64,
    pub user: Option<UserId>,
    pub at: Timestamp,
    pub lang: String,
    pub kind: String,
    pub text: String,
    pub matched: String,
    pub confidence: f64,
    pub answered: bool,
    pub status: String,
    pub topic: Option<String>,
    pub country: Option<String>,
    pub sector: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot create the database folder {path}: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("the database has schema version {found}, newer than this program's {known}; upgrade the program")]
    TooNew { found: i64, known: i64 },
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder { path: parent.display().to_string(), source })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Store::setup(conn)
    }

    /// A private database in memory, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew { found: version, known });
        }
        let tx = conn.transaction()?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        tx.commit()?;
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
        let session = load_session(&tx, user, lang)?;
        let step = decide(&session);
        save_turn(&tx, user, &step, now)?;
        tx.commit()?;
        Ok((user, step))
    }

    /// The stored session of a user, as the next turn would see it.
    pub fn session(&mut self, user: UserId, lang: &str) -> Result<Session, StoreError> {
        let tx = self.conn.transaction()?;
        let session = load_session(&tx, user, lang)?;
        tx.commit()?;
        Ok(session)
    }

    /// Inquiries, newest first.
    pub fn inquiries(&self, limit: usize) -> Result<Vec<InquiryRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, user_id, at, lang, kind, text, matched, confidence, answered, status, topic, country, sector
             FROM inquiries ORDER BY at DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(InquiryRow {
                id: r.get(0)?,
                user: r.get::<_, Option<i64>>(1)?.map(UserId),
                at: r.get(2)?,
                lang: r.get(3)?,
                kind: r.get(4)?,
                text: r.get(5)?,
                matched: r.get(6)?,
                confidence: r.get(7)?,
                answered: r.get(8)?,
                status: r.get(9)?,
                topic: r.get(10)?,
                country: r.get(11)?,
                sector: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many rows of each table name this user, for privacy checks.
    pub fn rows_for_user(&self, user: UserId) -> Result<i64, StoreError> {
        let mut total = 0;
        for table in ["profiles", "sessions", "inquiries", "subscriptions"] {
            let n: i64 = self.conn.query_row(&format!("SELECT count(*) FROM {table} WHERE user_id = ?1"), [user.0], |r| r.get(0))?;
            total += n;
        }
        let n: i64 = self.conn.query_row("SELECT count(*) FROM users WHERE id = ?1", [user.0], |r| r.get(0))?;
        Ok(total + n)
    }

    /// Whether the user has an active subscription, and its topics.
    pub fn subscription(&self, user: UserId) -> Result<Option<(bool, String)>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT active, topics FROM subscriptions WHERE user_id = ?1", [user.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }
}

fn ensure_user(tx: &Transaction<'_>, channel: &str, external_id: &str, now: Timestamp) -> Result<UserId, StoreError> {
    tx.execute(
        "INSERT INTO users (channel, external_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![channel, external_id, now],
    )?;
    let id = tx.query_row("SELECT id FROM users WHERE channel = ?1 AND external_id = ?2", params![channel, external_id], |r| r.get(0))?;
    Ok(UserId(id))
}

fn load_session(tx: &Transaction<'_>, user: UserId, lang: &str) -> Result<Session, StoreError> {
    let state: Option<String> = tx.query_row("SELECT state FROM sessions WHERE user_id = ?1", [user.0], |r| r.get(0)).optional()?;
    // A session from an older program version, or one that no longer parses, starts afresh.
    let mut session = state
        .and_then(|s| serde_json::from_str::<Session>(&s).ok())
        .filter(|s| s.version == SESSION_VERSION)
        .unwrap_or_else(|| Session::new(lang));
    let profile = tx
        .query_row("SELECT lang, country, sector, size, stage, needs FROM profiles WHERE user_id = ?1", [user.0], |r| {
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
    if let Some((profile_lang, profile)) = profile {
        session.lang = profile_lang;
        session.profile = profile;
    }
    Ok(session)
}

fn save_turn(tx: &Transaction<'_>, user: UserId, step: &Step, now: Timestamp) -> Result<(), StoreError> {
    if step.effects.contains(&Effect::Forget) {
        // Everything about the user goes; the next message starts a new user.
        tx.execute("DELETE FROM users WHERE id = ?1", [user.0])?;
        return Ok(());
    }
    let session = &step.session;
    let p = &session.profile;
    tx.execute(
        "INSERT INTO profiles (user_id, lang, country, sector, size, stage, needs, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (user_id) DO UPDATE SET lang = ?2, country = ?3, sector = ?4, size = ?5, stage = ?6, needs = ?7, updated_at = ?8",
        params![user.0, session.lang, p.country, p.sector, p.size, p.stage, p.needs.join(","), now],
    )?;
    let state = serde_json::to_string(session).expect("a session always serialises");
    tx.execute(
        "INSERT INTO sessions (user_id, state, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (user_id) DO UPDATE SET state = ?2, updated_at = ?3",
        params![user.0, state, now],
    )?;
    for effect in &step.effects {
        match effect {
            Effect::Inquiry(inquiry) => insert_inquiry(tx, user, session, inquiry, now)?,
            Effect::Subscription { active, topics } => {
                tx.execute(
                    "INSERT INTO subscriptions (user_id, active, topics, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (user_id) DO UPDATE SET active = ?2, topics = ?3, updated_at = ?4",
                    params![user.0, active, topics.join(","), now],
                )?;
            }
            // Profile and language changes are saved with the profile above; a handoff is logged as an inquiry.
            Effect::ProfileSet { .. } | Effect::LanguageSet(_) | Effect::Handoff { .. } | Effect::Forget => {}
        }
    }
    Ok(())
}

fn insert_inquiry(tx: &Transaction<'_>, user: UserId, session: &Session, inquiry: &Inquiry, now: Timestamp) -> Result<(), StoreError> {
    let status = match (inquiry.kind, inquiry.answered) {
        (crate::engine::InquiryKind::Handoff, _) => "needs_human",
        (_, true) => "answered",
        (_, false) => "new",
    };
    let text: String = inquiry.text.chars().take(MAX_STORED_TEXT).collect();
    tx.execute(
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
            status,
            inquiry.topic,
            session.profile.country,
            session.profile.sector,
        ],
    )?;
    Ok(())
}
