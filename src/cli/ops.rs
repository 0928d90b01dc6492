//! Commands on the content, the database and the server: check, links, backup, migrate, quarantine, serve's helpers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Config;
use crate::content::{self, Content};
use crate::desk;
use crate::store::{Migrate, Store, StoreError};

use super::QuarantineCommand;

/// `check`: every problem of the content, the evidence verified against the report when it is
/// found; with `--stale N`, the entries whose status needs checking.
pub(super) fn check(config: &Config, stale: Option<i64>, report: Option<PathBuf>) -> anyhow::Result<ExitCode> {
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
            let today = crate::clock::now().div_euclid(86_400);
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
pub(super) fn links(config: &Config) -> anyhow::Result<ExitCode> {
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
pub(super) fn existing_learned(config: &Config) -> anyhow::Result<Vec<content::ExtraExample>> {
    if !config.database_path.exists() {
        return Ok(Vec::new());
    }
    let store = open_store(config)?;
    learned(&store)
}

/// The example questions staff attached, as content extras.
pub(super) fn learned(store: &Store) -> anyhow::Result<Vec<content::ExtraExample>> {
    Ok(store
        .learned_examples()?
        .into_iter()
        .map(|l| content::ExtraExample { id: l.id, entry_id: l.entry_id, lang: l.lang, text: l.text })
        .collect())
}

/// Loads content with the learned examples, or fails with every diagnostic.
pub(super) fn load_content(config: &Config, extras: &[content::ExtraExample]) -> anyhow::Result<Content> {
    content::load_dirs_with(&config.dialogs_dir, &config.knowledge_dir, extras).map_err(|diags| {
        let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the content has {} problem(s); run `sme-advisor check`:\n{}", diags.len(), lines.join("\n"))
    })
}

/// Loads content for `explain` and `eval`: examples that miss their entry are reported, not fatal.
pub(super) fn load_for_matching(config: &Config) -> anyhow::Result<Content> {
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
pub(super) async fn shutdown_signal() {
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
pub(super) fn open_store(config: &Config) -> anyhow::Result<Store> {
    open_with(config, Migrate::No)
}

pub(super) fn open_with(config: &Config, migrate: Migrate) -> anyhow::Result<Store> {
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
pub(super) fn open_for_serve(config: &Config) -> anyhow::Result<Store> {
    migrate(config)?;
    open_with(config, Migrate::No)
}

/// Brings the schema up to date, backing an existing database up first. Returns the versions
/// before and after.
pub(super) fn migrate(config: &Config) -> anyhow::Result<(i64, i64)> {
    let path = &config.database_path;
    let found = if path.exists() { Store::schema_version(path).with_context(|| format!("cannot read {}", path.display()))?.0 } else { 0 };
    let known = Store::SCHEMA_VERSION;
    if found > 0 && found < known {
        let backup = path.with_extension(format!("v{found}-{}.backup", crate::clock::now()));
        Store::backup_file(path, &backup)
            .with_context(|| format!("cannot back up the database before migrating it to {}", backup.display()))?;
        tracing::info!(backup = %backup.display(), from = found, to = known, "database backed up; migrating");
    }
    drop(open_with(config, Migrate::Yes)?);
    Ok((found, known))
}

/// In `serve`, a panic's message may quote what a user sent: log only where it happened. The
/// update it hit is quarantined with the message, for admins.
pub(super) fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(at = %at, "a task panicked; it is contained and restarted or its update quarantined");
    }));
}

pub(super) fn quarantine(config: &Config, command: QuarantineCommand) -> anyhow::Result<ExitCode> {
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
