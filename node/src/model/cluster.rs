//! `POST /collections/{c}/cluster` request bodies (Qdrant's shapes).

use serde::Deserialize;

/// One change of a collection's shard placement.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClusterOperation {
    /// Copy a shard to another peer, then drop it on the source.
    MoveShard(ShardTransferRequest),
    /// Copy a shard to another peer, keeping the source.
    ReplicateShard(ShardTransferRequest),
    /// Cancel a running copy: the target replica goes away, the source stays.
    AbortTransfer(ShardTransferRequest),
    /// Remove one replica (never the last Active one).
    DropReplica(DropReplicaRequest),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShardTransferRequest {
    pub shard_id: u32,
    pub from_peer_id: u64,
    pub to_peer_id: u64,
    /// Accepted for compatibility; every transfer streams records.
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DropReplicaRequest {
    pub shard_id: u32,
    pub peer_id: u64,
}
