//! `F32Code`: the vector itself, its f32 bits in the record's words. Distances are the exact
//! kernels of `kernels.rs`.

use super::Code;
use crate::kernels::{Kernel, Metric};

/// The words of an f32 record as f32 values.
#[inline(always)]
pub(crate) fn as_f32(words: &[u32]) -> &[f32] {
    // SAFETY: f32 and u32 have the same size and alignment, and every bit pattern is an f32.
    unsafe { std::slice::from_raw_parts(words.as_ptr() as *const f32, words.len()) }
}

/// The vector kept as it is: exact distances, 4 bytes per dimension.
#[derive(Debug, Clone)]
pub struct F32Code {
    dim: usize,
    metric: Metric,
    kernel: Kernel,
}

impl F32Code {
    pub fn new(dim: usize, metric: Metric) -> Self {
        F32Code {
            dim,
            metric,
            kernel: metric.kernel(),
        }
    }
}

impl Code for F32Code {
    type Query = Vec<f32>;
    const QUERY_IS_CODE: bool = true;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn words(&self) -> usize {
        self.dim
    }

    fn encode(&self, v: &[f32], out: &mut [u32]) {
        for (w, x) in out.iter_mut().zip(v) {
            *w = x.to_bits();
        }
    }

    fn prepare(&self, q: &[f32]) -> Vec<f32> {
        q.to_vec()
    }

    #[inline(always)]
    fn distance(&self, q: &Vec<f32>, code: &[u32]) -> f32 {
        (self.kernel)(q, as_f32(code))
    }

    #[inline(always)]
    fn distance_codes(&self, a: &[u32], b: &[u32]) -> f32 {
        (self.kernel)(as_f32(a), as_f32(b))
    }

    fn decode(&self, code: &[u32]) -> Vec<f32> {
        as_f32(code).to_vec()
    }

    fn params_memory(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_code_is_the_vector_and_its_distances_are_exact() {
        let a = [0.5f32, -1.25, 3.0, 0.0, 7.5];
        let b = [1.0f32, 2.0, -0.5, 0.25, 1.0];
        for metric in [Metric::L2sq, Metric::InnerProduct, Metric::L1] {
            let code = F32Code::new(5, metric);
            let (mut ca, mut cb) = (vec![0u32; code.words()], vec![0u32; code.words()]);
            code.encode(&a, &mut ca);
            code.encode(&b, &mut cb);
            assert_eq!(code.decode(&ca), a);
            let want = metric.kernel()(&a, &b);
            assert_eq!(code.distance(&code.prepare(&a), &cb), want);
            assert_eq!(code.distance_codes(&ca, &cb), want);
        }
    }
}
