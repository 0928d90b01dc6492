//! Telegram updates as engine input: what the user did, in which chat, and whether to answer at all.
//!
//! This is the "decide" half of receiving: no network and no database. In groups the bot answers
//! only commands and messages addressed to it (a mention or a reply to one of its messages), and
//! never answers stickers or photos there.

use teloxide::types::{Message, MessageEntity, MessageEntityKind, Update, UpdateKind};

use crate::engine::Input;

/// What to do with one update.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    /// A conversation turn for a user in a chat.
    Turn(Turn),
    /// An inline query (`@bot credit uganda` in any chat).
    Inline { id: String, lang: Option<String>, query: String },
    /// Nothing to answer.
    Ignore,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub chat_id: i64,
    pub user_id: u64,
    pub lang: Option<String>,
    pub input: Input,
    /// For a button press: the callback to answer and the message the button was on.
    pub callback: Option<Callback>,
    /// The message this one replies to, if any.
    pub reply_to: Option<i32>,
    /// Whether the chat is a private chat with the user.
    pub private: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Callback {
    pub id: String,
    pub message_id: Option<i32>,
}

/// The chat an update belongs to, for ordering: updates of one chat are handled in order.
pub fn chat_of(update: &Update) -> i64 {
    match &update.kind {
        UpdateKind::Message(m) | UpdateKind::EditedMessage(m) => m.chat.id.0,
        UpdateKind::CallbackQuery(q) => q.message.as_ref().map_or(q.from.id.0 as i64, |m| m.chat().id.0),
        UpdateKind::InlineQuery(q) => q.from.id.0 as i64,
        _ => 0,
    }
}

/// Reads an update; `bot_username` is the bot's own username, without `@`.
pub fn read(update: &Update, bot_username: &str) -> Inbound {
    match &update.kind {
        UpdateKind::Message(message) => read_message(message, bot_username),
        UpdateKind::CallbackQuery(q) => {
            let Some(data) = q.data.clone() else { return Inbound::Ignore };
            let chat_id = q.message.as_ref().map_or(q.from.id.0 as i64, |m| m.chat().id.0);
            Inbound::Turn(Turn {
                chat_id,
                user_id: q.from.id.0,
                lang: q.from.language_code.clone(),
                input: Input::Button(data),
                callback: Some(Callback { id: q.id.0.clone(), message_id: q.message.as_ref().map(|m| m.id().0) }),
                reply_to: None,
                private: q.message.as_ref().is_none_or(|m| m.chat().is_private()),
            })
        }
        UpdateKind::InlineQuery(q) => Inbound::Inline { id: q.id.0.clone(), lang: q.from.language_code.clone(), query: q.query.clone() },
        _ => Inbound::Ignore,
    }
}

fn read_message(message: &Message, bot_username: &str) -> Inbound {
    let Some(from) = &message.from else { return Inbound::Ignore };
    if from.is_bot {
        return Inbound::Ignore;
    }
    let private = message.chat.is_private();
    let reply_to = message.reply_to_message().map(|r| r.id.0);
    let turn = |input: Input| {
        Inbound::Turn(Turn {
            chat_id: message.chat.id.0,
            user_id: from.id.0,
            lang: from.language_code.clone(),
            input,
            callback: None,
            reply_to,
            private,
        })
    };
    let Some(text) = message.text() else {
        if !private {
            return Inbound::Ignore;
        }
        return match unsupported_kind(message) {
            Some(kind) => turn(Input::Unsupported(kind.to_string())),
            None => Inbound::Ignore,
        };
    };
    let entities = entity_ranges(text, message.entities().unwrap_or_default());
    // A command is what Telegram marked as one at the start of the message.
    if let Some((_, range)) = entities.iter().find(|(kind, range)| matches!(kind, MessageEntityKind::BotCommand) && range.start == 0) {
        let head = &text[range.clone()];
        let head = head.strip_prefix('/').unwrap_or(head);
        let (name, addressee) = head.split_once('@').map_or((head, None), |(n, a)| (n, Some(a)));
        if addressee.is_some_and(|a| !a.eq_ignore_ascii_case(bot_username)) {
            return Inbound::Ignore;
        }
        let name = name.to_ascii_lowercase();
        let args = text[range.end..].trim().to_string();
        if name == "start" {
            let payload = args.split_whitespace().next().filter(|p| valid_payload(p)).map(str::to_string);
            return turn(Input::Start { payload });
        }
        return turn(Input::Command { name, args });
    }
    if private {
        return turn(Input::Text(text.trim().to_string()));
    }
    // In a group: only when addressed, by a mention Telegram marked or a reply to the bot.
    let mention = entities.iter().find(|(kind, range)| match kind {
        MessageEntityKind::Mention => text[range.clone()].strip_prefix('@').is_some_and(|n| n.eq_ignore_ascii_case(bot_username)),
        MessageEntityKind::TextMention { user } => user.username.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(bot_username)),
        _ => false,
    });
    if let Some((_, range)) = mention {
        let stripped = format!("{}{}", &text[..range.start], &text[range.end..]);
        return turn(Input::Text(stripped.trim().to_string()));
    }
    let replying_to_bot = message
        .reply_to_message()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|u| u.is_bot && u.username.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(bot_username)));
    if replying_to_bot {
        return turn(Input::Text(text.trim().to_string()));
    }
    Inbound::Ignore
}

/// The entities of a text with their byte ranges. Telegram counts offsets in UTF-16 code units;
/// an entity whose offsets do not fall on character boundaries of the text (a forged or broken
/// update) is left out rather than trusted.
fn entity_ranges<'a>(text: &str, entities: &'a [MessageEntity]) -> Vec<(&'a MessageEntityKind, std::ops::Range<usize>)> {
    entities
        .iter()
        .filter_map(|e| {
            let end = e.offset.checked_add(e.length)?;
            let start = byte_offset(text, e.offset)?;
            let end = byte_offset(text, end)?;
            (start < end).then_some((&e.kind, start..end))
        })
        .collect()
}

/// The byte offset of a UTF-16 offset, if it falls on a character boundary of `text`.
fn byte_offset(text: &str, utf16: usize) -> Option<usize> {
    let mut units = 0;
    for (byte, c) in text.char_indices() {
        if units == utf16 {
            return Some(byte);
        }
        if units > utf16 {
            return None;
        }
        units += c.len_utf16();
    }
    (units == utf16).then_some(text.len())
}

/// A deep-link payload: 1-64 characters of `A-Z a-z 0-9 _ -`.
fn valid_payload(payload: &str) -> bool {
    (1..=64).contains(&payload.len()) && payload.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn unsupported_kind(message: &Message) -> Option<&'static str> {
    if message.sticker().is_some() {
        Some("sticker")
    } else if message.photo().is_some() {
        Some("photo")
    } else if message.voice().is_some() || message.audio().is_some() {
        Some("voice")
    } else if message.video().is_some() || message.video_note().is_some() || message.animation().is_some() {
        Some("video")
    } else if message.location().is_some() {
        Some("location")
    } else if message.document().is_some() {
        Some("document")
    } else if message.contact().is_some() {
        Some("contact")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(json: serde_json::Value) -> Update {
        serde_json::from_str(&json.to_string()).expect("a valid update")
    }

    /// A message with the entities Telegram would add: a command at the start, `@mentions`.
    fn message(chat: serde_json::Value, text: &str) -> Update {
        let mut entities = Vec::new();
        let mut units = 0;
        for word in text.split(' ') {
            let len: usize = word.chars().map(char::len_utf16).sum();
            if (word.starts_with('/') && units == 0) || word.starts_with('@') {
                let kind = if word.starts_with('/') { "bot_command" } else { "mention" };
                entities.push(serde_json::json!({"type": kind, "offset": units, "length": len}));
            }
            units += len + 1;
        }
        with_entities(chat, text, serde_json::Value::Array(entities))
    }

    fn with_entities(chat: serde_json::Value, text: &str, entities: serde_json::Value) -> Update {
        update(serde_json::json!({
            "update_id": 1,
            "message": {"message_id": 5, "date": 1_795_000_000i64, "chat": chat, "from": {"id": 42, "is_bot": false, "first_name": "A", "language_code": "fr"}, "text": text, "entities": entities}
        }))
    }

    #[test]
    fn private_texts_commands_and_deep_links() {
        let private = serde_json::json!({"id": 42, "type": "private", "first_name": "A"});
        let u = message(private.clone(), "credit uganda");
        let Inbound::Turn(t) = read(&u, "advisor_bot") else { panic!("{u:?}") };
        assert_eq!((t.chat_id, t.user_id, t.lang.as_deref(), t.input), (42, 42, Some("fr"), Input::Text("credit uganda".into())));
        let Inbound::Turn(t) = read(&message(private.clone(), "/start empretec"), "advisor_bot") else { panic!() };
        assert_eq!(t.input, Input::Start { payload: Some("empretec".into()) });
        let Inbound::Turn(t) = read(&message(private.clone(), "/start ../etc"), "advisor_bot") else { panic!() };
        assert_eq!(t.input, Input::Start { payload: None });
        let Inbound::Turn(t) = read(&message(private, "/Menu@advisor_bot now"), "advisor_bot") else { panic!() };
        assert_eq!(t.input, Input::Command { name: "menu".into(), args: "now".into() });
    }

    #[test]
    fn groups_are_answered_only_when_addressed() {
        let group = serde_json::json!({"id": -100, "type": "group", "title": "Traders"});
        assert_eq!(read(&message(group.clone(), "anyone know a bank?"), "advisor_bot"), Inbound::Ignore);
        assert_eq!(read(&message(group.clone(), "/menu@other_bot"), "advisor_bot"), Inbound::Ignore);
        let Inbound::Turn(t) = read(&message(group.clone(), "@advisor_bot credit in Kenya"), "advisor_bot") else { panic!() };
        assert_eq!((t.chat_id, t.input), (-100, Input::Text("credit in Kenya".into())));
        let Inbound::Turn(t) = read(&message(group, "/help"), "advisor_bot") else { panic!() };
        assert_eq!(t.input, Input::Command { name: "help".into(), args: String::new() });
    }

    #[test]
    fn case_mappings_and_broken_offsets_never_panic() {
        let group = serde_json::json!({"id": -100, "type": "group", "title": "Traders"});
        // The lowercase of "İ" is longer than "İ": the old text search sliced inside a character.
        assert_eq!(
            read(&message(group.clone(), "İİİİ @advisor_bot"), "advisor_bot"),
            read(&message(group.clone(), "İİİİ @advisor_bot"), "advisor_bot")
        );
        let Inbound::Turn(t) = read(&message(group.clone(), "İİİİ @advisor_bot ß"), "advisor_bot") else { panic!() };
        assert_eq!(t.input, Input::Text("İİİİ  ß".into()));
        let private = serde_json::json!({"id": 42, "type": "private", "first_name": "A"});
        let Inbound::Turn(t) = read(&message(private.clone(), "/stats é"), "advisor_bot") else { panic!() };
        assert_eq!(t.input, Input::Command { name: "stats".into(), args: "é".into() });
        // Offsets inside a surrogate pair, past the end, or overflowing: ignored, never trusted.
        for (offset, length) in [(1usize, 2usize), (0, 99), (usize::MAX, 2), (3, usize::MAX)] {
            let entities = serde_json::json!([{"type": "bot_command", "offset": offset, "length": length}, {"type": "mention", "offset": offset, "length": length}]);
            let u = with_entities(group.clone(), "😀/x @advisor_bot", entities);
            assert_eq!(read(&u, "advisor_bot"), Inbound::Ignore, "{offset} {length}");
            let u =
                with_entities(private.clone(), "😀/x", serde_json::json!([{"type": "bot_command", "offset": offset, "length": length}]));
            let Inbound::Turn(t) = read(&u, "advisor_bot") else { panic!() };
            assert_eq!(t.input, Input::Text("😀/x".into()));
        }
        // A slash without Telegram's command entity is text.
        let u = with_entities(private, "/not a command", serde_json::json!([]));
        let Inbound::Turn(t) = read(&u, "advisor_bot") else { panic!() };
        assert_eq!(t.input, Input::Text("/not a command".into()));
    }
}
