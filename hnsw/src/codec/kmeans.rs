//! k-means for the product code's sub-spaces, and the small deterministic PRNG the quantized
//! codes share (k-means++ seeding, TurboQuant's rotation), so a code's parameters can be rebuilt
//! bit for bit from a seed.

/// SplitMix64: a tiny, fast, well-mixed 64-bit generator. Not for cryptography.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0); the modulo bias is below 2^-40 for the sizes used here.
    pub(super) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A standard normal sample (Box–Muller).
    #[cfg(test)]
    pub(super) fn gaussian(&mut self) -> f32 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Clusters `data` (`data.len() / dim` points of `dim` floats, row-major) into `k` centroids
/// under squared Euclidean distance: k-means++ seeding from `seed`, then Lloyd iterations until
/// no point changes cluster or `max_iter` is reached. Returns `k * dim` floats. With `k` or
/// fewer points, the points themselves (repeated to fill `k`) are the centroids.
pub(super) fn kmeans(data: &[f32], dim: usize, k: usize, max_iter: usize, seed: u64) -> Vec<f32> {
    // Sub-vector lengths the product code uses get a distance with a fixed length, which the
    // compiler unrolls; k-means spends nearly all its time there.
    match dim {
        1 => kmeans_with(data, dim, k, max_iter, seed, sq_dist_n::<1>),
        2 => kmeans_with(data, dim, k, max_iter, seed, sq_dist_n::<2>),
        4 => kmeans_with(data, dim, k, max_iter, seed, sq_dist_n::<4>),
        8 => kmeans_with(data, dim, k, max_iter, seed, sq_dist_n::<8>),
        16 => kmeans_with(data, dim, k, max_iter, seed, sq_dist_n::<16>),
        _ => kmeans_with(data, dim, k, max_iter, seed, sq_dist),
    }
}

#[inline(always)]
fn sq_dist_n<const N: usize>(a: &[f32], b: &[f32]) -> f32 {
    let (a, b): (&[f32; N], &[f32; N]) = (a.try_into().unwrap(), b.try_into().unwrap());
    let mut s = 0f32;
    for i in 0..N {
        s += (a[i] - b[i]) * (a[i] - b[i]);
    }
    s
}

fn kmeans_with(
    data: &[f32],
    dim: usize,
    k: usize,
    max_iter: usize,
    seed: u64,
    sq_dist: impl Fn(&[f32], &[f32]) -> f32 + Copy,
) -> Vec<f32> {
    assert!(dim > 0 && k > 0 && data.len() % dim == 0);
    let n = data.len() / dim;
    let point = |i: usize| &data[i * dim..(i + 1) * dim];
    if n == 0 {
        return vec![0.0; k * dim];
    }
    if n <= k {
        return (0..k).flat_map(|c| point(c % n).iter().copied()).collect();
    }

    // k-means++: each next centroid drawn with probability proportional to the squared
    // distance to the nearest centroid chosen so far.
    let mut rng = Rng::new(seed);
    let mut centroids = Vec::with_capacity(k * dim);
    centroids.extend_from_slice(point(rng.below(n)));
    let mut nearest: Vec<f32> = (0..n).map(|i| sq_dist(point(i), &centroids[..dim])).collect();
    for c in 1..k {
        let total: f64 = nearest.iter().map(|&d| d as f64).sum();
        let chosen = if total > 0.0 {
            let mut r = rng.unit() * total;
            let mut chosen = n - 1;
            for (i, &d) in nearest.iter().enumerate() {
                r -= d as f64;
                if r < 0.0 && d > 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            rng.below(n) // fewer distinct points than k: duplicates are harmless
        };
        centroids.extend_from_slice(point(chosen));
        let new = &centroids[c * dim..(c + 1) * dim];
        for (i, d) in nearest.iter_mut().enumerate() {
            *d = d.min(sq_dist(point(i), new));
        }
    }

    let mut assignment = vec![u32::MAX; n];
    let mut dist = vec![0f32; n];
    let mut sums = vec![0f64; k * dim];
    let mut counts = vec![0usize; k];
    for _ in 0..max_iter {
        let changed = assign(data, dim, &mut centroids, &mut assignment, &mut dist, sq_dist);
        // Stop once fewer than 0.1% of the points move: the rest is polishing.
        if changed * 1000 <= n {
            break;
        }
        sums.fill(0.0);
        counts.fill(0);
        for (i, &a) in assignment.iter().enumerate() {
            let a = a as usize;
            counts[a] += 1;
            for (s, &x) in sums[a * dim..(a + 1) * dim].iter_mut().zip(point(i)) {
                *s += x as f64;
            }
        }
        for c in 0..k {
            let centroid = &mut centroids[c * dim..(c + 1) * dim];
            if counts[c] > 0 {
                let inv = 1.0 / counts[c] as f64;
                for (x, s) in centroid.iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                    *x = (s * inv) as f32;
                }
            } else {
                // An empty cluster restarts on the point worst served by its centroid.
                let far = (0..n).max_by(|&a, &b| dist[a].total_cmp(&dist[b])).expect("n > k > 0");
                centroid.copy_from_slice(point(far));
                dist[far] = 0.0;
            }
        }
    }
    centroids
}

/// Assigns each point its nearest centroid; returns how many assignments changed. In one
/// dimension the centroids are sorted first (their order is free) and found by binary search.
fn assign(
    data: &[f32],
    dim: usize,
    centroids: &mut [f32],
    assignment: &mut [u32],
    dist: &mut [f32],
    sq_dist: impl Fn(&[f32], &[f32]) -> f32,
) -> usize {
    let mut changed = 0;
    if dim == 1 {
        centroids.sort_by(f32::total_cmp);
        let mids: Vec<f32> = centroids.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
        for ((&x, a), d) in data.iter().zip(assignment.iter_mut()).zip(dist.iter_mut()) {
            let best = mids.partition_point(|&m| x > m);
            // The sort may have moved centroids, so compare by position, not old identity.
            if *a != best as u32 {
                changed += 1;
                *a = best as u32;
            }
            *d = (x - centroids[best]) * (x - centroids[best]);
        }
        return changed;
    }
    for ((x, a), d) in data.chunks_exact(dim).zip(assignment.iter_mut()).zip(dist.iter_mut()) {
        let (mut best, mut best_d) = (0usize, f32::INFINITY);
        for (c, centroid) in centroids.chunks_exact(dim).enumerate() {
            let dc = sq_dist(x, centroid);
            if dc < best_d {
                best_d = dc;
                best = c;
            }
        }
        if *a != best as u32 {
            changed += 1;
            *a = best as u32;
        }
        *d = best_d;
    }
    changed
}

#[cfg(test)]
pub(super) mod test_data {
    //! Data sets and measurements shared by the codes' tests.
    use super::Rng;
    use crate::codec::Code;
    use crate::kernels::Metric;

    pub fn normalize(v: &mut [f32]) {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            v.iter_mut().for_each(|x| *x /= n);
        }
    }

    /// `n` vectors of `dim` i.i.d. standard normal values (normalised if asked): the hard case
    /// for quantization, with no structure for a codebook to exploit.
    pub fn gaussian(n: usize, dim: usize, normalised: bool, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let mut v: Vec<f32> = (0..dim).map(|_| rng.gaussian()).collect();
                if normalised {
                    normalize(&mut v);
                }
                v
            })
            .collect()
    }

    /// `n` vectors around `clusters` random centres (noise `spread` per coordinate relative to
    /// unit-variance centres), with norms varying over [0.5, 2] unless normalised: closer to
    /// embeddings than i.i.d. noise.
    pub fn clustered(n: usize, dim: usize, clusters: usize, spread: f32, normalised: bool, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = Rng::new(seed);
        let centres: Vec<Vec<f32>> = (0..clusters)
            .map(|_| (0..dim).map(|_| rng.gaussian()).collect())
            .collect();
        (0..n)
            .map(|_| {
                let c = &centres[rng.below(clusters)];
                let mut v: Vec<f32> = c.iter().map(|x| x + spread * rng.gaussian()).collect();
                normalize(&mut v);
                if !normalised {
                    let scale = 0.5 + 1.5 * rng.unit() as f32;
                    v.iter_mut().for_each(|x| *x *= scale);
                }
                v
            })
            .collect()
    }

    /// `n` normalised vectors with `latent` intrinsic dimensions: a fixed random linear map of
    /// `latent` Gaussian coordinates into `dim`, plus isotropic noise of relative size `noise`.
    /// Embedding models' outputs look like this more than like i.i.d. noise.
    pub fn low_rank(n: usize, dim: usize, latent: usize, noise: f32, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = Rng::new(0x10_4a4e);
        let map: Vec<f32> = (0..dim * latent).map(|_| rng.gaussian()).collect();
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let z: Vec<f32> = (0..latent).map(|_| rng.gaussian()).collect();
                let mut v: Vec<f32> = map
                    .chunks_exact(latent)
                    .map(|row| row.iter().zip(&z).map(|(a, b)| a * b).sum::<f32>())
                    .collect();
                let scale = (latent as f32).sqrt() * noise;
                v.iter_mut().for_each(|x| *x += scale * rng.gaussian());
                normalize(&mut v);
                v
            })
            .collect()
    }

    pub fn exact(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
        match metric {
            Metric::L2sq => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
            Metric::InnerProduct => 1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
            Metric::L1 => a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum(),
        }
    }

    pub fn encode_all<C: Code>(code: &C, data: &[Vec<f32>]) -> Vec<u32> {
        let w = code.words();
        let mut out = vec![0u32; w * data.len()];
        for (v, o) in data.iter().zip(out.chunks_exact_mut(w)) {
            code.encode(v, o);
        }
        out
    }

    /// Mean |approximate - exact| distance over query × data pairs, and the mean |exact|
    /// for scale.
    pub fn mean_error<C: Code>(code: &C, codes: &[u32], data: &[Vec<f32>], queries: &[Vec<f32>]) -> (f64, f64) {
        let w = code.words();
        let (mut err, mut scale, mut count) = (0f64, 0f64, 0usize);
        for q in queries {
            let p = code.prepare(q);
            for (v, c) in data.iter().zip(codes.chunks_exact(w)) {
                let e = exact(code.metric(), q, v) as f64;
                err += (code.distance(&p, c) as f64 - e).abs();
                scale += e.abs();
                count += 1;
            }
        }
        (err / count as f64, scale / count as f64)
    }

    /// Recall@k of: brute force over the codes for the best `k * oversampling`, then exact
    /// rescoring of those with the original vectors, against the exact top k.
    pub fn recall<C: Code>(
        code: &C,
        codes: &[u32],
        data: &[Vec<f32>],
        queries: &[Vec<f32>],
        k: usize,
        oversampling: usize,
    ) -> f64 {
        let w = code.words();
        let metric = code.metric();
        let mut hits = 0usize;
        for q in queries {
            let mut truth: Vec<(f32, usize)> = data.iter().enumerate().map(|(i, v)| (exact(metric, q, v), i)).collect();
            truth.sort_by(|a, b| a.0.total_cmp(&b.0));
            let p = code.prepare(q);
            let mut approx: Vec<(f32, usize)> = codes
                .chunks_exact(w)
                .enumerate()
                .map(|(i, c)| (code.distance(&p, c), i))
                .collect();
            approx.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut rescored: Vec<(f32, usize)> = approx[..k * oversampling]
                .iter()
                .map(|&(_, i)| (exact(metric, q, &data[i]), i))
                .collect();
            rescored.sort_by(|a, b| a.0.total_cmp(&b.0));
            hits += rescored[..k]
                .iter()
                .filter(|(_, i)| truth[..k].iter().any(|(_, j)| j == i))
                .count();
        }
        hits as f64 / (k * queries.len()) as f64
    }

    /// Distances per second of `code.distance` over `codes`, best of a few passes.
    pub fn distances_per_second<C: Code>(code: &C, codes: &[u32], query: &[f32]) -> f64 {
        let p = code.prepare(query);
        let w = code.words();
        let n = codes.len() / w;
        let mut best = f64::INFINITY;
        for _ in 0..10 {
            let start = std::time::Instant::now();
            let mut sum = 0f32;
            for c in codes.chunks_exact(w) {
                sum += code.distance(&p, std::hint::black_box(c));
            }
            std::hint::black_box(sum);
            best = best.min(start.elapsed().as_secs_f64());
        }
        n as f64 / best
    }

    /// Exact f32 distances per second with the graph's kernel, over `data` repeated `times`:
    /// the baseline the codes' speeds compare with.
    pub fn f32_distances_per_second(metric: Metric, data: &[Vec<f32>], times: usize) -> f64 {
        let flat: Vec<f32> = data.concat().repeat(times);
        let dim = data[0].len();
        let kernel = metric.kernel();
        let mut best = f64::INFINITY;
        for _ in 0..10 {
            let start = std::time::Instant::now();
            let mut sum = 0f32;
            for v in flat.chunks_exact(dim) {
                sum += kernel(&data[0], std::hint::black_box(v));
            }
            std::hint::black_box(sum);
            best = best.min(start.elapsed().as_secs_f64());
        }
        (flat.len() / dim) as f64 / best
    }

    /// Like `distances_per_second`, for `distance_codes` against one fixed code.
    pub fn code_distances_per_second<C: Code>(code: &C, codes: &[u32]) -> f64 {
        let w = code.words();
        let n = codes.len() / w;
        let a = &codes[..w];
        let mut best = f64::INFINITY;
        for _ in 0..10 {
            let start = std::time::Instant::now();
            let mut sum = 0f32;
            for c in codes.chunks_exact(w) {
                sum += code.distance_codes(a, std::hint::black_box(c));
            }
            std::hint::black_box(sum);
            best = best.min(start.elapsed().as_secs_f64());
        }
        n as f64 / best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmeans_finds_separated_clusters() {
        // Four tight 2-d clusters: k = 4 must put one centroid on each.
        let centres = [(-5.0f32, -5.0f32), (5.0, -5.0), (-5.0, 5.0), (5.0, 5.0)];
        let mut rng = Rng::new(7);
        let mut data = Vec::new();
        for i in 0..400 {
            let (x, y) = centres[i % 4];
            data.push(x + 0.1 * rng.gaussian());
            data.push(y + 0.1 * rng.gaussian());
        }
        let c = kmeans(&data, 2, 4, 50, 1);
        for (x, y) in centres {
            let near = c
                .chunks_exact(2)
                .any(|p| (p[0] - x).abs() < 0.1 && (p[1] - y).abs() < 0.1);
            assert!(near, "no centroid near ({x}, {y}): {c:?}");
        }
    }

    #[test]
    fn kmeans_one_dimension_matches_quantiles() {
        // Uniform [0, 1) into 4 clusters: optimal centroids are 1/8, 3/8, 5/8, 7/8.
        let mut rng = Rng::new(3);
        let data: Vec<f32> = (0..20_000).map(|_| rng.unit() as f32).collect();
        let mut c = kmeans(&data, 1, 4, 100, 2);
        c.sort_by(f32::total_cmp);
        for (got, want) in c.iter().zip([0.125, 0.375, 0.625, 0.875]) {
            assert!((got - want).abs() < 0.02, "{c:?}");
        }
    }

    #[test]
    fn kmeans_with_few_points_returns_them() {
        let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let c = kmeans(&data, 2, 5, 10, 0);
        assert_eq!(c.len(), 10);
        assert_eq!(&c[..6], &data);
        assert_eq!(&c[6..], &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(kmeans(&[], 3, 2, 10, 0), vec![0.0; 6]);
    }

    #[test]
    fn rng_is_deterministic_and_spread() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        assert!(xs.iter().all(|&x| x == b.next_u64()));
        let mut counts = [0usize; 10];
        for _ in 0..10_000 {
            counts[a.below(10)] += 1;
        }
        assert!(counts.iter().all(|&c| (900..1100).contains(&c)), "{counts:?}");
        let m: f64 = (0..10_000).map(|_| a.gaussian() as f64).sum::<f64>() / 10_000.0;
        assert!(m.abs() < 0.05);
    }
}
