//! Prometheus metrics of the operator (text exposition on `/metrics`).

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::Error;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

/// The operator's metrics and their registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub reconciliations: Counter,
    pub failures: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub actions: Family<ActionLabels, Counter>,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("qdrant_operator");
        let reconciliations = Counter::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        let actions = Family::<ActionLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register("reconciliations", "Reconciliations started", reconciliations.clone());
        registry.register(
            "reconcile_failures",
            "Reconciliations that failed, by error kind",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciliations",
            duration.clone(),
        );
        registry.register(
            "actions",
            "Actions taken on clusters (scale, drain, restart, ...)",
            actions.clone(),
        );
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        Metrics {
            registry: Arc::new(registry),
            reconciliations,
            failures,
            duration,
            actions,
            leader,
        }
    }

    /// Counts a reconciliation and measures it until the guard drops.
    pub fn reconcile_timer(&self) -> ReconcileTimer {
        self.reconciliations.inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.duration.clone(),
        }
    }

    /// Counts a failed reconciliation.
    pub fn failed(&self, error: &Error) {
        self.failures
            .get_or_create(&ErrorLabels {
                error: error.metric_label().to_string(),
            })
            .inc();
    }

    /// Counts an action.
    pub fn action(&self, action: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                action: action.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Records the duration of a reconciliation when dropped.
pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_counters_failures_and_durations() {
        let metrics = Metrics::new();
        drop(metrics.reconcile_timer());
        metrics.failed(&Error::MissingObjectKey("x"));
        metrics.action("ScaleUp");
        metrics.leader.set(1);
        let text = metrics.encode().expect("encode");
        assert!(text.contains("qdrant_operator_reconciliations_total 1"), "{text}");
        assert!(
            text.contains("qdrant_operator_reconcile_failures_total{error=\"missing_key\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("qdrant_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("qdrant_operator_actions_total{action=\"ScaleUp\"} 1"),
            "{text}"
        );
        assert!(text.contains("qdrant_operator_leader 1"), "{text}");
    }
}
