//! `[sla]`: business hours, closed days and the tiers sold to customers,
//! checked into an [`sla::Policy`]. A mistake names its line and the fix.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{line_of, ConfigError};
use crate::domain::{Category, Priority};
use crate::sla::{self, Calendar, Hours, Policy, TargetRule, Targets, Tier, WEEKDAYS};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSla {
    #[serde(default)]
    default_tier: Option<Spanned<String>>,
    #[serde(default)]
    due_soon: Option<Spanned<String>>,
    #[serde(default = "yes")]
    public_holidays: bool,
    #[serde(default)]
    closed_days: Vec<Spanned<String>>,
    #[serde(default)]
    hours: Option<RawHours>,
    #[serde(default)]
    tiers: Vec<RawTier>,
}

fn yes() -> bool {
    true
}

/// `[sla.hours]`: `monday = "08:30-17:00"` or `"closed"`; a day left out
/// keeps the default (Monday to Friday 08:30–17:00, weekends closed).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    monday: Option<Spanned<String>>,
    tuesday: Option<Spanned<String>>,
    wednesday: Option<Spanned<String>>,
    thursday: Option<Spanned<String>>,
    friday: Option<Spanned<String>>,
    saturday: Option<Spanned<String>>,
    sunday: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    name: Spanned<String>,
    first_response: Spanned<String>,
    resolution: Spanned<String>,
    #[serde(default)]
    targets: Vec<Spanned<RawRule>>,
}

/// `[[sla.tiers.targets]]`: other targets for a category and/or priority.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    category: Option<Category>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    first_response: Option<Spanned<String>>,
    #[serde(default)]
    resolution: Option<Spanned<String>>,
}

impl RawSla {
    /// The policy, or the first mistake with its line and the fix.
    pub(super) fn validate(self, path: &Path, text: &str) -> Result<Policy, ConfigError> {
        let err = |at: usize, message: String| {
            ConfigError::new(path, format!("line {}: {message}", line_of(text, at)))
        };
        let duration = |value: &Spanned<String>, key: &str| {
            sla::parse_duration(value.get_ref()).ok_or_else(|| {
                err(
                    value.span().start,
                    format!(
                        "[sla] {key} = {:?} is not a target: write business hours and minutes, like \"4h\", \"30m\" or \"1h30m\"",
                        value.get_ref()
                    ),
                )
            })
        };
        let mut calendar = Calendar {
            public_holidays: self.public_holidays,
            ..Calendar::default()
        };
        if let Some(h) = self.hours {
            let days = [
                h.monday,
                h.tuesday,
                h.wednesday,
                h.thursday,
                h.friday,
                h.saturday,
                h.sunday,
            ];
            for (i, day) in days.into_iter().enumerate() {
                let Some(value) = day else { continue };
                let v = value.get_ref().trim();
                calendar.week[i] = if v.eq_ignore_ascii_case("closed") {
                    None
                } else {
                    Some(Hours::parse(v).ok_or_else(|| {
                        err(
                            value.span().start,
                            format!(
                                "[sla.hours] {} = {v:?}: write the opening hours like \"08:30-17:00\" (24-hour clock, start before end), or \"closed\"",
                                WEEKDAYS[i]
                            ),
                        )
                    })?)
                };
            }
        }
        for day in &self.closed_days {
            let date = day.get_ref().trim().parse().map_err(|_| {
                err(
                    day.span().start,
                    format!(
                        "[sla] closed_days: {:?} is not a date: write it as \"2026-12-24\"",
                        day.get_ref()
                    ),
                )
            })?;
            calendar.closed_days.insert(date);
        }
        let mut tiers: Vec<Tier> = Vec::new();
        for raw in self.tiers {
            let name = raw.name.get_ref().trim().to_string();
            let at = raw.name.span().start;
            if name.is_empty() || name.contains([',', ';', '"']) {
                return Err(err(
                    at,
                    format!("[[sla.tiers]] name = {name:?}: give the tier a name without commas or quotes, like \"gold\""),
                ));
            }
            if tiers.iter().any(|t| t.name.eq_ignore_ascii_case(&name)) {
                return Err(err(
                    at,
                    format!("[[sla.tiers]] {name:?} is defined twice: keep one"),
                ));
            }
            let targets = Targets {
                first_response: duration(&raw.first_response, "first_response")?,
                resolution: duration(&raw.resolution, "resolution")?,
            };
            let mut rules: Vec<TargetRule> = Vec::new();
            for rule in raw.targets {
                let at = rule.span().start;
                let r = rule.into_inner();
                if r.category.is_none() && r.priority.is_none() {
                    return Err(err(
                        at,
                        format!("[[sla.tiers.targets]] of tier {name:?}: name a category, a priority or both (the tier's own first_response and resolution are for the rest)"),
                    ));
                }
                if r.first_response.is_none() && r.resolution.is_none() {
                    return Err(err(
                        at,
                        format!("[[sla.tiers.targets]] of tier {name:?}: give first_response, resolution or both"),
                    ));
                }
                if rules
                    .iter()
                    .any(|o| o.category == r.category && o.priority == r.priority)
                {
                    return Err(err(
                        at,
                        format!("[[sla.tiers.targets]] of tier {name:?}: the same category and priority twice; keep one"),
                    ));
                }
                let first_response = match &r.first_response {
                    Some(v) => duration(v, "first_response")?,
                    None => targets.first_response,
                };
                let resolution = match &r.resolution {
                    Some(v) => duration(v, "resolution")?,
                    None => targets.resolution,
                };
                rules.push(TargetRule {
                    category: r.category,
                    priority: r.priority,
                    targets: Targets {
                        first_response,
                        resolution,
                    },
                });
            }
            tiers.push(Tier {
                name,
                targets,
                rules,
            });
        }
        let mut policy = Policy {
            calendar,
            tiers,
            ..Policy::default()
        };
        if let Some(d) = self.default_tier {
            let name = d.get_ref().trim();
            let tier = policy.tier(name).ok_or_else(|| {
                err(
                    d.span().start,
                    format!(
                        "[sla] default_tier = {name:?} is not a tier: use one of {}",
                        policy.tier_names()
                    ),
                )
            })?;
            policy.default_tier = Some(tier.name.clone());
        }
        if let Some(s) = self.due_soon {
            policy.due_soon_minutes = duration(&s, "due_soon")?;
        }
        if policy.calendar.week.iter().all(Option::is_none) && !policy.tiers.is_empty() {
            return Err(ConfigError::new(
                path,
                "[sla.hours]: every day is closed, so no ticket could ever be due; open at least one day",
            ));
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::path::Path;

    const MINIMAL: &str =
        "[database]\nurl = \"sqlite://x.db\"\n[support]\naddress = \"support@example.test\"\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(Path::new("x.toml"), &format!("{MINIMAL}{extra}")).map_err(|e| e.to_string())
    }

    const GOLD: &str = "[sla]\ndefault_tier = \"standard\"\ndue_soon = \"1h\"\nclosed_days = [\"2026-12-24\"]\n\
        [sla.hours]\nfriday = \"08:30-12:00\"\nsaturday = \"09:00-12:00\"\n\
        [[sla.tiers]]\nname = \"standard\"\nfirst_response = \"8h\"\nresolution = \"40h\"\n\
        [[sla.tiers]]\nname = \"gold\"\nfirst_response = \"4h\"\nresolution = \"24h\"\n\
        [[sla.tiers.targets]]\npriority = \"critical\"\nfirst_response = \"30m\"\nresolution = \"4h\"\n\
        [[sla.tiers.targets]]\ncategory = \"incident\"\nfirst_response = \"2h\"\n";

    #[test]
    fn a_rule_without_a_category_or_priority_names_its_own_line() {
        let text = format!("{GOLD}[[sla.tiers.targets]]\nresolution = \"2h\"\n");
        let err = parse(&text).unwrap_err();
        let line = format!("{MINIMAL}{text}").lines().count() - 1;
        assert!(err.starts_with(&format!("x.toml: line {line}: ")), "{err}");
        assert!(err.contains("name a category, a priority or both"), "{err}");
    }

    #[test]
    fn tiers_hours_and_closed_days_are_read() {
        use crate::domain::{Category, Priority};
        let c = parse(GOLD).unwrap();
        let p = &c.sla;
        assert_eq!(p.default_tier.as_deref(), Some("standard"));
        assert_eq!(p.due_soon_minutes, 60);
        assert_eq!(
            p.calendar.describe(),
            "Mon–Thu 08:30–17:00, Fri 08:30–12:00, Sat 09:00–12:00"
        );
        assert!(p.calendar.is_closed("2026-12-24".parse().unwrap()));
        let gold = p.tier("GOLD").unwrap();
        let t = gold.targets(Category::Incident, Priority::Critical);
        assert_eq!((t.first_response, t.resolution), (30, 240));
        let t = gold.targets(Category::Incident, Priority::High);
        assert_eq!((t.first_response, t.resolution), (120, 24 * 60));
        assert_eq!(parse("").unwrap().sla.tiers.len(), 0);
    }

    #[test]
    fn mistakes_name_their_line_and_the_fix() {
        for (find, replace, wanted) in [
            (
                "friday = \"08:30-12:00\"",
                "friday = \"8.30-12\"",
                "write the opening hours like \"08:30-17:00\"",
            ),
            (
                "first_response = \"8h\"",
                "first_response = \"8 hours\"",
                "like \"4h\", \"30m\" or \"1h30m\"",
            ),
            (
                "[\"2026-12-24\"]",
                "[\"24/12/2026\"]",
                "write it as \"2026-12-24\"",
            ),
            (
                "default_tier = \"standard\"",
                "default_tier = \"platinum\"",
                "use one of standard, gold",
            ),
            (
                "priority = \"critical\"",
                "priority = \"urgent\"",
                "is not a priority: use normal, high or critical",
            ),
            ("name = \"gold\"", "name = \"Standard\"", "defined twice"),
            (
                "due_soon = \"1h\"",
                "due_son = \"1h\"",
                "did you mean `due_soon`?",
            ),
        ] {
            let text = GOLD.replace(find, replace);
            let line = format!("{MINIMAL}{text}")
                .lines()
                .position(|l| l.contains(replace))
                .unwrap()
                + 1;
            let err = parse(&text).unwrap_err();
            assert!(err.starts_with(&format!("x.toml: line {line}: ")), "{err}");
            assert!(err.contains(wanted), "{err}");
        }
    }
}
