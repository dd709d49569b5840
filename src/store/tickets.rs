//! Tickets and their threads: creating, numbering, follow-ups, agents'
//! corrections, and the views `tickets list`/`show` print.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, Result, Store, StoreError, Tx};
use crate::triage::{Followup, NewTicket, TicketRef, TicketStatus};

/// A message on a ticket's thread.
#[derive(Debug, Clone)]
pub struct ThreadMessage<'a> {
    pub direction: &'a str,
    pub message_id: &'a str,
    pub from: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// From someone who is not a registered person of the ticket's customer.
    pub outsider: bool,
}

/// A ticket as agents and `tickets list --json` see it.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub number: String,
    pub category: String,
    pub chargeable: bool,
    pub chargeable_reason: Option<String>,
    pub status: String,
    pub customer: String,
    pub campus: Option<String>,
    pub charge_approved: Option<bool>,
    pub sender: String,
    pub sender_name: String,
    pub subject: String,
    pub language: String,
    pub message_ids: Vec<String>,
    /// Why an agent must look at this ticket (null when nothing is wrong).
    pub attention: Option<String>,
    /// The closed ticket this one continues.
    pub related_ticket: Option<String>,
    /// The customer's words the charge decision was based on.
    pub charge_decision: Option<String>,
    /// Who decided on the charge (a registered person of the customer).
    pub charge_decided_by: Option<String>,
    /// The Message-ID of the mail that decided it.
    pub charge_decided_message: Option<String>,
    pub evidence: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

/// One message of a ticket's thread, for `tickets show`.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadEntry {
    pub direction: String,
    pub message_id: String,
    pub from: String,
    pub subject: String,
    pub body: String,
    pub created_at: String,
    /// From someone who is not a registered person of the ticket's
    /// customer: it decided nothing.
    pub outsider: bool,
}

/// Filters of `tickets list`.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub category: Option<String>,
    pub status: Option<String>,
}

/// An agent's change to a ticket; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TicketChange {
    pub category: Option<String>,
    /// `Some(None)` clears the chargeable reason.
    pub chargeable_reason: Option<Option<String>>,
    pub status: Option<String>,
}

/// A ticket an agent corrected, as a training example.
#[derive(Debug, Clone)]
pub struct CorrectedTicket {
    pub category: String,
    pub chargeable_reason: Option<String>,
    pub subject: String,
    pub body: String,
}

fn ticket_ref(r: &AnyRow) -> TicketRef {
    TicketRef {
        number: r.get(0),
        customer: r.get(1),
        status: TicketStatus::parse(&r.get::<String, _>(2)).unwrap_or(TicketStatus::Open),
        updated_at: DateTime::parse_from_rfc3339(&r.get::<String, _>(3))
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
    }
}

fn ticket_view(r: &AnyRow, message_ids: Vec<String>) -> TicketView {
    let reason: Option<String> = r.get(3);
    TicketView {
        number: r.get(1),
        category: r.get(2),
        chargeable: reason.is_some(),
        chargeable_reason: reason,
        status: r.get(4),
        customer: r.get(5),
        campus: r.get(6),
        charge_approved: r.get::<Option<i64>, _>(7).map(|v| v != 0),
        sender: r.get(8),
        sender_name: r.get(9),
        subject: r.get(10),
        language: r.get(11),
        message_ids,
        attention: r.get(15),
        related_ticket: r.get(16),
        charge_decision: r.get(17),
        charge_decided_by: r.get("charge_decided_by"),
        charge_decided_message: r.get("charge_decided_message"),
        evidence: serde_json::from_str(&r.get::<String, _>(12)).unwrap_or_default(),
        created_at: r.get(13),
        updated_at: r.get(14),
    }
}

impl Store {
    /// Tickets, pre-sorted: by category, then status, then number.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketView>> {
        let rows = sqlx::query(
            "SELECT id, number, category, chargeable_reason, status, customer, campus, charge_approved, \
                    sender, sender_name, subject, language, evidence, created_at, updated_at, \
                    attention, related_ticket, charge_decision, charge_decided_by, charge_decided_message \
             FROM tickets \
             WHERE ($1 = '' OR category = $1) AND ($2 = '' OR status = $2) \
             ORDER BY category, status, id",
        )
        .bind(filter.category.clone().unwrap_or_default())
        .bind(filter.status.clone().unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        let ids = sqlx::query(
            "SELECT ticket_id, message_id FROM messages WHERE direction = 'in' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_ticket: std::collections::HashMap<i64, Vec<String>> =
            std::collections::HashMap::new();
        for r in ids {
            by_ticket.entry(r.get(0)).or_default().push(r.get(1));
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                ticket_view(
                    &r,
                    by_ticket.remove(&r.get::<i64, _>(0)).unwrap_or_default(),
                )
            })
            .collect())
    }

    /// One ticket with its thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no ticket has that number.
    pub async fn ticket(&self, number: &str) -> Result<(TicketView, Vec<ThreadEntry>)> {
        let row = sqlx::query(
            "SELECT id, number, category, chargeable_reason, status, customer, campus, charge_approved, \
                    sender, sender_name, subject, language, evidence, created_at, updated_at, \
                    attention, related_ticket, charge_decision, charge_decided_by, charge_decided_message \
             FROM tickets WHERE number = $1",
        )
        .bind(number.trim().to_ascii_uppercase())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
        let id: i64 = row.get(0);
        let thread: Vec<ThreadEntry> = sqlx::query(
            "SELECT direction, message_id, from_addr, subject, body, created_at, outsider \
             FROM messages WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| ThreadEntry {
            direction: r.get(0),
            message_id: r.get(1),
            from: r.get(2),
            subject: r.get(3),
            body: r.get(4),
            created_at: r.get(5),
            outsider: r.get::<i64, _>(6) != 0,
        })
        .collect();
        let ids = thread
            .iter()
            .filter(|m| m.direction == "in")
            .map(|m| m.message_id.clone())
            .collect();
        Ok((ticket_view(&row, ids), thread))
    }

    /// Applies an agent's change and records each changed field as a correction.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no ticket has that number.
    pub async fn set_ticket(
        &self,
        number: &str,
        change: &TicketChange,
    ) -> Result<Vec<(String, Option<String>, Option<String>)>> {
        let number = number.trim().to_ascii_uppercase();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT category, chargeable_reason, status FROM tickets WHERE number = $1",
        )
        .bind(&number)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
        let old: [Option<String>; 3] = [Some(row.get(0)), row.get(1), Some(row.get(2))];
        let new = [
            change.category.clone().or_else(|| old[0].clone()),
            change
                .chargeable_reason
                .clone()
                .unwrap_or_else(|| old[1].clone()),
            change.status.clone().or_else(|| old[2].clone()),
        ];
        let at = now();
        let mut changed = Vec::new();
        for (i, field) in ["category", "chargeable_reason", "status"]
            .iter()
            .enumerate()
        {
            if old[i] != new[i] {
                sqlx::query(
                    "INSERT INTO corrections (ticket_number, field, old_value, new_value, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&number)
                .bind(*field)
                .bind(old[i].clone())
                .bind(new[i].clone())
                .bind(&at)
                .execute(&mut *tx)
                .await?;
                changed.push((field.to_string(), old[i].clone(), new[i].clone()));
            }
        }
        if !changed.is_empty() {
            sqlx::query(
                "UPDATE tickets SET category = $2, chargeable_reason = $3, status = $4, updated_at = $5 WHERE number = $1",
            )
            .bind(&number)
            .bind(new[0].clone())
            .bind(new[1].clone())
            .bind(new[2].clone())
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Tickets an agent corrected, with their current (corrected) sorting
    /// and first inbound message: training examples.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn corrected_tickets(&self) -> Result<Vec<CorrectedTicket>> {
        let rows = sqlx::query(
            "SELECT t.category, t.chargeable_reason, m.subject, m.body FROM tickets t \
             JOIN messages m ON m.id = (SELECT MIN(id) FROM messages WHERE ticket_id = t.id AND direction = 'in') \
             WHERE t.number IN (SELECT ticket_number FROM corrections WHERE field IN ('category', 'chargeable_reason'))",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CorrectedTicket {
                category: r.get(0),
                chargeable_reason: r.get(1),
                subject: r.get(2),
                body: r.get(3),
            })
            .collect())
    }
}

impl Tx {
    /// The newest ticket whose thread holds one of these Message-IDs.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_for_messages(&mut self, ids: &[String]) -> Result<Option<TicketRef>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let ids = &ids[ids.len().saturating_sub(50)..];
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT t.number, t.customer, t.status, t.updated_at FROM messages m \
             JOIN tickets t ON t.id = m.ticket_id WHERE m.message_id IN ({}) ORDER BY t.id DESC LIMIT 1",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        Ok(q.fetch_optional(&mut *self.tx)
            .await?
            .map(|r| ticket_ref(&r)))
    }

    /// The ticket with this number, as triage sees it.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_ref(&mut self, number: &str) -> Result<Option<TicketRef>> {
        Ok(sqlx::query(
            "SELECT number, customer, status, updated_at FROM tickets WHERE number = $1",
        )
        .bind(number)
        .fetch_optional(&mut *self.tx)
        .await?
        .map(|r| ticket_ref(&r)))
    }

    /// Creates a ticket and returns its number.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn insert_ticket(&mut self, t: &NewTicket, subject: &str) -> Result<(i64, String)> {
        let at = now();
        let evidence = serde_json::to_string(&t.evidence).unwrap_or_else(|_| "{}".into());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tickets (category, chargeable_reason, status, customer, campus, sender, sender_name, \
                                  subject, language, evidence, created_at, updated_at, related_ticket, attention) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13) RETURNING id",
        )
        .bind(t.category.as_str())
        .bind(t.chargeable.map(|r| r.as_str()))
        .bind(t.status.as_str())
        .bind(&t.customer)
        .bind(t.campus.clone())
        .bind(&t.sender)
        .bind(&t.sender_name)
        .bind(subject)
        .bind(t.language.code())
        .bind(evidence)
        .bind(at)
        .bind(t.related.clone())
        .bind(t.attention.clone())
        .fetch_one(&mut *self.tx)
        .await?;
        let number = format!("{}-{id:06}", self.prefix);
        sqlx::query("UPDATE tickets SET number = $2 WHERE id = $1")
            .bind(id)
            .bind(&number)
            .execute(&mut *self.tx)
            .await?;
        Ok((id, number))
    }

    /// Applies a follow-up to its ticket and returns the ticket's id. A
    /// charge decision is recorded with who made it (`from`) and with which
    /// message (`message_id`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the ticket is gone.
    pub async fn apply_followup(
        &mut self,
        f: &Followup,
        from: &str,
        message_id: &str,
    ) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM tickets WHERE number = $1")
            .bind(&f.ticket)
            .fetch_optional(&mut *self.tx)
            .await?;
        let id = id.ok_or_else(|| StoreError::NotFound(format!("ticket {}", f.ticket)))?;
        sqlx::query(
            "UPDATE tickets SET updated_at = $2, \
                 status = COALESCE($3, status), \
                 charge_approved = COALESCE($4, charge_approved), \
                 charge_decision = COALESCE($5, charge_decision), \
                 attention = COALESCE($6, attention), \
                 charge_decided_by = COALESCE($7, charge_decided_by), \
                 charge_decided_message = COALESCE($8, charge_decided_message) \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now())
        .bind(f.set_status.map(|s| s.as_str()))
        .bind(f.charge_approved.map(i64::from))
        .bind(f.charge_words.clone())
        .bind(f.attention.clone())
        .bind(f.charge_approved.map(|_| from.trim().to_lowercase()))
        .bind(f.charge_approved.map(|_| message_id))
        .execute(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// The ticket id of a number, inside this transaction.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_id(&mut self, number: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM tickets WHERE number = $1")
                .bind(number)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    /// Adds a message to a ticket's thread.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn add_message(&mut self, ticket_id: i64, m: &ThreadMessage<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO messages (ticket_id, direction, message_id, from_addr, subject, body, created_at, outsider) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(ticket_id)
        .bind(m.direction)
        .bind(m.message_id)
        .bind(m.from)
        .bind(m.subject)
        .bind(m.body)
        .bind(now())
        .bind(i64::from(m.outsider))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
