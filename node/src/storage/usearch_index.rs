//! The `usearch` crate's HNSW behind `VectorIndex` (`storage.hnsw_index.engine: usearch`).
//! Keys are the shard's slot numbers.

use std::path::Path;

use parking_lot::{Condvar, Mutex, RwLock};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::index::{HnswParams, IndexEngine, VectorIndex};
use crate::error::{Error, Result};
use crate::model::vector::Distance;

/// Concurrent calls into usearch need a per-thread context each; this many are reserved.
const THREAD_SLOTS: usize = 64;

pub struct UsearchIndex {
    params: HnswParams,
    /// Read-locked for add/search/get (usearch is internally concurrent); write-locked for
    /// operations that reshape it (reserve, remove, save).
    index: RwLock<Index>,
    slots: Semaphore,
    ef: EfGate,
}

fn options(p: &HnswParams) -> IndexOptions {
    IndexOptions {
        dimensions: p.dim,
        metric: match p.distance {
            // Cosine vectors are normalised on insert, so inner product gives the cosine.
            Distance::Cosine | Distance::Dot => MetricKind::IP,
            Distance::Euclid => MetricKind::L2sq,
            // Replaced by a custom metric below.
            Distance::Manhattan => MetricKind::L2sq,
        },
        quantization: ScalarKind::F32,
        connectivity: p.m.max(2),
        expansion_add: p.ef_construct.max(4),
        expansion_search: p.ef_construct.max(4),
        multi: false,
    }
}

/// Installs our own metric (after creation and after `load`, which restores the header's):
/// usearch has no L1 metric for Manhattan, and our f32 kernels (`kernels.rs`) are faster than its
/// own for the others. Distances keep usearch's meaning (`1 - dot` for IP, Σ (a - b)² for L2sq).
fn install_metric(index: &mut Index, p: &HnswParams) {
    let dim = p.dim;
    // SAFETY (all three): usearch calls the metric with pointers to two vectors of `dim` f32 each.
    let slices = move |a: *const f32, b: *const f32| unsafe {
        (std::slice::from_raw_parts(a, dim), std::slice::from_raw_parts(b, dim))
    };
    match p.distance {
        Distance::Manhattan => index.change_metric::<f32>(Box::new(move |a: *const f32, b: *const f32| {
            let (a, b) = slices(a, b);
            a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
        })),
        Distance::Euclid => {
            let l2sq = hnsw::kernels::l2sq();
            index.change_metric::<f32>(Box::new(move |a: *const f32, b: *const f32| {
                let (a, b) = slices(a, b);
                l2sq(a, b)
            }))
        }
        Distance::Cosine | Distance::Dot => {
            let dot = hnsw::kernels::dot();
            index.change_metric::<f32>(Box::new(move |a: *const f32, b: *const f32| {
                let (a, b) = slices(a, b);
                1.0 - dot(a, b)
            }))
        }
    }
}

fn new_index(p: &HnswParams) -> Result<Index> {
    let mut index = Index::new(&options(p)).map_err(|e| Error::internal(format!("usearch: {e}")))?;
    install_metric(&mut index, p);
    index
        .reserve_capacity_and_threads(1024, THREAD_SLOTS)
        .map_err(|e| Error::internal(format!("usearch reserve: {e}")))?;
    Ok(index)
}

impl UsearchIndex {
    /// Runs one search (`run`) holding a thread slot and the requested `ef`; returns usearch's
    /// matches as (slot, Qdrant score), best first.
    fn searching<E: std::fmt::Display>(
        &self,
        limit: usize,
        ef: usize,
        run: impl FnOnce(&Index) -> std::result::Result<usearch::ffi::Matches, E>,
    ) -> Result<Vec<(u32, f32)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let _slot = self.slots.acquire();
        let index = self.index.read();
        let _ef = self.ef.enter(ef.max(limit), &index);
        let matches = run(&index).map_err(|e| Error::internal(format!("usearch search: {e}")))?;
        Ok(matches
            .keys
            .iter()
            .zip(matches.distances.iter())
            .filter_map(|(k, d)| u32::try_from(*k).ok().map(|k| (k, self.params.score(*d))))
            .collect())
    }
    pub fn new(params: HnswParams) -> Result<Self> {
        Ok(UsearchIndex {
            params,
            index: RwLock::new(new_index(&params)?),
            slots: Semaphore::new(THREAD_SLOTS),
            ef: EfGate::new(params.ef_construct.max(4)),
        })
    }

    /// Loads an index saved by `save`; `None` if the file is missing or does not fit `params`.
    pub fn load(params: HnswParams, path: &Path) -> Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let index = new_index(&params)?;
        let path_str = path.to_string_lossy();
        if let Err(e) = index.load(&path_str) {
            tracing::warn!(path = %path_str, error = %e, "ignoring unreadable saved index; rebuilding");
            return Ok(None);
        }
        if index.dimensions() != params.dim {
            return Ok(None);
        }
        let mut index = index;
        install_metric(&mut index, &params);
        Self::wrap_loaded(params, index).map(Some)
    }

    fn wrap_loaded(params: HnswParams, index: Index) -> Result<Self> {
        let cap = index.size().max(1024) * 2;
        index
            .reserve_capacity_and_threads(cap, THREAD_SLOTS)
            .map_err(|e| Error::internal(format!("usearch reserve: {e}")))?;
        Ok(UsearchIndex {
            params,
            index: RwLock::new(index),
            slots: Semaphore::new(THREAD_SLOTS),
            ef: EfGate::new(params.ef_construct.max(4)),
        })
    }
}

impl VectorIndex for UsearchIndex {
    fn params(&self) -> HnswParams {
        self.params
    }

    fn engine(&self) -> IndexEngine {
        IndexEngine::Usearch
    }

    fn add(&self, key: u32, vector: &[f32]) -> Result<()> {
        let _slot = self.slots.acquire();
        let index = self.index.read();
        index
            .add(key as u64, vector)
            .map_err(|e| Error::internal(format!("usearch add: {e}")))
    }

    fn remove(&self, key: u32) -> Result<()> {
        let index = self.index.write();
        index
            .remove(key as u64)
            .map(|_| ())
            .map_err(|e| Error::internal(format!("usearch remove: {e}")))
    }

    fn contains(&self, key: u32) -> bool {
        self.index.read().contains(key as u64)
    }

    fn get(&self, key: u32) -> Option<Vec<f32>> {
        let _slot = self.slots.acquire();
        let index = self.index.read();
        let mut buf = vec![0f32; self.params.dim];
        match index.get(key as u64, &mut buf) {
            Ok(n) if n > 0 => Some(buf),
            _ => None,
        }
    }

    fn search_all(&self, query: &[f32], limit: usize, ef: usize) -> Result<Vec<(u32, f32)>> {
        self.searching(limit, ef, |index| index.search(query, limit))
    }

    fn search(&self, query: &[f32], limit: usize, ef: usize, accept: &dyn Fn(u32) -> bool) -> Result<Vec<(u32, f32)>> {
        self.searching(limit, ef, |index| {
            index.filtered_search(query, limit, |key: u64| u32::try_from(key).is_ok_and(accept))
        })
    }

    fn len(&self) -> usize {
        self.index.read().size()
    }

    fn memory_usage(&self) -> usize {
        self.index.read().memory_usage()
    }

    fn reserve(&self, additional: usize) -> Result<()> {
        let needed = self.index.read().size() + additional;
        if needed <= self.index.read().capacity() {
            return Ok(());
        }
        let index = self.index.write();
        let cap = index.capacity();
        if needed > cap {
            let new_cap = needed.max(cap * 2).max(1024);
            index
                .reserve_capacity_and_threads(new_cap, THREAD_SLOTS)
                .map_err(|e| Error::internal(format!("usearch reserve: {e}")))?;
        }
        Ok(())
    }

    fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        {
            let index = self.index.write();
            index
                .save(&tmp.to_string_lossy())
                .map_err(|e| Error::internal(format!("usearch save: {e}")))?;
        }
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// A counting semaphore for blocking threads (searches run on blocking threads).
struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

struct Permit<'a>(&'a Semaphore);

impl Semaphore {
    fn new(n: usize) -> Self {
        Semaphore {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }

    fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock();
        while *free == 0 {
            self.cv.wait(&mut free);
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock() += 1;
        self.0.cv.notify_one();
    }
}

/// usearch's search breadth (`expansion_search`) is one setting for the whole index, not a
/// per-call argument. The gate lets any number of searches with the same ef run together and
/// switches the setting only when none is running, so no search ever sees another's ef.
/// Searches waiting for a different ef stop newcomers from joining, so they cannot starve.
struct EfGate {
    state: Mutex<GateState>,
    cv: Condvar,
}

struct GateState {
    current: usize,
    active: usize,
    waiting_other: usize,
}

struct EfGuard<'a>(&'a EfGate);

impl EfGate {
    fn new(initial: usize) -> Self {
        EfGate {
            state: Mutex::new(GateState {
                current: initial,
                active: 0,
                waiting_other: 0,
            }),
            cv: Condvar::new(),
        }
    }

    fn enter(&self, ef: usize, index: &Index) -> EfGuard<'_> {
        let mut s = self.state.lock();
        loop {
            if s.active == 0 {
                if s.current != ef {
                    index.change_expansion_search(ef);
                    s.current = ef;
                }
                break;
            }
            if s.current == ef && s.waiting_other == 0 {
                break;
            }
            let other = s.current != ef;
            if other {
                s.waiting_other += 1;
            }
            self.cv.wait(&mut s);
            if other {
                s.waiting_other -= 1;
            }
        }
        s.active += 1;
        EfGuard(self)
    }
}

impl Drop for EfGuard<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock();
        s.active -= 1;
        if s.active == 0 {
            self.0.cv.notify_all();
        }
    }
}
