//! Property tests over raw bytes → parse → triage → reply rendering: whatever
//! arrives, nothing panics. Inputs are random bytes and fixtures mutated by
//! flipping, cutting and splicing bytes. `PROPTEST_CASES` raises the count
//! for a longer run; failures found are kept in `proptest-regressions/`.

use std::path::Path;
use std::sync::LazyLock;

use proptest::prelude::*;
use servicedesk::registry::Registry;
use servicedesk::reply::{Replier, ReplyRequest};
use servicedesk::triage::{
    triage, Decision, Facts, Language, Limits, Notice, Rules, TriageContext,
};

static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(seeds);
static RULES: LazyLock<Rules> = LazyLock::new(Rules::builtin);
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triage");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    out.sort();
    out
}

/// Runs the whole pure path; panics are what the property forbids.
fn exercise(raw: &[u8], rules: &Rules, replier: &Replier) {
    let Ok(mail) = servicedesk::mail::parse(raw) else {
        return;
    };
    let registry = Registry::default();
    let ctx = TriageContext {
        registry: &registry,
        rules,
        support_address: "support@example.test",
        default_language: Language::Nl,
        change_requests_chargeable: true,
        model: None,
        limits: Limits::default(),
        require_aligned_auth: Some("mx.example.test"),
    };
    if let Decision::Unregistered {
        sender,
        sender_name,
        language,
        ..
    } = triage(&mail, &ctx, &Facts::default())
    {
        let _ = replier.render(&ReplyRequest {
            notice: Notice::Unregistered,
            language,
            ticket: None,
            inbound: &mail,
            recipient: &sender,
            name: &sender_name,
            customer: None,
            category: None,
            reason: None,
        });
    }
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
        exercise(&raw, &RULES, &REPLIER);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..12),
    ) {
        let raw = apply(SEEDS[pick % SEEDS.len()].clone(), &mutations);
        exercise(&raw, &RULES, &REPLIER);
    }
}
