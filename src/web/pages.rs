//! The web desk's pages: handlers and their HTML (maud). Every sentence comes from a `web_*`
//! message of the content, in the viewer's language; data is escaped by maud.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use super::actions::Done;
use super::auth::{self, Viewer};
use super::{App, INBOX_PAGE};
use crate::charts;
use crate::content::Content;
use crate::dates::{Period, format_time};
use crate::desk::{CSV_BOM, CsvRows, Role, Status};
use crate::engine::InquiryKind;
use crate::matching::normalize;
use crate::store::{InboxQuery, InquiryFilter, LoginOutcome, StoreError};

/// The texts of one language.
pub struct T<'a> {
    pub content: &'a Content,
    pub lang: &'a str,
}

impl T<'_> {
    pub fn s(&self, key: &str) -> String {
        self.content.message(key, self.lang, &[])
    }

    pub fn p(&self, key: &str, params: &[(&str, &str)]) -> String {
        self.content.message(key, self.lang, params)
    }
}

const CSS: &str = include_str!("style.css");

pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS)
}

/// The frame of every page: the header with what the viewer may open, and the content.
fn layout(t: &T, viewer: Option<&Viewer>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(t.lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t.s("web_title")) }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    a.brand href="/" { (t.s("web_title")) }
                    @if let Some(v) = viewer {
                        nav {
                            @if v.roles.allows(Role::Staff) {
                                a href="/inquiries" { (t.s("web_nav_inbox")) }
                                a href="/stats" { (t.s("web_nav_stats")) }
                            }
                            @if v.roles.allows(Role::Agency) {
                                a href="/broadcasts" { (t.s("web_nav_broadcasts")) }
                            }
                            a href="/knowledge" { (t.s("web_nav_knowledge")) }
                            @if v.roles.allows(Role::Admin) {
                                a href="/roles" { (t.s("web_nav_roles")) }
                            }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                button type="submit" { (t.s("web_sign_out")) }
                            }
                        }
                        p.who { (t.p("web_signed_in_as", &[("user", &v.label())])) }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("content-security-policy", HeaderValue::from_static("default-src 'self'; img-src 'self' data:; form-action 'self'"));
    response
}

/// A page with one sentence and a status code.
pub fn status_page(app: &App, viewer: Option<&Viewer>, status: StatusCode, key: &str) -> Response {
    let content = app.content();
    let lang = viewer.map_or("en", |v| v.lang.as_str());
    let t = T { content: &content, lang };
    let title = t.s("web_problem_title");
    html_response(status, layout(&t, viewer, &title, html! { p.notice { (t.s(key)) } }))
}

/// 401: how to sign in.
pub fn signed_out(app: &App, lang: &str, next: &str) -> Response {
    let content = app.content();
    let t = T { content: &content, lang };
    let _ = next;
    let body = html! { p.notice { (t.s("web_signed_out")) } };
    html_response(StatusCode::UNAUTHORIZED, layout(&t, None, &t.s("web_signed_out_title"), body))
}

/// 500: the error is logged, the page says so.
pub fn server_error(app: &App, viewer: Option<&Viewer>, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %error, "web desk request failed");
    status_page(app, viewer, StatusCode::INTERNAL_SERVER_ERROR, "web_error")
}

fn fail<'a>(app: &'a App, viewer: &'a Viewer) -> impl Fn(StoreError) -> Response + 'a {
    move |e| server_error(app, Some(viewer), &e)
}

pub async fn not_found(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let viewer = auth::viewer_of(&app, &headers).ok().flatten();
    status_page(&app, viewer.as_ref(), StatusCode::NOT_FOUND, "web_not_found")
}

pub async fn home(State(app): State<Arc<App>>, viewer: Viewer) -> Response {
    let _ = app;
    Redirect::to(if viewer.roles.allows(Role::Staff) { "/inquiries" } else { "/broadcasts" }).into_response()
}

#[derive(Deserialize)]
pub struct NextParams {
    next: Option<String>,
}

/// `/login/<token>`: a one-time link opens a session, then goes on to `next` (same-site only).
/// The page moves on by itself rather than by an HTTP redirect, so the `SameSite=Strict` cookie
/// is sent along even when the link was opened from Telegram.
pub async fn login(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    Query(params): Query<NextParams>,
    headers: HeaderMap,
) -> Response {
    let lang = auth::browser_lang(&app, &headers);
    let now = app.now();
    let outcome = {
        let mut store = app.store();
        let outcome = store.web_use_login_link(&auth::token_hash(&token), now, super::LOGIN_LINK_SECS);
        match outcome {
            Ok(LoginOutcome::Valid { channel, external_id }) => match auth::roles_for(&store, &app.admins, &channel, &external_id) {
                Ok(roles) if auth::holds_any(roles) => {
                    let (session, csrf) = (auth::random_token(), auth::random_token());
                    store
                        .web_create_session(&auth::token_hash(&session), &channel, &external_id, &csrf, now)
                        .and_then(|_| store.audit(&format!("{channel} {external_id}"), "sign_in", "", "", now))
                        .map(|_| Ok(session))
                }
                Ok(_) => Ok(Err((StatusCode::FORBIDDEN, "web_login_no_role"))),
                Err(e) => Err(e),
            },
            Ok(LoginOutcome::Used) => Ok(Err((StatusCode::GONE, "web_login_used"))),
            Ok(LoginOutcome::Expired) => Ok(Err((StatusCode::GONE, "web_login_expired"))),
            Ok(LoginOutcome::Unknown) => Ok(Err((StatusCode::NOT_FOUND, "web_login_unknown"))),
            Err(e) => Err(e),
        }
    };
    let content = app.content();
    let t = T { content: &content, lang: &lang };
    match outcome {
        Ok(Ok(session)) => {
            let next = auth::safe_next(params.next.as_deref());
            let body = html! {
                p.notice { (t.s("web_signed_in")) " " a href=(next) { (t.s("web_continue")) } }
            };
            let page = html! {
                (DOCTYPE)
                html lang=(t.lang) {
                    head { meta charset="utf-8"; meta http-equiv="refresh" content=(format!("0;url={next}")); title { (t.s("web_title")) } }
                    body { (body) }
                }
            };
            let mut response = html_response(StatusCode::OK, page);
            if let Ok(cookie) = HeaderValue::from_str(&auth::session_cookie(&session, app.secure_cookies())) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Ok(Err((status, key))) => html_response(status, layout(&t, None, &t.s("web_signed_out_title"), html! { p.notice { (t.s(key)) } })),
        Err(e) => server_error(&app, None, &e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout_page(State(app): State<Arc<App>>, viewer: Viewer) -> Response {
    let content = app.content();
    let t = T { content: &content, lang: &viewer.lang };
    let body = html! {
        form method="post" action="/logout" {
            input type="hidden" name="csrf" value=(viewer.csrf);
            button type="submit" { (t.s("web_sign_out")) }
        }
    };
    html_response(StatusCode::OK, layout(&t, Some(&viewer), &t.s("web_sign_out"), body))
}

/// `POST /logout`: ends the session.
pub async fn logout(State(app): State<Arc<App>>, viewer: Viewer, Form(form): Form<CsrfForm>) -> Response {
    if let Some(refused) = viewer.check_csrf(&app, &form.csrf) {
        return refused;
    }
    let now = app.now();
    let ended = {
        let mut store = app.store();
        store.web_end_session(&viewer.token_hash).and_then(|_| store.audit(&viewer.label(), "sign_out", "", "", now))
    };
    if let Err(e) = ended {
        return server_error(&app, Some(&viewer), &e);
    }
    let content = app.content();
    let t = T { content: &content, lang: &viewer.lang };
    let mut response =
        html_response(StatusCode::OK, layout(&t, None, &t.s("web_sign_out"), html! { p.notice { (t.s("web_signed_out_done")) } }));
    if let Ok(cookie) = HeaderValue::from_str(&auth::clear_cookie(app.secure_cookies())) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The filters of `sme-advisor inquiries list`, from a query string.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FilterParams {
    q: Option<String>,
    period: Option<String>,
    status: Option<String>,
    lang: Option<String>,
    country: Option<String>,
    kind: Option<String>,
    open: Option<String>,
    page: Option<String>,
}

fn statuses() -> [&'static str; 5] {
    Status::ALL.map(Status::name)
}

fn kinds() -> [&'static str; 3] {
    InquiryKind::ALL.map(InquiryKind::name)
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

impl FilterParams {
    /// The store filter, or the problem with a value (for the page to show).
    fn filter(&self, content: &Content, now: i64, default_period: &str) -> Result<(InquiryFilter, Period), String> {
        let period_text = given(&self.period).unwrap_or_else(|| default_period.to_string());
        let period = Period::parse(&period_text, now).map_err(|e| e.to_string())?;
        let status = match given(&self.status) {
            None => None,
            Some(s) => Some(Status::parse(&s).ok_or_else(|| format!("status `{s}`: {}", statuses().join(", ")))?),
        };
        let kind = match given(&self.kind) {
            None => None,
            Some(k) => Some(InquiryKind::parse(&k).ok_or_else(|| format!("kind `{k}`: {}", kinds().join(", ")))?),
        };
        let lang = given(&self.lang);
        if let Some(l) = lang.as_deref().filter(|l| !content.languages.iter().any(|x| x.code == *l)) {
            return Err(format!("language `{l}`"));
        }
        let country = given(&self.country).map(|c| c.to_lowercase());
        if let Some(c) = country.as_deref().filter(|c| c.len() > 64 || !c.chars().all(|x| x.is_alphanumeric() || x == '_' || x == '-')) {
            return Err(format!("country `{c}`"));
        }
        let filter = InquiryFilter {
            since: period.since,
            until: period.until,
            status,
            lang,
            country,
            kind,
            open: self.open.as_deref().is_some_and(|o| !o.is_empty() && o != "0"),
        };
        Ok((filter, period))
    }

    fn page(&self) -> usize {
        self.page.as_deref().and_then(|p| p.parse::<usize>().ok()).filter(|p| *p >= 1).unwrap_or(1).min(1_000_000)
    }

    /// The query string of these filters with another page (for links).
    fn with_page(&self, page: usize) -> String {
        let mut pairs = Vec::new();
        for (k, v) in [
            ("q", &self.q),
            ("period", &self.period),
            ("status", &self.status),
            ("lang", &self.lang),
            ("country", &self.country),
            ("kind", &self.kind),
            ("open", &self.open),
        ] {
            if let Some(v) = given(v) {
                pairs.push(format!("{k}={}", encode(&v)));
            }
        }
        if page > 1 {
            pairs.push(format!("page={page}"));
        }
        pairs.join("&")
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn select(t: &T, name: &str, label_key: &str, current: Option<&str>, values: &[&str]) -> Markup {
    let id = format!("f-{name}");
    html! {
        label for=(id) { (t.s(label_key)) }
        select id=(id) name=(name) {
            option value="" { (t.s("web_filter_any")) }
            @for v in values {
                option value=(v) selected[current == Some(*v)] { (v) }
            }
        }
    }
}

fn filter_form(t: &T, params: &FilterParams, search: bool) -> Markup {
    let langs: Vec<&str> = t.content.languages.iter().map(|l| l.code.as_str()).collect();
    html! {
        form.filters method="get" {
            @if search {
                div.field.wide {
                    label for="f-q" { (t.s("web_filter_search")) }
                    input id="f-q" type="search" name="q" value=(params.q.clone().unwrap_or_default());
                }
            }
            div.field {
                label for="f-period" { (t.s("web_filter_period")) }
                input id="f-period" type="text" name="period" placeholder="7d" value=(params.period.clone().unwrap_or_default());
            }
            div.field { (select(t, "status", "web_filter_status", params.status.as_deref(), &statuses())) }
            div.field { (select(t, "kind", "web_filter_kind", params.kind.as_deref(), &kinds())) }
            div.field { (select(t, "lang", "web_filter_lang", params.lang.as_deref(), &langs)) }
            div.field {
                label for="f-country" { (t.s("web_filter_country")) }
                input id="f-country" type="text" name="country" value=(params.country.clone().unwrap_or_default());
            }
            div.field.check {
                input id="f-open" type="checkbox" name="open" value="1" checked[params.open.as_deref().is_some_and(|o| !o.is_empty())];
                label for="f-open" { (t.s("web_filter_open")) }
            }
            div.field { button type="submit" { (t.s("web_filter_apply")) } }
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max { one_line } else { format!("{}…", one_line.chars().take(max).collect::<String>()) }
}

fn bad_filter(app: &App, viewer: &Viewer, t: &T, title: &str, params: &FilterParams, problem: &str, search: bool) -> Response {
    let body = html! {
        (filter_form(t, params, search))
        p.notice.error role="alert" { (t.p("web_bad_filter", &[("problem", problem)])) }
    };
    let _ = app;
    html_response(StatusCode::BAD_REQUEST, layout(t, Some(viewer), title, body))
}

/// `/inquiries`: open ones first (handoffs first), the CLI's filters, full-text search, paged.
pub async fn inbox(State(app): State<Arc<App>>, viewer: Viewer, Query(params): Query<FilterParams>) -> Response {
    if let Some(r) = viewer.require(&app, Role::Staff) {
        return r;
    }
    let content = app.content();
    let t = T { content: &content, lang: &viewer.lang };
    let title = t.s("web_inbox_title");
    let (filter, _) = match params.filter(&content, app.now(), "all") {
        Ok(f) => f,
        Err(problem) => return bad_filter(&app, &viewer, &t, &title, &params, &problem, true),
    };
    let page = params.page();
    let query = InboxQuery { filter, search: params.q.clone().unwrap_or_default(), offset: (page - 1) * INBOX_PAGE, limit: INBOX_PAGE };
    let (total, rows) = match app.store().inbox_page(&query) {
        Ok(found) => found,
        Err(e) => return fail(&app, &viewer)(e),
    };
    let pages = (total as usize).div_ceil(INBOX_PAGE).max(1);
    let export = format!("/export.csv?{}", params.with_page(1));
    let body = html! {
        (filter_form(&t, &params, true))
        p.count { (t.p("web_inbox_count", &[("count", &total.to_string())])) " " a href=(export) { (t.s("web_nav_export")) } }
        @if rows.is_empty() {
            p.notice { (t.s("web_inbox_empty")) }
        } @else {
            ul.inquiries {
                @for row in &rows {
                    li class=(format!("status-{}", row.status)) {
                        a href=(format!("/inquiries/{}", row.id)) {
                            span.id { "#" (row.id) }
                            span.meta { (format_time(row.at)) " · " (row.kind) " · " (row.status) " · " (row.lang)
                                @if let Some(c) = &row.country { " · " (c) } }
                            span.text { (shorten(&row.text, 140)) }
                        }
                    }
                }
            }
            nav.pager aria-label=(t.s("web_pager")) {
                @if page > 1 { a rel="prev" href=(format!("/inquiries?{}", params.with_page(page - 1))) { (t.s("web_page_previous")) } }
                span { (t.p("web_page_of", &[("page", &page.to_string()), ("pages", &pages.to_string())])) }
                @if page < pages { a rel="next" href=(format!("/inquiries?{}", params.with_page(page + 1))) { (t.s("web_page_next")) } }
            }
        }
    };
    html_response(StatusCode::OK, layout(&t, Some(&viewer), &title, body))
}

/// `/inquiries/<id>`: one inquiry, its history, how the matcher reads it, and what staff can do.
pub async fn inquiry(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<String>) -> Response {
    if let Some(r) = viewer.require(&app, Role::Staff) {
        return r;
    }
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return status_page(&app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found");
    };
    inquiry_page(&app, &viewer, id, &Done::default())
}

/// The notices of a form just sent.
fn done_notices(done: &Done) -> Markup {
    html! {
        @for n in &done.notices {
            @if done.refused { p.notice.error role="alert" { (n) } } @else { p.notice role="status" { (n) } }
        }
    }
}

/// The inquiry page, with the outcome of a form just sent.
pub fn inquiry_page(app: &App, viewer: &Viewer, id: i64, done: &Done) -> Response {
    let (app, viewer) = (app, viewer.clone());
    let found = {
        let store = app.store();
        store.inquiry(id).and_then(|row| Ok((row, store.events(id)?)))
    };
    let (row, events) = match found {
        Ok((Some(row), events)) => (row, events),
        Ok((None, _)) => return status_page(app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found"),
        Err(e) => return fail(app, &viewer)(e),
    };
    let content = app.content();
    let t = T { content: &content, lang: &viewer.lang };
    let title = t.p("web_inquiry_title", &[("id", &id.to_string())]);
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let explanation = (row.kind == InquiryKind::Question)
        .then(|| content.index.explain(&row.text, &crate::matching::Asker::lang(&row.lang)).trim_end().to_string());
    // A question the bot could not answer well can become an example of an entry it suggested.
    let unanswered_question = row.kind == InquiryKind::Question && !row.answered;
    let mut all_entries: Vec<(String, String)> =
        content.entries.iter().map(|e| (e.id.clone(), content.entry_text(e, &viewer.lang).short.clone())).collect();
    all_entries.sort_by_key(|(_, name)| name.to_lowercase());
    let learnable: Vec<(String, String)> = if unanswered_question {
        row.matched
            .split(',')
            .filter_map(|m| m.strip_prefix("entry:"))
            .filter_map(|e| content.entry(e).map(|entry| (e.to_string(), content.entry_text(entry, &viewer.lang).short.clone())))
            .collect()
    } else {
        Vec::new()
    };
    let fields: Vec<(String, String)> = vec![
        (t.s("web_field_when"), format_time(row.at)),
        (t.s("web_field_user"), row.user.map_or("-".to_string(), |u| u.0.to_string())),
        (t.s("web_field_lang"), row.lang.clone()),
        (t.s("web_field_kind"), row.kind.name().to_string()),
        (t.s("web_field_status"), row.status.name().to_string()),
        (t.s("web_field_matched"), if row.matched.is_empty() { "-".into() } else { row.matched.clone() }),
        (t.s("web_field_confidence"), format!("{:.2}", row.confidence)),
        (t.s("web_field_topic"), dash(&row.topic)),
        (t.s("web_field_country"), dash(&row.country)),
        (t.s("web_field_sector"), dash(&row.sector)),
        (t.s("web_field_taken"), dash(&row.taken_by)),
    ];
    let body = html! {
        blockquote.question { (row.text) }
        dl.fields {
            @for (name, value) in &fields { dt { (name) } dd { (value) } }
        }
        h2 { (t.s("web_history_title")) }
        @if events.is_empty() {
            p { (t.s("web_history_empty")) }
        } @else {
            ol.history {
                @for e in &events {
                    li { span.meta { (format_time(e.at)) " · " (e.actor) " · " (e.kind) } @if !e.text.is_empty() { " " span.text { (e.text) } } }
                }
            }
        }
        h2 { (t.s("web_actions_title")) }
        div.actions {
            @if row.user.is_some() {
                form method="post" action=(format!("/inquiries/{id}/reply")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="reply-text" { (t.s("web_reply_label")) }
                    textarea id="reply-text" name="text" required maxlength="3000" {}
                    button type="submit" { (t.s("web_reply_send")) }
                }
            }
            @if row.status != Status::Resolved {
                form method="post" action=(format!("/inquiries/{id}/resolve")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button type="submit" { (t.s("web_resolve")) }
                }
            }
            @for (entry_id, name) in &learnable {
                form method="post" action=(format!("/inquiries/{id}/learn")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    input type="hidden" name="entry" value=(entry_id);
                    button type="submit" { (t.p("web_learn", &[("entry", name)])) }
                }
            }
            @if unanswered_question {
                // Any entry, for a question the matcher declined (it has no candidates to offer).
                form method="post" action=(format!("/inquiries/{id}/learn")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="learn-entry" { (t.s("web_learn_any_label")) }
                    select id="learn-entry" name="entry" required {
                        @for (entry_id, name) in &all_entries {
                            option value=(entry_id) { (name) }
                        }
                    }
                    button type="submit" { (t.s("web_learn_any_submit")) }
                }
            }
        }
        @if let Some(explanation) = explanation {
            h2 { (t.s("web_explain_title")) }
            pre.explain { (explanation) }
        }
        p { a href="/inquiries" { (t.s("web_back_to_inbox")) } }
    };
    let body = html! { (done_notices(done)) (body) };
    html_response(done.status(), layout(&t, Some(&viewer), &title, body))
}

/// `/export.csv`: the CSV of `sme-advisor inquiries export` for the same filters, streamed in
/// batches so memory stays flat however many inquiries match.
pub async fn export(State(app): State<Arc<App>>, viewer: Viewer, Query(params): Query<FilterParams>) -> Response {
    if let Some(r) = viewer.require(&app, Role::Staff) {
        return r;
    }
    let content = app.content();
    let (filter, period) = match params.filter(&content, app.now(), "all") {
        Ok(f) => f,
        Err(problem) => {
            let t = T { content: &content, lang: &viewer.lang };
            return bad_filter(&app, &viewer, &t, &t.s("web_inbox_title"), &params, &problem, true);
        }
    };
    if let Err(e) = app.store().audit(&viewer.label(), "export", &period.label, "", app.now()) {
        return fail(&app, &viewer)(e);
    }
    let stream = export_stream(app.clone(), filter);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"inquiries.csv\""));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Rows per batch of an export.
pub const EXPORT_BATCH: usize = 1000;

/// The CSV in chunks: the byte-order mark and header, then a batch of rows at a time, each read
/// with the store locked only for that batch.
pub fn export_stream(app: Arc<App>, filter: InquiryFilter) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    enum At {
        Start,
        After(Option<(i64, i64, i64)>),
        Done,
    }
    futures_util::stream::unfold(At::Start, move |at| {
        let app = app.clone();
        let filter = filter.clone();
        async move {
            let after = match at {
                At::Done => return None,
                At::Start => {
                    let mut out = CsvRows::new(CSV_BOM);
                    out.header();
                    return Some((Ok(Bytes::from(out.finish())), At::After(None)));
                }
                At::After(after) => after,
            };
            let batch = tokio::task::spawn_blocking(move || app.store().export_batch(&filter, after, EXPORT_BATCH)).await;
            let rows = match batch {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => return Some((Err(std::io::Error::other(e)), At::Done)),
                Err(e) => return Some((Err(std::io::Error::other(e)), At::Done)),
            };
            if rows.is_empty() {
                return None;
            }
            let next = rows.last().map(|(rank, r)| (*rank, r.at, r.id));
            let full = rows.len() == EXPORT_BATCH;
            let mut out = CsvRows::new("");
            for (_, row) in &rows {
                out.row(row);
            }
            Some((Ok(Bytes::from(out.finish())), if full { At::After(next) } else { At::Done }))
        }
    })
}

#[derive(Deserialize)]
pub struct StatsParams {
    period: Option<String>,
}

/// The numbers behind the statistics page.
#[derive(Clone, Debug, Default)]
pub struct StatsData {
    pub days: Vec<crate::store::DayCount>,
    pub topics: Vec<(String, i64)>,
    pub unanswered: Vec<(String, i64)>,
    pub countries: Vec<(String, i64)>,
    pub languages: Vec<(String, i64)>,
}

/// Reads the statistics of a period: one pass over the covering index `inquiries_stats` for the
/// counts, one over the partial index `inquiries_unanswered` for the phrasings (a year of 100,000
/// inquiries in under 40 ms, see `benches/web_load.rs`).
pub fn stats_data(app: &App, period: &Period) -> Result<StatsData, StoreError> {
    let store = app.store();
    let (since, until) = (period.since, period.until);
    let raw = store.unanswered_texts(since, until, 200)?;
    // Phrasings are compared normalised, as in /stats on Telegram: "Loan?" and "loan" count together.
    let mut merged: HashMap<String, i64> = HashMap::new();
    for (text, n) in raw {
        *merged.entry(normalize(&text)).or_insert(0) += n;
    }
    let mut unanswered: Vec<(String, i64)> = merged.into_iter().filter(|(k, _)| !k.is_empty()).collect();
    unanswered.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    unanswered.truncate(10);
    let (days, topics, countries, languages) = store.stats_pass(since, until, 10)?;
    Ok(StatsData { days, topics, unanswered, countries, languages })
}

/// A chart with its caption; `None` when there is nothing to draw.
fn figure(t: &T, key: &str, svg: Option<String>) -> Markup {
    let id = key.replace('_', "-");
    html! {
        figure aria-labelledby=(id) {
            figcaption id=(id) { (t.s(key)) }
            @match svg {
                Some(svg) => div.chart role="img" aria-label=(t.s(key)) { (PreEscaped(svg)) },
                None => p { (t.s("web_chart_empty")) },
            }
        }
    }
}

fn bars(items: &[(String, i64)]) -> Option<String> {
    (!items.is_empty()).then(|| charts::bars(items, 560))
}

/// `/stats`: charts of a period.
pub async fn stats(State(app): State<Arc<App>>, viewer: Viewer, Query(params): Query<StatsParams>) -> Response {
    if let Some(r) = viewer.require(&app, Role::Staff) {
        return r;
    }
    let content = app.content();
    let t = T { content: &content, lang: &viewer.lang };
    let title = t.s("web_stats_title");
    let period_text = given(&params.period).unwrap_or_else(|| "30d".to_string());
    let form = html! {
        form.filters method="get" {
            div.field {
                label for="f-period" { (t.s("web_filter_period")) }
                input id="f-period" type="text" name="period" value=(period_text);
            }
            div.field { button type="submit" { (t.s("web_filter_apply")) } }
        }
    };
    let period = match Period::parse(&period_text, app.now()) {
        Ok(p) => p,
        Err(e) => {
            let body = html! { (form) p.notice.error role="alert" { (t.p("web_bad_filter", &[("problem", &e.to_string())])) } };
            return html_response(StatusCode::BAD_REQUEST, layout(&t, Some(&viewer), &title, body));
        }
    };
    let data = match stats_data(&app, &period) {
        Ok(d) => d,
        Err(e) => return fail(&app, &viewer)(e),
    };
    let daily = charts::Daily::of(&data.days);
    let sum = |f: fn(&crate::store::DayCount) -> i64| data.days.iter().map(f).sum::<i64>();
    let (total, questions, answered) = (sum(|d| d.total), sum(|d| d.questions), sum(|d| d.answered));
    let share = if questions == 0 { "-".to_string() } else { format!("{:.0}%", 100.0 * answered as f64 / questions as f64) };
    let summary = t.p(
        "web_stats_summary",
        &[
            ("period", &period.label),
            ("total", &total.to_string()),
            ("questions", &questions.to_string()),
            ("answered", &share),
            ("handoffs", &sum(|d| d.handoffs).to_string()),
            ("recommendations", &sum(|d| d.recommendations).to_string()),
        ],
    );
    let body = html! {
        (form)
        p.summary { (summary) }
        @if total == 0 {
            p.notice { (t.s("web_stats_none")) }
        } @else {
            div.charts {
                (figure(&t, "web_chart_per_day", Some(charts::line(&daily.per_day, false, 560))))
                (figure(&t, "web_chart_answered", (!daily.answered_share.is_empty()).then(|| charts::line(&daily.answered_share, true, 560))))
                (figure(&t, "web_chart_topics", bars(&data.topics)))
                (figure(&t, "web_chart_unanswered", bars(&data.unanswered)))
                (figure(&t, "web_chart_countries", bars(&data.countries)))
                (figure(&t, "web_chart_languages", bars(&data.languages)))
            }
        }
    };
    html_response(StatusCode::OK, layout(&t, Some(&viewer), &title, body))
}

/// `/knowledge`: every entry with its status and the dates it was checked, read-only.
pub async fn knowledge(State(app): State<Arc<App>>, viewer: Viewer) -> Response {
    let content = app.content();
    let t = T { content: &content, lang: &viewer.lang };
    let title = t.s("web_knowledge_title");
    let mut entries: Vec<&crate::content::Entry> = content.entries.iter().collect();
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    let body = html! {
        p.count { (t.p("web_knowledge_count", &[("count", &entries.len().to_string())])) }
        div.table {
            table {
                thead { tr {
                    th scope="col" { (t.s("web_col_entry")) }
                    th scope="col" { (t.s("web_col_provider")) }
                    th scope="col" { (t.s("web_col_status")) }
                    th scope="col" { (t.s("web_col_status_checked")) }
                    th scope="col" { (t.s("web_col_reviewed")) }
                } }
                tbody {
                    @for e in &entries {
                        @let text = content.entry_text(e, &viewer.lang);
                        tr {
                            td { strong { (text.name) } br; code { (e.id) } " · " (e.kind.name()) }
                            td { (text.provider) }
                            td { (e.status.map_or("-", |s| s.name())) }
                            td { (e.status_checked.clone().unwrap_or_else(|| t.s("web_never"))) }
                            td { (e.reviewed) }
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, layout(&t, Some(&viewer), &title, body))
}

/// `/broadcasts`: programme calls, newest first, and the form for a new one (agency and admin).
pub async fn broadcasts(State(app): State<Arc<App>>, viewer: Viewer) -> Response {
    if let Some(r) = viewer.require(&app, Role::Agency) {
        return r;
    }
    broadcasts_page(&app, &viewer, &Done::default(), &HashMap::new())
}

fn field(id: &str, label: &str, value: &str, multiline: bool, required: bool) -> Markup {
    html! {
        div.field.wide {
            label for=(id) { (label) }
            @if multiline {
                textarea id=(id) name=(id) required[required] { (value) }
            } @else {
                input id=(id) type="text" name=(id) value=(value) required[required];
            }
        }
    }
}

/// The list of calls and the form for a new one (filled in again after a refusal).
pub fn broadcasts_page(app: &App, viewer: &Viewer, done: &Done, form: &HashMap<String, String>) -> Response {
    let rows = match app.store().broadcasts() {
        Ok(rows) => rows,
        Err(e) => return fail(app, viewer)(e),
    };
    let content = app.content();
    let t = T { content: &content, lang: &viewer.lang };
    let title = t.s("web_broadcasts_title");
    let value = |k: &str| form.get(k).cloned().unwrap_or_default();
    let body = html! {
        (done_notices(done))
        @if rows.is_empty() {
            p.notice { (t.s("web_broadcasts_empty")) }
        } @else {
            ul.inquiries {
                @for b in &rows {
                    @let call_title = serde_json::from_str::<crate::broadcast::Call>(&b.call).map(|c| c.text(&viewer.lang).title.clone()).unwrap_or_default();
                    li { a href=(format!("/broadcasts/{}", b.id)) {
                        span.id { "#" (b.id) }
                        span.meta { (format_time(b.created_at)) " · " (b.status.name()) " · " (b.created_by) }
                        span.text { (call_title) }
                    } }
                }
            }
        }
        h2 { (t.s("web_broadcast_new")) }
        form.call method="post" action="/broadcasts" {
            input type="hidden" name="csrf" value=(viewer.csrf);
            (field("provider", &t.s("web_call_provider"), &value("provider"), false, true))
            (field("countries", &t.s("web_call_countries"), &value("countries"), false, true))
            (field("sectors", &t.s("web_call_sectors"), &value("sectors"), false, true))
            fieldset {
                legend { (t.s("web_call_topics")) }
                @for topic in crate::engine::TOPICS {
                    @let id = format!("topic_{topic}");
                    span.check {
                        input id=(id) type="checkbox" name=(id) value="1" checked[form.contains_key(&id)];
                        label for=(id) { (topic) }
                    }
                }
            }
            div.field {
                label for="deadline" { (t.s("web_call_deadline")) }
                input id="deadline" type="date" name="deadline" value=(value("deadline")) required;
            }
            (field("link", &t.s("web_call_link"), &value("link"), false, false))
            @for lang in &content.languages {
                fieldset {
                    legend { (t.p("web_call_lang_section", &[("lang", &lang.name)])) }
                    @let required = lang.code == crate::content::DEFAULT_LANG;
                    (field(&format!("{}_title", lang.code), &t.s("web_call_title"), &value(&format!("{}_title", lang.code)), false, required))
                    (field(&format!("{}_offers", lang.code), &t.s("web_call_offers"), &value(&format!("{}_offers", lang.code)), true, required))
                    (field(&format!("{}_eligible", lang.code), &t.s("web_call_eligible"), &value(&format!("{}_eligible", lang.code)), true, required))
                    (field(&format!("{}_apply", lang.code), &t.s("web_call_apply"), &value(&format!("{}_apply", lang.code)), true, required))
                }
            }
            button type="submit" { (t.s("web_call_create")) }
        }
    };
    html_response(if done.refused { StatusCode::BAD_REQUEST } else { StatusCode::OK }, layout(&t, Some(viewer), &title, body))
}

/// `/broadcasts/<id>`: one call as subscribers see it, its audience and progress, and what to do.
pub async fn broadcast(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<String>) -> Response {
    if let Some(r) = viewer.require(&app, Role::Agency) {
        return r;
    }
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return status_page(&app, Some(&viewer), StatusCode::NOT_FOUND, "web_not_found");
    };
    broadcast_page(&app, &viewer, id, &Done::default())
}

/// The call page, with the outcome of a form just sent. While the call is scheduled or going
/// out, the page reloads itself every 5 seconds (no script needed).
pub fn broadcast_page(app: &App, viewer: &Viewer, id: i64, done: &Done) -> Response {
    use crate::broadcast::Status as CallStatus;
    let found = {
        let store = app.store();
        store.broadcast(id).and_then(|b| Ok((b, store.broadcast_counts(id)?)))
    };
    let (row, counts) = match found {
        Ok((Some(row), counts)) => (row, counts),
        Ok((None, _)) => return status_page(app, Some(viewer), StatusCode::NOT_FOUND, "web_not_found"),
        Err(e) => return fail(app, viewer)(e),
    };
    let content = app.content();
    let t = T { content: &content, lang: &viewer.lang };
    let title = t.p("web_broadcast_title", &[("id", &id.to_string())]);
    let call = serde_json::from_str::<crate::broadcast::Call>(&row.call).ok();
    let audience = match call.as_ref().map(|c| super::actions::reach(app, c)).transpose() {
        Ok(n) => n.unwrap_or(0),
        Err(e) => return server_error(app, Some(viewer), &e),
    };
    let progress = t.p(
        "web_broadcast_progress",
        &[
            ("status", row.status.name()),
            ("sent", &counts.sent.to_string()),
            ("pending", &counts.pending.to_string()),
            ("failed", &counts.failed.to_string()),
            ("blocked", &counts.blocked.to_string()),
            ("total", &counts.total.to_string()),
        ],
    );
    let live = matches!(row.status, CallStatus::Scheduled | CallStatus::Sending);
    let zone = app.time_zone.iana_name().unwrap_or("UTC").to_string();
    let body = html! {
        (done_notices(done))
        p.summary { (progress) }
        @if let Some(at) = row.send_at { p { (t.p("web_broadcast_send_at", &[("when", &format_time(at))])) } }
        p { (t.p("web_broadcast_audience", &[("count", &audience.to_string())])) }
        @if live { p.notice role="status" { (t.s("web_broadcast_live")) } }
        @if let Some(call) = &call {
            h2 { (t.s("web_broadcast_preview")) }
            @for lang in call.texts.keys() {
                @let message = crate::broadcast::message(&content, call, lang, id);
                div.preview lang=(lang) { @if let Some(title) = &message.title { strong { (title) } "\n" } (message.text) }
            }
        }
        h2 { (t.s("web_actions_title")) }
        div.actions {
            @if row.status == CallStatus::Draft {
                form method="post" action=(format!("/broadcasts/{id}/test")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button type="submit" { (t.s("web_broadcast_test")) }
                }
                form method="post" action=(format!("/broadcasts/{id}/send")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="send-when" { (t.p("web_broadcast_when", &[("zone", &zone)])) }
                    input id="send-when" type="text" name="when" placeholder="2027-01-10 09:00";
                    button type="submit" { (t.s("web_broadcast_send")) }
                }
            }
            @if matches!(row.status, CallStatus::Draft | CallStatus::Scheduled | CallStatus::Sending) {
                form method="post" action=(format!("/broadcasts/{id}/cancel")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button type="submit" { (t.s("web_broadcast_cancel")) }
                }
            }
        }
        p { a href="/broadcasts" { (t.s("web_back_to_broadcasts")) } }
    };
    let mut response = html_response(done.status(), layout(&t, Some(viewer), &title, body));
    if live {
        response.headers_mut().insert(header::REFRESH, HeaderValue::from_static("5"));
    }
    response
}

/// `/roles`: who holds which role, and forms to grant and revoke (admin).
pub async fn roles(State(app): State<Arc<App>>, viewer: Viewer) -> Response {
    if let Some(r) = viewer.require(&app, Role::Admin) {
        return r;
    }
    roles_page(&app, &viewer, &Done::default())
}

/// The roles page, with the outcome of a form just sent.
pub fn roles_page(app: &App, viewer: &Viewer, done: &Done) -> Response {
    let grants = match app.store().role_grants(auth::CHANNEL) {
        Ok(g) => g,
        Err(e) => return fail(app, viewer)(e),
    };
    let content = app.content();
    let t = T { content: &content, lang: &viewer.lang };
    let title = t.s("web_roles_title");
    let body = html! {
        div.table { table {
            thead { tr {
                th scope="col" { (t.s("web_col_user")) }
                th scope="col" { (t.s("web_col_role")) }
                th scope="col" { (t.s("web_col_granted_by")) }
            } }
            tbody {
                @for admin in &app.admins { tr { td { (admin) } td { "admin" } td { "ADMIN_IDS" } } }
                @for g in &grants { tr { td { (g.external_id) } td { (g.role) } td { (g.granted_by) " · " (format_time(g.granted_at)) } } }
            }
        } }
        h2 { (t.s("web_roles_change")) }
        form.filters method="post" action="/roles" {
            input type="hidden" name="csrf" value=(viewer.csrf);
            div.field {
                label for="role-user" { (t.s("web_col_user")) }
                input id="role-user" type="text" name="user" inputmode="numeric" pattern="[0-9]+" required;
            }
            div.field {
                label for="role-role" { (t.s("web_col_role")) }
                select id="role-role" name="role" { option value="staff" { "staff" } option value="agency" { "agency" } }
            }
            div.field {
                label for="role-action" { (t.s("web_roles_action")) }
                select id="role-action" name="action" {
                    option value="grant" { (t.s("web_roles_grant")) }
                    option value="revoke" { (t.s("web_roles_revoke")) }
                }
            }
            div.field { button type="submit" { (t.s("web_roles_apply")) } }
        }
    };
    let body = html! { (done_notices(done)) (body) };
    html_response(done.status(), layout(&t, Some(viewer), &title, body))
}
