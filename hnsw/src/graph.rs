//! The graph: storage layout, insertion and search.
//!
//! Internal ids are dense (`0..allocated`) and never reused; callers' keys map to them. Removing a
//! key tombstones its node: it stays in the graph as a stepping stone but is never returned.
//! Re-adding a key inserts a new node and tombstones the old one.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;

use parking_lot::{Mutex, RwLock};

use crate::codec::{with_code, AnyCode, Code, Precision, Quantization};
use crate::kernels::Metric;
pub(crate) use crate::records::zeroed_u32;
use crate::records::Records;
use crate::visited::{Visited, VisitedPool};
use crate::{Error, Result};

mod repair;

/// Levels above this are never drawn (with m = 16 the chance of level 12 is 16^-12).
pub(crate) const MAX_LEVEL: usize = 15;
const DELETED: u8 = 1;
/// Rows a multivector graph's row quantization is trained on, at most.
const MULTI_TRAIN_ROWS: usize = 16_384;
const NO_ENTRY: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub dim: usize,
    /// Links per node on the upper levels; level 0 keeps twice as many.
    pub m: usize,
    /// Search breadth while inserting.
    pub ef_construct: usize,
    pub metric: Metric,
}

impl Params {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.dim == 0 {
            return Err(Error::Params("dim must be positive".into()));
        }
        if !(2..=1024).contains(&self.m) {
            return Err(Error::Params(format!("m must be within 2..=1024, got {}", self.m)));
        }
        if self.ef_construct == 0 {
            return Err(Error::Params("ef_construct must be positive".into()));
        }
        Ok(())
    }
}

/// A node and its distance to whatever is being searched for; ordered by distance, then id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scored {
    pub d: f32,
    pub id: u32,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.d.total_cmp(&other.d).then(self.id.cmp(&other.id))
    }
}

/// Which nodes a search may return (every node is still walked through).
enum Accept<'a> {
    /// Any node, tombstones included: graph construction, where they are good stepping stones.
    All,
    /// Nodes not removed.
    Live,
    /// Nodes not removed whose key the caller accepts.
    Keys(&'a dyn Fn(u32) -> bool),
}

pub struct Hnsw {
    pub(crate) params: Params,
    /// What a record stores of its vector, and how distances are computed on it.
    pub(crate) code: AnyCode,
    /// u32 words of a code.
    pub(crate) words: usize,
    /// Links per node on level 0.
    pub(crate) m0: usize,
    /// u32 words per level-0 record: [link count][m0 links][code words].
    pub(crate) stride: usize,
    pub(crate) capacity: usize,
    pub(crate) level0: Records,
    /// Per node, its levels 1..=L, each [link count][m links]; set once before the node is linked.
    pub(crate) upper: Vec<OnceLock<Box<[AtomicU32]>>>,
    pub(crate) levels: Box<[AtomicU8]>,
    pub(crate) flags: Box<[AtomicU8]>,
    pub(crate) keys: Box<[AtomicU32]>,
    /// Serialises changes to one node's link lists; nobody holds two at once.
    locks: Vec<Mutex<()>>,
    pub(crate) allocated: AtomicU32,
    /// (top level << 32) | id of the entry node, or NO_ENTRY.
    pub(crate) entry: AtomicU64,
    /// Held by an insert that will raise the top level, for its whole insertion.
    entry_lock: Mutex<()>,
    pub(crate) key_map: RwLock<HashMap<u32, u32>>,
    pub(crate) deleted: AtomicUsize,
    visited: VisitedPool,
    rng: AtomicU64,
    level_mult: f64,
}

pub(crate) fn zeroed_u8(n: usize) -> Box<[AtomicU8]> {
    let plain = vec![0u8; n].into_boxed_slice();
    // SAFETY: as above, for AtomicU8 and u8.
    unsafe { Box::from_raw(Box::into_raw(plain) as *mut [AtomicU8]) }
}

/// A copy of `old` in a zeroed slice of `n` elements.
fn grown_u32(old: &[AtomicU32], n: usize) -> Box<[AtomicU32]> {
    let mut new = zeroed_u32(n);
    for (d, s) in new.iter_mut().zip(old) {
        *d.get_mut() = s.load(Ordering::Relaxed);
    }
    new
}

fn grown_u8(old: &[AtomicU8], n: usize) -> Box<[AtomicU8]> {
    let mut new = zeroed_u8(n);
    for (d, s) in new.iter_mut().zip(old) {
        *d.get_mut() = s.load(Ordering::Relaxed);
    }
    new
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Hnsw {
    /// An empty index with room for `capacity` nodes, storing the vectors as they are (f32).
    pub fn new(params: Params, capacity: usize) -> Result<Self> {
        Self::with_precision(params, capacity, Precision::F32)
    }

    /// An empty index storing whole vectors with `precision` values (f32, f16 or bytes).
    pub fn with_precision(params: Params, capacity: usize, precision: Precision) -> Result<Self> {
        params.validate()?;
        Self::with_code(params, capacity, AnyCode::whole(params.dim, params.metric, precision))
    }

    /// An empty index with room for `capacity` nodes whose records store the code `q` of each
    /// vector instead of the vector, the code trained on `sample` (vectors as they will be
    /// added: normalised for cosine; a few thousand are plenty). Searches return approximate
    /// distances: callers rescore the best candidates with the original vectors.
    pub fn quantized(params: Params, capacity: usize, q: &Quantization, sample: &[&[f32]]) -> Result<Self> {
        params.validate()?;
        let code = AnyCode::train(params.dim, params.metric, q, sample)?;
        Self::with_code(params, capacity, code)
    }

    /// An empty index over multivectors: each key holds any number of rows of `params.dim`
    /// values (preprocessed as for a plain graph: normalised for cosine), compared by MaxSim
    /// (see `codec::multi`). `add` and `search` take the rows concatenated. Rows kept as f32.
    pub fn multi(params: Params, capacity: usize) -> Result<Self> {
        Self::multi_with_precision(params, capacity, Precision::F32)
    }

    /// An empty multivector index keeping each row in `precision`.
    pub fn multi_with_precision(params: Params, capacity: usize, precision: Precision) -> Result<Self> {
        params.validate()?;
        let code = AnyCode::multi(AnyCode::whole(params.dim, params.metric, precision))?;
        Self::with_code(params, capacity, code)
    }

    /// An empty multivector index keeping each row in the code `q` describes, trained on the
    /// rows of `sample` (multivectors as they will be added). Callers rescore its candidates.
    pub fn multi_quantized(params: Params, capacity: usize, q: &Quantization, sample: &[&[f32]]) -> Result<Self> {
        params.validate()?;
        if let Some(v) = sample.iter().find(|v| v.is_empty() || v.len() % params.dim != 0) {
            return Err(Error::Dimension {
                got: v.len(),
                want: params.dim,
            });
        }
        // As many rows as a plain graph's sample at most, spread over the multivectors.
        let all = sample.iter().map(|v| v.len() / params.dim).sum::<usize>();
        let step = all.div_ceil(MULTI_TRAIN_ROWS).max(1);
        let rows: Vec<&[f32]> = sample
            .iter()
            .flat_map(|v| v.chunks_exact(params.dim))
            .step_by(step)
            .collect();
        let code = AnyCode::multi(AnyCode::train(params.dim, params.metric, q, &rows)?)?;
        Self::with_code(params, capacity, code)
    }

    /// Whether this is a multivector graph.
    pub fn is_multi(&self) -> bool {
        self.code.is_multi()
    }

    pub(crate) fn with_code(params: Params, capacity: usize, code: AnyCode) -> Result<Self> {
        params.validate()?;
        let m0 = 2 * params.m;
        let words = code.words();
        let stride = 1 + m0 + words;
        let capacity = capacity.max(1);
        if capacity > u32::MAX as usize / 2 {
            return Err(Error::Params(format!("capacity {capacity} is too large")));
        }
        Ok(Hnsw {
            params,
            code,
            words,
            m0,
            stride,
            capacity,
            level0: Records::heap(capacity * stride),
            upper: (0..capacity).map(|_| OnceLock::new()).collect(),
            levels: zeroed_u8(capacity),
            flags: zeroed_u8(capacity),
            keys: zeroed_u32(capacity),
            locks: (0..capacity).map(|_| Mutex::new(())).collect(),
            allocated: AtomicU32::new(0),
            entry: AtomicU64::new(NO_ENTRY),
            entry_lock: Mutex::new(()),
            key_map: RwLock::new(HashMap::new()),
            deleted: AtomicUsize::new(0),
            visited: VisitedPool::default(),
            rng: AtomicU64::new(42),
            level_mult: 1.0 / (params.m as f64).ln(),
        })
    }

    pub fn params(&self) -> Params {
        self.params
    }

    /// How the records encode their vectors; None for f32.
    pub fn quantization(&self) -> Option<Quantization> {
        self.code.quantization()
    }

    /// The element type of the records when they hold whole vectors; None when quantized.
    pub fn precision(&self) -> Option<Precision> {
        self.code.precision()
    }

    /// Nodes the index can hold before `reserve` is needed (tombstones included).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Nodes in the graph, tombstones included.
    pub fn allocated(&self) -> usize {
        self.allocated.load(Ordering::Acquire) as usize
    }

    /// Keys that are present.
    pub fn len(&self) -> usize {
        self.key_map.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removed nodes still in the graph.
    pub fn tombstones(&self) -> usize {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn contains(&self, key: u32) -> bool {
        self.key_map.read().contains_key(&key)
    }

    /// The stored vector of `key`: exact for f32, decoded from its code otherwise.
    pub fn get(&self, key: u32) -> Option<Vec<f32>> {
        let id = *self.key_map.read().get(&key)?;
        let words = self.code_words(id);
        Some(with_code!(&self.code, c => c.decode(words)))
    }

    /// Whether `key` is present with the code of `v` (for f32: with `v` itself, bit for bit).
    pub fn holds(&self, key: u32, v: &[f32]) -> bool {
        if !with_code!(&self.code, c => c.accepts(v.len())) {
            return false;
        }
        let Some(id) = self.key_map.read().get(&key).copied() else {
            return false;
        };
        with_code!(&self.code, c => c.same(v, self.code_words(id)))
    }

    /// The error for a vector of `len` values this graph cannot take.
    fn check_len(&self, len: usize) -> Result<()> {
        if with_code!(&self.code, c => c.accepts(len)) {
            return Ok(());
        }
        Err(Error::Dimension {
            got: len,
            want: self.params.dim,
        })
    }

    /// Bytes held by the index: records, upper links, per-node arrays, the key map and the
    /// code's parameters.
    pub fn memory_usage(&self) -> usize {
        let allocated = self.allocated();
        let upper: usize = self.upper[..allocated]
            .iter()
            .filter_map(|u| u.get().map(|l| l.len() * 4 + 16))
            .sum();
        self.level0.heap_bytes()
            + self.capacity * (4 + 2 + std::mem::size_of::<OnceLock<Box<[AtomicU32]>>>() + 1)
            + upper
            + self.key_map.read().capacity() * 12
            + self.code.params_memory()
    }

    /// Bytes of the level-0 records kept in a mapped file (`map_records`) instead of the heap.
    pub fn mapped_memory(&self) -> usize {
        self.level0.mapped_bytes()
    }

    /// Moves the level-0 records (links and vector codes) into a file at `path`, mapped into
    /// memory: the kernel may evict their pages under memory pressure and read them back when
    /// searched. The file is a working copy, unlinked as soon as it is mapped, so it goes with
    /// the mapping (`save` still writes the index). Takes `&mut self`, as `reserve`.
    pub fn map_records(&mut self, path: &Path) -> Result<()> {
        if self.level0.path() == Some(path) {
            return Ok(());
        }
        self.level0 = Records::mapped(path, self.level0.len(), &self.level0)?;
        Ok(())
    }

    /// Brings mapped records back onto the heap.
    pub fn unmap_records(&mut self) {
        if self.level0.path().is_some() {
            let heap = Records::heap(self.level0.len());
            for (d, s) in heap.iter().zip(self.level0.iter()) {
                d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            self.level0 = heap;
        }
    }

    /// The file the records are mapped from, if they are.
    pub fn records_path(&self) -> Option<&Path> {
        self.level0.path()
    }

    /// Grows the index to hold at least `capacity` nodes. Takes `&mut self`: callers keep
    /// searches and inserts out meanwhile (the node wraps the index in a lock).
    pub fn reserve(&mut self, capacity: usize) -> Result<()> {
        if capacity <= self.capacity {
            return Ok(());
        }
        if capacity > u32::MAX as usize / 2 {
            return Err(Error::Params(format!("capacity {capacity} is too large")));
        }
        self.level0.grow(capacity * self.stride)?;
        self.keys = grown_u32(&self.keys, capacity);
        self.levels = grown_u8(&self.levels, capacity);
        self.flags = grown_u8(&self.flags, capacity);
        self.upper.resize_with(capacity, OnceLock::new);
        self.locks.resize_with(capacity, || Mutex::new(()));
        self.capacity = capacity;
        Ok(())
    }

    pub(crate) fn entry_point(&self) -> Option<(u32, usize)> {
        match self.entry.load(Ordering::Acquire) {
            NO_ENTRY => None,
            e => Some((e as u32, (e >> 32) as usize)),
        }
    }

    fn set_entry_point(&self, id: u32, level: usize) {
        self.entry.store(((level as u64) << 32) | id as u64, Ordering::Release);
    }

    #[inline(always)]
    fn record_start(&self, id: u32) -> usize {
        id as usize * self.stride
    }

    /// The code of node `id` (written before the node became reachable, never changed after).
    #[inline(always)]
    pub(crate) fn code_words(&self, id: u32) -> &[u32] {
        let start = self.record_start(id) + 1 + self.m0;
        let words = &self.level0[start..start + self.words];
        // SAFETY: AtomicU32 has the size, alignment and bit validity of u32, and these words
        // are only written by `add` before any other thread can learn the id, or under
        // `&mut self`.
        unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u32, words.len()) }
    }

    /// `[count, links...]` of node `id` on `level`.
    #[inline(always)]
    pub(crate) fn link_list(&self, id: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let start = self.record_start(id);
            &self.level0[start..start + 1 + self.m0]
        } else {
            let per = 1 + self.params.m;
            let upper = self.upper[id as usize].get().map(|b| &b[..]).unwrap_or(&[]);
            upper.get((level - 1) * per..level * per).unwrap_or(&[])
        }
    }

    /// The links in a `[count, links...]` list (a concurrent rewrite may show a mix of old and
    /// new ids, all of them valid nodes).
    #[inline(always)]
    fn links<'a>(&self, list: &'a [AtomicU32]) -> &'a [AtomicU32] {
        match list.split_first() {
            Some((count, links)) => {
                let n = (count.load(Ordering::Acquire) as usize).min(links.len());
                &links[..n]
            }
            None => &[],
        }
    }

    fn random_level(&self) -> usize {
        let x = splitmix64(self.rng.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed));
        let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        ((-u.ln() * self.level_mult) as usize).min(MAX_LEVEL)
    }

    fn allocate(&self) -> Result<u32> {
        let cap = self.capacity as u32;
        self.allocated
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < cap).then_some(n + 1))
            .map_err(|_| Error::Full(self.capacity))
    }

    /// Tombstones node `id` (its key no longer maps to it).
    fn tombstone(&self, id: u32) {
        if self.flags[id as usize].fetch_or(DELETED, Ordering::AcqRel) & DELETED == 0 {
            self.deleted.fetch_add(1, Ordering::AcqRel);
        }
    }

    #[inline(always)]
    fn is_deleted(&self, id: u32) -> bool {
        self.flags[id as usize].load(Ordering::Acquire) & DELETED != 0
    }

    /// Removes `key`; false if it was not present.
    pub fn remove(&self, key: u32) -> bool {
        match self.key_map.write().remove(&key) {
            Some(id) => {
                self.tombstone(id);
                true
            }
            None => false,
        }
    }

    /// Adds `vector` under `key`, replacing the key's previous vector. Safe to call from several
    /// threads at once. A quantized graph stores the vector's code and links the node by the
    /// vector's distances to the codes.
    pub fn add(&self, key: u32, vector: &[f32]) -> Result<()> {
        self.check_len(vector.len())?;
        with_code!(&self.code, c => self.add_with(c, key, vector))
    }

    fn add_with<C: Code>(&self, code: &C, key: u32, vector: &[f32]) -> Result<()> {
        let mut words = vec![0u32; self.words];
        code.encode(vector, &mut words);
        let (id, level) = self.insert_record(key, &words)?;
        let q = code.prepare(vector);
        self.link(code, &|w: &[u32]| code.distance(&q, w), id, level);
        Ok(())
    }

    /// Adds a node holding `words`, a code of this graph's code (`C`), linked by the distances
    /// between codes: rebuilding copies records without decoding or re-encoding them.
    fn add_code<C: Code>(&self, code: &C, key: u32, words: &[u32]) -> Result<()> {
        let (id, level) = self.insert_record(key, words)?;
        self.link(code, &|w: &[u32]| code.distance_codes(words, w), id, level);
        Ok(())
    }

    /// Allocates a node holding `words` for `key` (tombstoning the key's previous node), not
    /// linked yet.
    fn insert_record(&self, key: u32, words: &[u32]) -> Result<(u32, usize)> {
        let id = self.allocate()?;
        let level = self.random_level();
        let start = self.record_start(id) + 1 + self.m0;
        for (w, x) in self.level0[start..start + self.words].iter().zip(words) {
            w.store(*x, Ordering::Relaxed);
        }
        if level > 0 {
            // A fresh id: nobody else can have set it.
            let _ = self.upper[id as usize].set(zeroed_u32(level * (1 + self.params.m)));
        }
        self.levels[id as usize].store(level as u8, Ordering::Relaxed);
        self.keys[id as usize].store(key, Ordering::Release);
        if let Some(old) = self.key_map.write().insert(key, id) {
            self.tombstone(old);
        }
        Ok((id, level))
    }

    /// Connects a new node into the graph, top level first; `dist` is the distance from the new
    /// node to a code.
    fn link<C: Code, D: Fn(&[u32]) -> f32>(&self, code: &C, dist: &D, id: u32, level: usize) {
        let entry_guard = self.entry_lock.lock();
        let Some((entry, top)) = self.entry_point() else {
            self.set_entry_point(id, level);
            return;
        };
        // A node that raises the top level becomes the entry point once linked; inserts that
        // would raise it too wait for this one.
        let raising = if level > top {
            Some(entry_guard)
        } else {
            drop(entry_guard);
            None
        };
        let mut cur = self.greedy(dist, entry, top, level);
        for l in (0..=level.min(top)).rev() {
            let found = {
                let mut visited = self.visited.take(self.capacity);
                self.search_layer(dist, cur, self.params.ef_construct, l, &mut visited, &Accept::All)
            };
            let mut sorted = found.into_sorted_vec();
            sorted.retain(|s| s.id != id);
            if let Some(best) = sorted.first() {
                cur = *best;
            }
            if !C::QUERY_IS_CODE {
                let new = self.code_words(id);
                for s in &mut sorted {
                    s.d = code.distance_codes(new, self.code_words(s.id));
                }
                sorted.sort_unstable();
            }
            let chosen = self.select(code, &sorted, self.params.m);
            {
                let _own = self.locks[id as usize].lock();
                Self::write_links(self.link_list(id, l), &chosen);
            }
            for n in &chosen {
                self.connect(code, n.id, id, l);
            }
        }
        if raising.is_some() {
            self.set_entry_point(id, level);
        }
    }

    /// Adds `new` to a `[count, links...]` list unless it is there already; the caller holds
    /// the node's lock. None when done, the (full) links when there is no room.
    pub(crate) fn append_link(list: &[AtomicU32], new: u32) -> Option<&[AtomicU32]> {
        let (count, slots) = list.split_first().expect("a link list has a count");
        let n = (count.load(Ordering::Acquire) as usize).min(slots.len());
        if slots[..n].iter().any(|s| s.load(Ordering::Relaxed) == new) {
            return None;
        }
        if n < slots.len() {
            slots[n].store(new, Ordering::Release);
            count.store(n as u32 + 1, Ordering::Release);
            return None;
        }
        Some(slots)
    }

    fn write_links(list: &[AtomicU32], chosen: &[Scored]) {
        let (count, links) = list.split_first().expect("a link list has a count");
        for (slot, s) in links.iter().zip(chosen) {
            slot.store(s.id, Ordering::Release);
        }
        count.store(chosen.len().min(links.len()) as u32, Ordering::Release);
    }

    /// Adds a link from `node` to `new` on `level`; a full list keeps the heuristic's choice,
    /// made on the distances between codes.
    fn connect<C: Code>(&self, code: &C, node: u32, new: u32, level: usize) {
        let _lock = self.locks[node as usize].lock();
        let list = self.link_list(node, level);
        let Some(slots) = Self::append_link(list, new) else {
            return;
        };
        let base = self.code_words(node);
        let mut candidates: Vec<Scored> = slots
            .iter()
            .map(|s| {
                let id = s.load(Ordering::Relaxed);
                Scored {
                    d: code.distance_codes(base, self.code_words(id)),
                    id,
                }
            })
            .collect();
        // Between codes like the others (the search that found `new` may have used its vector).
        candidates.push(Scored {
            d: code.distance_codes(base, self.code_words(new)),
            id: new,
        });
        candidates.sort_unstable();
        let kept = self.select(code, &candidates, slots.len());
        Self::write_links(list, &kept);
    }

    /// The neighbour-selection heuristic: walking candidates nearest first, keep one only if it
    /// is nearer to the base than to every one kept so far (spreads links over directions).
    fn select<C: Code>(&self, code: &C, sorted: &[Scored], max: usize) -> Vec<Scored> {
        let mut kept: Vec<Scored> = Vec::with_capacity(max);
        for c in sorted {
            if kept.len() >= max {
                break;
            }
            let v = self.code_words(c.id);
            if kept
                .iter()
                .all(|k| code.distance_codes(v, self.code_words(k.id)) >= c.d)
            {
                kept.push(*c);
            }
        }
        kept
    }

    /// Greedy descent from `entry` on level `from` down to level `to + 1`.
    fn greedy<D: Fn(&[u32]) -> f32>(&self, dist: &D, entry: u32, from: usize, to: usize) -> Scored {
        let mut cur = Scored {
            d: dist(self.code_words(entry)),
            id: entry,
        };
        for level in (to + 1..=from).rev() {
            loop {
                let mut moved = false;
                for l in self.links(self.link_list(cur.id, level)) {
                    let id = l.load(Ordering::Acquire);
                    let d = dist(self.code_words(id));
                    if d < cur.d {
                        cur = Scored { d, id };
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        cur
    }

    /// Best-first search of one level: up to `ef` accepted nodes, as a max-heap by distance.
    fn search_layer<D: Fn(&[u32]) -> f32>(
        &self,
        dist: &D,
        entry: Scored,
        ef: usize,
        level: usize,
        visited: &mut Visited,
        accept: &Accept,
    ) -> BinaryHeap<Scored> {
        let accepts = |id: u32| match accept {
            Accept::All => true,
            Accept::Live => !self.is_deleted(id),
            Accept::Keys(f) => !self.is_deleted(id) && f(self.keys[id as usize].load(Ordering::Acquire)),
        };
        // Never more entries than nodes, whatever `ef` asks (a huge ef_construct too).
        let most = self.allocated().saturating_add(1);
        let mut candidates = BinaryHeap::with_capacity(ef.min(most).saturating_mul(2));
        let mut top = BinaryHeap::with_capacity(ef.min(most).saturating_add(1));
        visited.insert(entry.id);
        candidates.push(Reverse(entry));
        if accepts(entry.id) {
            top.push(entry);
        }
        // Worst distance kept once `top` is full; until then every neighbour is explored.
        let mut bound = if top.len() >= ef { entry.d } else { f32::INFINITY };
        while let Some(Reverse(c)) = candidates.pop() {
            if c.d > bound {
                break;
            }
            let links = self.links(self.link_list(c.id, level));
            if let Some(first) = links.first() {
                self.prefetch(first.load(Ordering::Relaxed), visited);
            }
            for (i, l) in links.iter().enumerate() {
                let id = l.load(Ordering::Acquire);
                if let Some(next) = links.get(i + 1) {
                    self.prefetch(next.load(Ordering::Relaxed), visited);
                }
                if !visited.insert(id) {
                    continue;
                }
                let d = dist(self.code_words(id));
                if d < bound {
                    candidates.push(Reverse(Scored { d, id }));
                    if accepts(id) {
                        top.push(Scored { d, id });
                        if top.len() > ef {
                            top.pop();
                        }
                        if top.len() >= ef {
                            bound = top.peek().map_or(f32::INFINITY, |s: &Scored| s.d);
                        }
                    }
                }
            }
        }
        top
    }

    /// Asks the CPU to start loading node `id`'s record and visited tag.
    #[inline(always)]
    fn prefetch(&self, id: u32, visited: &Visited) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let record = self.level0.as_ptr().wrapping_add(self.record_start(id)) as *const i8;
            // SAFETY: prefetch is a hint; it never faults, whatever the address.
            unsafe {
                _mm_prefetch(visited.tag_ptr(id) as *const i8, _MM_HINT_T0);
                _mm_prefetch(record, _MM_HINT_T0);
                _mm_prefetch(record.wrapping_add(64), _MM_HINT_T0);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (id, visited);
    }

    /// A new graph of the present keys only (tombstones dropped), built with `threads` threads,
    /// with room for half as many more. It keeps this graph's code and copies the records' codes
    /// as they are. The caller keeps inserts out of `self` meanwhile; searches of `self` may go
    /// on.
    pub fn rebuilt(&self, threads: usize) -> Result<Hnsw> {
        let mut live: Vec<(u32, u32)> = self.key_map.read().iter().map(|(k, id)| (*k, *id)).collect();
        // In key order, not the map's (random per process): one thread rebuilds the same graph
        // every time.
        live.sort_unstable();
        let capacity = live.len() + live.len() / 2 + 1024;
        // A multivector code gets a row store of the live records only (it is append-only).
        let fresh = Hnsw::with_code(self.params, capacity, self.code.emptied())?;
        with_code!(&self.code, c => self.rebuild_into(c, &fresh, &live, threads))?;
        fresh.repair();
        Ok(fresh)
    }

    /// Adds the records of `live` ((key, node) pairs of `self`) to `fresh`, whose code is of
    /// the same kind as `code`, with `threads` threads.
    fn rebuild_into<C: Code>(&self, code: &C, fresh: &Hnsw, live: &[(u32, u32)], threads: usize) -> Result<()> {
        let target = fresh
            .code
            .as_code::<C>()
            .ok_or_else(|| Error::Rebuild("the new graph's code is of another kind".into()))?;
        let chunk = live.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = live
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let mut words = vec![0u32; self.words];
                        part.iter().try_for_each(|(key, id)| {
                            target.copy_from(code, self.code_words(*id), &mut words);
                            fresh.add_code(target, *key, &words)
                        })
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(Error::Rebuild("a thread panicked".into())))
            })
        })
    }

    /// The `k` nearest present keys to `query` with their distances, nearest first; `ef` is the
    /// search breadth (raised to `k`). `accept`, if given, restricts the keys returned. A
    /// quantized graph's distances are its code's approximations.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<Vec<(u32, f32)>> {
        self.check_len(query.len())?;
        with_code!(&self.code, c => self.search_with(c, query, k, ef, accept))
    }

    fn search_with<C: Code>(
        &self,
        code: &C,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<Vec<(u32, f32)>> {
        let Some((entry, top)) = self.entry_point() else {
            return Ok(Vec::new());
        };
        if k == 0 {
            return Ok(Vec::new());
        }
        let accept = match accept {
            Some(f) => Accept::Keys(f),
            None if self.tombstones() == 0 => Accept::All,
            None => Accept::Live,
        };
        let q = code.prepare(query);
        let dist = |w: &[u32]| code.distance(&q, w);
        let start = self.greedy(&dist, entry, top, 0);
        let found = {
            let mut visited = self.visited.take(self.capacity);
            // Wider than the graph gains nothing, and `ef` sizes the search's heaps.
            let ef = ef.max(k).min(self.allocated().max(1));
            self.search_layer(&dist, start, ef, 0, &mut visited, &accept)
        };
        let mut sorted = found.into_sorted_vec();
        sorted.truncate(k);
        Ok(sorted
            .into_iter()
            .map(|s| (self.keys[s.id as usize].load(Ordering::Acquire), s.d))
            .collect())
    }
}

#[cfg(test)]
pub(crate) mod tests;
