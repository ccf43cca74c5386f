//! `ScalarCode`: int8 scalar quantization. One range [lo, hi] covers every dimension; a value x
//! becomes the byte c = round((x - lo) / step), step = (hi - lo) / 255, and stands for
//! lo + step·c.
//!
//! A record is `[correction][bytes, 4 to a word, zero-padded]`. Distances run on the integers:
//!
//! * InnerProduct: a·b = step²·Σ ca·cb + lo·step·(Σca + Σcb) + d·lo², the correction word is Σc;
//! * L2sq: |a - b|² = step²·(Σca² + Σcb² - 2·Σ ca·cb), the correction word is Σc²;
//! * L1: step·Σ |ca - cb| (the distance of the dequantized values), no correction.
//!
//! Every sum is exact in u32 for dimensions up to 65,536, so the only error is the rounding of
//! the values themselves.
//!
//! Queries are quantized the same way (symmetric). An asymmetric query (f32 values against the
//! stored bytes, Σ q·c in f32) was tried: on 20k x 128 vectors it gave the same recall within
//! noise (graph recall@10 at ef 64: 0.987 vs 0.987 InnerProduct and 0.987 vs 0.991 L2sq on
//! low-rank data, 0.491 vs 0.490 on uniform random data) while a distance cost 9.3 ns instead of
//! 7.1 ns (f32: 19 ns), so queries stay symmetric and a query scores exactly like its vector's
//! code.

use super::any::{ParamReader, ParamWriter, Quantization, StoredCode};
use super::Code;
use crate::kernels::Metric;
use crate::{Error, Result};

/// Largest dimension whose integer sums stay exact in u32 (255² · 65,536 < 2³²).
const MAX_DIM: usize = 65_536;
/// Values the quantile is taken from, at most (whole vectors of the sample, evenly spread).
const MAX_SAMPLE_VALUES: usize = 1 << 20;

/// Int8 scalar quantization with one range for all dimensions.
#[derive(Debug, Clone)]
pub struct ScalarCode {
    dim: usize,
    metric: Metric,
    quantile: Option<f32>,
    lo: f32,
    step: f32,
    consts: Consts,
    /// The distance of two byte strings with their corrections, for this metric and CPU.
    dist: DistFn,
}

/// A query quantized like the stored vectors, with its correction.
pub struct ScalarQuery {
    bytes: Vec<u8>,
    correction: u32,
}

impl ScalarCode {
    /// Trains the range on `sample` (non-empty, `dim` finite values each).
    pub fn train(dim: usize, metric: Metric, quantile: Option<f32>, sample: &[&[f32]]) -> Result<Self> {
        if dim > MAX_DIM {
            return Err(Error::Params(format!(
                "scalar quantization supports up to {MAX_DIM} dimensions, got {dim}"
            )));
        }
        if let Some(q) = quantile {
            if !(0.5..=1.0).contains(&q) {
                return Err(Error::Params(format!("quantile must be within 0.5..=1.0, got {q}")));
            }
        }
        let every = (sample.len() * dim).div_ceil(MAX_SAMPLE_VALUES).max(1);
        let mut values: Vec<f32> = sample.iter().step_by(every).flat_map(|v| v.iter().copied()).collect();
        if values.is_empty() {
            return Err(Error::Params("scalar quantization needs a sample to train on".into()));
        }
        let cut = match quantile {
            Some(q) => ((values.len() as f64 * (1.0 - q as f64) / 2.0) as usize).min((values.len() - 1) / 2),
            None => 0,
        };
        let (lo, hi) = if cut == 0 {
            values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            })
        } else {
            let n = values.len();
            let hi = *values.select_nth_unstable_by(n - 1 - cut, f32::total_cmp).1;
            let lo = *values[..n - 1 - cut].select_nth_unstable_by(cut, f32::total_cmp).1;
            (lo, hi)
        };
        Ok(Self::with_range(dim, metric, quantile, lo, hi))
    }

    fn with_range(dim: usize, metric: Metric, quantile: Option<f32>, lo: f32, hi: f32) -> Self {
        // A range of one value: every byte is 0 and stands for lo.
        let step = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        Self::from_parts(dim, metric, quantile, lo, step)
    }

    fn from_parts(dim: usize, metric: Metric, quantile: Option<f32>, lo: f32, step: f32) -> Self {
        ScalarCode {
            dim,
            metric,
            quantile,
            lo,
            step,
            consts: Consts::new(dim, lo, step),
            dist: dist_fn(metric),
        }
    }

    /// The range's low end and the value of one step.
    pub fn range(&self) -> (f32, f32) {
        (self.lo, self.step)
    }

    fn quantize(&self, v: &[f32], bytes: &mut [u8]) {
        let inv = 1.0 / self.step;
        for (b, x) in bytes.iter_mut().zip(v) {
            *b = ((x - self.lo) * inv).round().clamp(0.0, 255.0) as u8;
        }
    }

    fn correction(&self, bytes: &[u8]) -> u32 {
        match self.metric {
            Metric::InnerProduct => bytes.iter().map(|&c| c as u32).sum(),
            Metric::L2sq => bytes.iter().map(|&c| c as u32 * c as u32).sum(),
            Metric::L1 => 0,
        }
    }

    /// The bytes of a record.
    #[inline(always)]
    fn bytes<'a>(&self, code: &'a [u32]) -> &'a [u8] {
        let words = &code[1..];
        // SAFETY: u8 has no alignment and every bit pattern is valid; the length stays within
        // the words.
        unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, self.dim.min(words.len() * 4)) }
    }
}

impl Code for ScalarCode {
    type Query = ScalarQuery;
    const QUERY_IS_CODE: bool = true;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn words(&self) -> usize {
        1 + self.dim.div_ceil(4)
    }

    fn encode(&self, v: &[f32], out: &mut [u32]) {
        let mut bytes = vec![0u8; self.dim.div_ceil(4) * 4];
        self.quantize(v, &mut bytes);
        out[0] = self.correction(&bytes);
        for (w, b) in out[1..].iter_mut().zip(bytes.chunks_exact(4)) {
            *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }

    fn prepare(&self, q: &[f32]) -> ScalarQuery {
        let mut bytes = vec![0u8; self.dim];
        self.quantize(q, &mut bytes);
        let correction = self.correction(&bytes);
        ScalarQuery { bytes, correction }
    }

    #[inline(always)]
    fn distance(&self, q: &ScalarQuery, code: &[u32]) -> f32 {
        (self.dist)(&self.consts, &q.bytes, q.correction, self.bytes(code), code[0])
    }

    #[inline(always)]
    fn distance_codes(&self, a: &[u32], b: &[u32]) -> f32 {
        (self.dist)(&self.consts, self.bytes(a), a[0], self.bytes(b), b[0])
    }

    fn decode(&self, code: &[u32]) -> Vec<f32> {
        self.bytes(code)
            .iter()
            .map(|&c| self.lo + self.step * c as f32)
            .collect()
    }

    fn params_memory(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

impl StoredCode for ScalarCode {
    const KIND: u8 = 1;

    fn quantization(&self) -> Option<Quantization> {
        Some(Quantization::Scalar {
            quantile: self.quantile,
        })
    }

    fn write_params(&self, out: &mut Vec<u8>) {
        ParamWriter(out)
            .u8(self.quantile.is_some() as u8)
            .f32(self.quantile.unwrap_or(1.0))
            .f32(self.lo)
            .f32(self.step);
    }

    fn read_params(dim: usize, metric: Metric, bytes: &[u8]) -> Result<Self> {
        let mut r = ParamReader::new(bytes);
        let has_quantile = r.u8()?;
        let quantile = r.f32()?;
        let (lo, step) = (r.f32()?, r.f32()?);
        r.finish()?;
        let quantile = match has_quantile {
            0 => None,
            1 if (0.5..=1.0).contains(&quantile) => Some(quantile),
            _ => return Err(Error::Format("bad scalar quantile".into())),
        };
        if step <= 0.0 || dim > MAX_DIM {
            return Err(Error::Format("bad scalar range".into()));
        }
        Ok(Self::from_parts(dim, metric, quantile, lo, step))
    }
}

/// What the distances need besides the sums.
#[derive(Debug, Clone, Copy)]
struct Consts {
    step: f32,
    step2: f32,
    lo_step: f32,
    dim_lo2: f32,
}

impl Consts {
    fn new(dim: usize, lo: f32, step: f32) -> Self {
        Consts {
            step,
            step2: step * step,
            lo_step: lo * step,
            dim_lo2: dim as f32 * lo * lo,
        }
    }
}

/// A distance of two byte strings with their corrections.
type DistFn = fn(&Consts, &[u8], u32, &[u8], u32) -> f32;

/// The distance of `metric` with the fastest kernels this CPU supports: one indirect call per
/// distance, with no branch on the metric.
fn dist_fn(metric: Metric) -> DistFn {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        return match metric {
            Metric::InnerProduct => inner_product::<true>,
            Metric::L2sq => l2sq::<true>,
            Metric::L1 => l1::<true>,
        };
    }
    match metric {
        Metric::InnerProduct => inner_product::<false>,
        Metric::L2sq => l2sq::<false>,
        Metric::L1 => l1::<false>,
    }
}

fn inner_product<const AVX2: bool>(k: &Consts, a: &[u8], sa: u32, b: &[u8], sb: u32) -> f32 {
    let p = dot::<AVX2>(a, b) as f32;
    1.0 - (k.step2 * p + k.lo_step * (sa as f32 + sb as f32) + k.dim_lo2)
}

fn l2sq<const AVX2: bool>(k: &Consts, a: &[u8], qa: u32, b: &[u8], qb: u32) -> f32 {
    let p = dot::<AVX2>(a, b) as i64;
    (qa as i64 + qb as i64 - 2 * p) as f32 * k.step2
}

fn l1<const AVX2: bool>(k: &Consts, a: &[u8], _: u32, b: &[u8], _: u32) -> f32 {
    sad::<AVX2>(a, b) as f32 * k.step
}

/// Σ a·b over bytes (wrapping, exact for up to 65,536 bytes).
#[inline(always)]
fn dot<const AVX2: bool>(a: &[u8], b: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: AVX2 = true is only chosen by `dist_fn` (and tests) after AVX2 was detected.
        return unsafe { dot_u8_avx2(a, b) };
    }
    dot_u8_portable(a, b)
}

/// Σ |a - b| over bytes.
#[inline(always)]
fn sad<const AVX2: bool>(a: &[u8], b: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: as above.
        return unsafe { sad_u8_avx2(a, b) };
    }
    sad_u8_portable(a, b)
}

fn dot_u8_portable(a: &[u8], b: &[u8]) -> u32 {
    // Blocks of 32 with u32 lanes: compiled to pmaddwd on SSE2.
    let mut acc = [0u32; 32];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let tail: u32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x as u32 * y as u32)
        .sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..32 {
            acc[j] = acc[j].wrapping_add(x[j] as u32 * y[j] as u32);
        }
    }
    acc.iter().fold(tail, |s, &x| s.wrapping_add(x))
}

fn sad_u8_portable(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u32).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_u8_avx2(a: &[u8], b: &[u8]) -> u32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let zero = _mm256_setzero_si256();
    let (mut acc0, mut acc1) = (zero, zero);
    let mut i = 0;
    // Bytes widened to i16 (both operands the same way, so the pairs line up), multiplied and
    // summed in pairs into i32 lanes: at most 2·255² per lane and step.
    while i + 32 <= n {
        let x = _mm256_loadu_si256(pa.add(i) as *const __m256i);
        let y = _mm256_loadu_si256(pb.add(i) as *const __m256i);
        let lo = _mm256_madd_epi16(_mm256_unpacklo_epi8(x, zero), _mm256_unpacklo_epi8(y, zero));
        let hi = _mm256_madd_epi16(_mm256_unpackhi_epi8(x, zero), _mm256_unpackhi_epi8(y, zero));
        acc0 = _mm256_add_epi32(acc0, lo);
        acc1 = _mm256_add_epi32(acc1, hi);
        i += 32;
    }
    if i + 16 <= n {
        let x = _mm256_cvtepu8_epi16(_mm_loadu_si128(pa.add(i) as *const __m128i));
        let y = _mm256_cvtepu8_epi16(_mm_loadu_si128(pb.add(i) as *const __m128i));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(x, y));
        i += 16;
    }
    let s = _mm256_add_epi32(acc0, acc1);
    let q = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    let q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0b01_00_11_10));
    let q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0b10_11_00_01));
    let mut total = _mm_cvtsi128_si32(q) as u32;
    while i < n {
        total = total.wrapping_add(a[i] as u32 * b[i] as u32);
        i += 1;
    }
    total
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sad_u8_avx2(a: &[u8], b: &[u8]) -> u32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i + 32 <= n {
        let x = _mm256_loadu_si256(pa.add(i) as *const __m256i);
        let y = _mm256_loadu_si256(pb.add(i) as *const __m256i);
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(x, y));
        i += 32;
    }
    let q = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    let q = _mm_add_epi64(q, _mm_unpackhi_epi64(q, q));
    let mut total = _mm_cvtsi128_si64(q) as u32;
    while i < n {
        total += a[i].abs_diff(b[i]) as u32;
        i += 1;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn avx2() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    #[test]
    fn integer_kernels_match_their_definitions() {
        for n in [0usize, 1, 15, 16, 17, 31, 32, 33, 64, 100, 128, 1000, 65_536] {
            let a: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let b: Vec<u8> = (0..n).map(|i| 255 - (i * 91 % 256) as u8).collect();
            let want_dot: u64 = a.iter().zip(&b).map(|(&x, &y)| x as u64 * y as u64).sum();
            let want_sad: u64 = a.iter().zip(&b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
            assert_eq!(dot::<false>(&a, &b) as u64, want_dot, "n={n}");
            assert_eq!(sad::<false>(&a, &b) as u64, want_sad, "n={n}");
            if avx2() {
                assert_eq!(dot::<true>(&a, &b) as u64, want_dot, "n={n}");
                assert_eq!(sad::<true>(&a, &b) as u64, want_sad, "n={n}");
            }
        }
        // The largest sums the codes can produce still fit.
        let full = vec![255u8; MAX_DIM];
        assert_eq!(dot::<false>(&full, &full) as u64, 255 * 255 * MAX_DIM as u64);
        if avx2() {
            assert_eq!(dot::<true>(&full, &full) as u64, 255 * 255 * MAX_DIM as u64);
        }
    }

    #[test]
    fn distances_are_close_to_the_exact_ones() {
        let dim = 37;
        let sample: Vec<Vec<f32>> = (0..200).map(|i| values(dim, i)).collect();
        let refs: Vec<&[f32]> = sample.iter().map(|v| &v[..]).collect();
        for metric in [Metric::InnerProduct, Metric::L2sq, Metric::L1] {
            let code = ScalarCode::train(dim, metric, None, &refs).unwrap();
            let (lo, step) = code.range();
            assert!(lo <= -0.49 && (lo + 255.0 * step) >= 0.49);
            for pair in sample.chunks(2).take(50) {
                let (a, b) = (&pair[0], &pair[1]);
                let (mut ca, mut cb) = (vec![0; code.words()], vec![0; code.words()]);
                code.encode(a, &mut ca);
                code.encode(b, &mut cb);
                // Decoding is within half a step of every value.
                for (x, y) in code.decode(&ca).iter().zip(a) {
                    assert!((x - y).abs() <= step / 2.0 + 1e-6);
                }
                let exact = metric.kernel()(a, b);
                // The distance of the dequantized vectors, computed on the integers.
                let dequantized = metric.kernel()(&code.decode(&ca), &code.decode(&cb));
                let sym = code.distance_codes(&ca, &cb);
                assert!(
                    (sym - dequantized).abs() <= 1e-4 * dequantized.abs().max(1.0),
                    "{metric:?}"
                );
                assert_eq!(code.distance(&code.prepare(a), &cb), sym);
                // Each value off by at most step/2: a loose bound on the error of each metric.
                let bound = match metric {
                    Metric::InnerProduct => step * dim as f32 * 0.5,
                    Metric::L2sq => 2.0 * step * dim as f32 * 0.5,
                    Metric::L1 => step * dim as f32,
                };
                assert!((sym - exact).abs() <= bound, "{metric:?}: {sym} vs {exact}");
            }
        }
    }

    #[test]
    fn the_quantile_cuts_the_tails() {
        let dim = 16;
        let mut sample: Vec<Vec<f32>> = (0..100).map(|i| values(dim, i)).collect();
        sample[0][0] = 100.0;
        sample[1][0] = -100.0;
        let refs: Vec<&[f32]> = sample.iter().map(|v| &v[..]).collect();
        let full = ScalarCode::train(dim, Metric::L2sq, None, &refs).unwrap();
        assert_eq!(full.range().0, -100.0);
        let cut = ScalarCode::train(dim, Metric::L2sq, Some(0.99), &refs).unwrap();
        let (lo, step) = cut.range();
        assert!(lo > -0.5 && lo < -0.45 && lo + 255.0 * step < 0.5, "{lo} {step}");
        // Values beyond the range take its ends.
        let mut c = vec![0; cut.words()];
        cut.encode(&sample[0], &mut c);
        assert_eq!(c[1] & 0xff, 255);
        assert!(ScalarCode::train(dim, Metric::L2sq, Some(0.4), &refs).is_err());
        // A constant sample gives a usable code.
        let flat = vec![0.25f32; dim];
        let code = ScalarCode::train(dim, Metric::L2sq, None, &[&flat]).unwrap();
        let mut c = vec![0; code.words()];
        code.encode(&flat, &mut c);
        assert_eq!(code.decode(&c), flat);
    }
}
