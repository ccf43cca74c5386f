//! An inverted index over one sparse vector name: for each term (dimension), the slots holding
//! it and their weights. A query walks only the posting lists of its own terms, so its cost is
//! the number of (term, point) pairs it shares with the shard, not the shard's size.

use std::collections::HashMap;

use crate::model::vector::SparseVector;

#[derive(Default)]
pub(crate) struct SparseIndex {
    /// Term -> (slot, weight), sorted by slot.
    postings: HashMap<u32, Vec<(u32, f32)>>,
}

impl SparseIndex {
    pub fn insert(&mut self, slot: u32, v: &SparseVector) {
        for (term, weight) in v.indices.iter().zip(&v.values) {
            let list = self.postings.entry(*term).or_default();
            // New slots are the highest: the common case is an append.
            match list.last() {
                Some((last, _)) if *last >= slot => match list.binary_search_by_key(&slot, |p| p.0) {
                    Ok(i) => list[i].1 = *weight,
                    Err(i) => list.insert(i, (slot, *weight)),
                },
                _ => list.push((slot, *weight)),
            }
        }
    }

    pub fn remove(&mut self, slot: u32, v: &SparseVector) {
        for term in &v.indices {
            if let Some(list) = self.postings.get_mut(term) {
                if let Ok(i) = list.binary_search_by_key(&slot, |p| p.0) {
                    list.remove(i);
                }
                if list.is_empty() {
                    self.postings.remove(term);
                }
            }
        }
    }

    /// Dot product of `q` (sorted, no repeated term) with every slot sharing a term with it
    /// and accepted by `accept`: (slot, score) in no particular order. `slots` bounds the slot
    /// numbers (the shard's slot count).
    pub fn search(&self, q: &SparseVector, slots: usize, accept: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let mut score = vec![0f32; slots];
        let mut touched = vec![false; slots];
        let mut hit = Vec::new();
        for (term, qw) in q.indices.iter().zip(&q.values) {
            for (slot, w) in self.postings.get(term).map(Vec::as_slice).unwrap_or_default() {
                let s = *slot as usize;
                if s >= slots {
                    continue;
                }
                if !touched[s] {
                    touched[s] = true;
                    hit.push(*slot);
                }
                score[s] += qw * w;
            }
        }
        hit.into_iter()
            .filter(|s| accept(*s))
            .map(|s| (s, score[s as usize]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(indices: &[u32], values: &[f32]) -> SparseVector {
        SparseVector {
            indices: indices.to_vec(),
            values: values.to_vec(),
        }
    }

    fn sorted(mut hits: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
        hits.sort_by_key(|h| h.0);
        hits
    }

    #[test]
    fn scores_only_points_sharing_a_term() {
        let mut idx = SparseIndex::default();
        idx.insert(0, &v(&[1, 2], &[1.0, 2.0]));
        idx.insert(1, &v(&[2, 3], &[3.0, 1.0]));
        idx.insert(2, &v(&[9], &[5.0]));
        let hits = idx.search(&v(&[2, 3], &[1.0, 10.0]), 3, &|_| true);
        assert_eq!(sorted(hits), vec![(0, 2.0), (1, 13.0)]);
        let hits = idx.search(&v(&[2], &[1.0]), 3, &|s| s != 1);
        assert_eq!(hits, vec![(0, 2.0)]);
    }

    #[test]
    fn removal_and_reuse_of_a_slot_leave_no_stale_posting() {
        let mut idx = SparseIndex::default();
        for slot in 0..5 {
            idx.insert(slot, &v(&[7], &[1.0]));
        }
        idx.remove(2, &v(&[7], &[1.0]));
        // slot 2 comes back with another vector, out of order
        idx.insert(2, &v(&[7, 8], &[4.0, 1.0]));
        let hits = sorted(idx.search(&v(&[7], &[1.0]), 5, &|_| true));
        assert_eq!(hits, vec![(0, 1.0), (1, 1.0), (2, 4.0), (3, 1.0), (4, 1.0)]);
        idx.remove(2, &v(&[7, 8], &[4.0, 1.0]));
        assert!(idx.search(&v(&[8], &[1.0]), 5, &|_| true).is_empty());
        assert!(!idx.postings.contains_key(&8));
    }
}
