//! Replays every kept fuzz input, `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`, through
//! the same checks the fuzz targets run (`sme_advisor::fuzzing`), so a crash once found stays fixed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use sme_advisor::fuzzing::{EngineFuzz, LoaderFuzz};

use crate::support;

/// The kept inputs of one target: its corpus and its regressions.
fn kept(target: &str) -> (Vec<(PathBuf, Vec<u8>)>, usize) {
    let mut files = Vec::new();
    let mut regressions = 0;
    for dir in ["corpus", "regressions"] {
        let dir = support::root().join("fuzz").join(dir).join(target);
        let Ok(read) = std::fs::read_dir(&dir) else { continue };
        for entry in read {
            let path = entry.expect("a directory entry").path();
            if path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                let bytes = std::fs::read(&path).expect("a kept fuzz input");
                regressions += usize::from(dir.ends_with(format!("regressions/{target}")));
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    (files, regressions)
}

/// Checks each input, collecting the failures (a broken invariant, or a panic of the code under
/// test) so one report names every failing file.
fn replay(files: &[(PathBuf, Vec<u8>)], check: impl Fn(&[u8]) -> Result<(), String>) {
    let mut failures = Vec::new();
    for (path, bytes) in files {
        let problem = match catch_unwind(AssertUnwindSafe(|| check(bytes))) {
            Ok(result) => result.err(),
            Err(panic) => Some(format!(
                "panicked: {}",
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
            )),
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {problem}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{} kept fuzz input(s) fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn engine_inputs_corpus_and_regressions_replay_cleanly() {
    let (files, regressions) = kept("engine_inputs");
    assert!(files.len() >= 20, "fuzz/corpus/engine_inputs/ should hold the minimised corpus, found {} files", files.len());
    assert!(regressions >= 1, "fuzz/regressions/engine_inputs/ should hold the crashes found");
    let fuzz = EngineFuzz::new(support::shipped());
    replay(&files, |bytes| fuzz.check(bytes));
}

#[test]
fn content_loader_corpus_and_regressions_replay_cleanly() {
    let (files, regressions) = kept("content_loader");
    assert!(files.len() >= 20, "fuzz/corpus/content_loader/ should hold the minimised corpus, found {} files", files.len());
    assert!(regressions >= 1, "fuzz/regressions/content_loader/ should hold the crashes found");
    let fuzz = LoaderFuzz::new(support::shipped_sources());
    replay(&files, |bytes| fuzz.check(bytes));
}

#[test]
fn telegram_intake_corpus_and_regressions_replay_cleanly() {
    let (files, regressions) = kept("telegram_intake");
    assert!(files.len() >= 20, "fuzz/corpus/telegram_intake/ should hold the corpus, found {} files", files.len());
    assert!(regressions >= 4, "fuzz/regressions/telegram_intake/ should hold the crashes found");
    let fuzz = sme_advisor::telegram::fuzz::IntakeFuzz::new(support::shipped());
    replay(&files, |bytes| fuzz.check(bytes));
}
