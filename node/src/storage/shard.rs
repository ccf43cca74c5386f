//! One local shard: the points of one shard of one collection on this node.
//!
//! * Durability: every write is one RocksDB `WriteBatch` (WAL-synced when the caller waits)
//!   made under the shard's write lock, so disk order equals apply order.
//! * Serving: all points live in memory (`ShardState`): payloads, dense vectors in per-name
//!   arenas addressed by slot, payload indexes. Reads never touch RocksDB.
//! * Indexing: a background thread (`indexer`) adds new slots to each dense vector's HNSW
//!   and removes dead ones. Slots not yet in the HNSW are searched exactly, so a write is
//!   visible to search the moment it is acknowledged.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rand::seq::SliceRandom;
use roaring::RoaringBitmap;
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde_json::Value;

pub(crate) use self::arena::DenseArena;
use self::arena::{keeps_norms, normalize_keeping_norm, restore_norm};
use self::quantized::QuantizedSearch;
use super::filter::PointRef;
use super::formula::FormulaScorer;
use super::index::{self, HnswParams, IndexingOptions, VectorIndex};
use super::indexer::Indexer;
use super::payload_index::{PayloadFieldSchema, PayloadIndexInfo, PayloadIndexes, PayloadSchemaType};
use super::record::{self, StoredPoint};
use super::sparse_index::{SparseIndex, SparseStats};
use crate::error::{Error, Result};
use crate::model::collection::CollectionConfig;
use crate::model::facet::FacetHit;
use crate::model::operations::{PointOperation, Selector, UpdateMode};
use crate::model::order_by::OrderBy;
use crate::model::payload::{self, JsonPath, PayloadSelector};
use crate::model::query::{RecommendStrategy, Record, ScoredPoint, ShardQuery, ShardQueryKind};
use crate::model::vector::{self, Distance, NamedVectors, SparseVector, Vector, VectorInput, WithVector};
use crate::model::{Filter, Payload, PointId};

const CF_POINTS: &str = "points";
const CF_META: &str = "meta";
const KEY_SEQ: &[u8] = b"seq";
/// Writes between two scans for expired tombstones.
const TOMBSTONE_GC_EVERY: u64 = 1024;
/// Qdrant's default `optimizers_config.indexing_threshold` (KB).
const DEFAULT_INDEXING_THRESHOLD_KB: usize = 10_000;

/// Where a shard keeps the original vectors of `vector_name` when they are `on_disk`.
fn vector_file_path(shard_dir: &Path, vector_name: &str) -> PathBuf {
    let hex: String = vector_name.bytes().map(|b| format!("{b:02x}")).collect();
    shard_dir.join(format!("vectors-{hex}.f32"))
}

pub(crate) struct PointEntry {
    pub id: PointId,
    pub version: u64,
    pub payload: Payload,
    pub sparse: BTreeMap<String, SparseVector>,
    /// Multivectors by name.
    pub multi: BTreeMap<String, MultiRows>,
    /// Anti-entropy's fingerprint of the point (see `digest::point_fingerprint`).
    pub fingerprint: u64,
}

/// A multivector name's row size and distance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MultiSpace {
    pub dim: usize,
    pub distance: Distance,
    /// uint8 rows under Cosine: normalised for search, with their norms kept (as `DenseArena`).
    pub keep_norms: bool,
}

/// The rows of one multivector, concatenated, as search compares them.
pub(crate) struct MultiRows {
    pub rows: Box<[f32]>,
    pub norms: Option<Box<[f32]>>,
}

impl MultiRows {
    fn new(rows: Vec<Vec<f32>>, space: &MultiSpace) -> MultiRows {
        let mut flat = rows.concat();
        let norms = space
            .keep_norms
            .then(|| flat.chunks_exact_mut(space.dim).map(normalize_keeping_norm).collect());
        MultiRows {
            rows: flat.into_boxed_slice(),
            norms,
        }
    }

    /// The rows as they were written.
    fn output(&self, dim: usize) -> Vec<Vec<f32>> {
        let rows = self.rows.chunks_exact(dim.max(1));
        match &self.norms {
            Some(norms) => rows.zip(norms.iter()).map(|(r, n)| restore_norm(r, *n)).collect(),
            None => rows.map(<[f32]>::to_vec).collect(),
        }
    }
}

/// Splits a point's stored vectors into the entry's sparse and multivector maps, leaving the
/// dense ones (which live in the arenas).
#[allow(clippy::type_complexity)]
fn split_vectors(
    vectors: NamedVectors,
    multi_spaces: &BTreeMap<String, MultiSpace>,
) -> (
    Vec<(String, Vec<f32>)>,
    BTreeMap<String, SparseVector>,
    BTreeMap<String, MultiRows>,
) {
    let (mut dense, mut sparse, mut multi) = (Vec::new(), BTreeMap::new(), BTreeMap::new());
    for (name, v) in vectors {
        match v {
            Vector::Dense(d) => dense.push((name, d)),
            Vector::Sparse(s) => {
                sparse.insert(name, s);
            }
            Vector::MultiDense(rows) => {
                if let Some(space) = multi_spaces.get(&name) {
                    if !rows.is_empty() && rows.iter().all(|r| r.len() == space.dim) {
                        multi.insert(name, MultiRows::new(rows, space));
                    }
                }
            }
        }
    }
    (dense, sparse, multi)
}

pub(crate) enum Slot {
    Free,
    Live(PointEntry),
    /// Replaced or deleted; waits for the indexer to take it out of the HNSW, then becomes Free.
    Dying,
}

/// Per dense vector name: which slots the HNSW holds and which still wait for it.
#[derive(Default)]
pub(crate) struct IndexState {
    pub indexed: RoaringBitmap,
    pub pending: BTreeSet<u32>,
}

pub(crate) struct ShardState {
    pub ids: BTreeMap<PointId, u32>,
    pub slots: Vec<Slot>,
    free: Vec<u32>,
    pub dying: Vec<u32>,
    pub dense: BTreeMap<String, DenseArena>,
    pub index_state: BTreeMap<String, IndexState>,
    pub payload_indexes: PayloadIndexes,
    /// Inverted index of each sparse vector name.
    pub sparse_index: BTreeMap<String, SparseIndex>,
    pub multi: BTreeMap<String, MultiSpace>,
    /// The sparse vector names of the configuration.
    sparse_names: BTreeSet<String>,
    /// The shard's local operation counter (Qdrant's `operation_id`).
    seq: u64,
    pub(crate) tombstones: versions::Tombstones,
    /// The newest point version stored or deleted here.
    pub(crate) max_version: u64,
}

impl ShardState {
    pub fn live(&self, slot: u32) -> Option<&PointEntry> {
        match self.slots.get(slot as usize) {
            Some(Slot::Live(p)) => Some(p),
            _ => None,
        }
    }

    /// What the index of vector `name` holds for a live `slot`: the dense vector, or the
    /// multivector's rows concatenated.
    pub(crate) fn index_vector(&self, name: &str, slot: u32) -> Option<std::borrow::Cow<'_, [f32]>> {
        let point = self.live(slot)?;
        match self.dense.get(name) {
            Some(arena) => arena.get(slot),
            None => point.multi.get(name).map(|m| std::borrow::Cow::Borrowed(&*m.rows)),
        }
    }

    fn index_sparse(&mut self, slot: u32, sparse: &BTreeMap<String, SparseVector>) {
        for (name, v) in sparse {
            self.sparse_index.entry(name.clone()).or_default().insert(slot, v);
        }
    }

    /// Returns a slot the indexes no longer reference to the free list.
    pub(crate) fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }

    fn alloc(&mut self) -> Result<u32> {
        if let Some(s) = self.free.pop() {
            return Ok(s);
        }
        let s = u32::try_from(self.slots.len()).map_err(|_| Error::internal("shard slot space exhausted"))?;
        self.slots.push(Slot::Free);
        Ok(s)
    }

    /// Whether the shard has a vector space `name` of `v`'s kind.
    fn has_space(&self, name: &str, v: &Vector) -> bool {
        match v {
            Vector::Dense(_) => self.dense.contains_key(name),
            Vector::MultiDense(_) => self.multi.contains_key(name),
            Vector::Sparse(_) => self.sparse_names.contains(name),
        }
    }

    /// Keeps only vectors of this shard's spaces: a write checked against a configuration that
    /// still had a vector this shard has just dropped must not store it again.
    fn keep_own_spaces(&self, changes: &mut [Change]) {
        for change in changes {
            if let Change::Put { point, .. } = change {
                point.vectors.retain(|name, v| self.has_space(name, v));
            }
        }
    }

    fn has_vector(&self, slot: u32, name: &str) -> bool {
        match self.dense.get(name) {
            Some(arena) => arena.has(slot),
            None => self
                .live(slot)
                .is_some_and(|p| p.sparse.contains_key(name) || p.multi.contains_key(name)),
        }
    }

    fn named_vectors(&self, slot: u32) -> NamedVectors {
        let mut out = NamedVectors::new();
        for (name, arena) in &self.dense {
            if let Some(v) = arena.output(slot) {
                out.insert(name.clone(), Vector::Dense(v));
            }
        }
        if let Some(p) = self.live(slot) {
            for (name, s) in &p.sparse {
                out.insert(name.clone(), Vector::Sparse(s.clone()));
            }
            for (name, rows) in &p.multi {
                let dim = self.multi.get(name).map_or(rows.rows.len(), |m| m.dim);
                out.insert(name.clone(), Vector::MultiDense(rows.output(dim)));
            }
        }
        out
    }

    /// Full filter evaluation for one live slot.
    pub fn matches(&self, slot: u32, filter: Option<&Filter>) -> bool {
        let Some(point) = self.live(slot) else { return false };
        match filter {
            None => true,
            Some(f) => {
                let has_vector = |name: &str| self.has_vector(slot, name);
                let r = PointRef {
                    id: point.id,
                    payload: &point.payload,
                    has_vector: &has_vector,
                };
                self.payload_indexes.matches(f, &r)
            }
        }
    }

    /// Slots that may match `filter` (a superset), or every live slot.
    fn candidate_slots(&self, filter: Option<&Filter>) -> Vec<u32> {
        let narrowed = filter.and_then(|f| self.payload_indexes.candidates(f));
        match narrowed {
            Some(bitmap) => bitmap.iter().filter(|s| self.matches(*s, filter)).collect(),
            None => self
                .ids
                .values()
                .copied()
                .filter(|s| self.matches(*s, filter))
                .collect(),
        }
    }

    fn record(&self, slot: u32, with_payload: &PayloadSelector, with_vector: &WithVector) -> Option<Record> {
        let p = self.live(slot)?;
        Some(Record {
            id: p.id,
            payload: with_payload.apply(&p.payload),
            vector: self.vector_output(slot, with_vector),
            shard_key: None,
            order_value: None,
        })
    }

    fn vector_output(&self, slot: u32, with_vector: &WithVector) -> Option<VectorInput> {
        if with_vector.is_requested() {
            with_vector.select(&self.named_vectors(slot))
        } else {
            None
        }
    }
}

/// A change to one point, computed under the write lock before it is persisted.
enum Change {
    Put {
        id: PointId,
        point: StoredPoint,
        vectors_changed: bool,
    },
    /// Removes the point (if held) and leaves a tombstone at `version`.
    Delete { id: PointId, version: u64 },
}

impl Change {
    fn id(&self) -> PointId {
        match self {
            Change::Put { id, .. } | Change::Delete { id, .. } => *id,
        }
    }
}

/// Memory held for dense vectors (see `LocalShard::vector_memory`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct VectorMemory {
    pub vectors_ram_bytes: usize,
    pub index_ram_bytes: usize,
    /// Graph records kept in mapped files instead (page cache, not the heap).
    pub index_mmap_bytes: usize,
    /// Vectors searched through quantized codes.
    pub quantized_vectors: usize,
}

/// What applying a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The shard's operation number after the write.
    pub seq: u64,
    /// The newest version held by a point the write was older than (and so left alone).
    pub newer_held: Option<u64>,
}

pub struct LocalShard {
    pub id: u32,
    path: PathBuf,
    db: Arc<DB>,
    pub(crate) state: Arc<RwLock<ShardState>>,
    pub(crate) indexes: BTreeMap<String, Arc<dyn VectorIndex>>,
    write_lock: Mutex<()>,
    indexer: Mutex<Option<Indexer>>,
    /// While a shard transfer fills this replica, writes routed to it are queued here and
    /// applied after the transferred points (see `begin_buffering`).
    buffered: Mutex<Option<Vec<(PointOperation, u64)>>>,
}

fn db_options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_write_buffer_size(16 << 20);
    o.set_max_background_jobs(2);
    o.set_keep_log_file_num(2);
    o
}

impl LocalShard {
    /// Opens (or creates) the shard at `path`, loading every point into memory and the saved
    /// HNSW indexes where they are still valid.
    pub fn open(id: u32, path: &Path, config: &CollectionConfig, indexing: IndexingOptions) -> Result<LocalShard> {
        std::fs::create_dir_all(path)?;
        let db = DB::open_cf_descriptors(
            &db_options(),
            path.join("db"),
            [CF_POINTS, CF_META, versions::CF_TOMBSTONES].map(|n| ColumnFamilyDescriptor::new(n, Options::default())),
        )?;
        let db = Arc::new(db);

        let mut state = ShardState {
            ids: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            dying: Vec::new(),
            dense: BTreeMap::new(),
            index_state: BTreeMap::new(),
            payload_indexes: PayloadIndexes::default(),
            sparse_index: BTreeMap::new(),
            multi: BTreeMap::new(),
            sparse_names: config
                .params
                .sparse_vectors
                .iter()
                .flat_map(|m| m.keys().cloned())
                .collect(),
            seq: 0,
            tombstones: versions::Tombstones::default(),
            max_version: 0,
        };
        let mut indexes = BTreeMap::new();
        for (name, params) in config.params.vectors.by_name() {
            let dim = params.size as usize;
            let hnsw = config.hnsw_for(&name);
            if params.is_multi() {
                // Multivectors live in their points' entries (no arena) and are scored by
                // MaxSim: through an HNSW over whole multivectors unless `m` is 0 (Qdrant's
                // way to keep a vector for rescoring only), candidates rescored exactly.
                let space = MultiSpace {
                    dim,
                    distance: params.distance,
                    keep_norms: keeps_norms(&params),
                };
                state.multi.insert(name.clone(), space);
                if hnsw.m > 0 {
                    state.index_state.insert(name.clone(), IndexState::default());
                    let p = HnswParams {
                        dim,
                        distance: params.distance,
                        m: hnsw.m,
                        ef_construct: hnsw.ef_construct,
                        // Rows kept in the collection's quantization or datatype, as Qdrant
                        // quantizes multivectors too; candidates are rescored exactly.
                        quantization: config.quantization_for(&name),
                        datatype: params.datatype(),
                        multi: true,
                        on_disk: config.graph_on_disk(&name),
                    };
                    let engine = index::engine_for(indexing.engine, &p);
                    let index = index::open(engine, p, &index::index_path(path, &name, engine))?;
                    indexes.insert(name, index);
                }
                continue;
            }
            let mut arena = DenseArena::new(
                dim,
                params.distance,
                params.datatype(),
                hnsw.full_scan_threshold,
                hnsw.full_scan_threshold.max(
                    config
                        .optimizer_config
                        .indexing_threshold
                        .unwrap_or(DEFAULT_INDEXING_THRESHOLD_KB),
                ),
            );
            if params.on_disk == Some(true) {
                arena = arena.on_disk(&vector_file_path(path, &name))?;
            }
            state.dense.insert(name.clone(), arena);
            state.index_state.insert(name.clone(), IndexState::default());
            let p = HnswParams {
                dim,
                distance: params.distance,
                m: hnsw.m,
                ef_construct: hnsw.ef_construct,
                quantization: config.quantization_for(&name),
                datatype: params.datatype(),
                multi: false,
                on_disk: config.graph_on_disk(&name),
            };
            let engine = index::engine_for(indexing.engine, &p);
            let index = index::open(engine, p, &index::index_path(path, &name, engine))?;
            indexes.insert(name, index);
        }

        let meta = db
            .cf_handle(CF_META)
            .ok_or_else(|| Error::internal("missing meta column family"))?;
        if let Some(seq) = db.get_cf(&meta, KEY_SEQ)? {
            state.seq = u64::from_le_bytes(seq.as_slice().try_into().map_err(Error::internal)?);
        }
        let points = db
            .cf_handle(CF_POINTS)
            .ok_or_else(|| Error::internal("missing points column family"))?;
        for item in db.iterator_cf(&points, IteratorMode::Start) {
            let (key, value) = item?;
            let id = PointId::from_key(&key).ok_or_else(|| Error::internal("corrupt point key"))?;
            let stored = record::decode(&value)?;
            let slot = stored.slot;
            if state.slots.len() <= slot as usize {
                state.slots.resize_with(slot as usize + 1, || Slot::Free);
            }
            let (dense, sparse, multi) = split_vectors(stored.vectors, &state.multi);
            for (name, d) in dense {
                if let Some(arena) = state.dense.get_mut(&name) {
                    if arena.dim == d.len() {
                        arena.set(slot, &d)?;
                    }
                }
            }
            state.payload_indexes.insert(slot, &stored.payload);
            state.index_sparse(slot, &sparse);
            state.max_version = state.max_version.max(stored.version);
            state.slots[slot as usize] = Slot::Live(PointEntry {
                id,
                version: stored.version,
                payload: stored.payload,
                sparse,
                multi,
                fingerprint: 0,
            });
            state.refresh_fingerprint(slot);
            state.ids.insert(id, slot);
        }
        let tombstones = db
            .cf_handle(versions::CF_TOMBSTONES)
            .ok_or_else(|| Error::internal("missing tombstones column family"))?;
        // A loaded tombstone ages from now: how long the process was down is unknown.
        let loaded = std::time::Instant::now();
        for item in db.iterator_cf(&tombstones, IteratorMode::Start) {
            let (key, value) = item?;
            let id = PointId::from_key(&key).ok_or_else(|| Error::internal("corrupt tombstone key"))?;
            let version = u64::from_le_bytes(value.as_ref().try_into().map_err(Error::internal)?);
            state.tombstones.insert(id, version, loaded);
        }
        state.max_version = state.max_version.max(state.tombstones.max_version());
        state.free = (0..state.slots.len() as u32)
            .rev()
            .filter(|s| state.live(*s).is_none())
            .collect();

        // A saved HNSW may predate later writes: keep an entry only if it holds exactly the
        // point's current vector; everything else is (re)indexed in the background.
        for (name, index) in &indexes {
            let mut ist = IndexState::default();
            for slot in 0..state.slots.len() as u32 {
                let current = state.index_vector(name, slot);
                let saved = !index.is_empty() && index.contains(slot);
                match current {
                    Some(c) if saved && index.holds(slot, &c) => {
                        ist.indexed.insert(slot);
                    }
                    current => {
                        if saved {
                            index.remove(slot)?;
                        }
                        if current.is_some() {
                            ist.pending.insert(slot);
                        }
                    }
                }
            }
            state.index_state.insert(name.clone(), ist);
        }

        let shard = LocalShard {
            id,
            path: path.to_path_buf(),
            db,
            state: Arc::new(RwLock::new(state)),
            indexes,
            write_lock: Mutex::new(()),
            indexer: Mutex::new(None),
            buffered: Mutex::new(None),
        };
        let indexer = Indexer::start(
            format!("{}#{id}", path.display()),
            shard.state.clone(),
            shard.indexes.clone(),
            path.to_path_buf(),
            indexing.threads,
        );
        *shard.indexer.lock() = Some(indexer);
        Ok(shard)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the indexer (saving the HNSW) and releases the shard's files.
    pub fn close(&self) {
        if let Some(indexer) = self.indexer.lock().take() {
            indexer.stop();
        }
    }

    pub fn points_count(&self) -> usize {
        self.state.read().ids.len()
    }

    /// Vectors held by the HNSW indexes (summed over vector names).
    pub fn indexed_vectors_count(&self) -> usize {
        self.state
            .read()
            .index_state
            .values()
            .map(|s| s.indexed.len() as usize)
            .sum()
    }

    /// Vectors still waiting for the HNSW.
    pub fn pending_vectors_count(&self) -> usize {
        self.state.read().index_state.values().map(|s| s.pending.len()).sum()
    }

    /// Where the shard's dense vectors take memory: the original vectors in RAM, and the HNSW
    /// graphs (their links plus full vectors, or quantized codes).
    pub fn vector_memory(&self) -> VectorMemory {
        let state = self.state.read();
        VectorMemory {
            vectors_ram_bytes: state.dense.values().map(DenseArena::ram_bytes).sum(),
            index_ram_bytes: self.indexes.values().map(|i| i.memory_usage()).sum(),
            index_mmap_bytes: self.indexes.values().map(|i| i.mapped_memory()).sum(),
            quantized_vectors: self
                .indexes
                .iter()
                .filter(|(_, i)| i.quantization().is_some())
                .map(|(name, _)| state.index_state.get(name).map_or(0, |s| s.indexed.len() as usize))
                .sum(),
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.state.read().seq
    }

    /// Executes a write stamped `version` (0: the next version of this shard, for writes no
    /// coordinator stamped) and returns its operation number. Points already holding a version
    /// at least as new are left alone (see [`versions`]). With `sync` the RocksDB WAL is
    /// fsynced before returning. While buffering (a transfer fills this replica) the write is
    /// queued instead and applied by [`LocalShard::finish_buffering`].
    pub fn apply(&self, op: &PointOperation, version: u64, sync: bool) -> Result<Applied> {
        if let Some(queue) = self.buffered.lock().as_mut() {
            queue.push((op.clone(), version));
            return Ok(Applied {
                seq: self.last_seq(),
                newer_held: None,
            });
        }
        self.apply_now(op, version, sync)
    }

    /// Starts queueing incoming writes (before this replica is announced as a transfer target).
    pub fn begin_buffering(&self) {
        *self.buffered.lock() = Some(Vec::new());
    }

    /// Drops the queue (a transfer that failed: the replica is reset before the next one).
    pub fn cancel_buffering(&self) {
        *self.buffered.lock() = None;
    }

    /// Applies the queued writes on top of the transferred points, then applies writes
    /// directly again. Writes arriving meanwhile wait. A queued write that the transferred copy
    /// of a point already reflects is older than (or as old as) the copy's version and changes
    /// nothing, so the result equals the source's.
    pub fn finish_buffering(&self) -> Result<usize> {
        let mut buffered = self.buffered.lock();
        let queue = buffered.take().unwrap_or_default();
        for (op, version) in &queue {
            if let Err(e) = self.apply_now(op, *version, false) {
                // The same write failed on the source replica too (e.g. a missing point).
                tracing::debug!(shard = self.id, error = %e, "queued write not applicable");
            }
        }
        self.db.flush_wal(true)?;
        Ok(queue.len())
    }

    /// Executes a write now (bypassing the transfer queue).
    pub fn apply_now(&self, op: &PointOperation, version: u64, sync: bool) -> Result<Applied> {
        let _guard = self.write_lock.lock();
        let (seq, changes, newer_held) = {
            let state = self.state.read();
            let seq = state.seq + 1;
            let version = if version == 0 { state.max_version + 1 } else { version };
            let (changes, newer_held) = self.plan(&state, op, version)?;
            (seq, changes, newer_held)
        };
        self.commit(seq, changes, sync)?;
        self.wake_indexer();
        Ok(Applied { seq, newer_held })
    }

    fn wake_indexer(&self) {
        if let Some(indexer) = self.indexer.lock().as_ref() {
            indexer.wake();
        }
    }

    fn resolve(&self, state: &ShardState, selector: &Selector) -> Vec<PointId> {
        match selector {
            Selector::Ids(ids) => ids.iter().filter(|id| state.ids.contains_key(id)).copied().collect(),
            Selector::Filter(f) => {
                let mut slots = state.candidate_slots(Some(f));
                slots.sort_unstable();
                slots.iter().filter_map(|s| state.live(*s).map(|p| p.id)).collect()
            }
        }
    }

    /// The current stored form of a live point.
    fn current(&self, state: &ShardState, id: &PointId) -> Option<StoredPoint> {
        let slot = *state.ids.get(id)?;
        let p = state.live(slot)?;
        Some(StoredPoint {
            version: p.version,
            slot,
            vectors: state.named_vectors(slot),
            payload: p.payload.clone(),
        })
    }

    /// Turns an operation stamped `version` into per-point changes (slots are assigned at
    /// commit), and the newest version held by a point the write is older than, if any. Points
    /// held at the same version (the write again) or a newer one are left out.
    fn plan(&self, state: &ShardState, op: &PointOperation, version: u64) -> Result<(Vec<Change>, Option<u64>)> {
        let mut changes = Vec::new();
        let newer_held = std::cell::Cell::new(None::<u64>);
        let newer = |id: &PointId| {
            let held = state.held_version(id);
            if let Some(h) = held.filter(|h| *h > version) {
                newer_held.set(Some(newer_held.get().map_or(h, |n: u64| n.max(h))));
            }
            versions::is_newer(version, held)
        };
        let put_payload = |changes: &mut Vec<Change>, id: PointId, f: &dyn Fn(&mut Payload)| {
            if let Some(mut cur) = self.current(state, &id).filter(|_| newer(&id)) {
                f(&mut cur.payload);
                cur.version = version;
                changes.push(Change::Put {
                    id,
                    point: cur,
                    vectors_changed: false,
                });
            }
        };
        match op {
            PointOperation::Upsert(points, conditions) => {
                for p in points {
                    let existing = state.ids.get(&p.id).copied();
                    let allowed = match (conditions.mode, existing) {
                        (UpdateMode::InsertOnly, Some(_)) | (UpdateMode::UpdateOnly, None) => false,
                        (_, Some(slot)) => state.matches(slot, conditions.filter.as_ref()),
                        (_, None) => true,
                    };
                    if !allowed || !newer(&p.id) {
                        continue;
                    }
                    let vectors = p.vector.clone().into_named();
                    changes.push(Change::Put {
                        id: p.id,
                        point: StoredPoint {
                            version,
                            slot: 0,
                            vectors,
                            payload: p.payload.clone().unwrap_or_default(),
                        },
                        vectors_changed: true,
                    });
                }
            }
            PointOperation::Delete(sel) => {
                // Ids not held get a tombstone too: an older write of them may still arrive.
                let ids = match sel {
                    Selector::Ids(ids) => ids.clone(),
                    Selector::Filter(_) => self.resolve(state, sel),
                };
                changes.extend(
                    ids.into_iter()
                        .filter(|id| newer(id))
                        .map(|id| Change::Delete { id, version }),
                );
            }
            PointOperation::SetPayload { payload, selector, key } => {
                let key = key.as_deref().map(parse_path).transpose()?;
                for id in self.resolve(state, selector) {
                    put_payload(&mut changes, id, &|p| payload::set_payload(p, payload, key.as_ref()));
                }
            }
            PointOperation::OverwritePayload { payload, selector } => {
                for id in self.resolve(state, selector) {
                    put_payload(&mut changes, id, &|p| *p = payload.clone());
                }
            }
            PointOperation::DeletePayload { keys, selector } => {
                let paths = keys.iter().map(|k| parse_path(k)).collect::<Result<Vec<_>>>()?;
                for id in self.resolve(state, selector) {
                    put_payload(&mut changes, id, &|p| payload::delete_keys(p, &paths));
                }
            }
            PointOperation::ClearPayload(selector) => {
                for id in self.resolve(state, selector) {
                    put_payload(&mut changes, id, &|p| p.clear());
                }
            }
            PointOperation::UpdateVectors(updates, filter) => {
                for (id, vectors) in updates {
                    let Some(mut cur) = self.current(state, id) else {
                        return Err(Error::not_found(format!("No point with id {id} found")));
                    };
                    if !newer(id) {
                        continue;
                    }
                    // An existing point is live: without a filter it always matches.
                    if !state
                        .ids
                        .get(id)
                        .is_some_and(|slot| state.matches(*slot, filter.as_ref()))
                    {
                        continue;
                    }
                    cur.vectors.extend(vectors.clone());
                    cur.version = version;
                    changes.push(Change::Put {
                        id: *id,
                        point: cur,
                        vectors_changed: true,
                    });
                }
            }
            PointOperation::DeleteVectors { selector, names } => {
                for id in self.resolve(state, selector) {
                    if let Some(mut cur) = self.current(state, &id).filter(|_| newer(&id)) {
                        cur.vectors.retain(|n, _| !names.contains(n));
                        cur.version = version;
                        changes.push(Change::Put {
                            id,
                            point: cur,
                            vectors_changed: true,
                        });
                    }
                }
            }
        }
        state.keep_own_spaces(&mut changes);
        // A batch may name a point twice: the last change wins, as if applied in order.
        let mut seen = HashSet::new();
        changes.reverse();
        changes.retain(|c| seen.insert(c.id()));
        changes.reverse();
        Ok((changes, newer_held.get()))
    }

    fn commit(&self, seq: u64, changes: Vec<Change>, sync: bool) -> Result<()> {
        let points_cf = self
            .db
            .cf_handle(CF_POINTS)
            .ok_or_else(|| Error::internal("missing points column family"))?;
        let meta_cf = self
            .db
            .cf_handle(CF_META)
            .ok_or_else(|| Error::internal("missing meta column family"))?;
        let tombstones_cf = self
            .db
            .cf_handle(versions::CF_TOMBSTONES)
            .ok_or_else(|| Error::internal("missing tombstones column family"))?;
        let mut state = self.state.write();

        // Assign slots first: a point whose vectors change gets a fresh slot, so the HNSW never
        // holds a slot whose vector differs from the arena's.
        let mut planned = Vec::with_capacity(changes.len());
        let mut batch = WriteBatch::default();
        let mut allocated = Vec::new();
        let mut tombstoned = Vec::new();
        for change in changes {
            match change {
                Change::Put {
                    id,
                    mut point,
                    vectors_changed,
                } => {
                    let old = state.ids.get(&id).copied();
                    let slot = match (old, vectors_changed) {
                        (Some(s), false) => s,
                        _ => {
                            let s = state.alloc()?;
                            allocated.push(s);
                            s
                        }
                    };
                    point.slot = slot;
                    batch.put_cf(&points_cf, id.to_key(), record::encode(&point)?);
                    if state.tombstones.version(&id).is_some() {
                        batch.delete_cf(&tombstones_cf, id.to_key());
                    }
                    planned.push((id, Some(point), old));
                }
                Change::Delete { id, version } => {
                    batch.delete_cf(&points_cf, id.to_key());
                    batch.put_cf(&tombstones_cf, id.to_key(), version.to_le_bytes());
                    let old = state.ids.get(&id).copied();
                    planned.push((id, None, old));
                    tombstoned.push((id, version));
                }
            }
        }
        // Forget old tombstones now and then (the check is a scan).
        let expired = if seq % TOMBSTONE_GC_EVERY == 0 && !state.tombstones.is_empty() {
            state.tombstones.expired(std::time::Instant::now())
        } else {
            Vec::new()
        };
        for id in &expired {
            batch.delete_cf(&tombstones_cf, id.to_key());
        }
        batch.put_cf(&meta_cf, KEY_SEQ, seq.to_le_bytes());
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        if let Err(e) = self.db.write_opt(batch, &wo) {
            // Nothing was applied: give the slots back.
            state.free.extend(allocated);
            return Err(e.into());
        }
        state.seq = seq;
        for id in &expired {
            state.tombstones.remove(id);
        }
        let now = std::time::Instant::now();
        for (id, version) in tombstoned {
            state.tombstones.insert(id, version, now);
            state.max_version = state.max_version.max(version);
        }

        for (id, point, old) in planned {
            if let Some(old_slot) = old {
                let reused = point.as_ref().is_some_and(|p| p.slot == old_slot);
                let st = &mut *state;
                if let Some(Slot::Live(entry)) = st.slots.get(old_slot as usize) {
                    st.payload_indexes.remove(old_slot, &entry.payload);
                    for (name, v) in &entry.sparse {
                        if let Some(index) = st.sparse_index.get_mut(name) {
                            index.remove(old_slot, v);
                        }
                    }
                }
                if !reused {
                    self.retire(&mut state, old_slot);
                }
            }
            match point {
                None => {
                    state.ids.remove(&id);
                }
                Some(p) => {
                    state.tombstones.remove(&id);
                    state.max_version = state.max_version.max(p.version);
                    let slot = p.slot;
                    let reused = old == Some(slot);
                    let (dense, sparse, multi) = split_vectors(p.vectors, &state.multi);
                    // A reused slot keeps its vectors (only the payload changed).
                    for (name, d) in dense.into_iter().filter(|_| !reused) {
                        if let Some(arena) = state.dense.get_mut(&name) {
                            arena.set(slot, &d)?;
                            if let Some(ist) = state.index_state.get_mut(&name) {
                                ist.pending.insert(slot);
                            }
                        }
                    }
                    if !reused {
                        for name in multi.keys() {
                            if let Some(ist) = state.index_state.get_mut(name) {
                                ist.pending.insert(slot);
                            }
                        }
                    }
                    state.payload_indexes.insert(slot, &p.payload);
                    state.index_sparse(slot, &sparse);
                    state.slots[slot as usize] = Slot::Live(PointEntry {
                        id,
                        version: p.version,
                        payload: p.payload,
                        sparse,
                        multi,
                        fingerprint: 0,
                    });
                    state.refresh_fingerprint(slot);
                    state.ids.insert(id, slot);
                }
            }
        }
        Ok(())
    }

    /// Takes a slot out of service; the indexer frees it once the HNSW no longer holds it.
    fn retire(&self, state: &mut ShardState, slot: u32) {
        state.slots[slot as usize] = Slot::Dying;
        for arena in state.dense.values_mut() {
            arena.clear(slot);
        }
        for ist in state.index_state.values_mut() {
            ist.pending.remove(&slot);
        }
        state.dying.push(slot);
    }

    pub fn retrieve(&self, ids: &[PointId], with_payload: &PayloadSelector, with_vector: &WithVector) -> Vec<Record> {
        let state = self.state.read();
        let mut seen = HashSet::new();
        ids.iter()
            .filter(|id| seen.insert(**id))
            .filter_map(|id| {
                state
                    .ids
                    .get(id)
                    .and_then(|s| state.record(*s, with_payload, with_vector))
            })
            .collect()
    }

    /// Up to `limit` points with id >= `offset` matching `filter`, in id order.
    pub fn scroll(
        &self,
        offset: Option<PointId>,
        limit: usize,
        filter: Option<&Filter>,
        with_payload: &PayloadSelector,
        with_vector: &WithVector,
    ) -> Vec<Record> {
        let state = self.state.read();
        let range = match offset {
            Some(o) => state.ids.range(o..),
            None => state.ids.range(..),
        };
        range
            .filter(|(_, slot)| state.matches(**slot, filter))
            .take(limit)
            .filter_map(|(_, slot)| state.record(*slot, with_payload, with_vector))
            .collect()
    }

    /// The first `query.limit` (value, point) entries by `order`'s key, each point once per value
    /// (from `start_from` on); score 1 and the value as `order_value`, as Qdrant answers.
    fn ordered(&self, order: &OrderBy, query: &ShardQuery) -> Result<Vec<ScoredPoint>> {
        let state = self.state.read();
        let kind = state.payload_indexes.get(&order.key).map(|s| s.kind());
        let value_of: fn(&Value) -> Option<(f64, Value)> = match kind {
            Some(PayloadSchemaType::Integer) => |v| v.as_i64().map(|i| (i as f64, Value::from(i))),
            Some(PayloadSchemaType::Float) => |v| v.as_f64().map(|f| (f, Value::from(f))),
            Some(PayloadSchemaType::Datetime) => |v| {
                let micros = crate::model::filter::parse_datetime(v.as_str()?)?.timestamp_micros();
                Some((micros as f64, Value::from(micros)))
            },
            _ => {
                return Err(Error::BadRequest(format!(
                    "No range index for `order_by` key: {}. Please create one to use `order_by`. Integer, float, and datetime payloads can have range indexes, see https://qdrant.tech/documentation/concepts/indexing/#payload-index.",
                    order.key
                )))
            }
        };
        let path = parse_path(&order.key)?;
        let slots: Vec<u32> = match &query.candidates {
            Some(ids) => ids.iter().filter_map(|id| state.ids.get(id).copied()).collect(),
            None => state.candidate_slots(query.filter.as_ref()),
        };
        let mut entries: Vec<(f64, PointId, u32, Value)> = Vec::new();
        for slot in slots {
            if query.candidates.is_some() && !state.matches(slot, query.filter.as_ref()) {
                continue;
            }
            let Some(point) = state.live(slot) else { continue };
            for v in payload::flat_values_at(&point.payload, &path) {
                if let Some((key, value)) = value_of(v) {
                    if order.starts_before(key) {
                        entries.push((key, point.id, slot, value));
                    }
                }
            }
        }
        entries.sort_by(|a, b| order.cmp((a.0, a.1), (b.0, b.1)));
        entries.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        entries.truncate(query.limit);
        Ok(entries
            .into_iter()
            .filter_map(|(_, _, slot, value)| {
                let p = state.live(slot)?;
                Some(ScoredPoint {
                    id: p.id,
                    version: p.version,
                    score: 1.0,
                    payload: query.with_payload.apply(&p.payload),
                    vector: state.vector_output(slot, &query.with_vector),
                    shard_key: None,
                    order_value: Some(value),
                })
            })
            .collect())
    }

    /// How many points matching `filter` have each value of `key` that its payload index holds
    /// (strings for keyword and uuid indexes, integers, booleans); a point counts once per value.
    pub fn facet(&self, key: &str, filter: Option<&Filter>) -> Result<Vec<FacetHit>> {
        let state = self.state.read();
        let kind = state.payload_indexes.get(key).map(|s| s.kind());
        let accepts: fn(&Value) -> bool = match kind {
            Some(PayloadSchemaType::Keyword) => |v| v.is_string(),
            Some(PayloadSchemaType::Uuid) => |v| v.as_str().is_some_and(|s| s.parse::<uuid::Uuid>().is_ok()),
            Some(PayloadSchemaType::Integer) => |v| v.is_i64() || v.is_u64(),
            Some(PayloadSchemaType::Bool) => |v| v.is_boolean(),
            _ => {
                return Err(Error::BadRequest(format!(
                    "Index required but not found for \"{key}\" of one of the following types: [keyword, integer, bool, uuid]. Help: Create an index for this key or use a different filter."
                )))
            }
        };
        let path = parse_path(key)?;
        let mut counts: BTreeMap<String, (Value, usize)> = BTreeMap::new();
        for slot in state.candidate_slots(filter) {
            let Some(point) = state.live(slot) else { continue };
            let mut seen = HashSet::new();
            for v in payload::flat_values_at(&point.payload, &path) {
                if accepts(v) && seen.insert(v.to_string()) {
                    counts.entry(v.to_string()).or_insert_with(|| (v.clone(), 0)).1 += 1;
                }
            }
        }
        Ok(counts
            .into_values()
            .map(|(value, count)| FacetHit { value, count })
            .collect())
    }

    /// Removes the vectors `names` from every stored point, so that a vector deleted from the
    /// collection cannot come back if one of the same name is created later. The shard is
    /// reopened without those vector spaces afterwards.
    pub fn purge_vectors(&self, names: &BTreeSet<String>) -> Result<usize> {
        let _writer = self.write_lock.lock();
        let points_cf = self
            .db
            .cf_handle(CF_POINTS)
            .ok_or_else(|| Error::internal("missing points column family"))?;
        let state = self.state.read();
        let mut batch = WriteBatch::default();
        let mut purged = 0;
        for (id, slot) in &state.ids {
            let Some(p) = state.live(*slot) else { continue };
            let mut vectors = state.named_vectors(*slot);
            let before = vectors.len();
            vectors.retain(|name, _| !names.contains(name));
            if vectors.len() == before {
                continue;
            }
            let point = StoredPoint {
                version: p.version,
                slot: *slot,
                vectors,
                payload: p.payload.clone(),
            };
            batch.put_cf(&points_cf, id.to_key(), record::encode(&point)?);
            purged += 1;
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options)?;
        Ok(purged)
    }

    /// IDF statistics of sparse vector `name` for the terms `indices`, over the points matching
    /// `corpus` (all points when absent).
    pub fn sparse_stats(&self, name: &str, indices: &[u32], corpus: Option<&Filter>) -> SparseStats {
        let state = self.state.read();
        let mut stats = SparseStats {
            points: 0,
            df: vec![0; indices.len()],
        };
        for slot in state.candidate_slots(corpus) {
            let Some(v) = state.live(slot).and_then(|p| p.sparse.get(name)) else {
                continue;
            };
            stats.points += 1;
            for (df, term) in stats.df.iter_mut().zip(indices) {
                if v.indices.binary_search(term).is_ok() {
                    *df += 1;
                }
            }
        }
        stats
    }

    pub fn count(&self, filter: Option<&Filter>) -> usize {
        let state = self.state.read();
        match filter {
            None => state.ids.len(),
            Some(_) => state.candidate_slots(filter).len(),
        }
    }

    /// Best `query.limit` points, best first.
    /// Whether searching `query` is a graph walk plus an exact pass over at most a few thousand
    /// not-yet-indexed vectors: short enough to run on an async worker thread.
    pub fn search_is_short(&self, query: &ShardQuery) -> bool {
        /// Vectors still waiting for the indexer that one inline search may scan exactly.
        const MAX_PENDING: usize = 2048;
        let state = self.state.read();
        state
            .index_state
            .get(&query.using)
            .is_some_and(|ist| !ist.indexed.is_empty() && ist.pending.len() <= MAX_PENDING)
    }

    pub fn search(&self, query: &ShardQuery) -> Result<Vec<ScoredPoint>> {
        if let ShardQueryKind::OrderBy(order) = &query.kind {
            return self.ordered(order, query);
        }
        let state = self.state.read();
        let excluded: HashSet<u32> = query
            .exclude
            .iter()
            .filter_map(|id| state.ids.get(id).copied())
            .collect();
        let filter = query.filter.as_ref();
        let accept = |slot: u32| !excluded.contains(&slot) && state.matches(slot, filter);
        // A re-scoring query looks only at its prefetched candidates (those this shard holds).
        let candidates: Option<Vec<u32>> = query
            .candidates
            .as_ref()
            .map(|ids| ids.iter().filter_map(|id| state.ids.get(id).copied()).collect());
        let universe = || -> Box<dyn Iterator<Item = u32> + '_> {
            match &candidates {
                Some(slots) => Box::new(slots.iter().copied()),
                None => Box::new(state.ids.values().copied()),
            }
        };

        let hits: Vec<(u32, f32)> = match &query.kind {
            ShardQueryKind::Dense(q) => {
                let arena = state
                    .dense
                    .get(&query.using)
                    .ok_or_else(|| Error::bad_input(format!("Not existing vector name: {}", query.using)))?;
                self.search_dense(&state, arena, q, query, candidates.as_deref(), &accept)?
            }
            ShardQueryKind::Sparse(q) if candidates.is_none() => {
                let q = q.clone().sorted();
                match state.sparse_index.get(&query.using) {
                    Some(index) => index.search(&q, state.slots.len(), query.limit, &accept),
                    None => Vec::new(),
                }
            }
            ShardQueryKind::MultiDense(q) => {
                let space = state
                    .multi
                    .get(&query.using)
                    .ok_or_else(|| Error::bad_input(format!("Not existing multivector name: {}", query.using)))?;
                if q.is_empty() || q.iter().any(|r| r.len() != space.dim) {
                    return Err(Error::bad_input(format!(
                        "Vector dimension error: expected dim: {}, got {}",
                        space.dim,
                        q.iter().find(|r| r.len() != space.dim).map_or(0, Vec::len)
                    )));
                }
                self.search_multi(&state, space, &q.concat(), query, candidates.as_deref(), &accept)?
            }
            // Re-scoring prefetched candidates: score just those.
            ShardQueryKind::Sparse(q) => {
                let q = q.clone().sorted();
                let mut scored: Vec<(u32, f32)> = universe()
                    .filter(|s| accept(*s))
                    .filter_map(|s| {
                        let v = state.live(s)?.sparse.get(&query.using)?;
                        let overlaps = v.indices.iter().any(|i| q.indices.binary_search(i).is_ok());
                        overlaps.then(|| (s, v.dot(&q)))
                    })
                    .collect();
                top_k(&mut scored, query.limit, Distance::Dot);
                scored
            }
            ShardQueryKind::Recommend { .. }
            | ShardQueryKind::Discover { .. }
            | ShardQueryKind::Context { .. }
            | ShardQueryKind::Feedback { .. } => {
                let arena = state
                    .dense
                    .get(&query.using)
                    .ok_or_else(|| Error::bad_input(format!("Not existing vector name: {}", query.using)))?;
                let mut scored: Vec<(u32, f32)> = universe()
                    .filter(|s| accept(*s))
                    .filter_map(|s| {
                        arena
                            .get(s)
                            .map(|v| (s, example_score(&query.kind, arena.distance, &v)))
                    })
                    .collect();
                top_k(&mut scored, query.limit, Distance::Dot);
                scored
            }
            ShardQueryKind::Formula { formula, scores } => {
                let scorer = FormulaScorer::new(formula, scores, &state);
                let mut scored = Vec::new();
                for slot in universe().filter(|s| accept(*s)) {
                    scored.push((slot, scorer.score(slot)?));
                }
                top_k(&mut scored, query.limit, Distance::Dot);
                scored
            }
            ShardQueryKind::OrderBy(_) => return Err(Error::internal("order_by is answered by `ordered`")),
            ShardQueryKind::None => universe()
                .filter(|s| accept(*s))
                .take(query.limit)
                .map(|s| (s, 1.0))
                .collect(),
            ShardQueryKind::Sample => {
                let pool: Vec<u32> = universe().filter(|s| accept(*s)).collect();
                pool.choose_multiple(&mut rand::thread_rng(), query.limit)
                    .map(|s| (*s, 1.0))
                    .collect()
            }
        };

        let distance = match &query.kind {
            ShardQueryKind::Dense(_) => state
                .dense
                .get(&query.using)
                .map(|a| a.distance)
                .unwrap_or(Distance::Dot),
            ShardQueryKind::MultiDense(_) => state.multi.get(&query.using).map_or(Distance::Dot, |m| m.distance),
            _ => Distance::Dot,
        };
        Ok(hits
            .into_iter()
            .filter(|(_, score)| {
                query
                    .score_threshold
                    .is_none_or(|t| distance.passes_threshold(*score, t))
            })
            .filter_map(|(slot, score)| {
                let p = state.live(slot)?;
                Some(ScoredPoint {
                    id: p.id,
                    version: p.version,
                    score,
                    payload: query.with_payload.apply(&p.payload),
                    vector: state.vector_output(slot, &query.with_vector),
                    shard_key: None,
                    order_value: None,
                })
            })
            .collect())
    }

    /// MaxSim search of one multivector name: the HNSW over whole multivectors where there is
    /// one (`m` > 0) and the search allows it, plus an exact pass over what it does not hold
    /// yet; an exact scan otherwise. Scores are always computed exactly from the stored rows.
    fn search_multi(
        &self,
        state: &ShardState,
        space: &MultiSpace,
        flat: &[f32],
        query: &ShardQuery,
        candidates: Option<&[u32]>,
        accept: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        let limit = query.limit.min(state.ids.len());
        let score = |s: u32| {
            let rows = state.live(s)?.multi.get(&query.using)?;
            Some((s, vector::max_sim(space.distance, flat, &rows.rows, space.dim)))
        };
        let exact = |slots: &mut dyn Iterator<Item = u32>| {
            let mut scored: Vec<(u32, f32)> = slots.filter(|s| accept(*s)).filter_map(score).collect();
            top_k(&mut scored, limit, space.distance);
            scored
        };
        if let Some(slots) = candidates {
            return Ok(exact(&mut slots.iter().copied()));
        }
        let (Some(index), Some(ist)) = (self.indexes.get(&query.using), state.index_state.get(&query.using)) else {
            return Ok(exact(&mut state.ids.values().copied()));
        };
        if query.params.exact || ist.indexed.is_empty() {
            return Ok(exact(&mut state.ids.values().copied()));
        }
        let ef = query.params.hnsw_ef.unwrap_or(index.params().ef_construct).max(limit);
        // Quantized rows: more candidates (`oversampling`), all rescored from the stored rows.
        let plan = QuantizedSearch::plan(index.quantization(), &query.params.quantization()?, limit, ef)
            .within(ist.indexed.len() as usize);
        let found = index.search(flat, plan.candidates, plan.ef, &|slot| {
            ist.indexed.contains(slot) && accept(slot)
        })?;
        if query.filter.is_some() && found.len() < limit {
            // The graph walk can run dry under a restrictive filter: fall back to a scan.
            return Ok(exact(&mut state.ids.values().copied()));
        }
        let mut hits: Vec<(u32, f32)> = found.into_iter().filter_map(|(s, _)| score(s)).collect();
        let seen: HashSet<u32> = hits.iter().map(|h| h.0).collect();
        hits.extend(exact(&mut ist.pending.iter().copied().filter(|s| !seen.contains(s))));
        top_k(&mut hits, limit, space.distance);
        Ok(hits)
    }

    fn search_dense(
        &self,
        state: &ShardState,
        arena: &DenseArena,
        q: &[f32],
        query: &ShardQuery,
        candidates: Option<&[u32]>,
        accept: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        if q.len() != arena.dim {
            return Err(Error::bad_input(format!(
                "Vector dimension error: expected dim: {}, got {}",
                arena.dim,
                q.len()
            )));
        }
        // No search returns more than the shard holds; a huge `limit` must not size buffers.
        let limit = query.limit.min(state.ids.len());
        let exact = |slots: &mut dyn Iterator<Item = u32>| {
            let mut scored: Vec<(u32, f32)> = slots
                .filter(|s| accept(*s))
                .filter_map(|s| arena.get(s).map(|v| (s, arena.distance.score(&v, q))))
                .collect();
            top_k(&mut scored, limit, arena.distance);
            scored
        };
        if let Some(slots) = candidates {
            return Ok(exact(&mut slots.iter().copied()));
        }
        let index = self.indexes.get(&query.using);
        let ist = state.index_state.get(&query.using);
        let (Some(index), Some(ist)) = (index, ist) else {
            return Ok(exact(&mut state.ids.values().copied()));
        };
        // `indexed_only` leaves out a backlog of vectors too large to scan (as Qdrant skips large
        // unindexed segments); a small one is searched anyway.
        let backlog_kb = arena.kb_of(ist.pending.len());
        let skip_backlog = query.params.indexed_only && backlog_kb > arena.unindexed_search_kb;
        if query.params.exact || ist.indexed.is_empty() {
            if skip_backlog {
                return Ok(exact(&mut ist.indexed.iter()));
            }
            return Ok(exact(&mut state.ids.values().copied()));
        }
        // A selective filter on indexed payload fields: scanning the few candidates is both
        // exact and cheaper than walking the graph (Qdrant's full_scan_threshold, in KB).
        if let Some(filter) = &query.filter {
            if let Some(candidates) = state.payload_indexes.candidates(filter) {
                let kb = arena.kb_of(candidates.len() as usize);
                if kb < arena.full_scan_kb {
                    return Ok(exact(&mut candidates.iter()));
                }
            }
        }
        let ef = query.params.hnsw_ef.unwrap_or(index.params().ef_construct).max(limit);
        let plan = QuantizedSearch::plan(index.quantization(), &query.params.quantization()?, limit, ef)
            .within(ist.indexed.len() as usize);
        // Without a filter or exclusions, and with no deleted slot left in the graph, every key of
        // the HNSW is an answer candidate: skip the per-candidate callback.
        let unrestricted = query.filter.is_none() && query.exclude.is_empty() && state.dying.is_empty();
        let mut hits = if unrestricted {
            index.search_all(q, plan.candidates, plan.ef)?
        } else {
            index.search(q, plan.candidates, plan.ef, &|slot| {
                ist.indexed.contains(slot) && accept(slot)
            })?
        };
        if plan.rescore {
            // The graph's scores come from the codes: score the candidates exactly instead.
            for hit in &mut hits {
                if let Some(v) = arena.get(hit.0) {
                    hit.1 = arena.distance.score(&v, q);
                }
            }
        }
        top_k(&mut hits, limit, arena.distance);
        if query.filter.is_some() && hits.len() < limit {
            // The graph walk can run dry under a restrictive filter: fall back to a scan.
            return Ok(exact(&mut state.ids.values().copied()));
        }
        let seen: HashSet<u32> = hits.iter().map(|h| h.0).collect();
        if !skip_backlog {
            hits.extend(exact(&mut ist.pending.iter().copied().filter(|s| !seen.contains(s))));
        }
        top_k(&mut hits, limit, arena.distance);
        Ok(hits)
    }

    pub fn create_payload_index(&self, field: &str, schema: PayloadFieldSchema) -> Result<()> {
        let _guard = self.write_lock.lock();
        let mut state = self.state.write();
        let state = &mut *state;
        let points: Vec<(u32, &Payload)> = state
            .ids
            .values()
            .filter_map(|s| {
                state.slots.get(*s as usize).and_then(|slot| match slot {
                    Slot::Live(p) => Some((*s, &p.payload)),
                    _ => None,
                })
            })
            .collect();
        let mut indexes = std::mem::take(&mut state.payload_indexes);
        let result = indexes.create_index(field, schema, points.into_iter());
        state.payload_indexes = indexes;
        result
    }

    pub fn drop_payload_index(&self, field: &str) -> bool {
        let _guard = self.write_lock.lock();
        self.state.write().payload_indexes.drop_index(field)
    }

    pub fn payload_schema(&self) -> BTreeMap<String, PayloadIndexInfo> {
        self.state.read().payload_indexes.schema()
    }

    /// Blocks until every vector written so far is in the HNSW (tests and benchmarks).
    pub fn wait_indexed(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.pending_vectors_count() > 0 {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        true
    }
}

impl Drop for LocalShard {
    fn drop(&mut self) {
        self.close();
    }
}

fn parse_path(key: &str) -> Result<JsonPath> {
    key.parse::<JsonPath>()
        .map_err(|e| Error::bad_input(format!("invalid payload key `{key}`: {e}")))
}

/// Keeps the best `k` of `scored`, sorted best first (ties by lower slot for stable output).
pub(crate) fn top_k(scored: &mut Vec<(u32, f32)>, k: usize, distance: Distance) {
    let cmp = |a: &(u32, f32), b: &(u32, f32)| distance.cmp_best_first(a.1, b.1).then(a.0.cmp(&b.0));
    if scored.len() > k && k > 0 {
        scored.select_nth_unstable_by(k - 1, cmp);
        scored.truncate(k);
    } else if k == 0 {
        scored.clear();
    }
    scored.sort_by(cmp);
}

/// Scores a vector against recommendation examples. `best_score` (Qdrant's): if the vector is
/// more similar to its best positive than to its best negative, that similarity, else minus
/// the negative one, both squashed by a sigmoid so every "positive" point ranks above every
/// "negative" one. `sum_scores`: the sum of similarities to positives minus those to negatives.
/// Discovery: +1 / -1 per context pair the vector is nearer the positive / negative of (0 on a
/// tie), plus the squashed similarity to the target, so the context decides and the target
/// breaks ties. Context: per pair, the sigmoid of how far the vector is on the negative side
/// (0 once on the positive side), summed. Relevance feedback: see `ShardQueryKind::Feedback`.
fn example_score(kind: &ShardQueryKind, distance: Distance, v: &[f32]) -> f32 {
    let sim = |e: &Vec<f32>| distance.similarity(v, e);
    // Qdrant's fast sigmoid, (-1, 1).
    let sigmoid = |x: f32| x / (1.0 + x.abs());
    let squash = |x: f32| 0.5 * (sigmoid(x) + 1.0);
    match kind {
        ShardQueryKind::Recommend {
            strategy: RecommendStrategy::SumScores,
            positives,
            negatives,
        } => positives.iter().map(sim).sum::<f32>() - negatives.iter().map(sim).sum::<f32>(),
        ShardQueryKind::Recommend {
            positives, negatives, ..
        } => {
            let best_pos = positives.iter().map(sim).fold(f32::NEG_INFINITY, f32::max);
            let best_neg = negatives.iter().map(sim).fold(f32::NEG_INFINITY, f32::max);
            if best_pos > best_neg {
                squash(best_pos)
            } else {
                -squash(best_neg)
            }
        }
        ShardQueryKind::Discover { target, pairs } => {
            let rank: i32 = pairs.iter().map(|(p, n)| sim(p).total_cmp(&sim(n)) as i32).sum();
            rank as f32 + squash(sim(target))
        }
        ShardQueryKind::Context { pairs } => pairs
            .iter()
            .map(|(p, n)| sigmoid((sim(p) - sim(n) - f32::EPSILON).min(0.0)))
            .sum(),
        ShardQueryKind::Feedback { target, a, pairs } => {
            a * sim(target)
                + pairs
                    .iter()
                    .map(|(better, worse, weight)| weight * (sim(better) - sim(worse)))
                    .sum::<f32>()
        }
        _ => 0.0,
    }
}

mod arena;
mod checkpoint;
mod digest;
mod quantized;
#[cfg(test)]
mod tests;
mod versions;
