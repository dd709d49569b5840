//! Recognising mail that no person wrote: auto-replies, mailing lists, bulk
//! mail, bounces, loops and our own messages. Such mail never gets an answer,
//! which is what keeps two robots from mailing each other forever.

use std::sync::LazyLock;

use regex::Regex;
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
    /// An out-of-office or other automatic answer recognised by its words
    /// only (robots that set none of the usual headers).
    AutoReplyText,
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
            SuppressReason::AutoReplyText => "auto_reply_text",
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

/// Subjects of automatic answers in the desk's languages and from the
/// common mail programs.
static AUTO_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    super::text::folded_regex(
        r"(?ix)^\s*(
            # Words only robots put first in a subject.
            afwezigheidsmelding | afwezigheidsbericht | abwesenheitsnotiz | abwesenheitsmeldung
          | abwesenheitsnachricht | urlaubsmeldung | message\s+d'absence | autoreply
            # Phrases a person may also write (a complaint titled Automatische
            # Antworten): only as a label, followed by a colon, a dash, until
            # and the like, or nothing.
          | (automatisch\s+(antwoord|bericht) | automatische\s+antwort | autom\.\s+antwort
            | automatic\s+reply | auto(matic)?[-\s]?reply | réponse\s+automatique | réponse\s+auto
            | out\s+of\s+(the\s+)?office(\s+(auto)?reply)? | away\s+from\s+(the\s+)?office
            | absen(ce|t) | abwesend | afwezig | niet\s+aanwezig | vakantie(melding)? | on\s+leave
            | en\s+congé | außer\s+haus | nicht\s+im\s+büro)
            \s*(:|-|$|\s+(tot|until|till|jusqu|bis|du\s+bureau|notice|message)\b)
            # Bounces.
          | undeliverable | undelivered\s+mail | delivery\s+status\s+notification
          | mail\s+delivery\s+(failed|failure|subsystem) | returned\s+mail | non\s+remis
          | unzustellbar | onbestelbaar
        )",
    )
    .expect("valid auto-reply subject regex")
});

/// Opening lines of automatic answers.
static AUTO_OPENING: LazyLock<Regex> = LazyLock::new(|| {
    super::text::folded_regex(
        r"(?ix)\b(
            (ik\s+ben|ben\s+ik)\s+(momenteel\s+|tot\s+en\s+met\s+\S+\s+|tot\s+\S+\s+)?(afwezig|niet\s+aanwezig|met\s+verlof|op\s+vakantie)
          | (je\s+suis|je\s+serai)\s+(actuellement\s+)?(absente?|en\s+cong[ée]|en\s+vacances|hors\s+du\s+bureau)
          | i\s+(am|will\s+be)\s+(currently\s+)?(out\s+of\s+(the\s+)?office|away|on\s+(annual\s+)?leave|on\s+holiday|on\s+vacation)
          | ich\s+bin\s+(derzeit\s+|zurzeit\s+|bis\s+\S+\s+)?(nicht\s+im\s+büro|abwesend|im\s+urlaub|außer\s+haus)
          | this\s+is\s+an\s+automatic(ally\s+generated)?\s+(reply|message|response)
          | dit\s+is\s+een\s+automatisch(\s+gegenereerd)?\s+(antwoord|bericht)
          | ceci\s+est\s+une?\s+(r[ée]ponse|message)\s+automatique
          | dies\s+ist\s+eine\s+automatische\s+(antwort|nachricht)
        )",
    )
    .expect("valid auto-reply opening regex")
});

/// True when the subject or the first lines read like an automatic answer.
fn reads_like_auto_reply(mail: &InboundMail) -> bool {
    if AUTO_SUBJECT.is_match(&super::text::fold(&mail.subject)) {
        return true;
    }
    let opening: String = mail
        .text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    AUTO_OPENING.is_match(&super::text::fold(&opening))
}

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
    if reads_like_auto_reply(mail) {
        return Some(SuppressReason::AutoReplyText);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(subject: &str, body: &str) -> InboundMail {
        crate::mail::parse(
            format!("From: a@b.example\r\nSubject: {subject}\r\n\r\n{body}\r\n").as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn out_of_office_without_headers() {
        for (subject, body) in [
            (
                "Afwezigheidsmelding: Storing",
                "Ik ben afwezig tot maandag.",
            ),
            ("Automatisch antwoord: vraag", "..."),
            ("Out of Office: question", "..."),
            ("Automatic reply: Outage", "..."),
            ("Absence", "..."),
            ("Réponse automatique : panne", "..."),
            ("Abwesenheitsnotiz: Störung", "..."),
            ("Automatische Antwort: Frage", "..."),
            (
                "Re: [CS-000001] Storing",
                "Beste,\n\nIk ben momenteel afwezig en lees mijn mail niet.",
            ),
            (
                "RE: Panne",
                "Bonjour,\nJe suis absente jusqu'au 3 décembre.",
            ),
            ("Storing", "I am currently out of the office until Monday."),
        ] {
            assert!(
                reads_like_auto_reply(&mail(subject, body)),
                "{subject} / {body}"
            );
        }
    }

    #[test]
    fn people_are_not_robots() {
        for (subject, body) in [
            (
                "Afwezigheden registreren",
                "Hoe registreer ik de afwezigheid van een bewoner?",
            ),
            (
                "Storing medicatie",
                "Sinds vanochtend werkt de module niet meer.",
            ),
            (
                "Question absence",
                "Comment encoder une absence d'un résident ?",
            ),
        ] {
            assert!(!reads_like_auto_reply(&mail(subject, body)), "{subject}");
        }
    }

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
