//! Drains the outbox table: every queued reply is sent byte for byte over
//! SMTP (or written to a folder as `.eml`), then marked sent. Transient
//! failures are retried with exponential backoff and jitter; permanent ones
//! (5xx) and replies out of attempts are marked failed, for an agent to see
//! in `outbox list` and requeue with `outbox retry`.
//!
//! A reply is marked sent right after the server accepted it, so a restart
//! never sends it again; only a crash in that instant can repeat one.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use lettre::address::Envelope;
use lettre::{Address, AsyncFileTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, OutboxConfig};
use crate::health::Beat;
use crate::smtp::{Failure as SendError, SmtpSender};
use crate::store::{self, OutboxEntry, Store, StoreError};

/// How replies leave the building.
pub enum Transport {
    Smtp(SmtpSender),
    /// Writes `<uuid>.eml` files into a folder (demo, dry runs).
    File(AsyncFileTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(s) => write!(f, "Transport::Smtp({s:?})"),
            Transport::File(_) => f.write_str("Transport::File"),
        }
    }
}

impl Transport {
    /// Builds the transport the configuration asks for: SMTP, else files.
    ///
    /// # Errors
    ///
    /// When neither `[smtp]` nor `[file_transport]` is configured, or the
    /// SMTP TLS settings are unusable.
    pub fn from_config(
        config: &Config,
        tokens: &crate::oauth::Tokens,
    ) -> anyhow::Result<Transport> {
        if let Some(smtp) = &config.smtp {
            return Ok(Transport::Smtp(SmtpSender::new(
                smtp,
                SEND_CONCURRENCY,
                tokens,
            )?));
        }
        if let Some(files) = &config.file_transport {
            std::fs::create_dir_all(&files.dir).map_err(|e| {
                anyhow::anyhow!("[file_transport] dir {}: {e}", files.dir.display())
            })?;
            return Ok(Transport::File(AsyncFileTransport::new(&files.dir)));
        }
        anyhow::bail!(
            "{}: replies cannot be sent: configure [smtp] (or [file_transport] to write them to a folder)",
            config.path.display()
        )
    }

    async fn send(&self, entry: &OutboxEntry) -> Result<(), SendError> {
        let parse = |a: &str| {
            a.parse::<Address>()
                .map_err(|e| SendError::Permanent(format!("invalid address {a:?}: {e}")))
        };
        let envelope = Envelope::new(
            Some(parse(&entry.envelope_from)?),
            vec![parse(&entry.recipient)?],
        )
        .map_err(|e| SendError::Permanent(e.to_string()))?;
        match self {
            Transport::Smtp(s) => s.send(&envelope, &entry.raw).await,
            Transport::File(t) => t
                .send_raw(&envelope, &entry.raw)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Unreachable(e.to_string())),
        }
    }
}

impl Transport {
    /// How long a sender holds a reply it is sending: longer than one send
    /// can take, so a live sender never loses it; after a crash, another
    /// sender takes the reply over once this has passed.
    fn claim(&self) -> Duration {
        match self {
            Transport::Smtp(s) => s.budget() * 2 + Duration::from_secs(30),
            Transport::File(_) => Duration::from_secs(30),
        }
    }
}

/// Replies in flight at once.
const SEND_CONCURRENCY: usize = 8;

/// Replies claimed at a time, when sending slots free up: the last of them
/// starts after at most two sends' time, and a claim lasts twice the longest
/// send (see [`Transport::claim`]).
const CLAIM_BATCH: i64 = SEND_CONCURRENCY as i64;

/// What became of one reply in a pass.
enum Delivery {
    Sent,
    Retrying,
    Failed,
    /// Accepted by the server, but the database did not take the record.
    Unrecorded,
}

/// A reply the server accepted, and where to say whether that is recorded.
type Accepted = (i64, oneshot::Sender<bool>);

/// What one pass over the due replies did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    /// True when the server could not be reached at all in this pass.
    pub unreachable: bool,
}

/// The outbox sender.
#[derive(Debug)]
pub struct Outbox {
    store: Store,
    transport: Transport,
    policy: OutboxConfig,
    /// This process, as named on its claims.
    holder: String,
    /// Whether the claims of killed processes on this machine were taken
    /// over yet (once, at the first pass).
    took_over: AtomicBool,
}

/// The delay before retry number `attempts` (1-based): doubling from the
/// base, capped, with jitter (see [`jittered`]) so many replies do not all
/// come back at the same second.
pub fn backoff(policy: &OutboxConfig, attempts: u32) -> Duration {
    jittered(doubling(
        policy.retry_base_secs,
        policy.retry_max_secs,
        attempts,
    ))
}

/// The delay before retry number `attempts` (1-based), without jitter:
/// `base_secs` doubling with every attempt, at most `max_secs`, at least 1 s.
pub fn doubling(base_secs: u64, max_secs: u64, attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(20);
    Duration::from_secs(base_secs.saturating_mul(1u64 << exp).min(max_secs).max(1))
}

/// `delay` plus a random part of up to 20% of it (in steps of 1/5000), so
/// that what failed together (replies to one server, the daemon's
/// reconnects after one outage) does not all retry at the same moment.
pub fn jittered(delay: Duration) -> Duration {
    let thousandths = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % 1000;
    delay.saturating_add(delay.mul_f64(thousandths as f64 / 5000.0))
}

impl Outbox {
    pub fn new(store: Store, transport: Transport, policy: OutboxConfig) -> Outbox {
        Outbox {
            store,
            transport,
            policy,
            holder: crate::lease::holder_id(),
            took_over: AtomicBool::new(false),
        }
    }

    /// Sends every reply that is due now. `beat` hears of progress at
    /// every claim: the replies claimed go out within the claim's time.
    ///
    /// # Errors
    ///
    /// Only store failures; send failures are recorded on the entries. A
    /// reply whose outcome could not be recorded keeps its claim, so no
    /// sender tries it again before the claim runs out.
    pub async fn drain(&self, beat: Option<&Beat>) -> Result<DrainReport, StoreError> {
        if !self.took_over.load(Ordering::Relaxed) {
            self.take_over_dead_claims().await?;
            self.took_over.store(true, Ordering::Relaxed);
        }
        // Several replies in flight at once, so one slow round trip does not
        // hold up the rest. Replies are claimed a few at a time as sending
        // slots free up, so a claim never waits long for its turn. Accepted
        // replies are recorded by one recorder, which writes all that are
        // waiting at once.
        let unreachable = AtomicBool::new(false);
        let unreachable = &unreachable;
        let (record, records) = mpsc::unbounded_channel();
        let sends = async move {
            let mut outcomes = Vec::new();
            let mut queue = std::collections::VecDeque::new();
            let mut in_flight = futures::stream::FuturesUnordered::new();
            let mut more = true;
            loop {
                while in_flight.len() < SEND_CONCURRENCY {
                    if queue.is_empty() && more && !unreachable.load(Ordering::Relaxed) {
                        if let Some(beat) = beat {
                            beat.alive(self.transport.claim());
                        }
                        match self.claim_driving(&mut in_flight, &mut outcomes).await {
                            Ok(due) if due.is_empty() => more = false,
                            Ok(due) => queue.extend(due),
                            Err(e) => {
                                outcomes.push(Err(e));
                                more = false;
                            }
                        }
                    }
                    let Some(entry) = queue.pop_front() else {
                        break;
                    };
                    in_flight.push(self.deliver(entry, unreachable, &record));
                }
                match in_flight.next().await {
                    Some(outcome) => outcomes.push(outcome),
                    None => break,
                }
            }
            outcomes
        };
        let (outcomes, recorded) = tokio::join!(sends, self.recorder(records));
        let mut report = DrainReport {
            unreachable: unreachable.load(Ordering::Relaxed),
            ..DrainReport::default()
        };
        let mut first_error = recorded.err();
        for outcome in outcomes {
            match outcome {
                Ok(Delivery::Sent) => report.sent += 1,
                Ok(Delivery::Retrying) => report.retrying += 1,
                Ok(Delivery::Failed) => report.failed += 1,
                Ok(Delivery::Unrecorded) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        tracing::debug!(
            sent = report.sent,
            retrying = report.retrying,
            failed = report.failed,
            "outbox pass"
        );
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Claims the next few due replies.
    async fn claim(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(self.transport.claim()).unwrap_or_default();
        self.store
            .claim_due(
                &self.holder,
                &store::stamp(now),
                &store::stamp(until),
                CLAIM_BATCH,
            )
            .await
    }

    /// Claims the next few due replies while the replies in flight keep
    /// moving: one of them may hold the write turn the claim waits for
    /// (recording a failure), so waiting without them would never end.
    async fn claim_driving<F>(
        &self,
        in_flight: &mut futures::stream::FuturesUnordered<F>,
        outcomes: &mut Vec<F::Output>,
    ) -> Result<Vec<OutboxEntry>, StoreError>
    where
        F: std::future::Future<Output = Result<Delivery, StoreError>>,
    {
        let claim = self.claim();
        tokio::pin!(claim);
        loop {
            tokio::select! {
                claimed = &mut claim => return claimed,
                Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                    outcomes.push(outcome);
                }
            }
        }
    }

    /// Releases the claims of processes on this machine that are gone (a
    /// crash, `kill -9`), so their replies go out now rather than when the
    /// claims run out. A reply the server accepted just before the crash
    /// goes out again: the one repeat a crash can cause.
    async fn take_over_dead_claims(&self) -> Result<(), StoreError> {
        for holder in self.store.claim_holders(&store::now()).await? {
            if crate::lease::holder_is_dead(&holder) {
                let released = self.store.release_claims(&holder).await?;
                tracing::info!(
                    holder,
                    released,
                    "took over the replies claimed by a process that is gone"
                );
            }
        }
        Ok(())
    }

    /// Sends and records one claimed reply.
    async fn deliver(
        &self,
        entry: OutboxEntry,
        unreachable: &AtomicBool,
        record: &mpsc::UnboundedSender<Accepted>,
    ) -> Result<Delivery, StoreError> {
        if unreachable.load(Ordering::Relaxed) {
            // Every other reply of this pass would fail the same way.
            return self.record_retry(&entry, "mail server unreachable").await;
        }
        match self.transport.send(&entry).await {
            Ok(()) => {
                let (done, recorded) = oneshot::channel();
                if record.send((entry.id, done)).is_err() || recorded.await != Ok(true) {
                    return Ok(Delivery::Unrecorded);
                }
                tracing::info!(
                    id = entry.id,
                    ticket = entry.ticket.as_deref().unwrap_or(""),
                    notice = entry.notice.as_str(),
                    to = entry.recipient,
                    "reply sent"
                );
                Ok(Delivery::Sent)
            }
            Err(SendError::Permanent(e)) => {
                self.store.mark_attempt(entry.id, &e, None).await?;
                tracing::warn!(
                    id = entry.id,
                    to = entry.recipient,
                    error = e,
                    "reply refused; marked failed"
                );
                Ok(Delivery::Failed)
            }
            Err(SendError::Transient(e)) => self.record_retry(&entry, &e).await,
            Err(SendError::Unreachable(e)) => {
                unreachable.store(true, Ordering::Relaxed);
                self.record_retry(&entry, &e).await
            }
        }
    }

    /// Records accepted replies as sent until the senders are done: every
    /// write takes all that arrived meanwhile (group commit), so nothing
    /// waits for a flush of its own. This is the one write that keeps a reply
    /// from going out twice, so a database hiccup (a lock, a dropped
    /// connection) is retried for a while before it is given up.
    async fn recorder(
        &self,
        mut accepted: mpsc::UnboundedReceiver<Accepted>,
    ) -> Result<(), StoreError> {
        let mut failure = None;
        while let Some(first) = accepted.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = accepted.try_recv() {
                batch.push(more);
            }
            let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
            let recorded = if failure.is_some() {
                false
            } else {
                match self.mark_sent(&ids).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(
                            ids = ?ids,
                            error = %e,
                            "replies sent but not recorded; they stay claimed and may go out again once the claim runs out"
                        );
                        failure = Some(e);
                        false
                    }
                }
            };
            for (_, done) in batch {
                let _ = done.send(recorded);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut delay = Duration::from_millis(50);
        let mut tries = 0;
        loop {
            match self.store.mark_sent(ids).await {
                Err(_) if tries < 8 => {
                    tries += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                result => return result,
            }
        }
    }

    async fn record_retry(&self, entry: &OutboxEntry, error: &str) -> Result<Delivery, StoreError> {
        let attempts = u32::try_from(entry.attempts)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        if attempts >= self.policy.max_attempts {
            self.store.mark_attempt(entry.id, error, None).await?;
            tracing::warn!(
                id = entry.id,
                attempts,
                error,
                "reply out of attempts; marked failed"
            );
            Ok(Delivery::Failed)
        } else {
            let delay = backoff(&self.policy, attempts);
            let next =
                store::stamp(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default());
            self.store
                .mark_attempt(entry.id, error, Some(&next))
                .await?;
            Ok(Delivery::Retrying)
        }
    }

    /// How long until the next pending reply is due (`None`: nothing pending).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn until_next(&self) -> Result<Option<Duration>, StoreError> {
        let Some(next) = self.store.next_due().await? else {
            return Ok(None);
        };
        let at = chrono::DateTime::parse_from_rfc3339(&next)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        Ok(Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = OutboxConfig {
            max_attempts: 10,
            retry_base_secs: 30,
            retry_max_secs: 3600,
            once_wait_secs: 0,
        };
        let first = backoff(&p, 1).as_secs_f64();
        assert!((30.0..=36.0).contains(&first), "{first}");
        let third = backoff(&p, 3).as_secs_f64();
        assert!((120.0..=144.0).contains(&third), "{third}");
        let late = backoff(&p, 15).as_secs_f64();
        assert!((3600.0..=4320.0).contains(&late), "{late}");
    }

    #[test]
    fn jitter_adds_up_to_a_fifth() {
        for _ in 0..200 {
            let d = jittered(Duration::from_secs(10));
            assert!(
                (Duration::from_secs(10)..Duration::from_secs(12)).contains(&d),
                "{d:?}"
            );
        }
    }
}
