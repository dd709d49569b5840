//! Two daemons on one PostgreSQL database and one mailbox (two machines in
//! production): every message ends on exactly one ticket with exactly one
//! reply, and when the daemon holding the mailbox stops, the other takes
//! over.

mod support;

use std::time::Duration;

use servicedesk::daemon;
use servicedesk::store::TicketFilter;
use support::{config_with_extra, Db, MailServers, Options};

fn mail(n: usize) -> Vec<u8> {
    let from = [
        "Koen De Witte <koen.dewitte@delinde.example>",
        "An Peeters <an.peeters@delinde.example>",
        "Tom Claes <tom.claes@delinde.example>",
    ][n % 3];
    format!(
        "Message-ID: <twin-{n}@delinde.example>\r\nFrom: {from}\r\nTo: support@example.test\r\n\
Subject: Foutmelding zorgplan ({n})\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Bij het opslaan van een zorgplan krijgen we een foutmelding (melding {n}).\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_one_mailbox() {
    let servers = MailServers::start();
    let db = Db::postgres().await;
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = config_with_extra(
        &servers,
        &db,
        &Options {
            poll_interval_secs: 1,
            ..Options::default()
        },
        // Appended to [daemon]: a short lease so the take-over is quick.
        "lease_secs = 3\n[limits]\nloop_max_tickets = 100000\n",
    );
    let start = |config: servicedesk::config::Config| {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            daemon::run(&config, async {
                let _ = stop_rx.await;
            })
            .await
        });
        (stop_tx, task)
    };
    let (stop_a, task_a) = start(config.clone());
    let (stop_b, task_b) = start(config.clone());

    let first: Vec<Vec<u8>> = (0..20).map(mail).collect();
    for r in servers.append_all_raw("INBOX", &first).await {
        r.expect("APPEND");
    }
    let sent = servers.wait_sent(20, Duration::from_secs(40)).await;
    assert_eq!(sent.len(), 20, "replies while both daemons run");

    // One daemon stops (whichever held the mailbox); the other takes over.
    stop_a.send(()).expect("stop a");
    task_a.await.expect("join a").expect("daemon a");
    let more: Vec<Vec<u8>> = (20..25).map(mail).collect();
    for r in servers.append_all_raw("INBOX", &more).await {
        r.expect("APPEND");
    }
    let sent = servers.wait_sent(25, Duration::from_secs(40)).await;
    stop_b.send(()).expect("stop b");
    task_b.await.expect("join b").expect("daemon b");

    assert_eq!(sent.len(), 25, "every mail answered once, none twice");
    let answered = support::replies_per_message(&sent);
    let tickets = store
        .tickets(&TicketFilter::default())
        .await
        .expect("tickets");
    assert_eq!(tickets.len(), 25);
    let on_tickets = support::tickets_per_message(&store).await;
    for n in 0..25 {
        let id = format!("twin-{n}@delinde.example");
        assert_eq!(on_tickets.get(&id), Some(&1), "{id} on tickets");
        assert_eq!(answered.get(&format!("<{id}>")), Some(&1), "{id} replies");
    }
    assert_eq!(servers.count("INBOX").await, 0);
    assert_eq!(servers.count("Processed").await, 25);
}
