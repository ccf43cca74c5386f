//! Payload values: gRPC `Value`/`Struct` into JSON.

use std::collections::HashMap;

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::value::Kind;
use serde_json::{Map, Number, Value};

use crate::model::Payload;

/// A gRPC value as JSON; a missing kind is `null`, as is a non-finite double (JSON has none).
pub fn json(value: grpc::Value) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::IntegerValue(i)) => Value::Number(i.into()),
        Some(Kind::DoubleValue(d)) => Number::from_f64(d).map_or(Value::Null, Value::Number),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => Value::Array(list.values.into_iter().map(json).collect()),
        Some(Kind::StructValue(s)) => Value::Object(object(s.fields)),
    }
}

fn object(fields: HashMap<String, grpc::Value>) -> Map<String, Value> {
    fields.into_iter().map(|(k, v)| (k, json(v))).collect()
}

/// A point's payload.
pub fn payload(fields: HashMap<String, grpc::Value>) -> Payload {
    object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::grpc::convert::to_grpc;

    #[test]
    fn round_trips_through_json() {
        let original = serde_json::json!({
            "s": "x", "i": -3, "f": 1.5, "b": true, "n": null, "l": [1, "a", [2.5]], "o": {"k": {"z": 1}}
        });
        let Value::Object(map) = original.clone() else {
            unreachable!()
        };
        let back = payload(to_grpc::value::payload(map));
        assert_eq!(Value::Object(back), original);
        assert_eq!(
            json(grpc::Value {
                kind: Some(Kind::DoubleValue(f64::NAN))
            }),
            Value::Null
        );
    }
}
