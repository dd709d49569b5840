//! PostgreSQL specifics: connecting and migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use super::{Backend, Result, Store};

/// Connects to the PostgreSQL database at `url` and migrates it.
///
/// # Errors
///
/// When the server cannot be reached or the schema migrated.
pub async fn connect(url: &str) -> Result<Store> {
    let options = AnyConnectOptions::from_str(url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    Ok(Store {
        pool,
        backend: Backend::Postgres,
        writer: Default::default(),
        urgent: Default::default(),
    })
}
