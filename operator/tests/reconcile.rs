//! Reconcile tests against a mocked API server (kube's `tower_test` pattern) and the fake
//! Qdrant cluster: create, update (rolling restart), scale up, scale down, suspend/resume,
//! invalid spec, missing Secret, disabled optional objects.

mod support;

use operator::crd::Phase;
use operator::status::{AVAILABLE, DEGRADED, PROGRESSING};
use serde_json::json;
use support::*;

#[tokio::test]
async fn create_applies_every_object_with_server_side_apply() {
    let sim = Sim::new();
    sim.create_cluster(json!({"size": 3}));
    sim.reconcile().await.expect("reconcile");

    // Every child is applied with the field manager, forced, and owned by the cluster.
    let log = sim.api.log();
    let applies: Vec<String> = log
        .iter()
        .filter(|r| r.method == "PATCH" && !r.path.ends_with("/status") && !r.path.contains("/events/"))
        .map(|r| {
            assert!(
                r.query.contains("fieldManager=qdrant-operator"),
                "{}?{}",
                r.path,
                r.query
            );
            assert!(r.query.contains("force=true"), "{}?{}", r.path, r.query);
            r.path.clone()
        })
        .collect();
    assert_eq!(
        applies,
        [
            "/api/v1/namespaces/db/configmaps/demo-config",
            "/api/v1/namespaces/db/services/demo-headless",
            "/api/v1/namespaces/db/services/demo",
            "/apis/apps/v1/namespaces/db/statefulsets/demo",
            "/apis/policy/v1/namespaces/db/poddisruptionbudgets/demo",
            "/apis/networking.k8s.io/v1/namespaces/db/networkpolicies/demo-p2p",
        ]
    );
    let uid = sim.qc().metadata.uid.expect("uid");
    for (collection, name) in [
        (CMS, "demo-config"),
        (SVCS, "demo"),
        (STS, "demo"),
        (PDBS, "demo"),
        (NPS, "demo-p2p"),
    ] {
        let object = sim
            .api
            .get(collection, name)
            .unwrap_or_else(|| panic!("{name} in {collection}"));
        let owner = &object["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], json!(uid), "{name}");
        assert_eq!(owner["controller"], json!(true), "{name}");
        assert_eq!(owner["kind"], json!("QdrantCluster"));
    }
    assert_eq!(sim.sts_replicas(), 3);
    assert!(sim.has_event("Creating"));
    let status = sim.status();
    assert_eq!(status.phase, Some(Phase::Creating));
    assert_eq!(status.current_nodes, 3);
    assert_eq!(
        status.selector.as_deref(),
        Some("app.kubernetes.io/instance=demo,app.kubernetes.io/name=qdrant")
    );
    assert_eq!(sim.condition(PROGRESSING).status, "True");
    assert_eq!(sim.condition(AVAILABLE).status, "False");
    // The status is written with server-side apply on the status subresource.
    assert!(log.iter().any(|r| r.method == "PATCH"
        && r.path == "/apis/qdrant.dev/v1alpha1/namespaces/db/qdrantclusters/demo/status"
        && r.query.contains("fieldManager=qdrant-operator")));
}

#[tokio::test]
async fn create_converges_to_healthy_and_records_initialisation() {
    let mut sim = Sim::new();
    sim.create_cluster(json!({"size": 3}));
    let rounds = sim.run_until(10, |s| s.status().phase == Some(Phase::Healthy)).await;
    assert!(rounds <= 4, "took {rounds} rounds");
    let status = sim.status();
    assert!(status.initialized);
    assert_eq!(status.ready_nodes, 3);
    assert_eq!(status.peers.len(), 3);
    assert!(status.peers["demo-0"].uri.contains("demo-0.demo-headless.db"));
    assert_eq!(sim.condition(AVAILABLE).status, "True");
    assert_eq!(sim.condition(PROGRESSING).reason, "Reconciled");
    assert_eq!(sim.condition(DEGRADED).status, "False");
    assert_eq!(status.observed_generation, Some(1));
    // Once initialised, pod 0 may re-join through pods 1 and 2 if its volume is lost.
    let cm = sim.api.get(CMS, "demo-config").expect("configmap");
    assert_eq!(
        cm["data"]["bootstrap-peers"],
        json!("http://demo-1.demo-headless.db:6335\nhttp://demo-2.demo-headless.db:6335\n")
    );
    // A healthy cluster needs no further writes: a reconcile only reads and re-applies.
    sim.api.clear_log();
    sim.reconcile().await.expect("reconcile");
    assert!(
        sim.api.log().iter().all(|r| !r.path.ends_with("/status")),
        "unchanged status is not rewritten"
    );
    assert!(sim.api.log().iter().all(|r| r.method != "DELETE"));
}

#[tokio::test]
async fn config_update_rolls_pods_one_at_a_time() {
    let mut sim = Sim::healthy(json!({"size": 3})).await;
    sim.fake.create_collection("c", 6, 2);
    let checksum =
        |sim: &Sim| sim.sts()["spec"]["template"]["metadata"]["annotations"]["qdrant.dev/config-checksum"].clone();
    let before = checksum(&sim);
    sim.edit_spec(|spec| spec["config"] = json!({"log_level": "DEBUG"}));
    sim.reconcile().await.expect("reconcile");
    assert_ne!(checksum(&sim), before, "config change must change the pod template");
    let cm = sim.api.get(CMS, "demo-config").expect("configmap");
    assert!(cm["data"]["config.yaml"]
        .as_str()
        .expect("yaml")
        .contains("log_level: DEBUG"));

    // Follow the rollout: every pod deletion must be a single pod, highest ordinal first.
    sim.api.clear_log();
    sim.run_until(30, |s| {
        s.status().phase == Some(Phase::Healthy)
            && s.api
                .list(PODS)
                .iter()
                .all(|p| p["metadata"]["labels"]["controller-revision-hash"] == s.sts()["status"]["updateRevision"])
    })
    .await;
    let deletions: Vec<String> = sim
        .api
        .log()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("/pods/"))
        .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(deletions, ["demo-2", "demo-1", "demo-0"]);
    assert!(sim.has_event("RestartingPod"));
    assert_eq!(sim.status().observed_generation, Some(2));
}

#[tokio::test]
async fn upgrade_is_blocked_while_a_shard_has_a_single_copy() {
    let mut sim = Sim::healthy(json!({"size": 3})).await;
    sim.fake.create_collection("replicated", 3, 2);
    sim.fake.create_collection("single", 3, 1);
    sim.edit_spec(|spec| spec["version"] = json!("v1.19.1"));
    sim.reconcile().await.expect("apply new template");
    sim.tick();
    sim.api.clear_log();
    sim.reconcile().await.expect("reconcile");
    assert!(sim.api.log().iter().all(|r| r.method != "DELETE"), "no pod may restart");
    let degraded = sim.condition(DEGRADED);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "UpgradeBlocked")
    );
    assert!(degraded.message.contains("of single"), "{}", degraded.message);
    assert_eq!(sim.status().phase, Some(Phase::Blocked));
    assert!(sim
        .events()
        .iter()
        .any(|(t, r, _)| t == "Warning" && r == "UpgradeBlocked"));
}

#[tokio::test]
async fn scale_up_adds_pods_then_rebalances() {
    let mut sim = Sim::healthy(json!({"size": 3})).await;
    sim.fake.create_collection("c", 10, 1);
    sim.edit_spec(|spec| spec["size"] = json!(5));
    sim.reconcile().await.expect("reconcile");
    assert_eq!(sim.sts_replicas(), 5);
    assert!(sim.has_event("ScalingUp"));
    assert_eq!(sim.status().phase, Some(Phase::Scaling));
    sim.run_until(40, |s| s.status().phase == Some(Phase::Healthy)).await;
    let counts = sim.fake.replica_counts();
    assert_eq!(counts.len(), 5);
    assert!(counts.values().all(|n| *n == 2), "{counts:?}");
    assert!(sim.has_event("Rebalancing"));
    assert_eq!(sim.status().peers.len(), 5);
}

#[tokio::test]
async fn scale_down_drains_removes_peers_and_deletes_their_volumes() {
    let mut sim = Sim::healthy(json!({"size": 5})).await;
    sim.fake.create_collection("single", 10, 1);
    sim.fake.create_collection("double", 4, 2);
    sim.edit_spec(|spec| spec["size"] = json!(3));
    sim.run_until(80, |s| {
        s.status().phase == Some(Phase::Healthy) && s.sts_replicas() == 3
    })
    .await;
    assert_eq!(sim.fake.state().peers.len(), 3);
    let mut pvcs = sim.pvc_names();
    pvcs.sort();
    assert_eq!(pvcs, ["storage-demo-0", "storage-demo-1", "storage-demo-2"]);
    assert_eq!(sim.pod_names().len(), 3);
    for reason in ["DrainingPeer", "PeerRemoved", "ScaledDown", "DeletedVolume"] {
        assert!(sim.has_event(reason), "missing event {reason}: {:?}", sim.events());
    }
    // Every removal was accepted by the cluster: no forced removal, no refused one.
    let calls = sim.fake.state().calls.clone();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("remove_peer")).count(),
        2,
        "{calls:?}"
    );
    for (shard, replicas) in &sim.fake.state().collections["double"].shards {
        assert_eq!(replicas.len(), 2, "shard {shard} lost a replica");
    }
}

#[tokio::test]
async fn scale_down_refuses_to_lose_the_last_replica() {
    let mut sim = Sim::healthy(json!({"size": 3})).await;
    sim.fake.create_collection("c", 3, 1);
    // The copy on pod 2 is Dead and it is the only one.
    {
        let peer2 = sim.status().peers["demo-2"].peer_id;
        let mut state = sim.fake.state();
        for replicas in state.collections.get_mut("c").expect("c").shards.values_mut() {
            if let Some(st) = replicas.get_mut(&peer2) {
                *st = operator::cluster_api::ReplicaState::Dead;
            }
        }
    }
    sim.edit_spec(|spec| spec["size"] = json!(2));
    for _ in 0..3 {
        sim.reconcile().await.expect("reconcile never fails on a blocked drain");
        sim.tick();
    }
    assert_eq!(sim.sts_replicas(), 3, "must not shrink");
    assert_eq!(sim.fake.state().peers.len(), 3);
    assert!(sim.fake.state().calls.is_empty(), "no shard or peer operation");
    let degraded = sim.condition(DEGRADED);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "LastReplicaNotActive")
    );
    assert!(sim
        .events()
        .iter()
        .any(|(t, r, _)| t == "Warning" && r == "LastReplicaNotActive"));
    assert_eq!(sim.pvc_names().len(), 3);
}

#[tokio::test]
async fn suspend_scales_to_zero_keeps_volumes_and_resumes() {
    let mut sim = Sim::healthy(json!({"size": 3})).await;
    sim.fake.create_collection("c", 3, 1);
    sim.edit_spec(|spec| spec["suspend"] = json!(true));
    sim.reconcile().await.expect("reconcile");
    assert_eq!(sim.sts_replicas(), 0);
    assert!(sim.has_event("Suspended"));
    sim.tick();
    sim.reconcile().await.expect("reconcile");
    assert!(sim.pod_names().is_empty());
    assert_eq!(sim.pvc_names().len(), 3, "volumes are kept");
    assert_eq!(sim.fake.state().peers.len(), 3, "membership is kept");
    assert!(sim.fake.state().calls.is_empty(), "no drain on suspend");
    assert_eq!(sim.status().phase, Some(Phase::Suspended));
    assert_eq!(sim.condition(AVAILABLE).reason, "Suspended");
    assert_eq!(sim.status().peers.len(), 3, "last known peers stay in status");

    sim.edit_spec(|spec| spec["suspend"] = json!(false));
    sim.run_until(10, |s| s.status().phase == Some(Phase::Healthy)).await;
    assert_eq!(sim.sts_replicas(), 3);
    assert!(sim.has_event("Resuming"));
    assert_eq!(sim.fake.state().peers.len(), 3, "the same peers came back");
    assert!(sim.fake.shards_without_active_replica().is_empty());
}

#[tokio::test]
async fn invalid_spec_is_reported_and_nothing_is_applied_or_deleted() {
    let mut sim = Sim::healthy(json!({"size": 3})).await;
    sim.edit_spec(|spec| {
        spec["config"] = json!({"cluster": {"enabled": false}});
        spec["size"] = json!(1);
    });
    sim.api.clear_log();
    let action = sim.reconcile().await.expect("an invalid spec is not an error");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(operator::reconcile::REQUEUE_INVALID)
    );
    let log = sim.api.log();
    let writes: Vec<String> = log
        .iter()
        .filter(|r| r.method != "GET" && !r.path.contains("/events") && !r.path.ends_with("/status"))
        .map(|r| r.line())
        .collect();
    assert!(writes.is_empty(), "nothing may be applied or deleted: {writes:?}");
    assert_eq!(sim.status().phase, Some(Phase::Invalid));
    let degraded = sim.condition(DEGRADED);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "InvalidSpec")
    );
    assert!(
        degraded.message.contains("config.cluster.enabled"),
        "{}",
        degraded.message
    );
    assert!(sim
        .events()
        .iter()
        .any(|(t, r, _)| t == "Warning" && r == "InvalidSpec"));
    assert_eq!(sim.sts_replicas(), 3);
    sim.tick();
    assert!(sim.fake.state().calls.is_empty());
    // Fixing the spec resumes normal operation.
    sim.edit_spec(|spec| {
        spec["config"] = json!({});
        spec["size"] = json!(3);
    });
    sim.run_until(5, |s| s.status().phase == Some(Phase::Healthy)).await;
    assert_eq!(sim.condition(DEGRADED).status, "False");
}

#[tokio::test]
async fn invalid_names_are_reported_and_never_applied() {
    // A CR whose name breaks the naming rules (the CRD's CEL rule would reject it; an old CRD
    // might not): reported, never applied.
    let sim = Sim::new();
    sim.api.put(
        QCS,
        json!({"apiVersion": "qdrant.dev/v1alpha1", "kind": "QdrantCluster",
               "metadata": {"name": "Demo_1", "namespace": NS}, "spec": {}}),
    );
    let qc: operator::QdrantCluster = serde_json::from_value(sim.api.get(QCS, "Demo_1").expect("cr")).expect("parse");
    let action = operator::reconcile::reconcile(std::sync::Arc::new(qc), sim.ctx.clone())
        .await
        .expect("no error");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(operator::reconcile::REQUEUE_INVALID)
    );
    assert!(sim.api.list(STS).is_empty());
    let status = sim.api.get(QCS, "Demo_1").expect("cr")["status"].clone();
    assert_eq!(status["phase"], json!("Invalid"));
}

#[tokio::test]
async fn missing_api_key_secret_blocks_until_created_then_is_used() {
    let mut sim = Sim::new();
    sim.create_cluster(json!({"size": 1, "apiKey": {"name": "keys", "key": "api-key"}}));
    sim.reconcile().await.expect("reconcile");
    assert!(sim.api.list(STS).is_empty(), "nothing applied without the Secret");
    assert_eq!(sim.condition(DEGRADED).reason, "SecretNotFound");
    assert!(sim.has_event("SecretNotFound"));

    sim.api.put(
        SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys", "namespace": NS},
               "data": {"api-key": "czNjcjN0"}}),
    );
    sim.run_until(5, |s| s.status().phase == Some(Phase::Healthy)).await;
    let sts = sim.sts();
    let env = &sts["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(env
        .as_array()
        .expect("env")
        .iter()
        .any(|e| e["name"] == json!("QDRANT__SERVICE__API_KEY")
            && e["valueFrom"]["secretKeyRef"]["name"] == json!("keys")));
    assert!(sts["spec"]["template"]["metadata"]["annotations"]["qdrant.dev/secret-checksum"].is_string());
    let connections = sim.fake.state().connections.clone();
    assert_eq!(
        connections.last().and_then(|c| c.api_key.clone()).as_deref(),
        Some("s3cr3t")
    );
}

#[tokio::test]
async fn disabling_optional_objects_deletes_them() {
    let mut sim = Sim::healthy(json!({"size": 3})).await;
    assert!(sim.api.get(NPS, "demo-p2p").is_some());
    assert!(sim.api.get(PDBS, "demo").is_some());
    sim.edit_spec(|spec| {
        spec["networkPolicy"] = json!({"enabled": false});
        spec["podDisruptionBudget"] = json!({"enabled": false});
    });
    sim.reconcile().await.expect("reconcile");
    sim.tick();
    assert!(sim.api.get(NPS, "demo-p2p").is_none());
    assert!(sim.api.get(PDBS, "demo").is_none());
    // Idempotent: a second reconcile tolerates their absence.
    sim.reconcile().await.expect("reconcile");
}

#[tokio::test]
async fn api_server_errors_fail_the_reconcile_and_count_in_metrics() {
    let sim = Sim::new();
    sim.create_cluster(json!({"size": 1}));
    sim.api
        .store()
        .failing
        .push("apis/apps/v1/namespaces/db/statefulsets".to_string());
    let err = sim.reconcile().await.expect_err("must fail");
    assert!(matches!(err, operator::Error::Kube(_)), "{err}");
    let text = sim.ctx.metrics.encode().expect("metrics");
    assert!(
        text.contains("qdrant_operator_reconcile_failures_total{error=\"kube\"} 1"),
        "{text}"
    );
    let action = operator::reconcile::error_policy(std::sync::Arc::new(sim.qc()), &err, sim.ctx.clone());
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(operator::reconcile::REQUEUE_ERROR)
    );
}

#[tokio::test]
async fn malformed_objects_are_reported_and_never_fatal() {
    let sim = Sim::new();
    sim.api.put(
        QCS,
        json!({"apiVersion": "qdrant.dev/v1alpha1", "kind": "QdrantCluster",
               "metadata": {"name": NAME, "namespace": NS}, "spec": {"size": "three"}}),
    );
    let guard: kube::core::DeserializeGuard<operator::QdrantCluster> =
        serde_json::from_value(sim.api.get(QCS, NAME).expect("cr")).expect("the guard always deserialises");
    assert!(guard.0.is_err());
    let action = operator::reconcile::reconcile_guarded(std::sync::Arc::new(guard), sim.ctx.clone())
        .await
        .expect("a malformed object is not an error");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(operator::reconcile::REQUEUE_INVALID)
    );
    assert!(sim.api.list(STS).is_empty(), "nothing applied");
    let status = sim.api.get(QCS, NAME).expect("cr")["status"].clone();
    assert_eq!(status["phase"], json!("Invalid"));
    let degraded = status["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == json!("Degraded"))
        .expect("Degraded")
        .clone();
    assert_eq!(degraded["status"], json!("True"));
    assert!(degraded["message"]
        .as_str()
        .expect("message")
        .contains("cannot be read"));
    assert!(sim
        .events()
        .iter()
        .any(|(t, r, _)| t == "Warning" && r == "InvalidSpec"));
    // A well-formed object goes through the same entry point normally.
    sim.api.modify(QCS, NAME, |qc| qc["spec"]["size"] = json!(1));
    let guard: kube::core::DeserializeGuard<operator::QdrantCluster> =
        serde_json::from_value(sim.api.get(QCS, NAME).expect("cr")).expect("guard");
    operator::reconcile::reconcile_guarded(std::sync::Arc::new(guard), sim.ctx.clone())
        .await
        .expect("reconcile");
    assert_eq!(sim.sts_replicas(), 1);
}
