//! Broadcast actions: programme calls drafted, scheduled and cancelled by agencies, run on the store.
//!
//! Sending itself is the front end's job (the Telegram sender drains the deliveries); these
//! functions only decide what is stored, for agencies and admins only.

use std::collections::BTreeMap;

use crate::broadcast::{self, Call};
use crate::desk::Role;
use crate::engine::Timestamp;

use super::{Actor, CHANNEL, Ctx, Outcome, To};

/// Subscribers read from the store at once while counting an audience.
const PAGE: usize = 2_000;

/// The agency finished the guided flow: make a draft from its answers and show the preview.
pub fn draft_from_answers(ctx: &Ctx<'_>, actor: &Actor, answers: &BTreeMap<String, String>) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let lang = actor.lang.as_str();
    if !actor.may(Role::Agency) {
        out.refuse(ctx, lang, "desk_forbidden", &[]);
        return Ok(out);
    }
    match broadcast::from_answers(answers, ctx.content, lang) {
        Ok(call) => {
            let (id, reach) = create(ctx, actor, &call)?;
            for reply in broadcast::preview(ctx.content, &call, lang, id, reach) {
                out.reply(To::Requester, lang, reply);
            }
        }
        Err((key, value)) => out.say(ctx, To::Requester, lang, &key, &[("value", &value)]),
    }
    Ok(out)
}

/// Stores a checked call as a draft; returns its id and how many current subscribers it reaches.
/// The caller has checked the requester may (see [`may_create`]).
pub fn create(ctx: &Ctx<'_>, actor: &Actor, call: &Call) -> anyhow::Result<(i64, usize)> {
    anyhow::ensure!(actor.may(Role::Agency), "only agencies and admins may create programme calls");
    let id = ctx.store().create_broadcast(&serde_json::to_string(call)?, &actor.label(), ctx.now)?;
    Ok((id, reach(ctx, call)?))
}

/// Whether the requester may create calls.
pub fn may_create(actor: &Actor) -> bool {
    actor.may(Role::Agency)
}

/// How many current subscribers a call would reach; the store is locked a page at a time.
pub fn reach(ctx: &Ctx<'_>, call: &Call) -> anyhow::Result<usize> {
    let mut reach = 0;
    let mut after = 0;
    loop {
        let (page, last) = ctx.store().subscribers_page(CHANNEL, after, PAGE)?;
        reach += page.iter().filter(|s| call.reaches(ctx.content, s)).count();
        match last {
            Some(last) => after = last,
            None => return Ok(reach),
        }
    }
}

/// Schedules a draft (or moves a scheduled call) to `at`; the requester's Telegram chat, if the
/// request came from there, follows the progress.
pub fn schedule(ctx: &Ctx<'_>, actor: &Actor, id: i64, at: Timestamp) -> anyhow::Result<Outcome> {
    let when = crate::dates::format_time(at);
    change(ctx, actor, id, |store| store.schedule_broadcast(id, at, actor.chat), ("broadcast_scheduled", &[("when", &when)]))
}

/// Cancels a call that has not finished; what was sent stays sent.
pub fn cancel(ctx: &Ctx<'_>, actor: &Actor, id: i64) -> anyhow::Result<Outcome> {
    change(ctx, actor, id, |store| store.cancel_broadcast(id, ctx.now), ("broadcast_cancelled", &[]))
}

/// Changes the state of call `id` for an agency or admin: refused when the call does not exist or
/// `apply` finds it in a state it cannot change; otherwise the `done` message with the call's id.
fn change(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: i64,
    apply: impl FnOnce(&mut crate::store::Store) -> Result<bool, crate::store::StoreError>,
    done: (&str, &[(&str, &str)]),
) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let lang = actor.lang.as_str();
    let id_text = id.to_string();
    if !actor.may(Role::Agency) {
        out.refuse(ctx, lang, "desk_forbidden", &[]);
        return Ok(out);
    }
    let Some(row) = ctx.store().broadcast(id)? else {
        out.refuse(ctx, lang, "broadcast_not_found", &[("id", &id_text)]);
        return Ok(out);
    };
    if apply(&mut ctx.store())? {
        let mut params = vec![("id", id_text.as_str())];
        params.extend_from_slice(done.1);
        out.say(ctx, To::Requester, lang, done.0, &params);
    } else {
        out.refuse(ctx, lang, "broadcast_not_draft", &[("id", &id_text), ("status", row.status.name())]);
    }
    Ok(out)
}
