//! Live updates for the workspace: one hub per process turns the audit
//! trail (`ticket_events`) and the presence table into pushes that every
//! open workspace page receives over server-sent events
//! ([`crate::web::live`]).
//!
//! Nothing is lost: the events are the durable audit rows, read in id
//! order after a cursor; a page that reconnects names the last id it got
//! and is sent what it missed. The hub learns of new rows at once from
//! this process's commits ([`crate::store::Signals`]), from other
//! processes through PostgreSQL's `LISTEN` (a trigger `NOTIFY`s at every
//! commit), and otherwise by a cheap look at `MAX(id)` twice a second (a
//! second process on one SQLite file). No flood: a burst of changes goes
//! out as one push per [`WINDOW`], with one update of the queue counts.
//!
//! On PostgreSQL two transactions may commit their ids out of order: a row
//! with a higher id can be visible while a lower one is still in flight.
//! The hub then holds back everything after the hole until the
//! transactions that were running when it saw the hole have ended (the
//! snapshot horizon says so), then skips what never came (rolled back);
//! it waits at most [`GIVE_UP`] for a transaction that stays open. So ids
//! go out in order, each once.
//!
//! It never writes tickets; it only reads, and deletes stale presence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use crate::store::{LiveEvent, QueueCounts, Store, Viewer};

/// Changes closer together than this go out together.
pub const WINDOW: Duration = Duration::from_millis(150);
/// How often the hub looks for rows it was not told about.
const LOOK: Duration = Duration::from_millis(500);
/// How often presence is re-read even without a signal (expiry).
const PRESENCE_LOOK: Duration = Duration::from_secs(2);
/// A tab that sent no heartbeat for this long no longer counts as there.
pub const PRESENCE_STALE: Duration = Duration::from_secs(45);
/// The least a hole in the ids is waited for (a transaction may have taken
/// its id without having its own transaction id yet).
const SETTLE: Duration = Duration::from_millis(200);
/// The most a hole is waited for, whatever the horizon says.
pub const GIVE_UP: Duration = Duration::from_secs(10);
/// The most events read at once.
const CHUNK: i64 = 500;

/// The queue counts after a push: the shared ones and each agent's own.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub shared: QueueCounts,
    /// Open tickets per assignee (address).
    pub mine: BTreeMap<String, i64>,
}

impl Counts {
    /// The counts as one agent's page shows them.
    pub fn for_agent(&self, agent: &str) -> serde_json::Value {
        let c = &self.shared;
        serde_json::json!({
            "open": c.open,
            "mine": self.mine.get(&agent.to_lowercase()).copied().unwrap_or(0),
            "unassigned": c.unassigned,
            "awaiting_approval": c.awaiting_approval,
            "on_hold": c.on_hold,
            "waiting": c.waiting,
            "to_check": c.to_check,
            "categories": c.categories.iter().map(|(k, n)| (k.as_str().to_string(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// What the hub sends to every client.
#[derive(Debug)]
pub enum Push {
    /// New audit events, in id order, and the counts after them.
    Events(Vec<LiveEvent>, Arc<Counts>),
    /// Who has this ticket open now.
    Presence(String, Vec<Viewer>),
}

/// Where the database stands on transactions, to judge a hole in the ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Horizon {
    /// Ids commit in order (SQLite: one writer at a time): a hole is an id
    /// that will never come.
    Ordered,
    /// PostgreSQL's snapshots: every transaction below `xmin` had ended
    /// before the rows were read (0: unknown); every one begun before
    /// they were read is below `xmax`.
    Snapshot { xmin: u64, xmax: u64 },
}

/// A row of the audit trail, known by its id.
pub trait Sequenced {
    fn id(&self) -> i64;
}

impl Sequenced for LiveEvent {
    fn id(&self) -> i64 {
        self.id
    }
}

impl Sequenced for crate::store::AuditEvent {
    fn id(&self) -> i64 {
        self.id
    }
}

/// A hole after `after`, seen at `since`, when transactions up to `xmax`
/// could still fill it.
#[derive(Debug, Clone, Copy)]
struct Hole {
    after: i64,
    since: Instant,
    xmax: u64,
}

/// Decides which new audit events may go out: in id order, holding back
/// after a hole until it is filled or known empty. Pure. The live updates
/// and the webhook queue (which must not skip an event) both read the
/// audit trail through one.
#[derive(Debug)]
pub struct Gate {
    cursor: i64,
    hole: Option<Hole>,
    /// How long a hole is waited for at most; `None`: until the snapshot
    /// says it is empty (the webhook queue: a delivery must not be lost).
    give_up: Option<Duration>,
    /// A hole waited for this long has been reported.
    reported: bool,
}

impl Gate {
    /// A gate for the live updates: a hole is waited for at most
    /// [`GIVE_UP`] (the events stay in the history).
    pub fn new(cursor: i64) -> Gate {
        Gate {
            cursor,
            hole: None,
            give_up: Some(GIVE_UP),
            reported: false,
        }
    }

    /// A gate that never gives up on a hole: it waits until every
    /// transaction that could fill it has ended.
    pub fn patient(cursor: i64) -> Gate {
        Gate {
            give_up: None,
            ..Gate::new(cursor)
        }
    }

    /// Every event up to here has gone out (or never will come).
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// A hole is being waited for.
    pub fn waiting(&self) -> bool {
        self.hole.is_some()
    }

    /// Whether `rows` (ascending, after the cursor) leave a hole.
    pub fn has_hole<T: Sequenced>(&self, rows: &[T]) -> bool {
        (self.cursor + 1..)
            .zip(rows)
            .any(|(expected, r)| r.id() != expected)
    }

    /// The events of `rows` (ascending ids, all after the cursor) that may
    /// go out now, moving the cursor past them.
    pub fn admit<T: Sequenced>(&mut self, rows: Vec<T>, horizon: Horizon, now: Instant) -> Vec<T> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            if r.id() <= self.cursor {
                continue;
            }
            if r.id() != self.cursor + 1 {
                let closed = match horizon {
                    Horizon::Ordered => true,
                    Horizon::Snapshot { xmin, xmax } => match self.hole {
                        Some(h) if h.after == self.cursor => {
                            let waited = now.saturating_duration_since(h.since);
                            if self.give_up.is_none() && waited >= GIVE_UP && !self.reported {
                                self.reported = true;
                                tracing::warn!(
                                    after = h.after,
                                    "audit events after {} wait for a transaction still open",
                                    h.after
                                );
                            }
                            (waited >= SETTLE && xmin >= h.xmax)
                                || self.give_up.is_some_and(|g| waited >= g)
                        }
                        _ => {
                            self.hole = Some(Hole {
                                after: self.cursor,
                                since: now,
                                xmax,
                            });
                            false
                        }
                    },
                };
                if !closed {
                    break;
                }
                if let Some(h) = self.hole.filter(|h| {
                    self.give_up
                        .is_some_and(|g| now.saturating_duration_since(h.since) >= g)
                }) {
                    tracing::warn!(
                        after = h.after,
                        next = r.id(),
                        "audit events after {} never came; going on",
                        h.after
                    );
                }
            }
            self.hole = None;
            self.reported = false;
            self.cursor = r.id();
            out.push(r);
        }
        out
    }
}

/// Where the database stood before the rows are read, when the gate is
/// waiting for a hole: a hole may only be closed by a snapshot taken before
/// the read (a transaction that commits between the read and a later
/// snapshot would be skipped). Call it, then read, then [`horizon_for`].
///
/// # Errors
///
/// On database failure.
pub async fn horizon_before(
    store: &Store,
    gate: &Gate,
) -> Result<Option<(u64, u64)>, crate::store::StoreError> {
    if gate.waiting() {
        store.horizon().await
    } else {
        Ok(None)
    }
}

/// Where the database stands, when `rows` (just read after the gate's
/// cursor) leave a hole; [`Horizon::Ordered`] when they leave none. A new
/// hole is judged by the transactions begun before this (after the read);
/// closing one needs `before` ([`horizon_before`]).
///
/// # Errors
///
/// On database failure.
pub async fn horizon_for<T: Sequenced>(
    store: &Store,
    gate: &Gate,
    rows: &[T],
    before: Option<(u64, u64)>,
) -> Result<Horizon, crate::store::StoreError> {
    if !gate.has_hole(rows) {
        return Ok(Horizon::Ordered);
    }
    Ok(match store.horizon().await? {
        Some((_, xmax)) => Horizon::Snapshot {
            xmin: before.map_or(0, |(xmin, _)| xmin),
            xmax,
        },
        None => Horizon::Ordered,
    })
}

/// The live hub of this process; clone freely.
#[derive(Clone)]
pub struct Hub(Arc<Inner>);

struct Inner {
    store: Store,
    pushes: broadcast::Sender<Arc<Push>>,
    /// Every event up to here has been pushed; -1 until the hub started.
    cursor: watch::Sender<i64>,
    /// Who has which ticket open, as last pushed.
    viewers: std::sync::Mutex<BTreeMap<String, Vec<Viewer>>>,
    /// The counts of the last push.
    counts: std::sync::Mutex<Option<Arc<Counts>>>,
    /// Set at shutdown: every stream ends.
    closed: watch::Sender<bool>,
    /// Connected live clients.
    clients: std::sync::atomic::AtomicUsize,
    /// Connected live clients per agent (address).
    per_agent: std::sync::Mutex<BTreeMap<String, usize>>,
}

/// The most live streams one agent keeps open at once (tabs, windows,
/// scripts): enough for any desk, and a stolen token cannot multiply
/// the load without end.
pub const MAX_STREAMS_PER_AGENT: usize = 32;

/// Counts a connected client while it lives.
pub struct ClientGuard(Hub, String);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        if let Ok(mut per) = self.0 .0.per_agent.lock() {
            if let Some(n) = per.get_mut(&self.1) {
                *n -= 1;
                if *n == 0 {
                    per.remove(&self.1);
                }
            }
        }
        let n = self
            .0
             .0
            .clients
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            - 1;
        crate::metrics::sse_clients(n);
    }
}

impl Hub {
    /// Starts the hub on `store`; `listen_url` (PostgreSQL only) is where
    /// it `LISTEN`s. Must run inside a Tokio runtime.
    pub fn start(store: Store, listen_url: Option<String>) -> Hub {
        let hub = Hub(Arc::new(Inner {
            store,
            pushes: broadcast::channel(256).0,
            cursor: watch::channel(-1).0,
            viewers: Default::default(),
            counts: Default::default(),
            closed: watch::channel(false).0,
            clients: Default::default(),
            per_agent: Default::default(),
        }));
        crate::metrics::sse_clients(0);
        if let Some(url) = listen_url {
            let (store, closed) = (hub.0.store.clone(), hub.0.closed.subscribe());
            tokio::spawn(listen(url, store, closed));
        }
        tokio::spawn(run(hub.clone()));
        hub
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Ends every stream (shutdown).
    pub fn close(&self) {
        self.0.closed.send_replace(true);
    }

    pub fn closed(&self) -> watch::Receiver<bool> {
        self.0.closed.subscribe()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Push>> {
        self.0.pushes.subscribe()
    }

    /// The cursor now: -1 while the hub has not started.
    pub fn cursor_now(&self) -> i64 {
        *self.0.cursor.borrow()
    }

    /// The cursor, once the hub has started (`None` at shutdown).
    pub async fn cursor(&self) -> Option<i64> {
        let mut rx = self.0.cursor.subscribe();
        let mut closed = self.closed();
        tokio::select! {
            c = rx.wait_for(|c| *c >= 0) => c.ok().map(|c| *c),
            _ = closed.wait_for(|c| *c) => None,
        }
    }

    /// Who has `ticket` open, as last pushed.
    pub fn viewers(&self, ticket: &str) -> Vec<Viewer> {
        self.0
            .viewers
            .lock()
            .ok()
            .and_then(|v| v.get(ticket).cloned())
            .unwrap_or_default()
    }

    /// The latest counts (read now when none was pushed yet).
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn counts(&self) -> Result<Arc<Counts>, crate::store::StoreError> {
        if let Some(c) = self.0.counts.lock().ok().and_then(|c| c.clone()) {
            return Ok(c);
        }
        let c = Arc::new(read_counts(&self.0.store).await?);
        if let Ok(mut slot) = self.0.counts.lock() {
            *slot = Some(c.clone());
        }
        Ok(c)
    }

    /// Counts one more connected client of `agent` until the guard
    /// drops; `None` when the agent has [`MAX_STREAMS_PER_AGENT`] already.
    pub fn client(&self, agent: &str) -> Option<ClientGuard> {
        let agent = agent.to_lowercase();
        {
            let mut per = self.0.per_agent.lock().ok()?;
            let n = per.entry(agent.clone()).or_insert(0);
            if *n >= MAX_STREAMS_PER_AGENT {
                return None;
            }
            *n += 1;
        }
        let n = self
            .0
            .clients
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        crate::metrics::sse_clients(n);
        Some(ClientGuard(self.clone(), agent))
    }

    /// Connected clients now.
    pub fn clients(&self) -> usize {
        self.0.clients.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn read_counts(store: &Store) -> Result<Counts, crate::store::StoreError> {
    Ok(Counts {
        shared: store.queue_counts().await?,
        mine: store.open_per_assignee().await?.into_iter().collect(),
    })
}

/// `LISTEN`s on PostgreSQL and rings this process's signals for every
/// notification; after a lost connection it rings both (to catch up) and
/// reconnects, waiting longer after each failure.
async fn listen(url: String, store: Store, mut closed: watch::Receiver<bool>) {
    let mut wait = Duration::from_millis(500);
    let mut failing = false;
    loop {
        let connected = async {
            let mut l = sqlx::postgres::PgListener::connect(&url).await?;
            l.listen_all(["servicedesk_events", "servicedesk_presence"])
                .await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = tokio::select! {
            l = connected => l,
            _ = closed.wait_for(|c| *c) => return,
        };
        match &mut listener {
            Ok(l) => {
                if failing {
                    tracing::info!("live updates: listening to the database again");
                }
                failing = false;
                wait = Duration::from_millis(500);
                // Whatever was announced while not listening.
                store.signals().events_written();
                store.signals().presence_changed();
                loop {
                    let next = tokio::select! {
                        n = l.try_recv() => n,
                        _ = closed.wait_for(|c| *c) => return,
                    };
                    match next {
                        Ok(Some(n)) if n.channel() == "servicedesk_presence" => {
                            store.signals().presence_changed()
                        }
                        Ok(Some(_)) => store.signals().events_written(),
                        Ok(None) => {
                            store.signals().events_written();
                            store.signals().presence_changed();
                        }
                        Err(e) => {
                            tracing::warn!("live updates: the database's notifications stopped: {e}; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("live updates: cannot listen to the database: {e}; retrying (looking every {LOOK:?} meanwhile)");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = closed.wait_for(|c| *c) => return,
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// The hub's loop: waits for a signal or its next look, lets a burst
/// gather, then pushes the new events and presence changes.
async fn run(hub: Hub) {
    let inner = &hub.0;
    let store = &inner.store;
    let mut closed = hub.closed();
    let mut events = store.signals().events();
    let mut presence = store.signals().presence();
    let mut failing = false;
    let start = loop {
        match store.last_event_id().await {
            Ok(n) => break n,
            Err(e) => {
                if !failing {
                    tracing::warn!("live updates: {e}; retrying");
                    failing = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = closed.wait_for(|c| *c) => return,
                }
            }
        }
    };
    let mut gate = Gate::new(start);
    inner.cursor.send_replace(start);
    let mut look = tokio::time::interval(LOOK);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_push: Option<Instant> = None;
    let mut presence_read = Instant::now();
    let mut expired = Instant::now();
    // Presence as it stands when the hub starts.
    let mut presence_due = true;
    loop {
        let mut events_due = false;
        let mut looked = false;
        tokio::select! {
            _ = closed.wait_for(|c| *c) => return,
            r = events.changed() => { if r.is_err() { return; } events_due = true; }
            r = presence.changed() => { if r.is_err() { return; } presence_due = true; }
            _ = look.tick() => looked = true,
        }
        if looked {
            events_due =
                gate.waiting() || store.last_event_id().await.is_ok_and(|n| n > gate.cursor());
            presence_due |= presence_read.elapsed() >= PRESENCE_LOOK;
        }
        if !events_due && !presence_due {
            continue;
        }
        // Let a burst gather: at most one push per window.
        if let Some(at) = last_push {
            let wait = WINDOW.saturating_sub(at.elapsed());
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = closed.wait_for(|c| *c) => return,
                }
            }
        }
        // What rang meanwhile is read by this pass.
        events.borrow_and_update();
        presence.borrow_and_update();
        let mut pushed = false;
        if events_due {
            match push_events(&hub, &mut gate).await {
                Ok(p) => {
                    pushed |= p;
                    if failing {
                        tracing::info!("live updates: the database answers again");
                        failing = false;
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!("live updates: {e}; retrying");
                        failing = true;
                    }
                }
            }
        }
        if presence_due {
            presence_read = Instant::now();
            match push_presence(&hub).await {
                Ok(p) => {
                    pushed |= p;
                    presence_due = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!("live updates: {e}; retrying");
                        failing = true;
                    }
                }
            }
            if expired.elapsed() >= Duration::from_secs(60) {
                expired = Instant::now();
                let before =
                    crate::store::stamp(chrono::Utc::now() - chrono::Duration::minutes(10));
                if let Err(e) = store.expire_presence(&before).await {
                    tracing::debug!("live updates: expiring presence: {e}");
                }
            }
        }
        if pushed {
            last_push = Some(Instant::now());
        }
    }
}

/// Reads the events after the gate's cursor and pushes what it admits,
/// with the counts after them. Returns whether it pushed.
async fn push_events(hub: &Hub, gate: &mut Gate) -> Result<bool, crate::store::StoreError> {
    let store = &hub.0.store;
    let mut pushed = false;
    loop {
        let before = horizon_before(store, gate).await?;
        let rows = store.events_between(gate.cursor(), i64::MAX, CHUNK).await?;
        let full = rows.len() as i64 == CHUNK;
        if rows.is_empty() {
            return Ok(pushed);
        }
        let horizon = horizon_for(store, gate, &rows, before).await?;
        let n = rows.len();
        let admitted = gate.admit(rows, horizon, Instant::now());
        if admitted.is_empty() {
            return Ok(pushed);
        }
        let all = admitted.len() == n;
        let counts = Arc::new(read_counts(store).await?);
        if let Ok(mut slot) = hub.0.counts.lock() {
            *slot = Some(counts.clone());
        }
        hub.0.cursor.send_replace(gate.cursor());
        // No receiver is fine: nobody is connected.
        let _ = hub.0.pushes.send(Arc::new(Push::Events(admitted, counts)));
        pushed = true;
        if !(full && all) {
            return Ok(pushed);
        }
    }
}

/// Reads who has which ticket open and pushes each ticket whose viewers
/// changed. Returns whether it pushed.
async fn push_presence(hub: &Hub) -> Result<bool, crate::store::StoreError> {
    let since = crate::store::stamp(
        chrono::Utc::now()
            - chrono::Duration::from_std(PRESENCE_STALE).unwrap_or(chrono::Duration::seconds(45)),
    );
    let now = hub.0.store.presence_since(&since, None).await?;
    let changed: Vec<(String, Vec<Viewer>)> = {
        let Ok(mut old) = hub.0.viewers.lock() else {
            return Ok(false);
        };
        let mut changed = Vec::new();
        for (ticket, viewers) in &now {
            if old.get(ticket) != Some(viewers) {
                changed.push((ticket.clone(), viewers.clone()));
            }
        }
        for ticket in old.keys() {
            if !now.contains_key(ticket) {
                changed.push((ticket.clone(), Vec::new()));
            }
        }
        *old = now;
        changed
    };
    let pushed = !changed.is_empty();
    for (ticket, viewers) in changed {
        let _ = hub.0.pushes.send(Arc::new(Push::Presence(ticket, viewers)));
    }
    Ok(pushed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64) -> LiveEvent {
        LiveEvent {
            id,
            ticket: "CS-000001".into(),
            actor: "mail".into(),
            field: "inbound".into(),
            old: None,
            new: None,
            at: String::new(),
        }
    }

    fn ids(v: &[LiveEvent]) -> Vec<i64> {
        v.iter().map(|e| e.id).collect()
    }

    #[test]
    fn events_go_out_in_order_and_once() {
        let mut g = Gate::new(3);
        let t = Instant::now();
        assert_eq!(
            ids(&g.admit(vec![ev(4), ev(5)], Horizon::Ordered, t)),
            [4, 5]
        );
        assert_eq!(g.cursor(), 5);
        // Read again: nothing twice.
        assert!(g.admit(vec![ev(5)], Horizon::Ordered, t).is_empty());
        // SQLite: a hole is an id that never comes.
        assert_eq!(ids(&g.admit(vec![ev(7)], Horizon::Ordered, t)), [7]);
        assert!(!g.waiting());
    }

    #[test]
    fn a_patient_gate_waits_until_the_snapshot_says_the_hole_is_empty() {
        let mut g = Gate::patient(10);
        let t = Instant::now();
        let snap = |xmin, xmax| Horizon::Snapshot { xmin, xmax };
        // Transactions up to 400 could fill 11.
        assert!(g.admit(vec![ev(12)], snap(0, 400), t).is_empty());
        // However long it takes, 12 waits while one of them may be open...
        assert!(g
            .admit(vec![ev(12)], snap(300, 500), t + GIVE_UP * 100)
            .is_empty());
        // ...and no snapshot taken without a look before the read closes it.
        assert!(g
            .admit(vec![ev(12)], snap(0, 500), t + GIVE_UP * 100)
            .is_empty());
        assert_eq!(
            ids(&g.admit(vec![ev(12)], snap(400, 500), t + GIVE_UP * 100)),
            [12]
        );
        assert_eq!(g.cursor(), 12);
    }

    #[test]
    fn a_hole_on_postgres_waits_for_the_transactions_in_flight() {
        let mut g = Gate::new(10);
        let t = Instant::now();
        let snap = |xmin, xmax| Horizon::Snapshot { xmin, xmax };
        // 12 is visible, 11 is not (yet): 12 waits.
        assert!(g.has_hole(&[ev(12)]));
        assert_eq!(
            ids(&g.admit(vec![ev(12)], snap(100, 105), t)),
            Vec::<i64>::new()
        );
        assert!(g.waiting());
        // 11 committed meanwhile: both go, in order.
        assert!(!g.has_hole(&[ev(11), ev(12)]));
        assert_eq!(
            ids(&g.admit(vec![ev(11), ev(12)], Horizon::Ordered, t)),
            [11, 12]
        );
        assert!(!g.waiting());
        // 14 without 13; the transactions then running (below 200) are
        // still running after the settling time: 14 waits.
        assert!(g.admit(vec![ev(14)], snap(150, 200), t).is_empty());
        let later = t + SETTLE;
        assert!(g.admit(vec![ev(14)], snap(199, 210), later).is_empty());
        // They ended without 13 (rolled back): 14 goes.
        assert_eq!(ids(&g.admit(vec![ev(14)], snap(200, 210), later)), [14]);
        // A hole nobody ever closes is given up after a while.
        assert!(g.admit(vec![ev(16)], snap(300, 400), t).is_empty());
        assert!(g.admit(vec![ev(16)], snap(300, 400), t + SETTLE).is_empty());
        assert_eq!(
            ids(&g.admit(vec![ev(16)], snap(300, 400), t + GIVE_UP)),
            [16]
        );
    }
}
