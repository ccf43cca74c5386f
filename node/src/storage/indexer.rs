//! The background indexer of one shard: the only thread that changes the shard's HNSW
//! indexes. It takes retired slots out of them (then frees the slots), adds pending slots in
//! parallel batches, and saves the indexes when idle so a restart need not rebuild them.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::index::{index_path, VectorIndex};
use super::shard::{ShardState, Slot};

const BATCH: usize = 1024;
/// A quantized index is trained (its ranges, codebooks) once this many vectors wait for it;
/// fewer are searched exactly, as Qdrant leaves small segments unindexed.
const QUANTIZE_FROM: usize = 2048;
/// Vectors a quantization is trained on, spread over the waiting ones.
const TRAIN_SAMPLE: usize = 16_384;
const SAVE_AFTER_IDLE: Duration = Duration::from_secs(5);
/// Once the indexer catches up, unreachable nodes are relinked if at least this share (1/N)
/// of an index was added since the last check, and always before a save: the check walks the
/// whole graph, so a trickle of writes must not run it after every point.
const REPAIR_AFTER_SHARE: usize = 100;
const POLL: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Signal {
    state: Mutex<(bool, bool)>, // (woken, stop)
    cv: Condvar,
}

pub struct Indexer {
    signal: Arc<Signal>,
    handle: Option<JoinHandle<()>>,
}

struct Worker {
    name: String,
    state: Arc<RwLock<ShardState>>,
    indexes: BTreeMap<String, Arc<dyn VectorIndex>>,
    dir: PathBuf,
    threads: usize,
    signal: Arc<Signal>,
}

impl Indexer {
    pub(crate) fn start(
        name: String,
        state: Arc<RwLock<ShardState>>,
        indexes: BTreeMap<String, Arc<dyn VectorIndex>>,
        dir: PathBuf,
        threads: usize,
    ) -> Indexer {
        let signal = Arc::new(Signal::default());
        let worker = Worker {
            name,
            state,
            indexes,
            dir,
            threads: threads.max(1),
            signal: signal.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || worker.run())
            .expect("spawn indexer thread");
        Indexer {
            signal,
            handle: Some(handle),
        }
    }

    pub fn wake(&self) {
        self.signal.state.lock().0 = true;
        self.signal.cv.notify_one();
    }

    /// Stops after the current batch and saves the indexes.
    pub fn stop(mut self) {
        self.signal.state.lock().1 = true;
        self.signal.cv.notify_one();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.signal.state.lock().1 = true;
            self.signal.cv.notify_one();
            let _ = h.join();
        }
    }
}

impl Worker {
    fn stopping(&self) -> bool {
        self.signal.state.lock().1
    }

    fn run(self) {
        let mut dirty = false;
        let mut idle_since = Instant::now();
        // Vectors added since the graphs were last checked for unreachable nodes.
        let mut unchecked = 0usize;
        loop {
            let removed = self.remove_retired();
            let added = if self.stopping() { 0 } else { self.add_pending() };
            if removed || added > 0 {
                dirty = true;
                unchecked += added;
                idle_since = Instant::now();
                continue;
            }
            let saving = dirty && (self.stopping() || idle_since.elapsed() >= SAVE_AFTER_IDLE);
            if unchecked > 0 && (saving || unchecked * REPAIR_AFTER_SHARE >= self.indexed()) {
                self.repair();
                unchecked = 0;
            }
            if self.stopping() {
                break;
            }
            if self.compact() {
                dirty = true;
                continue;
            }
            if dirty && idle_since.elapsed() >= SAVE_AFTER_IDLE {
                self.save();
                dirty = false;
            }
            let mut s = self.signal.state.lock();
            if !s.0 && !s.1 {
                self.signal.cv.wait_for(&mut s, POLL);
            }
            s.0 = false;
        }
        if dirty {
            self.save();
        }
    }

    /// Takes retired slots out of every index that holds them, then frees them.
    fn remove_retired(&self) -> bool {
        // `dying` keeps its slots until they are out of every index: searches rely on an empty
        // list meaning "every key in the HNSW is a live point" (see `LocalShard::search_dense`).
        let (dying, to_remove) = {
            let st = self.state.read();
            let dying = st.dying.clone();
            let to_remove: Vec<(String, u32)> = dying
                .iter()
                .flat_map(|slot| {
                    st.index_state
                        .iter()
                        .filter(|(_, ist)| ist.indexed.contains(*slot))
                        .map(|(name, _)| (name.clone(), *slot))
                        .collect::<Vec<_>>()
                })
                .collect();
            (dying, to_remove)
        };
        if dying.is_empty() {
            return false;
        }
        for (name, slot) in &to_remove {
            if let Some(index) = self.indexes.get(name) {
                if let Err(e) = index.remove(*slot) {
                    tracing::error!(shard = %self.name, error = %e, "removing from the HNSW failed");
                }
            }
        }
        let mut st = self.state.write();
        for (name, slot) in &to_remove {
            if let Some(ist) = st.index_state.get_mut(name) {
                ist.indexed.remove(*slot);
            }
        }
        for slot in &dying {
            if matches!(st.slots.get(*slot as usize), Some(Slot::Dying)) {
                st.slots[*slot as usize] = Slot::Free;
                st.release(*slot);
            }
        }
        let done: HashSet<u32> = dying.into_iter().collect();
        st.dying.retain(|slot| !done.contains(slot));
        true
    }

    /// Vectors in the largest index.
    fn indexed(&self) -> usize {
        self.indexes.values().map(|i| i.len()).max().unwrap_or(0)
    }

    /// Relinks what concurrent inserts left unreachable in each index.
    fn repair(&self) {
        for (name, index) in &self.indexes {
            let started = Instant::now();
            let relinked = index.repair();
            if relinked > 0 {
                tracing::debug!(
                    shard = %self.name, vector = %name, relinked,
                    ms = started.elapsed().as_millis() as u64, "relinked unreachable HNSW nodes"
                );
            }
        }
    }

    /// Adds one batch of pending slots per vector name; returns how many it added.
    fn add_pending(&self) -> usize {
        let mut added = 0;
        for (name, index) in &self.indexes {
            if index.needs_training() && !self.train(name, index.as_ref()) {
                continue;
            }
            let batch: Vec<(u32, Vec<f32>)> = {
                let st = self.state.read();
                let Some(ist) = st.index_state.get(name) else {
                    continue;
                };
                ist.pending
                    .iter()
                    .take(BATCH)
                    .filter_map(|s| st.index_vector(name, *s).map(|v| (*s, v.into_owned())))
                    .collect()
            };
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = index.reserve(batch.len()) {
                tracing::error!(shard = %self.name, error = %e, "growing the HNSW failed; retrying later");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            let chunk = batch.len().div_ceil(self.threads);
            let results: Vec<Vec<u32>> = std::thread::scope(|scope| {
                let workers: Vec<_> = batch
                    .chunks(chunk)
                    .map(|part| {
                        let index = index.clone();
                        scope.spawn(move || {
                            let mut done = Vec::with_capacity(part.len());
                            for (slot, v) in part {
                                // A key left over from an older saved index must go first.
                                if index.contains(*slot) && index.remove(*slot).is_err() {
                                    continue;
                                }
                                match index.add(*slot, v) {
                                    Ok(()) => done.push(*slot),
                                    Err(e) => tracing::error!(error = %e, slot, "HNSW insert failed"),
                                }
                            }
                            done
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
            });
            added += results.iter().map(Vec::len).sum::<usize>();
            let mut st = self.state.write();
            if let Some(ist) = st.index_state.get_mut(name) {
                for slot in results.into_iter().flatten() {
                    // Mark it indexed even if it was retired meanwhile: the next removal pass
                    // then takes it out of the HNSW.
                    ist.pending.remove(&slot);
                    ist.indexed.insert(slot);
                }
            }
        }
        added
    }

    /// Trains a quantized index on a sample of the vectors waiting for it, once there are
    /// enough; true when the index is ready for them.
    fn train(&self, name: &str, index: &dyn VectorIndex) -> bool {
        let sample: Vec<Vec<f32>> = {
            let st = self.state.read();
            let Some(ist) = st.index_state.get(name) else {
                return false;
            };
            if ist.pending.len() < QUANTIZE_FROM {
                return false;
            }
            let step = ist.pending.len().div_ceil(TRAIN_SAMPLE);
            ist.pending
                .iter()
                .step_by(step)
                .filter_map(|s| st.index_vector(name, *s).map(std::borrow::Cow::into_owned))
                .collect()
        };
        let started = Instant::now();
        let refs: Vec<&[f32]> = sample.iter().map(Vec::as_slice).collect();
        match index.train(&refs) {
            Ok(()) => {
                tracing::info!(
                    shard = %self.name, vector = %name, sample = refs.len(),
                    ms = started.elapsed().as_millis() as u64, "trained the vector quantization"
                );
                true
            }
            Err(e) => {
                tracing::error!(shard = %self.name, vector = %name, error = %e, "training the quantization failed");
                std::thread::sleep(Duration::from_secs(1));
                false
            }
        }
    }

    /// Rebuilds indexes that hold many removed vectors; true if one was rebuilt.
    fn compact(&self) -> bool {
        let mut worked = false;
        for (name, index) in &self.indexes {
            match index.compact(self.threads) {
                Ok(done) => worked |= done,
                Err(e) => tracing::error!(shard = %self.name, vector = %name, error = %e, "rebuilding the HNSW failed"),
            }
        }
        worked
    }

    fn save(&self) {
        for (name, index) in &self.indexes {
            let started = Instant::now();
            let path = index_path(&self.dir, name, index.engine());
            match index.save(&path) {
                Ok(()) => tracing::debug!(
                    shard = %self.name, vector = %name, vectors = index.len(),
                    ms = started.elapsed().as_millis() as u64, "saved HNSW"
                ),
                Err(e) => tracing::warn!(shard = %self.name, error = %e, "saving the HNSW failed"),
            }
        }
    }
}
