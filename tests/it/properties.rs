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
