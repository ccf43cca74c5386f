//! A collection: its persisted configuration, its shards, the routing of point ids to shards
//! (hash ring) and the fan-out of reads over all shards with the merge of their results.

pub mod hash_ring;
pub mod query;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::try_join_all;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::collection::{CollectionConfig, UpdateCollection};
use crate::model::operations::{PointOperation, Selector, UpdateResult, UpdateStatus};
use crate::model::payload::PayloadSelector;
use crate::model::query::{Record, ScoredPoint, ScrollResult, ShardQuery};
use crate::model::vector::{Distance, WithVector};
use crate::model::{Filter, PointId};
use crate::storage::payload_index::{PayloadFieldSchema, PayloadIndexInfo};
use crate::storage::shard::LocalShard;
use hash_ring::HashRing;

const META_FILE: &str = "collection.json";

/// What is persisted per collection, besides its shards' data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionMeta {
    pub config: CollectionConfig,
    #[serde(default)]
    pub payload_indexes: BTreeMap<String, PayloadFieldSchema>,
}

/// `GET /collections/{name}` result.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionInfo {
    pub status: &'static str,
    pub optimizer_status: &'static str,
    pub warnings: Vec<serde_json::Value>,
    pub indexed_vectors_count: usize,
    pub points_count: usize,
    pub segments_count: usize,
    pub config: CollectionConfig,
    pub payload_schema: BTreeMap<String, PayloadIndexInfo>,
}

pub struct Collection {
    pub name: String,
    path: PathBuf,
    meta: RwLock<CollectionMeta>,
    shards: BTreeMap<u32, Arc<LocalShard>>,
    ring: HashRing,
}

impl Collection {
    /// Creates the collection's directory, config and shards.
    pub fn create(name: &str, path: &Path, config: CollectionConfig, index_threads: usize) -> Result<Collection> {
        std::fs::create_dir_all(path)?;
        let meta = CollectionMeta {
            config,
            payload_indexes: BTreeMap::new(),
        };
        write_meta(path, &meta)?;
        Self::open_with(name, path, meta, index_threads)
    }

    /// Opens an existing collection from its directory.
    pub fn open(name: &str, path: &Path, index_threads: usize) -> Result<Collection> {
        let text = std::fs::read(path.join(META_FILE))?;
        let meta: CollectionMeta = serde_json::from_slice(&text)
            .map_err(|e| Error::internal(format!("collection {name}: bad config: {e}")))?;
        Self::open_with(name, path, meta, index_threads)
    }

    fn open_with(name: &str, path: &Path, meta: CollectionMeta, index_threads: usize) -> Result<Collection> {
        let shard_ids: Vec<u32> = (0..meta.config.params.shard_number).collect();
        let mut shards = BTreeMap::new();
        for id in &shard_ids {
            let shard = LocalShard::open(*id, &path.join(id.to_string()), &meta.config, index_threads)?;
            for (field, schema) in &meta.payload_indexes {
                shard.create_payload_index(field, schema.clone())?;
            }
            shards.insert(*id, Arc::new(shard));
        }
        Ok(Collection {
            name: name.to_string(),
            path: path.to_path_buf(),
            meta: RwLock::new(meta),
            shards,
            ring: HashRing::new(shard_ids),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> CollectionConfig {
        self.meta.read().config.clone()
    }

    pub fn close(&self) {
        self.shards.values().for_each(|s| s.close());
    }

    /// Points per shard, by shard id.
    pub fn shard_counts(&self) -> Vec<(u32, usize)> {
        self.shards.iter().map(|(id, s)| (*id, s.points_count())).collect()
    }

    /// Whether anything besides this collection still holds one of its shards.
    pub fn shards_in_use(&self) -> bool {
        self.shards.values().any(|s| Arc::strong_count(s) > 1)
    }

    pub fn points_count(&self) -> usize {
        self.shards.values().map(|s| s.points_count()).sum()
    }

    pub fn info(&self) -> CollectionInfo {
        let pending: usize = self.shards.values().map(|s| s.pending_vectors_count()).sum();
        let mut payload_schema = BTreeMap::<String, PayloadIndexInfo>::new();
        for shard in self.shards.values() {
            for (field, info) in shard.payload_schema() {
                match payload_schema.get_mut(&field) {
                    Some(total) => total.points += info.points,
                    None => {
                        payload_schema.insert(field, info);
                    }
                }
            }
        }
        CollectionInfo {
            // Yellow while the background indexer still has vectors to add (Qdrant reports
            // yellow while optimizing), green once everything is in the HNSW.
            status: if pending > 0 { "yellow" } else { "green" },
            optimizer_status: "ok",
            warnings: Vec::new(),
            indexed_vectors_count: self.shards.values().map(|s| s.indexed_vectors_count()).sum(),
            points_count: self.points_count(),
            segments_count: self.shards.len(),
            config: self.config(),
            payload_schema,
        }
    }

    pub fn update_config(&self, update: &UpdateCollection) -> Result<()> {
        let mut meta = self.meta.write();
        let next = update.apply_to(&meta.config)?;
        let mut updated = meta.clone();
        updated.config = next;
        write_meta(&self.path, &updated)?;
        *meta = updated;
        Ok(())
    }

    pub async fn create_payload_index(&self, field: &str, schema: PayloadFieldSchema) -> Result<UpdateResult> {
        {
            let mut meta = self.meta.write();
            let mut updated = meta.clone();
            updated.payload_indexes.insert(field.to_string(), schema.clone());
            write_meta(&self.path, &updated)?;
            *meta = updated;
        }
        let field = field.to_string();
        self.on_each_shard(move |shard| shard.create_payload_index(&field, schema.clone()))
            .await?;
        Ok(self.completed())
    }

    pub async fn delete_payload_index(&self, field: &str) -> Result<UpdateResult> {
        {
            let mut meta = self.meta.write();
            let mut updated = meta.clone();
            if updated.payload_indexes.remove(field).is_none() {
                return Err(Error::not_found(format!(
                    "Payload index for field `{field}` does not exist"
                )));
            }
            write_meta(&self.path, &updated)?;
            *meta = updated;
        }
        let field = field.to_string();
        self.on_each_shard(move |shard| Ok(shard.drop_payload_index(&field)))
            .await?;
        Ok(self.completed())
    }

    fn completed(&self) -> UpdateResult {
        UpdateResult {
            operation_id: Some(self.shards.values().map(|s| s.last_seq()).max().unwrap_or(0)),
            status: UpdateStatus::Completed,
        }
    }

    /// Runs `f` on every shard in parallel on blocking threads.
    async fn on_each_shard<T, F>(&self, f: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(&LocalShard) -> Result<T> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        try_join_all(self.shards.values().map(|shard| {
            let (shard, f) = (shard.clone(), f.clone());
            async move { blocking(move || f(&shard)).await }
        }))
        .await
    }

    fn shard_of(&self, id: &PointId) -> Result<u32> {
        self.ring
            .shard_for(id)
            .ok_or_else(|| Error::internal(format!("collection {} has no shards", self.name)))
    }

    /// Splits an operation into the part each shard must execute.
    fn route(&self, op: PointOperation) -> Result<Vec<(u32, PointOperation)>> {
        let mut by_shard: BTreeMap<u32, PointOperation> = BTreeMap::new();
        match op {
            PointOperation::Upsert(points) => {
                let mut parts: BTreeMap<u32, Vec<_>> = BTreeMap::new();
                for p in points {
                    parts.entry(self.shard_of(&p.id)?).or_default().push(p);
                }
                by_shard.extend(parts.into_iter().map(|(s, p)| (s, PointOperation::Upsert(p))));
            }
            PointOperation::UpdateVectors(updates) => {
                let mut parts: BTreeMap<u32, Vec<_>> = BTreeMap::new();
                for u in updates {
                    parts.entry(self.shard_of(&u.0)?).or_default().push(u);
                }
                by_shard.extend(parts.into_iter().map(|(s, p)| (s, PointOperation::UpdateVectors(p))));
            }
            other => match other.selector() {
                Some(Selector::Ids(ids)) => {
                    let mut parts: BTreeMap<u32, Vec<PointId>> = BTreeMap::new();
                    for id in ids {
                        parts.entry(self.shard_of(id)?).or_default().push(*id);
                    }
                    for (shard, ids) in parts {
                        by_shard.insert(shard, with_selector(&other, Selector::Ids(ids)));
                    }
                }
                _ => {
                    for shard in self.shards.keys() {
                        by_shard.insert(*shard, other.clone());
                    }
                }
            },
        }
        Ok(by_shard.into_iter().collect())
    }

    /// Validates, routes and executes a write. `wait` makes it durable (WAL fsync) before
    /// returning; either way it is visible to reads when this returns.
    pub async fn update(&self, op: PointOperation, wait: bool) -> Result<UpdateResult> {
        let op = validate::prepare(&self.config(), op)?;
        let parts = self.route(op)?;
        let results = try_join_all(parts.into_iter().map(|(shard_id, op)| {
            let shard = self.shards.get(&shard_id).cloned();
            async move {
                let shard = shard.ok_or_else(|| Error::internal(format!("shard {shard_id} is not local")))?;
                blocking(move || shard.apply(&op, wait)).await
            }
        }))
        .await?;
        Ok(UpdateResult {
            operation_id: Some(results.into_iter().max().unwrap_or(0)),
            status: if wait {
                UpdateStatus::Completed
            } else {
                UpdateStatus::Acknowledged
            },
        })
    }

    /// The requested points that exist, in request order.
    pub async fn retrieve(
        &self,
        ids: Vec<PointId>,
        with_payload: PayloadSelector,
        with_vector: WithVector,
    ) -> Result<Vec<Record>> {
        let mut parts: BTreeMap<u32, Vec<PointId>> = BTreeMap::new();
        for id in &ids {
            parts.entry(self.shard_of(id)?).or_default().push(*id);
        }
        let found = try_join_all(parts.into_iter().map(|(shard_id, part)| {
            let shard = self.shards.get(&shard_id).cloned();
            let (wp, wv) = (with_payload.clone(), with_vector.clone());
            async move {
                let shard = shard.ok_or_else(|| Error::internal(format!("shard {shard_id} is not local")))?;
                blocking(move || Ok(shard.retrieve(&part, &wp, &wv))).await
            }
        }))
        .await?;
        let mut by_id: BTreeMap<PointId, Record> = found.into_iter().flatten().map(|r| (r.id, r)).collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    pub async fn scroll(
        &self,
        offset: Option<PointId>,
        limit: usize,
        filter: Option<Filter>,
        with_payload: PayloadSelector,
        with_vector: WithVector,
    ) -> Result<ScrollResult> {
        if let Some(f) = &filter {
            f.validate()?;
        }
        let filter = filter.map(Arc::new);
        let pages = self
            .on_each_shard(move |shard| {
                Ok(shard.scroll(offset, limit + 1, filter.as_deref(), &with_payload, &with_vector))
            })
            .await?;
        let mut points: Vec<Record> = pages.into_iter().flatten().collect();
        points.sort_by_key(|r| r.id);
        let next_page_offset = points.get(limit).map(|r| r.id);
        points.truncate(limit);
        Ok(ScrollResult {
            points,
            next_page_offset,
        })
    }

    pub async fn count(&self, filter: Option<Filter>) -> Result<usize> {
        if let Some(f) = &filter {
            f.validate()?;
        }
        let filter = filter.map(Arc::new);
        let counts = self
            .on_each_shard(move |shard| Ok(shard.count(filter.as_deref())))
            .await?;
        Ok(counts.into_iter().sum())
    }

    /// Runs a resolved query on every shard and merges: best first, then `offset`/`limit`.
    pub async fn search_shards(&self, query: ShardQuery, offset: usize, limit: usize) -> Result<Vec<ScoredPoint>> {
        let distance = match &query.kind {
            crate::model::query::ShardQueryKind::Dense(_) => self
                .config()
                .params
                .vectors
                .get(&query.using)
                .map(|p| p.distance)
                .unwrap_or(Distance::Dot),
            _ => Distance::Dot,
        };
        let by_id = matches!(query.kind, crate::model::query::ShardQueryKind::None);
        let query = Arc::new(query);
        let results = self.on_each_shard(move |shard| shard.search(&query)).await?;
        let mut hits: Vec<ScoredPoint> = results.into_iter().flatten().collect();
        if by_id {
            hits.sort_by_key(|h| h.id);
        } else {
            hits.sort_by(|a, b| distance.cmp_best_first(a.score, b.score).then(a.id.cmp(&b.id)));
        }
        Ok(hits.into_iter().skip(offset).take(limit).collect())
    }

    /// Blocks until every shard's HNSW holds all written vectors, or the timeout passes.
    pub fn wait_indexed(&self, timeout: std::time::Duration) -> bool {
        self.shards.values().all(|s| s.wait_indexed(timeout))
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
        PointOperation::Upsert(_) | PointOperation::UpdateVectors(_) => {}
    }
    op
}

/// Writes the collection's metadata atomically (temp file, fsync, rename).
fn write_meta(dir: &Path, meta: &CollectionMeta) -> Result<()> {
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
