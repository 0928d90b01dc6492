//! Helpers shared by the integration tests: the repository root and the shipped content.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sme_advisor::content::{self, Content, SourceFile};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped `dialogs/` and `knowledge/` files, with paths relative to the repository.
pub fn shipped_sources() -> Vec<SourceFile> {
    let root = root();
    let mut files = content::read_dirs(&root.join("dialogs"), &root.join("knowledge")).expect("the content folders are readable");
    for f in &mut files {
        f.path = Path::new(&f.path).strip_prefix(&root).expect("under the root").display().to_string();
    }
    files
}

/// Loads sources the way the program does, treating `dialogs/...` paths as dialog files.
pub fn load(files: &[SourceFile]) -> Result<Content, Vec<content::Diagnostic>> {
    content::from_sources(files, |p| p.starts_with("dialogs"))
}

/// The shipped content, loaded once per test run.
pub fn shipped() -> &'static Content {
    static CONTENT: OnceLock<Content> = OnceLock::new();
    CONTENT.get_or_init(|| match load(&shipped_sources()) {
        Ok(c) => c,
        Err(diags) => panic!("shipped content is invalid:\n{}", diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")),
    })
}
