//! Cluster mode's collection layer. Collection operations become consensus proposals
//! (`create_collection`, ...); the control loop (`cluster_reconcile::spawn`) then makes the local
//! collections match every applied cluster state. Operations return once this peer has caught
//! up with their log entry (bounded by the request's timeout).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Node, DEFAULT_META_TIMEOUT};
use crate::cluster::{AppliedState, ClusterOp, CollectionState, Consensus, PeerId, ReplicaState, ShardId};
use crate::collection::Collection;
use crate::error::{Error, Result};
use crate::model::cluster::{
    ClusterOperation, CollectionClusterInfo, LocalShardInfo, RemoteShardInfo, ShardTransferInfo, ShardTransferRequest,
    TransferMethod,
};
use crate::model::collection::{CollectionConfig, CreateCollection, UpdateCollection};
use crate::model::operations::{UpdateResult, UpdateStatus};
use crate::storage::payload_index::PayloadFieldSchema;

fn not_found(name: &str) -> Error {
    Error::not_found(format!("Collection `{name}` doesn't exist!"))
}

/// Waits until the local collections reflect the log up to `index`.
async fn wait_reconciled(node: &Node, index: u64, deadline: Instant) -> Result<()> {
    let mut rx = node.reconciled.subscribe();
    let outcome = tokio::time::timeout_at(deadline, rx.wait_for(|done| *done >= index))
        .await
        .map(|r| r.map(|_| ()));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Error::Unavailable("the node is shutting down".into())),
        Err(_) => Err(Error::Timeout(format!(
            "the operation was applied (log index {index}) but this peer's collections did not catch up in time"
        ))),
    }
}

/// Proposes `op` and waits until this peer's collections reflect it; returns the log index.
pub(crate) async fn propose_and_sync(
    node: &Node,
    consensus: &Consensus,
    op: ClusterOp,
    timeout: Duration,
) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    let index = consensus.propose(op, timeout).await?;
    wait_reconciled(node, index, deadline).await?;
    Ok(index)
}

pub async fn create_collection(
    node: &Node,
    consensus: &Consensus,
    name: &str,
    request: CreateCollection,
    timeout: Option<Duration>,
) -> Result<bool> {
    // Qdrant's default: one shard per peer.
    let peers = consensus.state().peers.len().max(1) as u32;
    let config = request.into_config(&node.settings, peers)?;
    create_with_config(node, consensus, name, config, timeout).await
}

/// Creates a collection of a complete config (a request's, or a recovered snapshot's) and waits
/// for its replicas to turn Active.
pub async fn create_with_config(
    node: &Node,
    consensus: &Consensus,
    name: &str,
    config: CollectionConfig,
    timeout: Option<Duration>,
) -> Result<bool> {
    let timeout = timeout.unwrap_or(DEFAULT_META_TIMEOUT);
    let deadline = Instant::now() + timeout;
    // Whether the name is taken is decided where the creation is applied (in log order), not
    // by this peer's view, which may be behind: the answer is linearizable.
    let state = consensus.state();
    let placement = state.placement_for(config.params.shard_number, config.params.replication_factor);
    let op = ClusterOp::CreateCollection {
        name: name.to_string(),
        config,
        placement,
        // Each peer reports its replica Active once it exists (see `activate`).
        init_state: Some(ReplicaState::Initializing),
    };
    propose_and_sync(node, consensus, op, timeout).await?;
    let mut rx = consensus.subscribe();
    let activated = tokio::time::timeout_at(
        deadline,
        rx.wait_for(|s| match s.collections.get(name) {
            Some(c) => all_active(c),
            None => true,
        }),
    )
    .await;
    match activated {
        Ok(Ok(s)) if s.collections.contains_key(name) => Ok(true),
        Ok(Ok(_)) => Err(Error::BadRequest(format!(
            "Collection `{name}` was deleted while it was being created"
        ))),
        Ok(Err(_)) => Err(Error::Unavailable("consensus is shutting down".into())),
        Err(_) => {
            // As Qdrant: the collection exists and serves what is active; replicas on peers that
            // are unreachable now activate when they come back. Not an error for the client.
            let pending = consensus
                .state()
                .collections
                .get(name)
                .map(inactive_replicas)
                .unwrap_or_default();
            tracing::warn!(collection = %name, still_initializing = %pending,
                "collection created, but not every replica became active in time");
            Ok(true)
        }
    }
}

fn all_active(c: &CollectionState) -> bool {
    c.shards
        .values()
        .all(|replicas| replicas.values().all(|s| *s == ReplicaState::Active))
}

fn inactive_replicas(c: &CollectionState) -> String {
    let mut out = Vec::new();
    for (shard, replicas) in &c.shards {
        for (peer, state) in replicas {
            if *state != ReplicaState::Active {
                out.push(format!("shard {shard} on peer {peer}"));
            }
        }
    }
    out.join(", ")
}

/// False when the collection did not exist (as Qdrant answers).
pub async fn delete_collection(
    node: &Node,
    consensus: &Consensus,
    name: &str,
    timeout: Option<Duration>,
) -> Result<bool> {
    // Decided where the deletion is applied, in log order (see `create_collection`).
    let op = ClusterOp::DeleteCollection { name: name.to_string() };
    match propose_and_sync(node, consensus, op, timeout.unwrap_or(DEFAULT_META_TIMEOUT)).await {
        Ok(_) => Ok(true),
        // Deleted by a concurrent request meanwhile.
        Err(Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn update_collection(
    node: &Node,
    consensus: &Consensus,
    name: &str,
    update: UpdateCollection,
    timeout: Option<Duration>,
) -> Result<bool> {
    let state = consensus.state();
    let current = state.collections.get(name).ok_or_else(|| not_found(name))?;
    let config = update.apply_to(&current.config)?;
    let op = ClusterOp::UpdateCollection {
        name: name.to_string(),
        config,
    };
    propose_and_sync(node, consensus, op, timeout.unwrap_or(DEFAULT_META_TIMEOUT)).await?;
    Ok(true)
}

/// A configuration change computed from the collection's configuration as consensus has it
/// (`None`: nothing to change), proposed as a whole new configuration.
pub async fn change_config(
    node: &Node,
    consensus: &Consensus,
    name: &str,
    change: impl FnOnce(&CollectionConfig) -> Result<Option<CollectionConfig>>,
    timeout: Option<Duration>,
) -> Result<UpdateResult> {
    let state = consensus.state();
    let current = state.collections.get(name).ok_or_else(|| not_found(name))?;
    let Some(config) = change(&current.config)? else {
        return Ok(completed(0));
    };
    let op = ClusterOp::UpdateCollection {
        name: name.to_string(),
        config,
    };
    let index = propose_and_sync(node, consensus, op, timeout.unwrap_or(DEFAULT_META_TIMEOUT)).await?;
    Ok(completed(index))
}

pub async fn create_payload_index(
    node: &Node,
    consensus: &Consensus,
    name: &str,
    field: &str,
    schema: PayloadFieldSchema,
    timeout: Option<Duration>,
) -> Result<UpdateResult> {
    if !consensus.state().collections.contains_key(name) {
        return Err(not_found(name));
    }
    let op = ClusterOp::CreatePayloadIndex {
        collection: name.to_string(),
        field: field.to_string(),
        schema: serde_json::to_value(&schema).map_err(Error::internal)?,
    };
    let index = propose_and_sync(node, consensus, op, timeout.unwrap_or(DEFAULT_META_TIMEOUT)).await?;
    Ok(completed(index))
}

pub async fn delete_payload_index(
    node: &Node,
    consensus: &Consensus,
    name: &str,
    field: &str,
    timeout: Option<Duration>,
) -> Result<UpdateResult> {
    let state = consensus.state();
    let collection = state.collections.get(name).ok_or_else(|| not_found(name))?;
    if !collection.payload_indexes.contains_key(field) {
        return Err(Error::not_found(format!(
            "Payload index for field `{field}` does not exist"
        )));
    }
    let op = ClusterOp::DropPayloadIndex {
        collection: name.to_string(),
        field: field.to_string(),
    };
    let index = propose_and_sync(node, consensus, op, timeout.unwrap_or(DEFAULT_META_TIMEOUT)).await?;
    Ok(completed(index))
}

fn completed(index: u64) -> UpdateResult {
    UpdateResult {
        operation_id: Some(index),
        status: UpdateStatus::Completed,
    }
}

/// `POST /collections/{c}/cluster`: starts a transfer (`move_shard`, `replicate_shard`), aborts
/// one, or drops a replica. Transfers run in the background (the target peer pulls the shard, see
/// `Sync::recover`); `GET /collections/{c}/cluster` shows them in `shard_transfers`.
pub async fn update_collection_cluster(
    node: &Node,
    consensus: &Arc<Consensus>,
    name: &str,
    operation: ClusterOperation,
    timeout: Option<Duration>,
) -> Result<bool> {
    let timeout = timeout.unwrap_or(DEFAULT_META_TIMEOUT);
    let state = consensus.state();
    let collection = state.collections.get(name).ok_or_else(|| not_found(name))?;
    let replicas_of = |shard: ShardId| {
        collection
            .shards
            .get(&shard)
            .ok_or_else(|| Error::BadRequest(format!("Shard {shard} of collection `{name}` does not exist")))
    };
    let known_peer = |peer: PeerId| {
        if state.peers.contains_key(&peer) {
            Ok(())
        } else {
            Err(Error::BadRequest(format!("Peer {peer} does not exist")))
        }
    };
    match operation {
        ClusterOperation::MoveShard(t) | ClusterOperation::ReplicateShard(t) if t.from_peer_id == t.to_peer_id => {
            Err(Error::BadRequest(format!(
                "Cannot transfer shard {} from peer {} to itself",
                t.shard_id, t.to_peer_id
            )))
        }
        ClusterOperation::MoveShard(ref t) | ClusterOperation::ReplicateShard(ref t) => {
            known_peer(t.from_peer_id)?;
            known_peer(t.to_peer_id)?;
            let replicas = replicas_of(t.shard_id)?;
            if replicas.get(&t.from_peer_id) != Some(&ReplicaState::Active) {
                return Err(Error::BadRequest(format!(
                    "Shard {} has no active replica on peer {} to transfer from",
                    t.shard_id, t.from_peer_id
                )));
            }
            if replicas.contains_key(&t.to_peer_id) {
                return Err(Error::BadRequest(format!(
                    "Shard {} already has a replica on peer {}",
                    t.shard_id, t.to_peer_id
                )));
            }
            if let Some((peer, s)) = replicas.iter().find(|(_, s)| **s != ReplicaState::Active) {
                return Err(Error::BadRequest(format!(
                    "Shard {} has a transfer in progress (replica on peer {peer} is {s:?}); at most one per shard",
                    t.shard_id
                )));
            }
            let op = ClusterOp::AddReplica {
                collection: name.to_string(),
                shard: t.shard_id,
                peer: t.to_peer_id,
                method: t.method,
            };
            consensus.propose(op, timeout).await?;
            if matches!(operation, ClusterOperation::MoveShard(_)) {
                finish_move_later(consensus.clone(), name.to_string(), collection.generation, t.clone());
            }
            Ok(true)
        }
        ClusterOperation::AbortTransfer(t) => {
            let replicas = replicas_of(t.shard_id)?;
            match replicas.get(&t.to_peer_id) {
                Some(s) if *s != ReplicaState::Active => {}
                _ => {
                    return Err(Error::BadRequest(format!(
                        "There is no transfer of shard {} from peer {} to peer {}",
                        t.shard_id, t.from_peer_id, t.to_peer_id
                    )))
                }
            }
            let op = ClusterOp::RemoveReplica {
                collection: name.to_string(),
                shard: t.shard_id,
                peer: t.to_peer_id,
            };
            propose_and_sync(node, consensus, op, timeout).await?;
            Ok(true)
        }
        ClusterOperation::DropReplica(d) => {
            known_peer(d.peer_id)?;
            replicas_of(d.shard_id)?;
            let op = ClusterOp::RemoveReplica {
                collection: name.to_string(),
                shard: d.shard_id,
                peer: d.peer_id,
            };
            propose_and_sync(node, consensus, op, timeout).await?;
            Ok(true)
        }
    }
}

/// How long a move may take before its source replica is kept after all.
const MOVE_DEADLINE: Duration = Duration::from_secs(3600);

/// Completes a `move_shard`: once the target replica is Active, drops the source replica. If the
/// transfer is aborted (the target replica disappears) the source stays.
fn finish_move_later(consensus: Arc<Consensus>, name: String, generation: u64, t: ShardTransferRequest) {
    tokio::spawn(async move {
        let mut rx = consensus.subscribe();
        let target_state = |s: &AppliedState| {
            s.collections
                .get(&name)
                .filter(|c| c.generation == generation)
                .and_then(|c| c.shards.get(&t.shard_id))
                .and_then(|r| r.get(&t.to_peer_id).copied())
        };
        let active = {
            let done = tokio::time::timeout(
                MOVE_DEADLINE,
                rx.wait_for(|s| !matches!(target_state(s), Some(ReplicaState::Dead | ReplicaState::Partial))),
            )
            .await;
            matches!(done, Ok(Ok(ref s)) if target_state(s) == Some(ReplicaState::Active))
        };
        if !active {
            tracing::warn!(collection = %name, shard = t.shard_id, "move did not complete; keeping the source replica");
            return;
        }
        let op = ClusterOp::RemoveReplica {
            collection: name.clone(),
            shard: t.shard_id,
            peer: t.from_peer_id,
        };
        match consensus.propose(op, DEFAULT_META_TIMEOUT).await {
            Ok(_) => {
                tracing::info!(collection = %name, shard = t.shard_id, from = t.from_peer_id, to = t.to_peer_id, "shard moved")
            }
            Err(e) => {
                tracing::warn!(collection = %name, shard = t.shard_id, error = %e, "could not drop the source replica of a move")
            }
        }
    });
}

/// The local shard `shard` of `collection`, waiting up to `timeout` for this peer to create it
/// (a peer that forwards a write right after a create may be a little ahead of this one).
pub async fn local_shard_when_ready(
    node: &Node,
    collection: &str,
    shard: ShardId,
    timeout: Duration,
) -> Result<Arc<crate::storage::shard::LocalShard>> {
    let deadline = Instant::now() + timeout;
    let mut rx = node.reconciled.subscribe();
    loop {
        if let Some(local) = node.collection(collection).ok().and_then(|c| c.local_shard(shard)) {
            return Ok(local);
        }
        if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
            let me = node.consensus().map(|c| c.peer_id()).unwrap_or(0);
            return Err(Error::not_found(format!(
                "shard {shard} of collection `{collection}` is not on peer {me}"
            )));
        }
    }
}

/// `GET /collections/{c}/cluster` from the cluster state and the local shards.
pub fn collection_cluster_info(node: &Node, consensus: &Consensus, name: &str) -> Result<CollectionClusterInfo> {
    let state = consensus.state();
    let c = state.collections.get(name).ok_or_else(|| not_found(name))?;
    let me = consensus.peer_id();
    let local_collection = node.collection(name).ok();
    let local_counts: BTreeMap<ShardId, usize> = local_collection
        .as_ref()
        .map(|c| c.shard_counts().into_iter().collect())
        .unwrap_or_default();
    let mut local_shards = Vec::new();
    let mut remote_shards = Vec::new();
    for (shard, replicas) in &c.shards {
        for (peer, replica_state) in replicas {
            if *peer == me {
                local_shards.push(LocalShardInfo {
                    shard_id: *shard,
                    points_count: local_counts.get(shard).copied().unwrap_or(0),
                    state: *replica_state,
                });
            } else {
                remote_shards.push(RemoteShardInfo {
                    shard_id: *shard,
                    peer_id: *peer,
                    state: *replica_state,
                });
            }
        }
    }
    Ok(CollectionClusterInfo {
        peer_id: me,
        shard_count: c.shards.len(),
        local_shards,
        remote_shards,
        shard_transfers: transfers(c, me, local_collection.as_deref()),
    })
}

/// Running transfers: every replica being filled (Partial), with the replica it copies from
/// (the Active one with the lowest peer id, as the target picks it) and, on the target peer,
/// its progress.
fn transfers(c: &CollectionState, me: PeerId, local: Option<&Collection>) -> Vec<ShardTransferInfo> {
    let mut out = Vec::new();
    for (shard, replicas) in &c.shards {
        for (peer, state) in replicas {
            if *state != ReplicaState::Partial {
                continue;
            }
            let from = replicas
                .iter()
                .find(|(p, s)| *p != peer && **s == ReplicaState::Active)
                .map(|(p, _)| *p);
            out.push(ShardTransferInfo {
                shard_id: *shard,
                from,
                to: *peer,
                sync: false,
                method: c
                    .transfer_method(*shard, *peer)
                    .or_else(|| local.filter(|_| *peer == me).and_then(|l| l.running_transfer(*shard)))
                    .unwrap_or(TransferMethod::StreamRecords),
                comment: local.filter(|_| *peer == me).and_then(|c| c.transfer_comment(*shard)),
            });
        }
    }
    out
}

/// Bound of bringing this peer's view up to date before a consistent read.
pub const SYNC_VIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until this peer's collections reflect a read index taken now (cluster mode): what it
/// then answers about collections is at least as new as anything acknowledged before.
pub async fn sync_view(node: &Node, consensus: &Consensus) -> Result<()> {
    let deadline = Instant::now() + SYNC_VIEW_TIMEOUT;
    let index = consensus.sync_view(SYNC_VIEW_TIMEOUT).await.map_err(|e| match e {
        // Not the client's wait running out: the cluster cannot answer consistently now.
        Error::Timeout(m) | Error::Unavailable(m) => {
            Error::Unavailable(format!("cannot confirm this peer's view of the collections: {m}"))
        }
        other => other,
    })?;
    wait_reconciled(node, index, deadline).await
}
