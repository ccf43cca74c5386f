//! The operator's error type (one enum at the crate boundary).

use crate::build::BuildError;
use crate::cluster_api::ClusterApiError;

/// Everything that can fail in a reconcile or in the operator's plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("cluster API: {0}")]
    ClusterApi(#[from] ClusterApiError),
    #[error("object has no {0}")]
    MissingObjectKey(&'static str),
    #[error("leader election: {0}")]
    Lease(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A short label for the failures metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Build(_) => "build",
            Error::ClusterApi(_) => "cluster_api",
            Error::MissingObjectKey(_) => "missing_key",
            Error::Lease(_) => "lease",
            Error::Io(_) => "io",
        }
    }
}
