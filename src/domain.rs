//! The desk's vocabulary: the small closed sets every part of the house
//! speaks of (languages, categories, chargeable reasons, ticket statuses,
//! notices, contract statuses, roles, agents' roles, intake outcomes).
//!
//! Each is an enum declared once with [`vocabulary!`], which gives it the
//! same everything: `ALL`, `as_str`, `parse`, `Display`, `FromStr` (with an
//! error that lists what is allowed), serde as its text, and clap value
//! parsing. The text of each value is fixed: it is what the database
//! stores, the JSON and CLI show, and the SPEC names.
//!
//! Nothing here does I/O or decides anything.

use std::fmt;

/// A text that is not one of a vocabulary's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {kind}: use {allowed}")]
pub struct UnknownValue {
    /// What was expected, e.g. `category`.
    pub kind: &'static str,
    pub value: String,
    /// The allowed values, e.g. `question, incident, change or feedback`.
    pub allowed: String,
}

/// `a, b or c`.
fn one_of(values: &[&str]) -> String {
    match values {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Declares one vocabulary enum: its values, each with its fixed text.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The fixed text of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value for a text, ignoring case and surrounding blanks.
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                Self::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }

        /// The text, padded as the format asks (`{:<13}` lines up columns).
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        /// Compares with a value's text, as JSON and the database hold it.
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                Self::parse(s).ok_or_else(|| UnknownValue {
                    kind: $kind,
                    value: s.to_string(),
                    allowed: one_of(&[$($text),+]),
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                &Self::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.as_str()))
            }
        }
    };
}

vocabulary! {
    /// The desk's languages; Dutch is the default (the vendor's own).
    #[derive(Default)]
    Language ("language") {
        #[default]
        Nl = "nl",
        Fr = "fr",
        En = "en",
        De = "de",
    }
}

vocabulary! {
    /// What a message asks for.
    Category ("category") {
        /// General or concrete questions about how the software works.
        Question = "question",
        /// Problems, failures, outages, error messages.
        Incident = "incident",
        /// Change requests and supplementary programming.
        Change = "change",
        /// Tips, suggestions and complaints.
        Feedback = "feedback",
    }
}

vocabulary! {
    /// Why a request falls outside the maintenance contract.
    ChargeReason ("chargeable reason") {
        /// Hardware or infrastructure not bought from the vendor (incl.
        /// backups, nurse-call communication, operating system, network).
        Infrastructure = "infrastructure",
        /// User training must be requested explicitly.
        Training = "training",
        /// Errors caused by the customer's own changes after delivery.
        OwnModification = "own_modification",
        /// On-site interventions; remote help is the rule.
        OnSite = "on_site",
        /// Change requests and supplementary programming.
        ChangeRequest = "change_request",
    }
}

vocabulary! {
    /// How urgent a ticket is: the SLA clock's targets depend on it.
    #[derive(Default)]
    Priority ("priority") {
        #[default]
        Normal = "normal",
        /// Seriously hinders work, but care goes on.
        High = "high",
        /// An outage that stops care work (medication rounds, nurse call,
        /// resident files) for a ward or a campus.
        Critical = "critical",
    }
}

vocabulary! {
    /// Where a ticket stands.
    TicketStatus ("ticket status") {
        New = "new",
        /// Chargeable work waits until the customer agrees to the charge.
        AwaitingApproval = "awaiting_approval",
        /// The customer's contract is suspended.
        OnHold = "on_hold",
        Open = "open",
        /// An agent asked the customer something; their answer reopens it.
        Waiting = "waiting",
        Resolved = "resolved",
        Closed = "closed",
    }
}

vocabulary! {
    /// Which automatic reply a message gets; the `X-Servicedesk-Notice` value.
    Notice ("notice") {
        Received = "received",
        Chargeable = "chargeable",
        Suspended = "suspended",
        Unregistered = "unregistered",
        /// An unregistered sender's message was too large to fetch.
        TooLarge = "too_large",
        /// The customer's contract is active again: work on a ticket on hold resumes.
        Resumed = "resumed",
        /// An agent's own answer, written in the workspace (no template, no
        /// `Auto-Submitted`: a person wrote it).
        Agent = "agent",
    }
}

impl Notice {
    /// True for the notices rendered from templates (every one but [`Notice::Agent`]).
    pub fn is_automatic(self) -> bool {
        self != Notice::Agent
    }
}

vocabulary! {
    /// What an agent of the desk may do in the workspace; each role may do
    /// everything of the one before.
    AgentRole ("agent role") {
        /// Works tickets: reads, answers, notes, re-sorts, takes.
        Agent = "agent",
        /// Also assigns tickets to others and edits saved replies.
        Lead = "lead",
        /// Also manages agents and the registry.
        Admin = "admin",
    }
}

vocabulary! {
    /// Whether the customer's fees are paid: support is given only while `Active`.
    ContractStatus ("contract status") {
        Active = "active",
        Suspended = "suspended",
    }
}

vocabulary! {
    /// Which duty a reference person has for the customer.
    Role ("role") {
        /// The reference person of one campus.
        Campus = "campus",
        /// The customer's general reference person.
        General = "general",
        /// The customer's technical contact.
        Technical = "technical",
    }
}

vocabulary! {
    /// How an inbound message ended.
    Outcome ("intake outcome") {
        Ticket = "ticket",
        Followup = "followup",
        Unregistered = "unregistered",
        Suppressed = "suppressed",
        Duplicate = "duplicate",
        Quarantined = "quarantined",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_text_and_from_serde() {
        for c in ChargeReason::ALL {
            assert_eq!(c.as_str().parse::<ChargeReason>(), Ok(c));
            assert_eq!(
                ChargeReason::parse(&format!(" {} ", c.as_str().to_uppercase())),
                Some(c)
            );
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ChargeReason>(&json).unwrap(), c);
        }
        assert_eq!(Outcome::ALL.len(), 6);
        assert_eq!(
            TicketStatus::AwaitingApproval.to_string(),
            "awaiting_approval"
        );
    }

    #[test]
    fn an_unknown_text_names_what_is_allowed() {
        let err = "urgent".parse::<Category>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"urgent\" is not a category: use question, incident, change or feedback"
        );
        assert!(serde_json::from_str::<Role>("\"boss\"").is_err());
    }
}
