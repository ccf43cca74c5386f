//! Compact element types for vectors kept whole: `F16Code` stores each value as an IEEE
//! half-precision float (2 bytes), `U8Code` as a byte with one scale per vector (1 byte, plus
//! one word). They are how a collection's `datatype: float16 / uint8` reaches the graph: the
//! values the user stored are the values the graph compares, in half or a quarter of the
//! memory of f32 records.
//!
//! Both are one `WholeCode` over an `Element` (how values sit in a record, and the kernels for
//! it). Queries are converted to the element type too (`prepare` rounds through the code), as a
//! query is converted to the storage type of the vectors it is compared with; so a query
//! scores exactly like its vector's code, and the distances are the f32 metric on the stored
//! values. They are computed by kernels that read the compact values directly (`fused`); where
//! the CPU has none (or for L1) the record is decoded into a per-thread buffer and the f32
//! kernel runs on it.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::thread::LocalKey;

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

use super::any::{ParamReader, Quantization, StoredCode};
use super::Code;
use crate::kernels::{Kernel, Metric};
use crate::Result;

/// The element type of a graph's records when it stores whole vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 4 bytes per value, exact.
    #[default]
    F32,
    /// 2 bytes per value: IEEE half precision (values rounded to the nearest f16).
    F16,
    /// 1 byte per value and a scale per vector: whole numbers 0..=255, exact, or such numbers
    /// scaled by one factor (a normalised vector of integers, for cosine), exact up to f32
    /// rounding. Negative values are stored as 0.
    U8,
}

/// How the values of a compact record are laid out, and the kernels that read them.
pub trait Element: std::fmt::Debug + Clone + Send + Sync + 'static {
    /// The code's tag in index files.
    const KIND: u8;
    /// The fused kernels of one metric (see `fused`).
    type Kernels: std::fmt::Debug + Clone + Copy + Send + Sync;
    /// u32 words a record of `dim` values takes.
    fn words(dim: usize) -> usize;
    /// Writes `v` (`dim` values) into a zeroed record.
    fn encode(dim: usize, v: &[f32], out: &mut [u32]);
    /// The `dim` values of a record.
    fn decode_into(dim: usize, code: &[u32], out: &mut [f32]);
    /// The fused kernels of `metric` on this CPU, if there are any.
    fn kernels(metric: Metric) -> Option<Self::Kernels>;
    /// A query against a record.
    fn query(k: &Self::Kernels, dim: usize, q: &[f32], code: &[u32]) -> f32;
    /// Two records.
    fn pair(k: &Self::Kernels, dim: usize, a: &[u32], b: &[u32]) -> f32;
}

/// Half-precision floats, two to a word.
#[derive(Debug, Clone)]
pub struct Half;

/// Bytes, four to a word, after one word holding the record's f32 scale: the record stands for
/// `scale · byte`.
#[derive(Debug, Clone)]
pub struct Byte;

pub type F16Code = WholeCode<Half>;
pub type U8Code = WholeCode<Byte>;

/// Whole vectors in the element type `E`.
#[derive(Debug, Clone)]
pub struct WholeCode<E: Element> {
    dim: usize,
    metric: Metric,
    kernel: Kernel,
    /// The metric computed on the stored values directly, where this CPU has a kernel for it.
    fused: Option<E::Kernels>,
    element: PhantomData<E>,
}

thread_local! {
    /// Per-thread decode buffers: one for a code read as a query (building the graph compares
    /// two codes), one for a record.
    static QUERY: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static RECORD: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl<E: Element> WholeCode<E> {
    pub fn new(dim: usize, metric: Metric) -> Self {
        WholeCode {
            dim,
            metric,
            kernel: metric.kernel(),
            fused: E::kernels(metric),
            element: PhantomData,
        }
    }

    /// Runs `f` on `code` decoded into the thread's buffer `buffer`.
    fn with_decoded<R>(
        &self,
        buffer: &'static LocalKey<RefCell<Vec<f32>>>,
        code: &[u32],
        f: impl FnOnce(&[f32]) -> R,
    ) -> R {
        buffer.with(|b| {
            let x = &mut *b.borrow_mut();
            x.resize(self.dim, 0.0);
            E::decode_into(self.dim, code, x);
            f(x)
        })
    }

    /// The metric by the f32 kernel on the decoded record (CPUs without a fused kernel, L1).
    fn decoded_distance(&self, q: &[f32], code: &[u32]) -> f32 {
        self.with_decoded(&RECORD, code, |x| (self.kernel)(q, x))
    }
}

impl<E: Element> Code for WholeCode<E> {
    type Query = Vec<f32>;
    const QUERY_IS_CODE: bool = true;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn words(&self) -> usize {
        E::words(self.dim)
    }

    fn encode(&self, v: &[f32], out: &mut [u32]) {
        out.fill(0);
        E::encode(self.dim, v, out);
    }

    fn prepare(&self, q: &[f32]) -> Vec<f32> {
        let mut code = vec![0u32; self.words()];
        self.encode(q, &mut code);
        self.decode(&code)
    }

    #[inline]
    fn distance(&self, q: &Vec<f32>, code: &[u32]) -> f32 {
        match &self.fused {
            Some(k) => E::query(k, self.dim, q, code),
            None => self.decoded_distance(q, code),
        }
    }

    fn distance_codes(&self, a: &[u32], b: &[u32]) -> f32 {
        match &self.fused {
            Some(k) => E::pair(k, self.dim, a, b),
            None => self.with_decoded(&QUERY, a, |x| self.decoded_distance(x, b)),
        }
    }

    fn decode(&self, code: &[u32]) -> Vec<f32> {
        let mut out = vec![0.0; self.dim];
        E::decode_into(self.dim, code, &mut out);
        out
    }

    fn params_memory(&self) -> usize {
        0
    }
}

impl<E: Element> StoredCode for WholeCode<E> {
    const KIND: u8 = E::KIND;

    fn quantization(&self) -> Option<Quantization> {
        None
    }

    fn write_params(&self, _: &mut Vec<u8>) {}

    fn read_params(dim: usize, metric: Metric, bytes: &[u8]) -> Result<Self> {
        ParamReader::new(bytes).finish()?;
        Ok(WholeCode::new(dim, metric))
    }
}

/// The 16-bit halves of a record's words, in memory order.
fn halves(words: &[u32]) -> &[u16] {
    // SAFETY: u16 has no stricter alignment than u32, every bit pattern is valid, and the
    // length covers exactly the words' bytes.
    unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u16, words.len() * 2) }
}

fn halves_mut(words: &mut [u32]) -> &mut [u16] {
    // SAFETY: as `halves`, with the unique borrow of `words`.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u16, words.len() * 2) }
}

fn bytes_of(words: &[u32]) -> &[u8] {
    // SAFETY: bytes have no alignment, every bit pattern is valid, same length in bytes.
    unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, words.len() * 4) }
}

fn bytes_of_mut(words: &mut [u32]) -> &mut [u8] {
    // SAFETY: as `bytes_of`, with the unique borrow of `words`.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, words.len() * 4) }
}

impl Element for Half {
    const KIND: u8 = 5;
    type Kernels = fused::F16Kernels;

    fn words(dim: usize) -> usize {
        dim.div_ceil(2)
    }

    fn encode(dim: usize, v: &[f32], out: &mut [u32]) {
        for (bits, x) in halves_mut(out)[..dim].iter_mut().zip(v) {
            *bits = half::f16::from_f32(*x).to_bits();
        }
    }

    fn decode_into(dim: usize, code: &[u32], out: &mut [f32]) {
        halves(code)[..dim]
            .reinterpret_cast::<half::f16>()
            .convert_to_f32_slice(out);
    }

    fn kernels(metric: Metric) -> Option<Self::Kernels> {
        fused::f16_kernels(metric)
    }

    #[inline]
    fn query(k: &Self::Kernels, dim: usize, q: &[f32], code: &[u32]) -> f32 {
        (k.query)(q, &halves(code)[..dim])
    }

    fn pair(k: &Self::Kernels, dim: usize, a: &[u32], b: &[u32]) -> f32 {
        (k.pair)(&halves(a)[..dim], &halves(b)[..dim])
    }
}

/// Whether `v · k` is a whole number 0..=255 in every place (up to f32 rounding).
fn whole_when_scaled(v: &[f32], k: f32) -> bool {
    v.iter().all(|x| {
        let y = x * k;
        (-1e-3..=255.001).contains(&y) && (y - y.round()).abs() <= 1e-3
    })
}

impl Byte {
    /// The factor that turns `v` into whole numbers 0..=255: 1 for integer vectors; for a
    /// scaled one (normalised for cosine) the one that brings its largest value back to a whole
    /// number, found by trying each (the first value that is not whole rules a try out, so
    /// this is cheap); otherwise the one that maps the largest value to 255 (rounding the rest).
    fn factor(v: &[f32]) -> f32 {
        let max = v.iter().fold(0.0f32, |m, x| m.max(*x));
        if max <= 0.0 || whole_when_scaled(v, 1.0) {
            return 1.0;
        }
        (1..=255u32)
            .map(|m| m as f32 / max)
            .find(|k| whole_when_scaled(v, *k))
            .unwrap_or(255.0 / max)
    }

    /// A record's bytes and scale.
    fn parts(dim: usize, code: &[u32]) -> (&[u8], f32) {
        (&bytes_of(&code[1..])[..dim], f32::from_bits(code[0]))
    }
}

impl Element for Byte {
    const KIND: u8 = 6;
    type Kernels = fused::U8Kernels;

    fn words(dim: usize) -> usize {
        1 + dim.div_ceil(4)
    }

    fn encode(dim: usize, v: &[f32], out: &mut [u32]) {
        let k = Self::factor(v);
        out[0] = (1.0 / k).to_bits();
        for (b, x) in bytes_of_mut(&mut out[1..])[..dim].iter_mut().zip(v) {
            *b = (x * k).round().clamp(0.0, 255.0) as u8;
        }
    }

    fn decode_into(dim: usize, code: &[u32], out: &mut [f32]) {
        let (bytes, scale) = Self::parts(dim, code);
        for (o, b) in out.iter_mut().zip(bytes) {
            *o = f32::from(*b) * scale;
        }
    }

    fn kernels(metric: Metric) -> Option<Self::Kernels> {
        fused::u8_kernels(metric)
    }

    #[inline]
    fn query(k: &Self::Kernels, dim: usize, q: &[f32], code: &[u32]) -> f32 {
        let (bytes, scale) = Self::parts(dim, code);
        (k.query)(q, bytes, scale)
    }

    fn pair(k: &Self::Kernels, dim: usize, a: &[u32], b: &[u32]) -> f32 {
        let ((ba, sa), (bb, sb)) = (Self::parts(dim, a), Self::parts(dim, b));
        (k.pair)(ba, sa, bb, sb)
    }
}

/// Kernels that read the compact values directly (AVX2 + FMA, F16C for half floats): one
/// conversion instruction per 8 values inside the loop instead of a decode pass and a second
/// read; for a query against a record, and for two records (building the graph).
/// `InnerProduct` and `L2sq` only (L1 takes the decode path).
mod fused {
    use crate::kernels::Metric;

    /// The metric between a query and a record of half floats (as bits), and between two
    /// such records.
    #[derive(Debug, Clone, Copy)]
    pub struct F16Kernels {
        pub query: fn(&[f32], &[u16]) -> f32,
        pub pair: fn(&[u16], &[u16]) -> f32,
    }

    /// The metric between a query and bytes times a scale, and between two such records.
    #[derive(Debug, Clone, Copy)]
    pub struct U8Kernels {
        pub query: fn(&[f32], &[u8], f32) -> f32,
        pub pair: fn(&[u8], f32, &[u8], f32) -> f32,
    }

    #[cfg(target_arch = "x86_64")]
    fn detected() -> bool {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }

    // SAFETY (every `unsafe` below): the kernels are handed out only once the CPU's features
    // were detected.
    pub fn f16_kernels(metric: Metric) -> Option<F16Kernels> {
        #[cfg(target_arch = "x86_64")]
        if detected() {
            return match metric {
                Metric::InnerProduct => Some(F16Kernels {
                    query: |q, c| 1.0 - unsafe { x86::f16::<true>(q, c) },
                    pair: |a, b| 1.0 - unsafe { x86::f16_pair::<true>(a, b) },
                }),
                Metric::L2sq => Some(F16Kernels {
                    query: |q, c| unsafe { x86::f16::<false>(q, c) },
                    pair: |a, b| unsafe { x86::f16_pair::<false>(a, b) },
                }),
                Metric::L1 => None,
            };
        }
        let _ = metric;
        None
    }

    pub fn u8_kernels(metric: Metric) -> Option<U8Kernels> {
        #[cfg(target_arch = "x86_64")]
        if detected() {
            return match metric {
                // A dot product scales once at the end.
                Metric::InnerProduct => Some(U8Kernels {
                    query: |q, c, s| 1.0 - s * unsafe { x86::u8::<true>(q, c, 1.0) },
                    pair: |a, sa, b, sb| 1.0 - sa * sb * unsafe { x86::u8_pair::<true>(a, 1.0, b, 1.0) },
                }),
                Metric::L2sq => Some(U8Kernels {
                    query: |q, c, s| unsafe { x86::u8::<false>(q, c, s) },
                    pair: |a, sa, b, sb| unsafe { x86::u8_pair::<false>(a, sa, b, sb) },
                }),
                Metric::L1 => None,
            };
        }
        let _ = metric;
        None
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::arch::x86_64::*;

        use crate::kernels::term;

        /// Σ a·b (`DOT`) or Σ (a - b)² over `n` values, 8 lanes at a time into 2 independent
        /// accumulators; `load_*(i)` gives values i..i+8 as f32, `tail_*(i)` value i alone.
        #[inline(always)]
        unsafe fn sum<const DOT: bool>(
            n: usize,
            load_a: impl Fn(usize) -> __m256,
            load_b: impl Fn(usize) -> __m256,
            tail_a: impl Fn(usize) -> f32,
            tail_b: impl Fn(usize) -> f32,
        ) -> f32 {
            let step = |acc: __m256, x: __m256, y: __m256| {
                if DOT {
                    _mm256_fmadd_ps(x, y, acc)
                } else {
                    let d = _mm256_sub_ps(x, y);
                    _mm256_fmadd_ps(d, d, acc)
                }
            };
            let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut i = 0;
            while i + 16 <= n {
                a0 = step(a0, load_a(i), load_b(i));
                a1 = step(a1, load_a(i + 8), load_b(i + 8));
                i += 16;
            }
            if i + 8 <= n {
                a0 = step(a0, load_a(i), load_b(i));
                i += 8;
            }
            let s = _mm256_add_ps(a0, a1);
            let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
            let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            let h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
            let mut total = _mm_cvtss_f32(h);
            while i < n {
                total += term::<DOT>(tail_a(i), tail_b(i));
                i += 1;
            }
            total
        }

        #[inline(always)]
        unsafe fn load_f16(p: *const u16, i: usize) -> __m256 {
            _mm256_cvtph_ps(_mm_loadu_si128(p.add(i) as *const __m128i))
        }

        #[inline(always)]
        unsafe fn load_u8(p: *const u8, i: usize, scale: __m256) -> __m256 {
            let bytes = _mm_loadl_epi64(p.add(i) as *const __m128i);
            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)), scale)
        }

        fn f16_at(c: &[u16], i: usize) -> f32 {
            half::f16::from_bits(c[i]).to_f32()
        }

        /// `q` against half floats `c` (as bits) as long as `q`.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub unsafe fn f16<const DOT: bool>(q: &[f32], c: &[u16]) -> f32 {
            assert_eq!(q.len(), c.len());
            let (pq, pc) = (q.as_ptr(), c.as_ptr());
            sum::<DOT>(
                q.len(),
                |i| _mm256_loadu_ps(pq.add(i)),
                |i| load_f16(pc, i),
                |i| q[i],
                |i| f16_at(c, i),
            )
        }

        /// Two records of half floats (as bits) of one length.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub unsafe fn f16_pair<const DOT: bool>(a: &[u16], b: &[u16]) -> f32 {
            assert_eq!(a.len(), b.len());
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            sum::<DOT>(
                a.len(),
                |i| load_f16(pa, i),
                |i| load_f16(pb, i),
                |i| f16_at(a, i),
                |i| f16_at(b, i),
            )
        }

        /// `q` against `scale · c`, `c` bytes as long as `q`.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn u8<const DOT: bool>(q: &[f32], c: &[u8], scale: f32) -> f32 {
            assert_eq!(q.len(), c.len());
            let (pq, pc, s) = (q.as_ptr(), c.as_ptr(), _mm256_set1_ps(scale));
            sum::<DOT>(
                q.len(),
                |i| _mm256_loadu_ps(pq.add(i)),
                |i| load_u8(pc, i, s),
                |i| q[i],
                |i| f32::from(c[i]) * scale,
            )
        }

        /// `sa · a` against `sb · b`, bytes of one length.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn u8_pair<const DOT: bool>(a: &[u8], sa: f32, b: &[u8], sb: f32) -> f32 {
            assert_eq!(a.len(), b.len());
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let (va, vb) = (_mm256_set1_ps(sa), _mm256_set1_ps(sb));
            sum::<DOT>(
                a.len(),
                |i| load_u8(pa, i, va),
                |i| load_u8(pb, i, vb),
                |i| f32::from(a[i]) * sa,
                |i| f32::from(b[i]) * sb,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<C: Code>(code: &C, v: &[f32]) -> Vec<f32> {
        let mut c = vec![0u32; code.words()];
        code.encode(v, &mut c);
        code.decode(&c)
    }

    #[test]
    fn f16_keeps_half_precision_values_and_scores_them_exactly() {
        let a = [0.1f32, -2.5, 1000.25, 0.0, 3.0e-5];
        let b = [1.0f32, 0.333, -7.0, 0.5, 2.0];
        for metric in [Metric::L2sq, Metric::InnerProduct, Metric::L1] {
            let code = F16Code::new(5, metric);
            assert_eq!(code.words(), 3);
            let ra = roundtrip(&code, &a);
            let want: Vec<f32> = a.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect();
            assert_eq!(ra, want);
            let rb = roundtrip(&code, &b);
            let (mut ca, mut cb) = (vec![0u32; 3], vec![0u32; 3]);
            code.encode(&a, &mut ca);
            code.encode(&b, &mut cb);
            let exact = metric.kernel()(&ra, &rb);
            assert_eq!(code.distance_codes(&ca, &cb), exact);
            assert_eq!(code.distance(&code.prepare(&a), &cb), exact);
        }
    }

    #[test]
    fn u8_is_exact_for_integers_and_for_normalised_integers() {
        let ints = [0.0f32, 17.0, 255.0, 3.0, 128.0, 1.0, 0.0];
        let code = U8Code::new(7, Metric::L2sq);
        assert_eq!(code.words(), 3);
        assert_eq!(roundtrip(&code, &ints), ints);
        // A cosine space gets the integers normalised: they come back within f32 rounding.
        for max in [255.0f32, 9.0, 1.0] {
            let v = [max, 3.0_f32.min(max), 0.0, 1.0, max];
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let normalised: Vec<f32> = v.iter().map(|x| x / norm).collect();
            let back = roundtrip(&U8Code::new(5, Metric::InnerProduct), &normalised);
            for (x, y) in back.iter().zip(&normalised) {
                assert!((x - y).abs() < 1e-6, "{back:?} vs {normalised:?}");
            }
        }
        // Anything else maps its largest value to 255 and rounds; negatives become 0.
        let back = roundtrip(&code, &[0.5, 0.25, -1.0, 0.1234567, 0.0, 0.0, 0.0]);
        assert!((back[0] - 0.5).abs() < 1e-6 && back[2] == 0.0);
        assert!((back[3] - 0.1234567).abs() <= 0.5 / 255.0);
    }

    #[test]
    fn u8_distances_are_the_kernels_on_the_values() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 200.0];
        let b = [5.0f32, 0.0, 9.0, 255.0, 1.0];
        for metric in [Metric::L2sq, Metric::InnerProduct, Metric::L1] {
            let code = U8Code::new(5, metric);
            let (mut ca, mut cb) = (vec![0u32; code.words()], vec![0u32; code.words()]);
            code.encode(&a, &mut ca);
            code.encode(&b, &mut cb);
            let exact = metric.kernel()(&a, &b);
            assert_eq!(code.distance_codes(&ca, &cb), exact);
            assert_eq!(code.distance(&code.prepare(&a), &cb), exact);
        }
    }

    #[test]
    fn fused_kernels_agree_with_the_decoding_path() {
        let dim = 101; // 6 full lanes of 16, one of 8, and a tail
        let v = |seed: usize| -> Vec<f32> { (0..dim).map(|j| ((seed * 37 + j * 11) % 256) as f32 / 7.0).collect() };
        for metric in [Metric::InnerProduct, Metric::L2sq] {
            let f16 = F16Code::new(dim, metric);
            let u8 = U8Code::new(dim, metric);
            for (a, b) in [(v(1), v(2)), (v(3), v(9))] {
                let (mut ha, mut hb) = (vec![0u32; f16.words()], vec![0u32; f16.words()]);
                f16.encode(&a, &mut ha);
                f16.encode(&b, &mut hb);
                let q = f16.prepare(&a);
                let want = f16.decoded_distance(&q, &hb);
                assert!((f16.distance(&q, &hb) - want).abs() <= 1e-4 * want.abs().max(1.0));
                assert!((f16.distance_codes(&ha, &hb) - want).abs() <= 1e-4 * want.abs().max(1.0));

                let (mut ba, mut bb) = (vec![0u32; u8.words()], vec![0u32; u8.words()]);
                u8.encode(&a, &mut ba);
                u8.encode(&b, &mut bb);
                let q = u8.prepare(&a);
                let want = u8.decoded_distance(&q, &bb);
                assert!((u8.distance(&q, &bb) - want).abs() <= 1e-4 * want.abs().max(1.0));
                assert!((u8.distance_codes(&ba, &bb) - want).abs() <= 1e-4 * want.abs().max(1.0));
            }
        }
    }

    #[test]
    fn compact_graphs_search_their_values_and_save_their_precision() {
        use crate::{Hnsw, Params};
        let dir = tempfile::tempdir().unwrap();
        let params = Params {
            dim: 24,
            m: 12,
            ef_construct: 100,
            metric: Metric::L2sq,
        };
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) % 256) as f32
        };
        let data: Vec<Vec<f32>> = (0..600).map(|_| (0..24).map(|_| next()).collect()).collect();
        for precision in [Precision::F16, Precision::U8] {
            let graph = Hnsw::with_precision(params, 600, precision).unwrap();
            for (i, v) in data.iter().enumerate() {
                graph.add(i as u32, v).unwrap();
            }
            // Integers 0..=255 are exact in both: the graph holds the very values.
            assert_eq!(graph.get(17).unwrap(), data[17]);
            assert!(graph.holds(17, &data[17]));
            let q = &data[3];
            let hits = graph.search(q, 5, 200, None).unwrap();
            let mut exact: Vec<(u32, f32)> = data
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u32, Metric::L2sq.kernel()(q, v)))
                .collect();
            exact.sort_by(|a, b| a.1.total_cmp(&b.1));
            assert_eq!(hits[0], (3, 0.0));
            assert_eq!(
                hits.iter().map(|h| h.1).collect::<Vec<_>>(),
                exact[..5].iter().map(|h| h.1).collect::<Vec<_>>()
            );
            let path = dir.path().join(format!("{precision:?}.graph"));
            graph.save(&path).unwrap();
            let loaded = Hnsw::load(&path, 0).unwrap();
            assert_eq!(loaded.precision(), Some(precision));
            assert_eq!(loaded.quantization(), None);
            assert_eq!(loaded.search(q, 5, 200, None).unwrap(), hits);
            // A quarter (bytes) or a half (f16) of the f32 graph's records.
            let f32_graph = Hnsw::new(params, 600).unwrap();
            assert!(graph.memory_usage() < f32_graph.memory_usage());
        }
    }
}
