//! Dates and times as people type and read them, on the `jiff` crate: periods, schedules and displayed times.
//!
//! Pure: the current time comes in as a number (seconds since the Unix epoch, as everywhere in this
//! project); only `clock.rs` reads the wall clock. Every parser returns a [`DateError`] that says
//! what was wrong in words a staff member or an agency can act on; none of them panics, whatever
//! the text (non-ASCII, huge numbers, impossible dates).

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp as Instant, ToSpan as _};

use crate::engine::Timestamp;

/// Why a date, time, period or zone was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("`{0}` is not a date like 2026-12-01")]
    NotADate(String),
    #[error("{0} does not exist in the calendar")]
    NoSuchDay(String),
    #[error("`{0}` is not a time like 09:00")]
    NotATime(String),
    #[error("`{0}` is not a time zone of the tz database, such as Africa/Nairobi or UTC")]
    UnknownZone(String),
    #[error("{when} is in the past: it is now {now}")]
    InThePast { when: String, now: String },
    #[error("`{0}` is not a period; use 24h, 7d, 30d, today, all, or 2026-11-01..2026-11-28")]
    NotAPeriod(String),
}

/// A span of time to report on, `[since, until)`, with the words it was given as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub label: String,
}

/// The longest period counted back from now, in days (ten years).
const MAX_DAYS: i64 = 3650;

impl Period {
    /// `7d`, `24h`, `all`, `today`, or `2026-11-01..2026-11-28` (both days included), in UTC.
    pub fn parse(text: &str, now: Timestamp) -> Result<Period, DateError> {
        let text = text.trim().to_lowercase();
        let refuse = || DateError::NotAPeriod(shorten(&text));
        let label = text.clone();
        if text == "all" {
            return Ok(Period { since: None, until: None, label });
        }
        if text == "today" {
            return Ok(Period { since: Some(now - now.rem_euclid(86_400)), until: None, label });
        }
        if let Some((from, to)) = text.split_once("..") {
            let since = day_start(parse_date(from)?);
            let until = day_start(parse_date(to)?.tomorrow().map_err(|_| refuse())?);
            return if since < until { Ok(Period { since: Some(since), until: Some(until), label }) } else { Err(refuse()) };
        }
        let (number, seconds) = if let Some(n) = text.strip_suffix('d') {
            (n, 86_400)
        } else if let Some(n) = text.strip_suffix('h') {
            (n, 3_600)
        } else {
            return Err(refuse());
        };
        let n: i64 = number.parse().map_err(|_| refuse())?;
        if !(1..=MAX_DAYS * 86_400 / seconds).contains(&n) {
            return Err(refuse());
        }
        Ok(Period { since: Some(now - n * seconds), until: None, label })
    }
}

/// At most 40 characters of what someone typed, for an error message.
fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// A `YYYY-MM-DD` date; `2026-02-31` is refused as a day that does not exist.
pub fn parse_date(text: &str) -> Result<Date, DateError> {
    let text = text.trim();
    let not_a_date = || DateError::NotADate(shorten(text));
    let mut parts = text.split('-');
    let mut number = |digits: usize| -> Result<i64, DateError> {
        let part = parts.next().ok_or_else(not_a_date)?;
        if part.len() != digits || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_date());
        }
        part.parse().map_err(|_| not_a_date())
    };
    let (y, m, d) = (number(4)?, number(2)?, number(2)?);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(not_a_date());
    }
    Date::new(y as i16, m as i8, d as i8).map_err(|_| DateError::NoSuchDay(text.to_string()))
}

/// An `HH:MM` time of day.
fn parse_time(text: &str) -> Result<Time, DateError> {
    let not_a_time = || DateError::NotATime(shorten(text));
    let (h, m) = text.split_once(':').ok_or_else(not_a_time)?;
    let ok = |p: &str| (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    if !ok(h) || m.len() != 2 || !ok(m) {
        return Err(not_a_time());
    }
    let (h, m): (i8, i8) = (h.parse().map_err(|_| not_a_time())?, m.parse().map_err(|_| not_a_time())?);
    Time::new(h, m, 0, 0).map_err(|_| not_a_time())
}

/// A time zone by its tz database name (`Africa/Nairobi`, `UTC`).
pub fn zone(name: &str) -> Result<TimeZone, DateError> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("utc") {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| DateError::UnknownZone(shorten(name)))
}

/// Seconds since the epoch at the start of a UTC day.
fn day_start(date: Date) -> Timestamp {
    date.to_zoned_datetime(TimeZone::UTC).map_or(0, |z| z.timestamp().as_second())
}

/// A moment to send something: `2026-12-01 09:00`, `2026-12-01T09:00`, optionally followed by a
/// zone name (`2026-12-01 09:00 Africa/Nairobi`); without one, `default_zone`. A time that is not
/// after `now` is refused, with the current time shown in the same zone.
pub fn parse_when(text: &str, default_zone: &TimeZone, now: Timestamp) -> Result<Timestamp, DateError> {
    let mut words = text.split_whitespace();
    let first = words.next().ok_or_else(|| DateError::NotADate(String::new()))?;
    let (day, time) = match first.split_once(['T', 't']) {
        Some((day, time)) => (day, time.to_string()),
        None => (first, words.next().ok_or_else(|| DateError::NotATime(String::new()))?.to_string()),
    };
    let zone_name = words.next();
    if let Some(extra) = words.next() {
        return Err(DateError::UnknownZone(shorten(extra)));
    }
    let zone = match zone_name {
        Some(name) => zone(name)?,
        None => default_zone.clone(),
    };
    let local = DateTime::from_parts(parse_date(day)?, parse_time(&time)?);
    let at = local.to_zoned_datetime(zone.clone()).map_err(|_| DateError::NotATime(shorten(text)))?.timestamp().as_second();
    if at <= now {
        return Err(DateError::InThePast { when: format_in(at, &zone), now: format_in(now, &zone) });
    }
    Ok(at)
}

/// A UTC date and time, `2026-11-28 14:05`.
pub fn format_time(at: Timestamp) -> String {
    format_in(at, &TimeZone::UTC).trim_end_matches(" UTC").to_string()
}

/// A date and time in a zone, with the zone's name: `2026-12-01 09:00 Africa/Nairobi`.
pub fn format_in(at: Timestamp, zone: &TimeZone) -> String {
    let instant = Instant::from_second(at).unwrap_or(Instant::UNIX_EPOCH);
    let zoned = instant.to_zoned_datetime(zone.clone());
    let name = zone.iana_name().unwrap_or("UTC");
    format!("{} {name}", zoned.strftime("%Y-%m-%d %H:%M"))
}

/// The UTC day of a moment, `2026-11-28`.
pub fn day_of(at: Timestamp) -> String {
    format_time(at)[..10].to_string()
}

/// The UTC day `days` after `day` (a `YYYY-MM-DD` date), or `None` for a date that is not one.
pub fn add_days(day: &str, days: i64) -> Option<String> {
    let date = parse_date(day).ok()?.checked_add(days.days()).ok()?;
    Some(date.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = 1_795_000_000; // 2026-11-18 11:06 UTC

    #[test]
    fn periods() {
        assert_eq!(Period::parse("7d", NOW).unwrap().since, Some(NOW - 7 * 86_400));
        assert_eq!(Period::parse("24H", NOW).unwrap().since, Some(NOW - 86_400));
        assert_eq!(Period::parse("all", NOW).unwrap().since, None);
        let p = Period::parse("2026-11-01..2026-11-28", NOW).unwrap();
        assert_eq!((p.since, p.until), (Some(1_793_491_200), Some(1_795_910_400)));
        for bad in
            ["2026-11-28..2026-11-01", "fortnight", "0d", "é", "7ü", "İ", "ßd", "99999999999999999999d", "3651d", "2026-02-31..2026-03-01"]
        {
            assert!(Period::parse(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn impossible_dates_say_so() {
        assert_eq!(parse_date("2026-02-31"), Err(DateError::NoSuchDay("2026-02-31".into())));
        assert!(parse_date("2028-02-29").is_ok());
        assert!(matches!(parse_date("2026-2-1"), Err(DateError::NotADate(_))));
        assert!(matches!(parse_date("２０２６-01-01"), Err(DateError::NotADate(_))));
    }

    #[test]
    fn schedules_in_a_zone_and_never_in_the_past() {
        let utc = TimeZone::UTC;
        let nairobi = parse_when("2026-12-01 09:00 Africa/Nairobi", &utc, NOW).unwrap();
        let in_utc = parse_when("2026-12-01T06:00", &utc, NOW).unwrap();
        assert_eq!(nairobi, in_utc);
        let default_nairobi = parse_when("2026-12-01 09:00", &zone("Africa/Nairobi").unwrap(), NOW).unwrap();
        assert_eq!(default_nairobi, nairobi);
        let past = parse_when("2026-11-01 09:00 Africa/Nairobi", &utc, NOW).unwrap_err();
        assert_eq!(past.to_string(), "2026-11-01 09:00 Africa/Nairobi is in the past: it is now 2026-11-18 14:06 Africa/Nairobi");
        assert!(matches!(parse_when("2026-12-01 09:00 Mars/Olympus", &utc, NOW), Err(DateError::UnknownZone(_))));
        assert!(matches!(parse_when("2026-12-01 25:00", &utc, NOW), Err(DateError::NotATime(_))));
        assert!(matches!(parse_when("2026-02-31 09:00", &utc, NOW), Err(DateError::NoSuchDay(_))));
    }

    #[test]
    fn formats() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(NOW), "2026-11-18 11:06");
        assert_eq!(day_of(NOW), "2026-11-18");
        assert_eq!(add_days("2026-12-30", 3).as_deref(), Some("2027-01-02"));
        assert_eq!(add_days("2026-02-31", 1), None);
    }
}
