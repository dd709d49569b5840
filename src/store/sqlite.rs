//! SQLite specifics: creating the file and its folder, WAL mode, migrations.

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::Executor;

use super::{Backend, Result, Store};

/// The migrations of this backend, built into the binary.
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("migrations/sqlite")
}

/// The database file a `sqlite:` URL names; `None` for another scheme or
/// an in-memory database.
pub fn file_of(url: &str) -> Option<&std::path::Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| std::path::Path::new(path))
}

/// Opens (creating if needed) the SQLite database at `url` and, when
/// `migrate` is set, brings its schema up to date. Without `migrate` the
/// file must exist and nothing is changed in it.
///
/// # Errors
///
/// When the file or its folder cannot be created or the schema migrated.
pub async fn connect(url: &str, migrate: bool) -> Result<Store> {
    if let Some(file) = file_of(url).filter(|_| migrate) {
        if let Some(dir) = file.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| super::StoreError::Other(e.into()))?;
            }
        }
    }
    let url = match (url.contains('?'), migrate) {
        (true, _) => url.to_string(),
        (false, true) => format!("{url}?mode=rwc"),
        (false, false) => format!("{url}?mode=rw"),
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
    if migrate {
        migrator().run(&pool).await?;
    }
    let store = Store {
        pool,
        backend: Backend::Sqlite,
        writer: Default::default(),
        urgent: Default::default(),
        sla: Default::default(),
        signals: Default::default(),
    };
    if migrate {
        // The stems of messages that came before the search index (0017).
        let n = store.restem_pending().await?;
        if n > 0 {
            tracing::info!(messages = n, "search index: word stems added");
        }
    }
    Ok(store)
}
