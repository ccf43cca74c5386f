//! Product quantization (Jégou, Douze & Schmid, "Product quantization for nearest neighbor
//! search"), configured as Qdrant's `product: {compression: x4 .. x64}`: the vector is cut into
//! consecutive sub-vectors of `dims_per_byte` dimensions (the last one may be shorter), each
//! sub-space gets 256 centroids by k-means on a sample, and a code is one byte per sub-space,
//! the index of the nearest centroid. The compression ratio is against f32 storage: x4 keeps
//! one byte per dimension, x8 one per 2 dimensions, ... x64 one per 16.
//!
//! A query is scored asymmetrically: `prepare` computes, for each sub-space, the partial
//! distance from the query's sub-vector to all 256 centroids; a distance is then one table
//! lookup per code byte, summed. All three metrics are sums over dimensions, so the tables are
//! exact for the centroids a code stands for (L1 included). Two codes are compared through their
//! centroids directly (a 256 × 256 table per sub-space would cost up to 32 MB).

use super::kmeans::{kmeans, Rng};
use super::Code;
use crate::kernels::Metric;
use crate::{Error, Result};

/// Centroids per sub-space: one byte's worth.
const CENTROIDS: usize = 256;
/// Training uses at most this many sample vectors (drawn deterministically if more are given).
const MAX_SAMPLE: usize = 10_000;
/// Lloyd iterations per sub-space, at most.
const MAX_ITERATIONS: usize = 40;
const SEED: u64 = 0x5051_5f6b_6d65_616e; // "PQ_kmean"
const MAGIC: &[u8; 4] = b"HPQ1";
const HEADER: usize = 4 + 1 + 1 + 4;

/// How much smaller than f32 storage a product code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    X4,
    X8,
    X16,
    X32,
    X64,
}

impl Compression {
    /// Dimensions that share one code byte (one sub-space).
    pub fn dims_per_byte(self) -> usize {
        match self {
            Compression::X4 => 1,
            Compression::X8 => 2,
            Compression::X16 => 4,
            Compression::X32 => 8,
            Compression::X64 => 16,
        }
    }

    fn tag(self) -> u8 {
        self.dims_per_byte() as u8
    }

    fn from_tag(tag: u8) -> Option<Self> {
        [
            Compression::X4,
            Compression::X8,
            Compression::X16,
            Compression::X32,
            Compression::X64,
        ]
        .into_iter()
        .find(|c| c.tag() == tag)
    }
}

/// A trained product code: the metric, the split into sub-spaces and their centroids.
#[derive(Debug, Clone)]
pub struct ProductCode {
    metric: Metric,
    dim: usize,
    compression: Compression,
    /// Dimensions per sub-space (the last sub-space may have fewer).
    sub: usize,
    /// Number of sub-spaces = code bytes.
    spaces: usize,
    /// Sub-space `j`'s 256 centroids, `len(j)` floats each, from `CENTROIDS * j * sub`:
    /// the concatenation is also the layout of 256 full-dimension "centroid vectors".
    centroids: Vec<f32>,
}

/// A query prepared for a product code: per sub-space, the partial distance to each centroid.
#[derive(Debug, Clone)]
pub struct ProductQuery {
    /// `spaces * 256` partial distances (for inner product: minus the partial dot).
    lut: Vec<f32>,
    /// Added to the table sum (1 for inner product's `1 - dot`).
    bias: f32,
}

impl ProductCode {
    /// Trains the sub-space centroids on `sample` (vectors of `dim` values, preprocessed as the
    /// index expects). k-means++ seeding with a fixed seed, then at most 40 Lloyd iterations per
    /// sub-space on at most 10 000 sample vectors, sub-spaces spread over the available cores.
    pub fn train(metric: Metric, dim: usize, compression: Compression, sample: &[&[f32]]) -> Result<ProductCode> {
        if dim == 0 || dim > u32::MAX as usize {
            return Err(Error::Params(format!("product code dimension {dim}")));
        }
        if sample.is_empty() {
            return Err(Error::Params("product code: no sample vectors to train on".into()));
        }
        if let Some(v) = sample.iter().find(|v| v.len() != dim) {
            return Err(Error::Dimension {
                got: v.len(),
                want: dim,
            });
        }
        if sample.iter().any(|v| v.iter().any(|x| !x.is_finite())) {
            return Err(Error::Params("product code: sample has non-finite values".into()));
        }
        let chosen: Vec<&[f32]> = if sample.len() > MAX_SAMPLE {
            // Partial Fisher–Yates: a deterministic subset of MAX_SAMPLE distinct vectors.
            let mut idx: Vec<usize> = (0..sample.len()).collect();
            let mut rng = Rng::new(SEED ^ sample.len() as u64);
            for i in 0..MAX_SAMPLE {
                let j = i + rng.below(sample.len() - i);
                idx.swap(i, j);
            }
            idx[..MAX_SAMPLE].iter().map(|&i| sample[i]).collect()
        } else {
            sample.to_vec()
        };
        let sub = compression.dims_per_byte().min(dim);
        let spaces = dim.div_ceil(sub);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(spaces);
        let train_space = |j: usize| -> Vec<f32> {
            let range = j * sub..((j + 1) * sub).min(dim);
            let data: Vec<f32> = chosen.iter().flat_map(|v| v[range.clone()].iter().copied()).collect();
            let seed = SEED.wrapping_add((j as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            kmeans(&data, range.len(), CENTROIDS, MAX_ITERATIONS, seed)
        };
        let mut per_space: Vec<Vec<f32>> = vec![Vec::new(); spaces];
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let train_space = &train_space;
                    s.spawn(move || {
                        (t..spaces)
                            .step_by(threads)
                            .map(|j| (j, train_space(j)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for w in workers {
                for (j, c) in w.join().expect("k-means worker panicked") {
                    per_space[j] = c;
                }
            }
        });
        Ok(ProductCode {
            metric,
            dim,
            compression,
            sub,
            spaces,
            centroids: per_space.concat(),
        })
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Sub-spaces, which is also the code's length in bytes.
    pub fn code_bytes(&self) -> usize {
        self.spaces
    }

    fn space_len(&self, j: usize) -> usize {
        self.sub.min(self.dim - j * self.sub)
    }

    /// Centroid `c` of sub-space `j`.
    fn centroid(&self, j: usize, c: usize) -> &[f32] {
        let len = self.space_len(j);
        let start = CENTROIDS * j * self.sub + c * len;
        &self.centroids[start..start + len]
    }

    /// Byte `j` of a code.
    #[inline(always)]
    fn byte(code: &[u32], j: usize) -> usize {
        ((code[j / 4] >> (8 * (j % 4))) & 0xff) as usize
    }

    /// The parameters, for the saved index: magic, metric, compression, dimension, then all
    /// centroids as little-endian f32.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER + 4 * self.centroids.len());
        b.extend_from_slice(MAGIC);
        b.push(self.metric.code());
        b.push(self.compression.tag());
        b.extend_from_slice(&(self.dim as u32).to_le_bytes());
        for x in &self.centroids {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Reads what `to_bytes` wrote; anything else (wrong magic, unknown metric or compression,
    /// a length that does not match the dimension, non-finite centroids) is `Error::Format`.
    pub fn from_bytes(b: &[u8]) -> Result<ProductCode> {
        let bad = |what: &str| Error::Format(format!("product code parameters: {what}"));
        if b.len() < HEADER || &b[..4] != MAGIC {
            return Err(bad("not a product code"));
        }
        let metric = Metric::from_code(b[4]).ok_or_else(|| bad("unknown metric"))?;
        let compression = Compression::from_tag(b[5]).ok_or_else(|| bad("unknown compression"))?;
        let dim = u32::from_le_bytes(b[6..10].try_into().expect("4 bytes")) as usize;
        if dim == 0 {
            return Err(bad("dimension 0"));
        }
        let body = &b[HEADER..];
        if Some(body.len()) != dim.checked_mul(4 * CENTROIDS) {
            return Err(bad("length does not match the dimension"));
        }
        let centroids: Vec<f32> = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        if centroids.iter().any(|x| !x.is_finite()) {
            return Err(bad("non-finite centroid"));
        }
        let sub = compression.dims_per_byte().min(dim);
        Ok(ProductCode {
            metric,
            dim,
            compression,
            sub,
            spaces: dim.div_ceil(sub),
            centroids,
        })
    }
}

/// The metric's term for one pair of sub-vectors (for inner product: minus the dot).
#[inline(always)]
fn partial(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2sq => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        Metric::InnerProduct => -a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
        Metric::L1 => a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum(),
    }
}

const L2: u8 = 0;
const IP: u8 = 1;
const L1: u8 = 2;

/// `partial` for a metric (`L2`, `IP`, `L1`) and a length fixed at compile time.
#[inline(always)]
fn partial_n<const S: usize, const M: u8>(a: &[f32; S], b: &[f32; S]) -> f32 {
    let mut s = 0f32;
    for i in 0..S {
        s += match M {
            L2 => (a[i] - b[i]) * (a[i] - b[i]),
            IP => -a[i] * b[i],
            _ => (a[i] - b[i]).abs(),
        };
    }
    s
}

impl ProductCode {
    /// The sum of `partial` over the sub-spaces of two codes, for sub-spaces of `S` dimensions.
    fn code_sum<const S: usize, const M: u8>(&self, a: &[u32], b: &[u32]) -> f32 {
        debug_assert_eq!(S, self.sub);
        let full = self.dim / S;
        let block = CENTROIDS * S;
        // One code word = four sub-spaces = four centroid tables of `block` floats.
        let pick = |table: &[f32], byte: u32| -> [f32; S] {
            let at = S * (byte & 0xff) as usize;
            table[at..at + S].try_into().unwrap()
        };
        let mut acc = [0f32; 4];
        let words = full / 4;
        for ((&wa, &wb), tables) in a[..words]
            .iter()
            .zip(&b[..words])
            .zip(self.centroids.chunks_exact(4 * block))
        {
            for (i, acc) in acc.iter_mut().enumerate() {
                let t = &tables[i * block..(i + 1) * block];
                let (x, y) = (pick(t, wa >> (8 * i)), pick(t, wb >> (8 * i)));
                *acc += partial_n::<S, M>(&x, &y);
            }
        }
        let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        let metric = Metric::from_code(M).expect("metric code");
        for j in 4 * words..self.spaces {
            let (ca, cb) = (Self::byte(a, j), Self::byte(b, j));
            sum += partial(metric, self.centroid(j, ca), self.centroid(j, cb));
        }
        sum
    }
}

fn bias(metric: Metric) -> f32 {
    match metric {
        Metric::InnerProduct => 1.0,
        Metric::L2sq | Metric::L1 => 0.0,
    }
}

impl Code for ProductCode {
    type Query = ProductQuery;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn words(&self) -> usize {
        self.spaces.div_ceil(4)
    }

    fn encode(&self, v: &[f32], out: &mut [u32]) {
        debug_assert_eq!(v.len(), self.dim);
        out[..self.words()].fill(0);
        for j in 0..self.spaces {
            let x = &v[j * self.sub..j * self.sub + self.space_len(j)];
            let (mut best, mut best_d) = (0usize, f32::INFINITY);
            for c in 0..CENTROIDS {
                let d = partial(Metric::L2sq, x, self.centroid(j, c));
                if d < best_d {
                    best_d = d;
                    best = c;
                }
            }
            out[j / 4] |= (best as u32) << (8 * (j % 4));
        }
    }

    fn prepare(&self, q: &[f32]) -> ProductQuery {
        debug_assert_eq!(q.len(), self.dim);
        let mut lut = Vec::with_capacity(self.spaces * CENTROIDS);
        for j in 0..self.spaces {
            let x = &q[j * self.sub..j * self.sub + self.space_len(j)];
            lut.extend((0..CENTROIDS).map(|c| partial(self.metric, x, self.centroid(j, c))));
        }
        ProductQuery {
            lut,
            bias: bias(self.metric),
        }
    }

    fn distance(&self, q: &ProductQuery, code: &[u32]) -> f32 {
        // Four sub-spaces per code word, four independent sums.
        let full = self.spaces / 4;
        let mut acc = [0f32; 4];
        for (&w, t) in code[..full].iter().zip(q.lut.chunks_exact(4 * CENTROIDS)) {
            let t: &[f32; 4 * CENTROIDS] = t.try_into().expect("chunk of 1024");
            acc[0] += t[(w & 0xff) as usize];
            acc[1] += t[CENTROIDS + ((w >> 8) & 0xff) as usize];
            acc[2] += t[2 * CENTROIDS + ((w >> 16) & 0xff) as usize];
            acc[3] += t[3 * CENTROIDS + (w >> 24) as usize];
        }
        let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for j in 4 * full..self.spaces {
            sum += q.lut[j * CENTROIDS + Self::byte(code, j)];
        }
        q.bias + sum
    }

    fn distance_codes(&self, a: &[u32], b: &[u32]) -> f32 {
        let sum = match (self.metric, self.sub) {
            (Metric::L2sq, 1) => self.code_sum::<1, L2>(a, b),
            (Metric::L2sq, 2) => self.code_sum::<2, L2>(a, b),
            (Metric::L2sq, 4) => self.code_sum::<4, L2>(a, b),
            (Metric::L2sq, 8) => self.code_sum::<8, L2>(a, b),
            (Metric::L2sq, 16) => self.code_sum::<16, L2>(a, b),
            (Metric::InnerProduct, 1) => self.code_sum::<1, IP>(a, b),
            (Metric::InnerProduct, 2) => self.code_sum::<2, IP>(a, b),
            (Metric::InnerProduct, 4) => self.code_sum::<4, IP>(a, b),
            (Metric::InnerProduct, 8) => self.code_sum::<8, IP>(a, b),
            (Metric::InnerProduct, 16) => self.code_sum::<16, IP>(a, b),
            (Metric::L1, 1) => self.code_sum::<1, L1>(a, b),
            (Metric::L1, 2) => self.code_sum::<2, L1>(a, b),
            (Metric::L1, 4) => self.code_sum::<4, L1>(a, b),
            (Metric::L1, 8) => self.code_sum::<8, L1>(a, b),
            (Metric::L1, 16) => self.code_sum::<16, L1>(a, b),
            // `sub` is the dimension itself when that is below the compression's length.
            _ => (0..self.spaces)
                .map(|j| {
                    let (ca, cb) = (Self::byte(a, j), Self::byte(b, j));
                    partial(self.metric, self.centroid(j, ca), self.centroid(j, cb))
                })
                .sum(),
        };
        bias(self.metric) + sum
    }

    fn decode(&self, code: &[u32]) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.dim);
        for j in 0..self.spaces {
            v.extend_from_slice(self.centroid(j, Self::byte(code, j)));
        }
        v
    }

    fn params_memory(&self) -> usize {
        self.centroids.len() * std::mem::size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::super::kmeans::test_data::*;
    use super::*;

    fn refs(data: &[Vec<f32>]) -> Vec<&[f32]> {
        data.iter().map(|v| v.as_slice()).collect()
    }

    #[test]
    fn code_sizes_follow_the_compression() {
        let data = gaussian(300, 128, true, 1);
        for (compression, bytes) in [
            (Compression::X4, 128),
            (Compression::X8, 64),
            (Compression::X16, 32),
            (Compression::X32, 16),
            (Compression::X64, 8),
        ] {
            let pq = ProductCode::train(Metric::L2sq, 128, compression, &refs(&data)).unwrap();
            assert_eq!(pq.code_bytes(), bytes);
            assert_eq!(pq.words(), bytes / 4);
            assert_eq!(pq.params_memory(), 256 * 128 * 4);
        }
        // x8 on dim 128: 64 bytes, 16 words (the brief's figure).
        let pq = ProductCode::train(Metric::L2sq, 128, Compression::X8, &refs(&data)).unwrap();
        assert_eq!(pq.words(), 16);
        // A dimension that does not divide: 100 / 16 -> 7 sub-spaces (the last of 4 dims).
        let short: Vec<Vec<f32>> = data.iter().map(|v| v[..100].to_vec()).collect();
        let pq = ProductCode::train(Metric::L1, 100, Compression::X64, &refs(&short)).unwrap();
        assert_eq!((pq.code_bytes(), pq.words()), (7, 2));
        let code = encode_all(&pq, &short[..1]);
        assert_eq!(pq.decode(&code).len(), 100);
    }

    #[test]
    fn train_rejects_bad_input() {
        let data = gaussian(10, 8, true, 2);
        assert!(matches!(
            ProductCode::train(Metric::L2sq, 8, Compression::X8, &[]),
            Err(Error::Params(_))
        ));
        assert!(matches!(
            ProductCode::train(Metric::L2sq, 0, Compression::X8, &refs(&data)),
            Err(Error::Params(_))
        ));
        assert!(matches!(
            ProductCode::train(Metric::L2sq, 9, Compression::X8, &refs(&data)),
            Err(Error::Dimension { got: 8, want: 9 })
        ));
        let nan = [f32::NAN; 8];
        assert!(matches!(
            ProductCode::train(Metric::L2sq, 8, Compression::X8, &[&nan[..]]),
            Err(Error::Params(_))
        ));
        // Fewer sample vectors than centroids still trains: the points are the centroids.
        let pq = ProductCode::train(Metric::L2sq, 8, Compression::X8, &refs(&data)).unwrap();
        let codes = encode_all(&pq, &data);
        for (v, c) in data.iter().zip(codes.chunks_exact(pq.words())) {
            assert_eq!(&pq.decode(c), v);
        }
    }

    #[test]
    fn table_distance_equals_distance_to_the_decoded_vector() {
        let data = gaussian(1000, 36, false, 3);
        for metric in [Metric::L2sq, Metric::InnerProduct, Metric::L1] {
            let pq = ProductCode::train(metric, 36, Compression::X16, &refs(&data)).unwrap();
            let codes = encode_all(&pq, &data);
            let q = &data[0];
            let p = pq.prepare(q);
            let w = pq.words();
            for c in codes.chunks_exact(w).take(50) {
                let want = exact(metric, q, &pq.decode(c));
                let got = pq.distance(&p, c);
                assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "{got} {want}");
                let first = &codes[..w];
                let want = exact(metric, &pq.decode(first), &pq.decode(c));
                let got = pq.distance_codes(first, c);
                assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "{got} {want}");
            }
        }
    }

    /// Error, recall and speed on 5 000 vectors; prints the figures (`--nocapture`).
    fn measure(metric: Metric, compression: Compression, data: &[Vec<f32>], queries: &[Vec<f32>]) -> (f64, f64) {
        let dim = data[0].len();
        let start = std::time::Instant::now();
        let pq = ProductCode::train(metric, dim, compression, &refs(data)).unwrap();
        let trained = start.elapsed();
        let codes = encode_all(&pq, data);
        let (err, scale) = mean_error(&pq, &codes, data, &queries[..20]);
        let recall = recall(&pq, &codes, data, queries, 10, 4);
        println!(
            "pq {metric:?} {compression:?} dim {dim}: train {trained:.2?}, mean |err| {err:.4} \
             (mean |d| {scale:.3}, rel {:.3}), recall@10 x4 {recall:.3}",
            err / scale
        );
        (err / scale, recall)
    }

    #[test]
    fn accuracy_and_recall() {
        // Normalised i.i.d. Gaussian vectors, dim 128, inner product: the hard case.
        let data = gaussian(5000, 128, true, 10);
        let queries = gaussian(100, 128, true, 11);
        let (rel, recall) = measure(Metric::InnerProduct, Compression::X4, &data, &queries);
        assert!(rel < 0.01 && recall >= 0.95, "x4: rel {rel} recall {recall}");
        let (rel, recall) = measure(Metric::InnerProduct, Compression::X8, &data, &queries);
        assert!(rel < 0.02 && recall >= 0.95, "x8: rel {rel} recall {recall}");
        let (_, recall) = measure(Metric::InnerProduct, Compression::X16, &data, &queries);
        assert!(recall >= 0.5, "x16: recall {recall}");

        // Clustered, non-normalised, L2 and L1 at dim 96.
        let data = clustered(5000, 96, 50, 0.6, false, 12);
        let queries = clustered(100, 96, 50, 0.6, false, 13);
        for metric in [Metric::L2sq, Metric::L1] {
            for compression in [Compression::X4, Compression::X8] {
                let (rel, recall) = measure(metric, compression, &data, &queries);
                assert!(rel < 0.05 && recall >= 0.95, "{metric:?} {compression:?}");
            }
        }
    }

    #[test]
    fn bytes_round_trip_and_corruption() {
        let data = gaussian(2000, 64, true, 20);
        let pq = ProductCode::train(Metric::InnerProduct, 64, Compression::X8, &refs(&data)).unwrap();
        let bytes = pq.to_bytes();
        assert_eq!(bytes.len(), HEADER + 256 * 64 * 4);
        let back = ProductCode::from_bytes(&bytes).unwrap();
        assert_eq!((back.dim(), back.metric(), back.words()), (64, pq.metric(), 8));
        assert_eq!(back.compression(), Compression::X8);
        let codes = encode_all(&pq, &data[..200]);
        assert_eq!(codes, encode_all(&back, &data[..200]));
        let (p, pb) = (pq.prepare(&data[7]), back.prepare(&data[7]));
        for c in codes.chunks_exact(pq.words()) {
            assert_eq!(pq.distance(&p, c), back.distance(&pb, c));
            assert_eq!(pq.distance_codes(&codes[..8], c), back.distance_codes(&codes[..8], c));
        }

        let is_format = |b: &[u8]| matches!(ProductCode::from_bytes(b), Err(Error::Format(_)));
        assert!(is_format(&bytes[..bytes.len() - 1]));
        assert!(is_format(&[bytes.as_slice(), &[0]].concat()));
        assert!(is_format(&bytes[..5]));
        assert!(is_format(&[]));
        for (at, value) in [(0, b'X'), (4, 9), (5, 3), (6, 65)] {
            let mut b = bytes.clone();
            b[at] = value;
            assert!(is_format(&b), "byte {at} = {value}");
        }
        let mut b = bytes.clone();
        b[HEADER + 40..HEADER + 44].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(is_format(&b));
    }

    #[test]
    fn distance_speed() {
        let data = gaussian(2000, 128, true, 30);
        let base = f32_distances_per_second(Metric::InnerProduct, &data, 50);
        println!("exact f32 dim 128: {:.1} M distances/s", base / 1e6);
        for compression in [Compression::X4, Compression::X8, Compression::X16] {
            let pq = ProductCode::train(Metric::InnerProduct, 128, compression, &refs(&data)).unwrap();
            // 100k codes: the 2 000 encoded vectors repeated.
            let codes = encode_all(&pq, &data).repeat(50);
            let per_s = distances_per_second(&pq, &codes, &data[0]);
            let sym = code_distances_per_second(&pq, &codes);
            println!(
                "pq {compression:?} dim 128: {:.1} M distances/s (query tables), {:.1} M/s code \
                 to code",
                per_s / 1e6,
                sym / 1e6
            );
            // Loose floors (the machine may be shared); unloaded runs are far above.
            assert!(per_s > 2e6, "{per_s}");
            assert!(sym > 1e6, "{sym}");
        }
    }
}
