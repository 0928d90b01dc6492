//! Desk actions: the staff and admin requests of [`crate::desk`], run on the store.
//!
//! [`run`] checks the role on every request (a forged or replayed button grants nothing), then acts.
//! [`user_message`] passes a user's message to the staff thread of their open handoff.

use crate::content::{ExtraExample, load_dirs_with};
use crate::desk::{self, InquiryRow, Parsed, Request, Role, Status};
use crate::engine::InquiryKind;
use crate::store::InquiryFilter;

use super::{Actor, Ctx, Notice, Outcome, To};

/// Most inquiries a report or export covers.
pub const MAX_ROWS: usize = 100_000;
/// Most characters of an inquiry kept as an example question.
const MAX_EXAMPLE_CHARS: usize = 300;

/// A parsed desk command: a request to run, or the usage message for those who may use it.
pub fn parsed(ctx: &Ctx<'_>, actor: &Actor, parsed: Parsed) -> anyhow::Result<Outcome> {
    match parsed {
        Parsed::Request(request) => run(ctx, actor, request),
        Parsed::Usage(role, key) => {
            let mut out = Outcome::default();
            out.refuse(ctx, &actor.lang, if actor.may(role) { key } else { "desk_forbidden" }, &[]);
            Ok(out)
        }
    }
}

/// Runs one desk request after checking the requester's role.
pub fn run(ctx: &Ctx<'_>, actor: &Actor, request: Request) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let lang = actor.lang.as_str();
    if !actor.may(request.role()) {
        out.refuse(ctx, lang, "desk_forbidden", &[]);
        return Ok(out);
    }
    match request {
        Request::Inbox { page } => {
            let rows = ctx.store().query_inquiries(&InquiryFilter { open: true, ..InquiryFilter::default() }, MAX_ROWS)?;
            out.reply(To::Requester, lang, desk::inbox(ctx.content, lang, &rows, page));
        }
        Request::Show { id } => {
            let store = ctx.store();
            match store.inquiry(id)? {
                Some(row) => {
                    let events = store.events(id)?;
                    drop(store);
                    out.reply(To::Requester, lang, desk::inquiry(ctx.content, lang, &row, &events));
                }
                None => not_found(ctx, lang, id, &mut out),
            }
        }
        Request::Take { id } => {
            if ctx.store().inquiry_event(id, &actor.label(), "taken", "", None, ctx.now)? {
                out.say(ctx, To::Requester, lang, "desk_taken", &[("id", &id.to_string()), ("by", &actor.id)]);
            } else {
                not_found(ctx, lang, id, &mut out);
            }
        }
        Request::Resolve { id } => {
            let Some(row) = ctx.store().inquiry(id)? else {
                not_found(ctx, lang, id, &mut out);
                return Ok(out);
            };
            ctx.store().inquiry_event(id, &actor.label(), "resolved", "", Some(Status::Resolved), ctx.now)?;
            out.say(ctx, To::Requester, lang, "desk_resolved", &[("id", &id.to_string())]);
            if row.kind == InquiryKind::Handoff
                && row.status != Status::Resolved
                && let Some(user) = row.user
            {
                out.say(ctx, To::User(user), &row.lang, "desk_user_resolved", &[]);
            }
        }
        Request::Reply { id, text } => {
            let Some(row) = ctx.store().inquiry(id)? else {
                not_found(ctx, lang, id, &mut out);
                return Ok(out);
            };
            let Some(user) = row.user else {
                not_found(ctx, lang, id, &mut out);
                return Ok(out);
            };
            ctx.store().inquiry_event(id, &actor.label(), "staff_reply", &text, Some(Status::AnsweredByStaff), ctx.now)?;
            out.say(ctx, To::User(user), &row.lang, "desk_staff_reply", &[("text", &text)]);
        }
        Request::Stats { period } => {
            let rows = period_rows(ctx, &period)?;
            out.reply(To::Requester, lang, desk::stats(ctx.content, lang, &period, &desk::Stats::of(&rows)));
            let quarantined = if actor.may(Role::Admin) { ctx.store().quarantined_count()? } else { 0 };
            if quarantined > 0 {
                out.say(ctx, To::Requester, lang, "desk_quarantine", &[("count", &quarantined.to_string())]);
            }
            out.notices.extend(stats_chart(ctx, lang, &period)?);
        }
        Request::Export { period } => {
            let rows = period_rows(ctx, &period)?;
            if rows.is_empty() {
                out.say(ctx, To::Requester, lang, "desk_export_empty", &[]);
            } else {
                out.notices.push(Notice::Document {
                    file_name: format!("inquiries-{}.csv", file_label(&period.label)),
                    caption: ctx.content.message("desk_export_caption", lang, &[("count", &rows.len().to_string())]),
                    csv: desk::to_csv(&rows),
                });
            }
        }
        Request::Learn { inquiry, entry } => learn(ctx, actor, inquiry, &entry, &mut out)?,
        Request::Grant { user, role } => {
            let changed = ctx.store().grant(super::CHANNEL, &user, role, &actor.id, ctx.now)?;
            let params = [("user", user.as_str()), ("role", role.name())];
            if changed {
                out.say(ctx, To::Requester, lang, "desk_granted", &params);
            } else {
                out.refuse(ctx, lang, "desk_unchanged", &params);
            }
        }
        Request::Revoke { user, role } => {
            let changed = ctx.store().revoke(super::CHANNEL, &user, role)?;
            let params = [("user", user.as_str()), ("role", role.name())];
            if changed {
                out.say(ctx, To::Requester, lang, "desk_revoked", &params);
            } else {
                out.refuse(ctx, lang, "desk_unchanged", &params);
            }
        }
        Request::Roles => {
            let grants = ctx.store().role_grants(super::CHANNEL)?;
            out.reply(To::Requester, lang, desk::roles(ctx.content, lang, ctx.admins, &grants));
        }
        Request::Reload => match rebuild(ctx)? {
            Ok(content) => {
                out.say(ctx, To::Requester, lang, "desk_reloaded", &[("entries", &content.entries.len().to_string())]);
                out.content = Some(content);
            }
            Err(diags) => {
                let first: Vec<String> = diags.iter().take(5).map(ToString::to_string).collect();
                let (count, problems) = (diags.len().to_string(), first.join("\n"));
                out.refuse(ctx, lang, "desk_reload_failed", &[("count", &count), ("problems", &problems)]);
            }
        },
        Request::BroadcastSend { id, delay_hours } => {
            out = super::broadcast::schedule(ctx, actor, id, ctx.now + delay_hours * 3600)?;
        }
        Request::BroadcastCancel { id } => out = super::broadcast::cancel(ctx, actor, id)?,
    }
    Ok(out)
}

/// The content files loaded again with every learned example: `/reload`, and the bot's pickup of
/// examples another process added. The inner error lists what does not check.
pub fn rebuild(ctx: &Ctx<'_>) -> anyhow::Result<Result<crate::content::Content, Vec<crate::content::Diagnostic>>> {
    let extras = ctx.store().learned_examples()?;
    Ok(load_dirs_with(ctx.dialogs_dir, ctx.knowledge_dir, &extras))
}

fn not_found(ctx: &Ctx<'_>, lang: &str, id: i64, out: &mut Outcome) {
    out.refuse(ctx, lang, "desk_not_found", &[("id", &id.to_string())]);
}

fn period_rows(ctx: &Ctx<'_>, period: &desk::Period) -> anyhow::Result<Vec<InquiryRow>> {
    let filter = InquiryFilter { since: period.since, until: period.until, ..InquiryFilter::default() };
    Ok(ctx.store().query_inquiries(&filter, MAX_ROWS)?)
}

/// The main chart of a period as a picture: inquiries per day above the share of free questions
/// answered, from the same per-day counts as the web desk's charts. `None` when the period has no
/// inquiries, or when drawing fails (logged; the statistics text went out already).
fn stats_chart(ctx: &Ctx<'_>, lang: &str, period: &desk::Period) -> anyhow::Result<Option<Notice>> {
    let days = ctx.store().stats_days(period.since, period.until)?;
    let daily = crate::charts::Daily::of(&days);
    if daily.is_empty() {
        return Ok(None);
    }
    let message = |key: &str| ctx.content.message(key, lang, &[]);
    let titles = (message("desk_chart_per_day"), message("desk_chart_answered"));
    match crate::charts::daily_png(&daily, (&titles.0, &titles.1)) {
        Ok(png) => Ok(Some(Notice::Photo {
            file_name: format!("stats-{}.png", file_label(&period.label)),
            caption: ctx.content.message("desk_chart_caption", lang, &[("period", &period.label)]),
            png,
        })),
        Err(e) => {
            tracing::warn!(error = %e, "cannot draw the statistics chart");
            Ok(None)
        }
    }
}

/// A period's label as part of a file name: letters, digits and dashes.
fn file_label(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// Attaches an inquiry's text as an example question of an entry, if the content still checks.
fn learn(ctx: &Ctx<'_>, actor: &Actor, inquiry_id: i64, entry_id: &str, out: &mut Outcome) -> anyhow::Result<()> {
    let lang = actor.lang.as_str();
    let Some(row) = ctx.store().inquiry(inquiry_id)? else {
        not_found(ctx, lang, inquiry_id, out);
        return Ok(());
    };
    let text: String = row.text.chars().take(MAX_EXAMPLE_CHARS).collect();
    let mut extras = ctx.store().learned_examples()?;
    extras.push(ExtraExample { id: 0, entry_id: entry_id.to_string(), lang: row.lang.clone(), text: text.clone() });
    match load_dirs_with(ctx.dialogs_dir, ctx.knowledge_dir, &extras) {
        Ok(content) => {
            ctx.store().learn(entry_id, &row.lang, &text, &actor.id, ctx.now)?;
            ctx.store().inquiry_event(inquiry_id, &actor.label(), "learned", entry_id, None, ctx.now)?;
            let name = content.entry(entry_id).map_or(entry_id.to_string(), |e| content.entry_text(e, lang).name.clone());
            out.say(ctx, To::Requester, lang, "desk_learned", &[("entry", &name), ("text", &text)]);
            out.content = Some(content);
        }
        Err(diags) => {
            let problem = diags.iter().find(|d| d.loc.path.ends_with(":0")).or(diags.first()).map_or(String::new(), |d| d.message.clone());
            out.refuse(ctx, lang, "desk_learn_refused", &[("problem", &problem)]);
        }
    }
    Ok(())
}

/// A user's message while staff answer their handoff: it goes to the inquiry's staff thread until
/// the inquiry is resolved. `None` when the user has no open thread.
pub fn user_message(ctx: &Ctx<'_>, user_id: &str, lang: &str, text: &str) -> anyhow::Result<Option<Outcome>> {
    let mut store = ctx.store();
    let user = store.user_id(super::CHANNEL, user_id, ctx.now)?;
    let Some(inquiry_id) = store.open_thread(user)? else { return Ok(None) };
    if store.post_of_inquiry(inquiry_id)?.is_none() {
        return Ok(None);
    }
    store.inquiry_event(inquiry_id, &format!("user {}", user.0), "user_reply", text, None, ctx.now)?;
    drop(store);
    let mut out = Outcome::default();
    let staff_lang = crate::content::DEFAULT_LANG;
    out.say(ctx, To::StaffThread(inquiry_id), staff_lang, "desk_user_reply", &[("user", &user.0.to_string()), ("text", text)]);
    out.say(ctx, To::Requester, lang, "desk_relayed", &[]);
    Ok(Some(out))
}
