//! Fuzzing the Telegram intake: arbitrary update JSON through what a real update meets, on an in-memory store.
//!
//! Nothing here runs in the bot. [`IntakeFuzz`] turns bytes into an update (raw JSON when the bytes
//! start with `{`, otherwise a structured one: texts, captions, entities with any offsets, callback
//! data, inline queries, chats of every kind, language codes, case mappings that change length,
//! combining floods), then runs what `serve` runs before any network call: parsing, reading the
//! update ([`inbound::read`]), parsing a desk command or button, the engine's turn through the
//! store, and the messages the turn queues. It checks that none of it panics and that every
//! queued message fits Telegram's limits. Shared by `fuzz/fuzz_targets/telegram_intake.rs`,
//! `tests/it/properties.rs` and `tests/it/fuzz_replay.rs`.

use std::sync::Mutex;

use serde_json::{Value, json};
use teloxide::types::Update;

use super::inbound::{self, Inbound};
use super::{CHANNEL, Out, outgoing};
use crate::content::{Content, MAX_BUTTON_DATA_BYTES, MAX_TEXT_CHARS};
use crate::desk;
use crate::engine::{self, Input, Timestamp};
use crate::fuzzing::Bytes;
use crate::store::Store;

/// The bot's username in fuzzed updates.
pub const BOT_USERNAME: &str = "advisor_bot";
/// The clock of every fuzzed turn.
const NOW: Timestamp = 1_800_000_000;
/// A fresh store after this many inputs, so a long run does not grow without bound.
const INPUTS_PER_STORE: usize = 2_000;

/// Pieces of text that have broken string handling before, or could: case mappings that change
/// length (İ, ß, ǅ, ﬁ), combining marks, direction marks, surrogate-pair emoji, markup, commands.
const PIECES: &[&str] = &[
    "İ",
    "ß",
    "ǅ",
    "ﬁ",
    "ŉ",
    "\u{301}",
    "\u{200f}",
    "\u{202e}",
    "😀",
    "🇺🇬",
    "é",
    "<b>",
    "&amp;",
    "/",
    "@",
    "@advisor_bot",
    "/stats",
    "/export",
    "/start",
    "/inquiry",
    "/learn",
    "/grant",
    "credit",
    "uganda",
    "empretec",
    "..",
    "2026-02-31",
    "7d",
    "\u{0}",
    " ",
    "\n",
];

/// Drives updates from bytes through the intake on one content, with an in-memory store.
pub struct IntakeFuzz<'c> {
    content: &'c Content,
    store: Mutex<(Store, usize)>,
}

impl<'c> IntakeFuzz<'c> {
    pub fn new(content: &'c Content) -> Self {
        IntakeFuzz { content, store: Mutex::new((Store::open_in_memory().expect("an in-memory store"), 0)) }
    }

    /// For the fuzz target: a broken invariant panics.
    pub fn run(&self, data: &[u8]) {
        if let Err(problem) = self.check(data) {
            panic!("{problem}");
        }
    }

    /// Decodes and plays one update; `Err` names the broken invariant.
    pub fn check(&self, data: &[u8]) -> Result<(), String> {
        self.check_update(decode(data))
    }

    /// Plays one update given as JSON.
    pub fn check_update(&self, value: Value) -> Result<(), String> {
        // What teloxide cannot parse, the bot skips (tested elsewhere); nothing more to check.
        let Ok(update) = serde_json::from_value::<Update>(value) else { return Ok(()) };
        let _ = inbound::chat_of(&update);
        match inbound::read(&update, BOT_USERNAME) {
            Inbound::Ignore => Ok(()),
            Inbound::Inline { query, .. } => {
                let _ = self.content.index.top_entries(&query, 10);
                Ok(())
            }
            Inbound::Turn(turn) => {
                match &turn.input {
                    Input::Command { name, args } => {
                        let _ = desk::parse_command(name, args, NOW);
                    }
                    Input::Button(data) => {
                        let _ = desk::parse_button(data);
                    }
                    _ => {}
                }
                let lang = self.content.language_for(turn.lang.as_deref());
                let mut guard = self.store.lock().unwrap_or_else(|e| e.into_inner());
                if guard.1 >= INPUTS_PER_STORE {
                    *guard = (Store::open_in_memory().map_err(|e| e.to_string())?, 0);
                }
                guard.1 += 1;
                let content = self.content;
                let (_, step) = guard
                    .0
                    .turn(CHANNEL, &turn.user_id.to_string(), &lang, NOW, |session| engine::step(content, session, &turn.input, NOW))
                    .map_err(|e| format!("the turn could not be stored: {e}"))?;
                drop(guard);
                for queued in outgoing(&turn, &step) {
                    let op: Out = serde_json::from_str(&queued.payload).map_err(|e| format!("a queued operation does not parse: {e}"))?;
                    if let Out::Send { message, .. } | Out::Edit { message, .. } = &op {
                        let chars = message.text.chars().count();
                        if chars == 0 || chars > MAX_TEXT_CHARS {
                            return Err(format!("a message of {chars} characters"));
                        }
                        for (label, data) in message.keyboard.iter().flatten() {
                            if label.is_empty() || data.is_empty() || data.len() > MAX_BUTTON_DATA_BYTES {
                                return Err(format!("a button {label:?} with {} bytes of data", data.len()));
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// Bytes as an update: raw JSON when they start with `{`, otherwise built from the bytes.
pub fn decode(data: &[u8]) -> Value {
    if data.first() == Some(&b'{')
        && let Ok(value) = serde_json::from_slice::<Value>(data)
    {
        return value;
    }
    let mut bytes = Bytes::new(data);
    let user_id = i64::from(bytes.byte()) + 1;
    let languages = ["en", "fr", "pt-BR", "es-419", "ht", "zz", "", "İ"];
    let lang = languages[usize::from(bytes.byte()) % languages.len()];
    let mut from = json!({"id": user_id, "is_bot": false, "first_name": "U"});
    if !lang.is_empty() {
        from["language_code"] = json!(lang);
    }
    let chat = match bytes.byte() % 4 {
        0 | 1 => json!({"id": user_id, "type": "private", "first_name": "U"}),
        2 => json!({"id": -100, "type": "group", "title": "G"}),
        _ => json!({"id": -1_000_000_000_100i64, "type": "supergroup", "title": "S"}),
    };
    let text = text(&mut bytes);
    let entities = entities(&mut bytes, &text);
    let mut message = json!({"message_id": 7, "date": NOW, "chat": chat, "from": from});
    match bytes.byte() % 8 {
        0 => json!({"update_id": 1, "callback_query": {
            "id": "q", "from": from, "chat_instance": "c", "data": text,
            "message": {"message_id": 6, "date": NOW, "chat": message["chat"].clone(), "text": "menu"}
        }}),
        1 => json!({"update_id": 1, "inline_query": {"id": "i", "from": from, "query": text, "offset": ""}}),
        2 => {
            message["caption"] = json!(text);
            message["caption_entities"] = entities;
            message["photo"] = json!([{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]);
            json!({"update_id": 1, "message": message})
        }
        3 => {
            message["text"] = json!(text);
            message["entities"] = entities;
            message["edit_date"] = json!(NOW);
            json!({"update_id": 1, "edited_message": message})
        }
        4 => {
            message["sticker"] = json!({"file_id": "f", "file_unique_id": "u", "type": "regular", "width": 1, "height": 1, "is_animated": false, "is_video": false});
            json!({"update_id": 1, "message": message})
        }
        _ => {
            message["text"] = json!(text);
            message["entities"] = entities;
            if bytes.byte().is_multiple_of(4) {
                message["reply_to_message"] = json!({"message_id": 5, "date": NOW, "chat": message["chat"].clone(),
                    "from": {"id": 99, "is_bot": true, "first_name": "B", "username": BOT_USERNAME}, "text": "earlier"});
            }
            json!({"update_id": 1, "message": message})
        }
    }
}

/// A text of pieces that matter and raw strings, sometimes repeated to near Telegram's limit.
fn text(bytes: &mut Bytes<'_>) -> String {
    let mut text = String::new();
    for _ in 0..(bytes.byte() % 6) {
        match bytes.byte() % 3 {
            0 => text.push_str(&bytes.string()),
            _ => text.push_str(PIECES[bytes.index() % PIECES.len()]),
        }
    }
    let repeat = usize::from(bytes.byte());
    if repeat > 240 && !text.is_empty() {
        let unit = text.clone();
        while text.chars().count() < 4_200 {
            text.push_str(&unit);
        }
    }
    text
}

/// Entities at offsets that are right, near, or anywhere (past the end, inside a surrogate pair).
fn entities(bytes: &mut Bytes<'_>, text: &str) -> Value {
    let units: usize = text.chars().map(char::len_utf16).sum();
    let kinds = ["bot_command", "mention", "text_mention", "hashtag", "bold", "url"];
    let mut list = Vec::new();
    for _ in 0..(bytes.byte() % 4) {
        let kind = kinds[usize::from(bytes.byte()) % kinds.len()];
        let (offset, length) = match bytes.byte() % 3 {
            0 => (0, units),
            1 => (usize::from(bytes.byte()) % (units + 1), usize::from(bytes.byte())),
            _ => (bytes.index(), bytes.index()),
        };
        let mut entity = json!({"type": kind, "offset": offset, "length": length});
        if kind == "text_mention" {
            entity["user"] = json!({"id": 99, "is_bot": true, "first_name": "B", "username": BOT_USERNAME});
        }
        list.push(entity);
    }
    Value::Array(list)
}
