//! Matching free text against intents and knowledge entries, tolerant of case, accents, punctuation and typos.
//!
//! Text is normalised (NFKD, accents and punctuation removed, lowercase), split into words, and
//! mapped onto terms: vocabulary phrases and synonym groups become one concept term
//! (`need:credit`, `syn:supplier`), other words stay words. A word the content never uses is
//! corrected to the nearest word it does use (SymSpell-style deletion lookup, then
//! `strsim::damerau_levenshtein`: one edit for 4-7 letters, two from 8). Documents (entries and
//! intents) are scored by weighted term overlap with inverse document frequency; the confidence is
//! the share of the question a document explains.

use std::collections::{HashMap, HashSet};

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::content::{ANY, Entry, GLOBAL, Intent, VocabKind, Vocabulary};

/// Confidence from which the best document is given as the answer.
pub const ANSWER_CONFIDENCE: f32 = 0.40;
/// Confidence from which a document is offered as "did you mean".
pub const SUGGEST_CONFIDENCE: f32 = 0.25;
/// A runner-up within this much confidence of the best makes the match ambiguous.
pub const CLOSE_MARGIN: f32 = 0.1;
/// Text beyond this many characters is not read for matching.
pub const MAX_QUERY_CHARS: usize = 1000;

const W_KEYWORD: f32 = 3.0;
const W_NAME: f32 = 2.5;
const W_EXAMPLE: f32 = 2.0;
const W_CONCEPT: f32 = 1.5;
const W_PROVIDER: f32 = 1.5;
const W_SUMMARY: f32 = 1.0;
const W_MAX: f32 = W_KEYWORD;
const MAX_PHRASE_WORDS: usize = 8;
/// Intents win ties against entries: a generic question is better served by a guided flow.
const INTENT_BOOST: f32 = 1.1;

/// Lowercase, without accents, punctuation or emoji, single spaces.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars().take(MAX_QUERY_CHARS).nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// A document: an entry or an intent, by position in the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Doc {
    Entry(usize),
    Intent(usize),
}

/// The outcome of matching a question.
#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    /// One document answers it, with this confidence.
    Answer(Doc, f32),
    /// One or two documents might; ask "did you mean".
    Suggest(Vec<(Doc, f32)>),
    Nothing,
}

/// The search index over the content's own words.
#[derive(Debug, Default)]
pub struct Index {
    docs: Vec<(Doc, String)>,
    /// Term text to term id; concept terms look like `need:credit`.
    terms: HashMap<String, u32>,
    term_names: Vec<String>,
    /// Normalised phrase (one to four words) to the concept term it stands for.
    phrases: HashMap<String, u32>,
    stopwords: HashSet<String>,
    /// Words the content uses, for typo correction, with how many documents use them.
    words: HashMap<String, u32>,
    deletes: HashMap<String, Vec<u32>>,
    word_list: Vec<String>,
    postings: Vec<Vec<(u32, f32)>>,
    idf: Vec<f32>,
    mean_idf: f32,
    /// Whether a term is a country, region, sector, size or stage.
    context: Vec<bool>,
    patterns: Vec<(regex::Regex, usize)>,
}

/// The terms of a text, with the number of words that matched nothing.
#[derive(Debug, Default)]
struct Analysis {
    /// Terms with how much each counts: less when it came from a typo correction.
    terms: Vec<(u32, f32)>,
    unknown: usize,
}

/// How much a term read through a typo correction counts.
const CORRECTED: f32 = 0.6;
/// How much a context term (country, sector, ...) counts against the rest of a question.
const CONTEXT: f32 = 0.4;

/// Longer words are matched exactly, never corrected: no real word is this long, and the
/// deletions of a word grow with the square of its length (a typed word of 1000 letters took two
/// minutes and 1.2 GB in the fuzzing build).
const MAX_TYPO_CHARS: usize = 24;

/// Edits allowed between a content word and a typed word: none for short content words.
fn index_edits(word: &str) -> usize {
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        8..=MAX_TYPO_CHARS => 2,
        _ => 0,
    }
}

/// Edits allowed for a typed word; a three-letter word may be a four-letter one missing a letter.
/// A word more than two letters longer than any correctable content word has none.
fn query_edits(word: &str) -> usize {
    match word.chars().count() {
        0..=2 => 0,
        3..=7 => 1,
        n if n <= MAX_TYPO_CHARS + 2 => 2,
        _ => 0,
    }
}

fn deletes(word: &str, edits: usize, out: &mut HashSet<String>) {
    if edits == 0 {
        return;
    }
    let chars: Vec<char> = word.chars().collect();
    for i in 0..chars.len() {
        let shorter: String = chars[..i].iter().chain(&chars[i + 1..]).collect();
        if out.insert(shorter.clone()) {
            deletes(&shorter, edits - 1, out);
        }
    }
}

impl Index {
    pub fn build(vocab: &Vocabulary, entries: &[Entry], intents: &[Intent]) -> Index {
        let mut index = Index::default();
        for words in vocab.stopwords.values() {
            index.stopwords.extend(words.iter().map(|w| normalize(w)));
        }
        for term in &vocab.terms {
            let concept = index.term(&format!("{}:{}", term.kind.name(), term.id));
            index.add_phrase(&term.id.replace('_', " "), concept);
            for name in term.name.values() {
                index.add_phrase(name, concept);
            }
            for synonym in term.synonyms.values().flatten() {
                index.add_phrase(synonym, concept);
            }
        }
        for group in vocab.synonyms.values().flatten() {
            let Some(first) = group.first() else { continue };
            let concept = index.term(&format!("syn:{}", normalize(first)));
            for word in group {
                index.add_phrase(word, concept);
            }
        }
        // A keyword of several words is one term, so its words do not count on their own.
        for keyword in entries.iter().flat_map(|e| e.keywords.iter()).chain(intents.iter().flat_map(|i| i.keywords.values().flatten())) {
            let normal = normalize(keyword);
            let words = normal.split(' ').count();
            if words > 1 && words <= MAX_PHRASE_WORDS && !index.phrases.contains_key(&normal) {
                let t = index.term(&format!("kw:{normal}"));
                index.add_phrase(&normal, t);
            }
        }
        // Postings are gathered per document, then inverted.
        let mut doc_terms: Vec<HashMap<u32, f32>> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            index.docs.push((Doc::Entry(i), format!("entry:{}", entry.id)));
            let mut terms = HashMap::new();
            let mut add = |index: &mut Index, text: &str, weight: f32| {
                for t in index.analyze_build(text) {
                    let w = terms.entry(t).or_insert(0.0f32);
                    *w = w.max(weight);
                }
            };
            for k in &entry.keywords {
                add(&mut index, k, W_KEYWORD);
            }
            for text in entry.texts.values() {
                add(&mut index, &text.name, W_NAME);
                add(&mut index, &text.short, W_NAME);
                add(&mut index, &text.provider, W_PROVIDER);
                add(&mut index, &text.summary, W_SUMMARY);
                for (_, example) in &text.examples {
                    add(&mut index, example, W_EXAMPLE);
                }
            }
            let concepts = entry
                .countries
                .iter()
                .filter(|c| c.as_str() != GLOBAL)
                .map(|c| if vocab.term(VocabKind::Country, c).is_some() { format!("country:{c}") } else { format!("region:{c}") })
                .chain(entry.sectors.iter().filter(|s| s.as_str() != ANY).map(|s| format!("sector:{s}")))
                .chain(entry.needs.iter().map(|n| format!("need:{n}")));
            for concept in concepts.collect::<Vec<_>>() {
                let t = index.term(&concept);
                let w = terms.entry(t).or_insert(0.0f32);
                *w = w.max(W_CONCEPT);
            }
            doc_terms.push(terms);
        }
        for (i, intent) in intents.iter().enumerate() {
            index.docs.push((Doc::Intent(i), format!("intent:{}", intent.id)));
            for p in &intent.patterns {
                index.patterns.push((p.clone(), index.docs.len() - 1));
            }
            let mut terms = HashMap::new();
            for (texts, weight) in [
                (intent.keywords.values().flatten().cloned().collect::<Vec<_>>(), W_KEYWORD),
                (intent.examples.values().flatten().map(|(_, e)| e.clone()).collect(), W_EXAMPLE),
            ] {
                for text in texts {
                    for t in index.analyze_build(&text) {
                        let w = terms.entry(t).or_insert(0.0f32);
                        *w = w.max(weight);
                    }
                }
            }
            doc_terms.push(terms);
        }
        index.postings = vec![Vec::new(); index.term_names.len()];
        for (doc, terms) in doc_terms.into_iter().enumerate() {
            for (t, w) in terms {
                index.postings[t as usize].push((doc as u32, w));
            }
        }
        let n = index.docs.len().max(1) as f32;
        index.idf = index.postings.iter().map(|p| (1.0 + n / (p.len() as f32 + 1.0)).ln()).collect();
        index.context = index
            .term_names
            .iter()
            .map(|t| ["country:", "region:", "sector:", "size:", "stage:"].iter().any(|p| t.starts_with(p)))
            .collect();
        index.mean_idf = if index.idf.is_empty() { 1.0 } else { index.idf.iter().sum::<f32>() / index.idf.len() as f32 };
        // Typo correction looks words up by their deletions.
        let mut word_list: Vec<String> = index.words.keys().cloned().collect();
        word_list.sort();
        for (i, word) in word_list.iter().enumerate() {
            let mut set = HashSet::new();
            deletes(word, index_edits(word), &mut set);
            set.insert(word.clone());
            for d in set {
                index.deletes.entry(d).or_default().push(i as u32);
            }
        }
        index.word_list = word_list;
        index
    }

    fn term(&mut self, name: &str) -> u32 {
        if let Some(&t) = self.terms.get(name) {
            return t;
        }
        let t = self.term_names.len() as u32;
        self.terms.insert(name.to_string(), t);
        self.term_names.push(name.to_string());
        t
    }

    fn add_phrase(&mut self, phrase: &str, concept: u32) {
        let normal = normalize(phrase);
        if normal.is_empty() {
            return;
        }
        for word in normal.split(' ') {
            *self.words.entry(word.to_string()).or_insert(0) += 1;
        }
        self.phrases.entry(normal).or_insert(concept);
    }

    /// Terms of a content text, registering its words; no typo correction.
    fn analyze_build(&mut self, text: &str) -> Vec<u32> {
        let normal = normalize(text);
        let words: Vec<&str> = normal.split(' ').filter(|w| !w.is_empty()).collect();
        for w in &words {
            if !self.stopwords.contains(*w) {
                *self.words.entry(w.to_string()).or_insert(0) += 1;
            }
        }
        let mut out = Vec::new();
        for (item, _) in self.phrase_terms(&words) {
            match item {
                Ok(t) => out.push(t),
                Err(word) => out.push(self.term(word)),
            }
        }
        out
    }

    /// Maps words onto phrase concepts, longest first; other non-stopwords come back as `Err(word)`.
    /// Each item carries the range of words it covers.
    fn phrase_terms<'w>(&self, words: &[&'w str]) -> Vec<(Result<u32, &'w str>, std::ops::Range<usize>)> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut key = String::new();
        while i < words.len() {
            let mut found = None;
            for len in (1..=MAX_PHRASE_WORDS.min(words.len() - i)).rev() {
                key.clear();
                for (j, w) in words[i..i + len].iter().enumerate() {
                    if j > 0 {
                        key.push(' ');
                    }
                    key.push_str(w);
                }
                if let Some(&t) = self.phrases.get(key.as_str()) {
                    found = Some((t, len));
                    break;
                }
            }
            match found {
                Some((t, len)) => {
                    out.push((Ok(t), i..i + len));
                    i += len;
                }
                None => {
                    if !self.stopwords.contains(words[i]) {
                        out.push((Err(words[i]), i..i + 1));
                    }
                    i += 1;
                }
            }
        }
        out
    }

    /// The nearest word the content uses, if one is close enough.
    fn correct(&self, word: &str) -> Option<&str> {
        if self.words.contains_key(word) {
            return Some(self.word_list[self.word_position(word)?].as_str());
        }
        if let Some(stem) = word.strip_suffix('s')
            && stem.chars().count() >= 3
            && self.words.contains_key(stem)
        {
            return Some(&self.word_list[self.word_position(stem)?]);
        }
        let edits = query_edits(word);
        if edits == 0 {
            return None;
        }
        let mut variants = HashSet::new();
        deletes(word, edits, &mut variants);
        variants.insert(word.to_string());
        let mut best: Option<(usize, u32, &str)> = None;
        for v in &variants {
            for &i in self.deletes.get(v.as_str()).into_iter().flatten() {
                let candidate = self.word_list[i as usize].as_str();
                let distance = strsim::damerau_levenshtein(word, candidate);
                if distance > edits.min(index_edits(candidate).max(1)) {
                    continue;
                }
                // On equal distance a vocabulary word (a country, a need...) wins, then the more used word.
                let uses =
                    self.words.get(candidate).copied().unwrap_or(0) + if self.phrases.contains_key(candidate) { 1_000_000 } else { 0 };
                let better = match best {
                    None => true,
                    Some((d, u, c)) => distance < d || (distance == d && (uses > u || (uses == u && candidate < c))),
                };
                if better {
                    best = Some((distance, uses, candidate));
                }
            }
        }
        best.map(|(_, _, c)| c)
    }

    fn word_position(&self, word: &str) -> Option<usize> {
        self.word_list.binary_search_by(|w| w.as_str().cmp(word)).ok()
    }

    /// Terms of a user's text, with typo correction.
    fn analyze(&self, text: &str) -> Analysis {
        let normal = normalize(text);
        let mut corrected = Vec::new();
        let words: Vec<&str> = normal
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let fixed = if self.stopwords.contains(w) { w } else { self.correct(w).unwrap_or(w) };
                corrected.push(fixed != w && fixed.strip_suffix('s') != Some(w) && w.strip_suffix('s') != Some(fixed));
                fixed
            })
            .collect();
        let mut analysis = Analysis::default();
        for (item, range) in self.phrase_terms(&words) {
            let weight = if corrected[range].iter().any(|c| *c) { CORRECTED } else { 1.0 };
            let term = match item {
                Ok(t) => Some(t),
                Err(word) => self.terms.get(word).copied(),
            };
            match term {
                Some(t) => match analysis.terms.iter_mut().find(|(u, _)| *u == t) {
                    Some((_, w)) => *w = w.max(weight),
                    None => analysis.terms.push((t, weight)),
                },
                None => analysis.unknown += 1,
            }
        }
        analysis
    }

    /// Matches a question against every intent and entry.
    pub fn search(&self, text: &str, _lang: &str) -> Match {
        let normal = normalize(text);
        if let Some((_, doc)) = self.patterns.iter().find(|(re, _)| re.is_match(&normal)) {
            return Match::Answer(self.docs[*doc].0, 1.0);
        }
        let analysis = self.analyze(text);
        if analysis.terms.is_empty() {
            return Match::Nothing;
        }
        // Dense scores with a list of the documents touched: cheap even when a term is in every document.
        let mut scores = vec![0.0f32; self.docs.len()];
        // Whether a document matched anything besides where the business is and what it does.
        let mut on_topic = vec![false; self.docs.len()];
        let mut touched: Vec<u32> = Vec::new();
        let mut total = 0.0;
        let any_topic = analysis.terms.iter().any(|(t, _)| !self.context[*t as usize]);
        for &(t, factor) in &analysis.terms {
            // Where the business is and what it does describe the asker more than the question.
            // They weigh less in what a document must explain, but fully for a document that matches them.
            let is_context = self.context[t as usize];
            let context = if is_context { CONTEXT } else { 1.0 };
            let idf = self.idf[t as usize];
            total += idf * context * W_MAX;
            for &(doc, w) in &self.postings[t as usize] {
                let score = &mut scores[doc as usize];
                if *score == 0.0 {
                    touched.push(doc);
                }
                *score += idf * w * factor;
                on_topic[doc as usize] |= !is_context;
            }
        }
        // "A loan for my shop" is about the loan: a document that matches only the shop is not an answer.
        if any_topic {
            for &d in &touched {
                if !on_topic[d as usize] {
                    scores[d as usize] *= CONTEXT;
                }
            }
        }
        // A word the content never uses weighs like an average term that nothing matched.
        total += analysis.unknown as f32 * self.mean_idf * W_MAX;
        let mut ranked: Vec<(u32, f32)> = touched
            .into_iter()
            .map(|d| (d, scores[d as usize]))
            .map(|(d, s)| {
                let boost = if matches!(self.docs[d as usize].0, Doc::Intent(_)) { INTENT_BOOST } else { 1.0 };
                (d, s * boost / total)
            })
            .collect();
        // Only the best two matter.
        if ranked.len() > 2 {
            ranked.select_nth_unstable_by(1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked.truncate(2);
        }
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        // Context terms can lift a score above 1; rank on it, but report at most 1.
        let doc = |i: u32| self.docs[i as usize].0;
        match ranked.as_slice() {
            [] => Match::Nothing,
            [(best, c), rest @ ..] => {
                let runner_up = rest.first().filter(|(_, c2)| *c2 > c - CLOSE_MARGIN && *c2 >= SUGGEST_CONFIDENCE);
                match runner_up {
                    Some((second, c2)) if *c >= SUGGEST_CONFIDENCE => {
                        Match::Suggest(vec![(doc(*best), c.min(1.0)), (doc(*second), c2.min(1.0))])
                    }
                    _ if *c >= ANSWER_CONFIDENCE => Match::Answer(doc(*best), c.min(1.0)),
                    _ if *c >= SUGGEST_CONFIDENCE => Match::Suggest(vec![(doc(*best), c.min(1.0))]),
                    _ => Match::Nothing,
                }
            }
        }
    }

    /// The terms a text is read as, by name: for diagnostics and tests.
    pub fn explain(&self, text: &str) -> Vec<String> {
        self.analyze(text).terms.iter().map(|(t, w)| format!("{}*{w}", self.term_names[*t as usize])).collect()
    }

    /// Up to `k` knowledge entries for a search box (inline mode), best first; all entries in
    /// order for an empty query.
    pub fn top_entries(&self, text: &str, k: usize) -> Vec<usize> {
        let analysis = self.analyze(text);
        let entries = self.docs.iter().filter_map(|(d, _)| match d {
            Doc::Entry(i) => Some(*i),
            Doc::Intent(_) => None,
        });
        if analysis.terms.is_empty() {
            return if normalize(text).is_empty() { entries.take(k).collect() } else { Vec::new() };
        }
        let mut scores = vec![0.0f32; self.docs.len()];
        for &(t, factor) in &analysis.terms {
            for &(doc, w) in &self.postings[t as usize] {
                scores[doc as usize] += self.idf[t as usize] * w * factor;
            }
        }
        let mut ranked: Vec<(usize, f32)> = self
            .docs
            .iter()
            .enumerate()
            .filter_map(|(i, (d, _))| matches!(d, Doc::Entry(_)).then_some((i, scores[i])))
            .filter(|(_, s)| *s > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .take(k)
            .filter_map(|(i, _)| match self.docs[i].0 {
                Doc::Entry(e) => Some(e),
                Doc::Intent(_) => None,
            })
            .collect()
    }

    /// The name of a document for logs and diagnostics: `entry:<id>` or `intent:<id>`.
    pub fn doc_name(&self, doc: Doc) -> &str {
        self.docs.iter().find(|(d, _)| *d == doc).map_or("", |(_, n)| n.as_str())
    }

    /// The vocabulary terms of one kind that a text names, in order of appearance.
    pub fn terms_of(&self, kind: VocabKind, text: &str) -> Vec<String> {
        let prefix = format!("{}:", kind.name());
        let mut out = Vec::new();
        for (t, _) in self.analyze(text).terms {
            if let Some(id) = self.term_names[t as usize].strip_prefix(&prefix)
                && !out.iter().any(|o: &String| o == id)
            {
                out.push(id.to_string());
            }
        }
        out
    }

    /// The one term of a kind that a typed answer names, if exactly one.
    pub fn resolve(&self, kind: VocabKind, text: &str) -> Option<String> {
        let found = self.terms_of(kind, text);
        match found.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_case_accents_and_punctuation() {
        assert_eq!(normalize("  Crédit, à l'ÉCOLE!! 🚀 "), "credit a l ecole");
        assert_eq!(normalize("Côte d'Ivoire"), "cote d ivoire");
        assert_eq!(normalize("ቡና ኢትዮጵያ"), "ቡና ኢትዮጵያ");
    }

    #[test]
    fn deletions_cover_one_edit() {
        let mut set = HashSet::new();
        deletes("loan", 1, &mut set);
        assert!(set.contains("lan") && set.contains("loa") && set.len() == 4);
    }
}
