//! Configuration from the environment and an optional `.env` file, validated before anything starts.
//!
//! Every variable is documented in `.env.example`. A flag on a subcommand wins over the
//! environment. Problems are reported as one line naming the variable; the token is never shown.

use std::fmt;
use std::path::PathBuf;

/// The bot token; its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// Settings shared by every subcommand.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_path: PathBuf,
    pub dialogs_dir: PathBuf,
    pub knowledge_dir: PathBuf,
    pub admin_ids: Vec<i64>,
    pub staff_chat_id: Option<i64>,
}

/// Reads a variable; an empty value counts as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Loads `.env` from the working folder if there is one; real environment variables win.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(var)
    }

    /// Builds the configuration from any lookup, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let admin_ids = match get("ADMIN_IDS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<i64>().map_err(|_| ConfigError {
                        variable: "ADMIN_IDS",
                        problem: format!("`{s}` is not a numeric Telegram user id; write ids separated by commas"),
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let staff_chat_id = match get("STAFF_CHAT_ID") {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| ConfigError {
                variable: "STAFF_CHAT_ID",
                problem: format!("`{v}` is not a numeric chat id (group ids are negative, like -1001234567890)"),
            })?),
        };
        Ok(Config {
            database_path: get("DATABASE_PATH").map_or_else(|| PathBuf::from("data/sme-advisor.sqlite3"), PathBuf::from),
            dialogs_dir: get("DIALOGS_DIR").map_or_else(|| PathBuf::from("dialogs"), PathBuf::from),
            knowledge_dir: get("KNOWLEDGE_DIR").map_or_else(|| PathBuf::from("knowledge"), PathBuf::from),
            admin_ids,
            staff_chat_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_values_name_the_variable() {
        let err = Config::from_lookup(|k| (k == "ADMIN_IDS").then(|| "12,abc".to_string())).unwrap_err();
        assert_eq!(err.variable, "ADMIN_IDS");
        let err = Config::from_lookup(|k| (k == "STAFF_CHAT_ID").then(|| "staff".to_string())).unwrap_err();
        assert_eq!(err.to_string(), "STAFF_CHAT_ID: `staff` is not a numeric chat id (group ids are negative, like -1001234567890)");
    }

    #[test]
    fn defaults_and_secret_redaction() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(config.database_path, PathBuf::from("data/sme-advisor.sqlite3"));
        let secret = Secret::new("123:ABC".into());
        assert!(!format!("{secret:?} {secret}").contains("ABC"));
    }
}
