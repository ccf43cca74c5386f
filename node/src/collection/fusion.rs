//! Fusion of several ranked candidate lists into one, as the query API's `fusion`/`rrf` do:
//! reciprocal rank fusion (optionally weighted) and distribution-based score fusion.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::query::ScoredPoint;
use crate::model::PointId;

/// Qdrant's default `k` of reciprocal rank fusion.
pub const DEFAULT_RRF_K: usize = 2;

/// Reciprocal rank fusion: a point at 0-based position `p` of a list with weight `w` earns
/// `1 / ((p + 1) / w + k - 1)` (with `w = 1` the classic `1 / (p + k)`); earnings add up over
/// the lists. Only ranks count, not the lists' scores. A weight of 0 or less earns nothing.
pub fn rrf(lists: Vec<Vec<ScoredPoint>>, k: usize, weights: Option<&[f32]>) -> Result<Vec<ScoredPoint>> {
    if let Some(w) = weights {
        if w.len() != lists.len() {
            return Err(Error::bad_input(format!(
                "Number of weights in RRF should match number of pre-fetches: got {}, expected {}",
                w.len(),
                lists.len()
            )));
        }
    }
    let mut fused = Fused::default();
    for (i, list) in lists.into_iter().enumerate() {
        let weight = weights.map_or(1.0, |w| w[i]);
        for (position, point) in list.into_iter().enumerate() {
            let score = if weight > 0.0 {
                1.0 / ((position + 1) as f32 / weight + k as f32 - 1.0)
            } else {
                0.0
            };
            fused.add(point, score);
        }
    }
    Ok(fused.ranked())
}

/// Distribution-based score fusion: each list's scores are mapped to [0, 1] between
/// mean - 3 sigma and mean + 3 sigma (sample standard deviation; a single point scores 0.5, equal
/// scores all 0.5), then added up over the lists.
pub fn dbsf(lists: Vec<Vec<ScoredPoint>>) -> Vec<ScoredPoint> {
    let mut fused = Fused::default();
    for list in lists {
        let normalized = distribution_normalized(&list);
        for (point, score) in list.into_iter().zip(normalized) {
            fused.add(point, score);
        }
    }
    fused.ranked()
}

fn distribution_normalized(list: &[ScoredPoint]) -> Vec<f32> {
    match list.len() {
        0 => return Vec::new(),
        1 => return vec![0.5],
        _ => {}
    }
    let n = list.len() as f32;
    let mean = list.iter().map(|p| p.score).sum::<f32>() / n;
    let variance = list.iter().map(|p| (p.score - mean).powi(2)).sum::<f32>() / (n - 1.0);
    let sigma = variance.sqrt();
    let (low, high) = (mean - 3.0 * sigma, mean + 3.0 * sigma);
    list.iter()
        .map(|p| {
            if high == low {
                0.5
            } else {
                (p.score - low) / (high - low)
            }
        })
        .collect()
}

/// Points seen in any list, with their summed fused score, in first-seen order.
#[derive(Default)]
struct Fused {
    at: HashMap<PointId, usize>,
    points: Vec<ScoredPoint>,
}

impl Fused {
    fn add(&mut self, mut point: ScoredPoint, score: f32) {
        match self.at.get(&point.id) {
            Some(&i) => self.points[i].score += score,
            None => {
                self.at.insert(point.id, self.points.len());
                point.score = score;
                self.points.push(point);
            }
        }
    }

    /// Best fused score first; ties by id so every peer answers alike.
    fn ranked(mut self) -> Vec<ScoredPoint> {
        self.points
            .sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u64, score: f32) -> ScoredPoint {
        ScoredPoint {
            id: PointId::Num(id),
            version: 0,
            score,
            payload: None,
            vector: None,
            shard_key: None,
            order_value: None,
        }
    }

    fn scores(points: &[ScoredPoint]) -> Vec<(u64, f32)> {
        points
            .iter()
            .map(|p| match p.id {
                PointId::Num(n) => (n, p.score),
                PointId::Uuid(_) => unreachable!("numeric ids only"),
            })
            .collect()
    }

    #[test]
    fn rrf_adds_reciprocal_ranks() {
        let a = vec![hit(1, 0.9), hit(2, 0.8), hit(3, 0.1)];
        let b = vec![hit(3, 10.0), hit(1, 5.0)];
        let fused = rrf(vec![a, b], DEFAULT_RRF_K, None).unwrap();
        // 1: 1/2 + 1/3; 3: 1/4 + 1/2; 2: 1/3.
        assert_eq!(
            scores(&fused),
            vec![(1, 1.0 / 2.0 + 1.0 / 3.0), (3, 1.0 / 4.0 + 1.0 / 2.0), (2, 1.0 / 3.0)]
        );
    }

    #[test]
    fn rrf_weights_and_k() {
        let a = vec![hit(1, 1.0), hit(2, 1.0)];
        let b = vec![hit(2, 1.0), hit(1, 1.0)];
        let fused = rrf(vec![a.clone(), b.clone()], 60, Some(&[3.0, 1.0])).unwrap();
        let expect_1 = 1.0 / (1.0 / 3.0 + 59.0) + 1.0 / (2.0 + 59.0);
        let expect_2 = 1.0 / (2.0 / 3.0 + 59.0) + 1.0 / (1.0 + 59.0);
        // Point 2's two middling ranks beat point 1's weighted first and plain second.
        let got = scores(&fused);
        assert_eq!((got[0].0, got[1].0), (2, 1));
        assert!((got[0].1 - expect_2).abs() < 1e-7 && (got[1].1 - expect_1).abs() < 1e-7);
        let zero = rrf(vec![a.clone(), b.clone()], 2, Some(&[0.0, 1.0])).unwrap();
        assert_eq!(scores(&zero), vec![(2, 0.5), (1, 1.0 / 3.0)]);
        let err = rrf(vec![a, b], 2, Some(&[1.0])).unwrap_err().to_string();
        assert!(err.contains("got 1, expected 2"), "{err}");
    }

    #[test]
    fn dbsf_normalizes_each_list() {
        let a = vec![hit(1, 3.0), hit(2, 1.0)];
        let b = vec![hit(2, 7.0)];
        let fused = dbsf(vec![a, b]);
        // mean 2, sample sigma sqrt(2): bounds 2 -+ 3 sqrt(2).
        let s = 2f32.sqrt();
        let norm = |x: f32| (x - (2.0 - 3.0 * s)) / (6.0 * s);
        let got = scores(&fused);
        assert_eq!(got[0].0, 2);
        assert!((got[0].1 - (norm(1.0) + 0.5)).abs() < 1e-6);
        assert!((got[1].1 - norm(3.0)).abs() < 1e-6);
        let same = dbsf(vec![vec![hit(1, 4.0), hit(2, 4.0)]]);
        assert_eq!(scores(&same), vec![(1, 0.5), (2, 0.5)]);
        assert!(dbsf(vec![vec![]]).is_empty());
    }
}
