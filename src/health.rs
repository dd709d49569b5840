//! What the daemon's tasks prove about their own progress, and what
//! systemd hears of it: `READY=1` once every source runs, `WATCHDOG=1` only
//! while every task keeps its word, `STATUS=` lines a person can read.
//!
//! Each task (a mailbox watcher, the Maildir poller, the reply sender) owns
//! a [`Beat`]. Before each step it says how long the step may take at most
//! ([`Beat::alive`]): a fetch batch, an IDLE wait, a backoff pause. The
//! [`Supervisor`] pings the watchdog only while no task has overrun its
//! word, so a task stuck on a lock or a dead connection stops the pings and
//! systemd restarts the daemon; a timer alone would keep pinging.
//!
//! This module decides nothing about mail and touches no server; the
//! daemon hands it the outbox count for the status line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::notify::notify;

/// Where a task stands, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Started, not yet connected.
    Starting,
    /// Connected and working, or waiting for mail.
    Watching,
    /// Another servicedesk process holds this mailbox's lease.
    StandingBy,
    /// The server or the database failed; retrying with backoff.
    Retrying,
}

#[derive(Debug)]
struct BeatState {
    /// The task promised to beat again before this.
    due: Instant,
    state: TaskState,
    ready: bool,
    /// The overrun was logged (once per overrun).
    reported: bool,
}

/// One task's word about its progress.
#[derive(Debug)]
pub struct Beat {
    /// What the task works on, e.g. `imap support@host:993/INBOX`.
    name: String,
    /// Whether the task counts as a mailbox on the status line.
    mailbox: bool,
    inner: Mutex<BeatState>,
    /// Rung when the task first reports itself running.
    ready: Arc<Notify>,
}

impl Beat {
    /// The task is alive and will beat again within `within`.
    pub fn alive(&self, within: Duration) {
        let mut s = self.lock();
        s.due = Instant::now() + within;
        s.reported = false;
    }

    /// Like [`Beat::alive`], and the task now stands `state`; the first
    /// state other than [`TaskState::Starting`] makes it ready.
    pub fn report(&self, state: TaskState, within: Duration) {
        let first = {
            let mut s = self.lock();
            s.due = Instant::now() + within;
            s.reported = false;
            s.state = state;
            let first = !s.ready && state != TaskState::Starting;
            s.ready |= first;
            first
        };
        if first {
            self.ready.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BeatState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The tasks' beats, shared between the tasks and the supervisor.
#[derive(Debug, Default)]
pub struct Health {
    beats: Mutex<Vec<Arc<Beat>>>,
    ready: Arc<Notify>,
}

impl Health {
    /// A new beat for a task that is about to start; it has `within` to
    /// report for the first time.
    pub fn register(&self, name: impl Into<String>, mailbox: bool, within: Duration) -> Arc<Beat> {
        let beat = Arc::new(Beat {
            name: name.into(),
            mailbox,
            inner: Mutex::new(BeatState {
                due: Instant::now() + within,
                state: TaskState::Starting,
                ready: false,
                reported: false,
            }),
            ready: self.ready.clone(),
        });
        self.beats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(beat.clone());
        beat
    }

    fn beats(&self) -> Vec<Arc<Beat>> {
        self.beats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True once every task has reported itself running.
    pub fn all_ready(&self) -> bool {
        self.beats().iter().all(|b| b.lock().ready)
    }

    /// The tasks that overran their word at `now`, with how long ago they
    /// should have beaten. Each overrun is logged once.
    pub fn overdue(&self, now: Instant) -> Vec<(String, Duration)> {
        let mut late = Vec::new();
        for beat in self.beats() {
            let mut s = beat.lock();
            if now > s.due {
                let by = now - s.due;
                if !s.reported {
                    tracing::error!(
                        task = beat.name,
                        overdue_secs = by.as_secs(),
                        "no progress: the task overran its step; withholding the watchdog ping"
                    );
                    s.reported = true;
                }
                late.push((beat.name.clone(), by));
            }
        }
        late
    }

    /// The status line: mailboxes by state, plus `extra` (the outbox).
    pub fn status(&self, extra: &str) -> String {
        let beats = self.beats();
        let count = |state: TaskState| {
            beats
                .iter()
                .filter(|b| b.mailbox && b.lock().state == state)
                .count()
        };
        let plural = |n: usize| if n == 1 { "mailbox" } else { "mailboxes" };
        let mut parts = Vec::new();
        let watching = count(TaskState::Watching);
        parts.push(format!("{watching} {} watched", plural(watching)));
        for (state, what) in [
            (TaskState::Starting, "connecting"),
            (
                TaskState::StandingBy,
                "standing by (another process holds it)",
            ),
            (TaskState::Retrying, "retrying after a failure"),
        ] {
            let n = count(state);
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        format!("{}, {extra}", parts.join(", "))
    }
}

/// Sends systemd what the beats prove. Does nothing without `NOTIFY_SOCKET`.
pub struct Supervisor {
    health: Arc<Health>,
    /// Half of `WATCHDOG_USEC`, when systemd watches us.
    watchdog: Option<Duration>,
    last_status: String,
    sent_ready: bool,
}

impl Supervisor {
    pub fn new(health: Arc<Health>) -> Supervisor {
        Supervisor {
            health,
            watchdog: crate::notify::watchdog_interval(),
            last_status: String::new(),
            sent_ready: false,
        }
    }

    /// Whether systemd listens at all.
    pub fn enabled() -> bool {
        std::env::var_os("NOTIFY_SOCKET").is_some()
    }

    /// Runs until dropped: `READY=1` once every task is running, then a
    /// watchdog ping every half `WATCHDOG_USEC` while no task overran its
    /// word, and the status line whenever it changes. `outbox` gives the
    /// outbox part of the status line.
    pub async fn run<F, Fut>(mut self, mut outbox: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = String>,
    {
        let tick = self
            .watchdog
            .unwrap_or(Duration::from_secs(10))
            .min(Duration::from_secs(10));
        let ready = self.health.ready.clone();
        loop {
            // Before READY, systemd's start timeout watches, not the watchdog.
            if self.sent_ready {
                if self.watchdog.is_some() && self.health.overdue(Instant::now()).is_empty() {
                    notify("WATCHDOG=1");
                }
                self.send_status(&outbox().await, false);
            } else if self.health.all_ready() {
                self.send_status(&outbox().await, true);
                self.sent_ready = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {},
                _ = ready.notified(), if !self.sent_ready => {},
            }
        }
    }

    fn send_status(&mut self, extra: &str, ready: bool) {
        let status = self.health.status(extra);
        if ready {
            notify(&format!("READY=1\nSTATUS={status}"));
        } else if status != self.last_status {
            notify(&format!("STATUS={status}"));
        }
        self.last_status = status;
    }
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=stopping: finishing the messages in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_task_that_overruns_its_word_is_overdue_until_it_beats_again() {
        let health = Health::default();
        let beat = health.register("imap a", true, Duration::from_secs(5));
        assert!(!health.all_ready());
        beat.report(TaskState::Watching, Duration::from_secs(10));
        assert!(health.all_ready());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(health.overdue(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_secs(2)).await;
        let late = health.overdue(Instant::now());
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].0, "imap a");
        beat.alive(Duration::from_secs(10));
        assert!(health.overdue(Instant::now()).is_empty());
    }

    #[test]
    fn status_counts_mailboxes_by_state() {
        let health = Health::default();
        let a = health.register("imap a", true, Duration::from_secs(5));
        let b = health.register("imap b", true, Duration::from_secs(5));
        let _sender = health.register("outbox", false, Duration::from_secs(5));
        a.report(TaskState::Watching, Duration::from_secs(5));
        b.report(TaskState::Watching, Duration::from_secs(5));
        assert_eq!(
            health.status("outbox 0 queued"),
            "2 mailboxes watched, outbox 0 queued"
        );
        b.report(TaskState::Retrying, Duration::from_secs(5));
        assert_eq!(
            health.status("outbox 3 queued"),
            "1 mailbox watched, 1 retrying after a failure, outbox 3 queued"
        );
    }
}
