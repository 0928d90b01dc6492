//! The command line as a user runs it: `check` and a scripted `chat`.

use std::io::Write;
use std::process::{Command, Stdio};

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
    // Undo migration 7 to get a database as version 6 left it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TABLE quarantine; DROP TABLE heartbeat;
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
