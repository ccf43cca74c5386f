//! Strict mode (`strict_mode_config`): per-collection limits on requests, checked on the peer
//! that receives a request before it runs, with Qdrant's error texts (`Bad request: <what>.
//! Help: <how>`, HTTP 400) and its token-bucket rate limits (HTTP 429). Checks run only when
//! `enabled` is true. Facts: docs/strict-mode-facts.md.
//!
//! * this file: the config, the checks of one request (limits, filters, search parameters,
//!   timeout) and the collection's entry points for them;
//! * `query.rs`: the universal query's checks (prefetches, full scan, formulas, group_by);
//! * `unindexed.rs`: which payload index a filter condition needs;
//! * `size.rs`: collection size limits; `rate_limit.rs`: read and write rate limits.
//!
//! The unindexed-field issue (`crate::issues`) reuses `unindexed.rs`: slow searches and queries
//! report their filters' unindexed keys through [`Collection::after_read`].

mod query;
mod rate_limit;
mod size;
mod unindexed;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::Value;

use super::Collection;
use crate::error::{Error, Result};
use crate::issues::Issues;
use crate::model::collection::CollectionConfig;
use crate::model::facet::FacetRequest;
use crate::model::filter::{Condition, Filter, Match};
use crate::model::matrix::SearchMatrixRequest;
use crate::model::operations::{PointOperation, Selector};
use crate::model::query::{Prefetch, QueryRequest, ReadConsistency, SearchParams};
use crate::model::vector::{NamedVectors, Vector, VectorInput, DEFAULT_VECTOR};
pub(super) use rate_limit::{scroll_cost, search_cost};
use rate_limit::{Kind, RateLimiters};
use unindexed::Indexes;

/// A collection's `strict_mode_config`, as far as this node enforces it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StrictMode {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    max_query_limit: Option<usize>,
    #[serde(default)]
    max_timeout: Option<u64>,
    #[serde(default)]
    unindexed_filtering_retrieve: Option<bool>,
    #[serde(default)]
    unindexed_filtering_update: Option<bool>,
    #[serde(default)]
    search_max_hnsw_ef: Option<usize>,
    #[serde(default)]
    search_allow_exact: Option<bool>,
    #[serde(default)]
    search_max_oversampling: Option<f64>,
    #[serde(default)]
    upsert_max_batchsize: Option<usize>,
    #[serde(default)]
    search_max_batchsize: Option<usize>,
    #[serde(default)]
    max_collection_vector_size_bytes: Option<usize>,
    #[serde(default)]
    max_collection_payload_size_bytes: Option<usize>,
    #[serde(default)]
    read_rate_limit: Option<usize>,
    #[serde(default)]
    write_rate_limit: Option<usize>,
    #[serde(default)]
    filter_max_conditions: Option<usize>,
    #[serde(default)]
    condition_max_size: Option<usize>,
    #[serde(default)]
    max_points_count: Option<usize>,
    #[serde(default)]
    max_payload_index_count: Option<usize>,
    #[serde(default)]
    multivector_config: Option<BTreeMap<String, MultivectorLimit>>,
    #[serde(default)]
    sparse_config: Option<BTreeMap<String, SparseLimit>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct MultivectorLimit {
    #[serde(default)]
    max_vectors: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct SparseLimit {
    #[serde(default)]
    max_length: Option<usize>,
}

impl StrictMode {
    /// The collection's strict mode when it is enabled.
    pub fn of(config: Option<&Value>) -> Option<StrictMode> {
        let mode = StrictMode::deserialize(config?).ok()?;
        (mode.enabled == Some(true)).then_some(mode)
    }
}

/// What a collection keeps for strict mode between requests: its rate limiters and the last
/// measurement of its size. Lives with the collection (one per collection and peer).
#[derive(Debug, Default)]
pub struct State {
    limiters: RateLimiters,
    sizes: Mutex<size::SizeCache>,
    /// Where slow reads report their unindexed filter keys (the node's issue registry; set
    /// once the collection is registered).
    issues: OnceLock<Arc<Issues>>,
}

/// A strict-mode violation: `Bad request: {what}. Help: {help}`.
fn strict(what: impl Display, help: impl Display) -> Error {
    Error::BadRequest(format!("{what}. Help: {help}"))
}

/// Qdrant's `check_limit_opt`: fails when `value > limit`.
fn check_limit<T: PartialOrd + Display>(value: T, limit: Option<T>, name: &str) -> Result<()> {
    match limit {
        Some(limit) if value > limit => Err(strict(
            format!("Limit exceeded {value} > {limit} for \"{name}\""),
            format!("Reduce the \"{name}\" parameter to or below {limit}."),
        )),
        _ => Ok(()),
    }
}

/// Strict mode as one request sees it: the enabled config, the collection's payload indexes
/// and its configuration.
pub struct Strict {
    mode: StrictMode,
    indexes: Indexes,
    config: CollectionConfig,
}

impl Strict {
    /// `?timeout=` of the request (checked last, as Qdrant does).
    pub fn check_timeout(&self, timeout: Option<u64>) -> Result<()> {
        match timeout {
            Some(t) => check_limit(t, self.mode.max_timeout, "timeout"),
            None => Ok(()),
        }
    }

    /// A `limit` of a read.
    pub fn check_query_limit(&self, limit: usize) -> Result<()> {
        check_limit(limit, self.mode.max_query_limit, "limit")
    }

    /// The number of requests of a batch read.
    pub fn check_search_batch(&self, size: usize) -> Result<()> {
        check_limit(size, self.mode.search_max_batchsize, "search batch size")
    }

    pub fn check_exact(&self, exact: bool) -> Result<()> {
        if exact && self.mode.search_allow_exact == Some(false) {
            return Err(strict("Exact search disabled!", "Set exact=false."));
        }
        Ok(())
    }

    /// `params` of a search: oversampling, `hnsw_ef`, the IDF corpus filter, `exact`.
    pub fn check_params(&self, params: Option<&SearchParams>) -> Result<()> {
        let Some(p) = params else { return Ok(()) };
        let oversampling = p
            .quantization
            .as_ref()
            .and_then(|q| q.get("oversampling"))
            .and_then(Value::as_f64);
        if let Some(o) = oversampling {
            check_limit(o, self.mode.search_max_oversampling, "oversampling")?;
        }
        if let Some(ef) = p.hnsw_ef {
            check_limit(ef, self.mode.search_max_hnsw_ef, "hnsw_ef")?;
        }
        if let Some(corpus) = p.idf.as_ref().and_then(|i| i.corpus()) {
            self.check_read_filter(Some(corpus))?;
        }
        self.check_exact(p.exact)
    }

    /// A filter that selects what a read returns (`unindexed_filtering_retrieve`).
    pub fn check_read_filter(&self, filter: Option<&Filter>) -> Result<()> {
        self.check_filter(filter, self.mode.unindexed_filtering_retrieve)
    }

    /// A filter that selects what a write changes (`unindexed_filtering_update`).
    pub fn check_write_filter(&self, filter: Option<&Filter>) -> Result<()> {
        self.check_filter(filter, self.mode.unindexed_filtering_update)
    }

    /// Indexes (when unindexed filtering is off), then the condition count and size.
    fn check_filter(&self, filter: Option<&Filter>, allow_unindexed: Option<bool>) -> Result<()> {
        let Some(filter) = filter else { return Ok(()) };
        if allow_unindexed == Some(false) {
            if let Some(u) = self.indexes.first_unindexed(filter) {
                return Err(strict(
                    format!(
                        "Index required but not found for \"{}\" of one of the following types: [{}]",
                        u.key,
                        u.types()
                    ),
                    "Create an index for this key or use a different filter.",
                ));
            }
        }
        if let Some(max) = self.mode.filter_max_conditions {
            let n = conditions_count(filter);
            if n > max {
                return Err(strict(
                    format!("Filter condition limit reached ({n} > {max})"),
                    "Reduce the amount of conditions of your filter.",
                ));
            }
        }
        if let Some(max) = self.mode.condition_max_size {
            let n = max_condition_size(filter);
            if n > max {
                return Err(strict(
                    format!("Condition size limit reached ({n} > {max})"),
                    "Reduce the size of your condition.",
                ));
            }
        }
        Ok(())
    }

    /// A legacy search, recommend or discover: limit, filter, parameters.
    pub fn check_search(&self, limit: usize, filter: Option<&Filter>, params: Option<&SearchParams>) -> Result<()> {
        self.check_query_limit(limit)?;
        self.check_read_filter(filter)?;
        self.check_params(params)
    }

    /// A scroll: its limit only when given (10 by default, unchecked), its filter.
    pub fn check_scroll(&self, limit: Option<usize>, filter: Option<&Filter>) -> Result<()> {
        if let Some(limit) = limit {
            self.check_query_limit(limit)?;
        }
        self.check_read_filter(filter)
    }

    /// A count: its filter, and `exact` (true by default: refused under `search_allow_exact: false`).
    pub fn check_count(&self, filter: Option<&Filter>, exact: bool) -> Result<()> {
        self.check_read_filter(filter)?;
        self.check_exact(exact)
    }

    /// A facet: its limit when given, its filter, `exact` when true.
    pub fn check_facet(&self, r: &FacetRequest) -> Result<()> {
        if let Some(limit) = r.limit {
            self.check_query_limit(limit)?;
        }
        self.check_read_filter(r.filter.as_ref())?;
        self.check_exact(r.exact == Some(true))
    }

    /// The distance matrix: `sample × limit` of what the request gives (REST leaves a missing one
    /// out; the gRPC edge fills in the defaults, as Qdrant's gRPC request has them), its filter.
    pub fn check_matrix(&self, r: &SearchMatrixRequest) -> Result<()> {
        let limit = match (r.sample, r.limit) {
            (Some(sample), Some(limit)) => Some(sample.saturating_mul(limit)),
            (sample, limit) => sample.or(limit),
        };
        if let Some(limit) = limit {
            self.check_query_limit(limit)?;
        }
        self.check_read_filter(r.filter.as_ref())
    }

    /// A write: batch size, collection size (by the collection), vector sizes, its filter. The
    /// `update_filter` of a conditional write is not checked (Qdrant does not either).
    fn check_batch_size(&self, op: &PointOperation) -> Result<()> {
        match op {
            PointOperation::Upsert(points, _) => {
                check_limit(points.len(), self.mode.upsert_max_batchsize, "upsert limit")
            }
            PointOperation::UpdateVectors(updates, _) => {
                check_limit(updates.len(), self.mode.upsert_max_batchsize, "update limit")
            }
            _ => Ok(()),
        }
    }

    fn check_vector_sizes(&self, op: &PointOperation) -> Result<()> {
        match op {
            PointOperation::Upsert(points, _) => points.iter().try_for_each(|p| match &p.vector {
                VectorInput::Default(_) => Ok(()),
                VectorInput::DefaultMulti(rows) => self.check_multivector(DEFAULT_VECTOR, rows.len()),
                VectorInput::Named(named) => self.check_vectors(named),
            }),
            PointOperation::UpdateVectors(updates, _) => updates.iter().try_for_each(|(_, v)| self.check_vectors(v)),
            _ => Ok(()),
        }
    }

    fn check_vectors(&self, vectors: &NamedVectors) -> Result<()> {
        vectors.iter().try_for_each(|(name, v)| match v {
            Vector::MultiDense(rows) => self.check_multivector(name, rows.len()),
            Vector::Sparse(s) => self.check_sparse(name, s.indices.len(), s.values.len()),
            Vector::Dense(_) => Ok(()),
        })
    }

    fn check_multivector(&self, name: &str, rows: usize) -> Result<()> {
        let max = self
            .mode
            .multivector_config
            .as_ref()
            .and_then(|m| m.get(name)?.max_vectors);
        match max {
            Some(max) if rows > max => Err(Error::BadRequest(format!(
                "Multivector '{name}' has a limit of {max} vectors, but {rows} were provided!"
            ))),
            _ => Ok(()),
        }
    }

    /// Qdrant reports the number of indices, also when it is the values that are too many.
    fn check_sparse(&self, name: &str, length: usize, values: usize) -> Result<()> {
        let max = self.mode.sparse_config.as_ref().and_then(|m| m.get(name)?.max_length);
        match max {
            Some(max) if length > max || values > max => Err(Error::BadRequest(format!(
                "Sparse vector '{name}' has a limit of {max} indices, but {length} were provided!"
            ))),
            _ => Ok(()),
        }
    }
}

/// The filter that selects the points a write changes, if it has one.
/// A universal query's filters: its own and those of its prefetches, at any depth (Qdrant's
/// `filter_refs`).
pub(super) fn query_filters(r: &QueryRequest) -> Vec<&Filter> {
    fn prefetch<'a>(p: &'a Prefetch, out: &mut Vec<&'a Filter>) {
        out.extend(p.filter.as_ref());
        p.prefetch.iter().for_each(|p| prefetch(p, out));
    }
    let mut out: Vec<&Filter> = r.filter.iter().collect();
    r.prefetch.iter().for_each(|p| prefetch(p, &mut out));
    out
}

fn write_filter(op: &PointOperation) -> Option<&Filter> {
    match op.selector() {
        Some(Selector::Filter(f)) => Some(f),
        _ => None,
    }
}

impl Collection {
    /// The collection's strict mode for one request, when it is enabled.
    pub fn strict(&self) -> Option<Strict> {
        let meta = self.meta.read();
        let mode = StrictMode::of(meta.config.strict_mode_config.as_ref())?;
        Some(Strict {
            mode,
            indexes: Indexes::new(&meta.payload_indexes),
            config: meta.config.clone(),
        })
    }

    /// The rate limits in force: `(read, write)` per minute.
    fn rate_limits(&self) -> (Option<usize>, Option<usize>) {
        let meta = self.meta.read();
        let Some(config) = meta.config.strict_mode_config.as_ref() else {
            return (None, None);
        };
        match StrictMode::of(Some(config)) {
            Some(m) => (m.read_rate_limit, m.write_rate_limit),
            None => (None, None),
        }
    }

    /// Charges a read to the read rate limiter (`cost` is computed only when one applies).
    pub(super) fn charge_read(&self, cost: impl FnOnce() -> usize) -> Result<()> {
        match self.rate_limits().0 {
            Some(limit) => self.strict_state.limiters.charge(Kind::Read, Some(limit), cost),
            None => Ok(()),
        }
    }

    /// Charges a write to the write rate limiter: one token per point it names, or per point its
    /// filter matches; at least one.
    pub(super) async fn charge_write(&self, op: &PointOperation) -> Result<()> {
        let Some(limit) = self.rate_limits().1 else {
            return Ok(());
        };
        let affected = match op {
            PointOperation::Upsert(points, _) => points.len(),
            PointOperation::UpdateVectors(updates, _) => updates.len(),
            _ => match op.selector() {
                Some(Selector::Ids(ids)) => ids.len(),
                Some(Selector::Filter(f)) => self.count_points(Some(f.clone()), ReadConsistency::One).await?,
                None => 1,
            },
        };
        self.strict_state
            .limiters
            .charge(Kind::Write, Some(limit), || affected.max(1))
    }

    /// Creating or deleting a payload index or a named vector: one write token (Qdrant charges
    /// them as writes that name no points).
    pub fn charge_schema_write(&self) -> Result<()> {
        match self.rate_limits().1 {
            Some(limit) => self.strict_state.limiters.charge(Kind::Write, Some(limit), || 1),
            None => Ok(()),
        }
    }

    /// Reports this collection's slow searches and queries to `issues`.
    pub fn report_issues_to(&self, issues: Arc<Issues>) {
        let _ = self.strict_state.issues.set(issues);
    }

    /// The filters a read will report if it turns out slow: clones of `filters`, or nothing
    /// when no issue registry listens.
    pub(super) fn watched_filters<'a>(&self, filters: impl IntoIterator<Item = &'a Filter>) -> Vec<Filter> {
        match self.strict_state.issues.get() {
            Some(_) => filters.into_iter().cloned().collect(),
            None => Vec::new(),
        }
    }

    /// After a search or query that `started` then and succeeded: when it took longer than
    /// the node's slow-query threshold, each key of its `filters` that no payload index serves
    /// becomes an unindexed-field issue (Qdrant's `post_process_if_slow_request`).
    pub(super) fn after_read(&self, started: Instant, filters: &[Filter]) {
        let Some(issues) = self.strict_state.issues.get() else {
            return;
        };
        if filters.is_empty() || started.elapsed() <= issues.slow_query() {
            return;
        }
        let indexes = Indexes::new(&self.meta.read().payload_indexes);
        for unindexed in filters.iter().flat_map(|f| indexes.all_unindexed(f)) {
            issues.unindexed_field(&self.name, &unindexed.key.to_string(), &unindexed.suggested_types());
        }
    }

    /// Full rate-limit buckets again: every update of the strict mode config does this.
    pub fn reset_rate_limiters(&self) {
        self.strict_state.limiters.reset();
    }

    /// A request checked for nothing but its `timeout` (retrieve, creating a vector name).
    pub fn check_timeout(&self, timeout: Option<u64>) -> Result<()> {
        self.strict().map_or(Ok(()), |s| s.check_timeout(timeout))
    }

    /// The strict-mode checks of one write, in Qdrant's order: batch size, collection size,
    /// multivector and sparse sizes, the write filter, and last the timeout.
    pub async fn check_write(&self, op: &PointOperation, timeout: Option<u64>) -> Result<()> {
        let Some(s) = self.strict() else { return Ok(()) };
        s.check_batch_size(op)?;
        self.check_size_limits(&s, op).await?;
        s.check_vector_sizes(op)?;
        s.check_write_filter(write_filter(op))?;
        s.check_timeout(timeout)
    }

    /// Creating a payload index: `max_payload_index_count` (counted before, even for a field that
    /// has one), then the timeout.
    pub fn check_create_index(&self, timeout: Option<u64>) -> Result<()> {
        let Some(s) = self.strict() else { return Ok(()) };
        if let Some(max) = s.mode.max_payload_index_count {
            if self.payload_indexes().len() >= max {
                return Err(strict(
                    format!("Collection already has the maximum number of payload indices ({max})"),
                    "Please delete an existing index before creating a new one.",
                ));
            }
        }
        s.check_timeout(timeout)
    }
}

/// Conditions of a filter, sub-filters and nested filters counted by their own conditions
/// (Qdrant's `total_conditions_count`).
pub(super) fn conditions_count(f: &Filter) -> usize {
    unindexed::all_conditions(f).map(condition_count).sum()
}

fn condition_count(c: &Condition) -> usize {
    match c {
        Condition::Filter(f) => conditions_count(f),
        Condition::Nested(n) => conditions_count(&n.filter),
        _ => 1,
    }
}

/// The largest input of one condition: values of `any`/`except`, ids of `has_id`.
fn max_condition_size(f: &Filter) -> usize {
    unindexed::all_conditions(f).map(condition_size).max().unwrap_or(0)
}

fn condition_size(c: &Condition) -> usize {
    match c {
        Condition::Filter(f) => max_condition_size(f),
        Condition::Nested(n) => max_condition_size(&n.filter),
        Condition::HasId(ids) => ids.len(),
        Condition::Field(field) => match &field.r#match {
            Some(Match::Any(values) | Match::Except(values)) => values.len(),
            _ => 0,
        },
        _ => 0,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An enabled strict mode over a collection with `indexes` and `config`.
    pub fn strict_with(v: Value, indexes: Value, config: Option<CollectionConfig>) -> Strict {
        let map: BTreeMap<String, crate::storage::payload_index::PayloadFieldSchema> =
            serde_json::from_value(indexes).unwrap();
        Strict {
            mode: StrictMode::of(Some(&v)).unwrap(),
            indexes: Indexes::new(&map),
            config: config.unwrap_or_else(test_config),
        }
    }

    pub fn test_config() -> CollectionConfig {
        let create: crate::model::collection::CreateCollection =
            serde_json::from_value(serde_json::json!({"vectors": {"size": 4, "distance": "Dot"}})).unwrap();
        create.into_config(&crate::settings::Settings::default(), 1).unwrap()
    }

    fn mode(v: Value) -> Strict {
        strict_with(v, serde_json::json!({}), None)
    }

    #[test]
    fn only_enabled_modes_apply() {
        assert!(StrictMode::of(Some(&serde_json::json!({"max_query_limit": 1}))).is_none());
        assert!(StrictMode::of(Some(&serde_json::json!({"enabled": false, "max_query_limit": 1}))).is_none());
        assert!(StrictMode::of(None).is_none());
    }

    #[test]
    fn limits_use_qdrant_texts() {
        let m = mode(
            serde_json::json!({"enabled": true, "max_query_limit": 15, "search_allow_exact": false,
                                        "max_timeout": 2}),
        );
        assert!(m.check_query_limit(15).is_ok());
        let e = m.check_query_limit(30).unwrap_err().to_string();
        assert_eq!(
            e,
            "Bad request: Limit exceeded 30 > 15 for \"limit\". Help: Reduce the \"limit\" parameter to or below 15."
        );
        assert_eq!(
            m.check_exact(true).unwrap_err().to_string(),
            "Bad request: Exact search disabled!. Help: Set exact=false."
        );
        assert!(m.check_count(None, true).is_err());
        assert!(m.check_count(None, false).is_ok());
        assert!(m.check_timeout(Some(2)).is_ok() && m.check_timeout(None).is_ok());
        assert!(m
            .check_timeout(Some(3))
            .unwrap_err()
            .to_string()
            .contains("3 > 2 for \"timeout\""));
    }

    #[test]
    fn matrix_limit_multiplies_what_is_given() {
        let m = mode(serde_json::json!({"enabled": true, "max_query_limit": 15}));
        let r = |sample, limit| SearchMatrixRequest {
            sample,
            limit,
            ..Default::default()
        };
        assert!(m.check_matrix(&r(Some(5), Some(3))).is_ok());
        assert!(m
            .check_matrix(&r(Some(8), Some(2)))
            .unwrap_err()
            .to_string()
            .contains("16 > 15"));
        assert!(m.check_matrix(&r(Some(15), None)).is_ok());
        assert!(m.check_matrix(&r(None, Some(16))).is_err());
        assert!(m.check_matrix(&r(None, None)).is_ok());
    }

    #[test]
    fn filter_conditions_are_counted_like_qdrant() {
        let f: Filter = serde_json::from_value(serde_json::json!({
            "must": [
                {"key": "a", "match": {"any": ["x", "y", "z"]}},
                {"must": [{"key": "b", "match": {"value": 1}}, {"has_id": [1, 2]}]},
                {"nested": {"key": "n", "filter": {"must": [{"key": "c", "match": {"value": 2}}]}}}
            ],
            "should": [{"is_empty": {"key": "d"}}]
        }))
        .unwrap();
        assert_eq!(conditions_count(&f), 5);
        assert_eq!(max_condition_size(&f), 3);
        let m = mode(serde_json::json!({"enabled": true, "filter_max_conditions": 4}));
        assert!(m
            .check_read_filter(Some(&f))
            .unwrap_err()
            .to_string()
            .contains("(5 > 4)"));
    }

    #[test]
    fn unindexed_filters_by_direction() {
        let f: Filter =
            serde_json::from_value(serde_json::json!({"must": [{"key": "price", "match": {"value": 3}}]})).unwrap();
        let read = mode(serde_json::json!({"enabled": true, "unindexed_filtering_retrieve": false}));
        assert_eq!(
            read.check_read_filter(Some(&f)).unwrap_err().to_string(),
            "Bad request: Index required but not found for \"price\" of one of the following types: [integer]. \
             Help: Create an index for this key or use a different filter."
        );
        assert!(read.check_write_filter(Some(&f)).is_ok());
        let write = mode(serde_json::json!({"enabled": true, "unindexed_filtering_update": false}));
        assert!(write.check_write_filter(Some(&f)).is_err());
        assert!(write.check_read_filter(Some(&f)).is_ok());
        let indexed = strict_with(
            serde_json::json!({"enabled": true, "unindexed_filtering_retrieve": false}),
            serde_json::json!({"price": "integer"}),
            None,
        );
        assert!(indexed.check_read_filter(Some(&f)).is_ok());
    }

    #[test]
    fn writes_check_batch_and_vector_sizes_not_update_filters() {
        let m = mode(serde_json::json!({"enabled": true, "upsert_max_batchsize": 1,
                                        "unindexed_filtering_update": false}));
        let upsert: crate::model::operations::UpsertRequest = serde_json::from_value(serde_json::json!({
            "points": [{"id": 1, "vector": [1.0]}, {"id": 2, "vector": [1.0]}]
        }))
        .unwrap();
        let op = upsert.into_operation().unwrap();
        assert!(m
            .check_batch_size(&op)
            .unwrap_err()
            .to_string()
            .contains("2 > 1 for \"upsert limit\""));
        // deletes by id have no batch limit
        assert!(m
            .check_batch_size(&PointOperation::Delete(Selector::Ids(vec![
                crate::model::PointId::Num(1),
                crate::model::PointId::Num(2)
            ])))
            .is_ok());
    }
}
