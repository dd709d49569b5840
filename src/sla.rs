//! The SLA clock: business time in Europe/Brussels, Belgian public
//! holidays, the customers' tiers and their targets, and a ticket's due
//! times with the clock paused while the ball is with the customer.
//!
//! Pure: no I/O, no clock of its own (every function takes `now` or the
//! instants it works on). The configuration builds a [`Policy`]; the store
//! keeps each ticket's [`Clock`] in columns and asks [`Clock::follow`] to
//! bring it up to date whenever the ticket's status, category or priority
//! changes.
//!
//! Business time is counted in whole minutes of the opening hours of each
//! local (Brussels) day, so a day open 08:30–17:00 holds 510 minutes also on
//! the days the clocks change.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::domain::{Category, Language, Priority, TicketStatus};
use crate::web::time::brussels_offset_hours;

/// How far [`Calendar::add`] looks ahead for opening hours before it gives
/// up (a calendar closed for ten years has no due time).
const MAX_DAYS: i64 = 3660;

/// Opening hours of one weekday, as minutes after local midnight
/// (`start < end <= 1440`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    pub start: u16,
    pub end: u16,
}

impl Hours {
    pub const fn new(start: u16, end: u16) -> Hours {
        Hours { start, end }
    }

    /// `08:30-17:00`.
    pub fn parse(text: &str) -> Option<Hours> {
        let (a, b) = text.trim().split_once('-')?;
        let minute = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        let (start, end) = (minute(a)?, minute(b)?);
        (start < end).then_some(Hours { start, end })
    }
}

impl std::fmt::Display for Hours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}–{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// When the desk works: opening hours per weekday, Belgian public holidays
/// and extra closed days, in Europe/Brussels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Monday first; `None`: closed that weekday.
    pub week: [Option<Hours>; 7],
    /// Whether the Belgian public holidays are closed days.
    pub public_holidays: bool,
    /// More closed days (bridge days, the desk's own).
    pub closed_days: BTreeSet<NaiveDate>,
}

impl Default for Calendar {
    /// Monday to Friday 08:30–17:00, the Belgian public holidays closed.
    fn default() -> Self {
        let day = Some(Hours::new(8 * 60 + 30, 17 * 60));
        Calendar {
            week: [day, day, day, day, day, None, None],
            public_holidays: true,
            closed_days: BTreeSet::new(),
        }
    }
}

/// Easter Sunday of a year (Gregorian; the anonymous algorithm, "computus").
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).unwrap_or_default()
}

/// The ten Belgian public holidays of a year, in date order: New Year,
/// Easter Monday, Labour Day, Ascension, Whit Monday, the National Day,
/// Assumption, All Saints, Armistice and Christmas.
pub fn belgian_holidays(year: i32) -> [NaiveDate; 10] {
    let fixed = |m, d| NaiveDate::from_ymd_opt(year, m, d).unwrap_or_default();
    let e = easter(year);
    [
        fixed(1, 1),
        e + Duration::days(1),
        fixed(5, 1),
        e + Duration::days(39),
        e + Duration::days(50),
        fixed(7, 21),
        fixed(8, 15),
        fixed(11, 1),
        fixed(11, 11),
        fixed(12, 25),
    ]
}

/// A Brussels wall-clock time as an instant. A time skipped by the spring
/// change counts as the hour after it; one repeated in autumn as its first
/// occurrence.
pub fn from_brussels(local: NaiveDateTime) -> DateTime<Utc> {
    for offset in [2, 1] {
        let t = local.and_utc() - Duration::hours(offset);
        if brussels_offset_hours(t) == offset {
            return t;
        }
    }
    local.and_utc() - Duration::hours(1)
}

/// An instant as Brussels' wall clock.
pub fn to_brussels(t: DateTime<Utc>) -> NaiveDateTime {
    (t + Duration::hours(brussels_offset_hours(t))).naive_utc()
}

impl Calendar {
    /// Whether a local date is closed all day (holiday, closed day, or a
    /// weekday without hours).
    pub fn is_closed(&self, day: NaiveDate) -> bool {
        self.week[day.weekday().num_days_from_monday() as usize].is_none()
            || self.closed_days.contains(&day)
            || (self.public_holidays && belgian_holidays(day.year()).contains(&day))
    }

    /// The opening hours of a local date as instants; `None` when closed.
    fn open(&self, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if self.is_closed(day) {
            return None;
        }
        let h = self.week[day.weekday().num_days_from_monday() as usize]?;
        let at = |minute: u16| {
            let (d, minute) = if minute == 1440 {
                (day + Duration::days(1), 0)
            } else {
                (day, minute)
            };
            let time = NaiveTime::from_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)
                .unwrap_or_default();
            from_brussels(d.and_time(time))
        };
        Some((at(h.start), at(h.end)))
    }

    /// Business minutes from `from` to `to` (0 when `to` is not later);
    /// seconds are dropped.
    pub fn minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let mut seconds = 0;
        let mut day = to_brussels(from).date() - Duration::days(1);
        let last = to_brussels(to).date() + Duration::days(1);
        while day <= last {
            if let Some((open, close)) = self.open(day) {
                let (a, b) = (open.max(from), close.min(to));
                if b > a {
                    seconds += (b - a).num_seconds();
                }
            }
            day += Duration::days(1);
        }
        seconds / 60
    }

    /// The instant `minutes` business minutes after `from`; `None` when the
    /// calendar has no opening hours for ten years.
    pub fn add(&self, from: DateTime<Utc>, minutes: i64) -> Option<DateTime<Utc>> {
        let mut left = Duration::minutes(minutes.max(0));
        if left.is_zero() {
            return Some(from);
        }
        let first = to_brussels(from).date() - Duration::days(1);
        for n in 0..MAX_DAYS {
            let Some((open, close)) = self.open(first + Duration::days(n)) else {
                continue;
            };
            let start = open.max(from);
            if start >= close {
                continue;
            }
            let available = close - start;
            if left <= available {
                return Some(start + left);
            }
            left -= available;
        }
        None
    }

    /// The opening hours as one line, e.g. `Mon–Fri 08:30–17:00`.
    pub fn describe(&self) -> String {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < 7 {
            let Some(h) = self.week[i] else {
                i += 1;
                continue;
            };
            let mut j = i;
            while j + 1 < 7 && self.week[j + 1] == Some(h) {
                j += 1;
            }
            let days = if i == j {
                DAYS[i].to_string()
            } else {
                format!("{}–{}", DAYS[i], DAYS[j])
            };
            parts.push(format!("{days} {h}"));
            i = j + 1;
        }
        if parts.is_empty() {
            "closed".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The two targets of an SLA, in business minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    /// Until an agent's first answer.
    pub first_response: i64,
    /// Until the ticket is resolved.
    pub resolution: i64,
}

/// Targets for the tickets of one category and/or priority of a tier; a
/// field left out matches any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRule {
    pub category: Option<Category>,
    pub priority: Option<Priority>,
    pub targets: Targets,
}

/// A level of service sold to customers (`[[sla.tiers]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    /// For tickets no rule matches.
    pub targets: Targets,
    pub rules: Vec<TargetRule>,
}

impl Tier {
    /// The targets for a ticket: the rule naming both its category and its
    /// priority, else the one naming its priority, else its category, else
    /// the tier's own.
    pub fn targets(&self, category: Category, priority: Priority) -> Targets {
        let find = |c: Option<Category>, p: Option<Priority>| {
            self.rules
                .iter()
                .find(|r| r.category == c && r.priority == p)
                .map(|r| r.targets)
        };
        find(Some(category), Some(priority))
            .or_else(|| find(None, Some(priority)))
            .or_else(|| find(Some(category), None))
            .unwrap_or(self.targets)
    }
}

/// The desk's SLA configuration (`[sla]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub calendar: Calendar,
    pub tiers: Vec<Tier>,
    /// The tier of customers that have none of their own.
    pub default_tier: Option<String>,
    /// The "due soon" view shows tickets due within this many business minutes.
    pub due_soon_minutes: i64,
}

impl Default for Policy {
    /// No tiers: no ticket has due times.
    fn default() -> Self {
        Policy {
            calendar: Calendar::default(),
            tiers: Vec::new(),
            default_tier: None,
            due_soon_minutes: 120,
        }
    }
}

impl Policy {
    /// The tier of this name (any case).
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name.trim()))
    }

    /// The tier a customer's ticket gets: its own, else the default one.
    pub fn tier_for(&self, customer_tier: Option<&str>) -> Option<&Tier> {
        match customer_tier.map(str::trim).filter(|t| !t.is_empty()) {
            Some(own) => self.tier(own),
            None => self.default_tier.as_deref().and_then(|d| self.tier(d)),
        }
    }

    /// The names of the tiers, for error messages.
    pub fn tier_names(&self) -> String {
        let names: Vec<&str> = self.tiers.iter().map(|t| t.name.as_str()).collect();
        if names.is_empty() {
            "none are defined: add [[sla.tiers]] to the configuration".into()
        } else {
            names.join(", ")
        }
    }
}

/// Whether a status lets the clock run: `new` and `open`. Waiting for the
/// customer, for the charge approval and on hold pause it; resolved and
/// closed stop it (a reopened ticket goes on where it stopped).
pub fn clock_runs(status: TicketStatus) -> bool {
    matches!(status, TicketStatus::New | TicketStatus::Open)
}

/// A ticket's SLA clock, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    pub created: DateTime<Utc>,
    /// `None`: no tier applies, no due times.
    pub targets: Option<Targets>,
    /// Business minutes paused in finished pauses.
    pub paused_minutes: i64,
    /// Since when the clock stands still, if it does.
    pub paused_since: Option<DateTime<Utc>>,
    /// When an agent first answered the customer.
    pub first_response_at: Option<DateTime<Utc>>,
    pub first_response_due: Option<DateTime<Utc>>,
    pub resolution_due: Option<DateTime<Utc>>,
}

impl Clock {
    /// A new ticket's clock.
    pub fn start(created: DateTime<Utc>, targets: Option<Targets>) -> Clock {
        Clock {
            created,
            targets,
            paused_minutes: 0,
            paused_since: None,
            first_response_at: None,
            first_response_due: None,
            resolution_due: None,
        }
    }

    /// Brings the clock up to `now` for a ticket whose clock runs or not
    /// (see [`clock_runs`]) with these targets: a pause that ends is added
    /// to the paused time, one that starts is noted, and the due times are
    /// computed again: the first response's only while it is not given
    /// (it is kept as it was once answered).
    pub fn follow(
        mut self,
        calendar: &Calendar,
        runs: bool,
        targets: Option<Targets>,
        now: DateTime<Utc>,
    ) -> Clock {
        match (runs, self.paused_since) {
            (true, Some(since)) => {
                self.paused_minutes += calendar.minutes_between(since, now);
                self.paused_since = None;
            }
            (false, None) => self.paused_since = Some(now),
            _ => {}
        }
        self.targets = targets;
        let due = |minutes: i64| calendar.add(self.created, minutes + self.paused_minutes);
        if self.first_response_at.is_none() {
            self.first_response_due = targets.and_then(|t| due(t.first_response));
        }
        self.resolution_due = targets.and_then(|t| due(t.resolution));
        self
    }

    /// The earliest due time the running clock still has to meet (the
    /// first response while not given, else the resolution); `None` while
    /// the clock stands still or no targets apply. The queue sorts on it.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        if self.paused_since.is_some() {
            return None;
        }
        match self.first_response_at {
            None => self.first_response_due.or(self.resolution_due),
            Some(_) => self.resolution_due,
        }
    }
}

/// A target as the automatic acknowledgement says it, e.g. `4 business
/// hours`, `4 werkuren`.
pub fn phrase(minutes: i64, language: Language) -> String {
    let hours = minutes / 60;
    let whole = minutes % 60 == 0 && minutes > 0;
    match (language, whole, hours) {
        (Language::En, true, 1) => "1 business hour".into(),
        (Language::En, true, h) => format!("{h} business hours"),
        (Language::En, false, _) => format!("{minutes} business minutes"),
        (Language::Nl, true, 1) => "1 werkuur".into(),
        (Language::Nl, true, h) => format!("{h} werkuren"),
        (Language::Nl, false, _) => format!("{minutes} minuten (tijdens de kantooruren)"),
        (Language::Fr, true, 1) => "1 heure ouvrable".into(),
        (Language::Fr, true, h) => format!("{h} heures ouvrables"),
        (Language::Fr, false, _) => format!("{minutes} minutes ouvrables"),
        (Language::De, true, 1) => "1 Arbeitsstunde".into(),
        (Language::De, true, h) => format!("{h} Arbeitsstunden"),
        (Language::De, false, _) => format!("{minutes} Arbeitsminuten"),
    }
}

/// A target as written in the configuration, in business hours and
/// minutes: `4h`, `30m`, `1h30m` (no days: a business day depends on the
/// calendar).
pub fn parse_duration(text: &str) -> Option<i64> {
    let t = text.trim().to_ascii_lowercase().replace(' ', "");
    if t.is_empty() {
        return None;
    }
    let (h, rest) = match t.split_once('h') {
        Some((h, rest)) => (h.parse::<i64>().ok()?, rest),
        None => (0, t.as_str()),
    };
    let m = match rest {
        "" => 0,
        r => r.strip_suffix('m')?.parse::<i64>().ok()?,
    };
    let total = h.checked_mul(60)?.checked_add(m)?;
    (total > 0).then_some(total)
}

/// `Monday`..`Sunday` as the configuration's keys.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Brussels wall clock, written `2026-03-27 16:00`.
    fn local(s: &str) -> DateTime<Utc> {
        from_brussels(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
    }

    fn shown(t: DateTime<Utc>) -> String {
        to_brussels(t).format("%a %Y-%m-%d %H:%M").to_string()
    }

    #[test]
    fn easter_and_the_moving_holidays_in_several_years() {
        // (year, Easter Sunday, Easter Monday, Ascension, Whit Monday)
        for (year, sunday, monday, ascension, whit) in [
            (2024, "2024-03-31", "2024-04-01", "2024-05-09", "2024-05-20"),
            (2025, "2025-04-20", "2025-04-21", "2025-05-29", "2025-06-09"),
            (2026, "2026-04-05", "2026-04-06", "2026-05-14", "2026-05-25"),
            (2027, "2027-03-28", "2027-03-29", "2027-05-06", "2027-05-17"),
            (2038, "2038-04-25", "2038-04-26", "2038-06-03", "2038-06-14"),
            (2285, "2285-03-22", "2285-03-23", "2285-04-30", "2285-05-11"),
        ] {
            assert_eq!(easter(year), date(sunday), "{year}");
            let h = belgian_holidays(year);
            assert_eq!(h[1], date(monday), "{year}");
            assert_eq!(h[3], date(ascension), "{year}");
            assert_eq!(h[4], date(whit), "{year}");
            assert_eq!(h[3].weekday(), Weekday::Thu);
        }
        let c = Calendar::default();
        for closed in [
            "2026-01-01",
            "2026-04-06",
            "2026-05-01",
            "2026-05-14",
            "2026-05-25",
            "2026-07-21",
            "2026-11-11",
            "2026-12-25",
        ] {
            assert!(c.is_closed(date(closed)), "{closed}");
        }
        // 15 August and 1 November 2026 fall on a Saturday and a Sunday.
        assert!(!c.is_closed(date("2026-04-07")));
        assert!(!c.is_closed(date("2026-05-15")));
    }

    #[test]
    fn a_ticket_spanning_a_weekend_and_a_public_holiday() {
        let c = Calendar::default();
        // Friday 3 April 2026 15:00, 8 business hours: 2 h on Friday,
        // Saturday, Sunday and Easter Monday closed, 6 h on Tuesday.
        let created = local("2026-04-03 15:00");
        let due = c.add(created, 8 * 60).unwrap();
        assert_eq!(shown(due), "Tue 2026-04-07 14:30");
        assert_eq!(c.minutes_between(created, due), 8 * 60);
        // Ascension Thursday 2026 and the Friday after it, closed by the config.
        let mut c = Calendar::default();
        c.closed_days.insert(date("2026-05-15"));
        let due = c.add(local("2026-05-13 16:00"), 4 * 60).unwrap();
        assert_eq!(shown(due), "Mon 2026-05-18 11:30");
        // Whit Monday 2027.
        let due = Calendar::default()
            .add(local("2027-05-14 16:30"), 60)
            .unwrap();
        assert_eq!(shown(due), "Tue 2027-05-18 09:00");
    }

    #[test]
    fn arrival_outside_hours_starts_at_the_next_opening() {
        let c = Calendar::default();
        for (arrival, due) in [
            ("2026-02-10 06:12", "Tue 2026-02-10 12:30"),
            ("2026-02-10 17:00", "Wed 2026-02-11 12:30"),
            ("2026-02-10 23:59", "Wed 2026-02-11 12:30"),
            ("2026-02-14 10:00", "Mon 2026-02-16 12:30"),
            ("2026-02-13 16:59", "Mon 2026-02-16 12:29"),
        ] {
            assert_eq!(
                shown(c.add(local(arrival), 4 * 60).unwrap()),
                due,
                "{arrival}"
            );
        }
        // A due time that falls on closing time stays there.
        assert_eq!(
            shown(c.add(local("2026-02-10 13:00"), 4 * 60).unwrap()),
            "Tue 2026-02-10 17:00"
        );
        assert_eq!(
            c.minutes_between(local("2026-02-14 10:00"), local("2026-02-15 10:00")),
            0
        );
        assert_eq!(
            c.add(local("2026-02-14 10:00"), 0),
            Some(local("2026-02-14 10:00"))
        );
    }

    #[test]
    fn the_weeks_the_clocks_change() {
        let c = Calendar::default();
        // Spring: Sunday 29 March 2026. Friday 08:30 CET is 07:30 UTC,
        // Monday 08:30 CEST is 06:30 UTC.
        let friday = local("2026-03-27 16:00");
        assert_eq!(friday, at("2026-03-27T15:00:00Z"));
        let due = c.add(friday, 120).unwrap();
        assert_eq!(due, at("2026-03-30T07:30:00Z"));
        assert_eq!(shown(due), "Mon 2026-03-30 09:30");
        assert_eq!(c.minutes_between(friday, due), 120);
        // A whole week across the change holds five full days.
        assert_eq!(
            c.minutes_between(local("2026-03-23 00:00"), local("2026-03-30 00:00")),
            5 * 510
        );
        // Autumn: Sunday 25 October 2026.
        let due = c.add(local("2026-10-23 16:30"), 60).unwrap();
        assert_eq!(due, at("2026-10-26T08:00:00Z"));
        assert_eq!(shown(due), "Mon 2026-10-26 09:00");
        assert_eq!(
            c.minutes_between(local("2026-10-19 00:00"), local("2026-10-26 00:00")),
            5 * 510
        );
        // A desk open around the clock on Sunday still counts the hour the
        // spring change skips as not there, and the autumn one twice.
        let mut always = Calendar {
            week: [None; 7],
            public_holidays: false,
            closed_days: BTreeSet::new(),
        };
        always.week[6] = Some(Hours::new(0, 1440));
        assert_eq!(
            always.minutes_between(local("2026-03-29 00:00"), local("2026-03-30 00:00")),
            23 * 60
        );
        assert_eq!(
            always.minutes_between(local("2026-10-25 00:00"), local("2026-10-26 00:00")),
            25 * 60
        );
    }

    #[test]
    fn adding_and_counting_agree() {
        let c = Calendar::default();
        let start = local("2026-12-23 11:17");
        for minutes in [1, 59, 510, 511, 2000, 10_000, 60_000] {
            let due = c.add(start, minutes).unwrap();
            assert_eq!(c.minutes_between(start, due), minutes, "{minutes}");
            assert!(!c.is_closed(to_brussels(due).date()) || minutes == 0);
        }
        // Christmas, the weekend and New Year: 24, 28–31 Dec open; 25 Dec and 1 Jan closed.
        assert_eq!(
            shown(c.add(local("2026-12-24 16:00"), 120).unwrap()),
            "Mon 2026-12-28 09:30"
        );
        assert_eq!(
            shown(c.add(local("2026-12-31 16:00"), 120).unwrap()),
            "Mon 2027-01-04 09:30"
        );
        let closed = Calendar {
            week: [None; 7],
            ..Calendar::default()
        };
        assert_eq!(closed.add(start, 1), None);
    }

    fn tier() -> Tier {
        let t = |f, r| Targets {
            first_response: f,
            resolution: r,
        };
        Tier {
            name: "gold".into(),
            targets: t(8 * 60, 40 * 60),
            rules: vec![
                TargetRule {
                    category: None,
                    priority: Some(Priority::Critical),
                    targets: t(60, 8 * 60),
                },
                TargetRule {
                    category: Some(Category::Incident),
                    priority: Some(Priority::Critical),
                    targets: t(30, 4 * 60),
                },
                TargetRule {
                    category: Some(Category::Incident),
                    priority: None,
                    targets: t(4 * 60, 16 * 60),
                },
            ],
        }
    }

    #[test]
    fn the_most_specific_rule_of_a_tier_applies() {
        let g = tier();
        assert_eq!(
            g.targets(Category::Incident, Priority::Critical)
                .first_response,
            30
        );
        assert_eq!(
            g.targets(Category::Question, Priority::Critical)
                .first_response,
            60
        );
        assert_eq!(
            g.targets(Category::Incident, Priority::High).first_response,
            240
        );
        assert_eq!(
            g.targets(Category::Feedback, Priority::Normal)
                .first_response,
            480
        );
        let policy = Policy {
            tiers: vec![g],
            default_tier: Some("Gold".into()),
            ..Policy::default()
        };
        assert_eq!(policy.tier_for(None).unwrap().name, "gold");
        assert_eq!(policy.tier_for(Some("GOLD")).unwrap().name, "gold");
        assert!(policy.tier_for(Some("silver")).is_none());
        assert!(Policy::default().tier_for(None).is_none());
    }

    #[test]
    fn a_pause_resumes_with_the_remaining_time() {
        let c = Calendar::default();
        let targets = Some(Targets {
            first_response: 4 * 60,
            resolution: 16 * 60,
        });
        // Monday 9 March 2026 09:00; first response due 13:00.
        let created = local("2026-03-09 09:00");
        let clock = Clock::start(created, None).follow(&c, true, targets, created);
        assert_eq!(
            shown(clock.first_response_due.unwrap()),
            "Mon 2026-03-09 13:00"
        );
        assert_eq!(clock.next_due(), clock.first_response_due);
        // Waiting for the customer at 10:00 (3 h left), answered Tuesday 14:00.
        let paused = clock.follow(&c, false, targets, local("2026-03-09 10:00"));
        assert_eq!(paused.next_due(), None);
        assert_eq!(paused.paused_since, Some(local("2026-03-09 10:00")));
        // Another status change while paused changes nothing.
        let still = paused
            .clone()
            .follow(&c, false, targets, local("2026-03-09 15:00"));
        assert_eq!(still, paused);
        let resumed = paused.follow(&c, true, targets, local("2026-03-10 14:00"));
        assert_eq!(resumed.paused_minutes, 7 * 60 + 5 * 60 + 30);
        // 3 hours left from Tuesday 14:00: 14:00–17:00.
        assert_eq!(
            shown(resumed.first_response_due.unwrap()),
            "Tue 2026-03-10 17:00"
        );
        assert_eq!(
            c.minutes_between(
                local("2026-03-10 14:00"),
                resumed.first_response_due.unwrap()
            ),
            180
        );
        // Answered Wednesday: the first response due stays, resolution is next.
        let mut answered = resumed;
        answered.first_response_at = Some(local("2026-03-11 09:00"));
        let answered = answered.follow(&c, true, targets, local("2026-03-11 09:00"));
        assert_eq!(
            shown(answered.first_response_due.unwrap()),
            "Tue 2026-03-10 17:00"
        );
        assert_eq!(answered.next_due(), answered.resolution_due);
        // A later pause moves only the resolution.
        let again = answered
            .clone()
            .follow(&c, false, targets, local("2026-03-11 10:00"))
            .follow(&c, true, targets, local("2026-03-11 11:00"));
        assert_eq!(again.first_response_due, answered.first_response_due);
        assert_eq!(
            again.resolution_due,
            c.add(answered.resolution_due.unwrap(), 60)
        );
        // A pause that starts after a breach keeps it a breach.
        let late = Clock::start(created, None)
            .follow(&c, true, targets, created)
            .follow(&c, false, targets, local("2026-03-09 15:00"))
            .follow(&c, true, targets, local("2026-03-10 10:00"));
        assert!(late.first_response_due.unwrap() < local("2026-03-10 10:00"));
        assert_eq!(
            c.minutes_between(late.first_response_due.unwrap(), local("2026-03-10 10:00")),
            120
        );
    }

    #[test]
    fn a_priority_change_recomputes_and_no_tier_means_no_due_time() {
        let c = Calendar::default();
        let created = local("2026-03-09 09:00");
        let g = tier();
        let clock = Clock::start(created, None).follow(
            &c,
            true,
            Some(g.targets(Category::Incident, Priority::Normal)),
            created,
        );
        assert_eq!(
            shown(clock.first_response_due.unwrap()),
            "Mon 2026-03-09 13:00"
        );
        let critical = clock.follow(
            &c,
            true,
            Some(g.targets(Category::Incident, Priority::Critical)),
            local("2026-03-09 09:10"),
        );
        assert_eq!(
            shown(critical.first_response_due.unwrap()),
            "Mon 2026-03-09 09:30"
        );
        let none = critical.follow(&c, true, None, local("2026-03-09 09:20"));
        assert_eq!((none.first_response_due, none.next_due()), (None, None));
    }

    #[test]
    fn hours_durations_and_phrases() {
        assert_eq!(Hours::parse("08:30-17:00"), Some(Hours::new(510, 1020)));
        assert_eq!(Hours::parse(" 00:00 - 24:00 "), Some(Hours::new(0, 1440)));
        for bad in ["17:00-08:30", "8-17", "08:60-17:00", "25:00-26:00", ""] {
            assert_eq!(Hours::parse(bad), None, "{bad}");
        }
        assert_eq!(parse_duration("4h"), Some(240));
        assert_eq!(parse_duration("1h30m"), Some(90));
        assert_eq!(parse_duration("45m"), Some(45));
        for bad in ["", "0h", "4", "2d", "h", "-1h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(phrase(240, Language::En), "4 business hours");
        assert_eq!(phrase(60, Language::Nl), "1 werkuur");
        assert_eq!(phrase(480, Language::Fr), "8 heures ouvrables");
        assert_eq!(phrase(90, Language::De), "90 Arbeitsminuten");
        assert_eq!(Calendar::default().describe(), "Mon–Fri 08:30–17:00");
    }
}
