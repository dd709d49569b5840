//! The queue page's search box in a real headless browser (Debian's
//! chromium over WebDriver) against `servicedesk web` on SQLite: an agent
//! searches, sees where each ticket was found (a note, the mail, the
//! subject) with the words marked, and a mail's markup stays text.
//!
//! Screenshots go to `$SERVICEDESK_SCREENSHOTS` when set (else a temporary
//! folder).

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::PathBuf;

use browser::{free_port, Browser, PASSWORD};
use support::{describe, Db};

fn mail(id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}>\r\nDate: Tue, 04 Feb 2025 08:21:09 +0100\r\n\
         From: Koen De Witte <koen.dewitte@delinde.example>\r\nTo: support@example.test\r\n\
         Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_searches_the_queue_and_sees_where_each_ticket_was_found() {
    let dir = support::short_tempdir();
    let db = Db::sqlite(dir.path());
    support::import_standard_registry(&db.store().await).await;
    let port = free_port();
    let config = dir.path().join("servicedesk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n",
            db.url()
        ),
    )
    .unwrap();
    let cli = |args: &[&str], stdin: Option<&[u8]>| {
        let out = support::run_servicedesk(&config, dir.path(), args, stdin);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for (i, (subject, body)) in [
        ("Facturen van maart kloppen niet", "De facturen van maart tellen elke bewoner twee keer."),
        ("Printer op afdeling B", "De etikettenprinter drukt geen polsbandjes meer af sinds de update van de factuurmodule."),
        ("Vraag over de planning", "Kunnen jullie de planning <img src=x onerror=alert(1)> van de factuurcontrole <b>toelichten</b>?"),
    ]
    .iter()
    .enumerate()
    {
        cli(&["ingest"], Some(&mail(&format!("s{i}@delinde.example"), subject, body)));
    }
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
    let token = cli(&["agents", "token", "an.agent@desk.example"], None);
    let _web = browser::serve(&config, "web", None);
    let web = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !http
        .get(format!("{web}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(std::time::Instant::now() < deadline, "no /healthz");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // An internal note on the first ticket, by the API.
    let r = http
        .post(format!("{web}/api/tickets/CS-000001/notes"))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({"text": "Klant belt terug over de dubbele facturatie; creditnota voorbereid."}))
        .send()
        .await
        .expect("POST note");
    assert!(r.status().is_success(), "{}", r.status());

    let shots: PathBuf = std::env::var_os("SERVICEDESK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let b = Browser::start().await;
    b.log_in(&web, "an.agent@desk.example").await;

    // A word of the note only.
    b.type_into("input[name=q]", "creditnota").await;
    b.click("form.filters button").await;
    b.wait_url("q=creditnota").await;
    let page = b.source().await;
    assert!(page.contains("CS-000001"), "{page}");
    assert!(
        !page.contains("CS-000002") && !page.contains("CS-000003"),
        "{page}"
    );
    assert!(page.contains("In an internal note"), "{page}");
    assert!(page.contains("<mark>creditnota</mark>"), "{page}");

    // A Dutch word in another form, in the subject of one and the text of
    // others; the subject hit first, then the newest.
    b.goto(&format!("{web}/?view=open&q=factuur")).await;
    let page = b.source().await;
    let at = |n: &str| {
        page.find(n)
            .unwrap_or_else(|| panic!("{n} missing: {page}"))
    };
    assert!(
        at("CS-000001") < at("CS-000003") && at("CS-000003") < at("CS-000002"),
        "{page}"
    );
    assert!(page.contains("In the mail"), "{page}");
    assert!(
        page.contains("<mark>factuurmodule</mark>")
            || page.contains("<mark>factuurcontrole</mark>"),
        "{page}"
    );
    // The mail's markup is text in the snippet, never an element.
    assert!(page.contains("onerror=alert(1)&gt;"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert_eq!(
        b.run("return document.querySelectorAll('.found img, .found b, img').length")
            .await,
        0
    );
    b.screenshot(&shots, "search-1-queue").await;

    // Only punctuation: nothing found, no error.
    b.goto(&format!("{web}/?view=open&q=%22%2A%3A%27%26%7C%21"))
        .await;
    let page = b.source().await;
    assert!(!page.contains("CS-00000"), "{page}");
    b.screenshot(&shots, "search-2-nothing").await;
}
