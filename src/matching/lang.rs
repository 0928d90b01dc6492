//! Per-language analysis: stemmers, stopwords, language detection and question-type cues.
//!
//! Each content language has its own stopwords (from the vocabulary) and its own Snowball stemmer
//! (`rust-stemmers`: English, French, Spanish, Portuguese; a language without one is left
//! unstemmed). Words are stemmed after normalisation (no accents), on the index and the question
//! alike, so both sides agree.

use std::collections::HashSet;

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
}

impl Ask {
    pub fn name(self) -> &'static str {
        match self {
            Ask::General => "general",
            Ask::Provider => "provider",
            Ask::Approach => "approach",
            Ask::Personal => "a request to the advisor itself",
        }
    }
}

/// Phrases (normalised: lowercase, no accents) that mark a question about who runs something.
/// They are read as the question's type and take no part in ranking.
const PROVIDER_CUES: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "who runs",
            "who run",
            "who is running",
            "who manages",
            "who organised",
            "who organized",
            "who organises",
            "who organizes",
            "who coordinates",
            "who coordinated",
            "who is behind",
            "who offers",
            "who provides",
            "who funds",
            "who funded",
            "who leads",
            "who led",
            "who started",
            "who set up",
            "which organisation",
            "which organization",
            "what organisation",
            "what organization",
            "which agency",
            "what agency",
            "which institution",
            "which body",
            "run by",
            "organised by",
            "organized by",
        ],
    ),
    (
        "fr",
        &[
            "qui gere",
            "qui dirige",
            "qui organise",
            "qui a organise",
            "qui coordonne",
            "qui coordonnait",
            "qui est derriere",
            "qui propose",
            "qui offre",
            "qui finance",
            "qui s occupe",
            "qui pilote",
            "qui mene",
            "quelle organisation",
            "quel organisme",
            "quelle agence",
            "quelle institution",
            "gere par",
            "organise par",
        ],
    ),
    (
        "es",
        &[
            "quien dirige",
            "quien maneja",
            "quien gestiona",
            "quien organiza",
            "quien organizo",
            "quien coordina",
            "quien coordinaba",
            "quien esta detras",
            "quien ofrece",
            "quien financia",
            "quien lleva",
            "quien administra",
            "quien lidera",
            "que organizacion",
            "cual organizacion",
            "que organismo",
            "que entidad",
            "que agencia",
            "que institucion",
            "a cargo de",
            "organizado por",
        ],
    ),
    (
        "pt",
        &[
            "quem gere",
            "quem dirige",
            "quem administra",
            "quem organiza",
            "quem organizou",
            "quem coordena",
            "quem coordenava",
            "quem esta por tras",
            "quem oferece",
            "quem financia",
            "quem cuida",
            "quem lidera",
            "quem toca",
            "qual organizacao",
            "que organizacao",
            "qual orgao",
            "que orgao",
            "qual entidade",
            "que entidade",
            "qual agencia",
            "que agencia",
            "qual instituicao",
            "organizado por",
        ],
    ),
];

/// Phrases that ask about the source of the advice: the report and the expert meeting. They lift the
/// content's document about its source (see `Document::source`) and stay in the ranking.
const SOURCE_CUES: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "the meeting",
            "this meeting",
            "that meeting",
            "expert meeting",
            "the report",
            "this report",
            "which report",
            "what report",
            "your information",
            "your info",
            "your source",
            "your sources",
            "this advice come from",
        ],
    ),
    (
        "fr",
        &[
            "la reunion",
            "cette reunion",
            "reunion d experts",
            "le rapport",
            "ce rapport",
            "quel rapport",
            "vos infos",
            "vos informations",
            "votre source",
            "vos sources",
        ],
    ),
    (
        "es",
        &[
            "la reunion",
            "esta reunion",
            "esa reunion",
            "reunion de expertos",
            "el informe",
            "este informe",
            "que informe",
            "la info q me das",
            "la info que me das",
            "tu fuente",
            "su fuente",
            "tus fuentes",
        ],
    ),
    (
        "pt",
        &[
            "a reuniao",
            "esta reuniao",
            "essa reuniao",
            "na reuniao",
            "reuniao de especialistas",
            "reuniao de peritos",
            "o relatorio",
            "este relatorio",
            "esse relatorio",
            "qual relatorio",
            "essas informacoes",
            "essa informacao",
            "sua fonte",
            "suas fontes",
        ],
    ),
];

/// Phrases that ask the advisor itself for money, which it never gives.
const PERSONAL_CUES: &[(&str, &[&str])] = &[
    // Addressed to the advisor ("can you lend me"), never a third party ("the bank won't lend me").
    (
        "en",
        &[
            "can you lend",
            "could you lend",
            "will you lend",
            "would you lend",
            "you lend me",
            "loan me",
            "give me money",
            "send me money",
            "send me mobile money",
            "send me airtime",
            "can i borrow from you",
            "borrow from you",
        ],
    ),
    (
        "fr",
        &[
            "tu peux me preter",
            "vous pouvez me preter",
            "pouvez vous me preter",
            "peux tu me preter",
            "prete moi",
            "pretez moi",
            "tu me pretes",
            "vous me pretez",
            "donne moi de l argent",
            "envoie moi de l argent",
            "envoyez moi de l argent",
            "envoie moi du credit",
            "emprunter chez vous",
        ],
    ),
    (
        "es",
        &[
            "me prestas",
            "me puedes prestar",
            "me podes prestar",
            "me podrias prestar",
            "usted me puede prestar",
            "prestame",
            "presteme",
            "me das plata",
            "me das dinero",
            "mandame plata",
            "mandame dinero",
            "enviame dinero",
            "me mandas plata",
            "me mandas dinero",
            "me envias dinero",
        ],
    ),
    (
        "pt",
        &[
            "vc me empresta",
            "voce me empresta",
            "tu me emprestas",
            "empresta me",
            "pode me emprestar",
            "podes me emprestar",
            "me empresta ai",
            "me da dinheiro",
            "me manda dinheiro",
            "me envia dinheiro",
            "me passa dinheiro",
        ],
    ),
];

/// Phrases that mark a question about how to apply or whom to contact.
const APPROACH_CUES: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "how do i apply",
            "how can i apply",
            "how to apply",
            "how do we apply",
            "where do i apply",
            "where can i apply",
            "how do i join",
            "how can i join",
            "how to join",
            "how do i sign up",
            "how to sign up",
            "how do i register for",
            "how do i contact",
            "how can i contact",
            "how to contact",
            "who do i contact",
            "who should i contact",
            "whom do i contact",
            "how do i reach",
            "how to reach",
            "how do i get in touch",
            "how to get in touch",
            "how do i approach",
            "how to approach",
            "how do i get into",
            "contact details",
            "apply for",
            "apply to",
        ],
    ),
    (
        "fr",
        &[
            "comment postuler",
            "comment je postule",
            "comment candidater",
            "comment s inscrire",
            "comment m inscrire",
            "comment je m inscris",
            "comment adherer",
            "comment participer",
            "comment les contacter",
            "comment contacter",
            "comment joindre",
            "comment les joindre",
            "qui contacter",
            "a qui m adresser",
            "a qui s adresser",
            "comment y acceder",
            "comment entrer",
            "comment faire une demande",
            "comment deposer",
            "postuler a",
            "postuler au",
        ],
    ),
    (
        "es",
        &[
            "como postulo",
            "como postular",
            "como me postulo",
            "como aplico",
            "como aplicar",
            "como me inscribo",
            "como inscribirme",
            "como inscribirse",
            "como participar",
            "como participo",
            "como entro",
            "como los contacto",
            "como contactar",
            "como contacto",
            "a quien contacto",
            "a quien contactar",
            "a quien me dirijo",
            "con quien hablo",
            "como accedo",
            "como acceder",
            "como solicito",
            "como solicitar",
            "postular a",
            "aplicar a",
        ],
    ),
    (
        "pt",
        &[
            "como me inscrevo",
            "como inscrever",
            "como se inscrever",
            "como me candidato",
            "como candidatar",
            "como participar",
            "como participo",
            "como entro",
            "como entrar",
            "como contato",
            "como contactar",
            "como entrar em contato",
            "como falar com",
            "a quem contatar",
            "quem devo procurar",
            "com quem falo",
            "como aceder",
            "como acessar",
            "como solicito",
            "como solicitar",
            "como aplico",
            "como aplicar",
        ],
    ),
];

/// One content language as the matcher reads it.
pub struct Lang {
    pub code: String,
    stemmer: Option<Stemmer>,
    pub stopwords: HashSet<String>,
    provider_cues: Vec<Vec<String>>,
    approach_cues: Vec<Vec<String>>,
    personal_cues: Vec<Vec<String>>,
    source_cues: Vec<Vec<String>>,
}

impl std::fmt::Debug for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lang").field("code", &self.code).field("stemmed", &self.stemmer.is_some()).finish()
    }
}

fn cues(table: &[(&str, &[&str])], code: &str) -> Vec<Vec<String>> {
    table
        .iter()
        .filter(|(c, _)| *c == code)
        .flat_map(|(_, list)| list.iter())
        .map(|cue| cue.split(' ').map(str::to_string).collect())
        .collect()
}

impl Lang {
    pub fn new(code: &str, stopwords: impl IntoIterator<Item = String>) -> Lang {
        let algorithm = match code {
            "en" => Some(Algorithm::English),
            "fr" => Some(Algorithm::French),
            "es" => Some(Algorithm::Spanish),
            "pt" => Some(Algorithm::Portuguese),
            "de" => Some(Algorithm::German),
            "it" => Some(Algorithm::Italian),
            _ => None,
        };
        Lang {
            code: code.to_string(),
            stemmer: algorithm.map(Stemmer::create),
            stopwords: stopwords.into_iter().collect(),
            provider_cues: cues(PROVIDER_CUES, code),
            approach_cues: cues(APPROACH_CUES, code),
            personal_cues: cues(PERSONAL_CUES, code),
            source_cues: cues(SOURCE_CUES, code),
        }
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
    pub fn about_source(&self, words: &[&str]) -> bool {
        self.source_cues
            .iter()
            .any(|cue| cue.len() <= words.len() && words.windows(cue.len()).any(|w| w.iter().zip(cue).all(|(a, b)| a == b)))
    }

    /// The question's type from its cue phrases, and which words the cue covers (left out of ranking).
    pub fn ask(&self, words: &[&str]) -> (Ask, Vec<bool>) {
        let mut covered = vec![false; words.len()];
        let mut ask = Ask::General;
        for (kind, cues) in
            [(Ask::Personal, &self.personal_cues), (Ask::Provider, &self.provider_cues), (Ask::Approach, &self.approach_cues)]
        {
            for cue in cues {
                if cue.len() > words.len() {
                    continue;
                }
                for start in 0..=words.len() - cue.len() {
                    if cue.iter().zip(&words[start..]).all(|(c, w)| c == w) {
                        if ask == Ask::General {
                            ask = kind;
                        }
                        for c in &mut covered[start..start + cue.len()] {
                            *c = true;
                        }
                    }
                }
            }
        }
        (ask, covered)
    }
}
