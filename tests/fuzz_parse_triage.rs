//! Property tests over raw bytes → parse → triage → reply rendering: whatever
//! arrives, nothing panics. Inputs are random bytes and fixtures mutated by
//! flipping, cutting and splicing bytes. `PROPTEST_CASES` raises the count
//! for a longer run; failures found are kept in `proptest-regressions/`.
//!
//! Mail is sorted as the daemon sorts it (built-in rules and model), against
//! the fixtures' registry, so a mutated mail from a registered person goes
//! through the model and gets its acknowledgement rendered.

mod sorting;

use std::sync::LazyLock;

use proptest::prelude::*;
use servicedesk::domain::Language;
use servicedesk::registry::Registry;
use servicedesk::reply::{Replier, ReplyRequest};
use servicedesk::triage::{triage, Decision, Facts, Limits, TriageContext};
use sorting::PRODUCTION;

static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(seeds);
static REGISTRY: LazyLock<Registry> = LazyLock::new(sorting::registry);
static REPLIER: LazyLock<Replier> = LazyLock::new(|| {
    Replier::new(
        "Desk <support@example.test>",
        "Desk",
        "support@example.test",
        None,
    )
    .unwrap()
});

fn seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(sorting::fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    out.sort();
    out
}

/// The daemon's triage settings with the built-in rules and model.
fn context<'a>(registry: &'a Registry, require_aligned_auth: Option<&'a str>) -> TriageContext<'a> {
    TriageContext {
        registry,
        rules: &PRODUCTION.rules,
        support_address: "support@example.test",
        default_language: Language::Nl,
        change_requests_chargeable: true,
        model: PRODUCTION.model.as_ref(),
        limits: Limits::default(),
        require_aligned_auth,
    }
}

/// Runs the whole pure path; panics are what the property forbids. Each
/// mail is decided twice: as configured by default, and with
/// `[security] require_aligned_auth`.
fn exercise(raw: &[u8], registry: &Registry, replier: &Replier) {
    let Ok(mail) = servicedesk::mail::parse(raw) else {
        return;
    };
    for require_aligned_auth in [None, Some("mx.example.test")] {
        let decision = triage(
            &mail,
            &context(registry, require_aligned_auth),
            &Facts::default(),
        );
        let request = match &decision {
            Decision::Unregistered {
                sender,
                sender_name,
                language,
                notice,
                ..
            } => ReplyRequest {
                notice: *notice,
                language: *language,
                ticket: None,
                inbound: &mail,
                recipient: sender,
                name: sender_name,
                customer: None,
                category: None,
                reason: None,
            },
            Decision::Ticket(t) => ReplyRequest {
                notice: t.notice,
                language: t.language,
                ticket: Some("CS-000001"),
                inbound: &mail,
                recipient: &t.sender,
                name: &t.sender_name,
                customer: Some(&t.customer),
                category: Some(t.category),
                reason: t.chargeable,
            },
            Decision::Suppress(_) | Decision::Followup(_) => continue,
        };
        let _ = replier.render(&request);
    }
}

/// The unmutated seeds from registered persons are sorted by the model, so
/// the properties below cover the sorting the daemon does.
#[test]
fn seed_tickets_go_through_the_model() {
    let mut tickets = 0;
    for raw in SEEDS.iter() {
        let mail = servicedesk::mail::parse(raw).unwrap();
        if let Decision::Ticket(t) = triage(&mail, &context(&REGISTRY, None), &Facts::default()) {
            assert!(
                t.evidence.model,
                "{}: sorted without the model",
                mail.subject
            );
            tickets += 1;
        }
    }
    assert!(tickets >= 20, "only {tickets} seeds became tickets");
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
    Splice(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Cut),
        (
            any::<usize>(),
            prop_oneof![
                Just(b"\r\n\r\n".to_vec()),
                Just(b"\r\n--".to_vec()),
                Just(b"=?utf-8?B?".to_vec()),
                Just(b"Content-Type: multipart/mixed; boundary=x\r\n".to_vec()),
                Just(vec![0u8, 0xff, 0xfe, 0xc3]),
                proptest::collection::vec(any::<u8>(), 0..64),
            ]
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(a, b, c)| Mutation::Splice(a, b, c)),
    ]
}

fn apply(mut raw: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = raw.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if !raw.is_empty() {
                    raw[i % len] = *b;
                }
            }
            Mutation::Cut(i) => raw.truncate(i % len),
            Mutation::Insert(i, v) => {
                let at = (i % len).min(raw.len());
                raw.splice(at..at, v.iter().copied());
            }
            Mutation::Splice(a, b, c) => {
                let (a, b) = ((a % len).min(raw.len()), (b % len).min(raw.len()));
                let (from, to) = (a.min(b), a.max(b));
                let piece = raw[from..to].to_vec();
                let at = (c % len).min(raw.len());
                raw.splice(at..at, piece);
            }
        }
    }
    raw
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn random_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
        exercise(&raw, &REGISTRY, &REPLIER);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..12),
    ) {
        let raw = apply(SEEDS[pick % SEEDS.len()].clone(), &mutations);
        exercise(&raw, &REGISTRY, &REPLIER);
    }
}
