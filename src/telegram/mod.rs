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
#[doc(hidden)]
pub mod fuzz;
mod health;
pub mod inbound;
pub mod limits;
pub mod notify;
pub mod render;
mod staff;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::FutureExt as _;
use serde::{Deserialize, Serialize};
use teloxide::payloads::{AnswerInlineQuerySetters, GetUpdatesSetters, SendDocumentSetters, SetMyCommandsSetters, SetWebhookSetters};
use teloxide::requests::Requester;
use teloxide::types::{
    AllowedUpdate, BotCommand, CallbackQueryId, ChatAction, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InlineQueryId,
    InlineQueryResult, InlineQueryResultArticle, InputFile, InputMessageContent, InputMessageContentText, LinkPreviewOptions, MessageId,
    ParseMode, ReplyParameters, Update,
};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::{Notify, mpsc, watch};

use crate::clock::now;
use crate::config::Secret;
use crate::content::{Content, DEFAULT_LANG};
use crate::engine::{self, Input, Session};
use crate::store::{IncomingUpdate, OutboxHead, Outgoing, Store, StoreError};

use inbound::Inbound;
use limits::{Class, Gate, Scope};
use render::Message;

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
            Out::Send { reply_to: Some(_), .. } | Out::Send { post_of: Some(_), .. } | Out::Document { .. } => Class::Relay,
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
    /// The content from the files and learned examples.
    base: std::sync::RwLock<Arc<Content>>,
    /// What users are served: the base plus the programme calls that are still open.
    content: std::sync::RwLock<Arc<Content>>,
    store: Mutex<Store>,
    config: ServeConfig,
    redactor: Redactor,
    username: String,
    wake_sender: Notify,
    health: health::Health,
    /// The calls that send, without teloxide's ten-second sleep after a 5xx.
    client: client::Client,
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

    /// Serves the base content plus the programme calls whose deadline has not passed.
    fn refresh_calls(&self) {
        let base = self.base.read().unwrap_or_else(|e| e.into_inner()).clone();
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
    let redactor = Redactor(config.token.clone());
    let http = teloxide::net::default_reqwest_settings().timeout(config.api_timeout).build()?;
    // Sends have connections of their own: a connection a send lost is never the one a long poll waits on.
    let send_http = teloxide::net::default_reqwest_settings().timeout(config.api_timeout).build()?;
    let sending = client::Client::new(send_http, config.api_url.clone(), config.token.expose());
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
        base: std::sync::RwLock::new(content.clone()),
        content: std::sync::RwLock::new(content),
        store: Mutex::new(store),
        config: config.clone(),
        redactor,
        username,
        wake_sender: Notify::new(),
        health: health::Health::new(n_workers, config.webhook.is_none(), config.stuck_after),
        client: sending,
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
        let (tx, rx) = mpsc::unbounded_channel::<i64>();
        queues.push(tx);
        let queue = Arc::new(tokio::sync::Mutex::new(rx));
        let (s, stop) = (shared.clone(), stop_rx.clone());
        tasks.spawn(supervise(format!("worker {index}"), shared.clone(), stop_rx.clone(), move || {
            worker(s.clone(), index, queue.clone(), stop.clone())
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
            sender(s, stop).await;
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
        failures.push_back(std::time::Instant::now());
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

/// Every two seconds: hands quarantined updates that staff asked to retry to their worker.
async fn scheduler(shared: Arc<Shared>, dispatch: Dispatch, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let retries = shared.store().take_retry_requests();
        for update in retries? {
            tracing::info!(update_id = update.update_id, "retrying a quarantined update");
            dispatch.send(&update);
        }
    }
}

#[derive(Clone)]
struct Dispatch {
    queues: Vec<mpsc::UnboundedSender<i64>>,
}

impl Dispatch {
    fn send(&self, update: &IncomingUpdate) {
        let i = (update.chat_id.unsigned_abs() % self.queues.len() as u64) as usize;
        let _ = self.queues[i].send(update.update_id);
    }
}

/// Serialises updates for the store, with the chat each belongs to.
fn incoming(updates: &[Update]) -> Vec<IncomingUpdate> {
    updates
        .iter()
        .filter_map(|u| {
            let payload = serde_json::to_string(u).ok()?;
            Some(IncomingUpdate { update_id: i64::from(u.id.0), chat_id: inbound::chat_of(u), payload })
        })
        .collect()
}

async fn poll_intake(shared: Arc<Shared>, dispatch: Dispatch, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    if let Err(e) = shared.bot.delete_webhook().await {
        tracing::warn!(error = %shared.redactor.clean(&e.to_string()), "deleteWebhook failed");
    }
    let mut offset = shared.store().last_update_id()?.map_or(0, |id| id + 1);
    let mut failures = 0u32;
    loop {
        let poll_secs = POLL_TIMEOUT_SECS.min(shared.config.api_timeout.as_secs().saturating_sub(2) as u32);
        let request = shared.bot.get_updates().offset(offset as i32).timeout(poll_secs).allowed_updates(vec![
            AllowedUpdate::Message,
            AllowedUpdate::CallbackQuery,
            AllowedUpdate::InlineQuery,
        ]);
        let result = tokio::select! {
            _ = stop.changed() => return Ok(()),
            r = request => r,
        };
        match result {
            Ok(updates) => {
                failures = 0;
                shared.health.poll_ok();
                if updates.is_empty() {
                    continue;
                }
                let records = incoming(&updates);
                // Durable first; the next getUpdates with a higher offset acknowledges them. If they
                // cannot be written, the offset stays and Telegram delivers them again.
                // Bound first: the store's guard must not live through the sleep below.
                let recorded = shared.store().record_updates(&records, now());
                let fresh = match recorded {
                    Ok(fresh) => fresh,
                    Err(e) => {
                        failures += 1;
                        let wait = backoff(failures as i64);
                        tracing::error!(error = %e, updates = records.len(), retry_in_ms = wait.as_millis() as u64, "cannot record updates; they are not acknowledged and will be fetched again");
                        tokio::select! {
                            _ = stop.changed() => return Ok(()),
                            () = tokio::time::sleep(wait) => {}
                        }
                        continue;
                    }
                };
                shared.health.received(fresh.len());
                for r in records.iter().filter(|r| fresh.contains(&r.update_id)) {
                    dispatch.send(r);
                }
                if let Some(max) = updates.iter().map(|u| i64::from(u.id.0)).max() {
                    offset = offset.max(max + 1);
                }
            }
            Err(RequestError::RetryAfter(seconds)) => {
                tokio::time::sleep(seconds.duration()).await;
            }
            Err(e) => {
                failures += 1;
                let wait = backoff(failures as i64);
                tracing::warn!(error = %shared.redactor.clean(&e.to_string()), retry_in_ms = wait.as_millis() as u64, "getUpdates failed");
                tokio::select! {
                    _ = stop.changed() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

async fn webhook_intake(
    shared: Arc<Shared>,
    webhook: Webhook,
    socket: std::net::TcpListener,
    dispatch: Dispatch,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use axum::http::{HeaderMap, StatusCode};

    shared
        .bot
        .set_webhook(webhook.url.clone())
        .secret_token(webhook.secret.expose().to_string())
        .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery, AllowedUpdate::InlineQuery])
        .await
        .map_err(|e| anyhow::anyhow!("setWebhook failed: {}", shared.redactor.clean(&e.to_string())))?;
    let path = webhook.url.path().to_string();
    let secret = webhook.secret.clone();
    let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
        let shared = shared.clone();
        let dispatch = dispatch.clone();
        let secret = secret.clone();
        async move {
            let given = headers.get("x-telegram-bot-api-secret-token").and_then(|v| v.to_str().ok());
            if given != Some(secret.expose()) {
                return StatusCode::UNAUTHORIZED;
            }
            let Ok(update) = serde_json::from_slice::<Update>(&body) else {
                tracing::warn!("webhook received a body that is not an update");
                return StatusCode::OK;
            };
            let records = incoming(std::slice::from_ref(&update));
            let recorded = shared.store().record_updates(&records, now());
            match recorded {
                Ok(fresh) => {
                    shared.health.received(fresh.len());
                    for r in records.iter().filter(|r| fresh.contains(&r.update_id)) {
                        dispatch.send(r);
                    }
                    StatusCode::OK
                }
                Err(e) => {
                    // Not recorded: let Telegram deliver it again.
                    tracing::error!(error = %e, "cannot record an update");
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }
    };
    let app = axum::Router::new().route(&path, axum::routing::post(handler));
    let listener = tokio::net::TcpListener::from_std(socket).with_context(|| format!("cannot listen on {}", webhook.listen))?;
    tracing::info!(listen = %webhook.listen, "webhook listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await
        .context("the webhook server failed")?;
    Ok(())
}

async fn worker(
    shared: Arc<Shared>,
    index: usize,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<i64>>>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut queue = queue.lock().await;
    while let Some(update_id) = queue.recv().await {
        if *stop.borrow() {
            // Left for the next start: it stays pending in the database.
            break;
        }
        shared.health.worker_busy(index, true);
        run_update(&shared, update_id, &stop).await;
        shared.health.worker_busy(index, false);
    }
    Ok(())
}

/// Handles one update in a task of its own, so a panic is contained. A failure of the storage
/// (full or read-only disk) may pass: the update is tried again, and the chat's later updates
/// wait behind it. Any other failure is retried up to [`MAX_TURN_ATTEMPTS`] times, then the update
/// is quarantined.
async fn run_update(shared: &Arc<Shared>, update_id: i64, stop: &watch::Receiver<bool>) {
    let mut storage_failures = 0;
    loop {
        let begun = shared.store().begin_attempt(update_id);
        let attempt = match begun {
            Ok(Some(attempt)) => attempt,
            Ok(None) => return,
            Err(e) => {
                storage_failures += 1;
                tracing::error!(update_id, error = %e, "cannot read an update; trying again");
                if pause(stop, backoff(storage_failures)).await {
                    return;
                }
                continue;
            }
        };
        if attempt > MAX_TURN_ATTEMPTS {
            // Its attempts ran out in earlier runs: the process died while handling it.
            quarantine(shared, update_id, "it failed in an earlier run".into());
            return;
        }
        let started = std::time::Instant::now();
        // In place rather than in a task of its own: a panic unwinds to here, the turn's
        // transaction rolls back as it drops, and no thread hand-off is added to every update.
        let outcome = std::panic::AssertUnwindSafe(handle(shared, update_id)).catch_unwind().await;
        let error = match outcome {
            Ok(Ok(())) => {
                shared.health.handled(started.elapsed());
                return;
            }
            Ok(Err(e)) if e.downcast_ref::<StoreError>().is_some_and(StoreError::is_storage) => {
                let _ = shared.store().forgive_attempt(update_id);
                storage_failures += 1;
                let wait = backoff(storage_failures);
                tracing::error!(update_id, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot store a turn; trying again");
                if pause(stop, wait).await {
                    return;
                }
                continue;
            }
            Ok(Err(e)) => {
                let error = shared.redactor.clean(&format!("{e:#}"));
                tracing::error!(update_id, attempt, error = %error, "cannot handle an update");
                error
            }
            Err(panic) => {
                // The panic's own message may quote the user's text: it goes to the quarantine
                // table for admins, not to the log.
                let message = panic_message(panic);
                tracing::error!(update_id, attempt, "handling an update panicked");
                shared.redactor.clean(&format!("panic: {message}"))
            }
        };
        if attempt >= MAX_TURN_ATTEMPTS {
            quarantine(shared, update_id, error);
            return;
        }
        if pause(stop, backoff(attempt)).await {
            return;
        }
    }
}

/// Sleeps, or returns true at once when the bot is stopping.
async fn pause(stop: &watch::Receiver<bool>, wait: Duration) -> bool {
    let mut stop = stop.clone();
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = stop.changed() => true,
        () = tokio::time::sleep(wait) => false,
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Moves an update to the quarantine and queues the apology to its chat, together.
fn quarantine(shared: &Shared, update_id: i64, error: String) {
    let record = shared.store().pending_update(update_id).ok().flatten();
    let apology = record.as_ref().and_then(|r| apology(shared, r));
    let error: String = error.chars().take(2000).collect();
    match shared.store().quarantine_update(update_id, &error, apology.as_slice(), now()) {
        Ok(true) => {
            shared.health.quarantined();
            shared.wake_sender.notify_one();
            tracing::error!(update_id, "an update failed every attempt and is quarantined; see `sme-advisor quarantine list`");
        }
        Ok(false) => {}
        Err(e) => tracing::error!(update_id, error = %e, "cannot quarantine an update"),
    }
}

/// The short apology for the chat of a failed update, in the user's language. Read from the raw
/// JSON, not through the code that may have failed on it.
fn apology(shared: &Shared, record: &IncomingUpdate) -> Option<Outgoing> {
    let json: serde_json::Value = serde_json::from_str(&record.payload).ok()?;
    if json.get("inline_query").is_some() || record.chat_id == 0 {
        return None;
    }
    let from = ["/message/from/language_code", "/edited_message/from/language_code", "/callback_query/from/language_code"]
        .iter()
        .find_map(|p| json.pointer(p).and_then(|v| v.as_str()));
    let content = shared.content();
    let lang = content.language_for(from);
    let text = render::escape(&content.message("turn_failed", &lang, &[]));
    Some(Out::send(record.chat_id, Message { text, keyboard: Vec::new() }).queue(record.chat_id))
}

async fn handle(shared: &Shared, update_id: i64) -> anyhow::Result<()> {
    let Some(record) = shared.store().pending_update(update_id)? else { return Ok(()) };
    let Ok(update) = serde_json::from_str::<Update>(&record.payload) else {
        tracing::warn!(update_id, "a recorded update no longer parses; skipped");
        shared.store().finish_update(update_id, &[], now())?;
        return Ok(());
    };
    match inbound::read(&update, &shared.username) {
        Inbound::Ignore => {
            shared.store().finish_update(update_id, &[], now())?;
        }
        Inbound::Inline { id, lang, query } => {
            let content = shared.content();
            let lang = content.language_for(lang.as_deref());
            let results = inline_results(&content, &shared.username, &query, &lang);
            let mut attempt = 0;
            loop {
                attempt += 1;
                match shared.bot.answer_inline_query(InlineQueryId(id.clone()), results.clone()).cache_time(60).await {
                    Ok(_) => break,
                    Err(e) if attempt < 3 => {
                        tracing::debug!(error = %shared.redactor.clean(&e.to_string()), "answerInlineQuery failed; retrying");
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    Err(e) => {
                        // Inline answers are only useful within seconds: give up.
                        tracing::warn!(error = %shared.redactor.clean(&e.to_string()), "answerInlineQuery failed");
                        break;
                    }
                }
            }
            shared.store().finish_update(update_id, &[], now())?;
            tracing::info!(update_id, kind = "inline", "update handled");
        }
        Inbound::Turn(turn) => {
            if shared.config.test_hooks
                && let Input::Text(text) = &turn.input
            {
                test_hook(text).await;
            }
            let input = match staff::handle(shared, update_id, &turn).await? {
                staff::Route::Done => {
                    shared.wake_sender.notify_one();
                    return Ok(());
                }
                staff::Route::Engine(input) => input,
            };
            let turn = inbound::Turn { input, ..turn };
            let content = shared.content();
            let lang = content.language_for(turn.lang.as_deref());
            let at = now();
            let user = turn.user_id.to_string();
            let staff_chat = shared.config.app.staff_chat_id;
            let handled = shared.store().update_turn(
                update_id,
                (CHANNEL, &user),
                &lang,
                at,
                |session| engine::step(&content, session, &turn.input, at),
                |record| {
                    let mut ops = outgoing(&turn, &record.step);
                    ops.extend(staff::handoff_posts(&content, staff_chat, record));
                    ops
                },
            )?;
            if let Some(record) = handled {
                let step = &record.step;
                for effect in &step.effects {
                    if let engine::Effect::BroadcastDraft(answers) = effect {
                        broadcast::draft(shared, &content, &lang, &turn, answers)?;
                    }
                }
                shared.wake_sender.notify_one();
                tracing::info!(
                    update_id,
                    chat = turn.chat_id,
                    kind = input_kind(&turn.input),
                    replies = step.replies.len(),
                    "update handled"
                );
            }
        }
    }
    Ok(())
}

/// The test-only hooks of [`ServeConfig::test_hooks`].
async fn test_hook(text: &str) {
    if text == "__test_panic__" {
        panic!("test hook: a forced panic");
    }
    if let Some(seconds) = text.strip_prefix("__test_stall_").and_then(|t| t.strip_suffix("__")).and_then(|t| t.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_secs(seconds.min(60))).await;
    }
}

/// What kind of input it was, for logs that carry no message text.
fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::Text(_) => "text",
        Input::Button(_) => "button",
        Input::Command { .. } => "command",
        Input::Start { .. } => "start",
        Input::Unsupported(_) => "unsupported",
        Input::Authorized { .. } => "authorized command",
    }
}

/// The operations a turn queues: answer the button press, then the replies; a menu the user tapped
/// through is edited in place instead of sent again.
pub fn outgoing(turn: &inbound::Turn, step: &engine::Step) -> Vec<Outgoing> {
    let mut ops = Vec::new();
    if let Some(callback) = &turn.callback {
        ops.push(Out::AnswerCallback { id: callback.id.clone() });
    }
    let messages = render::join(step.replies.iter().flat_map(render::render).filter(|m| !m.text.is_empty()).collect());
    let edit_target = match (&turn.callback, &turn.input) {
        (Some(cb), Input::Button(data)) if data.starts_with("s:") || data == "m" || data == "b" => cb.message_id,
        _ => None,
    };
    for (i, message) in messages.into_iter().enumerate() {
        match edit_target {
            Some(message_id) if i == 0 => ops.push(Out::Edit { chat_id: turn.chat_id, message_id, message }),
            _ => ops.push(Out::send(turn.chat_id, message)),
        }
    }
    ops.into_iter().map(|op| op.queue(turn.chat_id)).collect()
}

/// Knowledge entries matching an inline query, as shareable cards with a link back to the bot.
fn inline_results(content: &Content, username: &str, query: &str, lang: &str) -> Vec<InlineQueryResult> {
    let label = content.message("button_open_bot", lang, &[]);
    content
        .index
        .top_entries(query, 10)
        .into_iter()
        .filter_map(|i| {
            let entry = &content.entries[i];
            let card =
                engine::step(content, &Session::new(lang), &Input::Button(format!("e:{}", entry.id)), 0).replies.into_iter().next()?;
            let text = render::render(&engine::Reply { buttons: Vec::new(), ..card }).into_iter().next()?.text;
            let texts = content.entry_text(entry, lang);
            let mut message = InputMessageContentText::new(text);
            message.parse_mode = Some(ParseMode::Html);
            message.link_preview_options = Some(no_preview());
            let mut article = InlineQueryResultArticle::new(entry.id.clone(), texts.name.clone(), InputMessageContent::Text(message));
            article.description = Some(texts.summary.clone());
            if let Ok(url) = reqwest::Url::parse(&format!("https://t.me/{username}?start={}", entry.id)) {
                article.reply_markup = Some(InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::url(label.clone(), url)]]));
            }
            Some(InlineQueryResult::Article(article))
        })
        .collect()
}

fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions { is_disabled: true, url: None, prefer_small_media: false, prefer_large_media: false, show_above_text: false }
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

/// 250 ms doubling per attempt, at most 30 s.
/// The pause before a failed send is tried again: 200 ms doubling per attempt, at most 20 s, with
/// up to half of it added or taken at random so that many retries do not arrive together.
fn send_backoff(attempt: i64, salt: i64) -> Duration {
    let base = (200u64 << (attempt.clamp(1, 8) - 1) as u64).min(20_000);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64);
    let mix = (nanos ^ (salt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 33;
    let jitter = mix % (base + 1);
    Duration::from_millis(base / 2 + jitter)
}

fn backoff(attempt: i64) -> Duration {
    Duration::from_millis((250u64 << attempt.clamp(0, 7) as u64).min(30_000))
}

/// What to do after a failed call.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Try again later.
    Retry,
    /// Telegram asks to wait this many seconds.
    RetryAfter(u64),
    /// The user blocked the bot or left: stop writing to the chat.
    Blocked,
    /// The message to edit is gone: send it as a new message.
    EditToSend,
    /// Nothing to do (the edit changed nothing).
    Done,
    /// The request itself is wrong: give up on it.
    Permanent,
}

fn classify(error: &RequestError) -> Failure {
    match error {
        RequestError::RetryAfter(s) => Failure::RetryAfter(s.seconds().into()),
        RequestError::Api(api) => match api {
            ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::CantInitiateConversation
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel
            | ApiError::ChatNotFound => Failure::Blocked,
            ApiError::MessageNotModified => Failure::Done,
            ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited | ApiError::MessageIdInvalid => Failure::EditToSend,
            // Server errors (5xx) reach us as unknown API errors.
            ApiError::Unknown(_) => Failure::Retry,
            _ => Failure::Permanent,
        },
        RequestError::MigrateToChatId(_) => Failure::Permanent,
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => Failure::Retry,
    }
}

/// A callback button, or a URL button for a link (data that is an `https://` address the content
/// allowed); an address that does not parse (the loader prevents it) becomes a menu button rather
/// than failing the message.
fn keyboard_button(label: &str, data: &str) -> InlineKeyboardButton {
    if data.starts_with(engine::LINK_PREFIX) {
        return match reqwest::Url::parse(data) {
            Ok(url) => InlineKeyboardButton::url(label.to_string(), url),
            Err(_) => InlineKeyboardButton::callback(label.to_string(), "m".to_string()),
        };
    }
    InlineKeyboardButton::callback(label.to_string(), data.to_string())
}

/// Performs one operation once Telegram's limits allow it; returns the id of the message it
/// sent, if it sent one. `class` places it in the queue for the global budget.
async fn execute(shared: &Shared, op: &Out, class: Class) -> Result<Option<i32>, RequestError> {
    use teloxide::payloads::{AnswerCallbackQuery, EditMessageText, SendMessage};
    use teloxide::types::ReplyMarkup;
    let keyboard = |m: &Message| {
        InlineKeyboardMarkup::new(
            m.keyboard.iter().map(|row| row.iter().map(|(label, data)| keyboard_button(label, data)).collect::<Vec<_>>()),
        )
    };
    match op {
        Out::Send { chat_id, message, reply_to, .. } => {
            shared.health.gate_waited(class, shared.gate.acquire(*chat_id, class).await);
            let mut payload = SendMessage::new(ChatId(*chat_id), message.text.clone());
            payload.parse_mode = Some(ParseMode::Html);
            payload.link_preview_options = Some(no_preview());
            if !message.keyboard.is_empty() {
                payload.reply_markup = Some(ReplyMarkup::InlineKeyboard(keyboard(message)));
            }
            if let Some(id) = reply_to {
                payload.reply_parameters = Some(ReplyParameters::new(MessageId(*id)));
            }
            if class == Class::Broadcast && shared.config.budget.paid_broadcast {
                payload.allow_paid_broadcast = Some(true);
            }
            shared.client.call::<_, teloxide::types::Message>("sendMessage", &payload).await.map(|m| Some(m.id.0))
        }
        Out::Document { chat_id, file_name, caption, content } => {
            shared.health.gate_waited(class, shared.gate.acquire(*chat_id, class).await);
            shared
                .bot
                .send_document(ChatId(*chat_id), InputFile::memory(content.clone().into_bytes()).file_name(file_name.clone()))
                .caption(caption.clone())
                .await
                .map(|m| Some(m.id.0))
        }
        Out::Edit { chat_id, message_id, message } => {
            shared.health.gate_waited(class, shared.gate.acquire(*chat_id, class).await);
            let mut payload = EditMessageText::new(ChatId(*chat_id), MessageId(*message_id), message.text.clone());
            payload.parse_mode = Some(ParseMode::Html);
            payload.link_preview_options = Some(no_preview());
            if !message.keyboard.is_empty() {
                payload.reply_markup = Some(keyboard(message));
            }
            shared.client.call::<_, serde_json::Value>("editMessageText", &payload).await.map(|_| None)
        }
        Out::AnswerCallback { id } => {
            // Not a message: outside the budgets, but it waits out a global pause.
            shared.gate.unpaused().await;
            shared.client.call::<_, bool>("answerCallbackQuery", &AnswerCallbackQuery::new(CallbackQueryId(id.clone()))).await.map(|_| None)
        }
    }
}

/// A full read of the outbox's heads at least this often while messages are in flight, so that
/// retries that came due are found.
const RESCAN_EVERY: Duration = Duration::from_millis(100);

/// Drains the outbox: one message in flight per chat, at most `MAX_IN_FLIGHT` overall.
async fn sender(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut in_flight: HashSet<i64> = HashSet::new();
    let mut tasks: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    let mut chat_of: HashMap<tokio::task::Id, i64> = HashMap::new();
    let mut last_prune = 0;
    // Heads read from the outbox and not yet sent (their chat was busy or the limit reached). They
    // stay valid: only this loop sends and removes rows, and a chat's new rows queue behind its head.
    let mut backlog: std::collections::VecDeque<OutboxHead> = std::collections::VecDeque::new();
    let mut read_all = true;
    let mut last_read = std::time::Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        shared.health.sender_beat();
        if shared.gate.paused_until().is_some() {
            backlog.clear();
            read_all = true;
        } else if read_all || last_read.elapsed() >= RESCAN_EVERY {
            // New rows, or retries that may have come due: read every chat's head again.
            let heads = shared.store().outbox_heads(now_ms(), 256).unwrap_or_default();
            backlog = heads.into_iter().filter(|h| !in_flight.contains(&h.chat_id)).collect();
            read_all = false;
            last_read = std::time::Instant::now();
        }
        while tasks.len() < MAX_IN_FLIGHT {
            let Some(row) = backlog.pop_front() else { break };
            if in_flight.contains(&row.chat_id) {
                continue;
            }
            let Ok(Some(payload)) = shared.store().outbox_payload(row.id, now_ms()) else { continue };
            in_flight.insert(row.chat_id);
            let shared = shared.clone();
            let task = tasks.spawn(async move {
                deliver(&shared, row.id, row.chat_id, &payload, row.attempts).await;
            });
            chat_of.insert(task.id(), row.chat_id);
        }
        if now() - last_prune > 600 {
            last_prune = now();
            let _ = shared.store().prune_updates(now() - 2 * 24 * 3600);
            if let Some(days) = shared.config.app.retention_days {
                match shared.store().purge_inquiries(now() - days * 86_400) {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, days, "retention: old inquiries deleted"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention failed"),
                }
            }
        }
        let idle = if tasks.is_empty() { Duration::from_millis(500) } else { RESCAN_EVERY };
        tokio::select! {
            _ = stop.changed() => break,
            () = shared.wake_sender.notified() => read_all = true,
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                // The chat is free: its next message, if due, goes to the front; no full read needed.
                let id = match &done {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                if let Some(chat) = chat_of.remove(&id) {
                    in_flight.remove(&chat);
                    let next = shared.store().outbox_head_of(chat, now_ms());
                    match next {
                        Ok(Some(head)) => backlog.push_front(head),
                        Ok(None) => {}
                        Err(_) => read_all = true,
                    }
                }
            }
            () = tokio::time::sleep(idle) => read_all = true,
        }
    }
    // Let the messages in flight finish, so they are not sent twice after a restart.
    while tasks.join_next().await.is_some() {}
}

/// Telegram refused a message to `chat` with 429 `retry_after`: the gate pauses that chat, or
/// everything when the refusal looks global. Returns when the chat may be written to again.
fn pause_sending(shared: &Shared, chat: i64, seconds: u64) -> i64 {
    let until = now_ms() + seconds as i64 * 1000;
    let scope = shared.gate.refused(chat, Duration::from_secs(seconds));
    tracing::warn!(seconds, everything = scope == Scope::Everything, "Telegram asks to slow down");
    until
}

async fn deliver(shared: &Shared, id: i64, chat_id: i64, payload: &str, attempts: i64) {
    // The list of heads may be older than the last delivery to this chat: never send a row twice.
    if !shared.store().outbox_contains(id).unwrap_or(false) {
        return;
    }
    let Ok(op) = serde_json::from_str::<Out>(payload) else {
        tracing::error!(id, "an outbox row does not parse; dropped");
        let _ = shared.store().outbox_done(id);
        return;
    };
    if attempts > 0 && !matches!(op, Out::AnswerCallback { .. }) {
        // The reply is taking a moment: show that the bot is working on it. If Telegram asks to
        // slow down even for that, the message waits as long as it was told.
        shared.gate.unpaused().await;
        let typing = teloxide::payloads::SendChatAction::new(ChatId(chat_id), ChatAction::Typing);
        if let Err(e) = shared.client.call::<_, bool>("sendChatAction", &typing).await
            && let Failure::RetryAfter(seconds) = classify(&e)
        {
            let until = pause_sending(shared, chat_id, seconds);
            let _ = shared.store().outbox_retry(id, until);
            return;
        }
    }
    let result = execute(shared, &op, op.class()).await;
    if let Err(e) = &result
        && classify(e) == Failure::Retry
        && !matches!(op, Out::AnswerCallback { .. })
    {
        shared.gate.give_back(chat_id, op.class());
    }
    let mut store = shared.store();
    let outcome = match &result {
        Ok(sent) => {
            if let (Out::Send { chat_id, post_of: Some(inquiry), .. }, Some(message_id)) = (&op, sent) {
                let _ = store.record_handoff_post(*chat_id, i64::from(*message_id), *inquiry);
            }
            if let (Out::Send { chat_id, report_of: Some(broadcast), .. }, Some(message_id)) = (&op, sent) {
                let _ = store.set_report_message(*broadcast, *chat_id, i64::from(*message_id));
            }
            Failure::Done
        }
        Err(e) => classify(e),
    };
    shared.health.sent(match (&result, &outcome) {
        (Ok(_), _) => health::SendResult::Ok,
        (_, Failure::RetryAfter(_)) => health::SendResult::TooMany,
        (_, Failure::Blocked) => health::SendResult::Blocked,
        (Err(RequestError::Api(ApiError::Unknown(_))), _) => health::SendResult::ServerError,
        (_, Failure::Retry) => health::SendResult::Network,
        _ => health::SendResult::Refused,
    });
    let error = result.err().map(|e| shared.redactor.clean(&e.to_string()));
    match outcome {
        Failure::Done => {
            let _ = store.outbox_done(id);
        }
        // A button's spinner is only worth stopping within seconds: do not hold the chat's queue for it.
        Failure::Retry if attempts + 1 >= MAX_ATTEMPTS || (matches!(op, Out::AnswerCallback { .. }) && attempts >= 1) => {
            tracing::warn!(chat = chat_id, error = ?error, attempts = attempts + 1, "giving up on a message");
            let _ = store.outbox_done(id);
        }
        Failure::Retry => {
            tracing::debug!(chat = chat_id, error = ?error, attempt = attempts + 1, "send failed; will retry");
            let _ = store.outbox_retry(id, now_ms() + send_backoff(attempts + 1, id).as_millis() as i64);
        }
        Failure::RetryAfter(seconds) => {
            let until = pause_sending(shared, chat_id, seconds);
            let _ = store.outbox_retry(id, until);
        }
        Failure::Blocked => {
            tracing::info!(chat = chat_id, "the chat blocked the bot; marked inactive");
            let _ = store.chat_blocked(CHANNEL, chat_id, now());
        }
        Failure::EditToSend => {
            if let Out::Edit { chat_id, message, .. } = op {
                let send = Out::send(chat_id, message);
                let _ = store.outbox_replace(id, &serde_json::to_string(&send).expect("serialises"));
            } else {
                let _ = store.outbox_done(id);
            }
        }
        Failure::Permanent => {
            tracing::warn!(chat = chat_id, error = ?error, "Telegram refused a message; dropped");
            let _ = store.outbox_done(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_a_url_button_and_other_data_a_callback() {
        let link = keyboard_button("Official website", "https://empretec.unctad.org/");
        assert!(matches!(&link.kind, teloxide::types::InlineKeyboardButtonKind::Url(u) if u.as_str() == "https://empretec.unctad.org/"));
        let callback = keyboard_button("Details", "d:empretec");
        assert!(matches!(&callback.kind, teloxide::types::InlineKeyboardButtonKind::CallbackData(d) if d == "d:empretec"));
        let broken = keyboard_button("Broken", "https://exa mple.org");
        assert!(matches!(&broken.kind, teloxide::types::InlineKeyboardButtonKind::CallbackData(d) if d == "m"));
    }

    #[test]
    fn errors_are_classified_for_retry_block_or_drop() {
        assert_eq!(classify(&RequestError::Api(ApiError::BotBlocked)), Failure::Blocked);
        assert_eq!(classify(&RequestError::Api(ApiError::Unknown("Bad Gateway".into()))), Failure::Retry);
        assert_eq!(classify(&RequestError::Api(ApiError::MessageNotModified)), Failure::Done);
        assert_eq!(classify(&RequestError::Api(ApiError::MessageToEditNotFound)), Failure::EditToSend);
        assert_eq!(classify(&RequestError::Api(ApiError::MessageTextIsEmpty)), Failure::Permanent);
        assert!(backoff(1) < backoff(2) && backoff(50) == Duration::from_secs(30));
        for attempt in 1..12 {
            let base = (200u64 << (attempt.min(8) - 1)).min(20_000);
            let wait = send_backoff(attempt, attempt * 7).as_millis() as u64;
            assert!((base / 2..=base * 3 / 2).contains(&wait), "attempt {attempt}: {wait} ms");
        }
    }

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
