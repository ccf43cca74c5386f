//! f32 distance kernels: the HNSW graph's metric, and the metric the node installs into usearch
//! (`change_metric`). usearch's own f32 kernels on AVX2 widen every element to f64 and run one
//! dependent FMA chain; these keep f32 accumulators in 4 independent AVX registers, which measured
//! ~40% more queries per CPU-second on 128-d data (docs/benchmarks.md).

/// A kernel over two equally long f32 slices.
pub type Kernel = fn(&[f32], &[f32]) -> f32;

// Which sum a kernel computes is a const parameter (`DOT`: Σ a·b, else Σ (a - b)²), so each
// variant is compiled on its own with no branch in the loop.

#[inline(always)]
pub(crate) fn term<const DOT: bool>(x: f32, y: f32) -> f32 {
    if DOT {
        x * y
    } else {
        (x - y) * (x - y)
    }
}

fn portable<const DOT: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..16 {
            acc[j] += term::<DOT>(x[j], y[j]);
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| term::<DOT>(*x, *y)).sum::<f32>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<const DOT: bool>(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let step = |acc: __m256, x: __m256, y: __m256| {
        if DOT {
            _mm256_fmadd_ps(x, y, acc)
        } else {
            let d = _mm256_sub_ps(x, y);
            _mm256_fmadd_ps(d, d, acc)
        }
    };
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc_j) in acc.iter_mut().enumerate() {
            *acc_j = step(
                *acc_j,
                _mm256_loadu_ps(pa.add(i + 8 * j)),
                _mm256_loadu_ps(pb.add(i + 8 * j)),
            );
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = step(acc[0], _mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        i += 8;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    let mut total = _mm_cvtss_f32(q);
    while i < n {
        total += term::<DOT>(a[i], b[i]);
        i += 1;
    }
    total
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
fn l2sq_avx2(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only handed out by `l2sq` after AVX2 and FMA were detected at run time.
    unsafe { avx2::<false>(a, b) }
}

#[cfg(target_arch = "x86_64")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only handed out by `dot` after AVX2 and FMA were detected at run time.
    unsafe { avx2::<true>(a, b) }
}

fn l2sq_portable(a: &[f32], b: &[f32]) -> f32 {
    portable::<false>(a, b)
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    portable::<true>(a, b)
}

fn l1(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

#[cfg(target_arch = "x86_64")]
fn one_minus_dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only handed out by `Metric::kernel` after AVX2 and FMA were detected at run time.
    1.0 - unsafe { avx2::<true>(a, b) }
}

fn one_minus_dot_portable(a: &[f32], b: &[f32]) -> f32 {
    1.0 - dot_portable(a, b)
}

/// What an index minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Σ (a - b)²
    L2sq,
    /// 1 - Σ a·b (cosine distance for normalised vectors)
    InnerProduct,
    /// Σ |a - b|
    L1,
}

impl Metric {
    /// The fastest kernel this CPU supports for the metric.
    pub fn kernel(self) -> Kernel {
        match self {
            Metric::L2sq => l2sq(),
            Metric::L1 => l1,
            Metric::InnerProduct => {
                #[cfg(target_arch = "x86_64")]
                if has_avx2() {
                    return one_minus_dot_avx2;
                }
                one_minus_dot_portable
            }
        }
    }

    /// Which implementation `kernel` picks, for reports.
    pub fn kernel_name(self) -> &'static str {
        match (self, has_avx2()) {
            (Metric::L1, _) => "portable-f32",
            (_, true) => "avx2-fma-f32",
            (_, false) => "portable-f32",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Metric::L2sq => 0,
            Metric::InnerProduct => 1,
            Metric::L1 => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        [Metric::L2sq, Metric::InnerProduct, Metric::L1]
            .into_iter()
            .find(|m| m.code() == code)
    }
}

/// Σ (a - b)², the fastest variant this CPU supports.
pub fn l2sq() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        return l2sq_avx2;
    }
    l2sq_portable
}

/// Σ a·b, the fastest variant this CPU supports.
pub fn dot() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        return dot_avx2;
    }
    dot_portable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_the_definitions() {
        for n in [1usize, 7, 8, 31, 32, 33, 100, 128, 1536] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 53 % 89) as f32 - 44.0) / 13.0).collect();
            let want_l2: f64 = a.iter().zip(&b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
            let want_dot: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
            for (got, want) in [
                (l2sq()(&a, &b), want_l2),
                (l2sq_portable(&a, &b), want_l2),
                (dot()(&a, &b), want_dot),
                (dot_portable(&a, &b), want_dot),
                (Metric::InnerProduct.kernel()(&a, &b), 1.0 - want_dot),
                (Metric::L2sq.kernel()(&a, &b), want_l2),
            ] {
                let tolerance = 1e-4 * want.abs().max(1.0);
                assert!((got as f64 - want).abs() <= tolerance, "n={n}: {got} vs {want}");
            }
        }
    }
}
