//! One raw message through parse, triage, reply rendering and store, ending in
//! exactly one intake record, written in the same transaction as the ticket
//! and the queued reply.
//!
//! The pipeline decides nothing itself (triage does) and touches no mail
//! server (sources and the outbox do). It tells its caller where the message
//! should go afterwards: to the processed folder or to quarantine.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::config::Config;
use crate::mail::{self, InboundMail};
use crate::registry::Registry;
use crate::reply::{OutgoingReply, Replier, ReplyRequest};
use crate::store::{IntakeRecord, NewOutboxEntry, Outcome, Store, StoreError, ThreadMessage, Tx};
use crate::triage::model::Model;
use crate::triage::{
    self, Decision, Facts, Language, Limits, Notice, Rules, TicketRef, TriageContext,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub disposition: Disposition,
    pub outcome: Outcome,
    pub ticket: Option<String>,
    /// True when a reply was queued.
    pub replied: bool,
    /// The message's Message-ID (`None`: it was recorded by an earlier run).
    pub message_id: Option<String>,
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
    /// The trained sorting model, if one is configured or built in.
    model: Option<Model>,
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
        let from = config
            .smtp
            .as_ref()
            .map(|s| s.from.clone())
            .or_else(|| config.file_transport.as_ref().map(|f| f.from.clone()))
            .unwrap_or_else(|| {
                format!("{} <{}>", config.support.desk_name, config.support.address)
            });
        let replier = Replier::new(
            &from,
            &config.support.desk_name,
            &config.support.address,
            config.support.templates_dir.as_deref(),
        )?;
        Ok(Pipeline {
            store,
            rules,
            model,
            replier,
            support_address: config.support.address.clone(),
            default_language: Language::parse(&config.support.default_language)
                .unwrap_or(Language::Nl),
            change_requests_chargeable: config.triage.change_requests_chargeable,
            ticket_prefix: config.support.ticket_prefix.clone(),
            limits: config.limits.triage.clone(),
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

    /// Parses without storing anything; a panic becomes an error message.
    fn parse(&self, bytes: &[u8]) -> Result<InboundMail, String> {
        match catch_unwind(AssertUnwindSafe(|| mail::parse(bytes))) {
            Ok(Ok(mail)) => Ok(mail),
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(format!(
                "internal error while reading: {}",
                panic_text(&panic)
            )),
        }
    }

    /// Looks up what triage needs to know about threads and the sender.
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

    /// Triage, with a panic turned into an error message.
    fn decide(
        &self,
        mail: &InboundMail,
        registry: &Registry,
        facts: &Facts,
    ) -> Result<Decision, String> {
        let ctx = TriageContext {
            registry,
            rules: &self.rules,
            support_address: &self.support_address,
            default_language: self.default_language,
            change_requests_chargeable: self.change_requests_chargeable,
            model: self.model.as_ref(),
            limits: self.limits.clone(),
            require_aligned_auth: self.require_aligned_auth.as_deref(),
        };
        catch_unwind(AssertUnwindSafe(|| triage::triage(mail, &ctx, facts)))
            .map_err(|panic| format!("internal error while sorting: {}", panic_text(&panic)))
    }

    fn render(&self, req: &ReplyRequest<'_>) -> Result<OutgoingReply, String> {
        match catch_unwind(AssertUnwindSafe(|| self.replier.render(req))) {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(format!(
                "internal error while rendering: {}",
                panic_text(&panic)
            )),
        }
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
        if let Some(key) = &raw.source_key {
            if let Some((outcome, ticket)) = tx.source_outcome(key).await? {
                // Recorded before a crash or a failed move: only the move is left.
                let disposition = if outcome == Outcome::Quarantined {
                    Disposition::Quarantine
                } else {
                    Disposition::Processed
                };
                return Ok(Processed {
                    disposition,
                    outcome,
                    ticket,
                    replied: false,
                    message_id: None,
                });
            }
        }
        let mut mail = match self.parse(raw.bytes) {
            Ok(mail) => mail,
            Err(reason) => return self.quarantine(tx, raw, &reason).await,
        };
        mail.truncated_from = raw.oversized;
        let facts = self.facts(tx, &mail).await?;
        let decision = match self.decide(&mail, registry, &facts) {
            Ok(d) => d,
            Err(reason) => return self.quarantine(tx, raw, &reason).await,
        };
        self.record(tx, raw, &mail, &decision).await
    }

    async fn quarantine(
        &self,
        tx: &mut Tx,
        raw: &RawMessage<'_>,
        reason: &str,
    ) -> Result<Processed, StoreError> {
        let message_id = mail::fallback_message_id(raw.bytes);
        tx.record_intake(&IntakeRecord {
            message_id: &message_id,
            from: "",
            subject: "",
            outcome: Outcome::Quarantined,
            ticket: None,
            detail: reason,
            source: raw.source,
            source_key: raw.source_key.as_deref(),
            raw: Some(raw.bytes),
        })
        .await?;
        tracing::warn!(source = raw.source, reason, "message quarantined");
        Ok(Processed {
            disposition: Disposition::Quarantine,
            outcome: Outcome::Quarantined,
            ticket: None,
            replied: false,
            message_id: Some(message_id),
        })
    }

    async fn duplicate(
        &self,
        tx: &mut Tx,
        raw: &RawMessage<'_>,
        mail: &InboundMail,
    ) -> Result<Processed, StoreError> {
        let first = tx.first_sighting(&mail.message_id).await?;
        let ticket = first.flatten();
        let detail = match &ticket {
            Some(t) => format!("already seen, on ticket {t}"),
            None => "already seen".to_string(),
        };
        tx.record_intake(&IntakeRecord {
            message_id: &mail.message_id,
            from: &sender_of(mail),
            subject: &mail.subject,
            outcome: Outcome::Duplicate,
            ticket: ticket.as_deref(),
            detail: &detail,
            source: raw.source,
            source_key: raw.source_key.as_deref(),
            raw: None,
        })
        .await?;
        Ok(Processed {
            disposition: Disposition::Processed,
            outcome: Outcome::Duplicate,
            ticket,
            replied: false,
            message_id: Some(mail.message_id.clone()),
        })
    }

    /// Writes what the decision means: ticket, thread, reply, intake record.
    async fn record(
        &self,
        tx: &mut Tx,
        raw: &RawMessage<'_>,
        mail: &InboundMail,
        decision: &Decision,
    ) -> Result<Processed, StoreError> {
        if tx.first_sighting(&mail.message_id).await?.is_some() {
            return self.duplicate(tx, raw, mail).await;
        }
        let from = sender_of(mail);
        fn intake<'a>(
            raw: &'a RawMessage<'_>,
            mail: &'a InboundMail,
            from: &'a str,
            outcome: Outcome,
            ticket: Option<&'a str>,
            detail: &'a str,
        ) -> IntakeRecord<'a> {
            IntakeRecord {
                message_id: &mail.message_id,
                from,
                subject: &mail.subject,
                outcome,
                ticket,
                detail,
                source: raw.source,
                source_key: raw.source_key.as_deref(),
                raw: None,
            }
        }
        let processed = match decision {
            Decision::Suppress(reason) => {
                let mut detail = format!("automated mail ({}); no reply", reason.as_str());
                let mut ticket = None;
                if let Some(bounce) = &mail.bounce {
                    ticket = self.record_bounce(tx, mail, bounce).await?;
                    let whom = if bounce.recipients.is_empty() {
                        String::new()
                    } else {
                        format!(" for {}", bounce.recipients.join(", "))
                    };
                    let on = ticket
                        .as_ref()
                        .map(|t: &TicketRef| format!(" of a reply on {}", t.number))
                        .unwrap_or_default();
                    detail = format!("delivery failure{whom}{on}; no reply");
                }
                let number = ticket.map(|t| t.number);
                tx.record_intake(&intake(
                    raw,
                    mail,
                    &from,
                    Outcome::Suppressed,
                    number.as_deref(),
                    &detail,
                ))
                .await?;
                Processed {
                    disposition: Disposition::Processed,
                    outcome: Outcome::Suppressed,
                    ticket: number,
                    replied: false,
                    message_id: Some(mail.message_id.clone()),
                }
            }
            Decision::Followup(f) => {
                let ticket_id = tx.apply_followup(f, &from, &mail.message_id).await?;
                let mut message = received(mail, &from, "in");
                message.outsider = f.outsider;
                tx.add_message(ticket_id, &message).await?;
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
                    (Some(true), Some(w)) => {
                        detail.push_str(&format!("; charge approved (\"{w}\")"))
                    }
                    (Some(false), Some(w)) => {
                        detail.push_str(&format!("; charge refused (\"{w}\")"))
                    }
                    _ => {}
                }
                if let (Some(a), false) = (&f.attention, f.outsider) {
                    detail.push_str(&format!("; {a}"));
                }
                tx.record_intake(&intake(
                    raw,
                    mail,
                    &from,
                    Outcome::Followup,
                    Some(&f.ticket),
                    &detail,
                ))
                .await?;
                Processed {
                    disposition: Disposition::Processed,
                    outcome: Outcome::Followup,
                    ticket: Some(f.ticket.clone()),
                    replied: false,
                    message_id: Some(mail.message_id.clone()),
                }
            }
            Decision::Unregistered {
                sender,
                sender_name,
                language,
                notice,
                silence,
            } => {
                let (detail, replied) = match silence {
                    Some(silence) => {
                        tracing::debug!(sender, reason = silence.describe(), "no explanation sent");
                        (
                            format!(
                                "not a registered reference person; no reply: {}",
                                silence.describe()
                            ),
                            false,
                        )
                    }
                    None => match self.render(&ReplyRequest {
                        notice: *notice,
                        language: *language,
                        ticket: None,
                        inbound: mail,
                        recipient: sender,
                        name: sender_name,
                        customer: None,
                        category: None,
                        reason: None,
                    }) {
                        Ok(out) => {
                            queue(tx, None, *notice, &out).await?;
                            (
                                format!(
                                    "not a registered reference person; {} reply queued ({language})",
                                    notice.as_str()
                                ),
                                true,
                            )
                        }
                        Err(e) => (
                            format!("not a registered reference person; no reply: {e}"),
                            false,
                        ),
                    },
                };
                tx.record_intake(&intake(
                    raw,
                    mail,
                    &from,
                    Outcome::Unregistered,
                    None,
                    &detail,
                ))
                .await?;
                Processed {
                    disposition: Disposition::Processed,
                    outcome: Outcome::Unregistered,
                    ticket: None,
                    replied,
                    message_id: Some(mail.message_id.clone()),
                }
            }
            Decision::Ticket(t) => {
                let (ticket_id, number) = tx.insert_ticket(t, &mail.subject).await?;
                tx.add_message(ticket_id, &received(mail, &from, "in"))
                    .await?;
                if let Some(reason) = &t.attention {
                    if !t.send_notice {
                        tx.flag_address(&t.sender, "loop_breaker", reason).await?;
                    }
                }
                let reply = if t.send_notice {
                    self.render(&ReplyRequest {
                        notice: t.notice,
                        language: t.language,
                        ticket: Some(&number),
                        inbound: mail,
                        recipient: &t.sender,
                        name: &t.sender_name,
                        customer: Some(&t.customer),
                        category: Some(t.category),
                        reason: t.chargeable,
                    })
                } else {
                    Err("acknowledgements paused by the loop breaker".to_string())
                };
                let sorted = match t.chargeable {
                    Some(r) => format!("{}, chargeable: {}", t.category.as_str(), r.as_str()),
                    None => t.category.as_str().to_string(),
                };
                let (detail, replied) = match &reply {
                    Ok(out) => {
                        queue(tx, Some(&number), t.notice, out).await?;
                        tx.add_message(
                            ticket_id,
                            &ThreadMessage {
                                direction: "out",
                                message_id: &out.message_id,
                                from: &out.envelope_from,
                                subject: &out.subject,
                                body: &out.body,
                                outsider: false,
                            },
                        )
                        .await?;
                        (
                            format!("{sorted}; {} reply queued", t.notice.as_str()),
                            true,
                        )
                    }
                    Err(e) => (format!("{sorted}; no reply: {e}"), false),
                };
                tx.record_intake(&intake(
                    raw,
                    mail,
                    &from,
                    Outcome::Ticket,
                    Some(&number),
                    &detail,
                ))
                .await?;
                Processed {
                    disposition: Disposition::Processed,
                    outcome: Outcome::Ticket,
                    ticket: Some(number),
                    replied,
                    message_id: Some(mail.message_id.clone()),
                }
            }
        };
        Ok(processed)
    }
}

impl Pipeline {
    /// Records a bounce on the ticket whose reply it returns, and flags the
    /// addresses that could not be reached.
    async fn record_bounce(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
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
                let from = sender_of(mail);
                tx.add_message(id, &received(mail, &from, "bounce")).await?;
            }
        }
        Ok(ticket)
    }
}

async fn queue(
    tx: &mut Tx,
    ticket: Option<&str>,
    notice: Notice,
    out: &OutgoingReply,
) -> Result<(), StoreError> {
    tx.queue_reply(&NewOutboxEntry {
        ticket,
        notice: notice.as_str(),
        message_id: &out.message_id,
        in_reply_to: &out.in_reply_to,
        envelope_from: &out.envelope_from,
        recipient: &out.recipient,
        raw: &out.raw,
    })
    .await
}

/// A message the desk received, as it joins a ticket's thread.
fn received<'a>(mail: &'a InboundMail, from: &'a str, direction: &'a str) -> ThreadMessage<'a> {
    ThreadMessage {
        direction,
        message_id: &mail.message_id,
        from,
        subject: &mail.subject,
        body: &mail.text,
        outsider: false,
    }
}

fn log_processed(p: &Processed) {
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
