//! `GET /metrics`: Qdrant 1.19's metric families (`src/common/metrics.rs`), same names, types,
//! HELP texts and labels, in its order, rendered from a snapshot:
//!
//! * `app_info{name,version}`, `app_status_recovery_mode`;
//! * `collections_total`, `collections_vector_total`, `collection_vectors{collection,vector}`,
//!   `collection_indexed_only_excluded_points{id,vector}`, `collection_active_replicas_min`,
//!   `collection_active_replicas_max`, `collection_points{id}`, `collection_dead_replicas`,
//!   `collection_shard_transfer_incoming{id}`, `collection_shard_transfer_outgoing{id}`;
//! * `cluster_enabled`, and in cluster mode `cluster_peers_total`, `cluster_term`,
//!   `cluster_commit{peer_id}`, `cluster_pending_operations_total`, `cluster_voter`,
//!   `cluster_last_update_timestamp_seconds`, `cluster_working_state{state}`;
//! * `rest_responses_{total,avg_duration_seconds,min_duration_seconds,max_duration_seconds,
//!   duration_seconds}` with `method`, `endpoint`, `status` for Qdrant's whitelisted search,
//!   recommend, scroll and write endpoints (timings of 200 responses only), and the
//!   `grpc_responses_*` family with `endpoint`, `status` (gRPC code) for its whitelisted
//!   `qdrant.Points` methods; with `?per_collection=true` these carry a `collection` label
//!   instead;
//! * `memory_{active,allocated,metadata,resident,retained}_bytes` (see `metrics::system`);
//! * `process_threads`, `process_open_mmaps`, `system_max_mmaps`, `process_open_fds`,
//!   `process_max_fds`, `process_minor_page_faults_total`, `process_major_page_faults_total`.
//!
//! Left out, as there is nothing true to report: `collection_running_optimizations`,
//! `snapshot_creation_running`, `snapshot_recovery_running`, `snapshot_created_total`,
//! `collection_update_queue_length`, `collection_update_queue_deferred_points`,
//! `collection_hardware_metric_*`, `quota_exceeded` (no quota configured: Qdrant omits it too),
//! `audit_log_dir_size_bytes`. Ours, after Qdrant's: `anti_entropy_*` and
//! `process_uptime_seconds`.

use super::anonymize;
use super::{Detail, Snapshot};
use crate::cluster::ReplicaState;
use crate::metrics::prometheus::{histogram, Exposition, Kind, Labels, Value};
use crate::metrics::{ByEndpoint, Metrics, RequestsSnapshot};

/// REST endpoints Qdrant reports on `/metrics` (its `REST_ENDPOINT_WHITELIST`; note that its
/// facet route, `/collections/{collection_name}/facet`, is not among them).
pub const REST_ENDPOINTS: &[&str] = &[
    "/collections/{collection_name}/index",
    "/collections/{collection_name}/points",
    "/collections/{collection_name}/points/batch",
    "/collections/{collection_name}/points/count",
    "/collections/{collection_name}/points/delete",
    "/collections/{collection_name}/points/discover",
    "/collections/{collection_name}/points/discover/batch",
    "/collections/{collection_name}/points/facet",
    "/collections/{collection_name}/points/payload",
    "/collections/{collection_name}/points/payload/clear",
    "/collections/{collection_name}/points/payload/delete",
    "/collections/{collection_name}/points/query",
    "/collections/{collection_name}/points/query/batch",
    "/collections/{collection_name}/points/query/groups",
    "/collections/{collection_name}/points/recommend",
    "/collections/{collection_name}/points/recommend/batch",
    "/collections/{collection_name}/points/recommend/groups",
    "/collections/{collection_name}/points/scroll",
    "/collections/{collection_name}/points/search",
    "/collections/{collection_name}/points/search/batch",
    "/collections/{collection_name}/points/search/groups",
    "/collections/{collection_name}/points/search/matrix/offsets",
    "/collections/{collection_name}/points/search/matrix/pairs",
    "/collections/{collection_name}/points/vectors",
    "/collections/{collection_name}/points/vectors/delete",
    "/collections/{collection_name}/vectors/{vector_name}",
];

/// gRPC methods Qdrant reports on `/metrics` (its `GRPC_ENDPOINT_WHITELIST`).
pub const GRPC_ENDPOINTS: &[&str] = &[
    "/qdrant.Points/ClearPayload",
    "/qdrant.Points/Count",
    "/qdrant.Points/CreateVectorName",
    "/qdrant.Points/Delete",
    "/qdrant.Points/DeletePayload",
    "/qdrant.Points/DeleteVectorName",
    "/qdrant.Points/Discover",
    "/qdrant.Points/DiscoverBatch",
    "/qdrant.Points/Facet",
    "/qdrant.Points/Get",
    "/qdrant.Points/OverwritePayload",
    "/qdrant.Points/Query",
    "/qdrant.Points/QueryBatch",
    "/qdrant.Points/QueryGroups",
    "/qdrant.Points/Recommend",
    "/qdrant.Points/RecommendBatch",
    "/qdrant.Points/RecommendGroups",
    "/qdrant.Points/Scroll",
    "/qdrant.Points/Search",
    "/qdrant.Points/SearchBatch",
    "/qdrant.Points/SearchGroups",
    "/qdrant.Points/SetPayload",
    "/qdrant.Points/UpdateBatch",
    "/qdrant.Points/UpdateVectors",
    "/qdrant.Points/Upsert",
];

/// REST timings are reported for this status only.
const REST_TIMINGS_FOR: u16 = 200;

pub fn render(s: &Snapshot, d: Detail, metrics: &Metrics, uptime_seconds: f64) -> String {
    let anon = d.anonymize;
    let mut e = Exposition::new(s.settings.service.metrics_prefix.as_deref());
    e.family(
        "app_info",
        "information about qdrant server",
        Kind::Gauge,
        vec![(vec![("name", "qdrant".into()), ("version", s.version.into())], 1.0)],
    );
    e.single(
        "app_status_recovery_mode",
        "features enabled in qdrant server",
        Kind::Gauge,
        0.0,
    );
    collections(&mut e, s, anon);
    cluster(&mut e, s);
    requests(&mut e, "rest_", &s.rest, anon, |endpoint, status, collection| {
        let (method, path) = endpoint.split_once(' ')?;
        REST_ENDPOINTS.binary_search(&path).ok()?;
        let mut labels: Labels = vec![
            ("method", method.to_string()),
            ("endpoint", path.to_string()),
            ("status", status.to_string()),
        ];
        labels.extend(collection.map(|c| ("collection", c.to_string())));
        Some((labels, *status == REST_TIMINGS_FOR))
    });
    requests(&mut e, "grpc_", &s.grpc, anon, |endpoint, code, collection| {
        GRPC_ENDPOINTS.binary_search(&endpoint).ok()?;
        let mut labels: Labels = vec![("endpoint", endpoint.to_string()), ("status", code.to_string())];
        labels.extend(collection.map(|c| ("collection", c.to_string())));
        Some((labels, true))
    });
    let m = &s.memory;
    let memory = [
        (
            "memory_active_bytes",
            "Total number of bytes in active pages allocated by the application",
            m.active_bytes,
        ),
        (
            "memory_allocated_bytes",
            "Total number of bytes allocated by the application",
            m.allocated_bytes,
        ),
        (
            "memory_metadata_bytes",
            "Total number of bytes dedicated to metadata",
            m.metadata_bytes,
        ),
        (
            "memory_resident_bytes",
            "Maximum number of bytes in physically resident data pages mapped",
            m.resident_bytes,
        ),
        (
            "memory_retained_bytes",
            "Total number of bytes in virtual memory mappings",
            m.retained_bytes,
        ),
    ];
    for (name, help, value) in memory {
        e.single(name, help, Kind::Gauge, value as f64);
    }
    if let Some(p) = &s.process {
        e.single(
            "process_threads",
            "count of active threads",
            Kind::Gauge,
            p.threads as f64,
        );
        e.single(
            "process_open_mmaps",
            "count of open mmaps",
            Kind::Gauge,
            p.open_mmaps as f64,
        );
        e.single(
            "system_max_mmaps",
            "system wide limit of open mmaps",
            Kind::Gauge,
            p.max_mmaps as f64,
        );
        e.single(
            "process_open_fds",
            "count of currently open file descriptors",
            Kind::Gauge,
            p.open_fds as f64,
        );
        e.single(
            "process_max_fds",
            "limit for open file descriptors",
            Kind::Gauge,
            p.max_fds as f64,
        );
        e.single(
            "process_minor_page_faults_total",
            "count of minor page faults which didn't cause a disk access",
            Kind::Counter,
            p.minor_page_faults as f64,
        );
        e.single(
            "process_major_page_faults_total",
            "count of disk accesses caused by a mmap page fault",
            Kind::Counter,
            p.major_page_faults as f64,
        );
    }
    metrics.render_anti_entropy(&mut e);
    metrics.render_snapshots(&mut e);
    e.single(
        "process_uptime_seconds",
        "time since the node started",
        Kind::Gauge,
        uptime_seconds,
    );
    e.finish()
}

fn is_active(state: ReplicaState) -> bool {
    matches!(state, ReplicaState::Active | ReplicaState::ReshardingScaleDown)
}

fn collections(e: &mut Exposition, s: &Snapshot, anon: bool) {
    e.single(
        "collections_total",
        "number of collections",
        Kind::Gauge,
        s.number_of_collections as f64,
    );
    let mut vectors = Vec::new();
    let mut excluded = Vec::new();
    let mut points = Vec::new();
    let mut incoming = Vec::new();
    let mut outgoing = Vec::new();
    let (mut min_active, mut max_active) = (usize::MAX, 0);
    let mut dead = 0;
    for c in &s.collections {
        let id = anonymize::name(&c.name, anon);
        let mut by_name = std::collections::BTreeMap::<String, usize>::new();
        let mut excluded_by_name = std::collections::BTreeMap::<String, usize>::new();
        let mut local_points = 0;
        for shard in &c.shards {
            if let Some(l) = &shard.local {
                local_points += l.points;
                for (name, n) in &l.vectors {
                    *by_name.entry(name.clone()).or_default() += n;
                }
                for (name, n) in &l.indexed_only_excluded {
                    *excluded_by_name.entry(name.clone()).or_default() += n;
                }
            }
            // A replica set still being filled by resharding does not count (as in Qdrant).
            if !shard.replicas.values().any(|st| *st == ReplicaState::Resharding) {
                let active = shard.replicas.values().filter(|st| is_active(**st)).count();
                min_active = min_active.min(active);
                max_active = max_active.max(active);
            }
            dead += usize::from(shard.replicas.values().any(|st| !is_active(*st)));
        }
        for (name, n) in by_name {
            let labels = vec![("collection", id.clone()), ("vector", anonymize::name(&name, anon))];
            vectors.push((labels, anonymize::count(n as u64, anon) as f64));
        }
        for (name, n) in excluded_by_name {
            let labels = vec![("id", id.clone()), ("vector", anonymize::name(&name, anon))];
            excluded.push((labels, anonymize::count(n as u64, anon) as f64));
        }
        points.push((
            vec![("id", id.clone())],
            anonymize::count(local_points as u64, anon) as f64,
        ));
        let me = s.cluster.as_ref().map(|cl| cl.peer_id);
        let count = |f: &dyn Fn(&crate::model::cluster::ShardTransferInfo, u64) -> bool| {
            me.map_or(0, |me| c.transfers.iter().filter(|t| f(t, me)).count()) as f64
        };
        incoming.push((vec![("id", id.clone())], count(&|t, me| t.to == me)));
        outgoing.push((vec![("id", id)], count(&|t, me| t.from == Some(me))));
    }
    let total: f64 = vectors.iter().map(|(_, n)| n).sum();
    e.single(
        "collections_vector_total",
        "total number of vectors in all collections",
        Kind::Gauge,
        total,
    );
    e.family(
        "collection_vectors",
        "amount of vectors grouped by vector name",
        Kind::Gauge,
        vectors,
    );
    e.family(
        "collection_indexed_only_excluded_points",
        "amount of points excluded in indexed_only requests",
        Kind::Gauge,
        excluded,
    );
    let min_active = if min_active == usize::MAX { 0 } else { min_active };
    e.single(
        "collection_active_replicas_min",
        "minimum number of active replicas across all shards",
        Kind::Gauge,
        min_active as f64,
    );
    e.single(
        "collection_active_replicas_max",
        "maximum number of active replicas across all shards",
        Kind::Gauge,
        max_active as f64,
    );
    e.family(
        "collection_points",
        "approximate amount of points per collection",
        Kind::Gauge,
        points,
    );
    e.single(
        "collection_dead_replicas",
        "total amount of shard replicas in non-active state",
        Kind::Gauge,
        dead as f64,
    );
    e.family(
        "collection_shard_transfer_incoming",
        "incoming shard transfers currently running",
        Kind::Gauge,
        incoming,
    );
    e.family(
        "collection_shard_transfer_outgoing",
        "outgoing shard transfers currently running",
        Kind::Gauge,
        outgoing,
    );
}

fn cluster(e: &mut Exposition, s: &Snapshot) {
    e.single(
        "cluster_enabled",
        "is cluster support enabled",
        Kind::Gauge,
        f64::from(u8::from(s.settings.cluster.enabled)),
    );
    let Some(c) = &s.cluster else { return };
    let m = &c.metrics;
    e.single(
        "cluster_peers_total",
        "total number of cluster peers",
        Kind::Gauge,
        m.peers_total as f64,
    );
    e.single("cluster_term", "current cluster term", Kind::Counter, m.term as f64);
    e.family(
        "cluster_commit",
        "index of last committed (finalized) operation cluster peer is aware of",
        Kind::Counter,
        vec![(vec![("peer_id", c.peer_id.to_string())], m.commit as f64)],
    );
    e.single(
        "cluster_pending_operations_total",
        "total number of pending operations for cluster peer",
        Kind::Gauge,
        m.pending_operations as f64,
    );
    e.single(
        "cluster_voter",
        "is cluster peer a voter or learner",
        Kind::Gauge,
        f64::from(u8::from(m.voter)),
    );
    let last_update = c.last_update();
    if let Some(at) = last_update {
        e.single(
            "cluster_last_update_timestamp_seconds",
            "unix timestamp of last update",
            Kind::Counter,
            at.timestamp() as f64,
        );
    }
    let working = f64::from(u8::from(last_update.is_some()));
    e.family(
        "cluster_working_state",
        "working state of the cluster",
        Kind::Gauge,
        vec![
            (vec![("state", "working".into())], working),
            (vec![("state", "stopped".into())], 1.0 - working),
        ],
    );
}

/// The five `{api}responses_*` families. `labels` names a sample (or drops it: endpoints
/// Qdrant does not report) and says whether its timings are reported.
fn requests<S: Ord + Copy>(
    e: &mut Exposition,
    api: &str,
    r: &RequestsSnapshot<S>,
    anon: bool,
    labels: impl Fn(&str, &S, Option<&str>) -> Option<(Labels, bool)>,
) {
    let mut total = Vec::new();
    let (mut avg, mut min, mut max, mut hist) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut add = |m: &ByEndpoint<S>, collection: Option<&str>| {
        for (endpoint, statuses) in m {
            for (status, stats) in statuses {
                let Some((l, timings)) = labels(endpoint, status, collection) else {
                    continue;
                };
                total.push((l.clone(), Value::Number(anonymize::count(stats.count, anon) as f64)));
                if !timings {
                    continue;
                }
                let seconds = |micros: Option<f32>| Value::Number(f64::from(micros.unwrap_or(0.0)) / 1e6);
                avg.push((l.clone(), seconds(stats.avg_micros)));
                min.push((l.clone(), seconds(stats.min_micros)));
                max.push((l.clone(), seconds(stats.max_micros)));
                let mut h = stats.clone();
                if anon {
                    h.count = anonymize::count(h.count, true);
                    h.histogram
                        .iter_mut()
                        .for_each(|(_, n)| *n = anonymize::count(*n, true));
                }
                hist.push((l, histogram(&h)));
            }
        }
    };
    // Per-collection statistics replace the global ones when asked for (and not anonymized).
    if r.per_collection.is_empty() || anon {
        add(&r.responses, None);
    } else {
        for (collection, m) in &r.per_collection {
            add(m, Some(collection));
        }
    }
    e.push(
        &format!("{api}responses_total"),
        "total number of responses",
        Kind::Counter,
        total,
    );
    e.push(
        &format!("{api}responses_avg_duration_seconds"),
        "average response duration",
        Kind::Gauge,
        avg,
    );
    e.push(
        &format!("{api}responses_min_duration_seconds"),
        "minimum response duration",
        Kind::Gauge,
        min,
    );
    e.push(
        &format!("{api}responses_max_duration_seconds"),
        "maximum response duration",
        Kind::Gauge,
        max,
    );
    e.push(
        &format!("{api}responses_duration_seconds"),
        "response duration histogram",
        Kind::Histogram,
        hist,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitelists_are_sorted_for_binary_search() {
        assert!(REST_ENDPOINTS.windows(2).all(|w| w[0] < w[1]));
        assert!(GRPC_ENDPOINTS.windows(2).all(|w| w[0] < w[1]));
    }
}
