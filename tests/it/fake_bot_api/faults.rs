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
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits { global_per_second: 30, per_chat_per_second: 1, per_group_per_minute: 20 }
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
}

pub fn is_rate_limited_method(method: &str) -> bool {
    (method.starts_with("send") && method != "sendChatAction") || method.starts_with("copyMessage") || method.starts_with("forwardMessage")
}

impl RateWindows {
    pub fn clear(&mut self) {
        *self = RateWindows::default();
    }

    /// Lets a message to `chat` (the `chat_id` as text) through, or returns `retry_after`.
    pub fn admit(&mut self, limits: &RateLimits, chat: &str, is_group: bool, now: Instant) -> Result<(), u64> {
        let second = Duration::from_secs(1);
        let minute = Duration::from_secs(60);
        let mut retry = 0u64;
        retry = retry.max(window_wait(&mut self.global, limits.global_per_second, second, now));
        let chat_window = self.per_chat.entry(chat.to_owned()).or_default();
        retry = retry.max(window_wait(chat_window, limits.per_chat_per_second, second, now));
        if is_group {
            let group_window = self.per_group.entry(chat.to_owned()).or_default();
            retry = retry.max(window_wait(group_window, limits.per_group_per_minute, minute, now));
        }
        if retry > 0 {
            return Err(retry);
        }
        self.global.push_back(now);
        self.per_chat.get_mut(chat).expect("inserted above").push_back(now);
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
