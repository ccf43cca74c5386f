//! Pure builders: a `QdrantCluster` (plus a few planner decisions) in, Kubernetes objects out.
//! Nothing here performs I/O, so every object is covered by golden tests.

pub mod backup_job;
pub mod config;
pub mod configmap;
pub mod network_policy;
pub mod pdb;
pub mod service;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::crd::{QdrantCluster, P2P_PORT};

/// Field manager of every server-side apply, and the `managed-by` label value.
pub const MANAGER: &str = "qdrant-operator";
/// Name of the volume claim template (PVCs are `storage-<name>-<ordinal>`).
pub const STORAGE_VOLUME: &str = "storage";
/// Pod template annotation carrying the checksum of config.yaml.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "qdrant.dev/config-checksum";
/// Pod template annotation carrying the checksum of the API key / TLS Secret contents.
pub const SECRET_CHECKSUM_ANNOTATION: &str = "qdrant.dev/secret-checksum";
/// Annotation on the QdrantCluster (copied to the pod template) that requests a gated restart.
pub const RESTARTED_AT_ANNOTATION: &str = "qdrant.dev/restarted-at";

/// Errors of the builders: only inputs that cannot be represented.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the QdrantCluster has no {0}")]
    MissingMetadata(&'static str),
    #[error("cannot render config.yaml: {0}")]
    RenderConfig(#[from] serde_yaml::Error),
}

/// Decisions of the reconciler that shape the objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInputs {
    /// StatefulSet replicas (the planner moves this one step at a time).
    pub replicas: i32,
    /// p2p URIs pod 0 may join through if it starts with an empty volume. Empty until the cluster
    /// is initialised, so the very first start of pod 0 forms the cluster.
    pub bootstrap_peers: Vec<String>,
    /// Checksum of the referenced API key / TLS Secret contents (rolls pods when they change).
    pub secret_checksum: Option<String>,
}

/// Every object of one QdrantCluster.
#[derive(Clone, Debug)]
pub struct Desired {
    pub config_map: ConfigMap,
    pub headless_service: Service,
    pub client_service: Service,
    pub stateful_set: StatefulSet,
    /// `None` when disabled (the reconciler then deletes a previous one).
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    /// `None` when disabled (the reconciler then deletes a previous one).
    pub network_policy: Option<NetworkPolicy>,
}

/// Builds every object of `qc`.
pub fn build(qc: &QdrantCluster, inputs: &BuildInputs) -> Result<Desired, BuildError> {
    let names = Names::of(qc)?;
    let config_map = configmap::build(qc, &names, inputs)?;
    Ok(Desired {
        headless_service: service::build_headless(qc, &names)?,
        client_service: service::build_client(qc, &names)?,
        stateful_set: statefulset::build(qc, &names, inputs, &config_map)?,
        pod_disruption_budget: pdb::build(qc, &names)?,
        network_policy: network_policy::build(qc, &names)?,
        config_map,
    })
}

/// Names of a cluster's objects and peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub cluster: String,
    pub namespace: String,
}

impl Names {
    /// Names for `qc`; fails without a name or namespace.
    pub fn of(qc: &QdrantCluster) -> Result<Names, BuildError> {
        let cluster = qc
            .metadata
            .name
            .clone()
            .ok_or(BuildError::MissingMetadata("metadata.name"))?;
        let namespace = qc
            .metadata
            .namespace
            .clone()
            .ok_or(BuildError::MissingMetadata("metadata.namespace"))?;
        Ok(Names { cluster, namespace })
    }

    pub fn stateful_set(&self) -> String {
        self.cluster.clone()
    }
    pub fn client_service(&self) -> String {
        self.cluster.clone()
    }
    pub fn headless_service(&self) -> String {
        format!("{}-headless", self.cluster)
    }
    pub fn config_map(&self) -> String {
        format!("{}-config", self.cluster)
    }
    pub fn pod_disruption_budget(&self) -> String {
        self.cluster.clone()
    }
    pub fn network_policy(&self) -> String {
        format!("{}-p2p", self.cluster)
    }
    pub fn pod(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.cluster)
    }
    pub fn pvc(&self, ordinal: u32) -> String {
        format!("{STORAGE_VOLUME}-{}-{ordinal}", self.cluster)
    }
    /// Stable DNS name of a peer: `<name>-<k>.<name>-headless.<ns>`.
    pub fn peer_host(&self, ordinal: u32) -> String {
        format!("{}.{}.{}", self.pod(ordinal), self.headless_service(), self.namespace)
    }
    /// p2p URI of a peer.
    pub fn p2p_uri(&self, ordinal: u32, tls: bool) -> String {
        format!(
            "{}://{}:{P2P_PORT}",
            if tls { "https" } else { "http" },
            self.peer_host(ordinal)
        )
    }
    /// Ordinal of a pod name of this cluster (`<name>-<k>`).
    pub fn ordinal_of_pod(&self, pod: &str) -> Option<u32> {
        pod.strip_prefix(&self.cluster)?.strip_prefix('-')?.parse().ok()
    }
    /// Ordinal of a PVC name of this cluster (`storage-<name>-<k>`).
    pub fn ordinal_of_pvc(&self, pvc: &str) -> Option<u32> {
        self.ordinal_of_pod(pvc.strip_prefix(STORAGE_VOLUME)?.strip_prefix('-')?)
    }
    /// Ordinal of a peer from its p2p URI (`scheme://<name>-<k>.<name>-headless...:port`).
    pub fn ordinal_of_uri(&self, uri: &str) -> Option<u32> {
        let host = uri.split("://").nth(1)?.split([':', '/']).next()?;
        let mut labels = host.split('.');
        let pod = labels.next()?;
        if labels.next()? != self.headless_service() {
            return None;
        }
        self.ordinal_of_pod(pod)
    }
}

/// Labels selecting the pods of one cluster.
pub fn selector_labels(names: &Names) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "qdrant".to_string()),
        ("app.kubernetes.io/instance".to_string(), names.cluster.clone()),
    ])
}

/// The selector labels as a label-selector string (for status and list calls).
pub fn selector_string(names: &Names) -> String {
    selector_labels(names)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels of every object the operator creates.
pub fn common_labels(names: &Names) -> BTreeMap<String, String> {
    let mut labels = selector_labels(names);
    labels.insert("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string());
    labels
}

/// Metadata of a child object: name, namespace, labels and the controller owner reference.
pub fn child_meta(qc: &QdrantCluster, names: &Names, name: String) -> Result<ObjectMeta, BuildError> {
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(names.namespace.clone()),
        labels: Some(common_labels(names)),
        owner_references: Some(vec![owner_reference(qc)?]),
        ..ObjectMeta::default()
    })
}

/// Controller owner reference to `qc` (deleting the QdrantCluster cascades to its objects).
pub fn owner_reference(qc: &QdrantCluster) -> Result<OwnerReference, BuildError> {
    qc.controller_owner_ref(&())
        .ok_or(BuildError::MissingMetadata("metadata.uid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_ordinals() {
        let names = Names {
            cluster: "demo".to_string(),
            namespace: "db".to_string(),
        };
        assert_eq!(names.pod(2), "demo-2");
        assert_eq!(names.ordinal_of_pod("demo-2"), Some(2));
        assert_eq!(names.ordinal_of_pod("demo-x-2"), None);
        assert_eq!(names.ordinal_of_pod("demox-2"), None);
        assert_eq!(names.pvc(4), "storage-demo-4");
        assert_eq!(names.ordinal_of_pvc("storage-demo-4"), Some(4));
        assert_eq!(names.p2p_uri(1, false), "http://demo-1.demo-headless.db:6335");
        assert_eq!(names.ordinal_of_uri("http://demo-1.demo-headless.db:6335/"), Some(1));
        assert_eq!(
            names.ordinal_of_uri("https://demo-12.demo-headless.db.svc.cluster.local:6335"),
            Some(12)
        );
        assert_eq!(names.ordinal_of_uri("http://10.0.0.1:6335"), None);
        assert_eq!(names.ordinal_of_uri("http://other-1.other-headless.db:6335"), None);
    }
}
