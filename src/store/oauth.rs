//! OAuth2 refresh tokens (`servicedesk oauth login`), kept in the database
//! so every daemon on it uses the same sign-in. Nothing here ever logs a token.

use super::{now, Result, Store};
use crate::config::Secret;

impl Store {
    /// The refresh token stored under `name`, if any.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn oauth_refresh_token(&self, name: &str) -> Result<Option<Secret>> {
        let token: Option<String> =
            sqlx::query_scalar("SELECT refresh_token FROM oauth_tokens WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(token.map(Secret::new))
    }

    /// Stores `token` under `name`, replacing the one there.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn set_oauth_refresh_token(&self, name: &str, token: &Secret) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO oauth_tokens (name, refresh_token, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET refresh_token = excluded.refresh_token, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(token.expose())
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When the refresh token under `name` was stored, if there is one.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn oauth_refresh_token_stored_at(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT updated_at FROM oauth_tokens WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
