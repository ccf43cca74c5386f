//! `UpdateCollectionClusterSetupRequest` into the placement change REST's
//! `POST /collections/{c}/cluster` takes.

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::update_collection_cluster_setup_request::Operation;
use tonic::Status;

use crate::api::grpc::error::invalid;
use crate::model::cluster::{ClusterOperation, DropReplicaRequest, ShardTransferRequest, TransferMethod};

/// The operation, `InvalidArgument` for a malformed one and `Unimplemented` for the kinds this
/// node has no equivalent of (shard keys, resharding transfers, restarts, point replication).
pub fn cluster_operation(operation: Option<Operation>) -> Result<ClusterOperation, Status> {
    let transfer = |shard_id: u32, to_shard_id: Option<u32>, from: u64, to: u64, method: Option<i32>| {
        if to_shard_id.is_some() {
            return Err(Status::unimplemented(
                "transfers between different shards (to_shard_id, resharding) are not supported by this node yet",
            ));
        }
        let method = match method.map(grpc::ShardTransferMethod::try_from) {
            None => None,
            Some(Ok(grpc::ShardTransferMethod::StreamRecords)) => Some(TransferMethod::StreamRecords),
            Some(Ok(grpc::ShardTransferMethod::Snapshot)) => Some(TransferMethod::Snapshot),
            Some(Ok(grpc::ShardTransferMethod::WalDelta)) => Some(TransferMethod::WalDelta),
            Some(Ok(grpc::ShardTransferMethod::ReshardingStreamRecords)) => {
                return Err(Status::unimplemented(
                    "resharding transfers are not supported by this node yet",
                ))
            }
            Some(Err(_)) => return Err(invalid(format!("method: unknown enum value {}", method.unwrap_or(0)))),
        };
        Ok(ShardTransferRequest {
            shard_id,
            from_peer_id: from,
            to_peer_id: to,
            method,
        })
    };
    match operation {
        None => Err(invalid(
            "an operation is required (move_shard, replicate_shard, abort_transfer, drop_replica)",
        )),
        Some(Operation::MoveShard(m)) => Ok(ClusterOperation::MoveShard(transfer(
            m.shard_id,
            m.to_shard_id,
            m.from_peer_id,
            m.to_peer_id,
            m.method,
        )?)),
        Some(Operation::ReplicateShard(r)) => Ok(ClusterOperation::ReplicateShard(transfer(
            r.shard_id,
            r.to_shard_id,
            r.from_peer_id,
            r.to_peer_id,
            r.method,
        )?)),
        Some(Operation::AbortTransfer(a)) => Ok(ClusterOperation::AbortTransfer(transfer(
            a.shard_id,
            a.to_shard_id,
            a.from_peer_id,
            a.to_peer_id,
            None,
        )?)),
        Some(Operation::DropReplica(d)) => Ok(ClusterOperation::DropReplica(DropReplicaRequest {
            shard_id: d.shard_id,
            peer_id: d.peer_id,
        })),
        Some(Operation::CreateShardKey(_)) | Some(Operation::DeleteShardKey(_)) => {
            Err(Status::unimplemented("shard keys are not supported by this node yet"))
        }
        Some(Operation::RestartTransfer(_)) => Err(Status::unimplemented(
            "restart_transfer is not supported by this node yet",
        )),
        Some(Operation::ReplicatePoints(_)) => Err(Status::unimplemented(
            "replicate_points is not supported by this node yet",
        )),
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn maps_transfers_and_refuses_the_rest() {
        let op = cluster_operation(Some(Operation::MoveShard(grpc::MoveShard {
            shard_id: 1,
            to_shard_id: None,
            from_peer_id: 10,
            to_peer_id: 20,
            method: Some(grpc::ShardTransferMethod::WalDelta as i32),
        })))
        .unwrap();
        let ClusterOperation::MoveShard(t) = op else {
            panic!("not a move: {op:?}")
        };
        assert_eq!((t.shard_id, t.from_peer_id, t.to_peer_id), (1, 10, 20));
        assert_eq!(t.method, Some(TransferMethod::WalDelta));
        let drop = cluster_operation(Some(Operation::DropReplica(grpc::Replica {
            shard_id: 2,
            peer_id: 5,
        })))
        .unwrap();
        assert!(matches!(
            drop,
            ClusterOperation::DropReplica(DropReplicaRequest {
                shard_id: 2,
                peer_id: 5
            })
        ));
        let shard_key = cluster_operation(Some(Operation::DeleteShardKey(grpc::DeleteShardKey::default())));
        assert_eq!(shard_key.unwrap_err().code(), Code::Unimplemented);
        assert_eq!(cluster_operation(None).unwrap_err().code(), Code::InvalidArgument);
    }
}
