//! Vector codes: what a graph record stores in place of the vector, and how distances are
//! computed on it. `F32` keeps the vector itself; the quantized codes (scalar int8, binary,
//! product, TurboQuant) keep a few bits per dimension, so the graph's records shrink and its
//! distances get cheaper, at some accuracy that the caller buys back by rescoring the best
//! candidates with the original vectors.
//!
//! Every code computes the distance of the graph's `Metric` (smaller is nearer), exactly for
//! `F32` (and for the compact `F16`/`U8` element types, on the values they hold), approximately
//! for the quantized ones, so a graph is searched the same way whatever its code.

use crate::kernels::Metric;

/// How vectors are stored in a graph's records.
pub trait Code: Send + Sync + Sized + 'static {
    /// A query made ready for scoring against codes (quantized, rotated, lookup tables, ...).
    type Query: Send + Sync;
    /// The dimension of the original vectors.
    fn dim(&self) -> usize;
    /// The metric whose distance `distance` approximates.
    fn metric(&self) -> Metric;
    /// u32 words one code takes in a graph record.
    fn words(&self) -> usize;
    /// Writes the code of `v` (`dim()` values, preprocessed as the index expects: normalised
    /// for cosine) into `out` (`words()` long).
    fn encode(&self, v: &[f32], out: &mut [u32]);
    /// Makes `q` ready for `distance`.
    fn prepare(&self, q: &[f32]) -> Self::Query;
    /// The metric distance between a prepared query and a code; smaller is nearer.
    fn distance(&self, q: &Self::Query, code: &[u32]) -> f32;
    /// The distance between two codes (used while building the graph).
    fn distance_codes(&self, a: &[u32], b: &[u32]) -> f32;
    /// The vector a code stands for (exact for `F32`, an approximation otherwise).
    fn decode(&self, code: &[u32]) -> Vec<f32>;
    /// Whether a vector of `len` values can be encoded and queried (one of `dim()` values;
    /// whole rows of `dim()` for a multivector code).
    fn accepts(&self, len: usize) -> bool {
        len == self.dim()
    }
    /// Whether `code` is the code of `v`.
    fn same(&self, v: &[f32], code: &[u32]) -> bool {
        let mut mine = vec![0u32; self.words()];
        self.encode(v, &mut mine);
        mine == code
    }
    /// Writes into `out` the code of this code's kind that stands for `code`, a code of `from`
    /// (a graph being rebuilt with this code). Words are the code itself, except where a code
    /// keeps records outside the graph (multivector rows).
    fn copy_from(&self, from: &Self, code: &[u32], out: &mut [u32]) {
        let _ = from;
        out.copy_from_slice(code);
    }
    /// Bytes the code's own parameters (ranges, codebooks, rotations) hold in memory.
    fn params_memory(&self) -> usize;
    /// True when a prepared query scores exactly like its vector's code, i.e.
    /// `distance(&prepare(v), c) == distance_codes(encode(v), c)`. Otherwise the graph rescores
    /// a new node's candidates with `distance_codes` before choosing its links, so the choice
    /// compares distances of one kind (an asymmetric query's scale may differ from the codes').
    const QUERY_IS_CODE: bool = false;
}

mod any;
pub mod binary;
pub mod compact;
pub mod f32;
mod kmeans;
pub mod multi;
pub mod pq;
pub mod scalar;
pub mod turbo;

pub(crate) use any::{with_code, AnyCode};
pub use any::{BinaryEncoding, BinaryQueryEncoding, Quantization, StoredCode};
pub use compact::Precision;
pub use pq::Compression;
pub use turbo::TurboBits;
