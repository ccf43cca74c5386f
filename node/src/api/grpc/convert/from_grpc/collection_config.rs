//! Collection settings the model keeps as Qdrant's REST JSON (quantization, strict mode, sparse
//! index and modifier, multivector, datatype): built from their gRPC messages in exactly the
//! shape a REST client sends, so a collection created over gRPC stores and reports the same as
//! one created over REST. The enum name tables are shared with `to_grpc::collection_config`.

use std::collections::HashMap;

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::binary_quantization_query_encoding::Setting as QueryEncoding;
use qdrant_client::qdrant::quantization_config::Quantization;
use qdrant_client::qdrant::quantization_config_diff::Quantization as QuantizationDiff;
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};
use crate::model::collection::SparseVectorParams;
use crate::model::vector_name::{DenseVectorConfig, SparseVectorConfig, VectorNameConfig};

pub const DATATYPES: &[(grpc::Datatype, &str)] = &[
    (grpc::Datatype::Float32, "float32"),
    (grpc::Datatype::Uint8, "uint8"),
    (grpc::Datatype::Float16, "float16"),
    (grpc::Datatype::Turbo4, "turbo4"),
    (grpc::Datatype::Turbo8, "turbo8"),
    (grpc::Datatype::Turbo16, "turbo16"),
];

pub const MEMORY: &[(grpc::Memory, &str)] = &[
    (grpc::Memory::Cold, "cold"),
    (grpc::Memory::Cached, "cached"),
    (grpc::Memory::Pinned, "pinned"),
];

pub const MODIFIERS: &[(grpc::Modifier, &str)] = &[(grpc::Modifier::None, "none"), (grpc::Modifier::Idf, "idf")];

pub const COMPRESSIONS: &[(grpc::CompressionRatio, &str)] = &[
    (grpc::CompressionRatio::X4, "x4"),
    (grpc::CompressionRatio::X8, "x8"),
    (grpc::CompressionRatio::X16, "x16"),
    (grpc::CompressionRatio::X32, "x32"),
    (grpc::CompressionRatio::X64, "x64"),
];

pub const BINARY_ENCODINGS: &[(grpc::BinaryQuantizationEncoding, &str)] = &[
    (grpc::BinaryQuantizationEncoding::OneBit, "one_bit"),
    (grpc::BinaryQuantizationEncoding::TwoBits, "two_bits"),
    (grpc::BinaryQuantizationEncoding::OneAndHalfBits, "one_and_half_bits"),
];

pub const QUERY_ENCODINGS: &[(QueryEncoding, &str)] = &[
    (QueryEncoding::Default, "default"),
    (QueryEncoding::Binary, "binary"),
    (QueryEncoding::Scalar4Bits, "scalar4bits"),
    (QueryEncoding::Scalar8Bits, "scalar8bits"),
];

pub const TURBO_BITS: &[(grpc::TurboQuantBitSize, &str)] = &[
    (grpc::TurboQuantBitSize::Bits1, "bits1"),
    (grpc::TurboQuantBitSize::Bits15, "bits1_5"),
    (grpc::TurboQuantBitSize::Bits2, "bits2"),
    (grpc::TurboQuantBitSize::Bits4, "bits4"),
    (grpc::TurboQuantBitSize::Bits8, "bits8"),
];

pub const SHARDING_METHODS: &[(grpc::ShardingMethod, &str)] = &[
    (grpc::ShardingMethod::Auto, "auto"),
    (grpc::ShardingMethod::Custom, "custom"),
];

pub const COMPARATORS: &[(grpc::MultiVectorComparator, &str)] = &[(grpc::MultiVectorComparator::MaxSim, "max_sim")];

/// The REST name of the wire value `value` of a gRPC enum, or a bad-input error naming `field`.
pub fn enum_name<E: Copy + Into<i32>>(table: &[(E, &'static str)], value: i32, field: &str) -> Result<&'static str> {
    table
        .iter()
        .find(|(e, _)| (*e).into() == value)
        .map(|(_, name)| *name)
        .ok_or_else(|| Error::bad_input(format!("{field}: unknown enum value {value}")))
}

/// The gRPC wire value of the REST name `name`, if the table knows it.
pub fn enum_value<E: Copy + Into<i32>>(table: &[(E, &'static str)], name: &str) -> Option<i32> {
    table.iter().find(|(_, n)| *n == name).map(|(e, _)| (*e).into())
}

/// A gRPC `float` as the JSON number a REST client would have sent (0.99, not 0.9900000095...).
pub fn f32_json(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Inserts `key` only when the optional field is set (REST clients leave unset fields out).
fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v.into());
    }
}

/// `memory` placement, left out when unset or `Unknown`.
fn put_memory(map: &mut Map<String, Value>, memory: Option<i32>, field: &str) -> Result<()> {
    match memory {
        None | Some(0) => Ok(()),
        Some(m) => {
            put(map, "memory", Some(enum_name(MEMORY, m, field)?));
            Ok(())
        }
    }
}

/// `datatype`, `None` when unset or `Default`.
pub fn datatype(value: Option<i32>, field: &str) -> Result<Option<String>> {
    match value {
        None | Some(0) => Ok(None),
        Some(d) => Ok(Some(enum_name(DATATYPES, d, field)?.to_string())),
    }
}

/// `{"comparator": "max_sim"}`.
pub fn multivector(config: grpc::MultiVectorConfig) -> Result<Value> {
    let comparator = enum_name(COMPARATORS, config.comparator, "multivector_config.comparator")?;
    Ok(serde_json::json!({ "comparator": comparator }))
}

/// A quantization method in REST's shape, e.g. `{"scalar": {"type": "int8", "quantile": 0.99}}`.
/// An empty message (no method) is no quantization.
pub fn quantization(config: grpc::QuantizationConfig) -> Result<Option<Value>> {
    config.quantization.map(method).transpose()
}

/// A quantization update: a method, or `"Disabled"` to remove quantization (REST's spelling).
pub fn quantization_diff(diff: grpc::QuantizationConfigDiff) -> Result<Option<Value>> {
    let method_of = match diff.quantization {
        None => return Ok(None),
        Some(QuantizationDiff::Disabled(_)) => return Ok(Some(Value::String("Disabled".into()))),
        Some(QuantizationDiff::Scalar(s)) => Quantization::Scalar(s),
        Some(QuantizationDiff::Product(p)) => Quantization::Product(p),
        Some(QuantizationDiff::Binary(b)) => Quantization::Binary(b),
        Some(QuantizationDiff::Turboquant(t)) => Quantization::Turboquant(t),
    };
    method(method_of).map(Some)
}

#[allow(deprecated)] // `always_ram` is deprecated in favour of `memory`; clients still send it.
fn method(quantization: Quantization) -> Result<Value> {
    let mut params = Map::new();
    let name = match quantization {
        Quantization::Scalar(s) => {
            if s.r#type != grpc::QuantizationType::Int8 as i32 {
                return Err(Error::bad_input(format!(
                    "quantization_config.scalar.type: unknown quantization type {}, expected Int8",
                    s.r#type
                )));
            }
            put(&mut params, "type", Some("int8"));
            put(&mut params, "quantile", s.quantile.map(f32_json));
            put(&mut params, "always_ram", s.always_ram);
            put_memory(&mut params, s.memory, "quantization_config.scalar.memory")?;
            "scalar"
        }
        Quantization::Product(p) => {
            let compression = enum_name(COMPRESSIONS, p.compression, "quantization_config.product.compression")?;
            put(&mut params, "compression", Some(compression));
            put(&mut params, "always_ram", p.always_ram);
            put_memory(&mut params, p.memory, "quantization_config.product.memory")?;
            "product"
        }
        Quantization::Binary(b) => {
            put(&mut params, "always_ram", b.always_ram);
            let encoding = b
                .encoding
                .map(|e| enum_name(BINARY_ENCODINGS, e, "quantization_config.binary.encoding"))
                .transpose()?;
            put(&mut params, "encoding", encoding);
            let query_encoding = match b.query_encoding.and_then(|q| q.variant) {
                Some(grpc::binary_quantization_query_encoding::Variant::Setting(s)) => Some(enum_name(
                    QUERY_ENCODINGS,
                    s,
                    "quantization_config.binary.query_encoding",
                )?),
                None => None,
            };
            put(&mut params, "query_encoding", query_encoding);
            put_memory(&mut params, b.memory, "quantization_config.binary.memory")?;
            "binary"
        }
        Quantization::Turboquant(t) => {
            put(&mut params, "always_ram", t.always_ram);
            let bits = t
                .bits
                .map(|b| enum_name(TURBO_BITS, b, "quantization_config.turbo.bits"))
                .transpose()?;
            put(&mut params, "bits", bits);
            put_memory(&mut params, t.memory, "quantization_config.turbo.memory")?;
            "turbo"
        }
    };
    Ok(Value::Object(Map::from_iter([(
        name.to_string(),
        Value::Object(params),
    )])))
}

/// Strict mode in REST's shape: the set fields under their own names; the per-vector limits as
/// `{"multivector_config": {"name": {"max_vectors": n}}, "sparse_config": {"name": {"max_length": n}}}`.
#[allow(deprecated)] // `max_resident_memory_percent` is deprecated but still part of the config.
pub fn strict_mode(s: grpc::StrictModeConfig) -> Value {
    let mut m = Map::new();
    put(&mut m, "enabled", s.enabled);
    put(&mut m, "max_query_limit", s.max_query_limit);
    put(&mut m, "max_timeout", s.max_timeout);
    put(&mut m, "unindexed_filtering_retrieve", s.unindexed_filtering_retrieve);
    put(&mut m, "unindexed_filtering_update", s.unindexed_filtering_update);
    put(&mut m, "search_max_hnsw_ef", s.search_max_hnsw_ef);
    put(&mut m, "search_allow_exact", s.search_allow_exact);
    put(
        &mut m,
        "search_max_oversampling",
        s.search_max_oversampling.map(f32_json),
    );
    put(&mut m, "upsert_max_batchsize", s.upsert_max_batchsize);
    put(&mut m, "search_max_batchsize", s.search_max_batchsize);
    put(
        &mut m,
        "max_collection_vector_size_bytes",
        s.max_collection_vector_size_bytes,
    );
    put(&mut m, "read_rate_limit", s.read_rate_limit);
    put(&mut m, "write_rate_limit", s.write_rate_limit);
    put(
        &mut m,
        "max_collection_payload_size_bytes",
        s.max_collection_payload_size_bytes,
    );
    put(&mut m, "max_points_count", s.max_points_count);
    put(&mut m, "filter_max_conditions", s.filter_max_conditions);
    put(&mut m, "condition_max_size", s.condition_max_size);
    put(
        &mut m,
        "multivector_config",
        s.multivector_config
            .map(|c| per_vector(c.multivector_config, "max_vectors", |v| v.max_vectors)),
    );
    put(
        &mut m,
        "sparse_config",
        s.sparse_config
            .map(|c| per_vector(c.sparse_config, "max_length", |v| v.max_length)),
    );
    put(&mut m, "max_payload_index_count", s.max_payload_index_count);
    put(&mut m, "max_resident_memory_percent", s.max_resident_memory_percent);
    Value::Object(m)
}

fn per_vector<T>(limits: HashMap<String, T>, key: &str, limit: impl Fn(&T) -> Option<u64>) -> Value {
    let by_name = limits.into_iter().map(|(name, v)| {
        let mut inner = Map::new();
        put(&mut inner, key, limit(&v));
        (name, Value::Object(inner))
    });
    Value::Object(by_name.collect())
}

/// One sparse vector's settings: `{"index": {"full_scan_threshold", "on_disk", "datatype",
/// "memory"}, "modifier": "none" | "idf"}`.
#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory`; clients still send it.
pub fn sparse_vector(name: &str, params: grpc::SparseVectorParams) -> Result<SparseVectorParams> {
    let index = params
        .index
        .map(|i| -> Result<Value> {
            let mut m = Map::new();
            put(&mut m, "full_scan_threshold", i.full_scan_threshold);
            put(&mut m, "on_disk", i.on_disk);
            put(
                &mut m,
                "datatype",
                datatype(i.datatype, &format!("sparse_vectors.{name}.index.datatype"))?,
            );
            put_memory(&mut m, i.memory, &format!("sparse_vectors.{name}.index.memory"))?;
            Ok(Value::Object(m))
        })
        .transpose()?;
    let modifier = params
        .modifier
        .map(|m| enum_name(MODIFIERS, m, &format!("sparse_vectors.{name}.modifier")))
        .transpose()?
        .map(|m| Value::String(m.to_string()));
    Ok(SparseVectorParams { index, modifier })
}

/// The vector of `CreateVectorName`: dense or sparse.
pub fn vector_name_config(config: Option<grpc::create_vector_name_request::VectorConfig>) -> Result<VectorNameConfig> {
    use grpc::create_vector_name_request::VectorConfig;
    match config {
        None => Err(Error::bad_input(
            "vector_config is required: set a dense or a sparse config",
        )),
        Some(VectorConfig::DenseConfig(d)) => Ok(VectorNameConfig::Dense(DenseVectorConfig {
            size: d.size,
            distance: super::collection::distance(d.distance, "dense_config.distance")?,
            multivector_config: d.multivector_config.map(multivector).transpose()?,
            datatype: datatype(d.datatype, "dense_config.datatype")?,
        })),
        Some(VectorConfig::SparseConfig(s)) => Ok(VectorNameConfig::Sparse(SparseVectorConfig {
            modifier: s
                .modifier
                .map(|m| enum_name(MODIFIERS, m, "sparse_config.modifier"))
                .transpose()?
                .map(|m| Value::String(m.to_string())),
            datatype: datatype(s.datatype, "sparse_config.datatype")?,
        })),
    }
}

/// Collection metadata; an empty map (what an unset proto map looks like) is none.
pub fn metadata(fields: HashMap<String, grpc::Value>) -> Option<Value> {
    if fields.is_empty() {
        None
    } else {
        Some(Value::Object(super::value::payload(fields)))
    }
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantization_in_rest_shape() {
        let scalar = grpc::QuantizationConfig {
            quantization: Some(Quantization::Scalar(grpc::ScalarQuantization {
                r#type: grpc::QuantizationType::Int8 as i32,
                quantile: Some(0.99),
                always_ram: Some(true),
                memory: None,
            })),
        };
        assert_eq!(
            quantization(scalar).unwrap(),
            Some(json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}))
        );
        let product = grpc::QuantizationConfig {
            quantization: Some(Quantization::Product(grpc::ProductQuantization {
                compression: grpc::CompressionRatio::X16 as i32,
                always_ram: None,
                memory: Some(grpc::Memory::Pinned as i32),
            })),
        };
        assert_eq!(
            quantization(product).unwrap(),
            Some(json!({"product": {"compression": "x16", "memory": "pinned"}}))
        );
        let binary = grpc::QuantizationConfig {
            quantization: Some(Quantization::Binary(grpc::BinaryQuantization {
                always_ram: Some(false),
                encoding: Some(grpc::BinaryQuantizationEncoding::TwoBits as i32),
                query_encoding: Some(grpc::BinaryQuantizationQueryEncoding {
                    variant: Some(grpc::binary_quantization_query_encoding::Variant::Setting(
                        QueryEncoding::Scalar8Bits as i32,
                    )),
                }),
                memory: None,
            })),
        };
        assert_eq!(
            quantization(binary).unwrap(),
            Some(json!({"binary": {"always_ram": false, "encoding": "two_bits", "query_encoding": "scalar8bits"}}))
        );
        let disabled = grpc::QuantizationConfigDiff {
            quantization: Some(QuantizationDiff::Disabled(grpc::Disabled {})),
        };
        assert_eq!(quantization_diff(disabled).unwrap(), Some(json!("Disabled")));
        let unknown_type = grpc::QuantizationConfig {
            quantization: Some(Quantization::Scalar(grpc::ScalarQuantization::default())),
        };
        assert!(matches!(quantization(unknown_type), Err(Error::BadInput(_))));
    }

    #[test]
    fn strict_mode_in_rest_shape() {
        let config = grpc::StrictModeConfig {
            enabled: Some(true),
            max_query_limit: Some(100),
            search_max_oversampling: Some(1.5),
            unindexed_filtering_retrieve: Some(false),
            multivector_config: Some(grpc::StrictModeMultivectorConfig {
                multivector_config: HashMap::from([(
                    "colbert".to_string(),
                    grpc::StrictModeMultivector { max_vectors: Some(8) },
                )]),
            }),
            sparse_config: Some(grpc::StrictModeSparseConfig {
                sparse_config: HashMap::from([("text".to_string(), grpc::StrictModeSparse { max_length: Some(64) })]),
            }),
            ..Default::default()
        };
        assert_eq!(
            strict_mode(config),
            json!({
                "enabled": true, "max_query_limit": 100, "search_max_oversampling": 1.5,
                "unindexed_filtering_retrieve": false,
                "multivector_config": {"colbert": {"max_vectors": 8}},
                "sparse_config": {"text": {"max_length": 64}},
            })
        );
    }

    #[test]
    fn sparse_vector_in_rest_shape() {
        let params = grpc::SparseVectorParams {
            index: Some(grpc::SparseIndexConfig {
                full_scan_threshold: Some(5000),
                on_disk: Some(true),
                datatype: Some(grpc::Datatype::Float16 as i32),
                memory: None,
            }),
            modifier: Some(grpc::Modifier::Idf as i32),
        };
        let converted = sparse_vector("text", params).unwrap();
        assert_eq!(
            converted.index,
            Some(json!({"full_scan_threshold": 5000, "on_disk": true, "datatype": "float16"}))
        );
        assert_eq!(converted.modifier, Some(json!("idf")));
        let bad = grpc::SparseVectorParams {
            index: None,
            modifier: Some(7),
        };
        assert!(matches!(sparse_vector("text", bad), Err(Error::BadInput(_))));
    }
}
