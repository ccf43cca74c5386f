//! Backup of one cluster into a store, and restore of one backup into a cluster.
//!
//! `nodes` are the REST base URLs of the cluster's peers (every pod). A backup needs one
//! reachable Active replica per shard; a restore needs the whole cluster formed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::manifest::{backup_id, AliasBackup, CollectionBackup, Manifest, ShardBackup, FORMAT, MANIFEST};
use super::node::NodeClient;
use super::retention::{to_prune, Retention, StoredBackup};
use super::{hex, BackupError, BackupStore};
use crate::cluster_api::{ClusterApiError, PeerId, ReplicaState};

/// Where the peers answer and where temporary files go.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub client: NodeClient,
    /// REST base URLs, one per peer.
    pub nodes: Vec<String>,
    /// Scratch directory for one shard snapshot at a time.
    pub scratch: PathBuf,
}

/// The peers that answered `GET /cluster`, by peer id.
async fn peers(cluster: &Cluster) -> Result<BTreeMap<PeerId, String>, BackupError> {
    let mut peers = BTreeMap::new();
    let mut failures = Vec::new();
    for node in &cluster.nodes {
        match cluster.client.cluster_info(node).await {
            Ok(info) => match info.peer_id {
                Some(id) => {
                    peers.insert(id, node.clone());
                }
                // Standalone node: it holds every shard itself.
                None => {
                    peers.insert(0, node.clone());
                }
            },
            Err(e) => failures.push(e.to_string()),
        }
    }
    if peers.is_empty() {
        return Err(BackupError::NoNode(failures.join("; ")));
    }
    Ok(peers)
}

/// Per shard, the peers holding an Active replica and the points each reports.
async fn active_replicas(
    cluster: &Cluster,
    peers: &BTreeMap<PeerId, String>,
    collection: &str,
) -> Result<BTreeMap<u32, Vec<(PeerId, u64)>>, BackupError> {
    let mut shards: BTreeMap<u32, Vec<(PeerId, u64)>> = BTreeMap::new();
    for (peer, node) in peers {
        let info = cluster.client.collection_cluster(node, collection).await?;
        for local in info.local_shards {
            if local.state == ReplicaState::Active {
                shards
                    .entry(local.shard_id)
                    .or_default()
                    .push((*peer, local.points_count));
            }
        }
    }
    Ok(shards)
}

async fn local_points(cluster: &Cluster, node: &str, collection: &str, shard: u32) -> Option<u64> {
    let info = cluster.client.collection_cluster(node, collection).await.ok()?;
    info.local_shards
        .iter()
        .find(|s| s.shard_id == shard)
        .map(|s| s.points_count)
}

/// Takes a backup of every collection into `<id>/` of `store`; the manifest is written last.
pub async fn backup<S: BackupStore>(
    cluster: &Cluster,
    store: &S,
    now: jiff::Timestamp,
) -> Result<Manifest, BackupError> {
    let id = backup_id(now);
    let started = Instant::now();
    let peers = peers(cluster).await?;
    let first = peers.values().next().cloned().unwrap_or_default();
    let names = cluster.client.list_collections(&first).await?;
    let aliases = cluster.client.aliases(&first).await?;
    tokio::fs::create_dir_all(&cluster.scratch).await?;
    let mut collections = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let info = cluster.client.collection_info(&first, name).await?;
        let config = info.get("config").cloned().unwrap_or(Value::Null);
        let shard_number = config["params"]["shard_number"].as_u64().unwrap_or(1) as u32;
        let payload_schema = info
            .get("payload_schema")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let replicas = active_replicas(cluster, &peers, name).await?;
        let mut shards = Vec::new();
        for shard in 0..shard_number {
            let Some(&(peer, _)) = replicas.get(&shard).and_then(|r| r.first()) else {
                return Err(BackupError::NoActiveReplica {
                    collection: name.clone(),
                    shard,
                });
            };
            let node = &peers[&peer];
            let before = local_points(cluster, node, name, shard).await;
            let snapshot = cluster.client.create_shard_snapshot(node, name, shard).await?;
            let after = local_points(cluster, node, name, shard).await;
            let file = format!("c{index}-s{shard}.snapshot");
            let scratch = cluster.scratch.join(&file);
            let downloaded = cluster
                .client
                .download_shard_snapshot(node, name, shard, &snapshot.name, &scratch)
                .await;
            // The node's copy is not needed any more, whatever happened.
            if let Err(e) = cluster
                .client
                .delete_shard_snapshot(node, name, shard, &snapshot.name)
                .await
            {
                warn!(error = %e, snapshot = snapshot.name, "cannot delete the snapshot on the node");
            }
            let (size, sha256) = downloaded?;
            if let Some(expected) = &snapshot.checksum {
                if !expected.eq_ignore_ascii_case(&sha256) {
                    let _ = tokio::fs::remove_file(&scratch).await;
                    return Err(BackupError::Checksum {
                        what: format!("shard {shard} of {name}"),
                        expected: expected.clone(),
                        actual: sha256,
                    });
                }
            }
            let stored = store.put_file(&format!("{id}/{file}"), &scratch).await;
            let _ = tokio::fs::remove_file(&scratch).await;
            stored?;
            info!(collection = %name, shard, peer, bytes = size, "shard snapshot stored");
            shards.push(ShardBackup {
                id: shard,
                file,
                size_bytes: size,
                sha256,
                points: before.filter(|b| Some(*b) == after),
                peer_id: peer,
            });
        }
        collections.push(CollectionBackup {
            name: name.clone(),
            config,
            payload_schema,
            shards,
        });
    }
    let manifest = Manifest {
        format: FORMAT,
        id: id.clone(),
        started_at: now.to_string(),
        completed_at: (now + jiff::SignedDuration::try_from(started.elapsed()).unwrap_or_default()).to_string(),
        collections,
        aliases: aliases
            .into_iter()
            .map(|(alias, collection)| AliasBackup { alias, collection })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Manifest(e.to_string()))?;
    store.put_bytes(&format!("{id}/{MANIFEST}"), bytes).await?;
    Ok(manifest)
}

/// The backups in a store, complete or not, sorted by id.
pub async fn list_backups<S: BackupStore>(store: &S) -> Result<Vec<StoredBackup>, BackupError> {
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    for key in store.list("").await? {
        let Some((id, rest)) = key.split_once('/') else {
            continue;
        };
        let complete = found.entry(id.to_string()).or_default();
        *complete |= rest == MANIFEST;
    }
    Ok(found
        .into_iter()
        .map(|(id, complete)| StoredBackup { id, complete })
        .collect())
}

/// Deletes what the retention policy prunes; returns the deleted ids. Only directories named
/// like backup ids are ever touched. The manifest goes first, so a half-deleted backup is an
/// incomplete one.
pub async fn prune<S: BackupStore>(
    store: &S,
    retention: Retention,
    now: jiff::Timestamp,
    in_progress: Option<&str>,
) -> Result<Vec<String>, BackupError> {
    let backups = list_backups(store).await?;
    let doomed = to_prune(&backups, retention, now, in_progress);
    for id in &doomed {
        store.delete(&format!("{id}/{MANIFEST}")).await?;
        for key in store.list(&format!("{id}/")).await? {
            store.delete(&key).await?;
        }
        info!(backup = %id, "pruned");
    }
    Ok(doomed)
}

/// Reads the manifest of backup `id`, or of the newest complete backup.
pub async fn read_manifest<S: BackupStore>(store: &S, id: Option<&str>) -> Result<Manifest, BackupError> {
    let id = match id {
        Some(id) => id.to_string(),
        None => list_backups(store)
            .await?
            .into_iter()
            .rev()
            .find(|b| b.complete && super::manifest::parse_backup_id(&b.id).is_some())
            .map(|b| b.id)
            .ok_or_else(|| BackupError::NoManifest("(latest)".to_string()))?,
    };
    let bytes = match store.get_bytes(&format!("{id}/{MANIFEST}")).await {
        Ok(bytes) => bytes,
        Err(super::StoreError::NotFound(_)) => return Err(BackupError::NoManifest(id)),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&bytes).map_err(|e| BackupError::Manifest(e.to_string()))
}

/// The body of `PUT /collections/{c}` that recreates a collection from its reported config
/// (the create body spells `optimizers_config` where the info says `optimizer_config`).
pub fn create_body(config: &Value) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(params) = config.get("params").and_then(Value::as_object) {
        for (key, value) in params {
            body.insert(key.clone(), value.clone());
        }
    }
    for (from, to) in [
        ("hnsw_config", "hnsw_config"),
        ("optimizer_config", "optimizers_config"),
        ("wal_config", "wal_config"),
        ("quantization_config", "quantization_config"),
        ("strict_mode_config", "strict_mode_config"),
        ("metadata", "metadata"),
    ] {
        if let Some(value) = config.get(from) {
            body.insert(to.to_string(), value.clone());
        }
    }
    strip_nulls(Value::Object(body))
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// The `field_schema` that recreates one `payload_schema` entry: its parameters when it has
/// some (they carry the type), else its type.
pub fn index_schema(entry: &Value) -> Option<Value> {
    match entry.get("params") {
        Some(params) if params.is_object() => Some(params.clone()),
        _ => entry.get("data_type").cloned(),
    }
}

async fn sha256_file(path: &Path) -> Result<String, BackupError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(hex(&hasher.finalize()))
    })
    .await
    .map_err(|e| BackupError::Io(std::io::Error::other(e)))?
}

/// How long a restore waits for replicas to become Active.
const SETTLE: Duration = Duration::from_secs(600);

/// Waits until every shard of `collection` has `want` Active replicas (and no other state)
/// on the reachable peers; returns the Active replicas.
async fn wait_active(
    cluster: &Cluster,
    peers: &BTreeMap<PeerId, String>,
    collection: &str,
    shard_number: u32,
    all_replicas: bool,
    deadline: Instant,
) -> Result<BTreeMap<u32, Vec<(PeerId, u64)>>, BackupError> {
    loop {
        let mut settled = true;
        let mut active: BTreeMap<u32, Vec<(PeerId, u64)>> = BTreeMap::new();
        for (peer, node) in peers {
            match cluster.client.collection_cluster(node, collection).await {
                Ok(info) => {
                    for local in info.local_shards {
                        if local.state == ReplicaState::Active {
                            active
                                .entry(local.shard_id)
                                .or_default()
                                .push((*peer, local.points_count));
                        } else if all_replicas {
                            settled = false;
                        }
                    }
                    if all_replicas && !info.shard_transfers.is_empty() {
                        settled = false;
                    }
                }
                Err(_) => settled = false,
            }
        }
        if settled && (0..shard_number).all(|s| active.contains_key(&s)) {
            return Ok(active);
        }
        if Instant::now() > deadline {
            return Err(BackupError::Timeout(format!(
                "collection {collection}: replicas did not become Active"
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    pub id: String,
    /// `(collection, points)`.
    pub collections: Vec<(String, u64)>,
}

/// Pause between two attempts of a shard upload the node answered 503.
const UPLOAD_RETRY: Duration = Duration::from_secs(2);

/// Uploads one shard snapshot, again while the node answers 503 (its replica of the shard is
/// still in use and it kept it rather than swap it half-way; or it has no quorum right now),
/// until `deadline`.
async fn upload_shard(
    cluster: &Cluster,
    node: &str,
    collection: &str,
    shard: u32,
    file: &Path,
    sha256: &str,
    deadline: Instant,
) -> Result<(), BackupError> {
    loop {
        match cluster
            .client
            .upload_shard_snapshot(node, collection, shard, file, sha256)
            .await
        {
            Err(ClusterApiError::Status {
                status: 503, message, ..
            }) if Instant::now() + UPLOAD_RETRY < deadline => {
                warn!(collection, shard, node, %message, "shard upload refused for now; retrying");
                tokio::time::sleep(UPLOAD_RETRY).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Restores backup `id` (default: the newest complete one) into the cluster: recreates each
/// collection and its payload indexes, uploads every shard snapshot to a peer holding a
/// replica of that shard (the node re-syncs the others), recreates the aliases and checks the
/// point counts. A collection that already exists is reused (its shard shapes must fit), so a
/// failed restore can simply be run again.
pub async fn restore<S: BackupStore>(
    cluster: &Cluster,
    store: &S,
    id: Option<&str>,
) -> Result<RestoreReport, BackupError> {
    let manifest = read_manifest(store, id).await?;
    let peers = peers(cluster).await?;
    let first = peers.values().next().cloned().unwrap_or_default();
    tokio::fs::create_dir_all(&cluster.scratch).await?;
    let deadline = Instant::now() + SETTLE;
    let existing = cluster.client.list_collections(&first).await?;
    let mut report = RestoreReport {
        id: manifest.id.clone(),
        collections: Vec::new(),
    };
    for collection in &manifest.collections {
        let name = &collection.name;
        let shard_number = collection.config["params"]["shard_number"].as_u64().unwrap_or(1) as u32;
        if !existing.contains(name) {
            cluster
                .client
                .create_collection(&first, name, &create_body(&collection.config))
                .await?;
        }
        for (field, entry) in &collection.payload_schema {
            if let Some(schema) = index_schema(entry) {
                cluster
                    .client
                    .create_payload_index(&first, name, field, &schema)
                    .await?;
            }
        }
        let replicas = wait_active(cluster, &peers, name, shard_number, false, deadline).await?;
        for shard in &collection.shards {
            let Some(&(peer, _)) = replicas.get(&shard.id).and_then(|r| r.first()) else {
                return Err(BackupError::NoActiveReplica {
                    collection: name.clone(),
                    shard: shard.id,
                });
            };
            let scratch = cluster.scratch.join(&shard.file);
            store
                .get_file(&format!("{}/{}", manifest.id, shard.file), &scratch)
                .await?;
            let actual = sha256_file(&scratch).await?;
            if !actual.eq_ignore_ascii_case(&shard.sha256) {
                let _ = tokio::fs::remove_file(&scratch).await;
                return Err(BackupError::Checksum {
                    what: format!("stored shard {} of {name}", shard.id),
                    expected: shard.sha256.clone(),
                    actual,
                });
            }
            let uploaded = upload_shard(
                cluster,
                &peers[&peer],
                name,
                shard.id,
                &scratch,
                &shard.sha256,
                deadline,
            )
            .await;
            let _ = tokio::fs::remove_file(&scratch).await;
            uploaded?;
            info!(collection = %name, shard = shard.id, peer, "shard restored");
        }
    }
    let aliases: Vec<(String, String)> = manifest
        .aliases
        .iter()
        .map(|a| (a.alias.clone(), a.collection.clone()))
        .collect();
    let existing_aliases = cluster.client.aliases(&first).await?;
    let missing: Vec<(String, String)> = aliases.into_iter().filter(|a| !existing_aliases.contains(a)).collect();
    cluster.client.create_aliases(&first, &missing).await?;
    // Every replica re-synced, then the counts the backup recorded.
    for collection in &manifest.collections {
        let shard_number = collection.config["params"]["shard_number"].as_u64().unwrap_or(1) as u32;
        wait_active(cluster, &peers, &collection.name, shard_number, true, deadline).await?;
        let count = cluster.client.count(&first, &collection.name).await?;
        if let Some(expected) = collection.points() {
            if count != expected {
                return Err(BackupError::Verify(format!(
                    "collection {} has {count} points, the backup recorded {expected}",
                    collection.name
                )));
            }
        }
        report.collections.push((collection.name.clone(), count));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_body_renames_the_optimizer_config_and_drops_nulls() {
        let config = json!({
            "params": {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3,
                       "replication_factor": 2, "write_consistency_factor": 1, "on_disk_payload": true,
                       "sparse_vectors": {"s": {"modifier": "idf"}}},
            "hnsw_config": {"m": 16, "ef_construct": 100, "payload_m": null},
            "optimizer_config": {"indexing_threshold": 20000, "default_segment_number": null},
            "wal_config": {"wal_capacity_mb": 32},
            "quantization_config": null
        });
        assert_eq!(
            create_body(&config),
            json!({
                "vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3, "replication_factor": 2,
                "write_consistency_factor": 1, "on_disk_payload": true,
                "sparse_vectors": {"s": {"modifier": "idf"}},
                "hnsw_config": {"m": 16, "ef_construct": 100},
                "optimizers_config": {"indexing_threshold": 20000},
                "wal_config": {"wal_capacity_mb": 32}
            })
        );
    }

    #[test]
    fn index_schema_prefers_params() {
        assert_eq!(
            index_schema(&json!({"data_type": "keyword", "points": 3})),
            Some(json!("keyword"))
        );
        assert_eq!(
            index_schema(&json!({"data_type": "integer", "params": {"type": "integer", "range": true}, "points": 3})),
            Some(json!({"type": "integer", "range": true}))
        );
    }

    #[tokio::test]
    async fn prune_deletes_manifest_first_and_whole_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = super::super::DirStore::new(dir.path()).expect("store");
        for id in ["20261201T000000Z", "20261202T000000Z", "20261203T000000Z"] {
            store
                .put_bytes(&format!("{id}/c0-s0.snapshot"), vec![1])
                .await
                .expect("put");
            store
                .put_bytes(&format!("{id}/{MANIFEST}"), b"{}".to_vec())
                .await
                .expect("put");
        }
        store
            .put_bytes("20261204T000000Z/c0-s0.snapshot", vec![1])
            .await
            .expect("put");
        let now: jiff::Timestamp = "2026-12-05T00:00:00Z".parse().expect("ts");
        let retention = Retention {
            count: Some(2),
            max_age: None,
        };
        let deleted = prune(&store, retention, now, None).await.expect("prune");
        assert_eq!(deleted, ["20261201T000000Z", "20261204T000000Z"]);
        let left = list_backups(&store).await.expect("list");
        assert_eq!(
            left,
            [
                StoredBackup {
                    id: "20261202T000000Z".into(),
                    complete: true
                },
                StoredBackup {
                    id: "20261203T000000Z".into(),
                    complete: true
                }
            ]
        );
        assert!(!dir.path().join("20261201T000000Z").exists());
    }
}
