//! In-process ANN baselines behind one small trait, so that any index (usearch in its
//! variants, another HNSW crate, an exact scan) runs on the same harness and data.

mod flat;
mod hnsw_index;
mod rescore;
pub mod runner;
mod usearch_index;

pub use flat::FlatIndex;
pub use hnsw_index::NativeHnsw;
pub use rescore::Rescored;
pub use usearch_index::{Quantization, UsearchIndex};

use crate::vecio::Matrix;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{0}")]
    Backend(String),
    #[error("invalid index spec {spec:?}: {msg}")]
    Spec { spec: String, msg: String },
}

/// An approximate (or exact) nearest-neighbour index over squared-L2 distance.
/// Ids are the row numbers of the dataset's base set.
pub trait AnnIndex: Send + Sync {
    /// Engine and variant, e.g. `usearch-2.26.6/f32`.
    fn name(&self) -> String;
    /// Thread-safe insert: the runner calls it from several threads at once.
    fn add(&self, id: u64, vector: &[f32]) -> Result<(), IndexError>;
    /// Search breadth (HNSW `ef`). Takes `&mut self`: never changed under running searches.
    fn set_ef(&mut self, ef: usize) -> Result<(), IndexError>;
    /// The `k` best ids, best first. Thread-safe.
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<u64>, IndexError>;
    /// Bytes the index itself reports (graph + its copy of the vectors), if it knows.
    fn memory_bytes(&self) -> Option<u64>;
}

/// Shared build parameters.
#[derive(Debug, Clone)]
pub struct BuildParams {
    pub dim: usize,
    pub capacity: usize,
    pub m: usize,
    pub ef_construct: usize,
    /// Threads that will call `add`/`search` concurrently.
    pub threads: usize,
}

/// An index choice from the command line: `KIND[:key=value]...`, e.g. `usearch`,
/// `usearch:quant=f16:rescore=2`, `usearch:m=24:efc=200`, `usearch:kernel=rust`, `hnsw` (the
/// project's own graph, the one the node uses), `flat`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub raw: String,
    pub kind: String,
    pub quant: Quantization,
    /// Exact re-ranking of `rescore * k` candidates with the f32 vectors (1 = off).
    pub rescore: usize,
    pub m: Option<usize>,
    pub ef_construct: Option<usize>,
    /// usearch only: use the crate's Rust f32 kernel as a custom metric (`kernel=rust`).
    pub rust_kernel: bool,
}

impl std::str::FromStr for IndexSpec {
    type Err = IndexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |msg: String| IndexError::Spec {
            spec: s.to_string(),
            msg,
        };
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or_default().to_string();
        if !matches!(kind.as_str(), "usearch" | "hnsw" | "flat") {
            return Err(bad(format!("unknown kind {kind:?} (usearch, hnsw, flat)")));
        }
        let mut spec = IndexSpec {
            raw: s.to_string(),
            kind,
            quant: Quantization::F32,
            rescore: 1,
            m: None,
            ef_construct: None,
            rust_kernel: false,
        };
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("expected key=value, got {kv:?}")))?;
            let num = || v.parse::<usize>().map_err(|e| bad(format!("{k}: {e}")));
            match k {
                "quant" => spec.quant = v.parse().map_err(bad)?,
                "rescore" => spec.rescore = num()?.max(1),
                "m" => spec.m = Some(num()?),
                "efc" => spec.ef_construct = Some(num()?),
                "kernel" => {
                    spec.rust_kernel = match v {
                        "rust" => true,
                        "native" => false,
                        _ => return Err(bad(format!("kernel: {v:?} (native, rust)"))),
                    }
                }
                _ => return Err(bad(format!("unknown option {k:?} (quant, rescore, m, efc, kernel)"))),
            }
        }
        Ok(spec)
    }
}

impl IndexSpec {
    /// Builds an empty index for `params` (per-spec m/efc override the shared ones).
    pub fn make(&self, params: &BuildParams, base: Arc<Matrix<f32>>) -> Result<Box<dyn AnnIndex>, IndexError> {
        let mut p = params.clone();
        p.m = self.m.unwrap_or(p.m);
        p.ef_construct = self.ef_construct.unwrap_or(p.ef_construct);
        let inner: Box<dyn AnnIndex> = match self.kind.as_str() {
            "flat" => Box::new(FlatIndex::new(base.clone())),
            "hnsw" if self.quant != Quantization::F32 || self.rust_kernel => {
                return Err(IndexError::Spec {
                    spec: self.raw.clone(),
                    msg: "hnsw stores f32 and always uses the crate's kernels".into(),
                })
            }
            "hnsw" => Box::new(NativeHnsw::new(&p)?),
            _ => Box::new(UsearchIndex::new(&p, self.quant, self.rust_kernel)?),
        };
        if self.rescore > 1 {
            Ok(Box::new(Rescored::new(inner, base, self.rescore)))
        } else {
            Ok(inner)
        }
    }

    /// Effective (m, ef_construct) for reporting.
    pub fn effective(&self, params: &BuildParams) -> (usize, usize) {
        (
            self.m.unwrap_or(params.m),
            self.ef_construct.unwrap_or(params.ef_construct),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_specs() {
        let s: IndexSpec = "usearch:quant=f16:rescore=3:m=24:efc=200".parse().expect("spec");
        assert_eq!(s.quant, Quantization::F16);
        assert_eq!((s.rescore, s.m, s.ef_construct), (3, Some(24), Some(200)));
        assert!("usearch:kernel=rust".parse::<IndexSpec>().expect("kernel").rust_kernel);
        assert!("usearch:kernel=simd".parse::<IndexSpec>().is_err());
        assert_eq!("flat".parse::<IndexSpec>().expect("flat").kind, "flat");
        assert_eq!("hnsw:m=32".parse::<IndexSpec>().expect("hnsw").m, Some(32));
        assert!("hnswx".parse::<IndexSpec>().is_err());
        assert!("usearch:quant=q4".parse::<IndexSpec>().is_err());
        assert!("usearch:m".parse::<IndexSpec>().is_err());
        assert!("usearch:m=x".parse::<IndexSpec>().is_err());
    }
}
