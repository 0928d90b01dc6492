//! The Telegram bot: receive updates durably, run turns, send replies reliably. The only module that imports teloxide.
//!
//! # Nothing lost, nothing doubled
//!
//! 1. Intake (long polling, or a webhook) records every update in SQLite *before* acknowledging it:
//!    polling asks for the next offset only after the commit; the webhook answers 200 only after it.
//!    A repeated `update_id` is ignored by the insert.
//! 2. Workers handle recorded updates. One chat always goes to the same worker, so a chat's updates
//!    are handled in order while different chats run in parallel. A turn's session, effects, queued
//!    replies and the update's "done" mark commit in one transaction ([`Store::update_turn`]).
//!    On start, updates that were recorded but not handled are handled first.
//! 3. The sender drains the outbox: per chat, oldest first, one message in flight per chat. Network
//!    errors and 5xx are retried with backoff; 429 pauses sending for `retry_after`; 403 (blocked)
//!    marks the user inactive and drops what was queued for the chat. A message is removed from the
//!    outbox after Telegram accepted it, so a crash in between can send that one message twice: at
//!    most [`MAX_IN_FLIGHT`] messages. A reply that has to be retried is preceded by a "typing" action.
//!
//! # One update cannot hurt the others
//!
//! Each update is handled under `catch_unwind`: a panic or an error rolls its transaction back and
//! is retried a few times ([`MAX_TURN_ATTEMPTS`], counted in the database so a crash counts too);
//! then the update is moved to the quarantine and the user gets a short apology, so the chat's
//! later updates go on. Every long-running task (intake, workers, senders, scheduler, health
//! server) is supervised: restarted when it ends unexpectedly, and `serve` fails only when one
//! keeps failing ([`MAX_RESTARTS`] times within a minute).
//!
//! The bot token never appears in logs or errors: every error text passes through [`Redactor`].

mod broadcast;
mod client;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
mod health;
pub mod inbound;
mod inline;
mod intake;
pub mod limits;
pub mod notify;
pub mod render;
mod sender;
mod staff;
mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use teloxide::Bot;
use teloxide::payloads::SetMyCommandsSetters;
use teloxide::requests::Requester;
use teloxide::types::BotCommand;
use tokio::sync::{Notify, mpsc, watch};

use crate::clock::now;
use crate::config::Secret;
use crate::content::{Content, DEFAULT_LANG};
use crate::store::{IncomingUpdate, Outgoing, Store};

use intake::{poll_intake, webhook_intake};
use limits::{Class, Gate};
use render::Message;
use sender::backoff;
pub use worker::outgoing;

/// The channel name users of this front end are stored under.
pub const CHANNEL: &str = crate::act::CHANNEL;
/// How many messages the sender has in flight at once (at most one per chat).
pub const MAX_IN_FLIGHT: usize = 16;
/// Long-polling timeout; below teloxide's 17 s request timeout.
const POLL_TIMEOUT_SECS: u32 = 10;
/// Attempts before a message is given up on.
const MAX_ATTEMPTS: i64 = 12;
/// Attempts at handling one update before it is quarantined.
pub const MAX_TURN_ATTEMPTS: i64 = 3;
/// How often the database's log is copied into the database file, off the runtime threads.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// A supervised task that fails more often than this within a minute stops the bot.
pub const MAX_RESTARTS: usize = 5;

/// How the bot is reached.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub token: Secret,
    pub api_url: Option<reqwest::Url>,
    pub webhook: Option<Webhook>,
    pub workers: usize,
    /// How long one Bot API call may take; a long poll asks Telegram to answer within it.
    pub api_timeout: Duration,
    /// The settings shared with the other commands: database, content folders, admins, staff
    /// group, retention and broadcast rate.
    pub app: crate::config::Config,
    /// Where `/healthz`, `/readyz` and `/metrics` are served; `None`: not at all.
    pub metrics_listen: Option<SocketAddr>,
    /// A worker on one update for longer than this makes `/readyz` fail.
    pub stuck_after: Duration,
    /// Test-only hooks (`SME_ADVISOR_TEST_HOOKS=1`): the text `__test_panic__` panics in the
    /// handler and `__test_stall_N__` holds the worker N seconds, so tests can force both.
    pub test_hooks: bool,
    /// Telegram's limits (global, per chat, per group) and whether broadcasts are paid.
    pub budget: limits::Budget,
    /// The address of the web desk (`WEB_PUBLIC_URL`), for the sign-in links `/web` sends.
    pub web_public_url: String,
}

/// Webhook mode: Telegram posts updates to `url`, which reaches this process at `listen`.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub listen: SocketAddr,
    pub url: reqwest::Url,
    pub secret: Secret,
}

/// One queued operation towards Telegram, stored as JSON in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Out {
    Send {
        chat_id: i64,
        message: Message,
        /// Sent as a reply to this message (a staff thread).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<i32>,
        /// The handoff inquiry this message is the staff post of: remember its message id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        post_of: Option<i64>,
        /// The broadcast this message reports the progress of: remember its message id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report_of: Option<i64>,
        /// Its place in the queue for Telegram's limits, when not derived from the above.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<Class>,
    },
    Edit {
        chat_id: i64,
        message_id: i32,
        message: Message,
    },
    AnswerCallback {
        id: String,
    },
    Document {
        chat_id: i64,
        file_name: String,
        caption: String,
        content: String,
    },
    /// A picture (a chart), uploaded with `sendPhoto`; kept in the outbox as base64.
    Photo {
        chat_id: i64,
        file_name: String,
        caption: String,
        #[serde(with = "base64_bytes")]
        png: Vec<u8>,
    },
}

/// Bytes as one base64 string in the outbox's JSON (a third larger, where an array of numbers
/// would be about four times as large).
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

impl Out {
    /// A plain new message.
    pub fn send(chat_id: i64, message: Message) -> Out {
        Out::Send { chat_id, message, reply_to: None, post_of: None, report_of: None, class: None }
    }

    /// Who the message is for, for the order of sending under Telegram's limits.
    pub fn class(&self) -> Class {
        match self {
            Out::Send { class: Some(class), .. } => *class,
            Out::Send { reply_to: Some(_), .. } | Out::Send { post_of: Some(_), .. } | Out::Document { .. } | Out::Photo { .. } => {
                Class::Relay
            }
            Out::Send { report_of: Some(_), .. } => Class::Reminder,
            Out::Send { .. } | Out::Edit { .. } | Out::AnswerCallback { .. } => Class::Reply,
        }
    }

    pub fn queue(&self, chat_id: i64) -> Outgoing {
        Outgoing { chat_id, payload: serde_json::to_string(self).expect("an operation always serialises") }
    }
}

/// Replaces the token in any text that might carry it (request URLs in errors).
#[derive(Clone)]
pub struct Redactor(Secret);

impl Redactor {
    pub fn clean(&self, text: &str) -> String {
        let token = self.0.expose();
        if token.is_empty() { text.to_string() } else { text.replace(token, "<redacted>") }
    }
}

struct Shared {
    bot: Bot,
    /// The content from the files and learned examples; shared with the web desk when `serve`
    /// runs it too, which swaps in new content after staff attach an example.
    base: Arc<std::sync::RwLock<Arc<Content>>>,
    /// The base the served content was last built from.
    served_from: Mutex<Arc<Content>>,
    /// What users are served: the base plus the programme calls that are still open.
    content: std::sync::RwLock<Arc<Content>>,
    store: Arc<Mutex<Store>>,
    config: ServeConfig,
    redactor: Redactor,
    username: String,
    wake_sender: Notify,
    health: health::Health,
    /// The calls that send, without teloxide's ten-second sleep after a 5xx.
    client: client::Client,
    /// The long poll, on connections of its own; it reads each update's JSON as it came.
    poll_client: client::Client,
    /// Telegram's limits, honoured before every call that sends.
    gate: Gate,
}

impl Shared {
    /// What the act layer needs to run a request now, with this content.
    fn ctx<'a>(&'a self, content: &'a Content) -> crate::act::Ctx<'a> {
        crate::act::Ctx {
            store: &self.store,
            content,
            admins: &self.config.app.admin_ids,
            dialogs_dir: &self.config.app.dialogs_dir,
            knowledge_dir: &self.config.app.knowledge_dir,
            broadcast_rate: self.config.app.broadcast_rate,
            now: now(),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The content in use now; staff can replace it while the bot runs.
    fn content(&self) -> Arc<Content> {
        self.content.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the base content (after staff added an example) and serves it with the open calls.
    fn set_content(&self, content: Content) {
        *self.base.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(content);
        self.refresh_calls();
    }

    /// Whether another front end replaced the base content since it was last served.
    fn base_changed(&self) -> bool {
        let base = self.base.read().unwrap_or_else(|e| e.into_inner()).clone();
        !Arc::ptr_eq(&base, &self.served_from.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Serves the base content plus the programme calls whose deadline has not passed.
    fn refresh_calls(&self) {
        let base = self.base.read().unwrap_or_else(|e| e.into_inner()).clone();
        *self.served_from.lock().unwrap_or_else(|e| e.into_inner()) = base.clone();
        let open = self.store().open_calls(&broadcast_day(now())).unwrap_or_default();
        let entries: Vec<_> = open
            .iter()
            .filter_map(|(id, json)| {
                serde_json::from_str::<crate::broadcast::Call>(json).ok().map(|call| crate::broadcast::as_entry(&base, &call, *id))
            })
            .collect();
        let served = if entries.is_empty() { base } else { Arc::new(base.with_entries(entries)) };
        *self.content.write().unwrap_or_else(|e| e.into_inner()) = served;
    }
}

fn broadcast_day(at: crate::engine::Timestamp) -> String {
    crate::broadcast::day_of(at)
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

/// Runs the bot until `shutdown` completes; the turn in progress finishes first.
pub async fn serve(config: ServeConfig, content: Arc<Content>, store: Store, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    serve_shared(config, Arc::new(std::sync::RwLock::new(content)), Arc::new(Mutex::new(store)), shutdown).await
}

/// [`serve`] on a store and content that another front end in the process shares (the web desk):
/// content it swaps into `base` is served within seconds.
pub async fn serve_shared(
    config: ServeConfig,
    base: Arc<std::sync::RwLock<Arc<Content>>>,
    store: Arc<Mutex<Store>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let content = base.read().unwrap_or_else(|e| e.into_inner()).clone();
    let redactor = Redactor(config.token.clone());
    let http = teloxide::net::default_reqwest_settings().timeout(config.api_timeout).build()?;
    // Sends have connections of their own: a connection a send lost is never the one a long poll waits on.
    let send_http = teloxide::net::default_reqwest_settings().timeout(config.api_timeout).build()?;
    let sending = client::Client::new(send_http, config.api_url.clone(), config.token.expose());
    let poll_client = client::Client::new(http.clone(), config.api_url.clone(), config.token.expose());
    let mut bot = Bot::with_client(config.token.expose(), http);
    if let Some(url) = &config.api_url {
        bot = bot.set_api_url(url.clone());
    }
    let me = bot.get_me().await.map_err(|e| anyhow::anyhow!("cannot reach the Bot API (getMe): {}", redactor.clean(&e.to_string())))?;
    let username = me.username.clone().unwrap_or_default();
    tracing::info!(bot = %username, "connected to the Bot API");
    register_commands(&bot, &content, &redactor).await;
    let n_workers = config.workers.max(1);
    let shared = Arc::new(Shared {
        bot,
        base,
        served_from: Mutex::new(content.clone()),
        content: std::sync::RwLock::new(content),
        store,
        config: config.clone(),
        redactor,
        username,
        wake_sender: Notify::new(),
        health: health::Health::new(n_workers, config.webhook.is_none(), config.stuck_after),
        client: sending,
        poll_client,
        gate: Gate::new(config.budget.clone()),
    });
    shared.refresh_calls();
    // Listen before anything starts, so a wrong address fails at once; restarts reuse the sockets.
    let bind = |name: &str, addr: SocketAddr| {
        std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .with_context(|| format!("{name}: cannot listen on {addr}"))
    };
    let webhook_socket = config.webhook.as_ref().map(|w| bind("WEBHOOK_LISTEN", w.listen)).transpose()?;
    let metrics_socket = config.metrics_listen.map(|addr| bind("METRICS_LISTEN", addr)).transpose()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: tokio::task::JoinSet<anyhow::Result<()>> = tokio::task::JoinSet::new();

    // Workers, one queue each; a chat always maps to the same worker.
    let mut queues = Vec::new();
    for index in 0..n_workers {
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        queues.push(tx);
        let queue = Arc::new(tokio::sync::Mutex::new(rx));
        let (s, stop) = (shared.clone(), stop_rx.clone());
        tasks.spawn(supervise(format!("worker {index}"), shared.clone(), stop_rx.clone(), move || {
            worker::worker(s.clone(), index, queue.clone(), stop.clone())
        }));
    }
    let dispatch = Dispatch { queues };
    let pending = shared.store().pending_updates()?;
    if !pending.is_empty() {
        tracing::info!(n = pending.len(), "handling updates recorded before the last stop");
    }
    for u in &pending {
        dispatch.send(u);
    }
    let (s, stop) = (shared.clone(), stop_rx.clone());
    tasks.spawn(supervise("outbox sender".into(), shared.clone(), stop_rx.clone(), move || {
        let (s, stop) = (s.clone(), stop.clone());
        async move {
            sender::sender(s, stop).await;
            Ok(())
        }
    }));
    let (s, stop) = (shared.clone(), stop_rx.clone());
    tasks.spawn(supervise("broadcast sender".into(), shared.clone(), stop_rx.clone(), move || {
        let (s, stop) = (s.clone(), stop.clone());
        async move {
            broadcast::sender(s, stop).await;
            Ok(())
        }
    }));
    if let Some(checkpointer) = shared.store().checkpoint_in_background()? {
        let (c, stop) = (Arc::new(Mutex::new(checkpointer)), stop_rx.clone());
        tasks.spawn(supervise("checkpointer".into(), shared.clone(), stop_rx.clone(), move || checkpoints(c.clone(), stop.clone())));
    }
    let (s, d, stop) = (shared.clone(), dispatch.clone(), stop_rx.clone());
    tasks.spawn(supervise("scheduler".into(), shared.clone(), stop_rx.clone(), move || scheduler(s.clone(), d.clone(), stop.clone())));
    let (s, d, stop) = (shared.clone(), dispatch.clone(), stop_rx.clone());
    let webhook = config.webhook.clone();
    tasks.spawn(supervise("intake".into(), shared.clone(), stop_rx.clone(), move || {
        let (s, d, stop, webhook) = (s.clone(), d.clone(), stop.clone(), webhook.clone());
        let socket = webhook_socket.as_ref().map(std::net::TcpListener::try_clone);
        async move {
            match (webhook, socket) {
                (Some(webhook), Some(socket)) => webhook_intake(s, webhook, socket?, d, stop).await,
                _ => poll_intake(s, d, stop).await,
            }
        }
    }));
    if let Some(socket) = metrics_socket {
        let (s, stop) = (shared.clone(), stop_rx.clone());
        tasks.spawn(supervise("health server".into(), shared.clone(), stop_rx.clone(), move || {
            let (s, stop, socket) = (s.clone(), stop.clone(), socket.try_clone());
            async move { health::serve(s, socket?, stop).await }
        }));
    }
    drop(dispatch);

    // Until shutdown, or until a task keeps failing and its supervisor gives up.
    let gave_up = tokio::select! {
        Some(done) = tasks.join_next() => Some(done),
        () = shutdown => {
            tracing::info!("shutting down");
            None
        }
    };
    let _ = stop_tx.send(true);
    // The turns in progress finish; the senders let their messages in flight finish.
    let _ = tokio::time::timeout(Duration::from_secs(20), async { while tasks.join_next().await.is_some() {} }).await;
    match gave_up {
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(anyhow::anyhow!("a supervisor stopped: {e}")),
        Some(Ok(Ok(()))) | None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// Runs a long-running task, restarting it when it ends unexpectedly (an error, a panic, or a
/// return before `stop`); gives up with an error when it fails more than [`MAX_RESTARTS`] times
/// within a minute.
async fn supervise<F, Fut>(name: String, shared: Arc<Shared>, stop: watch::Receiver<bool>, start: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let restarted = || shared.health.restarted();
    supervise_with(&name, stop, start, |e| shared.redactor.clean(e), restarted, |n| backoff(n as i64)).await
}

/// [`supervise`] with its side effects passed in: how to clean an error for the log, what to do
/// on a restart, and the pause before the n-th restart.
async fn supervise_with<F, Fut>(
    name: &str,
    mut stop: watch::Receiver<bool>,
    mut start: F,
    clean: impl Fn(&str) -> String,
    restarted: impl Fn(),
    pause: impl Fn(usize) -> Duration,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut failures: std::collections::VecDeque<std::time::Instant> = std::collections::VecDeque::new();
    loop {
        let outcome = tokio::spawn(start()).await;
        if *stop.borrow() {
            return Ok(());
        }
        let why = match outcome {
            Ok(Ok(())) => "it returned".to_string(),
            Ok(Err(e)) => clean(&format!("{e:#}")),
            Err(e) if e.is_panic() => "it panicked".to_string(),
            Err(_) => "it was cancelled".to_string(),
        };
        failures.push_back(crate::clock::instant());
        while failures.front().is_some_and(|t| t.elapsed() > Duration::from_secs(60)) {
            failures.pop_front();
        }
        if failures.len() > MAX_RESTARTS {
            tracing::error!(task = %name, reason = %why, "a task keeps failing; stopping the bot");
            anyhow::bail!("{name} failed {} times within a minute, the last time because {why}", failures.len());
        }
        restarted();
        let wait = pause(failures.len());
        tracing::error!(task = %name, reason = %why, restart_in_ms = wait.as_millis() as u64, "a task ended unexpectedly; restarting it");
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Every two seconds: hands quarantined updates that staff asked to retry to their worker, and
/// picks up examples learned by another process. Every ten minutes: forgets handled updates after
/// two days, and inquiries after `RETENTION_DAYS`.
async fn scheduler(shared: Arc<Shared>, dispatch: Dispatch, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut last_prune = 0;
    let mut learned = shared.store().learned_fingerprint().ok();
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        if now() - last_prune > 600 {
            last_prune = now();
            retention(&shared);
        }
        let fingerprint = shared.store().learned_fingerprint().ok();
        if fingerprint.is_some() && fingerprint != learned {
            learned = fingerprint;
            let shared = shared.clone();
            // Loading the content takes a few hundred milliseconds of CPU: not on a runtime thread.
            tokio::task::spawn_blocking(move || pick_up_learned(&shared)).await?;
        }
        let retries = shared.store().take_retry_requests();
        for update in retries? {
            tracing::info!(update_id = update.update_id, "retrying a quarantined update");
            dispatch.send(&update);
        }
    }
}

/// Copies the database's write-ahead log into the database file every [`CHECKPOINT_EVERY`], on a
/// blocking thread with a connection of its own: the copy and its syncs (milliseconds) used to
/// happen inside whichever turn's commit crossed the log's limit, with the store held.
async fn checkpoints(checkpointer: Arc<Mutex<crate::store::Checkpointer>>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
        }
        let c = checkpointer.clone();
        match tokio::task::spawn_blocking(move || c.lock().unwrap_or_else(|e| e.into_inner()).run()).await? {
            Ok((log, copied)) => tracing::debug!(log, copied, "checkpoint"),
            // The writing connection copies the log itself past its backstop.
            Err(e) => tracing::warn!(error = %e, "cannot copy the database log; trying again"),
        }
    }
}

/// The learned examples changed, perhaps in another process (a separately run `sme-advisor web`):
/// builds the content again with them, as `/reload` would. Content that no longer loads (a file
/// being edited) is logged and the current content kept.
fn pick_up_learned(shared: &Shared) {
    let content = shared.content();
    match crate::act::desk::rebuild(&shared.ctx(&content)) {
        Ok(Ok(content)) => {
            shared.set_content(content);
            tracing::info!("learned examples changed; content rebuilt with them");
        }
        Ok(Err(problems)) => {
            tracing::warn!(problems = problems.len(), "learned examples changed, but the content does not load; the current content stays")
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the learned examples"),
    }
}

/// Deletes what is kept no longer than it serves: handled updates after two days, inquiries after
/// `RETENTION_DAYS` when set.
fn retention(shared: &Shared) {
    let _ = shared.store().prune_updates(now() - 2 * 24 * 3600);
    if let Some(days) = shared.config.app.retention_days {
        match shared.store().purge_inquiries(now() - days * 86_400) {
            Ok(n) if n > 0 => tracing::info!(deleted = n, days, "retention: old inquiries deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention failed"),
        }
    }
}

/// An update for a worker: its id, and the update itself when it was just received (parsed once
/// at intake); without it (recorded before a restart, or a retry) the worker reads the record.
struct Job {
    update_id: i64,
    received: Option<Box<teloxide::types::Update>>,
}

#[derive(Clone)]
struct Dispatch {
    queues: Vec<mpsc::UnboundedSender<Job>>,
}

impl Dispatch {
    /// A recorded update, by id.
    fn send(&self, update: &IncomingUpdate) {
        self.queue(update.chat_id, Job { update_id: update.update_id, received: None });
    }

    /// An update just received and recorded, handed over parsed.
    fn send_received(&self, received: intake::Received) {
        let job = Job { update_id: received.record.update_id, received: received.update.map(Box::new) };
        self.queue(received.record.chat_id, job);
    }

    fn queue(&self, chat_id: i64, job: Job) {
        let i = (chat_id.unsigned_abs() % self.queues.len() as u64) as usize;
        let _ = self.queues[i].send(job);
    }
}

/// The command menu, per language, for the commands everyone may use.
async fn register_commands(bot: &Bot, content: &Content, redactor: &Redactor) {
    for language in &content.languages {
        let commands: Vec<BotCommand> = content
            .commands
            .values()
            .filter(|c| c.role.is_none())
            .map(|c| BotCommand::new(c.name.clone(), content.pick(&c.description, &language.code).to_string()))
            .collect();
        let request = bot.set_my_commands(commands);
        let request = if language.code == DEFAULT_LANG { request } else { request.language_code(language.code.clone()) };
        if let Err(e) = request.await {
            tracing::warn!(language = %language.code, error = %redactor.clean(&e.to_string()), "setMyCommands failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_ends_is_restarted_and_one_that_keeps_failing_stops_the_bot() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (_stop_tx, stop) = watch::channel(false);
        // Panics twice, fails once, then runs until the bot stops: restarted three times.
        let runs = Arc::new(AtomicUsize::new(0));
        let restarts = AtomicUsize::new(0);
        let (r, (stop_tx2, stop2)) = (runs.clone(), watch::channel(false));
        let supervised = supervise_with(
            "flaky",
            stop2,
            move || {
                let n = r.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 | 1 => panic!("a bug"),
                        2 => anyhow::bail!("an error"),
                        _ => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            Ok(())
                        }
                    }
                }
            },
            str::to_string,
            || {
                restarts.fetch_add(1, Ordering::SeqCst);
            },
            |_| Duration::from_millis(1),
        );
        let stopper = async {
            while runs.load(Ordering::SeqCst) < 4 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = stop_tx2.send(true);
        };
        let (result, ()) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(supervised, stopper) }).await.unwrap();
        assert!(result.is_ok());
        assert_eq!(restarts.load(Ordering::SeqCst), 3);
        // A task that always fails: given up after MAX_RESTARTS restarts, with the reason.
        let result =
            supervise_with("broken", stop, || async { anyhow::bail!("no database") }, str::to_string, || {}, |_| Duration::ZERO).await;
        let error = result.unwrap_err().to_string();
        assert!(error.contains("broken failed 6 times within a minute") && error.contains("no database"), "{error}");
    }

    #[test]
    fn the_redactor_removes_the_token() {
        let r = Redactor(Secret::new("123456:ABCdef".into()));
        assert_eq!(
            r.clean("error sending request for url (http://x/bot123456:ABCdef/getMe)"),
            "error sending request for url (http://x/bot<redacted>/getMe)"
        );
    }
}
