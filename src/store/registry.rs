//! Customers and reference persons: CSV imports and the registry snapshot
//! triage reads.

use sqlx::Row;

use super::{value, Result, Store, Tx};
use crate::domain::{Category, ContractStatus, Language};
use crate::registry::{Customer, Person, Registry};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Persons no longer registered (`persons import --replace`).
    pub deactivated: usize,
}

impl Store {
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
            let existing: Option<(String, String, String, Option<String>)> = sqlx::query(
                "SELECT name, contract_status, campuses, sla FROM customers WHERE key = $1",
            )
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)));
            let wanted = (
                c.name.clone(),
                c.status.as_str().to_string(),
                campuses.clone(),
                c.sla.clone(),
            );
            match existing {
                Some(e) if e == wanted => sum.unchanged += 1,
                Some(_) => {
                    sqlx::query(
                        "UPDATE customers SET name = $2, contract_status = $3, campuses = $4, sla = $5 WHERE key = $1",
                    )
                    .bind(&key)
                    .bind(&c.name)
                    .bind(c.status.as_str())
                    .bind(&campuses)
                    .bind(c.sla.clone())
                    .execute(&mut *tx)
                    .await?;
                    sum.updated += 1;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO customers (key, name, contract_status, campuses, sla) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&key)
                    .bind(&c.name)
                    .bind(c.status.as_str())
                    .bind(&campuses)
                    .bind(c.sla.clone())
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
    /// With `replace`, the persons of the customers in `persons` who are not
    /// in it are deactivated: kept for the history of their tickets, no
    /// longer registered.
    ///
    /// # Errors
    ///
    /// On database failure; nothing is written then.
    pub async fn import_persons(&self, persons: &[Person], replace: bool) -> Result<ImportSummary> {
        let mut tx = self.pool.begin().await?;
        let mut sum = ImportSummary::default();
        for p in persons {
            let key = p.customer.to_lowercase();
            let wanted = (
                p.name.clone(),
                key.clone(),
                p.campus.clone(),
                p.role.as_str().to_string(),
                p.language.as_str().to_string(),
                1,
            );
            let existing = sqlx::query(
                "SELECT name, customer_key, campus, role, language, active FROM persons WHERE email = $1",
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
                    r.get::<i64, _>(5),
                )
            });
            let sql = match existing {
                Some(e) if e == wanted => {
                    sum.unchanged += 1;
                    continue;
                }
                Some(_) => {
                    sum.updated += 1;
                    "UPDATE persons SET name = $2, customer_key = $3, campus = $4, role = $5, language = $6, active = 1 WHERE email = $1"
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
                .bind(p.language.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if replace {
            let listed: std::collections::BTreeSet<&str> =
                persons.iter().map(|p| p.email.as_str()).collect();
            let customers: std::collections::BTreeSet<String> =
                persons.iter().map(|p| p.customer.to_lowercase()).collect();
            for key in customers {
                let registered: Vec<String> = sqlx::query_scalar(
                    "SELECT email FROM persons WHERE customer_key = $1 AND active = 1",
                )
                .bind(&key)
                .fetch_all(&mut *tx)
                .await?;
                for email in registered.iter().filter(|e| !listed.contains(e.as_str())) {
                    sqlx::query("UPDATE persons SET active = 0 WHERE email = $1")
                        .bind(email)
                        .execute(&mut *tx)
                        .await?;
                    sum.deactivated += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(sum)
    }

    /// Deactivates a reference person: their tickets keep them, but they are
    /// no longer registered. False when no active person has that address.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn remove_person(&self, email: &str) -> Result<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("UPDATE persons SET active = 0 WHERE email = $1 AND active = 1")
            .bind(email.trim().to_lowercase())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every person ever registered, the deactivated ones included, with
    /// whether they are active: for `persons list`.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn persons(&self) -> Result<Vec<(Person, bool)>> {
        let rows = sqlx::query(
            "SELECT p.email, p.name, c.name AS customer, p.campus, p.role, p.language, p.active \
             FROM persons p JOIN customers c ON c.key = p.customer_key ORDER BY c.name, p.email",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((person(r)?, r.try_get::<i64, _>("active")? != 0)))
            .collect()
    }

    /// The whole registry, for triage.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn registry(&self) -> Result<Registry> {
        let customers =
            sqlx::query("SELECT name, contract_status, campuses, sla FROM customers ORDER BY name")
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
                    sla: r.get(3),
                })
                .collect();
        let persons = sqlx::query(
            "SELECT p.email, p.name, c.name AS customer, p.campus, p.role, p.language \
             FROM persons p JOIN customers c ON c.key = p.customer_key \
             WHERE p.active = 1 ORDER BY c.name, p.email",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(person)
        .collect::<Result<Vec<_>>>()?;
        Ok(Registry::new(customers, persons))
    }
}

/// A row of `email, name, customer, campus, role, language`.
fn person(r: &sqlx::any::AnyRow) -> Result<Person> {
    Ok(Person {
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        customer: r.try_get("customer")?,
        campus: r.try_get("campus")?,
        role: value(r, "role")?,
        language: value(r, "language")?,
    })
}

/// A ticket on hold, as resuming it needs it.
#[derive(Debug, Clone)]
pub struct HeldTicket {
    pub id: i64,
    pub number: String,
    pub sender: String,
    pub sender_name: String,
    pub language: Language,
    pub category: Category,
    pub subject: String,
    /// The first inbound message, which the resume notice answers.
    pub first_message_id: String,
}

impl Tx {
    /// Sets a customer's contract status; returns the one it had and the
    /// customer's name as registered, or `None` when no customer has that
    /// name (any case).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn set_contract_status(
        &mut self,
        name: &str,
        status: ContractStatus,
    ) -> Result<Option<(ContractStatus, String)>> {
        let key = name.trim().to_lowercase();
        let Some(row) = sqlx::query("SELECT name, contract_status FROM customers WHERE key = $1")
            .bind(&key)
            .fetch_optional(&mut *self.tx)
            .await?
        else {
            return Ok(None);
        };
        let old: ContractStatus = value(&row, "contract_status")?;
        sqlx::query("UPDATE customers SET contract_status = $2 WHERE key = $1")
            .bind(&key)
            .bind(status.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(Some((old, row.try_get("name")?)))
    }

    /// The tickets on hold of the customer registered as `customer` (tickets
    /// carry the registered name), oldest first.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn held_tickets(&mut self, customer: &str) -> Result<Vec<HeldTicket>> {
        let rows = sqlx::query(
            "SELECT t.id, t.number, t.sender, t.sender_name, t.language, t.category, t.subject, \
                    (SELECT m.message_id FROM messages m WHERE m.ticket_id = t.id AND m.direction = 'in' \
                     ORDER BY m.id LIMIT 1) AS first_message_id \
             FROM tickets t WHERE t.customer = $1 AND t.status = 'on_hold' ORDER BY t.id",
        )
        .bind(customer)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HeldTicket {
                    id: r.try_get("id")?,
                    number: r.try_get("number")?,
                    sender: r.try_get("sender")?,
                    sender_name: r.try_get("sender_name")?,
                    language: value(r, "language")?,
                    category: value(r, "category")?,
                    subject: r.try_get("subject")?,
                    first_message_id: r
                        .try_get::<Option<String>, _>("first_message_id")?
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Puts a ticket on hold back in the queue (`new`).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn resume_ticket(&mut self, id: i64) -> Result<()> {
        sqlx::query("UPDATE tickets SET status = 'new', updated_at = $2 WHERE id = $1 AND status = 'on_hold'")
            .bind(id)
            .bind(super::now())
            .execute(&mut *self.tx)
            .await?;
        self.follow_sla(id).await
    }
}
