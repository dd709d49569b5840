//! Mailbox leases: which servicedesk process works on a mailbox when
//! several share one database.

use super::{Result, Store};

impl Store {
    /// Takes or renews the lease `name` for `holder` until `until`; false
    /// while another holder's lease has not run out.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: &str,
        until: &str,
    ) -> Result<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Who holds the lease `name`, if anyone.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Takes the lease from `old` (a holder known to be dead); false when
    /// someone else changed it in the meantime.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn take_lease(
        &self,
        name: &str,
        old: &str,
        holder: &str,
        until: &str,
    ) -> Result<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE leases SET holder = $3, expires_at = $4 WHERE name = $1 AND holder = $2",
        )
        .bind(name)
        .bind(old)
        .bind(holder)
        .bind(until)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a lease up, so another process need not wait for it to run out.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
