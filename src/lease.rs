//! Who may work on what when several servicedesk processes share one
//! database: the [`Lease`] on a mailbox (only its holder fetches from it),
//! and the holder name a process signs its leases and reply claims with
//! ([`holder_id`]). Another process on the same machine can check that name
//! for life ([`holder_is_dead`]), so the leases and claims of a killed
//! process are taken over at once rather than after they run out.
//!
//! This module keeps its records through the store's lease table and nothing
//! else: it fetches no mail, sends nothing and decides nothing about
//! messages. When to hold, wait for or give up a lease is the daemon's call.

use std::time::Duration;

use crate::store::{Store, StoreError};

/// The lease on one mailbox: only its holder fetches from it, so two daemons
/// sharing a database never work on the same mailbox at once.
pub struct Lease {
    store: Store,
    name: String,
    holder: String,
    /// How long the lease lasts; it is renewed at least three times within it.
    length: Duration,
}

impl Lease {
    /// The lease on the mailbox `mailbox` (`user@host:port/mailbox`), held
    /// as `holder` (see [`holder_id`]) for `length` at a time.
    pub fn for_mailbox(store: &Store, mailbox: &str, holder: &str, length: Duration) -> Lease {
        Lease {
            length,
            store: store.clone(),
            name: format!("imap:{mailbox}"),
            holder: holder.to_string(),
        }
    }

    /// The lease on a job only one of the daemons sharing a database should
    /// do at a time (`job:NAME`), such as retraining the sorting model.
    pub fn for_job(store: &Store, job: &str, holder: &str, length: Duration) -> Lease {
        Lease {
            length,
            store: store.clone(),
            name: format!("job:{job}"),
            holder: holder.to_string(),
        }
    }

    /// The lease's name in the store, for logs and the status line.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long the lease lasts once taken or renewed.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// Takes or renews the lease; false while another live process holds it.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn hold(&self) -> Result<bool, StoreError> {
        let now = chrono::Utc::now();
        let until =
            crate::store::stamp(now + chrono::Duration::from_std(self.length).unwrap_or_default());
        if self
            .store
            .acquire_lease(&self.name, &self.holder, &crate::store::stamp(now), &until)
            .await?
        {
            return Ok(true);
        }
        // A holder on this machine whose process is gone (killed, crashed)
        // need not be waited for.
        match self.store.lease_holder(&self.name).await? {
            Some(old) if holder_is_dead(&old) => {
                tracing::info!(
                    lease = self.name,
                    old,
                    "taking over the lease of a process that is gone"
                );
                self.store
                    .take_lease(&self.name, &old, &self.holder, &until)
                    .await
            }
            _ => Ok(false),
        }
    }

    /// Waits (up to one lease length) for a lease another live process
    /// holds; true once held.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn wait_for(&self) -> Result<bool, StoreError> {
        let deadline = tokio::time::Instant::now() + self.length + Duration::from_secs(1);
        loop {
            if self.hold().await? {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Gives the lease up, so another process need not wait for it to run
    /// out; a failure is only logged (the lease then runs out by itself).
    pub async fn release(&self) {
        if let Err(e) = self.store.release_lease(&self.name, &self.holder).await {
            tracing::warn!(lease = self.name, error = %e, "cannot release the mailbox lease");
        }
    }
}

/// This process's name in leases: host, process id and a random part.
pub fn holder_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{host}:{}:{:08x}", std::process::id(), h.finish() as u32)
}

/// True when `holder` (see [`holder_id`]) names a process on this machine
/// that no longer runs.
pub fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (_, pid, host) = (parts.next(), parts.next(), parts.next());
    let ours = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    match (host, pid.and_then(|p| p.parse::<u32>().ok())) {
        (Some(host), Some(pid)) if host == ours => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_holders_on_this_machine_only() {
        let me = holder_id();
        assert!(!holder_is_dead(&me), "{me}");
        let host = me.rsplitn(3, ':').nth(2).unwrap_or("host").to_string();
        // Linux pids stay below 2^22.
        assert!(holder_is_dead(&format!("{host}:4999999:0badcafe")));
        assert!(!holder_is_dead("other-machine:4999999:0badcafe"));
        assert!(!holder_is_dead("garbage"));
    }
}
