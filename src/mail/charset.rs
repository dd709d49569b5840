//! 8-bit text that declares no charset: raw bytes in a header, or a body
//! without `charset=`, as old mailers and some phones send them.
//!
//! The order of guesses: UTF-8 when the bytes are valid UTF-8; else
//! windows-1252 when that reads as the desk's own languages (Dutch, French,
//! German, English: Latin letters with accents, the euro sign, curly
//! quotes); else what chardetng (Firefox's detector) guesses. No I/O.

use std::borrow::Cow;

use encoding_rs::{Encoding, WINDOWS_1252};

/// `bytes` as text, their charset guessed.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let encoding = guess(bytes);
    let (text, _, _) = encoding.decode(bytes);
    Cow::Owned(text.into_owned())
}

/// The charset of `bytes`, which are not UTF-8.
fn guess(bytes: &[u8]) -> &'static Encoding {
    let (western, _, had_errors) = WINDOWS_1252.decode(bytes);
    if !had_errors && western.chars().all(reads_as_our_languages) {
        return WINDOWS_1252;
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(bytes, true);
    detector.guess(None, false)
}

/// True for the characters windows-1252 text in Dutch, French, German or
/// English is made of.
fn reads_as_our_languages(c: char) -> bool {
    c.is_ascii()
        || matches!(c, 'À'..='ÿ' if c != '×' && c != '÷')
        || matches!(
            c,
            'Œ' | 'œ'
                | 'Ÿ'
                | '€'
                | '‘'
                | '’'
                | '‚'
                | '“'
                | '”'
                | '„'
                | '–'
                | '—'
                | '…'
                | '«'
                | '»'
                | '°'
                | '\u{a0}'
                | '§'
                | '²'
                | '³'
                | '·'
        )
}

/// The header block of `raw` (up to the empty line) re-encoded as UTF-8
/// when it holds 8-bit bytes that are not UTF-8, with the rest unchanged;
/// `None` when there is nothing to re-encode. RFC 6532 allows UTF-8 in
/// headers, so the parser then reads them as the sender meant them.
pub fn header_block_as_utf8(raw: &[u8]) -> Option<Vec<u8>> {
    let header = super::header_part(raw);
    if std::str::from_utf8(header).is_ok() {
        return None;
    }
    let mut out = decode(header).into_owned().into_bytes();
    out.extend_from_slice(&raw[header.len()..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_first_then_windows_1252_for_our_languages_then_the_detector() {
        assert_eq!(decode("Problème".as_bytes()), "Problème");
        let (dutch, _, _) =
            WINDOWS_1252.encode("Geachte, de ‘rapportage’ geeft een foutmelding – café €5");
        assert_eq!(
            decode(&dutch),
            "Geachte, de ‘rapportage’ geeft een foutmelding – café €5"
        );
        let (japanese, _, _) =
            encoding_rs::SHIFT_JIS.encode("ログインできません。パスワードの再設定をお願いします。");
        assert_eq!(
            decode(&japanese),
            "ログインできません。パスワードの再設定をお願いします。"
        );
    }

    #[test]
    fn only_a_header_block_that_is_not_utf8_is_rewritten() {
        assert_eq!(
            header_block_as_utf8(b"Subject: hi\r\n\r\n\xe9t\xe9\r\n"),
            None
        );
        let raw = b"Subject: caf\xe9\r\n\r\nbody \xff\r\n";
        let mut want = "Subject: café\r\n\r\n".as_bytes().to_vec();
        want.extend_from_slice(b"body \xff\r\n");
        assert_eq!(header_block_as_utf8(raw), Some(want));
    }
}
