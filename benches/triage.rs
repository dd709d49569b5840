//! Triage throughput and model loading, printed as figures (not a test).
//!
//! `cargo bench --bench triage`: parses and sorts every mail of the labelled
//! corpus (`tests/corpus`, 2–3 KB typical) repeatedly on one thread, with the
//! rules and the built-in model, and times loading the model.

use std::path::Path;
use std::time::{Duration, Instant};

use servicedesk::domain::{ContractStatus, Language, Role};
use servicedesk::registry::{Customer, Person, Registry};
use servicedesk::triage::model::{self, Model};
use servicedesk::triage::{triage, Facts, Limits, Rules, TriageContext};

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut out = Vec::new();
    for lang in ["nl", "fr", "en", "de"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(lang))
            .expect("tests/corpus")
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        out.extend(files.iter().map(|p| std::fs::read(p).unwrap()));
    }
    out
}

/// Every sender of the corpus registered, so every mail is fully sorted.
fn registry(mails: &[Vec<u8>]) -> Registry {
    let customer = Customer {
        name: "Bench".into(),
        status: ContractStatus::Active,
        campuses: vec![],
        sla: None,
    };
    let persons = mails
        .iter()
        .filter_map(|raw| servicedesk::mail::parse(raw).ok())
        .filter_map(|m| m.from.map(|f| f.key()))
        .map(|email| Person {
            email,
            name: String::new(),
            customer: "Bench".into(),
            campus: None,
            role: Role::General,
            language: Language::Nl,
        })
        .collect();
    Registry::new(vec![customer], persons)
}

fn main() {
    let mails = corpus();
    let bytes: usize = mails.iter().map(Vec::len).sum();
    println!(
        "corpus: {} mails, median {} bytes, mean {} bytes",
        mails.len(),
        {
            let mut l: Vec<usize> = mails.iter().map(Vec::len).collect();
            l.sort_unstable();
            l[l.len() / 2]
        },
        bytes / mails.len()
    );

    let mut loads = Vec::new();
    let mut model = None;
    for _ in 0..20 {
        let t = Instant::now();
        model = Some(Model::from_bytes(model::BUILTIN).expect("built-in model"));
        loads.push(t.elapsed());
    }
    loads.sort();
    println!(
        "model load ({} KB): median {:.1} ms, max {:.1} ms",
        model::BUILTIN.len() / 1024,
        loads[loads.len() / 2].as_secs_f64() * 1e3,
        loads[loads.len() - 1].as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let rules = Rules::builtin();
    println!("rules compile: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);

    // Where the time goes, stage by stage, over the whole corpus.
    let parsed: Vec<_> = mails
        .iter()
        .map(|raw| servicedesk::mail::parse(raw).expect("corpus mail parses"))
        .collect();
    let per_mail = |d: Duration| d.as_secs_f64() * 1e6 / mails.len() as f64;
    let t = Instant::now();
    for raw in &mails {
        std::hint::black_box(servicedesk::mail::parse(raw).ok());
    }
    println!("  stage parse: {:.1} µs/mail", per_mail(t.elapsed()));
    let t = Instant::now();
    let readings: Vec<_> = parsed
        .iter()
        .map(|m| servicedesk::triage::text::Reading::of(&m.subject, &m.text))
        .collect();
    println!("  stage reading: {:.1} µs/mail", per_mail(t.elapsed()));
    let t = Instant::now();
    for r in &readings {
        std::hint::black_box(servicedesk::triage::language::detect(&r.for_language()));
    }
    println!("  stage language: {:.1} µs/mail", per_mail(t.elapsed()));
    let t = Instant::now();
    for r in &readings {
        std::hint::black_box(rules.classify(r, true));
    }
    println!("  stage rules: {:.1} µs/mail", per_mail(t.elapsed()));
    let t = Instant::now();
    for r in &readings {
        std::hint::black_box(rules.sort(r, model.as_ref(), true, false));
    }
    println!(
        "  stage rules + model: {:.1} µs/mail",
        per_mail(t.elapsed())
    );
    let t = Instant::now();
    for r in &readings {
        std::hint::black_box(rules.sort(r, model.as_ref(), true, true));
    }
    println!(
        "  stage rules + model + explanation: {:.1} µs/mail",
        per_mail(t.elapsed())
    );

    let registry = registry(&mails);
    let sized: Vec<Vec<u8>> = mails
        .iter()
        .filter(|m| (2048..=3072).contains(&m.len()))
        .cloned()
        .collect();
    for (label, model, mails) in [
        ("all corpus mails, rules only", None, &mails),
        ("all corpus mails, rules + model", model.as_ref(), &mails),
        ("2-3 KB mails, rules + model", model.as_ref(), &sized),
    ] {
        let ctx = TriageContext {
            registry: &registry,
            rules: &rules,
            support_address: "support@example.test",
            default_language: Language::Nl,
            change_requests_chargeable: true,
            model,
            limits: Limits::default(),
            require_aligned_auth: None,
        };
        let facts = Facts::default();
        let mut n = 0usize;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            for raw in mails.iter() {
                let mail = servicedesk::mail::parse(raw).expect("corpus mail parses");
                std::hint::black_box(triage(&mail, &ctx, &facts));
                n += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "parse + triage ({label}: {} mails, one thread, with evidence): {:.0} mails/s ({:.1} µs/mail)",
            mails.len(),
            n as f64 / secs,
            secs * 1e6 / n as f64
        );
    }
}
