//! Every language is complete: a user who chose French, Spanish or Portuguese never meets an
//! English sentence from the content, wherever the conversation goes.

use std::collections::{BTreeSet, HashSet, VecDeque};

use sme_advisor::content::Content;
use sme_advisor::engine::{self, Input, Reply, Session};

use crate::support;

/// English texts of the content whose translation into `lang` differs (proper names that are the
/// same in both languages are not English sentences): whole texts, for button labels, and their
/// sentences of four words or more, for message bodies.
fn english_texts(lang: &str) -> (HashSet<String>, BTreeSet<String>) {
    let mut labels = HashSet::new();
    let mut sentences = BTreeSet::new();
    for file in support::shipped_sources() {
        let value: toml::Value = toml::from_str(&file.text).expect("content parses");
        collect(&value, lang, &mut |en, other| {
            if en == other {
                return;
            }
            labels.insert(en.to_string());
            for sentence in en.split_inclusive(['.', '?', '!', ':', '\n']) {
                let sentence = sentence.trim();
                if sentence.split_whitespace().count() >= 4 && !sentence.contains('{') {
                    sentences.insert(sentence.to_string());
                }
            }
        });
    }
    (labels, sentences)
}

/// Calls `found(english, translation)` for every text that has both: `key.en` / `key.<lang>`
/// pairs of strings, and the `[en]` / `[<lang>]` sections of knowledge entries.
fn collect(value: &toml::Value, lang: &str, found: &mut impl FnMut(&str, &str)) {
    match value {
        toml::Value::Table(t) => {
            match (t.get("en"), t.get(lang)) {
                (Some(toml::Value::String(en)), Some(toml::Value::String(other))) => found(en, other),
                (Some(toml::Value::Table(en)), Some(toml::Value::Table(other))) => {
                    for (key, en) in en {
                        if let (toml::Value::String(en), Some(toml::Value::String(other))) = (en, other.get(key)) {
                            found(en, other);
                        }
                    }
                }
                _ => {}
            }
            for v in t.values() {
                collect(v, lang, found);
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| collect(v, lang, found)),
        _ => {}
    }
}

/// Inputs tried at every point of the walk, besides the buttons on screen.
fn probes(content: &Content) -> Vec<Input> {
    let mut inputs = vec![
        Input::Start { payload: None },
        Input::Start { payload: Some("no-such-thing".into()) },
        Input::Text("Kenya".into()),
        Input::Text("xyzzy plugh".into()),
        Input::Text("   ".into()),
        Input::Text("credit uganda".into()),
        Input::Text("training".into()),
        Input::Unsupported("sticker".into()),
        Input::Button("zz:unknown".into()),
        Input::Button("s:financing:gone:x".into()),
        Input::Command { name: "nosuchcommand".into(), args: String::new() },
        Input::Authorized { name: "broadcast".into() },
    ];
    inputs.extend(content.commands.keys().map(|name| Input::Command { name: name.clone(), args: String::new() }));
    for entry in &content.entries {
        inputs.push(Input::Button(format!("e:{}", entry.id)));
        inputs.push(Input::Button(format!("d:{}", entry.id)));
        inputs.push(Input::Start { payload: Some(entry.id.clone()) });
    }
    inputs
}

/// Walks the conversation breadth first from `/start` in one language: every button, and the
/// probes at every new place, up to a budget of turns. Returns every reply seen.
fn walk(content: &Content, lang: &str, budget: usize) -> Vec<Reply> {
    let probes = probes(content);
    let mut seen_places = HashSet::new();
    let mut replies = Vec::new();
    let mut queue: VecDeque<(Session, Input)> = VecDeque::new();
    queue.push_back((Session::new(lang), Input::Start { payload: None }));
    let mut turns = 0;
    while let Some((session, input)) = queue.pop_front() {
        if turns >= budget {
            break;
        }
        turns += 1;
        let step = engine::step(content, &session, &input, 1_795_000_000 + turns as i64);
        assert_eq!(step.session.lang, lang, "the language stays {lang} after {input:?}");
        let place = format!("{:?}|{:?}", step.session.at, step.session.slots);
        let new_place = seen_places.insert(place);
        for reply in &step.replies {
            for button in &reply.buttons {
                // Switching language is the one button that leaves the language.
                if new_place && !button.data.starts_with("l:") {
                    queue.push_back((step.session.clone(), Input::Button(button.data.clone())));
                }
            }
        }
        if new_place {
            queue.extend(probes.iter().map(|p| (step.session.clone(), p.clone())));
        }
        replies.extend(step.replies);
    }
    assert!(turns >= budget.min(500), "the walk reached {turns} turns");
    replies
}

#[test]
fn no_reply_in_a_french_spanish_or_portuguese_session_holds_an_english_sentence() {
    let content = support::shipped();
    for lang in ["fr", "es", "pt"] {
        let (labels, sentences) = english_texts(lang);
        assert!(sentences.len() > 300, "{lang}: only {} English sentences collected", sentences.len());
        let replies = walk(content, lang, 4000);
        let mut problems = BTreeSet::new();
        for reply in &replies {
            let body = format!("{}\n{}", reply.title.as_deref().unwrap_or(""), reply.text);
            for sentence in sentences.iter().filter(|s| body.contains(s.as_str())) {
                problems.insert(format!("{lang}: English sentence \"{sentence}\" in: {}", body.trim()));
            }
            // Language buttons carry each language's own name ("English", "Español").
            for button in reply.buttons.iter().filter(|b| labels.contains(&b.label) && !b.data.starts_with("l:")) {
                problems.insert(format!("{lang}: English button \"{}\" ({})", button.label, button.data));
            }
        }
        assert!(
            problems.is_empty(),
            "{} problem(s) in {} replies:\n{}",
            problems.len(),
            replies.len(),
            problems.into_iter().collect::<Vec<_>>().join("\n")
        );
    }
}

#[test]
fn the_english_sentence_detector_finds_english() {
    // The walk above must be able to fail: an English session walked the same way is full of them.
    let content = support::shipped();
    let (labels, sentences) = english_texts("es");
    let replies = walk(content, "en", 300);
    let hits = replies.iter().filter(|r| sentences.iter().any(|s| r.text.contains(s.as_str()))).count();
    let buttons = replies.iter().flat_map(|r| &r.buttons).filter(|b| labels.contains(&b.label)).count();
    assert!(hits > 100 && buttons > 100, "{hits} replies and {buttons} buttons in English found");
}
