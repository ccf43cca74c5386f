//! `max_collection_vector_size_bytes`, `max_collection_payload_size_bytes`, `max_points_count`:
//! checked before a write against the collection's current size, as Qdrant does
//! (`verification/update.rs`), so the write that crosses a limit is accepted and the next one
//! refused.
//!
//! The byte sizes come from the local shards (vectors as stored: 4 bytes per float, 8 per
//! sparse entry; payloads as JSON), scaled to the whole collection when only some shards are
//! local, and are cached: like Qdrant (`collection_size_stats.rs`, `UPDATE_INTERVAL = 32`) they
//! are measured again every 32nd check, since measuring walks every point. The points count is
//! exact at every check.

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Strict;
use crate::collection::{blocking, Collection};
use crate::error::{Error, Result};
use crate::model::operations::PointOperation;
use crate::model::query::ReadConsistency;
use crate::storage::shard::LocalShard;

/// Checks between two measurements of the collection's byte sizes.
const REFRESH_EVERY: u64 = 32;

/// What a collection holds, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct StoredSize {
    pub vector_bytes: usize,
    pub payload_bytes: usize,
}

/// The last measurement and how many checks used it.
#[derive(Debug, Default)]
pub struct SizeCache {
    checks: u64,
    last: Option<StoredSize>,
}

/// Counts the bytes written to it.
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One local shard's vector and payload bytes (walks every point).
fn measure(shard: &LocalShard) -> StoredSize {
    let state = shard.state.read();
    let mut size = StoredSize::default();
    for slot in state.ids.values() {
        let Some(point) = state.live(*slot) else { continue };
        for arena in state.dense.values() {
            if arena.get(*slot).is_some() {
                size.vector_bytes += arena.dim * std::mem::size_of::<f32>();
            }
        }
        for sparse in point.sparse.values() {
            size.vector_bytes += sparse.indices.len() * (std::mem::size_of::<u32>() + std::mem::size_of::<f32>());
        }
        for rows in point.multi.values() {
            size.vector_bytes += rows.rows.len() * std::mem::size_of::<f32>();
        }
        if !point.payload.is_empty() {
            let mut counter = Counter(0);
            if serde_json::to_writer(&mut counter, &point.payload).is_ok() {
                size.payload_bytes += counter.0;
            }
        }
    }
    size
}

/// The MB Qdrant prints a byte limit as (`f32` division, Rust `Display`).
fn megabytes(bytes: usize) -> f32 {
    bytes as f32 / (1024.0 * 1024.0)
}

impl Collection {
    /// The collection's byte sizes, measured again every [`REFRESH_EVERY`] checks.
    async fn stored_size(&self, cache: &Mutex<SizeCache>) -> Result<StoredSize> {
        {
            let mut c = cache.lock();
            c.checks += 1;
            if let Some(last) = c.last {
                if c.checks % REFRESH_EVERY != 0 {
                    return Ok(last);
                }
            }
        }
        let shards: Vec<Arc<LocalShard>> = self.local_shards();
        let total = self.shard_ids().len();
        let measured = blocking(move || {
            let sizes: Vec<StoredSize> = shards.iter().map(|s| measure(s)).collect();
            Ok(sizes)
        })
        .await?;
        let mut size = measured.iter().fold(StoredSize::default(), |a, s| StoredSize {
            vector_bytes: a.vector_bytes + s.vector_bytes,
            payload_bytes: a.payload_bytes + s.payload_bytes,
        });
        // Only some shards here (cluster mode): assume the others hold as much on average.
        if !measured.is_empty() && measured.len() < total {
            size.vector_bytes = size.vector_bytes / measured.len() * total;
            size.payload_bytes = size.payload_bytes / measured.len() * total;
        }
        cache.lock().last = Some(size);
        Ok(size)
    }

    /// The size limits a write must pass (before it is applied): vectors, payload and points for
    /// upserts and vector updates, payload for set / overwrite payload, none for the others.
    pub(super) async fn check_size_limits(&self, strict: &Strict, op: &PointOperation) -> Result<()> {
        let m = &strict.mode;
        let (vectors, payload, points) = match op {
            PointOperation::Upsert(..) | PointOperation::UpdateVectors(..) => (
                m.max_collection_vector_size_bytes,
                m.max_collection_payload_size_bytes,
                m.max_points_count,
            ),
            PointOperation::SetPayload { .. } | PointOperation::OverwritePayload { .. } => {
                (None, m.max_collection_payload_size_bytes, None)
            }
            _ => return Ok(()),
        };
        if vectors.is_some() || payload.is_some() {
            let size = self.stored_size(&self.strict_state.sizes).await?;
            if let Some(max) = vectors.filter(|max| size.vector_bytes >= *max) {
                return Err(Error::BadRequest(format!(
                    "Max vector storage size limit of {}MB reached!",
                    megabytes(max)
                )));
            }
            if let Some(max) = payload.filter(|max| size.payload_bytes >= *max) {
                return Err(Error::BadRequest(format!(
                    "Max payload storage size limit of {}MB reached!",
                    megabytes(max)
                )));
            }
        }
        if let Some(max) = points {
            if self.count_points(None, ReadConsistency::One).await? >= max {
                return Err(Error::BadRequest(format!("Max points count limit of {max} reached!")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_print_as_qdrant_does() {
        assert_eq!(megabytes(1024 * 1024).to_string(), "1");
        assert_eq!(megabytes(160).to_string(), "0.00015258789");
        let mut c = Counter(0);
        serde_json::to_writer(&mut c, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(c.0, 7);
    }
}
