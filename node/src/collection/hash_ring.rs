//! Consistent hashing of point ids onto shards, as Qdrant does for auto sharding: each shard
//! owns 100 virtual nodes on a SipHash-2-4 ring; a point belongs to the first virtual node at
//! or after its own hash, wrapping around.

use std::hash::Hasher;

use siphasher::sip::SipHasher24;

use crate::model::PointId;

const VIRTUAL_NODES_PER_SHARD: u32 = 100;

#[derive(Debug, Clone)]
pub struct HashRing {
    /// (hash, shard id), sorted by hash.
    ring: Vec<(u64, u32)>,
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = SipHasher24::new();
    h.write(bytes);
    h.finish()
}

fn point_key(id: &PointId) -> Vec<u8> {
    match id {
        PointId::Num(n) => [0u64.to_le_bytes(), n.to_le_bytes()].concat(),
        PointId::Uuid(u) => [&1u64.to_le_bytes()[..], &16u64.to_le_bytes()[..], u.as_bytes()].concat(),
    }
}

impl HashRing {
    pub fn new(shards: impl IntoIterator<Item = u32>) -> HashRing {
        let mut ring: Vec<(u64, u32)> = shards
            .into_iter()
            .flat_map(|shard| {
                (0..VIRTUAL_NODES_PER_SHARD)
                    .map(move |k| (hash(&[shard.to_le_bytes(), k.to_le_bytes()].concat()), shard))
            })
            .collect();
        ring.sort_unstable();
        HashRing { ring }
    }

    /// The shard a point belongs to; `None` only for a ring without shards.
    pub fn shard_for(&self, id: &PointId) -> Option<u32> {
        if self.ring.is_empty() {
            return None;
        }
        let h = hash(&point_key(id));
        let i = self.ring.partition_point(|(vh, _)| *vh < h);
        Some(self.ring[i % self.ring.len()].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_points_evenly_and_stably() {
        let ring = HashRing::new(0..6);
        let mut counts = [0usize; 6];
        for n in 0..60_000u64 {
            counts[ring.shard_for(&PointId::Num(n)).unwrap() as usize] += 1;
        }
        for c in counts {
            assert!((6_000..14_000).contains(&c), "uneven: {counts:?}");
        }
        let again = HashRing::new([5, 4, 3, 2, 1, 0]);
        for n in 0..1000u64 {
            assert_eq!(ring.shard_for(&PointId::Num(n)), again.shard_for(&PointId::Num(n)));
        }
        let u = PointId::Uuid(uuid::Uuid::from_u128(7));
        assert!(ring.shard_for(&u).is_some());
        assert_eq!(HashRing::new([]).shard_for(&u), None);
    }

    #[test]
    fn adding_a_shard_moves_only_a_fraction() {
        let before = HashRing::new(0..3);
        let after = HashRing::new(0..4);
        let moved = (0..10_000u64)
            .filter(|n| before.shard_for(&PointId::Num(*n)) != after.shard_for(&PointId::Num(*n)))
            .count();
        assert!(moved < 4_000, "moved {moved}");
    }
}
