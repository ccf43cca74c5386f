//! Exact scan: the harness's correctness reference (recall 1.0 by construction).

use super::{AnnIndex, IndexError};
use crate::gt::exact_knn;
use crate::vecio::Matrix;
use std::sync::Arc;

pub struct FlatIndex {
    base: Arc<Matrix<f32>>,
}

impl FlatIndex {
    pub fn new(base: Arc<Matrix<f32>>) -> Self {
        Self { base }
    }
}

impl AnnIndex for FlatIndex {
    fn name(&self) -> String {
        "flat".into()
    }

    /// The scan reads the dataset directly; inserts only check the id.
    fn add(&self, id: u64, _vector: &[f32]) -> Result<(), IndexError> {
        if id as usize >= self.base.rows {
            return Err(IndexError::Backend(format!("id {id} outside the base set")));
        }
        Ok(())
    }

    fn set_ef(&mut self, _ef: usize) -> Result<(), IndexError> {
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<u64>, IndexError> {
        let gt = exact_knn(&self.base.data, query, self.base.cols, k, 1);
        Ok(gt
            .ids
            .iter()
            .filter(|&&i| i != u32::MAX)
            .map(|&i| u64::from(i))
            .collect())
    }

    fn memory_bytes(&self) -> Option<u64> {
        Some((self.base.data.len() * 4) as u64)
    }
}
