//! The `sme-advisor` binary: parses the command line, sets up logging, runs the command, prints errors.

use std::process::ExitCode;

use clap::Parser;

use sme_advisor::cli::{Cli, LogFormat};
use sme_advisor::config;

fn main() -> ExitCode {
    one_malloc_arena();
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

/// One malloc arena for the whole process instead of one per thread (glibc makes up to eight per
/// core): the bot's few threads share two cores, and the extra arenas held about 2.5 MB of its
/// 31 MB peak under `cargo bench --bench telegram_load`. Set before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    unsafe extern "C" {
        safe fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    const M_ARENA_MAX: std::ffi::c_int = -8;
    mallopt(M_ARENA_MAX, 1);
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}
