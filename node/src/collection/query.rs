//! Turns search and recommend requests into one `ShardQuery` (looking up the vectors of example
//! points) and runs it over the collection's shards; the universal query goes through the
//! prefetch tree (`prefetch.rs`) built from the same pieces.

use futures::future::try_join_all;

use super::lookup::{CollectionLookup, Examples};
use super::prefetch::{Output, Stage, DEFAULT_LIMIT};
use super::strict_mode::{query_filters, search_cost};
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
            .read_points(
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

    async fn run(&self, p: Prepared) -> Result<Vec<ScoredPoint>> {
        let Prepared {
            common: c,
            kind,
            exclude,
        } = p;
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

    /// Charges the read tokens of `prepared` (one charge for a whole batch), then runs them.
    async fn run_charged(&self, prepared: Vec<Prepared>) -> Result<Vec<Vec<ScoredPoint>>> {
        self.charge_read(|| prepared.iter().map(Prepared::cost).sum())?;
        let started = std::time::Instant::now();
        let filters = self.watched_filters(prepared.iter().filter_map(|p| p.common.filter.as_ref()));
        let answers = try_join_all(prepared.into_iter().map(|p| self.run(p))).await?;
        self.after_read(started, &filters);
        Ok(answers)
    }

    /// Legacy `points/search`; strict mode checks it first (`timeout`: `?timeout=` seconds).
    pub async fn search(&self, r: SearchRequest, timeout: Option<u64>) -> Result<Vec<ScoredPoint>> {
        self.search_batch(vec![r], timeout, false).await.map(first)
    }

    /// `points/search/batch` (`batch`: the batch size counts against `search_max_batchsize`).
    pub async fn search_batch(
        &self,
        requests: Vec<SearchRequest>,
        timeout: Option<u64>,
        batch: bool,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        if let Some(s) = self.strict() {
            if batch {
                s.check_search_batch(requests.len())?;
            }
            for r in &requests {
                s.check_search(r.limit, r.filter.as_ref(), r.params.as_ref())?;
            }
            s.check_timeout(timeout)?;
        }
        let prepared = requests
            .into_iter()
            .map(|r| self.prepare_search(r))
            .collect::<Result<Vec<_>>>()?;
        self.run_charged(prepared).await
    }

    /// A search strict mode already accepted (one ranking of a grouped search).
    pub(super) async fn run_search(&self, r: SearchRequest) -> Result<Vec<ScoredPoint>> {
        let prepared = self.prepare_search(r)?;
        self.run_charged(vec![prepared]).await.map(first)
    }

    fn prepare_search(&self, r: SearchRequest) -> Result<Prepared> {
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
        Ok(Prepared {
            common,
            kind,
            exclude: Vec::new(),
        })
    }

    /// Legacy `points/recommend`; strict mode checks it first.
    pub async fn recommend(
        &self,
        r: RecommendRequest,
        lookup: &dyn CollectionLookup,
        timeout: Option<u64>,
    ) -> Result<Vec<ScoredPoint>> {
        self.recommend_batch(vec![r], lookup, timeout, false).await.map(first)
    }

    /// `points/recommend/batch`.
    pub async fn recommend_batch(
        &self,
        requests: Vec<RecommendRequest>,
        lookup: &dyn CollectionLookup,
        timeout: Option<u64>,
        batch: bool,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        if let Some(s) = self.strict() {
            if batch {
                s.check_search_batch(requests.len())?;
            }
            for r in &requests {
                s.check_search(r.limit, r.filter.as_ref(), r.params.as_ref())?;
            }
            s.check_timeout(timeout)?;
        }
        let prepared = try_join_all(requests.into_iter().map(|r| self.prepare_recommend(r, lookup))).await?;
        self.run_charged(prepared).await
    }

    /// A recommendation strict mode already accepted (one ranking of grouped recommendations).
    pub(super) async fn run_recommend(
        &self,
        r: RecommendRequest,
        lookup: &dyn CollectionLookup,
    ) -> Result<Vec<ScoredPoint>> {
        let prepared = self.prepare_recommend(r, lookup).await?;
        self.run_charged(vec![prepared]).await.map(first)
    }

    async fn prepare_recommend(&self, r: RecommendRequest, lookup: &dyn CollectionLookup) -> Result<Prepared> {
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
        Ok(Prepared { common, kind, exclude })
    }

    /// Legacy `points/discover`: discovery with a target, context search without one; strict
    /// mode checks it first.
    pub async fn discover(
        &self,
        r: DiscoverRequest,
        lookup: &dyn CollectionLookup,
        timeout: Option<u64>,
    ) -> Result<Vec<ScoredPoint>> {
        self.discover_batch(vec![r], lookup, timeout, false).await.map(first)
    }

    /// `points/discover/batch`.
    pub async fn discover_batch(
        &self,
        requests: Vec<DiscoverRequest>,
        lookup: &dyn CollectionLookup,
        timeout: Option<u64>,
        batch: bool,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        if let Some(s) = self.strict() {
            if batch {
                s.check_search_batch(requests.len())?;
            }
            for r in &requests {
                s.check_search(r.limit, r.filter.as_ref(), r.params.as_ref())?;
            }
            s.check_timeout(timeout)?;
        }
        let prepared = try_join_all(requests.into_iter().map(|r| self.prepare_discover(r, lookup))).await?;
        self.run_charged(prepared).await
    }

    async fn prepare_discover(&self, r: DiscoverRequest, lookup: &dyn CollectionLookup) -> Result<Prepared> {
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
        Ok(Prepared { common, kind, exclude })
    }

    /// The universal `points/query`; strict mode checks it first.
    pub async fn query(
        &self,
        r: QueryRequest,
        lookup: &dyn CollectionLookup,
        timeout: Option<u64>,
    ) -> Result<Vec<ScoredPoint>> {
        self.query_batch(vec![r], lookup, timeout, false).await.map(first)
    }

    /// `points/query/batch`: checked, planned (example ids resolved), charged as one read, run.
    pub async fn query_batch(
        &self,
        requests: Vec<QueryRequest>,
        lookup: &dyn CollectionLookup,
        timeout: Option<u64>,
        batch: bool,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        if let Some(s) = self.strict() {
            if batch {
                s.check_search_batch(requests.len())?;
            }
            for r in &requests {
                s.check_query(r)?;
            }
            s.check_timeout(timeout)?;
        }
        let started = std::time::Instant::now();
        let filters = self.watched_filters(requests.iter().flat_map(query_filters));
        let planned = try_join_all(requests.into_iter().map(|r| self.plan_query(r, lookup))).await?;
        self.charge_read(|| planned.iter().map(PlannedQuery::cost).sum())?;
        let answers = try_join_all(planned.iter().map(|p| self.execute(&p.stage, &p.out, &p.exclude))).await?;
        self.after_read(started, &filters);
        Ok(answers)
    }

    /// A query strict mode already accepted (one ranking of a grouped query): planned, charged, run.
    pub(super) async fn run_query(&self, r: QueryRequest, lookup: &dyn CollectionLookup) -> Result<Vec<ScoredPoint>> {
        let started = std::time::Instant::now();
        let filters = self.watched_filters(query_filters(&r));
        let p = self.plan_query(r, lookup).await?;
        self.charge_read(|| p.cost())?;
        let answer = self.execute(&p.stage, &p.out, &p.exclude).await?;
        self.after_read(started, &filters);
        Ok(answer)
    }

    /// The request as the root stage of a prefetch tree.
    async fn plan_query(&self, r: QueryRequest, lookup: &dyn CollectionLookup) -> Result<PlannedQuery> {
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
        Ok(PlannedQuery { stage, exclude, out })
    }
}

/// The answer of a one-request batch.
fn first(mut answers: Vec<Vec<ScoredPoint>>) -> Vec<ScoredPoint> {
    answers.pop().unwrap_or_default()
}

/// A legacy search, recommendation or discovery with its examples resolved.
struct Prepared {
    common: Common,
    kind: ShardQueryKind,
    /// Example points of this collection, left out of the results.
    exclude: Vec<PointId>,
}

impl Prepared {
    /// Read tokens: the examples looked up, the query vectors, the filter's conditions and the
    /// exclusion of the examples.
    fn cost(&self) -> usize {
        self.exclude.len() + search_cost(&self.kind, self.common.filter.as_ref(), !self.exclude.is_empty())
    }
}

/// A universal query with its tree planned.
struct PlannedQuery {
    stage: Stage,
    exclude: Vec<PointId>,
    out: Output,
}

impl PlannedQuery {
    /// Read tokens: the examples looked up, then every search the tree makes over the shards.
    fn cost(&self) -> usize {
        self.exclude.len() + self.stage.read_cost(!self.exclude.is_empty())
    }
}
