//! Shard transfers by snapshot: the source side (a shard snapshot made for one transfer and
//! streamed to the target, see `api::peer::shards`) and the target side (installing it in
//! place of its replica), and how a transfer picks its method.
//!
//! A snapshot transfer runs while the target replica is still Dead (nothing writes to it), so
//! its replica can be swapped for the snapshot's; the writes since the snapshot are then caught
//! up under the transfer's fence like any transfer (`Collection::catch_up_shard`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::snapshots::{check_compatible, write_snapshot};
use super::Node;
use crate::cluster::{PeerId, ShardId};
use crate::collection::remote::RemoteShards;
use crate::collection::{blocking, Collection};
use crate::error::{Error, Result};
use crate::model::cluster::TransferMethod;
use crate::snapshot::{archive, Manifest, SnapshotKind};

/// Source points from which a transfer that names no method ships a snapshot rather than the
/// records: the smallest size measured where the snapshot was the quicker (see
/// docs/design-notes.md "Snapshot transfers"); below it the records are not measured slower.
pub const SNAPSHOT_MIN_POINTS: usize = 3_000;

/// The method of one transfer: the one asked for (`move_shard`/`replicate_shard`), else
/// `storage.shard_transfer_method`, else a snapshot of a large source and the records of a
/// small one. A delta (`wal_delta`) is never picked unasked: a chaos run saw stale majority
/// reads after a replica caught up so, not yet explained. With `local_points` 0 a delta is a
/// full copy, so it streams the records.
pub fn choose_method(
    asked: Option<TransferMethod>,
    configured: Option<TransferMethod>,
    local_points: usize,
    source_points: Option<usize>,
) -> TransferMethod {
    match asked.or(configured) {
        Some(TransferMethod::WalDelta) if local_points == 0 => TransferMethod::StreamRecords,
        Some(method) => method,
        None if source_points.is_some_and(|n| n >= SNAPSHOT_MIN_POINTS) => TransferMethod::Snapshot,
        None => TransferMethod::StreamRecords,
    }
}

/// A snapshot made for one transfer, removed when dropped.
pub struct TransferSnapshot {
    dir: PathBuf,
    path: PathBuf,
}

impl TransferSnapshot {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TransferSnapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Node {
    /// Source side: a snapshot of this peer's replica of `shard`, which must be Active.
    pub async fn transfer_snapshot(&self, name: &str, shard: ShardId) -> Result<TransferSnapshot> {
        let collection = self.collection(name)?;
        if collection.local_shard(shard).is_none() {
            return Err(Error::not_found(format!(
                "shard {shard} of collection `{name}` is not on this peer"
            )));
        }
        collection.check_transfer_source(shard)?;
        let temp = self.settings.storage.temp_dir();
        let dir = temp.join(format!("transfer-{}.partial", uuid::Uuid::new_v4()));
        let file = format!("{name}-shard-{shard}.snapshot");
        let snapshot = TransferSnapshot {
            path: dir.join(&file),
            dir: dir.clone(),
        };
        blocking(move || {
            write_snapshot(
                &temp,
                &dir,
                &file,
                Manifest::new(SnapshotKind::Shard),
                &[collection],
                Some(shard),
            )
        })
        .await?;
        Ok(snapshot)
    }

    /// Target side: replaces this peer's (Dead) replica of `shard` with a snapshot of the
    /// replica on `source`. Returns the snapshot's size in bytes.
    pub async fn install_transfer_snapshot(
        &self,
        collection: &Arc<Collection>,
        shard: ShardId,
        remote: &RemoteShards,
        (source, uri): (PeerId, &str),
    ) -> Result<u64> {
        let temp = self.settings.storage.temp_dir();
        tokio::fs::create_dir_all(&temp).await?;
        let archive_path = temp.join(format!("transfer-{}.snapshot.partial", uuid::Uuid::new_v4()));
        let unpacked = self.unpack_dir();
        let result = async {
            let bytes = remote
                .fetch_snapshot(source, uri, &collection.name, shard, &archive_path)
                .await?;
            let (archive, dest) = (archive_path.clone(), unpacked.clone());
            let manifest = blocking(move || archive::unpack(&archive, &dest)).await?;
            let entry = manifest.collection_for(&collection.name)?;
            check_compatible(collection, entry)?;
            let from = match (manifest.kind, entry.shards.as_slice()) {
                (SnapshotKind::Shard, [one]) if one.id == shard => one.id,
                _ => {
                    return Err(Error::internal(format!(
                        "peer {source} sent a snapshot that is not of shard {shard}"
                    )))
                }
            };
            let copy = unpacked
                .join(Collection::archive_dir(&entry.name))
                .join(from.to_string());
            let _lifecycle = self.lifecycle.lock().await;
            let c = collection.clone();
            blocking(move || c.replace_local_shard(shard, &copy)).await?;
            Ok(bytes)
        }
        .await;
        let _ = tokio::fs::remove_file(&archive_path).await;
        let _ = tokio::fs::remove_dir_all(&unpacked).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransferMethod::*;

    #[test]
    fn the_asked_method_wins_then_the_configured_one() {
        assert_eq!(choose_method(Some(Snapshot), Some(StreamRecords), 0, Some(5)), Snapshot);
        assert_eq!(
            choose_method(None, Some(StreamRecords), 10, Some(1_000_000)),
            StreamRecords
        );
        assert_eq!(
            choose_method(Some(StreamRecords), None, 10, Some(1_000_000)),
            StreamRecords
        );
    }

    #[test]
    fn a_delta_needs_something_to_start_from() {
        assert_eq!(choose_method(Some(WalDelta), None, 0, Some(10)), StreamRecords);
        assert_eq!(choose_method(Some(WalDelta), None, 3, Some(10)), WalDelta);
    }

    #[test]
    fn unasked_a_large_source_is_snapshotted_and_a_small_one_streamed() {
        // Never a delta unasked; a snapshot of a large source, the records of a small one.
        assert_eq!(choose_method(None, None, 1, Some(1_000_000)), Snapshot);
        assert_eq!(choose_method(None, None, 0, Some(SNAPSHOT_MIN_POINTS)), Snapshot);
        assert_eq!(
            choose_method(None, None, 0, Some(SNAPSHOT_MIN_POINTS - 1)),
            StreamRecords
        );
        assert_eq!(choose_method(None, None, 0, None), StreamRecords);
    }
}
