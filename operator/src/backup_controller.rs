//! The QdrantBackup controller: observe the backup Jobs -> plan (pure, `backup::plan`) ->
//! start a Job / delete recorded ones -> status and Events.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tracing::{debug, info, warn};

use crate::backup::plan::{plan, JobOutcome, JobView, PlanInput};
use crate::build::backup_job::{backup_job, BACKUP_ID_LABEL, BACKUP_LABEL};
use crate::build::MANAGER;
use crate::crd::QdrantCluster;
use crate::crd_backup::{QdrantBackup, QdrantBackupStatus};
use crate::error::Error;
use crate::jobs::{self, Outcome};
use crate::metrics::Metrics;
use crate::status::merge_conditions;

/// Shared state of the QdrantBackup controller.
pub struct BackupContext {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// Image of the agent Jobs (the operator's own image), unless a QdrantBackup names one.
    pub agent_image: Option<String>,
}

impl BackupContext {
    pub fn new(client: Client, metrics: Metrics, instance: Option<String>, agent_image: Option<String>) -> Self {
        let reporter = Reporter {
            controller: MANAGER.to_string(),
            instance,
        };
        BackupContext {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            agent_image,
        }
    }
}

/// The agent Jobs of `qb` (its label, and owned by it).
async fn observe_jobs(client: &Client, qb: &QdrantBackup) -> Result<Vec<JobView>, Error> {
    let namespace = qb.namespace_str();
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let uid = qb.metadata.uid.clone().unwrap_or_default();
    let listed = api
        .list(&ListParams::default().labels(&format!("{BACKUP_LABEL}={}", qb.name_str())))
        .await?;
    let mut views = Vec::new();
    for job in listed.items {
        let owned = job.owner_references().iter().any(|o| o.uid == uid);
        if !owned {
            continue;
        }
        let outcome = match jobs::outcome(client, namespace, &job).await? {
            Outcome::Running => JobOutcome::Running,
            Outcome::Succeeded(result) => JobOutcome::Succeeded(result),
            Outcome::Failed(message) => JobOutcome::Failed(message),
        };
        views.push(JobView {
            name: job.name_any(),
            id: job.labels().get(BACKUP_ID_LABEL).cloned().unwrap_or_default(),
            outcome,
        });
    }
    Ok(views)
}

async fn publish(ctx: &BackupContext, qb: &QdrantBackup, reason: &str, note: &str, warning: bool) {
    let event = Event {
        type_: if warning { EventType::Warning } else { EventType::Normal },
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: reason.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &qb.object_ref(&())).await {
        warn!(error = %e, reason, "cannot publish event");
    }
}

/// Reconciles one QdrantBackup.
pub async fn reconcile(qb: Arc<QdrantBackup>, ctx: Arc<BackupContext>) -> Result<Action, Error> {
    if qb.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = qb.namespace_str().to_string();
    let jobs = observe_jobs(&ctx.client, &qb).await?;
    let previous = qb.status.clone().unwrap_or_default();
    let now = jiff::Timestamp::now();
    let created = qb.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
    let mut decision = plan(&PlanInput {
        schedule: &qb.spec.schedule,
        suspend: qb.spec.suspend,
        status: &previous,
        jobs: &jobs,
        created,
        now,
    });
    if let Some(id) = decision.start.clone() {
        match start_job(&ctx, &qb, &id).await {
            Ok(name) => {
                info!(backup = qb.name_str(), job = %name, "backup job started");
                decision.status.active_job = Some(name);
                ctx.metrics.action("BackupStarted");
            }
            Err(message) => {
                warn!(%message, "cannot start the backup job");
                decision.events.retain(|(reason, _, _)| *reason != "BackupStarted");
                decision.events.push(("BackupNotStarted", message.clone(), true));
                decision.status.last_failure = Some(message.clone());
                decision.conditions[0] =
                    crate::status::ConditionSpec::new(crate::backup::plan::READY, false, "BackupNotStarted", message);
            }
        }
    }
    for (reason, note, warning) in &decision.events {
        publish(&ctx, &qb, reason, note, *warning).await;
    }
    let status = QdrantBackupStatus {
        conditions: merge_conditions(
            &previous.conditions,
            &decision.conditions,
            qb.metadata.generation,
            &Time(now),
        ),
        ..decision.status
    };
    if qb.status.as_ref() != Some(&status) {
        let api: Api<QdrantBackup> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = serde_json::json!({
            "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
            "kind": "QdrantBackup",
            "status": status,
        });
        api.patch_status(
            qb.name_str(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    // Only once the results are in the status.
    for name in &decision.delete_jobs {
        jobs::delete_job(&ctx.client, &namespace, name).await?;
    }
    Ok(Action::requeue(decision.requeue))
}

/// Creates the Job of backup `id`; `Err(message)` when it cannot be built.
async fn start_job(ctx: &BackupContext, qb: &QdrantBackup, id: &str) -> Result<String, String> {
    let namespace = qb.namespace_str();
    let clusters: Api<QdrantCluster> = Api::namespaced(ctx.client.clone(), namespace);
    let qc = match clusters.get_opt(&qb.spec.cluster).await {
        Ok(Some(qc)) => qc,
        Ok(None) => return Err(format!("QdrantCluster {} does not exist", qb.spec.cluster)),
        Err(e) => return Err(format!("cannot read QdrantCluster {}: {e}", qb.spec.cluster)),
    };
    let Some(image) = qb.spec.image.clone().or_else(|| ctx.agent_image.clone()) else {
        return Err("no agent image: set spec.image or the operator's OPERATOR_IMAGE".to_string());
    };
    let job = backup_job(qb, &qc, id, &image).map_err(|e| e.to_string())?;
    let name = job.name_any();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&job))
        .await
        .map_err(|e| format!("cannot create Job {name}: {e}"))?;
    Ok(name)
}

/// The error policy: log and retry soon.
pub fn error_policy(qb: Arc<QdrantBackup>, error: &Error, ctx: Arc<BackupContext>) -> Action {
    warn!(name = %qb.name_any(), %error, "backup reconcile failed");
    ctx.metrics.failed(error);
    Action::requeue(Duration::from_secs(15))
}

/// Runs the QdrantBackup controller until SIGTERM/SIGINT.
pub async fn run(ctx: Arc<BackupContext>, namespace: Option<String>) -> Result<(), Error> {
    let client = ctx.client.clone();
    let (backups, jobs): (Api<QdrantBackup>, Api<Job>) = match &namespace {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    if let Err(e) = backups.list(&ListParams::default().limit(1)).await {
        warn!(error = %e, "QdrantBackup is not served; install deploy/crds/qdrantbackup.yaml");
        return Err(e.into());
    }
    Controller::new(backups, watcher::Config::default().any_semantic())
        .owns(jobs, watcher::Config::default().labels(BACKUP_LABEL))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, action)) => debug!(%object, ?action, "reconciled"),
                Err(e) => debug!(error = %e, "reconcile error"),
            }
        })
        .await;
    Ok(())
}
