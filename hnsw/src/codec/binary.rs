//! `BinaryCode`: binary quantization, a few bits per dimension compared with XOR and popcount.
//!
//! Encodings (the stored bits, one bit string per vector, padded to 64-bit words):
//!
//! * `OneBit`: bit i is set when value i is positive. `dim` bits.
//! * `TwoBits`: each dimension takes one of three levels from the sample's mean and standard
//!   deviation of that dimension: z = (x - mean) / sd below -2/3, within ±2/3, above 2/3. The
//!   level is written as thermometer bits, `b1` (z > -2/3) at bit i and `b2` (z ≥ 2/3) at bit
//!   dim + i, so the Hamming distance of two codes is Σ |level a - level b|. `2·dim` bits.
//! * `OneAndHalfBits`: `b1` as for two bits, but the `b2` bits of dimensions 2j and 2j + 1 are
//!   OR-ed into bit dim + j. `dim + ⌈dim/2⌉` bits.
//!
//! (A dimension whose sample deviation is 0 falls back to its sign: `b1` = x > 0, `b2` unset.)
//!
//! Queries (`BinaryQueryEncoding`):
//!
//! * `Default` / `Binary`: the query gets the same bits; the disagreement x is the Hamming
//!   distance.
//! * `Scalar4Bits` / `Scalar8Bits`: the query, extended to the code's bit positions (`[q, q]` for
//!   two bits, `[q, max of pairs]` for one and a half), is quantized to B bits over
//!   [-max |q|, max |q|] and kept as B bit planes per 64-bit word. Scoring a stored bit s against
//!   a query level l counts l when s = 0 and (2^B - 1) - l when s = 1, i.e. Σ_b popcount(code ^
//!   plane_b) << b, and x is that sum over 2^B - 1: a disagreement where a query value near zero
//!   counts about half whatever the stored bit.
//!
//! The distance is x scaled to the metric: 2·x / bits for InnerProduct (1 minus the normalised
//! agreement, 0..2 like 1 - cos for normalised vectors); for L2sq and L1 x times the ratio of the
//! exact distance to x over pairs of the training sample, so it is monotone in the Hamming
//! distance and of the right magnitude.
//!
//! `decode` gives each dimension the mean of the sample values that got the same bits there.

use super::any::{BinaryEncoding, BinaryQueryEncoding, ParamReader, ParamWriter, Quantization, StoredCode};
use super::Code;
use crate::kernels::Metric;
use crate::{Error, Result};

/// z-scores beyond ±SIGMAS take the outer levels of the two-bit encodings.
const SIGMAS: f32 = 2.0 / 3.0;
/// Sample pairs the L2sq / L1 scale is fitted on.
const SCALE_PAIRS: usize = 1000;

/// Per dimension: the thresholds' statistics and the values each key decodes to.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DimStats {
    mean: f32,
    sd: f32,
    /// Indexed by `BinaryCode::key`.
    decode: [f32; 4],
}

/// Binary quantization.
#[derive(Debug, Clone)]
pub struct BinaryCode {
    dim: usize,
    metric: Metric,
    encoding: BinaryEncoding,
    query_encoding: BinaryQueryEncoding,
    stats: Vec<DimStats>,
    /// Distance per unit of disagreement.
    scale: f32,
    /// Bits of a code.
    bits: usize,
    /// 64-bit words of a code.
    n64: usize,
    /// Bits per query value (1 for a binary query).
    query_bits: u32,
    kernels: Kernels,
}

/// A query as bit planes: `query_bits` u64 planes per 64-bit word of the code.
pub struct BinaryQuery {
    planes: Vec<u64>,
    /// Distance per unit of the planes' score.
    scale: f32,
}

impl BinaryCode {
    /// Trains the per-dimension statistics and the distance scale on `sample` (non-empty, `dim`
    /// finite values each).
    pub fn train(
        dim: usize,
        metric: Metric,
        encoding: BinaryEncoding,
        query_encoding: BinaryQueryEncoding,
        sample: &[&[f32]],
    ) -> Result<Self> {
        if sample.is_empty() {
            return Err(Error::Params("binary quantization needs a sample to train on".into()));
        }
        let n = sample.len() as f64;
        let mut sum = vec![0f64; dim];
        let mut sq = vec![0f64; dim];
        for v in sample {
            for (i, &x) in v.iter().enumerate() {
                sum[i] += x as f64;
                sq[i] += x as f64 * x as f64;
            }
        }
        let stats: Vec<DimStats> = (0..dim)
            .map(|i| {
                let mean = sum[i] / n;
                let var = (sq[i] / n - mean * mean).max(0.0);
                DimStats {
                    mean: mean as f32,
                    sd: var.sqrt() as f32,
                    decode: [0.0; 4],
                }
            })
            .collect();
        let mut code = Self::from_parts(dim, metric, encoding, query_encoding, stats, 1.0)?;
        code.fit_decode(sample);
        code.fit_scale(sample);
        Ok(code)
    }

    fn from_parts(
        dim: usize,
        metric: Metric,
        encoding: BinaryEncoding,
        query_encoding: BinaryQueryEncoding,
        stats: Vec<DimStats>,
        scale: f32,
    ) -> Result<Self> {
        if stats.len() != dim {
            return Err(Error::Params(
                "binary code statistics do not match the dimension".into(),
            ));
        }
        let bits = match encoding {
            BinaryEncoding::OneBit => dim,
            BinaryEncoding::TwoBits => 2 * dim,
            BinaryEncoding::OneAndHalfBits => dim + dim.div_ceil(2),
        };
        let query_bits = match query_encoding {
            BinaryQueryEncoding::Default | BinaryQueryEncoding::Binary => 1,
            BinaryQueryEncoding::Scalar4Bits => 4,
            BinaryQueryEncoding::Scalar8Bits => 8,
        };
        Ok(BinaryCode {
            dim,
            metric,
            encoding,
            query_encoding,
            stats,
            scale,
            bits,
            n64: bits.div_ceil(64),
            query_bits,
            kernels: Kernels::detect(query_bits),
        })
    }

    /// Bits stored per vector.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The (b1, b2) bits of value `x` in dimension `i`.
    #[inline(always)]
    fn levels(&self, i: usize, x: f32) -> (bool, bool) {
        if self.encoding == BinaryEncoding::OneBit {
            return (x > 0.0, false);
        }
        let s = &self.stats[i];
        if s.sd < f32::EPSILON {
            return (x > 0.0, false);
        }
        let z = (x - s.mean) / s.sd;
        (z > -SIGMAS, z >= SIGMAS)
    }

    /// The code's bits as 64-bit words.
    fn bits_of(&self, v: &[f32]) -> Vec<u64> {
        let mut words = vec![0u64; self.n64];
        let mut set = |j: usize| words[j / 64] |= 1 << (j % 64);
        for (i, &x) in v.iter().enumerate().take(self.dim) {
            let (b1, b2) = self.levels(i, x);
            if b1 {
                set(i);
            }
            if b2 {
                match self.encoding {
                    BinaryEncoding::OneBit => {}
                    BinaryEncoding::TwoBits => set(self.dim + i),
                    BinaryEncoding::OneAndHalfBits => set(self.dim + i / 2),
                }
            }
        }
        words
    }

    /// Which of the four decode values dimension `i` of `code` takes: 0 = b1 unset, 1 = b1 set
    /// and its upper bit unset, 2 = both set (two bits), 3 = b1 and the shared upper bit set
    /// (one and a half bits).
    #[inline(always)]
    fn key(&self, code: &[u32], i: usize) -> usize {
        let bit = |j: usize| code[j / 32] >> (j % 32) & 1 == 1;
        if !bit(i) {
            return 0;
        }
        match self.encoding {
            BinaryEncoding::OneBit => 1,
            BinaryEncoding::TwoBits => 1 + bit(self.dim + i) as usize,
            BinaryEncoding::OneAndHalfBits => {
                if bit(self.dim + i / 2) {
                    3
                } else {
                    1
                }
            }
        }
    }

    /// Decode values: the mean of the sample values with each key (a default where none has).
    fn fit_decode(&mut self, sample: &[&[f32]]) {
        let mut sums = vec![[(0f64, 0usize); 4]; self.dim];
        let mut code = vec![0u32; self.words()];
        for v in sample {
            self.encode(v, &mut code);
            for (i, &x) in v.iter().enumerate() {
                let s = &mut sums[i][self.key(&code, i)];
                s.0 += x as f64;
                s.1 += 1;
            }
        }
        for (st, sums) in self.stats.iter_mut().zip(&sums) {
            // Gaussian centroids of the levels: E[z | z > 2/3] ≈ 1.27.
            let spread = if self.encoding == BinaryEncoding::OneBit || st.sd < f32::EPSILON {
                (st.mean.abs() + st.sd).max(f32::EPSILON)
            } else {
                1.27 * st.sd
            };
            let defaults = [st.mean - spread, st.mean, st.mean + spread, st.mean + 0.6 * st.sd];
            let defaults = if self.encoding == BinaryEncoding::OneBit {
                [-spread, spread, spread, spread]
            } else {
                defaults
            };
            for k in 0..4 {
                st.decode[k] = match sums[k] {
                    (_, 0) => defaults[k],
                    (s, n) => (s / n as f64) as f32,
                };
            }
        }
    }

    /// For L2sq and L1: distance per unit of Hamming distance, the ratio of the sums of exact
    /// distances and Hamming distances over pairs of the sample.
    fn fit_scale(&mut self, sample: &[&[f32]]) {
        self.scale = 2.0 / self.bits as f32;
        if self.metric == Metric::InnerProduct || sample.len() < 2 {
            return;
        }
        let kernel = self.metric.kernel();
        let (mut exact, mut hamming) = (0f64, 0f64);
        let (mut a, mut b) = (vec![0u32; self.words()], vec![0u32; self.words()]);
        let pairs = sample.len().min(SCALE_PAIRS + 1);
        for i in 1..pairs {
            let (x, y) = (sample[i - 1], sample[(i * 7919) % sample.len()]);
            self.encode(x, &mut a);
            self.encode(y, &mut b);
            exact += kernel(x, y) as f64;
            hamming += a.iter().zip(&b).map(|(p, q)| (p ^ q).count_ones() as f64).sum::<f64>();
        }
        if exact > 0.0 && hamming > 0.0 {
            self.scale = (exact / hamming) as f32;
        }
    }

    /// A B-bit query's levels (0..=top) at the code's bit positions.
    fn query_levels(&self, q: &[f32], top: u32) -> Vec<u32> {
        if self.metric == Metric::InnerProduct || self.encoding == BinaryEncoding::OneBit {
            // As Qdrant: the extended query over [-max |q|, max |q|], so the score is an
            // agreement-weighted dot product.
            let ext = self.extended(q);
            let max = ext.iter().fold(0f32, |m, x| m.max(x.abs()));
            let delta = 2.0 * max / top as f32;
            return ext
                .iter()
                .map(|&x| {
                    if delta > f32::EPSILON {
                        (((x + max) / delta).round() as u32).min(top)
                    } else {
                        0
                    }
                })
                .collect();
        }
        self.thermometer(q)
            .into_iter()
            .map(|a| (a * top as f32).round() as u32)
            .collect()
    }

    /// For L2sq and L1 with two levels of bits: the query's place u in level units (0, 1, 2
    /// at z = -4/3, 0, 4/3, so the thresholds ±2/3 fall at 0.5 and 1.5) written as thermometer
    /// fractions, clamp(u, 0, 1) for b1 and clamp(u - 1, 0, 1) for b2 (the max of a pair for
    /// one and a half bits). Scored against stored bits this is exactly Σ |u - level|, a
    /// distance, where the dot-product scoring would favour long vectors.
    fn thermometer(&self, q: &[f32]) -> Vec<f32> {
        let u: Vec<f32> = q
            .iter()
            .zip(&self.stats)
            .map(|(&x, s)| {
                if s.sd < f32::EPSILON {
                    // The sign fallback of `levels`: b1 only.
                    if x > 0.0 {
                        1.0
                    } else {
                        0.0
                    }
                } else {
                    (1.0 + 0.75 * (x - s.mean) / s.sd).clamp(0.0, 2.0)
                }
            })
            .collect();
        let mut ext: Vec<f32> = u.iter().map(|u| u.min(1.0)).collect();
        let high = |u: f32| (u - 1.0).max(0.0);
        match self.encoding {
            BinaryEncoding::OneBit => {}
            BinaryEncoding::TwoBits => ext.extend(u.iter().map(|&u| high(u))),
            BinaryEncoding::OneAndHalfBits => {
                ext.extend(u.chunks(2).map(|p| p.iter().map(|&u| high(u)).fold(0.0, f32::max)))
            }
        }
        ext
    }

    /// The query's values at the code's bit positions.
    fn extended(&self, q: &[f32]) -> Vec<f32> {
        let mut ext = q.to_vec();
        match self.encoding {
            BinaryEncoding::OneBit => {}
            BinaryEncoding::TwoBits => ext.extend_from_slice(q),
            BinaryEncoding::OneAndHalfBits => {
                ext.extend(q.chunks(2).map(|p| p.iter().copied().fold(f32::MIN, f32::max)))
            }
        }
        ext
    }
}

impl Code for BinaryCode {
    type Query = BinaryQuery;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn words(&self) -> usize {
        2 * self.n64
    }

    fn encode(&self, v: &[f32], out: &mut [u32]) {
        for (pair, w) in out.chunks_exact_mut(2).zip(self.bits_of(v)) {
            pair[0] = w as u32;
            pair[1] = (w >> 32) as u32;
        }
    }

    fn prepare(&self, q: &[f32]) -> BinaryQuery {
        if self.query_bits == 1 {
            return BinaryQuery {
                planes: self.bits_of(q),
                scale: self.scale,
            };
        }
        let b = self.query_bits as usize;
        let top = (1u32 << b) - 1;
        let mut planes = vec![0u64; self.n64 * b];
        for (j, level) in self.query_levels(q, top).into_iter().enumerate() {
            for bit in 0..b {
                planes[(j / 64) * b + bit] |= ((level >> bit) as u64 & 1) << (j % 64);
            }
        }
        BinaryQuery {
            planes,
            scale: self.scale / top as f32,
        }
    }

    #[inline(always)]
    fn distance(&self, q: &BinaryQuery, code: &[u32]) -> f32 {
        // SAFETY: the kernel was picked by `Kernels::detect` for this CPU.
        unsafe { (self.kernels.query)(&q.planes, code) as f32 * q.scale }
    }

    #[inline(always)]
    fn distance_codes(&self, a: &[u32], b: &[u32]) -> f32 {
        // SAFETY: as above.
        unsafe { (self.kernels.codes)(a, b) as f32 * self.scale }
    }

    fn decode(&self, code: &[u32]) -> Vec<f32> {
        (0..self.dim).map(|i| self.stats[i].decode[self.key(code, i)]).collect()
    }

    fn params_memory(&self) -> usize {
        std::mem::size_of::<Self>() + self.stats.capacity() * std::mem::size_of::<DimStats>()
    }
}

impl StoredCode for BinaryCode {
    const KIND: u8 = 2;

    fn quantization(&self) -> Option<Quantization> {
        Some(Quantization::Binary {
            encoding: self.encoding,
            query_encoding: self.query_encoding,
        })
    }

    fn write_params(&self, out: &mut Vec<u8>) {
        let mut w = ParamWriter(out);
        let encoding = match self.encoding {
            BinaryEncoding::OneBit => 0,
            BinaryEncoding::TwoBits => 1,
            BinaryEncoding::OneAndHalfBits => 2,
        };
        let query = match self.query_encoding {
            BinaryQueryEncoding::Default => 0,
            BinaryQueryEncoding::Binary => 1,
            BinaryQueryEncoding::Scalar4Bits => 2,
            BinaryQueryEncoding::Scalar8Bits => 3,
        };
        w.u8(encoding).u8(query).f32(self.scale);
        for s in &self.stats {
            w.f32(s.mean).f32(s.sd);
            for d in s.decode {
                w.f32(d);
            }
        }
    }

    fn read_params(dim: usize, metric: Metric, bytes: &[u8]) -> Result<Self> {
        let bad = |what: &str| Error::Format(format!("binary code: {what}"));
        let mut r = ParamReader::new(bytes);
        let encoding = match r.u8()? {
            0 => BinaryEncoding::OneBit,
            1 => BinaryEncoding::TwoBits,
            2 => BinaryEncoding::OneAndHalfBits,
            _ => return Err(bad("unknown encoding")),
        };
        let query_encoding = match r.u8()? {
            0 => BinaryQueryEncoding::Default,
            1 => BinaryQueryEncoding::Binary,
            2 => BinaryQueryEncoding::Scalar4Bits,
            3 => BinaryQueryEncoding::Scalar8Bits,
            _ => return Err(bad("unknown query encoding")),
        };
        let scale = r.f32()?;
        if scale <= 0.0 {
            return Err(bad("bad scale"));
        }
        // Six f32 per dimension: refuse a dimension the block cannot hold before allocating.
        if bytes.len() != 2 + 4 + dim * 24 {
            return Err(bad("parameters do not match the dimension"));
        }
        let mut stats = Vec::with_capacity(dim);
        for _ in 0..dim {
            let (mean, sd) = (r.f32()?, r.f32()?);
            if sd < 0.0 {
                return Err(bad("negative deviation"));
            }
            let mut decode = [0.0; 4];
            for d in &mut decode {
                *d = r.f32()?;
            }
            stats.push(DimStats { mean, sd, decode });
        }
        r.finish()?;
        Self::from_parts(dim, metric, encoding, query_encoding, stats, scale).map_err(|_| bad("bad statistics"))
    }
}

/// XOR-popcount kernels: `query` scores bit planes against a code, `codes` two codes.
type QueryFn = unsafe fn(&[u64], &[u32]) -> u32;
type CodesFn = unsafe fn(&[u32], &[u32]) -> u32;

#[derive(Debug, Clone, Copy)]
struct Kernels {
    query: QueryFn,
    codes: CodesFn,
}

impl Kernels {
    /// With the popcnt instruction where the CPU has it (the workspace builds for baseline
    /// x86-64, where `count_ones` is a bit-twiddling sequence otherwise).
    fn detect(query_bits: u32) -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("popcnt") {
            return Kernels {
                query: match query_bits {
                    1 => planes_popcnt::<1>,
                    4 => planes_popcnt::<4>,
                    _ => planes_popcnt::<8>,
                },
                codes: hamming_popcnt,
            };
        }
        Kernels {
            query: match query_bits {
                1 => planes_portable::<1>,
                4 => planes_portable::<4>,
                _ => planes_portable::<8>,
            },
            codes: hamming_portable,
        }
    }
}

/// Word `j` of a code (two u32, low first).
#[inline(always)]
fn word(pair: &[u32]) -> u64 {
    pair[0] as u64 | (pair[1] as u64) << 32
}

/// Σ over words and planes b of popcount(code ^ plane_b) << b.
#[inline(always)]
fn planes_score<const B: usize>(planes: &[u64], code: &[u32]) -> u32 {
    let mut total = 0;
    for (pair, planes) in code.chunks_exact(2).zip(planes.chunks_exact(B)) {
        let c = word(pair);
        for (b, p) in planes.iter().enumerate() {
            total += (c ^ p).count_ones() << b;
        }
    }
    total
}

#[inline(always)]
fn hamming(a: &[u32], b: &[u32]) -> u32 {
    a.chunks_exact(2)
        .zip(b.chunks_exact(2))
        .map(|(x, y)| (word(x) ^ word(y)).count_ones())
        .sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn planes_popcnt<const B: usize>(planes: &[u64], code: &[u32]) -> u32 {
    planes_score::<B>(planes, code)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn hamming_popcnt(a: &[u32], b: &[u32]) -> u32 {
    hamming(a, b)
}

/// `unsafe` only to share the pointer type of the popcnt kernels.
unsafe fn planes_portable<const B: usize>(planes: &[u64], code: &[u32]) -> u32 {
    planes_score::<B>(planes, code)
}

unsafe fn hamming_portable(a: &[u32], b: &[u32]) -> u32 {
    hamming(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|i| {
                        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        // Dimensions with different means and spreads.
                        ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * (1.0 + i as f32 * 0.1) + 0.05 * (i % 3) as f32
                    })
                    .collect()
            })
            .collect()
    }

    fn codes(code: &BinaryCode, data: &[Vec<f32>]) -> Vec<Vec<u32>> {
        data.iter()
            .map(|v| {
                let mut c = vec![0; code.words()];
                code.encode(v, &mut c);
                c
            })
            .collect()
    }

    const ENCODINGS: [BinaryEncoding; 3] = [
        BinaryEncoding::OneBit,
        BinaryEncoding::TwoBits,
        BinaryEncoding::OneAndHalfBits,
    ];

    #[test]
    fn code_distances_are_exact_hamming_distances() {
        let dim = 67;
        let data = vectors(60, dim, 3);
        let sample: Vec<&[f32]> = data.iter().map(|v| &v[..]).collect();
        for encoding in ENCODINGS {
            let code = BinaryCode::train(
                dim,
                Metric::InnerProduct,
                encoding,
                BinaryQueryEncoding::Default,
                &sample,
            )
            .unwrap();
            let level = |i: usize, x: f32| -> i32 {
                let s = &code.stats[i];
                let z = (x - s.mean) / s.sd;
                (z > -SIGMAS) as i32 + (z >= SIGMAS) as i32
            };
            // The bits each encoding should give, by its definition.
            let expected = |a: &[f32], b: &[f32]| -> u32 {
                match encoding {
                    BinaryEncoding::OneBit => {
                        a.iter().zip(b).filter(|(x, y)| (**x > 0.0) != (**y > 0.0)).count() as u32
                    }
                    BinaryEncoding::TwoBits => (0..dim).map(|i| (level(i, a[i]) - level(i, b[i])).unsigned_abs()).sum(),
                    BinaryEncoding::OneAndHalfBits => {
                        let low = (0..dim)
                            .filter(|&i| (level(i, a[i]) > 0) != (level(i, b[i]) > 0))
                            .count();
                        let high = |v: &[f32], j: usize| (2 * j..(2 * j + 2).min(dim)).any(|i| level(i, v[i]) == 2);
                        let shared = (0..dim.div_ceil(2)).filter(|&j| high(a, j) != high(b, j)).count();
                        (low + shared) as u32
                    }
                }
            };
            assert_eq!(code.bits(), [dim, 2 * dim, dim + dim.div_ceil(2)][encoding as usize]);
            assert_eq!(code.words(), 2 * code.bits().div_ceil(64));
            let all = codes(&code, &data);
            for i in 1..data.len() {
                let h = expected(&data[i - 1], &data[i]);
                let want = h as f32 * (2.0 / code.bits() as f32);
                assert_eq!(code.distance_codes(&all[i - 1], &all[i]), want, "{encoding:?}");
                assert_eq!(
                    code.distance(&code.prepare(&data[i - 1]), &all[i]),
                    want,
                    "{encoding:?}"
                );
                // Portable and popcnt kernels agree.
                let portable = unsafe { hamming_portable(&all[i - 1], &all[i]) };
                assert_eq!(portable, h);
            }
            assert_eq!(code.distance_codes(&all[0], &all[0]), 0.0);
        }
    }

    #[test]
    fn scalar_queries_score_each_bit_against_the_query_level() {
        let dim = 70;
        let data = vectors(40, dim, 5);
        let sample: Vec<&[f32]> = data.iter().map(|v| &v[..]).collect();
        for encoding in ENCODINGS {
            for (query_encoding, bits) in [
                (BinaryQueryEncoding::Scalar4Bits, 4u32),
                (BinaryQueryEncoding::Scalar8Bits, 8),
            ] {
                let code = BinaryCode::train(dim, Metric::InnerProduct, encoding, query_encoding, &sample).unwrap();
                let top = (1u32 << bits) - 1;
                let q = &data[0];
                let prepared = code.prepare(q);
                let ext = code.extended(q);
                let max = ext.iter().fold(0f32, |m, x| m.max(x.abs()));
                for v in &data[1..] {
                    let mut c = vec![0; code.words()];
                    code.encode(v, &mut c);
                    let want: u32 = ext
                        .iter()
                        .enumerate()
                        .map(|(j, &x)| {
                            let level = ((x + max) / (2.0 * max / top as f32)).round() as u32;
                            if c[j / 32] >> (j % 32) & 1 == 1 {
                                top - level
                            } else {
                                level
                            }
                        })
                        .sum();
                    let got = code.distance(&prepared, &c);
                    let expect = want as f32 * (2.0 / code.bits() as f32) / top as f32;
                    assert!((got - expect).abs() <= 1e-6 * expect.max(1.0), "{encoding:?} {bits}");
                    let portable = unsafe {
                        match bits {
                            4 => planes_portable::<4>(&prepared.planes, &c),
                            _ => planes_portable::<8>(&prepared.planes, &c),
                        }
                    };
                    assert_eq!(portable, want);
                }
            }
        }
    }

    #[test]
    fn decoding_gives_the_mean_of_each_level_and_l2_distances_are_scaled() {
        let dim = 32;
        let data = vectors(500, dim, 7);
        let sample: Vec<&[f32]> = data.iter().map(|v| &v[..]).collect();
        for encoding in ENCODINGS {
            let code = BinaryCode::train(dim, Metric::L2sq, encoding, BinaryQueryEncoding::Default, &sample).unwrap();
            let all = codes(&code, &data);
            for (v, c) in data.iter().zip(&all).take(50) {
                let d = code.decode(c);
                for i in 0..dim {
                    // The decoded value keeps the code's bits.
                    assert_eq!(code.levels(i, d[i]).0, code.levels(i, v[i]).0, "{encoding:?} dim {i}");
                }
            }
            // Approximate L2 distances have the right magnitude on average.
            let kernel = Metric::L2sq.kernel();
            let (mut exact, mut approx) = (0.0, 0.0);
            for i in 1..data.len() {
                exact += kernel(&data[i - 1], &data[i]);
                approx += code.distance_codes(&all[i - 1], &all[i]);
            }
            assert!((approx / exact - 1.0).abs() < 0.2, "{encoding:?}: {approx} vs {exact}");
        }
    }
}
