//! The content model: guided flows, intents and messages from `dialogs/`, vocabulary and entries from `knowledge/`.
//!
//! Content is loaded and validated as a whole by [`load`]; a `Content` value is always valid, so the
//! engine can look things up without handling broken references. Every user-facing text is a
//! [`LangText`], keyed by language code, with English as the fallback.

mod load;
pub mod provenance;
pub mod reader;

use std::collections::{BTreeMap, HashMap};

pub use load::{
    ExtraExample, SourceFile, from_sources, from_sources_with, glossary_findings, load_dirs, load_dirs_for_matching, load_dirs_with,
    read_dirs,
};
pub use reader::{Diagnostic, Loc};

use crate::matching::{self, Concept, Doc, Document, Field, Index, Lexicon};

/// The language every text must exist in; other languages fall back to it.
pub const DEFAULT_LANG: &str = "en";

/// A text in several languages.
pub type LangText = BTreeMap<String, String>;

/// The longest text Telegram accepts in one message.
pub const MAX_TEXT_CHARS: usize = 4096;
/// The longest button label that still reads well on a narrow phone screen.
pub const MAX_LABEL_CHARS: usize = 32;
/// Telegram's limit for callback data.
pub const MAX_BUTTON_DATA_BYTES: usize = 64;
/// The longest summary on a knowledge card.
pub const MAX_SUMMARY_CHARS: usize = 300;

/// Messages the engine itself needs, with the placeholders each may use.
pub const REQUIRED_MESSAGES: &[(&str, &[&str])] = &[
    ("fallback", &[]),
    ("did_you_mean", &[]),
    ("choose_line", &["name", "provider", "summary"]),
    ("choose_line_intent", &["label"]),
    ("lead_provider", &["provider"]),
    ("lead_approach", &["approach"]),
    ("desk_explain", &["explanation"]),
    ("menu_changed", &[]),
    ("unknown_command", &["command"]),
    ("unsupported_input", &[]),
    ("empty_input", &[]),
    ("cancelled", &[]),
    ("why_fits", &["matches"]),
    ("source_line", &["document", "place", "reviewed"]),
    ("source_paragraphs", &["paragraphs"]),
    ("source_annex", &[]),
    ("general_source_line", &["reviewed"]),
    ("financing_disclaimer", &[]),
    ("status_not_checked", &[]),
    ("status_active", &["checked"]),
    ("status_unknown", &["checked"]),
    ("status_ended", &["checked"]),
    ("status_ended_unchecked", &[]),
    ("status_successor", &["successor"]),
    ("label_agency", &[]),
    ("label_general", &[]),
    ("business_line", &["business"]),
    ("details_tip", &[]),
    ("button_link", &[]),
    ("why_global", &[]),
    ("why_fits_global", &["matches"]),
    ("recommend_intro", &["profile"]),
    ("recommend_intro_global", &["profile"]),
    ("recommend_intro_anywhere", &["profile"]),
    ("recommend_none", &["profile"]),
    ("recommend_end", &[]),
    ("details_offers", &[]),
    ("details_eligible", &[]),
    ("details_approach", &[]),
    ("provider_line", &["provider"]),
    ("not_set", &[]),
    ("anywhere", &[]),
    ("handoff_sent", &[]),
    ("handoff_empty", &[]),
    ("language_choose", &[]),
    ("language_set", &["language"]),
    ("forgotten", &[]),
    ("subscribed", &["topics"]),
    ("unsubscribed", &[]),
    ("button_back", &[]),
    ("button_menu", &[]),
    ("button_details", &[]),
    ("button_more", &[]),
    ("button_human", &[]),
    ("button_none", &[]),
    ("terminal_hint", &[]),
    ("button_open_bot", &[]),
    ("call_message", &["provider", "offers", "eligible", "deadline", "apply"]),
    ("call_link", &["link"]),
    ("desk_reloaded", &["entries"]),
    ("desk_reload_failed", &["count", "problems"]),
    ("call_source_line", &["document"]),
    ("call_document", &["id", "deadline"]),
    ("call_button_save", &[]),
    ("call_button_unsubscribe", &[]),
    ("call_saved", &[]),
    ("call_reminder", &["title", "deadline"]),
    ("topic_financing", &[]),
    ("topic_services", &[]),
    ("topic_linkages", &[]),
    ("topic_training", &[]),
    ("broadcast_preview", &["id", "count"]),
    ("broadcast_button_send", &[]),
    ("broadcast_button_later", &[]),
    ("broadcast_button_cancel", &[]),
    ("broadcast_scheduled", &["id", "when"]),
    ("broadcast_cancelled", &["id"]),
    ("broadcast_not_found", &["id"]),
    ("broadcast_not_draft", &["id", "status"]),
    ("broadcast_unknown_country", &["value"]),
    ("broadcast_unknown_sector", &["value"]),
    ("broadcast_progress", &["id", "status", "sent", "remaining", "failed", "blocked", "total", "finish"]),
    ("broadcast_report", &["id", "status", "sent", "remaining", "failed", "blocked", "total", "finish"]),
    ("desk_forbidden", &[]),
    ("desk_usage_inquiry", &[]),
    ("desk_usage_resolve", &[]),
    ("desk_usage_learn", &[]),
    ("desk_usage_period", &[]),
    ("desk_usage_grant", &[]),
    ("desk_usage_revoke", &[]),
    ("desk_not_found", &["id"]),
    ("desk_quarantine", &["count"]),
    ("turn_failed", &[]),
    ("desk_inbox_empty", &[]),
    ("desk_inbox_title", &["count"]),
    ("desk_inbox_line", &["id", "when", "kind", "status", "text"]),
    ("desk_inquiry", &["id", "when", "user", "lang", "kind", "status", "matched", "confidence", "country", "sector", "taken", "text"]),
    ("desk_history_line", &["when", "actor", "kind", "text"]),
    ("desk_resolved", &["id"]),
    ("desk_taken", &["id", "by"]),
    ("desk_learned", &["entry", "text"]),
    ("desk_learn_refused", &["problem"]),
    (
        "desk_stats",
        &["period", "total", "questions", "answered", "handoffs", "recommendations", "topics", "unanswered", "countries", "languages"],
    ),
    ("desk_export_caption", &["count"]),
    ("desk_chart_caption", &["period"]),
    ("desk_chart_per_day", &[]),
    ("desk_chart_answered", &[]),
    ("desk_export_empty", &[]),
    ("desk_granted", &["user", "role"]),
    ("desk_revoked", &["user", "role"]),
    ("desk_unchanged", &[]),
    ("desk_roles_title", &[]),
    ("desk_role_line", &["user", "role", "by"]),
    ("desk_handoff_post", &["id", "user", "lang", "profile", "recent", "text"]),
    ("desk_staff_reply", &["text"]),
    ("desk_user_reply", &["user", "text"]),
    ("desk_relayed", &[]),
    ("desk_user_resolved", &[]),
    ("desk_button_resolve", &[]),
    ("desk_button_take", &[]),
    ("desk_button_next", &[]),
    ("desk_button_previous", &[]),
    ("desk_button_learn", &["entry"]),
    // The web desk (src/web/), texts in dialogs/web.toml.
    ("web_title", &[]),
    ("web_nav_inbox", &[]),
    ("web_nav_stats", &[]),
    ("web_nav_export", &[]),
    ("web_nav_knowledge", &[]),
    ("web_nav_broadcasts", &[]),
    ("web_nav_roles", &[]),
    ("web_sign_out", &[]),
    ("web_signed_in_as", &["user"]),
    ("web_signed_in", &[]),
    ("web_continue", &[]),
    ("web_signed_out_title", &[]),
    ("web_signed_out", &[]),
    ("web_signed_out_done", &[]),
    ("web_login_used", &[]),
    ("web_login_expired", &[]),
    ("web_login_unknown", &[]),
    ("web_login_no_role", &[]),
    ("web_problem_title", &[]),
    ("web_forbidden", &[]),
    ("web_csrf_refused", &[]),
    ("web_not_found", &[]),
    ("web_error", &[]),
    ("web_inbox_title", &[]),
    ("web_inbox_count", &["count"]),
    ("web_inbox_empty", &[]),
    ("web_filter_search", &[]),
    ("web_filter_period", &[]),
    ("web_filter_status", &[]),
    ("web_filter_kind", &[]),
    ("web_filter_lang", &[]),
    ("web_filter_country", &[]),
    ("web_filter_open", &[]),
    ("web_filter_any", &[]),
    ("web_filter_apply", &[]),
    ("web_bad_filter", &["problem"]),
    ("web_pager", &[]),
    ("web_page_previous", &[]),
    ("web_page_next", &[]),
    ("web_page_of", &["page", "pages"]),
    ("web_inquiry_title", &["id"]),
    ("web_field_when", &[]),
    ("web_field_user", &[]),
    ("web_field_lang", &[]),
    ("web_field_kind", &[]),
    ("web_field_status", &[]),
    ("web_field_matched", &[]),
    ("web_field_confidence", &[]),
    ("web_field_topic", &[]),
    ("web_field_country", &[]),
    ("web_field_sector", &[]),
    ("web_field_taken", &[]),
    ("web_history_title", &[]),
    ("web_history_empty", &[]),
    ("web_explain_title", &[]),
    ("web_back_to_inbox", &[]),
    ("web_stats_title", &[]),
    ("web_stats_summary", &["period", "total", "questions", "answered", "handoffs", "recommendations"]),
    ("web_stats_none", &[]),
    ("web_chart_per_day", &[]),
    ("web_chart_answered", &[]),
    ("web_chart_topics", &[]),
    ("web_chart_unanswered", &[]),
    ("web_chart_empty", &[]),
    ("web_chart_countries", &[]),
    ("web_chart_languages", &[]),
    ("web_knowledge_title", &[]),
    ("web_knowledge_count", &["count"]),
    ("web_col_entry", &[]),
    ("web_col_provider", &[]),
    ("web_col_status", &[]),
    ("web_col_status_checked", &[]),
    ("web_col_reviewed", &[]),
    ("web_never", &[]),
    ("web_broadcasts_title", &[]),
    ("web_broadcasts_empty", &[]),
    ("web_broadcast_title", &["id"]),
    ("web_broadcast_progress", &["status", "sent", "pending", "failed", "blocked", "total"]),
    ("web_broadcast_preview", &[]),
    ("web_back_to_broadcasts", &[]),
    ("web_roles_title", &[]),
    ("web_col_user", &[]),
    ("web_col_role", &[]),
    ("web_col_granted_by", &[]),
    ("web_actions_title", &[]),
    ("web_reply_label", &[]),
    ("web_reply_send", &[]),
    ("web_reply_invalid", &["max"]),
    ("web_reply_sent", &[]),
    ("web_resolve", &[]),
    ("web_learn", &["entry"]),
    ("web_learn_any_label", &[]),
    ("web_learn_any_submit", &[]),
    ("web_roles_change", &[]),
    ("web_roles_action", &[]),
    ("web_roles_grant", &[]),
    ("web_roles_revoke", &[]),
    ("web_roles_apply", &[]),
    ("web_roles_invalid", &[]),
    ("web_broadcast_new", &[]),
    ("web_call_provider", &[]),
    ("web_call_countries", &[]),
    ("web_call_sectors", &[]),
    ("web_call_topics", &[]),
    ("web_call_deadline", &[]),
    ("web_call_link", &[]),
    ("web_call_lang_section", &["lang"]),
    ("web_call_title", &[]),
    ("web_call_offers", &[]),
    ("web_call_eligible", &[]),
    ("web_call_apply", &[]),
    ("web_call_create", &[]),
    ("web_call_problems", &[]),
    ("web_broadcast_audience", &["count"]),
    ("web_broadcast_send_at", &["when"]),
    ("web_broadcast_live", &[]),
    ("web_broadcast_test", &[]),
    ("web_broadcast_test_sent", &[]),
    ("web_broadcast_when", &["zone"]),
    ("web_broadcast_send", &[]),
    ("web_broadcast_cancel", &[]),
];

/// Everything the engine needs, validated.
#[derive(Debug)]
pub struct Content {
    pub languages: Vec<Language>,
    pub messages: HashMap<String, LangText>,
    pub commands: BTreeMap<String, CommandDef>,
    pub flows: BTreeMap<String, Flow>,
    pub intents: Vec<Intent>,
    pub vocab: Vocabulary,
    pub entries: Vec<Entry>,
    /// Official domains a `link` may point to (`knowledge/links.toml`), with when each was checked.
    pub links: Vec<LinkDomain>,
    /// Fixed translations of recurring terms (`knowledge/glossary.toml`).
    pub glossary: Vec<GlossaryTerm>,
    pub index: Index,
}

/// An official domain that entry links may use, and when a person last checked it.
#[derive(Clone, Debug)]
pub struct LinkDomain {
    pub domain: String,
    pub organisation: String,
    pub checked: String,
    pub loc: Loc,
}

impl LinkDomain {
    /// Whether an address's host is this domain or one of its subdomains.
    pub fn covers(&self, host: &str) -> bool {
        host == self.domain || host.strip_suffix(&self.domain).is_some_and(|rest| rest.ends_with('.'))
    }
}

/// The host of an `https://` address, lowercased; `None` when the address is not a plain https one
/// (another scheme, user information, no host).
pub fn link_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.contains('.')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !url.chars().any(char::is_whitespace);
    ok.then_some(host)
}

/// One recurring term and how each language must render it.
#[derive(Clone, Debug)]
pub struct GlossaryTerm {
    pub id: String,
    /// The rendering per language.
    pub text: LangText,
    /// Renderings that must not be used, per language.
    pub avoid: BTreeMap<String, Vec<String>>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Language {
    pub code: String,
    pub name: String,
    /// Other language codes whose speakers get this language (`ht` → `fr`).
    pub also: Vec<String>,
}

/// A slash command and where it leads.
#[derive(Clone, Debug)]
pub struct CommandDef {
    pub name: String,
    pub goto: Target,
    pub description: LangText,
    /// The role needed to use it; `None` for everyone.
    pub role: Option<String>,
}

/// A place a button, command or step leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub flow: String,
    pub step: String,
}

#[derive(Clone, Debug)]
pub struct Flow {
    pub id: String,
    pub steps: Vec<Step>,
    pub loc: Loc,
}

impl Flow {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// One step of a guided flow. It may say something, wait for an answer, branch and end in an action.
#[derive(Clone, Debug)]
pub struct Step {
    pub id: String,
    pub say: Option<LangText>,
    /// Slots set when the step is entered.
    pub set: Vec<(String, String)>,
    pub ask: Option<Ask>,
    /// Buttons built from a vocabulary (countries, sectors, ...), answering `ask`.
    pub choices: Option<VocabKind>,
    pub buttons: Vec<ButtonDef>,
    pub branch: Vec<Branch>,
    pub next: Option<Target>,
    pub action: Option<Action>,
    /// Skip the step when its slot already has a value (profile reuse).
    pub skip_if_known: bool,
    pub loc: Loc,
}

impl Step {
    /// Whether the step stops and waits for the user.
    pub fn waits(&self) -> bool {
        self.ask.is_some() || self.choices.is_some() || !self.buttons.is_empty()
    }
}

/// A free-text answer captured into a slot.
#[derive(Clone, Debug)]
pub struct Ask {
    pub slot: String,
    pub expect: Expect,
    pub retry: LangText,
}

#[derive(Clone, Debug)]
pub enum Expect {
    /// A term of the vocabulary, typed or pressed.
    Term(VocabKind),
    /// Any text of at most this many characters.
    Text { max_chars: usize },
    /// Text matching a regular expression.
    Pattern(regex::Regex),
}

#[derive(Clone, Debug)]
pub struct ButtonDef {
    pub id: String,
    pub label: LangText,
    pub goto: Option<Target>,
    pub set: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct Branch {
    pub slot: String,
    pub is: String,
    pub goto: Target,
}

/// What a step ends in.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Recommend entries for the profile, preferring a need and a kind.
    Recommend { need: Option<String>, kind: Option<Kind> },
    /// Show one knowledge entry.
    Show { entry: String },
    /// Answer the text in a slot as a free question.
    Search { slot: String },
    /// Pass the text in a slot (or the last question) to a human advisor.
    Handoff { slot: Option<String> },
    /// Offer the languages.
    Language,
    /// Delete everything stored about the user.
    Forget,
    /// Subscribe to or stop programme calls.
    Subscribe { active: bool },
    /// Stop the current flow and forget its answers (the profile stays).
    Cancel,
    /// Go back to the previous question.
    Back,
    /// Hand the flow's answers to the shell as a draft programme call (agency flows).
    BroadcastDraft,
}

/// A free-text intent: regex rules and keywords that lead somewhere.
#[derive(Clone, Debug)]
pub struct Intent {
    pub id: String,
    pub patterns: Vec<regex::Regex>,
    pub keywords: BTreeMap<String, Vec<String>>,
    pub examples: BTreeMap<String, Vec<(Loc, String)>>,
    pub goto: Option<Target>,
    pub reply: Option<LangText>,
    /// The button text when the intent is offered as a suggestion.
    pub label: LangText,
    pub loc: Loc,
}

impl Intent {
    /// Small talk: a fixed reply ("you're welcome") or the main menu (a greeting). Such an answer
    /// names no programme, so `eval` counts it as declining an out-of-domain question.
    pub fn is_small_talk(&self) -> bool {
        self.reply.is_some() || self.goto.as_ref().is_some_and(|t| t.flow == "menu")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VocabKind {
    Region,
    Country,
    Sector,
    Need,
    Size,
    Stage,
}

impl VocabKind {
    pub const ALL: [VocabKind; 6] =
        [VocabKind::Region, VocabKind::Country, VocabKind::Sector, VocabKind::Need, VocabKind::Size, VocabKind::Stage];

    pub fn name(self) -> &'static str {
        match self {
            VocabKind::Region => "region",
            VocabKind::Country => "country",
            VocabKind::Sector => "sector",
            VocabKind::Need => "need",
            VocabKind::Size => "size",
            VocabKind::Stage => "stage",
        }
    }

    pub fn parse(name: &str) -> Option<VocabKind> {
        VocabKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A defined term: a country, sector, need, ...
#[derive(Clone, Debug)]
pub struct Term {
    pub id: String,
    pub kind: VocabKind,
    pub name: LangText,
    pub synonyms: BTreeMap<String, Vec<String>>,
    pub region: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Vocabulary {
    pub terms: Vec<Term>,
    /// Groups of interchangeable words, per language.
    pub synonyms: BTreeMap<String, Vec<Vec<String>>>,
    pub stopwords: BTreeMap<String, Vec<String>>,
    /// Cue phrases of the question types (`knowledge/cues.toml`): (language, kind, phrase).
    pub cues: Vec<(String, matching::Cue, String)>,
}

impl Vocabulary {
    pub fn term(&self, kind: VocabKind, id: &str) -> Option<&Term> {
        self.terms.iter().find(|t| t.kind == kind && t.id == id)
    }

    pub fn of_kind(&self, kind: VocabKind) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(move |t| t.kind == kind)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Bds,
    Financing,
    LinkageProgramme,
    EntrepreneurshipTraining,
    Agency,
    PolicyGuidance,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::Bds, Kind::Financing, Kind::LinkageProgramme, Kind::EntrepreneurshipTraining, Kind::Agency, Kind::PolicyGuidance];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Bds => "bds",
            Kind::Financing => "financing",
            Kind::LinkageProgramme => "linkage_programme",
            Kind::EntrepreneurshipTraining => "entrepreneurship_training",
            Kind::Agency => "agency",
            Kind::PolicyGuidance => "policy_guidance",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Whether a programme is still running, as far as the content's maintainers know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Ended,
    Unknown,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Active, Status::Ended, Status::Unknown];

    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Ended => "ended",
            Status::Unknown => "unknown",
        }
    }

    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A verbatim span of the report that an entry rests on: from a numbered paragraph or the annex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The paragraph it comes from; `None` for the annex.
    pub paragraph: Option<i64>,
    pub quote: String,
    pub loc: Loc,
}

/// Whom an entry is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Sme,
    Agency,
}

/// One programme, service, financing channel or piece of guidance.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    pub kind: Kind,
    pub countries: Vec<String>,
    pub sectors: Vec<String>,
    pub needs: Vec<String>,
    pub audience: Audience,
    pub reviewed: String,
    pub document: String,
    pub paragraphs: Vec<i64>,
    /// Facts come from the report's annex (the list of participants).
    pub annex: bool,
    pub keywords: Vec<String>,
    /// Firm sizes (vocabulary ids) it suits; empty for every size.
    pub sizes: Vec<String>,
    /// Stages (vocabulary ids) it suits; empty for every stage.
    pub stages: Vec<String>,
    /// Whether it still runs; `None` only while the content has not stated it.
    pub status: Option<Status>,
    /// When the status was last checked (`2026-12-06`); `None`: never checked.
    pub status_checked: Option<String>,
    /// The entry that replaced an ended one.
    pub successor: Option<String>,
    /// An official address (its domain is in `knowledge/links.toml`).
    pub link: Option<String>,
    /// General guidance, not from the report.
    pub general: bool,
    /// Talks about money even though it is not a financing entry.
    pub money: bool,
    pub evidence: Vec<Evidence>,
    pub texts: BTreeMap<String, EntryText>,
    pub loc: Loc,
}

impl Entry {
    /// A programme call published through the advisor (not a file of the knowledge base).
    pub fn is_call(&self) -> bool {
        self.reviewed.is_empty()
    }

    /// Advice rather than a programme or an organisation, so there is no status to check: general
    /// guidance, the report's policy guidance, and guides marked `status = "active"` with no
    /// `status_checked` (the content's convention for standing advice). An ended one is no guide.
    pub fn is_guide(&self) -> bool {
        self.status != Some(Status::Ended)
            && (self.general || self.kind == Kind::PolicyGuidance || self.status == Some(Status::Active) && self.status_checked.is_none())
    }

    /// Whether an ended entry names what replaced it (an entry, or a sentence in its texts).
    pub fn has_successor(&self) -> bool {
        self.successor.is_some() || self.texts.values().any(|t| t.successor.is_some())
    }

    /// Whether the card talks about money and so carries the money-safety note: financing entries,
    /// entries that serve the credit need, and entries marked `money = true`.
    pub fn talks_money(&self) -> bool {
        self.kind == Kind::Financing || self.needs.iter().any(|n| n == "credit") || self.money
    }
}

#[derive(Clone, Debug)]
pub struct EntryText {
    pub name: String,
    pub short: String,
    pub provider: String,
    pub summary: String,
    pub offers: String,
    pub eligible: String,
    pub approach: String,
    /// The advisor's own practical advice, not from the report.
    pub tip: Option<String>,
    /// For entries meant for agencies: what it means for a business.
    pub business: Option<String>,
    /// A sentence naming what replaced an ended programme.
    pub successor: Option<String>,
    pub examples: Vec<(Loc, String)>,
}

/// The built-in country id that means "anywhere".
pub const GLOBAL: &str = "global";
/// The built-in sector id that means "any sector".
pub const ANY: &str = "any";

impl Content {
    /// The content language for a user's own language tag (Telegram's `language_code`, `--lang`):
    /// regional variants map to their language (`pt-BR` → `pt`, `fr-CA` → `fr`, `es-419` → `es`),
    /// a language's `also` codes map to it, and anything else gets the default language.
    pub fn language_for(&self, tag: Option<&str>) -> String {
        let primary = tag.unwrap_or(DEFAULT_LANG).split(['-', '_']).next().unwrap_or_default().trim().to_ascii_lowercase();
        self.languages
            .iter()
            .find(|l| l.code == primary)
            .or_else(|| self.languages.iter().find(|l| l.also.contains(&primary)))
            .map_or_else(|| DEFAULT_LANG.to_string(), |l| l.code.clone())
    }

    /// A text in the wanted language, else in English.
    pub fn pick<'a>(&self, text: &'a LangText, lang: &str) -> &'a str {
        text.get(lang).or_else(|| text.get(DEFAULT_LANG)).map(String::as_str).unwrap_or("")
    }

    /// An engine message in the wanted language with `{name}` placeholders filled in.
    pub fn message(&self, key: &str, lang: &str, params: &[(&str, &str)]) -> String {
        let text = self.messages.get(key).map(|t| self.pick(t, lang)).unwrap_or(key);
        fill(text, |name| params.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    pub fn flow(&self, id: &str) -> Option<&Flow> {
        self.flows.get(id)
    }

    pub fn step(&self, target: &Target) -> Option<&Step> {
        self.flows.get(&target.flow)?.step(&target.step)
    }

    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub fn entry_text<'a>(&self, entry: &'a Entry, lang: &str) -> &'a EntryText {
        entry.texts.get(lang).or_else(|| entry.texts.get(DEFAULT_LANG)).expect("validated: every entry has English text")
    }

    /// The same content with more entries (open programme calls), the index rebuilt.
    pub fn with_entries(&self, extra: Vec<Entry>) -> Content {
        let mut entries = self.entries.clone();
        entries.extend(extra);
        let index = build_index(&self.languages, &self.vocab, &entries, &self.intents);
        Content {
            languages: self.languages.clone(),
            messages: self.messages.clone(),
            commands: self.commands.clone(),
            flows: self.flows.clone(),
            intents: self.intents.clone(),
            vocab: self.vocab.clone(),
            entries,
            links: self.links.clone(),
            glossary: self.glossary.clone(),
            index,
        }
    }

    /// Whether a flow is reached only through a command that needs a role. The staff commands that
    /// merely open the menu do not make the menu such a flow (the same rule as the loader's check).
    pub fn restricted(&self, flow: &str) -> bool {
        flow != "menu" && self.commands.values().any(|c| c.role.is_some() && c.goto.flow == flow)
    }

    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }

    /// The display name of a term in a language, or the id when unknown.
    pub fn term_name(&self, kind: VocabKind, id: &str, lang: &str) -> String {
        match self.vocab.term(kind, id) {
            Some(term) => self.pick(&term.name, lang).to_string(),
            None => id.to_string(),
        }
    }
}

/// Days since 1970-01-01 of a date written `2026-12-06`; `None` when it is not such a date.
pub fn date_days(date: &str) -> Option<i64> {
    let mut parts = date.trim().splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Entries whose status was last checked more than `days` days before `today` (days since 1970),
/// or never, with the age of the check in days; never-checked ones first, then oldest first. Guides
/// ([`Entry::is_guide`]) have no status to check and are left out.
pub fn stale_entries(content: &Content, today: i64, days: i64) -> Vec<(&Entry, Option<i64>)> {
    let mut list: Vec<(&Entry, Option<i64>)> = content
        .entries
        .iter()
        .filter(|e| !e.is_call() && !e.is_guide())
        .map(|e| (e, e.status_checked.as_deref().and_then(date_days).map(|d| today - d)))
        .filter(|(_, age)| age.is_none_or(|a| a > days))
        .collect();
    list.sort_by(|a, b| b.1.unwrap_or(i64::MAX).cmp(&a.1.unwrap_or(i64::MAX)).then_with(|| a.0.id.cmp(&b.0.id)));
    list
}

/// Replaces `{name}` placeholders using `value`; unknown names stay as written.
pub fn fill(text: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_placeholder(&after[..close]) => {
                let name = &after[..close];
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_placeholder(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The placeholder names used in a text.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_placeholder(&after[..close]) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

/// The entry about the source of the advice (the report and the expert meeting): questions about
/// the report or the meeting are lifted towards it.
pub const SOURCE_ENTRY: &str = "about-the-report";

/// The matcher's view of the content: the languages with their stopwords, the vocabulary's
/// concepts, and one document per entry and intent with its fields.
pub fn build_index(languages: &[Language], vocab: &Vocabulary, entries: &[Entry], intents: &[Intent]) -> Index {
    let stop = |code: &str| vocab.stopwords.get(code).cloned().unwrap_or_default();
    let mut lexicon = Lexicon {
        languages: languages.iter().map(|l| (l.code.clone(), stop(&l.code))).collect(),
        concepts: Vec::new(),
        cues: vocab.cues.clone(),
    };
    for term in &vocab.terms {
        let context = !matches!(term.kind, VocabKind::Need);
        let place = matches!(term.kind, VocabKind::Country | VocabKind::Region);
        let concept = format!("{}:{}", term.kind.name(), term.id);
        let parent = term.region.as_ref().map(|r| format!("region:{r}"));
        let names: Vec<(Option<String>, String)> = term.name.iter().map(|(l, n)| (Some(l.clone()), n.clone())).collect();
        let mut synonyms: Vec<(Option<String>, String)> = Vec::new();
        for (l, words) in &term.synonyms {
            synonyms.extend(words.iter().map(|w| (Some(l.clone()), w.clone())));
        }
        // Places: names are proper names a typo may reach; their synonyms (cities, demonyms) only
        // match as typed.
        let (first, second) = if place { (names, synonyms) } else { ([names, synonyms].concat(), Vec::new()) };
        lexicon.concepts.push(Concept {
            term: concept.clone(),
            context,
            parent: parent.clone(),
            phrases: first,
            proper: place,
            correct_to: true,
        });
        if !second.is_empty() {
            lexicon.concepts.push(Concept { term: concept, context, parent, phrases: second, proper: true, correct_to: false });
        }
    }
    for (lang, groups) in &vocab.synonyms {
        for group in groups {
            let Some(first) = group.first() else { continue };
            lexicon.concepts.push(Concept {
                term: format!("syn:{}", matching::normalize(first)),
                context: false,
                parent: None,
                phrases: group.iter().map(|w| (Some(lang.clone()), w.clone())).collect(),
                proper: false,
                correct_to: true,
            });
        }
    }
    let mut documents = Vec::with_capacity(entries.len() + intents.len());
    for (i, entry) in entries.iter().enumerate() {
        let mut texts = Vec::new();
        let mut shorts: Vec<String> = Vec::new();
        for k in &entry.keywords {
            texts.push((Field::Keywords, None, k.clone()));
        }
        for (lang, t) in &entry.texts {
            let l = Some(lang.clone());
            texts.push((Field::Name, l.clone(), format!("{} . {}", t.name, t.short)));
            shorts.push(t.short.clone());
            texts.push((Field::Provider, l.clone(), t.provider.clone()));
            texts.push((Field::Summary, l.clone(), t.summary.clone()));
            texts.push((Field::Offers, l.clone(), t.offers.clone()));
            texts.push((Field::Eligible, l.clone(), t.eligible.clone()));
            texts.push((Field::Approach, l.clone(), t.approach.clone()));
            texts.extend(t.examples.iter().map(|(_, e)| (Field::Examples, l.clone(), e.clone())));
        }
        let concepts = entry
            .countries
            .iter()
            .filter(|c| c.as_str() != GLOBAL)
            .map(|c| if vocab.term(VocabKind::Country, c).is_some() { format!("country:{c}") } else { format!("region:{c}") })
            .chain(entry.sectors.iter().filter(|s| s.as_str() != ANY).map(|s| format!("sector:{s}")))
            .chain(entry.needs.iter().map(|n| format!("need:{n}")))
            .collect();
        documents.push(Document {
            doc: Doc::Entry(i),
            name: format!("entry:{}", entry.id),
            texts,
            concepts,
            patterns: Vec::new(),
            source: entry.id == SOURCE_ENTRY,
            general: entry.general,
            shorts,
        });
    }
    for (i, intent) in intents.iter().enumerate() {
        let mut texts = Vec::new();
        for (lang, words) in &intent.keywords {
            texts.extend(words.iter().map(|w| (Field::Keywords, Some(lang.clone()), w.clone())));
        }
        for (lang, examples) in &intent.examples {
            texts.extend(examples.iter().map(|(_, e)| (Field::Examples, Some(lang.clone()), e.clone())));
        }
        documents.push(Document {
            doc: Doc::Intent(i),
            name: format!("intent:{}", intent.id),
            texts,
            concepts: Vec::new(),
            patterns: intent.patterns.clone(),
            source: false,
            general: false,
            shorts: Vec::new(),
        });
    }
    Index::build(&lexicon, documents)
}
