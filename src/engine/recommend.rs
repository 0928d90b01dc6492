//! Recommendations: filter entries by the profile and rank them by fit, saying why each fits.

use crate::content::{ANY, Audience, Content, GLOBAL, Kind, Status, VocabKind};

use super::Profile;

/// An entry that fits, its score, and the profile terms it matches.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub entry: usize,
    pub score: f32,
    pub matches: Vec<(VocabKind, String)>,
    /// It fits the profile's country only because it works across countries.
    pub global: bool,
}

/// Entries for owners (never those meant for governments and agencies, nor ended programmes that
/// name no successor) that serve the need (when given), are open to the profile's country and
/// sector, and suit its size and stage (an entry that names no sizes or stages suits all), best first. An entry for a specific country
/// beats a regional one, which beats a global one; a country the report never mentions still gets
/// the global programmes that fit. Programmes from the report come before general guidance.
pub fn recommend(content: &Content, profile: &Profile, need: Option<&str>, kind: Option<Kind>) -> Vec<Fit> {
    let region = profile.country.as_deref().and_then(|c| content.vocab.term(VocabKind::Country, c)).and_then(|t| t.region.clone());
    let mut fits = Vec::new();
    for (i, entry) in content.entries.iter().enumerate() {
        // An ended programme is offered only when it says what replaced it, and after the rest.
        let ended = entry.status == Some(Status::Ended);
        if entry.audience != Audience::Sme || ended && !entry.has_successor() {
            continue;
        }
        let mut score = 0.0;
        let mut matches = Vec::new();
        let mut global = false;
        // Place: the country itself, its region, or anywhere.
        if let Some(country) = &profile.country {
            if entry.countries.iter().any(|c| c == country) {
                score += 4.0;
                matches.push((VocabKind::Country, country.clone()));
            } else if let Some(region) = region.as_ref().filter(|r| entry.countries.contains(r)) {
                score += 2.0;
                matches.push((VocabKind::Region, region.clone()));
            } else if entry.countries.iter().any(|c| c == GLOBAL) {
                score += 1.0;
                global = true;
            } else {
                continue;
            }
        } else if entry.countries.iter().any(|c| c == GLOBAL) {
            score += 1.0;
        } else {
            // No country known (the owner skipped it): only what works anywhere.
            continue;
        }
        // Sector: named, or open to any.
        if let Some(sector) = &profile.sector {
            if entry.sectors.iter().any(|s| s == sector) {
                score += 2.0;
                matches.push((VocabKind::Sector, sector.clone()));
            } else if entry.sectors.iter().any(|s| s == ANY) {
                score += 0.5;
            } else {
                continue;
            }
        }
        // Size and stage: an entry that names them must include the profile's.
        let mut suits = true;
        for (value, wanted, term) in [(&profile.size, &entry.sizes, VocabKind::Size), (&profile.stage, &entry.stages, VocabKind::Stage)] {
            match value {
                Some(value) if wanted.contains(value) => {
                    score += 1.0;
                    matches.push((term, value.clone()));
                }
                Some(_) if !wanted.is_empty() => suits = false,
                _ => {}
            }
        }
        if !suits {
            continue;
        }
        // Need: required when asked for.
        if let Some(need) = need {
            if entry.needs.iter().any(|n| n == need) {
                score += 3.0;
                matches.push((VocabKind::Need, need.to_string()));
            } else {
                continue;
            }
        } else {
            for n in &profile.needs {
                if entry.needs.contains(n) {
                    score += 1.0;
                    matches.push((VocabKind::Need, n.clone()));
                }
            }
        }
        if kind == Some(entry.kind) {
            score += 1.5;
        }
        // General guidance fills in after what the report names.
        if entry.general {
            score -= 3.0;
        }
        if ended {
            score -= 2.0;
        }
        fits.push(Fit { entry: i, score, matches, global });
    }
    fits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| content.entries[a.entry].id.cmp(&content.entries[b.entry].id)));
    fits
}
