//! Loading and checking content: files in, a valid `Content` or every diagnostic out.
//!
//! Reading the folders is the only I/O here ([`read_dirs`]); [`from_sources`] is pure, so tests and
//! benchmarks can load generated content. `check`, start-up and the tests all go through it.
//!
//! # Dialog files (`dialogs/*.toml`)
//!
//! ```toml
//! [language.en]
//! name = "English"
//!
//! [message.fallback]            # texts the engine needs, per language
//! en = "Sorry, I don't know that yet."
//!
//! [command.menu]                # a slash command and where it leads
//! goto = "menu"
//! description.en = "Main menu"
//!
//! [flow.financing.country]      # flow `financing`, step `country`; the first step starts the flow
//! say.en = "Which country is your business in?"
//! ask = "country"               # capture a typed answer into a slot; country/sector/size/stage/need fill the profile
//! expect = "country"            # a vocabulary kind, "text" or "pattern" (with `pattern = "regex"`)
//! retry.en = "I don't know that country. Try its English name."
//! skip_if_known = true          # skip when the profile already has it
//! choices = "sector"            # buttons from the vocabulary that answer the slot of the same name
//! buttons = [{ id = "yes", label.en = "Yes", goto = "next_step", set = { slot = "value" } }]
//! branch = [{ slot = "need", is = "credit", goto = "credit_step" }]
//! next = "other_flow.step"      # a step of this flow, a flow, or flow.step; default: the step written next
//! action = "recommend"          # recommend | show | search | handoff | language | forget | subscribe | unsubscribe | cancel | back | broadcast_draft
//!
//! [intent.greeting]             # free text that leads somewhere
//! patterns = ['^(hi|hello)\b']  # regexes on normalised text (lowercase, no accents or punctuation)
//! keywords.en = ["hello"]
//! examples.en = ["hello there"] # must be matched to this intent: checked on every load
//! goto = "start"                # or reply.en = "..."
//! label.en = "Main menu"        # the button when the intent is offered in a "did you mean"
//! ```
//!
//! Every text exists in every language of `[language.*]`: `check` reports each one missing.
//!
//! # Knowledge files
//!
//! `knowledge/vocabulary.toml` defines `[region.*]`, `[country.*]` (with `region`), `[sector.*]`,
//! `[need.*]`, `[size.*]`, `[stage.*]`, each with `name.<lang>` and optional `synonyms.<lang>`, plus
//! `[synonyms]` (groups of interchangeable words per language) and `[stopwords]`.
//! `knowledge/links.toml` lists the official domains entry links may use (`[[link]]` with `domain`,
//! `organisation`, `checked`); without it no entry may carry a link. `knowledge/glossary.toml` fixes
//! the rendering of recurring terms per language (`[term.<id>]` with `en`, `fr`, ... and
//! `avoid.<lang>`); see [`glossary_findings`].
//! `knowledge/cues.toml` (optional) lists the cue phrases of question types per language:
//! `[provider]`, `[approach]`, `[personal]`, `[outside]`, `[source]`, `[domain]`, `[business]`,
//! `[private]`, `[you]`, `[transact]`, `[between]`, `[greeting]`, each with
//! `<lang> = ["phrase", ...]` (see [`crate::matching::Cue`]); every kind it has needs every
//! language, and a phrase may appear once per language (`[you]` and `[transact]` apart from the
//! others); `[transact]` and `[between]` list single words.
//! Every other `knowledge/**/*.toml` holds one entry; the README's "Content files" shows every key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use toml::Spanned;

use super::reader::{File, Table, did_you_mean};
use super::*;
use crate::matching::{Asker, Match};

/// The longest evidence quote, in words (the format asks for "about 30").
pub const MAX_QUOTE_WORDS: usize = 40;

/// One content file's path (as shown in diagnostics) and text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// Reads `dialogs/*.toml` and `knowledge/**/*.toml`, sorted by path.
pub fn read_dirs(dialogs: &Path, knowledge: &Path) -> Result<Vec<SourceFile>, Vec<Diagnostic>> {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for dir in [dialogs, knowledge] {
        collect(dir, &mut files, &mut diags);
    }
    if diags.is_empty() { Ok(files) } else { Err(diags) }
}

fn collect(dir: &Path, files: &mut Vec<SourceFile>, diags: &mut Vec<Diagnostic>) {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) => {
            let loc = Loc { path: dir.display().to_string(), line: 1, col: 1 };
            diags.push(Diagnostic { loc, message: format!("cannot read the folder: {e}") });
            return;
        }
    };
    let mut paths: Vec<_> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect(&path, files, diags);
        } else if path.extension().is_some_and(|e| e == "toml") {
            match std::fs::read_to_string(&path) {
                Ok(text) => files.push(SourceFile { path: path.display().to_string(), text }),
                Err(e) => {
                    let loc = Loc { path: path.display().to_string(), line: 1, col: 1 };
                    diags.push(Diagnostic { loc, message: format!("cannot read the file: {e}") });
                }
            }
        }
    }
}

/// An example question kept outside the files (staff attach them from the inquiry log); it is
/// checked like the examples in the files. Diagnostics point at `database:learned_examples:<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraExample {
    pub id: i64,
    pub entry_id: String,
    pub lang: String,
    pub text: String,
}

/// Reads and loads the content folders.
pub fn load_dirs(dialogs: &Path, knowledge: &Path) -> Result<Content, Vec<Diagnostic>> {
    load_dirs_with(dialogs, knowledge, &[])
}

/// Reads and loads the content folders with extra examples.
pub fn load_dirs_with(dialogs: &Path, knowledge: &Path, extras: &[ExtraExample]) -> Result<Content, Vec<Diagnostic>> {
    let files = read_dirs(dialogs, knowledge)?;
    let dialogs_prefix = dialogs.display().to_string();
    from_sources_with(&files, |path| path.starts_with(&dialogs_prefix), extras)
}

/// Reads and loads the content folders even when some example questions do not reach their own
/// entry or intent, returning those problems beside the content: `explain` and `eval` diagnose
/// matching with it. Every other problem still fails the load.
pub fn load_dirs_for_matching(dialogs: &Path, knowledge: &Path) -> Result<(Content, Vec<Diagnostic>), Vec<Diagnostic>> {
    let files = read_dirs(dialogs, knowledge)?;
    let dialogs_prefix = dialogs.display().to_string();
    let mut b = Builder { skip_self_test: true, ..Builder::default() };
    b.read(&files, |path| path.starts_with(&dialogs_prefix));
    let content = b.finish()?;
    let diags = self_test(&content);
    Ok((content, diags))
}

/// Builds content from files; `is_dialog` tells dialog files from knowledge files.
/// A knowledge file named `vocabulary.toml` is the vocabulary; every other one is an entry.
pub fn from_sources(files: &[SourceFile], is_dialog: impl Fn(&str) -> bool) -> Result<Content, Vec<Diagnostic>> {
    from_sources_with(files, is_dialog, &[])
}

/// [`from_sources`] with extra example questions for entries.
pub fn from_sources_with(
    files: &[SourceFile],
    is_dialog: impl Fn(&str) -> bool,
    extras: &[ExtraExample],
) -> Result<Content, Vec<Diagnostic>> {
    let mut b = Builder { extras: extras.to_vec(), ..Builder::default() };
    b.read(files, is_dialog);
    b.finish()
}

impl Builder {
    fn read(&mut self, files: &[SourceFile], is_dialog: impl Fn(&str) -> bool) {
        let b = self;
        for source in files {
            if b.first_dialog.is_none() && is_dialog(&source.path) {
                b.first_dialog = Some(Loc { path: source.path.clone(), line: 1, col: 1 });
            }
            let file = File::new(&source.path, &source.text);
            if let Some(root) = file.parse() {
                let table = Table::root(&file, &root);
                if is_dialog(&source.path) {
                    b.dialog_file(table);
                } else if Path::new(&source.path).file_name().is_some_and(|n| n == "vocabulary.toml") {
                    b.vocabulary_file(table);
                } else if Path::new(&source.path).file_name().is_some_and(|n| n == "links.toml") {
                    b.links_file(table);
                } else if Path::new(&source.path).file_name().is_some_and(|n| n == "glossary.toml") {
                    b.glossary_file(table);
                } else if Path::new(&source.path).file_name().is_some_and(|n| n == "cues.toml") {
                    b.cues_file(table);
                } else {
                    b.entry_file(table);
                }
            }
            b.diags.extend(file.into_diagnostics());
        }
        // Texts shown to users follow the glossary.
        let glossary = b.glossary.clone();
        b.diags.extend(glossary_findings(files, &glossary));
    }
}

#[derive(Default)]
struct Builder {
    /// Leave the self-test of example questions to the caller.
    skip_self_test: bool,
    diags: Vec<Diagnostic>,
    languages: Vec<(Language, Loc)>,
    messages: Vec<(String, Spanned<LangText>, Loc)>,
    commands: Vec<(CommandDef, Loc)>,
    flows: Vec<Flow>,
    /// Targets as written, checked once every flow is known: (flow, step index, where, text).
    pending_targets: Vec<PendingTarget>,
    intents: Vec<Intent>,
    terms: Vec<(Term, Loc)>,
    synonyms: BTreeMap<String, Vec<Vec<String>>>,
    stopwords: BTreeMap<String, Vec<String>>,
    cues: Vec<(String, crate::matching::Cue, String)>,
    entries: Vec<Entry>,
    /// Every text with its language keys, checked once the languages are known.
    texts: Vec<Texts>,
    /// Vocabulary references made by entries and steps: (kind accepted, id, where).
    term_refs: Vec<(Vec<VocabKind>, String, Loc)>,
    entry_refs: Vec<(String, Loc)>,
    /// Hosts of entry links and where they are written, checked against `links`.
    link_refs: Vec<(String, Loc)>,
    links: Vec<LinkDomain>,
    glossary: Vec<GlossaryTerm>,
    vocabulary_seen: bool,
    extras: Vec<ExtraExample>,
    /// The start of the first dialog file, where a problem of the dialogs as a whole is reported
    /// when there is no flow to point at.
    first_dialog: Option<Loc>,
}

/// Where an entry's facts come from, as its `source` says.
struct Source {
    document: String,
    paragraphs: Vec<i64>,
    annex: bool,
    paragraph_locs: Vec<(i64, Loc)>,
}

/// The languages one text (or group of texts) is written in, and what they must cover.
struct Texts {
    loc: Loc,
    key: String,
    langs: Vec<String>,
    cover: Cover,
}

enum Cover {
    /// A text: every language.
    Text,
    /// An entry's sections: every language.
    Entry,
    /// An intent's example questions: every language.
    Examples,
    /// Part of a group checked as a whole (one section, one language's keywords): only languages
    /// that are defined.
    Defined,
}

enum TargetSlot {
    Next,
    Button(usize),
    Branch(usize),
    Command(usize),
    Intent(usize),
}

struct PendingTarget {
    flow: String,
    step: usize,
    slot: TargetSlot,
    raw: String,
    loc: Loc,
}

/// Whether an optional text of an entry is given in one language.
type Given = fn(&EntryText) -> bool;

fn err(diags: &mut Vec<Diagnostic>, loc: &Loc, message: impl Into<String>) {
    diags.push(Diagnostic { loc: loc.clone(), message: message.into() });
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl Builder {
    fn id_check(&mut self, file: &File<'_>, key: &Spanned<std::borrow::Cow<'_, str>>, what: &str) -> Option<String> {
        let id = key.get_ref().to_string();
        if valid_id(&id) {
            Some(id)
        } else {
            file.error(&key.span(), format!("{what} id `{id}` must be 1-32 characters of a-z, 0-9, `_` and `-`"));
            None
        }
    }

    fn lang_text(&mut self, table: &Table<'_, '_>, key: &'static str, required: bool) -> Option<LangText> {
        match table.lang_text(key) {
            Some(text) => {
                let loc = table.file.loc(text.span().start);
                for value in text.get_ref().values() {
                    if value.chars().count() > MAX_TEXT_CHARS {
                        err(&mut self.diags, &loc, format!("`{key}` is longer than Telegram's {MAX_TEXT_CHARS} characters"));
                    }
                }
                self.texts.push(Texts { loc, key: key.to_string(), langs: text.get_ref().keys().cloned().collect(), cover: Cover::Text });
                Some(text.into_inner())
            }
            None => {
                if required {
                    table.file.error(&table.span, format!("missing required key `{key}` (write `{key}.en = \"...\"`)"));
                }
                None
            }
        }
    }

    /// A required button `label`, each language short enough for a phone.
    fn label(&mut self, table: &Table<'_, '_>, loc: &Loc) -> LangText {
        let label = self.lang_text(table, "label", true).unwrap_or_default();
        for l in label.values() {
            if l.chars().count() > MAX_LABEL_CHARS {
                err(
                    &mut self.diags,
                    loc,
                    format!("button label \"{l}\" is longer than {MAX_LABEL_CHARS} characters, too long for a phone"),
                );
            }
        }
        label
    }

    /// A file of `dialogs/`: its sections, each read by a function of its own.
    fn dialog_file(&mut self, root: Table<'_, '_>) {
        self.languages_section(&root);
        self.messages_section(&root);
        self.commands_section(&root);
        self.flows_section(&root);
        self.intents_section(&root);
        root.finish();
    }

    /// `[language.<code>]`: the content languages, with `name` and the `also` codes that map to them.
    fn languages_section(&mut self, root: &Table<'_, '_>) {
        if let Some(languages) = root.table("language") {
            for (code, value) in languages.entries() {
                let Some(t) = Table::new(root.file, value, "a language") else { continue };
                let loc = t.loc();
                let also = t.str_list("also").unwrap_or_default().into_iter().map(|c| c.into_inner().to_ascii_lowercase()).collect();
                if let Some(name) = t.req_str("name") {
                    self.languages.push((Language { code: code.get_ref().to_string(), name: name.into_inner(), also }, loc));
                }
                t.finish();
            }
        }
    }

    /// `[message.<key>]`: the sentences the engine and the front ends say, per language.
    fn messages_section(&mut self, root: &Table<'_, '_>) {
        if let Some(messages) = root.table("message") {
            for (key, value) in messages.entries() {
                let Some(t) = Table::new(root.file, value, "a message") else { continue };
                let mut text = LangText::new();
                for (lang, v) in t.entries() {
                    match v.get_ref() {
                        toml::de::DeValue::String(s) => {
                            text.insert(lang.get_ref().to_string(), s.to_string());
                        }
                        _ => root.file.error(&v.span(), "a message text must be a string"),
                    }
                }
                let loc = root.file.loc(key.span().start);
                let langs = text.keys().cloned().collect();
                self.texts.push(Texts { loc: loc.clone(), key: format!("message.{}", key.get_ref()), langs, cover: Cover::Text });
                self.messages.push((key.get_ref().to_string(), Spanned::new(t.span.clone(), text), loc));
            }
        }
    }

    /// `[command.<name>]`: slash commands, where each goes, and the role it needs.
    fn commands_section(&mut self, root: &Table<'_, '_>) {
        if let Some(commands) = root.table("command") {
            for (name, value) in commands.entries() {
                let Some(t) = Table::new(root.file, value, "a command") else { continue };
                let loc = root.file.loc(name.span().start);
                let name = name.get_ref().to_string();
                if name.is_empty() || name.len() > 32 || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                    err(&mut self.diags, &loc, format!("command `{name}` must be 1-32 characters of a-z, 0-9 and `_`"));
                }
                let goto = t.req_str("goto");
                let description = self.lang_text(&t, "description", true).unwrap_or_default();
                for d in description.values() {
                    if d.chars().count() > 256 {
                        err(&mut self.diags, &loc, "a command description must be at most 256 characters");
                    }
                }
                let role = t.str("role").map(Spanned::into_inner);
                if let Some(role) = &role
                    && !["staff", "agency", "admin"].contains(&role.as_str())
                {
                    err(&mut self.diags, &loc, format!("unknown role `{role}`; roles are staff, agency and admin"));
                }
                t.finish();
                if let Some(goto) = goto {
                    let index = self.commands.len();
                    let gloc = root.file.loc(goto.span().start);
                    self.pending_targets.push(PendingTarget {
                        flow: String::new(),
                        step: 0,
                        slot: TargetSlot::Command(index),
                        raw: goto.into_inner(),
                        loc: gloc,
                    });
                    let placeholder = Target { flow: String::new(), step: String::new() };
                    self.commands.push((CommandDef { name, goto: placeholder, description, role }, loc));
                }
            }
        }
    }

    /// `[flow.<id>.<step>]`: guided conversations, step by step.
    fn flows_section(&mut self, root: &Table<'_, '_>) {
        if let Some(flows) = root.table("flow") {
            for (flow_key, value) in flows.entries() {
                let Some(flow_id) = self.id_check(root.file, flow_key, "flow") else { continue };
                let Some(t) = Table::new(root.file, value, "a flow") else { continue };
                let loc = root.file.loc(flow_key.span().start);
                let mut flow = Flow { id: flow_id.clone(), steps: Vec::new(), loc };
                for (step_key, step_value) in t.entries() {
                    let Some(step_id) = self.id_check(root.file, step_key, "step") else { continue };
                    let Some(st) = Table::new(root.file, step_value, "a step") else { continue };
                    let index = flow.steps.len();
                    let step = self.step(&flow_id, index, step_id, st);
                    if flow.steps.iter().any(|s| s.id == step.id) {
                        err(&mut self.diags, &step.loc, format!("duplicate step `{}` in flow `{flow_id}`", step.id));
                    }
                    flow.steps.push(step);
                }
                if flow.steps.is_empty() {
                    err(&mut self.diags, &flow.loc, format!("flow `{flow_id}` has no steps"));
                }
                self.flows.push(flow);
            }
        }
    }

    /// `[intent.<id>]`: what free text can ask for, by patterns, keywords and example questions.
    fn intents_section(&mut self, root: &Table<'_, '_>) {
        if let Some(intents) = root.table("intent") {
            for (key, value) in intents.entries() {
                let Some(id) = self.id_check(root.file, key, "intent") else { continue };
                let Some(t) = Table::new(root.file, value, "an intent") else { continue };
                let loc = root.file.loc(key.span().start);
                let mut patterns = Vec::new();
                for p in t.str_list("patterns").unwrap_or_default() {
                    match regex::Regex::new(p.get_ref()) {
                        Ok(re) => patterns.push(re),
                        Err(e) => root.file.error(&p.span(), format!("regex does not compile: {}", one_line(&e.to_string()))),
                    }
                }
                let keywords = t
                    .lang_list("keywords")
                    .into_iter()
                    .map(|(l, ws)| (l, ws.into_iter().map(Spanned::into_inner).collect()))
                    .collect::<BTreeMap<_, Vec<_>>>();
                let examples = t
                    .lang_list("examples")
                    .into_iter()
                    .map(|(l, ws)| (l, ws.into_iter().map(|w| (root.file.loc(w.span().start), w.into_inner())).collect()))
                    .collect::<BTreeMap<_, Vec<_>>>();
                for lang in keywords.keys().chain(examples.keys()) {
                    self.texts.push(Texts {
                        loc: loc.clone(),
                        key: format!("intent.{id}"),
                        langs: vec![lang.clone()],
                        cover: Cover::Defined,
                    });
                }
                if !examples.is_empty() {
                    let langs = examples.keys().cloned().collect();
                    self.texts.push(Texts { loc: loc.clone(), key: format!("intent.{id}"), langs, cover: Cover::Examples });
                }
                let goto = t.str("goto");
                let reply = self.lang_text(&t, "reply", false);
                let label = self.label(&t, &loc);
                if goto.is_some() == reply.is_some() {
                    err(&mut self.diags, &loc, format!("intent `{id}` needs exactly one of `goto` and `reply`"));
                }
                if patterns.is_empty() && keywords.is_empty() {
                    err(&mut self.diags, &loc, format!("intent `{id}` needs `patterns` or `keywords`"));
                }
                t.finish();
                let index = self.intents.len();
                if let Some(goto) = goto {
                    let gloc = root.file.loc(goto.span().start);
                    self.pending_targets.push(PendingTarget {
                        flow: String::new(),
                        step: 0,
                        slot: TargetSlot::Intent(index),
                        raw: goto.into_inner(),
                        loc: gloc,
                    });
                }
                self.intents.push(Intent { id, patterns, keywords, examples, goto: None, reply, label, loc });
            }
        }
    }

    /// One step of a flow: what it says, what it asks, its buttons and branches, where it goes
    /// next and the action it ends in; each part read by a function of its own.
    fn step(&mut self, flow: &str, index: usize, id: String, t: Table<'_, '_>) -> Step {
        let file = t.file;
        let loc = t.loc();
        let say = self.lang_text(&t, "say", false);
        let (ask, choices) = self.step_ask(&t);
        let skip_if_known = t.bool("skip_if_known").unwrap_or(false);
        let set = read_set(&t);
        let buttons = self.step_buttons(&t, flow, index, &id);
        let branch = self.step_branches(&t, flow, index);
        if let Some(next) = t.str("next") {
            let nloc = file.loc(next.span().start);
            self.pending_targets.push(PendingTarget {
                flow: flow.to_string(),
                step: index,
                slot: TargetSlot::Next,
                raw: next.into_inner(),
                loc: nloc,
            });
        }
        let action = self.step_action(&t);
        t.finish();
        let step = Step { id, say, set, ask, choices, buttons, branch, next: None, action, skip_if_known, loc };
        if step.action.is_some() && step.waits() {
            err(&mut self.diags, &step.loc, "a step with an `action` cannot also wait for an answer (`ask`, `choices` or `buttons`)");
        }
        if step.say.is_none() && step.action.is_none() {
            err(&mut self.diags, &step.loc, "a step must `say` something or end in an `action`");
        }
        step
    }

    /// What a step asks: a slot with what it expects (`ask`, `expect`, `pattern`, `max_chars`,
    /// `retry`), or a choice among a vocabulary kind (`choices`).
    fn step_ask(&mut self, t: &Table<'_, '_>) -> (Option<Ask>, Option<VocabKind>) {
        let file = t.file;
        let loc = t.loc();
        let choices = t.str("choices").and_then(|c| match VocabKind::parse(c.get_ref()) {
            Some(kind) if kind != VocabKind::Region => Some(kind),
            _ => {
                let hint = did_you_mean(c.get_ref(), ["country", "sector", "need", "size", "stage"]);
                file.error(&c.span(), format!("unknown vocabulary kind `{}`{hint}", c.get_ref()));
                None
            }
        });
        let ask_slot = t.str("ask");
        let expect = t.str("expect");
        let pattern = t.str("pattern");
        let max_chars = t.int("max_chars");
        let retry = self.lang_text(t, "retry", false);
        let ask = match (ask_slot, choices) {
            (Some(slot), _) => {
                let slot_name = slot.get_ref().clone();
                if !valid_id(&slot_name) {
                    file.error(&slot.span(), format!("slot name `{slot_name}` must be a-z, 0-9 and `_`"));
                }
                let expect = match expect.as_ref().map(|e| e.get_ref().as_str()) {
                    None => match VocabKind::parse(&slot_name) {
                        Some(kind) => Expect::Term(kind),
                        None => Expect::Text { max_chars: 1000 },
                    },
                    Some("text") => Expect::Text { max_chars: max_chars.map_or(1000, |m| m.into_inner().max(1) as usize) },
                    Some("pattern") => match &pattern {
                        Some(p) => match regex::Regex::new(p.get_ref()) {
                            Ok(re) => Expect::Pattern(re),
                            Err(e) => {
                                file.error(&p.span(), format!("regex does not compile: {}", one_line(&e.to_string())));
                                Expect::Text { max_chars: 1000 }
                            }
                        },
                        None => {
                            err(&mut self.diags, &loc, "`expect = \"pattern\"` needs `pattern = \"...\"`");
                            Expect::Text { max_chars: 1000 }
                        }
                    },
                    Some(other) => match VocabKind::parse(other) {
                        Some(kind) => Expect::Term(kind),
                        None => {
                            let e = expect.as_ref().expect("matched Some");
                            let hint = did_you_mean(other, ["country", "sector", "need", "size", "stage", "text", "pattern"]);
                            file.error(&e.span(), format!("unknown `expect` value `{other}`{hint}"));
                            Expect::Text { max_chars: 1000 }
                        }
                    },
                };
                Some(Ask { slot: slot_name, expect, retry: retry.unwrap_or_default() })
            }
            (None, Some(kind)) => Some(Ask { slot: kind.name().to_string(), expect: Expect::Term(kind), retry: retry.unwrap_or_default() }),
            (None, None) => {
                if let Some(e) = &expect {
                    file.error(&e.span(), "`expect` needs `ask`");
                }
                None
            }
        };
        (ask, choices)
    }

    /// A step's buttons, each with data `s:<flow>:<step>:<button>` that fits Telegram's limit.
    fn step_buttons(&mut self, t: &Table<'_, '_>, flow: &str, index: usize, id: &str) -> Vec<ButtonDef> {
        let file = t.file;
        let mut buttons = Vec::new();
        for b in t.table_list("buttons") {
            let bloc = b.loc();
            let label = self.label(&b, &bloc);
            let goto = b.str("goto");
            let set = read_set(&b);
            let bid = b
                .str("id")
                .map(Spanned::into_inner)
                .or_else(|| goto.as_ref().map(|g| g.get_ref().replace('.', "_")))
                .unwrap_or_else(|| format!("b{}", buttons.len()));
            if !valid_id(&bid) {
                err(&mut self.diags, &bloc, format!("button id `{bid}` must be 1-32 characters of a-z, 0-9, `_` and `-`"));
            }
            let data = format!("s:{flow}:{id}:{bid}");
            if data.len() > MAX_BUTTON_DATA_BYTES {
                err(
                    &mut self.diags,
                    &bloc,
                    format!(
                        "button data `{data}` is longer than Telegram's {MAX_BUTTON_DATA_BYTES} bytes; use shorter flow, step or button ids"
                    ),
                );
            }
            if let Some(goto) = &goto {
                let gloc = file.loc(goto.span().start);
                self.pending_targets.push(PendingTarget {
                    flow: flow.to_string(),
                    step: index,
                    slot: TargetSlot::Button(buttons.len()),
                    raw: goto.get_ref().clone(),
                    loc: gloc,
                });
            }
            b.finish();
            buttons.push(ButtonDef { id: bid, label, goto: None, set });
        }
        buttons
    }

    /// A step's branches: go somewhere when a slot has a value.
    fn step_branches(&mut self, t: &Table<'_, '_>, flow: &str, index: usize) -> Vec<Branch> {
        let file = t.file;
        let mut branch = Vec::new();
        for b in t.table_list("branch") {
            let bloc = b.loc();
            let (slot, is, goto) = (b.req_str("slot"), b.req_str("is"), b.req_str("goto"));
            b.finish();
            if let (Some(slot), Some(is), Some(goto)) = (slot, is, goto) {
                if let Some(kind) = VocabKind::parse(slot.get_ref()) {
                    self.term_refs.push((vec![kind], is.get_ref().clone(), file.loc(is.span().start)));
                }
                self.pending_targets.push(PendingTarget {
                    flow: flow.to_string(),
                    step: index,
                    slot: TargetSlot::Branch(branch.len()),
                    raw: goto.into_inner(),
                    loc: bloc,
                });
                branch.push(Branch {
                    slot: slot.into_inner(),
                    is: is.into_inner(),
                    goto: Target { flow: String::new(), step: String::new() },
                });
            }
        }
        branch
    }

    /// The action a step ends in, with what it needs (`need`, `kind`, `entry`, `slot`).
    fn step_action(&mut self, t: &Table<'_, '_>) -> Option<Action> {
        let file = t.file;
        let need = t.str("need");
        let kind = t.str("kind");
        let entry = t.str("entry");
        let slot = t.str("slot");
        t.str("action").and_then(|a| {
            let aloc = file.loc(a.span().start);
            match a.get_ref().as_str() {
                "recommend" => {
                    let need = need.as_ref().map(|n| {
                        self.term_refs.push((vec![VocabKind::Need], n.get_ref().clone(), file.loc(n.span().start)));
                        n.get_ref().clone()
                    });
                    let kind = kind.as_ref().and_then(|k| {
                        let parsed = Kind::parse(k.get_ref());
                        if parsed.is_none() {
                            let hint = did_you_mean(k.get_ref(), Kind::ALL.iter().map(|k| k.name()));
                            file.error(&k.span(), format!("unknown kind `{}`{hint}", k.get_ref()));
                        }
                        parsed
                    });
                    Some(Action::Recommend { need, kind })
                }
                "show" => match &entry {
                    Some(e) => {
                        self.entry_refs.push((e.get_ref().clone(), file.loc(e.span().start)));
                        Some(Action::Show { entry: e.get_ref().clone() })
                    }
                    None => {
                        err(&mut self.diags, &aloc, "`action = \"show\"` needs `entry = \"...\"`");
                        None
                    }
                },
                "search" => match &slot {
                    Some(s) => Some(Action::Search { slot: s.get_ref().clone() }),
                    None => {
                        err(&mut self.diags, &aloc, "`action = \"search\"` needs `slot = \"...\"`");
                        None
                    }
                },
                "handoff" => Some(Action::Handoff { slot: slot.as_ref().map(|s| s.get_ref().clone()) }),
                "language" => Some(Action::Language),
                "forget" => Some(Action::Forget),
                "subscribe" => Some(Action::Subscribe { active: true }),
                "unsubscribe" => Some(Action::Subscribe { active: false }),
                "cancel" => Some(Action::Cancel),
                "back" => Some(Action::Back),
                "broadcast_draft" => Some(Action::BroadcastDraft),
                other => {
                    let hint = did_you_mean(
                        other,
                        [
                            "recommend",
                            "show",
                            "search",
                            "handoff",
                            "language",
                            "forget",
                            "subscribe",
                            "unsubscribe",
                            "cancel",
                            "back",
                            "broadcast_draft",
                        ],
                    );
                    file.error(&a.span(), format!("unknown action `{other}`{hint}"));
                    None
                }
            }
        })
    }

    fn vocabulary_file(&mut self, root: Table<'_, '_>) {
        self.vocabulary_seen = true;
        for kind in VocabKind::ALL {
            let Some(table) = root.table(kind.name()) else {
                if kind != VocabKind::Region {
                    root.file.error(&root.span, format!("the vocabulary defines no `[{}.*]` terms", kind.name()));
                }
                continue;
            };
            for (key, value) in table.entries() {
                let Some(id) = self.id_check(root.file, key, kind.name()) else { continue };
                let Some(t) = Table::new(root.file, value, "a term") else { continue };
                let loc = root.file.loc(key.span().start);
                let name = self.lang_text(&t, "name", true).unwrap_or_default();
                for n in name.values() {
                    if n.chars().count() > MAX_LABEL_CHARS {
                        err(
                            &mut self.diags,
                            &loc,
                            format!("name \"{n}\" is longer than {MAX_LABEL_CHARS} characters, too long for a button"),
                        );
                    }
                }
                let synonyms =
                    t.lang_list("synonyms").into_iter().map(|(l, ws)| (l, ws.into_iter().map(Spanned::into_inner).collect())).collect();
                let region = if kind == VocabKind::Country {
                    let r = t.req_str("region");
                    if let Some(r) = &r {
                        self.term_refs.push((vec![VocabKind::Region], r.get_ref().clone(), root.file.loc(r.span().start)));
                    }
                    r.map(Spanned::into_inner)
                } else {
                    None
                };
                t.finish();
                if id == GLOBAL || id == ANY {
                    err(&mut self.diags, &loc, format!("`{id}` is built in and cannot be defined"));
                }
                self.terms.push((Term { id, kind, name, synonyms, region }, loc));
            }
        }
        if let Some(t) = root.table("synonyms") {
            for (lang, value) in t.entries() {
                let mut groups = Vec::new();
                if let toml::de::DeValue::Array(items) = value.get_ref() {
                    for item in items.iter() {
                        match item.get_ref() {
                            toml::de::DeValue::Array(words) => {
                                let group: Vec<String> = words.iter().filter_map(|w| w.get_ref().as_str().map(str::to_string)).collect();
                                if group.len() < 2 || group.len() != words.len() {
                                    root.file.error(&item.span(), "a synonym group must be a list of at least two strings");
                                }
                                groups.push(group);
                            }
                            _ => root.file.error(&item.span(), "`synonyms` must be a list of lists of words"),
                        }
                    }
                } else {
                    root.file.error(&value.span(), "`synonyms` must be a list of lists of words");
                }
                self.synonyms.insert(lang.get_ref().to_string(), groups);
            }
        }
        for (lang, words) in root.lang_list("stopwords") {
            self.stopwords.insert(lang, words.into_iter().map(Spanned::into_inner).collect());
        }
        root.finish();
    }

    /// `knowledge/cues.toml`: per kind of question, the cue phrases of each language.
    fn cues_file(&mut self, root: Table<'_, '_>) {
        use crate::matching::{Cue, normalize};
        // Normalised phrase per language to the kind that lists it, for repeats.
        let mut seen: HashMap<(String, String), Cue> = HashMap::new();
        for kind in Cue::ALL {
            let Some(loc) = root.table(kind.name()).map(|t| t.loc()) else { continue };
            let lists = root.lang_list(kind.name());
            for (lang, phrases) in &lists {
                for phrase in phrases {
                    let normal = normalize(phrase.get_ref());
                    let at_start = phrase.get_ref().trim_start().starts_with('^');
                    if at_start && !matches!(kind, Cue::Personal | Cue::Outside | Cue::Provider | Cue::Approach | Cue::You) {
                        root.file.error(&phrase.span(), format!("cue \"{}\": `^` (start of a sentence) is for `[personal]`, `[outside]`, `[provider]`, `[approach]` and `[you]` only", phrase.get_ref()));
                        continue;
                    }
                    // Kept as written: the index reads the mark (`matching::Index::build`).
                    let normal = if at_start && !normal.is_empty() { format!("^{normal}") } else { normal };
                    if normal.is_empty() {
                        root.file.error(&phrase.span(), format!("cue \"{}\" has no letters or digits", phrase.get_ref()));
                        continue;
                    }
                    if matches!(kind, Cue::Transact | Cue::Between) && normal.contains(' ') {
                        root.file.error(&phrase.span(), format!("cue \"{}\": `[{}]` lists single words", phrase.get_ref(), kind.name()));
                        continue;
                    }
                    // `[you]` and `[transact]` are read with each other, not as phrases of a kind: a
                    // word of them may also be a phrase of another table ("loan" is of `[domain]`).
                    let key = if matches!(kind, Cue::You | Cue::Transact) { format!("{}\n{normal}", kind.name()) } else { normal.clone() };
                    if let Some(first) = seen.get(&(lang.clone(), key.clone())) {
                        let other = if *first == kind { String::new() } else { format!(" under `[{}]`", first.name()) };
                        root.file.error(&phrase.span(), format!("cue \"{}\" is already listed{other} in `{lang}`", phrase.get_ref()));
                        continue;
                    }
                    seen.insert((lang.clone(), key), kind);
                    self.cues.push((lang.clone(), kind, normal));
                }
            }
            self.texts.push(Texts { loc, key: kind.name().to_string(), langs: lists.keys().cloned().collect(), cover: Cover::Text });
        }
        root.finish();
    }

    /// `knowledge/links.toml`: `[[link]]` tables of `domain`, `organisation` and `checked`.
    fn links_file(&mut self, root: Table<'_, '_>) {
        for t in root.table_list("link") {
            let loc = t.loc();
            let domain = t.req_str("domain");
            let organisation = t.req_str("organisation").map(Spanned::into_inner).unwrap_or_default();
            let checked = t.date("checked").map(Spanned::into_inner).unwrap_or_default();
            t.finish();
            let Some(domain) = domain else { continue };
            let name = domain.get_ref().clone();
            if link_host(&format!("https://{name}")).as_deref() != Some(name.as_str()) {
                root.file.error(&domain.span(), format!("`domain` must be a plain lowercase host such as \"unctad.org\", found `{name}`"));
                continue;
            }
            if let Some(old) = self.links.iter().find(|l| l.domain == name) {
                err(&mut self.diags, &loc, format!("duplicate domain `{name}` (first listed at {})", old.loc));
                continue;
            }
            self.links.push(LinkDomain { domain: name, organisation, checked, loc });
        }
        root.finish();
    }

    /// `knowledge/glossary.toml`: `[term.<id>]` with the rendering per language and `avoid.<lang>`.
    fn glossary_file(&mut self, root: Table<'_, '_>) {
        if let Some(terms) = root.table("term") {
            for (key, value) in terms.entries() {
                let Some(id) = self.id_check(root.file, key, "glossary term") else { continue };
                let Some(t) = Table::new(root.file, value, "a glossary term") else { continue };
                let loc = root.file.loc(key.span().start);
                let mut text = LangText::new();
                let avoid: BTreeMap<String, Vec<String>> =
                    t.lang_list("avoid").into_iter().map(|(l, ws)| (l, ws.into_iter().map(Spanned::into_inner).collect())).collect();
                for (lang, v) in t.entries() {
                    if lang.get_ref() == "avoid" || lang.get_ref() == "note" {
                        continue;
                    }
                    match v.get_ref() {
                        toml::de::DeValue::String(s) => {
                            let _ = t.get(lang.get_ref());
                            text.insert(lang.get_ref().to_string(), s.to_string());
                        }
                        _ => root.file.error(&v.span(), "a glossary rendering must be a string"),
                    }
                }
                let _ = t.str("note");
                for (lang, words) in &avoid {
                    for w in words {
                        let fixed = text.get(lang).map(|s| crate::matching::normalize(s));
                        if fixed.is_some_and(|f| f.contains(&crate::matching::normalize(w))) {
                            err(&mut self.diags, &loc, format!("`avoid.{lang}` lists \"{w}\", which the rendering itself contains"));
                        }
                    }
                }
                t.finish();
                self.texts.push(Texts {
                    loc: loc.clone(),
                    key: format!("term.{id}"),
                    langs: text.keys().cloned().collect(),
                    cover: Cover::Text,
                });
                for lang in avoid.keys() {
                    self.texts.push(Texts {
                        loc: loc.clone(),
                        key: format!("term.{id}.avoid"),
                        langs: vec![lang.clone()],
                        cover: Cover::Defined,
                    });
                }
                self.glossary.push(GlossaryTerm { id, text, avoid, loc });
            }
        }
        root.finish();
    }

    /// One knowledge entry: its fields, then its source, evidence and texts per language, each
    /// read by a function of its own.
    fn entry_file(&mut self, t: Table<'_, '_>) {
        let file = t.file;
        let loc = t.loc();
        let id = t.req_str("id");
        let kind = t.req_str("kind").and_then(|k| {
            let parsed = Kind::parse(k.get_ref());
            if parsed.is_none() {
                let hint = did_you_mean(k.get_ref(), Kind::ALL.iter().map(|k| k.name()));
                file.error(&k.span(), format!("unknown kind `{}`{hint}", k.get_ref()));
            }
            parsed
        });
        let mut list = |key: &'static str, kinds: Vec<VocabKind>, builtin: Option<&str>| -> Vec<String> {
            let Some(items) = t.str_list(key) else {
                file.error(&t.span, format!("missing required key `{key}`"));
                return Vec::new();
            };
            if items.is_empty() {
                file.error(&t.span, format!("`{key}` must name at least one term"));
            }
            for item in &items {
                if Some(item.get_ref().as_str()) != builtin {
                    self.term_refs.push((kinds.clone(), item.get_ref().clone(), file.loc(item.span().start)));
                }
            }
            items.into_iter().map(Spanned::into_inner).collect()
        };
        let countries = list("countries", vec![VocabKind::Country, VocabKind::Region], Some(GLOBAL));
        let sectors = list("sectors", vec![VocabKind::Sector], Some(ANY));
        let needs = list("needs", vec![VocabKind::Need], None);
        let audience = match t.str("audience") {
            None => Audience::Sme,
            Some(a) => match a.get_ref().as_str() {
                "sme" => Audience::Sme,
                "agency" => Audience::Agency,
                other => {
                    file.error(&a.span(), format!("unknown audience `{other}`; use \"sme\" or \"agency\""));
                    Audience::Sme
                }
            },
        };
        let reviewed = t.date("reviewed");
        let general = t.bool("general").unwrap_or(false);
        let money = t.bool("money").unwrap_or(false);
        let mut optional_list = |key: &'static str, kind: VocabKind| -> Vec<String> {
            let Some(items) = t.str_list(key) else { return Vec::new() };
            if items.is_empty() {
                file.error(&t.span, format!("`{key}` must name at least one term, or be left out for all of them"));
            }
            for item in &items {
                self.term_refs.push((vec![kind], item.get_ref().clone(), file.loc(item.span().start)));
            }
            items.into_iter().map(Spanned::into_inner).collect()
        };
        let sizes = optional_list("sizes", VocabKind::Size);
        let stages = optional_list("stages", VocabKind::Stage);
        let Source { document, paragraphs, annex, paragraph_locs } = self.entry_source(&t, general);
        let status = match t.str("status") {
            Some(v) => {
                let parsed = Status::parse(v.get_ref());
                if parsed.is_none() {
                    let hint = did_you_mean(v.get_ref(), Status::ALL.iter().map(|s| s.name()));
                    file.error(&v.span(), format!("unknown status `{}`; use \"active\", \"ended\" or \"unknown\"{hint}", v.get_ref()));
                }
                parsed
            }
            None => {
                file.error(&t.span, "missing required key `status` (\"active\", \"ended\" or \"unknown\")");
                None
            }
        };
        let status_checked = if t.get("status_checked").is_some() { t.date("status_checked").map(Spanned::into_inner) } else { None };
        let successor = t.str("successor").map(|v| {
            if status.is_some_and(|s| s != Status::Ended) {
                file.error(&v.span(), "`successor` is only for an entry whose `status` is \"ended\"");
            }
            self.entry_refs.push((v.get_ref().clone(), file.loc(v.span().start)));
            v.into_inner()
        });
        let link = t.str("link").map(|v| {
            match link_host(v.get_ref()) {
                Some(host) => self.link_refs.push((host, file.loc(v.span().start))),
                None => file.error(&v.span(), format!("`link` must be an https:// address on an official domain, found `{}`", v.get_ref())),
            }
            v.into_inner()
        });
        let evidence = self.entry_evidence(&t, &loc, general, annex, &paragraphs, &paragraph_locs);
        let keywords = t.str_list("keywords").unwrap_or_default().into_iter().map(Spanned::into_inner).collect();
        let texts = self.entry_texts(&t, &loc, audience);
        let reviewed = reviewed.map(Spanned::into_inner).unwrap_or_default();
        // A bad kind is already reported; keep the entry so duplicates are still found.
        let kind = kind.unwrap_or(Kind::PolicyGuidance);
        let Some(id) = id else {
            finish_entry(t, &texts);
            return;
        };
        if !valid_id(id.get_ref()) {
            file.error(&id.span(), format!("entry id `{}` must be 1-32 characters of a-z, 0-9, `_` and `-`", id.get_ref()));
        }
        if successor.as_deref() == Some(id.get_ref().as_str()) {
            err(&mut self.diags, &loc, "an entry cannot be its own `successor`");
        }
        if !texts.contains_key(DEFAULT_LANG) {
            err(&mut self.diags, &loc, format!("entry `{}` has no `[{DEFAULT_LANG}]` texts", id.get_ref()));
        }
        finish_entry(t, &texts);
        self.entries.push(Entry {
            id: id.into_inner(),
            kind,
            countries,
            sectors,
            needs,
            audience,
            reviewed,
            document,
            paragraphs,
            annex,
            keywords,
            sizes,
            stages,
            status,
            status_checked,
            successor,
            link,
            general,
            money,
            evidence,
            texts,
            loc,
        });
    }

    /// An entry's `source`: the document and the paragraphs (or the annex) it rests on.
    fn entry_source(&mut self, t: &Table<'_, '_>, general: bool) -> Source {
        let file = t.file;
        let (mut document, mut paragraphs, mut annex) = (String::new(), Vec::new(), false);
        let mut paragraph_locs = Vec::new();
        match t.table("source") {
            Some(s) => {
                document = s.req_str("document").map(Spanned::into_inner).unwrap_or_default();
                annex = s.bool("annex").unwrap_or(false);
                match s.int_list("paragraphs") {
                    Some(p) if general && !p.is_empty() => file.error(
                        &s.span,
                        "a general-guidance entry (`general = true`) is not from the report: leave out `source.paragraphs`",
                    ),
                    Some(p) if !p.is_empty() => {
                        paragraph_locs = p.iter().map(|n| (*n.get_ref(), file.loc(n.span().start))).collect();
                        paragraphs = p.into_iter().map(Spanned::into_inner).collect();
                    }
                    _ if general => {}
                    // Facts from the annex alone cite no paragraph.
                    _ if annex => {}
                    _ => file.error(&s.span, "`source.paragraphs` must list the paragraph numbers the entry rests on"),
                }
                s.finish();
            }
            None if general => {}
            None => file.error(&t.span, "missing required key `source` (write `source = { document = \"...\", paragraphs = [..] }`)"),
        }
        Source { document, paragraphs, annex, paragraph_locs }
    }

    /// An entry's `evidence`: short verbatim quotes, each from a cited paragraph or the annex, and
    /// one for every paragraph cited.
    fn entry_evidence(
        &mut self,
        t: &Table<'_, '_>,
        loc: &Loc,
        general: bool,
        annex: bool,
        paragraphs: &[i64],
        paragraph_locs: &[(i64, Loc)],
    ) -> Vec<Evidence> {
        let file = t.file;
        let loc = loc.clone();
        let mut evidence = Vec::new();
        for item in t.table_list("evidence") {
            let paragraph = item.int("paragraph");
            let from_annex = item.bool("annex").unwrap_or(false);
            let quote = item.req_str("quote");
            let iloc = item.loc();
            match (&paragraph, from_annex) {
                (Some(_), true) => err(&mut self.diags, &iloc, "an evidence item cites either a `paragraph` or the `annex`, not both"),
                (None, false) => err(&mut self.diags, &iloc, "an evidence item needs `paragraph = N` or `annex = true`"),
                (Some(p), false) if !paragraphs.contains(p.get_ref()) => {
                    file.error(&p.span(), format!("evidence from paragraph {} but `source.paragraphs` does not cite it", p.get_ref()))
                }
                (None, true) if !annex => err(&mut self.diags, &iloc, "evidence from the annex needs `annex = true` in `source`"),
                _ => {}
            }
            if let Some(q) = &quote {
                let words = q.get_ref().split_whitespace().count();
                if q.get_ref().trim().is_empty() {
                    file.error(&q.span(), "`quote` is empty");
                } else if words > MAX_QUOTE_WORDS {
                    file.error(
                        &q.span(),
                        format!("the quote has {words} words; keep evidence to a short span (at most {MAX_QUOTE_WORDS})"),
                    );
                }
            }
            item.finish();
            if let Some(q) = quote {
                let loc = file.loc(q.span().start);
                evidence.push(Evidence { paragraph: paragraph.map(Spanned::into_inner), quote: q.into_inner(), loc });
            }
        }
        if general && !evidence.is_empty() {
            err(&mut self.diags, &loc, "a general-guidance entry (`general = true`) is not from the report and carries no `evidence`");
        }
        if !general && evidence.is_empty() {
            err(&mut self.diags, &loc, "missing `evidence`: verbatim quotes from the cited paragraphs (or `general = true`)");
        }
        // Every cited paragraph is backed by a quote (a missing `evidence` is reported once, above).
        if !evidence.is_empty() {
            for (n, ploc) in paragraph_locs {
                if !evidence.iter().any(|e| e.paragraph == Some(*n)) {
                    err(&mut self.diags, ploc, format!("paragraph {n} is cited but no `evidence` quote comes from it"));
                }
            }
            if annex && !evidence.iter().any(|e| e.paragraph.is_none()) {
                err(&mut self.diags, &loc, "`source.annex` is set but no `evidence` quote comes from the annex");
            }
        }
        evidence
    }

    /// An entry's texts, one section per language, and the optional texts given in all or none.
    fn entry_texts(&mut self, t: &Table<'_, '_>, loc: &Loc, audience: Audience) -> BTreeMap<String, EntryText> {
        let file = t.file;
        let loc = loc.clone();
        let mut texts = BTreeMap::new();
        let known = [
            "id",
            "kind",
            "countries",
            "sectors",
            "needs",
            "sizes",
            "stages",
            "audience",
            "reviewed",
            "status",
            "status_checked",
            "successor",
            "link",
            "general",
            "money",
            "source",
            "evidence",
            "keywords",
        ];
        for (lang, value) in t.entries() {
            let lang = lang.get_ref().to_string();
            if known.contains(&lang.as_str()) {
                continue;
            }
            // Only tables are language sections; any other unknown key is reported by `finish`.
            if !matches!(value.get_ref(), toml::de::DeValue::Table(_)) {
                continue;
            }
            let Some(lt) = Table::new(file, value, &format!("`{lang}`")) else { continue };
            let text = self.entry_text(&lt);
            if audience == Audience::Agency && text.business.is_none() {
                lt.file.error(&lt.span, "an entry for agencies needs `business`: one line on what it means for a business");
            }
            texts.insert(lang.clone(), text);
            self.texts.push(Texts { loc: lt.loc(), key: format!("[{lang}]"), langs: vec![lang], cover: Cover::Defined });
            lt.finish();
        }
        // An optional text given in one language must be given in every language.
        let optional: [(&str, Given); 3] =
            [("tip", |t| t.tip.is_some()), ("business", |t| t.business.is_some()), ("successor", |t| t.successor.is_some())];
        for (key, given) in optional {
            let missing: Vec<String> = texts.iter().filter(|(_, t)| !given(t)).map(|(l, _)| format!("`[{l}] {key}`")).collect();
            if !missing.is_empty() && missing.len() < texts.len() {
                err(&mut self.diags, &loc, format!("`{key}` is given in some languages but missing: {}", missing.join(", ")));
            }
        }
        if !texts.is_empty() {
            self.texts.push(Texts { loc: loc.clone(), key: "entry".into(), langs: texts.keys().cloned().collect(), cover: Cover::Entry });
        }
        texts
    }

    fn entry_text(&mut self, t: &Table<'_, '_>) -> EntryText {
        let file = t.file;
        let field = |key: &'static str, max: usize| -> String {
            match t.req_str(key) {
                Some(s) => {
                    let n = s.get_ref().chars().count();
                    if n > max {
                        file.error(&s.span(), format!("`{key}` has {n} characters; keep it under {max}"));
                    }
                    if s.get_ref().trim().is_empty() {
                        file.error(&s.span(), format!("`{key}` is empty"));
                    }
                    s.into_inner()
                }
                None => String::new(),
            }
        };
        let name = field("name", 80);
        let short = field("short", MAX_LABEL_CHARS);
        let provider = field("provider", 120);
        let summary = field("summary", MAX_SUMMARY_CHARS);
        let offers = field("offers", 900);
        let eligible = field("eligible", 600);
        let approach = field("approach", 600);
        let optional = |key: &'static str, max: usize| -> Option<String> {
            t.get(key)?;
            let value = field(key, max);
            (!value.trim().is_empty()).then_some(value)
        };
        let tip = optional("tip", 400);
        let business = optional("business", 200);
        let successor = optional("successor", 300);
        let examples: Vec<_> =
            t.str_list("examples").unwrap_or_default().into_iter().map(|e| (file.loc(e.span().start), e.into_inner())).collect();
        if examples.is_empty() {
            file.error(&t.span, "an entry needs `examples`: questions that should lead to it");
        }
        EntryText { name, short, provider, summary, offers, eligible, approach, tip, business, successor, examples }
    }

    /// Checks what the files say as a whole and builds the content, one named pass after another;
    /// every problem of every pass is reported together.
    fn finish(mut self) -> Result<Content, Vec<Diagnostic>> {
        let languages = self.languages_pass();
        let first_loc = self.first_loc();
        self.text_languages_pass(&languages);
        let messages = self.messages_pass(&first_loc);
        let mut flows = self.flows_pass(&first_loc);
        let commands = self.targets_pass(&mut flows);
        follow_on_steps(&mut flows);
        let commands = self.commands_pass(commands);
        self.restricted_flows_pass(&flows, &commands);
        self.placeholders_pass(&flows);
        let terms = self.vocabulary_pass();
        let entries = self.entries_pass();
        self.links_pass();
        let intents = self.intents_pass();
        if !self.diags.is_empty() {
            let mut diags = self.diags;
            diags.sort();
            diags.dedup();
            return Err(diags);
        }
        let vocab = Vocabulary { terms, synonyms: self.synonyms, stopwords: self.stopwords, cues: self.cues };
        let index = super::build_index(&languages, &vocab, &entries, &intents);
        let content =
            Content { languages, messages, commands, flows, intents, vocab, entries, links: self.links, glossary: self.glossary, index };
        let diags = if self.skip_self_test { Vec::new() } else { self_test(&content) };
        if diags.is_empty() { Ok(content) } else { Err(diags) }
    }

    /// Where a problem of the dialogs as a whole is reported.
    fn first_loc(&self) -> Loc {
        self.flows.first().map(|f| f.loc.clone()).or_else(|| self.first_dialog.clone()).unwrap_or_else(|| Loc {
            path: "dialogs".into(),
            line: 1,
            col: 1,
        })
    }

    /// Languages: each defined once, English among them.
    fn languages_pass(&mut self) -> Vec<Language> {
        let mut languages: Vec<Language> = Vec::new();
        for (lang, loc) in &self.languages {
            if languages.iter().any(|l| l.code == lang.code) {
                err(&mut self.diags, loc, format!("duplicate language `{}`", lang.code));
            } else {
                languages.push(lang.clone());
            }
        }
        if !languages.iter().any(|l| l.code == DEFAULT_LANG) {
            let loc = self.first_loc();
            err(&mut self.diags, &loc, format!("no `[language.{DEFAULT_LANG}]` is defined"));
        }
        languages
    }

    /// Every text exists in every language, and in no language that is not defined: a user never
    /// meets a sentence in another language.
    fn text_languages_pass(&mut self, languages: &[Language]) {
        let codes: Vec<&str> = languages.iter().map(|l| l.code.as_str()).collect();
        for Texts { loc, key, langs, cover } in &self.texts {
            for lang in langs {
                if !codes.contains(&lang.as_str()) {
                    let hint = did_you_mean(lang, codes.iter().copied());
                    err(&mut self.diags, loc, format!("`{key}` uses language `{lang}`, which no `[language.*]` defines{hint}"));
                }
            }
            let missing: Vec<&str> = codes.iter().copied().filter(|c| !langs.iter().any(|l| l == c)).collect();
            if langs.is_empty() || missing.is_empty() {
                continue;
            }
            let list = |form: &dyn Fn(&str) -> String| missing.iter().map(|c| form(c)).collect::<Vec<_>>().join(", ");
            let message = match cover {
                Cover::Defined => continue,
                Cover::Text => format!("missing {} (every text needs every language)", list(&|c| format!("`{key}.{c}`"))),
                Cover::Entry => format!("the entry has no {} section (every language needs one)", list(&|c| format!("`[{c}]`"))),
                Cover::Examples => {
                    format!("`{key}` has no {} (every language needs example questions)", list(&|c| format!("`examples.{c}`")))
                }
            };
            err(&mut self.diags, loc, message);
        }
    }

    /// Messages: each defined once, every one the engine needs, and only the placeholders it fills.
    fn messages_pass(&mut self, first_loc: &Loc) -> HashMap<String, LangText> {
        let mut messages = HashMap::new();
        for (key, text, loc) in std::mem::take(&mut self.messages) {
            let allowed = REQUIRED_MESSAGES.iter().find(|(k, _)| *k == key).map(|(_, p)| *p);
            for value in text.get_ref().values() {
                for p in placeholders(value) {
                    match allowed {
                        Some(allowed) if !allowed.contains(&p) => {
                            let hint = did_you_mean(p, allowed.iter().copied());
                            err(&mut self.diags, &loc, format!("message `{key}` uses placeholder `{{{p}}}`, which it does not get{hint}"));
                        }
                        _ => {}
                    }
                }
            }
            if messages.insert(key.clone(), text.into_inner()).is_some() {
                err(&mut self.diags, &loc, format!("duplicate message `{key}`"));
            }
        }
        for (key, _) in REQUIRED_MESSAGES {
            if !messages.contains_key(*key) {
                err(&mut self.diags, first_loc, format!("missing message `{key}`, which the engine needs"));
            }
        }
        messages
    }

    /// Flows: each defined once, `start` and `menu` among them.
    fn flows_pass(&mut self, first_loc: &Loc) -> BTreeMap<String, Flow> {
        let mut flows: BTreeMap<String, Flow> = BTreeMap::new();
        for flow in std::mem::take(&mut self.flows) {
            if let Some(old) = flows.get(&flow.id) {
                err(&mut self.diags, &flow.loc, format!("duplicate flow `{}` (first defined at {})", flow.id, old.loc));
            } else {
                flows.insert(flow.id.clone(), flow);
            }
        }
        for required in ["start", "menu"] {
            if !flows.contains_key(required) {
                err(&mut self.diags, first_loc, format!("missing flow `{required}`, which the engine needs"));
            }
        }
        flows
    }

    /// Targets as written (`next`, buttons, branches, commands, intents) resolved to a step of a
    /// flow; returns the commands with their targets.
    fn targets_pass(&mut self, flows: &mut BTreeMap<String, Flow>) -> Vec<(CommandDef, Loc)> {
        let mut commands = std::mem::take(&mut self.commands);
        for p in std::mem::take(&mut self.pending_targets) {
            let Some(target) = resolve(flows, &p.flow, &p.raw) else {
                let current = p.flow.as_str();
                let candidates: Vec<String> = flows
                    .values()
                    .flat_map(|f| {
                        f.steps
                            .iter()
                            .map(move |s| if f.id == current { s.id.clone() } else { format!("{}.{}", f.id, s.id) })
                            .chain([f.id.clone()])
                    })
                    .collect();
                let hint = did_you_mean(&p.raw, candidates.iter().map(String::as_str));
                err(&mut self.diags, &p.loc, format!("`{}` names no step or flow{hint}", p.raw));
                continue;
            };
            match p.slot {
                TargetSlot::Command(i) => commands[i].0.goto = target,
                TargetSlot::Intent(i) => self.intents[i].goto = Some(target),
                TargetSlot::Next => flows.get_mut(&p.flow).expect("flow exists").steps[p.step].next = Some(target),
                TargetSlot::Button(b) => flows.get_mut(&p.flow).expect("flow exists").steps[p.step].buttons[b].goto = Some(target),
                TargetSlot::Branch(b) => flows.get_mut(&p.flow).expect("flow exists").steps[p.step].branch[b].goto = target,
            }
        }
        commands
    }

    /// Commands: each defined once.
    fn commands_pass(&mut self, commands: Vec<(CommandDef, Loc)>) -> BTreeMap<String, CommandDef> {
        let mut command_map = BTreeMap::new();
        for (command, loc) in commands {
            if command_map.contains_key(&command.name) {
                err(&mut self.diags, &loc, format!("duplicate command `{}`", command.name));
            }
            command_map.insert(command.name.clone(), command);
        }
        command_map
    }

    /// A flow behind a role is entered only through its command: nothing else may lead into it.
    fn restricted_flows_pass(&mut self, flows: &BTreeMap<String, Flow>, commands: &BTreeMap<String, CommandDef>) {
        let restricted: BTreeSet<String> =
            commands.values().filter(|c| c.role.is_some() && c.goto.flow != "menu").map(|c| c.goto.flow.clone()).collect();
        for intent in &self.intents {
            if let Some(goto) = &intent.goto
                && restricted.contains(&goto.flow)
            {
                err(
                    &mut self.diags,
                    &intent.loc,
                    format!("intent `{}` leads into flow `{}`, which only its command may open", intent.id, goto.flow),
                );
            }
        }
        for flow in flows.values().filter(|f| !restricted.contains(&f.id)) {
            for step in &flow.steps {
                let targets =
                    step.next.iter().chain(step.buttons.iter().filter_map(|b| b.goto.as_ref())).chain(step.branch.iter().map(|b| &b.goto));
                for target in targets {
                    if restricted.contains(&target.flow) {
                        err(&mut self.diags, &step.loc, format!("step leads into flow `{}`, which only its command may open", target.flow));
                    }
                }
            }
        }
    }

    /// Placeholders in step texts and the slots of actions name a slot of their flow; values set
    /// on profile slots are remembered as vocabulary references.
    fn placeholders_pass(&mut self, flows: &BTreeMap<String, Flow>) {
        let profile_slots = ["country", "sector", "size", "stage", "need", "needs"];
        for flow in flows.values() {
            let slots: BTreeSet<&str> = flow
                .steps
                .iter()
                .filter_map(|s| s.ask.as_ref().map(|a| a.slot.as_str()))
                .chain(
                    flow.steps
                        .iter()
                        .flat_map(|s| s.buttons.iter().flat_map(|b| b.set.iter()).chain(s.set.iter()).map(|(k, _)| k.as_str())),
                )
                .chain(profile_slots)
                .collect();
            for step in &flow.steps {
                for text in step.say.iter().chain(step.ask.as_ref().map(|a| &a.retry)) {
                    for value in text.values() {
                        for p in placeholders(value) {
                            if !slots.contains(p) {
                                let hint = did_you_mean(p, slots.iter().copied());
                                err(&mut self.diags, &step.loc, format!("placeholder `{{{p}}}` names no slot of flow `{}`{hint}", flow.id));
                            }
                        }
                    }
                }
                if let Some(Action::Search { slot }) | Some(Action::Handoff { slot: Some(slot) }) = &step.action
                    && !slots.contains(slot.as_str())
                {
                    err(&mut self.diags, &step.loc, format!("`slot = \"{slot}\"` names no slot of flow `{}`", flow.id));
                }
                for (k, v) in step.buttons.iter().flat_map(|b| b.set.iter()).chain(step.set.iter()) {
                    if let Some(kind) = VocabKind::parse(k) {
                        self.term_refs.push((vec![kind], v.clone(), step.loc.clone()));
                    }
                }
            }
        }
    }

    /// The vocabulary: present, each term once, a word names one term only, and every reference
    /// to a term (from entries and steps) finds it.
    fn vocabulary_pass(&mut self) -> Vec<Term> {
        if !self.vocabulary_seen {
            err(&mut self.diags, &Loc { path: "knowledge/vocabulary.toml".into(), line: 1, col: 1 }, "the vocabulary file is missing");
        }
        // A word a user types must name one term: a synonym shared with another term (or equal to
        // another term's name) would pick one of them silently.
        let mut words: HashMap<String, String> = HashMap::new();
        for (term, _) in &self.terms {
            for name in term.name.values() {
                words.entry(crate::matching::normalize(name)).or_insert_with(|| format!("{}.{}", term.kind.name(), term.id));
            }
        }
        for (term, loc) in &self.terms {
            let me = format!("{}.{}", term.kind.name(), term.id);
            for word in term.synonyms.values().flatten() {
                let key = crate::matching::normalize(word);
                match words.get(&key) {
                    Some(other) if *other != me => err(
                        &mut self.diags,
                        loc,
                        format!("synonym \"{word}\" of `{me}` already names `{other}`; a word may belong to one term only"),
                    ),
                    Some(_) => {}
                    None => {
                        words.insert(key, me.clone());
                    }
                }
            }
        }
        let mut terms: Vec<Term> = Vec::new();
        for (term, loc) in std::mem::take(&mut self.terms) {
            if terms.iter().any(|t| t.kind == term.kind && t.id == term.id) {
                err(&mut self.diags, &loc, format!("duplicate {} `{}`", term.kind.name(), term.id));
            } else {
                terms.push(term);
            }
        }
        for (kinds, id, loc) in &self.term_refs {
            if !terms.iter().any(|t| kinds.contains(&t.kind) && &t.id == id) {
                let candidates = terms.iter().filter(|t| kinds.contains(&t.kind)).map(|t| t.id.as_str());
                let hint = did_you_mean(id, candidates);
                let what = kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(" or ");
                err(&mut self.diags, loc, format!("`{id}` is not a {what} of the vocabulary{hint}"));
            }
        }
        terms
    }

    /// Entries: each id once, the examples staff attached added to theirs, and every reference to
    /// an entry finds it.
    fn entries_pass(&mut self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = Vec::new();
        for entry in std::mem::take(&mut self.entries) {
            if let Some(old) = entries.iter().find(|e| e.id == entry.id) {
                err(&mut self.diags, &entry.loc, format!("duplicate entry `{}` (first defined at {})", entry.id, old.loc));
            } else {
                entries.push(entry);
            }
        }
        for extra in &self.extras {
            let loc = Loc { path: format!("database:learned_examples:{}", extra.id), line: 1, col: 1 };
            match entries.iter_mut().find(|e| e.id == extra.entry_id) {
                None => err(&mut self.diags, &loc, format!("`{}` names no knowledge entry", extra.entry_id)),
                Some(entry) => match entry.texts.get_mut(&extra.lang) {
                    Some(text) => text.examples.push((loc, extra.text.clone())),
                    None => err(&mut self.diags, &loc, format!("entry `{}` has no `[{}]` texts for this example", entry.id, extra.lang)),
                },
            }
        }
        for (id, loc) in &self.entry_refs {
            if !entries.iter().any(|e| &e.id == id) {
                let hint = did_you_mean(id, entries.iter().map(|e| e.id.as_str()));
                err(&mut self.diags, loc, format!("`{id}` names no knowledge entry{hint}"));
            }
        }
        entries
    }

    /// Every link of an entry is on a domain of the allowlist.
    fn links_pass(&mut self) {
        for (host, loc) in &self.link_refs {
            if !self.links.iter().any(|l| l.covers(host)) {
                err(
                    &mut self.diags,
                    loc,
                    format!(
                        "the domain `{host}` is not in knowledge/links.toml; add it there (with the date it was checked) or drop the link"
                    ),
                );
            }
        }
    }

    /// Intents: each id once.
    fn intents_pass(&mut self) -> Vec<Intent> {
        let mut intents: Vec<Intent> = Vec::new();
        for intent in std::mem::take(&mut self.intents) {
            if intents.iter().any(|i| i.id == intent.id) {
                err(&mut self.diags, &intent.loc, format!("duplicate intent `{}`", intent.id));
            } else {
                intents.push(intent);
            }
        }
        intents
    }
}

/// Without `next`, a step leads to the one written after it; the last step ends the flow.
fn follow_on_steps(flows: &mut BTreeMap<String, Flow>) {
    for flow in flows.values_mut() {
        let ids: Vec<String> = flow.steps.iter().map(|s| s.id.clone()).collect();
        for (i, step) in flow.steps.iter_mut().enumerate() {
            if step.next.is_none() && step.action.is_none() && i + 1 < ids.len() {
                step.next = Some(Target { flow: flow.id.clone(), step: ids[i + 1].clone() });
            }
        }
    }
}

/// `set = { slot = "value" }` on a step or a button.
fn read_set(t: &Table<'_, '_>) -> Vec<(String, String)> {
    let mut set = Vec::new();
    if let Some(st) = t.table("set") {
        for (k, v) in st.entries() {
            match v.get_ref() {
                toml::de::DeValue::String(s) => set.push((k.get_ref().to_string(), s.to_string())),
                _ => t.file.error(&v.span(), "`set` values must be strings"),
            }
        }
    }
    set
}

fn finish_entry(t: Table<'_, '_>, texts: &BTreeMap<String, EntryText>) {
    // Language tables are read through `entries`; mark them known before reporting the rest.
    for lang in texts.keys() {
        let _ = t.get(lang);
    }
    t.finish();
}

fn resolve(flows: &BTreeMap<String, Flow>, current: &str, raw: &str) -> Option<Target> {
    if let Some((flow, step)) = raw.split_once('.') {
        let f = flows.get(flow)?;
        f.step(step)?;
        return Some(Target { flow: flow.to_string(), step: step.to_string() });
    }
    if let Some(f) = flows.get(current)
        && f.step(raw).is_some()
    {
        return Some(Target { flow: current.to_string(), step: raw.to_string() });
    }
    let f = flows.get(raw)?;
    Some(Target { flow: raw.to_string(), step: f.steps.first()?.id.clone() })
}

fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// An example whose own document is not among this many best-ranked on its words is stolen.
const STOLEN_BELOW: usize = 3;

/// Every example question must lead to its own entry or intent.
fn self_test(content: &Content) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let describe = |m: &Match| match m {
        Match::Answer(doc, c) => format!("`{}` (confidence {c:.2})", content.index.doc_name(*doc)),
        Match::Choose(docs) => format!(
            "a \"did you mean\" between {}",
            docs.iter().map(|(d, c)| format!("`{}` ({c:.2})", content.index.doc_name(*d))).collect::<Vec<_>>().join(" and ")
        ),
        Match::Nothing => "nothing".to_string(),
    };
    // Answered, and among the best ranked on its own words too: an example that other documents outrank is stolen
    // (the answer alone could come from the rule that an example's exact terms lead to its document).
    let check = |diags: &mut Vec<Diagnostic>, loc: &Loc, lang: &str, example: &str, own: String| {
        let ranking = content.index.rank(example, &Asker::lang(lang));
        let m = ranking.decide(&crate::matching::THRESHOLDS);
        let answered = matches!(&m, Match::Answer(doc, _) if content.index.doc_name(*doc) == own);
        let near_top = ranking.top.iter().take(STOLEN_BELOW).any(|(d, _)| content.index.doc_name(*d) == own);
        if !answered {
            let (kind, id) = own.split_once(':').unwrap_or(("entry", own.as_str()));
            err(diags, loc, format!("example \"{example}\" does not lead to {kind} `{id}`: it matches {}", describe(&m)));
        } else if !near_top {
            let first = ranking.top.iter().map(|(d, _)| format!("`{}`", content.index.doc_name(*d))).take(STOLEN_BELOW);
            err(diags, loc, format!("example \"{example}\" of `{own}` ranks below {} on its words", first.collect::<Vec<_>>().join(", ")));
        }
    };
    let mut jobs: Vec<(&Loc, &str, &str, String)> = Vec::new();
    for entry in &content.entries {
        for (lang, text) in &entry.texts {
            for (loc, example) in &text.examples {
                jobs.push((loc, lang, example, format!("entry:{}", entry.id)));
            }
        }
    }
    for intent in &content.intents {
        for (lang, examples) in &intent.examples {
            for (loc, example) in examples {
                jobs.push((loc, lang, example, format!("intent:{}", intent.id)));
            }
        }
    }
    // Thousands of examples, each ranked: on every core, the problems kept in file order.
    for found in crate::matching::in_parallel(&jobs, |(loc, lang, example, own)| {
        let mut found = Vec::new();
        check(&mut found, loc, lang, example, own.clone());
        found
    }) {
        diags.extend(found);
    }
    diags
}

/// Uses, in the content files, of a rendering the glossary forbids: `path:line:col` of each, in the
/// language of the text it stands in (an entry's `[fr]` section, a `say.fr`, `label.fr`, `name.fr` or
/// `fr = ` key). Matching ignores case; the forbidden wording must stand as whole words. Lists of
/// words for matching what users type (examples, keywords, synonyms, stop words) and evidence
/// quotes are left alone.
pub fn glossary_findings(files: &[SourceFile], glossary: &[GlossaryTerm]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let key = regex::Regex::new(r#"(?:^|[\s{,.])([a-z]{2})\s*=\s*["\[]"#).expect("valid regex");
    let section = regex::Regex::new(r"^\s*\[([^\]]+)\]\s*$").expect("valid regex");
    // Whole words, any case; a straight apostrophe also matches a curly one. One pass of a set over
    // each line finds the few patterns worth running.
    let mut patterns = Vec::new();
    for term in glossary {
        for (lang, words) in &term.avoid {
            for word in words {
                let body = regex::escape(word).replace('\'', "['’]");
                if let Ok(re) = regex::Regex::new(&format!(r"(?i)\b{body}\b")) {
                    patterns.push((term, lang, re));
                }
            }
        }
    }
    let Ok(set) = regex::RegexSet::new(patterns.iter().map(|(_, _, re)| re.as_str())) else { return diags };
    if patterns.is_empty() {
        return diags;
    }
    for file in files {
        let name = Path::new(&file.path).file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // Cue phrases are words users type, like synonyms.
        if name == "glossary.toml" || name == "links.toml" || name == "cues.toml" {
            continue;
        }
        let mut current: Option<String> = None;
        let mut words_only = false;
        // Inside a list of words for matching that spans lines (`examples = [` ... `]`).
        let mut in_list = false;
        for (n, line) in file.text.lines().enumerate() {
            if let Some(c) = section.captures(line) {
                let name = c[1].trim();
                current = (name.len() == 2 && name.chars().all(|c| c.is_ascii_lowercase())).then(|| name.to_string());
                // Word lists for matching what users type, not texts shown to them.
                words_only = name == "synonyms" || name == "stopwords";
                continue;
            }
            let trimmed = line.trim_start();
            if in_list {
                in_list = !trimmed.trim_end().ends_with(']') && !trimmed.starts_with(']');
                continue;
            }
            let listed = ["#", "examples", "keywords", "synonyms", "quote", "{ paragraph", "{ annex"];
            if words_only || listed.iter().any(|p| trimmed.starts_with(p)) {
                in_list = ["examples", "keywords", "synonyms"].iter().any(|p| trimmed.starts_with(p)) && !trimmed.trim_end().ends_with(']');
                continue;
            }
            for (term, lang, re) in set.matches(line).into_iter().map(|i| &patterns[i]) {
                for found in re.find_iter(line) {
                    // The language of the text: the nearest `xx = "` before it on the line, else the section.
                    let lang_here = key.captures_iter(&line[..found.start()]).last().map(|c| c[1].to_string()).or_else(|| current.clone());
                    if lang_here.as_deref() != Some(lang.as_str()) {
                        continue;
                    }
                    let col = line[..found.start()].chars().count() + 1;
                    let fixed = term.text.get(*lang).cloned().unwrap_or_default();
                    diags.push(Diagnostic {
                        loc: Loc { path: file.path.clone(), line: n + 1, col },
                        message: format!(
                            "\"{}\" is a wording the glossary avoids in `{lang}`: write \"{fixed}\" (glossary term `{}`)",
                            found.as_str(),
                            term.id
                        ),
                    });
                }
            }
        }
    }
    diags.sort();
    diags
}
