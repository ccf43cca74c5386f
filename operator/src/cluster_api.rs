//! The node's cluster REST API as the operator uses it: a trait, its HTTP implementation
//! (reqwest, plain HTTP or HTTPS with the cluster's CA) and an in-memory fake for tests
//! (`fake::FakeCluster`).
//!
//! Endpoints (Qdrant's contract): `GET /cluster`, `GET /collections`,
//! `GET|POST /collections/{c}/cluster` (`move_shard`, `replicate_shard`, `drop_replica`) and
//! `DELETE /cluster/peer/{id}?force=false`.

pub mod fake;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A Qdrant peer id.
pub type PeerId = u64;

/// Errors talking to a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterApiError {
    /// The node could not be reached (connection refused, DNS, timeout).
    #[error("node {node} is unreachable: {message}")]
    Unreachable { node: String, message: String },
    /// The node answered with an error status.
    #[error("node {node} answered {status}: {message}")]
    Status { node: String, status: u16, message: String },
    /// The node's answer could not be understood.
    #[error("node {node} sent an unexpected answer: {message}")]
    Decode { node: String, message: String },
    /// The HTTP client could not be configured (e.g. a malformed CA certificate).
    #[error("cannot configure the HTTP client: {0}")]
    Config(String),
}

/// `GET /cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// `enabled` in cluster mode, `disabled` for a standalone node.
    pub status: String,
    #[serde(default)]
    pub peer_id: Option<PeerId>,
    /// Peers by id (JSON keys are strings).
    #[serde(default)]
    pub peers: BTreeMap<String, PeerUri>,
    #[serde(default)]
    pub raft_info: Option<RaftInfo>,
}

impl ClusterInfo {
    /// Peers with numeric ids (entries with malformed keys are skipped).
    pub fn peer_ids(&self) -> BTreeMap<PeerId, String> {
        self.peers
            .iter()
            .filter_map(|(id, p)| Some((id.parse().ok()?, p.uri.clone())))
            .collect()
    }

    /// The Raft leader this node knows of.
    pub fn leader(&self) -> Option<PeerId> {
        self.raft_info.as_ref().and_then(|r| r.leader)
    }
}

/// A peer's p2p URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerUri {
    pub uri: String,
}

/// Raft state of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RaftInfo {
    #[serde(default)]
    pub term: u64,
    #[serde(default)]
    pub commit: u64,
    #[serde(default)]
    pub pending_operations: u64,
    #[serde(default)]
    pub leader: Option<PeerId>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_voter: bool,
}

/// State of one shard replica (Qdrant's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaState {
    Active,
    Dead,
    Partial,
    Initializing,
    Listener,
    PartialSnapshot,
    Recovery,
    Resharding,
    ReshardingScaleDown,
    ActiveRead,
    ManualRecovery,
    /// A state this operator does not know; treated as not active.
    #[serde(other)]
    Unknown,
}

/// `GET /collections/{c}/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionClusterInfo {
    pub peer_id: PeerId,
    #[serde(default)]
    pub shard_count: u32,
    #[serde(default)]
    pub local_shards: Vec<LocalShard>,
    #[serde(default)]
    pub remote_shards: Vec<RemoteShard>,
    #[serde(default)]
    pub shard_transfers: Vec<ShardTransfer>,
}

/// A replica held by the answering node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalShard {
    pub shard_id: u32,
    #[serde(default)]
    pub points_count: u64,
    pub state: ReplicaState,
}

/// A replica held by another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteShard {
    pub shard_id: u32,
    pub peer_id: PeerId,
    pub state: ReplicaState,
}

/// A shard transfer in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTransfer {
    pub shard_id: u32,
    pub from: PeerId,
    pub to: PeerId,
    #[serde(default)]
    pub sync: bool,
}

/// Body of `POST /collections/{c}/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardOperation {
    MoveShard(ShardTransferRequest),
    ReplicateShard(ShardTransferRequest),
    DropReplica(DropReplicaRequest),
}

/// `move_shard` / `replicate_shard` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTransferRequest {
    pub shard_id: u32,
    pub from_peer_id: PeerId,
    pub to_peer_id: PeerId,
}

/// `drop_replica` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropReplicaRequest {
    pub shard_id: u32,
    pub peer_id: PeerId,
}

/// The node REST calls the operator needs. `node` is a base URL such as
/// `http://demo-0.demo-headless.db.svc:6333`.
pub trait ClusterApi: Send + Sync {
    /// `GET /cluster`.
    fn cluster_info(&self, node: &str) -> impl Future<Output = Result<ClusterInfo, ClusterApiError>> + Send;
    /// `GET /collections`: the collection names.
    fn list_collections(&self, node: &str) -> impl Future<Output = Result<Vec<String>, ClusterApiError>> + Send;
    /// `GET /collections/{collection}/cluster`.
    fn collection_cluster(
        &self,
        node: &str,
        collection: &str,
    ) -> impl Future<Output = Result<CollectionClusterInfo, ClusterApiError>> + Send;
    /// `POST /collections/{collection}/cluster`.
    fn update_collection_cluster(
        &self,
        node: &str,
        collection: &str,
        operation: &ShardOperation,
    ) -> impl Future<Output = Result<(), ClusterApiError>> + Send;
    /// `DELETE /cluster/peer/{peer}?force=false`: Qdrant refuses while the peer holds shards.
    fn remove_peer(&self, node: &str, peer: PeerId) -> impl Future<Output = Result<(), ClusterApiError>> + Send;
}

/// Per-cluster connection settings (from the QdrantCluster's Secrets).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// Sent as the `api-key` header.
    pub api_key: Option<String>,
    /// PEM CA certificate that signed the nodes' certificates (HTTPS when set).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// Makes a `ClusterApi` for one cluster's connection settings.
pub trait ClusterApiProvider: Send + Sync + 'static {
    type Api: ClusterApi + 'static;
    fn connect(&self, connection: &Connection) -> Result<Self::Api, ClusterApiError>;
}

/// Timeout of read calls.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Consensus timeout passed to mutating calls (`?timeout=`), in seconds.
const CONSENSUS_TIMEOUT_SECS: u64 = 30;
/// Client-side timeout of mutating calls (a bit more than the consensus timeout).
const WRITE_TIMEOUT: Duration = Duration::from_secs(CONSENSUS_TIMEOUT_SECS + 5);

/// Provider of [`HttpClusterApi`] clients.
#[derive(Clone, Debug, Default)]
pub struct HttpProvider;

impl ClusterApiProvider for HttpProvider {
    type Api = HttpClusterApi;
    fn connect(&self, connection: &Connection) -> Result<HttpClusterApi, ClusterApiError> {
        HttpClusterApi::new(connection)
    }
}

/// The real client of the node's REST API.
#[derive(Clone, Debug)]
pub struct HttpClusterApi {
    client: reqwest::Client,
    api_key: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    result: Option<T>,
    #[serde(default)]
    status: serde_json::Value,
}

#[derive(Deserialize)]
struct CollectionList {
    collections: Vec<CollectionName>,
}

#[derive(Deserialize)]
struct CollectionName {
    name: String,
}

impl HttpClusterApi {
    /// A client for `connection` (HTTPS trust is limited to the given CA).
    pub fn new(connection: &Connection) -> Result<HttpClusterApi, ClusterApiError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(30))
            .tls_built_in_root_certs(false);
        if let Some(pem) = &connection.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClusterApiError::Config(format!("invalid CA certificate: {e}")))?;
            if certs.is_empty() {
                return Err(ClusterApiError::Config(
                    "the CA (ca.crt) holds no PEM certificate".to_string(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| ClusterApiError::Config(e.to_string()))?;
        Ok(HttpClusterApi {
            client,
            api_key: connection.api_key.clone(),
        })
    }

    fn url(node: &str, segments: &[&str]) -> Result<reqwest::Url, ClusterApiError> {
        let mut url =
            reqwest::Url::parse(node).map_err(|e| ClusterApiError::Config(format!("bad node URL {node}: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| ClusterApiError::Config(format!("bad node URL {node}")))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        node: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClusterApiError> {
        let request = match &self.api_key {
            Some(key) => request.header("api-key", key),
            None => request,
        };
        let response = request.send().await.map_err(|e| ClusterApiError::Unreachable {
            node: node.to_string(),
            message: e.to_string(),
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| ClusterApiError::Unreachable {
            node: node.to_string(),
            message: e.to_string(),
        })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Envelope<serde_json::Value>>(&body)
                .ok()
                .and_then(|e| e.status.get("error").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(500).collect());
            return Err(ClusterApiError::Status {
                node: node.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        let envelope: Envelope<T> = serde_json::from_slice(&body).map_err(|e| ClusterApiError::Decode {
            node: node.to_string(),
            message: e.to_string(),
        })?;
        envelope.result.ok_or_else(|| ClusterApiError::Decode {
            node: node.to_string(),
            message: "the answer has no result".to_string(),
        })
    }
}

impl ClusterApi for HttpClusterApi {
    async fn cluster_info(&self, node: &str) -> Result<ClusterInfo, ClusterApiError> {
        let url = Self::url(node, &["cluster"])?;
        self.send(node, self.client.get(url).timeout(READ_TIMEOUT)).await
    }

    async fn list_collections(&self, node: &str) -> Result<Vec<String>, ClusterApiError> {
        let url = Self::url(node, &["collections"])?;
        let list: CollectionList = self.send(node, self.client.get(url).timeout(READ_TIMEOUT)).await?;
        Ok(list.collections.into_iter().map(|c| c.name).collect())
    }

    async fn collection_cluster(&self, node: &str, collection: &str) -> Result<CollectionClusterInfo, ClusterApiError> {
        let url = Self::url(node, &["collections", collection, "cluster"])?;
        self.send(node, self.client.get(url).timeout(READ_TIMEOUT)).await
    }

    async fn update_collection_cluster(
        &self,
        node: &str,
        collection: &str,
        operation: &ShardOperation,
    ) -> Result<(), ClusterApiError> {
        let mut url = Self::url(node, &["collections", collection, "cluster"])?;
        url.query_pairs_mut()
            .append_pair("timeout", &CONSENSUS_TIMEOUT_SECS.to_string());
        let _: serde_json::Value = self
            .send(node, self.client.post(url).json(operation).timeout(WRITE_TIMEOUT))
            .await?;
        Ok(())
    }

    async fn remove_peer(&self, node: &str, peer: PeerId) -> Result<(), ClusterApiError> {
        let mut url = Self::url(node, &["cluster", "peer", &peer.to_string()])?;
        url.query_pairs_mut()
            .append_pair("force", "false")
            .append_pair("timeout", &CONSENSUS_TIMEOUT_SECS.to_string());
        let _: serde_json::Value = self.send(node, self.client.delete(url).timeout(WRITE_TIMEOUT)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_operations_serialise_like_qdrant() {
        let op = ShardOperation::MoveShard(ShardTransferRequest {
            shard_id: 1,
            from_peer_id: 10,
            to_peer_id: 20,
        });
        assert_eq!(
            serde_json::to_value(&op).expect("json"),
            serde_json::json!({"move_shard": {"shard_id": 1, "from_peer_id": 10, "to_peer_id": 20}})
        );
        let op = ShardOperation::DropReplica(DropReplicaRequest {
            shard_id: 2,
            peer_id: 7,
        });
        assert_eq!(
            serde_json::to_value(&op).expect("json"),
            serde_json::json!({"drop_replica": {"shard_id": 2, "peer_id": 7}})
        );
    }

    #[test]
    fn cluster_info_parses_qdrant_answer() {
        let info: ClusterInfo = serde_json::from_value(serde_json::json!({
            "status": "enabled", "peer_id": 5,
            "peers": {"5": {"uri": "http://a:6335/"}, "9": {"uri": "http://b:6335/"}},
            "raft_info": {"term": 2, "commit": 10, "pending_operations": 0, "leader": 9,
                          "role": "Follower", "is_voter": true},
            "consensus_thread_status": {"consensus_thread_status": "working"},
            "message_send_failures": {}
        }))
        .expect("parse");
        assert_eq!(info.leader(), Some(9));
        assert_eq!(info.peer_ids().len(), 2);
        let state: ReplicaState = serde_json::from_str("\"SomethingNew\"").expect("unknown");
        assert_eq!(state, ReplicaState::Unknown);
    }

    #[test]
    fn urls_encode_collection_names() {
        let url = HttpClusterApi::url("http://n:6333", &["collections", "a b/c", "cluster"]).expect("url");
        assert_eq!(url.as_str(), "http://n:6333/collections/a%20b%2Fc/cluster");
        let url = HttpClusterApi::url("http://n:6333/", &["cluster"]).expect("url");
        assert_eq!(url.as_str(), "http://n:6333/cluster");
    }

    #[tokio::test]
    async fn http_client_reports_unreachable_nodes() {
        let api = HttpClusterApi::new(&Connection::default()).expect("client");
        // Port 1 on loopback is closed.
        let err = api.cluster_info("http://127.0.0.1:1").await.expect_err("closed port");
        assert!(matches!(err, ClusterApiError::Unreachable { .. }), "{err}");
    }
}
