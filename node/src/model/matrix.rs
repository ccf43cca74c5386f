//! `points/search/matrix/{pairs,offsets}`: the nearest neighbours of a random sample of points
//! among that same sample.

use serde::{Deserialize, Serialize};

use super::{Filter, PointId};

/// Points sampled when the request names no `sample` (Qdrant's default).
pub const DEFAULT_SAMPLE: usize = 10;
/// Neighbours per sampled point when the request names no `limit` (Qdrant's default).
pub const DEFAULT_NEIGHBOURS: usize = 3;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchMatrixRequest {
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub sample: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub using: Option<String>,
}

/// The sample and, per sampled point, its neighbours: (row, column, score) as indexes into `ids`.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    pub ids: Vec<PointId>,
    pub entries: Vec<(usize, usize, f32)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixPair {
    pub a: PointId,
    pub b: PointId,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixPairs {
    pub pairs: Vec<MatrixPair>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixOffsets {
    pub offsets_row: Vec<u64>,
    pub offsets_col: Vec<u64>,
    pub scores: Vec<f32>,
    pub ids: Vec<PointId>,
}

impl Matrix {
    pub fn pairs(self) -> MatrixPairs {
        MatrixPairs {
            pairs: self
                .entries
                .iter()
                .map(|&(r, c, score)| MatrixPair {
                    a: self.ids[r],
                    b: self.ids[c],
                    score,
                })
                .collect(),
        }
    }

    pub fn offsets(self) -> MatrixOffsets {
        MatrixOffsets {
            offsets_row: self.entries.iter().map(|e| e.0 as u64).collect(),
            offsets_col: self.entries.iter().map(|e| e.1 as u64).collect(),
            scores: self.entries.iter().map(|e| e.2).collect(),
            ids: self.ids,
        }
    }
}
