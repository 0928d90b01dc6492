//! The command line as a user runs it: `check` and a scripted `chat`.

use std::io::Write;
use std::process::{Command, Stdio};

use sme_advisor::content;

use crate::support;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sme-advisor"));
    cmd.current_dir(support::root()).env_remove("RUST_LOG");
    cmd
}

#[test]
fn check_passes_on_shipped_content_and_fails_with_positions_on_broken_content() {
    let out = bin().arg("check").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let broken = support::root().join("tests/fixtures/cli-broken");
    let out =
        bin().args(["check", "--dialogs"]).arg(broken.join("dialogs")).arg("--knowledge").arg(broken.join("knowledge")).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = regex::Regex::new(r"(?m)^\S+\.toml:\d+:\d+: .+$").unwrap();
    assert!(line.find_iter(&stdout).count() >= 3, "expected path:line:col lines, got:\n{stdout}");
}

#[test]
fn chat_reads_plain_lines_when_scripted() {
    let dir = std::env::temp_dir().join(format!("sme-advisor-cli-{}", std::process::id()));
    let mut child = bin()
        .args(["chat", "--user", "script"])
        .env("DATABASE_PATH", dir.join("db.sqlite3"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"/start\nFinancing\nUganda\n1\n1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Which country"), "{stdout}");
    assert!(stdout.contains("Why it fits: matches Uganda"), "{stdout}");
    assert!(!stdout.contains("> "), "no prompt when scripted");
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs the binary on a database of its own, with the shipped content; (success, stdout, stderr).
fn run_on(db: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = bin().args(args).env("DATABASE_PATH", db).env_remove("TIME_ZONE").output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sme-advisor-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn bad_arguments_get_one_clear_line_and_never_a_panic() {
    let dir = temp_dir("cli-bad");
    let db = dir.join("db.sqlite3");
    let cases: &[(&[&str], &str)] = &[
        (&["inquiries", "list", "--period", "é"], "--period: `é` is not a period"),
        (&["inquiries", "list", "--period", "7ü"], "is not a period"),
        (&["inquiries", "list", "--period", "İİİİ"], "is not a period"),
        (&["inquiries", "list", "--period", "99999999999999999999999d"], "is not a period"),
        (&["inquiries", "list", "--period", "2026-02-31..2026-03-02"], "2026-02-31 does not exist in the calendar"),
        (&["inquiries", "list", "--status", "bogus"], "possible values: new, needs_human, answered, answered_by_staff, resolved"),
        (&["inquiries", "list", "--kind", "rumour"], "possible values: question, recommendation, handoff"),
        (&["inquiries", "list", "--format", "xml"], "possible values: table, csv, json"),
        (&["inquiries", "list", "--lang", "english-please"], "--lang"),
        (&["inquiries", "show", "99999999999999999999999"], "invalid value"),
        (&["roles", "grant", "123456789012345678901234567890", "staff"], "is not a numeric Telegram user id"),
        (&["roles", "grant", "12", "superuser"], "possible values: staff, agency"),
        (&["broadcast", "send", "1", "--at", "2026-02-31 09:00"], "2026-02-31 does not exist in the calendar"),
        (&["broadcast", "send", "1", "--at", "2020-01-01 09:00 Africa/Nairobi"], "is in the past: it is now"),
        (&["broadcast", "send", "1", "--at", "2030-01-01 09:00 Mars/Olympus"], "is not a time zone"),
        (&["quarantine", "retry", "5"], "there is no quarantined update 5"),
        (&["--log-format", "yaml", "check"], "possible values: text, json"),
    ];
    for (args, expected) in cases {
        let (ok, _, err) = run_on(&db, args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(expected), "{args:?}: expected {expected:?} in:\n{err}");
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_stale_lists_the_entries_whose_status_needs_checking() {
    let content = support::shipped();
    let out = bin().args(["check", "--stale", "36500"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // With a century allowed, only the never-checked programmes are left, each on its own line.
    let mut never: Vec<&str> =
        content.entries.iter().filter(|e| !e.is_guide() && e.status_checked.is_none()).map(|e| e.id.as_str()).collect();
    never.sort();
    assert!(!never.is_empty());
    let listed: Vec<&str> = stdout.lines().filter(|l| l.contains('\t')).map(|l| l.split('\t').next().unwrap_or_default()).collect();
    assert_eq!(listed, never, "{stdout}");
    assert!(stdout.lines().filter(|l| l.contains('\t')).all(|l| l.contains("never checked")), "{stdout}");
    assert!(stdout.contains(&format!("{} of {} entries need a status check", never.len(), content.entries.len())), "{stdout}");
    // Any check older than a negative age: every programme, the checked ones with their date.
    let out = bin().args(["check", "--stale=-1"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let checked = content.entries.iter().filter(|e| !e.is_guide() && e.status_checked.is_some()).count();
    assert!(checked > 0);
    assert_eq!(stdout.lines().filter(|l| l.contains("\tchecked 20")).count(), checked, "{stdout}");
    // A fixture whose status was checked long ago is stale for a year; the report is not needed.
    let dir = std::env::temp_dir().join(format!("sme-advisor-stale-{}", std::process::id()));
    let knowledge = dir.join("knowledge");
    std::fs::create_dir_all(knowledge.join("entries")).unwrap();
    let checked = regex::Regex::new(r"(?m)^status_checked = .*$").unwrap();
    for f in support::shipped_sources().iter().filter(|f| f.path.starts_with("knowledge/")) {
        let path = dir.join(&f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = if f.path == "knowledge/entries/empretec.toml" {
            checked.replace(&f.text, "status_checked = 2001-01-01").into_owned()
        } else {
            f.text.clone()
        };
        std::fs::write(path, text).unwrap();
    }
    let out = bin().args(["check", "--stale", "365", "--knowledge"]).arg(&knowledge).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with("empretec\t")).unwrap_or_else(|| panic!("empretec is stale:\n{stdout}"));
    assert!(line.contains("checked 2001-01-01 ("), "{line}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_backup_opens_and_only_migrate_or_serve_change_an_old_schema() {
    use sme_advisor::engine::{self, Input};
    use sme_advisor::store::Store;
    let dir = temp_dir("cli-backup");
    let db = dir.join("db.sqlite3");
    {
        let mut store = Store::open(&db).unwrap();
        let content = support::shipped();
        store.turn("telegram", "a", "en", 1_000, |s| engine::step(content, s, &Input::Text("what is empretec".into()), 1_000)).unwrap();
    }
    let copy = dir.join("copy.sqlite3");
    let (ok, out, err) = run_on(&db, &["backup", copy.to_str().unwrap()]);
    assert!(ok && out.contains("backup written"), "{out}{err}");
    assert_eq!(Store::open(&copy).unwrap().inquiries(10).unwrap().len(), 1);
    let (ok, _, err) = run_on(&db, &["backup", copy.to_str().unwrap()]);
    assert!(!ok && err.contains("already exists"), "{err}");

    // An older schema: commands other than migrate stop with one line and change nothing.
    // Undo the migrations after 6 (the web desk's, then 7) to get a database as version 6 left it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER inquiries_fts_insert; DROP TRIGGER inquiries_fts_delete; DROP TRIGGER inquiries_fts_update;
         DROP TABLE web_login_links; DROP TABLE web_sessions; DROP TABLE audit_log; DROP TABLE inquiries_fts;
         DROP INDEX inquiries_inbox; DROP INDEX inquiries_stats; DROP INDEX inquiries_unanswered; DROP INDEX inquiries_filters;
         DROP TABLE quarantine; DROP TABLE heartbeat;
         ALTER TABLE updates DROP COLUMN attempts; ALTER TABLE updates DROP COLUMN retry_requested;",
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 6).unwrap();
    drop(conn);
    let (ok, _, err) = run_on(&db, &["inquiries", "list"]);
    assert!(!ok && err.contains("run `sme-advisor migrate`") && err.lines().count() == 1, "{err}");
    assert_eq!(Store::schema_version(&db).unwrap().0, 6);
    let (ok, out, err) = run_on(&db, &["migrate"]);
    assert!(ok && out.contains("from schema version 6 to"), "{out}{err}");
    let backups = std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().path().to_string_lossy().contains(".v6-")).count();
    assert_eq!(backups, 1, "migrate backs the old database up first");
    let (ok, out, _) = run_on(&db, &["inquiries", "list"]);
    assert!(ok && out.contains("what is empretec"), "{out}");

    // A new database is still created by any command.
    let fresh = dir.join("fresh/db.sqlite3");
    let (ok, _, err) = run_on(&fresh, &["quarantine", "list"]);
    assert!(ok && err.contains("0 quarantined"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_setting_of_env_example_is_in_help_and_secrets_are_not() {
    let example = std::fs::read_to_string(support::root().join(".env.example")).unwrap();
    let out =
        bin().arg("--help").env("TELOXIDE_TOKEN", "123:SECRETSECRETSECRETSECRET").env("WEBHOOK_SECRET", "hush-hush").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let mut n = 0;
    for line in example.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, _)) = line.split_once('=') else { continue };
        if name == "SME_ADVISOR_TEST_HOOKS" {
            continue;
        }
        n += 1;
        assert!(help.contains(&format!("[env: {name}")), "{name} is not in --help:\n{help}");
    }
    assert!(n >= 20, "{n}");
    assert!(!help.contains("SECRETSECRET") && !help.contains("hush-hush"), "{help}");
}

#[test]
fn links_prints_every_link_with_the_date_its_domain_was_checked() {
    let content = support::shipped();
    let out = bin().arg("links").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let linked: Vec<_> = content.entries.iter().filter(|e| e.link.is_some()).collect();
    assert!(linked.len() >= 5);
    for entry in &linked {
        let link = entry.link.as_deref().unwrap_or_default();
        let line =
            stdout.lines().find(|l| l.starts_with(&format!("{}\t{link}\t", entry.id))).unwrap_or_else(|| panic!("{}:\n{stdout}", entry.id));
        let domain = content.links.iter().find(|d| content::link_host(link).is_some_and(|h| d.covers(&h))).expect("listed");
        assert!(line.ends_with(&format!("checked {}", domain.checked)) && line.contains(&domain.domain), "{line}");
    }
    assert!(stdout.contains(&format!("{} of {} entries have a link", linked.len(), content.entries.len())), "{stdout}");
}
