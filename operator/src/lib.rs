//! Kubernetes operator for `QdrantCluster` (`qdrant.dev/v1alpha1`): a Qdrant-compatible
//! distributed vector database run as a StatefulSet, scaled and upgraded safely through the
//! node's cluster REST API.
//!
//! Layout: `crd` (types, the only source of the CRD), `validate`, `build/` (pure builders),
//! `cluster_api` (node REST API trait, HTTP client, fake), `snapshot` (observation of the
//! cluster), `planner` (pure next-step decision), `status`, `reconcile` (the controller),
//! `lease` (leader election), `metrics` and `server` (`/metrics`, `/healthz`).

pub mod backup;
pub mod backup_controller;
pub mod build;
pub mod cluster_api;
pub mod crd;
pub mod crd_backup;
pub mod crd_formats;
pub mod error;
pub mod jobs;
pub mod lease;
pub mod metrics;
pub mod planner;
pub mod reconcile;
pub mod restore;
pub mod server;
pub mod snapshot;
pub mod status;
pub mod validate;

pub use crd::{QdrantCluster, QdrantClusterSpec, QdrantClusterStatus};
pub use error::Error;
