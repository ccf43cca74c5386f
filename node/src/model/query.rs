//! Search, query, recommend and scroll requests and their results, in Qdrant's JSON shapes,
//! plus the resolved `ShardQuery` that collections hand to shards.

use serde::{Deserialize, Serialize};

use super::filter::Filter;
use super::formula::{FormulaQuery, ParsedFormula};
use super::order_by::{OrderBy, OrderByInterface};
use super::payload::{Payload, PayloadSelector};
use super::point_id::PointId;
use super::vector::{SparseVector, VectorInput, WithVector};

/// `params` of search and query requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    pub hnsw_ef: Option<usize>,
    #[serde(default)]
    pub exact: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<serde_json::Value>,
    #[serde(default)]
    pub indexed_only: bool,
    /// Which points sparse IDF statistics are computed over (collection-wide by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idf: Option<IdfParams>,
}

/// `params.idf`: `"global"` or `{"corpus": <filter>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IdfParams {
    Scope(IdfScope),
    Corpus { corpus: Box<crate::model::Filter> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdfScope {
    Global,
}

impl IdfParams {
    /// The filter the statistics are restricted to, if any.
    pub fn corpus(&self) -> Option<&crate::model::Filter> {
        match self {
            IdfParams::Scope(IdfScope::Global) => None,
            IdfParams::Corpus { corpus } => Some(corpus),
        }
    }
}

impl SearchParams {
    /// Qdrant's bounds: `hnsw_ef` is at least 1.
    pub fn validate(&self) -> crate::error::Result<()> {
        if self.hnsw_ef == Some(0) {
            return Err(crate::error::Error::validation(
                "params.hnsw_ef: value 0 invalid, must be 1 or larger",
            ));
        }
        self.quantization()?;
        Ok(())
    }

    /// `quantization`, parsed (defaults when absent).
    pub fn quantization(&self) -> crate::error::Result<super::quantization::QuantizationSearchParams> {
        super::quantization::QuantizationSearchParams::parse(self.quantization.as_ref())
    }
}

/// The `vector` of a legacy search: a plain list, or a named dense or sparse vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NamedVectorStruct {
    Default(Vec<f32>),
    Dense { name: String, vector: Vec<f32> },
    Sparse { name: String, vector: SparseVector },
}

/// `POST /collections/{c}/points/search`.
#[derive(Debug, Clone, Deserialize)]
pub struct SearchRequest {
    pub vector: NamedVectorStruct,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(alias = "top")]
    pub limit: usize,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub with_payload: Option<PayloadSelector>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub shard_key: Option<serde_json::Value>,
    /// From `?consistency=` (not part of the body).
    #[serde(skip)]
    pub consistency: ReadConsistency,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SearchBatchRequest {
    pub searches: Vec<SearchRequest>,
}

/// `lookup_from`: take the examples' vectors from another collection (and vector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupLocation {
    pub collection: String,
    /// The vector to take; the query's `using` if absent.
    #[serde(default)]
    pub vector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_key: Option<serde_json::Value>,
}

/// A vector in a query or a recommendation example: dense, sparse, or an existing point's id
/// (meaning that point's vector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VectorOrId {
    Dense(Vec<f32>),
    /// Before `Sparse`, which would also parse a list of two integer lists (see `Vector`).
    MultiDense(Vec<Vec<f32>>),
    Sparse(SparseVector),
    Id(PointId),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendStrategy {
    #[default]
    AverageVector,
    BestScore,
    SumScores,
}

/// `POST /collections/{c}/points/recommend` (legacy).
#[derive(Debug, Clone, Deserialize)]
pub struct RecommendRequest {
    #[serde(default)]
    pub positive: Vec<VectorOrId>,
    #[serde(default)]
    pub negative: Vec<VectorOrId>,
    #[serde(default)]
    pub strategy: Option<RecommendStrategy>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub lookup_from: Option<LookupLocation>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(alias = "top")]
    pub limit: usize,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub with_payload: Option<PayloadSelector>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    /// From `?consistency=` (not part of the body).
    #[serde(skip)]
    pub consistency: ReadConsistency,
}

/// `POST /collections/{c}/points/discover`: discovery (with a target) or context search.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoverRequest {
    #[serde(default)]
    pub target: Option<VectorOrId>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub context: Vec<ContextPair>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub lookup_from: Option<LookupLocation>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(alias = "top")]
    pub limit: usize,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub with_payload: Option<PayloadSelector>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// From `?consistency=` (not part of the body).
    #[serde(skip)]
    pub consistency: ReadConsistency,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DiscoverBatchRequest {
    pub searches: Vec<DiscoverRequest>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecommendBatchRequest {
    pub searches: Vec<RecommendRequest>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecommendInput {
    #[serde(default)]
    pub positive: Vec<VectorOrId>,
    #[serde(default)]
    pub negative: Vec<VectorOrId>,
    #[serde(default)]
    pub strategy: Option<RecommendStrategy>,
}

/// A pair of examples: points should be nearer `positive` than `negative`.
#[derive(Debug, Clone, Deserialize)]
pub struct ContextPair {
    pub positive: VectorOrId,
    pub negative: VectorOrId,
}

/// `discover`: the target to approach, within the zone the context pairs describe.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoverInput {
    pub target: VectorOrId,
    #[serde(default, deserialize_with = "one_or_many")]
    pub context: Vec<ContextPair>,
}

/// `relevance_feedback`: re-rank around `target` using scores a feedback model gave to examples.
#[derive(Debug, Clone, Deserialize)]
pub struct RelevanceFeedbackInput {
    pub target: VectorOrId,
    pub feedback: Vec<FeedbackItem>,
    pub strategy: FeedbackStrategy,
}

/// An example and the score the feedback model gave it.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedbackItem {
    pub example: VectorOrId,
    pub score: f32,
}

/// How feedback scores turn into a scoring function.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackStrategy {
    /// `a * sim(target) + sum over pairs (confidence^b * c * (sim(better) - sim(worse)))`.
    Naive(NaiveFeedback),
}

/// The trained coefficients of the naive strategy.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct NaiveFeedback {
    pub a: f32,
    pub b: f32,
    pub c: f32,
}

/// `{"context": pairs}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ContextInput(#[serde(deserialize_with = "one_or_many")] pub Vec<ContextPair>);

/// How `fusion` combines the candidate lists of several prefetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal rank fusion with the default `k`.
    Rrf,
    /// Distribution-based score fusion.
    Dbsf,
}

/// `mmr` of a `nearest` query.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Mmr {
    /// 0 = relevance only, 1 = diversity only (default 0.5).
    #[serde(default)]
    pub diversity: Option<f32>,
    /// Nearest points to re-rank (default: the query's `limit`).
    #[serde(default)]
    pub candidates_limit: Option<usize>,
}

/// `{"sample": "random"}`: how points are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sample {
    Random,
}

/// `{"rrf": {"k": .., "weights": [..]}}`: parametrised, optionally weighted, reciprocal rank fusion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RrfParams {
    #[serde(default)]
    pub k: Option<usize>,
    #[serde(default)]
    pub weights: Option<Vec<f32>>,
}

/// The `query` of the universal query API (the forms this node serves).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum QueryInput {
    Nearest {
        nearest: VectorOrId,
        /// Maximal marginal relevance: re-rank the nearest candidates for diversity.
        #[serde(default)]
        mmr: Option<Mmr>,
    },
    Recommend {
        recommend: RecommendInput,
    },
    Discover {
        discover: DiscoverInput,
    },
    Context {
        context: ContextInput,
    },
    RelevanceFeedback {
        relevance_feedback: RelevanceFeedbackInput,
    },
    Fusion {
        fusion: Fusion,
    },
    Rrf {
        rrf: RrfParams,
    },
    Formula(FormulaQuery),
    Sample {
        sample: Sample,
    },
    OrderBy {
        order_by: OrderByInterface,
    },
    Raw(VectorOrId),
    /// Any other Qdrant query form; rejected with a clear message.
    Other(serde_json::Map<String, serde_json::Value>),
}

/// A `prefetch` of the query API: a sub-query whose results the enclosing query re-scores or
/// fuses. Nests to any depth.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Prefetch {
    #[serde(default, deserialize_with = "one_or_many")]
    pub prefetch: Vec<Prefetch>,
    #[serde(default)]
    pub query: Option<QueryInput>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub lookup_from: Option<LookupLocation>,
}

/// One item, a list of them, or null (an empty list): `prefetch` and context pairs.
fn one_or_many<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
    }
    Ok(match Option::<OneOrMany<T>>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::Many(list)) => list,
        Some(OneOrMany::One(one)) => vec![one],
    })
}

/// `POST /collections/{c}/points/query`.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryRequest {
    #[serde(default)]
    pub query: Option<QueryInput>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub prefetch: Vec<Prefetch>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub with_payload: Option<PayloadSelector>,
    #[serde(default)]
    pub lookup_from: Option<LookupLocation>,
    #[serde(default)]
    pub shard_key: Option<serde_json::Value>,
    /// From `?consistency=` (not part of the body).
    #[serde(skip)]
    pub consistency: ReadConsistency,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueryBatchRequest {
    pub searches: Vec<QueryRequest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryResponse {
    pub points: Vec<ScoredPoint>,
}

/// `POST /collections/{c}/points/scroll`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScrollRequest {
    #[serde(default)]
    pub offset: Option<PointId>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub with_payload: Option<PayloadSelector>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub order_by: Option<OrderByInterface>,
    #[serde(default)]
    pub shard_key: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScrollResult {
    pub points: Vec<Record>,
    pub next_page_offset: Option<PointId>,
}

/// `POST /collections/{c}/points/count`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CountRequest {
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default = "yes")]
    pub exact: bool,
    #[serde(default)]
    pub shard_key: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize)]
pub struct CountResult {
    pub count: usize,
}

/// `POST /collections/{c}/points` (retrieve many).
#[derive(Debug, Clone, Deserialize)]
pub struct PointRequest {
    pub ids: Vec<PointId>,
    #[serde(default)]
    pub with_payload: Option<PayloadSelector>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub shard_key: Option<serde_json::Value>,
}

/// A stored point as returned by retrieve and scroll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: PointId,
    pub payload: Option<Payload>,
    pub vector: Option<VectorInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_key: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_value: Option<serde_json::Value>,
}

/// A search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPoint {
    pub id: PointId,
    pub version: u64,
    pub score: f32,
    pub payload: Option<Payload>,
    pub vector: Option<VectorInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_key: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_value: Option<serde_json::Value>,
}

/// What a shard scores points by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShardQueryKind {
    /// Nearest to a dense vector (already preprocessed for the distance).
    Dense(Vec<f32>),
    /// Highest dot product with a sparse vector.
    Sparse(SparseVector),
    /// Highest MaxSim with a multivector (rows already preprocessed for the distance).
    MultiDense(Vec<Vec<f32>>),
    /// Scoring against examples (`best_score` or `sum_scores` recommendation).
    Recommend {
        strategy: RecommendStrategy,
        positives: Vec<Vec<f32>>,
        negatives: Vec<Vec<f32>>,
    },
    /// No scoring: points in id order with score 1 (a query without `query`, as Qdrant scrolls).
    None,
    /// `sample: random`: points drawn at random, score 1.
    Sample,
    /// Points by the values of a payload key (one entry per value), score 1.
    OrderBy(OrderBy),
    /// Discovery: +1/-1 per context pair the point is on the positive/negative side of, plus
    /// the squashed similarity to the target.
    Discover {
        target: Vec<f32>,
        pairs: Vec<(Vec<f32>, Vec<f32>)>,
    },
    /// Context search: the summed soft loss of the pairs the point is on the wrong side of.
    Context { pairs: Vec<(Vec<f32>, Vec<f32>)> },
    /// Relevance feedback: `a` times the similarity to the target, plus, per pair of examples
    /// the feedback model ranked apart, its weight times how much nearer the better one is.
    Feedback {
        target: Vec<f32>,
        a: f32,
        /// (better example, worse example, weight = confidence^b * c).
        pairs: Vec<(Vec<f32>, Vec<f32>, f32)>,
    },
    /// A score formula over the prefetched candidates, given each prefetch's scores.
    Formula {
        formula: Box<ParsedFormula>,
        scores: Vec<Vec<(PointId, f32)>>,
    },
}

/// A fully resolved search, as collections send it to each shard (local or remote).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardQuery {
    pub using: String,
    pub kind: ShardQueryKind,
    pub filter: Option<Filter>,
    /// Hits wanted from each shard: the request's offset + limit.
    pub limit: usize,
    pub params: SearchParams,
    pub score_threshold: Option<f32>,
    pub with_payload: PayloadSelector,
    pub with_vector: WithVector,
    /// Ids excluded from results (the examples of a recommendation).
    pub exclude: Vec<PointId>,
    /// When set, only these points are scored: the candidates prefetched for a re-scoring query.
    #[serde(default)]
    pub candidates: Option<Vec<PointId>>,
    /// One of several sibling searches of a query: run it on its own thread so the siblings
    /// overlap, rather than inline on the async worker (which would run them one after another).
    #[serde(default)]
    pub sibling: bool,
}

/// `?consistency=` of reads: how many replicas of each shard answer, and which points count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Ask this many replicas; return points all of them have. The default is 1.
    Factor(usize),
    /// Ask every replica; return points a majority of them hold identically.
    Majority,
    /// Ask a majority of the replicas; return points all of them hold identically.
    Quorum,
    /// Ask every replica; return points all of them hold identically.
    All,
    /// One replica (the local one when there is one).
    #[default]
    One,
}

impl ReadConsistency {
    pub fn parse(value: Option<&str>) -> crate::error::Result<ReadConsistency> {
        match value {
            None | Some("1") => Ok(ReadConsistency::One),
            Some("majority") => Ok(ReadConsistency::Majority),
            Some("quorum") => Ok(ReadConsistency::Quorum),
            Some("all") => Ok(ReadConsistency::All),
            Some(n) => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(ReadConsistency::Factor(n)),
                _ => Err(crate::error::Error::bad_input(format!(
                    "consistency: `{n}` is not a positive number, majority, quorum or all"
                ))),
            },
        }
    }

    /// How many of the `replicas` (Active, readable) to ask, of a shard of `total` replicas
    /// (Qdrant's numbers): a factor above `total` asks them all, as Qdrant clamps it.
    pub fn replicas_to_ask(self, replicas: usize, total: usize) -> usize {
        match self {
            ReadConsistency::One => 1,
            ReadConsistency::Factor(n) => n.clamp(1, total.max(1)),
            ReadConsistency::All | ReadConsistency::Majority => replicas,
            ReadConsistency::Quorum => replicas / 2 + 1,
        }
    }
}
