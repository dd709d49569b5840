//! Customers and reference persons: CSV imports and the registry snapshot
//! triage reads.

use sqlx::Row;

use super::{Result, Store};
use crate::domain::{ContractStatus, Language, Role};
use crate::registry::{Customer, Person, Registry};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
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
                p.language.as_str().to_string(),
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
                .bind(p.language.as_str())
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
}
