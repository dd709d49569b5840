//! Recognising mail that no person wrote: auto-replies, mailing lists, bulk
//! mail, bounces, loops and our own messages. Such mail never gets an answer,
//! which is what keeps two robots from mailing each other forever.

use serde::Serialize;

use crate::mail::InboundMail;

/// Why a message was recognised as automated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressReason {
    /// `Auto-Submitted` other than `no` (RFC 3834).
    AutoSubmitted,
    /// `Precedence: bulk`, `list` or `junk`.
    Precedence,
    /// `List-Id` or `List-Unsubscribe`.
    MailingList,
    /// `X-Loop` naming our own address.
    XLoop,
    /// `X-Autoreply` or `X-Autorespond`.
    AutoreplyHeader,
    /// `X-Auto-Response-Suppress: All` or `AutoReply`.
    AutoResponseSuppress,
    /// `Return-Path: <>`, the null sender of bounces.
    NullReturnPath,
    /// MAILER-DAEMON, postmaster, noreply and the like.
    RobotSender,
    /// Our own support address.
    OwnAddress,
    /// A delivery status notification (`multipart/report`).
    DeliveryReport,
}

impl SuppressReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressReason::AutoSubmitted => "auto_submitted",
            SuppressReason::Precedence => "precedence",
            SuppressReason::MailingList => "mailing_list",
            SuppressReason::XLoop => "x_loop",
            SuppressReason::AutoreplyHeader => "autoreply_header",
            SuppressReason::AutoResponseSuppress => "auto_response_suppress",
            SuppressReason::NullReturnPath => "null_return_path",
            SuppressReason::RobotSender => "robot_sender",
            SuppressReason::OwnAddress => "own_address",
            SuppressReason::DeliveryReport => "delivery_report",
        }
    }
}

/// Local parts that belong to robots, compared without `-`, `_` and `.`.
const ROBOT_LOCAL_PARTS: &[&str] = &[
    "mailerdaemon",
    "postmaster",
    "noreply",
    "donotreply",
    "dontreply",
    "bounce",
    "bounces",
    "autoreply",
    "autoresponder",
    "notification",
    "notifications",
];

fn is_robot_address(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    let squashed: String = local
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .collect();
    // `bounces+abc=example.org` (VERP) and `noreply.team` count too.
    let head = squashed.split('+').next().unwrap_or("");
    ROBOT_LOCAL_PARTS.contains(&head)
}

/// The first reason, in a fixed order, that marks this mail as automated.
pub fn detect(mail: &InboundMail, support_address: &str) -> Option<SuppressReason> {
    let h = &mail.automation;
    let support = crate::mail::bare_address(support_address).to_ascii_lowercase();
    let from = mail.from.as_ref().map(|f| f.key()).unwrap_or_default();
    if h.auto_submitted
        .as_deref()
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"))
    {
        return Some(SuppressReason::AutoSubmitted);
    }
    if h.precedence.as_deref().is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "bulk" | "list" | "junk"
        )
    }) {
        return Some(SuppressReason::Precedence);
    }
    if h.list_id || h.list_unsubscribe {
        return Some(SuppressReason::MailingList);
    }
    if h.x_loop
        .iter()
        .any(|v| v.to_ascii_lowercase().contains(&support))
    {
        return Some(SuppressReason::XLoop);
    }
    if h.x_autoreply {
        return Some(SuppressReason::AutoreplyHeader);
    }
    if h.x_auto_response_suppress.as_deref().is_some_and(|v| {
        v.split(',')
            .map(|x| x.trim().to_ascii_lowercase())
            .any(|x| x == "all" || x == "autoreply")
    }) {
        return Some(SuppressReason::AutoResponseSuppress);
    }
    if h.return_path.as_deref() == Some("") {
        return Some(SuppressReason::NullReturnPath);
    }
    if is_robot_address(&from) {
        return Some(SuppressReason::RobotSender);
    }
    if from == support {
        return Some(SuppressReason::OwnAddress);
    }
    if mail.content_type == "multipart/report" {
        return Some(SuppressReason::DeliveryReport);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_addresses() {
        for a in [
            "MAILER-DAEMON@mx.example",
            "no-reply@x.example",
            "noreply@x.example",
            "do-not-reply@x.example",
            "bounces+123=a.example@lists.example",
            "postmaster@x.example",
        ] {
            assert!(is_robot_address(a), "{a}");
        }
        for a in [
            "an.peeters@x.example",
            "noreen@x.example",
            "bouncer.jan@x.example",
        ] {
            assert!(!is_robot_address(a), "{a}");
        }
    }
}
