//! Broadcast benchmark of the real `sme-advisor serve` binary against the fake Bot API: one programme call to 100,000 subscribers.
//!
//! Run with `cargo bench --bench broadcast_load` (a release build). It seeds the subscribers into a
//! fresh database, makes every chat known to the fake server (which enforces Telegram's flood
//! limits), starts the bot, creates and sends a call with `sme-advisor broadcast create FILE` and
//! `broadcast send ID`, and waits until `broadcast status ID` says `done`. While the call goes
//! out, a few simulated users keep asking free questions ("what is empretec"), each in its own
//! chat and at most one a second (the fake allows one message a second to a chat).
//!
//! Seeding: eight subscribers go through the real engine (`/subscribe`, a topic, a country, a
//! sector, "Yes, subscribe"), one for each profile template; all the others are copies of those
//! templates' rows (`users`, `profiles`, `subscriptions`, `sessions`, every column but the ids),
//! written in one transaction. Eight more subscribers are then made by the engine in a scratch
//! database and compared column by column with the copies of the same chat ids. Half of the
//! templates match the call; the other half each fail one filter (country, sector, topic, all).
//!
//! It prints the achieved rate (recipients reached / time from the first to the last broadcast
//! message the fake accepted) as a share of the configured rate, the 429s the fake answered,
//! duplicates and misses per recipient (from the fake's call log), the latency of the users'
//! replies during the broadcast (update pushed -> first reply message visible in the fake), and
//! the bot's CPU time and peak memory (from `/proc/<pid>/stat` and `/proc/<pid>/status`).
//!
//! The issue asks for the bot's default `BROADCAST_RATE` of 25/s, at which 50,000 recipients take
//! over half an hour. This benchmark is SHORTENED by default: it runs the bot at `BC_RATE` (default
//! 500/s) and sets the fake's global flood limit 10% above it (one message a second per chat,
//! like Telegram); the report says so. Environment overrides: `BC_SUBSCRIBERS` (default 100000),
//! `BC_RATE` (default 500; 25 is the bot's default, at most 1000), `BC_FAKE_LIMIT` (the fake's
//! messages a second over all chats; default 10% above `BC_RATE`, Telegram's is about 30),
//! `BC_TIMEOUT_SECS` (default 600, for the whole run). `WORKERS` is passed on to the bot if set, and so are `DIALOGS_DIR` and
//! `KNOWLEDGE_DIR` (relative to the repository), which the seeding uses too: point them at a copy
//! to run on a snapshot of the content while it is being edited. The process exits non-zero when
//! the run timed out, the bot died, the seeding check failed or the broadcast did not finish;
//! figures off their aims are printed, not failed.

// `cargo bench` compiles with `cfg(test)` but without `--test`, so the fake's own `tests` module
// is built without its `#[test]` functions and its imports would be reported as unused.
#[allow(unused_imports)]
#[path = "../tests/it/fake_bot_api/mod.rs"]
mod fake_bot_api;

mod common;

use common::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_bot_api::{BotMessage, Call, FakeBotApi, RateLimits};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sme_advisor::content::{self, Content};
use sme_advisor::engine::{self, Input};
use sme_advisor::store::Store;

const CHANNEL: &str = "telegram";
/// Chat id (= user id) of the first subscriber.
const FIRST_CHAT: i64 = 1_000_000;
/// Chat id of the first user asking questions during the broadcast (not a subscriber).
const FIRST_ASKER: i64 = 9_000_000;
const ASKERS: usize = 5;
/// Pause between a reply and the user's next question: the fake allows one message a second to a chat.
const ASK_PAUSE: Duration = Duration::from_millis(1100);
/// A question with no reply after this long counts as unanswered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// The bot's default `BROADCAST_RATE`, which the issue asks for.
const DEFAULT_RATE: u64 = 25;
const AIM_RATE_SHARE: f64 = 0.95;
const AIM_P99_MS: f64 = 100.0;
/// The free questions the users ask, and a word the right answer's first message shows.
const QUESTIONS: [(&str, &str); 4] = [
    ("what is empretec", "EMPRETEC"),
    ("credit in uganda", "Uganda"),
    ("tell me about genilem", "Genilem"),
    ("who is the international finance corporation", "IFC"),
];
/// The call's title: every broadcast message carries it.
const TITLE: &str = "Supplier upgrading grants";
const CALL_FILE: &str = r#"provider = "Regional Supplier Development Fund"
countries = ["uganda", "kenya", "latin_america"]
sectors = ["agribusiness", "manufacturing"]
topics = ["financing"]
deadline = 2099-01-31

[en]
title = "Supplier upgrading grants"
offers = "Co-financing for equipment and certification that large buyers require from their suppliers."
eligible = "Small and medium-size farms, agro-processors and manufacturers that supply, or want to supply, a large buyer."
apply = "Ask the fund's office in your capital for the application form."
"#;
const CALL_SUMMARY: &str = "countries uganda, kenya, latin_america; sectors agribusiness, manufacturing; topics financing";

/// A subscriber's answers in the `/subscribe` flow; subscriber `i` uses template `i % 8`.
struct Template {
    topic: &'static str,
    country: &'static str,
    sector: &'static str,
    /// Whether the call reaches them, and why (not).
    reached: bool,
    why: &'static str,
}

const TEMPLATES: [Template; 8] = [
    Template { topic: "All topics", country: "Uganda", sector: "Agriculture and food", reached: true, why: "country" },
    Template { topic: "Financing", country: "Kenya", sector: "Manufacturing", reached: true, why: "country" },
    Template { topic: "All topics", country: "Brazil", sector: "Agriculture and food", reached: true, why: "region" },
    Template { topic: "Financing", country: "Uganda", sector: "Manufacturing", reached: true, why: "country" },
    Template { topic: "All topics", country: "Jordan", sector: "Agriculture and food", reached: false, why: "country" },
    Template { topic: "All topics", country: "Kenya", sector: "Mining", reached: false, why: "sector" },
    Template { topic: "Training", country: "Uganda", sector: "Agriculture and food", reached: false, why: "topic" },
    Template { topic: "Business services", country: "Viet Nam", sector: "Tourism and hotels", reached: false, why: "all three" },
];
/// The tables whose rows a subscription consists of (besides `users`), copied for every subscriber.
const COPIED: [&str; 3] = ["profiles", "subscriptions", "sessions"];

struct Settings {
    subscribers: usize,
    rate: u64,
    /// The fake's global flood limit: `BC_FAKE_LIMIT`, by default 10% above the bot's rate.
    fake_limit: u64,
    timeout: Duration,
}

impl Settings {
    fn fake_limit(&self) -> u32 {
        u32::try_from(self.fake_limit).unwrap_or(u32::MAX)
    }
}

fn chat_of(index: usize) -> i64 {
    FIRST_CHAT + index as i64
}

// ----- the bot process -----------------------------------------------------------------------

/// Runs the command line on the benchmark's database; (success, stdout and stderr).
fn cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_sme-advisor"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .env("DATABASE_PATH", dir.join("bot.sqlite3"))
            .env("RUST_LOG", "warn")
            .output()
    };
    match tokio::task::block_in_place(run) {
        Ok(out) => (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))),
        Err(e) => (false, format!("cannot run sme-advisor {}: {e}", args.join(" "))),
    }
}

// ----- seeding -------------------------------------------------------------------------------

/// The content folders as the bot finds them: `DIALOGS_DIR` and `KNOWLEDGE_DIR`, relative to the repository.
fn content_dirs() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = |var: &str, default: &str| {
        root.join(std::env::var(var).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned()))
    };
    (dir("DIALOGS_DIR", "dialogs"), dir("KNOWLEDGE_DIR", "knowledge"))
}

fn load_content() -> Result<Content, String> {
    let (dialogs, knowledge) = content_dirs();
    content::load_dirs(&dialogs, &knowledge)
        .map_err(|diags| format!("the content is invalid:\n{}", diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))
}

/// Subscribes one chat through the real engine, one turn per answer, as the bot would.
fn subscribe_through_engine(store: &mut Store, content: &Content, chat: i64, t: &Template, now: i64) -> Result<(), String> {
    let inputs = [
        Input::Command { name: "subscribe".into(), args: String::new() },
        Input::Text(t.topic.into()),
        Input::Text(t.country.into()),
        Input::Text(t.sector.into()),
        Input::Text("Yes, subscribe".into()),
    ];
    let mut user = None;
    for input in &inputs {
        let (id, _) =
            store.turn(CHANNEL, &chat.to_string(), "en", now, |s| engine::step(content, s, input, now)).map_err(|e| e.to_string())?;
        user = Some(id);
    }
    let user = user.expect("five turns");
    match store.subscription(user).map_err(|e| e.to_string())? {
        Some((true, _)) => Ok(()),
        other => Err(format!("chat {chat} ({} / {} / {}) is not subscribed after the flow: {other:?}", t.topic, t.country, t.sector)),
    }
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    names.collect()
}

fn user_of(conn: &Connection, chat: i64) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT id FROM users WHERE channel = ?1 AND external_id = ?2", params![CHANNEL, chat.to_string()], |r| r.get(0))
        .optional()
}

/// One chat's rows in `users` and the copied tables, every column but the internal ids.
/// Per table: its name and the row as (column, value) pairs.
type Rows = Vec<(String, Vec<(String, SqlValue)>)>;

fn rows_of(conn: &Connection, chat: i64) -> rusqlite::Result<Rows> {
    let Some(user) = user_of(conn, chat)? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (table, key) in [("users", "id")].into_iter().chain(COPIED.iter().map(|t| (*t, "user_id"))) {
        let cols: Vec<String> = columns(conn, table)?.into_iter().filter(|c| c != key).collect();
        let row = conn
            .query_row(&format!("SELECT {} FROM {table} WHERE {key} = ?1", cols.join(", ")), [user], |r| {
                cols.iter().enumerate().map(|(i, c)| Ok((c.clone(), r.get::<_, SqlValue>(i)?))).collect::<rusqlite::Result<Vec<_>>>()
            })
            .optional()?;
        out.push((table.to_owned(), row.unwrap_or_default()));
    }
    Ok(out)
}

struct Seeded {
    /// Per subscriber index: whether the call reaches them.
    reached: Vec<bool>,
    engine_secs: f64,
    copy_secs: f64,
    /// The rows the engine wrote for a template user in tables that are not copied (e.g. inquiries).
    not_copied: Vec<String>,
    /// How many copies were compared with rows the engine made for the same chat, all identical.
    checked: usize,
    /// Subscribers as the store lists them, and how many of them the call reaches (by `Call::reaches`).
    listed: usize,
    reach: usize,
    db_mb: f64,
}

fn seed(dir: &Path, content: &Content, n: usize) -> Result<Seeded, String> {
    let sql = |e: rusqlite::Error| format!("seeding: {e}");
    let db = dir.join("bot.sqlite3");
    let now = sme_advisor::clock::now();
    let started = Instant::now();
    let templates = n.min(TEMPLATES.len());
    {
        let mut store = Store::open(&db).map_err(|e| e.to_string())?;
        for (i, t) in TEMPLATES.iter().enumerate().take(templates) {
            subscribe_through_engine(&mut store, content, chat_of(i), t, now)?;
        }
    }
    let engine_secs = started.elapsed().as_secs_f64();

    // Copies of the templates' rows, in one transaction.
    let started = Instant::now();
    let mut conn = Connection::open(&db).map_err(sql)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(sql)?;
    let template_users: Vec<i64> = (0..templates)
        .map(|i| user_of(&conn, chat_of(i)).map(|u| u.expect("made by the engine")))
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    let mut not_copied = Vec::new();
    let tables: Vec<String> = {
        let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map_err(sql)?;
        stmt.query_map([], |r| r.get(0)).map_err(sql)?.collect::<Result<_, _>>().map_err(sql)?
    };
    for table in tables.iter().filter(|t| !COPIED.contains(&t.as_str())) {
        if columns(&conn, table).map_err(sql)?.iter().any(|c| c == "user_id") {
            let ids = template_users.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            let rows: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table} WHERE user_id IN ({ids})"), [], |r| r.get(0)).map_err(sql)?;
            if rows > 0 {
                not_copied.push(format!("{table}: {rows} row(s) for the {templates} template users"));
            }
        }
    }
    {
        let tx = conn.transaction().map_err(sql)?;
        let user_cols: Vec<String> = columns(&tx, "users").map_err(sql)?.into_iter().filter(|c| c != "id" && c != "external_id").collect();
        let mut insert_user = tx
            .prepare(&format!("INSERT INTO users (external_id, {c}) SELECT ?1, {c} FROM users WHERE id = ?2", c = user_cols.join(", ")))
            .map_err(sql)?;
        let mut copies = Vec::new();
        for table in COPIED {
            let cols: Vec<String> = columns(&tx, table).map_err(sql)?.into_iter().filter(|c| c != "user_id").collect();
            let c = cols.join(", ");
            copies.push(
                tx.prepare(&format!("INSERT INTO {table} (user_id, {c}) SELECT ?1, {c} FROM {table} WHERE user_id = ?2")).map_err(sql)?,
            );
        }
        for i in templates..n {
            let template = template_users[i % TEMPLATES.len()];
            insert_user.execute(params![chat_of(i).to_string(), template]).map_err(sql)?;
            let user = tx.last_insert_rowid();
            for copy in &mut copies {
                copy.execute(params![user, template]).map_err(sql)?;
            }
        }
        drop(copies);
        drop(insert_user);
        tx.commit().map_err(sql)?;
    }
    let copy_secs = started.elapsed().as_secs_f64();

    // The copies against what the engine makes for the same chats, in a scratch database.
    let scratch_path = dir.join("engine-check.sqlite3");
    let mut checked = 0;
    {
        let mut scratch = Store::open(&scratch_path).map_err(|e| e.to_string())?;
        for i in TEMPLATES.len()..n.min(2 * TEMPLATES.len()) {
            subscribe_through_engine(&mut scratch, content, chat_of(i), &TEMPLATES[i % TEMPLATES.len()], now)?;
        }
    }
    let scratch = Connection::open(&scratch_path).map_err(sql)?;
    for i in TEMPLATES.len()..n.min(2 * TEMPLATES.len()) {
        let (copied, made) = (rows_of(&conn, chat_of(i)).map_err(sql)?, rows_of(&scratch, chat_of(i)).map_err(sql)?);
        if copied != made {
            return Err(format!("seeded rows of chat {} differ from the engine's:\n  seeded: {copied:?}\n  engine: {made:?}", chat_of(i)));
        }
        checked += 1;
    }
    drop(scratch);
    let _ = std::fs::remove_file(&scratch_path);
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    drop(conn);

    // The subscribers as the bot will list them, and whom the call reaches.
    let call = sme_advisor::broadcast::parse_call("call.toml", CALL_FILE, content)
        .map_err(|diags| format!("the benchmark's call file:\n{}", sme_advisor::broadcast::report(&diags)))?;
    let store = Store::open(&db).map_err(|e| e.to_string())?;
    let subscribers = store.subscribers(CHANNEL).map_err(|e| e.to_string())?;
    let reached: Vec<bool> = (0..n).map(|i| TEMPLATES[i % TEMPLATES.len()].reached).collect();
    let mut reach = 0;
    for s in &subscribers {
        let index = usize::try_from(s.chat_id - FIRST_CHAT).ok().filter(|i| *i < n);
        let reaches = call.reaches(content, s);
        reach += usize::from(reaches);
        if index.map(|i| reached[i]) != Some(reaches) {
            return Err(format!("subscriber {s:?}: the call reaches them: {reaches}, the benchmark expected otherwise"));
        }
    }
    drop(store);
    let db_mb = std::fs::metadata(&db).map_or(0.0, |m| m.len() as f64 / 1_048_576.0);
    Ok(Seeded { reached, engine_secs, copy_secs, not_copied, checked, listed: subscribers.len(), reach, db_mb })
}

// ----- the users asking questions during the broadcast ----------------------------------------

/// One question and its answer.
#[derive(Clone, Copy)]
struct Sample {
    /// When the question was pushed, since the fake started.
    pushed: Duration,
    latency: Duration,
    answered: bool,
    /// The first reply message showed the expected answer.
    right: bool,
}

/// The first bot message in the chat from `first_new_id` on. Reads only those few messages.
fn first_reply(api: &FakeBotApi, chat: i64, first_new_id: i64) -> Option<BotMessage> {
    let (mut id, mut misses) = (first_new_id, 0);
    while misses < 2 {
        match api.message(chat, id) {
            Some(m) if m.from_bot => return Some(m),
            Some(_) => misses = 0,
            None => misses += 1,
        }
        id += 1;
    }
    None
}

async fn ask(api: FakeBotApi, k: usize, started: Instant, stop: Arc<AtomicBool>, samples: Arc<Mutex<Vec<Sample>>>) {
    let chat = FIRST_ASKER + k as i64;
    // Spread the users over the second.
    tokio::time::sleep(ASK_PAUSE * k as u32 / ASKERS as u32).await;
    let mut i = k;
    while !stop.load(Ordering::Relaxed) {
        let (question, needle) = QUESTIONS[i % QUESTIONS.len()];
        i += 1;
        let first_new_id = api.all_messages(chat).last().map_or(1, |m| m.message_id + 1);
        let pushed = Instant::now();
        api.push_text(chat, chat, "en", question);
        let what = format!("a reply in chat {chat}");
        // The outer timeout ends the wait first, so `wait_until` never reaches its own (panicking) one.
        let waited =
            tokio::time::timeout(REPLY_TIMEOUT, api.wait_until(&what, REPLY_TIMEOUT * 2, |a| first_reply(a, chat, first_new_id).is_some()))
                .await;
        let latency = pushed.elapsed();
        let right = first_reply(&api, chat, first_new_id).and_then(|m| m.plain_text).is_some_and(|t| t.contains(needle));
        let sample = Sample { pushed: pushed.duration_since(started), latency, answered: waited.is_ok(), right };
        samples.lock().unwrap_or_else(|e| e.into_inner()).push(sample);
        tokio::time::sleep(ASK_PAUSE).await;
    }
}

// ----- report helpers ------------------------------------------------------------------------

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// 12345 -> "12,345".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The log without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn chat_of_call(call: &Call) -> Option<i64> {
    match call.params.get("chat_id")? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn is_broadcast(call: &Call) -> bool {
    call.method == "sendMessage" && call.params.get("text").and_then(serde_json::Value::as_str).is_some_and(|t| t.contains(TITLE))
}

/// Waits until the bot has sent nothing new for a second (at most 15 s): late messages land.
async fn settle(api: &FakeBotApi) {
    let sent = || api.successful_calls("sendMessage") + api.successful_calls("editMessageText");
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut last, mut quiet) = (sent(), 0);
    while quiet < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sent();
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
}

/// The broadcast's status and (sent, pending, total), read from the bot's database.
fn progress(conn: &Connection, id: i64) -> rusqlite::Result<(String, i64, i64, i64)> {
    let status: String = conn.query_row("SELECT status FROM broadcasts WHERE id = ?1", [id], |r| r.get(0))?;
    let (sent, pending, total) = conn.query_row(
        "SELECT coalesce(sum(status = 'sent'), 0), coalesce(sum(status = 'pending'), 0), count(*) FROM deliveries WHERE broadcast_id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok((status, sent, pending, total))
}

// ----- the run -------------------------------------------------------------------------------

fn main() -> ExitCode {
    let rate = env_number("BC_RATE", 500);
    let settings = Settings {
        subscribers: env_number("BC_SUBSCRIBERS", 100_000) as usize,
        rate,
        fake_limit: env_number("BC_FAKE_LIMIT", (rate * 11).div_ceil(10)),
        timeout: Duration::from_secs(env_number("BC_TIMEOUT_SECS", 600)),
    };
    // Two threads for the fake server and the simulated users: the machine the figures were
    // taken on has two cores, shared with the bot.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> ExitCode {
    let run_started = Instant::now();
    let deadline = run_started + settings.timeout;
    let load_before = load_average();
    let n = settings.subscribers;
    let dir = std::env::temp_dir().join(format!("sme-advisor-broadcast-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    eprintln!("broadcast_load: seeding {} subscribers in {}", thousands(n), dir.display());

    let content = match load_content() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let seeded = match tokio::task::block_in_place(|| seed(&dir, &content, n)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("FAILED: {e}\n(database kept in {})", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let expected = seeded.reached.iter().filter(|r| **r).count();

    // The fake server knows every chat, and enforces the flood limits.
    let started = Instant::now();
    let api = FakeBotApi::start(TOKEN).await;
    let limits = RateLimits { global_per_second: settings.fake_limit(), per_chat_per_second: 1, ..RateLimits::default() };
    api.set_rate_limits(Some(limits.clone()));
    for i in 0..n {
        api.add_chat(chat_of(i));
    }
    let rate = settings.rate.to_string();
    let mut bot = Bot::start(&api, &dir, &[("BROADCAST_RATE", rate.as_str()), ("RUST_LOG", "warn,sme_advisor::telegram::broadcast=info")]);
    let pid = bot.pid().to_string();
    if let Err(message) = bot.ready(&api).await {
        eprintln!("{message}");
        return ExitCode::FAILURE;
    }
    let rss_ready_kb = status_kb(&pid, "VmRSS").unwrap_or(0);

    // Create and send the call through the command line.
    let call_path = dir.join("call.toml");
    std::fs::write(&call_path, CALL_FILE).expect("the call file");
    let (ok, out) = cli(&dir, &["broadcast", "create", &call_path.display().to_string()]);
    let draft = out.split("draft #").nth(1).and_then(|rest| {
        let mut words = rest.split_whitespace();
        let id = words.next()?.parse::<i64>().ok()?;
        let reach = words.nth(1)?.parse::<usize>().ok()?;
        Some((id, reach))
    });
    let Some((id, cli_reach)) = draft.filter(|_| ok) else {
        eprintln!("FAILED: `broadcast create` did not make a draft:\n{out}");
        return ExitCode::FAILURE;
    };
    let ticks_before_send = cpu_ticks(&pid).unwrap_or(0);
    let self_ticks_before = cpu_ticks("self").unwrap_or(0);
    let send_at = started.elapsed();
    let (ok, out) = cli(&dir, &["broadcast", "send", &id.to_string()]);
    if !ok {
        eprintln!("FAILED: `broadcast send {id}`:\n{out}");
        return ExitCode::FAILURE;
    }
    let send_line = out.trim().to_owned();

    // The users asking questions.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let askers: Vec<_> = (0..ASKERS).map(|k| tokio::spawn(ask(api.clone(), k, started, stop.clone(), samples.clone()))).collect();

    // Watch the broadcast in the bot's database until it is done.
    let db = Connection::open_with_flags(dir.join("bot.sqlite3"), OpenFlags::SQLITE_OPEN_READ_ONLY).expect("the bot's database");
    let _ = db.busy_timeout(Duration::from_secs(1));
    let (mut timed_out, mut died) = (false, None);
    let (mut ticks_first, mut first_seen) = (None, None);
    let (mut last_status, mut last_print, mut last_sent) = (String::new(), Instant::now(), 0);
    let mut rss_samples_kb = Vec::new();
    let ticks_done = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(message) = bot.has_exited() {
            died = Some(message);
            break cpu_ticks(&pid);
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break cpu_ticks(&pid);
        }
        let Ok((status, sent, pending, total)) = tokio::task::block_in_place(|| progress(&db, id)) else { continue };
        if sent > 0 && ticks_first.is_none() {
            ticks_first = cpu_ticks(&pid);
            first_seen = Some(started.elapsed());
        }
        if let Some(kb) = status_kb(&pid, "VmRSS") {
            rss_samples_kb.push(kb);
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            let rate = (sent - last_sent) as f64 / last_print.elapsed().as_secs_f64();
            eprintln!(
                "[{:>5.0} s] #{id} {status}: sent {} of {}, pending {}; {rate:.0}/s over the last {:.0} s",
                started.elapsed().as_secs_f64(),
                thousands(sent as usize),
                thousands(total as usize),
                thousands(pending as usize),
                last_print.elapsed().as_secs_f64()
            );
            (last_print, last_sent) = (Instant::now(), sent);
        }
        last_status = status;
        if last_status == "done" || last_status == "cancelled" {
            break cpu_ticks(&pid);
        }
    };
    let done_at = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for asker in askers {
        if timed_out || died.is_some() {
            asker.abort();
        }
        let _ = asker.await;
    }
    settle(&api).await;

    // The bot's figures, read right before stopping it.
    let hwm_kb = status_kb(&pid, "VmHWM");
    let rss_end_kb = status_kb(&pid, "VmRSS");
    let self_ticks = cpu_ticks("self").unwrap_or(0).saturating_sub(self_ticks_before);
    let (_, status_line) = cli(&dir, &["broadcast", "status", &id.to_string()]);
    drop(db);
    bot.stop();
    let log = bot.log();
    let bot_errors = api.bot_errors();
    let too_many = api.too_many_requests_count();
    let fault_stats = api.fault_stats();
    let calls = api.calls();
    api.shutdown();

    // Broadcast messages per chat, from the fake's call log.
    let mut received: HashMap<i64, usize> = HashMap::new();
    let mut times: Vec<Duration> = Vec::new();
    let (mut descents, mut last_chat) = (0, i64::MIN);
    for call in calls.iter().filter(|c| c.status == 200 && is_broadcast(c)) {
        let Some(chat) = chat_of_call(call) else { continue };
        *received.entry(chat).or_default() += 1;
        times.push(call.at);
        if chat < last_chat {
            descents += 1;
        }
        last_chat = last_chat.max(chat);
    }
    let index_of = |chat: i64| usize::try_from(chat - FIRST_CHAT).ok().filter(|i| *i < n);
    let reached = (0..n).filter(|i| seeded.reached[*i] && received.get(&chat_of(*i)).is_some_and(|c| *c > 0)).count();
    let misses = expected - reached;
    let duplicated_chats = received.values().filter(|c| **c > 1).count();
    let extra_messages: usize = received.values().map(|c| c.saturating_sub(1)).sum();
    let strays = received.keys().filter(|chat| index_of(**chat).is_none_or(|i| !seeded.reached[i])).count();
    let broadcast_messages: usize = received.values().sum();
    let (first_bc, last_bc) = (times.first().copied(), times.last().copied());
    let span = match (first_bc, last_bc) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    let achieved = if span.is_zero() { 0.0 } else { reached as f64 / span.as_secs_f64() };
    let share = achieved / settings.rate as f64;
    // Sending rate per 10 s, and the longest pause between two broadcast messages.
    let mut buckets: BTreeMap<u64, usize> = BTreeMap::new();
    let (mut longest_gap, mut gap_at) = (Duration::ZERO, Duration::ZERO);
    if let Some(first) = first_bc {
        for pair in times.windows(2) {
            if pair[1].saturating_sub(pair[0]) > longest_gap {
                (longest_gap, gap_at) = (pair[1].saturating_sub(pair[0]), pair[0].saturating_sub(first));
            }
        }
        for t in &times {
            *buckets.entry(t.saturating_sub(first).as_secs() / 10).or_default() += 1;
        }
    }
    // 429s, by whom they hit.
    let mut refused_429: BTreeMap<&str, usize> = BTreeMap::new();
    for call in calls.iter().filter(|c| c.status == 429) {
        let whom = match chat_of_call(call) {
            Some(chat) if chat >= FIRST_ASKER => "a question's reply",
            Some(_) if is_broadcast(call) => "a broadcast message",
            _ => "other",
        };
        *refused_429.entry(whom).or_default() += 1;
    }
    let failed_calls: BTreeMap<String, usize> = calls.iter().filter(|c| c.status != 200).fold(BTreeMap::new(), |mut m, c| {
        *m.entry(format!("{} {}", c.method, c.status)).or_default() += 1;
        m
    });

    // The questions asked during the broadcast (pushed between its first and last message).
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    let during = |s: &Sample| first_bc.is_some_and(|a| s.pushed >= a) && last_bc.is_some_and(|b| s.pushed <= b);
    let answered_during: Vec<Duration> = samples.iter().filter(|s| during(s) && s.answered).map(|s| s.latency).collect();
    let before_first = |s: &Sample| first_bc.is_none_or(|a| s.pushed < a);
    let answered_before: Vec<Duration> = samples.iter().filter(|s| before_first(s) && s.answered).map(|s| s.latency).collect();
    let answered_after: Vec<Duration> =
        samples.iter().filter(|s| !during(s) && !before_first(s) && s.answered).map(|s| s.latency).collect();
    let unanswered = samples.iter().filter(|s| !s.answered).count();
    let wrong = samples.iter().filter(|s| s.answered && !s.right).count();
    let mut sorted = answered_during.clone();
    sorted.sort();
    let p99 = ms(percentile(&sorted, 0.99));

    // CPU and memory.
    let tick = clock_ticks_per_second() as f64;
    let secs = |from: u64, to: Option<u64>| to.map(|t| t.saturating_sub(from) as f64 / tick);
    let cpu_total = secs(ticks_before_send, ticks_done);
    let cpu_snapshot = ticks_first.and_then(|f| secs(ticks_before_send, Some(f)));
    let cpu_sending = ticks_first.and_then(|f| secs(f, ticks_done));
    let per_message = |cpu: Option<f64>| cpu.filter(|_| broadcast_messages > 0).map(|s| s * 1000.0 / broadcast_messages as f64);
    let sending_wall = first_seen.map(|f| done_at.saturating_sub(f));
    let peak_mb = hwm_kb.map(|kb| kb as f64 / 1024.0);
    let log = strip_ansi(&log);
    let warn_lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();

    // The report.
    let (nproc, model) = machine();
    let fmt_opt = |v: Option<f64>, unit: &str| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3} {unit}"));
    let fake_limit = settings.fake_limit();
    println!();
    println!("== sme-advisor broadcast benchmark ==");
    println!(
        "reproduce : BC_SUBSCRIBERS={} BC_RATE={} BC_FAKE_LIMIT={} BC_TIMEOUT_SECS={} cargo bench --bench broadcast_load",
        n,
        settings.rate,
        settings.fake_limit,
        settings.timeout.as_secs()
    );
    println!(
        "machine   : nproc {nproc}, {model}; load average {load_before} before the run, {} after; {} build; bot WORKERS={}",
        load_average(),
        if cfg!(debug_assertions) { "debug" } else { "release" },
        std::env::var("WORKERS").unwrap_or_else(|_| "default".to_owned())
    );
    if settings.rate != DEFAULT_RATE {
        let at_default = expected as f64 / DEFAULT_RATE as f64 / 60.0;
        let at_default = if at_default < 10.0 { format!("{at_default:.1}") } else { format!("{at_default:.0}") };
        println!(
            "SHORTENED : the issue asks for the default BROADCAST_RATE={DEFAULT_RATE}/s, at which these {} recipients take {at_default} min; \
             this run used BROADCAST_RATE={} against the fake's flood limit of {fake_limit}/s overall and {}/s per chat",
            thousands(expected),
            settings.rate,
            limits.per_chat_per_second
        );
    } else {
        println!(
            "rate      : the bot's default BROADCAST_RATE={DEFAULT_RATE}/s, the fake's flood limit {fake_limit}/s overall and {}/s per chat",
            limits.per_chat_per_second
        );
    }
    let (dialogs, knowledge) = content_dirs();
    println!("content   : {} and {}", dialogs.display(), knowledge.display());
    if n != 100_000 {
        println!("SMALLER   : {} subscribers instead of the issue's 100,000", thousands(n));
    }
    println!(
        "input     : {} subscribers (chat ids {}..{}), {} through the engine and {} copies of their rows in {:.2} s + {:.2} s; \
         database {:.0} MB",
        thousands(n),
        FIRST_CHAT,
        chat_of(n.saturating_sub(1)),
        n.min(TEMPLATES.len()),
        thousands(n.saturating_sub(TEMPLATES.len())),
        seeded.engine_secs,
        seeded.copy_secs,
        seeded.db_mb
    );
    println!(
        "            seeded rows checked against the engine's for the same chat: {} of {} identical (users, {}); \
         not copied: {}",
        seeded.checked,
        n.saturating_sub(TEMPLATES.len()).min(TEMPLATES.len()),
        COPIED.join(", "),
        if seeded.not_copied.is_empty() { "nothing else".to_owned() } else { seeded.not_copied.join("; ") }
    );
    for (i, t) in TEMPLATES.iter().enumerate() {
        println!(
            "            template {i}: {:<17} {:<8} {:<20} -> {} ({})",
            t.topic,
            t.country,
            t.sector,
            if t.reached { "reached" } else { "not reached" },
            if t.reached { format!("by {}", t.why) } else { format!("fails {}", t.why) }
        );
    }
    println!(
        "call      : #{id} \"{TITLE}\" for {CALL_SUMMARY}; reaches {} by `broadcast create`, {} by `Call::reaches` \
         over the {} subscribers the store lists ({} expected from the templates)",
        thousands(cli_reach),
        thousands(seeded.reach),
        thousands(seeded.listed),
        thousands(expected)
    );
    println!(
        "            {} users ask free questions during the broadcast, each in its own chat, {:.1} s after each reply: {}",
        ASKERS,
        ASK_PAUSE.as_secs_f64(),
        QUESTIONS.iter().map(|(q, _)| format!("{q:?}")).collect::<Vec<_>>().join(", ")
    );
    println!(
        "run       : {}; wall {:.1} s from `broadcast send` to `done` seen ({:.1} s in all); first broadcast message {} after `send`, \
         `done` seen {} after the last",
        if timed_out {
            format!("TIMED OUT after {} s: partial figures", settings.timeout.as_secs())
        } else if died.is_some() {
            "THE BOT DIED: partial figures".to_owned()
        } else {
            format!("broadcast {last_status}")
        },
        done_at.saturating_sub(send_at).as_secs_f64(),
        run_started.elapsed().as_secs_f64(),
        first_bc.map_or("n/a".to_owned(), |f| format!("{:.1} s", f.saturating_sub(send_at).as_secs_f64())),
        last_bc
            .filter(|_| !timed_out && died.is_none())
            .map_or("n/a".to_owned(), |l| format!("{:.1} s", done_at.saturating_sub(l).as_secs_f64())),
    );
    println!("            {send_line}");
    println!("            {}", status_line.trim());
    println!();
    println!("{:<58} {:>16}   aim", "figure", "measured");
    println!(
        "{:<58} {:>13.1}/s   >= {:.0}% of {}/s = {:.1}/s: {}",
        "achieved rate (reached / first..last message)",
        achieved,
        AIM_RATE_SHARE * 100.0,
        settings.rate,
        AIM_RATE_SHARE * settings.rate as f64,
        met(share >= AIM_RATE_SHARE)
    );
    println!("{:<58} {:>15.1}%", "  as a share of BC_RATE", share * 100.0);
    println!("{:<58} {:>16}   none: {}", "429s provoked (all calls)", too_many, met(too_many == 0));
    let complete = !timed_out && died.is_none() && last_status == "done";
    println!(
        "{:<58} {:>16}   none: {}",
        "misses (reached chats with no broadcast message)",
        misses,
        if complete { met(misses == 0) } else { "n/a, the run stopped early: includes those still pending" }
    );
    println!(
        "{:<58} {:>16}   none: {}",
        "duplicates (chats with more than one; extra messages)",
        format!("{duplicated_chats}; {extra_messages}"),
        met(duplicated_chats == 0)
    );
    println!("{:<58} {:>16}   none: {}", "non-reached chats that got the call", strays, met(strays == 0));
    println!(
        "{:<58} {:>13.2} ms   < {AIM_P99_MS} ms: {}",
        "reply latency p99, questions asked during the broadcast",
        p99,
        met(!sorted.is_empty() && p99 < AIM_P99_MS)
    );
    println!("{:<58} {:>13.2} ms", "  p50", ms(percentile(&sorted, 0.50)));
    println!("{:<58} {:>13.2} ms", "  max", ms(sorted.last().copied().unwrap_or_default()));
    println!("{:<58} {:>16}", "  questions answered during the broadcast", sorted.len());
    println!("{:<58} {:>16}", "bot CPU from `send` to `done` (recipients' snapshot included)", fmt_opt(cpu_total, "s"));
    println!("{:<58} {:>16}", "  per broadcast message", fmt_opt(per_message(cpu_total), "ms"));
    println!("{:<58} {:>16}", "  before the first message (snapshot of the recipients)", fmt_opt(cpu_snapshot, "s"));
    println!("{:<58} {:>16}", "  while sending, per broadcast message", fmt_opt(per_message(cpu_sending), "ms"));
    println!(
        "{:<58} {:>16}",
        "  while sending, cores used (CPU s / wall s)",
        match (cpu_sending, sending_wall) {
            (Some(c), Some(w)) if !w.is_zero() => format!("{:.2}", c / w.as_secs_f64()),
            _ => "n/a".to_owned(),
        }
    );
    println!("{:<58} {:>16}", "bot peak memory (VmHWM)", fmt_opt(peak_mb, "MB"));
    println!();
    println!(
        "broadcast messages accepted by the fake: {}, to {} chats; sent out of chat-id order: {descents}; longest pause between two: \
         {:.0} ms ({:.1} s in)",
        thousands(broadcast_messages),
        thousands(received.len()),
        ms(longest_gap),
        gap_at.as_secs_f64()
    );
    let timeline: Vec<String> = buckets.values().map(|c| format!("{:.0}", *c as f64 / 10.0)).collect();
    println!("messages per second, per 10 s from the first one: {}", timeline.join(" "));
    println!("questions during the broadcast (pushed between its first and last message): {}", spread(&answered_during));
    println!("questions before its first message (from `send`, the recipients' snapshot included): {}", spread(&answered_before));
    println!("questions after its last message: {}", spread(&answered_after));
    println!("questions unanswered within {} s: {unanswered}; answered with something else first: {wrong}", REPLY_TIMEOUT.as_secs());
    println!(
        "bot memory: VmRSS {} kB when ready, {} kB at most while sending (sampled), {} kB at the end, VmHWM {} kB; MB = kB / 1024",
        rss_ready_kb,
        rss_samples_kb.iter().max().map_or("n/a".to_owned(), |v| v.to_string()),
        rss_end_kb.map_or("n/a".to_owned(), |v| v.to_string()),
        hwm_kb.map_or("n/a".to_owned(), |v| v.to_string())
    );
    println!(
        "bot CPU: {} from `send` to `done`, wall {:.1} s; sending phase {} over {} ({} ticks/s)",
        fmt_opt(cpu_total, "s"),
        done_at.saturating_sub(send_at).as_secs_f64(),
        fmt_opt(cpu_sending, "s"),
        sending_wall.map_or("n/a".to_owned(), |w| format!("{:.1} s", w.as_secs_f64())),
        tick
    );
    println!(
        "fake server + users + monitor (this process) CPU from `send` to the end: {:.2} s, on the same {nproc} core(s)",
        self_ticks as f64 / tick
    );
    let refused: Vec<String> = refused_429.iter().map(|(k, v)| format!("{k} x{v}")).collect();
    println!("429s: {} (fake stats {:?})", if refused.is_empty() { "none".to_owned() } else { refused.join(", ") }, fault_stats);
    let failed: Vec<String> = failed_calls.iter().map(|(k, v)| format!("{k} x{v}")).collect();
    println!(
        "calls not answered 200: {} (getUpdates 409/499 are long-poll artifacts of stopping)",
        if failed.is_empty() { "none".to_owned() } else { failed.join(", ") }
    );
    for call in bot_errors.iter().take(3) {
        println!("  refused: {}", call.one_line());
    }
    println!("bot log (RUST_LOG=warn,sme_advisor::telegram::broadcast=info): {} line(s)", warn_lines.len());
    for line in warn_lines.iter().take(12) {
        println!("  {line}");
    }
    if let Some(message) = &died {
        println!("{message}");
    }

    if !complete {
        println!("FAILED: the run did not complete (database and log kept in {})", dir.display());
        ExitCode::FAILURE
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        ExitCode::SUCCESS
    }
}
