//! The registry shrinks and changes: a customer made active again resumes
//! its tickets on hold and tells each writer once; a person left out of a
//! `persons import --replace` or removed is no longer registered (kept on
//! their tickets); the lists and `registry export` give the CSVs back,
//! round trip identical. The real binary for the commands, real servers for
//! the mail, on both databases.

mod support;

use servicedesk::daemon;
use support::{describe, run_servicedesk, Backend, MailServers, Options};

const SOPHIE: &str = "sophie.lambert@lestilleuls.example";
const MARC: &str = "marc.dupont@lestilleuls.example";
const TILLEULS: &str = "Résidence Les Tilleuls";

fn mail(id: &str, from: &str, subject: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}>\r\nFrom: <{from}>\r\nTo: support@example.test\r\nSubject: {subject}\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour, le dossier de soins ne s'ouvre plus depuis ce matin.\r\n"
    )
    .into_bytes()
}

async fn registry_shrinks_and_changes(backend: Backend) {
    let servers = MailServers::start();
    let db = backend.db(servers.dir()).await;
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let config = support::config_with(&servers, &db, &Options::default());
    let cli = |args: &[&str]| {
        let out = run_servicedesk(&config.path, servers.dir(), args, None);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let run = || async {
        let s = daemon::run_once(&config).await.expect("run_once");
        assert_eq!((s.replies_pending, s.replies_failed), (0, 0), "{s:?}");
        s
    };

    // A suspended customer's mail waits on hold.
    servers
        .append(
            "INBOX",
            &mail(
                "held-1@lestilleuls.example",
                SOPHIE,
                "Dossier de soins bloqué",
            ),
        )
        .await;
    run().await;
    let number = store.tickets(&Default::default()).await.unwrap()[0]
        .number
        .clone();
    assert_eq!(store.ticket(&number).await.unwrap().0.status, "on_hold");

    // Active again (the name in any case): back in the queue, one notice to the writer.
    let out = cli(&[
        "customers",
        "set",
        "RÉSIDENCE LES TILLEULS",
        "--status",
        "active",
    ]);
    assert!(out.contains(&number), "{out}");
    let (t, thread) = store.ticket(&number).await.unwrap();
    assert_eq!(t.status, "new");
    assert!(
        thread
            .iter()
            .any(|m| m.direction == "out" && m.subject.contains("Reprise")),
        "{thread:?}"
    );
    run().await;
    let resumed: Vec<_> = servers
        .sent()
        .into_iter()
        .filter(|s| s.notice.as_deref() == Some("resumed"))
        .collect();
    assert_eq!(resumed.len(), 1, "{resumed:#?}");
    assert_eq!(resumed[0].rcpt, [SOPHIE]);
    assert!(resumed[0].subject.contains(&format!("[{number}]")));
    assert!(resumed[0].answers("held-1@lestilleuls.example"));
    // Once: setting it active again resumes nothing more.
    assert!(!cli(&["customers", "set", TILLEULS, "--status", "active"]).contains(&number));
    run().await;
    assert_eq!(
        servers
            .sent()
            .iter()
            .filter(|s| s.notice.as_deref() == Some("resumed"))
            .count(),
        1
    );

    // Marc is left out of a --replace import of his customer: no longer registered.
    let persons = servers.dir().join("tilleuls.csv");
    std::fs::write(
        &persons,
        format!("email,name,customer,campus,role,language\n{SOPHIE},Sophie Lambert,{TILLEULS},,general,fr\n"),
    )
    .unwrap();
    let out = cli(&["persons", "import", persons.to_str().unwrap(), "--replace"]);
    assert!(out.contains("1 deactivated"), "{out}");
    assert!(cli(&["persons", "list", "--customer", TILLEULS]).contains("(deactivated)"));
    let json: serde_json::Value =
        serde_json::from_str(&cli(&["persons", "list", "--json"])).unwrap();
    let marc = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["email"] == MARC)
        .expect("Marc kept");
    assert_eq!(marc["active"], false);
    servers
        .append(
            "INBOX",
            &mail("marc-1@lestilleuls.example", MARC, "Question"),
        )
        .await;
    run().await;
    let intake = store.intake().await.unwrap();
    let rec = intake
        .iter()
        .find(|r| r.message_id == "marc-1@lestilleuls.example")
        .unwrap();
    assert_eq!(rec.outcome, "unregistered", "{rec:?}");
    let check = run_servicedesk(&config.path, servers.dir(), &["registry", "check"], None);
    assert_eq!(check.status.code(), Some(1), "{}", describe(&check));

    // persons remove: the same, for one address.
    cli(&["persons", "remove", SOPHIE]);
    let out = run_servicedesk(
        &config.path,
        servers.dir(),
        &["persons", "remove", SOPHIE],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));

    // Export, import, export: identical, and the import changes nothing.
    let dir = servers.dir().join("export");
    cli(&["registry", "export", dir.to_str().unwrap()]);
    let first = (
        std::fs::read_to_string(dir.join("customers.csv")).unwrap(),
        std::fs::read_to_string(dir.join("persons.csv")).unwrap(),
    );
    assert!(
        first.0.starts_with("customer,contract_status,campuses\n"),
        "{}",
        first.0
    );
    assert!(
        first.0.contains(&format!("{TILLEULS},active,")),
        "{}",
        first.0
    );
    assert!(
        !first.1.contains(MARC) && !first.1.contains(SOPHIE),
        "{}",
        first.1
    );
    let out = cli(&[
        "customers",
        "import",
        dir.join("customers.csv").to_str().unwrap(),
    ]);
    assert!(out.contains("0 added, 0 updated"), "{out}");
    let out = cli(&[
        "persons",
        "import",
        dir.join("persons.csv").to_str().unwrap(),
    ]);
    assert!(out.contains("0 added, 0 updated"), "{out}");
    cli(&["registry", "export", dir.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(dir.join("customers.csv")).unwrap(),
        first.0
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("persons.csv")).unwrap(),
        first.1
    );
    let customers: serde_json::Value =
        serde_json::from_str(&cli(&["customers", "list", "--json"])).unwrap();
    assert_eq!(customers.as_array().unwrap().len(), 2, "{customers}");
}

#[tokio::test]
async fn registry_shrinks_and_changes_sqlite() {
    registry_shrinks_and_changes(Backend::Sqlite).await;
}

#[tokio::test]
async fn registry_shrinks_and_changes_postgres() {
    registry_shrinks_and_changes(Backend::Postgres).await;
}
