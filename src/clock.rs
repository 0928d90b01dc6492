//! The wall clock, read only at the edges and passed into the engine as a number.

use crate::engine::Timestamp;

/// Seconds since the Unix epoch.
pub fn now() -> Timestamp {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as Timestamp)
}

/// Milliseconds since the Unix epoch, for timing sends and pauses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The monotonic clock, for pacing and timeouts (never stored).
pub fn instant() -> std::time::Instant {
    std::time::Instant::now()
}

/// A number that differs from call to call, to spread retries (not for security).
pub fn jitter_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::from(d.subsec_nanos()))
}
