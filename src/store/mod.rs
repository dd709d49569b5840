//! One store interface over two databases: SQLite (the embedded default) and
//! PostgreSQL (for several machines), chosen by the URL scheme.
//!
//! The SQL is shared (`$1` placeholders work on both through sqlx's `Any`
//! driver); what differs per backend lives in [`sqlite`] and [`postgres`]:
//! connecting, migrations, and locking. Everything a message changes (ticket,
//! thread, intake record, queued reply) is written in one [`Tx`], so a crash
//! leaves either all of it or none of it.

pub mod postgres;
pub mod sqlite;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyPool;
use sqlx::{Any, Row, Transaction};

use crate::registry::{ContractStatus, Customer, Person, Registry, Role};
use crate::triage::{Followup, Language, NewTicket, SenderHistory, TicketRef, TicketStatus};

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
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
}

/// The current time as stored: RFC 3339, UTC, milliseconds (sorts as text).
pub fn now() -> String {
    stamp(Utc::now())
}

pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How an inbound message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ticket,
    Followup,
    Unregistered,
    Suppressed,
    Duplicate,
    Quarantined,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ticket => "ticket",
            Outcome::Followup => "followup",
            Outcome::Unregistered => "unregistered",
            Outcome::Suppressed => "suppressed",
            Outcome::Duplicate => "duplicate",
            Outcome::Quarantined => "quarantined",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Ticket,
            Outcome::Followup,
            Outcome::Unregistered,
            Outcome::Suppressed,
            Outcome::Duplicate,
            Outcome::Quarantined,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// An intake record to write.
#[derive(Debug, Clone)]
pub struct IntakeRecord<'a> {
    pub message_id: &'a str,
    pub from: &'a str,
    pub subject: &'a str,
    pub outcome: Outcome,
    pub ticket: Option<&'a str>,
    pub detail: &'a str,
    pub source: &'a str,
    pub source_key: Option<&'a str>,
    /// Raw bytes, kept for quarantined messages only.
    pub raw: Option<&'a [u8]>,
}

/// A message on a ticket's thread.
#[derive(Debug, Clone)]
pub struct ThreadMessage<'a> {
    pub direction: &'a str,
    pub message_id: &'a str,
    pub from: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// From someone who is not a registered person of the ticket's customer.
    pub outsider: bool,
}

/// A reply to queue.
#[derive(Debug, Clone)]
pub struct NewOutboxEntry<'a> {
    pub ticket: Option<&'a str>,
    pub notice: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: &'a str,
    pub envelope_from: &'a str,
    pub recipient: &'a str,
    pub raw: &'a [u8],
}

/// A queued reply, as the outbox sender sees it.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub ticket: Option<String>,
    pub notice: String,
    pub message_id: String,
    pub in_reply_to: String,
    pub envelope_from: String,
    pub recipient: String,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// A ticket as agents and `tickets list --json` see it.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub number: String,
    pub category: String,
    pub chargeable: bool,
    pub chargeable_reason: Option<String>,
    pub status: String,
    pub customer: String,
    pub campus: Option<String>,
    pub charge_approved: Option<bool>,
    pub sender: String,
    pub sender_name: String,
    pub subject: String,
    pub language: String,
    pub message_ids: Vec<String>,
    /// Why an agent must look at this ticket (null when nothing is wrong).
    pub attention: Option<String>,
    /// The closed ticket this one continues.
    pub related_ticket: Option<String>,
    /// The customer's words the charge decision was based on.
    pub charge_decision: Option<String>,
    /// Who decided on the charge (a registered person of the customer).
    pub charge_decided_by: Option<String>,
    /// The Message-ID of the mail that decided it.
    pub charge_decided_message: Option<String>,
    pub evidence: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

/// One message of a ticket's thread, for `tickets show`.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadEntry {
    pub direction: String,
    pub message_id: String,
    pub from: String,
    pub subject: String,
    pub body: String,
    pub created_at: String,
    /// From someone who is not a registered person of the ticket's
    /// customer: it decided nothing.
    pub outsider: bool,
}

/// An intake record as `intake list --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IntakeView {
    pub message_id: String,
    pub from: String,
    pub subject: String,
    pub outcome: String,
    pub ticket: Option<String>,
    pub detail: String,
    pub source: String,
    pub received_at: String,
}

/// Filters of `tickets list`.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub category: Option<String>,
    pub status: Option<String>,
}

/// An agent's change to a ticket; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TicketChange {
    pub category: Option<String>,
    /// `Some(None)` clears the chargeable reason.
    pub chargeable_reason: Option<Option<String>>,
    pub status: Option<String>,
}

/// A ticket an agent corrected, as a training example.
#[derive(Debug, Clone)]
pub struct CorrectedTicket {
    pub category: String,
    pub chargeable_reason: Option<String>,
    pub subject: String,
    pub body: String,
}

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// One open transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx {
    tx: Transaction<'static, Any>,
    prefix: String,
    /// This process's write turn (SQLite), held until commit or rollback.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Store {
    /// Connects to the database named by `url` and brings its schema up to date.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the database cannot be reached,
    /// [`StoreError::Migrate`] when the schema cannot be migrated.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            sqlite::connect(url).await
        } else {
            postgres::connect(url).await
        }
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
            prefix: prefix.to_string(),
            _turn: turn,
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

    // ------------------------------------------------------------ registry

    /// Writes customers; re-importing the same rows changes nothing.
    ///
    /// # Errors
    ///
    /// On database failure; nothing is written then.
    pub async fn import_customers(&self, customers: &[Customer]) -> Result<ImportSummary> {
        let mut tx = self.pool.begin().await?;
        let mut sum = ImportSummary::default();
        for c in customers {
            let key = c.name.to_lowercase();
            let campuses = c.campuses.join(";");
            let existing: Option<(String, String, String)> =
                sqlx::query("SELECT name, contract_status, campuses FROM customers WHERE key = $1")
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| (r.get(0), r.get(1), r.get(2)));
            let wanted = (
                c.name.clone(),
                c.status.as_str().to_string(),
                campuses.clone(),
            );
            match existing {
                Some(e) if e == wanted => sum.unchanged += 1,
                Some(_) => {
                    sqlx::query(
                        "UPDATE customers SET name = $2, contract_status = $3, campuses = $4 WHERE key = $1",
                    )
                    .bind(&key)
                    .bind(&c.name)
                    .bind(c.status.as_str())
                    .bind(&campuses)
                    .execute(&mut *tx)
                    .await?;
                    sum.updated += 1;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO customers (key, name, contract_status, campuses) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&key)
                    .bind(&c.name)
                    .bind(c.status.as_str())
                    .bind(&campuses)
                    .execute(&mut *tx)
                    .await?;
                    sum.added += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(sum)
    }

    /// Writes reference persons; re-importing the same rows changes nothing.
    ///
    /// # Errors
    ///
    /// On database failure; nothing is written then.
    pub async fn import_persons(&self, persons: &[Person]) -> Result<ImportSummary> {
        let mut tx = self.pool.begin().await?;
        let mut sum = ImportSummary::default();
        for p in persons {
            let key = p.customer.to_lowercase();
            let wanted = (
                p.name.clone(),
                key.clone(),
                p.campus.clone(),
                p.role.as_str().to_string(),
                p.language.code().to_string(),
            );
            let existing = sqlx::query(
                "SELECT name, customer_key, campus, role, language FROM persons WHERE email = $1",
            )
            .bind(&p.email)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| {
                (
                    r.get::<String, _>(0),
                    r.get::<String, _>(1),
                    r.get::<Option<String>, _>(2),
                    r.get::<String, _>(3),
                    r.get::<String, _>(4),
                )
            });
            let sql = match existing {
                Some(e) if e == wanted => {
                    sum.unchanged += 1;
                    continue;
                }
                Some(_) => {
                    sum.updated += 1;
                    "UPDATE persons SET name = $2, customer_key = $3, campus = $4, role = $5, language = $6 WHERE email = $1"
                }
                None => {
                    sum.added += 1;
                    "INSERT INTO persons (email, name, customer_key, campus, role, language) VALUES ($1, $2, $3, $4, $5, $6)"
                }
            };
            sqlx::query(sql)
                .bind(&p.email)
                .bind(&p.name)
                .bind(&key)
                .bind(p.campus.clone())
                .bind(p.role.as_str())
                .bind(p.language.code())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(sum)
    }

    /// The whole registry, for triage.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn registry(&self) -> Result<Registry> {
        let customers = sqlx::query("SELECT name, contract_status, campuses FROM customers")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| Customer {
                name: r.get(0),
                status: ContractStatus::parse(&r.get::<String, _>(1))
                    .unwrap_or(ContractStatus::Active),
                campuses: r
                    .get::<String, _>(2)
                    .split(';')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
            .collect();
        let persons = sqlx::query(
            "SELECT p.email, p.name, c.name, p.campus, p.role, p.language \
             FROM persons p JOIN customers c ON c.key = p.customer_key",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| Person {
            email: r.get(0),
            name: r.get(1),
            customer: r.get(2),
            campus: r.get(3),
            role: Role::parse(&r.get::<String, _>(4)).unwrap_or(Role::Campus),
            language: Language::parse(&r.get::<String, _>(5)).unwrap_or(Language::Nl),
        })
        .collect();
        Ok(Registry::new(customers, persons))
    }

    // -------------------------------------------------------------- intake

    /// Flagged addresses: (address, reason, detail, since).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn address_flags(&self) -> Result<Vec<(String, String, String, String)>> {
        Ok(sqlx::query(
            "SELECT address, reason, detail, created_at FROM address_flags ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
    }

    /// Intake records, newest last.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn intake(&self) -> Result<Vec<IntakeView>> {
        let rows = sqlx::query(
            "SELECT message_id, from_addr, subject, outcome, ticket_number, detail, source, received_at \
             FROM intake ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| IntakeView {
                message_id: r.get(0),
                from: r.get(1),
                subject: r.get(2),
                outcome: r.get(3),
                ticket: r.get(4),
                detail: r.get(5),
                source: r.get(6),
                received_at: r.get(7),
            })
            .collect())
    }

    // ------------------------------------------------------------- tickets

    /// Tickets, pre-sorted: by category, then status, then number.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketView>> {
        let rows = sqlx::query(
            "SELECT id, number, category, chargeable_reason, status, customer, campus, charge_approved, \
                    sender, sender_name, subject, language, evidence, created_at, updated_at, \
                    attention, related_ticket, charge_decision, charge_decided_by, charge_decided_message \
             FROM tickets \
             WHERE ($1 = '' OR category = $1) AND ($2 = '' OR status = $2) \
             ORDER BY category, status, id",
        )
        .bind(filter.category.clone().unwrap_or_default())
        .bind(filter.status.clone().unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        let ids = sqlx::query(
            "SELECT ticket_id, message_id FROM messages WHERE direction = 'in' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_ticket: std::collections::HashMap<i64, Vec<String>> =
            std::collections::HashMap::new();
        for r in ids {
            by_ticket.entry(r.get(0)).or_default().push(r.get(1));
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                ticket_view(
                    &r,
                    by_ticket.remove(&r.get::<i64, _>(0)).unwrap_or_default(),
                )
            })
            .collect())
    }

    /// One ticket with its thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no ticket has that number.
    pub async fn ticket(&self, number: &str) -> Result<(TicketView, Vec<ThreadEntry>)> {
        let row = sqlx::query(
            "SELECT id, number, category, chargeable_reason, status, customer, campus, charge_approved, \
                    sender, sender_name, subject, language, evidence, created_at, updated_at, \
                    attention, related_ticket, charge_decision, charge_decided_by, charge_decided_message \
             FROM tickets WHERE number = $1",
        )
        .bind(number.trim().to_ascii_uppercase())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
        let id: i64 = row.get(0);
        let thread: Vec<ThreadEntry> = sqlx::query(
            "SELECT direction, message_id, from_addr, subject, body, created_at, outsider \
             FROM messages WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| ThreadEntry {
            direction: r.get(0),
            message_id: r.get(1),
            from: r.get(2),
            subject: r.get(3),
            body: r.get(4),
            created_at: r.get(5),
            outsider: r.get::<i64, _>(6) != 0,
        })
        .collect();
        let ids = thread
            .iter()
            .filter(|m| m.direction == "in")
            .map(|m| m.message_id.clone())
            .collect();
        Ok((ticket_view(&row, ids), thread))
    }

    /// Applies an agent's change and records each changed field as a correction.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no ticket has that number.
    pub async fn set_ticket(
        &self,
        number: &str,
        change: &TicketChange,
    ) -> Result<Vec<(String, Option<String>, Option<String>)>> {
        let number = number.trim().to_ascii_uppercase();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT category, chargeable_reason, status FROM tickets WHERE number = $1",
        )
        .bind(&number)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
        let old: [Option<String>; 3] = [Some(row.get(0)), row.get(1), Some(row.get(2))];
        let new = [
            change.category.clone().or_else(|| old[0].clone()),
            change
                .chargeable_reason
                .clone()
                .unwrap_or_else(|| old[1].clone()),
            change.status.clone().or_else(|| old[2].clone()),
        ];
        let at = now();
        let mut changed = Vec::new();
        for (i, field) in ["category", "chargeable_reason", "status"]
            .iter()
            .enumerate()
        {
            if old[i] != new[i] {
                sqlx::query(
                    "INSERT INTO corrections (ticket_number, field, old_value, new_value, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&number)
                .bind(*field)
                .bind(old[i].clone())
                .bind(new[i].clone())
                .bind(&at)
                .execute(&mut *tx)
                .await?;
                changed.push((field.to_string(), old[i].clone(), new[i].clone()));
            }
        }
        if !changed.is_empty() {
            sqlx::query(
                "UPDATE tickets SET category = $2, chargeable_reason = $3, status = $4, updated_at = $5 WHERE number = $1",
            )
            .bind(&number)
            .bind(new[0].clone())
            .bind(new[1].clone())
            .bind(new[2].clone())
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Tickets an agent corrected, with their current (corrected) sorting
    /// and first inbound message: training examples.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn corrected_tickets(&self) -> Result<Vec<CorrectedTicket>> {
        let rows = sqlx::query(
            "SELECT t.category, t.chargeable_reason, m.subject, m.body FROM tickets t \
             JOIN messages m ON m.id = (SELECT MIN(id) FROM messages WHERE ticket_id = t.id AND direction = 'in') \
             WHERE t.number IN (SELECT ticket_number FROM corrections WHERE field IN ('category', 'chargeable_reason'))",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CorrectedTicket {
                category: r.get(0),
                chargeable_reason: r.get(1),
                subject: r.get(2),
                body: r.get(3),
            })
            .collect())
    }

    // -------------------------------------------------------------- leases

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

    // -------------------------------------------------------------- outbox

    /// Claims up to `limit` pending replies that are due at `now` and not
    /// claimed by another sender, until `until`; returns them, longest due first.
    /// Two senders never get the same reply while its claim lasts.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn claim_due(
        &self,
        holder: &str,
        now: &str,
        until: &str,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>> {
        let _turn = self.write_turn().await;
        // PostgreSQL: concurrent senders skip each other's rows instead of
        // waiting for them. SQLite has one writer at a time anyway.
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // The locked rows are checked again after the lock (PostgreSQL) or
        // cannot change meanwhile (SQLite), so the outer update need not.
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET claimed_until = $2, claimed_by = $4 WHERE id IN \
             (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
              AND (claimed_until IS NULL OR claimed_until < $1) \
              ORDER BY next_attempt_at, id LIMIT $3{skip_locked}) \
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(now)
        .bind(until)
        .bind(limit)
        .bind(holder)
        .fetch_all(&self.pool)
        .await?;
        let mut due: Vec<OutboxEntry> = rows.iter().map(outbox_entry).collect();
        due.sort_by_key(|e| e.id);
        Ok(due)
    }

    /// The processes holding claims on pending replies now.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn claim_holders(&self, now: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT claimed_by FROM outbox WHERE status = 'pending' \
             AND claimed_until >= $1 AND claimed_by IS NOT NULL",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Gives up every claim `holder` has: its replies are due again at once.
    /// For a holder known to be dead, whose sends will never be recorded.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn release_claims(&self, holder: &str) -> Result<u64> {
        let _turn = self.write_turn().await;
        Ok(sqlx::query(
            "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL \
             WHERE claimed_by = $1 AND status = 'pending'",
        )
        .bind(holder)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Every queued reply, newest last.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        let rows = sqlx::query(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(outbox_entry).collect())
    }

    /// When the next pending reply can be claimed, if any is pending: when
    /// its attempt is due, or, while another sender holds it, when that
    /// claim runs out (by then it is sent, or free again).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn next_due(&self) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(CASE WHEN claimed_until > next_attempt_at THEN claimed_until \
                             ELSE next_attempt_at END) \
             FROM outbox WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// How many replies wait to be sent.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn pending_replies(&self) -> Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Records that the server accepted these replies, all in one write.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn mark_sent(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.urgent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _turn = self.write_turn().await;
        self.urgent
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let placeholders: Vec<String> = (2..ids.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "UPDATE outbox SET status = 'sent', sent_at = $1, last_error = NULL, claimed_until = NULL, claimed_by = NULL \
             WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(now());
        for id in ids {
            q = q.bind(id);
        }
        q.execute(&self.pool).await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `next_attempt_at`, or given up on.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn mark_attempt(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Option<&str>,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let (status, next) = match next_attempt_at {
            Some(at) => ("pending", at.to_string()),
            None => ("failed", now()),
        };
        sqlx::query(
            "UPDATE outbox SET status = $2, attempts = attempts + 1, last_error = $3, next_attempt_at = $4, \
             claimed_until = NULL, claimed_by = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(next)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Puts a failed reply back in the queue.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no failed reply has that id.
    pub async fn retry_reply(&self, id: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2 \
             WHERE id = $1 AND status = 'failed'",
        )
        .bind(id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("failed reply {id}")));
        }
        Ok(())
    }
}

const OUTBOX_COLUMNS: &str =
    "id, ticket_number, notice, message_id, in_reply_to, envelope_from, recipient, raw, \
     status, attempts, next_attempt_at, last_error, created_at, sent_at";

fn outbox_entry(r: &AnyRow) -> OutboxEntry {
    OutboxEntry {
        id: r.get(0),
        ticket: r.get(1),
        notice: r.get(2),
        message_id: r.get(3),
        in_reply_to: r.get(4),
        envelope_from: r.get(5),
        recipient: r.get(6),
        raw: r.get(7),
        status: r.get(8),
        attempts: r.get(9),
        next_attempt_at: r.get(10),
        last_error: r.get(11),
        created_at: r.get(12),
        sent_at: r.get(13),
    }
}

fn ticket_ref(r: &AnyRow) -> TicketRef {
    TicketRef {
        number: r.get(0),
        customer: r.get(1),
        status: TicketStatus::parse(&r.get::<String, _>(2)).unwrap_or(TicketStatus::Open),
        updated_at: DateTime::parse_from_rfc3339(&r.get::<String, _>(3))
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
    }
}

fn ticket_view(r: &AnyRow, message_ids: Vec<String>) -> TicketView {
    let reason: Option<String> = r.get(3);
    TicketView {
        number: r.get(1),
        category: r.get(2),
        chargeable: reason.is_some(),
        chargeable_reason: reason,
        status: r.get(4),
        customer: r.get(5),
        campus: r.get(6),
        charge_approved: r.get::<Option<i64>, _>(7).map(|v| v != 0),
        sender: r.get(8),
        sender_name: r.get(9),
        subject: r.get(10),
        language: r.get(11),
        message_ids,
        attention: r.get(15),
        related_ticket: r.get(16),
        charge_decision: r.get(17),
        charge_decided_by: r.get("charge_decided_by"),
        charge_decided_message: r.get("charge_decided_message"),
        evidence: serde_json::from_str(&r.get::<String, _>(12)).unwrap_or_default(),
        created_at: r.get(13),
        updated_at: r.get(14),
    }
}

impl Tx {
    /// What was recorded for the message at this source position, if it was
    /// (a restart after the commit but before the move).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn source_outcome(
        &mut self,
        source_key: &str,
    ) -> Result<Option<(Outcome, Option<String>)>> {
        let row = sqlx::query("SELECT outcome, ticket_number FROM intake WHERE source_key = $1")
            .bind(source_key)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.and_then(|r| Some((Outcome::parse(&r.get::<String, _>(0))?, r.get(1)))))
    }

    /// The ticket (if any) of the first sighting of this Message-ID.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn first_sighting(&mut self, message_id: &str) -> Result<Option<Option<String>>> {
        let row = sqlx::query(
            "SELECT ticket_number FROM intake WHERE message_id = $1 \
             AND outcome IN ('ticket', 'followup', 'unregistered', 'suppressed')",
        )
        .bind(message_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| r.get::<Option<String>, _>(0)))
    }

    /// The newest ticket whose thread holds one of these Message-IDs.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_for_messages(&mut self, ids: &[String]) -> Result<Option<TicketRef>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let ids = &ids[ids.len().saturating_sub(50)..];
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT t.number, t.customer, t.status, t.updated_at FROM messages m \
             JOIN tickets t ON t.id = m.ticket_id WHERE m.message_id IN ({}) ORDER BY t.id DESC LIMIT 1",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        Ok(q.fetch_optional(&mut *self.tx)
            .await?
            .map(|r| ticket_ref(&r)))
    }

    /// True when one of these Message-IDs is a reply of ours that opened no
    /// ticket (an explanation to an unregistered sender, a size notice).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn is_ticketless_reply(&mut self, ids: &[String]) -> Result<bool> {
        if ids.is_empty() {
            return Ok(false);
        }
        let ids = &ids[ids.len().saturating_sub(50)..];
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT COUNT(*) FROM outbox WHERE ticket_number IS NULL AND message_id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for id in ids {
            q = q.bind(id);
        }
        Ok(q.fetch_one(&mut *self.tx).await? > 0)
    }

    /// The ticket with this number, as triage sees it.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_ref(&mut self, number: &str) -> Result<Option<TicketRef>> {
        Ok(sqlx::query(
            "SELECT number, customer, status, updated_at FROM tickets WHERE number = $1",
        )
        .bind(number)
        .fetch_optional(&mut *self.tx)
        .await?
        .map(|r| ticket_ref(&r)))
    }

    /// How many no-ticket replies went to `address` since `day_ago`, and how
    /// many tickets it opened since `window_start`.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn sender_history(
        &mut self,
        address: &str,
        day_ago: &str,
        window_start: &str,
    ) -> Result<SenderHistory> {
        let address = address.trim().to_lowercase();
        let replies: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE LOWER(recipient) = $1 AND ticket_number IS NULL AND created_at >= $2",
        )
        .bind(&address)
        .bind(day_ago)
        .fetch_one(&mut *self.tx)
        .await?;
        let tickets: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE sender = $1 AND created_at >= $2",
        )
        .bind(&address)
        .bind(window_start)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(SenderHistory {
            no_ticket_replies_24h: u32::try_from(replies).unwrap_or(u32::MAX),
            recent_tickets: u32::try_from(tickets).unwrap_or(u32::MAX),
        })
    }

    /// Replies that opened no ticket (explanations, size notices) queued
    /// since `since`, to anyone.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticketless_replies_since(&mut self, since: &str) -> Result<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE ticket_number IS NULL AND created_at >= $1",
        )
        .bind(since)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Creates a ticket and returns its number.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn insert_ticket(&mut self, t: &NewTicket, subject: &str) -> Result<(i64, String)> {
        let at = now();
        let evidence = serde_json::to_string(&t.evidence).unwrap_or_else(|_| "{}".into());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tickets (category, chargeable_reason, status, customer, campus, sender, sender_name, \
                                  subject, language, evidence, created_at, updated_at, related_ticket, attention) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13) RETURNING id",
        )
        .bind(t.category.as_str())
        .bind(t.chargeable.map(|r| r.as_str()))
        .bind(t.status.as_str())
        .bind(&t.customer)
        .bind(t.campus.clone())
        .bind(&t.sender)
        .bind(&t.sender_name)
        .bind(subject)
        .bind(t.language.code())
        .bind(evidence)
        .bind(at)
        .bind(t.related.clone())
        .bind(t.attention.clone())
        .fetch_one(&mut *self.tx)
        .await?;
        let number = format!("{}-{id:06}", self.prefix);
        sqlx::query("UPDATE tickets SET number = $2 WHERE id = $1")
            .bind(id)
            .bind(&number)
            .execute(&mut *self.tx)
            .await?;
        Ok((id, number))
    }

    /// Applies a follow-up to its ticket and returns the ticket's id. A
    /// charge decision is recorded with who made it (`from`) and with which
    /// message (`message_id`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the ticket is gone.
    pub async fn apply_followup(
        &mut self,
        f: &Followup,
        from: &str,
        message_id: &str,
    ) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM tickets WHERE number = $1")
            .bind(&f.ticket)
            .fetch_optional(&mut *self.tx)
            .await?;
        let id = id.ok_or_else(|| StoreError::NotFound(format!("ticket {}", f.ticket)))?;
        sqlx::query(
            "UPDATE tickets SET updated_at = $2, \
                 status = COALESCE($3, status), \
                 charge_approved = COALESCE($4, charge_approved), \
                 charge_decision = COALESCE($5, charge_decision), \
                 attention = COALESCE($6, attention), \
                 charge_decided_by = COALESCE($7, charge_decided_by), \
                 charge_decided_message = COALESCE($8, charge_decided_message) \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now())
        .bind(f.set_status.map(|s| s.as_str()))
        .bind(f.charge_approved.map(i64::from))
        .bind(f.charge_words.clone())
        .bind(f.attention.clone())
        .bind(f.charge_approved.map(|_| from.trim().to_lowercase()))
        .bind(f.charge_approved.map(|_| message_id))
        .execute(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// The ticket id of a number, inside this transaction.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn ticket_id(&mut self, number: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM tickets WHERE number = $1")
                .bind(number)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    /// Marks an address for agents (bounced, loop breaker); once per reason.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn flag_address(&mut self, address: &str, reason: &str, detail: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO address_flags (address, reason, detail, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (address, reason) DO UPDATE SET detail = excluded.detail",
        )
        .bind(address.trim().to_lowercase())
        .bind(reason)
        .bind(detail)
        .bind(now())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Adds a message to a ticket's thread.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn add_message(&mut self, ticket_id: i64, m: &ThreadMessage<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO messages (ticket_id, direction, message_id, from_addr, subject, body, created_at, outsider) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(ticket_id)
        .bind(m.direction)
        .bind(m.message_id)
        .bind(m.from)
        .bind(m.subject)
        .bind(m.body)
        .bind(now())
        .bind(i64::from(m.outsider))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records what became of an inbound message.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when this Message-ID was already recorded as
    /// a first sighting, or this source position already recorded.
    pub async fn record_intake(&mut self, r: &IntakeRecord<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO intake (message_id, from_addr, subject, outcome, ticket_number, detail, source, \
                                 source_key, raw, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.message_id)
        .bind(r.from)
        .bind(r.subject)
        .bind(r.outcome.as_str())
        .bind(r.ticket)
        .bind(r.detail)
        .bind(r.source)
        .bind(r.source_key)
        .bind(r.raw.map(|b| b.to_vec()))
        .bind(now())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Queues a reply for the outbox sender.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn queue_reply(&mut self, e: &NewOutboxEntry<'_>) -> Result<()> {
        let at = now();
        sqlx::query(
            "INSERT INTO outbox (ticket_number, notice, message_id, in_reply_to, envelope_from, recipient, raw, \
                                 status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
        )
        .bind(e.ticket)
        .bind(e.notice)
        .bind(e.message_id)
        .bind(e.in_reply_to)
        .bind(e.envelope_from)
        .bind(e.recipient)
        .bind(e.raw.to_vec())
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Makes everything in this transaction durable at once.
    ///
    /// # Errors
    ///
    /// On database failure; nothing was written then.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
