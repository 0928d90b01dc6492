//! Programme calls on Telegram: drafts from the agency flow, send and cancel, and the broadcast sender.
//!
//! The sender drains the `deliveries` table of each sending broadcast:
//! - at most `BROADCAST_RATE` messages a second (a token bucket) and one a second to a chat;
//! - interactive replies first: while the outbox has a reply due, the sender waits;
//! - 429 pauses all sending for `retry_after`; 403 marks the user inactive and unsubscribed;
//!   network errors and 5xx are retried with backoff, up to [`MAX_ATTEMPTS`], then counted failed;
//! - a delivery is marked sent after Telegram accepted it, so after a crash at most the messages in
//!   flight ([`CONCURRENCY`]) can go out twice; everything else resumes where it stopped;
//! - each recipient gets the call in their language where the agency wrote one.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::act;
use crate::broadcast::{self, Call, Pacer};
use crate::content::Content;
use crate::engine::{Reply, Timestamp};
use crate::store::{Delivered, Outgoing};

use super::inbound::Turn;
use super::sender::{Failure, classify, execute, pause_sending, send_backoff};
use super::{CHANNEL, Out, Shared, now, now_ms};
use super::{limits, notify, render};

/// Broadcast messages in flight at once; also the most that a crash can send twice.
pub const CONCURRENCY: usize = 8;
/// Attempts before a delivery counts as failed.
pub const MAX_ATTEMPTS: i64 = 5;
/// How often the agency's progress message is updated.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Savers of a call are reminded this many days before its deadline.
const REMIND_DAYS: i64 = 3;

fn queue(reply: &Reply, chat: i64, report_of: Option<i64>) -> Vec<Outgoing> {
    let parts: Vec<render::Message> = render::render(reply).into_iter().filter(|m| !m.text.is_empty()).collect();
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, message)| {
            let class = Some(limits::Class::Reminder);
            Out::Send { chat_id: chat, message, reply_to: None, post_of: None, report_of: report_of.filter(|_| i + 1 == n), class }
                .queue(chat)
        })
        .collect()
}

/// The agency finished the guided flow: the act layer checks the role again, makes a draft and
/// returns the preview.
pub(super) fn draft(shared: &Shared, content: &Content, lang: &str, turn: &Turn, answers: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let ctx = shared.ctx(content);
    let outcome = act::broadcast::draft_from_answers(&ctx, &super::staff::actor(shared, turn, lang)?, answers)?;
    let rows = notify::outgoing(&shared.store(), Some(turn.chat_id), &outcome.notices)?;
    shared.store().queue(&rows, ctx.now)?;
    Ok(())
}

/// Starts the broadcasts whose time has come: the recipients are fixed at that moment.
/// Calls `f` with the subscribers a page at a time; the store is locked only while a page is read.
/// `pause` after each page lets turns waiting for the store go first.
fn each_subscriber_page(
    shared: &Shared,
    pause: Duration,
    mut f: impl FnMut(Vec<crate::broadcast::Subscriber>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    const PAGE: usize = 2_000;
    let mut after = 0;
    loop {
        let (page, last) = shared.store().subscribers_page(CHANNEL, after, PAGE)?;
        f(page)?;
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        match last {
            Some(last) => after = last,
            None => return Ok(()),
        }
    }
}

fn start_due(shared: &Shared, content: &Content) -> anyhow::Result<()> {
    let due = shared.store().due_broadcasts(now())?;
    for row in due {
        let Ok(call) = serde_json::from_str::<Call>(&row.call) else {
            tracing::error!(broadcast = row.id, "a stored call does not parse; cancelled");
            shared.store().cancel_broadcast(row.id, now())?;
            continue;
        };
        let mut recipients = 0;
        each_subscriber_page(shared, Duration::from_millis(2), |page| {
            let batch: Vec<_> = page.into_iter().filter(|s| call.reaches(content, s)).collect();
            recipients += batch.len();
            shared.store().add_recipients(row.id, &batch)?;
            Ok(())
        })?;
        if shared.store().start_broadcast(row.id, now())? {
            tracing::info!(broadcast = row.id, recipients, "broadcast started");
            // From now on free questions find the call too, until its deadline.
            shared.refresh_calls();
            if let Some(chat) = row.report_chat {
                let counts = shared.store().broadcast_counts(row.id)?;
                let lang = crate::content::DEFAULT_LANG;
                let reply = broadcast::progress(content, lang, row.id, "sending", &counts, shared.config.app.broadcast_rate, now());
                shared.store().queue(&queue(&reply, chat, Some(row.id)), now())?;
            }
        }
    }
    Ok(())
}

/// Reminds those who saved a call, a few days before its deadline.
fn remind(shared: &Shared, content: &Content) -> anyhow::Result<()> {
    let today = broadcast::day_of(now());
    let by = broadcast::day_of(now() + REMIND_DAYS * 86_400);
    let due = shared.store().due_reminders(&by)?;
    for r in due {
        let Ok(call) = serde_json::from_str::<Call>(&r.call) else { continue };
        if call.open_on(&today) {
            let params = [("title", call.text(&r.lang).title.as_str()), ("deadline", call.deadline.as_str())];
            let reply = crate::desk::say(content, &r.lang, "call_reminder", &params);
            shared.store().queue(&queue(&reply, r.chat_id, None), now())?;
        }
        shared.store().mark_reminded(r.broadcast_id, r.user_id, now())?;
    }
    Ok(())
}

/// Updates the agency's progress message (or writes the final report).
fn report(shared: &Shared, content: &Content, id: i64) -> anyhow::Result<()> {
    let Some(row) = shared.store().broadcast(id)? else { return Ok(()) };
    let (Some(chat), Some(message_id)) = (row.report_chat, row.report_message) else { return Ok(()) };
    let counts = shared.store().broadcast_counts(id)?;
    let reply =
        broadcast::progress(content, crate::content::DEFAULT_LANG, id, row.status.name(), &counts, shared.config.app.broadcast_rate, now());
    if let Some(message) = render::render(&reply).into_iter().next() {
        let edit = Out::Edit { chat_id: chat, message_id: message_id as i32, message };
        shared.store().queue(&[edit.queue(chat)], now())?;
        shared.wake_sender.notify_one();
    }
    Ok(())
}

/// Sends one delivery; returns what happened.
async fn deliver(shared: &Shared, content: &Content, call: &Call, id: i64, chat: i64, lang: &str, attempts: i64) -> Delivered {
    let reply = broadcast::message(content, call, lang, id);
    let parts = render::render(&reply);
    let mut result = Ok(None);
    for message in parts {
        result = execute(shared, &Out::send(chat, message), limits::Class::Broadcast).await;
        if let Err(e) = &result {
            if classify(e) == Failure::Retry {
                shared.gate.give_back(chat, limits::Class::Broadcast);
            }
            break;
        }
    }
    match result {
        Ok(_) => Delivered::Sent,
        Err(e) => match classify(&e) {
            Failure::Done => Delivered::Sent,
            Failure::Blocked => Delivered::Blocked,
            Failure::RetryAfter(seconds) => Delivered::Retry { not_before_ms: pause_sending(shared, chat, seconds) },
            Failure::Retry if attempts + 1 < MAX_ATTEMPTS => {
                Delivered::Retry { not_before_ms: now_ms() + send_backoff(attempts + 1, chat).as_millis() as i64 }
            }
            Failure::Retry | Failure::Permanent | Failure::EditToSend => {
                tracing::warn!(broadcast = id, chat, error = %shared.redactor.clean(&e.to_string()), "a broadcast message failed");
                Delivered::Failed
            }
        },
    }
}

/// Drains sending broadcasts within Telegram's limits until `stop`.
pub(super) async fn sender(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut pacer = Pacer::new(shared.config.app.broadcast_rate, crate::clock::instant());
    let mut last_to_chat: HashMap<i64, Instant> = HashMap::new();
    let mut in_flight: HashSet<(i64, i64)> = HashSet::new();
    let mut tasks: JoinSet<(i64, i64, Delivered)> = JoinSet::new();
    let mut last_housekeeping: Timestamp = 0;
    let mut last_progress: HashMap<i64, Instant> = HashMap::new();
    // Deliveries read from the store for the broadcast being sent, and its call.
    let mut queue: VecDeque<crate::store::Delivery> = VecDeque::new();
    let mut queue_of: Option<(i64, Arc<Call>)> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        shared.health.broadcast_beat();
        let content = shared.content();
        if now() - last_housekeeping >= 5 {
            if last_housekeeping / 3600 != now() / 3600 || shared.base_changed() {
                // Calls whose deadline passed stop being served as knowledge; content the web desk
                // swapped in (an example staff attached) is served.
                shared.refresh_calls();
            }
            last_housekeeping = now();
            // Listing a large audience takes a while: off the async threads, so replies go on.
            let (s, c) = (shared.clone(), content.clone());
            let done = tokio::task::spawn_blocking(move || start_due(&s, &c).and_then(|()| remind(&s, &c))).await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "broadcast housekeeping failed"),
                Err(e) => tracing::error!(error = %e, "broadcast housekeeping stopped"),
            }
        }
        // Record what finished.
        while let Some(Ok((id, user, outcome))) = tasks.try_join_next() {
            in_flight.remove(&(id, user));
            if let Err(e) = shared.store().delivered(id, user, outcome, now()) {
                tracing::error!(error = %e, "cannot record a delivery");
            }
        }
        let sending = shared.store().sending_broadcasts().unwrap_or_default();
        let mut wait = Duration::from_millis(if sending.is_empty() { 500 } else { 20 });
        for row in sending.iter() {
            let due_progress = last_progress.get(&row.id).is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
            if due_progress {
                last_progress.insert(row.id, crate::clock::instant());
                let _ = report(&shared, &content, row.id);
            }
            if !in_flight.iter().any(|(b, _)| *b == row.id) && shared.store().finish_broadcast(row.id, now()).unwrap_or(false) {
                tracing::info!(broadcast = row.id, "broadcast finished");
                let _ = report(&shared, &content, row.id);
                continue;
            }
        }
        let paused = shared.gate.paused_until().is_some();
        // Interactive replies go first: wait while one is due.
        let interactive_due = !sending.is_empty() && shared.store().outbox_due(now_ms()).unwrap_or(0) > 0;
        if let Some(row) = sending.first().filter(|_| !paused && !interactive_due) {
            if queue_of.as_ref().is_none_or(|(id, _)| *id != row.id) {
                let Ok(call) = serde_json::from_str::<Call>(&row.call) else {
                    let _ = shared.store().cancel_broadcast(row.id, now());
                    continue;
                };
                queue.clear();
                queue_of = Some((row.id, Arc::new(call)));
            }
            let call = queue_of.as_ref().map(|(_, c)| c.clone()).expect("set above");
            if queue.is_empty() {
                // Rows in flight stay out of the queue: they may be recorded as sent any moment.
                let batch = shared.store().pending_deliveries(row.id, now_ms(), 512).unwrap_or_default();
                queue.extend(batch.into_iter().filter(|d| !in_flight.contains(&(row.id, d.user_id))));
            }
            while tasks.len() < CONCURRENCY {
                let Some(d) = queue.front() else { break };
                // One message a second to a chat: a later refill brings it back.
                if let Some(last) = last_to_chat.get(&d.chat_id)
                    && last.elapsed() < Duration::from_secs(1)
                {
                    queue.pop_front();
                    continue;
                }
                if let Err(w) = pacer.take(crate::clock::instant()) {
                    wait = wait.min(w);
                    break;
                }
                let d = queue.pop_front().expect("front exists");
                last_to_chat.insert(d.chat_id, crate::clock::instant());
                in_flight.insert((row.id, d.user_id));
                let (shared, content, call, id) = (shared.clone(), content.clone(), call.clone(), row.id);
                tasks.spawn(async move {
                    let outcome = deliver(&shared, &content, &call, id, d.chat_id, &d.lang, d.attempts).await;
                    (id, d.user_id, outcome)
                });
            }
            if last_to_chat.len() > 100_000 {
                last_to_chat.retain(|_, t| t.elapsed() < Duration::from_secs(2));
            }
        } else if interactive_due {
            wait = Duration::from_millis(5);
        }
        tokio::select! {
            _ = stop.changed() => break,
            Some(Ok((id, user, outcome))) = tasks.join_next(), if !tasks.is_empty() => {
                in_flight.remove(&(id, user));
                if let Err(e) = shared.store().delivered(id, user, outcome, now()) {
                    tracing::error!(error = %e, "cannot record a delivery");
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
    // Record what is in flight, so it is not sent again after a restart.
    while let Some(Ok((id, user, outcome))) = tasks.join_next().await {
        let _ = shared.store().delivered(id, user, outcome, now());
    }
}
