//! Request metrics kept by the REST middleware and rendered in Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;

use parking_lot::Mutex;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Stat {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    /// (method, endpoint, status) -> stats.
    rest: Mutex<BTreeMap<(String, String, u16), Stat>>,
}

impl Metrics {
    pub fn observe_rest(&self, method: &str, endpoint: &str, status: u16, seconds: f64) {
        let mut rest = self.rest.lock();
        let stat = rest
            .entry((method.to_string(), endpoint.to_string(), status))
            .or_default();
        stat.count += 1;
        stat.sum += seconds;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                stat.buckets[i] += 1;
            }
        }
    }

    /// Per-endpoint counts and mean durations for `/telemetry`.
    pub fn rest_summary(&self) -> BTreeMap<String, BTreeMap<String, (u64, f64)>> {
        let mut out: BTreeMap<String, BTreeMap<String, (u64, f64)>> = BTreeMap::new();
        for ((method, endpoint, status), s) in self.rest.lock().iter() {
            out.entry(format!("{method} {endpoint}"))
                .or_default()
                .insert(status.to_string(), (s.count, s.sum / s.count.max(1) as f64));
        }
        out
    }

    pub fn render_rest(&self, out: &mut String) {
        let rest = self.rest.lock().clone();
        let _ = writeln!(out, "# HELP rest_responses_total total number of responses");
        let _ = writeln!(out, "# TYPE rest_responses_total counter");
        for ((method, endpoint, status), s) in &rest {
            let _ = writeln!(
                out,
                "rest_responses_total{{method=\"{method}\",endpoint=\"{endpoint}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        let _ = writeln!(out, "# HELP rest_responses_duration_seconds response latency histogram");
        let _ = writeln!(out, "# TYPE rest_responses_duration_seconds histogram");
        for ((method, endpoint, status), s) in &rest {
            let labels = format!("method=\"{method}\",endpoint=\"{endpoint}\",status=\"{status}\"");
            for (le, n) in BUCKETS.iter().zip(s.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "rest_responses_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "rest_responses_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(out, "rest_responses_duration_seconds_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(out, "rest_responses_duration_seconds_count{{{labels}}} {}", s.count);
        }
    }
}

/// Resident set size of this process in bytes (Linux), for `/metrics` and `/telemetry`.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe_rest("GET", "/collections", 200, 0.003);
        m.observe_rest("GET", "/collections", 200, 0.2);
        let mut out = String::new();
        m.render_rest(&mut out);
        assert!(out.contains("rest_responses_total{method=\"GET\",endpoint=\"/collections\",status=\"200\"} 2"));
        assert!(out.contains("le=\"0.005\"} 1"));
        assert!(out.contains("le=\"+Inf\"} 2"));
    }
}
