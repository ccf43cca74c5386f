//! A generated dataset on disk: `base.fvecs`, `query.fvecs`, `gt.ivecs` (top-k ids),
//! `gt_dist.fvecs` (their squared L2 distances) and `meta.json`, in a cache directory named
//! after the spec. A directory whose `meta.json` matches the spec is reused as is.

use crate::gen::{LatentMixture, LatentMixtureSpec, SetKind, GENERATOR_VERSION};
use crate::gt::exact_knn;
use crate::vecio::{self, Matrix, VecIoError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(transparent)]
    VecIo(#[from] VecIoError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: bad meta.json: {source}")]
    Meta { path: PathBuf, source: serde_json::Error },
    #[error("invalid dataset spec: {0}")]
    Spec(String),
    #[error("{0}: inconsistent dataset: {1}")]
    Inconsistent(PathBuf, String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub generator: LatentMixtureSpec,
    pub n: usize,
    pub nq: usize,
    pub gt_k: usize,
}

impl DatasetSpec {
    /// Cache directory name, e.g. `lm-d128-l48-k1024-z0.1-s42-n100000-q1000-gt100`.
    pub fn name(&self) -> String {
        let g = &self.generator;
        let mut name = format!(
            "lm-d{}-l{}-k{}-z{}-s{}-n{}-q{}-gt{}",
            g.dim, g.latent, g.clusters, g.noise, g.seed, self.n, self.nq, self.gt_k
        );
        if g.normalize {
            name.push_str("-cos");
        }
        name
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetMeta {
    pub generator_version: u32,
    pub name: String,
    pub spec: DatasetSpec,
    /// "l2" (squared Euclidean GT) or "cosine" (normalised vectors, same order as L2).
    pub distance: String,
    pub gen_seconds: f64,
    pub gt_seconds: f64,
}

pub struct Dataset {
    pub dir: PathBuf,
    pub meta: DatasetMeta,
    pub base: Matrix<f32>,
    pub queries: Matrix<f32>,
    pub gt: Matrix<u32>,
}

const META: &str = "meta.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_meta(dir: &Path) -> Result<Option<DatasetMeta>, DatasetError> {
    let path = dir.join(META);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| DatasetError::Meta { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Returns the dataset directory, generating it first unless a matching one is cached.
pub fn ensure(spec: &DatasetSpec, cache_dir: &Path, threads: usize) -> Result<(PathBuf, bool), DatasetError> {
    let dir = cache_dir.join(spec.name());
    if let Some(meta) = read_meta(&dir)? {
        if meta.spec == *spec && meta.generator_version == GENERATOR_VERSION {
            return Ok((dir, false));
        }
    }
    if spec.n == 0 || spec.nq == 0 || spec.gt_k == 0 {
        return Err(DatasetError::Spec("n, nq and gt_k must be > 0".into()));
    }
    std::fs::create_dir_all(cache_dir).map_err(io(cache_dir))?;
    let tmp = cache_dir.join(format!(".{}.tmp-{}", spec.name(), std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;

    let t0 = Instant::now();
    let model = LatentMixture::new(spec.generator.clone()).map_err(DatasetError::Spec)?;
    let dim = spec.generator.dim;
    let base = model.generate(SetKind::Base, spec.n, threads);
    let queries = model.generate(SetKind::Query, spec.nq, threads);
    let gen_seconds = t0.elapsed().as_secs_f64();
    eprintln!(
        "qbench gen: {} vectors + {} queries in {gen_seconds:.1}s",
        spec.n, spec.nq
    );

    let t1 = Instant::now();
    let gt = exact_knn(&base, &queries, dim, spec.gt_k, threads);
    let gt_seconds = t1.elapsed().as_secs_f64();
    eprintln!("qbench gen: exact top-{} ground truth in {gt_seconds:.1}s", spec.gt_k);

    vecio::write_fvecs(&tmp.join("base.fvecs"), &Matrix::new(base, dim))?;
    vecio::write_fvecs(&tmp.join("query.fvecs"), &Matrix::new(queries, dim))?;
    vecio::write_ivecs(&tmp.join("gt.ivecs"), &Matrix::new(gt.ids, spec.gt_k))?;
    vecio::write_fvecs(&tmp.join("gt_dist.fvecs"), &Matrix::new(gt.dists, spec.gt_k))?;
    let meta = DatasetMeta {
        generator_version: GENERATOR_VERSION,
        name: spec.name(),
        spec: spec.clone(),
        distance: if spec.generator.normalize { "cosine" } else { "l2" }.into(),
        gen_seconds,
        gt_seconds,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|source| DatasetError::Meta {
        path: tmp.join(META),
        source,
    })?;
    std::fs::write(tmp.join(META), meta_json).map_err(io(&tmp))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
    Ok((dir, true))
}

/// Loads a dataset directory written by [`ensure`].
pub fn load(dir: &Path) -> Result<Dataset, DatasetError> {
    let meta = read_meta(dir)?.ok_or_else(|| DatasetError::Inconsistent(dir.to_path_buf(), "no meta.json".into()))?;
    let base = vecio::read_fvecs(&dir.join("base.fvecs"))?;
    let queries = vecio::read_fvecs(&dir.join("query.fvecs"))?;
    let gt = vecio::read_ivecs(&dir.join("gt.ivecs"))?;
    let bad = |m: String| DatasetError::Inconsistent(dir.to_path_buf(), m);
    if base.cols != queries.cols {
        return Err(bad(format!("base dim {} != query dim {}", base.cols, queries.cols)));
    }
    if gt.rows != queries.rows {
        return Err(bad(format!("{} GT rows for {} queries", gt.rows, queries.rows)));
    }
    Ok(Dataset {
        dir: dir.to_path_buf(),
        meta,
        base,
        queries,
        gt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DatasetSpec {
        DatasetSpec {
            generator: LatentMixtureSpec::new(8, 3, 5, 0.1, 9),
            n: 500,
            nq: 7,
            gt_k: 10,
        }
    }

    #[test]
    fn ensure_generates_then_reuses() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (dir, fresh) = ensure(&spec(), tmp.path(), 2).expect("gen");
        assert!(fresh);
        let before = std::fs::read(dir.join("base.fvecs")).expect("read");
        let (dir2, fresh2) = ensure(&spec(), tmp.path(), 1).expect("reuse");
        assert_eq!(dir, dir2);
        assert!(!fresh2);
        let ds = load(&dir).expect("load");
        assert_eq!((ds.base.rows, ds.base.cols), (500, 8));
        assert_eq!((ds.queries.rows, ds.gt.cols), (7, 10));
        // Regenerating elsewhere yields identical bytes.
        let tmp2 = tempfile::tempdir().expect("tempdir");
        let (dir3, _) = ensure(&spec(), tmp2.path(), 3).expect("gen");
        assert_eq!(before, std::fs::read(dir3.join("base.fvecs")).expect("read"));
        assert_eq!(
            std::fs::read(dir.join("gt.ivecs")).expect("read"),
            std::fs::read(dir3.join("gt.ivecs")).expect("read")
        );
    }
}
