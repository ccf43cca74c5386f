//! Points: ids, point structs, the `PointsSelector` of writes and the `with_payload` /
//! `with_vectors` selectors of reads.

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::points_selector::PointsSelectorOneOf;
use qdrant_client::qdrant::with_payload_selector::SelectorOptions as PayloadOptions;
use qdrant_client::qdrant::with_vectors_selector::SelectorOptions as VectorOptions;
use uuid::Uuid;

use super::filter::filter;
use super::value::payload;
use super::vector::vectors;
use crate::error::{Error, Result};
use crate::model::operations::{PointStruct, Selector};
use crate::model::payload::{JsonPath, PayloadSelector};
use crate::model::vector::WithVector;
use crate::model::{Filter, PointId};

/// `what` of a message that must be set.
pub fn required<T>(value: Option<T>, what: &str) -> Result<T> {
    value.ok_or_else(|| Error::bad_input(format!("{what} is required")))
}

/// A point id: a number or a UUID (a malformed UUID is `InvalidArgument`, as on REST).
pub fn point_id(id: grpc::PointId) -> Result<PointId> {
    match id.point_id_options {
        Some(PointIdOptions::Num(n)) => Ok(PointId::Num(n)),
        Some(PointIdOptions::Uuid(s)) => Uuid::parse_str(&s)
            .map(PointId::Uuid)
            .map_err(|_| Error::bad_input(format!("point id `{s}` is not a valid UUID"))),
        None => Err(Error::bad_input("point id is empty: set `num` or `uuid`")),
    }
}

pub fn point_ids(ids: Vec<grpc::PointId>) -> Result<Vec<PointId>> {
    ids.into_iter().map(point_id).collect()
}

/// A point of an upsert. An empty payload is no payload.
pub fn point_struct(p: grpc::PointStruct) -> Result<PointStruct> {
    Ok(PointStruct {
        id: point_id(required(p.id, "point id")?)?,
        vector: vectors(p.vectors)?,
        payload: (!p.payload.is_empty()).then(|| payload(p.payload)),
    })
}

pub fn point_structs(points: Vec<grpc::PointStruct>) -> Result<Vec<PointStruct>> {
    points.into_iter().map(point_struct).collect()
}

/// A `PointsSelector` as the `points`/`filter` pair of the model's request bodies (an unset
/// selector is neither, which the model rejects with REST's message).
pub fn selector_parts(s: Option<grpc::PointsSelector>) -> Result<(Option<Vec<PointId>>, Option<Filter>)> {
    match s.and_then(|s| s.points_selector_one_of) {
        None => Ok((None, None)),
        Some(PointsSelectorOneOf::Points(list)) => Ok((Some(point_ids(list.ids)?), None)),
        Some(PointsSelectorOneOf::Filter(f)) => Ok((None, Some(filter(f)?))),
    }
}

/// A `PointsSelector` that must be set (delete, clear payload).
pub fn selector(s: Option<grpc::PointsSelector>) -> Result<Selector> {
    match selector_parts(s)? {
        (Some(ids), _) => Ok(Selector::Ids(ids)),
        (None, Some(f)) => Ok(Selector::Filter(f)),
        (None, None) => Err(Error::bad_input("points selector is required: ids or a filter")),
    }
}

fn json_paths(fields: Vec<String>) -> Result<Vec<JsonPath>> {
    fields.iter().map(|f| f.parse().map_err(Error::bad_input)).collect()
}

/// `with_payload`; unset is `None` so that each call applies its own default as on REST.
pub fn with_payload(s: Option<grpc::WithPayloadSelector>) -> Result<Option<PayloadSelector>> {
    Ok(match s.and_then(|s| s.selector_options) {
        None => None,
        Some(PayloadOptions::Enable(true)) => Some(PayloadSelector::All),
        Some(PayloadOptions::Enable(false)) => Some(PayloadSelector::None),
        Some(PayloadOptions::Include(i)) => Some(PayloadSelector::Include(json_paths(i.fields)?)),
        Some(PayloadOptions::Exclude(e)) => Some(PayloadSelector::Exclude(json_paths(e.fields)?)),
    })
}

/// `with_vectors`; unset is `None` (no vectors everywhere, as on REST).
pub fn with_vectors(s: Option<grpc::WithVectorsSelector>) -> Option<WithVector> {
    match s.and_then(|s| s.selector_options)? {
        VectorOptions::Enable(b) => Some(WithVector::All(b)),
        VectorOptions::Include(names) => Some(WithVector::Names(names.names)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn ids_num_and_uuid() {
        assert_eq!(point_id(7u64.into()).unwrap(), PointId::Num(7));
        let u = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
        assert_eq!(point_id(u.into()).unwrap().to_string(), u);
        let bad = point_id("not-a-uuid".into()).unwrap_err();
        assert!(matches!(bad, Error::BadInput(_)));
        assert!(bad.to_string().contains("not-a-uuid"));
        assert!(point_id(grpc::PointId { point_id_options: None }).is_err());
    }

    #[test]
    fn point_struct_payload_and_missing_id() {
        let p = grpc::PointStruct {
            id: Some(1u64.into()),
            payload: HashMap::from([("a".to_string(), grpc::Value::from(1i64))]),
            vectors: None,
        };
        let p = point_struct(p).unwrap();
        assert_eq!(p.payload.unwrap()["a"], 1);
        assert!(point_struct(grpc::PointStruct::default()).is_err());
    }

    #[test]
    fn selectors() {
        let ids = grpc::PointsSelector {
            points_selector_one_of: Some(PointsSelectorOneOf::Points(grpc::PointsIdsList {
                ids: vec![1u64.into(), 2u64.into()],
            })),
        };
        assert_eq!(
            selector(Some(ids)).unwrap(),
            Selector::Ids(vec![PointId::Num(1), PointId::Num(2)])
        );
        assert!(selector(None).is_err());
        let include = grpc::WithPayloadSelector {
            selector_options: Some(PayloadOptions::Include(grpc::PayloadIncludeSelector {
                fields: vec!["a.b".into()],
            })),
        };
        assert!(matches!(with_payload(Some(include)).unwrap(), Some(PayloadSelector::Include(p)) if p.len() == 1));
        let bad = grpc::WithPayloadSelector {
            selector_options: Some(PayloadOptions::Exclude(grpc::PayloadExcludeSelector {
                fields: vec!["a..b".into()],
            })),
        };
        assert!(with_payload(Some(bad)).is_err());
        assert_eq!(with_payload(None).unwrap(), None);
        let names = grpc::WithVectorsSelector {
            selector_options: Some(VectorOptions::Include(grpc::VectorsSelector {
                names: vec!["img".into()],
            })),
        };
        assert_eq!(with_vectors(Some(names)), Some(WithVector::Names(vec!["img".into()])));
    }
}
