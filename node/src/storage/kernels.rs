//! f32 distance kernels installed into usearch as its metric (`change_metric`). usearch's own f32
//! kernels on AVX2 widen every element to f64 and run one dependent FMA chain; these keep f32
//! accumulators in 4 independent AVX registers, which measured ~40% more queries per CPU-second
//! on 128-d data (docs/benchmarks.md). Results differ from usearch's only by f32 rounding.

/// A kernel over two equally long f32 slices.
pub type Kernel = fn(&[f32], &[f32]) -> f32;

/// Which sum a kernel computes.
#[derive(Clone, Copy)]
enum Sum {
    /// Σ (a - b)²
    SquaredDistance,
    /// Σ a·b
    Dot,
}

#[inline(always)]
fn term(sum: Sum, x: f32, y: f32) -> f32 {
    match sum {
        Sum::SquaredDistance => (x - y) * (x - y),
        Sum::Dot => x * y,
    }
}

fn portable(sum: Sum, a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..16 {
            acc[j] += term(sum, x[j], y[j]);
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| term(sum, *x, *y)).sum::<f32>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2(sum: Sum, a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let step = |acc: __m256, x: __m256, y: __m256| match sum {
        Sum::SquaredDistance => {
            let d = _mm256_sub_ps(x, y);
            _mm256_fmadd_ps(d, d, acc)
        }
        Sum::Dot => _mm256_fmadd_ps(x, y, acc),
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
        total += term(sum, a[i], b[i]);
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
    unsafe { avx2(Sum::SquaredDistance, a, b) }
}

#[cfg(target_arch = "x86_64")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only handed out by `dot` after AVX2 and FMA were detected at run time.
    unsafe { avx2(Sum::Dot, a, b) }
}

fn l2sq_portable(a: &[f32], b: &[f32]) -> f32 {
    portable(Sum::SquaredDistance, a, b)
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    portable(Sum::Dot, a, b)
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
            ] {
                let tolerance = 1e-4 * want.abs().max(1.0);
                assert!((got as f64 - want).abs() <= tolerance, "n={n}: {got} vs {want}");
            }
        }
    }
}
