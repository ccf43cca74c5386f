//! Snapshots at the node: where snapshot files live, creating them from the local collections,
//! and recovering collections and shards from them. Standalone a recovery replaces the
//! collection; in cluster mode it replaces this peer's replicas and then brings the other
//! replicas in line as `priority` says.
//!
//! Layout (as Qdrant's): `<snapshots_path>/<collection>/` for collection snapshots,
//! `<snapshots_path>/<collection>/shards/<id>/` for shard snapshots, `<snapshots_path>/` for
//! full ones. Staging areas and downloads go to `storage.temp_path`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{cluster_sync, Node};
use crate::cluster::{ClusterOp, Consensus, ReplicaState, ShardId};
use crate::collection::{blocking, Collection};
use crate::error::{Error, Result};
use crate::metrics::SnapshotEvent;
use crate::model::alias::AliasAction;
use crate::model::collection::validate_collection_name;
use crate::model::snapshot::{
    same_checksum, validate_checksum, SnapshotDescription, SnapshotPriority, SnapshotRecover,
};
use crate::snapshot::fetch::{self, Download, Fetched};
use crate::snapshot::{archive, store, CollectionEntry, Manifest, SnapshotKind};

/// What a snapshot covers (a collection by its name or an alias of it).
#[derive(Debug, Clone)]
pub enum SnapshotScope {
    /// Every collection of this node, and the aliases.
    Full,
    /// The local shards of one collection.
    Collection(String),
    /// One local shard of one collection.
    Shard(String, ShardId),
}

impl SnapshotScope {
    /// The collection and, for a shard scope, the shard a recovery goes to (none for `Full`).
    fn recovery_target(&self) -> Option<(&str, Option<ShardId>)> {
        match self {
            SnapshotScope::Full => None,
            SnapshotScope::Collection(name) => Some((name, None)),
            SnapshotScope::Shard(name, shard) => Some((name, Some(*shard))),
        }
    }
}

/// Where a recovery's snapshot comes from.
pub enum SnapshotSource {
    /// `PUT .../snapshots/recover`: a `file://` or `http(s)://` location.
    Location(SnapshotRecover),
    /// `POST .../snapshots/upload`: a file the request body was streamed into (removed after).
    Upload {
        path: PathBuf,
        priority: Option<SnapshotPriority>,
        checksum: Option<String>,
    },
}

impl Node {
    fn snapshots_root(&self) -> &Path {
        &self.settings.storage.snapshots_path
    }

    /// Where uploads are streamed to before they are recovered.
    pub fn snapshot_upload_path(&self) -> Result<PathBuf> {
        let dir = self.settings.storage.temp_dir();
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join(format!("upload-{}.snapshot.partial", uuid::Uuid::new_v4())))
    }

    /// Removes what snapshots interrupted by a crash left behind (at start).
    pub fn clean_snapshot_leftovers(&self) {
        let removed = store::clean(self.snapshots_root()) + store::clean(&self.settings.storage.temp_dir());
        if removed > 0 {
            tracing::info!(removed, "removed leftovers of interrupted snapshots");
        }
    }

    /// The directory of the scope's snapshots; the collection (alias resolved) must exist.
    fn snapshot_dir(&self, scope: &SnapshotScope) -> Result<(PathBuf, Option<Arc<Collection>>)> {
        let root = self.snapshots_root();
        Ok(match scope {
            SnapshotScope::Full => (root.to_path_buf(), None),
            SnapshotScope::Collection(name) => {
                let c = self.collection(name)?;
                (root.join(&c.name), Some(c))
            }
            SnapshotScope::Shard(name, shard) => {
                let (c, shard) = (self.collection(name)?, *shard);
                if c.local_shard(shard).is_none() {
                    return Err(Error::not_found(format!("Shard {shard} is not found on this peer")));
                }
                (root.join(&c.name).join("shards").join(shard.to_string()), Some(c))
            }
        })
    }

    pub fn list_snapshots(&self, scope: &SnapshotScope) -> Result<Vec<SnapshotDescription>> {
        store::list(&self.snapshot_dir(scope)?.0)
    }

    /// The file of snapshot `name` (for download).
    pub fn snapshot_file(&self, scope: &SnapshotScope, name: &str) -> Result<PathBuf> {
        store::existing(&self.snapshot_dir(scope)?.0, name)
    }

    pub async fn delete_snapshot(&self, scope: &SnapshotScope, name: &str) -> Result<bool> {
        let dir = self.snapshot_dir(scope)?.0;
        let name = name.to_string();
        blocking(move || store::delete(&dir, &name)).await?;
        Ok(true)
    }

    /// Writes a snapshot of `scope` and returns its description.
    pub async fn create_snapshot(&self, scope: &SnapshotScope) -> Result<SnapshotDescription> {
        let _writer = self.snapshot_writer.lock().await;
        let started = Instant::now();
        let (dir, collection) = self.snapshot_dir(scope)?;
        let peer = self.consensus().map_or(0, |c| c.peer_id());
        let (name, kind, collections, only) = match (scope, collection) {
            (SnapshotScope::Collection(_), Some(c)) => {
                (store::new_name(&c.name, peer), SnapshotKind::Collection, vec![c], None)
            }
            (SnapshotScope::Shard(_, shard), Some(c)) => {
                let prefix = format!("{}-shard-{shard}", c.name);
                (
                    store::new_name(&prefix, peer),
                    SnapshotKind::Shard,
                    vec![c],
                    Some(*shard),
                )
            }
            _ => {
                let name = format!(
                    "full-snapshot-{}.{}",
                    chrono::Utc::now().format("%Y-%m-%d-%H-%M-%S"),
                    store::EXTENSION
                );
                (name, SnapshotKind::Full, self.collections(), None)
            }
        };
        let aliases = match kind {
            SnapshotKind::Full => self
                .list_aliases()
                .into_iter()
                .map(|a| (a.alias_name, a.collection_name))
                .collect(),
            _ => Default::default(),
        };
        let name = store::unused_name(&dir, name);
        let temp = self.settings.storage.temp_dir();
        let written = blocking(move || {
            let mut manifest = Manifest::new(kind);
            manifest.aliases = aliases;
            write_snapshot(&temp, &dir, &name, manifest, &collections, only)
        })
        .await;
        match &written {
            Ok(d) => {
                let seconds = started.elapsed().as_secs_f64();
                tracing::info!(snapshot = %d.name, bytes = d.size, seconds, "snapshot created");
                self.metrics
                    .observe_snapshot(SnapshotEvent::Created { bytes: d.size, seconds });
            }
            Err(e) => {
                tracing::warn!(error = %e, "snapshot failed");
                self.metrics.observe_snapshot(SnapshotEvent::Failed);
            }
        }
        written
    }

    /// Recovers a collection (or one shard of one) from a snapshot.
    pub async fn recover_snapshot(
        &self,
        scope: &SnapshotScope,
        source: SnapshotSource,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let started = Instant::now();
        let Some(target) = scope.recovery_target() else {
            if let SnapshotSource::Upload { path, .. } = source {
                let _ = std::fs::remove_file(path);
            }
            return Err(Error::BadRequest(
                "a full snapshot is recovered collection by collection, or whole with --storage-snapshot at start"
                    .into(),
            ));
        };
        let (fetched, priority, checksum) = match source {
            SnapshotSource::Location(request) => {
                validate_checksum(request.checksum.as_deref())?;
                let settings = &self.settings;
                let temp = settings.storage.temp_dir();
                let download = Download {
                    temp_dir: &temp,
                    api_key: request.api_key.as_deref(),
                    ca_cert: settings.tls.ca_cert.as_deref(),
                    allow_remote: settings.service.enable_snapshot_url_recovery,
                };
                let fetched = fetch::fetch(&request.location, self.snapshots_root(), download).await?;
                (fetched, request.priority, request.checksum)
            }
            SnapshotSource::Upload {
                path,
                priority,
                checksum,
            } => {
                let fetched = Fetched { path, temporary: true };
                if let Err(e) = validate_checksum(checksum.as_deref()) {
                    fetched.discard();
                    return Err(e);
                }
                (fetched, priority, checksum)
            }
        };
        let bytes = std::fs::metadata(&fetched.path).map(|m| m.len()).unwrap_or(0);
        let unpacked = self.unpack_dir();
        let result = self
            .recover_from(
                target,
                &fetched.path,
                &unpacked,
                priority.unwrap_or_default(),
                checksum,
                timeout,
            )
            .await;
        fetched.discard();
        let _ = tokio::fs::remove_dir_all(&unpacked).await;
        match &result {
            Ok(_) => {
                let seconds = started.elapsed().as_secs_f64();
                tracing::info!(?scope, bytes, seconds, "snapshot recovered");
                self.metrics
                    .observe_snapshot(SnapshotEvent::Recovered { bytes, seconds });
            }
            Err(e) => {
                tracing::warn!(?scope, error = %e, "snapshot recovery failed");
                self.metrics.observe_snapshot(SnapshotEvent::Failed);
            }
        }
        result.map(|()| true)
    }

    /// A fresh directory in `storage.temp_path` to unpack an archive into (removed after).
    pub(super) fn unpack_dir(&self) -> PathBuf {
        self.settings
            .storage
            .temp_dir()
            .join(format!("recover-{}.partial", uuid::Uuid::new_v4()))
    }

    /// Recovers `target` (a collection, or one of its shards) from the archive at `archive_path`.
    async fn recover_from(
        &self,
        (name, shard): (&str, Option<ShardId>),
        archive_path: &Path,
        unpacked: &Path,
        priority: SnapshotPriority,
        checksum: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let (archive_path, dest) = (archive_path.to_path_buf(), unpacked.to_path_buf());
        let manifest = blocking(move || {
            if let Some(expected) = checksum {
                let actual = archive::hash_file(&archive_path)?.sha256;
                if !same_checksum(&actual, &expected) {
                    return Err(Error::BadRequest(format!(
                        "Checksum mismatch: expected {expected}, got {actual}"
                    )));
                }
            }
            archive::unpack(&archive_path, &dest)
        })
        .await?;
        let target = self.real_name(name);
        let entry = manifest.collection_for(&target)?;
        let copy = unpacked.join(Collection::archive_dir(&entry.name));
        let Some(shard) = shard else {
            if manifest.kind == SnapshotKind::Shard {
                return Err(Error::BadRequest(format!(
                    "this is a snapshot of one shard; recover it with PUT /collections/{target}/shards/{{shard_id}}/snapshots/recover"
                )));
            }
            return match self.consensus() {
                None => self.restore_collection(&target, entry, &copy).await,
                Some(consensus) => {
                    self.restore_clustered(consensus, &target, entry, &copy, priority, timeout)
                        .await
                }
            };
        };
        let collection = self.collection(&target)?;
        check_compatible(&collection, entry)?;
        // A shard snapshot may go to any shard id; a collection snapshot gives its copy of that
        // shard.
        let from = match (manifest.kind, entry.shards.as_slice()) {
            (SnapshotKind::Shard, [one]) => one.id,
            _ if entry.shards.iter().any(|s| s.id == shard) => shard,
            _ => {
                return Err(Error::BadRequest(format!(
                    "the snapshot holds no copy of shard {shard}"
                )))
            }
        };
        self.restore_shard(&collection, shard, &copy.join(from.to_string()), priority, timeout)
            .await
    }

    /// Standalone: replaces (or creates) collection `name` with the snapshot's. The old
    /// collection is moved aside, not deleted, until the new one opened: a recovery that fails
    /// leaves it as it was.
    async fn restore_collection(&self, name: &str, entry: &CollectionEntry, copy: &Path) -> Result<()> {
        validate_collection_name(name)?;
        let _lifecycle = self.lifecycle.lock().await;
        if self.aliases.read().contains(name) {
            return Err(crate::cluster::state::alias_taken(name));
        }
        std::fs::create_dir_all(copy)?;
        let mut meta = entry.meta.clone();
        meta.cluster = None;
        crate::collection::write_meta(copy, &meta)?;
        let old = self.collections.write().remove(name);
        let target = self.collections_dir().join(name);
        let aside = self.trash_path(name)?;
        let (copy, n, indexing) = (copy.to_path_buf(), name.to_string(), self.indexing);
        let swapped = blocking(move || {
            let had_old = old.is_some();
            if let Some(old) = old {
                super::retire(old, &aside)?;
            }
            let opened = store::move_dir(&copy, &target).and_then(|()| Collection::open(&n, &target, indexing));
            match opened {
                Ok(c) => {
                    let _ = std::fs::remove_dir_all(&aside);
                    Ok(Ok(c))
                }
                Err(e) if had_old => {
                    let _ = std::fs::remove_dir_all(&target);
                    std::fs::rename(&aside, &target)?;
                    Ok(Err((e, Some(Collection::open(&n, &target, indexing)?))))
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&target);
                    Ok(Err((e, None)))
                }
            }
        })
        .await?;
        match swapped {
            Ok(c) => {
                self.registry_insert(c);
                Ok(())
            }
            Err((e, old)) => {
                if let Some(old) = old {
                    self.registry_insert(old);
                }
                Err(e)
            }
        }
    }

    /// Cluster mode: creates the collection with the snapshot's config if it does not exist,
    /// then recovers every shard the snapshot holds that has a replica on this peer.
    async fn restore_clustered(
        &self,
        consensus: &Arc<Consensus>,
        name: &str,
        entry: &CollectionEntry,
        copy: &Path,
        priority: SnapshotPriority,
        timeout: Option<Duration>,
    ) -> Result<()> {
        validate_collection_name(name)?;
        if !consensus.state().collections.contains_key(name) {
            let config = entry.meta.config.clone();
            cluster_sync::create_with_config(self, consensus, name, config, timeout).await?;
            for (field, schema) in &entry.meta.payload_indexes {
                self.create_payload_index(name, field, schema.clone(), timeout).await?;
            }
        }
        self.sync_view().await?;
        let collection = self.collection(name)?;
        check_compatible(&collection, entry)?;
        let mut recovered = 0;
        for shard in &entry.shards {
            if collection.local_shard(shard.id).is_none() {
                tracing::info!(collection = %name, shard = shard.id, "snapshot shard has no replica on this peer; skipped");
                continue;
            }
            self.restore_shard(
                &collection,
                shard.id,
                &copy.join(shard.id.to_string()),
                priority,
                timeout,
            )
            .await?;
            recovered += 1;
        }
        if recovered == 0 {
            return Err(Error::BadRequest(format!(
                "none of the snapshot's shards ({:?}) has a replica on this peer",
                entry.shards.iter().map(|s| s.id).collect::<Vec<_>>()
            )));
        }
        Ok(())
    }

    /// Replaces the local replica of `shard` with `copy`, then, in cluster mode, makes the
    /// replicas agree: `snapshot` marks the other replicas Dead (they are refilled from this
    /// one), `replica` marks this one Dead (refilled from the others), `no_sync` leaves them.
    async fn restore_shard(
        &self,
        collection: &Arc<Collection>,
        shard: ShardId,
        copy: &Path,
        priority: SnapshotPriority,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let replicas = || {
            self.consensus().map(|consensus| {
                let replicas = consensus
                    .state()
                    .collections
                    .get(&collection.name)
                    .and_then(|c| c.shards.get(&shard).cloned())
                    .unwrap_or_default();
                (consensus.peer_id(), replicas)
            })
        };
        // The snapshot can only win from a replica that serves: checked before and after the
        // swap (a write that failed on it meanwhile has it marked Dead and refilled).
        let serving = |(me, replicas): &(crate::cluster::PeerId, crate::cluster::state::ShardReplicas)| {
            if priority == SnapshotPriority::Snapshot && replicas.get(me) != Some(&ReplicaState::Active) {
                return Err(Error::Unavailable(format!(
                    "shard {shard}: the replica on this peer is {:?}, not Active; recover again once it is",
                    replicas.get(me)
                )));
            }
            Ok(())
        };
        if let Some(before) = replicas() {
            serving(&before)?;
        }
        {
            // Under the lifecycle lock: while the shard is out of the collection for the swap,
            // the cluster sync would otherwise see a placed replica missing, open a new one on
            // the same files, and the swap would find its RocksDB locked.
            let _lifecycle = self.lifecycle.lock().await;
            let (c, dir) = (collection.clone(), copy.to_path_buf());
            blocking(move || c.replace_local_shard(shard, &dir)).await?;
        }
        let (Some(consensus), Some(after)) = (self.consensus(), replicas()) else {
            return Ok(());
        };
        serving(&after)?;
        let (me, replicas) = after;
        let others_active: Vec<_> = replicas
            .iter()
            .filter(|(peer, state)| **peer != me && **state == ReplicaState::Active)
            .map(|(peer, _)| *peer)
            .collect();
        let dead = match priority {
            SnapshotPriority::NoSync => Vec::new(),
            SnapshotPriority::Snapshot => others_active,
            SnapshotPriority::Replica if others_active.is_empty() => Vec::new(),
            SnapshotPriority::Replica => vec![me],
        };
        let timeout = timeout.unwrap_or(super::DEFAULT_META_TIMEOUT);
        for peer in dead {
            let op = ClusterOp::SetReplicaState {
                collection: collection.name.clone(),
                shard,
                peer,
                state: ReplicaState::Dead,
                from_state: Some(ReplicaState::Active),
                source_active: None,
            };
            cluster_sync::propose_and_sync(self, consensus, op, timeout).await?;
        }
        Ok(())
    }
}

/// What to restore before the node serves (Qdrant's `--storage-snapshot` and `--snapshot`).
#[derive(Debug, Clone, Default)]
pub struct RestoreAtStart {
    /// A full snapshot: every collection and alias in it.
    pub storage_snapshot: Option<PathBuf>,
    /// Collection snapshots, each into the named collection.
    pub snapshots: Vec<(PathBuf, String)>,
    /// Replace collections that exist (otherwise they are left as they are).
    pub force: bool,
}

impl Node {
    /// Restores the snapshots named on the command line (standalone, before serving).
    pub async fn restore_at_start(&self, restore: &RestoreAtStart) -> Result<()> {
        if self.consensus().is_some() {
            return Err(Error::BadRequest(
                "--storage-snapshot/--snapshot restore a standalone node; in a cluster recover each collection through the API".into(),
            ));
        }
        let mut plan: Vec<(PathBuf, Option<String>)> = restore
            .snapshots
            .iter()
            .map(|(path, name)| (path.clone(), Some(name.clone())))
            .collect();
        if let Some(full) = &restore.storage_snapshot {
            plan.insert(0, (full.clone(), None));
        }
        for (path, only) in plan {
            let unpacked = self.unpack_dir();
            let result = self.restore_file_at_start(&path, only, &unpacked, restore.force).await;
            let _ = tokio::fs::remove_dir_all(&unpacked).await;
            result.map_err(|e| e.context(format!("restoring {}", path.display())))?;
        }
        Ok(())
    }

    async fn restore_file_at_start(
        &self,
        path: &Path,
        only: Option<String>,
        unpacked: &Path,
        force: bool,
    ) -> Result<()> {
        let (archive_path, dest) = (path.to_path_buf(), unpacked.to_path_buf());
        let manifest = blocking(move || archive::unpack(&archive_path, &dest)).await?;
        let entries: Vec<(String, &CollectionEntry)> = match &only {
            Some(name) => vec![(name.clone(), manifest.collection_for(name)?)],
            None => manifest.collections.iter().map(|c| (c.name.clone(), c)).collect(),
        };
        for (name, entry) in entries {
            if self.exists(&name) && !force {
                tracing::warn!(collection = %name, "exists; not restored from the snapshot (--force-snapshot replaces it)");
                continue;
            }
            let copy = unpacked.join(Collection::archive_dir(&entry.name));
            self.restore_collection(&name, entry, &copy).await?;
            tracing::info!(collection = %name, snapshot = %path.display(), "restored collection");
        }
        if only.is_none() && !manifest.aliases.is_empty() {
            let table = self.aliases.read().clone();
            let actions: Vec<AliasAction> = manifest
                .aliases
                .iter()
                .filter(|(alias, collection)| self.exists(collection) && !self.exists(alias) && !table.contains(alias))
                .map(|(alias, collection)| AliasAction::CreateAlias {
                    collection_name: collection.clone(),
                    alias_name: alias.clone(),
                })
                .collect();
            let table = table.apply(&actions, &|c| self.exists(c))?;
            self.save_aliases(table)?;
        }
        Ok(())
    }
}

/// A snapshot's shards fit a collection only with the same vectors and shard count.
pub(super) fn check_compatible(collection: &Collection, entry: &CollectionEntry) -> Result<()> {
    let (ours, theirs) = (collection.config().params, &entry.meta.config.params);
    let shape =
        |p: &crate::model::collection::CollectionParams| (p.vectors.clone(), p.sparse_vectors.clone(), p.shard_number);
    if shape(&ours) != shape(theirs) {
        return Err(Error::BadRequest(format!(
            "the snapshot's collection `{}` does not fit collection `{}`: vectors, sparse vectors and shard number must be the same",
            entry.name, collection.name
        )));
    }
    Ok(())
}

/// Checkpoints `collections` into a staging area under `temp`, packs it into `dir/name` and
/// returns its description (blocking). Nothing is left behind on failure.
pub(super) fn write_snapshot(
    temp: &Path,
    dir: &Path,
    name: &str,
    mut manifest: Manifest,
    collections: &[Arc<Collection>],
    only: Option<ShardId>,
) -> Result<SnapshotDescription> {
    std::fs::create_dir_all(dir)?;
    let staging = temp.join(format!("{name}-staging-{}.partial", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&staging)?;
    let path = dir.join(name);
    let partial = store::partial_path(&path);
    let written = (|| {
        for collection in collections {
            manifest.collections.push(collection.checkpoint(&staging, only)?);
        }
        let sum = archive::pack(&staging, &mut manifest, &partial)?;
        store::publish(&partial, &path, &sum.sha256)?;
        store::describe(&path)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}
