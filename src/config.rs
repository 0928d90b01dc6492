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
    /// Inquiries older than this many days are deleted; `None` keeps them.
    pub retention_days: Option<i64>,
    /// Broadcast messages per second, at most (Telegram allows about 30 in all).
    pub broadcast_rate: f64,
    /// The database may not grow beyond this many megabytes; `None`: as far as the disk allows.
    pub database_max_mb: Option<u64>,
    /// The zone agencies schedule in when they name none, and that times are shown in.
    pub time_zone: jiff::tz::TimeZone,
}

/// Reads a variable; an empty value counts as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Loads `.env` from the working folder if there is one; real environment variables win.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// Settings of `serve`, validated: the token, another Bot API server, and webhook mode.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    pub token: Secret,
    pub api_url: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_listen: std::net::SocketAddr,
    pub webhook_secret: Option<Secret>,
    pub workers: usize,
    /// How long one Bot API call may take before it is abandoned and tried again.
    pub api_timeout_secs: u64,
    /// Where health and metrics are served; `None`: off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// A worker on one update longer than this many seconds makes `/readyz` fail.
    pub worker_stuck_secs: u64,
    /// Test-only hooks that force a panic or a stall (see `telegram::ServeConfig::test_hooks`).
    pub test_hooks: bool,
    /// Messages a second over all chats (Telegram allows about 30).
    pub send_rate: usize,
    /// Messages a second to one chat after a burst of 3 (Telegram allows about 1).
    pub chat_rate: f64,
}

impl ServeSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ServeSettings, ConfigError> {
        let token = get("TELOXIDE_TOKEN").ok_or(ConfigError {
            variable: "TELOXIDE_TOKEN",
            problem: "missing; get a bot token from @BotFather and put it in .env".into(),
        })?;
        let looks_right = token.split_once(':').is_some_and(|(id, rest)| {
            !id.is_empty()
                && id.chars().all(|c| c.is_ascii_digit())
                && rest.len() >= 20
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        if !looks_right {
            // Never echo the value: it may be a real token with a typo.
            return Err(ConfigError {
                variable: "TELOXIDE_TOKEN",
                problem: "does not look like a bot token (digits, a colon, then at least 20 letters, digits, `_` or `-`)".into(),
            });
        }
        let url = |name: &'static str| -> Result<Option<String>, ConfigError> {
            match get(name) {
                None => Ok(None),
                Some(v) if (v.starts_with("http://") || v.starts_with("https://")) && v.len() > 8 => Ok(Some(v)),
                Some(v) => Err(ConfigError { variable: name, problem: format!("`{v}` is not an http:// or https:// address") }),
            }
        };
        let api_url = url("TELOXIDE_API_URL")?;
        let webhook_url = url("WEBHOOK_URL")?;
        let webhook_listen = match get("WEBHOOK_LISTEN") {
            None => std::net::SocketAddr::from(([0, 0, 0, 0], 8443)),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError { variable: "WEBHOOK_LISTEN", problem: format!("`{v}` is not an address like 0.0.0.0:8443") })?,
        };
        let webhook_secret = match get("WEBHOOK_SECRET") {
            None if webhook_url.is_some() => {
                return Err(ConfigError {
                    variable: "WEBHOOK_SECRET",
                    problem: "required with WEBHOOK_URL: 1-256 characters of A-Z, a-z, 0-9, `_` and `-`".into(),
                });
            }
            None => None,
            Some(v) if (1..=256).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
                Some(Secret::new(v))
            }
            Some(_) => {
                return Err(ConfigError {
                    variable: "WEBHOOK_SECRET",
                    problem: "must be 1-256 characters of A-Z, a-z, 0-9, `_` and `-`".into(),
                });
            }
        };
        let workers = match get("WORKERS") {
            None => 8,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or(ConfigError { variable: "WORKERS", problem: format!("`{v}` is not a number from 1 to 256") })?,
        };
        let api_timeout_secs = match get("BOT_API_TIMEOUT_SECS") {
            None => 17,
            Some(v) => v.parse::<u64>().ok().filter(|n| (2..=600).contains(n)).ok_or(ConfigError {
                variable: "BOT_API_TIMEOUT_SECS",
                problem: format!("`{v}` is not a number of seconds from 2 to 600"),
            })?,
        };
        let metrics_listen = match get("METRICS_LISTEN") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| ConfigError {
                variable: "METRICS_LISTEN",
                problem: format!("`{v}` is not an address like 127.0.0.1:9100"),
            })?),
        };
        let worker_stuck_secs = match get("WORKER_STUCK_SECS") {
            None => 60,
            Some(v) => v.parse::<u64>().ok().filter(|n| (1..=86_400).contains(n)).ok_or(ConfigError {
                variable: "WORKER_STUCK_SECS",
                problem: format!("`{v}` is not a number of seconds from 1 to 86400"),
            })?,
        };
        let test_hooks = get("SME_ADVISOR_TEST_HOOKS").is_some_and(|v| v == "1");
        let send_rate = match get("SEND_RATE") {
            None => 30,
            Some(v) => v.parse::<usize>().ok().filter(|n| (1..=100_000).contains(n)).ok_or(ConfigError {
                variable: "SEND_RATE",
                problem: format!("`{v}` is not a number of messages a second from 1 to 100000 (Telegram allows about 30)"),
            })?,
        };
        let chat_rate = match get("CHAT_RATE") {
            None => 1.0,
            Some(v) => v.parse::<f64>().ok().filter(|r| *r > 0.0 && *r <= 1000.0).ok_or(ConfigError {
                variable: "CHAT_RATE",
                problem: format!("`{v}` is not a number of messages a second from 0.01 to 1000 (Telegram allows about 1)"),
            })?,
        };
        Ok(ServeSettings {
            token: Secret::new(token),
            api_url,
            webhook_url,
            webhook_listen,
            webhook_secret,
            workers,
            api_timeout_secs,
            metrics_listen,
            worker_stuck_secs,
            test_hooks,
            send_rate,
            chat_rate,
        })
    }
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
        let retention_days =
            match get("RETENTION_DAYS") {
                None => None,
                Some(v) => Some(v.parse::<i64>().ok().filter(|d| *d >= 1).ok_or(ConfigError {
                    variable: "RETENTION_DAYS",
                    problem: format!("`{v}` is not a whole number of days (1 or more)"),
                })?),
            };
        let broadcast_rate = match get("BROADCAST_RATE") {
            None => 25.0,
            Some(v) => v.parse::<f64>().ok().filter(|r| *r > 0.0 && *r <= 1000.0).ok_or(ConfigError {
                variable: "BROADCAST_RATE",
                problem: format!("`{v}` is not a number of messages per second (Telegram allows about 30)"),
            })?,
        };
        let database_max_mb = match get("DATABASE_MAX_MB") {
            None => None,
            Some(v) => Some(v.parse::<u64>().ok().filter(|m| *m >= 1).ok_or(ConfigError {
                variable: "DATABASE_MAX_MB",
                problem: format!("`{v}` is not a whole number of megabytes (1 or more)"),
            })?),
        };
        let time_zone = match get("TIME_ZONE") {
            None => jiff::tz::TimeZone::UTC,
            Some(v) => crate::dates::zone(&v).map_err(|e| ConfigError { variable: "TIME_ZONE", problem: e.to_string() })?,
        };
        Ok(Config {
            time_zone,
            broadcast_rate,
            database_max_mb,
            retention_days,
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
        let err = Config::from_lookup(|k| (k == "TIME_ZONE").then(|| "Africa/Atlantis".to_string())).unwrap_err();
        assert_eq!(err.variable, "TIME_ZONE");
        let ok = Config::from_lookup(|k| (k == "TIME_ZONE").then(|| "Africa/Nairobi".to_string())).unwrap();
        assert_eq!(ok.time_zone.iana_name(), Some("Africa/Nairobi"));
    }

    #[test]
    fn serve_settings_are_validated_without_echoing_the_token() {
        let token = "123456:AAbbCCddEEffGGhhIIjjKKll";
        let err = ServeSettings::from_lookup(|_| None).unwrap_err();
        assert_eq!(err.variable, "TELOXIDE_TOKEN");
        let err = ServeSettings::from_lookup(|k| (k == "TELOXIDE_TOKEN").then(|| "123456-secretsecret".into())).unwrap_err();
        assert!(!err.to_string().contains("secretsecret"));
        let with = |extra: &'static str, value: &'static str| {
            move |k: &str| match k {
                "TELOXIDE_TOKEN" => Some(token.to_string()),
                k if k == extra => Some(value.to_string()),
                _ => None,
            }
        };
        assert_eq!(ServeSettings::from_lookup(with("TELOXIDE_API_URL", "localhost")).unwrap_err().variable, "TELOXIDE_API_URL");
        assert_eq!(ServeSettings::from_lookup(with("WEBHOOK_URL", "https://bot.example.org/hook")).unwrap_err().variable, "WEBHOOK_SECRET");
        assert_eq!(ServeSettings::from_lookup(with("WEBHOOK_LISTEN", "everywhere")).unwrap_err().variable, "WEBHOOK_LISTEN");
        let ok = ServeSettings::from_lookup(with("WORKERS", "4")).unwrap();
        assert_eq!((ok.workers, ok.webhook_url.as_deref()), (4, None));
        assert!(!format!("{ok:?}").contains("AAbb"));
    }

    #[test]
    fn defaults_and_secret_redaction() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(config.database_path, PathBuf::from("data/sme-advisor.sqlite3"));
        let secret = Secret::new("123:ABC".into());
        assert!(!format!("{secret:?} {secret}").contains("ABC"));
    }
}
