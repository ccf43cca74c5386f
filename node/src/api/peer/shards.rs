//! The `Shards` service: runs point operations that other peers route to the shard replicas
//! held here. Thin: decode, find the local shard, [`execute`], encode.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use crate::cluster::network::{decode, encode, MAX_MESSAGE_BYTES};
use crate::cluster::wire::to_peer_error;
use crate::collection::blocking;
use crate::collection::shard_request::{execute, ShardRequest, ShardResponse};
use crate::error::Result;
use crate::node::{cluster_sync, Node};
use crate::peer_proto::shards_server::{Shards, ShardsServer};
use crate::peer_proto::{ShardBatch, ShardBatchReply, ShardCall, ShardReply, ShardSnapshotCall, SnapshotChunk};

/// How long a request may wait for this peer to create a replica it was just assigned.
const REPLICA_WAIT: Duration = Duration::from_secs(5);
/// How long a transfer source may take to apply the cluster state the transfer started at.
const FENCE_WAIT: Duration = Duration::from_secs(10);
/// Bytes per message of a snapshot stream.
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// The chunks of a snapshot stream.
type SnapshotStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<SnapshotChunk, Status>> + Send>>;

pub struct ShardsApi {
    node: Arc<Node>,
}

impl ShardsApi {
    /// The service, ready to be served on the peer port.
    pub fn server(node: Arc<Node>) -> ShardsServer<ShardsApi> {
        ShardsServer::new(ShardsApi { node })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    async fn run(&self, call: ShardCall) -> Result<Vec<u8>> {
        let request: ShardRequest = decode(&call.request)?;
        if let ShardRequest::Coordinate { op, wait } = request {
            // This peer coordinates the shard's ordered writes (never forwarded again).
            let collection = self.node.collection(&call.collection)?;
            let seq = collection.coordinate_write(call.shard_id, op, wait).await?;
            return encode(&ShardResponse::Updated(seq));
        }
        let shard =
            cluster_sync::local_shard_when_ready(&self.node, &call.collection, call.shard_id, REPLICA_WAIT).await?;
        let collection = self.node.collection(&call.collection)?;
        // Writes this peer coordinates later are stamped after the ones it applies.
        if let ShardRequest::Update { version, .. } = &request {
            collection.observe_version(*version);
        }
        // A transfer copies only what this peer holds once it applied the transfer's start.
        if let Some(fence) = request.transfer_fence() {
            collection.wait_for_routing(fence, FENCE_WAIT).await?;
        }
        let response = blocking(move || collection.execute_fenced(&shard, &request)).await?;
        encode(&response)
    }

    /// Runs one request on several local shards, one after the other on one blocking thread
    /// (cheaper than a task per shard for the small reads of a fan-out).
    async fn run_many(&self, batch: ShardBatch) -> Result<Vec<ShardReply>> {
        let request: ShardRequest = decode(&batch.request)?;
        let mut shards = Vec::with_capacity(batch.shard_ids.len());
        for id in &batch.shard_ids {
            shards.push(cluster_sync::local_shard_when_ready(&self.node, &batch.collection, *id, REPLICA_WAIT).await);
        }
        blocking(move || {
            Ok(shards
                .into_iter()
                .map(
                    |shard| match shard.and_then(|s| execute(&s, &request)).and_then(|r| encode(&r)) {
                        Ok(response) => ShardReply { error: None, response },
                        Err(e) => ShardReply {
                            error: Some(to_peer_error(&e)),
                            response: Vec::new(),
                        },
                    },
                )
                .collect())
        })
        .await
    }
}

#[tonic::async_trait]
impl Shards for ShardsApi {
    type SnapshotStream = SnapshotStream;

    async fn snapshot(&self, request: Request<ShardSnapshotCall>) -> Result<Response<SnapshotStream>, Status> {
        use tokio::io::AsyncReadExt;
        let call = request.into_inner();
        let snapshot = self
            .node
            .transfer_snapshot(&call.collection, call.shard_id)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let file = tokio::fs::File::open(snapshot.path())
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        // The snapshot file goes when the stream ends or the target hangs up.
        let chunks = futures::stream::try_unfold((file, snapshot), |(mut file, snapshot)| async move {
            let mut data = Vec::with_capacity(SNAPSHOT_CHUNK);
            let read = (&mut file)
                .take(SNAPSHOT_CHUNK as u64)
                .read_to_end(&mut data)
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
            Ok((read > 0).then_some((SnapshotChunk { data }, (file, snapshot))))
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn call(&self, request: Request<ShardCall>) -> Result<Response<ShardReply>, Status> {
        let reply = match self.run(request.into_inner()).await {
            Ok(response) => ShardReply { error: None, response },
            Err(e) => ShardReply {
                error: Some(to_peer_error(&e)),
                response: Vec::new(),
            },
        };
        Ok(Response::new(reply))
    }

    async fn call_many(&self, request: Request<ShardBatch>) -> Result<Response<ShardBatchReply>, Status> {
        match self.run_many(request.into_inner()).await {
            Ok(replies) => Ok(Response::new(ShardBatchReply { replies })),
            Err(e) => Err(Status::invalid_argument(e.to_string())),
        }
    }
}
