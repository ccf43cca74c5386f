//! Local storage: one shard's points in RocksDB and memory, its HNSW indexes, payload
//! filters and payload indexes.

pub mod clock;
pub mod filter;
pub mod formula;
pub mod hnsw_index;
pub mod index;
pub mod indexer;
pub mod payload_index;
pub mod record;
pub mod shard;
pub mod sparse_index;
pub mod text;
pub mod usearch_index;
