//! Service endpoints: `/`, health probes, `/metrics`, `/telemetry`, `/cluster`.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::response::ok;
use crate::metrics::resident_bytes;
use crate::node::Node;

/// The Qdrant API version this node implements; clients check it for compatibility.
pub const QDRANT_API_VERSION: &str = "1.19.0";

pub async fn root() -> Response {
    axum::Json(json!({
        "title": "qdrant - vector search engine",
        "version": QDRANT_API_VERSION,
        "commit": null,
        "implementation": concat!("node ", env!("CARGO_PKG_VERSION")),
    }))
    .into_response()
}

pub async fn healthz() -> &'static str {
    "healthz check passed"
}

pub async fn readyz(State(node): State<Arc<Node>>) -> (StatusCode, &'static str) {
    // A standalone node serves as soon as its storage is loaded (which precedes listening); a
    // cluster peer once it has caught up with the leader's commit.
    if super::cluster::is_ready(&node).await {
        (StatusCode::OK, "all shards are ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "some shards are not ready")
    }
}

pub async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let mut out = String::new();
    let collections = node.collections();
    let _ = writeln!(out, "# HELP app_info information about the qdrant server");
    let _ = writeln!(out, "# TYPE app_info gauge");
    let _ = writeln!(out, "app_info{{name=\"qdrant\",version=\"{QDRANT_API_VERSION}\"}} 1");
    let _ = writeln!(out, "# HELP collections_total number of collections");
    let _ = writeln!(out, "# TYPE collections_total gauge");
    let _ = writeln!(out, "collections_total {}", collections.len());
    let total: usize = collections.iter().map(|c| c.points_count()).sum();
    let _ = writeln!(
        out,
        "# HELP collections_vector_total total number of points in all collections"
    );
    let _ = writeln!(out, "# TYPE collections_vector_total gauge");
    let _ = writeln!(out, "collections_vector_total {total}");
    let _ = writeln!(
        out,
        "# HELP collection_points approximate amount of points per collection"
    );
    let _ = writeln!(out, "# TYPE collection_points gauge");
    for c in &collections {
        let _ = writeln!(out, "collection_points{{id=\"{}\"}} {}", c.name, c.points_count());
    }
    let _ = writeln!(out, "# HELP cluster_enabled is cluster support enabled");
    let _ = writeln!(out, "# TYPE cluster_enabled gauge");
    let _ = writeln!(out, "cluster_enabled {}", u8::from(node.settings.cluster.enabled));
    super::cluster::write_metrics(node.consensus().map(|c| c.as_ref()), &mut out);
    node.metrics.render_rest(&mut out);
    node.metrics.render_grpc(&mut out);
    node.metrics.render_anti_entropy(&mut out);
    if let Some(rss) = resident_bytes() {
        let _ = writeln!(out, "# HELP memory_resident_bytes resident memory of the process");
        let _ = writeln!(out, "# TYPE memory_resident_bytes gauge");
        let _ = writeln!(out, "memory_resident_bytes {rss}");
    }
    let _ = writeln!(out, "# HELP process_uptime_seconds time since the node started");
    let _ = writeln!(out, "# TYPE process_uptime_seconds gauge");
    let _ = writeln!(out, "process_uptime_seconds {}", node.started.elapsed().as_secs_f64());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

pub async fn telemetry(State(node): State<Arc<Node>>) -> Response {
    let t = Instant::now();
    let collections: Vec<_> = node
        .collections()
        .iter()
        .map(|c| json!({"id": c.name, "points_count": c.points_count()}))
        .collect();
    let responses: serde_json::Map<String, serde_json::Value> = node
        .metrics
        .rest_summary()
        .into_iter()
        .map(|(endpoint, by_status)| {
            let statuses: serde_json::Map<String, serde_json::Value> = by_status
                .into_iter()
                .map(|(status, (count, avg))| (status, json!({"count": count, "avg_duration_micros": avg * 1e6})))
                .collect();
            (endpoint, serde_json::Value::Object(statuses))
        })
        .collect();
    let grpc: serde_json::Map<String, serde_json::Value> = node
        .metrics
        .grpc_summary()
        .into_iter()
        .map(|(endpoint, (count, failed, avg))| {
            let stats = json!({"count": count, "fail_count": failed, "avg_duration_micros": avg * 1e6});
            (endpoint, stats)
        })
        .collect();
    ok(
        t,
        json!({
            "id": node.instance_id,
            "app": {
                "name": "qdrant",
                "version": QDRANT_API_VERSION,
                "features": {"debug": cfg!(debug_assertions), "service_debug_feature": false,
                             "recovery_mode": false, "gpu": false, "rocksdb": true, "staging": false},
                "startup": node.started.elapsed().as_secs_f64(),
            },
            "collections": {"number_of_collections": collections.len(), "collections": collections},
            "cluster": {"enabled": node.settings.cluster.enabled},
            "requests": {"rest": {"responses": responses}, "grpc": {"responses": grpc}},
            "memory": {"resident_bytes": resident_bytes()},
        }),
    )
}

pub async fn cluster(state: State<Arc<Node>>) -> Response {
    super::cluster::status(state).await
}
