//! The outbox sender: drains queued messages within Telegram's limits, one in flight per chat, retrying what failed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use teloxide::payloads::{SendDocumentSetters, SendPhotoSetters};
use teloxide::requests::Requester;
use teloxide::types::{
    CallbackQueryId, ChatAction, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LinkPreviewOptions, MessageId, ParseMode,
    ReplyParameters,
};
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;

use crate::engine;
use crate::store::OutboxHead;

use super::limits::{Class, Scope};
use super::render::Message;
use super::{CHANNEL, MAX_ATTEMPTS, MAX_IN_FLIGHT, Out, Shared, health, now, now_ms};

pub(super) fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions { is_disabled: true, url: None, prefer_small_media: false, prefer_large_media: false, show_above_text: false }
}

/// 250 ms doubling per attempt, at most 30 s.
/// The pause before a failed send is tried again: 200 ms doubling per attempt, at most 20 s, with
/// up to half of it added or taken at random so that many retries do not arrive together.
pub(super) fn send_backoff(attempt: i64, salt: i64) -> Duration {
    let base = (200u64 << (attempt.clamp(1, 8) - 1) as u64).min(20_000);
    let nanos = crate::clock::jitter_seed();
    let mix = (nanos ^ (salt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 33;
    let jitter = mix % (base + 1);
    Duration::from_millis(base / 2 + jitter)
}

pub(super) fn backoff(attempt: i64) -> Duration {
    Duration::from_millis((250u64 << attempt.clamp(0, 7) as u64).min(30_000))
}

/// What to do after a failed call.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failure {
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

pub(super) fn classify(error: &RequestError) -> Failure {
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
pub(super) fn keyboard_button(label: &str, data: &str) -> InlineKeyboardButton {
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
pub(super) async fn execute(shared: &Shared, op: &Out, class: Class) -> Result<Option<i32>, RequestError> {
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
            shared.client.call::<_, super::client::Sent>("sendMessage", &payload).await.map(|m| Some(m.message_id))
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
        Out::Photo { chat_id, file_name, caption, png } => {
            shared.health.gate_waited(class, shared.gate.acquire(*chat_id, class).await);
            shared
                .bot
                .send_photo(ChatId(*chat_id), InputFile::memory(png.clone()).file_name(file_name.clone()))
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
            shared.client.call::<_, serde::de::IgnoredAny>("editMessageText", &payload).await.map(|_| None)
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
pub(super) const RESCAN_EVERY: Duration = Duration::from_millis(100);

/// Drains the outbox: one message in flight per chat, at most `MAX_IN_FLIGHT` overall.
pub(super) async fn sender(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut in_flight: HashSet<i64> = HashSet::new();
    // Each delivery returns the row to remove, if it is done with; rows are removed in batches.
    let mut tasks: tokio::task::JoinSet<Option<i64>> = tokio::task::JoinSet::new();
    let mut chat_of: HashMap<tokio::task::Id, i64> = HashMap::new();
    // Heads read from the outbox and not yet sent (their chat was busy or the limit reached). They
    // stay valid: only this loop sends and removes rows, and a chat's new rows queue behind its head.
    let mut backlog: std::collections::VecDeque<OutboxHead> = std::collections::VecDeque::new();
    let mut read_all = true;
    let mut last_read = crate::clock::instant();
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
            let heads = shared.store().outbox_heads(now_ms()).unwrap_or_default();
            backlog = heads.into_iter().filter(|h| !in_flight.contains(&h.chat_id)).collect();
            read_all = false;
            last_read = crate::clock::instant();
        }
        while tasks.len() < MAX_IN_FLIGHT {
            let Some(row) = backlog.pop_front() else { break };
            if in_flight.contains(&row.chat_id) {
                continue;
            }
            let Ok(Some(payload)) = shared.store().outbox_payload(row.id, now_ms()) else { continue };
            in_flight.insert(row.chat_id);
            let shared = shared.clone();
            let task = tasks.spawn(async move { deliver(&shared, row.id, row.chat_id, &payload, row.attempts).await });
            chat_of.insert(task.id(), row.chat_id);
        }
        let idle = if tasks.is_empty() { Duration::from_millis(500) } else { RESCAN_EVERY };
        tokio::select! {
            _ = stop.changed() => break,
            () = shared.wake_sender.notified() => read_all = true,
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                // Every delivery finished by now: their rows go in one transaction (one write to the
                // log, not one per message), before their chats are free again.
                let mut finished = vec![done];
                while let Some(more) = tasks.try_join_next_with_id() {
                    finished.push(more);
                }
                let mut remove = Vec::new();
                let mut freed = Vec::new();
                for done in finished {
                    let id = match done {
                        Ok((id, row)) => {
                            remove.extend(row);
                            id
                        }
                        Err(e) => e.id(),
                    };
                    freed.extend(chat_of.remove(&id));
                }
                remove_delivered(&shared, &remove);
                // Each freed chat's next message, if due, goes to the front; no full read needed.
                for chat in freed {
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
    let mut remove = Vec::new();
    while let Some(done) = tasks.join_next().await {
        remove.extend(done.ok().flatten());
    }
    remove_delivered(&shared, &remove);
}

/// Removes delivered (or given up) rows from the outbox. A row that cannot be removed is sent
/// again later, as after a crash.
fn remove_delivered(shared: &Shared, ids: &[i64]) {
    if ids.is_empty() {
        return;
    }
    if let Err(e) = shared.store().outbox_done_many(ids) {
        tracing::warn!(error = %e, rows = ids.len(), "cannot remove delivered messages from the outbox");
    }
}

/// Telegram refused a message to `chat` with 429 `retry_after`: the gate pauses that chat, or
/// everything when the refusal looks global. Returns when the chat may be written to again.
pub(super) fn pause_sending(shared: &Shared, chat: i64, seconds: u64) -> i64 {
    let until = now_ms() + seconds as i64 * 1000;
    let scope = shared.gate.refused(chat, Duration::from_secs(seconds));
    tracing::warn!(seconds, everything = scope == Scope::Everything, "Telegram asks to slow down");
    until
}

/// Sends one outbox row and records what became of it; returns the row when it is done with
/// (sent, or given up on), for the sender to remove.
pub(super) async fn deliver(shared: &Shared, id: i64, chat_id: i64, payload: &str, attempts: i64) -> Option<i64> {
    // The list of heads may be older than the last delivery to this chat: never send a row twice.
    if !shared.store().outbox_contains(id).unwrap_or(false) {
        return None;
    }
    let Ok(op) = serde_json::from_str::<Out>(payload) else {
        tracing::error!(id, "an outbox row does not parse; dropped");
        return Some(id);
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
            return None;
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
        Failure::Done => return Some(id),
        // A button's spinner is only worth stopping within seconds: do not hold the chat's queue for it.
        Failure::Retry if attempts + 1 >= MAX_ATTEMPTS || (matches!(op, Out::AnswerCallback { .. }) && attempts >= 1) => {
            tracing::warn!(chat = chat_id, error = ?error, attempts = attempts + 1, "giving up on a message");
            return Some(id);
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
                return Some(id);
            }
        }
        Failure::Permanent => {
            tracing::warn!(chat = chat_id, error = ?error, "Telegram refused a message; dropped");
            return Some(id);
        }
    }
    None
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
}
