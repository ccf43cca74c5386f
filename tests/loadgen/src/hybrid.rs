//! `qbench hybrid`: the query a RAG framework sends in hybrid mode, a dense and a sparse
//! prefetch fused with RRF, measured beside each of its two prefetches run alone.
//!
//! The dense part is the dataset's; the sparse part is generated here, deterministic per point:
//! term ids log-uniform over a vocabulary (low ids frequent, as words are), weights in (0, 1].
//! Ground truth is exact: the dataset's dense neighbours, a brute-force sparse top-k over an
//! inverted index, and their RRF fusion (Qdrant's default k = 2), so each run reports recall.

use crate::rng::SplitMix64;
use crate::vecio::Matrix;
use serde::Serialize;
use std::collections::HashMap;

/// Names of the two vectors in the hybrid collection.
pub const DENSE: &str = "dense";
pub const SPARSE: &str = "sparse";
/// Qdrant's default RRF constant.
pub const RRF_K: f64 = 2.0;

/// Shape of the generated sparse vectors.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SparseSpec {
    pub vocab: u32,
    pub doc_terms: usize,
    pub query_terms: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SparseVec {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

/// Streams of the generator, so documents and queries never share random numbers.
const DOCS: u64 = 0x5d0c;
const QUERIES: u64 = 0x5e77;

impl SparseSpec {
    /// The sparse vector of document `i`.
    pub fn doc(&self, i: usize) -> SparseVec {
        self.vector(SplitMix64::derived(self.seed, DOCS, i as u64), self.doc_terms)
    }

    /// The sparse vector of query `i`.
    pub fn query(&self, i: usize) -> SparseVec {
        self.vector(SplitMix64::derived(self.seed, QUERIES, i as u64), self.query_terms)
    }

    fn vector(&self, mut rng: SplitMix64, terms: usize) -> SparseVec {
        let mut weights: HashMap<u32, f32> = HashMap::with_capacity(terms);
        let ln_vocab = (self.vocab.max(2) as f64).ln();
        for _ in 0..terms {
            // exp(u * ln V) - 1 is log-uniform over [0, V): term t is drawn about as often as 1/(t+1).
            let term = ((rng.uniform() * ln_vocab).exp() - 1.0).floor() as u32;
            let w = rng.uniform_range(0.05, 1.0) as f32;
            *weights.entry(term.min(self.vocab - 1)).or_default() += w;
        }
        let mut pairs: Vec<(u32, f32)> = weights.into_iter().collect();
        pairs.sort_unstable_by_key(|p| p.0);
        SparseVec {
            indices: pairs.iter().map(|p| p.0).collect(),
            values: pairs.iter().map(|p| p.1).collect(),
        }
    }
}

/// Exact top-`k` by sparse dot product of every query over the documents (ids = positions).
/// Documents sharing no term with the query are not results (as in Qdrant's sparse search).
pub fn sparse_ground_truth(docs: &[SparseVec], queries: &[SparseVec], k: usize) -> Vec<Vec<u32>> {
    let mut postings: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
    for (id, d) in docs.iter().enumerate() {
        for (t, w) in d.indices.iter().zip(&d.values) {
            postings.entry(*t).or_default().push((id as u32, *w));
        }
    }
    queries
        .iter()
        .map(|q| {
            let mut acc: HashMap<u32, f32> = HashMap::new();
            for (t, qw) in q.indices.iter().zip(&q.values) {
                for (id, w) in postings.get(t).map(Vec::as_slice).unwrap_or_default() {
                    *acc.entry(*id).or_default() += qw * w;
                }
            }
            let mut scored: Vec<(u32, f32)> = acc.into_iter().collect();
            scored.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.into_iter().take(k).map(|p| p.0).collect()
        })
        .collect()
}

/// Reciprocal rank fusion of ranked id lists: `sum 1 / (rank + k)`, ranks from 1; top `limit`.
pub fn rrf(lists: &[&[u32]], limit: usize) -> Vec<u32> {
    let mut score: HashMap<u32, f64> = HashMap::new();
    for list in lists {
        for (pos, id) in list.iter().enumerate() {
            *score.entry(*id).or_default() += 1.0 / (pos as f64 + RRF_K);
        }
    }
    let mut fused: Vec<(u32, f64)> = score.into_iter().collect();
    fused.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    fused.into_iter().take(limit).map(|p| p.0).collect()
}

/// Pads ragged id lists into a matrix for `recall_at_k` (u32::MAX never matches a point id).
pub fn to_matrix(rows: &[Vec<u32>], cols: usize) -> Matrix<u32> {
    let mut data = Vec::with_capacity(rows.len() * cols);
    for r in rows {
        data.extend(r.iter().copied().take(cols));
        data.extend(std::iter::repeat_n(u32::MAX, cols.saturating_sub(r.len())));
    }
    Matrix::new(data, cols)
}

/// The three query shapes measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Dense,
    Sparse,
    Hybrid,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Dense => "dense",
            Shape::Sparse => "sparse",
            Shape::Hybrid => "hybrid",
        }
    }
}

/// `POST points/query` bodies. Dense and sparse alone are exactly the hybrid query's prefetches
/// (same `limit`, same `params`): the work the hybrid query does before fusing.
pub fn query_body(
    shape: Shape,
    dense: &[f32],
    sparse: &SparseVec,
    prefetch_limit: usize,
    limit: usize,
    hnsw_ef: Option<usize>,
) -> serde_json::Value {
    let params = hnsw_ef.map(|ef| serde_json::json!({ "hnsw_ef": ef }));
    let dense_q = serde_json::json!({
        "query": dense, "using": DENSE, "limit": prefetch_limit, "params": params,
    });
    let sparse_q = serde_json::json!({ "query": sparse, "using": SPARSE, "limit": prefetch_limit });
    let mut body = match shape {
        Shape::Dense => dense_q,
        Shape::Sparse => sparse_q,
        Shape::Hybrid => serde_json::json!({
            "prefetch": [dense_q, sparse_q], "query": { "fusion": "rrf" }, "limit": limit,
        }),
    };
    if body.get("params").is_some_and(|p| p.is_null()) {
        body.as_object_mut().map(|o| o.remove("params"));
    }
    body["with_payload"] = false.into();
    body
}

/// `PUT /collections/{c}` body: one named dense vector and one sparse vector.
pub fn collection_body(dim: usize, distance: &str, m: usize, ef_construct: usize) -> serde_json::Value {
    serde_json::json!({
        "vectors": { DENSE: { "size": dim, "distance": distance } },
        "sparse_vectors": { SPARSE: {} },
        "hnsw_config": { "m": m, "ef_construct": ef_construct },
    })
}

/// `PUT points` body for points `first..first + rows`.
pub fn upsert_body(first: usize, dense: &[f32], dim: usize, spec: &SparseSpec) -> serde_json::Value {
    let points: Vec<_> = dense
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| {
            let id = first + i;
            serde_json::json!({ "id": id, "vector": { DENSE: v, SPARSE: spec.doc(id) } })
        })
        .collect();
    serde_json::json!({ "points": points })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SparseSpec {
        SparseSpec {
            vocab: 1000,
            doc_terms: 20,
            query_terms: 5,
            seed: 7,
        }
    }

    #[test]
    fn sparse_vectors_are_deterministic_sorted_and_distinct_by_stream() {
        let s = spec();
        assert_eq!(s.doc(3), s.doc(3));
        assert_ne!(s.doc(3), s.query(3));
        let d = s.doc(11);
        assert!(d.indices.windows(2).all(|w| w[0] < w[1]));
        assert!(d.indices.iter().all(|&t| t < 1000));
        assert!(d.values.iter().all(|&w| w > 0.0));
    }

    #[test]
    fn sparse_ground_truth_is_the_exact_dot_product_order() {
        let v = |i: &[u32], w: &[f32]| SparseVec {
            indices: i.to_vec(),
            values: w.to_vec(),
        };
        let docs = [
            v(&[1, 2], &[1.0, 1.0]),
            v(&[2], &[3.0]),
            v(&[5], &[9.0]),
            v(&[1], &[0.5]),
        ];
        let gt = sparse_ground_truth(&docs, &[v(&[1, 2], &[1.0, 2.0])], 10);
        // doc1: 6, doc0: 3, doc3: 0.5; doc2 shares no term.
        assert_eq!(gt, vec![vec![1, 0, 3]]);
    }

    #[test]
    fn rrf_adds_reciprocal_ranks_with_k_2() {
        // 7: 1/2 + 1/3; 9: 1/3 + 1/2 (tie, lower id first); 8: 1/4.
        assert_eq!(rrf(&[&[7, 9, 8], &[9, 7]], 10), vec![7, 9, 8]);
        assert_eq!(rrf(&[&[1, 2], &[3]], 2), vec![1, 3]);
    }

    #[test]
    fn hybrid_body_is_the_two_prefetches_fused() {
        let s = spec().query(0);
        let b = query_body(Shape::Hybrid, &[0.5], &s, 50, 10, Some(64));
        assert_eq!(b["query"], serde_json::json!({"fusion": "rrf"}));
        assert_eq!(b["prefetch"][0]["using"], DENSE);
        assert_eq!(b["prefetch"][0]["params"]["hnsw_ef"], 64);
        assert_eq!(b["prefetch"][1]["using"], SPARSE);
        assert_eq!(b["prefetch"][1]["limit"], 50);
        assert_eq!(b["limit"], 10);
        let d = query_body(Shape::Dense, &[0.5], &s, 50, 10, None);
        assert!(d.get("params").is_none());
        assert_eq!(d["limit"], 50);
    }
}
