//! What a search box's text means: words, quoted phrases and the ticket
//! number, customer or address it may name; how words are folded (case and
//! accents) and stemmed (Snowball, per language); and which part of a
//! ticket a hit came from, with a short snippet.
//!
//! Pure: no I/O. The store turns a [`Search`] into FTS5 (SQLite) or
//! `tsquery` (PostgreSQL) syntax from the words found here, never from the
//! text as typed, so nothing a user types is read as query syntax.

use std::collections::BTreeSet;

use rust_stemmers::{Algorithm, Stemmer};

use crate::domain::Language;

/// Letters folded to one ASCII letter, in the order of [`FOLD_TO`]. The
/// PostgreSQL migration `0017` folds with the same two strings
/// (`translate`), and a unit test holds them equal.
pub const FOLD_FROM: &str =
    "àáâãäåāăąçćĉċčďđèéêëēĕėęěìíîïĩīĭįıñńņňòóôõöøōŏőùúûüũūŭůűųýÿŷśšşźżžłřťğ";
/// What each letter of [`FOLD_FROM`] becomes.
pub const FOLD_TO: &str = "aaaaaaaaacccccddeeeeeeeeeiiiiiiiiinnnnooooooooouuuuuuuuuuyyyssszzzlrtg";

/// At most this many words and phrases count in one search.
const MAX_TERMS: usize = 8;
/// Longer words are cut (no real word is longer; it bounds the query).
const MAX_WORD: usize = 64;
/// Words of a message's text that are stemmed for the index.
const MAX_INDEXED_WORDS: usize = 50_000;

/// Lower case without accents: `Facturé` → `facture`, `Straße` → `strasse`.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        match c {
            'ß' => out.push_str("ss"),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            _ => match FOLD_FROM.chars().position(|f| f == c) {
                Some(i) => out.push(FOLD_TO.chars().nth(i).unwrap_or(c)),
                None => out.push(c),
            },
        }
    }
    out
}

/// The words of a text: runs of letters and digits (as SQLite's
/// `unicode61` tokenizer and PostgreSQL's parser split them, near enough).
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn stemmer(language: Language) -> Stemmer {
    Stemmer::create(match language {
        Language::Nl => Algorithm::Dutch,
        Language::Fr => Algorithm::French,
        Language::En => Algorithm::English,
        Language::De => Algorithm::German,
    })
}

/// The stems of a text in its language, for SQLite's index: each distinct
/// stem of a folded word that is not already the word itself, space-separated.
pub fn index_stems(text: &str, language: Language) -> String {
    let stemmer = stemmer(language);
    let mut seen = BTreeSet::new();
    let mut out = String::new();
    for word in words(text).take(MAX_INDEXED_WORDS) {
        if word.chars().count() > MAX_WORD {
            continue;
        }
        let folded = fold(word);
        let stem = stemmer.stem(&folded);
        if *stem == *word.to_lowercase() || !seen.insert(stem.to_string()) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&stem);
    }
    out
}

/// One searched word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Folded (lower case, no accents).
    pub word: String,
    /// Lower case as typed, when it differs from `word` (`straße`).
    pub raw: Option<String>,
    /// The last word of the box: also matches longer words (type-ahead).
    pub prefix: bool,
    /// Its Dutch, French, English and German stems that differ from `word`.
    pub stems: Vec<String>,
}

/// What the whole text may name exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exact {
    /// `123` or `CS-000123`: the ticket's row id (numbers are made from it).
    pub id: Option<i64>,
    /// `CS-000123`, upper case.
    pub number: Option<String>,
    /// A sender's address, lower case.
    pub address: Option<String>,
    /// `@domain.example`: every sender of that domain, lower case.
    pub domain: Option<String>,
    /// A customer's name, lower case.
    pub customer: Option<String>,
}

/// A parsed search: every word and phrase must occur (in one message or the
/// subject), or the whole text names a ticket, customer or sender exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub terms: Vec<Term>,
    /// Quoted phrases of two words or more, folded.
    pub phrases: Vec<Vec<String>>,
    pub exact: Exact,
}

impl Search {
    /// Reads a search box. Quotes make a phrase (`"geen verbinding"`); the
    /// last word also matches longer words; anything that is not a letter
    /// or digit only separates words.
    pub fn parse(typed: &str) -> Search {
        // Control characters (a NUL above all, which PostgreSQL refuses in
        // text) are only separators.
        let mut text: String = typed
            .trim()
            .chars()
            .take(500)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if typed.trim().chars().count() > 500 {
            // Cut at a word's end, not inside one.
            let end = text.rfind(char::is_whitespace).unwrap_or(0);
            text.truncate(end);
        }
        let mut search = Search {
            exact: exact(&text),
            ..Search::default()
        };
        let mut budget = MAX_TERMS;
        let mut last_bare: Option<usize> = None;
        for (i, part) in text.split('"').enumerate() {
            // Odd parts are inside quotes; an unclosed quote is just words.
            let quoted = i % 2 == 1 && text.split('"').count() > i + 1;
            let part_words: Vec<&str> = words(part).collect();
            if quoted && part_words.len() > 1 {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                search.phrases.push(
                    part_words
                        .iter()
                        .take(MAX_TERMS)
                        .map(|w| fold(&cut(w)))
                        .collect(),
                );
                last_bare = None;
                continue;
            }
            for w in part_words {
                if budget == 0 {
                    break;
                }
                let word = fold(&cut(w));
                if search.terms.iter().any(|t| t.word == word) {
                    continue;
                }
                budget -= 1;
                let raw = Some(cut(w).to_lowercase()).filter(|r| *r != word);
                let mut stems: Vec<String> = Vec::new();
                for l in Language::ALL {
                    let s = stemmer(l).stem(&word).to_string();
                    if s != word && !s.is_empty() && !stems.contains(&s) {
                        stems.push(s);
                    }
                }
                search.terms.push(Term {
                    word,
                    raw,
                    prefix: false,
                    stems,
                });
                last_bare = (!quoted).then(|| search.terms.len() - 1);
            }
            if quoted {
                last_bare = None;
            }
        }
        // Type-ahead: the last word still being typed (not a finished
        // quote, not followed by a space), two letters or more.
        let still_typing = !typed.ends_with(|c: char| c.is_whitespace() || c == '"');
        if let Some(i) = last_bare.filter(|_| still_typing) {
            let t = &mut search.terms[i];
            t.prefix = t.word.chars().count() >= 2;
        }
        search
    }

    /// True when nothing in the text can match anything (only punctuation).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.phrases.is_empty() && self.exact == Exact::default()
    }

    /// True when there are words or phrases to look up in the text index.
    pub fn has_text(&self) -> bool {
        !self.terms.is_empty() || !self.phrases.is_empty()
    }

    /// Whether one text (a subject or a message) holds every word and
    /// phrase, read in `language`: the same rule as the index, for saying
    /// where a hit came from.
    pub fn matches(&self, text: &str, language: Language) -> bool {
        if !self.has_text() {
            return false;
        }
        let stemmer = stemmer(language);
        let folded: Vec<String> = words(text).map(fold).collect();
        let term_ok = |t: &Term| folded.iter().any(|w| t.hits(w, &stemmer));
        let phrase_ok = |p: &Vec<String>| folded.windows(p.len()).any(|win| win == p.as_slice());
        self.terms.iter().all(term_ok) && self.phrases.iter().all(phrase_ok)
    }

    /// A short piece of `text` around the first searched word, cut into
    /// plain-text parts, each marked when it is a searched word. `None`
    /// when no word occurs. (The caller escapes; nothing here is markup.)
    pub fn snippet(&self, text: &str, language: Language) -> Option<Vec<(String, bool)>> {
        let stemmer = stemmer(language);
        let wanted: Vec<&str> = self
            .terms
            .iter()
            .map(|t| t.word.as_str())
            .chain(self.phrases.iter().flatten().map(String::as_str))
            .collect();
        let hit = |w: &str| {
            let f = fold(w);
            self.terms.iter().any(|t| t.hits(&f, &stemmer)) || wanted.contains(&f.as_str())
        };
        // Word spans (byte offsets) of the text, on one line.
        let flat: String = text
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        let mut spans = Vec::new();
        let mut start = None;
        for (i, c) in flat.char_indices() {
            match (c.is_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    spans.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            spans.push((s, flat.len()));
        }
        let first = spans.iter().position(|&(s, e)| hit(&flat[s..e]))?;
        let from = first.saturating_sub(6);
        let to = (first + 14).min(spans.len());
        let (begin, end) = (spans[from].0, spans[to - 1].1);
        let mut parts: Vec<(String, bool)> = Vec::new();
        if from > 0 {
            parts.push(("… ".into(), false));
        }
        let mut at = begin;
        for &(s, e) in &spans[from..to] {
            if hit(&flat[s..e]) {
                parts.push((squeeze(&flat[at..s]), false));
                parts.push((flat[s..e].to_string(), true));
                at = e;
            }
        }
        parts.push((squeeze(&flat[at..end]), false));
        if to < spans.len() {
            parts.push((" …".into(), false));
        }
        parts.retain(|(t, _)| !t.is_empty());
        Some(parts)
    }
}

/// The ticket a hit is explained on.
#[derive(Debug, Clone, Copy)]
pub struct HitTicket<'a> {
    pub id: i64,
    pub number: &'a str,
    pub customer: &'a str,
    pub sender: &'a str,
    pub subject: &'a str,
    pub language: Language,
}

/// Where a search found a ticket, for the queue page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// `number`, `customer`, `sender`, `subject`, `inbound` (a customer's
    /// mail), `reply` (an agent's) or `note`.
    pub field: &'static str,
    /// Plain-text parts around the first word found, each marked when it
    /// is a searched word; empty for the exact fields and the subject.
    pub snippet: Vec<(String, bool)>,
}

impl Search {
    /// Where this search found the ticket: the exact fields first, then the
    /// subject, then the first of its `messages` (kind, subject, text; as
    /// `Store::searched_messages` gives them) holding every word.
    pub fn found(
        &self,
        t: &HitTicket<'_>,
        messages: &[(&'static str, String, String)],
    ) -> Option<Found> {
        let e = &self.exact;
        let plain = |field| {
            Some(Found {
                field,
                snippet: Vec::new(),
            })
        };
        if e.id == Some(t.id) || e.number.as_deref() == Some(t.number) {
            return plain("number");
        }
        let sender = t.sender.to_lowercase();
        if e.address.as_deref() == Some(sender.as_str())
            || e.domain.as_deref().is_some_and(|d| sender.ends_with(d))
        {
            return plain("sender");
        }
        if e.customer.as_deref() == Some(t.customer.to_lowercase().as_str()) {
            return plain("customer");
        }
        if self.matches(t.subject, t.language) {
            return plain("subject");
        }
        for (kind, subject, body) in messages {
            if self.matches(&format!("{subject}\n{body}"), t.language) {
                let snippet = self
                    .snippet(body, t.language)
                    .or_else(|| self.snippet(subject, t.language))
                    .unwrap_or_default();
                return Some(Found {
                    field: kind,
                    snippet,
                });
            }
        }
        None
    }
}

/// Runs of spaces as one.
fn squeeze(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    out
}

fn cut(word: &str) -> String {
    word.chars().take(MAX_WORD).collect()
}

impl Term {
    /// Whether a folded word of a text is this term: the same word, a
    /// longer one when typing, or the same stem.
    fn hits(&self, word: &str, stemmer: &Stemmer) -> bool {
        if word == self.word || (self.prefix && word.starts_with(&self.word)) {
            return true;
        }
        // Stemming only takes letters off the end (and changes a few
        // there), so a word can only share a stem with a term that starts
        // with the same letters: the others are not stemmed at all.
        let head: String = word.chars().take(3).collect();
        if !self.word.starts_with(&head) && !self.stems.iter().any(|s| s.starts_with(&head)) {
            return false;
        }
        let stem = stemmer.stem(word);
        *stem == *self.word || self.stems.iter().any(|s| *s == *stem)
    }
}

/// What the whole text names exactly, if anything.
fn exact(text: &str) -> Exact {
    let mut e = Exact::default();
    if text.is_empty() || text.chars().count() > 200 {
        return e;
    }
    let digits = |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if digits(text) {
        e.id = text.parse().ok();
    } else if let Some((prefix, n)) = text.rsplit_once('-') {
        if digits(n) && !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_alphabetic()) {
            e.id = n.parse().ok();
            e.number = Some(text.to_ascii_uppercase());
        }
    }
    if !text.contains(char::is_whitespace) && text.contains('@') {
        let lower = text.to_lowercase();
        if lower.starts_with('@') {
            e.domain = Some(lower);
        } else {
            e.address = Some(lower);
        }
    }
    e.customer = Some(text.to_lowercase());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_removes_case_and_accents() {
        assert_eq!(fold("Facturé"), "facture");
        assert_eq!(fold("CATÉGORIE"), "categorie");
        assert_eq!(fold("Straße Œuvre"), "strasse oeuvre");
        assert_eq!(fold("Drücker"), "drucker");
        assert_eq!(FOLD_FROM.chars().count(), FOLD_TO.chars().count());
    }

    #[test]
    fn the_postgres_migration_folds_with_the_same_letters() {
        let sql = include_str!("../migrations/postgres/0017_search.sql");
        assert!(
            sql.contains(FOLD_FROM),
            "FOLD_FROM differs from the migration"
        );
        assert!(sql.contains(FOLD_TO), "FOLD_TO differs from the migration");
    }

    #[test]
    fn stems_bring_word_forms_together() {
        let nl = |w: &str| stemmer(Language::Nl).stem(&fold(w)).to_string();
        assert_eq!(nl("facturen"), nl("factuur"));
        let fr = |w: &str| stemmer(Language::Fr).stem(&fold(w)).to_string();
        assert_eq!(fr("imprimantes"), fr("imprimante"));
        let de = |w: &str| stemmer(Language::De).stem(&fold(w)).to_string();
        assert_eq!(de("Druckers"), de("Drucker"));
        let stems = index_stems("De facturen kloppen niet", Language::Nl);
        assert!(stems.split(' ').any(|s| s == nl("factuur")), "{stems}");
    }

    #[test]
    fn words_phrases_and_the_last_word_as_prefix() {
        let s = Search::parse("Imprimante \"geen verbinding\" fact");
        let words: Vec<&str> = s.terms.iter().map(|t| t.word.as_str()).collect();
        assert_eq!(words, ["imprimante", "fact"]);
        assert!(!s.terms[0].prefix && s.terms[1].prefix);
        assert_eq!(
            s.phrases,
            vec![vec!["geen".to_string(), "verbinding".to_string()]]
        );
        assert!(!Search::parse("printer ").terms[0].prefix);
        assert!(!Search::parse("\"printer\"").terms[0].prefix);
        assert!(
            !Search::parse("a").terms[0].prefix,
            "one letter is no prefix"
        );
    }

    #[test]
    fn syntax_is_only_a_separator() {
        for hostile in ["\"", "*", ":", "'", "&|!", "()", "\"\"", "^-+", "NEAR("] {
            let s = Search::parse(hostile);
            for t in &s.terms {
                assert!(
                    t.word.chars().all(char::is_alphanumeric),
                    "{hostile}: {t:?}"
                );
            }
        }
        assert!(!Search::parse("&|!").has_text());
        assert_eq!(Search::parse("NEAR(").terms[0].word, "near");
        assert_eq!(Search::parse("a:b*c").terms.len(), 3);
    }

    #[test]
    fn exact_names() {
        assert_eq!(Search::parse("123").exact.id, Some(123));
        let s = Search::parse("cs-000123");
        assert_eq!(s.exact.id, Some(123));
        assert_eq!(s.exact.number.as_deref(), Some("CS-000123"));
        assert_eq!(
            Search::parse("An@Zorg.Example").exact.address.as_deref(),
            Some("an@zorg.example")
        );
        assert_eq!(
            Search::parse("@zorg.example").exact.domain.as_deref(),
            Some("@zorg.example")
        );
        assert_eq!(Search::parse("printer").exact.id, None);
    }

    #[test]
    fn matching_and_snippets() {
        let s = Search::parse("facture categorie");
        assert!(s.matches("Votre facturé, catégorie B", Language::Fr));
        assert!(!s.matches("Votre facturé", Language::Fr));
        let s = Search::parse("facturen");
        assert!(s.matches("Een vraag over de factuur van maart", Language::Nl));
        let parts = s
            .snippet("Een vraag over de factuur van maart", Language::Nl)
            .unwrap();
        assert!(parts.contains(&("factuur".to_string(), true)), "{parts:?}");
        let text: String = parts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(text, "Een vraag over de factuur van maart");
    }

    #[test]
    fn where_a_ticket_was_found() {
        let t = HitTicket {
            id: 7,
            number: "CS-000007",
            customer: "WZC De Linde",
            sender: "koen@delinde.example",
            subject: "Printer kapot",
            language: Language::Nl,
        };
        let messages = vec![
            (
                "inbound",
                "Printer kapot".to_string(),
                "De printer <b>drukt</b> niet.".to_string(),
            ),
            (
                "note",
                "Printer kapot".to_string(),
                "Kabelbreuk vermoed.".to_string(),
            ),
        ];
        let field = |q: &str| Search::parse(q).found(&t, &messages).map(|f| f.field);
        assert_eq!(field("7"), Some("number"));
        assert_eq!(field("cs-000007"), Some("number"));
        assert_eq!(field("wzc de linde"), Some("customer"));
        assert_eq!(field("@delinde.example"), Some("sender"));
        assert_eq!(field("printer"), Some("subject"));
        assert_eq!(field("kabelbreuk "), Some("note"));
        let found = Search::parse("drukt ").found(&t, &messages).unwrap();
        assert_eq!(found.field, "inbound");
        // The text stays text: markup in a mail is only characters here.
        assert!(
            found.snippet.contains(&("drukt".to_string(), true)),
            "{found:?}"
        );
        assert!(
            found.snippet.iter().any(|(p, _)| p.contains("<b>")),
            "{found:?}"
        );
        assert_eq!(field("zzz"), None);
    }
}
