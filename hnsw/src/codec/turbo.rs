//! TurboQuant-style codes (Zandieh et al., "TurboQuant: Online Vector Quantization with
//! Near-optimal Distortion Rate"), configured as Qdrant 1.19's `turbo: {bits: bits1 | bits1_5 |
//! bits2 | bits4}`. Data-oblivious: nothing is trained.
//!
//! Encoding a vector:
//! 1. zero-pad it to `padded` coordinates and rotate it by a random orthogonal transform: three
//!    rounds of random sign flips, a random permutation and normalised fast Walsh–Hadamard
//!    transforms over power-of-two blocks of the padded length (one block when it is a power of
//!    two), all drawn from a seed, so the rotation is rebuilt from the seed alone;
//! 2. after the rotation each coordinate of a vector of norm `r` is close to N(0, r²/padded), so
//!    the coordinates are rescaled by `sqrt(padded) / r` and each is replaced by the index of its
//!    cell in the Lloyd–Max quantizer of the standard normal for the bit width (computed here by
//!    Lloyd's algorithm on the normal density, once per process);
//! 3. beside the packed indices the code keeps one f32 scale `s` such that the vector stands for
//!    `s · c` in the rotated space (`c` the centroids of its indices; `s` is the least-squares
//!    fit `⟨v, c⟩ / |c|²`), and for L2 also the exact norm `|v|`.
//!
//! `bits1_5` is Qdrant's: one bit per coordinate, but the vector is padded to 1.5 times its
//! dimension before the rotation, which spreads it over more (redundant) coordinates; 1.5 bits
//! per original dimension in all. The padded length is rounded up so the indices fill whole
//! u32 words (a multiple of 32 coordinates for 1 bit, 16 for 2 bits, 8 for 4 bits).
//!
//! Scoring is asymmetric as in Qdrant: the query is rotated but not quantized, and the score is
//! its dot product with the code's centroids times the code's scale. With AVX2 and FMA, 2- and
//! 4-bit codes are decoded eight indices at a time into exact f32 centroids held in registers
//! and multiplied with the rotated query; otherwise (and for 1 bit) `prepare` turns the rotated
//! query into one 16-entry table per 4-bit nibble of the code (partial dots of the 1, 2 or 4
//! coordinates the nibble holds with every centroid combination), so a distance is one lookup
//! per nibble. Two codes: the same decoding for 2 and 4 bits (or a 256-entry table over pairs of
//! nibbles), popcount of the XOR for 1 bit. Inner product is `1 - dot`; L2 is
//! `|q|² + |v|² - 2 dot`; L1 has no such decomposition and decodes the vector (inverse
//! rotation) per distance, which is slow.

use super::kmeans::Rng;
use super::Code;
use crate::kernels::Metric;
use crate::{Error, Result};
use std::sync::OnceLock;

const DEFAULT_SEED: u64 = 0x5475_7262_6f51_5431; // "TurboQT1"
const ROUNDS: usize = 3;
const MAGIC: &[u8; 4] = b"HTQ1";
const BYTES: usize = 4 + 1 + 1 + 4 + 8;
/// Largest dimension accepted (Qdrant's limit too); it also bounds what a corrupted header can
/// make `from_bytes` allocate.
const MAX_DIM: usize = 65_536;

/// Bits per dimension of a TurboQuant code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TurboBits {
    Bits1,
    Bits1_5,
    Bits2,
    Bits4,
}

impl TurboBits {
    /// Bits per stored (rotated, padded) coordinate.
    fn coord_bits(self) -> usize {
        match self {
            TurboBits::Bits1 | TurboBits::Bits1_5 => 1,
            TurboBits::Bits2 => 2,
            TurboBits::Bits4 => 4,
        }
    }

    /// Coordinates after padding: whole u32 words of indices.
    fn padded(self, dim: usize) -> usize {
        match self {
            TurboBits::Bits1 => dim.next_multiple_of(32),
            TurboBits::Bits1_5 => (dim * 3 / 2).max(1).next_multiple_of(32),
            TurboBits::Bits2 => dim.next_multiple_of(16),
            TurboBits::Bits4 => dim.next_multiple_of(8),
        }
    }

    fn tag(self) -> u8 {
        match self {
            TurboBits::Bits1 => 1,
            TurboBits::Bits1_5 => 15,
            TurboBits::Bits2 => 2,
            TurboBits::Bits4 => 4,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        [TurboBits::Bits1, TurboBits::Bits1_5, TurboBits::Bits2, TurboBits::Bits4]
            .into_iter()
            .find(|b| b.tag() == tag)
    }
}

/// A Lloyd–Max quantizer of the standard normal: sorted centroids and the cell boundaries
/// between them (midpoints).
#[derive(Debug)]
struct Codebook {
    centroids: Vec<f32>,
    boundaries: Vec<f32>,
    /// Mean squared error per coordinate of N(0, 1) through this quantizer.
    #[cfg_attr(not(test), allow(dead_code))]
    mse: f64,
}

/// Standard normal density.
fn pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function, by the series
/// Φ(x) = 1/2 + φ(x) · (x + x³/3 + x⁵/(3·5) + ...), whose terms are all of one sign: no
/// cancellation, about 1e-16 absolute error over the range that matters here.
fn cdf(x: f64) -> f64 {
    if x.is_infinite() || x.abs() > 12.0 {
        return if x > 0.0 { 1.0 } else { 0.0 };
    }
    let (mut term, mut sum) = (x, x);
    let x2 = x * x;
    let mut k = 1.0;
    while term.abs() > 1e-18 * sum.abs().max(1e-300) {
        term *= x2 / (2.0 * k + 1.0);
        sum += term;
        k += 1.0;
    }
    (0.5 + pdf(x) * sum).clamp(0.0, 1.0)
}

/// Lloyd's algorithm on the N(0, 1) density: alternately put the boundaries at the centroids'
/// midpoints and each centroid at its cell's conditional mean
/// E[X | a < X < b] = (φ(a) - φ(b)) / (Φ(b) - Φ(a)), until nothing moves.
fn lloyd_max(levels: usize) -> Codebook {
    let mut c: Vec<f64> = (0..levels)
        .map(|i| -3.0 + 6.0 * (i as f64 + 0.5) / levels as f64)
        .collect();
    let bounds = |c: &[f64]| -> Vec<f64> {
        std::iter::once(f64::NEG_INFINITY)
            .chain(c.windows(2).map(|w| 0.5 * (w[0] + w[1])))
            .chain(std::iter::once(f64::INFINITY))
            .collect()
    };
    let phi = |x: f64| if x.is_finite() { pdf(x) } else { 0.0 };
    for _ in 0..100_000 {
        let b = bounds(&c);
        let mut moved = 0f64;
        for i in 0..levels {
            let mass = cdf(b[i + 1]) - cdf(b[i]);
            let mean = (phi(b[i]) - phi(b[i + 1])) / mass;
            moved = moved.max((mean - c[i]).abs());
            c[i] = mean;
        }
        if moved < 1e-13 {
            break;
        }
    }
    // E[(X - c)²] over each cell = ∫ x² - 2c ∫ x + c² ∫ 1, with ∫_a^b x² φ = [Φ - xφ]_a^b.
    let b = bounds(&c);
    let xphi = |x: f64| if x.is_finite() { x * pdf(x) } else { 0.0 };
    let mse = (0..levels)
        .map(|i| {
            let (lo, hi) = (b[i], b[i + 1]);
            let mass = cdf(hi) - cdf(lo);
            let first = phi(lo) - phi(hi);
            let second = mass - (xphi(hi) - xphi(lo));
            second - 2.0 * c[i] * first + c[i] * c[i] * mass
        })
        .sum();
    Codebook {
        centroids: c.iter().map(|&x| x as f32).collect(),
        boundaries: b[1..levels].iter().map(|&x| x as f32).collect(),
        mse,
    }
}

fn codebook(coord_bits: usize) -> &'static Codebook {
    static BOOKS: [OnceLock<Codebook>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match coord_bits {
        1 => 0,
        2 => 1,
        _ => 2,
    };
    BOOKS[slot].get_or_init(|| lloyd_max(1 << coord_bits))
}

/// The random orthogonal transform: `ROUNDS` times (sign flips, permutation, normalised
/// Walsh–Hadamard transform on each power-of-two block).
#[derive(Debug, Clone)]
struct Rotation {
    /// (start, length) of the power-of-two blocks covering the padded length, largest first.
    blocks: Vec<(usize, usize)>,
    signs: Vec<Vec<f32>>,
    /// `perms[r][i]`: the coordinate that lands at `i` in round `r`.
    perms: Vec<Vec<u32>>,
}

/// In-place Walsh–Hadamard transform scaled to be orthogonal (its own inverse).
fn wht(x: &mut [f32]) {
    let n = x.len();
    debug_assert!(n.is_power_of_two());
    let mut h = 1;
    while h < n {
        for block in x.chunks_exact_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                let (u, v) = (*a, *b);
                *a = u + v;
                *b = u - v;
            }
        }
        h *= 2;
    }
    let scale = 1.0 / (n as f32).sqrt();
    x.iter_mut().for_each(|v| *v *= scale);
}

impl Rotation {
    fn new(n: usize, seed: u64) -> Rotation {
        let mut blocks = Vec::new();
        let mut start = 0;
        while start < n {
            let len = 1usize << (n - start).ilog2();
            blocks.push((start, len));
            start += len;
        }
        let mut rng = Rng::new(seed);
        let mut signs = Vec::with_capacity(ROUNDS);
        let mut perms = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            signs.push(
                (0..n)
                    .map(|_| if rng.next_u64() >> 63 == 0 { 1.0 } else { -1.0 })
                    .collect(),
            );
            let mut p: Vec<u32> = (0..n as u32).collect();
            for i in (1..n).rev() {
                p.swap(i, rng.below(i + 1));
            }
            perms.push(p);
        }
        Rotation { blocks, signs, perms }
    }

    fn apply(&self, x: &mut [f32]) {
        let mut y = vec![0f32; x.len()];
        for (signs, perm) in self.signs.iter().zip(&self.perms) {
            for (v, s) in x.iter_mut().zip(signs) {
                *v *= s;
            }
            for (out, &from) in y.iter_mut().zip(perm) {
                *out = x[from as usize];
            }
            for &(start, len) in &self.blocks {
                wht(&mut y[start..start + len]);
            }
            x.copy_from_slice(&y);
        }
    }

    fn invert(&self, x: &mut [f32]) {
        let mut y = vec![0f32; x.len()];
        for (signs, perm) in self.signs.iter().zip(&self.perms).rev() {
            for &(start, len) in &self.blocks {
                wht(&mut x[start..start + len]);
            }
            for (&v, &to) in x.iter().zip(perm) {
                y[to as usize] = v;
            }
            for ((out, v), s) in x.iter_mut().zip(&y).zip(signs) {
                *out = v * s;
            }
        }
    }

    fn memory(&self) -> usize {
        self.signs.iter().map(|s| 4 * s.len()).sum::<usize>()
            + self.perms.iter().map(|p| 4 * p.len()).sum::<usize>()
            + 16 * self.blocks.len()
    }
}

/// A TurboQuant code: its metric, dimension, bit width and rotation seed.
#[derive(Debug, Clone)]
pub struct TurboCode {
    metric: Metric,
    dim: usize,
    bits: TurboBits,
    seed: u64,
    /// Rotated, quantized coordinates.
    padded: usize,
    /// u32 words of packed indices, before the scale (and, for L2, the norm).
    data_words: usize,
    rotation: Rotation,
    book: &'static Codebook,
    /// `pair[(x << 4) | y]`: the dot product of the centroids two nibbles `x` and `y` stand for.
    pair: Box<[f32; 256]>,
    /// AVX2 and FMA available: 2- and 4-bit codes are decoded to f32 in registers.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    simd: bool,
}

/// A query prepared for a TurboQuant code.
#[derive(Debug, Clone)]
pub struct TurboQuery {
    /// 16 entries per code nibble: the rotated query's partial dot with each nibble value
    /// (empty when the SIMD path scores against `rotated` instead).
    lut: Vec<f32>,
    /// The rotated, padded query.
    rotated: Vec<f32>,
    /// |q|² (for L2).
    norm_sq: f32,
    /// The query as given (for L1, scored against the decoded vector).
    original: Vec<f32>,
}

impl TurboCode {
    /// A code for `dim`-dimensional vectors under `metric` with the default rotation seed.
    pub fn new(metric: Metric, dim: usize, bits: TurboBits) -> Result<TurboCode> {
        Self::with_seed(metric, dim, bits, DEFAULT_SEED)
    }

    /// As `new`, with the rotation drawn from `seed`.
    pub fn with_seed(metric: Metric, dim: usize, bits: TurboBits, seed: u64) -> Result<TurboCode> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::Params(format!("turbo code dimension {dim}")));
        }
        let padded = bits.padded(dim);
        let coord_bits = bits.coord_bits();
        let book = codebook(coord_bits);
        let per_nibble = 4 / coord_bits;
        let mask = (1usize << coord_bits) - 1;
        let mut pair = Box::new([0f32; 256]);
        for (xy, p) in pair.iter_mut().enumerate() {
            let (x, y) = (xy >> 4, xy & 15);
            *p = (0..per_nibble)
                .map(|t| {
                    let cx = book.centroids[(x >> (coord_bits * t)) & mask];
                    let cy = book.centroids[(y >> (coord_bits * t)) & mask];
                    cx * cy
                })
                .sum();
        }
        Ok(TurboCode {
            metric,
            dim,
            bits,
            seed,
            padded,
            data_words: padded * coord_bits / 32,
            rotation: Rotation::new(padded, seed),
            book,
            pair,
            simd: simd::available() && coord_bits > 1,
        })
    }

    pub fn bits(&self) -> TurboBits {
        self.bits
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Coordinates the rotated vector is padded to (all quantized).
    pub fn padded_dim(&self) -> usize {
        self.padded
    }

    /// The parameters, for the saved index: magic, metric, bits, dimension and seed (18 bytes;
    /// the rotation and codebook are rebuilt from them).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(BYTES);
        b.extend_from_slice(MAGIC);
        b.push(self.metric.code());
        b.push(self.bits.tag());
        b.extend_from_slice(&(self.dim as u32).to_le_bytes());
        b.extend_from_slice(&self.seed.to_le_bytes());
        b
    }

    /// Reads what `to_bytes` wrote; anything else is `Error::Format`.
    pub fn from_bytes(b: &[u8]) -> Result<TurboCode> {
        let bad = |what: &str| Error::Format(format!("turbo code parameters: {what}"));
        if b.len() != BYTES || &b[..4] != MAGIC {
            return Err(bad("not a turbo code"));
        }
        let metric = Metric::from_code(b[4]).ok_or_else(|| bad("unknown metric"))?;
        let bits = TurboBits::from_tag(b[5]).ok_or_else(|| bad("unknown bit width"))?;
        let dim = u32::from_le_bytes(b[6..10].try_into().expect("4 bytes")) as usize;
        let seed = u64::from_le_bytes(b[10..18].try_into().expect("8 bytes"));
        Self::with_seed(metric, dim, bits, seed).map_err(|_| bad("bad dimension"))
    }

    fn scale_of(&self, code: &[u32]) -> f32 {
        f32::from_bits(code[self.data_words])
    }

    fn norm_of(&self, code: &[u32]) -> f32 {
        f32::from_bits(code[self.data_words + 1])
    }

    /// Centroid index of rotated coordinate `i`.
    fn index(&self, code: &[u32], i: usize) -> usize {
        let b = self.bits.coord_bits();
        let at = i * b;
        ((code[at / 32] >> (at % 32)) & ((1 << b) - 1)) as usize
    }

    /// The code's vector in the rotated space (`scale · centroids`).
    fn rotated(&self, code: &[u32]) -> Vec<f32> {
        let s = self.scale_of(code);
        (0..self.padded)
            .map(|i| s * self.book.centroids[self.index(code, i)])
            .collect()
    }

    /// The rotated query's dot with the code's centroids.
    fn query_dot(&self, q: &TurboQuery, code: &[u32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            let (c, n) = (&self.book.centroids, self.data_words);
            // SAFETY: `simd` is only set after AVX2 and FMA were detected at run time.
            return unsafe {
                if self.bits.coord_bits() == 4 {
                    simd::query_dot4(c, &q.rotated, &code[..n])
                } else {
                    simd::query_dot2(c, &q.rotated, &code[..n])
                }
            };
        }
        self.lut_dot(&q.lut, code)
    }

    /// Σ over the code's nibbles of `q.lut`: the rotated query's dot with the centroids.
    fn lut_dot(&self, lut: &[f32], code: &[u32]) -> f32 {
        let mut acc = [0f32; 4];
        for (&w, t) in code[..self.data_words].iter().zip(lut.chunks_exact(128)) {
            let t: &[f32; 128] = t.try_into().expect("128 entries per word");
            acc[0] += t[(w & 15) as usize] + t[64 + ((w >> 16) & 15) as usize];
            acc[1] += t[16 + ((w >> 4) & 15) as usize] + t[80 + ((w >> 20) & 15) as usize];
            acc[2] += t[32 + ((w >> 8) & 15) as usize] + t[96 + ((w >> 24) & 15) as usize];
            acc[3] += t[48 + ((w >> 12) & 15) as usize] + t[112 + (w >> 28) as usize];
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    }

    /// The dot product of two codes' centroid vectors (before their scales).
    fn centroid_dot(&self, a: &[u32], b: &[u32]) -> f32 {
        let (a, b) = (&a[..self.data_words], &b[..self.data_words]);
        if self.bits.coord_bits() == 1 {
            // ±c per coordinate: the dot is c² · (agreements - disagreements).
            let differ: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
            let c = self.book.centroids[1];
            return c * c * (self.padded as f32 - 2.0 * differ as f32);
        }
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            let c = &self.book.centroids;
            // SAFETY: `simd` is only set after AVX2 and FMA were detected at run time.
            return unsafe {
                if self.bits.coord_bits() == 4 {
                    simd::code_dot4(c, a, b)
                } else {
                    simd::code_dot2(c, a, b)
                }
            };
        }
        let mut acc = [0f32; 4];
        for (&x, &y) in a.iter().zip(b) {
            for (k, acc) in acc.iter_mut().enumerate() {
                let lo = ((x >> (8 * k)) & 15) << 4 | ((y >> (8 * k)) & 15);
                let hi = ((x >> (8 * k + 4)) & 15) << 4 | ((y >> (8 * k + 4)) & 15);
                *acc += self.pair[lo as usize] + self.pair[hi as usize];
            }
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    }
}

impl Code for TurboCode {
    type Query = TurboQuery;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn words(&self) -> usize {
        self.data_words
            + match self.metric {
                Metric::L2sq => 2,
                Metric::InnerProduct | Metric::L1 => 1,
            }
    }

    fn encode(&self, v: &[f32], out: &mut [u32]) {
        debug_assert_eq!(v.len(), self.dim);
        let mut x = vec![0f32; self.padded];
        x[..self.dim].copy_from_slice(v);
        self.rotation.apply(&mut x);
        let norm = x.iter().map(|&a| a as f64 * a as f64).sum::<f64>().sqrt();
        let rescale = if norm > 0.0 && norm.is_finite() {
            (self.padded as f64).sqrt() / norm
        } else {
            0.0
        };
        let b = self.bits.coord_bits();
        out[..self.data_words].fill(0);
        let (mut vc, mut cc) = (0f64, 0f64);
        for (i, &xi) in x.iter().enumerate() {
            let y = (xi as f64 * rescale) as f32;
            let idx = self.book.boundaries.partition_point(|&bd| y > bd);
            let c = self.book.centroids[idx] as f64;
            vc += xi as f64 * c;
            cc += c * c;
            out[i * b / 32] |= (idx as u32) << (i * b % 32);
        }
        // Least-squares scale: the multiple of the centroid vector nearest the rotated vector.
        // (Qdrant renormalises to `|v| / |c|` instead; on the tests' data the least-squares
        // scale gave the same error and slightly better recall.)
        let scale = if rescale > 0.0 { vc / cc } else { 0.0 };
        out[self.data_words] = (scale as f32).to_bits();
        if self.metric == Metric::L2sq {
            out[self.data_words + 1] = (norm as f32).to_bits();
        }
    }

    fn prepare(&self, q: &[f32]) -> TurboQuery {
        debug_assert_eq!(q.len(), self.dim);
        let mut x = vec![0f32; self.padded];
        x[..self.dim].copy_from_slice(q);
        self.rotation.apply(&mut x);
        let b = self.bits.coord_bits();
        let per_nibble = 4 / b;
        let mask = (1usize << b) - 1;
        let mut lut = Vec::new();
        if !self.simd {
            lut.reserve(x.len() / per_nibble * 16);
            for coords in x.chunks_exact(per_nibble) {
                lut.extend((0..16).map(|v| {
                    coords
                        .iter()
                        .enumerate()
                        .map(|(t, &c)| c * self.book.centroids[(v >> (b * t)) & mask])
                        .sum::<f32>()
                }));
            }
        }
        TurboQuery {
            lut,
            rotated: x,
            norm_sq: q.iter().map(|a| a * a).sum(),
            original: if self.metric == Metric::L1 {
                q.to_vec()
            } else {
                Vec::new()
            },
        }
    }

    fn distance(&self, q: &TurboQuery, code: &[u32]) -> f32 {
        match self.metric {
            Metric::InnerProduct => 1.0 - self.scale_of(code) * self.query_dot(q, code),
            Metric::L2sq => {
                let n = self.norm_of(code);
                q.norm_sq + n * n - 2.0 * self.scale_of(code) * self.query_dot(q, code)
            }
            Metric::L1 => {
                let v = self.decode(code);
                q.original.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum()
            }
        }
    }

    fn distance_codes(&self, a: &[u32], b: &[u32]) -> f32 {
        match self.metric {
            Metric::InnerProduct => 1.0 - self.scale_of(a) * self.scale_of(b) * self.centroid_dot(a, b),
            Metric::L2sq => {
                let (na, nb) = (self.norm_of(a), self.norm_of(b));
                na * na + nb * nb - 2.0 * self.scale_of(a) * self.scale_of(b) * self.centroid_dot(a, b)
            }
            Metric::L1 => {
                // The rotation is linear: one inverse rotation of the difference.
                let mut d = self.rotated(a);
                for (x, y) in d.iter_mut().zip(self.rotated(b)) {
                    *x -= y;
                }
                self.rotation.invert(&mut d);
                d[..self.dim].iter().map(|x| x.abs()).sum()
            }
        }
    }

    fn decode(&self, code: &[u32]) -> Vec<f32> {
        let mut v = self.rotated(code);
        self.rotation.invert(&mut v);
        v.truncate(self.dim);
        v
    }

    fn params_memory(&self) -> usize {
        self.rotation.memory()
            + std::mem::size_of::<[f32; 256]>()
            + 8 * (self.book.centroids.len() + self.book.boundaries.len())
    }
}

/// AVX2 kernels for 2- and 4-bit codes: eight indices at a time are shifted into the eight
/// lanes of a register and looked up in the codebook held in registers
/// (`_mm256_permutevar8x32_ps`), giving the exact f32 centroids, which are then multiplied with
/// the query (or the other code's centroids) by FMA.
mod simd {
    pub(super) fn available() -> bool {
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
    pub(super) use x86::*;

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::arch::x86_64::*;

        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn sum(v: __m256) -> f32 {
            let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
            _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)))
        }

        /// The 16 centroids of a 4-bit codebook as two registers, and the decoder of the eight
        /// 4-bit indices of one word.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn decode4(lo: __m256, hi: __m256, shifts: __m256i, w: u32) -> __m256 {
            let idx = _mm256_and_si256(
                _mm256_srlv_epi32(_mm256_set1_epi32(w as i32), shifts),
                _mm256_set1_epi32(15),
            );
            // Bit 3 of the index picks the upper half: move it to the sign bit for blendv.
            let upper = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
            _mm256_blendv_ps(
                _mm256_permutevar8x32_ps(lo, idx),
                _mm256_permutevar8x32_ps(hi, idx),
                upper,
            )
        }

        /// Eight 2-bit indices (16 bits of `w` from `shifts`) to their centroids.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn decode2(book: __m256, shifts: __m256i, w: u32) -> __m256 {
            let idx = _mm256_and_si256(
                _mm256_srlv_epi32(_mm256_set1_epi32(w as i32), shifts),
                _mm256_set1_epi32(3),
            );
            _mm256_permutevar8x32_ps(book, idx)
        }

        const SHIFTS4: [i32; 8] = [0, 4, 8, 12, 16, 20, 24, 28];
        const SHIFTS2_LO: [i32; 8] = [0, 2, 4, 6, 8, 10, 12, 14];
        const SHIFTS2_HI: [i32; 8] = [16, 18, 20, 22, 24, 26, 28, 30];

        /// Σ q[i] · c[index i] over a 4-bit code (`q.len() == 8 * code.len()`).
        #[target_feature(enable = "avx2,fma")]
        pub(in super::super) unsafe fn query_dot4(c: &[f32], q: &[f32], code: &[u32]) -> f32 {
            assert!(c.len() == 16 && q.len() == 8 * code.len());
            let (lo, hi) = (_mm256_loadu_ps(c.as_ptr()), _mm256_loadu_ps(c.as_ptr().add(8)));
            let shifts = _mm256_loadu_si256(SHIFTS4.as_ptr().cast());
            let mut acc = [_mm256_setzero_ps(); 2];
            for (i, &w) in code.iter().enumerate() {
                let x = decode4(lo, hi, shifts, w);
                acc[i & 1] = _mm256_fmadd_ps(x, _mm256_loadu_ps(q.as_ptr().add(8 * i)), acc[i & 1]);
            }
            sum(_mm256_add_ps(acc[0], acc[1]))
        }

        /// Σ c[a_i] · c[b_i] over two 4-bit codes.
        #[target_feature(enable = "avx2,fma")]
        pub(in super::super) unsafe fn code_dot4(c: &[f32], a: &[u32], b: &[u32]) -> f32 {
            assert!(c.len() == 16 && a.len() == b.len());
            let (lo, hi) = (_mm256_loadu_ps(c.as_ptr()), _mm256_loadu_ps(c.as_ptr().add(8)));
            let shifts = _mm256_loadu_si256(SHIFTS4.as_ptr().cast());
            let mut acc = [_mm256_setzero_ps(); 2];
            for (i, (&wa, &wb)) in a.iter().zip(b).enumerate() {
                let x = decode4(lo, hi, shifts, wa);
                let y = decode4(lo, hi, shifts, wb);
                acc[i & 1] = _mm256_fmadd_ps(x, y, acc[i & 1]);
            }
            sum(_mm256_add_ps(acc[0], acc[1]))
        }

        /// Σ q[i] · c[index i] over a 2-bit code (`q.len() == 16 * code.len()`).
        #[target_feature(enable = "avx2,fma")]
        pub(in super::super) unsafe fn query_dot2(c: &[f32], q: &[f32], code: &[u32]) -> f32 {
            assert!(c.len() == 4 && q.len() == 16 * code.len());
            let book = _mm256_setr_ps(c[0], c[1], c[2], c[3], c[0], c[1], c[2], c[3]);
            let lo_shifts = _mm256_loadu_si256(SHIFTS2_LO.as_ptr().cast());
            let hi_shifts = _mm256_loadu_si256(SHIFTS2_HI.as_ptr().cast());
            let mut acc = [_mm256_setzero_ps(); 2];
            for (i, &w) in code.iter().enumerate() {
                let p = q.as_ptr().add(16 * i);
                let x = decode2(book, lo_shifts, w);
                acc[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(p), acc[0]);
                let x = decode2(book, hi_shifts, w);
                acc[1] = _mm256_fmadd_ps(x, _mm256_loadu_ps(p.add(8)), acc[1]);
            }
            sum(_mm256_add_ps(acc[0], acc[1]))
        }

        /// Σ c[a_i] · c[b_i] over two 2-bit codes.
        #[target_feature(enable = "avx2,fma")]
        pub(in super::super) unsafe fn code_dot2(c: &[f32], a: &[u32], b: &[u32]) -> f32 {
            assert!(c.len() == 4 && a.len() == b.len());
            let book = _mm256_setr_ps(c[0], c[1], c[2], c[3], c[0], c[1], c[2], c[3]);
            let lo_shifts = _mm256_loadu_si256(SHIFTS2_LO.as_ptr().cast());
            let hi_shifts = _mm256_loadu_si256(SHIFTS2_HI.as_ptr().cast());
            let mut acc = [_mm256_setzero_ps(); 2];
            for (&wa, &wb) in a.iter().zip(b) {
                let (x, y) = (decode2(book, lo_shifts, wa), decode2(book, lo_shifts, wb));
                acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
                let (x, y) = (decode2(book, hi_shifts, wa), decode2(book, hi_shifts, wb));
                acc[1] = _mm256_fmadd_ps(x, y, acc[1]);
            }
            sum(_mm256_add_ps(acc[0], acc[1]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::kmeans::test_data::*;
    use super::*;

    #[test]
    fn normal_cdf_and_lloyd_max_codebooks() {
        for (x, want) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_542_9),
            (-1.96, 0.024_997_895_148_220_43),
            (3.0, 0.998_650_101_968_369_9),
            (-6.0, 9.865_876_450_377e-10),
        ] {
            assert!((cdf(x) - want).abs() < 1e-13, "Φ({x}) = {} vs {want}", cdf(x));
        }
        // Max (1960), "Quantizing for minimum distortion", table I.
        let b1 = codebook(1);
        assert!((b1.centroids[1] as f64 - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-6);
        assert!((b1.mse - 0.3634).abs() < 1e-4, "{}", b1.mse);
        let b2 = codebook(2);
        for (got, want) in b2.centroids.iter().zip([-1.5104, -0.4528, 0.4528, 1.5104]) {
            assert!((got - want).abs() < 1e-4, "{:?}", b2.centroids);
        }
        assert!((b2.boundaries[2] - 0.9816).abs() < 1e-4);
        assert!((b2.mse - 0.1175).abs() < 1e-4, "{}", b2.mse);
        let b4 = codebook(4);
        let max4 = [0.1284, 0.3881, 0.6568, 0.9424, 1.2562, 1.6180, 2.0690, 2.7326];
        for (got, want) in b4.centroids[8..].iter().zip(max4) {
            assert!((*got as f64 - want).abs() < 2e-4, "{:?}", b4.centroids);
        }
        assert!((b4.mse - 0.009_497).abs() < 5e-5, "{}", b4.mse);
        assert!(b4.centroids.windows(2).all(|w| w[0] < w[1]));
        assert!((b4.centroids[0] + b4.centroids[15]).abs() < 1e-6);
    }

    #[test]
    fn rotation_is_orthogonal_and_inverts() {
        for n in [8, 64, 96, 104, 192, 1536] {
            let r = Rotation::new(n, 9);
            let mut rng = Rng::new(n as u64);
            let v: Vec<f32> = (0..n).map(|_| rng.gaussian()).collect();
            let mut x = v.clone();
            r.apply(&mut x);
            let (nv, nx): (f32, f32) = (v.iter().map(|a| a * a).sum(), x.iter().map(|a| a * a).sum());
            assert!((nv - nx).abs() < 1e-4 * nv, "n={n}: norm {nv} -> {nx}");
            assert!(v.iter().zip(&x).any(|(a, b)| (a - b).abs() > 0.1));
            r.invert(&mut x);
            for (a, b) in v.iter().zip(&x) {
                assert!((a - b).abs() < 1e-4, "n={n}");
            }
        }
        // A spike spreads over all coordinates.
        let r = Rotation::new(128, 1);
        let mut x = vec![0f32; 128];
        x[5] = 1.0;
        r.apply(&mut x);
        assert!(x.iter().all(|a| a.abs() < 0.4), "{x:?}");
        assert!(x.iter().filter(|a| a.abs() > 1e-6).count() >= 64, "{x:?}");
    }

    #[test]
    fn words_and_parameters() {
        let t = TurboCode::new(Metric::InnerProduct, 128, TurboBits::Bits4).unwrap();
        assert_eq!(t.words(), 16 + 1); // 64 bytes of indices + the scale
        let t = TurboCode::new(Metric::L2sq, 128, TurboBits::Bits4).unwrap();
        assert_eq!(t.words(), 16 + 2); // + the norm
        let t = TurboCode::new(Metric::InnerProduct, 128, TurboBits::Bits2).unwrap();
        assert_eq!(t.words(), 8 + 1);
        let t = TurboCode::new(Metric::InnerProduct, 128, TurboBits::Bits1).unwrap();
        assert_eq!(t.words(), 4 + 1);
        let t = TurboCode::new(Metric::InnerProduct, 128, TurboBits::Bits1_5).unwrap();
        assert_eq!((t.padded_dim(), t.words()), (192, 6 + 1));
        let t = TurboCode::new(Metric::L1, 100, TurboBits::Bits2).unwrap();
        assert_eq!((t.padded_dim(), t.words()), (112, 7 + 1));
        assert!(t.params_memory() > 0);
        for dim in [0, MAX_DIM + 1] {
            assert!(matches!(
                TurboCode::new(Metric::L2sq, dim, TurboBits::Bits2),
                Err(Error::Params(_))
            ));
        }
    }

    #[test]
    fn table_distances_match_the_decoded_vectors() {
        let data = gaussian(200, 100, false, 5);
        for bits in [TurboBits::Bits1, TurboBits::Bits1_5, TurboBits::Bits2, TurboBits::Bits4] {
            for metric in [Metric::L2sq, Metric::InnerProduct, Metric::L1] {
                let t = TurboCode::new(metric, 100, bits).unwrap();
                let codes = encode_all(&t, &data);
                let w = t.words();
                let p = t.prepare(&data[0]);
                for c in codes.chunks_exact(w).take(30) {
                    let decoded = t.decode(c);
                    // Distances to the decoded vector, except that L2 uses the exact norm of
                    // the encoded vector where the decoded one is slightly shorter.
                    let want = match metric {
                        Metric::L2sq => {
                            let n = t.norm_of(c);
                            let dot: f32 = data[0].iter().zip(&decoded).map(|(a, b)| a * b).sum();
                            p.norm_sq + n * n - 2.0 * dot
                        }
                        _ => exact(metric, &data[0], &decoded),
                    };
                    let got = t.distance(&p, c);
                    let tol = 1e-3 * want.abs().max(1.0);
                    assert!((got - want).abs() < tol, "{bits:?} {metric:?}: {got} {want}");
                    let first = &codes[..w];
                    // Two codes are compared in the rotated space, padding included (only L1
                    // rotates back and drops the padding).
                    let (ra, rb) = (t.rotated(first), t.rotated(c));
                    let dot: f32 = ra.iter().zip(&rb).map(|(a, b)| a * b).sum();
                    let want = match metric {
                        Metric::L2sq => {
                            let (na, nb) = (t.norm_of(first), t.norm_of(c));
                            na * na + nb * nb - 2.0 * dot
                        }
                        Metric::InnerProduct => 1.0 - dot,
                        Metric::L1 => exact(metric, &t.decode(first), &decoded),
                    };
                    let got = t.distance_codes(first, c);
                    let tol = 1e-3 * want.abs().max(1.0);
                    assert!((got - want).abs() < tol, "{bits:?} {metric:?}: {got} {want}");
                }
            }
        }
    }

    #[test]
    fn portable_and_simd_paths_agree() {
        let data = gaussian(100, 72, false, 6);
        for bits in [TurboBits::Bits2, TurboBits::Bits4] {
            for metric in [Metric::L2sq, Metric::InnerProduct] {
                let t = TurboCode::new(metric, 72, bits).unwrap();
                let mut portable = t.clone();
                portable.simd = false;
                let codes = encode_all(&t, &data);
                let w = t.words();
                let (p, pp) = (t.prepare(&data[1]), portable.prepare(&data[1]));
                for c in codes.chunks_exact(w) {
                    let (a, b) = (t.distance(&p, c), portable.distance(&pp, c));
                    assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{bits:?}: {a} {b}");
                    let (a, b) = (
                        t.distance_codes(&codes[..w], c),
                        portable.distance_codes(&codes[..w], c),
                    );
                    assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{bits:?}: {a} {b}");
                }
            }
        }
    }

    #[test]
    fn zero_and_tiny_vectors() {
        let t = TurboCode::new(Metric::InnerProduct, 64, TurboBits::Bits2).unwrap();
        let mut code = vec![0u32; t.words()];
        t.encode(&[0.0; 64], &mut code);
        assert_eq!(t.decode(&code), vec![0.0; 64]);
        let q = t.prepare(&[0.125; 64]);
        assert_eq!(t.distance(&q, &code), 1.0);
    }

    /// Mean relative distance error and recall@10 at oversampling x1, x2, x4, x8; printed
    /// (`--nocapture`).
    fn measure(
        name: &str,
        metric: Metric,
        bits: TurboBits,
        data: &[Vec<f32>],
        queries: &[Vec<f32>],
    ) -> (f64, [f64; 4]) {
        let dim = data[0].len();
        let t = TurboCode::new(metric, dim, bits).unwrap();
        let codes = encode_all(&t, data);
        let (err, scale) = mean_error(&t, &codes, data, &queries[..20]);
        let r = [1, 2, 4, 8].map(|o| recall(&t, &codes, data, queries, 10, o));
        println!(
            "turbo {name} {metric:?} {bits:?} dim {dim}: mean |err| {err:.4} (mean |d| \
             {scale:.3}, rel {:.4}), recall@10 at x1 x2 x4 x8 {r:.3?}",
            err / scale
        );
        (err / scale, r)
    }

    #[test]
    fn accuracy_and_recall() {
        use TurboBits::*;
        // Normalised i.i.d. Gaussian vectors, dim 128, inner product: the hard case, where
        // nothing but the quantization noise separates the neighbours.
        let data = gaussian(5000, 128, true, 10);
        let queries = gaussian(100, 128, true, 11);
        let (rel, r) = measure("iid", Metric::InnerProduct, Bits4, &data, &queries);
        assert!(rel < 0.01 && r[2] >= 0.98, "{rel} {r:?}");
        let (rel, r) = measure("iid", Metric::InnerProduct, Bits2, &data, &queries);
        // 2 bits: ~0.91 at x4 here; 0.95 needs x8.
        assert!(rel < 0.03 && r[2] >= 0.88 && r[3] >= 0.95, "{rel} {r:?}");
        let (rel, r) = measure("iid", Metric::InnerProduct, Bits1_5, &data, &queries);
        assert!(rel < 0.045 && r[2] >= 0.6, "{rel} {r:?}");
        let (rel, r) = measure("iid", Metric::InnerProduct, Bits1, &data, &queries);
        assert!(rel < 0.05 && r[2] >= 0.5, "{rel} {r:?}");

        // Normalised vectors with 32 intrinsic dimensions in 128, like embeddings.
        let data = low_rank(5000, 128, 32, 0.1, 16);
        let queries = low_rank(100, 128, 32, 0.1, 17);
        for (bits, want) in [(Bits4, 0.99), (Bits2, 0.95), (Bits1_5, 0.9), (Bits1, 0.85)] {
            let (_, r) = measure("low-rank", Metric::InnerProduct, bits, &data, &queries);
            assert!(r[2] >= want, "{bits:?}: {r:?}");
        }

        // Clustered, non-normalised (norms 0.5..2), L2, dim 96.
        let data = clustered(5000, 96, 50, 0.6, false, 12);
        let queries = clustered(100, 96, 50, 0.6, false, 13);
        for (bits, want) in [(Bits4, 0.99), (Bits2, 0.93), (Bits1_5, 0.75), (Bits1, 0.65)] {
            let (rel, r) = measure("clustered", Metric::L2sq, bits, &data, &queries);
            assert!(rel < 0.05 && r[2] >= want, "{bits:?}: {rel} {r:?}");
        }

        // L1 scores through decoding: slow, so a smaller set.
        let (rel, r) = measure("clustered", Metric::L1, Bits4, &data[..1000], &queries[..30]);
        assert!(rel < 0.02 && r[2] >= 0.95, "{rel} {r:?}");
    }

    #[test]
    fn bytes_round_trip_and_corruption() {
        let data = gaussian(300, 80, false, 20);
        for metric in [Metric::L2sq, Metric::InnerProduct] {
            let t = TurboCode::new(metric, 80, TurboBits::Bits1_5).unwrap();
            let bytes = t.to_bytes();
            assert_eq!(bytes.len(), BYTES);
            let back = TurboCode::from_bytes(&bytes).unwrap();
            assert_eq!(
                (back.dim(), back.metric(), back.bits(), back.seed(), back.words()),
                (80, metric, TurboBits::Bits1_5, t.seed(), t.words())
            );
            let codes = encode_all(&t, &data);
            assert_eq!(codes, encode_all(&back, &data));
            let (p, pb) = (t.prepare(&data[3]), back.prepare(&data[3]));
            let w = t.words();
            for c in codes.chunks_exact(w) {
                assert_eq!(t.distance(&p, c), back.distance(&pb, c));
                assert_eq!(t.distance_codes(&codes[..w], c), back.distance_codes(&codes[..w], c));
            }
            // Another seed is another rotation.
            let other = TurboCode::with_seed(metric, 80, TurboBits::Bits1_5, 1).unwrap();
            assert_ne!(codes, encode_all(&other, &data));
            assert_eq!(TurboCode::from_bytes(&other.to_bytes()).unwrap().seed(), 1);

            let is_format = |b: &[u8]| matches!(TurboCode::from_bytes(b), Err(Error::Format(_)));
            assert!(is_format(&bytes[..BYTES - 1]));
            assert!(is_format(&[bytes.as_slice(), &[0]].concat()));
            assert!(is_format(&[]));
            for (at, value) in [(0, b'X'), (4, 9), (5, 3), (6, 0), (7, 0)] {
                let mut b = bytes.clone();
                b[at] = value;
                if at == 7 {
                    b[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
                }
                assert!(is_format(&b), "byte {at} = {value}");
            }
        }
    }

    #[test]
    fn distance_speed() {
        let data = gaussian(2000, 128, true, 30);
        let base = f32_distances_per_second(Metric::InnerProduct, &data, 50);
        println!("exact f32 dim 128: {:.1} M distances/s", base / 1e6);
        for bits in [TurboBits::Bits1, TurboBits::Bits1_5, TurboBits::Bits2, TurboBits::Bits4] {
            let t = TurboCode::new(Metric::InnerProduct, 128, bits).unwrap();
            let codes = encode_all(&t, &data).repeat(50);
            let per_s = distances_per_second(&t, &codes, &data[0]);
            let sym = code_distances_per_second(&t, &codes);
            println!(
                "turbo {bits:?} dim 128: {:.1} M distances/s (query tables), {:.1} M/s code to code",
                per_s / 1e6,
                sym / 1e6
            );
            assert!(per_s > 2e6 && sym > 2e6, "{bits:?}: {per_s} {sym}");
        }
        // L1 decodes (inverse rotation) per distance.
        let t = TurboCode::new(Metric::L1, 128, TurboBits::Bits4).unwrap();
        let codes = encode_all(&t, &data);
        let per_s = distances_per_second(&t, &codes, &data[0]);
        println!("turbo L1 Bits4 dim 128: {:.2} M distances/s", per_s / 1e6);
        assert!(per_s > 1e4, "{per_s}");
    }
}
