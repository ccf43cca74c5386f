//! The project's own HNSW (`hnsw` crate), as the node uses it.

use super::{AnnIndex, BuildParams, IndexError};
use hnsw::{Hnsw, Metric, Params};

pub struct NativeHnsw {
    index: Hnsw,
    ef: usize,
}

fn backend(e: hnsw::Error) -> IndexError {
    IndexError::Backend(format!("hnsw: {e}"))
}

impl NativeHnsw {
    pub fn new(p: &BuildParams) -> Result<Self, IndexError> {
        let params = Params {
            dim: p.dim,
            m: p.m,
            ef_construct: p.ef_construct,
            metric: Metric::L2sq,
        };
        Ok(Self {
            index: Hnsw::new(params, p.capacity).map_err(backend)?,
            ef: 64,
        })
    }
}

impl AnnIndex for NativeHnsw {
    fn name(&self) -> String {
        let p = self.index.params();
        format!(
            "hnsw/f32/m{}/efc{}/kernel={}",
            p.m,
            p.ef_construct,
            p.metric.kernel_name()
        )
    }

    fn add(&self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        let key = u32::try_from(id).map_err(|_| IndexError::Backend(format!("hnsw: id {id} exceeds u32")))?;
        self.index.add(key, vector).map_err(backend)
    }

    fn set_ef(&mut self, ef: usize) -> Result<(), IndexError> {
        self.ef = ef;
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<u64>, IndexError> {
        let hits = self.index.search(query, k, self.ef, None).map_err(backend)?;
        Ok(hits.into_iter().map(|(key, _)| key as u64).collect())
    }

    fn memory_bytes(&self) -> Option<u64> {
        Some(self.index.memory_usage() as u64)
    }
}
