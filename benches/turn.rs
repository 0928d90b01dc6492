//! Benchmarks of the engine and its edges: one turn by kind, content loading, and a stored turn.
//!
//! Run with `cargo bench --bench turn` (add `-- --quick` for fewer rounds). For each case it
//! prints the median and p99 of many single measurements after a warm-up:
//!
//! - one `engine::step` for a button press, a free question, a question with typos and a question
//!   nobody can answer (fallback), on the shipped content and on generated knowledge bases of 1,000
//!   and 10,000 entries (the shipped dialogs plus generated entries in every content language);
//! - loading and validating the content (read from disk for the shipped folders), including the
//!   self-test of every example question;
//! - one turn through the store: a SQLite transaction that loads the session, runs the engine and
//!   saves the session and the inquiry, on a database file (WAL, `synchronous=NORMAL`).

use std::time::{Duration, Instant};

use sme_advisor::content::{self, Content, SourceFile};
use sme_advisor::engine::{self, Input, Session};
use sme_advisor::store::Store;

/// Inputs of each kind; every one is measured from a fresh session at the main menu.
const KINDS: &[(&str, &[&str])] = &[
    ("button", &["f:financing", "f:services", "f:linkages", "m", "f:profile"]),
    (
        "free text",
        &[
            "tell me about genilem",
            "what do multinationals require from suppliers",
            "is there a linkage programme in jordan",
            "ifc e-procurement",
            "supplier development programme serbia",
        ],
    ),
    (
        "typo",
        &["credit in ugnda", "how do i get a lon for my farm", "what is emprtec", "suplier developmnt serbia", "linkge progam malaysa"],
    ),
    (
        "fallback",
        &["how do I bake sourdough bread", "what is the weather in paris tomorrow", "zzz qqq vvv", "my cat likes fish", "football scores"],
    ),
];

fn shipped_sources() -> Vec<SourceFile> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = content::read_dirs(&root.join("dialogs"), &root.join("knowledge")).expect("content folders");
    for f in &mut files {
        f.path = std::path::Path::new(&f.path).strip_prefix(root).expect("under the root").display().to_string();
    }
    files
}

fn is_dialog(path: &str) -> bool {
    path.starts_with("dialogs")
}

/// A deterministic pseudo-word for a number, from syllables.
fn word(mut n: usize) -> String {
    const SYLLABLES: [&str; 20] =
        ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "ba", "do", "fu", "gi", "ha", "je", "ko", "lu", "ma", "no", "pi"];
    let mut w = String::new();
    for _ in 0..3 {
        w.push_str(SYLLABLES[n % 20]);
        n /= 20;
    }
    w
}

/// The shipped dialogs and vocabulary plus `n` generated entries, each with its own keyword and
/// example, with a section in every language of the shipped content.
fn generated_sources(n: usize, languages: &[String]) -> Vec<SourceFile> {
    let mut files: Vec<SourceFile> = shipped_sources().into_iter().filter(|f| !f.path.contains("entries")).collect();
    let countries = ["uganda", "kenya", "brazil", "jordan", "africa", "global"];
    // Generated entries use one need that no intent relies on: spread over the real needs, ten
    // thousand entries would (rightly) make the self-test fail for the shipped intents' examples.
    let mut state = 12345u64;
    let mut rand = move |m: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as usize
    };
    for i in 0..n {
        let words: Vec<String> = (0..6).map(|_| word(rand(8000))).collect();
        let unique = format!("gen{i}x");
        let mut text = format!(
            "id = \"gen-{i}\"\nkind = \"bds\"\ncountries = [\"{}\"]\nsectors = [\"any\"]\nneeds = [\"policy\"]\nreviewed = 2026-11-28\nstatus = \"unknown\"\nsource = {{ document = \"TD/B/COM.3/EM.28/3\", paragraphs = [14] }}\nevidence = [{{ paragraph = 14, quote = \"the importance of business development services\" }}]\nkeywords = [\"{unique}\"]\n",
            countries[rand(countries.len())],
        );
        for lang in languages {
            text.push_str(&format!(
                "\n[{lang}]\nname = \"{} {} programme\"\nshort = \"{} {}\"\nprovider = \"{} agency\"\nsummary = \"Helps with {} and {} for small firms.\"\noffers = \"Support.\"\neligible = \"SMEs.\"\napproach = \"Ask the provider.\"\nexamples = [\"what is {unique}\"]\n",
                words[0], words[1], words[0], words[1], words[2], words[3], words[4]
            ));
        }
        files.push(SourceFile { path: format!("knowledge/entries/gen-{i}.toml"), text });
    }
    files
}

/// Median, p99 and max of a set of measurements.
fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    println!("{name:<48} n={:<6} median {:>10.1?}  p99 {:>10.1?}  max {:>10.1?}", times.len(), median, p99, times[times.len() - 1]);
}

/// The session a user has at the main menu, where every measured input starts.
fn at_menu(content: &Content) -> Session {
    engine::step(content, &Session::new("en"), &Input::Start { payload: None }, 0).session
}

fn input(raw: &str) -> Input {
    if raw.len() <= 12 && (raw.contains(':') || raw.len() == 1) { Input::Button(raw.to_string()) } else { Input::Text(raw.to_string()) }
}

fn measure_turns(base: &str, content: &Content, rounds: usize) {
    let session = at_menu(content);
    for (kind, raws) in KINDS {
        let inputs: Vec<Input> = raws.iter().map(|r| input(r)).collect();
        for i in &inputs {
            std::hint::black_box(engine::step(content, &session, i, 0));
        }
        let mut times = Vec::with_capacity(rounds * inputs.len());
        for _ in 0..rounds {
            for i in &inputs {
                let start = Instant::now();
                std::hint::black_box(engine::step(content, &session, i, 0));
                times.push(start.elapsed());
            }
        }
        report(&format!("turn {kind}, {base} ({} entries)", content.entries.len()), times);
    }
}

fn measure_load(name: &str, rounds: usize, load: impl Fn() -> Content) {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        std::hint::black_box(load());
        times.push(start.elapsed());
    }
    report(name, times);
}

fn measure_store(content: &Content, turns: usize) {
    let dir = std::env::temp_dir().join(format!("sme-advisor-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = Store::open(&dir.join("bench.sqlite3")).expect("database");
    let inputs: Vec<Input> = KINDS.iter().flat_map(|(_, raws)| raws.iter().map(|r| input(r))).collect();
    let mut times = Vec::with_capacity(turns);
    for n in 0..turns {
        let user = format!("{}", n % 500);
        let i = &inputs[n % inputs.len()];
        let start = Instant::now();
        let (_, step) = store.turn("bench", &user, "en", n as i64, |s| engine::step(content, s, i, n as i64)).expect("turn");
        times.push(start.elapsed());
        std::hint::black_box(step);
    }
    report("store turn (SQLite transaction with the engine)", times);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = content::load_dirs(&root.join("dialogs"), &root.join("knowledge")).expect("shipped content is valid");
    let languages: Vec<String> = shipped.languages.iter().map(|l| l.code.clone()).collect();
    println!("languages: {}", languages.join(", "));
    measure_turns("shipped", &shipped, 2000 / scale);
    measure_load("load and check the shipped content from disk", 20 / scale.min(4), || {
        content::load_dirs(&root.join("dialogs"), &root.join("knowledge")).expect("valid")
    });
    measure_store(&shipped, 5000 / scale);
    for n in [1_000, 10_000] {
        let sources = generated_sources(n, &languages);
        let content = content::from_sources(&sources, is_dialog).unwrap_or_else(|d| panic!("generated content: {}", d[0]));
        measure_turns("generated", &content, if n == 1_000 { 1000 } else { 300 } / scale);
        let rounds = if n == 1_000 { 5 } else { 2 };
        measure_load(&format!("load and check {n} generated entries"), rounds, || {
            content::from_sources(&sources, is_dialog).expect("valid")
        });
    }
}
