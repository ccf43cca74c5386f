//! Queries per second of the graph on 100k random 128-d vectors (ignored: run it by hand with
//! `cargo test --release -p hnsw --test qps -- --ignored --nocapture`).

use std::time::Instant;

use hnsw::{Hnsw, Metric, Params};

fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..n).map(|_| (0..dim).map(|_| next()).collect()).collect()
}

fn build(params: Params, data: &[Vec<f32>]) -> Hnsw {
    let index = Hnsw::new(params, data.len()).unwrap();
    std::thread::scope(|s| {
        for t in 0..2 {
            let index = &index;
            s.spawn(move || {
                for i in (t..data.len()).step_by(2) {
                    index.add(i as u32, &data[i]).unwrap();
                }
            });
        }
    });
    index
}

/// Best of `rounds` single-threaded passes over `queries`.
fn qps(index: &Hnsw, queries: &[Vec<f32>], ef: usize, rounds: usize) -> f64 {
    let mut best = 0f64;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut found = 0;
        for q in queries {
            found += index.search(q, 10, ef, None).unwrap().len();
        }
        assert_eq!(found, 10 * queries.len());
        best = best.max(queries.len() as f64 / t.elapsed().as_secs_f64());
    }
    best
}

#[test]
#[ignore]
fn f32_queries_per_second() {
    let (n, dim) = (100_000, 128);
    let data = random_vectors(n, dim, 1);
    let queries = random_vectors(2_000, dim, 2);
    for metric in [Metric::L2sq, Metric::InnerProduct] {
        let params = Params {
            dim,
            m: 16,
            ef_construct: 100,
            metric,
        };
        let t = Instant::now();
        let index = build(params, &data);
        let built = t.elapsed().as_secs_f64();
        for ef in [64, 128] {
            let q = qps(&index, &queries, ef, 5);
            println!("f32 {metric:?} n={n} dim={dim} ef={ef}: {q:.0} queries/s (built in {built:.1}s)");
        }
    }
}

/// Vectors around `clusters` random centres (spread 1) with noise of `noise`.
fn clustered(n: usize, dim: usize, clusters: usize, noise: f32, seed: u64) -> Vec<Vec<f32>> {
    let centres = random_vectors(clusters, dim, seed ^ 0xc1);
    let offsets = random_vectors(n, dim, seed);
    offsets
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            let c = &centres[(i * 7) % clusters];
            c.iter().zip(&o).map(|(c, o)| 2.0 * c + noise * 2.0 * o).collect()
        })
        .collect()
}

/// Vectors spanned by `latent` random directions (each point a random mix of them) plus noise
/// of `noise`: data of low intrinsic dimension, like embeddings.
fn latent(n: usize, dim: usize, latent: usize, noise: f32, seed: u64) -> Vec<Vec<f32>> {
    let basis = random_vectors(latent, dim, 0x1a7e);
    let mix = random_vectors(n, latent, seed);
    let jitter = random_vectors(n, dim, seed ^ 0x5eed);
    mix.iter()
        .zip(&jitter)
        .map(|(z, j)| {
            (0..dim)
                .map(|i| z.iter().zip(&basis).map(|(z, b)| z * b[i]).sum::<f32>() + noise * j[i])
                .collect()
        })
        .collect()
}

fn normalised(mut data: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    for v in &mut data {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
    }
    data
}

fn exact_top(data: &[Vec<f32>], q: &[f32], k: usize, metric: Metric) -> Vec<u32> {
    let kernel = metric.kernel();
    let mut all: Vec<(f32, u32)> = data.iter().enumerate().map(|(i, v)| (kernel(q, v), i as u32)).collect();
    all.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
    all.truncate(k);
    all.into_iter().map(|x| x.1).collect()
}

/// (recall@10 straight, recall@10 of 40 candidates rescored exactly, queries/s straight)
fn measure(index: &Hnsw, data: &[Vec<f32>], queries: &[Vec<f32>], truth: &[Vec<u32>], ef: usize) -> (f64, f64, f64) {
    let kernel = index.params().metric.kernel();
    let (mut straight, mut rescored) = (0, 0);
    for (q, want) in queries.iter().zip(truth) {
        let got = index.search(q, 10, ef, None).unwrap();
        straight += got.iter().filter(|(k, _)| want.contains(k)).count();
        let over: usize = std::env::var("QOVER").map_or(4, |v| v.parse().unwrap());
        let mut wide: Vec<(f32, u32)> = index
            .search(q, 10 * over, ef, None)
            .unwrap()
            .into_iter()
            .map(|(k, _)| (kernel(q, &data[k as usize]), k))
            .collect();
        wide.sort_by(|a, b| a.0.total_cmp(&b.0));
        rescored += wide.iter().take(10).filter(|(_, k)| want.contains(k)).count();
    }
    let total = (10 * queries.len()) as f64;
    (
        straight as f64 / total,
        rescored as f64 / total,
        qps(index, queries, ef, 3),
    )
}

#[test]
#[ignore]
fn quantized_recall_speed_and_memory() {
    use hnsw::{BinaryEncoding as E, BinaryQueryEncoding as Q, Quantization};
    let (n, dim, ef) = (
        std::env::var("QN").map_or(10_000, |v| v.parse().unwrap()),
        std::env::var("QDIM").map_or(128, |v| v.parse().unwrap()),
        std::env::var("QEF").map_or(64, |v| v.parse().unwrap()),
    );
    let codes = [
        Quantization::Scalar { quantile: None },
        Quantization::Scalar { quantile: Some(0.99) },
        Quantization::Binary {
            encoding: E::OneBit,
            query_encoding: Q::Default,
        },
        Quantization::Binary {
            encoding: E::OneBit,
            query_encoding: Q::Scalar4Bits,
        },
        Quantization::Binary {
            encoding: E::OneBit,
            query_encoding: Q::Scalar8Bits,
        },
        Quantization::Binary {
            encoding: E::TwoBits,
            query_encoding: Q::Default,
        },
        Quantization::Binary {
            encoding: E::TwoBits,
            query_encoding: Q::Scalar8Bits,
        },
        Quantization::Binary {
            encoding: E::OneAndHalfBits,
            query_encoding: Q::Default,
        },
        Quantization::Binary {
            encoding: E::OneAndHalfBits,
            query_encoding: Q::Scalar8Bits,
        },
    ];
    for (name, raw, raw_q) in [
        ("random", random_vectors(n, dim, 11), random_vectors(200, dim, 12)),
        (
            "clustered",
            clustered(n, dim, 50, 0.5, 13),
            clustered(200, dim, 50, 0.5, 14),
        ),
        ("latent16", latent(n, dim, 16, 0.1, 15), latent(200, dim, 16, 0.1, 16)),
    ] {
        if !std::env::var("QDATA").map_or(true, |d| d.split(',').any(|d| d == name)) {
            continue;
        }
        for metric in [Metric::InnerProduct, Metric::L2sq] {
            let (data, queries) = if metric == Metric::InnerProduct {
                (normalised(raw.clone()), normalised(raw_q.clone()))
            } else {
                (raw.clone(), raw_q.clone())
            };
            let truth: Vec<Vec<u32>> = queries.iter().map(|q| exact_top(&data, q, 10, metric)).collect();
            let params = Params {
                dim,
                m: 16,
                ef_construct: 100,
                metric,
            };
            let f32_index = build(params, &data);
            let (r, _, q) = measure(&f32_index, &data, &queries, &truth, ef);
            let base_mem = f32_index.memory_usage();
            println!("{name} {metric:?} f32: recall {r:.3} qps {q:.0} memory {base_mem}");
            let sample: Vec<&[f32]> = data.iter().take(2000).map(|v| &v[..]).collect();
            for code in &codes {
                let index = Hnsw::quantized(params, n, code, &sample).unwrap();
                let t = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..2 {
                        let (index, data) = (&index, &data);
                        s.spawn(move || {
                            for i in (t..data.len()).step_by(2) {
                                index.add(i as u32, &data[i]).unwrap();
                            }
                        });
                    }
                });
                let built = t.elapsed().as_secs_f64();
                let (r, rr, q) = measure(&index, &data, &queries, &truth, ef);
                println!(
                    "  {code:?}: recall {r:.3} rescored {rr:.3} qps {q:.0} memory {:.3} built {built:.1}s",
                    index.memory_usage() as f64 / base_mem as f64
                );
            }
        }
    }
}
