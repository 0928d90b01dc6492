//! Storage for the staff desk: roles, the inquiry log's queries and history, handoff threads, learned examples, retention.

use rusqlite::{OptionalExtension, Row, params};

use super::named;
use super::{Cached, Event, InquiryRow, RoleGrant, Store, StoreError, UserId};
use crate::content::ExtraExample;
use crate::desk::{Role, Status};
use crate::engine::InquiryKind;
use crate::engine::Timestamp;

/// Which inquiries to list or export; empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InquiryFilter {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub status: Option<Status>,
    pub lang: Option<String>,
    pub country: Option<String>,
    pub kind: Option<InquiryKind>,
    /// Only inquiries still waiting: unanswered questions and open handoffs.
    pub open: bool,
}

pub(crate) const COLUMNS: &str =
    "id, user_id, at, lang, kind, text, matched, confidence, answered, status, topic, country, sector, taken_by";

pub(crate) fn row(r: &Row<'_>) -> rusqlite::Result<InquiryRow> {
    Ok(InquiryRow {
        id: r.get(0)?,
        user: r.get::<_, Option<i64>>(1)?.map(UserId),
        at: r.get(2)?,
        lang: r.get(3)?,
        kind: named(r, 4, InquiryKind::parse)?,
        text: r.get(5)?,
        matched: r.get(6)?,
        confidence: r.get(7)?,
        answered: r.get(8)?,
        status: named(r, 9, Status::parse)?,
        topic: r.get(10)?,
        country: r.get(11)?,
        sector: r.get(12)?,
        taken_by: r.get(13)?,
    })
}

impl Store {
    pub fn grant(&mut self, channel: &str, external_id: &str, role: Role, by: &str, now: Timestamp) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            "INSERT INTO roles (channel, external_id, role, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![channel, external_id, role.name(), by, now],
        )?;
        Ok(n == 1)
    }

    pub fn revoke(&mut self, channel: &str, external_id: &str, role: Role) -> Result<bool, StoreError> {
        let n = self
            .conn
            .exec("DELETE FROM roles WHERE channel = ?1 AND external_id = ?2 AND role = ?3", params![channel, external_id, role.name()])?;
        Ok(n == 1)
    }

    pub fn roles_of(&self, channel: &str, external_id: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT role FROM roles WHERE channel = ?1 AND external_id = ?2 ORDER BY role")?;
        let rows = stmt.query_map(params![channel, external_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn role_grants(&self, channel: &str) -> Result<Vec<RoleGrant>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT external_id, role, granted_by, granted_at FROM roles WHERE channel = ?1 ORDER BY role, external_id")?;
        let rows = stmt.query_map([channel], |r| {
            Ok(RoleGrant { external_id: r.get(0)?, role: named(r, 1, Role::parse)?, granted_by: r.get(2)?, granted_at: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Inquiries matching a filter: open ones first (handoffs, then unanswered questions), then newest first.
    pub fn query_inquiries(&self, filter: &InquiryFilter, limit: usize) -> Result<Vec<InquiryRow>, StoreError> {
        let (clause, args) = super::web::filter_sql(filter, None);
        let mut sql = format!("SELECT {COLUMNS} FROM inquiries{clause}");
        // The inbox order (handoffs, then unanswered questions, then the rest), read from its index.
        sql.push_str(&format!(" ORDER BY {}, at DESC, id DESC", super::web::INBOX_RANK));
        sql.push_str(&format!(" LIMIT {}", limit.min(i64::MAX as usize)));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn inquiry(&self, id: i64) -> Result<Option<InquiryRow>, StoreError> {
        Ok(self.conn.row(&format!("SELECT {COLUMNS} FROM inquiries WHERE id = ?1"), [id], row).optional()?)
    }

    pub fn events(&self, inquiry_id: i64) -> Result<Vec<Event>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT at, actor, kind, text FROM inquiry_events WHERE inquiry_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([inquiry_id], |r| Ok(Event { at: r.get(0)?, actor: r.get(1)?, kind: r.get(2)?, text: r.get(3)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds a line to an inquiry's history and, when given, changes its status, in one transaction.
    pub fn inquiry_event(
        &mut self,
        inquiry_id: i64,
        actor: &str,
        kind: &str,
        text: &str,
        status: Option<Status>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let exists: bool = tx.row("SELECT count(*) > 0 FROM inquiries WHERE id = ?1", [inquiry_id], |r| r.get(0))?;
        if !exists {
            return Ok(false);
        }
        tx.exec(
            "INSERT INTO inquiry_events (inquiry_id, at, actor, kind, text) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![inquiry_id, now, actor, kind, text],
        )?;
        if let Some(status) = status {
            tx.exec("UPDATE inquiries SET status = ?2 WHERE id = ?1", params![inquiry_id, status.name()])?;
        }
        if kind == "taken" {
            tx.exec("UPDATE inquiries SET taken_by = ?2 WHERE id = ?1", params![inquiry_id, actor])?;
        }
        tx.commit()?;
        Ok(true)
    }

    pub fn record_handoff_post(&mut self, chat_id: i64, message_id: i64, inquiry_id: i64) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT OR REPLACE INTO handoff_posts (chat_id, message_id, inquiry_id) VALUES (?1, ?2, ?3)",
            params![chat_id, message_id, inquiry_id],
        )?;
        Ok(())
    }

    /// The inquiry a staff-group post belongs to.
    pub fn inquiry_of_post(&self, chat_id: i64, message_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .row("SELECT inquiry_id FROM handoff_posts WHERE chat_id = ?1 AND message_id = ?2", params![chat_id, message_id], |r| r.get(0))
            .optional()?)
    }

    /// The staff post of an inquiry, if it was posted.
    pub fn post_of_inquiry(&self, inquiry_id: i64) -> Result<Option<(i64, i64)>, StoreError> {
        Ok(self
            .conn
            .row("SELECT chat_id, message_id FROM handoff_posts WHERE inquiry_id = ?1 ORDER BY message_id LIMIT 1", [inquiry_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// The handoff in which an advisor is talking with this user, if one is open.
    pub fn open_thread(&self, user: UserId) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .row(
                "SELECT id FROM inquiries WHERE user_id = ?1 AND kind = 'handoff' AND status = 'answered_by_staff' ORDER BY id DESC LIMIT 1",
                [user.0],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The channel and channel id of an internal user.
    pub fn external_of(&self, user: UserId) -> Result<Option<(String, String)>, StoreError> {
        Ok(self.conn.row("SELECT channel, external_id FROM users WHERE id = ?1", [user.0], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
    }

    /// The profile fields and recent messages of a user, for a handoff post.
    pub fn lang_of(&self, user: UserId) -> Result<Option<String>, StoreError> {
        Ok(self.conn.row("SELECT lang FROM profiles WHERE user_id = ?1", [user.0], |r| r.get(0)).optional()?)
    }

    pub fn learn(&mut self, entry_id: &str, lang: &str, text: &str, by: &str, now: Timestamp) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            "INSERT INTO learned_examples (entry_id, lang, text, added_by, added_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![entry_id, lang, text, by, now],
        )?;
        Ok(n == 1)
    }

    pub fn unlearn(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn.exec("DELETE FROM learned_examples WHERE id = ?1", [id])?;
        Ok(())
    }

    /// How many learned examples there are and the newest one's id: changes whenever one is added
    /// or removed, by this process or another.
    pub fn learned_fingerprint(&self) -> Result<(i64, i64), StoreError> {
        Ok(self.conn.row("SELECT count(*), coalesce(max(id), 0) FROM learned_examples", [], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    pub fn learned_examples(&self) -> Result<Vec<ExtraExample>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT id, entry_id, lang, text FROM learned_examples ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok(ExtraExample { id: r.get(0)?, entry_id: r.get(1)?, lang: r.get(2)?, text: r.get(3)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes inquiries (and their history and posts) logged before `before`; returns how many.
    pub fn purge_inquiries(&mut self, before: Timestamp) -> Result<usize, StoreError> {
        Ok(self.conn.exec("DELETE FROM inquiries WHERE at < ?1", [before])?)
    }
}
