//! Property tests of the engine over random conversations on the shipped content: it never panics,
//! every reply is 1 to 4096 characters, every button's data is 1 to 64 bytes and understood when
//! pressed, the session always waits at an existing step, and back returns to the previous step.
//!
//! The conversations are [`Choice`] sequences (press a button of the last replies or an older one,
//! type a phrase of the content or any text, commands, deep links, forged buttons, time passing),
//! played and checked by `sme_advisor::fuzzing`, the same code the fuzz targets run.

use proptest::collection::vec;
use proptest::prelude::*;
use sme_advisor::fuzzing::{Checker, Choice, EngineFuzz, Invariant, Turn};

use crate::support;

fn index() -> impl Strategy<Value = usize> {
    any::<u16>().prop_map(usize::from)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z ]{0,24}",
        1 => "\\PC{0,24}",
        1 => any::<String>(),
    ]
}

/// Weighted toward walking the flows by their buttons, as users do.
fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        12 => index().prop_map(Choice::Press),
        2 => index().prop_map(Choice::PressOld),
        2 => Just(Choice::Back),
        5 => index().prop_map(Choice::Phrase),
        2 => text().prop_map(Choice::Text),
        1 => (text(), 0usize..20_000).prop_map(|(t, n)| Choice::Huge(t, n)),
        1 => (text(), 0usize..6_000).prop_map(|(t, n)| Choice::HugeCommand(t, n)),
        2 => (index(), text()).prop_map(|(i, a)| Choice::Command(i, a)),
        1 => (text(), text()).prop_map(|(n, a)| Choice::RawCommand(n, a)),
        2 => index().prop_map(Choice::StartKnown),
        1 => proptest::option::of(text()).prop_map(Choice::StartRaw),
        2 => (index(), text()).prop_map(|(i, t)| Choice::Forge(i, t)),
        1 => text().prop_map(Choice::RawButton),
        1 => text().prop_map(Choice::Unsupported),
        1 => index().prop_map(Choice::Authorized),
        1 => (0i64..2_000_000).prop_map(Choice::Wait),
    ]
}

fn conversation() -> impl Strategy<Value = Vec<Choice>> {
    vec(choice(), 1..40)
}

fn config() -> ProptestConfig {
    // Shrinking replays conversations with every button pressed: bounded so a failure reports in a minute or so.
    ProptestConfig { cases: 192, failure_persistence: None, max_shrink_iters: 512, ..ProptestConfig::default() }
}

/// Plays a conversation and checks one invariant after every step.
fn holds(invariant: Invariant, choices: &[Choice]) -> Result<usize, TestCaseError> {
    let content = support::shipped();
    let mut checker = Checker::new(content);
    let mut problem = None;
    let mut turns = 0;
    EngineFuzz::new(content).play(choices, |turn: &Turn| {
        turns += 1;
        if problem.is_none() {
            problem = checker.check(turn, invariant).err();
        }
    });
    match problem {
        Some(problem) => Err(TestCaseError::fail(problem)),
        None => Ok(turns),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_engine_never_panics(choices in conversation()) {
        let content = support::shipped();
        let mut turns = 0;
        EngineFuzz::new(content).play(&choices, |_| turns += 1);
        let waits = choices.iter().filter(|c| matches!(c, Choice::Wait(_))).count();
        prop_assert_eq!(turns, choices.len() - waits);
    }

    #[test]
    fn every_reply_is_1_to_4096_characters(choices in conversation()) {
        holds(Invariant::Replies, &choices)?;
    }

    #[test]
    fn every_button_has_1_to_64_bytes_of_data_that_the_engine_understands(choices in conversation()) {
        holds(Invariant::Buttons, &choices)?;
    }

    #[test]
    fn the_session_always_waits_at_an_existing_step(choices in conversation()) {
        holds(Invariant::Session, &choices)?;
    }

    #[test]
    fn back_returns_to_the_previous_step(choices in conversation()) {
        holds(Invariant::Back, &choices)?;
    }

    #[test]
    fn only_authorized_input_enters_a_role_flow(choices in conversation()) {
        holds(Invariant::RoleFlows, &choices)?;
    }
}

/// Characters whose case mapping changes length, combining marks, direction marks and the like:
/// the shapes of text that broke byte-offset arithmetic before.
fn tricky_unicode() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<char>().prop_map(String::from),
        2 => prop::sample::select(vec!["İ", "ß", "ǅ", "ﬁ", "ŉ", "ΐ", "Ω", "😀", "🇺🇬", "\u{200f}", "\u{202e}", "\u{feff}", "é", "@advisor_bot", "/"])
            .prop_map(str::to_string),
        1 => (0usize..400).prop_map(|n| format!("a{}", "\u{301}".repeat(n))),
        1 => "[a-z ]{1,12}",
    ];
    vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any text as a command, a group mention or a private message, with the entities Telegram
    /// would add and some it never would, goes through the intake and a full turn without a panic.
    #[test]
    fn any_unicode_through_the_telegram_intake(
        text in tricky_unicode(),
        command in prop::sample::select(vec!["", "/stats ", "/export ", "/start ", "/inquiry ", "/grant ", "/learn 1 "]),
        group in any::<bool>(),
        offset in 0usize..64,
        length in 0usize..64,
    ) {
        use serde_json::json;
        let fuzz = sme_advisor::telegram::fuzz::IntakeFuzz::new(support::shipped());
        let full = if group { format!("{text} @advisor_bot {text}") } else { format!("{command}{text}") };
        let units = |s: &str| s.chars().map(char::len_utf16).sum::<usize>();
        let mut entities = vec![json!({"type": "bold", "offset": offset, "length": length})];
        if !command.is_empty() && !group {
            entities.push(json!({"type": "bot_command", "offset": 0, "length": units(command.trim_end())}));
        }
        if group {
            entities.push(json!({"type": "mention", "offset": units(&text) + 1, "length": units("@advisor_bot")}));
        }
        let chat = if group { json!({"id": -100, "type": "group", "title": "G"}) } else { json!({"id": 5, "type": "private", "first_name": "U"}) };
        let update = json!({"update_id": 1, "message": {"message_id": 7, "date": 1_800_000_000, "chat": chat,
            "from": {"id": 5, "is_bot": false, "first_name": "U"}, "text": full, "entities": entities}});
        fuzz.check_update(update).map_err(TestCaseError::fail)?;
    }
}
