//! Sorting a request into a category and spotting chargeable work, from the
//! weighted multilingual rules in `config/rules.toml` that a desk can tune.
//!
//! Each rule is a regular expression with a weight that votes for one
//! category or one chargeable reason. Matches in the subject weigh more than
//! in the body. Every decision keeps the rules that fired, so an agent can see
//! why a ticket was sorted the way it was.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::text::Reading;
use super::{Category, ChargeReason};

/// The rules shipped with the binary; a desk may point `[triage] rules_file` elsewhere.
pub const DEFAULT_RULES: &str = include_str!("../../config/rules.toml");

/// A rules file that cannot be used, naming the file, line and fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct RulesError {
    pub file: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    settings: Settings,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    /// How much more a match in the subject counts than one in the body.
    subject_weight: f32,
    /// The score a chargeable reason needs before a request is flagged.
    reason_threshold: f32,
    /// The category of a mail no rule speaks for.
    default_category: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            subject_weight: 1.5,
            reason_threshold: 2.0,
            default_category: "question".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    weight: f32,
    pattern: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Category(Category),
    Reason(ChargeReason),
}

#[derive(Debug)]
struct Rule {
    id: String,
    target: Target,
    weight: f32,
    regex: Regex,
}

/// Compiled rules, ready to classify.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
    subject_weight: f32,
    reason_threshold: f32,
    default_category: Category,
}

/// Why a ticket was sorted as it was; stored with the ticket, shown to agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Evidence {
    /// The ids of the rules that fired, strongest first, with their contribution.
    pub rules: Vec<(String, f32)>,
    /// Score per category.
    pub scores: BTreeMap<String, f32>,
    /// Share of the winning category in all category votes, 0 to 1.
    pub confidence: f32,
}

/// What classification found.
#[derive(Debug, Clone, PartialEq)]
pub struct Sorted {
    pub category: Category,
    pub chargeable: Option<ChargeReason>,
    pub evidence: Evidence,
}

fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.find(needle)
        .map(|at| text[..at].matches('\n').count() + 1)
}

impl Rules {
    /// The rules shipped with the binary.
    pub fn builtin() -> Rules {
        Rules::parse("config/rules.toml (built in)", DEFAULT_RULES)
            .expect("the built-in rules are valid")
    }

    /// Parses and compiles a rules file; `file` is used for messages only.
    ///
    /// # Errors
    ///
    /// A [`RulesError`] naming the line of a syntax error, or the rule whose
    /// target or pattern is invalid.
    pub fn parse(file: &str, text: &str) -> Result<Rules, RulesError> {
        let err = |message: String| RulesError {
            file: file.to_string(),
            message,
        };
        let raw: RawRules = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!("line {}: ", text[..s.start].matches('\n').count() + 1))
                .unwrap_or_default();
            err(format!("{at}{}", e.message()))
        })?;
        let default_category =
            Category::parse(&raw.settings.default_category).ok_or_else(|| {
                err(
                    "settings.default_category must be question, incident, change or feedback"
                        .into(),
                )
            })?;
        let mut rules = Vec::with_capacity(raw.rules.len());
        for r in raw.rules {
            let at = line_of(text, &format!("\"{}\"", r.id))
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            let target = match (&r.category, &r.reason) {
                (Some(c), None) => Target::Category(Category::parse(c).ok_or_else(|| {
                    err(format!(
                        "{at}rule {}: category {c:?} must be question, incident, change or feedback",
                        r.id
                    ))
                })?),
                (None, Some(x)) => Target::Reason(ChargeReason::parse(x).ok_or_else(|| {
                    err(format!(
                        "{at}rule {}: reason {x:?} must be infrastructure, training, own_modification, on_site or change_request",
                        r.id
                    ))
                })?),
                _ => {
                    return Err(err(format!(
                        "{at}rule {}: give exactly one of category or reason",
                        r.id
                    )))
                }
            };
            let regex = regex::RegexBuilder::new(&r.pattern)
                .case_insensitive(true)
                .build()
                .map_err(|e| err(format!("{at}rule {}: invalid pattern: {e}", r.id)))?;
            rules.push(Rule {
                id: r.id,
                target,
                weight: r.weight,
                regex,
            });
        }
        Ok(Rules {
            rules,
            subject_weight: raw.settings.subject_weight,
            reason_threshold: raw.settings.reason_threshold,
            default_category,
        })
    }

    /// Sorts one reading. `change_requests_chargeable` flags every change request.
    pub fn classify(&self, reading: &Reading, change_requests_chargeable: bool) -> Sorted {
        let mut category_scores: BTreeMap<Category, f32> = BTreeMap::new();
        let mut reason_scores: BTreeMap<ChargeReason, f32> = BTreeMap::new();
        let mut fired: Vec<(String, f32)> = Vec::new();
        for rule in &self.rules {
            let mut score = 0.0;
            if rule.regex.is_match(&reading.subject) {
                score += rule.weight * self.subject_weight;
            }
            if rule.regex.is_match(&reading.body) {
                score += rule.weight;
            }
            if score == 0.0 {
                continue;
            }
            match rule.target {
                Target::Category(c) => *category_scores.entry(c).or_default() += score,
                Target::Reason(r) => *reason_scores.entry(r).or_default() += score,
            }
            fired.push((rule.id.clone(), score));
        }
        fired.sort_by(|a, b| b.1.total_cmp(&a.1));

        let total: f32 = category_scores.values().filter(|s| **s > 0.0).sum();
        let (category, top) = category_scores
            .iter()
            .filter(|(_, s)| **s > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(c, s)| (*c, *s))
            .unwrap_or((self.default_category, 0.0));
        let confidence = if total > 0.0 { top / total } else { 0.0 };

        let mut chargeable = reason_scores
            .iter()
            .filter(|(_, s)| **s >= self.reason_threshold)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(r, _)| *r);
        if chargeable == Some(ChargeReason::ChangeRequest) && !change_requests_chargeable {
            chargeable = None;
        }
        if category == Category::Change && change_requests_chargeable && chargeable.is_none() {
            chargeable = Some(ChargeReason::ChangeRequest);
        }
        Sorted {
            category,
            chargeable,
            evidence: Evidence {
                rules: fired,
                scores: category_scores
                    .into_iter()
                    .map(|(c, s)| (c.as_str().to_string(), s))
                    .collect(),
                confidence,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile() {
        assert!(!Rules::builtin().rules.is_empty());
    }

    #[test]
    fn bad_pattern_names_line_and_rule() {
        let text = "[[rule]]\nid = \"x.bad\"\ncategory = \"incident\"\nweight = 1\npattern = '(unclosed'\n";
        let e = Rules::parse("rules.toml", text).unwrap_err().to_string();
        assert!(
            e.starts_with("rules.toml: line 2: rule x.bad: invalid pattern"),
            "{e}"
        );
    }

    #[test]
    fn subject_weighs_more_and_default_applies() {
        let text = "[[rule]]\nid = \"i\"\ncategory = \"incident\"\nweight = 1\npattern = 'storing'\n[[rule]]\nid = \"f\"\ncategory = \"feedback\"\nweight = 1.2\npattern = 'bedankt'\n";
        let rules = Rules::parse("r", text).unwrap();
        let s = rules.classify(&Reading::of("Storing", "bedankt"), true);
        assert_eq!(s.category, Category::Incident);
        let s = rules.classify(&Reading::of("", "niets"), true);
        assert_eq!(
            (s.category, s.evidence.confidence),
            (Category::Question, 0.0)
        );
    }
}
