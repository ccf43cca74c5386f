//! Multivector graphs end to end: recall against exact MaxSim, save/load, removal, rebuild.

use crate::graph::Params;
use crate::kernels::Metric;
use crate::quantized_tests::uniform;
use crate::{Error, Hnsw};

/// `n` multivectors of 1..=5 rows of `dim` values (rows normalised: cosine data).
fn multivectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let rows = uniform(n * 5, dim, seed.wrapping_add(0x9e37_79b9));
    (0..n)
        .map(|i| {
            let count = 1 + (i * 7 + seed as usize) % 5;
            rows[i * 5..i * 5 + count]
                .iter()
                .flat_map(|r| {
                    let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                    r.iter().map(move |x| x / norm)
                })
                .collect()
        })
        .collect()
}

/// Exact MaxSim (larger is nearer) of a query to a stored multivector.
fn max_sim(q: &[f32], d: &[f32], dim: usize) -> f32 {
    q.chunks(dim)
        .map(|q| {
            d.chunks(dim)
                .map(|d| q.iter().zip(d).map(|(a, b)| a * b).sum::<f32>())
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .sum()
}

fn exact_top(data: &[Vec<f32>], q: &[f32], dim: usize, k: usize) -> Vec<u32> {
    let mut scored: Vec<(u32, f32)> = data
        .iter()
        .enumerate()
        .map(|(i, d)| (i as u32, max_sim(q, d, dim)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.into_iter().take(k).map(|(i, _)| i).collect()
}

fn recall(index: &Hnsw, data: &[Vec<f32>], queries: &[Vec<f32>], dim: usize, ef: usize) -> f64 {
    let mut found = 0;
    for q in queries {
        let truth = exact_top(data, q, dim, 10);
        let got: Vec<u32> = index.search(q, 10, ef, None).unwrap().iter().map(|h| h.0).collect();
        found += truth.iter().filter(|t| got.contains(t)).count();
    }
    found as f64 / (queries.len() * 10) as f64
}

fn params(dim: usize) -> Params {
    Params {
        dim,
        m: 16,
        ef_construct: 100,
        metric: Metric::InnerProduct,
    }
}

#[test]
fn a_multivector_graph_finds_the_maxsim_neighbours() {
    let dim = 16;
    let data = multivectors(2000, dim, 3);
    let queries = multivectors(40, dim, 99);
    let index = Hnsw::multi(params(dim), data.len()).unwrap();
    assert!(index.is_multi());
    for (i, v) in data.iter().enumerate() {
        index.add(i as u32, v).unwrap();
    }
    // Uniform random rows are the hard case for any graph; recall still rises with ef.
    let (low, high) = (
        recall(&index, &data, &queries, dim, 32),
        recall(&index, &data, &queries, dim, 256),
    );
    eprintln!("multivector recall@10: ef 32 {low}, ef 256 {high}");
    assert!(high >= 0.95 && high >= low, "recall {low} -> {high}");
    // The nearest of a stored multivector is itself, at distance |Q| - MaxSim(Q, Q) = 0.
    let hit = index.search(&data[5], 1, 64, None).unwrap()[0];
    assert_eq!(hit.0, 5);
    assert!(hit.1.abs() < 1e-4, "{hit:?}");
    assert_eq!(index.get(5).unwrap(), data[5]);
    assert!(index.holds(5, &data[5]) && !index.holds(5, &data[6]));
    // A length that is not whole rows is refused, for adding and searching alike.
    assert!(matches!(
        index.add(1, &vec![0.1; dim + 1]),
        Err(Error::Dimension { .. })
    ));
    assert!(matches!(
        index.search(&[0.0; 3], 1, 16, None),
        Err(Error::Dimension { .. })
    ));
}

#[test]
fn a_multivector_graph_saves_loads_removes_and_rebuilds() {
    let dim = 8;
    let data = multivectors(600, dim, 5);
    let index = Hnsw::multi(params(dim), data.len()).unwrap();
    for (i, v) in data.iter().enumerate() {
        index.add(i as u32, v).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("multi.hnsw");
    index.save(&path).unwrap();
    let loaded = Hnsw::load(&path, 0).unwrap();
    assert!(loaded.is_multi());
    for i in [0usize, 17, 599] {
        assert_eq!(loaded.get(i as u32).unwrap(), data[i]);
        assert_eq!(
            loaded.search(&data[i], 5, 64, None).unwrap(),
            index.search(&data[i], 5, 64, None).unwrap()
        );
    }
    for key in 0..300 {
        assert!(index.remove(key));
    }
    // One thread: a deterministic graph. Built by two, the asymmetric MaxSim links left the
    // searched node unreachable in about one rebuild of six (see the issue note).
    let rebuilt = index.rebuilt(1).unwrap();
    assert_eq!(rebuilt.len(), 300);
    assert!(
        rebuilt.code.params_memory() < index.code.params_memory() * 6 / 10,
        "the rebuilt store keeps the live rows only"
    );
    let hit = rebuilt.search(&data[450], 1, 64, None).unwrap()[0];
    assert_eq!(hit.0, 450);
    assert!(rebuilt
        .search(&data[10], 10, 64, None)
        .unwrap()
        .iter()
        .all(|h| h.0 >= 300));
}

/// Keys a search for their own multivector at `ef` does not return first.
fn not_found(index: &Hnsw, data: &[Vec<f32>], ef: usize) -> Vec<u32> {
    (0..data.len() as u32)
        .filter(|&k| index.search(&data[k as usize], 1, ef, None).unwrap()[0].0 != k)
        .collect()
}

#[test]
fn a_multivector_graph_built_by_several_threads_reaches_every_node() {
    let dim = 8;
    for seed in 0..6u64 {
        let data = multivectors(1500, dim, 40 + seed);
        let index = Hnsw::multi(params(dim), data.len()).unwrap();
        crate::graph::tests::add_concurrently(&index, &data, 4);
        let before = index.unreachable().len() + index.one_way().len();
        let relinked = index.repair();
        assert!(relinked >= before);
        for (name, graph) in [("built", &index), ("rebuilt", &index.rebuilt(3).unwrap())] {
            let orphans = graph.unreachable();
            let (lost64, lost512) = (not_found(graph, &data, 64), not_found(graph, &data, 512));
            eprintln!("seed {seed} {name}: {before} relinked; orphans {orphans:?}, not found at ef 64 {lost64:?}, at 512 {lost512:?}");
            // Every node can be reached. MaxSim being asymmetric, a few may still be missed by a
            // search for their own rows: seen 0-14 in 1 500 at ef 512, mostly 0 (before the
            // symmetric building distance and the repair: 98 at ef 64).
            assert!(orphans.is_empty(), "{orphans:?}");
            assert!(lost512.len() <= data.len() / 50 && lost64.len() <= data.len() / 50);
        }
    }
}

/// recall@10 after rescoring the graph's top `candidates` with exact MaxSim.
fn rescored_recall(index: &Hnsw, data: &[Vec<f32>], queries: &[Vec<f32>], dim: usize, candidates: usize) -> f64 {
    let mut found = 0;
    for q in queries {
        let truth = exact_top(data, q, dim, 10);
        let mut got: Vec<(u32, f32)> = index
            .search(q, candidates, 256, None)
            .unwrap()
            .iter()
            .map(|h| (h.0, max_sim(q, &data[h.0 as usize], dim)))
            .collect();
        got.sort_by(|a, b| b.1.total_cmp(&a.1));
        got.truncate(10);
        found += truth.iter().filter(|t| got.iter().any(|g| g.0 == **t)).count();
    }
    found as f64 / (queries.len() * 10) as f64
}

#[test]
fn quantized_and_compact_multivector_rows_find_the_maxsim_neighbours_after_rescoring() {
    use crate::{BinaryEncoding, BinaryQueryEncoding, Compression, Precision, Quantization, TurboBits};
    let dim = 32;
    let data = multivectors(1500, dim, 11);
    let queries = multivectors(30, dim, 77);
    let refs: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
    let f32_graph = Hnsw::multi(params(dim), data.len()).unwrap();
    let codes = [
        Quantization::Scalar { quantile: None },
        Quantization::Binary {
            encoding: BinaryEncoding::OneBit,
            query_encoding: BinaryQueryEncoding::Scalar8Bits,
        },
        Quantization::Product {
            compression: Compression::X4,
        },
        Quantization::Turbo { bits: TurboBits::Bits4 },
    ];
    let mut graphs: Vec<(String, Hnsw)> = codes
        .iter()
        .map(|q| {
            let g = Hnsw::multi_quantized(params(dim), data.len(), q, &refs[..500]).unwrap();
            assert_eq!(g.quantization(), Some(*q));
            (format!("{q:?}"), g)
        })
        .collect();
    let f16 = Hnsw::multi_with_precision(params(dim), data.len(), Precision::F16).unwrap();
    assert_eq!((f16.precision(), f16.quantization()), (Some(Precision::F16), None));
    graphs.push(("F16".into(), f16));
    for (i, v) in data.iter().enumerate() {
        f32_graph.add(i as u32, v).unwrap();
        for (_, g) in &graphs {
            g.add(i as u32, v).unwrap();
        }
    }
    let base = rescored_recall(&f32_graph, &data, &queries, dim, 40);
    for (name, g) in &graphs {
        assert!(g.is_multi());
        // The rows take less memory than f32 rows (bytes: a quarter for scalar, ...).
        assert!(g.code.params_memory() < f32_graph.code.params_memory(), "{name}");
        // One bit per value of a 32-value row says little: binary codes need more candidates
        // (Qdrant's guidance: binary for high dimensions, with oversampling).
        let candidates = if name.starts_with("Binary") { 200 } else { 40 };
        let r = rescored_recall(g, &data, &queries, dim, candidates);
        eprintln!("{name}: rescored recall@10 {r} from {candidates} candidates (f32 rows {base})");
        assert!(r >= base - 0.02, "{name}: {r} vs {base}");
        // Saved and loaded, the same code answers the same; rebuilt, it keeps the row codes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.hnsw");
        g.save(&path).unwrap();
        let loaded = Hnsw::load(&path, 0).unwrap();
        assert_eq!(
            (loaded.quantization(), loaded.precision()),
            (g.quantization(), g.precision())
        );
        assert_eq!(
            loaded.search(&queries[0], 5, 64, None).unwrap(),
            g.search(&queries[0], 5, 64, None).unwrap(),
            "{name}"
        );
        let rebuilt = g.rebuilt(2).unwrap();
        assert_eq!(rebuilt.get(7), g.get(7), "{name}");
        assert!(
            rescored_recall(&rebuilt, &data, &queries, dim, candidates) >= base - 0.03,
            "{name}"
        );
    }
    // A sample that is not whole rows is refused.
    assert!(Hnsw::multi_quantized(params(dim), 10, &codes[0], &[&[0.5; 33][..]]).is_err());
}

#[test]
fn uint8_multivector_rows_keep_their_integers_and_answer_like_f32_rows() {
    let dim = 12;
    // Whole numbers 0..=255, as a `datatype: uint8` collection holds them.
    let data: Vec<Vec<f32>> = multivectors(400, dim, 21)
        .into_iter()
        .map(|v| v.iter().map(|x| ((x + 1.0) * 127.0).round()).collect())
        .collect();
    let p = Params {
        metric: Metric::L2sq,
        ..params(dim)
    };
    let f32_rows = Hnsw::multi(p, data.len()).unwrap();
    let u8_rows = Hnsw::multi_with_precision(p, data.len(), crate::Precision::U8).unwrap();
    for (i, v) in data.iter().enumerate() {
        f32_rows.add(i as u32, v).unwrap();
        u8_rows.add(i as u32, v).unwrap();
    }
    assert!(u8_rows.code.params_memory() * 2 < f32_rows.code.params_memory());
    for k in [0u32, 99, 399] {
        assert_eq!(u8_rows.get(k).unwrap(), data[k as usize]);
        assert_eq!(
            u8_rows.search(&data[k as usize], 10, 64, None).unwrap(),
            f32_rows.search(&data[k as usize], 10, 64, None).unwrap()
        );
    }
}
