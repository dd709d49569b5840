//! Every inbound message seen: its intake record, first sightings of a
//! Message-ID, re-reads of a source position, what the sender did lately
//! (the auto-reply limits), and the addresses flagged for agents (bounced,
//! loop breaker).

use serde::Serialize;
use sqlx::Row;

use super::{now, value, Result, Store, Tx};
use crate::domain::Outcome;
use crate::triage::SenderHistory;

/// An intake record to write.
#[derive(Debug, Clone)]
pub struct IntakeRecord<'a> {
    pub message_id: &'a str,
    pub from: &'a str,
    pub subject: &'a str,
    pub outcome: Outcome,
    pub ticket: Option<&'a str>,
    pub detail: &'a str,
    pub source: &'a str,
    pub source_key: Option<&'a str>,
    /// Raw bytes, kept for quarantined messages only.
    pub raw: Option<&'a [u8]>,
}

/// An intake record as `intake list --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IntakeView {
    pub message_id: String,
    pub from: String,
    pub subject: String,
    pub outcome: Outcome,
    pub ticket: Option<String>,
    pub detail: String,
    pub source: String,
    pub received_at: String,
}

impl Store {
    /// Flagged addresses: (address, reason, detail, since).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn address_flags(&self) -> Result<Vec<(String, String, String, String)>> {
        Ok(sqlx::query(
            "SELECT address, reason, detail, created_at FROM address_flags ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
    }

    /// Intake records, newest last.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn intake(&self) -> Result<Vec<IntakeView>> {
        let rows = sqlx::query(
            "SELECT message_id, from_addr, subject, outcome, ticket_number, detail, source, received_at \
             FROM intake ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IntakeView {
                    message_id: r.try_get("message_id")?,
                    from: r.try_get("from_addr")?,
                    subject: r.try_get("subject")?,
                    outcome: value(r, "outcome")?,
                    ticket: r.try_get("ticket_number")?,
                    detail: r.try_get("detail")?,
                    source: r.try_get("source")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }
}

impl Tx {
    /// What was recorded for the message at this source position, if it was
    /// (a restart after the commit but before the move).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn source_outcome(
        &mut self,
        source_key: &str,
    ) -> Result<Option<(Outcome, Option<String>)>> {
        let row = sqlx::query("SELECT outcome, ticket_number FROM intake WHERE source_key = $1")
            .bind(source_key)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.and_then(|r| Some((Outcome::parse(&r.get::<String, _>(0))?, r.get(1)))))
    }

    /// The ticket (if any) of the first sighting of this Message-ID.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn first_sighting(&mut self, message_id: &str) -> Result<Option<Option<String>>> {
        let row = sqlx::query(
            "SELECT ticket_number FROM intake WHERE message_id = $1 \
             AND outcome IN ('ticket', 'followup', 'unregistered', 'suppressed')",
        )
        .bind(message_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| r.get::<Option<String>, _>(0)))
    }

    /// How many no-ticket replies went to `address` since `day_ago`, and how
    /// many tickets it opened since `window_start`.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn sender_history(
        &mut self,
        address: &str,
        day_ago: &str,
        window_start: &str,
    ) -> Result<SenderHistory> {
        let address = address.trim().to_lowercase();
        let replies: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE LOWER(recipient) = $1 AND ticket_number IS NULL AND created_at >= $2",
        )
        .bind(&address)
        .bind(day_ago)
        .fetch_one(&mut *self.tx)
        .await?;
        let tickets: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE sender = $1 AND created_at >= $2",
        )
        .bind(&address)
        .bind(window_start)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(SenderHistory {
            no_ticket_replies_24h: u32::try_from(replies).unwrap_or(u32::MAX),
            recent_tickets: u32::try_from(tickets).unwrap_or(u32::MAX),
        })
    }

    /// Records what became of an inbound message.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when this Message-ID was already recorded as
    /// a first sighting, or this source position already recorded.
    pub async fn record_intake(&mut self, r: &IntakeRecord<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO intake (message_id, from_addr, subject, outcome, ticket_number, detail, source, \
                                 source_key, raw, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.message_id)
        .bind(r.from)
        .bind(r.subject)
        .bind(r.outcome.as_str())
        .bind(r.ticket)
        .bind(r.detail)
        .bind(r.source)
        .bind(r.source_key)
        .bind(r.raw.map(|b| b.to_vec()))
        .bind(now())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Marks an address for agents (bounced, loop breaker); once per reason.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn flag_address(&mut self, address: &str, reason: &str, detail: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO address_flags (address, reason, detail, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (address, reason) DO UPDATE SET detail = excluded.detail",
        )
        .bind(address.trim().to_lowercase())
        .bind(reason)
        .bind(detail)
        .bind(now())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
