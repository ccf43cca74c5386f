//! Reads: search, recommend and universal query requests into the model requests REST builds,
//! plus `read_consistency` and search `params`. Defaults that differ per call (`with_payload`,
//! `limit`) are left unset here so the collection applies the same ones as on REST.

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::query::Variant;
use qdrant_client::qdrant::read_consistency::Value as Consistency;
use serde_json::{json, Map, Value};

use super::filter::optional as filter;
use super::point::{point_id, point_ids, with_payload, with_vectors};
use super::vector::{example, vector_input};
use crate::error::{Error, Result};
use crate::model::order_by::{Direction, OrderByInterface, OrderByStruct, StartFrom};
use crate::model::query::{
    ContextInput, ContextPair, DiscoverInput, DiscoverRequest, FeedbackItem, FeedbackStrategy, Fusion, IdfParams,
    IdfScope, LookupLocation, Mmr, NaiveFeedback, NamedVectorStruct, Prefetch, QueryInput, QueryRequest,
    ReadConsistency, RecommendInput, RecommendRequest, RecommendStrategy, RelevanceFeedbackInput, RrfParams, Sample,
    SearchParams, SearchRequest, VectorOrId,
};
use crate::model::vector::SparseVector;

fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `read_consistency`, parsed by the same function as REST's `?consistency=`.
pub fn read_consistency(rc: Option<grpc::ReadConsistency>) -> Result<ReadConsistency> {
    let text = match rc.and_then(|rc| rc.value) {
        None => return Ok(ReadConsistency::default()),
        Some(Consistency::Factor(n)) => n.to_string(),
        Some(Consistency::Type(t)) => match grpc::ReadConsistencyType::try_from(t) {
            Ok(grpc::ReadConsistencyType::All) => "all".to_string(),
            Ok(grpc::ReadConsistencyType::Majority) => "majority".to_string(),
            Ok(grpc::ReadConsistencyType::Quorum) => "quorum".to_string(),
            Err(_) => return Err(Error::bad_input(format!("read_consistency: unknown type {t}"))),
        },
    };
    ReadConsistency::parse(Some(&text))
}

/// Search `params`. `acorn` is accepted and ignored, as REST ignores it.
pub fn search_params(p: Option<grpc::SearchParams>) -> Result<Option<SearchParams>> {
    let Some(p) = p else { return Ok(None) };
    let idf = match p.idf {
        None => None,
        Some(grpc::IdfParams { corpus: None }) => Some(IdfParams::Scope(IdfScope::Global)),
        Some(grpc::IdfParams { corpus: Some(f) }) => Some(IdfParams::Corpus {
            corpus: Box::new(super::filter::filter(f)?),
        }),
    };
    Ok(Some(SearchParams {
        hnsw_ef: p.hnsw_ef.map(size),
        exact: p.exact.unwrap_or(false),
        quantization: p.quantization.map(|q| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            };
            put("ignore", q.ignore.map(Value::Bool));
            put("rescore", q.rescore.map(Value::Bool));
            put("oversampling", q.oversampling.map(|o| json!(o)));
            Value::Object(m)
        }),
        indexed_only: p.indexed_only.unwrap_or(false),
        idf,
    }))
}

fn strategy(s: Option<i32>) -> Result<Option<RecommendStrategy>> {
    s.map(|s| match grpc::RecommendStrategy::try_from(s) {
        Ok(grpc::RecommendStrategy::AverageVector) => Ok(RecommendStrategy::AverageVector),
        Ok(grpc::RecommendStrategy::BestScore) => Ok(RecommendStrategy::BestScore),
        Ok(grpc::RecommendStrategy::SumScores) => Ok(RecommendStrategy::SumScores),
        Err(_) => Err(Error::bad_input(format!("unknown recommend strategy {s}"))),
    })
    .transpose()
}

pub(super) fn lookup_from(l: Option<grpc::LookupLocation>) -> Option<LookupLocation> {
    l.map(|l| LookupLocation {
        collection: l.collection_name,
        vector: l.vector_name,
        shard_key: None,
    })
}

/// Legacy search: a dense vector (named by `vector_name`) or, with `sparse_indices`, a sparse one.
pub fn search(s: grpc::SearchPoints, consistency: ReadConsistency) -> Result<SearchRequest> {
    let vector = match (s.sparse_indices, s.vector_name) {
        (Some(indices), name) => NamedVectorStruct::Sparse {
            name: name.unwrap_or_default(),
            vector: SparseVector {
                indices: indices.data,
                values: s.vector,
            },
        },
        (None, Some(name)) => NamedVectorStruct::Dense { name, vector: s.vector },
        (None, None) => NamedVectorStruct::Default(s.vector),
    };
    Ok(SearchRequest {
        vector,
        filter: filter(s.filter)?,
        params: search_params(s.params)?,
        limit: size(s.limit),
        offset: s.offset.map(size),
        with_payload: with_payload(s.with_payload)?,
        with_vector: with_vectors(s.with_vectors),
        score_threshold: s.score_threshold,
        shard_key: None,
        consistency,
    })
}

fn examples(ids: Vec<grpc::PointId>, vectors: Vec<grpc::Vector>) -> Result<Vec<VectorOrId>> {
    let mut out: Vec<VectorOrId> = point_ids(ids)?.into_iter().map(VectorOrId::Id).collect();
    for v in vectors {
        out.push(example(v)?);
    }
    Ok(out)
}

/// Legacy recommend: example ids and example vectors together.
pub fn recommend(r: grpc::RecommendPoints, consistency: ReadConsistency) -> Result<RecommendRequest> {
    Ok(RecommendRequest {
        positive: examples(r.positive, r.positive_vectors)?,
        negative: examples(r.negative, r.negative_vectors)?,
        strategy: strategy(r.strategy)?,
        using: r.using,
        lookup_from: lookup_from(r.lookup_from),
        filter: filter(r.filter)?,
        params: search_params(r.params)?,
        limit: size(r.limit),
        offset: r.offset.map(size),
        with_payload: with_payload(r.with_payload)?,
        with_vector: with_vectors(r.with_vectors),
        score_threshold: r.score_threshold,
        consistency,
    })
}

/// A legacy discover example: a point id or a vector.
fn vector_example(e: Option<grpc::VectorExample>, what: &str) -> Result<VectorOrId> {
    use grpc::vector_example::Example;
    match e.and_then(|e| e.example) {
        Some(Example::Id(id)) => point_id(id).map(VectorOrId::Id),
        Some(Example::Vector(v)) => example(v),
        None => Err(Error::bad_input(format!("discover: missing field: {what}"))),
    }
}

pub fn discover(r: grpc::DiscoverPoints, consistency: ReadConsistency) -> Result<DiscoverRequest> {
    let target = match r.target.and_then(|t| t.target) {
        Some(grpc::target_vector::Target::Single(e)) => Some(vector_example(Some(e), "target")?),
        None => None,
    };
    let context = r
        .context
        .into_iter()
        .map(|p| {
            Ok(ContextPair {
                positive: vector_example(p.positive, "positive")?,
                negative: vector_example(p.negative, "negative")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(DiscoverRequest {
        target,
        context,
        using: r.using,
        lookup_from: lookup_from(r.lookup_from),
        filter: filter(r.filter)?,
        params: search_params(r.params)?,
        limit: size(r.limit),
        offset: r.offset.map(size),
        with_payload: with_payload(r.with_payload)?,
        with_vector: with_vectors(r.with_vectors),
        consistency,
    })
}

/// A query form the node does not serve, named as REST names it so the collection rejects it
/// with REST's message.
fn other(kind: &str) -> QueryInput {
    QueryInput::Other(Map::from_iter([(kind.to_string(), Value::Null)]))
}

fn inputs(list: Vec<grpc::VectorInput>) -> Result<Vec<VectorOrId>> {
    list.into_iter().map(vector_input).collect()
}

fn relevance_feedback(r: grpc::RelevanceFeedbackInput) -> Result<RelevanceFeedbackInput> {
    let missing = |field: &str| Error::bad_input(format!("relevance_feedback: missing field: {field}"));
    let target = vector_input(r.target.ok_or_else(|| missing("target"))?)?;
    let feedback = r
        .feedback
        .into_iter()
        .map(|item| {
            Ok(FeedbackItem {
                example: vector_input(item.example.ok_or_else(|| missing("feedback.example"))?)?,
                score: item.score,
            })
        })
        .collect::<Result<_>>()?;
    let strategy = match r.strategy.and_then(|s| s.variant) {
        Some(grpc::feedback_strategy::Variant::Naive(n)) => {
            FeedbackStrategy::Naive(NaiveFeedback { a: n.a, b: n.b, c: n.c })
        }
        None => return Err(missing("strategy")),
    };
    Ok(RelevanceFeedbackInput {
        target,
        feedback,
        strategy,
    })
}

fn query_input(q: grpc::Query) -> Result<Option<QueryInput>> {
    let Some(variant) = q.variant else {
        return Ok(None);
    };
    Ok(Some(match variant {
        Variant::Nearest(v) => QueryInput::Nearest {
            nearest: vector_input(v)?,
            mmr: None,
        },
        Variant::Recommend(r) => QueryInput::Recommend {
            recommend: RecommendInput {
                positive: inputs(r.positive)?,
                negative: inputs(r.negative)?,
                strategy: strategy(r.strategy)?,
            },
        },
        Variant::Discover(d) => QueryInput::Discover {
            discover: DiscoverInput {
                target: vector_input(
                    d.target
                        .ok_or_else(|| Error::bad_input("discover: missing field: target"))?,
                )?,
                context: context_pairs(d.context)?,
            },
        },
        Variant::Context(c) => QueryInput::Context {
            context: ContextInput(context_pairs(Some(c))?),
        },
        Variant::OrderBy(o) => QueryInput::OrderBy { order_by: order_by(o)? },
        Variant::Fusion(f) => QueryInput::Fusion {
            fusion: match grpc::Fusion::try_from(f) {
                Ok(grpc::Fusion::Rrf) => Fusion::Rrf,
                Ok(grpc::Fusion::Dbsf) => Fusion::Dbsf,
                Err(_) => return Err(Error::bad_input(format!("unknown fusion {f}"))),
            },
        },
        Variant::Sample(s) => match grpc::Sample::try_from(s) {
            Ok(grpc::Sample::Random) => QueryInput::Sample { sample: Sample::Random },
            Err(_) => return Err(Error::bad_input(format!("unknown sample {s}"))),
        },
        Variant::Formula(f) => QueryInput::Formula(super::formula::formula(f)?),
        Variant::NearestWithMmr(n) => QueryInput::Nearest {
            nearest: vector_input(
                n.nearest
                    .ok_or_else(|| Error::bad_input("nearest_with_mmr: missing field: nearest"))?,
            )?,
            mmr: Some(Mmr {
                diversity: n.mmr.and_then(|m| m.diversity),
                candidates_limit: n.mmr.and_then(|m| m.candidates_limit).map(|c| c as usize),
            }),
        },
        Variant::Rrf(r) => QueryInput::Rrf {
            rrf: RrfParams {
                k: r.k.map(|k| k as usize),
                weights: (!r.weights.is_empty()).then_some(r.weights),
            },
        },
        Variant::RelevanceFeedback(r) => QueryInput::RelevanceFeedback {
            relevance_feedback: relevance_feedback(r)?,
        },
        Variant::Text(_) => other("text"),
    }))
}

/// The pairs of a discover or context query; each needs both examples.
fn context_pairs(c: Option<grpc::ContextInput>) -> Result<Vec<ContextPair>> {
    let pairs = c.map(|c| c.pairs).unwrap_or_default();
    pairs
        .into_iter()
        .map(|p| {
            let missing = |side: &str| Error::bad_input(format!("context pair: missing field: {side}"));
            Ok(ContextPair {
                positive: vector_input(p.positive.ok_or_else(|| missing("positive"))?)?,
                negative: vector_input(p.negative.ok_or_else(|| missing("negative"))?)?,
            })
        })
        .collect()
}

/// `order_by` of scroll and of the query API.
pub fn order_by(o: grpc::OrderBy) -> Result<OrderByInterface> {
    use grpc::start_from::Value as Start;
    let direction = match o.direction.map(grpc::Direction::try_from) {
        None => None,
        Some(Ok(grpc::Direction::Asc)) => Some(Direction::Asc),
        Some(Ok(grpc::Direction::Desc)) => Some(Direction::Desc),
        Some(Err(_)) => return Err(Error::bad_input("order_by: unknown direction")),
    };
    let start_from = match o.start_from.and_then(|s| s.value) {
        None => None,
        Some(Start::Float(f)) => Some(StartFrom::Float(f)),
        Some(Start::Integer(i)) => Some(StartFrom::Integer(i)),
        Some(Start::Datetime(d)) => Some(StartFrom::Datetime(d)),
        Some(Start::Timestamp(t)) => {
            let dt = chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
                .ok_or_else(|| Error::bad_input("order_by: timestamp out of range"))?;
            Some(StartFrom::Datetime(dt.to_rfc3339()))
        }
    };
    Ok(OrderByInterface::Struct(OrderByStruct {
        key: o.key,
        direction,
        start_from,
    }))
}

/// A prefetch of the universal query, nested prefetches included.
fn prefetch(p: grpc::PrefetchQuery) -> Result<Prefetch> {
    Ok(Prefetch {
        prefetch: p.prefetch.into_iter().map(prefetch).collect::<Result<_>>()?,
        query: p.query.map(query_input).transpose()?.flatten(),
        using: p.using,
        filter: filter(p.filter)?,
        params: search_params(p.params)?,
        score_threshold: p.score_threshold,
        limit: p.limit.map(size),
        lookup_from: lookup_from(p.lookup_from),
    })
}

/// Universal query.
pub fn query(q: grpc::QueryPoints, consistency: ReadConsistency) -> Result<QueryRequest> {
    Ok(QueryRequest {
        query: q.query.map(query_input).transpose()?.flatten(),
        prefetch: q.prefetch.into_iter().map(prefetch).collect::<Result<_>>()?,
        using: q.using,
        filter: filter(q.filter)?,
        params: search_params(q.params)?,
        score_threshold: q.score_threshold,
        limit: q.limit.map(size),
        offset: q.offset.map(size),
        with_vector: with_vectors(q.with_vectors),
        with_payload: with_payload(q.with_payload)?,
        lookup_from: lookup_from(q.lookup_from),
        shard_key: None,
        consistency,
    })
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::vector_input::Variant as Input;

    use super::*;
    use crate::model::PointId;

    #[test]
    fn consistency_like_rest() {
        let of = |v| read_consistency(Some(grpc::ReadConsistency { value: Some(v) }));
        assert_eq!(read_consistency(None).unwrap(), ReadConsistency::One);
        assert_eq!(of(Consistency::Factor(1)).unwrap(), ReadConsistency::One);
        assert_eq!(of(Consistency::Factor(3)).unwrap(), ReadConsistency::Factor(3));
        assert!(of(Consistency::Factor(0)).is_err());
        assert_eq!(
            of(Consistency::Type(grpc::ReadConsistencyType::Majority as i32)).unwrap(),
            ReadConsistency::Majority
        );
        assert_eq!(
            of(Consistency::Type(grpc::ReadConsistencyType::All as i32)).unwrap(),
            ReadConsistency::All
        );
        assert!(of(Consistency::Type(42)).is_err());
    }

    #[test]
    fn search_vector_forms() {
        let dense = grpc::SearchPoints {
            vector: vec![1.0, 2.0],
            limit: 3,
            ..Default::default()
        };
        let r = search(dense, ReadConsistency::One).unwrap();
        assert_eq!(r.vector, NamedVectorStruct::Default(vec![1.0, 2.0]));
        assert_eq!(r.limit, 3);
        assert_eq!(r.with_payload, None);
        let sparse = grpc::SearchPoints {
            vector: vec![0.5],
            vector_name: Some("s".into()),
            sparse_indices: Some(grpc::SparseIndices { data: vec![9] }),
            ..Default::default()
        };
        let r = search(sparse, ReadConsistency::One).unwrap();
        assert!(
            matches!(r.vector, NamedVectorStruct::Sparse { ref name, ref vector } if name == "s" && vector.indices == [9])
        );
    }

    #[test]
    fn recommend_mixes_ids_and_vectors() {
        let r = grpc::RecommendPoints {
            positive: vec![1u64.into()],
            positive_vectors: vec![grpc::Vector {
                vector: Some(grpc::vector::Vector::Dense(grpc::DenseVector { data: vec![0.1] })),
                ..Default::default()
            }],
            strategy: Some(grpc::RecommendStrategy::BestScore as i32),
            limit: 5,
            ..Default::default()
        };
        let r = recommend(r, ReadConsistency::One).unwrap();
        assert_eq!(
            r.positive,
            vec![VectorOrId::Id(PointId::Num(1)), VectorOrId::Dense(vec![0.1])]
        );
        assert_eq!(r.strategy, Some(RecommendStrategy::BestScore));
        let bad = grpc::RecommendPoints {
            strategy: Some(9),
            ..Default::default()
        };
        assert!(recommend(bad, ReadConsistency::One).is_err());
    }

    #[test]
    fn query_forms() {
        let nearest = grpc::QueryPoints {
            query: Some(grpc::Query {
                variant: Some(Variant::Nearest(grpc::VectorInput {
                    variant: Some(Input::Id(7u64.into())),
                })),
            }),
            ..Default::default()
        };
        let q = query(nearest, ReadConsistency::One).unwrap();
        assert!(matches!(
            q.query,
            Some(QueryInput::Nearest {
                nearest: VectorOrId::Id(PointId::Num(7)),
                mmr: None
            })
        ));
        assert_eq!(q.limit, None);
        assert!(q.prefetch.is_empty());
        let none = query(grpc::QueryPoints::default(), ReadConsistency::One).unwrap();
        assert!(none.query.is_none());
        let fusion = grpc::QueryPoints {
            query: Some(grpc::Query {
                variant: Some(Variant::Fusion(grpc::Fusion::Rrf as i32)),
            }),
            prefetch: vec![grpc::PrefetchQuery::default()],
            ..Default::default()
        };
        let q = query(fusion, ReadConsistency::One).unwrap();
        assert!(matches!(q.query, Some(QueryInput::Fusion { fusion: Fusion::Rrf })));
        assert_eq!(q.prefetch.len(), 1);
        let nested = grpc::QueryPoints {
            query: Some(grpc::Query {
                variant: Some(Variant::Rrf(grpc::Rrf {
                    k: Some(60),
                    weights: vec![2.0, 1.0],
                })),
            }),
            prefetch: vec![grpc::PrefetchQuery {
                prefetch: vec![grpc::PrefetchQuery {
                    limit: Some(7),
                    using: Some("s".into()),
                    ..Default::default()
                }],
                query: Some(grpc::Query {
                    variant: Some(Variant::Fusion(grpc::Fusion::Dbsf as i32)),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let q = query(nested, ReadConsistency::One).unwrap();
        assert!(
            matches!(q.query, Some(QueryInput::Rrf { ref rrf }) if rrf.k == Some(60) && rrf.weights == Some(vec![2.0, 1.0]))
        );
        assert!(matches!(
            q.prefetch[0].query,
            Some(QueryInput::Fusion { fusion: Fusion::Dbsf })
        ));
        assert_eq!(q.prefetch[0].prefetch[0].limit, Some(7));
        assert_eq!(q.prefetch[0].prefetch[0].using.as_deref(), Some("s"));
    }
}
