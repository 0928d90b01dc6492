//! Tests of the fake Bot API itself, over real HTTP: a raw client for malformed requests and
//! faults, and teloxide's own `Bot` for compatibility with what the real bot sends.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, BotCommandScope, ButtonRequest, ChatAction as TgChatAction, InlineKeyboardButton, InlineKeyboardMarkup, InlineQueryResult,
    InlineQueryResultArticle, InputFile, InputMessageContent, InputMessageContentText, KeyboardButton, KeyboardMarkup, LinkPreviewOptions,
    MessageId, ParseMode, Recipient, ReplyParameters, UpdateKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::spec::spec;
use super::{Button, FakeBotApi, Faults, IMPLEMENTED, RateLimits};

const TOKEN: &str = "123456:TEST-token";
const USER: i64 = 1001;

/// One HTTP request on a fresh connection; status 0 if the server closed without answering.
async fn raw_http(fake: &FakeBotApi, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    raw_http_method(fake, "POST", path, content_type, body).await
}

async fn raw_http_method(fake: &FakeBotApi, verb: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(fake.addr()).await.expect("connect");
    let head = format!(
        "{verb} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        fake.addr(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    if response.is_empty() {
        return (0, Value::Null);
    }
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn call(fake: &FakeBotApi, method: &str, params: Value) -> (u16, Value) {
    let path = format!("/bot{TOKEN}/{method}");
    raw_http(fake, &path, "application/json", params.to_string().as_bytes()).await
}

fn description(body: &Value) -> &str {
    body["description"].as_str().unwrap_or_default()
}

/// A fake with user USER's private chat known (the user said hello).
async fn fake_with_chat() -> FakeBotApi {
    let fake = FakeBotApi::start(TOKEN).await;
    fake.push_text(USER, USER, "en", "hello");
    fake
}

async fn send(fake: &FakeBotApi, params: Value) -> (u16, Value) {
    call(fake, "sendMessage", params).await
}

fn keyboard(buttons: Value) -> Value {
    json!({"inline_keyboard": [buttons]})
}

fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions { is_disabled: true, url: None, prefer_small_media: false, prefer_large_media: false, show_above_text: false }
}

fn bot(fake: &FakeBotApi) -> Bot {
    Bot::new(TOKEN).set_api_url(fake.url().parse().expect("url"))
}

#[test]
fn implemented_methods_exist_in_the_spec() {
    for method in IMPLEMENTED {
        assert_eq!(spec().method(method).map(|m| m.name.as_str()), Some(*method));
    }
    assert_eq!(spec().version, "Bot API 10.1");
}

#[tokio::test]
async fn unknown_method_wrong_token_and_bad_paths() {
    let fake = FakeBotApi::start(TOKEN).await;
    let (status, body) = call(&fake, "sendMessagee", json!({})).await;
    assert_eq!((status, description(&body)), (404, "Not Found"));
    assert_eq!(body["ok"], json!(false));
    assert_eq!(body["error_code"], json!(404));

    let (status, body) = raw_http(&fake, "/bot999:wrong/getMe", "application/json", b"{}").await;
    assert_eq!((status, description(&body)), (401, "Unauthorized"));

    let (status, _) = raw_http(&fake, "/nothing", "application/json", b"{}").await;
    assert_eq!(status, 404);

    // Method names are case-insensitive, as on Telegram; the log uses the canonical name.
    let (status, body) = call(&fake, "getme", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["username"], json!("sme_advisor_test_bot"));
    assert_eq!(body["result"]["supports_inline_queries"], json!(true));
    assert_eq!(fake.calls().last().map(|c| c.method.clone()).as_deref(), Some("getMe"));
    assert_eq!(fake.calls().len(), 4);
}

#[tokio::test]
async fn unknown_missing_and_mistyped_parameters() {
    let fake = fake_with_chat().await;
    let (status, body) = send(&fake, json!({"chat_id": USER, "text": "hi", "colour": "red"})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: unknown parameter colour"));

    let (status, body) = send(&fake, json!({"chat_id": USER})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message text is empty"));

    let (status, body) = send(&fake, json!({"text": "hi"})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: parameter chat_id is required"));

    let (status, body) = send(&fake, json!({"chat_id": true, "text": "hi"})).await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("chat_id must be of type Integer or String"), "{body}");

    let (status, body) = send(&fake, json!({"chat_id": USER, "text": 5})).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = send(&fake, json!({"chat_id": USER, "text": "hi", "disable_notification": "yes"})).await;
    assert_eq!(status, 400, "{body}");

    // Nested objects are checked against the spec too.
    let (status, body) = send(
        &fake,
        json!({"chat_id": USER, "text": "hi", "reply_markup": keyboard(json!([{"text": "A", "callback_data": "a", "colour": 1}]))}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("unknown field \"colour\""), "{body}");

    let (status, body) = call(&fake, "setMyCommands", json!({"commands": [{"command": "start"}]})).await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("\"description\" is required"), "{body}");

    let (status, body) = call(&fake, "setMyCommands", json!({"commands": [], "scope": {"type": "galaxy"}})).await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("unsupported type \"galaxy\""), "{body}");

    let (status, body) = send(&fake, json!({"chat_id": 424242, "text": "hi"})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: chat not found"));

    let (status, body) = send(&fake, json!({"chat_id": USER, "text": "fine"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(fake.calls().iter().filter(|c| c.status == 400).count() >= 9);
}

#[tokio::test]
async fn text_length_is_counted_in_characters_after_parsing() {
    let fake = fake_with_chat().await;
    let max = "é".repeat(4096);
    assert_eq!(send(&fake, json!({"chat_id": USER, "text": max})).await.0, 200);

    let (status, body) = send(&fake, json!({"chat_id": USER, "text": "a".repeat(4097)})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message is too long"));

    // Tags do not count, an entity counts as one character.
    let html = format!("<b>{}</b>&lt;", "x".repeat(4095));
    let (status, body) = send(&fake, json!({"chat_id": USER, "text": html, "parse_mode": "HTML"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["text"].as_str().map(|t| t.chars().count()), Some(4096));
    assert_eq!(body["result"]["entities"], json!([{"type": "bold", "offset": 0, "length": 4095}]));

    let html = format!("<b>{}</b>&lt;", "x".repeat(4096));
    let (status, _) = send(&fake, json!({"chat_id": USER, "text": html, "parse_mode": "HTML"})).await;
    assert_eq!(status, 400);

    let (status, body) = send(&fake, json!({"chat_id": USER, "text": "<b> </b>", "parse_mode": "HTML"})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message text is empty"));
    assert_eq!(send(&fake, json!({"chat_id": USER, "text": ""})).await.0, 400);
}

#[tokio::test]
async fn malformed_html_is_refused_like_telegram() {
    let fake = fake_with_chat().await;
    for bad in [
        "<b>unclosed",
        "a < b",
        "fish & chips",
        "<div>x</div>",
        "<b><i>x</b></i>",
        "x</b>",
        "<a href=\"https://x.y\">x",
        "<span>x</span>",
        "&nbsp;",
    ] {
        let (status, body) = send(&fake, json!({"chat_id": USER, "text": bad, "parse_mode": "HTML"})).await;
        assert_eq!(status, 400, "{bad:?} was accepted");
        assert!(description(&body).starts_with("Bad Request: can't parse entities: "), "{bad:?}: {body}");
    }
    // Plain text mode takes the same strings literally.
    assert_eq!(send(&fake, json!({"chat_id": USER, "text": "a < b & c"})).await.0, 200);

    let good = "<b>Bold</b> &amp; <i>it</i> <a href=\"https://example.com/?a=1&amp;b=2\">link</a> \
                <code>x&lt;y</code> <span class=\"tg-spoiler\">s</span> &#128512; a > b";
    let (status, body) = send(&fake, json!({"chat_id": USER, "text": good, "parse_mode": "HTML"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["text"], json!("Bold & it link x<y s 😀 a > b"));
    let entities = body["result"]["entities"].as_array().expect("entities");
    assert_eq!(entities[0], json!({"type": "bold", "offset": 0, "length": 4}));
    assert_eq!(entities[2], json!({"type": "text_link", "offset": 10, "length": 4, "url": "https://example.com/?a=1&b=2"}));
    let message = fake.last_message(USER).expect("stored");
    assert_eq!(message.text.as_deref(), Some(good));
    assert_eq!(message.parse_mode.as_deref(), Some("HTML"));

    // MarkdownV2: reserved characters must be escaped.
    let (status, body) = send(&fake, json!({"chat_id": USER, "text": "Done.", "parse_mode": "MarkdownV2"})).await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("Character '.' is reserved"), "{body}");
    let (status, body) = send(&fake, json!({"chat_id": USER, "text": "*Done*\\. [site](https://x.y)", "parse_mode": "MarkdownV2"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["text"], json!("Done. site"));
    assert_eq!(send(&fake, json!({"chat_id": USER, "text": "*open", "parse_mode": "MarkdownV2"})).await.0, 400);
    assert_eq!(send(&fake, json!({"chat_id": USER, "text": "x", "parse_mode": "BBCode"})).await.0, 400);
}

#[tokio::test]
async fn inline_keyboards_are_checked_button_by_button() {
    let fake = fake_with_chat().await;
    let with = |button: Value| json!({"chat_id": USER, "text": "pick", "reply_markup": keyboard(json!([button]))});

    let (status, body) = send(&fake, with(json!({"text": "A", "callback_data": "x".repeat(65)}))).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: BUTTON_DATA_INVALID"));
    // 64 bytes is fine, counted in bytes: 32 two-byte characters are 64 bytes, 33 are not.
    assert_eq!(send(&fake, with(json!({"text": "A", "callback_data": "x".repeat(64)}))).await.0, 200);
    assert_eq!(send(&fake, with(json!({"text": "A", "callback_data": "é".repeat(33)}))).await.0, 400);
    assert_eq!(send(&fake, with(json!({"text": "A", "callback_data": ""}))).await.0, 400);

    let (status, body) = send(&fake, with(json!({"text": "", "callback_data": "a"}))).await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("Text must be non-empty"), "{body}");

    let (status, body) = send(&fake, with(json!({"text": "A"}))).await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("Text buttons are unallowed"), "{body}");

    assert_eq!(send(&fake, with(json!({"text": "A", "callback_data": "a", "url": "https://x.y"}))).await.0, 400);
    assert_eq!(send(&fake, with(json!({"text": "A", "url": "javascript:alert(1)"}))).await.0, 400);
    assert_eq!(send(&fake, with(json!({"text": "Site", "url": "https://example.com"}))).await.0, 200);

    let many: Vec<Value> = (0..101).map(|i| json!([{"text": format!("b{i}"), "callback_data": format!("{i}")}])).collect();
    let (status, body) = send(&fake, json!({"chat_id": USER, "text": "many", "reply_markup": {"inline_keyboard": many}})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: REPLY_MARKUP_TOO_LONG"));
}

#[tokio::test]
async fn other_documented_limits() {
    let fake = fake_with_chat().await;
    let (status, body) = call(&fake, "sendChatAction", json!({"chat_id": USER, "action": "thinking"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(call(&fake, "sendChatAction", json!({"chat_id": USER, "action": "typing"})).await.0, 200);
    assert_eq!(fake.chat_actions().len(), 1);

    let commands = |list: Value| json!({"commands": list});
    assert_eq!(call(&fake, "setMyCommands", commands(json!([{"command": "Start", "description": "x"}]))).await.0, 400);
    assert_eq!(call(&fake, "setMyCommands", commands(json!([{"command": "a".repeat(33), "description": "x"}]))).await.0, 400);
    assert_eq!(call(&fake, "setMyCommands", commands(json!([{"command": "start", "description": ""}]))).await.0, 400);
    assert_eq!(call(&fake, "setMyCommands", commands(json!([{"command": "start", "description": "d".repeat(257)}]))).await.0, 400);
    let hundred_one: Vec<Value> = (0..101).map(|i| json!({"command": format!("c{i}"), "description": "d"})).collect();
    assert_eq!(call(&fake, "setMyCommands", commands(Value::Array(hundred_one))).await.0, 400);

    let update = fake.push_callback_ready_message().await;
    let query_id = fake.query_id_of(update).expect("callback id");
    let (status, body) = call(&fake, "answerCallbackQuery", json!({"callback_query_id": query_id, "text": "x".repeat(201)})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: MESSAGE_TOO_LONG"));
    assert_eq!(call(&fake, "answerCallbackQuery", json!({"callback_query_id": query_id, "text": "é".repeat(200)})).await.0, 200);
    let (status, body) = call(&fake, "answerCallbackQuery", json!({"callback_query_id": query_id})).await;
    assert_eq!((status, description(&body)), (400, super::state::QUERY_TOO_OLD));

    let update = fake.push_inline_query(USER, "en", "loans");
    let query_id = fake.query_id_of(update).expect("inline id");
    let article = |id: &str| json!({"type": "article", "id": id, "title": "T", "input_message_content": {"message_text": "hello"}});
    let fifty_one: Vec<Value> = (0..51).map(|i| article(&i.to_string())).collect();
    let answer = |results: Value| json!({"inline_query_id": query_id, "results": results});
    let (status, body) = call(&fake, "answerInlineQuery", answer(Value::Array(fifty_one))).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: RESULTS_TOO_MUCH"));
    let (status, body) = call(&fake, "answerInlineQuery", answer(json!([article("1"), article("1")]))).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: RESULT_ID_DUPLICATE"));
    assert_eq!(call(&fake, "answerInlineQuery", answer(json!([article(&"i".repeat(65))]))).await.0, 400);
    assert_eq!(call(&fake, "answerInlineQuery", answer(json!([article("")]))).await.0, 400);
    let (status, body) = call(&fake, "answerInlineQuery", answer(json!([{"type": "article", "id": "1", "title": "T"}]))).await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("input_message_content"), "{body}");
    let fifty: Vec<Value> = (0..50).map(|i| article(&i.to_string())).collect();
    let (status, body) = call(&fake, "answerInlineQuery", answer(Value::Array(fifty))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.inline_answers()[0].query, "loans");

    // Methods that exist but are not implemented: Boolean ones succeed, others are refused.
    assert_eq!(call(&fake, "setChatTitle", json!({"chat_id": -5, "title": "x"})).await.0, 200);
    let (status, body) = call(&fake, "sendVideo", json!({"chat_id": USER, "video": "file-id"})).await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("not implemented in fake"), "{body}");
}

impl FakeBotApi {
    /// Sends a bot message with one callback button through the API and presses it.
    async fn push_callback_ready_message(&self) -> i64 {
        let (status, body) = call(
            self,
            "sendMessage",
            json!({"chat_id": USER, "text": "pick", "reply_markup": keyboard(json!([{"text": "Go", "callback_data": "go"}]))}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let message_id = body["result"]["message_id"].as_i64().expect("message_id");
        self.press_button(USER, USER, message_id, "Go")
    }
}

#[tokio::test]
async fn editing_messages() {
    let fake = fake_with_chat().await;
    let markup = keyboard(json!([{"text": "A", "callback_data": "a"}]));
    let (_, body) = send(&fake, json!({"chat_id": USER, "text": "one", "reply_markup": markup})).await;
    let id = body["result"]["message_id"].as_i64().expect("id");
    assert_eq!(id, 2, "the user's hello is message 1");

    let edit = |params: Value| call(&fake, "editMessageText", params);
    let (status, body) = edit(json!({"chat_id": USER, "message_id": 99, "text": "x"})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message to edit not found"));
    let (status, body) = edit(json!({"chat_id": USER, "text": "x"})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message identifier is not specified"));
    let (status, body) = edit(json!({"chat_id": USER, "message_id": 1, "text": "x"})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message can't be edited"));

    let (status, body) = edit(json!({"chat_id": USER, "message_id": id, "text": "one", "reply_markup": markup})).await;
    assert_eq!(status, 400);
    assert!(description(&body).starts_with("Bad Request: message is not modified: "), "{body}");
    // Same text in HTML is the same content.
    let (status, _) =
        edit(json!({"chat_id": USER, "message_id": id, "text": "<b></b>one", "parse_mode": "HTML", "reply_markup": markup})).await;
    assert_eq!(status, 400);

    let (status, body) = edit(json!({"chat_id": USER, "message_id": id, "text": "two", "reply_markup": markup})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["text"], json!("two"));
    assert!(body["result"]["edit_date"].is_i64());
    // Without reply_markup the keyboard goes away, as on Telegram.
    let (status, body) = edit(json!({"chat_id": USER, "message_id": id, "text": "two"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"].get("reply_markup").is_none());
    let message = fake.message(USER, id).expect("message");
    assert_eq!((message.plain_text.as_deref(), message.edit_count), (Some("two"), 2));
    assert!(message.buttons().is_empty());

    let (status, _) = edit(json!({"chat_id": USER, "message_id": id, "text": "x".repeat(4097)})).await;
    assert_eq!(status, 400);

    let markup_edit = |m: Value| call(&fake, "editMessageReplyMarkup", json!({"chat_id": USER, "message_id": id, "reply_markup": m}));
    assert_eq!(markup_edit(markup.clone()).await.0, 200);
    assert_eq!(markup_edit(markup.clone()).await.0, 400);
    let buttons = fake.message(USER, id).expect("message").buttons();
    assert_eq!(buttons, [Button { text: "A".to_owned(), callback_data: Some("a".to_owned()), url: None }]);

    assert_eq!(call(&fake, "deleteMessage", json!({"chat_id": USER, "message_id": id})).await.0, 200);
    let (status, body) = call(&fake, "deleteMessage", json!({"chat_id": USER, "message_id": id})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message to delete not found"));
    assert!(fake.messages(USER).is_empty());
    assert_eq!(fake.all_messages(USER).len(), 2);
}

#[tokio::test]
async fn get_updates_offset_limit_and_redelivery() {
    let fake = FakeBotApi::start(TOKEN).await;
    let first = fake.push_text(USER, USER, "en", "one");
    let second = fake.push_text(USER, USER, "en", "two");
    let third = fake.push_start(USER, USER, "en", "ref-42");
    assert_eq!((second, third), (first + 1, first + 2));

    let ids = |body: &Value| -> Vec<i64> {
        body["result"].as_array().expect("array").iter().map(|u| u["update_id"].as_i64().expect("id")).collect()
    };
    let (status, body) = call(&fake, "getUpdates", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), [first, second, third]);
    assert_eq!(body["result"][2]["message"]["text"], json!("/start ref-42"));
    assert_eq!(body["result"][2]["message"]["entities"], json!([{"type": "bot_command", "offset": 0, "length": 6}]));
    // Not confirmed: delivered again.
    let (_, body) = call(&fake, "getUpdates", json!({"offset": 0, "limit": 2})).await;
    assert_eq!(ids(&body), [first, second]);
    assert_eq!(fake.pending_updates(), 3);

    let (_, body) = call(&fake, "getUpdates", json!({"offset": second})).await;
    assert_eq!(ids(&body), [second, third]);
    assert!(fake.is_confirmed(first) && !fake.is_confirmed(second));
    assert_eq!(fake.pending_updates(), 2);

    let (_, body) = call(&fake, "getUpdates", json!({"offset": third + 1, "timeout": 0})).await;
    assert_eq!(ids(&body), Vec::<i64>::new());
    assert_eq!(fake.pending_updates(), 0);

    assert_eq!(call(&fake, "getUpdates", json!({"limit": 0})).await.0, 400);
    assert_eq!(call(&fake, "getUpdates", json!({"limit": 101})).await.0, 400);
    assert_eq!(call(&fake, "getUpdates", json!({"timeout": -1})).await.0, 400);
    assert_eq!(call(&fake, "getUpdates", json!({"allowed_updates": ["messages"]})).await.0, 400);

    // Negative offset: only the last -offset updates are kept.
    let a = fake.push_text(USER, USER, "en", "a");
    let b = fake.push_text(USER, USER, "en", "b");
    let (_, body) = call(&fake, "getUpdates", json!({"offset": -1})).await;
    assert_eq!(ids(&body), [b]);
    assert!(fake.is_confirmed(a));

    // allowed_updates filters updates created afterwards.
    let (status, _) = call(&fake, "getUpdates", json!({"offset": b + 1, "allowed_updates": ["message"]})).await;
    assert_eq!(status, 200);
    let dropped = fake.push_inline_query(USER, "en", "q");
    let kept = fake.push_text(USER, USER, "en", "c");
    assert_eq!(fake.discarded_updates(), [dropped]);
    let (_, body) = call(&fake, "getUpdates", json!({})).await;
    assert_eq!(ids(&body), [kept]);
    assert_eq!(fake.allowed_updates(), Some(vec!["message".to_owned()]));
}

#[tokio::test]
async fn get_updates_long_polling() {
    let fake = FakeBotApi::start(TOKEN).await;
    // Nothing pending: waits for the timeout, then answers [].
    let started = Instant::now();
    let (status, body) = call(&fake, "getUpdates", json!({"timeout": 1})).await;
    let waited = started.elapsed();
    assert_eq!((status, body["result"].clone()), (200, json!([])));
    assert!(waited >= Duration::from_millis(950) && waited < Duration::from_secs(3), "{waited:?}");

    // A push wakes the waiting poll at once.
    let poller = {
        let fake = fake.clone();
        tokio::spawn(async move { call(&fake, "getUpdates", json!({"timeout": 5})).await })
    };
    fake.wait_polling(Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let id = fake.push_text(USER, USER, "de", "hallo");
    let (status, body) = poller.await.expect("poller");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(status, 200);
    assert_eq!(body["result"][0]["update_id"], json!(id));
    assert_eq!(body["result"][0]["message"]["from"]["language_code"], json!("de"));

    // A second poller replaces the first, which gets 409 like on Telegram.
    let old = {
        let fake = fake.clone();
        tokio::spawn(async move { call(&fake, "getUpdates", json!({"offset": id + 1, "timeout": 5})).await })
    };
    fake.wait_until("first poll waiting", Duration::from_secs(2), |f| f.lock().polls_started() >= 3).await;
    let (status, _) = call(&fake, "getUpdates", json!({"offset": id + 1, "timeout": 0})).await;
    assert_eq!(status, 200);
    let (status, body) = old.await.expect("old poller");
    assert_eq!(status, 409, "{body}");
    assert!(description(&body).starts_with("Conflict: terminated by other getUpdates request"));

    // A webhook forbids getUpdates.
    assert_eq!(call(&fake, "setWebhook", json!({"url": "http://insecure"})).await.0, 400);
    assert_eq!(call(&fake, "setWebhook", json!({"url": "https://example.com/hook"})).await.0, 200);
    assert_eq!(call(&fake, "getUpdates", json!({})).await.0, 409);
    assert_eq!(call(&fake, "deleteWebhook", json!({"drop_pending_updates": true})).await.0, 200);
    assert_eq!(call(&fake, "getUpdates", json!({})).await.0, 200);
}

#[tokio::test]
async fn form_parameters_and_shutdown() {
    let fake = fake_with_chat().await;
    let path = format!("/bot{TOKEN}/sendMessage");
    let form = format!("chat_id={USER}&text=hi%20there+you&disable_notification=true");
    let (status, body) = raw_http(&fake, &path, "application/x-www-form-urlencoded", form.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let params = fake.calls().last().expect("call").params.clone();
    assert_eq!(params, json!({"chat_id": USER, "text": "hi there you", "disable_notification": true}));
    let (status, body) = raw_http_method(&fake, "GET", &format!("/bot{TOKEN}/getChat?chat_id={USER}"), "text/plain", b"").await;
    assert_eq!((status, body["result"]["type"].clone()), (200, json!("private")));
    let (status, _) = raw_http(&fake, &path, "application/json", b"{not json").await;
    assert_eq!(status, 400);

    fake.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(fake.addr()).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn wait_until_reports_recent_calls_on_timeout() {
    let fake = FakeBotApi::start(TOKEN).await;
    call(&fake, "getMe", json!({})).await;
    let waiter = {
        let fake = fake.clone();
        tokio::spawn(async move {
            fake.wait_until("something that never happens", Duration::from_millis(100), |_| false).await;
        })
    };
    let panic = waiter.await.expect_err("must time out").into_panic();
    let message = panic.downcast_ref::<String>().expect("string panic");
    assert!(message.contains("something that never happens"), "{message}");
    assert!(message.contains("getMe -> 200"), "{message}");
}

#[tokio::test]
async fn a_private_chat_may_get_a_short_burst_as_on_telegram() {
    let fake = fake_with_chat().await;
    fake.set_rate_limits(Some(RateLimits::default()));
    let message = json!({"chat_id": USER, "text": "x"});
    for _ in 0..3 {
        assert_eq!(send(&fake, message.clone()).await.0, 200);
    }
    assert_eq!(send(&fake, message.clone()).await.0, 429, "a burst of 3, then one a second");
    assert_eq!(fake.fault_stats().sends_during_retry_after, 0);
    assert_eq!(send(&fake, message).await.0, 429);
    assert_eq!(fake.fault_stats().sends_during_retry_after, 1);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let fake = fake_with_chat().await;
    fake.push_text(USER + 1, USER + 1, "en", "hi");
    fake.set_rate_limits(Some(RateLimits { per_chat_burst: 1, ..RateLimits::default() }));
    let message = |chat: i64| json!({"chat_id": chat, "text": "x"});

    assert_eq!(send(&fake, message(USER)).await.0, 200);
    for _ in 0..2 {
        let (status, body) = send(&fake, message(USER)).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(description(&body), "Too Many Requests: retry after 1");
        assert_eq!(body["parameters"], json!({"retry_after": 1}));
    }
    // Another chat is not affected; chat actions are not messages.
    assert_eq!(send(&fake, message(USER + 1)).await.0, 200);
    assert_eq!(call(&fake, "sendChatAction", json!({"chat_id": USER, "action": "typing"})).await.0, 200);
    assert_eq!(fake.too_many_requests_count(), 2);
    assert_eq!(fake.fault_stats().rate_limited, 2);
    assert_eq!(fake.fault_stats().sends_during_retry_after, 1, "the second try came before retry_after ran out");
    assert_eq!(fake.messages(USER).len(), 1);

    // The global limit.
    fake.set_rate_limits(Some(RateLimits { global_per_second: 2, per_chat_per_second: 10, per_group_per_minute: 20, per_chat_burst: 1 }));
    assert_eq!(send(&fake, message(USER)).await.0, 200);
    assert_eq!(send(&fake, message(USER + 1)).await.0, 200);
    assert_eq!(send(&fake, message(USER)).await.0, 429);

    // Groups: at most N per minute.
    fake.push_group_text(-500, USER, "en", "hi all");
    fake.set_rate_limits(Some(RateLimits { global_per_second: 100, per_chat_per_second: 100, per_group_per_minute: 2, per_chat_burst: 1 }));
    assert_eq!(send(&fake, message(-500)).await.0, 200);
    assert_eq!(send(&fake, message(-500)).await.0, 200);
    let (status, body) = send(&fake, message(-500)).await;
    assert_eq!(status, 429);
    assert!(body["parameters"]["retry_after"].as_u64().expect("retry_after") > 50);

    fake.set_rate_limits(None);
    assert_eq!(send(&fake, message(-500)).await.0, 200);
}

#[tokio::test]
async fn injected_faults() {
    let fake = fake_with_chat().await;
    let message = json!({"chat_id": USER, "text": "x"});

    fake.force_429(2, 7);
    for _ in 0..2 {
        let (status, body) = send(&fake, message.clone()).await;
        assert_eq!((status, body["parameters"]["retry_after"].as_u64()), (429, Some(7)), "{body}");
    }
    // getMe is not in the default scope (send*/edit*).
    assert_eq!(call(&fake, "getMe", json!({})).await.0, 200);
    assert_eq!(send(&fake, message.clone()).await.0, 200);

    fake.block_chat(USER);
    let (status, body) = send(&fake, message.clone()).await;
    assert_eq!((status, description(&body)), (403, "Forbidden: bot was blocked by the user"));
    assert_eq!(call(&fake, "sendChatAction", json!({"chat_id": USER, "action": "typing"})).await.0, 403);
    fake.unblock_chat(USER);
    assert_eq!(send(&fake, message.clone()).await.0, 200);

    // Validation comes first: a bad request stays a 400 whatever the faults.
    fake.set_faults(Faults { server_error_probability: 1.0, ..Faults::default() });
    assert_eq!(send(&fake, json!({"chat_id": USER, "text": ""})).await.0, 400);
    let (status, body) = send(&fake, message.clone()).await;
    assert_eq!((status, description(&body)), (502, "Bad Gateway"));

    fake.set_faults(Faults { drop_probability: 1.0, ..Faults::default() });
    let (status, _) = send(&fake, message.clone()).await;
    assert_eq!(status, 0, "the connection must close without an answer");
    assert_eq!(fake.calls().last().map(|c| c.status), Some(0));
    assert_eq!(call(&fake, "getMe", json!({})).await.0, 200);

    let stats = fake.fault_stats();
    assert_eq!((stats.too_many_requests, stats.forbidden, stats.server_errors, stats.dropped), (2, 2, 1, 1));

    // Deterministic: the same seed gives the same faults.
    let outcomes = |seed: u64| async move {
        let fake = fake_with_chat().await;
        fake.set_faults(Faults {
            seed,
            server_error_probability: 0.3,
            drop_probability: 0.2,
            scope: vec!["sendMessage".to_owned()],
            ..Faults::default()
        });
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(send(&fake, json!({"chat_id": USER, "text": "x"})).await.0);
        }
        statuses
    };
    let first = outcomes(42).await;
    assert_eq!(first, outcomes(42).await);
    assert!(first.contains(&0) && first.contains(&502) && first.contains(&200), "{first:?}");
}

#[tokio::test]
async fn builders_produce_spec_valid_updates() {
    let fake = FakeBotApi::start(TOKEN).await;
    fake.set_user(USER, "Aigerim", Some("S."), Some("aigerim"));
    let hello = fake.push_text(USER, USER, "kk", "hi @sme_advisor_test_bot");
    let (_, sent) = send(
        &fake,
        json!({"chat_id": USER, "text": "menu", "reply_markup": keyboard(json!([{"text": "Loans", "callback_data": "menu:loans"}]))}),
    )
    .await;
    let bot_message = sent["result"]["message_id"].as_i64().expect("id");
    let ids = [
        hello,
        fake.push_command(USER, USER, "kk", "/help"),
        fake.push_start(USER, USER, "", "promo"),
        fake.push_callback(USER, USER, bot_message, "menu:loans"),
        fake.press_button(USER, USER, bot_message, "Loans"),
        fake.push_inline_query(USER, "ru", "grants"),
        fake.push_sticker(USER, USER, "", "👍"),
        fake.push_photo(USER, USER, "", Some("my shop")),
        fake.push_voice(USER, USER, "", 3),
        fake.push_location(USER, USER, "", 43.24, 76.89),
        fake.push_document(USER, USER, "", "plan.pdf", "application/pdf", None),
        fake.push_group_text(-100, USER, "en", "/ask@sme_advisor_test_bot credit?"),
        fake.push_group_reply(-100, USER + 1, "en", "me too", 1),
        fake.push_reply(USER, USER, "", "this one", bot_message),
        fake.push_edited_text(USER, fake.message_id_of(hello).expect("id"), "hi again"),
        fake.push_group_text(-1_001_234_567_890, USER, "en", "supergroup"),
    ];
    let spec = spec();
    for id in ids {
        let update = fake.update(id).expect("stored");
        spec.check_type(&update, "Update", "update", 0).unwrap_or_else(|e| panic!("update {id} does not match the spec: {e}\n{update:#}"));
    }
    let group = fake.update(ids[12]).expect("group reply");
    assert_eq!(group["message"]["chat"]["type"], json!("group"));
    assert_eq!(group["message"]["reply_to_message"]["message_id"], json!(1));
    assert_eq!(fake.update(ids[15]).expect("sg")["message"]["chat"]["type"], json!("supergroup"));
    let hello = fake.update(hello).expect("hello");
    assert_eq!(hello["message"]["entities"], json!([{"type": "mention", "offset": 3, "length": 21}]));
    assert_eq!(hello["message"]["chat"]["first_name"], json!("Aigerim"));

    // Pressing a button that is not there is a test failure, not a silent update.
    let pressed = std::panic::catch_unwind(|| fake.push_callback(USER, USER, bot_message, "nope"));
    assert!(pressed.is_err());
}

/// teloxide's own requests and types against the fake: what the real bot will send.
/// The first bytes of a PNG: signature and IHDR chunk (8-bit RGB), enough for the size to read.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend(width.to_be_bytes());
    bytes.extend(height.to_be_bytes());
    bytes.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
    bytes
}

#[tokio::test]
async fn photos_are_uploaded_with_a_readable_size_within_the_documented_limits() {
    let fake = fake_with_chat().await;
    let bot = bot(&fake);
    let chat = ChatId(USER);
    let sent = bot
        .send_photo(chat, InputFile::memory(png_header(800, 600)).file_name("chart.png"))
        .caption("Per day")
        .await
        .expect("sendPhoto through teloxide");
    let sizes = sent.photo().expect("a photo message");
    assert_eq!(sizes.last().map(|p| (p.width, p.height)), Some((800, 600)));
    assert!(sizes[0].width <= 90 && sizes[0].height <= 90, "a thumbnail first");
    assert_eq!(sent.caption(), Some("Per day"));
    let photos = fake.photos();
    assert_eq!(photos.len(), 1);
    assert_eq!((photos[0].size, photos[0].file_name.as_str()), (Some((800, 600)), "chart.png"));
    assert_eq!(photos[0].bytes, png_header(800, 600));
    assert_eq!(fake.last_message(USER).and_then(|m| m.caption), Some("Per day".to_owned()));
    // What Telegram refuses: not an image, dimensions over 10000 in total or a ratio over 20,
    // no photo at all, a caption over 1024 characters.
    let refused = |r: Result<Message, RequestError>| match r {
        Err(RequestError::Api(e)) => e.to_string(),
        other => panic!("refused expected, got {other:?}"),
    };
    let upload = |bytes: Vec<u8>| InputFile::memory(bytes).file_name("x.png");
    assert!(refused(bot.send_photo(chat, upload(b"%PDF-1.4".to_vec())).await).contains("IMAGE_PROCESS_FAILED"));
    assert!(refused(bot.send_photo(chat, upload(png_header(6000, 5000))).await).contains("PHOTO_INVALID_DIMENSIONS"));
    assert!(refused(bot.send_photo(chat, upload(png_header(2100, 100))).await).contains("PHOTO_INVALID_DIMENSIONS"));
    assert!(refused(bot.send_photo(chat, upload(png_header(10, 10))).caption("x".repeat(1025)).await).contains("caption is too long"));
    let (status, body) = call(&fake, "sendPhoto", json!({"chat_id": USER})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fake.photos().len(), 1, "nothing refused was recorded");
    // A photo by file_id is not an upload: no bytes, no size.
    let (status, body) = call(&fake, "sendPhoto", json!({"chat_id": USER, "photo": "AgACAgIAAxkBAAIB"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.photos()[1].reference.as_deref(), Some("AgACAgIAAxkBAAIB"));
    assert!(fake.photos()[1].bytes.is_empty());
}

#[test]
fn image_sizes_are_read_from_png_and_jpeg_headers() {
    assert_eq!(super::image_size(&png_header(412, 915)), Some((412, 915)));
    // A JPEG: SOI, an APP0 segment, then SOF0 with height 480 and width 640.
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00];
    jpeg.extend([0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0xE0, 0x02, 0x80, 0x03]);
    assert_eq!(super::image_size(&jpeg), Some((640, 480)));
    assert_eq!(super::image_size(b"GIF89a"), None);
    assert_eq!(super::image_size(&png_header(1, 1)[..20]), None, "a cut header");
}

#[tokio::test]
async fn teloxide_bot_round_trip() {
    let fake = FakeBotApi::start(TOKEN).await;
    let bot = bot(&fake);
    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.username(), "sme_advisor_test_bot");
    assert_eq!(me.id.0, 123456);
    let info = bot.get_webhook_info().await.expect("getWebhookInfo");
    assert!(info.url.is_none());
    bot.delete_webhook().await.expect("deleteWebhook");

    let chat = ChatId(USER);
    let hello = fake.push_text(USER, USER, "ru", "Здравствуйте");
    let hello_id = fake.message_id_of(hello).expect("id");
    let markup = InlineKeyboardMarkup::new(vec![
        vec![InlineKeyboardButton::callback("Финансирование", "fin:1")],
        vec![InlineKeyboardButton::url("Site", "https://example.com/".parse().expect("url"))],
    ]);
    let sent = bot
        .send_message(chat, "<b>Меню</b> &amp; услуги")
        .parse_mode(ParseMode::Html)
        .link_preview_options(no_preview())
        .reply_markup(markup.clone())
        .reply_parameters(ReplyParameters::new(MessageId(hello_id as i32)))
        .await
        .expect("sendMessage");
    assert_eq!(sent.text(), Some("Меню & услуги"));
    assert_eq!(sent.reply_to_message().map(|m| m.id.0 as i64), Some(hello_id));
    assert_eq!(sent.reply_markup(), Some(&markup));

    let edited = bot.edit_message_text(chat, sent.id, "Меню 2").reply_markup(markup.clone()).await.expect("editMessageText");
    assert_eq!(edited.text(), Some("Меню 2"));
    let not_modified = bot.edit_message_text(chat, sent.id, "Меню 2").reply_markup(markup.clone()).await;
    assert!(matches!(not_modified, Err(RequestError::Api(ApiError::MessageNotModified))), "{not_modified:?}");
    let missing = bot.edit_message_text(chat, MessageId(999), "x").await;
    assert!(matches!(missing, Err(RequestError::Api(ApiError::MessageToEditNotFound))), "{missing:?}");
    let bad_html = bot.send_message(chat, "<b>oops").parse_mode(ParseMode::Html).await;
    assert!(matches!(bad_html, Err(RequestError::Api(ApiError::CantParseEntities(_)))), "{bad_html:?}");
    let too_long = bot.send_message(chat, "x".repeat(4097)).await;
    assert!(matches!(too_long, Err(RequestError::Api(ApiError::MessageIsTooLong))), "{too_long:?}");

    let keyboard = KeyboardMarkup::new(vec![vec![
        KeyboardButton::new("Share location").request(ButtonRequest::Location),
        KeyboardButton::new("Help"),
    ]])
    .resize_keyboard();
    bot.send_message(chat, "Where are you?").reply_markup(keyboard).await.expect("reply keyboard");

    // Every builder's update deserializes in teloxide.
    let pushed = [
        fake.push_callback(USER, USER, i64::from(sent.id.0), "fin:1"),
        fake.push_inline_query(USER, "ru", "кредит"),
        fake.push_sticker(USER, USER, "", "👍"),
        fake.push_photo(USER, USER, "", Some("shop")),
        fake.push_voice(USER, USER, "", 2),
        fake.push_location(USER, USER, "", 51.1, 71.4),
        fake.push_document(USER, USER, "", "plan.pdf", "application/pdf", Some("plan")),
        fake.push_group_text(-77, USER, "en", "/start@sme_advisor_test_bot"),
        fake.push_group_reply(-77, USER, "en", "reply", 1),
        fake.push_edited_text(USER, hello_id, "Добрый день"),
        fake.push_start(USER, USER, "ru", "abc"),
    ];
    let updates = bot.get_updates().timeout(0).await.expect("getUpdates");
    assert_eq!(updates.len(), pushed.len() + 1);
    for update in &updates {
        assert!(!matches!(update.kind, UpdateKind::Error(_)), "teloxide could not parse {update:?}");
    }
    let UpdateKind::CallbackQuery(query) = &updates[1].kind else {
        panic!("expected a callback query: {:?}", updates[1]);
    };
    assert_eq!(query.data.as_deref(), Some("fin:1"));
    assert_eq!(query.message.as_ref().map(|m| m.id()), Some(sent.id));
    bot.answer_callback_query(query.id.clone()).text("OK").await.expect("answerCallbackQuery");
    assert_eq!(fake.callback_answers()[0].text.as_deref(), Some("OK"));
    assert!(fake.unanswered_callback_queries().is_empty());

    let UpdateKind::InlineQuery(inline) = &updates[2].kind else {
        panic!("expected an inline query: {:?}", updates[2]);
    };
    let article = InlineQueryResultArticle::new(
        "r1",
        "Кредит",
        InputMessageContent::Text(
            InputMessageContentText::new("<i>Кредит</i>").parse_mode(ParseMode::Html).link_preview_options(no_preview()),
        ),
    )
    .description("Программы")
    .reply_markup(InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::url(
        "Open",
        "https://t.me/sme_advisor_test_bot?start=loans".parse().expect("url"),
    )]]));
    bot.answer_inline_query(inline.id.clone(), vec![InlineQueryResult::Article(article)]).cache_time(0).await.expect("answerInlineQuery");
    assert_eq!(fake.inline_answers()[0].query, "кредит");

    let last = updates.last().expect("updates").id.0;
    let confirmed = bot.get_updates().offset(last as i32 + 1).timeout(0).await.expect("confirm");
    assert!(confirmed.is_empty());
    assert_eq!(fake.pending_updates(), 0);

    bot.set_my_commands(vec![BotCommand::new("start", "Начать"), BotCommand::new("help", "Помощь")])
        .scope(BotCommandScope::AllPrivateChats)
        .language_code("ru")
        .await
        .expect("setMyCommands");
    bot.set_my_commands(vec![BotCommand::new("start", "Start")])
        .scope(BotCommandScope::Chat { chat_id: Recipient::Id(chat) })
        .await
        .expect("setMyCommands chat");
    let commands = bot.get_my_commands().scope(BotCommandScope::AllPrivateChats).language_code("ru").await.expect("getMyCommands");
    assert_eq!(commands.len(), 2);
    assert_eq!(fake.my_commands(&format!("chat:{USER}"), "").map(|c| c.len()), Some(1));
    assert!(bot.get_my_commands().await.expect("default scope").is_empty());
    bot.delete_my_commands().scope(BotCommandScope::AllPrivateChats).language_code("ru").await.expect("delete");
    assert_eq!(fake.my_commands("all_private_chats", "ru"), None);

    bot.send_chat_action(chat, TgChatAction::UploadDocument).await.expect("sendChatAction");
    let document = bot
        .send_document(chat, InputFile::memory(b"%PDF-1.4 fake".to_vec()).file_name("Бизнес-план.pdf"))
        .caption("<b>План</b>")
        .parse_mode(ParseMode::Html)
        .await
        .expect("sendDocument");
    assert_eq!(document.document().and_then(|d| d.file_name.as_deref()), Some("Бизнес-план.pdf"));
    assert_eq!(document.caption(), Some("План"));
    // A file on disk is streamed with chunked transfer encoding.
    let path = std::env::temp_dir().join(format!("fake-bot-api-{}.txt", std::process::id()));
    std::fs::write(&path, vec![b'z'; 100_000]).expect("temp file");
    bot.send_document(chat, InputFile::file(&path)).await.expect("sendDocument from a file");
    let _ = std::fs::remove_file(&path);
    let documents = fake.documents();
    assert_eq!(documents[0].bytes, b"%PDF-1.4 fake");
    assert_eq!(documents[0].caption.as_deref(), Some("<b>План</b>"));
    assert_eq!(documents[1].bytes.len(), 100_000);
    let uploads = fake.calls_to("sendDocument");
    assert_eq!(uploads[0].files.len(), 1);
    assert_eq!(uploads[0].params["chat_id"], json!(USER));

    let full = bot.get_chat(chat).await.expect("getChat");
    assert!(full.is_private());
    bot.delete_message(chat, sent.id).await.expect("deleteMessage");
    let gone = bot.delete_message(chat, sent.id).await;
    assert!(matches!(gone, Err(RequestError::Api(ApiError::MessageToDeleteNotFound))), "{gone:?}");

    // Faults as teloxide sees them.
    fake.block_chat(USER);
    let blocked = bot.send_message(chat, "hi").await;
    assert!(matches!(blocked, Err(RequestError::Api(ApiError::BotBlocked))), "{blocked:?}");
    fake.unblock_chat(USER);
    fake.force_429(1, 3);
    let limited = bot.send_message(chat, "hi").await;
    assert!(matches!(limited, Err(RequestError::RetryAfter(s)) if s.seconds() == 3), "{limited:?}");
    fake.set_faults(Faults { drop_probability: 1.0, ..Faults::default() });
    let dropped = bot.send_message(chat, "hi").await;
    assert!(matches!(dropped, Err(RequestError::Network(_))), "{dropped:?}");
    fake.set_faults(Faults::default());
    bot.send_message(chat, "hi").await.expect("works again");

    let wrong = Bot::new("1:wrong").set_api_url(fake.url().parse().expect("url"));
    let unauthorized = wrong.get_me().await;
    assert!(matches!(unauthorized, Err(RequestError::Api(ApiError::InvalidToken))), "{unauthorized:?}");

    // Every successful result matches the spec's return type.
    let spec = spec();
    for call in fake.calls().iter().filter(|c| c.status == 200) {
        let returns = &spec.method(&call.method).expect("method").returns;
        let result = call.result().expect("result");
        spec.check_types(result, returns, "result", 0)
            .unwrap_or_else(|e| panic!("{} returned something off-spec: {e}\n{result:#}", call.method));
    }
}

/// A real teloxide dispatcher long-polling the fake: getMe, getUpdates with allowed_updates
/// and offsets, replies, graceful shutdown.
#[tokio::test(flavor = "multi_thread")]
async fn teloxide_dispatcher_polls_the_fake() {
    use teloxide::error_handlers::LoggingErrorHandler;
    use teloxide::update_listeners::Polling;

    let fake = FakeBotApi::start(TOKEN).await;
    let bot = bot(&fake);
    let handler = Update::filter_message().endpoint(|bot: Bot, message: Message| async move {
        let text = format!("echo: {}", message.text().unwrap_or_default());
        bot.send_message(message.chat.id, text).await?;
        Ok::<(), RequestError>(())
    });
    let listener = Polling::builder(bot.clone()).timeout(Duration::from_secs(1)).build();
    let mut dispatcher = Dispatcher::builder(bot, handler).build();
    let shutdown = dispatcher.shutdown_token();
    let task = tokio::spawn(async move {
        dispatcher.dispatch_with_listener(listener, LoggingErrorHandler::with_custom_text("polling")).await;
    });

    fake.wait_polling(Duration::from_secs(5)).await;
    let ping = fake.push_text(USER, USER, "en", "ping");
    let messages = fake.wait_for_messages(USER, 1, Duration::from_secs(5)).await;
    assert_eq!(messages[0].plain_text.as_deref(), Some("echo: ping"));
    fake.wait_confirmed(ping, Duration::from_secs(5)).await;
    assert_eq!(fake.allowed_updates(), Some(vec!["message".to_owned()]));
    // Not in the bot's allowed_updates: Telegram never delivers it.
    let query = fake.push_inline_query(USER, "en", "x");
    assert_eq!(fake.discarded_updates(), [query]);

    shutdown.shutdown().expect("dispatcher running").await;
    task.await.expect("dispatcher task");
    assert_eq!(fake.pending_updates(), 0);
    let methods: Vec<String> = fake.calls().iter().map(|c| c.method.clone()).collect();
    assert_eq!(methods[..2], ["getMe", "getUpdates"]);
    let unexpected: Vec<String> = fake
        .calls()
        .iter()
        .filter(|c| c.status != 200 && !(c.method == "getUpdates" && matches!(c.status, 409 | 499)))
        .map(|c| c.one_line())
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}
