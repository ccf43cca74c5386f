//! The QdrantBackup controller and `spec.restoreFrom` against the mocked API server: Jobs are
//! created on schedule (and for a restore once the cluster formed), their results (the pods'
//! termination messages) land in the status, and Available stays false until the restore
//! succeeded.

mod support;

use std::sync::Arc;

use operator::backup_controller::{self, BackupContext};
use operator::crd::RestorePhase;
use operator::crd_backup::QdrantBackup;
use operator::metrics::Metrics;
use operator::status::AVAILABLE;
use serde_json::{json, Value};
use support::*;

fn put_backup(api: &ApiServer, spec: Value) {
    api.put(
        QBS,
        json!({"apiVersion": "qdrant.dev/v1alpha1", "kind": "QdrantBackup",
               "metadata": {"name": "nightly", "namespace": NS}, "spec": spec}),
    );
}

fn backup_spec() -> Value {
    // Monthly on the 1st: created 2026-01-01 (the mock's creation time), so exactly one run is
    // due now, whatever the date, and the next one is weeks away.
    json!({"cluster": NAME, "schedule": "0 0 1 * *", "retention": {"count": 3},
           "target": {"pvc": {"claimName": "backups"}}})
}

/// Marks a Job finished and adds its pod with the agent's termination message.
fn finish_job(api: &ApiServer, job: &str, exit: i32, message: &str) {
    api.modify(JOBS, job, |j| {
        j["status"] = if exit == 0 {
            json!({"succeeded": 1})
        } else {
            json!({"failed": 2, "conditions": [{"type": "Failed", "status": "True",
                   "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})
        };
    });
    api.put(
        PODS,
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": format!("{job}-abcde"), "namespace": NS, "labels": {"job-name": job}},
               "status": {"containerStatuses": [{"name": "agent", "image": "i", "imageID": "", "ready": false,
                   "restartCount": 0, "state": {"terminated": {"exitCode": exit, "message": message,
                   "finishedAt": "2026-12-07T10:00:00Z"}}}]}}),
    );
}

/// Reconciles and lets the world move `n` times.
async fn rounds(sim: &mut Sim, n: usize) {
    for _ in 0..n {
        sim.reconcile().await.expect("reconcile");
        sim.tick();
    }
}

fn qb(api: &ApiServer) -> QdrantBackup {
    serde_json::from_value(api.get(QBS, "nightly").expect("QdrantBackup")).expect("parse")
}

#[tokio::test]
async fn restore_from_runs_one_job_once_formed_and_gates_available() {
    let mut sim = Sim::new();
    put_backup(&sim.api, backup_spec());
    sim.create_cluster(json!({"size": 3, "restoreFrom": {"backup": "nightly"}}));
    sim.reconcile().await.expect("reconcile");
    assert!(
        sim.api.get(JOBS, "demo-restore").is_none(),
        "not before the cluster formed"
    );
    let restore = sim.status().restore.expect("restore status");
    assert_eq!(restore.phase, RestorePhase::Pending);
    assert_eq!(sim.condition(AVAILABLE).reason, "Restoring");

    sim.run_until(10, |s| s.api.get(JOBS, "demo-restore").is_some()).await;
    let job = sim.api.get(JOBS, "demo-restore").expect("restore job");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["backup-agent", "restore"])
    );
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "QdrantCluster");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        "qdrant-operator:test"
    );
    rounds(&mut sim, 3).await;
    assert_eq!(sim.status().restore.expect("restore").phase, RestorePhase::Running);
    let available = sim.condition(AVAILABLE);
    assert_eq!(
        available.status, "False",
        "a formed cluster is not Available while restoring"
    );
    assert_eq!(available.reason, "Restoring");
    assert!(sim.has_event("RestoreStarted"));

    finish_job(&sim.api, "demo-restore", 0, r#"{"restored":"20261201T000000Z"}"#);
    sim.reconcile().await.expect("reconcile");
    let restore = sim.status().restore.expect("restore");
    assert_eq!(restore.phase, RestorePhase::Succeeded);
    assert_eq!(restore.id.as_deref(), Some("20261201T000000Z"));
    assert!(sim.api.get(JOBS, "demo-restore").is_none(), "the Job is cleaned up");
    assert_eq!(sim.condition(AVAILABLE).status, "True");
    assert!(sim.has_event("RestoreSucceeded"));
    // Never again.
    rounds(&mut sim, 3).await;
    assert!(sim.api.get(JOBS, "demo-restore").is_none());
    assert_eq!(sim.condition(AVAILABLE).status, "True");
}

#[tokio::test]
async fn a_failed_restore_keeps_the_cluster_unavailable() {
    let mut sim = Sim::new();
    put_backup(&sim.api, backup_spec());
    sim.create_cluster(json!({"size": 1, "restoreFrom": {"backup": "nightly", "id": "20261201T000000Z"}}));
    sim.run_until(10, |s| s.api.get(JOBS, "demo-restore").is_some()).await;
    let job = sim.api.get(JOBS, "demo-restore").expect("restore job");
    let env = &job["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(env
        .as_array()
        .expect("env")
        .iter()
        .any(|e| e["name"] == "BACKUP_ID" && e["value"] == "20261201T000000Z"));
    finish_job(
        &sim.api,
        "demo-restore",
        1,
        r#"{"error":"backup 20261201T000000Z is incomplete"}"#,
    );
    sim.reconcile().await.expect("reconcile");
    let restore = sim.status().restore.expect("restore");
    assert_eq!(restore.phase, RestorePhase::Failed);
    assert!(restore.message.expect("message").contains("incomplete"));
    let available = sim.condition(AVAILABLE);
    assert_eq!(
        (available.status.as_str(), available.reason.as_str()),
        ("False", "RestoreFailed")
    );
    assert!(sim.has_event("RestoreFailed"));
}

#[tokio::test]
async fn a_missing_backup_resource_keeps_the_restore_pending() {
    let mut sim = Sim::new();
    sim.create_cluster(json!({"size": 1, "restoreFrom": {"backup": "nope"}}));
    rounds(&mut sim, 6).await;
    let restore = sim.status().restore.expect("restore");
    assert_eq!(restore.phase, RestorePhase::Pending);
    assert!(restore.message.expect("message").contains("does not exist"));
    assert!(sim.api.list(JOBS).is_empty());
}

#[tokio::test]
async fn scheduled_backup_job_is_created_recorded_and_deleted() {
    let sim = Sim::new();
    sim.create_cluster(json!({"size": 3}));
    put_backup(&sim.api, backup_spec());
    let ctx = Arc::new(BackupContext::new(
        sim.ctx.client.clone(),
        Metrics::new(),
        None,
        Some("qdrant-operator:test".to_string()),
    ));
    backup_controller::reconcile(Arc::new(qb(&sim.api)), ctx.clone())
        .await
        .expect("reconcile");
    let jobs = sim.api.list(JOBS);
    assert_eq!(jobs.len(), 1, "one run for the missed schedule");
    let job = &jobs[0];
    let job_name = job["metadata"]["name"].as_str().expect("name").to_string();
    assert!(job_name.starts_with("nightly-"), "{job_name}");
    assert_eq!(job["metadata"]["labels"]["qdrant.dev/backup"], "nightly");
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "QdrantBackup");
    let id = job["metadata"]["labels"]["qdrant.dev/backup-id"]
        .as_str()
        .expect("id")
        .to_string();
    let status = qb(&sim.api).status.expect("status");
    assert_eq!(status.active_job.as_deref(), Some(job_name.as_str()));
    assert!(status
        .last_schedule_time
        .as_deref()
        .is_some_and(|t| t.ends_with("-01T00:00:00Z")));
    assert!(status.next_schedule_time.is_some());

    // Still running: nothing new.
    backup_controller::reconcile(Arc::new(qb(&sim.api)), ctx.clone())
        .await
        .expect("reconcile");
    assert_eq!(sim.api.list(JOBS).len(), 1);

    let result = json!({"backup": {"id": id, "startedAt": "2026-12-07T10:00:00Z",
        "completedAt": "2026-12-07T10:01:00Z", "sizeBytes": 1234, "location": format!("pvc://backups/nightly/{id}"),
        "manifestSha256": "ab", "collections": [{"name": "docs", "shards": 2, "sizeBytes": 1234, "points": 10,
        "checksums": ["c0", "c1"]}]}, "pruned": ["20261101T000000Z"]});
    sim.api.modify(QBS, "nightly", |q| {
        q["status"]["backups"] = json!([{"id": "20261101T000000Z", "startedAt": "", "completedAt": "",
            "sizeBytes": 1, "location": "", "manifestSha256": "", "collections": []}]);
    });
    finish_job(&sim.api, &job_name, 0, &result.to_string());
    backup_controller::reconcile(Arc::new(qb(&sim.api)), ctx.clone())
        .await
        .expect("reconcile");
    let status = qb(&sim.api).status.expect("status");
    assert_eq!(status.backups.len(), 1, "the pruned one is gone: {:?}", status.backups);
    assert_eq!(status.backups[0].id, id);
    assert_eq!(status.backups[0].collections[0].checksums, ["c0", "c1"]);
    assert_eq!(status.last_successful_backup.as_deref(), Some(id.as_str()));
    assert_eq!(status.active_job, None);
    assert!(sim.api.list(JOBS).is_empty(), "the recorded Job is deleted");
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").expect("Ready");
    assert_eq!(ready.status, "True");

    // A failed run is reported.
    sim.api.modify(QBS, "nightly", |q| {
        q["status"]["lastScheduleTime"] = json!("2020-01-01T00:00:00Z");
    });
    backup_controller::reconcile(Arc::new(qb(&sim.api)), ctx.clone())
        .await
        .expect("reconcile");
    let jobs = sim.api.list(JOBS);
    assert_eq!(jobs.len(), 1);
    let failed = jobs[0]["metadata"]["name"].as_str().expect("name").to_string();
    finish_job(&sim.api, &failed, 1, r#"{"error":"no node answered"}"#);
    backup_controller::reconcile(Arc::new(qb(&sim.api)), ctx)
        .await
        .expect("reconcile");
    let status = qb(&sim.api).status.expect("status");
    assert!(status
        .last_failure
        .as_deref()
        .is_some_and(|f| f.contains("no node answered")));
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "BackupFailed")
    );
    assert_eq!(status.backups.len(), 1, "earlier backups stay");
}

#[tokio::test]
async fn a_backup_of_a_missing_cluster_is_reported() {
    let sim = Sim::new();
    put_backup(&sim.api, backup_spec());
    let ctx = Arc::new(BackupContext::new(
        sim.ctx.client.clone(),
        Metrics::new(),
        None,
        Some("qdrant-operator:test".to_string()),
    ));
    backup_controller::reconcile(Arc::new(qb(&sim.api)), ctx)
        .await
        .expect("reconcile");
    assert!(sim.api.list(JOBS).is_empty());
    let status = qb(&sim.api).status.expect("status");
    assert!(status
        .last_failure
        .as_deref()
        .is_some_and(|f| f.contains("does not exist")));
}
