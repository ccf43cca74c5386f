//! `POST /collections/{c}/facet`: how many points have each value of a payload key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Filter;

/// Values returned when the request names no `limit` (Qdrant's default).
pub const DEFAULT_FACET_LIMIT: usize = 10;

#[derive(Debug, Clone, Deserialize)]
pub struct FacetRequest {
    pub key: String,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub filter: Option<Filter>,
    /// Counts are always exact here; accepted for compatibility.
    #[serde(default)]
    pub exact: Option<bool>,
}

/// One value and the number of points that have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacetHit {
    pub value: Value,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FacetResponse {
    pub hits: Vec<FacetHit>,
}
