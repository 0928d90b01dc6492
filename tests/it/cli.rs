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
