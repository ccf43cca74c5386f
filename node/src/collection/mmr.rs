//! Maximal marginal relevance: re-ranks nearest-neighbour candidates for diversity. The first
//! pick is the most relevant candidate; each next one maximises
//! `lambda * sim(query, c) - (1 - lambda) * max sim(c, picked)` with the collection's raw
//! similarity (`lambda = 1 - diversity`). Points keep their original scores, in pick order.

use crate::model::query::ScoredPoint;
use crate::model::vector::Distance;

pub fn select(
    candidates: Vec<(ScoredPoint, Vec<f32>)>,
    query: &[f32],
    distance: Distance,
    lambda: f32,
    n: usize,
) -> Vec<ScoredPoint> {
    if candidates.len() < 2 {
        return candidates.into_iter().map(|(p, _)| p).take(n).collect();
    }
    let relevance: Vec<f32> = candidates.iter().map(|(_, v)| distance.similarity(query, v)).collect();
    let mut remaining: Vec<usize> = (0..candidates.len()).collect();
    // Per remaining candidate: its highest similarity to any pick so far.
    let mut nearest_pick = vec![f32::NEG_INFINITY; candidates.len()];
    let mut picked: Vec<usize> = Vec::with_capacity(n);
    while picked.len() < n && !remaining.is_empty() {
        let score = |i: usize| {
            if picked.is_empty() {
                relevance[i]
            } else {
                lambda * relevance[i] - (1.0 - lambda) * nearest_pick[i]
            }
        };
        let (at, &best) = remaining
            .iter()
            .enumerate()
            .max_by(|a, b| score(*a.1).total_cmp(&score(*b.1)).then(b.0.cmp(&a.0)))
            .expect("remaining is not empty");
        remaining.swap_remove(at);
        picked.push(best);
        for &i in &remaining {
            let s = distance.similarity(&candidates[i].1, &candidates[best].1);
            nearest_pick[i] = nearest_pick[i].max(s);
        }
    }
    let mut slots: Vec<Option<ScoredPoint>> = candidates.into_iter().map(|(p, _)| Some(p)).collect();
    picked.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PointId;

    fn point(id: u64, v: Vec<f32>) -> (ScoredPoint, Vec<f32>) {
        let p = ScoredPoint {
            id: PointId::Num(id),
            version: 0,
            score: 0.0,
            payload: None,
            vector: None,
            shard_key: None,
            order_value: None,
        };
        (p, v)
    }

    #[test]
    fn diversity_skips_near_duplicates() {
        let q = [1.0, 0.0];
        let cands = vec![
            point(1, vec![1.0, 0.0]),
            point(2, vec![0.99, 0.01]),
            point(3, vec![0.6, 0.8]),
        ];
        let ids = |ps: Vec<ScoredPoint>| ps.into_iter().map(|p| p.id).collect::<Vec<_>>();
        // Pure relevance keeps the similarity order; diversity prefers the orthogonal-ish point.
        assert_eq!(
            ids(select(cands.clone(), &q, Distance::Dot, 1.0, 3)),
            vec![PointId::Num(1), PointId::Num(2), PointId::Num(3)]
        );
        assert_eq!(
            ids(select(cands, &q, Distance::Dot, 0.5, 2)),
            vec![PointId::Num(1), PointId::Num(3)]
        );
    }
}
