//! Merging two tickets of one customer: the merged ticket's thread moves to
//! the surviving one (each moved message recorded, so an undo restores the
//! exact split), the merged ticket is closed and points to the survivor,
//! drafts move, and both tickets' audit trails say so. Mail for a merged
//! ticket lands on the survivor: its messages are there, and its token
//! resolves there ([`Tx::surviving_ticket`]).

use sqlx::Row;

use super::{now, Result, Store, StoreError, Tx};

/// How far a chain of merges is followed (A into B into C ...).
const MAX_HOPS: usize = 16;

/// Why a merge or its undo was refused.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no ticket {0}")]
    NotFound(String),
    #[error("a ticket cannot be merged into itself")]
    IntoItself,
    #[error("{from} ({from_customer}) and {into} ({into_customer}) belong to different customers; only a customer's own tickets can be merged")]
    DifferentCustomers {
        from: String,
        from_customer: String,
        into: String,
        into_customer: String,
    },
    #[error("{0} is already merged into {1}")]
    AlreadyMerged(String, String),
    #[error("{0} was merged into {1}: merge into {1} instead")]
    TargetMerged(String, String),
    #[error("{0} is not merged into another ticket")]
    NotMerged(String),
    #[error("{into} was itself merged into {next} since: undo that merge first")]
    UndoOutOfOrder { into: String, next: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MergeError {
    fn from(e: sqlx::Error) -> Self {
        MergeError::Store(e.into())
    }
}

/// A merge done or undone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Merged {
    pub from: String,
    pub into: String,
    /// How many thread messages moved.
    pub messages: u64,
}

/// One recorded merge, as a ticket page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MergeRecord {
    pub from: String,
    pub into: String,
    pub merged_by: String,
    pub merged_at: String,
}

/// A ticket's merges: where it went, and what came into it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MergeState {
    /// Set when this ticket was merged into another (and not undone).
    pub merged_into: Option<MergeRecord>,
    /// Tickets merged into this one (not undone), oldest first.
    pub merged_from: Vec<MergeRecord>,
}

pub(super) struct Locked {
    id: i64,
    customer: String,
    status: String,
    pub(super) merged_into: Option<String>,
}

impl Tx {
    /// The ticket a number stands for now: itself, or the ticket it was
    /// merged into (following a chain of merges).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn surviving_ticket(&mut self, number: &str) -> Result<String> {
        let mut current = number.trim().to_ascii_uppercase();
        for _ in 0..MAX_HOPS {
            let next: Option<Option<String>> =
                sqlx::query_scalar("SELECT merged_into FROM tickets WHERE number = $1")
                    .bind(&current)
                    .fetch_optional(&mut *self.tx)
                    .await?;
            match next.flatten() {
                Some(n) => current = n,
                None => break,
            }
        }
        Ok(current)
    }

    /// Locks a ticket's row for this transaction (a no-op write) and reads it.
    pub(super) async fn lock_ticket(&mut self, number: &str) -> Result<Option<Locked>> {
        let row = sqlx::query(
            "UPDATE tickets SET updated_at = updated_at WHERE number = $1 \
             RETURNING id, customer, status, merged_into",
        )
        .bind(number)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            Ok(Locked {
                id: r.try_get("id")?,
                customer: r.try_get("customer")?,
                status: r.try_get("status")?,
                merged_into: r.try_get("merged_into")?,
            })
        })
        .transpose()
    }

    /// Locks the merged ticket, then the surviving one: the order in which
    /// a message for the merged ticket locks them too
    /// ([`Tx::lock_surviving`]), so neither waits for the other forever.
    async fn lock_pair(
        &mut self,
        from: &str,
        into: &str,
    ) -> std::result::Result<(Locked, Locked), MergeError> {
        let f = self
            .lock_ticket(from)
            .await?
            .ok_or_else(|| MergeError::NotFound(from.to_string()))?;
        let i = self
            .lock_ticket(into)
            .await?
            .ok_or_else(|| MergeError::NotFound(into.to_string()))?;
        Ok((f, i))
    }

    /// Like [`Tx::surviving_ticket`], locking each ticket on the way: once
    /// it returns, no merge of the returned ticket can commit before this
    /// transaction does, so what this transaction adds to it stays on the
    /// surviving ticket. A merge in flight is waited for.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn lock_surviving(&mut self, number: &str) -> Result<String> {
        let mut current = number.trim().to_ascii_uppercase();
        for _ in 0..MAX_HOPS {
            match self.lock_ticket(&current).await? {
                Some(Locked {
                    merged_into: Some(next),
                    ..
                }) => current = next,
                _ => break,
            }
        }
        Ok(current)
    }
}

impl Store {
    /// Merges ticket `from` into `into` (same customer): `from`'s thread
    /// moves to `into`, `from` is closed and points to `into`, drafts move,
    /// and both audit trails record it by `actor`.
    ///
    /// # Errors
    ///
    /// [`MergeError`] naming why it was refused; database failure.
    pub async fn merge_tickets(
        &self,
        from: &str,
        into: &str,
        actor: &str,
    ) -> std::result::Result<Merged, MergeError> {
        let from = from.trim().to_ascii_uppercase();
        let into = into.trim().to_ascii_uppercase();
        if from == into {
            return Err(MergeError::IntoItself);
        }
        let mut tx = self.begin("").await?;
        let (f, i) = tx.lock_pair(&from, &into).await?;
        if let Some(next) = f.merged_into {
            return Err(MergeError::AlreadyMerged(from, next));
        }
        if let Some(next) = i.merged_into {
            let survivor = tx.surviving_ticket(&next).await?;
            return Err(MergeError::TargetMerged(into, survivor));
        }
        if f.customer != i.customer {
            return Err(MergeError::DifferentCustomers {
                from,
                from_customer: f.customer,
                into,
                into_customer: i.customer,
            });
        }
        let at = now();
        let merge_id: i64 = sqlx::query_scalar(
            "INSERT INTO merges (from_ticket, into_ticket, from_status, merged_by, merged_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&from)
        .bind(&into)
        .bind(&f.status)
        .bind(actor)
        .bind(&at)
        .fetch_one(&mut *tx.tx)
        .await?;
        let moved = sqlx::query(
            "INSERT INTO merge_messages (merge_id, message) SELECT $1, id FROM messages WHERE ticket_id = $2",
        )
        .bind(merge_id)
        .bind(f.id)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE messages SET ticket_id = $2 WHERE ticket_id = $1")
            .bind(f.id)
            .bind(i.id)
            .execute(&mut *tx.tx)
            .await?;
        sqlx::query(
            "UPDATE tickets SET status = 'closed', merged_into = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(f.id)
        .bind(&into)
        .bind(&at)
        .execute(&mut *tx.tx)
        .await?;
        // Closed: its SLA clock stops (it leaves the due views).
        tx.follow_sla(f.id).await?;
        sqlx::query("UPDATE tickets SET updated_at = $2 WHERE id = $1")
            .bind(i.id)
            .bind(&at)
            .execute(&mut *tx.tx)
            .await?;
        tx.move_drafts(&from, &into).await?;
        tx.record_event(&from, actor, "merged_into", None, Some(&into))
            .await?;
        if f.status != "closed" {
            tx.record_event(&from, actor, "status", Some(&f.status), Some("closed"))
                .await?;
        }
        tx.record_event(&into, actor, "merged_from", None, Some(&from))
            .await?;
        tx.commit().await?;
        Ok(Merged {
            from,
            into,
            messages: moved,
        })
    }

    /// Undoes the merge of `from`: exactly the messages that moved go back,
    /// `from` gets its status back and no longer points anywhere; mail that
    /// arrived on the survivor since stays there. Drafts stay where they
    /// are. Both audit trails record it.
    ///
    /// # Errors
    ///
    /// [`MergeError::NotMerged`] when `from` is not merged;
    /// [`MergeError::UndoOutOfOrder`] when the survivor was merged on
    /// since; database failure.
    pub async fn undo_merge(
        &self,
        from: &str,
        actor: &str,
    ) -> std::result::Result<Merged, MergeError> {
        let from = from.trim().to_ascii_uppercase();
        let mut tx = self.begin("").await?;
        let f = tx
            .lock_ticket(&from)
            .await?
            .ok_or_else(|| MergeError::NotFound(from.clone()))?;
        let into = f
            .merged_into
            .clone()
            .ok_or_else(|| MergeError::NotMerged(from.clone()))?;
        let i = tx
            .lock_ticket(&into)
            .await?
            .ok_or_else(|| MergeError::NotFound(into.clone()))?;
        if let Some(next) = i.merged_into {
            return Err(MergeError::UndoOutOfOrder { into, next });
        }
        let merge = sqlx::query(
            "SELECT id, from_status FROM merges WHERE from_ticket = $1 AND into_ticket = $2 \
             AND undone_at IS NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(&from)
        .bind(&into)
        .fetch_optional(&mut *tx.tx)
        .await?
        .ok_or_else(|| MergeError::NotMerged(from.clone()))?;
        let merge_id: i64 = merge.try_get("id")?;
        let status: String = merge.try_get("from_status")?;
        let at = now();
        let moved = sqlx::query(
            "UPDATE messages SET ticket_id = $1 WHERE ticket_id = $2 \
             AND id IN (SELECT message FROM merge_messages WHERE merge_id = $3)",
        )
        .bind(f.id)
        .bind(i.id)
        .bind(merge_id)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE tickets SET status = $2, merged_into = NULL, updated_at = $3 WHERE id = $1",
        )
        .bind(f.id)
        .bind(&status)
        .bind(&at)
        .execute(&mut *tx.tx)
        .await?;
        tx.follow_sla(f.id).await?;
        sqlx::query("UPDATE tickets SET updated_at = $2 WHERE id = $1")
            .bind(i.id)
            .bind(&at)
            .execute(&mut *tx.tx)
            .await?;
        sqlx::query("UPDATE merges SET undone_by = $2, undone_at = $3 WHERE id = $1")
            .bind(merge_id)
            .bind(actor)
            .bind(&at)
            .execute(&mut *tx.tx)
            .await?;
        tx.record_event(&from, actor, "merged_into", Some(&into), None)
            .await?;
        if f.status != status {
            tx.record_event(&from, actor, "status", Some(&f.status), Some(&status))
                .await?;
        }
        tx.record_event(&into, actor, "merged_from", Some(&from), None)
            .await?;
        tx.commit().await?;
        Ok(Merged {
            from,
            into,
            messages: moved,
        })
    }

    /// Where a ticket was merged, and which tickets were merged into it.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn merge_state(&self, number: &str) -> Result<MergeState> {
        let number = number.trim().to_ascii_uppercase();
        let rows = sqlx::query(
            "SELECT from_ticket, into_ticket, merged_by, merged_at FROM merges \
             WHERE (from_ticket = $1 OR into_ticket = $1) AND undone_at IS NULL ORDER BY id",
        )
        .bind(&number)
        .fetch_all(&self.pool)
        .await?;
        let mut state = MergeState::default();
        for r in rows {
            let record = MergeRecord {
                from: r.try_get("from_ticket")?,
                into: r.try_get("into_ticket")?,
                merged_by: r.try_get("merged_by")?,
                merged_at: r.try_get("merged_at")?,
            };
            if record.from == number {
                state.merged_into = Some(record);
            } else {
                state.merged_from.push(record);
            }
        }
        Ok(state)
    }
}
