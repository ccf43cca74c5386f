//! The peer network: one reusable gRPC channel per peer URI, timeouts from the settings, a record
//! of failed sends per URI (`message_send_failures` in `GET /cluster`) and of the last successful
//! exchange per peer id (liveness), and openraft's `RaftNetworkFactory` on top.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::state::PeerId;
use super::types::{PeerNode, TypeConfig};
use crate::error::{Error, Result};
use crate::peer_proto::peer_client::PeerClient;
use crate::peer_proto::RaftMessage;

/// Largest gRPC message between peers (snapshots travel in chunks well below this).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

fn peer_client(channel: Channel) -> PeerClient<Channel> {
    PeerClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Failed sends to one URI since the last successful one.
#[derive(Debug, Clone, PartialEq)]
pub struct SendFailure {
    pub count: u64,
    pub latest_error: String,
    pub latest_error_timestamp: DateTime<Utc>,
}

/// HTTP/2 pings on peer connections, also while idle, and how long a ping may go unanswered.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);
/// A call timing out on a connection that answered nothing for this long replaces the connection.
const SILENT_CONNECTION: Duration = Duration::from_secs(2);

/// Connections and bookkeeping shared by every sender on this peer.
pub struct PeerClients {
    connect_timeout: Duration,
    rpc_timeout: Duration,
    channels: Mutex<HashMap<String, Channel>>,
    /// When a call on the cached channel to a URI last got an answer.
    answered: Mutex<HashMap<String, Instant>>,
    failures: Mutex<BTreeMap<String, SendFailure>>,
    last_success: Mutex<HashMap<PeerId, Instant>>,
    /// How `https://` peers are called (`cluster.p2p.enable_tls`).
    tls: Option<crate::api::tls::PeerClientTls>,
}

/// Why a call to another peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach {uri}: {message}")]
    Transport { uri: String, message: String },
    #[error("{uri} did not answer within {timeout:?}")]
    Timeout { uri: String, timeout: Duration },
    #[error("bad message from {uri}: {message}")]
    Decode { uri: String, message: String },
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Timeout { .. } => Error::Timeout(e.to_string()),
            CallError::Transport { .. } => Error::Unavailable(e.to_string()),
            CallError::Decode { .. } => Error::Internal(e.to_string()),
        }
    }
}

impl PeerClients {
    pub fn new(connect_timeout: Duration, rpc_timeout: Duration) -> PeerClients {
        PeerClients {
            connect_timeout,
            rpc_timeout,
            channels: Mutex::new(HashMap::new()),
            answered: Mutex::new(HashMap::new()),
            failures: Mutex::new(BTreeMap::new()),
            last_success: Mutex::new(HashMap::new()),
            tls: None,
        }
    }

    /// Calls `https://` peers over TLS with `tls`.
    pub fn with_tls(mut self, tls: Option<crate::api::tls::PeerClientTls>) -> PeerClients {
        self.tls = tls;
        self
    }

    pub fn rpc_timeout(&self) -> Duration {
        self.rpc_timeout
    }

    /// A client on the cached channel to `uri` (connected lazily, reconnecting on demand).
    pub fn client(&self, uri: &str) -> Result<PeerClient<Channel>> {
        Ok(peer_client(self.channel(uri)?))
    }

    /// The cached channel to `uri`, for any service on the peer port.
    pub fn channel(&self, uri: &str) -> Result<Channel> {
        // A rotated client certificate: connections made from now on present the new one.
        let rotated = self.tls.as_ref().is_some_and(|tls| tls.rotated());
        let mut channels = self.channels.lock();
        if rotated {
            channels.clear();
        }
        let channel = match channels.get(uri) {
            Some(c) => c.clone(),
            None => {
                let mut endpoint = Endpoint::from_shared(uri.to_string())
                    .map_err(|e| Error::bad_input(format!("invalid peer URI `{uri}`: {e}")))?;
                if uri.starts_with("https://") {
                    let tls = self.tls.as_ref().map(|tls| tls.config()).ok_or_else(|| {
                        Error::bad_input(format!(
                            "peer URI `{uri}` is https but cluster.p2p.enable_tls is off on this peer"
                        ))
                    })?;
                    endpoint = endpoint
                        .tls_config(tls)
                        .map_err(|e| Error::internal(format!("peer TLS for `{uri}`: {e}")))?;
                }
                let endpoint = endpoint
                    .connect_timeout(self.connect_timeout)
                    .tcp_nodelay(true)
                    // A connection that died silently (a partition that healed, a peer whose
                    // address moved) is noticed within seconds, not after the kernel's timeouts.
                    .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
                    .keep_alive_timeout(KEEPALIVE_TIMEOUT)
                    .keep_alive_while_idle(true);
                let channel = endpoint.connect_lazy();
                channels.insert(uri.to_string(), channel.clone());
                channel
            }
        };
        Ok(channel)
    }

    /// Runs one call of the `Peer` service to `uri` with a deadline, recording the outcome.
    pub async fn call<T, F, Fut>(
        &self,
        uri: &str,
        peer: Option<PeerId>,
        timeout: Duration,
        f: F,
    ) -> Result<T, CallError>
    where
        F: FnOnce(PeerClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_channel(uri, peer, timeout, |channel| f(peer_client(channel)))
            .await
    }

    /// Runs one call of any service on the peer port of `uri`, given the channel.
    pub async fn call_channel<T, F, Fut>(
        &self,
        uri: &str,
        peer: Option<PeerId>,
        timeout: Duration,
        f: F,
    ) -> Result<T, CallError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = match self.channel(uri) {
            Ok(c) => c,
            Err(e) => {
                let err = CallError::Transport {
                    uri: uri.to_string(),
                    message: e.to_string(),
                };
                self.record_failure(uri, &err.to_string());
                return Err(err);
            }
        };
        let result = tokio::time::timeout(timeout, f(client)).await;
        let outcome = match result {
            Err(_) => Err(CallError::Timeout {
                uri: uri.to_string(),
                timeout,
            }),
            Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => Err(CallError::Timeout {
                uri: uri.to_string(),
                timeout,
            }),
            Ok(Err(status)) => Err(CallError::Transport {
                uri: uri.to_string(),
                message: status_message(&status),
            }),
            Ok(Ok(response)) => Ok(response.into_inner()),
        };
        match &outcome {
            Ok(_) => {
                self.answered.lock().insert(uri.to_string(), Instant::now());
                self.record_success(uri, peer)
            }
            Err(e) => {
                if matches!(e, CallError::Timeout { .. }) {
                    self.drop_if_silent(uri);
                }
                self.record_failure(uri, &e.to_string())
            }
        }
        outcome
    }

    /// After a timeout: when nothing came back on the cached channel to `uri` for a while, its
    /// connection is presumed dead (e.g. cut by a partition that healed since) and the next call
    /// connects afresh instead of queueing behind it until keepalive gives up.
    fn drop_if_silent(&self, uri: &str) {
        let silent = self
            .answered
            .lock()
            .get(uri)
            .is_none_or(|at| at.elapsed() >= SILENT_CONNECTION);
        if silent && self.channels.lock().remove(uri).is_some() {
            self.answered.lock().insert(uri.to_string(), Instant::now());
            tracing::debug!(uri, "no answer for a while on the connection; reconnecting");
        }
    }

    pub fn record_failure(&self, uri: &str, error: &str) {
        let mut failures = self.failures.lock();
        let entry = failures.entry(uri.to_string()).or_insert_with(|| SendFailure {
            count: 0,
            latest_error: String::new(),
            latest_error_timestamp: Utc::now(),
        });
        entry.count += 1;
        entry.latest_error = error.to_string();
        entry.latest_error_timestamp = Utc::now();
    }

    pub fn record_success(&self, uri: &str, peer: Option<PeerId>) {
        self.failures.lock().remove(uri);
        if let Some(peer) = peer {
            self.last_success.lock().insert(peer, Instant::now());
        }
    }

    /// Failed sends per URI (entries disappear after the next successful send).
    pub fn failures(&self) -> BTreeMap<String, SendFailure> {
        self.failures.lock().clone()
    }

    /// When a message to `peer` last succeeded (as seen by this peer).
    pub fn last_success(&self, peer: PeerId) -> Option<Instant> {
        self.last_success.lock().get(&peer).copied()
    }

    /// Drops the cached channel and the records of a peer that left.
    pub fn forget(&self, uri: &str, peer: PeerId) {
        self.channels.lock().remove(uri);
        self.answered.lock().remove(uri);
        self.failures.lock().remove(uri);
        self.last_success.lock().remove(&peer);
    }
}

/// The interesting part of a gRPC status: connection errors hide in its source chain.
fn status_message(status: &tonic::Status) -> String {
    let mut msg = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
        source = s.source();
    }
    if msg.is_empty() {
        format!("{:?}", status.code())
    } else {
        msg
    }
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::internal(format!("cannot encode peer message: {e}")))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::bad_input(format!("malformed peer message: {e}")))
}

/// openraft's network factory: a connection per target, sharing [`PeerClients`].
#[derive(Clone)]
pub struct NetworkFactory {
    clients: Arc<PeerClients>,
    backoff: Duration,
}

impl NetworkFactory {
    pub fn new(clients: Arc<PeerClients>, backoff: Duration) -> NetworkFactory {
        NetworkFactory { clients, backoff }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: PeerId, node: &PeerNode) -> Self::Network {
        PeerConnection {
            target,
            uri: node.uri.clone(),
            clients: self.clients.clone(),
            backoff: self.backoff,
        }
    }
}

pub struct PeerConnection {
    target: PeerId,
    uri: String,
    clients: Arc<PeerClients>,
    backoff: Duration,
}

#[derive(Clone, Copy)]
enum RaftRpc {
    Vote,
    Append,
    Snapshot,
}

impl PeerConnection {
    /// Sends one openraft request and decodes the remote `Result<Resp, RaftError<E>>`.
    async fn send<Req, Resp, E>(
        &self,
        rpc: RaftRpc,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<PeerId, PeerNode, RaftError<PeerId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let data = encode(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let message = RaftMessage {
            target: self.target,
            data,
        };
        let timeout = option
            .hard_ttl()
            .min(self.clients.rpc_timeout())
            .max(Duration::from_millis(1));
        let reply = self
            .clients
            .call(&self.uri, Some(self.target), timeout, |mut client| async move {
                match rpc {
                    RaftRpc::Vote => client.raft_vote(message).await,
                    RaftRpc::Append => client.raft_append(message).await,
                    RaftRpc::Snapshot => client.raft_snapshot(message).await,
                }
            })
            .await
            .map_err(|e| {
                if e.to_string().contains(crate::api::peer::REMOVED_MARKER) {
                    tracing::error!(peer = self.target, "{e}");
                }
                RPCError::Unreachable(Unreachable::new(&e))
            })?;
        let result: std::result::Result<Resp, RaftError<PeerId, E>> =
            decode(&reply.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                PeerNode { uri: self.uri.clone() },
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<PeerId>, RPCError<PeerId, PeerNode, RaftError<PeerId>>> {
        self.send(RaftRpc::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<PeerId>, RPCError<PeerId, PeerNode, RaftError<PeerId, InstallSnapshotError>>>
    {
        self.send(RaftRpc::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<PeerId>,
        option: RPCOption,
    ) -> Result<VoteResponse<PeerId>, RPCError<PeerId, PeerNode, RaftError<PeerId>>> {
        self.send(RaftRpc::Vote, &rpc, &option).await
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.backoff))
    }
}
