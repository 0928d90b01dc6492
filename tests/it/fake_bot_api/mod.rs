//! A fake Telegram Bot API server for the integration tests.
//!
//! Start it with [`FakeBotApi::start`], give the bot `TELOXIDE_API_URL=<fake.url()>` and
//! `TELOXIDE_TOKEN=<token>`, push updates with the `push_*` builders and inspect what the bot
//! did with [`FakeBotApi::calls`], [`FakeBotApi::messages`] and friends.
//!
//! Requests are checked against the official Bot API description (tests/data/bot-api-10.1.json):
//! unknown methods (404), unknown, missing or mistyped parameters (400), plus the documented
//! limits that matter to this bot (text length, HTML validity, callback_data size, ...).
//! Faults — 502s, dropped connections, 429s, 403s, flood limits — can be switched on at
//! runtime, deterministically (see [`Faults`]).

// A support library: each test uses only part of it.
#![allow(dead_code)]

mod faults;
mod http;
mod markup;
mod spec;
mod state;
#[cfg(test)]
#[cfg(test)]
mod tests;
mod updates;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

pub use faults::{FaultStats, Faults, RateLimits};
pub use state::{
    BotMessage, Button, Call, CallbackAnswer, ChatAction, IMPLEMENTED, InlineAnswer, SentDocument, SentPhoto, UploadedFile, image_size,
};

use http::Request;
use spec::{MethodSpec, spec};
use state::{Failure, State};

/// Default username of the fake bot (`getMe`).
pub const DEFAULT_BOT_USERNAME: &str = "sme_advisor_test_bot";

/// Handle to a running fake server. Cheap to clone; the server stops when the last clone is
/// dropped or on [`FakeBotApi::shutdown`].
#[derive(Clone)]
pub struct FakeBotApi {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
}

struct Inner {
    token: String,
    state: Mutex<State>,
    /// Woken on every answered call and every pushed update.
    activity: Notify,
}

enum Answer {
    Respond(u16, Vec<u8>),
    Close,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

impl FakeBotApi {
    /// Binds 127.0.0.1 on a free port and serves in a background task of the current tokio
    /// runtime.
    pub async fn start(token: &str) -> FakeBotApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("fake Bot API: cannot bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake Bot API: no local address");
        let (stop_tx, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner { token: token.to_owned(), state: Mutex::new(State::new(token)), activity: Notify::new() });
        // Load the spec before the first request.
        let _ = spec();
        tokio::spawn(accept_loop(listener, Arc::clone(&inner), stop_rx));
        FakeBotApi { inner, addr, stop: Arc::new(stop_tx) }
    }

    /// The base URL for `TELOXIDE_API_URL`, e.g. `http://127.0.0.1:40123/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn token(&self) -> String {
        self.inner.token.clone()
    }

    /// Stops accepting and closes every connection (also pending long polls).
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    fn notify(&self) {
        self.inner.activity.notify_waiters();
    }

    // ----- the bot's profile and the users ---------------------------------------------------

    pub fn set_bot_username(&self, username: &str) {
        self.lock().bot_username = username.to_owned();
    }

    pub fn bot_username(&self) -> String {
        self.lock().bot_username.clone()
    }

    /// The bot's user id: the number before `:` in the token.
    pub fn bot_id(&self) -> i64 {
        self.lock().bot_id
    }

    /// Sets a user's names (users otherwise get `User<id>` / `user<id>`). Call it before the
    /// user's first update: a private chat keeps the names it was created with.
    pub fn set_user(&self, user_id: i64, first_name: &str, last_name: Option<&str>, username: Option<&str>) {
        let mut state = self.lock();
        let user = state.user(user_id);
        user.first_name = first_name.to_owned();
        user.last_name = last_name.map(str::to_owned);
        user.username = username.map(str::to_owned);
    }

    /// Makes a chat known without any update (positive id: private chat with that user).
    /// Sending to a chat the fake never saw fails with "chat not found", like Telegram.
    pub fn add_chat(&self, chat_id: i64) {
        self.lock().ensure_chat(chat_id, chat_id);
    }

    // ----- what the bot did ------------------------------------------------------------------

    /// Every request so far, in arrival order of the answers.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls().to_vec()
    }

    /// The calls of one method.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.lock().calls().iter().filter(|c| c.method == method).cloned().collect()
    }

    /// How many calls of `method` were answered 200.
    pub fn successful_calls(&self, method: &str) -> usize {
        self.lock().calls().iter().filter(|c| c.method == method && c.status == 200).count()
    }

    /// Every call not answered 200, injected faults included. A getUpdates 409 (replaced by a
    /// newer poll) or 499 (the client went away mid-poll) is a normal artifact of a bot
    /// process stopping or restarting; see [`FakeBotApi::bot_errors`].
    pub fn failed_calls(&self) -> Vec<Call> {
        self.lock().calls().iter().filter(|c| c.status != 200).cloned().collect()
    }

    /// Calls answered 400/401/404 — requests the bot got wrong. Injected faults and long-poll
    /// artifacts are not included.
    pub fn bot_errors(&self) -> Vec<Call> {
        self.lock().calls().iter().filter(|c| matches!(c.status, 400 | 401 | 404)).cloned().collect()
    }

    /// The last `n` calls, one line each.
    pub fn dump_calls(&self, n: usize) -> String {
        let state = self.lock();
        let calls = state.calls();
        let skip = calls.len().saturating_sub(n);
        calls[skip..].iter().map(Call::one_line).collect::<Vec<_>>().join("\n")
    }

    /// The bot's messages in a chat, current state (after edits), without deleted ones.
    pub fn messages(&self, chat_id: i64) -> Vec<BotMessage> {
        self.lock().messages(chat_id, false, false)
    }

    /// Every message of a chat: the users' too, and deleted ones (`deleted == true`).
    pub fn all_messages(&self, chat_id: i64) -> Vec<BotMessage> {
        self.lock().messages(chat_id, true, true)
    }

    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<BotMessage> {
        self.lock().message(chat_id, message_id)
    }

    /// The bot's latest (not deleted) message in a chat.
    pub fn last_message(&self, chat_id: i64) -> Option<BotMessage> {
        self.messages(chat_id).pop()
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.lock().callback_answers()
    }

    /// Ids of pushed callback queries the bot has not answered.
    pub fn unanswered_callback_queries(&self) -> Vec<String> {
        self.lock().unanswered_callback_queries()
    }

    pub fn inline_answers(&self) -> Vec<InlineAnswer> {
        self.lock().inline_answers()
    }

    pub fn chat_actions(&self) -> Vec<ChatAction> {
        self.lock().chat_actions()
    }

    pub fn documents(&self) -> Vec<SentDocument> {
        self.lock().documents()
    }

    /// Photos the bot sent, in order.
    pub fn photos(&self) -> Vec<SentPhoto> {
        self.lock().photos()
    }

    /// Edits of inline messages (`inline_message_id`), which the fake only records.
    pub fn inline_edits(&self) -> Vec<Value> {
        self.lock().inline_edits()
    }

    /// Commands set for a scope key (`default`, `all_private_chats`, `all_group_chats`,
    /// `all_chat_administrators`, `chat:<id>`, `chat_administrators:<id>`,
    /// `chat_member:<chat>:<user>`) and language code (`""` for none): (command, description).
    pub fn my_commands(&self, scope_key: &str, language_code: &str) -> Option<Vec<(String, String)>> {
        self.lock().my_commands(scope_key, language_code)
    }

    /// (scope key, language code, number of commands) of every stored list.
    pub fn all_my_commands(&self) -> Vec<(String, String, usize)> {
        self.lock().all_my_commands()
    }

    pub fn webhook_url(&self) -> String {
        self.lock().webhook_url()
    }

    /// The bot's last `allowed_updates` (`None`: Telegram's default).
    pub fn allowed_updates(&self) -> Option<Vec<String>> {
        self.lock().allowed_updates()
    }

    // ----- updates ---------------------------------------------------------------------------

    /// Updates not yet confirmed by an offset.
    pub fn pending_updates(&self) -> usize {
        self.lock().pending_updates()
    }

    /// True once the bot confirmed (or dropped) the update; false while pending or if it was
    /// discarded by `allowed_updates`.
    pub fn is_confirmed(&self, update_id: i64) -> bool {
        self.lock().is_confirmed(update_id)
    }

    /// Updates discarded because the bot's `allowed_updates` excluded their kind.
    pub fn discarded_updates(&self) -> Vec<i64> {
        self.lock().discarded_updates()
    }

    /// A pushed update as it was queued.
    pub fn update(&self, update_id: i64) -> Option<Value> {
        self.lock().update(update_id)
    }

    /// Queues a raw update; `update_id` is assigned (any given one is replaced). Chats and
    /// messages in it become known to the fake. Returns the update_id.
    pub fn push_update(&self, update: Value) -> i64 {
        let id = self.lock().push_update(update);
        self.notify();
        id
    }

    // ----- faults ----------------------------------------------------------------------------

    /// Replaces the fault configuration (re-seeds the PRNG, resets the forced 429 counter and
    /// the rate-limit windows).
    pub fn set_faults(&self, faults: Faults) {
        self.lock().set_faults(faults);
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults().clone()
    }

    /// The next `calls` calls in the fault scope get 429 with `retry_after` seconds.
    pub fn force_429(&self, calls: u32, retry_after: u32) {
        self.lock().force_429(calls, retry_after);
    }

    /// Calls with this chat_id get 403 from now on.
    pub fn block_chat(&self, chat_id: i64) {
        let mut faults = self.faults();
        if !faults.blocked_chats.contains(&chat_id) {
            faults.blocked_chats.push(chat_id);
        }
        self.update_faults(faults);
    }

    pub fn unblock_chat(&self, chat_id: i64) {
        let mut faults = self.faults();
        faults.blocked_chats.retain(|&id| id != chat_id);
        self.update_faults(faults);
    }

    /// Switches Telegram's flood limits on (`Some`) or off; the windows start empty.
    pub fn set_rate_limits(&self, limits: Option<RateLimits>) {
        self.lock().set_rate_limits(limits);
    }

    /// Changes the configuration without resetting the PRNG or the forced 429 counter.
    fn update_faults(&self, faults: Faults) {
        self.lock().set_faults_keep_progress(faults);
    }

    pub fn fault_stats(&self) -> FaultStats {
        self.lock().stats()
    }

    /// Number of 429 answers so far (forced and rate limits).
    pub fn too_many_requests_count(&self) -> u64 {
        self.lock().stats().too_many_requests
    }

    // ----- waiting ---------------------------------------------------------------------------

    /// Waits until `f` holds; on timeout panics with `what` and the recent calls.
    pub async fn wait_until<F: Fn(&FakeBotApi) -> bool>(&self, what: &str, timeout: Duration, f: F) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.activity.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if f(self) {
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                panic!("{}", self.timeout_report(what, timeout));
            }
            let nap = (deadline - now).min(Duration::from_millis(50));
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    fn timeout_report(&self, what: &str, timeout: Duration) -> String {
        let total = self.lock().calls().len();
        format!(
            "fake Bot API: timed out after {timeout:?} waiting for: {what}\n\
             pending updates: {}, fault stats: {:?}\n\
             last calls (of {total}):\n{}",
            self.pending_updates(),
            self.fault_stats(),
            self.dump_calls(30)
        )
    }

    /// Waits until the bot has at least `count` (not deleted) messages in the chat.
    pub async fn wait_for_messages(&self, chat_id: i64, count: usize, timeout: Duration) -> Vec<BotMessage> {
        let what = format!("{count} bot message(s) in chat {chat_id}");
        self.wait_until(&what, timeout, |api| api.messages(chat_id).len() >= count).await;
        self.messages(chat_id)
    }

    /// Waits until the bot confirmed the update (its next getUpdates offset is past it).
    pub async fn wait_confirmed(&self, update_id: i64, timeout: Duration) {
        let what = format!("update {update_id} confirmed by the bot");
        self.wait_until(&what, timeout, |api| api.is_confirmed(update_id)).await;
    }

    /// Waits for the first call of `method` after the first `already_seen` ones; returns it.
    pub async fn wait_for_call(&self, method: &str, already_seen: usize, timeout: Duration) -> Call {
        let what = format!("call #{} of {method}", already_seen + 1);
        self.wait_until(&what, timeout, |api| api.calls_to(method).len() > already_seen).await;
        self.calls_to(method).swap_remove(already_seen)
    }

    /// Waits until the bot has called getUpdates (answered or still long-polling).
    pub async fn wait_polling(&self, timeout: Duration) {
        self.wait_until("the bot calling getUpdates", timeout, |api| {
            !api.calls_to("getUpdates").is_empty() || api.lock().polls_started() > 0
        })
        .await;
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        tokio::spawn(serve_connection(Arc::clone(&inner), stream, stop.clone()));
    }
}

async fn serve_connection(inner: Arc<Inner>, mut stream: TcpStream, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let request = tokio::select! {
            request = http::read_request(&mut stream, &mut buf) => request,
            _ = stopped(&mut stop) => return,
        };
        let request = match request {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(_) => {
                let body = br#"{"ok":false,"error_code":400,"description":"Bad Request: malformed HTTP request"}"#;
                let _ = http::write_response(&mut stream, 400, body, false).await;
                return;
            }
        };
        let keep_alive = request.keep_alive();
        let answer = tokio::select! {
            answer = inner.answer(request, &mut stream, &mut buf) => answer,
            _ = stopped(&mut stop) => return,
        };
        match answer {
            Answer::Respond(status, body) => {
                if http::write_response(&mut stream, status, &body, keep_alive).await.is_err() || !keep_alive {
                    return;
                }
            }
            Answer::Close => return,
        }
    }
}

impl Inner {
    async fn answer(self: &Arc<Self>, request: Request, stream: &mut TcpStream, buf: &mut Vec<u8>) -> Answer {
        let segments: Vec<String> = request.path.split('/').filter(|s| !s.is_empty()).map(|s| http::percent_decode(s, false)).collect();
        let (token, method_name) = match segments.as_slice() {
            [bot, method] if bot.starts_with("bot") => (bot[3..].to_owned(), method.clone()),
            _ => {
                let name = segments.last().cloned().unwrap_or_default();
                return self.finish(name, Map::new(), Vec::new(), Err(Failure::new(404, "Not Found")));
            }
        };
        if token != self.token {
            return self.finish(method_name, Map::new(), Vec::new(), Err(Failure::new(401, "Unauthorized")));
        }
        let Some(method) = spec().method(&method_name) else {
            return self.finish(method_name, Map::new(), Vec::new(), Err(Failure::new(404, "Not Found")));
        };
        let name = method.name.clone();
        let (mut params, files) = match parse_params(&request, method) {
            Ok(parsed) => parsed,
            Err(description) => {
                return self.finish(name, Map::new(), Vec::new(), Err(Failure::new(400, description)));
            }
        };
        if let Err(description) = method.validate(&mut params) {
            return self.finish(name, params, files, Err(Failure::new(400, description)));
        }
        if name == "getUpdates" {
            return self.get_updates(params, stream, buf).await;
        }
        let delay = self.lock().slow_delay(&name);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let result = self.lock().handle(&name, &params, &files);
        self.finish(name, params, files, result)
    }

    /// Long polling: answers as soon as updates are pending, else after `timeout` with `[]`.
    async fn get_updates(self: &Arc<Self>, params: Map<String, Value>, stream: &mut TcpStream, buf: &mut Vec<u8>) -> Answer {
        let name = "getUpdates".to_owned();
        let ticket = self.lock().begin_get_updates(&params);
        let ticket = match ticket {
            Ok(ticket) => ticket,
            Err(failure) => return self.finish(name, params, Vec::new(), Err(failure)),
        };
        // An older poll still waiting must now answer 409.
        self.activity.notify_waiters();
        let deadline = tokio::time::Instant::now() + ticket.timeout;
        loop {
            let notified = self.activity.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Bind first: a guard in the match scrutinee would live through `finish`.
            let polled = self.lock().poll_updates(&ticket);
            match polled {
                Err(failure) => return self.finish(name, params, Vec::new(), Err(failure)),
                Ok(Some(updates)) => return self.finish(name, params, Vec::new(), Ok(updates)),
                Ok(None) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return self.finish(name, params, Vec::new(), Ok(json!([])));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
                read = http::read_more(stream, buf) => {
                    if !matches!(read, Ok(n) if n > 0) {
                        // The client went away during the long poll.
                        self.lock().record_call(name, Value::Object(params), Vec::new(), 499, Value::Null);
                        self.activity.notify_waiters();
                        return Answer::Close;
                    }
                }
            }
        }
    }

    /// Records the call and turns the outcome into Telegram's answer.
    fn finish(&self, method: String, params: Map<String, Value>, files: Vec<UploadedFile>, result: Result<Value, Failure>) -> Answer {
        let (status, response) = match result {
            Ok(result) => (200, json!({"ok": true, "result": result})),
            Err(Failure::Api { code, description, retry_after }) => {
                let mut body = json!({"ok": false, "error_code": code, "description": description});
                if let Some(retry_after) = retry_after {
                    body["parameters"] = json!({"retry_after": retry_after});
                }
                (code, body)
            }
            Err(Failure::Drop) => (0, Value::Null),
        };
        {
            let mut state = self.lock();
            state.record_call(method, Value::Object(params), files, status, response.clone());
        }
        self.activity.notify_waiters();
        if status == 0 { Answer::Close } else { Answer::Respond(status, serde_json::to_vec(&response).expect("JSON")) }
    }
}

/// Collects the parameters from the query string and the body (JSON, multipart or
/// urlencoded); form values are converted to JSON by the parameter's documented types.
fn parse_params(request: &Request, method: &MethodSpec) -> Result<(Map<String, Value>, Vec<UploadedFile>), String> {
    let spec = spec();
    let mut params = Map::new();
    let mut files = Vec::new();
    let add_form = |params: &mut Map<String, Value>, key: String, value: String| {
        let value = spec.coerce_form_value(method.field(&key), &value);
        params.insert(key, value);
    };
    for (key, value) in http::parse_urlencoded(&request.query) {
        add_form(&mut params, key, value);
    }
    if request.body.is_empty() {
        return Ok((params, files));
    }
    let content_type = request.header("content-type").unwrap_or_default();
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(object)) => params.extend(object),
            Ok(_) => return Err("Bad Request: the JSON body must be an object".to_owned()),
            Err(e) => return Err(format!("Bad Request: can't parse JSON body: {e}")),
        }
    } else if lower.starts_with("multipart/form-data") {
        let (fields, uploaded) = http::parse_multipart(content_type, &request.body).map_err(|e| format!("Bad Request: {e}"))?;
        for (key, value) in fields {
            add_form(&mut params, key, value);
        }
        for file in uploaded {
            let reference = format!("attach://{}", file.part);
            let referenced = params.values().any(|v| match v {
                Value::String(s) => s == &reference,
                other => other.to_string().contains(&reference),
            });
            if !referenced {
                if method.field(&file.part).is_none() {
                    return Err(format!("Bad Request: unknown parameter {}", file.part));
                }
                params.insert(file.part.clone(), Value::String(reference));
            }
            files.push(file);
        }
    } else if lower.starts_with("application/x-www-form-urlencoded") {
        let body = String::from_utf8_lossy(&request.body).into_owned();
        for (key, value) in http::parse_urlencoded(&body) {
            add_form(&mut params, key, value);
        }
    } else {
        return Err(format!("Bad Request: unsupported Content-Type \"{content_type}\""));
    }
    Ok((params, files))
}
