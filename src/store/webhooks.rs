//! Webhook deliveries, made from the audit trail (`ticket_events`) and
//! drained like the outbox: each event becomes one delivery per webhook
//! that wants it, in the same transaction that moves the cursor past it.

use sqlx::Row;

use super::{now, Result, Store};

/// One delivery, for `servicedesk webhooks list`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WebhookDelivery {
    pub id: i64,
    pub hook: String,
    pub event: String,
    pub ticket_number: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    /// The JSON sent.
    #[serde(skip)]
    pub body: String,
}

/// An audit event not yet turned into deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: i64,
    pub ticket_number: String,
    pub actor: String,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub created_at: String,
}

const CURSOR: &str = "webhooks";

impl Store {
    /// The audit events after the webhook cursor (at most `limit`). A desk
    /// that sets up its first webhook starts from now, not from its history.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn events_for_webhooks(&self, limit: i64) -> Result<(i64, Vec<AuditEvent>)> {
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT last_event_id FROM webhook_cursor WHERE name = $1")
                .bind(CURSOR)
                .fetch_optional(&self.pool)
                .await?;
        let cursor = match cursor {
            Some(c) => c,
            None => {
                let _turn = self.write_turn().await;
                let last: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM ticket_events")
                        .fetch_one(&self.pool)
                        .await?;
                sqlx::query(
                    "INSERT INTO webhook_cursor (name, last_event_id) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(CURSOR)
                .bind(last)
                .execute(&self.pool)
                .await?;
                return Ok((last, Vec::new()));
            }
        };
        let rows = sqlx::query(
            "SELECT id, ticket_number, actor, field, old_value, new_value, created_at FROM ticket_events \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(cursor)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let events = rows
            .iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    ticket_number: r.try_get("ticket_number")?,
                    actor: r.try_get("actor")?,
                    field: r.try_get("field")?,
                    old_value: r.try_get("old_value")?,
                    new_value: r.try_get("new_value")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((cursor, events))
    }

    /// Queues `deliveries` (hook, event id, event, ticket, body) and moves
    /// the cursor from `from` to `to`, in one transaction. When another
    /// process moved the cursor first, nothing is queued (it queued them).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn queue_webhooks(
        &self,
        from: i64,
        to: i64,
        deliveries: &[(String, i64, &'static str, String, String)],
    ) -> Result<bool> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE webhook_cursor SET last_event_id = $2 WHERE name = $1 AND last_event_id = $3",
        )
        .bind(CURSOR)
        .bind(to)
        .bind(from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            return Ok(false);
        }
        let at = now();
        for (hook, event_id, event, ticket, body) in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (hook, event_id, event, ticket_number, body, status, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) ON CONFLICT (hook, event_id) DO NOTHING",
            )
            .bind(hook)
            .bind(event_id)
            .bind(*event)
            .bind(ticket)
            .bind(body)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Pending deliveries due by `now`, oldest first.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn due_webhooks(&self, now: &str, limit: i64) -> Result<Vec<WebhookDelivery>> {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    /// The newest deliveries (at most `limit`).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn webhook_deliveries(&self, limit: i64) -> Result<Vec<WebhookDelivery>> {
        let rows = sqlx::query(&format!("{SELECT} ORDER BY id DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery).collect()
    }

    /// Records an attempt: delivered, retried at `retry_at`, or (without
    /// `retry_at`) failed for good.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn mark_webhook(
        &self,
        id: i64,
        error: Option<&str>,
        retry_at: Option<&str>,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let at = now();
        let (status, next) = match (error, retry_at) {
            (None, _) => ("delivered", at.as_str()),
            (Some(_), Some(next)) => ("pending", next),
            (Some(_), None) => ("failed", at.as_str()),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, next_attempt_at = $3, \
             last_error = COALESCE($4, last_error), delivered_at = CASE WHEN $2 = 'delivered' THEN $5 ELSE delivered_at END WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(next)
        .bind(error)
        .bind(&at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

const SELECT: &str =
    "SELECT id, hook, event, ticket_number, status, attempts, next_attempt_at, last_error, \
     created_at, delivered_at, body FROM webhook_deliveries";

fn delivery(r: &sqlx::any::AnyRow) -> Result<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: r.try_get("id")?,
        hook: r.try_get("hook")?,
        event: r.try_get("event")?,
        ticket_number: r.try_get("ticket_number")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
        body: r.try_get("body")?,
    })
}
