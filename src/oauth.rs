//! OAuth2 access tokens for mailboxes and the SMTP server: obtained from the
//! token endpoint (client credentials, or a refresh token stored by
//! `servicedesk oauth login`), cached, renewed shortly before they expire
//! and once more when the server refuses one; and the device-code sign-in
//! (RFC 8628) of `oauth login`. Also the SASL strings XOAUTH2 and
//! OAUTHBEARER (RFC 7628) that carry a token.
//!
//! Tokens, secrets and refresh tokens live in [`Secret`]s: never in a log
//! line, an error or `Debug`. A grant that stopped working (revoked,
//! expired, never signed in) is logged once, with the section and the fix,
//! counted in the metrics, and not asked for again in a loop: the token
//! endpoint is only asked again after a pause, or at once when a new
//! sign-in was stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Grant, OAuth2Config, Secret};
use crate::store::Store;

/// How long one request to the token endpoint may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A token is renewed this long before it expires at most (a fifth of its
/// lifetime when that is shorter).
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// After a refused grant, the endpoint is asked again with the same
/// credentials only after this long (a new sign-in is tried at once).
const REFUSED_PAUSE: Duration = Duration::from_secs(3600);
/// After the endpoint could not be reached: the first pause, doubling up to
/// [`UNREACHABLE_MAX`].
const UNREACHABLE_FIRST: Duration = Duration::from_secs(2);
const UNREACHABLE_MAX: Duration = Duration::from_secs(300);

/// Why no token could be had. Never holds a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// Nobody signed in yet for this account.
    #[error("[{section}] OAuth2: no sign-in stored for {username}: run `servicedesk oauth login {section}`")]
    LoginRequired { section: String, username: String },
    /// The stored sign-in was revoked or has expired (`invalid_grant`).
    #[error("[{section}] OAuth2: the sign-in for {username} was revoked or has expired (invalid_grant): run `servicedesk oauth login {section}` to sign in again")]
    Revoked { section: String, username: String },
    /// The endpoint refused the request for another reason (wrong client
    /// id or secret, scope not granted, ...): a setting to fix.
    #[error("[{section}] OAuth2: the token endpoint refused: {error}{description}; check {} client_id, client_secret (or certificate), tenant and scope, and the permissions granted to the application", crate::config::oauth::table_of(section))]
    Refused {
        section: String,
        error: String,
        description: String,
    },
    /// Network trouble or a server error: tried again later.
    #[error("[{section}] OAuth2: token endpoint {url} unavailable: {reason}")]
    Unreachable {
        section: String,
        url: String,
        reason: String,
    },
    /// The database holding the refresh token could not be read.
    #[error("[{section}] OAuth2: reading the stored sign-in: {reason}")]
    Store { section: String, reason: String },
}

impl OAuthError {
    /// The metric label of this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            OAuthError::LoginRequired { .. } => "login_required",
            OAuthError::Revoked { .. } => "invalid_grant",
            OAuthError::Refused { .. } => "refused",
            OAuthError::Unreachable { .. } => "unreachable",
            OAuthError::Store { .. } => "database",
        }
    }

    /// True when only a person can fix it (a sign-in or a setting).
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            OAuthError::LoginRequired { .. }
                | OAuthError::Revoked { .. }
                | OAuthError::Refused { .. }
        )
    }
}

/// What the token endpoint answered.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// A token in hand.
struct Cached {
    token: Secret,
    /// When to get a new one rather than hand this one out.
    renew_at: Instant,
}

/// Why the endpoint is not being asked right now.
struct Failing {
    error: OAuthError,
    /// The endpoint is asked again after this ...
    retry_at: Instant,
    /// ... or at once when the stored refresh token differs from this one.
    refresh_token: Option<Secret>,
    /// The pause after the next failure of the same kind.
    next_pause: Duration,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    failing: Option<Failing>,
}

/// One section's source of access tokens, shared by its connections.
pub struct TokenSource {
    config: Arc<OAuth2Config>,
    /// Where refresh tokens are kept; `None` only where no database could
    /// be opened (`doctor`), where client credentials still work.
    store: Option<Store>,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("section", &self.config.section)
            .finish_non_exhaustive()
    }
}

/// The token sources of one configuration, by section.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: Option<Store>,
    sources: Arc<std::sync::Mutex<HashMap<String, Arc<TokenSource>>>>,
}

impl Tokens {
    pub fn new(store: Store) -> Tokens {
        Tokens {
            store: Some(store),
            sources: Arc::default(),
        }
    }

    /// Makes the token sources of `config`'s sections in the order of the
    /// file, so a source shared by `[imap]` and `[smtp]` is named after
    /// the mailbox.
    ///
    /// # Errors
    ///
    /// When the CA file of a token endpoint cannot be read.
    pub fn prepare(&self, config: &crate::config::Config) -> anyhow::Result<()> {
        for section in sections(config) {
            self.source(&section)?;
        }
        Ok(())
    }

    /// Without a database: client credentials only (`servicedesk doctor`
    /// when the database cannot be opened).
    pub fn without_store() -> Tokens {
        Tokens {
            store: None,
            sources: Arc::default(),
        }
    }

    /// The token source of `config`'s section (made on first use).
    /// Sections that get the same tokens (one account, client and scope,
    /// as `[imap]` and `[smtp]` of one mailbox) share one source: one
    /// cache, and one refresh at a time, so a refresh token the endpoint
    /// rotates is never used twice.
    ///
    /// # Errors
    ///
    /// When the CA file of the token endpoint cannot be read.
    pub fn source(&self, config: &Arc<OAuth2Config>) -> anyhow::Result<Arc<TokenSource>> {
        let key = format!(
            "{} {} {} {} {}",
            config.grant.as_str(),
            config.token_url,
            config.client_id,
            config.username,
            config.scope
        );
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sources.get(&key) {
            return Ok(s.clone());
        }
        let source = Arc::new(TokenSource::new(config.clone(), self.store.clone())?);
        sources.insert(key, source.clone());
        Ok(source)
    }
}

/// An HTTP client for the token endpoints: our TLS settings, no redirects.
fn http_client(config: &OAuth2Config) -> anyhow::Result<reqwest::Client> {
    let tls = crate::tls::client_config(config.ca_file.as_deref())
        .map_err(|e| anyhow::anyhow!("{} {e:#}", config.table()))?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// `application/x-www-form-urlencoded` of these pairs.
fn form(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else if b == b' ' {
                out.push('+');
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The text of an endpoint's refusal, short and on one line.
fn shorten(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = one.chars().take(200).collect();
    if cut.len() < one.len() {
        cut.push('…');
    }
    cut
}

/// An error and its causes, on one line (reqwest's own says only "error
/// sending request").
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// POSTs `pairs` to `url`; the answer's JSON and HTTP status.
async fn post(
    http: &reqwest::Client,
    url: &str,
    pairs: &[(&str, &str)],
) -> Result<(u16, TokenAnswer), String> {
    let answer = http
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(form(pairs))
        .send()
        .await
        // Without the URL: reqwest's errors name it, and ours does already.
        .map_err(|e| causes(&e.without_url()))?;
    let status = answer.status().as_u16();
    let body = answer.bytes().await.map_err(|e| causes(&e.without_url()))?;
    let parsed = serde_json::from_slice::<TokenAnswer>(&body)
        .map_err(|_| format!("HTTP {status} without a JSON answer"))?;
    Ok((status, parsed))
}

impl TokenSource {
    /// # Errors
    ///
    /// When the CA file of the token endpoint cannot be read.
    pub fn new(config: Arc<OAuth2Config>, store: Option<Store>) -> anyhow::Result<TokenSource> {
        Ok(TokenSource {
            http: http_client(&config)?,
            config,
            store,
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    pub fn section(&self) -> &str {
        &self.config.section
    }

    pub fn username(&self) -> &str {
        &self.config.username
    }

    /// A valid access token: the cached one, or a new one.
    ///
    /// # Errors
    ///
    /// Why none could be had; logged once per kind of failure.
    pub async fn token(&self) -> Result<Secret, OAuthError> {
        let mut state = self.state.lock().await;
        if let Some(c) = &state.cached {
            if Instant::now() < c.renew_at {
                return Ok(c.token.clone());
            }
        }
        self.fetch(&mut state).await
    }

    /// A new access token after the server refused `refused`: the cache is
    /// dropped unless another connection renewed it meanwhile.
    ///
    /// # Errors
    ///
    /// As [`TokenSource::token`].
    pub async fn renew(&self, refused: &Secret) -> Result<Secret, OAuthError> {
        let mut state = self.state.lock().await;
        if let Some(c) = &state.cached {
            if c.token != *refused && Instant::now() < c.renew_at {
                return Ok(c.token.clone());
            }
        }
        state.cached = None;
        tracing::info!(
            section = self.config.section,
            "the server refused the OAuth2 access token; getting a new one"
        );
        self.fetch(&mut state).await
    }

    async fn fetch(&self, state: &mut State) -> Result<Secret, OAuthError> {
        match self.fetch_once(state).await {
            // Another daemon on the database may have used (and rotated)
            // the refresh token meanwhile: once more with the one stored now.
            Err(OAuthError::Revoked { .. }) if self.stored_changed(state).await => {
                self.fetch_once(state).await
            }
            other => other,
        }
    }

    /// True when the stored refresh token differs from the one that was
    /// just refused.
    async fn stored_changed(&self, state: &State) -> bool {
        let (Some(store), Some(failing)) = (&self.store, &state.failing) else {
            return false;
        };
        match store.oauth_refresh_token(&self.config.stored_as()).await {
            Ok(Some(now)) => failing.refresh_token.as_ref() != Some(&now),
            _ => false,
        }
    }

    async fn fetch_once(&self, state: &mut State) -> Result<Secret, OAuthError> {
        let c = &self.config;
        let refresh_token = match c.grant {
            Grant::ClientCredentials => None,
            Grant::RefreshToken => {
                let store_error = |reason: String| OAuthError::Store {
                    section: c.section.clone(),
                    reason,
                };
                let stored = match &self.store {
                    Some(store) => store
                        .oauth_refresh_token(&c.stored_as())
                        .await
                        .map_err(|e| store_error(e.to_string()))?,
                    None => return Err(store_error("the database is unavailable".into())),
                };
                match stored {
                    Some(t) => Some(t),
                    None => {
                        let e = OAuthError::LoginRequired {
                            section: c.section.clone(),
                            username: c.username.clone(),
                        };
                        return Err(self.failed(state, e, None, false));
                    }
                }
            }
        };
        if let Some(f) = &state.failing {
            // A sign-in stored since (or another one) is tried at once.
            let new_sign_in = f.refresh_token != refresh_token;
            if Instant::now() < f.retry_at && !new_sign_in {
                return Err(f.error.clone());
            }
        }
        let secret = c.client_secret.as_ref().map(Secret::expose);
        let mut pairs: Vec<(&str, &str)> = vec![("client_id", &c.client_id)];
        if let Some(s) = secret {
            pairs.push(("client_secret", s));
        }
        let assertion = match &c.certificate {
            Some(cert) => Some(client_assertion(c, cert).map_err(|e| {
                let e = OAuthError::Refused {
                    section: c.section.clone(),
                    error: "client assertion".into(),
                    description: format!(" (signing it failed: {e})"),
                };
                self.failed(state, e, None, false)
            })?),
            None => None,
        };
        if let Some(a) = &assertion {
            pairs.push(("client_assertion_type", JWT_BEARER));
            pairs.push(("client_assertion", a.expose()));
        }
        match &refresh_token {
            None => {
                pairs.push(("grant_type", "client_credentials"));
                pairs.push(("scope", &c.scope));
            }
            Some(rt) => {
                pairs.push(("grant_type", "refresh_token"));
                pairs.push(("refresh_token", rt.expose()));
                pairs.push(("scope", &c.scope));
            }
        }
        let answer = post(&self.http, &c.token_url, &pairs).await;
        let unreachable = |reason: String| OAuthError::Unreachable {
            section: c.section.clone(),
            url: c.token_url.clone(),
            reason,
        };
        let (status, answer) = match answer {
            Ok(a) => a,
            Err(reason) => {
                let e = unreachable(reason);
                return Err(self.failed(state, e, refresh_token, true));
            }
        };
        let token = match (answer.access_token, &answer.error) {
            (Some(t), None) if (200..300).contains(&status) && !t.is_empty() => Secret::new(t),
            (_, Some(error)) if error == "invalid_grant" && refresh_token.is_some() => {
                let e = OAuthError::Revoked {
                    section: c.section.clone(),
                    username: c.username.clone(),
                };
                return Err(self.failed(state, e, refresh_token, false));
            }
            (_, Some(error)) if status < 500 => {
                let e = OAuthError::Refused {
                    section: c.section.clone(),
                    error: shorten(error),
                    description: answer
                        .error_description
                        .as_deref()
                        .map(|d| format!(" ({})", shorten(d)))
                        .unwrap_or_default(),
                };
                return Err(self.failed(state, e, refresh_token, false));
            }
            _ => {
                let e = unreachable(format!("HTTP {status} without a token"));
                return Err(self.failed(state, e, refresh_token, true));
            }
        };
        // A rotated refresh token replaces the stored one: the old one
        // may stop working at any time now.
        if let (Some(new), Some(old)) = (answer.refresh_token, &refresh_token) {
            let new = Secret::new(new);
            if let (false, Some(store)) = (new.expose().is_empty() || new == *old, &self.store) {
                if let Err(e) = store.set_oauth_refresh_token(&c.stored_as(), &new).await {
                    tracing::error!(
                        section = c.section,
                        "OAuth2: storing the renewed refresh token failed: {e}"
                    );
                }
            }
        }
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600).max(1));
        let renew_at = Instant::now() + lifetime - (lifetime / 5).min(RENEW_BEFORE);
        state.cached = Some(Cached {
            token: token.clone(),
            renew_at,
        });
        if let Some(f) = state.failing.take() {
            tracing::info!(
                section = c.section,
                "OAuth2 tokens for {} work again (after: {})",
                c.username,
                f.error.reason()
            );
        }
        crate::metrics::oauth_token(&c.section, lifetime);
        Ok(token)
    }

    /// Records a failure: logged when it is new, counted, and the endpoint
    /// left alone for a while.
    fn failed(
        &self,
        state: &mut State,
        error: OAuthError,
        refresh_token: Option<Secret>,
        transient: bool,
    ) -> OAuthError {
        state.cached = None;
        let same = state
            .failing
            .as_ref()
            .is_some_and(|f| f.error.reason() == error.reason());
        if !same {
            if error.needs_attention() {
                tracing::error!(section = self.config.section, "{error}");
            } else {
                tracing::warn!(section = self.config.section, "{error}; trying again later");
            }
        }
        crate::metrics::oauth_failure(
            &self.config.section,
            error.reason(),
            error.needs_attention(),
        );
        let pause = if transient {
            match &state.failing {
                Some(f) if same => f.next_pause,
                _ => UNREACHABLE_FIRST,
            }
        } else {
            REFUSED_PAUSE
        };
        state.failing = Some(Failing {
            error: error.clone(),
            retry_at: Instant::now() + pause,
            refresh_token,
            next_pause: (pause * 2).min(UNREACHABLE_MAX),
        });
        error
    }
}

/// The OAuth2 sections of `config`: every `[imap]` and `[smtp]` with
/// `auth = "oauth2"`, in the order of the file.
pub fn sections(config: &crate::config::Config) -> Vec<Arc<OAuth2Config>> {
    config
        .imap
        .iter()
        .filter_map(|i| i.oauth2.clone())
        .chain(config.smtp.as_ref().and_then(|s| s.oauth2.clone()))
        .collect()
}

/// RFC 7523: the client authenticates with a signed JWT.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The client assertion Microsoft's identity platform takes instead of a
/// secret: a JWT, RS256, naming the certificate by its SHA-1 thumbprint
/// (`x5t`), for the token endpoint, valid ten minutes.
///
/// # Errors
///
/// When the random source or the signing fails.
pub fn client_assertion(
    config: &OAuth2Config,
    cert: &crate::config::oauth::ClientCertificate,
) -> anyhow::Result<Secret> {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = chrono::Utc::now().timestamp();
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": cert.x5t});
    let claims = serde_json::json!({
        "aud": config.token_url,
        "iss": config.client_id,
        "sub": config.client_id,
        "jti": b64(&jti),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    });
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut signature = vec![0u8; cert.key.public().modulus_len()];
    cert.key
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signed.as_bytes(),
            &mut signature,
        )
        .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
    Ok(Secret::new(format!("{signed}.{}", b64(&signature))))
}

// ------------------------------------------------------------------ SASL --

/// The SASL XOAUTH2 initial response (Google's and Microsoft's mechanism).
pub fn xoauth2(user: &str, token: &Secret) -> Secret {
    Secret::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

/// The SASL OAUTHBEARER initial response (RFC 7628).
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &Secret) -> Secret {
    // The authzid is a saslname: ',' and '=' escaped (RFC 5801).
    let user = user.replace('=', "=3D").replace(',', "=2C");
    Secret::new(format!(
        "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

/// The client side of an IMAP `AUTHENTICATE` with a token: the initial
/// response first; an error challenge (a JSON status) is answered with an
/// empty response, after which the server says NO.
pub struct SaslToken {
    response: Option<Secret>,
}

impl SaslToken {
    pub fn new(response: Secret) -> SaslToken {
        SaslToken {
            response: Some(response),
        }
    }
}

impl async_imap::Authenticator for SaslToken {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        self.response
            .take()
            .map(|r| r.expose().as_bytes().to_vec())
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------- oauth login --

/// What the device authorization endpoint answered.
#[derive(serde::Deserialize)]
struct DeviceAnswer {
    device_code: String,
    user_code: String,
    /// Google calls it `verification_url`.
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
}

/// How `oauth login` signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// The device code (RFC 8628): a web address and a code to enter
    /// anywhere (Microsoft; any provider with a `device_url`).
    Device,
    /// The authorization code with PKCE, in a browser that reaches this
    /// machine's loopback `port` (0: any free port; a fixed one for an SSH
    /// tunnel). Google's way: its device flow does not grant mail access.
    Browser { port: u16 },
}

/// Signs in once and stores the refresh token for every daemon on `store`:
/// by the device code, or in a browser (see [`SignIn`]); what to open is
/// shown on `out`.
///
/// # Errors
///
/// When the endpoints cannot be reached, the sign-in is declined or takes
/// too long, or the answer holds no refresh token.
pub async fn login(
    config: &OAuth2Config,
    store: &Store,
    how: SignIn,
    out: &mut (dyn std::io::Write + Send),
) -> anyhow::Result<()> {
    if config.grant != Grant::RefreshToken {
        anyhow::bail!(
            "{} uses grant = \"{}\": nobody signs in; `oauth login` is for grant = \"refresh_token\"",
            config.table(),
            config.grant.as_str()
        );
    }
    let http = http_client(config)?;
    let answer = match (how, &config.device_url) {
        (SignIn::Device, Some(device_url)) => by_device(config, &http, device_url, out).await?,
        (SignIn::Browser { port }, _) => in_browser(config, &http, port, out).await?,
        (SignIn::Device, None) => in_browser(config, &http, 0, out).await?,
    };
    let Some(refresh) = answer.refresh_token.filter(|t| !t.is_empty()) else {
        anyhow::bail!(
            "the sign-in worked but the token endpoint gave no refresh token: add offline_access to {} scope (Microsoft), then sign in again",
            config.table()
        );
    };
    store
        .set_oauth_refresh_token(&config.stored_as(), &Secret::new(refresh))
        .await?;
    writeln!(
        out,
        "Signed in: the refresh token for {} is stored in the database; every daemon on it uses it from now on.",
        config.username
    )?;
    Ok(())
}

/// The device-code flow (RFC 8628): the token endpoint's answer.
async fn by_device(
    config: &OAuth2Config,
    http: &reqwest::Client,
    device_url: &str,
    out: &mut (dyn std::io::Write + Send),
) -> anyhow::Result<TokenAnswer> {
    let section = &config.section;
    let secret = config.client_secret.as_ref().map(Secret::expose);
    let pairs: Vec<(&str, &str)> = vec![("client_id", &config.client_id), ("scope", &config.scope)];
    let answer = http
        .post(device_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(form(&pairs))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{device_url}: {}", e.without_url()))?;
    let status = answer.status();
    let body = answer.bytes().await?;
    let device: DeviceAnswer = serde_json::from_slice(&body).map_err(|_| {
        anyhow::anyhow!(
            "{device_url} answered HTTP {status} without a device code: {}",
            shorten(&String::from_utf8_lossy(&body))
        )
    })?;
    writeln!(
        out,
        "To let servicedesk read and send mail as {}, open\n\n    {}\n\nand enter the code\n\n    {}\n",
        config.username, device.verification_uri, device.user_code
    )?;
    if let Some(complete) = &device.verification_uri_complete {
        writeln!(out, "(or open {complete})\n")?;
    }
    writeln!(out, "Waiting for the sign-in ...")?;
    out.flush()?;
    let mut interval = Duration::from_secs(device.interval.unwrap_or(5).max(1));
    let deadline = Instant::now() + Duration::from_secs(device.expires_in.unwrap_or(900));
    let mut pairs: Vec<(&str, &str)> = vec![
        ("client_id", &config.client_id),
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", &device.device_code),
    ];
    if let Some(s) = secret {
        pairs.push(("client_secret", s));
    }
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() > deadline {
            anyhow::bail!("the code expired before the sign-in: run `servicedesk oauth login {section}` again");
        }
        let (status, answer) = match post(http, &config.token_url, &pairs).await {
            Ok(a) => a,
            Err(reason) => {
                // Network trouble while waiting: keep waiting.
                tracing::warn!("{}: {reason}; still waiting", config.token_url);
                continue;
            }
        };
        match answer.error.as_deref() {
            None if (200..300).contains(&status) => return Ok(answer),
            Some("authorization_pending") => {}
            Some("slow_down") => interval += Duration::from_secs(5),
            Some("expired_token") => anyhow::bail!(
                "the code expired before the sign-in: run `servicedesk oauth login {section}` again"
            ),
            Some("access_denied") => anyhow::bail!("the sign-in was declined"),
            Some(other) => anyhow::bail!("the token endpoint refused: {}", refusal(other, &answer)),
            None => anyhow::bail!("the token endpoint answered HTTP {status} without a token"),
        }
    }
}

/// `error (description)`, short, for a message.
fn refusal(error: &str, answer: &TokenAnswer) -> String {
    format!(
        "{}{}",
        shorten(error),
        answer
            .error_description
            .as_deref()
            .map(|d| format!(" ({})", shorten(d)))
            .unwrap_or_default()
    )
}

/// base64url of `n` random bytes.
fn random_text(n: usize) -> anyhow::Result<String> {
    use base64::Engine;
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `%41+b` as `A b`.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How long the browser sign-in may take.
const BROWSER_WAIT: Duration = Duration::from_secs(600);

/// The authorization code with PKCE (RFC 7636), redirected to a loopback
/// address (RFC 8252): the token endpoint's answer.
async fn in_browser(
    config: &OAuth2Config,
    http: &reqwest::Client,
    port: u16,
    out: &mut (dyn std::io::Write + Send),
) -> anyhow::Result<TokenAnswer> {
    use base64::Engine;
    use sha2::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let section = &config.section;
    let Some(auth_url) = &config.auth_url else {
        anyhow::bail!(
            "{} has neither device_url nor auth_url: set one (the provider's device authorization or authorization endpoint), or provider = \"microsoft\" or \"google\"",
            config.table()
        );
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| anyhow::anyhow!("127.0.0.1:{port}: {e}"))?;
    let port = listener.local_addr()?.port();
    let redirect = format!("http://127.0.0.1:{port}/");
    let verifier = random_text(32)?;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let state = random_text(16)?;
    let query = form(&[
        ("response_type", "code"),
        ("client_id", &config.client_id),
        ("redirect_uri", &redirect),
        ("scope", &config.scope),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", &state),
        // Google: a refresh token, and asked for again on a new sign-in.
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("login_hint", &config.username),
    ]);
    let separator = if auth_url.contains('?') { '&' } else { '?' };
    writeln!(
        out,
        "To let servicedesk read and send mail as {}, open in a browser on this machine\n\
         (or through `ssh -L {port}:127.0.0.1:{port}` with `--port {port}`)\n\n    {auth_url}{separator}{query}\n",
        config.username
    )?;
    writeln!(out, "Waiting for the sign-in ...")?;
    out.flush()?;
    let deadline = Instant::now() + BROWSER_WAIT;
    let code = loop {
        let (mut socket, _) = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no sign-in within {} minutes: run `servicedesk oauth login {section}` again",
                    BROWSER_WAIT.as_secs() / 60
                )
            })??;
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let head = String::from_utf8_lossy(&head);
        let target = head.split_whitespace().nth(1).unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let params: HashMap<String, String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (form_decode(k), form_decode(v)))
            .collect();
        let reply = |status: &str, text: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            )
        };
        if path != "/" || (!params.contains_key("code") && !params.contains_key("error")) {
            // The browser's other requests (a favicon).
            let _ = socket
                .write_all(reply("404 Not Found", "not here\n").as_bytes())
                .await;
            continue;
        }
        if params.get("state") != Some(&state) {
            let _ = socket
                .write_all(
                    reply("400 Bad Request", "This answer is not for this sign-in.\n").as_bytes(),
                )
                .await;
            continue;
        }
        if let Some(error) = params.get("error") {
            let _ = socket
                .write_all(
                    reply(
                        "200 OK",
                        "The sign-in was declined; servicedesk has nothing.\n",
                    )
                    .as_bytes(),
                )
                .await;
            anyhow::bail!("the sign-in was declined: {}", shorten(error));
        }
        let _ = socket
            .write_all(
                reply(
                    "200 OK",
                    "Signed in: servicedesk has the sign-in. You can close this window.\n",
                )
                .as_bytes(),
            )
            .await;
        break params.get("code").cloned().unwrap_or_default();
    };
    let mut pairs: Vec<(&str, &str)> = vec![
        ("client_id", &config.client_id),
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &redirect),
        ("code_verifier", &verifier),
    ];
    if let Some(s) = config.client_secret.as_ref().map(Secret::expose) {
        pairs.push(("client_secret", s));
    }
    let (status, answer) = post(http, &config.token_url, &pairs)
        .await
        .map_err(|reason| anyhow::anyhow!("{}: {reason}", config.token_url))?;
    match answer.error.as_deref() {
        None if (200..300).contains(&status) => Ok(answer),
        Some(error) => anyhow::bail!("the token endpoint refused: {}", refusal(error, &answer)),
        None => anyhow::bail!("the token endpoint answered HTTP {status} without a token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_strings_carry_user_and_token() {
        let t = Secret::new("tok");
        assert_eq!(
            xoauth2("a@b.test", &t).expose(),
            "user=a@b.test\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            oauthbearer("a,b=c@d.test", "imap.test", 993, &t).expose(),
            "n,a=a=2Cb=3Dc@d.test,\x01host=imap.test\x01port=993\x01auth=Bearer tok\x01\x01"
        );
        assert!(!format!("{:?}", xoauth2("a", &t)).contains("tok"));
    }

    #[test]
    fn forms_are_decoded() {
        assert_eq!(form_decode("a+b%2Fc%C3%A9%"), "a b/cé%");
        assert_eq!(form_decode(&form(&[("x", "4/0Ab-_ ~")])[2..]), "4/0Ab-_ ~");
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            form(&[("scope", "a b/c"), ("x", "é&=")]),
            "scope=a+b%2Fc&x=%C3%A9%26%3D"
        );
    }

    #[test]
    fn errors_never_hold_secrets_and_name_the_fix() {
        let e = OAuthError::Revoked {
            section: "imap".into(),
            username: "support@example.test".into(),
        };
        assert!(e.to_string().contains("servicedesk oauth login imap"));
        assert_eq!(e.reason(), "invalid_grant");
    }
}
