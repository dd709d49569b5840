//! SMTP delivery: lettre speaks the protocol, over connections opened here.
//!
//! Opening the connections ourselves lets them set `TCP_NODELAY`. Without it,
//! every reply waits about 40 ms for Nagle's algorithm and the server's
//! delayed ACK (the end of DATA is a small write after a small write), so a
//! connection manages some 20 replies a second; with it, hundreds.
//!
//! Connections are kept for reuse, up to as many as are sending at once, and
//! checked with NOOP before they are used again.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::{SmtpConfig, TlsMode};

/// Connections idle longer than this are closed rather than reused: servers
/// drop idle clients after a while (Postfix after 300 s).
const MAX_IDLE: Duration = Duration::from_secs(60);

/// What a failed AUTH says.
const REFUSED: &str = "login refused";

/// Why one send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered 5xx: this reply will never be accepted as it is.
    Permanent(String),
    /// The server answered 4xx: try this reply again later.
    Transient(String),
    /// The server could not be reached, refused our login, or the link
    /// broke: try everything later.
    Unreachable(String),
}

/// Sends raw messages to one SMTP server.
pub struct SmtpSender {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    /// With `auth = "oauth2"`: the account and its token source (XOAUTH2).
    oauth: Option<(String, Arc<crate::oauth::TokenSource>)>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    keep: usize,
}

enum Tls {
    None,
    Starttls(TlsParameters),
    Implicit(Arc<rustls::ClientConfig>),
}

impl fmt::Debug for SmtpSender {
    // By hand: the credentials stay out of every log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// A sender for `[smtp]`, keeping at most `keep` idle connections;
    /// OAuth2 tokens (`auth = "oauth2"`) come from `tokens`.
    ///
    /// # Errors
    ///
    /// When a CA file cannot be read.
    pub fn new(
        c: &SmtpConfig,
        keep: usize,
        tokens: &crate::oauth::Tokens,
    ) -> anyhow::Result<SmtpSender> {
        let tls = match c.tls {
            TlsMode::None => Tls::None,
            TlsMode::Implicit => Tls::Implicit(
                crate::tls::client_config(c.ca_file.as_deref())
                    .map_err(|e| anyhow::anyhow!("[smtp] {e}"))?,
            ),
            TlsMode::Starttls => {
                let mut b = TlsParameters::builder(c.host.clone());
                if let Some(ca) = &c.ca_file {
                    let pem = std::fs::read(ca)
                        .map_err(|e| anyhow::anyhow!("[smtp] ca_file {}: {e}", ca.display()))?;
                    b = b
                        .add_root_certificate(Certificate::from_pem(&pem).map_err(|e| {
                            anyhow::anyhow!("[smtp] ca_file {}: {e}", ca.display())
                        })?);
                }
                Tls::Starttls(b.build_rustls()?)
            }
        };
        Ok(SmtpSender {
            host: c.host.clone(),
            port: c.port,
            tls,
            credentials: c
                .credentials
                .as_ref()
                .map(|(user, password)| Credentials::new(user.clone(), password.expose().into())),
            oauth: match &c.oauth2 {
                Some(o) => Some((o.username.clone(), tokens.source(o)?)),
                None => None,
            },
            timeout: Duration::from_secs(c.timeout_secs),
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            keep,
        })
    }

    /// The longest one send can take, all steps together.
    pub fn budget(&self) -> Duration {
        self.timeout * 3
    }

    /// Connects, greets, upgrades to TLS and logs in as a send would, then
    /// says goodbye without sending anything. For `servicedesk doctor`.
    ///
    /// # Errors
    ///
    /// The first step that failed, as a send would report it.
    pub async fn check(&self) -> Result<(), Failure> {
        let mut conn = self.connect().await?;
        let _ = tokio::time::timeout(self.timeout, conn.quit()).await;
        Ok(())
    }

    /// Sends `raw` to the envelope's recipients.
    ///
    /// # Errors
    ///
    /// How it failed; the connection is then dropped.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), Failure> {
        tokio::time::timeout(self.budget(), self.try_send(envelope, raw))
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Unreachable(format!(
                    "{}: no delivery within {} s",
                    self.server(),
                    self.budget().as_secs()
                )))
            })
    }

    async fn try_send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), Failure> {
        let mut conn = match self.reusable().await {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        match tokio::time::timeout(self.timeout, conn.send(envelope, raw)).await {
            Ok(Ok(_)) => {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < self.keep {
                    idle.push((conn, Instant::now()));
                }
                Ok(())
            }
            Ok(Err(e)) => Err(if e.is_permanent() {
                Failure::Permanent(e.to_string())
            } else if e.is_transient() {
                Failure::Transient(e.to_string())
            } else {
                Failure::Unreachable(self.describe(&e))
            }),
            Err(_) => Err(Failure::Unreachable(format!(
                "{}: no answer within {} s",
                self.server(),
                self.timeout.as_secs()
            ))),
        }
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn describe(&self, e: &dyn std::error::Error) -> String {
        let mut out = format!("{}: {e}", self.server());
        let mut source = e.source();
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }

    /// An idle connection that still answers NOOP, if any.
    async fn reusable(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
            if since.elapsed() < MAX_IDLE
                && tokio::time::timeout(self.timeout, conn.test_connected())
                    .await
                    .unwrap_or(false)
            {
                return Some(conn);
            }
        }
    }

    /// A connection, logged in.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let Some((user, source)) = &self.oauth else {
            return self.open(self.credentials.as_ref()).await;
        };
        let unavailable = |e: crate::oauth::OAuthError| Failure::Unreachable(e.to_string());
        let token = source.token().await.map_err(unavailable)?;
        match self
            .open(Some(&Credentials::new(user.clone(), token.expose().into())))
            .await
        {
            // A refused token: a new one, once, on a new connection (the
            // refused AUTH may leave the old one out of step).
            Err(Failure::Unreachable(e)) if e.contains(REFUSED) => {
                let token = source.renew(&token).await.map_err(unavailable)?;
                self.open(Some(&Credentials::new(user.clone(), token.expose().into())))
                    .await
            }
            other => other,
        }
    }

    /// A connection, logged in with `credentials` (XOAUTH2 when the
    /// secret is an OAuth2 token).
    async fn open(
        &self,
        credentials: Option<&Credentials>,
    ) -> Result<AsyncSmtpConnection, Failure> {
        let server = self.server();
        let bounded = |what: &'static str| {
            let server = server.clone();
            let secs = self.timeout.as_secs();
            move |_| Failure::Unreachable(format!("{server}: {what}: no answer within {secs} s"))
        };
        let tcp = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(bounded("connect"))?
        .map_err(|e| Failure::Unreachable(format!("{server}: cannot connect: {e}")))?;
        // Why this module exists: see the module documentation.
        tcp.set_nodelay(true)
            .map_err(|e| Failure::Unreachable(format!("{server}: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.tls {
            Tls::Implicit(config) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| {
                    Failure::Unreachable(format!("{server}: not a TLS server name: {e}"))
                })?;
                let tls = tokio::time::timeout(
                    self.timeout,
                    tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp),
                )
                .await
                .map_err(bounded("TLS handshake"))?
                .map_err(|e| Failure::Unreachable(format!("{server}: TLS handshake: {e}")))?;
                Box::new(TlsTcp(tls))
            }
            Tls::None | Tls::Starttls(_) => Box::new(tcp),
        };
        let mut conn = tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
        )
        .await
        .map_err(bounded("greeting"))?
        .map_err(|e| Failure::Unreachable(self.describe(&e)))?;
        if let Tls::Starttls(params) = &self.tls {
            if !conn.can_starttls() {
                return Err(Failure::Unreachable(format!(
                    "{server}: the server does not offer STARTTLS, which [smtp] tls requires"
                )));
            }
            tokio::time::timeout(self.timeout, conn.starttls(params.clone(), &self.hello))
                .await
                .map_err(bounded("STARTTLS"))?
                .map_err(|e| Failure::Unreachable(self.describe(&e)))?;
        }
        if let Some(credentials) = credentials {
            let mechanisms: &[Mechanism] = if self.oauth.is_some() {
                &[Mechanism::Xoauth2]
            } else {
                DEFAULT_MECHANISMS
            };
            // A refused login is a setting to fix, not a reason to give up
            // on the replies: they wait, and the error says what happened.
            tokio::time::timeout(self.timeout, conn.auth(mechanisms, credentials))
                .await
                .map_err(bounded("AUTH"))?
                .map_err(|e| Failure::Unreachable(format!("{server}: {REFUSED}: {e}")))?;
        }
        Ok(conn)
    }
}

/// A TLS connection as lettre's client wants its streams.
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
