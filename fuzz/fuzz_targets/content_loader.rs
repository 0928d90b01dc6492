//! Fuzz target: arbitrary bytes become one content file (alone, beside the shipped content, or in
//! place of one of its files) for the loader, which must answer with content or well-formed
//! `path:line:col` diagnostics and never panic.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sme_advisor::fuzzing::{LoaderFuzz, read_sources};

fn fuzzer() -> &'static LoaderFuzz {
    static FUZZER: OnceLock<LoaderFuzz> = OnceLock::new();
    FUZZER.get_or_init(|| LoaderFuzz::new(read_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))))
}

fuzz_target!(|data: &[u8]| fuzzer().run(data));
