//! Intake: long polling or a webhook records every update in the store before acknowledging it, then hands it to a worker.

use std::sync::Arc;

use anyhow::Context as _;

use serde_json::value::RawValue;
use teloxide::RequestError;
use teloxide::payloads::{GetUpdates, GetUpdatesSetters, SetWebhookSetters};
use teloxide::requests::Requester;
use teloxide::types::{AllowedUpdate, Update};
use tokio::sync::watch;

use crate::store::IncomingUpdate;

use super::sender::backoff;
use super::{Dispatch, POLL_TIMEOUT_SECS, Shared, Webhook, inbound, now};

/// One update as it arrived: the record the store keeps (its JSON exactly as Telegram sent it) and
/// the update parsed once, which the worker uses without reading or parsing it again.
pub(super) struct Received {
    pub record: IncomingUpdate,
    /// `None` when teloxide cannot read it: it is still recorded (so its id is acknowledged and it
    /// is not fetched again), and the worker skips it.
    pub update: Option<Update>,
}

/// Reads one update's JSON; `None` only when it has no `update_id` at all.
pub(super) fn receive(raw: &str) -> Option<Received> {
    #[derive(serde::Deserialize)]
    struct Id {
        update_id: i64,
    }
    let update = serde_json::from_str::<Update>(raw).ok();
    let (update_id, chat_id) = match &update {
        Some(u) => (i64::from(u.id.0), inbound::chat_of(u)),
        None => (serde_json::from_str::<Id>(raw).ok()?.update_id, 0),
    };
    Some(Received { record: IncomingUpdate { update_id, chat_id, payload: raw.to_string() }, update })
}

/// Stores updates durably, then hands the fresh ones to their workers; an error leaves them
/// unacknowledged.
fn record_and_dispatch(shared: &Shared, dispatch: &Dispatch, received: Vec<Received>) -> Result<(), crate::store::StoreError> {
    let (records, updates): (Vec<IncomingUpdate>, Vec<Option<Update>>) = received.into_iter().map(|r| (r.record, r.update)).unzip();
    let fresh = shared.store().record_updates(&records, now())?;
    shared.health.received(fresh.len());
    for (record, update) in records.into_iter().zip(updates).filter(|(r, _)| fresh.contains(&r.update_id)) {
        dispatch.send_received(Received { record, update });
    }
    Ok(())
}

pub(super) async fn poll_intake(shared: Arc<Shared>, dispatch: Dispatch, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    if let Err(e) = shared.bot.delete_webhook().await {
        tracing::warn!(error = %shared.redactor.clean(&e.to_string()), "deleteWebhook failed");
    }
    let mut offset = shared.store().last_update_id()?.map_or(0, |id| id + 1);
    let mut failures = 0u32;
    loop {
        let poll_secs = POLL_TIMEOUT_SECS.min(shared.config.api_timeout.as_secs().saturating_sub(2) as u32);
        let payload = GetUpdates::new().offset(offset as i32).timeout(poll_secs).allowed_updates(vec![
            AllowedUpdate::Message,
            AllowedUpdate::CallbackQuery,
            AllowedUpdate::InlineQuery,
        ]);
        // Each update's JSON is kept as it came: stored verbatim and parsed once (not parsed into
        // teloxide's types, written back to JSON for the store, and parsed again by the worker).
        let request = shared.poll_client.call::<_, Vec<Box<RawValue>>>("getUpdates", &payload);
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
                let received: Vec<Received> = updates.iter().filter_map(|raw| receive(raw.get())).collect();
                let max = received.iter().map(|r| r.record.update_id).max();
                let n = received.len();
                // Durable first; the next getUpdates with a higher offset acknowledges them. If they
                // cannot be written, the offset stays and Telegram delivers them again.
                // Bound first: the store's guard must not live through the sleep below.
                let recorded = record_and_dispatch(&shared, &dispatch, received);
                if let Err(e) = recorded {
                    failures += 1;
                    let wait = backoff(failures as i64);
                    tracing::error!(error = %e, updates = n, retry_in_ms = wait.as_millis() as u64, "cannot record updates; they are not acknowledged and will be fetched again");
                    tokio::select! {
                        _ = stop.changed() => return Ok(()),
                        () = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
                if let Some(max) = max {
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

pub(super) async fn webhook_intake(
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
            let Some(received) = std::str::from_utf8(&body).ok().and_then(receive) else {
                tracing::warn!("webhook received a body that is not an update");
                return StatusCode::OK;
            };
            match record_and_dispatch(&shared, &dispatch, vec![received]) {
                Ok(()) => StatusCode::OK,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_is_stored_as_it_came_and_parsed_once() {
        let raw = r#"{"update_id":9,"message":{"message_id":1,"date":1,"chat":{"id":42,"type":"private","first_name":"A"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi","some_future_field":{"x":1}}}"#;
        let received = receive(raw).expect("an update");
        assert_eq!(received.record.payload, raw, "verbatim, unknown fields included");
        assert_eq!((received.record.update_id, received.record.chat_id), (9, 42));
        assert!(received.update.is_some());
        // A kind teloxide does not know is recorded, with no chat.
        let odd = r#"{"update_id":10,"message":{"message_id":"not a number"}}"#;
        let received = receive(odd).expect("recorded anyway");
        assert_eq!((received.record.update_id, received.record.chat_id), (10, 0));
        // teloxide cannot read it at all (its ids are 32-bit), but its id is kept so it is
        // acknowledged and not fetched again; the worker skips it.
        let received = receive(r#"{"update_id":5000000000,"message":{}}"#).expect("recorded anyway");
        assert_eq!((received.record.update_id, received.update.is_none()), (5_000_000_000, true));
        assert!(receive(r#"{"message":{}}"#).is_none(), "no id, nothing to acknowledge");
        assert!(receive("[1,2]").is_none());
    }
}
