//! Bad input gets a clear answer and loses nothing: huge, empty, odd or forged input never breaks a turn.

use sme_advisor::engine::{self, Input, Session};
use sme_advisor::store::Store;

use crate::support;

#[test]
fn odd_texts_and_forged_buttons_get_an_answer() {
    let content = support::shipped();
    let huge = "credit ".repeat(20_000);
    let inputs = vec![
        Input::Text(huge.clone()),
        Input::Text(String::new()),
        Input::Text("   \n\t ".into()),
        Input::Text("🙂🙂🙂".into()),
        Input::Text("\u{0000}\u{202e}قرض للمزارعين".into()),
        Input::Text("{country} {{}} %s <b>&amp;".into()),
        Input::Button(String::new()),
        Input::Button("s:financing:no-such-step:x".into()),
        Input::Button("s:menu:choose:no-such-button".into()),
        Input::Button("s:financing:sector:not-a-sector".into()),
        Input::Button("r:credit:financing:not-a-number".into()),
        Input::Button("r:credit:nonsense:3".into()),
        Input::Button("e:no-such-entry".into()),
        Input::Button("l:xx".into()),
        Input::Button(":::::".into()),
        Input::Command { name: "DROP TABLE users".into(), args: "x".repeat(10_000) },
        Input::Start { payload: Some("../../etc/passwd".into()) },
        Input::Unsupported("sticker".into()),
    ];
    for input in inputs {
        let step = engine::step(content, &Session::new("en"), &input, 0);
        assert!(!step.replies.is_empty(), "{input:?} got no reply");
        for reply in &step.replies {
            assert!(reply.text.chars().count() <= 4096, "{input:?} gave an over-long reply");
            assert!(reply.buttons.iter().all(|b| !b.data.is_empty() && b.data.len() <= 64));
        }
    }
}

#[test]
fn a_huge_question_is_logged_shortened_and_nothing_is_lost() {
    let content = support::shipped();
    let mut store = Store::open_in_memory().unwrap();
    let huge = "Where can I find export support for my coffee? ".repeat(5_000);
    let (_, step) = store.turn("terminal", "u1", "en", 1, |s| engine::step(content, s, &Input::Text(huge.clone()), 1)).unwrap();
    assert!(!step.replies.is_empty());
    let rows = store.inquiries(5).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].text.chars().count(), sme_advisor::store::MAX_STORED_TEXT);
}

#[test]
fn random_input_never_panics() {
    let content = support::shipped();
    let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyz :-_0123456789éü🙂/{}".chars().collect();
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut session = Session::new("en");
    let mut data: Vec<String> = vec!["m".into()];
    for turn in 0..3_000 {
        let len = (next() % 40) as usize;
        let text: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        let input = match next() % 4 {
            0 => Input::Text(text),
            1 => Input::Button(text),
            // Press a real button from the last reply most of the time, so flows are walked deeply.
            _ => Input::Button(data[(next() % data.len() as u64) as usize].clone()),
        };
        let step = engine::step(content, &session, &input, turn);
        assert!(!step.replies.is_empty(), "turn {turn}: {input:?} got no reply");
        let buttons: Vec<String> = step.replies.iter().flat_map(|r| r.buttons.iter().map(|b| b.data.clone())).collect();
        if !buttons.is_empty() {
            data = buttons;
        }
        session = step.session;
    }
}
