//! Collection configuration: the request bodies of create/update and the persisted config that
//! `GET /collections/{c}` reports, in Qdrant's JSON shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::quantization::QuantizationConfig;
use super::vector::{Distance, DEFAULT_VECTOR};
use crate::error::{Error, Result};
use crate::settings::Settings;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorParams {
    pub size: u64,
    pub distance: Distance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivector_config: Option<Value>,
}

impl VectorParams {
    /// Whether points store several vectors under this name (`multivector_config`).
    pub fn is_multi(&self) -> bool {
        self.multivector_config.is_some()
    }

    /// The element type vectors are stored in (`datatype`, float32 by default).
    pub fn datatype(&self) -> Datatype {
        match self.datatype.as_deref() {
            Some("float16") => Datatype::Float16,
            Some("uint8") => Datatype::Uint8,
            _ => Datatype::Float32,
        }
    }

    /// Checks `multivector_config` and `datatype` (Qdrant rejects unknown variants as JSON errors).
    pub(crate) fn validate_storage(&self, label: &str) -> Result<()> {
        if let Some(m) = &self.multivector_config {
            match m.get("comparator").and_then(Value::as_str) {
                Some("max_sim") => {}
                Some(other) => {
                    return Err(Error::bad_input(format!(
                        "Format error in JSON body: {label}.multivector_config.comparator: unknown variant `{other}`, expected `max_sim`"
                    )))
                }
                None => {
                    return Err(Error::bad_input(format!(
                        "Format error in JSON body: {label}.multivector_config: missing field `comparator`"
                    )))
                }
            }
        }
        match self.datatype.as_deref() {
            None | Some("float32" | "float16" | "uint8") => Ok(()),
            Some(other) => Err(Error::bad_input(format!(
                "Format error in JSON body: {label}.datatype: unknown variant `{other}`, expected one of `float32`, `float16`, `uint8`"
            ))),
        }
    }
}

/// How dense vector elements are stored. Values are rounded to the type on write, as Qdrant
/// does, and served back rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Float32,
    Float16,
    /// Whole numbers 0..=255 (a float is truncated and clamped, as a Rust `as u8` cast).
    Uint8,
}

impl Datatype {
    pub fn round(self, v: &mut [f32]) {
        match self {
            Datatype::Float32 => {}
            Datatype::Float16 => v.iter_mut().for_each(|x| *x = half::f16::from_f32(*x).to_f32()),
            Datatype::Uint8 => v.iter_mut().for_each(|x| *x = f32::from(*x as u8)),
        }
    }
}

/// `vectors`: one unnamed vector or a map of named ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VectorsConfig {
    Single(VectorParams),
    Named(BTreeMap<String, VectorParams>),
}

impl Default for VectorsConfig {
    fn default() -> Self {
        VectorsConfig::Named(BTreeMap::new())
    }
}

impl VectorsConfig {
    /// All dense vectors by name; the unnamed one is called "".
    pub fn by_name(&self) -> BTreeMap<String, VectorParams> {
        match self {
            VectorsConfig::Single(p) => BTreeMap::from([(DEFAULT_VECTOR.to_string(), p.clone())]),
            VectorsConfig::Named(m) => m.clone(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&VectorParams> {
        match self {
            VectorsConfig::Single(p) if name == DEFAULT_VECTOR => Some(p),
            VectorsConfig::Single(_) => None,
            VectorsConfig::Named(m) => m.get(name),
        }
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut VectorParams> {
        match self {
            VectorsConfig::Single(p) if name == DEFAULT_VECTOR => Some(p),
            VectorsConfig::Single(_) => None,
            VectorsConfig::Named(m) => m.get_mut(name),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseVectorParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HnswConfig {
    pub m: usize,
    pub ef_construct: usize,
    pub full_scan_threshold: usize,
    pub max_indexing_threads: usize,
    #[serde(default)]
    pub on_disk: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HnswConfigDiff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef_construct: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_indexing_threads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_storage: Option<bool>,
}

impl HnswConfig {
    pub fn apply(&self, diff: &HnswConfigDiff) -> HnswConfig {
        HnswConfig {
            m: diff.m.unwrap_or(self.m),
            ef_construct: diff.ef_construct.unwrap_or(self.ef_construct),
            full_scan_threshold: diff.full_scan_threshold.unwrap_or(self.full_scan_threshold),
            max_indexing_threads: diff.max_indexing_threads.unwrap_or(self.max_indexing_threads),
            on_disk: diff.on_disk.or(self.on_disk),
            payload_m: diff.payload_m.or(self.payload_m),
        }
    }
}

/// The most links per node the graph takes (the `hnsw` crate's bound).
const MAX_HNSW_M: usize = 1024;

impl HnswConfigDiff {
    pub fn validate(&self) -> Result<()> {
        for (name, m) in [("m", self.m), ("payload_m", self.payload_m)] {
            if let Some(m) = m.filter(|m| *m > MAX_HNSW_M) {
                return Err(Error::validation(format!(
                    "hnsw_config.{name}: value {m} invalid, must be {MAX_HNSW_M} or smaller"
                )));
            }
        }
        if let Some(ef) = self.ef_construct {
            if ef < 4 {
                return Err(Error::validation(format!(
                    "hnsw_config.ef_construct: value {ef} invalid, must be 4 or larger"
                )));
            }
        }
        if let Some(t) = self.full_scan_threshold {
            if t < 10 {
                return Err(Error::validation(format!(
                    "hnsw_config.full_scan_threshold: value {t} invalid, must be 10 or larger"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizersConfig {
    pub deleted_threshold: f64,
    pub vacuum_min_vector_number: usize,
    pub default_segment_number: usize,
    pub max_segment_size: Option<usize>,
    pub memmap_threshold: Option<usize>,
    pub indexing_threshold: Option<usize>,
    pub flush_interval_sec: u64,
    pub max_optimization_threads: Option<usize>,
}

impl Default for OptimizersConfig {
    fn default() -> Self {
        OptimizersConfig {
            deleted_threshold: 0.2,
            vacuum_min_vector_number: 1000,
            default_segment_number: 0,
            max_segment_size: None,
            memmap_threshold: None,
            indexing_threshold: Some(10_000),
            flush_interval_sec: 5,
            max_optimization_threads: None,
        }
    }
}

/// Partial optimizer settings; `null` fields keep their value. Values are stored for reporting
/// (this node has no segment optimizer; indexing runs continuously in the background).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OptimizersConfigDiff {
    #[serde(default)]
    pub deleted_threshold: Option<f64>,
    #[serde(default)]
    pub vacuum_min_vector_number: Option<usize>,
    #[serde(default)]
    pub default_segment_number: Option<usize>,
    #[serde(default)]
    pub max_segment_size: Option<usize>,
    #[serde(default)]
    pub memmap_threshold: Option<usize>,
    #[serde(default)]
    pub indexing_threshold: Option<usize>,
    #[serde(default)]
    pub flush_interval_sec: Option<u64>,
    #[serde(default)]
    pub max_optimization_threads: Option<usize>,
}

impl OptimizersConfig {
    pub fn apply(&self, d: &OptimizersConfigDiff) -> OptimizersConfig {
        OptimizersConfig {
            deleted_threshold: d.deleted_threshold.unwrap_or(self.deleted_threshold),
            vacuum_min_vector_number: d.vacuum_min_vector_number.unwrap_or(self.vacuum_min_vector_number),
            default_segment_number: d.default_segment_number.unwrap_or(self.default_segment_number),
            max_segment_size: d.max_segment_size.or(self.max_segment_size),
            memmap_threshold: d.memmap_threshold.or(self.memmap_threshold),
            indexing_threshold: d.indexing_threshold.or(self.indexing_threshold),
            flush_interval_sec: d.flush_interval_sec.unwrap_or(self.flush_interval_sec),
            max_optimization_threads: d.max_optimization_threads.or(self.max_optimization_threads),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalConfig {
    pub wal_capacity_mb: usize,
    pub wal_segments_ahead: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            wal_capacity_mb: 32,
            wal_segments_ahead: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WalConfigDiff {
    #[serde(default)]
    pub wal_capacity_mb: Option<usize>,
    #[serde(default)]
    pub wal_segments_ahead: Option<usize>,
    #[serde(default, skip_serializing)]
    pub wal_retain_closed: Option<usize>,
}

impl WalConfig {
    pub fn apply(&self, d: &WalConfigDiff) -> WalConfig {
        WalConfig {
            wal_capacity_mb: d.wal_capacity_mb.unwrap_or(self.wal_capacity_mb),
            wal_segments_ahead: d.wal_segments_ahead.unwrap_or(self.wal_segments_ahead),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionParams {
    pub vectors: VectorsConfig,
    pub shard_number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding_method: Option<String>,
    pub replication_factor: u32,
    pub write_consistency_factor: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_fan_out_factor: Option<u32>,
    pub on_disk_payload: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParams>>,
}

/// The whole persisted configuration of a collection (`config` in collection info).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    pub params: CollectionParams,
    pub hnsw_config: HnswConfig,
    pub optimizer_config: OptimizersConfig,
    pub wal_config: WalConfig,
    pub quantization_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_mode_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl CollectionConfig {
    /// The quantization of one named vector: its own config, else the collection's.
    pub fn quantization_for(&self, vector: &str) -> Option<QuantizationConfig> {
        let own = self
            .params
            .vectors
            .get(vector)
            .and_then(|p| p.quantization_config.as_ref());
        // Stored configs were checked when they were set.
        own.or(self.quantization_config.as_ref())
            .and_then(|q| QuantizationConfig::parse(q, "quantization_config").ok())
    }

    /// Whether a vector's graph records (its links and vector codes) are kept in a mapped
    /// file instead of the heap: the HNSW's `on_disk`, or a quantization whose codes follow
    /// on-disk vectors (see `QuantizationConfig::codes_on_disk`).
    pub fn graph_on_disk(&self, vector: &str) -> bool {
        let params = self.params.vectors.get(vector);
        let quantization = params
            .and_then(|p| p.quantization_config.as_ref())
            .or(self.quantization_config.as_ref());
        let vectors_on_disk = params.and_then(|p| p.on_disk) == Some(true);
        self.hnsw_for(vector).on_disk == Some(true)
            || quantization.is_some_and(|q| QuantizationConfig::codes_on_disk(q, vectors_on_disk))
    }

    /// The HNSW parameters that apply to one named vector (its own overrides win).
    pub fn hnsw_for(&self, vector: &str) -> HnswConfig {
        match self.params.vectors.get(vector).and_then(|p| p.hnsw_config.as_ref()) {
            Some(diff) => self.hnsw_config.apply(diff),
            None => self.hnsw_config.clone(),
        }
    }

    pub fn is_sparse(&self, name: &str) -> bool {
        self.params
            .sparse_vectors
            .as_ref()
            .is_some_and(|m| m.contains_key(name))
    }

    /// Whether queries on sparse vector `name` weigh their terms by IDF (`modifier: "idf"`).
    pub fn sparse_uses_idf(&self, name: &str) -> bool {
        self.params
            .sparse_vectors
            .as_ref()
            .and_then(|m| m.get(name))
            .is_some_and(SparseVectorParams::uses_idf)
    }
}

impl SparseVectorParams {
    pub fn uses_idf(&self) -> bool {
        self.modifier.as_ref().and_then(Value::as_str) == Some("idf")
    }

    /// `modifier` is `"none"` or `"idf"` (Qdrant rejects other variants as JSON errors).
    pub(crate) fn validate_modifier(&self, name: &str) -> Result<()> {
        match &self.modifier {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(m)) if m == "none" || m == "idf" => Ok(()),
            Some(other) => Err(Error::bad_input(format!(
                "Format error in JSON body: sparse_vectors.{name}.modifier: unknown variant `{}`, expected `none` or `idf`",
                other.as_str().map_or_else(|| other.to_string(), str::to_string)
            ))),
        }
    }
}

/// A stored `strict_mode_config` with a changed one merged in field by field (`null` keeps a value).
/// Strict mode limits that must be at least 1 (Qdrant rejects 0 as a validation error).
fn validate_strict_mode(config: &Value) -> Result<()> {
    let at_least_one = |path: String, v: Option<&Value>| match v.and_then(Value::as_u64) {
        Some(0) => Err(Error::validation(format!(
            "{path}: value 0 invalid, must be 1 or larger"
        ))),
        _ => Ok(()),
    };
    for key in [
        "max_query_limit",
        "max_timeout",
        "read_rate_limit",
        "write_rate_limit",
        "max_points_count",
    ] {
        at_least_one(format!("strict_mode_config.{key}"), config.get(key))?;
    }
    for (section, field) in [("multivector_config", "max_vectors"), ("sparse_config", "max_length")] {
        if let Some(Value::Object(per_vector)) = config.get(section) {
            for (name, limits) in per_vector {
                at_least_one(
                    format!("strict_mode_config.{section}.{name}.{field}"),
                    limits.get(field),
                )?;
            }
        }
    }
    Ok(())
}

fn merged_strict_mode(current: Option<&Value>, diff: &Value) -> Value {
    let mut out = current.cloned().unwrap_or_else(|| Value::Object(Default::default()));
    if let (Value::Object(out), Value::Object(diff)) = (&mut out, diff) {
        for (key, value) in diff {
            if !value.is_null() {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}

/// Body of `PUT /collections/{name}`. Fields Qdrant accepts but this node does not act on
/// (quantization, strict mode, ...) are kept and reported back; unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateCollection {
    #[serde(default)]
    pub vectors: Option<VectorsConfig>,
    #[serde(default)]
    pub shard_number: Option<u32>,
    #[serde(default)]
    pub sharding_method: Option<String>,
    #[serde(default)]
    pub replication_factor: Option<u32>,
    #[serde(default)]
    pub write_consistency_factor: Option<u32>,
    #[serde(default)]
    pub read_fan_out_factor: Option<u32>,
    #[serde(default)]
    pub on_disk_payload: Option<bool>,
    #[serde(default)]
    pub hnsw_config: Option<HnswConfigDiff>,
    #[serde(default)]
    pub wal_config: Option<WalConfigDiff>,
    #[serde(default)]
    pub optimizers_config: Option<OptimizersConfigDiff>,
    #[serde(default)]
    pub quantization_config: Option<Value>,
    #[serde(default)]
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParams>>,
    #[serde(default)]
    pub strict_mode_config: Option<Value>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// Body of `PATCH /collections/{name}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdateCollection {
    #[serde(default)]
    pub vectors: Option<BTreeMap<String, VectorParamsDiff>>,
    #[serde(default)]
    pub optimizers_config: Option<OptimizersConfigDiff>,
    #[serde(default)]
    pub params: Option<CollectionParamsDiff>,
    #[serde(default)]
    pub hnsw_config: Option<HnswConfigDiff>,
    #[serde(default)]
    pub quantization_config: Option<Value>,
    #[serde(default)]
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParams>>,
    #[serde(default)]
    pub strict_mode_config: Option<Value>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct VectorParamsDiff {
    #[serde(default)]
    pub hnsw_config: Option<HnswConfigDiff>,
    #[serde(default)]
    pub quantization_config: Option<Value>,
    #[serde(default)]
    pub on_disk: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CollectionParamsDiff {
    #[serde(default)]
    pub replication_factor: Option<u32>,
    #[serde(default)]
    pub write_consistency_factor: Option<u32>,
    #[serde(default)]
    pub read_fan_out_factor: Option<u32>,
    #[serde(default)]
    pub on_disk_payload: Option<bool>,
}

fn at_least_one(field: &str, value: Option<u32>) -> Result<()> {
    match value {
        Some(0) => Err(Error::validation(format!(
            "{field}: value 0 invalid, must be 1 or larger"
        ))),
        _ => Ok(()),
    }
}

/// The quantization config after an update to `diff`: Qdrant's `"Disabled"` removes it.
fn quantization_after(diff: &Value, label: &str) -> Result<Option<Value>> {
    match diff {
        Value::String(s) if s == "Disabled" => Ok(None),
        other => {
            QuantizationConfig::parse(other, label)?;
            Ok(Some(other.clone()))
        }
    }
}

/// Qdrant's collection name rules.
pub fn validate_collection_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(Error::validation(
            "collection name must be between 1 and 255 characters",
        ));
    }
    if let Some(c) = name.chars().find(|c| "<>:\"/\\|?*\0\u{1F}".contains(*c)) {
        return Err(Error::validation(format!(
            "collection name cannot contain \"{c}\" char"
        )));
    }
    if name == "." || name == ".." || name.starts_with('.') {
        return Err(Error::validation("collection name cannot start with a dot"));
    }
    Ok(())
}

impl CreateCollection {
    /// Checks the request and fills every default, giving the config to persist.
    /// `default_shards` is 1 on a standalone node and the number of peers in a cluster.
    pub fn into_config(self, settings: &Settings, default_shards: u32) -> Result<CollectionConfig> {
        at_least_one("shard_number", self.shard_number)?;
        at_least_one("replication_factor", self.replication_factor)?;
        at_least_one("write_consistency_factor", self.write_consistency_factor)?;
        let vectors = self.vectors.unwrap_or_default();
        for (name, p) in vectors.by_name() {
            let label = if name.is_empty() {
                "vectors".to_string()
            } else {
                format!("vectors.{name}")
            };
            if p.size == 0 || p.size > 65_536 {
                return Err(Error::validation(format!(
                    "{label}.size: value {} invalid, must be from 1 to 65536",
                    p.size
                )));
            }
            if let Some(h) = &p.hnsw_config {
                h.validate()?;
            }
            p.validate_storage(&label)?;
            if let Some(q) = &p.quantization_config {
                QuantizationConfig::parse(q, &format!("{label}.quantization_config"))?;
            }
        }
        if let Some(q) = &self.quantization_config {
            QuantizationConfig::parse(q, "quantization_config")?;
        }
        if let Some(h) = &self.hnsw_config {
            h.validate()?;
        }
        if let Some(strict) = &self.strict_mode_config {
            validate_strict_mode(strict)?;
        }
        if let Some(sparse) = &self.sparse_vectors {
            for (name, p) in sparse {
                p.validate_modifier(name)?;
            }
            if let Some(clash) = sparse.keys().find(|k| vectors.get(k).is_some()) {
                return Err(Error::bad_input(format!(
                    "vector name `{clash}` is used for both a dense and a sparse vector"
                )));
            }
        }
        let d = &settings.storage.hnsw_index;
        let base_hnsw = HnswConfig {
            m: d.m,
            ef_construct: d.ef_construct,
            full_scan_threshold: d.full_scan_threshold,
            max_indexing_threads: d.max_indexing_threads,
            on_disk: Some(d.on_disk),
            payload_m: None,
        };
        Ok(CollectionConfig {
            params: CollectionParams {
                vectors,
                shard_number: self.shard_number.unwrap_or(default_shards.max(1)),
                sharding_method: self.sharding_method,
                replication_factor: self
                    .replication_factor
                    .unwrap_or(settings.storage.collection.replication_factor),
                write_consistency_factor: self
                    .write_consistency_factor
                    .unwrap_or(settings.storage.collection.write_consistency_factor),
                read_fan_out_factor: self.read_fan_out_factor,
                on_disk_payload: self.on_disk_payload.unwrap_or(settings.storage.on_disk_payload),
                sparse_vectors: self.sparse_vectors,
            },
            hnsw_config: match &self.hnsw_config {
                Some(diff) => base_hnsw.apply(diff),
                None => base_hnsw,
            },
            optimizer_config: OptimizersConfig::default().apply(&self.optimizers_config.unwrap_or_default()),
            wal_config: WalConfig::default().apply(&self.wal_config.unwrap_or_default()),
            quantization_config: self.quantization_config,
            strict_mode_config: self.strict_mode_config,
            metadata: self.metadata,
        })
    }
}

impl UpdateCollection {
    /// Applies the update to a copy of `config`. A change of a vector's HNSW parameters,
    /// quantization or `on_disk` rebuilds its indexes (see `Collection::set_config`).
    pub fn apply_to(&self, config: &CollectionConfig) -> Result<CollectionConfig> {
        let mut next = config.clone();
        if let Some(vectors) = &self.vectors {
            for (name, diff) in vectors {
                let params = next
                    .params
                    .vectors
                    .get_mut(name)
                    .ok_or_else(|| Error::bad_input(format!("Not existing vector name error: {name}")))?;
                if let Some(h) = &diff.hnsw_config {
                    h.validate()?;
                    params.hnsw_config = Some(h.clone());
                }
                if let Some(q) = &diff.quantization_config {
                    params.quantization_config = quantization_after(q, &format!("vectors.{name}.quantization_config"))?;
                }
                if diff.on_disk.is_some() {
                    params.on_disk = diff.on_disk;
                }
            }
        }
        if let Some(o) = &self.optimizers_config {
            next.optimizer_config = next.optimizer_config.apply(o);
        }
        if let Some(p) = &self.params {
            at_least_one("replication_factor", p.replication_factor)?;
            at_least_one("write_consistency_factor", p.write_consistency_factor)?;
            if let Some(r) = p.replication_factor {
                next.params.replication_factor = r;
            }
            if let Some(w) = p.write_consistency_factor {
                next.params.write_consistency_factor = w;
            }
            if p.read_fan_out_factor.is_some() {
                next.params.read_fan_out_factor = p.read_fan_out_factor;
            }
            if let Some(o) = p.on_disk_payload {
                next.params.on_disk_payload = o;
            }
        }
        if let Some(h) = &self.hnsw_config {
            h.validate()?;
            next.hnsw_config = next.hnsw_config.apply(h);
        }
        if let Some(q) = &self.quantization_config {
            next.quantization_config = quantization_after(q, "quantization_config")?;
        }
        if let Some(sparse) = &self.sparse_vectors {
            let map = next.params.sparse_vectors.get_or_insert_with(BTreeMap::new);
            for (name, p) in sparse {
                if !map.contains_key(name) {
                    return Err(Error::bad_input(format!("Not existing vector name error: {name}")));
                }
                p.validate_modifier(name)?;
                map.insert(name.clone(), p.clone());
            }
        }
        if let Some(diff) = &self.strict_mode_config {
            validate_strict_mode(diff)?;
            // Field by field: a limit left out (or null) keeps its value, as in Qdrant.
            next.strict_mode_config = Some(merged_strict_mode(next.strict_mode_config.as_ref(), diff));
        }
        if let Some(meta) = &self.metadata {
            let mut merged = next.metadata.take().unwrap_or(Value::Object(Default::default()));
            crate::settings::merge(&mut merged, meta.clone());
            next.metadata = Some(merged);
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(json: &str) -> Result<CollectionConfig> {
        serde_json::from_str::<CreateCollection>(json)
            .unwrap()
            .into_config(&Settings::default(), 1)
    }

    #[test]
    fn fills_defaults_and_accepts_client_extras() {
        let c = create(
            r#"{"vectors": {"size": 4, "distance": "Dot"}, "sparse_vectors": {"sparse-text": {}},
                "optimizers_config": {"indexing_threshold": 20000, "default_segment_number": null},
                "read_fan_out_factor": null, "strict_mode_config": null, "on_disk_payload": null,
                "sharding_method": null, "init_from": null, "something_new": 1}"#,
        )
        .unwrap();
        assert_eq!(c.params.shard_number, 1);
        assert_eq!(c.hnsw_config.m, 16);
        assert_eq!(c.optimizer_config.indexing_threshold, Some(20000));
        assert!(c.is_sparse("sparse-text"));
        assert_eq!(c.params.vectors.get("").unwrap().size, 4);
    }

    #[test]
    fn rejects_invalid_values() {
        assert!(matches!(
            create(r#"{"vectors": {"size": 0, "distance": "Dot"}}"#),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            create(r#"{"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 0}"#),
            Err(Error::Validation(_))
        ));
        assert!(serde_json::from_str::<CreateCollection>(r#"{"vectors": {"size": 4, "distance": "Foo"}}"#).is_err());
        assert!(validate_collection_name("a/b").is_err());
        assert!(validate_collection_name("").is_err());
        assert!(validate_collection_name("ok_name-1").is_ok());
    }

    #[test]
    fn update_applies_diffs() {
        let c = create(r#"{"vectors": {"a": {"size": 4, "distance": "Cosine"}}}"#).unwrap();
        let u: UpdateCollection = serde_json::from_str(
            r#"{"vectors": {"a": {"hnsw_config": {"m": 32}}}, "optimizers_config": {"indexing_threshold": 1},
                "params": {"replication_factor": 2}}"#,
        )
        .unwrap();
        let next = u.apply_to(&c).unwrap();
        assert_eq!(next.hnsw_for("a").m, 32);
        assert_eq!(next.params.replication_factor, 2);
        assert_eq!(next.optimizer_config.indexing_threshold, Some(1));
        let quantized: UpdateCollection =
            serde_json::from_str(r#"{"quantization_config": {"scalar": {"type": "int8"}}}"#).unwrap();
        let next = quantized.apply_to(&next).unwrap();
        assert!(next.quantization_config.is_some());
        let disabled: UpdateCollection = serde_json::from_str(r#"{"quantization_config": "Disabled"}"#).unwrap();
        assert_eq!(disabled.apply_to(&next).unwrap().quantization_config, None);
        let bad: UpdateCollection = serde_json::from_str(r#"{"vectors": {"zz": {"on_disk": true}}}"#).unwrap();
        assert!(bad.apply_to(&c).is_err());
    }

    #[test]
    fn merge_keeps_fields_the_diff_leaves_out() {
        let current = serde_json::json!({"enabled": true, "max_query_limit": 5});
        let next = merged_strict_mode(
            Some(&current),
            &serde_json::json!({"max_timeout": 3, "max_query_limit": null}),
        );
        assert_eq!(
            next,
            serde_json::json!({"enabled": true, "max_query_limit": 5, "max_timeout": 3})
        );
    }
}
