//! The staff desk on Telegram: desk commands and buttons run through the act layer, handoff posts
//! in the staff group, and replies relayed between advisors and users.
//!
//! What each request does and who may make it lives in [`crate::desk`] (decide) and
//! [`crate::act::desk`] (act); this file reads Telegram updates into requests and queues the
//! notices that come back ([`super::notify`]).

use crate::act::{self, Actor, Outcome, To};
use crate::content::Content;
use crate::desk::{self, Role};
use crate::engine::{Effect, Input, InquiryKind};
use crate::store::{Outgoing, TurnRecord};

use super::inbound::Turn;
use super::render::{self, Message};
use super::{Out, Shared, notify};

/// The requester as the act layer sees them, with the roles they hold now.
pub(super) fn actor(shared: &Shared, turn: &Turn, lang: &str) -> anyhow::Result<Actor> {
    let actor = Actor::telegram(&shared.store(), &shared.config.app.admin_ids, &turn.user_id.to_string(), lang)?;
    Ok(Actor { chat: Some(turn.chat_id), ..actor })
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
    let ctx = shared.ctx(&content);
    let mut first: Vec<Out> = Vec::new();
    let outcome = match &turn.input {
        Input::Command { name, .. } if name == "web" => Some(sign_in_link(shared, &ctx, turn, &lang)?),
        Input::Command { name, args } => match desk::parse_command(name, args, ctx.now) {
            // A content command behind a role (such as /broadcast) opens its flow for those who hold it.
            None => match content.commands.get(name.as_str()).and_then(|c| c.role.as_deref()) {
                Some(role) => {
                    // A role the desk does not know is treated as the highest.
                    if actor(shared, turn, &lang)?.may(Role::parse(role).unwrap_or(Role::Admin)) {
                        return Ok(Route::Engine(Input::Authorized { name: name.clone() }));
                    }
                    Some(forbidden(&ctx, &lang))
                }
                None => None,
            },
            Some(parsed) => Some(act::desk::parsed(&ctx, &actor(shared, turn, &lang)?, parsed)?),
        },
        Input::Button(data) if data.starts_with("k:") => {
            if let Some(callback) = &turn.callback {
                first.push(Out::AnswerCallback { id: callback.id.clone() });
            }
            let actor = actor(shared, turn, &lang)?;
            Some(match desk::parse_button(data) {
                Some(request) => act::desk::run(&ctx, &actor, request)?,
                None => {
                    let mut out = Outcome::default();
                    out.say(&ctx, To::Requester, &lang, if actor.may(Role::Staff) { "menu_changed" } else { "desk_forbidden" }, &[]);
                    out
                }
            })
        }
        Input::Text(text) => relay(shared, &ctx, turn, &lang, text)?,
        _ => None,
    };
    let Some(outcome) = outcome else { return Ok(Route::Engine(turn.input.clone())) };
    if let Some(new_content) = outcome.content {
        shared.set_content(new_content);
    }
    let mut outgoing: Vec<Outgoing> = first.iter().map(|op| op.queue(turn.chat_id)).collect();
    outgoing.extend(notify::outgoing(&shared.store(), Some(turn.chat_id), &outcome.notices)?);
    shared.store().finish_update(update_id, &outgoing, ctx.now)?;
    tracing::info!(update_id, chat = turn.chat_id, "desk update handled");
    Ok(Route::Done)
}

/// `/web`: a one-time sign-in link to the web desk, for someone who holds a role, in a private chat
/// only (a link in a group could be used by anyone there).
fn sign_in_link(shared: &Shared, ctx: &act::Ctx<'_>, turn: &Turn, lang: &str) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    if !turn.private {
        out.refuse(ctx, lang, "desk_web_private", &[]);
        return Ok(out);
    }
    let base = &shared.config.web_public_url;
    match act::signin::login_link(&mut shared.store(), ctx.admins, base, &turn.user_id.to_string(), ctx.now)? {
        Some(link) => out.say(ctx, To::Requester, lang, "desk_web_link", &[("link", &link)]),
        None => out.refuse(ctx, lang, "desk_forbidden", &[]),
    }
    Ok(out)
}

fn forbidden(ctx: &act::Ctx<'_>, lang: &str) -> Outcome {
    let mut out = Outcome::default();
    out.refuse(ctx, lang, "desk_forbidden", &[]);
    out
}

/// Replies between an advisor (replying to a handoff post in the staff group) and the user.
fn relay(shared: &Shared, ctx: &act::Ctx<'_>, turn: &Turn, lang: &str, text: &str) -> anyhow::Result<Option<Outcome>> {
    // An advisor's reply to a handoff post goes to the user.
    if Some(turn.chat_id) == shared.config.app.staff_chat_id
        && let Some(reply_to) = turn.reply_to
    {
        let Some(id) = shared.store().inquiry_of_post(turn.chat_id, i64::from(reply_to))? else { return Ok(None) };
        let request = desk::Request::Reply { id, text: text.to_string() };
        return Ok(Some(act::desk::run(ctx, &actor(shared, turn, lang)?, request)?));
    }
    // A user talking with an advisor: their messages go to the thread until it is resolved.
    if !turn.private || shared.config.app.staff_chat_id.is_none() {
        return Ok(None);
    }
    act::desk::user_message(ctx, &turn.user_id.to_string(), lang, text)
}

/// Messages for a reply, ready to queue.
fn messages(reply: &crate::engine::Reply) -> Vec<Message> {
    render::render(reply).into_iter().filter(|m| !m.text.is_empty()).collect()
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
