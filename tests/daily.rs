//! Daily work in a real headless browser (Debian's chromium through
//! chromedriver, `tests/support/browser.rs`) against `servicedesk run`
//! with a real Dovecot and SMTP server. One browser, one test:
//!
//! - a draft typed into the reply box is saved as it is typed, survives a
//!   reload and a daemon restart, and a note typed just before leaving the
//!   page is saved on the way out;
//! - a reply sent from the page can be taken back: its text returns to the
//!   reply box;
//! - keyboard shortcuts: j/k move through the queue, Enter opens, ? shows
//!   the list (Esc closes it), nothing while typing in a field, r focuses
//!   the reply box, n the note, e resolves;
//! - a bulk status change on the queue, each ticket changed and audited.
//!
//! Screenshots go to `$SERVICEDESK_SCREENSHOTS` when set.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use browser::{free_port, Browser, PASSWORD};
use serde_json::{json, Value};
use servicedesk::store::{DraftKind, Store};
use support::{describe, Daemon, Db, MailServers};

const AGENT: &str = "an.agent@desk.example";
const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// Presses one key where the focus is.
async fn press(b: &Browser, key: &str) {
    b.call(
        "POST",
        "/actions",
        Some(
            json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
                { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }
            ]}]}),
        ),
    )
    .await;
}

/// Waits (bounded) until the agent's draft of this kind on the ticket is `text`.
async fn wait_draft(store: &Store, number: &str, kind: DraftKind, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let drafts = store.drafts(AGENT, number).await.expect("drafts");
        if drafts.iter().any(|d| d.kind == kind && d.text == text) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the {kind:?} draft never became {text:?}: {drafts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the form field `css` on the page.
async fn value_of(b: &Browser, css: &str) -> Value {
    b.run(&format!("return document.querySelector({css:?}).value"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_shortcuts_and_bulk_changes_in_the_browser() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let port = free_port();
    let config = servers.dir().join("servicedesk.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[web]\nlisten = \"127.0.0.1:{port}\"\nundo_send_secs = 30\n",
            support::config_text(&servers, &db, &support::Options::default())
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
    let mut daemon = Daemon::start(&config, servers.dir().join("run-1.log"));
    for id in ["day-1", "day-2", "day-3"] {
        servers
            .append(
                "INBOX",
                &support::simple_incident(&format!("{id}@delinde.example")),
            )
            .await;
    }
    servers.wait_sent(3, Duration::from_secs(30)).await;

    let shots: PathBuf = std::env::var_os("SERVICEDESK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| servers.dir().join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let web = format!("http://127.0.0.1:{port}");
    let b = Browser::start().await;
    b.log_in(&web, AGENT).await;

    // --- A draft survives a reload and a daemon restart.
    let ticket = format!("{web}/tickets/CS-000001");
    b.goto(&ticket).await;
    let draft = "Dag Koen,\n\nWe bekijken de foutmelding ZP-2041 vandaag nog.";
    b.type_into("#reply", draft).await;
    wait_draft(&store, "CS-000001", DraftKind::Reply, draft).await;
    b.goto(&ticket).await;
    assert_eq!(value_of(&b, "#reply").await, json!(draft), "after a reload");
    // A note typed just before leaving is saved on the way out (pagehide).
    b.type_into("#note", "Koen terugbellen").await;
    b.goto(&format!("{web}/")).await;
    wait_draft(&store, "CS-000001", DraftKind::Note, "Koen terugbellen").await;

    let log = daemon.log();
    daemon.child.kill().expect("kill the daemon");
    daemon.child.wait().unwrap();
    assert!(log.contains("workspace listening"), "{log}");
    daemon = Daemon::start(&config, servers.dir().join("run-2.log"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{web}/healthz")).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "no restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.goto(&ticket).await;
    assert_eq!(
        value_of(&b, "#reply").await,
        json!(draft),
        "after a restart"
    );
    assert_eq!(value_of(&b, "#note").await, json!("Koen terugbellen"));
    b.run("document.getElementById('reply').scrollIntoView({block: 'center'})")
        .await;
    b.screenshot(&shots, "daily-1-draft-restored").await;

    // --- Sent, then taken back: the text is in the reply box again.
    b.click("form.composer button.primary").await;
    b.wait_url("done=reply").await;
    assert!(
        store
            .drafts(AGENT, "CS-000001")
            .await
            .unwrap()
            .iter()
            .all(|d| d.kind != DraftKind::Reply),
        "sending cleared the reply draft"
    );
    assert_eq!(value_of(&b, "#reply").await, json!(""));
    b.screenshot(&shots, "daily-2-undo-window").await;
    b.click("form.held button").await;
    b.wait_url("#reply").await;
    assert_eq!(value_of(&b, "#reply").await, json!(draft), "taken back");

    // --- Shortcuts on the queue.
    b.goto(&format!("{web}/")).await;
    let current = "return Array.from(document.querySelectorAll('table.tickets tbody tr')).findIndex(r => r.classList.contains('kb-current'))";
    let numbers: Vec<String> = serde_json::from_value(
        b.run("return Array.from(document.querySelectorAll('table.tickets tbody tr td:nth-child(2) a')).map(a => a.textContent)")
            .await,
    )
    .unwrap();
    assert_eq!(numbers.len(), 3, "{numbers:?}");
    press(&b, "j").await;
    assert_eq!(b.run(current).await, json!(0));
    press(&b, "j").await;
    press(&b, "j").await;
    assert_eq!(b.run(current).await, json!(2));
    press(&b, "k").await;
    assert_eq!(b.run(current).await, json!(1));
    // ? lists the shortcuts in a dialog that holds the focus; Esc closes it.
    press(&b, "?").await;
    assert_eq!(
        b.run("const d = document.getElementById('shortcuts'); return [d.hidden, d.contains(document.activeElement)]").await,
        json!([false, true])
    );
    b.screenshot(&shots, "daily-3-shortcuts").await;
    press(&b, ESCAPE).await;
    assert_eq!(
        b.run("return document.getElementById('shortcuts').hidden")
            .await,
        json!(true)
    );
    // Typing in a field is typing, not a shortcut.
    b.click("input[name=q]").await;
    press(&b, "j").await;
    assert_eq!(b.run(current).await, json!(1));
    assert_eq!(value_of(&b, "input[name=q]").await, json!("j"));
    press(&b, ESCAPE).await;
    press(&b, ENTER).await;
    let opened = format!("{web}/tickets/{}", numbers[1]);
    b.wait_url(&opened).await;

    // --- On a ticket: r and n focus the boxes, e resolves.
    press(&b, "r").await;
    assert_eq!(
        b.run("return document.activeElement.id").await,
        json!("reply")
    );
    press(&b, ESCAPE).await;
    press(&b, "n").await;
    assert_eq!(
        b.run("return document.activeElement.id").await,
        json!("note")
    );
    press(&b, ESCAPE).await;
    press(&b, "e").await;
    b.wait_url("done=saved").await;
    let (t, _) = store.ticket(&numbers[1]).await.unwrap();
    assert_eq!(t.status.as_str(), "resolved", "e resolved {}", numbers[1]);

    // --- A bulk status change on the queue (everything view shows all).
    b.goto(&format!("{web}/?view=everything")).await;
    let others: Vec<&String> = numbers.iter().filter(|n| **n != numbers[1]).collect();
    let ticked = "return Array.from(document.querySelectorAll('input[name=ticket]:checked')).map(c => c.value)";
    // One box ticks them all, and again none.
    b.click("input.pick-all").await;
    assert_eq!(b.run(ticked).await.as_array().map(Vec::len), Some(3));
    b.click("input.pick-all").await;
    assert_eq!(b.run(ticked).await, json!([]));
    // Ticked from the keyboard: x on the first and the third row.
    press(&b, "j").await;
    press(&b, "x").await;
    press(&b, "j").await;
    press(&b, "j").await;
    press(&b, "x").await;
    let picked: Vec<String> = serde_json::from_value(b.run(ticked).await).unwrap();
    assert_eq!(picked, vec![others[0].clone(), others[1].clone()]);
    b.click("#bulk-change option[value='status:waiting']").await;
    b.screenshot(&shots, "daily-4-bulk").await;
    b.click("form#bulk button").await;
    b.wait_url("bulk=2").await;
    assert!(b.source().await.contains("class=\"notice\""));
    for n in &others {
        let (t, _) = store.ticket(n).await.unwrap();
        assert_eq!(t.status.as_str(), "waiting", "{n}");
        let events = store.ticket_events(n).await.unwrap();
        assert!(
            events.iter().any(|e| e.field == "status"
                && e.actor == format!("agent:{AGENT}")
                && e.new_value.as_deref() == Some("waiting")),
            "{n}: {events:?}"
        );
    }
    let (t, _) = store.ticket(&numbers[1]).await.unwrap();
    assert_eq!(
        t.status.as_str(),
        "resolved",
        "an unticked ticket is left alone"
    );

    // --- Merge from the ticket page, and undo it.
    let (from, into) = (others[0], others[1]);
    b.goto(&format!("{web}/tickets/{from}")).await;
    b.click(&format!("#merge-into option[value='{into}']"))
        .await;
    b.click("#merge button").await;
    b.wait_url(&format!("/tickets/{into}?done=merged")).await;
    let page = b.source().await;
    assert!(
        page.contains(&format!("href=\"/tickets/{from}\"")),
        "{page}"
    );
    b.goto(&format!("{web}/tickets/{from}")).await;
    assert!(b
        .source()
        .await
        .contains(&format!("/tickets/{from}/unmerge")));
    b.screenshot(&shots, "daily-5-merged").await;
    b.click(".merged form button").await;
    b.wait_url(&format!("/tickets/{from}?done=unmerged")).await;
    assert!(store.merge_state(from).await.unwrap().merged_into.is_none());
    assert_eq!(
        store.ticket(from).await.unwrap().0.message_ids,
        vec![format!("day-{}@delinde.example", &from[from.len() - 1..])]
    );
    daemon.stop();
}
