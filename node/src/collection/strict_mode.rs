//! Strict mode (`strict_mode_config`): per-collection limits on requests, checked before a request
//! runs, with Qdrant's error texts (`Bad request: <what>. Help: <how>`, HTTP 400). Checks run only
//! when `enabled` is true. Facts: docs/strict-mode-facts.md.
//!
//! Enforced here: `max_query_limit`, `search_max_hnsw_ef`, `search_allow_exact`,
//! `search_max_oversampling`, `search_max_batchsize`, `upsert_max_batchsize`,
//! `filter_max_conditions`, `condition_max_size`, `max_points_count`, multivector `max_vectors`
//! and sparse `max_length`.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::filter::{Condition, Filter, Match};
use crate::model::operations::{PointOperation, Selector};
use crate::model::query::{Prefetch, QueryRequest, SearchParams};
use crate::model::vector::{NamedVectors, Vector, VectorInput, DEFAULT_VECTOR};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StrictMode {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    max_query_limit: Option<usize>,
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
    filter_max_conditions: Option<usize>,
    #[serde(default)]
    condition_max_size: Option<usize>,
    #[serde(default)]
    max_points_count: Option<usize>,
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

fn strict(what: impl Display, help: impl Display) -> Error {
    Error::BadRequest(format!("{what}. Help: {help}"))
}

fn check_limit<T: PartialOrd + Display>(value: T, limit: Option<T>, name: &str) -> Result<()> {
    match limit {
        Some(limit) if value > limit => Err(strict(
            format!("Limit exceeded {value} > {limit} for \"{name}\""),
            format!("Reduce the \"{name}\" parameter to or below {limit}."),
        )),
        _ => Ok(()),
    }
}

impl StrictMode {
    /// The collection's strict mode when it is enabled.
    pub fn of(config: Option<&Value>) -> Option<StrictMode> {
        let mode: StrictMode = serde_json::from_value(config?.clone()).ok()?;
        (mode.enabled == Some(true)).then_some(mode)
    }

    /// A `limit` of a read.
    pub fn check_query_limit(&self, limit: usize) -> Result<()> {
        check_limit(limit, self.max_query_limit, "limit")
    }

    /// The number of requests of a batch read.
    pub fn check_search_batch(&self, size: usize) -> Result<()> {
        check_limit(size, self.search_max_batchsize, "search batch size")
    }

    pub fn check_params(&self, params: Option<&SearchParams>) -> Result<()> {
        let Some(p) = params else { return Ok(()) };
        let oversampling = p
            .quantization
            .as_ref()
            .and_then(|q| q.get("oversampling"))
            .and_then(Value::as_f64);
        if let Some(o) = oversampling {
            check_limit(o, self.search_max_oversampling, "oversampling")?;
        }
        if let Some(ef) = p.hnsw_ef {
            check_limit(ef, self.search_max_hnsw_ef, "hnsw_ef")?;
        }
        self.check_exact(p.exact)?;
        if let Some(corpus) = p.idf.as_ref().and_then(|i| i.corpus()) {
            self.check_filter(Some(corpus))?;
        }
        Ok(())
    }

    pub fn check_exact(&self, exact: bool) -> Result<()> {
        if exact && self.search_allow_exact == Some(false) {
            return Err(strict("Exact search disabled!", "Set exact=false."));
        }
        Ok(())
    }

    /// The size limits of a read or write filter.
    pub fn check_filter(&self, filter: Option<&Filter>) -> Result<()> {
        let Some(filter) = filter else { return Ok(()) };
        if let Some(max) = self.filter_max_conditions {
            let n = conditions_count(filter);
            if n > max {
                return Err(strict(
                    format!("Filter condition limit reached ({n} > {max})"),
                    "Reduce the amount of conditions of your filter.",
                ));
            }
        }
        if let Some(max) = self.condition_max_size {
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

    /// A search-like read (search, recommend, discover): limit, parameters and filter.
    pub fn check_read(&self, limit: usize, params: Option<&SearchParams>, filter: Option<&Filter>) -> Result<()> {
        self.check_query_limit(limit)?;
        self.check_params(params)?;
        self.check_filter(filter)
    }

    /// A universal query: its limit, parameters and filter, and those of every prefetch.
    pub fn check_query(&self, r: &QueryRequest) -> Result<()> {
        self.check_stage(r.limit, r.params.as_ref(), r.filter.as_ref(), &r.prefetch)
    }

    fn check_stage(
        &self,
        limit: Option<usize>,
        params: Option<&SearchParams>,
        filter: Option<&Filter>,
        prefetch: &[Prefetch],
    ) -> Result<()> {
        if let Some(limit) = limit {
            self.check_query_limit(limit)?;
        }
        self.check_params(params)?;
        self.check_filter(filter)?;
        prefetch
            .iter()
            .try_for_each(|p| self.check_stage(p.limit, p.params.as_ref(), p.filter.as_ref(), &p.prefetch))
    }

    /// A write: batch size, multivector and sparse sizes, and its filter.
    pub fn check_update(&self, op: &PointOperation) -> Result<()> {
        match op {
            PointOperation::Upsert(points, conditions) => {
                check_limit(points.len(), self.upsert_max_batchsize, "upsert limit")?;
                self.check_filter(conditions.filter.as_ref())?;
                points.iter().try_for_each(|p| match &p.vector {
                    VectorInput::Default(_) => Ok(()),
                    VectorInput::DefaultMulti(rows) => self.check_multivector(DEFAULT_VECTOR, rows.len()),
                    VectorInput::Named(named) => self.check_vectors(named),
                })
            }
            PointOperation::UpdateVectors(updates, filter) => {
                check_limit(updates.len(), self.upsert_max_batchsize, "update limit")?;
                self.check_filter(filter.as_ref())?;
                updates.iter().try_for_each(|(_, v)| self.check_vectors(v))
            }
            PointOperation::Delete(s) | PointOperation::ClearPayload(s) => self.check_selector(s),
            PointOperation::SetPayload { selector, .. }
            | PointOperation::OverwritePayload { selector, .. }
            | PointOperation::DeletePayload { selector, .. }
            | PointOperation::DeleteVectors { selector, .. } => self.check_selector(selector),
        }
    }

    fn check_selector(&self, selector: &Selector) -> Result<()> {
        match selector {
            Selector::Ids(ids) => check_limit(ids.len(), self.upsert_max_batchsize, "upsert limit"),
            Selector::Filter(f) => self.check_filter(Some(f)),
        }
    }

    fn check_vectors(&self, vectors: &NamedVectors) -> Result<()> {
        vectors.iter().try_for_each(|(name, v)| match v {
            Vector::MultiDense(rows) => self.check_multivector(name, rows.len()),
            Vector::Sparse(s) => self.check_sparse(name, s.indices.len()),
            Vector::Dense(_) => Ok(()),
        })
    }

    fn check_multivector(&self, name: &str, rows: usize) -> Result<()> {
        let max = self.multivector_config.as_ref().and_then(|m| m.get(name)?.max_vectors);
        match max {
            Some(max) if rows > max => Err(Error::BadRequest(format!(
                "Multivector '{name}' has a limit of {max} vectors, but {rows} were provided!"
            ))),
            _ => Ok(()),
        }
    }

    fn check_sparse(&self, name: &str, length: usize) -> Result<()> {
        let max = self.sparse_config.as_ref().and_then(|m| m.get(name)?.max_length);
        match max {
            Some(max) if length > max => Err(Error::BadRequest(format!(
                "Sparse vector '{name}' has a limit of {max} indices, but {length} were provided!"
            ))),
            _ => Ok(()),
        }
    }

    pub fn limits_points(&self) -> bool {
        self.max_points_count.is_some()
    }

    /// `max_points_count`, checked against the count before a write that adds points (Qdrant
    /// also checks before, so the write that crosses the limit is accepted).
    pub fn check_points_count(&self, op: &PointOperation, points: impl FnOnce() -> usize) -> Result<()> {
        let Some(max) = self.max_points_count else {
            return Ok(());
        };
        if !matches!(op, PointOperation::Upsert(..) | PointOperation::UpdateVectors(..)) {
            return Ok(());
        }
        if points() >= max {
            return Err(Error::BadRequest(format!("Max points count limit of {max} reached!")));
        }
        Ok(())
    }
}

/// Conditions of a filter, sub-filters and nested filters counted by their own conditions.
fn conditions_count(f: &Filter) -> usize {
    all_conditions(f).map(condition_count).sum()
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
    all_conditions(f).map(condition_size).max().unwrap_or(0)
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

fn all_conditions(f: &Filter) -> impl Iterator<Item = &Condition> {
    f.must
        .iter()
        .flatten()
        .chain(f.must_not.iter().flatten())
        .chain(f.should.iter().flatten())
        .chain(f.min_should.iter().flat_map(|m| m.conditions.iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(v: Value) -> StrictMode {
        StrictMode::of(Some(&v)).unwrap()
    }

    #[test]
    fn only_enabled_modes_apply() {
        assert!(StrictMode::of(Some(&serde_json::json!({"max_query_limit": 1}))).is_none());
        assert!(StrictMode::of(Some(&serde_json::json!({"enabled": false, "max_query_limit": 1}))).is_none());
        assert!(StrictMode::of(None).is_none());
    }

    #[test]
    fn limits_use_qdrant_texts() {
        let m = mode(serde_json::json!({"enabled": true, "max_query_limit": 15, "search_allow_exact": false}));
        assert!(m.check_query_limit(15).is_ok());
        let e = m.check_query_limit(30).unwrap_err().to_string();
        assert_eq!(
            e,
            "Bad request: Limit exceeded 30 > 15 for \"limit\". Help: Reduce the \"limit\" parameter to or below 15."
        );
        assert!(m
            .check_exact(true)
            .unwrap_err()
            .to_string()
            .contains("Exact search disabled!"));
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
        assert!(m.check_filter(Some(&f)).unwrap_err().to_string().contains("(5 > 4)"));
    }
}
