//! Shard replicas held by other peers, reached over the peer gRPC `Shards` service, and the
//! routing table (which peer holds which replica in which state) that consensus decided.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::transport::Channel;

use crate::cluster::network::{decode, encode, PeerClients, MAX_MESSAGE_BYTES};
use crate::cluster::wire::from_peer_error;
use crate::cluster::{PeerId, ReplicaState, ShardId};
use crate::error::{Error, Result};
use crate::peer_proto::shards_client::ShardsClient;
use crate::peer_proto::{ShardBatch, ShardCall, ShardSnapshotCall};

use super::shard_request::{ShardRequest, ShardResponse};

fn shards_client(channel: Channel) -> ShardsClient<Channel> {
    ShardsClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// How long a transfer waits for its source to have a shard snapshot ready.
const SNAPSHOT_START: Duration = Duration::from_secs(600);

/// Client side of the `Shards` service, sharing the consensus layer's connections.
pub struct RemoteShards {
    clients: Arc<PeerClients>,
    timeout: Duration,
}

impl RemoteShards {
    pub fn new(clients: Arc<PeerClients>, timeout: Duration) -> RemoteShards {
        RemoteShards { clients, timeout }
    }

    /// Downloads a snapshot of the replica of `collection`/`shard` held by `peer` at `uri` into
    /// the file `dest` (a transfer's copy). Returns its size in bytes.
    pub async fn fetch_snapshot(
        &self,
        peer: PeerId,
        uri: &str,
        collection: &str,
        shard: ShardId,
        dest: &std::path::Path,
    ) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let failed = |e: String| Error::Unavailable(format!("snapshot of shard {shard} from peer {peer}: {e}"));
        let mut client = shards_client(self.clients.channel(uri)?);
        let call = ShardSnapshotCall {
            collection: collection.to_string(),
            shard_id: shard,
        };
        // The source checkpoints and packs the shard before the first byte.
        let mut stream = tokio::time::timeout(SNAPSHOT_START, client.snapshot(call))
            .await
            .map_err(|_| failed(format!("no answer within {SNAPSHOT_START:?}")))?
            .map_err(|status| failed(status.message().to_string()))?
            .into_inner();
        let mut file = tokio::fs::File::create(dest).await?;
        let mut bytes = 0u64;
        loop {
            let chunk = tokio::time::timeout(self.timeout, stream.message())
                .await
                .map_err(|_| failed(format!("stalled for {:?}", self.timeout)))?
                .map_err(|status| failed(status.message().to_string()))?;
            let Some(chunk) = chunk else { break };
            bytes += chunk.data.len() as u64;
            file.write_all(&chunk.data).await?;
        }
        file.sync_all().await?;
        Ok(bytes)
    }

    /// Runs `request` on the replica of `collection`/`shard` held by `peer` at `uri`.
    pub async fn call(
        &self,
        peer: PeerId,
        uri: &str,
        collection: &str,
        shard: ShardId,
        request: &ShardRequest,
    ) -> Result<ShardResponse> {
        let call = ShardCall {
            collection: collection.to_string(),
            shard_id: shard,
            request: encode(request)?,
        };
        let reply = self
            .clients
            .call_channel(uri, Some(peer), self.timeout, |channel| async move {
                shards_client(channel).call(call).await
            })
            .await
            .map_err(|e| Error::from(e).context(format!("shard {shard} on peer {peer}")))?;
        if let Some(e) = reply.error {
            return Err(from_peer_error(e));
        }
        decode(&reply.response)
    }

    /// Runs the same read on several shards held by `peer`, in one round trip. A transport
    /// failure fails the whole call; each shard's own error comes back in its slot.
    pub async fn call_many(
        &self,
        peer: PeerId,
        uri: &str,
        collection: &str,
        shards: &[ShardId],
        request: &ShardRequest,
    ) -> Result<Vec<Result<ShardResponse>>> {
        let batch = ShardBatch {
            collection: collection.to_string(),
            shard_ids: shards.to_vec(),
            request: encode(request)?,
        };
        let reply = self
            .clients
            .call_channel(uri, Some(peer), self.timeout, |channel| async move {
                shards_client(channel).call_many(batch).await
            })
            .await
            .map_err(|e| Error::from(e).context(format!("shards {shards:?} on peer {peer}")))?;
        if reply.replies.len() != shards.len() {
            return Err(Error::internal(format!(
                "peer {peer} answered {} of {} shards",
                reply.replies.len(),
                shards.len()
            )));
        }
        Ok(reply
            .replies
            .into_iter()
            .map(|r| match r.error {
                Some(e) => Err(from_peer_error(e)),
                None => decode(&r.response),
            })
            .collect())
    }
}

/// One replica of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub peer: PeerId,
    pub state: ReplicaState,
}

/// Reports a replica that missed a write which enough others acknowledged, so that consensus
/// marks it Dead (it then receives no traffic until it is recovered). Arguments: collection,
/// shard, peer, the state the replica was in when the write was routed.
pub type ReplicaFailed =
    Arc<dyn Fn(String, ShardId, PeerId, ReplicaState) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Brings this peer's view of the cluster up to a read index taken now and returns that index
/// (`Consensus::sync_view`): before a consistent read, so it never asks replicas a newer
/// state has marked Dead.
pub type SyncView = Arc<dyn Fn() -> BoxFuture<'static, Result<u64>> + Send + Sync>;

/// Where the replicas of every shard of one collection live (cluster mode). Set by the node's
/// cluster sync after every applied change; read on every request.
pub struct Routing {
    pub this_peer: PeerId,
    /// The consensus log index of the state this routing was built from.
    pub index: u64,
    /// Per shard, the write fence: writes routed by a state older than this are refused (see
    /// `CollectionState::write_epochs`).
    pub write_epochs: BTreeMap<ShardId, u64>,
    pub shards: BTreeMap<ShardId, Vec<Replica>>,
    pub uris: BTreeMap<PeerId, String>,
    pub remote: Arc<RemoteShards>,
    pub on_replica_failed: ReplicaFailed,
    pub sync_view: SyncView,
}

impl Routing {
    pub fn write_epoch(&self, shard: ShardId) -> u64 {
        self.write_epochs.get(&shard).copied().unwrap_or(0)
    }

    pub fn replicas(&self, shard: ShardId) -> &[Replica] {
        self.shards.get(&shard).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn uri(&self, peer: PeerId) -> Result<&str> {
        self.uris
            .get(&peer)
            .map(String::as_str)
            .ok_or_else(|| Error::Unavailable(format!("peer {peer} is not part of the cluster")))
    }
}
