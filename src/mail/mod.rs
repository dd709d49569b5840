//! Raw RFC 5322 bytes to an [`InboundMail`]: the decoded fields every later
//! stage needs, and nothing else.
//!
//! Parsing is done by mail-parser, which copes with wrong charsets, broken
//! MIME and 8-bit headers, and decodes every charset `encoding_rs` knows.
//! 8-bit text that declares no charset is guessed in [`charset`]. This
//! module does no I/O and makes no decisions.

pub mod charset;

use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{Address, Encoding, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use regex::Regex;
use sha2::{Digest, Sha256};

/// The readable text kept per message; the rest of a very long body is cut.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

/// A name and an address, as in `From: An Peeters <an.peeters@example.be>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, decoded; empty when the header had none.
    pub name: String,
    /// The address as written (matching is case-insensitive elsewhere).
    pub address: String,
}

impl Mailbox {
    /// The address in lower case, the form the registry is keyed on.
    pub fn key(&self) -> String {
        self.address.trim().to_lowercase()
    }
}

/// The headers that tell a robot from a person (RFC 3834 and common practice).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutomationHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: bool,
    pub list_unsubscribe: bool,
    /// Every `X-Loop` value.
    pub x_loop: Vec<String>,
    /// `X-Autoreply` or `X-Autorespond` present.
    pub x_autoreply: bool,
    pub x_auto_response_suppress: Option<String>,
    /// `Some("")` for the null path `<>` of bounces.
    pub return_path: Option<String>,
}

/// What a bounce says: which of our messages failed to reach whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounce {
    /// Addresses the delivery failed for (`Final-Recipient`, `X-Failed-Recipients`).
    pub recipients: Vec<String>,
    /// Message-IDs of the returned message(s), without angle brackets.
    pub original_ids: Vec<String>,
}

static FINAL_RECIPIENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^(?:final|original)-recipient:\s*rfc822\s*;\s*<?([^\s<>]+@[^\s<>]+)>?")
        .expect("valid regex")
});
static RETURNED_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?im)^message-id:\s*<([^>\s]+)>").expect("valid regex"));

/// Reads the delivery report or returned message inside a bounce.
fn bounce_details(raw: &[u8], failed_header: Option<&str>) -> Bounce {
    let text = String::from_utf8_lossy(raw);
    // Only the body: the bounce's own Message-ID is in the header.
    let body = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .map(|(_, b)| b)
        .unwrap_or("");
    let mut recipients: Vec<String> = FINAL_RECIPIENT
        .captures_iter(body)
        .map(|c| c[1].to_lowercase())
        .collect();
    if let Some(h) = failed_header {
        recipients.extend(h.split(',').map(|a| bare_address(a).to_lowercase()));
    }
    recipients.retain(|r| !r.is_empty());
    recipients.dedup();
    let mut original_ids: Vec<String> = RETURNED_ID
        .captures_iter(body)
        .map(|c| c[1].to_string())
        .collect();
    original_ids.dedup();
    Bounce {
        recipients,
        original_ids,
    }
}

/// An attachment: its name, type, decoded size and contents.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size: usize,
    pub data: Vec<u8>,
    /// The part's `Content-ID`, without angle brackets: what `cid:` in the
    /// HTML part names.
    pub content_id: Option<String>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// One inbound message, decoded.
#[derive(Debug, Clone)]
pub struct InboundMail {
    /// Without angle brackets; derived from the content when the header is missing.
    pub message_id: String,
    /// True when `message_id` was derived rather than read.
    pub message_id_derived: bool,
    /// The first mailbox of `From` (or `Sender`) that has an address; `None`
    /// when there is none. Never taken from `Reply-To`.
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub to: Vec<String>,
    /// Decoded subject, empty when missing.
    pub subject: String,
    pub date: Option<DateTime<Utc>>,
    /// Message-IDs without angle brackets.
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// The readable text: the first text part, or HTML turned into text.
    pub text: String,
    /// The first HTML part as received, when the mail has one (shown to
    /// agents only sanitised); `None` for plain-text mail.
    pub html: Option<String>,
    /// `type/subtype` of the whole message, e.g. `multipart/report` for DSNs.
    pub content_type: String,
    pub automation: AutomationHeaders,
    pub attachments: Vec<Attachment>,
    /// Size of the raw message in bytes.
    pub size: usize,
    /// Set for delivery reports and returned mail.
    pub bounce: Option<Bounce>,
    /// The full size, when the message was too large and only its header was read.
    pub truncated_from: Option<u64>,
    /// Every `Authentication-Results` header value, as written.
    pub auth_results: Vec<String>,
}

/// Why raw bytes could not become an [`InboundMail`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a mail message (no headers could be read)")]
    NotAMessage,
}

/// Strips a display name and angle brackets: `"A <a@b.c>"` → `a@b.c`.
pub fn bare_address(value: &str) -> &str {
    let v = value.trim();
    match (v.rfind('<'), v.rfind('>')) {
        (Some(start), Some(end)) if start < end => v[start + 1..end].trim(),
        _ => v,
    }
}

fn strip_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// The first mailbox that has an address: `"Name" <>, "Co" <info@co.example>`
/// gives `info@co.example`; a header of names only gives `None`.
fn first_mailbox(addr: Option<&Address<'_>>) -> Option<Mailbox> {
    addr?.iter().find_map(|a| {
        let address = a.address.as_deref()?.trim();
        address.contains('@').then(|| Mailbox {
            name: a.name.as_deref().unwrap_or("").trim().to_string(),
            address: address.to_string(),
        })
    })
}

/// The readable text of the message: its first text part, or its HTML as
/// text. A part that declares no charset and is not UTF-8 is decoded again
/// from its bytes with the charset guessed (see [`charset`]), instead of
/// being read with replacement characters.
fn body_text(msg: &Message<'_>, bytes: &[u8]) -> String {
    let text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    let part = msg
        .text_body
        .first()
        .and_then(|&i| msg.parts.get(i as usize));
    let Some(part) = part else {
        return text;
    };
    let declared = part
        .content_type()
        .is_some_and(|ct| ct.attribute("charset").is_some());
    if declared || !text.contains('\u{fffd}') {
        return text;
    }
    let start = part.raw_body_offset() as usize;
    let end = (part.raw_end_offset() as usize).min(bytes.len());
    let Some(body) = bytes.get(start..end) else {
        return text;
    };
    let decoded = match part.encoding {
        Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
        Encoding::QuotedPrintable => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        Encoding::None => Some(body.to_vec()),
    };
    let Some(decoded) = decoded else {
        return text;
    };
    let guessed = charset::decode(&decoded);
    match part.body {
        PartType::Html(_) => mail_parser::decoders::html::html_to_text(&guessed),
        _ => guessed.into_owned(),
    }
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => t
            .split_whitespace()
            .map(strip_id)
            .filter(|s| !s.is_empty())
            .collect(),
        HeaderValue::TextList(list) => list
            .iter()
            .map(|t| strip_id(t))
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn truncate_utf8(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Parses one raw message.
///
/// # Errors
///
/// [`ParseError::NotAMessage`] when no header can be read at all. A
/// message without a usable `From` address still parses (`from` is `None`).
pub fn parse(raw: &[u8]) -> Result<InboundMail, ParseError> {
    // Undeclared 8-bit headers are re-encoded as UTF-8 first; everything
    // below reads `bytes` (the offsets of parts point into it).
    let utf8_header = charset::header_block_as_utf8(raw);
    let bytes = utf8_header.as_deref().unwrap_or(raw);
    let msg = MessageParser::default()
        .parse(bytes)
        .ok_or(ParseError::NotAMessage)?;
    if msg.headers().is_empty() {
        return Err(ParseError::NotAMessage);
    }
    let from = first_mailbox(msg.from()).or_else(|| first_mailbox(msg.sender()));
    let header = |name: &str| -> Option<String> {
        msg.header_raw(name)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let automation = AutomationHeaders {
        auto_submitted: header("Auto-Submitted"),
        precedence: header("Precedence"),
        list_id: msg.header_raw("List-Id").is_some(),
        list_unsubscribe: msg.header_raw("List-Unsubscribe").is_some(),
        x_loop: msg
            .headers_raw()
            .filter(|(k, _)| k.eq_ignore_ascii_case("X-Loop"))
            .map(|(_, v)| v.trim().to_string())
            .collect(),
        x_autoreply: msg.header_raw("X-Autoreply").is_some()
            || msg.header_raw("X-Autorespond").is_some(),
        x_auto_response_suppress: header("X-Auto-Response-Suppress"),
        return_path: header("Return-Path").map(|v| bare_address(&v).to_string()),
    };
    let content_type = msg
        .root_part()
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "text/plain".into())
        .to_ascii_lowercase();
    let text = body_text(&msg, bytes).replace("\r\n", "\n");
    let text = truncate_utf8(text, MAX_TEXT_BYTES);
    let html = msg
        .html_body
        .first()
        .and_then(|&i| msg.parts.get(i as usize))
        .and_then(|part| match &part.body {
            PartType::Html(h) => Some(truncate_utf8(h.to_string(), MAX_TEXT_BYTES)),
            _ => None,
        });
    let subject = msg
        .subject()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let date = msg
        .date()
        .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single());
    let attachments = msg
        .attachments()
        .map(|part| Attachment {
            name: part.attachment_name().unwrap_or("").to_string(),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_default(),
            size: part.contents().len(),
            data: part.contents().to_vec(),
            content_id: part
                .content_id()
                .map(|id| {
                    id.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
                .filter(|id| !id.is_empty()),
        })
        .collect();

    let (message_id, message_id_derived) = match msg.message_id().map(strip_id) {
        Some(id) if !id.is_empty() => (id, false),
        _ => (derive_message_id(raw, &from, &subject, &text), true),
    };
    let from_local = from.as_ref().map(Mailbox::key).unwrap_or_default();
    // Delivery reports only: read receipts (report-type=disposition-notification)
    // are reports too, but say nothing failed.
    let delivery_report = content_type == "multipart/report"
        && msg
            .root_part()
            .content_type()
            .and_then(|ct| ct.attribute("report-type"))
            .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"));
    let looks_bounced = delivery_report
        || (content_type != "multipart/report" && automation.return_path.as_deref() == Some(""))
        || from_local.starts_with("mailer-daemon@")
        || from_local.starts_with("postmaster@");
    let bounce = looks_bounced.then(|| bounce_details(raw, msg.header_raw("X-Failed-Recipients")));
    Ok(InboundMail {
        message_id,
        message_id_derived,
        reply_to: first_mailbox(msg.reply_to()),
        to: msg
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.address.as_deref().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        subject,
        date,
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        text,
        html,
        content_type,
        automation,
        attachments,
        size: raw.len(),
        bounce,
        truncated_from: None,
        auth_results: msg
            .headers_raw()
            .filter(|(k, _)| k.eq_ignore_ascii_case("Authentication-Results"))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect(),
        from,
    })
}

/// A stable Message-ID for a message that has none: the same message
/// delivered twice yields the same ID, so it is recognised as a duplicate.
fn derive_message_id(raw: &[u8], from: &Option<Mailbox>, subject: &str, text: &str) -> String {
    let mut h = Sha256::new();
    match from {
        Some(f) => {
            h.update(f.key().as_bytes());
            h.update([0]);
            h.update(subject.as_bytes());
            h.update([0]);
            h.update(text.as_bytes());
        }
        None => h.update(raw),
    }
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}@derived.servicedesk.invalid")
}

/// The header of a raw message (up to and including the empty line), for
/// messages too large to read whole.
pub fn header_part(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(raw.len());
    &raw[..end]
}

/// The Message-ID of bytes that would not parse, so an operator can find
/// the quarantined message by it: the `Message-ID` header where one can be
/// read, else one derived from the bytes.
pub fn fallback_message_id(raw: &[u8]) -> String {
    let header = String::from_utf8_lossy(header_part(raw));
    // Unfolded: a continuation line belongs to the header above it.
    let unfolded = header
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", " ");
    unfolded
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("message-id")
                .then(|| strip_id(value))
        })
        .filter(|id| !id.is_empty() && !id.contains(char::is_whitespace))
        .unwrap_or_else(|| derive_message_id(raw, &None, "", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_subject_and_ids() {
        let raw = b"From: =?utf-8?Q?Fran=C3=A7oise?= <F.Dupont@Example.be>\r\n\
To: support@example.test\r\n\
Subject: =?utf-8?Q?Probl=C3=A8me_d'acc=C3=A8s?=\r\n\
Message-ID: <abc@x>\r\n\
In-Reply-To: <one@y>\r\n\
References: <zero@y> <one@y>\r\n\
\r\n\
Bonjour\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.subject, "Problème d'accès");
        assert_eq!(m.from.as_ref().unwrap().name, "Françoise");
        assert_eq!(m.from.as_ref().unwrap().key(), "f.dupont@example.be");
        assert_eq!(m.message_id, "abc@x");
        assert_eq!(m.in_reply_to, vec!["one@y"]);
        assert_eq!(m.references, vec!["zero@y", "one@y"]);
        assert_eq!(m.text.trim(), "Bonjour");
    }

    #[test]
    fn unparsable_bytes_keep_their_message_id_where_it_can_be_read() {
        assert_eq!(
            fallback_message_id(b"X-A: 1\r\nMessage-Id:\r\n <broken-1@example.be>\r\n\r\n\x00\x01"),
            "broken-1@example.be"
        );
        assert!(fallback_message_id(b"\x00\x01\x02").ends_with("@derived.servicedesk.invalid"));
    }

    #[test]
    fn missing_message_id_is_derived_and_stable() {
        let raw = b"From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n";
        let one = parse(raw).unwrap();
        let mut redelivered = b"Received: from x by y; Mon, 1 Jan 2026 00:00:00 +0000\r\n".to_vec();
        redelivered.extend_from_slice(raw);
        let two = parse(&redelivered).unwrap();
        assert!(one.message_id_derived);
        assert_eq!(one.message_id, two.message_id);
    }

    #[test]
    fn html_only_body_becomes_text() {
        let raw = b"From: a@b.example\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello <b>there</b></p></body></html>\r\n";
        let m = parse(raw).unwrap();
        assert!(m.text.contains("Hello"), "{:?}", m.text);
        assert!(!m.text.contains("<b>"));
        // The HTML itself is kept for the sanitised view; plain mail has none.
        assert!(m
            .html
            .as_deref()
            .is_some_and(|h| h.contains("<b>there</b>")));
        let plain = parse(b"From: a@b.example\r\n\r\nHello\r\n").unwrap();
        assert_eq!(plain.html, None);
    }

    #[test]
    fn bounce_names_recipient_and_returned_message() {
        let raw = b"Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n\
Message-ID: <bounce-1@mx.example>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n\
Final-Recipient: rfc822; An.Peeters@terbeke.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\
--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.test\r\nMessage-ID: <sd.abc.received@example.test>\r\n\
--b--\r\n";
        let b = parse(raw).unwrap().bounce.unwrap();
        assert_eq!(b.recipients, vec!["an.peeters@terbeke.example"]);
        assert_eq!(b.original_ids, vec!["sd.abc.received@example.test"]);
    }

    #[test]
    fn null_return_path_and_no_sender() {
        let raw = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@x.example\r\n\r\nbounce\r\n";
        assert_eq!(
            parse(raw).unwrap().automation.return_path.as_deref(),
            Some("")
        );
        assert_eq!(parse(b"Subject: x\r\n\r\nno from\r\n").unwrap().from, None);
    }
}
