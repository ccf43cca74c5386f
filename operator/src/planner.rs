//! The planner: from a fresh observation (StatefulSet, pods, volumes, cluster snapshot) to the
//! one next step. Pure, so every safety rule is tested without Kubernetes or Qdrant.
//!
//! Safety rules:
//! - nothing shrinks or deletes a volume without a fresh cluster observation;
//! - scale-down takes the highest ordinal: move each of its replicas to the least-loaded
//!   remaining peer without a copy (keeping the replication factor), or drop it when every
//!   remaining peer already has one and one of them is Active (one operation per step), then
//!   remove the peer (`force=false`), then shrink the StatefulSet by one, then delete that pod's
//!   volume;
//! - the last copy of a shard is never dropped; when it cannot be moved the plan is `Blocked`;
//! - pods restart one at a time, highest ordinal first, only when the cluster has a leader, every
//!   peer joined, no transfer runs and every shard on the pod has another Active replica; when
//!   nothing at all is replicated they restart together; when no pod is ready they restart
//!   together (nothing is left to protect).

use std::collections::BTreeMap;

use crate::cluster_api::{DropReplicaRequest, PeerId, ReplicaState, ShardOperation, ShardTransferRequest};
use crate::crd::Phase;
use crate::snapshot::ClusterSnapshot;

/// A pod of the StatefulSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodView {
    pub ordinal: u32,
    /// Ready condition is True.
    pub ready: bool,
    /// Runs the StatefulSet's current template (`controller-revision-hash == updateRevision`).
    pub updated: bool,
    /// Has a deletion timestamp.
    pub terminating: bool,
}

/// The StatefulSet as observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StsView {
    /// `spec.replicas`.
    pub replicas: i32,
    /// The StatefulSet controller has observed the latest spec (`status.observedGeneration`).
    pub settled: bool,
}

/// Everything the planner looks at.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    /// `spec.size`.
    pub size: i32,
    pub suspend: bool,
    pub rebalance: bool,
    /// `None` before the StatefulSet exists.
    pub sts: Option<StsView>,
    pub pods: &'a [PodView],
    /// Ordinals that have a storage PVC.
    pub pvcs: &'a [u32],
    /// The cluster, or why it could not be observed.
    pub cluster: Result<&'a ClusterSnapshot, String>,
    /// Peers recorded in status (to resume a suspended cluster at its former size).
    pub known_members: usize,
    /// Status says the cluster formed once.
    pub initialized: bool,
}

/// A call to the node's cluster API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterAction {
    /// `POST /collections/{collection}/cluster`.
    Shard {
        collection: String,
        operation: ShardOperation,
        /// Draining a peer for scale-down (true) or rebalancing (false).
        drain: bool,
    },
    /// `DELETE /cluster/peer/{peer}?force=false`.
    RemovePeer { peer: PeerId, ordinal: u32 },
}

/// The next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do.
    Idle,
    /// Create the objects (first reconcile).
    Create,
    /// Waiting for something outside the operator's hands.
    Wait {
        reason: &'static str,
        message: String,
    },
    /// Refusing an unsafe action; needs a human (or a changed spec).
    Blocked {
        reason: &'static str,
        message: String,
    },
    ScaleUp {
        from: i32,
        to: i32,
    },
    /// The peer of ordinal `to` is not (or no longer) a member: shrink the StatefulSet.
    Shrink {
        from: i32,
        to: i32,
    },
    Suspend {
        from: i32,
    },
    Resume {
        to: i32,
    },
    /// Call the cluster API through the pod `coordinator`.
    Cluster {
        action: ClusterAction,
        coordinator: u32,
    },
    /// Delete these pods so the StatefulSet recreates them from the new template.
    RestartPods {
        ordinals: Vec<u32>,
        all_at_once: bool,
        reason: &'static str,
    },
    /// Delete the volumes of peers that left the cluster.
    DeletePvcs {
        ordinals: Vec<u32>,
    },
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// StatefulSet replicas to apply.
    pub replicas: i32,
    pub step: Step,
    pub phase: Phase,
    /// The cluster formed (sticky).
    pub initialized: bool,
}

fn wait(reason: &'static str, message: impl Into<String>) -> Step {
    Step::Wait {
        reason,
        message: message.into(),
    }
}

fn blocked(reason: &'static str, message: impl Into<String>) -> Step {
    Step::Blocked {
        reason,
        message: message.into(),
    }
}

fn list(ordinals: &[u32]) -> String {
    ordinals.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// Decides the next step.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let cluster = input.cluster.as_ref().ok().copied();
    let initialized = input.initialized || cluster.is_some_and(|c| c.leader.is_some() && c.peer_at(0).is_some());
    let make = |replicas: i32, step: Step, phase: Phase| Plan {
        replicas,
        step,
        phase,
        initialized,
    };

    if input.suspend {
        let current = input.sts.map_or(0, |s| s.replicas);
        let step = if current > 0 {
            Step::Suspend { from: current }
        } else if !input.pods.is_empty() {
            wait("Suspending", format!("{} pods are still stopping", input.pods.len()))
        } else {
            Step::Idle
        };
        return make(0, step, Phase::Suspended);
    }
    let Some(sts) = input.sts else {
        return make(input.size, Step::Create, Phase::Creating);
    };
    let current = sts.replicas;
    if current == 0 {
        let to = input.size.max(i32::try_from(input.known_members).unwrap_or(i32::MAX));
        return make(to, Step::Resume { to }, Phase::Creating);
    }
    let busy_phase = if initialized { Phase::Scaling } else { Phase::Creating };

    // Volumes of peers that left must go before anything could reuse them.
    if let Some(c) = cluster {
        let stale = stale_pvcs(input, current, c);
        if !stale.is_empty() {
            return make(current, Step::DeletePvcs { ordinals: stale }, busy_phase);
        }
    }

    if input.size > current {
        let reused: Vec<u32> = input
            .pvcs
            .iter()
            .copied()
            .filter(|k| i64::from(*k) >= i64::from(current) && i64::from(*k) < i64::from(input.size))
            .collect();
        if !reused.is_empty() && cluster.is_none() {
            return make(
                current,
                wait(
                    "ClusterUnobservable",
                    format!(
                        "not scaling up: volumes of pods {} exist and the cluster cannot be observed to check them ({})",
                        list(&reused),
                        input.cluster.as_ref().err().map_or("", String::as_str)
                    ),
                ),
                busy_phase,
            );
        }
        return make(
            input.size,
            Step::ScaleUp {
                from: current,
                to: input.size,
            },
            busy_phase,
        );
    }

    if input.size < current {
        let (replicas, step) = drain_plan(input, current);
        let phase = if matches!(step, Step::Blocked { .. }) {
            Phase::Blocked
        } else {
            Phase::Scaling
        };
        return make(replicas, step, phase);
    }

    let (step, phase) = steady_plan(input, current, sts.settled, initialized);
    make(current, step, phase)
}

/// PVCs of ordinals at or above the StatefulSet size whose pod is gone and whose peer is not a
/// member (it was removed, or never joined).
fn stale_pvcs(input: &PlanInput<'_>, current: i32, c: &ClusterSnapshot) -> Vec<u32> {
    if c.leader.is_none() {
        return Vec::new();
    }
    input
        .pvcs
        .iter()
        .copied()
        .filter(|k| i64::from(*k) >= i64::from(current))
        .filter(|k| !input.pods.iter().any(|p| p.ordinal == *k))
        .filter(|k| c.peer_at(*k).is_none())
        .collect()
}

fn unknown_peer(c: &ClusterSnapshot) -> Option<Step> {
    c.peers.iter().find(|(_, p)| p.ordinal.is_none()).map(|(id, p)| {
        blocked(
            "UnknownPeer",
            format!(
                "peer {id} ({}) is not a pod of this cluster; peers cannot be mapped to pods",
                p.uri
            ),
        )
    })
}

fn pod(input: &PlanInput<'_>, ordinal: u32) -> Option<PodView> {
    input.pods.iter().copied().find(|p| p.ordinal == ordinal)
}

fn ready(input: &PlanInput<'_>, ordinal: u32) -> bool {
    pod(input, ordinal).is_some_and(|p| p.ready && !p.terminating)
}

fn drain_plan(input: &PlanInput<'_>, current: i32) -> (i32, Step) {
    let target = u32::try_from(current - 1).unwrap_or(0);
    let c = match &input.cluster {
        Ok(c) => *c,
        Err(why) => {
            return (
                current,
                wait(
                    "ClusterUnobservable",
                    format!("not shrinking: the cluster cannot be observed ({why})"),
                ),
            )
        }
    };
    if let Some(step) = unknown_peer(c) {
        return (current, step);
    }
    let Some(peer) = c.peer_at(target) else {
        // Not a member: removed already, or never joined.
        return (
            current - 1,
            Step::Shrink {
                from: current,
                to: current - 1,
            },
        );
    };
    (current, drain_step(input, c, peer, target))
}

fn drain_step(input: &PlanInput<'_>, c: &ClusterSnapshot, peer: PeerId, target: u32) -> Step {
    if c.leader.is_none() {
        return wait("NoLeader", "the cluster has no agreed Raft leader");
    }
    if let Some((collection, t)) = c.transfers().first() {
        return wait(
            "TransferInProgress",
            format!(
                "waiting for shard {} of collection {collection} to move from peer {} to {}",
                t.shard_id, t.from, t.to
            ),
        );
    }
    let Some(coordinator) = c.responders.iter().copied().find(|o| *o < target) else {
        return wait("NoCoordinator", "no remaining pod answers the cluster API");
    };
    // Peers that stay, and whose pods are ready to receive shards.
    let keepers: Vec<(PeerId, u32)> = c
        .peers
        .iter()
        .filter_map(|(id, p)| p.ordinal.map(|o| (*id, o)))
        .filter(|(_, o)| *o < target && ready(input, *o))
        .collect();
    let keeper_ids: Vec<PeerId> = keepers.iter().map(|(id, _)| *id).collect();
    let mut operations = Vec::new();
    for (collection, placement) in &c.collections {
        let mut load: BTreeMap<PeerId, usize> = keeper_ids.iter().map(|id| (*id, 0)).collect();
        for replicas in placement.shards.values() {
            for holder in replicas.keys() {
                if let Some(n) = load.get_mut(holder) {
                    *n += 1;
                }
            }
        }
        for (shard, replicas) in &placement.shards {
            let Some(state) = replicas.get(&peer) else {
                continue;
            };
            // Keep the replication factor: move to a remaining peer without a copy if possible.
            let destination = keepers
                .iter()
                .filter(|(id, _)| !replicas.contains_key(id))
                .min_by_key(|(id, o)| (load.get(id).copied().unwrap_or(0), *o))
                .map(|(id, _)| *id);
            let active_on_keeper = replicas
                .iter()
                .any(|(p, st)| keeper_ids.contains(p) && *st == ReplicaState::Active);
            let operation = match (*state == ReplicaState::Active, destination) {
                (true, Some(to)) => {
                    if let Some(n) = load.get_mut(&to) {
                        *n += 1;
                    }
                    ShardOperation::MoveShard(ShardTransferRequest {
                        shard_id: *shard,
                        from_peer_id: peer,
                        to_peer_id: to,
                    })
                }
                _ if active_on_keeper => ShardOperation::DropReplica(DropReplicaRequest {
                    shard_id: *shard,
                    peer_id: peer,
                }),
                (false, _) => {
                    return blocked(
                        "LastReplicaNotActive",
                        format!(
                            "shard {shard} of collection {collection}: no remaining peer has an Active copy and the one on pod {target} (peer {peer}) is {state:?}; refusing to remove that peer"
                        ),
                    )
                }
                (true, None) => {
                    return blocked(
                        "NoTargetPeer",
                        format!(
                            "shard {shard} of collection {collection}: its only Active copy is on pod {target} (peer {peer}) and no ready remaining peer can take it"
                        ),
                    )
                }
            };
            operations.push((collection.clone(), operation));
        }
    }
    let action = match operations.into_iter().next() {
        Some((collection, operation)) => ClusterAction::Shard {
            collection,
            operation,
            drain: true,
        },
        None => ClusterAction::RemovePeer { peer, ordinal: target },
    };
    Step::Cluster { action, coordinator }
}

fn steady_plan(input: &PlanInput<'_>, current: i32, settled: bool, initialized: bool) -> (Step, Phase) {
    let size = u32::try_from(current).unwrap_or(0);
    let busy_phase = if initialized { Phase::Scaling } else { Phase::Creating };
    let leaving: Vec<u32> = input
        .pods
        .iter()
        .filter(|p| p.ordinal >= size)
        .map(|p| p.ordinal)
        .collect();
    if !leaving.is_empty() {
        return (
            wait("PodsStopping", format!("waiting for pods {} to stop", list(&leaving))),
            busy_phase,
        );
    }
    if !settled {
        return (
            wait(
                "StatefulSetUpdating",
                "waiting for the StatefulSet controller to observe the latest change",
            ),
            busy_phase,
        );
    }
    let outdated: Vec<u32> = input
        .pods
        .iter()
        .filter(|p| !p.updated && p.ordinal < size)
        .map(|p| p.ordinal)
        .collect();
    if !outdated.is_empty() {
        return rolling_plan(input, size, &outdated);
    }
    let not_ready: Vec<u32> = (0..size).filter(|o| !ready(input, *o)).collect();
    if !not_ready.is_empty() {
        let phase = if !initialized {
            Phase::Creating
        } else if not_ready
            .iter()
            .any(|o| usize::try_from(*o).unwrap_or(usize::MAX) >= input.known_members)
        {
            Phase::Scaling
        } else {
            Phase::NotReady
        };
        return (
            wait("PodsNotReady", format!("pods {} are not ready", list(&not_ready))),
            phase,
        );
    }
    let c = match &input.cluster {
        Ok(c) => *c,
        Err(why) => {
            return (
                wait("ClusterUnobservable", format!("the cluster cannot be observed: {why}")),
                Phase::NotReady,
            )
        }
    };
    if let Some(step) = unknown_peer(c) {
        return (step, Phase::Blocked);
    }
    if let Some((id, p)) = c.peers.iter().find(|(_, p)| p.ordinal.is_some_and(|o| o >= size)) {
        let ordinal = p.ordinal.unwrap_or_default();
        // A member without a pod. Without shards it is removed (e.g. a pod that joined just
        // before it was scaled away); with shards it needs a human.
        if c.replicas_on(*id).is_empty() {
            if let (Some(coordinator), Some(_)) = (c.responders.first().copied(), c.leader) {
                return (
                    Step::Cluster {
                        action: ClusterAction::RemovePeer { peer: *id, ordinal },
                        coordinator,
                    },
                    busy_phase,
                );
            }
        }
        return (
            blocked(
                "StrayPeer",
                format!(
                    "peer {id} ({}) belongs to pod {ordinal}, which does not exist, and holds shards; set size to {} to bring it back, or move its shards away",
                    p.uri,
                    ordinal + 1
                ),
            ),
            Phase::Blocked,
        );
    }
    let missing: Vec<u32> = (0..size).filter(|o| c.peer_at(*o).is_none()).collect();
    if !missing.is_empty() {
        return (
            wait(
                "WaitingForPeers",
                format!(
                    "{} of {size} peers joined; waiting for pods {}",
                    size as usize - missing.len(),
                    list(&missing)
                ),
            ),
            busy_phase,
        );
    }
    if c.leader.is_none() {
        return (
            wait("NoLeader", "the cluster has no agreed Raft leader"),
            Phase::NotReady,
        );
    }
    if let Some((collection, t)) = c.transfers().first() {
        return (
            wait(
                "TransferInProgress",
                format!(
                    "shard {} of collection {collection} is moving from peer {} to {}",
                    t.shard_id, t.from, t.to
                ),
            ),
            Phase::Rebalancing,
        );
    }
    if input.rebalance {
        if let Some(step) = rebalance_step(c) {
            return (step, Phase::Rebalancing);
        }
    }
    (Step::Idle, Phase::Healthy)
}

fn rolling_plan(input: &PlanInput<'_>, size: u32, outdated: &[u32]) -> (Step, Phase) {
    let phase = Phase::Upgrading;
    if let Some(p) = input.pods.iter().find(|p| p.terminating) {
        return (
            wait("PodRestarting", format!("waiting for pod {} to restart", p.ordinal)),
            phase,
        );
    }
    if !input.pods.iter().any(|p| p.ready) {
        return (
            Step::RestartPods {
                ordinals: outdated.to_vec(),
                all_at_once: true,
                reason: "NoPodReady",
            },
            phase,
        );
    }
    let candidate = outdated
        .iter()
        .copied()
        .filter(|o| !ready(input, *o))
        .max()
        .or_else(|| outdated.iter().copied().max())
        .unwrap_or_default();
    let waiting: Vec<u32> = (0..size).filter(|o| *o != candidate && !ready(input, *o)).collect();
    if !waiting.is_empty() {
        return (
            wait(
                "WaitingForPods",
                format!("pods {} must be ready before pod {candidate} restarts", list(&waiting)),
            ),
            phase,
        );
    }
    let c = match &input.cluster {
        Ok(c) => *c,
        Err(why) => {
            return (
                wait(
                    "ClusterUnobservable",
                    format!("not restarting pod {candidate}: the cluster cannot be observed ({why})"),
                ),
                phase,
            )
        }
    };
    if c.leader.is_none() {
        return (wait("NoLeader", "the cluster has no agreed Raft leader"), phase);
    }
    let missing: Vec<u32> = (0..size)
        .filter(|o| *o != candidate && c.peer_at(*o).is_none())
        .collect();
    if !missing.is_empty() {
        return (
            wait(
                "WaitingForPeers",
                format!("pods {} have not joined the cluster", list(&missing)),
            ),
            phase,
        );
    }
    if let Some((collection, t)) = c.transfers().first() {
        return (
            wait(
                "TransferInProgress",
                format!(
                    "waiting for shard {} of collection {collection} to move from peer {} to {}",
                    t.shard_id, t.from, t.to
                ),
            ),
            phase,
        );
    }
    let restart_one = Step::RestartPods {
        ordinals: vec![candidate],
        all_at_once: false,
        reason: "RollingRestart",
    };
    let Some(peer) = c.peer_at(candidate) else {
        return (restart_one, phase);
    };
    let exposed: Vec<String> = c
        .replicas_on(peer)
        .into_iter()
        .filter(|(collection, shard, _)| {
            !c.collections
                .get(*collection)
                .and_then(|p| p.shards.get(shard))
                .is_some_and(|r| r.iter().any(|(p, st)| *p != peer && *st == ReplicaState::Active))
        })
        .map(|(collection, shard, _)| format!("shard {shard} of {collection}"))
        .collect();
    if exposed.is_empty() {
        return (restart_one, phase);
    }
    if c.nothing_replicated() {
        return (
            Step::RestartPods {
                ordinals: outdated.to_vec(),
                all_at_once: true,
                reason: "NothingReplicated",
            },
            phase,
        );
    }
    (
        blocked(
            "UpgradeBlocked",
            format!(
                "pod {candidate} holds the only Active copy of {}; raise the replication factor of those collections (or replicate the shards) so pods can restart one at a time",
                exposed.join(", ")
            ),
        ),
        Phase::Blocked,
    )
}

/// One move from the most- to the least-loaded peer of a collection when they differ by two or
/// more (each move lowers the sum of squared loads, so rebalancing terminates).
pub fn rebalance_step(c: &ClusterSnapshot) -> Option<Step> {
    if c.leader.is_none() || !c.transfers().is_empty() {
        return None;
    }
    let all_active = c.collections.values().all(|p| {
        p.shards
            .values()
            .all(|r| r.values().all(|st| *st == ReplicaState::Active))
    });
    if !all_active {
        return None;
    }
    let coordinator = c.responders.first().copied()?;
    let members: Vec<(PeerId, u32)> = c
        .peers
        .iter()
        .filter_map(|(id, p)| p.ordinal.map(|o| (*id, o)))
        .collect();
    for (collection, placement) in &c.collections {
        let mut load: BTreeMap<PeerId, (usize, u32)> = members.iter().map(|(id, o)| (*id, (0, *o))).collect();
        for replicas in placement.shards.values() {
            for holder in replicas.keys() {
                if let Some((n, _)) = load.get_mut(holder) {
                    *n += 1;
                }
            }
        }
        let donor = load.iter().max_by_key(|(_, (n, o))| (*n, *o));
        let recipient = load.iter().min_by_key(|(_, (n, o))| (*n, *o));
        let (Some((donor, (high, _))), Some((recipient, (low, _)))) = (donor, recipient) else {
            continue;
        };
        if *high < low + 2 {
            continue;
        }
        let shard = placement
            .shards
            .iter()
            .find(|(_, r)| r.contains_key(donor) && !r.contains_key(recipient))
            .map(|(s, _)| *s);
        if let Some(shard_id) = shard {
            return Some(Step::Cluster {
                action: ClusterAction::Shard {
                    collection: collection.clone(),
                    operation: ShardOperation::MoveShard(ShardTransferRequest {
                        shard_id,
                        from_peer_id: *donor,
                        to_peer_id: *recipient,
                    }),
                    drain: false,
                },
                coordinator,
            });
        }
    }
    None
}
