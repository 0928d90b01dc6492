//! Tidiness and architecture invariants, checked as ordinary tests.

use crate::support;

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_opens_with_a_doc_line() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz/fuzz_targets"] {
        rust_files(&support::root().join(dir), &mut files);
    }
    assert!(files.len() > 10);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        assert!(text.starts_with("//!"), "{} must open with a `//!` line saying what it is for", file.display());
    }
}

#[test]
fn the_engine_is_pure() {
    let mut files = Vec::new();
    rust_files(&support::root().join("src/engine"), &mut files);
    rust_files(&support::root().join("src/matching"), &mut files);
    assert!(!files.is_empty());
    let forbidden = [
        "teloxide",
        "rusqlite",
        "tokio",
        "std::fs",
        "SystemTime",
        "Instant",
        "crate::clock",
        "crate::store",
        "crate::terminal",
        "std::env",
        "std::io",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        for word in forbidden {
            assert!(!text.contains(word), "{} uses `{word}`: the engine and matching stay free of I/O and the clock", file.display());
        }
    }
}

#[test]
fn only_the_telegram_module_imports_teloxide() {
    let mut files = Vec::new();
    rust_files(&support::root().join("src"), &mut files);
    for file in files {
        if file.components().any(|c| c.as_os_str() == "telegram") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source");
        assert!(!text.contains("teloxide::"), "{} imports teloxide outside src/telegram/", file.display());
    }
}

#[test]
fn every_environment_variable_is_documented() {
    let example = std::fs::read_to_string(support::root().join(".env.example")).expect(".env.example");
    let mut files = Vec::new();
    rust_files(&support::root().join("src"), &mut files);
    let re = regex::Regex::new(r#"(?:var|get)\("([A-Z][A-Z0-9_]+)"\)"#).unwrap();
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        for cap in re.captures_iter(&text) {
            seen += 1;
            assert!(
                example.contains(&format!("{}=", &cap[1])),
                "{} is read in {} but not documented in .env.example",
                &cap[1],
                file.display()
            );
        }
    }
    assert!(seen >= 4);
}

// ---------------------------------------------------------------------------------------------
// Architecture invariants over `src/`: the module graph, purity of the decide parts, the clock.
//
// Each check may carry a list of KNOWN exceptions: violations that exist today and are being
// removed. The list can only shrink: an exception that no longer occurs fails the test too, so
// whoever removes a violation also deletes its line here.
// ---------------------------------------------------------------------------------------------

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// One file of `src/`, with its comments, doc lines and `#[cfg(test)]` items left out.
struct Source {
    /// The path from the repository root, with `/` separators: `src/desk/mod.rs`.
    rel: String,
    /// The module path of the file: `["desk"]` for `src/desk/mod.rs`, `["desk", "report"]` for
    /// `src/desk/report.rs`, empty for `src/lib.rs` and `src/main.rs`.
    path: Vec<String>,
    /// The code lines, numbered from 1.
    lines: Vec<(usize, String)>,
}

impl Source {
    fn parse(rel: &str, text: &str) -> Source {
        let inner = rel.strip_prefix("src/").unwrap_or(rel).strip_suffix(".rs").unwrap_or(rel);
        let mut path: Vec<String> = inner.split('/').map(str::to_string).collect();
        if matches!(path.last().map(String::as_str), Some("mod" | "lib" | "main")) {
            path.pop();
        }
        let mut lines = Vec::new();
        let mut numbered = text.lines().enumerate().map(|(i, l)| (i + 1, l)).peekable();
        while let Some((n, line)) = numbered.next() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            if trimmed.starts_with("#[cfg(test)]") {
                // rustfmt puts a top-level `mod tests {` block's closing brace alone at column 0.
                let next = numbered.next().map_or("", |(_, l)| l);
                if next.starts_with("mod ") && next.trim_end().ends_with('{') {
                    for (_, l) in numbered.by_ref() {
                        if l.trim_end() == "}" {
                            break;
                        }
                    }
                }
                continue;
            }
            lines.push((n, line.to_string()));
        }
        Source { rel: rel.to_string(), path, lines }
    }

    /// The top-level module this file belongs to (`None` for `lib.rs` and `main.rs`).
    fn module(&self) -> Option<&str> {
        self.path.first().map(String::as_str)
    }

    /// The code of the file as pieces to search, with their line: each path of a `use` statement
    /// (groups expanded, statements over several lines joined, at the line where they start), and
    /// every other line as it is.
    fn code(&self) -> Vec<(String, usize)> {
        static USE: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s").unwrap());
        let mut pieces = Vec::new();
        let mut lines = self.lines.iter();
        while let Some((n, line)) = lines.next() {
            if USE.is_match(line) {
                let mut statement = line.clone();
                while !statement.contains(';') {
                    match lines.next() {
                        Some((_, more)) => statement.push_str(more),
                        None => break,
                    }
                }
                let tree = USE.replace(&statement, "");
                pieces.extend(expand_use(tree.trim().trim_end_matches(';')).into_iter().map(|p| (p, *n)));
            } else {
                pieces.push((line.clone(), *n));
            }
        }
        pieces
    }

    /// Every top-level module of `modules` this file names, other than its own, with the line:
    /// from `use crate::…` and `use super::…` statements and from `crate::x::` and `super::x::`
    /// paths in code.
    fn references(&self, modules: &BTreeSet<String>) -> Vec<(String, usize)> {
        static PATH: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"\b(?:crate|super)(?:::\w+)+").unwrap());
        let mut found = Vec::new();
        for (piece, n) in self.code() {
            for path in PATH.find_iter(&piece) {
                if let Some(target) = self.top_module_of(path.as_str())
                    && modules.contains(&target)
                    && Some(target.as_str()) != self.module()
                {
                    found.push((target, n));
                }
            }
        }
        found
    }

    /// The top-level module a `crate::…` or `super::…` path points into, if it leaves the crate root.
    fn top_module_of(&self, path: &str) -> Option<String> {
        let mut segments = path.split("::").map(str::trim);
        let mut here = self.path.clone();
        match segments.next()? {
            "crate" | "$crate" => here.clear(),
            "super" => {
                here.pop();
            }
            _ => return None,
        }
        for segment in segments {
            if segment == "super" {
                here.pop();
            } else if here.is_empty() {
                return (!segment.is_empty() && segment != "self").then(|| segment.to_string());
            } else {
                return Some(here[0].clone());
            }
        }
        here.first().cloned()
    }
}

/// The full paths of a use tree: `crate::{a::X, b::{Y, Z}}` gives `crate::a::X`, `crate::b::Y`,
/// `crate::b::Z`.
fn expand_use(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(tree).trim().to_string()];
    };
    let prefix = &tree[..open];
    let close = tree.rfind('}').unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand_use(p).into_iter().map(move |q| format!("{prefix}{q}")))
        .collect()
}

fn sources() -> Vec<Source> {
    let root = support::root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut sources: Vec<Source> = files
        .iter()
        .map(|file| {
            let rel = file.strip_prefix(&root).expect("under the root").to_string_lossy().replace('\\', "/");
            Source::parse(&rel, &std::fs::read_to_string(file).expect("source"))
        })
        .collect();
    sources.sort_by(|a, b| a.rel.cmp(&b.rel));
    assert!(sources.len() > 10, "src/ looks empty");
    sources
}

/// The top-level modules of `src/`: `x` for `src/x.rs` and `src/x/`.
fn top_modules(sources: &[Source]) -> BTreeSet<String> {
    sources.iter().filter_map(|s| s.module().map(str::to_string)).collect()
}

type Graph = BTreeMap<String, BTreeSet<String>>;
/// For each edge `from → to`, the `file:line` places that create it.
type Sites = BTreeMap<(String, String), Vec<String>>;

/// The module graph of the library (`main.rs` and `lib.rs` belong to no module).
fn module_graph(sources: &[Source]) -> (Graph, Sites) {
    let modules = top_modules(sources);
    let mut graph: Graph = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    let mut sites = Sites::new();
    for source in sources {
        let Some(from) = source.module() else { continue };
        for (to, line) in source.references(&modules) {
            graph.get_mut(from).expect("module").insert(to.clone());
            let place = format!("{}:{line}", source.rel);
            let places = sites.entry((from.to_string(), to)).or_default();
            if places.last() != Some(&place) {
                places.push(place);
            }
        }
    }
    (graph, sites)
}

/// The strongly connected components of `graph` with more than one node (Tarjan's algorithm).
fn cyclic_components(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct Tarjan<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, node: &'a str) {
            let i = self.index.len();
            self.index.insert(node, i);
            self.low.insert(node, i);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = BTreeSet::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.insert(top.to_string());
                    if top == node {
                        break;
                    }
                }
                let self_loop = self.graph.get(node).is_some_and(|n| n.contains(node));
                if component.len() > 1 || self_loop {
                    self.found.push(component);
                }
            }
        }
    }
    let mut tarjan =
        Tarjan { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on_stack: BTreeSet::new(), found: Vec::new() };
    for node in graph.keys() {
        if !tarjan.index.contains_key(node.as_str()) {
            tarjan.visit(node);
        }
    }
    tarjan.found
}

/// One shortest cycle through the first node of a cyclic component: `a → b → c → a`.
fn a_cycle(graph: &Graph, component: &BTreeSet<String>) -> Vec<String> {
    let start = component.first().expect("non-empty component");
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.as_str()]);
    while let Some(node) = queue.pop_front() {
        for next in graph.get(node).into_iter().flatten().filter(|n| component.contains(*n)) {
            if next == start {
                let mut back = Vec::new();
                let mut at = node;
                while at != start {
                    back.push(at.to_string());
                    at = came_from[at];
                }
                back.reverse();
                let mut cycle = vec![start.clone()];
                cycle.extend(back);
                cycle.push(start.clone());
                return cycle;
            }
            if !came_from.contains_key(next.as_str()) {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    unreachable!("a cyclic component has a cycle through each of its nodes")
}

/// Edges `from → to` between top-level modules that close a cycle today.
/// Empty since the act layer landed: keep it so.
const KNOWN_CYCLE_EDGES: &[(&str, &str)] = &[];

#[test]
fn no_cycle_between_top_level_modules() {
    let (graph, sites) = module_graph(&sources());
    assert!(graph.values().map(BTreeSet::len).sum::<usize>() > 10, "the module graph looks empty: is the scanner broken?");
    let mut problems = Vec::new();
    let components = cyclic_components(&graph);
    for (from, to) in KNOWN_CYCLE_EDGES {
        let (from, to) = (from.to_string(), to.to_string());
        if graph.get(&from).is_none_or(|uses| !uses.contains(&to)) {
            problems.push(format!(
                "stale exception: `{from}` no longer uses `{to}`. Delete (\"{from}\", \"{to}\") from KNOWN_CYCLE_EDGES in tests/it/tidy.rs."
            ));
        } else if !components.iter().any(|c| c.contains(&from) && c.contains(&to)) {
            problems.push(format!(
                "stale exception: `{from}` → `{to}` no longer closes a cycle. Delete (\"{from}\", \"{to}\") from KNOWN_CYCLE_EDGES in tests/it/tidy.rs."
            ));
        }
    }
    let mut rest = graph.clone();
    for (from, to) in KNOWN_CYCLE_EDGES {
        if let Some(uses) = rest.get_mut(*from) {
            uses.remove(*to);
        }
    }
    for component in cyclic_components(&rest) {
        let cycle = a_cycle(&rest, &component);
        let mut text = format!("cycle between modules of src/: {}", cycle.join(" → "));
        for pair in cycle.windows(2) {
            let places = &sites[&(pair[0].clone(), pair[1].clone())];
            text.push_str(&format!("\n    {} → {}: {}", pair[0], pair[1], places.join(", ")));
        }
        text.push_str(
            "\n  Break it: move the shared type to the module lower in the layering (or a new one), or pass the value in \
             instead of importing it. Do not add it to KNOWN_CYCLE_EDGES.",
        );
        problems.push(text);
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    let set = |nodes: &[&str]| nodes.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    let acyclic = graph(&[("a", "b"), ("b", "c"), ("a", "c"), ("d", "a")]);
    assert!(cyclic_components(&acyclic).is_empty());
    let cyclic = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("e", "f")]);
    let found = cyclic_components(&cyclic);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&set(&["a", "b", "c"])) && found.contains(&set(&["d", "e"])), "{found:?}");
    assert_eq!(a_cycle(&cyclic, &set(&["a", "b", "c"])), ["a", "b", "c", "a"]);
    assert_eq!(a_cycle(&cyclic, &set(&["d", "e"])), ["d", "e", "d"]);
    assert_eq!(cyclic_components(&graph(&[("a", "a")])), vec![set(&["a"])]);
}

#[test]
fn the_scanner_reads_imports_as_the_compiler_does() {
    let modules: BTreeSet<String> = ["clock", "desk", "store", "telegram", "terminal", "engine", "dates"].map(String::from).into();
    let text = "//! A made-up file.\n\
                use crate::{\n    clock::now,\n    store::{Row, Store},\n};\n\
                use super::super::terminal::Chat as T;\n\
                use super::report;\n\
                // crate::telegram in a comment\n\
                /// crate::telegram in a doc line\n\
                fn f() { let x = crate::engine::step(); let y = crate::desk::own(); }\n\
                #[cfg(test)]\n\
                mod tests {\n    use crate::telegram::Bot;\n}\n\
                fn g() -> crate::dates::Period { todo!() }\n";
    let source = Source::parse("src/desk/deep/file.rs", text);
    assert_eq!(source.module(), Some("desk"));
    let found: Vec<(String, usize)> = source.references(&modules);
    let expected: Vec<(String, usize)> =
        [("clock", 2), ("store", 2), ("store", 2), ("engine", 10), ("dates", 15)].iter().map(|(m, n)| (m.to_string(), *n)).collect();
    // `super::super::terminal` from src/desk/deep/file.rs stays inside `desk`.
    assert_eq!(found, expected);
    let top = Source::parse("src/desk/mod.rs", "use super::terminal::Chat;\nfn f() { super::store::x(); }\n");
    assert_eq!(top.references(&modules), vec![("terminal".to_string(), 1), ("store".to_string(), 2)]);
    assert_eq!(
        expand_use("crate::{a::X, b::{Y, self}, c as d}"),
        ["crate::a::X", "crate::b::Y", "crate::b::self", "crate::c"].map(String::from)
    );
}

/// Known violations of a rule, as (file, what) pairs, checked both ways: a violation not in the
/// list fails, and so does a listed one that no longer occurs (the list can only shrink).
fn check_exceptions(rule: &str, list: &str, found: &BTreeMap<(String, String), BTreeSet<usize>>, known: &[(&str, &str)], fix: &str) {
    let mut problems = Vec::new();
    for ((file, what), lines) in found {
        if !known.contains(&(file.as_str(), what.as_str())) {
            let lines: Vec<String> = lines.iter().map(|n| format!("{file}:{n}")).collect();
            problems.push(format!("{rule}: `{what}` at {}.\n  {fix}", lines.join(", ")));
        }
    }
    for (file, what) in known {
        if !found.contains_key(&(file.to_string(), what.to_string())) {
            problems.push(format!(
                "stale exception: {file} no longer uses `{what}`. Well done: delete (\"{file}\", \"{what}\") from {list} in tests/it/tidy.rs."
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// Reading the wall clock: `SystemTime::now`, `Instant::now`, chrono's `Utc::now`/`Local::now`,
/// jiff's `Timestamp::now`/`Zoned::now`.
fn clock_reads(piece: &str) -> Vec<String> {
    static NOW: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\b(?:SystemTime|Instant|Utc|Local|Timestamp|Zoned)::now\b").unwrap());
    NOW.find_iter(piece).map(|m| m.as_str().to_string()).collect()
}

/// The pure parts: they decide, and take time, data and configuration as values.
fn is_pure_part(rel: &str) -> bool {
    let pure = ["src/engine/", "src/matching/", "src/dates.rs", "src/desk/", "src/broadcast/"];
    // The act parts of the desk and broadcasts (`src/act/`, or an `act` module inside them) run
    // decided requests on the store: they are exempt.
    let act = rel.starts_with("src/act/") || rel.ends_with("/act.rs") || rel.contains("/act/");
    pure.iter().any(|p| rel.starts_with(p)) && !act
}

/// Imports the pure parts still have today: none since the act layer landed; keep it so.
const KNOWN_IMPURE: &[(&str, &str)] = &[];

#[test]
fn the_decide_parts_are_pure() {
    let sources = sources();
    let modules = top_modules(&sources);
    let words = regex::Regex::new(r"\b(?:tokio|rusqlite|teloxide|std::fs|std::env|std::io|SystemTime)\b").unwrap();
    let mut found: BTreeMap<(String, String), BTreeSet<usize>> = BTreeMap::new();
    let mut checked = 0;
    for source in sources.iter().filter(|s| is_pure_part(&s.rel)) {
        checked += 1;
        for (target, n) in source.references(&modules) {
            if ["store", "telegram", "terminal", "clock"].contains(&target.as_str()) {
                found.entry((source.rel.clone(), format!("crate::{target}"))).or_default().insert(n);
            }
        }
        for (piece, n) in source.code() {
            let hits = words.find_iter(&piece).map(|m| m.as_str().to_string()).chain(clock_reads(&piece));
            for what in hits {
                found.entry((source.rel.clone(), what)).or_default().insert(n);
            }
        }
    }
    assert!(checked >= 8, "only {checked} files in the pure parts: did they move? Update is_pure_part");
    check_exceptions(
        "a pure part (engine, matching, dates, the decide parts of desk and broadcast) does I/O or reads the clock",
        "KNOWN_IMPURE",
        &found,
        KNOWN_IMPURE,
        "Take the value as a parameter (time as a number or an `Instant`, rows as the module's own types), \
         or move the code to the act part. Do not add it to KNOWN_IMPURE.",
    );
}

/// Places outside `src/clock.rs` that read the wall clock today.
const KNOWN_CLOCK_READS: &[(&str, &str)] = &[];

#[test]
fn only_the_clock_module_reads_the_wall_clock() {
    let mut found: BTreeMap<(String, String), BTreeSet<usize>> = BTreeMap::new();
    let sources = sources();
    assert!(sources.iter().any(|s| s.rel == "src/clock.rs" && s.code().iter().any(|(p, _)| !clock_reads(p).is_empty())));
    for source in sources.iter().filter(|s| s.rel != "src/clock.rs") {
        for (piece, n) in source.code() {
            for what in clock_reads(&piece) {
                found.entry((source.rel.clone(), what)).or_default().insert(n);
            }
        }
    }
    check_exceptions(
        "the wall clock is read outside src/clock.rs",
        "KNOWN_CLOCK_READS",
        &found,
        KNOWN_CLOCK_READS,
        "Call a function of `crate::clock` (add one if needed), or take the time as a parameter. \
         Test code (`#[cfg(test)]`) and benches are exempt. Do not add it to KNOWN_CLOCK_READS.",
    );
}

#[test]
fn the_exception_checks_fail_both_ways() {
    let found: BTreeMap<(String, String), BTreeSet<usize>> = [(("src/a.rs".to_string(), "tokio".to_string()), BTreeSet::from([3]))].into();
    let fails = |known: &'static [(&'static str, &'static str)]| {
        let found = found.clone();
        std::panic::catch_unwind(move || check_exceptions("rule", "LIST", &found, known, "fix")).is_err()
    };
    assert!(!fails(&[("src/a.rs", "tokio")]));
    assert!(fails(&[]), "a violation missing from the list must fail");
    assert!(fails(&[("src/a.rs", "tokio"), ("src/b.rs", "std::fs")]), "a stale exception must fail");
    assert_eq!(clock_reads("let t = std::time::SystemTime::now(); jiff::Zoned::now()"), ["SystemTime::now", "Zoned::now"]);
    assert!(is_pure_part("src/desk/mod.rs") && !is_pure_part("src/desk/act.rs") && !is_pure_part("src/store/mod.rs"));
}
