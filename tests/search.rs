//! Full-text search on SQLite and PostgreSQL: mail, agents' replies and
//! notes in four languages, accents, stems, phrases and type-ahead; ticket
//! number, customer and sender; hostile query strings; the filters and
//! pages of the queue; the index kept in step with every message written,
//! and filled in for messages older than it (migration 0017). Last, `q`
//! over HTTP through the real binary (`servicedesk web`).

#[macro_use]
mod support;

use std::path::Path;

use servicedesk::config::Config;
use servicedesk::domain::{Category, Outcome};
use servicedesk::pipeline::{Pipeline, RawMessage};
use servicedesk::store::{Store, ThreadMessage, TicketQuery, View};
use support::{describe, Backend, Db};
use tempfile::TempDir;

on_both_backends!(
    words_accents_and_stems_in_four_languages,
    replies_notes_numbers_customers_and_senders,
    hostile_queries_find_nothing_and_fail_nothing,
    ranking_filters_and_pages,
    messages_older_than_the_index_are_found,
    a_common_word_pages_like_a_rare_one,
    the_api_searches_over_http,
);

async fn fresh(backend: Backend) -> (TempDir, Db, Store) {
    let dir = support::short_tempdir();
    let db = backend.db(dir.path()).await;
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    (dir, db, store)
}

fn pipeline(db: &Db, store: &Store) -> Pipeline {
    let text = format!(
        "[database]\nurl = \"{}\"\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n",
        db.url()
    );
    let config = Config::parse(Path::new("search-test.toml"), &text).expect("config");
    Pipeline::new(&config, store.clone()).expect("pipeline")
}

fn mail(message_id: &str, from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{message_id}>\r\nDate: Tue, 04 Feb 2025 08:21:09 +0100\r\nFrom: {from}\r\n\
         To: support@example.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// One mail through the pipeline (as `ingest`); returns the ticket number.
async fn ingest(
    p: &Pipeline,
    store: &Store,
    id: &str,
    from: &str,
    subject: &str,
    body: &str,
) -> String {
    let registry = store.registry().await.expect("registry");
    let raw = mail(id, from, subject, body);
    let done = p
        .process(
            &RawMessage {
                bytes: &raw,
                source: "stdin",
                source_key: None,
                oversized: None,
            },
            &registry,
        )
        .await
        .expect("process");
    assert!(
        matches!(done.outcome, Outcome::Ticket | Outcome::Followup),
        "{done:?}"
    );
    done.ticket.expect("a ticket")
}

const KOEN: &str = "Koen De Witte <koen.dewitte@delinde.example>";
const JAMES: &str = "James Wright <james.wright@delinde.example>";
const SOPHIE: &str = "Sophie Lambert <sophie.lambert@lestilleuls.example>";
const TOM: &str = "Tom Claes <tom.claes@delinde.example>";

/// The numbers a search finds, best first.
async fn find(store: &Store, text: &str) -> Vec<String> {
    find_with(store, text, TicketQuery::default()).await
}

async fn find_with(store: &Store, text: &str, q: TicketQuery) -> Vec<String> {
    let q = TicketQuery {
        text: Some(text.to_string()),
        limit: if q.limit == 0 { 100 } else { q.limit },
        ..q
    };
    store
        .ticket_page(&q)
        .await
        .unwrap_or_else(|e| panic!("search {text:?}: {e}"))
        .into_iter()
        .map(|t| t.number)
        .collect()
}

/// A desk with one ticket per language; returns (nl, fr, de, en) numbers.
async fn four_languages(db: &Db, store: &Store) -> (String, String, String, String) {
    let p = pipeline(db, store);
    let nl = ingest(
        &p,
        store,
        "nl@delinde.example",
        KOEN,
        "Vraag over de facturen van maart",
        "Goedemorgen,\n\nDe facturen van maart kloppen niet: elke bewoner staat er twee keer op.\nKunnen jullie dit nakijken?\n\nKoen",
    )
    .await;
    let fr = ingest(
        &p,
        store,
        "fr@lestilleuls.example",
        SOPHIE,
        "Imprimantes du deuxième étage",
        "Bonjour,\n\nLes imprimantes du deuxième étage n'impriment plus les bracelets. La catégorie « soins » a été facturé deux fois.\nPouvez-vous regarder ?\n\nSophie",
    )
    .await;
    let de = ingest(
        &p,
        store,
        "de@delinde.example",
        TOM,
        "Unser Drucker druckt nicht mehr",
        "Guten Tag,\n\nseit gestern druckt unser Drucker im Pflegebereich keine Etiketten mehr. Die Fehlermeldung lautet Papierstau, obwohl kein Papier klemmt.\nKönnen Sie helfen?\n\nMit freundlichen Grüßen\nTom Claes",
    )
    .await;
    let en = ingest(
        &p,
        store,
        "en@delinde.example",
        JAMES,
        "Nurse call alarms arrive late",
        "Hello,\n\nSince Monday the nurse call alarms arrive on the handsets about two minutes late on campus Gent.\nCould you look into it?\n\nJames",
    )
    .await;
    (nl, fr, de, en)
}

async fn words_accents_and_stems_in_four_languages(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let (nl, fr, de, en) = four_languages(&db, &store).await;

    // Accents fold both ways.
    assert_eq!(find(&store, "facture soins ").await, [fr.as_str()]);
    assert_eq!(find(&store, "categorie ").await, [fr.as_str()]);
    assert_eq!(find(&store, "CATÉGORIE ").await, [fr.as_str()]);
    assert_eq!(find(&store, "deuxieme etage ").await, [fr.as_str()]);
    // Stems in each language, whichever form is typed.
    assert_eq!(find(&store, "factuur kloppen ").await, [nl.as_str()]);
    assert_eq!(find(&store, "facturen dubbel ").await, Vec::<String>::new());
    assert_eq!(find(&store, "imprimante ").await, [fr.as_str()]);
    assert_eq!(find(&store, "Druckers ").await, [de.as_str()]);
    assert_eq!(find(&store, "alarm ").await, [en.as_str()]);
    assert_eq!(find(&store, "arriving ").await, [en.as_str()]);
    // A word's stem in any of the four languages counts, whatever the
    // ticket's language: the Dutch `factuur` and the French `facturé` are
    // one word to the desk (both stem to `factur`).
    let mut both = find(&store, "factuur ").await;
    both.sort();
    assert_eq!(both, [nl.clone(), fr.clone()]);
    let mut both = find(&store, "facturé ").await;
    both.sort();
    assert_eq!(both, [nl.clone(), fr.clone()]);
    // Every word must occur; the last one is a prefix while typing.
    assert_eq!(find(&store, "nurse hands").await, [en.as_str()]);
    assert_eq!(find(&store, "nurse hands ").await, Vec::<String>::new());
    assert_eq!(find(&store, "imprim").await, [fr.as_str()]);
    assert_eq!(find(&store, "drucker bewoner ").await, Vec::<String>::new());
    // Quoted phrases keep their order.
    assert_eq!(find(&store, "\"kloppen niet\"").await, [nl.as_str()]);
    assert_eq!(find(&store, "\"niet kloppen\"").await, Vec::<String>::new());
    // Words of the automatic acknowledgements are not searched.
    let (_, thread) = store.ticket(&nl).await.expect("ticket");
    assert!(
        thread.iter().any(|m| m.direction == "out"),
        "no acknowledgement"
    );
    let ack = thread.iter().find(|m| m.direction == "out").unwrap();
    assert!(ack.body.contains("TeamViewer"), "{}", ack.body);
    assert_eq!(find(&store, "teamviewer ").await, Vec::<String>::new());
}

async fn replies_notes_numbers_customers_and_senders(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let (nl, fr, de, en) = four_languages(&db, &store).await;
    // An agent's reply and an internal note, written as the workspace does.
    let mut tx = store.begin("CS").await.expect("begin");
    let target = tx.reply_target(&de).await.expect("target");
    for (direction, body) in [
        (
            "out",
            "Guten Tag, bitte starten Sie den Etikettendrucker neu.",
        ),
        (
            "note",
            "Kabelbreuk vermoed bij de printerserver op campus Aalst.",
        ),
    ] {
        tx.add_authored_message(
            target.id,
            &ThreadMessage {
                direction,
                message_id: &format!("{direction}.{de}@example.test"),
                from: "support@example.test",
                subject: &format!("[{de}] Unser Drucker druckt nicht mehr"),
                body,
                outsider: false,
                html: None,
            },
            "agent@desk.example",
        )
        .await
        .expect("authored message");
    }
    tx.commit().await.expect("commit");
    assert_eq!(find(&store, "kabelbreuk ").await, [de.as_str()]);
    assert_eq!(find(&store, "etikettendrucker ").await, [de.as_str()]);
    assert_eq!(find(&store, "printerservers ").await, [de.as_str()]);

    // A ticket's number, with or without its prefix, comes first.
    let id = de
        .rsplit('-')
        .next()
        .unwrap()
        .trim_start_matches('0')
        .to_string();
    assert_eq!(find(&store, &de).await.first(), Some(&de));
    assert_eq!(find(&store, &de.to_lowercase()).await.first(), Some(&de));
    assert_eq!(find(&store, &id).await.first(), Some(&de));
    // A customer, any case; a sender's address; a sender's domain.
    let mut linde = find(&store, "wzc DE linde").await;
    linde.sort();
    let mut expected = vec![nl.clone(), de.clone(), en.clone()];
    expected.sort();
    assert_eq!(linde, expected);
    assert_eq!(
        find(&store, "Tom.Claes@DeLinde.example").await,
        [de.as_str()]
    );
    assert_eq!(find(&store, "@lestilleuls.example").await, [fr.as_str()]);
}

async fn hostile_queries_find_nothing_and_fail_nothing(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let (nl, _fr, de, _en) = four_languages(&db, &store).await;
    for hostile in [
        "\"",
        "*",
        ":",
        "'",
        "&|!",
        "\"\"",
        "''",
        "(",
        ")",
        "-",
        "^",
        "{}",
        "NOT",
        "AND",
        "OR",
        "!()",
        "<->",
        ":*",
        "\\",
        "%",
        "_",
        "%_",
        "' OR 1=1 --",
        "\0",
    ] {
        let found = find(&store, hostile).await;
        assert!(
            found.is_empty() || hostile.chars().any(char::is_alphanumeric),
            "{hostile:?} found {found:?}"
        );
    }
    // Syntax around real words is only a separator.
    for q in [
        "kloppen*",
        "kloppen:",
        "\"kloppen",
        "kloppen'",
        "kloppen&|!",
        "-kloppen",
        "kloppen)",
        "(kloppen",
        "^kloppen",
        "kloppen\"\"",
        "{kloppen}",
        "kloppen\0",
        "facturen <-> kloppen",
        "facturen:* & kloppen",
        "facturen\"kloppen",
    ] {
        assert_eq!(find(&store, q).await, [nl.as_str()], "{q:?}");
    }
    // Words that are syntax elsewhere are only words here (and not in the mail).
    for q in [
        "NEAR(kloppen",
        "body:kloppen",
        "{subject}: kloppen",
        "kloppen AND",
        "kloppen OR facturen",
        "NOT kloppen",
    ] {
        assert_eq!(find(&store, q).await, Vec::<String>::new(), "{q:?}");
    }
    assert_eq!(
        find(&store, "drucker & papierstau | x ").await,
        Vec::<String>::new()
    );
    assert_eq!(find(&store, "drucker&papierstau").await, [de.as_str()]);
    let long = "kloppen ".repeat(500);
    assert_eq!(find(&store, &long).await, [nl.as_str()]);
}

async fn ranking_filters_and_pages(backend: Backend) {
    let (_dir, db, store) = fresh(backend).await;
    let p = pipeline(&db, &store);
    // Oldest first: a subject hit, then two text-only hits.
    let subject = ingest(
        &p,
        &store,
        "r1@delinde.example",
        KOEN,
        "Zorgplan kan niet opgeslagen worden",
        "Er verschijnt een foutmelding bij het bewaren.",
    )
    .await;
    let text_old = ingest(
        &p,
        &store,
        "r2@delinde.example",
        KOEN,
        "Foutmelding bij bewaren",
        "Het zorgplan van kamer 12 kan niet opgeslagen worden.",
    )
    .await;
    let text_new = ingest(
        &p,
        &store,
        "r3@delinde.example",
        KOEN,
        "Opleiding gevraagd",
        "Wij willen een opleiding over het zorgplan voor nieuwe collega's.",
    )
    .await;
    // Subject before text; within each, newest first.
    assert_eq!(
        find(&store, "zorgplan ").await,
        [subject.clone(), text_new.clone(), text_old.clone()]
    );
    // Keyset pages of one continue in the same order.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .ticket_page(&TicketQuery {
                text: Some("zorgplan".into()),
                before_id: before,
                limit: 1,
                ..TicketQuery::default()
            })
            .await
            .expect("page");
        let Some(t) = page.first() else { break };
        pages.push(t.number.clone());
        before = Some(t.id);
        assert!(pages.len() <= 3, "{pages:?}");
    }
    assert_eq!(pages, [subject.clone(), text_new.clone(), text_old.clone()]);
    // The queue's filters still apply.
    let (t, _) = store.ticket(&text_new).await.expect("ticket");
    let other = if t.category == Category::Question {
        Category::Incident
    } else {
        Category::Question
    };
    let in_category = find_with(
        &store,
        "zorgplan",
        TicketQuery {
            category: Some(t.category),
            ..TicketQuery::default()
        },
    )
    .await;
    assert!(in_category.contains(&text_new), "{in_category:?}");
    let elsewhere = find_with(
        &store,
        "zorgplan",
        TicketQuery {
            category: Some(other),
            ..TicketQuery::default()
        },
    )
    .await;
    assert!(!elsewhere.contains(&text_new), "{elsewhere:?}");
    let none = find_with(
        &store,
        "zorgplan",
        TicketQuery {
            customer: Some("Résidence Les Tilleuls".into()),
            view: View::Open,
            ..TicketQuery::default()
        },
    )
    .await;
    assert!(none.is_empty(), "{none:?}");
    // A mail stored after the index exists is found at once, also as a
    // follow-up on an existing ticket.
    assert_eq!(find(&store, "xylofoon ").await, Vec::<String>::new());
    let raw_id = "r4@delinde.example";
    let followup = ingest(
        &p,
        &store,
        raw_id,
        KOEN,
        &format!("Re: [{text_old}] Foutmelding bij bewaren"),
        "Ook de xylofoon in de leefruimte doet het niet meer.",
    )
    .await;
    assert_eq!(followup, text_old);
    assert_eq!(find(&store, "xylofoon ").await, [text_old.as_str()]);
}

/// A database as it was before the search index (migrations up to 0014),
/// with a ticket and its mail; then the store opens it, migrating.
async fn messages_older_than_the_index_are_found(backend: Backend) {
    use sqlx::any::AnyPoolOptions;
    let dir = support::short_tempdir();
    let db = backend.db(dir.path()).await;
    sqlx::any::install_default_drivers();
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url()),
        Backend::Postgres => db.url().to_string(),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    let mut old = match backend {
        Backend::Sqlite => servicedesk::store::sqlite::migrator(),
        Backend::Postgres => servicedesk::store::postgres::migrator(),
    };
    old.migrations = old
        .migrations
        .iter()
        .filter(|m| m.version < 15)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    old.run(&pool)
        .await
        .expect("the migrations before the index");
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO tickets (number, category, status, customer, sender, sender_name, subject, language, \
         evidence, created_at, updated_at) VALUES ('CS-000001', 'question', 'new', 'WZC De Linde', \
         'els.vermeulen@delinde.example', 'Els Vermeulen', 'Facturen van april', 'nl', '{}', \
         '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .expect("an old ticket");
    for (direction, body) in [
        (
            "in",
            "De facturen van april zijn niet aangekomen op de afdeling boekhouding.",
        ),
        (
            "out",
            "Wij hebben uw vraag goed ontvangen onder nummer CS-000001.",
        ),
    ] {
        sqlx::query(
            "INSERT INTO messages (ticket_id, direction, message_id, from_addr, subject, body, created_at) \
             VALUES ($1, $2, $3, 'els.vermeulen@delinde.example', 'Facturen van april', $4, '2025-01-01T00:00:00.000Z')",
        )
        .bind(id)
        .bind(direction)
        .bind(format!("{direction}-old@delinde.example"))
        .bind(body)
        .execute(&pool)
        .await
        .expect("an old message");
    }
    pool.close().await;

    let store = db.store().await;
    // Its words, its stems (`factuur`), and not the acknowledgement's words.
    assert_eq!(find(&store, "boekhouding ").await, ["CS-000001"]);
    assert_eq!(find(&store, "factuur ").await, ["CS-000001"]);
    assert_eq!(find(&store, "aangekomen afdel").await, ["CS-000001"]);
    assert_eq!(find(&store, "ontvangen ").await, Vec::<String>::new());
    // Opening it again changes nothing.
    drop(store);
    let store = db.store().await;
    assert_eq!(find(&store, "factuur ").await, ["CS-000001"]);
    drop(dir);
}

/// More matching messages than SQLite's first reading window (2,000): the
/// newest tickets first, an old ticket whose new message matches in its
/// place, the newest ticket whose only match is an old message moved to it
/// (as a merge does) first, a filter that leaves few, every page in order.
async fn a_common_word_pages_like_a_rare_one(backend: Backend) {
    let (_dir, _db, store) = fresh(backend).await;
    let n: i64 = 2_500;
    let mut tx = store.pool().begin().await.expect("begin");
    for i in 1..=n + 1 {
        let customer = if i % 100 == 0 {
            "Rare Customer"
        } else {
            "WZC De Linde"
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tickets (number, category, status, customer, sender, sender_name, subject, language, \
             evidence, created_at, updated_at) VALUES ($1, 'incident', 'open', $2, 'koen.dewitte@delinde.example', \
             'Koen', $3, 'nl', '{}', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z') RETURNING id",
        )
        .bind(format!("CS-{i:06}"))
        .bind(customer)
        .bind(format!("Melding {i}"))
        .fetch_one(&mut *tx)
        .await
        .expect("ticket");
        assert_eq!(id, i);
        let body = if i == 1 || i == n + 1 {
            "Een melding zonder dat woord."
        } else {
            "De printer is kapot."
        };
        sqlx::query(
            "INSERT INTO messages (ticket_id, direction, message_id, from_addr, subject, body, created_at) \
             VALUES ($1, 'in', $2, 'koen.dewitte@delinde.example', $3, $4, '2025-01-01T00:00:00.000Z')",
        )
        .bind(i)
        .bind(format!("m{i}@delinde.example"))
        .bind(format!("Melding {i}"))
        .bind(body)
        .execute(&mut *tx)
        .await
        .expect("message");
    }
    // The oldest ticket's newest message is the one that matches.
    sqlx::query(
        "INSERT INTO messages (ticket_id, direction, message_id, from_addr, subject, body, created_at) \
         VALUES (1, 'in', 'late@delinde.example', 'koen.dewitte@delinde.example', 'Re: Melding 1', \
         'Nu is ook de printer kapot.', '2025-01-02T00:00:00.000Z')",
    )
    .execute(&mut *tx)
    .await
    .expect("late message");
    // A merge moves ticket 2's (old, matching) message to the newest ticket.
    sqlx::query("UPDATE messages SET ticket_id = $1 WHERE ticket_id = 2")
        .bind(n + 1)
        .execute(&mut *tx)
        .await
        .expect("move");
    tx.commit().await.expect("commit");

    let first = find_with(
        &store,
        "printer ",
        TicketQuery {
            limit: 50,
            ..TicketQuery::default()
        },
    )
    .await;
    let expected: Vec<String> = (n - 48..=n + 1)
        .rev()
        .map(|i| format!("CS-{i:06}"))
        .collect();
    assert_eq!(first, expected);
    let rare = find_with(
        &store,
        "printer ",
        TicketQuery {
            customer: Some("Rare Customer".into()),
            limit: 50,
            ..TicketQuery::default()
        },
    )
    .await;
    let expected: Vec<String> = (1..=n / 100)
        .rev()
        .map(|i| format!("CS-{:06}", i * 100))
        .collect();
    assert_eq!(rare, expected);
    // Every page, 400 at a time: all tickets once, newest first, the old
    // one last.
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .ticket_page(&TicketQuery {
                text: Some("printer ".into()),
                before_id: before,
                limit: 400,
                ..TicketQuery::default()
            })
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        all.extend(page.iter().map(|t| t.id));
        assert!(all.len() as i64 <= n, "more than every ticket");
    }
    let expected: Vec<i64> = (1..=n + 1).rev().filter(|i| *i != 2).collect();
    assert_eq!(all, expected);
}

/// `GET /api/tickets?q=` and the queue page's search through the real binary.
async fn the_api_searches_over_http(backend: Backend) {
    let (dir, db, store) = fresh(backend).await;
    let (nl, fr, _de, _en) = four_languages(&db, &store).await;
    drop(store);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let config = dir.path().join("servicedesk.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n",
            db.url()
        ),
    )
    .expect("config");
    let cli = |args: &[&str], stdin: Option<&[u8]>| {
        let out = support::run_servicedesk(&config, dir.path(), args, stdin);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    cli(
        &[
            "agents",
            "add",
            "an@desk.example",
            "--name",
            "An",
            "--role",
            "agent",
        ],
        Some(b"Corr3ct-Horse-Battery\n"),
    );
    let token = cli(&["agents", "token", "an@desk.example"], None)
        .trim()
        .to_string();
    let _child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_servicedesk"))
            .arg("--config")
            .arg(&config)
            .arg("web")
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("servicedesk web"),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(std::time::Instant::now() < deadline, "no /healthz");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let get = |q: &'static str| api_search(&http, &base, &token, q);
    assert_eq!(get("kloppen").await, [nl.as_str()]);
    assert_eq!(get("categorie").await, [fr.as_str()]);
    assert_eq!(
        api_search(&http, &base, &token, &fr).await.first(),
        Some(&fr)
    );
    for hostile in ["\"", "*", "NEAR(", ":", "'", "&|!"] {
        let found = get(hostile).await;
        assert!(
            found.is_empty() || hostile == "NEAR(",
            "{hostile:?} found {found:?}"
        );
    }
    // The CLI searches the same way.
    let listed = cli(&["tickets", "list", "--json", "--q", "imprimantes"], None);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["number"], fr.as_str());
}

/// Ends the server when the test ends, also when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn api_search(http: &reqwest::Client, base: &str, token: &str, q: &str) -> Vec<String> {
    let r = http
        .get(format!("{base}/api/tickets"))
        .query(&[("q", q)])
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /api/tickets");
    assert_eq!(r.status(), reqwest::StatusCode::OK, "q={q:?}");
    let list: serde_json::Value = r.json().await.expect("JSON");
    list.as_array()
        .expect("an array")
        .iter()
        .map(|t| t["number"].as_str().unwrap().to_string())
        .collect()
}
