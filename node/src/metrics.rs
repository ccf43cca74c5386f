//! What the node counts while it serves: response statistics of the REST and gRPC APIs (kept
//! by the REST middleware and the gRPC layer, per endpoint and status as Qdrant keys them, and
//! per collection for `?per_collection=true`) and the anti-entropy checks. `/telemetry` and
//! `/metrics` render them (`crate::telemetry`).

pub mod prometheus;
pub mod stats;
pub mod system;

use std::collections::BTreeMap;

use parking_lot::Mutex;

use prometheus::{Exposition, Kind};
use stats::{DurationStats, Snapshot};

/// Responses by endpoint, then status.
pub type ByEndpoint<S> = BTreeMap<String, BTreeMap<S, Snapshot>>;

/// Response statistics of one API: `responses` keyed by endpoint (`"GET /collections"` for
/// REST, the method path `/qdrant.Points/Search` for gRPC) then status (HTTP status, gRPC
/// code), and the same per collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestsSnapshot<S> {
    pub responses: ByEndpoint<S>,
    /// Filled only when asked for (`per_collection`).
    pub per_collection: BTreeMap<String, ByEndpoint<S>>,
}

#[derive(Debug)]
struct Requests<S> {
    all: BTreeMap<String, BTreeMap<S, DurationStats>>,
    by_collection: BTreeMap<String, BTreeMap<String, BTreeMap<S, DurationStats>>>,
}

impl<S> Default for Requests<S> {
    fn default() -> Self {
        Requests {
            all: BTreeMap::new(),
            by_collection: BTreeMap::new(),
        }
    }
}

impl<S: Ord + Copy> Requests<S> {
    fn add(&mut self, endpoint: &str, status: S, collection: Option<&str>, seconds: f64) {
        record(&mut self.all, endpoint, status, seconds);
        if let Some(collection) = collection {
            match self.by_collection.get_mut(collection) {
                Some(m) => record(m, endpoint, status, seconds),
                None => {
                    let mut m = BTreeMap::new();
                    record(&mut m, endpoint, status, seconds);
                    self.by_collection.insert(collection.to_string(), m);
                }
            }
        }
    }

    fn snapshot(&self, per_collection: bool) -> RequestsSnapshot<S> {
        fn snap<S: Ord + Copy>(m: &BTreeMap<String, BTreeMap<S, DurationStats>>) -> ByEndpoint<S> {
            m.iter()
                .map(|(e, statuses)| (e.clone(), statuses.iter().map(|(s, d)| (*s, d.snapshot())).collect()))
                .collect()
        }
        RequestsSnapshot {
            responses: snap(&self.all),
            per_collection: if per_collection {
                self.by_collection.iter().map(|(c, m)| (c.clone(), snap(m))).collect()
            } else {
                BTreeMap::new()
            },
        }
    }
}

/// Adds one response to `m` (allocating the endpoint key only the first time).
fn record<S: Ord>(m: &mut BTreeMap<String, BTreeMap<S, DurationStats>>, endpoint: &str, status: S, seconds: f64) {
    match m.get_mut(endpoint) {
        Some(statuses) => statuses.entry(status).or_default().add(seconds),
        None => {
            let mut statuses = BTreeMap::new();
            statuses
                .entry(status)
                .or_insert_with(DurationStats::default)
                .add(seconds);
            m.insert(endpoint.to_string(), statuses);
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    rest: Mutex<Requests<u16>>,
    grpc: Mutex<Requests<i32>>,
    /// Replica comparisons of the anti-entropy checks.
    anti_entropy: Mutex<AntiEntropyStats>,
    snapshots: Mutex<SnapshotStats>,
}

/// Counters of snapshot creation and recovery.
#[derive(Default, Clone, Copy, Debug)]
pub struct SnapshotStats {
    pub created: u64,
    pub created_bytes: u64,
    pub creation_seconds: f64,
    pub recovered: u64,
    pub recovered_bytes: u64,
    pub recovery_seconds: f64,
    pub failed: u64,
}

/// What a snapshot operation did, for [`Metrics::observe_snapshot`].
#[derive(Debug, Clone, Copy)]
pub enum SnapshotEvent {
    Created { bytes: u64, seconds: f64 },
    Recovered { bytes: u64, seconds: f64 },
    Failed,
}

/// Counters of the anti-entropy checks (cluster mode).
#[derive(Default, Clone, Copy, Debug)]
pub struct AntiEntropyStats {
    /// Replica pairs compared, in all.
    pub comparisons: u64,
    /// Buckets found differing at the latest check of each collection, summed.
    pub divergent_buckets: u64,
    pub repairs: u64,
    pub repaired_points: u64,
}

impl Metrics {
    /// One REST response: `endpoint` is `"METHOD /route/{pattern}"` (Qdrant's key), `collection`
    /// the `{collection_name}` of the path, if any.
    pub fn observe_rest(&self, endpoint: &str, status: u16, collection: Option<&str>, seconds: f64) {
        self.rest.lock().add(endpoint, status, collection, seconds);
    }

    /// One gRPC response of method path `endpoint` with gRPC status `code` (0 = OK).
    pub fn observe_grpc(&self, endpoint: &str, code: i32, collection: Option<&str>, seconds: f64) {
        self.grpc.lock().add(endpoint, code, collection, seconds);
    }

    pub fn rest(&self, per_collection: bool) -> RequestsSnapshot<u16> {
        self.rest.lock().snapshot(per_collection)
    }

    pub fn grpc(&self, per_collection: bool) -> RequestsSnapshot<i32> {
        self.grpc.lock().snapshot(per_collection)
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

    pub fn observe_snapshot(&self, event: SnapshotEvent) {
        let mut s = self.snapshots.lock();
        match event {
            SnapshotEvent::Created { bytes, seconds } => {
                s.created += 1;
                s.created_bytes += bytes;
                s.creation_seconds += seconds;
            }
            SnapshotEvent::Recovered { bytes, seconds } => {
                s.recovered += 1;
                s.recovered_bytes += bytes;
                s.recovery_seconds += seconds;
            }
            SnapshotEvent::Failed => s.failed += 1,
        }
    }

    pub fn snapshots(&self) -> SnapshotStats {
        *self.snapshots.lock()
    }

    /// `snapshot_*` families: Qdrant's `snapshot_created_total`, and our own for the rest.
    pub fn render_snapshots(&self, e: &mut Exposition) {
        let s = *self.snapshots.lock();
        let lines = [
            (
                "snapshot_created_total",
                Kind::Counter,
                "snapshots created",
                s.created as f64,
            ),
            (
                "snapshot_created_bytes_total",
                Kind::Counter,
                "bytes of the snapshots created",
                s.created_bytes as f64,
            ),
            (
                "snapshot_creation_seconds_total",
                Kind::Counter,
                "time spent creating snapshots",
                s.creation_seconds,
            ),
            (
                "snapshot_recovered_total",
                Kind::Counter,
                "snapshots recovered",
                s.recovered as f64,
            ),
            (
                "snapshot_recovered_bytes_total",
                Kind::Counter,
                "bytes of the snapshots recovered",
                s.recovered_bytes as f64,
            ),
            (
                "snapshot_recovery_seconds_total",
                Kind::Counter,
                "time spent recovering snapshots",
                s.recovery_seconds,
            ),
            (
                "snapshot_failed_total",
                Kind::Counter,
                "snapshot creations and recoveries that failed",
                s.failed as f64,
            ),
        ];
        for (name, kind, help, value) in lines {
            e.single(name, help, kind, value);
        }
    }

    /// Our own `anti_entropy_*` families (Qdrant has no anti-entropy).
    pub fn render_anti_entropy(&self, e: &mut Exposition) {
        let a = *self.anti_entropy.lock();
        let lines = [
            (
                "anti_entropy_comparisons_total",
                Kind::Counter,
                "replica digests compared with the reference replica's",
                a.comparisons,
            ),
            (
                "anti_entropy_divergent_buckets",
                Kind::Gauge,
                "digest buckets in which a replica differs from its reference at the latest check",
                a.divergent_buckets,
            ),
            (
                "anti_entropy_repairs_total",
                Kind::Counter,
                "replicas repaired by a partial transfer of differing buckets",
                a.repairs,
            ),
            (
                "anti_entropy_repaired_points_total",
                Kind::Counter,
                "points sent to repair replicas",
                a.repaired_points,
            ),
        ];
        for (name, kind, help, value) in lines {
            e.single(name, help, kind, value as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_responses_per_endpoint_status_and_collection() {
        let m = Metrics::default();
        m.observe_rest("GET /collections", 200, None, 0.003);
        m.observe_rest("POST /collections/{collection_name}/points/search", 200, Some("a"), 0.2);
        m.observe_rest(
            "POST /collections/{collection_name}/points/search",
            404,
            Some("b"),
            0.001,
        );
        m.observe_grpc("/qdrant.Points/Search", 0, Some("a"), 0.001);
        m.observe_grpc("/qdrant.Points/Search", 5, None, 0.001);

        let rest = m.rest(false);
        assert_eq!(rest.responses["GET /collections"][&200].count, 1);
        let search = &rest.responses["POST /collections/{collection_name}/points/search"];
        assert_eq!((search[&200].count, search[&404].count), (1, 1));
        assert!(rest.per_collection.is_empty());
        let rest = m.rest(true);
        assert_eq!(
            rest.per_collection["b"]["POST /collections/{collection_name}/points/search"][&404].count,
            1
        );
        assert!(!rest.per_collection.contains_key("GET /collections"));

        let grpc = m.grpc(true);
        assert_eq!(grpc.responses["/qdrant.Points/Search"][&5].count, 1);
        assert_eq!(grpc.per_collection["a"]["/qdrant.Points/Search"][&0].count, 1);
    }
}
