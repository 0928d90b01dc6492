//! The staff desk on Telegram: role checks on every command and button, handoff posts in the staff
//! group, replies relayed between advisors and users, and the review commands.
//!
//! The decisions (parsing, required roles, texts) live in [`crate::desk`]; this file runs them
//! against the store and queues the resulting messages in the outbox.

use crate::content::{Content, ExtraExample};
use crate::desk::{self, Parsed, Request, Role, Roles};
use crate::engine::{Effect, Input, InquiryKind};
use crate::store::{InquiryFilter, Outgoing, TurnRecord};

use super::inbound::Turn;
use super::render::{self, Message};
use super::{CHANNEL, Out, Shared, now};

/// Most inquiries a report or export covers.
const MAX_ROWS: usize = 100_000;

impl Out {
    /// The chat whose queue this operation belongs to.
    fn chat(&self, default: i64) -> i64 {
        match self {
            Out::Send { chat_id, .. } | Out::Edit { chat_id, .. } | Out::Document { chat_id, .. } => *chat_id,
            Out::AnswerCallback { .. } => default,
        }
    }
}

pub(super) fn roles_of(shared: &Shared, user_id: u64) -> anyhow::Result<Roles> {
    let admin = shared.config.app.admin_ids.iter().any(|a| *a as u64 == user_id);
    let names = shared.store().roles_of(CHANNEL, &user_id.to_string())?;
    Ok(Roles::from_names(&names, admin))
}

/// Messages for a reply, ready to queue.
fn messages(reply: &crate::engine::Reply) -> Vec<Message> {
    render::render(reply).into_iter().filter(|m| !m.text.is_empty()).collect()
}

/// Where an update goes after the desk looked at it.
pub(super) enum Route {
    /// The desk handled it.
    Done,
    /// A conversation turn, with this input (an authorised command becomes `Input::Authorized`).
    Engine(Input),
}

/// Handles the update if it belongs to the desk; otherwise says what the engine should get.
pub(super) async fn handle(shared: &Shared, update_id: i64, turn: &Turn) -> anyhow::Result<Route> {
    let content = shared.content();
    let lang = content.language_for(turn.lang.as_deref());
    let at = now();
    let mut ops: Vec<Out> = Vec::new();
    let mut route = Route::Engine(turn.input.clone());
    let handled = match &turn.input {
        Input::Command { name, args } => match desk::parse_command(name, args, at) {
            // A content command behind a role (such as /broadcast) opens its flow for those who hold it.
            None => match content.commands.get(name.as_str()).and_then(|c| c.role.clone()) {
                Some(role) => {
                    let needed = if role == "agency" {
                        Role::Agency
                    } else if role == "admin" {
                        Role::Admin
                    } else {
                        Role::Staff
                    };
                    if roles_of(shared, turn.user_id)?.allows(needed) {
                        route = Route::Engine(Input::Authorized { name: name.clone() });
                        false
                    } else {
                        say(&content, &lang, turn.chat_id, "desk_forbidden", &[], &mut ops);
                        true
                    }
                }
                None => false,
            },
            Some(parsed) => {
                let roles = roles_of(shared, turn.user_id)?;
                match parsed {
                    Parsed::Request(request) => run(shared, &content, &lang, turn, roles, request, &mut ops)?,
                    Parsed::Usage(role, key) => {
                        let key = if roles.allows(role) { key } else { "desk_forbidden" };
                        say(&content, &lang, turn.chat_id, key, &[], &mut ops);
                    }
                }
                true
            }
        },
        Input::Button(data) if data.starts_with("k:") => {
            if let Some(callback) = &turn.callback {
                ops.push(Out::AnswerCallback { id: callback.id.clone() });
            }
            let roles = roles_of(shared, turn.user_id)?;
            match desk::parse_button(data) {
                Some(request) => run(shared, &content, &lang, turn, roles, request, &mut ops)?,
                None => say(
                    &content,
                    &lang,
                    turn.chat_id,
                    if roles.allows(Role::Staff) { "menu_changed" } else { "desk_forbidden" },
                    &[],
                    &mut ops,
                ),
            }
            true
        }
        Input::Text(text) => relay(shared, &content, &lang, turn, text, &mut ops)?,
        _ => false,
    };
    if handled {
        let outgoing: Vec<Outgoing> = ops.iter().map(|op| op.queue(op.chat(turn.chat_id))).collect();
        shared.store().finish_update(update_id, &outgoing, at)?;
        tracing::info!(update_id, chat = turn.chat_id, "desk update handled");
        route = Route::Done;
    }
    Ok(route)
}

fn say(content: &Content, lang: &str, chat_id: i64, key: &str, params: &[(&str, &str)], ops: &mut Vec<Out>) {
    for message in messages(&desk::say(content, lang, key, params)) {
        ops.push(Out::send(chat_id, message));
    }
}

fn reply(chat_id: i64, reply: &crate::engine::Reply, ops: &mut Vec<Out>) {
    for message in messages(reply) {
        ops.push(Out::send(chat_id, message));
    }
}

/// Replies between an advisor (replying to a handoff post in the staff group) and the user.
fn relay(shared: &Shared, content: &Content, lang: &str, turn: &Turn, text: &str, ops: &mut Vec<Out>) -> anyhow::Result<bool> {
    let at = now();
    // An advisor's reply to a handoff post goes to the user.
    if Some(turn.chat_id) == shared.config.app.staff_chat_id
        && let Some(reply_to) = turn.reply_to
    {
        let Some(inquiry_id) = shared.store().inquiry_of_post(turn.chat_id, i64::from(reply_to))? else { return Ok(false) };
        if !roles_of(shared, turn.user_id)?.allows(Role::Staff) {
            say(content, lang, turn.chat_id, "desk_forbidden", &[], ops);
            return Ok(true);
        }
        let store = shared.store();
        let row = store.inquiry(inquiry_id)?;
        let user_chat = match row.as_ref().and_then(|r| r.user) {
            Some(user) => store.external_of(user)?.and_then(|(_, ext)| ext.parse::<i64>().ok()),
            None => None,
        };
        drop(store);
        let Some(user_chat) = user_chat else {
            say(content, lang, turn.chat_id, "desk_not_found", &[("id", &inquiry_id.to_string())], ops);
            return Ok(true);
        };
        let user_lang = row.map_or_else(|| lang.to_string(), |r| r.lang);
        say(content, &user_lang, user_chat, "desk_staff_reply", &[("text", text)], ops);
        shared.store().inquiry_event(inquiry_id, &actor(turn), "staff_reply", text, Some("answered_by_staff"), at)?;
        return Ok(true);
    }
    // A user talking with an advisor: their messages go to the thread until it is resolved.
    if !turn.private {
        return Ok(false);
    }
    if shared.config.app.staff_chat_id.is_none() {
        return Ok(false);
    }
    let mut store = shared.store();
    let user = store.user_id(CHANNEL, &turn.user_id.to_string(), at)?;
    let Some(inquiry_id) = store.open_thread(user)? else { return Ok(false) };
    let Some((chat, message_id)) = store.post_of_inquiry(inquiry_id)? else { return Ok(false) };
    store.inquiry_event(inquiry_id, &format!("user {}", user.0), "user_reply", text, None, at)?;
    drop(store);
    let staff_lang = crate::content::DEFAULT_LANG;
    for message in messages(&desk::say(content, staff_lang, "desk_user_reply", &[("user", &user.0.to_string()), ("text", text)])) {
        ops.push(Out::Send { chat_id: chat, message, reply_to: Some(message_id as i32), post_of: None, report_of: None, class: None });
    }
    say(content, lang, turn.chat_id, "desk_relayed", &[], ops);
    Ok(true)
}

fn actor(turn: &Turn) -> String {
    format!("staff {}", turn.user_id)
}

/// Runs one desk request after checking the role.
fn run(
    shared: &Shared,
    content: &Content,
    lang: &str,
    turn: &Turn,
    roles: Roles,
    request: Request,
    ops: &mut Vec<Out>,
) -> anyhow::Result<()> {
    let chat = turn.chat_id;
    if !roles.allows(request.role()) {
        say(content, lang, chat, "desk_forbidden", &[], ops);
        return Ok(());
    }
    let at = now();
    let not_found = |id: i64, ops: &mut Vec<Out>| say(content, lang, chat, "desk_not_found", &[("id", &id.to_string())], ops);
    match request {
        Request::Inbox { page } => {
            let rows = shared.store().query_inquiries(&InquiryFilter { open: true, ..InquiryFilter::default() }, MAX_ROWS)?;
            reply(chat, &desk::inbox(content, lang, &rows, page), ops);
        }
        Request::Show { id } => {
            let store = shared.store();
            match store.inquiry(id)? {
                Some(row) => {
                    let events = store.events(id)?;
                    drop(store);
                    reply(chat, &desk::inquiry(content, lang, &row, &events), ops);
                }
                None => not_found(id, ops),
            }
        }
        Request::Take { id } => {
            if shared.store().inquiry_event(id, &actor(turn), "taken", "", None, at)? {
                say(content, lang, chat, "desk_taken", &[("id", &id.to_string()), ("by", &turn.user_id.to_string())], ops);
            } else {
                not_found(id, ops);
            }
        }
        Request::Resolve { id } => {
            let row = shared.store().inquiry(id)?;
            let Some(row) = row else {
                not_found(id, ops);
                return Ok(());
            };
            shared.store().inquiry_event(id, &actor(turn), "resolved", "", Some("resolved"), at)?;
            say(content, lang, chat, "desk_resolved", &[("id", &id.to_string())], ops);
            if row.kind == "handoff" && row.status != "resolved" {
                let user_chat =
                    row.user.and_then(|u| shared.store().external_of(u).ok().flatten()).and_then(|(_, ext)| ext.parse::<i64>().ok());
                if let Some(user_chat) = user_chat {
                    say(content, &row.lang, user_chat, "desk_user_resolved", &[], ops);
                }
            }
        }
        Request::Stats { period } => {
            let rows = shared
                .store()
                .query_inquiries(&InquiryFilter { since: period.since, until: period.until, ..InquiryFilter::default() }, MAX_ROWS)?;
            reply(chat, &desk::stats(content, lang, &period, &desk::Stats::of(&rows)), ops);
            let quarantined = if roles.admin { shared.store().quarantined_count()? } else { 0 };
            if quarantined > 0 {
                say(content, lang, chat, "desk_quarantine", &[("count", &quarantined.to_string())], ops);
            }
        }
        Request::Export { period } => {
            let rows = shared
                .store()
                .query_inquiries(&InquiryFilter { since: period.since, until: period.until, ..InquiryFilter::default() }, MAX_ROWS)?;
            if rows.is_empty() {
                say(content, lang, chat, "desk_export_empty", &[], ops);
            } else {
                let label: String = period.label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
                ops.push(Out::Document {
                    chat_id: chat,
                    file_name: format!("inquiries-{label}.csv"),
                    caption: content.message("desk_export_caption", lang, &[("count", &rows.len().to_string())]),
                    content: desk::to_csv(&rows),
                });
            }
        }
        Request::Learn { inquiry, entry } => learn(shared, content, lang, turn, inquiry, &entry, ops)?,
        Request::Grant { user, role } => {
            let changed = shared.store().grant(CHANNEL, &user, role.name(), &turn.user_id.to_string(), at)?;
            let key = if changed { "desk_granted" } else { "desk_unchanged" };
            say(content, lang, chat, key, &[("user", &user), ("role", role.name())], ops);
        }
        Request::Revoke { user, role } => {
            let changed = shared.store().revoke(CHANNEL, &user, role.name())?;
            let key = if changed { "desk_revoked" } else { "desk_unchanged" };
            say(content, lang, chat, key, &[("user", &user), ("role", role.name())], ops);
        }
        Request::BroadcastSend { id, delay_hours } => super::broadcast::send(shared, content, lang, chat, id, delay_hours, ops)?,
        Request::BroadcastCancel { id } => super::broadcast::cancel(shared, content, lang, chat, id, ops)?,
        Request::Reload => {
            let extras: Vec<ExtraExample> = shared
                .store()
                .learned_examples()?
                .into_iter()
                .map(|l| ExtraExample { id: l.id, entry_id: l.entry_id, lang: l.lang, text: l.text })
                .collect();
            match crate::content::load_dirs_with(&shared.config.app.dialogs_dir, &shared.config.app.knowledge_dir, &extras) {
                Ok(new_content) => {
                    let entries = new_content.entries.len().to_string();
                    shared.set_content(new_content);
                    say(content, lang, chat, "desk_reloaded", &[("entries", &entries)], ops);
                }
                Err(diags) => {
                    let first: Vec<String> = diags.iter().take(5).map(ToString::to_string).collect();
                    say(
                        content,
                        lang,
                        chat,
                        "desk_reload_failed",
                        &[("count", &diags.len().to_string()), ("problems", &first.join("\n"))],
                        ops,
                    );
                }
            }
        }
        Request::Roles => {
            let grants = shared.store().role_grants(CHANNEL)?;
            reply(chat, &desk::roles(content, lang, &shared.config.app.admin_ids, &grants), ops);
        }
    }
    Ok(())
}

/// Attaches an inquiry's text as an example question of an entry, if the content still checks.
fn learn(
    shared: &Shared,
    content: &Content,
    lang: &str,
    turn: &Turn,
    inquiry_id: i64,
    entry_id: &str,
    ops: &mut Vec<Out>,
) -> anyhow::Result<()> {
    let chat = turn.chat_id;
    let Some(row) = shared.store().inquiry(inquiry_id)? else {
        say(content, lang, chat, "desk_not_found", &[("id", &inquiry_id.to_string())], ops);
        return Ok(());
    };
    let text: String = row.text.chars().take(300).collect();
    let mut extras: Vec<ExtraExample> = shared
        .store()
        .learned_examples()?
        .into_iter()
        .map(|l| ExtraExample { id: l.id, entry_id: l.entry_id, lang: l.lang, text: l.text })
        .collect();
    extras.push(ExtraExample { id: 0, entry_id: entry_id.to_string(), lang: row.lang.clone(), text: text.clone() });
    match crate::content::load_dirs_with(&shared.config.app.dialogs_dir, &shared.config.app.knowledge_dir, &extras) {
        Ok(new_content) => {
            shared.store().learn(entry_id, &row.lang, &text, &turn.user_id.to_string(), now())?;
            shared.store().inquiry_event(inquiry_id, &actor(turn), "learned", entry_id, None, now())?;
            let name = new_content.entry(entry_id).map_or(entry_id.to_string(), |e| new_content.entry_text(e, lang).name.clone());
            shared.set_content(new_content);
            say(content, lang, chat, "desk_learned", &[("entry", &name), ("text", &text)], ops);
        }
        Err(diags) => {
            let problem = diags.iter().find(|d| d.loc.path.ends_with(":0")).or(diags.first()).map_or(String::new(), |d| d.message.clone());
            say(content, lang, chat, "desk_learn_refused", &[("problem", &problem)], ops);
        }
    }
    Ok(())
}

/// Posts each handoff request of a turn to the staff group, if there is one.
pub(super) fn handoff_posts(content: &Content, staff_chat: Option<i64>, record: &TurnRecord) -> Vec<Outgoing> {
    let Some(staff_chat) = staff_chat else { return Vec::new() };
    let session = &record.step.session;
    let question = record.step.effects.iter().find_map(|e| match e {
        Effect::Handoff { text } => Some(text.clone()),
        _ => None,
    });
    let mut out = Vec::new();
    for (kind, inquiry_id) in &record.inquiries {
        if *kind != InquiryKind::Handoff {
            continue;
        }
        let post = desk::handoff_post(
            content,
            *inquiry_id,
            &record.user.0.to_string(),
            &session.lang,
            &session.profile.describe(None),
            &session.recent,
            question.as_deref().unwrap_or(""),
        );
        let parts = messages(&post);
        let n = parts.len();
        for (i, message) in parts.into_iter().enumerate() {
            let post_of = (i + 1 == n).then_some(*inquiry_id);
            out.push(Out::Send { chat_id: staff_chat, message, reply_to: None, post_of, report_of: None, class: None }.queue(staff_chat));
        }
    }
    out
}
