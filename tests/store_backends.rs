//! The store API behaves the same on SQLite and PostgreSQL: registry import
//! and round trip, ticket numbering (tickets made by the pipeline, as
//! `ingest` does), intake first-sighting uniqueness, and the outbox queue.

#[macro_use]
mod support;

use std::path::Path;

use servicedesk::config::Config;
use servicedesk::domain::{Category, ContractStatus, Language, Outcome, Role, TicketStatus};
use servicedesk::pipeline::{Pipeline, RawMessage};
use servicedesk::store::{
    ImportSummary, IntakeRecord, NewOutboxEntry, Store, StoreError, TicketFilter,
};
use support::{Backend, Db, CUSTOMERS_CSV, PERSONS_CSV};
use tempfile::TempDir;

on_both_backends!(
    import_is_idempotent,
    registry_round_trip,
    tickets_are_numbered_in_order,
    intake_first_sighting_is_unique,
    outbox_queue_round_trip,
    two_senders_send_each_reply_once,
    a_claimed_reply_is_due_when_its_claim_runs_out,
    corrections_read_back_typed_and_unknown_values_are_counted,
    a_ticket_keeps_its_priority_and_an_agents_priority_is_learned,
    models_are_kept_and_one_is_in_use,
    webhook_deliveries_follow_the_audit_trail_once,
);

/// A fresh, migrated store; the guards keep the database alive.
async fn fresh(backend: Backend) -> (TempDir, Db, Store) {
    let dir = support::short_tempdir();
    let db = backend.db(dir.path()).await;
    let store = db.store().await;
    (dir, db, store)
}

fn summary(added: usize, updated: usize, unchanged: usize) -> ImportSummary {
    ImportSummary {
        added,
        updated,
        unchanged,
        deactivated: 0,
    }
}

async fn import_is_idempotent(backend: Backend) {
    let (_dir, _db, store) = fresh(backend).await;
    let (c, p) = support::import_registry(&store, CUSTOMERS_CSV, PERSONS_CSV).await;
    assert_eq!(c, summary(2, 0, 0));
    assert_eq!(p, summary(7, 0, 0));

    // The same files again: nothing changes.
    let (c, p) = support::import_registry(&store, CUSTOMERS_CSV, PERSONS_CSV).await;
    assert_eq!(c, summary(0, 0, 2));
    assert_eq!(p, summary(0, 0, 7));

    // One customer's status and one person's language changed, one person added.
    let customers = CUSTOMERS_CSV.replace(
        "Résidence Les Tilleuls,suspended,",
        "Résidence Les Tilleuls,active,",
    );
    let persons = format!(
        "{}nina.devos@delinde.example,Nina De Vos,WZC De Linde,Aalst,campus,nl\n",
        PERSONS_CSV.replace(
            "james.wright@delinde.example,James Wright,WZC De Linde,Gent,campus,en",
            "james.wright@delinde.example,James Wright,WZC De Linde,Gent,campus,nl",
        )
    );
    let (c, p) = support::import_registry(&store, &customers, &persons).await;
    assert_eq!(c, summary(0, 1, 1));
    assert_eq!(p, summary(1, 1, 6));
    let (c, p) = support::import_registry(&store, &customers, &persons).await;
    assert_eq!(c, summary(0, 0, 2));
    assert_eq!(p, summary(0, 0, 8));
}

async fn registry_round_trip(backend: Backend) {
    let (_dir, _db, store) = fresh(backend).await;
    support::import_standard_registry(&store).await;
    let registry = store.registry().await.expect("registry");

    let linde = registry.customer("wzc de linde").expect("WZC De Linde");
    assert_eq!(linde.name, "WZC De Linde");
    assert_eq!(linde.status, ContractStatus::Active);
    assert_eq!(linde.campuses, vec!["Gent", "Aalst"]);
    let tilleuls = registry
        .customer("Résidence Les Tilleuls")
        .expect("Les Tilleuls");
    assert_eq!(tilleuls.status, ContractStatus::Suspended);
    assert!(tilleuls.campuses.is_empty());

    // Addresses match whatever their case.
    let (person, customer) = registry
        .lookup("Koen.DeWitte@DeLinde.Example")
        .expect("Koen by mixed-case address");
    assert_eq!(person.email, "koen.dewitte@delinde.example");
    assert_eq!(person.name, "Koen De Witte");
    assert_eq!(person.campus.as_deref(), Some("Aalst"));
    assert_eq!(person.role, Role::Campus);
    assert_eq!(person.language, Language::Nl);
    assert_eq!(customer.name, "WZC De Linde");

    let (sophie, customer) = registry
        .lookup("sophie.lambert@lestilleuls.example")
        .expect("Sophie");
    assert_eq!(sophie.role, Role::General);
    assert_eq!(sophie.campus, None);
    assert_eq!(sophie.language, Language::Fr);
    assert_eq!(customer.status, ContractStatus::Suspended);

    assert_eq!(registry.persons().count(), 7);
    assert!(registry.lookup("nobody@delinde.example").is_none());
    assert!(
        registry.coverage_gaps().is_empty(),
        "{:?}",
        registry.coverage_gaps()
    );
}

/// A pipeline on this store, as `ingest` builds it.
fn pipeline(db: &Db, store: &Store) -> Pipeline {
    let text = format!(
        "[database]\nurl = \"{}\"\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n",
        db.url()
    );
    let config = Config::parse(Path::new("store-test.toml"), &text).expect("config");
    Pipeline::new(&config, store.clone()).expect("pipeline")
}

/// A registered person's mail through the pipeline; returns the ticket number.
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

fn training_request(message_id: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{message_id}>\r\n\
From: Els Vermeulen <els.vermeulen@delinde.example>\r\n\
To: support@example.test\r\n\
Subject: Opleiding medicatiemodule voor nieuwe verpleegkundigen\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Beste,\r\n\r\n\
In maart starten er vijf nieuwe verpleegkundigen op campus Gent. Wij willen graag een\r\n\
opleiding aanvragen over de medicatiemodule voor deze nieuwe medewerkers.\r\n\
Kunnen jullie laten weten welke mogelijkheden er zijn en wat de kostprijs is?\r\n\r\n\
Els Vermeulen\r\n"
    )
    .into_bytes()
}

async fn tickets_are_numbered_in_order(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    support::import_standard_registry(&store).await;
    let pipeline = pipeline(&db, &store);

    let one = ingest(
        &pipeline,
        &store,
        &support::simple_incident("m1@delinde.example"),
    )
    .await;
    let two = ingest(&pipeline, &store, &training_request("m2@delinde.example")).await;

    // A transaction that is dropped without commit leaves nothing behind.
    {
        let mut tx = store.begin("CS").await.expect("begin");
        tx.record_intake(&intake_record(
            "rolled-back@delinde.example",
            Outcome::Suppressed,
            None,
            None,
        ))
        .await
        .expect("record");
    }

    let three = ingest(
        &pipeline,
        &store,
        &support::simple_incident("m3@delinde.example"),
    )
    .await;
    assert_eq!(
        [one.as_str(), two.as_str(), three.as_str()],
        ["CS-000001", "CS-000002", "CS-000003"]
    );

    let all = store
        .tickets(&TicketFilter::default())
        .await
        .expect("tickets");
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(store
        .intake()
        .await
        .expect("intake")
        .iter()
        .all(|i| i.message_id != "rolled-back@delinde.example"));

    let (t, thread) = store.ticket("cs-000002").await.expect("ticket CS-000002");
    assert_eq!(t.number, "CS-000002");
    assert!(t.chargeable);
    assert_eq!(t.chargeable_reason.map(|r| r.as_str()), Some("training"));
    assert_eq!(t.status, "awaiting_approval");
    assert_eq!(t.charge_approved, None);
    assert_eq!(t.customer, "WZC De Linde");
    assert_eq!(t.sender, "els.vermeulen@delinde.example");
    assert_eq!(t.language, "nl");
    assert_eq!(t.message_ids, vec!["m2@delinde.example"]);
    assert!(chrono::DateTime::parse_from_rfc3339(&t.created_at).is_ok());
    assert_eq!(thread[0].direction, "in");
    assert_eq!(thread[0].message_id, "m2@delinde.example");

    let awaiting = store
        .tickets(&TicketFilter {
            status: Some(TicketStatus::AwaitingApproval),
            ..TicketFilter::default()
        })
        .await
        .expect("filtered");
    assert_eq!(
        awaiting
            .iter()
            .map(|t| t.number.as_str())
            .collect::<Vec<_>>(),
        ["CS-000002"]
    );
    let incidents = store
        .tickets(&TicketFilter {
            category: Some(Category::Incident),
            ..TicketFilter::default()
        })
        .await
        .expect("filtered");
    assert_eq!(
        incidents
            .iter()
            .map(|t| t.number.as_str())
            .collect::<Vec<_>>(),
        ["CS-000001", "CS-000003"]
    );
    assert!(matches!(
        store.ticket("CS-999999").await,
        Err(StoreError::NotFound(_))
    ));
}

fn intake_record<'a>(
    message_id: &'a str,
    outcome: Outcome,
    ticket: Option<&'a str>,
    source_key: Option<&'a str>,
) -> IntakeRecord<'a> {
    IntakeRecord {
        message_id,
        from: "an.peeters@delinde.example",
        subject: "Foutmelding",
        outcome,
        ticket,
        detail: "test",
        source: "imap",
        source_key,
        raw: None,
    }
}

async fn record(store: &Store, r: &IntakeRecord<'_>) -> Result<(), StoreError> {
    let mut tx = store.begin("CS").await?;
    tx.record_intake(r).await?;
    tx.commit().await
}

/// A lookup made inside a transaction, as the pipeline makes it.
async fn first_sighting(store: &Store, id: &str) -> Option<Option<String>> {
    let mut tx = store.begin("CS").await.expect("begin");
    tx.first_sighting(id).await.expect("lookup")
}

async fn source_outcome(store: &Store, key: &str) -> Option<(Outcome, Option<String>)> {
    let mut tx = store.begin("CS").await.expect("begin");
    tx.source_outcome(key).await.expect("lookup")
}

async fn intake_first_sighting_is_unique(backend: Backend) {
    let (_dir, _db, store) = fresh(backend).await;
    let id = "first@delinde.example";
    assert_eq!(first_sighting(&store, id).await, None);
    record(
        &store,
        &intake_record(id, Outcome::Ticket, Some("CS-000001"), Some("imap:a/UID=1")),
    )
    .await
    .expect("first sighting");
    assert_eq!(
        first_sighting(&store, id).await,
        Some(Some("CS-000001".to_string()))
    );

    // The same Message-ID as a ticket again: refused.
    let again = record(
        &store,
        &intake_record(id, Outcome::Ticket, Some("CS-000002"), Some("imap:a/UID=2")),
    )
    .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "a second first sighting must conflict: {again:?}"
    );
    // Nor as another first-sighting outcome.
    let again = record(
        &store,
        &intake_record(id, Outcome::Unregistered, None, Some("imap:a/UID=3")),
    )
    .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    // Recording it as a duplicate is what a re-delivery does: allowed.
    record(
        &store,
        &intake_record(
            id,
            Outcome::Duplicate,
            Some("CS-000001"),
            Some("imap:a/UID=4"),
        ),
    )
    .await
    .expect("a duplicate record");

    // The same source position twice: refused too.
    let again = record(
        &store,
        &intake_record(
            "other@delinde.example",
            Outcome::Suppressed,
            None,
            Some("imap:a/UID=1"),
        ),
    )
    .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        source_outcome(&store, "imap:a/UID=1").await,
        Some((Outcome::Ticket, Some("CS-000001".to_string())))
    );
    assert_eq!(source_outcome(&store, "imap:a/UID=9").await, None);

    let intake = store.intake().await.expect("intake");
    let outcomes: Vec<(&str, &str)> = intake
        .iter()
        .map(|i| (i.message_id.as_str(), i.outcome.as_str()))
        .collect();
    assert_eq!(outcomes, [(id, "ticket"), (id, "duplicate")]);
}

async fn outbox_queue_round_trip(backend: Backend) {
    let (_dir, _db, store) = fresh(backend).await;
    let raw =
        b"From: support@example.test\r\nTo: an.peeters@delinde.example\r\nSubject: x\r\n\r\nhi\r\n";
    let mut tx = store.begin("CS").await.expect("begin");
    for n in 1..=2 {
        let message_id = format!("sd.{n}@example.test");
        let in_reply_to = format!("m{n}@delinde.example");
        tx.queue_reply(&NewOutboxEntry {
            ticket: Some("CS-000001"),
            notice: "received",
            message_id: &message_id,
            in_reply_to: &in_reply_to,
            envelope_from: "support@example.test",
            recipient: "an.peeters@delinde.example",
            raw,
        })
        .await
        .expect("queue");
    }
    tx.commit().await.expect("commit");

    assert_eq!(store.pending_replies().await.expect("pending"), 2);
    let far_future = "9999-12-31T00:00:00.000Z";
    let now = servicedesk::store::now();
    let due = store
        .claim_due("host:1:one", &now, far_future, 10)
        .await
        .expect("claim");
    assert_eq!(due.len(), 2);
    assert_eq!(
        store.claim_holders(&now).await.expect("holders"),
        vec!["host:1:one".to_string()]
    );
    // A holder that is gone gives its claims up; another takes them.
    assert_eq!(
        store.release_claims("host:1:one").await.expect("release"),
        2
    );
    let due = store
        .claim_due("host:2:two", &now, far_future, 10)
        .await
        .expect("claim");
    assert_eq!(due.len(), 2);
    // Claimed: a second sender gets nothing until the claim runs out.
    assert!(store
        .claim_due("host:1:one", &now, far_future, 10)
        .await
        .expect("claim")
        .is_empty());
    assert_eq!(due[0].raw, raw);
    assert_eq!(due[0].status, "pending");
    assert_eq!(due[0].attempts, 0);

    store.mark_sent(&[due[0].id]).await.expect("mark sent");
    store
        .mark_attempt(due[1].id, "451 try again later", Some(far_future))
        .await
        .expect("mark retry");
    assert_eq!(store.pending_replies().await.expect("pending"), 1);
    // The retry is not due yet, however long ago its claim was.
    assert!(store
        .claim_due("host:1:one", &servicedesk::store::now(), far_future, 10)
        .await
        .expect("claim")
        .is_empty());
    assert_eq!(
        store.next_due().await.expect("next due").as_deref(),
        Some(far_future)
    );

    store
        .mark_attempt(due[1].id, "554 rejected", None)
        .await
        .expect("mark failed");
    let all = store.outbox().await.expect("outbox");
    assert_eq!(all[0].status, "sent");
    assert!(all[0].sent_at.is_some());
    assert_eq!(all[1].status, "failed");
    assert_eq!(all[1].attempts, 2);
    assert_eq!(all[1].last_error.as_deref(), Some("554 rejected"));
    assert_eq!(store.pending_replies().await.expect("pending"), 0);

    store.retry_reply(all[1].id).await.expect("retry");
    assert_eq!(store.pending_replies().await.expect("pending"), 1);
    assert!(matches!(
        store.retry_reply(all[0].id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Two outbox senders (two daemons) on one database: every reply leaves
/// exactly once, whoever sends it.
async fn two_senders_send_each_reply_once(backend: Backend) {
    use servicedesk::config::OutboxConfig;
    use servicedesk::outbox::{Outbox, Transport};

    let (dir, _db, store) = fresh(backend).await;
    let raw =
        b"From: support@example.test\r\nTo: an.peeters@delinde.example\r\nSubject: x\r\n\r\nhi\r\n";
    let mut tx = store.begin("CS").await.expect("begin");
    for n in 1..=40 {
        let message_id = format!("sd.{n}@example.test");
        let in_reply_to = format!("m{n}@delinde.example");
        tx.queue_reply(&NewOutboxEntry {
            ticket: None,
            notice: "received",
            message_id: &message_id,
            in_reply_to: &in_reply_to,
            envelope_from: "support@example.test",
            recipient: "an.peeters@delinde.example",
            raw,
        })
        .await
        .expect("queue");
    }
    tx.commit().await.expect("commit");

    let senders: Vec<(Outbox, std::path::PathBuf)> = ["a", "b"]
        .iter()
        .map(|name| {
            let out = dir.path().join(name);
            std::fs::create_dir_all(&out).expect("dir");
            let transport = Transport::File(lettre::AsyncFileTransport::new(&out));
            (
                Outbox::new(store.clone(), transport, OutboxConfig::default()),
                out,
            )
        })
        .collect();
    let (a, b) = tokio::join!(senders[0].0.drain(None), senders[1].0.drain(None));
    let (a, b) = (a.expect("drain a"), b.expect("drain b"));
    assert_eq!(a.sent + b.sent, 40, "{a:?} {b:?}");
    let written: usize = senders
        .iter()
        .map(|(_, out)| std::fs::read_dir(out).expect("read").count())
        .sum();
    assert_eq!(written, 40, "a reply was written twice or not at all");
    assert_eq!(store.pending_replies().await.expect("pending"), 0);
}

/// A reply another live sender holds is not due before its claim runs out:
/// a sender that took it for due now would look again and again, without
/// sleeping, for as long as the claim lasts.
async fn a_claimed_reply_is_due_when_its_claim_runs_out(backend: Backend) {
    use servicedesk::config::OutboxConfig;
    use servicedesk::outbox::{Outbox, Transport};

    let (dir, _db, store) = fresh(backend).await;
    let mut tx = store.begin("CS").await.expect("begin");
    tx.queue_reply(&NewOutboxEntry {
        ticket: None,
        notice: "received",
        message_id: "sd.1@example.test",
        in_reply_to: "m1@delinde.example",
        envelope_from: "support@example.test",
        recipient: "an.peeters@delinde.example",
        raw: b"Subject: x\r\n\r\nhi\r\n",
    })
    .await
    .expect("queue");
    tx.commit().await.expect("commit");
    let now = chrono::Utc::now();
    let until = servicedesk::store::stamp(now + chrono::Duration::seconds(120));
    let claimed = store
        .claim_due(
            "other-machine:4242:0badcafe",
            &servicedesk::store::stamp(now),
            &until,
            10,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(store.next_due().await.expect("next due"), Some(until));

    let outbox = Outbox::new(
        store.clone(),
        Transport::File(lettre::AsyncFileTransport::new(dir.path())),
        OutboxConfig::default(),
    );
    let report = outbox.drain(None).await.expect("drain");
    assert_eq!(report.sent, 0, "sent a reply another sender holds");
    let wait = outbox
        .until_next()
        .await
        .expect("until next")
        .expect("pending");
    assert!(wait > std::time::Duration::from_secs(100), "{wait:?}");
}

/// The two migration folders are kept in step: after migrating, SQLite and
/// PostgreSQL have the same tables with the same columns (but for the
/// search index: FTS5 tables on SQLite, tsvector columns on PostgreSQL).
#[tokio::test]
async fn both_backends_migrate_to_the_same_tables_and_columns() {
    use std::collections::BTreeSet;
    let (_dir, _sqlite_db, sqlite) = fresh(Backend::Sqlite).await;
    let (_dir2, _pg_db, pg) = fresh(Backend::Postgres).await;
    let sqlite_columns: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations' \
         AND m.name NOT LIKE 'message_search%'",
    )
    .fetch_all(sqlite.pool())
    .await
    .expect("SQLite columns")
    .into_iter()
    .collect();
    let pg_columns: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' \
         AND NOT (table_name = 'messages' AND column_name = 'search') \
         AND NOT (table_name = 'tickets' AND column_name = 'subject_search')",
    )
    .fetch_all(pg.pool())
    .await
    .expect("PostgreSQL columns")
    .into_iter()
    .collect();
    assert!(sqlite_columns.len() > 40, "{sqlite_columns:?}");
    assert_eq!(
        sqlite_columns.difference(&pg_columns).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "only on SQLite"
    );
    assert_eq!(
        pg_columns.difference(&sqlite_columns).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "only on PostgreSQL"
    );
}

/// Agents' corrections come back as the desk's own types; one whose category
/// this version does not know (written by hand, or by a newer version) is
/// left out and counted, not trained on and not fatal.
async fn corrections_read_back_typed_and_unknown_values_are_counted(backend: Backend) {
    use servicedesk::store::TicketChange;
    let (_dir, db, store) = fresh(backend).await;
    support::import_standard_registry(&store).await;
    let pipeline = pipeline(&db, &store);
    let one = ingest(&pipeline, &store, &training_request("c1@delinde.example")).await;
    let two = ingest(
        &pipeline,
        &store,
        &support::simple_incident("c2@delinde.example"),
    )
    .await;
    for number in [&one, &two] {
        store
            .set_ticket(
                number,
                &TicketChange {
                    category: Some(Category::Question),
                    chargeable_reason: Some(None),
                    ..TicketChange::default()
                },
            )
            .await
            .expect("correct");
    }
    sqlx::query("UPDATE tickets SET category = 'complaint' WHERE number = $1")
        .bind(&two)
        .execute(store.pool())
        .await
        .expect("an unknown category");
    let (tickets, unknown) = store.corrected_tickets().await.expect("corrections");
    assert_eq!(unknown, 1);
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        (tickets[0].category, tickets[0].chargeable_reason),
        (Category::Question, None)
    );
    // Reading the ticket itself names the bad value instead of guessing.
    let err = store.ticket(&two).await.unwrap_err().to_string();
    assert!(err.contains("\"complaint\" is not a category"), "{err}");
}

/// The sorting's priority is stored with the ticket; an agent's change of
/// it is a correction that training learns from, the sorting's own guess
/// on a ticket corrected otherwise is not.
async fn a_ticket_keeps_its_priority_and_an_agents_priority_is_learned(backend: Backend) {
    use servicedesk::domain::Priority;
    use servicedesk::store::TicketChange;
    let (_dir, db, store) = fresh(backend).await;
    support::import_standard_registry(&store).await;
    let pipeline = pipeline(&db, &store);
    let outage = b"From: An Peeters <an.peeters@delinde.example>\r\n\
To: support@example.test\r\n\
Subject: Medicatieronde lukt niet\r\n\
Message-ID: <down@delinde.example>\r\n\
Date: Mon, 7 Dec 2026 07:10:00 +0100\r\n\
\r\n\
Sinds 7u kan niemand op afdeling B2 de medicatieronde openen: foutmelding bij het laden. We werken nu op papier.\r\n";
    let critical = ingest(&pipeline, &store, outage).await;
    let (t, _) = store.ticket(&critical).await.expect("ticket");
    assert_eq!(t.priority, Priority::Critical, "{:?}", t.evidence);
    let other = ingest(&pipeline, &store, &training_request("p2@delinde.example")).await;
    store
        .set_ticket(
            &other,
            &TicketChange {
                category: Some(Category::Feedback),
                ..TicketChange::default()
            },
        )
        .await
        .expect("correct the category");
    let changed = store
        .set_ticket(
            &critical,
            &TicketChange {
                priority: Some(Priority::High),
                ..TicketChange::default()
            },
        )
        .await
        .expect("correct the priority");
    assert_eq!(
        changed,
        vec![(
            "priority".to_string(),
            Some("critical".to_string()),
            Some("high".to_string())
        )]
    );
    assert_eq!(
        store.ticket(&critical).await.expect("ticket").0.priority,
        Priority::High
    );
    let (mut tickets, _) = store.corrected_tickets().await.expect("corrections");
    tickets.sort_by_key(|t| t.priority.is_none());
    let priorities: Vec<Option<Priority>> = tickets.iter().map(|t| t.priority).collect();
    assert_eq!(priorities, vec![Some(Priority::High), None]);
}

/// The desk's models: kept, one in use at a time, back to the built-in one.
async fn models_are_kept_and_one_is_in_use(backend: Backend) {
    use servicedesk::store::NewModel;
    let (_dir, _db, store) = fresh(backend).await;
    assert_eq!(store.active_model_id().await.unwrap(), None);
    assert_eq!(store.corrections_of_newest_model().await.unwrap(), 0);
    let report = serde_json::json!({ "held_out": { "mails": 3 } });
    let model = |bytes: &'static [u8], corrections| NewModel {
        bytes,
        sha256: "00",
        corrections,
        report: &report,
        note: "test",
    };
    let one = store.save_model(&model(b"one", 3), true).await.unwrap();
    let two = store.save_model(&model(b"two", 5), false).await.unwrap();
    assert_eq!(store.active_model_id().await.unwrap(), Some(one));
    assert_eq!(store.corrections_of_newest_model().await.unwrap(), 5);
    assert_eq!(store.model_bytes(two).await.unwrap(), b"two");
    store.use_model(Some(two)).await.unwrap();
    assert_eq!(store.active_model_id().await.unwrap(), Some(two));
    let listed = store.models().await.unwrap();
    assert_eq!(
        listed.iter().map(|m| (m.id, m.active)).collect::<Vec<_>>(),
        vec![(two, true), (one, false)]
    );
    assert_eq!(listed[0].report["held_out"]["mails"], 3);
    store.use_model(None).await.unwrap();
    assert_eq!(store.active_model_id().await.unwrap(), None);
    assert!(store.use_model(Some(two + 100)).await.is_err());
    assert_eq!(store.active_model_id().await.unwrap(), None);
}

/// Audit events become webhook deliveries once (a second queuing from the
/// same cursor does nothing), and attempts are recorded.
async fn webhook_deliveries_follow_the_audit_trail_once(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    support::import_standard_registry(&store).await;
    // The first look starts at the end of the trail: history is not sent.
    let (start, none) = store.events_for_webhooks(10).await.unwrap();
    assert!(none.is_empty());
    let pipeline = pipeline(&db, &store);
    let number = ingest(
        &pipeline,
        &store,
        &support::simple_incident("hook@delinde.example"),
    )
    .await;
    let (from, events) = store.events_for_webhooks(10).await.unwrap();
    assert_eq!(from, start);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].field.as_str(), events[0].ticket_number.as_str()),
        ("created", number.as_str())
    );
    let to = events[0].id;
    let deliveries = vec![(
        "https://crm.example.test/hook".to_string(),
        to,
        "ticket.created",
        number.clone(),
        "{}".to_string(),
    )];
    assert!(store.queue_webhooks(from, to, &deliveries).await.unwrap());
    // Another process with the same view queues nothing.
    assert!(!store.queue_webhooks(from, to, &deliveries).await.unwrap());
    assert!(store.events_for_webhooks(10).await.unwrap().1.is_empty());
    let due = store
        .due_webhooks(&servicedesk::store::now(), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    store
        .mark_webhook(
            due[0].id,
            Some("answered 503"),
            Some("2999-01-01T00:00:00.000Z"),
        )
        .await
        .unwrap();
    assert!(store
        .due_webhooks(&servicedesk::store::now(), 10)
        .await
        .unwrap()
        .is_empty());
    store.mark_webhook(due[0].id, None, None).await.unwrap();
    let listed = store.webhook_deliveries(10).await.unwrap();
    assert_eq!(
        (
            listed[0].status.as_str(),
            listed[0].attempts,
            listed[0].last_error.as_deref()
        ),
        ("delivered", 2, Some("answered 503"))
    );
}
