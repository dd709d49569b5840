//! The outbox table: replies queued in the same transaction as their
//! ticket, claimed by one sender at a time, marked sent or failed.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, value, Backend, Result, Store, StoreError, Tx};
use crate::domain::Notice;

/// A reply to queue.
#[derive(Debug, Clone)]
pub struct NewOutboxEntry<'a> {
    pub ticket: Option<&'a str>,
    pub notice: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: &'a str,
    pub envelope_from: &'a str,
    pub recipient: &'a str,
    pub raw: &'a [u8],
}

/// A queued reply, as the outbox sender sees it.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub ticket: Option<String>,
    pub notice: Notice,
    pub message_id: String,
    pub in_reply_to: String,
    pub envelope_from: String,
    pub recipient: String,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

const OUTBOX_COLUMNS: &str =
    "id, ticket_number, notice, message_id, in_reply_to, envelope_from, recipient, raw, \
     status, attempts, next_attempt_at, last_error, created_at, sent_at";

fn outbox_entry(r: &AnyRow) -> Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: r.try_get("id")?,
        ticket: r.try_get("ticket_number")?,
        notice: value(r, "notice")?,
        message_id: r.try_get("message_id")?,
        in_reply_to: r.try_get("in_reply_to")?,
        envelope_from: r.try_get("envelope_from")?,
        recipient: r.try_get("recipient")?,
        raw: r.try_get("raw")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

impl Store {
    /// Claims up to `limit` pending replies that are due at `now` and not
    /// claimed by another sender, until `until`; returns them, longest due first.
    /// Two senders never get the same reply while its claim lasts.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn claim_due(
        &self,
        holder: &str,
        now: &str,
        until: &str,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>> {
        let _turn = self.write_turn().await;
        // PostgreSQL: concurrent senders skip each other's rows instead of
        // waiting for them. SQLite has one writer at a time anyway.
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // The locked rows are checked again after the lock (PostgreSQL) or
        // cannot change meanwhile (SQLite), so the outer update need not.
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET claimed_until = $2, claimed_by = $4 WHERE id IN \
             (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
              AND (claimed_until IS NULL OR claimed_until < $1) \
              ORDER BY next_attempt_at, id LIMIT $3{skip_locked}) \
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(now)
        .bind(until)
        .bind(limit)
        .bind(holder)
        .fetch_all(&self.pool)
        .await?;
        let mut due = rows.iter().map(outbox_entry).collect::<Result<Vec<_>>>()?;
        due.sort_by_key(|e| e.id);
        Ok(due)
    }

    /// The processes holding claims on pending replies now.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn claim_holders(&self, now: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT claimed_by FROM outbox WHERE status = 'pending' \
             AND claimed_until >= $1 AND claimed_by IS NOT NULL",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Gives up every claim `holder` has: its replies are due again at once.
    /// For a holder known to be dead, whose sends will never be recorded.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn release_claims(&self, holder: &str) -> Result<u64> {
        let _turn = self.write_turn().await;
        Ok(sqlx::query(
            "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL \
             WHERE claimed_by = $1 AND status = 'pending'",
        )
        .bind(holder)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Every queued reply, newest last.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        let rows = sqlx::query(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_entry).collect()
    }

    /// When the next pending reply can be claimed, if any is pending: when
    /// its attempt is due, or, while another sender holds it, when that
    /// claim runs out (by then it is sent, or free again).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn next_due(&self) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(CASE WHEN claimed_until > next_attempt_at THEN claimed_until \
                             ELSE next_attempt_at END) \
             FROM outbox WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// When the oldest reply still waiting to be sent was queued.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn oldest_pending_reply(&self) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// How many replies wait to be sent.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn pending_replies(&self) -> Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Records that the server accepted these replies, all in one write.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn mark_sent(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.urgent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _turn = self.write_turn().await;
        self.urgent
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let placeholders: Vec<String> = (2..ids.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "UPDATE outbox SET status = 'sent', sent_at = $1, last_error = NULL, claimed_until = NULL, claimed_by = NULL \
             WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(now());
        for id in ids {
            q = q.bind(id);
        }
        q.execute(&self.pool).await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `next_attempt_at`, or given up on.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn mark_attempt(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Option<&str>,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let (status, next) = match next_attempt_at {
            Some(at) => ("pending", at.to_string()),
            None => ("failed", now()),
        };
        sqlx::query(
            "UPDATE outbox SET status = $2, attempts = attempts + 1, last_error = $3, next_attempt_at = $4, \
             claimed_until = NULL, claimed_by = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(next)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Puts a failed reply back in the queue.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no failed reply has that id.
    pub async fn retry_reply(&self, id: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2 \
             WHERE id = $1 AND status = 'failed'",
        )
        .bind(id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("failed reply {id}")));
        }
        Ok(())
    }
}

impl Tx {
    /// True when one of these Message-IDs is a reply of ours that opened no
    /// ticket (an explanation to an unregistered sender, a size notice).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn is_ticketless_reply(&mut self, ids: &[String]) -> Result<bool> {
        if ids.is_empty() {
            return Ok(false);
        }
        let ids = &ids[ids.len().saturating_sub(50)..];
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT COUNT(*) FROM outbox WHERE ticket_number IS NULL AND message_id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for id in ids {
            q = q.bind(id);
        }
        Ok(q.fetch_one(&mut *self.tx).await? > 0)
    }

    /// Replies that opened no ticket (explanations, size notices) queued
    /// since `since`, to anyone.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticketless_replies_since(&mut self, since: &str) -> Result<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE ticket_number IS NULL AND created_at >= $1",
        )
        .bind(since)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Queues a reply for the outbox sender.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn queue_reply(&mut self, e: &NewOutboxEntry<'_>) -> Result<()> {
        self.queue_reply_due(e, &now()).await
    }

    /// Queues a reply that no sender takes before `due` (RFC 3339): an
    /// agent's reply inside its undo window.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn queue_reply_due(&mut self, e: &NewOutboxEntry<'_>, due: &str) -> Result<()> {
        let at = now();
        sqlx::query(
            "INSERT INTO outbox (ticket_number, notice, message_id, in_reply_to, envelope_from, recipient, raw, \
                                 status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $9, $8)",
        )
        .bind(e.ticket)
        .bind(e.notice)
        .bind(e.message_id)
        .bind(e.in_reply_to)
        .bind(e.envelope_from)
        .bind(e.recipient)
        .bind(e.raw.to_vec())
        .bind(at)
        .bind(due)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
