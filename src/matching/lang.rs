//! Per-language analysis: stemmers, stopwords, language detection and question-type cues (the cue
//! phrases themselves are content: `knowledge/cues.toml`).
//!
//! Each content language has its own stopwords (from the vocabulary) and its own Snowball stemmer
//! (`rust-stemmers`: English, French, Spanish, Portuguese; a language without one is left
//! unstemmed). Words are stemmed after normalisation (no accents), on the index and the question
//! alike, so both sides agree.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};

/// What a question asks about an entry, which decides what its card leads with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Ask {
    /// What it is: the card as usual.
    #[default]
    General,
    /// "Who runs it", "which organisation": the card leads with the provider.
    Provider,
    /// "How do I apply", "how to contact": the card leads with how to approach it.
    Approach,
    /// "Can you lend me", "send me money": a request to the advisor itself, which lends nothing;
    /// declined whatever else the question says.
    Personal,
    /// "Bitcoin", "visa", "will it rain": a subject the content does not cover, listed in
    /// `[outside]` of `knowledge/cues.toml`; declined whatever else the question says. So is
    /// private life without a word of a business (`[private]`, `[business]`).
    Outside,
}

impl Ask {
    pub fn name(self) -> &'static str {
        match self {
            Ask::General => "general",
            Ask::Provider => "provider",
            Ask::Approach => "approach",
            Ask::Personal => "a request to the advisor itself",
            Ask::Outside => "a subject outside the content",
        }
    }
}

/// The kinds of cue phrases, written per language in `knowledge/cues.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cue {
    /// "Who runs", "quelle organisation": the question is of type [`Ask::Provider`].
    Provider,
    /// "How do I apply", "comment postuler": [`Ask::Approach`].
    Approach,
    /// "Can you lend me", "me empresta": [`Ask::Personal`], always declined.
    Personal,
    /// "Bitcoin", "visa pour": [`Ask::Outside`], always declined.
    Outside,
    /// "The report", "la reunion": a question about the source of the advice, which lifts the
    /// content's document about its source (see `Document::source`); its words stay in the ranking.
    Source,
    /// "Loan", "formation", "mi negocio": a clear term of the domain, which keeps a short vague
    /// question about a need in the domain despite a word the content does not know ("a loan for
    /// my bakery"), where a weak one ("money for my wedding") is declined.
    Domain,
    /// "My shop", "clients", "ma boutique": words of a business. They are clear terms of the domain
    /// too (as [`Cue::Domain`]), and they keep a question that uses a word of private life in the
    /// domain ("my husband and I run a bakery").
    Business,
    /// "Wedding", "school fees", "my boss": words of private life. A question that uses one and no
    /// word of a business ([`Cue::Business`]) is [`Ask::Outside`], declined ("a quick loan for school
    /// fees"); one with a business word is not ("my shop pays the school fees, how can it borrow?").
    Private,
    /// "Can you", "vous pouvez me", "^me pueden": words that address the advisor. Followed by a word
    /// of [`Cue::Transact`] (with words of `[greeting]` or [`Cue::Between`] between: "can you please
    /// lend"), they make a request to the advisor itself ([`Ask::Personal`]) in the sentences that
    /// ask.
    You,
    /// "Lend", "acheter", "donar", "investir": what a lender, donor, buyer, seller or employer does,
    /// compared by stem, so every form of the verb counts ("vous prêtez", "ustedes me compren").
    Transact,
    /// "Me", "please", "pourriez", "lo puede": words that may stand between a phrase of
    /// [`Cue::You`] and a word of [`Cue::Transact`] ("su institución me lo puede prestar").
    Between,
    /// "Hello", "buenas", "bom dia": words that may come before a phrase written `^phrase`, which
    /// matches only at the start of a sentence ("^me pueden prestar" is a request to the advisor;
    /// "¿dónde me pueden prestar?" asks who lends).
    Greeting,
}

impl Cue {
    pub const ALL: [Cue; 12] = [
        Cue::Provider,
        Cue::Approach,
        Cue::Personal,
        Cue::Outside,
        Cue::Source,
        Cue::Domain,
        Cue::Business,
        Cue::Private,
        Cue::You,
        Cue::Transact,
        Cue::Between,
        Cue::Greeting,
    ];

    /// The table that lists them in `knowledge/cues.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Cue::Provider => "provider",
            Cue::Approach => "approach",
            Cue::Personal => "personal",
            Cue::Outside => "outside",
            Cue::Source => "source",
            Cue::Domain => "domain",
            Cue::Business => "business",
            Cue::Private => "private",
            Cue::You => "you",
            Cue::Transact => "transact",
            Cue::Between => "between",
            Cue::Greeting => "greeting",
        }
    }
}

/// The word that marks a cue phrase matched only at the start of a sentence: `^` in
/// `knowledge/cues.toml`, which normalising would remove, is kept as this word.
pub const START: &str = "^";

/// Cue phrases of one kind, by their first word: a question's word is compared only with the
/// phrases that start with it (thousands of phrases cost a lookup per word, not a scan). Each
/// phrase says whether it counts only at the start of a sentence.
#[derive(Default)]
struct Phrases(HashMap<String, Vec<(Vec<String>, bool)>>);

impl Phrases {
    fn push(&mut self, mut words: Vec<String>) {
        let at_start = words.first().is_some_and(|w| w == START);
        if at_start {
            words.remove(0);
        }
        if let Some(first) = words.first() {
            self.0.entry(first.clone()).or_default().push((words, at_start));
        }
    }

    /// Where the phrases occur in the words: (start, length). `starts` marks the words that begin
    /// a sentence (after its greetings), where a phrase written `^phrase` may match.
    fn find<'a>(&'a self, words: &'a [&str], starts: &'a [bool]) -> impl Iterator<Item = (usize, usize)> + 'a {
        words.iter().enumerate().flat_map(move |(start, first)| {
            self.0.get(*first).into_iter().flatten().filter_map(move |(cue, at_start)| {
                if *at_start && !starts.get(start).copied().unwrap_or(false) {
                    return None;
                }
                let rest = words.get(start..start + cue.len())?;
                rest.iter().zip(cue).all(|(w, c)| w == c).then_some((start, cue.len()))
            })
        })
    }
}

/// One content language as the matcher reads it.
pub struct Lang {
    pub code: String,
    stemmer: Option<Stemmer>,
    pub stopwords: HashSet<String>,
    /// The phrases of each kind, by [`Cue`] (greetings are kept as words instead).
    cues: [Phrases; Cue::ALL.len()],
    /// The words of the greetings that may come before a `^phrase`.
    greetings: HashSet<String>,
    /// The stems of the words of `[transact]`.
    transact: HashSet<String>,
    /// The words of `[between]`.
    between: HashSet<String>,
}

impl std::fmt::Debug for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lang").field("code", &self.code).field("stemmed", &self.stemmer.is_some()).finish()
    }
}

impl Lang {
    /// A language with its stopwords and cue phrases (already normalised, words split by a space).
    pub fn new<'c>(code: &str, stopwords: impl IntoIterator<Item = String>, cues: impl IntoIterator<Item = (Cue, &'c str)>) -> Lang {
        let algorithm = match code {
            "en" => Some(Algorithm::English),
            "fr" => Some(Algorithm::French),
            "es" => Some(Algorithm::Spanish),
            "pt" => Some(Algorithm::Portuguese),
            "de" => Some(Algorithm::German),
            "it" => Some(Algorithm::Italian),
            _ => None,
        };
        let mut lang = Lang {
            code: code.to_string(),
            stemmer: algorithm.map(Stemmer::create),
            stopwords: stopwords.into_iter().collect(),
            cues: std::array::from_fn(|_| Phrases::default()),
            greetings: HashSet::new(),
            transact: HashSet::new(),
            between: HashSet::new(),
        };
        for (kind, phrase) in cues {
            let words: Vec<String> = phrase.split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect();
            if words.is_empty() {
                continue;
            }
            match kind {
                Cue::Greeting => lang.greetings.extend(words.into_iter().filter(|w| w != START)),
                Cue::Between => lang.between.extend(words.into_iter().filter(|w| w != START)),
                Cue::Transact => {
                    let stems: Vec<String> = words.iter().map(|w| lang.stem(w)).collect();
                    lang.transact.extend(stems);
                }
                kind => lang.cues[kind as usize].push(words),
            }
        }
        lang
    }

    /// The cue phrases of a kind.
    fn phrases(&self, kind: Cue) -> &Phrases {
        &self.cues[kind as usize]
    }

    /// The stem of a normalised word.
    pub fn stem(&self, word: &str) -> String {
        match &self.stemmer {
            Some(s) if word.chars().count() > 3 => s.stem(word).into_owned(),
            _ => word.to_string(),
        }
    }

    pub fn is_stop(&self, word: &str) -> bool {
        self.stopwords.contains(word)
    }

    /// Whether the question asks about the source of the advice (the report, the meeting).
    pub fn about_source(&self, words: &[&str], starts: &[bool]) -> bool {
        self.phrases(Cue::Source).find(words, starts).next().is_some()
    }

    /// Whether the question uses a clear term of the domain (`[domain]` or `[business]` of
    /// `knowledge/cues.toml`).
    pub fn names_domain(&self, words: &[&str], starts: &[bool]) -> bool {
        self.phrases(Cue::Domain).find(words, starts).next().is_some() || self.names_business(words, starts)
    }

    /// Whether the question uses a word of a business (`[business]`).
    fn names_business(&self, words: &[&str], starts: &[bool]) -> bool {
        self.phrases(Cue::Business).find(words, starts).next().is_some()
    }

    /// Which words begin a sentence once its greetings are skipped ("hola, ¿me pueden prestar…":
    /// "me"). `sentence_of` gives each word's sentence; without it the words are one sentence.
    pub fn sentence_starts(&self, words: &[&str], sentence_of: Option<&[usize]>) -> Vec<bool> {
        let mut starts = vec![false; words.len()];
        let mut open = true;
        for (i, w) in words.iter().enumerate() {
            if i > 0 && sentence_of.is_some_and(|s| s[i] != s[i - 1]) {
                open = true;
            }
            if open {
                starts[i] = true;
                open = self.greetings.contains(*w);
            }
        }
        starts
    }

    /// The question's type from its cue phrases, and which words the cue covers (left out of ranking).
    ///
    /// `asking`, when given, marks the words of the sentences that ask the question of a long
    /// message: "who runs" or "how do I apply" counts only there ("c'est moi qui gère" in the story
    /// of a shop does not make its question one about a provider). A request to the advisor itself
    /// or a subject outside the content counts anywhere.
    ///
    /// Also whether the question is about private life beside a business ("I sell at the market,
    /// but my children's school refuses to let me pay in parts"): the question proper (the
    /// sentences that ask, for a long message) names at least as many words of private life as
    /// words of a business and terms of the domain. Such a question is declined unless the content
    /// matches it strongly (see `matching::PRIVATE_EVIDENCE`); its type stays what the cues say.
    pub fn ask(&self, words: &[&str], asking: Option<&[bool]>, starts: &[bool]) -> (Ask, bool, Vec<bool>) {
        let mut covered = vec![false; words.len()];
        let mut ask = Ask::General;
        let mut beside = false;
        for (kind, cues) in [
            (Ask::Personal, self.phrases(Cue::Personal)),
            (Ask::Outside, self.phrases(Cue::Outside)),
            (Ask::Provider, self.phrases(Cue::Provider)),
            (Ask::Approach, self.phrases(Cue::Approach)),
        ] {
            let anywhere = matches!(kind, Ask::Personal | Ask::Outside);
            for (start, len) in cues.find(words, starts) {
                if !anywhere && asking.is_some_and(|a| !a[start]) {
                    continue;
                }
                if ask == Ask::General {
                    ask = kind;
                }
                covered[start..start + len].fill(true);
            }
        }
        if ask == Ask::General
            && let Some((start, end)) = self.addressed(words, asking, starts)
        {
            ask = Ask::Personal;
            covered[start..end].fill(true);
        }
        // Private life without a word of a business, anywhere in the message: outside; with a word of
        // a business, private life when the question proper says more of it than of the business
        // and the domain. Either way its words show as the question type in `explain`.
        // Most questions name no private word, so the business words are looked for only after one.
        if !matches!(ask, Ask::Personal | Ask::Outside) {
            let private: Vec<(usize, usize)> = self.phrases(Cue::Private).find(words, starts).collect();
            if !private.is_empty() {
                let asked = |(start, _): &(usize, usize)| asking.is_none_or(|a| a[*start]);
                // A word of a business or the domain inside a private phrase ("credit" in "my credit
                // card") is part of the private phrase.
                let inside = |&(start, len): &(usize, usize)| private.iter().any(|&(p, l)| start >= p && start + len <= p + l);
                let business: Vec<(usize, usize)> = self.phrases(Cue::Business).find(words, starts).filter(|x| !inside(x)).collect();
                let domain: Vec<(usize, usize)> = self.phrases(Cue::Domain).find(words, starts).filter(|x| !inside(x)).collect();
                let said = |found: &[(usize, usize)]| apart(found.iter().copied().filter(asked));
                if business.is_empty() {
                    ask = Ask::Outside;
                } else {
                    let asked_private = said(&private);
                    beside = asked_private > 0 && asked_private >= said(&business) + said(&domain);
                }
                if ask == Ask::Outside || beside {
                    for (start, len) in private {
                        covered[start..start + len].fill(true);
                    }
                }
            }
        }
        (ask, beside, covered)
    }

    /// Where the sentences that ask address the advisor with a word of `[you]` followed by one of
    /// `[transact]` ("can u please lend", "vous pouvez me prêter", "ustedes me compran"): the words
    /// from the one to the other. Only words of `[greeting]` and `[between]` may come between, at
    /// most [`BETWEEN`] of them ("please", "me lo puede").
    fn addressed(&self, words: &[&str], asking: Option<&[bool]>, starts: &[bool]) -> Option<(usize, usize)> {
        if self.transact.is_empty() {
            return None;
        }
        self.phrases(Cue::You).find(words, starts).find_map(|(start, len)| {
            if asking.is_some_and(|a| !a[start]) {
                return None;
            }
            let mut i = start + len;
            while i < start + len + BETWEEN && words.get(i).is_some_and(|w| self.greetings.contains(*w) || self.between.contains(*w)) {
                i += 1;
            }
            let verb = words.get(i)?;
            (verb.chars().count() > 2 && self.transact.contains(&self.stem(verb))).then_some((start, i + 1))
        })
    }
}

/// At most this many words may stand between a phrase of `[you]` and a word of `[transact]`.
const BETWEEN: usize = 3;

/// How many of the phrases found do not overlap an earlier one: "scolarité" and "scolarité de mes
/// enfants" are one mention.
fn apart(found: impl Iterator<Item = (usize, usize)>) -> usize {
    let mut found: Vec<(usize, usize)> = found.collect();
    found.sort_unstable();
    let (mut end, mut count) = (0, 0);
    for (start, len) in found {
        if start >= end {
            count += 1;
        }
        end = end.max(start + len);
    }
    count
}
