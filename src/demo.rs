//! `servicedesk demo`: the real pipeline on the bundled sample, with nothing
//! to install. A copy of `demo/maildir` is the mailbox, `demo/*.csv` the
//! registry, SQLite in the demo folder the store, and replies are written as
//! `.eml` files instead of being sent.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::Config;
use crate::registry;
use crate::store::{Store, TicketFilter};

/// The demo's agent and password (a lead, so every form shows).
const DEMO_AGENT: &str = "demo@example.test";
const DEMO_PASSWORD: &str = "demo";

/// Where the bundled sample is: `./demo` when run from the repository,
/// else the folder the binary was built from.
fn sample_dir() -> PathBuf {
    let here = PathBuf::from("demo");
    if here.join("maildir").is_dir() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("demo")
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Runs the demo in `dir`, starting fresh each time.
///
/// # Errors
///
/// When the sample cannot be found or copied, or the pipeline fails.
pub async fn run(dir: &Path) -> anyhow::Result<()> {
    let sample = sample_dir();
    anyhow::ensure!(
        sample.join("maildir").is_dir(),
        "the bundled sample is missing: run the demo from the repository folder"
    );
    for old in ["servicedesk.db", "servicedesk.db-wal", "servicedesk.db-shm"] {
        let _ = std::fs::remove_file(dir.join(old));
    }
    for old in ["maildir", "replies"] {
        let p = dir.join(old);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("cannot clear {}", p.display()))?;
        }
    }
    let maildir = dir.join("maildir");
    copy_dir(&sample.join("maildir"), &maildir)
        .with_context(|| format!("cannot copy the sample mailbox to {}", maildir.display()))?;
    let replies = dir.join("replies");
    let config_text = format!(
        r#"
[database]
url = "sqlite://{db}"

[support]
address = "support@example.test"
ticket_prefix = "CS"

[maildir]
path = "{maildir}"

[file_transport]
dir = "{replies}"
from = "Care Solutions Servicedesk <support@example.test>"

[web]
listen = "127.0.0.1:8080"

[sla]
[[sla.tiers]]
name = "standard"
first_response = "8h"
resolution = "40h"
[[sla.tiers.targets]]
priority = "critical"
first_response = "2h"
resolution = "16h"
[[sla.tiers]]
name = "premium"
first_response = "4h"
resolution = "24h"
[[sla.tiers.targets]]
priority = "critical"
first_response = "30m"
resolution = "4h"
"#,
        db = dir.join("servicedesk.db").display(),
        maildir = maildir.display(),
        replies = replies.display(),
    );
    let config_path = dir.join("demo.toml");
    std::fs::write(&config_path, &config_text)?;
    let config = Config::parse(&config_path, &config_text)?;

    let store = Store::connect(config.database.connect_url()).await?;
    store.set_sla_policy(config.sla.clone());
    let customers_csv = sample.join("customers.csv");
    let customers = registry::parse_customers_for(
        &customers_csv,
        &std::fs::read_to_string(&customers_csv)?,
        Some(&config.sla),
    )?;
    store.import_customers(&customers).await?;
    let known = store.registry().await?;
    let persons_csv = sample.join("persons.csv");
    let persons =
        registry::parse_persons(&persons_csv, &std::fs::read_to_string(&persons_csv)?, |n| {
            known.customer(n).map(|c| c.name.clone())
        })?;
    store.import_persons(&persons, false).await?;
    // An agent to look at the result in the workspace (a demo password).
    let hash = crate::agents::hash_password(DEMO_PASSWORD.to_string()).await?;
    store
        .upsert_agent(
            DEMO_AGENT,
            "Demo Agent",
            crate::domain::AgentRole::Lead,
            &hash,
        )
        .await?;

    let summary = crate::daemon::run_once(&config).await?;
    println!(
        "Read {} sample mails from {} ({} quarantined); {} replies written.\n",
        summary.processed + summary.quarantined,
        maildir.display(),
        summary.quarantined,
        summary.replies_sent
    );
    println!("Queues:");
    print!(
        "{}",
        crate::listing::queues(&store.tickets(&TicketFilter::default()).await?)
    );
    println!("\nMail without a ticket:");
    for i in store.intake().await?.iter().filter(|i| i.ticket.is_none()) {
        println!("  {:<13} {:<40} {}", i.outcome, i.from, i.detail);
    }
    println!("\nReplies (as .eml files): {}", replies.display());
    println!(
        "Look around: servicedesk --config {} tickets show CS-000001",
        config_path.display()
    );
    println!(
        "The agents' workspace: servicedesk --config {} web, then open http://127.0.0.1:8080 \
         and log in as {DEMO_AGENT} with the password {DEMO_PASSWORD}",
        config_path.display()
    );
    Ok(())
}
