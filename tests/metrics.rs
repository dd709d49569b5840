//! `GET /metrics` on `[metrics] listen`, from the real daemon watching a
//! real Dovecot mailbox and sending through the SMTP capture server: what it
//! did, how its mailbox stands and what waits in the outbox, in the
//! Prometheus text format.

mod support;

use std::time::Duration;

use support::{config_with_extra, Daemon, Db, MailServers, Options};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The value of the sample `name` (with its labels as written), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(url: &str) -> Option<String> {
    let r = reqwest::get(url).await.ok()?;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        r.headers()
    );
    r.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_mail_tickets_replies_mailboxes_and_the_outbox() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    support::import_standard_registry(&db.store().await).await;
    let port = free_port();
    let config = config_with_extra(
        &servers,
        &db,
        &Options::default(),
        &format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let daemon = Daemon::start(&config.path, servers.dir().join("daemon.log"));
    let url = format!("http://127.0.0.1:{port}/metrics");

    let mail = "Message-ID: <metrics-1@delinde.example>\r\n\
From: Koen De Witte <koen.dewitte@delinde.example>\r\n\
To: support@example.test\r\nSubject: Medicatieronde lukt niet\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n\
Sinds 7u kan niemand op afdeling B2 de medicatieronde openen: foutmelding bij het laden. We werken nu op papier.\r\n";
    servers.append("INBOX", mail.as_bytes()).await;
    servers.wait_sent(1, Duration::from_secs(30)).await;

    let mut text = String::new();
    for _ in 0..100 {
        if let Some(t) = scrape(&url).await {
            text = t;
            if sample(&text, "servicedesk_replies_total{result=\"sent\"}") == Some(1.0) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = daemon.log();
    for (name, want) in [
        ("servicedesk_mails_total{outcome=\"ticket\"}", 1.0),
        (
            "servicedesk_tickets_total{category=\"incident\",chargeable_reason=\"none\",priority=\"critical\"}",
            1.0,
        ),
        ("servicedesk_replies_total{result=\"sent\"}", 1.0),
        ("servicedesk_processing_seconds_count", 1.0),
        ("servicedesk_sorting_confidence_count", 1.0),
        ("servicedesk_outbox_queued", 0.0),
        ("servicedesk_outbox_oldest_queued_seconds", 0.0),
        ("servicedesk_model_in_use", 0.0),
    ] {
        assert_eq!(sample(&text, name), Some(want), "{name}:\n{text}\n{log}");
    }
    // One mailbox, named `user@host:port/mailbox`.
    let mailbox = text
        .lines()
        .find_map(|l| l.strip_prefix("servicedesk_mailbox_up"))
        .and_then(|l| l.split_once(' '))
        .map(|(labels, _)| labels.to_string())
        .expect("a mailbox_up sample");
    assert!(
        mailbox.starts_with(&format!("{{mailbox=\"{}@127.0.0.1:", support::SUPPORT_USER))
            && mailbox.ends_with("/INBOX\"}"),
        "{mailbox}"
    );
    assert_eq!(
        sample(&text, &format!("servicedesk_mailbox_up{mailbox}")),
        Some(1.0),
        "{text}"
    );
    let fetched = sample(
        &text,
        &format!("servicedesk_mailbox_last_fetch_timestamp_seconds{mailbox}"),
    )
    .expect("a last fetch time");
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        (now - 120.0..=now + 1.0).contains(&fetched),
        "{fetched} vs {now}"
    );
    assert!(
        text.contains("# TYPE servicedesk_processing_seconds histogram"),
        "{text}"
    );

    // The alert rules and the dashboard in contrib/ name only metrics that exist.
    let names = regex::Regex::new(r"servicedesk_[a-z_]+").unwrap();
    for file in [
        "contrib/prometheus-alerts.yml",
        "contrib/grafana-dashboard.json",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let contrib = std::fs::read_to_string(&path).expect("a contrib file");
        for m in names.find_iter(&contrib) {
            let name = m.as_str();
            if name.starts_with("servicedesk_oauth_") {
                // Served only with OAuth2 mailboxes: checked by tests/oauth.rs.
                continue;
            }
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "{file} names {name}, which /metrics does not have"
            );
        }
    }
    drop(daemon);
}
