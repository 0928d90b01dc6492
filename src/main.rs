//! The `sme-advisor` command line: `chat`, `check`, and the server commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use sme_advisor::config::{self, Config, ServeSettings};
use sme_advisor::content::{self, Content};
use sme_advisor::store::Store;
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
    /// Check dialogs/ and knowledge/ and print every problem
    Check,
    /// Run the Telegram bot (long polling; webhook mode when WEBHOOK_URL is set)
    Serve,
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
        // The examples staff attached are checked too, when there is a database to read them from.
        Command::Check => match content::load_dirs_with(&config.dialogs_dir, &config.knowledge_dir, &existing_learned(&config)?) {
            Ok(content) => {
                println!(
                    "ok: {} flows, {} intents, {} knowledge entries, {} vocabulary terms, {} languages",
                    content.flows.len(),
                    content.intents.len(),
                    content.entries.len(),
                    content.vocab.terms.len(),
                    content.languages.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(diags) => {
                for d in &diags {
                    println!("{d}");
                }
                eprintln!("{} problem(s) found", diags.len());
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Serve => {
            let settings = ServeSettings::from_lookup(config::var)?;
            let store = Store::open(&config.database_path)
                .with_context(|| format!("cannot open the database {}", config.database_path.display()))?;
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
                admin_ids: config.admin_ids.clone(),
                staff_chat_id: config.staff_chat_id,
                retention_days: config.retention_days,
                dialogs_dir: config.dialogs_dir.clone(),
                knowledge_dir: config.knowledge_dir.clone(),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
            runtime.block_on(telegram::serve(serve_config, std::sync::Arc::new(content), store, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Chat { user, lang } => {
            let mut store = Store::open(&config.database_path)
                .with_context(|| format!("cannot open the database {}", config.database_path.display()))?;
            let content = load_content(&config, &learned(&store)?)?;
            terminal::chat(&content, &mut store, &user, &lang)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The learned examples of an existing database; none when there is no database yet.
fn existing_learned(config: &Config) -> anyhow::Result<Vec<content::ExtraExample>> {
    if !config.database_path.exists() {
        return Ok(Vec::new());
    }
    let store =
        Store::open(&config.database_path).with_context(|| format!("cannot open the database {}", config.database_path.display()))?;
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
