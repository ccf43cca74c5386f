//! Cluster mode's control loop ([`spawn`]): compares every applied cluster state with the local
//! collections and makes them match. It creates and deletes collections, opens and drops local
//! replicas, applies configs and payload indexes, refreshes the routing table, reports the
//! replicas it created as Active and recovers Dead ones by a transfer. The operations that
//! propose those states are in `cluster_sync`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cluster_sync::SYNC_VIEW_TIMEOUT;
use super::{shard_transfer, Node};
use crate::cluster::{
    AppliedState, ClusterOp, ClusterState, CollectionState, Consensus, PeerId, ReplicaState, ShardId,
};
use crate::collection::remote::{RemoteShards, Replica, ReplicaFailed, Routing, SyncView};
use crate::collection::{blocking, Collection, LocalPlacement};
use crate::error::{Error, Result};
use crate::model::cluster::TransferMethod;
use crate::storage::payload_index::PayloadFieldSchema;

/// Starts the control loop that keeps the local collections in line with the cluster state.
pub fn spawn(node: Arc<Node>, consensus: Arc<Consensus>) -> JoinHandle<()> {
    let remote = Arc::new(RemoteShards::new(consensus.clients(), consensus.timing().rpc));
    let mark_dead = mark_dead_through(consensus.clone());
    let view = sync_view_through(consensus.clone());
    let sync = Arc::new(Sync {
        node,
        consensus,
        remote,
        mark_dead,
        view,
        activating: Mutex::new(HashSet::new()),
        recovering: Mutex::new(HashSet::new()),
        transfer_slots: tokio::sync::Semaphore::new(CONCURRENT_TRANSFERS),
    });
    tokio::spawn(async move {
        let mut rx = sync.consensus.subscribe();
        loop {
            let applied = rx.borrow_and_update().clone();
            match sync.reconcile(&applied).await {
                Ok(()) => {
                    sync.node.reconciled.send_if_modified(|done| {
                        let newer = applied.index > *done;
                        if newer {
                            *done = applied.index;
                        }
                        newer
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, index = applied.index, "could not apply the cluster state locally; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
    })
}

/// Marks a replica Dead through consensus, if it is still in the state the write saw (a replica
/// that changed state meanwhile was handled by someone else). The shard's last Active replica
/// is never marked Dead: the write that it missed fails (503) rather than be acknowledged.
fn mark_dead_through(consensus: Arc<Consensus>) -> ReplicaFailed {
    Arc::new(move |collection, shard, peer, seen| {
        let consensus = consensus.clone();
        Box::pin(async move {
            let dead_from = |from: ReplicaState| ClusterOp::SetReplicaState {
                collection: collection.clone(),
                shard,
                peer,
                state: ReplicaState::Dead,
                from_state: Some(from),
                source_active: None,
            };
            match consensus.propose(dead_from(seen), MARK_DEAD_TIMEOUT).await {
                Ok(_) => Ok(()),
                // A Partial replica gets writes in its transfer queue; one that missed this
                // write and has since finished its transfer is Active without it: still Dead.
                Err(Error::BadRequest(_)) if seen == ReplicaState::Partial => {
                    match consensus
                        .propose(dead_from(ReplicaState::Active), MARK_DEAD_TIMEOUT)
                        .await
                    {
                        Ok(_) | Err(Error::BadRequest(_)) => Ok(()),
                        Err(e) => Err(last_active(e)),
                    }
                }
                // Marked Dead by someone else, or refilled by a transfer that started after
                // this write was routed (the copy holds it: see the write fence).
                Err(Error::BadRequest(_)) => Ok(()),
                Err(e) => Err(last_active(e)),
            }
        })
    })
}

/// The refusal to deactivate a shard's last Active replica is, for the write that replica
/// missed, a shard that cannot take writes right now, not bad input.
fn last_active(e: Error) -> Error {
    match e {
        Error::BadInput(m) => Error::Unavailable(m),
        other => other,
    }
}

/// Brings this peer's applied cluster state up to a read index (see `Consensus::sync_view`).
fn sync_view_through(consensus: Arc<Consensus>) -> SyncView {
    Arc::new(move || {
        let consensus = consensus.clone();
        Box::pin(async move { consensus.sync_view(SYNC_VIEW_TIMEOUT).await })
    })
}

/// Bound of marking a replica Dead while a write waits for it.
const MARK_DEAD_TIMEOUT: Duration = Duration::from_secs(10);

struct Sync {
    node: Arc<Node>,
    consensus: Arc<Consensus>,
    remote: Arc<RemoteShards>,
    mark_dead: ReplicaFailed,
    view: SyncView,
    /// Replicas whose activation is being proposed: (collection, generation, shard).
    activating: Mutex<HashSet<ReplicaKey>>,
    /// Replicas being recovered by a transfer (at most one transfer per shard).
    recovering: Mutex<HashSet<ReplicaKey>>,
    /// Limits the transfers this peer runs at once.
    transfer_slots: tokio::sync::Semaphore,
}

/// (collection, generation, shard) of one of this peer's replicas.
type ReplicaKey = (String, u64, ShardId);

/// Transfers this peer runs at once.
const CONCURRENT_TRANSFERS: usize = 2;

impl Sync {
    async fn reconcile(self: &Arc<Self>, applied: &AppliedState) -> Result<()> {
        let node = &self.node;
        let _lifecycle = node.lifecycle.lock().await;
        let state: &ClusterState = applied;
        let me = self.consensus.peer_id();

        // Collections consensus no longer has (or has again under a new generation).
        for collection in node.collections() {
            let Some(local) = collection.local_placement() else {
                continue; // created standalone before cluster mode: left alone
            };
            let current = state.collections.get(&collection.name);
            if current.is_none_or(|c| c.generation != local.generation) {
                let name = collection.name.clone();
                drop(collection);
                node.delete_local(&name).await?;
            }
        }

        let uris: BTreeMap<PeerId, String> = state.peers.iter().map(|(id, p)| (*id, p.uri.clone())).collect();
        for (name, wanted) in &state.collections {
            let here: BTreeSet<ShardId> = wanted
                .shards
                .iter()
                .filter(|(_, replicas)| replicas.contains_key(&me))
                .map(|(shard, _)| *shard)
                .collect();
            let collection = match node.collection(name) {
                Ok(c) => c,
                Err(_) => {
                    let placement = LocalPlacement {
                        generation: wanted.generation,
                        local_shards: here.clone(),
                    };
                    node.create_local(name, wanted.config.clone(), Some(placement)).await?
                }
            };
            if collection.local_placement().is_none() {
                tracing::warn!(collection = %name, "a standalone collection of this name exists on this peer; not syncing it");
                continue;
            }
            self.sync_collection(&collection, wanted, &here, &uris, applied.index)
                .await?;
            self.activate(&collection, wanted);
            self.recover(&collection, wanted);
        }
        Ok(())
    }

    async fn sync_collection(
        &self,
        collection: &Arc<Collection>,
        wanted: &CollectionState,
        here: &BTreeSet<ShardId>,
        uris: &BTreeMap<PeerId, String>,
        index: u64,
    ) -> Result<()> {
        if collection.config() != wanted.config {
            let (c, config) = (collection.clone(), wanted.config.clone());
            blocking(move || c.set_config(config)).await?;
        }

        let have: BTreeSet<ShardId> = collection.shard_counts().into_iter().map(|(id, _)| id).collect();
        for shard in here.difference(&have) {
            let (c, shard) = (collection.clone(), *shard);
            blocking(move || c.add_local_shard(shard)).await?;
            tracing::info!(collection = %collection.name, shard, "created local replica");
        }

        let mut desired: BTreeMap<String, PayloadFieldSchema> = BTreeMap::new();
        for (field, schema) in &wanted.payload_indexes {
            match serde_json::from_value::<PayloadFieldSchema>(schema.clone()) {
                Ok(s) => {
                    desired.insert(field.clone(), s);
                }
                Err(e) => tracing::warn!(field = %field, error = %e, "ignoring an invalid payload index schema"),
            }
        }
        let current = collection.payload_indexes();
        for (field, schema) in &desired {
            if current.get(field) != Some(schema) {
                collection.create_payload_index(field, schema.clone()).await?;
                self.node.issues.index_created(&collection.name, field);
            }
        }
        for field in current.keys().filter(|f| !desired.contains_key(*f)) {
            collection.delete_payload_index(field).await?;
        }

        let shards = wanted
            .shards
            .iter()
            .map(|(shard, replicas)| {
                let list = replicas
                    .iter()
                    .map(|(peer, state)| Replica {
                        peer: *peer,
                        state: *state,
                    })
                    .collect();
                (*shard, list)
            })
            .collect();
        collection.set_routing(Arc::new(Routing {
            this_peer: self.consensus.peer_id(),
            index,
            write_epochs: wanted.write_epochs.clone(),
            shards,
            uris: uris.clone(),
            remote: self.remote.clone(),
            on_replica_failed: self.mark_dead.clone(),
            sync_view: self.view.clone(),
        }));
        // Only after the routing stopped sending requests to them.
        for shard in have.difference(here) {
            let (c, shard) = (collection.clone(), *shard);
            blocking(move || c.remove_local_shard(shard)).await?;
            tracing::info!(collection = %collection.name, shard, "dropped local replica");
        }
        Ok(())
    }

    /// Reports this peer's new (Initializing) replicas of `wanted` as Active, in the background
    /// and retrying until consensus took it (or the replica changed state meanwhile).
    fn activate(self: &Arc<Self>, collection: &Collection, wanted: &CollectionState) {
        let me = self.consensus.peer_id();
        for (shard, replicas) in &wanted.shards {
            if replicas.get(&me) != Some(&ReplicaState::Initializing) || collection.local_shard(*shard).is_none() {
                continue;
            }
            let key = (collection.name.clone(), wanted.generation, *shard);
            if !self.activating.lock().insert(key.clone()) {
                continue;
            }
            let sync = self.clone();
            tokio::spawn(async move {
                let (name, generation, shard) = key.clone();
                loop {
                    let still_needed = sync.consensus.state().collections.get(&name).is_some_and(|c| {
                        c.generation == generation
                            && c.shards.get(&shard).and_then(|r| r.get(&me)) == Some(&ReplicaState::Initializing)
                    });
                    if !still_needed {
                        break;
                    }
                    let op = ClusterOp::SetReplicaState {
                        collection: name.clone(),
                        shard,
                        peer: me,
                        state: ReplicaState::Active,
                        from_state: Some(ReplicaState::Initializing),
                        source_active: None,
                    };
                    match sync.consensus.propose(op, Duration::from_secs(10)).await {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::debug!(collection = %name, shard, error = %e, "activation not committed yet; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
                sync.activating.lock().remove(&key);
            });
        }
    }

    /// Recovers this peer's Dead replicas of `wanted` (and Partial ones a previous process left
    /// behind) by a transfer from an Active replica, in the background.
    fn recover(self: &Arc<Self>, collection: &Collection, wanted: &CollectionState) {
        let me = self.consensus.peer_id();
        for (shard, replicas) in &wanted.shards {
            if !matches!(replicas.get(&me), Some(ReplicaState::Dead | ReplicaState::Partial)) {
                continue;
            }
            if !replicas.iter().any(|(p, s)| *p != me && *s == ReplicaState::Active) {
                continue; // nothing to copy from; a later change restarts this
            }
            let key = (collection.name.clone(), wanted.generation, *shard);
            if !self.recovering.lock().insert(key.clone()) {
                continue;
            }
            let sync = self.clone();
            tokio::spawn(async move {
                sync.run_recovery(&key).await;
                sync.recovering.lock().remove(&key);
            });
        }
    }

    async fn run_recovery(&self, key: &ReplicaKey) {
        let (name, generation, shard) = (key.0.as_str(), key.1, key.2);
        let me = self.consensus.peer_id();
        loop {
            let state = self.consensus.state();
            let Some(replicas) = state
                .collections
                .get(name)
                .filter(|c| c.generation == generation)
                .and_then(|c| c.shards.get(&shard))
            else {
                return;
            };
            let Some(source) = replicas
                .iter()
                .find(|(p, s)| **p != me && **s == ReplicaState::Active)
                .map(|(p, _)| *p)
            else {
                return;
            };
            match replicas.get(&me) {
                Some(ReplicaState::Dead) => {}
                Some(ReplicaState::Partial) => {
                    // Left over by an interrupted transfer (its queued writes are gone): start over.
                    let _ = self
                        .set_my_state(name, shard, ReplicaState::Dead, ReplicaState::Partial, None)
                        .await;
                    continue;
                }
                _ => return,
            }
            let started = std::time::Instant::now();
            match self.recover_once(name, shard, source).await {
                Ok((copied, queued)) => {
                    tracing::info!(collection = %name, shard, source, copied, queued, ms = started.elapsed().as_millis() as u64,
                        "replica recovered by a transfer; Active again");
                    return;
                }
                Err(e) => {
                    tracing::warn!(collection = %name, shard, source, error = %e, "replica recovery failed; retrying");
                    let _ = self
                        .set_my_state(name, shard, ReplicaState::Dead, ReplicaState::Partial, None)
                        .await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One transfer into this peer's replica of `shard` (see [`shard_transfer::choose_method`]):
    /// empty it (`stream_records`), swap it for a snapshot of the source (`snapshot`) or keep
    /// what it holds (`wal_delta`); queue incoming writes, announce it Partial (writers start
    /// sending to it), copy every point from `source` or catch up on the buckets that differ,
    /// apply the queue, announce it Active. Returns (points copied or buckets caught up,
    /// writes queued meanwhile).
    async fn recover_once(&self, name: &str, shard: ShardId, source: PeerId) -> Result<(usize, usize)> {
        let _slot = self
            .transfer_slots
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("shutting down".into()))?;
        let collection = self.node.collection(name)?;
        let method = self.transfer_method(&collection, shard, source).await?;
        let uri = self.consensus.state().peers.get(&source).map(|p| p.uri.clone());
        match method {
            TransferMethod::StreamRecords => {
                let _lifecycle = self.node.lifecycle.lock().await;
                let c = collection.clone();
                blocking(move || c.reset_local_shard(shard)).await?;
            }
            TransferMethod::Snapshot => {
                let uri = uri.ok_or_else(|| Error::internal(format!("peer {source} has no address")))?;
                let started = Instant::now();
                let bytes = self
                    .node
                    .install_transfer_snapshot(&collection, shard, &self.remote, (source, &uri))
                    .await?;
                tracing::info!(collection = %name, shard, source, bytes, ms = started.elapsed().as_millis() as u64,
                    "shard snapshot installed; catching up on the writes since");
            }
            TransferMethod::WalDelta => {}
        }
        let local = collection
            .local_shard(shard)
            .ok_or_else(|| Error::internal(format!("shard {shard} of `{name}` vanished during its recovery")))?;
        local.begin_buffering();
        let result = async {
            // From this index on writers send the shard's writes here too (queued); the source
            // fences off writes routed before it (see `Collection::pull_shard`).
            let fence = self
                .set_my_state(name, shard, ReplicaState::Partial, ReplicaState::Dead, None)
                .await?;
            let copied = match method {
                TransferMethod::StreamRecords => collection.pull_shard(shard, source, fence).await?,
                _ => collection.catch_up_shard(shard, source, fence, method).await?,
            };
            let l = local.clone();
            let queued = blocking(move || l.finish_buffering()).await?;
            // Refused if the source was marked Dead meanwhile: it may have missed a write
            // that the copy therefore lacks.
            self.set_my_state(name, shard, ReplicaState::Active, ReplicaState::Partial, Some(source))
                .await?;
            Ok((copied, queued))
        }
        .await;
        if result.is_err() {
            local.cancel_buffering();
        }
        result
    }

    /// The method of the next transfer into this peer's replica of `shard`.
    async fn transfer_method(&self, collection: &Collection, shard: ShardId, source: PeerId) -> Result<TransferMethod> {
        let asked = self
            .consensus
            .state()
            .collections
            .get(&collection.name)
            .and_then(|c| c.transfer_method(shard, self.consensus.peer_id()));
        let configured = self.node.settings.storage.shard_transfer_method;
        let local_points = collection.local_shard(shard).map_or(0, |s| s.points_count());
        let source_points = if asked.or(configured).is_none() {
            collection.remote_count(shard, source).await.ok()
        } else {
            None
        };
        let method = shard_transfer::choose_method(asked, configured, local_points, source_points);
        tracing::info!(collection = %collection.name, shard, source, method = method.name(), local_points, ?source_points,
            "recovering a replica");
        Ok(method)
    }

    async fn set_my_state(
        &self,
        name: &str,
        shard: ShardId,
        state: ReplicaState,
        from: ReplicaState,
        source_active: Option<PeerId>,
    ) -> Result<u64> {
        let op = ClusterOp::SetReplicaState {
            collection: name.to_string(),
            shard,
            peer: self.consensus.peer_id(),
            state,
            from_state: Some(from),
            source_active,
        };
        self.consensus.propose(op, Duration::from_secs(10)).await
    }
}
