//! The web desk over HTTP, in process: every route for every kind of viewer, sign-in links (once,
//! within 10 minutes, on a fixed clock), sessions that end when the role goes, CSRF refusals,
//! search, the streamed export, and every page text in the content.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use sme_advisor::config::Config;
use sme_advisor::content::Content;
use sme_advisor::desk::Role;
use sme_advisor::engine::{self, Input};
use sme_advisor::store::{InquiryFilter, Store};
use sme_advisor::web::{self, App, auth};

use crate::support;

pub const ADMIN: &str = "900";
pub const STAFF: &str = "101";
pub const AGENCY: &str = "102";
pub const NOBODY: &str = "103";
/// 2026-12-06 10:00 UTC.
pub const T0: i64 = 1_796_551_200;

pub fn content() -> Arc<Content> {
    static CONTENT: OnceLock<Arc<Content>> = OnceLock::new();
    CONTENT.get_or_init(|| Arc::new(support::load(&support::shipped_sources()).expect("the shipped content loads"))).clone()
}

/// A desk on a fresh database file, with a clock the test moves.
pub struct Desk {
    pub app: Arc<App>,
    pub router: Router,
    pub now: Arc<AtomicI64>,
    pub db: PathBuf,
}

impl Desk {
    pub fn new(name: &str) -> Desk {
        let dir = std::env::temp_dir().join(format!("sme-advisor-web-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Desk::on(&dir.join("db.sqlite3"), T0)
    }

    /// A desk on a database file (perhaps the one a running bot uses), starting at `now`.
    pub fn on(db: &std::path::Path, now: i64) -> Desk {
        let mut store = Store::open(db).unwrap();
        store.grant("telegram", STAFF, Role::Staff, "test", now).unwrap();
        store.grant("telegram", AGENCY, Role::Agency, "test", now).unwrap();
        let now = Arc::new(AtomicI64::new(now));
        let clock = now.clone();
        let root = support::root();
        let config = Config::from_lookup(|name| match name {
            "ADMIN_IDS" => Some(ADMIN.to_string()),
            "DIALOGS_DIR" => Some(root.join("dialogs").display().to_string()),
            "KNOWLEDGE_DIR" => Some(root.join("knowledge").display().to_string()),
            _ => None,
        })
        .unwrap();
        let app = Arc::new(App::new(
            Arc::new(Mutex::new(store)),
            Arc::new(RwLock::new(content())),
            &config,
            "http://desk.test",
            Arc::new(move || clock.load(Ordering::SeqCst)),
        ));
        Desk { router: web::router(app.clone()), app, now, db: db.to_path_buf() }
    }

    pub fn advance(&self, secs: i64) {
        self.now.fetch_add(secs, Ordering::SeqCst);
    }

    /// Logs free questions as users would ask them; returns their inquiry ids.
    pub fn ask(&self, questions: &[&str]) -> Vec<i64> {
        let content = content();
        let mut store = self.app.store();
        let now = self.now.load(Ordering::SeqCst);
        for (i, q) in questions.iter().enumerate() {
            store.turn("telegram", &format!("5{i}"), "en", now, |s| engine::step(&content, s, &Input::Text(q.to_string()), now)).unwrap();
        }
        let mut rows = store.inquiries(10_000).unwrap();
        rows.sort_by_key(|r| r.id);
        rows.iter().rev().take(questions.len()).rev().map(|r| r.id).collect()
    }

    pub fn link(&self, user: &str) -> Option<String> {
        let now = self.now.load(Ordering::SeqCst);
        auth::login_link(&mut self.app.store(), &self.app.admins, "http://desk.test", user, now).unwrap()
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, String, Vec<String>) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let cookies = response.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned(), cookies)
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::get(path);
        if let Some(c) = cookie {
            request = request.header(header::COOKIE, c);
        }
        let (status, body, _) = self.send(request.body(Body::empty()).unwrap()).await;
        (status, body)
    }

    pub async fn post(&self, path: &str, cookie: Option<&str>, form: &str) -> (StatusCode, String) {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            request = request.header(header::COOKIE, c);
        }
        let (status, body, _) = self.send(request.body(Body::from(form.to_string())).unwrap()).await;
        (status, body)
    }

    /// Signs a user in with a fresh link; returns the cookie and the session's CSRF token.
    pub async fn sign_in(&self, user: &str) -> (String, String) {
        let link = self.link(user).expect("the user holds a role");
        let path = link.strip_prefix("http://desk.test").unwrap();
        let (status, body, cookies) = self.send(Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let cookie = cookies[0].split(';').next().unwrap().to_string();
        let (_, page) = self.get("/knowledge", Some(&cookie)).await;
        (cookie, csrf_of(&page))
    }
}

pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}

#[derive(Clone, Copy, Debug)]
enum Who {
    SignedOut,
    NoRole,
    Staff,
    Agency,
    Admin,
}

#[tokio::test]
async fn every_route_answers_every_kind_of_viewer_with_the_expected_status() {
    let desk = Desk::new("routes");
    desk.ask(&["how do I get a loan for my farm"]);
    {
        let call = sme_advisor::broadcast::Call {
            provider: "UNCTAD".into(),
            countries: vec!["global".into()],
            sectors: vec!["any".into()],
            topics: vec!["financing".into()],
            deadline: "2027-01-31".into(),
            link: None,
            texts: ["en", "fr", "es", "pt"]
                .iter()
                .map(|l| {
                    (
                        l.to_string(),
                        sme_advisor::broadcast::CallText {
                            title: format!("Call {l}"),
                            offers: "Training".into(),
                            eligible: "Small firms".into(),
                            apply: "Ask the provider".into(),
                        },
                    )
                })
                .collect(),
        };
        desk.app.store().create_broadcast(&serde_json::to_string(&call).unwrap(), "agency 102", T0).unwrap();
    }
    let (staff, _) = desk.sign_in(STAFF).await;
    let (agency, _) = desk.sign_in(AGENCY).await;
    let (admin, _) = desk.sign_in(ADMIN).await;
    // A session of someone who holds no role (as after a revocation) counts for nothing.
    desk.app.store().web_create_session(&auth::token_hash("nobody-token"), "telegram", NOBODY, "c", T0).unwrap();
    let nobody = format!("{}=nobody-token", auth::COOKIE);
    use StatusCode as S;
    let (ok, forbidden, redirect, unauthorized) = (S::OK, S::FORBIDDEN, S::SEE_OTHER, S::UNAUTHORIZED);
    // route, then signed out, no role, staff, agency, admin.
    let table: &[(&str, [StatusCode; 5])] = &[
        ("/", [unauthorized, unauthorized, redirect, redirect, redirect]),
        ("/inquiries", [unauthorized, unauthorized, ok, forbidden, ok]),
        ("/inquiries?q=loan&period=7d&status=new&lang=en&kind=question&open=1&page=1", [unauthorized, unauthorized, ok, forbidden, ok]),
        ("/inquiries/1", [unauthorized, unauthorized, ok, forbidden, ok]),
        ("/inquiries/999", [unauthorized, unauthorized, S::NOT_FOUND, forbidden, S::NOT_FOUND]),
        ("/inquiries?period=fortnight", [unauthorized, unauthorized, S::BAD_REQUEST, forbidden, S::BAD_REQUEST]),
        ("/stats", [unauthorized, unauthorized, ok, forbidden, ok]),
        ("/stats?period=all", [unauthorized, unauthorized, ok, forbidden, ok]),
        ("/export.csv", [unauthorized, unauthorized, ok, forbidden, ok]),
        ("/knowledge", [unauthorized, unauthorized, ok, ok, ok]),
        ("/broadcasts", [unauthorized, unauthorized, forbidden, ok, ok]),
        ("/broadcasts/1", [unauthorized, unauthorized, forbidden, ok, ok]),
        ("/roles", [unauthorized, unauthorized, forbidden, forbidden, ok]),
        ("/logout", [unauthorized, unauthorized, ok, ok, ok]),
        ("/no-such-page", [S::NOT_FOUND; 5]),
    ];
    let viewers = [
        (Who::SignedOut, None),
        (Who::NoRole, Some(nobody.as_str())),
        (Who::Staff, Some(staff.as_str())),
        (Who::Agency, Some(agency.as_str())),
        (Who::Admin, Some(admin.as_str())),
    ];
    let mut wrong = Vec::new();
    for (path, expected) in table {
        for ((who, cookie), want) in viewers.iter().zip(expected) {
            let (got, body) = desk.get(path, *cookie).await;
            if got != *want {
                wrong.push(format!("{who:?} GET {path}: {got}, expected {want}\n{}", &body[..body.len().min(300)]));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // A role's pages say why they are closed, in the content's words.
    let (_, body) = desk.get("/roles", Some(&staff)).await;
    assert!(body.contains("This page is for another role."), "{body}");
    let (_, body) = desk.get("/inquiries", None).await;
    assert!(body.contains("send /web to the bot"), "{body}");
}

#[tokio::test]
async fn a_login_link_works_once_within_ten_minutes_for_someone_holding_a_role() {
    let desk = Desk::new("links");
    assert_eq!(desk.link(NOBODY), None, "no link for a user without a role");
    let link = desk.link(STAFF).unwrap();
    assert!(link.starts_with("http://desk.test/login/") && link.len() > 60, "{link}");
    let path = link.strip_prefix("http://desk.test").unwrap().to_string();
    // Only the hash is stored: the token is not in the database.
    let token = path.rsplit('/').next().unwrap().to_string();
    let raw = std::fs::read(&desk.db).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains(&token));

    let (status, body, cookies) = desk.send(Request::get(format!("{path}?next=/stats")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("url=/stats"), "{body}");
    let cookie = &cookies[0];
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"), "{cookie}");
    let (status, _) = desk.get(&path, None).await;
    assert_eq!(status, StatusCode::GONE, "a link works once");

    // Not after 10 minutes (the clock is fixed and moved by the test).
    let late = desk.link(STAFF).unwrap();
    desk.advance(600);
    let (status, body) = desk.get(late.strip_prefix("http://desk.test").unwrap(), None).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(body.contains("expired"), "{body}");
    // Just within 10 minutes it works.
    let fresh = desk.link(STAFF).unwrap();
    desk.advance(599);
    assert_eq!(desk.get(fresh.strip_prefix("http://desk.test").unwrap(), None).await.0, StatusCode::OK);

    // A link made while the user held a role does nothing once the role is gone.
    let revoked = desk.link(AGENCY).unwrap();
    desk.app.store().revoke("telegram", AGENCY, Role::Agency).unwrap();
    assert_eq!(desk.get(revoked.strip_prefix("http://desk.test").unwrap(), None).await.0, StatusCode::FORBIDDEN);
    // A made-up token, and another site as `next`.
    assert_eq!(desk.get("/login/0123456789abcdef", None).await.0, StatusCode::NOT_FOUND);
    let other = desk.link(ADMIN).unwrap();
    let (_, body) = desk.get(&format!("{}?next=//evil.example/", other.strip_prefix("http://desk.test").unwrap()), None).await;
    assert!(body.contains("url=/\"") && !body.contains("evil"), "{body}");
}

#[tokio::test]
async fn a_session_ends_with_its_role_after_twelve_idle_hours_and_on_sign_out() {
    let desk = Desk::new("sessions");
    let (cookie, _) = desk.sign_in(STAFF).await;
    assert_eq!(desk.get("/inquiries", Some(&cookie)).await.0, StatusCode::OK);
    desk.app.store().revoke("telegram", STAFF, Role::Staff).unwrap();
    assert_eq!(desk.get("/inquiries", Some(&cookie)).await.0, StatusCode::UNAUTHORIZED, "the cookie of a revoked user stops working");
    desk.app.store().grant("telegram", STAFF, Role::Staff, "test", T0).unwrap();
    assert_eq!(desk.get("/inquiries", Some(&cookie)).await.0, StatusCode::UNAUTHORIZED, "and stays dead when the role comes back");

    let (cookie, _) = desk.sign_in(STAFF).await;
    desk.advance(12 * 3600 - 1);
    assert_eq!(desk.get("/inquiries", Some(&cookie)).await.0, StatusCode::OK, "each request keeps it alive");
    desk.advance(12 * 3600);
    assert_eq!(desk.get("/inquiries", Some(&cookie)).await.0, StatusCode::UNAUTHORIZED, "12 hours idle end it");

    let (cookie, csrf) = desk.sign_in(ADMIN).await;
    assert_eq!(desk.post("/logout", Some(&cookie), &format!("csrf={csrf}")).await.0, StatusCode::OK);
    assert_eq!(desk.get("/inquiries", Some(&cookie)).await.0, StatusCode::UNAUTHORIZED);
    let audit = desk.app.store().audit_lines(10).unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert!(actions.contains(&"sign_out") && actions.contains(&"sign_in"), "{actions:?}");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let desk = Desk::new("csrf");
    let (cookie, csrf) = desk.sign_in(STAFF).await;
    let (other, _) = desk.sign_in(ADMIN).await;
    for form in [String::new(), "csrf=".to_string(), "csrf=0000".to_string(), format!("csrf={csrf}x")] {
        let (status, body) = desk.post("/logout", Some(&cookie), &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}");
        assert!(body.contains("did not come from the desk"), "{body}");
    }
    // Another session's token is not this session's.
    let (_, admin_page) = desk.get("/knowledge", Some(&other)).await;
    assert_eq!(desk.post("/logout", Some(&cookie), &format!("csrf={}", csrf_of(&admin_page))).await.0, StatusCode::FORBIDDEN);
    assert_eq!(desk.get("/inquiries", Some(&cookie)).await.0, StatusCode::OK, "a refused form changed nothing");
    assert_eq!(desk.post("/logout", None, "csrf=x").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_inbox_searches_the_question_text_and_pages() {
    let desk = Desk::new("search");
    let ids =
        desk.ask(&["how do I bake sourdough bread", "credit for coffee farmers in Kenya", "Où trouver un crédit pour ma boulangerie ?"]);
    let (cookie, _) = desk.sign_in(STAFF).await;
    let (status, body) = desk.get("/inquiries?q=sourdough", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("sourdough") && !body.contains("coffee farmers"), "{body}");
    // Accents are folded and the last word may be the start of one.
    let (_, body) = desk.get("/inquiries?q=boulang", Some(&cookie)).await;
    assert!(body.contains(&format!("/inquiries/{}", ids[2])) && !body.contains("sourdough"), "{body}");
    let (_, body) = desk.get("/inquiries?q=ou+credit", Some(&cookie)).await;
    assert!(body.contains("boulangerie"), "{body}");
    // Operators of the search syntax are read as words, never as syntax errors.
    assert_eq!(desk.get("/inquiries?q=%22NEAR(%20OR%20*", Some(&cookie)).await.0, StatusCode::OK);
    // Open ones first: the unanswered bread question comes before a newer answered one.
    rusqlite::Connection::open(&desk.db).unwrap().execute("UPDATE inquiries SET status = 'answered' WHERE id = ?1", [ids[1]]).unwrap();
    let (_, body) = desk.get("/inquiries", Some(&cookie)).await;
    let (bread, credit) = (body.find("sourdough").unwrap(), body.find("coffee farmers").unwrap());
    assert!(bread < credit, "open questions first");
    // The inquiry page shows the question and how the matcher reads it.
    let (_, page) = desk.get(&format!("/inquiries/{}", ids[0]), Some(&cookie)).await;
    assert!(page.contains("how do I bake sourdough bread") && page.contains("decision:"), "{page}");
}

#[tokio::test]
async fn the_export_is_the_command_line_csv_streamed_in_batches() {
    let desk = Desk::new("export");
    desk.ask(&["loan, credit \"and\" more", "line one\nline two", "=1+2 looks like a formula", "قرض لمزرعتي"]);
    {
        // More rows than one batch, straight into the table.
        let conn = rusqlite::Connection::open(&desk.db).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..(web::pages::EXPORT_BATCH * 2 + 17) {
            let status = ["new", "answered", "needs_human", "resolved"][i % 4];
            tx.execute(
                "INSERT INTO inquiries (at, lang, kind, text, matched, confidence, answered, status) VALUES (?1, 'en', 'question', ?2, '', 0.5, ?3, ?4)",
                rusqlite::params![T0 - (i as i64 % 50) * 3600, format!("question number {i}"), status == "answered", status],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let (cookie, _) = desk.sign_in(STAFF).await;
    let (status, body) = desk.get("/export.csv", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let rows = desk.app.store().query_inquiries(&InquiryFilter::default(), usize::MAX).unwrap();
    assert_eq!(rows.len(), web::pages::EXPORT_BATCH * 2 + 17 + 4);
    assert!(body == sme_advisor::desk::to_csv(&rows), "the web export is the command line's CSV");
    // With filters.
    let (_, body) = desk.get("/export.csv?status=needs_human&period=24h", Some(&cookie)).await;
    let now = T0;
    let filter = InquiryFilter {
        status: Some(sme_advisor::desk::Status::NeedsHuman),
        since: Some(now - 24 * 3600),
        until: Some(now + 1),
        ..InquiryFilter::default()
    };
    let period = sme_advisor::desk::Period::parse("24h", now).unwrap();
    let filter = InquiryFilter { since: period.since, until: period.until, ..filter };
    let rows = desk.app.store().query_inquiries(&filter, usize::MAX).unwrap();
    assert!(!rows.is_empty());
    assert_eq!(body, sme_advisor::desk::to_csv(&rows));
}

#[tokio::test]
async fn the_stats_page_draws_its_charts_and_the_knowledge_page_lists_every_entry() {
    let desk = Desk::new("stats");
    desk.ask(&["how do I bake sourdough bread", "credit for coffee farmers in Kenya"]);
    desk.advance(86_400);
    desk.ask(&["how do I bake sourdough bread?"]);
    let (cookie, _) = desk.sign_in(STAFF).await;
    let (status, body) = desk.get("/stats?period=7d", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    for title in ["Inquiries per day", "Top topics", "Top unanswered phrasings", "By country", "By language"] {
        assert!(body.contains(title), "{title}");
    }
    assert!(body.matches("<svg").count() >= 5, "{body}");
    // The two wordings of the bread question count as one phrasing, asked twice.
    assert!(body.contains("how do i bake sourdough bread (2)"), "{body}");
    let (_, body) = desk.get("/stats?period=2020-01-01..2020-01-02", Some(&cookie)).await;
    assert!(body.contains("No inquiries in this period."));

    let (_, body) = desk.get("/knowledge", Some(&cookie)).await;
    for entry in &content().entries {
        assert!(body.contains(&format!("<code>{}</code>", entry.id)), "{}", entry.id);
    }
    assert!(body.contains("never") || body.contains("2026-"), "status dates are shown");
}

#[test]
fn every_page_text_is_in_the_content_in_every_language() {
    let content = content();
    let mut keys = std::collections::BTreeSet::new();
    for file in std::fs::read_dir(support::root().join("src/web")).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for part in text.split("\"web_").skip(1) {
            let key: String = part.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if part[key.len()..].starts_with('"') {
                keys.insert(format!("web_{key}"));
            }
        }
    }
    assert!(keys.len() > 40, "{keys:?}");
    for key in &keys {
        let texts = content.messages.get(key).unwrap_or_else(|| panic!("`{key}` is not a message of dialogs/"));
        for lang in ["en", "fr", "es", "pt"] {
            assert!(texts.get(lang).is_some_and(|t| !t.is_empty()), "`{key}` has no `{lang}` text");
        }
        assert!(sme_advisor::content::REQUIRED_MESSAGES.iter().any(|(k, _)| k == key), "`{key}` is not required by the loader");
    }
}

#[tokio::test]
async fn staff_reply_resolve_and_teach_through_the_act_layer_and_every_action_is_audited() {
    let desk = Desk::new("actions");
    let ids = desk.ask(&["how do I bake sourdough bread", "credit for coffee farmers in Kenya"]);
    let (cookie, csrf) = desk.sign_in(STAFF).await;
    let path = format!("/inquiries/{}", ids[0]);
    // A reply goes to the user's Telegram chat through the outbox, and into the history.
    let (status, page) =
        desk.post(&format!("{path}/reply"), Some(&cookie), &format!("csrf={csrf}&text=Try+the+bakers%27+association")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("staff_reply") && page.contains("Try the bakers' association"), "{page}");
    assert!(page.contains("The reply is on its way"), "{page}");
    let queued: Vec<(i64, String)> = {
        let conn = rusqlite::Connection::open(&desk.db).unwrap();
        let mut stmt = conn.prepare("SELECT chat_id, payload FROM outbox").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].0, 50, "to the asker's chat");
    assert!(queued[0].1.contains("An advisor answers:") && queued[0].1.contains("bakers"), "{}", queued[0].1);
    // An empty reply, a reply without the CSRF token, and a reply by an agency change nothing.
    assert_eq!(desk.post(&format!("{path}/reply"), Some(&cookie), &format!("csrf={csrf}&text=+")).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(desk.post(&format!("{path}/reply"), Some(&cookie), "text=hello").await.0, StatusCode::FORBIDDEN);
    let (agency, agency_csrf) = desk.sign_in(AGENCY).await;
    assert_eq!(desk.post(&format!("{path}/reply"), Some(&agency), &format!("csrf={agency_csrf}&text=hi")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(desk.post(&format!("{path}/resolve"), Some(&agency), &format!("csrf={agency_csrf}")).await.0, StatusCode::FORBIDDEN);

    // Resolve.
    let (status, page) = desk.post(&format!("{path}/resolve"), Some(&cookie), &format!("csrf={csrf}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("Inquiry #{} is resolved.", ids[0])), "{page}");
    assert_eq!(desk.app.store().inquiry(ids[0]).unwrap().unwrap().status, sme_advisor::desk::Status::Resolved);
    assert_eq!(desk.post("/inquiries/999/resolve", Some(&cookie), &format!("csrf={csrf}")).await.0, StatusCode::NOT_FOUND);

    // Teaching the matcher: the checks of /learn refuse an example that would not reach its entry.
    let (status, page) =
        desk.post(&format!("/inquiries/{}/learn", ids[0]), Some(&cookie), &format!("csrf={csrf}&entry=no-such-entry")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");

    // Roles: only admins, and a revoked user's cookie stops working.
    assert_eq!(desk.post("/roles", Some(&cookie), &format!("csrf={csrf}&action=grant&user=555&role=staff")).await.0, StatusCode::FORBIDDEN);
    let (admin, admin_csrf) = desk.sign_in(ADMIN).await;
    let (status, page) = desk.post("/roles", Some(&admin), &format!("csrf={admin_csrf}&action=grant&user=555&role=staff")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("555") && page.contains("staff"), "{page}");
    assert_eq!(
        desk.post("/roles", Some(&admin), &format!("csrf={admin_csrf}&action=grant&user=@bob&role=staff")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        desk.post("/roles", Some(&admin), &format!("csrf={admin_csrf}&action=grant&user=5&role=admin")).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, _) = desk.post("/roles", Some(&admin), &format!("csrf={admin_csrf}&action=revoke&user={STAFF}&role=staff")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(desk.get("/inquiries", Some(&cookie)).await.0, StatusCode::UNAUTHORIZED);

    let audit = desk.app.store().audit_lines(50).unwrap();
    let lines: Vec<String> = audit.iter().map(|a| format!("{} {} {} {}", a.actor, a.action, a.target, a.detail)).collect();
    for expected in [
        format!("staff {STAFF} reply {} done", ids[0]),
        format!("staff {STAFF} resolve {} done", ids[0]),
        "staff 101 resolve 999 refused".to_string(),
        format!("staff {STAFF} learn {} refused", ids[0]),
        format!("staff {ADMIN} grant 555 staff done"),
        format!("staff {ADMIN} revoke {STAFF} staff done"),
    ] {
        assert!(lines.contains(&expected), "{expected} not in {lines:#?}");
    }
}

#[tokio::test]
async fn attaching_a_wording_as_an_example_stores_it_answers_it_at_once_and_audits_it() {
    let desk = Desk::new("learn");
    let phrase = "who helps a new watch workshop grow";
    let ids = desk.ask(&[phrase, "what is empretec"]);
    let (id, clash) = (ids[0], ids[1]);
    let matched = |content: &Content, user: &str| {
        let now = desk.now.load(Ordering::SeqCst);
        let mut store = desk.app.store();
        store.turn("telegram", user, "en", now, |s| engine::step(content, s, &Input::Text(phrase.to_string()), now)).unwrap();
        let rows = store.inquiries(10_000).unwrap();
        rows.into_iter().max_by_key(|r| r.id).map(|r| (r.answered, r.matched)).unwrap()
    };
    let before = matched(&desk.app.content(), "70");
    assert!(!before.1.split(',').any(|m| m == "entry:genilem"), "not answered with Genilem before: {before:?}");
    let (cookie, csrf) = desk.sign_in(STAFF).await;
    let (_, page) = desk.get(&format!("/inquiries/{id}"), Some(&cookie)).await;
    assert!(page.contains(&format!("action=\"/inquiries/{id}/learn\"")), "the unanswered question offers the action: {page}");
    assert!(
        page.contains("<select id=\"learn-entry\" name=\"entry\" required>") && page.contains("<option value=\"genilem\">"),
        "any entry can be chosen, also for a question the matcher declined: {page}"
    );

    // Refused: an entry that does not exist, and a wording that would steal another entry's
    // question; nothing is stored and the content stays.
    let path = format!("/inquiries/{id}/learn");
    let form = |entry: &str| format!("csrf={csrf}&entry={entry}");
    let content_before = desk.app.content();
    let (status, page) = desk.post(&path, Some(&cookie), &form("no-such-entry")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    let (status, page) = desk.post(&format!("/inquiries/{clash}/learn"), Some(&cookie), &form("genilem")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("Not added:"), "the reason is shown: {page}");
    assert!(desk.app.store().learned_examples().unwrap().is_empty());
    assert!(Arc::ptr_eq(&content_before, &desk.app.content()), "a refused example changes no content");
    // Refused for an agency, and without the CSRF token.
    let (agency, agency_csrf) = desk.sign_in(AGENCY).await;
    assert_eq!(desk.post(&path, Some(&agency), &format!("csrf={agency_csrf}&entry=genilem")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(desk.post(&path, Some(&cookie), "entry=genilem").await.0, StatusCode::FORBIDDEN);
    assert!(desk.app.store().learned_examples().unwrap().is_empty());

    // Attached: the page says so, the example is stored with the inquiry's language, the history
    // shows it, and the same wording is answered with the entry at once.
    let (status, page) = desk.post(&path, Some(&cookie), &form("genilem")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("as an example question of") && page.contains("It is answered from now on"), "{page}");
    let learned = desk.app.store().learned_examples().unwrap();
    assert_eq!(learned.len(), 1);
    assert_eq!((learned[0].entry_id.as_str(), learned[0].lang.as_str(), learned[0].text.as_str()), ("genilem", "en", phrase));
    let (_, page) = desk.get(&format!("/inquiries/{id}"), Some(&cookie)).await;
    assert!(page.contains("learned") && page.contains("genilem"), "the history shows it: {page}");
    let events = desk.app.store().events(id).unwrap();
    assert!(events.iter().any(|e| e.kind == "learned" && e.text == "genilem" && e.actor == format!("staff {STAFF}")), "{events:?}");
    let after = matched(&desk.app.content(), "71");
    assert!(after.0 && after.1.split(',').next() == Some("entry:genilem"), "answered with Genilem now: {after:?}");

    let audit = desk.app.store().audit_lines(50).unwrap();
    let lines: Vec<String> = audit.iter().map(|a| format!("{} {} {} {}", a.actor, a.action, a.target, a.detail)).collect();
    for expected in [
        format!("staff {STAFF} learn {id} refused"),
        format!("staff {STAFF} learn {clash} refused"),
        format!("staff {STAFF} learn {id} done"),
    ] {
        assert!(lines.contains(&expected), "{expected} not in {lines:#?}");
    }
    assert_eq!(lines.iter().filter(|l| l.ends_with(" done")).count(), 1, "only the one example was attached: {lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_written_on_the_web_reaches_the_user_through_telegram_and_their_answer_shows_on_the_page() {
    use crate::fake_bot_api::FakeBotApi;
    use crate::telegram::{Bot, TOKEN, WAIT, press, wait_text};
    const GROUP: i64 = -100_501;
    let api = FakeBotApi::start(TOKEN).await;
    api.add_chat(GROUP);
    let bot = Bot::start(&api, "web-relay", &[("STAFF_CHAT_ID", &GROUP.to_string())]);
    let user = 9200;
    // A user asks for a human advisor; the handoff is posted to the staff group.
    api.push_text(user, user, "en", "how do I bake sourdough bread");
    wait_text(&api, user, "human advisor").await;
    press(&api, user, "Ask a human advisor");
    wait_text(&api, user, "What should the advisor know?").await;
    api.push_text(user, user, "en", "I want an oven loan for my bakery in Kampala");
    wait_text(&api, user, "passed your question to a human advisor").await;
    api.wait_until("the bot records its post", WAIT, |_| {
        bot.db().query_row("SELECT count(*) FROM handoff_posts", [], |r| r.get::<_, i64>(0)).unwrap_or(0) >= 1
    })
    .await;
    let id: i64 = bot.db().query_row("SELECT inquiry_id FROM handoff_posts LIMIT 1", [], |r| r.get(0)).unwrap();

    // Staff answer on the web desk, on the bot's database; the running bot delivers the reply.
    let desk = Desk::on(&bot.dir.join("bot.sqlite3"), sme_advisor::clock::now());
    let (cookie, csrf) = desk.sign_in(STAFF).await;
    let (status, page) =
        desk.post(&format!("/inquiries/{id}/reply"), Some(&cookie), &format!("csrf={csrf}&text=Bring+your+sales+book+to+the+bank.")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    wait_text(&api, user, "An advisor answers:\nBring your sales book to the bank.").await;

    // The user's answer comes back into the thread and shows on the inquiry's page.
    api.push_text(user, user, "en", "Thank you, which documents do I need?");
    wait_text(&api, user, "Sent to your advisor").await;
    let (_, page) = desk.get(&format!("/inquiries/{id}"), Some(&cookie)).await;
    assert!(page.contains("user_reply") && page.contains("Thank you, which documents do I need?"), "{page}");
}

#[tokio::test]
async fn an_agency_creates_previews_tests_schedules_and_cancels_a_call_on_the_web() {
    let desk = Desk::new("calls");
    let (agency, csrf) = desk.sign_in(AGENCY).await;
    let (status, page) = desk.get("/broadcasts", Some(&agency)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("New programme call") && page.contains("name=\"en_title\""), "{page}");
    // The checks of the call file format, with their messages.
    let (status, page) = desk
        .post(
            "/broadcasts",
            Some(&agency),
            &format!("csrf={csrf}&provider=UNCTAD&countries=ugnada&sectors=any&deadline=2027-01-31&en_title=T"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("was not saved") && page.contains("did you mean `uganda`") && page.contains("topics"), "{page}");
    assert!(page.contains("value=\"UNCTAD\""), "the form keeps what was typed");
    let form = format!(
        "csrf={csrf}&provider=UNCTAD&countries=global&sectors=any&topic_financing=1&deadline=2027-01-31&link=https%3A%2F%2Functad.org%2F\
         &en_title=Supplier+grants&en_offers=Grants+for+suppliers&en_eligible=Small+firms&en_apply=Ask+the+provider"
    );
    let (staff, staff_csrf) = desk.sign_in(STAFF).await;
    assert_eq!(desk.post("/broadcasts", Some(&staff), &form.replace(&csrf, &staff_csrf)).await.0, StatusCode::FORBIDDEN);
    let request = Request::post("/broadcasts")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &agency)
        .body(Body::from(form))
        .unwrap();
    let response = desk.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_string();
    let (status, page) = desk.get(&location, Some(&agency)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Supplier grants") && page.contains("It reaches 0 subscribers today."), "{page}");

    // A test to the agency's own chat, through the outbox.
    let (status, page) = desk.post(&format!("{location}/test"), Some(&agency), &format!("csrf={csrf}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("The test is on its way"), "{page}");
    let chats: Vec<i64> = {
        let conn = rusqlite::Connection::open(&desk.db).unwrap();
        let mut stmt = conn.prepare("SELECT chat_id FROM outbox").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(chats, vec![AGENCY.parse::<i64>().unwrap()]);

    // A time in the past is refused; now schedules it; then it is cancelled.
    assert_eq!(
        desk.post(&format!("{location}/send"), Some(&agency), &format!("csrf={csrf}&when=2020-01-01+09%3A00")).await.0,
        StatusCode::BAD_REQUEST
    );
    let request = Request::post(format!("{location}/send"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &agency)
        .body(Body::from(format!("csrf={csrf}&when=")))
        .unwrap();
    let response = desk.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::REFRESH], "5", "the page follows the progress");
    let (status, page) = desk.post(&format!("{location}/cancel"), Some(&agency), &format!("csrf={csrf}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("cancelled"), "{page}");
    assert_eq!(desk.post(&format!("{location}/cancel"), Some(&agency), &format!("csrf={csrf}")).await.0, StatusCode::CONFLICT);
    assert_eq!(desk.post(&format!("{location}/cancel"), Some(&agency), "csrf=nope").await.0, StatusCode::FORBIDDEN);

    let actions: Vec<String> = desk.app.store().audit_lines(50).unwrap().iter().map(|a| format!("{} {}", a.action, a.detail)).collect();
    for expected in
        ["broadcast_create done", "broadcast_test done", "broadcast_send done", "broadcast_cancel done", "broadcast_cancel refused"]
    {
        assert!(actions.iter().any(|a| a == expected), "{expected} not in {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_web_listen_serves_the_desk_on_the_bots_own_database() {
    use crate::fake_bot_api::FakeBotApi;
    use crate::telegram::{Bot, TOKEN, WAIT, wait_text};
    let api = FakeBotApi::start(TOKEN).await;
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let bot = Bot::start(&api, "web-in-serve", &[("WEB_LISTEN", &addr.to_string()), ("WEB_PUBLIC_URL", &format!("http://{addr}"))]);
    // A question asked on Telegram is logged in the bot's database.
    api.push_text(9400, 9400, "en", "where can a small bakery get a loan for an oven");
    api.wait_until("the question is logged", WAIT, |_| {
        bot.db().query_row("SELECT count(*) FROM inquiries WHERE text LIKE '%small bakery%'", [], |r| r.get::<_, i64>(0)).unwrap_or(0) == 1
    })
    .await;
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let mut signed_out = None;
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/inquiries")).send().await {
            signed_out = Some(response.status().as_u16());
            break;
        }
        tokio::time::sleep(WAIT / 100).await;
    }
    assert_eq!(signed_out, Some(401), "serve answers on WEB_LISTEN, and a signed-out visitor is asked to sign in");
    // A sign-in link made on the same database works on the desk that serve runs.
    let desk = Desk::on(&bot.dir.join("bot.sqlite3"), sme_advisor::clock::now());
    let link = desk.link(STAFF).expect("staff hold a role");
    let path = link.strip_prefix("http://desk.test").unwrap();
    let response = http.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let cookie = response.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().split(';').next().unwrap().to_string();
    let page = http.get(format!("{base}/inquiries")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("small bakery get a loan"), "the desk shows the bot's inquiries: {page}");

    // `/web` in Telegram: a link for someone who holds a role, in a private chat only.
    let staff: i64 = STAFF.parse().unwrap();
    api.push_text(staff, staff, "en", "/web");
    wait_text(&api, staff, "sign-in link to the web desk").await;
    let text = api.messages(staff).last().and_then(|m| m.plain_text.clone()).unwrap();
    let path = text.split(&base).nth(1).expect("the link is on WEB_PUBLIC_URL").split_whitespace().next().unwrap().to_string();
    let response = http.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "the link from /web signs in");
    assert!(response.headers().get("set-cookie").is_some());
    let again = http.get(format!("{base}{path}")).send().await.unwrap();
    assert_ne!(again.status().as_u16(), 200, "a link works once");
    api.push_text(9401, 9401, "en", "/web");
    wait_text(&api, 9401, "This command is for staff.").await;
    assert!(api.messages(9401).iter().all(|m| !m.plain_text.clone().unwrap_or_default().contains("/login/")));
    const GROUP: i64 = -100_777;
    api.add_chat(GROUP);
    api.push_text(GROUP, staff, "en", "/web");
    wait_text(&api, GROUP, "private chat").await;
    assert!(api.messages(GROUP).iter().all(|m| !m.plain_text.clone().unwrap_or_default().contains("/login/")), "no link in a group");
}
