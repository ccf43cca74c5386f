//! Vectors: gRPC `Vector`, `Vectors`/`NamedVectors` (points) and `VectorInput` (queries) into
//! model vectors. Both the current `vector` oneof and the deprecated `data`/`indices` fields are
//! accepted, as clients send either.

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::vector::Vector as VectorKind;
use qdrant_client::qdrant::vector_input::Variant;
use qdrant_client::qdrant::vectors::VectorsOptions;

use super::point::point_id;
use crate::error::{Error, Result};
use crate::model::query::VectorOrId;
use crate::model::vector::{NamedVectors, SparseVector, Vector, VectorInput, DEFAULT_VECTOR};

fn inference_unsupported(what: &str) -> Error {
    Error::bad_input(format!(
        "inference ({what} instead of a vector) is not supported by this node"
    ))
}

fn multi(m: grpc::MultiDenseVector) -> Vec<Vec<f32>> {
    m.vectors.into_iter().map(|d| d.data).collect()
}

/// The deprecated flat multivector form: `data` holds `count` rows of equal size.
fn flat_multi(data: Vec<f32>, count: u32) -> Result<Vec<Vec<f32>>> {
    let count = count as usize;
    if count == 0 || data.len() % count != 0 {
        return Err(Error::bad_input(format!(
            "multivector data of {} values cannot be split into {count} vectors",
            data.len()
        )));
    }
    Ok(data.chunks(data.len() / count).map(<[f32]>::to_vec).collect())
}

fn sparse(s: grpc::SparseVector) -> SparseVector {
    SparseVector {
        indices: s.indices,
        values: s.values,
    }
}

/// One vector value of a point or a search.
#[allow(deprecated)]
pub fn vector(v: grpc::Vector) -> Result<Vector> {
    let grpc::Vector {
        data,
        indices,
        vectors_count,
        vector,
    } = v;
    match vector {
        Some(VectorKind::Dense(d)) => Ok(Vector::Dense(d.data)),
        Some(VectorKind::Sparse(s)) => Ok(Vector::Sparse(sparse(s))),
        Some(VectorKind::MultiDense(m)) => Ok(Vector::MultiDense(multi(m))),
        Some(VectorKind::Document(_)) => Err(inference_unsupported("a document")),
        Some(VectorKind::Image(_)) => Err(inference_unsupported("an image")),
        Some(VectorKind::Object(_)) => Err(inference_unsupported("an object")),
        // The deprecated form: `indices` makes it sparse, `vectors_count` multi-dense.
        None => match (indices, vectors_count) {
            (Some(indices), _) => Ok(Vector::Sparse(SparseVector {
                indices: indices.data,
                values: data,
            })),
            (None, Some(count)) => flat_multi(data, count).map(Vector::MultiDense),
            (None, None) => Ok(Vector::Dense(data)),
        },
    }
}

/// A point's vectors: one unnamed vector or a map of named ones. Absent means no vectors.
pub fn vectors(v: Option<grpc::Vectors>) -> Result<VectorInput> {
    match v.and_then(|v| v.vectors_options) {
        None => Ok(VectorInput::Named(NamedVectors::new())),
        Some(VectorsOptions::Vector(v)) => Ok(match vector(v)? {
            Vector::Dense(d) => VectorInput::Default(d),
            Vector::MultiDense(m) => VectorInput::DefaultMulti(m),
            sparse => VectorInput::Named(NamedVectors::from([(DEFAULT_VECTOR.to_string(), sparse)])),
        }),
        Some(VectorsOptions::Vectors(named)) => named
            .vectors
            .into_iter()
            .map(|(name, v)| vector(v).map(|v| (name, v)))
            .collect::<Result<NamedVectors>>()
            .map(VectorInput::Named),
    }
}

/// A vector given as a recommendation example (legacy recommend): dense, sparse or multi.
pub fn example(v: grpc::Vector) -> Result<VectorOrId> {
    Ok(match vector(v)? {
        Vector::Dense(d) => VectorOrId::Dense(d),
        Vector::Sparse(s) => VectorOrId::Sparse(s),
        Vector::MultiDense(m) => VectorOrId::MultiDense(m),
    })
}

/// A query vector of the universal query API: dense, sparse, multi or an existing point's id.
pub fn vector_input(v: grpc::VectorInput) -> Result<VectorOrId> {
    match v.variant {
        None => Err(Error::bad_input(
            "query vector is empty: set a dense or sparse vector or a point id",
        )),
        Some(Variant::Id(id)) => point_id(id).map(VectorOrId::Id),
        Some(Variant::Dense(d)) => Ok(VectorOrId::Dense(d.data)),
        Some(Variant::Sparse(s)) => Ok(VectorOrId::Sparse(sparse(s))),
        Some(Variant::MultiDense(m)) => Ok(VectorOrId::MultiDense(multi(m))),
        Some(Variant::Document(_)) => Err(inference_unsupported("a document")),
        Some(Variant::Image(_)) => Err(inference_unsupported("an image")),
        Some(Variant::Object(_)) => Err(inference_unsupported("an object")),
    }
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::PointId;

    fn dense(data: Vec<f32>) -> grpc::Vector {
        grpc::Vector {
            vector: Some(VectorKind::Dense(grpc::DenseVector { data })),
            ..Default::default()
        }
    }

    #[test]
    fn dense_in_both_forms() {
        assert_eq!(vector(dense(vec![1.0, 2.0])).unwrap(), Vector::Dense(vec![1.0, 2.0]));
        let old = grpc::Vector {
            data: vec![3.0],
            ..Default::default()
        };
        assert_eq!(vector(old).unwrap(), Vector::Dense(vec![3.0]));
    }

    #[test]
    fn sparse_in_both_forms() {
        let new = grpc::Vector {
            vector: Some(VectorKind::Sparse(grpc::SparseVector {
                indices: vec![7, 1],
                values: vec![0.5, 0.25],
            })),
            ..Default::default()
        };
        let expected = Vector::Sparse(SparseVector {
            indices: vec![7, 1],
            values: vec![0.5, 0.25],
        });
        assert_eq!(vector(new).unwrap(), expected);
        let old = grpc::Vector {
            data: vec![0.5, 0.25],
            indices: Some(grpc::SparseIndices { data: vec![7, 1] }),
            ..Default::default()
        };
        assert_eq!(vector(old).unwrap(), expected);
    }

    #[test]
    fn multivectors_in_both_forms_and_inference_errors() {
        let rows = vec![
            grpc::DenseVector { data: vec![1.0, 2.0] },
            grpc::DenseVector { data: vec![3.0, 4.0] },
        ];
        let multi = grpc::Vector {
            vector: Some(VectorKind::MultiDense(grpc::MultiDenseVector { vectors: rows })),
            ..Default::default()
        };
        let expected = Vector::MultiDense(vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert_eq!(vector(multi).unwrap(), expected);
        let old_multi = grpc::Vector {
            data: vec![1.0, 2.0, 3.0, 4.0],
            vectors_count: Some(2),
            ..Default::default()
        };
        assert_eq!(vector(old_multi).unwrap(), expected);
        let uneven = grpc::Vector {
            data: vec![1.0, 2.0, 3.0],
            vectors_count: Some(2),
            ..Default::default()
        };
        assert!(matches!(vector(uneven), Err(Error::BadInput(_))));
        let doc = grpc::VectorInput {
            variant: Some(Variant::Document(grpc::Document::default())),
        };
        assert!(vector_input(doc).unwrap_err().to_string().contains("inference"));
    }

    #[test]
    fn point_vectors_default_named_and_absent() {
        let one = grpc::Vectors {
            vectors_options: Some(VectorsOptions::Vector(dense(vec![1.0]))),
        };
        assert_eq!(vectors(Some(one)).unwrap(), VectorInput::Default(vec![1.0]));
        let named = grpc::Vectors {
            vectors_options: Some(VectorsOptions::Vectors(grpc::NamedVectors {
                vectors: HashMap::from([("a".to_string(), dense(vec![1.0])), ("b".to_string(), dense(vec![2.0]))]),
            })),
        };
        let VectorInput::Named(map) = vectors(Some(named)).unwrap() else {
            panic!("expected named vectors")
        };
        assert_eq!(map["b"], Vector::Dense(vec![2.0]));
        assert_eq!(vectors(None).unwrap(), VectorInput::Named(NamedVectors::new()));
    }

    #[test]
    fn query_inputs() {
        let id = grpc::VectorInput {
            variant: Some(Variant::Id(grpc::PointId::from(5u64))),
        };
        assert_eq!(vector_input(id).unwrap(), VectorOrId::Id(PointId::Num(5)));
        let d = grpc::VectorInput {
            variant: Some(Variant::Dense(grpc::DenseVector { data: vec![0.5] })),
        };
        assert_eq!(vector_input(d).unwrap(), VectorOrId::Dense(vec![0.5]));
        assert!(vector_input(grpc::VectorInput { variant: None }).is_err());
    }
}
