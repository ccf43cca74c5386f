//! Distance kernels for plugging into an index as a custom metric.
//!
//! `l2sq_f32` keeps f32 accumulators (4 independent AVX registers, FMA) where usearch's
//! numkong f32 kernel on AVX2 widens every element to f64 and runs one 4-lane FMA chain.

/// A squared-L2 kernel over two equally long f32 slices.
pub type L2Kernel = fn(&[f32], &[f32]) -> f32;

/// Plain Rust (the compiler vectorises it for the baseline target).
pub fn l2sq_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..16 {
            let t = x[j] - y[j];
            acc[j] += t * t;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn l2sq_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc_j) in acc.iter_mut().enumerate() {
            let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i + 8 * j)), _mm256_loadu_ps(pb.add(i + 8 * j)));
            *acc_j = _mm256_fmadd_ps(d, d, *acc_j);
        }
        i += 32;
    }
    while i + 8 <= n {
        let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
        i += 8;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let lo = _mm256_castps256_ps128(s);
    let hi = _mm256_extractf128_ps(s, 1);
    let q = _mm_add_ps(lo, hi);
    let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    let mut sum = _mm_cvtss_f32(q);
    while i < n {
        let d = a[i] - b[i];
        sum += d * d;
        i += 1;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
fn l2sq_avx2_entry(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only handed out by `best_l2sq` after AVX2 and FMA were detected at run time.
    unsafe { l2sq_avx2_fma(a, b) }
}

/// The fastest kernel this CPU supports.
pub fn best_l2sq() -> (L2Kernel, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return (l2sq_avx2_entry, "avx2-fma-f32");
        }
    }
    (l2sq_portable, "portable-f32")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_reference() {
        for dim in [1usize, 7, 8, 31, 32, 33, 128, 131, 384] {
            let a: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.11).cos()).collect();
            let r: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
            let (best, _) = best_l2sq();
            for k in [best, l2sq_portable as L2Kernel] {
                let got = k(&a, &b) as f64;
                assert!((got - r).abs() <= 1e-5 * r.max(1.0), "dim {dim}: {got} vs {r}");
            }
        }
    }
}
