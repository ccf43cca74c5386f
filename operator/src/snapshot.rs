//! A fresh observation of the Qdrant cluster through its REST API: peers (mapped to pod
//! ordinals), the Raft leader, shard placement and transfers. Taken on every reconcile; the
//! planner never acts on anything older.

use std::collections::BTreeMap;

use crate::build::Names;
use crate::cluster_api::{ClusterApi, ClusterApiError, PeerId, ReplicaState, ShardTransfer};
use crate::crd::HTTP_PORT;

/// How peers map to pods and where each pod's REST API answers.
pub trait Topology: Send + Sync {
    /// Base URL of the REST API of the pod with this ordinal.
    fn rest_endpoint(&self, ordinal: u32) -> String;
    /// Ordinal of the pod a peer URI belongs to, if it belongs to this cluster.
    fn ordinal_of(&self, peer_uri: &str) -> Option<u32>;
}

/// The in-cluster topology: `<scheme>://<name>-<k>.<name>-headless.<ns>.svc:6333`.
#[derive(Clone, Debug)]
pub struct PodTopology {
    pub names: Names,
    pub https: bool,
}

impl Topology for PodTopology {
    fn rest_endpoint(&self, ordinal: u32) -> String {
        format!(
            "{}://{}.svc:{HTTP_PORT}",
            if self.https { "https" } else { "http" },
            self.names.peer_host(ordinal)
        )
    }

    fn ordinal_of(&self, peer_uri: &str) -> Option<u32> {
        self.names.ordinal_of_uri(peer_uri)
    }
}

/// A peer as seen by the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPeer {
    pub uri: String,
    /// `None` when the URI does not name a pod of this cluster.
    pub ordinal: Option<u32>,
}

/// Placement of one collection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// shard id -> peer -> replica state.
    pub shards: BTreeMap<u32, BTreeMap<PeerId, ReplicaState>>,
    pub transfers: Vec<ShardTransfer>,
}

/// One observation of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// The leader every answering pod agrees on (`None`: no leader, or they disagree).
    pub leader: Option<PeerId>,
    /// Answering pods named different leaders.
    pub leader_disagreement: bool,
    /// Every peer any answering pod knows (the union, so a lagging view never hides a member).
    pub peers: BTreeMap<PeerId, SnapshotPeer>,
    /// Collection name -> placement.
    pub collections: BTreeMap<String, Placement>,
    /// Ordinals whose pod answered `GET /cluster`.
    pub responders: Vec<u32>,
}

impl ClusterSnapshot {
    /// The peer running in the pod with this ordinal.
    pub fn peer_at(&self, ordinal: u32) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|(_, p)| p.ordinal == Some(ordinal))
            .map(|(id, _)| *id)
    }

    /// Ordinal of a peer.
    pub fn ordinal_of(&self, peer: PeerId) -> Option<u32> {
        self.peers.get(&peer).and_then(|p| p.ordinal)
    }

    /// Transfers in flight, as `(collection, transfer)`.
    pub fn transfers(&self) -> Vec<(&str, &ShardTransfer)> {
        self.collections
            .iter()
            .flat_map(|(name, p)| p.transfers.iter().map(move |t| (name.as_str(), t)))
            .collect()
    }

    /// Replicas held by `peer`, as `(collection, shard, state)`.
    pub fn replicas_on(&self, peer: PeerId) -> Vec<(&str, u32, ReplicaState)> {
        self.collections
            .iter()
            .flat_map(|(name, p)| {
                p.shards
                    .iter()
                    .filter_map(move |(shard, replicas)| replicas.get(&peer).map(|st| (name.as_str(), *shard, *st)))
            })
            .collect()
    }

    /// No shard of any collection has more than one replica.
    pub fn nothing_replicated(&self) -> bool {
        self.collections
            .values()
            .all(|p| p.shards.values().all(|r| r.len() <= 1))
    }
}

/// Why the cluster could not be observed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    #[error("no ready pod to ask")]
    NoReadyPods,
    #[error("no pod answered GET /cluster: {0}")]
    Unreachable(String),
    #[error("node {0} does not run in cluster mode")]
    NotClusterMode(String),
    #[error(transparent)]
    Api(#[from] ClusterApiError),
}

/// Observes the cluster by asking every pod in `ordinals` (the ready ones) for `GET /cluster`,
/// then the first one that answered for the collections and their placement.
pub async fn observe_cluster<A: ClusterApi>(
    api: &A,
    topology: &dyn Topology,
    ordinals: &[u32],
) -> Result<ClusterSnapshot, ObserveError> {
    if ordinals.is_empty() {
        return Err(ObserveError::NoReadyPods);
    }
    let mut snapshot = ClusterSnapshot::default();
    let mut leaders = Vec::new();
    let mut failures = Vec::new();
    for &ordinal in ordinals {
        let node = topology.rest_endpoint(ordinal);
        match api.cluster_info(&node).await {
            Ok(info) => {
                if info.status != "enabled" {
                    return Err(ObserveError::NotClusterMode(node));
                }
                leaders.push(info.leader());
                for (id, uri) in info.peer_ids() {
                    let ordinal = topology.ordinal_of(&uri);
                    snapshot.peers.entry(id).or_insert(SnapshotPeer { uri, ordinal });
                }
                snapshot.responders.push(ordinal);
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    let Some(&primary) = snapshot.responders.first() else {
        return Err(ObserveError::Unreachable(failures.join("; ")));
    };
    let first_leader = leaders.first().copied().flatten();
    snapshot.leader_disagreement = leaders.iter().any(|l| *l != first_leader);
    snapshot.leader = if snapshot.leader_disagreement {
        None
    } else {
        first_leader
    };
    let node = topology.rest_endpoint(primary);
    for collection in api.list_collections(&node).await? {
        let info = match api.collection_cluster(&node, &collection).await {
            Ok(info) => info,
            // Deleted between the two calls.
            Err(ClusterApiError::Status { status: 404, .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut placement = Placement {
            transfers: info.shard_transfers,
            ..Placement::default()
        };
        for local in info.local_shards {
            placement
                .shards
                .entry(local.shard_id)
                .or_default()
                .insert(info.peer_id, local.state);
        }
        for remote in info.remote_shards {
            placement
                .shards
                .entry(remote.shard_id)
                .or_default()
                .insert(remote.peer_id, remote.state);
        }
        snapshot.collections.insert(collection, placement);
    }
    Ok(snapshot)
}
