//! The project's HNSW index (Malkov & Yashunin, "Efficient and robust approximate nearest
//! neighbor search using Hierarchical Navigable Small World graphs").
//!
//! Written for speed per query on this kind of data: each node's level-0 record holds its link
//! count, its links and its vector at a fixed stride, so visiting a neighbour costs one computed
//! address instead of the pointer-table lookups that made usearch ~3x slower per query than
//! hnswlib here (docs/benchmarks.md). Searches take no locks; inserts lock one node at a time.

pub mod codec;
mod graph;
pub mod kernels;
mod persist;
mod records;
mod visited;

pub use codec::{BinaryEncoding, BinaryQueryEncoding, Compression, Precision, Quantization, TurboBits};
pub use graph::{Hnsw, Params};
pub use kernels::{Kernel, Metric};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("vector has {got} dimensions, the index expects {want}")]
    Dimension { got: usize, want: usize },
    #[error("the index is full ({0} nodes): reserve room first")]
    Full(usize),
    #[error("invalid index parameters: {0}")]
    Params(String),
    #[error("rebuilding the index failed: {0}")]
    Rebuild(String),
    #[error("index file: {0}")]
    Io(#[from] std::io::Error),
    #[error("index file is not valid: {0}")]
    Format(String),
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod multi_tests;
#[cfg(test)]
mod quantized_tests;
