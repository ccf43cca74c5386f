//! A consistent on-disk copy of a shard, the unit of a snapshot.

use std::path::Path;

use rocksdb::checkpoint::Checkpoint;

use super::LocalShard;
use crate::error::{Error, Result};
use crate::snapshot::ShardEntry;
use crate::storage::index;

impl LocalShard {
    /// Copies the shard into `dir` (which must not exist): a RocksDB checkpoint taken under the
    /// write lock, so it holds exactly the writes up to one operation number while later writes
    /// wait only for the hard links to be made, then the saved HNSW graphs. A graph may be
    /// older or newer than the checkpoint: opening the copy keeps only the graph entries that
    /// match its points and indexes the rest.
    pub fn checkpoint(&self, dir: &Path) -> Result<ShardEntry> {
        if self.buffered.lock().is_some() {
            return Err(Error::Unavailable(format!(
                "shard {} is being filled by a transfer; snapshot it once the transfer is done",
                self.id
            )));
        }
        std::fs::create_dir_all(dir)?;
        let entry = {
            let _writes = self.write_lock.lock();
            Checkpoint::new(self.db.as_ref())?.create_checkpoint(dir.join("db"))?;
            let state = self.state.read();
            ShardEntry {
                id: self.id,
                points: state.ids.len(),
                last_seq: state.seq,
                max_version: state.max_version,
            }
        };
        for (name, graph) in &self.indexes {
            if !graph.is_empty() {
                graph.save(&index::index_path(dir, name, graph.engine()))?;
            }
        }
        Ok(entry)
    }
}
