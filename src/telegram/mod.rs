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
//! The bot token never appears in logs or errors: every error text passes through [`Redactor`].

mod broadcast;
pub mod inbound;
pub mod render;
mod staff;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use teloxide::payloads::{
    AnswerInlineQuerySetters, EditMessageTextSetters, GetUpdatesSetters, SendDocumentSetters, SendMessageSetters, SetMyCommandsSetters,
    SetWebhookSetters,
};
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
use render::Message;

/// The channel name users of this front end are stored under.
pub const CHANNEL: &str = "telegram";
/// How many messages the sender has in flight at once (at most one per chat).
pub const MAX_IN_FLIGHT: usize = 16;
/// Long-polling timeout; below teloxide's 17 s request timeout.
const POLL_TIMEOUT_SECS: u32 = 10;
/// Attempts before a message is given up on.
const MAX_ATTEMPTS: i64 = 12;

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
        Out::Send { chat_id, message, reply_to: None, post_of: None, report_of: None }
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
    /// No sending before this time (a 429 pauses everything), in milliseconds.
    paused_until_ms: AtomicI64,
}

impl Shared {
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
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Runs the bot until `shutdown` completes; the turn in progress finishes first.
pub async fn serve(config: ServeConfig, content: Arc<Content>, store: Store, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let redactor = Redactor(config.token.clone());
    let client = teloxide::net::default_reqwest_settings().timeout(config.api_timeout).build()?;
    let mut bot = Bot::with_client(config.token.expose(), client);
    if let Some(url) = &config.api_url {
        bot = bot.set_api_url(url.clone());
    }
    let me = bot.get_me().await.map_err(|e| anyhow::anyhow!("cannot reach the Bot API (getMe): {}", redactor.clean(&e.to_string())))?;
    let username = me.username.clone().unwrap_or_default();
    tracing::info!(bot = %username, "connected to the Bot API");
    register_commands(&bot, &content, &redactor).await;
    let shared = Arc::new(Shared {
        bot,
        base: std::sync::RwLock::new(content.clone()),
        content: std::sync::RwLock::new(content),
        store: Mutex::new(store),
        config: config.clone(),
        redactor,
        username,
        wake_sender: Notify::new(),
        paused_until_ms: AtomicI64::new(0),
    });
    shared.refresh_calls();
    let (stop_tx, stop_rx) = watch::channel(false);

    // Workers, one queue each; a chat always maps to the same worker.
    let n_workers = config.workers.max(1);
    let mut queues = Vec::new();
    let mut worker_tasks = Vec::new();
    for _ in 0..n_workers {
        let (tx, rx) = mpsc::unbounded_channel::<i64>();
        queues.push(tx);
        worker_tasks.push(tokio::spawn(worker(shared.clone(), rx, stop_rx.clone())));
    }
    let dispatch = Dispatch { queues };
    let pending = shared.store().pending_updates()?;
    if !pending.is_empty() {
        tracing::info!(n = pending.len(), "handling updates recorded before the last stop");
    }
    for u in &pending {
        dispatch.send(u);
    }
    let sender_task = tokio::spawn(sender(shared.clone(), stop_rx.clone()));
    let broadcast_task = tokio::spawn(broadcast::sender(shared.clone(), stop_rx.clone()));

    let intake = async {
        match &config.webhook {
            Some(webhook) => webhook_intake(shared.clone(), webhook.clone(), dispatch.clone(), stop_rx.clone()).await,
            None => poll_intake(shared.clone(), dispatch.clone(), stop_rx.clone()).await,
        }
    };
    tokio::select! {
        result = intake => result?,
        () = shutdown => tracing::info!("shutting down"),
    }
    let _ = stop_tx.send(true);
    drop(dispatch);
    for task in worker_tasks {
        let _ = task.await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), sender_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), broadcast_task).await;
    tracing::info!("stopped");
    Ok(())
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

async fn webhook_intake(shared: Arc<Shared>, webhook: Webhook, dispatch: Dispatch, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
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
    let listener = tokio::net::TcpListener::bind(webhook.listen).await.with_context(|| format!("cannot listen on {}", webhook.listen))?;
    tracing::info!(listen = %webhook.listen, "webhook listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await
        .context("the webhook server failed")?;
    Ok(())
}

async fn worker(shared: Arc<Shared>, mut queue: mpsc::UnboundedReceiver<i64>, mut stop: watch::Receiver<bool>) {
    while let Some(update_id) = queue.recv().await {
        if *stop.borrow() {
            // Left for the next start: it stays pending in the database.
            break;
        }
        // A storage failure (full or read-only disk) may pass: the update is tried again, and the
        // chat's later updates wait behind it. Any other failure leaves it pending for the next start.
        let mut attempt = 0;
        loop {
            let Err(e) = handle(&shared, update_id).await else { break };
            let storage = e.downcast_ref::<StoreError>().is_some_and(StoreError::is_storage);
            if !storage || *stop.borrow() {
                tracing::error!(update_id, error = %shared.redactor.clean(&format!("{e:#}")), "cannot handle an update; it stays pending");
                break;
            }
            attempt += 1;
            let wait = backoff(attempt);
            tracing::error!(update_id, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot store a turn; trying again");
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
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
                        broadcast::draft(shared, &content, &lang, turn.chat_id, turn.user_id, answers)?;
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
    let messages: Vec<Message> = step.replies.iter().flat_map(render::render).filter(|m| !m.text.is_empty()).collect();
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

/// Performs one operation; returns the id of the message it sent, if it sent one.
async fn execute(bot: &Bot, op: &Out) -> Result<Option<i32>, RequestError> {
    let keyboard = |m: &Message| {
        InlineKeyboardMarkup::new(
            m.keyboard.iter().map(|row| row.iter().map(|(label, data)| keyboard_button(label, data)).collect::<Vec<_>>()),
        )
    };
    match op {
        Out::Send { chat_id, message, reply_to, .. } => {
            let mut request =
                bot.send_message(ChatId(*chat_id), message.text.clone()).parse_mode(ParseMode::Html).link_preview_options(no_preview());
            if !message.keyboard.is_empty() {
                request = request.reply_markup(keyboard(message));
            }
            if let Some(id) = reply_to {
                request = request.reply_parameters(ReplyParameters::new(MessageId(*id)));
            }
            request.await.map(|m| Some(m.id.0))
        }
        Out::Document { chat_id, file_name, caption, content } => bot
            .send_document(ChatId(*chat_id), InputFile::memory(content.clone().into_bytes()).file_name(file_name.clone()))
            .caption(caption.clone())
            .await
            .map(|m| Some(m.id.0)),
        Out::Edit { chat_id, message_id, message } => {
            let mut request = bot
                .edit_message_text(ChatId(*chat_id), MessageId(*message_id), message.text.clone())
                .parse_mode(ParseMode::Html)
                .link_preview_options(no_preview());
            if !message.keyboard.is_empty() {
                request = request.reply_markup(keyboard(message));
            }
            request.await.map(|_| None)
        }
        Out::AnswerCallback { id } => bot.answer_callback_query(CallbackQueryId(id.clone())).await.map(|_| None),
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
        let paused = shared.paused_until_ms.load(Ordering::Relaxed);
        if now_ms() < paused {
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

/// Telegram asked to wait `seconds` (429): no message leaves before then. Returns when sending may go on.
fn pause_sending(shared: &Shared, seconds: u64) -> i64 {
    let until = now_ms() + seconds as i64 * 1000;
    shared.paused_until_ms.fetch_max(until, Ordering::Relaxed);
    tracing::warn!(seconds, "Telegram asks to slow down");
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
        if let Err(e) = shared.bot.send_chat_action(ChatId(chat_id), ChatAction::Typing).await
            && let Failure::RetryAfter(seconds) = classify(&e)
        {
            let until = pause_sending(shared, seconds);
            let _ = shared.store().outbox_retry(id, until);
            return;
        }
    }
    let result = execute(&shared.bot, &op).await;
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
            let _ = store.outbox_retry(id, now_ms() + backoff(attempts + 1).as_millis() as i64);
        }
        Failure::RetryAfter(seconds) => {
            let until = pause_sending(shared, seconds);
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
