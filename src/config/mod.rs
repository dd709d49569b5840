//! The TOML configuration: parsing, secrets from file or environment, and
//! validation with errors that name the file, the key and the fix.
//!
//! This module only reads the configuration file and the secret files it
//! names; it never opens a connection. Secrets and the database URL live in
//! [`secret`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod oauth;
pub mod secret;
mod sla;

pub use oauth::{AuthMethod, Grant, OAuth2Config, Provider};
pub use secret::{redact_url, DatabaseConfig, Secret};
use secret::{RawDatabase, RawSecret};

/// Where the configuration is read from when neither `--config` nor
/// `SERVICEDESK_CONFIG` says otherwise.
pub const DEFAULT_PATH: &str = "config/servicedesk.toml";

/// A configuration problem, always naming the file it was found in.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl ConfigError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS before login.
    Starttls,
    /// No TLS at all; only sensible on loopback.
    None,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this configuration came from, for error messages.
    pub path: PathBuf,
    pub database: DatabaseConfig,
    pub support: SupportConfig,
    pub imap: Vec<ImapConfig>,
    pub maildir: Option<MaildirConfig>,
    pub smtp: Option<SmtpConfig>,
    pub file_transport: Option<FileTransportConfig>,
    pub outbox: OutboxConfig,
    pub daemon: DaemonConfig,
    pub triage: TriageConfig,
    pub limits: crate::triage::Limits,
    pub security: SecurityConfig,
    pub web: WebConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub webhooks: Vec<WebhookConfig>,
    /// `[sla]`: business hours, closed days and the customers' tiers.
    pub sla: std::sync::Arc<crate::sla::Policy>,
}

/// The ticket changes a webhook may be called for.
pub const WEBHOOK_EVENTS: [&str; 3] = [
    "ticket.created",
    "ticket.status_changed",
    "ticket.charge_decided",
];

/// One `[[webhooks]]`: where to POST which ticket changes, signed how.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `http://` or `https://`.
    pub url: String,
    /// The HMAC-SHA256 key of the `X-Servicedesk-Signature` header.
    pub secret: Secret,
    /// Which of [`WEBHOOK_EVENTS`]; all when the section names none.
    pub events: Vec<String>,
    /// The first retry waits this long; each next one twice as long (at most an hour).
    pub retry_base_secs: u64,
    /// After this many failed attempts a delivery is marked failed.
    pub max_attempts: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    secret_file: Option<PathBuf>,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default = "default_retry_base_secs")]
    retry_base_secs: u64,
    #[serde(default = "default_webhook_attempts")]
    max_attempts: u32,
}

fn default_retry_base_secs() -> u64 {
    30
}

fn default_webhook_attempts() -> u32 {
    12
}

impl RawWebhook {
    fn validate(self, path: &Path, n: usize) -> Result<WebhookConfig, ConfigError> {
        let at = format!("[[webhooks]] number {n}");
        let url = self.url.trim().to_string();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.contains(char::is_whitespace)
        {
            return Err(ConfigError::new(
                path,
                format!("{at}: url = {url:?} must be an http:// or https:// address"),
            ));
        }
        let secret = match (self.secret, self.secret_file, self.secret_env) {
            (Some(s), None, None) => s,
            (None, Some(f), None) => std::fs::read_to_string(&f)
                .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| {
                    ConfigError::new(path, format!("{at} secret_file {}: cannot read it ({e})", f.display()))
                })?,
            (None, None, Some(var)) => std::env::var(&var).map_err(|_| {
                ConfigError::new(path, format!("{at} secret_env: the environment variable {var} is not set"))
            })?,
            (None, None, None) => {
                return Err(ConfigError::new(
                    path,
                    format!("{at}: give a secret (secret, secret_file or secret_env): the receiver checks the signature with it"),
                ))
            }
            _ => {
                return Err(ConfigError::new(
                    path,
                    format!("{at}: set only one of secret, secret_file, secret_env"),
                ))
            }
        };
        if secret.len() < 16 {
            return Err(ConfigError::new(
                path,
                format!("{at}: the secret must be at least 16 characters"),
            ));
        }
        let events = match self.events {
            None => WEBHOOK_EVENTS.iter().map(|e| e.to_string()).collect(),
            Some(list) => {
                for e in &list {
                    if !WEBHOOK_EVENTS.contains(&e.as_str()) {
                        return Err(ConfigError::new(
                            path,
                            format!(
                                "{at}: unknown event {e:?}: use {}",
                                WEBHOOK_EVENTS.join(", ")
                            ),
                        ));
                    }
                }
                list
            }
        };
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                path,
                format!("{at}: max_attempts must be at least 1"),
            ));
        }
        Ok(WebhookConfig {
            url,
            secret: Secret::new(secret),
            events,
            retry_base_secs: self.retry_base_secs.max(1),
            max_attempts: self.max_attempts,
        })
    }
}

/// How log lines look (`[log]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event (the default; journald adds the time).
    #[default]
    Text,
    /// One JSON object per line, for journald's structured fields and log shippers.
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// The `[log] format` of the file at `path`, read before anything else (the
/// logger starts before the configuration is checked): `text` when the file
/// cannot be read or says nothing valid; the full check names the mistake.
pub fn log_format_of(path: &Path) -> LogFormat {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
        .and_then(|t| {
            let log = t.get("log")?.as_table()?.clone();
            LogConfig::deserialize(toml::Value::Table(log)).ok()
        })
        .map(|l| l.format)
        .unwrap_or_default()
}

/// Prometheus metrics (`[metrics]`).
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served, apart from the workspace (so the
    /// scraper need not pass the reverse proxy agents use).
    pub listen: Option<std::net::SocketAddr>,
    /// Set with `on_web = true`: `GET /metrics` is served on `[web] listen`
    /// too, to a scraper that shows this bearer token (the workspace's
    /// listener is reachable through the reverse proxy).
    pub web_token: Option<Secret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    on_web: bool,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    token_env: Option<String>,
}

impl RawMetrics {
    /// The bearer token of `GET /metrics` on `[web] listen`, when `on_web`.
    fn web_token(&self, path: &Path) -> Result<Option<Secret>, ConfigError> {
        let token = match (&self.token, &self.token_file, &self.token_env) {
            (None, None, None) => None,
            (Some(t), None, None) => Some(t.clone()),
            (None, Some(f), None) => Some(
                std::fs::read_to_string(f)
                    .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
                    .map_err(|e| {
                        ConfigError::new(
                            path,
                            format!("[metrics] token_file {}: cannot read it ({e})", f.display()),
                        )
                    })?,
            ),
            (None, None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                ConfigError::new(
                    path,
                    format!("[metrics] token_env: the environment variable {var} is not set"),
                )
            })?),
            _ => {
                return Err(ConfigError::new(
                    path,
                    "[metrics]: set only one of token, token_file, token_env",
                ))
            }
        };
        match (self.on_web, token) {
            (false, None) => Ok(None),
            (false, Some(_)) => Err(ConfigError::new(
                path,
                "[metrics]: a token is set but on_web is not: add on_web = true to serve GET /metrics on [web] listen",
            )),
            (true, None) => Err(ConfigError::new(
                path,
                "[metrics] on_web = true needs a bearer token for the scraper: set token_file (or token_env)",
            )),
            (true, Some(t)) if t.len() < 16 => Err(ConfigError::new(
                path,
                "[metrics]: the token must be at least 16 characters",
            )),
            (true, Some(t)) => Ok(Some(Secret::new(t))),
        }
    }
}

/// The agents' workspace (`[web]`).
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Where `servicedesk web` listens, and `servicedesk run` too when set.
    pub listen: Option<std::net::SocketAddr>,
    /// The outside address behind a reverse proxy, as an origin
    /// (`https://desk.example.test`): links and the same-origin check.
    pub public_url: Option<String>,
    /// A session unused this long ends.
    pub session_idle_minutes: u64,
    /// Take the client's address for login throttling from the last
    /// `X-Forwarded-For` entry (only behind a reverse proxy that sets it).
    pub trust_forwarded_for: bool,
    /// How long an agent's reply from the ticket page waits before it may
    /// be sent, so it can be taken back (0: sent at once).
    pub undo_send_secs: u64,
}

impl WebConfig {
    /// The session cookie may carry `Secure` unless the workspace is
    /// explicitly published over plain HTTP (`public_url = "http://..."`),
    /// where browsers would drop such a cookie.
    pub fn secure_cookies(&self) -> bool {
        !self
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default = "default_idle_minutes")]
    session_idle_minutes: u64,
    #[serde(default)]
    trust_forwarded_for: bool,
    #[serde(default = "default_undo_send_secs")]
    undo_send_secs: u64,
}

fn default_idle_minutes() -> u64 {
    8 * 60
}

fn default_undo_send_secs() -> u64 {
    10
}

/// The longest undo-send window taken: a reply should not wait for long.
const MAX_UNDO_SEND_SECS: u64 = 120;

impl RawWeb {
    fn validate(self, path: &Path) -> Result<WebConfig, ConfigError> {
        let listen = match self.listen {
            None => None,
            Some(l) => Some(l.trim().parse().map_err(|_| {
                ConfigError::new(
                    path,
                    format!("[web] listen = {l:?} is not an address and port: use e.g. \"127.0.0.1:8080\""),
                )
            })?),
        };
        let public_url = match self.public_url {
            None => None,
            Some(u) => Some(origin_of(&u).ok_or_else(|| {
                ConfigError::new(
                    path,
                    format!("[web] public_url = {u:?}: use the address agents open, like \"https://desk.example.test\" (http:// or https://, no path)"),
                )
            })?),
        };
        if self.session_idle_minutes == 0 {
            return Err(ConfigError::new(
                path,
                "[web] session_idle_minutes must be at least 1",
            ));
        }
        if self.undo_send_secs > MAX_UNDO_SEND_SECS {
            return Err(ConfigError::new(
                path,
                format!(
                    "[web] undo_send_secs = {}: use 0 (off) to {MAX_UNDO_SEND_SECS} seconds",
                    self.undo_send_secs
                ),
            ));
        }
        Ok(WebConfig {
            listen,
            public_url,
            session_idle_minutes: self.session_idle_minutes,
            trust_forwarded_for: self.trust_forwarded_for,
            undo_send_secs: self.undo_send_secs,
        })
    }
}

/// `https://Host:port/` as the origin `https://host:port`; `None` when it
/// is not an http(s) URL with a host and at most `/` as its path.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportConfig {
    /// The desk's own address: never auto-replied to, and the domain of our Message-IDs.
    pub address: String,
    /// Ticket numbers look like `{prefix}-000123`.
    #[serde(default = "default_prefix")]
    pub ticket_prefix: String,
    /// The name used to sign replies.
    #[serde(default = "default_desk_name")]
    pub desk_name: String,
    /// Language of replies when neither the mail nor the registry tells.
    #[serde(default)]
    pub default_language: crate::domain::Language,
    /// A folder with `<lang>/<kind>.txt` templates overriding the built-in ones.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
}

fn default_prefix() -> String {
    "CS".into()
}
fn default_desk_name() -> String {
    "Care Solutions Servicedesk".into()
}

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// An extra root certificate (PEM) to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    pub username: String,
    /// Empty when the mailbox logs in with OAuth2 tokens.
    pub password: Secret,
    /// Set when `auth = "oauth2"`: where the access tokens come from.
    pub oauth2: Option<std::sync::Arc<OAuth2Config>>,
    pub mailbox: String,
    pub processed_folder: String,
    pub quarantine_folder: String,
    /// Messages fetched per round trip.
    pub batch_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaildirConfig {
    /// A Maildir (with `new/`, `cur/`, `tmp/`) to read, e.g. for local delivery.
    pub path: PathBuf,
    #[serde(default = "default_processed")]
    pub processed_folder: String,
    #[serde(default = "default_quarantine")]
    pub quarantine_folder: String,
}

fn default_processed() -> String {
    "Processed".into()
}
fn default_quarantine() -> String {
    "Quarantine".into()
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    /// Both present, or no AUTH at all (or OAuth2).
    pub credentials: Option<(String, Secret)>,
    /// Set when `auth = "oauth2"`: where the access tokens come from.
    pub oauth2: Option<std::sync::Arc<OAuth2Config>>,
    /// The `From` of every reply, e.g. `Care Solutions Servicedesk <support@example.test>`.
    pub from: String,
    /// Seconds to wait for the server before giving up on one attempt.
    pub timeout_secs: u64,
}

/// Replies written as `.eml` files instead of being sent (the demo, dry runs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTransportConfig {
    pub dir: PathBuf,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Transient failures are retried this many times before the reply is marked failed.
    pub max_attempts: u32,
    /// First retry delay; doubles with every attempt.
    pub retry_base_secs: u64,
    /// Upper bound of the retry delay.
    pub retry_max_secs: u64,
    /// How long `run --once` keeps retrying replies before it gives up and
    /// leaves them queued for the next run.
    pub once_wait_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_attempts: 12,
            retry_base_secs: 30,
            retry_max_secs: 3600,
            once_wait_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// How often to look for mail when the server offers no IDLE.
    pub poll_interval_secs: u64,
    /// How long one IDLE may last before it is re-issued (RFC 2177: under 29 minutes).
    pub idle_timeout_secs: u64,
    /// A mailbox lease lasts this long; when its holder stops renewing it
    /// (it died), another daemon on the same database takes the mailbox over.
    pub lease_secs: u64,
    /// The most one step of work may take (a fetch batch, a send pass, a
    /// database write) before the daemon counts as stuck: systemd's
    /// watchdog then stops hearing from it and restarts it.
    pub step_timeout_secs: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            poll_interval_secs: 60,
            idle_timeout_secs: 25 * 60,
            lease_secs: 90,
            step_timeout_secs: 300,
        }
    }
}

/// Protection against forged senders.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Trust a registered address only when our receiving server's
    /// `Authentication-Results` shows `dmarc=pass` or an aligned `dkim=pass`.
    pub require_aligned_auth: bool,
    /// The authserv-id our receiving server writes in `Authentication-Results`.
    pub authserv_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriageConfig {
    /// A rules file overriding the built-in `config/rules.toml`.
    pub rules_file: Option<PathBuf>,
    /// Whether change requests are chargeable (the default) or covered by the contract.
    pub change_requests_chargeable: bool,
    /// A model written by `servicedesk train`, replacing the built-in one
    /// and the desk's own (`servicedesk model`): set, it is always used.
    pub model_file: Option<PathBuf>,
    /// The daemon trains a new model after this many more tickets were
    /// corrected by agents (0: never; `servicedesk model train` still does).
    pub retrain_every: u32,
    /// How often the daemon counts the corrections, in seconds.
    pub retrain_check_secs: u64,
}

impl Default for TriageConfig {
    fn default() -> Self {
        TriageConfig {
            rules_file: None,
            change_requests_chargeable: true,
            model_file: None,
            retrain_every: 20,
            retrain_check_secs: 60,
        }
    }
}

/// The file as written; turned into [`Config`] by validation.
///
/// Two steps on purpose: serde checks the shape (and names the line of a
/// bad key or value), validation checks the meaning (addresses, folders,
/// secrets read from their files or the environment into [`Secret`]s), so
/// the rest of the program only ever sees a configuration that holds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: RawDatabase,
    support: SupportConfig,
    #[serde(default)]
    imap: Option<OneOrMany<RawImap>>,
    #[serde(default)]
    maildir: Option<MaildirConfig>,
    #[serde(default)]
    smtp: Option<RawSmtp>,
    #[serde(default)]
    file_transport: Option<FileTransportConfig>,
    #[serde(default)]
    outbox: OutboxConfig,
    #[serde(default)]
    daemon: DaemonConfig,
    #[serde(default)]
    triage: TriageConfig,
    #[serde(default)]
    limits: crate::triage::Limits,
    #[serde(default)]
    security: SecurityConfig,
    #[serde(default)]
    web: Option<RawWeb>,
    #[serde(default)]
    metrics: Option<RawMetrics>,
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    #[serde(default)]
    sla: Option<sla::RawSla>,
}

/// `[imap]` for one mailbox or `[[imap]]` for several.
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// Reads a table as one and an array of tables as many. Written out (not
/// `#[serde(untagged)]`) so that a mistake inside the section keeps its own
/// message and line instead of becoming "did not match any variant".
impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Either<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table ([section]) or an array of tables ([[section]])")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(OneOrMany::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(OneOrMany::Many)
            }
        }
        d.deserialize_any(Either(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImap {
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default = "default_tls_implicit")]
    tls: TlsMode,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    username: String,
    #[serde(default)]
    auth: oauth::AuthMethod,
    #[serde(default)]
    oauth2: Option<oauth::RawOAuth2>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default = "default_mailbox")]
    mailbox: String,
    #[serde(default = "default_processed")]
    processed_folder: String,
    #[serde(default = "default_quarantine")]
    quarantine_folder: String,
    #[serde(default = "default_batch")]
    batch_size: u32,
}

fn default_tls_implicit() -> TlsMode {
    TlsMode::Implicit
}
fn default_tls_starttls() -> TlsMode {
    TlsMode::Starttls
}
fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_batch() -> u32 {
    100
}
fn default_timeout() -> u64 {
    30
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default = "default_tls_starttls")]
    tls: TlsMode,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    auth: oauth::AuthMethod,
    #[serde(default)]
    oauth2: Option<oauth::RawOAuth2>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    password_env: Option<String>,
    from: String,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
}

impl Config {
    /// The `From` of automatic replies: `[smtp] from`, else
    /// `[file_transport] from`, else the desk's name and address.
    pub fn reply_from(&self) -> String {
        self.smtp
            .as_ref()
            .map(|s| s.from.clone())
            .or_else(|| self.file_transport.as_ref().map(|f| f.from.clone()))
            .unwrap_or_else(|| format!("{} <{}>", self.support.desk_name, self.support.address))
    }

    /// Reads and validates the configuration file.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file and, for syntax errors, the line, when
    /// the file cannot be read, does not parse, misses a key, or a secret file
    /// or variable it names is missing.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                path,
                format!("cannot read the configuration ({e}); pass --config FILE or set SERVICEDESK_CONFIG"),
            )
        })?;
        Self::parse(path, &text)
    }

    /// Parses configuration text; `path` is used for messages only.
    ///
    /// # Errors
    ///
    /// As [`Config::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!("line {}: ", line_of(text, s.start)))
                .unwrap_or_default();
            ConfigError::new(path, format!("{at}{}", explain(e.message())))
        })?;
        let mut raw = raw;
        let sla = match raw.sla.take() {
            Some(s) => s.validate(path, text)?,
            None => crate::sla::Policy::default(),
        };
        let mut config = raw.validate(path)?;
        config.sla = std::sync::Arc::new(sla);
        Ok(config)
    }
}

/// serde's message made into advice: an unknown key gets the nearest known
/// one (`did you mean `password`?`), a value not among the allowed ones says
/// which are allowed.
fn explain(message: &str) -> String {
    static UNKNOWN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^unknown (field|variant) `([^`]*)`, expected (?:one of )?(.*)$")
            .expect("valid regex")
    });
    let Some(c) = UNKNOWN.captures(message.trim()) else {
        return message.to_string();
    };
    let known: Vec<&str> = c[3]
        .split(", ")
        .flat_map(|k| k.split(" or "))
        .map(|k| k.trim().trim_matches('`'))
        .filter(|k| !k.is_empty())
        .collect();
    let nearest = known
        .iter()
        .map(|k| {
            // A key cut short (`model` for `model_file`) is as good as a typo.
            let cut_short = k.starts_with(&c[2]) && c[2].len() >= 3;
            (
                if cut_short {
                    1
                } else {
                    edit_distance(&c[2], k)
                },
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min();
    let hint = nearest
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    match &c[1] {
        "field" => format!(
            "unknown key `{}` (known keys: {}){hint}",
            &c[2],
            known.join(", ")
        ),
        _ => format!(
            "`{}` is not allowed here: use {}{hint}",
            &c[2],
            known.join(", ")
        ),
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn check_address(path: &Path, key: &str, value: &str) -> Result<(), ConfigError> {
    let addr = crate::mail::bare_address(value);
    match addr.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && (domain.contains('.') || domain == "localhost") =>
        {
            Ok(())
        }
        _ => Err(ConfigError::new(
            path,
            format!("{key} = {value:?} is not an e-mail address (like support@example.com)"),
        )),
    }
}

impl RawConfig {
    fn validate(self, path: &Path) -> Result<Config, ConfigError> {
        let database = self.database.resolve(path)?;
        check_address(path, "[support] address", &self.support.address)?;
        let prefix = &self.support.ticket_prefix;
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::new(
                path,
                format!("[support] ticket_prefix = {prefix:?}: use letters and digits only, like \"CS\""),
            ));
        }
        let raw_imaps = match self.imap {
            None => Vec::new(),
            Some(OneOrMany::One(one)) => vec![one],
            Some(OneOrMany::Many(many)) => many,
        };
        let mut imap = Vec::new();
        for (i, raw) in raw_imaps.into_iter().enumerate() {
            let section = if i == 0 {
                "imap".to_string()
            } else {
                format!("imap #{}", i + 1)
            };
            let has_password =
                raw.password.is_some() || raw.password_file.is_some() || raw.password_env.is_some();
            // How OAuth2 names this mailbox: `imap`, `imap.2`, ...
            let oauth_section = if i == 0 {
                "imap".to_string()
            } else {
                format!("imap.{}", i + 1)
            };
            oauth::check_method(
                path,
                &oauth_section,
                raw.auth,
                raw.oauth2.is_some(),
                has_password,
            )?;
            let oauth2 = match raw.oauth2 {
                Some(o) => Some(std::sync::Arc::new(o.validate(
                    path,
                    &oauth_section,
                    &raw.username,
                )?)),
                None => None,
            };
            let password = if oauth2.is_some() {
                Secret::default()
            } else {
                RawSecret::of(raw.password, raw.password_file, raw.password_env)
                    .resolve(path, &section)?
                    .ok_or_else(|| {
                        ConfigError::new(
                            path,
                            format!("[{section}]: set password, password_file or password_env"),
                        )
                    })?
            };
            if raw.batch_size == 0 {
                return Err(ConfigError::new(
                    path,
                    format!("[{section}] batch_size must be at least 1"),
                ));
            }
            let folders = [&raw.mailbox, &raw.processed_folder, &raw.quarantine_folder];
            if folders[0] == folders[1] || folders[0] == folders[2] || folders[1] == folders[2] {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "[{section}]: mailbox, processed_folder and quarantine_folder must differ"
                    ),
                ));
            }
            imap.push(ImapConfig {
                port: raw.port.unwrap_or(match raw.tls {
                    TlsMode::Implicit => 993,
                    _ => 143,
                }),
                host: raw.host,
                tls: raw.tls,
                ca_file: raw.ca_file,
                username: raw.username,
                password,
                oauth2,
                mailbox: raw.mailbox,
                processed_folder: raw.processed_folder,
                quarantine_folder: raw.quarantine_folder,
                batch_size: raw.batch_size,
            });
        }

        let smtp = match self.smtp {
            None => None,
            Some(raw) => {
                check_address(path, "[smtp] from", &raw.from)?;
                let has_password = raw.password.is_some()
                    || raw.password_file.is_some()
                    || raw.password_env.is_some();
                oauth::check_method(path, "smtp", raw.auth, raw.oauth2.is_some(), has_password)?;
                let oauth2 = match raw.oauth2 {
                    Some(o) => {
                        let user = raw.username.clone().ok_or_else(|| {
                            ConfigError::new(
                                path,
                                "[smtp]: auth = \"oauth2\" needs username (the account the token is for)",
                            )
                        })?;
                        Some(std::sync::Arc::new(o.validate(path, "smtp", &user)?))
                    }
                    None => None,
                };
                let username = if oauth2.is_some() { None } else { raw.username };
                let secret = RawSecret::of(raw.password, raw.password_file, raw.password_env)
                    .resolve(path, "smtp")?;
                let credentials = match (username, secret) {
                    (Some(u), Some(p)) => Some((u, p)),
                    (None, None) => None,
                    (Some(_), None) => return Err(ConfigError::new(
                        path,
                        "[smtp]: username is set but no password, password_file or password_env",
                    )),
                    (None, Some(_)) => {
                        return Err(ConfigError::new(
                            path,
                            "[smtp]: a password is set but no username",
                        ))
                    }
                };
                Some(SmtpConfig {
                    port: raw.port.unwrap_or(match raw.tls {
                        TlsMode::Implicit => 465,
                        TlsMode::Starttls => 587,
                        TlsMode::None => 25,
                    }),
                    host: raw.host,
                    tls: raw.tls,
                    ca_file: raw.ca_file,
                    credentials,
                    oauth2,
                    from: raw.from,
                    timeout_secs: raw.timeout_secs,
                })
            }
        };
        if let Some(ft) = &self.file_transport {
            check_address(path, "[file_transport] from", &ft.from)?;
        }
        if self.security.require_aligned_auth && self.security.authserv_id.trim().is_empty() {
            return Err(ConfigError::new(
                path,
                "[security] require_aligned_auth needs authserv_id: the name your receiving server writes first in Authentication-Results",
            ));
        }
        if self.outbox.max_attempts == 0 {
            return Err(ConfigError::new(
                path,
                "[outbox] max_attempts must be at least 1",
            ));
        }
        let web = match self.web {
            Some(w) => w.validate(path)?,
            None => WebConfig {
                session_idle_minutes: default_idle_minutes(),
                undo_send_secs: default_undo_send_secs(),
                ..WebConfig::default()
            },
        };
        let web_token = match &self.metrics {
            Some(m) => m.web_token(path)?,
            None => None,
        };
        let metrics = MetricsConfig {
            web_token,
            listen: match self.metrics.and_then(|m| m.listen) {
                None => None,
                Some(l) => Some(l.trim().parse().map_err(|_| {
                    ConfigError::new(
                        path,
                        format!("[metrics] listen = {l:?} is not an address and port: use e.g. \"127.0.0.1:9187\""),
                    )
                })?),
            },
        };
        let webhooks = self
            .webhooks
            .into_iter()
            .enumerate()
            .map(|(i, w)| w.validate(path, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            web,
            metrics,
            log: self.log,
            webhooks,
            sla: Default::default(),
            path: path.to_path_buf(),
            database,
            support: self.support,
            imap,
            maildir: self.maildir,
            smtp,
            file_transport: self.file_transport,
            outbox: self.outbox,
            daemon: self.daemon,
            triage: self.triage,
            limits: self.limits,
            security: self.security,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[database]
url = "sqlite://data/test.db"
[support]
address = "support@example.test"
"#;

    #[test]
    fn a_shown_database_url_has_no_password() {
        for (url, shown) in [
            (
                "sqlite:///var/lib/servicedesk/desk.db",
                "sqlite:///var/lib/servicedesk/desk.db",
            ),
            (
                "postgres://desk:s3cr%40t@db.example:5432/servicedesk",
                "postgres://desk:***@db.example:5432/servicedesk",
            ),
            (
                "postgresql://desk:p@ss:w@db/servicedesk?sslmode=require",
                "postgresql://desk:***@db/servicedesk?sslmode=require",
            ),
            (
                "postgres://db/servicedesk?user=desk&password=s3cret",
                "postgres://db/servicedesk?user=desk&password=***",
            ),
            (
                "postgres://desk@db/servicedesk",
                "postgres://desk@db/servicedesk",
            ),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }

    #[test]
    fn the_database_password_comes_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.secret");
        std::fs::write(&file, "p@ss:w/rd\n").unwrap();
        let text = format!(
            "[database]\nurl = \"postgres://desk@db.example:5432/servicedesk?sslmode=require\"\npassword_file = \"{}\"\n[support]\naddress = \"support@example.test\"\n",
            file.display()
        );
        let c = Config::parse(Path::new("x.toml"), &text).unwrap();
        assert_eq!(
            c.database.connect_url(),
            "postgres://desk:p%40ss%3Aw%2Frd@db.example:5432/servicedesk?sslmode=require"
        );
        assert_eq!(
            c.database.shown_url(),
            "postgres://desk@db.example:5432/servicedesk?sslmode=require"
        );
        assert!(!format!("{c:?}").contains("p@ss"), "{c:?}");

        std::env::set_var("SERVICEDESK_TEST_DB_PASSWORD", "hunter2");
        let text = "[database]\nurl = \"postgres://desk@db/sd\"\npassword_env = \"SERVICEDESK_TEST_DB_PASSWORD\"\n[support]\naddress = \"support@example.test\"\n";
        let c = Config::parse(Path::new("x.toml"), text).unwrap();
        assert_eq!(c.database.connect_url(), "postgres://desk:hunter2@db/sd");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn database_password_mistakes_are_named_without_the_password() {
        for (db, expected) in [
            (
                "url = \"postgres://desk:hunter2@db/sd\"\npassword = \"hunter2\"",
                "keep it in one place",
            ),
            (
                "url = \"postgres://db/sd\"\npassword = \"hunter2\"",
                "name the user",
            ),
            (
                "url = \"sqlite://x.db\"\npassword = \"hunter2\"",
                "SQLite database has no password",
            ),
            (
                "url = \"mysql://desk:hunter2@db/sd\"",
                "use sqlite://FILE or postgres://",
            ),
        ] {
            let text = format!("[database]\n{db}\n[support]\naddress = \"support@example.test\"\n");
            let err = Config::parse(Path::new("x.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(Path::new("x.toml"), MINIMAL).unwrap();
        assert_eq!(c.support.ticket_prefix, "CS");
        assert!(c.imap.is_empty());
        assert_eq!(c.outbox.max_attempts, 12);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let text = format!("{MINIMAL}\n[imap]\nhost = \n");
        let err = Config::parse(Path::new("conf/x.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("conf/x.toml: line 8"), "{err}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let text = format!("{MINIMAL}colour = \"blue\"\n");
        let err = Config::parse(Path::new("x.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn a_wrong_default_language_names_its_line_and_the_languages() {
        let text = MINIMAL.replace("[support]\n", "[support]\ndefault_language = \"es\"\n");
        let err = Config::parse(Path::new("x.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml: line 5: \"es\" is not a language: use nl, fr, en or de"),
            "{err}"
        );
    }

    /// A typo in any section names its line and the fix.
    #[test]
    fn a_typo_in_any_section_names_its_line_and_the_fix() {
        let imap = "[imap]\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\n";
        let smtp = "[smtp]\nhost = \"h\"\nfrom = \"Desk <support@example.test>\"\n";
        for (extra, wanted) in [
            (format!("{imap}passwrd = \"x\"\n"), "did you mean `password`?"),
            (format!("{imap}tls = \"implict\"\n"), "`implict` is not allowed here: use implicit, starttls, none; did you mean `implicit`?"),
            ("[[imap]]\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\n[[imap]]\nhots = \"h\"\n".to_string(), "did you mean `host`?"),
            (format!("{smtp}timeout_sec = 5\n"), "did you mean `timeout_secs`?"),
            ("[outbox]\nmax_attempt = 3\n".to_string(), "did you mean `max_attempts`?"),
            ("[daemon]\nlease_sec = 3\n".to_string(), "did you mean `lease_secs`?"),
            ("[limits]\nloop_max_ticket = 3\n".to_string(), "did you mean `loop_max_tickets`?"),
            ("[triage]\nmodel = \"m.bin\"\n".to_string(), "did you mean `model_file`?"),
            ("[security]\nrequire_aligned = true\n".to_string(), "did you mean `require_aligned_auth`?"),
            ("[maildir]\npaht = \"m\"\n".to_string(), "did you mean `path`?"),
            ("[web]\nlisen = \"127.0.0.1:8080\"\n".to_string(), "did you mean `listen`?"),
        ] {
            let text = format!("{MINIMAL}{extra}");
            // The typo is always on the last line.
            let line = text.lines().count();
            let err = Config::parse(Path::new("x.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("x.toml: line {line}: ")), "{err}\n{text}");
            assert!(err.contains(wanted), "{err}");
        }
    }

    #[test]
    fn limits_keys_sit_flat_in_one_table() {
        let c = Config::parse(Path::new("x.toml"), MINIMAL).unwrap();
        assert_eq!(c.limits, crate::triage::Limits::default());
        assert_eq!(c.limits.max_message_bytes, 25 * 1024 * 1024);
        let text = format!("{MINIMAL}[limits]\nloop_max_tickets = 5\nmax_message_bytes = 100\n");
        let c = Config::parse(Path::new("x.toml"), &text).unwrap();
        assert_eq!(c.limits.loop_max_tickets, 5);
        assert_eq!(c.limits.loop_window_minutes, 10);
        assert_eq!(c.limits.max_message_bytes, 100);
    }

    #[test]
    fn unknown_limits_key_is_refused_at_its_line_with_the_known_ones() {
        let text = format!("{MINIMAL}[limits]\nloop_max_tickets = 5\ncolour = 1\n");
        let err = Config::parse(Path::new("x.toml"), &text)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "x.toml: line 8: unknown key `colour` (known keys: no_ticket_replies_per_day, \
             no_ticket_replies_per_hour, loop_max_tickets, loop_window_minutes, \
             reopen_closed_within_days, max_message_bytes)"
        );
    }

    #[test]
    fn web_section_is_checked_with_the_fix() {
        let parse = |extra: &str| Config::parse(Path::new("x.toml"), &format!("{MINIMAL}{extra}"));
        let c = parse(
            "[web]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://Desk.example.test/\"\n",
        )
        .unwrap();
        assert_eq!(c.web.listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(
            c.web.public_url.as_deref(),
            Some("https://desk.example.test")
        );
        assert!(c.web.secure_cookies());
        assert_eq!(c.web.session_idle_minutes, 480);
        assert_eq!(c.web.undo_send_secs, 10);
        assert_eq!(
            parse("[web]\nundo_send_secs = 0\n")
                .unwrap()
                .web
                .undo_send_secs,
            0
        );
        assert!(parse("[web]\nundo_send_secs = 3600\n")
            .unwrap_err()
            .to_string()
            .contains("undo_send_secs"));
        let err = parse("[web]\nlisten = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[web] listen") && err.contains("127.0.0.1:8080"),
            "{err}"
        );
        let err = parse("[web]\npublic_url = \"desk.example.test/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[web] public_url") && err.contains("https://"),
            "{err}"
        );
        let plain = parse("[web]\npublic_url = \"http://desk.lan:8080\"\n").unwrap();
        assert!(!plain.web.secure_cookies());
        assert_eq!(parse("").unwrap().web.listen, None);
    }

    #[test]
    fn webhooks_are_checked_with_the_fix() {
        let parse = |extra: &str| Config::parse(Path::new("x.toml"), &format!("{MINIMAL}{extra}"));
        let hook =
            |rest: &str| format!("[[webhooks]]\nurl = \"https://crm.example.test/hook\"\n{rest}");
        let c = parse(&hook(
            "secret = \"0123456789abcdef\"\nevents = [\"ticket.created\"]\n",
        ))
        .unwrap();
        assert_eq!(c.webhooks.len(), 1);
        assert_eq!(c.webhooks[0].events, vec!["ticket.created"]);
        assert_eq!(c.webhooks[0].secret.expose(), "0123456789abcdef");
        assert!(!format!("{:?}", c.webhooks[0]).contains("0123456789abcdef"));
        let all = parse(&hook("secret = \"0123456789abcdef\"\n")).unwrap();
        assert_eq!(all.webhooks[0].events.len(), 3);
        for (rest, want) in [
            ("", "give a secret"),
            ("secret = \"short\"\n", "at least 16"),
            (
                "secret = \"0123456789abcdef\"\nevents = [\"ticket.deleted\"]\n",
                "unknown event \"ticket.deleted\": use ticket.created",
            ),
            (
                "secret = \"0123456789abcdef\"\nsecret_env = \"X\"\n",
                "only one of secret",
            ),
        ] {
            let err = parse(&hook(rest)).unwrap_err().to_string();
            assert!(
                err.contains("[[webhooks]] number 1") && err.contains(want),
                "{err}"
            );
        }
        let err = parse("[[webhooks]]\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http:// or https://"), "{err}");
    }

    #[test]
    fn metrics_listen_is_checked_with_the_fix() {
        let parse = |extra: &str| Config::parse(Path::new("x.toml"), &format!("{MINIMAL}{extra}"));
        let c = parse("[metrics]\nlisten = \"127.0.0.1:9187\"\n").unwrap();
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9187".parse().unwrap()));
        let err = parse("[metrics]\nlisten = \":9187\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[metrics] listen") && err.contains("127.0.0.1:9187"),
            "{err}"
        );
        let err = parse("[metrics]\nport = 9187\n").unwrap_err().to_string();
        assert!(err.contains("port"), "{err}");
        assert_eq!(parse("").unwrap().metrics.listen, None);
    }

    #[test]
    fn password_never_in_debug() {
        let text = format!(
            "{MINIMAL}[imap]\nhost = \"h\"\nusername = \"u\"\npassword = \"hunter2-secret\"\n"
        );
        let c = Config::parse(Path::new("x.toml"), &text).unwrap();
        assert_eq!(c.imap[0].password.expose(), "hunter2-secret");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn password_from_env_and_missing_env() {
        std::env::set_var("SD_TEST_PW_CONFIG", "from-env");
        let text = format!(
            "{MINIMAL}[smtp]\nhost = \"h\"\nusername = \"u\"\npassword_env = \"SD_TEST_PW_CONFIG\"\nfrom = \"Desk <support@example.test>\"\n"
        );
        let c = Config::parse(Path::new("x.toml"), &text).unwrap();
        let (user, pw) = c.smtp.unwrap().credentials.unwrap();
        assert_eq!((user.as_str(), pw.expose()), ("u", "from-env"));
        let err = Config::parse(
            Path::new("x.toml"),
            &text.replace("SD_TEST_PW_CONFIG", "SD_NOPE"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("SD_NOPE is not set"), "{err}");
    }

    #[test]
    fn shipped_example_parses() {
        std::env::set_var("SERVICEDESK_IMAP_PASSWORD", "example");
        let c = Config::parse(
            Path::new("config/servicedesk.toml"),
            include_str!("../../config/servicedesk.toml"),
        )
        .unwrap();
        assert_eq!(c.imap[0].password.expose(), "example");
        assert!(c.smtp.is_some());
        assert_eq!(c.sla.tiers.len(), 2);
        assert_eq!(c.sla.default_tier, None);
    }

    #[test]
    fn several_mailboxes() {
        let text = format!(
            "{MINIMAL}[[imap]]\nhost = \"h\"\nusername = \"a\"\npassword = \"p\"\n[[imap]]\nhost = \"h\"\nusername = \"b\"\npassword = \"p\"\nmailbox = \"FR\"\n"
        );
        let c = Config::parse(Path::new("x.toml"), &text).unwrap();
        assert_eq!(c.imap.len(), 2);
        assert_eq!(c.imap[1].mailbox, "FR");
    }
}
