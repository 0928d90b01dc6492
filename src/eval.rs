//! The evaluation set (`tests/eval/*.tsv`): parsing, scoring the matcher on it, the report and the targets.
//!
//! Each line is `split<TAB>topic<TAB>expected<TAB>question`; `expected` lists acceptable entry ids
//! (or `intent:<id>`), or says `decline`. A question counts as right when the advisor's top
//! document (the answer, or the first of the documents it offers) is acceptable, or when it declines
//! a question that expects `decline` (or answers it with small talk, such as the greeting's menu,
//! which names no programme). Pure: the caller reads the files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::content::{Content, Diagnostic, Loc};
use crate::matching::{Asker, Doc, Match, Ranking, THRESHOLDS, Thresholds};

/// Targets on the test split (issue 11).
pub const TARGET_ACCURACY: f32 = 0.90;
pub const TARGET_CONFIDENT_WRONG: f32 = 0.03;
pub const TARGET_OOD_DECLINED: f32 = 1.0;

/// One question of the set.
#[derive(Clone, Debug)]
pub struct Question {
    pub loc: Loc,
    pub lang: String,
    pub split: String,
    pub topic: String,
    /// Acceptable document names (`entry:<id>`, `intent:<id>`); empty for `decline`.
    pub expected: Vec<String>,
    pub text: String,
}

/// Parses one file of the set; `lang` is the language of its questions (the file's name).
pub fn parse(path: &str, lang: &str, text: &str) -> Result<Vec<Question>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let loc = Loc { path: path.to_string(), line: n + 1, col: 1 };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 4 {
            diags.push(Diagnostic { loc, message: format!("expected 4 tab-separated columns, found {}", cols.len()) });
            continue;
        }
        let split = cols[0].trim();
        if split != "dev" && split != "test" {
            diags.push(Diagnostic { loc, message: format!("split must be `dev` or `test`, not `{split}`") });
            continue;
        }
        let expected = cols[2].trim();
        let expected: Vec<String> = if expected == "decline" {
            Vec::new()
        } else {
            expected
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(|e| if e.contains(':') { e.to_string() } else { format!("entry:{e}") })
                .collect()
        };
        out.push(Question {
            loc,
            lang: lang.to_string(),
            split: split.to_string(),
            topic: cols[1].trim().to_string(),
            expected,
            text: cols[3].to_string(),
        });
    }
    if diags.is_empty() { Ok(out) } else { Err(diags) }
}

/// Expected ids that name no entry or intent of the content.
pub fn unknown_ids(content: &Content, questions: &[Question]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for q in questions {
        for e in &q.expected {
            let known = match e.split_once(':') {
                Some(("entry", id)) => content.entry(id).is_some(),
                Some(("intent", id)) => content.intent(id).is_some(),
                _ => false,
            };
            if !known {
                diags.push(Diagnostic { loc: q.loc.clone(), message: format!("`{e}` names no entry or intent of the content") });
            }
        }
    }
    diags
}

/// What the advisor did with one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Right,
    /// Answered (a card) with a document that is not acceptable, or answered an out-of-domain question.
    ConfidentWrong,
    /// Offered documents, the first not acceptable (or any, for an out-of-domain question).
    ChoiceWrong,
    /// Declined a question it should have answered.
    Declined,
}

/// One question's result.
#[derive(Clone, Debug)]
pub struct Graded<'q> {
    pub question: &'q Question,
    pub outcome: Outcome,
    pub shown: String,
    /// Whether the right answer came as a card (not a choice).
    pub direct: bool,
    /// The best document's evidence over the null model, and its margin over the runner-up.
    pub evidence: f32,
    pub margin: f32,
}

/// Ranks every question once; decisions under different thresholds reuse the rankings.
pub fn rank_all(content: &Content, questions: &[Question]) -> Vec<Ranking> {
    questions.iter().map(|q| content.index.rank(&q.text, &Asker::lang(&q.lang))).collect()
}

pub fn grade<'q>(content: &Content, questions: &'q [Question], rankings: &[Ranking], th: &Thresholds) -> Vec<Graded<'q>> {
    questions
        .iter()
        .zip(rankings)
        .map(|(q, r)| {
            let decision = r.decide(th);
            let name = |d| content.index.doc_name(d).to_string();
            let (outcome, shown, direct) = match &decision {
                Match::Nothing if q.expected.is_empty() => (Outcome::Right, "decline".to_string(), true),
                Match::Nothing => (Outcome::Declined, "decline".to_string(), false),
                // A greeting or other small talk names no programme: for a question that expects
                // a decline ("bonjour" alone) it is a decline.
                Match::Answer(Doc::Intent(i), _) if q.expected.is_empty() && content.intents.get(*i).is_some_and(|x| x.is_small_talk()) => {
                    (Outcome::Right, name(Doc::Intent(*i)), true)
                }
                Match::Answer(d, _) => {
                    let n = name(*d);
                    let ok = q.expected.contains(&n);
                    (if ok { Outcome::Right } else { Outcome::ConfidentWrong }, n, ok)
                }
                Match::Choose(docs) => {
                    let n = name(docs[0].0);
                    let ok = q.expected.contains(&n);
                    let all = docs.iter().map(|(d, _)| name(*d)).collect::<Vec<_>>().join(" | ");
                    (if ok { Outcome::Right } else { Outcome::ChoiceWrong }, format!("choice: {all}"), false)
                }
            };
            Graded { question: q, outcome, shown, direct, evidence: r.evidence(), margin: r.margin() }
        })
        .collect()
}

/// Counts for one group of questions.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub n: usize,
    pub right: usize,
    pub direct: usize,
    pub confident_wrong: usize,
    pub declined: usize,
    pub ood: usize,
    pub ood_declined: usize,
}

impl Tally {
    fn add(&mut self, g: &Graded<'_>) {
        self.n += 1;
        match g.outcome {
            Outcome::Right => self.right += 1,
            Outcome::ConfidentWrong => self.confident_wrong += 1,
            Outcome::Declined => self.declined += 1,
            Outcome::ChoiceWrong => {}
        }
        if g.direct && g.outcome == Outcome::Right && !g.question.expected.is_empty() {
            self.direct += 1;
        }
        if g.question.expected.is_empty() {
            self.ood += 1;
            if g.outcome == Outcome::Right {
                self.ood_declined += 1;
            }
        }
    }

    pub fn accuracy(&self) -> f32 {
        ratio(self.right, self.n)
    }

    pub fn confident_wrong_rate(&self) -> f32 {
        ratio(self.confident_wrong, self.n)
    }

    pub fn ood_declined_rate(&self) -> f32 {
        if self.ood == 0 { 1.0 } else { ratio(self.ood_declined, self.ood) }
    }

    fn line(&self, label: &str) -> String {
        format!(
            "  {label:<16} {:>4} questions  right {:>5.1}%  ({} as a card)  confident wrong {:>4.1}%  unnecessary declines {}  out-of-domain declined {}/{}",
            self.n,
            100.0 * self.accuracy(),
            self.direct,
            100.0 * self.confident_wrong_rate(),
            self.declined,
            self.ood_declined,
            self.ood
        )
    }
}

fn ratio(a: usize, b: usize) -> f32 {
    if b == 0 { 0.0 } else { a as f32 / b as f32 }
}

/// One split's tallies: overall, per language, per topic.
pub type SplitTally = (Tally, BTreeMap<String, Tally>, BTreeMap<String, Tally>);

/// Tallies by split.
pub struct Report {
    pub splits: BTreeMap<String, SplitTally>,
}

pub fn tally(graded: &[Graded<'_>]) -> Report {
    let mut splits: BTreeMap<String, SplitTally> = BTreeMap::new();
    for g in graded {
        let (all, langs, topics) = splits.entry(g.question.split.clone()).or_default();
        all.add(g);
        langs.entry(g.question.lang.clone()).or_default().add(g);
        topics.entry(g.question.topic.clone()).or_default().add(g);
    }
    Report { splits }
}

impl Report {
    /// Problems against the targets, on the test split.
    pub fn misses(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some((all, langs, _)) = self.splits.get("test") else { return out };
        for (lang, t) in langs {
            if t.accuracy() < TARGET_ACCURACY {
                out.push(format!("test {lang}: right {:.1}% < {:.0}%", 100.0 * t.accuracy(), 100.0 * TARGET_ACCURACY));
            }
        }
        if all.confident_wrong_rate() > TARGET_CONFIDENT_WRONG {
            out.push(format!("test: confident wrong {:.1}% > {:.0}%", 100.0 * all.confident_wrong_rate(), 100.0 * TARGET_CONFIDENT_WRONG));
        }
        if all.ood_declined_rate() < TARGET_OOD_DECLINED {
            out.push(format!("test: out-of-domain declined {}/{}", all.ood_declined, all.ood));
        }
        out
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (split, (all, langs, topics)) in &self.splits {
            let _ = writeln!(out, "{split} split");
            let _ = writeln!(out, "{}", all.line("overall"));
            for (lang, t) in langs {
                let _ = writeln!(out, "{}", t.line(lang));
            }
            for (topic, t) in topics {
                let _ = writeln!(out, "{}", t.line(topic));
            }
        }
        out
    }
}

/// The wrong answers and unnecessary declines, one line each.
pub fn mistakes(graded: &[Graded<'_>], every: bool) -> String {
    let mut out = String::new();
    for g in graded.iter().filter(|g| every || g.outcome != Outcome::Right) {
        let expected = if g.question.expected.is_empty() { "decline".to_string() } else { g.question.expected.join(",") };
        let what = match g.outcome {
            Outcome::ConfidentWrong => "WRONG",
            Outcome::ChoiceWrong => "wrong choice",
            Outcome::Declined => "declined",
            Outcome::Right => "right",
        };
        let text: String = g.question.text.chars().take(110).collect();
        let _ = writeln!(
            out,
            "{}: [{} {}] {what}: got {} (evidence {:.1}, margin {:.2}) expected {expected}: {text}",
            g.question.loc, g.question.split, g.question.topic, g.shown, g.evidence, g.margin
        );
    }
    out
}

/// A grid of thresholds on the dev split, best first: right answers while keeping confident wrong
/// answers at or under the target and declining every out-of-domain question where possible.
pub fn tune(content: &Content, questions: &[Question]) -> String {
    let dev: Vec<Question> = questions.iter().filter(|q| q.split == "dev").cloned().collect();
    let rankings = rank_all(content, &dev);
    let mut rows = Vec::new();
    for decline in (2..=30).map(|x| x as f32 * 0.5) {
        for answer in (0..=24).map(|x| decline + x as f32 * 0.5) {
            for margin in [0.05f32, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4] {
                let th = Thresholds { decline, answer, margin };
                let graded = grade(content, &dev, &rankings, &th);
                let report = tally(&graded);
                let Some((all, _, _)) = report.splits.get("dev") else { continue };
                let ok = all.confident_wrong_rate() <= TARGET_CONFIDENT_WRONG && all.ood_declined_rate() >= TARGET_OOD_DECLINED;
                rows.push((ok, all.right, all.direct, th, all.clone()));
            }
        }
    }
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
    let mut out = format!("current: {THRESHOLDS:?}\n");
    for (ok, _, _, th, t) in rows.iter().take(25) {
        let _ = writeln!(
            out,
            "{} decline {:>4.1} answer {:>4.1} margin {:.2}: {}",
            if *ok { "meets" } else { "misses" },
            th.decline,
            th.answer,
            th.margin,
            t.line("dev").trim()
        );
    }
    out
}

/// `sme-advisor eval`: reads the files (every `*.tsv` of a folder), prints the report and returns
/// whether the targets are met on the test split. `split` keeps one split only; `tune` prints the
/// threshold grid on the dev split instead.
pub fn run(content: &Content, paths: &[std::path::PathBuf], split: Option<&str>, tune_only: bool, every: bool) -> anyhow::Result<bool> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<_> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        anyhow::bail!("no evaluation files found");
    }
    let mut questions = Vec::new();
    let mut diags = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let lang = file.file_stem().and_then(|s| s.to_str()).unwrap_or("en").split(['.', '-', '_']).next().unwrap_or("en");
        let lang = content.language_for(Some(lang));
        match parse(&file.display().to_string(), &lang, &text) {
            Ok(q) => questions.extend(q),
            Err(d) => diags.extend(d),
        }
    }
    diags.extend(unknown_ids(content, &questions));
    for d in &diags {
        println!("{d}");
    }
    if let Some(split) = split {
        questions.retain(|q| q.split == split);
    }
    if tune_only {
        print!("{}", tune(content, &questions));
        return Ok(diags.is_empty());
    }
    let rankings = rank_all(content, &questions);
    let graded = grade(content, &questions, &rankings, &THRESHOLDS);
    let report = tally(&graded);
    println!("{}", if every { "every question:" } else { "wrong answers and unnecessary declines:" });
    print!("{}", mistakes(&graded, every));
    println!();
    print!("{}", report.render());
    let misses = report.misses();
    for m in &misses {
        println!("below target: {m}");
    }
    if misses.is_empty() && report.splits.contains_key("test") {
        println!("targets met on the test split");
    }
    Ok(misses.is_empty() && diags.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Content {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::content::load_dirs(&root.join("dialogs"), &root.join("knowledge")).expect("shipped content loads")
    }

    #[test]
    fn a_greeting_for_a_question_that_expects_a_decline_counts_as_declined() {
        let content = shipped();
        let text = "dev\tout-of-domain\tdecline\tbonjour\ndev\tout-of-domain\tintent:greeting\tbonjour\ndev\tfinancing\tdecline\tI need a loan for my bakery\n";
        let questions = parse("t.tsv", "fr", text).expect("parses");
        let rankings = rank_all(&content, &questions);
        let graded = grade(&content, &questions, &rankings, &THRESHOLDS);
        assert!(matches!(rankings[0].decide(&THRESHOLDS), Match::Answer(Doc::Intent(_), _)), "the greeting is answered, not declined");
        assert_eq!(graded[0].outcome, Outcome::Right);
        assert_eq!(graded[1].outcome, Outcome::Right);
        // A programme offered for a question that expects a decline stays wrong.
        assert_ne!(graded[2].outcome, Outcome::Right);
        let t = tally(&graded);
        assert_eq!((t.splits["dev"].0.ood, t.splits["dev"].0.ood_declined), (2, 1));
    }

    #[test]
    fn only_small_talk_intents_count_as_naming_no_programme() {
        let content = shipped();
        let small = |id: &str| content.intents.iter().find(|i| i.id == id).expect("intent exists").is_small_talk();
        assert!(small("greeting"));
        assert!(small("thanks"));
        assert!(!small("financing"));
        assert!(!small("linkages"));
    }
}
