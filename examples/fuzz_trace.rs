//! Prints every turn of a fuzz input: `cargo run --example fuzz_trace -- FILE`.
use sme_advisor::fuzzing::{Choice, EngineFuzz, load_valid, read_sources};
fn main() {
    let path = std::env::args().nth(1).expect("a fuzz input file");
    let data = std::fs::read(path).expect("readable");
    let content = load_valid(&read_sources(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))));
    let fuzz = EngineFuzz::new(&content);
    let choices: Vec<Choice> = Choice::decode(&data);
    fuzz.play(&choices, |t| {
        println!(
            "{} {:?}\n  at {:?} -> {:?}\n  replies: {:?}",
            t.now,
            t.input,
            t.before.at,
            t.step.session.at,
            t.step.replies.iter().map(|r| r.text.chars().take(60).collect::<String>()).collect::<Vec<_>>()
        );
    });
}
