//! Live updates over HTTP against the real binary: two daemons
//! (`servicedesk run`, mail and workspace, one with metrics) on one
//! mailbox and one database (SQLite file or PostgreSQL), and the workspace
//! alone (`servicedesk web`) as a third process, each with its own clients.
//!
//! A stream needs a session or token (401 without); a mail APPENDed to
//! Dovecot reaches the clients of both processes; a change made through
//! one process reaches a client of the other, its events together with one
//! counts update; a burst arrives whole, in order, once; a client that
//! reconnects with `Last-Event-ID` gets exactly what it missed; presence
//! crosses processes; a reply that names what its writer saw gets 409 when
//! something arrived since (202 without the field); disabling an agent ends
//! their stream; the connected clients are a metric.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{describe, Backend, Db, MailServers};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct Ev {
    event: String,
    id: Option<i64>,
    data: Value,
}

/// A live stream read through reqwest, event by event.
struct Stream {
    res: reqwest::Response,
    buf: String,
}

impl Stream {
    /// Connects; `auth` is a header (name, value).
    async fn open(url: &str, auth: Option<(&str, &str)>, last: Option<i64>) -> Result<Stream, u16> {
        let mut req = reqwest::Client::new().get(url);
        if let Some((k, v)) = auth {
            req = req.header(k, v);
        }
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l.to_string());
        }
        let res = req.send().await.expect("GET /events");
        if res.status() != 200 {
            return Err(res.status().as_u16());
        }
        assert!(res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream")));
        Ok(Stream {
            res,
            buf: String::new(),
        })
    }

    /// The next event (comments skipped); `None` when the stream ended.
    /// Panics after 30 s without one.
    async fn next(&mut self) -> Option<Ev> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut ev = Ev {
                    event: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        ev.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        ev.id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    if ev.id.is_some() {
                        // Moves the stream's id without an event.
                        ev.event = "(id)".into();
                        return Some(ev);
                    }
                    continue;
                }
                ev.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(ev);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.res.chunk())
                .await
                .expect("no event within 30 s")
                .expect("reading the stream");
            match chunk {
                Some(bytes) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                None => return None,
            }
        }
    }

    /// Events until one of kind `event` satisfies `until` (that one included).
    async fn until(&mut self, event: &str, until: impl Fn(&Ev) -> bool) -> Vec<Ev> {
        let mut seen = Vec::new();
        loop {
            let ev = self.next().await.expect("the stream ended");
            let done = ev.event == event && until(&ev);
            seen.push(ev);
            if done {
                return seen;
            }
        }
    }
}

fn tickets(evs: &[Ev]) -> Vec<&Ev> {
    evs.iter().filter(|e| e.event == "ticket").collect()
}

async fn wait_healthy(base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(config: &Path, dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = support::run_servicedesk(config, dir, args, stdin.map(str::as_bytes));
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn live_over_http(backend: Backend) {
    let servers = MailServers::start();
    let db: Db = backend.db(servers.dir()).await;
    support::import_standard_registry(&db.store().await).await;
    let (port_a, port_b, port_m) = (free_port(), free_port(), free_port());
    let base = support::config_text(&servers, &db, &support::Options::default());
    let config_a = servers.dir().join("run.toml");
    let config_b = servers.dir().join("run-b.toml");
    std::fs::write(
        &config_a,
        format!("{base}\n[web]\nlisten = \"127.0.0.1:{port_a}\"\n\n[metrics]\nlisten = \"127.0.0.1:{port_m}\"\n"),
    )
    .unwrap();
    std::fs::write(
        &config_b,
        format!("{base}\n[web]\nlisten = \"127.0.0.1:{port_b}\"\n"),
    )
    .unwrap();
    let dir = servers.dir();
    for (who, role) in [("a", "agent"), ("b", "agent"), ("gone", "agent")] {
        cli(
            &config_a,
            dir,
            &[
                "agents",
                "add",
                &format!("{who}@desk.example"),
                "--name",
                &format!("Agent {who}"),
                "--role",
                role,
            ],
            Some("a long enough password 123\n"),
        );
    }
    let token_a = cli(&config_a, dir, &["agents", "token", "a@desk.example"], None);
    let token_b = cli(&config_a, dir, &["agents", "token", "b@desk.example"], None);
    let bearer_a = format!("Bearer {token_a}");
    let bearer_b = format!("Bearer {token_b}");
    let auth_a = Some(("authorization", bearer_a.as_str()));
    let auth_b = Some(("authorization", bearer_b.as_str()));

    // Two daemons on one database and one mailbox (one of them fetches, by
    // its lease), plus the workspace alone as a third process.
    let daemon = support::Daemon::start(&config_a, dir.join("run.log"));
    let second = support::Daemon::start(&config_b, dir.join("run-b.log"));
    let port_c = free_port();
    let config_c = dir.join("web.toml");
    std::fs::write(
        &config_c,
        format!("{base}\n[web]\nlisten = \"127.0.0.1:{port_c}\"\n"),
    )
    .unwrap();
    let _web = Kill(
        Command::new(env!("CARGO_BIN_EXE_servicedesk"))
            .arg("--config")
            .arg(&config_c)
            .arg("web")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("web.log")).unwrap())
            .spawn()
            .expect("start servicedesk web"),
    );
    let c = format!("http://127.0.0.1:{port_c}");
    wait_healthy(&c).await;
    let (a, b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    wait_healthy(&a).await;
    wait_healthy(&b).await;
    let http = reqwest::Client::new();

    // Without a session or token: 401, as every API.
    assert_eq!(
        Stream::open(&format!("{a}/events"), None, None).await.err(),
        Some(401)
    );
    assert_eq!(
        Stream::open(
            &format!("{a}/events"),
            Some(("authorization", "Bearer nonsense")),
            None
        )
        .await
        .err(),
        Some(401)
    );

    // A client of each process; each first gets the counts.
    let mut on_a = Stream::open(&format!("{a}/events"), auth_a, None)
        .await
        .unwrap();
    let mut on_b = Stream::open(&format!("{b}/events"), auth_b, None)
        .await
        .unwrap();
    let mut on_c = Stream::open(&format!("{c}/events"), auth_b, None)
        .await
        .unwrap();
    assert_eq!(on_a.next().await.unwrap().event, "counts");
    assert_eq!(on_b.next().await.unwrap().event, "counts");
    assert_eq!(on_c.next().await.unwrap().event, "counts");
    let metrics = reqwest::get(format!("http://127.0.0.1:{port_m}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("servicedesk_sse_clients 1"),
        "one client on the daemon:\n{metrics}"
    );

    // A mail APPENDed to the mailbox: a new ticket on both processes' streams.
    servers
        .append("INBOX", &support::simple_incident("live-1@delinde.example"))
        .await;
    for s in [&mut on_a, &mut on_b, &mut on_c] {
        let evs = s.until("ticket", |e| e.data["field"] == "created").await;
        let created = evs.last().unwrap();
        assert_eq!(created.data["ticket"], "CS-000001");
        assert_eq!(created.data["actor"], "machine");
        assert!(created.id.is_some(), "a durable id: {created:?}");
        let counts = s.until("counts", |_| true).await;
        assert_eq!(counts.last().unwrap().data["open"], 1);
    }

    // A change made through the second process reaches the daemon's client:
    // its three events (one transaction) and then one counts update.
    let r = http
        .patch(format!("{b}/api/tickets/CS-000001"))
        .header("authorization", &bearer_a)
        .json(&json!({"category": "question", "priority": "high", "assignee": "a@desk.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let evs = on_a.until("counts", |_| true).await;
    let fields: Vec<&str> = tickets(&evs)
        .iter()
        .map(|e| e.data["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["category", "assignee", "priority"], "{evs:?}");
    assert_eq!(evs.last().unwrap().data["mine"], 1, "a's own count");
    assert_eq!(
        evs.iter().filter(|e| e.event == "counts").count(),
        1,
        "one counts update for the change: {evs:?}"
    );
    let on_b_evs = on_b.until("counts", |_| true).await;
    assert_eq!(tickets(&on_b_evs).len(), 3);
    assert_eq!(on_b_evs.last().unwrap().data["mine"], 0, "b's own count");

    // A burst of notes, made concurrently through the daemon: every one
    // reaches the other process's client, in order, once.
    let notes = (0..20).map(|i| {
        let (http, a, bearer) = (http.clone(), a.clone(), bearer_a.clone());
        async move {
            let r = http
                .post(format!("{a}/api/tickets/CS-000001/notes"))
                .header("authorization", bearer)
                .json(&json!({ "text": format!("burst {i}") }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    });
    futures::future::join_all(notes).await;
    let mut got = Vec::new();
    let mut counts_updates = 0;
    while got.len() < 20 {
        let e = on_b.next().await.unwrap();
        match e.event.as_str() {
            "ticket" => {
                assert_eq!(e.data["field"], "note");
                got.push(e.id.unwrap());
            }
            "counts" => counts_updates += 1,
            _ => {}
        }
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    let last = *got.last().unwrap();
    println!("20 notes: {counts_updates} counts updates (coalesced)");
    assert!(counts_updates <= 20);

    // The client goes away; five more notes; it comes back with
    // Last-Event-ID and gets exactly those, and nothing twice.
    drop(on_b);
    for i in 0..5 {
        let r = http
            .post(format!("{a}/api/tickets/CS-000001/notes"))
            .header("authorization", &bearer_a)
            .json(&json!({ "text": format!("while away {i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let store = db.store().await;
    let missed: Vec<i64> = store
        .events_between(last, i64::MAX, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(missed.len(), 5);
    let mut on_b = Stream::open(&format!("{b}/events"), auth_b, Some(last))
        .await
        .unwrap();
    let mut replayed = Vec::new();
    while replayed.len() < 5 {
        let e = on_b.next().await.unwrap();
        if e.event == "ticket" {
            replayed.push(e.id.unwrap());
        }
    }
    assert_eq!(replayed, missed, "exactly what was missed");

    // Presence crosses processes: a's tab on the daemon, seen on the web process.
    let mut watcher = Stream::open(&format!("{b}/events?ticket=CS-000001"), auth_b, None)
        .await
        .unwrap();
    watcher.until("presence", |_| true).await;
    let presence = |extra: &'static str| {
        let (http, a, bearer) = (http.clone(), a.clone(), bearer_a.clone());
        async move {
            let r = http
                .post(format!("{a}/tickets/CS-000001/presence"))
                .header("authorization", bearer)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("client=tab0000000000001{extra}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    presence("&composing=1").await;
    let evs = watcher
        .until("presence", |e| {
            e.data["viewers"].as_array().is_some_and(|v| !v.is_empty())
        })
        .await;
    let viewers = &evs.last().unwrap().data["viewers"];
    assert_eq!(viewers[0]["agent"], "a@desk.example");
    assert_eq!(viewers[0]["name"], "Agent a");
    assert_eq!(viewers[0]["composing"], true);
    presence("&leave=1").await;
    watcher
        .until("presence", |e| {
            e.data["viewers"].as_array().is_some_and(|v| v.is_empty())
        })
        .await;

    // A ticket's page hears of its ticket only; its stream's id still
    // moves past the others.
    let mut elsewhere = Stream::open(&format!("{a}/events?ticket=CS-000009"), auth_b, None)
        .await
        .unwrap();
    elsewhere.until("presence", |_| true).await;
    let r = http
        .post(format!("{b}/api/tickets/CS-000001/notes"))
        .header("authorization", &bearer_a)
        .json(&json!({ "text": "not for CS-000009" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let note_id = store.last_event_id().await.unwrap();
    let moved = elsewhere.next().await.unwrap();
    assert_eq!((moved.event.as_str(), moved.id), ("(id)", Some(note_id)));
    drop(elsewhere);

    // The collision check of the API: with seen_message, 409 when another
    // agent answered since; without it, 202 as ever.
    let t: Value = http
        .get(format!("{a}/api/tickets/CS-000001"))
        .header("authorization", &bearer_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .max()
        .unwrap();
    let reply = |bearer: String, body: Value| {
        let (http, a) = (http.clone(), a.clone());
        async move {
            let r = http
                .post(format!("{a}/api/tickets/CS-000001/replies"))
                .header("authorization", bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, _) = reply(
        bearer_b.clone(),
        json!({"text": "Wij kijken het na.", "seen_message": seen}),
    )
    .await;
    assert_eq!(status, 202);
    let (status, body) = reply(
        bearer_a.clone(),
        json!({"text": "Ik kijk het na.", "seen_message": seen}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["arrived"][0]["text"], "Wij kijken het na.");
    assert_eq!(body["arrived"][0]["author"], "b@desk.example");
    let latest = body["latest"].as_i64().unwrap();
    let (status, _) = reply(
        bearer_a.clone(),
        json!({"text": "Ik kijk het na.", "seen_message": latest}),
    )
    .await;
    assert_eq!(status, 202, "nothing new since the latest");
    let (status, _) = reply(bearer_a.clone(), json!({"text": "Zonder veld."})).await;
    assert_eq!(status, 202, "without seen_message, as in the spec");
    let (status, _) = reply(
        bearer_a.clone(),
        json!({"text": "x", "seen_message": "yesterday"}),
    )
    .await;
    assert_eq!(status, 422);

    // One agent keeps a bounded number of live streams open at once.
    let mut held = Vec::new();
    let refused = loop {
        match Stream::open(&format!("{a}/events"), auth_b, None).await {
            Ok(s) => held.push(s),
            Err(status) => break status,
        }
        assert!(
            held.len() <= servicedesk::live::MAX_STREAMS_PER_AGENT,
            "never refused"
        );
    };
    assert_eq!(refused, 429);
    drop(held);

    // A session's stream ends when its agent is disabled.
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{b}/login"))
        .form(&[
            ("email", "gone@desk.example"),
            ("password", "a long enough password 123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303, "logged in");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string();
    // The reply form without JavaScript: asked first when b answered since
    // the page was shown, then sent.
    let nojs = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = nojs
        .get(format!("{b}/tickets/CS-000001"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let field = |page: &str, name: &str| -> String {
        let at = page
            .find(&format!("name=\"{name}\" value=\""))
            .unwrap_or_else(|| panic!("no {name} in {page}"));
        let rest = &page[at + name.len() + 15..];
        rest[..rest.find('"').unwrap()].to_string()
    };
    let (csrf, seen) = (field(&page, "csrf"), field(&page, "seen_message"));
    let (status, _) = reply(bearer_b.clone(), json!({"text": "Nog een antwoord van b."})).await;
    assert_eq!(status, 202);
    let send = |seen: String| {
        let (nojs, b, cookie, csrf) = (nojs.clone(), b.clone(), cookie.clone(), csrf.clone());
        async move {
            nojs.post(format!("{b}/tickets/CS-000001/reply"))
                .header("cookie", cookie)
                .header("origin", &b)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("seen_message", seen.as_str()),
                    ("text", "Antwoord zonder script."),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let asked = send(seen).await;
    assert_eq!(asked.status(), 409);
    let asked = asked.text().await.unwrap();
    assert!(
        asked.contains("Nog een antwoord van b.")
            && asked.contains("Antwoord zonder script.</textarea>"),
        "{asked}"
    );
    // Going back loses nothing: the text is the agent's draft now.
    let ticket_page = nojs
        .get(format!("{b}/tickets/CS-000001"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        ticket_page.contains("Antwoord zonder script.</textarea>"),
        "the draft is back in the composer: {ticket_page}"
    );
    let sent = send(field(&asked, "seen_message")).await;
    assert_eq!(sent.status(), 303, "sent the second time");
    assert!(sent
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.ends_with("done=reply")));

    let mut session = Stream::open(&format!("{b}/events"), Some(("cookie", &cookie)), None)
        .await
        .unwrap();
    session.until("counts", |_| true).await;
    cli(
        &config_a,
        dir,
        &["agents", "disable", "gone@desk.example"],
        None,
    );
    session.until("end", |_| true).await;
    assert!(session.next().await.is_none(), "the stream closed");
    assert_eq!(
        Stream::open(&format!("{b}/events"), Some(("cookie", &cookie)), None)
            .await
            .err(),
        Some(401)
    );
    drop((on_a, on_b, on_c, watcher));
    second.stop();
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_over_http_on_sqlite() {
    live_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_over_http_on_postgres() {
    live_over_http(Backend::Postgres).await;
}

/// Waits (bounded) for the next pushed events; presence pushes are skipped.
async fn next_events(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<servicedesk::live::Push>>,
) -> Vec<i64> {
    loop {
        let push = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("no push within 30 s")
            .expect("the hub");
        if let servicedesk::live::Push::Events(events, _) = &*push {
            return events.iter().map(|e| e.id).collect();
        }
    }
}

/// The live queries on both databases, and the hub in process: events in
/// id order; presence per ticket and agent, expiring; a session's
/// admission without counting as activity.
async fn hub_and_store(backend: Backend) {
    let dir = support::short_tempdir();
    let db = backend.db(dir.path()).await;
    let store = db.store().await;
    let hub = servicedesk::live::Hub::start(store.clone(), None);
    let start = hub.cursor().await.unwrap();
    assert_eq!(start, store.last_event_id().await.unwrap());
    let mut rx = hub.subscribe();
    let mut tx = store.begin("CS").await.unwrap();
    tx.record_event("CS-000001", "cli", "status", Some("new"), Some("open"))
        .await
        .unwrap();
    tx.record_event("CS-000001", "cli", "category", None, Some("question"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let ids = next_events(&mut rx).await;
    assert_eq!(ids, [start + 1, start + 2], "one push for one transaction");
    assert_eq!(hub.cursor_now(), start + 2);
    let evs = store.events_between(start, i64::MAX, 10).await.unwrap();
    assert_eq!(evs[1].field, "category");
    assert_eq!(evs[1].new.as_deref(), Some("question"));
    assert_eq!(
        store.horizon().await.unwrap().is_some(),
        backend == Backend::Postgres
    );

    // Presence: per ticket, each agent once, writing if any tab writes.
    store
        .touch_presence("CS-000001", "a@desk.example", "A", "tab1tab1", false)
        .await
        .unwrap();
    store
        .touch_presence("CS-000001", "a@desk.example", "A", "tab2tab2", true)
        .await
        .unwrap();
    store
        .touch_presence("CS-000002", "b@desk.example", "B", "tab3tab3", false)
        .await
        .unwrap();
    let all = store
        .presence_since("2000-01-01T00:00:00.000Z", None)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["CS-000001"].len(), 1);
    assert!(all["CS-000001"][0].composing);
    let one = store
        .presence_since("2000-01-01T00:00:00.000Z", Some("CS-000002"))
        .await
        .unwrap();
    assert_eq!(one.keys().collect::<Vec<_>>(), ["CS-000002"]);
    store
        .leave_presence("CS-000001", "a@desk.example", "tab2tab2")
        .await
        .unwrap();
    let all = store
        .presence_since("2000-01-01T00:00:00.000Z", None)
        .await
        .unwrap();
    assert!(!all["CS-000001"][0].composing, "the writing tab left");
    assert!(store
        .presence_since("2999-01-01T00:00:00.000Z", None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .expire_presence("2999-01-01T00:00:00.000Z")
            .await
            .unwrap(),
        2
    );

    // A session counts while it is fresh and its agent active.
    store
        .upsert_agent(
            "c@desk.example",
            "C",
            servicedesk::domain::AgentRole::Agent,
            "not-a-real-hash",
        )
        .await
        .unwrap();
    let agent = store.active_agent("c@desk.example").await.unwrap().unwrap();
    store
        .create_session(agent.id, "sessionhash", "csrf")
        .await
        .unwrap();
    assert!(store
        .still_admitted(Some("sessionhash"), None, "2000-01-01T00:00:00.000Z")
        .await
        .unwrap());
    assert!(
        !store
            .still_admitted(Some("sessionhash"), None, "2999-01-01T00:00:00.000Z")
            .await
            .unwrap(),
        "idle too long"
    );
    assert!(!store
        .still_admitted(Some("other"), None, "2000-01-01T00:00:00.000Z")
        .await
        .unwrap());
    assert!(!store.still_admitted(None, None, "2000").await.unwrap());
    store.disable_agent("c@desk.example").await.unwrap();
    assert!(
        !store
            .still_admitted(Some("sessionhash"), None, "2000-01-01T00:00:00.000Z")
            .await
            .unwrap(),
        "disabled"
    );
    hub.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_and_store_on_sqlite() {
    hub_and_store(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_and_store_on_postgres() {
    hub_and_store(Backend::Postgres).await;
}

/// On PostgreSQL a later transaction can commit a higher id while a lower
/// one is still in flight: the hub holds the higher one back until the
/// lower one commits, then sends both in order; an id rolled back is
/// skipped once the transactions then running have ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_committed_out_of_order_go_out_in_order_on_postgres() {
    let db = Db::postgres().await;
    let store = db.store().await;
    let hub = servicedesk::live::Hub::start(store.clone(), Some(db.url().to_string()));
    let start = hub.cursor().await.unwrap();
    let mut rx = hub.subscribe();
    let mut slow = store.begin("CS").await.unwrap();
    slow.record_event("CS-000001", "cli", "note", None, Some("first"))
        .await
        .unwrap();
    let mut fast = store.begin("CS").await.unwrap();
    fast.record_event("CS-000001", "cli", "note", None, Some("second"))
        .await
        .unwrap();
    fast.commit().await.unwrap();
    // Whatever the hub does meanwhile, it must not send the second alone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    slow.commit().await.unwrap();
    let mut got = next_events(&mut rx).await;
    while got.len() < 2 {
        got.extend(next_events(&mut rx).await);
    }
    assert_eq!(got, [start + 1, start + 2], "in order, both");
    // A rolled-back id is a hole nobody fills: the next one still goes.
    let mut gone = store.begin("CS").await.unwrap();
    gone.record_event("CS-000001", "cli", "note", None, Some("rolled back"))
        .await
        .unwrap();
    drop(gone);
    let mut next = store.begin("CS").await.unwrap();
    next.record_event("CS-000001", "cli", "note", None, Some("after"))
        .await
        .unwrap();
    next.commit().await.unwrap();
    assert_eq!(next_events(&mut rx).await, [start + 4]);
    hub.close();
}
