//! Who is asking: sessions (cookie) and API tokens (bearer), login with
//! throttling, logout, and the guard that refuses state-changing requests
//! from other sites.
//!
//! The rule for every request that changes something: an `Origin` (or,
//! without one, a `Referer`) of ours, and, when a session cookie is what
//! authenticates it, the session's CSRF token in the `csrf` form field or
//! the `X-CSRF-Token` header. Requests with a bearer token carry no cookie
//! a browser could add on its own, so they need no CSRF token.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::{AppState, WebError};
use crate::agents::{new_secret, same_secret, secret_hash, verify_password};
use crate::store::Agent;

pub const SESSION_COOKIE: &str = "sd_session";
pub const LANGUAGE_COOKIE: &str = "sd_lang";
/// Failed logins are counted over this window.
const THROTTLE_MINUTES: i64 = 15;
/// Failed logins per address within the window before logins pause.
const MAX_FAILURES_PER_ADDRESS: i64 = 5;
/// Failed logins per client within the window before logins pause.
const MAX_FAILURES_PER_CLIENT: i64 = 20;
/// The largest form the guard reads to find the CSRF token.
const MAX_FORM_BYTES: usize = 1 << 20;

/// The agent behind a request, and how they proved it.
#[derive(Clone)]
pub struct Caller {
    pub agent: Agent,
    /// Set when a session cookie authenticated the request.
    pub session: Option<Session>,
}

/// A session as a request sees it.
#[derive(Clone)]
pub struct Session {
    pub id_hash: String,
    pub csrf_token: String,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("agent", &self.agent.email)
            .field("session", &self.session.is_some())
            .finish()
    }
}

impl Caller {
    /// Refuses what this agent's role does not allow.
    ///
    /// # Errors
    ///
    /// [`WebError::Forbidden`] naming the role needed.
    pub fn require(&self, action: crate::agents::Action) -> Result<(), WebError> {
        if crate::agents::may(self.agent.role, action) {
            Ok(())
        } else {
            Err(WebError::Forbidden(format!(
                "your role ({}) may not do this",
                self.agent.role
            )))
        }
    }

    /// The actor recorded in a ticket's audit trail.
    pub fn actor(&self) -> String {
        format!("agent:{}", self.agent.email)
    }

    /// The CSRF token forms of this session carry (empty for tokens).
    pub fn csrf_token(&self) -> &str {
        self.session
            .as_ref()
            .map(|s| s.csrf_token.as_str())
            .unwrap_or("")
    }
}

/// The identity the guard found, handed to the extractors.
#[derive(Clone)]
struct Identity(Option<Caller>);

/// API handlers take a [`Caller`]: without a session or token, 401.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Identity>()
            .and_then(|i| i.0.clone())
            .ok_or(WebError::Unauthorized)
    }
}

/// A caller who may assign to others and edit saved replies (a lead or an
/// admin): a handler taking it cannot be reached by an agent (403).
pub struct Lead(pub Caller);

/// A caller who may manage agents and the registry (an admin).
pub struct Admin(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Lead {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(crate::agents::Action::EditSavedReplies)?;
        Ok(Lead(caller))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(crate::agents::Action::ManageAgents)?;
        Ok(Admin(caller))
    }
}

/// The caller if there is one (the login page, logout).
pub struct MaybeCaller(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeCaller(
            parts.extensions.get::<Identity>().and_then(|i| i.0.clone()),
        ))
    }
}

/// Pages take a [`PageCaller`]: without a session, off to the login page,
/// which sends the agent back here afterwards.
pub struct PageCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for PageCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Identity>().and_then(|i| i.0.clone()) {
            Some(c) if c.session.is_some() => Ok(PageCaller(c)),
            _ => {
                // After the login a form's target cannot be fetched again:
                // come back to the queues instead.
                let here = match parts.method {
                    Method::GET | Method::HEAD => parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/"),
                    _ => "/",
                };
                let target = if here == "/" {
                    "/login".to_string()
                } else {
                    format!("/login?next={}", encode(here))
                };
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

/// The origins that count as ours: the listen address (with its loopback
/// aliases) and `[web] public_url`.
pub fn origins(listen: Option<SocketAddr>, public_url: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(addr) = listen {
        let port = addr.port();
        let ip = addr.ip();
        if ip.is_loopback() || ip.is_unspecified() {
            for host in ["127.0.0.1", "localhost", "[::1]"] {
                out.push(format!("http://{host}:{port}"));
            }
        }
        if !ip.is_unspecified() {
            out.push(format!("http://{addr}"));
        }
    }
    if let Some(u) = public_url {
        out.push(u.to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// The origin part (`scheme://host[:port]`) of a URL, lower case.
fn origin_part(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{}://{}", scheme, host).to_ascii_lowercase())
}

/// Whether a state-changing request comes from our own pages: its
/// `Origin`, or without one its `Referer`, must be one of `ours`.
pub fn from_our_site(ours: &[String], origin: Option<&str>, referer: Option<&str>) -> bool {
    let seen = match origin {
        Some(o) => origin_part(o.trim()).or_else(|| Some(o.trim().to_ascii_lowercase())),
        None => referer.and_then(|r| origin_part(r.trim())),
    };
    seen.is_some_and(|s| ours.contains(&s))
}

/// A `next=` target that stays on this site: a local path, never
/// `//host`, `/\host` or a scheme.
pub fn safe_next(next: &str) -> Option<String> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control())
        && next.len() <= 2000;
    ok.then(|| next.to_string())
}

/// Percent-encodes a path for a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decodes `application/x-www-form-urlencoded`.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn idle_since(state: &AppState) -> String {
    let minutes = i64::try_from(state.idle_minutes).unwrap_or(i64::MAX / 60_000);
    crate::store::stamp(chrono::Utc::now() - chrono::Duration::minutes(minutes))
}

/// Finds the caller: a bearer token first (then the cookie is ignored),
/// else the session cookie.
async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, WebError> {
    if headers.contains_key(header::AUTHORIZATION) {
        let Some(token) = bearer(headers) else {
            return Ok(None);
        };
        return Ok(state
            .store
            .token_agent(&secret_hash(token))
            .await?
            .map(|agent| Caller {
                agent,
                session: None,
            }));
    }
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = secret_hash(id);
    Ok(state
        .store
        .session_agent(&id_hash, &idle_since(state))
        .await?
        .map(|s| Caller {
            agent: s.agent,
            session: Some(Session {
                id_hash,
                csrf_token: s.csrf_token,
            }),
        }))
}

fn forbidden(why: &str) -> Response {
    WebError::Forbidden(why.to_string()).into_response()
}

/// Runs before every handler: finds the caller, and refuses a
/// state-changing request from another site, or a session's request
/// without its CSRF token, with 403 before anything changes.
pub async fn guard(
    State(state): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut parts, mut body) = req.into_parts();
    let caller = match identify(&state, &parts.headers).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let text = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if text("sec-fetch-site").as_deref() == Some("cross-site") {
            return forbidden("a change from another site is refused");
        }
        let origin = text("origin");
        if origin.is_some() && !from_our_site(&state.origins, origin.as_deref(), None) {
            return forbidden("a change from another site is refused");
        }
        if let Some(session) = caller.as_ref().and_then(|c| c.session.as_ref()) {
            let referer = text("referer");
            if !from_our_site(&state.origins, origin.as_deref(), referer.as_deref()) {
                return forbidden("a change needs an Origin or Referer of this site");
            }
            let mut token = text("x-csrf-token");
            let is_form = text("content-type")
                .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
            if token.is_none() && is_form {
                let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
                    Ok(b) => b,
                    Err(_) => {
                        return WebError::BadRequest("the form is too large".into()).into_response()
                    }
                };
                token = form_pairs(&bytes)
                    .into_iter()
                    .find(|(k, _)| k == "csrf")
                    .map(|(_, v)| v);
                body = axum::body::Body::from(bytes);
            }
            if !token
                .as_deref()
                .is_some_and(|t| same_secret(t, &session.csrf_token))
            {
                return forbidden(
                    "the CSRF token (the csrf field or X-CSRF-Token) is missing or wrong; reload the page",
                );
            }
        }
    }
    parts.extensions.insert(Identity(caller));
    next.run(Request::from_parts(parts, body)).await
}

/// The `Set-Cookie` value of a session (or its removal with `None`).
fn session_cookie(state: &AppState, value: Option<&str>) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let text = match value {
        Some(v) => format!("{SESSION_COOKIE}={v}; HttpOnly{secure}; SameSite=Strict; Path=/"),
        None => format!("{SESSION_COOKIE}=; HttpOnly{secure}; SameSite=Strict; Path=/; Max-Age=0"),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The client's address, for throttling: the peer, or behind a trusted
/// proxy the last `X-Forwarded-For` entry.
fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> String {
    if state.trust_forwarded_for {
        if let Some(last) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return last.to_string();
        }
    }
    peer.ip().to_string()
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /login`: the form (or, with a session, straight on).
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeCaller(identity): MaybeCaller,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    let next = q.next.as_deref().and_then(safe_next);
    if identity.is_some_and(|c| c.session.is_some()) {
        return Redirect::to(next.as_deref().unwrap_or("/")).into_response();
    }
    super::pages::login_form(&state, &headers, next.as_deref(), None, StatusCode::OK)
}

/// The login form's fields. No `Debug`: it holds a password.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: throttled per address and per client; the same answer
/// whether or not the account exists; a new session id on success.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    match try_login(&state, peer, &headers, form).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn try_login(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    form: LoginForm,
) -> Result<Response, WebError> {
    let email = form.email.trim().to_lowercase();
    let next = safe_next(&form.next);
    let keys = [
        format!("email:{email}"),
        format!("client:{}", client_ip(state, peer, headers)),
    ];
    let since =
        crate::store::stamp(chrono::Utc::now() - chrono::Duration::minutes(THROTTLE_MINUTES));
    let store = &state.store;
    if store.login_failures_since(&keys[0], &since).await? >= MAX_FAILURES_PER_ADDRESS
        || store.login_failures_since(&keys[1], &since).await? >= MAX_FAILURES_PER_CLIENT
    {
        tracing::warn!("workspace: login refused, too many failures (throttled)");
        return Ok(super::pages::login_form(
            state,
            headers,
            next.as_deref(),
            Some("login_throttled"),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let found = store.agent_credentials(&email).await?;
    let (agent, hash) = match found {
        Some((a, h)) if a.active => (Some(a), Some(h)),
        _ => (None, None),
    };
    let good = verify_password(form.password, hash).await;
    let Some(agent) = agent.filter(|_| good) else {
        store.record_login_failure(&keys).await?;
        return Ok(super::pages::login_form(
            state,
            headers,
            next.as_deref(),
            Some("login_failed"),
            StatusCode::UNAUTHORIZED,
        ));
    };
    store.clear_login_failures(&keys[0], &since).await?;
    // A new session id at every login; the one the browser had ends.
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        store.end_session(&secret_hash(old)).await?;
    }
    let id = new_secret().map_err(|e| WebError::Internal(e.into()))?;
    let csrf = new_secret().map_err(|e| WebError::Internal(e.into()))?;
    store
        .create_session(agent.id, &secret_hash(&id), &csrf)
        .await?;
    tracing::info!(agent = agent.email, "workspace: logged in");
    let mut res = Redirect::to(next.as_deref().unwrap_or("/")).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(state, Some(&id)));
    Ok(res)
}

/// `POST /logout`: ends the session at once.
pub async fn logout(State(state): State<AppState>, MaybeCaller(caller): MaybeCaller) -> Response {
    if let Some(session) = caller.and_then(|c| c.session) {
        if let Err(e) = state.store.end_session(&session.id_hash).await {
            return WebError::from(e).into_response();
        }
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, None));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next("/tickets/CS-000001").as_deref(),
            Some("/tickets/CS-000001")
        );
        assert_eq!(
            safe_next("/?view=mine&before=12").as_deref(),
            Some("/?view=mine&before=12")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "tickets",
            "",
            "/a\r\nSet-Cookie: x=1",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_our_origins_may_change_things() {
        let ours = origins(
            Some("127.0.0.1:8080".parse().unwrap()),
            Some("https://desk.example.test"),
        );
        assert!(from_our_site(&ours, Some("http://127.0.0.1:8080"), None));
        assert!(from_our_site(&ours, Some("http://localhost:8080"), None));
        assert!(from_our_site(
            &ours,
            Some("https://desk.example.test"),
            None
        ));
        assert!(from_our_site(
            &ours,
            Some("HTTPS://Desk.Example.Test"),
            None
        ));
        assert!(!from_our_site(&ours, Some("http://evil.example"), None));
        assert!(!from_our_site(&ours, Some("http://127.0.0.1:8081"), None));
        assert!(!from_our_site(
            &ours,
            Some("https://desk.example.test.evil.example"),
            None
        ));
        assert!(!from_our_site(&ours, Some("null"), None));
        // Without Origin, the Referer decides; without both, no.
        assert!(from_our_site(
            &ours,
            None,
            Some("http://127.0.0.1:8080/tickets/CS-000001")
        ));
        assert!(!from_our_site(
            &ours,
            None,
            Some("http://evil.example/http://127.0.0.1:8080/")
        ));
        assert!(!from_our_site(&ours, None, None));
        // An Origin that is not ours is not rescued by a Referer that is.
        assert!(!from_our_site(
            &ours,
            Some("http://evil.example"),
            Some("http://127.0.0.1:8080/")
        ));
    }

    #[test]
    fn forms_and_cookies_are_read() {
        let pairs = form_pairs(b"csrf=ab%2Fc&text=Hallo+daar%21+%C3%A9&empty=&bad=%zz%4");
        assert_eq!(pairs[0], ("csrf".into(), "ab/c".into()));
        assert_eq!(pairs[1], ("text".into(), "Hallo daar! é".into()));
        assert_eq!(pairs[2], ("empty".into(), "".into()));
        assert_eq!(pairs[3], ("bad".into(), "%zz%4".into()));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sd_session=xyz; sd_lang=fr"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, LANGUAGE_COOKIE), Some("fr"));
        assert_eq!(cookie(&h, "none"), None);
    }
}
