//! The pure decision about one inbound message: is it automated, who wrote
//! it, is their contract active, what kind of request is it, is it chargeable,
//! which language to answer in, and which notice to send.
//!
//! [`triage`] takes a parsed mail, a registry snapshot and the rules, and
//! returns a [`Decision`]. No I/O, no clock, no database: everything it needs
//! is passed in, which is why almost every test of the sorting lives here.

pub mod approval;
pub mod automated;
pub mod classify;
pub mod language;
pub mod text;

use std::fmt;

use serde::Serialize;

use crate::mail::InboundMail;
use crate::registry::{ContractStatus, Registry};

pub use automated::SuppressReason;
pub use classify::{Evidence, Rules, RulesError};

/// The desk's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Nl,
    Fr,
    En,
    De,
}

impl Language {
    pub const ALL: [Language; 4] = [Language::Nl, Language::Fr, Language::En, Language::De];

    pub fn code(self) -> &'static str {
        match self {
            Language::Nl => "nl",
            Language::Fr => "fr",
            Language::En => "en",
            Language::De => "de",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Language::ALL.into_iter().find(|l| l.code() == s)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What a message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// General or concrete questions about how the software works.
    Question,
    /// Problems, failures, outages, error messages.
    Incident,
    /// Change requests and supplementary programming.
    Change,
    /// Tips, suggestions and complaints.
    Feedback,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Question,
        Category::Incident,
        Category::Change,
        Category::Feedback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Question => "question",
            Category::Incident => "incident",
            Category::Change => "change",
            Category::Feedback => "feedback",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Why a request falls outside the maintenance contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeReason {
    /// Hardware or infrastructure not bought from the vendor (incl. backups,
    /// nurse-call communication, operating system, network).
    Infrastructure,
    /// User training must be requested explicitly.
    Training,
    /// Errors caused by the customer's own changes after delivery.
    OwnModification,
    /// On-site interventions; remote help is the rule.
    OnSite,
    /// Change requests and supplementary programming.
    ChangeRequest,
}

impl ChargeReason {
    pub const ALL: [ChargeReason; 5] = [
        ChargeReason::Infrastructure,
        ChargeReason::Training,
        ChargeReason::OwnModification,
        ChargeReason::OnSite,
        ChargeReason::ChangeRequest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChargeReason::Infrastructure => "infrastructure",
            ChargeReason::Training => "training",
            ChargeReason::OwnModification => "own_modification",
            ChargeReason::OnSite => "on_site",
            ChargeReason::ChangeRequest => "change_request",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        ChargeReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    /// Chargeable work waits until the customer agrees to the charge.
    AwaitingApproval,
    /// The customer's contract is suspended.
    OnHold,
    Open,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 6] = [
        TicketStatus::New,
        TicketStatus::AwaitingApproval,
        TicketStatus::OnHold,
        TicketStatus::Open,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::AwaitingApproval => "awaiting_approval",
            TicketStatus::OnHold => "on_hold",
            TicketStatus::Open => "open",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        TicketStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Which automatic reply a message gets; the `X-Servicedesk-Notice` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Notice {
    Received,
    Chargeable,
    Suspended,
    Unregistered,
}

impl Notice {
    pub const ALL: [Notice; 4] = [
        Notice::Received,
        Notice::Chargeable,
        Notice::Suspended,
        Notice::Unregistered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Received => "received",
            Notice::Chargeable => "chargeable",
            Notice::Suspended => "suspended",
            Notice::Unregistered => "unregistered",
        }
    }
}

/// A new ticket, sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTicket {
    pub customer: String,
    pub campus: Option<String>,
    /// The registered address the mail came from (lower case): replies go here.
    pub sender: String,
    pub sender_name: String,
    pub category: Category,
    pub chargeable: Option<ChargeReason>,
    pub language: Language,
    pub status: TicketStatus,
    pub notice: Notice,
    pub evidence: Evidence,
}

/// What to do with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Automated mail: record it, answer nothing.
    Suppress(SuppressReason),
    /// Not a reference person: explain who may contact support; no ticket.
    Unregistered {
        /// The sender's address as written, for the reply.
        sender: String,
        sender_name: String,
        language: Language,
    },
    /// A registered person: open a ticket and acknowledge it.
    Ticket(NewTicket),
}

/// Everything triage needs besides the mail itself.
pub struct TriageContext<'a> {
    pub registry: &'a Registry,
    pub rules: &'a Rules,
    /// Our own address: mail from it is never answered.
    pub support_address: &'a str,
    /// Answer in this language when neither the mail nor the registry tells.
    pub default_language: Language,
    /// Whether change requests are chargeable (the vendor's default).
    pub change_requests_chargeable: bool,
}

/// Decides what to do with one message. Pure: same input, same decision.
pub fn triage(mail: &InboundMail, ctx: &TriageContext<'_>) -> Decision {
    if let Some(reason) = automated::detect(mail, ctx.support_address) {
        return Decision::Suppress(reason);
    }
    let from = mail.from.as_ref().expect("parse guarantees a From address");
    let reading = text::Reading::of(&mail.subject, &mail.text);
    let detected = language::detect(&reading.for_language());
    let Some((person, customer)) = ctx.registry.lookup(&from.address) else {
        return Decision::Unregistered {
            sender: from.address.clone(),
            sender_name: from.name.clone(),
            language: detected.unwrap_or(ctx.default_language),
        };
    };
    let language = detected.unwrap_or(person.language);
    let sorted = ctx.rules.classify(&reading, ctx.change_requests_chargeable);
    let (status, notice) = match (customer.status, sorted.chargeable) {
        (ContractStatus::Suspended, _) => (TicketStatus::OnHold, Notice::Suspended),
        (ContractStatus::Active, Some(_)) => (TicketStatus::AwaitingApproval, Notice::Chargeable),
        (ContractStatus::Active, None) => (TicketStatus::New, Notice::Received),
    };
    Decision::Ticket(NewTicket {
        customer: customer.name.clone(),
        campus: person.campus.clone(),
        sender: person.email.clone(),
        // The registry's spelling: headers often read "Surname, First".
        sender_name: if person.name.is_empty() {
            from.name.clone()
        } else {
            person.name.clone()
        },
        category: sorted.category,
        chargeable: sorted.chargeable,
        language,
        status,
        notice,
        evidence: sorted.evidence,
    })
}
