//! PostgreSQL specifics: connecting and migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use super::{Backend, Result, Store};

/// The migrations of this backend, built into the binary.
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("migrations/postgres")
}

/// Connects to the PostgreSQL database at `url` and, when `migrate` is
/// set, brings its schema up to date.
///
/// # Errors
///
/// When the server cannot be reached or the schema migrated.
pub async fn connect(url: &str, migrate: bool) -> Result<Store> {
    let options = AnyConnectOptions::from_str(url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    if migrate {
        migrator().run(&pool).await?;
    }
    Ok(Store {
        pool,
        backend: Backend::Postgres,
        writer: Default::default(),
        urgent: Default::default(),
        sla: Default::default(),
        signals: Default::default(),
    })
}
