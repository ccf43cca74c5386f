//! The StatefulSet running the Qdrant peers.
//!
//! One pod template serves every ordinal, so the per-pod `--uri` / `--bootstrap` arguments come
//! from a small POSIX shell script in the container spec that reads the ordinal from the pod
//! name. It runs the same CLI in the official `qdrant/qdrant` image (`/qdrant/qdrant`) and in this
//! project's image (`/qdrant/qdrant` or `qdrant` on PATH):
//! - pod 0: `--uri <self>`; pod k > 0: `--bootstrap <pod 0> --uri <self>`;
//! - pod 0 with an empty volume after the cluster was initialised (its URIs are listed in the
//!   ConfigMap's `bootstrap-peers`) joins through the first resolvable live peer instead, and
//!   refuses to start rather than form a second cluster when none resolves.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
    VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::{checksum, BOOTSTRAP_PEERS_KEY, CONFIG_DIR, CONFIG_KEY, SNAPSHOTS_DIR, STORAGE_DIR, TLS_DIR};
use super::configmap::config_yaml;
use super::{
    child_meta, common_labels, selector_labels, BuildError, BuildInputs, Names, CONFIG_CHECKSUM_ANNOTATION,
    RESTARTED_AT_ANNOTATION, SECRET_CHECKSUM_ANNOTATION, STORAGE_VOLUME,
};
use crate::crd::{QdrantCluster, GRPC_PORT, HTTP_PORT, P2P_PORT};

/// Name of the Qdrant container.
pub const CONTAINER: &str = "qdrant";
/// Non-root identity of the Qdrant process (as in the official Helm chart).
pub const RUN_AS_USER: i64 = 1000;
pub const RUN_AS_GROUP: i64 = 2000;
pub const FS_GROUP: i64 = 3000;

/// The start script run by `/bin/sh -c`.
pub fn start_script(names: &Names, p2p_tls: bool) -> String {
    let scheme = if p2p_tls { "https" } else { "http" };
    let headless = names.headless_service();
    let ns = &names.namespace;
    let seed = names.p2p_uri(0, p2p_tls);
    format!(
        r#"set -eu
ordinal="${{POD_NAME##*-}}"
self_uri="{scheme}://${{POD_NAME}}.{headless}.{ns}:{P2P_PORT}"
seed_uri="{seed}"
if [ -x /qdrant/qdrant ]; then bin=/qdrant/qdrant; else bin=qdrant; fi
cd /qdrant
set -- "$bin" --config-path {CONFIG_DIR}/{CONFIG_KEY}
if [ "$ordinal" != "0" ]; then
  echo "peer $ordinal: joining through $seed_uri"
  exec "$@" --bootstrap "$seed_uri" --uri "$self_uri"
fi
if [ -n "$(ls -A {STORAGE_DIR} 2>/dev/null | grep -v '^lost+found$' || true)" ]; then
  echo "peer 0: restarting from its existing state"
  exec "$@" --uri "$self_uri"
fi
peers="$(cat {CONFIG_DIR}/{BOOTSTRAP_PEERS_KEY} 2>/dev/null || true)"
if [ -z "$peers" ]; then
  echo "peer 0: forming a new cluster"
  exec "$@" --uri "$self_uri"
fi
for peer in $peers; do
  host="${{peer#*://}}"
  host="${{host%%:*}}"
  if ! command -v getent >/dev/null 2>&1 || getent hosts "$host" >/dev/null 2>&1; then
    echo "peer 0: empty volume in an initialised cluster, joining through $peer"
    exec "$@" --bootstrap "$peer" --uri "$self_uri"
  fi
done
echo "peer 0: empty volume in an initialised cluster and no live peer; refusing to form a second cluster" >&2
sleep 10
exit 1
"#
    )
}

fn http_probe(path: &str, https: bool, period: i32, failure_threshold: i32, initial_delay: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".to_string()),
            scheme: Some(if https { "HTTPS" } else { "HTTP" }.to_string()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failure_threshold),
        success_threshold: Some(1),
        ..Probe::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port: port,
        protocol: Some("TCP".to_string()),
        ..ContainerPort::default()
    }
}

fn secret_env(name: &str, selector: &SecretKeySelector) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: selector.name.clone(),
                key: selector.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// Spread peers over nodes unless the user chose an affinity.
fn default_affinity(names: &Names) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(selector_labels(names)),
                        ..LabelSelector::default()
                    }),
                    topology_key: "kubernetes.io/hostname".to_string(),
                    ..PodAffinityTerm::default()
                },
            }]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

fn container(qc: &QdrantCluster, names: &Names) -> Container {
    let spec = &qc.spec;
    let https = spec.tls.is_some();
    let p2p_tls = spec.tls.as_ref().is_some_and(|t| t.p2p);
    let mut env = vec![EnvVar {
        name: "POD_NAME".to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".to_string(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }];
    if let Some(key) = &spec.api_key {
        env.push(secret_env("QDRANT__SERVICE__API_KEY", key));
    }
    if let Some(key) = &spec.read_only_api_key {
        env.push(secret_env("QDRANT__SERVICE__READ_ONLY_API_KEY", key));
    }
    let mut mounts = vec![
        mount(STORAGE_VOLUME, STORAGE_DIR, false),
        mount("config", CONFIG_DIR, true),
        mount("snapshots", SNAPSHOTS_DIR, false),
        mount("tmp", "/tmp", false),
    ];
    if https {
        mounts.push(mount("tls", TLS_DIR, true));
    }
    Container {
        name: CONTAINER.to_string(),
        image: Some(qc.image_ref()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        command: Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            start_script(names, p2p_tls),
        ]),
        env: Some(env),
        ports: Some(vec![
            container_port("http", HTTP_PORT),
            container_port("grpc", GRPC_PORT),
            container_port("p2p", P2P_PORT),
        ]),
        readiness_probe: Some(http_probe("/readyz", https, 5, 6, 5)),
        liveness_probe: Some(http_probe("/livez", https, 10, 6, 0)),
        startup_probe: Some(http_probe("/livez", https, 5, 60, 5)),
        lifecycle: Some(Lifecycle {
            // Give endpoints time to drop the pod before Qdrant gets SIGTERM.
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec!["/bin/sh".to_string(), "-c".to_string(), "sleep 5".to_string()]),
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        resources: spec.resources.clone(),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_GROUP),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn volumes(qc: &QdrantCluster, names: &Names) -> Vec<Volume> {
    let mut volumes = vec![
        Volume {
            name: "config".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: names.config_map(),
                default_mode: Some(0o444),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        empty_dir("snapshots"),
        empty_dir("tmp"),
    ];
    if let Some(tls) = &qc.spec.tls {
        volumes.push(Volume {
            name: "tls".to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.secret_name.clone()),
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    volumes
}

fn volume_claim_template(qc: &QdrantCluster, names: &Names) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(STORAGE_VOLUME.to_string()),
            labels: Some(common_labels(names)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: qc.spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), qc.spec.storage.size.clone())])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// Builds the StatefulSet. `config_map` is the built ConfigMap (its config.yaml is checksummed
/// into the pod template so configuration changes restart the pods, through the gated path).
pub fn build(
    qc: &QdrantCluster,
    names: &Names,
    inputs: &BuildInputs,
    config_map: &ConfigMap,
) -> Result<StatefulSet, BuildError> {
    let spec = &qc.spec;
    let mut annotations = BTreeMap::from([(
        CONFIG_CHECKSUM_ANNOTATION.to_string(),
        checksum([config_yaml(config_map).as_bytes()]),
    )]);
    if let Some(sum) = &inputs.secret_checksum {
        annotations.insert(SECRET_CHECKSUM_ANNOTATION.to_string(), sum.clone());
    }
    if let Some(at) = qc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESTARTED_AT_ANNOTATION))
    {
        annotations.insert(RESTARTED_AT_ANNOTATION.to_string(), at.clone());
    }
    let pod_spec = PodSpec {
        containers: vec![container(qc, names)],
        volumes: Some(volumes(qc, names)),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(spec.termination_grace_period_seconds),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_GROUP),
            fs_group: Some(FS_GROUP),
            fs_group_change_policy: Some("OnRootMismatch".to_string()),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        image_pull_secrets: (!spec.image_pull_secrets.is_empty()).then(|| spec.image_pull_secrets.clone()),
        node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
        tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
        affinity: Some(spec.affinity.clone().unwrap_or_else(|| default_affinity(names))),
        topology_spread_constraints: (!spec.topology_spread_constraints.is_empty())
            .then(|| spec.topology_spread_constraints.clone()),
        ..PodSpec::default()
    };
    Ok(StatefulSet {
        metadata: child_meta(qc, names, names.stateful_set())?,
        spec: Some(StatefulSetSpec {
            replicas: Some(inputs.replicas),
            service_name: Some(names.headless_service()),
            pod_management_policy: Some("Parallel".to_string()),
            // The operator restarts pods itself, one at a time, after checking cluster health.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_string()),
                ..StatefulSetUpdateStrategy::default()
            }),
            // Scale-down volumes are deleted by the operator only after the peer left the
            // cluster; suspend (replicas 0) must keep them.
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some(
                    if spec.storage.delete_claims_on_delete {
                        "Delete"
                    } else {
                        "Retain"
                    }
                    .to_string(),
                ),
                when_scaled: Some("Retain".to_string()),
            }),
            selector: LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(common_labels(names)),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec),
            },
            volume_claim_templates: Some(vec![volume_claim_template(qc, names)]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    })
}
