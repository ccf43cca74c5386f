//! Point versions across replicas. Every write carries the version its coordinator stamped
//! (`storage::clock`); a replica changes a point only with a write newer than the version it
//! holds for it, so replicas end equal whatever order concurrent writes arrive in, and a write
//! applied twice (a retry, a write queued during a transfer that the copied point already
//! reflects) changes nothing the second time.
//!
//! A deleted point leaves a tombstone with the delete's version, so an older write that arrives
//! late does not bring it back. Tombstones are persisted and forgotten [`TOMBSTONE_TTL`] after
//! this replica made them (or loaded them, after a restart), far longer than any write stays in
//! flight. Their age is measured on this process's monotonic clock, not from the wall-clock part
//! of the version: a wall clock that jumps forward (or a peer stamping ahead) must not make a
//! fresh tombstone look old and let a late older write bring the point back.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use super::{Change, LocalShard, ShardState};
use crate::error::Result;
use crate::model::operations::{ReplicaPoints, VersionedPoint};
use crate::model::payload::PayloadSelector;
use crate::model::vector::WithVector;
use crate::model::PointId;
use crate::storage::record::StoredPoint;

pub(crate) const CF_TOMBSTONES: &str = "tombstones";

/// How long a delete's version is remembered.
pub(crate) const TOMBSTONE_TTL: Duration = Duration::from_secs(10 * 60);

/// Whether a write stamped `version` may change a point whose newest known version (stored
/// point or tombstone) is `held`.
pub(crate) fn is_newer(version: u64, held: Option<u64>) -> bool {
    held.is_none_or(|h| version > h)
}

/// Versions of recently deleted points, with when this replica made (or loaded) each; in id
/// order, so a transfer page finds the tombstones of its id range without a scan.
#[derive(Default)]
pub(crate) struct Tombstones {
    by_id: BTreeMap<PointId, (u64, Instant)>,
}

impl Tombstones {
    pub fn version(&self, id: &PointId) -> Option<u64> {
        self.by_id.get(id).map(|(v, _)| *v)
    }

    /// Records a delete at `version`, made (or loaded) at `now`.
    pub fn insert(&mut self, id: PointId, version: u64, now: Instant) {
        self.by_id.insert(id, (version, now));
    }

    pub fn remove(&mut self, id: &PointId) -> bool {
        self.by_id.remove(id).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn max_version(&self) -> u64 {
        self.by_id.values().map(|(v, _)| *v).max().unwrap_or(0)
    }

    /// Every tombstone's id and version, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (PointId, u64)> + '_ {
        self.by_id.iter().map(|(id, (v, _))| (*id, *v))
    }

    /// The tombstones with ids from `from` (all if None) up to, not including, `to` (to the end
    /// if None), in id order.
    pub fn in_range(&self, from: Option<PointId>, to: Option<PointId>) -> Vec<(PointId, u64)> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let lower = from.map_or(Unbounded, Included);
        let upper = to.map_or(Unbounded, Excluded);
        if let (Included(a), Excluded(b)) = (&lower, &upper) {
            if a >= b {
                return Vec::new();
            }
        }
        self.by_id.range((lower, upper)).map(|(id, (v, _))| (*id, *v)).collect()
    }

    /// Tombstones made more than the TTL before `now`.
    pub fn expired(&self, now: Instant) -> Vec<PointId> {
        self.by_id
            .iter()
            .filter(|(_, (_, since))| now.saturating_duration_since(*since) > TOMBSTONE_TTL)
            .map(|(id, _)| *id)
            .collect()
    }
}

impl ShardState {
    /// The newest version this replica knows for `id`: its stored point's, else its tombstone's.
    pub(crate) fn held_version(&self, id: &PointId) -> Option<u64> {
        match self.ids.get(id).and_then(|slot| self.live(*slot)) {
            Some(p) => Some(p.version),
            None => self.tombstones.version(id),
        }
    }
}

impl LocalShard {
    /// The newest version this replica stores (points and tombstones): the clock of a peer
    /// starts past it after a restart.
    pub fn max_version(&self) -> u64 {
        self.state.read().max_version
    }

    /// A page of a transfer: up to `limit` points with id >= `offset`, in id order, with their
    /// versions, and the tombstones of the ids the page covers (from `offset` to the last
    /// point when the page is full, the next page starting there; to the end otherwise).
    pub fn export(&self, offset: Option<PointId>, limit: usize) -> (Vec<VersionedPoint>, Vec<(PointId, u64)>) {
        let state = self.state.read();
        let range = match offset {
            Some(o) => state.ids.range(o..),
            None => state.ids.range(..),
        };
        let ids: Vec<(PointId, u32)> = range.take(limit).map(|(id, slot)| (*id, *slot)).collect();
        let end = (ids.len() == limit).then(|| ids.last().map(|(id, _)| *id)).flatten();
        let points = ids.iter().filter_map(|(_, slot)| state.versioned(*slot)).collect();
        (points, state.tombstones.in_range(offset, end))
    }

    /// Takes what another replica holds where it is newer than what this one holds: its points
    /// (with their versions) and its deletes (as tombstones). A transfer page is merged so (a
    /// point written meanwhile, queued here, keeps its newer version), as is a repair. With `ties`, a point held at the
    /// same version is replaced too (anti-entropy's reference replica settles such a tie).
    pub fn merge(&self, other: &ReplicaPoints, ties: bool, sync: bool) -> Result<u64> {
        let _guard = self.write_lock.lock();
        let (seq, changes) = {
            let state = self.state.read();
            let takes = |id: &PointId, version: u64| {
                let held = state.held_version(id);
                is_newer(version, held) || (ties && held == Some(version))
            };
            let mut changes: Vec<Change> = other
                .points
                .iter()
                .filter(|p| takes(&p.point.id, p.version))
                .map(|p| Change::Put {
                    id: p.point.id,
                    point: StoredPoint {
                        version: p.version,
                        slot: 0,
                        vectors: p.point.vector.clone().into_named(),
                        payload: p.point.payload.clone().unwrap_or_default(),
                    },
                    vectors_changed: true,
                })
                .collect();
            changes.extend(
                other
                    .tombstones
                    .iter()
                    .filter(|(id, version)| is_newer(*version, state.held_version(id)))
                    .map(|(id, version)| Change::Delete {
                        id: *id,
                        version: *version,
                    }),
            );
            state.keep_own_spaces(&mut changes);
            (state.seq + 1, changes)
        };
        if changes.is_empty() {
            return Ok(seq - 1);
        }
        self.commit(seq, changes, sync)?;
        self.wake_indexer();
        Ok(seq)
    }
}

impl LocalShard {
    /// Makes digest buckets of this replica hold what a transfer source holds in them: takes
    /// its newer points and deletes ([`LocalShard::merge`]), and drops the points the source
    /// neither holds nor remembers deleting (its tombstone expired), each leaving a tombstone at
    /// the version it had here. Returns how many points it dropped so.
    pub fn take_buckets(&self, source: &ReplicaPoints, wanted: &[u32], buckets: u32) -> Result<usize> {
        let known: HashSet<PointId> = source
            .points
            .iter()
            .map(|p| p.point.id)
            .chain(source.tombstones.iter().map(|(id, _)| *id))
            .collect();
        let mine = self.bucket_contents(wanted, buckets);
        let gone: Vec<(PointId, u64)> = mine
            .points
            .iter()
            .filter(|p| !known.contains(&p.point.id))
            .map(|p| (p.point.id, p.version))
            .collect();
        self.merge(source, false, false)?;
        if gone.is_empty() {
            return Ok(0);
        }
        let _guard = self.write_lock.lock();
        let (seq, changes) = {
            let state = self.state.read();
            // Unless a newer copy came with the merge.
            let live_version = |id: &PointId| state.ids.get(id).and_then(|slot| state.live(*slot)).map(|p| p.version);
            let changes: Vec<Change> = gone
                .iter()
                .filter(|(id, version)| live_version(id) == Some(*version))
                .map(|(id, version)| Change::Delete {
                    id: *id,
                    version: *version,
                })
                .collect();
            (state.seq + 1, changes)
        };
        let dropped = changes.len();
        if dropped > 0 {
            self.commit(seq, changes, false)?;
            self.wake_indexer();
        }
        Ok(dropped)
    }
}

impl ShardState {
    /// The live point in `slot` with all its vectors, payload and version.
    pub(crate) fn versioned(&self, slot: u32) -> Option<VersionedPoint> {
        let version = self.live(slot)?.version;
        let record = self.record(slot, &PayloadSelector::All, &WithVector::All(true))?;
        Some(VersionedPoint {
            point: record.into(),
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::clock;

    #[test]
    fn newer_only_strictly() {
        assert!(is_newer(5, None));
        assert!(is_newer(5, Some(4)));
        assert!(!is_newer(5, Some(5)));
        assert!(!is_newer(5, Some(6)));
    }

    #[test]
    fn tombstones_expire_after_the_ttl() {
        let mut t = Tombstones::default();
        let made = Instant::now();
        let stamped = clock::version_at(1_000_000);
        t.insert(PointId::Num(1), stamped, made);
        assert!(t.expired(made + TOMBSTONE_TTL).is_empty());
        assert_eq!(
            t.expired(made + TOMBSTONE_TTL + Duration::from_millis(1)),
            vec![PointId::Num(1)]
        );
        assert_eq!(t.max_version(), stamped);
    }

    #[test]
    fn a_version_stamped_long_ago_is_no_reason_to_forget_a_fresh_tombstone() {
        // A delete whose version carries a wall time an hour behind this replica's clock (the
        // stamping peer's clock was behind, or ours jumped forward): kept for the whole TTL.
        let mut t = Tombstones::default();
        let made = Instant::now();
        let hour_ago = clock::version_at(clock::now_millis() - 3_600_000);
        t.insert(PointId::Num(1), hour_ago, made);
        assert!(t.expired(made + Duration::from_secs(60)).is_empty());
    }
}
