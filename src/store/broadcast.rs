//! Storage for broadcasts: calls, the per-recipient delivery log that the sender drains, saved calls and reminders.

use rusqlite::{OptionalExtension, params};

use super::{Cached, Store, StoreError, named};
use crate::broadcast::{Counts, Status, Subscriber};
use crate::engine::Timestamp;

/// A broadcast as stored; `call` is the call as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastRow {
    pub id: i64,
    pub created_by: String,
    pub created_at: Timestamp,
    pub call: String,
    /// draft, scheduled, sending, done or cancelled
    pub status: Status,
    pub send_at: Option<Timestamp>,
    pub report_chat: Option<i64>,
    pub report_message: Option<i64>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// One recipient still to be sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub user_id: i64,
    pub chat_id: i64,
    pub lang: String,
    pub attempts: i64,
}

/// A saver to remind of a call's deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reminder {
    pub broadcast_id: i64,
    pub user_id: i64,
    pub chat_id: i64,
    pub lang: String,
    pub call: String,
}

/// What happened to one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivered {
    Sent,
    Retry { not_before_ms: i64 },
    Failed,
    Blocked,
}

fn broadcast_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BroadcastRow> {
    Ok(BroadcastRow {
        id: r.get(0)?,
        created_by: r.get(1)?,
        created_at: r.get(2)?,
        call: r.get(3)?,
        status: named(r, 4, Status::parse)?,
        send_at: r.get(5)?,
        report_chat: r.get(6)?,
        report_message: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
    })
}

const BROADCAST_COLUMNS: &str = "id, created_by, created_at, call, status, send_at, report_chat, report_message, started_at, finished_at";

impl Store {
    pub fn create_broadcast(&mut self, call_json: &str, created_by: &str, now: Timestamp) -> Result<i64, StoreError> {
        self.conn.exec(
            "INSERT INTO broadcasts (created_by, created_at, call, status) VALUES (?1, ?2, ?3, 'draft')",
            params![created_by, now, call_json],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn broadcast(&self, id: i64) -> Result<Option<BroadcastRow>, StoreError> {
        Ok(self.conn.row(&format!("SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE id = ?1"), [id], broadcast_row).optional()?)
    }

    /// Newest first.
    pub fn broadcasts(&self) -> Result<Vec<BroadcastRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {BROADCAST_COLUMNS} FROM broadcasts ORDER BY id DESC"))?;
        let rows = stmt.query_map([], broadcast_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Active Telegram subscribers with their profile, who have not blocked the bot.
    pub fn subscribers(&self, channel: &str) -> Result<Vec<Subscriber>, StoreError> {
        Ok(self.subscribers_page(channel, 0, i64::MAX as usize)?.0)
    }

    /// Active subscribers with a user id above `after`, in user order, at most `limit`: a large
    /// list is read page by page, so neither memory nor the store's lock is held for all of it.
    /// Also returns the last user id read (the next page starts after it), `None` at the end.
    pub fn subscribers_page(&self, channel: &str, after: i64, limit: usize) -> Result<(Vec<Subscriber>, Option<i64>), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.id, u.external_id, p.lang, p.country, p.sector, s.topics FROM subscriptions s
             JOIN users u ON u.id = s.user_id LEFT JOIN profiles p ON p.user_id = u.id
             WHERE s.active = 1 AND u.blocked_at IS NULL AND u.channel = ?1 AND s.user_id > ?2
             ORDER BY s.user_id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![channel, after, limit.min(i64::MAX as usize) as i64], |r| {
            let topics: String = r.get(5)?;
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?, r.get(3)?, r.get(4)?, topics))
        })?;
        let (mut out, mut last) = (Vec::new(), None);
        for row in rows {
            let (user_id, external, lang, country, sector, topics) = row?;
            last = Some(user_id);
            // Only users whose channel id is a chat id can be written to.
            let Ok(chat_id) = external.parse::<i64>() else { continue };
            out.push(Subscriber {
                user_id,
                chat_id,
                lang: lang.unwrap_or_else(|| crate::content::DEFAULT_LANG.to_string()),
                country,
                sector,
                topics: topics.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
            });
        }
        Ok((out, last))
    }

    /// Schedules a draft (or reschedules a scheduled broadcast) to go out at `at`.
    pub fn schedule_broadcast(&mut self, id: i64, at: Timestamp, report_chat: Option<i64>) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            "UPDATE broadcasts SET status = 'scheduled', send_at = ?2, report_chat = coalesce(?3, report_chat) WHERE id = ?1 AND status IN ('draft', 'scheduled')",
            params![id, at, report_chat],
        )?;
        Ok(n == 1)
    }

    pub fn due_broadcasts(&self, now: Timestamp) -> Result<Vec<BroadcastRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE status = 'scheduled' AND send_at <= ?1 ORDER BY send_at, id"
        ))?;
        let rows = stmt.query_map([now], broadcast_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn sending_broadcasts(&self) -> Result<Vec<BroadcastRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE status = 'sending' ORDER BY started_at, id"))?;
        let rows = stmt.query_map([], broadcast_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds recipients to a scheduled broadcast, one batch per transaction so that replies to
    /// users are not held up by a large snapshot; a recipient already added is kept as it is.
    pub fn add_recipients(&mut self, id: i64, recipients: &[Subscriber]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO deliveries (broadcast_id, user_id, chat_id, lang, status)
                 SELECT ?1, ?2, ?3, ?4, 'pending' FROM broadcasts WHERE id = ?1 AND status = 'scheduled' ON CONFLICT DO NOTHING",
            )?;
            for r in recipients {
                insert.execute(params![id, r.user_id, r.chat_id, r.lang])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Starts sending a scheduled broadcast whose recipients were added; false if it was not due.
    /// After a crash between the batches and this, the next start adds the missing ones.
    pub fn start_broadcast(&mut self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let n = self
            .conn
            .exec("UPDATE broadcasts SET status = 'sending', started_at = ?2 WHERE id = ?1 AND status = 'scheduled'", params![id, now])?;
        Ok(n == 1)
    }

    /// Recipients still to send to whose turn has come, in a stable order.
    pub fn pending_deliveries(&self, id: i64, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, chat_id, lang, attempts FROM deliveries WHERE broadcast_id = ?1 AND status = 'pending' AND not_before_ms <= ?2
             ORDER BY user_id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![id, now_ms, limit as i64], |r| {
            Ok(Delivery { user_id: r.get(0)?, chat_id: r.get(1)?, lang: r.get(2)?, attempts: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records what happened to one delivery.
    pub fn delivered(&mut self, id: i64, user_id: i64, outcome: Delivered, now: Timestamp) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        match outcome {
            Delivered::Sent => {
                tx.exec(
                    "UPDATE deliveries SET status = 'sent', sent_at = ?3, attempts = attempts + 1 WHERE broadcast_id = ?1 AND user_id = ?2",
                    params![id, user_id, now],
                )?;
            }
            Delivered::Retry { not_before_ms } => {
                tx.exec(
                    "UPDATE deliveries SET attempts = attempts + 1, not_before_ms = ?3 WHERE broadcast_id = ?1 AND user_id = ?2",
                    params![id, user_id, not_before_ms],
                )?;
            }
            Delivered::Failed => {
                tx.exec(
                    "UPDATE deliveries SET status = 'failed', attempts = attempts + 1 WHERE broadcast_id = ?1 AND user_id = ?2",
                    params![id, user_id],
                )?;
            }
            Delivered::Blocked => {
                tx.exec("UPDATE deliveries SET status = 'blocked' WHERE broadcast_id = ?1 AND user_id = ?2", params![id, user_id])?;
                tx.exec("UPDATE users SET blocked_at = ?2 WHERE id = ?1", params![user_id, now])?;
                tx.exec("UPDATE subscriptions SET active = 0 WHERE user_id = ?1", [user_id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn broadcast_counts(&self, id: i64) -> Result<Counts, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT status, count(*) FROM deliveries WHERE broadcast_id = ?1 GROUP BY status")?;
        let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut c = Counts::default();
        for row in rows {
            let (status, n) = row?;
            c.total += n;
            match status.as_str() {
                "sent" => c.sent += n,
                "failed" => c.failed += n,
                "blocked" => c.blocked += n,
                "pending" => c.pending += n,
                _ => {}
            }
        }
        Ok(c)
    }

    /// Marks a sending broadcast done when nothing is pending; true if it did.
    pub fn finish_broadcast(&mut self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            "UPDATE broadcasts SET status = 'done', finished_at = ?2 WHERE id = ?1 AND status = 'sending'
             AND NOT EXISTS (SELECT 1 FROM deliveries WHERE broadcast_id = ?1 AND status = 'pending')",
            params![id, now],
        )?;
        Ok(n == 1)
    }

    /// Cancels a broadcast that has not finished; what was not sent stays unsent.
    pub fn cancel_broadcast(&mut self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.exec(
            "UPDATE broadcasts SET status = 'cancelled', finished_at = ?2 WHERE id = ?1 AND status IN ('draft', 'scheduled', 'sending')",
            params![id, now],
        )?;
        tx.exec("UPDATE deliveries SET status = 'cancelled' WHERE broadcast_id = ?1 AND status = 'pending'", [id])?;
        tx.commit()?;
        Ok(n == 1)
    }

    pub fn set_report_message(&mut self, id: i64, chat_id: i64, message_id: i64) -> Result<(), StoreError> {
        self.conn.exec("UPDATE broadcasts SET report_chat = ?2, report_message = ?3 WHERE id = ?1", params![id, chat_id, message_id])?;
        Ok(())
    }

    /// How many times each recipient was recorded as sent; for checks that nobody got a call twice.
    pub fn delivery_log(&self, id: i64) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT chat_id, status, attempts FROM deliveries WHERE broadcast_id = ?1 ORDER BY chat_id")?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Calls that have gone out and whose deadline is on or after `day`.
    pub fn open_calls(&self, day: &str) -> Result<Vec<(i64, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, call FROM broadcasts WHERE status IN ('sending', 'done') AND json_extract(call, '$.deadline') >= ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([day], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saved calls whose deadline is on or before `by_day` and whose saver was not reminded yet.
    pub fn due_reminders(&self, by_day: &str) -> Result<Vec<Reminder>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.id, u.id, u.external_id, coalesce(p.lang, 'en'), b.call FROM saved_calls s
             JOIN broadcasts b ON b.id = s.broadcast_id JOIN users u ON u.id = s.user_id LEFT JOIN profiles p ON p.user_id = u.id
             WHERE s.reminded_at IS NULL AND u.blocked_at IS NULL AND json_extract(b.call, '$.deadline') <= ?1",
        )?;
        let rows = stmt.query_map([by_day], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (b, u, ext, lang, call) = row?;
            if let Ok(chat_id) = ext.parse::<i64>() {
                out.push(Reminder { broadcast_id: b, user_id: u, chat_id, lang, call });
            }
        }
        Ok(out)
    }

    pub fn mark_reminded(&mut self, broadcast_id: i64, user_id: i64, now: Timestamp) -> Result<(), StoreError> {
        self.conn.exec(
            "UPDATE saved_calls SET reminded_at = ?3 WHERE broadcast_id = ?1 AND user_id = ?2",
            params![broadcast_id, user_id, now],
        )?;
        Ok(())
    }

    /// Queues messages outside a turn (progress reports, reminders).
    pub fn queue(&mut self, outgoing: &[super::Outgoing], now: Timestamp) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        super::insert_outgoing(&tx, outgoing, now)?;
        tx.commit()?;
        Ok(())
    }
}
