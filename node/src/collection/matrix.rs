//! The distance matrix of a random sample: each sampled point's `limit` nearest among the
//! sample (exact, with the vector's distance).

use super::query::check_limit;
use super::{strict_mode, Collection};
use crate::error::{Error, Result};
use crate::model::filter::Condition;
use crate::model::matrix::{Matrix, SearchMatrixRequest, DEFAULT_NEIGHBOURS, DEFAULT_SAMPLE};
use crate::model::payload::PayloadSelector;
use crate::model::query::{ReadConsistency, ShardQuery, ShardQueryKind};
use crate::model::vector::{Vector, WithVector};

impl Collection {
    /// `points/search/matrix/{pairs,offsets}`: strict mode checks the request (`timeout`:
    /// `?timeout=` seconds). Read tokens, as Qdrant spends them: the sampling scroll (1, the
    /// filter's conditions and the `has_vector` one), then, once there are two points or more,
    /// one search per sampled point (its vector and the `has_id` of the sample).
    pub async fn search_matrix(
        &self,
        r: SearchMatrixRequest,
        consistency: ReadConsistency,
        timeout: Option<u64>,
    ) -> Result<Matrix> {
        if let Some(s) = self.strict() {
            s.check_matrix(&r)?;
            s.check_timeout(timeout)?;
        }
        self.charge_read(|| strict_mode::scroll_cost(r.filter.as_ref()) + 1)?;
        let using = r.using.unwrap_or_default();
        let sample = check_limit(r.sample.unwrap_or(DEFAULT_SAMPLE))?;
        let limit = check_limit(r.limit.unwrap_or(DEFAULT_NEIGHBOURS))?;
        let distance = self
            .config()
            .params
            .vectors
            .get(&using)
            .map(|p| p.distance)
            .ok_or_else(|| Error::bad_input(format!("Not existing vector name: {using}")))?;
        if let Some(f) = &r.filter {
            f.validate()?;
        }
        // Only points that have the vector can be sampled.
        let mut filter = r.filter.unwrap_or_default();
        filter
            .must
            .get_or_insert_with(Vec::new)
            .push(Condition::HasVector(using.clone()));
        let query = ShardQuery {
            using: using.clone(),
            kind: ShardQueryKind::Sample,
            filter: Some(filter),
            limit: sample,
            params: Default::default(),
            score_threshold: None,
            with_payload: PayloadSelector::None,
            with_vector: WithVector::Names(vec![using.clone()]),
            exclude: Vec::new(),
            candidates: None,
            sibling: false,
        };
        let points = self.search_shards(query, 0, sample, consistency).await?;
        if points.len() >= 2 {
            self.charge_read(|| 2 * points.len())?;
        }
        let mut ids = Vec::with_capacity(points.len());
        let mut vectors = Vec::with_capacity(points.len());
        for p in points {
            let Some(Vector::Dense(mut v)) = p
                .vector
                .map(|v| v.into_named())
                .and_then(|mut named| named.remove(&using))
            else {
                continue;
            };
            // Served as written: uint8 vectors of a Cosine space come back unnormalised.
            distance.preprocess(&mut v);
            ids.push(p.id);
            vectors.push(v);
        }
        let mut entries = Vec::new();
        for (row, v) in vectors.iter().enumerate() {
            let mut scored: Vec<(usize, f32)> = vectors
                .iter()
                .enumerate()
                .filter(|(col, _)| *col != row)
                .map(|(col, w)| (col, distance.score(v, w)))
                .collect();
            scored.sort_by(|a, b| distance.cmp_best_first(a.1, b.1).then(ids[a.0].cmp(&ids[b.0])));
            scored.truncate(limit);
            entries.extend(scored.into_iter().map(|(col, score)| (row, col, score)));
        }
        Ok(Matrix { ids, entries })
    }
}
