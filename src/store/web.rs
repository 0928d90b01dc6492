//! Storage for the web desk: one-time sign-in links, sessions, the audit log, the inbox with
//! full-text search, statistics by SQL aggregation, and export in batches.
//!
//! Tokens are never stored: only their SHA-256 hashes, so a copy of the database signs nobody in.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::{Cached, InquiryFilter, InquiryRow, Store, StoreError, desk::COLUMNS, desk::row};
use crate::engine::Timestamp;

/// The inbox order: open handoffs first, then unanswered questions, then the rest, newest first.
/// The expression is exactly that of the `inquiries_inbox` index, so the order reads the index.
pub(crate) const INBOX_RANK: &str = "(CASE status WHEN 'needs_human' THEN 0 WHEN 'new' THEN 1 ELSE 2 END)";

/// What a one-time sign-in link gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Valid: the link is now used up.
    Valid {
        channel: String,
        external_id: String,
    },
    Unknown,
    Used,
    Expired,
}

/// A signed-in session, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    pub channel: String,
    pub external_id: String,
    pub csrf: String,
    pub created_at: Timestamp,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditLine {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Counts of one UTC day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayCount {
    /// Days since 1970-01-01.
    pub day: i64,
    pub total: i64,
    pub questions: i64,
    pub answered: i64,
    pub handoffs: i64,
    pub recommendations: i64,
}

/// The bytes of a text (or blob) value; `None` for NULL and numbers.
fn bytes(value: rusqlite::types::ValueRef<'_>) -> Option<&[u8]> {
    match value {
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => Some(b),
        _ => None,
    }
}

/// Counts of the few distinct values of a column (topics, countries, languages), keyed by their
/// bytes: a short list searched in order while there are few, a hash map beyond.
#[derive(Default)]
struct Tally {
    few: Vec<(Box<[u8]>, i64)>,
    many: HashMap<Box<[u8]>, i64>,
}

impl Tally {
    const FEW: usize = 12;

    fn bump(&mut self, key: &[u8]) {
        if let Some(item) = self.few.iter_mut().find(|item| *item.0 == *key) {
            item.1 += 1;
        } else if self.few.len() < Self::FEW {
            self.few.push((key.into(), 1));
        } else if let Some(n) = self.many.get_mut(key) {
            *n += 1;
        } else {
            self.many.insert(key.into(), 1);
        }
    }

    /// The `limit` most frequent, most first, ties by value.
    fn top(self, limit: usize) -> Vec<(String, i64)> {
        let mut items: Vec<(String, i64)> =
            self.few.into_iter().chain(self.many).map(|(k, n)| (String::from_utf8_lossy(&k).into_owned(), n)).collect();
        items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        items.truncate(limit);
        items
    }
}

/// A page of the inbox: the filters of `inquiries list`, a full-text search, an offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboxQuery {
    pub filter: InquiryFilter,
    /// Words to find in the question text (all of them; the last may be the start of a word).
    pub search: String,
    pub offset: usize,
    pub limit: usize,
}

/// An FTS5 query from typed words: each word quoted (so no word is read as an operator), all
/// required, the last one also as a prefix. `None` when there is no word.
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(12)
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    let last = words.last()?.clone();
    let mut query = words[..words.len() - 1].join(" ");
    if !query.is_empty() {
        query.push(' ');
    }
    query.push_str(&format!("{last}*"));
    Some(query)
}

/// The WHERE clause of a filter (and a search), with its arguments.
pub(super) fn filter_sql(filter: &InquiryFilter, search: Option<&str>) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::from(" WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut add = |clause: &str, value: rusqlite::types::Value| {
        args.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(v) = filter.since {
        add(" AND at >= ?", v.into());
    }
    if let Some(v) = filter.until {
        add(" AND at < ?", v.into());
    }
    if let Some(v) = &filter.status {
        add(" AND status = ?", v.name().to_string().into());
    }
    if let Some(v) = &filter.lang {
        add(" AND lang = ?", v.clone().into());
    }
    if let Some(v) = &filter.country {
        add(" AND country = ?", v.clone().into());
    }
    if let Some(v) = &filter.kind {
        add(" AND kind = ?", v.name().to_string().into());
    }
    if let Some(q) = search.and_then(fts_query) {
        add(" AND id IN (SELECT rowid FROM inquiries_fts WHERE inquiries_fts MATCH ?)", q.into());
    }
    if filter.open {
        sql.push_str(" AND status IN ('new', 'needs_human')");
    }
    (sql, args)
}

impl Store {
    pub fn web_create_login_link(&mut self, token_hash: &str, channel: &str, external_id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO web_login_links (token_hash, channel, external_id, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, channel, external_id, now],
        )?;
        Ok(())
    }

    /// Uses a sign-in link: valid once, and only while younger than `max_age` seconds.
    pub fn web_use_login_link(&mut self, token_hash: &str, now: Timestamp, max_age: i64) -> Result<LoginOutcome, StoreError> {
        let tx = self.conn.transaction()?;
        let link: Option<(String, String, Timestamp, Option<Timestamp>)> = tx
            .row("SELECT channel, external_id, created_at, used_at FROM web_login_links WHERE token_hash = ?1", [token_hash], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let outcome = match link {
            None => LoginOutcome::Unknown,
            Some((_, _, _, Some(_))) => LoginOutcome::Used,
            Some((_, _, created, None)) if now - created >= max_age || now < created => LoginOutcome::Expired,
            Some((channel, external_id, _, None)) => {
                tx.exec("UPDATE web_login_links SET used_at = ?2 WHERE token_hash = ?1", params![token_hash, now])?;
                LoginOutcome::Valid { channel, external_id }
            }
        };
        // Old links are of no use to anyone: forget them.
        tx.exec("DELETE FROM web_login_links WHERE created_at < ?1", [now - 7 * 86_400])?;
        tx.commit()?;
        Ok(outcome)
    }

    pub fn web_create_session(
        &mut self,
        token_hash: &str,
        channel: &str,
        external_id: &str,
        csrf: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO web_sessions (token_hash, channel, external_id, csrf, created_at, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![token_hash, channel, external_id, csrf, now],
        )?;
        Ok(())
    }

    /// The session of a token hash if it was used within `idle` seconds; it is then seen now.
    /// An expired one is deleted.
    pub fn web_session(&mut self, token_hash: &str, now: Timestamp, idle: i64) -> Result<Option<WebSession>, StoreError> {
        let found: Option<(WebSession, Timestamp)> = self
            .conn
            .row("SELECT channel, external_id, csrf, created_at, seen_at FROM web_sessions WHERE token_hash = ?1", [token_hash], |r| {
                Ok((WebSession { channel: r.get(0)?, external_id: r.get(1)?, csrf: r.get(2)?, created_at: r.get(3)? }, r.get(4)?))
            })
            .optional()?;
        match found {
            Some((session, seen)) if now - seen < idle => {
                self.conn.exec("UPDATE web_sessions SET seen_at = ?2 WHERE token_hash = ?1", params![token_hash, now])?;
                Ok(Some(session))
            }
            Some(_) => {
                self.web_end_session(token_hash)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    pub fn web_end_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(self.conn.exec("DELETE FROM web_sessions WHERE token_hash = ?1", [token_hash])? == 1)
    }

    /// Ends every session of a user (a role was revoked); returns how many.
    pub fn web_end_sessions_of(&mut self, channel: &str, external_id: &str) -> Result<usize, StoreError> {
        Ok(self.conn.exec("DELETE FROM web_sessions WHERE channel = ?1 AND external_id = ?2", params![channel, external_id])?)
    }

    /// Writes one line of the audit log: who did what to what, when.
    pub fn audit(&mut self, actor: &str, action: &str, target: &str, detail: &str, now: Timestamp) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now, actor, action, target, detail],
        )?;
        Ok(())
    }

    /// The newest lines of the audit log first.
    pub fn audit_lines(&self, limit: usize) -> Result<Vec<AuditLine>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(AuditLine { at: r.get(0)?, actor: r.get(1)?, action: r.get(2)?, target: r.get(3)?, detail: r.get(4)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The content language of a user of a channel, when they have a profile.
    pub fn lang_of_external(&self, channel: &str, external_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .row(
                "SELECT p.lang FROM profiles p JOIN users u ON u.id = p.user_id WHERE u.channel = ?1 AND u.external_id = ?2",
                params![channel, external_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A page of the inbox and how many inquiries match in all.
    pub fn inbox_page(&self, query: &InboxQuery) -> Result<(i64, Vec<InquiryRow>), StoreError> {
        let (clause, args) = filter_sql(&query.filter, Some(&query.search));
        let total: i64 =
            self.conn.row(&format!("SELECT count(*) FROM inquiries{clause}"), rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
        let sql = format!(
            "SELECT {COLUMNS} FROM inquiries{clause} ORDER BY {INBOX_RANK}, at DESC, id DESC LIMIT {} OFFSET {}",
            query.limit.min(1000),
            query.offset.min(i64::MAX as usize)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row)?;
        Ok((total, rows.collect::<Result<_, _>>()?))
    }

    /// The next batch of an export in inbox order, after the row with this key
    /// (`(rank, at, id)` of the last row of the previous batch; `None` for the first batch).
    pub fn export_batch(
        &self,
        filter: &InquiryFilter,
        after: Option<(i64, Timestamp, i64)>,
        limit: usize,
    ) -> Result<Vec<(i64, InquiryRow)>, StoreError> {
        let (mut clause, mut args) = filter_sql(filter, None);
        if let Some((rank, at, id)) = after {
            let n = args.len();
            clause.push_str(&format!(
                " AND ({INBOX_RANK} > ?{a} OR ({INBOX_RANK} = ?{a} AND (at < ?{b} OR (at = ?{b} AND id < ?{c}))))",
                a = n + 1,
                b = n + 2,
                c = n + 3
            ));
            args.extend([rank.into(), at.into(), id.into()]);
        }
        let sql = format!("SELECT {COLUMNS}, {INBOX_RANK} FROM inquiries{clause} ORDER BY {INBOX_RANK}, at DESC, id DESC LIMIT {limit}");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| Ok((r.get(14)?, row(r)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts per day and the top topics, countries and languages of a period, in one pass over
    /// the covering index `inquiries_stats` in time order (one read of each inquiry instead of one
    /// per chart). Days come in order, so each row adds to the last day; the few distinct topics,
    /// countries and languages are counted in small tallies keyed by their bytes.
    #[allow(clippy::type_complexity)]
    pub fn stats_pass(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        limit: usize,
    ) -> Result<(Vec<DayCount>, Vec<(String, i64)>, Vec<(String, i64)>, Vec<(String, i64)>), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, kind, answered, topic, country, lang FROM inquiries INDEXED BY inquiries_stats
             WHERE at >= ?1 AND at < ?2 ORDER BY at",
        )?;
        let mut rows = stmt.query(params![since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)])?;
        let mut days: Vec<DayCount> = Vec::new();
        let (mut topics, mut countries, mut langs) = (Tally::default(), Tally::default(), Tally::default());
        while let Some(r) = rows.next()? {
            let day = r.get::<_, i64>(0)?.div_euclid(86_400);
            if days.last().is_none_or(|d| d.day != day) {
                days.push(DayCount { day, ..DayCount::default() });
            }
            let d = days.last_mut().expect("a day was pushed");
            d.total += 1;
            match bytes(r.get_ref(1)?) {
                Some(b"question") => {
                    d.questions += 1;
                    if r.get::<_, i64>(2)? != 0 {
                        d.answered += 1;
                    }
                }
                Some(b"handoff") => d.handoffs += 1,
                Some(b"recommendation") => d.recommendations += 1,
                _ => {}
            }
            if let Some(topic) = bytes(r.get_ref(3)?) {
                topics.bump(topic);
            }
            countries.bump(bytes(r.get_ref(4)?).unwrap_or(b"-"));
            langs.bump(bytes(r.get_ref(5)?).unwrap_or(b""));
        }
        Ok((days, topics.top(limit), countries.top(limit), langs.top(limit)))
    }

    /// The counts of each day of a period that has inquiries, oldest first (the days of
    /// [`Store::stats_pass`]).
    pub fn stats_days(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> Result<Vec<DayCount>, StoreError> {
        Ok(self.stats_pass(since, until, 0)?.0)
    }

    /// Unanswered question texts in a period with how often each was asked, most first (lowercased;
    /// the caller merges phrasings that normalise alike). The texts are read from the partial
    /// covering index `inquiries_unanswered` and counted in a hash map: cheaper than SQLite's
    /// `GROUP BY` and `ORDER BY`, which sort every text twice.
    pub fn unanswered_texts(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT text FROM inquiries INDEXED BY inquiries_unanswered
             WHERE at >= ?1 AND at < ?2 AND kind = 'question' AND answered = 0",
        )?;
        let mut rows = stmt.query(params![since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)])?;
        let mut counts: HashMap<String, i64> = HashMap::new();
        while let Some(r) = rows.next()? {
            let Some(text) = bytes(r.get_ref(0)?).and_then(|b| std::str::from_utf8(b).ok()) else { continue };
            let lowered;
            let key = if text.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
                lowered = text.to_lowercase();
                lowered.as_str()
            } else {
                text
            };
            match counts.get_mut(key) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(key.to_string(), 1);
                }
            }
        }
        let mut items: Vec<(String, i64)> = counts.into_iter().collect();
        let by_count = |a: &(String, i64), b: &(String, i64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
        if items.len() > limit {
            items.select_nth_unstable_by(limit, by_count);
            items.truncate(limit);
        }
        items.sort_unstable_by(by_count);
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_words_become_a_safe_fts_query() {
        assert_eq!(fts_query("loan uganda").as_deref(), Some("\"loan\" \"uganda\"*"));
        assert_eq!(fts_query("\"OR\" NEAR(a, b) -x").as_deref(), Some("\"or\" \"near\" \"a\" \"b\" \"x\"*"));
        assert_eq!(fts_query("  ?! "), None);
    }

    /// Logs an inquiry with the given fields, as the bench does.
    fn log(store: &Store, at: i64, kind: &str, answered: bool, text: &str, (topic, country, lang): (Option<&str>, Option<&str>, &str)) {
        store
            .conn
            .execute(
                "INSERT INTO inquiries (at, lang, kind, text, matched, confidence, answered, status, topic, country)
                 VALUES (?1, ?2, ?3, ?4, '', 0.5, ?5, 'new', ?6, ?7)",
                params![at, lang, kind, text, answered, topic, country],
            )
            .unwrap();
    }

    #[test]
    fn the_stats_pass_counts_days_in_order_and_tallies_every_value() {
        let store = Store::open_in_memory().unwrap();
        let day = 86_400;
        // Logged out of time order, over three days, with more countries than the short tally holds.
        for i in 0..30 {
            let country = format!("c{:02}", i % 15);
            log(&store, 2 * day + i, "question", i % 3 == 0, "q", (Some("financing"), Some(&country), "en"));
        }
        log(&store, day + 5, "handoff", true, "h", (Some("bds"), None, "fr"));
        log(&store, 5, "recommendation", true, "r", (None, Some("c00"), "pt"));
        log(&store, 3 * day, "question", false, "out of the period", (Some("bds"), Some("c00"), "en"));
        let (days, topics, countries, langs) = store.stats_pass(Some(0), Some(3 * day), 3).unwrap();
        let summary: Vec<(i64, i64, i64, i64, i64, i64)> =
            days.iter().map(|d| (d.day, d.total, d.questions, d.answered, d.handoffs, d.recommendations)).collect();
        assert_eq!(summary, vec![(0, 1, 0, 0, 0, 1), (1, 1, 0, 0, 1, 0), (2, 30, 30, 10, 0, 0)]);
        assert_eq!(topics, vec![("financing".to_string(), 30), ("bds".to_string(), 1)]);
        assert_eq!(countries, vec![("c00".to_string(), 3), ("c01".to_string(), 2), ("c02".to_string(), 2)]);
        assert_eq!(langs, vec![("en".to_string(), 30), ("fr".to_string(), 1), ("pt".to_string(), 1)]);
        let (_, _, all, _) = store.stats_pass(None, None, 100).unwrap();
        assert_eq!(all.len(), 16, "15 countries and the handoff without one: {all:?}");
        assert_eq!(all.iter().find(|c| c.0 == "-").map(|c| c.1), Some(1));
        assert_eq!(all.iter().map(|c| c.1).sum::<i64>(), 33);
        assert_eq!(store.stats_days(Some(0), Some(3 * day)).unwrap(), days, "the SQL per-day counts agree");
    }

    #[test]
    fn unanswered_texts_are_counted_case_blind_most_first_within_the_period() {
        let store = Store::open_in_memory().unwrap();
        for (at, text, answered) in
            [(1, "Loan?", false), (2, "loan?", false), (3, "LOAN?", false), (4, "Bank", false), (5, "Ça va", false), (6, "ça va", false)]
        {
            log(&store, at, "question", answered, text, (None, None, "en"));
        }
        log(&store, 7, "question", true, "answered", (None, None, "en"));
        log(&store, 8, "handoff", false, "a handoff", (None, None, "en"));
        log(&store, 100, "question", false, "later", (None, None, "en"));
        let texts = store.unanswered_texts(Some(0), Some(50), 10).unwrap();
        assert_eq!(texts, vec![("loan?".to_string(), 3), ("ça va".to_string(), 2), ("bank".to_string(), 1)]);
        assert_eq!(store.unanswered_texts(None, None, 2).unwrap(), vec![("loan?".to_string(), 3), ("ça va".to_string(), 2)]);
        assert!(store.unanswered_texts(Some(200), None, 10).unwrap().is_empty());
    }

    #[test]
    fn a_login_link_works_once_and_only_while_fresh() {
        let mut store = Store::open_in_memory().unwrap();
        store.web_create_login_link("h1", "telegram", "42", 1000).unwrap();
        store.web_create_login_link("h2", "telegram", "42", 1000).unwrap();
        assert_eq!(
            store.web_use_login_link("h1", 1599, 600).unwrap(),
            LoginOutcome::Valid { channel: "telegram".into(), external_id: "42".into() }
        );
        assert_eq!(store.web_use_login_link("h1", 1599, 600).unwrap(), LoginOutcome::Used);
        assert_eq!(store.web_use_login_link("h2", 1600, 600).unwrap(), LoginOutcome::Expired);
        assert_eq!(store.web_use_login_link("nope", 1000, 600).unwrap(), LoginOutcome::Unknown);
    }

    #[test]
    fn a_session_expires_after_its_idle_time_and_each_use_extends_it() {
        let mut store = Store::open_in_memory().unwrap();
        store.web_create_session("s", "telegram", "42", "c", 0).unwrap();
        assert!(store.web_session("s", 100, 200).unwrap().is_some());
        assert!(store.web_session("s", 299, 200).unwrap().is_some());
        assert!(store.web_session("s", 499, 200).unwrap().is_none());
        assert!(store.web_session("s", 300, 200).unwrap().is_none(), "an expired session is gone");
    }
}
