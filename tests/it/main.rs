//! The one integration-test binary: transcripts, content checks, storage, the command line and tidiness.

mod cli;
mod content_check;
mod robustness;
mod store;
mod support;
mod tidy;
mod transcripts;
