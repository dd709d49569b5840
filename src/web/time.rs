//! Times as agents read them: Europe/Brussels (CET, and CEST from the last
//! Sunday of March to the last Sunday of October, switching at 01:00 UTC
//! as the EU rule says). Pure.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

/// The last Sunday of a month, at 01:00 UTC: when Europe switches clocks.
fn last_sunday_0100_utc(year: i32, month: u32) -> DateTime<Utc> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .unwrap_or_default();
    let mut day = first_of_next - Duration::days(1);
    while day.weekday() != Weekday::Sun {
        day -= Duration::days(1);
    }
    Utc.from_utc_datetime(&day.and_hms_opt(1, 0, 0).unwrap_or_default())
}

/// Brussels' offset from UTC at an instant, in hours.
pub fn brussels_offset_hours(t: DateTime<Utc>) -> i64 {
    let year = t.year();
    if t >= last_sunday_0100_utc(year, 3) && t < last_sunday_0100_utc(year, 10) {
        2
    } else {
        1
    }
}

/// A stored RFC 3339 time as Brussels reads it: `06-12-2026 14:05`; the
/// text unchanged when it is not a time.
pub fn brussels(stored: &str) -> String {
    match DateTime::parse_from_rfc3339(stored) {
        Ok(t) => {
            let t = t.with_timezone(&Utc);
            (t + Duration::hours(brussels_offset_hours(t)))
                .format("%d-%m-%Y %H:%M")
                .to_string()
        }
        Err(_) => stored.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winter_summer_and_the_switches() {
        assert_eq!(brussels("2026-01-15T12:00:00.000Z"), "15-01-2026 13:00");
        assert_eq!(brussels("2026-07-01T12:00:00Z"), "01-07-2026 14:00");
        // 2026: summer time from Sunday 29 March 01:00 UTC to Sunday 25 October 01:00 UTC.
        assert_eq!(brussels("2026-03-29T00:59:00Z"), "29-03-2026 01:59");
        assert_eq!(brussels("2026-03-29T01:00:00Z"), "29-03-2026 03:00");
        assert_eq!(brussels("2026-10-25T00:59:00Z"), "25-10-2026 02:59");
        assert_eq!(brussels("2026-10-25T01:00:00Z"), "25-10-2026 02:00");
        assert_eq!(brussels("2026-12-31T23:30:00Z"), "01-01-2027 00:30");
        assert_eq!(brussels("not a time"), "not a time");
    }
}
