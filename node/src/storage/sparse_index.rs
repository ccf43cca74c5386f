//! An inverted index over one sparse vector name: for each term (dimension), the slots holding
//! it and their weights. A query walks only the posting lists of its own terms, so its cost is
//! the number of (term, point) pairs it shares with the shard, not the shard's size.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::model::vector::SparseVector;

/// How many points have a sparse vector, and how many of them hold each queried term.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseStats {
    pub points: usize,
    /// Document frequency of each queried term, in the query's order.
    pub df: Vec<usize>,
}

impl SparseStats {
    /// Adds another shard's statistics (for the same terms).
    pub fn merge(&mut self, other: SparseStats) {
        self.points += other.points;
        if self.df.len() < other.df.len() {
            self.df.resize(other.df.len(), 0);
        }
        self.df.iter_mut().zip(other.df).for_each(|(a, b)| *a += b);
    }

    /// Qdrant's IDF of term `i`: ln((N - df + 0.5) / (df + 0.5) + 1).
    pub fn idf(&self, i: usize) -> f32 {
        let n = self.points as f32;
        let df = self.df.get(i).copied().unwrap_or(0) as f32;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }
}

#[derive(Default)]
pub(crate) struct SparseIndex {
    /// Term -> (slot, weight), sorted by slot.
    postings: HashMap<u32, Vec<(u32, f32)>>,
    /// Score buffers of finished queries, reused: a fresh one per query is a large allocation
    /// (mapped and unmapped each time) for a shard of 100k points.
    scratch: Mutex<Vec<Scratch>>,
}

/// Per-slot accumulators of one query: (stamp, score), side by side so a posting touches one
/// cache line. A slot's score is valid when its stamp is the query's.
#[derive(Default)]
struct Scratch {
    acc: Vec<(u32, f32)>,
    query: u32,
}

impl Scratch {
    /// Readies the buffer for a new query over `slots` slots.
    fn start(&mut self, slots: usize) {
        if self.acc.len() < slots {
            self.acc.resize(slots, (0, 0.0));
        }
        self.query = self.query.wrapping_add(1);
        if self.query == 0 {
            // Stamps wrapped around: clear them once every 4 billion queries.
            self.acc.fill((0, 0.0));
            self.query = 1;
        }
    }
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

    /// The best `limit` slots by dot product with `q` (sorted, no repeated term) among those
    /// sharing a term with it and accepted by `accept`, best first (ties: lower slot first).
    /// `slots` bounds the slot numbers (the shard's slot count).
    ///
    /// `accept` (filter, exclusions) reads the point itself, a cache miss per call, so it is asked
    /// only of slots that would enter the current top `limit`: a few hundred, not every hit.
    pub fn search(
        &self,
        q: &SparseVector,
        slots: usize,
        limit: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        if limit == 0 {
            return Vec::new();
        }
        let mut scratch = self.scratch.lock().pop().unwrap_or_default();
        scratch.start(slots);
        let Scratch { acc, query } = &mut scratch;
        let acc = &mut acc[..slots];
        let mut hit = Vec::new();
        for (term, qw) in q.indices.iter().zip(&q.values) {
            for (slot, w) in self.postings.get(term).map(Vec::as_slice).unwrap_or_default() {
                let Some(a) = acc.get_mut(*slot as usize) else {
                    continue;
                };
                if a.0 != *query {
                    *a = (*query, 0.0);
                    hit.push(*slot);
                }
                a.1 += qw * w;
            }
        }
        // Min-heap of the best so far: its top is the entry the next better hit evicts.
        let mut best: BinaryHeap<Reverse<Ranked>> = BinaryHeap::with_capacity(limit.min(hit.len()) + 1);
        for slot in hit {
            let candidate = Ranked(acc[slot as usize].1, slot);
            let enters = best.len() < limit || best.peek().is_some_and(|Reverse(worst)| candidate > *worst);
            if enters && accept(slot) {
                best.push(Reverse(candidate));
                if best.len() > limit {
                    best.pop();
                }
            }
        }
        self.scratch.lock().push(scratch);
        let mut out: Vec<Ranked> = best.into_iter().map(|Reverse(r)| r).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out.into_iter().map(|Ranked(score, slot)| (slot, score)).collect()
    }
}

/// A hit ordered by score, then by lower slot (greater = better).
#[derive(Clone, Copy, PartialEq)]
struct Ranked(f32, u32);

impl Eq for Ranked {}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then_with(|| other.1.cmp(&self.1))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
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
    fn keeps_the_best_accepted_in_order_asking_accept_only_of_contenders() {
        let mut idx = SparseIndex::default();
        for slot in 0..100u32 {
            idx.insert(slot, &v(&[1], &[100.0 - slot as f32]));
        }
        let asked = std::cell::Cell::new(0);
        let accept = |s: u32| {
            asked.set(asked.get() + 1);
            s % 2 == 0
        };
        let hits = idx.search(&v(&[1], &[1.0]), 100, 3, &accept);
        assert_eq!(hits, vec![(0, 100.0), (2, 98.0), (4, 96.0)]);
        assert!(asked.get() < 100, "accept asked {} times", asked.get());
        // ties: lower slot first
        let mut idx = SparseIndex::default();
        for slot in [5, 2, 9] {
            idx.insert(slot, &v(&[1], &[1.0]));
        }
        assert_eq!(idx.search(&v(&[1], &[1.0]), 10, 2, &|_| true), vec![(2, 1.0), (5, 1.0)]);
    }

    #[test]
    fn scores_only_points_sharing_a_term() {
        let mut idx = SparseIndex::default();
        idx.insert(0, &v(&[1, 2], &[1.0, 2.0]));
        idx.insert(1, &v(&[2, 3], &[3.0, 1.0]));
        idx.insert(2, &v(&[9], &[5.0]));
        let hits = idx.search(&v(&[2, 3], &[1.0, 10.0]), 3, 10, &|_| true);
        assert_eq!(sorted(hits), vec![(0, 2.0), (1, 13.0)]);
        let hits = idx.search(&v(&[2], &[1.0]), 3, 10, &|s| s != 1);
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
        let hits = sorted(idx.search(&v(&[7], &[1.0]), 5, 10, &|_| true));
        assert_eq!(hits, vec![(0, 1.0), (1, 1.0), (2, 4.0), (3, 1.0), (4, 1.0)]);
        idx.remove(2, &v(&[7, 8], &[4.0, 1.0]));
        assert!(idx.search(&v(&[8], &[1.0]), 5, 10, &|_| true).is_empty());
        assert!(!idx.postings.contains_key(&8));
    }
}
