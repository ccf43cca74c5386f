//! A collection: its persisted configuration, its local shards, the routing of point ids to
//! shards (hash ring) and of shards to replicas (local or on other peers), and the fan-out of
//! reads over all shards with the merge of their results.
//!
//! Every per-shard operation is a [`ShardRequest`] run by [`shard_request::execute`] on the
//! replica's peer, so standalone, local-in-cluster and remote replicas share one code path.

pub mod anti_entropy;
pub mod fusion;
pub mod groups;
pub mod hash_ring;
pub mod lookup;
pub mod matrix;
pub mod mmr;
pub mod prefetch;
pub mod query;
pub mod remote;
pub mod resolve;
pub mod shard_request;
pub mod snapshot;
pub mod strict_mode;
pub mod transfer;
pub mod validate;

#[cfg(test)]
mod fence_tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{join_all, try_join_all};
use parking_lot::RwLock;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::cluster::ShardId;
use crate::error::{Error, Result};
use crate::model::collection::{CollectionConfig, UpdateCollection};
use crate::model::facet::{FacetHit, FacetRequest, FacetResponse, DEFAULT_FACET_LIMIT};
use crate::model::operations::{PointOperation, Selector, UpdateResult, UpdateStatus, WriteOrdering};
use crate::model::order_by::{order_key, OrderBy, OFFSET_WITH_ORDER_BY};
use crate::model::payload::PayloadSelector;
use crate::model::quantization::QuantizationConfig;
use crate::model::query::{
    ReadConsistency, Record, ScoredPoint, ScrollRequest, ScrollResult, ShardQuery, ShardQueryKind,
};
use crate::model::vector::{Distance, WithVector};
use crate::model::vector_name;
use crate::model::{Filter, PointId};
use crate::storage::clock::VersionClock;
use crate::storage::index::IndexingOptions;
use crate::storage::payload_index::{PayloadFieldSchema, PayloadIndexInfo};
use crate::storage::shard::LocalShard;
use hash_ring::HashRing;
use remote::Routing;
use resolve::{resolve, ResolveCondition};
use shard_request::{execute, expect_response, ShardInfo, ShardRequest, ShardResponse, SparseStats};

const META_FILE: &str = "collection.json";
/// `limit` of a scroll that names none (Qdrant's default).
const DEFAULT_SCROLL_LIMIT: usize = 10;

/// What is persisted per collection, besides its shards' data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionMeta {
    pub config: CollectionConfig,
    #[serde(default)]
    pub payload_indexes: BTreeMap<String, PayloadFieldSchema>,
    /// Cluster mode only: which incarnation of the collection this is and which shards live here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<LocalPlacement>,
}

/// The part of a clustered collection held by this peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPlacement {
    /// Consensus's generation of the collection: a collection deleted and created again under
    /// the same name gets a new one, so stale local data is never mistaken for the new one.
    pub generation: u64,
    pub local_shards: BTreeSet<ShardId>,
}

/// `GET /collections/{name}` result.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionInfo {
    pub status: &'static str,
    pub optimizer_status: &'static str,
    /// Left out when empty, as Qdrant does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<serde_json::Value>,
    pub indexed_vectors_count: usize,
    pub points_count: usize,
    pub segments_count: usize,
    pub config: CollectionConfig,
    pub payload_schema: BTreeMap<String, PayloadIndexInfo>,
}

/// Where one request for one shard goes.
#[derive(Clone)]
enum Target {
    Local(Arc<LocalShard>),
    Remote(crate::cluster::PeerId),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Read,
    Write,
}

pub struct Collection {
    pub name: String,
    path: PathBuf,
    meta: RwLock<CollectionMeta>,
    shards: RwLock<BTreeMap<ShardId, Arc<LocalShard>>>,
    ring: HashRing,
    /// Cluster mode: replica placement, set by the node's cluster sync. `None` standalone.
    routing: Arc<RwLock<Option<Arc<Routing>>>>,
    indexing: IndexingOptions,
    /// Serialises ordered writes per shard on their coordinating replica.
    ordered_writes: parking_lot::Mutex<BTreeMap<ShardId, Arc<tokio::sync::Mutex<()>>>>,
    /// Transfers filling local replicas, by shard.
    transfers: parking_lot::Mutex<BTreeMap<ShardId, transfer::TransferProgress>>,
    /// Stamps the versions of the writes this peer coordinates.
    clock: VersionClock,
    /// Strict mode's rate limiters and size measurements.
    strict_state: strict_mode::State,
}

impl Collection {
    /// Creates the collection's directory, config and local shards (all of them standalone,
    /// those of `cluster` in cluster mode).
    pub fn create(
        name: &str,
        path: &Path,
        config: CollectionConfig,
        indexing: IndexingOptions,
        cluster: Option<LocalPlacement>,
    ) -> Result<Collection> {
        std::fs::create_dir_all(path)?;
        let meta = CollectionMeta {
            config,
            payload_indexes: BTreeMap::new(),
            cluster,
        };
        write_meta(path, &meta)?;
        Self::open_with(name, path, meta, indexing)
    }

    /// Opens an existing collection from its directory.
    pub fn open(name: &str, path: &Path, indexing: IndexingOptions) -> Result<Collection> {
        let text = std::fs::read(path.join(META_FILE))?;
        let meta: CollectionMeta = serde_json::from_slice(&text)
            .map_err(|e| Error::internal(format!("collection {name}: bad config: {e}")))?;
        Self::open_with(name, path, meta, indexing)
    }

    fn open_with(name: &str, path: &Path, meta: CollectionMeta, indexing: IndexingOptions) -> Result<Collection> {
        let all: Vec<ShardId> = (0..meta.config.params.shard_number).collect();
        let local: Vec<ShardId> = match &meta.cluster {
            Some(c) => c.local_shards.iter().copied().collect(),
            None => all.clone(),
        };
        let mut shards = BTreeMap::new();
        // After a restart the clock starts past every version stored here, whatever the wall
        // clock says.
        let clock = VersionClock::default();
        for id in local {
            let shard = open_shard(path, id, &meta, indexing)?;
            clock.observe(shard.max_version());
            shards.insert(id, Arc::new(shard));
        }
        Ok(Collection {
            name: name.to_string(),
            path: path.to_path_buf(),
            meta: RwLock::new(meta),
            shards: RwLock::new(shards),
            ring: HashRing::new(all),
            routing: Arc::new(RwLock::new(None)),
            indexing,
            ordered_writes: parking_lot::Mutex::new(BTreeMap::new()),
            transfers: parking_lot::Mutex::new(BTreeMap::new()),
            clock,
            strict_state: strict_mode::State::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> CollectionConfig {
        self.meta.read().config.clone()
    }

    fn shard_ids(&self) -> Vec<ShardId> {
        (0..self.meta.read().config.params.shard_number).collect()
    }

    fn local_shards(&self) -> Vec<Arc<LocalShard>> {
        self.shards.read().values().cloned().collect()
    }

    pub fn local_shard(&self, id: ShardId) -> Option<Arc<LocalShard>> {
        self.shards.read().get(&id).cloned()
    }

    pub fn close(&self) {
        self.local_shards().iter().for_each(|s| s.close());
    }

    /// Points per local shard, by shard id.
    pub fn shard_counts(&self) -> Vec<(ShardId, usize)> {
        self.shards
            .read()
            .iter()
            .map(|(id, s)| (*id, s.points_count()))
            .collect()
    }

    /// Whether anything besides this collection still holds one of its shards.
    pub fn shards_in_use(&self) -> bool {
        self.shards.read().values().any(|s| Arc::strong_count(s) > 1)
    }

    /// Points in the local shards.
    pub fn points_count(&self) -> usize {
        self.shards.read().values().map(|s| s.points_count()).sum()
    }

    /// Counters over all shards (local and remote) and the payload schema.
    pub async fn info(&self) -> Result<CollectionInfo> {
        let replies = self.read_all_shards(ShardRequest::Info).await?;
        let mut total = ShardInfo::default();
        for reply in replies {
            let info = expect_response!(reply, Info)?;
            total.points += info.points;
            total.indexed_vectors += info.indexed_vectors;
            total.pending_vectors += info.pending_vectors;
            for (field, schema) in info.payload_schema {
                match total.payload_schema.get_mut(&field) {
                    Some(known) => known.points += schema.points,
                    None => {
                        total.payload_schema.insert(field, schema);
                    }
                }
            }
        }
        let config = self.config();
        Ok(CollectionInfo {
            // Yellow while the background indexer still has vectors to add (Qdrant reports
            // yellow while optimizing), green once everything is in the HNSW.
            status: if total.pending_vectors > 0 { "yellow" } else { "green" },
            optimizer_status: "ok",
            warnings: Vec::new(),
            indexed_vectors_count: total.indexed_vectors,
            points_count: total.points,
            segments_count: config.params.shard_number as usize,
            config,
            payload_schema: total.payload_schema,
        })
    }

    pub fn update_config(&self, update: &UpdateCollection) -> Result<()> {
        let next = update.apply_to(&self.config())?;
        self.set_config(next)
    }

    /// Replaces the configuration (cluster sync applies the one consensus decided). When the
    /// vector spaces change (a named vector created or deleted), the local shards are reopened
    /// with the new ones first, deleted vectors purged from their points, so no write is checked
    /// against a vector the shards do not have yet.
    pub fn set_config(&self, config: CollectionConfig) -> Result<()> {
        let current = self.config();
        let (before, after) = (vector_name::spaces(&current), vector_name::spaces(&config));
        if before != after || index_settings(&current) != index_settings(&config) {
            let removed = before
                .iter()
                .filter(|(name, space)| after.get(*name) != Some(*space))
                .map(|(name, _)| name.clone())
                .collect();
            self.reopen_local_shards(&config, &removed)?;
        }
        self.modify_meta(|meta| {
            meta.config = config;
            Ok(())
        })
    }

    /// Reopens every local shard with `config`, one at a time (each briefly unavailable), after
    /// removing the vectors `removed` from its points.
    fn reopen_local_shards(&self, config: &CollectionConfig, removed: &BTreeSet<String>) -> Result<()> {
        let mut meta = self.meta.read().clone();
        meta.config = config.clone();
        let ids: Vec<ShardId> = self.shards.read().keys().copied().collect();
        for id in ids {
            let mut shards = self.shards.write();
            let Some(shard) = shards.remove(&id) else { continue };
            wait_unused(&shard, Duration::from_secs(30));
            if Arc::strong_count(&shard) > 1 {
                shards.insert(id, shard);
                return Err(Error::Unavailable(format!(
                    "shard {id} of collection {} is busy; try changing its vectors again",
                    self.name
                )));
            }
            if !removed.is_empty() {
                if let Err(e) = shard.purge_vectors(removed) {
                    shards.insert(id, shard);
                    return Err(e);
                }
            }
            shard.close();
            drop(shard);
            let reopened = match open_shard(&self.path, id, &meta, self.indexing) {
                Ok(reopened) => reopened,
                Err(e) => {
                    // The new vectors cannot open the shard: it goes back as it was, and the
                    // configuration is not changed.
                    tracing::warn!(collection = %self.name, shard = id, error = %e, "shard refused the new vectors");
                    let restored = open_shard(&self.path, id, &self.meta.read().clone(), self.indexing)?;
                    shards.insert(id, Arc::new(restored));
                    return Err(e);
                }
            };
            shards.insert(id, Arc::new(reopened));
            tracing::info!(collection = %self.name, shard = id, "reopened shard with new vectors");
        }
        Ok(())
    }

    /// Changes the persisted metadata: written first, then swapped in.
    fn modify_meta(&self, change: impl FnOnce(&mut CollectionMeta) -> Result<()>) -> Result<()> {
        let mut meta = self.meta.write();
        let mut updated = meta.clone();
        change(&mut updated)?;
        write_meta(&self.path, &updated)?;
        *meta = updated;
        Ok(())
    }

    pub async fn create_payload_index(&self, field: &str, schema: PayloadFieldSchema) -> Result<UpdateResult> {
        // Checked before it is stored: every later opening of the shards builds the index again.
        check_index_field(field)?;
        self.modify_meta(|meta| {
            meta.payload_indexes.insert(field.to_string(), schema.clone());
            Ok(())
        })?;
        let field = field.to_string();
        self.on_local_shards(move |shard| shard.create_payload_index(&field, schema.clone()))
            .await?;
        Ok(self.completed())
    }

    pub async fn delete_payload_index(&self, field: &str) -> Result<UpdateResult> {
        self.modify_meta(|meta| match meta.payload_indexes.remove(field) {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!(
                "Payload index for field `{field}` does not exist"
            ))),
        })?;
        let field = field.to_string();
        self.on_local_shards(move |shard| Ok(shard.drop_payload_index(&field)))
            .await?;
        Ok(self.completed())
    }

    /// The payload indexes defined on this collection.
    pub fn payload_indexes(&self) -> BTreeMap<String, PayloadFieldSchema> {
        self.meta.read().payload_indexes.clone()
    }

    fn completed(&self) -> UpdateResult {
        UpdateResult {
            operation_id: Some(self.local_shards().iter().map(|s| s.last_seq()).max().unwrap_or(0)),
            status: UpdateStatus::Completed,
        }
    }

    /// Runs `f` on every local shard in parallel on blocking threads.
    async fn on_local_shards<T, F>(&self, f: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(&LocalShard) -> Result<T> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        try_join_all(self.local_shards().into_iter().map(|shard| {
            let f = f.clone();
            async move { blocking(move || f(&shard)).await }
        }))
        .await
    }

    // ---- cluster sync: make the local replicas match what consensus placed here ----

    /// The generation and local shard set, for a clustered collection.
    pub fn local_placement(&self) -> Option<LocalPlacement> {
        self.meta.read().cluster.clone()
    }

    pub fn set_routing(&self, routing: Arc<Routing>) {
        self.clock.set_peer(routing.this_peer);
        *self.routing.write() = Some(routing);
    }

    /// Opens (creating if needed) the local replica of `shard` (blocking).
    pub fn add_local_shard(&self, id: ShardId) -> Result<()> {
        if self.shards.read().contains_key(&id) {
            return Ok(());
        }
        let meta = self.meta.read().clone();
        let shard = Arc::new(open_shard(&self.path, id, &meta, self.indexing)?);
        self.shards.write().insert(id, shard);
        self.modify_meta(|meta| {
            if let Some(c) = meta.cluster.as_mut() {
                c.local_shards.insert(id);
            }
            Ok(())
        })
    }

    /// Drops the local replica of `shard` and its data (blocking; waits for running requests).
    pub fn remove_local_shard(&self, id: ShardId) -> Result<()> {
        let Some(shard) = self.shards.write().remove(&id) else {
            return Ok(());
        };
        self.modify_meta(|meta| {
            if let Some(c) = meta.cluster.as_mut() {
                c.local_shards.remove(&id);
            }
            Ok(())
        })?;
        shard.close();
        wait_unused(&shard, Duration::from_secs(30));
        let dir = shard.path().to_path_buf();
        drop(shard);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    // ---- routing ----

    fn shard_of(&self, id: &PointId) -> Result<ShardId> {
        self.ring
            .shard_for(id)
            .ok_or_else(|| Error::internal(format!("collection {} has no shards", self.name)))
    }

    /// The replicas a request for `shard` may use, best first (the local one first).
    fn targets(&self, shard: ShardId, purpose: Purpose) -> Result<(Vec<Target>, Option<Arc<Routing>>)> {
        let local = self.local_shard(shard);
        let routing = self.routing.read().clone();
        let Some(routing) = routing else {
            if self.meta.read().cluster.is_some() {
                return Err(Error::Unavailable(format!(
                    "collection `{}` is not yet synchronised with the cluster",
                    self.name
                )));
            }
            let local = local.ok_or_else(|| Error::internal(format!("shard {shard} is not local")))?;
            return Ok((vec![Target::Local(local)], None));
        };
        let mut targets = Vec::new();
        for replica in routing.replicas(shard) {
            let usable = match purpose {
                Purpose::Read => replica.state.is_readable(),
                Purpose::Write => replica.state.is_updatable(),
            };
            if !usable {
                continue;
            }
            if replica.peer != routing.this_peer {
                targets.push(Target::Remote(replica.peer));
                continue;
            }
            match &local {
                Some(shard) => targets.insert(0, Target::Local(shard.clone())),
                // Placed here but not opened yet: a write must not skip this replica.
                None if purpose == Purpose::Write => {
                    return Err(Error::Unavailable(format!(
                        "the replica of shard {shard} on this peer is not ready yet"
                    )))
                }
                None => {}
            }
        }
        Ok((targets, Some(routing)))
    }

    async fn run_on(
        &self,
        shard: ShardId,
        target: &Target,
        routing: Option<&Routing>,
        request: &Arc<ShardRequest>,
    ) -> Result<ShardResponse> {
        match target {
            Target::Local(local) if request.runs_inline(local) => execute(local, request),
            Target::Local(local) => {
                let (local, request, routing) = (local.clone(), request.clone(), self.routing.clone());
                blocking(move || execute_fenced(&routing, &local, &request)).await
            }
            Target::Remote(peer) => {
                let routing = routing.ok_or_else(|| Error::internal("remote replica without routing"))?;
                routing
                    .remote
                    .call(*peer, routing.uri(*peer)?, &self.name, shard, request)
                    .await
            }
        }
    }

    /// Reads `shard` from as many replicas as `consistency` asks; all of them must answer.
    async fn read_shard_consistent(
        &self,
        shard: ShardId,
        request: Arc<ShardRequest>,
        consistency: ReadConsistency,
    ) -> Result<ShardResponse> {
        let (mut targets, mut routing) = self.targets(shard, Purpose::Read)?;
        if consistency != ReadConsistency::One {
            if let Some(r) = routing.as_ref() {
                // A consistent read must not trust a view of the replicas that may be behind
                // (a replica marked Dead elsewhere still looks Active here): catch up first.
                self.catch_up(r).await?;
                (targets, routing) = self.targets(shard, Purpose::Read)?;
            }
        }
        let total = routing.as_deref().map_or(targets.len(), |r| r.replicas(shard).len());
        let ask = consistency.replicas_to_ask(targets.len(), total);
        if ask <= 1 {
            return self.read_from(shard, &targets, routing.as_deref(), &request).await;
        }
        if targets.len() < ask {
            return Err(Error::Unavailable(format!(
                "read consistency {consistency:?} needs {ask} active replicas of shard {shard}, {} are active",
                targets.len()
            )));
        }
        let asked = &targets[..ask];
        let answers = try_join_all(
            asked
                .iter()
                .map(|t| self.run_on(shard, t, routing.as_deref(), &request)),
        )
        .await?;
        // Resolved in peer order, so every peer resolves the same answers the same way.
        let peer_of = |t: &Target| match (t, routing.as_deref()) {
            (Target::Remote(peer), _) => *peer,
            (Target::Local(_), Some(r)) => r.this_peer,
            (Target::Local(_), None) => 0,
        };
        let mut answers: Vec<_> = asked.iter().map(peer_of).zip(answers).collect();
        answers.sort_by_key(|(peer, _)| *peer);
        let condition = match consistency {
            ReadConsistency::Majority => ResolveCondition::Majority,
            _ => ResolveCondition::All,
        };
        resolve(answers.into_iter().map(|(_, a)| a).collect(), condition)
    }

    /// Runs a read on one readable replica of `shard`, failing over to the next replica when
    /// one cannot be reached.
    async fn read_shard(&self, shard: ShardId, request: Arc<ShardRequest>) -> Result<ShardResponse> {
        let (targets, routing) = self.targets(shard, Purpose::Read)?;
        self.read_from(shard, &targets, routing.as_deref(), &request).await
    }

    /// [`Collection::read_shard`] over replicas already chosen by [`Collection::targets`].
    async fn read_from(
        &self,
        shard: ShardId,
        targets: &[Target],
        routing: Option<&Routing>,
        request: &Arc<ShardRequest>,
    ) -> Result<ShardResponse> {
        let mut last_error = None;
        for target in targets {
            match self.run_on(shard, target, routing, request).await {
                Ok(response) => return Ok(response),
                Err(e) if e.is_transport() => {
                    tracing::debug!(collection = %self.name, shard, error = %e, "replica unreachable; trying the next");
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(match last_error {
            Some(e) => e,
            None => Error::Unavailable(format!(
                "no active replica of shard {shard} of collection `{}`",
                self.name
            )),
        })
    }

    /// Runs a read on every shard in parallel: local shards each on a blocking thread, the
    /// shards whose first choice is another peer in one round trip per peer (falling back to
    /// shard-by-shard failover when that peer cannot be reached).
    async fn read_all_shards(&self, request: ShardRequest) -> Result<Vec<ShardResponse>> {
        self.read_all_shards_with(request, ReadConsistency::One).await
    }

    /// [`Collection::read_all_shards`] with a read consistency above one replica: each shard is
    /// read from several replicas and their answers resolved (see [`resolve`]).
    async fn read_all_shards_with(
        &self,
        request: ShardRequest,
        consistency: ReadConsistency,
    ) -> Result<Vec<ShardResponse>> {
        if consistency != ReadConsistency::One && self.routing.read().is_some() {
            let request = Arc::new(request);
            return try_join_all(
                self.shard_ids()
                    .into_iter()
                    .map(|shard| self.read_shard_consistent(shard, request.clone(), consistency)),
            )
            .await;
        }
        let request = Arc::new(request);
        let mut singles = Vec::new();
        let mut by_peer: BTreeMap<crate::cluster::PeerId, Vec<ShardId>> = BTreeMap::new();
        let routing = self.routing.read().clone();
        for shard in self.shard_ids() {
            let (targets, shard_routing) = self.targets(shard, Purpose::Read)?;
            match (&routing, targets.first()) {
                (Some(_), Some(Target::Remote(peer))) => by_peer.entry(*peer).or_default().push(shard),
                _ => singles.push((shard, targets, shard_routing)),
            }
        }
        let local = try_join_all(singles.iter().map(|(shard, targets, shard_routing)| {
            self.read_from(*shard, targets, shard_routing.as_deref(), &request)
        }));
        let remote = try_join_all(by_peer.into_iter().map(|(peer, shards)| {
            let (routing, request) = (routing.clone(), request.clone());
            async move {
                let routing = routing.ok_or_else(|| Error::internal("remote replica without routing"))?;
                let answer = match routing.uri(peer) {
                    Ok(uri) => routing.remote.call_many(peer, uri, &self.name, &shards, &request).await,
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(replies) => replies.into_iter().collect::<Result<Vec<_>>>(),
                    Err(e) if e.is_transport() => {
                        tracing::debug!(collection = %self.name, peer, error = %e, "peer unreachable; reading shard by shard");
                        try_join_all(shards.iter().map(|s| self.read_shard(*s, request.clone()))).await
                    }
                    Err(e) => Err(e),
                }
            }
        }));
        let (mut local, remote) = futures::future::try_join(local, remote).await?;
        local.extend(remote.into_iter().flatten());
        Ok(local)
    }

    /// Runs a write on every replica of `shard` that accepts writes, stamped with one version
    /// from this peer's clock (every replica stores that version). It succeeds once
    /// `write_consistency_factor` replicas (at most all of them) acknowledged; replicas that
    /// failed meanwhile are marked Dead through consensus before this returns, so no reader
    /// sees a replica that missed an acknowledged write.
    ///
    /// A replica refuses the write when this peer routed it by a state older than the shard's
    /// write fence (a replica was added since, which the write may have skipped): the write is
    /// then sent again, with the same version, once this peer applied that state; replicas that
    /// had applied it already ignore the repeat. A replica holding a point at a newer version
    /// than the write's (this peer's clock is behind, or a concurrent write got there first)
    /// says so: the write is stamped again past that version and sent again, so a write never
    /// loses to a version its coordinator had not seen.
    async fn write_shard(&self, shard: ShardId, op: PointOperation, wait: bool) -> Result<u64> {
        const RETRIES: usize = 5;
        let mut request = Arc::new(ShardRequest::Update {
            op,
            wait,
            version: self.clock.tick(),
            routing_index: 0,
        });
        let mut attempt = 0;
        loop {
            let (targets, routing) = self.targets(shard, Purpose::Write)?;
            if targets.is_empty() {
                return Err(Error::Unavailable(format!(
                    "no replica of shard {shard} of collection `{}` accepts writes",
                    self.name
                )));
            }
            if let ShardRequest::Update { routing_index, .. } = Arc::make_mut(&mut request) {
                *routing_index = routing.as_ref().map_or(0, |r| r.index);
            }
            let results = join_all(
                targets
                    .iter()
                    .map(|target| self.run_on(shard, target, routing.as_deref(), &request)),
            )
            .await;
            let (mut fence, mut newer_held) = (None, None);
            for result in &results {
                match result {
                    Ok(ShardResponse::Fenced(epoch)) => fence = fence.max(Some(*epoch)),
                    Ok(ShardResponse::Stale(held)) => newer_held = newer_held.max(Some(*held)),
                    _ => {}
                }
            }
            if fence.is_none() && newer_held.is_none() {
                return self.settle_write(shard, &targets, routing, results).await;
            }
            if attempt == RETRIES {
                return Err(Error::Unavailable(format!(
                    "shard {shard} of collection `{}`: the write kept being refused by its replicas \
                     (routed by an outdated cluster state, or overtaken by concurrent writes)",
                    self.name
                )));
            }
            attempt += 1;
            if let Some(epoch) = fence {
                tracing::debug!(collection = %self.name, shard, epoch, "write fenced; routing it again");
                self.wait_for_routing(epoch, Duration::from_secs(5)).await?;
            }
            if let Some(held) = newer_held {
                tracing::debug!(collection = %self.name, shard, held, "write older than a replica's point; stamping it again");
                self.clock.observe(held);
                if let ShardRequest::Update { version, .. } = Arc::make_mut(&mut request) {
                    *version = self.clock.tick();
                }
            }
        }
    }

    /// Brings this peer's routing up to a read index taken now (see `Consensus::sync_view`):
    /// a view that may be behind (a peer back from a partition) must not decide what to read,
    /// mark or repair. Fails without a leader or quorum.
    pub(crate) async fn catch_up(&self, routing: &Routing) -> Result<()> {
        let index = (routing.sync_view)().await?;
        self.wait_for_routing(index, Duration::from_secs(5)).await
    }

    /// Marks the replica of `shard` on `peer` Dead through consensus if it is still `seen`.
    async fn mark_dead(
        &self,
        routing: &Routing,
        shard: ShardId,
        peer: crate::cluster::PeerId,
        seen: crate::cluster::ReplicaState,
        why: &str,
    ) -> Result<()> {
        (routing.on_replica_failed)(self.name.clone(), shard, peer, seen)
            .await
            .map_err(|e| {
                e.context(format!(
                    "shard {shard}: replica on peer {peer} {why} and could not be marked dead"
                ))
            })
    }

    /// Refuses to serve a transfer (a snapshot of `shard`) from a replica that is not Active.
    pub fn check_transfer_source(&self, shard: ShardId) -> Result<()> {
        transfer_source_check(self.routing.read().as_deref(), shard, 0).map(|_| ())
    }

    /// Waits until this peer routes by a cluster state at least as new as `index`.
    pub async fn wait_for_routing(&self, index: u64, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let applied = self.routing.read().as_ref().map_or(0, |r| r.index);
            if applied >= index {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "collection `{}` on this peer routes by cluster state {applied}, not yet {index}",
                    self.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs `request` on the local replica `shard` (blocking), under the write fence: a write
    /// routed by a cluster state older than the shard's write epoch is refused with
    /// [`ShardResponse::Fenced`], and the check and the write happen under the routing lock, so
    /// once this peer routes by a newer state no write routed by an older one is still being
    /// applied here. A transfer page is served only once this peer applied the transfer's start.
    pub fn execute_fenced(&self, shard: &LocalShard, request: &ShardRequest) -> Result<ShardResponse> {
        execute_fenced(&self.routing, shard, request)
    }

    /// Completes a write whose replicas all answered (none refused it as fenced): counts the
    /// acknowledgements and marks the replicas that failed Dead.
    async fn settle_write(
        &self,
        shard: ShardId,
        targets: &[Target],
        routing: Option<Arc<Routing>>,
        results: Vec<Result<ShardResponse>>,
    ) -> Result<u64> {
        // Only Active replicas count towards the consistency factor: a Partial one (being
        // filled by a transfer) may only have queued the write.
        let state_of = |target: &Target| match (target, routing.as_deref()) {
            (_, None) => crate::cluster::ReplicaState::Active,
            (Target::Local(_), Some(r)) => replica_state(r, shard, r.this_peer),
            (Target::Remote(peer), Some(r)) => replica_state(r, shard, *peer),
        };
        let active = targets
            .iter()
            .filter(|t| state_of(t) == crate::cluster::ReplicaState::Active)
            .count();
        let wcf = self.meta.read().config.params.write_consistency_factor.max(1) as usize;
        let needed = wcf.min(active.max(1));
        let peer_of = |target: &Target| match (target, routing.as_deref()) {
            (Target::Local(_), Some(r)) => r.this_peer,
            (Target::Local(_), None) => 0,
            (Target::Remote(peer), _) => *peer,
        };
        let mut seq = 0;
        let mut acks = 0;
        let mut failed = Vec::new();
        let mut took_it = Vec::new();
        for (target, result) in targets.iter().zip(results) {
            match result.and_then(|r| expect_response!(r, Updated)) {
                Ok(s) => {
                    took_it.push(peer_of(target));
                    seq = seq.max(s);
                    if state_of(target) == crate::cluster::ReplicaState::Active {
                        acks += 1;
                    }
                }
                // The request itself is wrong: every replica would say the same.
                Err(e @ (Error::BadInput(_) | Error::Validation(_) | Error::BadRequest(_))) => return Err(e),
                Err(e) => failed.push((target, e)),
            }
        }
        if acks < needed {
            // No replica has the point the write is about (an update of vectors of a missing
            // point): that is the answer, as a standalone node gives it.
            if !failed.is_empty() && failed.iter().all(|(_, e)| matches!(e, Error::NotFound(_))) && took_it.is_empty() {
                return Err(failed.swap_remove(0).1);
            }
            let errors: Vec<String> = failed.iter().map(|(_, e)| e.to_string()).collect();
            return Err(Error::Unavailable(format!(
                "shard {shard} of collection `{}`: {acks} of the {needed} required replicas acknowledged the write \
                 (write_consistency_factor {wcf}): {}",
                self.name,
                errors.join("; ")
            )));
        }
        if let (Some(routing), false) = (routing.as_ref(), failed.is_empty()) {
            for (target, error) in failed {
                let peer = peer_of(target);
                let state = replica_state(routing, shard, peer);
                tracing::warn!(collection = %self.name, shard, peer, %error, "replica missed a write; marking it dead");
                self.mark_dead(routing, shard, peer, state, "missed the write").await?;
            }
            self.demote_refilled_since(shard, routing, &took_it).await?;
        }
        Ok(seq)
    }

    /// After replicas that missed a write were marked Dead: a replica that has turned Active
    /// since the write was routed, without taking the write itself, was filled by a transfer,
    /// and if that transfer copied from one of the replicas that missed the write (announced
    /// complete before the source was marked Dead), it lacks the write too. Which source it
    /// used is not known here, so every such replica is marked Dead as well (rare: a write
    /// failing while a transfer completes; the cost is one more transfer).
    async fn demote_refilled_since(
        &self,
        shard: ShardId,
        routed: &Routing,
        took_it: &[crate::cluster::PeerId],
    ) -> Result<()> {
        self.catch_up(routed).await?;
        let Some(now) = self.routing.read().clone() else {
            return Ok(());
        };
        let refilled: Vec<crate::cluster::PeerId> = now
            .replicas(shard)
            .iter()
            .filter(|r| r.state == crate::cluster::ReplicaState::Active)
            .filter(|r| replica_state(routed, shard, r.peer) != crate::cluster::ReplicaState::Active)
            .filter(|r| !took_it.contains(&r.peer))
            .map(|r| r.peer)
            .collect();
        for peer in refilled {
            tracing::warn!(collection = %self.name, shard, peer,
                "replica turned Active while a write failed elsewhere; it may have copied a replica that missed it: marking it dead");
            let why = "may have copied a replica that missed a write";
            self.mark_dead(&now, shard, peer, crate::cluster::ReplicaState::Active, why)
                .await?;
        }
        Ok(())
    }

    /// The peers that may order the `ordering` writes of `shard` in cluster mode, first choice
    /// first, as Qdrant picks its "update leader": for `medium` the live (Active) replicas by
    /// descending peer id (a write falls over to the next when the leader is unreachable), for
    /// `strong` only the replica with the highest peer id whatever its state (writes fail while it
    /// is down rather than take another order). `None` for weak writes or outside a cluster.
    fn coordinators(
        &self,
        shard: ShardId,
        ordering: WriteOrdering,
    ) -> Option<(Vec<crate::cluster::PeerId>, Arc<Routing>)> {
        let routing = self.routing.read().clone()?;
        let replicas = routing.replicas(shard);
        let mut leaders: Vec<_> = match ordering {
            WriteOrdering::Weak => return None,
            WriteOrdering::Medium => replicas
                .iter()
                .filter(|r| r.state == crate::cluster::ReplicaState::Active)
                .map(|r| r.peer)
                .collect(),
            WriteOrdering::Strong => replicas.iter().map(|r| r.peer).max().into_iter().collect(),
        };
        leaders.sort_unstable_by(|a, b| b.cmp(a));
        Some((leaders, routing))
    }

    /// Sends an ordered write of `shard` through its update leader (see
    /// [`Collection::coordinators`]).
    async fn write_through_leader(
        &self,
        shard: ShardId,
        op: PointOperation,
        wait: bool,
        ordering: WriteOrdering,
    ) -> Result<u64> {
        let Some((leaders, routing)) = self.coordinators(shard, ordering) else {
            return self.write_shard(shard, op, wait).await;
        };
        let mut last_error = None;
        for peer in leaders {
            if peer == routing.this_peer {
                return self.coordinate_write(shard, op, wait).await;
            }
            let request = ShardRequest::Coordinate { op: op.clone(), wait };
            let forwarded = async {
                let response = routing
                    .remote
                    .call(peer, routing.uri(peer)?, &self.name, shard, &request)
                    .await?;
                expect_response!(response, Updated)
            };
            match forwarded.await {
                Err(e) if e.is_transport() => {
                    // Qdrant reports an unreachable leader as a service error.
                    last_error = Some(Error::internal(format!(
                        "Failed to apply update with {ordering:?} ordering via leader peer {peer}: {e}"
                    )));
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or_else(|| {
            Error::internal(format!(
                "Cannot update shard {}:{shard} with {ordering:?} ordering because no leader could be selected",
                self.name
            ))
        }))
    }

    /// Applies an ordered write to every replica of `shard`, one ordered write at a time per
    /// shard, so every replica applies them in the same order.
    pub async fn coordinate_write(&self, shard: ShardId, op: PointOperation, wait: bool) -> Result<u64> {
        let lock = self.ordered_writes.lock().entry(shard).or_default().clone();
        let _turn = lock.lock().await;
        self.write_shard(shard, op, wait).await
    }

    /// Moves this peer's version clock past a version a replica here received or stores.
    pub fn observe_version(&self, version: u64) {
        self.clock.observe(version);
    }

    /// Splits an operation into the part each shard must execute.
    fn route(&self, op: PointOperation) -> Result<Vec<(ShardId, PointOperation)>> {
        let mut by_shard: BTreeMap<ShardId, PointOperation> = BTreeMap::new();
        match op {
            PointOperation::Upsert(points, conditions) => {
                let mut parts: BTreeMap<ShardId, Vec<_>> = BTreeMap::new();
                for p in points {
                    parts.entry(self.shard_of(&p.id)?).or_default().push(p);
                }
                by_shard.extend(
                    parts
                        .into_iter()
                        .map(|(s, p)| (s, PointOperation::Upsert(p, conditions.clone()))),
                );
            }
            PointOperation::UpdateVectors(updates, filter) => {
                let mut parts: BTreeMap<ShardId, Vec<_>> = BTreeMap::new();
                for u in updates {
                    parts.entry(self.shard_of(&u.0)?).or_default().push(u);
                }
                by_shard.extend(
                    parts
                        .into_iter()
                        .map(|(s, p)| (s, PointOperation::UpdateVectors(p, filter.clone()))),
                );
            }
            other => match other.selector() {
                Some(Selector::Ids(ids)) => {
                    let mut parts: BTreeMap<ShardId, Vec<PointId>> = BTreeMap::new();
                    for id in ids {
                        parts.entry(self.shard_of(id)?).or_default().push(*id);
                    }
                    for (shard, ids) in parts {
                        by_shard.insert(shard, with_selector(&other, Selector::Ids(ids)));
                    }
                }
                _ => {
                    for shard in self.shard_ids() {
                        by_shard.insert(shard, other.clone());
                    }
                }
            },
        }
        Ok(by_shard.into_iter().collect())
    }

    /// Validates, routes and executes a write. `wait` makes it durable (WAL fsync) before
    /// returning; either way it is visible to reads when this returns.
    pub async fn update(&self, op: PointOperation, wait: bool) -> Result<UpdateResult> {
        self.update_ordered(op, wait, WriteOrdering::Weak, None).await
    }

    /// [`Collection::update`] with Qdrant's `ordering`: medium/strong writes of each shard go
    /// through its coordinating replica (see [`WriteOrdering`]). Strict mode checks it first
    /// (`timeout`: the request's `?timeout=`, seconds).
    pub async fn update_ordered(
        &self,
        op: PointOperation,
        wait: bool,
        ordering: WriteOrdering,
        timeout: Option<u64>,
    ) -> Result<UpdateResult> {
        self.check_write(&op, timeout).await?;
        self.apply_update(op, wait, ordering).await
    }

    /// A write strict mode accepted: charged to the write rate limiter, then validated, routed
    /// and executed.
    async fn apply_update(&self, op: PointOperation, wait: bool, ordering: WriteOrdering) -> Result<UpdateResult> {
        self.charge_write(&op).await?;
        let op = validate::prepare(&self.config(), op)?;
        let parts = self.route(op)?;
        let seqs = try_join_all(
            parts
                .into_iter()
                .map(|(shard, op)| self.write_through_leader(shard, op, wait, ordering)),
        )
        .await?;
        Ok(UpdateResult {
            operation_id: Some(seqs.into_iter().max().unwrap_or(0)),
            status: if wait {
                UpdateStatus::Completed
            } else {
                UpdateStatus::Acknowledged
            },
        })
    }

    /// A batch of writes (`points/batch`): strict mode checks every one first, then they are
    /// applied one after another; stops at the first failure.
    pub async fn update_batch(
        &self,
        ops: Vec<PointOperation>,
        wait: bool,
        ordering: WriteOrdering,
        timeout: Option<u64>,
    ) -> Result<Vec<UpdateResult>> {
        for op in &ops {
            self.check_write(op, timeout).await?;
        }
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(self.apply_update(op, wait, ordering).await?);
        }
        Ok(results)
    }

    /// `POST /points`, `GET /points/{id}`: the requested points that exist, in request order.
    /// Strict mode checks the timeout; a point asked for costs one read token.
    pub async fn retrieve(
        &self,
        ids: Vec<PointId>,
        with_payload: PayloadSelector,
        with_vector: WithVector,
        consistency: ReadConsistency,
        timeout: Option<u64>,
    ) -> Result<Vec<Record>> {
        self.check_timeout(timeout)?;
        self.charge_read(|| ids.len())?;
        self.read_points(ids, with_payload, with_vector, consistency).await
    }

    /// The requested points that exist, in request order (for the collection's own use: no
    /// strict mode).
    pub(crate) async fn read_points(
        &self,
        ids: Vec<PointId>,
        with_payload: PayloadSelector,
        with_vector: WithVector,
        consistency: ReadConsistency,
    ) -> Result<Vec<Record>> {
        let mut parts: BTreeMap<ShardId, Vec<PointId>> = BTreeMap::new();
        for id in &ids {
            parts.entry(self.shard_of(id)?).or_default().push(*id);
        }
        let found = try_join_all(parts.into_iter().map(|(shard, part)| {
            let request = ShardRequest::Retrieve {
                ids: part,
                with_payload: with_payload.clone(),
                with_vector: with_vector.clone(),
            };
            async move {
                expect_response!(
                    self.read_shard_consistent(shard, Arc::new(request), consistency)
                        .await?,
                    Records
                )
            }
        }))
        .await?;
        let mut by_id: BTreeMap<PointId, Record> = found.into_iter().flatten().map(|r| (r.id, r)).collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// `points/scroll`: by id from `offset`, or by a payload key with `order_by` (default limit
    /// 10, payload included). Strict mode checks the limit when given, the filter and the
    /// timeout; it costs 1 read token plus the filter's conditions.
    pub async fn scroll_points(
        &self,
        r: ScrollRequest,
        consistency: ReadConsistency,
        timeout: Option<u64>,
    ) -> Result<ScrollResult> {
        if let Some(s) = self.strict() {
            s.check_scroll(r.limit, r.filter.as_ref())?;
            s.check_timeout(timeout)?;
        }
        self.charge_read(|| strict_mode::scroll_cost(r.filter.as_ref()))?;
        let limit = r.limit.unwrap_or(DEFAULT_SCROLL_LIMIT);
        let with_payload = r.with_payload.unwrap_or(PayloadSelector::All);
        let with_vector = r.with_vector.unwrap_or_default();
        match r.order_by {
            Some(_) if r.offset.is_some() => Err(Error::bad_input(OFFSET_WITH_ORDER_BY)),
            Some(order) => {
                self.scroll_ordered(order.parse()?, limit, r.filter, with_payload, with_vector, consistency)
                    .await
            }
            None => {
                self.scroll(r.offset, limit, r.filter, with_payload, with_vector, consistency)
                    .await
            }
        }
    }

    async fn scroll(
        &self,
        offset: Option<PointId>,
        limit: usize,
        filter: Option<Filter>,
        with_payload: PayloadSelector,
        with_vector: WithVector,
        consistency: ReadConsistency,
    ) -> Result<ScrollResult> {
        query::check_limit(limit)?;
        if let Some(f) = &filter {
            f.validate()?;
        }
        let request = ShardRequest::Scroll {
            offset,
            limit: limit + 1,
            filter,
            with_payload,
            with_vector,
        };
        let pages = self.read_all_shards_with(request, consistency).await?;
        let mut points = Vec::new();
        for page in pages {
            points.extend(expect_response!(page, Records)?);
        }
        points.sort_by_key(|r| r.id);
        let next_page_offset = points.get(limit).map(|r| r.id);
        points.truncate(limit);
        Ok(ScrollResult {
            points,
            next_page_offset,
        })
    }

    /// `scroll` with `order_by`: the first `limit` (value, point) entries by the key, each point
    /// once per value, with `order_value`; no next page (Qdrant pages by `start_from`).
    async fn scroll_ordered(
        &self,
        order: OrderBy,
        limit: usize,
        filter: Option<Filter>,
        with_payload: PayloadSelector,
        with_vector: WithVector,
        consistency: ReadConsistency,
    ) -> Result<ScrollResult> {
        query::check_limit(limit)?;
        if let Some(f) = &filter {
            f.validate()?;
        }
        let query = ShardQuery {
            using: String::new(),
            kind: ShardQueryKind::OrderBy(order),
            filter,
            limit,
            params: Default::default(),
            score_threshold: None,
            with_payload,
            with_vector,
            exclude: Vec::new(),
            candidates: None,
            sibling: false,
        };
        let hits = self.search_shards(query, 0, limit, consistency).await?;
        Ok(ScrollResult {
            points: hits
                .into_iter()
                .map(|h| Record {
                    id: h.id,
                    payload: h.payload,
                    vector: h.vector,
                    shard_key: None,
                    order_value: h.order_value,
                })
                .collect(),
            next_page_offset: None,
        })
    }

    /// Value counts of `r.key` over the points matching `r.filter`, most frequent first (ties by
    /// value), summed over every shard. Costs 1 read token plus the filter's conditions.
    pub async fn facet(
        &self,
        r: FacetRequest,
        consistency: ReadConsistency,
        timeout: Option<u64>,
    ) -> Result<FacetResponse> {
        if let Some(s) = self.strict() {
            s.check_facet(&r)?;
            s.check_timeout(timeout)?;
        }
        self.charge_read(|| strict_mode::scroll_cost(r.filter.as_ref()))?;
        let limit = query::check_limit(r.limit.unwrap_or(DEFAULT_FACET_LIMIT))?;
        if let Some(f) = &r.filter {
            f.validate()?;
        }
        let request = ShardRequest::Facet {
            key: r.key,
            filter: r.filter,
        };
        let mut totals: BTreeMap<String, FacetHit> = BTreeMap::new();
        for answer in self.read_all_shards_with(request, consistency).await? {
            for hit in expect_response!(answer, Facet)? {
                totals
                    .entry(hit.value.to_string())
                    .and_modify(|t| t.count += hit.count)
                    .or_insert(hit);
            }
        }
        let mut hits: Vec<FacetHit> = totals.into_values().collect();
        hits.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| facet_order(&a.value, &b.value)));
        hits.truncate(limit);
        Ok(FacetResponse { hits })
    }

    /// `points/count` (always exact here; strict mode refuses `exact` under
    /// `search_allow_exact: false`). Costs 1 read token plus the filter's conditions.
    pub async fn count(
        &self,
        filter: Option<Filter>,
        exact: bool,
        consistency: ReadConsistency,
        timeout: Option<u64>,
    ) -> Result<usize> {
        if let Some(s) = self.strict() {
            s.check_count(filter.as_ref(), exact)?;
            s.check_timeout(timeout)?;
        }
        self.charge_read(|| strict_mode::scroll_cost(filter.as_ref()))?;
        self.count_points(filter, consistency).await
    }

    /// The points matching `filter` (for the collection's own use: no strict mode).
    pub(crate) async fn count_points(&self, filter: Option<Filter>, consistency: ReadConsistency) -> Result<usize> {
        if let Some(f) = &filter {
            f.validate()?;
        }
        let counts = self
            .read_all_shards_with(ShardRequest::Count { filter }, consistency)
            .await?;
        counts.into_iter().map(|c| expect_response!(c, Count)).sum()
    }

    /// Runs a resolved query on every shard and merges: best first, then `offset`/`limit`.
    pub async fn search_shards(
        &self,
        query: ShardQuery,
        offset: usize,
        limit: usize,
        consistency: ReadConsistency,
    ) -> Result<Vec<ScoredPoint>> {
        let distance = match &query.kind {
            ShardQueryKind::Dense(_) | ShardQueryKind::MultiDense(_) => self
                .config()
                .params
                .vectors
                .get(&query.using)
                .map(|p| p.distance)
                .unwrap_or(Distance::Dot),
            _ => Distance::Dot,
        };
        let by_id = matches!(query.kind, ShardQueryKind::None);
        let sampled = matches!(query.kind, ShardQueryKind::Sample);
        let query = self.weigh_by_idf(query).await?;
        let ordered = match &query.kind {
            ShardQueryKind::OrderBy(order) => Some(order.clone()),
            _ => None,
        };
        let results = self
            .read_all_shards_with(ShardRequest::Search { query }, consistency)
            .await?;
        let mut hits: Vec<ScoredPoint> = Vec::new();
        for result in results {
            hits.extend(expect_response!(result, Hits)?);
        }
        if let Some(order) = &ordered {
            hits.sort_by(|a, b| order.cmp((order_key(&a.order_value), a.id), (order_key(&b.order_value), b.id)));
        } else if by_id {
            hits.sort_by_key(|h| h.id);
        } else if sampled {
            // Each shard drew its own sample; mixing them keeps the draw random across shards.
            hits.shuffle(&mut rand::thread_rng());
        } else {
            hits.sort_by(|a, b| distance.cmp_best_first(a.score, b.score).then(a.id.cmp(&b.id)));
        }
        Ok(hits.into_iter().skip(offset).take(limit).collect())
    }

    /// A sparse query on a vector with `modifier: idf`: each term's weight multiplied by its
    /// IDF, from statistics summed over all shards (so every shard scores with the same weights;
    /// one replica per shard is enough for statistics).
    async fn weigh_by_idf(&self, mut query: ShardQuery) -> Result<ShardQuery> {
        let ShardQueryKind::Sparse(q) = &query.kind else {
            return Ok(query);
        };
        if !self.config().sparse_uses_idf(&query.using) || q.indices.is_empty() {
            return Ok(query);
        }
        let request = ShardRequest::SparseStats {
            using: query.using.clone(),
            indices: q.indices.clone(),
            corpus: query.params.idf.as_ref().and_then(|p| p.corpus()).cloned(),
        };
        let mut stats = SparseStats::default();
        for response in self.read_all_shards(request).await? {
            stats.merge(expect_response!(response, SparseStats)?);
        }
        if let ShardQueryKind::Sparse(q) = &mut query.kind {
            q.values.iter_mut().enumerate().for_each(|(i, w)| *w *= stats.idf(i));
        }
        Ok(query)
    }

    /// Blocks until every local shard's HNSW holds all written vectors, or the timeout passes.
    pub fn wait_indexed(&self, timeout: Duration) -> bool {
        self.local_shards().iter().all(|s| s.wait_indexed(timeout))
    }
}

/// Facet values in ascending order: numbers by value, strings and booleans as text.
fn facet_order(a: &serde_json::Value, b: &serde_json::Value) -> std::cmp::Ordering {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => x.cmp(y),
            _ => a.to_string().cmp(&b.to_string()),
        },
    }
}

/// Resolves the answers of several replicas of one shard: points (records, hits) that appear in
/// at least `needed` answers, taken from the first answer that has them; the smallest count
/// with `needed` == all answers, else the `needed`-th largest; the first answer otherwise.
/// The state of `peer`'s replica of `shard` in `routing` (Dead if it has none).
/// See [`Collection::execute_fenced`].
fn execute_fenced(
    routing: &RwLock<Option<Arc<Routing>>>,
    shard: &LocalShard,
    request: &ShardRequest,
) -> Result<ShardResponse> {
    match request {
        ShardRequest::Update { routing_index, .. } | ShardRequest::Repair { routing_index, .. } => {
            let routing = routing.read();
            let epoch = routing.as_ref().map_or(0, |r| r.write_epoch(shard.id));
            if *routing_index < epoch {
                return Ok(ShardResponse::Fenced(epoch));
            }
            execute(shard, request)
        }
        ShardRequest::Export { offset, limit, fence } => {
            let routing = routing.read();
            let index = transfer_source_check(routing.as_deref(), shard.id, *fence)?;
            let (points, tombstones) = shard.export(*offset, *limit);
            Ok(ShardResponse::Page {
                points,
                routing_index: index,
                tombstones,
            })
        }
        _ => match request.transfer_fence() {
            Some(fence) => {
                // Held across the read, as for a page: the state cannot move under it.
                let routing = routing.read();
                transfer_source_check(routing.as_deref(), shard.id, fence)?;
                execute(shard, request)
            }
            None => execute(shard, request),
        },
    }
}

/// A transfer source serves what it holds only once it routes by the transfer's start
/// (`fence`), and only from an Active replica (one marked Dead missed an acknowledged write).
/// Returns the index it routes by.
fn transfer_source_check(routing: Option<&Routing>, shard: ShardId, fence: u64) -> Result<u64> {
    let index = routing.map_or(0, |r| r.index);
    if index < fence {
        return Err(Error::Unavailable(format!(
            "the source replica has not applied the transfer's start ({index} < {fence})"
        )));
    }
    if let Some(r) = routing {
        let state = replica_state(r, shard, r.this_peer);
        if state != crate::cluster::ReplicaState::Active {
            return Err(Error::Unavailable(format!(
                "the source replica of shard {shard} is {state:?}, not Active"
            )));
        }
    }
    Ok(index)
}

fn replica_state(routing: &Routing, shard: ShardId, peer: crate::cluster::PeerId) -> crate::cluster::ReplicaState {
    routing
        .replicas(shard)
        .iter()
        .find(|r| r.peer == peer)
        .map(|r| r.state)
        .unwrap_or(crate::cluster::ReplicaState::Dead)
}

/// Opens (or creates) the local shard `id` of a collection with its payload indexes.
fn open_shard(path: &Path, id: ShardId, meta: &CollectionMeta, indexing: IndexingOptions) -> Result<LocalShard> {
    let shard = LocalShard::open(id, &path.join(id.to_string()), &meta.config, indexing)?;
    for (field, schema) in &meta.payload_indexes {
        // An index stored before its field was checked must not keep the shard closed.
        match shard.create_payload_index(field, schema.clone()) {
            Err(Error::BadInput(e)) => tracing::warn!(field = %field, error = %e, "payload index skipped"),
            other => other?,
        }
    }
    Ok(shard)
}

/// A payload index's field must be a JSON path (`a.b[].c`).
pub fn check_index_field(field: &str) -> Result<()> {
    field
        .parse::<crate::model::payload::JsonPath>()
        .map(|_| ())
        .map_err(Error::BadInput)
}

/// What each dense vector's storage and index are built with: a change reopens the shards (a
/// saved graph that no longer fits is rebuilt in the background; searches scan meanwhile).
type IndexSettings = (String, Option<bool>, usize, usize, Option<QuantizationConfig>);

fn index_settings(config: &CollectionConfig) -> Vec<IndexSettings> {
    config
        .params
        .vectors
        .by_name()
        .into_iter()
        .map(|(name, params)| {
            let hnsw = config.hnsw_for(&name);
            let quantization = config.quantization_for(&name);
            (name, params.on_disk, hnsw.m, hnsw.ef_construct, quantization)
        })
        .collect()
}

/// Waits (bounded) until nothing but the caller holds `value`: requests still running may use
/// a shard or collection, and RocksDB must be closed before its directory goes away.
pub fn wait_unused<T>(value: &Arc<T>, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    while Arc::strong_count(value) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn with_selector(op: &PointOperation, selector: Selector) -> PointOperation {
    let mut op = op.clone();
    match &mut op {
        PointOperation::Delete(s) | PointOperation::ClearPayload(s) => *s = selector,
        PointOperation::SetPayload { selector: s, .. }
        | PointOperation::OverwritePayload { selector: s, .. }
        | PointOperation::DeletePayload { selector: s, .. }
        | PointOperation::DeleteVectors { selector: s, .. } => *s = selector,
        PointOperation::Upsert(..) | PointOperation::UpdateVectors(..) => {}
    }
    op
}

/// Writes the collection's metadata atomically (temp file, fsync, rename).
pub(crate) fn write_meta(dir: &Path, meta: &CollectionMeta) -> Result<()> {
    let tmp = dir.join(format!("{META_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(meta).map_err(Error::internal)?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(META_FILE))?;
    Ok(())
}

/// Runs blocking storage work off the async runtime.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("storage task failed: {e}")))?
}
