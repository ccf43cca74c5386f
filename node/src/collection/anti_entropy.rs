//! Anti-entropy: the reference replica of a shard (its Active replica with the highest peer id,
//! the one that orders its medium/strong writes) compares its digest with every other Active
//! replica's and repairs a replica whose buckets differ from its own with a partial transfer of
//! just those buckets. A bucket is repaired only when it differed with the same digests on both
//! sides in two checks in a row, so a write still on its way to one replica is not mistaken
//! for divergence.

use std::collections::{BTreeMap, HashMap};

use super::shard_request::{expect_response, ShardRequest};
use super::{blocking, Collection};
use crate::cluster::{PeerId, ReplicaState, ShardId};
use crate::error::Result;

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
                    .call(peer, uri, &self.name, shard, &ShardRequest::Digest { buckets: BUCKETS })
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
                let (l, wanted) = (local.clone(), steady.clone());
                let points = blocking(move || Ok(l.bucket_points(&wanted, BUCKETS))).await?;
                let sent = points.len() as u64;
                tracing::warn!(collection = %self.name, shard, peer, buckets = steady.len(), points = sent,
                    "replica diverged from the reference replica; repairing the differing buckets");
                let repair = ShardRequest::Repair {
                    wanted: steady,
                    buckets: BUCKETS,
                    points,
                };
                match routing.remote.call(peer, uri, &self.name, shard, &repair).await {
                    Ok(_) => {
                        outcome.repairs += 1;
                        outcome.repaired_points += sent;
                    }
                    Err(e) => tracing::warn!(collection = %self.name, shard, peer, error = %e, "replica repair failed"),
                }
            }
        }
        // Pairs no longer compared (a replica that left, a shard led elsewhere) are forgotten.
        suspects.retain(|k, _| seen.contains(k));
        Ok(outcome)
    }
}
