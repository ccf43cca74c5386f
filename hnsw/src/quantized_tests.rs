//! Quantized graphs end to end: recall against the f32 graph, memory, save/load, rebuild.

use crate::codec::{BinaryEncoding as E, BinaryQueryEncoding as Q, Compression, Quantization, TurboBits};
use crate::graph::Params;
use crate::kernels::Metric;
use crate::{Error, Hnsw};

/// `n` vectors of `dim` values uniform in [-0.5, 0.5), from a seeded LCG.
pub(crate) fn uniform(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect()
}

/// Points spanned by 16 fixed random directions plus a little noise: data of low intrinsic
/// dimension, like embeddings (on uniform random 128-d data no index finds neighbours well).
fn latent(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let basis = uniform(16, dim, 0x1a7e);
    let mix = uniform(n, 16, seed);
    let noise = uniform(n, dim, seed ^ 0x5eed);
    mix.iter()
        .zip(&noise)
        .map(|(z, e)| {
            (0..dim)
                .map(|i| z.iter().zip(&basis).map(|(z, b)| z * b[i]).sum::<f32>() + 0.1 * e[i])
                .collect()
        })
        .collect()
}

/// The data for `metric`: normalised for InnerProduct (the node normalises cosine vectors).
fn data_for(metric: Metric, n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut data = latent(n, dim, seed);
    if metric == Metric::InnerProduct {
        for v in &mut data {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }
    data
}

fn params(dim: usize, metric: Metric) -> Params {
    Params {
        dim,
        m: 16,
        ef_construct: 100,
        metric,
    }
}

fn sample(data: &[Vec<f32>]) -> Vec<&[f32]> {
    data.iter().take(2000).map(|v| &v[..]).collect()
}

fn build(params: Params, q: Option<&Quantization>, data: &[Vec<f32>]) -> Hnsw {
    let index = match q {
        None => Hnsw::new(params, data.len()).unwrap(),
        Some(q) => Hnsw::quantized(params, data.len(), q, &sample(data)).unwrap(),
    };
    for (i, v) in data.iter().enumerate() {
        index.add(i as u32, v).unwrap();
    }
    index
}

struct Truth {
    queries: Vec<Vec<f32>>,
    top: Vec<Vec<u32>>,
}

fn truth(data: &[Vec<f32>], queries: Vec<Vec<f32>>, metric: Metric) -> Truth {
    let kernel = metric.kernel();
    let top = queries
        .iter()
        .map(|q| {
            let mut all: Vec<(f32, u32)> = data.iter().enumerate().map(|(i, v)| (kernel(q, v), i as u32)).collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            all.iter().take(10).map(|x| x.1).collect()
        })
        .collect();
    Truth { queries, top }
}

/// recall@10 taking `candidates` from the graph at breadth `ef`, rescored exactly with the
/// original vectors when more than 10.
fn recall(index: &Hnsw, data: &[Vec<f32>], t: &Truth, ef: usize, candidates: usize) -> f64 {
    let kernel = index.params().metric.kernel();
    let mut hits = 0;
    for (q, want) in t.queries.iter().zip(&t.top) {
        let mut got: Vec<(f32, u32)> = index
            .search(q, candidates, ef, None)
            .unwrap()
            .into_iter()
            .map(|(k, d)| {
                (
                    if candidates > 10 {
                        kernel(q, &data[k as usize])
                    } else {
                        d
                    },
                    k,
                )
            })
            .collect();
        got.sort_by(|a, b| a.0.total_cmp(&b.0));
        hits += got.iter().take(10).filter(|(_, k)| want.contains(k)).count();
    }
    hits as f64 / (10 * t.queries.len()) as f64
}

const EF: usize = 64;

/// Builds the f32 graph and every code's graph on the same 5000 x 128 vectors; checks each
/// code's recall@10 (40 candidates rescored) against the f32 graph's, and the floors given.
fn recall_against_f32(metric: Metric, binary_floors: [(E, Q, f64); 6], best_binary: (E, Q)) {
    let (n, dim) = (5000, 128);
    let data = data_for(metric, n, dim, 21);
    let t = truth(&data, data_for(metric, 100, dim, 22), metric);
    let p = params(dim, metric);
    let exact = recall(&build(p, None, &data), &data, &t, EF, 10);
    assert!(exact >= 0.95, "{metric:?} f32 recall {exact}");

    for quantile in [None, Some(0.99)] {
        let q = Quantization::Scalar { quantile };
        let index = build(p, Some(&q), &data);
        let (straight, rescored) = (recall(&index, &data, &t, EF, 10), recall(&index, &data, &t, EF, 40));
        println!("{metric:?} {q:?}: recall {straight:.3}, rescored {rescored:.3} (f32 {exact:.3})");
        assert!(rescored >= exact - 0.01, "{metric:?} {q:?}: {rescored} vs f32 {exact}");
        assert!(straight >= 0.9, "{metric:?} {q:?}: recall without rescoring {straight}");
    }
    // Product and TurboQuant graphs: rescored x4, the 4-bit-ish codes reach the f32 recall.
    for (q, floor) in [
        (
            Quantization::Product {
                compression: Compression::X4,
            },
            exact - 0.01,
        ),
        (
            Quantization::Product {
                compression: Compression::X8,
            },
            0.9,
        ),
        (Quantization::Turbo { bits: TurboBits::Bits4 }, exact - 0.01),
        (Quantization::Turbo { bits: TurboBits::Bits2 }, 0.85),
    ] {
        let index = build(p, Some(&q), &data);
        let rescored = recall(&index, &data, &t, EF, 40);
        println!("{metric:?} {q:?}: rescored x4 {rescored:.3} (f32 {exact:.3})");
        assert!(rescored >= floor, "{metric:?} {q:?}: rescored {rescored} below {floor}");
        assert_eq!(index.quantization(), Some(q));
    }
    for (encoding, query_encoding, floor) in binary_floors {
        let q = Quantization::Binary {
            encoding,
            query_encoding,
        };
        let index = build(p, Some(&q), &data);
        let rescored = recall(&index, &data, &t, EF, 40);
        let wide = recall(&index, &data, &t, EF, 100);
        println!("{metric:?} {q:?}: rescored x4 {rescored:.3}, x10 {wide:.3} (f32 {exact:.3})");
        assert!(rescored >= floor, "{metric:?} {q:?}: rescored {rescored} below {floor}");
        if (encoding, query_encoding) == best_binary {
            assert!(wide >= exact - 0.01, "{metric:?} {q:?}: x10 {wide} vs f32 {exact}");
        }
    }
}

#[test]
fn quantized_inner_product_graphs_find_the_neighbours() {
    recall_against_f32(
        Metric::InnerProduct,
        [
            (E::OneBit, Q::Default, 0.8),
            (E::OneBit, Q::Scalar4Bits, 0.92),
            (E::TwoBits, Q::Binary, 0.92),
            (E::TwoBits, Q::Scalar8Bits, 0.95),
            (E::OneAndHalfBits, Q::Default, 0.87),
            (E::OneAndHalfBits, Q::Scalar8Bits, 0.92),
        ],
        (E::TwoBits, Q::Scalar8Bits),
    );
}

#[test]
fn quantized_l2_graphs_find_the_neighbours() {
    recall_against_f32(
        Metric::L2sq,
        [
            (E::OneBit, Q::Default, 0.75),
            (E::OneBit, Q::Scalar8Bits, 0.88),
            (E::TwoBits, Q::Default, 0.9),
            (E::TwoBits, Q::Scalar4Bits, 0.94),
            (E::OneAndHalfBits, Q::Binary, 0.83),
            (E::OneAndHalfBits, Q::Scalar8Bits, 0.9),
        ],
        (E::TwoBits, Q::Scalar8Bits),
    );
}

#[test]
fn quantized_records_are_smaller() {
    let (n, dim) = (1000, 128);
    let data = data_for(Metric::L2sq, n, dim, 31);
    let p = params(dim, Metric::L2sq);
    let f32_graph = build(p, None, &data);
    let base = f32_graph.memory_usage();
    let cases = [
        // (code, code words: int8 a quarter of the f32 words plus the correction word, one bit
        // a 32nd, two bits a 16th, one and a half bits 3/64 rounded up to 64-bit words)
        (Quantization::Scalar { quantile: None }, 1 + dim / 4),
        (
            Quantization::Binary {
                encoding: E::OneBit,
                query_encoding: Q::Default,
            },
            dim / 32,
        ),
        (
            Quantization::Binary {
                encoding: E::TwoBits,
                query_encoding: Q::Default,
            },
            dim / 16,
        ),
        (
            Quantization::Binary {
                encoding: E::OneAndHalfBits,
                query_encoding: Q::Scalar8Bits,
            },
            6,
        ),
    ];
    for (q, words) in cases {
        let index = build(p, Some(&q), &data);
        assert_eq!(index.words, words, "{q:?}");
        assert_eq!(index.quantization(), Some(q));
        let used = index.memory_usage();
        // Same layout but the code: the records shrink by the words saved, the code's
        // parameters come on top (upper levels and the key map may differ a little).
        let saved = index.capacity() * (dim - words) * 4;
        let params = index.code.params_memory();
        assert!(used < base, "{q:?}");
        let expected = base as i64 - saved as i64 + params as i64;
        assert!(
            (used as i64 - expected).abs() < (base / 20) as i64,
            "{q:?}: {used} vs {expected}"
        );
        println!(
            "{q:?}: {used} bytes, f32 {base}, code {} of {} bytes per vector",
            words * 4,
            dim * 4
        );
    }
    assert_eq!(f32_graph.quantization(), None);
}

#[test]
fn quantized_graphs_save_load_rebuild_and_check_their_vectors() {
    let (n, dim) = (1500, 64);
    for (metric, q) in [
        (Metric::InnerProduct, Quantization::Scalar { quantile: Some(0.98) }),
        (Metric::L2sq, Quantization::Scalar { quantile: None }),
        (Metric::L1, Quantization::Scalar { quantile: None }),
        (
            Metric::InnerProduct,
            Quantization::Binary {
                encoding: E::TwoBits,
                query_encoding: Q::Scalar8Bits,
            },
        ),
        (
            Metric::L2sq,
            Quantization::Binary {
                encoding: E::OneAndHalfBits,
                query_encoding: Q::Default,
            },
        ),
        (
            Metric::L2sq,
            Quantization::Binary {
                encoding: E::OneBit,
                query_encoding: Q::Scalar4Bits,
            },
        ),
    ] {
        let data = data_for(metric, n, dim, 41);
        let index = build(params(dim, metric), Some(&q), &data);
        for key in (0..n as u32).step_by(5) {
            index.remove(key);
        }
        // `holds`: the stored code is the code of the vector, and only of it.
        assert!(index.holds(1, &data[1]));
        assert!(!index.holds(1, &data[2]));
        assert!(!index.holds(0, &data[0]), "removed");
        assert!(!index.holds(1, &data[1][1..]));
        // `get` decodes: close to the vector, not equal.
        let got = index.get(1).unwrap();
        assert_eq!(got.len(), dim);
        assert!(got != data[1]);
        let err: f32 = got.iter().zip(&data[1]).map(|(a, b)| (a - b).abs()).sum::<f32>() / dim as f32;
        let scale: f32 = data[1].iter().map(|x| x.abs()).sum::<f32>() / dim as f32;
        assert!(err < scale, "{q:?}: decoding error {err} of values about {scale}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph.hnsw");
        index.save(&path).unwrap();
        let loaded = Hnsw::load(&path, 10).unwrap();
        assert_eq!(loaded.quantization(), Some(q));
        assert_eq!(loaded.params(), index.params());
        assert_eq!((loaded.len(), loaded.tombstones()), (index.len(), index.tombstones()));
        assert_eq!(
            (loaded.words, loaded.code.params_memory()),
            (index.words, index.code.params_memory())
        );
        for (i, v) in data.iter().enumerate().step_by(37) {
            assert_eq!(
                loaded.search(v, 10, 40, None).unwrap(),
                index.search(v, 10, 40, None).unwrap()
            );
            assert_eq!(loaded.get(i as u32), index.get(i as u32));
            assert_eq!(loaded.holds(i as u32, v), i % 5 != 0);
        }
        // A new vector is encoded with the loaded code as with the original.
        loaded.add(100_000, &data[3]).unwrap();
        assert_eq!(loaded.get(100_000), index.get(3));

        let bytes = std::fs::read(&path).unwrap();
        for at in [40, bytes.len() / 3, bytes.len() - 20] {
            let mut broken = bytes.clone();
            broken[at] ^= 1;
            std::fs::write(&path, &broken).unwrap();
            assert!(matches!(Hnsw::load(&path, 0), Err(Error::Format(_))), "{q:?} byte {at}");
        }
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(Hnsw::load(&path, 0).is_err());

        // Rebuilding keeps the code and copies the codes as they are.
        let rebuilt = index.rebuilt(2).unwrap();
        assert_eq!(rebuilt.quantization(), Some(q));
        assert_eq!((rebuilt.len(), rebuilt.tombstones()), (index.len(), 0));
        for (i, v) in data.iter().enumerate().step_by(7) {
            assert_eq!(rebuilt.get(i as u32), index.get(i as u32));
            assert_eq!(rebuilt.holds(i as u32, v), i % 5 != 0);
        }
        let live = |k: u32| k % 5 != 0;
        let t = truth(&data, data_for(metric, 30, dim, 42), metric);
        let hits = |g: &Hnsw| {
            t.queries
                .iter()
                .map(|q| {
                    g.search(q, 10, 64, None)
                        .unwrap()
                        .iter()
                        .filter(|(k, _)| live(*k))
                        .count()
                })
                .sum::<usize>()
        };
        assert_eq!(hits(&rebuilt), 300);
        let (before, after) = (recall(&index, &data, &t, 64, 40), recall(&rebuilt, &data, &t, 64, 40));
        assert!(
            (before - after).abs() <= 0.1,
            "{q:?}: recall {before} before rebuilding, {after} after"
        );
    }
}

#[test]
fn bad_quantization_requests_are_errors() {
    let data = data_for(Metric::L2sq, 50, 8, 51);
    let s = sample(&data);
    let p = params(8, Metric::L2sq);
    for q in [
        Quantization::Scalar { quantile: Some(0.3) },
        Quantization::Scalar {
            quantile: Some(f32::NAN),
        },
    ] {
        assert!(matches!(Hnsw::quantized(p, 10, &q, &s), Err(Error::Params(_))), "{q:?}");
    }
    let scalar = Quantization::Scalar { quantile: None };
    assert!(matches!(Hnsw::quantized(p, 10, &scalar, &[]), Err(Error::Params(_))));
    let short = [0.5f32; 7];
    assert!(matches!(
        Hnsw::quantized(p, 10, &scalar, &[&short]),
        Err(Error::Dimension { got: 7, want: 8 })
    ));
    let nan = [f32::NAN; 8];
    assert!(matches!(
        Hnsw::quantized(p, 10, &scalar, &[&nan]),
        Err(Error::Params(_))
    ));
    assert!(Hnsw::quantized(Params { m: 1, ..p }, 10, &scalar, &s).is_err());
    // A quantized graph checks its input like the f32 graph.
    let index = Hnsw::quantized(p, 2, &scalar, &s).unwrap();
    assert!(matches!(
        index.add(0, &[0.0; 3]),
        Err(Error::Dimension { got: 3, want: 8 })
    ));
    assert!(index.search(&[0.0; 9], 1, 10, None).is_err());
    assert!(index.search(&data[0], 3, 10, None).unwrap().is_empty());
    index.add(0, &data[0]).unwrap();
    index.add(1, &data[1]).unwrap();
    assert!(matches!(index.add(2, &data[2]), Err(Error::Full(2))));
    assert_eq!(index.search(&data[1], 1, 10, None).unwrap()[0].0, 1);
}
