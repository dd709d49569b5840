//! Which of the desk's languages a text is written in.
//!
//! Short service-desk mails defeat statistical detectors ("Werkt niet meer,
//! dringend!"), so two signals are combined: frequent function words of each
//! language, which decide even a short line, and whatlang restricted to the
//! desk's languages for longer text. When neither is sure the caller falls
//! back (to the registered person's language).

use std::sync::LazyLock;

use whatlang::{Detector, Lang};

use super::Language;

/// Function words typical of one language and rare in the other three.
const STOPWORDS: [(Language, &[&str]); 4] = [
    (
        Language::Nl,
        &[
            "de", "het", "een", "en", "niet", "ik", "wij", "we", "jullie", "is", "zijn", "van",
            "op", "voor", "met", "dat", "die", "er", "kan", "kunnen", "wordt", "geen", "ook",
            "nog", "bij", "naar", "hoe", "wat", "mijn", "onze", "ons", "u", "uw", "graag",
            "bedankt", "dank", "alvast", "sinds", "vandaag", "werkt", "meer", "heeft", "hebben",
            "maar", "als", "wel", "om", "te", "aan", "deze", "dit", "zou", "moet",
        ],
    ),
    (
        Language::Fr,
        &[
            "le",
            "la",
            "les",
            "un",
            "une",
            "des",
            "et",
            "est",
            "pas",
            "je",
            "nous",
            "vous",
            "ne",
            "du",
            "dans",
            "pour",
            "avec",
            "que",
            "qui",
            "sur",
            "au",
            "aux",
            "ce",
            "cette",
            "il",
            "elle",
            "sont",
            "avons",
            "merci",
            "depuis",
            "plus",
            "mais",
            "ou",
            "comment",
            "notre",
            "nos",
            "votre",
            "vos",
            "fonctionne",
            "être",
            "avoir",
            "peut",
            "pouvez",
            "bonjour",
            "problème",
            "ça",
            "c'est",
            "d'un",
            "d'une",
            "j'ai",
            "n'est",
        ],
    ),
    (
        Language::En,
        &[
            "the", "a", "an", "and", "is", "not", "i", "we", "you", "it", "of", "to", "in", "for",
            "with", "that", "this", "on", "can", "could", "would", "are", "was", "be", "have",
            "has", "our", "your", "my", "please", "thanks", "thank", "since", "doesn't", "don't",
            "can't", "does", "how", "what", "when", "there", "any", "from", "working", "would",
            "hello", "regards",
        ],
    ),
    (
        Language::De,
        &[
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "ich",
            "wir",
            "sie",
            "ein",
            "eine",
            "einen",
            "mit",
            "für",
            "von",
            "auf",
            "zu",
            "den",
            "dem",
            "des",
            "bei",
            "seit",
            "kann",
            "können",
            "könnten",
            "bitte",
            "danke",
            "uns",
            "unser",
            "unsere",
            "ihr",
            "ihre",
            "auch",
            "noch",
            "wie",
            "was",
            "wird",
            "werden",
            "haben",
            "hat",
            "funktioniert",
            "nach",
            "aus",
            "mehr",
            "kein",
            "keine",
            "sehr",
            "geehrte",
            "freundlichen",
            "grüßen",
        ],
    ),
];

static DETECTOR: LazyLock<Detector> =
    LazyLock::new(|| Detector::with_allowlist(vec![Lang::Nld, Lang::Fra, Lang::Eng, Lang::Deu]));

fn from_whatlang(lang: Lang) -> Option<Language> {
    match lang {
        Lang::Nld => Some(Language::Nl),
        Lang::Fra => Some(Language::Fr),
        Lang::Eng => Some(Language::En),
        Lang::Deu => Some(Language::De),
        _ => None,
    }
}

/// Function-word hits per language, in [`Language::ALL`] order.
fn stopword_votes(text: &str) -> [usize; 4] {
    let mut votes = [0usize; 4];
    for word in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
    {
        let w = word.to_lowercase();
        for (i, (_, words)) in STOPWORDS.iter().enumerate() {
            if words.contains(&w.as_str()) {
                votes[i] += 1;
            }
        }
    }
    votes
}

/// The language of `text`, or `None` when the text is too short or too mixed to tell.
pub fn detect(text: &str) -> Option<Language> {
    let votes = stopword_votes(text);
    let mut ranked: Vec<(usize, Language)> = votes
        .iter()
        .zip(Language::ALL)
        .map(|(v, l)| (*v, l))
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
    let (best, best_lang) = ranked[0];
    let second = ranked[1].0;
    // A clear function-word majority decides, even on one short line.
    if best >= 2 && best >= second * 2 {
        return Some(best_lang);
    }
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters >= 40 {
        if let Some(info) = DETECTOR.detect(text) {
            if info.confidence() >= 0.2 {
                return from_whatlang(info.lang());
            }
        }
    }
    (best >= 3 && best > second).then_some(best_lang)
}

/// The most likely language even when unsure: [`detect`], else whatlang's
/// guess at any length, else the function-word leader. For measuring.
pub fn detect_best(text: &str) -> Language {
    if let Some(l) = detect(text) {
        return l;
    }
    if let Some(l) = DETECTOR.detect(text).and_then(|i| from_whatlang(i.lang())) {
        return l;
    }
    let votes = stopword_votes(text);
    let best = (0..4).max_by_key(|i| votes[*i]).unwrap_or(0);
    Language::ALL[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_mails() {
        for (text, want) in [
            ("De medicatiemodule werkt niet meer", Some(Language::Nl)),
            (
                "Le logiciel ne fonctionne plus depuis ce matin",
                Some(Language::Fr),
            ),
            ("The care plan module does not open", Some(Language::En)),
            ("Das Programm funktioniert nicht mehr", Some(Language::De)),
            ("ok", None),
        ] {
            assert_eq!(detect(text), want, "{text}");
        }
    }
}
