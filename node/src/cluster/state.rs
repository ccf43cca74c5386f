//! The replicated cluster state as a pure value, the operations that change it (Raft log
//! entries), and shard placement. Nothing here does I/O: `apply` is deterministic, so every peer
//! that applies the same log reaches the same state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::alias::{AliasAction, AliasTable};
use crate::model::cluster::TransferMethod;
use crate::model::collection::CollectionConfig;

pub type PeerId = u64;
pub type ShardId = u32;

/// A replica's state, with Qdrant's JSON names.
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
}

impl ReplicaState {
    /// Serves reads.
    pub fn is_readable(self) -> bool {
        matches!(
            self,
            ReplicaState::Active | ReplicaState::ActiveRead | ReplicaState::ReshardingScaleDown
        )
    }

    /// Receives writes.
    pub fn is_updatable(self) -> bool {
        matches!(
            self,
            ReplicaState::Active
                | ReplicaState::Partial
                | ReplicaState::Initializing
                | ReplicaState::Listener
                | ReplicaState::Resharding
                | ReplicaState::ReshardingScaleDown
                | ReplicaState::ActiveRead
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub uri: String,
}

/// Replicas of one shard: which peer holds it, in which state.
pub type ShardReplicas = BTreeMap<PeerId, ReplicaState>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionState {
    pub config: CollectionConfig,
    pub shards: BTreeMap<ShardId, ShardReplicas>,
    /// Payload indexes by field name: the schema as given by the user (Qdrant's JSON).
    #[serde(default)]
    pub payload_indexes: BTreeMap<String, Value>,
    /// Distinguishes incarnations of a name: a collection deleted and created again gets a new
    /// generation, so a peer never mistakes its stale local data for the new collection.
    #[serde(default)]
    pub generation: u64,
    /// Per shard, the log index of the last change that added a replica to those receiving its
    /// writes (a new replica, a Dead one turned Partial for a transfer). A replica refuses
    /// writes routed by a peer that has not applied that change yet: such a writer would skip
    /// the added replica (see `Collection::write_shard`).
    #[serde(default)]
    pub write_epochs: BTreeMap<ShardId, u64>,
    /// The transfer method asked for each replica being filled (shard -> peer -> method), until
    /// it is Active or gone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub transfer_methods: BTreeMap<ShardId, BTreeMap<PeerId, TransferMethod>>,
}

impl CollectionState {
    /// The transfer method asked for the replica of `shard` on `peer`, if any.
    pub fn transfer_method(&self, shard: ShardId, peer: PeerId) -> Option<TransferMethod> {
        self.transfer_methods.get(&shard)?.get(&peer).copied()
    }

    /// Forgets the methods of replicas that are filled (Active) or gone.
    fn forget_finished_transfers(&mut self) {
        let shards = &self.shards;
        self.transfer_methods.retain(|shard, peers| {
            peers.retain(|peer, _| {
                shards
                    .get(shard)
                    .and_then(|r| r.get(peer))
                    .is_some_and(|s| *s != ReplicaState::Active)
            });
            !peers.is_empty()
        });
    }

    /// The write fence of `shard`: writes routed by a state older than this are refused.
    pub fn write_epoch(&self, shard: ShardId) -> u64 {
        self.write_epochs.get(&shard).copied().unwrap_or(0)
    }

    /// The peers receiving writes of each shard.
    fn write_sets(&self) -> BTreeMap<ShardId, BTreeSet<PeerId>> {
        self.shards
            .iter()
            .map(|(shard, replicas)| {
                let peers = replicas
                    .iter()
                    .filter(|(_, s)| s.is_updatable())
                    .map(|(p, _)| *p)
                    .collect();
                (*shard, peers)
            })
            .collect()
    }
}

/// Everything consensus decides: who the peers are and what should exist where.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub peers: BTreeMap<PeerId, PeerInfo>,
    pub collections: BTreeMap<String, CollectionState>,
    /// How many collections were ever created (the source of their generations).
    #[serde(default)]
    pub collections_created: u64,
    #[serde(default)]
    pub aliases: AliasTable,
}

/// The applied cluster state together with the log index it reflects (what the state machine
/// publishes after every applied batch).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppliedState {
    pub index: u64,
    pub state: ClusterState,
}

impl std::ops::Deref for AppliedState {
    type Target = ClusterState;
    fn deref(&self) -> &ClusterState {
        &self.state
    }
}

/// One Raft log entry's worth of change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterOp {
    /// Registers (or re-addresses) a peer.
    AddPeer {
        peer_id: PeerId,
        uri: String,
    },
    /// Forgets a peer. Refused while it holds replicas unless `force`, which drops them.
    RemovePeer {
        peer_id: PeerId,
        force: bool,
    },
    /// Creates a collection with the placement chosen by the proposer (see [`placement`]).
    CreateCollection {
        name: String,
        config: CollectionConfig,
        placement: BTreeMap<ShardId, Vec<PeerId>>,
        /// State of the new replicas; `Active` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init_state: Option<ReplicaState>,
    },
    DeleteCollection {
        name: String,
    },
    /// Alias changes, applied all or nothing.
    ChangeAliases {
        actions: Vec<AliasAction>,
    },
    UpdateCollection {
        name: String,
        config: CollectionConfig,
    },
    CreatePayloadIndex {
        collection: String,
        field: String,
        schema: Value,
    },
    DropPayloadIndex {
        collection: String,
        field: String,
    },
    /// Adds an empty replica (state Dead: it needs a transfer) on a peer that holds none of
    /// this shard; its peer fills it from an Active replica (`replicate_shard`, `move_shard`).
    AddReplica {
        collection: String,
        shard: ShardId,
        peer: PeerId,
        /// How the new replica is to be filled (`None`: its peer chooses).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<TransferMethod>,
    },
    /// Removes a replica; refused when it is the shard's last Active one.
    RemoveReplica {
        collection: String,
        shard: ShardId,
        peer: PeerId,
    },
    /// Sets one replica's state. With `from_state`, only if the replica is currently in it;
    /// without, also adds a replica that does not exist yet (e.g. the target of a transfer).
    SetReplicaState {
        collection: String,
        shard: ShardId,
        peer: PeerId,
        state: ReplicaState,
        #[serde(default)]
        from_state: Option<ReplicaState>,
        /// Only while the replica on this peer is Active: the source a transfer copied from,
        /// when the copy's target announces itself Active. A source marked Dead meanwhile
        /// (it missed an acknowledged write) may have served a copy without that write.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_active: Option<PeerId>,
    },
}

impl ClusterOp {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClusterOp::AddPeer { .. } => "add_peer",
            ClusterOp::RemovePeer { .. } => "remove_peer",
            ClusterOp::CreateCollection { .. } => "create_collection",
            ClusterOp::DeleteCollection { .. } => "delete_collection",
            ClusterOp::ChangeAliases { .. } => "change_aliases",
            ClusterOp::UpdateCollection { .. } => "update_collection",
            ClusterOp::CreatePayloadIndex { .. } => "create_payload_index",
            ClusterOp::DropPayloadIndex { .. } => "drop_payload_index",
            ClusterOp::SetReplicaState { .. } => "set_replica_state",
            ClusterOp::AddReplica { .. } => "add_replica",
            ClusterOp::RemoveReplica { .. } => "remove_replica",
        }
    }
}

/// Qdrant's refusal of a collection named like an alias.
pub fn alias_taken(name: &str) -> Error {
    Error::bad_input(format!(
        "Can't create collection with name {name}. Alias with the same name already exists"
    ))
}

fn collection_not_found(name: &str) -> Error {
    Error::not_found(format!("Collection `{name}` doesn't exist!"))
}

impl ClusterState {
    /// Applies one operation. On error the state is unchanged (every check runs before the first
    /// mutation), so a refused entry is a no-op on every peer.
    /// [`ClusterState::apply`] for the log entry at `index`, moving the write epoch of every
    /// shard whose set of write receivers gained a peer.
    pub fn apply_at(&mut self, op: &ClusterOp, index: u64) -> Result<()> {
        let before: BTreeMap<String, BTreeMap<ShardId, BTreeSet<PeerId>>> = self
            .collections
            .iter()
            .map(|(name, c)| (name.clone(), c.write_sets()))
            .collect();
        self.apply(op)?;
        for (name, c) in self.collections.iter_mut() {
            c.forget_finished_transfers();
            let old = before.get(name);
            for (shard, peers) in c.write_sets() {
                let had = old.and_then(|o| o.get(&shard));
                if had.is_some_and(|h| !peers.is_subset(h)) {
                    c.write_epochs.insert(shard, index);
                }
            }
        }
        Ok(())
    }

    pub fn apply(&mut self, op: &ClusterOp) -> Result<()> {
        match op {
            ClusterOp::AddPeer { peer_id, uri } => {
                self.peers.insert(*peer_id, PeerInfo { uri: uri.clone() });
                Ok(())
            }
            ClusterOp::RemovePeer { peer_id, force } => {
                let holds_replicas = self.peer_replica_count(*peer_id) > 0;
                if holds_replicas && !force {
                    return Err(Error::BadRequest(format!(
                        "Cannot remove peer {peer_id} as there are shards on it"
                    )));
                }
                for collection in self.collections.values_mut() {
                    for replicas in collection.shards.values_mut() {
                        replicas.remove(peer_id);
                    }
                }
                self.peers.remove(peer_id);
                Ok(())
            }
            ClusterOp::CreateCollection {
                name,
                config,
                placement,
                init_state,
            } => {
                if self.collections.contains_key(name) {
                    return Err(Error::AlreadyExists(format!("Collection `{name}` already exists!")));
                }
                if self.aliases.contains(name) {
                    return Err(alias_taken(name));
                }
                validate_placement(placement, config.params.shard_number, &self.peers)?;
                let state = init_state.unwrap_or(ReplicaState::Active);
                let shards = placement
                    .iter()
                    .map(|(shard, peers)| (*shard, peers.iter().map(|p| (*p, state)).collect()))
                    .collect();
                self.collections_created += 1;
                self.collections.insert(
                    name.clone(),
                    CollectionState {
                        config: config.clone(),
                        shards,
                        payload_indexes: BTreeMap::new(),
                        generation: self.collections_created,
                        write_epochs: BTreeMap::new(),
                        transfer_methods: BTreeMap::new(),
                    },
                );
                Ok(())
            }
            ClusterOp::DeleteCollection { name } => match self.collections.remove(name) {
                Some(_) => {
                    self.aliases.remove_collection(name);
                    Ok(())
                }
                None => Err(collection_not_found(name)),
            },
            ClusterOp::ChangeAliases { actions } => {
                let collections = &self.collections;
                self.aliases = self.aliases.apply(actions, &|name| collections.contains_key(name))?;
                Ok(())
            }
            ClusterOp::UpdateCollection { name, config } => {
                let collection = self
                    .collections
                    .get_mut(name)
                    .ok_or_else(|| collection_not_found(name))?;
                collection.config = config.clone();
                Ok(())
            }
            ClusterOp::CreatePayloadIndex {
                collection,
                field,
                schema,
            } => {
                let c = self
                    .collections
                    .get_mut(collection)
                    .ok_or_else(|| collection_not_found(collection))?;
                c.payload_indexes.insert(field.clone(), schema.clone());
                Ok(())
            }
            ClusterOp::DropPayloadIndex { collection, field } => {
                let c = self
                    .collections
                    .get_mut(collection)
                    .ok_or_else(|| collection_not_found(collection))?;
                c.payload_indexes.remove(field);
                Ok(())
            }
            ClusterOp::AddReplica {
                collection,
                shard,
                peer,
                method,
            } => {
                if !self.peers.contains_key(peer) {
                    return Err(Error::BadRequest(format!("Peer {peer} does not exist")));
                }
                let replicas = self.replicas_mut(collection, *shard)?;
                if replicas.contains_key(peer) {
                    return Err(Error::BadRequest(format!(
                        "Shard {shard} of collection `{collection}` already has a replica on peer {peer}"
                    )));
                }
                replicas.insert(*peer, ReplicaState::Dead);
                if let (Some(method), Some(c)) = (method, self.collections.get_mut(collection)) {
                    c.transfer_methods.entry(*shard).or_default().insert(*peer, *method);
                }
                Ok(())
            }
            ClusterOp::RemoveReplica {
                collection,
                shard,
                peer,
            } => {
                let replicas = self.replicas_mut(collection, *shard)?;
                let Some(state) = replicas.get(peer).copied() else {
                    return Err(Error::BadRequest(format!(
                        "Shard {shard} of collection `{collection}` has no replica on peer {peer}"
                    )));
                };
                let other_active = replicas.iter().any(|(p, s)| p != peer && *s == ReplicaState::Active);
                if state == ReplicaState::Active && !other_active {
                    return Err(Error::BadRequest(format!(
                        "Cannot remove the last active replica of shard {shard} of collection `{collection}` (on peer {peer})"
                    )));
                }
                replicas.remove(peer);
                Ok(())
            }
            ClusterOp::SetReplicaState {
                collection,
                shard,
                peer,
                state,
                from_state,
                source_active,
            } => {
                if !self.peers.contains_key(peer) {
                    return Err(Error::BadRequest(format!("Peer {peer} is not part of the cluster")));
                }
                let c = self
                    .collections
                    .get_mut(collection)
                    .ok_or_else(|| collection_not_found(collection))?;
                let replicas = c.shards.get_mut(shard).ok_or_else(|| {
                    Error::not_found(format!("Shard {shard} of collection `{collection}` doesn't exist"))
                })?;
                if let Some(expected) = from_state {
                    match replicas.get(peer) {
                        Some(current) if current == expected => {}
                        Some(current) => {
                            return Err(Error::BadRequest(format!(
                                "Replica of shard {shard} on peer {peer} is {current:?}, expected {expected:?}"
                            )))
                        }
                        None => {
                            return Err(Error::BadRequest(format!(
                                "Shard {shard} of collection `{collection}` has no replica on peer {peer}"
                            )))
                        }
                    }
                }
                // A shard keeps one Active replica at least (as Qdrant): with none, no replica
                // could be recovered from and the shard would stay unavailable for good. A write
                // that failed on the last one is refused instead (see `mark_dead_through`).
                let was_active = replicas.get(peer) == Some(&ReplicaState::Active);
                let other_active = replicas.iter().any(|(p, s)| p != peer && *s == ReplicaState::Active);
                if was_active && *state != ReplicaState::Active && !other_active {
                    return Err(Error::BadInput(format!(
                        "Cannot deactivate the last active replica {peer} of shard {shard} of collection `{collection}`"
                    )));
                }
                if let Some(source) = source_active {
                    let source_state = replicas.get(source).copied().unwrap_or(ReplicaState::Dead);
                    if source_state != ReplicaState::Active {
                        return Err(Error::BadRequest(format!(
                            "The transfer source of shard {shard} (peer {source}) is {source_state:?}, no longer Active"
                        )));
                    }
                }
                replicas.insert(*peer, *state);
                Ok(())
            }
        }
    }

    fn replicas_mut(&mut self, collection: &str, shard: ShardId) -> Result<&mut ShardReplicas> {
        let c = self
            .collections
            .get_mut(collection)
            .ok_or_else(|| collection_not_found(collection))?;
        c.shards
            .get_mut(&shard)
            .ok_or_else(|| Error::BadRequest(format!("Shard {shard} of collection `{collection}` does not exist")))
    }

    /// How many replicas (over all collections and shards) live on `peer`.
    pub fn peer_replica_count(&self, peer: PeerId) -> usize {
        self.collections
            .values()
            .flat_map(|c| c.shards.values())
            .filter(|replicas| replicas.contains_key(&peer))
            .count()
    }

    pub fn peer_ids(&self) -> Vec<PeerId> {
        self.peers.keys().copied().collect()
    }

    /// Placement for a new collection: as [`placement`], but the peers holding the fewest replicas
    /// come first, so that collections with fewer shards than peers do not pile up on one peer.
    pub fn placement_for(&self, shard_number: u32, replication_factor: u32) -> BTreeMap<ShardId, Vec<PeerId>> {
        let mut ordered: Vec<PeerId> = self.peers.keys().copied().collect();
        ordered.sort_by_key(|p| (self.peer_replica_count(*p), *p));
        spread(&ordered, shard_number, replication_factor)
    }

    /// The peer registered with `uri`, if any.
    pub fn peer_by_uri(&self, uri: &str) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|(_, info)| same_uri(&info.uri, uri))
            .map(|(id, _)| *id)
    }
}

/// Two URIs name the same peer (ignoring a trailing slash and the scheme/host case).
pub fn same_uri(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

fn validate_placement(
    placement: &BTreeMap<ShardId, Vec<PeerId>>,
    shard_number: u32,
    peers: &BTreeMap<PeerId, PeerInfo>,
) -> Result<()> {
    if shard_number == 0 {
        return Err(Error::validation("shard_number: value 0 invalid, must be 1 or larger"));
    }
    let expected: BTreeSet<ShardId> = (0..shard_number).collect();
    let given: BTreeSet<ShardId> = placement.keys().copied().collect();
    if expected != given {
        return Err(Error::bad_input(format!(
            "placement must name shards 0..{shard_number}, got {:?}",
            given
        )));
    }
    for (shard, replicas) in placement {
        if replicas.is_empty() {
            return Err(Error::bad_input(format!("placement of shard {shard} is empty")));
        }
        let distinct: BTreeSet<&PeerId> = replicas.iter().collect();
        if distinct.len() != replicas.len() {
            return Err(Error::bad_input(format!(
                "placement of shard {shard} names a peer twice"
            )));
        }
        if let Some(unknown) = replicas.iter().find(|p| !peers.contains_key(p)) {
            return Err(Error::bad_input(format!(
                "placement of shard {shard} names peer {unknown}, which is not part of the cluster"
            )));
        }
    }
    Ok(())
}

/// Spreads `shard_number` shards with `replication_factor` replicas each (capped at the number of
/// peers) evenly over `peers`: replica `r` of shard `s` goes to the `(s * rf + r) mod n`-th peer in
/// ascending id order. Every peer gets the same number of replicas give or take one, no shard
/// has two replicas on one peer, and the result depends only on the arguments.
pub fn placement(peers: &[PeerId], shard_number: u32, replication_factor: u32) -> BTreeMap<ShardId, Vec<PeerId>> {
    let mut sorted: Vec<PeerId> = peers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    spread(&sorted, shard_number, replication_factor)
}

/// Replica `r` of shard `s` on the `(s * rf + r) mod n`-th of `ordered` (distinct peers).
fn spread(ordered: &[PeerId], shard_number: u32, replication_factor: u32) -> BTreeMap<ShardId, Vec<PeerId>> {
    let sorted = ordered;
    let n = sorted.len();
    if n == 0 {
        return BTreeMap::new();
    }
    let rf = (replication_factor.max(1) as usize).min(n);
    (0..shard_number)
        .map(|shard| {
            let start = shard as usize * rf;
            let replicas = (0..rf).map(|r| sorted[(start + r) % n]).collect();
            (shard, replicas)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::collection::CreateCollection;
    use crate::settings::Settings;

    fn config(shards: u32) -> CollectionConfig {
        let req: CreateCollection = serde_json::from_value(
            serde_json::json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": shards}),
        )
        .unwrap();
        req.into_config(&Settings::default(), 1).unwrap()
    }

    fn three_peers() -> ClusterState {
        let mut s = ClusterState::default();
        for id in [10, 20, 30] {
            s.apply(&ClusterOp::AddPeer {
                peer_id: id,
                uri: format!("http://127.0.0.1:{id}"),
            })
            .unwrap();
        }
        s
    }

    fn create(name: &str, shards: u32, rf: u32, s: &ClusterState) -> ClusterOp {
        ClusterOp::CreateCollection {
            name: name.into(),
            config: config(shards),
            placement: placement(&s.peer_ids(), shards, rf),
            init_state: None,
        }
    }

    #[test]
    fn a_replica_joining_the_write_set_moves_the_shard_write_epoch() {
        let mut s = ClusterState::default();
        for p in [1, 2] {
            s.apply_at(
                &ClusterOp::AddPeer {
                    peer_id: p,
                    uri: format!("http://p{p}"),
                },
                p,
            )
            .unwrap();
        }
        s.apply_at(&create("c", 1, 2, &s.clone()), 3).unwrap();
        assert_eq!(
            s.collections["c"].write_epoch(0),
            0,
            "creation is no change of a write set"
        );
        let set = |state, from| ClusterOp::SetReplicaState {
            collection: "c".into(),
            shard: 0,
            peer: 2,
            state,
            from_state: Some(from),
            source_active: None,
        };
        s.apply_at(&set(ReplicaState::Dead, ReplicaState::Active), 4).unwrap();
        assert_eq!(s.collections["c"].write_epoch(0), 0, "losing a receiver needs no fence");
        s.apply_at(&set(ReplicaState::Partial, ReplicaState::Dead), 5).unwrap();
        assert_eq!(s.collections["c"].write_epoch(0), 5);
        s.apply_at(&set(ReplicaState::Active, ReplicaState::Partial), 6)
            .unwrap();
        assert_eq!(s.collections["c"].write_epoch(0), 5, "activation keeps the receivers");
        assert!(s.apply_at(&set(ReplicaState::Active, ReplicaState::Dead), 7).is_err());
        assert_eq!(s.collections["c"].write_epoch(0), 5);
    }

    #[test]
    fn placement_is_even_and_distinct() {
        let peers = [3, 1, 2];
        let p = placement(&peers, 6, 1);
        assert_eq!(p.len(), 6);
        let mut load: BTreeMap<PeerId, usize> = BTreeMap::new();
        for replicas in p.values() {
            for peer in replicas {
                *load.entry(*peer).or_default() += 1;
            }
        }
        assert_eq!(load, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));

        for (shards, rf, n) in [(7u32, 2u32, 3usize), (5, 3, 4), (1, 5, 3), (12, 2, 5), (3, 1, 5)] {
            let ids: Vec<PeerId> = (1..=n as u64).collect();
            let p = placement(&ids, shards, rf);
            let rf_eff = (rf as usize).min(n);
            let mut load = vec![0usize; n];
            for replicas in p.values() {
                assert_eq!(replicas.len(), rf_eff);
                let distinct: BTreeSet<_> = replicas.iter().collect();
                assert_eq!(distinct.len(), replicas.len(), "no peer twice per shard");
                for peer in replicas {
                    load[*peer as usize - 1] += 1;
                }
            }
            let (min, max) = (load.iter().min().unwrap(), load.iter().max().unwrap());
            assert!(max - min <= 1, "uneven {load:?} for {shards}x{rf} on {n}");
        }
    }

    #[test]
    fn placement_for_prefers_least_loaded_peers() {
        let mut s = three_peers();
        for name in ["a", "b", "c"] {
            let op = ClusterOp::CreateCollection {
                name: name.into(),
                config: config(1),
                placement: s.placement_for(1, 1),
                init_state: None,
            };
            s.apply(&op).unwrap();
        }
        for peer in [10, 20, 30] {
            assert_eq!(s.peer_replica_count(peer), 1, "one single-shard collection per peer");
        }
        let p = s.placement_for(6, 1);
        let per_peer = |id| p.values().filter(|r| r.contains(&id)).count();
        assert_eq!((per_peer(10), per_peer(20), per_peer(30)), (2, 2, 2));
    }

    #[test]
    fn placement_is_deterministic() {
        assert_eq!(placement(&[5, 9, 7], 6, 2), placement(&[9, 7, 5, 5], 6, 2));
        assert_eq!(placement(&[], 3, 1), BTreeMap::new());
        assert_eq!(placement(&[1], 2, 0), BTreeMap::from([(0, vec![1]), (1, vec![1])]));
    }

    #[test]
    fn create_delete_and_conflicts() {
        let mut s = three_peers();
        let op = create("c", 6, 1, &s);
        s.apply(&op).unwrap();
        assert_eq!(s.collections["c"].shards.len(), 6);
        assert_eq!(s.peer_replica_count(10), 2);
        let before = s.clone();
        assert!(matches!(s.apply(&op), Err(Error::AlreadyExists(_))));
        assert_eq!(s, before, "a refused op changes nothing");
        assert!(matches!(
            s.apply(&ClusterOp::DeleteCollection { name: "nope".into() }),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            s.apply(&ClusterOp::UpdateCollection {
                name: "nope".into(),
                config: config(1)
            }),
            Err(Error::NotFound(_))
        ));
        s.apply(&ClusterOp::DeleteCollection { name: "c".into() }).unwrap();
        assert!(s.collections.is_empty());
    }

    #[test]
    fn create_validates_placement() {
        let mut s = three_peers();
        let bad_peer = ClusterOp::CreateCollection {
            name: "c".into(),
            config: config(1),
            placement: BTreeMap::from([(0, vec![99])]),
            init_state: None,
        };
        assert!(matches!(s.apply(&bad_peer), Err(Error::BadInput(_))));
        let missing_shard = ClusterOp::CreateCollection {
            name: "c".into(),
            config: config(2),
            placement: BTreeMap::from([(0, vec![10])]),
            init_state: None,
        };
        assert!(s.apply(&missing_shard).is_err());
        assert!(s.collections.is_empty());
    }

    #[test]
    fn payload_indexes_and_updates() {
        let mut s = three_peers();
        s.apply(&create("c", 3, 1, &s.clone())).unwrap();
        let schema = serde_json::json!("keyword");
        s.apply(&ClusterOp::CreatePayloadIndex {
            collection: "c".into(),
            field: "city".into(),
            schema: schema.clone(),
        })
        .unwrap();
        assert_eq!(s.collections["c"].payload_indexes["city"], schema);
        s.apply(&ClusterOp::DropPayloadIndex {
            collection: "c".into(),
            field: "city".into(),
        })
        .unwrap();
        assert!(s.collections["c"].payload_indexes.is_empty());
        let mut next = config(3);
        next.params.replication_factor = 3;
        s.apply(&ClusterOp::UpdateCollection {
            name: "c".into(),
            config: next.clone(),
        })
        .unwrap();
        assert_eq!(s.collections["c"].config, next);
        assert!(matches!(
            s.apply(&ClusterOp::CreatePayloadIndex {
                collection: "x".into(),
                field: "f".into(),
                schema
            }),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn replica_state_changes_check_from_state() {
        let mut s = three_peers();
        s.apply(&create("c", 3, 1, &s.clone())).unwrap();
        let holder = *s.collections["c"].shards[&0].keys().next().unwrap();
        let set = |state, from_state| ClusterOp::SetReplicaState {
            collection: "c".into(),
            shard: 0,
            peer: holder,
            state,
            from_state,
            source_active: None,
        };
        assert!(s.apply(&set(ReplicaState::Dead, Some(ReplicaState::Partial))).is_err());
        // The shard's only Active replica stays Active.
        let err = s
            .apply(&set(ReplicaState::Dead, Some(ReplicaState::Active)))
            .unwrap_err();
        assert!(
            matches!(&err, Error::BadInput(m) if m.contains("last active replica")),
            "{err}"
        );
        assert_eq!(s.collections["c"].shards[&0][&holder], ReplicaState::Active);
        // A new replica (no from_state) on another peer.
        let other = [10, 20, 30].into_iter().find(|p| *p != holder).unwrap();
        s.apply(&ClusterOp::SetReplicaState {
            collection: "c".into(),
            shard: 0,
            peer: other,
            state: ReplicaState::Partial,
            from_state: None,
            source_active: None,
        })
        .unwrap();
        assert_eq!(s.collections["c"].shards[&0].len(), 2);
        assert!(matches!(
            s.apply(&ClusterOp::SetReplicaState {
                collection: "c".into(),
                shard: 9,
                peer: other,
                state: ReplicaState::Active,
                from_state: None,
                source_active: None,
            }),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn the_last_active_replica_of_a_shard_is_never_deactivated() {
        let mut s = three_peers();
        s.apply(&create("c", 1, 3, &s.clone())).unwrap();
        let peers: Vec<PeerId> = s.collections["c"].shards[&0].keys().copied().collect();
        let set = |peer, state, from| ClusterOp::SetReplicaState {
            collection: "c".into(),
            shard: 0,
            peer,
            state,
            from_state: Some(from),
            source_active: None,
        };
        s.apply(&set(peers[0], ReplicaState::Dead, ReplicaState::Active))
            .unwrap();
        s.apply(&set(peers[1], ReplicaState::Dead, ReplicaState::Active))
            .unwrap();
        // peers[0] is being refilled (Partial): it does not count as Active.
        s.apply(&set(peers[0], ReplicaState::Partial, ReplicaState::Dead))
            .unwrap();
        for state in [ReplicaState::Dead, ReplicaState::Partial] {
            let err = s.apply(&set(peers[2], state, ReplicaState::Active)).unwrap_err();
            assert!(
                matches!(&err, Error::BadInput(m) if m.contains("last active replica")),
                "{err}"
            );
        }
        assert_eq!(s.collections["c"].shards[&0][&peers[2]], ReplicaState::Active);
        // Once another replica is Active again, it may go.
        s.apply(&set(peers[0], ReplicaState::Active, ReplicaState::Partial))
            .unwrap();
        s.apply(&set(peers[2], ReplicaState::Dead, ReplicaState::Active))
            .unwrap();
        let err = s
            .apply(&set(peers[0], ReplicaState::Dead, ReplicaState::Active))
            .unwrap_err();
        assert!(err.to_string().contains("last active replica"), "{err}");
    }

    #[test]
    fn a_transfer_target_turns_active_only_while_its_source_is() {
        let mut s = three_peers();
        // Three replicas: the third stays Active, so the source may be marked Dead.
        s.apply(&create("c", 1, 3, &s.clone())).unwrap();
        let mut holders = s.collections["c"].shards[&0].keys().copied();
        let (source, target) = (holders.next().unwrap(), holders.next().unwrap());
        let set = |peer, state, from| ClusterOp::SetReplicaState {
            collection: "c".into(),
            shard: 0,
            peer,
            state,
            from_state: Some(from),
            source_active: (peer == target && state == ReplicaState::Active).then_some(source),
        };
        s.apply(&set(target, ReplicaState::Dead, ReplicaState::Active)).unwrap();
        s.apply(&set(target, ReplicaState::Partial, ReplicaState::Dead))
            .unwrap();
        // The source missed a write while the copy ran: the copy may lack it.
        s.apply(&set(source, ReplicaState::Dead, ReplicaState::Active)).unwrap();
        assert!(matches!(
            s.apply(&set(target, ReplicaState::Active, ReplicaState::Partial)),
            Err(Error::BadRequest(_))
        ));
        assert_eq!(s.collections["c"].shards[&0][&target], ReplicaState::Partial);
        // With its source Active, the target may turn Active.
        s.apply(&set(source, ReplicaState::Active, ReplicaState::Dead)).unwrap();
        s.apply(&set(target, ReplicaState::Active, ReplicaState::Partial))
            .unwrap();
        assert_eq!(s.collections["c"].shards[&0][&target], ReplicaState::Active);
    }

    #[test]
    fn add_and_remove_replicas() {
        let mut s = three_peers();
        s.apply(&create("c", 1, 1, &s.clone())).unwrap();
        let holder = *s.collections["c"].shards[&0].keys().next().unwrap();
        let other = [10, 20, 30].into_iter().find(|p| *p != holder).unwrap();
        let add = |peer| ClusterOp::AddReplica {
            collection: "c".into(),
            shard: 0,
            peer,
            method: None,
        };
        let remove = |peer| ClusterOp::RemoveReplica {
            collection: "c".into(),
            shard: 0,
            peer,
        };
        assert!(s.apply(&add(holder)).is_err(), "a second replica on one peer");
        assert!(s.apply(&add(99)).is_err(), "unknown peer");
        s.apply(&add(other)).unwrap();
        assert_eq!(s.collections["c"].shards[&0][&other], ReplicaState::Dead);
        let err = s.apply(&remove(holder)).unwrap_err();
        assert!(err.to_string().contains("last active replica"), "{err}");
        s.apply(&remove(other)).unwrap();
        assert!(s.apply(&remove(other)).is_err());
        assert!(matches!(
            s.apply(&ClusterOp::AddReplica {
                collection: "c".into(),
                shard: 7,
                peer: other,
                method: None,
            }),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn a_transfer_method_is_kept_until_the_replica_is_filled_or_gone() {
        let mut s = three_peers();
        s.apply(&create("c", 1, 1, &s.clone())).unwrap();
        let holder = *s.collections["c"].shards[&0].keys().next().unwrap();
        let other = [10, 20, 30].into_iter().find(|p| *p != holder).unwrap();
        let add = ClusterOp::AddReplica {
            collection: "c".into(),
            shard: 0,
            peer: other,
            method: Some(TransferMethod::Snapshot),
        };
        let set = |state, from| ClusterOp::SetReplicaState {
            collection: "c".into(),
            shard: 0,
            peer: other,
            state,
            from_state: Some(from),
            source_active: None,
        };
        s.apply_at(&add, 5).unwrap();
        assert_eq!(
            s.collections["c"].transfer_method(0, other),
            Some(TransferMethod::Snapshot)
        );
        s.apply_at(&set(ReplicaState::Partial, ReplicaState::Dead), 6).unwrap();
        assert_eq!(
            s.collections["c"].transfer_method(0, other),
            Some(TransferMethod::Snapshot)
        );
        // Survives a round trip through the stored state.
        let copy: ClusterState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(
            copy.collections["c"].transfer_method(0, other),
            Some(TransferMethod::Snapshot)
        );
        s.apply_at(&set(ReplicaState::Active, ReplicaState::Partial), 7)
            .unwrap();
        assert_eq!(s.collections["c"].transfer_method(0, other), None);
        assert!(s.collections["c"].transfer_methods.is_empty());
    }

    #[test]
    fn remove_peer_respects_replicas_unless_forced() {
        let mut s = three_peers();
        s.apply(&create("c", 3, 1, &s.clone())).unwrap();
        let err = s
            .apply(&ClusterOp::RemovePeer {
                peer_id: 20,
                force: false,
            })
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("Cannot remove peer 20 as there are shards on it"),
            "{err}"
        );
        s.apply(&ClusterOp::RemovePeer {
            peer_id: 20,
            force: true,
        })
        .unwrap();
        assert!(!s.peers.contains_key(&20));
        assert_eq!(s.peer_replica_count(20), 0);
        // Idempotent for unknown peers.
        s.apply(&ClusterOp::RemovePeer {
            peer_id: 20,
            force: false,
        })
        .unwrap();
        assert_eq!(s.peer_by_uri("http://127.0.0.1:10/"), Some(10));
    }

    #[test]
    fn apply_is_deterministic_and_serializable() {
        let base = three_peers();
        let ops = vec![
            create("a", 4, 2, &base),
            create("b", 2, 1, &base),
            ClusterOp::DeleteCollection { name: "a".into() },
            ClusterOp::AddPeer {
                peer_id: 40,
                uri: "http://127.0.0.1:40".into(),
            },
        ];
        let run = |ops: &[ClusterOp]| {
            let mut s = base.clone();
            for op in ops {
                let _ = s.apply(op);
            }
            s
        };
        // Ops survive a JSON round trip (the log format) and give the same state.
        let encoded = serde_json::to_string(&ops).unwrap();
        let decoded: Vec<ClusterOp> = serde_json::from_str(&encoded).unwrap();
        assert_eq!(run(&ops), run(&decoded));
        let state = run(&ops);
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<ClusterState>(&json).unwrap(), state);
    }
}
