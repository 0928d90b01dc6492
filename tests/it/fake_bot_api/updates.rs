//! Builders of the incoming updates tests push: texts, commands, button presses, inline
//! queries, media, locations, group messages and replies. Each returns the new update_id.
//!
//! `lang` is the user's `language_code` (`""` leaves it unset or as before).

use serde_json::{Value, json};

use super::FakeBotApi;

fn lang_opt(lang: &str) -> Option<&str> {
    (!lang.is_empty()).then_some(lang)
}

impl FakeBotApi {
    /// A message from `user_id` in `chat_id` with the given content fields (`text`,
    /// `sticker`, ...); message_id, from, chat and date are filled in.
    pub fn push_message(&self, chat_id: i64, user_id: i64, lang: &str, content: Value) -> i64 {
        let id = {
            let mut state = self.lock();
            let message = state.incoming_message(chat_id, user_id, lang_opt(lang), content);
            state.push_update(json!({"message": message}))
        };
        self.notify();
        id
    }

    /// A private text message (`chat_id` is normally the user's id). A leading `/command`
    /// and `@mentions` get their entities, like Telegram adds them.
    pub fn push_text(&self, chat_id: i64, user_id: i64, lang: &str, text: &str) -> i64 {
        self.push_message(chat_id, user_id, lang, json!({"text": text}))
    }

    /// A command such as `/help` or `/start payload` (same as [`FakeBotApi::push_text`]).
    pub fn push_command(&self, chat_id: i64, user_id: i64, lang: &str, command: &str) -> i64 {
        assert!(command.starts_with('/'), "a command starts with '/': {command:?}");
        self.push_text(chat_id, user_id, lang, command)
    }

    /// `/start` with a deep-link payload (`t.me/<bot>?start=<payload>`); `""` for none.
    pub fn push_start(&self, chat_id: i64, user_id: i64, lang: &str, payload: &str) -> i64 {
        let text = if payload.is_empty() { "/start".to_owned() } else { format!("/start {payload}") };
        self.push_text(chat_id, user_id, lang, &text)
    }

    /// A user pressing the button with `data` as callback_data on bot message `message_id`.
    /// Panics if that message has no such button (a test, or the bot, is wrong).
    pub fn push_callback(&self, chat_id: i64, user_id: i64, message_id: i64, data: &str) -> i64 {
        let id = {
            let mut state = self.lock();
            let query = state.callback_query(chat_id, user_id, message_id, data).unwrap_or_else(|e| panic!("push_callback: {e}"));
            state.push_update(json!({"callback_query": query}))
        };
        self.notify();
        id
    }

    /// A user pressing a button whose data the message no longer carries (an outdated menu).
    pub fn push_stale_callback(&self, chat_id: i64, user_id: i64, message_id: i64, data: &str) -> i64 {
        let id = {
            let mut state = self.lock();
            let query =
                state.callback_query_with(chat_id, user_id, message_id, data, false).unwrap_or_else(|e| panic!("push_stale_callback: {e}"));
            state.push_update(json!({"callback_query": query}))
        };
        self.notify();
        id
    }

    /// A user pressing the button labelled `label` on bot message `message_id`.
    pub fn press_button(&self, chat_id: i64, user_id: i64, message_id: i64, label: &str) -> i64 {
        let message =
            self.message(chat_id, message_id).unwrap_or_else(|| panic!("press_button: chat {chat_id} has no message {message_id}"));
        let data = message.callback_data(label).unwrap_or_else(|| {
            panic!("press_button: message {message_id} has no callback button {label:?}; buttons: {:?}", message.button_labels())
        });
        self.push_callback(chat_id, user_id, message_id, &data)
    }

    /// An inline query (`@bot query` typed in any chat).
    pub fn push_inline_query(&self, user_id: i64, lang: &str, query: &str) -> i64 {
        let id = {
            let mut state = self.lock();
            let inline_query = state.inline_query(user_id, lang_opt(lang), query);
            state.push_update(json!({"inline_query": inline_query}))
        };
        self.notify();
        id
    }

    pub fn push_sticker(&self, chat_id: i64, user_id: i64, lang: &str, emoji: &str) -> i64 {
        let (file_id, unique) = self.lock().file_ids();
        let sticker = json!({
            "file_id": file_id,
            "file_unique_id": unique,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": false,
            "is_video": false,
            "emoji": emoji,
            "set_name": "TestStickers",
            "file_size": 23_456,
        });
        self.push_message(chat_id, user_id, lang, json!({"sticker": sticker}))
    }

    pub fn push_photo(&self, chat_id: i64, user_id: i64, lang: &str, caption: Option<&str>) -> i64 {
        let (small_id, small_unique) = self.lock().file_ids();
        let (big_id, big_unique) = self.lock().file_ids();
        let mut content = json!({"photo": [
            {"file_id": small_id, "file_unique_id": small_unique, "width": 90, "height": 60, "file_size": 1_234},
            {"file_id": big_id, "file_unique_id": big_unique, "width": 1280, "height": 853, "file_size": 98_765},
        ]});
        if let Some(caption) = caption {
            content["caption"] = json!(caption);
        }
        self.push_message(chat_id, user_id, lang, content)
    }

    pub fn push_voice(&self, chat_id: i64, user_id: i64, lang: &str, duration_secs: u32) -> i64 {
        let (file_id, unique) = self.lock().file_ids();
        let voice = json!({
            "file_id": file_id,
            "file_unique_id": unique,
            "duration": duration_secs,
            "mime_type": "audio/ogg",
            "file_size": 4_000 * duration_secs.max(1),
        });
        self.push_message(chat_id, user_id, lang, json!({"voice": voice}))
    }

    pub fn push_location(&self, chat_id: i64, user_id: i64, lang: &str, latitude: f64, longitude: f64) -> i64 {
        self.push_message(chat_id, user_id, lang, json!({"location": {"latitude": latitude, "longitude": longitude}}))
    }

    pub fn push_document(&self, chat_id: i64, user_id: i64, lang: &str, file_name: &str, mime_type: &str, caption: Option<&str>) -> i64 {
        let (file_id, unique) = self.lock().file_ids();
        let mut content = json!({"document": {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": 12_345,
        }});
        if let Some(caption) = caption {
            content["caption"] = json!(caption);
        }
        self.push_message(chat_id, user_id, lang, content)
    }

    /// A text in a group (`chat_id` must be negative; below -999999999999 it is a
    /// supergroup).
    pub fn push_group_text(&self, chat_id: i64, user_id: i64, lang: &str, text: &str) -> i64 {
        assert!(chat_id < 0, "group chat ids are negative, got {chat_id}");
        self.push_text(chat_id, user_id, lang, text)
    }

    /// A text replying to message `reply_to_message_id` of the same chat (the bot's or a
    /// user's; private chats and groups alike). Panics if that message does not exist.
    pub fn push_reply(&self, chat_id: i64, user_id: i64, lang: &str, text: &str, reply_to_message_id: i64) -> i64 {
        let replied = self
            .lock()
            .message_json_for_reply(chat_id, reply_to_message_id)
            .unwrap_or_else(|| panic!("push_reply: chat {chat_id} has no message {reply_to_message_id}"));
        self.push_message(chat_id, user_id, lang, json!({"text": text, "reply_to_message": replied}))
    }

    /// A reply in a group, see [`FakeBotApi::push_reply`].
    pub fn push_group_reply(&self, chat_id: i64, user_id: i64, lang: &str, text: &str, reply_to_message_id: i64) -> i64 {
        assert!(chat_id < 0, "group chat ids are negative, got {chat_id}");
        self.push_reply(chat_id, user_id, lang, text, reply_to_message_id)
    }

    /// The user edits their earlier text message (an `edited_message` update).
    pub fn push_edited_text(&self, chat_id: i64, message_id: i64, new_text: &str) -> i64 {
        let id = {
            let mut state = self.lock();
            let message = state.edit_incoming_text(chat_id, message_id, new_text).unwrap_or_else(|e| panic!("push_edited_text: {e}"));
            state.push_update(json!({"edited_message": message}))
        };
        self.notify();
        id
    }

    /// The message_id of the message carried by a pushed update (message, edited_message or
    /// the bot message under a callback query).
    pub fn message_id_of(&self, update_id: i64) -> Option<i64> {
        let update = self.update(update_id)?;
        ["message", "edited_message"]
            .iter()
            .find_map(|k| update.get(*k))
            .or_else(|| update.get("callback_query").and_then(|q| q.get("message")))
            .and_then(|m| m.get("message_id"))
            .and_then(Value::as_i64)
    }

    /// The id of the inline query or callback query carried by a pushed update.
    pub fn query_id_of(&self, update_id: i64) -> Option<String> {
        let update = self.update(update_id)?;
        ["inline_query", "callback_query"]
            .iter()
            .find_map(|k| update.get(*k))
            .and_then(|q| q.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}
