//! `?anonymize=true`, as Qdrant anonymizes telemetry (`segment::common::anonymize`): names
//! (collection ids, vector names, peer URIs) become the decimal hash of the string (std's
//! `DefaultHasher`, as Qdrant), counts keep about five significant digits, timestamps move by
//! a random -10..10 s.

use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, Utc};

/// A name, or its hash when anonymizing.
pub fn name(s: &str, anonymize: bool) -> String {
    if !anonymize {
        return s.to_string();
    }
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish().to_string()
}

/// A count, rounded down to about five significant digits when anonymizing.
pub fn count(n: u64, anonymize: bool) -> u64 {
    if !anonymize || n == 0 {
        return n;
    }
    let magnitude = (n as f32).log10().round() as u32;
    if magnitude > 4 {
        let coeff = 10u64.pow(magnitude - 4);
        n / coeff * coeff
    } else {
        n
    }
}

/// A timestamp, jittered by up to 10 s either way when anonymizing.
pub fn time(t: DateTime<Utc>, anonymize: bool) -> DateTime<Utc> {
    if !anonymize {
        return t;
    }
    let seconds = (rand::random::<f32>() * 20.0 - 10.0) as i64;
    t + chrono::Duration::seconds(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_rounds_and_leaves_alone() {
        assert_eq!(name("c", false), "c");
        let hashed = name("c", true);
        assert!(hashed.parse::<u64>().is_ok() && hashed != "c");
        assert_eq!(hashed, name("c", true), "stable");
        assert_eq!(count(1234, true), 1234);
        assert_eq!(count(123_456, true), 123_450);
        assert_eq!(count(98_765_432, true), 98_760_000);
        assert_eq!(count(123_456, false), 123_456);
        let t = Utc::now();
        assert!((time(t, true) - t).num_seconds().abs() <= 10);
    }
}
