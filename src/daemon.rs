//! Wires the sources, the pipeline and the outbox together, and owns
//! shutdown. It decides nothing about mail itself.
//!
//! Every IMAP mailbox is watched on its own connection (IDLE where offered,
//! polling otherwise), and only while this process holds the mailbox's
//! [`Lease`]; the Maildir is polled; one outbox task sends replies.
//! Shutdown arrives as a future: the messages in flight are finished (their
//! transaction committed and the messages moved), then the tasks stop.
//! `--once` processes what is there now, delivers every reply, and returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::config::{Config, ImapConfig};
use crate::health::{Beat, Health, Supervisor, TaskState};
use crate::lease::{holder_id, Lease};
use crate::outbox::{jittered, DrainReport, Outbox, Transport};
use crate::pipeline::{Disposition, Pipeline, Processed, RawMessage, MESSAGES_PER_TRANSACTION};
use crate::registry::Registry;
use crate::source::imap::{ImapError, ImapSource};
use crate::source::maildir::MaildirSource;
use crate::store::{Store, StoreError};

/// How often the outbox sender looks for replies queued by other processes.
const OUTBOX_LOOK_INTERVAL: Duration = Duration::from_secs(10);

/// What one run did, for `run --once` and the demo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub processed: usize,
    pub quarantined: usize,
    pub replies_sent: usize,
    pub replies_failed: usize,
    /// Replies still queued when `--once` gave up waiting for the server.
    pub replies_pending: usize,
}

/// Why a fetch-and-process cycle stopped.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("maildir: {0}")]
    Maildir(#[from] std::io::Error),
    #[error("another servicedesk process took the mailbox over")]
    LeaseLost,
}

/// Everything the tasks share.
struct Shared {
    pipeline: Pipeline,
    outbox: Outbox,
    /// Rung whenever a reply was queued.
    queued: Notify,
    /// The OAuth2 token sources of the mailboxes and the SMTP server.
    tokens: crate::oauth::Tokens,
    config: Config,
    /// What the tasks prove about their progress (systemd's watchdog).
    health: Arc<Health>,
    /// The most one step of a task may take (`[daemon] step_timeout_secs`).
    step: Duration,
}

/// Builds the shared parts from the configuration.
async fn build(config: &Config) -> anyhow::Result<Arc<Shared>> {
    let store = Store::connect(config.database.connect_url())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: [database] url {}: {e}",
                config.path.display(),
                config.database.shown_url()
            )
        })?;
    // A changed [sla] applies to the open tickets' due times too.
    let recomputed = store
        .apply_sla_policy(config.sla.clone())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: [database] url {}: {e}",
                config.path.display(),
                config.database.shown_url()
            )
        })?;
    if recomputed > 0 {
        tracing::info!(
            tickets = recomputed,
            "[sla] changed: due times computed again"
        );
    }
    let tokens = crate::oauth::Tokens::new(store.clone());
    tokens.prepare(config)?;
    let transport = Transport::from_config(config, &tokens)?;
    let pipeline = Pipeline::new(config, store.clone())?;
    let outbox = Outbox::new(store, transport, config.outbox.clone());
    Ok(Arc::new(Shared {
        pipeline,
        outbox,
        queued: Notify::new(),
        tokens,
        config: config.clone(),
        health: Arc::new(Health::default()),
        step: Duration::from_secs(config.daemon.step_timeout_secs),
    }))
}

/// Processes every message in one IMAP mailbox, batch by batch, until it is empty.
async fn drain_imap(
    shared: &Shared,
    source: &mut ImapSource,
    lease: &Lease,
    summary: &mut RunSummary,
    stop: &watch::Receiver<bool>,
    beat: &Beat,
) -> Result<(), CycleError> {
    loop {
        beat.alive(shared.step);
        // Renewed per batch: a long backlog must not outlive the lease.
        if !lease.hold().await? {
            return Err(CycleError::LeaseLost);
        }
        let batch = source
            .fetch_batch(shared.config.limits.max_message_bytes)
            .await?;
        if batch.is_empty() {
            return Ok(());
        }
        let registry = shared.pipeline.store().registry().await?;
        let mut done = Vec::with_capacity(batch.len());
        let mut failure = None;
        for chunk in batch.chunks(MESSAGES_PER_TRANSACTION) {
            beat.alive(shared.step);
            let raws = chunk.iter().map(|msg| RawMessage {
                bytes: &msg.raw,
                source: "imap",
                source_key: Some(msg.key.clone()),
                oversized: msg.oversized,
            });
            let (processed, result) = process_chunk(shared, raws, &registry, summary).await;
            for (msg, p) in chunk.iter().zip(&processed) {
                done.push((msg.uid, p.disposition));
            }
            if let Err(e) = result {
                failure = Some(e);
                break;
            }
            if *stop.borrow() {
                break;
            }
        }
        // Move what is committed even when the batch stopped half-way.
        beat.alive(shared.step);
        source.finish(&done).await?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        if *stop.borrow() {
            return Ok(());
        }
    }
}

/// Processes up to [`MESSAGES_PER_TRANSACTION`] messages together, counts
/// them and wakes the sender. Returns what was committed (a prefix, in
/// order) and the store failure that stopped it, if any.
async fn process_chunk<'a>(
    shared: &Shared,
    raws: impl Iterator<Item = RawMessage<'a>>,
    registry: &Registry,
    summary: &mut RunSummary,
) -> (Vec<Processed>, Result<(), StoreError>) {
    let raws: Vec<RawMessage<'a>> = raws.collect();
    let mut processed = Vec::with_capacity(raws.len());
    let result = shared
        .pipeline
        .process_batch(&raws, registry, &mut processed)
        .await;
    for p in &processed {
        count(summary, p.disposition);
    }
    if processed.iter().any(|p| p.replied) {
        shared.queued.notify_one();
    }
    (processed, result)
}

fn count(summary: &mut RunSummary, d: Disposition) {
    match d {
        Disposition::Processed => summary.processed += 1,
        Disposition::Quarantine => summary.quarantined += 1,
    }
}

/// Processes every message in the Maildir until it is empty.
async fn drain_maildir(
    shared: &Shared,
    source: &MaildirSource,
    summary: &mut RunSummary,
    stop: &watch::Receiver<bool>,
    beat: &Beat,
) -> Result<(), CycleError> {
    loop {
        beat.alive(shared.step);
        let batch = source.fetch_batch(100, shared.config.limits.max_message_bytes)?;
        if batch.is_empty() {
            return Ok(());
        }
        let registry = shared.pipeline.store().registry().await?;
        for chunk in batch.chunks(MESSAGES_PER_TRANSACTION) {
            beat.alive(shared.step);
            let raws = chunk.iter().map(|msg| RawMessage {
                bytes: &msg.raw,
                source: "maildir",
                source_key: Some(msg.key.clone()),
                oversized: msg.oversized,
            });
            let (processed, result) = process_chunk(shared, raws, &registry, summary).await;
            for (msg, p) in chunk.iter().zip(&processed) {
                source.finish(&msg.path, p.disposition)?;
            }
            result?;
            if *stop.borrow() {
                return Ok(());
            }
        }
    }
}

fn open_maildir(config: &Config) -> anyhow::Result<Option<MaildirSource>> {
    config
        .maildir
        .as_ref()
        .map(|m| {
            MaildirSource::open(&m.path, &m.processed_folder, &m.quarantine_folder)
                .map_err(|e| anyhow::anyhow!("[maildir] path {}: {e}", m.path.display()))
        })
        .transpose()
}

/// Processes all mail now in every configured source, then delivers every
/// queued reply (waiting for retries up to `[outbox] once_wait_secs`).
///
/// # Errors
///
/// When a source or the database fails; what was committed stays committed.
pub async fn run_once(config: &Config) -> anyhow::Result<RunSummary> {
    let shared = build(config).await?;
    // Replies go out while the mailboxes are still being read.
    let (sender_stop, sender_stopped) = watch::channel(false);
    let sender = tokio::spawn(send_replies(shared.clone(), sender_stopped, None));
    let result = read_all(config, &shared).await;
    let _ = sender_stop.send(true);
    let sent = sender.await.unwrap_or_default();
    let mut summary = result?;
    summary.replies_sent += sent.sent;
    summary.replies_failed += sent.failed;
    deliver_all(&shared, &mut summary).await?;
    Ok(summary)
}

/// Processes all mail now in every configured source.
async fn read_all(config: &Config, shared: &Arc<Shared>) -> anyhow::Result<RunSummary> {
    let (_tx, stop) = watch::channel(false);
    let mut summary = RunSummary::default();
    let holder = holder_id();
    for imap in &config.imap {
        let lease = Lease::for_mailbox(
            shared.pipeline.store(),
            &mailbox_name(imap),
            &holder,
            Duration::from_secs(config.daemon.lease_secs),
        );
        if !lease.wait_for().await? {
            tracing::warn!(
                mailbox = lease.name(),
                "another servicedesk process is working on this mailbox; skipped"
            );
            continue;
        }
        let beat = shared.health.register(lease.name(), true, shared.step);
        let mut source = ImapSource::connect(imap, &shared.tokens).await?;
        let result = drain_imap(shared, &mut source, &lease, &mut summary, &stop, &beat).await;
        source.logout().await;
        lease.release().await;
        result?;
    }
    if let Some(md) = open_maildir(config)? {
        let beat = shared.health.register("maildir", true, shared.step);
        drain_maildir(shared, &md, &mut summary, &stop, &beat).await?;
    }
    Ok(summary)
}

/// Sends queued replies until none is pending, or until the configured
/// patience runs out while the server keeps failing.
async fn deliver_all(shared: &Shared, summary: &mut RunSummary) -> anyhow::Result<()> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(shared.config.outbox.once_wait_secs);
    loop {
        let report = shared.outbox.drain(None).await?;
        summary.replies_sent += report.sent;
        summary.replies_failed += report.failed;
        let Some(wait) = shared.outbox.until_next().await? else {
            summary.replies_pending = 0;
            return Ok(());
        };
        if tokio::time::Instant::now() + wait > deadline {
            summary.replies_pending = shared.pipeline.store().pending_replies().await?;
            return Ok(());
        }
        tokio::time::sleep(wait).await;
    }
}

/// Runs until `shutdown` resolves: watches every source and sends replies.
///
/// # Errors
///
/// Only start-up failures (database, templates, transport); outages after
/// start are retried with backoff, not returned.
pub async fn run(config: &Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut config = config.clone();
    let mut running = start(&config, build(&config).await?).await?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(()) = hangup.recv() => {}
        }
        // SIGHUP (`systemctl reload`): the configuration, templates, rules
        // and model read again. A new configuration that does not hold is
        // refused and the daemon goes on with the one it has.
        tracing::info!(config = %config.path.display(), "reloading");
        let next = match Config::load(&config.path) {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(
                    "reload refused, still running on the configuration as it was: {e:#}"
                );
                continue;
            }
        };
        let shared = match build(&next).await {
            Ok(shared) => shared,
            Err(e) => {
                tracing::error!(
                    "reload refused, still running on the configuration as it was: {e:#}"
                );
                continue;
            }
        };
        crate::notify::notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
            monotonic_usec()
        ));
        // The sources finish the messages in flight, then the new ones
        // start: mailboxes added are watched, mailboxes removed are not.
        running.stop().await;
        config = next;
        running = start(&config, shared).await?;
        tracing::info!("reloaded");
    }
    tracing::info!("shutting down: finishing the messages in flight");
    crate::health::stopping();
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// CLOCK_MONOTONIC in microseconds, which systemd wants with `RELOADING=1`.
fn monotonic_usec() -> u128 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |secs| (secs * 1e6) as u128)
}

/// The tasks of one configuration: sources, outbox, workspace, metrics.
struct Running {
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the tasks once their work in flight is done.
    async fn stop(mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.abort();
        }
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts every task of `config` on `shared`.
async fn start(config: &Config, shared: Arc<Shared>) -> anyhow::Result<Running> {
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let holder = holder_id();
    for imap in config.imap.clone() {
        let (shared, stop, holder) = (shared.clone(), stop.clone(), holder.clone());
        let beat =
            shared
                .health
                .register(format!("imap {}", mailbox_name(&imap)), true, shared.step);
        tasks.spawn(async move { watch_imap(shared, imap, stop, holder, beat).await });
    }
    if let Some(md) = open_maildir(config)? {
        let (shared, stop) = (shared.clone(), stop.clone());
        let beat = shared.health.register("maildir", true, shared.step);
        tasks.spawn(async move { watch_maildir(shared, md, stop, beat).await });
    }
    if let Some(listen) = config.metrics.listen {
        let store = shared.pipeline.store().clone();
        let stop = stop.clone();
        // Bound before the daemon says it runs: a port in use is an error now.
        crate::metrics::recorder();
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            anyhow::anyhow!("{}: [metrics] listen {listen}: {e}", config.path.display())
        })?;
        tasks.spawn(async move {
            if let Err(e) = crate::metrics::serve(listener, store, stopped(stop)).await {
                tracing::error!("metrics: {e:#}");
            }
        });
    }
    if !config.webhooks.is_empty() {
        let store = shared.pipeline.store().clone();
        let lease = Lease::for_job(&store, "webhooks", &holder, Duration::from_secs(60));
        let (hooks, stop) = (config.webhooks.clone(), stop.clone());
        tasks.spawn(async move { crate::webhooks::run(store, hooks, lease, stop).await });
    }
    if config.triage.retrain_every > 0 && config.triage.model_file.is_none() {
        let (shared, stop, holder) = (shared.clone(), stop.clone(), holder.clone());
        tasks.spawn(async move { retrain_now_and_then(shared, stop, holder).await });
    }
    {
        let (shared, stop) = (shared.clone(), stop.clone());
        let beat = shared.health.register("outbox", false, shared.step);
        tasks.spawn(async move {
            send_replies(shared, stop, Some(beat)).await;
        });
    }
    if config.web.listen.is_some() {
        crate::metrics::allow_on_web(config.metrics.web_token.clone());
        // The workspace shares the daemon's store and stops with it.
        let listener = crate::web::bind(config).await?;
        let state = crate::web::AppState::new(config, shared.pipeline.store().clone())?;
        let stop = stop.clone();
        tasks.spawn(async move {
            if let Err(e) = crate::web::serve_on(listener, state, stopped(stop)).await {
                tracing::error!("{e:#}");
            }
        });
    }
    tracing::info!(
        mailboxes = config.imap.len(),
        maildir = config.maildir.is_some(),
        "servicedesk running"
    );
    // systemd hears READY once every source runs, watchdog pings while
    // every task keeps its word, and a status line.
    let supervisor = Supervisor::enabled().then(|| {
        let shared = shared.clone();
        tokio::spawn(Supervisor::new(shared.health.clone()).run(move || {
            let shared = shared.clone();
            async move { outbox_status(&shared).await }
        }))
    });
    Ok(Running {
        stop: stop_tx,
        tasks,
        supervisor,
    })
}

/// Every `[triage] retrain_check_secs`, counts the tickets agents
/// corrected; once `retrain_every` more were corrected than the newest
/// stored model learned from, trains a new one (see [`crate::models`]).
/// One daemon of those sharing a database does it, under a lease.
async fn retrain_now_and_then(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    holder: String,
) {
    let triage = &shared.config.triage;
    let store = shared.pipeline.store();
    let lease = Lease::for_job(store, "retrain", &holder, Duration::from_secs(600));
    let every = i64::from(triage.retrain_every);
    let pause = Duration::from_secs(triage.retrain_check_secs.max(1));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(pause) => {}
        }
        let due = async {
            let corrected = store.corrected_ticket_count().await?;
            let learned = store.corrections_of_newest_model().await?;
            Ok::<_, crate::store::StoreError>(corrected - learned >= every)
        };
        match due.await {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                tracing::warn!("counting corrections for retraining: {e}");
                continue;
            }
        }
        match lease.hold().await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!("retraining lease: {e}");
                continue;
            }
        }
        match crate::models::train(store).await {
            Ok(t) => tracing::info!(
                model = t.id,
                in_use = t.in_use,
                corrections = t.corrections,
                "retrained the sorting model: {}",
                t.figures
            ),
            Err(e) => tracing::error!("retraining the sorting model failed: {e:#}"),
        }
        if let Err(e) = store.release_lease(lease.name(), &holder).await {
            tracing::warn!("releasing the retraining lease: {e}");
        }
    }
}

/// `user@host:port/mailbox`, for logs and the status line.
fn mailbox_name(imap: &ImapConfig) -> String {
    format!(
        "{}@{}:{}/{}",
        imap.username, imap.host, imap.port, imap.mailbox
    )
}

/// The outbox part of the status line.
async fn outbox_status(shared: &Shared) -> String {
    let count = tokio::time::timeout(
        Duration::from_secs(5),
        shared.pipeline.store().pending_replies(),
    )
    .await;
    match count {
        Ok(Ok(n)) => format!("outbox {n} queued"),
        Ok(Err(_)) | Err(_) => "outbox unknown (database unavailable)".to_string(),
    }
}

/// Resolves once the stop flag is set.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Sleeps for `d` unless stopped first; true when stopped.
async fn pause(d: Duration, stop: &watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stopped(stop.clone()) => true,
    }
}

/// Reconnect delays: 2 s after the first failure, doubling up to 256 s
/// (below the 300 s cap), with jitter (see [`jittered`]).
fn reconnect_delay(failures: u32) -> Duration {
    let base = 1u64 << failures.min(8);
    let secs = base.min(300);
    jittered(Duration::from_secs(secs))
}

async fn watch_imap(
    shared: Arc<Shared>,
    config: ImapConfig,
    stop: watch::Receiver<bool>,
    holder: String,
    beat: Arc<Beat>,
) {
    let server = format!("{}:{}/{}", config.host, config.port, config.mailbox);
    let name = mailbox_name(&config);
    let lease = Lease::for_mailbox(
        shared.pipeline.store(),
        &mailbox_name(&config),
        &holder,
        Duration::from_secs(shared.config.daemon.lease_secs),
    );
    let mut failures = 0u32;
    let mut standing_by = false;
    let mut summary = RunSummary::default();
    // Waits are cut short so the lease is renewed well before it runs out.
    let idle = Duration::from_secs(shared.config.daemon.idle_timeout_secs).min(lease.length() / 3);
    let poll = Duration::from_secs(shared.config.daemon.poll_interval_secs).min(lease.length() / 3);
    let step = shared.step;
    while !*stop.borrow() {
        beat.alive(step);
        match lease.hold().await {
            Ok(true) => {
                if standing_by {
                    tracing::info!(server, "took the mailbox over");
                    standing_by = false;
                }
            }
            Ok(false) => {
                if !standing_by {
                    tracing::info!(
                        server,
                        "another servicedesk process works on this mailbox; standing by"
                    );
                    standing_by = true;
                }
                beat.report(TaskState::StandingBy, lease.length() / 3 + step);
                if pause(lease.length() / 3, &stop).await {
                    return;
                }
                continue;
            }
            Err(e) => {
                if failures == 0 {
                    tracing::error!(server, error = %e, "database unavailable; retrying with backoff");
                }
                failures += 1;
                let delay = reconnect_delay(failures);
                beat.report(TaskState::Retrying, delay + step);
                if pause(delay, &stop).await {
                    return;
                }
                continue;
            }
        }
        let result: Result<(), CycleError> = async {
            let mut source = ImapSource::connect(&config, &shared.tokens).await?;
            crate::metrics::mailbox(&name, true, false);
            beat.report(TaskState::Watching, step);
            loop {
                drain_imap(&shared, &mut source, &lease, &mut summary, &stop, &beat).await?;
                crate::metrics::mailbox(&name, true, true);
                // Back only once a whole pass worked (mailbox and database).
                if failures > 0 {
                    tracing::info!(server, "mailbox processing restored");
                    failures = 0;
                }
                if *stop.borrow() {
                    source.logout().await;
                    return Ok(());
                }
                let wait = if source.has_idle() { idle } else { poll };
                beat.alive(wait + step);
                source = source.wait(wait, stopped(stop.clone())).await?;
            }
        }
        .await;
        match result {
            Ok(()) => {
                lease.release().await;
                return;
            }
            Err(CycleError::LeaseLost) => {
                tracing::warn!(server, "another servicedesk process took the mailbox over");
                standing_by = true;
            }
            Err(e) => {
                crate::metrics::mailbox(&name, false, false);
                // A token source that needs a person has said so itself, once.
                let told =
                    matches!(&e, CycleError::Imap(ImapError::Token(t)) if t.needs_attention());
                if failures == 0 && !told {
                    tracing::error!(server, error = %e, "mail source unavailable; retrying with backoff");
                }
                failures += 1;
                let delay = reconnect_delay(failures);
                beat.report(TaskState::Retrying, delay + step);
                if pause(delay, &stop).await {
                    lease.release().await;
                    return;
                }
            }
        }
    }
    lease.release().await;
}

async fn watch_maildir(
    shared: Arc<Shared>,
    source: MaildirSource,
    stop: watch::Receiver<bool>,
    beat: Arc<Beat>,
) {
    let poll = Duration::from_secs(shared.config.daemon.poll_interval_secs.clamp(1, 60));
    let mut failing = false;
    let mut summary = RunSummary::default();
    loop {
        let result = drain_maildir(&shared, &source, &mut summary, &stop, &beat).await;
        let state = if result.is_ok() {
            TaskState::Watching
        } else {
            TaskState::Retrying
        };
        beat.report(state, poll + shared.step);
        match result {
            Ok(()) if failing => {
                tracing::info!("maildir processing restored");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::error!(error = %e, "maildir processing failed; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        if pause(poll, &stop).await {
            return;
        }
    }
}

/// Sends replies as they are queued until stopped; returns what it sent.
async fn send_replies(
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    beat: Option<Arc<Beat>>,
) -> DrainReport {
    let mut unreachable = false;
    let mut store_failing = false;
    let mut total = DrainReport::default();
    loop {
        let wait = match shared.outbox.drain(beat.as_deref()).await {
            Ok(report) => {
                total.sent += report.sent;
                total.failed += report.failed;
                crate::metrics::replies("sent", report.sent as u64);
                crate::metrics::replies("failed", report.failed as u64);
                // A pass with nothing due tried nothing: it tells nothing
                // about the server.
                let tried = report.sent + report.retrying + report.failed > 0;
                if tried && report.unreachable != unreachable {
                    if report.unreachable {
                        tracing::error!(
                            "mail server unreachable; replies stay queued and are retried"
                        );
                    } else {
                        tracing::info!("mail server reachable again");
                    }
                    unreachable = report.unreachable;
                }
                if store_failing {
                    tracing::info!("outbox: database reachable again");
                    store_failing = false;
                }
                shared
                    .outbox
                    .until_next()
                    .await
                    .ok()
                    .flatten()
                    // Replies queued by `ingest` in another process are
                    // found by this periodic look, not by the notification.
                    .unwrap_or(OUTBOX_LOOK_INTERVAL)
                    .min(OUTBOX_LOOK_INTERVAL)
            }
            Err(e) => {
                if !store_failing {
                    tracing::error!(error = %e, "outbox: database unavailable; retrying");
                    store_failing = true;
                }
                Duration::from_secs(5)
            }
        };
        if let Some(beat) = &beat {
            beat.report(TaskState::Watching, wait + shared.step);
        }
        tokio::select! {
            _ = shared.queued.notified() => {},
            _ = tokio::time::sleep(wait) => {},
            _ = stopped(stop.clone()) => {
                // Flush what is due right now, then stop.
                if let Ok(report) = shared.outbox.drain(None).await {
                    total.sent += report.sent;
                    total.failed += report.failed;
                    crate::metrics::replies("sent", report.sent as u64);
                    crate::metrics::replies("failed", report.failed as u64);
                }
                return total;
            }
        }
    }
}
