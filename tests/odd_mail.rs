//! The corpus of odd mail in `tests/fixtures/odd/` (broken charsets, broken
//! MIME, huge headers, no sender, not mail at all …) APPENDed to a real
//! Dovecot and processed by one `run_once`: nothing may crash, block or get
//! lost, and every message must end in Processed or Quarantine with an
//! intake record.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use servicedesk::daemon;
use servicedesk::store::TicketFilter;
use support::{Db, MailServers};

const CUSTOMERS: &str = "\
customer,contract_status,campuses
WZC Ter Beke,active,
";

/// The corpus' one registered person (see its README).
const PERSONS: &str = "\
email,name,customer,campus,role,language
an.peeters@wzc-terbeke.example,An Peeters,WZC Ter Beke,,general,nl
";

/// Dovecot may refuse a few files outright (e.g. an empty one); more than
/// this many refusals means the test no longer tests the corpus.
const MAX_REFUSED: usize = 5;

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/odd");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let raw = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, raw)
        })
        .collect()
}

/// The Message-ID the desk records for these bytes.
fn recorded_id(raw: &[u8]) -> String {
    match std::panic::catch_unwind(|| servicedesk::mail::parse(raw)) {
        Ok(Ok(m)) => m.message_id,
        _ => servicedesk::mail::fallback_message_id(raw),
    }
}

/// The header lines of a raw message, unfolded names only.
fn header_names(raw: &[u8]) -> Vec<String> {
    let head = servicedesk::mail::header_part(raw);
    String::from_utf8_lossy(head)
        .lines()
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, _)| n.trim().to_ascii_lowercase())
        })
        .collect()
}

#[tokio::test]
async fn odd_mailbox_is_processed_completely() {
    let files = corpus();
    assert!(
        files.len() >= 40,
        "only {} .eml files in tests/fixtures/odd",
        files.len()
    );

    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_registry(&store, CUSTOMERS, PERSONS).await;
    let config = support::config(&servers, &db);

    // Raw bytes as they are; bare LF turned into CRLF only where Dovecot
    // refuses the file as it is.
    let raws: Vec<Vec<u8>> = files.iter().map(|(_, r)| r.clone()).collect();
    let first = servers.append_all_raw("INBOX", &raws).await;
    let mut appended = Vec::new();
    let mut converted = Vec::new();
    let mut refused = Vec::new();
    for ((path, raw), result) in files.iter().zip(first) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match result {
            Ok(()) => appended.push((name, raw.clone())),
            Err(e) => {
                let fixed = support::crlf(raw);
                match servers
                    .append_all_raw("INBOX", std::slice::from_ref(&fixed))
                    .await
                    .remove(0)
                {
                    Ok(()) => {
                        converted.push(name.clone());
                        appended.push((name, fixed));
                    }
                    Err(e2) => refused.push(format!("{name}: {e} / with CRLF: {e2}")),
                }
            }
        }
    }
    assert!(
        refused.len() <= MAX_REFUSED,
        "Dovecot refused {} files: {refused:#?}",
        refused.len()
    );
    let n = appended.len();
    assert_eq!(servers.count("INBOX").await as usize, n);

    let summary = daemon::run_once(&config)
        .await
        .unwrap_or_else(|e| panic!("run_once on the odd mailbox: {e:#}"));

    assert_eq!(servers.count("INBOX").await, 0, "messages left behind");
    let processed = servers.count("Processed").await as usize;
    let quarantined = servers.count("Quarantine").await as usize;
    assert_eq!(
        processed + quarantined,
        n,
        "Processed {processed} + Quarantine {quarantined} != appended {n}"
    );
    assert_eq!(
        (summary.processed, summary.quarantined),
        (processed, quarantined),
        "{summary:?}"
    );
    assert_eq!(summary.replies_pending, 0, "{summary:?}");

    let intake = store.intake().await.expect("intake");
    assert!(
        intake.len() >= n,
        "{} intake records for {n} messages",
        intake.len()
    );
    assert_eq!(
        intake.iter().filter(|r| r.outcome == "quarantined").count(),
        quarantined,
        "quarantined intake records"
    );

    // What became of each file (by the Message-ID the desk records for it).
    let sent = servers.sent();
    let tickets = store.tickets(&TicketFilter::default()).await.unwrap();
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut unaccounted = Vec::new();
    let mut claimed = vec![false; intake.len()];
    for (name, raw) in &appended {
        let id = recorded_id(raw);
        let records: Vec<_> = intake
            .iter()
            .enumerate()
            .filter(|(_, r)| r.message_id == id)
            .map(|(i, r)| {
                claimed[i] = true;
                r
            })
            .collect();
        let outcome = match records.as_slice() {
            [] => {
                unaccounted.push(name.clone());
                "?".to_string()
            }
            rs => rs
                .iter()
                .map(|r| r.outcome.as_str())
                .collect::<Vec<_>>()
                .join("+"),
        };
        *by_outcome.entry(outcome.clone()).or_default() += 1;
        let ticket = records
            .iter()
            .find_map(|r| r.ticket.clone())
            .unwrap_or_default();
        let notices: Vec<String> = sent
            .iter()
            .filter(|s| s.answers(&id))
            .map(|s| s.notice.clone().unwrap_or_default())
            .collect();
        let detail = records.first().map(|r| r.detail.as_str()).unwrap_or("");
        let detail: String = detail.chars().take(70).collect();
        lines.push(format!(
            "{name:<46} {outcome:<22} {ticket:<10} {:<14} {detail}",
            notices.join(",")
        ));
    }
    println!(
        "odd mailbox: {} files, {n} appended ({} only with CRLF: {converted:?}), {} refused: {refused:?}",
        files.len(),
        converted.len(),
        refused.len()
    );
    println!(
        "processed {processed}, quarantined {quarantined}, {} tickets, {} replies, {} intake records",
        tickets.len(),
        sent.len(),
        intake.len()
    );
    println!("outcomes: {by_outcome:?}");
    for l in &lines {
        println!("  {l}");
    }
    // A message the parser cannot read is keyed by a hash of its bytes, and
    // the server may hand back other bytes than were appended (line ends):
    // such files are matched to the records no file claimed.
    let unclaimed: Vec<_> = intake
        .iter()
        .zip(&claimed)
        .filter(|(_, c)| !**c)
        .map(|(r, _)| r)
        .collect();
    if !unaccounted.is_empty() {
        println!("files whose bytes the server changed: {unaccounted:?}; records no file claimed:");
        for r in &unclaimed {
            println!("  {:<22} {:<40} {}", r.outcome, r.message_id, r.detail);
        }
    }
    assert!(
        unaccounted.len() <= unclaimed.len(),
        "no intake record for {unaccounted:?}"
    );

    // Whatever the input, replies stay safe.
    for s in &sent {
        assert_eq!(s.rcpt.len(), 1, "reply {} to {:?}", s.n, s.rcpt);
        let rcpt = s.rcpt[0].to_ascii_lowercase();
        assert_ne!(rcpt, "support@example.test", "reply {} to the desk", s.n);
        assert!(
            !rcpt.starts_with("mailer-daemon@") && !rcpt.starts_with("postmaster@"),
            "reply {} to a robot: {rcpt}",
            s.n
        );
        assert_eq!(s.auto_submitted.as_deref(), Some("auto-replied"));
        let raw = std::fs::read(servers.smtp_out().join(format!("{}.eml", s.n))).unwrap();
        let names = header_names(&raw);
        assert!(
            !names.iter().any(|h| h == "bcc" || h == "cc"),
            "reply {} carries injected headers: {names:?}",
            s.n
        );
    }
}
