//! Test harness: the mocked API server plus a tiny simulation of the StatefulSet controller,
//! the kubelet and Qdrant membership (pods join the fake cluster when ready), so reconcile
//! tests can run whole create / update / scale / suspend stories.

#![allow(dead_code)]

pub mod apiserver;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use operator::build::Names;
use operator::cluster_api::fake::FakeCluster;
use operator::metrics::Metrics;
use operator::reconcile::{reconcile, Context};
use operator::snapshot::{PodTopology, Topology};
use operator::{Error, QdrantCluster, QdrantClusterStatus};
use serde_json::{json, Value};

pub use apiserver::ApiServer;

pub const NS: &str = "db";
pub const NAME: &str = "demo";
pub const QCS: &str = "apis/qdrant.dev/v1alpha1/namespaces/db/qdrantclusters";
pub const STS: &str = "apis/apps/v1/namespaces/db/statefulsets";
pub const PODS: &str = "api/v1/namespaces/db/pods";
pub const PVCS: &str = "api/v1/namespaces/db/persistentvolumeclaims";
pub const CMS: &str = "api/v1/namespaces/db/configmaps";
pub const SVCS: &str = "api/v1/namespaces/db/services";
pub const SECRETS: &str = "api/v1/namespaces/db/secrets";
pub const PDBS: &str = "apis/policy/v1/namespaces/db/poddisruptionbudgets";
pub const NPS: &str = "apis/networking.k8s.io/v1/namespaces/db/networkpolicies";
pub const EVENTS: &str = "apis/events.k8s.io/v1/namespaces/db/events";
pub const QBS: &str = "apis/qdrant.dev/v1alpha1/namespaces/db/qdrantbackups";
pub const JOBS: &str = "apis/batch/v1/namespaces/db/jobs";

pub fn names() -> Names {
    Names {
        cluster: NAME.to_string(),
        namespace: NS.to_string(),
    }
}

/// The world of one reconcile test.
pub struct Sim {
    pub api: ApiServer,
    pub fake: FakeCluster,
    pub ctx: Arc<Context<FakeCluster>>,
    /// Pods the kubelet keeps NotReady.
    pub unready: BTreeSet<u32>,
    /// The peer identity stored on each volume (a peer's id lives in its storage).
    peer_of_volume: BTreeMap<String, u64>,
    next_peer_id: u64,
}

impl Sim {
    pub fn new() -> Sim {
        let (client, api) = ApiServer::start();
        let fake = FakeCluster::new();
        let ctx = Arc::new(
            Context::new(client, fake.clone(), Metrics::new(), Some("test".to_string()))
                .with_agent_image(Some("qdrant-operator:test".to_string())),
        );
        Sim {
            api,
            fake,
            ctx,
            unready: BTreeSet::new(),
            peer_of_volume: BTreeMap::new(),
            next_peer_id: 100,
        }
    }

    /// Creates the QdrantCluster `db/demo`.
    pub fn create_cluster(&self, spec: Value) {
        self.api.put(
            QCS,
            json!({"apiVersion": "qdrant.dev/v1alpha1", "kind": "QdrantCluster",
                   "metadata": {"name": NAME, "namespace": NS}, "spec": spec}),
        );
    }

    /// Edits the QdrantCluster's spec (bumps generation).
    pub fn edit_spec(&self, f: impl FnOnce(&mut Value)) {
        self.api.modify(QCS, NAME, |qc| f(&mut qc["spec"]));
    }

    pub fn qc(&self) -> QdrantCluster {
        serde_json::from_value(self.api.get(QCS, NAME).expect("QdrantCluster")).expect("parse")
    }

    pub fn status(&self) -> QdrantClusterStatus {
        self.qc().status.unwrap_or_default()
    }

    pub fn condition(&self, type_: &str) -> Condition {
        self.status()
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_} condition"))
    }

    /// Runs one reconcile of the current object.
    pub async fn reconcile(&self) -> Result<Action, Error> {
        reconcile(Arc::new(self.qc()), self.ctx.clone()).await
    }

    pub fn sts(&self) -> Value {
        self.api.get(STS, NAME).expect("StatefulSet")
    }

    pub fn sts_replicas(&self) -> i64 {
        self.sts()["spec"]["replicas"].as_i64().expect("replicas")
    }

    pub fn pod_names(&self) -> Vec<String> {
        self.api
            .list(PODS)
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    pub fn pvc_names(&self) -> Vec<String> {
        self.api
            .list(PVCS)
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// `(type, reason, note)` of every Event about the cluster.
    pub fn events(&self) -> Vec<(String, String, String)> {
        self.api
            .list(EVENTS)
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or_default().to_string(),
                    e["reason"].as_str().unwrap_or_default().to_string(),
                    e["note"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub fn has_event(&self, reason: &str) -> bool {
        self.events().iter().any(|(_, r, _)| r == reason)
    }

    fn topology(&self) -> PodTopology {
        PodTopology {
            names: names(),
            https: false,
        }
    }

    /// One round of the outside world: the StatefulSet controller creates/deletes pods and
    /// volumes, the kubelet marks pods ready, ready pods join the Qdrant cluster, transfers
    /// advance.
    pub fn tick(&mut self) {
        let names = names();
        let topology = self.topology();
        for sts in self.api.list(STS) {
            let replicas = sts["spec"]["replicas"].as_u64().unwrap_or(0) as u32;
            let template = &sts["spec"]["template"];
            let mut hasher = DefaultHasher::new();
            template.to_string().hash(&mut hasher);
            let revision = format!("{NAME}-{:010x}", hasher.finish() & 0xff_ffff_ffff);
            for k in 0..replicas {
                let pod = names.pod(k);
                if self.api.get(PODS, &pod).is_none() {
                    let mut labels = template["metadata"]["labels"].clone();
                    labels["controller-revision-hash"] = json!(revision);
                    self.api.put(
                        PODS,
                        json!({"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": pod, "namespace": NS, "labels": labels},
                               "spec": template["spec"].clone()}),
                    );
                }
                let ready = !self.unready.contains(&k);
                self.api.modify(PODS, &pod, |p| {
                    p["status"] = json!({"conditions": [{"type": "Ready",
                        "status": if ready { "True" } else { "False" }}]});
                });
                let pvc = names.pvc(k);
                if self.api.get(PVCS, &pvc).is_none() {
                    self.api.put(
                        PVCS,
                        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                               "metadata": {"name": pvc, "namespace": NS,
                                            "labels": sts["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"].clone()},
                               "spec": sts["spec"]["volumeClaimTemplates"][0]["spec"].clone()}),
                    );
                }
            }
            for pod in self.pod_names() {
                if names.ordinal_of_pod(&pod).is_some_and(|k| k >= replicas) {
                    self.api.remove(PODS, &pod);
                }
            }
            let ready = (0..replicas).filter(|k| !self.unready.contains(k)).count();
            self.api.modify(STS, NAME, |s| {
                s["status"] = json!({
                    "observedGeneration": s["metadata"]["generation"].clone(),
                    "replicas": replicas,
                    "readyReplicas": ready,
                    "updateRevision": revision,
                });
            });
        }
        // Membership: a ready pod runs the peer whose identity is on its volume; a fresh volume
        // joins as a new peer; a removed peer does not come back; pods that are gone stop
        // answering.
        let pods = self.pod_names();
        let pvcs = self.pvc_names();
        self.peer_of_volume.retain(|pvc, _| pvcs.contains(pvc));
        let mut state = self.fake.state();
        for k in 0..64u32 {
            let endpoint = topology.rest_endpoint(k);
            let running = pods.contains(&names.pod(k)) && !self.unready.contains(&k);
            if !running {
                state.endpoints.remove(&endpoint);
                continue;
            }
            let volume = names.pvc(k);
            let peer = match self.peer_of_volume.get(&volume) {
                Some(id) => *id,
                None => {
                    let id = self.next_peer_id;
                    self.next_peer_id += 1;
                    state.peers.insert(id, names.p2p_uri(k, false));
                    if state.leader.is_none() {
                        state.leader = Some(id);
                    }
                    self.peer_of_volume.insert(volume, id);
                    id
                }
            };
            if state.peers.contains_key(&peer) {
                state.endpoints.insert(endpoint, peer);
            } else {
                state.endpoints.remove(&endpoint);
            }
        }
        drop(state);
        self.fake.tick();
    }

    /// Alternates reconcile and tick until `done` holds (at most `max` rounds), checking after
    /// every round that no shard lost its last active replica. Returns the rounds used.
    pub async fn run_until(&mut self, max: usize, done: impl Fn(&Sim) -> bool) -> usize {
        for round in 1..=max {
            self.reconcile().await.expect("reconcile");
            assert!(
                self.fake.shards_without_active_replica().is_empty(),
                "data loss after round {round}: {:?}",
                self.fake.shards_without_active_replica()
            );
            self.tick();
            if done(self) {
                return round;
            }
        }
        panic!(
            "not done after {max} rounds; status: {:?}; events: {:?}",
            self.status(),
            self.events()
        );
    }

    /// Creates a healthy 3-peer cluster (optionally with extra spec fields).
    pub async fn healthy(spec: Value) -> Sim {
        let mut sim = Sim::new();
        sim.create_cluster(spec);
        sim.run_until(10, |s| s.status().phase == Some(operator::crd::Phase::Healthy))
            .await;
        sim
    }
}
