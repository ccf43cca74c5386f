//! Point results: records, scored points, update results and counts as response messages.
//!
//! Vectors are returned in the `vector` oneof of `VectorOutput` (dense or sparse), which the
//! current clients read first (Python `qdrant-client` 1.20 `_convert_vector`, Rust
//! `VectorOutput::into_vector`); the deprecated `data`/`indices` fields are left empty so that
//! vectors are not sent twice.

use std::collections::HashMap;

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::vector_output::Vector as VectorKind;
use qdrant_client::qdrant::vectors_output::VectorsOptions;

use super::value::payload;
use crate::model::facet::FacetHit;
use crate::model::groups::{GroupId, GroupsResult};
use crate::model::matrix::Matrix;
use crate::model::operations::{UpdateResult, UpdateStatus};
use crate::model::query::{Record, ScoredPoint};
use crate::model::vector::{Vector, VectorInput};
use crate::model::PointId;

pub fn point_id(id: PointId) -> grpc::PointId {
    let options = match id {
        PointId::Num(n) => PointIdOptions::Num(n),
        PointId::Uuid(u) => PointIdOptions::Uuid(u.hyphenated().to_string()),
    };
    grpc::PointId {
        point_id_options: Some(options),
    }
}

fn vector_output(v: Vector) -> grpc::VectorOutput {
    let kind = match v {
        Vector::Dense(data) => VectorKind::Dense(grpc::DenseVector { data }),
        Vector::Sparse(s) => VectorKind::Sparse(grpc::SparseVector {
            values: s.values,
            indices: s.indices,
        }),
        Vector::MultiDense(rows) => VectorKind::MultiDense(grpc::MultiDenseVector {
            vectors: rows.into_iter().map(|data| grpc::DenseVector { data }).collect(),
        }),
    };
    grpc::VectorOutput {
        vector: Some(kind),
        ..Default::default()
    }
}

/// A point's vectors: the unnamed form when it has only the default dense vector (as REST).
pub fn vectors_output(v: VectorInput) -> grpc::VectorsOutput {
    let options = match v {
        VectorInput::Default(data) => VectorsOptions::Vector(vector_output(Vector::Dense(data))),
        VectorInput::DefaultMulti(rows) => VectorsOptions::Vector(vector_output(Vector::MultiDense(rows))),
        VectorInput::Named(map) => VectorsOptions::Vectors(grpc::NamedVectorsOutput {
            vectors: map.into_iter().map(|(name, v)| (name, vector_output(v))).collect(),
        }),
    };
    grpc::VectorsOutput {
        vectors_options: Some(options),
    }
}

fn payload_map(p: Option<crate::model::Payload>) -> HashMap<String, grpc::Value> {
    p.map(payload).unwrap_or_default()
}

pub fn record(r: Record) -> grpc::RetrievedPoint {
    grpc::RetrievedPoint {
        id: Some(point_id(r.id)),
        payload: payload_map(r.payload),
        vectors: r.vector.map(vectors_output),
        shard_key: None,
        order_value: r.order_value.as_ref().and_then(order_value),
    }
}

/// An `order_value` (a JSON number) as gRPC's integer-or-float.
fn order_value(v: &serde_json::Value) -> Option<grpc::OrderValue> {
    use grpc::order_value::Variant;
    let variant = match v.as_i64() {
        Some(i) => Variant::Int(i),
        None => Variant::Float(v.as_f64()?),
    };
    Some(grpc::OrderValue { variant: Some(variant) })
}

pub fn records(list: Vec<Record>) -> Vec<grpc::RetrievedPoint> {
    list.into_iter().map(record).collect()
}

pub fn scored_point(p: ScoredPoint) -> grpc::ScoredPoint {
    grpc::ScoredPoint {
        id: Some(point_id(p.id)),
        payload: payload_map(p.payload),
        score: p.score,
        version: p.version,
        vectors: p.vector.map(vectors_output),
        shard_key: None,
        order_value: p.order_value.as_ref().and_then(order_value),
    }
}

pub fn scored_points(list: Vec<ScoredPoint>) -> Vec<grpc::ScoredPoint> {
    list.into_iter().map(scored_point).collect()
}

/// One result of a batch of searches.
pub fn batch_result(list: Vec<ScoredPoint>) -> grpc::BatchResult {
    grpc::BatchResult {
        result: scored_points(list),
    }
}

pub fn update_result(r: UpdateResult) -> grpc::UpdateResult {
    let status = match r.status {
        UpdateStatus::Acknowledged => grpc::UpdateStatus::Acknowledged,
        UpdateStatus::Completed => grpc::UpdateStatus::Completed,
        UpdateStatus::WaitTimeout => grpc::UpdateStatus::WaitTimeout,
    };
    grpc::UpdateResult {
        operation_id: r.operation_id,
        status: status as i32,
    }
}

pub fn count_result(count: usize) -> grpc::CountResult {
    grpc::CountResult { count: count as u64 }
}

/// A facet count; values are strings, integers or booleans by construction.
pub fn facet_hit(h: FacetHit) -> Option<grpc::FacetHit> {
    use grpc::facet_value::Variant;
    let variant = match h.value {
        serde_json::Value::String(s) => Variant::StringValue(s),
        serde_json::Value::Bool(b) => Variant::BoolValue(b),
        v => Variant::IntegerValue(v.as_i64()?),
    };
    Some(grpc::FacetHit {
        value: Some(grpc::FacetValue { variant: Some(variant) }),
        count: h.count as u64,
    })
}

pub fn matrix_pairs(m: Matrix) -> grpc::SearchMatrixPairs {
    grpc::SearchMatrixPairs {
        pairs: m
            .pairs()
            .pairs
            .into_iter()
            .map(|p| grpc::SearchMatrixPair {
                a: Some(point_id(p.a)),
                b: Some(point_id(p.b)),
                score: p.score,
            })
            .collect(),
    }
}

pub fn matrix_offsets(m: Matrix) -> grpc::SearchMatrixOffsets {
    let o = m.offsets();
    grpc::SearchMatrixOffsets {
        offsets_row: o.offsets_row,
        offsets_col: o.offsets_col,
        scores: o.scores,
        ids: o.ids.into_iter().map(point_id).collect(),
    }
}

fn group_id(id: GroupId) -> grpc::GroupId {
    use grpc::group_id::Kind;
    grpc::GroupId {
        kind: Some(match id {
            GroupId::Unsigned(n) => Kind::UnsignedValue(n),
            GroupId::Integer(n) => Kind::IntegerValue(n),
            GroupId::String(s) => Kind::StringValue(s),
        }),
    }
}

pub fn groups_result(r: GroupsResult) -> grpc::GroupsResult {
    grpc::GroupsResult {
        groups: r
            .groups
            .into_iter()
            .map(|g| grpc::PointGroup {
                id: Some(group_id(g.id)),
                hits: scored_points(g.hits),
                lookup: g.lookup.map(record),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::vector::SparseVector;

    #[test]
    fn vectors_default_and_named() {
        let out = vectors_output(VectorInput::Default(vec![1.0, 2.0]));
        let Some(VectorsOptions::Vector(v)) = out.vectors_options else {
            panic!("expected the unnamed form")
        };
        assert_eq!(
            v.vector,
            Some(VectorKind::Dense(grpc::DenseVector { data: vec![1.0, 2.0] }))
        );
        let named = VectorInput::Named(BTreeMap::from([
            ("d".to_string(), Vector::Dense(vec![0.5])),
            (
                "s".to_string(),
                Vector::Sparse(SparseVector {
                    indices: vec![3],
                    values: vec![0.25],
                }),
            ),
        ]));
        let Some(VectorsOptions::Vectors(map)) = vectors_output(named).vectors_options else {
            panic!("expected named vectors")
        };
        assert_eq!(
            map.vectors["s"].vector,
            Some(VectorKind::Sparse(grpc::SparseVector {
                values: vec![0.25],
                indices: vec![3]
            }))
        );
        // What the Rust client reads back.
        assert_eq!(
            map.vectors["d"].clone().into_vector(),
            grpc::vector_output::Vector::Dense(grpc::DenseVector { data: vec![0.5] })
        );
    }

    #[test]
    fn ids_statuses_and_points() {
        let u = uuid::Uuid::from_u128(0xa1a2a3a4_b1b2_c1c2_d1d2_d3d4d5d6d7d8);
        assert_eq!(
            point_id(PointId::Uuid(u)).point_id_options,
            Some(PointIdOptions::Uuid("a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8".into()))
        );
        let r = update_result(UpdateResult {
            operation_id: Some(4),
            status: UpdateStatus::Completed,
        });
        assert_eq!(
            (r.operation_id, r.status),
            (Some(4), grpc::UpdateStatus::Completed as i32)
        );
        let p = scored_point(ScoredPoint {
            id: PointId::Num(1),
            version: 3,
            score: 0.5,
            payload: None,
            vector: None,
            shard_key: None,
            order_value: None,
        });
        assert!(p.payload.is_empty() && p.vectors.is_none());
        assert_eq!((p.score, p.version), (0.5, 3));
    }
}
