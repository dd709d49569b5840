//! The support mailbox over IMAP: connect (implicit TLS, STARTTLS or plain),
//! log in (a password, or an OAuth2 token from [`crate::oauth`]), fetch messages in UID batches without marking them read, and move
//! them to the processed or quarantine folder once their outcome is committed.
//!
//! The source knows nothing about tickets; it hands out raw bytes with a
//! stable key (account, mailbox, UIDVALIDITY, UID) and moves what it is told.

use std::collections::BTreeSet;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use async_imap::{Client, Session};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::{ImapConfig, TlsMode};
use crate::oauth::Tokens;
use crate::pipeline::Disposition;

/// How long connecting and logging in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one command may take before the connection is considered dead.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// At most this many bytes of message bodies are fetched in one round trip.
const BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// An IMAP failure, sorted by what the daemon can do about it.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// Network trouble, a server restart, a timeout: reconnect and retry.
    #[error("IMAP connection to {server} failed: {reason}")]
    Connection { server: String, reason: String },
    /// The server refused the login: retrying will not help until fixed.
    #[error("IMAP login as {user} on {server} was refused: {reason}")]
    Login {
        server: String,
        user: String,
        reason: String,
    },
    /// No OAuth2 access token could be had (already logged by its source).
    #[error(transparent)]
    Token(#[from] crate::oauth::OAuthError),
    /// A command failed (e.g. the mailbox does not exist).
    #[error("IMAP {command} on {server} failed: {reason}")]
    Command {
        server: String,
        command: String,
        reason: String,
    },
}

/// Plain TCP or TLS, as one stream type for async-imap.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A UID and the message's RFC822.SIZE.
type UidSize = (u32, u64);

/// One fetched message.
#[derive(Debug)]
pub struct Fetched {
    pub uid: u32,
    /// `imap:{user}@{host}:{port}/{mailbox};UIDVALIDITY={v}/UID={uid}`.
    pub key: String,
    pub raw: Vec<u8>,
    /// The full size, when the message was too large and `raw` is only its header.
    pub oversized: Option<u64>,
}

/// A logged-in connection with the support mailbox selected.
pub struct ImapSource {
    config: ImapConfig,
    session: Session<ImapStream>,
    uid_validity: u32,
    has_move: bool,
    has_idle: bool,
    has_uidplus: bool,
}

impl fmt::Debug for ImapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSource")
            .field("server", &self.server())
            .field("mailbox", &self.config.mailbox)
            .field("uid_validity", &self.uid_validity)
            .finish()
    }
}

fn server_name(c: &ImapConfig) -> String {
    format!("{}:{}", c.host, c.port)
}

/// `1:3,5,7:9` from a set of UIDs.
pub fn uid_set(uids: &[u32]) -> String {
    let sorted: BTreeSet<u32> = uids.iter().copied().collect();
    let mut out: Vec<String> = Vec::new();
    let mut iter = sorted.into_iter().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
    }
    out.join(",")
}

/// The sequence numbers a batch is looked for in: a few batches' worth, so
/// messages marked deleted (but not yet expunged) at the front do not hide
/// the rest.
fn search_window(batch_size: u32) -> String {
    format!("1:{}", batch_size.saturating_mul(4).max(1))
}

/// Quotes a mailbox name for a command line. Only for LIST, whose pattern
/// async-imap passes through as is; its other commands quote names themselves.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// True when the server answered NO or BAD, as opposed to a broken link.
fn is_refusal(e: &async_imap::error::Error) -> bool {
    matches!(
        e,
        async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_)
    )
}

async fn timed<T>(
    server: &str,
    command: &str,
    fut: impl std::future::Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let reason = e.to_string();
            // async-imap reports a NO/BAD as a No/Bad error, anything else is the link.
            if is_refusal(&e) {
                Err(ImapError::Command {
                    server: server.into(),
                    command: command.into(),
                    reason,
                })
            } else {
                Err(ImapError::Connection {
                    server: server.into(),
                    reason: format!("{command}: {reason}"),
                })
            }
        }
        Err(_) => Err(ImapError::Connection {
            server: server.into(),
            reason: format!("{command}: no answer within {}s", COMMAND_TIMEOUT.as_secs()),
        }),
    }
}

async fn tls_wrap(
    config: &ImapConfig,
    tcp: TcpStream,
    tls: Arc<rustls::ClientConfig>,
) -> Result<ImapStream, ImapError> {
    let server = server_name(config);
    let name = rustls::pki_types::ServerName::try_from(config.host.clone()).map_err(|e| {
        ImapError::Connection {
            server: server.clone(),
            reason: format!("invalid TLS server name: {e}"),
        }
    })?;
    let stream = TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| ImapError::Connection {
            server,
            reason: format!("TLS handshake: {e}"),
        })?;
    Ok(ImapStream::Tls(Box::new(stream)))
}

impl ImapSource {
    /// Connects, logs in, creates the processed and quarantine folders when
    /// missing and selects the mailbox.
    ///
    /// # Errors
    ///
    /// [`ImapError::Connection`] for network and TLS trouble,
    /// [`ImapError::Login`] when the credentials are refused,
    /// [`ImapError::Token`] when no OAuth2 token could be had,
    /// [`ImapError::Command`] when the mailbox cannot be selected.
    pub async fn connect(config: &ImapConfig, tokens: &Tokens) -> Result<ImapSource, ImapError> {
        let server = server_name(config);
        let (mut session, caps) = open(config, tokens).await?;
        let has_move = caps.iter().any(|c| c == "MOVE");
        let has_idle = caps.iter().any(|c| c == "IDLE");
        let has_uidplus = caps.iter().any(|c| c == "UIDPLUS");
        for folder in [&config.processed_folder, &config.quarantine_folder] {
            ensure_folder(&mut session, &server, folder).await?;
        }
        let mailbox = timed(&server, "SELECT", session.select(&config.mailbox)).await?;
        let uid_validity = mailbox.uid_validity.unwrap_or(0);
        tracing::debug!(
            server,
            mailbox = config.mailbox,
            uid_validity,
            has_move,
            has_idle,
            "IMAP ready"
        );
        Ok(ImapSource {
            config: config.clone(),
            session,
            uid_validity,
            has_move,
            has_idle,
            has_uidplus,
        })
    }

    /// Connects, logs in and looks, changing nothing: whether the mailbox
    /// can be read (EXAMINE, read-only), which of the processed and
    /// quarantine folders exist, and which capabilities the server offers.
    /// For `servicedesk doctor`.
    ///
    /// # Errors
    ///
    /// As [`ImapSource::connect`].
    pub async fn check(config: &ImapConfig, tokens: &Tokens) -> Result<MailboxCheck, ImapError> {
        let server = server_name(config);
        let (mut session, capabilities) = open(config, tokens).await?;
        let mut missing_folders = Vec::new();
        for folder in [&config.processed_folder, &config.quarantine_folder] {
            if !folder_exists(&mut session, &server, folder).await? {
                missing_folders.push(folder.clone());
            }
        }
        let mailbox = timed(&server, "EXAMINE", session.examine(&config.mailbox)).await?;
        let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        Ok(MailboxCheck {
            messages: mailbox.exists,
            missing_folders,
            capabilities,
        })
    }
}

/// What `servicedesk doctor` learns about a mailbox without changing it.
#[derive(Debug, Clone)]
pub struct MailboxCheck {
    /// Messages in the mailbox now.
    pub messages: u32,
    /// The processed and quarantine folders that do not exist yet (the
    /// daemon creates them when it starts).
    pub missing_folders: Vec<String>,
    pub capabilities: Vec<String>,
}

/// TCP, TLS (implicit or STARTTLS), the greeting, the login and the
/// server's capabilities: what both reading and checking a mailbox start with.
async fn open(
    config: &ImapConfig,
    tokens: &Tokens,
) -> Result<(Session<ImapStream>, Vec<String>), ImapError> {
    let server = server_name(config);
    let conn_err = |reason: String| ImapError::Connection {
        server: server.clone(),
        reason,
    };
    let tls = match config.tls {
        TlsMode::None => None,
        _ => Some(
            crate::tls::client_config(config.ca_file.as_deref())
                .map_err(|e| conn_err(format!("{e:#}")))?,
        ),
    };
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((config.host.as_str(), config.port)),
    )
    .await
    .map_err(|_| conn_err("connect timed out".into()))?
    .map_err(|e| conn_err(e.to_string()))?;
    tcp.set_nodelay(true).ok();

    // The capabilities the greeting announces (Dovecot's do, with the
    // SASL mechanisms; Gmail's and Exchange's do not).
    let announced;
    let client = match (config.tls, tls) {
        (TlsMode::Implicit, Some(tls)) => {
            let mut client = Client::new(tls_wrap(config, tcp, tls).await?);
            announced = greeting(&mut client, &server).await?;
            client
        }
        (TlsMode::Starttls, Some(tls)) => {
            let mut client = Client::new(ImapStream::Plain(tcp));
            announced = greeting(&mut client, &server).await?;
            timed(
                &server,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            let ImapStream::Plain(tcp) = client.into_inner() else {
                unreachable!("the stream is plain before STARTTLS")
            };
            Client::new(tls_wrap(config, tcp, tls).await?)
        }
        _ => {
            let mut client = Client::new(ImapStream::Plain(tcp));
            announced = greeting(&mut client, &server).await?;
            client
        }
    };
    if let Some(oauth2) = &config.oauth2 {
        let source = tokens
            .source(oauth2)
            .map_err(|e| conn_err(format!("{e:#}")))?;
        let session = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            oauth_login(config, client, &source, &announced),
        )
        .await
        .map_err(|_| conn_err("login timed out".into()))??;
        return with_capabilities(session, &server).await;
    }
    let login = tokio::time::timeout(
        CONNECT_TIMEOUT,
        client.login(&config.username, config.password.expose()),
    )
    .await
    .map_err(|_| conn_err("login timed out".into()))?;
    let session = match login {
        Ok(s) => s,
        Err((e, _)) => {
            let reason = e.to_string();
            return Err(if is_refusal(&e) {
                ImapError::Login {
                    server,
                    user: config.username.clone(),
                    reason,
                }
            } else {
                conn_err(format!("login: {reason}"))
            });
        }
    };
    with_capabilities(session, &server).await
}

/// The session and the capabilities it has after login.
async fn with_capabilities(
    mut session: Session<ImapStream>,
    server: &str,
) -> Result<(Session<ImapStream>, Vec<String>), ImapError> {
    let caps = timed(server, "CAPABILITY", session.capabilities()).await?;
    let mut names: Vec<String> = caps
        .iter()
        .filter_map(|c| match c {
            async_imap::types::Capability::Atom(a) => Some(a.to_string()),
            _ => None,
        })
        .collect();
    names.sort();
    Ok((session, names))
}

impl ImapSource {
    pub fn server(&self) -> String {
        server_name(&self.config)
    }

    pub fn has_idle(&self) -> bool {
        self.has_idle
    }

    fn key(&self, uid: u32) -> String {
        format!(
            "imap:{}@{}:{}/{};UIDVALIDITY={}/UID={uid}",
            self.config.username,
            self.config.host,
            self.config.port,
            self.config.mailbox,
            self.uid_validity
        )
    }

    /// The next batch of messages in the mailbox, oldest first, not marked
    /// read. Empty when the mailbox is empty.
    ///
    /// # Errors
    ///
    /// When the connection fails; nothing has changed on the server then.
    pub async fn fetch_batch(&mut self, max_message_bytes: u64) -> Result<Vec<Fetched>, ImapError> {
        let server = self.server();
        // The oldest messages by sequence number first: a search of the
        // whole mailbox would list every UID of a large backlog for every
        // batch. Only when that window is empty (or the server refuses an
        // out-of-range window) is the whole mailbox searched.
        let window = format!("{} UNDELETED", search_window(self.config.batch_size));
        let uids = match timed(&server, "UID SEARCH", self.session.uid_search(&window)).await {
            Ok(uids) if !uids.is_empty() => uids,
            Ok(_) | Err(ImapError::Command { .. }) => {
                timed(&server, "UID SEARCH", self.session.uid_search("UNDELETED")).await?
            }
            Err(e) => return Err(e),
        };
        let mut uids: Vec<u32> = uids.into_iter().collect();
        uids.sort_unstable();
        uids.truncate(self.config.batch_size as usize);
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        // Sizes first, so one round trip never holds more than BATCH_BYTES of bodies.
        let sizes: Vec<(u32, u64)> = self
            .uid_fetch_all(&uids, "(UID RFC822.SIZE)")
            .await?
            .iter()
            .filter_map(|f| Some((f.uid?, u64::from(f.size.unwrap_or(0)))))
            .collect();
        // Too large to read whole: only the header is fetched.
        let (big, sizes): (Vec<UidSize>, Vec<UidSize>) = sizes
            .into_iter()
            .partition(|(_, size)| *size > max_message_bytes);
        let mut chosen = Vec::new();
        let mut total = 0u64;
        for (uid, size) in sizes {
            if !(chosen.is_empty() && big.is_empty()) && total + size > BATCH_BYTES {
                break;
            }
            total += size;
            chosen.push(uid);
        }
        let mut out = Vec::new();
        if !chosen.is_empty() {
            let fetches = self.uid_fetch_all(&chosen, "(UID BODY.PEEK[])").await?;
            // Each response is dropped once its body is copied out, so a
            // batch is not held twice.
            out.extend(fetches.into_iter().filter_map(|f| {
                let uid = f.uid?;
                Some(Fetched {
                    uid,
                    key: self.key(uid),
                    raw: f.body().unwrap_or_default().to_vec(),
                    oversized: None,
                })
            }));
        }
        if !big.is_empty() {
            let uids: Vec<u32> = big.iter().map(|(u, _)| *u).collect();
            let fetches = self.uid_fetch_all(&uids, "(UID BODY.PEEK[HEADER])").await?;
            out.extend(fetches.iter().filter_map(|f| {
                let uid = f.uid?;
                let size = big.iter().find(|(u, _)| *u == uid).map(|(_, s)| *s)?;
                Some(Fetched {
                    uid,
                    key: self.key(uid),
                    raw: f.header().unwrap_or_default().to_vec(),
                    oversized: Some(size),
                })
            }));
        }
        out.sort_by_key(|f| f.uid);
        Ok(out)
    }

    /// `UID FETCH` of these UIDs, all responses collected.
    async fn uid_fetch_all(
        &mut self,
        uids: &[u32],
        query: &str,
    ) -> Result<Vec<async_imap::types::Fetch>, ImapError> {
        let server = self.server();
        timed(&server, "UID FETCH", async {
            self.session
                .uid_fetch(uid_set(uids), query)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await
    }

    /// Moves finished messages out of the mailbox: one command per folder.
    ///
    /// # Errors
    ///
    /// When the connection fails. The messages then stay in the mailbox and
    /// are recognised by their key when fetched again.
    pub async fn finish(&mut self, done: &[(u32, Disposition)]) -> Result<(), ImapError> {
        for (disposition, folder) in [
            (Disposition::Processed, self.config.processed_folder.clone()),
            (
                Disposition::Quarantine,
                self.config.quarantine_folder.clone(),
            ),
        ] {
            let uids: Vec<u32> = done
                .iter()
                .filter(|(_, d)| *d == disposition)
                .map(|(u, _)| *u)
                .collect();
            if !uids.is_empty() {
                self.move_uids(&uids, &folder).await?;
            }
        }
        Ok(())
    }

    async fn move_uids(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        let server = self.server();
        let set = uid_set(uids);
        if self.has_move {
            return timed(&server, "UID MOVE", self.session.uid_mv(&set, folder)).await;
        }
        // RFC 3501 fallback: copy, flag, expunge (only these UIDs where UIDPLUS allows).
        timed(&server, "UID COPY", self.session.uid_copy(&set, folder)).await?;
        timed(&server, "UID STORE", async {
            self.session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        if self.has_uidplus {
            timed(&server, "UID EXPUNGE", async {
                self.session
                    .uid_expunge(&set)
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?;
        } else {
            timed(&server, "EXPUNGE", async {
                self.session.expunge().await?.try_collect::<Vec<_>>().await
            })
            .await?;
        }
        Ok(())
    }

    /// Waits until the server reports new mail (IDLE), `timeout` passes, or
    /// `stop` resolves. Without IDLE this is a plain sleep.
    ///
    /// # Errors
    ///
    /// When the connection fails during the wait.
    pub async fn wait(
        self,
        timeout: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<ImapSource, ImapError> {
        let server = self.server();
        if !self.has_idle {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {},
                _ = stop => {},
            }
            return Ok(self);
        }
        // What arrived unasked before: the IDLE start only reports news the
        // server has not told us yet, so mail announced (EXISTS) after the
        // last search must be fetched now rather than after the IDLE timeout.
        let mut news = false;
        while let Ok(r) = self.session.unsolicited_responses.try_recv() {
            news |= matches!(r, UnsolicitedResponse::Exists(n) if n > 0);
        }
        if news {
            return Ok(self);
        }
        let ImapSource {
            config,
            session,
            uid_validity,
            has_move,
            has_idle,
            has_uidplus,
        } = self;
        let mut idle = session.idle();
        timed(&server, "IDLE", idle.init()).await?;
        {
            let (wait, _interrupt) = idle.wait_with_timeout(timeout);
            tokio::select! {
                r = wait => {
                    match r {
                        Ok(IdleResponse::NewData(_)) | Ok(IdleResponse::Timeout) | Ok(IdleResponse::ManualInterrupt) => {}
                        Err(e) => return Err(ImapError::Connection { server, reason: format!("IDLE: {e}") }),
                    }
                }
                _ = stop => {}
            }
        }
        let session = timed(&server, "DONE", idle.done()).await?;
        Ok(ImapSource {
            config,
            session,
            uid_validity,
            has_move,
            has_idle,
            has_uidplus,
        })
    }

    /// Says goodbye to the server; errors are irrelevant at this point.
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// `AUTHENTICATE` with an OAuth2 access token: OAUTHBEARER (RFC 7628)
/// where the server announced it, XOAUTH2 otherwise. A refused token is
/// renewed once and tried again on the same connection.
async fn oauth_login(
    config: &ImapConfig,
    mut client: Client<ImapStream>,
    source: &crate::oauth::TokenSource,
    announced: &[String],
) -> Result<Session<ImapStream>, ImapError> {
    let server = server_name(config);
    let bearer = announced
        .iter()
        .any(|c| c.eq_ignore_ascii_case("AUTH=OAUTHBEARER"));
    let sasl = |token: &crate::config::Secret| {
        crate::oauth::SaslToken::new(if bearer {
            crate::oauth::oauthbearer(&config.username, &config.host, config.port, token)
        } else {
            crate::oauth::xoauth2(&config.username, token)
        })
    };
    let mechanism = if bearer { "OAUTHBEARER" } else { "XOAUTH2" };
    let mut token = source.token().await?;
    let mut renewed = false;
    loop {
        match client.authenticate(mechanism, sasl(&token)).await {
            Ok(session) => return Ok(session),
            Err((e, again)) if is_refusal(&e) && !renewed => {
                client = again;
                token = source.renew(&token).await?;
                renewed = true;
            }
            Err((e, _)) => {
                let reason = e.to_string();
                return Err(if is_refusal(&e) {
                    ImapError::Login {
                        server,
                        user: config.username.clone(),
                        reason: format!("{mechanism} with a new OAuth2 token: {reason}"),
                    }
                } else {
                    ImapError::Connection {
                        server,
                        reason: format!("AUTHENTICATE: {reason}"),
                    }
                });
            }
        }
    }
}

/// Reads the greeting; the capabilities it announces, if any.
async fn greeting(client: &mut Client<ImapStream>, server: &str) -> Result<Vec<String>, ImapError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(r))) => Ok(match r.parsed() {
            async_imap::imap_proto::Response::Data {
                outcome:
                    async_imap::imap_proto::Outcome {
                        code: Some(async_imap::imap_proto::ResponseCode::Capabilities(caps)),
                        ..
                    },
                ..
            } => caps
                .iter()
                .map(|c| match c {
                    async_imap::imap_proto::Capability::Imap4rev1 => "IMAP4rev1".to_string(),
                    async_imap::imap_proto::Capability::Auth(a) => format!("AUTH={a}"),
                    async_imap::imap_proto::Capability::Atom(a) => a.to_string(),
                })
                .collect(),
            _ => Vec::new(),
        }),
        Ok(Ok(None)) => Err(ImapError::Connection {
            server: server.into(),
            reason: "closed before the greeting".into(),
        }),
        Ok(Err(e)) => Err(ImapError::Connection {
            server: server.into(),
            reason: format!("greeting: {e}"),
        }),
        Err(_) => Err(ImapError::Connection {
            server: server.into(),
            reason: "no greeting".into(),
        }),
    }
}

/// Whether `folder` exists (LIST), changing nothing.
async fn folder_exists(
    session: &mut Session<ImapStream>,
    server: &str,
    folder: &str,
) -> Result<bool, ImapError> {
    let existing = timed(server, "LIST", async {
        session
            .list(Some(""), Some(&quote(folder)))
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    Ok(!existing.is_empty())
}

async fn ensure_folder(
    session: &mut Session<ImapStream>,
    server: &str,
    folder: &str,
) -> Result<(), ImapError> {
    if !folder_exists(session, server, folder).await? {
        timed(server, "CREATE", session.create(folder)).await?;
        tracing::info!(server, folder, "created IMAP folder");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 7, 9, 10]), "1:3,5,7,9:10");
        assert_eq!(uid_set(&[4]), "4");
    }
}
