//! The daemon as systemd sees it: the real binary under a `NOTIFY_SOCKET`
//! datagram listener with `WATCHDOG_USEC` set, as a `Type=notify` unit with
//! `WatchdogSec=` runs it. It must say READY once its mailbox runs, ping the
//! watchdog while its work makes progress (and stop pinging while a step is
//! stuck), keep a readable STATUS line, and say STOPPING on SIGTERM.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;
use support::{config_with_extra, Daemon, Db, MailServers, Options};

/// Every datagram the daemon sent, with when it arrived.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<(Instant, String)>>>);

impl Heard {
    /// Listens on `path` in a thread of its own until the test ends.
    fn listen(path: &Path) -> Heard {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let heard = Heard::default();
        let sink = heard.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => sink.0.lock().unwrap().push((
                        Instant::now(),
                        String::from_utf8_lossy(&buf[..n]).into_owned(),
                    )),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return,
                }
                if Arc::strong_count(&sink.0) == 1 {
                    return;
                }
            }
        });
        heard
    }

    fn all(&self) -> Vec<(Instant, String)> {
        self.0.lock().unwrap().clone()
    }

    /// Every `KEY=value` line heard, in order.
    fn lines(&self) -> Vec<String> {
        self.all()
            .iter()
            .flat_map(|(_, d)| d.lines().map(str::to_string).collect::<Vec<_>>())
            .collect()
    }

    fn pings_since(&self, since: Instant) -> usize {
        self.all()
            .iter()
            .filter(|(at, d)| *at >= since && d.lines().any(|l| l == "WATCHDOG=1"))
            .count()
    }

    /// Waits (bounded) until `pred` holds for what was heard.
    fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        daemon: &Daemon,
        pred: impl Fn(&Heard) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "never heard {what}; heard {:?}\n{}",
                self.lines(),
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `servicedesk run` on `config`, as systemd starts a `Type=notify` unit
/// with `WatchdogSec=1` (a ping every half second), once it said READY.
fn start_under_systemd(servers: &MailServers, config: &Path) -> (Heard, Daemon) {
    let socket = servers.dir().join("notify.sock");
    let heard = Heard::listen(&socket);
    let socket = socket.display().to_string();
    let daemon = Daemon::start_with_env(
        config,
        servers.dir().join("daemon.log"),
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "1000000")],
    );
    heard.wait_for("READY=1", Duration::from_secs(30), &daemon, |h| {
        h.lines().iter().any(|l| l == "READY=1")
    });
    (heard, daemon)
}

fn mail(id: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}@delinde.example>\r\nFrom: Koen De Witte <koen.dewitte@delinde.example>\r\n\
To: support@example.test\r\nSubject: Foutmelding zorgplan\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Bij het opslaan van een zorgplan krijgen we een foutmelding.\r\n"
    )
    .into_bytes()
}

/// READY once the mailbox is watched, watchdog pings at half of
/// `WATCHDOG_USEC`, a status line with mailboxes and outbox, STOPPING on
/// SIGTERM and a clean exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_watchdog_status_and_stopping_reach_the_notify_socket() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    support::import_standard_registry(&db.store().await).await;
    let config = config_with_extra(&servers, &db, &Options::default(), "");
    let (heard, daemon) = start_under_systemd(&servers, &config.path);
    let lines = heard.lines();
    let ready_at = lines.iter().position(|l| l == "READY=1").unwrap();
    assert!(
        !lines[..ready_at].iter().any(|l| l == "WATCHDOG=1"),
        "watchdog pings before READY: {lines:?}"
    );
    assert!(
        lines.contains(&"STATUS=1 mailbox watched, outbox 0 queued".to_string()),
        "{lines:?}"
    );

    // Pings keep coming, about two per WATCHDOG_USEC.
    let since = Instant::now();
    heard.wait_for(
        "three watchdog pings",
        Duration::from_secs(20),
        &daemon,
        |h| h.pings_since(since) >= 3,
    );

    // Mail arrives and is answered; the daemon keeps pinging.
    servers.append("INBOX", &mail("notify-1")).await;
    servers.wait_sent(1, Duration::from_secs(30)).await;
    let since = Instant::now();
    heard.wait_for(
        "pings after the mail",
        Duration::from_secs(20),
        &daemon,
        |h| h.pings_since(since) >= 2,
    );

    let log = daemon.stop();
    let lines = heard.lines();
    assert!(
        lines.contains(&"STOPPING=1".to_string()),
        "{lines:?}\n{log}"
    );
    let stopping = lines.iter().position(|l| l == "STOPPING=1").unwrap();
    assert!(
        lines[stopping + 1..].iter().all(|l| l != "WATCHDOG=1"),
        "pings after STOPPING: {lines:?}"
    );
}

/// A step stuck on a database lock stops the watchdog pings (systemd would
/// restart the daemon), with one log line saying which task is stuck; once
/// the lock goes, the work finishes and the pings come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_step_withholds_the_watchdog_ping_until_it_moves_again() {
    let servers = MailServers::start();
    let db = Db::postgres().await;
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    // Appended to [daemon]: a stuck step shows after 2 s.
    let config = config_with_extra(
        &servers,
        &db,
        &Options::default(),
        "step_timeout_secs = 2\n",
    );
    let (heard, daemon) = start_under_systemd(&servers, &config.path);

    // Another session locks the tickets table; the mail that arrives now
    // cannot be stored until it lets go.
    let mut locker = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    servers.append("INBOX", &mail("stuck-1")).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    while daemon.lines("no progress") == 0 {
        assert!(
            Instant::now() < deadline,
            "never reported stuck\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Stuck: no ping for several watchdog intervals.
    let since = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        heard.pings_since(since),
        0,
        "pinged while stuck: {:?}",
        heard.lines()
    );
    assert_eq!(daemon.lines("no progress"), 1, "{}", daemon.log());

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    servers.wait_sent(1, Duration::from_secs(30)).await;
    let since = Instant::now();
    heard.wait_for(
        "pings once unstuck",
        Duration::from_secs(20),
        &daemon,
        |h| h.pings_since(since) >= 2,
    );
    daemon.stop();
}
