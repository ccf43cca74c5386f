//! Vectors as Qdrant accepts and returns them: a dense list for the default (unnamed) vector,
//! or a map of named vectors where each is dense or sparse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the default vector (`vectors: {size, distance}` without a name).
pub const DEFAULT_VECTOR: &str = "";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distance {
    Cosine,
    Euclid,
    Dot,
    Manhattan,
}

impl Distance {
    /// Whether a higher score is better (similarities) or a lower one (distances).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Distance::Cosine | Distance::Dot)
    }

    /// Cosine vectors are stored normalised, so cosine similarity is a dot product.
    pub fn preprocess(self, v: &mut [f32]) {
        if self == Distance::Cosine {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > f32::EPSILON {
                v.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }

    /// Qdrant's score of a stored vector against a (preprocessed) query.
    pub fn score(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Distance::Cosine | Distance::Dot => dot(a, b),
            Distance::Euclid => l2_squared(a, b).sqrt(),
            Distance::Manhattan => a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum(),
        }
    }

    /// Qdrant's raw similarity, higher is better for every distance (what recommendation,
    /// discovery and context scoring compare): the dot product, minus the squared L2 distance,
    /// minus the L1 distance.
    pub fn similarity(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Distance::Cosine | Distance::Dot => dot(a, b),
            Distance::Euclid => -l2_squared(a, b),
            Distance::Manhattan => -a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>(),
        }
    }

    /// Orders two scores best-first.
    pub fn cmp_best_first(self, a: f32, b: f32) -> std::cmp::Ordering {
        if self.higher_is_better() {
            b.total_cmp(&a)
        } else {
            a.total_cmp(&b)
        }
    }

    /// Whether `score` passes `score_threshold` (Qdrant: similarity >= t, distance <= t).
    pub fn passes_threshold(self, score: f32, threshold: f32) -> bool {
        if self.higher_is_better() {
            score >= threshold
        } else {
            score <= threshold
        }
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four accumulators let the compiler vectorise without reassociating a single sum.
    let mut acc = [0f32; 4];
    let chunks = a.len() / 4 * 4;
    for i in (0..chunks).step_by(4) {
        for j in 0..4 {
            acc[j] += a[i + j] * b[i + j];
        }
    }
    let mut s = acc[0] + acc[1] + acc[2] + acc[3];
    for i in chunks..a.len() {
        s += a[i] * b[i];
    }
    s
}

pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 4];
    let chunks = a.len() / 4 * 4;
    for i in (0..chunks).step_by(4) {
        for j in 0..4 {
            let d = a[i + j] - b[i + j];
            acc[j] += d * d;
        }
    }
    let mut s = acc[0] + acc[1] + acc[2] + acc[3];
    for i in chunks..a.len() {
        let d = a[i] - b[i];
        s += d * d;
    }
    s
}

/// MaxSim of two multivectors (rows of `dim` floats each): the sum over the query's rows of
/// the best similarity to any of the stored rows, in Qdrant's final score convention (so a
/// Euclid score is the root of the summed smallest squared distances).
pub fn max_sim(distance: Distance, query: &[f32], stored: &[f32], dim: usize) -> f32 {
    let mut sum = 0f32;
    for q in query.chunks_exact(dim) {
        let best = stored
            .chunks_exact(dim)
            .map(|d| distance.similarity(q, d))
            .fold(f32::NEG_INFINITY, f32::max);
        sum += best;
    }
    match distance {
        Distance::Cosine | Distance::Dot => sum,
        Distance::Euclid => sum.abs().sqrt(),
        Distance::Manhattan => sum.abs(),
    }
}

/// A sparse vector: parallel lists of dimension indices and values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVector {
    pub fn validate(&self) -> Result<()> {
        if self.indices.len() != self.values.len() {
            return Err(Error::bad_input(format!(
                "sparse vector has {} indices but {} values",
                self.indices.len(),
                self.values.len()
            )));
        }
        let mut seen = std::collections::HashSet::with_capacity(self.indices.len());
        if !self.indices.iter().all(|i| seen.insert(*i)) {
            return Err(Error::bad_input("sparse vector indices must be unique"));
        }
        check_finite(&self.values)
    }

    /// Returns a copy sorted by index, the form used for dot products.
    pub fn sorted(mut self) -> Self {
        let mut pairs: Vec<(u32, f32)> = self.indices.iter().copied().zip(self.values.iter().copied()).collect();
        pairs.sort_by_key(|p| p.0);
        self.indices = pairs.iter().map(|p| p.0).collect();
        self.values = pairs.iter().map(|p| p.1).collect();
        self
    }

    /// Dot product of two index-sorted sparse vectors.
    pub fn dot(&self, other: &SparseVector) -> f32 {
        let (mut i, mut j, mut s) = (0, 0, 0f32);
        while i < self.indices.len() && j < other.indices.len() {
            match self.indices[i].cmp(&other.indices[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    s += self.values[i] * other.values[j];
                    i += 1;
                    j += 1;
                }
            }
        }
        s
    }
}

/// One named vector's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Vector {
    Dense(Vec<f32>),
    /// Several dense vectors of one size (a ColBERT-style multivector), compared by MaxSim.
    /// Tried before `Sparse`: a derived struct also parses from a list, so `[[1, 0], [0, 2]]`
    /// would otherwise read as indices `[1, 0]` and values `[0, 2]`.
    MultiDense(Vec<Vec<f32>>),
    Sparse(SparseVector),
}

/// A point's vectors as given in requests and returned in records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VectorInput {
    /// Shorthand for the default vector.
    Default(Vec<f32>),
    /// Shorthand for a default multivector.
    DefaultMulti(Vec<Vec<f32>>),
    Named(BTreeMap<String, Vector>),
}

/// Vectors of one point, by name (the default vector is named "").
pub type NamedVectors = BTreeMap<String, Vector>;

impl VectorInput {
    pub fn into_named(self) -> NamedVectors {
        match self {
            VectorInput::Default(v) => BTreeMap::from([(DEFAULT_VECTOR.to_string(), Vector::Dense(v))]),
            VectorInput::DefaultMulti(v) => BTreeMap::from([(DEFAULT_VECTOR.to_string(), Vector::MultiDense(v))]),
            VectorInput::Named(map) => map,
        }
    }

    /// The output form: a plain list when the point only has the default vector.
    pub fn from_named(mut named: NamedVectors) -> VectorInput {
        if named.len() == 1 {
            match named.remove(DEFAULT_VECTOR) {
                Some(Vector::Dense(v)) => return VectorInput::Default(v),
                Some(Vector::MultiDense(v)) => return VectorInput::DefaultMulti(v),
                Some(other) => {
                    named.insert(DEFAULT_VECTOR.to_string(), other);
                }
                None => {}
            }
        }
        VectorInput::Named(named)
    }
}

pub fn check_finite(values: &[f32]) -> Result<()> {
    if values.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(Error::bad_input("vector contains NaN or infinite values"))
    }
}

/// Which vectors to return: `with_vector: true | false | ["name", ...]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WithVector {
    All(bool),
    Names(Vec<String>),
}

impl Default for WithVector {
    fn default() -> Self {
        WithVector::All(false)
    }
}

impl WithVector {
    pub fn is_requested(&self) -> bool {
        match self {
            WithVector::All(b) => *b,
            WithVector::Names(n) => !n.is_empty(),
        }
    }

    pub fn select(&self, vectors: &NamedVectors) -> Option<VectorInput> {
        match self {
            WithVector::All(false) => None,
            WithVector::All(true) => Some(VectorInput::from_named(vectors.clone())),
            WithVector::Names(names) => {
                let picked: NamedVectors = vectors
                    .iter()
                    .filter(|(k, _)| names.iter().any(|n| n == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Some(VectorInput::Named(picked))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let v: VectorInput = serde_json::from_str("[1.0, 2.0]").unwrap();
        assert_eq!(v.into_named()[""], Vector::Dense(vec![1.0, 2.0]));
        let v: VectorInput =
            serde_json::from_str(r#"{"a": [1.0], "s": {"indices": [3, 1], "values": [0.5, 0.25]}}"#).unwrap();
        let named = v.into_named();
        assert_eq!(named["a"], Vector::Dense(vec![1.0]));
        assert!(matches!(named["s"], Vector::Sparse(_)));
        assert!(serde_json::from_str::<VectorInput>(r#"["x"]"#).is_err());
    }

    #[test]
    fn multivectors_parse_and_print_like_qdrant() {
        let v: VectorInput = serde_json::from_str("[[1.0, 2.0], [3.0, 4.0]]").unwrap();
        assert_eq!(v, VectorInput::DefaultMulti(vec![vec![1.0, 2.0], vec![3.0, 4.0]]));
        let named = v.into_named();
        assert_eq!(
            VectorInput::from_named(named.clone()),
            VectorInput::DefaultMulti(vec![vec![1.0, 2.0], vec![3.0, 4.0]])
        );
        let v: VectorInput = serde_json::from_str(r#"{"colbert": [[1.0], [2.0]]}"#).unwrap();
        assert!(matches!(v.into_named()["colbert"], Vector::MultiDense(_)));
        // Whole numbers too: two integer lists are a multivector, not a sparse vector.
        let v: Vector = serde_json::from_str("[[1, 0], [0, 2]]").unwrap();
        assert_eq!(v, Vector::MultiDense(vec![vec![1.0, 0.0], vec![0.0, 2.0]]));
        let s: Vector = serde_json::from_str(r#"{"indices": [1], "values": [0.5]}"#).unwrap();
        assert!(matches!(s, Vector::Sparse(_)));
        let q: crate::model::query::VectorOrId = serde_json::from_str("[[1, 0], [0, 1]]").unwrap();
        assert!(matches!(q, crate::model::query::VectorOrId::MultiDense(_)));
    }

    #[test]
    fn max_sim_sums_the_best_match_of_each_query_row() {
        let stored = [1.0, 0.0, 0.0, 1.0];
        let query = [1.0, 0.0, 0.6, 0.8];
        // Row 1 best matches stored row 1 (1.0); row 2 best matches stored row 2 (0.8).
        assert!((max_sim(Distance::Dot, &query, &stored, 2) - 1.8).abs() < 1e-6);
        // Euclid: smallest squared distances 0 and 0.4 (0.36 + 0.04).
        assert!((max_sim(Distance::Euclid, &query, &stored, 2) - 0.4f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn scores_follow_qdrant_conventions() {
        let mut a = vec![3.0, 4.0];
        Distance::Cosine.preprocess(&mut a);
        assert!((a[0] - 0.6).abs() < 1e-6);
        assert_eq!(Distance::Euclid.score(&[0.0, 0.0], &[3.0, 4.0]), 5.0);
        assert_eq!(Distance::Manhattan.score(&[0.0, 0.0], &[3.0, -4.0]), 7.0);
        assert_eq!(Distance::Dot.score(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0; 5]), 15.0);
        assert!(Distance::Euclid.passes_threshold(1.0, 2.0));
        assert!(!Distance::Cosine.passes_threshold(0.1, 0.5));
    }

    #[test]
    fn sparse_dot_and_validation() {
        let a = SparseVector {
            indices: vec![5, 1],
            values: vec![2.0, 1.0],
        }
        .sorted();
        let b = SparseVector {
            indices: vec![1, 5, 9],
            values: vec![3.0, 4.0, 1.0],
        }
        .sorted();
        assert_eq!(a.dot(&b), 11.0);
        assert!(SparseVector {
            indices: vec![1, 1],
            values: vec![1.0, 2.0]
        }
        .validate()
        .is_err());
        assert!(SparseVector {
            indices: vec![1],
            values: vec![]
        }
        .validate()
        .is_err());
    }
}
