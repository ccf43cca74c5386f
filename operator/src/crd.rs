//! The `QdrantCluster` custom resource (`qdrant.dev/v1alpha1`): spec and status types.
//!
//! This file is the only source of the CRD YAML (`crdgen` prints `QdrantCluster::crd()`).
//! Validation that the apiserver can do lives here as schema constraints and CEL rules;
//! the rest is in `validate.rs`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, SecretKeySelector, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the custom resource.
pub const GROUP: &str = "qdrant.dev";
/// API version of the custom resource.
pub const VERSION: &str = "v1alpha1";

/// REST port of every Qdrant peer.
pub const HTTP_PORT: i32 = 6333;
/// Public gRPC port of every Qdrant peer.
pub const GRPC_PORT: i32 = 6334;
/// Internal peer-to-peer (Raft, shard transfer) port; never exposed outside the cluster.
pub const P2P_PORT: i32 = 6335;

/// Longest allowed `metadata.name`: `<name>-<ordinal>` pods and the StatefulSet's
/// `controller-revision-hash` label (`<name>-<10 chars>`) must stay within 63 characters.
pub const MAX_NAME_LEN: usize = 52;

/// A Qdrant-compatible distributed vector database cluster.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "qdrant.dev",
    version = "v1alpha1",
    kind = "QdrantCluster",
    namespaced,
    shortname = "qc",
    status = "QdrantClusterStatus",
    derive = "PartialEq",
    doc = "A Qdrant-compatible distributed vector database cluster managed by the qdrant.dev operator",
    scale(
        spec_replicas_path = ".spec.size",
        status_replicas_path = ".status.currentNodes",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Size", type_ = "integer", json_path = ".spec.size"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyNodes"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 52 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS-1035 label of at most 52 characters"),
)]
#[x_kube(
    validation = Rule::new("has(self.storage.storageClassName) == has(oldSelf.storage.storageClassName) && (!has(self.storage.storageClassName) || self.storage.storageClassName == oldSelf.storage.storageClassName)")
        .message("storage.storageClassName is immutable"),
    validation = Rule::new("self.storage.size == oldSelf.storage.size")
        .message("storage.size is immutable (volume resize is not supported by the operator)"),
    validation = Rule::new("(has(self.tls) && self.tls.p2p) == (has(oldSelf.tls) && oldSelf.tls.p2p)")
        .message("tls.p2p cannot be switched on a running cluster"),
    validation = Rule::new("!has(self.podDisruptionBudget.maxUnavailable) || !has(self.podDisruptionBudget.minAvailable)")
        .message("podDisruptionBudget: set at most one of maxUnavailable and minAvailable"),
)]
#[serde(rename_all = "camelCase")]
pub struct QdrantClusterSpec {
    /// Number of Qdrant peers (pods). Scale-down drains the highest ordinal first.
    #[serde(default = "default_size")]
    #[schemars(range(min = 1, max = 100))]
    pub size: i32,

    /// Container image repository. Works with `qdrant/qdrant` and this project's node image.
    /// If it already carries a tag (`repo:tag`) or digest (`repo@sha256:...`), `version` is ignored.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1))]
    pub image: String,

    /// Image tag, e.g. `v1.19.0`. Changing it rolls the pods one at a time, gated on cluster health.
    #[serde(default = "default_version")]
    #[schemars(length(min = 1))]
    pub version: String,

    /// Image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Secrets used to pull the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// CPU/memory requests and limits of the Qdrant container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Persistent storage of every peer.
    #[serde(default)]
    pub storage: StorageSpec,

    /// Free-form Qdrant configuration (same keys as Qdrant's config.yaml), deep-merged over the
    /// operator's defaults. Keys the operator owns (ports, cluster mode, storage paths, TLS, API
    /// keys) may not be changed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,

    /// The client Service (REST 6333 and gRPC 6334 only).
    #[serde(default)]
    pub service: ServiceSpec,

    /// API key for the REST/gRPC API, read from a Secret. The operator uses it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretKeySelector>,

    /// Read-only API key, read from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_api_key: Option<SecretKeySelector>,

    /// TLS for the REST/gRPC API (and optionally peer-to-peer traffic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// Node selector of the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Affinity of the pods. Default: prefer spreading peers over nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Topology spread constraints of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,

    /// PodDisruptionBudget of the cluster's pods.
    #[serde(default)]
    pub pod_disruption_budget: PodDisruptionBudgetSpec,

    /// NetworkPolicy restricting the p2p port to the cluster's own pods.
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,

    /// Scale the cluster to zero pods, keeping every volume (and the Raft membership) for resume.
    #[serde(default)]
    pub suspend: bool,

    /// Move shards onto under-loaded peers (after scale-up, and whenever the cluster is idle).
    #[serde(default = "default_true")]
    pub rebalance: bool,

    /// Seconds a pod gets to shut down (flush and leave) before it is killed.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 0, max = 3600))]
    pub termination_grace_period_seconds: i64,

    /// Restore a backup into this (new, empty) cluster once it formed. The cluster reports
    /// Available only after every collection was recovered. Only acted upon once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RestoreFrom>,
}

/// Which backup to restore.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreFrom {
    /// Name of a QdrantBackup in the same namespace (its target is read from there).
    #[schemars(length(min = 1))]
    pub backup: String,
    /// Id of the backup (`YYYYMMDDTHHMMSSZ`); default: the newest complete one in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Progress of `spec.restoreFrom`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// Pending (waiting for the cluster to form), Running, Succeeded or Failed.
    pub phase: RestorePhase,
    /// The QdrantBackup restored from.
    pub backup: String,
    /// The backup id restored (once known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The restore Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// Phase of a restore.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RestorePhase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// Image pull policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// Persistent storage of every peer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Size of each peer's volume (a Kubernetes quantity such as `10Gi`). Immutable.
    #[serde(default = "default_storage_size")]
    #[schemars(schema_with = "quantity_string")]
    pub size: Quantity,
    /// StorageClass of the volumes (cluster default if unset). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Delete the volumes when the QdrantCluster is deleted. Default: keep them.
    #[serde(default)]
    pub delete_claims_on_delete: bool,
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            size: default_storage_size(),
            storage_class_name: None,
            delete_claims_on_delete: false,
        }
    }
}

/// Client Service settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Annotations of the client Service (e.g. for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes Service type of the client Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// TLS settings. The Secret must hold `tls.crt`, `tls.key` and `ca.crt`; the certificate must
/// name the client Service and every `<name>-<k>.<name>-headless.<namespace>` peer address.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// Name of the Secret (type kubernetes.io/tls plus `ca.crt`).
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Also encrypt peer-to-peer traffic. Can only be chosen at creation.
    #[serde(default)]
    pub p2p: bool,
}

/// PodDisruptionBudget settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSpec {
    /// Create the PodDisruptionBudget.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Pods that may be unavailable at once (default 1 when neither field is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Pods that must stay available (alternative to maxUnavailable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
}

impl Default for PodDisruptionBudgetSpec {
    fn default() -> Self {
        PodDisruptionBudgetSpec {
            enabled: true,
            max_unavailable: None,
            min_available: None,
        }
    }
}

/// NetworkPolicy settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Create a NetworkPolicy that lets only this cluster's pods reach the p2p port
    /// (REST and gRPC stay open).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        NetworkPolicySpec { enabled: true }
    }
}

/// Observed state of a QdrantCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QdrantClusterStatus {
    /// Summary of the cluster's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods that pass their readiness probe.
    #[serde(default)]
    pub ready_nodes: i32,
    /// Pods the StatefulSet currently runs (the scale subresource's status).
    #[serde(default)]
    pub current_nodes: i32,
    /// Label selector of the pods (the scale subresource's selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The cluster formed once; from now on pod 0 joins through a live peer if its volume is lost.
    #[serde(default)]
    pub initialized: bool,
    /// Raft peers by pod name, as last observed through `GET /cluster`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peers: BTreeMap<String, PeerStatus>,
    /// Available, Progressing and Degraded conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Progress of `spec.restoreFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStatus>,
}

/// One Raft peer of the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    /// Qdrant peer id.
    pub peer_id: u64,
    /// The peer's p2p URI.
    pub uri: String,
    /// The pod is Ready.
    pub ready: bool,
}

/// Summary phase shown by `kubectl get qc`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Pods are being created and the cluster is forming.
    Creating,
    /// All peers are ready and nothing is in progress.
    Healthy,
    /// Peers are being added or drained and removed.
    Scaling,
    /// Pods are being restarted with a new image or configuration.
    Upgrading,
    /// Shards are being moved onto under-loaded peers.
    Rebalancing,
    /// Scaled to zero on request; volumes are kept.
    Suspended,
    /// Some peers are not ready, or the cluster cannot be observed.
    NotReady,
    /// An operation is blocked because it would lose data; see the Degraded condition.
    Blocked,
    /// The spec cannot be applied; see the Degraded condition.
    Invalid,
}

impl Phase {
    /// The status spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Creating => "Creating",
            Phase::Healthy => "Healthy",
            Phase::Scaling => "Scaling",
            Phase::Upgrading => "Upgrading",
            Phase::Rebalancing => "Rebalancing",
            Phase::Suspended => "Suspended",
            Phase::NotReady => "NotReady",
            Phase::Blocked => "Blocked",
            Phase::Invalid => "Invalid",
        }
    }
}

fn default_size() -> i32 {
    3
}

fn default_image() -> String {
    "qdrant/qdrant".to_string()
}

fn default_version() -> String {
    "v1.19.0".to_string()
}

fn default_storage_size() -> Quantity {
    Quantity("10Gi".to_string())
}

fn default_true() -> bool {
    true
}

fn default_grace() -> i64 {
    60
}

fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A quantity as a string (never an integer, never null), checked with Kubernetes' own syntax.
fn quantity_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "default": "10Gi",
        "pattern": "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
    })
}

pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".to_string(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".to_string(), serde_json::json!(["type"]));
    schema
}

impl QdrantCluster {
    /// `metadata.name`, or an empty string for an object without one (never the case for
    /// objects read from the apiserver).
    pub fn name_str(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// `metadata.namespace`, or an empty string when absent.
    pub fn namespace_str(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    /// The full image reference of the Qdrant container.
    pub fn image_ref(&self) -> String {
        let image = self.spec.image.trim();
        let last_segment = image.rsplit('/').next().unwrap_or(image);
        if image.contains('@') || last_segment.contains(':') {
            image.to_string()
        } else {
            format!("{}:{}", image, self.spec.version.trim())
        }
    }

    /// Number of pods the user wants running: zero while suspended.
    pub fn desired_pods(&self) -> i32 {
        if self.spec.suspend {
            0
        } else {
            self.spec.size
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::CustomResourceExt;

    fn cr(spec: serde_json::Value) -> QdrantCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "qdrant.dev/v1alpha1",
            "kind": "QdrantCluster",
            "metadata": {"name": "demo", "namespace": "db"},
            "spec": spec,
        }))
        .expect("valid QdrantCluster")
    }

    #[test]
    fn defaults_fill_an_empty_spec() {
        let qc = cr(serde_json::json!({}));
        assert_eq!(qc.spec.size, 3);
        assert_eq!(qc.image_ref(), "qdrant/qdrant:v1.19.0");
        assert_eq!(qc.spec.storage.size.0, "10Gi");
        assert!(qc.spec.pod_disruption_budget.enabled);
        assert!(qc.spec.network_policy.enabled);
        assert!(qc.spec.rebalance);
        assert!(!qc.spec.suspend);
        assert_eq!(qc.spec.service.type_, ServiceType::ClusterIP);
    }

    #[test]
    fn image_with_tag_or_digest_wins_over_version() {
        let qc = cr(serde_json::json!({"image": "registry:5000/team/node:1.2", "version": "x"}));
        assert_eq!(qc.image_ref(), "registry:5000/team/node:1.2");
        let qc = cr(serde_json::json!({"image": "registry:5000/team/node", "version": "0.1.0"}));
        assert_eq!(qc.image_ref(), "registry:5000/team/node:0.1.0");
        let qc = cr(serde_json::json!({"image": "q@sha256:abc"}));
        assert_eq!(qc.image_ref(), "q@sha256:abc");
    }

    #[test]
    fn crd_has_subresources_short_name_and_columns() {
        let crd = QdrantCluster::crd();
        assert_eq!(crd.spec.group, "qdrant.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["qc".to_string()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        let sub = version.subresources.as_ref().expect("subresources");
        assert!(sub.status.is_some());
        let scale = sub.scale.as_ref().expect("scale subresource");
        assert_eq!(scale.spec_replicas_path, ".spec.size");
        assert_eq!(scale.status_replicas_path, ".status.currentNodes");
        assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));
        let columns: Vec<&str> = version
            .additional_printer_columns
            .as_ref()
            .expect("printer columns")
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns, ["Phase", "Size", "Ready", "Version", "Age"]);
    }

    fn cel_update(old: &QdrantCluster, new: &QdrantCluster) -> Result<(), String> {
        kube::core::cel::validate_cel_update(new, old).map_err(|e| e.to_string())
    }

    #[test]
    fn cel_rejects_changing_the_storage_class() {
        let old = cr(serde_json::json!({"storage": {"storageClassName": "fast"}}));
        let new = cr(serde_json::json!({"storage": {"storageClassName": "slow"}}));
        let err = cel_update(&old, &new).expect_err("storage class change must be rejected");
        assert!(err.contains("storageClassName is immutable"), "{err}");
        let unset = cr(serde_json::json!({}));
        assert!(cel_update(&old, &unset).is_err(), "removing the class must be rejected");
        assert!(cel_update(&unset, &old).is_err(), "adding a class must be rejected");
        assert!(cel_update(&old, &old.clone()).is_ok());
    }

    #[test]
    fn cel_rejects_storage_resize_and_p2p_tls_switch_but_allows_scaling() {
        let old = cr(serde_json::json!({"size": 3}));
        let bigger = cr(serde_json::json!({"size": 3, "storage": {"size": "20Gi"}}));
        let err = cel_update(&old, &bigger).expect_err("resize must be rejected");
        assert!(err.contains("storage.size is immutable"), "{err}");
        let tls = cr(serde_json::json!({"tls": {"secretName": "t", "p2p": true}}));
        let err = cel_update(&old, &tls).expect_err("p2p TLS switch must be rejected");
        assert!(err.contains("tls.p2p"), "{err}");
        let rest_tls = cr(serde_json::json!({"tls": {"secretName": "t"}}));
        assert!(cel_update(&old, &rest_tls).is_ok(), "REST TLS may be added later");
        let scaled = cr(serde_json::json!({"size": 5, "version": "v1.19.1"}));
        assert!(cel_update(&old, &scaled).is_ok());
    }

    #[test]
    fn cel_rejects_bad_names_and_double_pdb_settings() {
        let mut qc = cr(serde_json::json!({}));
        assert!(kube::core::cel::validate_cel(&qc).is_ok());
        qc.metadata.name = Some("a".repeat(53));
        assert!(kube::core::cel::validate_cel(&qc).is_err());
        qc.metadata.name = Some("9lives".to_string());
        assert!(kube::core::cel::validate_cel(&qc).is_err());
        let qc = cr(serde_json::json!({"podDisruptionBudget": {"maxUnavailable": 1, "minAvailable": 2}}));
        let err = kube::core::cel::validate_cel(&qc).expect_err("both PDB fields");
        assert!(err.to_string().contains("at most one"), "{err}");
    }
}
