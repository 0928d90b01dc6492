//! Golden conversations: every `tests/transcripts/*.txt` replayed through the real content.
//!
//! A transcript is what a content editor would read:
//!
//! ```text
//! # a comment
//! @user 1001 lang=en        who talks from here on (each user keeps a profile); lang is their
//!                           Telegram language tag (pt-BR, fr-CA...), mapped as the bot maps it
//! @drop-step financing.sector   simulate a content change that removes a step
//! > /start                  what the user types: text, /command, a button number or label, [sticker]
//! < Hello! ...              what the bot answers; buttons as `  [n] label`
//! ! inquiry question ...    what the turn stored
//! ```
//!
//! Lines starting with `<` and `!` are produced by the replay; `UPDATE_GOLDEN=1 cargo test`
//! rewrites them, and the diff is reviewed. The clock starts at a fixed time and moves a minute a turn.

use std::collections::HashMap;

use sme_advisor::content::Content;
use sme_advisor::engine::{self, Button};
use sme_advisor::store::Store;
use sme_advisor::terminal::{describe_effect, parse_input, render};

use crate::support;

const START: i64 = 1_795_000_000;

fn replay(source: &str) -> String {
    let mut store = Store::open_in_memory().expect("in-memory store");
    let mut owned: Option<Content> = None;
    let mut out = String::new();
    let mut user: Option<(String, String)> = None;
    let mut buttons: HashMap<String, Vec<Button>> = HashMap::new();
    let mut now = START;
    for line in source.lines() {
        if line.starts_with('<') || line.starts_with('!') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if let Some(rest) = line.strip_prefix("@user ") {
            let mut parts = rest.split_whitespace();
            let id = parts.next().expect("@user needs an id");
            // The user's own language tag, mapped as the Telegram front end maps `language_code`.
            let lang = support::shipped().language_for(parts.find_map(|p| p.strip_prefix("lang=")));
            user = Some((id.to_string(), lang));
        } else if let Some(target) = line.strip_prefix("@drop-step ") {
            let (flow, step) = target.trim().split_once('.').expect("@drop-step flow.step");
            let mut content = support::load(&support::shipped_sources()).expect("content");
            let f = content.flows.get_mut(flow).expect("the flow exists");
            f.steps.retain(|s| s.id != step);
            for s in &mut f.steps {
                if s.next.as_ref().is_some_and(|n| n.step == step) {
                    s.next = None;
                }
            }
            owned = Some(content);
        } else if let Some(typed) = line.strip_prefix("> ") {
            let (id, lang) = user.clone().expect("a transcript starts with @user");
            let content = owned.as_ref().unwrap_or_else(|| support::shipped());
            let input = parse_input(typed, buttons.get(&id).map_or(&[], Vec::as_slice));
            now += 60;
            let (_, step) = store.turn("terminal", &id, &lang, now, |session| engine::step(content, session, &input, now)).expect("turn");
            let (lines, b) = render(&step.replies);
            buttons.insert(id, b);
            for l in lines {
                out.push_str(format!("< {l}").trim_end());
                out.push('\n');
            }
            for effect in &step.effects {
                out.push_str(&format!("! {}\n", describe_effect(effect)));
            }
        }
    }
    out
}

#[test]
fn transcripts_replay_as_recorded() {
    let dir = support::root().join("tests/transcripts");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/transcripts")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 8, "expected the transcript suite, found {}", paths.len());
    let mut failures = Vec::new();
    for path in paths {
        let source = std::fs::read_to_string(&path).expect("readable transcript");
        let actual = replay(&source);
        if actual != source {
            if update {
                std::fs::write(&path, &actual).expect("rewrite transcript");
            } else {
                let first = source
                    .lines()
                    .zip(actual.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| source.lines().count().min(actual.lines().count()));
                let expected_line = source.lines().nth(first).unwrap_or("<end of file>");
                let actual_line = actual.lines().nth(first).unwrap_or("<end of output>");
                failures.push(format!("{}:{}:\n  expected: {expected_line}\n  actual:   {actual_line}", path.display(), first + 1));
            }
        }
    }
    assert!(failures.is_empty(), "transcripts differ (UPDATE_GOLDEN=1 rewrites them; review the diff):\n{}", failures.join("\n"));
}
