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
        Command::Check => match content::load_dirs(&config.dialogs_dir, &config.knowledge_dir) {
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
            let content = load_content(&config)?;
            let store = Store::open(&config.database_path)
                .with_context(|| format!("cannot open the database {}", config.database_path.display()))?;
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
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
            runtime.block_on(telegram::serve(serve_config, std::sync::Arc::new(content), store, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Chat { user, lang } => {
            let content = load_content(&config)?;
            let mut store = Store::open(&config.database_path)
                .with_context(|| format!("cannot open the database {}", config.database_path.display()))?;
            terminal::chat(&content, &mut store, &user, &lang)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads content or fails with every diagnostic.
fn load_content(config: &Config) -> anyhow::Result<Content> {
    content::load_dirs(&config.dialogs_dir, &config.knowledge_dir).map_err(|diags| {
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
