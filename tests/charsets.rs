//! Mail in every charset family a desk meets, 8-bit text that declares no
//! charset, and broken but usable senders, each through the real pipeline
//! (`servicedesk ingest`, as an MTA delivers it): what an agent reads is
//! what the sender wrote, and what can be read is never quarantined.
//!
//! The fixtures in `tests/fixtures/charsets/` are written by `make.py`
//! there; `expected.json` says, per file, the outcome, the decoded subject,
//! a piece of the decoded text, and for broken senders who gets a reply.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{describe, run_servicedesk};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/charsets")
}

/// `ARGS --json` of the binary, parsed.
fn json(config: &Path, dir: &Path, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = run_servicedesk(config, dir, &args, None);
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn every_charset_and_every_usable_sender_reads_as_written() {
    let dir = support::short_tempdir();
    let path = dir.path();
    let config = path.join("servicedesk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n\n[support]\naddress = \"support@example.test\"\n",
            path.join("desk.db").display()
        ),
    )
    .unwrap();
    for (name, csv) in [
        ("customers", support::CUSTOMERS_CSV),
        ("persons", support::PERSONS_CSV),
    ] {
        let file = path.join(format!("{name}.csv"));
        std::fs::write(&file, csv).unwrap();
        let out = run_servicedesk(
            &config,
            path,
            &[name, "import", file.to_str().unwrap()],
            None,
        );
        assert!(out.status.success(), "{}", describe(&out));
    }

    let expected: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    assert!(expected.len() >= 17, "the fixture set: {}", expected.len());
    let mut failures = Vec::new();
    for (name, want) in &expected {
        let raw = std::fs::read(fixtures().join(format!("{name}.eml"))).unwrap();
        let out = run_servicedesk(&config, path, &["ingest"], Some(&raw));
        assert!(out.status.success(), "{name}: {}", describe(&out));
        let message_id = header_message_id(&raw);
        let intake = json(&config, path, &["intake", "list"]);
        let record = intake
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["message_id"] == message_id.as_str())
            .unwrap_or_else(|| panic!("{name}: no intake record for {message_id}: {intake}"));
        let mut check = |what: &str, ok: bool, got: &Value| {
            if !ok {
                failures.push(format!("{name}: {what}: got {got}"));
            }
        };
        check(
            "outcome",
            record["outcome"] == want["outcome"],
            &record["outcome"],
        );
        if let Some(subject) = want.get("subject") {
            check("subject", record["subject"] == *subject, &record["subject"]);
        }
        if let Some(sender) = want.get("sender") {
            check("sender", record["from"] == *sender, &record["from"]);
        }
        if let Some(detail) = want.get("detail").and_then(Value::as_str) {
            let got = record["detail"].as_str().unwrap_or("");
            check("detail", got.contains(detail), &record["detail"]);
        }
        if let Some(text) = want.get("text").and_then(Value::as_str) {
            let number = record["ticket"].as_str().unwrap_or_default();
            let shown = json(&config, path, &["tickets", "show", number]);
            let body = shown["thread"][0]["body"]
                .as_str()
                .unwrap_or("")
                .to_string();
            check("text", body.contains(text), &Value::String(body.clone()));
            check(
                "no replacement characters",
                !body.contains('\u{fffd}'),
                &Value::String(body),
            );
        }
        if let Some(replied) = want.get("replied").and_then(Value::as_bool) {
            let outbox = json(&config, path, &["outbox", "list"]);
            let answered = outbox
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["in_reply_to"] == message_id.as_str());
            check("replied", answered == replied, &Value::Bool(answered));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing readable went to quarantine; every message has its own record.
    let intake = json(&config, path, &["intake", "list"]);
    let records = intake.as_array().unwrap();
    assert_eq!(records.len(), expected.len());
    assert!(
        records.iter().all(|r| r["outcome"] != "quarantined"),
        "{intake}"
    );
}

/// The `Message-ID` of a fixture, without angle brackets.
fn header_message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .find_map(|l| l.strip_prefix("Message-ID:"))
        .map(|v| v.trim().trim_matches(['<', '>']).to_string())
        .expect("every fixture has a Message-ID")
}
