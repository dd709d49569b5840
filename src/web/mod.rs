//! The agents' workspace: server-rendered pages and a JSON API over the
//! store, served by `servicedesk web` alone or inside `servicedesk run`.
//!
//! It reads and changes tickets only through [`crate::store`] and queues
//! agents' replies in the same outbox the daemon drains; it never reaches
//! into sources or triage. Every handler takes a [`auth::Caller`] (or its
//! page form), so none can be reached anonymously; the [`auth::guard`]
//! layer refuses state-changing requests from other sites before any
//! handler runs.
//!
//! One file per concern: `auth` (sessions, tokens, login, CSRF), `api`
//! (JSON), `pages` (HTML), `saved` (saved replies), `agents` and `registry` (the admins' pages), `mail_html` (customers' HTML, sanitised and
//! sandboxed), `tickets` (the changes both share), `drafts` (drafts
//! saved as typed, and taking back a reply in its undo window), `bulk`
//! (one change to many tickets), `merge` (merging tickets and its undo),
//! `live` (live updates and presence over server-sent events, the
//! collision check), `i18n`
//! (the UI's four languages), `time` (Europe/Brussels), `assets`.

pub mod agents;
pub mod api;
pub mod assets;
pub mod auth;
pub mod bulk;
pub mod drafts;
pub mod i18n;
pub mod live;
pub mod mail_html;
pub mod merge;
pub mod pages;
pub mod registry;
pub mod saved;
pub mod tickets;
pub mod time;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::config::Config;
use crate::reply::Replier;
use crate::store::{Store, StoreError};

/// How long the queue counts are kept: counting every open ticket costs
/// tens of milliseconds at 100,000 open tickets.
pub const COUNTS_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub replier: Replier,
    pub templates: minijinja::Environment<'static>,
    /// The origins a state-changing request may come from.
    pub origins: Vec<String>,
    pub secure_cookies: bool,
    pub idle_minutes: u64,
    pub trust_forwarded_for: bool,
    /// The queue counts and when they were counted: kept a few seconds,
    /// forgotten at every change made here.
    pub counts: std::sync::Mutex<Option<(std::time::Instant, crate::store::QueueCounts)>>,
    /// How long a reply sent from the ticket page can be taken back
    /// (`[web] undo_send_secs`; zero: sent at once).
    pub undo_send: std::time::Duration,
    /// The live updates of this process (see [`live`]).
    pub live: crate::live::Hub,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The workspace's state for this configuration and store.
    ///
    /// # Errors
    ///
    /// When the reply templates or the page templates do not load.
    pub fn new(config: &Config, store: Store) -> anyhow::Result<AppState> {
        store.set_sla_policy(config.sla.clone());
        let replier = Replier::new(
            &config.reply_from(),
            &config.support.desk_name,
            &config.support.address,
            config.support.templates_dir.as_deref(),
        )?;
        let listen_url = (store.backend() == crate::store::Backend::Postgres)
            .then(|| config.database.connect_url().to_string());
        let live = crate::live::Hub::start(store.clone(), listen_url);
        Ok(AppState(Arc::new(Inner {
            live,
            store,
            replier,
            templates: pages::templates()?,
            origins: auth::origins(config.web.listen, config.web.public_url.as_deref()),
            secure_cookies: config.web.secure_cookies(),
            idle_minutes: config.web.session_idle_minutes,
            trust_forwarded_for: config.web.trust_forwarded_for,
            counts: std::sync::Mutex::new(None),
            undo_send: std::time::Duration::from_secs(config.web.undo_send_secs),
        })))
    }

    /// The queue counts for this agent: the shared ones at most
    /// [`COUNTS_FOR`] old (or fresh after a change made here), "mine" always fresh.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn queue_counts(&self, agent: &str) -> Result<crate::store::QueueCounts, StoreError> {
        let cached = self
            .counts
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|(at, _)| at.elapsed() < COUNTS_FOR)
            .map(|(_, c)| c);
        let mut counts = match cached {
            Some(c) => c,
            None => {
                let c = self.store.queue_counts().await?;
                if let Ok(mut slot) = self.counts.lock() {
                    *slot = Some((std::time::Instant::now(), c.clone()));
                }
                c
            }
        };
        counts.mine = self.store.mine_count(agent).await?;
        Ok(counts)
    }

    /// Forgets the kept counts (after a change made in the workspace).
    pub fn forget_counts(&self) {
        if let Ok(mut slot) = self.counts.lock() {
            *slot = None;
        }
    }
}

/// The workspace's routes, with the security headers and the same-origin
/// guard on every one.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::queues))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/language", post(pages::set_language))
        .route("/tickets/{number}", get(pages::ticket))
        .route("/tickets/{number}/reply", post(pages::reply))
        .route("/tickets/{number}/note", post(pages::note))
        .route("/tickets/{number}/update", post(pages::update))
        .route(
            "/tickets/{number}/messages/{id}/html",
            get(mail_html::message_html),
        )
        .route(
            "/tickets/{number}/messages/{id}/cid/{content_id}",
            get(mail_html::inline_image),
        )
        .route(
            "/tickets/{number}/attachments/{id}",
            get(mail_html::attachment),
        )
        .route("/healthz", get(healthz))
        .route("/assets/{name}", get(assets::asset))
        .route("/agents", get(agents::page))
        .route("/agents/disable", post(agents::disable))
        .route("/registry", get(registry::page))
        .route("/registry/contract", post(registry::set_contract))
        .route("/saved-replies", get(saved::page).post(saved::save_form))
        .route("/saved-replies/{id}/delete", post(saved::delete_form))
        .route("/api/saved-replies", get(saved::list).put(saved::put))
        .route(
            "/api/saved-replies/{id}",
            axum::routing::delete(saved::delete),
        )
        .route(
            "/api/tickets/{number}/saved-replies/{id}",
            get(saved::rendered),
        )
        .route("/api/me", get(api::me))
        .route("/api/agents", get(api::agents))
        .route("/api/tickets", get(api::tickets))
        .route("/api/tickets/{number}", get(api::ticket).patch(api::change))
        .route("/api/tickets/{number}/replies", post(api::reply))
        .route("/api/tickets/{number}/notes", post(api::note))
        .merge(drafts::routes())
        .merge(bulk::routes())
        .merge(merge::routes())
        .merge(crate::metrics::web_routes())
        .merge(live::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Binds `[web] listen`.
///
/// # Errors
///
/// When `[web] listen` is not set or the address cannot be bound.
pub async fn bind(config: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = config.web.listen.with_context(|| {
        format!(
            "{}: [web] listen is not set: add e.g.\n[web]\nlisten = \"127.0.0.1:8080\"",
            config.path.display()
        )
    })?;
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "{}: [web] listen = \"{addr}\": cannot listen there",
            config.path.display()
        )
    })
}

/// Serves the workspace on a bound listener until `shutdown` resolves.
///
/// # Errors
///
/// When the server fails.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("workspace listening on http://{addr}");
    }
    // Open live streams end at shutdown, or the graceful stop would wait for them.
    let live = state.live.clone();
    let shutdown = async move {
        shutdown.await;
        live.close();
    };
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("the workspace's server failed")
}

/// `servicedesk web`: the workspace alone, until `shutdown` resolves.
///
/// # Errors
///
/// When `[web] listen` is missing or cannot be bound, or templates fail.
pub async fn serve(
    config: &Config,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = bind(config).await?;
    let state = AppState::new(config, store)?;
    serve_on(listener, state, shutdown).await
}

/// 200 while the database answers, 503 otherwise.
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(state.store.pool()),
    )
    .await;
    match probe {
        Ok(Ok(_)) => (StatusCode::OK, "ok\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response(),
    }
}

async fn not_found() -> Response {
    WebError::NotFound("no such page".into()).into_response()
}

/// The headers every answer carries: a strict Content-Security-Policy (no
/// inline script or style, nothing from elsewhere; our own scripts may
/// connect back here, for the live updates), no sniffing, no
/// framing, referrers only to ourselves.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A customer's HTML frame sets its own, stricter `no-referrer`.
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// Why a request failed, as the API answers it (JSON `{"error": ...}`).
#[derive(Debug)]
pub enum WebError {
    /// No session or token, or an ended one.
    Unauthorized,
    /// Known, but not allowed (role, other site, missing CSRF proof).
    Forbidden(String),
    NotFound(String),
    /// The request cannot be read (not JSON, not a form).
    BadRequest(String),
    /// Well-formed, but a value is wrong.
    Unprocessable(String),
    /// Too many failed logins.
    TooMany,
    /// More at once than the desk takes (the text says what and the way out).
    Busy(String),
    /// Our fault; logged, never shown.
    Internal(anyhow::Error),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => WebError::NotFound(format!("{what} not found")),
            StoreError::Refused(why) => WebError::Unprocessable(why),
            e => WebError::Internal(e.into()),
        }
    }
}

impl From<anyhow::Error> for WebError {
    fn from(e: anyhow::Error) -> Self {
        WebError::Internal(e)
    }
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::TooMany | WebError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            WebError::Unauthorized => {
                "log in, or send Authorization: Bearer TOKEN (servicedesk agents token)".into()
            }
            WebError::Forbidden(m)
            | WebError::NotFound(m)
            | WebError::BadRequest(m)
            | WebError::Unprocessable(m) => m.clone(),
            WebError::TooMany => "too many failed logins; wait a few minutes".into(),
            WebError::Busy(why) => why.clone(),
            WebError::Internal(_) => "internal error; the server log says more".into(),
        }
    }

    fn log(&self) {
        if let WebError::Internal(e) = self {
            tracing::error!("workspace: {e:#}");
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        self.log();
        let mut res = (
            self.status(),
            axum::Json(serde_json::json!({ "error": self.message() })),
        )
            .into_response();
        if matches!(self, WebError::Unauthorized) {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"servicedesk\""),
            );
        }
        res
    }
}
