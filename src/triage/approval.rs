//! Reading a customer's answer to a chargeable notice: do they agree to the
//! charge, refuse it, or is it unclear? Refusals are looked for first, so
//! "niet akkoord" is never read as "akkoord".

use std::sync::LazyLock;

use regex::Regex;

/// What the customer said about the announced charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    Agreed,
    Refused,
    /// Neither clearly: an agent has to look.
    Unclear,
}

static REFUSE: LazyLock<Regex> = LazyLock::new(|| {
    super::text::folded_regex(
        r"(?ix)\b(
            niet\s+(akkoord|ok[eé]?|nodig|gewenst|verder\s+(gaan|doen))
          | geen\s+(akkoord|toestemming|interesse|kosten|offerte\s+nodig)
          | ga\s+(maar\s+)?niet\s+verder | (liever|toch)\s+niet | afgelast | annuleer\w* | zien\s+er\s+van\s+af | laat\s+maar
          | pas\s+d'accord | (ne\s+sommes|ne\s+suis)\s+pas\s+d'accord | refus\w* | n'acceptons\s+pas | n'accepte\s+pas
          | annul\w* | (ne\s+)?pas\s+(la\s+peine|nécessaire) | ne\s+souhait\w*\s+pas | non\s+merci
          | not\s+(agreed?|ok(ay)?|accepted?|necessary|needed|interested) | do\s+not\s+(agree|accept|proceed|want)
          | don't\s+(agree|accept|proceed|want) | disagree | declin\w* | reject\w* | cancel\w* | no\s+thanks?\b | please\s+don't
          | nicht\s+(einverstanden|akzeptiert|nötig|notwendig|gewünscht) | lehnen\s+\w*\s*ab | abgelehnt | verzichten | storniere\w* | nein\s+danke
        )",
    )
    .expect("valid refusal regex")
});

static AGREE: LazyLock<Regex> = LazyLock::new(|| {
    super::text::folded_regex(
        r"(?ix)\b(
            akkoord | ga\s+(maar\s+)?verder | ok[eé]?\s*,?\s*(ga|doe|mag|plan)\w* | goedgekeurd | we\s+gaan\s+akkoord | mag\s+(uitgevoerd|gefactureerd|aangerekend)\w* | prima,?\s+(ga|doe)\w*
          | d'accord | nous\s+acceptons | j'accepte | accept[ée]e?s? | allez-y | vous\s+pouvez\s+(continuer|y\s+aller|proc[ée]der) | bon\s+pour\s+accord | ok\s+pour\s+(nous|moi)
          | agreed? | (we|i)\s+accept | go\s+ahead | please\s+proceed | approved? | fine\s+by\s+(us|me) | ok(ay)?\s*,?\s*(please\s+)?(proceed|go)
          | einverstanden | genehmigt | akzeptiert | wir\s+akzeptieren | bitte\s+(fortfahren|durchführen|weitermachen) | machen\s+sie\s+(bitte\s+)?weiter | in\s+ordnung
        )",
    )
    .expect("valid agreement regex")
});

/// Reads the customer's new text (quotes already stripped). Returns the
/// verdict and the words it was based on.
pub fn read(text: &str) -> (Approval, Option<String>) {
    let folded = super::text::fold(text);
    // Folding keeps one character per character, so a match's span in the
    // folded text is the same span of characters in the original.
    let words = |start: usize, end: usize| -> String {
        let (s, e) = (
            folded[..start].chars().count(),
            folded[..end].chars().count(),
        );
        text.chars().skip(s).take(e - s).collect()
    };
    if let Some(m) = REFUSE.find(&folded) {
        return (Approval::Refused, Some(words(m.start(), m.end())));
    }
    if let Some(m) = AGREE.find(&folded) {
        return (Approval::Agreed, Some(words(m.start(), m.end())));
    }
    (Approval::Unclear, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreements_in_four_languages() {
        for text in [
            "Akkoord, ga maar verder.",
            "ok, ga maar verder",
            "Bonjour, d'accord pour nous.",
            "Agreed, please go ahead.",
            "Wir sind einverstanden.",
        ] {
            assert_eq!(read(text).0, Approval::Agreed, "{text}");
        }
    }

    #[test]
    fn refusals_win_over_agreement_words() {
        for text in [
            "Niet akkoord, dat is te duur.",
            "Nous ne sommes pas d'accord.",
            "Not agreed, we will find another way.",
            "Damit sind wir nicht einverstanden.",
            "Laat maar, we zoeken het zelf uit.",
        ] {
            assert_eq!(read(text).0, Approval::Refused, "{text}");
        }
    }

    #[test]
    fn other_answers_are_unclear() {
        for text in [
            "Hoeveel gaat dat kosten?",
            "Pouvez-vous m'appeler ?",
            "What would it cost?",
        ] {
            assert_eq!(read(text).0, Approval::Unclear, "{text}");
        }
    }
}
