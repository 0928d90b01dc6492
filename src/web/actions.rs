//! The desk's forms that change something. Each checks the session's CSRF token, runs the request
//! through the act layer (which checks the role again), queues what users and the staff group
//! must get in the outbox (the Telegram sender delivers it), writes the audit log, and shows the
//! requester's notices on the page.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::App;
use super::auth::Viewer;
use super::pages;
use crate::act::{self, Ctx, Outcome};
use crate::desk::{Request, Role};

/// What a form did, for the page that follows: the requester's notices, and whether it was refused.
#[derive(Clone, Debug, Default)]
pub struct Done {
    pub notices: Vec<String>,
    pub refused: bool,
}

impl Done {
    pub fn status(&self) -> StatusCode {
        if self.refused { StatusCode::CONFLICT } else { StatusCode::OK }
    }
}

/// Runs `act` with the desk's context, then swaps in new content, queues the notices for
/// Telegram users and the staff group, and writes the audit log (`action` on `target`).
pub fn run(
    app: &App,
    viewer: &Viewer,
    action: &str,
    target: &str,
    act: impl FnOnce(&Ctx<'_>, &act::Actor) -> anyhow::Result<Outcome>,
) -> anyhow::Result<Done> {
    let (outcome, now) = with_ctx(app, |ctx| act(ctx, &viewer.actor()).map(|outcome| (outcome, ctx.now)))?;
    if let Some(new) = outcome.content {
        *app.content.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
    }
    let mut store = app.store();
    crate::telegram::notify::queue(&mut store, &outcome.notices, now)?;
    let detail = if outcome.refused { "refused" } else { "done" };
    store.audit(&viewer.label(), action, target, detail, now)?;
    let notices = outcome
        .notices
        .iter()
        .filter_map(|n| match n {
            act::Notice::Say { to: act::To::Requester, reply, .. } => Some(reply.text.clone()),
            _ => None,
        })
        .collect();
    Ok(Done { notices, refused: outcome.refused })
}

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct LearnForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    entry: String,
}

/// The longest reply staff may send (Telegram splits longer texts; this keeps one reply readable).
pub const MAX_REPLY_CHARS: usize = 3000;

fn inquiry_id(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|n| *n > 0)
}

/// Runs a desk request on an inquiry and shows the inquiry with the outcome.
async fn on_inquiry(app: Arc<App>, viewer: Viewer, id: i64, action: &str, request: Request) -> Response {
    if let Some(r) = viewer.require(&app, request.role()) {
        return r;
    }
    match run(&app, &viewer, action, &id.to_string(), |ctx, actor| act::desk::run(ctx, actor, request)) {
        Ok(done) => pages::inquiry_page(&app, &viewer, id, &done),
        Err(e) => pages::server_error(&app, Some(&viewer), &e),
    }
}

/// `POST /inquiries/<id>/reply`: a reply to the user, delivered through the outbox.
pub async fn reply(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<String>, Form(form): Form<ReplyForm>) -> Response {
    if let Some(refused) = viewer.check_csrf(&app, &form.csrf) {
        return refused;
    }
    let Some(id) = inquiry_id(&id) else { return pages::status_page(&app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found") };
    let text = form.text.trim();
    if text.is_empty() || text.chars().count() > MAX_REPLY_CHARS {
        let done = Done {
            notices: vec![app.content().message("web_reply_invalid", &viewer.lang, &[("max", &MAX_REPLY_CHARS.to_string())])],
            refused: true,
        };
        let mut page = pages::inquiry_page(&app, &viewer, id, &done);
        *page.status_mut() = StatusCode::BAD_REQUEST;
        return page;
    }
    if let Some(r) = viewer.require(&app, Role::Staff) {
        return r;
    }
    match run(&app, &viewer, "reply", &id.to_string(), |ctx, actor| {
        act::desk::run(ctx, actor, Request::Reply { id, text: text.to_string() })
    }) {
        Ok(mut done) => {
            if !done.refused && done.notices.is_empty() {
                done.notices.push(app.content().message("web_reply_sent", &viewer.lang, &[]));
            }
            pages::inquiry_page(&app, &viewer, id, &done)
        }
        Err(e) => pages::server_error(&app, Some(&viewer), &e),
    }
}

/// `POST /inquiries/<id>/resolve`.
pub async fn resolve(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<String>, Form(form): Form<CsrfOnly>) -> Response {
    if let Some(refused) = viewer.check_csrf(&app, &form.csrf) {
        return refused;
    }
    let Some(id) = inquiry_id(&id) else { return pages::status_page(&app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found") };
    on_inquiry(app, viewer, id, "resolve", Request::Resolve { id }).await
}

/// `POST /inquiries/<id>/learn`: the question becomes an example of an entry (the checks of /learn).
pub async fn learn(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<String>, Form(form): Form<LearnForm>) -> Response {
    if let Some(refused) = viewer.check_csrf(&app, &form.csrf) {
        return refused;
    }
    let Some(id) = inquiry_id(&id) else { return pages::status_page(&app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found") };
    let entry = form.entry.trim().to_string();
    on_inquiry(app, viewer, id, "learn", Request::Learn { inquiry: id, entry }).await
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    role: String,
}

/// `POST /roles`: grant or revoke (admin). A revoked user's sessions end at their next request.
pub async fn roles(State(app): State<Arc<App>>, viewer: Viewer, Form(form): Form<RoleForm>) -> Response {
    if let Some(refused) = viewer.check_csrf(&app, &form.csrf) {
        return refused;
    }
    if let Some(r) = viewer.require(&app, Role::Admin) {
        return r;
    }
    let user = form.user.trim().to_string();
    let role = Role::grantable(form.role.trim());
    let valid_user = !user.is_empty() && user.len() <= 20 && user.chars().all(|c| c.is_ascii_digit());
    let request = match (form.action.as_str(), role, valid_user) {
        ("grant", Some(role), true) => Request::Grant { user: user.clone(), role },
        ("revoke", Some(role), true) => Request::Revoke { user: user.clone(), role },
        _ => {
            let done = Done { notices: vec![app.content().message("web_roles_invalid", &viewer.lang, &[])], refused: true };
            let mut page = pages::roles_page(&app, &viewer, &done);
            *page.status_mut() = StatusCode::BAD_REQUEST;
            return page;
        }
    };
    let action = form.action.clone();
    match run(&app, &viewer, &action, &format!("{user} {}", form.role.trim()), |ctx, actor| act::desk::run(ctx, actor, request)) {
        Ok(done) => pages::roles_page(&app, &viewer, &done),
        Err(e) => pages::server_error(&app, Some(&viewer), &e),
    }
}

/// The act layer's context for a request of the desk.
fn with_ctx<T>(app: &App, f: impl FnOnce(&Ctx<'_>) -> T) -> T {
    let content = app.content();
    let ctx = Ctx {
        store: &app.store,
        content: &content,
        admins: &app.admins,
        dialogs_dir: &app.dialogs_dir,
        knowledge_dir: &app.knowledge_dir,
        broadcast_rate: app.broadcast_rate,
        now: app.now(),
    };
    f(&ctx)
}

/// How many current subscribers a call reaches (the act layer counts them a page at a time).
pub fn reach(app: &App, call: &crate::broadcast::Call) -> anyhow::Result<usize> {
    with_ctx(app, |ctx| act::broadcast::reach(ctx, call))
}

/// The fields of a programme call from the form, as a call file, so it passes exactly the checks
/// of `sme-advisor broadcast create FILE`.
pub fn call_file(form: &HashMap<String, String>, langs: &[String]) -> String {
    let get = |k: &str| form.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let list = |s: &str| {
        let items: Vec<String> = s.split(',').map(str::trim).filter(|i| !i.is_empty()).map(|i| quote(&i.to_lowercase())).collect();
        format!("[{}]", items.join(", "))
    };
    let topics: Vec<String> = crate::engine::TOPICS.iter().filter(|t| form.contains_key(&format!("topic_{t}"))).map(|t| quote(t)).collect();
    let deadline = get("deadline");
    let is_date =
        deadline.len() == 10 && deadline.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
    let mut file = format!(
        "provider = {}\ncountries = {}\nsectors = {}\ntopics = [{}]\ndeadline = {}\n",
        quote(&get("provider")),
        list(&get("countries")),
        list(&get("sectors")),
        topics.join(", "),
        if is_date { deadline } else { quote(&deadline) }
    );
    let link = get("link");
    if !link.is_empty() {
        file.push_str(&format!("link = {}\n", quote(&link)));
    }
    for lang in langs {
        let fields = ["title", "offers", "eligible", "apply"].map(|f| get(&format!("{lang}_{f}")));
        if lang != crate::content::DEFAULT_LANG && fields.iter().all(String::is_empty) {
            continue;
        }
        file.push_str(&format!("\n[{lang}]\n"));
        for (name, value) in ["title", "offers", "eligible", "apply"].iter().zip(&fields) {
            file.push_str(&format!("{name} = {}\n", quote(value)));
        }
    }
    file
}

/// `POST /broadcasts`: a new call from the form, checked like a call file, saved as a draft.
pub async fn create_broadcast(State(app): State<Arc<App>>, viewer: Viewer, Form(form): Form<HashMap<String, String>>) -> Response {
    if let Some(refused) = viewer.check_csrf(&app, form.get("csrf").map_or("", String::as_str)) {
        return refused;
    }
    if let Some(r) = viewer.require(&app, Role::Agency) {
        return r;
    }
    let content = app.content();
    let langs: Vec<String> = content.languages.iter().map(|l| l.code.clone()).collect();
    let file = call_file(&form, &langs);
    let call = match crate::broadcast::parse_call("form", &file, &content) {
        Ok(call) => call,
        Err(diags) => {
            let mut notices = vec![content.message("web_call_problems", &viewer.lang, &[])];
            notices.extend(diags.iter().map(|d| d.message.clone()));
            let done = Done { notices, refused: true };
            let mut page = pages::broadcasts_page(&app, &viewer, &done, &form);
            *page.status_mut() = StatusCode::BAD_REQUEST;
            return page;
        }
    };
    let created = with_ctx(&app, |ctx| act::broadcast::create(ctx, &viewer.actor(), &call));
    match created.and_then(|(id, _)| {
        app.store().audit(&viewer.label(), "broadcast_create", &id.to_string(), "done", app.now())?;
        Ok(id)
    }) {
        Ok(id) => Redirect::to(&format!("/broadcasts/{id}")).into_response(),
        Err(e) => pages::server_error(&app, Some(&viewer), &e),
    }
}

fn call_of(app: &App, id: i64) -> anyhow::Result<Option<crate::broadcast::Call>> {
    Ok(match app.store().broadcast(id)? {
        Some(row) => Some(serde_json::from_str(&row.call)?),
        None => None,
    })
}

/// `POST /broadcasts/<id>/test`: the call as subscribers will see it, to the requester's own chat.
pub async fn test_broadcast(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<String>, Form(form): Form<CsrfOnly>) -> Response {
    if let Some(refused) = viewer.check_csrf(&app, &form.csrf) {
        return refused;
    }
    if let Some(r) = viewer.require(&app, Role::Agency) {
        return r;
    }
    let Some(id) = inquiry_id(&id) else { return pages::status_page(&app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found") };
    let sent = (|| -> anyhow::Result<bool> {
        let Some(call) = call_of(&app, id)? else { return Ok(false) };
        let content = app.content();
        let now = app.now();
        let mut store = app.store();
        let me = store.user_id(act::CHANNEL, &viewer.id, now)?;
        let reply = crate::broadcast::message(&content, &call, &viewer.lang, id);
        let notice = act::Notice::Say { to: act::To::User(me), lang: viewer.lang.clone(), reply };
        crate::telegram::notify::queue(&mut store, &[notice], now)?;
        store.audit(&viewer.label(), "broadcast_test", &id.to_string(), "done", now)?;
        Ok(true)
    })();
    match sent {
        Ok(true) => {
            let done = Done { notices: vec![app.content().message("web_broadcast_test_sent", &viewer.lang, &[])], refused: false };
            pages::broadcast_page(&app, &viewer, id, &done)
        }
        Ok(false) => pages::status_page(&app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found"),
        Err(e) => pages::server_error(&app, Some(&viewer), &e),
    }
}

#[derive(Deserialize)]
pub struct SendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    when: String,
}

/// `POST /broadcasts/<id>/send`: now, or at a time (in `TIME_ZONE` unless it names a zone); the
/// running bot sends it.
pub async fn send_broadcast(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<String>, Form(form): Form<SendForm>) -> Response {
    if let Some(refused) = viewer.check_csrf(&app, &form.csrf) {
        return refused;
    }
    if let Some(r) = viewer.require(&app, Role::Agency) {
        return r;
    }
    let Some(id) = inquiry_id(&id) else { return pages::status_page(&app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found") };
    let now = app.now();
    let at = match form.when.trim() {
        "" => now,
        when => match crate::dates::parse_when(when, &app.time_zone, now) {
            Ok(at) => at,
            Err(e) => {
                let done = Done { notices: vec![e.to_string()], refused: true };
                let mut page = pages::broadcast_page(&app, &viewer, id, &done);
                *page.status_mut() = StatusCode::BAD_REQUEST;
                return page;
            }
        },
    };
    match run(&app, &viewer, "broadcast_send", &id.to_string(), |ctx, actor| act::broadcast::schedule(ctx, actor, id, at)) {
        Ok(done) => pages::broadcast_page(&app, &viewer, id, &done),
        Err(e) => pages::server_error(&app, Some(&viewer), &e),
    }
}

/// `POST /broadcasts/<id>/cancel`.
pub async fn cancel_broadcast(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<String>, Form(form): Form<CsrfOnly>) -> Response {
    if let Some(refused) = viewer.check_csrf(&app, &form.csrf) {
        return refused;
    }
    if let Some(r) = viewer.require(&app, Role::Agency) {
        return r;
    }
    let Some(id) = inquiry_id(&id) else { return pages::status_page(&app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found") };
    match run(&app, &viewer, "broadcast_cancel", &id.to_string(), |ctx, actor| act::broadcast::cancel(ctx, actor, id)) {
        Ok(done) => pages::broadcast_page(&app, &viewer, id, &done),
        Err(e) => pages::server_error(&app, Some(&viewer), &e),
    }
}
