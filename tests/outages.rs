//! Outages while the daemon runs (the real binary, as systemd runs it):
//! Dovecot stopped and started again in the middle of a backlog, the SMTP
//! server down and up again, PostgreSQL unreachable and back. Nothing is
//! lost, nothing is answered twice, the daemon recovers by itself and exits
//! cleanly on SIGTERM, and each outage is logged when it starts and when it
//! ends, not at every retry.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use servicedesk::store::{Store, TicketFilter};
use support::{config_with_extra, Daemon, Db, MailServers, Options, Sent};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Four registered persons sending many mails: keep the loop breaker away.
const LIMITS: &str = "[limits]\nloop_max_tickets = 100000\n";

/// A registered person's mail, distinct per `tag` and `n`.
fn mail(tag: &str, n: usize) -> Vec<u8> {
    let from = [
        "Koen De Witte <koen.dewitte@delinde.example>",
        "An Peeters <an.peeters@delinde.example>",
        "Els Vermeulen <els.vermeulen@delinde.example>",
        "Tom Claes <tom.claes@delinde.example>",
    ][n % 4];
    format!(
        "Message-ID: <{tag}-{n}@delinde.example>\r\nFrom: {from}\r\nTo: support@example.test\r\n\
Subject: Foutmelding zorgplan ({n})\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Bij het opslaan van een zorgplan krijgen we een foutmelding (melding {n}).\r\n"
    )
    .into_bytes()
}

fn mails(tag: &str, range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    range.map(|n| mail(tag, n)).collect()
}

/// Every message `<tag>-n` (n < count) on exactly one ticket and answered
/// exactly once.
async fn assert_once_each(store: &Store, sent: &[Sent], tag: &str, count: usize, log: &str) {
    let answered = support::replies_per_message(sent);
    let tickets = store
        .tickets(&TicketFilter::default())
        .await
        .expect("tickets");
    let on_tickets = support::tickets_per_message(store).await;
    for n in 0..count {
        let id = format!("{tag}-{n}@delinde.example");
        assert_eq!(on_tickets.get(&id), Some(&1), "{id} on tickets\n{log}");
        assert_eq!(
            answered.get(&format!("<{id}>")),
            Some(&1),
            "{id} replies\n{log}"
        );
    }
    assert_eq!(tickets.len(), count, "{log}");
    assert_eq!(sent.len(), count, "{log}");
}

/// Waits (bounded) until INBOX is empty.
async fn wait_inbox_empty(servers: &MailServers, limit: Duration) -> u32 {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = servers.count("INBOX").await;
        if n == 0 || tokio::time::Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Dovecot goes away while the daemon works through a backlog, and comes
/// back: the daemon reconnects by itself and finishes; what it had committed
/// but not moved yet is moved, not processed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_restarts_in_the_middle_of_a_backlog() {
    const MAILS: usize = 2500;
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = config_with_extra(&servers, &db, &Options::default(), LIMITS);
    for r in servers
        .append_all_raw("INBOX", &mails("backlog", 0..MAILS))
        .await
    {
        r.expect("APPEND");
    }
    let daemon = Daemon::start(&config.path, servers.dir().join("daemon.log"));

    // Stop Dovecot once the daemon is well into the backlog.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while servers.count("Processed").await < 32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = servers.count("INBOX").await;
    servers.control("stop-imap");
    assert!(
        left > 0,
        "the backlog was done before Dovecot stopped: use more mail"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    servers.control("start-imap");

    let sent = servers.wait_sent(MAILS, Duration::from_secs(120)).await;
    let inbox = wait_inbox_empty(&servers, Duration::from_secs(30)).await;
    let log = daemon.stop();
    assert_once_each(&store, &sent, "backlog", MAILS, &log).await;
    assert_eq!(inbox, 0, "{log}");
    assert_eq!(servers.count("Processed").await as usize, MAILS);
    let count = |text: &str| log.lines().filter(|l| l.contains(text)).count();
    assert_eq!(count("mail source unavailable"), 1, "{log}");
    assert_eq!(count("mailbox processing restored"), 1, "{log}");
}

/// The SMTP server is down while mail comes in: tickets are made, replies
/// wait in the outbox, and go out once each when the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up() {
    const MAILS: usize = 30;
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = config_with_extra(&servers, &db, &Options::default(), LIMITS);
    let daemon = Daemon::start(&config.path, servers.dir().join("daemon.log"));

    servers.control("stop-smtp");
    for r in servers
        .append_all_raw("INBOX", &mails("smtp", 0..MAILS))
        .await
    {
        r.expect("APPEND");
    }
    // Tickets are made without the SMTP server...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while store.pending_replies().await.expect("pending") < MAILS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replies not queued:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ... and the sender has found it down, more than once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let outbox = store.outbox().await.expect("outbox");
        if outbox.iter().all(|e| e.attempts >= 2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retries:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(servers.sent().is_empty());
    servers.control("start-smtp");

    let sent = servers.wait_sent(MAILS, Duration::from_secs(90)).await;
    let log = daemon.stop();
    assert_once_each(&store, &sent, "smtp", MAILS, &log).await;
    let count = |text: &str| log.lines().filter(|l| l.contains(text)).count();
    assert_eq!(count("mail server unreachable;"), 1, "{log}");
    assert_eq!(count("mail server reachable again"), 1, "{log}");
}

/// A TCP relay to PostgreSQL that can be cut: while cut, every open
/// connection is closed and new ones are dropped at once.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (up, links) = (up.clone(), links.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection close
                    }
                    let upstream = upstream.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    links.lock().expect("links").push(link);
                }
            })
        };
        Relay {
            port,
            up,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `host:port` of a `postgres://user@host:port/db` URL (port 5432 if none).
fn host_port(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.to_string()),
        None => (authority.to_string(), "5432".to_string()),
    }
}

/// PostgreSQL becomes unreachable while the daemon runs and mail arrives:
/// nothing is processed meanwhile, nothing is lost, and once the database is
/// back every mail gets its ticket and its one reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_unreachable_then_back() {
    let servers = MailServers::start();
    let db = Db::postgres().await;
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let (host, port) = host_port(db.url());
    let relay = Relay::start(format!("{host}:{port}")).await;
    let config = config_with_extra(&servers, &db, &Options::default(), LIMITS);
    // The daemon reaches the database through the relay only.
    let text = std::fs::read_to_string(&config.path)
        .expect("config")
        .replace(
            &format!("@{host}:{port}/"),
            &format!("@127.0.0.1:{}/", relay.port),
        );
    assert!(text.contains(&format!(":{}/", relay.port)), "{text}");
    let path = servers.dir().join("relayed.toml");
    std::fs::write(&path, text).expect("write config");
    let daemon = Daemon::start(&path, servers.dir().join("daemon.log"));

    for r in servers.append_all_raw("INBOX", &mails("db", 0..5)).await {
        r.expect("APPEND");
    }
    let sent = servers.wait_sent(5, Duration::from_secs(60)).await;
    assert_eq!(sent.len(), 5, "{}", daemon.log());

    relay.cut();
    for r in servers.append_all_raw("INBOX", &mails("db", 5..10)).await {
        r.expect("APPEND");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(servers.sent().len(), 5, "answered without a database?");
    assert!(
        daemon.lines("database unavailable") >= 1,
        "the outage was not logged:\n{}",
        daemon.log()
    );
    relay.restore();

    let sent = servers.wait_sent(10, Duration::from_secs(90)).await;
    let inbox = wait_inbox_empty(&servers, Duration::from_secs(30)).await;
    let log = daemon.stop();
    assert_once_each(&store, &sent, "db", 10, &log).await;
    assert_eq!(inbox, 0, "{log}");
    // One line as it broke and one as it recovered per task, not per retry.
    let errors = log.lines().filter(|l| l.contains(" ERROR ")).count();
    assert!((1..=4).contains(&errors), "{errors} error lines:\n{log}");
    assert!(
        log.contains("mailbox processing restored"),
        "recovery not logged:\n{log}"
    );
}
