//! Collection cluster setup in Qdrant's shapes: the `POST /collections/{c}/cluster` request bodies
//! and the placement report of `GET /collections/{c}/cluster` (also gRPC `CollectionClusterInfo`).

use serde::{Deserialize, Serialize};

use crate::cluster::{PeerId, ReplicaState, ShardId};

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
    /// How the target copies the shard; unset: `storage.shard_transfer_method`, else chosen
    /// by the target (see [`TransferMethod`]).
    #[serde(default)]
    pub method: Option<TransferMethod>,
}

/// How a transfer fills a replica (Qdrant's `ShardTransferMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferMethod {
    /// Pages through the source's points; the target indexes them again.
    StreamRecords,
    /// Ships a snapshot of the source's shard (points, payload indexes, HNSW graph: nothing to
    /// re-index), then catches up on the writes since by comparing digests.
    Snapshot,
    /// Keeps what the target replica still holds and only catches up on what differs (Qdrant
    /// replays its WAL; this node compares digests, which needs no log). A replica with no data
    /// left is filled as by `stream_records`.
    WalDelta,
}

impl TransferMethod {
    pub fn name(self) -> &'static str {
        match self {
            TransferMethod::StreamRecords => "stream_records",
            TransferMethod::Snapshot => "snapshot",
            TransferMethod::WalDelta => "wal_delta",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DropReplicaRequest {
    pub shard_id: u32,
    pub peer_id: u64,
}

/// Where a collection's replicas are, as seen from this peer (standalone: peer 0, all local).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectionClusterInfo {
    pub peer_id: PeerId,
    pub shard_count: usize,
    pub local_shards: Vec<LocalShardInfo>,
    pub remote_shards: Vec<RemoteShardInfo>,
    pub shard_transfers: Vec<ShardTransferInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalShardInfo {
    pub shard_id: ShardId,
    pub points_count: usize,
    pub state: ReplicaState,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteShardInfo {
    pub shard_id: ShardId,
    pub peer_id: PeerId,
    pub state: ReplicaState,
}

/// A replica being filled. `from` is the replica it copies from (`null` when no Active replica
/// is left to copy from).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardTransferInfo {
    pub shard_id: ShardId,
    pub from: Option<PeerId>,
    pub to: PeerId,
    /// Always false: every transfer here fills a new replica (Qdrant's `sync: false`).
    pub sync: bool,
    pub method: TransferMethod,
    /// Progress, known on the target peer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_info_serializes_in_qdrant_shape() {
        let info = CollectionClusterInfo {
            peer_id: 7,
            shard_count: 2,
            local_shards: vec![LocalShardInfo {
                shard_id: 0,
                points_count: 3,
                state: ReplicaState::Active,
            }],
            remote_shards: vec![RemoteShardInfo {
                shard_id: 1,
                peer_id: 8,
                state: ReplicaState::Partial,
            }],
            shard_transfers: vec![ShardTransferInfo {
                shard_id: 1,
                from: None,
                to: 8,
                sync: false,
                method: TransferMethod::StreamRecords,
                comment: None,
            }],
        };
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            serde_json::json!({
                "peer_id": 7,
                "shard_count": 2,
                "local_shards": [{"shard_id": 0, "points_count": 3, "state": "Active"}],
                "remote_shards": [{"shard_id": 1, "peer_id": 8, "state": "Partial"}],
                "shard_transfers": [{"shard_id": 1, "from": null, "to": 8, "sync": false, "method": "stream_records"}],
            })
        );
    }
}
