//! Turns search and recommend requests into one `ShardQuery` (looking up the vectors of example
//! points) and runs it over the collection's shards; the universal query goes through the
//! prefetch tree (`prefetch.rs`) built from the same pieces.

use super::lookup::{CollectionLookup, Examples};
use super::prefetch::{Output, DEFAULT_LIMIT};
use super::{validate, Collection};
use crate::error::{Error, Result};
use crate::model::collection::VectorParams;
use crate::model::payload::PayloadSelector;
use crate::model::query::{
    ContextPair, DiscoverInput, DiscoverRequest, FeedbackStrategy, NaiveFeedback, NamedVectorStruct, Prefetch,
    QueryRequest, ReadConsistency, RecommendInput, RecommendRequest, RecommendStrategy, RelevanceFeedbackInput,
    ScoredPoint, SearchParams, SearchRequest, ShardQuery, ShardQueryKind, VectorOrId,
};
use crate::model::vector::{Vector, WithVector, DEFAULT_VECTOR};
use crate::model::{Filter, PointId};

/// The parts every read request shares.
struct Common {
    using: String,
    filter: Option<Filter>,
    params: SearchParams,
    limit: usize,
    offset: usize,
    score_threshold: Option<f32>,
    with_payload: PayloadSelector,
    with_vector: WithVector,
    consistency: ReadConsistency,
}

pub(super) fn check_limit(limit: usize) -> Result<usize> {
    if limit == 0 {
        return Err(Error::validation("limit: value 0 invalid, must be 1 or larger"));
    }
    Ok(limit)
}

impl Collection {
    /// The dense (or multi) vector `using` of a query.
    fn query_params(&self, using: &str) -> Result<VectorParams> {
        self.config()
            .params
            .vectors
            .get(using)
            .cloned()
            .ok_or_else(|| Error::bad_input(format!("Not existing vector name error: {using}")))
    }

    /// Validates a dense query vector and puts it in the stored form of `using`.
    fn dense_query(&self, using: &str, mut v: Vec<f32>) -> Result<ShardQueryKind> {
        let params = self.query_params(using)?;
        if params.is_multi() {
            // Qdrant reads a single vector against a multivector as a one-row multivector.
            return self.multi_query(using, vec![v]);
        }
        validate::check_dense(&params, &v)?;
        validate::to_query_form(&params, &mut v);
        Ok(ShardQueryKind::Dense(v))
    }

    /// Validates a multivector query and puts each row in the stored form of `using`.
    fn multi_query(&self, using: &str, mut rows: Vec<Vec<f32>>) -> Result<ShardQueryKind> {
        let params = self.query_params(using)?;
        if !params.is_multi() {
            return Err(Error::bad_input(format!(
                "Conversion between multi and regular vectors failed: vector `{using}` is not a multivector"
            )));
        }
        if rows.is_empty() {
            return Err(Error::bad_input("multivector must not be empty"));
        }
        for row in &mut rows {
            validate::check_dense(&params, row)?;
            validate::to_query_form(&params, row);
        }
        Ok(ShardQueryKind::MultiDense(rows))
    }

    fn sparse_query(&self, using: &str, s: crate::model::vector::SparseVector) -> Result<ShardQueryKind> {
        if !self.config().is_sparse(using) {
            return Err(Error::bad_input(format!(
                "Not existing sparse vector name error: {using}"
            )));
        }
        s.validate()?;
        Ok(ShardQueryKind::Sparse(s.sorted()))
    }

    /// The stored vectors named `using` of existing points (404 if one is missing).
    async fn vectors_of(&self, using: &str, ids: &[PointId]) -> Result<Vec<Vector>> {
        let records = self
            .retrieve(
                ids.to_vec(),
                PayloadSelector::None,
                WithVector::Names(vec![using.to_string()]),
                ReadConsistency::One,
            )
            .await?;
        ids.iter()
            .map(|id| {
                let record = records
                    .iter()
                    .find(|r| r.id == *id)
                    .ok_or_else(|| Error::not_found(format!("No point with id {id} found")))?;
                let named = record.vector.clone().map(|v| v.into_named()).unwrap_or_default();
                named
                    .get(using)
                    .cloned()
                    .ok_or_else(|| Error::bad_input(format!("Point {id} has no vector named `{using}`")))
            })
            .collect()
    }

    /// A query vector or an example point's vector (from `ex`); an example of this collection is
    /// excluded from the results.
    pub(super) async fn resolve_vector(
        &self,
        using: &str,
        v: VectorOrId,
        ex: &Examples,
        exclude: &mut Vec<PointId>,
    ) -> Result<ShardQueryKind> {
        match v {
            VectorOrId::Dense(d) => self.dense_query(using, d),
            VectorOrId::Sparse(s) => self.sparse_query(using, s),
            VectorOrId::MultiDense(m) => self.multi_query(using, m),
            VectorOrId::Id(id) => {
                if ex.excluded() {
                    exclude.push(id);
                }
                let stored = ex.collection(self).vectors_of(&ex.vector, &[id]).await?.remove(0);
                match stored {
                    Vector::Sparse(s) if ex.is_query_space(using) => Ok(ShardQueryKind::Sparse(s)),
                    // Dense values are served as written (uint8 not normalised): put them in query
                    // form like a vector in the request, which also checks another collection's.
                    Vector::Dense(d) => self.dense_query(using, d),
                    Vector::Sparse(s) => self.sparse_query(using, s),
                    Vector::MultiDense(m) => self.multi_query(using, m),
                }
            }
        }
    }

    /// Dense vectors of recommendation examples, in stored form.
    async fn example_vectors(
        &self,
        using: &str,
        examples: Vec<VectorOrId>,
        ex: &Examples,
        exclude: &mut Vec<PointId>,
    ) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(examples.len());
        for e in examples {
            match self.resolve_vector(using, e, ex, exclude).await? {
                ShardQueryKind::Dense(d) => out.push(d),
                _ => return Err(Error::bad_input("recommendation examples must be dense vectors")),
            }
        }
        Ok(out)
    }

    /// Both vectors of each context pair.
    async fn pair_vectors(
        &self,
        using: &str,
        pairs: Vec<ContextPair>,
        ex: &Examples,
        exclude: &mut Vec<PointId>,
    ) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        let mut out = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let mut both = self
                .example_vectors(using, vec![pair.positive, pair.negative], ex, exclude)
                .await?;
            let negative = both.pop().unwrap_or_default();
            let positive = both.pop().unwrap_or_default();
            out.push((positive, negative));
        }
        Ok(out)
    }

    pub(super) async fn discover_kind(
        &self,
        using: &str,
        d: DiscoverInput,
        ex: &Examples,
        exclude: &mut Vec<PointId>,
    ) -> Result<ShardQueryKind> {
        let mut target = self.example_vectors(using, vec![d.target], ex, exclude).await?;
        Ok(ShardQueryKind::Discover {
            target: target.pop().unwrap_or_default(),
            pairs: self.pair_vectors(using, d.context, ex, exclude).await?,
        })
    }

    pub(super) async fn context_kind(
        &self,
        using: &str,
        pairs: Vec<ContextPair>,
        ex: &Examples,
        exclude: &mut Vec<PointId>,
    ) -> Result<ShardQueryKind> {
        if pairs.is_empty() {
            return Err(Error::bad_input("context query needs at least one pair of examples"));
        }
        Ok(ShardQueryKind::Context {
            pairs: self.pair_vectors(using, pairs, ex, exclude).await?,
        })
    }

    /// Relevance feedback, naive strategy (Qdrant's): every ordered pair of examples whose
    /// feedback scores differ by a positive `confidence` weighs `confidence^b * c`.
    pub(super) async fn feedback_kind(
        &self,
        using: &str,
        r: RelevanceFeedbackInput,
        ex: &Examples,
        exclude: &mut Vec<PointId>,
    ) -> Result<ShardQueryKind> {
        let FeedbackStrategy::Naive(NaiveFeedback { a, b, c }) = r.strategy;
        if !(a.is_finite() && b.is_finite() && c.is_finite()) {
            return Err(Error::bad_input(
                "relevance feedback coefficients must be finite numbers",
            ));
        }
        if b < 0.0 {
            return Err(Error::validation(format!(
                "relevance_feedback.strategy.naive.b: value {b} invalid, must be 0.0 or larger"
            )));
        }
        if let Some(item) = r.feedback.iter().find(|i| !i.score.is_finite()) {
            return Err(Error::bad_input(format!(
                "feedback score {} is not a finite number",
                item.score
            )));
        }
        let target = self
            .example_vectors(using, vec![r.target], ex, exclude)
            .await?
            .remove(0);
        let scores: Vec<f32> = r.feedback.iter().map(|i| i.score).collect();
        let examples = self
            .example_vectors(using, r.feedback.into_iter().map(|i| i.example).collect(), ex, exclude)
            .await?;
        let mut pairs = Vec::new();
        for (i, better) in examples.iter().enumerate() {
            for (j, worse) in examples.iter().enumerate() {
                let confidence = scores[i] - scores[j];
                if i != j && confidence > 0.0 {
                    pairs.push((better.clone(), worse.clone(), confidence.powf(b) * c));
                }
            }
        }
        Ok(ShardQueryKind::Feedback { target, a, pairs })
    }

    pub(super) async fn recommend_kind(
        &self,
        using: &str,
        r: RecommendInput,
        ex: &Examples,
        exclude: &mut Vec<PointId>,
    ) -> Result<ShardQueryKind> {
        if r.positive.is_empty() && r.negative.is_empty() {
            return Err(Error::bad_input(
                "At least one positive or negative example is required",
            ));
        }
        let strategy = r.strategy.unwrap_or_default();
        let positives = self.example_vectors(using, r.positive, ex, exclude).await?;
        let negatives = self.example_vectors(using, r.negative, ex, exclude).await?;
        match strategy {
            RecommendStrategy::AverageVector => {
                if positives.is_empty() {
                    return Err(Error::bad_input(
                        "Recommend with average_vector strategy needs at least one positive example",
                    ));
                }
                let avg = |vs: &[Vec<f32>]| -> Option<Vec<f32>> {
                    let first = vs.first()?;
                    let mut sum = vec![0f32; first.len()];
                    for v in vs {
                        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
                    }
                    sum.iter_mut().for_each(|s| *s /= vs.len() as f32);
                    Some(sum)
                };
                let pos = avg(&positives).unwrap_or_default();
                // Qdrant: avg(positive) + (avg(positive) - avg(negative)).
                let target = match avg(&negatives) {
                    Some(neg) => pos.iter().zip(&neg).map(|(p, n)| 2.0 * p - n).collect(),
                    None => pos,
                };
                self.dense_query(using, target)
            }
            strategy => Ok(ShardQueryKind::Recommend {
                strategy,
                positives,
                negatives,
            }),
        }
    }

    async fn run(&self, c: Common, kind: ShardQueryKind, exclude: Vec<PointId>) -> Result<Vec<ScoredPoint>> {
        if let Some(f) = &c.filter {
            f.validate()?;
        }
        c.params.validate()?;
        let query = ShardQuery {
            using: c.using,
            kind,
            filter: c.filter,
            limit: c.offset + c.limit,
            params: c.params,
            score_threshold: c.score_threshold,
            with_payload: c.with_payload,
            with_vector: c.with_vector,
            exclude,
            candidates: None,
            sibling: false,
        };
        self.search_shards(query, c.offset, c.limit, c.consistency).await
    }

    /// Legacy `points/search`.
    pub async fn search(&self, r: SearchRequest) -> Result<Vec<ScoredPoint>> {
        if let Some(strict) = self.strict_mode() {
            strict.check_read(r.limit, r.params.as_ref(), r.filter.as_ref())?;
        }
        let (using, kind) = match r.vector {
            NamedVectorStruct::Default(v) => (DEFAULT_VECTOR.to_string(), self.dense_query(DEFAULT_VECTOR, v)?),
            NamedVectorStruct::Dense { name, vector } => {
                let kind = self.dense_query(&name, vector)?;
                (name, kind)
            }
            NamedVectorStruct::Sparse { name, vector } => {
                let kind = self.sparse_query(&name, vector)?;
                (name, kind)
            }
        };
        let common = Common {
            using,
            filter: r.filter,
            params: r.params.unwrap_or_default(),
            limit: check_limit(r.limit)?,
            offset: r.offset.unwrap_or(0),
            score_threshold: r.score_threshold,
            with_payload: r.with_payload.unwrap_or(PayloadSelector::None),
            with_vector: r.with_vector.unwrap_or_default(),
            consistency: r.consistency,
        };
        self.run(common, kind, Vec::new()).await
    }

    /// Legacy `points/recommend`.
    pub async fn recommend(&self, r: RecommendRequest, lookup: &dyn CollectionLookup) -> Result<Vec<ScoredPoint>> {
        if let Some(strict) = self.strict_mode() {
            strict.check_read(r.limit, r.params.as_ref(), r.filter.as_ref())?;
        }
        let using = r.using.unwrap_or_default();
        let ex = Examples::new(self, &using, r.lookup_from.as_ref(), lookup)?;
        let mut exclude = Vec::new();
        let input = RecommendInput {
            positive: r.positive,
            negative: r.negative,
            strategy: r.strategy,
        };
        let kind = self.recommend_kind(&using, input, &ex, &mut exclude).await?;
        let common = Common {
            using,
            filter: r.filter,
            params: r.params.unwrap_or_default(),
            limit: check_limit(r.limit)?,
            offset: r.offset.unwrap_or(0),
            score_threshold: r.score_threshold,
            with_payload: r.with_payload.unwrap_or(PayloadSelector::None),
            with_vector: r.with_vector.unwrap_or_default(),
            consistency: r.consistency,
        };
        self.run(common, kind, exclude).await
    }

    /// Legacy `points/discover`: discovery with a target, context search without one.
    pub async fn discover(&self, r: DiscoverRequest, lookup: &dyn CollectionLookup) -> Result<Vec<ScoredPoint>> {
        if let Some(strict) = self.strict_mode() {
            strict.check_read(r.limit, r.params.as_ref(), r.filter.as_ref())?;
        }
        let using = r.using.unwrap_or_default();
        let ex = Examples::new(self, &using, r.lookup_from.as_ref(), lookup)?;
        let mut exclude = Vec::new();
        let kind = match r.target {
            Some(target) => {
                let input = DiscoverInput {
                    target,
                    context: r.context,
                };
                self.discover_kind(&using, input, &ex, &mut exclude).await?
            }
            None => self.context_kind(&using, r.context, &ex, &mut exclude).await?,
        };
        let common = Common {
            using,
            filter: r.filter,
            params: r.params.unwrap_or_default(),
            limit: check_limit(r.limit)?,
            offset: r.offset.unwrap_or(0),
            score_threshold: None,
            with_payload: r.with_payload.unwrap_or(PayloadSelector::None),
            with_vector: r.with_vector.unwrap_or_default(),
            consistency: r.consistency,
        };
        self.run(common, kind, exclude).await
    }

    /// The universal `points/query`: the request is the root stage of a prefetch tree.
    pub async fn query(&self, r: QueryRequest, lookup: &dyn CollectionLookup) -> Result<Vec<ScoredPoint>> {
        if let Some(strict) = self.strict_mode() {
            strict.check_query(&r)?;
        }
        let offset = r.offset.unwrap_or(0);
        let limit = check_limit(r.limit.unwrap_or(DEFAULT_LIMIT))?;
        let root = Prefetch {
            prefetch: r.prefetch,
            query: r.query,
            using: r.using,
            filter: r.filter,
            params: r.params,
            score_threshold: r.score_threshold,
            limit: Some(offset.saturating_add(limit)),
            lookup_from: r.lookup_from,
        };
        let mut exclude = Vec::new();
        let stage = self.plan(root, None, &mut exclude, 0, lookup).await?;
        let out = Output {
            offset,
            with_payload: r.with_payload.unwrap_or(PayloadSelector::None),
            with_vector: r.with_vector.unwrap_or_default(),
            consistency: r.consistency,
            sibling: false,
        };
        self.execute(&stage, &out, &exclude).await
    }
}
