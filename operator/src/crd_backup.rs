//! The `QdrantBackup` custom resource (`qdrant.dev/v1alpha1`): scheduled backups of one
//! QdrantCluster into a PersistentVolumeClaim or an S3-compatible bucket, with retention.
//!
//! A resource of its own rather than a section of the QdrantCluster: a cluster can have
//! several schedules and targets (hourly to a PVC, daily to S3 off-site), a backup's records
//! and its store outlive the cluster (restoring into a new cluster after the old one was
//! deleted), and its RBAC can be granted separately.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Scheduled backups of one QdrantCluster.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "qdrant.dev",
    version = "v1alpha1",
    kind = "QdrantBackup",
    namespaced,
    shortname = "qb",
    status = "QdrantBackupStatus",
    derive = "PartialEq",
    doc = "Scheduled backups of a QdrantCluster into a PersistentVolumeClaim or an S3-compatible bucket",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Last backup", type_ = "string", json_path = ".status.lastSuccessfulBackup"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS-1035 label of at most 40 characters"),
)]
#[serde(rename_all = "camelCase")]
pub struct QdrantBackupSpec {
    /// Name of the QdrantCluster (same namespace) to back up.
    #[schemars(length(min = 1))]
    pub cluster: String,

    /// When to back up: a 5-field cron expression in UTC (`0 3 * * *`), or `@hourly`,
    /// `@daily`, `@weekly`, `@monthly`. Missed runs collapse into one.
    #[schemars(length(min = 1))]
    pub schedule: String,

    /// How many backups to keep and for how long. The newest complete backup is never pruned.
    #[serde(default)]
    pub retention: RetentionSpec,

    /// Where the backups go.
    pub target: BackupTarget,

    /// Stop scheduling backups (a running one finishes).
    #[serde(default)]
    pub suspend: bool,

    /// Image of the backup Jobs (default: the operator's own image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Retention of backups.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    /// Keep at most this many complete backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub count: Option<u32>,
    /// Delete backups older than this (`30m`, `12h`, `7d`, `2w`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[1-9][0-9]*[mhdw]$"))]
    pub max_age: Option<String>,
}

/// Where backups are stored: exactly one of `pvc` and `s3`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.pvc) != has(self.s3)").message("target: set exactly one of pvc and s3"))]
pub struct BackupTarget {
    /// A PersistentVolumeClaim (same namespace), mounted by the backup Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PvcTarget>,
    /// An S3-compatible bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Target>,
}

/// A PersistentVolumeClaim target.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcTarget {
    /// Name of the claim. ReadWriteOnce works when one Job runs at a time (the operator never
    /// starts two for one QdrantBackup).
    #[schemars(length(min = 1))]
    pub claim_name: String,
    /// Directory inside the volume (default: its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[^/].*$"))]
    pub path: Option<String>,
}

/// An S3-compatible bucket target (path-style requests, SigV4).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Target {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://minio.storage:9000`, ...
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: String,
    #[schemars(length(min = 1))]
    pub bucket: String,
    /// Key prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Signing region (default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The Secret with the access key.
    pub credentials_secret: S3CredentialsSecret,
    /// Accept any TLS certificate of the endpoint.
    #[serde(default)]
    pub insecure: bool,
}

/// Keys of the S3 credentials in a Secret (same namespace).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3CredentialsSecret {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default = "default_access_key_id_key")]
    pub access_key_id_key: String,
    #[serde(default = "default_secret_access_key_key")]
    pub secret_access_key_key: String,
}

fn default_access_key_id_key() -> String {
    "AWS_ACCESS_KEY_ID".to_string()
}

fn default_secret_access_key_key() -> String {
    "AWS_SECRET_ACCESS_KEY".to_string()
}

/// Observed state of a QdrantBackup.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QdrantBackupStatus {
    /// Complete backups in the store, oldest first (pruned ones are removed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<BackupRecord>,
    /// The scheduled time of the last run started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<String>,
    /// Id of the newest complete backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_backup: Option<String>,
    /// The next scheduled time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<String>,
    /// The backup Job running now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_job: Option<String>,
    /// The last failure, if the last run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Ready (the schedule is valid and the last run succeeded) and Running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::crd::conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// One complete backup.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// `YYYYMMDDTHHMMSSZ` of its start; the directory in the store.
    pub id: String,
    pub started_at: String,
    pub completed_at: String,
    pub size_bytes: u64,
    /// Where it is (`pvc://claim/path/id`, `s3://bucket/prefix/id`).
    pub location: String,
    /// sha256 of its manifest.json (which holds the sha256 of every shard snapshot).
    pub manifest_sha256: String,
    pub collections: Vec<CollectionRecord>,
}

/// One collection of a backup.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionRecord {
    pub name: String,
    pub shards: u32,
    pub size_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<u64>,
    /// sha256 of each shard snapshot, in shard order. Left out when the record would not fit
    /// a Job's termination message (the manifest always has them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<String>,
}

impl QdrantBackup {
    pub fn name_str(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn namespace_str(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(spec: serde_json::Value) -> QdrantBackup {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "qdrant.dev/v1alpha1",
            "kind": "QdrantBackup",
            "metadata": {"name": "nightly", "namespace": "db"},
            "spec": spec,
        }))
        .expect("valid QdrantBackup")
    }

    #[test]
    fn defaults_and_target_rule() {
        let qb = cr(serde_json::json!({
            "cluster": "demo", "schedule": "0 3 * * *",
            "target": {"s3": {"endpoint": "http://minio:9000", "bucket": "b",
                              "credentialsSecret": {"name": "s3"}}}
        }));
        let s3 = qb.spec.target.s3.as_ref().expect("s3");
        assert_eq!(s3.credentials_secret.access_key_id_key, "AWS_ACCESS_KEY_ID");
        assert_eq!(qb.spec.retention, RetentionSpec::default());
        assert!(kube::core::cel::validate_cel(&qb).is_ok());
        let both = cr(serde_json::json!({
            "cluster": "demo", "schedule": "0 3 * * *",
            "target": {"pvc": {"claimName": "x"}, "s3": {"endpoint": "http://m", "bucket": "b",
                              "credentialsSecret": {"name": "s3"}}}
        }));
        let err = kube::core::cel::validate_cel(&both).expect_err("both targets");
        assert!(err.to_string().contains("exactly one"), "{err}");
    }
}
