//! The checks of the universal query (`verification/query.rs`): each prefetch in full first,
//! then the top level's full-scan guard (only when it has no prefetch: re-scoring is allowed),
//! its formula, `group_by`, limit, filter and parameters. Facts: docs/strict-mode-facts.md §4.

use super::unindexed::{all_conditions, kind_debug_name, supports_match};
use super::{strict, Strict};
use crate::collection::prefetch::DEFAULT_LIMIT;
use crate::error::Result;
use crate::model::filter::{Condition, Filter};
use crate::model::groups::{GroupParams, DEFAULT_GROUPS, DEFAULT_GROUP_SIZE};
use crate::model::payload::JsonPath;
use crate::model::query::{Prefetch, QueryInput, QueryRequest, RecommendRequest, SearchRequest};

/// Whether a query searches by vector (nearest, recommend, discover, context, feedback), as
/// opposed to fusing, ordering, sampling or scoring by formula.
fn is_vector_query(q: &QueryInput) -> bool {
    matches!(
        q,
        QueryInput::Nearest { .. }
            | QueryInput::Recommend { .. }
            | QueryInput::Discover { .. }
            | QueryInput::Context { .. }
            | QueryInput::RelevanceFeedback { .. }
            | QueryInput::Raw(_)
    )
}

/// The payload key a condition is about (Qdrant's `targeted_key`).
fn targeted_key(c: &Condition) -> Option<JsonPath> {
    match c {
        Condition::Field(f) => Some(f.key.clone()),
        Condition::IsEmpty(p) | Condition::IsNull(p) => Some(p.key.clone()),
        Condition::Nested(n) => Some(n.key.array_key()),
        Condition::Filter(f) => all_conditions(f).find_map(targeted_key),
        Condition::HasId(_) | Condition::HasVector(_) => None,
    }
}

/// The size a grouped request asks for: groups × points per group (defaults 10 × 3).
fn group_limit(g: &GroupParams) -> usize {
    g.limit
        .unwrap_or(DEFAULT_GROUPS)
        .saturating_mul(g.group_size.unwrap_or(DEFAULT_GROUP_SIZE))
}

impl Strict {
    /// `points/query` (and each query of a batch).
    pub fn check_query(&self, r: &QueryRequest) -> Result<()> {
        for p in &r.prefetch {
            self.check_prefetch(p)?;
        }
        if let Some(q) = &r.query {
            if r.prefetch.is_empty() {
                self.check_full_scan(q, r.using.as_deref().unwrap_or_default(), r.filter.as_ref())?;
            }
            self.check_formula(q)?;
        }
        self.check_query_limit(r.limit.unwrap_or(DEFAULT_LIMIT))?;
        self.check_read_filter(r.filter.as_ref())?;
        self.check_params(r.params.as_ref())
    }

    fn check_prefetch(&self, p: &Prefetch) -> Result<()> {
        for inner in &p.prefetch {
            self.check_prefetch(inner)?;
        }
        if let Some(q) = &p.query {
            self.check_full_scan(q, p.using.as_deref().unwrap_or_default(), p.filter.as_ref())?;
            self.check_formula(q)?;
        }
        self.check_query_limit(p.limit.unwrap_or(DEFAULT_LIMIT))?;
        self.check_read_filter(p.filter.as_ref())?;
        self.check_params(p.params.as_ref())
    }

    /// `points/query/groups`: prefetches are not visited (as in Qdrant).
    pub fn check_query_groups(&self, r: &QueryRequest, g: &GroupParams) -> Result<()> {
        if let Some(q) = &r.query {
            if r.prefetch.is_empty() {
                self.check_full_scan(q, r.using.as_deref().unwrap_or_default(), r.filter.as_ref())?;
            }
            self.check_formula(q)?;
        }
        self.check_group_by(&g.group_by)?;
        self.check_query_limit(group_limit(g))?;
        self.check_read_filter(r.filter.as_ref())?;
        self.check_params(r.params.as_ref())
    }

    /// `points/search/groups`.
    pub fn check_search_groups(&self, r: &SearchRequest, g: &GroupParams) -> Result<()> {
        self.check_group_by(&g.group_by)?;
        self.check_search(group_limit(g), r.filter.as_ref(), r.params.as_ref())
    }

    /// `points/recommend/groups`: no `group_by` check (as in Qdrant).
    pub fn check_recommend_groups(&self, r: &RecommendRequest, g: &GroupParams) -> Result<()> {
        self.check_search(group_limit(g), r.filter.as_ref(), r.params.as_ref())
    }

    /// With `search_allow_exact: false`, a vector search on a dense vector without a global HNSW
    /// (`m = 0`) is refused, unless its filter targets a tenant index and the vector has a
    /// per-tenant graph (`payload_m > 0`). Sparse vectors are always indexed.
    fn check_full_scan(&self, q: &QueryInput, using: &str, filter: Option<&Filter>) -> Result<()> {
        if self.mode.search_allow_exact != Some(false) || !is_vector_query(q) || self.config.is_sparse(using) {
            return Ok(());
        }
        let hnsw = self.config.hnsw_for(using);
        if hnsw.m > 0 {
            return Ok(());
        }
        let label = if using.is_empty() {
            String::new()
        } else {
            format!(" on '{using}'")
        };
        let tenant_filter = filter.is_some_and(|f| {
            all_conditions(f)
                .filter_map(targeted_key)
                .filter_map(|key| self.indexes.get(&key))
                .any(|schema| schema.is_tenant())
        });
        if !tenant_filter {
            return Err(strict(
                format!("Request is forbidden{label} because global vector indexing is disabled (hnsw_config.m = 0)"),
                "Use tenant-specific filter, enable global vector indexing or enable strict mode `search_allow_exact` option",
            ));
        }
        if hnsw.payload_m.unwrap_or(hnsw.m) == 0 {
            return Err(strict(
                format!(
                    "Request is forbidden{label} because vector indexing is disabled (hnsw_config.m = 0 and hnsw_config.payload_m = 0)"
                ),
                "Enable vector indexing, use a prefetch query with indexed vectors or enable strict mode `search_allow_exact` option",
            ));
        }
        Ok(())
    }

    /// With `unindexed_filtering_retrieve: false`, the payload keys a formula reads need indexes.
    fn check_formula(&self, q: &QueryInput) -> Result<()> {
        let QueryInput::Formula(f) = q else { return Ok(()) };
        if self.mode.unindexed_filtering_retrieve != Some(false) {
            return Ok(());
        }
        match self.indexes.first_unindexed_in_formula(&f.formula) {
            Some(u) => Err(strict(
                format!(
                    "Index required but not found for \"{}\" of one of the following types: [{}]",
                    u.key,
                    u.types()
                ),
                "Create an index for this key or use a different formula expression.",
            )),
            None => Ok(()),
        }
    }

    /// With `unindexed_filtering_retrieve: false`, `group_by` needs an index that serves `match`.
    fn check_group_by(&self, group_by: &str) -> Result<()> {
        if self.mode.unindexed_filtering_retrieve != Some(false) {
            return Ok(());
        }
        // A key that does not parse is refused when the request runs.
        let Ok(key) = group_by.parse::<JsonPath>() else {
            return Ok(());
        };
        const HELP: &str = "Create an index supporting `match` for this key.";
        match self.indexes.get(&key) {
            Some(schema) if supports_match(schema) => Ok(()),
            Some(schema) => Err(strict(
                format!(
                    "Index of type \"{}\" found for \"{key}\"",
                    kind_debug_name(schema.kind())
                ),
                HELP,
            )),
            None => Err(strict(format!("Index required but not found for \"{key}\""), HELP)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{strict_with, test_config};
    use super::*;
    use serde_json::json;

    fn query(v: serde_json::Value) -> QueryRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn full_scan_needs_an_index_or_a_tenant_filter() {
        let create: crate::model::collection::CreateCollection = serde_json::from_value(json!({
            "vectors": {"a": {"size": 2, "distance": "Dot", "hnsw_config": {"m": 0, "payload_m": 0}},
                        "b": {"size": 2, "distance": "Dot", "hnsw_config": {"m": 0, "payload_m": 16}},
                        "c": {"size": 2, "distance": "Dot"}},
            "sparse_vectors": {"s": {}}
        }))
        .unwrap();
        let config = create.into_config(&crate::settings::Settings::default(), 1).unwrap();
        let s = strict_with(
            json!({"enabled": true, "search_allow_exact": false}),
            json!({"tenant": {"type": "keyword", "is_tenant": true}, "city": "keyword"}),
            Some(config),
        );
        let tenant = json!({"must": [{"key": "tenant", "match": {"value": "t"}}]});
        let err = |q| s.check_query(&query(q)).unwrap_err().to_string();
        assert!(s
            .check_query(&query(json!({"query": [1.0, 0.0], "using": "c"})))
            .is_ok());
        assert!(s
            .check_query(&query(
                json!({"query": {"indices": [1], "values": [1.0]}, "using": "s"})
            ))
            .is_ok());
        assert!(err(json!({"query": [1.0, 0.0], "using": "a"})).contains("forbidden on 'a' because global"));
        assert!(err(json!({"query": [1.0, 0.0], "using": "a", "filter": tenant})).contains("payload_m = 0"));
        assert!(s
            .check_query(&query(json!({"query": [1.0, 0.0], "using": "b", "filter": tenant})))
            .is_ok());
        // re-scoring prefetched points is no full scan; a prefetch searching is
        assert!(s
            .check_query(&query(
                json!({"prefetch": {"query": [1.0, 0.0], "using": "c"}, "query": [1.0, 0.0], "using": "a"})
            ))
            .is_ok());
        assert!(
            err(json!({"prefetch": {"query": [1.0, 0.0], "using": "a"}, "query": {"fusion": "rrf"}}))
                .contains("on 'a'")
        );
        // only vector queries
        assert!(s
            .check_query(&query(json!({"query": {"sample": "random"}, "using": "a"})))
            .is_ok());
    }

    #[test]
    fn groups_check_group_by_and_their_size() {
        let s = strict_with(
            json!({"enabled": true, "unindexed_filtering_retrieve": false, "max_query_limit": 15}),
            json!({"f": "float", "k": "keyword"}),
            Some(test_config()),
        );
        let g = |key: &str, limit, size| GroupParams {
            group_by: key.to_string(),
            group_size: size,
            limit,
            with_lookup: None,
        };
        let q = query(json!({"query": [1.0, 0.0, 0.0, 0.0]}));
        assert!(s.check_query_groups(&q, &g("k", Some(5), Some(3))).is_ok());
        assert!(s
            .check_query_groups(&q, &g("k", None, None))
            .unwrap_err()
            .to_string()
            .contains("30 > 15"));
        assert_eq!(
            s.check_query_groups(&q, &g("f", Some(1), Some(1))).unwrap_err().to_string(),
            "Bad request: Index of type \"Float\" found for \"f\". Help: Create an index supporting `match` for this key."
        );
        assert!(s
            .check_query_groups(&q, &g("x", Some(1), Some(1)))
            .unwrap_err()
            .to_string()
            .contains("Index required but not found for \"x\". Help"));
    }
}
