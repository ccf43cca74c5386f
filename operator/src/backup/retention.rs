//! Which backups to delete: a pure function of the stored backups, the retention policy and
//! the time.

use jiff::{SignedDuration, Timestamp};

use super::manifest::parse_backup_id;

/// How many backups to keep and for how long.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many complete backups (the newest).
    pub count: Option<u32>,
    /// Delete complete backups older than this.
    pub max_age: Option<SignedDuration>,
}

/// A backup found in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBackup {
    pub id: String,
    /// It has a manifest.
    pub complete: bool,
}

/// Parses an age such as `30m`, `12h`, `7d` or `2w`.
pub fn parse_age(text: &str) -> Result<SignedDuration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("invalid age {text:?}: expected a number and a unit (m, h, d, w), e.g. 7d"))?;
    let seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("invalid age {text:?}: the unit must be m, h, d or w")),
    };
    if n <= 0 {
        return Err(format!("invalid age {text:?}: must be positive"));
    }
    n.checked_mul(seconds)
        .map(SignedDuration::from_secs)
        .ok_or_else(|| format!("invalid age {text:?}: too large"))
}

/// The ids to delete, oldest first:
/// - complete backups beyond the `count` newest, and those older than `max_age`, but never the
///   newest complete backup;
/// - incomplete backups (no manifest), except `in_progress` (the one being written now).
///
/// Ids that are not backup ids (unknown directories) are never touched.
pub fn to_prune(
    backups: &[StoredBackup],
    retention: Retention,
    now: Timestamp,
    in_progress: Option<&str>,
) -> Vec<String> {
    let mut dated: Vec<(Timestamp, &StoredBackup)> = backups
        .iter()
        .filter_map(|b| parse_backup_id(&b.id).map(|t| (t, b)))
        .collect();
    // Newest first.
    dated.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.id.cmp(&a.1.id)));
    let mut delete = Vec::new();
    let mut kept_complete = 0u32;
    for (time, backup) in dated {
        if !backup.complete {
            if Some(backup.id.as_str()) != in_progress {
                delete.push((time, backup.id.clone()));
            }
            continue;
        }
        let newest = kept_complete == 0;
        let over_count = retention.count.is_some_and(|c| kept_complete >= c);
        let too_old = retention.max_age.is_some_and(|age| now.duration_since(time) > age);
        if !newest && (over_count || too_old) {
            delete.push((time, backup.id.clone()));
        } else {
            kept_complete += 1;
        }
    }
    delete.sort();
    delete.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: &str, complete: bool) -> StoredBackup {
        StoredBackup {
            id: id.to_string(),
            complete,
        }
    }

    fn now() -> Timestamp {
        "2026-12-10T00:00:00Z".parse().expect("ts")
    }

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("7d"), Ok(SignedDuration::from_hours(168)));
        assert_eq!(parse_age("30m"), Ok(SignedDuration::from_mins(30)));
        assert_eq!(parse_age("2w"), Ok(SignedDuration::from_hours(336)));
        for bad in ["", "7", "d", "7x", "-1d", "0h", "1.5d"] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keeps_the_count_newest() {
        let backups = [
            b("20261201T000000Z", true),
            b("20261203T000000Z", true),
            b("20261202T000000Z", true),
            b("20261204T000000Z", true),
        ];
        let retention = Retention {
            count: Some(2),
            max_age: None,
        };
        assert_eq!(
            to_prune(&backups, retention, now(), None),
            ["20261201T000000Z", "20261202T000000Z"]
        );
        assert!(to_prune(&backups, Retention::default(), now(), None).is_empty());
    }

    #[test]
    fn deletes_old_ones_but_never_the_newest_complete() {
        let backups = [
            b("20261101T000000Z", true),
            b("20261120T000000Z", true),
            b("20261209T000000Z", false),
        ];
        let retention = Retention {
            count: None,
            max_age: Some(SignedDuration::from_hours(24 * 7)),
        };
        // Everything complete is older than 7 days: the newest complete one stays.
        assert_eq!(
            to_prune(&backups, retention, now(), Some("20261209T000000Z")),
            ["20261101T000000Z"]
        );
        // The incomplete one is not in progress any more: it goes too.
        assert_eq!(
            to_prune(&backups, retention, now(), None),
            ["20261101T000000Z", "20261209T000000Z"]
        );
    }

    #[test]
    fn count_and_age_combine_and_unknown_directories_stay() {
        let backups = [
            b("20261209T000000Z", true),
            b("20261208T000000Z", true),
            b("20261207T000000Z", true),
            b("20261101T000000Z", true),
            b("lost+found", false),
        ];
        let retention = Retention {
            count: Some(3),
            max_age: Some(SignedDuration::from_hours(24 * 30)),
        };
        assert_eq!(to_prune(&backups, retention, now(), None), ["20261101T000000Z"]);
        let retention = Retention {
            count: Some(1),
            max_age: Some(SignedDuration::from_hours(36)),
        };
        assert_eq!(
            to_prune(&backups, retention, now(), None),
            ["20261101T000000Z", "20261207T000000Z", "20261208T000000Z"]
        );
    }
}
