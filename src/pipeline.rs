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
use crate::triage::{self, Decision, Language, Notice, Rules, TriageContext};

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
}

/// Everything needed to process messages; built once at start-up.
pub struct Pipeline {
    store: Store,
    rules: Rules,
    replier: Replier,
    support_address: String,
    default_language: Language,
    change_requests_chargeable: bool,
    ticket_prefix: String,
}

/// The outcome triage and rendering reached before anything is stored.
enum Plan {
    Quarantine(String),
    Decided(Box<InboundMail>, Decision),
}

impl Pipeline {
    /// Builds the pipeline from the configuration.
    ///
    /// # Errors
    ///
    /// When the rules or templates cannot be loaded.
    pub fn new(config: &Config, store: Store) -> anyhow::Result<Pipeline> {
        let rules = match &config.triage.rules_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("{}: cannot read the rules file ({e})", path.display())
                })?;
                Rules::parse(&path.display().to_string(), &text)?
            }
            None => Rules::builtin(),
        };
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
            replier,
            support_address: config.support.address.clone(),
            default_language: Language::parse(&config.support.default_language)
                .unwrap_or(Language::Nl),
            change_requests_chargeable: config.triage.change_requests_chargeable,
            ticket_prefix: config.support.ticket_prefix.clone(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Parses and triages without storing anything; a panic in either is
    /// caught and becomes a quarantine with its message.
    fn plan(&self, bytes: &[u8], registry: &Registry) -> Plan {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mail = mail::parse(bytes)?;
            let ctx = TriageContext {
                registry,
                rules: &self.rules,
                support_address: &self.support_address,
                default_language: self.default_language,
                change_requests_chargeable: self.change_requests_chargeable,
            };
            let decision = triage::triage(&mail, &ctx);
            Ok::<_, mail::ParseError>((mail, decision))
        }));
        match result {
            Ok(Ok((mail, decision))) => Plan::Decided(Box::new(mail), decision),
            Ok(Err(e)) => Plan::Quarantine(e.to_string()),
            Err(panic) => Plan::Quarantine(format!(
                "internal error while reading: {}",
                panic_text(&panic)
            )),
        }
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
        if let Some(key) = &raw.source_key {
            if let Some((outcome, ticket)) = self.store.source_outcome(key).await? {
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
                });
            }
        }
        let (mail, decision) = match self.plan(raw.bytes, registry) {
            Plan::Decided(mail, decision) => (mail, decision),
            Plan::Quarantine(reason) => return self.quarantine(raw, &reason).await,
        };
        match self.commit(raw, &mail, &decision).await {
            Err(StoreError::Conflict(_)) => {
                // Another process recorded this Message-ID first.
                self.duplicate(raw, &mail).await
            }
            other => other,
        }
    }

    async fn quarantine(
        &self,
        raw: &RawMessage<'_>,
        reason: &str,
    ) -> Result<Processed, StoreError> {
        let message_id = mail::fallback_message_id(raw.bytes);
        let mut tx = self.store.begin(&self.ticket_prefix).await?;
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
        tx.commit().await?;
        tracing::warn!(source = raw.source, reason, "message quarantined");
        Ok(Processed {
            disposition: Disposition::Quarantine,
            outcome: Outcome::Quarantined,
            ticket: None,
            replied: false,
        })
    }

    async fn duplicate(
        &self,
        raw: &RawMessage<'_>,
        mail: &InboundMail,
    ) -> Result<Processed, StoreError> {
        let first = self.store.first_sighting(&mail.message_id).await?;
        let ticket = first.flatten();
        let detail = match &ticket {
            Some(t) => format!("already seen, on ticket {t}"),
            None => "already seen".to_string(),
        };
        let mut tx = self.store.begin(&self.ticket_prefix).await?;
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
        tx.commit().await?;
        Ok(Processed {
            disposition: Disposition::Processed,
            outcome: Outcome::Duplicate,
            ticket,
            replied: false,
        })
    }

    async fn commit(
        &self,
        raw: &RawMessage<'_>,
        mail: &InboundMail,
        decision: &Decision,
    ) -> Result<Processed, StoreError> {
        if self.store.first_sighting(&mail.message_id).await?.is_some() {
            return self.duplicate(raw, mail).await;
        }
        let from = sender_of(mail);
        let mut tx = self.store.begin(&self.ticket_prefix).await?;
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
                let detail = format!("automated mail ({}); no reply", reason.as_str());
                tx.record_intake(&intake(
                    raw,
                    mail,
                    &from,
                    Outcome::Suppressed,
                    None,
                    &detail,
                ))
                .await?;
                Processed {
                    disposition: Disposition::Processed,
                    outcome: Outcome::Suppressed,
                    ticket: None,
                    replied: false,
                }
            }
            Decision::Unregistered {
                sender,
                sender_name,
                language,
            } => {
                let reply = self.render(&ReplyRequest {
                    notice: Notice::Unregistered,
                    language: *language,
                    ticket: None,
                    inbound: mail,
                    recipient: sender,
                    name: sender_name,
                    customer: None,
                    category: None,
                    reason: None,
                });
                let (detail, replied) = match &reply {
                    Ok(out) => {
                        queue(&mut tx, None, Notice::Unregistered, out).await?;
                        (
                            format!(
                                "not a registered reference person; explanation sent ({language})"
                            ),
                            true,
                        )
                    }
                    Err(e) => (
                        format!("not a registered reference person; no reply: {e}"),
                        false,
                    ),
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
                }
            }
            Decision::Ticket(t) => {
                let (ticket_id, number) = tx.insert_ticket(t, &mail.subject).await?;
                tx.add_message(
                    ticket_id,
                    &ThreadMessage {
                        direction: "in",
                        message_id: &mail.message_id,
                        from: &from,
                        subject: &mail.subject,
                        body: &mail.text,
                    },
                )
                .await?;
                let reply = self.render(&ReplyRequest {
                    notice: t.notice,
                    language: t.language,
                    ticket: Some(&number),
                    inbound: mail,
                    recipient: &t.sender,
                    name: &t.sender_name,
                    customer: Some(&t.customer),
                    category: Some(t.category),
                    reason: t.chargeable,
                });
                let sorted = match t.chargeable {
                    Some(r) => format!("{}, chargeable: {}", t.category.as_str(), r.as_str()),
                    None => t.category.as_str().to_string(),
                };
                let (detail, replied) = match &reply {
                    Ok(out) => {
                        queue(&mut tx, Some(&number), t.notice, out).await?;
                        tx.add_message(
                            ticket_id,
                            &ThreadMessage {
                                direction: "out",
                                message_id: &out.message_id,
                                from: &out.envelope_from,
                                subject: &out.subject,
                                body: &out.body,
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
                }
            }
        };
        tx.commit().await?;
        tracing::info!(
            message_id = %mail.message_id,
            outcome = processed.outcome.as_str(),
            ticket = processed.ticket.as_deref().unwrap_or(""),
            "message processed"
        );
        Ok(processed)
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
