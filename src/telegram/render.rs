//! Engine replies as Telegram messages: HTML with every dynamic text escaped, keyboards for a narrow
//! screen, and texts over Telegram's limit split at paragraph boundaries.

use serde::{Deserialize, Serialize};

use crate::engine::{Button, Reply};

/// Telegram's limit for one message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Labels up to this long sit two to a row; longer ones get a row of their own.
const SHORT_LABEL_CHARS: usize = 16;

/// One message to send: HTML text and rows of (label, callback data).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
    pub keyboard: Vec<Vec<(String, String)>>,
}

/// Escapes the three characters HTML parse mode needs escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// Lays buttons out for a phone: short labels two to a row, long ones alone.
pub fn layout(buttons: &[Button]) -> Vec<Vec<(String, String)>> {
    let mut rows: Vec<Vec<(String, String)>> = Vec::new();
    for b in buttons {
        let short = b.label.chars().count() <= SHORT_LABEL_CHARS;
        let button = (b.label.clone(), b.data.clone());
        match rows.last_mut() {
            Some(row) if short && row.len() == 1 && row[0].0.chars().count() <= SHORT_LABEL_CHARS => row.push(button),
            _ => rows.push(vec![button]),
        }
    }
    rows
}

/// One reply as one or more messages; the buttons go with the last part.
pub fn render(reply: &Reply) -> Vec<Message> {
    let mut text = String::new();
    if let Some(title) = &reply.title {
        text.push_str("<b>");
        text.push_str(&escape(title));
        text.push_str("</b>\n");
    }
    text.push_str(&escape(&reply.text));
    let mut parts = split(&text, MAX_MESSAGE_CHARS);
    if parts.is_empty() {
        parts.push(String::new());
    }
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, text)| Message { text, keyboard: if i + 1 == n { layout(&reply.buttons) } else { Vec::new() } })
        .collect()
}

/// Joins a message without buttons to the one after it when both fit in one Telegram message
/// (a greeting and the menu, a flow's intro and its question): half the sends that count against
/// Telegram's limits, and one notification on the phone instead of two.
pub fn join(messages: Vec<Message>) -> Vec<Message> {
    let mut joined: Vec<Message> = Vec::with_capacity(messages.len());
    for message in messages {
        if let Some(last) = joined.last_mut()
            && last.keyboard.is_empty()
            && last.text.chars().count() + 2 + message.text.chars().count() <= MAX_MESSAGE_CHARS
        {
            last.text.push_str("\n\n");
            last.text.push_str(&message.text);
            last.keyboard = message.keyboard;
            continue;
        }
        joined.push(message);
    }
    joined
}

/// Splits text into parts of at most `max` characters, at paragraph breaks, else line breaks,
/// else spaces, never inside an HTML entity or tag.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text.trim_end();
    while rest.chars().count() > max {
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..limit];
        let cut = ["\n\n", "\n", " "].iter().find_map(|sep| window.rfind(sep).filter(|&i| i > 0)).unwrap_or_else(|| safe_cut(window));
        parts.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

/// A cut point in a window with no whitespace that does not split an entity or a tag.
fn safe_cut(window: &str) -> usize {
    let open = window.rfind(['&', '<']);
    let close = window.rfind([';', '>']);
    match (open, close) {
        (Some(o), Some(c)) if o > c => o,
        (Some(o), None) => o,
        _ => window.len(),
    }
    .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_text_is_escaped() {
        let reply = Reply { title: Some("R&D <fund>".into()), text: "a < b & c > d".into(), buttons: vec![] };
        assert_eq!(render(&reply)[0].text, "<b>R&amp;D &lt;fund&gt;</b>\na &lt; b &amp; c &gt; d");
    }

    #[test]
    fn long_texts_split_at_paragraphs_and_keep_buttons_last() {
        let para = "word ".repeat(300);
        let text = format!("{para}\n\n{para}\n\n{para}\n\n{para}");
        let reply = Reply { title: None, text, buttons: vec![Button { label: "Menu".into(), data: "m".into() }] };
        let messages = render(&reply);
        assert!(messages.len() >= 2);
        assert!(messages.iter().all(|m| m.text.chars().count() <= MAX_MESSAGE_CHARS && !m.text.is_empty()));
        assert!(messages[..messages.len() - 1].iter().all(|m| m.keyboard.is_empty()));
        assert_eq!(messages.last().unwrap().keyboard, vec![vec![("Menu".to_string(), "m".to_string())]]);
        let unbroken = "&amp;".repeat(2000);
        assert!(split(&unbroken, 4096).iter().all(|p| p.ends_with(';') && p.starts_with('&')));
    }

    #[test]
    fn short_labels_pair_up_long_ones_stand_alone() {
        let b = |l: &str| Button { label: l.into(), data: l.into() };
        let rows = layout(&[b("Yes"), b("No"), b("A much longer label here"), b("Menu")]);
        assert_eq!(rows.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1, 1]);
    }

    #[test]
    fn a_message_without_buttons_joins_the_next_when_both_fit() {
        let m = |text: &str, buttons: bool| Message {
            text: text.to_string(),
            keyboard: if buttons { vec![vec![("Menu".to_string(), "m".to_string())]] } else { Vec::new() },
        };
        let joined = join(vec![m("Hello!", false), m("What does your business need?", true), m("A card", true)]);
        assert_eq!(joined.len(), 2);
        assert_eq!(joined[0].text, "Hello!\n\nWhat does your business need?");
        assert_eq!(joined[0].keyboard.len(), 1);
        let long = "x".repeat(MAX_MESSAGE_CHARS - 5);
        assert_eq!(join(vec![m(&long, false), m("more text", true)]).len(), 2, "too long together");
    }
}
