//! Health of the running bot: liveness, readiness and Prometheus metrics on `METRICS_LISTEN`.
//!
//! The long-running tasks beat a heartbeat and count what they do in [`Health`], which is only
//! atomics, so recording costs no lock. `GET /healthz` answers while the process runs;
//! `GET /readyz` answers 503 with the reason when a worker is stuck on one update, a sender
//! stopped beating, the database cannot be written, or (polling) `getUpdates` has not succeeded
//! lately; `GET /metrics` is the Prometheus text format.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use super::{Shared, now_ms};

/// Upper bounds of the turn latency histogram, in milliseconds.
const LATENCY_BUCKETS_MS: [u64; 11] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];
/// A sender that has not beaten for this long is not ready.
const SENDER_SILENT_MS: i64 = 15_000;
/// Polling that has not succeeded for this long is not ready (a poll returns within about 10 s).
const POLL_SILENT_MS: i64 = 90_000;

/// How a send ended, for the `sends` counter.
#[derive(Clone, Copy, Debug)]
pub enum SendResult {
    Ok,
    TooMany,
    Blocked,
    ServerError,
    Network,
    Refused,
}

const SEND_RESULTS: [&str; 6] = ["ok", "429", "403", "5xx", "network", "refused"];

/// Counters and heartbeats shared by the bot's tasks.
pub struct Health {
    /// For each worker, when it started the update it is on (ms), or 0 when idle.
    busy_since_ms: Vec<AtomicI64>,
    sender_beat_ms: AtomicI64,
    broadcast_beat_ms: AtomicI64,
    last_poll_ok_ms: AtomicI64,
    polling: bool,
    stuck_after_ms: i64,
    started_ms: i64,
    updates_received: AtomicU64,
    updates_handled: AtomicU64,
    updates_quarantined: AtomicU64,
    task_restarts: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    latency_sum_us: AtomicU64,
    sends: [AtomicU64; SEND_RESULTS.len()],
    /// Per class (reply, relay, reminder, broadcast): messages through the gate, those that waited
    /// over 100 ms for Telegram's limits, and the longest wait in microseconds.
    gate_passed: [AtomicU64; 4],
    gate_slow: [AtomicU64; 4],
    gate_max_us: [AtomicU64; 4],
}

const CLASS_NAMES: [&str; 4] = ["reply", "relay", "reminder", "broadcast"];

impl Health {
    pub fn new(workers: usize, polling: bool, stuck_after: Duration) -> Health {
        let now = now_ms();
        Health {
            busy_since_ms: (0..workers).map(|_| AtomicI64::new(0)).collect(),
            sender_beat_ms: AtomicI64::new(now),
            broadcast_beat_ms: AtomicI64::new(now),
            last_poll_ok_ms: AtomicI64::new(now),
            polling,
            stuck_after_ms: stuck_after.as_millis() as i64,
            started_ms: now,
            updates_received: AtomicU64::new(0),
            updates_handled: AtomicU64::new(0),
            updates_quarantined: AtomicU64::new(0),
            task_restarts: AtomicU64::new(0),
            latency_buckets: Default::default(),
            latency_sum_us: AtomicU64::new(0),
            sends: Default::default(),
            gate_passed: Default::default(),
            gate_slow: Default::default(),
            gate_max_us: Default::default(),
        }
    }

    pub fn received(&self, n: usize) {
        self.updates_received.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn poll_ok(&self) {
        self.last_poll_ok_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn worker_busy(&self, worker: usize, busy: bool) {
        if let Some(slot) = self.busy_since_ms.get(worker) {
            slot.store(if busy { now_ms() } else { 0 }, Ordering::Relaxed);
        }
    }

    pub fn sender_beat(&self) {
        self.sender_beat_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn broadcast_beat(&self) {
        self.broadcast_beat_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn restarted(&self) {
        self.task_restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn quarantined(&self) {
        self.updates_quarantined.fetch_add(1, Ordering::Relaxed);
    }

    /// One update handled, and how long its turn took.
    pub fn handled(&self, took: Duration) {
        self.updates_handled.fetch_add(1, Ordering::Relaxed);
        let ms = took.as_millis() as u64;
        let bucket = LATENCY_BUCKETS_MS.iter().position(|b| ms < *b).unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// A message passed the gate of Telegram's limits after waiting `waited`.
    pub fn gate_waited(&self, class: super::limits::Class, waited: Duration) {
        let i = class as usize;
        self.gate_passed[i].fetch_add(1, Ordering::Relaxed);
        if waited > Duration::from_millis(100) {
            self.gate_slow[i].fetch_add(1, Ordering::Relaxed);
        }
        self.gate_max_us[i].fetch_max(waited.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn sent(&self, result: SendResult) {
        self.sends[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Why the bot is not ready, judged from the heartbeats alone; `None` when it is.
    fn not_ready(&self, now: i64) -> Option<String> {
        for (i, since) in self.busy_since_ms.iter().enumerate() {
            let since = since.load(Ordering::Relaxed);
            if since > 0 && now - since > self.stuck_after_ms {
                return Some(format!("worker {i} has been on one update for {} s", (now - since) / 1000));
            }
        }
        for (name, beat) in [("the outbox sender", &self.sender_beat_ms), ("the broadcast sender", &self.broadcast_beat_ms)] {
            let beat = beat.load(Ordering::Relaxed);
            if now - beat > SENDER_SILENT_MS {
                return Some(format!("{name} has not run for {} s", (now - beat) / 1000));
            }
        }
        let poll = self.last_poll_ok_ms.load(Ordering::Relaxed);
        if self.polling && now - poll > POLL_SILENT_MS {
            return Some(format!("getUpdates has not succeeded for {} s", (now - poll) / 1000));
        }
        None
    }
}

/// Readiness: the heartbeats, then a small write to the database.
fn readiness(shared: &Shared) -> Result<(), String> {
    if let Some(reason) = shared.health.not_ready(now_ms()) {
        return Err(reason);
    }
    shared.store().check_writable(now_ms() / 1000).map_err(|e| format!("the database cannot be written: {e}"))
}

/// The Prometheus text exposition of the counters and of the store's queues.
fn metrics(shared: &Shared) -> String {
    let h = &shared.health;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    };
    counter("sme_updates_received_total", "Updates recorded from Telegram.", h.updates_received.load(Ordering::Relaxed));
    counter("sme_updates_handled_total", "Updates handled (turns run).", h.updates_handled.load(Ordering::Relaxed));
    counter("sme_updates_quarantined_total", "Updates quarantined since start.", h.updates_quarantined.load(Ordering::Relaxed));
    counter(
        "sme_task_restarts_total",
        "Long-running tasks restarted after they ended unexpectedly.",
        h.task_restarts.load(Ordering::Relaxed),
    );
    let _ = writeln!(out, "# HELP sme_sends_total Bot API calls that send, by result.\n# TYPE sme_sends_total counter");
    for (i, result) in SEND_RESULTS.iter().enumerate() {
        let _ = writeln!(out, "sme_sends_total{{result=\"{result}\"}} {}", h.sends[i].load(Ordering::Relaxed));
    }
    for (name, help, values) in [
        ("sme_gate_passed_total", "Messages through the gate of Telegram's limits, by class.", &h.gate_passed),
        ("sme_gate_waited_over_100ms_total", "Messages that waited over 100 ms for Telegram's limits, by class.", &h.gate_slow),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (i, class) in CLASS_NAMES.iter().enumerate() {
            let _ = writeln!(out, "{name}{{class=\"{class}\"}} {}", values[i].load(Ordering::Relaxed));
        }
    }
    let _ = writeln!(
        out,
        "# HELP sme_gate_wait_max_seconds The longest wait for Telegram's limits, by class.\n# TYPE sme_gate_wait_max_seconds gauge"
    );
    for (i, class) in CLASS_NAMES.iter().enumerate() {
        let _ = writeln!(out, "sme_gate_wait_max_seconds{{class=\"{class}\"}} {}", h.gate_max_us[i].load(Ordering::Relaxed) as f64 / 1e6);
    }
    let _ = writeln!(out, "# HELP sme_turn_seconds Time to handle one update.\n# TYPE sme_turn_seconds histogram");
    let mut cumulative = 0;
    for (i, bound) in LATENCY_BUCKETS_MS.iter().enumerate() {
        cumulative += h.latency_buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "sme_turn_seconds_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1000.0);
    }
    cumulative += h.latency_buckets[LATENCY_BUCKETS_MS.len()].load(Ordering::Relaxed);
    let _ = writeln!(out, "sme_turn_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "sme_turn_seconds_sum {}", h.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6);
    let _ = writeln!(out, "sme_turn_seconds_count {cumulative}");
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    let now = now_ms();
    let store = shared.store();
    let (depth, oldest) = store.outbox_depth().unwrap_or((0, None));
    gauge("sme_outbox_depth", "Messages waiting in the outbox.", depth as f64);
    gauge(
        "sme_outbox_oldest_age_seconds",
        "Age of the oldest message in the outbox.",
        oldest.map_or(0, |at| (now / 1000 - at).max(0)) as f64,
    );
    gauge("sme_quarantined_updates", "Updates in the quarantine now.", store.quarantined_count().unwrap_or(0) as f64);
    let (sent, pending) = store.broadcast_progress().unwrap_or((0, 0));
    drop(store);
    gauge("sme_broadcast_sent", "Deliveries sent of the broadcasts being sent.", sent as f64);
    gauge("sme_broadcast_pending", "Deliveries still to send of the broadcasts being sent.", pending as f64);
    gauge("sme_uptime_seconds", "Seconds since the bot started.", ((now - h.started_ms) / 1000) as f64);
    out
}

/// Serves `/healthz`, `/readyz` and `/metrics` until `stop` changes.
pub(super) async fn serve(shared: Arc<Shared>, socket: std::net::TcpListener, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    use axum::http::{StatusCode, header};
    use axum::routing::get;

    let ready = shared.clone();
    let metered = shared.clone();
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let shared = ready.clone();
                async move {
                    match tokio::task::spawn_blocking(move || readiness(&shared)).await {
                        Ok(Ok(())) => (StatusCode::OK, "ready\n".to_string()),
                        Ok(Err(reason)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
                        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: the check failed\n".to_string()),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let shared = metered.clone();
                async move {
                    let text = tokio::task::spawn_blocking(move || metrics(&shared)).await.unwrap_or_default();
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
                }
            }),
        );
    let listen = socket.local_addr().context("METRICS_LISTEN: the socket has no address")?;
    let listener = tokio::net::TcpListener::from_std(socket).with_context(|| format!("METRICS_LISTEN: cannot listen on {listen}"))?;
    tracing::info!(listen = %listen, "health and metrics listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await
        .context("the metrics server failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_on_one_update_too_long_is_not_ready() {
        let h = Health::new(2, true, Duration::from_secs(5));
        assert_eq!(h.not_ready(now_ms()), None);
        h.worker_busy(1, true);
        assert_eq!(h.not_ready(now_ms() + 1_000), None);
        assert_eq!(h.not_ready(now_ms() + 7_000).as_deref(), Some("worker 1 has been on one update for 7 s"));
        h.worker_busy(1, false);
        h.sender_beat();
        h.broadcast_beat();
        h.poll_ok();
        assert_eq!(h.not_ready(now_ms() + 7_000), None);
        assert!(h.not_ready(now_ms() + 100_000).is_some_and(|r| r.contains("has not run")));
    }

    #[test]
    fn latencies_land_in_their_bucket() {
        let h = Health::new(1, false, Duration::from_secs(60));
        h.handled(Duration::from_micros(300));
        h.handled(Duration::from_millis(30));
        h.handled(Duration::from_secs(9));
        let counts: Vec<u64> = h.latency_buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, vec![1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
    }
}
