//! Intake: long polling or a webhook records every update in the store before acknowledging it, then hands it to a worker.

use std::sync::Arc;

use anyhow::Context as _;

use teloxide::RequestError;
use teloxide::payloads::{GetUpdatesSetters, SetWebhookSetters};
use teloxide::requests::Requester;
use teloxide::types::{AllowedUpdate, Update};
use tokio::sync::watch;

use crate::store::IncomingUpdate;

use super::sender::backoff;
use super::{Dispatch, POLL_TIMEOUT_SECS, Shared, Webhook, inbound, now};

/// Serialises updates for the store, with the chat each belongs to.
pub(super) fn incoming(updates: &[Update]) -> Vec<IncomingUpdate> {
    updates
        .iter()
        .filter_map(|u| {
            let payload = serde_json::to_string(u).ok()?;
            Some(IncomingUpdate { update_id: i64::from(u.id.0), chat_id: inbound::chat_of(u), payload })
        })
        .collect()
}

pub(super) async fn poll_intake(shared: Arc<Shared>, dispatch: Dispatch, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
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
