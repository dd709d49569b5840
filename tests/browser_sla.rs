//! The SLA clock in a real headless browser (Debian's chromium through
//! chromedriver) against `servicedesk run` with `[web] listen`, a real
//! Dovecot and SMTP server: a gold customer's ticket made critical shows
//! its due times with a countdown written by `sla.js`, an overdue one says
//! so, and the "due soon / overdue" view lists both, the overdue first,
//! with its count.
//!
//! Screenshots go to `$SERVICEDESK_SCREENSHOTS` when set (else a temporary
//! folder).

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use browser::{free_port, Browser, PASSWORD};
use support::{describe, Db, MailServers, PERSONS_CSV};

const GOLD: &str = "[sla]\ndue_soon = \"2h\"\n\
[[sla.tiers]]\nname = \"gold\"\nfirst_response = \"4h\"\nresolution = \"16h\"\n\
[[sla.tiers.targets]]\npriority = \"critical\"\nfirst_response = \"1h\"\nresolution = \"8h\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_times_count_down_and_the_due_soon_view_lists_them() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let port = free_port();
    let config = servers.dir().join("servicedesk.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[web]\nlisten = \"127.0.0.1:{port}\"\n{GOLD}",
            support::config_text(&servers, &db, &support::Options::default())
        ),
    )
    .unwrap();
    let cli = |args: &[&str], stdin: Option<&[u8]>| {
        let out = support::run_servicedesk(&config, servers.dir(), args, stdin);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    std::fs::write(
        servers.dir().join("customers.csv"),
        "customer,contract_status,campuses,sla\nWZC De Linde,active,Gent;Aalst,gold\nRésidence Les Tilleuls,suspended,,\n",
    )
    .unwrap();
    std::fs::write(servers.dir().join("persons.csv"), PERSONS_CSV).unwrap();
    cli(&["customers", "import", "customers.csv"], None);
    cli(&["persons", "import", "persons.csv"], None);
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
    for id in ["sla-a@delinde.example", "sla-b@delinde.example"] {
        servers.append("INBOX", &support::simple_incident(id)).await;
    }
    servers.wait_sent(2, Duration::from_secs(30)).await;
    // CS-000001 critical: its first answer is due within an hour of
    // business time, always inside the two hours of "due soon".
    cli(
        &["tickets", "set", "CS-000001", "--priority", "critical"],
        None,
    );
    // CS-000002 arrived a week ago: overdue.
    let store = db.store().await;
    sqlx::query("UPDATE tickets SET created_at = $1 WHERE number = 'CS-000002'")
        .bind(servicedesk::store::stamp(
            chrono::Utc::now() - chrono::Duration::days(7),
        ))
        .execute(store.pool())
        .await
        .unwrap();
    cli(&["tickets", "set", "CS-000002", "--status", "open"], None);

    let shots: PathBuf = std::env::var_os("SERVICEDESK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| servers.dir().join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let web = format!("http://127.0.0.1:{port}");
    let b = Browser::start().await;
    b.log_in(&web, "an.agent@desk.example").await;
    // English throughout, whatever the browser's language.
    b.goto(&format!("{web}/")).await;
    b.click("#lang option[value=en]").await;
    b.wait_url(&format!("{web}/")).await;

    // The due-soon view: both, the overdue one first, and its count.
    b.goto(&format!("{web}/?view=due_soon")).await;
    let page = b.source().await;
    let first = page.find("/tickets/CS-000002").expect("the overdue ticket");
    let second = page
        .find("/tickets/CS-000001")
        .expect("the critical ticket");
    assert!(first < second, "overdue first: {page}");
    assert!(
        page.contains("Due soon / overdue <span class=\"count\">2</span>")
            && page.contains("Overdue <span class=\"count\">1</span>"),
        "{page}"
    );
    let countdowns = b
        .run("return Array.from(document.querySelectorAll('td [data-due] .countdown')).map(e => [e.textContent, e.parentElement.classList.contains('overdue')])")
        .await;
    let rows = countdowns.as_array().expect("countdowns");
    assert_eq!(rows.len(), 2, "{countdowns}");
    assert!(
        rows[0][0].as_str().unwrap().ends_with(" overdue)") && rows[0][1] == true,
        "{countdowns}"
    );
    assert!(
        rows[1][0].as_str().unwrap().starts_with("(in ") && rows[1][1] == false,
        "{countdowns}"
    );
    b.screenshot(&shots, "sla-1-due-soon").await;

    // The API's ticket objects carry the clock; the overdue view holds one.
    let token = cli(&["agents", "token", "an.agent@desk.example"], None);
    let api: serde_json::Value = reqwest::Client::new()
        .get(format!("{web}/api/tickets?view=overdue"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let late = api.as_array().expect("a JSON array");
    assert_eq!(late.len(), 1, "{api}");
    assert_eq!(late[0]["number"], "CS-000002");
    assert_eq!(late[0]["sla_tier"], "gold");
    assert_eq!(late[0]["sla_next_due"], late[0]["first_response_due"]);
    assert!(late[0]["resolution_due"].is_string() && late[0]["first_response_at"].is_null());

    // The ticket page: tier, targets, due times in Brussels' time, and
    // the countdown beside the first answer's.
    b.goto(&format!("{web}/tickets/CS-000001")).await;
    let page = b.source().await;
    assert!(
        page.contains("Tier: <strong>gold</strong>") && page.contains("≤ 1h (business hours)"),
        "{page}"
    );
    let t = store.ticket("CS-000001").await.unwrap().0;
    let due = t.sla.first_response_due.clone().expect("due");
    assert!(
        page.contains(&servicedesk::web::time::brussels(&due)),
        "{page}"
    );
    let countdown = b
        .run("return document.querySelector('#first-response-due .countdown').textContent")
        .await;
    assert!(
        countdown.as_str().unwrap_or_default().starts_with("(in "),
        "{countdown}"
    );
    b.screenshot(&shots, "sla-2-ticket").await;

    // Waiting for the customer: the clock stands still, no countdown.
    cli(
        &["tickets", "set", "CS-000001", "--status", "waiting"],
        None,
    );
    b.goto(&format!("{web}/tickets/CS-000001")).await;
    let page = b.source().await;
    assert!(page.contains("The clock stands still since"), "{page}");
    let none = b
        .run("return document.querySelector('#first-response-due .countdown') === null")
        .await;
    assert_eq!(none, true);
    b.screenshot(&shots, "sla-3-waiting").await;
}
