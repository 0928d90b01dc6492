//! The `sme-advisor` binary: parses the command line, sets up logging, runs the command, prints errors.

use std::process::ExitCode;

use clap::Parser;

use sme_advisor::cli::{Cli, LogFormat};
use sme_advisor::config;

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
    match sme_advisor::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
