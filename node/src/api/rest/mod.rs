//! Qdrant's REST API over axum. Handlers are thin: parse, call `Node`/`Collection`, render.

pub mod access;
pub mod cluster;
pub mod collections;
pub mod error;
pub mod extract;
pub mod points;
pub mod response;
pub mod serve;
pub mod service;
pub mod snapshots;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;

use crate::node::Node;

/// Query parameters of writes.
#[derive(Debug, Default, Deserialize)]
pub struct WriteParams {
    pub wait: Option<bool>,
    pub ordering: Option<String>,
    pub timeout: Option<u64>,
}

impl WriteParams {
    /// `?timeout=` (seconds), the bound of a collection operation's wait for consensus.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        crate::api::consensus_timeout(self.timeout)
    }
}

/// Query parameters of reads.
#[derive(Debug, Default, Deserialize)]
pub struct ReadParams {
    pub consistency: Option<String>,
    pub timeout: Option<u64>,
}

impl ReadParams {
    /// `?consistency=`: a number, `majority`, `quorum` or `all` (default: one replica).
    pub fn consistency(&self) -> Result<crate::model::query::ReadConsistency, crate::error::Error> {
        crate::model::query::ReadConsistency::parse(self.consistency.as_deref())
    }
}

pub fn router(node: Arc<Node>) -> Router {
    let body_limit = node.settings.service.max_request_size_mb.saturating_mul(1024 * 1024);
    // Path parameters named as Qdrant's routes name them: the route pattern is the `endpoint`
    // of the request metrics.
    let c = "/collections/{collection_name}";
    let api = Router::new()
        .route("/", get(service::root))
        .route("/healthz", get(service::healthz))
        .route("/livez", get(service::healthz))
        .route("/readyz", get(service::readyz))
        .route("/metrics", get(service::metrics))
        .route("/telemetry", get(service::telemetry))
        .route("/issues", get(service::issues).delete(service::clear_issues))
        .route("/cluster", get(service::cluster))
        .route("/cluster/peer/{peer_id}", axum::routing::delete(cluster::remove_peer))
        .route("/cluster/peer/{peer_id}/drain", post(cluster::drain_peer))
        .route("/cluster/rebalance", post(cluster::rebalance))
        .route("/collections", get(collections::list))
        .route("/snapshots", get(snapshots::list_full).post(snapshots::create_full))
        .route(
            "/snapshots/{snapshot_name}",
            get(snapshots::download_full).delete(snapshots::delete_full),
        )
        .route(
            &format!("{c}/snapshots"),
            get(snapshots::list_collection).post(snapshots::create_collection),
        )
        .route(&format!("{c}/snapshots/recover"), put(snapshots::recover_collection))
        .route(
            &format!("{c}/snapshots/upload"),
            post(snapshots::upload_collection).layer(DefaultBodyLimit::disable()),
        )
        .route(
            &format!("{c}/snapshots/{{snapshot_name}}"),
            get(snapshots::download_collection).delete(snapshots::delete_collection),
        )
        .route(
            &format!("{c}/shards/{{shard}}/snapshots"),
            get(snapshots::list_shard).post(snapshots::create_shard),
        )
        .route(
            &format!("{c}/shards/{{shard}}/snapshots/recover"),
            put(snapshots::recover_shard),
        )
        .route(
            &format!("{c}/shards/{{shard}}/snapshots/upload"),
            post(snapshots::upload_shard).layer(DefaultBodyLimit::disable()),
        )
        .route(
            &format!("{c}/shards/{{shard}}/snapshots/{{snapshot_name}}"),
            get(snapshots::download_shard).delete(snapshots::delete_shard),
        )
        .route("/aliases", get(collections::list_aliases))
        .route(
            c,
            get(collections::get)
                .put(collections::create)
                .patch(collections::update)
                .delete(collections::delete),
        )
        .route(&format!("{c}/exists"), get(collections::exists))
        .route(&format!("{c}/aliases"), get(collections::collection_aliases))
        .route("/collections/aliases", post(collections::update_aliases))
        .route(
            &format!("{c}/cluster"),
            get(collections::cluster_info).post(collections::update_cluster),
        )
        .route(
            &format!("{c}/vectors/{{vector_name}}"),
            put(collections::create_vector_name).delete(collections::delete_vector_name),
        )
        .route(&format!("{c}/index"), put(collections::create_index))
        .route(
            &format!("{c}/index/{{field_name}}"),
            axum::routing::delete(collections::delete_index),
        )
        .route(&format!("{c}/points"), put(points::upsert).post(points::get_points))
        .route(&format!("{c}/points/{{id}}"), get(points::get_point))
        .route(&format!("{c}/points/delete"), post(points::delete))
        .route(
            &format!("{c}/points/payload"),
            post(points::set_payload).put(points::overwrite_payload),
        )
        .route(&format!("{c}/points/payload/delete"), post(points::delete_payload))
        .route(&format!("{c}/points/payload/clear"), post(points::clear_payload))
        .route(&format!("{c}/points/vectors"), put(points::update_vectors))
        .route(&format!("{c}/points/vectors/delete"), post(points::delete_vectors))
        .route(&format!("{c}/points/batch"), post(points::batch))
        .route(&format!("{c}/points/scroll"), post(points::scroll))
        .route(&format!("{c}/points/count"), post(points::count))
        .route(&format!("{c}/points/search"), post(points::search))
        .route(&format!("{c}/points/search/batch"), post(points::search_batch))
        .route(&format!("{c}/points/query"), post(points::query))
        .route(&format!("{c}/points/query/batch"), post(points::query_batch))
        .route(&format!("{c}/points/recommend"), post(points::recommend))
        .route(&format!("{c}/points/recommend/batch"), post(points::recommend_batch))
        .route(&format!("{c}/points/discover"), post(points::discover))
        .route(&format!("{c}/facet"), post(points::facet))
        .route(&format!("{c}/points/search/matrix/pairs"), post(points::matrix_pairs))
        .route(
            &format!("{c}/points/search/matrix/offsets"),
            post(points::matrix_offsets),
        )
        .route(&format!("{c}/points/query/groups"), post(points::query_groups))
        .route(&format!("{c}/points/search/groups"), post(points::search_groups))
        .route(&format!("{c}/points/recommend/groups"), post(points::recommend_groups))
        .route(&format!("{c}/points/discover/batch"), post(points::discover_batch))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(node.clone(), access::authorize))
        .layer(middleware::from_fn_with_state(node.clone(), observe));
    let api = if node.settings.service.enable_cors {
        api.layer(tower_http::cors::CorsLayer::permissive())
    } else {
        api
    };
    api.with_state(node)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    let body = error::error_body(&format!("Not found: no endpoint {method} {}", uri.path()));
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Records every response in the REST metrics under Qdrant's key, `"METHOD /route/pattern"`
/// (`"METHOD unknown"` for no route), and with the `{collection_name}` of the path.
async fn observe(
    State(node): State<Arc<Node>>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let pattern = req.extensions().get::<MatchedPath>().map_or("unknown", |p| p.as_str());
    let endpoint = format!("{} {pattern}", req.method());
    let collection = collection_param(params);
    let response = next.run(req).await;
    node.metrics.observe_rest(
        &endpoint,
        response.status().as_u16(),
        collection.as_deref(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The `{collection_name}` of the request's route, decoded (none for other routes).
fn collection_param(params: Result<RawPathParams, RawPathParamsRejection>) -> Option<String> {
    params.ok().and_then(|params| {
        params
            .iter()
            .find(|(name, _)| *name == "collection_name")
            .map(|(_, value)| percent_decode(value))
    })
}

/// A path segment with its `%XX` escapes decoded (as routing decodes it for handlers).
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
