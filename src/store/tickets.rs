//! Tickets and their threads: creating, numbering, follow-ups, agents'
//! corrections, and the views `tickets list`/`show` print.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, opt_value, value, Result, Store, StoreError, Tx};
use crate::domain::{Category, ChargeReason, Language, Priority, TicketStatus};
use crate::triage::{Followup, NewTicket, TicketRef};

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
    /// The mail's HTML part as received, if it had one.
    pub html: Option<&'a str>,
}

/// A ticket as agents and `tickets list --json` see it.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    /// The row's id: the cursor of the workspace's lists.
    #[serde(skip)]
    pub id: i64,
    pub number: String,
    pub category: Category,
    pub chargeable: bool,
    pub chargeable_reason: Option<ChargeReason>,
    pub priority: Priority,
    pub status: TicketStatus,
    pub customer: String,
    pub campus: Option<String>,
    pub charge_approved: Option<bool>,
    pub sender: String,
    pub sender_name: String,
    pub subject: String,
    pub language: Language,
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
    /// The agent the ticket is assigned to (address), null when unassigned.
    pub assignee: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The SLA clock's tier, targets and due times (flattened: its keys sit
    /// beside the others).
    #[serde(flatten)]
    pub sla: super::SlaView,
}

/// One message of a ticket's thread, for `tickets show`.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadEntry {
    /// The message's row id (its HTML part is served by it).
    #[serde(skip)]
    pub id: i64,
    /// True when the mail came with an HTML part.
    #[serde(skip)]
    pub has_html: bool,
    /// `in`, `out` (our reply, automatic or an agent's), or `note`.
    pub direction: String,
    pub message_id: String,
    pub from: String,
    pub subject: String,
    pub body: String,
    pub created_at: String,
    /// From someone who is not a registered person of the ticket's
    /// customer: it decided nothing.
    pub outsider: bool,
    /// The agent who wrote a reply or note; null for mail and automatic replies.
    pub author: Option<String>,
}

impl ThreadEntry {
    /// `inbound`, `reply` (an agent's), `auto_reply` or `note`: the API's `kind`.
    pub fn kind(&self) -> &'static str {
        match (self.direction.as_str(), self.author.is_some()) {
            ("in" | "bounce", _) => "inbound",
            ("note", _) => "note",
            (_, true) => "reply",
            (_, false) => "auto_reply",
        }
    }
}

/// Filters of `tickets list`.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub category: Option<Category>,
    pub status: Option<TicketStatus>,
}

/// An agent's change to a ticket; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TicketChange {
    pub category: Option<Category>,
    /// `Some(None)` clears the chargeable reason.
    pub chargeable_reason: Option<Option<ChargeReason>>,
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    /// `Some(None)` unassigns; an agent's address assigns.
    pub assignee: Option<Option<String>>,
    /// `Some(None)` forgets a charge decision.
    pub charge_approved: Option<Option<bool>>,
}

/// A ticket an agent corrected, as a training example.
#[derive(Debug, Clone)]
pub struct CorrectedTicket {
    pub category: Category,
    pub chargeable_reason: Option<ChargeReason>,
    /// Only when an agent set it: the sorting's own guess teaches nothing.
    pub priority: Option<Priority>,
    pub subject: String,
    pub body: String,
}

/// The columns [`ticket_view`] reads, for every query that feeds it.
pub(super) const TICKET_COLUMNS: &str = "id, number, category, chargeable_reason, status, customer, campus, \
     charge_approved, sender, sender_name, subject, language, evidence, created_at, updated_at, \
     attention, related_ticket, charge_decision, charge_decided_by, charge_decided_message, assignee, priority, \
     sla_tier, sla_response_minutes, sla_resolution_minutes, first_response_due, first_response_at, \
     resolution_due, sla_paused_since, sla_next_due";

fn ticket_ref(r: &AnyRow) -> Result<TicketRef> {
    Ok(TicketRef {
        number: r.try_get("number")?,
        customer: r.try_get("customer")?,
        status: value(r, "status")?,
        updated_at: DateTime::parse_from_rfc3339(&r.try_get::<String, _>("updated_at")?)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
    })
}

/// A row of [`TICKET_COLUMNS`] and the ticket's inbound Message-IDs.
pub(super) fn ticket_view(r: &AnyRow, message_ids: Vec<String>) -> Result<TicketView> {
    let chargeable_reason: Option<ChargeReason> = opt_value(r, "chargeable_reason")?;
    Ok(TicketView {
        id: r.try_get("id")?,
        assignee: r.try_get("assignee")?,
        number: r.try_get("number")?,
        category: value(r, "category")?,
        chargeable: chargeable_reason.is_some(),
        chargeable_reason,
        priority: value(r, "priority")?,
        status: value(r, "status")?,
        customer: r.try_get("customer")?,
        campus: r.try_get("campus")?,
        charge_approved: r
            .try_get::<Option<i64>, _>("charge_approved")?
            .map(|v| v != 0),
        sender: r.try_get("sender")?,
        sender_name: r.try_get("sender_name")?,
        subject: r.try_get("subject")?,
        language: value(r, "language")?,
        message_ids,
        attention: r.try_get("attention")?,
        related_ticket: r.try_get("related_ticket")?,
        charge_decision: r.try_get("charge_decision")?,
        charge_decided_by: r.try_get("charge_decided_by")?,
        charge_decided_message: r.try_get("charge_decided_message")?,
        evidence: serde_json::from_str(&r.try_get::<String, _>("evidence")?).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        sla: super::sla::view(r)?,
    })
}

impl Store {
    /// Tickets, pre-sorted: by category, then status, then number.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketView>> {
        let rows = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets \
             WHERE ($1 = '' OR category = $1) AND ($2 = '' OR status = $2) \
             ORDER BY category, status, id"
        ))
        .bind(filter.category.map(Category::as_str).unwrap_or_default())
        .bind(filter.status.map(TicketStatus::as_str).unwrap_or_default())
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
            by_ticket
                .entry(r.try_get("ticket_id")?)
                .or_default()
                .push(r.try_get("message_id")?);
        }
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                ticket_view(r, by_ticket.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    /// One ticket with its thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no ticket has that number.
    pub async fn ticket(&self, number: &str) -> Result<(TicketView, Vec<ThreadEntry>)> {
        let row = sqlx::query(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE number = $1"
        ))
        .bind(number.trim().to_ascii_uppercase())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
        let id: i64 = row.try_get("id")?;
        let thread = sqlx::query(
            "SELECT id, direction, message_id, from_addr, subject, body, created_at, outsider, author, \
             html IS NOT NULL AS has_html FROM messages WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ThreadEntry {
                direction: r.try_get("direction")?,
                message_id: r.try_get("message_id")?,
                from: r.try_get("from_addr")?,
                subject: r.try_get("subject")?,
                body: r.try_get("body")?,
                created_at: r.try_get("created_at")?,
                outsider: r.try_get::<i64, _>("outsider")? != 0,
                author: r.try_get("author")?,
                id: r.try_get("id")?,
                has_html: r.try_get::<bool, _>("has_html").or_else(|_| r.try_get::<i64, _>("has_html").map(|v| v != 0))?,
            })
        })
        .collect::<Result<Vec<ThreadEntry>>>()?;
        let ids = thread
            .iter()
            .filter(|m| m.direction == "in")
            .map(|m| m.message_id.clone())
            .collect();
        Ok((ticket_view(&row, ids)?, thread))
    }

    /// Applies a change made on the command line (`tickets set`) and
    /// records each changed field as a correction; see [`Store::change_ticket`].
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no ticket has that number.
    pub async fn set_ticket(
        &self,
        number: &str,
        change: &TicketChange,
    ) -> Result<Vec<(String, Option<String>, Option<String>)>> {
        self.change_ticket(number, change, "cli").await
    }

    /// Tickets an agent corrected, with their current (corrected) sorting
    /// and first inbound message: training examples. Also how many were
    /// left out because their category or reason is not one this version
    /// knows (written by a newer one).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn corrected_tickets(&self) -> Result<(Vec<CorrectedTicket>, usize)> {
        let rows = sqlx::query(
            "SELECT t.category, t.chargeable_reason, t.priority, m.subject, m.body, \
                    (SELECT COUNT(*) FROM corrections c WHERE c.ticket_number = t.number AND c.field = 'priority') AS priority_set \
             FROM tickets t \
             JOIN messages m ON m.id = (SELECT MIN(id) FROM messages WHERE ticket_id = t.id AND direction = 'in') \
             WHERE t.number IN (SELECT ticket_number FROM corrections WHERE field IN ('category', 'chargeable_reason', 'priority'))",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut tickets = Vec::with_capacity(rows.len());
        let mut unknown = 0;
        for r in &rows {
            let sorted = (value(r, "category"), opt_value(r, "chargeable_reason"));
            let (Ok(category), Ok(chargeable_reason)) = sorted else {
                unknown += 1;
                continue;
            };
            let priority = if r.try_get::<i64, _>("priority_set")? > 0 {
                opt_value(r, "priority")?
            } else {
                None
            };
            tickets.push(CorrectedTicket {
                category,
                chargeable_reason,
                priority,
                subject: r.try_get("subject")?,
                body: r.try_get("body")?,
            });
        }
        Ok((tickets, unknown))
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
        q.fetch_optional(&mut *self.tx)
            .await?
            .map(|r| ticket_ref(&r))
            .transpose()
    }

    /// The ticket with this number, as triage sees it.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_ref(&mut self, number: &str) -> Result<Option<TicketRef>> {
        // A merged ticket's token stands for the ticket it was merged into.
        let number = self.surviving_ticket(number).await?;
        sqlx::query("SELECT number, customer, status, updated_at FROM tickets WHERE number = $1")
            .bind(number)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|r| ticket_ref(&r))
            .transpose()
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
                                  subject, language, evidence, created_at, updated_at, related_ticket, attention, priority) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14) RETURNING id",
        )
        .bind(t.category.as_str())
        .bind(t.chargeable.map(|r| r.as_str()))
        .bind(t.status.as_str())
        .bind(&t.customer)
        .bind(t.campus.clone())
        .bind(&t.sender)
        .bind(&t.sender_name)
        .bind(subject)
        .bind(t.language.as_str())
        .bind(evidence)
        .bind(at)
        .bind(t.related.clone())
        .bind(t.attention.clone())
        .bind(t.priority.as_str())
        .fetch_one(&mut *self.tx)
        .await?;
        let number = format!("{}-{id:06}", self.prefix);
        sqlx::query("UPDATE tickets SET number = $2 WHERE id = $1")
            .bind(id)
            .bind(&number)
            .execute(&mut *self.tx)
            .await?;
        self.start_sla(id, &t.customer).await?;
        let sorted = format!(
            "{} / {} / {}",
            t.category.as_str(),
            t.chargeable.map(|r| r.as_str()).unwrap_or("not chargeable"),
            t.status.as_str()
        );
        self.record_event(&number, "machine", "created", None, Some(&sorted))
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
        // A merge that committed after this message's ticket was looked up
        // sends the message on to the surviving ticket.
        let mut f = std::borrow::Cow::Borrowed(f);
        let survivor = self.lock_surviving(&f.ticket).await?;
        if survivor != f.ticket {
            f.to_mut().ticket = survivor;
        }
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
        self.follow_sla(id).await?;
        if let Some(status) = f.set_status {
            self.record_event(&f.ticket, "mail", "status", None, Some(status.as_str()))
                .await?;
        }
        if let Some(approved) = f.charge_approved {
            let approved = if approved { "true" } else { "false" };
            self.record_event(&f.ticket, "mail", "charge_approved", None, Some(approved))
                .await?;
        }
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

    /// Adds a message to a ticket's thread; returns its row id.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn add_message(&mut self, ticket_id: i64, m: &ThreadMessage<'_>) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (ticket_id, direction, message_id, from_addr, subject, body, created_at, outsider, html) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(ticket_id)
        .bind(m.direction)
        .bind(m.message_id)
        .bind(m.from)
        .bind(m.subject)
        .bind(m.body)
        .bind(now())
        .bind(i64::from(m.outsider))
        .bind(m.html)
        .fetch_one(&mut *self.tx)
        .await?;
        if m.direction == "in" {
            self.index_message(id, ticket_id, m.subject, m.body).await?;
        }
        Ok(id)
    }

    /// Keeps an inbound message's attachments (for download by agents).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn add_attachments(
        &mut self,
        message: i64,
        attachments: &[crate::mail::Attachment],
    ) -> Result<()> {
        for a in attachments {
            sqlx::query(
                "INSERT INTO attachments (message, name, content_type, size, data, content_id) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(message)
            .bind(&a.name)
            .bind(&a.content_type)
            .bind(i64::try_from(a.size).unwrap_or(i64::MAX))
            .bind(a.data.clone())
            .bind(a.content_id.clone())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }
}
