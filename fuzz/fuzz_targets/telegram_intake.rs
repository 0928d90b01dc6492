//! Fuzz target: arbitrary bytes become a Telegram update (raw JSON, or texts, captions, entities
//! with any offsets, callback data, inline queries and chats of every kind built from the bytes)
//! and run through the intake, the desk's parsing and a full turn on an in-memory store.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sme_advisor::content::Content;
use sme_advisor::fuzzing::{load_valid, read_sources};
use sme_advisor::telegram::fuzz::IntakeFuzz;

fn fuzzer() -> &'static IntakeFuzz<'static> {
    static CONTENT: OnceLock<Content> = OnceLock::new();
    static FUZZER: OnceLock<IntakeFuzz<'static>> = OnceLock::new();
    FUZZER.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        IntakeFuzz::new(CONTENT.get_or_init(|| load_valid(&read_sources(&root))))
    })
}

fuzz_target!(|data: &[u8]| fuzzer().run(data));
