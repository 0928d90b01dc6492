//! SME Linkage Advisor: a guided advisor for small businesses, driven by content files.
//!
//! # Layout
//!
//! - [`content`] loads `dialogs/` and `knowledge/` into a validated [`content::Content`], reporting
//!   every problem as `path:line:col: message`.
//! - [`matching`] normalises free text and matches it against intents and entries, tolerating typos.
//! - [`eval`] scores the matcher on the evaluation set in `tests/eval/`.
//! - [`engine`] is the pure dialog engine: `step(content, session, input, now) -> Step`.
//! - [`desk`] is the staff desk's pure part: staff commands, roles, inquiry views, statistics and exports.
//! - [`broadcast`] is the pure part of programme calls: the call format, who a call reaches, pacing.
//! - [`store`] keeps users, profiles, sessions and inquiries in SQLite, one transaction per turn.
//! - [`telegram`] is the Telegram bot front end (the only module that imports teloxide).
//! - [`terminal`] is the terminal chat front end; [`config`] reads the environment; [`clock`] reads time;
//!   [`dates`] parses and formats dates, periods and schedules (with `jiff`), without reading the clock.
//! - [`charts`] draws the statistics charts with plotters: SVG for the web desk, PNG for Telegram.
//! - [`web`] is the web desk for staff, agencies and admins (axum, server-rendered HTML).
//! - `fuzzing` (hidden, behind the `fuzzing` cargo feature that `fuzz/` and the tests enable) drives the
//!   engine and the loader from arbitrary bytes.
//!
//! The engine imports nothing from the store, the front ends, the file system or the clock.

pub mod act;
pub mod broadcast;
pub mod charts;
pub mod cli;
pub mod clock;
pub mod config;
pub mod content;
pub mod dates;
pub mod desk;
pub mod engine;
pub mod eval;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod matching;
pub mod store;
pub mod telegram;
pub mod terminal;
pub mod web;
