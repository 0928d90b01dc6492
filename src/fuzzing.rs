//! Deterministic drivers shared by the fuzz targets in `fuzz/` and the tests: arbitrary bytes become a
//! conversation with the engine, or a content file for the loader, and every invariant is checked.
//!
//! Nothing here runs in the bot. [`EngineFuzz`] decodes bytes into [`Choice`]s (biased toward
//! meaningful input: buttons of the previous replies, known commands, real deep-link payloads,
//! phrases of the content, forged button data, huge and odd text), plays them through
//! [`engine::step`] and checks the [`Invariant`]s after every step. [`LoaderFuzz`] feeds bytes to
//! [`content::from_sources`] as one file and checks that every diagnostic is a well-formed
//! `path:line:col: message` line. A broken invariant panics with a message naming it: that is what
//! libFuzzer reports, and what the replay tests in `tests/it/fuzz_replay.rs` show.

use std::collections::{BTreeSet, HashSet};

use crate::content::{self, Content, MAX_BUTTON_DATA_BYTES, MAX_TEXT_CHARS, SourceFile};
use crate::engine::{self, Input, Position, Session, Step, Timestamp};

/// The most turns one fuzz input plays.
pub const MAX_TURNS: usize = 64;
/// The clock at the first turn; each input advances it by a second, [`Choice::Wait`] by more.
pub const START_TIME: Timestamp = 1_800_000_000;
/// How many distinct buttons a conversation remembers for [`Choice::PressOld`].
const MAX_SHOWN: usize = 512;

/// A reader over fuzz bytes that yields zeros once they run out, so any bytes decode.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// Two bytes as an index; taken modulo the length of whatever it indexes.
    pub fn index(&mut self) -> usize {
        usize::from(u16::from_le_bytes([self.byte(), self.byte()]))
    }

    /// A length byte and that many bytes, as text (invalid UTF-8 replaced).
    pub fn string(&mut self) -> String {
        let len = usize::from(self.byte());
        let start = self.pos.min(self.data.len());
        let end = (start + len).min(self.data.len());
        self.pos = start + len;
        String::from_utf8_lossy(&self.data[start..end]).into_owned()
    }
}

/// One thing the simulated user does. Indexes are taken modulo the length of what they index, so
/// every value is meaningful.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Press a button of the latest replies that had buttons.
    Press(usize),
    /// Press any button shown earlier in the conversation (an old message).
    PressOld(usize),
    /// Press "back".
    Back,
    /// Type a phrase of the content: a term's name or synonym, an example question, a label, an odd string.
    Phrase(usize),
    /// Type any text.
    Text(String),
    /// Type a huge text: the string repeated up to this many characters.
    Huge(String, usize),
    /// A command whose name is the string repeated up to this many characters.
    HugeCommand(String, usize),
    /// A known command (including `/start` and `/language`) with arguments.
    Command(usize, String),
    /// A command with any name.
    RawCommand(String, String),
    /// `/start` with the id of a real entry or flow as deep-link payload.
    StartKnown(usize),
    /// `/start` with any payload, or none.
    StartRaw(Option<String>),
    /// The data of a known button with its last part replaced.
    Forge(usize, String),
    /// Any button data.
    RawButton(String),
    /// A sticker, photo or the like.
    Unsupported(String),
    /// A command behind a role, after the front end checked that the user holds it.
    Authorized(usize),
    /// Time passes before the next input, in seconds.
    Wait(i64),
}

impl Choice {
    /// Decodes bytes into at most [`MAX_TURNS`] choices.
    pub fn decode(data: &[u8]) -> Vec<Choice> {
        let mut b = Bytes::new(data);
        let mut out = Vec::new();
        while !b.is_empty() && out.len() < MAX_TURNS {
            let choice = match b.byte() % 32 {
                0..=10 => Choice::Press(b.index()),
                11..=12 => Choice::PressOld(b.index()),
                13 => Choice::Back,
                14..=17 => Choice::Phrase(b.index()),
                18..=19 => Choice::Text(b.string()),
                20 => {
                    let (unit, chars) = (b.string(), usize::from(b.byte()) * 400);
                    if b.byte().is_multiple_of(4) { Choice::HugeCommand(unit, chars) } else { Choice::Huge(unit, chars) }
                }
                21..=22 => Choice::Command(b.index(), b.string()),
                23 => Choice::RawCommand(b.string(), b.string()),
                24 => Choice::StartKnown(b.index()),
                25 => Choice::StartRaw((b.byte() % 2 == 1).then(|| b.string())),
                26..=27 => Choice::Forge(b.index(), b.string()),
                28 => Choice::RawButton(b.string()),
                29 => Choice::Unsupported(b.string()),
                30 => Choice::Authorized(b.index()),
                _ => Choice::Wait(i64::from(u16::from_le_bytes([b.byte(), b.byte()])) * 60),
            };
            out.push(choice);
        }
        out
    }
}

/// Odd strings typed now and then, beside the content's own phrases.
const ODD_TEXTS: &[&str] = &[
    "",
    " ",
    "\n\t",
    "b",
    "1",
    "0",
    "-",
    "back",
    "menu",
    "{country}",
    "{{}}",
    "%s <b>&amp;",
    "🙂🙂🙂",
    "\u{0000}\u{202e}\u{200b}",
    "قرض للمزارعين",
    "e\u{301}\u{301}\u{301}",
    "ǅ İ ß ﬀ",
];

/// What a conversation can refer to, gathered once from the content.
struct Dict {
    phrases: Vec<String>,
    commands: Vec<String>,
    role_commands: Vec<String>,
    payloads: Vec<String>,
    data: Vec<String>,
}

impl Dict {
    fn new(content: &Content) -> Dict {
        let mut phrases: BTreeSet<String> = ODD_TEXTS.iter().map(|s| s.to_string()).collect();
        for term in &content.vocab.terms {
            phrases.extend(term.name.values().cloned());
            phrases.extend(term.synonyms.values().flatten().cloned());
        }
        for entry in &content.entries {
            for text in entry.texts.values() {
                phrases.insert(text.name.clone());
                phrases.insert(text.short.clone());
                phrases.extend(text.examples.iter().map(|(_, e)| e.clone()));
            }
        }
        for intent in &content.intents {
            phrases.extend(intent.examples.values().flatten().map(|(_, e)| e.clone()));
            phrases.extend(intent.keywords.values().flatten().cloned());
        }
        for flow in content.flows.values() {
            for step in &flow.steps {
                phrases.extend(step.buttons.iter().flat_map(|b| b.label.values().cloned()));
            }
        }
        let mut commands: Vec<String> = content.commands.keys().cloned().collect();
        commands.extend(["start".to_string(), "language".to_string()]);
        let role_commands = content.commands.values().filter(|c| c.role.is_some()).map(|c| c.name.clone()).collect();
        let mut payloads: Vec<String> = content.entries.iter().map(|e| e.id.clone()).collect();
        payloads.extend(content.flows.keys().cloned());
        let mut data: Vec<String> = ["m", "b", "x", "h", "u", "v:1", "r:-:-:0"].iter().map(|s| s.to_string()).collect();
        data.extend(content.flows.keys().map(|f| format!("f:{f}")));
        data.extend(content.entries.iter().flat_map(|e| [format!("e:{}", e.id), format!("d:{}", e.id)]));
        data.extend(content.intents.iter().map(|i| format!("i:{}", i.id)));
        data.extend(content.languages.iter().map(|l| format!("l:{}", l.code)));
        for need in content.vocab.of_kind(content::VocabKind::Need) {
            data.push(format!("r:{}:-:0", need.id));
        }
        Dict { phrases: phrases.into_iter().collect(), commands, role_commands, payloads, data }
    }
}

fn pick<T: Clone>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()].clone())
}

/// One step of a played conversation.
#[derive(Clone, Debug)]
pub struct Turn {
    /// The turn's number in the conversation, from 0.
    pub number: usize,
    pub before: Session,
    pub input: Input,
    pub now: Timestamp,
    /// The input pressed a button that an earlier reply showed.
    pub old_button: bool,
    pub step: Step,
}

/// Plays decoded choices through the engine over one content.
pub struct EngineFuzz<'c> {
    content: &'c Content,
    dict: Dict,
}

impl<'c> EngineFuzz<'c> {
    pub fn new(content: &'c Content) -> Self {
        EngineFuzz { content, dict: Dict::new(content) }
    }

    /// Decodes the bytes, plays them and checks every invariant after every step; panics with the
    /// broken invariant, for libFuzzer.
    pub fn run(&self, data: &[u8]) {
        if let Err(problem) = self.check(data) {
            panic!("{problem}");
        }
    }

    /// [`EngineFuzz::run`] that returns the first broken invariant instead of panicking.
    pub fn check(&self, data: &[u8]) -> Result<(), String> {
        let mut checker = Checker::new(self.content);
        let mut result = Ok(());
        self.play(&Choice::decode(data), |turn| {
            if result.is_ok() {
                result = checker.check_all(turn);
            }
        });
        result
    }

    /// Plays the choices from a fresh session, calling `each` after every step.
    pub fn play(&self, choices: &[Choice], mut each: impl FnMut(&Turn)) {
        let mut session = Session::new(content::DEFAULT_LANG);
        let mut now = START_TIME;
        let mut latest: Vec<String> = vec!["m".into()];
        let mut shown: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut number = 0;
        for choice in choices {
            let input = match choice {
                Choice::Wait(secs) => {
                    now += secs;
                    continue;
                }
                Choice::Press(i) => Input::Button(pick(&latest, *i).unwrap_or_else(|| "m".into())),
                Choice::PressOld(i) => Input::Button(pick(&shown, *i).unwrap_or_else(|| "m".into())),
                Choice::Back => Input::Button("b".into()),
                Choice::Phrase(i) => Input::Text(pick(&self.dict.phrases, *i).unwrap_or_default()),
                Choice::Text(text) => Input::Text(text.clone()),
                Choice::Huge(unit, chars) => Input::Text(repeat(unit, "credit ", *chars)),
                Choice::HugeCommand(unit, chars) => Input::Command { name: repeat(unit, "x", *chars), args: String::new() },
                Choice::Command(i, args) => Input::Command { name: pick(&self.dict.commands, *i).unwrap_or_default(), args: args.clone() },
                Choice::RawCommand(name, args) => Input::Command { name: name.clone(), args: args.clone() },
                Choice::StartKnown(i) => Input::Start { payload: pick(&self.dict.payloads, *i) },
                Choice::StartRaw(payload) => Input::Start { payload: payload.clone() },
                Choice::Forge(i, tail) => {
                    let all: Vec<&String> = self.dict.data.iter().chain(&shown).collect();
                    let base = pick(&all, *i).map(|s| s.to_string()).unwrap_or_default();
                    let head = base.rfind(':').map_or(base.as_str(), |at| &base[..=at]);
                    let sep = if head.ends_with(':') { "" } else { ":" };
                    Input::Button(format!("{head}{sep}{tail}"))
                }
                Choice::RawButton(data) => Input::Button(data.clone()),
                Choice::Unsupported(kind) => Input::Unsupported(kind.clone()),
                Choice::Authorized(i) => Input::Authorized { name: pick(&self.dict.role_commands, *i).unwrap_or_default() },
            };
            let old_button =
                matches!(choice, Choice::Press(_) | Choice::PressOld(_)) && matches!(&input, Input::Button(d) if seen.contains(d));
            let step = engine::step(self.content, &session, &input, now);
            // A link button opens an address and sends nothing back, so no one can press it here.
            let buttons: Vec<String> =
                step.replies.iter().flat_map(|r| r.buttons.iter().filter(|b| !b.is_link()).map(|b| b.data.clone())).collect();
            if !buttons.is_empty() {
                latest = buttons.clone();
            }
            for data in buttons {
                if shown.len() < MAX_SHOWN && seen.insert(data.clone()) {
                    shown.push(data);
                }
            }
            let turn = Turn { number, before: session, input, now, old_button, step };
            each(&turn);
            session = turn.step.session;
            now += 1;
            number += 1;
        }
    }
}

/// The engine's promises, checked after each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// Every input gets at least one reply (but a finished programme-call draft, which the front end
    /// answers with its preview), and every reply (title and text) is 1 to 4096 characters.
    Replies,
    /// Every button has a label and 1 to 64 bytes of data that the engine understands when pressed,
    /// then or later (no "this menu has changed"); a link button opens an address on a listed domain.
    Buttons,
    /// The session waits at a step that exists, and every step on its back stack exists.
    Session,
    /// After a step that moved the session forward, "back" returns to where it was.
    Back,
    /// A flow that only a role's command opens is entered only through `Input::Authorized`.
    RoleFlows,
}

impl Invariant {
    pub const ALL: [Invariant; 5] = [Invariant::Replies, Invariant::Buttons, Invariant::Session, Invariant::Back, Invariant::RoleFlows];
}

/// Checks the invariants of turns over one content; remembers which button data it already
/// pressed, so a conversation pays for each button once.
pub struct Checker<'c> {
    content: &'c Content,
    menu_changed: Vec<String>,
    understood: HashSet<(String, Option<String>)>,
}

impl<'c> Checker<'c> {
    pub fn new(content: &'c Content) -> Self {
        let menu_changed = content.languages.iter().map(|l| content.message("menu_changed", &l.code, &[])).collect();
        Checker { content, menu_changed, understood: HashSet::new() }
    }

    pub fn check_all(&mut self, turn: &Turn) -> Result<(), String> {
        Invariant::ALL.into_iter().try_for_each(|invariant| self.check(turn, invariant))
    }

    /// `Err` names the invariant, the turn and the input.
    pub fn check(&mut self, turn: &Turn, invariant: Invariant) -> Result<(), String> {
        let result = match invariant {
            Invariant::Replies => self.replies(turn),
            Invariant::Buttons => self.buttons(turn),
            Invariant::Session => self.session(&turn.step.session),
            Invariant::Back => self.back(turn),
            Invariant::RoleFlows => self.role_flows(turn),
        };
        result.map_err(|problem| {
            format!(
                "invariant {invariant:?} broken at turn {}: {problem}\n  input: {}\n  session before: at {:?}, stack {:?}",
                turn.number,
                shorten(&format!("{:?}", turn.input)),
                turn.before.at,
                turn.before.stack
            )
        })
    }

    fn replies(&self, turn: &Turn) -> Result<(), String> {
        // A finished programme-call draft is answered by the front end, with its preview.
        let draft = turn.step.effects.iter().any(|e| matches!(e, engine::Effect::BroadcastDraft(_)));
        if turn.step.replies.is_empty() && !draft {
            return Err("no reply".into());
        }
        for reply in &turn.step.replies {
            let chars = reply.title.as_ref().map_or(0, |t| t.chars().count() + 1) + reply.text.chars().count();
            if reply.text.is_empty() || chars > MAX_TEXT_CHARS {
                return Err(format!("a reply of {chars} characters: {}", shorten(&reply.text)));
            }
        }
        Ok(())
    }

    fn is_menu_changed(&self, step: &Step) -> bool {
        step.replies.iter().any(|r| self.menu_changed.contains(&r.text))
    }

    /// A flow that role commands open and no public command does (such as `broadcast`).
    fn role_only(&self, flow: &str) -> bool {
        let commands = || self.content.commands.values().filter(|c| c.goto.flow == flow);
        commands().any(|c| c.role.is_some()) && commands().all(|c| c.role.is_some())
    }

    /// Data of a button inside a role-only flow: pressed outside that flow, it is rightly refused.
    /// A button of a flow behind a role, pressed outside that flow, or after the flow expired
    /// (`FLOW_TIMEOUT_SECS` idle): refused by design, since only its command re-opens the flow.
    fn role_button(&self, data: &str, session: &Session, now: Timestamp) -> bool {
        let expired = now - session.updated > engine::FLOW_TIMEOUT_SECS;
        let mut parts = data.split(':');
        match (parts.next(), parts.next()) {
            (Some("s" | "f"), Some(flow)) => self.role_only(flow) && (expired || session.at.as_ref().is_none_or(|p| p.flow != flow)),
            _ => false,
        }
    }

    fn buttons(&mut self, turn: &Turn) -> Result<(), String> {
        let after = &turn.step.session;
        for button in turn.step.replies.iter().flat_map(|r| &r.buttons) {
            let data = &button.data;
            if button.label.trim().is_empty() {
                return Err(format!("button `{data}` has no label"));
            }
            // A link opens an address on a listed official domain; it sends nothing back.
            if button.is_link() {
                let listed = crate::content::link_host(data).is_some_and(|h| self.content.links.iter().any(|l| l.covers(&h)));
                if !listed {
                    return Err(format!("link button `{}` is not on a domain of knowledge/links.toml", shorten(data)));
                }
                continue;
            }
            if data.is_empty() || data.len() > MAX_BUTTON_DATA_BYTES {
                return Err(format!("button data of {} bytes: `{}`", data.len(), shorten(data)));
            }
            let key = (data.clone(), data.starts_with("s:").then(|| after.at.as_ref().map(|p| p.flow.clone())).flatten());
            if self.understood.contains(&key) {
                continue;
            }
            let pressed = engine::step(self.content, after, &Input::Button(data.clone()), turn.now);
            if self.is_menu_changed(&pressed) {
                return Err(format!("button `{data}` (\"{}\") is not understood when pressed", button.label));
            }
            self.understood.insert(key);
        }
        if turn.old_button
            && let Input::Button(data) = &turn.input
            && self.is_menu_changed(&turn.step)
            && !self.role_button(data, &turn.before, turn.now)
        {
            return Err(format!("button `{data}` of an earlier reply is no longer understood"));
        }
        Ok(())
    }

    fn session(&self, session: &Session) -> Result<(), String> {
        if let Some(at) = &session.at {
            match self.content.step(&at.target()) {
                None => return Err(format!("the session waits at {at:?}, which does not exist")),
                Some(def) if !def.waits() => return Err(format!("the session waits at {at:?}, which asks nothing")),
                Some(_) => {}
            }
        }
        if let Some(p) = session.stack.iter().find(|p| self.content.step(&p.target()).is_none()) {
            return Err(format!("the back stack holds {p:?}, which does not exist"));
        }
        Ok(())
    }

    fn back(&self, turn: &Turn) -> Result<(), String> {
        let (before, after) = (&turn.before, &turn.step.session);
        let (Some(from), Some(to)) = (&before.at, &after.at) else { return Ok(()) };
        if from == to {
            return Ok(());
        }
        // Forward: the step answered is now on top of the stack, over the stack as it was (the
        // oldest position drops out of a full stack).
        let grew = after.stack.split_last().is_some_and(|(top, rest)| {
            top == from && (rest == before.stack.as_slice() || (!before.stack.is_empty() && rest == &before.stack[1..]))
        });
        // An answer to the waiting step, by its own button, that stays in the flow.
        let answered =
            to.flow == from.flow && matches!(&turn.input, Input::Button(d) if d.starts_with(&format!("s:{}:{}:", from.flow, from.step)));
        if !grew && !answered {
            return Ok(());
        }
        if after.stack.last() != Some(from) {
            return Err(format!("moved from {} to {} but the back stack does not hold {}", show(from), show(to), show(from)));
        }
        let back = engine::step(self.content, after, &Input::Button("b".into()), turn.now);
        let expected = &after.stack[..after.stack.len() - 1];
        if back.session.at.as_ref() != Some(from) || back.session.stack != expected {
            return Err(format!(
                "moved from {} to {}, but back went to {:?} with stack {:?}",
                show(from),
                show(to),
                back.session.at.as_ref().map(show),
                back.session.stack.iter().map(show).collect::<Vec<_>>()
            ));
        }
        Ok(())
    }

    fn role_flows(&self, turn: &Turn) -> Result<(), String> {
        let Some(at) = &turn.step.session.at else { return Ok(()) };
        if !self.role_only(&at.flow) || matches!(turn.input, Input::Authorized { .. }) {
            return Ok(());
        }
        if turn.before.at.as_ref().is_some_and(|p| p.flow == at.flow) {
            return Ok(());
        }
        Err(format!("entered {}, a flow only a role's command opens", show(at)))
    }
}

/// `unit` (or `default` when it is empty) repeated to `chars` characters.
fn repeat(unit: &str, default: &str, chars: usize) -> String {
    let unit = if unit.is_empty() { default } else { unit };
    unit.chars().cycle().take(chars).collect()
}

fn show(p: &Position) -> String {
    format!("{}.{}", p.flow, p.step)
}

fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}... ({} characters)", text.chars().count())
    }
}

/// Where the fuzzed bytes go in the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Alone, as the only file: a dialogs file.
    AloneDialogs,
    /// Alone, as the only file: the vocabulary.
    AloneVocabulary,
    /// Alone, as the only file: a knowledge entry.
    AloneEntry,
    /// Beside the base content, as a new dialogs file.
    NewDialogs,
    /// Beside the base content, as a new knowledge entry.
    NewEntry,
    /// In place of one file of the base content (the second byte picks which).
    Replace(usize),
}

/// Feeds arbitrary bytes to the content loader as one file beside a base content.
pub struct LoaderFuzz {
    base: Vec<SourceFile>,
}

impl LoaderFuzz {
    /// `base` is a valid content (the shipped one), with paths under `dialogs/` and `knowledge/`.
    pub fn new(base: Vec<SourceFile>) -> Self {
        LoaderFuzz { base }
    }

    /// How the bytes are read: the first byte picks the placement (the second, for a replacement,
    /// which file), the rest is the file's text (invalid UTF-8 replaced: the program reads files as
    /// UTF-8 and reports one that is not). Alone, a file is parsed and checked in about a
    /// millisecond; beside the base, valid content also builds the index and self-tests every
    /// example, which is slower, so alone placements are the more frequent.
    pub fn decode(&self, data: &[u8]) -> (Placement, String) {
        let mut b = Bytes::new(data);
        let placement = match b.byte() % 16 {
            0..=4 => Placement::AloneDialogs,
            5..=6 => Placement::AloneVocabulary,
            7..=8 => Placement::AloneEntry,
            9..=10 => Placement::NewDialogs,
            11..=12 => Placement::NewEntry,
            _ => Placement::Replace(usize::from(b.byte()) % self.base.len().max(1)),
        };
        let rest = data.get(b.pos.min(data.len())..).unwrap_or_default();
        (placement, String::from_utf8_lossy(rest).into_owned())
    }

    /// The files the loader gets for these bytes.
    pub fn files(&self, data: &[u8]) -> Vec<SourceFile> {
        let (placement, text) = self.decode(data);
        let file = |path: &str| SourceFile { path: path.into(), text: text.clone() };
        match placement {
            Placement::AloneDialogs => vec![file("dialogs/fuzz.toml")],
            Placement::AloneVocabulary => vec![file("knowledge/vocabulary.toml")],
            Placement::AloneEntry => vec![file("knowledge/entries/fuzz.toml")],
            Placement::NewDialogs | Placement::NewEntry => {
                let path = if placement == Placement::NewDialogs { "dialogs/fuzz.toml" } else { "knowledge/entries/fuzz.toml" };
                let mut files = self.base.clone();
                files.push(file(path));
                files
            }
            Placement::Replace(i) => {
                let mut files = self.base.clone();
                if let Some(f) = files.get_mut(i) {
                    f.text = text;
                }
                files
            }
        }
    }

    /// Loads the bytes' files and checks the outcome; panics with the problem, for libFuzzer.
    pub fn run(&self, data: &[u8]) {
        if let Err(problem) = self.check(data) {
            panic!("{problem}");
        }
    }

    /// [`LoaderFuzz::run`] that returns the problem instead of panicking.
    pub fn check(&self, data: &[u8]) -> Result<(), String> {
        check_load(&self.files(data))
    }
}

/// Loads files as the program does (`dialogs/...` are dialog files). Diagnostics must each be one
/// `path:line:col: message` line pointing into a file that was given; valid content must run a
/// first turn and answer each of its buttons with a session at an existing step.
pub fn check_load(files: &[SourceFile]) -> Result<(), String> {
    match content::from_sources(files, |p| p.starts_with("dialogs/")) {
        Ok(content) => {
            let checker = Checker::new(&content);
            let first = engine::step(&content, &Session::new(content::DEFAULT_LANG), &Input::Start { payload: None }, START_TIME);
            checker.session(&first.session)?;
            for button in first.replies.iter().flat_map(|r| &r.buttons) {
                let next = engine::step(&content, &first.session, &Input::Button(button.data.clone()), START_TIME + 1);
                checker.session(&next.session)?;
            }
            Ok(())
        }
        Err(diags) => {
            if diags.is_empty() {
                return Err("the loader refused the content without a diagnostic".into());
            }
            diags.iter().try_for_each(|d| well_formed(d, files))
        }
    }
}

fn well_formed(diag: &content::Diagnostic, files: &[SourceFile]) -> Result<(), String> {
    let line = diag.to_string();
    let bad = |why: &str| Err(format!("diagnostic {why}: {}", shorten(&format!("{line:?}"))));
    if line.contains('\n') || line.contains('\r') {
        return bad("spans several lines");
    }
    if diag.message.trim().is_empty() {
        return bad("has no message");
    }
    if diag.loc.path.is_empty() || !line.starts_with(&format!("{}:{}:{}: ", diag.loc.path, diag.loc.line, diag.loc.col)) {
        return bad("does not start with path:line:col");
    }
    let Some(file) = files.iter().find(|f| f.path == diag.loc.path) else {
        // A missing file or folder is named at its start.
        if (diag.loc.line, diag.loc.col) == (1, 1) {
            return Ok(());
        }
        return bad("points into a file that was not given to the loader");
    };
    // Lines as an editor counts them: split at `\n` only, the last one possibly empty.
    let Some(text_line) = file.text.split('\n').nth(diag.loc.line.wrapping_sub(1)) else {
        return bad("points past the last line");
    };
    if diag.loc.col == 0 || diag.loc.col > text_line.chars().count() + 1 {
        return bad("points past the end of its line");
    }
    Ok(())
}

/// The content files under `root` (`dialogs/` and `knowledge/`) with paths relative to it, as the
/// loader gets them; for the fuzz targets and tests.
pub fn read_sources(root: &std::path::Path) -> Vec<SourceFile> {
    let mut files = match content::read_dirs(&root.join("dialogs"), &root.join("knowledge")) {
        Ok(files) => files,
        Err(diags) => panic!("cannot read the content under {}: {diags:?}", root.display()),
    };
    for f in &mut files {
        if let Ok(relative) = std::path::Path::new(&f.path).strip_prefix(root) {
            f.path = relative.display().to_string();
        }
    }
    files
}

/// Loads sources that must be valid, as the program does.
pub fn load_valid(files: &[SourceFile]) -> Content {
    match content::from_sources(files, |p| p.starts_with("dialogs/")) {
        Ok(content) => content,
        Err(diags) => panic!("the content is invalid: {}", diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")),
    }
}
