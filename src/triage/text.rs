//! Reading a mail the way an agent does: the subject and the new text, without
//! the quoted history, the signature and the legal disclaimer underneath.
//! The full text stays on the ticket; this view is only for deciding.

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

/// Folds one character for matching: lower case, accents dropped, and any
/// other non-ASCII character replaced, so matching runs on ASCII text (where
/// the regex engine's fast path works) and "Störung"/"storung" meet.
fn fold_char(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'a',
        'ç' | 'Ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
        'ñ' | 'Ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
        'ý' | 'ÿ' | 'Ý' => 'y',
        'ß' => 's',
        '’' | '‘' | '´' | '`' => '\'',
        '“' | '”' | '«' | '»' | '„' => '"',
        '–' | '—' | '‐' => '-',
        c if c.is_ascii() => c.to_ascii_lowercase(),
        c if c.is_whitespace() => ' ',
        _ => '~',
    }
}

/// A text folded for matching (see [`fold_char`]).
pub fn fold(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

/// Compiles a pattern to run on folded text, case-insensitively: its
/// letters are folded the same way (see [`fold_pattern`]; under
/// case-insensitive matching, lowering ASCII letters changes nothing).
///
/// # Errors
///
/// When the pattern is not a valid regular expression.
pub fn folded_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let folded = fold_pattern(pattern);
    // The text is folded to ASCII, so ASCII classes and ASCII case folding
    // say the same as their Unicode forms, with far smaller automata (and
    // less memory). A pattern that needs Unicode mode (`.` may not match
    // bytes that are not UTF-8) keeps it.
    RegexBuilder::new(&folded)
        .case_insensitive(true)
        .unicode(false)
        .build()
        .or_else(|_| RegexBuilder::new(&folded).case_insensitive(true).build())
}

/// A pattern as it is matched against folded text: its letters folded
/// the same way (`é` → `e`, `A` → `a`), the character after a backslash
/// left as written (`\W`, `\S`, `\B` keep their meaning).
fn fold_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut escaped = false;
    for c in pattern.chars() {
        out.push(if escaped { c } else { fold_char(c) });
        escaped = !escaped && c == '\\';
    }
    out
}

/// A sorting rule's pattern, compiled to match folded text (lower case
/// ASCII) as bytes. Matching case-sensitively lets the regex engine skip
/// ahead to the literal words a pattern needs, and as bytes even `.` stays
/// ASCII-only (a `str` regex must then take Unicode mode, whose automata
/// for `.{0,80}` are many times larger and slower).
pub fn folded_rule_regex(pattern: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(&fold_pattern(pattern))
        .unicode(false)
        .build()
}

/// Lines that start the quoted earlier conversation (or a forwarded one) in
/// the desk's four languages and the common mail programs.
static QUOTE_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    folded_regex(
        r"(?ix)^\s*(
            (op|on|le|am|el|il)\s.{4,200}(schreef|wrote|a\s+écrit|schrieb|escribió|ha\s+scritto)\s*.{0,80}:\s*$
          | -{2,}\s*(original\s+message|oorspronkelijk\s+bericht|message\s+d'origine|ursprüngliche\s+nachricht|forwarded\s+message|doorgestuurd\s+bericht|message\s+transféré|weitergeleitete\s+nachricht)\s*-{2,}
          | _{10,}\s*$
          | (van|from|de|von)\s*:\s.+@.+$
        )",
    )
    .expect("valid quote-header regex")
});

/// The first two lines of the header block Outlook puts above a quoted or
/// forwarded message, where the sender may have no address:
/// `From: Tom Fletcher` then `Sent: …` (or `Van:`/`Verzonden:`,
/// `De :`/`Envoyé :`, `Von:`/`Gesendet:`).
static OUTLOOK_FROM: LazyLock<Regex> = LazyLock::new(|| {
    folded_regex(r"(?i)^\s*\*?(van|from|de|von)\s*:\*?\s*\S").expect("valid regex")
});
static OUTLOOK_NEXT: LazyLock<Regex> = LazyLock::new(|| {
    folded_regex(
        r"(?i)^\s*\*?(sent|date|verzonden|verstuurd|datum|envoyé|gesendet|to|aan|à|an)\s*:",
    )
    .expect("valid regex")
});

/// Lines from which on everything is signature or disclaimer.
static SIGNATURE_START: LazyLock<Regex> = LazyLock::new(|| {
    folded_regex(
        r"(?ix)^\s*(
            --\s*$
          | ((met\s+)?(vriendelijke|hartelijke|beste|collegiale|fijne)\s+groet(en|jes)?|groeten|groetjes|groet|mvg|vg|alvast\s+(bedankt|dank)|dank\s+bij\s+voorbaat|bedankt\s+alvast|(bien\s+)?cordialement|bien\s+(à\s+vous|amicalement)|(meilleures\s+|sinc[èe]res\s+)?salutations(\s+distinguées)?|bonne\s+(journée|fin\s+de\s+journée|soirée)|(merci\s+)?d'avance(\s+merci)?|merci\s+d'avance|amicalement|(kind|best|warm|many)\s+(regards|thanks)|regards|best|cheers|thanks(\s+in\s+advance)?|thank\s+you(\s+in\s+advance)?|many\s+thanks|(mit\s+)?(freundlichen|besten|herzlichen|lieben|vielen)\s+gr(ü|ue|u)(ß|ss)(en|e)|(viele|beste|liebe|freundliche)\s+gr(ü|ue|u)(ß|ss)e|gruß|gruss|mfg|lg|danke\s+im\s+voraus|vielen\s+dank(\s+im\s+voraus)?)\s*[,.!]*\s*$
          | (disclaimer|vertrouwelijkheid|dit\s+bericht\s+(is|kan)\s+vertrouwelijk|ce\s+message\s+(et\s+ses\s+pièces|est\s+confidentiel)|this\s+(e-?mail|message)\s+(and\s+any|is\s+confidential|may\s+contain)|diese\s+(e-?mail|nachricht)\s+(enthält|ist\s+vertraulich|kann\s+vertrauliche))
          | (sent\s+from\s+my|verzonden\s+vanaf\s+mijn|envoyé\s+de\s+mon|von\s+meinem\s+.{1,30}\s+gesendet)
        )",
    )
    .expect("valid signature regex")
});

/// Greeting lines carry no meaning for sorting.
static GREETING: LazyLock<Regex> = LazyLock::new(|| {
    folded_regex(r"(?i)^\s*(beste|dag|hallo|hoi|goedemorgen|goeiemiddag|goedemiddag|bonjour|bonsoir|madame|monsieur|cher|chère|dear|hello|hi|good\s+morning|sehr\s+geehrte|guten\s+(tag|morgen)|liebe|lieber)\b.{0,60}[,!]?\s*$")
        .expect("valid greeting regex")
});

/// The parts of a mail that matter for deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The subject without `Re:`/`Fwd:`/`TR:`/`AW:` prefixes.
    pub subject: String,
    /// The new text: no quoted history, signature, disclaimer or greeting.
    pub body: String,
    /// True when the mail quoted an earlier message below the new text.
    pub has_quote: bool,
    /// `subject` folded for matching (see [`fold`]).
    pub folded_subject: String,
    /// `body` folded for matching.
    pub folded_body: String,
}

static SUBJECT_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*((re|fw|fwd|tr|aw|wg|antw|sv|vs|réf|ref)\s*(\[\d+\])?\s*:\s*)+")
        .expect("valid prefix regex")
});

impl Reading {
    pub fn of(subject: &str, text: &str) -> Reading {
        let subject = SUBJECT_PREFIX.replace(subject, "").trim().to_string();
        let mut lines = Vec::new();
        let mut has_quote = false;
        // After the signature starts, lines are only looked at for quotes.
        let mut in_signature = false;
        let mut rest = text.lines().peekable();
        while let Some(line) = rest.next() {
            let folded = fold(line);
            let outlook = OUTLOOK_FROM.is_match(&folded)
                && rest
                    .peek()
                    .is_some_and(|next| OUTLOOK_NEXT.is_match(&fold(next)));
            if QUOTE_HEADER.is_match(&folded) || outlook {
                has_quote = true;
                break;
            }
            if line.trim_start().starts_with('>') {
                has_quote = true;
                continue;
            }
            if in_signature {
                continue;
            }
            if SIGNATURE_START.is_match(&folded) && !lines.is_empty() {
                in_signature = true;
                continue;
            }
            if lines.is_empty() && GREETING.is_match(&folded) {
                continue;
            }
            lines.push(line.trim());
        }
        let body = lines
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        Reading {
            folded_subject: fold(&subject),
            folded_body: fold(&body),
            subject,
            body,
            has_quote,
        }
    }

    /// Subject and new text together, for language detection.
    pub fn for_language(&self) -> String {
        format!("{}\n{}", self.subject, self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_quotes_signature_and_greeting() {
        let text = "Beste,\n\nHet werkt weer, bedankt!\n\nMet vriendelijke groeten,\nAn Peeters\n09 123 45 67\n\nOp 3 nov. 2026 om 10:12 schreef Servicedesk <support@example.test>:\n> De medicatiemodule crasht.\n";
        let r = Reading::of("RE: [CS-000012] Storing", text);
        assert_eq!(r.subject, "[CS-000012] Storing");
        assert_eq!(r.body, "Het werkt weer, bedankt!");
        assert!(r.has_quote);
    }

    #[test]
    fn outlook_header_without_address() {
        let text = "All good now, cheers!\n\nTom\n\nFrom: Tom Fletcher\nSent: Wednesday, January 21, 2026 9:02 AM\nTo: support@example.test\nSubject: Can't print\n\nWhen I print I get an error.\n";
        let r = Reading::of("RE: Can't print", text);
        assert!(r.has_quote);
        assert!(!r.body.contains("error"), "{}", r.body);
        // A line that merely starts with "De :" is not a quote.
        let r = Reading::of("Vraag", "De : de planning klopt niet.\nWat nu?\n");
        assert!(!r.has_quote);
        assert!(r.body.contains("Wat nu?"));
    }

    #[test]
    fn french_and_german_quote_headers() {
        for header in [
            "Le lun. 2 nov. 2026 à 09:00, Servicedesk <support@example.test> a écrit :",
            "Am 02.11.2026 um 09:00 schrieb Servicedesk <support@example.test>:",
            "-----Original Message-----",
            "Van: Servicedesk <support@example.test>",
        ] {
            let r = Reading::of("", &format!("Nieuwe tekst\n{header}\noude tekst\n"));
            assert_eq!(r.body, "Nieuwe tekst", "{header}");
        }
    }
}
