//! One raw message through parse, triage, reply rendering and store, ending in
//! exactly one intake record, written in the same transaction as the ticket
//! and the queued reply.
//!
//! The pipeline decides nothing itself (triage does) and touches no mail
//! server (sources and the outbox do). It tells its caller where the message
//! should go afterwards: to the processed folder or to quarantine.
//!
//! A panic while reading or sorting a message sends it to quarantine, one
//! while rendering its reply leaves it unanswered; either way the intake
//! record says so, and the daemon carries on with the next message.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::config::Config;
use crate::domain::{Language, Notice, Outcome};
use crate::mail::{self, InboundMail, ParseError};
use crate::registry::Registry;
use crate::reply::{OutgoingReply, Replier, ReplyError, ReplyRequest};
use crate::store::{IntakeRecord, NewOutboxEntry, Store, StoreError, ThreadMessage, Tx};
use crate::triage::model::Model;
use crate::triage::{
    self, Decision, Facts, Followup, Limits, NewTicket, Rules, Silence, SuppressReason, TicketRef,
    TriageContext,
};

/// Messages committed together (see [`Pipeline::process_batch`]): enough to
/// share one disk flush among many, few enough that a transaction holds the
/// database only briefly.
pub const MESSAGES_PER_TRANSACTION: usize = 32;

/// Where the source should put a message once the pipeline is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Processed,
    Quarantine,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub disposition: Disposition,
    pub outcome: Outcome,
    pub ticket: Option<String>,
    /// True when a reply was queued.
    pub replied: bool,
    /// The message's Message-ID (`None`: it was recorded by an earlier run).
    pub message_id: Option<String>,
    /// How a new ticket was sorted (for the metrics).
    pub sorted: Option<SortedTicket>,
    /// How long reading, sorting and storing it took, in seconds.
    pub seconds: f64,
}

/// How a new ticket was sorted, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SortedTicket {
    pub category: crate::domain::Category,
    pub chargeable: Option<crate::domain::ChargeReason>,
    pub priority: crate::domain::Priority,
    pub confidence: f32,
}

impl Processed {
    /// What happened, nothing replied yet; a quarantined message goes to
    /// quarantine, every other one to the processed folder.
    fn new(outcome: Outcome, ticket: Option<String>, message_id: Option<String>) -> Processed {
        let disposition = if outcome == Outcome::Quarantined {
            Disposition::Quarantine
        } else {
            Disposition::Processed
        };
        Processed {
            disposition,
            outcome,
            ticket,
            replied: false,
            message_id,
            sorted: None,
            seconds: 0.0,
        }
    }
}

/// One raw message and where it came from.
#[derive(Debug, Clone)]
pub struct RawMessage<'a> {
    pub bytes: &'a [u8],
    /// `imap`, `maildir` or `stdin`.
    pub source: &'static str,
    /// A stable name of the message's place in its source (mailbox,
    /// UIDVALIDITY and UID; or the Maildir file), so a re-read is recognised.
    pub source_key: Option<String>,
    /// The full size, when the message was too large and `bytes` holds only its header.
    pub oversized: Option<u64>,
}

/// Everything needed to process messages; built once at start-up.
pub struct Pipeline {
    store: Store,
    rules: Rules,
    /// The trained sorting model in use (see [`Pipeline::refresh_model`]).
    model: std::sync::RwLock<InUse>,
    /// True when `[triage] model_file` names the model: then the desk's
    /// stored models are not looked at.
    model_pinned: bool,
    /// When the store was last asked which model is in use.
    model_checked: std::sync::Mutex<Option<std::time::Instant>>,
    replier: Replier,
    support_address: String,
    default_language: Language,
    change_requests_chargeable: bool,
    ticket_prefix: String,
    limits: Limits,
    /// The authserv-id whose `Authentication-Results` must vouch for registered senders.
    require_aligned_auth: Option<String>,
    /// Finds the ticket token, e.g. `[CS-000123]`, in a subject.
    token: regex::Regex,
}

/// The model a pipeline sorts with: a stored model's id (`None` for the
/// built-in one or `[triage] model_file`) and the model itself.
#[derive(Clone, Default)]
struct InUse {
    id: Option<i64>,
    model: Option<Arc<Model>>,
}

/// How often a daemon asks the store whether another model was put in use.
const MODEL_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

impl Pipeline {
    /// Builds the pipeline from the configuration.
    ///
    /// # Errors
    ///
    /// When the rules or templates cannot be loaded.
    pub fn new(config: &Config, store: Store) -> anyhow::Result<Pipeline> {
        let crate::learn::Sorting { rules, model } = crate::learn::Sorting::load(
            config.triage.rules_file.as_deref(),
            config.triage.model_file.as_deref(),
        )?;
        store.set_sla_policy(config.sla.clone());
        let from = config.reply_from();
        let replier = Replier::new(
            &from,
            &config.support.desk_name,
            &config.support.address,
            config.support.templates_dir.as_deref(),
        )?;
        Ok(Pipeline {
            store,
            rules,
            model: std::sync::RwLock::new(InUse {
                id: None,
                model: model.map(Arc::new),
            }),
            model_pinned: config.triage.model_file.is_some(),
            model_checked: std::sync::Mutex::new(None),
            replier,
            support_address: config.support.address.clone(),
            default_language: config.support.default_language,
            change_requests_chargeable: config.triage.change_requests_chargeable,
            ticket_prefix: config.support.ticket_prefix.clone(),
            limits: config.limits.clone(),
            require_aligned_auth: config
                .security
                .require_aligned_auth
                .then(|| config.security.authserv_id.clone()),
            token: regex::Regex::new(&format!(
                r"(?i)\[({}-\d{{6,}})\]",
                regex::escape(&config.support.ticket_prefix)
            ))?,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Switches to the model the desk put in use (`servicedesk model
    /// train|use`, or the daemon's own retraining), if it changed: asks the
    /// store at most every few seconds; never with `[triage] model_file`.
    /// A stored model that cannot be read is logged and the current one kept.
    ///
    /// # Errors
    ///
    /// On database failure.
    pub async fn refresh_model(&self) -> Result<(), StoreError> {
        if self.model_pinned {
            return Ok(());
        }
        {
            let mut checked = self.model_checked.lock().unwrap_or_else(|e| e.into_inner());
            if checked.is_some_and(|at| at.elapsed() < MODEL_CHECK) {
                return Ok(());
            }
            *checked = Some(std::time::Instant::now());
        }
        let wanted = self.store.active_model_id().await?;
        let current = self.model.read().unwrap_or_else(|e| e.into_inner()).id;
        if wanted == current {
            return Ok(());
        }
        let loaded = match wanted {
            Some(id) => {
                let bytes = self.store.model_bytes(id).await?;
                crate::models::from_stored(id, &bytes).map_err(|e| format!("{e:#}"))
            }
            None => crate::triage::model::load(None)
                .map_err(|e| e.to_string())
                .and_then(|m| m.ok_or_else(|| "no built-in model".to_string())),
        };
        match loaded {
            Ok(m) => {
                tracing::info!(
                    model = wanted.map_or_else(|| "built-in".to_string(), |id| id.to_string()),
                    "sorting with another model from now on"
                );
                *self.model.write().unwrap_or_else(|e| e.into_inner()) = InUse {
                    id: wanted,
                    model: Some(Arc::new(m)),
                };
            }
            Err(e) => {
                tracing::error!("{e}; sorting on with the model in use");
                // Not tried again until another model is put in use.
                self.model.write().unwrap_or_else(|e| e.into_inner()).id = wanted;
            }
        }
        Ok(())
    }

    /// Parses without storing anything.
    fn parse(&self, bytes: &[u8]) -> Result<InboundMail, QuarantineReason> {
        Ok(guard(Panicked::Reading, || mail::parse(bytes))??)
    }

    /// Looks up what triage needs to know about threads and the sender.
    ///
    /// This is the one place the decision meets the database: the facts are
    /// read inside the message's transaction (so a reply later in the same
    /// batch finds the ticket an earlier message opened), and handed to
    /// triage as plain values, which keeps triage a pure function that the
    /// `.eml` fixture tests can exercise without a database.
    async fn facts(&self, tx: &mut Tx, mail: &InboundMail) -> Result<Facts, StoreError> {
        let now = chrono::Utc::now();
        let mut ids: Vec<String> = mail.references.clone();
        ids.extend(mail.in_reply_to.iter().cloned());
        let thread = tx.ticket_for_messages(&ids).await?;
        let token = match self.token.captures(&mail.subject) {
            Some(c) => tx.ticket_ref(&c[1].to_ascii_uppercase()).await?,
            None => None,
        };
        let sender = mail.from.as_ref().map(|f| f.key()).unwrap_or_default();
        let day_ago = crate::store::stamp(now - chrono::Duration::hours(24));
        let window = crate::store::stamp(
            now - chrono::Duration::minutes(i64::from(self.limits.loop_window_minutes)),
        );
        let history = tx.sender_history(&sender, &day_ago, &window).await?;
        let answers_our_notice = thread.is_none() && tx.is_ticketless_reply(&ids).await?;
        let hour_ago = crate::store::stamp(now - chrono::Duration::hours(1));
        let no_ticket_replies_last_hour = tx.ticketless_replies_since(&hour_ago).await?;
        Ok(Facts {
            thread,
            token,
            history,
            answers_our_notice,
            no_ticket_replies_last_hour,
            now,
        })
    }

    /// Triage, with a panic caught.
    fn decide(
        &self,
        mail: &InboundMail,
        registry: &Registry,
        facts: &Facts,
    ) -> Result<Decision, Panicked> {
        let model = self
            .model
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .model
            .clone();
        let ctx = TriageContext {
            registry,
            rules: &self.rules,
            support_address: &self.support_address,
            default_language: self.default_language,
            change_requests_chargeable: self.change_requests_chargeable,
            model: model.as_deref(),
            limits: self.limits.clone(),
            require_aligned_auth: self.require_aligned_auth.as_deref(),
        };
        guard(Panicked::Sorting, || triage::triage(mail, &ctx, facts))
    }

    /// Renders a reply, with a panic caught.
    fn render(&self, req: &ReplyRequest<'_>) -> Result<OutgoingReply, NoReply> {
        self.render_with_target(req, None)
    }

    /// [`Pipeline::render`] stating the ticket's first-response target.
    fn render_with_target(
        &self,
        req: &ReplyRequest<'_>,
        response_minutes: Option<i64>,
    ) -> Result<OutgoingReply, NoReply> {
        Ok(guard(Panicked::Rendering, || {
            self.replier.render_with_target(req, response_minutes)
        })??)
    }

    /// Processes one message completely: after `Ok`, its intake record (and
    /// ticket and reply, if any) are committed, and the source may move it.
    ///
    /// # Errors
    ///
    /// Only store failures: then nothing was written and the message must
    /// stay where it is, to be processed again later.
    pub async fn process(
        &self,
        raw: &RawMessage<'_>,
        registry: &Registry,
    ) -> Result<Processed, StoreError> {
        self.refresh_model().await?;
        let mut tx = self.store.begin(&self.ticket_prefix).await?;
        let p = match self.handle(&mut tx, raw, registry).await {
            Err(StoreError::Conflict(_)) => {
                // Another process recorded this Message-ID first: once more,
                // in a fresh transaction that sees its record (a duplicate).
                drop(tx);
                tx = self.store.begin(&self.ticket_prefix).await?;
                self.handle(&mut tx, raw, registry).await?
            }
            other => other?,
        };
        tx.commit().await?;
        log_processed(&p);
        Ok(p)
    }

    /// Processes several messages, in order, committing them together: one
    /// transaction (and one disk flush) for the lot, or for as many as came
    /// before an urgent write asked for its turn. Should a transaction fail,
    /// the rest are processed one at a time. Every processed message is
    /// pushed onto `done` once committed.
    ///
    /// # Errors
    ///
    /// Only store failures: then `done` holds the messages committed before
    /// it (a prefix of `raws`) and the rest must stay where they are.
    pub async fn process_batch(
        &self,
        raws: &[RawMessage<'_>],
        registry: &Registry,
        done: &mut Vec<Processed>,
    ) -> Result<(), StoreError> {
        self.refresh_model().await?;
        let mut rest = raws;
        while rest.len() > 1 {
            match self.process_together(rest, registry).await {
                Ok(all) => {
                    all.iter().for_each(log_processed);
                    rest = &rest[all.len()..];
                    done.extend(all);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "batch not committed; one message at a time");
                    break;
                }
            }
        }
        for raw in rest {
            done.push(self.process(raw, registry).await?);
        }
        Ok(())
    }

    /// Processes a prefix of `raws` (at least one message) in one
    /// transaction and returns what it committed. It commits early when an
    /// urgent write waits (the record that a reply went out).
    async fn process_together(
        &self,
        raws: &[RawMessage<'_>],
        registry: &Registry,
    ) -> Result<Vec<Processed>, StoreError> {
        let mut tx = self.store.begin(&self.ticket_prefix).await?;
        let mut all = Vec::with_capacity(raws.len());
        for raw in raws {
            all.push(self.handle(&mut tx, raw, registry).await?);
            if self.store.urgent_write_waiting() {
                break;
            }
        }
        tx.commit().await?;
        Ok(all)
    }

    /// Everything for one message inside `tx`: later messages of the same
    /// transaction see what earlier ones wrote (a reply in the same batch
    /// finds its ticket).
    async fn handle(
        &self,
        tx: &mut Tx,
        raw: &RawMessage<'_>,
        registry: &Registry,
    ) -> Result<Processed, StoreError> {
        let started = std::time::Instant::now();
        let mut p = self.handle_one(tx, raw, registry).await?;
        p.seconds = started.elapsed().as_secs_f64();
        Ok(p)
    }

    async fn handle_one(
        &self,
        tx: &mut Tx,
        raw: &RawMessage<'_>,
        registry: &Registry,
    ) -> Result<Processed, StoreError> {
        if let Some(key) = &raw.source_key {
            if let Some((outcome, ticket)) = tx.source_outcome(key).await? {
                // Recorded before a crash or a failed move: only the move is left.
                return Ok(Processed::new(outcome, ticket, None));
            }
        }
        let mut mail = match self.parse(raw.bytes) {
            Ok(mail) => mail,
            Err(reason) => return quarantine(tx, raw, &reason).await,
        };
        mail.truncated_from = raw.oversized;
        let facts = self.facts(tx, &mail).await?;
        let decision = match self.decide(&mail, registry, &facts) {
            Ok(d) => d,
            Err(panic) => return quarantine(tx, raw, &panic.into()).await,
        };
        let intake = Intake {
            raw,
            mail: &mail,
            from: sender_of(&mail),
        };
        self.record(tx, &intake, &decision).await
    }

    /// Writes what the decision means: ticket, thread, reply, intake record.
    async fn record(
        &self,
        tx: &mut Tx,
        msg: &Intake<'_>,
        decision: &Decision,
    ) -> Result<Processed, StoreError> {
        if tx.first_sighting(&msg.mail.message_id).await?.is_some() {
            return duplicate(tx, msg).await;
        }
        match decision {
            Decision::Suppress(reason) => suppressed(tx, msg, reason).await,
            Decision::Followup(f) => followup(tx, msg, f).await,
            Decision::Unregistered {
                sender,
                sender_name,
                language,
                notice,
                silence,
            } => {
                let request = ReplyRequest {
                    notice: *notice,
                    language: *language,
                    ticket: None,
                    inbound: msg.mail,
                    recipient: sender,
                    name: sender_name,
                    customer: None,
                    category: None,
                    reason: None,
                };
                self.unregistered(tx, msg, &request, *silence).await
            }
            Decision::Ticket(t) => self.ticket(tx, msg, t).await,
        }
    }

    /// Not a registered reference person: no ticket, and an explanation
    /// unless `silence` says why not.
    async fn unregistered(
        &self,
        tx: &mut Tx,
        msg: &Intake<'_>,
        request: &ReplyRequest<'_>,
        silence: Option<Silence>,
    ) -> Result<Processed, StoreError> {
        let reply = match silence {
            Some(silence) => {
                tracing::debug!(
                    sender = request.recipient,
                    reason = silence.describe(),
                    "no explanation sent"
                );
                Err(NoReply::Silence(silence))
            }
            None => self.render(request),
        };
        let (detail, replied) = match reply {
            Ok(out) => {
                queue_reply(tx, None, request.notice, &out).await?;
                let detail = format!(
                    "not a registered reference person; {} reply queued ({})",
                    request.notice.as_str(),
                    request.language
                );
                (detail, true)
            }
            Err(e) => (
                format!("not a registered reference person; no reply: {e}"),
                false,
            ),
        };
        let processed = msg
            .record_intake(tx, Outcome::Unregistered, None, &detail)
            .await?;
        Ok(Processed {
            replied,
            ..processed
        })
    }

    /// A registered person's new request: a ticket, acknowledged unless the
    /// loop breaker holds acknowledgements back.
    async fn ticket(
        &self,
        tx: &mut Tx,
        msg: &Intake<'_>,
        t: &NewTicket,
    ) -> Result<Processed, StoreError> {
        let (ticket_id, number) = tx.insert_ticket(t, &msg.mail.subject).await?;
        let message = tx.add_message(ticket_id, &msg.thread_message("in")).await?;
        tx.add_attachments(message, &msg.mail.attachments).await?;
        if let Some(reason) = &t.attention {
            if !t.send_notice {
                tx.flag_address(&t.sender, "loop_breaker", reason).await?;
            }
        }
        let response_target = tx.response_target(ticket_id).await?;
        let reply = if t.send_notice {
            self.render_with_target(
                &ReplyRequest {
                    notice: t.notice,
                    language: t.language,
                    ticket: Some(&number),
                    inbound: msg.mail,
                    recipient: &t.sender,
                    name: &t.sender_name,
                    customer: Some(&t.customer),
                    category: Some(t.category),
                    reason: t.chargeable,
                },
                response_target,
            )
        } else {
            Err(NoReply::LoopBreaker)
        };
        let sorted = match t.chargeable {
            Some(r) => format!("{}, chargeable: {}", t.category.as_str(), r.as_str()),
            None => t.category.as_str().to_string(),
        };
        let (detail, replied) = match reply {
            Ok(out) => {
                queue_reply(tx, Some((ticket_id, &number)), t.notice, &out).await?;
                (
                    format!("{sorted}; {} reply queued", t.notice.as_str()),
                    true,
                )
            }
            Err(e) => (format!("{sorted}; no reply: {e}"), false),
        };
        let processed = msg
            .record_intake(tx, Outcome::Ticket, Some(number), &detail)
            .await?;
        Ok(Processed {
            replied,
            sorted: Some(SortedTicket {
                category: t.category,
                chargeable: t.chargeable,
                priority: t.priority,
                confidence: t.evidence.confidence,
            }),
            ..processed
        })
    }
}

/// One message read and sorted, on its way into the store.
struct Intake<'a> {
    raw: &'a RawMessage<'a>,
    mail: &'a InboundMail,
    /// The sender's address (empty without one).
    from: String,
}

impl Intake<'_> {
    /// Writes the message's intake record (the last write for each message)
    /// and says what became of the message.
    async fn record_intake(
        &self,
        tx: &mut Tx,
        outcome: Outcome,
        ticket: Option<String>,
        detail: &str,
    ) -> Result<Processed, StoreError> {
        tx.record_intake(&IntakeRecord {
            message_id: &self.mail.message_id,
            from: &self.from,
            subject: &self.mail.subject,
            outcome,
            ticket: ticket.as_deref(),
            detail,
            source: self.raw.source,
            source_key: self.raw.source_key.as_deref(),
            raw: None,
        })
        .await?;
        Ok(Processed::new(
            outcome,
            ticket,
            Some(self.mail.message_id.clone()),
        ))
    }

    /// The message as it joins a ticket's thread.
    fn thread_message<'m>(&'m self, direction: &'m str) -> ThreadMessage<'m> {
        ThreadMessage {
            direction,
            message_id: &self.mail.message_id,
            from: &self.from,
            subject: &self.mail.subject,
            body: &self.mail.text,
            outsider: false,
            html: self.mail.html.as_deref(),
        }
    }
}

/// A message that cannot go through triage: recorded with its raw bytes
/// for an agent, and moved to quarantine.
async fn quarantine(
    tx: &mut Tx,
    raw: &RawMessage<'_>,
    reason: &QuarantineReason,
) -> Result<Processed, StoreError> {
    let message_id = mail::fallback_message_id(raw.bytes);
    let detail = reason.to_string();
    tx.record_intake(&IntakeRecord {
        message_id: &message_id,
        from: "",
        subject: "",
        outcome: Outcome::Quarantined,
        ticket: None,
        detail: &detail,
        source: raw.source,
        source_key: raw.source_key.as_deref(),
        raw: Some(raw.bytes),
    })
    .await?;
    tracing::warn!(
        source = raw.source,
        reason = detail.as_str(),
        "message quarantined"
    );
    Ok(Processed::new(Outcome::Quarantined, None, Some(message_id)))
}

/// A Message-ID recorded before (another copy, or the same mail in another
/// mailbox): recorded again, pointing at the first one's ticket; nothing else.
async fn duplicate(tx: &mut Tx, msg: &Intake<'_>) -> Result<Processed, StoreError> {
    let ticket = tx.first_sighting(&msg.mail.message_id).await?.flatten();
    let detail = match &ticket {
        Some(t) => format!("already seen, on ticket {t}"),
        None => "already seen".to_string(),
    };
    msg.record_intake(tx, Outcome::Duplicate, ticket, &detail)
        .await
}

/// Automated mail: never answered. A bounce of one of our replies is kept
/// on that reply's ticket, and the address that could not be reached is
/// flagged.
async fn suppressed(
    tx: &mut Tx,
    msg: &Intake<'_>,
    reason: &SuppressReason,
) -> Result<Processed, StoreError> {
    let Some(bounce) = &msg.mail.bounce else {
        let detail = format!("automated mail ({}); no reply", reason.as_str());
        return msg
            .record_intake(tx, Outcome::Suppressed, None, &detail)
            .await;
    };
    let ticket = record_bounce(tx, msg, bounce).await?.map(|t| t.number);
    let whom = if bounce.recipients.is_empty() {
        String::new()
    } else {
        format!(" for {}", bounce.recipients.join(", "))
    };
    let on = ticket
        .as_ref()
        .map(|t| format!(" of a reply on {t}"))
        .unwrap_or_default();
    let detail = format!("delivery failure{whom}{on}; no reply");
    msg.record_intake(tx, Outcome::Suppressed, ticket, &detail)
        .await
}

/// Records a bounce on the ticket whose reply it returns, and flags the
/// addresses that could not be reached.
async fn record_bounce(
    tx: &mut Tx,
    msg: &Intake<'_>,
    bounce: &mail::Bounce,
) -> Result<Option<TicketRef>, StoreError> {
    let ticket = tx.ticket_for_messages(&bounce.original_ids).await?;
    let detail = match &ticket {
        Some(t) => format!("a reply on {} could not be delivered", t.number),
        None => "a reply could not be delivered".to_string(),
    };
    for address in &bounce.recipients {
        tx.flag_address(address, "bounced", &detail).await?;
    }
    if let Some(t) = &ticket {
        if let Some(id) = tx.ticket_id(&t.number).await? {
            tx.add_message(id, &msg.thread_message("bounce")).await?;
            tx.record_event(
                &t.number,
                "mail",
                "bounce",
                None,
                Some(&msg.mail.message_id),
            )
            .await?;
        }
    }
    Ok(ticket)
}

/// Part of an existing ticket's thread: kept on the ticket, whose status
/// or charge approval it may change; never answered.
async fn followup(tx: &mut Tx, msg: &Intake<'_>, f: &Followup) -> Result<Processed, StoreError> {
    let ticket_id = tx
        .apply_followup(f, &msg.from, &msg.mail.message_id)
        .await?;
    let mut message = msg.thread_message("in");
    message.outsider = f.outsider;
    let row = tx.add_message(ticket_id, &message).await?;
    tx.add_attachments(row, &msg.mail.attachments).await?;
    // In the audit trail too: the workspace's live updates read it.
    tx.record_event(
        &f.ticket,
        "mail",
        "inbound",
        None,
        Some(&msg.mail.message_id),
    )
    .await?;
    let detail = followup_detail(f);
    msg.record_intake(tx, Outcome::Followup, Some(f.ticket.clone()), &detail)
        .await
}

/// The intake `detail` of a follow-up: which ticket, how it was matched,
/// and what it changed.
fn followup_detail(f: &Followup) -> String {
    let mut detail = format!("follow-up on {} (by {})", f.ticket, f.matched_by);
    if f.outsider {
        detail.push_str(
            "; from an outsider (not a registered person of the ticket's customer): kept on the ticket, decides nothing, no reply",
        );
    }
    if let Some(s) = f.set_status {
        detail.push_str(&format!("; status {}", s.as_str()));
    }
    match (f.charge_approved, &f.charge_words) {
        (Some(true), Some(w)) => detail.push_str(&format!("; charge approved (\"{w}\")")),
        (Some(false), Some(w)) => detail.push_str(&format!("; charge refused (\"{w}\")")),
        _ => {}
    }
    if let (Some(a), false) = (&f.attention, f.outsider) {
        detail.push_str(&format!("; {a}"));
    }
    detail
}

/// Why a message goes to quarantine instead of through triage; the text is
/// its intake record's `detail`.
#[derive(Debug, thiserror::Error)]
enum QuarantineReason {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Panic(#[from] Panicked),
}

/// Why a message gets no reply; the text ends its intake record's `detail`.
#[derive(Debug, thiserror::Error)]
enum NoReply {
    /// An unregistered sender who gets no explanation.
    #[error("{}", .0.describe())]
    Silence(Silence),
    /// Acknowledgements to an address that looks like a robot are paused.
    #[error("acknowledgements paused by the loop breaker")]
    LoopBreaker,
    /// A template or the recipient's address failed.
    #[error(transparent)]
    Reply(#[from] ReplyError),
    #[error(transparent)]
    Panic(#[from] Panicked),
}

/// A panic caught in one step of one message (see [`guard`]), with its text.
#[derive(Debug, thiserror::Error)]
enum Panicked {
    #[error("internal error while reading: {0}")]
    Reading(String),
    #[error("internal error while sorting: {0}")]
    Sorting(String),
    #[error("internal error while rendering: {0}")]
    Rendering(String),
}

/// Runs one step of one message, turning a panic into an error that the
/// message's intake record tells (`step` says which step it was), so one
/// bad message cannot stop the daemon.
fn guard<T>(step: fn(String) -> Panicked, f: impl FnOnce() -> T) -> Result<T, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| step(panic_text(&panic)))
}

/// Queues a rendered reply for the outbox and, when it belongs to a ticket
/// (its id and number), adds it to the ticket's thread.
pub(crate) async fn queue_reply(
    tx: &mut Tx,
    ticket: Option<(i64, &str)>,
    notice: Notice,
    out: &OutgoingReply,
) -> Result<(), StoreError> {
    tx.queue_reply(&NewOutboxEntry {
        ticket: ticket.map(|(_, number)| number),
        notice: notice.as_str(),
        message_id: &out.message_id,
        in_reply_to: &out.in_reply_to,
        envelope_from: &out.envelope_from,
        recipient: &out.recipient,
        raw: &out.raw,
    })
    .await?;
    if let Some((id, _)) = ticket {
        tx.add_message(
            id,
            &ThreadMessage {
                direction: "out",
                message_id: &out.message_id,
                from: &out.envelope_from,
                subject: &out.subject,
                body: &out.body,
                outsider: false,
                html: None,
            },
        )
        .await?;
    }
    Ok(())
}

fn log_processed(p: &Processed) {
    crate::metrics::processed(p);
    if let Some(message_id) = &p.message_id {
        tracing::info!(
            message_id,
            outcome = p.outcome.as_str(),
            ticket = p.ticket.as_deref().unwrap_or(""),
            "message processed"
        );
    }
}

fn sender_of(mail: &InboundMail) -> String {
    mail.from
        .as_ref()
        .map(|f| f.address.clone())
        .unwrap_or_default()
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn why_texts_are_the_intake_details() {
        let panic = guard(Panicked::Sorting, || -> u32 { panic!("boom") }).unwrap_err();
        assert_eq!(panic.to_string(), "internal error while sorting: boom");
        let owned = guard(Panicked::Reading, || panic!("{}", "bad header".to_string()));
        assert_eq!(
            QuarantineReason::from(owned.unwrap_err()).to_string(),
            "internal error while reading: bad header"
        );
        assert_eq!(
            NoReply::LoopBreaker.to_string(),
            "acknowledgements paused by the loop breaker"
        );
        assert_eq!(
            NoReply::Silence(Silence::AnswersOurNotice).to_string(),
            Silence::AnswersOurNotice.describe()
        );
        assert_eq!(guard(Panicked::Rendering, || 7).unwrap(), 7);
    }
}
