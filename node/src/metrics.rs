//! Request metrics kept by the REST middleware and the gRPC layer, rendered in Prometheus text
//! format under Qdrant's metric names.

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
    /// gRPC method path (`/qdrant.Points/Search`) -> (all responses, failed responses).
    grpc: Mutex<BTreeMap<String, (Stat, u64)>>,
    /// Replica comparisons of the anti-entropy checks.
    anti_entropy: Mutex<AntiEntropyStats>,
}

/// Counters of the anti-entropy checks (cluster mode).
#[derive(Default, Clone, Copy)]
pub struct AntiEntropyStats {
    /// Replica pairs compared, in all.
    pub comparisons: u64,
    /// Buckets found differing at the latest check of each collection, summed.
    pub divergent_buckets: u64,
    pub repairs: u64,
    pub repaired_points: u64,
}

impl Stat {
    fn add(&mut self, seconds: f64) {
        self.count += 1;
        self.sum += seconds;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.buckets[i] += 1;
            }
        }
    }

    /// The `_bucket`, `_sum` and `_count` lines of histogram `name` for one label set.
    fn render_histogram(&self, out: &mut String, name: &str, labels: &str) {
        for (le, n) in BUCKETS.iter().zip(self.buckets.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

impl Metrics {
    pub fn observe_rest(&self, method: &str, endpoint: &str, status: u16, seconds: f64) {
        self.rest
            .lock()
            .entry((method.to_string(), endpoint.to_string(), status))
            .or_default()
            .add(seconds);
    }

    /// One gRPC response of `endpoint` (the method path); `failed` when its status is not OK.
    pub fn observe_grpc(&self, endpoint: &str, failed: bool, seconds: f64) {
        let mut grpc = self.grpc.lock();
        let (stat, failures) = grpc.entry(endpoint.to_string()).or_default();
        stat.add(seconds);
        *failures += u64::from(failed);
    }

    /// Per-method counts, failures and mean durations (seconds) for `/telemetry`.
    pub fn grpc_summary(&self) -> BTreeMap<String, (u64, u64, f64)> {
        self.grpc
            .lock()
            .iter()
            .map(|(endpoint, (s, failed))| (endpoint.clone(), (s.count, *failed, s.sum / s.count.max(1) as f64)))
            .collect()
    }

    pub fn render_grpc(&self, out: &mut String) {
        let grpc = self.grpc.lock().clone();
        let _ = writeln!(out, "# HELP grpc_responses_total total number of responses");
        let _ = writeln!(out, "# TYPE grpc_responses_total counter");
        for (endpoint, (s, _)) in &grpc {
            let _ = writeln!(out, "grpc_responses_total{{endpoint=\"{endpoint}\"}} {}", s.count);
        }
        let _ = writeln!(out, "# HELP grpc_responses_fail_total total number of failed responses");
        let _ = writeln!(out, "# TYPE grpc_responses_fail_total counter");
        for (endpoint, (_, failed)) in &grpc {
            let _ = writeln!(out, "grpc_responses_fail_total{{endpoint=\"{endpoint}\"}} {failed}");
        }
        let _ = writeln!(out, "# HELP grpc_responses_duration_seconds response latency histogram");
        let _ = writeln!(out, "# TYPE grpc_responses_duration_seconds histogram");
        for (endpoint, (s, _)) in &grpc {
            s.render_histogram(
                out,
                "grpc_responses_duration_seconds",
                &format!("endpoint=\"{endpoint}\""),
            );
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

    /// Adds one anti-entropy check: `divergent_buckets` replaces the previous reading of the
    /// collection (kept per collection so the gauge sums the latest of each).
    pub fn observe_anti_entropy(
        &self,
        compared: u64,
        divergent_buckets: u64,
        repairs: u64,
        repaired_points: u64,
        previous_divergent: u64,
    ) {
        let mut a = self.anti_entropy.lock();
        a.comparisons += compared;
        a.divergent_buckets = a.divergent_buckets.saturating_sub(previous_divergent) + divergent_buckets;
        a.repairs += repairs;
        a.repaired_points += repaired_points;
    }

    pub fn render_anti_entropy(&self, out: &mut String) {
        let a = *self.anti_entropy.lock();
        let lines = [
            (
                "anti_entropy_comparisons_total",
                "counter",
                "replica digests compared with the reference replica's",
                a.comparisons,
            ),
            (
                "anti_entropy_divergent_buckets",
                "gauge",
                "digest buckets in which a replica differs from its reference at the latest check",
                a.divergent_buckets,
            ),
            (
                "anti_entropy_repairs_total",
                "counter",
                "replicas repaired by a partial transfer of differing buckets",
                a.repairs,
            ),
            (
                "anti_entropy_repaired_points_total",
                "counter",
                "points sent to repair replicas",
                a.repaired_points,
            ),
        ];
        for (name, kind, help, value) in lines {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
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
            s.render_histogram(out, "rest_responses_duration_seconds", &labels);
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
        m.observe_grpc("/qdrant.Points/Search", false, 0.001);
        m.observe_grpc("/qdrant.Points/Search", true, 0.001);
        let mut out = String::new();
        m.render_grpc(&mut out);
        assert!(out.contains("grpc_responses_total{endpoint=\"/qdrant.Points/Search\"} 2"));
        assert!(out.contains("grpc_responses_fail_total{endpoint=\"/qdrant.Points/Search\"} 1"));
    }
}
