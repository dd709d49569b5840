//! SIGHUP (what `systemctl reload` sends) on the real daemon: a
//! configuration that does not hold is refused with the file, line and fix,
//! and the daemon goes on with the old one; a good one is taken without a
//! restart: a mail source removed is no longer read, one added is, and the
//! process stays the same.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Daemon;

const CUSTOMERS: &str = "customer,contract_status,campuses\nWZC De Linde,active,Gent\n";
const PERSONS: &str = "email,name,customer,campus,role,language\n\
     an.peeters@delinde.example,An Peeters,WZC De Linde,Gent,campus,nl\n";

fn mail(id: &str) -> String {
    format!(
        "Message-ID: <{id}@delinde.example>\r\nFrom: An Peeters <an.peeters@delinde.example>\r\n\
To: support@example.test\r\nSubject: Foutmelding zorgplan\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Bij het opslaan van een zorgplan krijgen we een foutmelding.\r\n"
    )
}

struct Desk {
    dir: tempfile::TempDir,
}

impl Desk {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join("servicedesk.toml")
    }

    /// Writes the configuration reading the Maildir `maildir`; `extra` is appended.
    fn configure(&self, maildir: &str, extra: &str) {
        std::fs::write(
            self.config(),
            format!(
                "[database]\nurl = \"sqlite://{db}\"\n\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n\n\
                 [maildir]\npath = \"{md}\"\n\n[file_transport]\ndir = \"{sent}\"\nfrom = \"support@example.test\"\n\n\
                 [daemon]\npoll_interval_secs = 1\n{extra}",
                db = self.path().join("desk.db").display(),
                md = self.path().join(maildir).display(),
                sent = self.path().join("sent").display(),
            ),
        )
        .unwrap();
    }

    /// Runs a command with a configuration of its own (the daemon's may be
    /// broken on purpose).
    fn ok(&self, args: &[&str]) -> String {
        let cli = self.path().join("cli.toml");
        std::fs::write(
            &cli,
            format!(
                "[database]\nurl = \"sqlite://{}\"\n\n[support]\naddress = \"support@example.test\"\nticket_prefix = \"CS\"\n",
                self.path().join("desk.db").display()
            ),
        )
        .unwrap();
        let out = support::run_servicedesk(&cli, self.path(), args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            support::describe(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn deliver(&self, maildir: &str, id: &str) {
        let tmp = self.path().join(maildir).join("tmp").join(id);
        std::fs::write(&tmp, mail(id)).unwrap();
        std::fs::rename(&tmp, self.path().join(maildir).join("new").join(id)).unwrap();
    }

    /// The Message-IDs that have a ticket.
    fn ticketed(&self) -> Vec<String> {
        let tickets: Value =
            serde_json::from_str(&self.ok(&["tickets", "list", "--json"])).unwrap();
        tickets
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["message_ids"].as_array().unwrap().clone())
            .map(|i| i.as_str().unwrap().to_string())
            .collect()
    }

    fn wait_for_ticket(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let want = format!("{id}@delinde.example");
        while !self.ticketed().contains(&want) {
            assert!(Instant::now() < deadline, "no ticket for {id}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn hangup(daemon: &Daemon) {
    let status = Command::new("kill")
        .args(["-HUP", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_for_log(daemon: &Daemon, text: &str, times: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = daemon.log();
        if log.matches(text).count() >= times {
            return log;
        }
        assert!(Instant::now() < deadline, "no {text:?} in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_takes_a_good_configuration_and_refuses_a_bad_one() {
    let desk = Desk {
        dir: support::short_tempdir(),
    };
    for md in ["first", "second"] {
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(desk.path().join(md).join(sub)).unwrap();
        }
    }
    desk.configure("first", "");
    std::fs::write(desk.path().join("customers.csv"), CUSTOMERS).unwrap();
    std::fs::write(desk.path().join("persons.csv"), PERSONS).unwrap();
    desk.ok(&["customers", "import", "customers.csv"]);
    desk.ok(&["persons", "import", "persons.csv"]);
    let daemon = Daemon::start(&desk.config(), desk.path().join("daemon.log"));
    let pid = daemon.child.id();
    desk.deliver("first", "before");
    desk.wait_for_ticket("before");

    // A mistake in the new file: refused, named, and the old one goes on.
    desk.configure("second", "\n[limits]\nno_ticket_replies_per_dya = 3\n");
    hangup(&daemon);
    let log = wait_for_log(&daemon, "reload refused", 1);
    assert!(
        log.contains("servicedesk.toml") && log.contains("no_ticket_replies_per_dya"),
        "{log}"
    );
    desk.deliver("first", "still-old");
    desk.wait_for_ticket("still-old");

    // A good one: the first Maildir is no longer read, the second is.
    desk.configure("second", "");
    hangup(&daemon);
    wait_for_log(&daemon, "reloaded", 1);
    desk.deliver("second", "after");
    desk.wait_for_ticket("after");
    desk.deliver("first", "not-read");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !desk
            .ticketed()
            .contains(&"not-read@delinde.example".to_string()),
        "the Maildir removed from the configuration is still read"
    );
    assert_eq!(daemon.child.id(), pid);
    let log = daemon.stop();
    assert_eq!(log.matches("servicedesk running").count(), 2, "{log}");
}
