//! Benchmark of one engine turn for a free-text question, on the shipped knowledge base and on a generated one.
//!
//! Run with `cargo bench --bench turn`. It prints the median and p99 time of `engine::step` for a
//! mix of free questions (with typos), measured one turn at a time after a warm-up.

use std::time::{Duration, Instant};

use sme_advisor::content::{self, Content, SourceFile};
use sme_advisor::engine::{self, Input, Session};

const QUESTIONS: &[&str] = &[
    "What is EMPRETEC???",
    "credit in ugnda",
    "how do i get a lon for my farm",
    "tell me about genilem",
    "supplier development programme serbia",
    "how do I bake sourdough bread",
    "what do multinationals require from suppliers",
    "is there a linkage programme in jordan",
    "ifc e-procurement",
    "hello",
];

fn shipped_sources() -> Vec<SourceFile> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = content::read_dirs(&root.join("dialogs"), &root.join("knowledge")).expect("content folders");
    for f in &mut files {
        f.path = std::path::Path::new(&f.path).strip_prefix(root).expect("under the root").display().to_string();
    }
    files
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

/// The shipped content plus `n` generated entries, each with its own keyword and examples.
fn generated_sources(n: usize) -> Vec<SourceFile> {
    let mut files: Vec<SourceFile> = shipped_sources().into_iter().filter(|f| !f.path.contains("entries")).collect();
    let countries = ["uganda", "kenya", "brazil", "jordan", "africa", "global"];
    // Generated entries use one need that no intent relies on: spread over the real needs, ten
    // thousand entries would (rightly) make the self-test fail for the shipped intents' examples.
    let needs = ["policy"];
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
        let text = format!(
            "id = \"gen-{i}\"\nkind = \"bds\"\ncountries = [\"{}\"]\nsectors = [\"any\"]\nneeds = [\"{}\"]\nreviewed = 2026-11-28\nsource = {{ document = \"TD/B/COM.3/EM.28/3\", paragraphs = [14] }}\nkeywords = [\"{unique}\"]\n\n[en]\nname = \"{} {} programme\"\nshort = \"{} {}\"\nprovider = \"{} agency\"\nsummary = \"Helps with {} and {} for small firms.\"\noffers = \"Support.\"\neligible = \"SMEs.\"\napproach = \"Ask the provider.\"\nexamples = [\"what is {unique}\"]\n",
            countries[rand(countries.len())],
            needs[rand(needs.len())],
            words[0],
            words[1],
            words[0],
            words[1],
            words[2],
            words[3],
            words[4]
        );
        files.push(SourceFile { path: format!("knowledge/entries/gen-{i}.toml"), text });
    }
    files
}

fn measure(name: &str, content: &Content, rounds: usize) {
    let session = Session::new("en");
    let inputs: Vec<Input> = QUESTIONS.iter().map(|q| Input::Text(q.to_string())).collect();
    for input in &inputs {
        std::hint::black_box(engine::step(content, &session, input, 0));
    }
    let mut times: Vec<Duration> = Vec::with_capacity(rounds * inputs.len());
    for _ in 0..rounds {
        for input in &inputs {
            let start = Instant::now();
            std::hint::black_box(engine::step(content, &session, input, 0));
            times.push(start.elapsed());
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    println!(
        "{name}: {} entries, {} turns: median {:?}, p99 {:?}, max {:?}",
        content.entries.len(),
        times.len(),
        median,
        p99,
        times[times.len() - 1]
    );
}

fn main() {
    let shipped = content::from_sources(&shipped_sources(), |p| p.starts_with("dialogs")).expect("shipped content is valid");
    measure("shipped knowledge base", &shipped, 2000);
    let started = Instant::now();
    let generated = content::from_sources(&generated_sources(10_000), |p| p.starts_with("dialogs"))
        .unwrap_or_else(|d| panic!("generated content: {}", d[0]));
    println!("generated base loaded and self-tested in {:?}", started.elapsed());
    measure("generated knowledge base", &generated, 500);
}
