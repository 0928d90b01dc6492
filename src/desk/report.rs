//! Reports on the inquiry log: periods, statistics, and CSV or JSON exports a spreadsheet opens.

use std::collections::HashMap;

use super::InquiryRow;
use crate::matching::normalize;

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
            match row.kind.name() {
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
        row.kind.name().to_string(),
        row.status.name().to_string(),
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
