//! The `sme-advisor` command line: `chat`, `check`, and the server commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use sme_advisor::config::{self, Config, ServeSettings};
use sme_advisor::content::{self, Content};
use sme_advisor::desk;
use sme_advisor::store::{InquiryFilter, Migrate, Store, StoreError};
use sme_advisor::{telegram, terminal};

#[derive(Parser)]
#[command(
    name = "sme-advisor",
    version,
    about = "Advice for small businesses on services, financing and linkage programmes",
    after_help = "Every setting can come from the environment or a .env file in the working folder (see .env.example); a flag wins over both."
)]
struct Cli {
    #[command(flatten)]
    env: EnvArgs,
    #[command(subcommand)]
    command: Command,
}

/// The settings of `.env.example`, each also a flag. Values are validated by `config`, which
/// reads them through [`EnvArgs::lookup`]; secrets are never shown in `--help`.
#[derive(clap::Args)]
struct EnvArgs {
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
    log_format: Option<LogFormat>,
    /// Log filter, e.g. info or sme_advisor=debug
    #[arg(long = "log", env = "RUST_LOG", global = true)]
    rust_log: Option<String>,
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
enum LogFormat {
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
    Web(sme_advisor::web::WebArgs),
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

/// The text of a value enum, as clap shows it.
fn value_name(value: impl clap::ValueEnum) -> String {
    value.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
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

fn main() -> ExitCode {
    config::load_dotenv();
    let cli = Cli::parse();
    let filter = cli
        .env
        .rust_log
        .as_deref()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.env.log_format {
        Some(LogFormat::Json) => logs.json().init(),
        _ => logs.init(),
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
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
            };
            quiet_panics();
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
            runtime.block_on(telegram::serve(serve_config, std::sync::Arc::new(content), store, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inquiries { command } => inquiries(&config, command),
        Command::Roles { command } => roles(&config, command),
        Command::Broadcast { command } => broadcasts(&config, command),
        Command::Quarantine { command } => quarantine(&config, command),
        Command::Web(args) => sme_advisor::web::cli(&config, args, lookup),
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
            print!("{}", content.index.explain(&question, &sme_advisor::matching::Asker::lang(&lang)));
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval { files, split, tune, verbose } => {
            let content = load_for_matching(&config)?;
            let files = if files.is_empty() { vec![PathBuf::from("tests/eval")] } else { files };
            let ok = sme_advisor::eval::run(&content, &files, split.as_deref(), tune, verbose)?;
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

/// `check`: every problem of the content, the evidence verified against the report when it is
/// found; with `--stale N`, the entries whose status needs checking.
fn check(config: &Config, stale: Option<i64>, report: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    // The examples staff attached are checked too, when there is a database to read them from.
    let content = match content::load_dirs_with(&config.dialogs_dir, &config.knowledge_dir, &existing_learned(config)?) {
        Ok(content) => content,
        Err(diags) => {
            for d in &diags {
                println!("{d}");
            }
            eprintln!("{} problem(s) found", diags.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut problems = 0;
    let report_path = report.unwrap_or_else(|| {
        let base = config.knowledge_dir.parent().map(PathBuf::from).unwrap_or_default();
        base.join(content::provenance::REPORT_PATH)
    });
    match std::fs::read_to_string(&report_path) {
        Ok(text) => {
            let findings = content::provenance::check(&content, &content::provenance::Report::parse(&text));
            for d in &findings.diagnostics {
                println!("{d}");
            }
            problems += findings.diagnostics.len();
            eprintln!(
                "provenance: {} quotes verified in {} entries with evidence, {} cited paragraphs checked against {}",
                findings.quotes_verified,
                findings.entries_with_evidence,
                findings.paragraphs_checked,
                report_path.display()
            );
        }
        Err(_) => eprintln!("note: the report is not at {}; evidence quotes were not verified (--report FILE)", report_path.display()),
    }
    if problems > 0 {
        eprintln!("{problems} problem(s) found");
        return Ok(ExitCode::FAILURE);
    }
    match stale {
        Some(days) => {
            let today = sme_advisor::clock::now().div_euclid(86_400);
            let list = content::stale_entries(&content, today, days);
            for (entry, age) in &list {
                let status = entry.status.map_or("(no status)", |s| s.name());
                let when = match (entry.status_checked.as_deref(), age) {
                    (Some(date), Some(age)) => format!("checked {date} ({age} days ago)"),
                    _ => "never checked".to_string(),
                };
                println!("{}\t{status}\t{when}\t{}", entry.id, content.entry_text(entry, content::DEFAULT_LANG).provider);
            }
            println!("{} of {} entries need a status check (older than {days} days, or never checked)", list.len(), content.entries.len());
        }
        None => println!(
            "ok: {} flows, {} intents, {} knowledge entries, {} vocabulary terms, {} languages",
            content.flows.len(),
            content.intents.len(),
            content.entries.len(),
            content.vocab.terms.len(),
            content.languages.len()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `links`: every entry's link and the date its domain was last checked.
fn links(config: &Config) -> anyhow::Result<ExitCode> {
    let content = load_content(config, &existing_learned(config)?)?;
    let mut count = 0;
    for entry in &content.entries {
        let Some(link) = &entry.link else { continue };
        count += 1;
        let host = content::link_host(link).unwrap_or_default();
        match content.links.iter().find(|l| l.covers(&host)) {
            Some(d) => println!("{}\t{link}\t{} ({}) checked {}", entry.id, d.domain, d.organisation, d.checked),
            None => println!("{}\t{link}\t(domain not listed)", entry.id),
        }
    }
    println!("{count} of {} entries have a link; {} domains listed in knowledge/links.toml", content.entries.len(), content.links.len());
    Ok(ExitCode::SUCCESS)
}

/// The learned examples of an existing database; none when there is no database yet.
fn existing_learned(config: &Config) -> anyhow::Result<Vec<content::ExtraExample>> {
    if !config.database_path.exists() {
        return Ok(Vec::new());
    }
    let store = open_store(config)?;
    learned(&store)
}

/// The example questions staff attached, as content extras.
fn learned(store: &Store) -> anyhow::Result<Vec<content::ExtraExample>> {
    Ok(store
        .learned_examples()?
        .into_iter()
        .map(|l| content::ExtraExample { id: l.id, entry_id: l.entry_id, lang: l.lang, text: l.text })
        .collect())
}

/// Loads content with the learned examples, or fails with every diagnostic.
fn load_content(config: &Config, extras: &[content::ExtraExample]) -> anyhow::Result<Content> {
    content::load_dirs_with(&config.dialogs_dir, &config.knowledge_dir, extras).map_err(|diags| {
        let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the content has {} problem(s); run `sme-advisor check`:\n{}", diags.len(), lines.join("\n"))
    })
}

/// Loads content for `explain` and `eval`: examples that miss their entry are reported, not fatal.
fn load_for_matching(config: &Config) -> anyhow::Result<Content> {
    let (content, diags) = content::load_dirs_for_matching(&config.dialogs_dir, &config.knowledge_dir).map_err(|diags| {
        let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the content has {} problem(s); run `sme-advisor check`:\n{}", diags.len(), lines.join("\n"))
    })?;
    for d in &diags {
        eprintln!("warning: {d}");
    }
    Ok(content)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Opens the database for a command that must not change its schema: a new database is created,
/// an older one stops the command with the advice to run `migrate`.
fn open_store(config: &Config) -> anyhow::Result<Store> {
    open_with(config, Migrate::No)
}

fn open_with(config: &Config, migrate: Migrate) -> anyhow::Result<Store> {
    let path = &config.database_path;
    let mut store = Store::open_with(path, migrate).map_err(|e| match e {
        StoreError::NeedsMigration { .. } | StoreError::TooNew { .. } => anyhow::anyhow!("{e}"),
        e => anyhow::anyhow!(e).context(format!("cannot open the database {}", path.display())),
    })?;
    if let Some(mb) = config.database_max_mb {
        store.limit_size(mb)?;
    }
    Ok(store)
}

/// `serve` migrates an older database, after writing a backup beside it.
fn open_for_serve(config: &Config) -> anyhow::Result<Store> {
    migrate(config)?;
    open_with(config, Migrate::No)
}

/// Brings the schema up to date, backing an existing database up first. Returns the versions
/// before and after.
fn migrate(config: &Config) -> anyhow::Result<(i64, i64)> {
    let path = &config.database_path;
    let found = if path.exists() { Store::schema_version(path).with_context(|| format!("cannot read {}", path.display()))?.0 } else { 0 };
    let known = Store::SCHEMA_VERSION;
    if found > 0 && found < known {
        let backup = path.with_extension(format!("v{found}-{}.backup", sme_advisor::clock::now()));
        Store::backup_file(path, &backup)
            .with_context(|| format!("cannot back up the database before migrating it to {}", backup.display()))?;
        tracing::info!(backup = %backup.display(), from = found, to = known, "database backed up; migrating");
    }
    drop(open_with(config, Migrate::Yes)?);
    Ok((found, known))
}

/// In `serve`, a panic's message may quote what a user sent: log only where it happened. The
/// update it hit is quarantined with the message, for admins.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(at = %at, "a task panicked; it is contained and restarted or its update quarantined");
    }));
}

fn quarantine(config: &Config, command: QuarantineCommand) -> anyhow::Result<ExitCode> {
    let mut store = open_store(config)?;
    match command {
        QuarantineCommand::List => {
            let rows = store.quarantined()?;
            for q in &rows {
                let error: String = q.error.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(160).collect();
                println!("{}	chat {}	{} UTC	{} attempts	{error}", q.update_id, q.chat_id, desk::format_time(q.at), q.attempts);
            }
            eprintln!("{} quarantined update(s)", rows.len());
        }
        QuarantineCommand::Retry { update_id } => {
            if !store.retry_quarantined(update_id)? {
                anyhow::bail!("there is no quarantined update {update_id}; `sme-advisor quarantine list` shows them");
            }
            println!("update {update_id} is back in line: the running bot handles it within seconds, or the next start does");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn filter(args: &FilterArgs) -> anyhow::Result<InquiryFilter> {
    if let Some(lang) = &args.lang
        && !(2..=3).contains(&lang.len())
    {
        anyhow::bail!("--lang: `{}` is not a language code such as en, fr, es or pt", lang.chars().take(20).collect::<String>());
    }
    let period = desk::Period::parse(&args.period, sme_advisor::clock::now()).map_err(|e| anyhow::anyhow!("--period: {e}"))?;
    Ok(InquiryFilter {
        since: period.since,
        until: period.until,
        status: args.status.map(value_name),
        lang: args.lang.clone(),
        country: args.country.clone(),
        kind: args.kind.map(value_name),
        open: args.open,
    })
}

fn inquiries(config: &Config, command: InquiriesCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    match command {
        InquiriesCommand::List { filter: args, limit, format } => {
            let rows = store.query_inquiries(&filter(&args)?, limit)?;
            match format {
                Format::Csv => print!("{}", desk::to_csv(&rows)),
                Format::Json => println!("{}", desk::to_json(&rows)),
                Format::Table => {
                    for row in &rows {
                        let text: String = row.text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(60).collect();
                        println!(
                            "#{:<6} {}  {:<14} {:<17} {:<3} {:<12} {}",
                            row.id,
                            desk::format_time(row.at),
                            row.kind,
                            row.status,
                            row.lang,
                            row.country.as_deref().unwrap_or("-"),
                            text
                        );
                    }
                    eprintln!("{} inquiries", rows.len());
                }
            }
        }
        InquiriesCommand::Show { id } => {
            let Some(row) = store.inquiry(id)? else {
                anyhow::bail!("there is no inquiry #{id}; `sme-advisor inquiries list` shows them");
            };
            let events = store.events(id)?;
            let content = load_content(config, &learned(&store)?)?;
            println!("{}", desk::inquiry(&content, content::DEFAULT_LANG, &row, &events).text);
        }
        InquiriesCommand::Export { filter: args, format, output } => {
            let rows = store.query_inquiries(&filter(&args)?, usize::MAX)?;
            let text = match format {
                Format::Json => desk::to_json(&rows),
                Format::Csv | Format::Table => desk::to_csv(&rows),
            };
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("{} inquiries written to {}", rows.len(), path.display());
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn roles(config: &Config, command: RolesCommand) -> anyhow::Result<ExitCode> {
    let mut store = open_store(config)?;
    let check = |user: &str| -> anyhow::Result<()> {
        if user.is_empty() || user.len() > 20 || !user.chars().all(|c| c.is_ascii_digit()) {
            anyhow::bail!("`{}` is not a numeric Telegram user id", user.chars().take(24).collect::<String>());
        }
        Ok(())
    };
    match command {
        RolesCommand::Grant { user, role } => {
            check(&user)?;
            let role = value_name(role);
            let changed = store.grant(telegram::CHANNEL, &user, &role, "command line", sme_advisor::clock::now())?;
            println!("{}", if changed { format!("granted {role} to {user}") } else { format!("{user} already had {role}") });
        }
        RolesCommand::Revoke { user, role } => {
            check(&user)?;
            let role = value_name(role);
            let changed = store.revoke(telegram::CHANNEL, &user, &role)?;
            println!("{}", if changed { format!("revoked {role} from {user}") } else { format!("{user} did not have {role}") });
        }
        RolesCommand::List => {
            for admin in &config.admin_ids {
                println!("{admin}\tadmin\t(ADMIN_IDS)");
            }
            for g in store.role_grants(telegram::CHANNEL)? {
                println!("{}\t{}\t(granted by {} at {} UTC)", g.external_id, g.role, g.granted_by, desk::format_time(g.granted_at));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn broadcasts(config: &Config, command: BroadcastCommand) -> anyhow::Result<ExitCode> {
    use sme_advisor::broadcast;
    let mut store = open_store(config)?;
    let now = sme_advisor::clock::now();
    let status_line = |store: &Store, row: &sme_advisor::store::BroadcastRow| -> anyhow::Result<String> {
        let c = store.broadcast_counts(row.id)?;
        let title =
            serde_json::from_str::<broadcast::Call>(&row.call).map(|c| c.text(content::DEFAULT_LANG).title.clone()).unwrap_or_default();
        let when = row.send_at.map(desk::format_time).unwrap_or_else(|| "-".into());
        Ok(format!(
            "#{} {:<9} send at {when}  sent {} failed {} blocked {} pending {} of {}  {title}",
            row.id, row.status, c.sent, c.failed, c.blocked, c.pending, c.total
        ))
    };
    match command {
        BroadcastCommand::Create { file } => {
            let content = load_content(config, &learned(&store)?)?;
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let call = match broadcast::parse_call(&file.display().to_string(), &text, &content) {
                Ok(call) => call,
                Err(diags) => {
                    println!("{}", broadcast::report(&diags));
                    eprintln!("{} problem(s) found", diags.len());
                    return Ok(ExitCode::FAILURE);
                }
            };
            let id = store.create_broadcast(&serde_json::to_string(&call)?, "command line", now)?;
            let reach = store.subscribers(telegram::CHANNEL)?.iter().filter(|s| call.reaches(&content, s)).count();
            for lang in call.texts.keys() {
                let (lines, _) = terminal::render(&[broadcast::message(&content, &call, lang, id)]);
                println!("--- {lang}\n{}", lines.join("\n"));
            }
            println!(
                "---\ndraft #{id} reaches {reach} subscribers now; send it with `sme-advisor broadcast send {id}` (add --at \"2026-12-01 09:00\" to schedule)"
            );
        }
        BroadcastCommand::Send { id, at } => {
            let when = match at {
                None => now,
                Some(text) => sme_advisor::dates::parse_when(&text, &config.time_zone, now)
                    .map_err(|e| anyhow::anyhow!("--at: {e} (write 2026-12-01 09:00, optionally with a zone such as Africa/Nairobi)"))?,
            };
            let Some(row) = store.broadcast(id)? else {
                anyhow::bail!("there is no broadcast #{id}; `sme-advisor broadcast list` shows them")
            };
            if !store.schedule_broadcast(id, when, None)? {
                anyhow::bail!("broadcast #{id} is {}, not a draft", row.status);
            }
            println!(
                "broadcast #{id} will be sent at {} by the running bot (`sme-advisor serve`)",
                sme_advisor::dates::format_in(when, &config.time_zone)
            );
        }
        BroadcastCommand::Status { id } => {
            let Some(row) = store.broadcast(id)? else {
                anyhow::bail!("there is no broadcast #{id}; `sme-advisor broadcast list` shows them")
            };
            println!("{}", status_line(&store, &row)?);
        }
        BroadcastCommand::List => {
            for row in store.broadcasts()? {
                println!("{}", status_line(&store, &row)?);
            }
        }
        BroadcastCommand::Cancel { id } => {
            let Some(row) = store.broadcast(id)? else {
                anyhow::bail!("there is no broadcast #{id}; `sme-advisor broadcast list` shows them")
            };
            if store.cancel_broadcast(id, now)? {
                println!("broadcast #{id} cancelled");
            } else {
                anyhow::bail!("broadcast #{id} is {} and cannot be cancelled", row.status);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
