//! One-call placement changes on top of the standard shard operations: re-balancing the
//! replicas over the peers (`POST /cluster/rebalance`) and draining a peer before its removal
//! (`POST /cluster/peer/{id}/drain`). Both plan from the cluster state, then run `move_shard`
//! (or `drop_replica` where no other peer can take a replica) one transfer at a time, waiting for
//! each to finish, so a peer never runs more than one of them at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::cluster_sync::update_collection_cluster;
use super::Node;
use crate::cluster::{ClusterState, Consensus, PeerId, ReplicaState, ShardId};
use crate::error::{Error, Result};
use crate::model::cluster::{ClusterOperation, DropReplicaRequest, ShardTransferRequest};

/// One step that was carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlacementStep {
    pub collection: String,
    pub shard_id: ShardId,
    pub from_peer_id: PeerId,
    /// `None` when the replica was dropped (every other peer already holds the shard).
    pub to_peer_id: Option<PeerId>,
}

fn load(state: &ClusterState) -> BTreeMap<PeerId, usize> {
    state.peers.keys().map(|p| (*p, state.peer_replica_count(*p))).collect()
}

/// The next move that narrows the gap between the most and the least loaded peer, if the gap is
/// larger than one replica.
fn next_rebalance_move(state: &ClusterState) -> Option<PlacementStep> {
    let load = load(state);
    let (&busiest, &most) = load.iter().max_by_key(|(p, n)| (**n, std::cmp::Reverse(**p)))?;
    let (&idlest, &least) = load.iter().min_by_key(|(p, n)| (**n, **p))?;
    if most <= least + 1 {
        return None;
    }
    for (name, c) in &state.collections {
        for (shard, replicas) in &c.shards {
            let movable = replicas.get(&busiest) == Some(&ReplicaState::Active)
                && !replicas.contains_key(&idlest)
                && replicas.values().all(|s| *s == ReplicaState::Active);
            if movable {
                return Some(PlacementStep {
                    collection: name.clone(),
                    shard_id: *shard,
                    from_peer_id: busiest,
                    to_peer_id: Some(idlest),
                });
            }
        }
    }
    None
}

/// The next step that takes a replica off `peer`: a move to the least loaded peer without that
/// shard, or a drop when every other peer holds it (never the last Active replica).
fn next_drain_step(state: &ClusterState, peer: PeerId) -> Result<Option<PlacementStep>> {
    let load = load(state);
    for (name, c) in &state.collections {
        for (shard, replicas) in &c.shards {
            if !replicas.contains_key(&peer) {
                continue;
            }
            let target = load
                .iter()
                .filter(|(p, _)| **p != peer && !replicas.contains_key(p))
                .min_by_key(|(p, n)| (**n, **p))
                .map(|(p, _)| *p);
            let others_active = replicas.iter().any(|(p, s)| *p != peer && *s == ReplicaState::Active);
            if target.is_none() && !others_active {
                return Err(Error::BadRequest(format!(
                    "Cannot drain peer {peer}: shard {shard} of collection `{name}` has no other replica and no peer to move it to"
                )));
            }
            return Ok(Some(PlacementStep {
                collection: name.clone(),
                shard_id: *shard,
                from_peer_id: peer,
                to_peer_id: target,
            }));
        }
    }
    Ok(None)
}

/// Runs one step and waits until the placement reflects it.
async fn run_step(node: &Node, consensus: &Arc<Consensus>, step: &PlacementStep, deadline: Instant) -> Result<()> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let operation = match step.to_peer_id {
        Some(to) => ClusterOperation::MoveShard(ShardTransferRequest {
            shard_id: step.shard_id,
            from_peer_id: step.from_peer_id,
            to_peer_id: to,
            method: None,
        }),
        None => ClusterOperation::DropReplica(DropReplicaRequest {
            shard_id: step.shard_id,
            peer_id: step.from_peer_id,
        }),
    };
    update_collection_cluster(
        node,
        consensus,
        &step.collection,
        operation,
        Some(remaining.max(Duration::from_secs(1))),
    )
    .await?;
    // A move is done once the source replica is gone (dropped after the target became Active).
    let mut rx = consensus.subscribe();
    let done = tokio::time::timeout_at(
        deadline,
        rx.wait_for(|s| {
            s.collections
                .get(&step.collection)
                .and_then(|c| c.shards.get(&step.shard_id))
                .is_none_or(|r| !r.contains_key(&step.from_peer_id))
        }),
    )
    .await
    .map(|r| r.is_ok());
    match done {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Unavailable("consensus is shutting down".into())),
        Err(_) => Err(Error::Timeout(format!(
            "shard {} of `{}` did not leave peer {} in time",
            step.shard_id, step.collection, step.from_peer_id
        ))),
    }
}

/// `POST /cluster/rebalance`: moves replicas from the most to the least loaded peers until their
/// replica counts differ by at most one. Returns the moves made.
pub async fn rebalance(node: &Node, consensus: &Arc<Consensus>, timeout: Duration) -> Result<Vec<PlacementStep>> {
    let deadline = Instant::now() + timeout;
    let mut steps = Vec::new();
    while let Some(step) = next_rebalance_move(&consensus.state()) {
        run_step(node, consensus, &step, deadline).await?;
        tracing::info!(?step, "re-balance step done");
        steps.push(step);
    }
    Ok(steps)
}

/// `POST /cluster/peer/{id}/drain`: takes every replica off `peer` (moves, or drops where every
/// other peer already holds the shard), so that it can be removed. Returns the steps made.
pub async fn drain(
    node: &Node,
    consensus: &Arc<Consensus>,
    peer: PeerId,
    timeout: Duration,
) -> Result<Vec<PlacementStep>> {
    if !consensus.state().peers.contains_key(&peer) {
        return Err(Error::not_found(format!("Peer {peer} does not exist")));
    }
    let deadline = Instant::now() + timeout;
    let mut steps = Vec::new();
    while let Some(step) = next_drain_step(&consensus.state(), peer)? {
        run_step(node, consensus, &step, deadline).await?;
        tracing::info!(?step, "drain step done");
        steps.push(step);
    }
    Ok(steps)
}
