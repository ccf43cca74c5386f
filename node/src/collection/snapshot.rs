//! The collection's part of snapshots: checkpointing its local shards into a staging directory,
//! and swapping a local shard for a copy recovered from a snapshot.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{open_shard, wait_unused, Collection, ShardId};
use crate::error::{Error, Result};
use crate::snapshot::CollectionEntry;
use crate::storage::shard::LocalShard;

/// How long a shard swap waits for requests still using the old replica.
const SWAP_WAIT: Duration = Duration::from_secs(30);

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
        self.replace_local_shard_within(id, copy, SWAP_WAIT)
    }

    /// [`Collection::replace_local_shard`], waiting at most `wait` for the old replica to be
    /// unused.
    fn replace_local_shard_within(&self, id: ShardId, copy: &Path, wait: Duration) -> Result<()> {
        let old = self
            .shards
            .write()
            .remove(&id)
            .ok_or_else(|| Error::not_found(format!("Shard {id} is not found on this peer")))?;
        // The copy opens at the same path, which RocksDB refuses while the old database is
        // open: a replica still used after the wait goes back, untouched, and the swap is
        // refused (retryable), rather than failing half-way.
        wait_unused(&old, wait);
        if Arc::strong_count(&old) > 1 {
            self.shards.write().insert(id, old);
            return Err(Error::Unavailable(format!(
                "shard {id} of collection {} is still in use; retry the recovery",
                self.name
            )));
        }
        old.close();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::collection::CreateCollection;
    use crate::settings::Settings;
    use crate::storage::index::IndexingOptions;

    fn collection(dir: &Path) -> Collection {
        let create: CreateCollection =
            serde_json::from_value(serde_json::json!({"vectors": {"size": 2, "distance": "Dot"}})).unwrap();
        let config = create.into_config(&Settings::default(), 1).unwrap();
        let indexing = IndexingOptions {
            threads: 1,
            engine: Default::default(),
        };
        Collection::create("c", dir, config, indexing, None).unwrap()
    }

    #[test]
    fn a_shard_still_in_use_is_kept_and_the_swap_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = collection(&dir.path().join("c"));
        let copy = dir.path().join("copy");
        c.local_shard(0).unwrap().checkpoint(&copy).unwrap();
        let in_use = c.local_shard(0).unwrap();
        let err = c
            .replace_local_shard_within(0, &copy, Duration::from_millis(50))
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        assert!(c.local_shard(0).is_some(), "the old replica is back");
        assert!(copy.exists(), "the copy is left for a retry");
        drop(in_use);
        c.replace_local_shard_within(0, &copy, Duration::from_millis(50))
            .unwrap();
        assert!(c.local_shard(0).is_some());
    }
}
