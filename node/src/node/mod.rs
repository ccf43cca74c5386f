//! `Node`: the registry of this node's collections. Every API (REST, peer gRPC) calls only
//! this; it owns the storage directory layout and the collections' lifecycle. Standalone, the
//! collection operations act directly; in cluster mode they go through consensus and
//! `cluster_sync` makes the local collections match the applied cluster state.

mod aliases;
pub mod anti_entropy;
pub mod cluster_reconcile;
pub mod cluster_sync;
pub mod query;
pub mod rebalance;
pub mod shard_transfer;
pub mod snapshots;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::cluster::{Consensus, ReplicaState};
use crate::collection::{blocking, wait_unused, Collection, LocalPlacement};
use crate::error::{Error, Result};
use crate::issues::Issues;
use crate::metrics::Metrics;
use crate::model::alias::AliasTable;
use crate::model::cluster::{ClusterOperation, CollectionClusterInfo, LocalShardInfo};
use crate::model::collection::{validate_collection_name, CollectionConfig, CreateCollection, UpdateCollection};
use crate::model::operations::{UpdateResult, UpdateStatus};
use crate::model::vector_name::{self, VectorNameConfig};
use crate::settings::Settings;
use crate::storage::index::IndexingOptions;
use crate::storage::payload_index::PayloadFieldSchema;

/// How long a collection operation may wait for consensus when the request names no `timeout`.
pub const DEFAULT_META_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Node {
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// The issues `/issues` reports (slow reads on unindexed payload keys).
    pub issues: Arc<Issues>,
    collections: RwLock<BTreeMap<String, Arc<Collection>>>,
    /// Standalone: the alias table (in cluster mode the cluster state holds it).
    aliases: RwLock<AliasTable>,
    /// Serialises create/delete so two requests cannot race on one name.
    lifecycle: tokio::sync::Mutex<()>,
    /// Snapshots are written one at a time: names have a resolution of a second, and two
    /// written at once would share one.
    snapshot_writer: tokio::sync::Mutex<()>,
    indexing: IndexingOptions,
    pub started: Instant,
    /// When the node started (`/telemetry`'s `app.startup`), to the hundredth of a second.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Identifies this process in `/telemetry` (as Qdrant's telemetry id).
    pub instance_id: uuid::Uuid,
    /// The cluster handle in cluster mode (set once by main after consensus started).
    consensus: OnceLock<Arc<Consensus>>,
    /// The log index up to which the local collections match the cluster state.
    reconciled: watch::Sender<u64>,
}

impl Node {
    fn collections_dir(&self) -> PathBuf {
        self.settings.storage.storage_path.join("collections")
    }

    /// Opens every collection found under the storage path.
    pub fn open(settings: Settings) -> Result<Node> {
        let started = Instant::now();
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let indexing = IndexingOptions {
            threads: match settings.storage.hnsw_index.max_indexing_threads {
                0 => cpus,
                n => n,
            },
            engine: settings.storage.hnsw_index.engine,
        };
        let issues = Arc::new(Issues::new(settings.service.slow_query()));
        let node = Node {
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            issues,
            collections: RwLock::new(BTreeMap::new()),
            aliases: RwLock::new(AliasTable::default()),
            lifecycle: tokio::sync::Mutex::new(()),
            snapshot_writer: tokio::sync::Mutex::new(()),
            indexing,
            started,
            started_at: chrono::SubsecRound::round_subsecs(chrono::Utc::now(), 2),
            instance_id: uuid::Uuid::new_v4(),
            consensus: OnceLock::new(),
            reconciled: watch::channel(0).0,
        };
        let dir = node.collections_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("cannot create storage directory {}: {e}", dir.display())))?;
        let deleted = node.settings.storage.storage_path.join(".deleted");
        if deleted.exists() {
            // Leftovers of deletions interrupted by a crash.
            let _ = std::fs::remove_dir_all(&deleted);
        }
        node.clean_snapshot_leftovers();
        *node.aliases.write() = aliases::load(&node.aliases_file())?;
        let mut points = 0;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if !entry.path().join("collection.json").is_file() {
                continue;
            }
            let t = Instant::now();
            let collection = Collection::open(&name, &entry.path(), node.indexing)?;
            let n = collection.points_count();
            points += n;
            tracing::info!(collection = %name, points = n, ms = t.elapsed().as_millis() as u64, "loaded collection");
            node.registry_insert(collection);
        }
        tracing::info!(
            collections = node.collections.read().len(),
            points,
            ms = started.elapsed().as_millis() as u64,
            "storage loaded"
        );
        Ok(node)
    }

    /// The collection `name` names: a collection, or an alias of one.
    pub fn collection(&self, name: &str) -> Result<Arc<Collection>> {
        let resolved = self.resolve_alias(name);
        let name = resolved.as_deref().unwrap_or(name);
        self.collections
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("Collection `{name}` doesn't exist!")))
    }

    /// The collection `name` stands for: its target if it is an alias, else itself.
    pub fn real_name(&self, name: &str) -> String {
        self.resolve_alias(name).unwrap_or_else(|| name.to_string())
    }

    pub fn collection_names(&self) -> Vec<String> {
        self.collections.read().keys().cloned().collect()
    }

    pub fn collections(&self) -> Vec<Arc<Collection>> {
        self.collections.read().values().cloned().collect()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.collections.read().contains_key(name)
    }

    /// In cluster mode, waits until this peer's collections reflect a read index taken now, so
    /// what it answers about collections (exists, info, list) is at least as new as anything
    /// acknowledged before the request: linearizable, where Qdrant answers from the local view.
    pub async fn sync_view(&self) -> Result<()> {
        match self.consensus() {
            Some(consensus) => cluster_sync::sync_view(self, consensus).await,
            None => Ok(()),
        }
    }

    /// The cluster handle, in cluster mode.
    pub fn consensus(&self) -> Option<&Arc<Consensus>> {
        self.consensus.get()
    }

    /// Enters cluster mode: from now on collection operations go through `consensus`.
    pub fn set_consensus(&self, consensus: Arc<Consensus>) -> Result<()> {
        self.consensus
            .set(consensus)
            .map_err(|_| Error::internal("consensus is already set"))
    }

    fn registry_insert(&self, collection: Collection) -> Arc<Collection> {
        collection.report_issues_to(self.issues.clone());
        let collection = Arc::new(collection);
        self.collections
            .write()
            .insert(collection.name.clone(), collection.clone());
        collection
    }

    /// Creates the collection's directory and local shards (all standalone; those of `cluster`
    /// in cluster mode) and registers it.
    async fn create_local(
        &self,
        name: &str,
        config: crate::model::collection::CollectionConfig,
        cluster: Option<LocalPlacement>,
    ) -> Result<Arc<Collection>> {
        let path = self.collections_dir().join(name);
        if path.exists() {
            // A directory without a registered collection: a failed earlier create.
            std::fs::remove_dir_all(&path)?;
        }
        let (n, indexing) = (name.to_string(), self.indexing);
        let created = blocking(move || Collection::create(&n, &path, config, indexing, cluster)).await;
        match created {
            Ok(c) => {
                tracing::info!(collection = %name, "created collection");
                Ok(self.registry_insert(c))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(self.collections_dir().join(name));
                Err(e)
            }
        }
    }

    /// Unregisters a collection and deletes its data. Returns false when it did not exist.
    async fn delete_local(&self, name: &str) -> Result<bool> {
        let Some(collection) = self.collections.write().remove(name) else {
            return Ok(false);
        };
        let trash = self.trash_path(name)?;
        blocking(move || {
            retire(collection, &trash)?;
            std::fs::remove_dir_all(&trash)?;
            Ok(())
        })
        .await?;
        self.issues.collection_deleted(name);
        tracing::info!(collection = %name, "deleted collection");
        Ok(true)
    }

    /// A fresh place in `<storage>/.deleted` for collection `name`'s directory (emptied at start).
    fn trash_path(&self, name: &str) -> Result<PathBuf> {
        let trash = self.settings.storage.storage_path.join(".deleted");
        std::fs::create_dir_all(&trash)?;
        Ok(trash.join(format!("{name}-{}", uuid::Uuid::new_v4())))
    }

    pub async fn create_collection(
        &self,
        name: &str,
        request: CreateCollection,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        validate_collection_name(name)?;
        if let Some(consensus) = self.consensus() {
            return cluster_sync::create_collection(self, consensus, name, request, timeout).await;
        }
        let config = request.into_config(&self.settings, 1)?;
        let _lifecycle = self.lifecycle.lock().await;
        if self.exists(name) {
            return Err(Error::AlreadyExists(format!("Collection `{name}` already exists!")));
        }
        if self.aliases.read().contains(name) {
            return Err(crate::cluster::state::alias_taken(name));
        }
        self.create_local(name, config, None).await?;
        Ok(true)
    }

    /// Returns false when the collection did not exist (Qdrant answers 200 with `false`).
    pub async fn delete_collection(&self, name: &str, timeout: Option<Duration>) -> Result<bool> {
        if let Some(consensus) = self.consensus() {
            return cluster_sync::delete_collection(self, consensus, name, timeout).await;
        }
        let _lifecycle = self.lifecycle.lock().await;
        let deleted = self.delete_local(name).await?;
        if deleted {
            let mut next = self.aliases.read().clone();
            next.remove_collection(name);
            self.save_aliases(next)?;
        }
        Ok(deleted)
    }

    pub async fn update_collection(
        &self,
        name: &str,
        update: UpdateCollection,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let name = &self.real_name(name);
        // Qdrant refills the rate limiters whenever the strict mode config is updated, changed
        // or not (here: those of the receiving peer).
        let strict_mode_updated = update.strict_mode_config.is_some();
        if let Some(consensus) = self.consensus() {
            cluster_sync::update_collection(self, consensus, name, update, timeout).await?;
        } else {
            let collection = self.collection(name)?;
            blocking(move || collection.update_config(&update)).await?;
        }
        if strict_mode_updated {
            if let Ok(collection) = self.collection(name) {
                collection.reset_rate_limiters();
            }
        }
        Ok(true)
    }

    /// Adds a named vector to a collection (through consensus in a cluster).
    pub async fn create_vector_name(
        &self,
        name: &str,
        vector: &str,
        config: VectorNameConfig,
        timeout: Option<Duration>,
    ) -> Result<UpdateResult> {
        let name = &self.real_name(name);
        if let Ok(collection) = self.collection(name) {
            collection.check_timeout(timeout.map(|t| t.as_secs()))?;
            collection.charge_schema_write()?;
        }
        self.change_vectors(name, timeout, move |current| {
            vector_name::with_vector(current, vector, &config)
        })
        .await
    }

    /// Removes a named vector, and its values from every point.
    pub async fn delete_vector_name(
        &self,
        name: &str,
        vector: &str,
        timeout: Option<Duration>,
    ) -> Result<UpdateResult> {
        let name = &self.real_name(name);
        if let Ok(collection) = self.collection(name) {
            collection.charge_schema_write()?;
        }
        self.change_vectors(name, timeout, move |current| {
            vector_name::without_vector(current, vector).map(Some)
        })
        .await
    }

    /// Applies a change of the collection's vectors computed from its current configuration
    /// (`None`: nothing to change).
    async fn change_vectors(
        &self,
        name: &str,
        timeout: Option<Duration>,
        change: impl FnOnce(&CollectionConfig) -> Result<Option<CollectionConfig>>,
    ) -> Result<UpdateResult> {
        if let Some(consensus) = self.consensus() {
            return cluster_sync::change_config(self, consensus, name, change, timeout).await;
        }
        let collection = self.collection(name)?;
        let _lifecycle = self.lifecycle.lock().await;
        if let Some(next) = change(&collection.config())? {
            let c = collection.clone();
            blocking(move || c.set_config(next)).await?;
        }
        Ok(UpdateResult {
            operation_id: Some(0),
            status: UpdateStatus::Completed,
        })
    }

    pub async fn create_payload_index(
        &self,
        name: &str,
        field: &str,
        schema: PayloadFieldSchema,
        timeout: Option<Duration>,
    ) -> Result<UpdateResult> {
        let name = &self.real_name(name);
        crate::collection::check_index_field(field)?;
        // Strict mode checks on the receiving peer, before the index goes through consensus.
        if let Ok(collection) = self.collection(name) {
            collection.check_create_index(timeout.map(|t| t.as_secs()))?;
            collection.charge_schema_write()?;
        }
        if let Some(consensus) = self.consensus() {
            return cluster_sync::create_payload_index(self, consensus, name, field, schema, timeout).await;
        }
        let created = self.collection(name)?.create_payload_index(field, schema).await?;
        self.issues.index_created(name, field);
        Ok(created)
    }

    pub async fn delete_payload_index(
        &self,
        name: &str,
        field: &str,
        timeout: Option<Duration>,
    ) -> Result<UpdateResult> {
        let name = &self.real_name(name);
        if let Ok(collection) = self.collection(name) {
            collection.charge_schema_write()?;
        }
        if let Some(consensus) = self.consensus() {
            return cluster_sync::delete_payload_index(self, consensus, name, field, timeout).await;
        }
        self.collection(name)?.delete_payload_index(field).await
    }

    /// `GET /collections/{c}/cluster`: the placement consensus decided; standalone, this node is
    /// peer 0 and every shard is local and Active.
    pub fn collection_cluster_info(&self, name: &str) -> Result<CollectionClusterInfo> {
        let name = &self.real_name(name);
        if let Some(consensus) = self.consensus() {
            return cluster_sync::collection_cluster_info(self, consensus, name);
        }
        let local_shards: Vec<_> = self
            .collection(name)?
            .shard_counts()
            .into_iter()
            .map(|(shard_id, points_count)| LocalShardInfo {
                shard_id,
                points_count,
                state: ReplicaState::Active,
            })
            .collect();
        Ok(CollectionClusterInfo {
            peer_id: 0,
            shard_count: local_shards.len(),
            local_shards,
            remote_shards: Vec::new(),
            shard_transfers: Vec::new(),
        })
    }

    /// `POST /collections/{c}/cluster`: move/replicate a shard, abort a transfer, drop a replica
    /// (cluster mode only).
    pub async fn update_collection_cluster(
        &self,
        name: &str,
        operation: ClusterOperation,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let name = &self.real_name(name);
        let consensus = self
            .consensus()
            .ok_or_else(|| Error::BadRequest("Distributed mode disabled".into()))?;
        self.collection(name)?;
        cluster_sync::update_collection_cluster(self, consensus, name, operation, timeout).await
    }

    /// Stops background work and saves indexes (graceful shutdown).
    pub fn shutdown(&self) {
        for c in self.collections() {
            c.close();
        }
    }
}

/// Closes an unregistered collection once running requests let go of it and its shards, and
/// moves its directory to `to` (blocking). Renaming first makes a delete atomic: a crash leaves
/// only trash behind; a recovery can still move it back.
fn retire(collection: Arc<Collection>, to: &std::path::Path) -> Result<()> {
    collection.close();
    wait_unused(&collection, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    while collection.shards_in_use() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let path = collection.path().to_path_buf();
    drop(collection);
    std::fs::rename(&path, to)?;
    Ok(())
}
