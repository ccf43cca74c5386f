//! Reconcile one QdrantCluster: validate -> observe (Kubernetes + the cluster's REST API) ->
//! plan (pure) -> server-side apply the objects -> execute the one planned step -> status and
//! Events.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::error_boundary::{DeserializeGuard, InvalidObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, info, instrument, warn};

use crate::build::backup_job::{restore_job_name, RESTORE_LABEL};
use crate::build::config::checksum;
use crate::build::{self, selector_string, BuildInputs, Desired, Names, MANAGER};
use crate::cluster_api::{ClusterApi, ClusterApiProvider, Connection};
use crate::crd::{PeerStatus, Phase, QdrantCluster, QdrantClusterStatus, RestorePhase, RestoreStatus};
use crate::crd_backup::QdrantBackup;
use crate::error::Error;
use crate::jobs;
use crate::metrics::Metrics;
use crate::planner::{self, ClusterAction, PlanInput, PodView, Step, StsView};
use crate::restore::{self, gate_available, RestoreJob};
use crate::snapshot::{observe_cluster, ClusterSnapshot, PodTopology, Topology};
use crate::status::{conditions_for, conditions_for_rejection, describe_operation, merge_conditions, Availability};
use crate::validate::validate;

/// Requeue while something is in progress.
pub const REQUEUE_BUSY: Duration = Duration::from_secs(5);
/// Requeue while blocked on a human.
pub const REQUEUE_BLOCKED: Duration = Duration::from_secs(30);
/// Requeue of a healthy cluster (periodic health and balance check).
pub const REQUEUE_IDLE: Duration = Duration::from_secs(60);
/// Requeue of an invalid spec (a spec change triggers a reconcile anyway).
pub const REQUEUE_INVALID: Duration = Duration::from_secs(300);
/// Requeue after an error.
pub const REQUEUE_ERROR: Duration = Duration::from_secs(15);

/// Shared state of the reconciler.
pub struct Context<P: ClusterApiProvider> {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub provider: P,
    /// Image of the restore Jobs (the operator's own image), unless the QdrantBackup names one.
    pub agent_image: Option<String>,
}

impl<P: ClusterApiProvider> Context<P> {
    /// A context reporting Events as `qdrant-operator` (instance: this pod's name, if known).
    pub fn new(client: Client, provider: P, metrics: Metrics, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: MANAGER.to_string(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            provider,
            agent_image: None,
        }
    }

    /// Sets the image of the restore Jobs.
    pub fn with_agent_image(mut self, image: Option<String>) -> Self {
        self.agent_image = image;
        self
    }
}

/// What the reconciler saw in Kubernetes.
#[derive(Clone, Debug, Default)]
pub struct K8sObservation {
    pub sts: Option<StsView>,
    pub pods: Vec<PodView>,
    pub pvc_ordinals: Vec<u32>,
}

/// Contents of the referenced Secrets.
#[derive(Clone, Debug, Default)]
struct SecretData {
    connection: Connection,
    checksum: Option<String>,
}

/// Reconciles one QdrantCluster (the `Controller`'s reconciler).
#[instrument(skip(qc, ctx), fields(name = %qc.name_any(), namespace = %qc.namespace().unwrap_or_default()))]
pub async fn reconcile<P: ClusterApiProvider>(qc: Arc<QdrantCluster>, ctx: Arc<Context<P>>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_timer();
    let result = reconcile_cluster(&qc, &ctx).await;
    if let Err(e) = &result {
        ctx.metrics.failed(e);
    }
    result
}

/// The `Controller`'s reconciler: an object that does not even deserialise (a spec the schema
/// let through but the operator cannot read) is reported on the object, never fatal, and never
/// acted upon.
pub async fn reconcile_guarded<P: ClusterApiProvider>(
    guard: Arc<DeserializeGuard<QdrantCluster>>,
    ctx: Arc<Context<P>>,
) -> Result<Action, Error> {
    match &guard.0 {
        Ok(qc) => reconcile(Arc::new(qc.clone()), ctx).await,
        Err(invalid) => {
            let _timer = ctx.metrics.reconcile_timer();
            report_malformed(&ctx, invalid).await?;
            Ok(Action::requeue(REQUEUE_INVALID))
        }
    }
}

async fn report_malformed<P: ClusterApiProvider>(ctx: &Context<P>, invalid: &InvalidObject) -> Result<(), Error> {
    let name = invalid
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingObjectKey("metadata.name"))?;
    let namespace = invalid
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let message = format!("the QdrantCluster cannot be read: {}", invalid.error);
    warn!(%name, %namespace, %message, "malformed object; nothing is applied");
    let api_version = format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION);
    let reference = ObjectReference {
        api_version: Some(api_version.clone()),
        kind: Some("QdrantCluster".to_string()),
        name: Some(name.clone()),
        namespace: Some(namespace.clone()),
        uid: invalid.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "InvalidSpec".to_string(),
        note: Some(message.chars().take(1000).collect()),
        action: "Validate".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        warn!(error = %e, "cannot publish event");
    }
    let conditions = merge_conditions(
        &[],
        &conditions_for_rejection("InvalidSpec", &message, &[]),
        invalid.metadata.generation,
        &Time(jiff::Timestamp::now()),
    );
    let patch = serde_json::json!({
        "apiVersion": api_version,
        "kind": "QdrantCluster",
        "status": {
            "phase": Phase::Invalid,
            "observedGeneration": invalid.metadata.generation,
            "conditions": conditions,
        },
    });
    // The answer is the same malformed object: read it through the guard too.
    let api: Api<DeserializeGuard<QdrantCluster>> = Api::namespaced(ctx.client.clone(), &namespace);
    api.patch_status(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch))
        .await?;
    Ok(())
}

/// The `Controller`'s error policy for [`reconcile_guarded`].
pub fn error_policy_guarded<P: ClusterApiProvider>(
    guard: Arc<DeserializeGuard<QdrantCluster>>,
    error: &Error,
    _ctx: Arc<Context<P>>,
) -> Action {
    let name = guard.meta().name.clone().unwrap_or_default();
    warn!(%name, %error, "reconcile failed");
    Action::requeue(REQUEUE_ERROR)
}

/// The error policy for [`reconcile`]: log and retry soon.
pub fn error_policy<P: ClusterApiProvider>(qc: Arc<QdrantCluster>, error: &Error, _ctx: Arc<Context<P>>) -> Action {
    warn!(name = %qc.name_any(), namespace = %qc.namespace().unwrap_or_default(), %error, "reconcile failed");
    Action::requeue(REQUEUE_ERROR)
}

async fn reconcile_cluster<P: ClusterApiProvider>(qc: &QdrantCluster, ctx: &Context<P>) -> Result<Action, Error> {
    if qc.metadata.deletion_timestamp.is_some() {
        // Owner references cascade; volumes follow the StatefulSet's retention policy.
        return Ok(Action::await_change());
    }
    let problems = validate(qc);
    if !problems.is_empty() {
        let message = problems.join("; ");
        warn!(%message, "invalid spec; nothing is applied");
        publish(ctx, qc, EventType::Warning, "InvalidSpec", "Validate", &message).await;
        patch_rejected(ctx, qc, "InvalidSpec", &message, Phase::Invalid).await?;
        return Ok(Action::requeue(REQUEUE_INVALID));
    }
    let names = Names::of(qc)?;
    let secrets = match read_secrets(ctx, qc).await? {
        Ok(secrets) => secrets,
        Err(message) => {
            warn!(%message, "a referenced Secret is missing; nothing is applied");
            publish(ctx, qc, EventType::Warning, "SecretNotFound", "ReadSecrets", &message).await;
            let phase = qc.status.as_ref().and_then(|s| s.phase).unwrap_or(Phase::Creating);
            patch_rejected(ctx, qc, "SecretNotFound", &message, phase).await?;
            return Ok(Action::requeue(REQUEUE_BLOCKED));
        }
    };

    let k8s = observe_kubernetes(&ctx.client, &names).await?;
    let topology = PodTopology {
        names: names.clone(),
        https: qc.spec.tls.is_some(),
    };
    let api = ctx.provider.connect(&secrets.connection)?;
    let ready: Vec<u32> = k8s
        .pods
        .iter()
        .filter(|p| p.ready && !p.terminating)
        .map(|p| p.ordinal)
        .collect();
    let snapshot = observe_cluster(&api, &topology, &ready)
        .await
        .map_err(|e| e.to_string());
    if let Err(why) = &snapshot {
        debug!(%why, "cluster not observed");
    }
    let previous = qc.status.clone().unwrap_or_default();
    let input = PlanInput {
        size: qc.spec.size,
        suspend: qc.spec.suspend,
        rebalance: qc.spec.rebalance,
        sts: k8s.sts,
        pods: &k8s.pods,
        pvcs: &k8s.pvc_ordinals,
        cluster: snapshot.as_ref().map_err(Clone::clone),
        known_members: previous.peers.len(),
        initialized: previous.initialized,
    };
    let plan = planner::plan(&input);
    info!(step = ?plan.step, phase = plan.phase.as_str(), replicas = plan.replicas, "planned");

    let p2p_tls = qc.spec.tls.as_ref().is_some_and(|t| t.p2p);
    let bootstrap_peers = if plan.initialized {
        let peers = u32::try_from(plan.replicas.max(1)).unwrap_or(1);
        (1..peers).map(|k| names.p2p_uri(k, p2p_tls)).collect()
    } else {
        Vec::new()
    };
    let desired = build::build(
        qc,
        &BuildInputs {
            replicas: plan.replicas,
            bootstrap_peers,
            secret_checksum: secrets.checksum,
        },
    )?;
    apply_objects(&ctx.client, &names, &desired).await?;
    execute(ctx, qc, &names, &api, &topology, &plan.step).await?;
    let formed = i32::try_from(ready.len()).unwrap_or(i32::MAX) >= qc.spec.size
        && snapshot
            .as_ref()
            .is_ok_and(|s| s.leader.is_some() && s.peers.len() >= usize::try_from(qc.spec.size).unwrap_or(usize::MAX));
    let restore = reconcile_restore(ctx, qc, &names, formed, previous.restore.as_ref()).await?;
    let mut conditions = conditions_for(
        &plan.step,
        plan.phase,
        &Availability {
            desired: qc.desired_pods(),
            ready: i32::try_from(ready.len()).unwrap_or(i32::MAX),
            leader: snapshot.as_ref().ok().and_then(|s| s.leader),
            unobservable: snapshot.as_ref().err().cloned(),
        },
    );
    gate_available(&mut conditions, qc.spec.restore_from.as_ref(), restore.as_ref());
    let restoring = qc.spec.restore_from.is_some()
        && restore
            .as_ref()
            .is_none_or(|r| !matches!(r.phase, RestorePhase::Succeeded | RestorePhase::Failed));

    let status = QdrantClusterStatus {
        phase: Some(plan.phase),
        observed_generation: qc.metadata.generation,
        ready_nodes: i32::try_from(ready.len()).unwrap_or(i32::MAX),
        current_nodes: plan.replicas,
        selector: Some(selector_string(&names)),
        initialized: plan.initialized,
        peers: match &snapshot {
            Ok(s) => peer_statuses(&names, s, &ready),
            Err(_) => previous.peers.clone(),
        },
        conditions: merge_conditions(
            &previous.conditions,
            &conditions,
            qc.metadata.generation,
            &Time(jiff::Timestamp::now()),
        ),
        restore,
    };
    patch_status(ctx, qc, &previous, status).await?;
    Ok(Action::requeue(match plan.step {
        _ if restoring => REQUEUE_BUSY,
        Step::Idle => REQUEUE_IDLE,
        Step::Blocked { .. } => REQUEUE_BLOCKED,
        _ => REQUEUE_BUSY,
    }))
}

fn peer_statuses(
    names: &Names,
    snapshot: &ClusterSnapshot,
    ready: &[u32],
) -> std::collections::BTreeMap<String, PeerStatus> {
    snapshot
        .peers
        .iter()
        .filter_map(|(id, p)| {
            let ordinal = p.ordinal?;
            Some((
                names.pod(ordinal),
                PeerStatus {
                    peer_id: *id,
                    uri: p.uri.clone(),
                    ready: ready.contains(&ordinal),
                },
            ))
        })
        .collect()
}

/// Drives `spec.restoreFrom`: waits for the cluster to form, runs the restore Job once,
/// records its outcome. Returns the restore status.
async fn reconcile_restore<P: ClusterApiProvider>(
    ctx: &Context<P>,
    qc: &QdrantCluster,
    names: &Names,
    formed: bool,
    previous: Option<&RestoreStatus>,
) -> Result<Option<RestoreStatus>, Error> {
    let Some(from) = &qc.spec.restore_from else {
        return Ok(previous.cloned());
    };
    let ns = &names.namespace;
    let job_name = restore_job_name(&names.cluster);
    if previous.is_some_and(|p| p.phase == RestorePhase::Failed) {
        return Ok(previous.cloned());
    }
    let job_api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let uid = qc.metadata.uid.clone().unwrap_or_default();
    let job = match job_api.get_opt(&job_name).await? {
        Some(job) if job.owner_references().iter().any(|o| o.uid == uid) => {
            Some(match jobs::outcome(&ctx.client, ns, &job).await? {
                jobs::Outcome::Running => RestoreJob::Running,
                jobs::Outcome::Succeeded(result) => RestoreJob::Succeeded(result),
                jobs::Outcome::Failed(message) => RestoreJob::Failed(message),
            })
        }
        _ => None,
    };
    let backups: Api<QdrantBackup> = Api::namespaced(ctx.client.clone(), ns);
    let backup = backups.get_opt(&from.backup).await?;
    let decision = restore::decide(
        Some(from),
        previous,
        formed,
        backup.is_some(),
        job.as_ref(),
        &job_name,
        &jiff::Timestamp::now().to_string(),
    );
    if decision.start_job {
        if let Some(backup) = &backup {
            let image = backup.spec.image.clone().or_else(|| ctx.agent_image.clone());
            let Some(image) = image else {
                return Ok(decision.status.map(|s| RestoreStatus {
                    phase: RestorePhase::Pending,
                    message: Some(
                        "no agent image: set the QdrantBackup's spec.image or the operator's OPERATOR_IMAGE"
                            .to_string(),
                    ),
                    ..s
                }));
            };
            let job = build::backup_job::restore_job(qc, backup, from.id.as_deref(), &image)?;
            apply::<Job>(&ctx.client, ns, &job).await?;
            publish(
                ctx,
                qc,
                EventType::Normal,
                "RestoreStarted",
                "Restore",
                &format!("restoring from QdrantBackup {}", from.backup),
            )
            .await;
        }
    }
    if decision.delete_job {
        jobs::delete_job(&ctx.client, ns, &job_name).await?;
    }
    if let Some(status) = &decision.status {
        if previous.map(|p| p.phase) != Some(status.phase) {
            match status.phase {
                RestorePhase::Succeeded => {
                    publish(
                        ctx,
                        qc,
                        EventType::Normal,
                        "RestoreSucceeded",
                        "Restore",
                        "every collection was restored",
                    )
                    .await
                }
                RestorePhase::Failed => {
                    publish(
                        ctx,
                        qc,
                        EventType::Warning,
                        "RestoreFailed",
                        "Restore",
                        status.message.as_deref().unwrap_or("the restore failed"),
                    )
                    .await
                }
                _ => {}
            }
        }
    }
    Ok(decision.status)
}

/// Reads the StatefulSet, the pods and the volumes of a cluster.
pub async fn observe_kubernetes(client: &Client, names: &Names) -> Result<K8sObservation, Error> {
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &names.namespace);
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &names.namespace);
    let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &names.namespace);
    let selector = ListParams::default().labels(&selector_string(names));
    let sts = sts_api.get_opt(&names.stateful_set()).await?;
    let update_revision = sts
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.update_revision.clone());
    let sts_view = sts.as_ref().map(|s| StsView {
        replicas: s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        settled: s.status.as_ref().and_then(|st| st.observed_generation) >= s.metadata.generation,
    });
    let mut pods: Vec<PodView> = pod_api
        .list(&selector)
        .await?
        .items
        .iter()
        .filter_map(|pod| {
            let ordinal = names.ordinal_of_pod(pod.metadata.name.as_deref()?)?;
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let revision = pod.labels().get("controller-revision-hash");
            Some(PodView {
                ordinal,
                ready,
                updated: match (&update_revision, revision) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                },
                terminating: pod.metadata.deletion_timestamp.is_some(),
            })
        })
        .collect();
    pods.sort_by_key(|p| p.ordinal);
    let mut pvc_ordinals: Vec<u32> = pvc_api
        .list(&selector)
        .await?
        .items
        .iter()
        .filter_map(|pvc| names.ordinal_of_pvc(pvc.metadata.name.as_deref()?))
        .collect();
    pvc_ordinals.sort_unstable();
    Ok(K8sObservation {
        sts: sts_view,
        pods,
        pvc_ordinals,
    })
}

/// Reads the API key and TLS Secrets. `Ok(Err(message))` when one is missing or incomplete.
async fn read_secrets<P: ClusterApiProvider>(
    ctx: &Context<P>,
    qc: &QdrantCluster,
) -> Result<Result<SecretData, String>, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), qc.namespace_str());
    let mut data = SecretData::default();
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for (field, selector) in [
        ("apiKey", &qc.spec.api_key),
        ("readOnlyApiKey", &qc.spec.read_only_api_key),
    ] {
        let Some(selector) = selector else { continue };
        let Some(secret) = api.get_opt(&selector.name).await? else {
            return Ok(Err(format!("Secret {} (spec.{field}) does not exist", selector.name)));
        };
        let Some(value) = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&selector.key))
            .map(|v| v.0.clone())
        else {
            return Ok(Err(format!(
                "Secret {} (spec.{field}) has no key {}",
                selector.name, selector.key
            )));
        };
        if field == "apiKey" {
            data.connection.api_key = Some(String::from_utf8_lossy(&value).into_owned());
        }
        parts.push(value);
    }
    if let Some(tls) = &qc.spec.tls {
        let Some(secret) = api.get_opt(&tls.secret_name).await? else {
            return Ok(Err(format!("Secret {} (spec.tls) does not exist", tls.secret_name)));
        };
        let secret_data = secret.data.unwrap_or_default();
        for key in ["tls.crt", "tls.key", "ca.crt"] {
            let Some(value) = secret_data.get(key) else {
                return Ok(Err(format!("Secret {} (spec.tls) has no key {key}", tls.secret_name)));
            };
            if key == "ca.crt" {
                data.connection.ca_pem = Some(value.0.clone());
            }
            parts.push(value.0.clone());
        }
    }
    if !parts.is_empty() {
        data.checksum = Some(checksum(parts.iter().map(Vec::as_slice)));
    }
    Ok(Ok(data))
}

/// Server-side applies one object with the operator's field manager.
async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let name = object
        .meta()
        .name
        .clone()
        .ok_or(Error::MissingObjectKey("metadata.name"))?;
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    Ok(api
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(object))
        .await?)
}

/// Deletes an object if it exists.
async fn delete_if_present<K>(client: &Client, namespace: &str, name: &str) -> Result<bool, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Applies every desired object; removes the optional ones that are disabled.
pub async fn apply_objects(client: &Client, names: &Names, desired: &Desired) -> Result<(), Error> {
    let ns = &names.namespace;
    apply::<ConfigMap>(client, ns, &desired.config_map).await?;
    apply::<Service>(client, ns, &desired.headless_service).await?;
    apply::<Service>(client, ns, &desired.client_service).await?;
    apply::<StatefulSet>(client, ns, &desired.stateful_set).await?;
    match &desired.pod_disruption_budget {
        Some(pdb) => {
            apply::<PodDisruptionBudget>(client, ns, pdb).await?;
        }
        None => {
            delete_if_present::<PodDisruptionBudget>(client, ns, &names.pod_disruption_budget()).await?;
        }
    }
    match &desired.network_policy {
        Some(policy) => {
            apply::<NetworkPolicy>(client, ns, policy).await?;
        }
        None => {
            delete_if_present::<NetworkPolicy>(client, ns, &names.network_policy()).await?;
        }
    }
    Ok(())
}

/// Executes the planned step and records Events for it.
async fn execute<P: ClusterApiProvider>(
    ctx: &Context<P>,
    qc: &QdrantCluster,
    names: &Names,
    api: &P::Api,
    topology: &PodTopology,
    step: &Step,
) -> Result<(), Error> {
    let (kind, reason, note) = match step {
        Step::Idle | Step::Wait { .. } => return Ok(()),
        Step::Create => (
            EventType::Normal,
            "Creating",
            format!("creating a cluster of {} peers", qc.spec.size),
        ),
        Step::ScaleUp { from, to } => (
            EventType::Normal,
            "ScalingUp",
            format!("scaling from {from} to {to} peers"),
        ),
        Step::Shrink { from, to } => (
            EventType::Normal,
            "ScaledDown",
            format!(
                "peer of pod {} left the cluster; StatefulSet scaled from {from} to {to}",
                names.pod(u32::try_from(*to).unwrap_or_default())
            ),
        ),
        Step::Suspend { from } => (
            EventType::Normal,
            "Suspended",
            format!("stopping {from} pods; volumes and membership are kept"),
        ),
        Step::Resume { to } => (
            EventType::Normal,
            "Resuming",
            format!("starting {to} pods on their volumes"),
        ),
        Step::Blocked { reason, message } => (EventType::Warning, *reason, message.clone()),
        Step::Cluster { action, coordinator } => {
            let node = topology.rest_endpoint(*coordinator);
            let outcome = match action {
                ClusterAction::Shard {
                    collection, operation, ..
                } => api.update_collection_cluster(&node, collection, operation).await,
                ClusterAction::RemovePeer { peer, .. } => api.remove_peer(&node, *peer).await,
            };
            if let Err(e) = outcome {
                publish(
                    ctx,
                    qc,
                    EventType::Warning,
                    "ClusterApiFailed",
                    "ClusterApi",
                    &e.to_string(),
                )
                .await;
                return Err(e.into());
            }
            match action {
                ClusterAction::Shard {
                    collection,
                    operation,
                    drain,
                } => (
                    EventType::Normal,
                    if *drain { "DrainingPeer" } else { "Rebalancing" },
                    describe_operation(collection, operation),
                ),
                ClusterAction::RemovePeer { peer, ordinal } => (
                    EventType::Normal,
                    "PeerRemoved",
                    format!("removed peer {peer} (pod {}) from the cluster", names.pod(*ordinal)),
                ),
            }
        }
        Step::RestartPods {
            ordinals,
            all_at_once,
            reason,
        } => {
            for ordinal in ordinals {
                delete_if_present::<Pod>(&ctx.client, &names.namespace, &names.pod(*ordinal)).await?;
            }
            let pods = ordinals.iter().map(|o| names.pod(*o)).collect::<Vec<_>>().join(", ");
            (
                EventType::Normal,
                if *all_at_once {
                    "RestartingAllPods"
                } else {
                    "RestartingPod"
                },
                format!("restarting {pods} with the new template ({reason})"),
            )
        }
        Step::DeletePvcs { ordinals } => {
            for ordinal in ordinals {
                delete_if_present::<PersistentVolumeClaim>(&ctx.client, &names.namespace, &names.pvc(*ordinal)).await?;
            }
            let pvcs = ordinals.iter().map(|o| names.pvc(*o)).collect::<Vec<_>>().join(", ");
            (
                EventType::Normal,
                "DeletedVolume",
                format!("deleted {pvcs}: their peers left the cluster"),
            )
        }
    };
    ctx.metrics.action(reason);
    info!(reason, %note, "action");
    publish(ctx, qc, kind, reason, reason, &note).await;
    Ok(())
}

/// Publishes an Event about `qc`; failures are logged, never fatal.
async fn publish<P: ClusterApiProvider>(
    ctx: &Context<P>,
    qc: &QdrantCluster,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &qc.object_ref(&())).await {
        warn!(error = %e, reason, "cannot publish event");
    }
}

/// Server-side applies the status when it changed.
async fn patch_status<P: ClusterApiProvider>(
    ctx: &Context<P>,
    qc: &QdrantCluster,
    previous: &QdrantClusterStatus,
    status: QdrantClusterStatus,
) -> Result<(), Error> {
    if qc.status.is_some() && *previous == status {
        return Ok(());
    }
    let api: Api<QdrantCluster> = Api::namespaced(ctx.client.clone(), qc.namespace_str());
    let patch = serde_json::json!({
        "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
        "kind": "QdrantCluster",
        "status": status,
    });
    api.patch_status(
        qc.name_str(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Status for a spec that cannot be applied: everything else stays as it was.
async fn patch_rejected<P: ClusterApiProvider>(
    ctx: &Context<P>,
    qc: &QdrantCluster,
    reason: &str,
    message: &str,
    phase: Phase,
) -> Result<(), Error> {
    let previous = qc.status.clone().unwrap_or_default();
    let status = QdrantClusterStatus {
        phase: Some(phase),
        observed_generation: qc.metadata.generation,
        conditions: merge_conditions(
            &previous.conditions,
            &conditions_for_rejection(reason, message, &previous.conditions),
            qc.metadata.generation,
            &Time(jiff::Timestamp::now()),
        ),
        ..previous.clone()
    };
    patch_status(ctx, qc, &previous, status).await
}

/// Runs the controller until SIGTERM/SIGINT (in-flight reconciles finish first).
/// `namespace`: watch one namespace, or all.
pub async fn run<P: ClusterApiProvider>(ctx: Arc<Context<P>>, namespace: Option<String>) -> Result<(), Error> {
    let client = ctx.client.clone();
    fn scoped<K>(client: &Client, namespace: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let clusters: Api<DeserializeGuard<QdrantCluster>> = scoped(&client, &namespace);
    if let Err(e) = clusters.list(&ListParams::default().limit(1)).await {
        warn!(error = %e, "QdrantCluster is not served; install deploy/crds/qdrantcluster.yaml");
        return Err(e.into());
    }
    let owned = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    Controller::new(clusters, watcher::Config::default().any_semantic())
        .owns(scoped::<StatefulSet>(&client, &namespace), owned.clone())
        .owns(scoped::<ConfigMap>(&client, &namespace), owned.clone())
        .owns(scoped::<Service>(&client, &namespace), owned.clone())
        .owns(scoped::<PodDisruptionBudget>(&client, &namespace), owned.clone())
        .owns(scoped::<NetworkPolicy>(&client, &namespace), owned)
        .owns(
            scoped::<Job>(&client, &namespace),
            watcher::Config::default().labels(RESTORE_LABEL),
        )
        .shutdown_on_signal()
        .run(reconcile_guarded, error_policy_guarded, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, action)) => debug!(%object, ?action, "reconciled"),
                Err(e) => debug!(error = %e, "reconcile error"),
            }
        })
        .await;
    Ok(())
}
