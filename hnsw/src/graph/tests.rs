//! The graph's own tests: recall for every metric, concurrent inserts, removal, rebuilds.

use super::*;

/// Adds `data[i]` under key `i` from `threads` threads at once (interleaved keys).
pub(crate) fn add_concurrently(index: &Hnsw, data: &[Vec<f32>], threads: usize) {
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                for i in (t..data.len()).step_by(threads) {
                    index.add(i as u32, &data[i]).unwrap();
                }
            });
        }
    });
}

pub(crate) fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    state = splitmix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect()
}

fn params(dim: usize, metric: Metric) -> Params {
    Params {
        dim,
        m: 16,
        ef_construct: 100,
        metric,
    }
}

/// An index holding `n` random vectors under keys 0..n, and the vectors.
fn filled(n: usize, dim: usize, seed: u64, metric: Metric) -> (Hnsw, Vec<Vec<f32>>) {
    let data = random_vectors(n, dim, seed);
    let index = Hnsw::new(params(dim, metric), n).unwrap();
    for (i, v) in data.iter().enumerate() {
        index.add(i as u32, v).unwrap();
    }
    (index, data)
}

fn exact(data: &[Vec<f32>], q: &[f32], k: usize, metric: Metric, skip: impl Fn(u32) -> bool) -> Vec<u32> {
    let kernel = metric.kernel();
    let mut all: Vec<(f32, u32)> = data
        .iter()
        .enumerate()
        .filter(|(i, _)| !skip(*i as u32))
        .map(|(i, v)| (kernel(q, v), i as u32))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

fn recall(
    index: &Hnsw,
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
    metric: Metric,
    skip: impl Fn(u32) -> bool + Copy,
) -> f64 {
    let mut hits = 0;
    for q in queries {
        let want = exact(data, q, 10, metric, skip);
        let filter = move |key: u32| !skip(key);
        let got = index.search(q, 10, 64, Some(&filter)).unwrap();
        hits += got.iter().filter(|(k, _)| want.contains(k)).count();
    }
    hits as f64 / (10 * queries.len()) as f64
}

#[test]
fn finds_nearest_neighbours_for_every_metric() {
    for metric in [Metric::L2sq, Metric::InnerProduct, Metric::L1] {
        let (index, data) = filled(3000, 16, 1, metric);
        let queries = random_vectors(50, 16, 2);
        let r = recall(&index, &data, &queries, metric, |_| false);
        assert!(r >= 0.95, "{metric:?}: recall {r}");
        // Distances are the metric's.
        let hits = index.search(&queries[0], 3, 64, None).unwrap();
        for (key, d) in hits {
            let want = metric.kernel()(&queries[0], &data[key as usize]);
            assert!((d - want).abs() < 1e-5, "{metric:?}");
        }
    }
}

#[test]
fn concurrent_inserts_build_a_good_graph() {
    let data = random_vectors(4000, 24, 3);
    let index = Hnsw::new(params(24, Metric::L2sq), 4000).unwrap();
    add_concurrently(&index, &data, 4);
    assert_eq!(index.len(), 4000);
    let (orphans, one_way) = (index.unreachable().len(), index.one_way().len());
    assert!(index.repair() >= orphans + one_way);
    assert!(index.unreachable().is_empty() && index.one_way().is_empty());
    eprintln!("{orphans} unreachable and {one_way} one-way nodes relinked");
    let r = recall(&index, &data, &random_vectors(50, 24, 4), Metric::L2sq, |_| false);
    assert!(r >= 0.95, "recall {r}");
}

#[test]
fn removed_and_filtered_keys_are_never_returned() {
    let (index, data) = filled(2000, 8, 5, Metric::L2sq);
    for key in (0..2000).step_by(3) {
        assert!(index.remove(key));
    }
    assert!(!index.remove(0));
    assert_eq!(index.len(), 2000 - 667);
    assert_eq!(index.tombstones(), 667);
    assert!(!index.contains(3) && index.contains(4) && index.get(3).is_none());
    let queries = random_vectors(30, 8, 6);
    for q in &queries {
        let hits = index.search(q, 10, 64, None).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|(k, _)| k % 3 != 0));
    }
    let r = recall(&index, &data, &queries, Metric::L2sq, |k| k % 3 == 0 || k % 2 == 0);
    assert!(r >= 0.9, "filtered recall {r}");
}

#[test]
fn rebuilding_drops_tombstones_and_keeps_answers() {
    let (index, data) = filled(3000, 16, 8, Metric::L2sq);
    for key in (0..3000).filter(|k| k % 2 == 1) {
        index.remove(key);
    }
    let rebuilt = index.rebuilt(3).unwrap();
    assert_eq!(
        (rebuilt.len(), rebuilt.allocated(), rebuilt.tombstones()),
        (1500, 1500, 0)
    );
    assert_eq!(rebuilt.get(10).unwrap(), data[10]);
    assert!(rebuilt.get(11).is_none());
    let r = recall(&rebuilt, &data, &random_vectors(50, 16, 9), Metric::L2sq, |k| {
        k % 2 == 1
    });
    assert!(r >= 0.95, "recall {r}");
}

#[test]
fn re_adding_a_key_replaces_its_vector() {
    let index = Hnsw::new(params(2, Metric::L2sq), 4).unwrap();
    index.add(7, &[0.0, 0.0]).unwrap();
    index.add(8, &[5.0, 5.0]).unwrap();
    index.add(7, &[10.0, 10.0]).unwrap();
    assert_eq!(index.len(), 2);
    assert_eq!(index.get(7).unwrap(), vec![10.0, 10.0]);
    let hits = index.search(&[0.0, 0.0], 2, 8, None).unwrap();
    assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![8, 7]);
}

#[test]
fn full_index_refuses_until_reserved_and_bad_input_is_an_error() {
    let mut index = Hnsw::new(params(3, Metric::L2sq), 2).unwrap();
    index.add(0, &[0.0; 3]).unwrap();
    index.add(1, &[1.0; 3]).unwrap();
    assert!(matches!(index.add(2, &[2.0; 3]), Err(Error::Full(2))));
    index.reserve(10).unwrap();
    index.add(2, &[2.0; 3]).unwrap();
    assert_eq!(index.search(&[2.1; 3], 1, 10, None).unwrap()[0].0, 2);
    assert!(matches!(
        index.add(3, &[1.0; 2]),
        Err(Error::Dimension { got: 2, want: 3 })
    ));
    assert!(index.search(&[1.0; 4], 1, 10, None).is_err());
    assert!(Hnsw::new(
        Params {
            m: 1,
            ..params(3, Metric::L2sq)
        },
        1
    )
    .is_err());
    assert!(Hnsw::new(
        Params {
            dim: 0,
            ..params(3, Metric::L2sq)
        },
        1
    )
    .is_err());
    let empty = Hnsw::new(params(3, Metric::L2sq), 1).unwrap();
    assert!(empty.search(&[0.0; 3], 5, 10, None).unwrap().is_empty());
}
