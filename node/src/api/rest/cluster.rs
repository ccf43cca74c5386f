//! Cluster endpoints: `GET /cluster`, `DELETE /cluster/peer/{peer_id}`, our one-call
//! `POST /cluster/rebalance` and `POST /cluster/peer/{peer_id}/drain`, and the cluster part of
//! `/readyz`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::Params;
use super::response::ok;
use crate::cluster::Consensus;
use crate::error::Error;
use crate::node::Node;

/// Default bound of a peer removal (Qdrant's default consensus wait).
const DEFAULT_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, Default, Deserialize)]
pub struct RemovePeerParams {
    pub force: Option<bool>,
    pub timeout: Option<u64>,
}

/// `GET /cluster`: `{"status": "disabled"}` standalone, the consensus status in cluster mode.
pub async fn status(State(node): State<Arc<Node>>) -> Response {
    let t = Instant::now();
    match node.consensus() {
        Some(c) => ok(t, c.status()),
        None => ok(t, json!({"status": "disabled"})),
    }
}

/// `DELETE /cluster/peer/{peer_id}?force=&timeout=`.
pub async fn remove_peer(
    State(node): State<Arc<Node>>,
    Path(peer_id): Path<String>,
    Params(params): Params<RemovePeerParams>,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let consensus = cluster_mode(&node)?;
    let peer_id = parse_peer_id(&peer_id)?;
    let timeout = Duration::from_secs(params.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS).max(1));
    consensus
        .remove_peer(peer_id, params.force.unwrap_or(false), timeout)
        .await?;
    Ok(ok(t, true))
}

/// Default bound of a re-balance or drain (they wait for every transfer they start).
const DEFAULT_PLACEMENT_TIMEOUT_SECS: u64 = 600;

#[derive(Debug, Default, Deserialize)]
pub struct PlacementParams {
    pub timeout: Option<u64>,
}

fn placement_timeout(params: &PlacementParams) -> Duration {
    Duration::from_secs(params.timeout.unwrap_or(DEFAULT_PLACEMENT_TIMEOUT_SECS).max(1))
}

fn cluster_mode(node: &Node) -> Result<&Arc<Consensus>, ApiError> {
    node.consensus()
        .ok_or_else(|| ApiError::Node(Error::NotSupported("Distributed mode disabled".into())))
}

/// The `{peer_id}` of a path.
fn parse_peer_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::Format(format!("Wrong input: invalid peer id `{raw}`")))
}

/// `POST /cluster/rebalance?timeout=`: evens out replicas over the peers; answers the moves made.
pub async fn rebalance(
    State(node): State<Arc<Node>>,
    Params(params): Params<PlacementParams>,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let consensus = cluster_mode(&node)?;
    let moves = crate::node::rebalance::rebalance(&node, consensus, placement_timeout(&params)).await?;
    Ok(ok(t, json!({"moves": moves})))
}

/// `POST /cluster/peer/{peer_id}/drain?timeout=`: takes every replica off a peer.
pub async fn drain_peer(
    State(node): State<Arc<Node>>,
    Path(peer_id): Path<String>,
    Params(params): Params<PlacementParams>,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let consensus = cluster_mode(&node)?;
    let peer_id = parse_peer_id(&peer_id)?;
    let moves = crate::node::rebalance::drain(&node, consensus, peer_id, placement_timeout(&params)).await?;
    Ok(ok(t, json!({"moves": moves})))
}

/// Whether this node may serve: standalone always; in cluster mode once caught up with the leader.
pub async fn is_ready(node: &Node) -> bool {
    match node.consensus() {
        None => true,
        Some(c) => c.is_ready().await,
    }
}
