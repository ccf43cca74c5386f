//! Builds an [`AnnIndex`] from the dataset and sweeps `ef`: recall@k, queries per CPU-second
//! on one thread, wall QPS on `threads` threads, build rate and memory.

use super::{AnnIndex, IndexError};
use crate::procstat;
use crate::stats::{recall_at_k, LatencyHist, LatencySummary, Mean};
use crate::vecio::Matrix;
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub efs: Vec<usize>,
    pub k: usize,
    pub threads: usize,
    /// Timed passes over the query set (the first also gives recall); the median pass counts.
    pub passes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildStats {
    pub threads: usize,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub adds_per_s: f64,
    pub adds_per_cpu_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryStats {
    /// What the index reports (usearch `memory_usage`).
    pub index_bytes: Option<u64>,
    /// Growth of this process's RSS across the build.
    pub rss_delta_bytes: i64,
    pub index_bytes_per_vector: Option<f64>,
    pub rss_bytes_per_vector: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub ef: usize,
    pub recall: f64,
    /// Single thread: queries per CPU-second of the searching thread (median pass).
    pub q_per_cpu_s: f64,
    /// The same, from the least disturbed (fastest) pass.
    pub q_per_cpu_s_best: f64,
    pub qps_1t: f64,
    /// `threads` threads: wall QPS and queries per process CPU-second.
    pub qps_mt: Option<f64>,
    pub q_per_cpu_s_mt: Option<f64>,
    pub latency_1t: LatencySummary,
}

/// Inserts every base row (id = row) from `threads` threads, rows interleaved.
pub fn build(index: &dyn AnnIndex, base: &Matrix<f32>, threads: usize) -> Result<BuildStats, IndexError> {
    let threads = threads.max(1);
    let cpu0 = procstat::process_cpu_seconds();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    for row in (t..base.rows).step_by(threads) {
                        index.add(row as u64, base.row(row))?;
                    }
                    Ok::<(), IndexError>(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| IndexError::Backend("insert thread panicked".into()))??;
        }
        Ok::<(), IndexError>(())
    })?;
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = procstat::process_cpu_seconds() - cpu0;
    Ok(BuildStats {
        threads,
        wall_s,
        cpu_s,
        adds_per_s: base.rows as f64 / wall_s,
        adds_per_cpu_s: base.rows as f64 / cpu_s,
    })
}

/// Median of a non-empty sequence (0 when empty).
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Timings of one (index, ef) cell, one entry per pass: (CPU seconds, wall seconds).
#[derive(Default)]
struct Cell {
    recall: Mean,
    hist: LatencyHist,
    single: Vec<(f64, f64)>,
    multi: Vec<(f64, f64)>,
}

/// One single-thread pass over all queries; recall is taken on the first pass only.
fn single_pass(
    index: &dyn AnnIndex,
    queries: &Matrix<f32>,
    gt: &Matrix<u32>,
    k: usize,
    cell: &mut Cell,
) -> Result<(), IndexError> {
    let first = cell.single.is_empty();
    let cpu0 = procstat::thread_cpu_seconds();
    let t0 = Instant::now();
    for q in 0..queries.rows {
        let t = Instant::now();
        let ids = index.search(queries.row(q), k)?;
        cell.hist.record(t.elapsed());
        if first {
            cell.recall.add(recall_at_k(&ids, gt.row(q), k));
        }
    }
    cell.single
        .push((procstat::thread_cpu_seconds() - cpu0, t0.elapsed().as_secs_f64()));
    Ok(())
}

/// One pass over all queries split over `threads` threads (process CPU seconds).
fn multi_pass(
    index: &dyn AnnIndex,
    queries: &Matrix<f32>,
    k: usize,
    threads: usize,
    cell: &mut Cell,
) -> Result<(), IndexError> {
    let nq = queries.rows;
    let cpu0 = procstat::process_cpu_seconds();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    for q in (t..nq).step_by(threads) {
                        index.search(queries.row(q), k)?;
                    }
                    Ok::<(), IndexError>(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| IndexError::Backend("search thread panicked".into()))??;
        }
        Ok::<(), IndexError>(())
    })?;
    cell.multi
        .push((procstat::process_cpu_seconds() - cpu0, t0.elapsed().as_secs_f64()));
    Ok(())
}

/// Sweeps every index over every ef. Passes are interleaved (pass 1 of every index and ef,
/// then pass 2, ...) and the median pass is reported, so that load from other processes on a
/// shared machine hits all cells alike instead of deciding one of them.
pub fn sweep(
    indexes: &mut [Box<dyn AnnIndex>],
    queries: &Matrix<f32>,
    gt: &Matrix<u32>,
    cfg: &SweepConfig,
) -> Result<Vec<Vec<SweepPoint>>, IndexError> {
    let passes = cfg.passes.max(1);
    let mut cells: Vec<Vec<Cell>> = indexes
        .iter()
        .map(|_| cfg.efs.iter().map(|_| Cell::default()).collect())
        .collect();
    for index in indexes.iter_mut() {
        for &ef in &cfg.efs {
            index.set_ef(ef)?;
            for q in 0..queries.rows.min(200) {
                index.search(queries.row(q), cfg.k)?;
            }
        }
    }
    for pass in 0..passes {
        for (index, row) in indexes.iter_mut().zip(cells.iter_mut()) {
            for (&ef, cell) in cfg.efs.iter().zip(row.iter_mut()) {
                index.set_ef(ef)?;
                single_pass(index.as_ref(), queries, gt, cfg.k, cell)?;
                if cfg.threads > 1 {
                    multi_pass(index.as_ref(), queries, cfg.k, cfg.threads, cell)?;
                }
            }
        }
        eprintln!("qbench baseline: sweep pass {}/{passes} done", pass + 1);
    }
    let nq = queries.rows as f64;
    Ok(cells
        .into_iter()
        .map(|row| {
            cfg.efs
                .iter()
                .zip(row)
                .map(|(&ef, c)| {
                    let per = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| nq / median(v.iter().map(f));
                    let best_cpu = c.single.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
                    SweepPoint {
                        ef,
                        recall: c.recall.get().unwrap_or(0.0),
                        q_per_cpu_s: per(&c.single, |p| p.0),
                        q_per_cpu_s_best: nq / best_cpu,
                        qps_1t: per(&c.single, |p| p.1),
                        qps_mt: (!c.multi.is_empty()).then(|| per(&c.multi, |p| p.1)),
                        q_per_cpu_s_mt: (!c.multi.is_empty()).then(|| per(&c.multi, |p| p.0)),
                        latency_1t: c.hist.summary(),
                    }
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::{BuildParams, IndexSpec};
    use super::*;
    use crate::gen::{LatentMixture, LatentMixtureSpec, SetKind};
    use crate::gt::exact_knn;
    use std::sync::Arc;

    fn data() -> (Arc<Matrix<f32>>, Matrix<f32>, Matrix<u32>) {
        let g = LatentMixture::new(LatentMixtureSpec::new(32, 8, 64, 0.1, 5)).expect("valid");
        let base = g.generate(SetKind::Base, 3000, 2);
        let q = g.generate(SetKind::Query, 100, 1);
        let gt = exact_knn(&base, &q, 32, 10, 2);
        (
            Arc::new(Matrix::new(base, 32)),
            Matrix::new(q, 32),
            Matrix::new(gt.ids, 10),
        )
    }

    fn run(spec: &str, ef: usize) -> SweepPoint {
        let (base, q, gt) = data();
        let params = BuildParams {
            dim: 32,
            capacity: base.rows,
            m: 16,
            ef_construct: 100,
            threads: 2,
        };
        let spec: IndexSpec = spec.parse().expect("spec");
        let index = spec.make(&params, base.clone()).expect("make");
        let b = build(index.as_ref(), &base, 2).expect("build");
        assert!(b.adds_per_s > 0.0);
        let cfg = SweepConfig {
            efs: vec![ef],
            k: 10,
            threads: 2,
            passes: 2,
        };
        let mut indexes = vec![index];
        let mut out = sweep(&mut indexes, &q, &gt, &cfg).expect("sweep");
        out.remove(0).remove(0)
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    #[test]
    fn flat_index_has_perfect_recall() {
        assert_eq!(run("flat", 10).recall, 1.0);
    }

    #[test]
    fn usearch_reaches_high_recall_on_small_data() {
        let p = run("usearch", 128);
        assert!(p.recall >= 0.95, "recall {}", p.recall);
        assert!(p.qps_mt.is_some());
    }

    #[test]
    fn usearch_with_rust_kernel_reaches_high_recall() {
        assert!(run("usearch:kernel=rust", 128).recall >= 0.95);
    }

    #[test]
    fn rescored_f16_reaches_high_recall() {
        assert!(run("usearch:quant=f16:rescore=2", 128).recall >= 0.95);
    }
}
