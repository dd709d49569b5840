//! A customer's contract changes: `customers set NAME --status`, or an
//! import that changes it. When a suspended customer becomes active again,
//! its tickets on hold return to the queue (`new`), and the person who
//! wrote each gets one notice that work resumes: status, notice and thread
//! entry in one transaction, the notice sent by the outbox like every reply.

use crate::config::Config;
use crate::domain::{ContractStatus, Notice};
use crate::registry::Customer;
use crate::reply::{Replier, ReplyRequest};
use crate::store::{ImportSummary, Store};

/// Sets `name`'s contract status; returns the numbers of the tickets that
/// resumed.
///
/// # Errors
///
/// When no customer has that name, the templates cannot be loaded or
/// rendered, or the database fails; then nothing changed.
pub async fn set(
    config: &Config,
    store: &Store,
    name: &str,
    status: ContractStatus,
) -> anyhow::Result<Vec<String>> {
    let replier = Replier::new(
        &config.reply_from(),
        &config.support.desk_name,
        &config.support.address,
        config.support.templates_dir.as_deref(),
    )?;
    set_by(&replier, store, name, status, "cli").await
}

/// [`set`] with the desk's replier, by `actor` (`cli`, `agent:<address>`):
/// the one path every contract change takes (the command line and the
/// workspace's registry page). Each resumed ticket's status change is in
/// its history under `actor`.
///
/// # Errors
///
/// As [`set`].
pub async fn set_by(
    replier: &Replier,
    store: &Store,
    name: &str,
    status: ContractStatus,
    actor: &str,
) -> anyhow::Result<Vec<String>> {
    let mut tx = store.begin("").await?;
    let Some((before, registered)) = tx.set_contract_status(name, status).await? else {
        anyhow::bail!("no customer is called {name:?}; `servicedesk customers list` shows them");
    };
    let mut resumed = Vec::new();
    if before == ContractStatus::Suspended && status == ContractStatus::Active {
        for t in tx.held_tickets(&registered).await? {
            tx.resume_ticket(t.id).await?;
            tx.record_event(&t.number, actor, "status", Some("on_hold"), Some("new"))
                .await?;
            // The notice answers the mail that opened the ticket.
            let inbound = crate::mail::parse(
                format!(
                    "Message-ID: <{}>\r\nFrom: <{}>\r\nSubject: {}\r\n\r\n",
                    t.first_message_id,
                    t.sender,
                    t.subject.replace(['\r', '\n'], " ")
                )
                .as_bytes(),
            )?;
            let out = replier.render(&ReplyRequest {
                notice: Notice::Resumed,
                language: t.language,
                ticket: Some(&t.number),
                inbound: &inbound,
                recipient: &t.sender,
                name: &t.sender_name,
                customer: Some(&registered),
                category: Some(t.category),
                reason: None,
            })?;
            crate::pipeline::queue_reply(&mut tx, Some((t.id, &t.number)), Notice::Resumed, &out)
                .await?;
            resumed.push(t.number);
        }
    }
    tx.commit().await?;
    Ok(resumed)
}

/// Imports customers: a suspended customer the file makes active again is
/// resumed first (see [`set`]), then every row is written as usual.
///
/// # Errors
///
/// As [`set`] and the import; what was committed stays.
pub async fn import(
    config: &Config,
    store: &Store,
    customers: &[Customer],
) -> anyhow::Result<(ImportSummary, Vec<String>)> {
    let known = store.registry().await?;
    let mut resumed = Vec::new();
    for c in customers {
        let was_suspended = known
            .customer(&c.name)
            .is_some_and(|k| k.status == ContractStatus::Suspended);
        if was_suspended && c.status == ContractStatus::Active {
            resumed.extend(set(config, store, &c.name, ContractStatus::Active).await?);
        }
    }
    Ok((store.import_customers(customers).await?, resumed))
}
