//! The collection's part of snapshots: checkpointing its local shards into a staging directory,
//! and swapping a local shard for a copy recovered from a snapshot.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{open_shard, wait_unused, Collection, ShardId};
use crate::error::{Error, Result};
use crate::snapshot::CollectionEntry;
use crate::storage::shard::LocalShard;

impl Collection {
    /// Where the shards of this collection go in a snapshot (the layout of the storage).
    pub fn archive_dir(name: &str) -> std::path::PathBuf {
        Path::new("collections").join(name)
    }

    /// Checkpoints the local shards (or only `only`) into `staging` (blocking). Each shard is
    /// consistent at one point of its operation log; writes continue meanwhile.
    pub fn checkpoint(&self, staging: &Path, only: Option<ShardId>) -> Result<CollectionEntry> {
        let shards: Vec<(ShardId, Arc<LocalShard>)> = match only {
            Some(id) => {
                let shard = self
                    .local_shard(id)
                    .ok_or_else(|| Error::not_found(format!("Shard {id} is not found on this peer")))?;
                vec![(id, shard)]
            }
            None => self.shards.read().iter().map(|(id, s)| (*id, s.clone())).collect(),
        };
        let dir = staging.join(Self::archive_dir(&self.name));
        let mut entries = Vec::with_capacity(shards.len());
        for (id, shard) in shards {
            entries.push(shard.checkpoint(&dir.join(id.to_string()))?);
        }
        let mut meta = self.meta.read().clone();
        meta.cluster = None;
        Ok(CollectionEntry {
            name: self.name.clone(),
            meta,
            shards: entries,
        })
    }

    /// Replaces the local replica of shard `id` with the shard copy at `copy` (a directory of a
    /// recovered snapshot; moved, not copied, when on the same file system). Requests for the
    /// shard fail while it is swapped (blocking).
    pub fn replace_local_shard(&self, id: ShardId, copy: &Path) -> Result<()> {
        let old = self
            .shards
            .write()
            .remove(&id)
            .ok_or_else(|| Error::not_found(format!("Shard {id} is not found on this peer")))?;
        old.close();
        wait_unused(&old, Duration::from_secs(30));
        drop(old);
        let target = self.path.join(id.to_string());
        let aside = self.path.join(format!(".{id}-replaced-{}", uuid::Uuid::new_v4()));
        std::fs::rename(&target, &aside)?;
        let meta = self.meta.read().clone();
        let opened = crate::snapshot::store::move_dir(copy, &target)
            .and_then(|()| open_shard(&self.path, id, &meta, self.indexing));
        let shard = match opened {
            Ok(shard) => {
                let _ = std::fs::remove_dir_all(&aside);
                shard
            }
            Err(e) => {
                // Put the old replica back: a failed recovery loses nothing.
                let _ = std::fs::remove_dir_all(&target);
                std::fs::rename(&aside, &target)?;
                let shard = open_shard(&self.path, id, &meta, self.indexing)?;
                self.shards.write().insert(id, Arc::new(shard));
                return Err(e);
            }
        };
        self.clock.observe(shard.max_version());
        self.shards.write().insert(id, Arc::new(shard));
        Ok(())
    }
}
