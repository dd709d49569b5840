//! Webhooks: an HTTP POST to each `[[webhooks]]` url when a ticket is
//! created (`ticket.created`), changes status (`ticket.status_changed`) or
//! gets a charge decision (`ticket.charge_decided`), by mail, by an agent or
//! by the machine. The events come from the audit trail; each becomes a
//! delivery in the database first (see [`crate::store::WebhookDelivery`])
//! and is sent at least once, retried with backoff like a reply.
//!
//! The body is JSON: `event`, `ticket` (the ticket's API fields, as now),
//! `change` (`field`, `old`, `new`, `by`, `at`). Headers:
//! `X-Servicedesk-Event`, `X-Servicedesk-Delivery` (its id: a receiver
//! drops repeats by it), `X-Servicedesk-Timestamp` (Unix seconds) and
//! `X-Servicedesk-Signature: sha256=HEX`, the HMAC-SHA256 with the hook's
//! secret over `TIMESTAMP.BODY`.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;

use crate::config::WebhookConfig;
use crate::live::Gate;
use crate::store::{AuditEvent, Store, WebhookDelivery};

/// How often the audit trail is read for new events.
const LOOK: Duration = Duration::from_secs(1);
/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
const LONGEST_WAIT: u64 = 3600;

/// `sha256=HEX` of HMAC-SHA256(`secret`, `TIMESTAMP.BODY`).
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    format!(
        "sha256={}",
        hmac_hex(
            secret,
            &[timestamp.to_string().as_bytes(), b".", body.as_bytes()]
        )
    )
}

/// HMAC-SHA256 of the concatenated `parts`, in lower-case hex.
fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `https://host:port` of a hook's url, to show: its path and query may
/// hold the receiver's token.
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url, |i| &url[..after_scheme + i])
}

/// The webhook event an audit event is, if any.
fn event_of(e: &AuditEvent) -> Option<&'static str> {
    match e.field.as_str() {
        "created" => Some("ticket.created"),
        "status" => Some("ticket.status_changed"),
        "charge_approved" => Some("ticket.charge_decided"),
        _ => None,
    }
}

/// Turns new audit events into deliveries for the hooks that want them,
/// in id order and none skipped (`gate` remembers a hole between passes).
///
/// # Errors
///
/// On database failure.
pub async fn queue_new_events(
    store: &Store,
    hooks: &[WebhookConfig],
    gate: &mut Option<Gate>,
) -> anyhow::Result<usize> {
    // On PostgreSQL a higher id may commit before a lower one: events
    // after a hole wait until it is filled or known empty, however long,
    // so none is skipped (the gate the live updates use, without their
    // time limit). The snapshot that may close a hole is taken before the
    // read.
    let before = match gate {
        Some(g) => crate::live::horizon_before(store, g).await?,
        None => None,
    };
    let (from, events) = store.events_for_webhooks(200).await?;
    let gate = match gate {
        Some(g) if g.cursor() == from => g,
        _ => gate.insert(Gate::patient(from)),
    };
    let horizon = crate::live::horizon_for(store, gate, &events, before).await?;
    let events = gate.admit(events, horizon, Instant::now());
    let Some(to) = events.last().map(|e| e.id) else {
        return Ok(0);
    };
    let mut deliveries = Vec::new();
    for e in &events {
        let Some(event) = event_of(e) else { continue };
        let wanting: Vec<&WebhookConfig> = hooks
            .iter()
            .filter(|h| h.events.iter().any(|x| x == event))
            .collect();
        if wanting.is_empty() {
            continue;
        }
        let ticket = match store.ticket(&e.ticket_number).await {
            Ok((t, _)) => serde_json::to_value(t)?,
            Err(err) => {
                tracing::warn!(
                    ticket = e.ticket_number,
                    "webhook: ticket unreadable: {err}"
                );
                serde_json::json!({ "number": e.ticket_number })
            }
        };
        let body = serde_json::json!({
            "event": event,
            "ticket": ticket,
            "change": {
                "field": e.field,
                "old": e.old_value,
                "new": e.new_value,
                "by": e.actor,
                "at": e.created_at,
            },
        })
        .to_string();
        for h in wanting {
            deliveries.push((
                h.url.clone(),
                e.id,
                event,
                e.ticket_number.clone(),
                body.clone(),
            ));
        }
    }
    let n = deliveries.len();
    Ok(if store.queue_webhooks(from, to, &deliveries).await? {
        n
    } else {
        0
    })
}

/// Sends one delivery; `Err` says why it did not arrive.
async fn send(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    d: &WebhookDelivery,
) -> Result<(), String> {
    let timestamp = chrono::Utc::now().timestamp();
    let response = client
        .post(&hook.url)
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            concat!("servicedesk/", env!("CARGO_PKG_VERSION")),
        )
        .header("X-Servicedesk-Event", &d.event)
        .header("X-Servicedesk-Delivery", d.id.to_string())
        .header("X-Servicedesk-Timestamp", timestamp.to_string())
        .header(
            "X-Servicedesk-Signature",
            signature(hook.secret.expose().as_bytes(), timestamp, &d.body),
        )
        .body(d.body.clone())
        .send()
        .await
        // Without the url's query (it may carry a token of the receiver).
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// Sends the deliveries that are due; returns how many arrived.
///
/// # Errors
///
/// On database failure.
pub async fn deliver_due(
    store: &Store,
    client: &reqwest::Client,
    hooks: &[WebhookConfig],
) -> anyhow::Result<usize> {
    let mut arrived = 0;
    for d in store.due_webhooks(&crate::store::now(), 50).await? {
        let Some(hook) = hooks.iter().find(|h| h.url == d.hook) else {
            // Its hook was removed from the configuration.
            store
                .mark_webhook(d.id, Some("the webhook is no longer configured"), None)
                .await?;
            continue;
        };
        match send(client, hook, &d).await {
            Ok(()) => {
                store.mark_webhook(d.id, None, None).await?;
                arrived += 1;
            }
            Err(e) => {
                let attempts = u32::try_from(d.attempts)
                    .unwrap_or(u32::MAX)
                    .saturating_add(1);
                let retry = (attempts < hook.max_attempts).then(|| {
                    let wait =
                        crate::outbox::doubling(hook.retry_base_secs, LONGEST_WAIT, attempts);
                    crate::store::stamp(
                        chrono::Utc::now()
                            + chrono::Duration::from_std(wait)
                                .unwrap_or(chrono::Duration::hours(1)),
                    )
                });
                tracing::warn!(
                    delivery = d.id,
                    event = d.event,
                    attempts,
                    retry = retry.as_deref().unwrap_or("no: failed"),
                    "webhook not delivered: {e}"
                );
                store.mark_webhook(d.id, Some(&e), retry.as_deref()).await?;
            }
        }
    }
    Ok(arrived)
}

/// The HTTP client of the webhooks: our rustls configuration (the system's
/// roots), a timeout, no redirects (a signed body goes where it was sent).
///
/// # Errors
///
/// When the TLS configuration cannot be built.
pub fn client() -> anyhow::Result<reqwest::Client> {
    let tls = crate::tls::client_config(None)?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Queues and delivers until `stop`: the daemon's webhook task. Of the
/// daemons sharing a database, the holder of `lease` does it.
pub async fn run(
    store: Store,
    hooks: Vec<WebhookConfig>,
    lease: crate::lease::Lease,
    mut stop: watch::Receiver<bool>,
) {
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("webhooks disabled: {e:#}");
            return;
        }
    };
    let mut failing = false;
    let mut gate = None;
    loop {
        let pass = async {
            if !lease.hold().await? {
                return Ok(0);
            }
            queue_new_events(&store, &hooks, &mut gate).await?;
            deliver_due(&store, &client, &hooks).await
        };
        match pass.await {
            Ok(_) if failing => {
                tracing::info!("webhooks: database reachable again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::error!("webhooks: {e:#}; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        let stopped = tokio::select! {
            _ = stop.wait_for(|s| *s) => true,
            () = tokio::time::sleep(LOOK) => false,
        };
        if stopped {
            lease.release().await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            signature(b"Jefe", 1700000000, "{}"),
            format!("sha256={}", hmac_hex(b"Jefe", &[b"1700000000.{}"]))
        );
        assert_ne!(signature(b"Jefe", 1, "{}"), signature(b"Jefe", 2, "{}"));
    }
}
