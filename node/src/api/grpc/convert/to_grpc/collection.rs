//! Collection info (`GET /collections/{c}`) as gRPC `CollectionInfo`. Every field clients read as
//! required is set, so they convert it into the same model they parse REST's JSON into.

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::max_optimization_threads::{Setting, Variant as Threads};
use qdrant_client::qdrant::{vectors_config, CollectionStatus};
use serde_json::Value;

use super::collection_config::{datatype, multivector, quantization, sparse_vector, strict_mode};
use super::payload_schema::schema_info;
use crate::api::grpc::convert::from_grpc::collection_config::{enum_value, SHARDING_METHODS};
use crate::collection::CollectionInfo;
use crate::model::collection::{
    CollectionConfig, CollectionParams, HnswConfig, HnswConfigDiff, OptimizersConfig, VectorParams, VectorsConfig,
    WalConfig,
};
use crate::model::vector::Distance;

pub fn collection_info(info: CollectionInfo) -> grpc::CollectionInfo {
    grpc::CollectionInfo {
        status: status(info.status) as i32,
        optimizer_status: Some(match info.optimizer_status {
            "ok" => grpc::OptimizerStatus {
                ok: true,
                error: String::new(),
            },
            error => grpc::OptimizerStatus {
                ok: false,
                error: error.to_string(),
            },
        }),
        segments_count: info.segments_count as u64,
        config: Some(collection_config(&info.config)),
        payload_schema: info
            .payload_schema
            .iter()
            .map(|(field, schema)| (field.clone(), schema_info(schema)))
            .collect(),
        points_count: Some(info.points_count as u64),
        indexed_vectors_count: Some(info.indexed_vectors_count as u64),
        warnings: info.warnings.iter().map(warning).collect(),
        update_queue: None,
        created_at: None,
    }
}

fn status(name: &str) -> CollectionStatus {
    match name {
        "green" => CollectionStatus::Green,
        "yellow" => CollectionStatus::Yellow,
        "red" => CollectionStatus::Red,
        "grey" => CollectionStatus::Grey,
        _ => CollectionStatus::UnknownCollectionStatus,
    }
}

/// A warning as REST reports it (`{"message": ...}`).
fn warning(w: &Value) -> grpc::CollectionWarning {
    let message = match w.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => w.to_string(),
    };
    grpc::CollectionWarning { message }
}

pub fn collection_config(c: &CollectionConfig) -> grpc::CollectionConfig {
    grpc::CollectionConfig {
        params: Some(params(&c.params)),
        hnsw_config: Some(hnsw(&c.hnsw_config)),
        optimizer_config: Some(optimizers(&c.optimizer_config)),
        wal_config: Some(wal(&c.wal_config)),
        quantization_config: c.quantization_config.as_ref().and_then(quantization),
        strict_mode_config: c.strict_mode_config.as_ref().and_then(strict_mode),
        metadata: match &c.metadata {
            Some(Value::Object(m)) => super::value::payload(m.clone()),
            _ => Default::default(),
        },
    }
}

#[allow(deprecated)] // `on_disk_payload` is deprecated in favour of `payload.memory` but still reported.
fn params(p: &CollectionParams) -> grpc::CollectionParams {
    grpc::CollectionParams {
        shard_number: p.shard_number,
        on_disk_payload: p.on_disk_payload,
        vectors_config: Some(vectors(&p.vectors)),
        replication_factor: Some(p.replication_factor),
        write_consistency_factor: Some(p.write_consistency_factor),
        read_fan_out_factor: p.read_fan_out_factor,
        sharding_method: p
            .sharding_method
            .as_deref()
            .and_then(|m| enum_value(SHARDING_METHODS, m)),
        sparse_vectors_config: p.sparse_vectors.as_ref().map(|sparse| grpc::SparseVectorConfig {
            map: sparse
                .iter()
                .map(|(name, params)| (name.clone(), sparse_vector(params)))
                .collect(),
        }),
        read_fan_out_delay_ms: None,
        payload: None,
        id_tracker: None,
    }
}

fn vectors(v: &VectorsConfig) -> grpc::VectorsConfig {
    let config = match v {
        VectorsConfig::Single(p) => vectors_config::Config::Params(vector_params(p)),
        VectorsConfig::Named(m) => vectors_config::Config::ParamsMap(grpc::VectorParamsMap {
            map: m.iter().map(|(name, p)| (name.clone(), vector_params(p))).collect(),
        }),
    };
    grpc::VectorsConfig { config: Some(config) }
}

#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory` but still reported.
fn vector_params(p: &VectorParams) -> grpc::VectorParams {
    grpc::VectorParams {
        size: p.size,
        distance: distance(p.distance) as i32,
        hnsw_config: p.hnsw_config.as_ref().map(hnsw_diff),
        quantization_config: p.quantization_config.as_ref().and_then(quantization),
        on_disk: p.on_disk,
        datatype: datatype(p.datatype.as_deref()),
        multivector_config: p.multivector_config.as_ref().and_then(multivector),
        memory: None,
    }
}

pub fn distance(d: Distance) -> grpc::Distance {
    match d {
        Distance::Cosine => grpc::Distance::Cosine,
        Distance::Euclid => grpc::Distance::Euclid,
        Distance::Dot => grpc::Distance::Dot,
        Distance::Manhattan => grpc::Distance::Manhattan,
    }
}

/// The collection's HNSW settings: every value is set (gRPC has one message for both).
#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory` but still reported.
fn hnsw(h: &HnswConfig) -> grpc::HnswConfigDiff {
    grpc::HnswConfigDiff {
        m: Some(h.m as u64),
        ef_construct: Some(h.ef_construct as u64),
        full_scan_threshold: Some(h.full_scan_threshold as u64),
        max_indexing_threads: Some(h.max_indexing_threads as u64),
        on_disk: h.on_disk,
        payload_m: h.payload_m.map(|m| m as u64),
        inline_storage: None,
        memory: None,
    }
}

/// A vector's own HNSW overrides.
#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory` but still reported.
fn hnsw_diff(h: &HnswConfigDiff) -> grpc::HnswConfigDiff {
    let wide = |n: Option<usize>| n.map(|n| n as u64);
    grpc::HnswConfigDiff {
        m: wide(h.m),
        ef_construct: wide(h.ef_construct),
        full_scan_threshold: wide(h.full_scan_threshold),
        max_indexing_threads: wide(h.max_indexing_threads),
        on_disk: h.on_disk,
        payload_m: wide(h.payload_m),
        inline_storage: h.inline_storage,
        memory: None,
    }
}

fn optimizers(o: &OptimizersConfig) -> grpc::OptimizersConfigDiff {
    let wide = |n: Option<usize>| n.map(|n| n as u64);
    // REST's `null` threads is Qdrant's `Auto`.
    let threads = match o.max_optimization_threads {
        Some(n) => Threads::Value(n as u64),
        None => Threads::Setting(Setting::Auto as i32),
    };
    grpc::OptimizersConfigDiff {
        deleted_threshold: Some(o.deleted_threshold),
        vacuum_min_vector_number: Some(o.vacuum_min_vector_number as u64),
        default_segment_number: Some(o.default_segment_number as u64),
        max_segment_size: wide(o.max_segment_size),
        memmap_threshold: wide(o.memmap_threshold),
        indexing_threshold: wide(o.indexing_threshold),
        flush_interval_sec: Some(o.flush_interval_sec),
        deprecated_max_optimization_threads: None,
        max_optimization_threads: Some(grpc::MaxOptimizationThreads { variant: Some(threads) }),
        prevent_unoptimized: None,
    }
}

/// Closed WAL segments are not configurable here; REST leaves `wal_retain_closed` out, which
/// clients read as Qdrant's default 1, so gRPC reports that same default.
const WAL_RETAIN_CLOSED: u64 = 1;

fn wal(w: &WalConfig) -> grpc::WalConfigDiff {
    grpc::WalConfigDiff {
        wal_capacity_mb: Some(w.wal_capacity_mb as u64),
        wal_segments_ahead: Some(w.wal_segments_ahead as u64),
        wal_retain_closed: Some(WAL_RETAIN_CLOSED),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::grpc::convert::from_grpc;
    use crate::settings::Settings;

    /// A config created over gRPC comes back as the same messages it was created from.
    #[test]
    fn config_round_trips_through_the_model() {
        let vector = grpc::VectorParams {
            size: 8,
            distance: grpc::Distance::Euclid as i32,
            hnsw_config: Some(grpc::HnswConfigDiff {
                m: Some(8),
                ..Default::default()
            }),
            quantization_config: Some(grpc::QuantizationConfig {
                quantization: Some(grpc::quantization_config::Quantization::Scalar(
                    grpc::ScalarQuantization {
                        r#type: grpc::QuantizationType::Int8 as i32,
                        quantile: Some(0.5),
                        ..Default::default()
                    },
                )),
            }),
            datatype: Some(grpc::Datatype::Uint8 as i32),
            ..Default::default()
        };
        let sparse = grpc::SparseVectorParams {
            index: None,
            modifier: Some(grpc::Modifier::Idf as i32),
        };
        let strict = grpc::StrictModeConfig {
            enabled: Some(true),
            max_timeout: Some(3),
            ..Default::default()
        };
        let request = grpc::CreateCollection {
            vectors_config: Some(grpc::VectorsConfig {
                config: Some(vectors_config::Config::Params(vector)),
            }),
            sparse_vectors_config: Some(grpc::SparseVectorConfig {
                map: [("text".to_string(), sparse)].into(),
            }),
            strict_mode_config: Some(strict.clone()),
            metadata: [("k".to_string(), super::super::value::value(json!([1, 2])))].into(),
            ..Default::default()
        };
        let body = from_grpc::collection::create_collection(request).unwrap();
        let config = collection_config(&body.into_config(&Settings::default(), 1).unwrap());
        let params = config.params.unwrap();
        assert_eq!(
            params.vectors_config.unwrap().config,
            Some(vectors_config::Config::Params(vector))
        );
        assert_eq!(params.sparse_vectors_config.unwrap().map["text"], sparse);
        assert_eq!((params.replication_factor, params.shard_number), (Some(1), 1));
        assert_eq!(config.strict_mode_config, Some(strict));
        assert_eq!(config.metadata["k"], super::super::value::value(json!([1, 2])));
        let optimizer = config.optimizer_config.unwrap();
        assert_eq!(optimizer.indexing_threshold, Some(10_000));
        assert_eq!(
            optimizer.max_optimization_threads.unwrap().variant,
            Some(Threads::Setting(Setting::Auto as i32))
        );
        assert_eq!(config.hnsw_config.unwrap().m, Some(16));
        assert!(config.quantization_config.is_none());
    }

    #[test]
    fn info_sets_what_clients_require() {
        let config = from_grpc::collection::create_collection(grpc::CreateCollection::default())
            .unwrap()
            .into_config(&Settings::default(), 1)
            .unwrap();
        let info = collection_info(CollectionInfo {
            status: "yellow",
            optimizer_status: "ok",
            warnings: vec![json!({"message": "careful"})],
            indexed_vectors_count: 3,
            points_count: 5,
            segments_count: 1,
            config,
            payload_schema: Default::default(),
        });
        assert_eq!(info.status, CollectionStatus::Yellow as i32);
        assert!(info.optimizer_status.unwrap().ok);
        assert_eq!((info.points_count, info.indexed_vectors_count), (Some(5), Some(3)));
        assert_eq!(info.warnings[0].message, "careful");
        let params = info.config.unwrap().params.unwrap();
        // No dense vectors is an empty map, as REST's `"vectors": {}`.
        assert_eq!(
            params.vectors_config.unwrap().config,
            Some(vectors_config::Config::ParamsMap(Default::default()))
        );
    }
}
