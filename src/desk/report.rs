//! Reports on the inquiry log: periods, statistics, and CSV or JSON exports a spreadsheet opens.

use std::collections::HashMap;

use crate::engine::Timestamp;
use crate::matching::normalize;
use crate::store::InquiryRow;

/// A span of time to report on, `[since, until)`, with the words it was given as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub label: String,
}

impl Period {
    /// `7d`, `24h`, `all`, `today`, or `2026-11-01..2026-11-28` (both days included).
    pub fn parse(text: &str, now: Timestamp) -> Option<Period> {
        let text = text.trim().to_ascii_lowercase();
        let label = text.clone();
        if text == "all" {
            return Some(Period { since: None, until: None, label });
        }
        if text == "today" {
            return Some(Period { since: Some(now - now.rem_euclid(86_400)), until: None, label });
        }
        if let Some((from, to)) = text.split_once("..") {
            let since = parse_date(from)?;
            let until = parse_date(to)? + 86_400;
            return (since < until).then_some(Period { since: Some(since), until: Some(until), label });
        }
        let (number, unit) = text.split_at(text.len().checked_sub(1)?);
        let n: i64 = number.parse().ok().filter(|n| (1..=3650).contains(n))?;
        let seconds = match unit {
            "d" => 86_400,
            "h" => 3_600,
            _ => return None,
        };
        Some(Period { since: Some(now - n * seconds), until: None, label })
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, as seconds.
fn parse_date(text: &str) -> Option<Timestamp> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?.parse::<i64>().ok()?, parts.next()?.parse::<i64>().ok()?, parts.next()?.parse::<i64>().ok()?);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400)
}

/// Howard Hinnant's days-from-civil: days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse: the date of a day number.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Counts over a set of inquiries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub total: usize,
    pub questions: usize,
    pub answered: usize,
    pub handoffs: usize,
    pub recommendations: usize,
    /// Most frequent first, at most five each.
    pub topics: Vec<(String, usize)>,
    pub unanswered: Vec<(String, usize)>,
    pub countries: Vec<(String, usize)>,
    pub languages: Vec<(String, usize)>,
}

fn top(counts: HashMap<String, usize>) -> Vec<(String, usize)> {
    let mut items: Vec<(String, usize)> = counts.into_iter().collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    items.truncate(5);
    items
}

impl Stats {
    pub fn of(rows: &[InquiryRow]) -> Stats {
        let mut s = Stats { total: rows.len(), ..Stats::default() };
        let (mut topics, mut unanswered, mut countries, mut languages) = (HashMap::new(), HashMap::new(), HashMap::new(), HashMap::new());
        for row in rows {
            match row.kind.as_str() {
                "question" => {
                    s.questions += 1;
                    if row.answered {
                        s.answered += 1;
                    } else {
                        // Phrasings are compared normalised, so "Loan?" and "loan" count together.
                        *unanswered.entry(normalize(&row.text)).or_insert(0) += 1;
                    }
                }
                "handoff" => s.handoffs += 1,
                "recommendation" => s.recommendations += 1,
                _ => {}
            }
            if let Some(t) = &row.topic {
                *topics.entry(t.clone()).or_insert(0) += 1;
            }
            *countries.entry(row.country.clone().unwrap_or_else(|| "-".into())).or_insert(0) += 1;
            *languages.entry(row.lang.clone()).or_insert(0) += 1;
        }
        s.topics = top(topics);
        s.unanswered = top(unanswered);
        s.countries = top(countries);
        s.languages = top(languages);
        s
    }
}

const HEADER: [&str; 14] = [
    "id",
    "time_utc",
    "user",
    "language",
    "kind",
    "status",
    "answered",
    "confidence",
    "matched",
    "topic",
    "country",
    "sector",
    "taken_by",
    "text",
];

fn fields(row: &InquiryRow) -> [String; 14] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        row.id.to_string(),
        super::format_time(row.at),
        row.user.map_or(String::new(), |u| u.0.to_string()),
        row.lang.clone(),
        row.kind.clone(),
        row.status.clone(),
        if row.answered { "yes" } else { "no" }.to_string(),
        format!("{:.2}", row.confidence),
        row.matched.clone(),
        opt(&row.topic),
        opt(&row.country),
        opt(&row.sector),
        opt(&row.taken_by),
        row.text.clone(),
    ]
}

fn csv_field(value: &str) -> String {
    // Quote what a spreadsheet would otherwise split or misread; a leading = + - @ is neutralised
    // so a cell is never run as a formula.
    let risky = value.starts_with(['=', '+', '-', '@']) && value.parse::<f64>().is_err();
    let value = if risky { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// RFC 4180 CSV with a header, CRLF line ends and a UTF-8 byte-order mark, so spreadsheets open
/// non-Latin scripts correctly.
pub fn to_csv(rows: &[InquiryRow]) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(&HEADER.join(","));
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&fields(row).iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// A JSON array of objects with the same fields as the CSV.
pub fn to_json(rows: &[InquiryRow]) -> String {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let mut object = serde_json::Map::new();
            for (key, value) in HEADER.iter().zip(fields(row)) {
                object.insert((*key).to_string(), serde_json::Value::String(value));
            }
            object.insert("id".into(), serde_json::json!(row.id));
            object.insert("answered".into(), serde_json::json!(row.answered));
            object.insert("confidence".into(), serde_json::json!(row.confidence));
            serde_json::Value::Object(object)
        })
        .collect();
    serde_json::to_string_pretty(&items).expect("JSON of strings and numbers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in [-1, 0, 59, 365, 20_000, 20_775, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2026, 11, 28), 20_785);
    }

    #[test]
    fn periods() {
        let now = 20_785 * 86_400 + 3_600;
        assert_eq!(Period::parse("7d", now).unwrap().since, Some(now - 7 * 86_400));
        assert_eq!(Period::parse("all", now).unwrap().since, None);
        let p = Period::parse("2026-11-01..2026-11-28", now).unwrap();
        assert_eq!((p.since, p.until), (Some(days_from_civil(2026, 11, 1) * 86_400), Some(20_786 * 86_400)));
        assert!(Period::parse("2026-11-28..2026-11-01", now).is_none());
        assert!(Period::parse("fortnight", now).is_none());
        assert!(Period::parse("0d", now).is_none());
    }
}
