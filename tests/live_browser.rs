//! The live desk in a real headless browser (Debian's chromium through
//! chromedriver) against `servicedesk run` with a real Dovecot and SMTP
//! server. One browser: agent a; the second agent (b) and a lead work
//! through the HTTP API, as a second person at another desk would.
//!
//! - The queue page is open while a mail is APPENDed to the mailbox: the
//!   new ticket appears in its sorted place and the counts change, without
//!   a reload.
//! - On a ticket, a sees b there, b sees a there and sees a writing.
//! - b answers while a writes: a's page says so without touching a's
//!   text; a sends anyway and is asked first (the page shows b's answer),
//!   then sends. "Show" brings new messages into the thread in place, the
//!   text still there, and then sending asks nothing.
//! - Taking a ticket assigns it; another agent cannot take it over, a lead can.
//!
//! Screenshots go to `$SERVICEDESK_SCREENSHOTS` when set.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use browser::{free_port, Browser, PASSWORD};
use serde_json::{json, Value};
use support::{describe, Db, MailServers};

/// Waits (up to 30 s) until `script` returns true in the page.
async fn wait_js(b: &Browser, script: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if b.run(script).await == json!(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened; the page:\n{}",
            b.source().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A server-sent events stream read through reqwest, for agent b.
struct Stream {
    res: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(url: &str, bearer: &str) -> Stream {
        let res = reqwest::Client::new()
            .get(url)
            .header("authorization", bearer)
            .send()
            .await
            .expect("GET /events");
        assert_eq!(res.status(), 200);
        Stream {
            res,
            buf: String::new(),
        }
    }

    /// Reads until a `presence` event satisfies `until`; returns its data.
    async fn presence(&mut self, until: impl Fn(&Value) -> bool) -> Value {
        loop {
            while let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                if !block.lines().any(|l| l == "event: presence") {
                    continue;
                }
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                let v: Value = serde_json::from_str(&data).unwrap();
                if until(&v) {
                    return v;
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.res.chunk())
                .await
                .expect("no presence change within 30 s")
                .expect("the stream")
                .expect("the stream ended");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn english_question(message_id: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{message_id}>\nFrom: James Wright <james.wright@delinde.example>\n\
         To: support@example.test\nSubject: How do I export the medication list?\n\
         Content-Type: text/plain; charset=utf-8\n\n\
         Hello,\n\nHow can I export the medication list of one ward to a spreadsheet?\n\nThanks, James\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_on_a_live_desk() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    support::import_standard_registry(&db.store().await).await;
    let port = free_port();
    let config = servers.dir().join("servicedesk.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[web]\nlisten = \"127.0.0.1:{port}\"\n",
            support::config_text(&servers, &db, &support::Options::default())
        ),
    )
    .unwrap();
    let cli = |args: &[&str], stdin: Option<&[u8]>| {
        let out = support::run_servicedesk(&config, servers.dir(), args, stdin);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    for (email, name, role) in [
        ("a@desk.example", "Agent A", "agent"),
        ("b@desk.example", "Agent B", "agent"),
        ("lead@desk.example", "The Lead", "lead"),
    ] {
        cli(
            &["agents", "add", email, "--name", name, "--role", role],
            Some(format!("{PASSWORD}\n").as_bytes()),
        );
    }
    let bearer_b = format!(
        "Bearer {}",
        cli(&["agents", "token", "b@desk.example"], None)
    );
    let bearer_lead = format!(
        "Bearer {}",
        cli(&["agents", "token", "lead@desk.example"], None)
    );
    let _daemon = browser::serve(&config, "run", Some(&servers.dir().join("run.log")));
    servers
        .append(
            "INBOX",
            &support::simple_incident("live-first@delinde.example"),
        )
        .await;
    servers.wait_sent(1, Duration::from_secs(30)).await;

    let shots: PathBuf = std::env::var_os("SERVICEDESK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| servers.dir().join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let web = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let b = Browser::start().await;

    b.log_in(&web, "a@desk.example").await;

    // The queue page, live: a new mail appears in its place, counted, without a reload.
    wait_js(
        &b,
        "return document.getElementById('live').dataset.state === 'open'",
        "the live stream connecting",
    )
    .await;
    b.run("window.__same_page = 'yes'; return true").await;
    assert_eq!(
        b.run("return document.querySelectorAll('table.tickets tbody tr').length")
            .await,
        json!(1)
    );
    servers
        .append("INBOX", &english_question("live-second@delinde.example"))
        .await;
    wait_js(
        &b,
        "var r = document.querySelector('table.tickets tbody tr'); \
         return !!r && r.textContent.indexOf('CS-000002') >= 0",
        "the new ticket on top of the queue",
    )
    .await;
    let row = b
        .run(
            "var r = document.querySelector('table.tickets tbody tr'); \
             return [r.classList.contains('fresh'), r.textContent.indexOf('How do I export the medication list?') >= 0, \
                     document.querySelectorAll('table.tickets tbody tr').length, window.__same_page]",
        )
        .await;
    assert_eq!(row, json!([true, true, 2, "yes"]), "a new row, same page");
    wait_js(
        &b,
        "return document.querySelector(\"a[href='/?view=open'] .count\").textContent === '2'",
        "the open count going to 2",
    )
    .await;
    b.screenshot(&shots, "live-1-queue").await;

    // Two agents on one ticket see each other.
    let mut b_stream = Stream::open(&format!("{web}/events?ticket=CS-000001"), &bearer_b).await;
    b.goto(&format!("{web}/tickets/CS-000001")).await;
    wait_js(
        &b,
        "return document.getElementById('live').dataset.state === 'open'",
        "the ticket's live stream",
    )
    .await;
    let seen_by_b = b_stream
        .presence(|v| v["viewers"].as_array().is_some_and(|v| !v.is_empty()))
        .await;
    assert_eq!(seen_by_b["viewers"][0]["agent"], "a@desk.example");
    assert_eq!(seen_by_b["viewers"][0]["composing"], false);
    let beat = |extra: &'static str| {
        let (http, web, bearer) = (http.clone(), web.clone(), bearer_b.clone());
        async move {
            let r = http
                .post(format!("{web}/tickets/CS-000001/presence"))
                .header("authorization", bearer)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("client=agentbtab0000001{extra}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    beat("&composing=1").await;
    wait_js(
        &b,
        "var p = document.getElementById('presence'); \
         return !p.hidden && p.textContent.indexOf('Agent B (writing a reply)') >= 0",
        "a seeing b writing",
    )
    .await;
    // a starts writing: b sees it.
    b.type_into("#reply", "Dag Koen, ik bekijk het zorgplan")
        .await;
    let writing = b_stream
        .presence(|v| v["viewers"][0]["composing"] == true)
        .await;
    assert_eq!(writing["viewers"][0]["name"], "Agent A");
    b.screenshot(&shots, "live-2-presence").await;

    // b answers meanwhile: a's page says so, and a's text stays.
    let r = http
        .post(format!("{web}/api/tickets/CS-000001/replies"))
        .header("authorization", &bearer_b)
        .json(&json!({"text": "Dag Koen, we hebben de fout ZP-2041 gevonden."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    beat("&leave=1").await;
    wait_js(
        &b,
        "var n = document.getElementById('live-notice'); \
         return !n.hidden && n.textContent.indexOf('Reply sent by b@desk.example') >= 0",
        "the notice of b's reply",
    )
    .await;
    assert_eq!(
        b.run("return document.getElementById('reply').value").await,
        json!("Dag Koen, ik bekijk het zorgplan")
    );
    b.screenshot(&shots, "live-3-notice").await;

    // a sends anyway: asked first, with b's answer shown.
    b.click("form[action$='/reply'] button").await;
    wait_js(
        &b,
        "return !!document.getElementById('send-anyway')",
        "the collision question",
    )
    .await;
    let page = b.source().await;
    assert!(
        page.contains("Something new arrived while you were writing")
            && page.contains("we hebben de fout ZP-2041 gevonden")
            && page.contains("Dag Koen, ik bekijk het zorgplan"),
        "{page}"
    );
    b.screenshot(&shots, "live-4-collision").await;
    b.click("#send-anyway").await;
    b.wait_url("done=reply").await;
    let t: Value = http
        .get(format!("{web}/api/tickets/CS-000001"))
        .header("authorization", &bearer_lead)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let replies: Vec<&str> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "reply")
        .map(|m| m["author"].as_str().unwrap())
        .collect();
    assert_eq!(replies, ["b@desk.example", "a@desk.example"]);

    // "Show" brings b's note into the thread in place; the text stays;
    // then sending asks nothing.
    wait_js(
        &b,
        "return document.getElementById('live').dataset.state === 'open'",
        "the stream again",
    )
    .await;
    b.type_into("#reply", "Tweede antwoord").await;
    let r = http
        .post(format!("{web}/api/tickets/CS-000001/notes"))
        .header("authorization", &bearer_b)
        .json(&json!({"text": "Klant belt morgen terug."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    wait_js(
        &b,
        "return !!document.getElementById('live-show')",
        "the notice of b's note",
    )
    .await;
    b.click("#live-show").await;
    wait_js(
        &b,
        "return document.querySelector('ol.thread').textContent.indexOf('Klant belt morgen terug.') >= 0",
        "the note in the thread",
    )
    .await;
    assert_eq!(
        b.run("return document.getElementById('reply').value").await,
        json!("Tweede antwoord")
    );
    // The page already says done=reply (the first answer): wait for the new one.
    b.submit("form[action$='/reply'] button", "done=reply")
        .await;

    // Taking a ticket assigns it; b may not take it over, the lead may.
    b.click("form[action$='/update'] input[name=assignee][value='a@desk.example'] + button")
        .await;
    b.wait_url("done=saved").await;
    let patch = |bearer: String, to: &'static str| {
        let (http, web) = (http.clone(), web.clone());
        async move {
            http.patch(format!("{web}/api/tickets/CS-000001"))
                .header("authorization", bearer)
                .json(&json!({ "assignee": to }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(patch(bearer_b.clone(), "b@desk.example").await, 403);
    wait_js(
        &b,
        "return document.getElementById('live').dataset.state === 'open'",
        "the stream again",
    )
    .await;
    assert_eq!(patch(bearer_lead.clone(), "b@desk.example").await, 200);
    wait_js(
        &b,
        "var n = document.getElementById('live-notice'); \
         return !n.hidden && n.textContent.indexOf('b@desk.example') >= 0 && n.textContent.indexOf('Assigned to') >= 0",
        "the notice of the lead's assignment",
    )
    .await;
    b.screenshot(&shots, "live-5-reassigned").await;
}
