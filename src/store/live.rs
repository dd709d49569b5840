//! What the live updates read: the audit trail (`ticket_events`) after a
//! cursor, the database's transaction horizon (to tell a transaction still
//! in flight from one rolled back), the open tickets per assignee, and who
//! has which ticket open (`presence`). Plus the in-process [`Signals`]
//! rung after such writes commit.

use sqlx::Row;

use super::{now, Backend, Result, Store};

/// Rung after a commit that wrote audit events, or after a presence
/// change, in this process: the live hub wakes at once instead of at its
/// next look (other processes are heard through `LISTEN` or that look).
#[derive(Debug)]
pub struct Signals {
    events: tokio::sync::watch::Sender<u64>,
    presence: tokio::sync::watch::Sender<u64>,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            events: tokio::sync::watch::channel(0).0,
            presence: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Signals {
    pub fn events_written(&self) {
        self.events.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn presence_changed(&self) {
        self.presence.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events.subscribe()
    }

    pub fn presence(&self) -> tokio::sync::watch::Receiver<u64> {
        self.presence.subscribe()
    }
}

/// One audit event as the live updates send it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveEvent {
    pub id: i64,
    pub ticket: String,
    /// `agent:<address>`, `mail`, `machine` or `cli`.
    pub actor: String,
    /// `created`, `inbound`, `reply`, `note`, `status`, `category`, ...
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub at: String,
}

/// An agent who has a ticket open.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Viewer {
    pub agent: String,
    pub name: String,
    /// Writing a reply (in any of their tabs).
    pub composing: bool,
}

impl Store {
    /// The rings of this process's commits.
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// The newest audit event's id (0 without any).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn last_event_id(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM ticket_events")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Audit events with `after < id <= upto`, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn events_between(
        &self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<LiveEvent>> {
        sqlx::query(
            "SELECT id, ticket_number, actor, field, old_value, new_value, created_at FROM ticket_events \
             WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3",
        )
        .bind(after)
        .bind(upto)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(LiveEvent {
                id: r.try_get("id")?,
                ticket: r.try_get("ticket_number")?,
                actor: r.try_get("actor")?,
                field: r.try_get("field")?,
                old: r.try_get("old_value")?,
                new: r.try_get("new_value")?,
                at: r.try_get("created_at")?,
            })
        })
        .collect()
    }

    /// PostgreSQL's transaction horizon now: (xmin, xmax) of a fresh
    /// snapshot. Every transaction below xmin has ended; every one that
    /// has begun has an id below xmax. `None` on SQLite, where one writer
    /// at a time commits its ids in order.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn horizon(&self) -> Result<Option<(u64, u64)>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let r = sqlx::query(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, \
                    pg_snapshot_xmax(pg_current_snapshot())::text AS xmax",
        )
        .fetch_one(&self.pool)
        .await?;
        let number = |c: &str| -> Result<u64> {
            let text: String = r.try_get(c)?;
            text.parse()
                .map_err(|_| super::StoreError::Corrupt(format!("{c}: {text}")))
        };
        Ok(Some((number("xmin")?, number("xmax")?)))
    }

    /// Open tickets per assignee (the "mine" count of every agent at once).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn open_per_assignee(&self) -> Result<Vec<(String, i64)>> {
        sqlx::query(
            "SELECT assignee, COUNT(*) AS n FROM tickets \
             WHERE assignee IS NOT NULL AND status NOT IN ('resolved', 'closed') GROUP BY assignee",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("assignee")?, r.try_get("n")?)))
        .collect()
    }

    /// Records that an agent's tab has a ticket open (and whether they are
    /// writing a reply there).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn touch_presence(
        &self,
        ticket: &str,
        agent: &str,
        name: &str,
        client: &str,
        composing: bool,
    ) -> Result<()> {
        {
            let _turn = self.write_turn().await;
            sqlx::query(
                "INSERT INTO presence (ticket_number, agent, name, client, composing, seen_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ticket_number, agent, client) \
                 DO UPDATE SET composing = excluded.composing, seen_at = excluded.seen_at, name = excluded.name",
            )
            .bind(ticket)
            .bind(agent)
            .bind(name)
            .bind(client)
            .bind(i64::from(composing))
            .bind(now())
            .execute(&self.pool)
            .await?;
        }
        self.signals.presence_changed();
        Ok(())
    }

    /// An agent's tab left a ticket.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn leave_presence(&self, ticket: &str, agent: &str, client: &str) -> Result<()> {
        {
            let _turn = self.write_turn().await;
            sqlx::query(
                "DELETE FROM presence WHERE ticket_number = $1 AND agent = $2 AND client = $3",
            )
            .bind(ticket)
            .bind(agent)
            .bind(client)
            .execute(&self.pool)
            .await?;
        }
        self.signals.presence_changed();
        Ok(())
    }

    /// Who has which ticket open, seen since `since`: per ticket, each
    /// agent once (writing if any of their tabs is), by address.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn presence_since(
        &self,
        since: &str,
        ticket: Option<&str>,
    ) -> Result<std::collections::BTreeMap<String, Vec<Viewer>>> {
        let rows = sqlx::query(
            "SELECT ticket_number, agent, MAX(name) AS name, MAX(composing) AS composing FROM presence \
             WHERE seen_at >= $1 AND ($2 = '' OR ticket_number = $2) \
             GROUP BY ticket_number, agent ORDER BY ticket_number, agent",
        )
        .bind(since)
        .bind(ticket.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut out: std::collections::BTreeMap<String, Vec<Viewer>> = Default::default();
        for r in rows {
            out.entry(r.try_get("ticket_number")?)
                .or_default()
                .push(Viewer {
                    agent: r.try_get("agent")?,
                    name: r.try_get("name")?,
                    composing: r.try_get::<i64, _>("composing")? != 0,
                });
        }
        Ok(out)
    }

    /// Whether a ticket with this number exists.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_exists(&self, number: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tickets WHERE number = $1")
            .bind(number)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Deletes presence not refreshed since `before`.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn expire_presence(&self, before: &str) -> Result<u64> {
        let _turn = self.write_turn().await;
        Ok(sqlx::query("DELETE FROM presence WHERE seen_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Whether a session (by the hash of its id) or an API token (by its
    /// hash) still lets its agent in, without counting as activity: an
    /// open live stream must not keep an idle session alive.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn still_admitted(
        &self,
        session: Option<&str>,
        token: Option<&str>,
        idle_since: &str,
    ) -> Result<bool> {
        let n: i64 = match (session, token) {
            (Some(s), _) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM agent_sessions s JOIN agents a ON a.id = s.agent_id \
                     WHERE s.id_hash = $1 AND a.active = 1 AND s.last_seen >= $2",
                )
                .bind(s)
                .bind(idle_since)
                .fetch_one(&self.pool)
                .await?
            }
            (None, Some(t)) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM api_tokens t JOIN agents a ON a.id = t.agent_id \
                     WHERE t.token_hash = $1 AND a.active = 1",
                )
                .bind(t)
                .fetch_one(&self.pool)
                .await?
            }
            (None, None) => 0,
        };
        Ok(n > 0)
    }
}
