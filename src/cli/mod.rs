//! The `sme-advisor` command line: its arguments, and the subcommands that run on the database.
//!
//! `main.rs` parses, sets up logging, calls [`run`] and prints errors. The commands that act
//! (roles, programme calls) call the act layer like the Telegram desk does ([`crate::act`]).

mod desk;
mod ops;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{self, Config, ServeSettings};
use crate::{telegram, terminal};

use ops::{
    check, learned, links, load_content, load_for_matching, migrate, open_for_serve, open_store, quarantine, quiet_panics, shutdown_signal,
};

#[derive(Parser)]
#[command(
    name = "sme-advisor",
    version,
    about = "Advice for small businesses on services, financing and linkage programmes",
    after_help = "Every setting can come from the environment or a .env file in the working folder (see .env.example); a flag wins over both."
)]
pub struct Cli {
    #[command(flatten)]
    pub env: EnvArgs,
    #[command(subcommand)]
    command: Command,
}

/// The settings of `.env.example`, each also a flag. Values are validated by `config`, which
/// reads them through [`EnvArgs::lookup`]; secrets are never shown in `--help`.
#[derive(clap::Args)]
pub struct EnvArgs {
    /// The SQLite database file
    #[arg(long = "database", env = "DATABASE_PATH", global = true)]
    database_path: Option<String>,
    /// Folder of guided conversations
    #[arg(long = "dialogs", env = "DIALOGS_DIR", global = true)]
    dialogs_dir: Option<String>,
    /// Folder of knowledge entries
    #[arg(long = "knowledge", env = "KNOWLEDGE_DIR", global = true)]
    knowledge_dir: Option<String>,
    /// The bot token from @BotFather (serve); prefer the environment to a flag
    #[arg(long, env = "TELOXIDE_TOKEN", global = true, hide_env_values = true)]
    teloxide_token: Option<String>,
    /// Another Bot API server
    #[arg(long, env = "TELOXIDE_API_URL", global = true)]
    teloxide_api_url: Option<String>,
    /// Comma-separated Telegram user ids of admins
    #[arg(long, env = "ADMIN_IDS", global = true)]
    admin_ids: Option<String>,
    /// The staff group for handoff requests
    #[arg(long, env = "STAFF_CHAT_ID", global = true, allow_hyphen_values = true)]
    staff_chat_id: Option<String>,
    /// Delete inquiries older than this many days
    #[arg(long, env = "RETENTION_DAYS", global = true)]
    retention_days: Option<String>,
    /// Programme-call messages per second
    #[arg(long, env = "BROADCAST_RATE", global = true)]
    broadcast_rate: Option<String>,
    /// Cap on the database size in megabytes
    #[arg(long, env = "DATABASE_MAX_MB", global = true)]
    database_max_mb: Option<String>,
    /// Time zone for schedules without one, e.g. Africa/Nairobi
    #[arg(long, env = "TIME_ZONE", global = true)]
    time_zone: Option<String>,
    /// Webhook mode: the public https address
    #[arg(long, env = "WEBHOOK_URL", global = true)]
    webhook_url: Option<String>,
    /// Webhook mode: the local listen address
    #[arg(long, env = "WEBHOOK_LISTEN", global = true)]
    webhook_listen: Option<String>,
    /// Webhook mode: the secret Telegram sends
    #[arg(long, env = "WEBHOOK_SECRET", global = true, hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Chats handled in parallel
    #[arg(long, env = "WORKERS", global = true)]
    workers: Option<String>,
    /// Seconds one Bot API call may take
    #[arg(long, env = "BOT_API_TIMEOUT_SECS", global = true)]
    bot_api_timeout_secs: Option<String>,
    /// Messages a second over all chats (Telegram allows about 30)
    #[arg(long, env = "SEND_RATE", global = true)]
    send_rate: Option<String>,
    /// Messages a second to one chat after a burst of 3 (Telegram allows about 1)
    #[arg(long, env = "CHAT_RATE", global = true)]
    chat_rate: Option<String>,
    /// Address for /healthz, /readyz and /metrics
    #[arg(long, env = "METRICS_LISTEN", global = true)]
    metrics_listen: Option<String>,
    /// /readyz fails when a worker is on one update longer than this (seconds)
    #[arg(long, env = "WORKER_STUCK_SECS", global = true)]
    worker_stuck_secs: Option<String>,
    /// Log format
    #[arg(long, env = "LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or sme_advisor=debug
    #[arg(long = "log", env = "RUST_LOG", global = true)]
    pub rust_log: Option<String>,
    /// The web desk's listen address (sme-advisor web)
    #[arg(long, env = "WEB_LISTEN", global = true)]
    web_listen: Option<String>,
    /// The web desk's public address, for sign-in links behind a proxy
    #[arg(long, env = "WEB_PUBLIC_URL", global = true)]
    web_public_url: Option<String>,
    /// For the test suite only: 1 enables hooks that force a panic or a stall
    #[arg(long, env = "SME_ADVISOR_TEST_HOOKS", global = true, hide = true)]
    sme_advisor_test_hooks: Option<String>,
}

impl EnvArgs {
    /// The value of a setting, by its environment name; an empty value counts as unset.
    fn lookup(&self, name: &str) -> Option<String> {
        let value = match name {
            "DATABASE_PATH" => &self.database_path,
            "DIALOGS_DIR" => &self.dialogs_dir,
            "KNOWLEDGE_DIR" => &self.knowledge_dir,
            "TELOXIDE_TOKEN" => &self.teloxide_token,
            "TELOXIDE_API_URL" => &self.teloxide_api_url,
            "ADMIN_IDS" => &self.admin_ids,
            "STAFF_CHAT_ID" => &self.staff_chat_id,
            "RETENTION_DAYS" => &self.retention_days,
            "BROADCAST_RATE" => &self.broadcast_rate,
            "DATABASE_MAX_MB" => &self.database_max_mb,
            "TIME_ZONE" => &self.time_zone,
            "WEBHOOK_URL" => &self.webhook_url,
            "WEBHOOK_LISTEN" => &self.webhook_listen,
            "WEBHOOK_SECRET" => &self.webhook_secret,
            "WORKERS" => &self.workers,
            "BOT_API_TIMEOUT_SECS" => &self.bot_api_timeout_secs,
            "SEND_RATE" => &self.send_rate,
            "CHAT_RATE" => &self.chat_rate,
            "METRICS_LISTEN" => &self.metrics_listen,
            "WORKER_STUCK_SECS" => &self.worker_stuck_secs,
            "SME_ADVISOR_TEST_HOOKS" => &self.sme_advisor_test_hooks,
            "WEB_LISTEN" => &self.web_listen,
            "WEB_PUBLIC_URL" => &self.web_public_url,
            _ => return config::var(name),
        };
        value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Talk to the advisor in the terminal
    Chat {
        /// Who is talking: any name or number; each keeps its own profile
        #[arg(long, default_value = "local")]
        user: String,
        /// Language for a new user
        #[arg(long, default_value = "en")]
        lang: String,
    },
    /// Check dialogs/ and knowledge/ and print every problem; evidence quotes are verified against
    /// the report when it is found
    Check {
        /// Instead of the summary, list entries whose status was last checked more than N days ago
        /// (or never)
        #[arg(long, value_name = "N")]
        stale: Option<i64>,
        /// The seed report to verify evidence quotes against (default: ../shared/seed/... next to
        /// the knowledge folder's parent, when it exists)
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Print every entry's official link with the date its domain was checked, for a person to verify
    Links,
    /// Run the Telegram bot (long polling; webhook mode when WEBHOOK_URL is set)
    Serve,
    /// Review and export logged inquiries
    Inquiries {
        #[command(subcommand)]
        command: InquiriesCommand,
    },
    /// Grant, revoke and list the staff and agency roles of Telegram users
    Roles {
        #[command(subcommand)]
        command: RolesCommand,
    },
    /// Programme calls to subscribers: create from a file, send, follow, cancel
    Broadcast {
        #[command(subcommand)]
        command: BroadcastCommand,
    },
    /// How a question is read: language, terms, top documents with per-field scores, decision
    Explain {
        question: String,
        /// The asker's language (the prior of the language detection)
        #[arg(long, default_value = "en")]
        lang: String,
    },
    /// Accuracy of free-question matching on the evaluation set; exits non-zero below the targets
    Eval {
        /// Evaluation files or folders (default: tests/eval)
        files: Vec<PathBuf>,
        /// Only this split (dev or test)
        #[arg(long)]
        split: Option<String>,
        /// Print a grid of thresholds on the dev split instead
        #[arg(long)]
        tune: bool,
        /// List every question, not only the mistakes
        #[arg(long)]
        verbose: bool,
    },
    /// Updates that failed every attempt to handle them: list them, or run one again after a fix
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Write a consistent copy of the database to a new file, even while `serve` runs
    Backup { file: PathBuf },
    /// Bring the database's schema up to this program's version (after a backup)
    Migrate,
    /// The web desk for staff, agencies and admins (WEB_LISTEN), or `web login-link USER_ID`
    Web(crate::web::WebArgs),
}

#[derive(Subcommand)]
enum QuarantineCommand {
    /// Every quarantined update, newest first
    List,
    /// Put one back in line: the running bot handles it within seconds, or the next start does
    Retry { update_id: i64 },
}

#[derive(Subcommand)]
enum BroadcastCommand {
    /// Check a call file, show the preview and how many subscribers it reaches, and save it as a draft
    Create { file: PathBuf },
    /// Send a draft now, or at a time (`2026-12-01 09:00`, in TIME_ZONE, or `2026-12-01 09:00 Africa/Nairobi`); the running bot sends it
    Send {
        id: i64,
        #[arg(long)]
        at: Option<String>,
    },
    /// Progress of one broadcast
    Status { id: i64 },
    /// Every broadcast, newest first
    List,
    /// Stop a broadcast; what was not sent stays unsent
    Cancel { id: i64 },
}

#[derive(Subcommand)]
enum InquiriesCommand {
    /// List inquiries, open ones (handoffs first) then newest first
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One inquiry in full, with its history
    Show { id: i64 },
    /// Every matching inquiry as CSV (UTF-8, for spreadsheets) or JSON
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Write to this file instead of standard output
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct FilterArgs {
    /// 24h, 7d, 30d, today, all, or 2026-11-01..2026-11-28
    #[arg(long, default_value = "all")]
    period: String,
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// A content language: en, fr, es or pt
    #[arg(long)]
    lang: Option<String>,
    /// A country id of the vocabulary, e.g. uganda
    #[arg(long)]
    country: Option<String>,
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
    /// Only unanswered questions and open handoffs
    #[arg(long)]
    open: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

/// The status of an inquiry.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
enum StatusArg {
    New,
    NeedsHuman,
    Answered,
    AnsweredByStaff,
    Resolved,
}

/// The kind of an inquiry.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KindArg {
    Question,
    Recommendation,
    Handoff,
}

/// A role an admin may grant (admins themselves come from ADMIN_IDS).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RoleArg {
    Staff,
    Agency,
}

#[derive(Subcommand)]
enum RolesCommand {
    /// Give a Telegram user (by numeric id) the role staff or agency
    Grant {
        user: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Take a role away
    Revoke {
        user: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Who has which role (admins come from ADMIN_IDS)
    List,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let lookup = |name: &str| cli.env.lookup(name);
    let config = Config::from_lookup(lookup)?;
    match cli.command {
        Command::Check { stale, report } => check(&config, stale, report),
        Command::Links => links(&config),
        Command::Serve => {
            let settings = ServeSettings::from_lookup(lookup)?;
            let store = open_for_serve(&config)?;
            let content = load_content(&config, &learned(&store)?)?;
            let parse =
                |name: &str, url: &str| reqwest::Url::parse(url).map_err(|_| anyhow::anyhow!("{name}: `{url}` is not a valid address"));
            let webhook = match (&settings.webhook_url, &settings.webhook_secret) {
                (Some(url), Some(secret)) => {
                    Some(telegram::Webhook { listen: settings.webhook_listen, url: parse("WEBHOOK_URL", url)?, secret: secret.clone() })
                }
                _ => None,
            };
            let web_public_url = crate::web::WebSettings::from_lookup(lookup)?.public_url;
            let serve_config = telegram::ServeConfig {
                token: settings.token.clone(),
                api_url: settings.api_url.as_deref().map(|u| parse("TELOXIDE_API_URL", u)).transpose()?,
                webhook,
                workers: settings.workers,
                api_timeout: std::time::Duration::from_secs(settings.api_timeout_secs),
                app: config.clone(),
                metrics_listen: settings.metrics_listen,
                stuck_after: std::time::Duration::from_secs(settings.worker_stuck_secs),
                test_hooks: settings.test_hooks,
                budget: telegram::limits::Budget {
                    global_per_second: settings.send_rate,
                    chat_per_second: settings.chat_rate,
                    paid_broadcast: config.broadcast_rate > 30.0,
                    ..telegram::limits::Budget::default()
                },
                web_public_url,
            };
            quiet_panics();
            // One thread runs every task: each update is handled between two waits for the network
            // without hopping threads (about 4 context switches per update instead of 11, and
            // 17-29% less CPU; README, "The fixed cost per update"), and one core does about 3,000
            // updates a second, far above the 30 messages a second Telegram allows. Blocking work (checkpoints, content rebuilds, readiness)
            // runs on tokio's blocking threads.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
            let store = std::sync::Arc::new(std::sync::Mutex::new(store));
            let base = std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(content)));
            // With WEB_LISTEN set, the web desk runs in the same process, on the same store and content.
            let web = match lookup("WEB_LISTEN") {
                Some(_) => {
                    let web = crate::web::WebSettings::from_lookup(lookup)?;
                    let listener = std::net::TcpListener::bind(web.listen)
                        .and_then(|l| l.set_nonblocking(true).map(|()| l))
                        .with_context(|| format!("WEB_LISTEN: cannot listen on {}", web.listen))?;
                    let app =
                        crate::web::App::new(store.clone(), base.clone(), &config, &web.public_url, std::sync::Arc::new(crate::clock::now));
                    Some((listener, std::sync::Arc::new(app)))
                }
                None => None,
            };
            runtime.block_on(async {
                if let Some((listener, app)) = web {
                    let listener = tokio::net::TcpListener::from_std(listener).context("WEB_LISTEN")?;
                    tokio::spawn(async move {
                        if let Err(e) = crate::web::serve(listener, app, std::future::pending()).await {
                            tracing::error!(error = %e, "the web desk stopped");
                        }
                    });
                }
                telegram::serve_shared(serve_config, base, store, shutdown_signal()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inquiries { command } => desk::inquiries(&config, command),
        Command::Roles { command } => desk::roles(&config, command),
        Command::Broadcast { command } => desk::broadcasts(&config, command),
        Command::Quarantine { command } => quarantine(&config, command),
        Command::Web(args) => crate::web::cli(&config, args, lookup),
        Command::Backup { file } => {
            let store = open_store(&config)?;
            store.backup_to(&file).with_context(|| format!("cannot back up to {}", file.display()))?;
            println!("backup written to {}; to restore, stop the bot and copy it over {}", file.display(), config.database_path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let (before, after) = migrate(&config)?;
            if before == after {
                println!("the database is at schema version {after}; nothing to do");
            } else {
                println!("migrated the database from schema version {before} to {after}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { question, lang } => {
            let content = load_for_matching(&config)?;
            let lang = content.language_for(Some(&lang));
            print!("{}", content.index.explain(&question, &crate::matching::Asker::lang(&lang)));
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval { files, split, tune, verbose } => {
            let content = load_for_matching(&config)?;
            let files = if files.is_empty() { vec![PathBuf::from("tests/eval")] } else { files };
            let ok = crate::eval::run(&content, &files, split.as_deref(), tune, verbose)?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Chat { user, lang } => {
            let mut store = open_store(&config)?;
            let content = load_content(&config, &learned(&store)?)?;
            let lang = content.language_for(Some(&lang));
            terminal::chat(&content, &mut store, &user, &lang)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

impl From<RoleArg> for crate::desk::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Staff => crate::desk::Role::Staff,
            RoleArg::Agency => crate::desk::Role::Agency,
        }
    }
}

impl From<StatusArg> for crate::desk::Status {
    fn from(status: StatusArg) -> Self {
        use crate::desk::Status;
        match status {
            StatusArg::New => Status::New,
            StatusArg::NeedsHuman => Status::NeedsHuman,
            StatusArg::Answered => Status::Answered,
            StatusArg::AnsweredByStaff => Status::AnsweredByStaff,
            StatusArg::Resolved => Status::Resolved,
        }
    }
}

impl From<KindArg> for crate::engine::InquiryKind {
    fn from(kind: KindArg) -> Self {
        use crate::engine::InquiryKind;
        match kind {
            KindArg::Question => InquiryKind::Question,
            KindArg::Recommendation => InquiryKind::Recommendation,
            KindArg::Handoff => InquiryKind::Handoff,
        }
    }
}
