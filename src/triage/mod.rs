//! The pure decision about one inbound message: is it automated, who wrote
//! it, is their contract active, what kind of request is it, is it chargeable,
//! which language to answer in, and which notice to send.
//!
//! [`triage`] takes a parsed mail, a registry snapshot and the rules, and
//! returns a [`Decision`]. No I/O, no clock, no database: everything it needs
//! is passed in, which is why almost every test of the sorting lives here.

pub mod approval;
pub mod auth;
pub mod automated;
pub mod classify;
pub mod language;
pub mod model;
pub mod text;

use chrono::{DateTime, Utc};

use crate::domain::ContractStatus;
pub use crate::domain::{Category, ChargeReason, Language, Notice, Priority, TicketStatus};
use crate::mail::InboundMail;
use crate::registry::Registry;

pub use automated::SuppressReason;
pub use classify::{Evidence, Rules, RulesError};

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
    pub priority: Priority,
    pub language: Language,
    pub status: TicketStatus,
    pub notice: Notice,
    /// False when the loop breaker holds the acknowledgement back.
    pub send_notice: bool,
    /// The closed ticket this one continues.
    pub related: Option<String>,
    /// Why an agent must look at this ticket, if they must.
    pub attention: Option<String>,
    pub evidence: Evidence,
}

/// A message that belongs to an existing ticket. It gets no acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Followup {
    pub ticket: String,
    /// How it was recognised: `thread` (In-Reply-To/References) or `token`.
    pub matched_by: &'static str,
    /// The ticket's new status, when the message changes it.
    pub set_status: Option<TicketStatus>,
    /// The customer's answer to a chargeable notice, when this is one.
    pub charge_approved: Option<bool>,
    /// The words the charge decision was based on.
    pub charge_words: Option<String>,
    pub attention: Option<String>,
    /// The sender is not a registered person of the ticket's customer (a
    /// stranger on CC, another customer's person, or a sender the receiving
    /// server did not vouch for): the message is kept on the ticket for
    /// agents but decides nothing and is not answered.
    pub outsider: bool,
}

/// What the store knows about a ticket a message may belong to.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketRef {
    pub number: String,
    pub customer: String,
    pub status: TicketStatus,
    /// When the ticket last changed (for a closed ticket: when it was closed).
    pub updated_at: DateTime<Utc>,
}

/// What the store knows about the sender, for the auto-reply limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderHistory {
    /// Replies without a ticket (explanations, notices) sent to this address in 24 hours.
    pub no_ticket_replies_24h: u32,
    /// Tickets this address opened within the loop-breaker window.
    pub recent_tickets: u32,
}

/// Facts looked up for this one message before triage; triage itself does no I/O.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The ticket that In-Reply-To/References point at.
    pub thread: Option<TicketRef>,
    /// The ticket whose token `[CS-000123]` is in the subject.
    pub token: Option<TicketRef>,
    pub history: SenderHistory,
    /// True when the message answers one of our replies that opened no
    /// ticket (an explanation or a size notice).
    pub answers_our_notice: bool,
    /// Replies that opened no ticket (explanations, size notices) queued
    /// for anyone in the last hour.
    pub no_ticket_replies_last_hour: u32,
    pub now: DateTime<Utc>,
}

/// The `[limits]` section: auto-reply limits, follow-up rules, and the
/// size beyond which a message is not read whole. The configuration reads
/// it; triage applies all but `max_message_bytes`, which the sources apply.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Replies that open no ticket (explanations to unregistered senders),
    /// per sender address per 24 hours.
    pub no_ticket_replies_per_day: u32,
    /// The same, to all senders together per hour: beyond it explanations
    /// pause (the intake record says so), so a flood of forged senders
    /// cannot turn the desk into a reflector.
    pub no_ticket_replies_per_hour: u32,
    /// More tickets than this from one address within `loop_window_minutes`
    /// look like a robot: its acknowledgements pause and it is flagged for agents.
    pub loop_max_tickets: u32,
    pub loop_window_minutes: u32,
    /// A follow-up to a ticket closed longer ago than this starts a new ticket.
    pub reopen_closed_within_days: u32,
    /// Larger messages are never read whole: only their header is, the
    /// ticket gets a note (an unregistered sender a size notice).
    pub max_message_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            no_ticket_replies_per_day: 10,
            no_ticket_replies_per_hour: 40,
            loop_max_tickets: 20,
            loop_window_minutes: 10,
            reopen_closed_within_days: 14,
            max_message_bytes: 25 * 1024 * 1024,
        }
    }
}

/// Below this category confidence a new ticket is flagged for an agent to
/// check its sorting; `eval` reports the share flagged and the accuracy of
/// the rest.
pub const UNSURE_BELOW: f32 = 0.7;

/// Why an unregistered sender gets no explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// The address already got its share of explanations in 24 hours.
    DailyLimit,
    /// The desk sent its hourly share of explanations to everyone together.
    HourlyLimit,
    /// A registered address, but the receiving server did not vouch for it:
    /// its owner must not get mail they did not ask for.
    Unauthenticated,
    /// A reply to one of our own explanations: answering would start a loop.
    AnswersOurNotice,
    /// Neither `From` nor `Sender` names an address: there is no one to
    /// answer (and `Reply-To` is never trusted for that).
    NoAddress,
}

impl Silence {
    pub fn describe(self) -> &'static str {
        match self {
            Silence::DailyLimit => "this address reached today's limit of explanations",
            Silence::HourlyLimit => {
                "explanations paused: the hourly limit for all unregistered senders together was reached ([limits] no_ticket_replies_per_hour; a flood of forged senders?)"
            }
            Silence::Unauthenticated => {
                "registered address, but the receiving server's Authentication-Results did not vouch for the sender (no dmarc=pass or aligned dkim=pass): treated as unregistered"
            }
            Silence::AnswersOurNotice => "it answers our own explanation",
            Silence::NoAddress => "no usable sender address",
        }
    }
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
        /// `Unregistered`, or `TooLarge` when the message was too large to fetch.
        notice: Notice,
        /// Why no explanation is sent, if none is.
        silence: Option<Silence>,
    },
    /// A registered person: open a ticket and acknowledge it.
    Ticket(NewTicket),
    /// Part of an existing ticket's thread.
    Followup(Followup),
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
    /// The trained model; without it the rules alone sort.
    pub model: Option<&'a model::Model>,
    pub limits: Limits,
    /// When set, a registered address is trusted only if an
    /// `Authentication-Results` header from this authserv-id vouches for it.
    pub require_aligned_auth: Option<&'a str>,
}

/// Decides what to do with one message. Pure: same input, same decision.
pub fn triage(mail: &InboundMail, ctx: &TriageContext<'_>, facts: &Facts) -> Decision {
    if let Some(reason) = automated::detect(mail, ctx.support_address) {
        return Decision::Suppress(reason);
    }
    let reading = text::Reading::of(&mail.subject, &mail.text);
    let Some(from) = mail.from.as_ref() else {
        // Readable, but from no one: kept on record, answered to no one.
        return Decision::Unregistered {
            sender: String::new(),
            sender_name: String::new(),
            language: language::detect(&reading.for_language()).unwrap_or(ctx.default_language),
            notice: Notice::Unregistered,
            silence: Some(Silence::NoAddress),
        };
    };
    let mut registered = ctx.registry.lookup(&from.address);
    let mut unauthenticated = false;
    if let (Some(_), Some(authserv_id)) = (registered, ctx.require_aligned_auth) {
        let domain = from.key().rsplit('@').next().unwrap_or("").to_string();
        if !auth::vouched(&mail.auth_results, authserv_id, &domain) {
            // A forged From must not reach a registered person's ticket,
            // nor send that person an explanation they did not ask for.
            registered = None;
            unauthenticated = true;
        }
    }

    // Only a registered (and, where required, vouched-for) person of the
    // ticket's customer decides anything on it: Message-IDs and tokens are
    // seen by everyone a mail was copied or forwarded to.
    let belongs = |t: &TicketRef| {
        registered.is_some_and(|(_, customer)| customer.name.eq_ignore_ascii_case(&t.customer))
    };
    // A reply in a ticket's thread, or a registered person of the ticket's
    // customer naming its token, continues that ticket.
    let existing = match (&facts.thread, &facts.token) {
        (Some(t), _) => Some((t, "thread")),
        (None, Some(t)) if belongs(t) => Some((t, "token")),
        _ => None,
    };
    let mut related = None;
    if let Some((ticket, matched_by)) = existing {
        let closed_long_ago = ticket.status == TicketStatus::Closed
            && facts.now - ticket.updated_at
                > chrono::Duration::days(i64::from(ctx.limits.reopen_closed_within_days));
        if !closed_long_ago {
            return Decision::Followup(if belongs(ticket) {
                followup(ticket, matched_by, &reading)
            } else {
                outsider(ticket, matched_by, &from.address)
            });
        }
        if belongs(ticket) {
            related = Some(ticket.number.clone());
        }
    }

    let detected = language::detect(&reading.for_language());
    let Some((person, customer)) = registered else {
        return Decision::Unregistered {
            sender: from.address.clone(),
            sender_name: from.name.clone(),
            language: detected.unwrap_or(ctx.default_language),
            notice: if mail.truncated_from.is_some() {
                Notice::TooLarge
            } else {
                Notice::Unregistered
            },
            silence: if unauthenticated {
                Some(Silence::Unauthenticated)
            } else if facts.answers_our_notice {
                Some(Silence::AnswersOurNotice)
            } else if facts.history.no_ticket_replies_24h >= ctx.limits.no_ticket_replies_per_day {
                Some(Silence::DailyLimit)
            } else if facts.no_ticket_replies_last_hour >= ctx.limits.no_ticket_replies_per_hour {
                Some(Silence::HourlyLimit)
            } else {
                None
            },
        };
    };
    let language = detected.unwrap_or(person.language);
    let sorted = ctx
        .rules
        .sort(&reading, ctx.model, ctx.change_requests_chargeable, true);
    let (status, notice) = match (customer.status, sorted.chargeable) {
        (ContractStatus::Suspended, _) => (TicketStatus::OnHold, Notice::Suspended),
        (ContractStatus::Active, Some(_)) => (TicketStatus::AwaitingApproval, Notice::Chargeable),
        (ContractStatus::Active, None) => (TicketStatus::New, Notice::Received),
    };
    // A person does not open tickets this fast; a robot does. Hold the
    // acknowledgements back (the tickets are still made) and tell an agent.
    let looping = facts.history.recent_tickets >= ctx.limits.loop_max_tickets;
    let attention = if looping {
        Some(format!(
            "more than {} tickets from {} within {} minutes: acknowledgements paused (mail loop?)",
            ctx.limits.loop_max_tickets, person.email, ctx.limits.loop_window_minutes
        ))
    } else if let Some(size) = mail.truncated_from {
        Some(format!(
            "message of {} too large to fetch: only its header was read; the whole message is in the processed folder",
            human_size(size)
        ))
    } else {
        (sorted.evidence.confidence < UNSURE_BELOW).then(|| {
            format!(
                "sorting unsure (confidence {:.2}): please check the category",
                sorted.evidence.confidence
            )
        })
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
        priority: sorted.priority,
        language,
        status,
        notice,
        send_notice: !looping,
        related,
        attention,
        evidence: sorted.evidence,
    })
}

/// `31.2 MB`, `640 KB`.
fn human_size(bytes: u64) -> String {
    if bytes >= 1_048_576 {
        format!("{:.1} MB", bytes as f64 / 1_048_576.0)
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

/// A message in a ticket's thread from someone who is not a registered
/// person of the ticket's customer: kept, flagged for agents, deciding nothing.
fn outsider(ticket: &TicketRef, matched_by: &'static str, address: &str) -> Followup {
    Followup {
        ticket: ticket.number.clone(),
        matched_by,
        set_status: None,
        charge_approved: None,
        charge_words: None,
        attention: Some(format!(
            "a message from {address}, who is not a registered person of {}, is on the thread: it changed nothing",
            ticket.customer
        )),
        outsider: true,
    }
}

/// What a follow-up does to its ticket.
fn followup(ticket: &TicketRef, matched_by: &'static str, reading: &text::Reading) -> Followup {
    let mut f = Followup {
        ticket: ticket.number.clone(),
        matched_by,
        set_status: None,
        charge_approved: None,
        charge_words: None,
        attention: None,
        outsider: false,
    };
    match ticket.status {
        TicketStatus::AwaitingApproval => match approval::read(&reading.body) {
            (approval::Approval::Agreed, words) => {
                f.set_status = Some(TicketStatus::New);
                f.charge_approved = Some(true);
                f.charge_words = words;
            }
            (approval::Approval::Refused, words) => {
                f.set_status = Some(TicketStatus::Closed);
                f.charge_approved = Some(false);
                f.charge_words = words;
            }
            (approval::Approval::Unclear, _) => {
                f.attention =
                    Some("answer to the charge notice is unclear: please ask the customer".into());
            }
        },
        TicketStatus::Waiting | TicketStatus::Resolved | TicketStatus::Closed => {
            f.set_status = Some(TicketStatus::Open);
        }
        _ => {}
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::registry::{Customer, Person};

    fn registry() -> Registry {
        Registry::new(
            vec![
                Customer {
                    name: "WZC A".into(),
                    status: ContractStatus::Active,
                    campuses: vec![],
                    sla: None,
                },
                Customer {
                    name: "WZC B".into(),
                    status: ContractStatus::Active,
                    campuses: vec![],
                    sla: None,
                },
            ],
            vec![
                Person {
                    email: "an@a.example".into(),
                    name: "An".into(),
                    customer: "WZC A".into(),
                    campus: None,
                    role: Role::General,
                    language: Language::Nl,
                },
                Person {
                    email: "bo@b.example".into(),
                    name: "Bo".into(),
                    customer: "WZC B".into(),
                    campus: None,
                    role: Role::General,
                    language: Language::Nl,
                },
            ],
        )
    }

    fn mail(from: &str, subject: &str, body: &str, extra: &str) -> InboundMail {
        crate::mail::parse(
            format!(
                "From: {from}\r\nSubject: {subject}\r\n{extra}Message-ID: <m@x>\r\n\r\n{body}\r\n"
            )
            .as_bytes(),
        )
        .unwrap()
    }

    fn ticket(status: TicketStatus, days_ago: i64) -> TicketRef {
        TicketRef {
            number: "CS-000001".into(),
            customer: "WZC A".into(),
            status,
            updated_at: DateTime::<Utc>::default() - chrono::Duration::days(days_ago),
        }
    }

    fn decide(m: &InboundMail, facts: &Facts, auth: Option<&str>) -> Decision {
        let registry = registry();
        let rules = Rules::builtin();
        let ctx = TriageContext {
            registry: &registry,
            rules: &rules,
            support_address: "support@example.test",
            default_language: Language::Nl,
            change_requests_chargeable: true,
            model: None,
            limits: Limits::default(),
            require_aligned_auth: auth,
        };
        triage(m, &ctx, facts)
    }

    #[test]
    fn thread_reply_is_a_followup_without_new_ticket() {
        let m = mail(
            "an@a.example",
            "Re: [CS-000001] Storing",
            "Nog steeds kapot.",
            "",
        );
        let facts = Facts {
            thread: Some(ticket(TicketStatus::New, 0)),
            ..Facts::default()
        };
        let Decision::Followup(f) = decide(&m, &facts, None) else {
            panic!("not a follow-up")
        };
        assert_eq!(
            (f.ticket.as_str(), f.matched_by, f.set_status),
            ("CS-000001", "thread", None)
        );
    }

    #[test]
    fn token_counts_only_for_the_tickets_customer() {
        let facts = Facts {
            token: Some(ticket(TicketStatus::Open, 0)),
            ..Facts::default()
        };
        let own = mail("an@a.example", "[CS-000001] nog iets", "Extra info.", "");
        assert!(matches!(decide(&own, &facts, None), Decision::Followup(_)));
        let other = mail("bo@b.example", "[CS-000001] nog iets", "Extra info.", "");
        assert!(matches!(decide(&other, &facts, None), Decision::Ticket(_)));
    }

    #[test]
    fn resolved_reopens_and_old_closed_starts_a_new_ticket() {
        let m = mail(
            "an@a.example",
            "Re: Storing",
            "Het probleem is terug, werkt niet.",
            "",
        );
        let reopen = Facts {
            thread: Some(ticket(TicketStatus::Resolved, 30)),
            ..Facts::default()
        };
        let Decision::Followup(f) = decide(&m, &reopen, None) else {
            panic!("not a follow-up")
        };
        assert_eq!(f.set_status, Some(TicketStatus::Open));
        let old = Facts {
            thread: Some(ticket(TicketStatus::Closed, 30)),
            ..Facts::default()
        };
        let Decision::Ticket(t) = decide(&m, &old, None) else {
            panic!("not a new ticket")
        };
        assert_eq!(t.related.as_deref(), Some("CS-000001"));
    }

    #[test]
    fn charge_answers() {
        let facts = Facts {
            thread: Some(ticket(TicketStatus::AwaitingApproval, 0)),
            ..Facts::default()
        };
        for (body, status, approved) in [
            (
                "Akkoord, ga maar verder.",
                Some(TicketStatus::New),
                Some(true),
            ),
            ("Niet akkoord.", Some(TicketStatus::Closed), Some(false)),
            ("Wat kost dat?", None, None),
        ] {
            let Decision::Followup(f) =
                decide(&mail("an@a.example", "Re: x", body, ""), &facts, None)
            else {
                panic!("not a follow-up")
            };
            assert_eq!(
                (f.set_status, f.charge_approved),
                (status, approved),
                "{body}"
            );
            assert_eq!(f.attention.is_some(), approved.is_none(), "{body}");
        }
    }

    #[test]
    fn the_customers_answer_moves_a_waiting_ticket_back_to_open() {
        let facts = Facts {
            thread: Some(ticket(TicketStatus::Waiting, 2)),
            ..Facts::default()
        };
        let m = mail(
            "an@a.example",
            "Re: [CS-000001] Opleiding",
            "Hier is het gevraagde schermafdruk.",
            "",
        );
        let Decision::Followup(f) = decide(&m, &facts, None) else {
            panic!("not a follow-up")
        };
        assert_eq!(
            (f.set_status, f.charge_approved, f.outsider),
            (Some(TicketStatus::Open), None, false)
        );
        let m = mail("bo@b.example", "Re: [CS-000001] Opleiding", "Ook hier.", "");
        let Decision::Followup(f) = decide(&m, &facts, None) else {
            panic!("an outsider's answer is not kept on the ticket")
        };
        assert_eq!((f.set_status, f.outsider), (None, true));
    }

    #[test]
    fn only_the_tickets_own_people_decide_in_its_thread() {
        for status in [
            TicketStatus::AwaitingApproval,
            TicketStatus::Waiting,
            TicketStatus::Resolved,
            TicketStatus::Closed,
        ] {
            let facts = Facts {
                thread: Some(ticket(status, 0)),
                ..Facts::default()
            };
            for (from, auth, outsider) in [
                ("stranger@elsewhere.example", None, true),
                ("bo@b.example", None, true),
                ("an@a.example", Some("mx.example.test"), true),
                ("an@a.example", None, false),
            ] {
                let m = mail(from, "Re: [CS-000001] Opleiding", "Akkoord, ga verder.", "");
                let Decision::Followup(f) = decide(&m, &facts, auth) else {
                    panic!("{from}: not kept on the ticket")
                };
                assert_eq!(f.outsider, outsider, "{from} {status:?}");
                if outsider {
                    assert_eq!((f.set_status, f.charge_approved), (None, None), "{from}");
                    assert!(f.attention.unwrap().contains(from), "{from}");
                } else {
                    assert!(f.set_status.is_some(), "{status:?}");
                }
            }
        }
    }

    #[test]
    fn an_outsider_on_a_long_closed_ticket_continues_nothing() {
        let facts = Facts {
            thread: Some(ticket(TicketStatus::Closed, 30)),
            ..Facts::default()
        };
        let m = mail("bo@b.example", "Re: Storing", "Het werkt niet.", "");
        let Decision::Ticket(t) = decide(&m, &facts, None) else {
            panic!("not a ticket of its own")
        };
        assert_eq!((t.customer.as_str(), t.related), ("WZC B", None));
    }

    #[test]
    fn an_unsure_sorting_is_flagged_for_an_agent() {
        let m = mail("an@a.example", "Even dit", "Hallo, zie bijlage.", "");
        let Decision::Ticket(t) = decide(&m, &Facts::default(), None) else {
            panic!("not a ticket")
        };
        assert!(t.evidence.confidence < UNSURE_BELOW, "{:?}", t.evidence);
        assert!(
            t.attention
                .as_deref()
                .is_some_and(|a| a.starts_with("sorting unsure")),
            "{:?}",
            t.attention
        );
    }

    #[test]
    fn mail_from_no_address_is_kept_and_answered_to_no_one() {
        let m = crate::mail::parse(
            b"From: \"Only A Name\"\r\nReply-To: an@a.example\r\nSubject: Vraag\r\nMessage-ID: <n@x>\r\n\r\nHoe werkt dit?\r\n",
        )
        .unwrap();
        let Decision::Unregistered {
            sender, silence, ..
        } = decide(&m, &Facts::default(), None)
        else {
            panic!("not recorded as unregistered")
        };
        assert_eq!((sender.as_str(), silence), ("", Some(Silence::NoAddress)));
    }

    #[test]
    fn limits_on_explanations_and_loop_breaker() {
        let mut facts = Facts::default();
        facts.history.no_ticket_replies_24h = 10;
        let Decision::Unregistered { silence, .. } = decide(
            &mail("x@y.example", "Vraag", "Hoe werkt dit?", ""),
            &facts,
            None,
        ) else {
            panic!("not unregistered")
        };
        assert_eq!(silence, Some(Silence::DailyLimit));
        let mut flood = Facts {
            no_ticket_replies_last_hour: 40,
            ..Facts::default()
        };
        let Decision::Unregistered { silence, .. } = decide(
            &mail("fresh@y.example", "Vraag", "Hoe werkt dit?", ""),
            &flood,
            None,
        ) else {
            panic!("not unregistered")
        };
        assert_eq!(silence, Some(Silence::HourlyLimit));
        flood.no_ticket_replies_last_hour = 39;
        assert!(matches!(
            decide(
                &mail("fresh@y.example", "Vraag", "Hoe werkt dit?", ""),
                &flood,
                None
            ),
            Decision::Unregistered { silence: None, .. }
        ));
        facts.history.recent_tickets = 20;
        let Decision::Ticket(t) = decide(
            &mail("an@a.example", "Vraag", "Hoe werkt dit?", ""),
            &facts,
            None,
        ) else {
            panic!("not a ticket")
        };
        assert!(!t.send_notice);
        assert!(t.attention.is_some());
    }

    #[test]
    fn unauthenticated_registered_sender_is_not_trusted() {
        let forged = mail("an@a.example", "Storing", "Werkt niet.", "");
        let Decision::Unregistered { silence, .. } =
            decide(&forged, &Facts::default(), Some("mx.example.test"))
        else {
            panic!("trusted a forged sender")
        };
        assert_eq!(silence, Some(Silence::Unauthenticated));
        let signed = mail(
            "an@a.example",
            "Storing",
            "Werkt niet.",
            "Authentication-Results: mx.example.test; dmarc=pass header.from=a.example\r\n",
        );
        assert!(matches!(
            decide(&signed, &Facts::default(), Some("mx.example.test")),
            Decision::Ticket(_)
        ));
    }
}
