//! Sorting a request into a category and spotting chargeable work, from the
//! weighted multilingual rules in `config/rules.toml` that a desk can tune.
//!
//! Each rule is a regular expression with a weight that votes for one
//! category, one chargeable reason or one priority. Matches in the subject weigh more than
//! in the body. Every decision keeps the rules that fired, so an agent can see
//! why a ticket was sorted the way it was.

use std::collections::BTreeMap;

use regex::bytes::Regex;
use serde::{Deserialize, Serialize};

use super::model::{features, Model, Prediction, REASONS};
use super::text::Reading;
use super::{Category, ChargeReason, Priority};

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
    /// How much the rules' share of the votes adds to the model's log-probability.
    rule_weight: f32,
    /// The same for the priority: how much the priority rules' votes (each
    /// point of score, between -3 and 3) add to the model's log-probability.
    priority_rule_weight: f32,
    /// An incident is critical once that blended probability reaches this,
    /// even when "high" is likelier: missing care work that stopped costs
    /// more than an agent lowering a priority.
    critical_threshold: f32,
    /// A request is flagged chargeable when the model's probability of
    /// "in scope" is below this and the rules' votes for some reason exceed
    /// `model_reason_gate` (one weak sign, like a PC being mentioned, is not enough)...
    model_reason_threshold: f32,
    model_reason_gate: f32,
    /// ...or when the model alone puts "in scope" below this.
    model_reason_sure: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            subject_weight: 1.5,
            reason_threshold: 2.0,
            default_category: "question".into(),
            rule_weight: 1.3,
            priority_rule_weight: 0.5,
            critical_threshold: 0.25,
            model_reason_threshold: 0.7,
            model_reason_gate: 1.0,
            model_reason_sure: 0.4,
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
    #[serde(default)]
    priority: Option<String>,
    weight: f32,
    pattern: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Category(Category),
    Reason(ChargeReason),
    Priority(Priority),
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
    rule_weight: f32,
    priority_rule_weight: f32,
    critical_threshold: f32,
    reason_threshold_model: f32,
    model_reason_gate: f32,
    model_reason_sure: f32,
}

/// Why a ticket was sorted as it was; stored with the ticket, shown to agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Evidence {
    /// The ids of the rules that fired, strongest first, with their contribution.
    pub rules: Vec<(String, f32)>,
    /// Score per category.
    pub scores: BTreeMap<String, f32>,
    /// Share of the winning category in all category votes (rules only), or
    /// the model's probability of it, 0 to 1.
    pub confidence: f32,
    /// The model's strongest features for the chosen category.
    #[serde(default)]
    pub features: Vec<(String, f32)>,
    /// The model's probability of the chosen chargeable reason (or of none).
    #[serde(default)]
    pub reason_confidence: Option<f32>,
    /// True when the trained model took part in the decision.
    #[serde(default)]
    pub model: bool,
    /// The probability of the chosen priority (model), or the rules' share
    /// of the priority votes.
    #[serde(default)]
    pub priority_confidence: Option<f32>,
    /// The model's strongest features for the chosen priority.
    #[serde(default)]
    pub priority_features: Vec<(String, f32)>,
    /// The sentence of the mail (as written) that the strongest rule for
    /// the chargeable reason matched: what an agent reads to see why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_sentence: Option<String>,
}

/// What classification found.
#[derive(Debug, Clone, PartialEq)]
pub struct Sorted {
    pub category: Category,
    pub chargeable: Option<ChargeReason>,
    pub priority: Priority,
    pub evidence: Evidence,
    /// The rules' votes per chargeable reason.
    pub reason_votes: BTreeMap<ChargeReason, f32>,
    /// The rules' votes per priority.
    pub priority_votes: BTreeMap<Priority, f32>,
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
            let target = match (&r.category, &r.reason, &r.priority) {
                (None, None, Some(p)) => Target::Priority(Priority::parse(p).ok_or_else(|| {
                    err(format!(
                        "{at}rule {}: priority {p:?} must be normal, high or critical",
                        r.id
                    ))
                })?),
                (Some(c), None, None) => Target::Category(Category::parse(c).ok_or_else(|| {
                    err(format!(
                        "{at}rule {}: category {c:?} must be question, incident, change or feedback",
                        r.id
                    ))
                })?),
                (None, Some(x), None) => Target::Reason(ChargeReason::parse(x).ok_or_else(|| {
                    err(format!(
                        "{at}rule {}: reason {x:?} must be infrastructure, training, own_modification, on_site or change_request",
                        r.id
                    ))
                })?),
                _ => {
                    return Err(err(format!(
                        "{at}rule {}: give exactly one of category, reason or priority",
                        r.id
                    )))
                }
            };
            let regex = super::text::folded_rule_regex(&r.pattern)
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
            rule_weight: raw.settings.rule_weight,
            priority_rule_weight: raw.settings.priority_rule_weight,
            critical_threshold: raw.settings.critical_threshold,
            reason_threshold_model: raw.settings.model_reason_threshold,
            model_reason_gate: raw.settings.model_reason_gate,
            model_reason_sure: raw.settings.model_reason_sure,
        })
    }

    /// Sorts one reading. `change_requests_chargeable` flags every change request.
    pub fn classify(&self, reading: &Reading, change_requests_chargeable: bool) -> Sorted {
        let mut category_scores: BTreeMap<Category, f32> = BTreeMap::new();
        let mut reason_scores: BTreeMap<ChargeReason, f32> = BTreeMap::new();
        let mut priority_scores: BTreeMap<Priority, f32> = BTreeMap::new();
        let mut fired: Vec<(String, f32)> = Vec::new();
        for rule in &self.rules {
            let mut score = 0.0;
            if rule.regex.is_match(reading.folded_subject.as_bytes()) {
                score += rule.weight * self.subject_weight;
            }
            if rule.regex.is_match(reading.folded_body.as_bytes()) {
                score += rule.weight;
            }
            if score == 0.0 {
                continue;
            }
            match rule.target {
                Target::Category(c) => *category_scores.entry(c).or_default() += score,
                Target::Reason(r) => *reason_scores.entry(r).or_default() += score,
                Target::Priority(p) => *priority_scores.entry(p).or_default() += score,
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
            .clone()
            .into_iter()
            .filter(|(_, s)| *s >= self.reason_threshold)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(r, _)| r);
        if chargeable == Some(ChargeReason::ChangeRequest) && !change_requests_chargeable {
            chargeable = None;
        }
        if category == Category::Change && change_requests_chargeable && chargeable.is_none() {
            chargeable = Some(ChargeReason::ChangeRequest);
        }
        let priority_total: f32 = priority_scores.values().filter(|s| **s > 0.0).sum();
        let (priority, priority_confidence) = priority_scores
            .iter()
            .filter(|(_, s)| **s >= self.reason_threshold)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or((Priority::Normal, None), |(p, s)| {
                (*p, Some(s / priority_total))
            });
        let priority_confidence = priority_confidence.filter(|_| category == Category::Incident);
        Sorted {
            category,
            chargeable,
            priority: only_incidents_are_urgent(category, priority),
            evidence: Evidence {
                rules: fired,
                scores: category_scores
                    .into_iter()
                    .map(|(c, s)| (c.as_str().to_string(), s))
                    .collect(),
                confidence,
                priority_confidence,
                ..Evidence::default()
            },
            reason_votes: reason_scores,
            priority_votes: priority_scores,
        }
    }

    /// Sorts with the rules and, when given, the trained model: the model
    /// sees the words, character n-grams and the rules that fired; the rule
    /// scores are added with `settings.rule_weight`, so a desk's own rules
    /// can still tip a decision. `explain` adds the model's top features.
    pub fn sort(
        &self,
        reading: &Reading,
        model: Option<&Model>,
        change_requests_chargeable: bool,
        explain: bool,
    ) -> Sorted {
        let mut by_rules = self.classify(reading, change_requests_chargeable);
        let Some(model) = model else {
            by_rules.chargeable = unless_nothing_is_broken(
                by_rules.category,
                by_rules.chargeable,
                &by_rules.evidence,
            );
            if explain {
                by_rules.evidence.reason_sentence =
                    self.reason_sentence(reading, by_rules.chargeable, &by_rules.evidence.rules);
            }
            return by_rules;
        };
        let x = features(reading, &by_rules.evidence.rules);
        let p = model.predict(&x);
        let mut blended = self.category_logits(&p, &rule_shares(&by_rules.evidence));
        for s in blended.iter_mut() {
            *s /= model.temperature;
        }
        softmax(&mut blended);
        let (best, confidence) = blended
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let category = Category::ALL[best];
        // Flag a reason when "in scope" is not likely enough; which reason
        // is the likeliest of the others (a change request only for changes).
        let in_scope = p.reason[0];
        let (reason_index, reason_p) = p
            .reason
            .iter()
            .copied()
            .enumerate()
            .skip(1)
            .filter(|(i, _)| REASONS[*i] != Some(ChargeReason::ChangeRequest))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        // The model alone flags only when it is sure; otherwise the concept
        // rules must have seen a sign of out-of-scope work too.
        let rules_saw_reason = by_rules
            .reason_votes
            .values()
            .any(|v| *v > self.model_reason_gate);
        let threshold = self.reason_threshold_model;
        let sure = self.model_reason_sure;
        let chargeable = if category == Category::Change {
            change_requests_chargeable.then_some(ChargeReason::ChangeRequest)
        } else if in_scope < sure || (in_scope < threshold && rules_saw_reason) {
            REASONS[reason_index]
        } else {
            None
        };
        let chargeable = unless_nothing_is_broken(category, chargeable, &by_rules.evidence);
        let reason_p = if chargeable.is_some() {
            reason_p
        } else {
            in_scope
        };
        let (priority, priority_confidence) = match p.priority {
            // Priority ranks failures: a question, a change or feedback is
            // normal however urgent its words (an agent can raise it).
            Some(_) if category != Category::Incident => (Priority::Normal, None),
            Some(pp) => {
                let mut blended: Vec<f32> = Priority::ALL
                    .iter()
                    .zip(pp)
                    .map(|(k, pk)| {
                        let rule = by_rules.priority_votes.get(k).copied().unwrap_or(0.0);
                        pk.max(1e-6).ln() + self.priority_rule_weight * rule.clamp(-3.0, 3.0)
                    })
                    .collect();
                softmax(&mut blended);
                let critical = Priority::ALL
                    .iter()
                    .position(|p| *p == Priority::Critical)
                    .unwrap_or(2);
                // Leaning towards critical is for when the rules are silent
                // or agree: when they vote against it (an outage that is
                // over), the likeliest priority wins.
                let lean = by_rules
                    .priority_votes
                    .get(&Priority::Critical)
                    .is_none_or(|v| *v >= 0.0);
                let (best, conf) = if lean && blended[critical] >= self.critical_threshold {
                    (critical, blended[critical])
                } else {
                    blended
                        .iter()
                        .copied()
                        .enumerate()
                        .filter(|(i, _)| *i != critical)
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .unwrap_or((0, 1.0))
                };
                (Priority::ALL[best], Some(conf))
            }
            None => (by_rules.priority, by_rules.evidence.priority_confidence),
        };
        // Care work stopping is rare and must not be missed: when the
        // rules saw it, their word stands over the model's.
        let (priority, priority_confidence) = if by_rules.priority == Priority::Critical {
            (Priority::Critical, by_rules.evidence.priority_confidence)
        } else {
            (priority, priority_confidence)
        };
        let priority = only_incidents_are_urgent(category, priority);
        let (features, priority_features, reason_sentence) = if explain {
            let hits = &by_rules.evidence.rules;
            (
                model.top_features(&x, reading, hits, category, 6),
                if priority == Priority::Normal {
                    Vec::new()
                } else {
                    model.top_priority_features(&x, reading, hits, priority, 6)
                },
                self.reason_sentence(reading, chargeable, hits),
            )
        } else {
            (Vec::new(), Vec::new(), None)
        };
        Sorted {
            category,
            chargeable,
            priority,
            evidence: Evidence {
                confidence,
                features,
                reason_confidence: Some(reason_p),
                model: true,
                priority_confidence,
                priority_features,
                reason_sentence,
                ..by_rules.evidence
            },
            reason_votes: by_rules.reason_votes,
            priority_votes: by_rules.priority_votes,
        }
    }

    /// The sentence of the body (as written, not folded) around the first
    /// body match of the strongest fired rule for `reason` (for a change
    /// request: for that reason or the change category). `fired` is
    /// strongest first. None when no such rule matched the body.
    fn reason_sentence(
        &self,
        reading: &Reading,
        reason: Option<ChargeReason>,
        fired: &[(String, f32)],
    ) -> Option<String> {
        let reason = reason?;
        let speaks_for = |t: Target| match t {
            Target::Reason(r) => r == reason,
            Target::Category(Category::Change) => reason == ChargeReason::ChangeRequest,
            _ => false,
        };
        // A rule voting against the reason ("our network works fine") is
        // never the sentence given for it.
        fired
            .iter()
            .filter(|(_, score)| *score > 0.0)
            .find_map(|(id, _)| {
                let rule = self
                    .rules
                    .iter()
                    .find(|r| speaks_for(r.target) && r.id == *id)?;
                let m = rule.regex.find(reading.folded_body.as_bytes())?;
                // Folding maps each char to one ASCII char: byte offsets in the
                // folded body are char positions in the body.
                Some(sentence_around(&reading.body, m.start(), m.end()))
            })
    }

    /// The category scores the model and the rules give together, before
    /// the temperature and the softmax: the model's log-probability plus
    /// `rule_weight` times the rules' share of the votes.
    pub fn category_logits(&self, p: &Prediction, rule_shares: &[f32; 4]) -> Vec<f32> {
        p.category
            .iter()
            .zip(rule_shares)
            .map(|(pc, share)| pc.max(1e-6).ln() + self.rule_weight * share)
            .collect()
    }
}

/// Each category's share of the rules' category votes (divided by at
/// least 1, so one weak vote is not a certainty), in [`Category::ALL`] order.
pub fn rule_shares(evidence: &Evidence) -> [f32; 4] {
    let total: f32 = evidence.scores.values().sum::<f32>().max(1.0);
    Category::ALL.map(|c| evidence.scores.get(c.as_str()).copied().unwrap_or(0.0) / total)
}

/// Priority ranks failures: only an incident is high or critical. A
/// question, a change or feedback is normal however urgent its words (the
/// corpora's writers meant them so; an agent can raise one).
fn only_incidents_are_urgent(category: Category, priority: Priority) -> Priority {
    match category {
        Category::Incident => priority,
        Category::Question | Category::Change | Category::Feedback => Priority::Normal,
    }
}

/// Their own hardware, network or operating system is chargeable work only
/// when something of theirs is broken: a question that merely names
/// Windows, SQL Server or the network, with no sign of a failure among the
/// rules that fired, is answered within the contract.
fn unless_nothing_is_broken(
    category: Category,
    chargeable: Option<ChargeReason>,
    evidence: &Evidence,
) -> Option<ChargeReason> {
    let failing = evidence
        .scores
        .get(Category::Incident.as_str())
        .is_some_and(|s| *s > 0.0);
    match chargeable {
        Some(ChargeReason::Infrastructure) if category == Category::Question && !failing => None,
        other => other,
    }
}

/// The longest a reason's sentence is shown: longer ones are cut around the match.
const SENTENCE_CHARS: usize = 300;

/// The sentence of `body` holding chars `start..end`: from just after the
/// end of the sentence before (`.`, `!` or `?` followed by a blank) up to and
/// including its own end, blanks and line breaks as single spaces, at most
/// about [`SENTENCE_CHARS`] (cut around the match, marked `…`).
fn sentence_around(body: &str, start: usize, end: usize) -> String {
    let chars: Vec<char> = body.chars().collect();
    let n = chars.len();
    let (start, end) = (start.min(n), end.min(n).max(start.min(n)));
    let ends_sentence = |i: usize| {
        matches!(chars[i], '.' | '!' | '?') && chars.get(i + 1).is_none_or(|c| c.is_whitespace())
    };
    let mut from = start;
    while from > 0 && !ends_sentence(from - 1) {
        from -= 1;
    }
    let mut to = end.saturating_sub(1).max(start);
    while to < n && !ends_sentence(to) {
        to += 1;
    }
    let to = (to + 1).min(n);
    let half = SENTENCE_CHARS / 2;
    let (cut_from, cut_to) = (
        from.max(start.saturating_sub(half)),
        to.min(end.saturating_add(half)),
    );
    let mut text: String = chars[cut_from..cut_to].iter().collect();
    text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if cut_from > from {
        text.insert(0, '…');
    }
    if cut_to < to {
        text.push('…');
    }
    text
}

fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::MIN, f32::max);
    let sum: f32 = scores
        .iter_mut()
        .map(|s| {
            *s = (*s - max).exp();
            *s
        })
        .sum();
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_naming_their_systems_is_not_infrastructure_unless_something_is_broken() {
        let rules = Rules::builtin();
        let model = crate::triage::model::load(None).unwrap();
        let ask = Reading::of(
            "Vraag over Windows 11",
            "Dag, we vervangen onze pc's door laptops met Windows 11 en SQL Server 2022 op een nieuwe server. Wat zijn de minimale vereisten voor jullie client?",
        );
        for m in [None, model.as_ref()] {
            let s = rules.sort(&ask, m, true, false);
            assert_eq!(s.category, Category::Question, "{:?}", s.evidence);
            assert_eq!(s.chargeable, None, "{:?}", s.evidence);
        }
        let broken = Reading::of(
            "Netwerk plat",
            "Sinds de switch op de eerste verdieping vervangen is, werkt het netwerk niet meer en krijgen de pc's geen verbinding met de server. Foutmelding: netwerkpad niet gevonden.",
        );
        let s = rules.sort(&broken, model.as_ref(), true, false);
        assert_eq!(
            s.chargeable,
            Some(ChargeReason::Infrastructure),
            "{:?}",
            s.evidence
        );
    }

    #[test]
    fn care_work_stopping_is_critical_and_says_why() {
        let rules = Rules::builtin();
        let model = crate::triage::model::load(None).unwrap();
        let down = Reading::of(
            "Medicatieronde lukt niet",
            "Sinds 7u kan niemand op afdeling B2 de medicatieronde openen: foutmelding bij het laden. We werken nu op papier.",
        );
        for m in [None, model.as_ref()] {
            let s = rules.sort(&down, m, true, true);
            assert_eq!(s.category, Category::Incident, "{:?}", s.evidence);
            assert_eq!(s.priority, Priority::Critical, "{:?}", s.evidence);
            assert!(
                s.evidence
                    .rules
                    .iter()
                    .any(|(id, _)| id.starts_with("priority.")),
                "{:?}",
                s.evidence
            );
        }
        // The same words in a request are urgent at most.
        let ask = Reading::of(
            "Vraag",
            "Kunnen jullie een extra veld toevoegen aan de medicatieronde? We werken nu op papier voor die notities.",
        );
        let s = rules.sort(&ask, model.as_ref(), true, false);
        assert_ne!(s.priority, Priority::Critical, "{:?}", s.evidence);
        let calm = Reading::of("Vraag over rapport", "Hoe druk ik het weekrapport af?");
        assert_eq!(
            rules.sort(&calm, model.as_ref(), true, false).priority,
            Priority::Normal
        );
    }

    /// Sorts `reading` with the built-in rules alone and with the built-in
    /// model, and checks that both give `category` and `priority`.
    fn assert_sorted_both_ways(reading: &Reading, category: Category, priority: Priority) {
        let rules = Rules::builtin();
        let model = crate::triage::model::load(None).unwrap();
        for m in [None, model.as_ref()] {
            let s = rules.sort(reading, m, true, false);
            assert_eq!(s.category, category, "{:?}", s.evidence);
            assert_eq!(s.priority, priority, "{:?}", s.evidence);
        }
    }

    #[test]
    fn only_an_incident_carries_a_priority() {
        let ask = Reading::of(
            "DRINGEND vraag",
            "Dringend: hoe zet ik een bewoner over naar een andere kamer? De familie staat hier te wachten.",
        );
        assert_sorted_both_ways(&ask, Category::Question, Priority::Normal);
    }

    #[test]
    fn care_planning_gone_is_critical_and_an_outage_that_is_over_is_not() {
        let empty = Reading::of(
            "Pflegeplanung Wohnbereich 2",
            "Seit heute früh ist die Pflegeplanung im ganzen Wohnbereich 2 leer, auf allen Tablets. Die Frühschicht arbeitet mit Zetteln.",
        );
        assert_sorted_both_ways(&empty, Category::Incident, Priority::Critical);
        let rules = Rules::builtin();
        let model = crate::triage::model::load(None).unwrap();
        let over = Reading::of(
            "Ausfall gestern Abend",
            "Gestern Abend konnte im Wohnbereich 2 niemand die Medikationsliste öffnen, wir haben auf Papier gearbeitet. Seit 22 Uhr läuft alles wieder. Können Sie nachsehen, was passiert ist?",
        );
        let s = rules.sort(&over, model.as_ref(), true, false);
        assert_eq!(s.category, Category::Incident, "{:?}", s.evidence);
        assert_ne!(s.priority, Priority::Critical, "{:?}", s.evidence);
    }

    #[test]
    fn the_critical_threshold_decides_between_high_and_critical() {
        let model = crate::triage::model::load(None).unwrap();
        let model = model.as_ref();
        // A failure with no priority rule at all: the model decides.
        let slow = Reading::of(
            "Foutmelding bij afdrukken",
            "Bij het afdrukken van het weekrapport krijg ik een foutmelding.",
        );
        let with = |t: f32| {
            let text = format!("[settings]\ncritical_threshold = {t}\n[[rule]]\nid = \"i\"\ncategory = \"incident\"\nweight = 3\npattern = 'foutmelding'\n");
            Rules::parse("r", &text)
                .unwrap()
                .sort(&slow, model, true, false)
        };
        assert_eq!(with(0.0).priority, Priority::Critical);
        assert_ne!(with(1.01).priority, Priority::Critical);
    }

    #[test]
    fn a_negative_weight_votes_against_its_target() {
        let text = "[settings]\nreason_threshold = 2\n[[rule]]\nid = \"net\"\nreason = \"infrastructure\"\nweight = 3\npattern = 'netwerk'\n[[rule]]\nid = \"fine\"\nreason = \"infrastructure\"\nweight = -2\npattern = 'werkt gewoon'\n";
        let rules = Rules::parse("r", text).unwrap();
        let broken = Reading::of("Storing", "Het netwerk ligt plat.");
        assert_eq!(
            rules.classify(&broken, true).chargeable,
            Some(ChargeReason::Infrastructure)
        );
        let fine = Reading::of(
            "Storing",
            "Het netwerk werkt gewoon, alleen jullie programma niet.",
        );
        let s = rules.classify(&fine, true);
        assert_eq!(s.chargeable, None);
        assert_eq!(
            s.reason_votes.get(&ChargeReason::Infrastructure),
            Some(&1.0)
        );
        // A vote against critical leaves the others' confidence a share.
        let text = "[[rule]]\nid = \"h\"\npriority = \"high\"\nweight = 3\npattern = 'storing'\n[[rule]]\nid = \"over\"\npriority = \"critical\"\nweight = -4\npattern = 'werkt weer'\n[[rule]]\nid = \"i\"\ncategory = \"incident\"\nweight = 3\npattern = 'storing'\n";
        let p = Rules::parse("r", text).unwrap().classify(
            &Reading::of("", "Storing gisteren, nu werkt weer alles."),
            true,
        );
        assert_eq!(p.priority, Priority::High);
        assert_eq!(p.evidence.priority_confidence, Some(1.0));
        // The model sees the rule as a feature like any other: finite values.
        let x = crate::triage::model::features(&fine, &s.evidence.rules);
        assert!(x.iter().all(|(_, v)| v.is_finite() && *v > 0.0), "{x:?}");
    }

    #[test]
    fn a_priority_rule_is_parsed_and_a_wrong_one_named() {
        let ok = "[[rule]]\nid = \"p\"\npriority = \"critical\"\nweight = 2\npattern = 'plat'\n";
        let rules = Rules::parse("r", ok).unwrap();
        let s = rules.classify(&Reading::of("Alles plat", "storing"), true);
        // In the subject only: 2 × subject_weight 1.5.
        assert_eq!(s.priority_votes.get(&Priority::Critical), Some(&3.0));
        let bad = ok.replace("critical", "urgent");
        let e = Rules::parse("r", &bad).unwrap_err().to_string();
        assert!(e.contains("must be normal, high or critical"), "{e}");
        let both = ok.replace("priority = ", "category = \"incident\"\npriority = ");
        let e = Rules::parse("r", &both).unwrap_err().to_string();
        assert!(
            e.contains("exactly one of category, reason or priority"),
            "{e}"
        );
    }

    #[test]
    fn the_sentence_behind_a_chargeable_reason_is_kept_as_written() {
        let text = "[settings]\nreason_threshold = 1\n[[rule]]\nid = \"t\"\nreason = \"training\"\nweight = 2\npattern = 'opleiding'\n[[rule]]\nid = \"c\"\ncategory = \"change\"\nweight = 1\npattern = 'nieuw veld'\n";
        let rules = Rules::parse("r", text).unwrap();
        let r = Reading::of(
            "Vraag",
            "De app werkt goed. Graag een OPLEIDING voor de\nnieuwe verpleegkundigen van Één afdeling! Verder niets.",
        );
        let s = rules.sort(&r, None, true, true);
        assert_eq!(s.chargeable, Some(ChargeReason::Training));
        assert_eq!(
            s.evidence.reason_sentence.as_deref(),
            Some("Graag een OPLEIDING voor de nieuwe verpleegkundigen van Één afdeling!")
        );
        // Only when an explanation is asked for: sorting stays fast.
        assert_eq!(
            rules.sort(&r, None, true, false).evidence.reason_sentence,
            None
        );
        // A change request: the change rule's sentence.
        let r = Reading::of(
            "Wijziging",
            "Kan er een nieuw veld bij in het dossier? Dank u.",
        );
        let s = rules.sort(&r, None, true, true);
        assert_eq!(s.chargeable, Some(ChargeReason::ChangeRequest));
        assert_eq!(
            s.evidence.reason_sentence.as_deref(),
            Some("Kan er een nieuw veld bij in het dossier?")
        );
        // Nothing chargeable, no sentence; old evidence without it still reads.
        let r = Reading::of("Vraag", "Hoe druk ik af?");
        assert_eq!(
            rules.sort(&r, None, true, true).evidence.reason_sentence,
            None
        );
        let old: Evidence =
            serde_json::from_str(r#"{"rules":[],"scores":{},"confidence":0.5}"#).unwrap();
        assert_eq!(old.reason_sentence, None);
        // A very long sentence is cut around the match.
        let long = format!("{} opleiding {}.", "a".repeat(400), "b".repeat(400));
        let cut = sentence_around(&long, 401, 410);
        assert!(
            cut.starts_with('…') && cut.ends_with('…') && cut.contains("opleiding"),
            "{cut}"
        );
        assert!(cut.chars().count() <= SENTENCE_CHARS + 12, "{cut}");
    }

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
