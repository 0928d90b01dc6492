//! The `sme-advisor` command line: `chat`, `check`, and the server commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use sme_advisor::config::{self, Config, ServeSettings};
use sme_advisor::content::{self, Content};
use sme_advisor::desk;
use sme_advisor::store::{InquiryFilter, Store};
use sme_advisor::{telegram, terminal};

#[derive(Parser)]
#[command(name = "sme-advisor", version, about = "Advice for small businesses on services, financing and linkage programmes")]
struct Cli {
    /// Folder of guided conversations (overrides DIALOGS_DIR)
    #[arg(long, global = true)]
    dialogs: Option<PathBuf>,
    /// Folder of knowledge entries (overrides KNOWLEDGE_DIR)
    #[arg(long, global = true)]
    knowledge: Option<PathBuf>,
    /// The SQLite database file (overrides DATABASE_PATH)
    #[arg(long, global = true)]
    database: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
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
}

#[derive(Subcommand)]
enum BroadcastCommand {
    /// Check a call file, show the preview and how many subscribers it reaches, and save it as a draft
    Create { file: PathBuf },
    /// Send a draft now, or at a time (`2026-12-01 09:00`, UTC); the running bot sends it
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
    /// new, needs_human, answered, answered_by_staff or resolved
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    lang: Option<String>,
    /// A country id of the vocabulary, e.g. uganda
    #[arg(long)]
    country: Option<String>,
    /// question, recommendation or handoff
    #[arg(long)]
    kind: Option<String>,
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

#[derive(Subcommand)]
enum RolesCommand {
    /// Give a Telegram user (by numeric id) the role staff or agency
    Grant { user: String, role: String },
    /// Take a role away
    Revoke { user: String, role: String },
    /// Who has which role (admins come from ADMIN_IDS)
    List,
}

fn main() -> ExitCode {
    config::load_dotenv();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::from_env()?;
    if let Some(d) = cli.dialogs {
        config.dialogs_dir = d;
    }
    if let Some(k) = cli.knowledge {
        config.knowledge_dir = k;
    }
    if let Some(db) = cli.database {
        config.database_path = db;
    }
    match cli.command {
        Command::Check { stale, report } => check(&config, stale, report),
        Command::Links => links(&config),
        Command::Serve => {
            let settings = ServeSettings::from_lookup(config::var)?;
            let store = open_store(&config)?;
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
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
            runtime.block_on(telegram::serve(serve_config, std::sync::Arc::new(content), store, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inquiries { command } => inquiries(&config, command),
        Command::Roles { command } => roles(&config, command),
        Command::Broadcast { command } => broadcasts(&config, command),
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

fn open_store(config: &Config) -> anyhow::Result<Store> {
    let mut store =
        Store::open(&config.database_path).with_context(|| format!("cannot open the database {}", config.database_path.display()))?;
    if let Some(mb) = config.database_max_mb {
        store.limit_size(mb)?;
    }
    Ok(store)
}

fn filter(args: &FilterArgs) -> anyhow::Result<InquiryFilter> {
    let period = desk::Period::parse(&args.period, sme_advisor::clock::now()).ok_or_else(|| {
        anyhow::anyhow!("--period: `{}` is not a period; use 24h, 7d, 30d, today, all, or 2026-11-01..2026-11-28", args.period)
    })?;
    Ok(InquiryFilter {
        since: period.since,
        until: period.until,
        status: args.status.clone(),
        lang: args.lang.clone(),
        country: args.country.clone(),
        kind: args.kind.clone(),
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
    let check = |user: &str, role: &str| -> anyhow::Result<()> {
        if user.is_empty() || !user.chars().all(|c| c.is_ascii_digit()) {
            anyhow::bail!("`{user}` is not a numeric Telegram user id");
        }
        if desk::Role::grantable(role).is_none() {
            anyhow::bail!("`{role}` is not a role that can be granted; use staff or agency (admins come from ADMIN_IDS)");
        }
        Ok(())
    };
    match command {
        RolesCommand::Grant { user, role } => {
            check(&user, &role)?;
            let changed = store.grant(telegram::CHANNEL, &user, &role, "command line", sme_advisor::clock::now())?;
            println!("{}", if changed { format!("granted {role} to {user}") } else { format!("{user} already had {role}") });
        }
        RolesCommand::Revoke { user, role } => {
            check(&user, &role)?;
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

/// `2026-12-01 09:00` or `2026-12-01T09:00` (UTC) as a timestamp.
fn parse_when(text: &str) -> Option<i64> {
    let (day, time) = text.trim().split_once([' ', 'T'])?;
    let period = desk::Period::parse(&format!("{day}..{day}"), 0)?;
    let (h, m) = time.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then(|| period.since.unwrap_or(0) + h * 3600 + m * 60)
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
                Some(text) => {
                    parse_when(&text).ok_or_else(|| anyhow::anyhow!("--at: `{text}` is not a time like 2026-12-01 09:00 (UTC)"))?
                }
            };
            let Some(row) = store.broadcast(id)? else {
                anyhow::bail!("there is no broadcast #{id}; `sme-advisor broadcast list` shows them")
            };
            if !store.schedule_broadcast(id, when, None)? {
                anyhow::bail!("broadcast #{id} is {}, not a draft", row.status);
            }
            println!("broadcast #{id} will be sent at {} UTC by the running bot (`sme-advisor serve`)", desk::format_time(when));
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
