//! Anti-entropy: the reference replica of a shard (its Active replica with the highest peer id,
//! the one that orders its medium/strong writes) compares its digest with every other Active
//! replica's and, where buckets differ, evens them out: each side takes the other's newer
//! points and deletes by version (see [`plan_repair`]). A bucket is repaired only when it differed with the same digests on both
//! sides in two checks in a row, so a write still on its way to one replica is not mistaken
//! for divergence.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::shard_request::{expect_response, ShardRequest};
use super::{blocking, Collection};
use crate::cluster::{PeerId, ReplicaState, ShardId};
use crate::error::Result;
use crate::model::operations::{ReplicaPoints, VersionedPoint};
use crate::model::PointId;
use crate::storage::shard::LocalShard;

/// Buckets of a digest: a differing bucket holds about 1/64 of the shard's points.
pub const BUCKETS: u32 = 64;

/// Buckets seen differing at the last check, per (shard, other replica's peer): bucket ->
/// (this replica's sum, the other's).
pub type Suspects = HashMap<(ShardId, PeerId), BTreeMap<u32, (u64, u64)>>;

/// What one check of a collection found.
#[derive(Debug, Default, Clone, Copy)]
pub struct CheckOutcome {
    /// Replica pairs compared.
    pub compared: u64,
    /// Buckets that differ now (in all pairs).
    pub divergent_buckets: u64,
    /// Replicas repaired.
    pub repairs: u64,
    /// Points sent to repaired replicas.
    pub repaired_points: u64,
}

impl Collection {
    /// Compares the replicas of every shard this peer is the reference of, repairing the ones
    /// whose divergence held since the previous check (`suspects` carries it between checks).
    pub async fn check_replicas(&self, suspects: &mut Suspects) -> Result<CheckOutcome> {
        let mut outcome = CheckOutcome::default();
        let Some(stale) = self.routing.read().clone() else {
            return Ok(outcome);
        };
        // A peer that was cut off may still see its replica Active (and itself the reference)
        // when it was marked Dead long ago: its data must not be pushed anywhere. Catch up first.
        self.catch_up(&stale).await?;
        let Some(routing) = self.routing.read().clone() else {
            return Ok(outcome);
        };
        let mut seen = Vec::new();
        for shard in self.shard_ids() {
            let active: Vec<PeerId> = routing
                .replicas(shard)
                .iter()
                .filter(|r| r.state == ReplicaState::Active)
                .map(|r| r.peer)
                .collect();
            let (Some(local), true) = (self.local_shard(shard), active.iter().max() == Some(&routing.this_peer)) else {
                continue;
            };
            let l = local.clone();
            let mine = blocking(move || Ok(l.digest(BUCKETS))).await?;
            for peer in active.into_iter().filter(|p| *p != routing.this_peer) {
                let uri = routing.uri(peer)?;
                let theirs = match routing
                    .remote
                    .call(
                        peer,
                        uri,
                        &self.name,
                        shard,
                        &ShardRequest::Digest {
                            buckets: BUCKETS,
                            fence: None,
                        },
                    )
                    .await
                    .and_then(|r| expect_response!(r, Digest))
                {
                    Ok(d) if d.len() == mine.len() => d,
                    Ok(_) => continue, // another bucket count: a peer of another version
                    Err(e) => {
                        tracing::debug!(collection = %self.name, shard, peer, error = %e, "digest not available");
                        continue;
                    }
                };
                outcome.compared += 1;
                let differing: BTreeMap<u32, (u64, u64)> = (0..BUCKETS)
                    .filter(|b| mine[*b as usize] != theirs[*b as usize])
                    .map(|b| (b, (mine[b as usize], theirs[b as usize])))
                    .collect();
                outcome.divergent_buckets += differing.len() as u64;
                let before = suspects.remove(&(shard, peer)).unwrap_or_default();
                let steady: Vec<u32> = differing
                    .iter()
                    .filter(|(b, sums)| before.get(b) == Some(sums))
                    .map(|(b, _)| *b)
                    .collect();
                let still: BTreeMap<u32, (u64, u64)> =
                    differing.into_iter().filter(|(b, _)| !steady.contains(b)).collect();
                if !still.is_empty() {
                    suspects.insert((shard, peer), still);
                    seen.push((shard, peer));
                }
                if steady.is_empty() {
                    continue;
                }
                match self.repair_buckets(&routing, shard, peer, &local, steady).await {
                    Ok(moved) => {
                        outcome.repairs += 1;
                        outcome.repaired_points += moved;
                    }
                    Err(e) => tracing::warn!(collection = %self.name, shard, peer, error = %e, "replica repair failed"),
                }
            }
        }
        // Pairs no longer compared (a replica that left, a shard led elsewhere) are forgotten.
        suspects.retain(|k, _| seen.contains(k));
        Ok(outcome)
    }

    /// Evens out the `wanted` buckets between the local (reference) replica and the one on
    /// `peer`: each takes from the other what is newer by version, points and deletes alike, and
    /// a point held at the same version with different contents takes the reference's copy.
    /// Nothing newer is ever replaced, so a reference whose own replica is behind (its peer has
    /// not yet learnt it was marked Dead, say) cannot undo an acknowledged write. Returns how
    /// many points and deletes moved.
    async fn repair_buckets(
        &self,
        routing: &super::remote::Routing,
        shard: ShardId,
        peer: PeerId,
        local: &Arc<LocalShard>,
        wanted: Vec<u32>,
    ) -> Result<u64> {
        let uri = routing.uri(peer)?;
        let request = ShardRequest::BucketPoints {
            wanted: wanted.clone(),
            buckets: BUCKETS,
            fence: None,
        };
        let response = routing.remote.call(peer, uri, &self.name, shard, &request).await?;
        let theirs = expect_response!(response, Bucket)?;
        let (l, w) = (local.clone(), wanted.clone());
        let mine = blocking(move || Ok(l.bucket_contents(&w, BUCKETS))).await?;
        let (to_them, to_me) = plan_repair(&mine, &theirs);
        tracing::warn!(collection = %self.name, shard, peer, buckets = wanted.len(), sent = to_them.len(),
            taken = to_me.len(), "replica diverged from the reference replica; evening out the differing buckets");
        let moved = (to_them.len() + to_me.len()) as u64;
        if !to_me.is_empty() {
            let l = local.clone();
            blocking(move || l.merge(&to_me, false, true)).await?;
        }
        if !to_them.is_empty() {
            let repair = ShardRequest::Repair {
                points: to_them,
                routing_index: routing.index,
            };
            let answer = routing.remote.call(peer, uri, &self.name, shard, &repair).await?;
            if let super::shard_request::ShardResponse::Fenced(epoch) = answer {
                return Err(crate::error::Error::Unavailable(format!(
                    "the replica on peer {peer} was refilled since cluster state {} (now {epoch}); repair skipped",
                    routing.index
                )));
            }
        }
        Ok(moved)
    }
}

/// What each side of a repair must take from the other: (to the other replica, to the
/// reference), the newer version of every id winning, a delete (tombstone) as much as a point;
/// at equal versions with different contents the reference's point.
pub fn plan_repair(reference: &ReplicaPoints, other: &ReplicaPoints) -> (ReplicaPoints, ReplicaPoints) {
    // id -> (version, the point or None for a delete)
    fn index(r: &ReplicaPoints) -> HashMap<PointId, (u64, Option<&VersionedPoint>)> {
        let mut out: HashMap<PointId, (u64, Option<&VersionedPoint>)> =
            r.tombstones.iter().map(|(id, v)| (*id, (*v, None))).collect();
        for p in &r.points {
            out.insert(p.point.id, (p.version, Some(p)));
        }
        out
    }
    fn give(to: &mut ReplicaPoints, id: PointId, version: u64, point: Option<&VersionedPoint>) {
        match point {
            Some(p) => to.points.push(p.clone()),
            None => to.tombstones.push((id, version)),
        }
    }
    let (mine, theirs) = (index(reference), index(other));
    let (mut to_them, mut to_me) = (ReplicaPoints::default(), ReplicaPoints::default());
    for (id, (version, point)) in &mine {
        match theirs.get(id) {
            None => give(&mut to_them, *id, *version, *point),
            Some((v, _)) if version > v => give(&mut to_them, *id, *version, *point),
            Some((v, p)) if v == version && point.is_some() && point.map(|x| &x.point) != p.map(|x| &x.point) => {
                give(&mut to_them, *id, *version, *point)
            }
            _ => {}
        }
    }
    for (id, (version, point)) in &theirs {
        match mine.get(id) {
            None => give(&mut to_me, *id, *version, *point),
            Some((v, _)) if version > v => give(&mut to_me, *id, *version, *point),
            _ => {}
        }
    }
    // Deterministic order (the maps are not).
    for r in [&mut to_them, &mut to_me] {
        r.points.sort_by_key(|p| p.point.id);
        r.tombstones.sort_unstable();
    }
    (to_them, to_me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::operations::PointStruct;
    use crate::model::vector::VectorInput;

    fn p(id: u64, version: u64, tag: &str) -> VersionedPoint {
        VersionedPoint {
            point: PointStruct {
                id: PointId::Num(id),
                vector: serde_json::from_value::<VectorInput>(serde_json::json!([1.0])).unwrap(),
                payload: Some(serde_json::from_value(serde_json::json!({ "t": tag })).unwrap()),
            },
            version,
        }
    }

    #[test]
    fn the_newer_version_wins_on_both_sides_deletes_included() {
        let reference = ReplicaPoints {
            // 1 is newer here, 2 older, 3 deleted later than the other's write, 4 only here.
            points: vec![p(1, 20, "ref"), p(2, 5, "old"), p(4, 9, "only-ref")],
            tombstones: vec![(PointId::Num(3), 30)],
        };
        let other = ReplicaPoints {
            // 5 deleted only there, 6 written only there.
            points: vec![
                p(1, 10, "old"),
                p(2, 25, "new"),
                p(3, 12, "resurrect?"),
                p(6, 7, "only-other"),
            ],
            tombstones: vec![(PointId::Num(5), 40)],
        };
        let (to_them, to_me) = plan_repair(&reference, &other);
        assert_eq!(to_them.points, vec![p(1, 20, "ref"), p(4, 9, "only-ref")]);
        assert_eq!(to_them.tombstones, vec![(PointId::Num(3), 30)]);
        assert_eq!(to_me.points, vec![p(2, 25, "new"), p(6, 7, "only-other")]);
        assert_eq!(to_me.tombstones, vec![(PointId::Num(5), 40)]);
    }

    #[test]
    fn equal_versions_with_different_contents_take_the_reference() {
        let (to_them, to_me) = plan_repair(
            &ReplicaPoints {
                points: vec![p(1, 10, "a"), p(2, 10, "same")],
                tombstones: vec![],
            },
            &ReplicaPoints {
                points: vec![p(1, 10, "b"), p(2, 10, "same")],
                tombstones: vec![],
            },
        );
        assert_eq!(to_them.points, vec![p(1, 10, "a")]);
        assert!(to_me.is_empty());
    }
}
