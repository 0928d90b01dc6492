//! Commands of the desk and of programme calls: inquiries, roles and broadcasts, through the act layer.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::act::{self, Actor, Notice, To};
use crate::config::Config;
use crate::content;
use crate::desk;
use crate::desk::Request;
use crate::store::{InquiryFilter, Store};
use crate::terminal;

use super::ops::{learned, load_content, open_store};
use super::{BroadcastCommand, FilterArgs, Format, InquiriesCommand, RolesCommand};

fn filter(args: &FilterArgs) -> anyhow::Result<InquiryFilter> {
    if let Some(lang) = &args.lang
        && !(2..=3).contains(&lang.len())
    {
        anyhow::bail!("--lang: `{}` is not a language code such as en, fr, es or pt", lang.chars().take(20).collect::<String>());
    }
    let period = desk::Period::parse(&args.period, crate::clock::now()).map_err(|e| anyhow::anyhow!("--period: {e}"))?;
    Ok(InquiryFilter {
        since: period.since,
        until: period.until,
        status: args.status.map(Into::into),
        lang: args.lang.clone(),
        country: args.country.clone(),
        kind: args.kind.map(Into::into),
        open: args.open,
    })
}

pub(super) fn inquiries(config: &Config, command: InquiriesCommand) -> anyhow::Result<ExitCode> {
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

pub(super) fn roles(config: &Config, command: RolesCommand) -> anyhow::Result<ExitCode> {
    let check = |user: &str| -> anyhow::Result<()> {
        if user.is_empty() || user.len() > 20 || !user.chars().all(|c| c.is_ascii_digit()) {
            anyhow::bail!("`{}` is not a numeric Telegram user id", user.chars().take(24).collect::<String>());
        }
        Ok(())
    };
    let request = match command {
        RolesCommand::Grant { user, role } => {
            check(&user)?;
            Request::Grant { user, role: role.into() }
        }
        RolesCommand::Revoke { user, role } => {
            check(&user)?;
            Request::Revoke { user, role: role.into() }
        }
        RolesCommand::List => {
            let store = open_store(config)?;
            for admin in &config.admin_ids {
                println!("{admin}\tadmin\t(ADMIN_IDS)");
            }
            for g in store.role_grants(act::CHANNEL)? {
                println!("{}\t{}\t(granted by {} at {} UTC)", g.external_id, g.role, g.granted_by, desk::format_time(g.granted_at));
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let store = std::sync::Mutex::new(open_store(config)?);
    let content = load_content(config, &learned(&store.lock().unwrap_or_else(|e| e.into_inner()))?)?;
    let outcome = act::desk::run(&ctx(config, &store, &content), &Actor::operator(content::DEFAULT_LANG), request)?;
    print_outcome(&outcome);
    Ok(ExitCode::SUCCESS)
}

/// What the act layer needs, for the operator at the command line.
fn ctx<'a>(config: &'a Config, store: &'a std::sync::Mutex<Store>, content: &'a content::Content) -> act::Ctx<'a> {
    act::Ctx {
        store,
        content,
        admins: &config.admin_ids,
        dialogs_dir: &config.dialogs_dir,
        knowledge_dir: &config.knowledge_dir,
        broadcast_rate: config.broadcast_rate,
        now: crate::clock::now(),
    }
}

/// Prints the notices meant for the operator, as plain text.
fn print_outcome(outcome: &act::Outcome) {
    for notice in &outcome.notices {
        if let Notice::Say { to: To::Requester, reply, .. } = notice {
            let (lines, _) = terminal::render(std::slice::from_ref(reply));
            println!("{}", lines.join("\n"));
        }
    }
}

pub(super) fn broadcasts(config: &Config, command: BroadcastCommand) -> anyhow::Result<ExitCode> {
    use crate::broadcast;
    let store = open_store(config)?;
    let now = crate::clock::now();
    let status_line = |store: &Store, row: &crate::store::BroadcastRow| -> anyhow::Result<String> {
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
            let (store, content) = act_store(config, store)?;
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let call = match broadcast::parse_call(&file.display().to_string(), &text, &content) {
                Ok(call) => call,
                Err(diags) => {
                    println!("{}", broadcast::report(&diags));
                    eprintln!("{} problem(s) found", diags.len());
                    return Ok(ExitCode::FAILURE);
                }
            };
            let (id, reach) = act::broadcast::create(&ctx(config, &store, &content), &Actor::operator(content::DEFAULT_LANG), &call)?;
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
                Some(text) => crate::dates::parse_when(&text, &config.time_zone, now)
                    .map_err(|e| anyhow::anyhow!("--at: {e} (write 2026-12-01 09:00, optionally with a zone such as Africa/Nairobi)"))?,
            };
            let (store, content) = act_store(config, store)?;
            let outcome = act::broadcast::schedule(&ctx(config, &store, &content), &Actor::operator(content::DEFAULT_LANG), id, when)?;
            if outcome.refused {
                print_outcome(&outcome);
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "broadcast #{id} will be sent at {} by the running bot (`sme-advisor serve`)",
                crate::dates::format_in(when, &config.time_zone)
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
            let (store, content) = act_store(config, store)?;
            let outcome = act::broadcast::cancel(&ctx(config, &store, &content), &Actor::operator(content::DEFAULT_LANG), id)?;
            print_outcome(&outcome);
            if outcome.refused {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The store behind the lock the act layer takes, and the content it reads.
fn act_store(config: &Config, store: Store) -> anyhow::Result<(std::sync::Mutex<Store>, content::Content)> {
    let content = load_content(config, &learned(&store)?)?;
    Ok((std::sync::Mutex::new(store), content))
}
