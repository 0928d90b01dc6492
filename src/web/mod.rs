//! The web desk: server-rendered pages for staff, agencies and admins on the bot's database.
//!
//! `sme-advisor web` serves it alone (no Telegram token needed). Pages are HTML built with maud,
//! a little CSS, no JavaScript. Every sentence a page shows comes from the content's `web_*`
//! messages (`dialogs/web.toml`), in the viewer's language.
//!
//! Signing in: a one-time link (`sme-advisor web login-link USER_ID`, or `/web` in Telegram)
//! works once, within 10 minutes, for a user who holds a role at that moment, and opens a session:
//! a random token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind https) that expires
//! after 12 hours idle, on sign-out, or as soon as the user holds no role. Only hashes of tokens
//! are stored. Every request reads the viewer's roles again; every form that changes something
//! carries the session's CSRF token; staff actions are written to the audit log.
//!
//! - [`auth`]: tokens, cookies, sessions, the viewer of a request, role and CSRF checks.
//! - [`pages`]: the handlers and their HTML.
//! - [`actions`]: the forms that change something, each run through the act layer.
//!
//! The charts of `/stats` are drawn by [`crate::charts`], which also draws Telegram's PNG.

pub mod actions;
pub mod auth;
pub mod pages;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};

use crate::config::Config;
use crate::content::{self, Content};
use crate::engine::Timestamp;
use crate::store::{Migrate, Store};

/// The default address of `sme-advisor web`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// A sign-in link works this long (seconds).
pub const LOGIN_LINK_SECS: i64 = 10 * 60;
/// A session ends after this long without a request (seconds).
pub const SESSION_IDLE_SECS: i64 = 12 * 3600;
/// Inquiries per page of the inbox.
pub const INBOX_PAGE: usize = 50;

/// Where the time comes from: the clock in production, a fixed value in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// What every handler shares.
pub struct App {
    pub store: Arc<Mutex<Store>>,
    pub content: Arc<RwLock<Arc<Content>>>,
    /// Telegram user ids of admins (`ADMIN_IDS`).
    pub admins: Vec<i64>,
    /// The content folders, read again by the act layer to check an example question.
    pub dialogs_dir: PathBuf,
    pub knowledge_dir: PathBuf,
    /// `BROADCAST_RATE`, for progress estimates.
    pub broadcast_rate: f64,
    /// `TIME_ZONE`: the zone a scheduled call's time is read in when it names none.
    pub time_zone: jiff::tz::TimeZone,
    /// The address people open, e.g. `https://desk.example.org` (`WEB_PUBLIC_URL`); links are
    /// built on it and cookies are `Secure` when it is https.
    pub public_url: String,
    pub clock: Clock,
}

impl App {
    pub fn new(store: Arc<Mutex<Store>>, content: Arc<RwLock<Arc<Content>>>, config: &Config, public_url: &str, clock: Clock) -> App {
        App {
            store,
            content,
            admins: config.admin_ids.clone(),
            dialogs_dir: config.dialogs_dir.clone(),
            knowledge_dir: config.knowledge_dir.clone(),
            broadcast_rate: config.broadcast_rate,
            time_zone: config.time_zone.clone(),
            public_url: public_url.trim_end_matches('/').to_string(),
            clock,
        }
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// The content in use now.
    pub fn content(&self) -> Arc<Content> {
        self.content.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The store, even after a panic elsewhere poisoned its lock (its transactions are atomic).
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// The desk's routes (the addresses are a contract others script against).
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/login/{token}", get(pages::login))
        .route("/logout", get(pages::logout_page).post(pages::logout))
        .route("/inquiries", get(pages::inbox))
        .route("/inquiries/{id}", get(pages::inquiry))
        .route("/inquiries/{id}/reply", post(actions::reply))
        .route("/inquiries/{id}/resolve", post(actions::resolve))
        .route("/inquiries/{id}/learn", post(actions::learn))
        .route("/stats", get(pages::stats))
        .route("/export.csv", get(pages::export))
        .route("/knowledge", get(pages::knowledge))
        .route("/broadcasts", get(pages::broadcasts).post(actions::create_broadcast))
        .route("/broadcasts/{id}", get(pages::broadcast))
        .route("/broadcasts/{id}/test", post(actions::test_broadcast))
        .route("/broadcasts/{id}/send", post(actions::send_broadcast))
        .route("/broadcasts/{id}/cancel", post(actions::cancel_broadcast))
        .route("/roles", get(pages::roles).post(actions::roles))
        .route("/style.css", get(pages::style))
        .fallback(pages::not_found)
        .with_state(app)
}

/// Settings of the web desk, from the environment or flags.
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub listen: SocketAddr,
    pub public_url: String,
}

impl WebSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<WebSettings> {
        let listen_text = lookup("WEB_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| anyhow::anyhow!("WEB_LISTEN: `{listen_text}` is not an address with a port, such as 127.0.0.1:8080"))?;
        let public_url = match lookup("WEB_PUBLIC_URL") {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => url.trim_end_matches('/').to_string(),
            Some(url) => anyhow::bail!("WEB_PUBLIC_URL: `{url}` must start with http:// or https://"),
            None => format!("http://{listen}"),
        };
        Ok(WebSettings { listen, public_url })
    }
}

/// `sme-advisor web [login-link USER_ID]`.
#[derive(clap::Args)]
pub struct WebArgs {
    #[command(subcommand)]
    pub command: Option<WebCommand>,
}

#[derive(clap::Subcommand)]
pub enum WebCommand {
    /// Print a one-time sign-in link for a Telegram user who holds a role (works once, for 10 minutes)
    LoginLink { user_id: String },
}

/// Runs `sme-advisor web`: serves the desk, or prints a sign-in link.
pub fn cli(config: &Config, args: WebArgs, lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<ExitCode> {
    let settings = WebSettings::from_lookup(&lookup)?;
    let mut store = Store::open_with(&config.database_path, Migrate::No)
        .with_context(|| format!("cannot open the database {}", config.database_path.display()))?;
    match args.command {
        Some(WebCommand::LoginLink { user_id }) => {
            let now = crate::clock::now();
            match auth::login_link(&mut store, &config.admin_ids, &settings.public_url, &user_id, now)? {
                Some(link) => {
                    println!("{link}");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!(
                        "error: user {user_id} holds no role; an admin grants one first (sme-advisor roles grant {user_id} staff), or add the id to ADMIN_IDS"
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        None => {
            let extras = store.learned_examples()?;
            let content = content::load_dirs_with(&config.dialogs_dir, &config.knowledge_dir, &extras).map_err(|diags| {
                let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("the content has {} problem(s); run `sme-advisor check`:\n{}", diags.len(), lines.join("\n"))
            })?;
            let app = App::new(
                Arc::new(Mutex::new(store)),
                Arc::new(RwLock::new(Arc::new(content))),
                config,
                &settings.public_url,
                Arc::new(crate::clock::now),
            );
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(settings.listen)
                    .await
                    .with_context(|| format!("WEB_LISTEN: cannot listen on {}", settings.listen))?;
                eprintln!(
                    "the web desk is at {}; sign in with a link from `sme-advisor web login-link USER_ID` or /web in Telegram",
                    settings.public_url
                );
                serve(listener, Arc::new(app), async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Serves the desk on a listener until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await.context("the web desk stopped")?;
    Ok(())
}
