//! A user's conversation state: where they are in a flow, what they answered, and their profile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::content::Target;

use super::Timestamp;

/// Bumped when the session's shape changes incompatibly; an older session is replaced by a fresh
/// one. (Fields added with a default keep the version.)
pub const SESSION_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub version: u32,
    pub lang: String,
    /// Stored in its own table by the shell, not with the rest of the session.
    #[serde(skip)]
    pub profile: Profile,
    /// The step waiting for an answer, if any.
    pub at: Option<Position>,
    /// Steps answered in this flow, for "back".
    pub stack: Vec<Position>,
    /// Answers that are not profile fields.
    pub slots: BTreeMap<String, String>,
    /// The last question the bot could not answer, for a handoff.
    pub last_question: Option<String>,
    /// The user's last few typed messages (shortened), shown to an advisor with a handoff.
    #[serde(default)]
    pub recent: Vec<String>,
    /// Where the user was (the step and its back stack) when they opened the language choice, to
    /// ask that step again in the chosen language; kept only until the next turn.
    #[serde(default)]
    pub resume: Option<(Position, Vec<Position>)>,
    pub updated: Timestamp,
}

impl Session {
    pub fn new(lang: &str) -> Session {
        Session { version: SESSION_VERSION, lang: lang.to_string(), ..Session::default() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub flow: String,
    pub step: String,
}

impl Position {
    pub fn of(target: &Target) -> Position {
        Position { flow: target.flow.clone(), step: target.step.clone() }
    }

    pub fn target(&self) -> Target {
        Target { flow: self.flow.clone(), step: self.step.clone() }
    }
}

/// What the user told us about their business, remembered across conversations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub country: Option<String>,
    pub sector: Option<String>,
    pub size: Option<String>,
    pub stage: Option<String>,
    /// Most recent first, at most three.
    pub needs: Vec<String>,
}

impl Profile {
    /// `country=uganda sector=agribusiness need=credit`, for the inquiry log.
    pub fn describe(&self, need: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (name, value) in [("country", &self.country), ("sector", &self.sector), ("size", &self.size), ("stage", &self.stage)] {
            if let Some(v) = value {
                parts.push(format!("{name}={v}"));
            }
        }
        if let Some(n) = need {
            parts.push(format!("need={n}"));
        }
        parts.join(" ")
    }
}
