//! Oversample a (quantized) index and re-rank the candidates with exact f32 distances,
//! as Qdrant does with `quantization` + `rescore`.

use super::{AnnIndex, IndexError};
use crate::gt::l2sq;
use crate::vecio::Matrix;
use std::sync::Arc;

pub struct Rescored {
    inner: Box<dyn AnnIndex>,
    base: Arc<Matrix<f32>>,
    factor: usize,
}

impl Rescored {
    pub fn new(inner: Box<dyn AnnIndex>, base: Arc<Matrix<f32>>, factor: usize) -> Self {
        Self { inner, base, factor }
    }
}

impl AnnIndex for Rescored {
    fn name(&self) -> String {
        format!("{}+rescore{}", self.inner.name(), self.factor)
    }

    fn add(&self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        self.inner.add(id, vector)
    }

    fn set_ef(&mut self, ef: usize) -> Result<(), IndexError> {
        self.inner.set_ef(ef)
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<u64>, IndexError> {
        let cands = self.inner.search(query, k * self.factor)?;
        let mut scored: Vec<(f32, u64)> = Vec::with_capacity(cands.len());
        for id in cands {
            let row = usize::try_from(id)
                .ok()
                .filter(|&r| r < self.base.rows)
                .ok_or_else(|| IndexError::Backend(format!("id {id} outside the base set")))?;
            scored.push((l2sq(query, self.base.row(row)), id));
        }
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Ok(scored.into_iter().take(k).map(|(_, id)| id).collect())
    }

    /// The f32 vectors used for rescoring are the dataset's and are not counted here.
    fn memory_bytes(&self) -> Option<u64> {
        self.inner.memory_bytes()
    }
}
