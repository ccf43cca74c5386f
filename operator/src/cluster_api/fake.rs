//! In-memory Qdrant cluster implementing [`ClusterApi`] with Qdrant's safety rules: a peer that
//! holds shards cannot be removed without force, the last active replica cannot be dropped, a
//! transfer needs an active source and a target without a replica. Transfers can complete at
//! once or after a number of [`FakeCluster::tick`]s. Used by the planner and reconcile tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    ClusterApi, ClusterApiError, ClusterApiProvider, ClusterInfo, CollectionClusterInfo, Connection, LocalShard,
    PeerId, PeerUri, RaftInfo, RemoteShard, ReplicaState, ShardOperation, ShardTransfer,
};

/// A shard transfer in the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeTransfer {
    pub shard_id: u32,
    pub from: PeerId,
    pub to: PeerId,
    /// A move drops the source when done; a replication keeps it.
    pub is_move: bool,
    pub remaining_ticks: u32,
}

/// One collection: shard -> peer -> replica state, plus transfers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeCollection {
    pub shards: BTreeMap<u32, BTreeMap<PeerId, ReplicaState>>,
    pub transfers: Vec<FakeTransfer>,
}

/// The whole fake state (public so tests can arrange and inspect it).
#[derive(Clone, Debug, Default)]
pub struct FakeState {
    pub peers: BTreeMap<PeerId, String>,
    pub leader: Option<PeerId>,
    pub collections: BTreeMap<String, FakeCollection>,
    /// REST base URL -> the peer answering there.
    pub endpoints: BTreeMap<String, PeerId>,
    /// Base URLs that do not answer.
    pub unreachable: BTreeSet<String>,
    /// Ticks a new transfer takes (0: transfers complete immediately).
    pub transfer_ticks: u32,
    /// Every mutating call, as a readable line.
    pub calls: Vec<String>,
    /// Connections handed out by the provider.
    pub connections: Vec<Connection>,
}

/// A cloneable handle to one fake cluster.
#[derive(Clone, Debug, Default)]
pub struct FakeCluster {
    state: Arc<Mutex<FakeState>>,
}

fn bad_request(node: &str, message: String) -> ClusterApiError {
    ClusterApiError::Status {
        node: node.to_string(),
        status: 400,
        message: format!("Bad request: {message}"),
    }
}

fn not_found(node: &str, message: String) -> ClusterApiError {
    ClusterApiError::Status {
        node: node.to_string(),
        status: 404,
        message: format!("Not found: {message}"),
    }
}

impl FakeCluster {
    /// An empty cluster (no peers).
    pub fn new() -> FakeCluster {
        FakeCluster::default()
    }

    /// Locks the state for arranging or inspecting it.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        // A panic while holding the lock only happens inside a failing test.
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Adds a peer answering at `endpoint`; the first peer becomes the leader.
    pub fn add_peer(&self, id: PeerId, uri: &str, endpoint: &str) {
        let mut s = self.state();
        s.peers.insert(id, uri.to_string());
        s.endpoints.insert(endpoint.to_string(), id);
        if s.leader.is_none() {
            s.leader = Some(id);
        }
    }

    /// Creates a collection placing `shards` shards with `replication` replicas each over the
    /// current peers, greedily on the least-loaded peers (ties: lowest id), like Qdrant.
    pub fn create_collection(&self, name: &str, shards: u32, replication: usize) {
        let mut s = self.state();
        let peers: Vec<PeerId> = s.peers.keys().copied().collect();
        let mut load: BTreeMap<PeerId, usize> = peers.iter().map(|p| (*p, 0)).collect();
        let mut collection = FakeCollection::default();
        for shard in 0..shards {
            let mut chosen = BTreeMap::new();
            for _ in 0..replication.min(peers.len()) {
                let Some(peer) = peers
                    .iter()
                    .filter(|p| !chosen.contains_key(*p))
                    .min_by_key(|p| (load.get(p).copied().unwrap_or(0), **p))
                    .copied()
                else {
                    break;
                };
                *load.entry(peer).or_default() += 1;
                chosen.insert(peer, ReplicaState::Active);
            }
            collection.shards.insert(shard, chosen);
        }
        s.collections.insert(name.to_string(), collection);
    }

    /// Advances transfers by one tick, completing those that are due.
    pub fn tick(&self) {
        let mut s = self.state();
        for collection in s.collections.values_mut() {
            let mut done = Vec::new();
            for t in &mut collection.transfers {
                t.remaining_ticks = t.remaining_ticks.saturating_sub(1);
                if t.remaining_ticks == 0 {
                    done.push(t.clone());
                }
            }
            collection.transfers.retain(|t| t.remaining_ticks > 0);
            for t in done {
                if let Some(replicas) = collection.shards.get_mut(&t.shard_id) {
                    replicas.insert(t.to, ReplicaState::Active);
                    if t.is_move {
                        replicas.remove(&t.from);
                    }
                }
            }
        }
    }

    /// `(collection, shard)` pairs without any active replica: data loss in a test.
    pub fn shards_without_active_replica(&self) -> Vec<(String, u32)> {
        let s = self.state();
        s.collections
            .iter()
            .flat_map(|(name, c)| {
                c.shards
                    .iter()
                    .filter(|(_, replicas)| !replicas.values().any(|st| *st == ReplicaState::Active))
                    .map(move |(id, _)| (name.clone(), *id))
            })
            .collect()
    }

    /// Number of replicas each peer holds over all collections.
    pub fn replica_counts(&self) -> BTreeMap<PeerId, usize> {
        let s = self.state();
        let mut counts: BTreeMap<PeerId, usize> = s.peers.keys().map(|p| (*p, 0)).collect();
        for c in s.collections.values() {
            for replicas in c.shards.values() {
                for peer in replicas.keys() {
                    *counts.entry(*peer).or_default() += 1;
                }
            }
        }
        counts
    }

    fn peer_at(s: &FakeState, node: &str) -> Result<PeerId, ClusterApiError> {
        if s.unreachable.contains(node) {
            return Err(ClusterApiError::Unreachable {
                node: node.to_string(),
                message: "connection refused".to_string(),
            });
        }
        s.endpoints
            .get(node)
            .copied()
            .filter(|p| s.peers.contains_key(p))
            .ok_or_else(|| ClusterApiError::Unreachable {
                node: node.to_string(),
                message: "no peer answers at this address".to_string(),
            })
    }

    fn start_transfer(
        s: &mut FakeState,
        node: &str,
        collection: &str,
        shard_id: u32,
        from: PeerId,
        to: PeerId,
        is_move: bool,
    ) -> Result<(), ClusterApiError> {
        if !s.peers.contains_key(&to) {
            return Err(bad_request(node, format!("peer {to} does not exist")));
        }
        let ticks = s.transfer_ticks;
        let c = s
            .collections
            .get_mut(collection)
            .ok_or_else(|| not_found(node, format!("Collection `{collection}` doesn't exist!")))?;
        if c.transfers.iter().any(|t| t.shard_id == shard_id) {
            return Err(bad_request(
                node,
                format!("shard {shard_id} is already being transferred"),
            ));
        }
        let replicas = c
            .shards
            .get_mut(&shard_id)
            .ok_or_else(|| bad_request(node, format!("shard {shard_id} does not exist")))?;
        if replicas.get(&from) != Some(&ReplicaState::Active) {
            return Err(bad_request(
                node,
                format!("shard {shard_id} has no active replica on peer {from}"),
            ));
        }
        if replicas.contains_key(&to) {
            return Err(bad_request(
                node,
                format!("shard {shard_id} already has a replica on peer {to}"),
            ));
        }
        if ticks == 0 {
            replicas.insert(to, ReplicaState::Active);
            if is_move {
                replicas.remove(&from);
            }
        } else {
            replicas.insert(to, ReplicaState::Partial);
            c.transfers.push(FakeTransfer {
                shard_id,
                from,
                to,
                is_move,
                remaining_ticks: ticks,
            });
        }
        Ok(())
    }
}

impl ClusterApi for FakeCluster {
    async fn cluster_info(&self, node: &str) -> Result<ClusterInfo, ClusterApiError> {
        let s = self.state();
        let me = Self::peer_at(&s, node)?;
        Ok(ClusterInfo {
            status: "enabled".to_string(),
            peer_id: Some(me),
            peers: s
                .peers
                .iter()
                .map(|(id, uri)| (id.to_string(), PeerUri { uri: uri.clone() }))
                .collect(),
            raft_info: Some(RaftInfo {
                term: 1,
                commit: s.calls.len() as u64,
                pending_operations: 0,
                leader: s.leader,
                role: Some(if s.leader == Some(me) { "Leader" } else { "Follower" }.to_string()),
                is_voter: true,
            }),
        })
    }

    async fn list_collections(&self, node: &str) -> Result<Vec<String>, ClusterApiError> {
        let s = self.state();
        Self::peer_at(&s, node)?;
        Ok(s.collections.keys().cloned().collect())
    }

    async fn collection_cluster(&self, node: &str, collection: &str) -> Result<CollectionClusterInfo, ClusterApiError> {
        let s = self.state();
        let me = Self::peer_at(&s, node)?;
        let c = s
            .collections
            .get(collection)
            .ok_or_else(|| not_found(node, format!("Collection `{collection}` doesn't exist!")))?;
        let mut info = CollectionClusterInfo {
            peer_id: me,
            shard_count: c.shards.len() as u32,
            local_shards: Vec::new(),
            remote_shards: Vec::new(),
            shard_transfers: c
                .transfers
                .iter()
                .map(|t| ShardTransfer {
                    shard_id: t.shard_id,
                    from: t.from,
                    to: t.to,
                    sync: false,
                })
                .collect(),
        };
        for (shard_id, replicas) in &c.shards {
            for (peer, state) in replicas {
                if *peer == me {
                    info.local_shards.push(LocalShard {
                        shard_id: *shard_id,
                        points_count: 0,
                        state: *state,
                    });
                } else {
                    info.remote_shards.push(RemoteShard {
                        shard_id: *shard_id,
                        peer_id: *peer,
                        state: *state,
                    });
                }
            }
        }
        Ok(info)
    }

    async fn update_collection_cluster(
        &self,
        node: &str,
        collection: &str,
        operation: &ShardOperation,
    ) -> Result<(), ClusterApiError> {
        let mut s = self.state();
        Self::peer_at(&s, node)?;
        s.calls.push(format!(
            "{collection}: {}",
            serde_json::to_string(operation).unwrap_or_default()
        ));
        match operation {
            ShardOperation::MoveShard(t) => {
                Self::start_transfer(&mut s, node, collection, t.shard_id, t.from_peer_id, t.to_peer_id, true)
            }
            ShardOperation::ReplicateShard(t) => Self::start_transfer(
                &mut s,
                node,
                collection,
                t.shard_id,
                t.from_peer_id,
                t.to_peer_id,
                false,
            ),
            ShardOperation::DropReplica(d) => {
                let c = s
                    .collections
                    .get_mut(collection)
                    .ok_or_else(|| not_found(node, format!("Collection `{collection}` doesn't exist!")))?;
                let replicas = c
                    .shards
                    .get_mut(&d.shard_id)
                    .ok_or_else(|| bad_request(node, format!("shard {} does not exist", d.shard_id)))?;
                if !replicas.contains_key(&d.peer_id) {
                    return Err(bad_request(
                        node,
                        format!("shard {} has no replica on peer {}", d.shard_id, d.peer_id),
                    ));
                }
                let other_active = replicas
                    .iter()
                    .any(|(p, st)| *p != d.peer_id && *st == ReplicaState::Active);
                if !other_active {
                    return Err(bad_request(
                        node,
                        format!("cannot drop the last active replica of shard {}", d.shard_id),
                    ));
                }
                replicas.remove(&d.peer_id);
                Ok(())
            }
        }
    }

    async fn remove_peer(&self, node: &str, peer: PeerId) -> Result<(), ClusterApiError> {
        let mut s = self.state();
        Self::peer_at(&s, node)?;
        s.calls.push(format!("remove_peer {peer}"));
        if !s.peers.contains_key(&peer) {
            return Err(not_found(node, format!("peer {peer} does not exist")));
        }
        let holds_shards = s
            .collections
            .values()
            .any(|c| c.shards.values().any(|r| r.contains_key(&peer)));
        if holds_shards {
            return Err(bad_request(
                node,
                format!("Cannot remove peer {peer} as there are shards on it"),
            ));
        }
        s.peers.remove(&peer);
        if s.leader == Some(peer) {
            s.leader = s.peers.keys().next().copied();
        }
        Ok(())
    }
}

impl ClusterApiProvider for FakeCluster {
    type Api = FakeCluster;
    fn connect(&self, connection: &Connection) -> Result<FakeCluster, ClusterApiError> {
        self.state().connections.push(connection.clone());
        Ok(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DropReplicaRequest, ShardTransferRequest};
    use super::*;

    fn three_peers() -> FakeCluster {
        let fake = FakeCluster::new();
        for id in 1..=3 {
            fake.add_peer(id, &format!("http://p{id}:6335"), &format!("http://n{id}"));
        }
        fake
    }

    #[tokio::test]
    async fn refuses_unsafe_operations_like_qdrant() {
        let fake = three_peers();
        fake.create_collection("c", 3, 1);
        // Peer 1 holds shard 0 only.
        let err = fake.remove_peer("http://n2", 1).await.expect_err("holds shards");
        assert!(err.to_string().contains("Cannot remove peer 1"), "{err}");
        let drop = ShardOperation::DropReplica(DropReplicaRequest {
            shard_id: 0,
            peer_id: 1,
        });
        let err = fake
            .update_collection_cluster("http://n2", "c", &drop)
            .await
            .expect_err("last replica");
        assert!(err.to_string().contains("last active replica"), "{err}");
        let mv = ShardOperation::MoveShard(ShardTransferRequest {
            shard_id: 0,
            from_peer_id: 1,
            to_peer_id: 2,
        });
        fake.update_collection_cluster("http://n2", "c", &mv)
            .await
            .expect("move");
        fake.remove_peer("http://n2", 1).await.expect("now empty");
        assert!(fake.shards_without_active_replica().is_empty());
        assert_eq!(fake.state().leader, Some(2));
    }

    #[tokio::test]
    async fn slow_transfers_show_up_until_done() {
        let fake = three_peers();
        fake.state().transfer_ticks = 2;
        fake.create_collection("c", 1, 1);
        let mv = ShardOperation::ReplicateShard(ShardTransferRequest {
            shard_id: 0,
            from_peer_id: 1,
            to_peer_id: 3,
        });
        fake.update_collection_cluster("http://n1", "c", &mv)
            .await
            .expect("replicate");
        let info = fake.collection_cluster("http://n3", "c").await.expect("info");
        assert_eq!(info.shard_transfers.len(), 1);
        assert_eq!(info.local_shards[0].state, ReplicaState::Partial);
        fake.tick();
        fake.tick();
        let info = fake.collection_cluster("http://n3", "c").await.expect("info");
        assert!(info.shard_transfers.is_empty());
        assert_eq!(info.local_shards[0].state, ReplicaState::Active);
        assert_eq!(info.remote_shards.len(), 1, "replication keeps the source");
    }
}
