//! `kill -9` at random moments: the real binary runs `run --once` on a
//! mailbox of registered persons' mail and is killed again and again; then a
//! last run finishes. Every message must end on exactly one ticket, the
//! inbox empty, every message in Processed, and every ticket answered — a
//! reply may repeat only when the kill fell between the server's `250` and
//! its recording, so at most the replies in flight at the kill.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use servicedesk::store::TicketFilter;
use support::{config_with_extra, Db, MailServers, Options};

/// A registered person's mail, distinct per `n`.
fn mail(n: usize) -> Vec<u8> {
    let (from, subject, body) = match n % 4 {
        0 => (
            "Koen De Witte <koen.dewitte@delinde.example>",
            "Foutmelding bij opslaan zorgplan",
            "Bij het opslaan van een zorgplan krijgen we de foutmelding ZP-2041.",
        ),
        1 => (
            "An Peeters <an.peeters@delinde.example>",
            "Medicatieronde loopt vast",
            "Sinds vanochtend loopt de medicatieronde vast op afdeling Lindehof.",
        ),
        2 => (
            "Els Vermeulen <els.vermeulen@delinde.example>",
            "Vraag over export",
            "Hoe kan ik het maandrapport van de zorgplanning exporteren naar Excel?",
        ),
        _ => (
            "Tom Claes <tom.claes@delinde.example>",
            "Rapport toont geen gegevens",
            "Het dagrapport van afdeling Zonnebloem blijft leeg sinds de update.",
        ),
    };
    format!(
        "Message-ID: <crash-{n}@delinde.example>\r\nFrom: {from}\r\nTo: support@example.test\r\n\
Subject: {subject} ({n})\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\nMail {n}.\r\n"
    )
    .into_bytes()
}

/// Runs `run --once` and kills it with SIGKILL after `after`; true when it
/// finished by itself first.
fn run_and_kill(config: &std::path::Path, after: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
        .arg("--config")
        .arg(config)
        .args(["run", "--once"])
        .env("SERVICEDESK_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start servicedesk");
    let deadline = std::time::Instant::now() + after;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_loses_nothing_and_doubles_nothing() {
    const MAILS: usize = 1500;
    let servers = MailServers::start();
    let tmp = support::short_tempdir();
    let db = Db::sqlite(tmp.path());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = config_with_extra(
        &servers,
        &db,
        &Options {
            // Shorter than a killed sender's claim on a reply (90 s with the
            // SMTP timeout of 10 s): the last run must take the claims of
            // the killed runs over, not wait them out.
            once_wait_secs: 20,
            ..Options::default()
        },
        // Four people sending 300 mails at once would trip the loop breaker.
        "[limits]\nloop_max_tickets = 100000\n",
    );
    let config_path = config.path.clone();
    let messages: Vec<Vec<u8>> = (0..MAILS).map(mail).collect();
    for r in servers.append_all_raw("INBOX", &messages).await {
        r.expect("APPEND");
    }

    // Kill at spread-out moments (a fixed pseudo-random sequence: repeatable),
    // a bounded number of times.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut kills = 0;
    for _ in 0..12 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(60 + seed % 300);
        if run_and_kill(&config_path, after) {
            break;
        }
        kills += 1;
    }
    assert!(
        kills >= 6,
        "only {kills} kills before the mailbox was done: kill sooner"
    );
    // The last run finishes what the killed ones left.
    let finished = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
        .arg("--config")
        .arg(&config_path)
        .args(["run", "--once"])
        .env("SERVICEDESK_LOG", "warn")
        .output()
        .expect("final run");
    assert!(
        finished.status.success(),
        "final run failed: {}",
        String::from_utf8_lossy(&finished.stderr)
    );

    // Exactly one ticket per message.
    let tickets = store
        .tickets(&TicketFilter::default())
        .await
        .expect("tickets");
    let on_tickets = support::tickets_per_message(&store).await;
    for n in 0..MAILS {
        let id = format!("crash-{n}@delinde.example");
        assert_eq!(on_tickets.get(&id), Some(&1), "{id} after {kills} kills");
    }
    assert_eq!(tickets.len(), MAILS, "after {kills} kills");

    // The mailbox is done: nothing left, nothing lost.
    assert_eq!(servers.count("INBOX").await, 0);
    assert_eq!(servers.count("Processed").await as usize, MAILS);

    // Every ticket answered; repeats only from a kill right after a 250.
    let sent = servers.sent();
    let replies = support::replies_per_message(&sent);
    let outbox = store.outbox().await.expect("outbox");
    for n in 0..MAILS {
        let irt = format!("<crash-{n}@delinde.example>");
        let queued: Vec<_> = outbox
            .iter()
            .filter(|e| format!("<{}>", e.in_reply_to) == irt)
            .collect();
        assert!(
            replies.get(&irt).copied().unwrap_or(0) >= 1,
            "{irt} unanswered; outbox: {queued:?}; {} replies seen",
            sent.len()
        );
    }
    let repeats: usize = replies.values().map(|c| c - 1).sum();
    println!("{kills} kills, {} replies, {repeats} repeated", sent.len());
    // Up to eight replies are in flight at once (the outbox's concurrency);
    // a kill can catch each of them between its 250 and its recording.
    assert!(
        repeats <= kills * 8,
        "{repeats} repeated replies after {kills} kills: more than the replies in flight"
    );
    assert_eq!(store.pending_replies().await.expect("pending"), 0);
}
