//! The drain / peer-removal / re-balance / rolling-restart planner driven against the fake
//! cluster: observe through the `ClusterApi` trait, plan, execute, advance transfers, repeat,
//! checking after every step that no shard lost its last active replica.

use operator::cluster_api::fake::FakeCluster;
use operator::cluster_api::{ClusterApi, ReplicaState, ShardOperation};
use operator::crd::Phase;
use operator::planner::{plan, ClusterAction, Plan, PlanInput, PodView, Step, StsView};
use operator::snapshot::{observe_cluster, ClusterSnapshot, Topology};

/// Test topology: pod k answers at `http://pod-k`, its peer URI is `http://peer-k:6335`.
struct Loop;

impl Topology for Loop {
    fn rest_endpoint(&self, ordinal: u32) -> String {
        format!("http://pod-{ordinal}")
    }
    fn ordinal_of(&self, uri: &str) -> Option<u32> {
        uri.strip_prefix("http://peer-")?.split(':').next()?.parse().ok()
    }
}

/// Kubernetes side of the world plus the fake cluster.
struct World {
    fake: FakeCluster,
    pods: Vec<PodView>,
    pvcs: Vec<u32>,
    replicas: i32,
    next_peer: u64,
    initialized: bool,
    known_members: usize,
}

impl World {
    fn new(n: u32) -> World {
        let mut w = World {
            fake: FakeCluster::new(),
            pods: Vec::new(),
            pvcs: Vec::new(),
            replicas: 0,
            next_peer: 10,
            initialized: true,
            known_members: n as usize,
        };
        w.set_replicas(n as i32);
        w
    }

    /// StatefulSet controller + kubelet + join: pods 0..n exist, are ready and are peers.
    fn set_replicas(&mut self, n: i32) {
        self.replicas = n;
        let n = n as u32;
        self.pods.retain(|p| p.ordinal < n);
        for k in 0..n {
            if !self.pods.iter().any(|p| p.ordinal == k) {
                self.pods.push(PodView {
                    ordinal: k,
                    ready: true,
                    updated: true,
                    terminating: false,
                });
            }
            if !self.pvcs.contains(&k) {
                self.pvcs.push(k);
            }
        }
        let mut state = self.fake.state();
        for k in 0..64u32 {
            let endpoint = Loop.rest_endpoint(k);
            if k >= n {
                state.endpoints.remove(&endpoint);
                continue;
            }
            let uri = format!("http://peer-{k}:6335");
            let existing = state.peers.iter().find(|(_, u)| **u == uri).map(|(id, _)| *id);
            let id = existing.unwrap_or_else(|| {
                let id = self.next_peer;
                self.next_peer += 1;
                state.peers.insert(id, uri);
                id
            });
            if state.leader.is_none() {
                state.leader = Some(id);
            }
            state.endpoints.insert(endpoint, id);
        }
    }

    async fn snapshot(&self) -> Result<ClusterSnapshot, String> {
        let ready: Vec<u32> = self
            .pods
            .iter()
            .filter(|p| p.ready && !p.terminating)
            .map(|p| p.ordinal)
            .collect();
        observe_cluster(&self.fake, &Loop, &ready)
            .await
            .map_err(|e| e.to_string())
    }

    async fn plan(&self, size: i32) -> Plan {
        let snapshot = self.snapshot().await;
        let input = PlanInput {
            size,
            suspend: false,
            rebalance: true,
            sts: Some(StsView {
                replicas: self.replicas,
                settled: true,
            }),
            pods: &self.pods,
            pvcs: &self.pvcs,
            cluster: snapshot.as_ref().map_err(Clone::clone),
            known_members: self.known_members,
            initialized: self.initialized,
        };
        plan(&input)
    }

    /// Executes a step the way the reconciler does.
    async fn execute(&mut self, plan: &Plan) {
        match &plan.step {
            Step::Cluster { action, coordinator } => {
                let node = Loop.rest_endpoint(*coordinator);
                match action {
                    ClusterAction::Shard {
                        collection, operation, ..
                    } => self
                        .fake
                        .update_collection_cluster(&node, collection, operation)
                        .await
                        .expect("shard operation accepted"),
                    ClusterAction::RemovePeer { peer, .. } => self
                        .fake
                        .remove_peer(&node, *peer)
                        .await
                        .expect("peer removal accepted"),
                }
            }
            Step::DeletePvcs { ordinals } => self.pvcs.retain(|k| !ordinals.contains(k)),
            Step::RestartPods { ordinals, .. } => {
                for p in &mut self.pods {
                    if ordinals.contains(&p.ordinal) {
                        p.updated = true;
                    }
                }
            }
            _ => {}
        }
        if plan.replicas != self.replicas {
            self.set_replicas(plan.replicas);
        }
        self.fake.tick();
        assert!(
            self.fake.shards_without_active_replica().is_empty(),
            "data loss: {:?}",
            self.fake.shards_without_active_replica()
        );
    }

    /// Plans and executes until the plan is Idle; returns the steps taken.
    async fn converge(&mut self, size: i32, max: usize) -> Vec<Step> {
        let mut steps = Vec::new();
        for _ in 0..max {
            let plan = self.plan(size).await;
            if plan.step == Step::Idle {
                return steps;
            }
            assert!(
                !matches!(plan.step, Step::Blocked { .. }),
                "unexpectedly blocked: {:?}",
                plan.step
            );
            self.execute(&plan).await;
            steps.push(plan.step);
        }
        panic!("no convergence after {max} steps; last: {:?}", steps.last());
    }

    fn peer_of(&self, ordinal: u32) -> u64 {
        let uri = format!("http://peer-{ordinal}:6335");
        *self
            .fake
            .state()
            .peers
            .iter()
            .find(|(_, u)| **u == uri)
            .expect("peer")
            .0
    }
}

#[tokio::test]
async fn scale_down_drains_highest_ordinal_then_removes_then_shrinks() {
    let mut w = World::new(5);
    w.fake.create_collection("single", 12, 1);
    w.fake.create_collection("double", 5, 2);
    let peer4 = w.peer_of(4);
    let peer3 = w.peer_of(3);
    let steps = w.converge(3, 200).await;

    // Final shape: three peers on pods 0..2, volumes of 3 and 4 deleted.
    assert_eq!(w.replicas, 3);
    assert_eq!(w.fake.state().peers.len(), 3);
    let mut pvcs = w.pvcs.clone();
    pvcs.sort_unstable();
    assert_eq!(pvcs, [0, 1, 2]);
    // Replication factor kept: every shard of "double" still has two replicas.
    for (shard, replicas) in &w.fake.state().collections["double"].shards {
        assert_eq!(replicas.len(), 2, "shard {shard}: {replicas:?}");
    }
    // Order: drain 4, remove peer 4, shrink to 4, delete its volume, then the same for 3.
    let index = |pred: &dyn Fn(&Step) -> bool| steps.iter().position(pred).expect("step present");
    let removed4 =
        index(&|s| matches!(s, Step::Cluster { action: ClusterAction::RemovePeer { peer, .. }, .. } if *peer == peer4));
    let shrink4 = index(&|s| matches!(s, Step::Shrink { from: 5, to: 4 }));
    let pvc4 = index(&|s| matches!(s, Step::DeletePvcs { ordinals } if ordinals == &vec![4]));
    let first_op_on_3 = index(&|s| match s {
        Step::Cluster {
            action: ClusterAction::Shard { operation, .. },
            ..
        } => match operation {
            ShardOperation::MoveShard(t) => t.from_peer_id == peer3,
            ShardOperation::DropReplica(d) => d.peer_id == peer3,
            ShardOperation::ReplicateShard(_) => false,
        },
        _ => false,
    });
    assert!(
        removed4 < shrink4 && shrink4 < pvc4 && pvc4 < first_op_on_3,
        "{steps:#?}"
    );
    // Never more than one operation in flight, every removal refused nothing.
    let removals = w
        .fake
        .state()
        .calls
        .iter()
        .filter(|c| c.starts_with("remove_peer"))
        .count();
    assert_eq!(removals, 2);
}

#[tokio::test]
async fn scale_down_waits_for_slow_transfers_one_at_a_time() {
    let mut w = World::new(3);
    w.fake.state().transfer_ticks = 3;
    w.fake.create_collection("c", 6, 1);
    let mut waits = 0;
    for _ in 0..100 {
        let plan = w.plan(2).await;
        if plan.step == Step::Idle {
            break;
        }
        if let Step::Wait { reason, .. } = &plan.step {
            if *reason == "TransferInProgress" {
                waits += 1;
            }
        }
        w.execute(&plan).await;
        let in_flight: usize = w.fake.state().collections.values().map(|c| c.transfers.len()).sum();
        assert!(in_flight <= 1, "{in_flight} transfers at once");
    }
    assert_eq!(w.replicas, 2);
    assert!(waits > 0, "the planner must wait for running transfers");
}

#[tokio::test]
async fn scale_down_is_blocked_when_the_last_copy_is_not_active() {
    let w = World::new(3);
    w.fake.create_collection("c", 3, 1);
    let peer2 = w.peer_of(2);
    // The only replica on pod 2 is Dead: neither movable nor droppable.
    {
        let mut state = w.fake.state();
        let shards = &mut state.collections.get_mut("c").expect("c").shards;
        for replicas in shards.values_mut() {
            if let Some(st) = replicas.get_mut(&peer2) {
                *st = ReplicaState::Dead;
            }
        }
    }
    let plan = w.plan(2).await;
    match &plan.step {
        Step::Blocked { reason, message } => {
            assert_eq!(*reason, "LastReplicaNotActive");
            assert!(message.contains("collection c"), "{message}");
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    assert_eq!(plan.replicas, 3, "never shrinks while blocked");
    assert_eq!(plan.phase, Phase::Blocked);
    // Stays blocked (no progress is invented) on the next observation.
    assert_eq!(w.plan(2).await.step, plan.step);
}

#[tokio::test]
async fn scale_down_is_blocked_when_no_remaining_peer_is_ready() {
    let mut w = World::new(3);
    w.fake.create_collection("c", 3, 1);
    // Pods 0 and 1 are not ready: nobody can take pod 2's shard.
    for p in &mut w.pods {
        if p.ordinal < 2 {
            p.ready = false;
        }
    }
    // Pod 2 still answers, so the cluster is observable.
    let plan = w.plan(2).await;
    assert!(
        matches!(
            &plan.step,
            Step::Wait {
                reason: "NoCoordinator",
                ..
            } | Step::Blocked {
                reason: "NoTargetPeer",
                ..
            }
        ),
        "{:?}",
        plan.step
    );
    assert_eq!(plan.replicas, 3);
}

#[tokio::test]
async fn never_shrinks_without_an_observation() {
    let w = World::new(3);
    w.fake.create_collection("c", 3, 1);
    let snapshot: Result<ClusterSnapshot, String> = Err("every node unreachable".to_string());
    let input = PlanInput {
        size: 2,
        suspend: false,
        rebalance: true,
        sts: Some(StsView {
            replicas: 3,
            settled: true,
        }),
        pods: &w.pods,
        pvcs: &w.pvcs,
        cluster: snapshot.as_ref().map_err(Clone::clone),
        known_members: 3,
        initialized: true,
    };
    let p = plan(&input);
    assert!(
        matches!(
            p.step,
            Step::Wait {
                reason: "ClusterUnobservable",
                ..
            }
        ),
        "{:?}",
        p.step
    );
    assert_eq!(p.replicas, 3);
}

#[tokio::test]
async fn peers_outside_the_cluster_block_the_drain() {
    let w = World::new(3);
    w.fake.add_peer(99, "http://10.1.2.3:6335", "http://elsewhere");
    let p = w.plan(2).await;
    assert!(
        matches!(
            p.step,
            Step::Blocked {
                reason: "UnknownPeer",
                ..
            }
        ),
        "{:?}",
        p.step
    );
    assert_eq!(p.replicas, 3);
}

#[tokio::test]
async fn a_pod_that_never_joined_is_shrunk_directly() {
    let mut w = World::new(3);
    w.fake.create_collection("c", 2, 1);
    // Pod 2 crash-loops: not ready, not a member.
    let peer2 = w.peer_of(2);
    w.fake.state().peers.remove(&peer2);
    for p in &mut w.pods {
        if p.ordinal == 2 {
            p.ready = false;
        }
    }
    // Re-place shards away from the missing peer.
    w.fake.create_collection("c", 2, 1);
    let p = w.plan(2).await;
    assert_eq!(p.step, Step::Shrink { from: 3, to: 2 });
    assert_eq!(p.replicas, 2);
}

#[tokio::test]
async fn stale_volumes_are_deleted_only_for_departed_peers() {
    let mut w = World::new(3);
    // A volume for ordinal 3 whose peer left: deleted before anything else.
    w.pvcs.push(3);
    let p = w.plan(3).await;
    assert_eq!(p.step, Step::DeletePvcs { ordinals: vec![3] });
    // The same volume while its peer is still a member (someone shrank the StatefulSet by
    // hand): the volume is kept; the stray peer holds nothing, so it is removed first.
    w.fake.add_peer(77, "http://peer-3:6335", "http://gone");
    let p = w.plan(3).await;
    assert!(
        matches!(
            &p.step,
            Step::Cluster {
                action: ClusterAction::RemovePeer { peer: 77, ordinal: 3 },
                ..
            }
        ),
        "{:?}",
        p.step
    );
    // A stray peer that holds shards is a human's call.
    w.fake.create_collection("c", 1, 1);
    {
        let mut state = w.fake.state();
        let shard = state
            .collections
            .get_mut("c")
            .expect("c")
            .shards
            .get_mut(&0)
            .expect("shard");
        shard.clear();
        shard.insert(77, ReplicaState::Active);
    }
    let p = w.plan(3).await;
    assert!(
        matches!(
            p.step,
            Step::Blocked {
                reason: "StrayPeer",
                ..
            }
        ),
        "{:?}",
        p.step
    );
}

#[tokio::test]
async fn scale_up_waits_for_joins_then_rebalances() {
    let mut w = World::new(3);
    w.fake.create_collection("c", 12, 1);
    let p = w.plan(5).await;
    assert_eq!(p.step, Step::ScaleUp { from: 3, to: 5 });
    assert_eq!(p.replicas, 5);
    // New pods exist but are not ready yet: wait.
    w.replicas = 5;
    for k in 3..5 {
        w.pods.push(PodView {
            ordinal: k,
            ready: false,
            updated: true,
            terminating: false,
        });
    }
    let p = w.plan(5).await;
    assert!(
        matches!(
            p.step,
            Step::Wait {
                reason: "PodsNotReady",
                ..
            }
        ),
        "{:?}",
        p.step
    );
    assert_eq!(p.phase, Phase::Scaling);
    w.set_replicas(5);
    for pod in &mut w.pods {
        pod.ready = true;
    }
    let steps = w.converge(5, 100).await;
    let moves = steps
        .iter()
        .filter(|s| {
            matches!(
                s,
                Step::Cluster {
                    action: ClusterAction::Shard { drain: false, .. },
                    ..
                }
            )
        })
        .count();
    assert!(moves >= 4, "expected rebalancing moves, got {steps:#?}");
    let counts = w.fake.replica_counts();
    let (min, max) = (
        counts.values().min().copied().unwrap_or(0),
        counts.values().max().copied().unwrap_or(0),
    );
    assert!(max - min <= 1, "unbalanced: {counts:?}");
    assert_eq!(counts.len(), 5);
}

#[tokio::test]
async fn scale_up_waits_when_an_old_volume_cannot_be_checked() {
    let mut w = World::new(2);
    w.pvcs.push(2);
    let snapshot: Result<ClusterSnapshot, String> = Err("unreachable".to_string());
    let input = PlanInput {
        size: 3,
        suspend: false,
        rebalance: true,
        sts: Some(StsView {
            replicas: 2,
            settled: true,
        }),
        pods: &w.pods,
        pvcs: &w.pvcs,
        cluster: snapshot.as_ref().map_err(Clone::clone),
        known_members: 2,
        initialized: true,
    };
    let p = plan(&input);
    assert!(
        matches!(
            p.step,
            Step::Wait {
                reason: "ClusterUnobservable",
                ..
            }
        ),
        "{:?}",
        p.step
    );
    assert_eq!(p.replicas, 2);
    w.pods.clear();
}

fn outdate_all(w: &mut World) {
    for p in &mut w.pods {
        p.updated = false;
    }
}

#[tokio::test]
async fn rolling_restart_goes_one_pod_at_a_time_from_the_highest() {
    let mut w = World::new(3);
    w.fake.create_collection("c", 6, 2);
    outdate_all(&mut w);
    let mut order = Vec::new();
    for _ in 0..10 {
        let p = w.plan(3).await;
        match &p.step {
            Step::RestartPods {
                ordinals, all_at_once, ..
            } => {
                assert!(!all_at_once);
                assert_eq!(ordinals.len(), 1);
                order.push(ordinals[0]);
            }
            Step::Idle => break,
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(p.phase, Phase::Upgrading);
        w.execute(&p).await;
    }
    assert_eq!(order, [2, 1, 0]);
}

#[tokio::test]
async fn rolling_restart_waits_for_the_restarted_pod_and_transfers() {
    let mut w = World::new(3);
    w.fake.create_collection("c", 3, 2);
    outdate_all(&mut w);
    // Pod 1 is restarting (not ready): pod 2 must wait.
    w.pods[1].ready = false;
    w.pods[1].updated = true;
    let p = w.plan(3).await;
    assert!(
        matches!(
            p.step,
            Step::Wait {
                reason: "WaitingForPods",
                ..
            }
        ),
        "{:?}",
        p.step
    );
    w.pods[1].ready = true;
    // A transfer in flight: wait.
    w.fake.state().transfer_ticks = 5;
    let peer0 = w.peer_of(0);
    let missing_on_0 = {
        let state = w.fake.state();
        state.collections["c"]
            .shards
            .iter()
            .find(|(_, r)| !r.contains_key(&peer0))
            .map(|(s, r)| (*s, *r.keys().next().expect("holder")))
            .expect("a shard not on peer 0")
    };
    w.fake
        .update_collection_cluster(
            "http://pod-0",
            "c",
            &operator::cluster_api::ShardOperation::ReplicateShard(operator::cluster_api::ShardTransferRequest {
                shard_id: missing_on_0.0,
                from_peer_id: missing_on_0.1,
                to_peer_id: peer0,
            }),
        )
        .await
        .expect("replicate");
    let p = w.plan(3).await;
    assert!(
        matches!(
            p.step,
            Step::Wait {
                reason: "TransferInProgress",
                ..
            }
        ),
        "{:?}",
        p.step
    );
}

#[tokio::test]
async fn rolling_restart_is_blocked_by_unreplicated_shards_in_a_replicated_cluster() {
    let mut w = World::new(3);
    w.fake.create_collection("replicated", 3, 2);
    w.fake.create_collection("single", 3, 1);
    outdate_all(&mut w);
    let p = w.plan(3).await;
    match &p.step {
        Step::Blocked { reason, message } => {
            assert_eq!(*reason, "UpgradeBlocked");
            assert!(message.contains("of single"), "{message}");
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
}

#[tokio::test]
async fn restart_all_at_once_when_nothing_is_replicated() {
    let mut w = World::new(3);
    w.fake.create_collection("single", 3, 1);
    outdate_all(&mut w);
    let p = w.plan(3).await;
    assert_eq!(
        p.step,
        Step::RestartPods {
            ordinals: vec![0, 1, 2],
            all_at_once: true,
            reason: "NothingReplicated"
        }
    );
}

#[tokio::test]
async fn restart_all_at_once_when_no_pod_is_ready() {
    let mut w = World::new(3);
    outdate_all(&mut w);
    for p in &mut w.pods {
        p.ready = false;
    }
    let p = w.plan(3).await;
    assert!(
        matches!(&p.step, Step::RestartPods { all_at_once: true, reason: "NoPodReady", ordinals } if ordinals.len() == 3),
        "{:?}",
        p.step
    );
}

#[tokio::test]
async fn suspend_keeps_volumes_and_resume_restores_the_membership_size() {
    let w = World::new(3);
    let snapshot = w.snapshot().await;
    let mut input = PlanInput {
        size: 3,
        suspend: true,
        rebalance: true,
        sts: Some(StsView {
            replicas: 3,
            settled: true,
        }),
        pods: &w.pods,
        pvcs: &w.pvcs,
        cluster: snapshot.as_ref().map_err(Clone::clone),
        known_members: 3,
        initialized: true,
    };
    let p = plan(&input);
    assert_eq!(p.step, Step::Suspend { from: 3 });
    assert_eq!((p.replicas, p.phase), (0, Phase::Suspended));
    // Suspended with no pods: idle, volumes untouched.
    let no_pods: Vec<PodView> = Vec::new();
    input.pods = &no_pods;
    input.sts = Some(StsView {
        replicas: 0,
        settled: true,
    });
    input.cluster = Err("no ready pod".to_string());
    let p = plan(&input);
    assert_eq!(p.step, Step::Idle);
    // Resume after the user lowered size while suspended: come back at the old membership
    // size first (the drain then runs safely).
    input.suspend = false;
    input.size = 2;
    let p = plan(&input);
    assert_eq!(p.step, Step::Resume { to: 3 });
    assert_eq!(p.replicas, 3);
}

#[tokio::test]
async fn rebalance_terminates_and_moves_one_shard_at_a_time() {
    let mut w = World::new(2);
    w.fake.create_collection("c", 9, 1);
    w.set_replicas(4);
    w.known_members = 4;
    let steps = w.converge(4, 50).await;
    for s in &steps {
        assert!(
            matches!(
                s,
                Step::Cluster {
                    action: ClusterAction::Shard { drain: false, .. },
                    ..
                }
            ),
            "{s:?}"
        );
    }
    let counts = w.fake.replica_counts();
    assert!(
        counts.values().max().copied().unwrap_or(0) - counts.values().min().copied().unwrap_or(0) <= 1,
        "{counts:?}"
    );
    // Balanced: nothing more to do.
    assert_eq!(w.plan(4).await.step, Step::Idle);
}
