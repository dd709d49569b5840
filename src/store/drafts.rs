//! Agents' drafts (a reply or note being written, saved as it is typed)
//! and replies held for the undo-send window: queued in the outbox at
//! once, due a few seconds later, and taken back only while no sender has
//! claimed them.

use sqlx::Row;

use super::{now, Result, Store, StoreError, Tx};

/// What a draft is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DraftKind {
    /// An answer to the customer.
    Reply,
    /// An internal note.
    Note,
}

impl DraftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DraftKind::Reply => "reply",
            DraftKind::Note => "note",
        }
    }

    pub fn parse(s: &str) -> Option<DraftKind> {
        match s {
            "reply" => Some(DraftKind::Reply),
            "note" => Some(DraftKind::Note),
            _ => None,
        }
    }
}

/// An agent's saved draft on one ticket.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Draft {
    pub kind: DraftKind,
    pub text: String,
    pub updated_at: String,
}

/// An agent's reply waiting out its undo window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldReply {
    pub message_id: String,
    /// When it may be sent (RFC 3339); undo works until then.
    pub due_at: String,
}

/// Why a reply could not be taken back.
#[derive(Debug, thiserror::Error)]
pub enum UndoSendError {
    /// A sender has it, it was sent, or the window is over.
    #[error("the reply is already on its way and cannot be taken back")]
    TooLate,
    /// No reply of this agent with that Message-ID on the ticket.
    #[error("no reply {0} of yours on this ticket")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The same agent's address as stored: trimmed, lower case.
fn agent_key(agent: &str) -> String {
    agent.trim().to_lowercase()
}

fn ticket_key(number: &str) -> String {
    number.trim().to_ascii_uppercase()
}

/// `old` and `new` text joined by a blank line; either alone if the other is empty.
fn joined(first: &str, second: &str) -> String {
    match (first.trim().is_empty(), second.trim().is_empty()) {
        (true, _) => second.to_string(),
        (_, true) => first.to_string(),
        _ => format!("{}\n\n{}", first.trim_end(), second),
    }
}

impl Store {
    /// Saves (or, for an empty text, forgets) an agent's draft; on a
    /// merged ticket, on the ticket it was merged into.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] for an unknown ticket; database failure.
    pub async fn save_draft(
        &self,
        agent: &str,
        number: &str,
        kind: DraftKind,
        text: &str,
    ) -> Result<Option<String>> {
        let number = ticket_key(number);
        let mut tx = self.begin("").await?;
        if tx.ticket_id(&number).await?.is_none() {
            return Err(StoreError::NotFound(format!("ticket {number}")));
        }
        // A page still open on a ticket merged since saves onto the survivor.
        let number = tx.surviving_ticket(&number).await?;
        let saved = if text.trim().is_empty() {
            tx.clear_draft(agent, &number, kind).await?;
            None
        } else {
            let at = now();
            sqlx::query(
                "INSERT INTO drafts (agent, ticket_number, kind, body, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (agent, ticket_number, kind) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            )
            .bind(agent_key(agent))
            .bind(&number)
            .bind(kind.as_str())
            .bind(text)
            .bind(&at)
            .execute(&mut *tx.tx)
            .await?;
            Some(at)
        };
        tx.commit().await?;
        Ok(saved)
    }

    /// An agent's drafts on one ticket.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn drafts(&self, agent: &str, number: &str) -> Result<Vec<Draft>> {
        sqlx::query(
            "SELECT kind, body, updated_at FROM drafts WHERE agent = $1 AND ticket_number = $2 ORDER BY kind DESC",
        )
        .bind(agent_key(agent))
        .bind(ticket_key(number))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(Draft {
                kind: DraftKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("draft kind {kind:?}")))?,
                text: r.try_get("body")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
    }

    /// This agent's replies on the ticket that are still inside their undo
    /// window at `now` and claimed by no sender.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn held_replies(
        &self,
        agent: &str,
        number: &str,
        now: &str,
    ) -> Result<Vec<HeldReply>> {
        sqlx::query(
            "SELECT o.message_id, o.next_attempt_at FROM outbox o \
             JOIN messages m ON m.message_id = o.message_id AND m.direction = 'out' \
             WHERE o.ticket_number = $1 AND m.author = $2 AND o.notice = 'agent' \
             AND o.status = 'pending' AND o.attempts = 0 AND o.claimed_by IS NULL \
             AND o.next_attempt_at > $3 ORDER BY o.id",
        )
        .bind(ticket_key(number))
        .bind(agent_key(agent))
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(HeldReply {
                message_id: r.try_get("message_id")?,
                due_at: r.try_get("next_attempt_at")?,
            })
        })
        .collect()
    }

    /// Takes back an agent's reply inside its undo window: it leaves the
    /// outbox and the thread, and its text becomes the agent's reply draft
    /// again (before whatever they started since). All in one transaction,
    /// and only while no sender has claimed it: a reply is either sent or
    /// taken back, never both. Returns the draft's text.
    ///
    /// # Errors
    ///
    /// [`UndoSendError::TooLate`] once a sender has it or its window is
    /// over; [`UndoSendError::NotFound`] when the agent wrote no such reply
    /// on the ticket.
    pub async fn undo_send(
        &self,
        agent: &str,
        number: &str,
        message_id: &str,
        actor: &str,
    ) -> std::result::Result<String, UndoSendError> {
        let number = ticket_key(number);
        let agent = agent_key(agent);
        let mut tx = self.begin("").await?;
        let message = sqlx::query(
            "SELECT m.id, m.ticket_id, m.body FROM messages m JOIN outbox o ON o.message_id = m.message_id \
             WHERE m.message_id = $1 AND m.author = $2 AND m.direction = 'out' AND o.ticket_number = $3",
        )
        .bind(message_id)
        .bind(&agent)
        .bind(&number)
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| UndoSendError::NotFound(message_id.to_string()))?;
        let row: i64 = message.try_get("id").map_err(StoreError::from)?;
        let text: String = message.try_get("body").map_err(StoreError::from)?;
        let ticket_id: i64 = message.try_get("ticket_id").map_err(StoreError::from)?;
        // The one write that decides: a claimed, tried, sent or due reply
        // is not taken back. On PostgreSQL a sender's claim in flight holds
        // the row; this waits for it and then sees the claim.
        let taken = sqlx::query(
            "DELETE FROM outbox WHERE message_id = $1 AND ticket_number = $2 AND notice = 'agent' \
             AND status = 'pending' AND attempts = 0 AND claimed_by IS NULL AND next_attempt_at > $3",
        )
        .bind(message_id)
        .bind(&number)
        .bind(now())
        .execute(&mut *tx.tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if taken != 1 {
            return Err(UndoSendError::TooLate);
        }
        sqlx::query("DELETE FROM messages WHERE id = $1")
            .bind(row)
            .execute(&mut *tx.tx)
            .await
            .map_err(StoreError::from)?;
        // A reply taken back answered nobody: the first response is the
        // earliest agent's answer still there (or none), and the clock follows.
        sqlx::query(
            "UPDATE tickets SET first_response_at = (SELECT MIN(created_at) FROM messages \
             WHERE ticket_id = $1 AND direction = 'out' AND author IS NOT NULL) WHERE id = $1",
        )
        .bind(ticket_id)
        .execute(&mut *tx.tx)
        .await
        .map_err(StoreError::from)?;
        tx.follow_sla(ticket_id).await?;
        // The draft goes to the ticket the reply's thread is on now (a
        // merge may have moved it).
        let target = tx.surviving_ticket(&number).await?;
        let current: Option<String> = sqlx::query_scalar(
            "SELECT body FROM drafts WHERE agent = $1 AND ticket_number = $2 AND kind = 'reply'",
        )
        .bind(&agent)
        .bind(&target)
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(StoreError::from)?;
        let draft = joined(&text, current.as_deref().unwrap_or(""));
        sqlx::query(
            "INSERT INTO drafts (agent, ticket_number, kind, body, updated_at) VALUES ($1, $2, 'reply', $3, $4) \
             ON CONFLICT (agent, ticket_number, kind) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(&agent)
        .bind(&target)
        .bind(&draft)
        .bind(now())
        .execute(&mut *tx.tx)
        .await
        .map_err(StoreError::from)?;
        tx.record_event(&number, actor, "reply_undone", None, Some(message_id))
            .await?;
        tx.commit().await?;
        Ok(draft)
    }
}

impl Tx {
    /// Forgets an agent's draft (it was sent).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn clear_draft(&mut self, agent: &str, number: &str, kind: DraftKind) -> Result<()> {
        sqlx::query("DELETE FROM drafts WHERE agent = $1 AND ticket_number = $2 AND kind = $3")
            .bind(agent_key(agent))
            .bind(ticket_key(number))
            .bind(kind.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Moves every draft on `from` to `into` (a merge); where an agent has
    /// one of the same kind on both, the texts are joined, `into`'s first.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn move_drafts(&mut self, from: &str, into: &str) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT agent, kind, body FROM drafts WHERE ticket_number = $1 ORDER BY agent, kind",
        )
        .bind(from)
        .fetch_all(&mut *self.tx)
        .await?;
        let at = now();
        for r in &rows {
            let agent: String = r.try_get("agent")?;
            let kind: String = r.try_get("kind")?;
            let body: String = r.try_get("body")?;
            let there: Option<String> = sqlx::query_scalar(
                "SELECT body FROM drafts WHERE agent = $1 AND ticket_number = $2 AND kind = $3",
            )
            .bind(&agent)
            .bind(into)
            .bind(&kind)
            .fetch_optional(&mut *self.tx)
            .await?;
            sqlx::query(
                "INSERT INTO drafts (agent, ticket_number, kind, body, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (agent, ticket_number, kind) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            )
            .bind(&agent)
            .bind(into)
            .bind(&kind)
            .bind(joined(there.as_deref().unwrap_or(""), &body))
            .bind(&at)
            .execute(&mut *self.tx)
            .await?;
        }
        sqlx::query("DELETE FROM drafts WHERE ticket_number = $1")
            .bind(from)
            .execute(&mut *self.tx)
            .await?;
        Ok(rows.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_join_with_a_blank_line() {
        assert_eq!(joined("", "b"), "b");
        assert_eq!(joined("a\n", ""), "a\n");
        assert_eq!(joined("a\n\n", "b"), "a\n\nb");
        assert_eq!(DraftKind::parse("note"), Some(DraftKind::Note));
        assert_eq!(DraftKind::parse("mail"), None);
    }
}
