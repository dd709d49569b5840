//! The `servicedesk` binary as an operator and an MTA use it: imports,
//! registry check, ingest on stdin, JSON listings, exit codes, the demo.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::describe;
use tempfile::TempDir;

/// A temporary folder with a configuration on SQLite in it.
struct Desk {
    dir: TempDir,
    config: PathBuf,
}

impl Desk {
    fn new() -> Desk {
        Self::with_database_url(None)
    }

    /// `url` replaces the SQLite database in the folder.
    fn with_database_url(url: Option<&str>) -> Desk {
        let dir = support::short_tempdir();
        let url = url
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("desk.db").display()));
        let config = dir.path().join("servicedesk.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{url}\"\n\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n"
            ),
        )
        .expect("write the configuration");
        Desk { dir, config }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file into the folder and returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write a test file");
        p
    }

    /// Runs `servicedesk --config FILE ARGS...`, with `stdin` piped in.
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        support::run_servicedesk(&self.config, self.path(), args, stdin)
    }

    /// Runs and insists on exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8(out.stdout).expect("stdout is UTF-8")
    }

    /// `ARGS --json`, parsed; must be one JSON array.
    fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items,
            other => panic!("{args:?} did not print one JSON array: {other:?}\n{text}"),
        }
    }
}

const CUSTOMERS: &str = "\
customer,contract_status,campuses,account_manager
WZC De Linde,active,Gent;Aalst,Jan
Résidence Les Tilleuls,suspended,,Luc
";

/// Covers everything but campus Aalst and Les Tilleuls' technical contact.
const PERSONS_WITH_GAPS: &str = "\
email,name,customer,campus,role,language
an.peeters@delinde.example,An Peeters,WZC De Linde,Gent,campus,nl
els.vermeulen@delinde.example,Els Vermeulen,WZC De Linde,,general,nl
tom.claes@delinde.example,Tom Claes,WZC De Linde,,technical,nl
sophie.lambert@lestilleuls.example,Sophie Lambert,Résidence Les Tilleuls,,general,fr
";

const PERSONS_COMPLETE: &str = "\
email,name,customer,campus,role,language
an.peeters@delinde.example,An Peeters,WZC De Linde,Gent,campus,nl
els.vermeulen@delinde.example,Els Vermeulen,WZC De Linde,,general,nl
tom.claes@delinde.example,Tom Claes,WZC De Linde,,technical,nl
sophie.lambert@lestilleuls.example,Sophie Lambert,Résidence Les Tilleuls,,general,fr
koen.dewitte@delinde.example,Koen De Witte,WZC De Linde,Aalst,campus,nl
marc.dupont@lestilleuls.example,Marc Dupont,Résidence Les Tilleuls,,technical,fr
";

#[test]
fn imports_are_idempotent_and_a_bad_file_changes_nothing() {
    let desk = Desk::new();
    let customers = desk.file("customers.csv", CUSTOMERS);
    let customers = customers.to_str().unwrap();

    let first = desk.ok(&["customers", "import", customers]);
    assert!(first.contains("2 added"), "{first}");
    let second = desk.ok(&["customers", "import", customers]);
    assert!(
        second.contains("0 added") && second.contains("2 unchanged"),
        "{second}"
    );

    // Line 2 is bad; the good lines after it must not be imported either.
    let bad = desk.file(
        "persons.csv",
        "email,name,customer,campus,role,language\n\
         an.peeters@delinde.example,An Peeters,WZC De Linde,Gent,boss,nl\n\
         els.vermeulen@delinde.example,Els Vermeulen,WZC De Linde,,general,nl\n",
    );
    let out = desk.run(&["persons", "import", bad.to_str().unwrap()], None);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("persons.csv"), "names the file: {err}");
    assert!(err.contains("boss"), "says what is wrong: {err}");

    let gaps = desk.run(&["registry", "check"], None);
    let gaps = String::from_utf8_lossy(&gaps.stdout);
    assert!(
        gaps.contains("WZC De Linde: no general reference person"),
        "nothing was imported: {gaps}"
    );

    let good = desk.file("persons-good.csv", PERSONS_COMPLETE);
    let good = good.to_str().unwrap();
    let out = desk.ok(&["persons", "import", good]);
    assert!(out.contains("6 added"), "{out}");
    let out = desk.ok(&["persons", "import", good]);
    assert!(
        out.contains("0 added") && out.contains("6 unchanged"),
        "{out}"
    );
}

#[test]
fn registry_check_lists_gaps_until_covered() {
    let desk = Desk::new();
    let customers = desk.file("customers.csv", CUSTOMERS);
    desk.ok(&["customers", "import", customers.to_str().unwrap()]);
    let partial = desk.file("persons.csv", PERSONS_WITH_GAPS);
    desk.ok(&["persons", "import", partial.to_str().unwrap()]);

    let out = desk.run(&["registry", "check"], None);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Aalst"), "{text}");
    assert!(
        text.contains("Résidence Les Tilleuls") && text.contains("technical"),
        "{text}"
    );
    assert!(!text.contains("Gent"), "Gent is covered: {text}");

    let complete = desk.file("persons-complete.csv", PERSONS_COMPLETE);
    desk.ok(&["persons", "import", complete.to_str().unwrap()]);
    let out = desk.run(&["registry", "check"], None);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

const KOEN_MAIL: &str = "Message-ID: <cli-ingest-1@delinde.example>\r\n\
Date: Tue, 04 Feb 2025 08:21:09 +0100\r\n\
From: Koen De Witte <Koen.DeWitte@delinde.example>\r\n\
To: Care Solutions Servicedesk <support@example.test>\r\n\
Subject: Foutmelding bij opslaan zorgplan\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
\r\n\
Dag servicedesk,\r\n\
\r\n\
Bij het opslaan van een zorgplan krijgen we sinds gisteren een foutmelding:\r\n\
\"Fout ZP-2041: Het zorgplan kon niet worden opgeslagen.\" Het gebeurt bij elke\r\n\
bewoner op campus Aalst. Kunnen jullie dit nakijken?\r\n\
\r\n\
Koen De Witte\r\n";

#[test]
fn ingest_makes_a_ticket_that_the_json_listings_show() {
    let desk = Desk::new();
    let customers = desk.file("customers.csv", CUSTOMERS);
    desk.ok(&["customers", "import", customers.to_str().unwrap()]);
    let persons = desk.file("persons.csv", PERSONS_COMPLETE);
    desk.ok(&["persons", "import", persons.to_str().unwrap()]);

    assert!(desk.json(&["tickets", "list"]).is_empty());
    assert!(desk.json(&["intake", "list"]).is_empty());

    let out = desk.run(&["ingest"], Some(KOEN_MAIL.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let tickets = desk.json(&["tickets", "list"]);
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let t = &tickets[0];
    for key in [
        "number",
        "category",
        "chargeable",
        "chargeable_reason",
        "status",
        "customer",
        "charge_approved",
        "sender",
        "subject",
        "language",
        "message_ids",
        "created_at",
    ] {
        assert!(t.get(key).is_some(), "ticket lacks {key}: {t:#}");
    }
    assert_eq!(t["number"], "CS-000001");
    assert_eq!(t["category"], "incident");
    assert_eq!(t["chargeable"], false);
    assert_eq!(t["chargeable_reason"], Value::Null);
    assert_eq!(t["status"], "new");
    assert_eq!(t["customer"], "WZC De Linde");
    assert_eq!(t["charge_approved"], Value::Null);
    assert_eq!(t["sender"], "koen.dewitte@delinde.example");
    assert_eq!(t["subject"], "Foutmelding bij opslaan zorgplan");
    assert_eq!(t["language"], "nl");
    assert_eq!(
        t["message_ids"],
        serde_json::json!(["cli-ingest-1@delinde.example"])
    );
    let created = t["created_at"].as_str().expect("created_at is a string");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "created_at is not RFC 3339: {created}"
    );

    let filtered = desk.json(&["tickets", "list", "--category", "incident"]);
    assert_eq!(filtered.len(), 1);
    assert!(desk
        .json(&["tickets", "list", "--category", "question"])
        .is_empty());

    let intake = desk.json(&["intake", "list"]);
    assert_eq!(intake.len(), 1, "{intake:#?}");
    let i = &intake[0];
    for key in ["message_id", "from", "outcome", "ticket", "detail"] {
        assert!(i.get(key).is_some(), "intake record lacks {key}: {i:#}");
    }
    assert_eq!(i["message_id"], "cli-ingest-1@delinde.example");
    assert_eq!(i["outcome"], "ticket");
    assert_eq!(i["ticket"], "CS-000001");

    // The MTA delivers the same message again: accepted, no second ticket.
    let out = desk.run(&["ingest"], Some(KOEN_MAIL.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(desk.json(&["tickets", "list"]).len(), 1);
    let intake = desk.json(&["intake", "list"]);
    assert_eq!(intake.len(), 2);
    assert_eq!(intake[1]["outcome"], "duplicate");

    // The human form lists the ticket in its queue.
    let text = desk.ok(&["tickets", "list"]);
    assert!(text.contains("CS-000001"), "{text}");
}

#[test]
fn ingest_without_a_database_asks_the_mta_to_retry() {
    let desk = Desk::with_database_url(Some("postgres://root@127.0.0.1:1/x"));
    let out = desk.run(&["ingest"], Some(KOEN_MAIL.as_bytes()));
    assert_eq!(out.status.code(), Some(75), "{}", describe(&out));
}

#[test]
fn demo_runs_and_prints_the_queues() {
    let dir = support::short_tempdir();
    let out_dir = dir.path().join("demo-out");
    let out = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
        .arg("demo")
        .arg("--dir")
        .arg(&out_dir)
        .current_dir(dir.path())
        .env_remove("SERVICEDESK_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("cannot start the servicedesk binary");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Queues:"), "{text}");
    for queue in ["question (", "incident (", "change (", "feedback ("] {
        assert!(text.contains(queue), "no {queue} queue: {text}");
    }
    assert!(text.contains("CS-000001"), "{text}");
    let replies = std::fs::read_dir(out_dir.join("replies"))
        .expect("the demo writes its replies")
        .count();
    assert!(replies > 0, "no replies written");
    // The demo's agent, to open the result in the workspace.
    assert!(
        text.contains("web, then open http://127.0.0.1:8080"),
        "{text}"
    );
    let agents = support::run_servicedesk(
        &out_dir.join("demo.toml"),
        dir.path(),
        &["agents", "list"],
        None,
    );
    assert!(
        String::from_utf8_lossy(&agents.stdout).contains("demo@example.test"),
        "{}",
        describe(&agents)
    );
}

/// A reply another live sender has claimed (a second daemon on the same
/// database) is not due before the claim runs out: `run --once` leaves it
/// queued (exit 75) after a look or two, rather than asking the database
/// again and again, without sleeping, for as long as it is willing to wait.
#[test]
fn run_once_sleeps_while_another_sender_holds_a_reply() {
    let desk = Desk::new();
    let customers = desk.file("customers.csv", CUSTOMERS);
    let persons = desk.file("persons.csv", PERSONS_COMPLETE);
    desk.ok(&["customers", "import", customers.to_str().unwrap()]);
    desk.ok(&["persons", "import", persons.to_str().unwrap()]);
    let out = desk.run(&["ingest"], Some(KOEN_MAIL.as_bytes()));
    assert!(out.status.success(), "{}", describe(&out));
    let replies = desk.path().join("replies");
    let mut config = std::fs::read_to_string(&desk.config).unwrap();
    config.push_str(&format!(
        "\n[file_transport]\ndir = \"{}\"\nfrom = \"support@example.test\"\n\n[outbox]\nonce_wait_secs = 3\n",
        replies.display()
    ));
    std::fs::write(&desk.config, config).unwrap();

    // Another daemon, on another machine, holds the reply for two minutes.
    let db = desk.path().join("desk.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let until = chrono::Utc::now() + chrono::Duration::seconds(120);
        let until = until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let n = sqlx::query(
            "UPDATE outbox SET claimed_until = $1, claimed_by = 'other-machine:4242:0badcafe'",
        )
        .bind(until)
        .execute(&mut conn)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(n, 1);
    });

    let out = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
        .arg("--config")
        .arg(&desk.config)
        .args(["run", "--once"])
        .current_dir(desk.path())
        .env("SERVICEDESK_LOG", "servicedesk=debug")
        .output()
        .expect("run --once");
    assert_eq!(out.status.code(), Some(75), "{}", describe(&out));
    let passes = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("outbox pass"))
        .count();
    assert!(
        (1..=4).contains(&passes),
        "{passes} outbox passes for one held reply\n{}",
        describe(&out)
    );
    assert!(
        !replies.exists() || std::fs::read_dir(&replies).unwrap().count() == 0,
        "sent a reply another sender holds"
    );
}

/// The PostgreSQL password from `password_env` reaches the server (the
/// commands work) and never the screen: not when the server is there, not
/// when it is unreachable.
#[test]
fn the_database_password_comes_from_the_environment_and_is_never_shown() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(support::Db::postgres());
    const PASSWORD: &str = "n0t-on-screen-7731";
    for (url, works) in [
        (db.url().to_string(), true),
        ("postgres://root@127.0.0.1:1/nowhere".to_string(), false),
    ] {
        let desk = Desk::with_database_url(Some(&url));
        let mut config = std::fs::read_to_string(&desk.config).unwrap();
        config = config.replace(
            &format!("url = \"{url}\"\n"),
            &format!("url = \"{url}\"\npassword_env = \"SERVICEDESK_DB_PASSWORD\"\n"),
        );
        std::fs::write(&desk.config, config).unwrap();
        let customers = desk.file("customers.csv", CUSTOMERS);
        let out = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
            .arg("--config")
            .arg(&desk.config)
            .args(["customers", "import", customers.to_str().unwrap()])
            .env("SERVICEDESK_DB_PASSWORD", PASSWORD)
            .env("SERVICEDESK_LOG", "debug")
            .output()
            .expect("customers import");
        assert_eq!(out.status.success(), works, "{url}: {}", describe(&out));
        let all = describe(&out);
        assert!(!all.contains(PASSWORD), "the password was shown:\n{all}");
        if !works {
            assert!(all.contains("postgres://root@127.0.0.1:1/nowhere"), "{all}");
        }
    }
}

/// `[log] format = "json"`: every log line is one JSON object with the
/// level, the message and the event's fields (journald and log shippers
/// read them as fields); a wrong format is refused with the fix.
#[test]
fn logs_are_json_lines_when_asked() {
    let desk = Desk::new();
    let customers = desk.file("customers.csv", CUSTOMERS);
    desk.ok(&["customers", "import", customers.to_str().unwrap()]);
    let persons = desk.file("persons.csv", PERSONS_COMPLETE);
    desk.ok(&["persons", "import", persons.to_str().unwrap()]);
    let maildir = desk.path().join("maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("new/1.eml"), KOEN_MAIL).unwrap();
    let mut config = std::fs::read_to_string(&desk.config).unwrap();
    config.push_str(&format!(
        "\n[maildir]\npath = \"{}\"\n\n[file_transport]\ndir = \"{}\"\nfrom = \"support@example.test\"\n\n[log]\nformat = \"json\"\n",
        maildir.display(),
        desk.path().join("sent").display()
    ));
    std::fs::write(&desk.config, &config).unwrap();
    let out = desk.run(&["run", "--once"], None);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let events: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let processed = events
        .iter()
        .find(|e| e["message"] == "message processed")
        .unwrap_or_else(|| panic!("no 'message processed' event:\n{stderr}"));
    assert_eq!(processed["level"], "INFO", "{processed}");
    assert_eq!(processed["outcome"], "ticket", "{processed}");
    assert_eq!(processed["ticket"], "CS-000001", "{processed}");
    // Only the summary line of `run --once` is plain text.
    assert!(
        stderr
            .lines()
            .filter(|l| !l.starts_with('{'))
            .all(|l| l.starts_with("processed ")),
        "{stderr}"
    );

    std::fs::write(&desk.config, config.replace("\"json\"", "\"xml\"")).unwrap();
    let out = desk.run(&["tickets", "list"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 16: `xml` is not allowed here: use text, json"),
        "{err}"
    );
}
