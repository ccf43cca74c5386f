//! Cluster mode: consensus over the cluster's structure (peers, collections, shard placement,
//! replica states) with openraft, persisted in RocksDB under `<storage_path>/raft`, talking to
//! other peers over the peer gRPC API (`proto/peer.proto`).
//!
//! - `state`: [`ClusterState`], [`ClusterOp`] and the deterministic `apply`; [`placement`].
//! - `types`: the openraft type configuration (node id = peer id, node info = peer URI).
//! - `raft_db`, `log_store`, `state_machine`: openraft storage-v2 over one RocksDB.
//! - `network`: gRPC channels per peer, timeouts, send-failure records, `RaftNetworkFactory`.
//! - `consensus`: the [`Consensus`] handle; `bootstrap`: start-up; `leader`: the leader's duties.

pub mod bootstrap;
pub mod consensus;
pub mod leader;
pub mod log_store;
pub mod network;
pub mod raft_db;
pub mod state;
pub mod state_machine;
pub mod types;
pub mod wire;

pub use consensus::{Consensus, ConsensusMetrics, Timing};
pub use state::{
    placement, AppliedState, ClusterOp, ClusterState, CollectionState, PeerId, PeerInfo, ReplicaState, ShardId,
};
pub use types::{PeerNode, Proposal, TypeConfig};

#[cfg(test)]
mod tests;
