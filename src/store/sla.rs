//! Each ticket's SLA clock in its columns (migration 0018): started when
//! the ticket arrives, brought up to date by [`Tx::follow_sla`] whenever
//! its status, category or priority changes, the first response marked
//! by an agent's first answer; and the "due soon / overdue" reads.
//!
//! The arithmetic is [`crate::sla`]'s; this room only reads and writes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{stamp, value, Result, Store, Tx};
use crate::domain::TicketStatus;
use crate::sla::{clock_runs, Clock, Policy, Targets};

/// A ticket's SLA as agents, `tickets list --json` and the API see it
/// (flattened into the ticket object).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SlaView {
    /// The tier the ticket got when it arrived; null: no SLA applies.
    pub sla_tier: Option<String>,
    /// The targets that apply, in business minutes.
    pub sla_response_minutes: Option<i64>,
    pub sla_resolution_minutes: Option<i64>,
    /// When the first answer is due; kept as it was once given.
    pub first_response_due: Option<String>,
    /// When an agent first answered the customer.
    pub first_response_at: Option<String>,
    pub resolution_due: Option<String>,
    /// Since when the clock stands still (waiting for the customer, for the
    /// charge approval, on hold, resolved or closed); null while it runs.
    pub sla_paused_since: Option<String>,
    /// The due time the running clock must meet next; null while it stands still.
    pub sla_next_due: Option<String>,
}

/// A row's SLA columns (the last ones of the ticket columns).
pub(super) fn view(r: &AnyRow) -> Result<SlaView> {
    Ok(SlaView {
        sla_tier: r.try_get("sla_tier")?,
        sla_response_minutes: r.try_get("sla_response_minutes")?,
        sla_resolution_minutes: r.try_get("sla_resolution_minutes")?,
        first_response_due: r.try_get("first_response_due")?,
        first_response_at: r.try_get("first_response_at")?,
        resolution_due: r.try_get("resolution_due")?,
        sla_paused_since: r.try_get("sla_paused_since")?,
        sla_next_due: r.try_get("sla_next_due")?,
    })
}

fn time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl Store {
    /// Uses this SLA policy from now on (at start and on reload); every
    /// clone of the store shares it.
    pub fn set_sla_policy(&self, policy: std::sync::Arc<Policy>) {
        *self.sla.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Uses this SLA policy, and when the open tickets' due times were
    /// computed with another one (a changed `[sla]`), computes them again,
    /// 500 tickets per transaction. Returns how many were computed again.
    ///
    /// # Errors
    ///
    /// On database failure; the tickets done so far keep their new due
    /// times, and the next start finishes the work.
    pub async fn apply_sla_policy(&self, policy: std::sync::Arc<Policy>) -> Result<usize> {
        use sha2::Digest;
        self.set_sla_policy(policy.clone());
        let fingerprint: String = sha2::Sha256::digest(format!("{policy:?}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let stored: Option<String> =
            sqlx::query_scalar("SELECT fingerprint FROM sla_policy WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        if stored.as_deref() == Some(fingerprint.as_str()) {
            return Ok(0);
        }
        let mut after = 0_i64;
        let mut done = 0;
        loop {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM tickets WHERE sla_tier IS NOT NULL \
                 AND status NOT IN ('resolved', 'closed') AND id > $1 ORDER BY id LIMIT 500",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = ids.last() else { break };
            after = *last;
            let mut tx = self.begin("").await?;
            for id in &ids {
                tx.follow_sla(*id).await?;
            }
            tx.commit().await?;
            done += ids.len();
        }
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO sla_policy (id, fingerprint, applied_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, applied_at = excluded.applied_at",
        )
        .bind(fingerprint)
        .bind(super::now())
        .execute(&self.pool)
        .await?;
        Ok(done)
    }

    /// The SLA policy in use.
    pub fn sla_policy(&self) -> std::sync::Arc<Policy> {
        self.sla.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The "due soon" threshold now: `[sla] due_soon` of business time ahead.
    pub fn due_soon_threshold(&self, now: DateTime<Utc>) -> String {
        let policy = self.sla_policy();
        stamp(
            policy
                .calendar
                .add(now, policy.due_soon_minutes)
                .unwrap_or(now),
        )
    }

    /// Running clocks due before the "due soon" threshold, and of those
    /// the ones already overdue. Reads only the `tickets_sla_next_due` index.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn due_counts(&self) -> Result<(i64, i64)> {
        let now = Utc::now();
        let row = sqlx::query(
            "SELECT COUNT(*) AS soon, COALESCE(SUM(CASE WHEN sla_next_due < $2 THEN 1 ELSE 0 END), 0) AS overdue \
             FROM tickets WHERE sla_next_due IS NOT NULL AND sla_next_due < $1",
        )
        .bind(self.due_soon_threshold(now))
        .bind(stamp(now))
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("soon")?, row.try_get("overdue")?))
    }
}

impl Tx {
    /// Starts a new ticket's clock: the tier of its customer (or the
    /// default one), the targets for its category and priority.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn start_sla(&mut self, ticket_id: i64, customer: &str) -> Result<()> {
        if self.sla.tiers.is_empty() {
            return Ok(());
        }
        let own: Option<Option<String>> =
            sqlx::query_scalar("SELECT sla FROM customers WHERE key = $1")
                .bind(customer.trim().to_lowercase())
                .fetch_optional(&mut *self.tx)
                .await?;
        let own = own.flatten().filter(|t| !t.trim().is_empty());
        let tier = self.sla.tier_for(own.as_deref()).map(|t| t.name.clone());
        if let (Some(own), None) = (&own, &tier) {
            tracing::warn!(
                customer,
                tier = %own,
                "the customer's SLA tier is not in [sla] of the configuration: the ticket gets no due times"
            );
        }
        let Some(tier) = tier else {
            // No SLA: the clock's columns stay empty.
            return Ok(());
        };
        sqlx::query("UPDATE tickets SET sla_tier = $2 WHERE id = $1")
            .bind(ticket_id)
            .bind(tier)
            .execute(&mut *self.tx)
            .await?;
        self.follow_sla(ticket_id).await
    }

    /// Notes an agent's answer to the customer: the first one meets the
    /// first-response target.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn sla_answered(&mut self, ticket_id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE tickets SET first_response_at = $2 WHERE id = $1 AND first_response_at IS NULL",
        )
        .bind(ticket_id)
        .bind(super::now())
        .execute(&mut *self.tx)
        .await?;
        self.follow_sla(ticket_id).await
    }

    /// Brings a ticket's clock up to date with its status, category and
    /// priority now (see [`Clock::follow`]). Harmless to call again.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn follow_sla(&mut self, ticket_id: i64) -> Result<()> {
        // The row's lock first (PostgreSQL): a concurrent change of the
        // same ticket waits, and this reads what it committed.
        sqlx::query("UPDATE tickets SET sla_paused_minutes = sla_paused_minutes WHERE id = $1")
            .bind(ticket_id)
            .execute(&mut *self.tx)
            .await?;
        let Some(r) = sqlx::query(
            "SELECT status, category, priority, created_at, sla_tier, sla_paused_minutes, \
                    sla_paused_since, first_response_at, first_response_due, resolution_due \
             FROM tickets WHERE id = $1",
        )
        .bind(ticket_id)
        .fetch_optional(&mut *self.tx)
        .await?
        else {
            return Ok(());
        };
        let status: TicketStatus = value(&r, "status")?;
        let Some(tier) = r.try_get::<Option<String>, _>("sla_tier")? else {
            // No SLA applies to this ticket: no clock.
            return Ok(());
        };
        // A tier since removed from the configuration has no targets.
        let targets: Option<Targets> = match self.sla.tier(&tier) {
            Some(t) => Some(t.targets(value(&r, "category")?, value(&r, "priority")?)),
            None => None,
        };
        let created = time(Some(r.try_get("created_at")?)).unwrap_or_else(Utc::now);
        let clock = Clock {
            created,
            targets: None,
            paused_minutes: r.try_get("sla_paused_minutes")?,
            paused_since: time(r.try_get("sla_paused_since")?),
            first_response_at: time(r.try_get("first_response_at")?),
            first_response_due: time(r.try_get("first_response_due")?),
            resolution_due: time(r.try_get("resolution_due")?),
        }
        .follow(&self.sla.calendar, clock_runs(status), targets, Utc::now());
        sqlx::query(
            "UPDATE tickets SET sla_response_minutes = $2, sla_resolution_minutes = $3, \
                 sla_paused_minutes = $4, sla_paused_since = $5, first_response_due = $6, \
                 resolution_due = $7, sla_next_due = $8 WHERE id = $1",
        )
        .bind(ticket_id)
        .bind(clock.targets.map(|t| t.first_response))
        .bind(clock.targets.map(|t| t.resolution))
        .bind(clock.paused_minutes)
        .bind(clock.paused_since.map(stamp))
        .bind(clock.first_response_due.map(stamp))
        .bind(clock.resolution_due.map(stamp))
        .bind(clock.next_due().map(stamp))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// [`Tx::follow_sla`] for a ticket by number.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn follow_sla_of(&mut self, number: &str) -> Result<()> {
        match self.ticket_id(number).await? {
            Some(id) => self.follow_sla(id).await,
            None => Ok(()),
        }
    }

    /// The first-response target (business minutes) of a ticket's clock;
    /// `None` when no SLA applies.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn response_target(&mut self, ticket_id: i64) -> Result<Option<i64>> {
        if self.sla.tiers.is_empty() {
            return Ok(None);
        }
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT sla_response_minutes FROM tickets WHERE id = $1",
        )
        .bind(ticket_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .flatten())
    }
}
