//! Snapshot archives: what a snapshot file holds and how it is written, checked and read back.
//!
//! A snapshot is one tar file: `manifest.json` first (format, versions, the collections with
//! their config and shard layout, and the size and sha256 of every other file), then the files:
//! `collections/<name>/<shard>/db/...` (a RocksDB checkpoint of the shard: points, payloads,
//! tombstones) and the shard's saved HNSW graphs, so a restore does not re-index. Beside the
//! file, `<name>.checksum` holds the sha256 of the whole archive (as Qdrant keeps it).
//!
//! The node layer (`node::snapshots`) decides what goes in and where it is restored; this
//! module knows only files.

pub mod archive;
pub mod fetch;
pub mod manifest;
pub mod store;

pub use manifest::{CollectionEntry, Manifest, ShardEntry, SnapshotKind};
