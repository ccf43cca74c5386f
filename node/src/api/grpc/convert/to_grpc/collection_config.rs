//! The collection settings the model keeps as Qdrant's REST JSON (quantization, strict mode,
//! sparse index and modifier, multivector, datatype) back into their gRPC messages: the inverse
//! of `from_grpc::collection_config`. What REST stored unchecked and has no gRPC form is left out
//! rather than failing the whole `get`.

use std::collections::HashMap;

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::binary_quantization_query_encoding::Variant as QueryEncoding;
use qdrant_client::qdrant::quantization_config::Quantization;
use serde_json::{Map, Value};

use crate::api::grpc::convert::from_grpc::collection_config::{
    enum_value, BINARY_ENCODINGS, COMPARATORS, COMPRESSIONS, DATATYPES, MEMORY, MODIFIERS, QUERY_ENCODINGS, TURBO_BITS,
};
use crate::model::collection::SparseVectorParams;

/// Typed reads of an optional JSON object's fields.
struct Fields<'a>(Option<&'a Map<String, Value>>);

impl<'a> Fields<'a> {
    fn of(value: &'a Value) -> Self {
        Fields(value.as_object())
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.and_then(|m| m.get(key))
    }

    fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    fn u32(&self, key: &str) -> Option<u32> {
        self.u64(key).and_then(|n| u32::try_from(n).ok())
    }

    fn f32(&self, key: &str) -> Option<f32> {
        self.get(key).and_then(Value::as_f64).map(|f| f as f32)
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The wire value of a REST enum name, `None` when absent or unknown.
    fn enum_of<E: Copy + Into<i32>>(&self, key: &str, table: &[(E, &'static str)]) -> Option<i32> {
        self.str(key).and_then(|name| enum_value(table, name))
    }
}

/// `"float32"` etc. as the gRPC `Datatype`.
pub fn datatype(name: Option<&str>) -> Option<i32> {
    name.and_then(|n| enum_value(DATATYPES, n))
}

/// `{"comparator": "max_sim"}` as `MultiVectorConfig`.
pub fn multivector(config: &Value) -> Option<grpc::MultiVectorConfig> {
    Fields::of(config)
        .enum_of("comparator", COMPARATORS)
        .map(|comparator| grpc::MultiVectorConfig { comparator })
}

/// `{"scalar": {...}}`, `{"product": {...}}`, `{"binary": {...}}` or `{"turbo": {...}}`.
#[allow(deprecated)] // `always_ram` is deprecated in favour of `memory` but still reported.
pub fn quantization(config: &Value) -> Option<grpc::QuantizationConfig> {
    let (method, params) = config.as_object().filter(|m| m.len() == 1)?.iter().next()?;
    let p = Fields::of(params);
    let memory = p.enum_of("memory", MEMORY);
    let quantization = match method.as_str() {
        "scalar" if p.str("type") == Some("int8") => Quantization::Scalar(grpc::ScalarQuantization {
            r#type: grpc::QuantizationType::Int8 as i32,
            quantile: p.f32("quantile"),
            always_ram: p.bool("always_ram"),
            memory,
        }),
        "product" => Quantization::Product(grpc::ProductQuantization {
            compression: p.enum_of("compression", COMPRESSIONS)?,
            always_ram: p.bool("always_ram"),
            memory,
        }),
        "binary" => Quantization::Binary(grpc::BinaryQuantization {
            always_ram: p.bool("always_ram"),
            encoding: p.enum_of("encoding", BINARY_ENCODINGS),
            query_encoding: p.enum_of("query_encoding", QUERY_ENCODINGS).map(|s| {
                grpc::BinaryQuantizationQueryEncoding {
                    variant: Some(QueryEncoding::Setting(s)),
                }
            }),
            memory,
        }),
        "turbo" => Quantization::Turboquant(grpc::TurboQuantization {
            always_ram: p.bool("always_ram"),
            bits: p.enum_of("bits", TURBO_BITS),
            memory,
        }),
        _ => return None,
    };
    Some(grpc::QuantizationConfig {
        quantization: Some(quantization),
    })
}

/// Strict mode from its REST shape (see `from_grpc::collection_config::strict_mode`).
#[allow(deprecated)] // `max_resident_memory_percent` is deprecated but still part of the config.
pub fn strict_mode(config: &Value) -> Option<grpc::StrictModeConfig> {
    config.as_object()?;
    let s = Fields::of(config);
    let per_vector = |key: &str, limit: &str| -> HashMap<String, Option<u64>> {
        s.get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(name, v)| (name.clone(), Fields::of(v).u64(limit)))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(grpc::StrictModeConfig {
        enabled: s.bool("enabled"),
        max_query_limit: s.u32("max_query_limit"),
        max_timeout: s.u32("max_timeout"),
        unindexed_filtering_retrieve: s.bool("unindexed_filtering_retrieve"),
        unindexed_filtering_update: s.bool("unindexed_filtering_update"),
        search_max_hnsw_ef: s.u32("search_max_hnsw_ef"),
        search_allow_exact: s.bool("search_allow_exact"),
        search_max_oversampling: s.f32("search_max_oversampling"),
        upsert_max_batchsize: s.u64("upsert_max_batchsize"),
        search_max_batchsize: s.u64("search_max_batchsize"),
        max_collection_vector_size_bytes: s.u64("max_collection_vector_size_bytes"),
        read_rate_limit: s.u32("read_rate_limit"),
        write_rate_limit: s.u32("write_rate_limit"),
        max_collection_payload_size_bytes: s.u64("max_collection_payload_size_bytes"),
        filter_max_conditions: s.u64("filter_max_conditions"),
        condition_max_size: s.u64("condition_max_size"),
        multivector_config: s.get("multivector_config").map(|_| grpc::StrictModeMultivectorConfig {
            multivector_config: per_vector("multivector_config", "max_vectors")
                .into_iter()
                .map(|(name, max_vectors)| (name, grpc::StrictModeMultivector { max_vectors }))
                .collect(),
        }),
        sparse_config: s.get("sparse_config").map(|_| grpc::StrictModeSparseConfig {
            sparse_config: per_vector("sparse_config", "max_length")
                .into_iter()
                .map(|(name, max_length)| (name, grpc::StrictModeSparse { max_length }))
                .collect(),
        }),
        max_points_count: s.u64("max_points_count"),
        max_payload_index_count: s.u64("max_payload_index_count"),
        max_resident_memory_percent: s.u32("max_resident_memory_percent"),
    })
}

/// One sparse vector's `{"index": {...}, "modifier": ...}`.
#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory` but still reported.
pub fn sparse_vector(params: &SparseVectorParams) -> grpc::SparseVectorParams {
    grpc::SparseVectorParams {
        index: params.index.as_ref().map(|index| {
            let i = Fields::of(index);
            grpc::SparseIndexConfig {
                full_scan_threshold: i.u64("full_scan_threshold"),
                on_disk: i.bool("on_disk"),
                datatype: i.enum_of("datatype", DATATYPES),
                memory: i.enum_of("memory", MEMORY),
            }
        }),
        modifier: params
            .modifier
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|m| enum_value(MODIFIERS, m)),
    }
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::grpc::convert::from_grpc;

    /// REST JSON -> gRPC -> REST JSON gives back what REST stored.
    fn round_trip_quantization(rest: Value) {
        let message = quantization(&rest).unwrap();
        assert_eq!(from_grpc::collection_config::quantization(message).unwrap(), Some(rest));
    }

    #[test]
    fn quantization_round_trips() {
        round_trip_quantization(json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}));
        round_trip_quantization(json!({"scalar": {"type": "int8"}}));
        round_trip_quantization(json!({"product": {"compression": "x32", "always_ram": false}}));
        round_trip_quantization(json!({"binary": {"encoding": "one_and_half_bits", "query_encoding": "binary"}}));
        round_trip_quantization(json!({"turbo": {"bits": "bits1_5", "memory": "cached"}}));
        let scalar = quantization(&json!({"scalar": {"type": "int8", "quantile": 0.5}})).unwrap();
        assert_eq!(
            scalar.quantization,
            Some(Quantization::Scalar(grpc::ScalarQuantization {
                r#type: grpc::QuantizationType::Int8 as i32,
                quantile: Some(0.5),
                always_ram: None,
                memory: None,
            }))
        );
        // What REST stored unchecked and gRPC cannot express is left out.
        assert!(quantization(&json!({"scalar": {"type": "int4"}})).is_none());
        assert!(quantization(&json!({"product": {}})).is_none());
        assert!(quantization(&json!("Disabled")).is_none());
    }

    #[test]
    fn strict_mode_round_trips() {
        let rest = json!({
            "enabled": true, "max_query_limit": 100, "max_timeout": 5, "search_max_oversampling": 2.5,
            "upsert_max_batchsize": 64, "read_rate_limit": 10,
            "multivector_config": {"colbert": {"max_vectors": 8}},
            "sparse_config": {"text": {"max_length": 64}},
        });
        let message = strict_mode(&rest).unwrap();
        assert_eq!(message.max_query_limit, Some(100));
        assert_eq!(
            message.sparse_config.as_ref().unwrap().sparse_config["text"].max_length,
            Some(64)
        );
        assert_eq!(from_grpc::collection_config::strict_mode(message), rest);
        assert!(strict_mode(&json!(null)).is_none());
    }

    #[test]
    fn sparse_vector_round_trips() {
        let rest = SparseVectorParams {
            index: Some(json!({"full_scan_threshold": 100, "on_disk": false, "datatype": "uint8"})),
            modifier: Some(json!("idf")),
        };
        let message = sparse_vector(&rest);
        assert_eq!(message.modifier, Some(grpc::Modifier::Idf as i32));
        assert_eq!(from_grpc::collection_config::sparse_vector("s", message).unwrap(), rest);
        assert_eq!(
            sparse_vector(&SparseVectorParams::default()),
            grpc::SparseVectorParams::default()
        );
    }
}
