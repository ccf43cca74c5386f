//! Recall and latency statistics.

use hdrhistogram::Histogram;
use serde::Serialize;

/// recall@k: |returned[..k] ∩ gt[..k]| / k. Missing results count as misses; duplicates in
/// `returned` are counted once.
pub fn recall_at_k(returned: &[u64], gt: &[u32], k: usize) -> f64 {
    if k == 0 {
        return 1.0;
    }
    let truth = &gt[..k.min(gt.len())];
    let got = &returned[..k.min(returned.len())];
    let mut hits = 0usize;
    for (i, id) in got.iter().enumerate() {
        if got[..i].contains(id) {
            continue;
        }
        if truth.iter().any(|t| u64::from(*t) == *id) {
            hits += 1;
        }
    }
    hits as f64 / k as f64
}

/// Latencies in nanoseconds, 3 significant digits, 1 ns .. 100 s (larger values saturate).
#[derive(Debug, Clone)]
pub struct LatencyHist {
    h: Histogram<u64>,
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

const MAX_NS: u64 = 100_000_000_000;

impl LatencyHist {
    pub fn new() -> Self {
        // Bounds are constants that hdrhistogram accepts (low >= 1, high >= 2*low, sigfig <= 5).
        let h = Histogram::new_with_bounds(1, MAX_NS, 3).expect("constant histogram bounds are valid");
        Self { h }
    }

    pub fn record_ns(&mut self, ns: u64) {
        self.h.saturating_record(ns.clamp(1, MAX_NS));
    }

    pub fn record(&mut self, d: std::time::Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(MAX_NS));
    }

    pub fn merge(&mut self, other: &LatencyHist) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.h.add(&other.h);
    }

    pub fn len(&self) -> u64 {
        self.h.len()
    }

    pub fn is_empty(&self) -> bool {
        self.h.is_empty()
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |ns: u64| ns as f64 / 1e6;
        if self.h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.h.len(),
            mean_ms: self.h.mean() / 1e6,
            p50_ms: ms(self.h.value_at_quantile(0.50)),
            p95_ms: ms(self.h.value_at_quantile(0.95)),
            p99_ms: ms(self.h.value_at_quantile(0.99)),
            p999_ms: ms(self.h.value_at_quantile(0.999)),
            max_ms: ms(self.h.max()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Running mean.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mean {
    sum: f64,
    n: u64,
}

impl Mean {
    pub fn add(&mut self, x: f64) {
        self.sum += x;
        self.n += 1;
    }

    pub fn merge(&mut self, o: Mean) {
        self.sum += o.sum;
        self.n += o.n;
    }

    pub fn get(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_hits_over_k() {
        let gt = [1u32, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(recall_at_k(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &gt, 10), 1.0);
        assert_eq!(recall_at_k(&[10, 9, 8, 7, 6, 50, 51, 52, 53, 54], &gt, 10), 0.5);
        // A GT id past k (11) does not count; short answers count as misses.
        assert_eq!(recall_at_k(&[11, 1], &gt, 10), 0.1);
        assert_eq!(recall_at_k(&[], &gt, 10), 0.0);
        // Duplicates count once.
        assert_eq!(recall_at_k(&[1, 1, 1], &gt, 10), 0.1);
    }

    #[test]
    fn histogram_percentiles_within_precision() {
        let mut h = LatencyHist::new();
        for us in 1..=10_000u64 {
            h.record_ns(us * 1_000);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.002;
        assert!(close(s.p50_ms, 5.0), "{s:?}");
        assert!(close(s.p95_ms, 9.5), "{s:?}");
        assert!(close(s.p99_ms, 9.9), "{s:?}");
        assert!(close(s.p999_ms, 9.99), "{s:?}");
        assert!(close(s.mean_ms, 5.0005), "{s:?}");
    }

    #[test]
    fn histogram_merge_and_saturation() {
        let mut a = LatencyHist::new();
        let mut b = LatencyHist::new();
        a.record_ns(1_000);
        b.record_ns(u64::MAX);
        a.merge(&b);
        assert_eq!(a.len(), 2);
        assert!(a.summary().max_ms >= 99_000.0);
        assert_eq!(LatencyHist::new().summary(), LatencySummary::default());
    }

    #[test]
    fn mean_merges() {
        let mut a = Mean::default();
        assert_eq!(a.get(), None);
        a.add(1.0);
        let mut b = Mean::default();
        b.add(0.0);
        a.merge(b);
        assert_eq!(a.get(), Some(0.5));
    }
}
