//! The Jobs that run `operator backup-agent`: one per scheduled backup of a QdrantBackup, and
//! the one restore of a QdrantCluster's `spec.restoreFrom`. The operator cannot mount a
//! user's PersistentVolumeClaim itself, so the data path runs in these pods: the target volume
//! (or the S3 credentials from their Secret), the cluster's API key and CA come in as volumes
//! and environment, the result goes out as the container's termination message.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use super::{BuildError, Names, MANAGER};
use crate::crd::{QdrantCluster, HTTP_PORT};
use crate::crd_backup::QdrantBackup;

/// Label of backup Jobs: the QdrantBackup's name.
pub const BACKUP_LABEL: &str = "qdrant.dev/backup";
/// Label of backup Jobs: the backup id.
pub const BACKUP_ID_LABEL: &str = "qdrant.dev/backup-id";
/// Label of restore Jobs: the QdrantCluster's name.
pub const RESTORE_LABEL: &str = "qdrant.dev/restore";

const TARGET_MOUNT: &str = "/backup";
const SCRATCH_MOUNT: &str = "/scratch";
const TLS_MOUNT: &str = "/tls";

/// Name of the Job of backup `id` (ids are `YYYYMMDDTHHMMSSZ`; names must be lower case).
pub fn backup_job_name(backup: &str, id: &str) -> String {
    format!("{backup}-{}", id.to_ascii_lowercase())
}

/// Name of a cluster's restore Job.
pub fn restore_job_name(cluster: &str) -> String {
    format!("{cluster}-restore")
}

/// REST base URLs of every peer of the cluster.
pub fn node_urls(qc: &QdrantCluster, names: &Names) -> Vec<String> {
    let scheme = if qc.spec.tls.is_some() { "https" } else { "http" };
    (0..u32::try_from(qc.spec.size.max(1)).unwrap_or(1))
        .map(|k| format!("{scheme}://{}.svc:{HTTP_PORT}", names.peer_host(k)))
        .collect()
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// The agent's store location inside the target: one directory (or prefix) per
/// QdrantBackup, so two schedules sharing a volume or bucket never prune each other.
fn target_env(qb: &QdrantBackup, volumes: &mut Vec<Volume>, mounts: &mut Vec<VolumeMount>) -> Vec<EnvVar> {
    let name = qb.name_str();
    let mut out = Vec::new();
    if let Some(pvc) = &qb.spec.target.pvc {
        let sub = pvc
            .path
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty());
        let dir = match sub {
            Some(sub) => format!("{TARGET_MOUNT}/{sub}/{name}"),
            None => format!("{TARGET_MOUNT}/{name}"),
        };
        let location = match sub {
            Some(sub) => format!("pvc://{}/{sub}/{name}", pvc.claim_name),
            None => format!("pvc://{}/{name}", pvc.claim_name),
        };
        volumes.push(Volume {
            name: "target".to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: pvc.claim_name.clone(),
                read_only: Some(false),
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: "target".to_string(),
            mount_path: TARGET_MOUNT.to_string(),
            ..VolumeMount::default()
        });
        out.push(env("BACKUP_DIR", dir));
        out.push(env("BACKUP_LOCATION", location));
    }
    if let Some(s3) = &qb.spec.target.s3 {
        let base = s3
            .prefix
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty());
        let namespace = qb.namespace_str();
        let prefix = match base {
            Some(base) => format!("{base}/{namespace}/{name}"),
            None => format!("{namespace}/{name}"),
        };
        out.push(env("S3_ENDPOINT", s3.endpoint.clone()));
        out.push(env("S3_BUCKET", s3.bucket.clone()));
        out.push(env("S3_PREFIX", prefix.clone()));
        out.push(env(
            "S3_REGION",
            s3.region.clone().unwrap_or_else(|| "us-east-1".to_string()),
        ));
        out.push(env("S3_INSECURE", s3.insecure.to_string()));
        out.push(secret_env(
            "AWS_ACCESS_KEY_ID",
            &s3.credentials_secret.name,
            &s3.credentials_secret.access_key_id_key,
        ));
        out.push(secret_env(
            "AWS_SECRET_ACCESS_KEY",
            &s3.credentials_secret.name,
            &s3.credentials_secret.secret_access_key_key,
        ));
        out.push(env("BACKUP_LOCATION", format!("s3://{}/{prefix}", s3.bucket)));
    }
    out
}

/// The cluster's connection: peer URLs, API key, CA.
fn cluster_env(
    qc: &QdrantCluster,
    names: &Names,
    volumes: &mut Vec<Volume>,
    mounts: &mut Vec<VolumeMount>,
) -> Vec<EnvVar> {
    let mut out = vec![env("QDRANT_NODES", node_urls(qc, names).join(","))];
    if let Some(key) = &qc.spec.api_key {
        out.push(secret_env("QDRANT_API_KEY", &key.name, &key.key));
    }
    if let Some(tls) = &qc.spec.tls {
        volumes.push(Volume {
            name: "tls".to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.secret_name.clone()),
                items: Some(vec![k8s_openapi::api::core::v1::KeyToPath {
                    key: "ca.crt".to_string(),
                    path: "ca.crt".to_string(),
                    mode: None,
                }]),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: "tls".to_string(),
            mount_path: TLS_MOUNT.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        out.push(env("QDRANT_CA_FILE", format!("{TLS_MOUNT}/ca.crt")));
    }
    out
}

struct JobParts {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    image: String,
    args: Vec<String>,
    env: Vec<EnvVar>,
    volumes: Vec<Volume>,
    mounts: Vec<VolumeMount>,
}

fn job(parts: JobParts) -> Job {
    let mut volumes = parts.volumes;
    let mut mounts = parts.mounts;
    volumes.push(Volume {
        name: "scratch".to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    mounts.push(VolumeMount {
        name: "scratch".to_string(),
        mount_path: SCRATCH_MOUNT.to_string(),
        ..VolumeMount::default()
    });
    let mut env = parts.env;
    env.push(super::backup_job::env("SCRATCH_DIR", SCRATCH_MOUNT));
    env.push(super::backup_job::env("LOG_FORMAT", "json"));
    let metadata = ObjectMeta {
        name: Some(parts.name),
        namespace: Some(parts.namespace),
        labels: Some(parts.labels.clone()),
        owner_references: Some(vec![parts.owner]),
        ..ObjectMeta::default()
    };
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(1),
            active_deadline_seconds: Some(24 * 3600),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(parts.labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_string()),
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        run_as_group: Some(65532),
                        fs_group: Some(65532),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![Container {
                        name: "agent".to_string(),
                        image: Some(parts.image),
                        args: Some(parts.args),
                        env: Some(env),
                        volume_mounts: Some(mounts),
                        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
                        security_context: Some(SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            capabilities: Some(k8s_openapi::api::core::v1::Capabilities {
                                drop: Some(vec!["ALL".to_string()]),
                                add: None,
                            }),
                            ..SecurityContext::default()
                        }),
                        ..Container::default()
                    }],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

fn labels(extra: [(&str, String); 2]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "qdrant-backup".to_string()),
        ("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string()),
    ]);
    for (k, v) in extra {
        labels.insert(k.to_string(), v);
    }
    labels
}

/// The Job of backup `id` of `qb` (owned by the QdrantBackup).
pub fn backup_job(qb: &QdrantBackup, qc: &QdrantCluster, id: &str, image: &str) -> Result<Job, BuildError> {
    let names = Names::of(qc)?;
    let owner = qb
        .controller_owner_ref(&())
        .ok_or(BuildError::MissingMetadata("metadata.uid"))?;
    let (mut volumes, mut mounts) = (Vec::new(), Vec::new());
    let mut env = cluster_env(qc, &names, &mut volumes, &mut mounts);
    env.extend(target_env(qb, &mut volumes, &mut mounts));
    if let Some(count) = qb.spec.retention.count {
        env.push(self::env("RETENTION_COUNT", count.to_string()));
    }
    if let Some(age) = &qb.spec.retention.max_age {
        env.push(self::env("RETENTION_MAX_AGE", age.clone()));
    }
    Ok(job(JobParts {
        name: backup_job_name(qb.name_str(), id),
        namespace: names.namespace,
        labels: labels([
            (BACKUP_LABEL, qb.name_str().to_string()),
            (BACKUP_ID_LABEL, id.to_string()),
        ]),
        owner,
        image: qb.spec.image.clone().unwrap_or_else(|| image.to_string()),
        args: vec!["backup-agent".to_string(), "backup".to_string()],
        env,
        volumes,
        mounts,
    }))
}

/// The restore Job of `qc` (owned by the QdrantCluster), reading from `qb`'s target.
pub fn restore_job(qc: &QdrantCluster, qb: &QdrantBackup, id: Option<&str>, image: &str) -> Result<Job, BuildError> {
    let names = Names::of(qc)?;
    let owner = super::owner_reference(qc)?;
    let (mut volumes, mut mounts) = (Vec::new(), Vec::new());
    let mut env = cluster_env(qc, &names, &mut volumes, &mut mounts);
    env.extend(target_env(qb, &mut volumes, &mut mounts));
    if let Some(id) = id {
        env.push(self::env("BACKUP_ID", id));
    }
    Ok(job(JobParts {
        name: restore_job_name(&names.cluster),
        namespace: names.namespace.clone(),
        labels: labels([
            (RESTORE_LABEL, names.cluster.clone()),
            (BACKUP_LABEL, qb.name_str().to_string()),
        ]),
        owner,
        image: qb.spec.image.clone().unwrap_or_else(|| image.to_string()),
        args: vec!["backup-agent".to_string(), "restore".to_string()],
        env,
        volumes,
        mounts,
    }))
}
