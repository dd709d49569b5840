//! `servicedesk doctor` against the real test servers: a working
//! configuration passes every line (exit 0) and changes nothing; a wrong
//! IMAP password, an untrusted certificate, a missing mailbox, an SMTP
//! server that is not there and a registry with gaps each fail their own
//! line with the fix (exit 1).

mod support;

use support::{config_text, describe, run_servicedesk, Db, MailServers, Options};

/// Runs `doctor` on `text` (written next to the servers); exit code and output.
fn doctor(servers: &MailServers, text: &str) -> (Option<i32>, String) {
    let path = servers.dir().join("doctor.toml");
    std::fs::write(&path, text).unwrap();
    let out = run_servicedesk(&path, servers.dir(), &["doctor"], None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{}", describe(&out));
    (out.status.code(), stdout)
}

fn line<'a>(out: &'a str, part: &str) -> &'a str {
    out.lines()
        .find(|l| l[4..].starts_with(part) || l.contains(&format!(" {part}")))
        .unwrap_or_else(|| panic!("no line for {part}:\n{out}"))
}

#[tokio::test]
async fn doctor_passes_a_working_desk_and_names_each_broken_part() {
    let servers = MailServers::start();
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    support::import_standard_registry(&store).await;
    let good = config_text(&servers, &db, &Options::default());

    let (code, out) = doctor(&servers, &good);
    assert_eq!(code, Some(0), "{out}");
    for part in [
        "config",
        "database",
        "imap",
        "smtp",
        "registry",
        "templates",
        "sorting",
        "model in use",
    ] {
        assert!(line(&out, part).starts_with('✔'), "{part}:\n{out}");
    }
    assert!(
        line(&out, "model in use").contains("the built-in one"),
        "{out}"
    );
    assert!(
        line(&out, "imap").contains("Processed and Quarantine created when `run` starts"),
        "{out}"
    );
    // Nothing was changed: the folders still do not exist, so a second look
    // says the same.
    assert_eq!(doctor(&servers, &good).1, out);

    let wrong_password = good.replace(
        &format!("password = \"{}\"", support::SUPPORT_PASS),
        "password = \"not-the-password\"",
    );
    let (code, out) = doctor(&servers, &wrong_password);
    assert_eq!(code, Some(1), "{out}");
    let imap = line(&out, "imap");
    assert!(
        imap.starts_with('✘') && imap.contains("fix: check [imap] username and password"),
        "{out}"
    );
    assert!(
        !out.contains("not-the-password"),
        "the password was shown:\n{out}"
    );

    let ca = servers.ca_file().display().to_string();
    let untrusted = good.replacen(&ca, "/etc/ssl/certs/ca-certificates.crt", 1);
    let (code, out) = doctor(&servers, &untrusted);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        line(&out, "imap").contains("certificate is not trusted"),
        "{out}"
    );

    let no_mailbox = good.replace("mailbox = \"INBOX\"", "mailbox = \"Supprot\"");
    let (code, out) = doctor(&servers, &no_mailbox);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        line(&out, "imap").contains("fix: check [imap] mailbox"),
        "{out}"
    );

    let no_smtp = good.replace(
        &format!("port = {}\ntls = \"none\"", servers.smtp_port),
        "port = 1\ntls = \"none\"",
    );
    let (code, out) = doctor(&servers, &no_smtp);
    assert_eq!(code, Some(1), "{out}");
    assert!(line(&out, "smtp").starts_with('✘'), "{out}");
    assert!(line(&out, "imap").starts_with('✔'), "{out}");

    sqlx::query("DELETE FROM persons WHERE role = 'technical'")
        .execute(store.pool())
        .await
        .unwrap();
    let (code, out) = doctor(&servers, &good);
    assert_eq!(code, Some(1), "{out}");
    assert!(line(&out, "registry").starts_with('✘'), "{out}");
}
