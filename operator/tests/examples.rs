//! The example QdrantClusters in deploy/examples deserialise into the operator's types, pass its
//! validation (including the CRD's CEL rules) and build.

use std::path::PathBuf;

use operator::backup::schedule::Schedule;
use operator::build::backup_job::backup_job;
use operator::build::{self, BuildInputs};
use operator::crd_backup::QdrantBackup;
use operator::validate::validate;
use operator::QdrantCluster;
use serde::Deserialize;

#[test]
fn examples_are_valid_clusters() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let mut clusters = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/examples") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).expect("yaml");
            if value.get("kind").and_then(|k| k.as_str()) != Some("QdrantCluster") {
                continue;
            }
            let mut qc: QdrantCluster =
                serde_yaml::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(validate(&qc), Vec::<String>::new(), "{}", path.display());
            qc.metadata.uid = Some("example".to_string());
            let desired = build::build(
                &qc,
                &BuildInputs {
                    replicas: qc.spec.size,
                    bootstrap_peers: vec![],
                    secret_checksum: None,
                },
            )
            .expect("build");
            assert_eq!(desired.stateful_set.spec.expect("spec").replicas, Some(qc.spec.size));
            clusters += 1;
        }
    }
    assert!(clusters >= 1, "no QdrantCluster in {}", dir.display());
}

#[test]
fn examples_are_valid_backups() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let demo: QdrantCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "qdrant.dev/v1alpha1", "kind": "QdrantCluster",
        "metadata": {"name": "demo", "namespace": "qdrant", "uid": "example"}, "spec": {}
    }))
    .expect("cluster");
    let mut backups = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/examples") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).expect("yaml");
            if value.get("kind").and_then(|k| k.as_str()) != Some("QdrantBackup") {
                continue;
            }
            let mut qb: QdrantBackup =
                serde_yaml::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            kube::core::cel::validate_cel(&qb).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Schedule::parse(&qb.spec.schedule).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            qb.metadata.uid = Some("example".to_string());
            let job = backup_job(&qb, &demo, "20261207T030000Z", "qdrant-operator:dev").expect("job");
            assert!(job.spec.is_some());
            backups += 1;
        }
    }
    assert!(backups >= 1, "no QdrantBackup in {}", dir.display());
}
