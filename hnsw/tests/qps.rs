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
