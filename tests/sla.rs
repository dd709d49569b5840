//! The SLA clock on both databases: due times from the customer's tier,
//! recomputed when the priority changes, the first response met by an
//! agent's answer (not the acknowledgement), the clock paused while the
//! ticket waits for the customer, for the charge approval or is on hold and
//! resumed with the time left, the "due soon / overdue" view; and, through
//! the real binary, Dovecot and the SMTP sink, the acknowledgement stating
//! the response target, the CSV's `sla` column and the listings.

#[macro_use]
mod support;

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use servicedesk::config::Config;
use servicedesk::domain::{ContractStatus, Outcome, Priority, TicketStatus};
use servicedesk::pipeline::{Pipeline, RawMessage};
use servicedesk::sla::Policy;
use servicedesk::store::{
    stamp, Store, ThreadMessage, TicketChange, TicketQuery, TicketView, View,
};
use support::{Backend, Db, MailServers, Options, PERSONS_CSV};
use tempfile::TempDir;

on_both_backends!(
    due_times_follow_the_tier_the_priority_and_the_first_answer,
    the_clock_pauses_and_resumes_with_the_time_left,
    the_due_soon_view_lists_running_clocks_earliest_first,
    the_acknowledgement_states_the_response_target,
    a_changed_policy_computes_the_open_tickets_again,
);

/// WZC De Linde bought gold; Les Tilleuls (suspended) has no tier.
const CUSTOMERS_WITH_SLA: &str = "\
customer,contract_status,campuses,sla
WZC De Linde,active,Gent;Aalst,gold
Résidence Les Tilleuls,suspended,,
";

/// Gold: first answer within 4 business hours, resolved within 16; a
/// critical ticket within 1 and 8. Brussels' default business hours.
const GOLD: &str = "[sla]\ndue_soon = \"2h\"\n\
[[sla.tiers]]\nname = \"gold\"\nfirst_response = \"4h\"\nresolution = \"16h\"\n\
[[sla.tiers.targets]]\npriority = \"critical\"\nfirst_response = \"1h\"\nresolution = \"8h\"\n";

/// A desk open around the clock, every tier the default: pauses measured
/// in plain minutes, whatever the day the test runs on.
const ROUND_THE_CLOCK: &str = "[sla]\ndefault_tier = \"standard\"\ndue_soon = \"2h\"\npublic_holidays = false\n\
[sla.hours]\nmonday = \"00:00-24:00\"\ntuesday = \"00:00-24:00\"\nwednesday = \"00:00-24:00\"\n\
thursday = \"00:00-24:00\"\nfriday = \"00:00-24:00\"\nsaturday = \"00:00-24:00\"\nsunday = \"00:00-24:00\"\n\
[[sla.tiers]]\nname = \"standard\"\nfirst_response = \"4h\"\nresolution = \"16h\"\n";

async fn fresh(backend: Backend) -> (TempDir, Db, Store) {
    let dir = support::short_tempdir();
    let db = backend.db(dir.path()).await;
    let store = db.store().await;
    (dir, db, store)
}

fn config(db: &Db, sla: &str) -> Config {
    config_of(db, sla)
}

fn config_of(db: &Db, sla: &str) -> Config {
    let text = format!(
        "[database]\nurl = \"{}\"\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n{sla}",
        db.url()
    );
    Config::parse(Path::new("sla-test.toml"), &text).expect("config")
}

async fn ingest(pipeline: &Pipeline, store: &Store, raw: &[u8]) -> String {
    let registry = store.registry().await.expect("registry");
    let p = pipeline
        .process(
            &RawMessage {
                bytes: raw,
                source: "stdin",
                source_key: None,
                oversized: None,
            },
            &registry,
        )
        .await
        .expect("process");
    assert_eq!(p.outcome, Outcome::Ticket, "{p:?}");
    p.ticket.expect("a ticket number")
}

async fn ticket(store: &Store, number: &str) -> TicketView {
    store.ticket(number).await.expect("ticket").0
}

fn time(s: &Option<String>) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s.as_deref().expect("a time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// `policy.calendar.add(created, minutes)`, as stored.
fn due(policy: &Policy, t: &TicketView, minutes: i64) -> Option<String> {
    let created = time(&Some(t.created_at.clone()));
    Some(stamp(
        policy.calendar.add(created, minutes).expect("a due time"),
    ))
}

async fn set(store: &Store, number: &str, change: TicketChange) {
    store.set_ticket(number, &change).await.expect("set ticket");
}

fn status(s: TicketStatus) -> TicketChange {
    TicketChange {
        status: Some(s),
        ..TicketChange::default()
    }
}

/// Moves a column of a ticket's clock into the past, as if time had passed.
async fn rewrite(store: &Store, number: &str, column: &str, value: DateTime<Utc>) {
    sqlx::query(&format!(
        "UPDATE tickets SET {column} = $1 WHERE number = $2"
    ))
    .bind(stamp(value))
    .bind(number)
    .execute(store.pool())
    .await
    .expect("rewrite");
}

fn mail(message_id: &str, from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{message_id}>\r\nFrom: {from}\r\nTo: support@example.test\r\nSubject: {subject}\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn due_times_follow_the_tier_the_priority_and_the_first_answer(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let config = config(&db, GOLD);
    let pipeline = Pipeline::new(&config, store.clone()).expect("pipeline");
    support::import_registry(&store, CUSTOMERS_WITH_SLA, PERSONS_CSV).await;
    let policy = config.sla.clone();

    let number = ingest(
        &pipeline,
        &store,
        &support::simple_incident("sla-1@delinde.example"),
    )
    .await;
    let t = ticket(&store, &number).await;
    assert_eq!(t.sla.sla_tier.as_deref(), Some("gold"));
    let targets = policy.tier("gold").unwrap().targets(t.category, t.priority);
    assert_eq!(t.sla.sla_response_minutes, Some(targets.first_response));
    assert_eq!(
        t.sla.first_response_due,
        due(&policy, &t, targets.first_response)
    );
    assert_eq!(t.sla.resolution_due, due(&policy, &t, targets.resolution));
    assert_eq!(t.sla.sla_next_due, t.sla.first_response_due);
    // The acknowledgement went out, and does not count as the first answer.
    let (_, thread) = store.ticket(&number).await.unwrap();
    assert!(thread.iter().any(|m| m.kind() == "auto_reply"));
    assert_eq!(t.sla.first_response_at, None);

    // Critical: the targets and due times of the critical rule.
    set(
        &store,
        &number,
        TicketChange {
            priority: Some(Priority::Critical),
            ..TicketChange::default()
        },
    )
    .await;
    let t = ticket(&store, &number).await;
    assert_eq!(
        (t.sla.sla_response_minutes, t.sla.sla_resolution_minutes),
        (Some(60), Some(480))
    );
    assert_eq!(t.sla.first_response_due, due(&policy, &t, 60));
    assert_eq!(t.sla.resolution_due, due(&policy, &t, 480));
    assert_eq!(t.sla.sla_next_due, t.sla.first_response_due);
    let events = store.ticket_events(&number).await.unwrap();
    assert!(events.iter().any(|e| e.field == "priority"
        && e.new_value.as_deref() == Some("critical")
        && e.actor == "cli"));

    // An agent's answer meets the first response; the resolution is next.
    let mut tx = store.begin("CS").await.unwrap();
    let id = tx.ticket_id(&number).await.unwrap().unwrap();
    tx.add_authored_message(
        id,
        &ThreadMessage {
            direction: "out",
            message_id: "sd.test.agent@example.test",
            from: "support@example.test",
            subject: "Re: Foutmelding",
            body: "Opgelost?",
            outsider: false,
            html: None,
        },
        "an@desk.example",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let answered = ticket(&store, &number).await;
    assert!(answered.sla.first_response_at.is_some());
    assert_eq!(answered.sla.first_response_due, t.sla.first_response_due);
    assert_eq!(answered.sla.sla_next_due, answered.sla.resolution_due);
    // A priority change after the answer moves only the resolution.
    set(
        &store,
        &number,
        TicketChange {
            priority: Some(Priority::Normal),
            ..TicketChange::default()
        },
    )
    .await;
    let normal = ticket(&store, &number).await;
    assert_eq!(normal.sla.first_response_due, t.sla.first_response_due);
    assert_eq!(normal.sla.resolution_due, due(&policy, &normal, 16 * 60));

    // A customer without a tier, and no default one: no due times.
    let tilleuls = ingest(
        &pipeline,
        &store,
        &mail(
            "sla-2@lestilleuls.example",
            "Sophie Lambert <sophie.lambert@lestilleuls.example>",
            "Question sur le planning",
            "Bonjour, comment planifier une tâche hebdomadaire ?",
        ),
    )
    .await;
    let t = ticket(&store, &tilleuls).await;
    assert_eq!(t.sla, servicedesk::store::SlaView::default());
}

async fn the_clock_pauses_and_resumes_with_the_time_left(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let config = config(&db, ROUND_THE_CLOCK);
    let pipeline = Pipeline::new(&config, store.clone()).expect("pipeline");
    support::import_standard_registry(&store).await;
    let policy = config.sla.clone();

    // Waiting for the customer: the clock stands still, and after three
    // hours of waiting the due times are three hours later.
    let number = ingest(
        &pipeline,
        &store,
        &support::simple_incident("pause-1@delinde.example"),
    )
    .await;
    let before = ticket(&store, &number).await;
    assert_eq!(before.sla.sla_tier.as_deref(), Some("standard"));
    assert_eq!(before.sla.first_response_due, due(&policy, &before, 240));
    set(&store, &number, status(TicketStatus::Waiting)).await;
    let waiting = ticket(&store, &number).await;
    assert!(waiting.sla.sla_paused_since.is_some());
    assert_eq!(waiting.sla.sla_next_due, None);
    assert_eq!(
        waiting.sla.first_response_due,
        before.sla.first_response_due
    );
    rewrite(
        &store,
        &number,
        "sla_paused_since",
        Utc::now() - Duration::hours(3),
    )
    .await;
    set(&store, &number, status(TicketStatus::Open)).await;
    let resumed = ticket(&store, &number).await;
    assert_eq!(resumed.sla.sla_paused_since, None);
    assert_eq!(
        resumed.sla.first_response_due,
        due(&policy, &before, 240 + 180)
    );
    assert_eq!(resumed.sla.resolution_due, due(&policy, &before, 960 + 180));
    assert_eq!(resumed.sla.sla_next_due, resumed.sla.first_response_due);
    // The time left when the pause began is the time left now.
    let left_then = time(&before.sla.first_response_due) - (Utc::now() - Duration::hours(3));
    let left_now = time(&resumed.sla.first_response_due) - Utc::now();
    assert!((left_then - left_now).num_seconds().abs() < 60);

    // Waiting again, and the customer's answer by mail moves it back to
    // open: the clock runs again (the mail's path, not an agent's).
    set(&store, &number, status(TicketStatus::Waiting)).await;
    rewrite(
        &store,
        &number,
        "sla_paused_since",
        Utc::now() - Duration::hours(1),
    )
    .await;
    let answer = mail(
        "pause-1-answer@delinde.example",
        "Koen De Witte <koen.dewitte@delinde.example>",
        &format!("Re: [{number}] Foutmelding bij opslaan zorgplan"),
        "Het gebeurt nog steeds, ook na het herstarten.",
    );
    let registry = store.registry().await.unwrap();
    let p = pipeline
        .process(
            &RawMessage {
                bytes: &answer,
                source: "stdin",
                source_key: None,
                oversized: None,
            },
            &registry,
        )
        .await
        .expect("process");
    assert_eq!(p.outcome, Outcome::Followup, "{p:?}");
    let answered = ticket(&store, &number).await;
    assert_eq!(answered.status, TicketStatus::Open);
    assert_eq!(answered.sla.sla_paused_since, None);
    assert_eq!(
        answered.sla.first_response_due,
        due(&policy, &before, 240 + 180 + 60)
    );

    // Resolved: the clock stops; reopened, it goes on.
    set(&store, &number, status(TicketStatus::Resolved)).await;
    let resolved = ticket(&store, &number).await;
    assert!(resolved.sla.sla_paused_since.is_some());
    assert_eq!(resolved.sla.sla_next_due, None);

    // Awaiting the charge approval: standing still from the start.
    let training = ingest(
        &pipeline,
        &store,
        &mail(
            "pause-2@delinde.example",
            "Els Vermeulen <els.vermeulen@delinde.example>",
            "Opleiding medicatiemodule voor nieuwe verpleegkundigen",
            "Beste, in maart starten vijf nieuwe verpleegkundigen. Wij willen graag een opleiding \
             aanvragen over de medicatiemodule voor deze nieuwe medewerkers. Wat is de kostprijs?",
        ),
    )
    .await;
    let t = ticket(&store, &training).await;
    assert_eq!(t.status, TicketStatus::AwaitingApproval);
    assert!(t.sla.sla_paused_since.is_some());
    assert_eq!(t.sla.sla_next_due, None);

    // On hold (suspended contract) until the contract is active again.
    let held = ingest(
        &pipeline,
        &store,
        &mail(
            "pause-3@lestilleuls.example",
            "Sophie Lambert <sophie.lambert@lestilleuls.example>",
            "Erreur à l'ouverture du dossier résident",
            "Bonjour, le dossier résident affiche une erreur à l'ouverture depuis ce matin.",
        ),
    )
    .await;
    let t = ticket(&store, &held).await;
    assert_eq!(t.status, TicketStatus::OnHold);
    assert_eq!(t.sla.sla_next_due, None);
    rewrite(
        &store,
        &held,
        "sla_paused_since",
        Utc::now() - Duration::hours(1),
    )
    .await;
    servicedesk::contract::set(
        &config,
        &store,
        "Résidence Les Tilleuls",
        ContractStatus::Active,
    )
    .await
    .expect("contract active");
    let resumed = ticket(&store, &held).await;
    assert_eq!(resumed.status, TicketStatus::New);
    assert_eq!(resumed.sla.sla_paused_since, None);
    assert_eq!(resumed.sla.first_response_due, due(&policy, &t, 240 + 60));
    assert_eq!(resumed.sla.sla_next_due, resumed.sla.first_response_due);
}

async fn the_due_soon_view_lists_running_clocks_earliest_first(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let config = config(&db, ROUND_THE_CLOCK);
    let pipeline = Pipeline::new(&config, store.clone()).expect("pipeline");
    support::import_standard_registry(&store).await;
    let mut numbers = Vec::new();
    for n in 0..4 {
        numbers.push(
            ingest(
                &pipeline,
                &store,
                &support::simple_incident(&format!("due-{n}@delinde.example")),
            )
            .await,
        );
    }
    let [fresh_one, overdue, soon, paused] = numbers.try_into().unwrap();
    // Arrived five hours ago (due an hour ago), three hours ago (due in
    // an hour), and long ago but waiting for the customer.
    let now = Utc::now();
    for (number, age) in [(&overdue, 5), (&soon, 3), (&paused, 48)] {
        rewrite(&store, number, "created_at", now - Duration::hours(age)).await;
        set(&store, number, status(TicketStatus::Open)).await;
    }
    set(&store, &paused, status(TicketStatus::Waiting)).await;

    assert_eq!(store.due_counts().await.unwrap(), (2, 1));
    let counts = store.queue_counts().await.unwrap();
    assert_eq!((counts.due_soon, counts.overdue), (2, 1));
    let page = store
        .ticket_page(&TicketQuery {
            view: View::DueSoon,
            limit: 50,
            ..TicketQuery::default()
        })
        .await
        .unwrap();
    let listed: Vec<&str> = page.iter().map(|t| t.number.as_str()).collect();
    assert_eq!(listed, vec![overdue.as_str(), soon.as_str()]);
    let late = store
        .ticket_page(&TicketQuery {
            view: View::Overdue,
            limit: 50,
            ..TicketQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        late.iter().map(|t| t.number.as_str()).collect::<Vec<_>>(),
        vec![overdue.as_str()]
    );
    assert!(!listed.contains(&fresh_one.as_str()));
    // Answered: the resolution (16 h) is far away, off the view.
    set(
        &store,
        &soon,
        TicketChange {
            priority: Some(Priority::High),
            ..TicketChange::default()
        },
    )
    .await;
    let mut tx = store.begin("CS").await.unwrap();
    let id = tx.ticket_id(&soon).await.unwrap().unwrap();
    tx.sla_answered(id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.due_counts().await.unwrap(), (1, 1));
}

/// The real binary: `customers import` with the `sla` column (an unknown
/// tier refused with its line), `run --once` against Dovecot and the SMTP
/// sink, and the acknowledgement stating the target; the listings show it.
async fn the_acknowledgement_states_the_response_target(backend: Backend) {
    let servers = MailServers::start();
    let db = backend.db(servers.dir()).await;
    let config = support::config_with_extra(&servers, &db, &Options::default(), GOLD);
    let dir = servers.dir();
    let run = |args: &[&str]| support::run_servicedesk(&config.path, dir, args, None);

    std::fs::write(
        dir.join("bad.csv"),
        "customer,contract_status,sla\nWZC De Linde,active,gold\nRésidence Les Tilleuls,active,platinum\n",
    )
    .unwrap();
    let out = run(&["customers", "import", "bad.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", support::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv: line 3: sla \"platinum\" is not a tier")
            && err.contains("use one of gold"),
        "{err}"
    );
    std::fs::write(dir.join("customers.csv"), CUSTOMERS_WITH_SLA).unwrap();
    std::fs::write(dir.join("persons.csv"), PERSONS_CSV).unwrap();
    for args in [
        ["customers", "import", "customers.csv"],
        ["persons", "import", "persons.csv"],
    ] {
        let out = run(&args);
        assert!(out.status.success(), "{}", support::describe(&out));
    }
    let listed = String::from_utf8_lossy(&run(&["customers", "list"]).stdout).to_string();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("WZC De Linde") && l.ends_with("sla: gold")),
        "{listed}"
    );
    let doctor = String::from_utf8_lossy(&run(&["doctor"]).stdout).to_string();
    assert!(
        doctor.lines().any(|l| l.contains("sla")
            && l.contains("1 tier(s), 1 customer(s) with a tier; open Mon–Fri 08:30–17:00")),
        "{doctor}"
    );
    let out = run(&["registry", "export", "export"]);
    assert!(out.status.success(), "{}", support::describe(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("export/customers.csv")).unwrap(),
        "customer,contract_status,campuses,sla\nRésidence Les Tilleuls,suspended,,\nWZC De Linde,active,Gent;Aalst,gold\n"
    );

    servers
        .append(
            "INBOX",
            &support::crlf(&support::simple_incident("ack-1@delinde.example")),
        )
        .await;
    servers
        .append(
            "INBOX",
            &support::crlf(&mail(
                "ack-2@lestilleuls.example",
                "Sophie Lambert <sophie.lambert@lestilleuls.example>",
                "Question sur le planning",
                "Bonjour, comment planifier une tâche hebdomadaire ?",
            )),
        )
        .await;
    let out = run(&["run", "--once"]);
    assert!(out.status.success(), "{}", support::describe(&out));
    let sent = servers
        .wait_sent(2, std::time::Duration::from_secs(20))
        .await;
    let gold = sent
        .iter()
        .find(|s| s.answers("ack-1@delinde.example"))
        .expect("the acknowledgement");
    assert_eq!(gold.notice.as_deref(), Some("received"));
    let tickets: serde_json::Value =
        serde_json::from_slice(&run(&["tickets", "list", "--json"]).stdout).unwrap();
    let linde = tickets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["customer"] == "WZC De Linde")
        .expect("the gold ticket");
    let minutes = linde["sla_response_minutes"].as_i64().expect("a target");
    let said = servicedesk::sla::phrase(minutes, servicedesk::domain::Language::Nl);
    assert!(
        gold.body
            .contains(&format!("We antwoorden u binnen {said}.")),
        "{}",
        gold.body
    );
    assert_eq!(linde["sla_tier"], "gold");
    assert!(linde["first_response_due"].is_string() && linde["resolution_due"].is_string());
    assert_eq!(linde["sla_next_due"], linde["first_response_due"]);
    // Les Tilleuls has no tier (and is suspended): its notice promises nothing.
    let other = sent
        .iter()
        .find(|s| s.answers("ack-2@lestilleuls.example"))
        .expect("the suspension notice");
    assert!(
        !other.body.contains("répondrons dans un délai"),
        "{}",
        other.body
    );
    let show = run(&["tickets", "show", linde["number"].as_str().unwrap()]);
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.contains("  sla        gold (first response ")
            && show.contains("  respond by ")
            && show.contains("  resolve by "),
        "{show}"
    );
}

/// A daemon that starts with another `[sla]` computes the open tickets'
/// due times again, once; resolved tickets keep theirs.
async fn a_changed_policy_computes_the_open_tickets_again(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let config = config(&db, ROUND_THE_CLOCK);
    let pipeline = Pipeline::new(&config, store.clone()).expect("pipeline");
    support::import_standard_registry(&store).await;
    assert_eq!(store.apply_sla_policy(config.sla.clone()).await.unwrap(), 0);
    let open = ingest(
        &pipeline,
        &store,
        &support::simple_incident("p-1@delinde.example"),
    )
    .await;
    let done = ingest(
        &pipeline,
        &store,
        &support::simple_incident("p-2@delinde.example"),
    )
    .await;
    set(&store, &done, status(TicketStatus::Resolved)).await;
    let before = ticket(&store, &done).await;
    // The same policy again: nothing to do.
    assert_eq!(store.apply_sla_policy(config.sla.clone()).await.unwrap(), 0);

    let faster = config_of(
        &db,
        &ROUND_THE_CLOCK.replace("first_response = \"4h\"", "first_response = \"2h\""),
    );
    assert_eq!(store.apply_sla_policy(faster.sla.clone()).await.unwrap(), 1);
    let t = ticket(&store, &open).await;
    assert_eq!(t.sla.sla_response_minutes, Some(120));
    assert_eq!(t.sla.first_response_due, due(&faster.sla, &t, 120));
    assert_eq!(ticket(&store, &done).await.sla, before.sla);
    assert_eq!(store.apply_sla_policy(faster.sla.clone()).await.unwrap(), 0);
    // New tickets follow it as well.
    let next = ingest(
        &pipeline,
        &store,
        &support::simple_incident("p-3@delinde.example"),
    )
    .await;
    assert_eq!(
        ticket(&store, &next).await.sla.sla_response_minutes,
        Some(120)
    );
}
