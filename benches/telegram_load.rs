//! Load benchmark of the real `sme-advisor serve` binary against the fake Bot API: 200 users, 50 at a time, five steps each.
//!
//! Run with `cargo bench --bench telegram_load` (a release build). By default it runs twice, first
//! with the fake's rate limits off (and the bot's own pacing lifted), then with Telegram's limits
//! on, and ends with one table of both runs: CPU per update, latency p50/p99, peak memory, 429s
//! and sends during a `retry_after`, each against its aim. Every simulated user has its own
//! private chat and taps through the financing flow: `/start`, *Financing*, a typed country, a
//! sector button, a size button. Each step's latency runs from pushing the update into the fake
//! server to the moment the expected reply text is visible there (a new message or an edit).
//! All traffic stays on 127.0.0.1; the run stops by itself after `LOAD_TIMEOUT_SECS`.
//!
//! It prints steps per second, latency percentiles (overall and per step), the bot's CPU time per
//! update and peak memory (from `/proc/<pid>/stat` and `/proc/<pid>/status`, read right before the
//! bot is stopped), the calls the fake refused, and a check of every finished chat's transcript
//! against its country's most common one (messages sent twice, lost or reordered edits).
//! By default the users have no think time: each sends its next update as soon as it sees the
//! reply, so with 50 at a time the bot runs saturated and the latencies include queueing. The fake
//! server and the users run in this process, on the same cores as the bot.
//!
//! `LOAD_DB_USERS` (default 0) seeds the bot's database before the run with that many other users,
//! each with a profile, a session and an inquiry (one user through the engine, the rest copies of
//! its rows), to measure memory with a populated database.
//!
//! With the limits off the bot runs with `SEND_RATE=100000 CHAT_RATE=1000`, so that its own pacing
//! does not hide the hot path. With them on the fake enforces Telegram's flood limits (30 messages
//! a second in all, a burst of 3 then one a second per chat, 20 a minute per group) and the report
//! counts its 429s and the sends made while a `retry_after` was running. `LOAD_LIMITS=0` runs only
//! the first, `LOAD_LIMITS=1` only the second; `LOAD_FAULTS=1` (one run, limits off unless
//! `LOAD_LIMITS=1`) answers 10% of sends and edits 502 and drops 2% of their connections.
//!
//! `LOAD_THINK_MS` (default 0) makes each user pause about that long before each of its steps
//! (uniformly between half and one and a half times it; up to once it before the first step, so
//! the users do not move in lockstep): with 50 users and no pause the bot is saturated and a step's
//! latency is mostly its wait in the queue (Little's law: 50 in flight at N steps a second wait
//! 50/N s on average); with a pause it is the time the bot takes for the update itself.
//!
//! `LOAD_BOT=bare` runs the same users against a bare teloxide echo bot instead (no storage, no
//! content; `examples/bare_echo.rs`, build it first with `cargo build --release --example
//! bare_echo`): five texts each, each answered by itself. It is the floor `serve` is compared with
//! (issue 14: "at or below a bare teloxide bot"); one run, limits off.
//!
//! Environment overrides: `LOAD_USERS` (default 200), `LOAD_CONCURRENCY` (default 50),
//! `LOAD_TIMEOUT_SECS` (default 300). `WORKERS` and `TOKIO_WORKER_THREADS` are passed on to the bot if set. The process exits
//! non-zero when the run timed out or a user could not finish; figures above the aims are printed,
//! not failed.

// `cargo bench` compiles with `cfg(test)` but without `--test`, so the fake's own `tests` module
// is built without its `#[test]` functions and its imports would be reported as unused.
#[allow(unused_imports)]
#[path = "../tests/it/fake_bot_api/mod.rs"]
mod fake_bot_api;

mod common;

use common::*;
use std::collections::{BTreeMap, HashMap, HashSet};

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_bot_api::{BotMessage, Call, FakeBotApi};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Chat id (= user id) of the first simulated user.
const FIRST_CHAT: i64 = 100_000;
/// A step with no reply after this long counts as an error and ends that user's run.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const COUNTRIES: [&str; 5] = ["Kenya", "Uganda", "Brazil", "Jordan", "Viet Nam"];
const SECTOR: &str = "Manufacturing";
const SIZE: &str = "Small (10 to 49 people)";
/// What each step does, and the text whose appearance marks its reply.
const STEPS: [(&str, &str); 5] = [
    ("/start", "What does your business need?"),
    ("press Financing", "Which country"),
    ("type a country", "Which sector"),
    ("press Manufacturing", "How big is your business?"),
    ("press Small", "Why it fits"),
];
/// With `LOAD_BOT=bare`: five text messages, each answered by the same text.
const ECHO_STEPS: [(&str, &str); 5] = [
    ("say echo one", "echo one"),
    ("say echo two", "echo two"),
    ("say echo three", "echo three"),
    ("say echo four", "echo four"),
    ("say echo five", "echo five"),
];
/// Issue 14's aims for the run without limits.
const AIM_P99_MS: f64 = 5.0;
const AIM_CPU_MS_PER_UPDATE: f64 = 0.5;
const AIM_PEAK_MB: f64 = 30.0;

#[derive(Clone)]
struct Settings {
    users: usize,
    db_users: usize,
    concurrency: usize,
    timeout: Duration,
    limits: bool,
    faults: bool,
    think: Duration,
    /// `LOAD_BOT=bare`: the bare teloxide echo bot (`examples/bare_echo.rs`) instead of `serve`.
    bare: bool,
}

impl Settings {
    fn steps(&self) -> &'static [(&'static str, &'static str); 5] {
        if self.bare { &ECHO_STEPS } else { &STEPS }
    }
}

/// What the users recorded so far (kept when the run times out).
#[derive(Default)]
struct Results {
    /// Per step: latency from pushing the update to the expected reply being visible.
    latency: [Vec<Duration>; 5],
    /// Chat id -> (country, when the last step's update was pushed, since the fake started).
    last_push: HashMap<i64, (&'static str, Duration)>,
    /// Chat id -> every update pushed: (when, since the fake started; which step).
    pushes: HashMap<i64, Vec<(Duration, &'static str)>>,
    /// Callback query id -> chat id, to attribute `answerCallbackQuery` calls.
    queries: HashMap<String, i64>,
    errors: Vec<String>,
    users_done: usize,
}

// ----- one simulated user --------------------------------------------------------------------

/// True when a bot message in the chat that is new since `first_new_id`, or the pressed
/// message, shows `needle`. Reads only those few messages, not the chat or the call log.
fn reply_visible(api: &FakeBotApi, chat: i64, first_new_id: i64, pressed: Option<i64>, needle: &str) -> bool {
    let shows = |m: &BotMessage| m.from_bot && m.plain_text.as_deref().is_some_and(|t| t.contains(needle));
    if let Some(id) = pressed
        && api.message(chat, id).is_some_and(|m| shows(&m))
    {
        return true;
    }
    // Message ids are allocated one after another per chat; stop at the second missing one.
    let (mut id, mut misses) = (first_new_id, 0);
    while misses < 2 {
        match api.message(chat, id) {
            Some(m) if shows(&m) => return true,
            Some(_) => misses = 0,
            None => misses += 1,
        }
        id += 1;
    }
    false
}

/// One simulated user: its chat, and where it records what it measured.
struct User {
    api: FakeBotApi,
    chat: i64,
    started: Instant,
    results: Arc<Mutex<Results>>,
    /// The pause before each step after the first (`LOAD_THINK_MS`).
    think: Duration,
    /// What each step does and the text that marks its reply.
    steps: &'static [(&'static str, &'static str); 5],
}

impl User {
    fn results(&self) -> std::sync::MutexGuard<'_, Results> {
        self.results.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pushes the update of step `i`, waits for its reply and records the latency; returns when
    /// the update was pushed, since the fake started.
    async fn step(&self, i: usize, pressed: Option<i64>, push: impl FnOnce(&FakeBotApi) -> i64) -> Result<Duration, String> {
        let (api, chat, needle) = (&self.api, self.chat, self.steps[i].1);
        if !self.think.is_zero() {
            tokio::time::sleep(pause(self.think, self.chat, i)).await;
        }
        let first_new_id = api.all_messages(chat).last().map_or(1, |m| m.message_id + 1);
        if let Some(id) = pressed
            && reply_visible(api, chat, i64::MAX, Some(id), needle)
        {
            return Err(format!("chat {chat}: message {id} already shows {needle:?} before the press"));
        }
        let pushed = Instant::now();
        let update_id = push(api);
        let what = format!("chat {chat} to show {needle:?}");
        // The outer timeout ends the wait first, so `wait_until` never reaches its own (panicking) one.
        let waited = tokio::time::timeout(
            STEP_TIMEOUT,
            api.wait_until(&what, STEP_TIMEOUT * 2, |a| reply_visible(a, chat, first_new_id, pressed, needle)),
        )
        .await;
        let latency = pushed.elapsed();
        let pushed = pushed.duration_since(self.started);
        let query = pressed.and_then(|_| api.query_id_of(update_id));
        let mut results = self.results();
        results.pushes.entry(chat).or_default().push((pushed, self.steps[i].0));
        if let Some(query) = query {
            results.queries.insert(query, chat);
        }
        match waited {
            Ok(()) => {
                results.latency[i].push(latency);
                Ok(pushed)
            }
            Err(_) => Err(format!("chat {chat}: step {} ({}) got no {needle:?} within {STEP_TIMEOUT:?}", i + 1, self.steps[i].0)),
        }
    }
}

/// The pause before step `i`: with `LOAD_THINK_MS` set, users who act independently rather than in
/// waves. Each pause is uniform between half and one and a half times the think time, and the
/// first step waits up to one think time, so 50 users do not all press at the same instant (a
/// fixed pause keeps them in lockstep, and every wave of 50 updates queues behind itself).
/// Deterministic per chat and step, so runs are comparable.
fn pause(think: Duration, chat: i64, i: usize) -> Duration {
    let mix = ((chat as u64) << 8 ^ i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let unit = (mix >> 11) as f64 / (1u64 << 53) as f64;
    if i == 0 { think.mul_f64(unit) } else { think.mul_f64(0.5 + unit) }
}

/// The newest bot message in the chat carrying a button with this label.
fn newest_with_button(api: &FakeBotApi, chat: i64, label: &str) -> Result<i64, String> {
    let messages = api.messages(chat);
    messages.iter().rev().find(|m| m.button_labels().iter().any(|l| l == label)).map(|m| m.message_id).ok_or_else(|| {
        format!("chat {chat}: no button {label:?} among {:?}", messages.iter().map(BotMessage::button_labels).collect::<Vec<_>>())
    })
}

/// Against the bare echo bot: five texts, each waiting for its echo.
async fn simulate_echo(user: User) -> Result<(), String> {
    let chat = user.chat;
    let mut pushed = Duration::ZERO;
    for (i, (_, text)) in ECHO_STEPS.iter().enumerate() {
        pushed = user.step(i, None, |a| a.push_text(chat, chat, "en", text)).await?;
    }
    let mut results = user.results();
    results.last_push.insert(chat, ("echo", pushed));
    results.users_done += 1;
    Ok(())
}

async fn simulate(user: User, country: &'static str) -> Result<(), String> {
    let (api, chat) = (&user.api, user.chat);
    user.step(0, None, |a| a.push_start(chat, chat, "en", "")).await?;
    let menu = newest_with_button(api, chat, "Financing")?;
    user.step(1, Some(menu), |a| a.press_button(chat, chat, menu, "Financing")).await?;
    user.step(2, None, |a| a.push_text(chat, chat, "en", country)).await?;
    let sectors = newest_with_button(api, chat, SECTOR)?;
    user.step(3, Some(sectors), |a| a.press_button(chat, chat, sectors, SECTOR)).await?;
    let sizes = newest_with_button(api, chat, SIZE)?;
    let pushed = user.step(4, Some(sizes), |a| a.press_button(chat, chat, sizes, SIZE)).await?;
    let mut results = user.results();
    results.last_push.insert(chat, (country, pushed));
    results.users_done += 1;
    Ok(())
}

// ----- report helpers ------------------------------------------------------------------------

fn verdict(value: f64, aim: f64) -> &'static str {
    if value < aim { "met" } else { "NOT met" }
}

fn chat_of_call(params: &serde_json::Value) -> Option<i64> {
    match params.get("chat_id")? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// One Bot API call in a line: method, status, message id and the start of the text.
fn describe(call: &Call) -> String {
    let message_id = call
        .params
        .get("message_id")
        .or_else(|| call.result().and_then(|r| r.get("message_id")))
        .map_or(String::new(), |id| format!(" msg {id}"));
    let text: String =
        call.params.get("text").and_then(serde_json::Value::as_str).unwrap_or("").replace('\n', " ").chars().take(40).collect();
    let outcome = call.description().map_or(String::new(), |d| format!(" ({})", d.chars().take(60).collect::<String>()));
    format!("bot: {} -> {}{outcome}{message_id} {text:?}", call.method, call.status)
}

/// A chat's final transcript in short: the first line of each bot message (and its edits).
fn transcript(messages: &[BotMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            let line: String = m.plain_text.as_deref().unwrap_or("").lines().next().unwrap_or("").chars().take(32).collect();
            if m.edit_count > 0 { format!("{line} [edited {}x]", m.edit_count) } else { line }
        })
        .collect()
}

/// Waits until the bot has sent nothing new for a second (at most 15 s): late cards and edits land.
async fn settle(api: &FakeBotApi) {
    let sent =
        || api.successful_calls("sendMessage") + api.successful_calls("editMessageText") + api.successful_calls("answerCallbackQuery");
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut last, mut quiet) = (sent(), 0);
    while quiet < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sent();
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
}

// ----- the run -------------------------------------------------------------------------------

/// What one run measured, for the closing table.
struct Figures {
    label: String,
    steps: usize,
    expected_steps: usize,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms: Option<f64>,
    peak_mb: Option<f64>,
    ready_mb: f64,
    messages: usize,
    too_many: u64,
    during_retry_after: u64,
}

fn main() -> ExitCode {
    let base = Settings {
        users: env_number("LOAD_USERS", 200) as usize,
        db_users: env_number("LOAD_DB_USERS", 0) as usize,
        concurrency: env_number("LOAD_CONCURRENCY", 50) as usize,
        timeout: Duration::from_secs(env_number("LOAD_TIMEOUT_SECS", 300)),
        limits: false,
        faults: std::env::var("LOAD_FAULTS").is_ok_and(|v| v.trim() == "1"),
        think: Duration::from_millis(std::env::var("LOAD_THINK_MS").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0)),
        bare: std::env::var("LOAD_BOT").is_ok_and(|v| v.trim() == "bare"),
    };
    let limits = std::env::var("LOAD_LIMITS").ok().map(|v| v.trim().to_owned());
    let modes: Vec<bool> = match limits.as_deref() {
        Some("1") => vec![true],
        Some("0") => vec![false],
        _ if base.faults || base.bare => vec![false],
        _ => vec![false, true],
    };
    // Two threads for the fake server and the simulated users: the machine the figures were
    // taken on has two cores, shared with the bot.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    let mut all = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for limits in modes {
        let (figures, complete) = runtime.block_on(run(Settings { limits, ..base.clone() }));
        if !complete {
            code = ExitCode::FAILURE;
        }
        all.extend(figures);
    }
    summary(&base, &all);
    code
}

/// The closing table: one line per run, each figure with its aim.
fn summary(settings: &Settings, all: &[Figures]) {
    println!();
    println!(
        "== summary: {} users, {} in flight, 5 steps each, {} ms pause before each step after the first ==",
        settings.users,
        settings.concurrency,
        settings.think.as_millis()
    );
    let line = |cells: [&str; 9]| {
        println!(
            "{:<34} {:>11} {:>9} {:>9} {:>14} {:>10} {:>10} {:>10} {:>14}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7], cells[8]
        )
    };
    line(["run", "steps", "p50 ms", "p99 ms", "CPU ms/update", "peak MB", "ready MB", "429s", "sends in wait"]);
    for f in all {
        let opt = |v: Option<f64>, digits: usize| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"));
        line([
            &f.label,
            &format!("{}/{}", f.steps, f.expected_steps),
            &format!("{:.1}", f.p50_ms),
            &format!("{:.1}", f.p99_ms),
            &opt(f.cpu_ms, 3),
            &opt(f.peak_mb, 1),
            &format!("{:.1}", f.ready_mb),
            &format!("{}/{}", f.too_many, f.messages),
            &f.during_retry_after.to_string(),
        ]);
    }
    for f in all {
        if f.label.starts_with("bare") {
            println!("{}: the floor to compare with, not held to the aims", f.label);
        } else if f.label.starts_with("limits off") {
            println!(
                "aims, {}: p99 < {AIM_P99_MS} ms {}; CPU <= {AIM_CPU_MS_PER_UPDATE} ms/update {}; peak < {AIM_PEAK_MB} MB {}",
                f.label,
                verdict(f.p99_ms, AIM_P99_MS),
                f.cpu_ms.map_or("n/a", |v| verdict(v, AIM_CPU_MS_PER_UPDATE + f64::EPSILON)),
                f.peak_mb.map_or("n/a", |v| verdict(v, AIM_PEAK_MB))
            );
        } else {
            println!(
                "aims, {}: 429s < 1 per 1,000 messages {}; 0 sends during a retry_after {}",
                f.label,
                if (f.too_many as f64) < f.messages as f64 / 1000.0 { "met" } else { "NOT met" },
                if f.during_retry_after == 0 { "met" } else { "NOT met" }
            );
        }
    }
    println!("(peak MB is the bot's VmHWM, start-up included; ready MB its VmRSS once it polls, before the load)");
}

/// One run; its figures, and whether every user finished.
async fn run(settings: Settings) -> (Option<Figures>, bool) {
    let load_before = load_average();
    let dir = std::env::temp_dir().join(format!("sme-advisor-load-{}-{}", std::process::id(), u8::from(settings.limits)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let started = Instant::now();
    let seeded = match seed_users(&dir, settings.db_users) {
        Ok(seeded) => seeded,
        Err(e) => {
            eprintln!("{e}");
            return (None, false);
        }
    };
    let api = FakeBotApi::start(TOKEN).await;
    let mut faults = fake_bot_api::Faults::default();
    if settings.limits {
        faults.rate_limits = Some(fake_bot_api::RateLimits::default());
    }
    if settings.faults {
        faults.server_error_probability = 0.10;
        faults.drop_probability = 0.02;
    }
    api.set_faults(faults);
    // Without the fake's limits the bot's own pacing is lifted too, so the run measures the hot
    // path rather than Telegram's one message a second per chat.
    let unpaced: &[(&str, &str)] = if settings.limits { &[] } else { &[("SEND_RATE", "100000"), ("CHAT_RATE", "1000")] };
    let mut bot = if settings.bare {
        match bare_echo_program() {
            Ok(program) => Bot::start_program(&program, &[], &api, &dir, &[]),
            Err(message) => {
                eprintln!("{message}");
                return (None, false);
            }
        }
    } else {
        Bot::start(&api, &dir, unpaced)
    };
    let pid = bot.pid().to_string();
    if let Err(message) = bot.ready(&api).await {
        eprintln!("{message}");
        return (None, false);
    }
    let startup = started.elapsed();
    let ticks_ready = cpu_ticks(&pid).unwrap_or(0);
    let rss_ready_kb = status_kb(&pid, "VmRSS").unwrap_or(0);
    let self_ticks_before = cpu_ticks("self").unwrap_or(0);

    // The users.
    let results = Arc::new(Mutex::new(Results::default()));
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let load_started = Instant::now();
    let mut users = JoinSet::new();
    for index in 0..settings.users {
        let (api, results, permits, think, bare) = (api.clone(), results.clone(), permits.clone(), settings.think, settings.bare);
        users.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore stays open");
            let steps = if bare { &ECHO_STEPS } else { &STEPS };
            let user = User { api, chat: FIRST_CHAT + index as i64, started, results, think, steps };
            if bare { simulate_echo(user).await } else { simulate(user, COUNTRIES[index % COUNTRIES.len()]).await }
        });
    }
    let deadline = tokio::time::sleep(settings.timeout);
    tokio::pin!(deadline);
    let mut timed_out = false;
    loop {
        tokio::select! {
            joined = users.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(error))) => results.lock().unwrap_or_else(|e| e.into_inner()).errors.push(error),
                Some(Err(error)) => results.lock().unwrap_or_else(|e| e.into_inner()).errors.push(format!("a user task failed: {error}")),
            },
            () = &mut deadline => {
                timed_out = true;
                users.abort_all();
                break;
            }
        }
    }
    let wall = load_started.elapsed();
    settle(&api).await;

    // The bot's figures, read right before stopping it.
    let ticks_end = cpu_ticks(&pid);
    let hwm_kb = status_kb(&pid, "VmHWM");
    let rss_end_kb = status_kb(&pid, "VmRSS");
    let self_ticks = cpu_ticks("self").unwrap_or(0).saturating_sub(self_ticks_before);
    let pending = api.pending_updates();
    let unanswered = api.unanswered_callback_queries().len();
    bot.stop();
    let log = bot.log();
    let bot_errors = api.bot_errors();
    let calls = api.calls();
    api.shutdown();

    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    let tick = clock_ticks_per_second() as f64;
    let all: Vec<Duration> = results.latency.iter().flatten().copied().collect();
    let updates = all.len();
    let mut sorted = all.clone();
    sorted.sort();
    let load_cpu_s = ticks_end.map(|t| t.saturating_sub(ticks_ready) as f64 / tick);
    let total_cpu_s = ticks_end.map(|t| t as f64 / tick);
    let cpu_per_update_ms = load_cpu_s.filter(|_| updates > 0).map(|s| s * 1000.0 / updates as f64);
    let peak_mb = hwm_kb.map(|kb| kb as f64 / 1024.0);

    // Final step, until the last message or edit of the turn was accepted (the fake's call log).
    let mut last_call: HashMap<i64, Duration> = HashMap::new();
    for call in calls.iter().filter(|c| c.status == 200 && matches!(c.method.as_str(), "sendMessage" | "editMessageText")) {
        if let Some(chat) = chat_of_call(&call.params) {
            last_call.insert(chat, call.at);
        }
    }
    let complete: Vec<Duration> =
        results.last_push.iter().filter_map(|(chat, (_, pushed))| last_call.get(chat).map(|at| at.saturating_sub(*pushed))).collect();
    // Each country's finished chats should all look the same: compare each with its country's
    // most common transcript.
    // A message whose text and buttons the bot had already sent to the chat is a repeat.
    let mut first_sends: HashSet<(i64, String)> = HashSet::new();
    let mut repeats: HashSet<(i64, i64)> = HashSet::new();
    for call in calls.iter().filter(|c| c.status == 200 && c.method == "sendMessage") {
        let (Some(chat), Some(id)) = (chat_of_call(&call.params), call.result().and_then(|r| r["message_id"].as_i64())) else {
            continue;
        };
        if !first_sends.insert((chat, format!("{}{}", call.params["text"], call.params["reply_markup"]))) {
            repeats.insert((chat, id));
        }
    }
    let sent_twice = repeats.len();
    let mut repeated: BTreeMap<String, usize> = BTreeMap::new();
    let mut transcripts: BTreeMap<i64, (&str, Vec<String>)> = BTreeMap::new();
    let mut with_repeats: HashSet<i64> = HashSet::new();
    for (chat, (country, _)) in &results.last_push {
        let (again, once): (Vec<BotMessage>, Vec<BotMessage>) =
            api.messages(*chat).into_iter().partition(|m| repeats.contains(&(*chat, m.message_id)));
        for line in transcript(&again) {
            *repeated.entry(line).or_default() += 1;
        }
        if !again.is_empty() {
            with_repeats.insert(*chat);
        }
        transcripts.insert(*chat, (country, transcript(&once)));
    }
    let mut counts: BTreeMap<(&str, &[String]), usize> = BTreeMap::new();
    for (country, lines) in transcripts.values() {
        *counts.entry((country, lines)).or_default() += 1;
    }
    let mut usual: BTreeMap<&str, (&[String], usize)> = BTreeMap::new();
    for ((country, lines), n) in &counts {
        let best = usual.entry(country).or_insert((lines, 0));
        if *n > best.1 {
            *best = (lines, *n);
        }
    }
    let (mut as_usual, mut repeats_only, mut other) = (0, Vec::new(), Vec::new());
    for (chat, (country, lines)) in &transcripts {
        if lines.as_slice() != usual[country].0 {
            other.push(*chat);
        } else if with_repeats.contains(chat) {
            repeats_only.push(*chat);
        } else {
            as_usual += 1;
        }
    }
    let call_chat = |call: &Call| {
        chat_of_call(&call.params).or_else(|| {
            call.params.get("callback_query_id").and_then(serde_json::Value::as_str).and_then(|id| results.queries.get(id).copied())
        })
    };
    // Shown in detail: chats with an unexpected transcript, then one with a refused call, then one
    // with repeated messages.
    let mut detailed: Vec<i64> = other.iter().take(2).copied().collect();
    detailed.extend(bot_errors.iter().filter_map(call_chat).find(|c| !detailed.contains(c)));
    detailed.extend(repeats_only.iter().find(|c| !detailed.contains(c)));
    detailed.truncate(3);
    // Signs of a message delivered twice.
    let answered_twice = bot_errors.iter().filter(|c| c.description().is_some_and(|d| d.contains("query is too old"))).count();
    let not_modified = bot_errors.iter().filter(|c| c.description().is_some_and(|d| d.contains("message is not modified"))).count();
    let mut refused_same: HashMap<String, usize> = HashMap::new();
    for call in &bot_errors {
        *refused_same.entry(format!("{} {}", call.method, call.params)).or_default() += 1;
    }
    let refused_again: usize = refused_same.values().map(|n| n - 1).sum();
    let failed_calls: BTreeMap<String, usize> = calls.iter().filter(|c| c.status != 200).fold(BTreeMap::new(), |mut m, c| {
        *m.entry(format!("{} {}", c.method, c.status)).or_default() += 1;
        m
    });
    let warn_lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();

    // The report.
    let (nproc, model) = machine();
    let fmt_opt = |v: Option<f64>, unit: &str| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3} {unit}"));
    let p99 = ms(percentile(&sorted, 0.99));
    println!();
    println!("== sme-advisor Telegram load benchmark ==");
    println!(
        "reproduce : LOAD_USERS={} LOAD_CONCURRENCY={} LOAD_THINK_MS={} LOAD_LIMITS={} LOAD_FAULTS={} LOAD_TIMEOUT_SECS={} cargo bench --bench telegram_load",
        settings.users,
        settings.concurrency,
        settings.think.as_millis(),
        u8::from(settings.limits),
        u8::from(settings.faults),
        settings.timeout.as_secs()
    );
    println!(
        "machine   : nproc {nproc}, {model}; load average {load_before} before the run, {} after; {} build; bot WORKERS={}",
        load_average(),
        if cfg!(debug_assertions) { "debug" } else { "release" },
        std::env::var("WORKERS").unwrap_or_else(|_| "default".to_owned())
    );
    println!(
        "input     : {} users (chat ids {}..{}), at most {} at a time, {} steps each = {} updates; countries {}; sector {SECTOR}; size {SIZE}",
        settings.users,
        FIRST_CHAT,
        FIRST_CHAT + settings.users as i64 - 1,
        settings.concurrency,
        STEPS.len(),
        settings.users * STEPS.len(),
        COUNTRIES.join(", ")
    );
    println!("database  : {seeded}");
    println!(
        "run       : {} of {} users finished, {} steps answered, wall {:.2} s{}; bot ready after {:.2} s",
        results.users_done,
        settings.users,
        updates,
        wall.as_secs_f64(),
        if timed_out { format!(" (TIMED OUT after {} s: partial figures)", settings.timeout.as_secs()) } else { String::new() },
        startup.as_secs_f64()
    );
    println!();
    println!("{:<44} {:>14}   aim", "figure", "measured");
    println!("{:<44} {:>14.1}", "steps per second (steps / wall time)", updates as f64 / wall.as_secs_f64());
    println!("{:<44} {:>11.2} ms", "latency p50 (update pushed -> reply shown)", ms(percentile(&sorted, 0.50)));
    println!("{:<44} {:>11.2} ms", "latency p90", ms(percentile(&sorted, 0.90)));
    // The CPU, latency and memory aims are for the run without limits or faults.
    let aim = |text: String| if settings.limits || settings.faults { String::new() } else { text };
    println!("{:<44} {:>11.2} ms   {}", "latency p99", p99, aim(format!("< {AIM_P99_MS} ms: {}", verdict(p99, AIM_P99_MS))));
    println!("{:<44} {:>11.2} ms", "latency max", ms(sorted.last().copied().unwrap_or_default()));
    println!(
        "{:<44} {:>14}   {}",
        "bot CPU per update (under load)",
        fmt_opt(cpu_per_update_ms, "ms"),
        aim(format!(
            "<= {AIM_CPU_MS_PER_UPDATE} ms: {}",
            cpu_per_update_ms.map_or("n/a", |v| verdict(v, AIM_CPU_MS_PER_UPDATE + f64::EPSILON))
        ))
    );
    println!(
        "{:<44} {:>14}   {}",
        "bot peak memory (VmHWM)",
        fmt_opt(peak_mb, "MB"),
        aim(format!("< {AIM_PEAK_MB} MB: {}", peak_mb.map_or("n/a", |v| verdict(v, AIM_PEAK_MB))))
    );
    println!("{:<44} {:>14}", "updates handled (replies seen)", updates);
    // What the bot asked of the Bot API for those updates: CPU per update depends on it (a bare
    // echo makes one getUpdates and one sendMessage per update at this pace, fewer polls when busy).
    let mut per_method: BTreeMap<&str, usize> = BTreeMap::new();
    for call in &calls {
        *per_method.entry(call.method.as_str()).or_default() += 1;
    }
    let per_update = |n: usize| if updates > 0 { n as f64 / updates as f64 } else { 0.0 };
    let listed: Vec<String> = per_method.iter().map(|(m, n)| format!("{m} {:.2}", per_update(*n))).collect();
    println!("{:<44} {:>14.2}   ({})", "Bot API calls per update", per_update(calls.len()), listed.join(", "));
    println!("{:<44} {:>14}", "bot calls refused by the fake (bot_errors)", bot_errors.len());
    let stats = api.fault_stats();
    let messages = calls.iter().filter(|c| c.method.starts_with("send") && c.method != "sendChatAction").count().max(1);
    println!(
        "{:<44} {:>14}   < 1 per 1,000 messages: {}",
        "429 answers (Telegram's limits in the fake)",
        format!("{} ({:.2}/1000)", stats.too_many_requests, 1000.0 * stats.too_many_requests as f64 / messages as f64),
        if (stats.too_many_requests as f64) < messages as f64 / 1000.0 { "met" } else { "NOT MET" }
    );
    println!(
        "{:<44} {:>14}   0: {}",
        "sends during a running retry_after",
        stats.sends_during_retry_after,
        if stats.sends_during_retry_after == 0 { "met" } else { "NOT MET" }
    );
    println!("{:<44} {:>14}", "5xx answered / connections dropped", format!("{} / {}", stats.server_errors, stats.dropped));
    println!("{:<44} {:>14}", "user errors (timeouts, missing buttons)", results.errors.len());
    println!();
    println!("per step (update pushed -> expected text shown):");
    for (i, (what, needle)) in settings.steps().iter().enumerate() {
        println!("  {} {:<22} {:<32} {}", i + 1, what, format!("-> {needle:?}"), spread(&results.latency[i]));
    }
    println!("  5 {:<22} {:<32} {}", settings.steps()[4].0, "-> last message accepted (call log)", spread(&complete));
    println!();
    println!(
        "bot CPU: {} under load, {} in total including start-up ({} ticks/s); MB = kB / 1024",
        fmt_opt(load_cpu_s, "s"),
        fmt_opt(total_cpu_s, "s"),
        tick
    );
    println!(
        "bot memory: VmRSS {} kB when ready, {} kB at the end, VmHWM {} kB",
        rss_ready_kb,
        rss_end_kb.map_or("n/a".to_owned(), |v| v.to_string()),
        hwm_kb.map_or("n/a".to_owned(), |v| v.to_string())
    );
    println!(
        "load generator + fake server (this process) CPU during the run: {:.3} s, on the same {nproc} core(s)",
        self_ticks as f64 / tick
    );
    println!("updates left unconfirmed: {pending}; button presses never answered: {unanswered}");
    let failed: Vec<String> = failed_calls.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    println!(
        "calls not answered 200: {} (getUpdates 409/499 are long-poll artifacts of stopping)",
        if failed.is_empty() { "none".to_owned() } else { failed.join(", ") }
    );
    for call in bot_errors.iter().take(3) {
        println!("  refused: {}", call.one_line());
    }
    println!(
        "signs of double delivery: callback queries answered twice {answered_twice}, edits that changed nothing {not_modified}, \
         identical messages sent again {sent_twice}"
    );
    println!("refused calls made again with the same parameters (retried): {refused_again}");
    println!(
        "final transcripts ({} chats; first line of each bot message): {as_usual} as their country's most common one, \
         {} differ only by repeated messages (sent again later), {} differ otherwise (repeats left out)",
        transcripts.len(),
        repeats_only.len(),
        other.len()
    );
    for (country, (lines, n)) in &usual {
        println!("  most common for {country} ({n}x): {}", lines.join(" | "));
    }
    if !repeated.is_empty() {
        let mut by_count: Vec<(String, usize)> = repeated.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        println!("  repeated messages: {}", by_count.iter().map(|(line, n)| format!("{line:?} x{n}")).collect::<Vec<_>>().join(", "));
    }
    for chat in other.iter().take(5) {
        println!("  chat {chat} ({}): {}", transcripts[chat].0, transcripts[chat].1.join(" | "));
    }
    for chat in &detailed {
        println!("  chat {chat} in detail, ms since its /start (a bot call is timed when the fake recorded it, just after its effect):");
        let mut events: Vec<(Duration, String)> =
            results.pushes.get(chat).into_iter().flatten().map(|(at, what)| (*at, format!("user: {what}"))).collect();
        events.extend(calls.iter().filter(|c| call_chat(c) == Some(*chat)).map(|c| (c.at, describe(c))));
        events.sort_by_key(|(at, _)| *at);
        let first = events.first().map(|(at, _)| *at).unwrap_or_default();
        for (at, what) in events {
            println!("    +{:>8.2}  {what}", ms(at.saturating_sub(first)));
        }
    }
    println!("bot log at RUST_LOG=warn: {} line(s)", warn_lines.len());
    for line in warn_lines.iter().take(10) {
        println!("  {line}");
    }
    for error in results.errors.iter().take(10) {
        println!("error: {error}");
    }

    let figures = Figures {
        label: match (settings.limits, settings.faults) {
            _ if settings.bare => "bare teloxide echo, limits off".to_owned(),
            (false, false) => "limits off (bot pacing lifted)".to_owned(),
            (true, false) => "limits on (Telegram's, in the fake)".to_owned(),
            (false, true) => "limits off, 10% 5xx, 2% dropped".to_owned(),
            (true, true) => "limits on, 10% 5xx, 2% dropped".to_owned(),
        },
        steps: updates,
        expected_steps: settings.users * STEPS.len(),
        p50_ms: ms(percentile(&sorted, 0.50)),
        p99_ms: p99,
        cpu_ms: cpu_per_update_ms,
        peak_mb,
        ready_mb: rss_ready_kb as f64 / 1024.0,
        messages,
        too_many: stats.too_many_requests,
        during_retry_after: stats.sends_during_retry_after,
    };
    if timed_out || !results.errors.is_empty() || results.users_done < settings.users {
        println!("FAILED: the run did not complete (database and log kept in {})", dir.display());
        (Some(figures), false)
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        (Some(figures), true)
    }
}

/// The bare echo bot's binary, beside this bench's in the target folder.
fn bare_echo_program() -> Result<std::path::PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile = exe.parent().and_then(std::path::Path::parent).ok_or("no target folder")?;
    let program = profile.join("examples").join("bare_echo");
    if program.exists() {
        Ok(program)
    } else {
        Err(format!("LOAD_BOT=bare needs {}: build it first with `cargo build --release --example bare_echo`", program.display()))
    }
}

/// Seeds `n` users who are not part of the run (chat ids from 10,000,000), each with a profile, a
/// session and an inquiry: one through the engine, the others copies of its rows. Says what it did.
fn seed_users(dir: &std::path::Path, n: usize) -> Result<String, String> {
    use sme_advisor::engine::{self, Input};
    use sme_advisor::store::Store;
    if n == 0 {
        return Ok("empty before the run (LOAD_DB_USERS=0)".into());
    }
    let sql = |e: rusqlite::Error| format!("seeding: {e}");
    let started = Instant::now();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let content = sme_advisor::content::load_dirs(&root.join("dialogs"), &root.join("knowledge")).map_err(|d| d[0].to_string())?;
    let db = dir.join("bot.sqlite3");
    const FIRST: i64 = 10_000_000;
    {
        let mut store = Store::open(&db).map_err(|e| e.to_string())?;
        let now = sme_advisor::clock::now();
        let inputs = [
            Input::Start { payload: None },
            Input::Button("f:financing".into()),
            Input::Text("Kenya".into()),
            Input::Text(SECTOR.into()),
            Input::Text(SIZE.into()),
        ];
        for input in &inputs {
            store.turn("telegram", &FIRST.to_string(), "en", now, |s| engine::step(&content, s, input, now)).map_err(|e| e.to_string())?;
        }
    }
    let mut conn = rusqlite::Connection::open(&db).map_err(sql)?;
    let template: i64 = conn.query_row("SELECT id FROM users WHERE external_id = ?1", [FIRST.to_string()], |r| r.get(0)).map_err(sql)?;
    let columns = |conn: &rusqlite::Connection, table: &str| -> Result<Vec<String>, String> {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})")).map_err(sql)?;
        let names = stmt.query_map([], |r| r.get::<_, String>(1)).map_err(sql)?.collect::<Result<Vec<_>, _>>().map_err(sql)?;
        Ok(names.into_iter().filter(|c| c != "id" && c != "user_id" && c != "external_id").collect())
    };
    let tx = conn.transaction().map_err(sql)?;
    let user_cols = columns(&tx, "users")?.join(", ");
    let mut insert_user = tx
        .prepare(&format!("INSERT INTO users (external_id, {user_cols}) SELECT ?1, {user_cols} FROM users WHERE id = ?2"))
        .map_err(sql)?;
    let mut copies = Vec::new();
    for table in ["profiles", "sessions", "inquiries"] {
        let c = columns(&tx, table)?.join(", ");
        copies
            .push(tx.prepare(&format!("INSERT INTO {table} (user_id, {c}) SELECT ?1, {c} FROM {table} WHERE user_id = ?2")).map_err(sql)?);
    }
    for i in 1..n as i64 {
        insert_user.execute(rusqlite::params![(FIRST + i).to_string(), template]).map_err(sql)?;
        let user = tx.last_insert_rowid();
        for copy in &mut copies {
            copy.execute(rusqlite::params![user, template]).map_err(sql)?;
        }
    }
    drop(copies);
    drop(insert_user);
    tx.commit().map_err(sql)?;
    let count = |table: &str| conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0)).map_err(sql);
    let size_mb = std::fs::metadata(&db).map(|m| m.len() as f64 / 1_048_576.0).unwrap_or(0.0);
    Ok(format!(
        "{} users, {} profiles, {} sessions, {} inquiries seeded before the run in {:.1} s ({size_mb:.1} MB file)",
        count("users")?,
        count("profiles")?,
        count("sessions")?,
        count("inquiries")?,
        started.elapsed().as_secs_f64()
    ))
}
