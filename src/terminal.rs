//! The terminal chat: the same engine and database as the bot, with numbered buttons.
//!
//! On a terminal it shows a prompt; when standard input is a pipe it reads plain lines and prints
//! plain replies, so conversations can be scripted. The rendering here is also the format of the
//! golden transcripts under `tests/transcripts/`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context as _;

use crate::clock::now;
use crate::content::Content;
use crate::engine::{self, Button, Effect, Input, Reply};
use crate::store::Store;

/// Turns a typed line into engine input: `/command args`, `[sticker]`, a button number or label, or text.
pub fn parse_input(line: &str, buttons: &[Button]) -> Input {
    let line = line.trim();
    if let Some(command) = line.strip_prefix('/') {
        let (name, args) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
        let name = name.split('@').next().unwrap_or(name).to_ascii_lowercase();
        let args = args.trim().to_string();
        if name == "start" {
            let payload = args.split_whitespace().next().map(str::to_string);
            return Input::Start { payload };
        }
        return Input::Command { name, args };
    }
    if let Some(kind) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']'))
        && !kind.is_empty()
        && kind.chars().all(|c| c.is_ascii_alphabetic())
    {
        return Input::Unsupported(kind.to_string());
    }
    if let Ok(n) = line.parse::<usize>()
        && let Some(button) = n.checked_sub(1).and_then(|i| buttons.get(i))
    {
        return Input::Button(button.data.clone());
    }
    if let Some(button) = buttons.iter().find(|b| b.label.eq_ignore_ascii_case(line)) {
        return Input::Button(button.data.clone());
    }
    Input::Text(line.to_string())
}

/// Renders replies as lines, numbering buttons from 1 (links show their address instead); returns the
/// lines and the numbered buttons in order.
pub fn render(replies: &[Reply]) -> (Vec<String>, Vec<Button>) {
    let mut lines = Vec::new();
    let mut buttons = Vec::new();
    for reply in replies {
        if let Some(title) = &reply.title {
            lines.push(format!("** {title} **"));
        }
        for line in reply.text.lines() {
            lines.push(line.to_string());
        }
        for button in &reply.buttons {
            // A link opens an address: shown with it, not numbered, since pressing sends nothing back.
            if button.is_link() {
                lines.push(format!("  (link) {}: {}", button.label, button.data));
                continue;
            }
            buttons.push(button.clone());
            lines.push(format!("  [{}] {}", buttons.len(), button.label));
        }
    }
    (lines, buttons)
}

/// One line per effect, as transcripts show them.
pub fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::ProfileSet { field, value } => format!("profile {field}={}", value.as_deref().unwrap_or("-")),
        Effect::LanguageSet(lang) => format!("language {lang}"),
        Effect::Inquiry(i) => format!(
            "inquiry {} answered={} matched={} confidence={:.2}{}",
            i.kind.name(),
            if i.answered { "yes" } else { "no" },
            if i.matched.is_empty() { "-".to_string() } else { i.matched.join(",") },
            i.confidence,
            i.topic.as_ref().map(|t| format!(" topic={t}")).unwrap_or_default()
        ),
        Effect::Handoff { text } => format!("handoff {text:?}"),
        Effect::Subscription { active, topics } => {
            format!("subscription {} topics={}", if *active { "on" } else { "off" }, topics.join(","))
        }
        Effect::Forget => "forget".to_string(),
        Effect::SaveCall(id) => format!("save call {id}"),
        Effect::BroadcastDraft(slots) => {
            format!("broadcast draft {}", slots.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(" "))
        }
    }
}

/// Runs the chat until end of input or `/quit`.
pub fn chat(content: &Content, store: &mut Store, user: &str, lang: &str) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut out = std::io::stdout().lock();
    let mut buttons: Vec<Button> = Vec::new();
    if interactive {
        let hint = content.message("terminal_hint", lang, &[]);
        writeln!(out, "{hint}")?;
        buttons = run(content, store, user, lang, &Input::Start { payload: None }, &mut out)?;
    }
    let mut line = String::new();
    loop {
        if interactive {
            write!(out, "> ")?;
            out.flush()?;
        }
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let typed = line.trim();
        if typed.is_empty() {
            continue;
        }
        if typed == "/quit" || typed == "/exit" {
            break;
        }
        let input = parse_input(typed, &buttons);
        buttons = run(content, store, user, lang, &input, &mut out)?;
    }
    Ok(())
}

fn run(content: &Content, store: &mut Store, user: &str, lang: &str, input: &Input, out: &mut impl Write) -> anyhow::Result<Vec<Button>> {
    let at = now();
    let (_, step) = store
        .turn("terminal", user, lang, at, |session| engine::step(content, session, input, at))
        .context("cannot save the conversation")?;
    let (lines, buttons) = render(&step.replies);
    for line in &lines {
        writeln!(out, "{line}")?;
    }
    writeln!(out)?;
    Ok(buttons)
}
