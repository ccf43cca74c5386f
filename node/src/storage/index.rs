//! The approximate nearest-neighbour index of one dense vector of one shard.
//!
//! `VectorIndex` is the small seam where index implementations plug in: `NativeIndex` is the
//! project's own HNSW (the `hnsw` crate, the default), `UsearchIndex` the `usearch` crate's
//! (`storage.hnsw_index.engine: usearch`). Keys are the shard's slot numbers. Indexes score in
//! Qdrant's convention (see `Distance::score`), so callers never see library distances.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::hnsw_index::NativeIndex;
use super::usearch_index::UsearchIndex;
use crate::error::Result;
use crate::model::collection::Datatype;
use crate::model::quantization::QuantizationConfig;
use crate::model::vector::Distance;

pub trait VectorIndex: Send + Sync {
    fn params(&self) -> HnswParams;
    fn engine(&self) -> IndexEngine;
    /// Adds `vector` (already preprocessed for the distance) under `key`. Safe to call from
    /// several threads at once.
    fn add(&self, key: u32, vector: &[f32]) -> Result<()>;
    fn remove(&self, key: u32) -> Result<()>;
    fn contains(&self, key: u32) -> bool;
    /// Reads back the stored vector of `key`, if present (decoded from its code when quantized).
    fn get(&self, key: u32) -> Option<Vec<f32>>;
    /// Whether the index holds `key` with exactly `vector` (for a quantized index: its code).
    fn holds(&self, key: u32, vector: &[f32]) -> bool {
        self.get(key).is_some_and(|v| v == vector)
    }
    /// The quantization the index searches with now (`None`: full vectors, or not trained yet).
    fn quantization(&self) -> Option<QuantizationConfig> {
        None
    }
    /// Whether the index waits for `train` before its first vector can be added.
    fn needs_training(&self) -> bool {
        false
    }
    /// Fits the quantization to `sample` (vectors preprocessed as for `add`); only on an empty
    /// index that `needs_training`.
    fn train(&self, sample: &[&[f32]]) -> Result<()> {
        let _ = sample;
        Ok(())
    }
    /// Best `limit` keys accepted by `accept`, best first, with Qdrant scores.
    fn search(&self, query: &[f32], limit: usize, ef: usize, accept: &dyn Fn(u32) -> bool) -> Result<Vec<(u32, f32)>>;
    /// Best `limit` keys of the whole index (no per-candidate callback: the common, fastest case).
    fn search_all(&self, query: &[f32], limit: usize, ef: usize) -> Result<Vec<(u32, f32)>>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes on the heap.
    fn memory_usage(&self) -> usize;
    /// Bytes kept in mapped files instead of the heap.
    fn mapped_memory(&self) -> usize {
        0
    }
    /// Makes room for `additional` more keys.
    fn reserve(&self, additional: usize) -> Result<()>;
    fn save(&self, path: &Path) -> Result<()>;
    /// Drops removed vectors from the graph when they have piled up (by rebuilding it with
    /// `threads` threads); true if it did. Runs on the indexer, the index's only writer.
    fn compact(&self, threads: usize) -> Result<bool> {
        let _ = threads;
        Ok(false)
    }
    /// Links back vectors that no search can reach any more (concurrent inserts can prune every
    /// link into one); how many it relinked. Runs on the indexer, the index's only writer.
    fn repair(&self) -> usize {
        0
    }
}

/// Which HNSW implementation a node builds (`storage.hnsw_index.engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexEngine {
    /// The `hnsw` crate: hnswlib's layout, our kernels (docs/benchmarks.md has the figures).
    #[default]
    Native,
    Usearch,
}

/// How a node builds its vector indexes.
#[derive(Debug, Clone, Copy)]
pub struct IndexingOptions {
    /// Threads adding vectors to one shard's indexes.
    pub threads: usize,
    pub engine: IndexEngine,
}

/// HNSW parameters of one index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswParams {
    pub dim: usize,
    pub distance: Distance,
    pub m: usize,
    pub ef_construct: usize,
    /// Store quantized codes instead of the vectors (the native engine only).
    pub quantization: Option<QuantizationConfig>,
    /// The element type whole vectors are kept in (the native engine: f32, f16 or bytes;
    /// usearch keeps f32).
    pub datatype: Datatype,
    /// A multivector index: each key holds rows of `dim` values, compared by MaxSim (the
    /// native engine only; its scores are MaxSim distances, which callers rescore exactly).
    pub multi: bool,
    /// Keep the graph's records (links and codes) in a mapped file beside the saved index
    /// instead of the heap (the native engine only).
    pub on_disk: bool,
}

impl HnswParams {
    /// Qdrant's score for an index distance (`1 - dot` for Cosine/Dot, squared L2 for Euclid,
    /// L1 for Manhattan: the meaning both engines give their distances).
    pub fn score(&self, distance: f32) -> f32 {
        match self.distance {
            Distance::Cosine | Distance::Dot => 1.0 - distance,
            Distance::Euclid => distance.max(0.0).sqrt(),
            Distance::Manhattan => distance,
        }
    }
}

/// Where a shard keeps the saved index of one vector name.
pub fn index_path(shard_dir: &Path, vector_name: &str, engine: IndexEngine) -> PathBuf {
    // Vector names may hold any character: hex keeps the file name safe.
    let hex: String = vector_name.bytes().map(|b| format!("{b:02x}")).collect();
    let ext = match engine {
        IndexEngine::Native => "graph",
        IndexEngine::Usearch => "usearch",
    };
    shard_dir.join(format!("hnsw-{hex}.{ext}"))
}

/// Where a graph kept on disk maps its records: beside its saved index.
fn records_path(index_path: &Path) -> PathBuf {
    index_path.with_extension("records")
}

/// The engine an index with `params` is built with: quantized vectors, multivectors and
/// graphs kept on disk always use the native one (its graph stores the codes, or the rows, in
/// records it can map from a file; usearch here keeps one f32 vector per key in RAM).
pub fn engine_for(engine: IndexEngine, params: &HnswParams) -> IndexEngine {
    if params.quantization.is_some() || params.multi || params.on_disk {
        return IndexEngine::Native;
    }
    engine
}

/// The index saved at `path` if it is there and fits `params`, else a new empty one.
pub fn open(engine: IndexEngine, params: HnswParams, path: &Path) -> Result<Arc<dyn VectorIndex>> {
    Ok(match engine_for(engine, &params) {
        IndexEngine::Native => {
            let index = match NativeIndex::load(params, path) {
                Some(i) => i,
                None => NativeIndex::new(params)?,
            };
            Arc::new(index.placed(params.on_disk.then(|| records_path(path)))?)
        }
        IndexEngine::Usearch => Arc::new(match UsearchIndex::load(params, path)? {
            Some(i) => i,
            None => UsearchIndex::new(params)?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGINES: [IndexEngine; 2] = [IndexEngine::Native, IndexEngine::Usearch];

    fn new_index(engine: IndexEngine, params: HnswParams) -> Arc<dyn VectorIndex> {
        let dir = tempfile::tempdir().unwrap();
        open(engine, params, &dir.path().join("none")).unwrap()
    }

    fn params(dim: usize, distance: Distance, m: usize, ef_construct: usize) -> HnswParams {
        HnswParams {
            dim,
            distance,
            m,
            ef_construct,
            quantization: None,
            datatype: Datatype::Float32,
            multi: false,
            on_disk: false,
        }
    }

    /// An index of `engine` holding `data` under keys 0..n, and the data.
    fn filled(engine: IndexEngine, params: HnswParams, data: Vec<Vec<f32>>) -> (Arc<dyn VectorIndex>, Vec<Vec<f32>>) {
        let index = new_index(engine, params);
        index.reserve(data.len()).unwrap();
        for (i, v) in data.iter().enumerate() {
            index.add(i as u32, v).unwrap();
        }
        (index, data)
    }

    fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn scores_match_exact_for_every_distance() {
        for engine in ENGINES {
            for distance in [Distance::Cosine, Distance::Dot, Distance::Euclid, Distance::Manhattan] {
                let params = params(8, distance, 16, 100);
                let mut data = random_vectors(200, 8, 7);
                data.iter_mut().for_each(|v| distance.preprocess(v));
                let (index, data) = filled(engine, params, data);
                let mut q = random_vectors(1, 8, 99).remove(0);
                distance.preprocess(&mut q);
                let hits = index.search(&q, 5, 200, &|_| true).unwrap();
                let mut exact: Vec<(u32, f32)> = data
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as u32, distance.score(v, &q)))
                    .collect();
                exact.sort_by(|a, b| distance.cmp_best_first(a.1, b.1));
                assert_eq!(hits.len(), 5, "{engine:?} {distance:?}");
                for (h, e) in hits.iter().zip(&exact) {
                    assert_eq!(h.0, e.0, "{distance:?}");
                    assert!((h.1 - e.1).abs() < 1e-4, "{distance:?}: {} vs {}", h.1, e.1);
                }
            }
        }
    }

    #[test]
    fn filter_remove_and_save_load() {
        for engine in ENGINES {
            let params = params(4, Distance::Euclid, 8, 32);
            let (index, data) = filled(engine, params, random_vectors(50, 4, 1));
            let hits = index.search(&data[3], 10, 64, &|k| k % 2 == 0).unwrap();
            assert!(hits.iter().all(|(k, _)| k % 2 == 0));
            index.remove(4).unwrap();
            assert!(index.get(4).is_none());
            assert_eq!(index.get(5).unwrap(), data[5]);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("i.usearch");
            index.save(&path).unwrap();
            let loaded = open(engine, params, &path).unwrap();
            assert_eq!(loaded.len(), index.len());
            assert_eq!(loaded.get(7).unwrap(), data[7]);
            let missing = open(engine, params, &dir.path().join("missing")).unwrap();
            assert!(missing.is_empty());
            // A file of the wrong shape is ignored (rebuilt), never an error.
            let other = HnswParams { dim: 5, ..params };
            assert!(open(engine, other, &path).unwrap().is_empty());
        }
    }

    #[test]
    fn concurrent_searches_with_different_ef() {
        for engine in ENGINES {
            let params = params(16, Distance::Dot, 16, 64);
            let (index, data) = filled(engine, params, random_vectors(2000, 16, 3));
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let index = index.clone();
                    let q = data[t].clone();
                    std::thread::spawn(move || {
                        for round in 0..50 {
                            let ef = if (t + round) % 2 == 0 { 16 } else { 256 };
                            let hits = index.search(&q, 10, ef, &|_| true).unwrap();
                            assert_eq!(hits.len(), 10);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
    }

    #[test]
    fn compaction_drops_removed_vectors_of_the_native_graph() {
        let params = params(8, Distance::Euclid, 8, 32);
        let data = random_vectors(3000, 8, 11);
        for engine in ENGINES {
            let (index, data) = filled(engine, params, data.clone());
            assert!(!index.compact(2).unwrap(), "{engine:?}: nothing removed yet");
            for key in 0..2000 {
                index.remove(key).unwrap();
            }
            // usearch reclaims removed slots itself; the native graph rebuilds.
            assert_eq!(index.compact(2).unwrap(), engine == IndexEngine::Native);
            assert_eq!(index.len(), 1000);
            // A wide search: with 2 rebuild threads the graph differs run to run, and at ef 64
            // a vector's own key came second once in a CI run (2 in 100 000 such searches here).
            let hits = index.search_all(&data[2500], 5, 256).unwrap();
            assert_eq!(hits[0].0, 2500, "{engine:?}");
            assert!(hits.iter().all(|(k, _)| *k >= 2000));
            assert!(!index.compact(2).unwrap());
        }
    }

    #[test]
    fn a_quantized_index_trains_searches_codes_and_reloads_only_with_its_code() {
        use crate::model::quantization::QuantizationConfig;
        let dir = tempfile::tempdir().unwrap();
        let scalar = HnswParams {
            quantization: Some(QuantizationConfig::Scalar { quantile: Some(0.99) }),
            ..params(16, Distance::Euclid, 16, 64)
        };
        // Quantization needs the native engine, whatever the node's setting.
        assert_eq!(engine_for(IndexEngine::Usearch, &scalar), IndexEngine::Native);
        let path = dir.path().join("q.graph");
        let index = open(IndexEngine::Usearch, scalar, &path).unwrap();
        assert!(index.needs_training() && index.quantization().is_none());
        let data = random_vectors(2000, 16, 7);
        let sample: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        index.train(&sample).unwrap();
        assert!(!index.needs_training());
        assert_eq!(index.quantization(), scalar.quantization);
        index.reserve(data.len()).unwrap();
        for (i, v) in data.iter().enumerate() {
            index.add(i as u32, v).unwrap();
        }
        let hits = index.search_all(&data[5], 3, 64).unwrap();
        assert_eq!(hits[0].0, 5);
        // Scores come from the int8 codes: close to the exact ones, not equal.
        assert!(hits[0].1.abs() < 0.5, "{hits:?}");
        assert!(index.holds(5, &data[5]) && !index.holds(5, &data[6]));
        index.save(&path).unwrap();
        let reloaded = open(IndexEngine::Native, scalar, &path).unwrap();
        assert_eq!((reloaded.len(), reloaded.quantization()), (2000, scalar.quantization));
        // Another quantization (or none) does not reuse the saved graph.
        let binary = HnswParams {
            quantization: Some(QuantizationConfig::Binary {
                encoding: Default::default(),
                query_encoding: Default::default(),
            }),
            ..scalar
        };
        assert!(open(IndexEngine::Native, binary, &path).unwrap().is_empty());
        assert!(open(IndexEngine::Native, params(16, Distance::Euclid, 16, 64), &path)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn an_index_kept_on_disk_maps_its_records_through_training_and_rebuilds() {
        use crate::model::quantization::QuantizationConfig;
        let dir = tempfile::tempdir().unwrap();
        let p = HnswParams {
            quantization: Some(QuantizationConfig::Scalar { quantile: None }),
            on_disk: true,
            ..params(16, Distance::Euclid, 16, 64)
        };
        assert_eq!(engine_for(IndexEngine::Usearch, &p), IndexEngine::Native);
        let path = dir.path().join("d.graph");
        let index = open(IndexEngine::Native, p, &path).unwrap();
        assert!(index.mapped_memory() > 0);
        let data = random_vectors(3000, 16, 9);
        let sample: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        index.train(&sample).unwrap();
        index.reserve(data.len()).unwrap();
        for (i, v) in data.iter().enumerate() {
            index.add(i as u32, v).unwrap();
        }
        // The records (links and int8 codes) are in the file, not on the heap.
        let on_heap = open(
            IndexEngine::Native,
            HnswParams { on_disk: false, ..p },
            &dir.path().join("h.graph"),
        )
        .unwrap();
        on_heap.train(&sample).unwrap();
        on_heap.reserve(data.len()).unwrap();
        for (i, v) in data.iter().enumerate() {
            on_heap.add(i as u32, v).unwrap();
        }
        assert!(index.memory_usage() + index.mapped_memory() / 2 < on_heap.memory_usage());
        assert_eq!(index.search_all(&data[7], 1, 64).unwrap()[0].0, 7);
        // A rebuild keeps the records in the file.
        for key in 0..2000 {
            index.remove(key).unwrap();
        }
        assert!(index.compact(2).unwrap());
        assert!(index.mapped_memory() > 0);
        assert_eq!(index.search_all(&data[2500], 1, 64).unwrap()[0].0, 2500);
        // Saved, then reopened on the heap (the setting changed).
        index.save(&path).unwrap();
        drop(index);
        let reopened = open(IndexEngine::Native, HnswParams { on_disk: false, ..p }, &path).unwrap();
        assert_eq!((reopened.len(), reopened.mapped_memory()), (1000, 0));
        // No working file is left in the directory.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["d.graph"]);
    }
}
