//! A decision plus templates become an outgoing message: rendered in the
//! sender's language, with the headers that keep robots from answering it
//! (RFC 3834) and that thread it under the customer's mail.
//!
//! Templates live in `templates/<lang>/<kind>.txt` (first line `Subject: …`,
//! an empty line, then the body) and are built into the binary; a desk can
//! override any of them with `[support] templates_dir`. Rendering does no I/O.

use std::path::Path;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::Message;
use minijinja::{context, Environment, UndefinedBehavior};
use sha2::{Digest, Sha256};

use crate::domain::{Category, ChargeReason, Language, Notice};
use crate::mail::InboundMail;

/// Built-in templates: (language, kind, text).
const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "nl",
        "received",
        include_str!("../templates/nl/received.txt"),
    ),
    (
        "nl",
        "chargeable",
        include_str!("../templates/nl/chargeable.txt"),
    ),
    (
        "nl",
        "suspended",
        include_str!("../templates/nl/suspended.txt"),
    ),
    (
        "nl",
        "unregistered",
        include_str!("../templates/nl/unregistered.txt"),
    ),
    (
        "nl",
        "too_large",
        include_str!("../templates/nl/too_large.txt"),
    ),
    ("nl", "resumed", include_str!("../templates/nl/resumed.txt")),
    (
        "fr",
        "received",
        include_str!("../templates/fr/received.txt"),
    ),
    (
        "fr",
        "chargeable",
        include_str!("../templates/fr/chargeable.txt"),
    ),
    (
        "fr",
        "suspended",
        include_str!("../templates/fr/suspended.txt"),
    ),
    (
        "fr",
        "unregistered",
        include_str!("../templates/fr/unregistered.txt"),
    ),
    (
        "fr",
        "too_large",
        include_str!("../templates/fr/too_large.txt"),
    ),
    ("fr", "resumed", include_str!("../templates/fr/resumed.txt")),
    (
        "en",
        "received",
        include_str!("../templates/en/received.txt"),
    ),
    (
        "en",
        "chargeable",
        include_str!("../templates/en/chargeable.txt"),
    ),
    (
        "en",
        "suspended",
        include_str!("../templates/en/suspended.txt"),
    ),
    (
        "en",
        "unregistered",
        include_str!("../templates/en/unregistered.txt"),
    ),
    (
        "en",
        "too_large",
        include_str!("../templates/en/too_large.txt"),
    ),
    ("en", "resumed", include_str!("../templates/en/resumed.txt")),
    (
        "de",
        "received",
        include_str!("../templates/de/received.txt"),
    ),
    (
        "de",
        "chargeable",
        include_str!("../templates/de/chargeable.txt"),
    ),
    (
        "de",
        "suspended",
        include_str!("../templates/de/suspended.txt"),
    ),
    (
        "de",
        "unregistered",
        include_str!("../templates/de/unregistered.txt"),
    ),
    (
        "de",
        "too_large",
        include_str!("../templates/de/too_large.txt"),
    ),
    ("de", "resumed", include_str!("../templates/de/resumed.txt")),
];

/// Why a reply could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("template {name}: {source}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("template {0}: the first line must be `Subject: …` followed by an empty line")]
    Format(String),
    #[error("cannot read template {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot address a reply to {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build the reply: {0}")]
    Build(String),
}

/// What to answer, to whom, about what.
#[derive(Debug, Clone)]
pub struct ReplyRequest<'a> {
    pub notice: Notice,
    pub language: Language,
    pub ticket: Option<&'a str>,
    pub inbound: &'a InboundMail,
    /// The address the reply goes to (the registered address for persons).
    pub recipient: &'a str,
    pub name: &'a str,
    pub customer: Option<&'a str>,
    pub category: Option<Category>,
    pub reason: Option<ChargeReason>,
}

/// An agent's answer on a ticket, as [`Replier::agent_reply`] needs it.
#[derive(Debug, Clone)]
pub struct AgentReply<'a> {
    pub ticket: &'a str,
    /// The ticket's subject (the customer's first mail).
    pub subject: &'a str,
    pub recipient: &'a str,
    pub name: &'a str,
    pub language: Language,
    /// The latest inbound message's Message-ID.
    pub in_reply_to: Option<&'a str>,
    /// The thread's Message-IDs, oldest first (the last ten become References).
    pub thread_ids: &'a [String],
    pub text: &'a str,
    /// Random text that makes the Message-ID unique.
    pub unique: &'a str,
}

/// A rendered reply, ready for the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingReply {
    /// Without angle brackets.
    pub message_id: String,
    pub in_reply_to: String,
    pub envelope_from: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// The complete RFC 5322 message, sent byte for byte.
    pub raw: Vec<u8>,
}

/// Renders replies from templates.
pub struct Replier {
    env: Environment<'static>,
    from: Mailbox,
    desk: String,
    support_address: String,
    domain: String,
}

impl std::fmt::Debug for Replier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replier").field("from", &self.from).finish()
    }
}

fn template_name(lang: &str, kind: &str) -> String {
    format!("{lang}/{kind}.txt")
}

impl Replier {
    /// Loads the built-in templates, overridden by any found in `override_dir`.
    ///
    /// # Errors
    ///
    /// When `from` is not a mailbox, or a template does not parse.
    pub fn new(
        from: &str,
        desk: &str,
        support_address: &str,
        override_dir: Option<&Path>,
    ) -> Result<Replier, ReplyError> {
        let from: Mailbox = from.parse().map_err(|e| ReplyError::Address {
            address: from.to_string(),
            reason: format!("{e}"),
        })?;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_keep_trailing_newline(true);
        for (lang, kind, text) in BUILTIN {
            let name = template_name(lang, kind);
            let text = match override_dir.map(|d| d.join(lang).join(format!("{kind}.txt"))) {
                Some(path) if path.exists() => {
                    std::fs::read_to_string(&path).map_err(|source| ReplyError::Read {
                        path: path.display().to_string(),
                        source,
                    })?
                }
                _ => (*text).to_string(),
            };
            if !text.starts_with("Subject:") {
                return Err(ReplyError::Format(name));
            }
            env.add_template_owned(name.clone(), text)
                .map_err(|source| ReplyError::Template { name, source })?;
        }
        let support = crate::mail::bare_address(support_address).to_string();
        let domain = support
            .rsplit('@')
            .next()
            .unwrap_or("localhost")
            .to_string();
        Ok(Replier {
            env,
            from,
            desk: desk.to_string(),
            support_address: support,
            domain,
        })
    }

    /// Renders one reply.
    ///
    /// # Errors
    ///
    /// When the template fails or the recipient is not a usable address.
    pub fn render(&self, req: &ReplyRequest<'_>) -> Result<OutgoingReply, ReplyError> {
        self.render_with_target(req, None)
    }

    /// Renders one reply that may state the first-response target of the
    /// ticket's SLA (business minutes; the templates' `response_target`,
    /// e.g. "4 business hours", and `response_minutes`).
    ///
    /// # Errors
    ///
    /// As [`Replier::render`].
    pub fn render_with_target(
        &self,
        req: &ReplyRequest<'_>,
        response_minutes: Option<i64>,
    ) -> Result<OutgoingReply, ReplyError> {
        let response_minutes = response_minutes.filter(|_| req.ticket.is_some());
        let name = template_name(req.language.as_str(), req.notice.as_str());
        let tmpl = self
            .env
            .get_template(&name)
            .map_err(|source| ReplyError::Template {
                name: name.clone(),
                source,
            })?;
        // A reply that opens no ticket goes to an address nobody vouched
        // for, often forged: it never carries the sender's own words (their
        // subject or display name) on to whoever owns that address.
        let (subject, display_name) = if req.ticket.is_some() {
            (req.inbound.subject.as_str(), req.name)
        } else {
            ("", "")
        };
        let rendered = tmpl
            .render(context! {
                ticket => req.ticket,
                subject => subject,
                name => display_name,
                customer => req.customer,
                category => req.category.map(|c| c.as_str()),
                reason => req.reason.map(|r| r.as_str()),
                desk => self.desk,
                support_address => self.support_address,
                response_minutes => response_minutes,
                response_target => response_minutes.map(|m| crate::sla::phrase(m, req.language)),
            })
            .map_err(|source| ReplyError::Template {
                name: name.clone(),
                source,
            })?;
        let (first, body) = rendered
            .split_once('\n')
            .ok_or_else(|| ReplyError::Format(name.clone()))?;
        let subject = first
            .strip_prefix("Subject:")
            .ok_or_else(|| ReplyError::Format(name.clone()))?
            .trim()
            .to_string();
        let body = body.trim_start_matches(['\r', '\n']).to_string();

        let to: Mailbox = if display_name.is_empty() {
            req.recipient.parse()
        } else {
            format!(
                "\"{}\" <{}>",
                display_name.replace(['"', '\\'], ""),
                req.recipient
            )
            .parse()
        }
        .map_err(|e| ReplyError::Address {
            address: req.recipient.to_string(),
            reason: format!("{e}"),
        })?;

        let message_id = self.message_id(&req.inbound.message_id, req.notice);
        let original = format!("<{}>", req.inbound.message_id);
        let mut references: Vec<String> = req
            .inbound
            .references
            .iter()
            .rev()
            .take(10)
            .rev()
            .map(|r| format!("<{r}>"))
            .collect();
        if !references.contains(&original) {
            references.push(original.clone());
        }
        let raw_header = |name: &'static str, value: &str| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject.clone())
            .message_id(Some(format!("<{message_id}>")))
            .in_reply_to(original)
            .references(references.join(" "))
            .date_now()
            .raw_header(raw_header("Auto-Submitted", "auto-replied"))
            .raw_header(raw_header("X-Auto-Response-Suppress", "All"))
            .raw_header(raw_header("X-Loop", &self.support_address))
            .raw_header(raw_header("Content-Language", req.language.as_str()))
            .raw_header(raw_header("X-Servicedesk-Notice", req.notice.as_str()))
            .header(ContentType::TEXT_PLAIN)
            .body(body.clone())
            .map_err(|e| ReplyError::Build(e.to_string()))?;
        Ok(OutgoingReply {
            message_id,
            in_reply_to: req.inbound.message_id.clone(),
            envelope_from: self.from.email.to_string(),
            recipient: req.recipient.to_string(),
            subject,
            body,
            raw: message.formatted(),
        })
    }

    /// An agent's own answer on a ticket: from the desk to the ticket's
    /// sender, the ticket token in the subject, threaded under the latest
    /// inbound message, `X-Servicedesk-Notice: agent` and no
    /// `Auto-Submitted` (a person wrote it, so the customer's
    /// out-of-office may answer it).
    ///
    /// # Errors
    ///
    /// When the recipient is not a usable address or the message cannot be built.
    pub fn agent_reply(&self, req: &AgentReply<'_>) -> Result<OutgoingReply, ReplyError> {
        let token = format!("[{}]", req.ticket);
        let base = req.subject.trim();
        let mut subject = if base.to_ascii_lowercase().starts_with("re:") {
            base.to_string()
        } else {
            format!("Re: {base}")
        };
        if !subject.contains(&token) {
            subject = format!("{subject} {token}");
        }
        let subject = subject.replace(['\r', '\n'], " ");
        let name = req.name.replace(['"', '\\', '\r', '\n'], "");
        let to: Mailbox = if name.trim().is_empty() {
            req.recipient.parse()
        } else {
            format!("\"{}\" <{}>", name.trim(), req.recipient).parse()
        }
        .map_err(|e| ReplyError::Address {
            address: req.recipient.to_string(),
            reason: format!("{e}"),
        })?;
        let message_id = format!("sd.{}.agent@{}", req.unique, self.domain);
        let mut references: Vec<String> = req
            .thread_ids
            .iter()
            .rev()
            .take(10)
            .rev()
            .map(|r| format!("<{r}>"))
            .collect();
        let raw_header = |name: &'static str, value: &str| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject.clone())
            .message_id(Some(format!("<{message_id}>")))
            .date_now();
        if let Some(irt) = req.in_reply_to {
            let original = format!("<{irt}>");
            if !references.contains(&original) {
                references.push(original.clone());
            }
            builder = builder.in_reply_to(original);
        }
        if !references.is_empty() {
            builder = builder.references(references.join(" "));
        }
        let body = req.text.replace("\r\n", "\n");
        let message = builder
            .raw_header(raw_header("X-Loop", &self.support_address))
            .raw_header(raw_header("Content-Language", req.language.as_str()))
            .raw_header(raw_header("X-Servicedesk-Notice", Notice::Agent.as_str()))
            .header(ContentType::TEXT_PLAIN)
            .body(body.clone())
            .map_err(|e| ReplyError::Build(e.to_string()))?;
        Ok(OutgoingReply {
            message_id,
            in_reply_to: req.in_reply_to.unwrap_or_default().to_string(),
            envelope_from: self.from.email.to_string(),
            recipient: req.recipient.to_string(),
            subject,
            body,
            raw: message.formatted(),
        })
    }

    /// Our Message-ID for the reply of `notice` to `inbound_id`: the same
    /// inputs always give the same ID, so a re-rendered reply is the same mail.
    fn message_id(&self, inbound_id: &str, notice: Notice) -> String {
        let mut h = Sha256::new();
        h.update(inbound_id.as_bytes());
        h.update([0]);
        h.update(notice.as_str().as_bytes());
        let hex: String = h.finalize()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sd.{hex}.{}@{}", notice.as_str(), self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound() -> InboundMail {
        crate::mail::parse(
            b"From: An <an@x.example>\r\nSubject: Storing\r\nMessage-ID: <m1@x>\r\nReferences: <m0@x>\r\n\r\nhallo\r\n",
        )
        .unwrap()
    }

    #[test]
    fn an_agents_reply_is_a_persons_mail_on_the_thread() {
        let r = Replier::new(
            "Desk <support@example.test>",
            "Desk",
            "support@example.test",
            None,
        )
        .unwrap();
        let ids = vec!["m1@x".to_string(), "sd.1.received@example.test".to_string()];
        let out = r
            .agent_reply(&AgentReply {
                ticket: "CS-000007",
                subject: "Storing",
                recipient: "an@x.example",
                name: "An \"Peeters\"",
                language: Language::Fr,
                in_reply_to: Some("m1@x"),
                thread_ids: &ids,
                text: "Bonjour,\nC'est réglé.",
                unique: "abc",
            })
            .unwrap();
        let raw = String::from_utf8_lossy(&out.raw);
        assert!(!raw.contains("Auto-Submitted"), "{raw}");
        assert!(raw.contains("X-Servicedesk-Notice: agent"));
        assert!(raw.contains("Content-Language: fr"));
        assert!(raw.contains("In-Reply-To: <m1@x>"));
        assert!(raw.contains("References: <m1@x> <sd.1.received@example.test>"));
        assert_eq!(out.subject, "Re: Storing [CS-000007]");
        assert_eq!(out.message_id, "sd.abc.agent@example.test");
        assert_eq!(out.recipient, "an@x.example");
    }

    #[test]
    fn the_acknowledgement_states_the_response_target_only_when_one_applies() {
        let r = Replier::new(
            "Desk <support@example.test>",
            "Desk",
            "support@example.test",
            None,
        )
        .unwrap();
        let mail = inbound();
        for (lang, said) in [
            (Language::En, "We will answer you within 4 business hours."),
            (Language::Nl, "We antwoorden u binnen 4 werkuren."),
            (
                Language::Fr,
                "Nous vous répondrons dans un délai de 4 heures ouvrables.",
            ),
            (
                Language::De,
                "Wir antworten Ihnen innerhalb von 4 Arbeitsstunden.",
            ),
        ] {
            let req = ReplyRequest {
                notice: Notice::Received,
                language: lang,
                ticket: Some("CS-000007"),
                inbound: &mail,
                recipient: "an@x.example",
                name: "An",
                customer: Some("WZC"),
                category: Some(Category::Incident),
                reason: None,
            };
            let with = r.render_with_target(&req, Some(240)).unwrap();
            assert!(with.body.contains(said), "{lang}: {}", with.body);
            let without = r.render(&req).unwrap();
            let cut = said.split(" 4 ").next().unwrap();
            assert!(!without.body.contains(cut), "{lang}: {}", without.body);
        }
        // The advance notice of a charge: the target runs from the confirmation.
        for (lang, said) in [
            (Language::En, "From your confirmation on, we will answer you within 1 business hour."),
            (Language::Nl, "Vanaf uw bevestiging antwoorden we u binnen 1 werkuur."),
            (Language::Fr, "À partir de votre confirmation, nous vous répondrons dans un délai de 1 heure ouvrable."),
            (Language::De, "Ab Ihrer Bestätigung antworten wir Ihnen innerhalb von 1 Arbeitsstunde."),
        ] {
            let req = ReplyRequest {
                notice: Notice::Chargeable,
                language: lang,
                ticket: Some("CS-000008"),
                inbound: &mail,
                recipient: "an@x.example",
                name: "An",
                customer: Some("WZC"),
                category: Some(Category::Question),
                reason: Some(ChargeReason::Training),
            };
            let with = r.render_with_target(&req, Some(60)).unwrap();
            assert!(with.body.contains(said), "{lang}: {}", with.body);
            assert!(!r.render(&req).unwrap().body.contains(said));
        }
    }

    #[test]
    fn every_builtin_template_renders_with_headers() {
        let r = Replier::new(
            "Desk <support@example.test>",
            "Desk",
            "support@example.test",
            None,
        )
        .unwrap();
        let mail = inbound();
        for lang in Language::ALL {
            for notice in Notice::ALL.into_iter().filter(|n| n.is_automatic()) {
                let ticket = !matches!(notice, Notice::Unregistered | Notice::TooLarge);
                let ticket = ticket.then_some("CS-000007");
                let out = r
                    .render(&ReplyRequest {
                        notice,
                        language: lang,
                        ticket,
                        inbound: &mail,
                        recipient: "an@x.example",
                        name: "An",
                        customer: Some("WZC"),
                        category: Some(Category::Incident),
                        reason: Some(ChargeReason::Training),
                    })
                    .unwrap();
                let raw = String::from_utf8_lossy(&out.raw);
                assert!(raw.contains("Auto-Submitted: auto-replied"), "{raw}");
                assert!(raw.contains(&format!("Content-Language: {lang}")));
                assert!(raw.contains(&format!("X-Servicedesk-Notice: {}", notice.as_str())));
                assert!(raw.contains("In-Reply-To: <m1@x>"));
                assert!(raw.contains("References: <m0@x> <m1@x>"));
                assert_eq!(
                    out.subject.contains("[CS-000007]"),
                    ticket.is_some(),
                    "{lang} {notice:?}"
                );
                assert!(!out.body.is_empty());
            }
        }
    }
}
