//! Named vectors added to or removed from an existing collection
//! (`PUT`/`DELETE /collections/{c}/vectors/{name}`): the request body and what each does to the
//! collection's configuration. Only the properties that define a vector space are given; index
//! and storage settings come from the collection's defaults.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::collection::{CollectionConfig, SparseVectorParams, VectorParams, VectorsConfig};
use super::vector::{Distance, DEFAULT_VECTOR};
use crate::error::{Error, Result};

/// Qdrant's largest dense vector size.
const MAX_DIM: u64 = 65536;

/// `{"dense": {...}}` or `{"sparse": {...}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum VectorNameConfig {
    Dense(DenseVectorConfig),
    Sparse(SparseVectorConfig),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DenseVectorConfig {
    pub size: u64,
    pub distance: Distance,
    #[serde(default)]
    pub multivector_config: Option<Value>,
    #[serde(default)]
    pub datatype: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SparseVectorConfig {
    #[serde(default)]
    pub modifier: Option<Value>,
    #[serde(default)]
    pub datatype: Option<String>,
}

impl DenseVectorConfig {
    fn params(&self) -> VectorParams {
        VectorParams {
            size: self.size,
            distance: self.distance,
            hnsw_config: None,
            quantization_config: None,
            on_disk: None,
            datatype: self.datatype.clone(),
            multivector_config: self.multivector_config.clone(),
        }
    }

    /// Whether `existing` defines the same space (tunable settings are not compared).
    fn same_space(&self, existing: &VectorParams) -> bool {
        existing.size == self.size
            && existing.distance == self.distance
            && existing.multivector_config == self.multivector_config
            && existing.datatype.as_deref().unwrap_or("float32") == self.datatype.as_deref().unwrap_or("float32")
    }
}

impl SparseVectorConfig {
    fn params(&self) -> SparseVectorParams {
        SparseVectorParams {
            index: self.datatype.as_ref().map(|d| serde_json::json!({ "datatype": d })),
            modifier: self.modifier.clone(),
        }
    }

    fn same_space(&self, existing: &SparseVectorParams) -> bool {
        let modifier = |m: Option<&Value>| m.and_then(Value::as_str).unwrap_or("none").to_string();
        let datatype = existing
            .index
            .as_ref()
            .and_then(|i| i.get("datatype"))
            .and_then(Value::as_str);
        modifier(existing.modifier.as_ref()) == modifier(self.modifier.as_ref())
            && datatype.unwrap_or("float32") == self.datatype.as_deref().unwrap_or("float32")
    }
}

/// What defines one vector space: searches and stored values depend on it, tuning does not.
#[derive(Debug, Clone, PartialEq)]
pub enum Space {
    Dense {
        size: u64,
        distance: Distance,
        multivector: Option<Value>,
        datatype: Option<String>,
    },
    Sparse,
}

/// The vector spaces of `config`, by name.
pub fn spaces(config: &CollectionConfig) -> BTreeMap<String, Space> {
    let mut out: BTreeMap<String, Space> = config
        .params
        .vectors
        .by_name()
        .into_iter()
        .map(|(name, p)| {
            let space = Space::Dense {
                size: p.size,
                distance: p.distance,
                multivector: p.multivector_config,
                datatype: p.datatype,
            };
            (name, space)
        })
        .collect();
    for name in config.params.sparse_vectors.iter().flat_map(|m| m.keys()) {
        out.insert(name.clone(), Space::Sparse);
    }
    out
}

/// `config` with vector `name` added; `None` when an identical vector already exists (creating
/// it again changes nothing, as in Qdrant).
pub fn with_vector(config: &CollectionConfig, name: &str, new: &VectorNameConfig) -> Result<Option<CollectionConfig>> {
    let mut next = config.clone();
    match new {
        VectorNameConfig::Dense(dense) => {
            if dense.size == 0 || dense.size > MAX_DIM {
                return Err(Error::validation(format!(
                    "dense.size: value {} invalid, must be from 1 to {MAX_DIM}",
                    dense.size
                )));
            }
            let params = dense.params();
            params.validate_storage("dense")?;
            if let Some(existing) = config.params.vectors.get(name) {
                return if dense.same_space(existing) {
                    Ok(None)
                } else {
                    Err(Error::bad_input(format!(
                        "Vector `{name}` already exists with a different configuration"
                    )))
                };
            }
            if config.is_sparse(name) {
                return Err(Error::bad_input(format!(
                    "Vector `{name}` already exists as a sparse vector"
                )));
            }
            insert_dense(&mut next.params.vectors, name, params);
        }
        VectorNameConfig::Sparse(sparse) => {
            let params = sparse.params();
            params.validate_modifier(name)?;
            let sparse_map = config.params.sparse_vectors.as_ref();
            if let Some(existing) = sparse_map.and_then(|m| m.get(name)) {
                return if sparse.same_space(existing) {
                    Ok(None)
                } else {
                    Err(Error::bad_input(format!(
                        "Sparse vector `{name}` already exists with a different configuration"
                    )))
                };
            }
            if config.params.vectors.get(name).is_some() {
                return Err(Error::bad_input(format!(
                    "Vector `{name}` already exists as a dense vector"
                )));
            }
            next.params
                .sparse_vectors
                .get_or_insert_with(BTreeMap::new)
                .insert(name.to_string(), params);
        }
    }
    Ok(Some(next))
}

/// `config` without vector `name` (dense or sparse).
pub fn without_vector(config: &CollectionConfig, name: &str) -> Result<CollectionConfig> {
    let mut next = config.clone();
    let removed_dense = match &mut next.params.vectors {
        VectorsConfig::Single(_) if name == DEFAULT_VECTOR => {
            next.params.vectors = VectorsConfig::Named(BTreeMap::new());
            true
        }
        VectorsConfig::Single(_) => false,
        VectorsConfig::Named(map) => map.remove(name).is_some(),
    };
    let removed_sparse = next
        .params
        .sparse_vectors
        .as_mut()
        .is_some_and(|m| m.remove(name).is_some());
    if !removed_dense && !removed_sparse {
        return Err(Error::bad_input(format!("Not existing vector name error: {name}")));
    }
    Ok(next)
}

/// Adds a dense vector; an unnamed vector becomes the one named "" next to it (as Qdrant does).
fn insert_dense(vectors: &mut VectorsConfig, name: &str, params: VectorParams) {
    let mut map = match std::mem::take(vectors) {
        VectorsConfig::Single(existing) => BTreeMap::from([(DEFAULT_VECTOR.to_string(), existing)]),
        VectorsConfig::Named(map) => map,
    };
    map.insert(name.to_string(), params);
    *vectors = VectorsConfig::Named(map);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::collection::CreateCollection;
    use crate::settings::Settings;

    fn config(body: &str) -> CollectionConfig {
        let create: CreateCollection = serde_json::from_str(body).unwrap();
        create.into_config(&Settings::default(), 1).unwrap()
    }

    fn parse(body: &str) -> VectorNameConfig {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn adds_dense_and_sparse_vectors() {
        let c = config(r#"{"vectors": {"size": 2, "distance": "Dot"}}"#);
        let dense = parse(r#"{"dense": {"size": 3, "distance": "Cosine"}}"#);
        let next = with_vector(&c, "img", &dense).unwrap().unwrap();
        assert_eq!(next.params.vectors.get("").unwrap().size, 2);
        assert_eq!(next.params.vectors.get("img").unwrap().size, 3);
        // the same again is a no-op; a different one is refused
        assert!(with_vector(&next, "img", &dense).unwrap().is_none());
        let other = parse(r#"{"dense": {"size": 4, "distance": "Cosine"}}"#);
        assert!(with_vector(&next, "img", &other).is_err());

        let sparse = parse(r#"{"sparse": {"modifier": "idf"}}"#);
        let next = with_vector(&next, "bm", &sparse).unwrap().unwrap();
        assert!(next.sparse_uses_idf("bm"));
        assert!(with_vector(&next, "bm", &dense).is_err());
        assert!(with_vector(&next, "img", &sparse).is_err());
    }

    #[test]
    fn removes_vectors() {
        let c = config(r#"{"vectors": {"size": 2, "distance": "Dot"}, "sparse_vectors": {"s": {}}}"#);
        let next = without_vector(&c, "").unwrap();
        assert!(next.params.vectors.get("").is_none());
        let next = without_vector(&next, "s").unwrap();
        assert!(!next.is_sparse("s"));
        assert!(without_vector(&next, "s").is_err());
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(serde_json::from_str::<VectorNameConfig>(r#"{"dense": {"size": 2}}"#).is_err());
        assert!(serde_json::from_str::<VectorNameConfig>(r#"{"other": {}}"#).is_err());
        let c = config(r#"{"vectors": {"size": 2, "distance": "Dot"}}"#);
        assert!(with_vector(&c, "x", &parse(r#"{"dense": {"size": 0, "distance": "Dot"}}"#)).is_err());
        assert!(with_vector(&c, "x", &parse(r#"{"sparse": {"modifier": "bm25"}}"#)).is_err());
    }
}
