//! Content checking: the shipped content is clean, and broken content yields exactly the expected diagnostics.
//!
//! Each folder under `tests/fixtures/broken/` holds files laid over the shipped content (same path
//! replaces, new path adds) and `expected.txt`, the diagnostics in order. `UPDATE_GOLDEN=1`
//! rewrites `expected.txt`.

use sme_advisor::content::SourceFile;
use sme_advisor::engine::{self, Input, Session};

use crate::support;

#[test]
fn shipped_content_has_no_diagnostics() {
    let content = support::load(&support::shipped_sources())
        .unwrap_or_else(|d| panic!("{}", d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
    assert!(content.entries.len() >= 30, "the knowledge base should cover the seed: {} entries", content.entries.len());
}

fn overlay(case: &std::path::Path) -> Vec<SourceFile> {
    let mut files = support::shipped_sources();
    let mut stack = vec![case.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixture folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let rel = path.strip_prefix(case).expect("inside the case").display().to_string();
                let text = std::fs::read_to_string(&path).expect("fixture file");
                files.retain(|f| f.path != rel);
                files.push(SourceFile { path: rel, text });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

#[test]
fn broken_content_reports_every_problem_with_its_position() {
    let dir = support::root().join("tests/fixtures/broken");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir).expect("fixtures").map(|e| e.expect("entry").path()).collect();
    cases.sort();
    assert!(cases.len() >= 4);
    let mut failures = Vec::new();
    for case in cases {
        let actual = match support::load(&overlay(&case)) {
            Ok(_) => String::from("(no diagnostics)\n"),
            Err(diags) => diags.iter().map(|d| format!("{d}\n")).collect(),
        };
        let expected_path = case.join("expected.txt");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            if update {
                std::fs::write(&expected_path, &actual).expect("write expected");
            } else {
                failures.push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", case.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_card_is_phone_sized_and_every_entry_cites_its_source() {
    let content = support::shipped();
    for (entry, lang) in content.entries.iter().flat_map(|e| content.languages.iter().map(move |l| (e, l.code.as_str()))) {
        let session = Session::new(lang);
        let step = engine::step(content, &session, &Input::Button(format!("e:{}", entry.id)), 0);
        let card = &step.replies[0];
        let size = card.title.as_deref().unwrap_or("").chars().count() + card.text.chars().count();
        assert!(size < 1000, "card of {} in {lang} has {size} characters", entry.id);
        assert!(card.buttons.iter().any(|b| b.data == format!("d:{}", entry.id)), "card of {} has a details button", entry.id);
        let details = engine::step(content, &session, &Input::Button(format!("d:{}", entry.id)), 0);
        let text = &details.replies[0].text;
        if entry.general {
            // General guidance says so instead of citing the report.
            let label = content.message("label_general", lang, &[]);
            assert!(
                text.contains(&label) && card.text.contains(&label),
                "details and card of {} in {lang} say it is general guidance",
                entry.id
            );
        } else {
            assert!(
                text.contains("TD/B/COM.3/EM.28/3") && entry.paragraphs.iter().all(|p| text.contains(&p.to_string())),
                "details of {} in {lang} cite the source: {text}",
                entry.id
            );
        }
        assert!(text.chars().count() <= 4096);
    }
}

#[test]
fn financing_answers_carry_the_not_a_lender_line() {
    let content = support::shipped();
    let line = content.message("financing_disclaimer", "en", &[]);
    let session = Session::new("en");
    let mut financing = 0;
    for entry in content.entries.iter().filter(|e| e.kind == sme_advisor::content::Kind::Financing) {
        financing += 1;
        let step = engine::step(content, &session, &Input::Button(format!("e:{}", entry.id)), 0);
        assert!(step.replies[0].text.contains(&line), "card of {} lacks the disclaimer", entry.id);
    }
    assert!(financing >= 3, "the base should hold financing entries, found {financing}");
}

#[test]
fn no_invented_contacts_in_the_knowledge_base() {
    let phone = regex::Regex::new(r"\+?\d[\d \-]{7,}\d").unwrap();
    let email = regex::Regex::new(r"[\w.+-]+@[\w-]+\.[\w.]+").unwrap();
    let url = regex::Regex::new(r"(?i)\b(https?://|www\.)").unwrap();
    for file in support::shipped_sources().iter().filter(|f| f.path.starts_with("knowledge")) {
        for (n, line) in file.text.lines().enumerate() {
            // Dates are not phone numbers; `link = "https://..."` is an entry's official address,
            // whose domain the loader checks against knowledge/links.toml.
            let dated = ["reviewed", "status_checked", "checked"].iter().any(|k| line.trim_start().starts_with(k));
            let link = line.trim_start().starts_with("link = \"https://") || line.trim_start().starts_with('#');
            let hit = phone.is_match(line) && !dated || email.is_match(line) || url.is_match(line) && !link;
            assert!(!hit, "{}:{}: looks like a contact or address: {line}", file.path, n + 1);
        }
    }
}

#[test]
fn a_text_missing_in_one_language_and_a_word_shared_by_two_terms_are_reported() {
    let mut files = support::shipped_sources();
    for f in &mut files {
        if f.path == "dialogs/flows.toml" {
            f.text = f.text.replacen("say.pt = \"Do que a sua empresa precisa?\"\n", "", 1);
        }
        if f.path == "knowledge/vocabulary.toml" {
            // Give Uganda Kenya's capital as a synonym, wherever the two are defined.
            let at = f.text.find("[country.uganda]").expect("uganda");
            let list = at + f.text[at..].find("synonyms.en = [").expect("uganda's English synonyms") + "synonyms.en = [".len();
            f.text.insert_str(list, "\"nairobi\", ");
        }
    }
    let diags: Vec<String> = support::load(&files).expect_err("broken content").iter().map(|d| d.to_string()).collect();
    let flows = support::shipped_sources().into_iter().find(|f| f.path == "dialogs/flows.toml").expect("flows");
    let line = flows.text.lines().position(|l| l.starts_with("say.en = \"What does your business need?\"")).expect("menu step") + 1;
    assert!(diags.contains(&format!("dialogs/flows.toml:{line}:1: missing `say.pt` (every text needs every language)")), "{diags:#?}");
    // The word belongs to the term defined first; the other one is reported.
    let vocabulary = support::shipped_sources().into_iter().find(|f| f.path == "knowledge/vocabulary.toml").expect("vocabulary");
    let line_of = |id: &str| vocabulary.text.lines().position(|l| l == format!("[country.{id}]")).expect("defined") + 1;
    let (first, second) = if line_of("kenya") < line_of("uganda") { ("kenya", "uganda") } else { ("uganda", "kenya") };
    assert!(
        diags.contains(&format!(
            "knowledge/vocabulary.toml:{}:10: synonym \"nairobi\" of `country.{second}` already names `country.{first}`; a word may belong to one term only",
            line_of(second)
        )),
        "{diags:#?}"
    );
    assert_eq!(diags.len(), 2, "{diags:#?}");
}

#[test]
fn telegram_language_tags_map_to_content_languages() {
    let content = support::shipped();
    let codes: Vec<&str> = content.languages.iter().map(|l| l.code.as_str()).collect();
    assert_eq!(codes, ["en", "fr", "es", "pt"]);
    for (tag, expected) in [
        (Some("pt-BR"), "pt"),
        (Some("pt-br"), "pt"),
        (Some("pt_PT"), "pt"),
        (Some("fr-CA"), "fr"),
        (Some("FR"), "fr"),
        (Some("es-419"), "es"),
        (Some("es"), "es"),
        (Some("ht"), "fr"),
        (Some("en-GB"), "en"),
        (Some("sw"), "en"),
        (Some(""), "en"),
        (Some("-"), "en"),
        (None, "en"),
    ] {
        assert_eq!(content.language_for(tag), expected, "{tag:?}");
    }
}
