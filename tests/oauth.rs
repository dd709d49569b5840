//! OAuth2 mailboxes end to end, with the real binary: Dovecot's oauth2
//! passdb and the SMTP sink check every token at the introspection endpoint
//! of `scripts/oauth_server.py`, which issues them (client credentials,
//! refresh tokens that rotate, the device-code sign-in of `oauth login`).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The bearer token of `GET /metrics` on the workspace in these tests.
const METRICS_TOKEN: &str = "metrics-token-0123456789";

/// The usual test configuration with `[imap]` and `[smtp]` logging in with
/// tokens of `grant` from `oauth`, plus `extra`.
fn oauth_config(
    servers: &MailServers,
    db: &Db,
    oauth: &OAuthServer,
    grant: &str,
    extra: &str,
) -> PathBuf {
    let base = config_text(
        servers,
        db,
        &Options {
            poll_interval_secs: 1,
            ..Options::default()
        },
    );
    assert!(base.contains("password = \"support-pass\"\n"));
    let base = base
        .replace("password = \"support-pass\"\n", "auth = \"oauth2\"\n")
        .replace(
            "[smtp]\n",
            &format!("[smtp]\nusername = \"{SUPPORT_USER}\"\nauth = \"oauth2\"\n"),
        );
    let table = |section: &str| {
        format!(
            "[{section}.oauth2]\ntoken_url = \"{}\"\ndevice_url = \"{}\"\nauth_url = \"{}\"\nclient_id = \"{OAUTH_CLIENT_ID}\"\n\
             client_secret = \"{OAUTH_CLIENT_SECRET}\"\nscope = \"mail\"\ngrant = \"{grant}\"\n",
            oauth.url("/token"),
            oauth.url("/devicecode"),
            oauth.url("/authorize"),
        )
    };
    let text = format!("{base}\n{}\n{}\n{extra}", table("imap"), table("smtp"));
    let path = servers.dir().join("servicedesk.toml");
    std::fs::write(&path, &text).expect("write the configuration");
    servicedesk::config::Config::parse(&path, &text)
        .unwrap_or_else(|e| panic!("test configuration: {e}\n{text}"));
    path
}

/// A running `servicedesk oauth login`, its output read line by line.
struct Login {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    shown: Vec<String>,
}

impl Login {
    fn start(config: &Path, dir: &Path, args: &[&str]) -> Login {
        let mut child = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
            .arg("--config")
            .arg(config)
            .args(["oauth", "login"])
            .args(args)
            .current_dir(dir)
            .env_remove("SERVICEDESK_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start oauth login");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Login {
            child,
            lines,
            reader,
            shown: Vec::new(),
        }
    }

    /// The next line shown (at most 20 s away); `what` names what is awaited.
    fn next_line(&mut self, what: &str) -> String {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("oauth login showed no {what}: {:?}", self.shown));
        self.shown.push(line.clone());
        line
    }

    /// Waits for the command to end successfully, having said "Signed in";
    /// returns all it showed.
    fn finish(self) -> String {
        let out = self.child.wait_with_output().expect("oauth login ends");
        self.reader.join().expect("stdout reader");
        let rest: Vec<String> = self.lines.try_iter().collect();
        let all = format!("{}\n{}", self.shown.join("\n"), rest.join("\n"));
        assert!(
            out.status.success(),
            "oauth login failed: {all}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("Signed in"), "{all}");
        all
    }
}

/// `servicedesk oauth login SECTION`, signed in by the test as the support
/// user at the token server: the code shown is approved there.
async fn login(config: &Path, dir: &Path, oauth: &OAuthServer, section: &str) -> String {
    let mut run = Login::start(config, dir, &[section]);
    let code = loop {
        run.next_line("code");
        // The code is the first non-empty line after "enter the code".
        if let Some(at) = run.shown.iter().position(|l| l.contains("enter the code")) {
            if let Some(code) = run.shown[at + 1..].iter().find(|l| !l.trim().is_empty()) {
                break code.trim().to_string();
            }
        }
    };
    assert!(
        run.shown.iter().any(|l| l.contains(&oauth.url("/device"))),
        "the verification address is shown: {:?}",
        run.shown
    );
    // A while pending first: the command keeps polling.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    oauth
        .control(
            "approve",
            &[("user_code", &code), ("username", SUPPORT_USER)],
        )
        .await;
    run.finish()
}

/// `servicedesk oauth login SECTION --browser`, the test being the browser:
/// it opens the address shown, signs in (as the login hint) and is sent back
/// to the command's loopback address.
async fn login_in_browser(config: &Path, dir: &Path, section: &str) -> String {
    let mut run = Login::start(config, dir, &[section, "--browser"]);
    let address = loop {
        let line = run.next_line("address");
        if let Some(at) = line.trim().strip_prefix("http://") {
            break format!("http://{at}");
        }
    };
    assert!(address.contains("code_challenge_method=S256"), "{address}");
    let redirect = address
        .split('&')
        .find_map(|kv| kv.strip_prefix("redirect_uri="))
        .expect("a redirect_uri")
        .replace("%3A", ":")
        .replace("%2F", "/");
    // An answer that is not for this sign-in is turned away.
    let forged = reqwest::get(format!("{redirect}?code=forged&state=forged"))
        .await
        .expect("the loopback address answers");
    assert_eq!(forged.status(), 400);
    // The browser: the sign-in page sends it back with the code.
    let page = reqwest::get(&address).await.expect("the sign-in");
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("You can close this window"));
    run.finish()
}

/// The capture file of reply `n`: how the sink's client logged in.
fn auth_of(servers: &MailServers, n: u32) -> (String, String) {
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(servers.smtp_out().join(format!("{n}.json"))).expect("capture json"),
    )
    .expect("capture json parses");
    (
        json["auth_mechanism"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        json["auth_login"].as_str().unwrap_or_default().to_string(),
    )
}

fn dovecot_log(servers: &MailServers) -> String {
    std::fs::read_to_string(servers.dir().join("dovecot.log")).unwrap_or_default()
}

/// `GET /metrics` on the workspace, with the bearer token.
async fn metrics(web: u16) -> String {
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{web}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(answer.status(), 200);
    answer.text().await.expect("metrics text")
}

/// The value of the sample whose line holds all of `parts`.
fn sample(text: &str, parts: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn wait_for(what: &str, limit: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !ok().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_only_tokens_fetch_the_mail_and_send_the_replies() {
    let oauth = OAuthServer::start(3600);
    let servers = MailServers::start_with_oauth(&oauth);
    let db = Db::sqlite(servers.dir());
    import_standard_registry(&db.store().await).await;
    let config = oauth_config(&servers, &db, &oauth, "client_credentials", "");
    servers
        .append("INBOX", &simple_incident("oauth-1@delinde.example"))
        .await;

    let out = run_servicedesk(&config, servers.dir(), &["run", "--once"], None);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(servers.count("INBOX").await, 0, "{}", describe(&out));
    assert_eq!(servers.count("Processed").await, 1);
    let sent = servers.sent();
    assert_eq!(sent.len(), 1, "{}", describe(&out));
    assert!(sent[0].answers("oauth-1@delinde.example"));
    assert_eq!(
        auth_of(&servers, 1),
        ("XOAUTH2".to_string(), SUPPORT_USER.to_string())
    );
    // Dovecot announces OAUTHBEARER, so that is what the daemon used.
    assert!(
        dovecot_log(&servers)
            .contains(&format!("Login: user=<{SUPPORT_USER}>, method=OAUTHBEARER")),
        "{}",
        dovecot_log(&servers)
    );
    // IMAP and SMTP of one account share the token.
    assert_eq!(oauth.count("client_credentials:ok").await, 1);
    // No token or secret in what the run printed.
    let state = oauth.state().await;
    let printed = describe(&out);
    for token in state["access_tokens"].as_array().unwrap() {
        assert!(!printed.contains(token.as_str().unwrap()), "{printed}");
    }
    assert!(!printed.contains(OAUTH_CLIENT_SECRET), "{printed}");

    // `oauth status` and `doctor` say the token source works.
    let status = run_servicedesk(&config, servers.dir(), &["oauth", "status"], None);
    assert!(status.status.success(), "{}", describe(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("ok      [imap] support@example.test"),
        "{}",
        describe(&status)
    );
    let doctor = run_servicedesk(&config, servers.dir(), &["doctor"], None);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("oauth2 [imap] support@example.test")
            && text.contains("access token obtained"),
        "{}",
        describe(&doctor)
    );
    assert!(
        text.contains("logged in as support@example.test with an OAuth2 token"),
        "{}",
        describe(&doctor)
    );

    // A wrong client secret: refused, with the fix, and nothing fetched.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("client_secret = \"{OAUTH_CLIENT_SECRET}\""),
        "client_secret = \"wrong-secret\"",
    );
    std::fs::write(&config, text).unwrap();
    let status = run_servicedesk(&config, servers.dir(), &["oauth", "status"], None);
    assert_eq!(status.status.code(), Some(1), "{}", describe(&status));
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("invalid_client") && said.contains("check [imap.oauth2] client_id"),
        "{}",
        describe(&status)
    );
    assert!(!said.contains("wrong-secret"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_only_tokens_with_a_certificate_instead_of_a_secret() {
    let keys = short_tempdir();
    let (cert, key, rsa_key) = (
        keys.path().join("cert.pem"),
        keys.path().join("key.pem"),
        keys.path().join("rsa-key.pem"),
    );
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=servicedesk tests",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    // The same key as PKCS#1 ("BEGIN RSA PRIVATE KEY"), as older tools write it.
    openssl(&[
        "rsa",
        "-in",
        key.to_str().unwrap(),
        "-traditional",
        "-out",
        rsa_key.to_str().unwrap(),
    ]);
    let oauth = OAuthServer::start_with_cert(3600, Some(&cert));
    let servers = MailServers::start_with_oauth(&oauth);
    let db = Db::sqlite(servers.dir());
    import_standard_registry(&db.store().await).await;
    let config = oauth_config(&servers, &db, &oauth, "client_credentials", "");
    let with_cert = |key: &Path| {
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(
                &format!("client_id = \"{OAUTH_CLIENT_ID}\""),
                &format!("client_id = \"{OAUTH_CERT_CLIENT_ID}\""),
            )
            .replace(
                &format!("client_secret = \"{OAUTH_CLIENT_SECRET}\""),
                &format!(
                    "certificate_file = \"{}\"\nprivate_key_file = \"{}\"",
                    cert.display(),
                    key.display()
                ),
            )
    };
    std::fs::write(&config, with_cert(&key)).unwrap();
    servers
        .append("INBOX", &simple_incident("oauth-cert@delinde.example"))
        .await;
    let out = run_servicedesk(&config, servers.dir(), &["run", "--once"], None);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(servers.count("INBOX").await, 0, "{}", describe(&out));
    assert_eq!(servers.sent().len(), 1, "{}", describe(&out));
    assert_eq!(auth_of(&servers, 1).0, "XOAUTH2");
    assert_eq!(oauth.count("client_assertion:ok").await, 1);
    assert_eq!(oauth.count("client_assertion:refused").await, 0);

    std::fs::write(&config, with_cert(&rsa_key)).unwrap();
    let status = run_servicedesk(&config, servers.dir(), &["oauth", "status"], None);
    assert!(status.status.success(), "{}", describe(&status));
    assert_eq!(oauth.count("client_assertion:ok").await, 2);

    // A certificate the application does not know: refused, with the fix.
    let other = keys.path().join("other.pem");
    let other_key = keys.path().join("other-key.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=someone else",
        "-keyout",
        other_key.to_str().unwrap(),
        "-out",
        other.to_str().unwrap(),
    ]);
    let text =
        with_cert(&other_key).replace(&cert.display().to_string(), &other.display().to_string());
    std::fs::write(&config, text).unwrap();
    let status = run_servicedesk(&config, servers.dir(), &["oauth", "status"], None);
    assert_eq!(status.status.code(), Some(1), "{}", describe(&status));
    assert!(
        describe(&status).contains("invalid_client"),
        "{}",
        describe(&status)
    );
}

async fn refresh_token_from_oauth_login(backend: Backend) {
    let oauth = OAuthServer::start(3600);
    let servers = MailServers::start_with_oauth(&oauth);
    let db = backend.db(servers.dir()).await;
    let store = db.store().await;
    import_standard_registry(&store).await;
    let config = oauth_config(&servers, &db, &oauth, "refresh_token", "");
    servers
        .append("INBOX", &simple_incident("oauth-2@delinde.example"))
        .await;

    // Before anyone signed in: the run says what to do, and reads nothing.
    let out = run_servicedesk(&config, servers.dir(), &["run", "--once"], None);
    assert!(!out.status.success());
    assert!(
        describe(&out).contains("run `servicedesk oauth login imap`"),
        "{}",
        describe(&out)
    );
    assert_eq!(servers.count("INBOX").await, 1);

    let doctor = run_servicedesk(&config, servers.dir(), &["doctor"], None);
    assert_eq!(doctor.status.code(), Some(1), "{}", describe(&doctor));
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        report.contains("oauth2 [imap] support@example.test")
            && report.contains("run `servicedesk oauth login imap`"),
        "{}",
        describe(&doctor)
    );

    let said = login(&config, servers.dir(), &oauth, "imap").await;
    assert!(
        said.contains("The same sign-in serves [smtp] too."),
        "{said}"
    );
    assert!(oauth.count("device_code:authorization_pending").await >= 1);
    let name = format!("{OAUTH_CLIENT_ID} {SUPPORT_USER}");
    let first = store
        .oauth_refresh_token(&name)
        .await
        .unwrap()
        .expect("stored");

    let out = run_servicedesk(&config, servers.dir(), &["run", "--once"], None);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(servers.count("INBOX").await, 0, "{}", describe(&out));
    let sent = servers.sent();
    assert_eq!(sent.len(), 1, "{}", describe(&out));
    assert_eq!(auth_of(&servers, 1).0, "XOAUTH2");
    // The server rotates refresh tokens: the new one replaced the old one,
    // which no longer works, and it is the one the server knows.
    let now = store
        .oauth_refresh_token(&name)
        .await
        .unwrap()
        .expect("stored");
    assert_ne!(now, first);
    let state = oauth.state().await;
    let known: Vec<&str> = state["refresh_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert_eq!(known, vec![now.expose()]);
    assert_eq!(oauth.count("refresh_token:invalid_grant").await, 0);
    assert!(!describe(&out).contains(now.expose()));
    // `oauth status` says when the sign-in was stored (and rotates it once more).
    let status = run_servicedesk(&config, servers.dir(), &["oauth", "status"], None);
    assert!(status.status.success(), "{}", describe(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("(refresh_token, sign-in stored 20"),
        "{}",
        describe(&status)
    );
    assert_eq!(oauth.count("refresh_token:invalid_grant").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_stored_by_oauth_login_sqlite() {
    refresh_token_from_oauth_login(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_stored_by_oauth_login_postgres() {
    refresh_token_from_oauth_login(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_device_sign_in_stores_nothing() {
    let oauth = OAuthServer::start(3600);
    let servers = MailServers::start_with_oauth(&oauth);
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    let config = oauth_config(&servers, &db, &oauth, "refresh_token", "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
        .arg("--config")
        .arg(&config)
        .args(["oauth", "login", "smtp"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oauth login");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let code = loop {
        let line = lines.next().expect("a line").expect("stdout");
        if line.contains("enter the code") {
            break lines
                .by_ref()
                .map(|l| l.unwrap())
                .find(|l| !l.trim().is_empty())
                .unwrap()
                .trim()
                .to_string();
        }
    };
    oauth.control("deny", &[("user_code", &code)]).await;
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("Waiting")), "{rest:?}");
    let out = child.wait_with_output().expect("oauth login ends");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the sign-in was declined"),
        "{}",
        describe(&out)
    );
    let name = format!("{OAUTH_CLIENT_ID} {SUPPORT_USER}");
    assert!(store.oauth_refresh_token(&name).await.unwrap().is_none());
    // And a section that needs nobody's sign-in says so.
    let other = oauth_config(&servers, &db, &oauth, "client_credentials", "");
    let out = run_servicedesk(&other, servers.dir(), &["oauth", "login", "imap"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        describe(&out).contains("nobody signs in"),
        "{}",
        describe(&out)
    );
    let out = run_servicedesk(&other, servers.dir(), &["oauth", "login", "imap.7"], None);
    assert!(
        describe(&out)
            .contains("no OAuth2 section \"imap.7\" (sections with auth = \"oauth2\": imap, smtp)"),
        "{}",
        describe(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_from_a_browser_sign_in() {
    let oauth = OAuthServer::start(3600);
    let servers = MailServers::start_with_oauth(&oauth);
    let db = Db::sqlite(servers.dir());
    let store = db.store().await;
    import_standard_registry(&store).await;
    let config = oauth_config(&servers, &db, &oauth, "refresh_token", "");
    login_in_browser(&config, servers.dir(), "imap").await;
    assert_eq!(oauth.count("authorization_code:ok").await, 1);
    assert_eq!(oauth.count("authorization_code:invalid_grant").await, 0);
    servers
        .append("INBOX", &simple_incident("oauth-browser@delinde.example"))
        .await;
    let out = run_servicedesk(&config, servers.dir(), &["run", "--once"], None);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(servers.count("INBOX").await, 0, "{}", describe(&out));
    assert_eq!(servers.sent().len(), 1, "{}", describe(&out));
    assert_eq!(auth_of(&servers, 1).0, "XOAUTH2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_expire_are_renewed_before_anyone_refuses_them() {
    // Tokens live 3 seconds; the daemon keeps working across several lifetimes.
    let oauth = OAuthServer::start(3);
    let servers = MailServers::start_with_oauth(&oauth);
    let db = Db::sqlite(servers.dir());
    import_standard_registry(&db.store().await).await;
    let config = oauth_config(&servers, &db, &oauth, "client_credentials", "");
    let daemon = Daemon::start(&config, servers.dir().join("daemon.log"));

    for round in 1..=3u32 {
        let id = format!("oauth-expiry-{round}@delinde.example");
        servers.append("INBOX", &simple_incident(&id)).await;
        let sent = servers
            .wait_sent(round as usize, Duration::from_secs(60))
            .await;
        assert_eq!(
            sent.len(),
            round as usize,
            "round {round}\n{}",
            daemon.log()
        );
        assert!(sent.last().unwrap().answers(&id));
        assert_eq!(auth_of(&servers, round).0, "XOAUTH2");
        // Let the token expire, and make both connections log in anew.
        tokio::time::sleep(Duration::from_secs(4)).await;
        servers.control("stop-imap");
        servers.control("start-imap");
        servers.control("stop-smtp");
        servers.control("start-smtp");
    }
    // A new token every time, and never an expired one presented.
    assert!(oauth.count("client_credentials:ok").await >= 3);
    assert_eq!(oauth.count("introspect:inactive").await, 0);
    let log = daemon.stop();
    assert!(!log.contains("refused"), "{log}");
    assert!(!log.contains("OAuth2:"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_server_refuses_is_renewed_once() {
    let oauth = OAuthServer::start(3600);
    let servers = MailServers::start_with_oauth(&oauth);
    let db = Db::sqlite(servers.dir());
    import_standard_registry(&db.store().await).await;
    let config = oauth_config(&servers, &db, &oauth, "client_credentials", "");
    let daemon = Daemon::start(&config, servers.dir().join("daemon.log"));
    servers
        .append("INBOX", &simple_incident("oauth-renew-1@delinde.example"))
        .await;
    assert_eq!(
        servers.wait_sent(1, Duration::from_secs(60)).await.len(),
        1,
        "{}",
        daemon.log()
    );
    assert_eq!(oauth.count("client_credentials:ok").await, 1);
    // The token in hand, valid for an hour by its own account, stops
    // working; both connections log in anew.
    oauth
        .control("revoke_access", &[("username", SUPPORT_USER)])
        .await;
    servers.control("stop-imap");
    servers.control("start-imap");
    servers.control("stop-smtp");
    servers.control("start-smtp");
    servers
        .append("INBOX", &simple_incident("oauth-renew-2@delinde.example"))
        .await;
    let sent = servers.wait_sent(2, Duration::from_secs(60)).await;
    assert_eq!(sent.len(), 2, "{}", daemon.log());
    assert!(sent[1].answers("oauth-renew-2@delinde.example"));
    assert_eq!(auth_of(&servers, 2).0, "XOAUTH2");
    // Refused once, renewed once, and the new token shared by IMAP and SMTP.
    assert!(oauth.count("introspect:inactive").await >= 1);
    assert_eq!(oauth.count("client_credentials:ok").await, 2);
    let log = daemon.stop();
    assert!(
        log.contains("the server refused the OAuth2 access token; getting a new one"),
        "{log}"
    );
    assert!(!log.contains("OAuth2:"), "no token source failed: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_sign_in_is_told_once_counted_and_recovers_after_a_new_login() {
    let oauth = OAuthServer::start(3);
    let servers = MailServers::start_with_oauth(&oauth);
    let db = Db::sqlite(servers.dir());
    import_standard_registry(&db.store().await).await;
    let web = free_port();
    let extra = format!(
        "[web]\nlisten = \"127.0.0.1:{web}\"\n\n[metrics]\non_web = true\ntoken = \"{METRICS_TOKEN}\"\n"
    );
    let config = oauth_config(&servers, &db, &oauth, "refresh_token", &extra);
    login(&config, servers.dir(), &oauth, "imap").await;
    let daemon = Daemon::start(&config, servers.dir().join("daemon.log"));
    servers
        .append("INBOX", &simple_incident("oauth-r1@delinde.example"))
        .await;
    assert_eq!(
        servers.wait_sent(1, Duration::from_secs(60)).await.len(),
        1,
        "{}",
        daemon.log()
    );

    // The grant is revoked; the token in hand expires; IMAP logs in anew.
    oauth.control("revoke", &[("username", SUPPORT_USER)]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    servers.control("stop-imap");
    servers.control("start-imap");
    let fix = "run `servicedesk oauth login imap` to sign in again";
    wait_for(
        "the revoked sign-in is logged",
        Duration::from_secs(60),
        async || daemon.lines(fix) > 0,
    )
    .await;
    let text = metrics(web).await;
    assert_eq!(
        sample(
            &text,
            &[
                "servicedesk_oauth_failures_total{",
                "section=\"imap\"",
                "reason=\"invalid_grant\""
            ]
        )
        .map(|v| v >= 1.0),
        Some(true),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &["servicedesk_oauth_login_required{section=\"imap\"}"]
        ),
        Some(1.0),
        "{text}"
    );
    // The alert rules name only OAuth2 metrics that are served.
    let alerts = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/prometheus-alerts.yml"),
    )
    .unwrap();
    let names = regex::Regex::new(r"servicedesk_oauth_[a-z_]+").unwrap();
    assert!(names.is_match(&alerts));
    for name in names.find_iter(&alerts) {
        assert!(
            text.contains(&format!("# TYPE {} ", name.as_str())),
            "contrib/prometheus-alerts.yml names {}, which /metrics does not have",
            name.as_str()
        );
    }
    // While nobody signs in again, the daemon keeps retrying the mailbox
    // with backoff, but the refused grant is not sent to the endpoint again.
    let refused = oauth.count("refresh_token:invalid_grant").await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(oauth.count("refresh_token:invalid_grant").await, refused);
    assert_eq!(refused, 1, "{}", daemon.log());
    assert_eq!(daemon.lines(fix), 1, "{}", daemon.log());

    // A new sign-in: the daemon picks it up by itself.
    login(&config, servers.dir(), &oauth, "imap").await;
    servers
        .append("INBOX", &simple_incident("oauth-r2@delinde.example"))
        .await;
    let sent = servers.wait_sent(2, Duration::from_secs(120)).await;
    assert_eq!(sent.len(), 2, "{}", daemon.log());
    assert!(sent[1].answers("oauth-r2@delinde.example"));
    let text = metrics(web).await;
    assert_eq!(
        sample(
            &text,
            &["servicedesk_oauth_login_required{section=\"imap\"}"]
        ),
        Some(0.0),
        "{text}"
    );
    let state = oauth.state().await;
    let log = daemon.stop();
    assert!(log.contains("work again"), "{log}");
    // No access or refresh token, nor the client's secret, in the log.
    for token in ["access_tokens", "refresh_tokens"]
        .iter()
        .flat_map(|k| state[k].as_array().unwrap().clone())
    {
        assert!(!log.contains(token.as_str().unwrap()), "{log}");
    }
    assert!(!log.contains(OAUTH_CLIENT_SECRET), "{log}");
    assert_eq!(log.lines().filter(|l| l.contains(fix)).count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_workspace_need_the_bearer_token() {
    let dir = short_tempdir();
    let web = free_port();
    let write = |metrics: &str| {
        let path = dir.path().join("servicedesk.toml");
        std::fs::write(
            &path,
            format!(
                "[database]\nurl = \"sqlite://{}\"\n[support]\naddress = \"support@example.test\"\n\
                 [web]\nlisten = \"127.0.0.1:{web}\"\n{metrics}",
                dir.path().join("desk.db").display()
            ),
        )
        .unwrap();
        path
    };
    let get = |token: Option<&'static str>| async move {
        let mut r = reqwest::Client::new().get(format!("http://127.0.0.1:{web}/metrics"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("GET /metrics")
    };
    let serve = |config: &Path| {
        let child = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
            .arg("--config")
            .arg(config)
            .arg("web")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("servicedesk web");
        KillOnDrop(child)
    };
    let up = async || {
        wait_for(
            "the workspace answers",
            Duration::from_secs(30),
            async || {
                reqwest::get(format!("http://127.0.0.1:{web}/healthz"))
                    .await
                    .is_ok_and(|r| r.status() == 200)
            },
        )
        .await
    };

    // Not asked for: not there.
    let plain = serve(&write(""));
    up().await;
    assert_eq!(get(None).await.status(), 404);
    assert_eq!(get(Some(METRICS_TOKEN)).await.status(), 404);
    drop(plain);

    let config = write(&format!(
        "[metrics]\non_web = true\ntoken = \"{METRICS_TOKEN}\"\n"
    ));
    let _served = serve(&config);
    up().await;
    let anonymous = get(None).await;
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    assert_eq!(get(Some("metrics-token-wrong-guess")).await.status(), 401);
    let answer = get(Some(METRICS_TOKEN)).await;
    assert_eq!(answer.status(), 200);
    assert!(answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = answer.text().await.unwrap();
    assert!(text.contains("servicedesk_outbox_queued 0"), "{text}");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
