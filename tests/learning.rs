//! `train`, `eval` and the correction loop, on the real binary with a tiny
//! labelled corpus: a model trained on it sorts its mail as labelled, `eval`
//! reports the figures, the same inputs give the same model bytes, and a
//! ticket an agent corrects is learnt by `train --corrections-from` and
//! sorts the same mail the corrected way afterwards; and the running daemon
//! retrains on agents' corrections by itself, judges the new model on the
//! held-out mail, and sorts with it without a restart (and goes back with
//! `model use builtin`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use servicedesk::learn::{self, Sorting};
use servicedesk::triage::model::Model;
use tempfile::TempDir;

/// One labelled mail of the tiny corpus.
struct Labelled {
    file: &'static str,
    category: &'static str,
    /// Empty when the request is within the contract.
    reason: &'static str,
    language: &'static str,
    subject: &'static str,
    text: &'static str,
}

/// Two mails per category, in three languages; every one clear-cut.
const CORPUS: &[Labelled] = &[
    Labelled {
        file: "nl-incident.eml",
        category: "incident",
        reason: "",
        language: "nl",
        subject: "Storing medicatiemodule",
        text: "Sinds vanochtend werkt de medicatiemodule niet meer. Bij het openen krijgen \
              we een foutmelding en niemand kan nog medicatie registreren.",
    },
    Labelled {
        file: "fr-incident.eml",
        category: "incident",
        reason: "",
        language: "fr",
        subject: "Panne du planning",
        text: "Le module de planning ne fonctionne plus depuis ce matin. Nous avons un \
              message d'erreur à chaque ouverture et personne ne peut travailler.",
    },
    Labelled {
        file: "nl-question.eml",
        category: "question",
        reason: "",
        language: "nl",
        subject: "Vraag over export",
        text: "Hoe kan ik een lijst van alle bewoners exporteren naar Excel? Ik vind de \
              knop niet terug in het menu van de afdeling.",
    },
    Labelled {
        file: "fr-question.eml",
        category: "question",
        reason: "",
        language: "fr",
        subject: "Question sur les droits d'accès",
        text: "Comment puis-je donner accès au dossier de soins à une nouvelle infirmière ? \
              Je ne trouve pas l'option dans les paramètres.",
    },
    Labelled {
        file: "nl-change.eml",
        category: "change",
        reason: "change_request",
        language: "nl",
        subject: "Nieuw veld in het zorgdossier",
        text: "Wij willen graag een extra veld toevoegen aan het zorgdossier voor de \
              voorkeuren van de bewoner. Kunnen jullie een offerte maken voor deze aanpassing?",
    },
    Labelled {
        file: "en-change.eml",
        category: "change",
        reason: "change_request",
        language: "en",
        subject: "Request for a new field",
        text: "We would like to add a new field to the wound care form for the location of \
              the wound. Could you send us a quote for this change?",
    },
    Labelled {
        file: "nl-feedback.eml",
        category: "feedback",
        reason: "",
        language: "nl",
        subject: "Bedankt",
        text: "Hartelijk dank voor de snelle hulp gisteren, alles werkt weer perfect. Ons \
              team is heel tevreden over jullie ondersteuning.",
    },
    Labelled {
        file: "en-feedback.eml",
        category: "feedback",
        reason: "",
        language: "en",
        subject: "Thank you",
        text: "Many thanks for the quick help yesterday, everything works again. The whole \
              team is very happy with your support.",
    },
];

/// The mail of the correction loop: the rules and a model of the corpus
/// alone read an incident (an error message), the agent a question (a
/// session that ran out is no fault).
const CORRECTED_SUBJECT: &str = "Foutmelding bij openen planning";
const CORRECTED_TEXT: &str = "Bij het openen van de planning krijgen we een melding dat \
     de sessie verlopen is. Moeten we dan telkens opnieuw inloggen?";
const CORRECTED_TO: &str = "question";

const CUSTOMERS: &str = "customer,contract_status,campuses\nWZC De Linde,active,Gent\n";
const PERSONS: &str = "email,name,customer,campus,role,language\n\
     an.peeters@delinde.example,An Peeters,WZC De Linde,Gent,campus,nl\n";

/// A mail from An Peeters of WZC De Linde, a registered person.
fn mail(message_id: &str, subject: &str, text: &str) -> String {
    format!(
        "Message-ID: <{message_id}@delinde.example>\r\n\
         Date: Tue, 04 Feb 2025 08:21:09 +0100\r\n\
         From: An Peeters <an.peeters@delinde.example>\r\n\
         To: Care Solutions Servicedesk <support@example.test>\r\n\
         Subject: {subject}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=\"utf-8\"\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         {text}\r\n"
    )
}

/// A temporary folder with the tiny corpus (`corpus/labels.csv` and its
/// mails) and a configuration on SQLite.
struct Desk {
    dir: TempDir,
}

impl Desk {
    fn new() -> Desk {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let corpus = dir.path().join("corpus");
        std::fs::create_dir(&corpus).expect("create the corpus folder");
        let mut labels = String::from("file,category,chargeable_reason,language\n");
        for (i, l) in CORPUS.iter().enumerate() {
            let raw = mail(&format!("corpus-{i}"), l.subject, l.text);
            std::fs::write(corpus.join(l.file), raw).expect("write a corpus mail");
            labels.push_str(&format!(
                "{},{},{},{}\n",
                l.file, l.category, l.reason, l.language
            ));
        }
        std::fs::write(corpus.join("labels.csv"), labels).expect("write the labels");
        let desk = Desk { dir };
        desk.configure(None);
        desk
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn labels(&self) -> PathBuf {
        self.path().join("corpus/labels.csv")
    }

    fn config(&self) -> PathBuf {
        self.path().join("servicedesk.toml")
    }

    fn database(&self) -> String {
        format!("sqlite://{}", self.path().join("desk.db").display())
    }

    /// (Re)writes the configuration; `model` replaces the built-in model.
    fn configure(&self, model: Option<&Path>) {
        let triage = model
            .map(|m| format!("\n[triage]\nmodel_file = \"{}\"\n", m.display()))
            .unwrap_or_default();
        std::fs::write(
            self.config(),
            format!(
                "[database]\nurl = \"{}\"\n\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n{triage}",
                self.database()
            ),
        )
        .expect("write the configuration");
    }

    /// Runs `servicedesk --config FILE ARGS...` in the folder.
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        support::run_servicedesk(&self.config(), self.path(), args, stdin)
    }

    /// Runs and insists on exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            support::describe(&out)
        );
        String::from_utf8(out.stdout).expect("stdout is UTF-8")
    }

    /// `train` on the tiny corpus into `out`, with more arguments; returns stdout.
    fn train(&self, out: &str, more: &[&str]) -> String {
        let labels = self.labels();
        let mut args = vec!["train", "--labels", labels.to_str().unwrap(), "--out", out];
        args.extend_from_slice(more);
        self.ok(&args)
    }

    /// `eval` on the tiny corpus with `labels` (a file in the corpus folder).
    fn eval(&self, labels: &str, more: &[&str]) -> String {
        let corpus = self.path().join("corpus");
        let labels = corpus.join(labels);
        let mut args = vec!["eval", corpus.to_str().unwrap(), labels.to_str().unwrap()];
        args.extend_from_slice(more);
        self.ok(&args)
    }

    /// Reads one mail in through `ingest`; returns the category of its ticket.
    fn ingest(&self, message_id: &str) -> String {
        let raw = mail(message_id, CORRECTED_SUBJECT, CORRECTED_TEXT);
        let out = self.run(&["ingest"], Some(raw.as_bytes()));
        assert_eq!(
            out.status.code(),
            Some(0),
            "ingest: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tickets: Value =
            serde_json::from_str(&self.ok(&["tickets", "list", "--json"])).expect("JSON");
        let newest = tickets
            .as_array()
            .expect("a JSON array")
            .iter()
            .max_by_key(|t| t["number"].as_str().unwrap_or("").to_string())
            .expect("a ticket");
        newest["category"].as_str().expect("a category").to_string()
    }
}

#[test]
fn train_writes_a_model_that_sorts_its_corpus_as_labelled() {
    let desk = Desk::new();
    let out = desk.train("model.bin", &[]);
    assert!(
        out.contains("agent corrections: none")
            && out.contains("trained on 8 corpus mails and 0 agent corrections"),
        "{out}"
    );
    assert!(
        !desk.path().join("desk.db").exists(),
        "train opened a database it was not given"
    );

    let bytes = std::fs::read(desk.path().join("model.bin")).expect("the model file");
    let model = Model::from_bytes(&bytes).expect("the model loads");
    assert_eq!(model.trained_on, 8);
    let set = learn::load_labels(&desk.path().join("corpus"), &desk.labels()).unwrap();
    let rules = Sorting::builtin().unwrap().rules;
    let report = learn::evaluate(&rules, Some(&model), &set).unwrap();
    assert_eq!(
        report.category_correct, 8,
        "sorted differently from the labels: {:?}",
        report.mistakes
    );
    assert!(report.mistakes.is_empty(), "{:?}", report.mistakes);
}

#[test]
fn the_same_inputs_give_the_same_model_bytes() {
    let desk = Desk::new();
    desk.train("first.bin", &[]);
    desk.train("second.bin", &[]);
    let first = std::fs::read(desk.path().join("first.bin")).unwrap();
    let second = std::fs::read(desk.path().join("second.bin")).unwrap();
    assert!(first == second, "two trainings on the same corpus differ");
}

#[test]
fn eval_reports_the_figures() {
    let desk = Desk::new();
    desk.train("model.bin", &[]);
    let model = desk.path().join("model.bin");

    let right = desk.eval("labels.csv", &["--model", model.to_str().unwrap()]);
    for line in [
        "mails: 8",
        "category accuracy: 100.0%",
        "confusion (rows: truth, columns: predicted):",
        "chargeable: precision 100.0%, recall 100.0%",
        "language accuracy: 100.0%",
        "sorted by rules + model",
    ] {
        assert!(right.contains(line), "no {line:?} in\n{right}");
    }

    // One label made wrong: the figures and the list of mistakes show it.
    let labels = std::fs::read_to_string(desk.labels()).unwrap();
    std::fs::write(
        desk.path().join("corpus/wrong.csv"),
        labels.replace(
            "nl-feedback.eml,feedback,,nl",
            "nl-feedback.eml,question,,nl",
        ),
    )
    .unwrap();
    let wrong = desk.eval(
        "wrong.csv",
        &["--model", model.to_str().unwrap(), "--mistakes"],
    );
    assert!(wrong.contains("category accuracy:  87.5%"), "{wrong}");
    assert!(
        wrong.contains("nl-feedback.eml: category feedback (is question)"),
        "{wrong}"
    );

    let rules_only = desk.eval("labels.csv", &["--rules-only"]);
    assert!(
        rules_only.contains("mails: 8") && rules_only.contains("sorted by rules only"),
        "{rules_only}"
    );
}

#[test]
fn a_corrected_ticket_changes_how_train_sorts_that_mail() {
    let desk = Desk::new();
    let customers = desk.path().join("customers.csv");
    std::fs::write(&customers, CUSTOMERS).unwrap();
    let persons = desk.path().join("persons.csv");
    std::fs::write(&persons, PERSONS).unwrap();
    desk.ok(&["customers", "import", customers.to_str().unwrap()]);
    desk.ok(&["persons", "import", persons.to_str().unwrap()]);

    // The daemon sorts with a model of the corpus alone...
    desk.train("before.bin", &[]);
    desk.configure(Some(&desk.path().join("before.bin")));
    let before = desk.ingest("loop-1");
    assert_eq!(before, "incident");

    // ...an agent corrects the ticket...
    let set = desk.ok(&["tickets", "set", "CS-000001", "--category", CORRECTED_TO]);
    assert!(
        set.contains(&format!("category {before} -> {CORRECTED_TO}")),
        "{set}"
    );

    // ...`train` folds the correction in, saying from where...
    let config = desk.config();
    let config = config.to_str().unwrap();
    let out = desk.train("after.bin", &["--corrections-from", config]);
    assert!(
        out.contains(&format!(
            "agent corrections: 1 from {} (the [database] of {config})",
            desk.database()
        )) && out.contains("trained on 8 corpus mails and 1 agent corrections"),
        "{out}"
    );
    desk.train("again.bin", &["--corrections-from", config]);
    assert!(
        std::fs::read(desk.path().join("after.bin")).unwrap()
            == std::fs::read(desk.path().join("again.bin")).unwrap(),
        "two trainings on the same corpus and corrections differ"
    );

    // ...and the same mail, arriving again, is sorted the corrected way.
    desk.configure(Some(&desk.path().join("after.bin")));
    assert_eq!(desk.ingest("loop-2"), CORRECTED_TO);
}

/// Drops the correction loop's mail into the Maildir under `message_id`,
/// waits for the daemon to make its ticket, and returns the category.
fn deliver_and_sort(desk: &Desk, maildir: &Path, message_id: &str) -> String {
    let raw = mail(message_id, CORRECTED_SUBJECT, CORRECTED_TEXT);
    let tmp = maildir.join("tmp").join(message_id);
    std::fs::write(&tmp, raw).unwrap();
    std::fs::rename(&tmp, maildir.join("new").join(message_id)).unwrap();
    let wanted = format!("{message_id}@delinde.example");
    for _ in 0..600 {
        let tickets: Value =
            serde_json::from_str(&desk.ok(&["tickets", "list", "--json"])).expect("JSON");
        if let Some(t) = tickets.as_array().unwrap().iter().find(|t| {
            t["message_ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|i| i == wanted.as_str()))
        }) {
            return t["category"].as_str().unwrap().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no ticket for {message_id}");
}

#[test]
fn the_running_daemon_learns_from_its_agents_and_can_go_back() {
    let desk = Desk::new();
    let customers = desk.path().join("customers.csv");
    std::fs::write(&customers, CUSTOMERS).unwrap();
    let persons = desk.path().join("persons.csv");
    std::fs::write(&persons, PERSONS).unwrap();
    desk.ok(&["customers", "import", customers.to_str().unwrap()]);
    desk.ok(&["persons", "import", persons.to_str().unwrap()]);
    let maildir = desk.path().join("maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let mut config = std::fs::read_to_string(desk.config()).unwrap();
    config.push_str(&format!(
        "\n[maildir]\npath = \"{}\"\n\n[file_transport]\ndir = \"{}\"\nfrom = \"support@example.test\"\n\n\
         [triage]\nretrain_every = 3\nretrain_check_secs = 1\n\n[daemon]\npoll_interval_secs = 1\n",
        maildir.display(),
        desk.path().join("sent").display()
    ));
    std::fs::write(desk.config(), config).unwrap();
    let daemon = support::Daemon::start(&desk.config(), desk.path().join("daemon.log"));

    // The built-in model reads the mail as an incident; agents correct
    // three such tickets to questions.
    for i in 1..=3 {
        assert_eq!(
            deliver_and_sort(&desk, &maildir, &format!("seen-{i}")),
            "incident"
        );
    }
    for n in ["CS-000001", "CS-000002", "CS-000003"] {
        desk.ok(&["tickets", "set", n, "--category", CORRECTED_TO]);
    }

    // The daemon notices the corrections, trains, judges the new model on
    // the held-out mail and puts it in use.
    let mut models = Value::Null;
    for _ in 0..1200 {
        models = serde_json::from_str(&desk.ok(&["model", "list", "--json"])).expect("JSON");
        if models.as_array().is_some_and(|m| !m.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let newest = &models.as_array().expect("a model was trained")[0];
    assert_eq!(newest["corrections"], 3, "{models}");
    assert_eq!(newest["active"], true, "{models}");
    assert!(
        newest["report"]["held_out"]["mails"].as_u64() > Some(300),
        "{models}"
    );

    // Without a restart, the same mail is now sorted the corrected way...
    assert_eq!(deliver_and_sort(&desk, &maildir, "after-1"), CORRECTED_TO);
    // ...and going back to the built-in model takes effect as well.
    let out = desk.ok(&["model", "use", "builtin"]);
    assert!(out.contains("built-in model is in use"), "{out}");
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert_eq!(deliver_and_sort(&desk, &maildir, "back-1"), "incident");
    let log = daemon.stop();
    assert!(log.contains("retrained the sorting model"), "{log}");
    assert_eq!(
        log.matches("sorting with another model from now on")
            .count(),
        2,
        "{log}"
    );
}
