//! The project's own HNSW (`hnsw` crate) behind `VectorIndex`: the node's default engine.

use std::path::{Path, PathBuf};

use hnsw::{Hnsw, Metric, Params, Precision};
use parking_lot::RwLock;

use super::index::{HnswParams, IndexEngine, VectorIndex};
use crate::error::{Error, Result};
use crate::model::collection::Datatype;
use crate::model::quantization::{BinaryEncoding, BinaryQueryEncoding, Compression, QuantizationConfig, TurboBits};
use crate::model::vector::Distance;

/// A graph with more tombstones than this share of its nodes is rebuilt without them (on load,
/// or by the indexer when idle): they cost memory and search work until then.
const MAX_TOMBSTONE_SHARE: f64 = 0.25;
/// Fewer tombstones than this are never worth a rebuild.
const MIN_TOMBSTONES_TO_COMPACT: usize = 1024;

fn too_many_tombstones(graph: &Hnsw) -> bool {
    graph.tombstones() >= MIN_TOMBSTONES_TO_COMPACT
        && graph.tombstones() as f64 > MAX_TOMBSTONE_SHARE * graph.allocated() as f64
}

pub struct NativeIndex {
    params: HnswParams,
    /// Read-locked for everything but growing the graph (`reserve`) and saving it.
    graph: RwLock<Hnsw>,
    /// The file the graph's records are mapped from (`HnswParams::on_disk`); None: the heap.
    records: Option<PathBuf>,
}

fn graph_params(p: &HnswParams) -> Params {
    Params {
        dim: p.dim,
        m: p.m.max(2),
        ef_construct: p.ef_construct.max(4),
        // Cosine vectors are normalised on insert, so `1 - dot` is the cosine distance.
        metric: match p.distance {
            Distance::Cosine | Distance::Dot => Metric::InnerProduct,
            Distance::Euclid => Metric::L2sq,
            Distance::Manhattan => Metric::L1,
        },
    }
}

/// The graph's code for a collection's quantization config.
fn code_for(q: QuantizationConfig) -> hnsw::Quantization {
    use hnsw::Quantization as H;
    match q {
        QuantizationConfig::Scalar { quantile } => H::Scalar { quantile },
        QuantizationConfig::Binary {
            encoding,
            query_encoding,
        } => H::Binary {
            encoding: match encoding {
                BinaryEncoding::OneBit => hnsw::BinaryEncoding::OneBit,
                BinaryEncoding::TwoBits => hnsw::BinaryEncoding::TwoBits,
                BinaryEncoding::OneAndHalfBits => hnsw::BinaryEncoding::OneAndHalfBits,
            },
            query_encoding: match query_encoding {
                BinaryQueryEncoding::Default => hnsw::BinaryQueryEncoding::Default,
                BinaryQueryEncoding::Binary => hnsw::BinaryQueryEncoding::Binary,
                BinaryQueryEncoding::Scalar4bits => hnsw::BinaryQueryEncoding::Scalar4Bits,
                BinaryQueryEncoding::Scalar8bits => hnsw::BinaryQueryEncoding::Scalar8Bits,
            },
        },
        QuantizationConfig::Product { compression } => H::Product {
            compression: match compression {
                Compression::X4 => hnsw::Compression::X4,
                Compression::X8 => hnsw::Compression::X8,
                Compression::X16 => hnsw::Compression::X16,
                Compression::X32 => hnsw::Compression::X32,
                Compression::X64 => hnsw::Compression::X64,
            },
        },
        QuantizationConfig::Turbo { bits } => H::Turbo {
            bits: match bits {
                TurboBits::Bits1 => hnsw::TurboBits::Bits1,
                TurboBits::Bits1_5 => hnsw::TurboBits::Bits1_5,
                TurboBits::Bits2 => hnsw::TurboBits::Bits2,
                TurboBits::Bits4 => hnsw::TurboBits::Bits4,
            },
        },
    }
}

/// The element type of a graph that keeps whole vectors: the collection's `datatype`.
fn precision_for(datatype: Datatype) -> Precision {
    match datatype {
        Datatype::Float32 => Precision::F32,
        Datatype::Float16 => Precision::F16,
        Datatype::Uint8 => Precision::U8,
    }
}

/// Maps `graph`'s records from `records`, or brings them onto the heap.
fn place(records: &Option<PathBuf>, graph: &mut Hnsw) -> Result<()> {
    match records {
        Some(path) => graph.map_records(path).map_err(internal),
        None => {
            graph.unmap_records();
            Ok(())
        }
    }
}

fn internal(e: hnsw::Error) -> Error {
    Error::internal(format!("hnsw: {e}"))
}

impl NativeIndex {
    /// The same index with its graph's records mapped from `records` (None: on the heap).
    pub fn placed(mut self, records: Option<PathBuf>) -> Result<Self> {
        place(&records, self.graph.get_mut())?;
        self.records = records;
        Ok(self)
    }

    /// Puts `graph`'s records where this index keeps them (a new graph, trained or rebuilt,
    /// starts on the heap).
    fn records_into(&self, graph: &mut Hnsw) -> Result<()> {
        place(&self.records, graph)
    }

    pub fn new(params: HnswParams) -> Result<Self> {
        let graph = if params.multi {
            Hnsw::multi_with_precision(graph_params(&params), 1024, precision_for(params.datatype))
        } else {
            Hnsw::with_precision(graph_params(&params), 1024, precision_for(params.datatype))
        };
        Ok(NativeIndex {
            params,
            graph: RwLock::new(graph.map_err(internal)?),
            records: None,
        })
    }

    /// The graph saved at `path`, if it exists, reads back whole, fits `params` and is not
    /// mostly tombstones; otherwise `None` and the caller rebuilds.
    pub fn load(params: HnswParams, path: &Path) -> Option<Self> {
        if !path.exists() {
            return None;
        }
        let graph = match Hnsw::load(path, 1024) {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable saved index; rebuilding");
                return None;
            }
        };
        // A graph of another code (or of none) is rebuilt: the quantization was changed.
        if graph.params() != graph_params(&params) || graph.quantization() != params.quantization.map(code_for) {
            return None;
        }
        if graph.is_multi() != params.multi {
            return None;
        }
        // Likewise a graph of whole vectors (or rows) in another element type (the datatype
        // changed).
        if graph.quantization().is_none() && graph.precision() != Some(precision_for(params.datatype)) {
            return None;
        }
        if too_many_tombstones(&graph) {
            tracing::info!(path = %path.display(), tombstones = graph.tombstones(), "rebuilding index to drop removed vectors");
            return None;
        }
        Some(NativeIndex {
            params,
            graph: RwLock::new(graph),
            records: None,
        })
    }

    fn scored(&self, hits: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
        hits.into_iter().map(|(k, d)| (k, self.params.score(d))).collect()
    }
}

impl VectorIndex for NativeIndex {
    fn params(&self) -> HnswParams {
        self.params
    }

    fn engine(&self) -> IndexEngine {
        IndexEngine::Native
    }

    fn add(&self, key: u32, vector: &[f32]) -> Result<()> {
        self.graph.read().add(key, vector).map_err(internal)
    }

    fn remove(&self, key: u32) -> Result<()> {
        self.graph.read().remove(key);
        Ok(())
    }

    fn contains(&self, key: u32) -> bool {
        self.graph.read().contains(key)
    }

    fn get(&self, key: u32) -> Option<Vec<f32>> {
        self.graph.read().get(key)
    }

    fn holds(&self, key: u32, vector: &[f32]) -> bool {
        self.graph.read().holds(key, vector)
    }

    fn quantization(&self) -> Option<QuantizationConfig> {
        // Configured, and trained: until then the (empty) graph holds full vectors.
        self.params
            .quantization
            .filter(|_| self.graph.read().quantization().is_some())
    }

    fn needs_training(&self) -> bool {
        self.params.quantization.is_some() && self.graph.read().quantization().is_none()
    }

    fn train(&self, sample: &[&[f32]]) -> Result<()> {
        let Some(q) = self.params.quantization else {
            return Ok(());
        };
        let mut graph = self.graph.write();
        if !graph.is_empty() || graph.quantization().is_some() {
            return Err(Error::internal("the quantization is trained on an empty index only"));
        }
        let (p, capacity, code) = (graph_params(&self.params), graph.capacity(), code_for(q));
        let mut trained = if self.params.multi {
            Hnsw::multi_quantized(p, capacity, &code, sample)
        } else {
            Hnsw::quantized(p, capacity, &code, sample)
        }
        .map_err(internal)?;
        // The untrained graph's mapping (same file) goes first.
        graph.unmap_records();
        self.records_into(&mut trained)?;
        *graph = trained;
        Ok(())
    }

    fn search(&self, query: &[f32], limit: usize, ef: usize, accept: &dyn Fn(u32) -> bool) -> Result<Vec<(u32, f32)>> {
        let hits = self
            .graph
            .read()
            .search(query, limit, ef, Some(accept))
            .map_err(internal)?;
        Ok(self.scored(hits))
    }

    fn search_all(&self, query: &[f32], limit: usize, ef: usize) -> Result<Vec<(u32, f32)>> {
        let hits = self.graph.read().search(query, limit, ef, None).map_err(internal)?;
        Ok(self.scored(hits))
    }

    fn len(&self) -> usize {
        self.graph.read().len()
    }

    fn memory_usage(&self) -> usize {
        self.graph.read().memory_usage()
    }

    fn mapped_memory(&self) -> usize {
        self.graph.read().mapped_memory()
    }

    fn reserve(&self, additional: usize) -> Result<()> {
        let (needed, capacity) = {
            let g = self.graph.read();
            (g.allocated() + additional, g.capacity())
        };
        if needed <= capacity {
            return Ok(());
        }
        // Grow by half at least, so a stream of small batches does not copy the graph each time.
        let mut g = self.graph.write();
        let target = needed.max(g.capacity() + g.capacity() / 2);
        g.reserve(target).map_err(internal)
    }

    fn save(&self, path: &Path) -> Result<()> {
        // The write lock keeps inserts out while the graph is written.
        self.graph.write().save(path).map_err(internal)
    }

    fn repair(&self) -> usize {
        self.graph.read().repair()
    }

    fn compact(&self, threads: usize) -> Result<bool> {
        let fresh = {
            let graph = self.graph.read();
            if !too_many_tombstones(&graph) {
                return Ok(false);
            }
            tracing::info!(
                vectors = graph.len(),
                tombstones = graph.tombstones(),
                "rebuilding HNSW without removed vectors"
            );
            // Searches go on meanwhile; the caller (the indexer) is the only writer.
            graph.rebuilt(threads).map_err(internal)?
        };
        let mut graph = self.graph.write();
        // The old graph's mapping (same file) goes first; searches wait meanwhile.
        graph.unmap_records();
        let mut fresh = fresh;
        self.records_into(&mut fresh)?;
        *graph = fresh;
        Ok(true)
    }
}
