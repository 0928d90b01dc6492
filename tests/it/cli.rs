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
