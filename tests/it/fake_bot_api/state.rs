//! The fake server's state — chats, messages, the update queue, the call log — and the
//! handlers of the implemented Bot API methods with the method-specific limits.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::faults::{FaultStats, Faults, RateWindows, XorShift, is_rate_limited_method};
use super::markup::{self, Parsed};
use super::spec::spec;

/// The methods the fake really implements. Any other method of the spec answers `true` if
/// the spec says it returns only Boolean, and 400 "not implemented in fake" otherwise.
pub const IMPLEMENTED: &[&str] = &[
    "getMe",
    "logOut",
    "close",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "answerCallbackQuery",
    "answerInlineQuery",
    "sendChatAction",
    "sendDocument",
    "sendPhoto",
    "getChat",
];

/// `sendChatAction` actions listed in the spec.
pub const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

pub const NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";
pub const QUERY_TOO_OLD: &str = "Bad Request: query is too old and response timeout expired or query ID is invalid";
const MAX_UPLOAD: usize = 50 * 1024 * 1024;
/// `sendPhoto`: "The photo must be at most 10 MB in size."
const MAX_PHOTO_UPLOAD: usize = 10 * 1024 * 1024;

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// An error answer with Telegram's body.
    Api { code: u16, description: String, retry_after: Option<u64> },
    /// Close the connection without answering.
    Drop,
}

impl Failure {
    pub fn new(code: u16, description: impl Into<String>) -> Self {
        Failure::Api { code, description: description.into(), retry_after: None }
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Failure::Api { code: 429, description: format!("Too Many Requests: retry after {retry_after}"), retry_after: Some(retry_after) }
    }
}

fn bad(description: impl Into<String>) -> Failure {
    Failure::new(400, description)
}

/// A file part of a multipart request.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadedFile {
    /// The name of the multipart part.
    pub part: String,
    pub file_name: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub seq: u64,
    /// The canonical method name (`sendMessage`), or the path's last segment for 401/404.
    pub method: String,
    /// The parameters as a JSON object (form fields converted by the spec's types).
    pub params: Value,
    pub files: Vec<UploadedFile>,
    /// Time since the server started, at the moment the answer was decided.
    pub at: Duration,
    /// HTTP status answered; 0 when the connection was dropped on purpose, 499 when the
    /// client went away during a long poll.
    pub status: u16,
    /// The JSON body answered (`null` when none was).
    pub response: Value,
}

impl Call {
    /// The `result` of a successful answer.
    pub fn result(&self) -> Option<&Value> {
        self.response.get("result")
    }

    /// The `description` of an error answer.
    pub fn description(&self) -> Option<&str> {
        self.response.get("description").and_then(Value::as_str)
    }

    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name)
    }

    pub fn one_line(&self) -> String {
        let mut params = self.params.to_string();
        if params.chars().count() > 300 {
            params = params.chars().take(300).collect::<String>() + "…";
        }
        let outcome = match self.description() {
            Some(d) => format!(" ({d})"),
            None => String::new(),
        };
        format!("#{} +{:.3}s {} -> {}{} {}", self.seq, self.at.as_secs_f64(), self.method, self.status, outcome, params)
    }
}

/// An inline keyboard button of a bot message.
#[derive(Debug, Clone, PartialEq)]
pub struct Button {
    pub text: String,
    pub callback_data: Option<String>,
    pub url: Option<String>,
}

/// A document the bot uploaded (or sent by file_id/URL: then `bytes` is empty).
#[derive(Debug, Clone, PartialEq)]
pub struct SentDocument {
    pub chat_id: i64,
    pub message_id: i64,
    pub file_name: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    /// The `document` parameter when it was not an upload (file_id or URL).
    pub reference: Option<String>,
    /// Caption as sent (before entity parsing).
    pub caption: Option<String>,
}

/// A photo the bot uploaded (or sent by file_id/URL: then `bytes` is empty and the size unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct SentPhoto {
    pub chat_id: i64,
    pub message_id: i64,
    pub file_name: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    /// Width and height read from the uploaded image's header.
    pub size: Option<(u32, u32)>,
    /// The `photo` parameter when it was not an upload (file_id or URL).
    pub reference: Option<String>,
    /// Caption as sent (before entity parsing).
    pub caption: Option<String>,
}

/// The width and height of a PNG (from its IHDR chunk) or a baseline/progressive JPEG (from its
/// SOF marker); `None` for anything else, which Telegram would fail to process.
pub fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if bytes.len() >= 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR" {
        return Some((be32(&bytes[16..20]), be32(&bytes[20..24])));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 9 <= bytes.len() && bytes[i] == 0xFF {
            let marker = bytes[i + 1];
            let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
            if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
                let h = u32::from(u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]));
                let w = u32::from(u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]));
                return Some((w, h));
            }
            i += 2 + len;
        }
    }
    None
}

/// The current state of a message in a chat.
#[derive(Debug, Clone, PartialEq)]
pub struct BotMessage {
    pub chat_id: i64,
    pub message_id: i64,
    /// True for messages the bot sent, false for the ones tests pushed.
    pub from_bot: bool,
    /// The text as the bot sent it (with its HTML/Markdown markup).
    pub text: Option<String>,
    /// The text the user sees (after entity parsing).
    pub plain_text: Option<String>,
    pub parse_mode: Option<String>,
    /// The `reply_markup` as sent (any kind of keyboard).
    pub reply_markup: Option<Value>,
    /// Caption as sent (documents).
    pub caption: Option<String>,
    pub document: Option<SentDocument>,
    pub edit_count: u32,
    pub deleted: bool,
    /// The message as Telegram would return it.
    pub json: Value,
}

impl BotMessage {
    /// The inline keyboard, row by row (empty when there is none).
    pub fn inline_keyboard(&self) -> Vec<Vec<Button>> {
        let Some(rows) = self.json.get("reply_markup").and_then(|m| m.get("inline_keyboard")).and_then(Value::as_array) else {
            return Vec::new();
        };
        rows.iter()
            .map(|row| {
                row.as_array()
                    .map(|buttons| {
                        buttons
                            .iter()
                            .map(|b| Button {
                                text: b["text"].as_str().unwrap_or_default().to_owned(),
                                callback_data: b["callback_data"].as_str().map(str::to_owned),
                                url: b["url"].as_str().map(str::to_owned),
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn buttons(&self) -> Vec<Button> {
        self.inline_keyboard().into_iter().flatten().collect()
    }

    pub fn button_labels(&self) -> Vec<String> {
        self.buttons().into_iter().map(|b| b.text).collect()
    }

    /// The callback_data of the button labelled `label`.
    pub fn callback_data(&self, label: &str) -> Option<String> {
        self.buttons().into_iter().find(|b| b.text == label).and_then(|b| b.callback_data)
    }

    /// What the user sees: the plain text, else the caption, else "".
    pub fn shown_text(&self) -> &str {
        self.json.get("text").or_else(|| self.json.get("caption")).and_then(Value::as_str).unwrap_or_default()
    }
}

/// An `answerCallbackQuery` the bot made.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackAnswer {
    pub callback_query_id: String,
    pub text: Option<String>,
    pub show_alert: bool,
    pub url: Option<String>,
}

/// An `answerInlineQuery` the bot made.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineAnswer {
    pub inline_query_id: String,
    /// The query text the user typed.
    pub query: String,
    pub results: Vec<Value>,
    pub params: Value,
}

/// A `sendChatAction` the bot made.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAction {
    pub chat_id: i64,
    pub action: String,
}

/// A test user's profile; created on first use with generated names.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInfo {
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

#[derive(Debug)]
struct StoredMessage {
    json: Value,
    from_bot: bool,
    deleted: bool,
    raw_text: Option<String>,
    parse_mode: Option<String>,
    reply_markup: Option<Value>,
    raw_caption: Option<String>,
    document: Option<SentDocument>,
    edit_count: u32,
}

#[derive(Debug)]
struct ChatState {
    chat: Value,
    next_message_id: i64,
    messages: BTreeMap<i64, StoredMessage>,
}

/// What a `getUpdates` call waits for.
#[derive(Debug, Clone)]
pub struct PollTicket {
    generation: u64,
    offset: i64,
    limit: usize,
    pub timeout: Duration,
}

pub struct State {
    started: Instant,
    pub bot_id: i64,
    pub bot_first_name: String,
    pub bot_username: String,
    next_update_id: i64,
    queue: VecDeque<(i64, Value)>,
    history: BTreeMap<i64, Value>,
    discarded: Vec<i64>,
    polls_started: u64,
    allowed_updates: Option<Vec<String>>,
    poll_generation: u64,
    webhook_url: String,
    chats: HashMap<i64, ChatState>,
    users: HashMap<i64, UserInfo>,
    commands: BTreeMap<(String, String), Vec<Value>>,
    calls: Vec<Call>,
    callback_queries: HashMap<String, bool>,
    inline_queries: HashMap<String, (String, bool)>,
    callback_answers: Vec<CallbackAnswer>,
    inline_answers: Vec<InlineAnswer>,
    chat_actions: Vec<ChatAction>,
    documents: Vec<SentDocument>,
    photos: Vec<SentPhoto>,
    inline_edits: Vec<Value>,
    faults: Faults,
    rng: XorShift,
    forced_429_left: u32,
    windows: RateWindows,
    stats: FaultStats,
    counter: u64,
}

pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn str_param<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str)
}

/// A chat id from a number or a numeric string.
pub fn chat_id_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An inline keyboard with no button is the same as no keyboard.
fn normalized_inline_markup(markup: Option<&Value>) -> Option<Value> {
    let markup = markup?;
    let rows = markup.get("inline_keyboard")?.as_array()?;
    if rows.iter().all(|row| row.as_array().is_none_or(Vec::is_empty)) {
        return None;
    }
    Some(markup.clone())
}

/// The entities Telegram adds to an incoming text: the leading bot command and mentions.
fn incoming_entities(text: &str) -> Vec<Value> {
    let mut entities = Vec::new();
    let mut offset = 0usize;
    let mut previous: Option<char> = None;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at_word_start = previous.is_none_or(char::is_whitespace);
        if at_word_start && (c == '/' && i == 0 || c == '@') {
            let end = chars[i + 1..]
                .iter()
                .position(|ch| !(ch.is_ascii_alphanumeric() || *ch == '_' || (c == '/' && *ch == '@')))
                .map_or(chars.len(), |p| i + 1 + p);
            let word_len = end - i - 1;
            let utf16: usize = chars[i..end].iter().map(|ch| ch.len_utf16()).sum();
            if c == '/' && word_len > 0 {
                entities.push(json!({"type": "bot_command", "offset": offset, "length": utf16}));
            } else if c == '@' && word_len >= 5 {
                entities.push(json!({"type": "mention", "offset": offset, "length": utf16}));
            }
            offset += utf16;
            previous = chars.get(end - 1).copied();
            i = end;
            continue;
        }
        offset += c.len_utf16();
        previous = Some(c);
        i += 1;
    }
    entities
}

enum EditTarget {
    Chat(i64, i64),
    Inline(String),
}

#[derive(Clone, Copy)]
enum TextUse {
    Send,
    Edit,
}

impl State {
    pub fn new(token: &str) -> Self {
        let bot_id = token.split(':').next().and_then(|id| id.parse().ok()).unwrap_or(7_000_000_001);
        let faults = Faults::default();
        State {
            started: Instant::now(),
            bot_id,
            bot_first_name: "SME Advisor (test)".to_owned(),
            bot_username: "sme_advisor_test_bot".to_owned(),
            next_update_id: 1,
            queue: VecDeque::new(),
            history: BTreeMap::new(),
            discarded: Vec::new(),
            polls_started: 0,
            allowed_updates: None,
            poll_generation: 0,
            webhook_url: String::new(),
            chats: HashMap::new(),
            users: HashMap::new(),
            commands: BTreeMap::new(),
            calls: Vec::new(),
            callback_queries: HashMap::new(),
            inline_queries: HashMap::new(),
            callback_answers: Vec::new(),
            inline_answers: Vec::new(),
            chat_actions: Vec::new(),
            documents: Vec::new(),
            photos: Vec::new(),
            inline_edits: Vec::new(),
            rng: XorShift::new(faults.seed),
            forced_429_left: faults.forced_429,
            faults,
            windows: RateWindows::default(),
            stats: FaultStats::default(),
            counter: 0,
        }
    }

    fn next_counter(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    // ----- accessors used by the public API -------------------------------------------------

    pub fn record_call(&mut self, method: String, params: Value, files: Vec<UploadedFile>, status: u16, response: Value) {
        let seq = self.calls.len() as u64 + 1;
        let at = self.started.elapsed();
        self.calls.push(Call { seq, method, params, files, at, status, response });
    }

    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.rng = XorShift::new(faults.seed);
        self.forced_429_left = faults.forced_429;
        self.windows.clear();
        self.faults = faults;
    }

    /// Replaces the configuration but keeps the PRNG, the forced-429 countdown and the windows.
    pub fn set_faults_keep_progress(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// New flood limits start with empty windows.
    pub fn set_rate_limits(&mut self, limits: Option<super::faults::RateLimits>) {
        self.faults.rate_limits = limits;
        self.windows.clear();
    }

    pub fn polls_started(&self) -> u64 {
        self.polls_started
    }

    pub fn force_429(&mut self, calls: u32, retry_after: u32) {
        self.forced_429_left = calls;
        self.faults.retry_after = retry_after;
    }

    pub fn stats(&self) -> FaultStats {
        self.stats.clone()
    }

    pub fn pending_updates(&self) -> usize {
        self.queue.len()
    }

    pub fn is_confirmed(&self, update_id: i64) -> bool {
        self.history.contains_key(&update_id) && !self.queue.iter().any(|(id, _)| *id == update_id) && !self.discarded.contains(&update_id)
    }

    pub fn discarded_updates(&self) -> Vec<i64> {
        self.discarded.clone()
    }

    pub fn update(&self, update_id: i64) -> Option<Value> {
        self.history.get(&update_id).cloned()
    }

    pub fn allowed_updates(&self) -> Option<Vec<String>> {
        self.allowed_updates.clone()
    }

    pub fn messages(&self, chat_id: i64, include_user_messages: bool, include_deleted: bool) -> Vec<BotMessage> {
        let Some(chat) = self.chats.get(&chat_id) else {
            return Vec::new();
        };
        chat.messages
            .iter()
            .filter(|(_, m)| (include_user_messages || m.from_bot) && (include_deleted || !m.deleted))
            .map(|(&id, m)| Self::bot_message(chat_id, id, m))
            .collect()
    }

    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<BotMessage> {
        let stored = self.chats.get(&chat_id)?.messages.get(&message_id)?;
        Some(Self::bot_message(chat_id, message_id, stored))
    }

    fn bot_message(chat_id: i64, message_id: i64, m: &StoredMessage) -> BotMessage {
        BotMessage {
            chat_id,
            message_id,
            from_bot: m.from_bot,
            text: m.raw_text.clone(),
            plain_text: m.json.get("text").and_then(Value::as_str).map(str::to_owned),
            parse_mode: m.parse_mode.clone(),
            reply_markup: m.reply_markup.clone(),
            caption: m.raw_caption.clone(),
            document: m.document.clone(),
            edit_count: m.edit_count,
            deleted: m.deleted,
            json: m.json.clone(),
        }
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.callback_answers.clone()
    }

    pub fn unanswered_callback_queries(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.callback_queries.iter().filter(|(_, answered)| !**answered).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }

    pub fn inline_answers(&self) -> Vec<InlineAnswer> {
        self.inline_answers.clone()
    }

    pub fn chat_actions(&self) -> Vec<ChatAction> {
        self.chat_actions.clone()
    }

    pub fn documents(&self) -> Vec<SentDocument> {
        self.documents.clone()
    }

    pub fn photos(&self) -> Vec<SentPhoto> {
        self.photos.clone()
    }

    pub fn inline_edits(&self) -> Vec<Value> {
        self.inline_edits.clone()
    }

    pub fn my_commands(&self, scope_key: &str, language_code: &str) -> Option<Vec<(String, String)>> {
        self.commands.get(&(scope_key.to_owned(), language_code.to_owned())).map(|list| {
            list.iter()
                .map(|c| (c["command"].as_str().unwrap_or_default().to_owned(), c["description"].as_str().unwrap_or_default().to_owned()))
                .collect()
        })
    }

    pub fn all_my_commands(&self) -> Vec<(String, String, usize)> {
        self.commands.iter().map(|((s, l), list)| (s.clone(), l.clone(), list.len())).collect()
    }

    pub fn webhook_url(&self) -> String {
        self.webhook_url.clone()
    }

    pub fn user(&mut self, user_id: i64) -> &mut UserInfo {
        self.users.entry(user_id).or_insert_with(|| UserInfo {
            first_name: format!("User{}", user_id.unsigned_abs()),
            last_name: None,
            username: Some(format!("user{}", user_id.unsigned_abs())),
            language_code: None,
        })
    }

    // ----- JSON builders ---------------------------------------------------------------------

    pub fn bot_user_json(&self) -> Value {
        json!({
            "id": self.bot_id,
            "is_bot": true,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        })
    }

    fn me_json(&self) -> Value {
        let mut me = self.bot_user_json();
        let extra = json!({
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": true,
            "can_connect_to_business": false,
            "has_main_web_app": false,
        });
        me.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        me
    }

    pub fn user_json(&mut self, user_id: i64, lang: Option<&str>) -> Value {
        if let Some(lang) = lang.filter(|l| !l.is_empty()) {
            self.user(user_id).language_code = Some(lang.to_owned());
        }
        let user = self.user(user_id).clone();
        let mut json = json!({"id": user_id, "is_bot": false, "first_name": user.first_name});
        if let Some(last) = user.last_name {
            json["last_name"] = json!(last);
        }
        if let Some(username) = user.username {
            json["username"] = json!(username);
        }
        if let Some(lang) = user.language_code {
            json["language_code"] = json!(lang);
        }
        json
    }

    /// Makes sure `chat_id` is known; positive ids are private chats with `user_id`,
    /// ids from -999999999999 to -1 are groups, lower ones supergroups.
    pub fn ensure_chat(&mut self, chat_id: i64, user_id: i64) {
        if self.chats.contains_key(&chat_id) {
            return;
        }
        let chat = if chat_id > 0 {
            let user = self.user(user_id).clone();
            let mut chat = json!({"id": chat_id, "type": "private", "first_name": user.first_name});
            if let Some(last) = user.last_name {
                chat["last_name"] = json!(last);
            }
            if let Some(username) = user.username {
                chat["username"] = json!(username);
            }
            chat
        } else if chat_id > -1_000_000_000_000 {
            json!({"id": chat_id, "type": "group", "title": format!("Test group {}", chat_id.unsigned_abs())})
        } else {
            json!({"id": chat_id, "type": "supergroup", "title": format!("Test supergroup {}", chat_id.unsigned_abs())})
        };
        self.register_chat(chat);
    }

    /// Registers a chat object (as it appears in updates) unless already known.
    pub fn register_chat(&mut self, chat: Value) {
        let Some(id) = chat.get("id").and_then(Value::as_i64) else {
            return;
        };
        self.chats.entry(id).or_insert_with(|| ChatState { chat, next_message_id: 1, messages: BTreeMap::new() });
    }

    fn chat_json(&self, chat_id: i64) -> Value {
        self.chats.get(&chat_id).map(|c| c.chat.clone()).unwrap_or(Value::Null)
    }

    fn allocate_message_id(&mut self, chat_id: i64) -> i64 {
        let chat = self.chats.get_mut(&chat_id).expect("chat registered before use");
        let id = chat.next_message_id;
        chat.next_message_id += 1;
        id
    }

    fn store_message(&mut self, chat_id: i64, message_id: i64, stored: StoredMessage) {
        let chat = self.chats.get_mut(&chat_id).expect("chat registered before use");
        chat.next_message_id = chat.next_message_id.max(message_id + 1);
        chat.messages.insert(message_id, stored);
    }

    /// A message from a user, stored in the chat; `content` holds text/sticker/photo/....
    pub fn incoming_message(&mut self, chat_id: i64, user_id: i64, lang: Option<&str>, content: Value) -> Value {
        self.ensure_chat(chat_id, user_id);
        let message_id = self.allocate_message_id(chat_id);
        let mut json = json!({
            "message_id": message_id,
            "from": self.user_json(user_id, lang),
            "chat": self.chat_json(chat_id),
            "date": now_unix(),
        });
        let object = json.as_object_mut().expect("object");
        if let Value::Object(content) = content {
            object.extend(content);
        }
        if let Some(text) = json.get("text").and_then(Value::as_str) {
            let entities = incoming_entities(text);
            if !entities.is_empty() && json.get("entities").is_none() {
                json["entities"] = Value::Array(entities);
            }
        }
        self.store_message(
            chat_id,
            message_id,
            StoredMessage {
                json: json.clone(),
                from_bot: false,
                deleted: false,
                raw_text: json.get("text").and_then(Value::as_str).map(str::to_owned),
                parse_mode: None,
                reply_markup: None,
                raw_caption: json.get("caption").and_then(Value::as_str).map(str::to_owned),
                document: None,
                edit_count: 0,
            },
        );
        json
    }

    /// The JSON of a stored message, as embedded in `reply_to_message` (one level deep).
    pub fn message_json_for_reply(&self, chat_id: i64, message_id: i64) -> Option<Value> {
        let stored = self.chats.get(&chat_id)?.messages.get(&message_id)?;
        if stored.deleted {
            return None;
        }
        let mut json = stored.json.clone();
        if let Some(object) = json.as_object_mut() {
            object.remove("reply_to_message");
        }
        Some(json)
    }

    pub fn edit_incoming_text(&mut self, chat_id: i64, message_id: i64, text: &str) -> Result<Value, String> {
        let stored = self
            .chats
            .get_mut(&chat_id)
            .and_then(|c| c.messages.get_mut(&message_id))
            .filter(|m| !m.from_bot && !m.deleted)
            .ok_or_else(|| format!("no user message {message_id} in chat {chat_id}"))?;
        stored.json["text"] = json!(text);
        stored.json["edit_date"] = json!(now_unix());
        stored.raw_text = Some(text.to_owned());
        stored.edit_count += 1;
        let entities = incoming_entities(text);
        if let Some(object) = stored.json.as_object_mut() {
            object.remove("entities");
            if !entities.is_empty() {
                object.insert("entities".to_owned(), Value::Array(entities));
            }
        }
        Ok(stored.json.clone())
    }

    /// A callback query for a button of a bot message; checks the button exists.
    pub fn callback_query(&mut self, chat_id: i64, user_id: i64, message_id: i64, data: &str) -> Result<Value, String> {
        self.callback_query_with(chat_id, user_id, message_id, data, true)
    }

    /// Like `callback_query`; with `check_button` false the data need not be on the message, as
    /// when a user presses a button the bot sent before a restart or a content change.
    pub fn callback_query_with(
        &mut self,
        chat_id: i64,
        user_id: i64,
        message_id: i64,
        data: &str,
        check_button: bool,
    ) -> Result<Value, String> {
        let Some(message) = self.message(chat_id, message_id) else {
            return Err(format!("chat {chat_id} has no message {message_id}"));
        };
        if message.deleted {
            return Err(format!("message {message_id} in chat {chat_id} was deleted"));
        }
        if !message.from_bot {
            return Err(format!("message {message_id} in chat {chat_id} is not from the bot"));
        }
        if check_button && !message.buttons().iter().any(|b| b.callback_data.as_deref() == Some(data)) {
            return Err(format!(
                "message {message_id} in chat {chat_id} has no button with callback_data {data:?}; its buttons: {:?}",
                message.buttons()
            ));
        }
        let id = format!("{}{:06}", 4_000_000 + user_id.unsigned_abs() % 1_000_000, self.next_counter());
        self.callback_queries.insert(id.clone(), false);
        let from = self.user_json(user_id, None);
        Ok(json!({
            "id": id,
            "from": from,
            "message": message.json,
            "chat_instance": format!("{}", 1_000_000_000_000i64 + chat_id.rem_euclid(1_000_000_000)),
            "data": data,
        }))
    }

    pub fn inline_query(&mut self, user_id: i64, lang: Option<&str>, query: &str) -> Value {
        let id = format!("{}{:06}", 8_000_000 + user_id.unsigned_abs() % 1_000_000, self.next_counter());
        self.inline_queries.insert(id.clone(), (query.to_owned(), false));
        json!({
            "id": id,
            "from": self.user_json(user_id, lang),
            "query": query,
            "offset": "",
            "chat_type": "sender",
        })
    }

    /// A fresh file_id/file_unique_id pair.
    pub fn file_ids(&mut self) -> (String, String) {
        let n = self.next_counter();
        (format!("BQACAgIAAxkBAAIfake{n:08}"), format!("AgADfake{n:06}"))
    }

    // ----- updates ---------------------------------------------------------------------------

    fn update_kind(update: &Value) -> String {
        update.as_object().and_then(|o| o.keys().find(|k| *k != "update_id").cloned()).unwrap_or_default()
    }

    fn is_allowed(&self, kind: &str) -> bool {
        match &self.allowed_updates {
            Some(list) if !list.is_empty() => list.iter().any(|k| k == kind),
            _ => !matches!(kind, "chat_member" | "message_reaction" | "message_reaction_count"),
        }
    }

    /// Queues an update (assigning its update_id). Updates of a kind the bot's current
    /// `allowed_updates` excludes are discarded, as Telegram does.
    pub fn push_update(&mut self, mut update: Value) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        if !update.is_object() {
            update = json!({});
        }
        update["update_id"] = json!(id);
        // Chats and messages in raw updates become known.
        for key in ["message", "edited_message", "channel_post", "business_message"] {
            if let Some(message) = update.get(key).cloned()
                && let Some(chat) = message.get("chat").cloned()
            {
                let chat_id = chat.get("id").and_then(Value::as_i64);
                self.register_chat(chat);
                if let (Some(chat_id), Some(message_id)) = (chat_id, message.get("message_id").and_then(Value::as_i64)) {
                    let known = self.chats[&chat_id].messages.contains_key(&message_id);
                    if !known && key == "message" {
                        self.store_message(
                            chat_id,
                            message_id,
                            StoredMessage {
                                raw_text: message.get("text").and_then(Value::as_str).map(str::to_owned),
                                raw_caption: message.get("caption").and_then(Value::as_str).map(str::to_owned),
                                json: message,
                                from_bot: false,
                                deleted: false,
                                parse_mode: None,
                                reply_markup: None,
                                document: None,
                                edit_count: 0,
                            },
                        );
                    }
                }
            }
        }
        if let Some(query) = update.get("callback_query").and_then(|q| q.get("id")).and_then(Value::as_str) {
            self.callback_queries.entry(query.to_owned()).or_insert(false);
        }
        if let Some(query) = update.get("inline_query")
            && let Some(id) = query.get("id").and_then(Value::as_str)
        {
            let text = query.get("query").and_then(Value::as_str).unwrap_or_default().to_owned();
            self.inline_queries.entry(id.to_owned()).or_insert((text, false));
        }
        let kind = Self::update_kind(&update);
        self.history.insert(id, update.clone());
        if self.is_allowed(&kind) {
            self.queue.push_back((id, update));
        } else {
            self.discarded.push(id);
        }
        id
    }

    pub fn begin_get_updates(&mut self, params: &Map<String, Value>) -> Result<PollTicket, Failure> {
        if !self.webhook_url.is_empty() {
            return Err(Failure::new(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ));
        }
        let limit = params.get("limit").and_then(Value::as_i64).unwrap_or(100);
        if !(1..=100).contains(&limit) {
            return Err(bad("Bad Request: limit must be between 1 and 100"));
        }
        let timeout = params.get("timeout").and_then(Value::as_i64).unwrap_or(0);
        if timeout < 0 {
            return Err(bad("Bad Request: timeout must be non-negative"));
        }
        if let Some(allowed) = params.get("allowed_updates").and_then(Value::as_array) {
            let known: Vec<&str> = spec()
                .type_spec("Update")
                .map(|t| t.fields.iter().map(|f| f.name.as_str()).filter(|n| *n != "update_id").collect())
                .unwrap_or_default();
            let mut list = Vec::new();
            for kind in allowed {
                let kind = kind.as_str().unwrap_or_default();
                if !known.contains(&kind) {
                    return Err(bad(format!("Bad Request: unknown update type \"{kind}\" in allowed_updates")));
                }
                list.push(kind.to_owned());
            }
            self.allowed_updates = if list.is_empty() { None } else { Some(list) };
        }
        self.gate("getUpdates", params)?;
        let offset = params.get("offset").and_then(Value::as_i64).unwrap_or(0);
        if offset > 0 {
            self.queue.retain(|(id, _)| *id >= offset);
        } else if offset < 0 {
            let keep = offset.unsigned_abs() as usize;
            while self.queue.len() > keep {
                self.queue.pop_front();
            }
        }
        self.poll_generation += 1;
        self.polls_started += 1;
        Ok(PollTicket {
            generation: self.poll_generation,
            offset: if offset > 0 { offset } else { i64::MIN },
            limit: limit as usize,
            timeout: Duration::from_secs(timeout as u64),
        })
    }

    /// The updates for a poll, `None` if there are none yet; 409 if a newer `getUpdates`
    /// replaced this one.
    pub fn poll_updates(&self, ticket: &PollTicket) -> Result<Option<Value>, Failure> {
        if ticket.generation != self.poll_generation {
            return Err(Failure::new(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            ));
        }
        let updates: Vec<Value> =
            self.queue.iter().filter(|(id, _)| *id >= ticket.offset).take(ticket.limit).map(|(_, u)| u.clone()).collect();
        Ok(if updates.is_empty() { None } else { Some(Value::Array(updates)) })
    }

    // ----- faults ----------------------------------------------------------------------------

    /// How long to hold a call before handling it, if it is to be slow.
    pub fn slow_delay(&mut self, method: &str) -> Option<std::time::Duration> {
        if self.faults.slow_probability > 0.0 && self.faults.in_scope(method) && self.rng.next_f64() < self.faults.slow_probability {
            self.stats.slowed += 1;
            return Some(self.faults.slow_by);
        }
        None
    }

    /// Injected faults and flood limits, applied after a call passed validation.
    fn gate(&mut self, method: &str, params: &Map<String, Value>) -> Result<(), Failure> {
        let in_scope = self.faults.in_scope(method);
        if in_scope && (self.faults.drop_probability > 0.0 || self.faults.server_error_probability > 0.0) {
            let drop_roll = self.rng.next_f64();
            let error_roll = self.rng.next_f64();
            if drop_roll < self.faults.drop_probability {
                self.stats.dropped += 1;
                return Err(Failure::Drop);
            }
            if error_roll < self.faults.server_error_probability {
                self.stats.server_errors += 1;
                return Err(Failure::new(502, "Bad Gateway"));
            }
        }
        let key = match params.get("chat_id") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let limited = is_rate_limited_method(method);
        if limited && self.windows.in_retry_after(&key, Instant::now()) {
            self.stats.sends_during_retry_after += 1;
        }
        if in_scope && self.forced_429_left > 0 {
            self.forced_429_left -= 1;
            self.stats.too_many_requests += 1;
            self.windows.refused(&key, false, u64::from(self.faults.retry_after), Instant::now());
            return Err(Failure::too_many_requests(u64::from(self.faults.retry_after)));
        }
        let chat_id = params.get("chat_id").and_then(chat_id_of);
        if let Some(id) = chat_id
            && self.faults.blocked_chats.contains(&id)
        {
            self.stats.forbidden += 1;
            return Err(Failure::new(
                403,
                if id > 0 { "Forbidden: bot was blocked by the user" } else { "Forbidden: bot was kicked from the group chat" },
            ));
        }
        if let Some(limits) = &self.faults.rate_limits
            && limited
        {
            let is_group = chat_id.is_some_and(|id| id < 0);
            if let Err((retry_after, global)) = self.windows.admit(limits, &key, is_group, Instant::now()) {
                self.stats.too_many_requests += 1;
                self.stats.rate_limited += 1;
                self.windows.refused(&key, global, retry_after, Instant::now());
                return Err(Failure::too_many_requests(retry_after));
            }
        }
        Ok(())
    }

    // ----- method handlers -------------------------------------------------------------------

    /// Handles every method except `getUpdates` (see `begin_get_updates`). The generic spec
    /// checks have already passed.
    pub fn handle(&mut self, method: &str, params: &Map<String, Value>, files: &[UploadedFile]) -> Result<Value, Failure> {
        match method {
            "getMe" => {
                self.gate(method, params)?;
                Ok(self.me_json())
            }
            "logOut" | "close" => {
                self.gate(method, params)?;
                Ok(json!(true))
            }
            "setWebhook" => self.set_webhook(params),
            "deleteWebhook" => {
                self.gate(method, params)?;
                self.webhook_url.clear();
                if params.get("drop_pending_updates") == Some(&json!(true)) {
                    self.queue.clear();
                }
                Ok(json!(true))
            }
            "getWebhookInfo" => {
                self.gate(method, params)?;
                let mut info = json!({
                    "url": self.webhook_url,
                    "has_custom_certificate": false,
                    "pending_update_count": self.queue.len(),
                });
                if let Some(allowed) = &self.allowed_updates {
                    info["allowed_updates"] = json!(allowed);
                }
                Ok(info)
            }
            "setMyCommands" => self.set_my_commands(params),
            "getMyCommands" => {
                let key = Self::command_key(params)?;
                self.gate(method, params)?;
                Ok(Value::Array(self.commands.get(&key).cloned().unwrap_or_default()))
            }
            "deleteMyCommands" => {
                let key = Self::command_key(params)?;
                self.gate(method, params)?;
                self.commands.remove(&key);
                Ok(json!(true))
            }
            "sendMessage" => self.send_message(params),
            "editMessageText" => self.edit_message_text(params),
            "editMessageReplyMarkup" => self.edit_message_reply_markup(params),
            "deleteMessage" => self.delete_message(params),
            "answerCallbackQuery" => self.answer_callback_query(params),
            "answerInlineQuery" => self.answer_inline_query(params),
            "sendChatAction" => self.send_chat_action(params),
            "sendDocument" => self.send_document(params, files),
            "sendPhoto" => self.send_photo(params, files),
            "getChat" => {
                let chat_id = self.resolve_chat(params)?;
                self.gate(method, params)?;
                let mut info = self.chat_json(chat_id);
                info["accent_color_id"] = json!(0);
                info["max_reaction_count"] = json!(11);
                info["accepted_gift_types"] = json!({
                    "unlimited_gifts": false,
                    "limited_gifts": false,
                    "unique_gifts": false,
                    "premium_subscription": false,
                    "gifts_from_channels": false,
                });
                Ok(info)
            }
            _ => {
                let returns_boolean = spec().method(method).is_some_and(|m| m.returns_only_boolean());
                if returns_boolean {
                    self.gate(method, params)?;
                    Ok(json!(true))
                } else {
                    Err(bad(format!("Bad Request: method {method} is not implemented in fake")))
                }
            }
        }
    }

    fn resolve_chat(&self, params: &Map<String, Value>) -> Result<i64, Failure> {
        let not_found = || bad("Bad Request: chat not found");
        match params.get("chat_id") {
            None => Err(bad("Bad Request: chat_id is empty")),
            Some(Value::String(s)) if s.starts_with('@') => {
                let name = &s[1..];
                self.chats
                    .iter()
                    .find(|(_, c)| c.chat.get("username").and_then(Value::as_str) == Some(name))
                    .map(|(id, _)| *id)
                    .ok_or_else(not_found)
            }
            Some(value) => {
                let id = chat_id_of(value).ok_or_else(not_found)?;
                if self.chats.contains_key(&id) { Ok(id) } else { Err(not_found()) }
            }
        }
    }

    fn parse_text(&self, text: &str, params: &Map<String, Value>, mode_key: &str, entities_key: &str) -> Result<Parsed, Failure> {
        if let Some(entities) = params.get(entities_key).and_then(Value::as_array) {
            return Ok(Parsed { text: text.to_owned(), entities: entities.clone() });
        }
        markup::parse(text, str_param(params, mode_key)).map_err(bad)
    }

    fn message_text(&self, params: &Map<String, Value>, usage: TextUse) -> Result<Parsed, Failure> {
        let text = str_param(params, "text").unwrap_or_default();
        let parsed = self.parse_text(text, params, "parse_mode", "entities")?;
        if parsed.is_blank() {
            return Err(bad("Bad Request: message text is empty"));
        }
        if parsed.char_len() > 4096 {
            return Err(bad(match usage {
                TextUse::Send => "Bad Request: message is too long",
                TextUse::Edit => "Bad Request: MESSAGE_TOO_LONG",
            }));
        }
        Ok(parsed)
    }

    /// Checks any `reply_markup`: inline keyboards button by button, reply keyboards' labels.
    fn check_reply_markup(markup: Option<&Value>) -> Result<(), Failure> {
        let Some(markup) = markup else {
            return Ok(());
        };
        if let Some(rows) = markup.get("inline_keyboard").and_then(Value::as_array) {
            Self::check_inline_keyboard(rows)?;
        }
        if let Some(rows) = markup.get("keyboard").and_then(Value::as_array) {
            for button in rows.iter().filter_map(Value::as_array).flatten() {
                let text = button.get("text").and_then(Value::as_str).unwrap_or_default();
                if text.trim().is_empty() {
                    return Err(bad("Bad Request: keyboard button text must be non-empty"));
                }
            }
        }
        Ok(())
    }

    fn check_inline_keyboard(rows: &[Value]) -> Result<(), Failure> {
        let action_fields: Vec<&str> = spec()
            .type_spec("InlineKeyboardButton")
            .map(|t| {
                t.fields.iter().map(|f| f.name.as_str()).filter(|n| !matches!(*n, "text" | "icon_custom_emoji_id" | "style")).collect()
            })
            .unwrap_or_default();
        let mut total = 0;
        for button in rows.iter().filter_map(Value::as_array).flatten() {
            total += 1;
            let text = button.get("text").and_then(Value::as_str).unwrap_or_default();
            if text.trim().is_empty() {
                return Err(bad("Bad Request: can't parse inline keyboard button: Text must be non-empty"));
            }
            let actions = action_fields.iter().filter(|f| button.get(**f).is_some_and(|v| !v.is_null() && v != &json!(false))).count();
            if actions == 0 {
                return Err(bad("Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"));
            }
            if actions > 1 {
                return Err(bad("Bad Request: can't parse inline keyboard button: exactly one of the optional fields must be used"));
            }
            if let Some(data) = button.get("callback_data").and_then(Value::as_str)
                && !(1..=64).contains(&data.len())
            {
                return Err(bad("Bad Request: BUTTON_DATA_INVALID"));
            }
            if let Some(url) = button.get("url").and_then(Value::as_str)
                && !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("tg://"))
            {
                return Err(bad("Bad Request: BUTTON_URL_INVALID"));
            }
        }
        if total > 100 {
            return Err(bad("Bad Request: REPLY_MARKUP_TOO_LONG"));
        }
        Ok(())
    }

    /// The replied-to message (`reply_parameters`), embedded into the sent message.
    fn replied_message(&self, chat_id: i64, params: &Map<String, Value>) -> Result<Option<Value>, Failure> {
        let Some(reply) = params.get("reply_parameters") else {
            return Ok(None);
        };
        let message_id = reply.get("message_id").and_then(Value::as_i64).unwrap_or(0);
        let reply_chat = match reply.get("chat_id") {
            Some(value) => chat_id_of(value).unwrap_or(chat_id),
            None => chat_id,
        };
        let allow_missing = reply.get("allow_sending_without_reply") == Some(&json!(true));
        match self.message_json_for_reply(reply_chat, message_id) {
            Some(json) => Ok(Some(json)),
            None if allow_missing => Ok(None),
            None => Err(bad("Bad Request: message to be replied not found")),
        }
    }

    fn new_bot_message(&mut self, chat_id: i64) -> (i64, Value) {
        let message_id = self.allocate_message_id(chat_id);
        let json = json!({
            "message_id": message_id,
            "from": self.bot_user_json(),
            "chat": self.chat_json(chat_id),
            "date": now_unix(),
        });
        (message_id, json)
    }

    fn send_message(&mut self, params: &Map<String, Value>) -> Result<Value, Failure> {
        let chat_id = self.resolve_chat(params)?;
        let parsed = self.message_text(params, TextUse::Send)?;
        Self::check_reply_markup(params.get("reply_markup"))?;
        let reply_to = self.replied_message(chat_id, params)?;
        self.gate("sendMessage", params)?;
        let (message_id, mut json) = self.new_bot_message(chat_id);
        Self::dress(&mut json, Some((("text", "entities"), parsed)), params, reply_to);
        let raw_text = str_param(params, "text").map(str::to_owned);
        self.store_sent(chat_id, message_id, &json, params, (raw_text, None), None);
        Ok(json)
    }

    fn edit_target(&self, params: &Map<String, Value>) -> Result<EditTarget, Failure> {
        if let Some(id) = str_param(params, "inline_message_id") {
            return Ok(EditTarget::Inline(id.to_owned()));
        }
        let (Some(_), Some(message_id)) = (params.get("chat_id"), params.get("message_id").and_then(Value::as_i64)) else {
            return Err(bad("Bad Request: message identifier is not specified"));
        };
        let chat_id = self.resolve_chat(params)?;
        Ok(EditTarget::Chat(chat_id, message_id))
    }

    fn stored_for_edit(&self, chat_id: i64, message_id: i64) -> Result<&StoredMessage, Failure> {
        let stored = self
            .chats
            .get(&chat_id)
            .and_then(|c| c.messages.get(&message_id))
            .filter(|m| !m.deleted)
            .ok_or_else(|| bad("Bad Request: message to edit not found"))?;
        if !stored.from_bot {
            return Err(bad("Bad Request: message can't be edited"));
        }
        Ok(stored)
    }

    fn edit_message_text(&mut self, params: &Map<String, Value>) -> Result<Value, Failure> {
        let target = self.edit_target(params)?;
        if !params.contains_key("text") {
            return Err(if params.contains_key("rich_message") {
                bad("Bad Request: rich_message is not implemented in fake")
            } else {
                bad("Bad Request: message text is empty")
            });
        }
        let parsed = self.message_text(params, TextUse::Edit)?;
        Self::check_reply_markup(params.get("reply_markup"))?;
        let new_markup = normalized_inline_markup(params.get("reply_markup"));
        let (chat_id, message_id) = match target {
            EditTarget::Inline(id) => {
                self.gate("editMessageText", params)?;
                self.inline_edits.push(json!({"inline_message_id": id, "params": params}));
                return Ok(json!(true));
            }
            EditTarget::Chat(chat_id, message_id) => (chat_id, message_id),
        };
        let stored = self.stored_for_edit(chat_id, message_id)?;
        let Some(old_text) = stored.json.get("text") else {
            return Err(bad("Bad Request: there is no text in the message to edit"));
        };
        let old_entities = stored.json.get("entities").cloned().unwrap_or(json!([]));
        if old_text == &json!(parsed.text)
            && old_entities == Value::Array(parsed.entities.clone())
            && stored.json.get("reply_markup").cloned() == new_markup
        {
            return Err(bad(NOT_MODIFIED));
        }
        self.gate("editMessageText", params)?;
        let stored = self.chats.get_mut(&chat_id).and_then(|c| c.messages.get_mut(&message_id)).expect("checked above");
        let object = stored.json.as_object_mut().expect("object");
        object.insert("text".to_owned(), json!(parsed.text));
        object.remove("entities");
        if !parsed.entities.is_empty() {
            object.insert("entities".to_owned(), Value::Array(parsed.entities));
        }
        object.remove("reply_markup");
        if let Some(markup) = new_markup {
            object.insert("reply_markup".to_owned(), markup);
        }
        object.insert("edit_date".to_owned(), json!(now_unix()));
        stored.raw_text = str_param(params, "text").map(str::to_owned);
        stored.parse_mode = str_param(params, "parse_mode").map(str::to_owned);
        stored.reply_markup = params.get("reply_markup").cloned();
        stored.edit_count += 1;
        Ok(stored.json.clone())
    }

    fn edit_message_reply_markup(&mut self, params: &Map<String, Value>) -> Result<Value, Failure> {
        let target = self.edit_target(params)?;
        Self::check_reply_markup(params.get("reply_markup"))?;
        let new_markup = normalized_inline_markup(params.get("reply_markup"));
        let (chat_id, message_id) = match target {
            EditTarget::Inline(id) => {
                self.gate("editMessageReplyMarkup", params)?;
                self.inline_edits.push(json!({"inline_message_id": id, "params": params}));
                return Ok(json!(true));
            }
            EditTarget::Chat(chat_id, message_id) => (chat_id, message_id),
        };
        let stored = self.stored_for_edit(chat_id, message_id)?;
        if stored.json.get("reply_markup").cloned() == new_markup {
            return Err(bad(NOT_MODIFIED));
        }
        self.gate("editMessageReplyMarkup", params)?;
        let stored = self.chats.get_mut(&chat_id).and_then(|c| c.messages.get_mut(&message_id)).expect("checked above");
        let object = stored.json.as_object_mut().expect("object");
        object.remove("reply_markup");
        if let Some(markup) = new_markup {
            object.insert("reply_markup".to_owned(), markup);
        }
        object.insert("edit_date".to_owned(), json!(now_unix()));
        stored.reply_markup = params.get("reply_markup").cloned();
        stored.edit_count += 1;
        Ok(stored.json.clone())
    }

    fn delete_message(&mut self, params: &Map<String, Value>) -> Result<Value, Failure> {
        let chat_id = self.resolve_chat(params)?;
        let message_id = params.get("message_id").and_then(Value::as_i64).unwrap_or(0);
        let exists = self.chats.get(&chat_id).and_then(|c| c.messages.get(&message_id)).is_some_and(|m| !m.deleted);
        if !exists {
            return Err(bad("Bad Request: message to delete not found"));
        }
        self.gate("deleteMessage", params)?;
        if let Some(m) = self.chats.get_mut(&chat_id).and_then(|c| c.messages.get_mut(&message_id)) {
            m.deleted = true;
        }
        Ok(json!(true))
    }

    fn answer_callback_query(&mut self, params: &Map<String, Value>) -> Result<Value, Failure> {
        let id = str_param(params, "callback_query_id").unwrap_or_default().to_owned();
        if self.callback_queries.get(&id) != Some(&false) {
            return Err(bad(QUERY_TOO_OLD));
        }
        let text = str_param(params, "text").map(str::to_owned);
        if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
            return Err(bad("Bad Request: MESSAGE_TOO_LONG"));
        }
        self.gate("answerCallbackQuery", params)?;
        self.callback_queries.insert(id.clone(), true);
        self.callback_answers.push(CallbackAnswer {
            callback_query_id: id,
            text,
            show_alert: params.get("show_alert") == Some(&json!(true)),
            url: str_param(params, "url").map(str::to_owned),
        });
        Ok(json!(true))
    }

    fn answer_inline_query(&mut self, params: &Map<String, Value>) -> Result<Value, Failure> {
        let id = str_param(params, "inline_query_id").unwrap_or_default().to_owned();
        let query = match self.inline_queries.get(&id) {
            Some((query, false)) => query.clone(),
            _ => return Err(bad(QUERY_TOO_OLD)),
        };
        let results = params.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
        if results.len() > 50 {
            return Err(bad("Bad Request: RESULTS_TOO_MUCH"));
        }
        let mut seen = std::collections::HashSet::new();
        for result in &results {
            let result_id = result.get("id").and_then(Value::as_str).unwrap_or_default();
            if !(1..=64).contains(&result_id.len()) {
                return Err(bad("Bad Request: RESULT_ID_INVALID"));
            }
            if !seen.insert(result_id.to_owned()) {
                return Err(bad("Bad Request: RESULT_ID_DUPLICATE"));
            }
            if let Some(rows) = result.get("reply_markup").and_then(|m| m.get("inline_keyboard")).and_then(Value::as_array) {
                Self::check_inline_keyboard(rows)?;
            }
            if let Some(content) = result.get("input_message_content").and_then(Value::as_object)
                && let Some(text) = content.get("message_text").and_then(Value::as_str)
            {
                let parsed = self.parse_text(text, content, "parse_mode", "entities")?;
                if parsed.is_blank() {
                    return Err(bad("Bad Request: MESSAGE_EMPTY"));
                }
                if parsed.char_len() > 4096 {
                    return Err(bad("Bad Request: MESSAGE_TOO_LONG"));
                }
            }
        }
        if str_param(params, "next_offset").is_some_and(|o| o.len() > 64) {
            return Err(bad("Bad Request: NEXT_OFFSET_INVALID"));
        }
        self.gate("answerInlineQuery", params)?;
        self.inline_queries.insert(id.clone(), (query.clone(), true));
        self.inline_answers.push(InlineAnswer { inline_query_id: id, query, results, params: Value::Object(params.clone()) });
        Ok(json!(true))
    }

    /// The storage key of a command list: the scope (`default`, `all_private_chats`,
    /// `chat:<id>`, `chat_member:<chat>:<user>`, ...) and the language code.
    fn command_key(params: &Map<String, Value>) -> Result<(String, String), Failure> {
        let lang = str_param(params, "language_code").unwrap_or_default().to_owned();
        if !(lang.is_empty() || lang.len() == 2 && lang.chars().all(|c| c.is_ascii_lowercase())) {
            return Err(bad("Bad Request: invalid language code specified"));
        }
        Ok((scope_key(params.get("scope")), lang))
    }

    fn set_my_commands(&mut self, params: &Map<String, Value>) -> Result<Value, Failure> {
        let commands = params.get("commands").and_then(Value::as_array).cloned().unwrap_or_default();
        if commands.len() > 100 {
            return Err(bad("Bad Request: BOT_COMMANDS_TOO_MUCH"));
        }
        for command in &commands {
            let name = command.get("command").and_then(Value::as_str).unwrap_or_default();
            let valid_name =
                (1..=32).contains(&name.chars().count()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid_name {
                return Err(bad("Bad Request: BOT_COMMAND_INVALID"));
            }
            let description = command.get("description").and_then(Value::as_str).unwrap_or_default();
            if description.trim().is_empty() || description.chars().count() > 256 {
                return Err(bad("Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"));
            }
        }
        let key = Self::command_key(params)?;
        self.gate("setMyCommands", params)?;
        self.commands.insert(key, commands);
        Ok(json!(true))
    }

    fn send_chat_action(&mut self, params: &Map<String, Value>) -> Result<Value, Failure> {
        let chat_id = self.resolve_chat(params)?;
        let action = str_param(params, "action").unwrap_or_default().to_owned();
        if !CHAT_ACTIONS.contains(&action.as_str()) {
            return Err(bad("Bad Request: wrong parameter action in request"));
        }
        self.gate("sendChatAction", params)?;
        self.chat_actions.push(ChatAction { chat_id, action });
        Ok(json!(true))
    }

    /// The file of a media parameter (`document`, `photo`): an upload in the part its
    /// `attach://` names, checked against `max` bytes, or a reference (a file_id or a URL).
    fn media(
        params: &Map<String, Value>,
        files: &[UploadedFile],
        what: &str,
        max: usize,
    ) -> Result<(Option<UploadedFile>, Option<String>), Failure> {
        let value = str_param(params, what).unwrap_or_default();
        let missing = || bad(format!("Bad Request: there is no {what} in the request"));
        match value.strip_prefix("attach://") {
            Some(part) => {
                let file = files.iter().find(|f| f.part == part).ok_or_else(missing)?;
                if file.bytes.is_empty() {
                    return Err(bad("Bad Request: file must be non-empty"));
                }
                if file.bytes.len() > max {
                    return Err(Failure::new(413, "Request Entity Too Large"));
                }
                Ok((Some(file.clone()), None))
            }
            None if value.is_empty() => Err(missing()),
            None => Ok((None, Some(value.to_owned()))),
        }
    }

    /// A media message's caption as sent and as parsed (at most 1024 characters of text).
    fn caption(&self, params: &Map<String, Value>) -> Result<(Option<String>, Option<Parsed>), Failure> {
        let caption = str_param(params, "caption").map(str::to_owned);
        let parsed = match &caption {
            Some(caption) => {
                let parsed = self.parse_text(caption, params, "parse_mode", "caption_entities")?;
                if parsed.char_len() > 1024 {
                    return Err(bad("Bad Request: message caption is too long"));
                }
                Some(parsed)
            }
            None => None,
        };
        Ok((caption, parsed))
    }

    /// What a sent message carries besides its media: its text or caption with their entities
    /// (under the field names given), the inline keyboard and the message it replies to.
    fn dress(json: &mut Value, text: Option<((&str, &str), Parsed)>, params: &Map<String, Value>, reply_to: Option<Value>) {
        if let Some(((text_field, entities_field), parsed)) = text {
            json[text_field] = json!(parsed.text);
            if !parsed.entities.is_empty() {
                json[entities_field] = Value::Array(parsed.entities);
            }
        }
        if let Some(markup) = normalized_inline_markup(params.get("reply_markup")) {
            json["reply_markup"] = markup;
        }
        if let Some(reply) = reply_to {
            json["reply_to_message"] = reply;
        }
    }

    /// Keeps a message the bot sent in its chat, with its raw text or caption as the bot gave it.
    fn store_sent(
        &mut self,
        chat_id: i64,
        message_id: i64,
        json: &Value,
        params: &Map<String, Value>,
        (raw_text, raw_caption): (Option<String>, Option<String>),
        document: Option<SentDocument>,
    ) {
        self.store_message(
            chat_id,
            message_id,
            StoredMessage {
                json: json.clone(),
                from_bot: true,
                deleted: false,
                raw_text,
                parse_mode: str_param(params, "parse_mode").map(str::to_owned),
                reply_markup: params.get("reply_markup").cloned(),
                raw_caption,
                document,
                edit_count: 0,
            },
        );
    }

    fn send_document(&mut self, params: &Map<String, Value>, files: &[UploadedFile]) -> Result<Value, Failure> {
        let chat_id = self.resolve_chat(params)?;
        let (upload, reference) = Self::media(params, files, "document", MAX_UPLOAD)?;
        let (caption, parsed_caption) = self.caption(params)?;
        Self::check_reply_markup(params.get("reply_markup"))?;
        let reply_to = self.replied_message(chat_id, params)?;
        self.gate("sendDocument", params)?;
        let (file_id, file_unique_id) = self.file_ids();
        let (message_id, mut json) = self.new_bot_message(chat_id);
        let file_name = match (&upload, &reference) {
            (Some(file), _) if !file.file_name.is_empty() => file.file_name.clone(),
            (Some(_), _) => "document".to_owned(),
            (None, Some(reference)) => reference.rsplit('/').next().unwrap_or("document").to_owned(),
            (None, None) => "document".to_owned(),
        };
        let mut document_json = json!({
            "file_id": file_id,
            "file_unique_id": file_unique_id,
            "file_name": file_name,
        });
        if let Some(file) = &upload {
            document_json["file_size"] = json!(file.bytes.len());
            if let Some(mime) = &file.content_type {
                document_json["mime_type"] = json!(mime);
            }
        }
        json["document"] = document_json;
        Self::dress(&mut json, parsed_caption.map(|c| (("caption", "caption_entities"), c)), params, reply_to);
        let sent = SentDocument {
            chat_id,
            message_id,
            file_name,
            content_type: upload.as_ref().and_then(|f| f.content_type.clone()),
            bytes: upload.map(|f| f.bytes).unwrap_or_default(),
            reference,
            caption: caption.clone(),
        };
        self.documents.push(sent.clone());
        self.store_sent(chat_id, message_id, &json, params, (None, caption), Some(sent));
        Ok(json)
    }

    /// `sendPhoto`: an upload (multipart, `attach://` part) of at most 10 MB whose width and
    /// height add up to at most 10000 with a ratio of at most 20, or a file_id/URL; the answer
    /// carries the photo in two sizes, as Telegram's does.
    fn send_photo(&mut self, params: &Map<String, Value>, files: &[UploadedFile]) -> Result<Value, Failure> {
        let chat_id = self.resolve_chat(params)?;
        let (upload, reference) = Self::media(params, files, "photo", MAX_PHOTO_UPLOAD)?;
        let size = match &upload {
            Some(file) => {
                let Some((w, h)) = image_size(&file.bytes) else {
                    return Err(bad("Bad Request: IMAGE_PROCESS_FAILED"));
                };
                if w == 0 || h == 0 || w + h > 10_000 || w.max(h) > 20 * w.min(h) {
                    return Err(bad("Bad Request: PHOTO_INVALID_DIMENSIONS"));
                }
                Some((w, h))
            }
            None => None,
        };
        let (caption, parsed_caption) = self.caption(params)?;
        Self::check_reply_markup(params.get("reply_markup"))?;
        let reply_to = self.replied_message(chat_id, params)?;
        self.gate("sendPhoto", params)?;
        let (w, h) = size.unwrap_or((1280, 720));
        let mut sizes = Vec::new();
        for side in [90u32, 1280] {
            let scale = (f64::from(side) / f64::from(w.max(h))).min(1.0);
            let (file_id, file_unique_id) = self.file_ids();
            let mut size = json!({
                "file_id": file_id,
                "file_unique_id": file_unique_id,
                "width": (f64::from(w) * scale).round().max(1.0) as u32,
                "height": (f64::from(h) * scale).round().max(1.0) as u32,
            });
            if let Some(file) = &upload {
                size["file_size"] = json!((file.bytes.len() as f64 * scale * scale).ceil() as u64);
            }
            sizes.push(size);
        }
        let (message_id, mut json) = self.new_bot_message(chat_id);
        json["photo"] = Value::Array(sizes);
        Self::dress(&mut json, parsed_caption.map(|c| (("caption", "caption_entities"), c)), params, reply_to);
        self.photos.push(SentPhoto {
            chat_id,
            message_id,
            file_name: upload.as_ref().map(|f| f.file_name.clone()).unwrap_or_default(),
            content_type: upload.as_ref().and_then(|f| f.content_type.clone()),
            bytes: upload.map(|f| f.bytes).unwrap_or_default(),
            size,
            reference,
            caption: caption.clone(),
        });
        self.store_sent(chat_id, message_id, &json, params, (None, caption), None);
        Ok(json)
    }

    fn set_webhook(&mut self, params: &Map<String, Value>) -> Result<Value, Failure> {
        let url = str_param(params, "url").unwrap_or_default().to_owned();
        if !url.is_empty() && !url.starts_with("https://") {
            return Err(bad("Bad Request: bad webhook: An HTTPS URL must be provided for webhook"));
        }
        self.gate("setWebhook", params)?;
        self.webhook_url = url;
        if params.get("drop_pending_updates") == Some(&json!(true)) {
            self.queue.clear();
        }
        Ok(json!(true))
    }
}

/// See [`State::command_key`].
pub fn scope_key(scope: Option<&Value>) -> String {
    let Some(scope) = scope else {
        return "default".to_owned();
    };
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let kind = scope.get("type").and_then(Value::as_str).unwrap_or("default");
    match kind {
        "chat" | "chat_administrators" => format!("{kind}:{}", text(scope.get("chat_id"))),
        "chat_member" => format!("chat_member:{}:{}", text(scope.get("chat_id")), text(scope.get("user_id"))),
        other => other.to_owned(),
    }
}
