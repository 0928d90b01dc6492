//! Shows how the matcher reads a question: `cargo run --example explain -- "your question"` (same as `sme-advisor explain`).

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let content = sme_advisor::content::load_dirs(&root.join("dialogs"), &root.join("knowledge")).unwrap_or_else(|d| panic!("{}", d[0]));
    for question in std::env::args().skip(1) {
        println!("{question:?}");
        print!("{}", content.index.explain(&question, &sme_advisor::matching::Asker::lang("en")));
    }
}
