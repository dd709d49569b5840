//! servicedesk turns a service desk's support mailbox into pre-sorted tickets.
//!
//! Customers simply email support. The daemon recognises who wrote (only the
//! registered reference persons of paying customers are covered), sorts each
//! message into question, incident, change request or feedback, spots work that
//! is chargeable or out of contract scope, and answers at once in the sender's
//! language.
//!
//! # Layout
//!
//! Mail flows one way; each stage hands a plain value to the next:
//!
//! ```text
//! source (imap, maildir, stdin) -> mail -> triage (pure) -> store -> outbox -> smtp
//! ```
//!
//! * [`domain`]: the desk's vocabulary (languages, categories, statuses, ...).
//! * [`config`]: the TOML configuration, secrets, validation.
//! * [`source`]: where raw messages come from and where they go when done.
//! * [`mail`]: raw bytes to [`mail::InboundMail`]; no I/O.
//! * [`registry`]: customers and reference persons, CSV import, coverage check.
//! * [`contract`]: a customer's contract changes; on-hold tickets resume.
//! * [`triage`]: the pure decision: who wrote, what it is, what to answer.
//! * [`learn`]: the labelled corpus, `train` and the `eval` report.
//! * [`models`]: the desk's own model, trained on its corrections, kept and chosen.
//! * [`reply`]: a decision plus templates become outgoing messages.
//! * [`sla`]: business time, holidays, tiers and the SLA clock; pure.
//! * [`search`]: a search box's words, folded and stemmed; where a hit came from.
//! * [`store`]: one interface over SQLite and PostgreSQL.
//! * [`outbox`]: drains queued replies over SMTP (or to files), with retries.
//! * [`pipeline`]: one raw message through parse, triage, store, in one transaction.
//! * [`daemon`]: wires sources, pipeline and outbox; owns shutdown.
//! * [`lease`]: which process works on a mailbox, and who holds a lease or claim.
//! * [`health`]: what the daemon's tasks prove about their progress (watchdog, status).
//! * [`notify`]: systemd's notification socket.
//! * [`oauth`]: OAuth2 access tokens for mailboxes and SMTP, and `oauth login`.
//! * [`listing`]: how tickets, threads, intake and the outbox look in a terminal.
//! * [`doctor`]: `servicedesk doctor`, every part checked without changing anything.
//! * [`agents`]: the workspace's agents: password hashes, secrets, the role matrix.
//! * [`live`]: the audit trail and presence pushed to open workspace pages.
//! * [`web`]: the agents' workspace: pages and JSON API over the store.
//! * [`cli`]: subcommands to library calls and exit codes.
#![forbid(unsafe_code)]

pub mod agents;
pub mod cli;
pub mod config;
pub mod contract;
pub mod daemon;
pub mod demo;
pub mod doctor;
pub mod domain;
pub mod health;
pub mod learn;
pub mod lease;
pub mod listing;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod models;
pub mod notify;
pub mod oauth;
pub mod outbox;
pub mod pipeline;
pub mod registry;
pub mod reply;
pub mod search;
pub mod sla;
pub mod smtp;
pub mod source;
pub mod store;
pub mod tls;
pub mod triage;
pub mod web;
pub mod webhooks;
