//! Writes: every point write message (and each `PointsUpdateOperation` of a batch) into the one
//! `PointOperation` REST builds, through the same model constructors, plus `ordering`.

use std::collections::HashMap;

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::points_update_operation::Operation;

use super::point::{point_id, point_structs, required, selector, selector_parts};
use super::value::payload;
use super::vector::vectors;
use crate::error::{Error, Result};
use crate::model::operations::{
    DeletePayloadRequest, DeleteVectorsRequest, PointOperation, PointVectors, SetPayloadRequest, UpdateMode,
    UpdateVectorsRequest, UpsertConditions, WriteOrdering,
};

/// `ordering`, parsed by the same function as REST's `?ordering=`.
pub fn ordering(o: Option<grpc::WriteOrdering>) -> Result<WriteOrdering> {
    let Some(o) = o else {
        return Ok(WriteOrdering::default());
    };
    let text = match grpc::WriteOrderingType::try_from(o.r#type) {
        Ok(grpc::WriteOrderingType::Weak) => "weak".to_string(),
        Ok(grpc::WriteOrderingType::Medium) => "medium".to_string(),
        Ok(grpc::WriteOrderingType::Strong) => "strong".to_string(),
        Err(_) => o.r#type.to_string(),
    };
    WriteOrdering::parse(Some(&text))
}

fn update_mode(mode: Option<i32>) -> Result<UpdateMode> {
    Ok(match mode.map(grpc::UpdateMode::try_from) {
        None | Some(Ok(grpc::UpdateMode::Upsert)) => UpdateMode::Upsert,
        Some(Ok(grpc::UpdateMode::InsertOnly)) => UpdateMode::InsertOnly,
        Some(Ok(grpc::UpdateMode::UpdateOnly)) => UpdateMode::UpdateOnly,
        Some(Err(_)) => {
            return Err(Error::bad_input(format!(
                "unknown update_mode {}",
                mode.unwrap_or_default()
            )))
        }
    })
}

pub fn upsert(
    points: Vec<grpc::PointStruct>,
    update_filter: Option<grpc::Filter>,
    mode: Option<i32>,
) -> Result<PointOperation> {
    let conditions = UpsertConditions {
        mode: update_mode(mode)?,
        filter: super::filter::optional(update_filter)?,
    };
    Ok(PointOperation::Upsert(point_structs(points)?, conditions))
}

pub fn delete(points: Option<grpc::PointsSelector>) -> Result<PointOperation> {
    selector(points).map(PointOperation::Delete)
}

pub fn clear_payload(points: Option<grpc::PointsSelector>) -> Result<PointOperation> {
    selector(points).map(PointOperation::ClearPayload)
}

fn set_payload_request(
    values: HashMap<String, grpc::Value>,
    points: Option<grpc::PointsSelector>,
    key: Option<String>,
) -> Result<SetPayloadRequest> {
    let (points, filter) = selector_parts(points)?;
    Ok(SetPayloadRequest {
        payload: payload(values),
        points,
        filter,
        key,
        shard_key: None,
    })
}

pub fn set_payload(
    values: HashMap<String, grpc::Value>,
    points: Option<grpc::PointsSelector>,
    key: Option<String>,
) -> Result<PointOperation> {
    PointOperation::set_payload(set_payload_request(values, points, key)?)
}

/// Overwrite replaces the whole payload; `key` (overwrite one nested object) is not served.
pub fn overwrite_payload(
    values: HashMap<String, grpc::Value>,
    points: Option<grpc::PointsSelector>,
    key: Option<String>,
) -> Result<PointOperation> {
    if key.is_some() {
        return Err(Error::bad_input(
            "`key` of overwrite_payload is not supported by this node",
        ));
    }
    PointOperation::overwrite_payload(set_payload_request(values, points, None)?)
}

pub fn delete_payload(keys: Vec<String>, points: Option<grpc::PointsSelector>) -> Result<PointOperation> {
    let (points, filter) = selector_parts(points)?;
    PointOperation::delete_payload(DeletePayloadRequest {
        keys,
        points,
        filter,
        shard_key: None,
    })
}

pub fn update_vectors(points: Vec<grpc::PointVectors>, update_filter: Option<grpc::Filter>) -> Result<PointOperation> {
    let points = points
        .into_iter()
        .map(|p| {
            Ok(PointVectors {
                id: point_id(required(p.id, "point id")?)?,
                vector: vectors(p.vectors)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(PointOperation::update_vectors(UpdateVectorsRequest {
        points,
        shard_key: None,
        update_filter: super::filter::optional(update_filter)?,
    }))
}

pub fn delete_vectors(
    points: Option<grpc::PointsSelector>,
    names: Option<grpc::VectorsSelector>,
) -> Result<PointOperation> {
    let (points, filter) = selector_parts(points)?;
    PointOperation::delete_vectors(DeleteVectorsRequest {
        points,
        filter,
        vector: names.map(|n| n.names).unwrap_or_default(),
        shard_key: None,
    })
}

/// One operation of `update_batch` (the deprecated delete / clear forms included).
#[allow(deprecated)]
fn batch_operation(op: grpc::PointsUpdateOperation) -> Result<PointOperation> {
    match required(op.operation, "update operation")? {
        Operation::Upsert(u) => upsert(u.points, u.update_filter, u.update_mode),
        Operation::DeleteDeprecated(s) => delete(Some(s)),
        Operation::DeletePoints(d) => delete(d.points),
        Operation::SetPayload(s) => set_payload(s.payload, s.points_selector, s.key),
        Operation::OverwritePayload(o) => overwrite_payload(o.payload, o.points_selector, o.key),
        Operation::DeletePayload(d) => delete_payload(d.keys, d.points_selector),
        Operation::ClearPayloadDeprecated(s) => clear_payload(Some(s)),
        Operation::ClearPayload(c) => clear_payload(c.points),
        Operation::UpdateVectors(u) => update_vectors(u.points, u.update_filter),
        Operation::DeleteVectors(d) => delete_vectors(d.points_selector, d.vectors),
    }
}

/// The operations of `update_batch`; Qdrant's gRPC API requires at least one.
pub fn batch_operations(ops: Vec<grpc::PointsUpdateOperation>) -> Result<Vec<PointOperation>> {
    if ops.is_empty() {
        return Err(Error::validation("operations: must contain at least 1 operation"));
    }
    ops.into_iter().map(batch_operation).collect()
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use qdrant_client::qdrant::points_selector::PointsSelectorOneOf;
    use qdrant_client::qdrant::points_update_operation as ops;

    use super::*;
    use crate::model::operations::Selector;
    use crate::model::PointId;

    fn ids(ids: &[u64]) -> Option<grpc::PointsSelector> {
        Some(grpc::PointsSelector {
            points_selector_one_of: Some(PointsSelectorOneOf::Points(grpc::PointsIdsList {
                ids: ids.iter().map(|&i| i.into()).collect(),
            })),
        })
    }

    #[test]
    fn orderings() {
        assert_eq!(ordering(None).unwrap(), WriteOrdering::Weak);
        let of = |t: i32| ordering(Some(grpc::WriteOrdering { r#type: t }));
        assert_eq!(
            of(grpc::WriteOrderingType::Medium as i32).unwrap(),
            WriteOrdering::Medium
        );
        assert_eq!(
            of(grpc::WriteOrderingType::Strong as i32).unwrap(),
            WriteOrdering::Strong
        );
        assert!(of(7).is_err());
    }

    #[test]
    fn payload_ops_need_a_selector_and_keep_key() {
        let op = set_payload(HashMap::new(), ids(&[1]), Some("a.b".into())).unwrap();
        assert!(matches!(op, PointOperation::SetPayload { key: Some(ref k), .. } if k == "a.b"));
        assert!(set_payload(HashMap::new(), None, None).is_err());
        assert!(overwrite_payload(HashMap::new(), ids(&[1]), Some("k".into())).is_err());
        assert_eq!(
            clear_payload(ids(&[2])).unwrap(),
            PointOperation::ClearPayload(Selector::Ids(vec![PointId::Num(2)]))
        );
    }

    #[test]
    fn batch_covers_every_variant() {
        let all = vec![
            Operation::Upsert(ops::PointStructList::default()),
            Operation::DeleteDeprecated(ids(&[1]).unwrap_or_default()),
            Operation::DeletePoints(ops::DeletePoints {
                points: ids(&[1]),
                shard_key_selector: None,
            }),
            Operation::SetPayload(ops::SetPayload {
                points_selector: ids(&[1]),
                ..Default::default()
            }),
            Operation::OverwritePayload(ops::OverwritePayload {
                points_selector: ids(&[1]),
                ..Default::default()
            }),
            Operation::DeletePayload(ops::DeletePayload {
                keys: vec!["a".into()],
                points_selector: ids(&[1]),
                shard_key_selector: None,
            }),
            Operation::ClearPayloadDeprecated(ids(&[1]).unwrap_or_default()),
            Operation::ClearPayload(ops::ClearPayload {
                points: ids(&[1]),
                shard_key_selector: None,
            }),
            Operation::UpdateVectors(ops::UpdateVectors::default()),
            Operation::DeleteVectors(ops::DeleteVectors {
                points_selector: ids(&[1]),
                vectors: Some(grpc::VectorsSelector { names: vec!["".into()] }),
                shard_key_selector: None,
            }),
        ];
        for op in all {
            let msg = grpc::PointsUpdateOperation { operation: Some(op) };
            batch_operation(msg.clone()).unwrap_or_else(|e| panic!("{msg:?}: {e}"));
        }
        assert!(batch_operation(grpc::PointsUpdateOperation { operation: None }).is_err());
        assert!(matches!(batch_operations(vec![]), Err(Error::Validation(_))));
        let conditional = Operation::Upsert(ops::PointStructList {
            update_filter: Some(grpc::Filter::default()),
            update_mode: Some(grpc::UpdateMode::InsertOnly as i32),
            ..Default::default()
        });
        let op = batch_operation(grpc::PointsUpdateOperation {
            operation: Some(conditional),
        })
        .unwrap();
        assert!(matches!(
            op,
            PointOperation::Upsert(
                _,
                UpsertConditions {
                    mode: UpdateMode::InsertOnly,
                    filter: Some(_)
                }
            )
        ));
    }
}
