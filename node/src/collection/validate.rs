//! Checks a write against the collection's vector configuration and puts vectors into their
//! stored form (cosine vectors normalised, sparse vectors sorted by index).

use crate::error::{Error, Result};
use crate::model::collection::{CollectionConfig, Datatype, VectorParams};
use crate::model::operations::{PointOperation, Selector};
use crate::model::vector::{check_finite, NamedVectors, Vector};

/// Validates and normalises one point's vectors.
pub fn prepare_vectors(config: &CollectionConfig, vectors: NamedVectors) -> Result<NamedVectors> {
    vectors
        .into_iter()
        .map(|(name, v)| prepare_vector(config, &name, v).map(|v| (name, v)))
        .collect()
}

fn vector_label(name: &str) -> String {
    if name.is_empty() {
        "default vector".to_string()
    } else {
        format!("vector `{name}`")
    }
}

/// Puts a checked dense vector (or multivector row) of a write into the form it is stored in:
/// normalised for Cosine, then rounded to the `datatype`. Qdrant keeps uint8 vectors as given
/// (and computes the full cosine): the shard normalises those itself and keeps the norm, so the
/// integers written are the ones served back.
pub fn to_stored_form(params: &VectorParams, v: &mut [f32]) {
    let datatype = params.datatype();
    if datatype != Datatype::Uint8 {
        params.distance.preprocess(v);
    }
    datatype.round(v);
}

/// A query vector in the form it is compared in: rounded to the `datatype` as Qdrant converts
/// queries to the storage type, and normalised for Cosine.
pub fn to_query_form(params: &VectorParams, v: &mut [f32]) {
    let datatype = params.datatype();
    if datatype == Datatype::Uint8 {
        datatype.round(v);
        params.distance.preprocess(v);
    } else {
        params.distance.preprocess(v);
        datatype.round(v);
    }
}

fn dense_params<'a>(config: &'a CollectionConfig, name: &str) -> Result<&'a VectorParams> {
    config.params.vectors.get(name).ok_or_else(|| {
        if config.is_sparse(name) {
            Error::bad_input(format!(
                "Conversion between sparse and regular vectors failed: {} is sparse",
                vector_label(name)
            ))
        } else {
            Error::bad_input(format!("Not existing vector name error: {name}"))
        }
    })
}

/// A dense vector (or multivector row) has the size of `params` and only finite values.
pub(super) fn check_dense(params: &VectorParams, v: &[f32]) -> Result<()> {
    if v.len() as u64 != params.size {
        return Err(Error::bad_input(format!(
            "Vector dimension error: expected dim: {}, got {}",
            params.size,
            v.len()
        )));
    }
    check_finite(v)
}

fn prepare_vector(config: &CollectionConfig, name: &str, v: Vector) -> Result<Vector> {
    match v {
        Vector::Dense(mut d) => {
            let params = dense_params(config, name)?;
            check_dense(params, &d)?;
            if params.is_multi() {
                // A single vector written to a multivector is a multivector of one row.
                to_stored_form(params, &mut d);
                return Ok(Vector::MultiDense(vec![d]));
            }
            to_stored_form(params, &mut d);
            Ok(Vector::Dense(d))
        }
        Vector::MultiDense(mut rows) => {
            let params = dense_params(config, name)?;
            if !params.is_multi() {
                return Err(Error::bad_input(format!(
                    "Conversion between multi and regular vectors failed: {} is not a multivector",
                    vector_label(name)
                )));
            }
            if rows.is_empty() {
                return Err(Error::bad_input("multivector must not be empty"));
            }
            for row in &mut rows {
                check_dense(params, row)?;
                to_stored_form(params, row);
            }
            Ok(Vector::MultiDense(rows))
        }
        Vector::Sparse(s) => {
            if !config.is_sparse(name) {
                return Err(Error::bad_input(if config.params.vectors.get(name).is_some() {
                    format!(
                        "Conversion between sparse and regular vectors failed: {} is dense",
                        vector_label(name)
                    )
                } else {
                    format!("Not existing vector name error: {name}")
                }));
            }
            s.validate()?;
            Ok(Vector::Sparse(s.sorted()))
        }
    }
}

/// Validates every vector in a write and returns it in stored form.
pub fn prepare(config: &CollectionConfig, op: PointOperation) -> Result<PointOperation> {
    if let Some(Selector::Filter(f)) = op.selector() {
        f.validate()?;
    }
    Ok(match op {
        PointOperation::Upsert(points, conditions) => {
            if let Some(f) = &conditions.filter {
                f.validate()?;
            }
            let points = points
                .into_iter()
                .map(|mut p| {
                    let named = prepare_vectors(config, p.vector.into_named())?;
                    p.vector = crate::model::vector::VectorInput::Named(named);
                    Ok(p)
                })
                .collect::<Result<_>>()?;
            PointOperation::Upsert(points, conditions)
        }
        PointOperation::UpdateVectors(updates, filter) => {
            if let Some(f) = &filter {
                f.validate()?;
            }
            let updates = updates
                .into_iter()
                .map(|(id, v)| prepare_vectors(config, v).map(|v| (id, v)))
                .collect::<Result<_>>()?;
            PointOperation::UpdateVectors(updates, filter)
        }
        PointOperation::DeleteVectors { selector, names } => {
            if let Some(unknown) = names
                .iter()
                .find(|n| config.params.vectors.get(n).is_none() && !config.is_sparse(n))
            {
                return Err(Error::bad_input(format!("Not existing vector name error: {unknown}")));
            }
            PointOperation::DeleteVectors { selector, names }
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::collection::CreateCollection;
    use crate::settings::Settings;

    fn config() -> CollectionConfig {
        serde_json::from_str::<CreateCollection>(
            r#"{"vectors": {"size": 2, "distance": "Cosine"}, "sparse_vectors": {"s": {}}}"#,
        )
        .unwrap()
        .into_config(&Settings::default(), 1)
        .unwrap()
    }

    #[test]
    fn normalises_and_rejects() {
        let c = config();
        let ok = prepare_vectors(&c, NamedVectors::from([("".into(), Vector::Dense(vec![3.0, 4.0]))])).unwrap();
        assert_eq!(ok[""], Vector::Dense(vec![0.6, 0.8]));
        let wrong_dim = prepare_vectors(&c, NamedVectors::from([("".into(), Vector::Dense(vec![1.0]))]));
        assert!(wrong_dim.unwrap_err().to_string().contains("expected dim: 2, got 1"));
        let nan = prepare_vectors(
            &c,
            NamedVectors::from([("".into(), Vector::Dense(vec![f32::NAN, 1.0]))]),
        );
        assert!(nan.is_err());
        let unknown = prepare_vectors(&c, NamedVectors::from([("x".into(), Vector::Dense(vec![1.0, 1.0]))]));
        assert!(unknown.unwrap_err().to_string().contains("Not existing vector name"));
        let dense_as_sparse = prepare_vectors(&c, NamedVectors::from([("s".into(), Vector::Dense(vec![1.0, 1.0]))]));
        assert!(dense_as_sparse.is_err());
    }
}
