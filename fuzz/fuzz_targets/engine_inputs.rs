//! Fuzz target: arbitrary bytes become a conversation (button presses from the previous replies,
//! phrases of the content, commands, deep links, forged buttons, huge text, time passing) with the
//! engine over the shipped content; every invariant is checked after every step.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sme_advisor::content::Content;
use sme_advisor::fuzzing::{EngineFuzz, load_valid, read_sources};

fn fuzzer() -> &'static EngineFuzz<'static> {
    static CONTENT: OnceLock<Content> = OnceLock::new();
    static FUZZER: OnceLock<EngineFuzz<'static>> = OnceLock::new();
    FUZZER.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        EngineFuzz::new(CONTENT.get_or_init(|| load_valid(&read_sources(&root))))
    })
}

fuzz_target!(|data: &[u8]| fuzzer().run(data));
