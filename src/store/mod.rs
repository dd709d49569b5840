//! One store interface over two databases: SQLite (the embedded default) and
//! PostgreSQL (for several machines), chosen by the URL scheme.
//!
//! The SQL is shared (`$1` placeholders work on both through sqlx's `Any`
//! driver); what differs per backend lives in [`sqlite`] and [`postgres`]:
//! connecting, migrations, and locking. Everything a message changes (ticket,
//! thread, intake record, queued reply) is written in one [`Tx`], so a crash
//! leaves either all of it or none of it.
//!
//! One room per concern, each an `impl Store` (and `impl Tx`) block:
//! `registry` customers and persons, `intake` inbound messages and
//! sender facts, `tickets` tickets and threads, `leases` mailbox leases,
//! `outbox` queued replies, `agents` the workspace's agents, sessions and
//! tokens, `workspace` its queues, changes and audit trail, `drafts`
//! agents' drafts and replies held for undo, `merges` merged tickets,
//! `oauth` stored refresh tokens. `Store`, `Tx`, connecting and the error
//! type stay here.

mod agents;
mod drafts;
mod intake;
mod leases;
mod live;
mod merges;
mod models;
mod oauth;
mod outbox;
pub mod postgres;
mod registry;
mod search;
mod sla;
pub mod sqlite;
mod tickets;
mod webhooks;
mod workspace;

pub use agents::{Agent, AgentAdded, SessionAgent};
pub use drafts::{Draft, DraftKind, HeldReply, UndoSendError};
pub use intake::{IntakeRecord, IntakeView};
pub use live::{LiveEvent, Signals, Viewer};
pub use merges::{MergeError, MergeRecord, MergeState, Merged};
pub use models::{NewModel, StoredModel};
pub use outbox::{NewOutboxEntry, OutboxEntry};
pub use registry::{HeldTicket, ImportSummary};
pub use sla::SlaView;
pub use tickets::{
    CorrectedTicket, ThreadEntry, ThreadMessage, TicketChange, TicketFilter, TicketView,
};
pub use webhooks::{AuditEvent, WebhookDelivery};
pub use workspace::{
    AttachmentInfo, QueueCounts, ReplyTarget, SavedReply, TicketEvent, TicketQuery, View,
};

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::AnyPool;
use sqlx::{Any, Transaction};

/// A database failure, sorted by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or is busy; try again later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A constraint refused the write (e.g. a Message-ID seen concurrently).
    #[error("conflicting write: {0}")]
    Conflict(#[source] sqlx::Error),
    #[error("not found: {0}")]
    NotFound(String),
    /// The change cannot be made as things stand (e.g. the ticket was
    /// merged into another one); the text says why and what to do.
    #[error("{0}")]
    Refused(String),
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is not one the desk knows (written by hand, or by a
    /// newer version).
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e),
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    StoreError::Conflict(e)
                } else if db.message().contains("database is locked")
                    || db.message().contains("database is busy")
                {
                    StoreError::Unavailable(e)
                } else {
                    StoreError::Other(e)
                }
            }
            _ => StoreError::Other(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store: a connection pool and which backend it talks to.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite takes one writer at a time. Writers of this process queue
    /// here instead of in SQLite's busy handler, which polls with sleeps of
    /// up to 100 ms and so leaves the database idle while writers wait.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Writers waiting for their turn that should not wait long: recording
    /// that the SMTP server accepted a reply (until then, a crash would send
    /// it again).
    urgent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The SLA policy due times are computed with (`[sla]`); set from the
    /// configuration at start and on reload, shared by every clone.
    sla: std::sync::Arc<std::sync::RwLock<std::sync::Arc<crate::sla::Policy>>>,
    /// Rung after a commit that wrote audit events or presence, for the
    /// live updates of this process (see [`crate::live`]).
    signals: std::sync::Arc<Signals>,
}

/// A text column as one of the desk's vocabulary values.
fn value<T>(r: &sqlx::any::AnyRow, column: &str) -> Result<T>
where
    T: std::str::FromStr<Err = crate::domain::UnknownValue>,
{
    use sqlx::Row;
    let text: String = r.try_get(column)?;
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// A nullable text column as one of the desk's vocabulary values.
fn opt_value<T>(r: &sqlx::any::AnyRow, column: &str) -> Result<Option<T>>
where
    T: std::str::FromStr<Err = crate::domain::UnknownValue>,
{
    use sqlx::Row;
    let text: Option<String> = r.try_get(column)?;
    text.map(|t| t.parse())
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// The current time as stored: RFC 3339, UTC, milliseconds (sorts as text).
pub fn now() -> String {
    stamp(Utc::now())
}

pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One open transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx {
    tx: Transaction<'static, Any>,
    prefix: String,
    /// The SLA policy as it was when the transaction began.
    sla: std::sync::Arc<crate::sla::Policy>,
    /// This process's write turn (SQLite), held until commit or rollback.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    signals: std::sync::Arc<Signals>,
    /// Set by [`Tx::record_event`]: the commit rings [`Signals`].
    wrote_events: bool,
}

impl Store {
    /// Connects to the database named by `url` and brings its schema up to date.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the database cannot be reached,
    /// [`StoreError::Migrate`] when the schema cannot be migrated.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::open(url, true).await
    }

    /// Connects without changing anything: no migration, and a SQLite file
    /// that does not exist is not created. For `servicedesk doctor`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] (or `Other`) when the database cannot be opened.
    pub async fn connect_to_inspect(url: &str) -> Result<Store> {
        Store::open(url, false).await
    }

    async fn open(url: &str, migrate: bool) -> Result<Store> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            sqlite::connect(url, migrate).await
        } else {
            postgres::connect(url, migrate).await
        }
    }

    /// The built-in migrations of this store's backend.
    pub fn migrator(&self) -> sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => sqlite::migrator(),
            Backend::Postgres => postgres::migrator(),
        }
    }

    /// The built-in migrations not yet applied to this database, as
    /// `0009 ticketless replies index`; all of them for an empty database.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn pending_migrations(&self) -> Result<Vec<String>> {
        let migrator = self.migrator();
        // No table yet: nothing applied.
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
        Ok(migrator
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .map(|m| format!("{:04} {}", m.version, m.description))
            .collect())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction; `prefix` numbers the tickets it creates.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached.
    pub async fn begin(&self, prefix: &str) -> Result<Tx> {
        let turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Sqlite {
            // Take the write lock now rather than failing half-way on upgrade.
            sqlx::query("UPDATE outbox SET id = id WHERE 0")
                .execute(&mut *tx)
                .await?;
        }
        Ok(Tx {
            tx,
            sla: self.sla_policy(),
            prefix: prefix.to_string(),
            _turn: turn,
            signals: self.signals.clone(),
            wrote_events: false,
        })
    }

    /// True while an urgent write waits for its turn: a long transaction
    /// should commit what it has and let it through.
    pub fn urgent_write_waiting(&self) -> bool {
        self.urgent.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    /// Waits for this process's turn to write (SQLite only).
    async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }
}

impl Tx {
    /// Makes everything in this transaction durable at once.
    ///
    /// # Errors
    ///
    /// On database failure; nothing was written then.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        if self.wrote_events {
            self.signals.events_written();
        }
        Ok(())
    }
}
