//! The evaluation set of free questions (`tests/eval/*.tsv`) through `sme-advisor eval`, on the
//! frozen test split only (it is measured here, never tuned on).
//!
//! The targets of issue 11 (the top answer acceptable for at least 90% of the questions of each
//! language, confident wrong answers at most 3%, every out-of-domain question declined) are what
//! `sme-advisor eval` checks and its exit status reports; `EVAL_STRICT=1` makes this test require
//! them. Without it the test requires the floors below, the state measured when they were set, so
//! that a change that makes matching worse fails.

use std::process::Command;

use crate::support;

/// Floors on the test split: right answers per language, confident wrong answers overall, and
/// out-of-domain questions declined. Measured 2026-12-07 after round 9 (out-of-domain subjects,
/// owner wording for 22 entries): en 91.1, es 93.8, fr 96.5, pt 95.4; confident wrong 0.4%; 28 of
/// 30 declined. A floor of 89 leaves English one question of slack. Earlier floors: 87 at en 89.3
/// (round 8); 86 at en 89.3, fr 89.5 (round 6); 84 at en 85.7-87.5, pt 86.2-89.2; 74 at en 82.1,
/// es 89.1, fr 78.9, pt 78.5; 72 before.
const FLOOR_RIGHT: f32 = 89.0;
const CEILING_CONFIDENT_WRONG: f32 = 3.0;
const FLOOR_OOD_DECLINED: f32 = 0.9;

fn figures(report: &str, label: &str) -> Option<(f32, f32, usize, usize)> {
    let line = report.lines().find(|l| l.trim_start().starts_with(&format!("{label} ")))?;
    let number_after = |key: &str| -> Option<f32> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.trim_start().split(|c: char| c == '%' || c.is_whitespace()).next()?.parse().ok()
    };
    let right = number_after("right")?;
    let wrong = number_after("confident wrong")?;
    let ood = line.split("out-of-domain declined ").nth(1)?;
    let (a, b) = ood.trim().split_once('/')?;
    Some((right, wrong, a.parse().ok()?, b.parse().ok()?))
}

#[test]
fn the_test_split_meets_the_floors_and_eval_reports_the_targets() {
    let out = Command::new(env!("CARGO_BIN_EXE_sme-advisor"))
        .current_dir(support::root())
        .env_remove("RUST_LOG")
        .args(["eval", "--split", "test"])
        .output()
        .expect("sme-advisor eval runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("test split"), "no report:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(!report.contains("names no entry"), "an expected id names no entry:\n{report}");
    let strict = std::env::var_os("EVAL_STRICT").is_some();
    let meets = !report.contains("below target");
    assert_eq!(out.status.success(), meets, "the exit status says whether the targets are met:\n{report}");
    if strict {
        assert!(meets, "below the targets of issue 11:\n{report}");
    }
    for lang in ["en", "fr", "es", "pt"] {
        let (right, _, _, _) = figures(&report, lang).unwrap_or_else(|| panic!("no line for {lang}:\n{report}"));
        assert!(right >= FLOOR_RIGHT, "{lang}: {right}% right on the test split, below the floor {FLOOR_RIGHT}%:\n{report}");
    }
    let (_, wrong, declined, ood) = figures(&report, "overall").expect("overall line");
    assert!(wrong <= CEILING_CONFIDENT_WRONG, "confident wrong {wrong}%:\n{report}");
    assert!(declined as f32 >= FLOOR_OOD_DECLINED * ood as f32, "out-of-domain declined {declined}/{ood}:\n{report}");
}

/// The shipped `[you]` and `[transact]` cues: a request to the advisor itself to lend, buy or
/// invest is declined in every language, while asking it for information, or asking who lends, is
/// not (no verb of what the advisor does, such as "give" or "send", may be in `[transact]`).
#[test]
fn requests_to_the_advisor_itself_are_told_from_requests_for_information() {
    use sme_advisor::matching::Ask;
    let content = support::shipped();
    let requests = [
        ("en", "hello do u want to buy my cashew nuts? 2 tonnes ready"),
        ("en", "could you please lend us 300 dollars for stock"),
        ("en", "does your organisation invest in small restaurants?"),
        ("fr", "vous voulez acheter mes noix de cajou? bon prix"),
        ("fr", "pourriez-vous m'accorder un prêt de 500 000 FCFA ?"),
        ("es", "ustedes me compran el cafe? a cuanto pagan"),
        ("es", "su institucion me lo puede prestar?"),
        ("pt", "voces compram castanha de caju?"),
        ("pt", "voces poderiam me emprestar 2 mil dolares?"),
    ];
    for (lang, text) in requests {
        assert_eq!(content.index.ask(text, lang), Ask::Personal, "{lang}: {text}");
    }
    let questions = [
        ("en", "can you give me the contact of EMPRETEC Ghana"),
        ("en", "could you tell me who lends to small bakeries"),
        ("en", "how do you sell to a big supermarket chain?"),
        ("en", "can you send me the list of programmes in Kenya"),
        ("fr", "vous pouvez me donner les contacts de l'ONUDI ?"),
        ("fr", "qui peut me prêter pour ma boutique ?"),
        ("es", "me pueden dar informacion sobre creditos para pymes"),
        ("es", "que empresas grandes de aca podrian comprar a una pyme?"),
        ("pt", "voces podem me dar informacoes sobre credito?"),
        ("pt", "o que uma empresa precisa mostrar para uma multinacional que opera aqui comprar dela"),
    ];
    for (lang, text) in questions {
        assert_ne!(content.index.ask(text, lang), Ask::Personal, "{lang}: {text}");
    }
}
