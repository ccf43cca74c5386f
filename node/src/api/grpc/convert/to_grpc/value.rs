//! Payload values: JSON into gRPC `Value`/`Struct`.

use std::collections::HashMap;

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::value::Kind;
use serde_json::Value;

use crate::model::Payload;

/// JSON as a gRPC value: integers that fit i64 stay integers, other numbers are doubles.
pub fn value(json: Value) -> grpc::Value {
    let kind = match json {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(grpc::ListValue {
            values: items.into_iter().map(value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(grpc::Struct { fields: payload(map) }),
    };
    grpc::Value { kind: Some(kind) }
}

/// A point's payload as the map of a `RetrievedPoint`/`ScoredPoint`.
pub fn payload(map: Payload) -> HashMap<String, grpc::Value> {
    map.into_iter().map(|(k, v)| (k, value(v))).collect()
}
