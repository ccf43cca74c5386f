//! A cheap summary of a replica's contents, for anti-entropy: the points are spread over
//! `buckets` by a hash of their id, and each bucket sums a fingerprint of every point in it
//! (id, version, payload, vectors). Two replicas holding the same points have the same digest whatever
//! order they applied writes in; a differing bucket names the few points to compare.

use serde_json::Value;

use super::{LocalShard, ShardState, Slot};
use crate::model::operations::ReplicaPoints;
use crate::model::vector::{NamedVectors, Vector};
use crate::model::{Payload, PointId};

/// FNV-1a, 64 bit: fixed by its definition, so every peer and version hashes alike.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn hash_id(h: &mut Fnv, id: &PointId) {
    match id {
        PointId::Num(n) => {
            h.bytes(b"n");
            h.bytes(&n.to_le_bytes());
        }
        PointId::Uuid(u) => {
            h.bytes(b"u");
            h.bytes(u.as_bytes());
        }
    }
}

/// The bucket of `id` among `buckets`.
pub fn bucket_of(id: &PointId, buckets: u32) -> u32 {
    let mut h = Fnv::new();
    hash_id(&mut h, id);
    (h.0 % u64::from(buckets.max(1))) as u32
}

/// JSON hashed with object keys in sorted order (payload key order is not content).
fn hash_json(h: &mut Fnv, v: &Value) {
    match v {
        Value::Null => h.bytes(b"0"),
        Value::Bool(b) => h.bytes(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.bytes(b"#");
            h.bytes(n.to_string().as_bytes());
        }
        Value::String(s) => {
            h.bytes(b"s");
            h.bytes(&(s.len() as u64).to_le_bytes());
            h.bytes(s.as_bytes());
        }
        Value::Array(items) => {
            h.bytes(b"[");
            items.iter().for_each(|i| hash_json(h, i));
            h.bytes(b"]");
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            h.bytes(b"{");
            for k in keys {
                hash_json(h, &Value::String(k.clone()));
                hash_json(h, &map[k]);
            }
            h.bytes(b"}");
        }
    }
}

/// The fingerprint of one point as this replica holds it (id, version, payload with sorted keys,
/// vectors by name as they are read back), its version included: replicas holding the same
/// point at different versions would judge later writes differently. Computed when the point is
/// written (or loaded) and kept with it, so a digest is a sum, not a scan of the data.
pub(crate) fn point_fingerprint(id: &PointId, version: u64, payload: &Payload, vectors: &NamedVectors) -> u64 {
    let mut h = Fnv::new();
    hash_id(&mut h, id);
    h.bytes(&version.to_le_bytes());
    h.bytes(b"p");
    hash_json(&mut h, &Value::Object(payload.clone()));
    h.bytes(b"v");
    for (name, vector) in vectors {
        hash_json(&mut h, &Value::String(name.clone()));
        match vector {
            Vector::Dense(v) => {
                h.bytes(b"d");
                hash_floats(&mut h, v);
            }
            Vector::MultiDense(rows) => {
                h.bytes(b"m");
                h.bytes(&(rows.len() as u64).to_le_bytes());
                rows.iter().for_each(|r| hash_floats(&mut h, r));
            }
            Vector::Sparse(sv) => {
                h.bytes(b"s");
                h.bytes(&(sv.indices.len() as u64).to_le_bytes());
                sv.indices.iter().for_each(|i| h.bytes(&i.to_le_bytes()));
                hash_floats(&mut h, &sv.values);
            }
        }
    }
    h.0
}

fn hash_floats(h: &mut Fnv, values: &[f32]) {
    h.bytes(&(values.len() as u64).to_le_bytes());
    values.iter().for_each(|x| h.bytes(&x.to_bits().to_le_bytes()));
}

impl ShardState {
    /// Recomputes the fingerprint of the live point in `slot` from what it holds now.
    pub(crate) fn refresh_fingerprint(&mut self, slot: u32) {
        let vectors = self.named_vectors(slot);
        if let Some(Slot::Live(p)) = self.slots.get_mut(slot as usize) {
            p.fingerprint = point_fingerprint(&p.id, p.version, &p.payload, &vectors);
        }
    }
}

impl LocalShard {
    /// The digest of this replica over `buckets` buckets.
    pub fn digest(&self, buckets: u32) -> Vec<u64> {
        let mut sums = vec![0u64; buckets.max(1) as usize];
        let state = self.state.read();
        for (id, slot) in &state.ids {
            if let Some(p) = state.live(*slot) {
                let b = bucket_of(id, buckets) as usize;
                sums[b] = sums[b].wrapping_add(p.fingerprint);
            }
        }
        sums
    }

    /// Every point (with payload, vectors and version) and every tombstone in the given buckets.
    pub fn bucket_contents(&self, wanted: &[u32], buckets: u32) -> ReplicaPoints {
        let state = self.state.read();
        let points = state
            .ids
            .iter()
            .filter(|(id, _)| wanted.contains(&bucket_of(id, buckets)))
            .filter_map(|(_, slot)| state.versioned(*slot))
            .collect();
        let tombstones = state
            .tombstones
            .iter()
            .filter(|(id, _)| wanted.contains(&bucket_of(id, buckets)))
            .collect();
        ReplicaPoints { points, tombstones }
    }
}
