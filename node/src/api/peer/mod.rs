//! The peer gRPC API (`proto/peer.proto`, port `cluster.p2p.port`): the Raft transport, join,
//! forwarded proposals and removals, and the leader's commit index. Handlers are thin: decode,
//! call `Consensus`, encode. Application errors travel in the reply (`PeerError`); a gRPC status
//! means the transport or the message itself failed.
//!
//! `Consensus::start` spawns [`serve`]; extra services (the data plane's [`shards`]) are added
//! with `Consensus::start_with_services`.

pub mod shards;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

use crate::cluster::network::{decode, encode, MAX_MESSAGE_BYTES};
use crate::cluster::wire::to_peer_error;
use crate::cluster::{Consensus, PeerId, Proposal, TypeConfig};
use crate::error::Error;
use crate::peer_proto::peer_server::{Peer, PeerServer};
use crate::peer_proto::{
    GetCommitReply, GetCommitRequest, JoinReply, JoinRequest, PingReply, PingRequest, ProposeReply, ProposeRequest,
    RaftMessage, RemovePeerReply, RemovePeerRequest,
};

/// Starts the refusal of a removed peer's messages (recognised by the removed peer's network).
pub const REMOVED_MARKER: &str = "not a cluster member";

pub struct PeerApi {
    consensus: Arc<Consensus>,
}

/// Serves the peer API (plus `extra` services) on `listener` until the task is aborted, over
/// TLS with `tls` (`cluster.p2p.enable_tls`).
pub fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    consensus: Arc<Consensus>,
    extra: tonic::service::Routes,
) -> JoinHandle<()> {
    let service = PeerServer::new(PeerApi { consensus })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tokio::spawn(async move {
        let router = tonic::transport::Server::builder()
            .add_routes(extra)
            .add_service(service);
        let result = match tls {
            Some(config) => match crate::api::tls::TlsListener::new(listener, config) {
                Ok(tls) => router.serve_with_incoming(tls.into_stream()).await,
                Err(e) => {
                    tracing::error!(error = %e, "peer API: cannot serve TLS");
                    return;
                }
            },
            None => {
                let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                router.serve_with_incoming(incoming).await
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "peer API server stopped");
        }
    })
}

fn bad_message(e: Error) -> Status {
    Status::invalid_argument(e.to_string())
}

fn internal(e: Error) -> Status {
    Status::internal(e.to_string())
}

impl PeerApi {
    /// Refuses Raft messages meant for another peer id (e.g. sent to a dead peer's address that a
    /// new process has taken over).
    fn check_target(&self, target: PeerId) -> Result<(), Status> {
        let me = self.consensus.peer_id();
        if target != me {
            return Err(Status::failed_precondition(format!(
                "this is peer {me}, not peer {target}"
            )));
        }
        Ok(())
    }

    fn reply(data: Vec<u8>) -> Response<RaftMessage> {
        Response::new(RaftMessage { target: 0, data })
    }
}

/// `http://<ip>:<port>` for a joiner that did not say where it is.
fn derived_uri(remote: Option<SocketAddr>, port: u32) -> Result<String, Error> {
    let remote = remote.ok_or_else(|| Error::bad_input("joiner sent no URI and its address is unknown"))?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Error::bad_input("joiner sent neither a URI nor a valid p2p port"))?;
    Ok(match remote.ip() {
        std::net::IpAddr::V4(ip) => format!("http://{ip}:{port}"),
        std::net::IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("http://{v4}:{port}"),
            None => format!("http://[{ip}]:{port}"),
        },
    })
}

#[tonic::async_trait]
impl Peer for PeerApi {
    async fn ping(&self, _: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        Ok(Response::new(PingReply {
            peer_id: self.consensus.peer_id(),
        }))
    }

    async fn raft_vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = request.into_inner();
        self.check_target(m.target)?;
        let rpc: VoteRequest<PeerId> = decode(&m.data).map_err(bad_message)?;
        // A removed peer that comes back with its old state would campaign with ever higher
        // terms and disturb the cluster: its vote requests are refused (and it is told why).
        if let Some(candidate) = rpc.vote.leader_id().voted_for() {
            if candidate != self.consensus.peer_id() && !self.consensus.is_member(candidate) {
                return Err(Status::permission_denied(format!(
                    "{REMOVED_MARKER}: peer {candidate} is not a member of this cluster (it was removed); \
                     delete its storage to join as a new peer"
                )));
            }
        }
        let result = self.consensus.raft().vote(rpc).await;
        Ok(Self::reply(encode(&result).map_err(internal)?))
    }

    async fn raft_append(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = request.into_inner();
        self.check_target(m.target)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&m.data).map_err(bad_message)?;
        let result = self.consensus.raft().append_entries(rpc).await;
        Ok(Self::reply(encode(&result).map_err(internal)?))
    }

    async fn raft_snapshot(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = request.into_inner();
        self.check_target(m.target)?;
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&m.data).map_err(bad_message)?;
        let result: Result<_, RaftError<PeerId, InstallSnapshotError>> =
            self.consensus.raft().install_snapshot(rpc).await;
        Ok(Self::reply(encode(&result).map_err(internal)?))
    }

    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinReply>, Status> {
        let remote = request.remote_addr();
        let r = request.into_inner();
        let uri = if r.uri.is_empty() {
            derived_uri(remote, r.p2p_port)
        } else {
            Ok(r.uri)
        };
        let result = match uri {
            Ok(uri) => self.consensus.handle_join(r.peer_id, uri).await,
            Err(e) => Err(e),
        };
        Ok(Response::new(match result {
            Ok((uri, index)) => JoinReply {
                error: None,
                uri,
                leader_id: self.consensus.leader_id().unwrap_or(0),
                index,
            },
            Err(e) => {
                tracing::info!(peer = r.peer_id, error = %e, "join request not granted");
                JoinReply {
                    error: Some(to_peer_error(&e)),
                    ..Default::default()
                }
            }
        }))
    }

    async fn propose(&self, request: Request<ProposeRequest>) -> Result<Response<ProposeReply>, Status> {
        let r = request.into_inner();
        let timeout = Duration::from_millis(r.timeout_ms.clamp(100, 600_000));
        let deadline = tokio::time::Instant::now() + timeout;
        let proposal: Proposal = decode(&r.proposal).map_err(bad_message)?;
        let result = self.consensus.commit_proposal_as_leader(proposal, deadline).await;
        Ok(Response::new(match result {
            Ok(index) => ProposeReply { error: None, index },
            Err(e) => ProposeReply {
                error: Some(to_peer_error(&e)),
                index: 0,
            },
        }))
    }

    async fn remove_peer(&self, request: Request<RemovePeerRequest>) -> Result<Response<RemovePeerReply>, Status> {
        let r = request.into_inner();
        let timeout = Duration::from_millis(r.timeout_ms.clamp(100, 600_000));
        let deadline = tokio::time::Instant::now() + timeout;
        let result = if self.consensus.is_leader() {
            self.consensus.remove_peer_as_leader(r.peer_id, r.force, deadline).await
        } else {
            Err(Error::Unavailable(format!(
                "peer {} is not the leader",
                self.consensus.peer_id()
            )))
        };
        Ok(Response::new(match result {
            Ok(index) => RemovePeerReply { error: None, index },
            Err(e) => RemovePeerReply {
                error: Some(to_peer_error(&e)),
                index: 0,
            },
        }))
    }

    async fn get_commit(&self, _: Request<GetCommitRequest>) -> Result<Response<GetCommitReply>, Status> {
        let metrics = self.consensus.metrics();
        let reply = if self.consensus.is_leader() {
            // Confirmed with a quorum: the answer is a read index (see `Consensus::read_index`).
            match self.consensus.confirmed_commit().await {
                Ok(commit) => GetCommitReply {
                    error: None,
                    commit,
                    term: metrics.term,
                    leader_id: self.consensus.peer_id(),
                },
                Err(e) => GetCommitReply {
                    error: Some(to_peer_error(&e)),
                    ..Default::default()
                },
            }
        } else {
            GetCommitReply {
                error: Some(to_peer_error(&Error::Unavailable(format!(
                    "peer {} is not the leader",
                    self.consensus.peer_id()
                )))),
                ..Default::default()
            }
        };
        Ok(Response::new(reply))
    }
}
