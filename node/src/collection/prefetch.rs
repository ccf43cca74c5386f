//! The universal query as a tree of stages: each `prefetch` is a stage whose candidates its parent
//! re-scores (a vector query over exactly those points) or fuses (RRF, DBSF).
//!
//! Every stage runs at the collection level: a leaf fans out over all shards and merges, so a
//! prefetch's `limit` is a global top-k and the answer is the one a single shard holding every
//! point would give, whatever the shard count. Planning first resolves all example ids to
//! vectors, pushes each stage's filter down into its prefetches (as Qdrant does) and validates;
//! then sibling prefetches run concurrently.

use std::collections::HashSet;

use futures::future::{try_join_all, BoxFuture};

use super::fusion::{self, DEFAULT_RRF_K};
use super::lookup::{CollectionLookup, Examples};
use super::query::check_limit;
use super::Collection;
use crate::error::{Error, Result};
use crate::model::filter::Condition;
use crate::model::formula::ParsedFormula;
use crate::model::order_by::OrderBy;
use crate::model::payload::PayloadSelector;
use crate::model::query::{
    Fusion, Prefetch, QueryInput, ReadConsistency, Sample, ScoredPoint, SearchParams, ShardQuery, ShardQueryKind,
};
use crate::model::vector::WithVector;
use crate::model::{Filter, PointId};

/// Deepest prefetch nesting accepted (Qdrant's limit).
const MAX_PREFETCH_DEPTH: usize = 64;
/// `limit` of a query or prefetch that names none.
pub const DEFAULT_LIMIT: usize = 10;

/// How a stage combines several ranked lists.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum FusionMethod {
    Rrf { k: usize, weights: Option<Vec<f32>> },
    Dbsf,
}

/// How a stage ranks points.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scoring {
    /// By a resolved vector query (nearest, recommend).
    Vector(ShardQueryKind),
    /// By fusing the prefetches' lists.
    Fusion(FusionMethod),
    /// By a score formula over the prefetches' points and scores.
    Formula(ParsedFormula),
    /// No query: by id, score 1.
    ById,
    /// `sample: random`: random points, score 1.
    Sample,
    /// By the values of a payload key, score 1.
    OrderBy(OrderBy),
    /// The nearest `candidates`, re-ranked for diversity (maximal marginal relevance).
    Mmr {
        query: Vec<f32>,
        lambda: f32,
        candidates: usize,
    },
}

/// One planned stage of the tree.
#[derive(Debug, Clone)]
pub struct Stage {
    using: String,
    pub(super) scoring: Scoring,
    /// This stage's filter merged with every ancestor's (applies where points are searched: leaves).
    pub(super) filter: Option<Filter>,
    params: SearchParams,
    score_threshold: Option<f32>,
    /// Points this stage hands on, offset included at the root.
    limit: usize,
    pub(super) prefetches: Vec<Stage>,
}

/// What the caller gets beside ids and scores; inner stages ask for nothing.
pub struct Output {
    pub offset: usize,
    pub with_payload: PayloadSelector,
    pub with_vector: WithVector,
    pub consistency: ReadConsistency,
    /// This stage has siblings (see `ShardQuery::sibling`).
    pub sibling: bool,
}

impl Output {
    /// What the prefetches of `stage` hand on to it.
    fn inner(stage: &Stage, consistency: ReadConsistency) -> Output {
        Output {
            offset: 0,
            with_payload: PayloadSelector::None,
            with_vector: WithVector::default(),
            consistency,
            sibling: stage.prefetches.len() > 1,
        }
    }
}

/// Both filters must hold.
fn merge_filters(outer: Option<Filter>, own: Option<Filter>) -> Option<Filter> {
    match (outer, own) {
        (Some(a), Some(b)) => Some(Filter {
            must: Some(vec![Condition::Filter(a), Condition::Filter(b)]),
            ..Default::default()
        }),
        (a, b) => a.or(b),
    }
}

/// Qdrant's checks of one query or prefetch, with its messages.
fn validate(p: &Prefetch) -> Result<()> {
    if !p.prefetch.is_empty() && p.query.is_none() {
        return Err(Error::BadRequest(
            "A query is needed to merge the prefetches. Can't have prefetches without defining a query.".into(),
        ));
    }
    if p.score_threshold.is_some() && p.query.is_none() {
        return Err(Error::BadRequest(
            "A query is needed to use the score_threshold. Can't have score_threshold without defining a query.".into(),
        ));
    }
    let fusion = matches!(p.query, Some(QueryInput::Fusion { .. }) | Some(QueryInput::Rrf { .. }));
    if fusion && p.using.as_deref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::BadRequest(
            "Fusion queries cannot be combined with the 'using' field.".into(),
        ));
    }
    if fusion && p.prefetch.is_empty() {
        return Err(Error::bad_input("cannot apply Fusion without prefetches"));
    }
    if matches!(p.query, Some(QueryInput::Formula(_))) && p.prefetch.is_empty() {
        return Err(Error::bad_input(
            "Validation failed: cannot apply Formula without prefetches",
        ));
    }
    Ok(())
}

impl Collection {
    /// Plans `p` and its prefetches: resolves example ids (collecting them in `exclude`, since a
    /// query never returns its own examples), pushes filters down, validates.
    pub(super) fn plan<'a>(
        &'a self,
        p: Prefetch,
        outer_filter: Option<Filter>,
        exclude: &'a mut Vec<PointId>,
        depth: usize,
        lookup: &'a dyn CollectionLookup,
    ) -> BoxFuture<'a, Result<Stage>> {
        Box::pin(async move {
            if depth > MAX_PREFETCH_DEPTH {
                return Err(Error::bad_input(format!(
                    "prefetches depth {depth} exceeds max depth {MAX_PREFETCH_DEPTH}"
                )));
            }
            validate(&p)?;
            if let Some(params) = &p.params {
                params.validate()?;
            }
            if let Some(f) = &p.filter {
                f.validate()?;
            }
            let using = p.using.unwrap_or_default();
            let limit = check_limit(p.limit.unwrap_or(DEFAULT_LIMIT))?;
            let ex = Examples::new(self, &using, p.lookup_from.as_ref(), lookup)?;
            let scoring = match p.query {
                None => Scoring::ById,
                Some(QueryInput::Nearest { nearest, mmr: None }) => {
                    Scoring::Vector(self.resolve_vector(&using, nearest, &ex, exclude).await?)
                }
                Some(QueryInput::Nearest {
                    nearest,
                    mmr: Some(mmr),
                }) => {
                    let diversity = mmr.diversity.unwrap_or(0.5);
                    if !(0.0..=1.0).contains(&diversity) {
                        return Err(Error::validation(format!(
                            "mmr.diversity: value {diversity} invalid, must be from 0.0 to 1.0"
                        )));
                    }
                    let candidates = match mmr.candidates_limit {
                        Some(0) => {
                            return Err(Error::validation(
                                "mmr.candidates_limit: value 0 invalid, must be 1 or larger",
                            ))
                        }
                        Some(n) => n,
                        None => limit,
                    };
                    match self.resolve_vector(&using, nearest, &ex, exclude).await? {
                        ShardQueryKind::Dense(q) => Scoring::Mmr {
                            query: q,
                            lambda: 1.0 - diversity,
                            candidates,
                        },
                        _ => return Err(Error::bad_input("mmr is supported for dense vectors only")),
                    }
                }
                Some(QueryInput::Raw(v)) => Scoring::Vector(self.resolve_vector(&using, v, &ex, exclude).await?),
                Some(QueryInput::Recommend { recommend }) => {
                    Scoring::Vector(self.recommend_kind(&using, recommend, &ex, exclude).await?)
                }
                Some(QueryInput::Discover { discover }) => {
                    Scoring::Vector(self.discover_kind(&using, discover, &ex, exclude).await?)
                }
                Some(QueryInput::RelevanceFeedback { relevance_feedback }) => {
                    Scoring::Vector(self.feedback_kind(&using, relevance_feedback, &ex, exclude).await?)
                }
                Some(QueryInput::Context { context }) => {
                    Scoring::Vector(self.context_kind(&using, context.0, &ex, exclude).await?)
                }
                Some(QueryInput::Fusion { fusion: Fusion::Rrf }) => Scoring::Fusion(FusionMethod::Rrf {
                    k: DEFAULT_RRF_K,
                    weights: None,
                }),
                Some(QueryInput::Fusion { fusion: Fusion::Dbsf }) => Scoring::Fusion(FusionMethod::Dbsf),
                Some(QueryInput::Rrf { rrf }) => {
                    let k = rrf.k.unwrap_or(DEFAULT_RRF_K);
                    if k == 0 {
                        return Err(Error::validation("rrf.k: value 0 invalid, must be 1 or larger"));
                    }
                    if let Some(w) = &rrf.weights {
                        if w.iter().any(|w| !w.is_finite()) {
                            return Err(Error::bad_input("RRF weights must be finite numbers"));
                        }
                    }
                    Scoring::Fusion(FusionMethod::Rrf {
                        k,
                        weights: rrf.weights,
                    })
                }
                Some(QueryInput::Formula(f)) => Scoring::Formula(f.parse()?),
                Some(QueryInput::Sample { sample: Sample::Random }) => Scoring::Sample,
                Some(QueryInput::OrderBy { order_by }) => Scoring::OrderBy(order_by.parse()?),
                Some(QueryInput::Other(map)) => {
                    let kind = map.keys().next().cloned().unwrap_or_default();
                    return Err(Error::bad_input(format!(
                        "query `{kind}` is not supported by this node"
                    )));
                }
            };
            let filter = merge_filters(outer_filter, p.filter);
            let mut prefetches = Vec::with_capacity(p.prefetch.len());
            for child in p.prefetch {
                prefetches.push(self.plan(child, filter.clone(), exclude, depth + 1, lookup).await?);
            }
            Ok(Stage {
                using,
                scoring,
                filter,
                params: p.params.unwrap_or_default(),
                score_threshold: p.score_threshold,
                limit,
                prefetches,
            })
        })
    }

    /// Runs a planned stage: its best `stage.limit` points, from `out.offset` on.
    pub(super) fn execute<'a>(
        &'a self,
        stage: &'a Stage,
        out: &'a Output,
        exclude: &'a [PointId],
    ) -> BoxFuture<'a, Result<Vec<ScoredPoint>>> {
        Box::pin(async move {
            let page = stage.limit.saturating_sub(out.offset);
            if let Scoring::Mmr { .. } = &stage.scoring {
                let candidates = if stage.prefetches.is_empty() {
                    None
                } else {
                    let inner = Output::inner(stage, out.consistency);
                    let lists = try_join_all(stage.prefetches.iter().map(|p| self.execute(p, &inner, exclude))).await?;
                    Some(union_of_ids(lists))
                };
                return self.mmr(stage, out, exclude, candidates).await;
            }
            if stage.prefetches.is_empty() {
                let kind = match &stage.scoring {
                    Scoring::Vector(kind) => kind.clone(),
                    Scoring::ById => ShardQueryKind::None,
                    Scoring::Sample => ShardQueryKind::Sample,
                    Scoring::OrderBy(order) => ShardQueryKind::OrderBy(order.clone()),
                    Scoring::Mmr { .. } => unreachable!("handled above"),
                    Scoring::Fusion(_) => return Err(Error::bad_input("cannot apply Fusion without prefetches")),
                    Scoring::Formula(_) => {
                        return Err(Error::bad_input(
                            "Validation failed: cannot apply Formula without prefetches",
                        ))
                    }
                };
                let query = shard_query(stage, kind, stage.filter.clone(), None, out, exclude);
                return self.search_shards(query, out.offset, page, out.consistency).await;
            }
            let inner = Output::inner(stage, out.consistency);
            let lists = try_join_all(stage.prefetches.iter().map(|p| self.execute(p, &inner, exclude))).await?;
            match &stage.scoring {
                Scoring::Fusion(method) => {
                    let mut fused = match method {
                        FusionMethod::Rrf { k, weights } => fusion::rrf(lists, *k, weights.as_deref())?,
                        FusionMethod::Dbsf => fusion::dbsf(lists),
                    };
                    if let Some(threshold) = stage.score_threshold {
                        fused.retain(|p| p.score >= threshold);
                    }
                    let fused = fused.into_iter().take(stage.limit).skip(out.offset).collect();
                    self.attach_payload_and_vectors(fused, out).await
                }
                Scoring::Vector(kind) => {
                    let candidates = union_of_ids(lists);
                    if candidates.is_empty() {
                        return Ok(Vec::new());
                    }
                    // The candidates already passed every filter on their way up.
                    let query = shard_query(stage, kind.clone(), None, Some(candidates), out, exclude);
                    self.search_shards(query, out.offset, page, out.consistency).await
                }
                Scoring::Formula(formula) => {
                    let scores: Vec<Vec<(PointId, f32)>> = lists
                        .iter()
                        .map(|l| l.iter().map(|p| (p.id, p.score)).collect())
                        .collect();
                    let candidates = union_of_ids(lists);
                    if candidates.is_empty() {
                        return Ok(Vec::new());
                    }
                    let kind = ShardQueryKind::Formula {
                        formula: Box::new(formula.clone()),
                        scores,
                    };
                    let query = shard_query(stage, kind, None, Some(candidates), out, exclude);
                    self.search_shards(query, out.offset, page, out.consistency).await
                }
                Scoring::Sample | Scoring::OrderBy(_) => {
                    let candidates = union_of_ids(lists);
                    if candidates.is_empty() {
                        return Ok(Vec::new());
                    }
                    let kind = match &stage.scoring {
                        Scoring::OrderBy(order) => ShardQueryKind::OrderBy(order.clone()),
                        _ => ShardQueryKind::Sample,
                    };
                    let query = shard_query(stage, kind, None, Some(candidates), out, exclude);
                    self.search_shards(query, out.offset, page, out.consistency).await
                }
                Scoring::Mmr { .. } => unreachable!("handled above"),
                Scoring::ById => Err(Error::BadRequest(
                    "A query is needed to merge the prefetches. Can't have prefetches without defining a query.".into(),
                )),
            }
        })
    }

    /// A maximal-marginal-relevance stage: the nearest `candidates` points (of the whole
    /// collection, or of the prefetched ids), with their vectors, re-ranked for diversity.
    async fn mmr(
        &self,
        stage: &Stage,
        out: &Output,
        exclude: &[PointId],
        prefetched: Option<Vec<PointId>>,
    ) -> Result<Vec<ScoredPoint>> {
        let Scoring::Mmr {
            query,
            lambda,
            candidates,
        } = &stage.scoring
        else {
            return Err(Error::internal("not an mmr stage"));
        };
        if prefetched.as_ref().is_some_and(|c| c.is_empty()) {
            return Ok(Vec::new());
        }
        let filter = if prefetched.is_some() {
            None
        } else {
            stage.filter.clone()
        };
        let mut q = shard_query(
            stage,
            ShardQueryKind::Dense(query.clone()),
            filter,
            prefetched,
            out,
            exclude,
        );
        q.limit = *candidates;
        q.with_payload = PayloadSelector::None;
        q.with_vector = WithVector::Names(vec![stage.using.clone()]);
        let distance = self
            .config()
            .params
            .vectors
            .get(&stage.using)
            .map(|p| p.distance)
            .unwrap_or(crate::model::vector::Distance::Dot);
        let found = self.search_shards(q, 0, *candidates, out.consistency).await?;
        let with_vectors: Vec<(ScoredPoint, Vec<f32>)> = found
            .into_iter()
            .filter_map(|mut p| {
                let named = p.vector.take()?.into_named();
                match named.get(&stage.using) {
                    Some(crate::model::vector::Vector::Dense(v)) => Some((p, v.clone())),
                    _ => None,
                }
            })
            .collect();
        let picked = super::mmr::select(with_vectors, query, distance, *lambda, stage.limit);
        let page = picked.into_iter().skip(out.offset).collect();
        self.attach_payload_and_vectors(page, out).await
    }

    /// Fills in the payloads and vectors `out` asks for, keeping order and scores; a point deleted
    /// meanwhile is dropped.
    async fn attach_payload_and_vectors(&self, mut points: Vec<ScoredPoint>, out: &Output) -> Result<Vec<ScoredPoint>> {
        let wants_vector = !matches!(out.with_vector, WithVector::All(false));
        if matches!(out.with_payload, PayloadSelector::None) && !wants_vector || points.is_empty() {
            return Ok(points);
        }
        let ids = points.iter().map(|p| p.id).collect();
        let records = self
            .read_points(ids, out.with_payload.clone(), out.with_vector.clone(), out.consistency)
            .await?;
        let mut by_id: std::collections::HashMap<PointId, _> = records.into_iter().map(|r| (r.id, r)).collect();
        points.retain_mut(|p| match by_id.remove(&p.id) {
            Some(record) => {
                p.payload = record.payload;
                p.vector = record.vector;
                true
            }
            None => false,
        });
        Ok(points)
    }
}

/// Every point of the lists, once, in first-seen order.
fn union_of_ids(lists: Vec<Vec<ScoredPoint>>) -> Vec<PointId> {
    let mut seen = HashSet::new();
    lists
        .into_iter()
        .flatten()
        .map(|p| p.id)
        .filter(|id| seen.insert(*id))
        .collect()
}

fn shard_query(
    stage: &Stage,
    kind: ShardQueryKind,
    filter: Option<Filter>,
    candidates: Option<Vec<PointId>>,
    out: &Output,
    exclude: &[PointId],
) -> ShardQuery {
    ShardQuery {
        using: stage.using.clone(),
        kind,
        filter,
        limit: stage.limit,
        params: stage.params.clone(),
        score_threshold: stage.score_threshold,
        with_payload: out.with_payload.clone(),
        with_vector: out.with_vector.clone(),
        exclude: exclude.to_vec(),
        candidates,
        sibling: out.sibling,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_merge_as_must() {
        let a = Filter::new_must(Condition::HasId([PointId::Num(1)].into()));
        let b = Filter::new_must_not(Condition::HasId([PointId::Num(2)].into()));
        assert_eq!(merge_filters(None, None), None);
        assert_eq!(merge_filters(Some(a.clone()), None), Some(a.clone()));
        assert_eq!(merge_filters(None, Some(b.clone())), Some(b.clone()));
        let both = merge_filters(Some(a.clone()), Some(b.clone())).unwrap();
        assert_eq!(both.must, Some(vec![Condition::Filter(a), Condition::Filter(b)]));
    }

    fn parse(json: serde_json::Value) -> Prefetch {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn validation_messages() {
        let err = |p: Prefetch| validate(&p).unwrap_err().to_string();
        assert!(err(parse(serde_json::json!({"prefetch": {"query": [1.0]}}))).contains("A query is needed to merge"));
        assert!(err(parse(serde_json::json!({"score_threshold": 0.5}))).contains("to use the score_threshold"));
        assert!(err(parse(
            serde_json::json!({"prefetch": [{}], "query": {"fusion": "rrf"}, "using": "a"})
        ))
        .contains("cannot be combined with the 'using' field"));
        assert!(err(parse(serde_json::json!({"query": {"rrf": {"k": 3}}}))).contains("without prefetches"));
        assert!(validate(&parse(
            serde_json::json!({"prefetch": [{}], "query": {"fusion": "dbsf"}})
        ))
        .is_ok());
        let one = parse(serde_json::json!({"prefetch": {"limit": 3}}));
        assert_eq!(one.prefetch.len(), 1);
        let none = parse(serde_json::json!({"prefetch": null}));
        assert!(none.prefetch.is_empty());
    }
}
