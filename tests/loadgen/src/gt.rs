//! Exact k-nearest-neighbour ground truth by brute force (squared L2, f32 math).
//!
//! The distance kernel has a fixed summation order (8 lanes, then a fixed pairwise reduction,
//! no FMA), so the result is the same on every x86-64 CPU, with or without AVX2. Ties are
//! broken by the lower id. The scan is blocked over the base set (each block stays in L2
//! while every query of a thread visits it) and split over threads by query.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Squared Euclidean distance with a deterministic summation order.
#[inline(always)]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            let t = x[j] - y[j];
            acc[j] += t * t;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        let t = x - y;
        s += t * t;
    }
    s
}

/// One candidate ordered by (distance, id): the heap's top is the worst kept neighbour.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cand {
    dist: f32,
    id: u32,
}

impl Eq for Cand {}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist.total_cmp(&other.dist).then_with(|| self.id.cmp(&other.id))
    }
}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Top-k lists: `ids[q*k..(q+1)*k]` ascending by (distance, id).
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    pub k: usize,
    pub ids: Vec<u32>,
    pub dists: Vec<f32>,
}

impl GroundTruth {
    pub fn row(&self, q: usize) -> &[u32] {
        &self.ids[q * self.k..(q + 1) * self.k]
    }
}

struct TopK {
    k: usize,
    heap: BinaryHeap<Cand>,
    /// Distance of the worst kept candidate once the heap is full, else +inf.
    worst: f32,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            worst: f32::INFINITY,
        }
    }

    /// Ids arrive in ascending order, so an equal distance never displaces a kept one.
    #[inline(always)]
    fn offer(&mut self, dist: f32, id: u32) {
        if dist < self.worst || self.heap.len() < self.k {
            self.heap.push(Cand { dist, id });
            if self.heap.len() > self.k {
                self.heap.pop();
            }
            if self.heap.len() == self.k {
                self.worst = self.heap.peek().map_or(f32::INFINITY, |c| c.dist);
            }
        }
    }

    fn into_sorted(self) -> Vec<Cand> {
        self.heap.into_sorted_vec()
    }
}

/// Base vectors per cache block (128-d f32: 512 KiB, fits this CPU's 1 MiB L2).
const BLOCK_ROWS: usize = 1024;

#[inline(always)]
fn scan_generic(base: &[f32], queries: &[f32], dim: usize, first_id: usize, tops: &mut [TopK]) {
    for (b, row) in base.chunks_exact(dim).enumerate() {
        let id = (first_id + b) as u32;
        for (q, top) in queries.chunks_exact(dim).zip(tops.iter_mut()) {
            let d = l2sq(q, row);
            top.offer(d, id);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2(base: &[f32], queries: &[f32], dim: usize, first_id: usize, tops: &mut [TopK]) {
    scan_generic(base, queries, dim, first_id, tops)
}

fn scan_block(base: &[f32], queries: &[f32], dim: usize, first_id: usize, tops: &mut [TopK]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above); the function only does safe
            // slice arithmetic, compiled with AVX2 enabled. No FMA: results are identical.
            unsafe { scan_avx2(base, queries, dim, first_id, tops) };
            return;
        }
    }
    scan_generic(base, queries, dim, first_id, tops)
}

/// Exact top-`k` of every query against `base` (both row-major with `dim` columns).
pub fn exact_knn(base: &[f32], queries: &[f32], dim: usize, k: usize, threads: usize) -> GroundTruth {
    let n = base.len() / dim;
    let nq = queries.len() / dim;
    let k_eff = k.min(n);
    let threads = threads.max(1).min(nq.max(1));
    let per = nq.div_ceil(threads).max(1);
    let mut ids = vec![u32::MAX; nq * k];
    let mut dists = vec![f32::INFINITY; nq * k];
    std::thread::scope(|s| {
        let qchunks = queries.chunks(per * dim);
        let idchunks = ids.chunks_mut(per * k);
        let dchunks = dists.chunks_mut(per * k);
        for ((qs, out_ids), out_d) in qchunks.zip(idchunks).zip(dchunks) {
            s.spawn(move || {
                let mut tops: Vec<TopK> = (0..qs.len() / dim).map(|_| TopK::new(k_eff)).collect();
                // Queries in groups that fit L1/L2 alongside one base block.
                for (bi, block) in base.chunks(BLOCK_ROWS * dim).enumerate() {
                    scan_block(block, qs, dim, bi * BLOCK_ROWS, &mut tops);
                }
                for (qi, top) in tops.into_iter().enumerate() {
                    for (j, c) in top.into_sorted().into_iter().enumerate() {
                        out_ids[qi * k + j] = c.id;
                        out_d[qi * k + j] = c.dist;
                    }
                }
            });
        }
    });
    GroundTruth { k, ids, dists }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{LatentMixture, LatentMixtureSpec, SetKind};

    fn naive(base: &[f32], queries: &[f32], dim: usize, k: usize) -> Vec<u32> {
        let mut out = Vec::new();
        for q in queries.chunks_exact(dim) {
            let mut all: Vec<(f32, u32)> = base
                .chunks_exact(dim)
                .enumerate()
                .map(|(i, r)| (l2sq(q, r), i as u32))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            out.extend(all.iter().take(k).map(|p| p.1));
        }
        out
    }

    #[test]
    fn l2sq_matches_f64_reference() {
        let a: Vec<f32> = (0..131).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..131).map(|i| (i as f32 * 0.11).cos()).collect();
        let r: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
        assert!((l2sq(&a, &b) as f64 - r).abs() < 1e-4 * r);
    }

    #[test]
    fn matches_naive_on_tiny_set() {
        let g = LatentMixture::new(LatentMixtureSpec::new(24, 6, 16, 0.1, 3)).expect("valid");
        // 2500 rows: several blocks, and a partial last block.
        let base = g.generate(SetKind::Base, 2500, 2);
        let qs = g.generate(SetKind::Query, 37, 1);
        let gt = exact_knn(&base, &qs, 24, 20, 2);
        assert_eq!(gt.ids, naive(&base, &qs, 24, 20));
        for q in 0..37 {
            let d = &gt.dists[q * 20..(q + 1) * 20];
            assert!(d.windows(2).all(|w| w[0] <= w[1]));
        }
        // Thread count does not change the result.
        assert_eq!(exact_knn(&base, &qs, 24, 20, 1), gt);
        assert_eq!(exact_knn(&base, &qs, 24, 20, 3), gt);
    }

    #[test]
    fn ties_go_to_the_lower_id() {
        // Rows 0..6 hold only two distinct vectors; the query sits at equal distance from both.
        let dim = 4;
        let a = [1.0f32, 0.0, 0.0, 0.0];
        let b = [-1.0f32, 0.0, 0.0, 0.0];
        let mut base = Vec::new();
        for i in 0..6 {
            base.extend_from_slice(if i % 2 == 0 { &a } else { &b });
        }
        let q = [0.0f32; 4];
        let gt = exact_knn(&base, &q, dim, 4, 1);
        assert_eq!(gt.ids, vec![0, 1, 2, 3]);
    }

    #[test]
    fn k_larger_than_n_pads_with_max() {
        let base = [0.0f32, 1.0, 2.0];
        let q = [0.9f32];
        let gt = exact_knn(&base, &q, 1, 5, 1);
        assert_eq!(gt.ids, vec![1, 0, 2, u32::MAX, u32::MAX]);
    }
}
