//! Telegram's rate limits, honoured before sending: one gate that every call that sends passes.
//!
//! [`Limits`] is the pure part (time comes in as an `Instant`): a global budget of messages in any
//! one-second window (default 30), a budget per private chat (a small burst, then one a second),
//! and per group (at most 20 in any minute). Requests have a [`Class`]: answers to the person
//! waiting first, then staff relays, then reminders and reports, then broadcasts, which also leave
//! a reserve of the global budget free so that a reply never waits for them. A 429 pauses the chat
//! it came from; it pauses everything when it looks global (two chats refused within two seconds,
//! or the global window was full), and nothing passes the gate before `retry_after` has run out.
//! [`Gate`] is the async wrapper the senders await.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Who a message is for, in the order they are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Answers to the person waiting: replies, edited menus.
    #[default]
    Reply,
    /// Staff relays and handoff posts.
    Relay,
    /// Reminders of saved calls and broadcast reports.
    Reminder,
    /// Programme calls to subscribers.
    Broadcast,
}

const CLASSES: usize = 4;

/// Added to every window and interval: a message sent at the edge of a window can reach Telegram
/// a little later than the one before it, so the two would land in the same window there.
const MARGIN: Duration = Duration::from_millis(60);

/// The budgets; Telegram's published limits by default.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    /// Messages in any one-second window, over all chats.
    pub global_per_second: usize,
    /// Messages a private chat may get at once before the per-second rate applies.
    pub chat_burst: f64,
    /// Messages a second to one private chat, after the burst.
    pub chat_per_second: f64,
    /// Messages to one group in any sixty-second window.
    pub group_per_minute: usize,
    /// Of the global budget, what broadcasts leave free for replies at least; more when replies
    /// came in larger bursts lately (their peak in any window of the last five seconds, plus 3).
    pub broadcast_reserve: usize,
    /// Paid broadcasts (`allow_paid_broadcast`): broadcasts are limited by their own rate only.
    pub paid_broadcast: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            global_per_second: 30,
            chat_burst: 3.0,
            chat_per_second: 1.0,
            group_per_minute: 20,
            broadcast_reserve: 10,
            paid_broadcast: false,
        }
    }
}

/// Why a request must wait, and how long at least.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    pub at_least: Duration,
    /// The wait is for the global budget (so the request counts as waiting for it).
    pub global: bool,
}

#[derive(Debug)]
struct Chat {
    tokens: f64,
    last: Instant,
    /// Sends in the last minute (groups only).
    minute: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

/// What a 429 paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Chat,
    Everything,
}

/// The state of the budgets.
#[derive(Debug)]
pub struct Limits {
    budget: Budget,
    second: VecDeque<Instant>,
    /// Sends of every class but broadcasts in the last five seconds, for the reserve.
    others: VecDeque<Instant>,
    chats: HashMap<i64, Chat>,
    paused_until: Option<Instant>,
    waiting: [usize; CLASSES],
    refused: VecDeque<(Instant, i64)>,
}

impl Limits {
    pub fn new(budget: Budget) -> Limits {
        Limits {
            budget,
            second: VecDeque::new(),
            others: VecDeque::new(),
            chats: HashMap::new(),
            paused_until: None,
            waiting: [0; CLASSES],
            refused: VecDeque::new(),
        }
    }

    /// Until when everything is paused by a global 429, if it is.
    pub fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|until| *until > now)
    }

    /// Takes a slot for one message to `chat`, or says how long to wait.
    pub fn try_take(&mut self, chat: i64, class: Class, now: Instant) -> Result<(), Wait> {
        if let Some(until) = self.paused_until(now) {
            return Err(Wait { at_least: until - now, global: false });
        }
        let budget = self.budget.clone();
        let group = chat < 0;
        let state =
            self.chats.entry(chat).or_insert(Chat { tokens: budget.chat_burst, last: now, minute: VecDeque::new(), paused_until: None });
        if let Some(until) = state.paused_until.filter(|u| *u > now) {
            return Err(Wait { at_least: until - now, global: false });
        }
        // The margin stretches the interval by the share it is of a second: 60 ms at one a
        // second, next to nothing at the rates of a local test server.
        let per_second = budget.chat_per_second / (1.0 + MARGIN.as_secs_f64());
        state.tokens = (state.tokens + now.saturating_duration_since(state.last).as_secs_f64() * per_second).min(budget.chat_burst);
        state.last = now;
        if state.tokens < 1.0 {
            let at_least = Duration::from_secs_f64((1.0 - state.tokens) / per_second);
            return Err(Wait { at_least, global: false });
        }
        if group {
            let minute = Duration::from_secs(60) + MARGIN;
            while state.minute.front().is_some_and(|t| now.saturating_duration_since(*t) >= minute) {
                state.minute.pop_front();
            }
            if state.minute.len() >= budget.group_per_minute {
                let oldest = *state.minute.front().expect("a full window has a front");
                return Err(Wait { at_least: (oldest + minute).saturating_duration_since(now), global: false });
            }
        }
        let paid = class == Class::Broadcast && budget.paid_broadcast;
        if !paid {
            // Higher classes waiting for the global budget go first.
            if self.waiting[..class as usize].iter().any(|n| *n > 0) {
                return Err(Wait { at_least: Duration::from_millis(2), global: true });
            }
            let second = Duration::from_secs(1) + MARGIN;
            while self.second.front().is_some_and(|t| now.saturating_duration_since(*t) >= second) {
                self.second.pop_front();
            }
            let limit = if class == Class::Broadcast {
                budget.global_per_second.saturating_sub(self.reserve(now)).max(1)
            } else {
                budget.global_per_second
            };
            if self.second.len() >= limit {
                let oldest = self.second[self.second.len() - limit];
                return Err(Wait { at_least: (oldest + second).saturating_duration_since(now), global: true });
            }
            self.second.push_back(now);
            if class != Class::Broadcast {
                self.others.push_back(now);
            }
        }
        let state = self.chats.get_mut(&chat).expect("inserted above");
        state.tokens -= 1.0;
        if group {
            state.minute.push_back(now);
        }
        if self.chats.len() > 50_000 {
            let stale = Duration::from_secs(120);
            self.chats.retain(|_, c| now.saturating_duration_since(c.last) < stale || c.paused_until.is_some_and(|u| u > now));
        }
        Ok(())
    }

    /// What broadcasts leave free: the configured reserve, or the recent peak of other sends in
    /// one window plus 3, whichever is more.
    fn reserve(&mut self, now: Instant) -> usize {
        while self.others.front().is_some_and(|t| now.saturating_duration_since(*t) > Duration::from_secs(5)) {
            self.others.pop_front();
        }
        let window = Duration::from_secs(1) + MARGIN;
        let (mut peak, mut start) = (0, 0);
        for end in 0..self.others.len() {
            while self.others[end].saturating_duration_since(self.others[start]) >= window {
                start += 1;
            }
            peak = peak.max(end - start + 1);
        }
        self.budget.broadcast_reserve.max(if peak > 0 { peak + 3 } else { 0 })
    }

    /// Counts a request as waiting for the global budget (or no longer).
    pub fn set_waiting(&mut self, class: Class, waiting: bool) {
        let n = &mut self.waiting[class as usize];
        *n = if waiting { *n + 1 } else { n.saturating_sub(1) };
    }

    /// A message that Telegram did not take (a 5xx or a connection lost before an answer) does not
    /// count against the budgets: its slot is given back.
    pub fn give_back(&mut self, chat: i64, class: Class) {
        if let Some(state) = self.chats.get_mut(&chat) {
            state.tokens = (state.tokens + 1.0).min(self.budget.chat_burst);
            if chat < 0 {
                state.minute.pop_back();
            }
        }
        if !(class == Class::Broadcast && self.budget.paid_broadcast) {
            self.second.pop_back();
            if class != Class::Broadcast {
                self.others.pop_back();
            }
        }
    }

    /// Telegram refused a message to `chat` with 429 `retry_after`: pause the chat, or everything
    /// when the refusal looks global.
    pub fn refused(&mut self, chat: i64, retry_after: Duration, now: Instant) -> Scope {
        let until = now + retry_after;
        let state = self.chats.entry(chat).or_insert(Chat { tokens: 0.0, last: now, minute: VecDeque::new(), paused_until: None });
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
        state.tokens = 0.0;
        while self.refused.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) > Duration::from_secs(2)) {
            self.refused.pop_front();
        }
        let other_chat = self.refused.iter().any(|(_, c)| *c != chat);
        self.refused.push_back((now, chat));
        let window_full = self.second.iter().filter(|t| now.saturating_duration_since(**t) < Duration::from_secs(1)).count()
            >= self.budget.global_per_second.saturating_sub(1);
        if other_chat || window_full {
            self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
            Scope::Everything
        } else {
            Scope::Chat
        }
    }
}

/// The async gate every sending call passes.
pub struct Gate {
    limits: Mutex<Limits>,
}

/// Counts a request as waiting for the global budget while it exists, also when its future is dropped.
struct Waiting<'a> {
    gate: &'a Gate,
    class: Class,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.gate.lock().set_waiting(self.class, false);
    }
}

impl Gate {
    pub fn new(budget: Budget) -> Gate {
        Gate { limits: Mutex::new(Limits::new(budget)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns when one message to `chat` may be sent now, with how long it waited.
    pub async fn acquire(&self, chat: i64, class: Class) -> Duration {
        let started = crate::clock::instant();
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            let result = self.lock().try_take(chat, class, crate::clock::instant());
            match result {
                Ok(()) => return started.elapsed(),
                Err(wait) => {
                    if wait.global && waiting.is_none() {
                        self.lock().set_waiting(class, true);
                        waiting = Some(Waiting { gate: self, class });
                    }
                    tokio::time::sleep(wait.at_least.clamp(Duration::from_millis(1), Duration::from_millis(250))).await;
                }
            }
        }
    }

    /// Returns when no global pause is running (for calls that are not messages: chat actions,
    /// callback answers).
    pub async fn unpaused(&self) {
        loop {
            let until = self.lock().paused_until(crate::clock::instant());
            match until {
                None => return,
                Some(until) => tokio::time::sleep_until(until.into()).await,
            }
        }
    }

    pub fn give_back(&self, chat: i64, class: Class) {
        self.lock().give_back(chat, class);
    }

    pub fn refused(&self, chat: i64, retry_after: Duration) -> Scope {
        self.lock().refused(chat, retry_after, crate::clock::instant())
    }

    pub fn paused_until(&self) -> Option<Instant> {
        self.lock().paused_until(crate::clock::instant())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_global_budget_holds_in_every_one_second_window() {
        let mut limits = Limits::new(Budget::default());
        let start = Instant::now();
        let mut sent = Vec::new();
        // 200 chats, one message each, offered every 5 ms.
        for i in 0..200u64 {
            let now = start + ms(i * 5);
            if limits.try_take(i as i64, Class::Reply, now).is_ok() {
                sent.push(now);
            }
        }
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|u| u.duration_since(*t) < Duration::from_secs(1)).count();
            assert!(in_window <= 30, "{in_window} in the second after send {i}");
        }
        assert!(sent.len() >= 30);
    }

    #[test]
    fn a_private_chat_gets_one_a_second_and_a_group_twenty_a_minute() {
        let mut limits = Limits::new(Budget::default());
        let t = Instant::now();
        for _ in 0..3 {
            assert!(limits.try_take(7, Class::Reply, t).is_ok(), "a burst of three");
        }
        let wait = limits.try_take(7, Class::Reply, t + ms(100)).unwrap_err();
        assert!(!wait.global && wait.at_least >= ms(950), "{wait:?}");
        assert!(limits.try_take(7, Class::Reply, t + ms(1_070)).is_ok());
        assert!(limits.try_take(7, Class::Reply, t + ms(1_080)).is_err(), "then one a second");
        let mut sent = 0;
        for s in 0..55 {
            if limits.try_take(-100, Class::Reply, t + Duration::from_millis(s * 1_100)).is_ok() {
                sent += 1;
            }
        }
        assert_eq!(sent, 20);
    }

    #[test]
    fn broadcasts_leave_a_reserve_and_yield_to_waiting_replies() {
        let mut limits = Limits::new(Budget::default());
        let t = Instant::now();
        let broadcasts = (0..40).filter(|i| limits.try_take(1_000 + i, Class::Broadcast, t).is_ok()).count();
        assert_eq!(broadcasts, 20, "30 less a reserve of 10");
        for chat in 0..10 {
            assert!(limits.try_take(chat, Class::Reply, t).is_ok(), "ten replies at once find room");
        }
        // A reply waiting for the global budget holds broadcasts back.
        let t2 = t + ms(1_070);
        limits.set_waiting(Class::Reply, true);
        assert!(limits.try_take(2_000, Class::Broadcast, t2).unwrap_err().global);
        assert!(limits.try_take(6, Class::Relay, t2).unwrap_err().global, "relays wait for waiting replies too");
        limits.set_waiting(Class::Reply, false);
        // After a burst of ten replies, broadcasts leave room for thirteen.
        let t3 = t + ms(2_200);
        let broadcasts = (0..40).filter(|i| limits.try_take(3_000 + i, Class::Broadcast, t3).is_ok()).count();
        assert_eq!(broadcasts, 17);
    }

    #[test]
    fn a_429_pauses_its_chat_or_everything_when_it_looks_global() {
        let mut limits = Limits::new(Budget::default());
        let t = Instant::now();
        assert_eq!(limits.refused(7, Duration::from_secs(3), t), Scope::Chat);
        assert!(limits.try_take(7, Class::Reply, t + ms(2_900)).is_err());
        assert!(limits.try_take(8, Class::Reply, t + ms(10)).is_ok(), "other chats go on");
        assert!(limits.try_take(7, Class::Reply, t + ms(3_100)).is_ok());
        assert_eq!(limits.refused(9, Duration::from_secs(2), t + ms(3_100)), Scope::Chat);
        assert_eq!(limits.refused(10, Duration::from_secs(2), t + ms(3_200)), Scope::Everything, "a second chat within 2 s");
        assert!(limits.try_take(11, Class::Reply, t + ms(5_100)).is_err(), "nothing before retry_after ran out");
        assert!(limits.try_take(11, Class::Reply, t + ms(5_200)).is_ok());
    }

    #[test]
    fn a_message_telegram_did_not_take_gives_its_slot_back() {
        let mut limits = Limits::new(Budget { chat_burst: 1.0, ..Budget::default() });
        let t = Instant::now();
        assert!(limits.try_take(7, Class::Reply, t).is_ok());
        assert!(limits.try_take(7, Class::Reply, t + ms(10)).is_err());
        limits.give_back(7, Class::Reply);
        assert!(limits.try_take(7, Class::Reply, t + ms(20)).is_ok(), "the retry goes at once");
    }

    #[test]
    fn paid_broadcasts_are_outside_the_global_budget() {
        let mut limits = Limits::new(Budget { paid_broadcast: true, ..Budget::default() });
        let t = Instant::now();
        let broadcasts = (0..100).filter(|i| limits.try_take(1_000 + i, Class::Broadcast, t).is_ok()).count();
        assert_eq!(broadcasts, 100);
        assert_eq!((0..40).filter(|i| limits.try_take(i + 1, Class::Reply, t).is_ok()).count(), 30);
    }
}
