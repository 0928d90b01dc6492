//! Fault injection and Telegram's flood limits: deterministic random 502s, dropped
//! connections, slow answers, forced 429s, 403 for blocked chats, and sliding-window rate limits.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Runtime-configurable faults. `Faults::default()` injects nothing.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Seed of the PRNG that decides the random faults (same seed, same sequence of calls:
    /// same faults).
    pub seed: u64,
    /// Probability (0.0-1.0) of answering HTTP 502 `Bad Gateway` to a call in `scope`.
    pub server_error_probability: f64,
    /// Probability (0.0-1.0) of closing the connection without an answer after reading a
    /// call in `scope`.
    pub drop_probability: f64,
    /// Probability (0.0-1.0) of holding a call in `scope` for `slow_by` before handling it (the
    /// call still takes effect, as on Telegram when an answer is late).
    pub slow_probability: f64,
    pub slow_by: Duration,
    /// The next `forced_429` calls in `scope` are answered 429 with `retry_after`.
    pub forced_429: u32,
    /// `retry_after` (seconds) of the forced 429s.
    pub retry_after: u32,
    /// Methods the random faults and forced 429s apply to: exact names, or prefixes ending
    /// in `*`. Default: `["send*", "edit*"]`.
    pub scope: Vec<String>,
    /// Calls whose `chat_id` is one of these are answered 403 `Forbidden: bot was blocked by
    /// the user` (or `... kicked from the group chat` for a negative id).
    pub blocked_chats: Vec<i64>,
    /// Telegram's flood limits; `None` (default) disables them.
    pub rate_limits: Option<RateLimits>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 0x5EED_F00D_FACE,
            server_error_probability: 0.0,
            drop_probability: 0.0,
            slow_probability: 0.0,
            slow_by: Duration::from_secs(3),
            forced_429: 0,
            retry_after: 1,
            scope: vec!["send*".to_owned(), "edit*".to_owned()],
            blocked_chats: Vec::new(),
            rate_limits: None,
        }
    }
}

impl Faults {
    pub fn in_scope(&self, method: &str) -> bool {
        self.scope.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => method.starts_with(prefix),
            None => pattern == method,
        })
    }
}

/// Flood limits, each a sliding window over the calls that were let through. They apply to
/// the methods that send a message (`send*` except `sendChatAction`, `copyMessage(s)`,
/// `forwardMessage(s)`); a refused call is answered 429 with `retry_after` = whole seconds
/// until the oldest call in the full window leaves it (at least 1), and does not count.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// At most this many messages in any 1 s window over all chats (Telegram: about 30).
    pub global_per_second: u32,
    /// At most this many messages to one chat in any 1 s window (Telegram: 1, with short
    /// bursts tolerated; the fake tolerates no burst with the default of 1).
    pub per_chat_per_second: u32,
    /// At most this many messages to one group (negative chat id) in any 60 s window
    /// (Telegram: 20).
    pub per_group_per_minute: u32,
    /// Above 1, a chat may get this many messages at once, then `per_chat_per_second` (a token
    /// bucket, as Telegram tolerates short bursts); 1 means a strict window.
    pub per_chat_burst: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits { global_per_second: 30, per_chat_per_second: 1, per_group_per_minute: 20, per_chat_burst: 3 }
    }
}

/// Counters of the faults the server produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// All 429 answers (forced and rate limits).
    pub too_many_requests: u64,
    /// 429 answers caused by the rate limits.
    pub rate_limited: u64,
    /// 502 answers.
    pub server_errors: u64,
    /// Connections closed without an answer.
    pub dropped: u64,
    /// Calls held for `slow_by` before they were handled.
    pub slowed: u64,
    /// Calls that send to a chat while a `retry_after` given for it (or a global one) was still
    /// running: what gets a bot banned for longer on Telegram.
    pub sends_during_retry_after: u64,
    /// 403 answers for blocked chats.
    pub forbidden: u64,
}

/// xorshift64* — small, seeded, deterministic.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The sliding windows behind [`RateLimits`].
#[derive(Debug, Default)]
pub struct RateWindows {
    global: VecDeque<Instant>,
    per_chat: HashMap<String, VecDeque<Instant>>,
    per_group: HashMap<String, VecDeque<Instant>>,
    /// Token buckets per chat when bursts are allowed: (tokens, last refill).
    buckets: HashMap<String, (f64, Instant)>,
    /// The `retry_after` given last, for everything and per chat.
    global_until: Option<Instant>,
    chat_until: HashMap<String, Instant>,
}

pub fn is_rate_limited_method(method: &str) -> bool {
    (method.starts_with("send") && method != "sendChatAction") || method.starts_with("copyMessage") || method.starts_with("forwardMessage")
}

impl RateWindows {
    pub fn clear(&mut self) {
        *self = RateWindows::default();
    }

    /// Whether a `retry_after` for `chat`, or a global one, is still running.
    pub fn in_retry_after(&self, chat: &str, now: Instant) -> bool {
        self.global_until.is_some_and(|u| now < u) || self.chat_until.get(chat).is_some_and(|u| now < *u)
    }

    /// Remembers a `retry_after` given for `chat` (or everything).
    pub fn refused(&mut self, chat: &str, global: bool, retry_after: u64, now: Instant) {
        let until = now + Duration::from_secs(retry_after);
        if global {
            self.global_until = Some(self.global_until.map_or(until, |u| u.max(until)));
        } else {
            let slot = self.chat_until.entry(chat.to_owned()).or_insert(until);
            *slot = (*slot).max(until);
        }
    }

    /// Lets a message to `chat` (the `chat_id` as text) through, or returns `retry_after` and
    /// whether the global limit (rather than the chat's) refused it.
    pub fn admit(&mut self, limits: &RateLimits, chat: &str, is_group: bool, now: Instant) -> Result<(), (u64, bool)> {
        let second = Duration::from_secs(1);
        let minute = Duration::from_secs(60);
        let global_wait = window_wait(&mut self.global, limits.global_per_second, second, now);
        let mut retry = 0u64;
        if limits.per_chat_burst > 1 && !is_group {
            let rate = f64::from(limits.per_chat_per_second.max(1));
            let burst = f64::from(limits.per_chat_burst);
            let (tokens, last) = self.buckets.entry(chat.to_owned()).or_insert((burst, now));
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
            *last = now;
            if *tokens < 1.0 {
                retry = ((1.0 - *tokens) / rate).ceil().max(1.0) as u64;
            }
        } else {
            let chat_window = self.per_chat.entry(chat.to_owned()).or_default();
            retry = retry.max(window_wait(chat_window, limits.per_chat_per_second, second, now));
        }
        if is_group {
            let group_window = self.per_group.entry(chat.to_owned()).or_default();
            retry = retry.max(window_wait(group_window, limits.per_group_per_minute, minute, now));
        }
        if global_wait > 0 || retry > 0 {
            return Err((global_wait.max(retry), global_wait > 0));
        }
        self.global.push_back(now);
        if let Some((tokens, _)) = self.buckets.get_mut(chat) {
            *tokens -= 1.0;
        } else {
            self.per_chat.entry(chat.to_owned()).or_default().push_back(now);
        }
        if is_group {
            self.per_group.get_mut(chat).expect("inserted above").push_back(now);
        }
        Ok(())
    }
}

/// Prunes `window` and returns 0 if one more call fits, else the seconds to wait.
fn window_wait(window: &mut VecDeque<Instant>, limit: u32, span: Duration, now: Instant) -> u64 {
    while window.front().is_some_and(|&t| now.duration_since(t) >= span) {
        window.pop_front();
    }
    if (window.len() as u64) < u64::from(limit.max(1)) {
        return 0;
    }
    let oldest = *window.front().expect("the window is full");
    let wait = (oldest + span).saturating_duration_since(now);
    wait.as_secs_f64().ceil().max(1.0) as u64
}
