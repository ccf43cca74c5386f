//! Service endpoints: `/`, health probes, `/metrics`, `/telemetry`, `/issues`, `/cluster`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::Params;
use super::response::ok;
use crate::error::Error;
use crate::node::Node;
use crate::telemetry::{self, Detail, Snapshot};

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

/// `?anonymize=&per_collection=&timeout=` of `/metrics`.
#[derive(Debug, Default, Deserialize)]
pub struct MetricsParams {
    pub anonymize: Option<bool>,
    pub per_collection: Option<bool>,
    pub timeout: Option<u64>,
}

/// `?details_level=&anonymize=&per_collection=&timeout=` of `/telemetry`.
#[derive(Debug, Default, Deserialize)]
pub struct TelemetryParams {
    pub anonymize: Option<bool>,
    pub details_level: Option<usize>,
    pub per_collection: Option<bool>,
    pub timeout: Option<u64>,
}

/// Qdrant's bound on gathering telemetry when the request names none.
const DEFAULT_TELEMETRY_TIMEOUT: Duration = Duration::from_secs(60);

async fn snapshot(
    node: &Arc<Node>,
    detail: Detail,
    with_process: bool,
    timeout: Option<u64>,
) -> Result<Snapshot, ApiError> {
    let timeout = timeout.map_or(DEFAULT_TELEMETRY_TIMEOUT, |s| Duration::from_secs(s.max(1)));
    tokio::time::timeout(timeout, telemetry::collect(node, detail, with_process))
        .await
        .map_err(|_| {
            ApiError::Node(Error::Timeout(format!(
                "Operation 'collections telemetry' timed out after {} seconds",
                timeout.as_secs()
            )))
        })
}

/// Prometheus metrics under Qdrant's names (`telemetry::exposition`).
pub async fn metrics(State(node): State<Arc<Node>>, Params(p): Params<MetricsParams>) -> Result<Response, ApiError> {
    let detail = Detail {
        level: telemetry::MAX_LEVEL,
        per_collection: p.per_collection.unwrap_or(false),
        anonymize: p.anonymize.unwrap_or(false),
    };
    let snapshot = snapshot(&node, detail, true, p.timeout).await?;
    let text = telemetry::exposition::render(&snapshot, detail, &node.metrics, node.started.elapsed().as_secs_f64());
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// Qdrant's telemetry JSON at `details_level` 0..=4 (`telemetry::json`).
pub async fn telemetry(
    State(node): State<Arc<Node>>,
    Params(p): Params<TelemetryParams>,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let detail = Detail {
        level: p.details_level.unwrap_or(0).min(telemetry::MAX_LEVEL),
        per_collection: p.per_collection.unwrap_or(false),
        anonymize: p.anonymize.unwrap_or(false),
    };
    let snapshot = snapshot(&node, detail, false, p.timeout).await?;
    Ok(ok(t, telemetry::json::render(&snapshot, detail)))
}

/// `GET /issues`: `{"issues": [...]}`, the active issues.
pub async fn issues(State(node): State<Arc<Node>>) -> Response {
    let t = Instant::now();
    ok(t, json!({"issues": node.issues.all()}))
}

/// `DELETE /issues`: clears them.
pub async fn clear_issues(State(node): State<Arc<Node>>) -> Response {
    let t = Instant::now();
    node.issues.clear();
    ok(t, true)
}

pub async fn cluster(state: State<Arc<Node>>) -> Response {
    super::cluster::status(state).await
}
