//! The desk's own sorting models: trained on the built-in corpora and the
//! agents' corrections, kept in the database so every daemon sharing it
//! sorts with the same one, and kept after they are replaced, for rollback.

use sqlx::Row;

use super::{now, Result, Store, StoreError};

/// A stored model, without its bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredModel {
    pub id: i64,
    pub created_at: String,
    /// Of the model's bytes, hex.
    pub sha256: String,
    /// How many agents' corrections it learned from.
    pub corrections: i64,
    /// Its figures on the held-out parts of the built-in corpora (JSON).
    pub report: serde_json::Value,
    pub active: bool,
    /// Why it is or is not in use.
    pub note: String,
}

/// A model to keep.
pub struct NewModel<'a> {
    pub bytes: &'a [u8],
    pub sha256: &'a str,
    pub corrections: i64,
    pub report: &'a serde_json::Value,
    pub note: &'a str,
}

impl Store {
    /// Keeps a model; when `activate`, it replaces the one in use, in the
    /// same transaction. Returns its id.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn save_model(&self, m: &NewModel<'_>, activate: bool) -> Result<i64> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        if activate {
            sqlx::query("UPDATE models SET active = 0 WHERE active = 1")
                .execute(&mut *tx)
                .await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO models (created_at, bytes, sha256, corrections, report, active, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(now())
        .bind(m.bytes.to_vec())
        .bind(m.sha256)
        .bind(m.corrections)
        .bind(m.report.to_string())
        .bind(i64::from(activate))
        .bind(m.note)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Every stored model, newest first.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn models(&self) -> Result<Vec<StoredModel>> {
        let rows = sqlx::query(
            "SELECT id, created_at, sha256, corrections, report, active, note FROM models ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredModel {
                    id: r.try_get("id")?,
                    created_at: r.try_get("created_at")?,
                    sha256: r.try_get("sha256")?,
                    corrections: r.try_get("corrections")?,
                    report: serde_json::from_str(&r.try_get::<String, _>("report")?)
                        .unwrap_or(serde_json::Value::Null),
                    active: r.try_get::<i64, _>("active")? != 0,
                    note: r.try_get("note")?,
                })
            })
            .collect()
    }

    /// The id of the model in use; `None` for the built-in one.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn active_model_id(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM models WHERE active = 1 ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The bytes of model `id`.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when there is no such model.
    pub async fn model_bytes(&self, id: i64) -> Result<Vec<u8>> {
        sqlx::query("SELECT bytes FROM models WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Vec<u8>, _>("bytes"))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("model {id}")))
    }

    /// Puts model `id` in use, or the built-in one for `None`.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when there is no such model.
    pub async fn use_model(&self, id: Option<i64>) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        if let Some(id) = id {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM models WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::NotFound(format!("model {id}")));
            }
        }
        sqlx::query("UPDATE models SET active = CASE WHEN id = $1 THEN 1 ELSE 0 END")
            .bind(id.unwrap_or(-1))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many tickets carry an agent's correction of their category,
    /// chargeable reason or priority: what a new model would learn from.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn corrected_ticket_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(DISTINCT ticket_number) FROM corrections \
             WHERE field IN ('category', 'chargeable_reason', 'priority')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// The corrections count of the newest stored model (0 with none): a
    /// daemon retrains when the desk has made enough corrections since.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn corrections_of_newest_model(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT corrections FROM models ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }
}
