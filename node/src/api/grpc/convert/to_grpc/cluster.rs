//! A collection's placement (`GET /collections/{c}/cluster`) as `CollectionClusterInfoResponse`.

use qdrant_client::qdrant as grpc;

use crate::cluster::ReplicaState;
use crate::model::cluster::CollectionClusterInfo;

pub fn replica_state(state: ReplicaState) -> grpc::ReplicaState {
    match state {
        ReplicaState::Active => grpc::ReplicaState::Active,
        ReplicaState::Dead => grpc::ReplicaState::Dead,
        ReplicaState::Partial => grpc::ReplicaState::Partial,
        ReplicaState::Initializing => grpc::ReplicaState::Initializing,
        ReplicaState::Listener => grpc::ReplicaState::Listener,
        ReplicaState::PartialSnapshot => grpc::ReplicaState::PartialSnapshot,
        ReplicaState::Recovery => grpc::ReplicaState::Recovery,
        ReplicaState::Resharding => grpc::ReplicaState::Resharding,
        ReplicaState::ReshardingScaleDown => grpc::ReplicaState::ReshardingScaleDown,
        ReplicaState::ActiveRead => grpc::ReplicaState::ActiveRead,
        ReplicaState::ManualRecovery => grpc::ReplicaState::ManualRecovery,
    }
}

/// The response without its `time`, which the service sets.
pub fn cluster_info(info: CollectionClusterInfo) -> grpc::CollectionClusterInfoResponse {
    grpc::CollectionClusterInfoResponse {
        peer_id: info.peer_id,
        shard_count: info.shard_count as u64,
        local_shards: info
            .local_shards
            .into_iter()
            .map(|s| grpc::LocalShardInfo {
                shard_id: s.shard_id,
                points_count: s.points_count as u64,
                state: replica_state(s.state) as i32,
                shard_key: None,
            })
            .collect(),
        remote_shards: info
            .remote_shards
            .into_iter()
            .map(|s| grpc::RemoteShardInfo {
                shard_id: s.shard_id,
                peer_id: s.peer_id,
                state: replica_state(s.state) as i32,
                shard_key: None,
            })
            .collect(),
        shard_transfers: info
            .shard_transfers
            .into_iter()
            .map(|t| grpc::ShardTransferInfo {
                shard_id: t.shard_id,
                to_shard_id: None,
                // `from` is required on the wire; 0 (no peer has it) when no source is left.
                from: t.from.unwrap_or(0),
                to: t.to,
                sync: t.sync,
            })
            .collect(),
        resharding_operations: Vec::new(),
        time: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cluster::{LocalShardInfo, RemoteShardInfo, ShardTransferInfo};

    #[test]
    fn maps_every_part() {
        let response = cluster_info(CollectionClusterInfo {
            peer_id: 1,
            shard_count: 2,
            local_shards: vec![LocalShardInfo {
                shard_id: 0,
                points_count: 4,
                state: ReplicaState::Active,
            }],
            remote_shards: vec![RemoteShardInfo {
                shard_id: 1,
                peer_id: 2,
                state: ReplicaState::Partial,
            }],
            shard_transfers: vec![ShardTransferInfo {
                shard_id: 1,
                from: Some(3),
                to: 2,
                sync: false,
                method: crate::model::cluster::TransferMethod::StreamRecords,
                comment: None,
            }],
        });
        assert_eq!((response.peer_id, response.shard_count), (1, 2));
        assert_eq!(response.local_shards[0].points_count, 4);
        assert_eq!(response.remote_shards[0].state, grpc::ReplicaState::Partial as i32);
        assert_eq!(
            (response.shard_transfers[0].from, response.shard_transfers[0].to),
            (3, 2)
        );
    }
}
