//! Workers: one update at a time per chat, each under `catch_unwind`, retried then quarantined; the turn and its replies commit together.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use teloxide::payloads::AnswerInlineQuerySetters;
use teloxide::requests::Requester;
use teloxide::types::{InlineQueryId, Update};
use tokio::sync::{mpsc, watch};

use crate::engine::{self, Input};
use crate::store::{IncomingUpdate, Outgoing, StoreError};

use super::inbound::{self, Inbound};
use super::inline::inline_results;
use super::render::{self, Message};
use super::sender::backoff;
use super::{CHANNEL, Job, MAX_TURN_ATTEMPTS, Out, Shared, broadcast, now, staff};

pub(super) async fn worker(
    shared: Arc<Shared>,
    index: usize,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut queue = queue.lock().await;
    while let Some(job) = queue.recv().await {
        if *stop.borrow() {
            // Left for the next start: it stays pending in the database.
            break;
        }
        shared.health.worker_busy(index, true);
        run_update(&shared, job, &stop).await;
        shared.health.worker_busy(index, false);
    }
    Ok(())
}

/// Handles one update in a task of its own, so a panic is contained. A failure of the storage
/// (full or read-only disk) may pass: the update is tried again, and the chat's later updates
/// wait behind it. Any other failure is retried up to [`MAX_TURN_ATTEMPTS`] times, then the update
/// is quarantined.
pub(super) async fn run_update(shared: &Arc<Shared>, job: Job, stop: &watch::Receiver<bool>) {
    let Job { update_id, received } = job;
    let mut update: Option<Update> = received.map(|u| *u);
    let mut storage_failures = 0;
    loop {
        // The attempt is counted before the update is handled, so an update that kills the
        // process is known at the next start. An update just received is in hand, parsed; one
        // recorded earlier is read with its count, in the same statement.
        let begun = if update.is_some() {
            shared.store().begin_attempt(update_id)
        } else {
            shared.store().begin_update(update_id).map(|begun| {
                begun.map(|(attempt, record)| {
                    update = serde_json::from_str::<Update>(&record.payload).ok();
                    attempt
                })
            })
        };
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
        let Some(parsed) = update.as_ref() else {
            tracing::warn!(update_id, "a recorded update does not parse; skipped");
            let _ = shared.store().finish_update(update_id, &[], now());
            return;
        };
        if attempt > MAX_TURN_ATTEMPTS {
            // Its attempts ran out in earlier runs: the process died while handling it.
            quarantine(shared, update_id, "it failed in an earlier run".into());
            return;
        }
        let started = crate::clock::instant();
        // In place rather than in a task of its own: a panic unwinds to here, the turn's
        // transaction rolls back as it drops, and no thread hand-off is added to every update.
        let outcome = std::panic::AssertUnwindSafe(handle(shared, update_id, parsed)).catch_unwind().await;
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
pub(super) async fn pause(stop: &watch::Receiver<bool>, wait: Duration) -> bool {
    let mut stop = stop.clone();
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = stop.changed() => true,
        () = tokio::time::sleep(wait) => false,
    }
}

pub(super) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Moves an update to the quarantine and queues the apology to its chat, together.
pub(super) fn quarantine(shared: &Shared, update_id: i64, error: String) {
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
pub(super) fn apology(shared: &Shared, record: &IncomingUpdate) -> Option<Outgoing> {
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

pub(super) async fn handle(shared: &Shared, update_id: i64, update: &Update) -> anyhow::Result<()> {
    match inbound::read(update, &shared.username) {
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
pub(super) async fn test_hook(text: &str) {
    if text == "__test_panic__" {
        panic!("test hook: a forced panic");
    }
    if let Some(seconds) = text.strip_prefix("__test_stall_").and_then(|t| t.strip_suffix("__")).and_then(|t| t.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_secs(seconds.min(60))).await;
    }
}

/// What kind of input it was, for logs that carry no message text.
pub(super) fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::Text(_) => "text",
        Input::Button(_) => "button",
        Input::Command { .. } => "command",
        Input::Start { .. } => "start",
        Input::Unsupported(_) => "unsupported",
        Input::Authorized { .. } => "authorized command",
    }
}

/// The operations a turn queues: the replies, with the button press answered right after the first
/// of them; a menu the user tapped through is edited in place instead of sent again.
///
/// The answer comes second because a chat's operations go out one at a time: the reply reaches the
/// user one round trip to Telegram sooner, and the button's progress bar, which the answer stops,
/// lasts until the reply is there instead of stopping while the user still waits for it.
pub fn outgoing(turn: &inbound::Turn, step: &engine::Step) -> Vec<Outgoing> {
    let mut ops = Vec::new();
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
    if let Some(callback) = &turn.callback {
        ops.insert(ops.len().min(1), Out::AnswerCallback { id: callback.id.clone() });
    }
    ops.into_iter().map(|op| op.queue(turn.chat_id)).collect()
}
