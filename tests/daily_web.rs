//! Daily work through the real daemon (`servicedesk run` with `[web]
//! listen`), a real Dovecot and SMTP server.
//!
//! Undo send: a reply sent from the ticket page waits out `[web]
//! undo_send_secs`; one taken back in that window never reaches the SMTP
//! server and its text is back in the composer; one not taken back
//! reaches it exactly once; a daemon killed inside the window sends it
//! once after its restart. The JSON API's replies are queued at once, as
//! before.
//!
//! Who may: the drafts, merge and bulk routes answer 401 without a
//! session or token, 403 to another site or a session without its CSRF
//! token (nothing changes), take bearer tokens, keep assigning to others
//! a lead's, and refuse a merge across customers with the reason.

mod support;

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use support::{describe, Daemon, Db, MailServers};

const PASSWORD: &str = "Corr3ct-Horse-Battery";
const AGENT: &str = "an.agent@desk.example";
const LEAD: &str = "lea.lead@desk.example";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A logged-in agent's HTTP client.
struct Agent {
    http: Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Agent {
    async fn login(base: &str) -> Agent {
        Agent::login_as(base, AGENT).await
    }

    async fn login_as(base: &str, email: &str) -> Agent {
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            assert!(tokio::time::Instant::now() < deadline, "no /healthz");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = http
            .post(format!("{base}/login"))
            .header(ORIGIN, base)
            .form(&[("email", email), ("password", PASSWORD), ("next", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let cookie = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("sd_session="))
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_string();
        let me: Value = http
            .get(format!("{base}/api/me"))
            .header(COOKIE, format!("sd_session={cookie}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Agent {
            http,
            base: base.to_string(),
            cookie,
            csrf: me["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    /// A form posted from our page: (status, Location).
    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, format!("sd_session={}", self.cookie))
            .header(ORIGIN, &self.base)
            .form(&all)
            .send()
            .await
            .unwrap();
        let location = r
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (r.status(), location)
    }

    async fn page(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, format!("sd_session={}", self.cookie))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The Message-IDs of the agent's replies on a ticket, in order.
    async fn replies(&self, number: &str) -> Vec<(String, String)> {
        let t: Value = self
            .http
            .get(format!("{}/api/tickets/{number}", self.base))
            .header(COOKIE, format!("sd_session={}", self.cookie))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        t["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["kind"] == "reply")
            .map(|m| {
                (
                    m["message_id"].as_str().unwrap().to_string(),
                    m["text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// A desk with the workspace on `port` and this undo window.
fn desk(servers: &MailServers, db: &Db, port: u16, undo_secs: u64) -> std::path::PathBuf {
    let config = servers.dir().join("servicedesk.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[web]\nlisten = \"127.0.0.1:{port}\"\nundo_send_secs = {undo_secs}\n",
            support::config_text(servers, db, &support::Options::default())
        ),
    )
    .unwrap();
    let out = support::run_servicedesk(
        &config,
        servers.dir(),
        &[
            "agents", "add", AGENT, "--name", "An Agent", "--role", "agent",
        ],
        Some(format!("{PASSWORD}\n").as_bytes()),
    );
    assert!(out.status.success(), "{}", describe(&out));
    config
}

fn copies(sent: &[support::Sent], message_id: &str) -> usize {
    sent.iter()
        .filter(|s| s.message_id.as_deref() == Some(message_id))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_taken_back_is_never_sent_and_one_kept_is_sent_once() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let port = free_port();
    let config = desk(&servers, &db, port, 10);
    let daemon = Daemon::start(&config, servers.dir().join("run.log"));
    servers
        .append("INBOX", &support::simple_incident("undo-1@delinde.example"))
        .await;
    servers.wait_sent(1, Duration::from_secs(30)).await;
    let agent = Agent::login(&format!("http://127.0.0.1:{port}")).await;

    // Sent from the page, then taken back at once.
    let first = "Dag Koen,\n\nDit antwoord gaat nooit de deur uit.";
    let (status, location) = agent
        .form("/tickets/CS-000001/reply", &[("text", first)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.ends_with("done=reply"), "{location}");
    let page = agent.page("/tickets/CS-000001").await;
    assert!(page.contains("/tickets/CS-000001/undo-send"), "{page}");
    let (held, text) = agent.replies("CS-000001").await.pop().expect("the reply");
    assert_eq!(text, first);
    let (status, location) = agent
        .form("/tickets/CS-000001/undo-send", &[("message_id", &held)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "undo");
    assert!(location.contains("done=undone"), "{location}");
    // Its text is back in the reply box, as a draft (HTML-escaped).
    let page = agent.page("/tickets/CS-000001").await;
    assert!(
        page.contains("Dit antwoord gaat nooit de deur uit.</textarea>"),
        "{page}"
    );
    assert!(agent.replies("CS-000001").await.is_empty());
    // A second undo finds nothing.
    let (status, _) = agent
        .form("/tickets/CS-000001/undo-send", &[("message_id", &held)])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The second is kept: sent once, after the first one's window.
    let second = "Dag Koen,\n\nDe fout is hersteld.";
    agent
        .form("/tickets/CS-000001/reply", &[("text", second)])
        .await;
    let (kept, _) = agent.replies("CS-000001").await.pop().expect("the reply");
    // Sending cleared the draft.
    let page = agent.page("/tickets/CS-000001").await;
    assert!(!page.contains("Dit antwoord gaat nooit"), "{page}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while copies(&servers.sent(), &kept) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the kept reply was not sent\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Too late now.
    let (status, _) = agent
        .form("/tickets/CS-000001/undo-send", &[("message_id", &kept)])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A reply through the JSON API is queued at once (202), not held.
    let r = agent
        .http
        .post(format!("{}/api/tickets/CS-000001/replies", agent.base))
        .header(COOKIE, format!("sd_session={}", agent.cookie))
        .header(ORIGIN, &agent.base)
        .header("X-CSRF-Token", &agent.csrf)
        .json(&serde_json::json!({ "text": "Via de API." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let api_id = r.json::<Value>().await.unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = store
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.message_id == api_id)
        .expect("queued");
    assert!(
        entry.next_attempt_at <= entry.created_at,
        "due at once: {entry:?}"
    );

    daemon.stop();
    let sent = servers.sent();
    assert_eq!(copies(&sent, &kept), 1, "sent exactly once");
    assert_eq!(copies(&sent, &api_id), 1);
    assert_eq!(copies(&sent, &held), 0, "the reply taken back never left");
    assert!(
        !sent.iter().any(|s| s.body.contains("nooit de deur uit")),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_inside_the_window_sends_the_reply_once_after_restart() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let port = free_port();
    let config = desk(&servers, &db, port, 10);
    let mut daemon = Daemon::start(&config, servers.dir().join("run-1.log"));
    servers
        .append("INBOX", &support::simple_incident("undo-2@delinde.example"))
        .await;
    servers.wait_sent(1, Duration::from_secs(30)).await;
    let agent = Agent::login(&format!("http://127.0.0.1:{port}")).await;
    let (status, _) = agent
        .form(
            "/tickets/CS-000001/reply",
            &[("text", "Dag Koen,\n\nDit overleeft een crash.")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (held, _) = agent.replies("CS-000001").await.pop().expect("the reply");
    // kill -9 inside the window: the reply is queued, not sent.
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    let entry = store
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.message_id == held)
        .expect("durably queued");
    assert_eq!(entry.status, "pending");
    assert_eq!(copies(&servers.sent(), &held), 0);

    let daemon = Daemon::start(&config, servers.dir().join("run-2.log"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while copies(&servers.sent(), &held) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not sent after the restart\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    daemon.stop();
    assert_eq!(copies(&servers.sent(), &held), 1, "exactly once");
    let entry = store
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.message_id == held)
        .unwrap();
    assert_eq!(entry.status, "sent");
}

/// A JSON request: bearer `token`, or this agent's session with its CSRF
/// token (`csrf`) and an `origin`.
async fn call(
    agent: &Agent,
    method: &str,
    path: &str,
    token: Option<&str>,
    csrf: bool,
    origin: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = agent
        .http
        .request(method.parse().unwrap(), format!("{}{path}", agent.base));
    match token {
        Some(t) => req = req.bearer_auth(t),
        None => {
            req = req
                .header(COOKIE, format!("sd_session={}", agent.cookie))
                .header(ORIGIN, origin);
            if csrf {
                req = req.header("X-CSRF-Token", &agent.csrf);
            }
        }
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_merges_and_bulk_changes_check_who_asks() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let port = free_port();
    let config = desk(&servers, &db, port, 10);
    let out = support::run_servicedesk(
        &config,
        servers.dir(),
        &[
            "agents", "add", LEAD, "--name", "Lea Lead", "--role", "lead",
        ],
        Some(format!("{PASSWORD}\n").as_bytes()),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let out = support::run_servicedesk(
        &config,
        servers.dir(),
        &["agents", "token", AGENT, "--name", "script"],
        None,
    );
    assert!(out.status.success(), "{}", describe(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let daemon = Daemon::start(&config, servers.dir().join("run.log"));
    servers
        .append("INBOX", &support::simple_incident("who-1@delinde.example"))
        .await;
    servers
        .append("INBOX", &support::simple_incident("who-2@delinde.example"))
        .await;
    servers
        .append(
            "INBOX",
            b"Message-ID: <who-3@lestilleuls.example>\r\nFrom: Sophie Lambert <sophie.lambert@lestilleuls.example>\r\n\
To: support@example.test\r\nSubject: Erreur de facturation\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Bonjour, la facturation affiche une erreur depuis ce matin.\r\n",
        )
        .await;
    servers.wait_sent(3, Duration::from_secs(30)).await;
    let base = format!("http://127.0.0.1:{port}");
    let agent = Agent::login(&base).await;
    let lead = Agent::login_as(&base, LEAD).await;
    let ours = base.as_str();
    let evil = "http://evil.example";

    // Drafts: a token works; a session needs its CSRF token and our origin.
    let path = "/api/tickets/CS-000001/drafts/reply";
    let body = || Some(serde_json::json!({ "text": "Dag Koen," }));
    let (status, v) = call(&agent, "PUT", path, Some(&token), false, ours, body()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["saved"], true);
    let (status, _) = call(&agent, "PUT", path, None, false, ours, body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let (status, _) = call(&agent, "PUT", path, None, true, evil, body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another site");
    let anonymous = agent
        .http
        .put(format!("{base}{path}"))
        .json(&serde_json::json!({ "text": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &agent,
        "PUT",
        "/api/tickets/CS-000001/drafts/mail",
        Some(&token),
        false,
        ours,
        body(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &agent,
        "PUT",
        path,
        Some(&token),
        false,
        ours,
        Some(serde_json::json!({ "text": 3 })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, v) = call(
        &agent,
        "GET",
        "/api/tickets/CS-000001/drafts",
        None,
        false,
        ours,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v[0]["text"], "Dag Koen,", "{v}");
    // Another agent sees their own drafts only.
    let (_, v) = call(
        &lead,
        "GET",
        "/api/tickets/CS-000001/drafts",
        None,
        false,
        ours,
        None,
    )
    .await;
    assert_eq!(v, serde_json::json!([]));

    // Merge: refused across customers, into itself, from another site.
    let merge = |into: &str| Some(serde_json::json!({ "into": into }));
    let m = "/api/tickets/CS-000001/merge";
    let (status, v) = call(
        &agent,
        "POST",
        m,
        Some(&token),
        false,
        ours,
        merge("CS-000003"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"].as_str().unwrap().contains("different customers"),
        "{v}"
    );
    let (status, _) = call(
        &agent,
        "POST",
        m,
        Some(&token),
        false,
        ours,
        merge("cs-000001"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = call(
        &agent,
        "POST",
        m,
        Some(&token),
        false,
        ours,
        merge("CS-999999"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&agent, "POST", m, None, true, evil, merge("CS-000002")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(store
        .merge_state("CS-000001")
        .await
        .unwrap()
        .merged_into
        .is_none());
    // Done by the agent's session: the draft moves, the page says where.
    let (status, v) = call(&agent, "POST", m, None, true, ours, merge("CS-000002")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["into"], "CS-000002");
    let (_, t) = call(
        &agent,
        "GET",
        "/api/tickets/CS-000001",
        Some(&token),
        false,
        ours,
        None,
    )
    .await;
    assert_eq!(t["merged_into"], "CS-000002", "{t}");
    assert_eq!(t["status"], "closed");
    assert_eq!(t["messages"], serde_json::json!([]));
    let page = agent.page("/tickets/CS-000001").await;
    assert!(
        page.contains("href=\"/tickets/CS-000002\"") && page.contains("/tickets/CS-000001/unmerge"),
        "{page}"
    );
    assert!(agent
        .page("/tickets/CS-000002")
        .await
        .contains("Dag Koen,</textarea>"));
    // Work on the merged ticket is refused with where to go.
    let (status, v) = call(
        &agent,
        "POST",
        "/api/tickets/CS-000001/replies",
        Some(&token),
        false,
        ours,
        Some(serde_json::json!({ "text": "Hallo" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().contains("CS-000002"), "{v}");
    let (status, _) = call(
        &agent,
        "PATCH",
        "/api/tickets/CS-000001",
        Some(&token),
        false,
        ours,
        Some(serde_json::json!({ "status": "open" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Undone from the page's form.
    let (status, location) = agent.form("/tickets/CS-000001/unmerge", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.ends_with("/tickets/CS-000001?done=unmerged"),
        "{location}"
    );
    assert!(store
        .merge_state("CS-000001")
        .await
        .unwrap()
        .merged_into
        .is_none());
    let (status, _) = call(
        &agent,
        "POST",
        "/api/tickets/CS-000001/merge/undo",
        Some(&token),
        false,
        ours,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "nothing to undo");

    // Bulk: assigning to someone else is a lead's; taking them is anyone's.
    let tick = [
        ("ticket", "CS-000001"),
        ("ticket", "CS-000002"),
        ("back", "/?view=open"),
    ];
    let mut fields = tick.to_vec();
    let to_lead = format!("assign:{LEAD}");
    fields.push(("change", &to_lead));
    let (status, _) = agent.form("/bulk", &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (t, _) = store.ticket("CS-000001").await.unwrap();
    assert_eq!(t.assignee, None, "nothing changed");
    let mut fields = tick.to_vec();
    let to_me = format!("assign:{AGENT}");
    fields.push(("change", &to_me));
    let (status, location) = agent.form("/bulk", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/?view=open&bulk=2");
    for n in ["CS-000001", "CS-000002"] {
        assert_eq!(
            store.ticket(n).await.unwrap().0.assignee.as_deref(),
            Some(AGENT)
        );
    }
    // The lead gives them to herself; the agent cannot take them back from
    // her: refused per ticket, on a page that names each and why.
    let mut fields = tick.to_vec();
    let to_lead_by_lead = format!("assign:{LEAD}");
    fields.push(("change", &to_lead_by_lead));
    let (status, location) = lead.form("/bulk", &fields).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/?view=open&bulk=2")
    );
    let mut fields = tick.to_vec();
    fields.push(("change", "assign:"));
    let r = agent
        .http
        .post(format!("{base}/bulk"))
        .header(COOKIE, format!("sd_session={}", agent.cookie))
        .header(ORIGIN, &base)
        .form(
            &[("csrf", agent.csrf.as_str())]
                .into_iter()
                .chain(fields)
                .collect::<Vec<_>>(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a page naming what was refused");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("href=\"/tickets/CS-000002\"") && page.contains("may not do this"),
        "{page}"
    );
    assert_eq!(
        store
            .ticket("CS-000001")
            .await
            .unwrap()
            .0
            .assignee
            .as_deref(),
        Some(LEAD)
    );
    // Without the CSRF token: refused, nothing changes.
    let r = agent
        .http
        .post(format!("{base}/bulk"))
        .header(COOKIE, format!("sd_session={}", agent.cookie))
        .header(ORIGIN, &base)
        .form(&[("ticket", "CS-000001"), ("change", "status:closed")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_ne!(
        store.ticket("CS-000001").await.unwrap().0.status.as_str(),
        "closed"
    );
    daemon.stop();
}
