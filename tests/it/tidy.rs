//! Tidiness and architecture invariants, checked as ordinary tests.

use crate::support;

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_opens_with_a_doc_line() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz/fuzz_targets"] {
        rust_files(&support::root().join(dir), &mut files);
    }
    assert!(files.len() > 10);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        assert!(text.starts_with("//!"), "{} must open with a `//!` line saying what it is for", file.display());
    }
}

#[test]
fn the_engine_is_pure() {
    let mut files = Vec::new();
    rust_files(&support::root().join("src/engine"), &mut files);
    rust_files(&support::root().join("src/matching"), &mut files);
    assert!(!files.is_empty());
    let forbidden = [
        "teloxide",
        "rusqlite",
        "tokio",
        "std::fs",
        "SystemTime",
        "Instant",
        "crate::clock",
        "crate::store",
        "crate::terminal",
        "std::env",
        "std::io",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        for word in forbidden {
            assert!(!text.contains(word), "{} uses `{word}`: the engine and matching stay free of I/O and the clock", file.display());
        }
    }
}

#[test]
fn only_the_telegram_module_imports_teloxide() {
    let mut files = Vec::new();
    rust_files(&support::root().join("src"), &mut files);
    for file in files {
        if file.components().any(|c| c.as_os_str() == "telegram") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source");
        assert!(!text.contains("teloxide::"), "{} imports teloxide outside src/telegram/", file.display());
    }
}

#[test]
fn every_environment_variable_is_documented() {
    let example = std::fs::read_to_string(support::root().join(".env.example")).expect(".env.example");
    let mut files = Vec::new();
    rust_files(&support::root().join("src"), &mut files);
    let re = regex::Regex::new(r#"(?:var|get)\("([A-Z][A-Z0-9_]+)"\)"#).unwrap();
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        for cap in re.captures_iter(&text) {
            seen += 1;
            assert!(
                example.contains(&format!("{}=", &cap[1])),
                "{} is read in {} but not documented in .env.example",
                &cap[1],
                file.display()
            );
        }
    }
    assert!(seen >= 4);
}
