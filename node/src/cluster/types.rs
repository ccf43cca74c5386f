//! openraft's type configuration: node ids are u64 peer ids, a node's info is its p2p URI, and a
//! log entry carries a [`Proposal`] (a `ClusterOp` with an id for exactly-once retries).

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use super::state::{ClusterOp, PeerId};
use super::wire::WireError;

/// What openraft knows about a peer: where to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    pub uri: String,
}

impl fmt::Display for PeerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

/// A log entry's application payload. `id` lets a proposer retry after an ambiguous failure
/// (the leader died mid-call) without applying the operation twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: uuid::Uuid,
    pub op: ClusterOp,
}

impl Proposal {
    pub fn new(op: ClusterOp) -> Self {
        Proposal {
            id: uuid::Uuid::new_v4(),
            op,
        }
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.op.kind(), self.id)
    }
}

/// The result of applying one entry: `None` = applied, `Some` = refused by `ClusterState::apply`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplyOutcome {
    pub error: Option<WireError>,
}

openraft::declare_raft_types!(
    /// The Raft type configuration of the cluster layer.
    pub TypeConfig:
        D = Proposal,
        R = ApplyOutcome,
        NodeId = PeerId,
        Node = PeerNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<PeerId>;
pub type Vote = openraft::Vote<PeerId>;
pub type StoredMembership = openraft::StoredMembership<PeerId, PeerNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<PeerId, PeerNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<PeerId>;
pub type RaftMetrics = openraft::RaftMetrics<PeerId, PeerNode>;
