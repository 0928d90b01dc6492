//! Programme calls, pure part: the call file format, who a call reaches, the messages, and pacing.
//!
//! # Call files (`sme-advisor broadcast create FILE`)
//!
//! ```toml
//! provider = "Uganda Investment Authority"   # who offers it
//! countries = ["uganda", "kenya"]            # countries or regions of the vocabulary, or ["global"]
//! sectors = ["agribusiness"]                  # sectors, or ["any"]
//! topics = ["financing"]                      # financing, services, linkages, training
//! deadline = 2027-01-31                       # last day to apply
//! link = "https://example.org/apply"          # optional: where to apply, as the agency gives it
//!
//! [en]                                        # one section per language; English required
//! title = "Supplier upgrading grants"
//! offers = "..."
//! eligible = "..."
//! apply = "..."
//! ```
//!
//! Files are read with the content reader, so problems come as `path:line:col: message`, all at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::content::reader::{File, Table, did_you_mean};
use crate::content::{ANY, Content, DEFAULT_LANG, Diagnostic, GLOBAL, VocabKind};
use crate::engine::{Button, Reply, TOPICS, Timestamp};

/// Where a programme call stands. Stored by name; the database refuses any other value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Draft,
    Scheduled,
    Sending,
    Done,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 5] = [Status::Draft, Status::Scheduled, Status::Sending, Status::Done, Status::Cancelled];

    pub fn name(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Scheduled => "scheduled",
            Status::Sending => "sending",
            Status::Done => "done",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A programme call as an agency publishes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub provider: String,
    pub countries: Vec<String>,
    pub sectors: Vec<String>,
    pub topics: Vec<String>,
    /// `YYYY-MM-DD`, the last day to apply.
    pub deadline: String,
    pub link: Option<String>,
    pub texts: BTreeMap<String, CallText>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallText {
    pub title: String,
    pub offers: String,
    pub eligible: String,
    pub apply: String,
}

/// A subscriber as the store knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub user_id: i64,
    pub chat_id: i64,
    pub lang: String,
    pub country: Option<String>,
    pub sector: Option<String>,
    pub topics: Vec<String>,
}

impl Call {
    /// The text in a language, else in English.
    pub fn text(&self, lang: &str) -> &CallText {
        self.texts
            .get(lang)
            .or_else(|| self.texts.get(DEFAULT_LANG))
            .or_else(|| self.texts.values().next())
            .expect("a call always has a text")
    }

    /// Whether the call reaches a subscriber: a shared topic, their country (or its region, or
    /// anywhere), and their sector (or any). Without a country or sector only calls for anywhere
    /// or any sector reach them.
    pub fn reaches(&self, content: &Content, s: &Subscriber) -> bool {
        let topic = self.topics.iter().any(|t| s.topics.contains(t));
        let place = self.countries.iter().any(|c| c == GLOBAL)
            || s.country.as_ref().is_some_and(|country| {
                self.countries.contains(country)
                    || content
                        .vocab
                        .term(VocabKind::Country, country)
                        .and_then(|t| t.region.as_ref())
                        .is_some_and(|r| self.countries.contains(r))
            });
        let sector = self.sectors.iter().any(|x| x == ANY) || s.sector.as_ref().is_some_and(|x| self.sectors.contains(x));
        topic && place && sector
    }

    /// Whether the deadline has not passed on the given day (`YYYY-MM-DD` compares as text).
    pub fn open_on(&self, day: &str) -> bool {
        self.deadline.as_str() >= day
    }
}

/// `YYYY-MM-DD` of a time.
pub fn day_of(at: Timestamp) -> String {
    crate::dates::day_of(at)
}

/// The message a subscriber gets, with one-tap save and unsubscribe buttons.
pub fn message(content: &Content, call: &Call, lang: &str, id: i64) -> Reply {
    let text = call.text(lang);
    let mut body = content.message(
        "call_message",
        lang,
        &[
            ("provider", &call.provider),
            ("offers", &text.offers),
            ("eligible", &text.eligible),
            ("deadline", &call.deadline),
            ("apply", &text.apply),
        ],
    );
    if let Some(link) = &call.link {
        body.push('\n');
        body.push_str(&content.message("call_link", lang, &[("link", link)]));
    }
    let buttons = vec![
        Button { label: content.message("call_button_save", lang, &[]), data: format!("v:{id}") },
        Button { label: content.message("call_button_unsubscribe", lang, &[]), data: "u".into() },
    ];
    Reply { title: Some(text.title.clone()), text: body, buttons }
}

/// What the agency sees before sending: the message and how many it will reach.
pub fn preview(content: &Content, call: &Call, lang: &str, id: i64, reach: usize) -> Vec<Reply> {
    let mut shown = message(content, call, lang, id);
    shown.buttons.clear();
    let id = id.to_string();
    let ask = Reply {
        title: None,
        text: content.message("broadcast_preview", lang, &[("id", &id), ("count", &reach.to_string())]),
        buttons: vec![
            Button { label: content.message("broadcast_button_send", lang, &[]), data: format!("k:bsend:{id}") },
            Button { label: content.message("broadcast_button_later", lang, &[]), data: format!("k:blater:{id}:24") },
            Button { label: content.message("broadcast_button_cancel", lang, &[]), data: format!("k:bcancel:{id}") },
        ],
    };
    vec![shown, ask]
}

/// Counts of a broadcast's deliveries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub blocked: i64,
    pub pending: i64,
}

/// The progress message, updated as the broadcast goes, and the final report.
pub fn progress(content: &Content, lang: &str, id: i64, status: &str, counts: &Counts, rate_per_sec: f64, now: Timestamp) -> Reply {
    let eta = if counts.pending == 0 || rate_per_sec <= 0.0 {
        "-".to_string()
    } else {
        crate::dates::format_time(now + (counts.pending as f64 / rate_per_sec).ceil() as i64)
    };
    let key = if counts.pending == 0 || status == "cancelled" { "broadcast_report" } else { "broadcast_progress" };
    let text = content.message(
        key,
        lang,
        &[
            ("id", &id.to_string()),
            ("status", status),
            ("sent", &counts.sent.to_string()),
            ("remaining", &counts.pending.to_string()),
            ("failed", &counts.failed.to_string()),
            ("blocked", &counts.blocked.to_string()),
            ("total", &counts.total.to_string()),
            ("finish", &eta),
        ],
    );
    let buttons = if counts.pending > 0 && status == "sending" {
        vec![Button { label: content.message("broadcast_button_cancel", lang, &[]), data: format!("k:bcancel:{id}") }]
    } else {
        Vec::new()
    };
    Reply { title: None, text, buttons }
}

/// A token bucket holding at most a fiftieth of a second's worth (at least one token): sends are
/// spread evenly, at most `rate` a second, so no one-second window (Telegram counts in sliding
/// windows) sees more than `rate` plus that small burst (26 at the default 25/s).
#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    pub fn new(rate: f64, now: Instant) -> Pacer {
        let rate = rate.max(0.1);
        Pacer { rate, capacity: (rate / 50.0).max(1.0), tokens: 1.0, last: now }
    }

    /// Takes a token if one is free; otherwise how long until one is.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Reads a call file; every problem is reported with its position.
pub fn parse_call(path: &str, text: &str, content: &Content) -> Result<Call, Vec<Diagnostic>> {
    let file = File::new(path, text);
    let Some(root) = file.parse() else { return Err(file.into_diagnostics()) };
    let t = Table::root(&file, &root);
    let provider = t.req_str("provider").map(|s| s.into_inner()).unwrap_or_default();
    let list = |key: &'static str, kinds: &[VocabKind], builtin: &str| -> Vec<String> {
        let Some(items) = t.str_list(key) else {
            file.error(&t.span, format!("missing required key `{key}`"));
            return Vec::new();
        };
        if items.is_empty() {
            file.error(&t.span, format!("`{key}` must name at least one"));
        }
        for item in &items {
            let id = item.get_ref();
            let known = id == builtin || content.vocab.terms.iter().any(|term| kinds.contains(&term.kind) && &term.id == id);
            if !known {
                let candidates =
                    content.vocab.terms.iter().filter(|term| kinds.contains(&term.kind)).map(|term| term.id.as_str()).chain([builtin]);
                let hint = did_you_mean(id, candidates);
                file.error(
                    &item.span(),
                    format!("`{id}` is not a {} of the vocabulary{hint}", kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(" or ")),
                );
            }
        }
        items.into_iter().map(|i| i.into_inner()).collect()
    };
    let countries = list("countries", &[VocabKind::Country, VocabKind::Region], GLOBAL);
    let sectors = list("sectors", &[VocabKind::Sector], ANY);
    let topics = match t.str_list("topics") {
        Some(items) if !items.is_empty() => {
            for item in &items {
                if !TOPICS.contains(&item.get_ref().as_str()) {
                    let hint = did_you_mean(item.get_ref(), TOPICS);
                    file.error(&item.span(), format!("unknown topic `{}`{hint}; topics are {}", item.get_ref(), TOPICS.join(", ")));
                }
            }
            items.into_iter().map(|i| i.into_inner()).collect()
        }
        _ => {
            file.error(&t.span, format!("`topics` must list at least one of {}", TOPICS.join(", ")));
            Vec::new()
        }
    };
    let deadline = t.date("deadline").map(|d| d.into_inner()).unwrap_or_default();
    let link = t.str("link").and_then(|l| {
        if l.get_ref().starts_with("https://") && !l.get_ref().contains(char::is_whitespace) {
            Some(l.into_inner())
        } else {
            file.error(&l.span(), "`link` must be an https:// address");
            None
        }
    });
    let mut texts = BTreeMap::new();
    let known = ["provider", "countries", "sectors", "topics", "deadline", "link"];
    for (lang, value) in t.entries() {
        let lang = lang.get_ref().to_string();
        if known.contains(&lang.as_str()) || !matches!(value.get_ref(), toml::de::DeValue::Table(_)) {
            continue;
        }
        let Some(lt) = Table::new(&file, value, &format!("`{lang}`")) else { continue };
        if !content.languages.iter().any(|l| l.code == lang) {
            let hint = did_you_mean(&lang, content.languages.iter().map(|l| l.code.as_str()));
            file.error(&lt.span, format!("language `{lang}` is not one of the content's{hint}"));
        }
        let field = |key: &'static str, max: usize| {
            let value = lt.req_str(key).map(|v| v.into_inner()).unwrap_or_default();
            if value.chars().count() > max {
                file.error(&lt.span, format!("`{lang}.{key}` is longer than {max} characters"));
            }
            value
        };
        let text = CallText {
            title: field("title", 120),
            offers: field("offers", 1200),
            eligible: field("eligible", 800),
            apply: field("apply", 800),
        };
        lt.finish();
        texts.insert(lang, text);
    }
    for lang in texts.keys() {
        let _ = t.get(lang);
    }
    if !texts.contains_key(DEFAULT_LANG) {
        file.error(&t.span, format!("a call needs an `[{DEFAULT_LANG}]` section with title, offers, eligible and apply"));
    }
    t.finish();
    let diags = file.into_diagnostics();
    if diags.is_empty() { Ok(Call { provider, countries, sectors, topics, deadline, link, texts }) } else { Err(diags) }
}

/// Builds a call from the answers of the agency's guided flow; a problem comes back as a sentence key and detail.
pub fn from_answers(answers: &BTreeMap<String, String>, content: &Content, lang: &str) -> Result<Call, (String, String)> {
    let get = |k: &str| answers.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let terms = |text: &str, kind: VocabKind, builtin: &str| -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for part in text.split([',', ';']).map(str::trim).filter(|p| !p.is_empty()) {
            let normal = crate::matching::normalize(part);
            if normal == builtin
                || (builtin == GLOBAL && ["all", "everywhere", "any"].contains(&normal.as_str()))
                || (builtin == ANY && normal == "all")
            {
                out.push(builtin.to_string());
                continue;
            }
            let found = content
                .index
                .resolve(kind.name(), part, lang)
                .or_else(|| if kind == VocabKind::Country { content.index.resolve(VocabKind::Region.name(), part, lang) } else { None });
            match found {
                Some(id) => out.push(id),
                None => return Err(part.to_string()),
            }
        }
        if out.is_empty() { Err(text.to_string()) } else { Ok(out) }
    };
    let countries = terms(&get("countries"), VocabKind::Country, GLOBAL).map_err(|p| ("broadcast_unknown_country".to_string(), p))?;
    let sectors = terms(&get("sectors"), VocabKind::Sector, ANY).map_err(|p| ("broadcast_unknown_sector".to_string(), p))?;
    let topic = get("topic");
    let topics = if TOPICS.contains(&topic.as_str()) { vec![topic] } else { TOPICS.iter().map(|t| t.to_string()).collect() };
    let text = CallText { title: get("title"), offers: get("offers"), eligible: get("eligible"), apply: get("apply") };
    let lang = if content.languages.iter().any(|l| l.code == lang) { lang.to_string() } else { DEFAULT_LANG.to_string() };
    let link = Some(get("link")).filter(|l| l.starts_with("https://") && !l.contains(char::is_whitespace));
    Ok(Call {
        provider: get("provider"),
        countries,
        sectors,
        topics,
        deadline: get("deadline"),
        link,
        texts: BTreeMap::from([(lang, text)]),
    })
}

/// An open call as a knowledge entry, so free questions find it until its deadline.
pub fn as_entry(content: &Content, call: &Call, id: i64) -> crate::content::Entry {
    use crate::content::{Audience, Entry, EntryText, Kind, Status};
    let kind = match call.topics.first().map(String::as_str) {
        Some("financing") => Kind::Financing,
        Some("linkages") => Kind::LinkageProgramme,
        Some("training") => Kind::EntrepreneurshipTraining,
        _ => Kind::Bds,
    };
    let needs = call
        .topics
        .iter()
        .map(|t| match t.as_str() {
            "financing" => "credit",
            "linkages" => "linkages",
            "training" => "skills",
            _ => "advice",
        })
        .filter(|n| content.vocab.term(VocabKind::Need, n).is_some())
        .map(str::to_string)
        .collect();
    let texts = call
        .texts
        .iter()
        .map(|(lang, t)| {
            let summary: String = t.offers.chars().take(crate::content::MAX_SUMMARY_CHARS - 1).collect();
            let text = EntryText {
                name: t.title.clone(),
                short: t.title.chars().take(crate::content::MAX_LABEL_CHARS).collect(),
                provider: call.provider.clone(),
                summary,
                offers: t.offers.clone(),
                eligible: t.eligible.clone(),
                approach: format!("{}\n{}", t.apply, call.link.clone().unwrap_or_default()).trim().to_string(),
                tip: None,
                business: None,
                successor: None,
                examples: Vec::new(),
            };
            (lang.clone(), text)
        })
        .collect();
    Entry {
        id: format!("call-{id}"),
        kind,
        countries: call.countries.clone(),
        sectors: call.sectors.clone(),
        needs,
        audience: Audience::Sme,
        reviewed: String::new(),
        document: content.message("call_document", DEFAULT_LANG, &[("id", &id.to_string()), ("deadline", &call.deadline)]),
        paragraphs: Vec::new(),
        annex: false,
        keywords: call.texts.values().map(|t| t.title.to_lowercase()).collect(),
        sizes: Vec::new(),
        stages: Vec::new(),
        // Open until its deadline: the agency published it through the advisor.
        status: Some(Status::Active),
        status_checked: None,
        successor: None,
        link: None,
        general: false,
        money: false,
        evidence: Vec::new(),
        texts,
        loc: Default::default(),
    }
}

/// Diagnostics as lines, for the command line.
pub fn report(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_allows_the_rate_and_no_more() {
        let start = Instant::now();
        let mut pacer = Pacer::new(25.0, start);
        let mut sent = 0;
        // Ten simulated seconds in 1 ms steps.
        for ms in 0..10_000u64 {
            let now = start + Duration::from_millis(ms);
            while pacer.take(now).is_ok() {
                sent += 1;
            }
        }
        assert!((249..=251).contains(&sent), "{sent} sends in 10 s at 25/s");
        // At 500/s a burst of ten, then the rate.
        let mut fast = Pacer::new(500.0, start);
        let later = start + Duration::from_secs(5);
        let burst = std::iter::from_fn(|| fast.take(later).ok()).count();
        assert_eq!(burst, 10);
        let mut slow = Pacer::new(2.0, start);
        assert!(slow.take(start).is_ok());
        assert!(slow.take(start).unwrap_err() > Duration::from_millis(400));
    }
}
