//! Grouped search (`points/{query,search,recommend}/groups`): the grouping parameters added to a
//! plain request, and the grouped result.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::payload::PayloadSelector;
use super::query::{Record, ScoredPoint};
use super::vector::WithVector;
use super::PointId;

/// Points per group when the request names none (Qdrant's default).
pub const DEFAULT_GROUP_SIZE: usize = 3;
/// Groups when the request names none (Qdrant's default).
pub const DEFAULT_GROUPS: usize = 10;

/// What turns a request into a grouped one.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupParams {
    /// Payload key whose (string or integer) values name the groups.
    pub group_by: String,
    #[serde(default)]
    pub group_size: Option<usize>,
    /// Number of groups.
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub with_lookup: Option<WithLookupInterface>,
}

/// `with_lookup`: a collection name, or the collection and what to fetch from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum WithLookupInterface {
    Collection(String),
    WithLookup(WithLookup),
}

#[derive(Debug, Clone, Deserialize)]
pub struct WithLookup {
    pub collection: String,
    #[serde(default)]
    pub with_payload: Option<PayloadSelector>,
    #[serde(default, alias = "with_vector")]
    pub with_vectors: Option<WithVector>,
}

impl WithLookupInterface {
    /// The lookup collection, and what to fetch (payload by default, no vectors).
    pub fn resolve(self) -> (String, PayloadSelector, WithVector) {
        match self {
            WithLookupInterface::Collection(c) => (c, PayloadSelector::All, WithVector::All(false)),
            WithLookupInterface::WithLookup(l) => (
                l.collection,
                l.with_payload.unwrap_or(PayloadSelector::All),
                l.with_vectors.unwrap_or(WithVector::All(false)),
            ),
        }
    }
}

/// A plain request (`T`) and its grouping, read from the same JSON object.
#[derive(Debug, Clone)]
pub struct Grouped<T> {
    pub request: T,
    pub groups: GroupParams,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Grouped<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let groups = GroupParams::deserialize(&value).map_err(serde::de::Error::custom)?;
        let request = T::deserialize(value).map_err(serde::de::Error::custom)?;
        Ok(Grouped { request, groups })
    }
}

/// A group's name: a payload value that is a string or an integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GroupId {
    Unsigned(u64),
    Integer(i64),
    String(String),
}

impl GroupId {
    /// The group a payload value names, if it can name one.
    pub fn from_value(v: &Value) -> Option<GroupId> {
        match v {
            Value::String(s) => Some(GroupId::String(s.clone())),
            Value::Number(n) => n
                .as_u64()
                .map(GroupId::Unsigned)
                .or_else(|| n.as_i64().map(GroupId::Integer)),
            _ => None,
        }
    }

    /// The point id of the same name in a lookup collection.
    pub fn as_point_id(&self) -> Option<PointId> {
        match self {
            GroupId::Unsigned(n) => Some(PointId::Num(*n)),
            GroupId::Integer(_) => None,
            GroupId::String(s) => s.parse::<uuid::Uuid>().ok().map(PointId::Uuid),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PointGroup {
    pub hits: Vec<ScoredPoint>,
    pub id: GroupId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<Record>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupsResult {
    pub groups: Vec<PointGroup>,
}
