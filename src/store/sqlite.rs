//! SQLite specifics: creating the file and its folder, WAL mode, migrations.

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::Executor;

use super::{Backend, Result, Store};

/// Opens (creating if needed) the SQLite database at `url` and migrates it.
///
/// # Errors
///
/// When the file or its folder cannot be created or the schema migrated.
pub async fn connect(url: &str) -> Result<Store> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or("");
    if !path.is_empty() && path != ":memory:" {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| super::StoreError::Other(e.into()))?;
            }
        }
    }
    let url = if url.contains('?') {
        url.to_string()
    } else {
        format!("{url}?mode=rwc")
    };
    let options = AnyConnectOptions::from_str(&url)?;
    let pool = AnyPoolOptions::new()
        // One writer at a time, and readers rarely overlap: every connection
        // more costs a worker thread, its page cache and its statements.
        .max_connections(3)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // Waiting for a lock beats failing: several writers are short-lived.
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    // WAL lets readers (agents' CLI) run while the daemon writes; it is a
    // property of the file and survives restarts.
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&pool)
        .await?;
    sqlx::migrate!("migrations/sqlite").run(&pool).await?;
    Ok(Store {
        pool,
        backend: Backend::Sqlite,
        writer: Default::default(),
        urgent: Default::default(),
    })
}
