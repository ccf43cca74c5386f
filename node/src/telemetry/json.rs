//! `GET /telemetry` in Qdrant's shape (`TelemetryData`), each details level adding what
//! Qdrant's adds:
//!
//! * 0: `id`; `app` {name, version, startup}; `collections.number_of_collections`;
//!   `cluster` {enabled, resharding_enabled}; `requests` (count and average per endpoint and
//!   status).
//! * 1: `app.features`, `app.system`; per collection `{vectors, optimizers_status, params}`
//!   (Qdrant's aggregated form); `cluster.status` (cluster mode); requests with min, max,
//!   total and `last_responded`; `memory`; `hardware`.
//! * 2: per collection `{id, config}`; `cluster.config`, `cluster.peers`.
//! * 3 and 4: per collection `shards` (replica states, the local replica's points and vectors)
//!   and `transfers`. Qdrant's level 4 adds its segments and optimizer logs, which this node
//!   does not have.
//!
//! Not reported (no counterpart here): `app.runtime_features`, `low_memory_mode`,
//! `hnsw_global_config`, `system.cpu_cores_used`, `collections[].init_time_ms`, snapshot
//! statistics (an empty `snapshots` list), `search_pool`, `quota`, per-collection hardware
//! counters (`hardware.collection_data` is empty).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::anonymize;
use super::{CollectionView, Detail, ShardView, Snapshot};
use crate::metrics::stats::Snapshot as Stats;
use crate::metrics::{ByEndpoint, RequestsSnapshot};

pub fn render(s: &Snapshot, d: Detail) -> Value {
    let anon = d.anonymize;
    let level = d.level;
    let mut app = json!({"name": "qdrant", "version": s.version});
    if level >= 1 {
        app["features"] = json!({
            "debug": cfg!(debug_assertions),
            "service_debug_feature": false,
            "recovery_mode": false,
            "gpu": false,
            "rocksdb": true,
            "staging": false,
        });
        if let Some(sys) = &s.system {
            app["system"] = json!({
                "distribution": sys.distribution,
                "distribution_version": sys.distribution_version,
                "is_docker": sys.is_docker,
                "cores": sys.cores,
                "ram_size": sys.ram_size.map(|n| anonymize::count(n, anon)),
                "disk_size": sys.disk_size.map(|n| anonymize::count(n, anon)),
                "cpu_flags": sys.cpu_flags,
                "cpu_endian": sys.cpu_endian,
            });
        }
    }
    app["startup"] = json!(timestamp(anonymize::time(s.startup, anon)));

    let mut collections = json!({"number_of_collections": s.number_of_collections});
    if level >= 1 {
        let list: Vec<Value> = s
            .collections
            .iter()
            .map(|c| {
                if level >= 2 {
                    full_collection(c, level, anon)
                } else {
                    aggregated(c, anon)
                }
            })
            .collect();
        collections["collections"] = Value::Array(list);
        collections["snapshots"] = json!([]);
    }

    let mut result = json!({
        "id": s.id,
        "app": app,
        "collections": collections,
        "cluster": cluster(s, level, anon),
        "requests": {
            "rest": requests(&s.rest, level, anon, |status| status.to_string()),
            "grpc": requests(&s.grpc, level, anon, |code| code.to_string()),
        },
    });
    if level >= 1 {
        let m = &s.memory;
        result["memory"] = json!({
            "active_bytes": m.active_bytes,
            "allocated_bytes": m.allocated_bytes,
            "metadata_bytes": m.metadata_bytes,
            "resident_bytes": m.resident_bytes,
            "retained_bytes": m.retained_bytes,
        });
        result["hardware"] = json!({"collection_data": {}});
    }
    result
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Level 1: Qdrant's `CollectionsAggregatedTelemetry` (no id).
fn aggregated(c: &CollectionView, anon: bool) -> Value {
    let vectors: usize = c
        .shards
        .iter()
        .filter_map(|s| s.local.as_ref())
        .map(|l| l.vectors_total())
        .sum();
    json!({
        "vectors": anonymize::count(vectors as u64, anon),
        "optimizers_status": "ok",
        "params": params(c, anon),
    })
}

fn params(c: &CollectionView, anon: bool) -> Value {
    let mut params = serde_json::to_value(&c.config.params).unwrap_or(Value::Null);
    if anon {
        // Named vectors are keyed by their names; so are sparse vectors.
        if let Some(vectors) = params.get_mut("vectors").and_then(Value::as_object_mut) {
            if !vectors.contains_key("size") {
                *vectors = hash_keys(vectors);
            }
        }
        if let Some(sparse) = params.get_mut("sparse_vectors").and_then(Value::as_object_mut) {
            *sparse = hash_keys(sparse);
        }
    }
    params
}

fn hash_keys(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter().map(|(k, v)| (anonymize::name(k, true), v.clone())).collect()
}

/// Level 2 and up: Qdrant's `CollectionTelemetry`.
fn full_collection(c: &CollectionView, level: usize, anon: bool) -> Value {
    let mut config = serde_json::to_value(&c.config).unwrap_or(Value::Null);
    if let Some(obj) = config.as_object_mut() {
        obj.insert("params".into(), params(c, anon));
        obj.entry("uuid").or_insert(Value::Null);
        if anon {
            obj.insert("uuid".into(), Value::Null);
            obj.remove("metadata");
        }
    }
    let mut out = json!({"id": anonymize::name(&c.name, anon), "config": config});
    if level >= 3 {
        out["shards"] = Value::Array(c.shards.iter().map(|s| shard(c, s, anon)).collect());
        out["transfers"] = serde_json::to_value(&c.transfers).unwrap_or_else(|_| json!([]));
        out["resharding"] = json!([]);
    }
    out
}

/// Qdrant's `ReplicaSetTelemetry`.
fn shard(c: &CollectionView, s: &ShardView, anon: bool) -> Value {
    let local = s.local.as_ref().map(|l| {
        let by_name = |m: &BTreeMap<String, usize>| -> Map<String, Value> {
            m.iter()
                .map(|(k, v)| (anonymize::name(k, anon), json!(anonymize::count(*v as u64, anon))))
                .collect()
        };
        let mut local = json!({
            "variant_name": null,
            "status": null,
            "total_optimized_points": 0,
            "num_points": anonymize::count(l.points as u64, anon),
            "num_vectors": anonymize::count(l.vectors_total() as u64, anon),
            "num_vectors_by_name": by_name(&l.vectors),
            // Ours, not Qdrant's: where dense vectors take RAM, so what quantization (codes in
            // the HNSW) and `on_disk` (originals read from a file) save shows.
            "vectors_ram_bytes": anonymize::count(l.memory.vectors_ram_bytes as u64, anon),
            "vector_index_ram_bytes": anonymize::count(l.memory.index_ram_bytes as u64, anon),
            // Graph records kept in a mapped file (HNSW `on_disk`, codes not `always_ram`).
            "vector_index_mmap_bytes": anonymize::count(l.memory.index_mmap_bytes as u64, anon),
            "num_quantized_vectors": anonymize::count(l.memory.quantized_vectors as u64, anon),
            "optimizations": {"status": "ok", "optimizations": {"count": 0}},
            "async_scorer": false,
        });
        if !l.indexed_only_excluded.is_empty() {
            local["indexed_only_excluded_vectors"] = Value::Object(by_name(&l.indexed_only_excluded));
        }
        local
    });
    let remote: Vec<Value> = s
        .replicas
        .keys()
        .filter(|peer| **peer != c.peer_id)
        .map(|peer| json!({"shard_id": s.id, "peer_id": peer, "searches": null, "updates": null}))
        .collect();
    let states: Map<String, Value> = s.replicas.iter().map(|(p, st)| (p.to_string(), json!(st))).collect();
    json!({
        "id": s.id,
        "key": null,
        "local": local,
        "remote": remote,
        "replicate_states": states,
    })
}

/// Qdrant's `ClusterTelemetry`.
fn cluster(s: &Snapshot, level: usize, anon: bool) -> Value {
    let settings = &s.settings.cluster;
    let mut out = json!({"enabled": settings.enabled});
    if let Some(c) = &s.cluster {
        if level >= 1 {
            let raft = &c.status["raft_info"];
            out["status"] = json!({
                "number_of_peers": c.metrics.peers_total,
                "term": raft["term"],
                "commit": raft["commit"],
                "pending_operations": raft["pending_operations"],
                "role": raft["role"],
                "is_voter": raft["is_voter"],
                "peer_id": c.peer_id,
                "consensus_thread_status": c.status["consensus_thread_status"],
            });
        }
        if level >= 2 {
            let peers: Map<String, Value> = c.status["peers"]
                .as_object()
                .map(|peers| {
                    peers
                        .iter()
                        .map(|(id, info)| {
                            let uri = info["uri"].as_str().unwrap_or_default();
                            (id.clone(), json!({"uri": anonymize::name(uri, anon)}))
                        })
                        .collect()
                })
                .unwrap_or_default();
            out["peers"] = Value::Object(peers);
        }
    }
    if level >= 2 {
        out["config"] = json!({
            "grpc_timeout_ms": settings.grpc_timeout_ms,
            "consensus": {
                "tick_period_ms": settings.consensus.tick_period_ms,
                "bootstrap_timeout_sec": settings.consensus.bootstrap_timeout_sec,
            },
        });
    }
    out["resharding_enabled"] = json!(false);
    out
}

/// Qdrant's `WebApiTelemetry` / `GrpcTelemetry`.
fn requests<S: Ord + Copy>(r: &RequestsSnapshot<S>, level: usize, anon: bool, key: impl Fn(S) -> String) -> Value {
    let by_endpoint = |m: &ByEndpoint<S>| -> Value {
        let endpoints: Map<String, Value> = m
            .iter()
            .map(|(endpoint, statuses)| {
                let statuses: Map<String, Value> = statuses
                    .iter()
                    .map(|(status, stats)| (key(*status), statistics(stats, level, anon)))
                    .collect();
                (endpoint.clone(), Value::Object(statuses))
            })
            .collect();
        Value::Object(endpoints)
    };
    let mut out = json!({"responses": by_endpoint(&r.responses)});
    // Anonymized telemetry drops the per-collection statistics (collection names are user data).
    if !r.per_collection.is_empty() && !anon {
        let per: Map<String, Value> = r
            .per_collection
            .iter()
            .map(|(c, m)| (c.clone(), by_endpoint(m)))
            .collect();
        out["per_collection_responses"] = Value::Object(per);
    }
    out
}

/// Qdrant's `OperationDurationStatistics`.
pub fn statistics(s: &Stats, level: usize, anon: bool) -> Value {
    let mut out = json!({"count": anonymize::count(s.count, anon)});
    if let Some(avg) = s.avg_micros {
        out["avg_duration_micros"] = json!(avg);
    }
    if level >= 1 {
        if let Some(min) = s.min_micros {
            out["min_duration_micros"] = json!(min);
        }
        if let Some(max) = s.max_micros {
            out["max_duration_micros"] = json!(max);
        }
        out["total_duration_micros"] = json!(s.total_micros);
        out["last_responded"] = json!(timestamp(anonymize::time(s.last_responded, anon)));
    }
    out
}
