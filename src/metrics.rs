//! Prometheus metrics: what the desk did (mails by outcome, tickets by
//! category, chargeable reason and priority, replies sent and failed, how
//! long a message took, how sure the sorting was), how its mailboxes stand
//! (connected, time of the last successful fetch), and, read from the
//! database at each scrape, the outbox (queued replies, the age of the
//! oldest) and the model in use, the OAuth2 token sources, and the
//! workspace pages connected to the live updates. `GET /metrics` on
//! `[metrics] listen`, and on `[web] listen` with a bearer token when
//! `[metrics] on_web = true`.
//!
//! The names are all here; the rest of the program calls the functions.

use std::sync::OnceLock;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::pipeline::Processed;
use crate::store::Store;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds to read, sort and store one message.
const PROCESSING: &str = "servicedesk_processing_seconds";
/// The category confidence of new tickets.
const CONFIDENCE: &str = "servicedesk_sorting_confidence";

/// Starts recording (once per process) and returns what renders it.
pub fn recorder() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(PROCESSING.into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(CONFIDENCE.into()),
                    &[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0],
                )
            })
            .expect("fixed, non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Only fails when another recorder was installed first, which this
        // process never does.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// One message processed and committed.
pub fn processed(p: &Processed) {
    counter!("servicedesk_mails_total", "outcome" => p.outcome.as_str()).increment(1);
    histogram!(PROCESSING).record(p.seconds);
    if let Some(t) = &p.sorted {
        counter!(
            "servicedesk_tickets_total",
            "category" => t.category.as_str(),
            "chargeable_reason" => t.chargeable.map_or("none", |r| r.as_str()),
            "priority" => t.priority.as_str()
        )
        .increment(1);
        histogram!(CONFIDENCE).record(f64::from(t.confidence));
    }
}

/// Replies handed to the mail server (`sent`) or given up on (`failed`).
pub fn replies(result: &'static str, n: u64) {
    if n > 0 {
        counter!("servicedesk_replies_total", "result" => result).increment(n);
    }
}

/// A mailbox connected (`up`) or lost; a successful fetch also stamps the time.
pub fn mailbox(name: &str, up: bool, fetched: bool) {
    gauge!("servicedesk_mailbox_up", "mailbox" => name.to_string()).set(f64::from(u8::from(up)));
    if fetched {
        gauge!(
            "servicedesk_mailbox_last_fetch_timestamp_seconds",
            "mailbox" => name.to_string()
        )
        .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
    }
}

/// Workspace pages connected to the live updates (server-sent events).
pub fn sse_clients(n: usize) {
    gauge!("servicedesk_sse_clients").set(n as f64);
}

/// The text of `GET /metrics`: the recorded figures plus the outbox and the
/// model in use, read now.
///
/// # Errors
///
/// On database failure.
pub async fn render(store: &Store) -> anyhow::Result<String> {
    let queued = store.pending_replies().await?;
    gauge!("servicedesk_outbox_queued").set(queued as f64);
    let oldest = store
        .oldest_pending_reply()
        .await?
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
        .map_or(0.0, |at| {
            (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0
        });
    gauge!("servicedesk_outbox_oldest_queued_seconds").set(oldest.max(0.0));
    let model = store.active_model_id().await?.unwrap_or(0);
    gauge!("servicedesk_model_in_use").set(model as f64);
    Ok(recorder().render())
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
///
/// # Errors
///
/// When serving fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    recorder();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let store = store.clone();
            async move {
                match render(&store).await {
                    Ok(text) => (
                        StatusCode::OK,
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                        .into_response(),
                    Err(e) => {
                        tracing::warn!("metrics: {e:#}");
                        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
                    }
                }
            }
        }),
    );
    if let Ok(at) = listener.local_addr() {
        tracing::info!(listen = %at, "metrics served at /metrics");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// An OAuth2 access token obtained for `section`, valid for `lifetime`.
pub fn oauth_token(section: &str, lifetime: std::time::Duration) {
    counter!("servicedesk_oauth_tokens_total", "section" => section.to_string()).increment(1);
    gauge!("servicedesk_oauth_up", "section" => section.to_string()).set(1.0);
    gauge!("servicedesk_oauth_login_required", "section" => section.to_string()).set(0.0);
    gauge!(
        "servicedesk_oauth_token_expiry_timestamp_seconds",
        "section" => section.to_string()
    )
    .set((chrono::Utc::now().timestamp_millis() as f64 + lifetime.as_millis() as f64) / 1000.0);
}

/// No OAuth2 token for `section`: `reason` is `invalid_grant`,
/// `login_required`, `refused`, `unreachable` or `database`; `attention`
/// when a person must act (sign in again or fix a setting).
pub fn oauth_failure(section: &str, reason: &'static str, attention: bool) {
    counter!(
        "servicedesk_oauth_failures_total",
        "section" => section.to_string(),
        "reason" => reason
    )
    .increment(1);
    gauge!("servicedesk_oauth_up", "section" => section.to_string()).set(0.0);
    gauge!("servicedesk_oauth_login_required", "section" => section.to_string())
        .set(f64::from(u8::from(attention)));
}

/// The bearer token of `GET /metrics` on `[web] listen` (`[metrics]
/// on_web`), set by whoever starts the workspace; none: not served there.
/// Process-wide like the recorder, so the workspace's state stays as it is.
static WEB_TOKEN: std::sync::RwLock<Option<crate::config::Secret>> = std::sync::RwLock::new(None);

/// Serves (`Some`) or stops serving (`None`) `GET /metrics` on the workspace.
pub fn allow_on_web(token: Option<crate::config::Secret>) {
    if token.is_some() {
        // Recording starts now, not at the first scrape.
        recorder();
    }
    *WEB_TOKEN.write().unwrap_or_else(|p| p.into_inner()) = token;
}

/// `GET /metrics` on the workspace's listener, for [`crate::web::router`].
pub fn web_routes() -> axum::Router<crate::web::AppState> {
    axum::Router::new().route("/metrics", axum::routing::get(on_web))
}

async fn on_web(
    axum::extract::State(state): axum::extract::State<crate::web::AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let expected = WEB_TOKEN.read().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(expected) = expected else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same_secret(given, expected.expose()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
            "a bearer token is needed: [metrics] token\n",
        )
            .into_response();
    }
    recorder();
    match render(&state.store).await {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!("metrics: {e:#}");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
