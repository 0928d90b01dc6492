//! The dialog engine: a pure function from (content, session, input, time) to (session, replies, effects).
//!
//! It knows nothing of Telegram, SQLite, the file system or the clock; front ends turn real events
//! into [`Input`], render [`Reply`] values, and persist [`Effect`]s in the same transaction as the
//! new session. Unknown input is never an error: it yields a fallback reply and an effect that logs
//! the unanswered question.
//!
//! Button data is self-describing and stable across restarts and content reloads:
//!
//! | data | meaning |
//! |---|---|
//! | `f:<flow>` | start a flow |
//! | `s:<flow>:<step>:<value>` | answer a step with a button id or a vocabulary term |
//! | `e:<entry>` / `d:<entry>` | show an entry's card / its details and source |
//! | `i:<intent>` | take a suggested intent |
//! | `r:<need>:<kind>:<offset>` | more recommendations (`-` for none) |
//! | `l:<lang>` | switch language |
//! | `m` / `b` / `x` / `h` | menu, back, cancel, ask a human |
//! | `https://...` | a link button: it opens the entry's official address and is never sent back |

mod recommend;
mod session;

pub use recommend::{Fit, recommend};
pub use session::{Position, Profile, SESSION_VERSION, Session};

use crate::content::{Action, Audience, Content, Entry, Expect, Kind, Status, Step as StepDef, Target, VocabKind, fill};
use crate::matching::{Ask, Asker, Doc, MAX_QUERY_CHARS, Match};

/// Seconds since the Unix epoch, passed in by the front end.
pub type Timestamp = i64;

/// An internal user id; never a Telegram id, phone number or username.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserId(pub i64);

/// A session idle for longer than this forgets where it was in a flow (the profile stays).
pub const FLOW_TIMEOUT_SECS: Timestamp = 7 * 24 * 3600;
/// Topics of programme calls a user can subscribe to; each has a `topic_<id>` message.
pub const TOPICS: [&str; 4] = ["financing", "services", "linkages", "training"];

/// How many of the user's recent messages a session keeps for an advisor, and how much of each.
pub const RECENT_TURNS: usize = 5;
pub const RECENT_CHARS: usize = 200;
/// How many recommendations one message shows.
pub const PAGE_SIZE: usize = 3;
/// An unknown command is echoed at most this long (Telegram's longest command name), so the
/// answer stays within one message.
pub const MAX_ECHOED_COMMAND_CHARS: usize = 32;

/// What the user did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Text(String),
    /// A button press, with the button's data.
    Button(String),
    /// A slash command other than `/start`, without the slash.
    Command {
        name: String,
        args: String,
    },
    /// `/start`, with the deep-link payload if any.
    Start {
        payload: Option<String>,
    },
    /// Something the bot cannot read: a sticker, photo, voice message...
    Unsupported(String),
    /// A command that needs a role, which the front end has checked the user holds.
    Authorized {
        name: String,
    },
}

/// One message to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// Shown in bold above the text.
    pub title: Option<String>,
    pub text: String,
    pub buttons: Vec<Button>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub data: String,
}

/// The start of a link button's data: the address it opens.
pub const LINK_PREFIX: &str = "https://";

impl Button {
    /// A button that opens an address (Telegram's URL button) instead of sending data back.
    pub fn is_link(&self) -> bool {
        self.data.starts_with(LINK_PREFIX)
    }
}

/// What the shell must persist or do, in the same transaction as the session.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// A profile field changed (`needs` holds a comma-separated list).
    ProfileSet {
        field: String,
        value: Option<String>,
    },
    LanguageSet(String),
    Inquiry(Inquiry),
    /// The user asked for a human advisor about this text.
    Handoff {
        text: String,
    },
    Subscription {
        active: bool,
        topics: Vec<String>,
    },
    /// Delete everything stored about the user.
    Forget,
    /// The user saved a programme call, to be reminded before its deadline.
    SaveCall(i64),
    /// An agency finished the guided flow for a programme call; the answers, by slot.
    BroadcastDraft(std::collections::BTreeMap<String, String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Inquiry {
    pub kind: InquiryKind,
    pub text: String,
    /// What was matched or recommended (`entry:<id>`, `intent:<id>`).
    pub matched: Vec<String>,
    pub confidence: f32,
    pub answered: bool,
    /// The need or kind the question was about, for statistics.
    pub topic: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InquiryKind {
    Question,
    Recommendation,
    Handoff,
}

impl std::fmt::Display for InquiryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl InquiryKind {
    pub const ALL: [InquiryKind; 3] = [InquiryKind::Question, InquiryKind::Recommendation, InquiryKind::Handoff];

    /// The kind by its stored name.
    pub fn parse(name: &str) -> Option<InquiryKind> {
        InquiryKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            InquiryKind::Question => "question",
            InquiryKind::Recommendation => "recommendation",
            InquiryKind::Handoff => "handoff",
        }
    }
}

/// The result of one turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub session: Session,
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
}

/// One turn of the conversation.
pub fn step(content: &Content, session: &Session, input: &Input, now: Timestamp) -> Step {
    let mut turn = Turn { content, s: session.clone(), replies: Vec::new(), effects: Vec::new(), before: None };
    turn.s.version = SESSION_VERSION;
    // Where the user was: the language choice takes them back there. An earlier place to resume
    // is kept for this turn only (the press of a language button).
    let resume = turn.s.resume.take();
    turn.before = turn.s.at.clone().map(|p| (p, turn.s.stack.clone())).or(resume);
    let stale = turn.s.at.as_ref().is_some_and(|p| content.step(&p.target()).is_none())
        || turn.s.stack.iter().any(|p| content.step(&p.target()).is_none());
    if stale {
        // The content changed under this session: start the flow cleanly.
        turn.s.at = None;
        turn.s.stack.clear();
        turn.s.slots.clear();
        turn.say_message("menu_changed");
        turn.goto_flow("menu");
    } else {
        if turn.s.at.is_some() && now - turn.s.updated > FLOW_TIMEOUT_SECS {
            turn.s.at = None;
            turn.s.stack.clear();
            turn.s.slots.clear();
        }
        turn.input(input);
    }
    turn.s.updated = now;
    Step { session: turn.s, replies: turn.replies, effects: turn.effects }
}

struct Turn<'c> {
    content: &'c Content,
    s: Session,
    replies: Vec<Reply>,
    effects: Vec<Effect>,
    /// The step the user was at when this turn began (or was to resume), with its back stack.
    before: Option<(Position, Vec<Position>)>,
}

impl<'c> Turn<'c> {
    fn lang(&self) -> String {
        self.s.lang.clone()
    }

    fn msg(&self, key: &str, params: &[(&str, &str)]) -> String {
        self.content.message(key, &self.s.lang, params)
    }

    fn say_message(&mut self, key: &str) {
        let text = self.msg(key, &[]);
        self.replies.push(Reply { title: None, text, buttons: Vec::new() });
    }

    fn button(&self, key: &str, data: &str) -> Button {
        Button { label: self.msg(key, &[]), data: data.to_string() }
    }

    /// The menu and human buttons, offered after an answer or a dead end.
    fn menu_buttons(&self) -> Vec<Button> {
        vec![self.button("button_menu", "m"), self.button("button_human", "h")]
    }

    fn input(&mut self, input: &Input) {
        match input {
            Input::Start { payload } => self.start(payload.as_deref()),
            Input::Command { name, args } => self.command(name, args),
            Input::Button(data) => self.button_press(data),
            Input::Text(text) => self.text(text),
            Input::Authorized { name } => match self.content.commands.get(name.as_str()) {
                Some(command) => {
                    self.s.at = None;
                    self.s.stack.clear();
                    self.s.slots.clear();
                    let target = command.goto.clone();
                    self.enter(&target);
                }
                None => self.menu_changed(),
            },
            Input::Unsupported(_) => {
                let text = self.msg("unsupported_input", &[]);
                let buttons = self.menu_buttons();
                self.replies.push(Reply { title: None, text, buttons });
            }
        }
    }

    fn start(&mut self, payload: Option<&str>) {
        self.s.at = None;
        self.s.stack.clear();
        self.s.slots.clear();
        if let Some(payload) = payload {
            if let Some(entry) = self.content.entry(payload) {
                let id = entry.id.clone();
                self.show_card(&id, None);
                return;
            }
            // A flow behind a role opens only through its command, never through a link.
            if self.content.flow(payload).is_some() && !self.content.restricted(payload) {
                self.goto_flow(payload);
                return;
            }
        }
        self.goto_flow("start");
    }

    fn command(&mut self, name: &str, args: &str) {
        let name = name.to_ascii_lowercase();
        if name == "start" {
            let payload = args.split_whitespace().next();
            self.start(payload);
            return;
        }
        if name == "language" && !args.trim().is_empty() {
            self.set_language(args.trim());
            return;
        }
        match self.content.commands.get(&name) {
            Some(command) if command.role.is_none() => {
                self.s.at = None;
                self.s.stack.clear();
                let target = command.goto.clone();
                self.enter(&target);
            }
            _ => {
                let mut shown: String = name.chars().take(MAX_ECHOED_COMMAND_CHARS).collect();
                if shown.len() < name.len() {
                    shown.push('…');
                }
                let text = self.msg("unknown_command", &[("command", &format!("/{shown}"))]);
                let buttons = self.menu_buttons();
                self.replies.push(Reply { title: None, text, buttons });
            }
        }
    }

    fn goto_flow(&mut self, flow: &str) {
        let Some(first) = self.content.flow(flow).and_then(|f| f.steps.first()) else {
            return;
        };
        let target = Target { flow: flow.to_string(), step: first.id.clone() };
        self.enter(&target);
    }

    fn menu_changed(&mut self) {
        self.s.at = None;
        self.s.stack.clear();
        self.say_message("menu_changed");
        self.goto_flow("menu");
    }

    fn button_press(&mut self, data: &str) {
        let mut parts = data.splitn(4, ':');
        let tag = parts.next().unwrap_or("");
        let args: Vec<&str> = parts.collect();
        match (tag, args.as_slice()) {
            ("m", []) => {
                self.s.at = None;
                self.s.stack.clear();
                self.goto_flow("menu");
            }
            ("b", []) => self.act(&Action::Back),
            ("x", []) => self.act(&Action::Cancel),
            ("h", []) => {
                self.s.at = None;
                self.s.stack.clear();
                if self.content.flow("human").is_some() {
                    self.goto_flow("human");
                } else {
                    self.handoff(None);
                }
            }
            ("f", [flow]) if self.content.flow(flow).is_some() && !self.content.restricted(flow) => {
                self.s.at = None;
                self.s.stack.clear();
                self.goto_flow(flow);
            }
            ("e", [id]) if self.content.entry(id).is_some() => self.show_card(id, None),
            ("d", [id]) if self.content.entry(id).is_some() => self.show_details(id),
            ("i", [id]) if self.content.intent(id).is_some() => {
                let index = self.content.intents.iter().position(|i| i.id == *id).expect("checked");
                self.run_intent(index);
            }
            ("l", [lang]) => self.set_language(lang),
            ("r", [need, kind, offset]) => {
                let need = (*need != "-").then(|| need.to_string());
                let kind = if *kind == "-" { None } else { Kind::parse(kind) };
                match offset.parse::<usize>() {
                    Ok(offset) => self.recommend(need, kind, offset),
                    Err(_) => self.menu_changed(),
                }
            }
            // A step of a flow behind a role answers only for a session already in that flow.
            ("s", [flow, _, _]) if self.content.restricted(flow) && self.s.at.as_ref().is_none_or(|p| p.flow != *flow) => {
                self.menu_changed()
            }
            ("s", [flow, step, value]) => self.answer_button(flow, step, value),
            ("u", []) => self.act(&Action::Subscribe { active: false }),
            ("v", [id]) => match id.parse::<i64>() {
                Ok(id) if id > 0 => {
                    self.effects.push(Effect::SaveCall(id));
                    let text = self.msg("call_saved", &[]);
                    self.replies.push(Reply { title: None, text, buttons: vec![self.button("button_menu", "m")] });
                }
                _ => self.menu_changed(),
            },
            _ => self.menu_changed(),
        }
    }

    fn answer_button(&mut self, flow: &str, step: &str, value: &str) {
        let target = Target { flow: flow.to_string(), step: step.to_string() };
        let Some(def) = self.content.step(&target) else {
            self.menu_changed();
            return;
        };
        // A button of an older message in another flow leaves the current flow, as the menu does,
        // and its back stack with it (so back never leads into a flow behind a role).
        if self.s.at.as_ref().is_none_or(|p| p.flow != flow) {
            self.s.stack.clear();
        }
        if let Some(button) = def.buttons.iter().find(|b| b.id == value) {
            self.push_position(&target);
            for (slot, v) in &button.set {
                self.set_slot(slot, v);
            }
            match &button.goto {
                Some(goto) => {
                    let goto = goto.clone();
                    self.enter(&goto);
                }
                None => self.leave(def),
            }
            return;
        }
        if let (Some(kind), Some(ask)) = (def.choices, &def.ask)
            && (value == "-" || self.content.vocab.term(kind, value).is_some())
        {
            self.push_position(&target);
            let slot = ask.slot.clone();
            if value == "-" {
                self.clear_slot(&slot);
            } else {
                self.set_slot(&slot, value);
            }
            self.leave(def);
            return;
        }
        self.menu_changed();
    }

    fn push_position(&mut self, target: &Target) {
        let position = Position::of(target);
        if self.s.stack.last() != Some(&position) {
            self.s.stack.push(position);
        }
        if self.s.stack.len() > 20 {
            self.s.stack.remove(0);
        }
    }

    fn back(&mut self) {
        match self.s.stack.pop() {
            Some(position) => {
                let target = position.target();
                self.enter_with(&target, false);
            }
            None => self.goto_flow("menu"),
        }
    }

    fn text(&mut self, text: &str) {
        let text: String = text.chars().take(MAX_QUERY_CHARS * 4).collect();
        let trimmed = text.trim();
        if trimmed.is_empty() {
            self.say_message("empty_input");
            return;
        }
        self.s.recent.push(trimmed.chars().take(RECENT_CHARS).collect());
        if self.s.recent.len() > RECENT_TURNS {
            self.s.recent.remove(0);
        }
        if let Some(position) = self.s.at.clone() {
            let target = position.target();
            let def = self.content.step(&target).expect("checked at the start of the turn");
            if let Some(ask) = &def.ask {
                if let Some(value) = self.validate(&ask.expect, trimmed) {
                    self.push_position(&target);
                    let slot = ask.slot.clone();
                    self.set_slot(&slot, &value);
                    self.leave(def);
                    return;
                }
                // Not an answer: maybe a question; otherwise ask again.
                // Only a confident answer leaves the question being asked (evidence of 1.5 times the
                // answer threshold: confidence 0.6).
                match self.content.index.search(trimmed, &self.asker()) {
                    Match::Answer(doc, confidence) if confidence >= 0.6 => self.answer(trimmed, doc, confidence),
                    _ => {
                        let lang = self.lang();
                        let retry = if ask.retry.is_empty() {
                            self.msg("fallback", &[])
                        } else {
                            self.fill_slots(self.content.pick(&ask.retry, &lang))
                        };
                        let buttons = self.step_buttons(&target, def);
                        self.replies.push(Reply { title: None, text: retry, buttons });
                    }
                }
                return;
            }
            // A step with buttons only: typed text may name one of them.
            let lang = self.lang();
            let typed = crate::matching::normalize(trimmed);
            if let Some(b) = def.buttons.iter().find(|b| crate::matching::normalize(self.content.pick(&b.label, &lang)) == typed) {
                let id = b.id.clone();
                self.answer_button(&target.flow, &target.step, &id);
                return;
            }
        }
        self.question(trimmed);
    }

    fn validate(&self, expect: &Expect, text: &str) -> Option<String> {
        match expect {
            Expect::Term(kind) => self.content.index.resolve(kind.name(), text, &self.s.lang),
            Expect::Text { max_chars } => (text.chars().count() <= *max_chars).then(|| text.to_string()),
            Expect::Pattern(re) => re.is_match(text).then(|| text.to_string()),
        }
    }

    /// Who asks, for the matcher: the chosen language and the stored profile, which breaks ties.
    fn asker(&self) -> Asker<'_> {
        let p = &self.s.profile;
        let profile = p
            .country
            .iter()
            .map(|c| if self.content.vocab.term(VocabKind::Country, c).is_some() { format!("country:{c}") } else { format!("region:{c}") })
            .chain(p.sector.iter().map(|s| format!("sector:{s}")))
            .collect();
        Asker { lang: &self.s.lang, profile }
    }

    /// A free question: answer it, offer the close answers by name, or decline and log it as unanswered.
    fn question(&mut self, text: &str) {
        match self.content.index.search(text, &self.asker()) {
            Match::Answer(doc, confidence) => self.answer(text, doc, confidence),
            Match::Choose(docs) => {
                let mut buttons = Vec::new();
                let mut lines = vec![self.msg("did_you_mean", &[])];
                for (doc, _) in &docs {
                    lines.push(self.doc_line(*doc));
                    buttons.push(self.doc_button(*doc));
                }
                buttons.push(self.button("button_human", "h"));
                self.replies.push(Reply { title: None, text: lines.join("\n\n"), buttons });
                let matched = docs.iter().map(|(d, _)| self.content.index.doc_name(*d).to_string()).collect();
                self.log_question(text, matched, docs[0].1, false, None);
                self.s.last_question = Some(text.to_string());
            }
            Match::Nothing => {
                let text_out = self.msg("fallback", &[]);
                let buttons = self.menu_buttons();
                self.replies.push(Reply { title: None, text: text_out, buttons });
                self.log_question(text, Vec::new(), 0.0, false, None);
                self.s.last_question = Some(text.to_string());
            }
        }
    }

    /// One compact line for a document offered among others: name, provider and one sentence.
    fn doc_line(&self, doc: Doc) -> String {
        let lang = self.lang();
        match doc {
            Doc::Entry(i) => {
                let t = self.content.entry_text(&self.content.entries[i], &lang);
                let sentence = first_sentence(&t.summary);
                self.msg("choose_line", &[("name", &t.name), ("provider", &t.provider), ("summary", sentence)])
            }
            Doc::Intent(i) => {
                let label = self.content.pick(&self.content.intents[i].label, &lang).to_string();
                self.msg("choose_line_intent", &[("label", &label)])
            }
        }
    }

    fn doc_button(&self, doc: Doc) -> Button {
        let lang = self.lang();
        match doc {
            Doc::Entry(i) => {
                let entry = &self.content.entries[i];
                Button { label: self.content.entry_text(entry, &lang).short.clone(), data: format!("e:{}", entry.id) }
            }
            Doc::Intent(i) => {
                let intent = &self.content.intents[i];
                let label = self.content.pick(&intent.label, &lang).to_string();
                Button { label, data: format!("i:{}", intent.id) }
            }
        }
    }

    fn answer(&mut self, text: &str, doc: Doc, confidence: f32) {
        let name = self.content.index.doc_name(doc).to_string();
        match doc {
            Doc::Entry(i) => {
                self.s.at = None;
                self.s.stack.clear();
                let entry = &self.content.entries[i];
                let topic = Some(entry.kind.name().to_string());
                let id = entry.id.clone();
                let ask = self.content.index.ask(text, &self.s.lang);
                self.show_card_for(&id, None, ask);
                self.log_question(text, vec![name], confidence, true, topic);
            }
            Doc::Intent(i) => {
                self.log_question(text, vec![name], confidence, true, Some(self.content.intents[i].id.clone()));
                // "credit for my shop in Kenya": fill a blank country before the flow asks; never overwrite.
                // (Sectors are not taken this way: "business services" names both a menu and a sector.)
                if self.slot("country").is_none()
                    && let Some(id) = self.content.index.resolve(VocabKind::Country.name(), text, &self.s.lang)
                {
                    self.set_slot("country", &id);
                }
                self.run_intent(i);
            }
        }
    }

    fn run_intent(&mut self, index: usize) {
        let intent = &self.content.intents[index];
        if let Some(reply) = &intent.reply {
            let text = self.content.pick(reply, &self.s.lang).to_string();
            let buttons = self.menu_buttons();
            self.replies.push(Reply { title: None, text, buttons });
        } else if let Some(goto) = &intent.goto {
            let goto = goto.clone();
            if self.content.step(&goto).is_some_and(|s| s.action == Some(Action::Back)) {
                // "back" typed as text steps back within the flow the user is in.
                self.back();
                return;
            }
            self.s.at = None;
            self.s.stack.clear();
            self.enter(&goto);
        }
    }

    fn log_question(&mut self, text: &str, matched: Vec<String>, confidence: f32, answered: bool, topic: Option<String>) {
        self.effects.push(Effect::Inquiry(Inquiry {
            kind: InquiryKind::Question,
            text: text.to_string(),
            matched,
            confidence,
            answered,
            topic,
        }));
    }

    fn enter(&mut self, target: &Target) {
        self.enter_with(target, true);
    }

    /// Runs steps from `target` until one waits for the user or the flow ends.
    fn enter_with(&mut self, target: &Target, allow_skip: bool) {
        let mut target = target.clone();
        for _ in 0..32 {
            let Some(def) = self.content.step(&target) else {
                self.menu_changed();
                return;
            };
            self.s.at = Some(Position::of(&target));
            for (slot, value) in &def.set {
                self.set_slot(slot, value);
            }
            let known = def.ask.as_ref().is_some_and(|a| self.slot(&a.slot).is_some());
            if allow_skip && def.skip_if_known && known {
                match self.next_of(def) {
                    Some(next) => {
                        target = next;
                        continue;
                    }
                    None => {
                        self.s.at = None;
                        return;
                    }
                }
            }
            if let Some(say) = &def.say {
                let text = self.fill_slots(self.content.pick(say, &self.s.lang));
                let buttons = if def.waits() { self.step_buttons(&target, def) } else { Vec::new() };
                self.replies.push(Reply { title: None, text, buttons });
            }
            if def.action == Some(Action::Back) {
                self.back();
                return;
            }
            if let Some(action) = &def.action {
                self.s.at = None;
                self.s.stack.clear();
                let action = action.clone();
                self.act(&action);
                return;
            }
            if def.waits() {
                if def.say.is_none() {
                    let buttons = self.step_buttons(&target, def);
                    self.replies.push(Reply { title: None, text: String::new(), buttons });
                }
                return;
            }
            match self.next_of(def) {
                Some(next) => target = next,
                None => {
                    self.s.at = None;
                    self.s.stack.clear();
                    return;
                }
            }
        }
        // A loop in the content: stop rather than spin.
        self.menu_changed();
    }

    /// Leaves an answered step: first matching branch, else `next`, else the flow ends.
    fn leave(&mut self, def: &StepDef) {
        match self.next_of(def) {
            Some(next) => self.enter(&next),
            None => {
                self.s.at = None;
                self.s.stack.clear();
            }
        }
    }

    fn next_of(&self, def: &StepDef) -> Option<Target> {
        for branch in &def.branch {
            if self.slot(&branch.slot).as_deref() == Some(branch.is.as_str()) {
                return Some(branch.goto.clone());
            }
        }
        def.next.clone()
    }

    fn step_buttons(&self, target: &Target, def: &StepDef) -> Vec<Button> {
        let lang = self.lang();
        let mut buttons: Vec<Button> = def
            .buttons
            .iter()
            .map(|b| Button {
                label: self.content.pick(&b.label, &lang).to_string(),
                data: format!("s:{}:{}:{}", target.flow, target.step, b.id),
            })
            .collect();
        if let Some(kind) = def.choices {
            for term in self.content.vocab.of_kind(kind) {
                buttons.push(Button {
                    label: self.content.pick(&term.name, &lang).to_string(),
                    data: format!("s:{}:{}:{}", target.flow, target.step, term.id),
                });
            }
            if kind == VocabKind::Sector {
                buttons.push(Button { label: self.msg("button_none", &[]), data: format!("s:{}:{}:-", target.flow, target.step) });
            }
        }
        if target.flow != "menu" && target.flow != "start" {
            if !self.s.stack.is_empty() {
                buttons.push(self.button("button_back", "b"));
            }
            buttons.push(self.button("button_menu", "m"));
        }
        buttons
    }

    fn slot(&self, name: &str) -> Option<String> {
        let profile = &self.s.profile;
        match name {
            "country" => profile.country.clone(),
            "sector" => profile.sector.clone(),
            "size" => profile.size.clone(),
            "stage" => profile.stage.clone(),
            "need" => self.s.slots.get("need").cloned(),
            "needs" => (!profile.needs.is_empty()).then(|| profile.needs.join(",")),
            other => self.s.slots.get(other).cloned(),
        }
    }

    fn set_slot(&mut self, name: &str, value: &str) {
        let profile = &mut self.s.profile;
        let field = match name {
            "country" => &mut profile.country,
            "sector" => &mut profile.sector,
            "size" => &mut profile.size,
            "stage" => &mut profile.stage,
            "need" => {
                self.s.slots.insert("need".into(), value.into());
                if !profile.needs.iter().any(|n| n == value) {
                    profile.needs.insert(0, value.to_string());
                    profile.needs.truncate(3);
                    let joined = profile.needs.join(",");
                    self.effects.push(Effect::ProfileSet { field: "needs".into(), value: Some(joined) });
                }
                return;
            }
            other => {
                self.s.slots.insert(other.to_string(), value.to_string());
                return;
            }
        };
        if field.as_deref() != Some(value) {
            *field = Some(value.to_string());
            self.effects.push(Effect::ProfileSet { field: name.to_string(), value: Some(value.to_string()) });
        }
    }

    fn clear_slot(&mut self, name: &str) {
        let profile = &mut self.s.profile;
        let field = match name {
            "country" => &mut profile.country,
            "sector" => &mut profile.sector,
            "size" => &mut profile.size,
            "stage" => &mut profile.stage,
            other => {
                self.s.slots.remove(other);
                return;
            }
        };
        if field.take().is_some() {
            self.effects.push(Effect::ProfileSet { field: name.to_string(), value: None });
        }
    }

    /// Fills `{slot}` placeholders with display names.
    fn fill_slots(&self, text: &str) -> String {
        let lang = self.lang();
        fill(text, |name| {
            let not_set = || self.msg("not_set", &[]);
            Some(match name {
                "needs" => {
                    if self.s.profile.needs.is_empty() {
                        not_set()
                    } else {
                        self.s
                            .profile
                            .needs
                            .iter()
                            .map(|n| self.content.term_name(VocabKind::Need, n, &lang))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                }
                _ => match (VocabKind::parse(name), self.slot(name)) {
                    (Some(kind), Some(v)) => self.content.term_name(kind, &v, &lang),
                    (None, Some(v)) => v,
                    (_, None) => not_set(),
                },
            })
        })
    }

    fn act(&mut self, action: &Action) {
        match action {
            Action::Recommend { need, kind } => {
                let need = need.clone().or_else(|| self.s.slots.get("need").cloned());
                self.recommend(need, *kind, 0);
            }
            Action::Show { entry } => self.show_card(entry, None),
            Action::Search { slot } => {
                let text = self.s.slots.get(slot).cloned().unwrap_or_default();
                self.question(&text);
            }
            Action::Handoff { slot } => {
                let text = slot.as_ref().and_then(|s| self.s.slots.get(s).cloned());
                self.handoff(text);
            }
            Action::Language => {
                let text = self.msg("language_choose", &[]);
                let buttons =
                    self.content.languages.iter().map(|l| Button { label: l.name.clone(), data: format!("l:{}", l.code) }).collect();
                self.replies.push(Reply { title: None, text, buttons });
                self.s.resume = self.before.clone();
            }
            Action::Forget => {
                self.effects.push(Effect::Forget);
                let lang = self.s.lang.clone();
                self.s = Session::new(&lang);
                let text = self.msg("forgotten", &[]);
                self.replies.push(Reply { title: None, text, buttons: vec![self.button("button_menu", "m")] });
            }
            Action::Back => self.back(),
            Action::Cancel => {
                self.s.at = None;
                self.s.stack.clear();
                self.s.slots.clear();
                let text = self.msg("cancelled", &[]);
                let buttons = vec![self.button("button_menu", "m")];
                self.replies.push(Reply { title: None, text, buttons });
            }
            Action::BroadcastDraft => {
                self.effects.push(Effect::BroadcastDraft(self.s.slots.clone()));
                self.s.slots.clear();
            }
            Action::Subscribe { active } => {
                let topics: Vec<String> = match self.s.slots.get("topic").map(String::as_str) {
                    Some(topic) if TOPICS.contains(&topic) => vec![topic.to_string()],
                    _ => TOPICS.iter().map(|t| t.to_string()).collect(),
                };
                self.effects.push(Effect::Subscription { active: *active, topics: topics.clone() });
                let text = if *active {
                    let names = topics.iter().map(|t| self.msg(&format!("topic_{t}"), &[])).collect::<Vec<_>>().join(", ");
                    self.msg("subscribed", &[("topics", &names)])
                } else {
                    self.msg("unsubscribed", &[])
                };
                self.replies.push(Reply { title: None, text, buttons: vec![self.button("button_menu", "m")] });
            }
        }
    }

    fn handoff(&mut self, text: Option<String>) {
        let text = text.or_else(|| self.s.last_question.clone());
        match text {
            Some(text) => {
                self.effects.push(Effect::Handoff { text: text.clone() });
                self.effects.push(Effect::Inquiry(Inquiry {
                    kind: InquiryKind::Handoff,
                    text,
                    matched: Vec::new(),
                    confidence: 0.0,
                    answered: false,
                    topic: None,
                }));
                let reply = self.msg("handoff_sent", &[]);
                self.replies.push(Reply { title: None, text: reply, buttons: vec![self.button("button_menu", "m")] });
                self.s.last_question = None;
            }
            None => {
                let reply = self.msg("handoff_empty", &[]);
                self.replies.push(Reply { title: None, text: reply, buttons: vec![self.button("button_menu", "m")] });
            }
        }
    }

    fn set_language(&mut self, code: &str) {
        let code = code.to_ascii_lowercase();
        match self.content.languages.iter().find(|l| l.code == code) {
            Some(language) => {
                let name = language.name.clone();
                self.s.lang = code.clone();
                self.effects.push(Effect::LanguageSet(code));
                let text = self.msg("language_set", &[("language", &name)]);
                // In the middle of a flow, the question the user was at is asked again in the new language.
                // Never back into a flow behind a role: that takes its command and a fresh role check.
                let resume = self.before.take().filter(|(at, stack)| {
                    !self.content.restricted(&at.flow)
                        && self.content.step(&at.target()).is_some()
                        && stack.iter().all(|p| self.content.step(&p.target()).is_some())
                });
                match resume {
                    Some((at, stack)) => {
                        self.replies.push(Reply { title: None, text, buttons: Vec::new() });
                        self.s.stack = stack;
                        self.enter_with(&at.target(), false);
                    }
                    None => self.replies.push(Reply { title: None, text, buttons: vec![self.button("button_menu", "m")] }),
                }
            }
            None => self.act(&Action::Language),
        }
    }

    fn recommend(&mut self, need: Option<String>, kind: Option<Kind>, offset: usize) {
        let lang = self.lang();
        let fits = recommend(self.content, &self.s.profile, need.as_deref(), kind);
        // A "more" button past the end (the profile or the content changed since it was shown):
        // start the list again rather than answer nothing.
        let offset = if offset < fits.len() { offset } else { 0 };
        let profile = self.profile_line(need.as_deref());
        if offset == 0 {
            // Nothing for the country or its region: say that these programmes work across countries.
            let local = fits.iter().any(|f| f.matches.iter().any(|(k, _)| matches!(k, VocabKind::Country | VocabKind::Region)));
            let key = match (fits.is_empty(), local, self.s.profile.country.is_some()) {
                (true, _, _) => "recommend_none",
                (false, false, true) => "recommend_intro_global",
                // No country (the owner went on without one): only what works anywhere.
                (false, _, false) => "recommend_intro_anywhere",
                (false, true, true) => "recommend_intro",
            };
            let text = self.msg(key, &[("profile", &profile)]);
            let buttons = if fits.is_empty() { self.menu_buttons() } else { Vec::new() };
            self.replies.push(Reply { title: None, text, buttons });
            let matched = fits.iter().take(PAGE_SIZE).map(|f| format!("entry:{}", self.content.entries[f.entry].id)).collect();
            let topic = need.clone().or_else(|| kind.map(|k| k.name().to_string()));
            self.effects.push(Effect::Inquiry(Inquiry {
                kind: InquiryKind::Recommendation,
                text: self.s.profile.describe(need.as_deref()),
                matched,
                confidence: 1.0,
                answered: !fits.is_empty(),
                topic,
            }));
        }
        if fits.is_empty() {
            return;
        }
        for fit in fits.iter().skip(offset).take(PAGE_SIZE) {
            let matches = fit.matches.iter().map(|(k, id)| self.content.term_name(*k, id, &lang)).collect::<Vec<_>>().join(", ");
            let why = match (fit.global, matches.is_empty()) {
                (true, true) => self.msg("why_global", &[]),
                (true, false) => self.msg("why_fits_global", &[("matches", &matches)]),
                (false, true) => self.msg("why_fits", &[("matches", &self.msg("anywhere", &[]))]),
                (false, false) => self.msg("why_fits", &[("matches", &matches)]),
            };
            let id = self.content.entries[fit.entry].id.clone();
            self.show_card(&id, Some(why));
        }
        let mut buttons = Vec::new();
        if fits.len() > offset + PAGE_SIZE {
            let data = format!("r:{}:{}:{}", need.as_deref().unwrap_or("-"), kind.map_or("-", |k| k.name()), offset + PAGE_SIZE);
            buttons.push(Button { label: self.msg("button_more", &[]), data });
        }
        buttons.extend(self.menu_buttons());
        let text = self.msg("recommend_end", &[]);
        self.replies.push(Reply { title: None, text, buttons });
    }

    fn profile_line(&self, need: Option<&str>) -> String {
        let lang = self.lang();
        let p = &self.s.profile;
        let mut parts = Vec::new();
        if let Some(c) = &p.country {
            parts.push(self.content.term_name(VocabKind::Country, c, &lang));
        }
        if let Some(s) = &p.sector {
            parts.push(self.content.term_name(VocabKind::Sector, s, &lang));
        }
        if let Some(s) = &p.size {
            parts.push(self.content.term_name(VocabKind::Size, s, &lang));
        }
        if let Some(n) = need {
            parts.push(self.content.term_name(VocabKind::Need, n, &lang));
        }
        if parts.is_empty() { self.msg("anywhere", &[]) } else { parts.join(", ") }
    }

    /// A short card: name, labels (for agencies, general guidance), provider, summary, why it fits,
    /// the status, the money-safety note, and buttons for the details, a successor and the link.
    /// `why` is the whole "why it fits" line.
    fn show_card(&mut self, id: &str, why: Option<String>) {
        self.show_card_for(id, why, Ask::General);
    }

    /// A card that leads with what the question asked: the provider ("who runs it") or how to
    /// approach it ("how do I apply"), then the summary.
    fn show_card_for(&mut self, id: &str, why: Option<String>, ask: Ask) {
        let Some(entry) = self.content.entry(id) else { return };
        let lang = self.lang();
        let text = self.content.entry_text(entry, &lang);
        let mut body = Vec::new();
        // "How do I apply": how to approach it comes first.
        if ask == Ask::Approach {
            body.push(self.msg("lead_approach", &[("approach", &text.approach)]));
        }
        if entry.audience == Audience::Agency {
            body.push(self.msg("label_agency", &[]));
        }
        if entry.general {
            body.push(self.msg("label_general", &[]));
        }
        // "Who runs it": the provider line says so.
        let provider_key = if ask == Ask::Provider { "lead_provider" } else { "provider_line" };
        body.push(self.msg(provider_key, &[("provider", &text.provider)]));
        body.push(text.summary.clone());
        if let Some(business) = text.business.as_deref().filter(|_| entry.audience == Audience::Agency) {
            body.push(self.msg("business_line", &[("business", business)]));
        }
        if let Some(why) = why {
            body.push(why);
        }
        body.extend(self.status_lines(entry));
        if entry.talks_money() {
            body.push(self.msg("financing_disclaimer", &[]));
        }
        let mut buttons = vec![self.button("button_details", &format!("d:{}", entry.id))];
        buttons.extend(self.entry_buttons(entry));
        self.replies.push(Reply { title: Some(text.name.clone()), text: body.join("\n"), buttons });
    }

    /// The status of a programme from the report: whether it still runs, when that was checked, and
    /// what replaced it. Nothing for programme calls, which are current by nature, nor for guides,
    /// which are advice and no programme that could stop.
    fn status_lines(&self, entry: &Entry) -> Vec<String> {
        if entry.is_call() || entry.is_guide() {
            return Vec::new();
        }
        let lang = self.lang();
        let checked = entry.status_checked.as_deref();
        let mut lines = vec![match (entry.status, checked) {
            (Some(Status::Ended), Some(date)) => self.msg("status_ended", &[("checked", date)]),
            (Some(Status::Ended), None) => self.msg("status_ended_unchecked", &[]),
            (Some(Status::Active), Some(date)) => self.msg("status_active", &[("checked", date)]),
            (Some(Status::Unknown), Some(date)) => self.msg("status_unknown", &[("checked", date)]),
            _ => self.msg("status_not_checked", &[]),
        }];
        if entry.status == Some(Status::Ended) {
            let text = self.content.entry_text(entry, &lang);
            let successor = match (&text.successor, entry.successor.as_deref().and_then(|s| self.content.entry(s))) {
                (Some(sentence), _) => Some(sentence.clone()),
                (None, Some(next)) => Some(self.content.entry_text(next, &lang).name.clone()),
                (None, None) => None,
            };
            if let Some(successor) = successor {
                lines.push(self.msg("status_successor", &[("successor", &successor)]));
            }
        }
        lines
    }

    /// A button to the entry that replaced an ended one, and the official link.
    fn entry_buttons(&self, entry: &Entry) -> Vec<Button> {
        let lang = self.lang();
        let mut buttons = Vec::new();
        if entry.status == Some(Status::Ended)
            && let Some(next) = entry.successor.as_deref().and_then(|s| self.content.entry(s))
        {
            buttons.push(Button { label: self.content.entry_text(next, &lang).short.clone(), data: format!("e:{}", next.id) });
        }
        if let Some(link) = entry.link.as_deref().filter(|l| l.starts_with(LINK_PREFIX)) {
            buttons.push(Button { label: self.msg("button_link", &[]), data: link.to_string() });
        }
        buttons
    }

    fn show_details(&mut self, id: &str) {
        let Some(entry) = self.content.entry(id) else { return };
        let lang = self.lang();
        let text = self.content.entry_text(entry, &lang);
        let mut body = Vec::new();
        if entry.audience == Audience::Agency {
            body.push(self.msg("label_agency", &[]));
        }
        if entry.general {
            body.push(self.msg("label_general", &[]));
        }
        body.extend([
            format!("{}\n{}", self.msg("details_offers", &[]), text.offers),
            format!("{}\n{}", self.msg("details_eligible", &[]), text.eligible),
            format!("{}\n{}", self.msg("details_approach", &[]), text.approach),
        ]);
        if let Some(tip) = &text.tip {
            body.push(format!("{}\n{}", self.msg("details_tip", &[]), tip));
        }
        if entry.talks_money() {
            body.push(self.msg("financing_disclaimer", &[]));
        }
        let status = self.status_lines(entry);
        if !status.is_empty() {
            body.push(status.join("\n"));
        }
        if entry.is_call() {
            // A programme call published through the advisor, not a fact from the report.
            body.push(self.msg("call_source_line", &[("document", &entry.document)]));
        } else if entry.general {
            body.push(self.msg("general_source_line", &[("reviewed", &entry.reviewed)]));
        } else {
            let mut places = Vec::new();
            if !entry.paragraphs.is_empty() {
                let paragraphs = entry.paragraphs.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
                places.push(self.msg("source_paragraphs", &[("paragraphs", &paragraphs)]));
            }
            if entry.annex {
                places.push(self.msg("source_annex", &[]));
            }
            let place = places.join(", ");
            body.push(self.msg("source_line", &[("document", &entry.document), ("place", &place), ("reviewed", &entry.reviewed)]));
        }
        let mut buttons = self.entry_buttons(entry);
        buttons.extend(self.menu_buttons());
        self.replies.push(Reply { title: Some(text.name.clone()), text: body.join("\n\n"), buttons });
    }
}

/// The first sentence of a text (up to the first full stop followed by a space), for compact lines.
fn first_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(end) => &text[..=end],
        None => text,
    }
}
