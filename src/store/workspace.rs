//! What the agents' workspace reads and changes: queues with keyset
//! pagination, counts per queue, a ticket's audit trail, agents' changes
//! (recorded as corrections and audit events), replies and notes.

use sqlx::Row;

use super::{now, Result, Store, StoreError, Tx};
use crate::domain::{Category, ChargeReason, Language, TicketStatus};

/// Which of the desk's views a list shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum View {
    /// Every ticket, whatever its status (the API's default).
    #[default]
    Everything,
    /// Every ticket not resolved or closed.
    Open,
    /// Open tickets assigned to this agent (address).
    Mine(String),
    /// Open tickets assigned to nobody.
    Unassigned,
    /// Waiting for the customer's charge approval.
    AwaitingApproval,
    /// On hold: the customer's contract is suspended.
    OnHold,
    /// An agent waits for the customer's answer.
    Waiting,
    /// Open tickets an agent must look at (low confidence, unclear answer, ...).
    ToCheck,
    /// Running SLA clocks due within `[sla] due_soon` or overdue, the
    /// earliest first (not paged: one list).
    DueSoon,
    /// Running SLA clocks past their due time, the earliest first.
    Overdue,
}

/// A page of tickets: filters, a view, and where the page starts.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    pub view: View,
    pub category: Option<Category>,
    pub status: Option<TicketStatus>,
    /// The customer's name, any case.
    pub customer: Option<String>,
    pub language: Option<Language>,
    pub chargeable: Option<bool>,
    /// A search box's text: full-text over the thread (mail, agents'
    /// replies, notes) or a ticket number, customer or sender; best first
    /// (see `store::search`).
    pub text: Option<String>,
    /// Only tickets with a smaller id (the cursor of the next page).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Open tickets per category and per view, for the queue page.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueueCounts {
    /// (category, open tickets in it), in the vocabulary's order.
    pub categories: Vec<(Category, i64)>,
    pub open: i64,
    pub mine: i64,
    pub unassigned: i64,
    pub awaiting_approval: i64,
    pub on_hold: i64,
    pub waiting: i64,
    pub to_check: i64,
    /// Running SLA clocks due within `[sla] due_soon`, overdue ones included.
    pub due_soon: i64,
    /// Running SLA clocks past their due time.
    pub overdue: i64,
}

/// One change to a ticket, for its audit trail.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TicketEvent {
    /// `agent:<address>`, `cli`, `mail` or `machine`.
    pub actor: String,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub created_at: String,
}

/// An attachment of a message on a ticket (without its contents).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttachmentInfo {
    pub id: i64,
    /// The row id of the message it came with.
    #[serde(skip)]
    pub message: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
}

/// A ticket as an agent's reply needs it.
#[derive(Debug, Clone)]
pub struct ReplyTarget {
    pub id: i64,
    pub number: String,
    pub sender: String,
    pub sender_name: String,
    pub subject: String,
    pub language: Language,
    pub status: TicketStatus,
    /// The latest inbound message's Message-ID, and its references.
    pub latest_inbound: Option<String>,
    /// Every Message-ID of the thread, oldest first.
    pub thread_ids: Vec<String>,
}

/// A bound value of a built query.
pub(super) enum Arg {
    Text(String),
    Int(i64),
}

impl Arg {
    /// The same value again (for a second query over the same filters).
    pub(super) fn clone_arg(&self) -> Arg {
        match self {
            Arg::Text(t) => Arg::Text(t.clone()),
            Arg::Int(i) => Arg::Int(*i),
        }
    }
}

const OPEN: &str = "status NOT IN ('resolved', 'closed')";

impl Store {
    /// A page of tickets, newest first (keyset pagination on the id).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_page(&self, q: &TicketQuery) -> Result<Vec<super::TicketView>> {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        fn arg(conds: &mut Vec<String>, args: &mut Vec<Arg>, sql: &str, a: Arg) {
            args.push(a);
            conds.push(sql.replace('?', &format!("${}", args.len())));
        }
        match &q.view {
            View::Everything => {}
            View::Open => conds.push(OPEN.into()),
            View::Mine(email) => {
                conds.push(OPEN.into());
                arg(
                    &mut conds,
                    &mut args,
                    "assignee = ?",
                    Arg::Text(email.to_lowercase()),
                );
            }
            View::Unassigned => {
                conds.push(OPEN.into());
                conds.push("assignee IS NULL".into());
            }
            View::AwaitingApproval => conds.push("status = 'awaiting_approval'".into()),
            View::OnHold => conds.push("status = 'on_hold'".into()),
            View::Waiting => conds.push("status = 'waiting'".into()),
            View::ToCheck => {
                conds.push(OPEN.into());
                conds.push("attention IS NOT NULL".into());
            }
            View::DueSoon => {
                conds.push("sla_next_due IS NOT NULL".into());
                arg(
                    &mut conds,
                    &mut args,
                    "sla_next_due < ?",
                    Arg::Text(self.due_soon_threshold(chrono::Utc::now())),
                );
            }
            View::Overdue => {
                conds.push("sla_next_due IS NOT NULL".into());
                arg(
                    &mut conds,
                    &mut args,
                    "sla_next_due < ?",
                    Arg::Text(super::now()),
                );
            }
        }
        if let Some(c) = q.category {
            arg(
                &mut conds,
                &mut args,
                "category = ?",
                Arg::Text(c.as_str().into()),
            );
        }
        if let Some(s) = q.status {
            arg(
                &mut conds,
                &mut args,
                "status = ?",
                Arg::Text(s.as_str().into()),
            );
        }
        if let Some(c) = q.customer.as_deref().filter(|c| !c.trim().is_empty()) {
            args.push(Arg::Text(c.trim().to_string()));
            let n = args.len();
            conds.push(format!(
                "(customer = ${n} OR LOWER(customer) = LOWER(${n}))"
            ));
        }
        if let Some(l) = q.language {
            arg(
                &mut conds,
                &mut args,
                "language = ?",
                Arg::Text(l.as_str().into()),
            );
        }
        match q.chargeable {
            Some(true) => conds.push("chargeable_reason IS NOT NULL".into()),
            Some(false) => conds.push("chargeable_reason IS NULL".into()),
            None => {}
        }
        if let Some(t) = q.text.as_deref().filter(|t| !t.trim().is_empty()) {
            let search = crate::search::Search::parse(t);
            return self.search_page(q, &search, conds, args).await;
        }
        let due_first = matches!(q.view, View::DueSoon | View::Overdue);
        if let Some(id) = q.before_id.filter(|_| !due_first) {
            args.push(Arg::Int(id));
            conds.push(format!("id < ${}", args.len()));
        }
        args.push(Arg::Int(q.limit.clamp(1, 10_000)));
        let sql = format!(
            "SELECT {} FROM tickets {} ORDER BY {} LIMIT ${}",
            super::tickets::TICKET_COLUMNS,
            if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            },
            if due_first {
                "sla_next_due, id"
            } else {
                "id DESC"
            },
            args.len()
        );
        let mut query = sqlx::query(&sql);
        for a in args {
            query = match a {
                Arg::Text(t) => query.bind(t),
                Arg::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        self.ticket_views(&rows).await
    }

    /// Rows of `TICKET_COLUMNS` as tickets, with their inbound Message-IDs.
    pub(super) async fn ticket_views(
        &self,
        rows: &[sqlx::any::AnyRow],
    ) -> Result<Vec<super::TicketView>> {
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<std::result::Result<_, _>>()?;
        let mut message_ids = self.inbound_ids(&ids).await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                super::tickets::ticket_view(r, message_ids.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    /// The inbound Message-IDs of these tickets.
    async fn inbound_ids(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, Vec<String>>> {
        let mut by_ticket: std::collections::HashMap<i64, Vec<String>> =
            std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT ticket_id, message_id FROM messages WHERE direction = 'in' AND ticket_id IN ({}) ORDER BY id",
                placeholders.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.pool).await? {
                by_ticket
                    .entry(r.try_get("ticket_id")?)
                    .or_default()
                    .push(r.try_get("message_id")?);
            }
        }
        Ok(by_ticket)
    }

    /// Open tickets per category and per view (all but "mine", which
    /// [`Store::mine_count`] gives). Reads only the `tickets_counts` index;
    /// still, it counts every open ticket, so callers keep the result a
    /// few seconds.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn queue_counts(&self) -> Result<QueueCounts> {
        let rows = sqlx::query(
            "SELECT status, category, \
                 CASE WHEN assignee IS NULL THEN 1 ELSE 0 END AS unassigned, \
                 CASE WHEN attention IS NULL THEN 0 ELSE 1 END AS to_check, COUNT(*) AS n \
             FROM tickets WHERE status IN ('new', 'awaiting_approval', 'on_hold', 'open', 'waiting') \
             GROUP BY status, category, \
                 CASE WHEN assignee IS NULL THEN 1 ELSE 0 END, \
                 CASE WHEN attention IS NULL THEN 0 ELSE 1 END",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut counts = QueueCounts {
            categories: Category::ALL.iter().map(|c| (*c, 0)).collect(),
            ..QueueCounts::default()
        };
        for r in rows {
            let status: String = r.try_get("status")?;
            let category: String = r.try_get("category")?;
            let n: i64 = r.try_get("n")?;
            if let Some(slot) = counts
                .categories
                .iter_mut()
                .find(|(c, _)| c.as_str() == category)
            {
                slot.1 += n;
            }
            counts.open += n;
            if r.try_get::<i64, _>("unassigned")? == 1 {
                counts.unassigned += n;
            }
            if r.try_get::<i64, _>("to_check")? == 1 {
                counts.to_check += n;
            }
            match status.as_str() {
                "awaiting_approval" => counts.awaiting_approval += n,
                "on_hold" => counts.on_hold += n,
                "waiting" => counts.waiting += n,
                _ => {}
            }
        }
        (counts.due_soon, counts.overdue) = self.due_counts().await?;
        Ok(counts)
    }

    /// Open tickets assigned to this agent.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn mine_count(&self, agent: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM tickets WHERE assignee = $1 AND {OPEN}"
        ))
        .bind(agent.to_lowercase())
        .fetch_one(&self.pool)
        .await?)
    }

    /// The HTML part of one message of a ticket's thread, as received.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the ticket has no such message with HTML.
    pub async fn message_html(&self, number: &str, message: i64) -> Result<String> {
        let html: Option<Option<String>> = sqlx::query_scalar(
            "SELECT m.html FROM messages m JOIN tickets t ON t.id = m.ticket_id \
             WHERE t.number = $1 AND m.id = $2",
        )
        .bind(number.trim().to_ascii_uppercase())
        .bind(message)
        .fetch_optional(&self.pool)
        .await?;
        html.flatten()
            .ok_or_else(|| StoreError::NotFound(format!("HTML of message {message} on {number}")))
    }

    /// The attachments of a ticket's messages, in order.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_attachments(&self, number: &str) -> Result<Vec<AttachmentInfo>> {
        sqlx::query(
            "SELECT a.id, a.message, a.name, a.content_type, a.size FROM attachments a \
             JOIN messages m ON m.id = a.message JOIN tickets t ON t.id = m.ticket_id \
             WHERE t.number = $1 ORDER BY a.id",
        )
        .bind(number.trim().to_ascii_uppercase())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(AttachmentInfo {
                id: r.try_get("id")?,
                message: r.try_get("message")?,
                name: r.try_get("name")?,
                content_type: r.try_get("content_type")?,
                size: r.try_get("size")?,
            })
        })
        .collect()
    }

    /// One attachment of a ticket: its name and contents.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the ticket has no such attachment.
    pub async fn attachment(&self, number: &str, id: i64) -> Result<(String, Vec<u8>)> {
        let row = sqlx::query(
            "SELECT a.name, a.data FROM attachments a JOIN messages m ON m.id = a.message \
             JOIN tickets t ON t.id = m.ticket_id WHERE t.number = $1 AND a.id = $2",
        )
        .bind(number.trim().to_ascii_uppercase())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("attachment {id} on {number}")))?;
        Ok((row.try_get("name")?, row.try_get("data")?))
    }

    /// The part of one message of a ticket that its HTML names `cid:{content_id}`:
    /// its content type and contents.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when that message has no such part.
    pub async fn inline_part(
        &self,
        number: &str,
        message: i64,
        content_id: &str,
    ) -> Result<(String, Vec<u8>)> {
        let row = sqlx::query(
            "SELECT a.content_type, a.data FROM attachments a JOIN messages m ON m.id = a.message \
             JOIN tickets t ON t.id = m.ticket_id \
             WHERE t.number = $1 AND m.id = $2 AND a.content_id = $3 ORDER BY a.id LIMIT 1",
        )
        .bind(number.trim().to_ascii_uppercase())
        .bind(message)
        .bind(content_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "part {content_id} of message {message} on {number}"
            ))
        })?;
        Ok((row.try_get("content_type")?, row.try_get("data")?))
    }

    /// The parts of a message that have a Content-ID: (content id, type, bytes).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn inline_parts(
        &self,
        number: &str,
        message: i64,
    ) -> Result<Vec<(String, String, Vec<u8>)>> {
        sqlx::query(
            "SELECT a.content_id, a.content_type, a.data FROM attachments a JOIN messages m ON m.id = a.message \
             JOIN tickets t ON t.id = m.ticket_id \
             WHERE t.number = $1 AND m.id = $2 AND a.content_id IS NOT NULL ORDER BY a.id",
        )
        .bind(number.trim().to_ascii_uppercase())
        .bind(message)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("content_id")?, r.try_get("content_type")?, r.try_get("data")?)))
        .collect()
    }

    /// Every recorded change to a ticket, oldest first.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_events(&self, number: &str) -> Result<Vec<TicketEvent>> {
        sqlx::query(
            "SELECT actor, field, old_value, new_value, created_at FROM ticket_events \
             WHERE ticket_number = $1 ORDER BY id",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(TicketEvent {
                actor: r.try_get("actor")?,
                field: r.try_get("field")?,
                old_value: r.try_get("old_value")?,
                new_value: r.try_get("new_value")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
    }

    /// The customer's other tickets that are not resolved or closed (at most 20).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn other_open_tickets(
        &self,
        customer: &str,
        except: &str,
    ) -> Result<Vec<(String, String, TicketStatus)>> {
        sqlx::query(&format!(
            "SELECT number, subject, status FROM tickets WHERE customer = $1 AND number <> $2 AND {OPEN} \
             ORDER BY id DESC LIMIT 20"
        ))
        .bind(customer)
        .bind(except)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("number")?,
                r.try_get("subject")?,
                super::value(r, "status")?,
            ))
        })
        .collect()
    }

    /// Applies a change by `actor` (`agent:<address>`, `cli`): each changed
    /// field becomes an audit event, and a changed category, reason or
    /// status or priority a correction that training reads. Returns (field, old, new)
    /// of what changed.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no ticket has that number.
    pub async fn change_ticket(
        &self,
        number: &str,
        change: &super::TicketChange,
        actor: &str,
    ) -> Result<Vec<(String, Option<String>, Option<String>)>> {
        let number = number.trim().to_ascii_uppercase();
        let mut tx = self.begin("").await?;
        // The row is locked before it is read, so a merge or a follow-up
        // committing meanwhile is not written over; a merged ticket takes
        // no change until the merge is undone.
        let locked = tx
            .lock_ticket(&number)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
        if let Some(into) = locked.merged_into {
            return Err(StoreError::Refused(format!(
                "{number} was merged into {into}: work on {into}, or undo the merge"
            )));
        }
        let row = sqlx::query(
            "SELECT category, chargeable_reason, status, assignee, charge_approved, priority FROM tickets WHERE number = $1",
        )
        .bind(&number)
        .fetch_optional(&mut *tx.tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
        let bool_text =
            |b: Option<i64>| b.map(|v| if v != 0 { "true" } else { "false" }.to_string());
        let old: [Option<String>; 6] = [
            Some(row.try_get("category")?),
            row.try_get("chargeable_reason")?,
            Some(row.try_get("status")?),
            row.try_get("assignee")?,
            bool_text(row.try_get("charge_approved")?),
            Some(row.try_get("priority")?),
        ];
        let mut new = old.clone();
        if let Some(c) = change.category {
            new[0] = Some(c.as_str().into());
        }
        if let Some(r) = change.chargeable_reason {
            new[1] = r.map(|r: ChargeReason| r.as_str().to_string());
        }
        if let Some(s) = change.status {
            new[2] = Some(s.as_str().into());
        }
        if let Some(p) = change.priority {
            new[5] = Some(p.as_str().into());
        }
        if let Some(a) = &change.assignee {
            new[3] = a.as_ref().map(|a| a.trim().to_lowercase());
        }
        if let Some(approved) = change.charge_approved {
            new[4] = approved.map(|b| b.to_string());
            // A decision given by phone moves the ticket as one by mail does,
            // unless the same change sets the status itself.
            if change.status.is_none() && old[2].as_deref() == Some("awaiting_approval") {
                match approved {
                    Some(true) => new[2] = Some(TicketStatus::New.as_str().into()),
                    Some(false) => new[2] = Some(TicketStatus::Closed.as_str().into()),
                    None => {}
                }
            }
        }
        let at = now();
        let fields = [
            "category",
            "chargeable_reason",
            "status",
            "assignee",
            "charge_approved",
            "priority",
        ];
        let mut changed = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            if old[i] == new[i] {
                continue;
            }
            if i < 3 || *field == "priority" {
                sqlx::query(
                    "INSERT INTO corrections (ticket_number, field, old_value, new_value, created_at, agent) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&number)
                .bind(*field)
                .bind(old[i].clone())
                .bind(new[i].clone())
                .bind(&at)
                .bind(actor)
                .execute(&mut *tx.tx)
                .await?;
            }
            tx.record_event(&number, actor, field, old[i].as_deref(), new[i].as_deref())
                .await?;
            changed.push((field.to_string(), old[i].clone(), new[i].clone()));
        }
        if !changed.is_empty() {
            let decided = change.charge_approved.is_some() && old[4] != new[4];
            let who = actor.strip_prefix("agent:").unwrap_or(actor).to_string();
            sqlx::query(
                "UPDATE tickets SET category = $2, chargeable_reason = $3, status = $4, assignee = $5, \
                 charge_approved = $6, updated_at = $7, priority = $11, \
                 charge_decided_by = CASE WHEN $8 = 1 THEN $9 ELSE charge_decided_by END, \
                 charge_decision = CASE WHEN $8 = 1 THEN $10 ELSE charge_decision END, \
                 charge_decided_message = CASE WHEN $8 = 1 THEN NULL ELSE charge_decided_message END \
                 WHERE number = $1",
            )
            .bind(&number)
            .bind(new[0].clone())
            .bind(new[1].clone())
            .bind(new[2].clone())
            .bind(new[3].clone())
            .bind(new[4].as_deref().map(|b| i64::from(b == "true")))
            .bind(&at)
            .bind(i64::from(decided))
            .bind(who)
            .bind("recorded by an agent (given by phone or in person)")
            .bind(new[5].clone())
            .execute(&mut *tx.tx)
            .await?;
            tx.follow_sla_of(&number).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

impl Tx {
    /// Records one change to a ticket in its audit trail.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn record_event(
        &mut self,
        number: &str,
        actor: &str,
        field: &str,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO ticket_events (ticket_number, actor, field, old_value, new_value, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(number)
        .bind(actor)
        .bind(field)
        .bind(old)
        .bind(new)
        .bind(now())
        .execute(&mut *self.tx)
        .await?;
        self.wrote_events = true;
        Ok(())
    }

    /// What an agent's reply to this ticket needs to know.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no ticket has that number.
    pub async fn reply_target(&mut self, number: &str) -> Result<ReplyTarget> {
        let number = number.trim().to_ascii_uppercase();
        let r = sqlx::query(
            "SELECT id, number, sender, sender_name, subject, language, status FROM tickets WHERE number = $1",
        )
        .bind(&number)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
        let id: i64 = r.try_get("id")?;
        let thread = sqlx::query(
            "SELECT direction, message_id FROM messages WHERE ticket_id = $1 AND direction IN ('in', 'out') ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut thread_ids = Vec::new();
        let mut latest_inbound = None;
        for m in &thread {
            let direction: String = m.try_get("direction")?;
            let message_id: String = m.try_get("message_id")?;
            if direction == "in" {
                latest_inbound = Some(message_id.clone());
            }
            thread_ids.push(message_id);
        }
        Ok(ReplyTarget {
            id,
            number: r.try_get("number")?,
            sender: r.try_get("sender")?,
            sender_name: r.try_get("sender_name")?,
            subject: r.try_get("subject")?,
            language: super::value(&r, "language")?,
            status: super::value(&r, "status")?,
            latest_inbound,
            thread_ids,
        })
    }

    /// Adds an agent's reply (`out`) or internal note (`note`) to a thread.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn add_authored_message(
        &mut self,
        ticket_id: i64,
        m: &super::ThreadMessage<'_>,
        author: &str,
    ) -> Result<()> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (ticket_id, direction, message_id, from_addr, subject, body, created_at, outsider, author) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) RETURNING id",
        )
        .bind(ticket_id)
        .bind(m.direction)
        .bind(m.message_id)
        .bind(m.from)
        .bind(m.subject)
        .bind(m.body)
        .bind(now())
        .bind(author)
        .fetch_one(&mut *self.tx)
        .await?;
        self.index_message(id, ticket_id, m.subject, m.body).await?;
        sqlx::query("UPDATE tickets SET updated_at = $2 WHERE id = $1")
            .bind(ticket_id)
            .bind(now())
            .execute(&mut *self.tx)
            .await?;
        if m.direction == "out" {
            self.sla_answered(ticket_id).await?;
        }
        Ok(())
    }

    /// Sets a ticket's status (an agent's reply opens a new ticket).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn set_status(&mut self, ticket_id: i64, status: TicketStatus) -> Result<()> {
        sqlx::query("UPDATE tickets SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(ticket_id)
            .bind(status.as_str())
            .bind(now())
            .execute(&mut *self.tx)
            .await?;
        self.follow_sla(ticket_id).await
    }
}

/// A saved reply: a named text per language that answers often start from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SavedReply {
    pub id: i64,
    pub name: String,
    pub language: Language,
    /// A template over the ticket's fields.
    pub text: String,
    pub updated_by: String,
    pub updated_at: String,
}

impl Store {
    /// Every saved reply, by name then language.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn saved_replies(&self) -> Result<Vec<SavedReply>> {
        sqlx::query(
            "SELECT id, name, language, body, updated_by, updated_at FROM saved_replies ORDER BY name, language",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(SavedReply {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                language: super::value(r, "language")?,
                text: r.try_get("body")?,
                updated_by: r.try_get("updated_by")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
    }

    /// Creates or replaces the saved reply `name` in `language`.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn save_reply(
        &self,
        name: &str,
        language: Language,
        text: &str,
        by: &str,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO saved_replies (name, language, body, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name, language) DO UPDATE SET body = excluded.body, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(language.as_str())
        .bind(text)
        .bind(by)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a saved reply.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when there is none with that id.
    pub async fn delete_saved_reply(&self, id: i64) -> Result<()> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM saved_replies WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("saved reply {id}")));
        }
        Ok(())
    }
}
