//! Golden tests of every builder: a QdrantCluster in, the YAML of each object out, compared
//! with the checked-in files under `tests/golden/`. Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --release -p operator --test golden` and review the diff.

use std::path::PathBuf;

use operator::build::{self, BuildInputs, Names};
use operator::QdrantCluster;
use serde::Serialize;

fn cluster(spec: serde_json::Value) -> QdrantCluster {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "qdrant.dev/v1alpha1",
        "kind": "QdrantCluster",
        "metadata": {"name": "demo", "namespace": "db", "uid": "6f1c0e4c-0000-4000-8000-000000000001",
                     "generation": 1},
        "spec": spec,
    }))
    .expect("valid QdrantCluster")
}

fn to_yaml<T: Serialize>(object: &T) -> String {
    serde_yaml::to_string(object).expect("yaml")
}

/// Compares `actual` with `tests/golden/<case>/<file>` (or writes it with UPDATE_GOLDEN=1).
fn check(case: &str, file: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case)
        .join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(10)
            .map(|(i, (e, a))| format!("line {}:\n  golden: {e}\n  actual: {a}", i + 1))
            .collect();
        panic!(
            "{} differs from the builder output ({} vs {} lines):\n{}\nrun with UPDATE_GOLDEN=1 to accept",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// Builds every object of `qc` and checks each against its golden file.
fn check_all(case: &str, qc: &QdrantCluster, inputs: &BuildInputs) {
    let desired = build::build(qc, inputs).expect("build");
    check(case, "configmap.yaml", &to_yaml(&desired.config_map));
    check(case, "service-headless.yaml", &to_yaml(&desired.headless_service));
    check(case, "service-client.yaml", &to_yaml(&desired.client_service));
    check(case, "statefulset.yaml", &to_yaml(&desired.stateful_set));
    match &desired.pod_disruption_budget {
        Some(pdb) => check(case, "pdb.yaml", &to_yaml(pdb)),
        None => check(case, "pdb.yaml", "# disabled\n"),
    }
    match &desired.network_policy {
        Some(np) => check(case, "networkpolicy.yaml", &to_yaml(np)),
        None => check(case, "networkpolicy.yaml", "# disabled\n"),
    }
}

#[test]
fn golden_defaults_new_cluster() {
    let qc = cluster(serde_json::json!({}));
    let inputs = BuildInputs {
        replicas: 3,
        bootstrap_peers: vec![],
        secret_checksum: None,
    };
    check_all("defaults", &qc, &inputs);
}

#[test]
fn golden_initialised_cluster_lists_bootstrap_peers() {
    let qc = cluster(serde_json::json!({"size": 3}));
    let names = Names::of(&qc).expect("names");
    let inputs = BuildInputs {
        replicas: 3,
        bootstrap_peers: (1..3).map(|k| names.p2p_uri(k, false)).collect(),
        secret_checksum: None,
    };
    let desired = build::build(&qc, &inputs).expect("build");
    check("initialised", "configmap.yaml", &to_yaml(&desired.config_map));
}

#[test]
fn golden_full_featured_cluster() {
    let qc = cluster(serde_json::json!({
        "size": 5,
        "image": "ghcr.io/example/qdrant-rs",
        "version": "0.1.0",
        "imagePullPolicy": "IfNotPresent",
        "imagePullSecrets": [{"name": "registry"}],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
        "storage": {"size": "50Gi", "storageClassName": "fast-ssd", "deleteClaimsOnDelete": true},
        "config": {"log_level": "DEBUG", "storage": {"optimizers": {"default_segment_number": 2}},
                   "cluster": {"enabled": true}},
        "service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"}},
        "apiKey": {"name": "qdrant-keys", "key": "api-key"},
        "readOnlyApiKey": {"name": "qdrant-keys", "key": "read-only-api-key"},
        "tls": {"secretName": "qdrant-tls", "p2p": true},
        "nodeSelector": {"disktype": "ssd"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "qdrant", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "demo"}}}],
        "podDisruptionBudget": {"minAvailable": 3},
        "networkPolicy": {"enabled": true},
        "terminationGracePeriodSeconds": 120,
    }));
    let mut qc = qc;
    qc.metadata.annotations = Some(
        [(
            operator::build::RESTARTED_AT_ANNOTATION.to_string(),
            "2026-08-01T12:00:00Z".to_string(),
        )]
        .into(),
    );
    let names = Names::of(&qc).expect("names");
    let inputs = BuildInputs {
        replicas: 4,
        bootstrap_peers: (1..4).map(|k| names.p2p_uri(k, true)).collect(),
        secret_checksum: Some("0123456789abcdef".to_string()),
    };
    check_all("full", &qc, &inputs);
}

#[test]
fn golden_optional_objects_disabled() {
    let qc = cluster(serde_json::json!({
        "size": 1,
        "podDisruptionBudget": {"enabled": false},
        "networkPolicy": {"enabled": false},
        "service": {"type": "NodePort"},
    }));
    let inputs = BuildInputs {
        replicas: 1,
        bootstrap_peers: vec![],
        secret_checksum: None,
    };
    check_all("disabled", &qc, &inputs);
}

#[test]
fn golden_suspended_cluster_has_zero_replicas() {
    let qc = cluster(serde_json::json!({"suspend": true}));
    let inputs = BuildInputs {
        replicas: 0,
        bootstrap_peers: vec![],
        secret_checksum: None,
    };
    let desired = build::build(&qc, &inputs).expect("build");
    check("suspended", "statefulset.yaml", &to_yaml(&desired.stateful_set));
}

/// Structural facts the golden files must keep (so an accidental `UPDATE_GOLDEN` run cannot
/// silently accept a broken builder).
#[test]
fn builders_keep_their_contract() {
    let qc = cluster(serde_json::json!({}));
    let desired = build::build(
        &qc,
        &BuildInputs {
            replicas: 3,
            bootstrap_peers: vec![],
            secret_checksum: None,
        },
    )
    .expect("build");
    let headless = desired.headless_service.spec.as_ref().expect("spec");
    assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
    assert_eq!(headless.publish_not_ready_addresses, Some(true));
    let ports: Vec<i32> = headless.ports.iter().flatten().map(|p| p.port).collect();
    assert_eq!(ports, [6335]);
    let client = desired.client_service.spec.as_ref().expect("spec");
    let ports: Vec<i32> = client.ports.iter().flatten().map(|p| p.port).collect();
    assert_eq!(ports, [6333, 6334], "the p2p port is never exposed");

    let sts = desired.stateful_set.spec.as_ref().expect("spec");
    assert_eq!(sts.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(sts.replicas, Some(3));
    assert_eq!(sts.service_name.as_deref(), Some("demo-headless"));
    let template = &sts.template;
    let annotations = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .expect("annotations");
    assert_eq!(
        annotations
            .get(operator::build::CONFIG_CHECKSUM_ANNOTATION)
            .map(String::len),
        Some(64)
    );
    let pod = template.spec.as_ref().expect("pod spec");
    let container = &pod.containers[0];
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(probe_path(&container.readiness_probe).as_deref(), Some("/readyz"));
    assert_eq!(probe_path(&container.liveness_probe).as_deref(), Some("/livez"));
    let security = pod.security_context.as_ref().expect("pod security");
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(pod.termination_grace_period_seconds, Some(60));
    assert!(container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).is_some());
    let claim = &sts.volume_claim_templates.as_ref().expect("claims")[0];
    assert_eq!(claim.metadata.name.as_deref(), Some("storage"));
    let retention = sts
        .persistent_volume_claim_retention_policy
        .as_ref()
        .expect("retention");
    assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));
    assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
    let script = &container.command.as_ref().expect("command")[2];
    assert!(script.contains("--uri \"$self_uri\""));
    assert!(script.contains("seed_uri=\"http://demo-0.demo-headless.db:6335\""));
    assert!(script.contains("self_uri=\"http://${POD_NAME}.demo-headless.db:6335\""));

    let config = operator::build::configmap::config_yaml(&desired.config_map);
    let config: serde_yaml::Value = serde_yaml::from_str(config).expect("config yaml");
    assert_eq!(config["cluster"]["enabled"], serde_yaml::Value::Bool(true));
    assert!(desired.pod_disruption_budget.is_some());
    let np = desired.network_policy.expect("network policy");
    let rules = np.spec.expect("spec").ingress.expect("ingress");
    assert_eq!(
        rules[0].ports.as_ref().expect("ports")[0].port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(6335))
    );
    assert!(rules[0].from.is_some(), "p2p only from the cluster's pods");
}

#[test]
fn config_changes_change_the_checksum_but_bootstrap_peers_do_not() {
    let annotation = |qc: &QdrantCluster, peers: Vec<String>| {
        let desired = build::build(
            qc,
            &BuildInputs {
                replicas: 3,
                bootstrap_peers: peers,
                secret_checksum: None,
            },
        )
        .expect("build");
        desired
            .stateful_set
            .spec
            .expect("spec")
            .template
            .metadata
            .expect("meta")
            .annotations
            .expect("annotations")[operator::build::CONFIG_CHECKSUM_ANNOTATION]
            .clone()
    };
    let base = cluster(serde_json::json!({}));
    let changed = cluster(serde_json::json!({"config": {"log_level": "DEBUG"}}));
    let a = annotation(&base, vec![]);
    assert_eq!(
        a,
        annotation(&base, vec!["http://demo-1.demo-headless.db:6335".to_string()])
    );
    assert_ne!(a, annotation(&changed, vec![]));
}

fn backup(spec: serde_json::Value) -> operator::crd_backup::QdrantBackup {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "qdrant.dev/v1alpha1",
        "kind": "QdrantBackup",
        "metadata": {"name": "nightly", "namespace": "db", "uid": "6f1c0e4c-0000-4000-8000-000000000002"},
        "spec": spec,
    }))
    .expect("valid QdrantBackup")
}

#[test]
fn golden_backup_and_restore_jobs() {
    use operator::build::backup_job::{backup_job, restore_job};
    let secured = cluster(serde_json::json!({
        "size": 3,
        "apiKey": {"name": "qdrant-keys", "key": "api-key"},
        "tls": {"secretName": "qdrant-tls"},
    }));
    let pvc = backup(serde_json::json!({
        "cluster": "demo", "schedule": "0 3 * * *",
        "retention": {"count": 7, "maxAge": "14d"},
        "target": {"pvc": {"claimName": "qdrant-backups", "path": "/qdrant/"}},
    }));
    let job = backup_job(&pvc, &secured, "20261207T030000Z", "qdrant-operator:dev").expect("job");
    check("backup", "backup-job-pvc.yaml", &to_yaml(&job));

    let plain = cluster(serde_json::json!({"size": 2}));
    let s3 = backup(serde_json::json!({
        "cluster": "demo", "schedule": "@hourly",
        "target": {"s3": {"endpoint": "http://minio.storage:9000", "bucket": "b", "prefix": "prod",
                          "credentialsSecret": {"name": "s3", "accessKeyIdKey": "id", "secretAccessKeyKey": "secret"}}},
        "image": "registry.example/qdrant-operator:1.0",
    }));
    let job = backup_job(&s3, &plain, "20261207T040000Z", "qdrant-operator:dev").expect("job");
    check("backup", "backup-job-s3.yaml", &to_yaml(&job));

    let mut restored = cluster(serde_json::json!({"size": 2, "restoreFrom": {"backup": "nightly"}}));
    restored.metadata.name = Some("demo2".to_string());
    let job = restore_job(&restored, &pvc, Some("20261207T030000Z"), "qdrant-operator:dev").expect("job");
    check("backup", "restore-job.yaml", &to_yaml(&job));
}
