//! usearch (C++ core through the `usearch` crate), squared L2.

use super::{AnnIndex, BuildParams, IndexError};
use hnsw::Metric;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// How usearch stores vectors. i8 is only meaningful for cosine-like metrics (usearch README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    F32,
    F16,
    BF16,
    I8,
}

impl std::str::FromStr for Quantization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "bf16" => Ok(Self::BF16),
            "i8" => Ok(Self::I8),
            _ => Err(format!("unknown quantization {s:?} (f32, f16, bf16, i8)")),
        }
    }
}

impl Quantization {
    fn scalar(self) -> ScalarKind {
        match self {
            Self::F32 => ScalarKind::F32,
            Self::F16 => ScalarKind::F16,
            Self::BF16 => ScalarKind::BF16,
            Self::I8 => ScalarKind::I8,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
            Self::I8 => "i8",
        }
    }
}

pub struct UsearchIndex {
    index: Index,
    quant: Quantization,
    m: usize,
    ef_construct: usize,
    /// Name of the Rust kernel plugged in as a custom metric, if any.
    kernel: Option<&'static str>,
}

fn backend(e: impl std::fmt::Display) -> IndexError {
    IndexError::Backend(format!("usearch: {e}"))
}

impl UsearchIndex {
    /// `rust_kernel`: replace usearch's built-in f32 metric by the `hnsw` crate's squared-L2 kernel.
    pub fn new(p: &BuildParams, quant: Quantization, rust_kernel: bool) -> Result<Self, IndexError> {
        let opts = IndexOptions {
            dimensions: p.dim,
            metric: MetricKind::L2sq,
            quantization: quant.scalar(),
            connectivity: p.m,
            expansion_add: p.ef_construct,
            expansion_search: 64,
            multi: false,
        };
        let mut index = Index::new(&opts).map_err(backend)?;
        let mut kernel = None;
        if rust_kernel {
            if quant != Quantization::F32 {
                return Err(backend("a custom kernel is only wired for f32 storage"));
            }
            let (f, name) = (Metric::L2sq.kernel(), Metric::L2sq.kernel_name());
            let dim = p.dim;
            index.change_metric::<f32>(Box::new(move |a: *const f32, b: *const f32| {
                // SAFETY: usearch passes pointers to two stored or query vectors of `dim` f32
                // each (the index was created with `dimensions = dim`, f32 storage).
                let (a, b) = unsafe { (std::slice::from_raw_parts(a, dim), std::slice::from_raw_parts(b, dim)) };
                f(a, b)
            }));
            kernel = Some(name);
        }
        // Capacity is not grown automatically, and each concurrent caller needs a thread slot.
        index
            .reserve_capacity_and_threads(p.capacity, p.threads.max(1))
            .map_err(backend)?;
        Ok(Self {
            index,
            quant,
            m: p.m,
            ef_construct: p.ef_construct,
            kernel,
        })
    }

    pub fn hardware_acceleration(&self) -> String {
        self.index.hardware_acceleration()
    }
}

impl AnnIndex for UsearchIndex {
    fn name(&self) -> String {
        let kernel = self.kernel.map(|k| format!("/kernel={k}")).unwrap_or_default();
        format!(
            "usearch-{}/{}/m{}/efc{}{kernel}",
            usearch::version(),
            self.quant.label(),
            self.m,
            self.ef_construct
        )
    }

    fn add(&self, id: u64, vector: &[f32]) -> Result<(), IndexError> {
        self.index.add(id, vector).map_err(backend)
    }

    fn set_ef(&mut self, ef: usize) -> Result<(), IndexError> {
        // Index-wide setting in usearch's dense API; `&mut self` keeps searches out meanwhile.
        self.index.change_expansion_search(ef);
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<u64>, IndexError> {
        let m = self.index.search(query, k).map_err(backend)?;
        Ok(m.keys)
    }

    fn memory_bytes(&self) -> Option<u64> {
        Some(self.index.memory_usage() as u64)
    }
}
