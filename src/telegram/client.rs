//! A small Bot API client for the calls that send, so a server error comes back at once.
//!
//! teloxide's transport sleeps ten seconds after any 5xx before it reports it, which a user
//! waiting for a reply pays on every failed try. This client posts teloxide's own payload types
//! as JSON and turns the answer into teloxide's `RequestError`, so the bot's error handling is the
//! same; the bot's retries add a short backoff with jitter instead. Only the methods the senders
//! call go through here; documents and photos (rare staff exports and charts) still use teloxide.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use teloxide::types::{ChatId, Seconds};
use teloxide::{ApiError, RequestError};

/// Posts Bot API methods with a shared HTTP client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    token: String,
    /// Each method's address, built once (it holds the token, so it is never logged).
    urls: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<&'static str, reqwest::Url>>>,
}

impl Client {
    pub fn new(http: reqwest::Client, api_url: Option<reqwest::Url>, token: &str) -> Client {
        let base = api_url.unwrap_or_else(|| reqwest::Url::parse("https://api.telegram.org").expect("a valid address"));
        Client { http, base, token: token.to_string(), urls: Default::default() }
    }

    fn url(&self, method: &'static str) -> reqwest::Url {
        let mut urls = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        urls.entry(method)
            .or_insert_with(|| {
                let mut url = self.base.clone();
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.pop_if_empty().push(&format!("bot{}", self.token)).push(method);
                }
                url
            })
            .clone()
    }

    /// Calls `method` with `payload` as JSON; the result, or the error as teloxide reports it.
    pub async fn call<P: Serialize, R: DeserializeOwned>(&self, method: &'static str, payload: &P) -> Result<R, RequestError> {
        let body = serde_json::to_vec(payload).map_err(|e| RequestError::InvalidJson { source: e.into(), raw: String::new().into() })?;
        let response = self
            .http
            .post(self.url(method))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| RequestError::Network(std::sync::Arc::new(e.without_url())))?;
        let text = response.text().await.map_err(|e| RequestError::Network(std::sync::Arc::new(e.without_url())))?;
        parse(&text)
    }
}

/// The part of a sent message the bot uses: its id. Reading only this, rather than teloxide's
/// whole `Message`, spares parsing the echoed text, keyboard, chat and sender of every reply.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Sent {
    pub message_id: i32,
}

/// A Bot API answer as it comes: the result is read straight into its type, in one pass; the
/// small error fields stay loose, as their shapes vary.
#[derive(Deserialize)]
struct Answer<R> {
    ok: Option<Value>,
    result: Option<R>,
    description: Option<Value>,
    error_code: Option<Value>,
    parameters: Option<Value>,
}

/// A Bot API answer (`{"ok": true, "result": ...}` or an error with its parameters) as a result.
pub fn parse<R: DeserializeOwned>(text: &str) -> Result<R, RequestError> {
    let invalid =
        |e: serde_json::Error| RequestError::InvalidJson { source: e.into(), raw: text.chars().take(500).collect::<String>().into() };
    let answer: Answer<R> = serde_json::from_str(text).map_err(invalid)?;
    if answer.ok.as_ref().and_then(Value::as_bool) == Some(true) {
        return match answer.result {
            Some(result) => Ok(result),
            None => serde_json::from_value(Value::Null).map_err(invalid),
        };
    }
    let parameters = answer.parameters.as_ref();
    if let Some(seconds) = parameters.and_then(|p| p.get("retry_after")).and_then(Value::as_u64) {
        return Err(RequestError::RetryAfter(Seconds::from_seconds(seconds.min(u64::from(u32::MAX)) as u32)));
    }
    if let Some(chat) = parameters.and_then(|p| p.get("migrate_to_chat_id")).and_then(Value::as_i64) {
        return Err(RequestError::MigrateToChatId(ChatId(chat)));
    }
    let description = answer.description.as_ref().and_then(Value::as_str).unwrap_or("").to_string();
    let code = answer.error_code.as_ref().and_then(Value::as_u64).unwrap_or(0);
    if code >= 500 {
        // Unknown API errors are retried, as with teloxide; no ten-second sleep first.
        return Err(RequestError::Api(ApiError::Unknown(description)));
    }
    let error = serde_json::from_value::<ApiError>(Value::String(description.clone())).unwrap_or(ApiError::Unknown(description));
    Err(RequestError::Api(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_teloxide_results_and_errors() {
        assert!(parse::<bool>(r#"{"ok":true,"result":true}"#).unwrap());
        let e = parse::<bool>(
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        );
        assert!(matches!(e, Err(RequestError::RetryAfter(s)) if s.seconds() == 7));
        let e = parse::<bool>(r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#);
        assert!(matches!(e, Err(RequestError::Api(ApiError::BotBlocked))));
        let e = parse::<bool>(r#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#);
        assert!(matches!(e, Err(RequestError::Api(ApiError::Unknown(_)))));
        assert!(matches!(parse::<bool>("<html>"), Err(RequestError::InvalidJson { .. })));
        // A sent message is read for its id only; an ignored result is skipped, whatever it is.
        let sent = r#"{"ok":true,"result":{"message_id":42,"from":{"id":1,"is_bot":true,"first_name":"B"},
            "chat":{"id":7,"type":"private","first_name":"A"},"date":1,"text":"hello",
            "reply_markup":{"inline_keyboard":[[{"text":"Go","callback_data":"m"}]]}}}"#;
        assert_eq!(parse::<Sent>(sent).unwrap(), Sent { message_id: 42 });
        assert!(parse::<serde::de::IgnoredAny>(sent).is_ok());
        assert!(parse::<serde::de::IgnoredAny>(r#"{"ok":true,"result":true}"#).is_ok());
        assert!(matches!(parse::<Sent>(r#"{"ok":true,"result":{"text":"no id"}}"#), Err(RequestError::InvalidJson { .. })));
        assert!(matches!(parse::<bool>(r#"{"ok":true}"#), Err(RequestError::InvalidJson { .. })), "a missing result is not a bool");
    }

    #[test]
    fn the_method_address_is_the_bot_api_one() {
        let client = Client::new(reqwest::Client::new(), Some(reqwest::Url::parse("http://127.0.0.1:8081/").unwrap()), "1:abc");
        assert_eq!(client.url("sendMessage").as_str(), "http://127.0.0.1:8081/bot1:abc/sendMessage");
        assert_eq!(client.url("sendMessage").as_str(), "http://127.0.0.1:8081/bot1:abc/sendMessage", "the same from the cache");
        assert_eq!(client.url("getUpdates").as_str(), "http://127.0.0.1:8081/bot1:abc/getUpdates");
        let client = Client::new(reqwest::Client::new(), None, "1:abc");
        assert_eq!(client.url("getMe").as_str(), "https://api.telegram.org/bot1:abc/getMe");
    }
}
