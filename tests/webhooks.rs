//! Webhooks from the real daemon to a local receiver: a new ticket and an
//! agent's status change each arrive as a signed POST; a receiver that
//! fails is tried again (at least once, never lost); `webhooks list` says
//! what happened.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "a-receivers-secret-of-some-length";
const CUSTOMERS: &str = "customer,contract_status,campuses\nWZC De Linde,active,Gent\n";
const PERSONS: &str = "email,name,customer,campus,role,language\n\
     an.peeters@delinde.example,An Peeters,WZC De Linde,Gent,campus,nl\n";

/// One POST as the receiver saw it: its headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Post {
    headers: Vec<(String, String)>,
    body: String,
}

impl Post {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// A receiver on 127.0.0.1 that answers 500 to its first request and 200
/// to the rest, one request per connection.
async fn receiver() -> (u16, Arc<Mutex<Vec<Post>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Post>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_len, length) = loop {
                let n = conn.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..at]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (at + 4, length);
                }
            };
            if head_len == 0 {
                continue;
            }
            while buf.len() < head_len + length {
                let n = conn.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_len]).to_string();
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
                .collect();
            let body = String::from_utf8_lossy(&buf[head_len..]).to_string();
            let first = {
                let mut seen = log.lock().unwrap();
                seen.push(Post { headers, body });
                seen.len() == 1
            };
            let status = if first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = conn
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    });
    (port, seen)
}

fn signature_ok(post: &Post) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(post.header("x-servicedesk-timestamp").as_bytes());
    mac.update(b".");
    mac.update(post.body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    post.header("x-servicedesk-signature") == format!("sha256={hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_changes_arrive_signed_and_a_failing_receiver_gets_them_again() {
    let (port, seen) = receiver().await;
    let dir = support::short_tempdir();
    let path = dir.path();
    let maildir = path.join("maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let config = path.join("servicedesk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{db}\"\n\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n\n\
             [maildir]\npath = \"{md}\"\n\n[file_transport]\ndir = \"{sent}\"\nfrom = \"support@example.test\"\n\n\
             [daemon]\npoll_interval_secs = 1\n\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:{port}/hook?token=receivers-own\"\nsecret = \"{SECRET}\"\nretry_base_secs = 1\n",
            db = path.join("desk.db").display(),
            md = maildir.display(),
            sent = path.join("sent").display(),
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = support::run_servicedesk(&config, path, args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            support::describe(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    std::fs::write(path.join("customers.csv"), CUSTOMERS).unwrap();
    std::fs::write(path.join("persons.csv"), PERSONS).unwrap();
    run(&["customers", "import", "customers.csv"]);
    run(&["persons", "import", "persons.csv"]);
    let daemon = support::Daemon::start(&config, path.join("daemon.log"));
    // The first pass starts the webhooks' cursor at the audit trail's end.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mail = "Message-ID: <hook-1@delinde.example>\r\nFrom: An Peeters <an.peeters@delinde.example>\r\n\
To: support@example.test\r\nSubject: Foutmelding zorgplan\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Bij het opslaan van een zorgplan krijgen we een foutmelding.\r\n";
    std::fs::write(maildir.join("tmp/1"), mail).unwrap();
    std::fs::rename(maildir.join("tmp/1"), maildir.join("new/1")).unwrap();

    let wait_for = |n: usize| {
        let seen = seen.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while seen.lock().unwrap().len() < n {
                assert!(
                    Instant::now() < deadline,
                    "{} posts, not {n}",
                    seen.lock().unwrap().len()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // The first try gets a 500, the retry a 200: the same delivery twice.
    wait_for(2).await;
    let posts = seen.lock().unwrap().clone();
    assert_eq!(posts[0].body, posts[1].body);
    assert_eq!(
        posts[0].header("x-servicedesk-delivery"),
        posts[1].header("x-servicedesk-delivery")
    );
    let created = &posts[1];
    assert_eq!(created.header("x-servicedesk-event"), "ticket.created");
    assert_eq!(created.header("content-type"), "application/json");
    assert!(signature_ok(created), "{created:?}");
    let body: Value = serde_json::from_str(&created.body).unwrap();
    assert_eq!(body["event"], "ticket.created");
    assert_eq!(body["ticket"]["number"], "CS-000001");
    assert_eq!(body["ticket"]["category"], "incident");
    assert_eq!(body["ticket"]["customer"], "WZC De Linde");
    assert_eq!(body["change"]["by"], "machine");

    // An agent's status change.
    run(&["tickets", "set", "CS-000001", "--status", "open"]);
    wait_for(3).await;
    let changed = seen.lock().unwrap()[2].clone();
    assert_eq!(
        changed.header("x-servicedesk-event"),
        "ticket.status_changed"
    );
    assert!(signature_ok(&changed));
    let body: Value = serde_json::from_str(&changed.body).unwrap();
    assert_eq!(
        (&body["change"]["old"], &body["change"]["new"]),
        (&Value::from("new"), &Value::from("open"))
    );
    assert_eq!(body["ticket"]["status"], "open");

    let list: Value = serde_json::from_str(&run(&["webhooks", "list", "--json"])).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|d| d["status"] == "delivered"), "{list:?}");
    assert_eq!(list[1]["attempts"], 2, "{list:?}");
    assert_eq!(
        list[1]["last_error"], "answered 500 Internal Server Error",
        "{list:?}"
    );
    assert_eq!(
        list[0]["hook"],
        format!("http://127.0.0.1:{port}"),
        "{list:?}"
    );
    let text = run(&["webhooks", "list"]);
    assert!(
        !text.contains("receivers-own"),
        "the url's token is shown:\n{text}"
    );
    let log = daemon.stop();
    assert!(
        !log.contains("receivers-own") && !log.contains(SECRET),
        "{log}"
    );
}

/// On PostgreSQL a later transaction can commit a higher audit id while a
/// lower one is still in flight: the webhook queue waits for the lower one
/// instead of moving its cursor past it, so no event is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_skipped_when_ids_commit_out_of_order_on_postgres() {
    use servicedesk::webhooks::queue_new_events;
    let db = support::Db::postgres().await;
    let store = db.store().await;
    let hooks = vec![servicedesk::config::WebhookConfig {
        url: "https://crm.example.test/hook".into(),
        secret: servicedesk::config::Secret::new("a-secret-of-some-length"),
        events: vec!["ticket.status_changed".into()],
        retry_base_secs: 30,
        max_attempts: 3,
    }];
    let mut gate = None;
    // The first look starts at the end of the trail.
    assert_eq!(
        queue_new_events(&store, &hooks, &mut gate).await.unwrap(),
        0
    );
    let mut slow = store.begin("CS").await.unwrap();
    slow.record_event("CS-000001", "cli", "status", Some("new"), Some("open"))
        .await
        .unwrap();
    let mut fast = store.begin("CS").await.unwrap();
    fast.record_event("CS-000002", "cli", "status", Some("new"), Some("open"))
        .await
        .unwrap();
    fast.commit().await.unwrap();
    // However often it looks, the later event is not queued alone.
    for _ in 0..5 {
        assert_eq!(
            queue_new_events(&store, &hooks, &mut gate).await.unwrap(),
            0
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    slow.commit().await.unwrap();
    assert_eq!(
        queue_new_events(&store, &hooks, &mut gate).await.unwrap(),
        2
    );
    let mut queued: Vec<String> = store
        .webhook_deliveries(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.ticket_number)
        .collect();
    queued.sort();
    assert_eq!(queued, ["CS-000001", "CS-000002"]);
    // A rolled-back id is a hole nobody fills: the next event still goes.
    let mut gone = store.begin("CS").await.unwrap();
    gone.record_event("CS-000003", "cli", "status", Some("new"), Some("open"))
        .await
        .unwrap();
    drop(gone);
    let mut next = store.begin("CS").await.unwrap();
    next.record_event("CS-000004", "cli", "status", Some("new"), Some("open"))
        .await
        .unwrap();
    next.commit().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue_new_events(&store, &hooks, &mut gate).await.unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "the event after a rolled-back one never went"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(store.webhook_deliveries(10).await.unwrap().len(), 3);
}
