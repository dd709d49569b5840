//! Triage on `.eml` fixtures with the expected decision beside each one
//! (`tests/fixtures/triage/<name>.json`); see the README there. They are
//! sorted as the daemon sorts them: built-in rules and built-in model.

mod sorting;

use std::path::PathBuf;

use serde_json::{json, Value};
use servicedesk::domain::Language;
use servicedesk::triage::{triage, Decision, Facts, Limits, TriageContext};
use sorting::{fixtures, registry, PRODUCTION};

/// The decision in the fixtures' JSON shape.
fn as_json(d: &Decision) -> Value {
    match d {
        Decision::Suppress(r) => json!({"outcome": "suppressed", "reason": r.as_str()}),
        Decision::Unregistered { language, .. } => {
            json!({"outcome": "unregistered", "language": language.as_str(), "notice": "unregistered"})
        }
        Decision::Followup(f) => json!({"outcome": "followup", "ticket": f.ticket}),
        Decision::Ticket(t) => json!({
            "outcome": "ticket",
            "category": t.category.as_str(),
            "chargeable_reason": t.chargeable.map(|r| r.as_str()),
            "language": t.language.as_str(),
            "notice": t.notice.as_str(),
            "status": t.status.as_str(),
            "customer": t.customer,
        }),
    }
}

#[test]
fn every_fixture_gets_its_expected_decision() {
    let registry = registry();
    let ctx = TriageContext {
        registry: &registry,
        rules: &PRODUCTION.rules,
        support_address: "support@example.test",
        default_language: Language::Nl,
        change_requests_chargeable: true,
        model: PRODUCTION.model.as_ref(),
        limits: Limits::default(),
        require_aligned_auth: None,
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 50,
        "expected the fixture set, found {}",
        names.len()
    );
    let mut failures = Vec::new();
    for eml in &names {
        let raw = std::fs::read(eml).unwrap();
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(eml.with_extension("json")).unwrap())
                .unwrap();
        let mail =
            servicedesk::mail::parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", eml.display()));
        let got = as_json(&triage(&mail, &ctx, &Facts::default()));
        if got != want {
            failures.push(format!(
                "{}\n  want {want}\n  got  {got}",
                eml.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures decided differently:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
