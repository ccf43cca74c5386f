//! 5-field cron schedules (`minute hour day-of-month month day-of-week`, UTC) and the
//! scheduling decision: when is the next run, and is one due now.
//!
//! Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and lists `a,b`;
//! day-of-week is 0-7 (0 and 7 are Sunday). As in cron, when both day-of-month and day-of-week
//! are restricted a day matching either runs. `@hourly`, `@daily`, `@weekly`, `@monthly` and
//! `@yearly` are accepted.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, name: &str, min: u32, max: u32) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("{name}: invalid step in {part:?}"))?;
                if step == 0 {
                    return Err(format!("{name}: step 0 in {part:?}"));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a: u32 = a.parse().map_err(|_| format!("{name}: invalid value in {part:?}"))?;
            let b: u32 = b.parse().map_err(|_| format!("{name}: invalid value in {part:?}"))?;
            (a, b)
        } else {
            let a: u32 = range.parse().map_err(|_| format!("{name}: invalid value {part:?}"))?;
            // `5/15` means from 5 to the end by 15.
            (a, if part.contains('/') { max } else { a })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{name}: {part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, text != "*"))
}

impl Schedule {
    /// Parses a 5-field cron expression.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = match text.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields.as_slice() else {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
                fields.len()
            ));
        };
        let (minutes, _) = field(minute, "minute", 0, 59)?;
        let (hours, _) = field(hour, "hour", 0, 23)?;
        let (days, days_restricted) = field(day, "day-of-month", 1, 31)?;
        let (months, _) = field(month, "month", 1, 12)?;
        let (mut weekdays, weekdays_restricted) = field(weekday, "day-of-week", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, date: jiff::civil::Date) -> bool {
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << weekday_number(date.weekday())) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first run strictly after `after` (whole minutes, UTC), within about 5 years.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(TimeZone::UTC).datetime();
        // The next whole minute.
        let start = start
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let mut date = start.date();
        let last = date.checked_add(5.years()).ok()?;
        while date <= last {
            if self.months & (1 << date.month()) != 0 && self.day_matches(date) {
                for hour in 0..24i8 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    for minute in 0..60i8 {
                        if self.minutes & (1 << minute) == 0 {
                            continue;
                        }
                        let candidate = date.at(hour, minute, 0, 0);
                        if candidate >= start {
                            return candidate.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
                        }
                    }
                }
            }
            date = date.checked_add(1.day()).ok()?;
        }
        None
    }
}

fn weekday_number(w: Weekday) -> u8 {
    w.to_sunday_zero_offset() as u8
}

/// What the scheduler should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// Run now, recording this scheduled time as the last one (`None`: nothing due).
    pub run: Option<Timestamp>,
    /// The next scheduled time after the current one.
    pub next: Option<Timestamp>,
}

/// Decides whether a run is due at `now`, given the last scheduled time (or the creation time
/// when it never ran). Missed runs (operator down, suspended) collapse into one run, recorded
/// with the latest missed time, so a long outage never causes a storm of backups.
pub fn due(schedule: &Schedule, last: Timestamp, now: Timestamp) -> Due {
    let mut latest_due = None;
    let mut cursor = schedule.next_after(last);
    // Walk the missed runs (bounded: at most one per minute since `last`, capped).
    let mut steps = 0;
    while let Some(t) = cursor {
        if t > now || steps > 100_000 {
            break;
        }
        latest_due = Some(t);
        cursor = schedule.next_after(t);
        steps += 1;
    }
    Due {
        run: latest_due,
        next: cursor.filter(|t| *t > now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn parses_and_rejects() {
        assert!(Schedule::parse("0 3 * * *").is_ok());
        assert!(Schedule::parse("*/15 1-5,22 1 */2 1-5").is_ok());
        assert!(Schedule::parse("@daily").is_ok());
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_runs() {
        let s = Schedule::parse("0 3 * * *").expect("parse");
        assert_eq!(
            s.next_after(ts("2026-12-07T02:59:59Z")),
            Some(ts("2026-12-07T03:00:00Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-12-07T03:00:00Z")),
            Some(ts("2026-12-08T03:00:00Z"))
        );
        let s = Schedule::parse("*/15 * * * *").expect("parse");
        assert_eq!(
            s.next_after(ts("2026-12-07T10:07:30Z")),
            Some(ts("2026-12-07T10:15:00Z"))
        );
        // Sundays at 01:30 (7 is Sunday too). 2026-12-07 is a Monday.
        let s = Schedule::parse("30 1 * * 7").expect("parse");
        assert_eq!(
            s.next_after(ts("2026-12-07T00:00:00Z")),
            Some(ts("2026-12-13T01:30:00Z"))
        );
        // The 31st only exists in some months.
        let s = Schedule::parse("0 0 31 * *").expect("parse");
        assert_eq!(
            s.next_after(ts("2027-01-31T00:00:00Z")),
            Some(ts("2027-03-31T00:00:00Z"))
        );
        // Day-of-month OR day-of-week when both are restricted: the 1st, or a Friday.
        let s = Schedule::parse("0 0 1 * 5").expect("parse");
        assert_eq!(
            s.next_after(ts("2026-12-07T00:00:00Z")),
            Some(ts("2026-12-11T00:00:00Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-12-31T12:00:00Z")),
            Some(ts("2027-01-01T00:00:00Z"))
        );
        // 29 February: years away is still found.
        let s = Schedule::parse("0 0 29 2 *").expect("parse");
        assert_eq!(
            s.next_after(ts("2026-03-01T00:00:00Z")),
            Some(ts("2028-02-29T00:00:00Z"))
        );
        let never = Schedule::parse("0 0 31 2 *").expect("parse");
        assert_eq!(never.next_after(ts("2026-03-01T00:00:00Z")), None);
    }

    #[test]
    fn due_runs_once_after_missed_runs() {
        let s = Schedule::parse("0 * * * *").expect("parse");
        // Nothing due yet.
        let d = due(&s, ts("2026-12-07T10:00:00Z"), ts("2026-12-07T10:59:00Z"));
        assert_eq!(d.run, None);
        assert_eq!(d.next, Some(ts("2026-12-07T11:00:00Z")));
        // Exactly on time.
        let d = due(&s, ts("2026-12-07T10:00:00Z"), ts("2026-12-07T11:00:05Z"));
        assert_eq!(d.run, Some(ts("2026-12-07T11:00:00Z")));
        assert_eq!(d.next, Some(ts("2026-12-07T12:00:00Z")));
        // Down for a day and a half: one run, recorded as the latest missed time.
        let d = due(&s, ts("2026-12-07T10:00:00Z"), ts("2026-12-08T22:30:00Z"));
        assert_eq!(d.run, Some(ts("2026-12-08T22:00:00Z")));
        assert_eq!(d.next, Some(ts("2026-12-08T23:00:00Z")));
        // After that run is recorded, nothing is due until the next hour.
        let d = due(&s, ts("2026-12-08T22:00:00Z"), ts("2026-12-08T22:31:00Z"));
        assert_eq!(d.run, None);
    }
}
