//! Point write operations: the REST bodies of upsert, delete, payload and vector updates and
//! `points/batch`, and `PointOperation`, the one resolved form every layer below executes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::filter::Filter;
use super::payload::Payload;
use super::point_id::PointId;
use super::vector::{NamedVectors, Vector, VectorInput};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointStruct {
    pub id: PointId,
    #[serde(alias = "vectors")]
    pub vector: VectorInput,
    #[serde(default)]
    pub payload: Option<Payload>,
}

/// A stored point read back (with its vectors and payload), to be written to another replica.
impl From<super::query::Record> for PointStruct {
    fn from(r: super::query::Record) -> PointStruct {
        PointStruct {
            id: r.id,
            vector: VectorInput::Named(r.vector.map(VectorInput::into_named).unwrap_or_default()),
            payload: r.payload,
        }
    }
}

/// A point as a replica holds it, with its version: what transfers and repairs copy between
/// replicas, so the copy keeps the version every replica compares writes with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionedPoint {
    pub point: PointStruct,
    pub version: u64,
}

/// Some points of a replica as it holds them: live points with their versions, and the
/// versions of points it deleted (anti-entropy compares and merges these).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaPoints {
    pub points: Vec<VersionedPoint>,
    pub tombstones: Vec<(PointId, u64)>,
}

impl ReplicaPoints {
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.tombstones.is_empty()
    }

    pub fn len(&self) -> usize {
        self.points.len() + self.tombstones.len()
    }
}

/// Column form of an upsert: `{"batch": {"ids": [...], "vectors": [...], "payloads": [...]}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Batch {
    pub ids: Vec<PointId>,
    pub vectors: BatchVectors,
    #[serde(default)]
    pub payloads: Option<Vec<Option<Payload>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BatchVectors {
    Default(Vec<Vec<f32>>),
    /// One default multivector per point.
    DefaultMulti(Vec<Vec<Vec<f32>>>),
    Named(BTreeMap<String, Vec<Vector>>),
}

/// `update_mode` of an upsert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateMode {
    /// Insert new points, update existing ones.
    #[default]
    Upsert,
    /// Only insert points that do not exist yet.
    InsertOnly,
    /// Only update points that exist.
    UpdateOnly,
}

/// When an upsert may write a point. Every replica decides against its own copy of the point,
/// so replicas holding the same data end in the same state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpsertConditions {
    #[serde(default)]
    pub mode: UpdateMode,
    /// An existing point is updated only if it matches (new points are inserted regardless).
    #[serde(default)]
    pub filter: Option<Filter>,
}

/// `PUT /collections/{c}/points`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UpsertRequest {
    Points {
        points: Vec<PointStruct>,
        #[serde(default)]
        shard_key: Option<serde_json::Value>,
        #[serde(default)]
        update_filter: Option<Filter>,
        #[serde(default)]
        update_mode: Option<UpdateMode>,
    },
    Batch {
        batch: Batch,
        #[serde(default)]
        shard_key: Option<serde_json::Value>,
        #[serde(default)]
        update_filter: Option<Filter>,
        #[serde(default)]
        update_mode: Option<UpdateMode>,
    },
}

impl UpsertRequest {
    pub fn into_operation(self) -> Result<PointOperation> {
        let (points, filter, mode) = match self {
            UpsertRequest::Points {
                points,
                update_filter,
                update_mode,
                ..
            } => (points, update_filter, update_mode),
            UpsertRequest::Batch {
                batch,
                update_filter,
                update_mode,
                ..
            } => (batch.into_points()?, update_filter, update_mode),
        };
        let conditions = UpsertConditions {
            mode: mode.unwrap_or_default(),
            filter,
        };
        Ok(PointOperation::Upsert(points, conditions))
    }
}

impl Batch {
    pub fn into_points(self) -> Result<Vec<PointStruct>> {
        let n = self.ids.len();
        let mismatch = |what: &str, len: usize| Err(Error::bad_input(format!("batch has {n} ids but {len} {what}")));
        if let Some(p) = &self.payloads {
            if p.len() != n {
                return mismatch("payloads", p.len());
            }
        }
        let mut named: Vec<NamedVectors> = vec![NamedVectors::new(); n];
        match self.vectors {
            BatchVectors::Default(list) => {
                if list.len() != n {
                    return mismatch("vectors", list.len());
                }
                for (slot, v) in named.iter_mut().zip(list) {
                    slot.insert(String::new(), Vector::Dense(v));
                }
            }
            BatchVectors::DefaultMulti(list) => {
                if list.len() != n {
                    return mismatch("vectors", list.len());
                }
                for (slot, v) in named.iter_mut().zip(list) {
                    slot.insert(String::new(), Vector::MultiDense(v));
                }
            }
            BatchVectors::Named(map) => {
                for (name, list) in map {
                    if list.len() != n {
                        return mismatch(&format!("vectors named `{name}`"), list.len());
                    }
                    for (slot, v) in named.iter_mut().zip(list) {
                        slot.insert(name.clone(), v);
                    }
                }
            }
        }
        let mut payloads = self.payloads.unwrap_or_default().into_iter();
        Ok(self
            .ids
            .into_iter()
            .zip(named)
            .map(|(id, vectors)| PointStruct {
                id,
                vector: VectorInput::Named(vectors),
                payload: payloads.next().flatten(),
            })
            .collect())
    }
}

/// Which points an operation touches: `{"points": [...]}` or `{"filter": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PointsSelector {
    Ids {
        points: Vec<PointId>,
        #[serde(default, skip_serializing)]
        shard_key: Option<serde_json::Value>,
    },
    Filter {
        filter: Filter,
        #[serde(default, skip_serializing)]
        shard_key: Option<serde_json::Value>,
    },
}

impl PointsSelector {
    pub fn into_selector(self) -> Selector {
        match self {
            PointsSelector::Ids { points, .. } => Selector::Ids(points),
            PointsSelector::Filter { filter, .. } => Selector::Filter(filter),
        }
    }
}

/// `POST|PUT /collections/{c}/points/payload`.
#[derive(Debug, Clone, Deserialize)]
pub struct SetPayloadRequest {
    pub payload: Payload,
    #[serde(default)]
    pub points: Option<Vec<PointId>>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub shard_key: Option<serde_json::Value>,
}

/// `POST /collections/{c}/points/payload/delete`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeletePayloadRequest {
    pub keys: Vec<String>,
    #[serde(default)]
    pub points: Option<Vec<PointId>>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub shard_key: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PointVectors {
    pub id: PointId,
    pub vector: VectorInput,
}

/// `PUT /collections/{c}/points/vectors`.
#[derive(Debug, Clone, Deserialize)]
pub struct UpdateVectorsRequest {
    pub points: Vec<PointVectors>,
    #[serde(default)]
    pub shard_key: Option<serde_json::Value>,
    /// Only points matching it are updated.
    #[serde(default)]
    pub update_filter: Option<Filter>,
}

/// `POST /collections/{c}/points/vectors/delete`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteVectorsRequest {
    #[serde(default)]
    pub points: Option<Vec<PointId>>,
    #[serde(default)]
    pub filter: Option<Filter>,
    pub vector: Vec<String>,
    #[serde(default)]
    pub shard_key: Option<serde_json::Value>,
}

/// One entry of `POST /collections/{c}/points/batch`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchOperation {
    Upsert(UpsertRequest),
    Delete(PointsSelector),
    SetPayload(SetPayloadRequest),
    OverwritePayload(SetPayloadRequest),
    DeletePayload(DeletePayloadRequest),
    ClearPayload(PointsSelector),
    UpdateVectors(UpdateVectorsRequest),
    DeleteVectors(DeleteVectorsRequest),
}

#[derive(Debug, Clone, Deserialize)]
pub struct BatchRequest {
    pub operations: Vec<BatchOperation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Selector {
    Ids(Vec<PointId>),
    Filter(Filter),
}

fn selector(points: Option<Vec<PointId>>, filter: Option<Filter>) -> Result<Selector> {
    match (points, filter) {
        (Some(ids), None) => Ok(Selector::Ids(ids)),
        (None, Some(f)) => Ok(Selector::Filter(f)),
        (Some(_), Some(_)) => Err(Error::bad_input("either `points` or `filter` must be given, not both")),
        (None, None) => Err(Error::bad_input("either `points` or `filter` is required")),
    }
}

/// A write, resolved from any of the request forms above. Shards execute these; the cluster
/// layer forwards them to the peers that hold a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PointOperation {
    Upsert(Vec<PointStruct>, UpsertConditions),
    Delete(Selector),
    SetPayload {
        payload: Payload,
        selector: Selector,
        key: Option<String>,
    },
    OverwritePayload {
        payload: Payload,
        selector: Selector,
    },
    DeletePayload {
        keys: Vec<String>,
        selector: Selector,
    },
    ClearPayload(Selector),
    /// New vectors of existing points; with a filter, of those matching it only.
    UpdateVectors(Vec<(PointId, NamedVectors)>, Option<Filter>),
    DeleteVectors {
        selector: Selector,
        names: Vec<String>,
    },
}

impl PointOperation {
    pub fn set_payload(r: SetPayloadRequest) -> Result<Self> {
        Ok(PointOperation::SetPayload {
            selector: selector(r.points, r.filter)?,
            payload: r.payload,
            key: r.key,
        })
    }

    pub fn overwrite_payload(r: SetPayloadRequest) -> Result<Self> {
        Ok(PointOperation::OverwritePayload {
            selector: selector(r.points, r.filter)?,
            payload: r.payload,
        })
    }

    pub fn delete_payload(r: DeletePayloadRequest) -> Result<Self> {
        Ok(PointOperation::DeletePayload {
            selector: selector(r.points, r.filter)?,
            keys: r.keys,
        })
    }

    pub fn update_vectors(r: UpdateVectorsRequest) -> Self {
        PointOperation::UpdateVectors(
            r.points.into_iter().map(|p| (p.id, p.vector.into_named())).collect(),
            r.update_filter,
        )
    }

    pub fn delete_vectors(r: DeleteVectorsRequest) -> Result<Self> {
        Ok(PointOperation::DeleteVectors {
            selector: selector(r.points, r.filter)?,
            names: r.vector,
        })
    }

    pub fn from_batch(op: BatchOperation) -> Result<Self> {
        Ok(match op {
            BatchOperation::Upsert(u) => u.into_operation()?,
            BatchOperation::Delete(s) => PointOperation::Delete(s.into_selector()),
            BatchOperation::SetPayload(r) => Self::set_payload(r)?,
            BatchOperation::OverwritePayload(r) => Self::overwrite_payload(r)?,
            BatchOperation::DeletePayload(r) => Self::delete_payload(r)?,
            BatchOperation::ClearPayload(s) => PointOperation::ClearPayload(s.into_selector()),
            BatchOperation::UpdateVectors(r) => Self::update_vectors(r),
            BatchOperation::DeleteVectors(r) => Self::delete_vectors(r)?,
        })
    }

    /// The ids named explicitly (for routing to shards); `None` when a filter selects points.
    pub fn selector(&self) -> Option<&Selector> {
        match self {
            PointOperation::Upsert(..) | PointOperation::UpdateVectors(..) => None,
            PointOperation::Delete(s) | PointOperation::ClearPayload(s) => Some(s),
            PointOperation::SetPayload { selector, .. }
            | PointOperation::OverwritePayload { selector, .. }
            | PointOperation::DeletePayload { selector, .. }
            | PointOperation::DeleteVectors { selector, .. } => Some(selector),
        }
    }
}

/// `UpdateResult` of every write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateResult {
    pub operation_id: Option<u64>,
    pub status: UpdateStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    Acknowledged,
    Completed,
    WaitTimeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_form_becomes_points() {
        let r: UpsertRequest = serde_json::from_str(
            r#"{"batch": {"ids": [1, "00000000-0000-0000-0000-000000000002"], "vectors": [[1.0], [2.0]],
                "payloads": [{"a": 1}, null]}}"#,
        )
        .unwrap();
        let PointOperation::Upsert(points, conditions) = r.into_operation().unwrap() else {
            panic!("not an upsert")
        };
        assert_eq!(conditions, UpsertConditions::default());
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].payload.as_ref().unwrap()["a"], 1);
        assert!(points[1].payload.is_none());
        let bad: UpsertRequest = serde_json::from_str(r#"{"batch": {"ids": [1, 2], "vectors": [[1.0]]}}"#).unwrap();
        assert!(bad.into_operation().is_err());
        let r: UpsertRequest = serde_json::from_str(
            r#"{"points": [], "update_mode": "update_only", "update_filter": {"must": [{"has_id": [1]}]}}"#,
        )
        .unwrap();
        let PointOperation::Upsert(_, conditions) = r.into_operation().unwrap() else {
            panic!("not an upsert")
        };
        assert_eq!(conditions.mode, UpdateMode::UpdateOnly);
        assert!(conditions.filter.is_some());
    }

    #[test]
    fn batch_operations_parse() {
        let r: BatchRequest = serde_json::from_str(
            r#"{"operations": [
                {"upsert": {"points": [{"id": 1, "vector": [1.0]}]}},
                {"delete": {"points": [1]}},
                {"set_payload": {"payload": {"a": 1}, "points": [1]}},
                {"clear_payload": {"filter": {"must": []}}},
                {"delete_vectors": {"points": [1], "vector": [""]}}
            ]}"#,
        )
        .unwrap();
        let ops: Vec<_> = r
            .operations
            .into_iter()
            .map(PointOperation::from_batch)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(ops.len(), 5);
        let no_target: SetPayloadRequest = serde_json::from_str(r#"{"payload": {}}"#).unwrap();
        assert!(PointOperation::set_payload(no_target).is_err());
    }
}

/// `?ordering=`: how concurrent writes to one shard are ordered across its replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WriteOrdering {
    /// Each replica applies writes in the order they reach it.
    #[default]
    Weak,
    /// Writes pass through one replica (the Active one with the highest peer id), which applies
    /// them to every replica one at a time, so all replicas see the same order.
    Medium,
    /// As medium, through the replica with the highest peer id whatever its state: while it is
    /// unavailable the write fails instead of falling over to another replica.
    Strong,
}

impl WriteOrdering {
    pub fn parse(value: Option<&str>) -> Result<WriteOrdering> {
        match value {
            None | Some("weak") => Ok(WriteOrdering::Weak),
            Some("medium") => Ok(WriteOrdering::Medium),
            Some("strong") => Ok(WriteOrdering::Strong),
            Some(other) => Err(Error::bad_input(format!(
                "ordering: unknown value `{other}`, expected weak, medium or strong"
            ))),
        }
    }
}
