//! The workspace in a real headless browser: Debian's chromium driven by
//! chromedriver over WebDriver (a small client over reqwest below), against
//! `servicedesk run` with `[web] listen`, a real Dovecot and SMTP server.
//!
//! One browser for this file (one test): log in, see the sorted queues,
//! open a ticket, re-sort it, answer it (the answer reaches the SMTP
//! server), add a note, see the customer's reply arrive by IMAP; then a
//! hostile HTML mail runs nothing and loads nothing (a canary stays unset,
//! a listener standing in for the attacker's host hears no request).
//!
//! Screenshots go to `$SERVICEDESK_SCREENSHOTS` when set (else a temporary
//! folder), to look at the pages.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use browser::{free_port, Browser, ELEMENT, PASSWORD};
use serde_json::json;
use support::{describe, Db, MailServers};

/// A listener standing in for the attacker's host: counts connections.
fn evil_host() -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_works_a_ticket_in_the_browser_and_hostile_mail_runs_nothing() {
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(
        &[
            "agents",
            "add",
            "an.agent@desk.example",
            "--name",
            "An Agent",
            "--role",
            "agent",
        ],
        Some(format!("{PASSWORD}\n").as_bytes()),
    );
    let _daemon = browser::serve(&config, "run", Some(&servers.dir().join("run.log")));
    let (evil_port, evil_hits) = evil_host();
    let evil = format!("http://127.0.0.1:{evil_port}");
    servers
        .append(
            "INBOX",
            &support::simple_incident("incident-b@delinde.example"),
        )
        .await;
    servers
        .append(
            "INBOX",
            &support::hostile_mail("hostile-b@delinde.example", &evil),
        )
        .await;
    servers.wait_sent(2, Duration::from_secs(30)).await;

    let shots: PathBuf = std::env::var_os("SERVICEDESK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| servers.dir().join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let web = format!("http://127.0.0.1:{port}");
    let b = Browser::start().await;

    // Log in; the page asked for comes back after.
    b.goto(&format!("{web}/tickets/CS-000001")).await;
    assert!(b.url().await.contains("/login?next="), "{}", b.url().await);
    b.screenshot(&shots, "1-login").await;
    b.type_into("input[name=email]", "an.agent@desk.example")
        .await;
    b.type_into("input[name=password]", PASSWORD).await;
    b.click("form[action='/login'] button").await;
    assert_eq!(
        b.wait_url(&format!("{web}/tickets/CS-000001")).await,
        format!("{web}/tickets/CS-000001")
    );

    // The sorted queues: both tickets, with their category.
    b.goto(&format!("{web}/")).await;
    let queues = b.source().await;
    assert!(
        queues.contains("CS-000001") && queues.contains("CS-000002"),
        "{queues}"
    );
    assert!(queues.contains("cat-incident"), "{queues}");
    b.screenshot(&shots, "2-queues").await;

    // Open the ticket from the queue, re-sort it.
    b.click("a[href='/tickets/CS-000001']").await;
    b.wait_url(&format!("{web}/tickets/CS-000001")).await;
    let page = b.source().await;
    assert!(page.contains("ZP-2041"), "{page}");
    b.screenshot(&shots, "3-ticket").await;
    b.click("#category option[value=question]").await;
    b.click("#resort button").await;
    b.wait_url("done=saved").await;
    let t = db
        .store()
        .await
        .ticket("CS-000001")
        .await
        .expect("the ticket")
        .0;
    assert_eq!(t.category.as_str(), "question", "re-sorted in one click");

    // Answer it: the reply reaches the SMTP server as a person's mail.
    b.type_into(
        "#reply",
        "Dag Koen,\n\nDe fout is hersteld; kan u opnieuw proberen?\n\nGroeten, An",
    )
    .await;
    b.click("form.composer button").await;
    b.wait_url("done=reply").await;
    let sent = servers.wait_sent(3, Duration::from_secs(30)).await;
    let reply = sent
        .iter()
        .find(|s| s.notice.as_deref() == Some("agent"))
        .unwrap_or_else(|| panic!("no agent reply was sent: {sent:?}"));
    assert_eq!(reply.auto_submitted, None);
    assert!(reply.subject.contains("[CS-000001]"), "{}", reply.subject);
    assert!(reply.answers("incident-b@delinde.example"));
    assert!(reply.body.contains("De fout is hersteld"));

    // A note.
    b.type_into("#note", "Klant gebeld; hij test vanmiddag.")
        .await;
    b.click("form.composer.note button").await;
    b.wait_url("done=saved").await;
    let page = b.source().await;
    assert!(
        page.contains("Klant gebeld; hij test vanmiddag.") && page.contains("kind-note"),
        "{page}"
    );

    // The customer's answer arrives by IMAP and shows on the ticket.
    let answer = format!(
        "Message-ID: <answer-b@delinde.example>\nFrom: Koen De Witte <koen.dewitte@delinde.example>\n\
         To: support@example.test\nSubject: Re: {}\nIn-Reply-To: {}\n\nHet werkt weer, dank u!\n",
        reply.subject,
        reply.message_id.as_deref().map(|m| format!("<{m}>")).unwrap_or_default()
    );
    servers.append("INBOX", answer.as_bytes()).await;
    b.wait_for_text(
        &format!("{web}/tickets/CS-000001"),
        "Het werkt weer, dank u!",
    )
    .await;
    b.screenshot(&shots, "4-answered").await;

    // The hostile mail: open its HTML view; nothing runs, nothing loads.
    b.goto(&format!("{web}/tickets/CS-000002")).await;
    let title = b.run("return document.title").await;
    b.click("details.html summary").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let canary = b
        .run("return [typeof window.__pwned, document.title, document.querySelector('details.html iframe').contentDocument === null]")
        .await;
    assert_eq!(
        canary,
        json!(["undefined", title, true]),
        "the canary stays unset; the frame is sealed off"
    );
    b.screenshot(&shots, "5-hostile").await;
    let frame = b.find("details.html iframe").await;
    b.call("POST", "/frame", Some(json!({ "id": { ELEMENT: frame } })))
        .await;
    let inside = b.source().await.to_ascii_lowercase();
    assert!(
        inside.contains("zorgplan"),
        "the frame shows the mail: {inside}"
    );
    for bad in [
        "<script",
        "onload",
        "onerror",
        "javascript:",
        "<form",
        "<svg",
        &evil_port.to_string(),
    ] {
        assert!(!inside.contains(bad), "{bad} reached the frame: {inside}");
    }
    b.call("POST", "/frame/parent", Some(json!({}))).await;
    assert_eq!(
        b.run("return typeof window.__pwned").await,
        json!("undefined")
    );
    assert_eq!(
        evil_hits.load(Ordering::SeqCst),
        0,
        "no request left for the attacker's host"
    );
}
