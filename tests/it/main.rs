//! The one integration-test binary: transcripts, content checks, storage, the command line, the
//! Telegram bot against a fake Bot API server, fuzz replays and property tests, and tidiness.

mod act;
mod broadcasts;
mod cli;
mod content_check;
mod desk;
mod eval;
mod fake_bot_api;
mod faults;
mod fuzz_replay;
mod hostile;
mod knowledge;
mod languages;
mod properties;
mod robustness;
mod store;
mod support;
mod telegram;
mod tidy;
mod transcripts;
mod web;
mod web_browser;
