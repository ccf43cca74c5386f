//! `CreateCollection` / `UpdateCollection` into the model's request bodies, the ones REST
//! deserializes `PUT` / `PATCH /collections/{c}` into; validation and defaults stay in the model.

use std::collections::{BTreeMap, HashMap};

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::max_optimization_threads::Variant as Threads;
use qdrant_client::qdrant::{vectors_config, vectors_config_diff};

use super::collection_config::{
    datatype, enum_name, metadata, multivector, quantization, quantization_diff, sparse_vector, strict_mode,
    SHARDING_METHODS,
};
use crate::error::{Error, Result};
use crate::model::collection::{
    CollectionParamsDiff, CreateCollection, HnswConfigDiff, OptimizersConfigDiff, SparseVectorParams, UpdateCollection,
    VectorParams, VectorParamsDiff, VectorsConfig, WalConfigDiff,
};
use crate::model::vector::{Distance, DEFAULT_VECTOR};

/// Sizes and counts are `uint64` on the wire and `usize` in the model.
fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The body of `PUT /collections/{collection_name}`; the name and `timeout` stay in the request.
#[allow(deprecated)] // `on_disk_payload` is deprecated in favour of `payload.memory`; clients still send it.
pub fn create_collection(request: grpc::CreateCollection) -> Result<CreateCollection> {
    Ok(CreateCollection {
        vectors: request.vectors_config.map(vectors).transpose()?.flatten(),
        shard_number: request.shard_number,
        sharding_method: request
            .sharding_method
            .map(|m| enum_name(SHARDING_METHODS, m, "sharding_method").map(str::to_string))
            .transpose()?,
        replication_factor: request.replication_factor,
        write_consistency_factor: request.write_consistency_factor,
        // Not part of gRPC `CreateCollection`; settable by an update.
        read_fan_out_factor: None,
        on_disk_payload: request.on_disk_payload,
        hnsw_config: request.hnsw_config.map(hnsw),
        wal_config: request.wal_config.map(wal),
        optimizers_config: request.optimizers_config.map(optimizers),
        quantization_config: request.quantization_config.map(quantization).transpose()?.flatten(),
        sparse_vectors: request.sparse_vectors_config.map(sparse_vectors).transpose()?,
        strict_mode_config: request.strict_mode_config.map(strict_mode),
        metadata: metadata(request.metadata),
    })
}

/// The body of `PATCH /collections/{collection_name}`.
pub fn update_collection(request: grpc::UpdateCollection) -> Result<UpdateCollection> {
    Ok(UpdateCollection {
        vectors: request.vectors_config.map(vectors_diff).transpose()?.flatten(),
        optimizers_config: request.optimizers_config.map(optimizers),
        params: request.params.map(params_diff),
        hnsw_config: request.hnsw_config.map(hnsw),
        quantization_config: request
            .quantization_config
            .map(quantization_diff)
            .transpose()?
            .flatten(),
        sparse_vectors: request.sparse_vectors_config.map(sparse_vectors).transpose()?,
        strict_mode_config: request.strict_mode_config.map(strict_mode),
        metadata: metadata(request.metadata),
    })
}

/// One unnamed vector (`Params`) or named ones (`ParamsMap`); an empty message is no vectors.
fn vectors(config: grpc::VectorsConfig) -> Result<Option<VectorsConfig>> {
    Ok(match config.config {
        None => None,
        Some(vectors_config::Config::Params(p)) => Some(VectorsConfig::Single(vector_params(DEFAULT_VECTOR, p)?)),
        Some(vectors_config::Config::ParamsMap(m)) => Some(VectorsConfig::Named(
            m.map
                .into_iter()
                .map(|(name, p)| Ok((name.clone(), vector_params(&name, p)?)))
                .collect::<Result<_>>()?,
        )),
    })
}

/// The field name REST would report for a setting of vector `name`.
fn vector_field(name: &str, field: &str) -> String {
    if name.is_empty() {
        format!("vectors.{field}")
    } else {
        format!("vectors.{name}.{field}")
    }
}

#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory`; clients still send it.
fn vector_params(name: &str, p: grpc::VectorParams) -> Result<VectorParams> {
    Ok(VectorParams {
        size: p.size,
        distance: distance(p.distance, &vector_field(name, "distance"))?,
        hnsw_config: p.hnsw_config.map(hnsw),
        quantization_config: p.quantization_config.map(quantization).transpose()?.flatten(),
        on_disk: p.on_disk,
        datatype: datatype(p.datatype, &vector_field(name, "datatype"))?,
        multivector_config: p.multivector_config.map(multivector).transpose()?,
    })
}

pub fn distance(value: i32, field: &str) -> Result<Distance> {
    match grpc::Distance::try_from(value) {
        Ok(grpc::Distance::Cosine) => Ok(Distance::Cosine),
        Ok(grpc::Distance::Euclid) => Ok(Distance::Euclid),
        Ok(grpc::Distance::Dot) => Ok(Distance::Dot),
        Ok(grpc::Distance::Manhattan) => Ok(Distance::Manhattan),
        _ => Err(Error::bad_input(format!(
            "{field}: unknown distance {value}, expected Cosine, Euclid, Dot or Manhattan"
        ))),
    }
}

fn vectors_diff(config: grpc::VectorsConfigDiff) -> Result<Option<BTreeMap<String, VectorParamsDiff>>> {
    Ok(match config.config {
        None => None,
        // The unnamed vector is the one called "" (as REST's `{"vectors": {"": {...}}}`).
        Some(vectors_config_diff::Config::Params(p)) => {
            Some(BTreeMap::from([(DEFAULT_VECTOR.to_string(), vector_params_diff(p)?)]))
        }
        Some(vectors_config_diff::Config::ParamsMap(m)) => Some(
            m.map
                .into_iter()
                .map(|(name, p)| Ok((name, vector_params_diff(p)?)))
                .collect::<Result<_>>()?,
        ),
    })
}

#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory`; clients still send it.
fn vector_params_diff(p: grpc::VectorParamsDiff) -> Result<VectorParamsDiff> {
    Ok(VectorParamsDiff {
        hnsw_config: p.hnsw_config.map(hnsw),
        quantization_config: p.quantization_config.map(quantization_diff).transpose()?.flatten(),
        on_disk: p.on_disk,
    })
}

#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory`; clients still send it.
pub fn hnsw(h: grpc::HnswConfigDiff) -> HnswConfigDiff {
    HnswConfigDiff {
        m: h.m.map(size),
        ef_construct: h.ef_construct.map(size),
        full_scan_threshold: h.full_scan_threshold.map(size),
        max_indexing_threads: h.max_indexing_threads.map(size),
        on_disk: h.on_disk,
        payload_m: h.payload_m.map(size),
        inline_storage: h.inline_storage,
    }
}

fn wal(w: grpc::WalConfigDiff) -> WalConfigDiff {
    WalConfigDiff {
        wal_capacity_mb: w.wal_capacity_mb.map(size),
        wal_segments_ahead: w.wal_segments_ahead.map(size),
        wal_retain_closed: w.wal_retain_closed.map(size),
    }
}

fn optimizers(o: grpc::OptimizersConfigDiff) -> OptimizersConfigDiff {
    // `max_optimization_threads` wins over its deprecated predecessor; `Auto` is REST's `null`.
    let threads = match o.max_optimization_threads.and_then(|t| t.variant) {
        Some(Threads::Value(n)) => Some(size(n)),
        Some(Threads::Setting(_)) => None,
        None => o.deprecated_max_optimization_threads.map(size),
    };
    OptimizersConfigDiff {
        deleted_threshold: o.deleted_threshold,
        vacuum_min_vector_number: o.vacuum_min_vector_number.map(size),
        default_segment_number: o.default_segment_number.map(size),
        max_segment_size: o.max_segment_size.map(size),
        memmap_threshold: o.memmap_threshold.map(size),
        indexing_threshold: o.indexing_threshold.map(size),
        flush_interval_sec: o.flush_interval_sec,
        max_optimization_threads: threads,
    }
}

#[allow(deprecated)] // `on_disk_payload` is deprecated in favour of `payload.memory`; clients still send it.
fn params_diff(p: grpc::CollectionParamsDiff) -> CollectionParamsDiff {
    CollectionParamsDiff {
        replication_factor: p.replication_factor,
        write_consistency_factor: p.write_consistency_factor,
        read_fan_out_factor: p.read_fan_out_factor,
        on_disk_payload: p.on_disk_payload,
    }
}

fn sparse_vectors(config: grpc::SparseVectorConfig) -> Result<BTreeMap<String, SparseVectorParams>> {
    let map: HashMap<_, _> = config.map;
    map.into_iter()
        .map(|(name, p)| Ok((name.clone(), sparse_vector(&name, p)?)))
        .collect()
}

/// `UpdateAliases`: the actions in REST's model; an action with no variant is refused.
pub fn change_aliases(r: grpc::ChangeAliases) -> Result<crate::model::alias::ChangeAliases> {
    use crate::model::alias::AliasAction;
    use grpc::alias_operations::Action;
    let actions = r
        .actions
        .into_iter()
        .map(|a| match a.action {
            Some(Action::CreateAlias(c)) => Ok(AliasAction::CreateAlias {
                collection_name: c.collection_name,
                alias_name: c.alias_name,
            }),
            Some(Action::DeleteAlias(d)) => Ok(AliasAction::DeleteAlias {
                alias_name: d.alias_name,
            }),
            Some(Action::RenameAlias(r)) => Ok(AliasAction::RenameAlias {
                old_alias_name: r.old_alias_name,
                new_alias_name: r.new_alias_name,
            }),
            None => Err(Error::bad_input("alias operation without an action")),
        })
        .collect::<Result<_>>()?;
    Ok(crate::model::alias::ChangeAliases { actions })
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::settings::Settings;

    fn dense(size: u64, distance: grpc::Distance) -> grpc::VectorParams {
        grpc::VectorParams {
            size,
            distance: distance as i32,
            ..Default::default()
        }
    }

    #[test]
    fn create_fills_the_rest_body() {
        let request = grpc::CreateCollection {
            collection_name: "c".into(),
            vectors_config: Some(grpc::VectorsConfig {
                config: Some(vectors_config::Config::ParamsMap(grpc::VectorParamsMap {
                    map: HashMap::from([(
                        "image".to_string(),
                        grpc::VectorParams {
                            hnsw_config: Some(grpc::HnswConfigDiff {
                                m: Some(32),
                                ..Default::default()
                            }),
                            datatype: Some(grpc::Datatype::Float16 as i32),
                            on_disk: Some(true),
                            ..dense(4, grpc::Distance::Dot)
                        },
                    )]),
                })),
            }),
            hnsw_config: Some(grpc::HnswConfigDiff {
                ef_construct: Some(123),
                ..Default::default()
            }),
            optimizers_config: Some(grpc::OptimizersConfigDiff {
                indexing_threshold: Some(0),
                max_optimization_threads: Some(grpc::MaxOptimizationThreads {
                    variant: Some(Threads::Value(2)),
                }),
                ..Default::default()
            }),
            wal_config: Some(grpc::WalConfigDiff {
                wal_capacity_mb: Some(64),
                ..Default::default()
            }),
            shard_number: Some(2),
            sharding_method: Some(grpc::ShardingMethod::Auto as i32),
            on_disk_payload: Some(true),
            metadata: HashMap::from([(
                "team".to_string(),
                crate::api::grpc::convert::to_grpc::value::value(json!("a")),
            )]),
            ..Default::default()
        };
        let body = create_collection(request).unwrap();
        assert_eq!(body.metadata, Some(json!({"team": "a"})));
        assert_eq!(body.sharding_method.as_deref(), Some("auto"));
        let config = body.into_config(&Settings::default(), 1).unwrap();
        let image = config.params.vectors.get("image").unwrap();
        assert_eq!((image.size, image.distance), (4, Distance::Dot));
        assert_eq!(image.datatype.as_deref(), Some("float16"));
        assert_eq!(image.on_disk, Some(true));
        assert_eq!(config.hnsw_for("image").m, 32);
        assert_eq!(config.hnsw_config.ef_construct, 123);
        assert_eq!(config.optimizer_config.indexing_threshold, Some(0));
        assert_eq!(config.optimizer_config.max_optimization_threads, Some(2));
        assert_eq!(config.wal_config.wal_capacity_mb, 64);
        assert_eq!(config.params.shard_number, 2);
        assert!(config.params.on_disk_payload);
    }

    #[test]
    fn malformed_create_is_bad_input_and_model_rules_apply() {
        let unknown_distance = grpc::CreateCollection {
            vectors_config: Some(grpc::VectorsConfig {
                config: Some(vectors_config::Config::Params(dense(
                    4,
                    grpc::Distance::UnknownDistance,
                ))),
            }),
            ..Default::default()
        };
        assert!(matches!(create_collection(unknown_distance), Err(Error::BadInput(_))));
        let zero_size = grpc::CreateCollection {
            vectors_config: Some(grpc::VectorsConfig {
                config: Some(vectors_config::Config::Params(dense(0, grpc::Distance::Cosine))),
            }),
            ..Default::default()
        };
        let body = create_collection(zero_size).unwrap();
        assert!(matches!(
            body.into_config(&Settings::default(), 1),
            Err(Error::Validation(_))
        ));
    }

    #[test]
    fn update_maps_diffs() {
        let request = grpc::UpdateCollection {
            vectors_config: Some(grpc::VectorsConfigDiff {
                config: Some(vectors_config_diff::Config::Params(grpc::VectorParamsDiff {
                    on_disk: Some(true),
                    quantization_config: Some(grpc::QuantizationConfigDiff {
                        quantization: Some(grpc::quantization_config_diff::Quantization::Disabled(
                            grpc::Disabled {},
                        )),
                    }),
                    ..Default::default()
                })),
            }),
            params: Some(grpc::CollectionParamsDiff {
                replication_factor: Some(2),
                read_fan_out_factor: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let update = update_collection(request).unwrap();
        let vector = &update.vectors.as_ref().unwrap()[""];
        assert_eq!(vector.on_disk, Some(true));
        assert_eq!(vector.quantization_config, Some(json!("Disabled")));
        let params = update.params.unwrap();
        assert_eq!(
            (params.replication_factor, params.read_fan_out_factor),
            (Some(2), Some(1))
        );
        assert!(update.metadata.is_none() && update.strict_mode_config.is_none());
    }
}
