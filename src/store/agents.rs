//! The desk's agents, their sessions and API tokens, and failed logins.
//!
//! Only hashes of session ids and tokens are stored; passwords only as
//! Argon2id hashes (made in [`crate::agents`], never here). Nothing here
//! decides who may do what.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, opt_value, value, Result, Store, StoreError};
use crate::domain::{AgentRole, Language};

/// An agent as the workspace and `agents list` see them (no password hash).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Agent {
    #[serde(skip)]
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: AgentRole,
    pub active: bool,
    /// The workspace language they chose; `None` follows the browser.
    pub language: Option<Language>,
}

/// A logged-in agent and their session's CSRF token.
#[derive(Clone)]
pub struct SessionAgent {
    pub agent: Agent,
    pub csrf_token: String,
}

impl std::fmt::Debug for SessionAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionAgent")
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

const AGENT_COLUMNS: &str = "a.id, a.email, a.name, a.role, a.active, a.language";

fn agent(r: &AnyRow) -> Result<Agent> {
    Ok(Agent {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        role: value(r, "role")?,
        active: r.try_get::<i64, _>("active")? != 0,
        language: opt_value(r, "language")?,
    })
}

/// What `agents add` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAdded {
    Created,
    Updated,
}

impl Store {
    /// Creates an agent or updates their name, role and password (and makes
    /// them active again). A changed password ends their sessions.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn upsert_agent(
        &self,
        email: &str,
        name: &str,
        role: AgentRole,
        password_hash: &str,
    ) -> Result<AgentAdded> {
        let email = email.trim().to_lowercase();
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let at = now();
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM agents WHERE email = $1")
            .bind(&email)
            .fetch_optional(&mut *tx)
            .await?;
        let added = match id {
            Some(id) => {
                sqlx::query(
                    "UPDATE agents SET name = $2, role = $3, password_hash = $4, active = 1, updated_at = $5 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(name)
                .bind(role.as_str())
                .bind(password_hash)
                .bind(&at)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM agent_sessions WHERE agent_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                AgentAdded::Updated
            }
            None => {
                sqlx::query(
                    "INSERT INTO agents (email, name, role, password_hash, active, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 1, $5, $5)",
                )
                .bind(&email)
                .bind(name)
                .bind(role.as_str())
                .bind(password_hash)
                .bind(&at)
                .execute(&mut *tx)
                .await?;
                AgentAdded::Created
            }
        };
        tx.commit().await?;
        Ok(added)
    }

    /// An agent and their password hash, active or not.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn agent_credentials(&self, email: &str) -> Result<Option<(Agent, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS}, a.password_hash FROM agents a WHERE a.email = $1"
        ))
        .bind(email.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((agent(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    /// An active agent by address.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn active_agent(&self, email: &str) -> Result<Option<Agent>> {
        Ok(self
            .agent_credentials(email)
            .await?
            .map(|(a, _)| a)
            .filter(|a| a.active))
    }

    /// Every agent, by address.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn agents(&self) -> Result<Vec<Agent>> {
        sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents a ORDER BY a.email"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(agent)
        .collect()
    }

    /// Disables an agent: no more logins, and their sessions and API tokens
    /// end in the same transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no agent has that address.
    pub async fn disable_agent(&self, email: &str) -> Result<()> {
        let email = email.trim().to_lowercase();
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM agents WHERE email = $1")
            .bind(&email)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("agent {email}")))?;
        sqlx::query("UPDATE agents SET active = 0, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM agent_sessions WHERE agent_id = $1",
            "DELETE FROM api_tokens WHERE agent_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a new API token's hash for an active agent.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no active agent has that address.
    pub async fn add_api_token(&self, email: &str, label: &str, token_hash: &str) -> Result<()> {
        let agent = self
            .active_agent(email)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("active agent {email}")))?;
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, agent_id, label, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(agent.id)
        .bind(label)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The active agent a token belongs to; records its use (at most once a minute).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn token_agent(&self, token_hash: &str) -> Result<Option<Agent>> {
        let row = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS}, t.id AS token_id, t.last_used FROM api_tokens t \
             JOIN agents a ON a.id = t.agent_id WHERE t.token_hash = $1 AND a.active = 1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let at = now();
        let last: Option<String> = r.try_get("last_used")?;
        if last.is_none_or(|l| stale(&l, &at)) {
            let _turn = self.write_turn().await;
            sqlx::query("UPDATE api_tokens SET last_used = $2 WHERE id = $1")
                .bind(r.try_get::<i64, _>("token_id")?)
                .bind(&at)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(agent(&r)?))
    }

    /// Starts a session for an agent.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn create_session(&self, agent_id: i64, id_hash: &str, csrf: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO agent_sessions (id_hash, agent_id, csrf_token, created_at, last_seen) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id_hash)
        .bind(agent_id)
        .bind(csrf)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The active agent of a session last seen after `idle_since`; a
    /// session idle longer is ended. Records the visit (at most once a minute).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn session_agent(
        &self,
        id_hash: &str,
        idle_since: &str,
    ) -> Result<Option<SessionAgent>> {
        let row = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS}, s.csrf_token, s.last_seen FROM agent_sessions s \
             JOIN agents a ON a.id = s.agent_id WHERE s.id_hash = $1 AND a.active = 1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let last: String = r.try_get("last_seen")?;
        if last.as_str() < idle_since {
            self.end_session(id_hash).await?;
            return Ok(None);
        }
        let at = now();
        if stale(&last, &at) {
            let _turn = self.write_turn().await;
            sqlx::query("UPDATE agent_sessions SET last_seen = $2 WHERE id_hash = $1")
                .bind(id_hash)
                .bind(&at)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(SessionAgent {
            agent: agent(&r)?,
            csrf_token: r.try_get("csrf_token")?,
        }))
    }

    /// Ends a session (logout).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn end_session(&self, id_hash: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM agent_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remembers the workspace language an agent chose.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn set_agent_language(&self, agent_id: i64, language: Language) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE agents SET language = $2 WHERE id = $1")
            .bind(agent_id)
            .bind(language.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed login under each key (`email:…`, `client:…`).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn record_login_failure(&self, keys: &[String]) -> Result<()> {
        let _turn = self.write_turn().await;
        let at = now();
        for key in keys {
            sqlx::query("INSERT INTO login_failures (key, created_at) VALUES ($1, $2)")
                .bind(key)
                .bind(&at)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Failed logins under `key` since `since`.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn login_failures_since(&self, key: &str, since: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM login_failures WHERE key = $1 AND created_at >= $2",
        )
        .bind(key)
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Forgets the failed logins under `key` (after a good login), and every
    /// failure older than `older_than`.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn clear_login_failures(&self, key: &str, older_than: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM login_failures WHERE key = $1 OR created_at < $2")
            .bind(key)
            .bind(older_than)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// True when a stored time is more than a minute before `now` (both as
/// stored: RFC 3339 UTC with milliseconds).
fn stale(stored: &str, now: &str) -> bool {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (parse(stored), parse(now)) {
        (Some(a), Some(b)) => (b - a).num_seconds() >= 60,
        _ => true,
    }
}
