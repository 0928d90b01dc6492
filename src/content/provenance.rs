//! Provenance: the seed report's numbered paragraphs and annex, and the check that every evidence
//! quote of the knowledge base occurs verbatim where it says it does.
//!
//! The report (`../shared/seed/000_04e8b5b94d777828.txt` from the project root, UNCTAD
//! TD/B/COM.3/EM.28/3) is plain text: chapter paragraphs start a line with their number (`22. `),
//! counted 1, 2, 3... in order, so a numbered list inside a paragraph (the agenda in paragraph 30)
//! does not start a new one; the annex (the list of participants) follows a line reading `Annex`.
//! Quotes are compared after normalising whitespace and line breaks to single spaces and curly
//! quotes and apostrophes to straight ones; the match is otherwise exact and case-sensitive.

use std::collections::BTreeMap;

use super::{Content, Diagnostic};

/// Where the report lives, relative to the project root.
pub const REPORT_PATH: &str = "../shared/seed/000_04e8b5b94d777828.txt";

/// The report, split into numbered paragraphs and the annex, each normalised.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub paragraphs: BTreeMap<i64, String>,
    pub annex: String,
}

/// Collapses whitespace and line breaks to single spaces and straightens curly quotes.
pub fn normalize(text: &str) -> String {
    let straight: String = text
        .chars()
        .map(|c| match c {
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{00AB}' | '\u{00BB}' => '"',
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' => '\'',
            '\u{00A0}' | '\u{202F}' => ' ',
            c => c,
        })
        .collect();
    straight.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Report {
    pub fn parse(text: &str) -> Report {
        let mut report = Report::default();
        let lines: Vec<&str> = text.lines().collect();
        let annex_at = lines.iter().rposition(|l| l.trim() == "Annex").unwrap_or(lines.len());
        let mut current: Option<(i64, Vec<&str>)> = None;
        let mut next = 1;
        for line in &lines[..annex_at] {
            let number = line.split_once(". ").and_then(|(n, _)| n.parse::<i64>().ok());
            if number == Some(next) {
                if let Some((n, body)) = current.take() {
                    report.paragraphs.insert(n, normalize(&body.join("\n")));
                }
                current = Some((next, vec![line]));
                next += 1;
            } else if let Some((_, body)) = current.as_mut() {
                body.push(line);
            }
        }
        if let Some((n, body)) = current {
            report.paragraphs.insert(n, normalize(&body.join("\n")));
        }
        report.annex = normalize(&lines[annex_at.min(lines.len())..].join("\n"));
        report
    }

    /// Whether a quote occurs in a paragraph (`Some(n)`) or in the annex (`None`).
    pub fn contains(&self, paragraph: Option<i64>, quote: &str) -> bool {
        let quote = normalize(quote);
        match paragraph {
            Some(n) => self.paragraphs.get(&n).is_some_and(|p| p.contains(&quote)),
            None => self.annex.contains(&quote),
        }
    }

    /// The paragraph a quote does occur in, when it is not where it is cited.
    pub fn find(&self, quote: &str) -> Option<i64> {
        let quote = normalize(quote);
        self.paragraphs.iter().find(|(_, p)| p.contains(&quote)).map(|(n, _)| *n)
    }
}

/// What the provenance check found.
#[derive(Debug, Default)]
pub struct Findings {
    pub diagnostics: Vec<Diagnostic>,
    /// Quotes found where they are cited.
    pub quotes_verified: usize,
    /// Cited paragraph numbers checked against the report.
    pub paragraphs_checked: usize,
    /// Entries that carry at least one quote.
    pub entries_with_evidence: usize,
}

/// Checks every entry against the report: each quote occurs verbatim in the paragraph (or the annex)
/// it names, and each cited paragraph exists.
pub fn check(content: &Content, report: &Report) -> Findings {
    let mut f = Findings::default();
    for entry in content.entries.iter().filter(|e| !e.is_call()) {
        for n in &entry.paragraphs {
            f.paragraphs_checked += 1;
            if !report.paragraphs.contains_key(n) {
                let last = report.paragraphs.keys().next_back().copied().unwrap_or(0);
                f.diagnostics.push(Diagnostic {
                    loc: entry.loc.clone(),
                    message: format!("entry `{}` cites paragraph {n}, but the report's paragraphs run from 1 to {last}", entry.id),
                });
            }
        }
        if !entry.evidence.is_empty() {
            f.entries_with_evidence += 1;
        }
        for e in &entry.evidence {
            if report.contains(e.paragraph, &e.quote) {
                f.quotes_verified += 1;
                continue;
            }
            let place = e.paragraph.map_or("the annex".to_string(), |n| format!("paragraph {n}"));
            let hint = match (e.paragraph, report.find(&e.quote)) {
                (_, Some(actual)) if Some(actual) != e.paragraph => format!(" (it is in paragraph {actual})"),
                (Some(_), None) if report.contains(None, &e.quote) => " (it is in the annex)".to_string(),
                _ => String::new(),
            };
            f.diagnostics.push(Diagnostic {
                loc: e.loc.clone(),
                message: format!("the quote does not occur verbatim in {place} of the report{hint}"),
            });
        }
    }
    f.diagnostics.sort();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Title\n\n1. First paragraph says “hello”\nacross lines.\n\n2. Second one:\n\n1. an agenda item\n2. another\n\nHeading\n\n3. Third.\n\nAnnex\n\n1. Experts from Kenya attended.\n";

    #[test]
    fn paragraphs_are_numbered_in_order_and_the_annex_is_apart() {
        let r = Report::parse(SAMPLE);
        assert_eq!(r.paragraphs.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(r.contains(Some(1), "says \"hello\" across lines."));
        assert!(r.contains(Some(2), "1. an agenda item 2. another"));
        assert!(!r.contains(Some(2), "Third"));
        assert!(r.contains(None, "Experts from Kenya"));
        assert!(!r.contains(Some(3), "Experts from Kenya"));
        assert_eq!(r.find("Third."), Some(3));
        assert!(!r.contains(Some(1), "says \"Hello\""), "case matters");
    }
}
